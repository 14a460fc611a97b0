"""The worker's edge: messages with the page, onnxruntime-web, fetching. Runs only in Pyodide.

One of the few modules that touch `js` or `pyodide`; everything it does with pixels and prompts is
pyapp.app (pure, tested in CPython). The protocol, page ↔ worker, plain objects (ArrayBuffers transferred):

page → worker
    {type: "boot", base, threads}                         base: the site root's absolute URL, ending in /;
                                                          threads: a cap on onnxruntime-web's (0: none)
    {type: "open", seq, bundle_url, model_url, preview_url, name}      a demo
    {type: "open-files", seq, photo: ArrayBuffer, photo_name, bundle: ArrayBuffer, bundle_name,
     models: {model name: model folder URL}}             a person's own photo and bundle
    {type: "click", id, x, y, css_width, css_height, include, t0}       CSS pixels on the canvas;
    {type: "box", id, x0, y0, x1, y1, css_width, css_height, t0}          id: the page's count of inputs
    {type: "replay", messages: [...]}                     a restarted worker's state rebuilt in one go: the
                                                          messages since the photo opened, clicks and boxes
                                                          with joins: whether each joined the step before
    {type: "hover", x, y, css_width, css_height} / {type: "hover-end"}
    {type: "undo" | "redo" | "clear" | "new-object"}, {type: "select" | "delete", id},
    {type: "rename", id, name}, {type: "candidate", index}, {type: "view", view, opacity}
    {type: "export", what: "mask" | "cutout" | "coco"}
    {type: "ping"}                                        the page's watchdog; answered with {type: "pong"}
    {type: "stats"}                                       answered with {type: "stats", ...}: memory figures
worker → page
    {type: "status", text, phase}
    {type: "ready", info}                                 boot done: versions, threads, provider, timings
    {type: "opened", seq, width, height, view_width, view_height, model_name, timings}
    {type: "frame", seq, width, height, pixels: ArrayBuffer, state, mask?: {...samtab:mask detail}, t0?}
                                                          seq: the open photo's; mask.input: the last
                                                          input id the decoded prompt includes
    {type: "settled", input}                              nothing left to decode; input: the last input id
    {type: "download", name, mime, data: ArrayBuffer}
    {type: "error", phase, message, hint, fatal, restart?} fatal: false means the work so far is kept;
                                                          restart: the page should restart this worker
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import time

import js
import numpy as np
from pyodide.ffi import to_js

_xworker = None
_tasks: set[asyncio.Task] = set()
MAX_THREADS = 4  # past four, the decoder gains little and the page loses cores
DAMAGED_DECODER_HINT = ("The decoder file is damaged or is not an ONNX model: rebuild the site's models "
                        "(python tools/demos.py, or tools/serve.py) and reload. Your current photo is kept.")


class DecoderError(Exception):
    """onnxruntime-web cannot load a model's decoder file."""


# --- plumbing ----------------------------------------------------------------------------------------

def _js_object(value):
    return to_js(value, dict_converter=js.Object.fromEntries)


def post(message: dict, transfer: list | None = None) -> None:
    if transfer:
        _xworker.postMessage(_js_object(message), to_js(transfer))
    else:
        _xworker.postMessage(_js_object(message))


def status(text: str, phase: str) -> None:
    post({"type": "status", "text": text, "phase": phase})


def fail(phase: str, message: str, hint: str = "", fatal: bool = False) -> None:
    post({"type": "error", "phase": phase, "message": message, "hint": hint, "fatal": fatal})


def _short(error: BaseException, limit: int = 200) -> str:
    """An error's message for a person: its first line, cut at `limit` (onnxruntime's carry C++ paths)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _spawn(coroutine) -> None:
    task = asyncio.ensure_future(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _array_buffer(data: bytes | np.ndarray):
    """A JS ArrayBuffer holding a copy of the bytes (one copy, to be transferred to the page)."""
    return to_js(memoryview(data).cast("B")).buffer


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
    """onnxruntime-web, imported once: the WebGPU build when the browser offers a WebGPU adapter, else the
    WASM build (threads when the page is cross-origin isolated)."""

    def __init__(self, module, provider: str, threads: int, notice: str):
        self.module, self.provider, self.threads, self.notice = module, provider, threads, notice

    @classmethod
    async def load(cls, base: str, max_threads: int = 0) -> Ort:
        threads = 1
        if getattr(js, "crossOriginIsolated", False):
            threads = max(1, min(max_threads or MAX_THREADS, MAX_THREADS, int(js.navigator.hardwareConcurrency or 1)))
        provider, notice = "wasm", ""
        gpu = getattr(js.navigator, "gpu", None)
        if gpu is None:
            notice = "WebGPU is not available in this browser"
        else:
            try:
                adapter = await gpu.requestAdapter()
                provider = "webgpu" if adapter else "wasm"
                notice = "" if adapter else "this browser has WebGPU but no adapter for it"
            except Exception as error:  # noqa: BLE001 - any failure means WASM
                notice = f"WebGPU failed to start ({error})"
        script = "ort.webgpu.min.mjs" if provider == "webgpu" else "ort.wasm.min.mjs"
        # A PyScript worker lives at a blob: URL, so the module must be imported by its absolute URL.
        module = await js.eval(f"import({js.JSON.stringify(base + 'vendor/ort/' + script)})")
        module.env.wasm.proxy = False  # we already are in a worker
        module.env.wasm.numThreads = threads
        if notice:
            notice += f": using WebAssembly with {threads} thread{'s' if threads > 1 else ''}"
        return cls(module, provider, threads, notice)

    async def session(self, model, optimization: str = "all"):
        """A session on a model given by URL or as bytes (a Uint8Array)."""
        providers = ["webgpu", "wasm"] if self.provider == "webgpu" else ["wasm"]
        return await self.module.InferenceSession.create(
            model, _js_object({"executionProviders": providers, "graphOptimizationLevel": optimization}))

    def tensor(self, array: np.ndarray):
        array = np.ascontiguousarray(array, dtype=np.float32)
        data = js.Float32Array.new(_array_buffer(array))
        return self.module.Tensor.new("float32", data, to_js(list(array.shape)))


class OrtWebRunner:
    """A decoder session in onnxruntime-web with pyapp.runner's shape (but asynchronous). The embedding
    tensors are made once per photo and reused for every click: only the prompt's small tensors are new."""

    def __init__(self, ort: Ort, session, model_name: str, url: str):
        self.ort, self.session, self.model_name, self.url = ort, session, model_name, url
        self.input_names = [str(n) for n in session.inputNames]
        self.output_names = [str(n) for n in session.outputNames]
        self._cached: dict[str, tuple[int, object]] = {}

    def _tensor(self, name: str, array: np.ndarray, reuse: bool):
        if reuse:
            cached = self._cached.get(name)
            if cached is not None and cached[0] == id(array):
                return cached[1]
            tensor = self.ort.tensor(array)
            self._cached[name] = (id(array), tensor)
            return tensor
        return self.ort.tensor(array)

    def forget_photo(self) -> None:
        self._cached.clear()

    async def run(self, feeds: dict[str, np.ndarray], embeddings: set[str]) -> dict[str, np.ndarray]:
        tensors = {name: self._tensor(name, value, name in embeddings) for name, value in feeds.items()}
        results = await self.session.run(_js_object(tensors))
        outputs = {}
        for name in self.output_names:
            tensor = getattr(results, name)
            outputs[name] = np.frombuffer(tensor.data.to_bytes(), dtype="<f4").reshape(
                [int(d) for d in tensor.dims])
        return outputs


# --- the worker --------------------------------------------------------------------------------------

class Worker:
    def __init__(self):
        from pyapp.app import App

        self.app = App()
        self.base = ""
        self.ort: Ort | None = None
        self.runners: dict[str, OrtWebRunner] = {}  # by model folder URL
        self.runner: OrtWebRunner | None = None
        self.decoding = False
        self.hover_request: tuple | None = None
        self.hover_step = None
        self.click_started: float | None = None
        self.opening: asyncio.Future | None = None
        self.queued: list[dict] = []
        self.seq = None  # the open photo's number, from the page
        self.replaying = False  # no frames while a replay rebuilds the state
        self.last_input = 0  # the id of the last click or box applied to the prompt

    # boot ---------------------------------------------------------------------------------------------

    async def boot(self, base: str, max_threads: int = 0) -> None:
        self.base = base
        phase = "python"
        try:
            started = time.perf_counter()
            versions = check_python_packages()
            packages_ms = _ms(started)
            phase = "ort"
            started = time.perf_counter()
            self.ort = await Ort.load(base, max_threads)
            selftest = await run_selftest(self.ort, base)
            versions["onnxruntime_web"] = str(self.ort.module.env.versions.web)
            versions["pyodide"] = __import__("pyodide").__version__
            post({"type": "ready", "info": {
                "versions": versions, "threads": self.ort.threads,
                "cross_origin_isolated": bool(getattr(js, "crossOriginIsolated", False)),
                "execution_provider": self.ort.provider, "notice": self.ort.notice, "selftest": selftest,
                "timings": {"packages_ms": packages_ms, "ort_ms": _ms(started)}}})
        except Exception as error:  # noqa: BLE001 - anything must reach the page as a message
            where = "Python packages" if phase == "python" else "onnxruntime-web"
            fail(phase, f"Could not start {where}: {error}",
                 "Reload the page. If it happens again, rebuild the runtime with `python tools/vendor.py`.", True)

    # opening ------------------------------------------------------------------------------------------

    async def runner_for(self, model_url: str, decoder: bytes | None = None) -> OrtWebRunner:
        """The decoder session of a model folder, made once; `decoder` is its bytes if the page has them."""
        from pyapp.model import parse_model_info

        if model_url not in self.runners:
            status("Loading the decoder…", "model")
            info = parse_model_info(await fetch_json(model_url + "model.json", "The model's description"),
                                    where=model_url + "model.json")
            if decoder is None:
                decoder = await fetch_bytes(model_url + info.files["decoder"], "The decoder")
            # Measured in onnxruntime-web: SAM2's decoder runs ~25 % faster fully optimised (0.35 s to
            # create); the baseline's 900 small nodes take 1.1 s to optimise fully for no gain ("basic": 0.1 s).
            optimization = "all" if info.family == "sam2.1" else "basic"
            try:
                session = await self.ort.session(to_js(decoder), optimization)
            except Exception as error:  # noqa: BLE001 - onnxruntime-web's message, shortened, is the detail
                raise DecoderError(f"onnxruntime-web could not load the decoder {model_url}{info.files['decoder']} "
                                   f"({_short(error)})") from None
            self.runners[model_url] = OrtWebRunner(self.ort, session, info.name, model_url)
        return self.runners[model_url]

    async def open(self, message: dict) -> None:
        from PIL import Image

        from pyapp.bundle import BundleError, read_bundle

        started = time.perf_counter()
        try:
            status("Loading the photo's embeddings…", "bundle")
            steps = {}
            preview_task = asyncio.ensure_future(fetch_bytes(message["preview_url"], "The photo"))
            decoder = _bytes(message["decoder"]) if message.get("decoder") is not None else None
            mark = time.perf_counter()
            runner = await self.runner_for(message["model_url"], decoder)
            steps["decoder_ms"], mark = _ms(mark), time.perf_counter()
            if message.get("bundle") is not None:
                data = _bytes(message["bundle"])
            else:
                data = await fetch_bytes(message["bundle_url"], "The photo's embeddings")
            bundle = read_bundle(data)
            steps["bundle_ms"], mark = _ms(mark), time.perf_counter()
            photo = Image.open(io.BytesIO(await preview_task))
            photo.load()
            steps["photo_ms"], mark = _ms(mark), time.perf_counter()
            self._switch(bundle, runner, photo, message.get("name") or "photo", None)
            steps["switch_ms"] = _ms(mark)
            self.open_steps = steps
        except BundleError as error:
            fail("open", f"This demo's embeddings are not usable: {error}", "The previous photo is kept.")
        except DecoderError as error:
            fail("open", f"This demo cannot be used: {error}", DAMAGED_DECODER_HINT)
        except Exception as error:  # noqa: BLE001
            fail("open", f"The demo could not be opened: {error}", "Check the connection and try again.")
        else:
            self._opened(message, started)

    async def open_files(self, message: dict) -> None:
        from pyapp.bundle import BundleError, read_bundle
        from pyapp.image import PhotoError, open_photo

        started = time.perf_counter()
        try:
            photo = open_photo(_bytes(message["photo"]), name=message["photo_name"])
            bundle = read_bundle(_bytes(message["bundle"]))
            models = message.get("models") or {}
            model_name = bundle.model_name
            if model_name is None:
                raise BundleError("this bundle does not say which model made it, so samtab cannot pick a decoder")
            if model_name not in models:
                raise BundleError(f"it was made with the model '{model_name}', which this site does not have "
                                  f"(it has: {', '.join(models) or 'none'})")
            runner = await self.runner_for(models[model_name])
            self._switch(bundle, runner, photo.rgb, message["photo_name"], photo.sha256)
        except (BundleError, PhotoError) as error:
            fail("open", f"{message.get('bundle_name', 'The bundle')} cannot be used with "
                         f"{message.get('photo_name', 'this photo')}: {error}",
                 "Your current photo and its objects are kept.")
        except DecoderError as error:
            fail("open", f"The files could not be opened: {error}", DAMAGED_DECODER_HINT)
        except Exception as error:  # noqa: BLE001
            fail("open", f"The files could not be opened: {error}", "Your current photo and its objects are kept.")
        else:
            self._opened(message, started)

    def _switch(self, bundle, runner: OrtWebRunner, photo, name: str, sha256: str | None) -> None:
        previous = self.runner
        self.app.open(bundle, runner.model_name, runner.input_names, photo, photo_name=name, image_sha256=sha256)
        if previous is not None:
            previous.forget_photo()
        runner.forget_photo()
        self.runner = runner
        self.hover_step = None

    def _opened(self, message: dict, started: float) -> None:
        width, height = self.app.view_size
        self.seq = message.get("seq")
        post({"type": "opened", "seq": self.seq, "width": self.app.segmenter.width,
              "height": self.app.segmenter.height, "view_width": width, "view_height": height,
              "model_name": self.runner.model_name,
              "timings": {"open_ms": _ms(started), **getattr(self, "open_steps", {})}})
        self.frame()

    # clicks and decoding ------------------------------------------------------------------------------

    def schedule(self) -> None:
        if not self.decoding:
            self.decoding = True
            _spawn(self.decode_loop())

    async def decode_loop(self) -> None:
        """Decode until the state needs nothing more. Clicks that arrive during a decode only change the
        prompt; the next pass decodes the latest prompt once (latest wins, nothing piles up)."""
        try:
            while True:
                started = time.perf_counter()
                decode = self.app.next_decode()
                hover = None if decode else self._hover_decode()
                job = decode or hover
                if job is None:
                    break
                timings = {"feeds": _ms(started)}
                # The inputs this mask answers for: up to the last one if it is the object's current step
                # (not an earlier one, decoded first because the current one refines it).
                t0 = self.click_started
                covered = self.last_input if decode and decode.step is decode.obj.current else 0
                started = time.perf_counter()
                segmenter = self.app.segmenter
                try:
                    outputs = await self.runner.run(job.feeds, embeddings=set(segmenter.embeddings))
                except BaseException:
                    self.app.abandon(job)
                    raise
                if self.app.segmenter is not segmenter:
                    continue  # another photo was opened during the decode: its answer is for nothing shown
                timings["decode"] = _ms(started)
                started = time.perf_counter()
                self.app.accept(job, outputs)
                if decode:
                    self.hover_step = None
                    detail = {**self._mask_detail(job), "input": covered}
                    timings["postprocess"] = _ms(started)
                    self.frame(mask=detail, t0=t0, timings=timings)
                else:
                    self.hover_step = job.step
                    self.frame()
            self.decoding = False
            post({"type": "settled", "input": self.last_input})
        except Exception as error:  # noqa: BLE001
            # onnxruntime-web in a bad state (a WebGPU device lost, memory exhausted) does not recover in
            # this worker: the page restarts it and replays the work into a fresh one.
            self.decoding = False
            post({"type": "error", "phase": "decode", "message": f"the decoder failed ({_short(error)})", "hint": "",
                  "fatal": False, "restart": True})
        finally:
            self.decoding = False

    def _hover_decode(self):
        if self.hover_request is None:
            return None
        obj = self.app.segmenter.objects.current
        if obj is not None and not obj.prompt.empty:
            self.hover_request = None
            return None
        request, self.hover_request = self.hover_request, None
        try:
            return self.app.hover(*request)
        except ValueError:
            return None

    def _mask_detail(self, decode) -> dict:
        step = decode.step
        width, height = self.app.view_size
        mask = self.app.step_mask(step, width, height)
        scale = (self.app.segmenter.width * self.app.segmenter.height) / (width * height)
        return {"object": decode.obj.id, "clicks": len(step.prompt.points) + (2 if step.prompt.box else 0),
                "mask_index": step.chosen, "iou": round(float(step.candidates.iou[step.chosen]), 4),
                "area_px": int(round(mask.sum() * scale)), "prompt": step.prompt.to_json(),
                "refined": bool(decode.feeds["has_mask_input"][0]) if "has_mask_input" in decode.feeds else False}

    def frame(self, mask: dict | None = None, t0: float | None = None, timings: dict | None = None) -> None:
        """Render the view and send it, with the state of the controls."""
        if self.replaying:
            return
        started = time.perf_counter()
        pixels = self.app.render(hover=self.hover_step)
        composite_ms = _ms(started)
        height, width = pixels.shape[:2]
        buffer = _array_buffer(pixels)
        message = {"type": "frame", "seq": self.seq, "width": width, "height": height, "pixels": buffer,
                   "state": self.app.state()}
        if mask is not None:
            timings = {**(timings or {}), "composite": composite_ms, "send": _ms(started) - composite_ms}
            timings["python"] = round(sum(v for k, v in timings.items() if k != "decode"), 1)
            mask["latency_ms"] = timings
            message["mask"] = mask
            message["t0"] = t0
        post(message, [buffer])

    def stats(self) -> dict:
        """Memory figures for leak checks (tests/browser/test_reliability.py): Pyodide's WebAssembly heap
        (it only ever grows), Python's traced heap incl. numpy's arrays and the live PyProxies (both only
        when booted with diagnostics, else None), objects the garbage collector tracks, the JS values Python
        holds (hiwire references), work queued."""
        import tracemalloc

        import pyodide_js

        gc.collect()
        module = pyodide_js._module
        segmenter = self.app.segmenter
        steps = sum(len(o.history) for o in segmenter.objects.items) if segmenter else 0
        decoded = sum(s.candidates is not None for o in segmenter.objects.items for s in o.history) if segmenter else 0
        tracing = tracemalloc.is_tracing()
        return {"wasm_heap_bytes": int(module.HEAP8.length),
                "python_heap_bytes": tracemalloc.get_traced_memory()[0] if tracing else None,
                "gc_objects": len(gc.get_objects()), "js_refs": int(module._hiwire_num_refs()),
                "pyproxies": int(module.pyproxy_alloc_map.size) if tracing else None, "tasks": len(_tasks),
                "queued": len(self.queued),
                "runners": len(self.runners), "steps": steps, "decoded_steps": decoded}

    # dispatch -----------------------------------------------------------------------------------------

    def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "ping":
            post({"type": "pong"})  # the page's watchdog: this worker is alive
            return
        if kind == "stats":
            post({"type": "stats", **self.stats()})
            return
        if kind == "boot":
            if message.get("diagnostics"):  # for stats(): Python's heap and the live PyProxies
                import tracemalloc

                import pyodide_js

                tracemalloc.start()
                pyodide_js._module.enable_pyproxy_allocation_tracing()
            _spawn(self.boot(message["base"], int(message.get("threads") or 0)))
            return
        if kind in ("open", "open-files"):
            self.opening = asyncio.ensure_future(self.open(message) if kind == "open" else self.open_files(message))
            self.opening.add_done_callback(lambda _: self._drain())
            return
        if self.opening is not None and not self.opening.done():
            self.queued.append(message)  # for the photo being opened: applied once it is open
            return
        if not self.app.ready:
            if kind != "hover":
                fail("input", "Open a photo first.", "Pick a demo or open your own photo and its bundle.")
            return
        try:
            self.command(kind, message)
        except Exception as error:  # noqa: BLE001 - one bad command must not lose the work
            from pyapp.coords import OutsideImage

            if isinstance(error, OutsideImage):
                if not self.decoding:  # a click just off the photo: nothing to do, nothing pending
                    post({"type": "settled", "input": self.last_input})
                return
            fail(kind or "input", str(error), "Your work so far is kept.")

    def _drain(self) -> None:
        queued, self.queued = self.queued, []
        for message in queued:
            self.handle(message)

    def command(self, kind: str, m: dict) -> None:
        app = self.app
        if kind in ("click", "box"):
            self.last_input = max(self.last_input, int(m.get("id") or 0))
            self.click_started = m.get("t0")
            join = bool(m["joins"]) if "joins" in m else None
            if kind == "click":
                app.click(m["x"], m["y"], m["css_width"], m["css_height"], bool(m.get("include", True)), join=join)
            else:
                app.box(m["x0"], m["y0"], m["x1"], m["y1"], m["css_width"], m["css_height"], join=join)
            self.hover_step = None
            self.schedule()
        elif kind == "replay":
            from pyapp.coords import OutsideImage

            self.replaying = True
            try:
                for each in m["messages"]:
                    try:
                        self.command(each["type"], each)
                    except OutsideImage:
                        pass
            finally:
                self.replaying = False
            self.frame()
            self.schedule()
        elif kind == "hover":
            self.hover_request = (m["x"], m["y"], m["css_width"], m["css_height"])
            self.schedule()
        elif kind == "hover-end":
            self.hover_request, self.hover_step = None, None
            self.frame()
        elif kind in ("undo", "redo", "clear"):
            getattr(app, kind)()
            self.frame()
            self.schedule()
        elif kind == "new-object":
            app.new_object()
            self.frame()
        elif kind == "select":
            app.select(int(m["id"]))
            self.frame()
        elif kind == "rename":
            app.rename(int(m["id"]), str(m["name"]))
            self.frame()
        elif kind == "delete":
            app.delete(int(m["id"]))
            self.frame()
        elif kind == "candidate":
            app.choose_candidate(int(m["index"]))
            self.frame()
        elif kind == "view":
            app.set_view(m["view"], m.get("opacity"))
            self.frame()
        elif kind == "export":
            name, mime, data = {"mask": app.export_mask, "cutout": app.export_cutout,
                                "coco": app.export_coco}[m["what"]]()
            buffer = _array_buffer(data)
            post({"type": "download", "name": name, "mime": mime, "data": buffer, "what": m["what"]}, [buffer])
        else:
            raise ValueError(f"the worker got a message it does not know: {kind!r}")


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
    return {"python": sys.version.split()[0], "numpy": np.__version__, "pillow": PIL.__version__,
            "msgpack": ".".join(map(str, msgpack.version)), "msgpack_implementation": msgpack.Unpacker.__module__}


async def run_selftest(ort: Ort, base: str) -> dict:
    """Create a session on the small self-test model and check its output against the known answer."""
    check = await fetch_json(base + "vendor/selftest.json", "The self-test's answer")
    started = time.perf_counter()
    session = await ort.session(base + "vendor/selftest.onnx")
    session_ms = _ms(started)
    x = np.asarray(check["input"], dtype=np.float32)
    started = time.perf_counter()
    outputs = await session.run(_js_object({check["input_name"]: ort.tensor(x)}))
    result = getattr(outputs, check["output_name"])
    y = np.frombuffer(result.data.to_bytes(), dtype="<f4").reshape([int(d) for d in result.dims])
    run_ms = _ms(started)
    await session.release()
    error = float(np.max(np.abs(y - np.asarray(check["expected"], dtype=np.float32))))
    if error > 1e-5:
        raise RuntimeError(f"onnxruntime-web returned wrong numbers (max error {error:g})")
    return {"output": y.tolist(), "max_abs_error": error, "session_ms": session_ms, "run_ms": run_ms}


# --- entry -------------------------------------------------------------------------------------------

_worker: Worker | None = None


def _bytes(value) -> bytes:
    """An ArrayBuffer from the page (a JsProxy or, after to_py, a memoryview) as bytes."""
    return value.to_bytes() if hasattr(value, "to_bytes") else bytes(value)


def on_message(event) -> None:
    data = event.data.to_py() if hasattr(event.data, "to_py") else event.data
    if not isinstance(data, dict):
        fail("worker", "The worker got a message it cannot read.", "Reload the page.")
        return
    _worker.handle(data)


def start(xworker) -> None:
    """Called once by site/worker.py with PyScript's xworker: listen for the page's messages."""
    global _xworker, _worker
    _xworker = xworker
    _worker = Worker()
    xworker.onmessage = on_message
