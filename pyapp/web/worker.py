"""The worker's edge: messages with the page and onnxruntime-web. Runs only in Pyodide.

This is one of the few modules that touch `js`, `pyodide` or `pyscript`; the rest of pyapp is a pure core
that runs the same in CPython. The message protocol (page ↔ worker), all plain JSON-like objects:

    page → worker   {type: "boot", base: "<absolute URL of the site's root, ending in />"}
    worker → page   {type: "status", text, phase}           a step a person should see on the status line
                    {type: "ready", info: {...}}            versions, threads, self-test result, timings (ms)
                    {type: "error", phase, message, hint}   what went wrong and what to do
"""

from __future__ import annotations

import asyncio
import io
import sys
import time

import js
from pyodide.ffi import to_js

_xworker = None
# Keep a reference to running tasks: asyncio holds only weak ones.
_tasks: set[asyncio.Task] = set()
# Up to four onnxruntime-web threads: past that the decoder gains little and the page loses cores.
MAX_THREADS = 4


def _js_object(value):
    return to_js(value, dict_converter=js.Object.fromEntries)


def post(message: dict) -> None:
    _xworker.postMessage(_js_object(message))


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def check_python_packages() -> dict:
    """Import and exercise numpy, Pillow and msgpack the way the app will; return their versions."""
    import msgpack
    import numpy as np
    import PIL
    from PIL import Image

    half = np.arange(12, dtype=np.float16).reshape(3, 4) / 8
    unpacked = msgpack.unpackb(msgpack.packb({"t": half.tobytes(), "shape": [3, 4]}))
    full = np.frombuffer(unpacked["t"], "<f2").astype("<f4").reshape(unpacked["shape"])
    if not np.array_equal(full, half.astype(np.float32)):
        raise RuntimeError("numpy/msgpack round trip of an fp16 tensor changed its values")
    png = io.BytesIO()
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(png, "PNG")
    if Image.open(io.BytesIO(png.getvalue())).size != (8, 8):
        raise RuntimeError("Pillow could not read back the PNG it wrote")
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "msgpack": ".".join(map(str, msgpack.version)),
        "msgpack_implementation": msgpack.Unpacker.__module__,
    }


def ort_thread_count() -> int:
    """Threads need SharedArrayBuffer, which the browser grants only to cross-origin isolated pages."""
    if not getattr(js, "crossOriginIsolated", False):
        return 1
    return max(1, min(MAX_THREADS, int(js.navigator.hardwareConcurrency or 1)))


async def fetch_json(url: str):
    response = await js.fetch(url)
    if not response.ok:
        raise RuntimeError(f"{url} answered HTTP {response.status}")
    return (await response.json()).to_py()


async def run_selftest(ort, base: str) -> dict:
    """Create a session on the small self-test model and check its output against the known answer."""
    import numpy as np

    check = await fetch_json(base + "vendor/selftest.json")
    started = time.perf_counter()
    session = await ort.InferenceSession.create(
        base + "vendor/selftest.onnx", _js_object({"executionProviders": ["wasm"], "graphOptimizationLevel": "all"})
    )
    session_ms = _elapsed_ms(started)
    x = np.asarray(check["input"], dtype=np.float32)
    started = time.perf_counter()
    tensor = ort.Tensor.new("float32", js.Float32Array.new(to_js(x.tobytes()).buffer), to_js(list(x.shape)))
    outputs = await session.run(_js_object({check["input_name"]: tensor}))
    result = getattr(outputs, check["output_name"])
    y = np.frombuffer(result.data.to_bytes(), dtype="<f4").reshape(result.dims.to_py())
    run_ms = _elapsed_ms(started)
    await session.release()
    error = float(np.max(np.abs(y - np.asarray(check["expected"], dtype=np.float32))))
    if error > 1e-5:
        raise RuntimeError(f"onnxruntime-web returned wrong numbers (max error {error:g})")
    return {"output": y.tolist(), "max_abs_error": error, "session_ms": session_ms, "run_ms": run_ms}


async def boot(base: str) -> None:
    phase = "python"
    try:
        started = time.perf_counter()
        versions = check_python_packages()
        packages_ms = _elapsed_ms(started)

        phase = "ort"
        started = time.perf_counter()
        from pyscript.js_modules import ort

        threads = ort_thread_count()
        ort.env.wasm.proxy = False  # we already are in a worker
        ort.env.wasm.numThreads = threads
        selftest = await run_selftest(ort, base)
        versions["onnxruntime_web"] = str(ort.env.versions.web)
        versions["pyodide"] = __import__("pyodide").__version__
        post({
            "type": "ready",
            "info": {
                "versions": versions,
                "threads": threads,
                "cross_origin_isolated": bool(getattr(js, "crossOriginIsolated", False)),
                "execution_provider": "wasm",
                "selftest": selftest,
                "timings": {"packages_ms": packages_ms, "ort_ms": _elapsed_ms(started)},
            },
        })
    except Exception as error:  # anything at all must reach the page as a message, never a blank page
        where = "Python packages" if phase == "python" else "onnxruntime-web"
        post({"type": "error", "phase": phase, "message": f"Could not start {where}: {error}",
              "hint": "Reload the page. If it happens again, rebuild the runtime with `python tools/vendor.py`."})


def on_message(event) -> None:
    data = event.data.to_py() if hasattr(event.data, "to_py") else event.data
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "boot":
        task = asyncio.ensure_future(boot(data["base"]))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    else:
        post({"type": "error", "phase": "worker", "message": f"The worker got a message it does not know: {kind!r}",
              "hint": "Reload the page."})


def start(xworker) -> None:
    """Called once by site/worker.py with PyScript's xworker: listen for the page's messages."""
    global _xworker
    _xworker = xworker
    xworker.onmessage = on_message
