"""Benchmarks that print numbers (never pass/fail): run them and put the figures in your notes.

    python tools/bench.py boot [--runs 5] [--json]
    python tools/bench.py encode [--model DIR ...] [--runs 3] [--json]
    python tools/bench.py pipeline [--photo WxH] [--view PX] [--runs 50] [--json]
    python tools/bench.py click [--demo SLUG ...] [--clicks 30] [--threads 1,0] [--json]

boot   Cold start in headless Chromium (Debian's, as in the tests): each run is a fresh browser context (no
       HTTP cache, no IndexedDB), timed from navigation start to the image area painted, Python ready
       (numpy, Pillow, msgpack loaded in the worker) and onnxruntime-web ready (self-test model run).
encode Per photo (the demo photos), tools/encode.py's time split into load, preprocess, session.run and
       write, for each model folder (default: every one in models/); our overhead beyond session.run;
       bundle bytes; and the time to read a bundle and expand it to float32 (what the app does per photo).
click  Click to mask painted in headless Chromium, on real mouse events: median and p90 over N clicks,
       split into feeds, decode, post-process, composite, send and paint (the worker's own timings), for
       each demo (default: the shapes demo with the baseline and with every other model) at 1 thread and
       at the most threads the page may use (0); plus main-thread long tasks over 50 ms while decoding.
pipeline  Everything a click costs except the decoder run, in CPython: feeds, taking the outputs,
       upsampling and thresholding at the view size, compositing the overlay, and (at the photo's full
       size) the mask, the cutout PNG and COCO export. The decoder's outputs come from one real run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from samtab_tools.browser import EVENT_RECORDER, SiteServer, launch_args, recorded_events, wait_until_settled


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {"median": statistics.median(values), "min": min(values), "max": max(values)}
        for name, values in samples.items()
    }


def print_table(title: str, summary: dict[str, dict[str, float]], runs: int) -> None:
    print(f"\n{title} (ms, {runs} runs)")
    print(f"{'step':<34}{'median':>10}{'min':>10}{'max':>10}")
    for name, row in summary.items():
        print(f"{name:<34}{row['median']:>10.0f}{row['min']:>10.0f}{row['max']:>10.0f}")


def bench_boot(runs: int, demo: str | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {}
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for run in range(runs):
                context = browser.new_context()
                page = context.new_page()
                page.add_init_script(
                    EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "photo", "opened", "mask"')
                )
                page.goto(server.url + (f"?demo={demo}" if demo else ""))
                if demo:
                    # A person clicks as soon as the photo shows: the click waits for Python, then decodes.
                    page.wait_for_function("window.__samtab_events.some(e => e.name == 'photo')", timeout=120_000)
                    box = page.locator("#canvas").bounding_box()
                    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.3)
                    page.wait_for_function(
                        "window.__samtab_events.some(e => e.name == 'mask' || e.name == 'error')", timeout=180_000
                    )
                state = wait_until_settled(page)
                if state != "ready":
                    raise SystemExit(f"run {run + 1}: the page ended in {state}: {recorded_events(page, 'error')}")
                ready = recorded_events(page, "ready")[0]["detail"]
                navigation = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
                timings = ready["timings"]
                row = {
                    "navigation → first byte": navigation["responseStart"],
                    "navigation → DOMContentLoaded": navigation["domContentLoadedEventEnd"],
                    "navigation → image area painted": timings["painted_ms"],
                    "navigation → Python ready": timings["python_ms"],
                    "navigation → ORT ready": timings["ort_ms"],
                    "  painted → Python ready": timings["python_ms"] - timings["painted_ms"],
                    "  Python ready → ORT ready": timings["ort_ms"] - timings["python_ms"],
                    "  worker: import + check packages": timings["worker"]["packages_ms"],
                    "  worker: ORT session create": ready["selftest"]["session_ms"],
                    "  worker: ORT self-test run": ready["selftest"]["run_ms"],
                }
                if demo:
                    first = {e["name"]: e["detail"]["t_ms"] for e in reversed(recorded_events(page))}
                    row["navigation → photo painted"] = first["photo"]
                    row["navigation → photo opened in the worker"] = first["opened"]
                    row["navigation → first mask painted"] = first["mask"]
                    row["  ORT ready → first mask"] = first["mask"] - timings["ort_ms"]
                    row["  first mask: decode"] = recorded_events(page, "mask")[0]["detail"]["latency_ms"]["decode"]
                for name, value in row.items():
                    samples.setdefault(name, []).append(value)
                print(
                    f"run {run + 1}/{runs}: painted {timings['painted_ms']:.0f} ms, "
                    f"Python {timings['python_ms']:.0f} ms, ORT {timings['ort_ms']:.0f} ms "
                    f"({ready['threads']} threads)",
                    flush=True,
                )
                context.close()
            version = browser.version
            browser.close()
    finally:
        server.stop()
    summary = summarize(samples)
    print_table(
        f"boot{f' with ?demo={demo}' if demo else ''}, headless Chromium {version}, fresh context per run",
        summary,
        runs,
    )
    return {"bench": "boot", "chromium": version, "runs": runs, "summary": summary, "samples": samples}


def bench_encode(model_dirs: list[Path], runs: int) -> dict:
    import tempfile

    from pyapp.bundle import read_bundle
    from samtab_tools import demos, encode

    photos = [demos.demo_source(demo) for demo in demos.DEMO_LIST]
    results = {}
    for model_dir in model_dirs:
        encoder = encode.Encoder(model_dir, encode.read_model_folder(model_dir), encode.choose_provider("cpu"))
        samples: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory() as out:
            encode.encode_photo(
                photos[0], encoder, Path(out), dtype="float16", force=True, preview_edge=2048
            )  # warm-up
            for _ in range(runs):
                for photo in photos:
                    result = encode.encode_photo(
                        photo, encoder, Path(out), dtype="float16", force=True, preview_edge=2048
                    )
                    total = sum(result.timings_ms.values())
                    for step, value in result.timings_ms.items():
                        samples.setdefault(step, []).append(value)
                    samples.setdefault("total", []).append(total)
                    samples.setdefault("overhead beyond run (%)", []).append(
                        100 * (total - result.timings_ms["run"]) / total
                    )
                    data = result.bundle.read_bytes()
                    started = time.perf_counter()
                    read_bundle(data).embeddings()
                    samples.setdefault("read + expand to float32", []).append((time.perf_counter() - started) * 1000)
                    samples.setdefault("bundle MiB", []).append(len(data) / 2**20)
        summary = summarize(samples)
        print_table(
            f"encode with {encoder.info.name} ({len(photos)} photos × {runs} runs, CPU)", summary, len(photos) * runs
        )
        results[encoder.info.name] = {"summary": summary, "samples": samples}
    return {"bench": "encode", "models": results}


LONG_TASKS = """
window.__longtasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longtasks.push(e.duration); })
  .observe({ type: "longtask", buffered: true });
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_click(demos_wanted: list[str], clicks: int, thread_settings: list[int]) -> dict:
    import random

    from playwright.sync_api import sync_playwright

    recorder = EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "mask", "opened"')
    results = {}
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for slug in demos_wanted:
                for threads in thread_settings:
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    page = context.new_page()
                    page.add_init_script(recorder)
                    page.add_init_script(LONG_TASKS)
                    page.goto(f"{server.url}?demo={slug}&threads={threads}")
                    page.wait_for_function(
                        "window.__samtab_events.some(e => e.name == 'opened' || e.name == 'error')", timeout=180_000
                    )
                    ready = recorded_events(page, "ready")
                    used = ready[0]["detail"]["threads"] if ready else "?"
                    box = page.locator("#canvas").bounding_box()
                    rng = random.Random(0)
                    page.evaluate("window.__longtasks = []")
                    for index in range(clicks):
                        if index % 5 == 0 and index:
                            page.keyboard.press("n")  # a fresh object now and then: first clicks and refinements
                        x = box["x"] + box["width"] * rng.uniform(0.1, 0.9)
                        y = box["y"] + box["height"] * rng.uniform(0.1, 0.9)
                        page.mouse.click(x, y, button="left" if rng.random() < 0.75 else "right")
                        page.wait_for_function(
                            f"window.__samtab_events.filter(e => e.name == 'mask').length > {index}", timeout=120_000
                        )
                    masks = [e["detail"]["latency_ms"] for e in recorded_events(page, "mask")]
                    long_tasks = page.evaluate("window.__longtasks")
                    samples: dict[str, list[float]] = {}
                    for latency in masks:
                        for step in ("total", "feeds", "decode", "postprocess", "composite", "send", "python", "paint"):
                            samples.setdefault(step, []).append(latency[step])
                    label = f"{slug}, {used} thread{'s' if used != 1 else ''}"
                    summary = {
                        name: {"median": statistics.median(v), "p90": percentile(v, 0.9)} for name, v in samples.items()
                    }
                    print(f"\nclick to mask painted: {label} ({len(masks)} clicks, ms)")
                    print(f"{'step':<14}{'median':>10}{'p90':>10}")
                    for name, row in summary.items():
                        print(f"{name:<14}{row['median']:>10.1f}{row['p90']:>10.1f}")
                    print(
                        f"main-thread long tasks > 50 ms: {sum(d > 50 for d in long_tasks)} "
                        f"(longest {max(long_tasks, default=0):.0f} ms)"
                    )
                    results[label] = {
                        "summary": summary,
                        "long_tasks_over_50ms": sum(d > 50 for d in long_tasks),
                        "longest_task_ms": max(long_tasks, default=0),
                    }
                    context.close()
            browser.close()
    finally:
        server.stop()
    return {"bench": "click", "results": results}


def bench_pipeline(photo: tuple[int, int], view: int, runs: int, model_dir: Path) -> dict:
    """The app's own path (pyapp.app.App, as the browser worker drives it) for one click, minus the decoder."""
    import numpy as np
    from PIL import Image

    from pyapp import app as app_module
    from pyapp import contract
    from pyapp.bundle import read_bundle, write_bundle
    from pyapp.runner import OnnxRuntimeRunner
    from samtab_tools import modelio

    width, height = photo
    info = modelio.read_model_folder(model_dir)
    rng = np.random.default_rng(0)
    embeddings = {n: rng.standard_normal(s).astype(np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    data = write_bundle(embeddings, width=width, height=height, image_sha256="0" * 64, model_name=info.name)
    runner = OnnxRuntimeRunner(model_dir / info.files["decoder"])
    picture = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    app = app_module.App()
    app.max_view_edge = view  # (setting the module's MAX_VIEW_EDGE did nothing: the size was fixed at 1024)
    started = time.perf_counter()
    app.open(read_bundle(data), info.name, runner.input_names, picture, photo_name="bench.jpg")
    open_ms = (time.perf_counter() - started) * 1000
    view_w, view_h = app.view_size
    app.click(view_w * 0.4, view_h * 0.5, view_w, view_h)
    first = app.next_decode()
    outputs = runner.run(first.feeds)
    app.accept(first, outputs)
    app.render()
    samples: dict[str, list[float]] = {}

    def timed(name, fn):
        started = time.perf_counter()
        result = fn()
        samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result

    for index in range(runs):
        t0 = time.perf_counter()
        x, include = view_w * (0.3 + 0.4 * index / runs), index % 3 != 2
        timed("map the click", lambda x=x, include=include: app.click(x, view_h * 0.6, view_w, view_h, include=include))
        decode = timed("feeds", app.next_decode)
        timed("take outputs", lambda decode=decode: app.accept(decode, outputs))
        timed(
            f"upsample + threshold at view {view_w}x{view_h}",
            lambda decode=decode: app.step_mask(decode.step, view_w, view_h),
        )
        pixels = timed("composite (overlay + prompt)", app.render)
        timed("frame bytes", pixels.tobytes)
        samples.setdefault("click total (all but the decoder)", []).append((time.perf_counter() - t0) * 1000)
    for _ in range(max(3, runs // 10)):
        timed(f"mask at full size {width}x{height}", lambda: app.segmenter.mask(app.segmenter.objects.current))
        timed("mask PNG at full size", app.export_mask)
        timed("cutout PNG at full size", app.export_cutout)
        timed("COCO JSON (RLE)", app.export_coco)
    summary = summarize(samples)
    print(f"\nopening the photo (bundle read + expand to float32, view-size photo): {open_ms:.0f} ms")
    print_table(
        f"pipeline in CPython (pyapp.app), photo {width}x{height}, view {view_w}x{view_h}, "
        f"decoder outputs of {info.name}",
        summary,
        runs,
    )
    return {"bench": "pipeline", "photo": photo, "view": [view_w, view_h], "open_ms": open_ms, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", required=True)
    boot = sub.add_parser("boot", help="cold start of the page in headless Chromium")
    boot.add_argument("--runs", type=int, default=5, help="fresh browser contexts to time (default 5)")
    boot.add_argument("--demo", metavar="SLUG", help="open this demo and click as soon as its photo shows")
    boot.add_argument("--json", action="store_true", help="also print the results as JSON")
    encode = sub.add_parser("encode", help="tools/encode.py per photo, by step")
    encode.add_argument(
        "--model", action="append", type=Path, metavar="DIR", help="a model folder (default: every folder in models/)"
    )
    encode.add_argument("--runs", type=int, default=3, help="passes over the demo photos (default 3)")
    encode.add_argument("--json", action="store_true", help="also print the results as JSON")
    pipeline = sub.add_parser("pipeline", help="a click's cost outside the decoder, in CPython")
    pipeline.add_argument("--photo", default="4032x3024", help="photo size WxH (default a 12 MP phone photo)")
    pipeline.add_argument("--view", type=int, default=1024, help="long edge of the view in pixels (default 1024)")
    pipeline.add_argument("--runs", type=int, default=50)
    pipeline.add_argument("--model", type=Path, default=None, help="model folder (default models/baseline)")
    pipeline.add_argument("--json", action="store_true")
    click = sub.add_parser("click", help="click to mask painted in headless Chromium")
    click.add_argument(
        "--demo",
        action="append",
        metavar="SLUG",
        help="demo slug (default: shapes with the baseline and with every other model)",
    )
    click.add_argument("--clicks", type=int, default=30)
    click.add_argument("--threads", default="1,0", help="comma-separated thread caps; 0 means no cap (default 1,0)")
    click.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.bench == "click":
        from samtab_tools import demos

        slugs = args.demo or ["shapes"] + [f"shapes-{m.name}" for m in demos.model_folders()[1:]]
        result = bench_click(slugs, args.clicks, [int(t) for t in args.threads.split(",")])
    elif args.bench == "pipeline":
        from samtab_tools import demos

        size = tuple(int(v) for v in args.photo.lower().split("x"))
        result = bench_pipeline(size, args.view, args.runs, args.model or demos.BASELINE)
    elif args.bench == "boot":
        result = bench_boot(args.runs, args.demo)
    elif args.bench == "encode":
        from samtab_tools import demos

        result = bench_encode(args.model or demos.model_folders(), args.runs)
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
