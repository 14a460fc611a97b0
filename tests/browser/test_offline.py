"""The offline copy belongs to one build of the site, in Debian's Chromium: deploy A, visit, deploy B, visit, go
offline, and everything is B's; a host that answers 200 with its fallback page for a missing file never gets
that page kept in place of the file."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtab_tools import serve, site_build
from samtab_tools.browser import APP_EVENT_RECORDER, AppPage

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"


def deploy(into: Path, changes: dict[str, bytes]) -> dict:
    """A copy of site/ at `into` (hard links: nothing is copied or changed in site/), with `changes` written
    over it as new files, and its build.js: what a person deploying to a static host uploads."""
    if into.exists():
        shutil.rmtree(into)
    for path in SITE.rglob("*"):
        target = into / path.relative_to(SITE)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name != "build.js":
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    for relative, data in changes.items():
        (into / relative).unlink(missing_ok=True)
        (into / relative).write_bytes(data)
    return site_build.write(into)


class Host:
    """A static host serving one folder (what serve.py serves, from another folder), in this process."""

    def __init__(self, folder: Path, fallback: bool = False):
        self.server = serve.make_server("127.0.0.1", 0, site=folder)
        if fallback:  # like hosts set up for single-page apps: a missing file gets index.html, with a 200
            handler = self.server.RequestHandlerClass

            def fallback_handler(*args, **kwargs):
                return FallbackHandler(*args, **kwargs, directory=handler.keywords["directory"])

            self.server.RequestHandlerClass = fallback_handler
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SlowRuntime:
    """Makes a Host answer vendor/ files a second late while `slow` is set: a keep under way, held there."""

    def __init__(self, host: Host):
        self.slow = threading.Event()
        handler = host.server.RequestHandlerClass
        slow = self.slow

        class Slow(serve.SiteHandler):
            def send_head(self):
                if slow.is_set() and self.path.startswith("/vendor/"):
                    time.sleep(1.0)
                return super().send_head()

        host.server.RequestHandlerClass = lambda *args, **kwargs: Slow(
            *args, **kwargs, directory=handler.keywords["directory"]
        )


class FallbackHandler(serve.SiteHandler):
    def send_head(self):
        path = self.translate_path(self.path)
        if path and not os.path.exists(path):
            self.path = "/index.html"
        return super().send_head()


def preview_with(colour) -> bytes:
    """The shapes demo's preview, one corner painted over: the same size, other bytes."""
    photo = np.asarray(Image.open(SITE / "demos" / "shapes" / "shapes.png.preview.png").convert("RGB")).copy()
    photo[:40, :40] = colour
    out = io.BytesIO()
    Image.fromarray(photo).save(out, "PNG")
    return out.getvalue()


CACHES = """async () => Object.fromEntries(await Promise.all((await caches.keys()).map(async (name) =>
    [name, (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname)])))"""


# The service worker's answers to the page's "keep" messages, recorded from before the page's scripts run.
KEPT_RECORDER = """window.__kept = [];
navigator.serviceWorker?.addEventListener("message", (e) => e.data?.type === "kept" && window.__kept.push(e.data));"""


def kept(page, build: str) -> dict:
    """Wait until the service worker of `build` has kept all the page asked for; its answer."""
    page.wait_for_function("(build) => window.__kept.some((k) => k.build === build && k.done)", arg=build)
    return [k for k in page.evaluate("window.__kept") if k["build"] == build and k["done"]][-1]


# What the page posts to its service worker ("keep", "hold"), recorded from before the page's scripts run.
POSTED_RECORDER = """window.__posted = [];
const postToWorker = ServiceWorker.prototype.postMessage;
ServiceWorker.prototype.postMessage = function (message, ...rest) {
  window.__posted.push(message?.type);
  return postToWorker.call(this, message, ...rest);
};"""


# sha256 of what a cache holds for each of `paths` (relative to the site).
CACHED_SHA256 = """async ([name, paths]) => {
    const cache = await caches.open(name);
    const out = {};
    for (const path of paths) {
        const buffer = await (await cache.match(new URL(path, document.baseURI).href)).arrayBuffer();
        const digest = await crypto.subtle.digest("SHA-256", buffer);
        out[path] = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    }
    return out; }"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetched(page, path: str) -> str:
    """sha256 of what the page gets for `path` (through its service worker)."""
    return page.evaluate(
        """async (path) => {
        const buffer = await (await fetch(path)).arrayBuffer();
        const digest = await crypto.subtle.digest("SHA-256", buffer);
        return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join(""); }""",
        path,
    )


@pytest.fixture
def folder(tmp_path_factory):
    # On the same file system as site/, so that a deploy is hard links.
    path = ROOT / ".cache" / "deploy-test"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_after_a_redeploy_the_offline_copy_is_the_new_builds_alone(browser, folder, figures):
    css = (SITE / "app.css").read_bytes()
    build_a = deploy(
        folder, {"app.css": css + b"/* build A */\n", "demos/shapes/shapes.png.preview.png": preview_with((255, 0, 0))}
    )
    host = Host(folder)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.add_init_script(APP_EVENT_RECORDER)
        page.add_init_script(KEPT_RECORDER)
        app = AppPage(page)
        page.goto(f"{host.url}?demo=shapes")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        app.wait_for("opened")
        answer = kept(page, build_a["id"])
        assert answer["counts"].get("kept", 0) > 40 and set(answer["counts"]) == {"kept"}, answer
        assert set(page.evaluate(CACHES)) == {f"samtab-{build_a['id']}"}

        # Deploy B over A: a changed stylesheet and demo photo; the next visit runs B's service worker.
        css_b = css + b"/* build B */\n"
        preview_b = preview_with((0, 0, 255))
        build_b = deploy(folder, {"app.css": css_b, "demos/shapes/shapes.png.preview.png": preview_b})
        assert build_b["id"] != build_a["id"]
        page.reload()
        app.wait_for("opened")
        # B's service worker took over, deleted A's copy and kept its own.
        answer = kept(page, build_b["id"])
        assert set(answer["counts"]) == {"kept"}, answer
        caches = page.evaluate(CACHES)
        assert list(caches) == [f"samtab-{build_b['id']}"]
        cached = caches[f"samtab-{build_b['id']}"]
        assert "/app.css" in cached and "/demos/shapes/shapes.png.preview.png" in cached
        assert "/models/baseline/decoder.onnx" in cached and "/vendor/pyapp.zip" in cached

        context.set_offline(True)
        page.reload()
        app.wait_for("opened")
        assert fetched(page, "./app.css") == sha(css_b)
        assert fetched(page, "./demos/shapes/shapes.png.preview.png") == sha(preview_b)
        assert app.click(480, 320, (960, 640))["clicks"] == 1  # and the app works offline
        figures(f"redeploy: build {build_a['id']} -> {build_b['id']}, offline copy of {len(cached)} files, all B's")
    finally:
        context.close()
        host.stop()


def test_a_hosts_fallback_page_is_never_kept_for_a_missing_file(browser, folder):
    build = deploy(folder, {})
    (folder / "demos" / "shapes" / "shapes.png.preview.png").unlink()  # listed in build.js, missing on the host
    host = Host(folder, fallback=True)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(host.url)
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        assert "<title>" in page.evaluate("fetch('./demos/shapes/shapes.png.preview.png').then((r) => r.text())")
        answer = page.evaluate(
            """(urls) => new Promise((resolve) => {
            navigator.serviceWorker.addEventListener("message", (e) => e.data?.type === "kept" && resolve(e.data));
            navigator.serviceWorker.controller.postMessage({type: "keep", urls}); })""",
            [host.url + "demos/shapes/shapes.png.preview.png", host.url + "app.css"],
        )
        assert answer["build"] == build["id"] and answer["counts"]["mismatch"] == 1
        cached = page.evaluate(CACHES)[f"samtab-{build['id']}"]
        assert "/app.css" in cached and "/demos/shapes/shapes.png.preview.png" not in cached
    finally:
        context.close()
        host.stop()


def test_a_click_while_the_offline_copy_is_made_holds_it_and_the_rest_is_kept_once_the_page_is_still(
    browser, folder, figures
):
    """Keeping tens of MB for offline use took both cores for a second, and a click in it twice its time: a click
    holds it (the service worker stops after the file it is on), and the page asks again once it is still."""
    build = deploy(folder, {})
    host = Host(folder)
    runtime = SlowRuntime(host)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        for script in (APP_EVENT_RECORDER, KEPT_RECORDER, POSTED_RECORDER):
            page.add_init_script(script)
        app = AppPage(page)
        page.goto(f"{host.url}?demo=shapes")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        app.wait_for("opened")
        runtime.slow.set()  # the page has all it needs: from now on only the keep asks for vendor/ files
        page.wait_for_function("window.__posted.includes('keep')", timeout=20_000)  # after 3 s of stillness
        assert app.click(480, 320, (960, 640))["clicks"] == 1
        page.wait_for_function("window.__kept.length > 0")
        first = page.evaluate("window.__kept")[0]
        assert first["done"] is False and first["build"] == build["id"], first
        assert page.evaluate("window.__posted") == ["keep", "hold"]
        runtime.slow.clear()

        answer = kept(page, build["id"])  # asked again after the page was still, and done
        assert page.evaluate("window.__posted") == ["keep", "hold", "keep"]
        assert set(answer["counts"]) == {"kept"}, answer
        cached = page.evaluate(CACHES)[f"samtab-{build['id']}"]
        runtime_files = [
            p for p in build["files"] if p.startswith("vendor/") and not re.search("webgpu|jsep|asyncify", p)
        ]
        missing = [p for p in runtime_files if f"/{p}" not in cached]
        assert missing == [] and "/models/baseline/decoder.onnx" in cached and "/app.css" in cached
        stored = page.evaluate(CACHED_SHA256, [f"samtab-{build['id']}", runtime_files])
        assert stored == {p: build["files"][p]["sha256"] for p in runtime_files}  # none cut short by the hold
        figures(
            f"offline copy held by a click after {sum(first['counts'].values())} files, then {len(cached)} files kept"
        )
    finally:
        context.close()
        host.stop()
