"""The worker's edge: onnxruntime-web, fetching, start-up, and the page's messages. Runs only in Pyodide.

One of the few modules that touch `js` or `pyodide`. What a message does is pyapp.session (pure, tested in
CPython), whose docstring has the protocol; this edge adds the messages of start-up and housekeeping:

page → worker
    {type: "boot", base, diagnostics}                     base: the site root's absolute URL, ending in /
    {type: "ping"}                                        the page's watchdog; answered with {type: "pong"}
    {type: "stats"}                                       answered with {type: "stats", ...}: memory figures
worker → page (site/pyworker.js posts {type: "python"} or {type: "boot-failed"} before this module runs)
    {type: "ready", info}                                 boot done: versions, threads, provider, timings
"""

from __future__ import annotations

import gc
import io
import sys

import js
import numpy as np
from pyodide.ffi import create_proxy, to_js

from pyapp.session import DecoderError, Session, brief
from pyapp.stopwatch import Stopwatch

_xworker = None
_ort_started = None  # site/pyworker.js's promise of onnxruntime-web
_decoders = None  # site/pyworker.js's decoderSession


# --- plumbing ----------------------------------------------------------------------------------------


def _js_object(value):
    return to_js(value, dict_converter=js.Object.fromEntries)


_transfer: list = []  # buffers made by pack() for the message being posted


def post(message: dict) -> None:
    """A message to the page; the buffers pack() made for it (pixels, a file's bytes) are transferred."""
    transfer = _transfer.copy()
    _transfer.clear()
    if transfer:
        _xworker.postMessage(_js_object(message), to_js(transfer))
    else:
        _xworker.postMessage(_js_object(message))


def pack(data: bytes | np.ndarray):
    """A JS ArrayBuffer holding a copy of the bytes (one copy), transferred to the page by the next post."""
    buffer = to_js(memoryview(data).cast("B")).buffer
    _transfer.append(buffer)
    return buffer


async def fetch_bytes(url: str, what: str) -> bytes:
    """The bytes at `url` (large downloads are made by the page, which shows their progress)."""
    response = await js.fetch(url)
    if not response.ok:
        raise RuntimeError(f"{what} could not be loaded ({url} answered HTTP {response.status})")
    return (await response.arrayBuffer()).to_bytes()


async def fetch_json(url: str, what: str):
    response = await js.fetch(url)
    if not response.ok:
        raise RuntimeError(f"{what} could not be loaded ({url} answered HTTP {response.status})")
    return (await response.json()).to_py()


# --- onnxruntime-web ---------------------------------------------------------------------------------


class Ort:
    """onnxruntime-web as site/pyworker.js started it while Python booted: the WebGPU build when the browser
    offers a WebGPU adapter, else the WASM build (threads when the page is cross-origin isolated)."""

    def __init__(self, started, decoders):
        self.module, self.provider = started.module, str(started.provider)
        self.threads, self.notice = int(started.threads), str(started.notice)
        self.decoders = decoders  # site/pyworker.js's decoderSession(model_url, bytes, family), made once a model

    def tensor(self, array: np.ndarray):
        array = np.ascontiguousarray(array, dtype=np.float32)
        data = js.Float32Array.new(to_js(memoryview(array).cast("B")).buffer)  # one copy into JS
        return self.module.Tensor.new("float32", data, to_js(list(array.shape)))

    def resident_tensor(self, array: np.ndarray):
        """A tensor that stays where the decoder runs: with WebGPU, in a GPU buffer written once (the
        embeddings, 16 MB, are otherwise uploaded on every run), as onnxruntime-web's IO-binding guide does;
        with WASM, a CPU tensor. Returns (tensor, buffer to destroy when the photo goes, or None).
        Not measured here: this machine's Chromium has no WebGPU adapter (README, "Speed")."""
        tensor = self.tensor(array)
        device = getattr(self.module.env.webgpu, "device", None) if self.provider == "webgpu" else None
        if device is None:
            return tensor, None
        try:
            usage = js.GPUBufferUsage.STORAGE | js.GPUBufferUsage.COPY_SRC | js.GPUBufferUsage.COPY_DST
            size = (tensor.data.byteLength + 15) // 16 * 16
            buffer = device.createBuffer(_js_object({"usage": usage, "size": size}))
            device.queue.writeBuffer(buffer, 0, tensor.data)
            options = _js_object({"dataType": "float32", "dims": list(array.shape)})
            return self.module.Tensor.fromGpuBuffer(buffer, options), buffer
        except Exception:  # noqa: BLE001 - a CPU tensor still works (uploaded per run)
            return tensor, None


class OrtWebRunner:
    """A decoder session in onnxruntime-web with pyapp.runner's shape (but asynchronous). The embedding
    tensors are made once per photo and reused for every click: only the prompt's small tensors are new."""

    def __init__(
        self, ort: Ort, session, model_name: str, url: str, prompt_batch: bool = False, made_ahead: bool = False
    ):
        self.ort, self.session, self.model_name, self.url = ort, session, model_name, url
        self.prompt_batch = prompt_batch  # takes a batch of prompts in one run (model.json says so)
        self.made_ahead = made_ahead  # its session was made (and run once) while Python booted
        self.input_names = [str(n) for n in session.inputNames]
        self.output_names = [str(n) for n in session.outputNames]
        self._cached: dict[str, tuple[int, object, object]] = {}  # name: (id of the array, tensor, GPU buffer)
        self.timings: dict[str, float] = {}  # the last run's: making tensors, onnxruntime-web's run, outputs

    def _tensor(self, name: str, array: np.ndarray, reuse: bool):
        if reuse:
            cached = self._cached.get(name)
            if cached is not None and cached[0] == id(array):
                return cached[1]
            if cached is not None and cached[2] is not None:
                cached[2].destroy()
            tensor, buffer = self.ort.resident_tensor(array)
            self._cached[name] = (id(array), tensor, buffer)
            return tensor
        return self.ort.tensor(array)

    def forget_photo(self) -> None:
        for _, _, buffer in self._cached.values():
            if buffer is not None:
                buffer.destroy()
        self._cached.clear()

    async def warm(self, feeds: dict[str, np.ndarray], embeddings: set[str]) -> dict[str, np.ndarray]:
        """A run nobody sees, when a photo opens: its embedding tensors are made, and first runs paid."""
        return await self.run(feeds, embeddings)

    async def run(self, feeds: dict[str, np.ndarray], embeddings: set[str]) -> dict[str, np.ndarray]:
        clock = Stopwatch()
        tensors = {name: self._tensor(name, value, name in embeddings) for name, value in feeds.items()}
        inputs = _js_object(tensors)
        self.timings = {"tensors": clock.lap()}
        results = await self.session.run(inputs)
        self.timings["run"] = clock.lap()
        outputs = {}
        for name in self.output_names:
            tensor = getattr(results, name)
            outputs[name] = np.frombuffer(tensor.data.to_bytes(), dtype="<f4").reshape([int(d) for d in tensor.dims])
        self.timings["outputs"] = clock.lap()
        return outputs


class Loader:
    """What pyapp.session needs of the browser: fetching, and one decoder session per model folder."""

    def __init__(self):
        self.ort: Ort | None = None
        self.runners: dict[str, OrtWebRunner] = {}  # by model folder URL

    async def fetch(self, url: str, what: str) -> bytes:
        return await fetch_bytes(url, what)

    async def runner(self, model_url: str, decoder: bytes | None) -> OrtWebRunner:
        """The decoder session of a model folder, made once; `decoder` is its bytes if the page has them."""
        from pyapp.model import parse_model_info

        if model_url not in self.runners:
            post({"type": "status", "text": "Loading the decoder…", "phase": "model"})
            info = parse_model_info(
                await fetch_json(model_url + "model.json", "The model's description"), where=model_url + "model.json"
            )
            # site/pyworker.js makes the session (it chooses how far onnxruntime-web optimises it), or made it
            # already from the page's early copy of the decoder, while Python booted.
            made = self.ort.decoders.has(model_url)
            if not made and decoder is None:
                decoder = await fetch_bytes(model_url + info.files["decoder"], "The decoder")
            try:
                session = await self.ort.decoders(model_url, None if made else to_js(decoder), info.family)
            except Exception as error:  # noqa: BLE001 - onnxruntime-web's message, shortened, is the detail
                raise DecoderError(
                    f"onnxruntime-web could not load the decoder {model_url}{info.files['decoder']} "
                    f"({brief(error, 200)})"
                ) from None
            self.runners[model_url] = OrtWebRunner(
                self.ort, session, info.name, model_url, info.prompt_batch(), made_ahead=made
            )
        return self.runners[model_url]


# --- start-up and housekeeping -----------------------------------------------------------------------

_loader = Loader()
_session = Session(post, _loader, pack=pack)


async def boot(base: str) -> None:
    phase = "python"
    try:
        clock = Stopwatch()
        versions = check_python_packages()
        packages_ms = clock.lap()
        phase = "ort"
        started = await _ort_started
        _loader.ort = ort = Ort(started, _decoders)
        selftest = await run_selftest(ort, base, started.selftest, float(started.session_ms))
        versions["onnxruntime_web"] = str(ort.module.env.versions.web)
        versions["pyodide"] = __import__("pyodide").__version__
        post(
            {
                "type": "ready",
                "info": {
                    "versions": versions,
                    "threads": ort.threads,
                    "cross_origin_isolated": bool(getattr(js, "crossOriginIsolated", False)),
                    "execution_provider": ort.provider,
                    "notice": ort.notice,
                    "selftest": selftest,
                    # ort_ms: Python's wait for onnxruntime-web; ort_session_ms: when site/pyworker.js had
                    # made its self-test session, in ms since the worker started
                    "timings": {
                        "packages_ms": packages_ms,
                        "ort_ms": clock.lap(),
                        "ort_session_ms": float(started.at_ms),
                    },
                },
            }
        )
    except Exception as error:  # noqa: BLE001 - anything must reach the page as a message
        where = "Python packages" if phase == "python" else "onnxruntime-web"
        _session.fail(
            phase,
            f"Could not start {where}: {brief(error, 200)}",
            "Reload the page. If it happens again, rebuild the runtime with `python tools/vendor.py`.",
            fatal=True,
        )


def stats() -> dict:
    """Memory figures for leak checks (tests/browser/test_reliability.py): Pyodide's WebAssembly heap (it
    only ever grows), Python's traced heap incl. numpy's arrays and the live PyProxies (both only when booted
    with diagnostics, else None), objects the garbage collector tracks, the JS values Python holds (hiwire
    references), decoder sessions, and the session's own (work queued, steps held)."""
    import tracemalloc

    import pyodide_js

    gc.collect()
    module = pyodide_js._module
    tracing = tracemalloc.is_tracing()
    return {
        "wasm_heap_bytes": int(module.HEAP8.length),
        "python_heap_bytes": tracemalloc.get_traced_memory()[0] if tracing else None,
        "gc_objects": len(gc.get_objects()),
        "js_refs": int(module._hiwire_num_refs()),
        "pyproxies": int(module.pyproxy_alloc_map.size) if tracing else None,
        "runners": len(_loader.runners),
        **_session.stats(),
    }


BINARY_FIELDS = ("photo", "bundle", "decoder")


def on_message(event) -> None:
    data = event.data.to_py() if hasattr(event.data, "to_py") else event.data
    if not isinstance(data, dict):
        _session.fail("worker", "The worker got a message it cannot read.", "Reload the page.")
        return
    kind = data.get("type")
    if kind == "ping":
        post({"type": "pong"})  # the page's watchdog: this worker is alive
    elif kind == "stats":
        post({"type": "stats", **stats()})
    elif kind == "boot":
        if data.get("diagnostics"):  # for stats(): Python's heap and the live PyProxies
            import tracemalloc

            import pyodide_js

            tracemalloc.start()
            pyodide_js._module.enable_pyproxy_allocation_tracing()
        _session.spawn(boot(str(data.get("base") or "")))
    else:
        for name in BINARY_FIELDS:  # ArrayBuffers from the page (JsProxies, or memoryviews after to_py)
            value = data.get(name)
            if value is not None:
                data[name] = value.to_bytes() if hasattr(value, "to_bytes") else bytes(value)
        _session.handle(data)


def start(xworker, ort_started, decoders) -> None:
    """Called once by site/pyworker.js: `xworker` posts to the page and takes its messages (onmessage);
    `ort_started` is the promise of onnxruntime-web, started meanwhile; `decoders` makes decoder sessions."""
    global _xworker, _ort_started, _decoders
    _xworker, _ort_started, _decoders = xworker, ort_started, decoders
    xworker.onmessage = create_proxy(on_message)


# --- boot checks -------------------------------------------------------------------------------------


def check_python_packages() -> dict:
    """Import and exercise numpy, Pillow and msgpack the way the app will; return their versions."""
    import msgpack
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


async def run_selftest(ort: Ort, base: str, session, session_ms: float) -> dict:
    """Run the small self-test model's session (made by site/pyworker.js) and check its output against the
    known answer."""
    check = await fetch_json(base + "vendor/selftest.json", "The self-test's answer")
    clock = Stopwatch()
    x = np.asarray(check["input"], dtype=np.float32)
    outputs = await session.run(_js_object({check["input_name"]: ort.tensor(x)}))
    result = getattr(outputs, check["output_name"])
    y = np.frombuffer(result.data.to_bytes(), dtype="<f4").reshape([int(d) for d in result.dims])
    run_ms = clock.lap()
    await session.release()
    error = float(np.max(np.abs(y - np.asarray(check["expected"], dtype=np.float32))))
    if error > 1e-5:
        raise RuntimeError(f"onnxruntime-web returned wrong numbers (max error {error:g})")
    return {"output": y.tolist(), "max_abs_error": error, "session_ms": session_ms, "run_ms": run_ms}
