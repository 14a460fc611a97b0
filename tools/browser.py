"""Starting Debian's Chromium and samtab's server, shared by the browser tests and tools/bench.py.

Playwright's own browser download (`playwright install`) cannot work here, so Chromium is launched from
/usr/bin/chromium (override with SAMTAB_CHROMIUM) with flags that keep it off the network.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SAMTAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps",
]
# Collects every samtab:* event the page dispatches, from before the page's own scripts run.
EVENT_RECORDER = """
window.__samtab_events = [];
for (const name of ["boot", "painted", "status", "python", "ready", "error"]) {
  addEventListener("samtab:" + name, (event) => window.__samtab_events.push({name, detail: event.detail}));
}
"""

BOOT_TIMEOUT_MS = 120_000


def launch_args() -> dict:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium was not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
                         "(or set SAMTAB_CHROMIUM to a Chromium binary).")
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


class SiteServer:
    """tools/serve.py in a subprocess on a free port; stopped by its PID."""

    def __init__(self, *extra_args: str, build: bool = True, timeout: float = 600):
        args = [sys.executable, str(ROOT / "tools" / "serve.py"), "--port", "0", *extra_args]
        if not build:
            args.append("--no-build")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"(http://\S+/) ", line)
            if match:
                self.url = match.group(1)
                return
        self.stop()
        raise RuntimeError("tools/serve.py did not start:\n" + "".join(self.output))

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def wait_until_settled(page, timeout_ms: float = BOOT_TIMEOUT_MS) -> str:
    """Wait for <body data-state> to leave `booting`; return the state it reached (ready or error)."""
    page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=timeout_ms)
    return page.evaluate("document.body.dataset.state")


def recorded_events(page, name: str | None = None) -> list[dict]:
    """The samtab:* events EVENT_RECORDER saw, oldest first, optionally only those called `name`."""
    recorded = page.evaluate("window.__samtab_events")
    return [event for event in recorded if name is None or event["name"] == name]


class RequestLog:
    """Every request the page, its workers and service workers make, in order."""

    def __init__(self):
        self.urls: list[str] = []

    def record(self, request) -> None:
        self.urls.append(request.url)

    def foreign(self, origin: str) -> list[str]:
        allowed = urlsplit(origin).netloc
        return [url for url in self.urls
                if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != allowed]
