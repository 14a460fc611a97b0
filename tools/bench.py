"""Benchmarks that print numbers (never pass/fail): run them and put the figures in your notes.

    python tools/bench.py boot [--runs 5] [--json]

boot   Cold start in headless Chromium (Debian's, as in the tests): each run is a fresh browser context (no
       HTTP cache, no IndexedDB), timed from navigation start to the image area painted, Python ready
       (numpy, Pillow, msgpack loaded in the worker) and onnxruntime-web ready (self-test model run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from browser import EVENT_RECORDER, SiteServer, launch_args, recorded_events, wait_until_settled


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"median": statistics.median(values), "min": min(values), "max": max(values)}
            for name, values in samples.items()}


def print_table(title: str, summary: dict[str, dict[str, float]], runs: int) -> None:
    print(f"\n{title} (ms, {runs} runs)")
    print(f"{'step':<34}{'median':>10}{'min':>10}{'max':>10}")
    for name, row in summary.items():
        print(f"{name:<34}{row['median']:>10.0f}{row['min']:>10.0f}{row['max']:>10.0f}")


def bench_boot(runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {}
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            for run in range(runs):
                context = browser.new_context()
                page = context.new_page()
                page.add_init_script(EVENT_RECORDER)
                page.goto(server.url)
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
                for name, value in row.items():
                    samples.setdefault(name, []).append(value)
                print(f"run {run + 1}/{runs}: painted {timings['painted_ms']:.0f} ms, Python {timings['python_ms']:.0f} ms, "
                      f"ORT {timings['ort_ms']:.0f} ms ({ready['threads']} threads)", flush=True)
                context.close()
            version = browser.version
            browser.close()
    finally:
        server.stop()
    summary = summarize(samples)
    print_table(f"boot, headless Chromium {version}, fresh context per run", summary, runs)
    return {"bench": "boot", "chromium": version, "runs": runs, "summary": summary, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", required=True)
    boot = sub.add_parser("boot", help="cold start of the page in headless Chromium")
    boot.add_argument("--runs", type=int, default=5, help="fresh browser contexts to time (default 5)")
    boot.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.bench == "boot":
        result = bench_boot(args.runs)
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
