"""Starting Debian's Chromium and samtab's server, shared by the browser tests and tools/bench.py.

Playwright's own browser download (`playwright install`) cannot work here, so Chromium is launched from
/usr/bin/chromium (override with SAMTAB_CHROMIUM) with flags that keep it off the network.

JsRefServer serves the plain-JavaScript yardstick page (../shared/jsref, outside the repository and never
part of site/) that `tools/bench.py click --vs-js` measures samtab against.
"""

from __future__ import annotations

import http.server
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import numpy as np

if TYPE_CHECKING:
    from pyapp.bundle import Bundle

ROOT = Path(__file__).resolve().parent.parent
JSREF = ROOT.parent / "shared" / "jsref"  # beside the repository, as the issue that asked for it says
ORT_DIST = ROOT / "site" / "vendor" / "ort"  # tools/vendor.py's copy of onnxruntime-web's dist/
CHROMIUM = os.environ.get("SAMTAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
]
# Collects every samtab:* event the page dispatches, from before the page's own scripts run.
EVENT_RECORDER = """
window.__samtab_events = [];
for (const name of ["boot", "painted", "status", "python", "ready", "error"]) {
  addEventListener("samtab:" + name, (event) => window.__samtab_events.push({name, detail: event.detail}));
}
"""

# The same, for every event the app dispatches (what a test of the app as a person uses it watches).
APP_EVENT_RECORDER = EVENT_RECORDER.replace(
    '"ready", "error"',
    (
        '"ready", "error", "mask", "opened", "photo", "export", "stats", "encoded", "encode-cancelled", "collection", '
        '"session", "autosaved"'
    ),
)

BOOT_TIMEOUT_MS = 120_000


def launch_args() -> dict:
    if not Path(CHROMIUM).exists():
        raise SystemExit(
            f"Chromium was not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(or set SAMTAB_CHROMIUM to a Chromium binary)."
        )
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


def jsref_layout(bundle: Bundle) -> tuple[dict, bytes]:
    """A bundle in jsref's folder layout: manifest.json's JSON (originalWidth, originalHeight,
    tensors: {name: {offset, shape, dtype}}) and embedding.bin's bytes, the tensors' stored values (fp16 stays
    fp16) little-endian and back to back in the contract's order; offsets count bytes from the file's start."""
    tensors, chunks, offset = {}, [], 0
    for name, array in bundle.tensors.items():
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        tensors[name] = {"offset": offset, "shape": list(array.shape), "dtype": array.dtype.name}
        chunks.append(data)
        offset += len(data)
    manifest = {"originalWidth": bundle.width, "originalHeight": bundle.height, "tensors": tensors}
    return manifest, b"".join(chunks)


class JsRefServer:
    """jsref on a free port of 127.0.0.1, in a thread of this process: the page at /, onnxruntime-web's dist/
    (the site's vendored copy) at /ort/, and a temporary folder at /demo/ holding one photo in jsref's layout
    (manifest.json, embedding.bin, preview.jpg) and the decoder (decoder.onnx, served from where it lies).
    Every response is cross-origin isolated (COOP + COEP), so onnxruntime-web can run threads.

    Use it as a context manager, or call stop()."""

    def __init__(self, bundle: Bundle, preview: Path, decoder: Path, jsref: Path = JSREF, ort: Path = ORT_DIST):
        if not (jsref / "index.html").is_file() or not (jsref / "worker.mjs").is_file():
            raise SystemExit(
                f"The plain-JavaScript yardstick page was not found at {jsref} (index.html and worker.mjs): "
                "it lives beside the repository, in ../shared/jsref; put it there to compare with it."
            )
        if not (ort / "ort.wasm.min.mjs").is_file():
            raise SystemExit(f"onnxruntime-web is not vendored at {ort}: run `python tools/vendor.py` first.")
        if not decoder.is_file():
            raise SystemExit(f"The decoder {decoder} does not exist: build the demos with `python tools/demos.py`.")
        self._folder = tempfile.TemporaryDirectory(prefix="samtab-jsref-")
        folder = Path(self._folder.name)
        manifest, embedding = jsref_layout(bundle)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (folder / "embedding.bin").write_bytes(embedding)
        if preview.suffix.lower() in (".jpg", ".jpeg"):
            shutil.copyfile(preview, folder / "preview.jpg")
        else:
            from PIL import Image

            with Image.open(preview) as picture:
                picture.convert("RGB").save(folder / "preview.jpg", quality=92)
        # Longest prefix first; a file is served at its URL only, a folder below its prefix.
        routes = {"/demo/decoder.onnx": decoder, "/demo/": folder, "/ort/": ort, "/": jsref}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _jsref_handler(routes))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="jsref-server", daemon=True)
        self._thread.start()

    def page_url(self, threads: int, clicks: int, flavour: str = "tuned") -> str:
        """index.html with jsref's URL parameters (its README lists them)."""
        return (
            f"{self.url}index.html?flavour={flavour}&threads={threads}&clicks={clicks}"
            "&demo=/demo&decoder=/demo/decoder.onnx"
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()
        self._folder.cleanup()

    def __enter__(self) -> JsRefServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _jsref_handler(routes: dict[str, Path]) -> type[http.server.SimpleHTTPRequestHandler]:
    from samtab_tools.serve import MIME_TYPES

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

        def translate_path(self, path: str) -> str:
            # `..` is resolved before routing, so no path leaves its route's folder; a file route is its URL only.
            path = posixpath.normpath(unquote(urlsplit(path).path))
            for prefix, target in routes.items():
                if target.is_file() and path == prefix:
                    return str(target)
                if target.is_dir() and (path == prefix.rstrip("/") or path.startswith(prefix)):
                    return str(target / path[len(prefix) :])
            return ""  # no route: a 404

        def list_directory(self, path):
            self.send_error(404, "No listing")

        def end_headers(self) -> None:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, *args) -> None:  # the benchmark's output is its figures
            pass

    return Handler


def wait_until_settled(page, timeout_ms: float = BOOT_TIMEOUT_MS) -> str:
    """Wait for <body data-state> to leave `booting`; return the state it reached (ready or error)."""
    settled = "(state => ['ready', 'error'].includes(state) && state)(document.body?.dataset.state)"
    return page.wait_for_function(settled, timeout=timeout_ms).json_value()


def recorded_events(page, name: str | None = None) -> list[dict]:
    """The samtab:* events EVENT_RECORDER saw, oldest first, optionally only those called `name`."""
    recorded = page.evaluate("window.__samtab_events")
    return [event for event in recorded if name is None or event["name"] == name]


def python_worker(page):
    """The page's Python worker (site/pyworker.js), for tests that reach into it."""
    return next(worker for worker in page.workers if worker.url.split("?")[0].endswith("/pyworker.js"))


class RequestLog:
    """Every request the page, its workers and service workers make, in order."""

    def __init__(self):
        self.urls: list[str] = []

    def record(self, request) -> None:
        self.urls.append(request.url)

    def foreign(self, origin: str) -> list[str]:
        allowed = urlsplit(origin).netloc
        return [
            url for url in self.urls if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != allowed
        ]


def zoom_page(page, percent: float, photo_width: int, around: tuple[float, float] | None = None) -> None:
    """Zoom the page with one wheel turn around a point of the screen (default: the middle of its photo area)
    until a pixel of the photo (photo_width pixels wide) is `percent` % of a screen pixel, and wait for the
    detail drawn for it (when the view's own pixels are too few)."""
    import math

    area = page.locator("#image-area").bounding_box()
    page.mouse.move(*(around or (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)))
    scale, css, ratio, width = page.evaluate(
        "(() => { const c = document.getElementById('canvas');"
        " return [c.getBoundingClientRect().width / c.offsetWidth, c.offsetWidth, devicePixelRatio, c.width]; })()"
    )
    target = percent / 100 * photo_width / (css * ratio)
    if target <= 1:
        return
    page.mouse.wheel(0, -math.log(target / scale) / 0.0015)  # the page zooms by exp(-deltaY * 0.0015)
    page.wait_for_function(
        f"Math.abs(document.getElementById('canvas').getBoundingClientRect().width / {css} - {target}) < 0.01"
    )
    if css * target * ratio > width:  # the view's pixels enlarged: a detail comes
        page.wait_for_function("document.getElementById('image-area').classList.contains('detailed')")


class AppPage:
    """A page of samtab and the helpers a person's actions need: the browser tests' and benchmarks' hands."""

    def __init__(self, page, timeout_ms: float = BOOT_TIMEOUT_MS):
        self.page = page
        self.timeout_ms = timeout_ms

    def open(self, url: str) -> AppPage:
        self.page.add_init_script(APP_EVENT_RECORDER)
        self.page.goto(url)
        self.wait_for("opened")
        return self

    def count(self, name: str) -> int:
        return self.page.evaluate(f"window.__samtab_events.filter(e => e.name == '{name}').length")

    def wait_for(self, name: str, after: int = 0) -> dict:
        """The detail of the samtab:NAME event after the first `after` ones (a fatal error ends the wait)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(
                f"window.__samtab_events.filter(e => e.name == '{name}').length > {after} || "
                "window.__samtab_events.some(e => e.name == 'error' && e.detail.fatal)",
                timeout=self.timeout_ms,
            )
        except PlaywrightTimeout:
            recent = [
                (e["name"], {k: v for k, v in e["detail"].items() if k in ("text", "message", "clicks", "slug")})
                for e in recorded_events(self.page)[-12:]
            ]
            state = self.page.evaluate("document.body?.dataset.state")
            raise AssertionError(
                f"no samtab:{name} after the first {after} in {self.timeout_ms / 1000:.0f} s; "
                f"page {state}, last events {recent}, "
                f"stats {self.stats_now() if name != 'stats' else '-'}"
            ) from None
        events = recorded_events(self.page, name)
        assert len(events) > after, recorded_events(self.page, "error")
        return events[-1]["detail"]

    def wait_until_ready(self) -> None:
        """Until nothing is being opened or decoded (<body data-state> back to ready)."""
        self.page.wait_for_function("document.body?.dataset.state === 'ready'", timeout=self.timeout_ms)

    def canvas_point(self, x: float, y: float, width: int, height: int) -> tuple[float, float]:
        """Where photo pixel (x, y) (a pixel's centre) of a width × height photo is on the screen."""
        canvas = self.page.locator("#canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height

    def click(self, x: float, y: float, size: tuple[int, int], button: str = "left") -> dict:
        before = self.count("mask")
        self.page.mouse.click(*self.canvas_point(x, y, *size), button=button)
        return self.wait_for("mask", before)

    def mask_after_click(self, x: float, y: float, size: tuple[int, int]):
        """Click photo pixel (x, y) of a photo of `size` and return the current object's exported mask."""
        self.click(x, y, size)
        return self.mask()

    def drag(self, a: tuple[float, float], b: tuple[float, float], size: tuple[int, int]) -> dict:
        before = self.count("mask")
        mouse = self.page.mouse
        mouse.move(*self.canvas_point(*a, *size))
        mouse.down()
        mouse.move(*self.canvas_point(*b, *size), steps=8)
        mouse.up()
        return self.wait_for("mask", before)

    def zoom_to(self, percent: float, x: float, y: float, size: tuple[int, int]) -> None:
        """Zoom around photo pixel (x, y) of a photo of `size` (zoom_page)."""
        zoom_page(self.page, percent, size[0], around=self.canvas_point(x, y, *size))

    def detail(self, size: tuple[int, int]):
        """What the zoomed-in page shows in detail: (h, w, 4) uint8 RGBA of the detail canvas (device pixels),
        and the photo's column and row each of its pixel columns and rows shows (fractional: a photo pixel
        spans [k, k + 1))."""
        import base64
        import io

        import numpy as np
        from PIL import Image

        url, rect, inner, ratio = self.page.evaluate("""(() => {
          const area = document.getElementById('image-area'), a = area.getBoundingClientRect();
          const r = document.getElementById('canvas').getBoundingClientRect();
          return [document.getElementById('detail').toDataURL('image/png'), [r.left, r.top, r.width, r.height],
                  [a.left + area.clientLeft, a.top + area.clientTop], devicePixelRatio];
        })()""")
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))
        height, width = pixels.shape[:2]
        cols = (inner[0] + (np.arange(width) + 0.5) / ratio - rect[0]) * size[0] / rect[2]
        rows = (inner[1] + (np.arange(height) + 0.5) / ratio - rect[1]) * size[1] / rect[3]
        return pixels, cols, rows

    def export(self, what: str) -> tuple[bytes, str]:
        with self.page.expect_download() as download:
            self.page.click(f"#export-{what}")
        return Path(download.value.path()).read_bytes(), download.value.suggested_filename

    def mask(self):
        """The current object's mask, exported, as a boolean array at the photo's size."""
        import io

        import numpy as np
        from PIL import Image

        data, _ = self.export("mask")
        return np.asarray(Image.open(io.BytesIO(data))) > 127

    def ui(self) -> dict:
        """What the controls show a person: objects (name, clicks, selected), candidates (label, pressed),
        undo/redo enabled, the view, the opacity, whether the restore offer shows."""
        return self.page.evaluate("""() => ({
          objects: [...document.querySelectorAll('#object-list li')].map((li) => ({
            name: li.querySelector('input').value, clicks: li.querySelector('.count').textContent,
            selected: li.getAttribute('aria-current') === 'true'})),
          candidates: [...document.querySelectorAll('#candidates button')].map((b) =>
            [b.textContent, b.getAttribute('aria-pressed') === 'true']),
          undo: !document.getElementById('undo').disabled, redo: !document.getElementById('redo').disabled,
          view: ['overlay', 'cutout', 'erase'].find((v) =>
            document.getElementById('view-' + v).getAttribute('aria-pressed') === 'true'),
          opacity: document.getElementById('opacity').value,
          restore: !document.getElementById('restore').hidden})""")

    def canvas_pixels(self):
        """What the canvas shows, (h, w, 4) uint8 RGBA."""
        import base64
        import io

        import numpy as np
        from PIL import Image

        url = self.page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))

    def stats_now(self, timeout_ms: float = 5000) -> dict | str:
        """The figures if the worker answers within timeout_ms (for failure messages), else why not."""
        try:
            saved, self.timeout_ms = self.timeout_ms, timeout_ms
            return self.stats()
        except Exception as error:  # noqa: BLE001 - a diagnostic: never hide the failure it explains
            return f"no stats ({type(error).__name__})"
        finally:
            self.timeout_ms = saved

    def stats(self) -> dict:
        """The worker's memory figures (pyapp.web.worker.Worker.stats) and the page's own."""
        before = self.count("stats")
        self.page.evaluate("dispatchEvent(new CustomEvent('samtab:request-stats'))")
        return self.wait_for("stats", before)

    def settled_stats(self, attempts: int = 100) -> dict:
        """The figures once the worker is idle: nothing decoding (a photo's warm-up included: the page shows
        ready before it ends), no opening or replay under way (between a replay's decodes nothing decodes, yet
        it is not over), every command answered."""
        self.wait_until_ready()
        for _ in range(attempts):
            stats = self.stats()
            page = stats["page"]
            if not stats["decoding"] and not stats["applying"] and page["unacked"] == 0 and page["outbox"] == 0:
                return stats
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the worker did not settle: {stats}")
