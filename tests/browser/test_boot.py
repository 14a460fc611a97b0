"""The page boots in a real Chromium: Python, its packages and onnxruntime-web, all from the page's origin."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from samtab_tools import selftest_model, serve
from samtab_tools.browser import (
    EVENT_RECORDER,
    AppPage,
    RequestLog,
    SiteServer,
    recorded_events,
    wait_until_settled,
)


@pytest.fixture(scope="module")
def booted(browser, site):
    """One fresh context booted once; the tests below read what it did."""
    context = browser.new_context()
    log = RequestLog()
    context.on("request", log.record)
    page = context.new_page()
    page.add_init_script(EVENT_RECORDER)
    page.goto(site.url)
    state = wait_until_settled(page)
    yield page, state, log
    context.close()


def test_page_reaches_ready_with_readable_phases(booted):
    page, state, _ = booted
    errors = recorded_events(page, "error")
    assert state == "ready", errors
    ready_text = "Choose a demo, or open your own photo and its bundle"
    assert page.inner_text("#status") == ready_text
    statuses = [event["detail"] for event in recorded_events(page, "status")]
    assert [s["phase"] for s in statuses] == ["python", "ort", "ready"]
    assert [s["text"] for s in statuses] == ["Starting Python…", "Loading the decoder…", ready_text]
    # The phases happen in order and the timings say so.
    timings = recorded_events(page, "ready")[0]["detail"]["timings"]
    assert 0 < timings["painted_ms"] < timings["python_ms"] < timings["ort_ms"]


def test_python_boots_from_the_builds_memory_snapshot(booted):
    """The worker's interpreter is restored from vendor/pyodide/snapshot.bin.gz, not started afresh; the
    worker's own milestones come in order."""
    page, _, log = booted
    python = recorded_events(page, "python")[0]["detail"]
    assert python["snapshot"] == "snapshot"
    worker = python["worker"]
    assert 0 < worker["snapshot_ms"] < worker["interpreter_ms"] < worker["python_ms"]
    assert any(url.endswith("/vendor/pyodide/snapshot.bin.gz") for url in log.urls)


def another_builds(route) -> dict:
    """This build's snapshot with another build id in its header (words 4 to 11)."""
    data = bytearray(gzip.decompress(route.fetch().body()))
    data[16] ^= 0xFF
    return {"status": 200, "body": gzip.compress(bytes(data), compresslevel=1)}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (another_builds, "fallback"),  # Pyodide refuses it: the worker starts without it
        (lambda route: {"status": 200, "body": gzip.compress(b"not a snapshot" * 5000)}, "fallback"),
        (lambda route: {"status": 200, "body": b"not even gzip"}, "fallback"),
        (lambda route: {"status": 404, "body": "missing"}, "none"),  # a build made without one
    ],
    ids=["another-build", "damaged", "not-gzip", "missing"],
)
def test_a_bad_or_missing_snapshot_is_ignored_and_python_boots_without_it(app, site, answer, expected):
    app.route("**/vendor/pyodide/snapshot.bin.gz", lambda route: route.fulfill(**answer(route)))
    page = AppPage(app)
    page.open(f"{site.url}?demo=shapes")
    assert recorded_events(app, "python")[0]["detail"]["snapshot"] == expected
    assert recorded_events(app, "error") == []
    mask = page.click(300, 200, (960, 640))  # the app works as it does booted from the snapshot
    assert mask["area_px"] > 0


def test_the_keyboard_help_and_the_buttons_name_the_keys_of_the_shortcut_table(booted):
    page, _, _ = booted
    table = page.evaluate(
        "import('./js/keys.js').then((k) => k.SHORTCUTS.map((row) => [k.listed(row.keys), row.does]))"
    )
    shown = page.evaluate(
        "[...document.querySelectorAll('#shortcuts dt')].map((dt) => "
        "[dt.textContent, dt.nextElementSibling.textContent])"
    )
    assert len(table) >= 12 and shown[-len(table) :] == table
    assert page.get_attribute("#redo", "title") == "Redo (Ctrl+Shift+Z or Ctrl+Y)"


def test_worker_has_numpy_pillow_and_msgpack(booted):
    page, _, _ = booted
    versions = recorded_events(page, "ready")[0]["detail"]["versions"]
    assert versions["numpy"] == "2.0.2"
    assert versions["pillow"] == "10.2.0"
    assert versions["msgpack"] == "1.2.4"
    assert versions["msgpack_implementation"] == "msgpack.fallback"  # our pure-Python wheel
    assert versions["python"] == "3.12.7" and versions["pyodide"] == "0.27.7"
    assert versions["onnxruntime_web"] == "1.30.0"


def test_onnx_model_returns_the_right_numbers(booted):
    page, _, _ = booted
    selftest = recorded_events(page, "ready")[0]["detail"]["selftest"]
    expected = selftest_model.expected(selftest_model.BOOT_INPUT)
    np.testing.assert_allclose(np.array(selftest["output"], dtype=np.float32), expected, atol=1e-6)
    assert (expected > 0).any() and (expected == 0).any()  # the check covers both sides of the relu


def test_page_is_cross_origin_isolated_and_threaded(booted):
    page, _, _ = booted
    assert page.evaluate("crossOriginIsolated") is True
    detail = recorded_events(page, "ready")[0]["detail"]
    assert detail["cross_origin_isolated"] is True
    cores = page.evaluate("navigator.hardwareConcurrency")
    assert detail["threads"] == min(4, cores)
    if cores > 1:
        assert detail["threads"] > 1


def test_no_request_leaves_the_origin(booted, site):
    _, _, requests_seen = booted
    assert requests_seen.foreign(site.origin) == []
    # The log does see the worker's own requests (packages, onnxruntime-web's WASM), so the check above
    # covers them too.
    seen = "\n".join(requests_seen.urls)
    for needle in ("pyodide.asm.wasm", "numpy-2.0.2", "ort-wasm-simd-threaded.wasm", "selftest.onnx"):
        assert needle in seen


@pytest.mark.parametrize(
    ("missing", "query"),
    [
        ("**/vendor/pyodide/pyodide.mjs", ""),
        ("**/vendor/py*/*", "?demo=shapes"),  # Pyodide: the demo's status lines do not hide the error
        ("**/vendor/**", ""),  # a site deployed without vendor/: the page's modules cannot load
    ],
)
def test_missing_runtime_shows_an_error_not_a_blank_page(app, site, missing, query):
    app.route(missing, lambda route: route.fulfill(status=404, body="missing"))
    app.goto(site.url + query)
    assert wait_until_settled(app) == "error"
    assert recorded_events(app, "error")[0]["detail"]["fatal"]
    assert app.inner_text("#status") == "The Python runtime is not on this server."
    assert "tools/vendor.py" in app.inner_text("#status-detail")
    assert app.locator("#canvas").is_visible()


def test_wrong_model_output_is_reported(app, site):
    def corrupt(route):
        check = route.fetch().json()
        check["expected"][0][0] += 1.0
        route.fulfill(json=check)

    app.route("**/vendor/selftest.json", corrupt)
    app.goto(site.url)
    assert wait_until_settled(app) == "error"
    assert "onnxruntime-web returned wrong numbers" in app.inner_text("#status")
    assert recorded_events(app, "error")[0]["detail"]["phase"] == "ort"


def test_host_without_headers_is_isolated_by_the_service_worker(browser):
    """On a static host that cannot send COOP/COEP, the service worker makes the page isolated after one reload."""
    server = SiteServer("--no-isolation-headers", build=False)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.add_init_script(EVENT_RECORDER)
        response = page.goto(server.url)
        assert "cross-origin-embedder-policy" not in response.headers
        assert wait_until_settled(page) == "ready", recorded_events(page, "error")
        assert page.evaluate("crossOriginIsolated") is True
        assert page.evaluate("navigator.serviceWorker.controller !== null") is True
        # The service worker adds the same policy as a host that sends headers: what a response carries...
        headers = page.evaluate("fetch('./index.html').then((r) => Object.fromEntries(r.headers))")
        for name, value in serve.SECURITY_HEADERS.items():
            assert headers.get(name.lower()) == value, name
        # ...and what the browser enforces: an inline script does not run.
        page.evaluate("""() => { const script = document.createElement('script');
            script.textContent = 'window.__inline = 1'; document.head.append(script); }""")
        assert page.evaluate("window.__inline") is None
        context.close()
    finally:
        server.stop()


@pytest.mark.parametrize("threads", ["Infinity", "-1", "abc"])
def test_any_threads_parameter_still_boots(browser, site, threads):
    """?threads=N caps onnxruntime-web's threads; a value that is not a sensible whole number is ignored."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(EVENT_RECORDER)
        page.goto(f"{site.url}?threads={threads}")
        assert wait_until_settled(page) == "ready", recorded_events(page, "error")
        ready = recorded_events(page, "ready")[0]["detail"]
        assert 1 <= ready["threads"] <= 4
    finally:
        context.close()
