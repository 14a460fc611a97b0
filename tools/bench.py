"""Benchmarks that print numbers (never pass/fail): run them and put the figures in your notes.

    python tools/bench.py boot [--runs 5] [--json]
    python tools/bench.py encode [--model DIR ...] [--runs 3] [--json]
    python tools/bench.py pipeline [--photo WxH] [--view PX] [--runs 50] [--json]
    python tools/bench.py everything [--demo SLUG ...] [--grid 16,32] [--no-browser] [--json]
    python tools/bench.py click [--demo SLUG ...] [--clicks 30] [--threads 1,0] [--json]
    python tools/bench.py collection [--photos 200] [--objects 3] [--runs 3] [--json]
    python tools/bench.py click --vs-js [--demo rocket-sam2.1-tiny-random] [--clicks 24] [--rounds 3]
                                [--threads 2] [--pattern plain|rest|rest-away|press] [--hover|--no-hover]
                                [--look 1000] [--json]

boot   Start-up in headless Chromium (Debian's, as in the tests): each run is a fresh browser context (no
       HTTP cache, no IndexedDB: a first visit), then a reload in it (a second visit), timed from navigation
       start to the image area painted, Python ready (numpy, Pillow, msgpack and pyapp loaded in the
       worker), onnxruntime-web ready (self-test model run), with the worker's own milestones; with --demo,
       the photo clicked as soon as it shows, to the first mask painted. A waterfall per run and visit,
       then the medians.
collection  A synthetic collection of --photos photos (the coffee demo's bundle and preview under as many
       names; --objects objects each, ellipses, some with a class), its session opened in the page with Open
       session, then the whole collection exported: "COCO (all)" and "YOLO (all)" clicked, timed to the
       download, --runs times (median); beside the same exports in CPython (pyapp.collection).
encode Per photo (the demo photos), tools/encode.py's time split into load, preprocess, session.run and
       write, for each model folder (default: every one in models/); our overhead beyond session.run;
       bundle bytes; and the time to read a bundle and expand it to float32 (what the app does per photo).
click  Click to mask painted in headless Chromium, on real mouse events: median and p90 over N clicks,
       split into feeds, decode, post-process, composite, send and paint (the worker's own timings), for
       each demo (default: the shapes demo with the baseline and with every other model) at 1 thread and
       at the most threads the page may use (0); plus main-thread long tasks over 50 ms while decoding.
       --vs-js: samtab against ../shared/jsref (a plain-JS page: one onnxruntime-web session, tensors built
       once; read its README) on the same decoder file, bundle and thread count, the two alternating in one
       browser, each run in a fresh context: both medians and p90s per round and over all rounds, the ratio
       samtab/jsref, how many clicks a speculation answered, and samtab's steps. --pattern is how samtab's
       pointer moves: plain (move and click at once; hover preview off unless --hover), rest (rest 300 ms
       on the point, then click it), rest-away (rest 300 ms, then click at once 40-120 CSS px away) or
       press (no rest; the button held 100 ms, as a person clicks: the decode starts at the press); the
       hover preview is on for all but plain, since the speculation needs it. jsref clicks on its own.
everything  Segment everything (issue 15) on each demo at each grid, in CPython and in the page (--no-browser:
       CPython only): decoder runs, prompts/s, time to the first candidate kept and to the last mask.
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

from samtab_tools.browser import (
    EVENT_RECORDER,
    ROOT,
    JsRefServer,
    SiteServer,
    launch_args,
    recorded_events,
    wait_until_settled,
    zoom_page,
)


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


def boot_visit(page, url: str, demo: str | None) -> dict[str, float]:
    """One visit: navigate (or reload), click the photo as soon as it shows, and read every milestone."""
    page.goto(url)
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
        raise SystemExit(f"the page ended in {state}: {recorded_events(page, 'error')}")
    ready = recorded_events(page, "ready")[0]["detail"]
    python = recorded_events(page, "python")[0]["detail"]
    navigation = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    timings, worker = ready["timings"], python["worker"]
    row = {
        "navigation → first byte": navigation["responseStart"],
        "navigation → DOMContentLoaded": navigation["domContentLoadedEventEnd"],
        "navigation → image area painted": timings["painted_ms"],
        "navigation → Python ready": timings["python_ms"],
        "navigation → ORT ready": timings["ort_ms"],
        "  worker: snapshot fetched + inflated": worker.get("snapshot_ms", float("nan")),
        "  worker: Pyodide + packages loaded": worker["interpreter_ms"],
        "  worker: pyapp imported (Python ready)": worker["python_ms"],
        "  worker: ORT self-test session made": timings["worker"]["ort_session_ms"],
        "  worker: ORT session create": ready["selftest"]["session_ms"],
        "  Python ready → ORT ready": timings["ort_ms"] - timings["python_ms"],
        "booted from a snapshot (1 = yes)": float(python["snapshot"] == "snapshot"),
    }
    if demo:
        first = {e["name"]: e["detail"]["t_ms"] for e in reversed(recorded_events(page))}
        row["navigation → photo painted"] = first["photo"]
        row["navigation → photo opened in the worker"] = first["opened"]
        row["navigation → first mask painted"] = first["mask"]
        row["  ORT ready → first mask"] = first["mask"] - timings["ort_ms"]
        row["  first mask: decode"] = recorded_events(page, "mask")[0]["detail"]["latency_ms"]["decode"]
    return row


def bench_boot(runs: int, demo: str | None = None) -> dict:
    """Each run: a fresh context (first visit: no HTTP cache, no service worker), then a reload in it (second
    visit). A waterfall per run and visit, then the medians."""
    from playwright.sync_api import sync_playwright

    visits = ("first visit", "second visit")
    samples: dict[str, dict[str, list[float]]] = {visit: {} for visit in visits}
    server = SiteServer()
    url = server.url + (f"?demo={demo}" if demo else "")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for run in range(runs):
                context = browser.new_context()
                page = context.new_page()
                page.add_init_script(
                    EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "photo", "opened", "mask"')
                )
                for visit in visits:
                    row = boot_visit(page, url, demo)
                    for name, value in row.items():
                        samples[visit].setdefault(name, []).append(value)
                    print(f"\nrun {run + 1}/{runs}, {visit}:", flush=True)
                    for name, value in row.items():
                        print(f"  {name:<44}{value:>8.0f}", flush=True)
                context.close()
            version = browser.version
            browser.close()
    finally:
        server.stop()
    summaries = {visit: summarize(samples[visit]) for visit in visits}
    for visit in visits:
        print_table(
            f"boot{f' with ?demo={demo}' if demo else ''}, {visit}, headless Chromium {version}",
            summaries[visit],
            runs,
        )
    return {"bench": "boot", "chromium": version, "runs": runs, "summary": summaries, "samples": samples}


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


def bench_encode_ray(model_dirs: list[Path], actors: int, copies: int) -> dict:
    """Photos per second: samtab-encode's serial run (one session, onnxruntime's threads on every core) beside
    --ray with `actors` actors on a Ray of this machine (started first, its start-up timed apart), on `copies`
    copies of each demo photo (new names, so none is skipped); the two outputs compared byte for byte."""
    import shutil
    import tempfile

    import ray

    from samtab_tools import demos, encode, encode_ray

    started = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="ERROR")
    startup_s = time.perf_counter() - started
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        photos = []
        for demo in demos.DEMO_LIST:
            source = demos.demo_source(demo)
            for copy in range(copies):
                photos.append(folder / f"{copy:02d}-{source.name}")
                shutil.copyfile(source, photos[-1])
        for model_dir in model_dirs:
            timings = {}
            for how in ("serial", "ray"):
                out = Path(scratch) / f"{model_dir.name}-{how}"
                started = time.perf_counter()
                if how == "serial":
                    done = encode.encode_all(photos, model_dir, out, progress=False)
                else:
                    done = encode_ray.encode_all(photos, model_dir, out, actors=actors, progress=False)
                timings[how] = time.perf_counter() - started
                assert all(r.status == "encoded" for r in done), [r.message for r in done if r.status != "encoded"]
            same = all(
                (Path(scratch) / f"{model_dir.name}-serial" / name.name).read_bytes() == name.read_bytes()
                for name in (Path(scratch) / f"{model_dir.name}-ray").iterdir()
            )
            name = encode.read_model_folder(model_dir).name
            print(
                f"{name}: {len(photos)} photos: serial {len(photos) / timings['serial']:.2f} photos/s "
                f"({timings['serial']:.1f} s), Ray with {actors} actors {len(photos) / timings['ray']:.2f} photos/s "
                f"({timings['ray']:.1f} s): {timings['serial'] / timings['ray']:.2f}x; outputs identical: {same}"
            )
            results[name] = {"photos": len(photos), **{f"{k}_s": v for k, v in timings.items()}, "identical": same}
    print(f"Ray started in {startup_s:.1f} s (not counted above), {ray.cluster_resources().get('CPU', 0):g} CPUs")
    ray.shutdown()
    return {"bench": "encode-ray", "actors": actors, "ray_startup_s": startup_s, "models": results}


def synthetic_collection(photos: int, objects: int, seed: int = 0):
    """(index, session) of `photos` photos, the coffee demo's bundle and preview under as many names, each with
    `objects` ellipses at the demo's size, every other one given a class; the first photo has none (it is
    the one the page opens)."""
    import numpy as np

    from pyapp import collection

    demo = json.loads((ROOT / "site" / "demos" / "coffee" / "demo.json").read_text())
    width, height = demo["width"], demo["height"]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    classes = ["cup", "saucer", "spoon"]
    entries, work = [], {}
    for index in range(photos):
        name = f"photo-{index:04d}.png"
        entries.append(
            collection.Photo(name, width, height, None, f"../coffee/{demo['bundle']}", f"../coffee/{demo['preview']}")
        )
        if index == 0:
            continue
        labelled = []
        for number in range(objects):
            cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
            ry, rx = rng.uniform(0.05, 0.2) * height, rng.uniform(0.05, 0.2) * width
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            label = classes[number % len(classes)] if number % 2 == 0 else None
            labelled.append(collection.Labelled.of(f"Object {number + 1}", label, mask))
        work[name] = collection.PhotoWork(None, "in progress", [], labelled)
    index_ = collection.Collection(f"{photos} photos", demo["model_name"], entries, classes)
    return index_, collection.Session(index_.name, index_.model, classes, work, None)


def bench_collection(photos: int, objects: int, runs: int) -> dict:
    """The whole collection's exports: in the page (clicked, to the download) and in CPython."""
    import shutil
    import statistics
    import tempfile

    from playwright.sync_api import sync_playwright

    from pyapp import collection

    index, session = synthetic_collection(photos, objects)
    folder = ROOT / "site" / "demos" / "bench-collection"  # (site/demos/ is generated, not committed)
    folder.mkdir(exist_ok=True)
    (folder / "collection.json").write_text(json.dumps(index.document()))
    results: dict = {"photos": photos, "objects": objects, "page": {}, "cpython": {}}
    for what in ("coco", "yolo"):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            if what == "coco":
                json.dumps(collection.coco(index, session))  # RLE, as the page's COCO (all)
            else:
                collection.yolo_zip(index, session, tolerance=1.0)
            times.append(time.perf_counter() - started)
        results["cpython"][what] = statistics.median(times)
    recorder = EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "opened", "session", "export"')
    server = SiteServer()
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as scratch:
            saved = Path(scratch) / "session.json"
            saved.write_text(json.dumps(session.document()))
            browser = playwright.chromium.launch(**launch_args())
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.add_init_script(recorder)
            page.goto(f"{server.url}?collection=demos/bench-collection/collection.json")
            page.wait_for_function("window.__samtab_events.some(e => e.name == 'opened')", timeout=180_000)
            page.set_input_files("#session-input", str(saved))
            page.wait_for_function("window.__samtab_events.filter(e => e.name == 'opened').length > 1", timeout=60_000)
            page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
            for what in ("coco", "yolo"):
                times, size = [], 0
                for _ in range(runs):
                    started = time.perf_counter()
                    with page.expect_download(timeout=300_000) as caught:
                        page.click(f"#collection-{what}")
                    size = Path(caught.value.path()).stat().st_size
                    times.append(time.perf_counter() - started)
                results["page"][what] = {"median_s": statistics.median(times), "runs_s": times, "bytes": size}
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"collection: {photos} photos x {objects} objects ({photos - 1} photos with objects), {runs} runs, median")
    for what in ("coco", "yolo"):
        page_s, megabytes = results["page"][what]["median_s"], results["page"][what]["bytes"] / 1e6
        print(
            f"  {what.upper():4}  page {page_s:6.2f} s (click to download, {megabytes:.1f} MB)"
            f"   CPython {results['cpython'][what]:6.2f} s   page/CPython {page_s / results['cpython'][what]:.1f}x"
        )
    return {"bench": "collection", **results}


def bench_encode_tab(slug: str, threads_list: list[int], runs: int) -> dict:
    """A person's photo encoded in the tab (js/encode.js, site/encoder-worker.js) with the model of demo `slug`:
    per thread count, `runs` photos in one fresh page each (the first run downloads the encoder and makes its
    session; later runs in the same page reuse them); the encoder's worker's memory after the encodes
    (performance.measureUserAgentSpecificMemory: WebAssembly memory only grows, so this is its peak); beside
    samtab-encode --web-encoder on the CPU (same encoder file, same photos), its peak RSS included."""
    import resource
    import shutil
    import subprocess
    import tempfile

    from playwright.sync_api import sync_playwright

    from samtab_tools import demos

    recorder = EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "opened", "encoded"')
    sources = [demos.demo_source(demo) for demo in demos.DEMO_LIST if demo.source != "synthetic"][:runs]
    results: dict = {"tab": {}, "cpu": {}}
    with tempfile.TemporaryDirectory() as work:
        photos = []
        for index, source in enumerate(sources):  # names of one's own: no demo bundle is found for them
            photos.append(Path(work) / f"mine-{index}{source.suffix}")
            shutil.copyfile(source, photos[-1])
        server = SiteServer()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**launch_args())
                for threads in threads_list:
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = context.new_page()
                    page.add_init_script(recorder)
                    page.goto(f"{server.url}?demo={slug}&threads={threads}")
                    page.wait_for_function("window.__samtab_events.some(e => e.name == 'opened')", timeout=180_000)
                    rows = []
                    for index, photo in enumerate(photos):
                        page.set_input_files("#file-input", str(photo))
                        if index == 0:
                            go = page.locator("#encode-go")
                            page.wait_for_function("!document.getElementById('encode-bar').hidden", timeout=60_000)
                            if go.is_visible():
                                go.click()
                        page.wait_for_function(
                            f"window.__samtab_events.filter(e => e.name == 'encoded').length > {index}",
                            timeout=600_000,
                        )
                        rows.append(recorded_events(page, "encoded")[index]["detail"])
                    memory = page.evaluate(
                        """async () => {
                          if (!performance.measureUserAgentSpecificMemory) return null;
                          const result = await performance.measureUserAgentSpecificMemory();
                          let worker = 0;
                          for (const entry of result.breakdown) {
                            if (entry.attribution.some((a) => (a.url || "").includes("encoder-worker.js"))) {
                              worker += entry.bytes;
                            }
                          }
                          return { total: result.bytes, worker };
                        }"""
                    )
                    label = f"{threads} thread{'s' if threads != 1 else ''}"
                    results["tab"][label] = {"runs": rows, "memory": memory}
                    first, later = rows[0], rows[1:]
                    median_run = statistics.median(r["run_ms"] for r in rows)
                    print(
                        f"in the tab, {label} ({rows[0]['provider']}): first photo: download {first['download_ms']} ms,"
                        f" session {first['session_ms']} ms, run {first['run_ms']} ms; run median over "
                        f"{len(rows)} photos {median_run:.0f} ms (later photos: "
                        f"{', '.join(str(r['run_ms']) for r in later) or '-'} ms); encoder worker's memory "
                        + (
                            f"{memory['worker'] / 2**20:.0f} MiB (page and workers {memory['total'] / 2**20:.0f} MiB)"
                            if memory
                            else "not measurable"
                        ),
                        flush=True,
                    )
                    context.close()
                browser.close()
        finally:
            server.stop()
        folder = ROOT / "site" / "demos" / slug
        model = (folder / json.loads((folder / "demo.json").read_text())["model"]).resolve()
        model_dir = ROOT / "models" / model.name
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        run = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "encode.py"), *map(str, photos), "--model", str(model_dir)]
            + ["--out", str(Path(work) / "cpu"), "--web-encoder", "--provider", "cpu", "--quiet"],
            capture_output=True,
            text=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        lines = [line for line in run.stdout.splitlines() if line.startswith("encode: encoded")]
        results["cpu"] = {"lines": lines, "peak_rss_mib": max(peak, before) / 1024}
        print(f"samtab-encode --web-encoder on the CPU (onnxruntime's default threads): {'; '.join(lines)}")
        print(f"  its peak RSS: {max(peak, before) / 1024:.0f} MiB (the whole process, Python and onnxruntime)")
    return {"bench": "encode-tab", "demo": slug, **results}


LONG_TASKS = """
window.__longtasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longtasks.push(e.duration); })
  .observe({ type: "longtask", buffered: true });
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def click_plan(clicks: int, seed: int = 0, per_object: int = 5):
    """The benchmarks' clicks, the same every run: (start a fresh object first, x and y as fractions of the
    canvas, mouse button). A fresh object every `per_object` clicks, so first clicks and refinements both
    count. Five per object: a quarter of the clicks are right-clicks (exclude). Three per object, as jsref
    clicks (its README): the third is the exclude, so both pages decode prompts of the same sizes."""
    import random

    rng = random.Random(seed)
    for index in range(clicks):
        fresh = index % per_object == 0 and index > 0
        x, y = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        if per_object == 3:
            button = "right" if index % 3 == 2 else "left"
        else:
            button = "left" if rng.random() < 0.75 else "right"
        yield fresh, x, y, button


CLICK_STEPS = (
    "total",
    "feeds",
    "decode",
    "decode.tensors",  # the edge's split of the decode: tensors in, onnxruntime-web's run, outputs back
    "decode.run",
    "decode.outputs",
    "postprocess",
    "composite",
    "detail",  # zoomed in: the part shown, drawn from the photo's own pixels (pyapp.frames.Frames.detail)
    "send",
    "python",
    "paint",
)


def print_steps(title: str, latencies: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median and p90 of each step of the mask events' latency_ms (ms), printed as a table and returned."""
    samples: dict[str, list[float]] = {}
    for latency in latencies:
        for step in CLICK_STEPS:
            if step in latency:
                samples.setdefault(step, []).append(latency[step])
    summary = {name: {"median": statistics.median(v), "p90": percentile(v, 0.9)} for name, v in samples.items()}
    print(f"\n{title}")
    print(f"{'step':<14}{'median':>10}{'p90':>10}")
    for name, row in summary.items():
        print(f"{name:<14}{row['median']:>10.1f}{row['p90']:>10.1f}")
    return summary


def visible_box(page) -> dict:
    """The part of the canvas that shows (zoomed in, the canvas's box is larger than the photo area)."""
    canvas = page.locator("#canvas").bounding_box()
    area = page.locator("#image-area").bounding_box()
    x0, y0 = max(canvas["x"], area["x"] + 2), max(canvas["y"], area["y"] + 2)
    x1 = min(canvas["x"] + canvas["width"], area["x"] + area["width"] - 2)
    y1 = min(canvas["y"] + canvas["height"], area["y"] + area["height"] - 2)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def bench_click(demos_wanted: list[str], clicks: int, thread_settings: list[int], zooms: list[float | None]) -> dict:
    """Clicks on each demo at each thread cap and zoom (None: the whole photo; a percentage: a photo pixel
    that share of a screen pixel, around the middle), each run in a fresh context."""
    from playwright.sync_api import sync_playwright

    recorder = EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "mask", "opened"')
    results = {}
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for slug in demos_wanted:
                for threads in thread_settings:
                    for zoom in zooms:
                        context = browser.new_context(viewport={"width": 1400, "height": 900})
                        page = context.new_page()
                        page.add_init_script(recorder)
                        page.add_init_script(LONG_TASKS)
                        page.goto(f"{server.url}?demo={slug}&threads={threads}")
                        page.wait_for_function(
                            "window.__samtab_events.some(e => e.name == 'opened' || e.name == 'error')",
                            timeout=180_000,
                        )
                        ready = recorded_events(page, "ready")
                        used = ready[0]["detail"]["threads"] if ready else "?"
                        if zoom is not None:
                            opened = recorded_events(page, "opened")[0]["detail"]
                            zoom_page(page, zoom, opened["width"])
                        box = visible_box(page)
                        page.evaluate("window.__longtasks = []")
                        for index, (fresh, fx, fy, button) in enumerate(click_plan(clicks)):
                            if fresh:
                                page.keyboard.press("n")
                            x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
                            page.mouse.click(x, y, button=button)
                            page.wait_for_function(
                                f"window.__samtab_events.filter(e => e.name == 'mask').length > {index}",
                                timeout=120_000,
                            )
                        masks = [e["detail"]["latency_ms"] for e in recorded_events(page, "mask")]
                        long_tasks = page.evaluate("window.__longtasks")
                        shown = "whole photo" if zoom is None else f"zoomed to {zoom:g} %"
                        label = f"{slug}, {used} thread{'s' if used != 1 else ''}, {shown}"
                        summary = print_steps(f"click to mask painted: {label} ({len(masks)} clicks, ms)", masks)
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


PATTERNS = {
    "plain": "move and click at once",
    "rest": "move to the point, rest 300 ms, click there",
    "rest-away": "move to a point, rest 300 ms, click at once 40-120 CSS px away",
    "press": "move, press at once, release 100 ms later as a person clicks: the decode starts at the press",
}
REST_MS = 300
# How long a person's click holds the button down (mouse clicks: ~80-130 ms).
PRESS_MS = 100


def demo_files(slug: str) -> tuple[Path, Path, Path]:
    """A built demo's bundle, preview and the decoder file its page loads."""
    from samtab_tools import demos, modelio

    index = json.loads((demos.DEMOS / "index.json").read_text())
    entry = next((d for d in index["demos"] if d["slug"] == slug), None)
    if entry is None:
        raise SystemExit(f"There is no demo {slug!r}; the demos are: {', '.join(d['slug'] for d in index['demos'])}.")
    model_dir = (demos.DEMOS / entry["model"]).resolve()
    info = modelio.read_model_folder(model_dir, parts=("decoder",))
    return demos.DEMOS / entry["bundle"], demos.DEMOS / entry["preview"], model_dir / info.files["decoder"]


def jsref_round(browser, jsref: JsRefServer, threads: int, clicks: int, timeout_s: float = 180) -> dict:
    """One run of the yardstick page in a fresh context: its RESULT line (ms: click_median_ms, click_p90_ms,
    decode_median_ms, ready_ms, ...)."""
    context = browser.new_context()
    page = context.new_page()
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text))
    page.on("pageerror", lambda error: lines.append(f"page error: {error}"))
    page.goto(jsref.page_url(threads, clicks))
    deadline = time.monotonic() + timeout_s
    while not any(line.startswith(("RESULT ", "page error: ")) for line in lines):
        if time.monotonic() > deadline:
            raise SystemExit(f"jsref gave no RESULT in {timeout_s:.0f} s; its console said: {lines[-8:]}")
        page.wait_for_timeout(100)
    context.close()
    found = next(line for line in lines if line.startswith(("RESULT ", "page error: ")))
    if not found.startswith("RESULT "):
        raise SystemExit(f"jsref failed: {found}")
    result = json.loads(found.removeprefix("RESULT "))
    if not result["coi"]:
        raise SystemExit("jsref's page was not cross-origin isolated (COOP/COEP), so it ran without threads.")
    return result


def away_point(x: float, y: float, box: dict, rng) -> tuple[float, float]:
    """A point of the canvas 40-120 CSS px from (x, y), where the pointer rests before clicking at (x, y)."""
    import math

    while True:
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(40, 120)
        ax, ay = x + distance * math.cos(angle), y + distance * math.sin(angle)
        if box["x"] + 2 < ax < box["x"] + box["width"] - 2 and box["y"] + 2 < ay < box["y"] + box["height"] - 2:
            return ax, ay


# The next samtab:mask event, awaited without polling the page: Playwright's wait_for_function polls on
# every animation frame, which keeps the page's frame clock running (a mask's own requestAnimationFrame then
# waits for its tick, 8 ms on average, measured) and costs CPU during the decode. jsref's page is not polled.
NEXT_MASK = """({mask: new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no samtab:mask in 120 s")), 120000);
  addEventListener("samtab:mask", (event) => { clearTimeout(timer); resolve(event.detail.clicks); }, {once: true});
  addEventListener("samtab:error", (event) => { clearTimeout(timer); reject(new Error(event.detail.message)); },
    {once: true});
})})"""


def samtab_round(
    browser, server: SiteServer, slug: str, threads: int, clicks: int, pattern: str, hover: bool, look_ms: int
):
    """One run of samtab in a fresh context with real mouse events in `pattern`, the first click `look_ms`
    after the photo opened: the mask events' details and the thread count the page reports."""
    import random

    from samtab_tools.browser import AppPage

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    app = AppPage(context.new_page())
    page = app.page
    try:
        page.add_init_script(LONG_TASKS)
        app.open(f"{server.url}?demo={slug}&threads={threads}")
        page.set_checked("#hover-preview", hover)
        box = page.locator("#canvas").bounding_box()
        page.wait_for_timeout(look_ms)
        page.evaluate("window.__longtasks = []")
        rng = random.Random(1)  # the resting points only: the clicks are click_plan's, as in every pattern
        for fresh, fx, fy, button in click_plan(clicks, per_object=3):
            if fresh:
                page.keyboard.press("n")
                app.wait_until_ready()
            x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
            next_mask = page.evaluate_handle(NEXT_MASK)
            if pattern == "plain":
                page.mouse.click(x, y, button=button)
            elif pattern == "press":
                page.mouse.move(x, y)
                page.mouse.down(button=button)
                page.wait_for_timeout(PRESS_MS)
                page.mouse.up(button=button)
            elif pattern == "rest":
                page.mouse.move(x, y)
                page.wait_for_timeout(REST_MS)
                page.mouse.down(button=button)
                page.mouse.up(button=button)
            else:
                page.mouse.move(*away_point(x, y, box, rng))
                page.wait_for_timeout(REST_MS)
                page.mouse.click(x, y, button=button)
            next_mask.evaluate("waiting => waiting.mask")
        masks = [event["detail"] for event in recorded_events(page, "mask")]
        used = recorded_events(page, "ready")[0]["detail"]["threads"]
        long_tasks = page.evaluate("window.__longtasks")
    except AssertionError as error:  # AppPage's account of what the page did instead
        raise SystemExit(f"samtab did not answer a click: {error}") from None
    finally:
        context.close()
    return masks, used, long_tasks


def bench_vs_js(
    slug: str, clicks: int, rounds: int, threads: int, pattern: str, hover: bool, look_ms: int = 1000
) -> dict:
    """samtab against the plain-JS yardstick page (../shared/jsref) on the same decoder file, bundle and
    thread count, alternating in one browser, each run in a fresh context."""
    from playwright.sync_api import sync_playwright

    from pyapp.bundle import BundleError, read_bundle

    server = SiteServer()  # builds what is missing first: the vendored onnxruntime-web, the demos
    try:
        bundle_path, preview, decoder = demo_files(slug)
        try:
            bundle = read_bundle(bundle_path.read_bytes())
        except BundleError as error:
            raise SystemExit(f"{bundle_path}: {error}") from None
        with JsRefServer(bundle, preview, decoder) as jsref, sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            print(
                f"click --vs-js: demo {slug} ({bundle.width}x{bundle.height}, {bundle.dtype} bundle), "
                f"decoder {decoder.relative_to(ROOT)}, {threads} threads, {clicks} clicks x {rounds} "
                f"round{'s' if rounds != 1 else ''}, headless Chromium {browser.version}\n"
                f"samtab's pointer: {pattern} ({PATTERNS[pattern]}), hover preview {'on' if hover else 'off'}\n"
                "latency: samtab = pointerup -> mask painted (the animation frame after the mask is drawn);\n"
                "         jsref = postMessage to its worker -> after the next requestAnimationFrame (its own clicks:\n"
                "         3 per object, no previous-mask refinement, a 256-px mask scaled)",
                flush=True,
            )
            runs = []
            for index in range(rounds):
                order = ("jsref", "samtab") if index % 2 == 0 else ("samtab", "jsref")  # neither always first
                run: dict = {}
                for which in order:
                    if which == "jsref":
                        run["jsref"] = jsref_round(browser, jsref, threads, clicks)
                    else:
                        masks, used, long_tasks = samtab_round(
                            browser, server, slug, threads, clicks, pattern, hover, look_ms
                        )
                        totals = [m["latency_ms"]["total"] for m in masks]
                        run["samtab"] = {
                            "median": statistics.median(totals),
                            "p90": percentile(totals, 0.9),
                            "threads": used,
                            "first": totals[0],
                            "long_tasks_over_50ms": sum(d > 50 for d in long_tasks),
                            "longest_task_ms": max(long_tasks, default=0),
                            "speculated": sum(bool(m.get("speculated")) for m in masks),
                            "speculated_clicks": [bool(m.get("speculated")) for m in masks],
                            "latency_ms": [m["latency_ms"] for m in masks],
                        }
                js, st = run["jsref"], run["samtab"]
                print(
                    f"round {index + 1}/{rounds}: jsref median {js['click_median_ms']:.1f} p90 "
                    f"{js['click_p90_ms']:.1f} ms (decode {js['decode_median_ms']:.1f}, ready {js['ready_ms']:.0f}) | "
                    f"samtab median {st['median']:.1f} p90 {st['p90']:.1f} ms ({st['threads']} threads, "
                    f"speculated {st['speculated']}/{clicks})",
                    flush=True,
                )
                runs.append(run)
            browser.close()
    finally:
        server.stop()
    summary = {
        "jsref": {
            "median": statistics.median(r["jsref"]["click_median_ms"] for r in runs),
            "p90": statistics.median(r["jsref"]["click_p90_ms"] for r in runs),
            "decode_median": statistics.median(r["jsref"]["decode_median_ms"] for r in runs),
        },
        "samtab": {
            "median": statistics.median(r["samtab"]["median"] for r in runs),
            "p90": statistics.median(r["samtab"]["p90"] for r in runs),
        },
        "speculated": sum(r["samtab"]["speculated"] for r in runs),
    }
    summary["ratio_median"] = summary["samtab"]["median"] / summary["jsref"]["median"]
    summary["ratio_p90"] = summary["samtab"]["p90"] / summary["jsref"]["p90"]
    # The price of Python is the plain pattern's: in the others a decoded click may wait on a speculation.
    summary["price"] = python_price(runs) if pattern == "plain" else None
    print(f"\nover {rounds} round{'s' if rounds != 1 else ''} (the median of the rounds' figures, ms)")
    print(f"{'page':<10}{'median':>10}{'p90':>10}")
    for page in ("jsref", "samtab"):
        print(f"{page:<10}{summary[page]['median']:>10.1f}{summary[page]['p90']:>10.1f}")
    target = {
        "plain": "issue 13 asked <= 1.05x; restated as the two lines below",
        "rest": "target <= 0.3x",
        "rest-away": "no target of its own",
        "press": "no target of its own; --no-hover: the same clicks decoded at the release",
    }[pattern]
    print(f"samtab / jsref, median: {summary['ratio_median']:.2f}x ({target})")
    if pattern == "rest-away":
        print(
            f"samtab / jsref, p90: {summary['ratio_p90']:.2f}x "
            "(target: p90 <= 1.3x samtab's plain click; `--pattern plain` measures that)"
        )
    price = summary["price"]
    if price is not None:
        print(
            'the price of Python on the same decoder (README, "Speed of a click"), medians of the rounds:\n'
            f"  decoder run, samtab's in its worker / jsref's, paired by round: {price['run_ratio']:.2f}x (rounds: "
            f"{', '.join(f'{r:.2f}' for r in price['run_ratios'])}; target <= 1.05x); samtab "
            f"{price['samtab_run']:.1f} ms, jsref {price['jsref_run']:.1f} ms\n"
            f"  Python's work on a click: {price['python']:.1f} ms (target <= 10 ms)\n"
            f"  a click beyond its run: samtab {price['samtab_beyond']:.1f} ms (per click), jsref "
            f"{price['jsref_beyond']:.1f} ms (its median click less its median run); jsref thresholds a 256-px "
            "mask and scales it, samtab upsamples the logits at the view's size, composites, outlines, marks"
        )
    print(f"clicks answered from a speculation: {summary['speculated']} of {clicks * rounds}")
    print(
        "samtab's main thread, tasks over 50 ms while clicking: "
        f"{sum(r['samtab']['long_tasks_over_50ms'] for r in runs)} "
        f"(longest {max(r['samtab']['longest_task_ms'] for r in runs):.0f} ms; target: none)"
    )
    firsts = [r["samtab"]["first"] for r in runs]
    summary["first_click"] = statistics.median(firsts)
    print(
        f"samtab's first click, {look_ms} ms after the photo opened: median {summary['first_click']:.1f} ms "
        f"(rounds: {', '.join(f'{v:.0f}' for v in firsts)}; target: no slower than the median click)"
    )
    shown = ("decode.run", "python", "paint")
    print(
        "  its steps (ms, by round): "
        + "; ".join(
            ", ".join(f"{k} {r['samtab']['latency_ms'][0].get(k, float('nan')):.0f}" for k in shown) for r in runs
        )
    )
    # Apart: a speculated click's decode ran before the click, so its steps do not add up to its total.
    groups: dict[str, list[dict]] = {}
    for run in runs:
        for latency, speculated in zip(run["samtab"]["latency_ms"], run["samtab"]["speculated_clicks"], strict=True):
            groups.setdefault("answered from a speculation" if speculated else "decoded at the click", []).append(
                latency
            )
    steps = {
        group: print_steps(f"samtab, click to mask painted, {group}, all rounds ({len(rows)} clicks, ms)", rows)
        for group, rows in groups.items()
    }
    return {
        "bench": "click-vs-js",
        "demo": slug,
        "decoder": str(decoder.relative_to(ROOT)),
        "bundle_dtype": bundle.dtype,
        "threads": threads,
        "clicks": clicks,
        "pattern": pattern,
        "hover_preview": hover,
        "rounds": runs,
        "summary": summary,
        "samtab_steps": steps,
    }


def python_price(runs: list[dict]) -> dict | None:
    """What samtab's click costs beyond jsref's on the same decoder, from the clicks decoded at the click
    (None if every click was answered from a speculation): the decoder's run in each page's worker (the
    same onnxruntime-web call, timed around it in both), paired by round, and what a click costs beyond the
    run: samtab's per click (its Python part on its own), jsref's its median click less its median run (it
    reports no more)."""
    rows = []
    for run in runs:
        decoded = [
            latency
            for latency, speculated in zip(run["samtab"]["latency_ms"], run["samtab"]["speculated_clicks"], strict=True)
            if not speculated and "decode.run" in latency
        ]
        if decoded:
            js = run["jsref"]
            samtab_run = statistics.median(d["decode.run"] for d in decoded)
            rows.append(
                {
                    "samtab_run": samtab_run,
                    "jsref_run": js["decode_median_ms"],
                    "python": statistics.median(d["python"] for d in decoded),
                    "samtab_beyond": statistics.median(d["total"] - d["decode.run"] for d in decoded),
                    "jsref_beyond": js["click_median_ms"] - js["decode_median_ms"],
                }
            )
    if not rows:
        return None
    price = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    price["run_ratios"] = [row["samtab_run"] / row["jsref_run"] for row in rows]
    price["run_ratio"] = statistics.median(price["run_ratios"])
    return price


def bench_everything(slugs: list[str], sides: list[int], browser: bool = True) -> dict:
    """Segment everything on each demo at each grid: in CPython (onnxruntime, 2 threads, masks at the photo's
    size) and in the page (the Everything button, ?everything=N, WASM with the page's threads): decoder runs,
    prompts/s, time to the first candidate kept and to the last mask."""
    import json as _json

    from pyapp import everything
    from pyapp.bundle import read_bundle
    from pyapp.runner import OnnxRuntimeRunner
    from pyapp.segmenter import Segmenter
    from pyapp.session import EVERYTHING_BATCH
    from samtab_tools.modelio import read_model_folder

    rows = []
    for slug in slugs:
        folder = ROOT / "site" / "demos" / slug
        info = _json.loads((folder / "demo.json").read_text())
        model_dir = (folder / info["model"]).resolve()
        model = read_model_folder(model_dir, parts=("decoder",))
        runner = OnnxRuntimeRunner(model_dir / model.files["decoder"], threads=2)
        bundle = read_bundle((folder / info["bundle"]).read_bytes())
        # Decoded one prompt a run, as tools/segment.py does, and in the page's batches when the decoder takes them.
        batches = [1, EVERYTHING_BATCH] if runner.prompt_batch else [1]
        for side, batch in [(side, batch) for side in sides for batch in batches]:
            segmenter = Segmenter(bundle, model.name, runner.input_names)
            run = everything.Everything(segmenter, everything.Settings(points_per_side=side))
            started, first = time.perf_counter(), None
            while run.pending:
                if run.add(runner.run(run.next_feeds(batch))) and first is None:
                    first = time.perf_counter() - started
            found = run.result()
            total = time.perf_counter() - started
            rows.append(
                {
                    "where": "CPython",
                    "demo": slug,
                    "grid": f"{side}x{side}",
                    "runs": run.runs,
                    "prompts/s": run.done / total,
                    "first candidate s": first,
                    "last mask s": total,
                    "masks": len(found),
                }
            )
            print(_row(rows[-1]), flush=True)
    if browser:
        rows += _everything_in_the_page(slugs, sides)
    return {"bench": "everything", "rows": rows}


def _row(row: dict) -> str:
    first = "-" if row["first candidate s"] is None else f"{row['first candidate s']:.1f}"
    return (
        f"{row['where']:<8} {row['demo']:<28} {row['grid']:>6} runs {row['runs']:>5}  {row['prompts/s']:6.1f}"
        f" prompts/s  first candidate {first:>6} s  last mask {row['last mask s']:6.1f} s  masks {row['masks']}"
    )


def _everything_in_the_page(slugs: list[str], sides: list[int]) -> list[dict]:
    import re

    from playwright.sync_api import sync_playwright

    rows = []
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for slug in slugs:
                for side in sides:
                    context = browser.new_context()
                    page = context.new_page()
                    page.add_init_script(EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "opened"'))
                    page.goto(f"{server.url}?demo={slug}&everything={side}")
                    page.wait_for_function("window.__samtab_events.some(e => e.name == 'opened')", timeout=120_000)
                    page.wait_for_selector("#everything:not([disabled])")
                    wait_until_settled(page)
                    page.keyboard.press("a")
                    page.wait_for_function(
                        "document.getElementById('status').textContent.startsWith('Segment everything:')",
                        timeout=1_800_000,
                    )
                    statuses = [e["detail"] for e in recorded_events(page, "status")]
                    running = [s for s in statuses if s["text"].startswith("Segmenting everything")]
                    start = running[0]["t_ms"]
                    kept = [s for s in running if int(re.search(r"(\d+) candidate", s["text"]).group(1)) > 0]
                    end = statuses[-1]
                    masks = int(re.search(r"everything: (\d+) mask", end["text"]).group(1))
                    runs = int(re.search(r"\((\d+) decoder run", end["text"]).group(1))
                    total = (end["t_ms"] - start) / 1000
                    rows.append(
                        {
                            "where": "browser",
                            "demo": slug,
                            "grid": f"{side}x{side}",
                            "runs": runs,
                            "prompts/s": side * side / total,
                            "first candidate s": (kept[0]["t_ms"] - start) / 1000 if kept else None,
                            "last mask s": total,
                            "masks": masks,
                        }
                    )
                    print(_row(rows[-1]), flush=True)
                    context.close()
            browser.close()
    finally:
        server.stop()
    return rows


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
    encode.add_argument(
        "--tab",
        metavar="DEMO",
        help="instead: a person's photo encoded in the tab with the model of this demo (e.g. "
        "shapes-sam2.1-tiny-random), with 1 and 2 threads, beside samtab-encode --web-encoder",
    )
    encode.add_argument(
        "--ray",
        type=int,
        metavar="ACTORS",
        help="instead: photos/s of samtab-encode serially and with --ray on this many actors (a Ray of this "
        "machine), over --runs copies of each demo photo",
    )
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
    click.add_argument("--clicks", type=int, help="clicks per run (default 30; with --vs-js 24)")
    click.add_argument(
        "--threads",
        help="comma-separated thread caps; 0 means no cap (default 1,0); with --vs-js one count, default 2",
    )
    click.add_argument(
        "--vs-js", action="store_true", help="against the plain-JS page ../shared/jsref, same decoder and bundle"
    )
    click.add_argument("--rounds", type=int, default=3, help="with --vs-js: runs of each page (default 3)")
    click.add_argument(
        "--pattern",
        choices=list(PATTERNS),
        default="plain",
        help="with --vs-js, samtab's pointer: " + "; ".join(f"{k}: {v}" for k, v in PATTERNS.items()),
    )
    click.add_argument(
        "--hover",
        action=argparse.BooleanOptionalAction,
        help="with --vs-js: the hover preview (default off for plain, on for rest and rest-away)",
    )
    click.add_argument(
        "--zoom",
        default="fit",
        help="comma-separated zooms to click at: fit (the whole photo) or a percentage of the photo's pixels, e.g. "
        "fit,100,400 (default fit; not with --vs-js)",
    )
    click.add_argument(
        "--look",
        type=int,
        default=1000,
        metavar="MS",
        help="with --vs-js: samtab's first click this long after the photo opened, as a person looks first (default "
        "1000: the decoder's warm-up fits in it; a person's is often later: from 3 s the service worker keeps "
        "the site for offline use, until the click holds it)",
    )
    click.add_argument("--json", action="store_true")
    collection_bench = sub.add_parser("collection", help="the whole collection's exports, in the page and CPython")
    collection_bench.add_argument("--photos", type=int, default=200)
    collection_bench.add_argument("--objects", type=int, default=3)
    collection_bench.add_argument("--runs", type=int, default=3)
    collection_bench.add_argument("--json", action="store_true")
    everything_bench = sub.add_parser("everything", help="segment everything, in CPython and in the page")
    everything_bench.add_argument("--demo", action="append", metavar="SLUG", help="default: shapes, SAM2.1 too")
    everything_bench.add_argument("--grid", default="16,32", help="points per side, comma-separated (default 16,32)")
    everything_bench.add_argument("--no-browser", action="store_true", help="CPython only")
    everything_bench.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.bench == "click" and args.vs_js:
        if args.demo and len(args.demo) > 1:
            parser.error("--vs-js compares one demo: give --demo once")
        try:
            threads = int(args.threads or 2)
        except ValueError:
            parser.error(f"--vs-js runs both pages at one thread count, not {args.threads!r}: give e.g. --threads 2")
        if threads < 1 or (args.clicks is not None and args.clicks < 1) or args.rounds < 1:
            parser.error("--threads, --clicks and --rounds must be at least 1 with --vs-js")
        hover = args.hover if args.hover is not None else args.pattern != "plain"
        slug = args.demo[0] if args.demo else "rocket-sam2.1-tiny-random"
        if args.look < 0:
            parser.error("--look is a time in ms: 0 or more")
        result = bench_vs_js(slug, args.clicks or 24, args.rounds, threads, args.pattern, hover, args.look)
    elif args.bench == "click":
        from samtab_tools import demos

        slugs = args.demo or ["shapes"] + [f"shapes-{m.name}" for m in demos.model_folders()[1:]]
        try:
            zooms = [None if z.strip() == "fit" else float(z) for z in args.zoom.split(",")]
        except ValueError:
            parser.error(f"--zoom takes fit or percentages, e.g. fit,100,400, not {args.zoom!r}")
        threads = [int(t) for t in (args.threads or "1,0").split(",")]
        result = bench_click(slugs, args.clicks or 30, threads, zooms)
    elif args.bench == "collection":
        result = bench_collection(args.photos, args.objects, args.runs)
    elif args.bench == "everything":
        slugs = args.demo or ["shapes", "shapes-sam2.1-tiny-random"]
        result = bench_everything(slugs, [int(v) for v in args.grid.split(",")], not args.no_browser)
    elif args.bench == "pipeline":
        from samtab_tools import demos

        size = tuple(int(v) for v in args.photo.lower().split("x"))
        result = bench_pipeline(size, args.view, args.runs, args.model or demos.BASELINE)
    elif args.bench == "boot":
        result = bench_boot(args.runs, args.demo)
    elif args.bench == "encode":
        from samtab_tools import demos

        if args.tab:
            result = bench_encode_tab(args.tab, [1, 2], args.runs)
        elif args.ray:
            result = bench_encode_ray(args.model or demos.model_folders(), args.ray, args.runs)
        else:
            result = bench_encode(args.model or demos.model_folders(), args.runs)
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
