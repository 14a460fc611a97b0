// @ts-check
// samtab's worker, started by js/worker.js as a module worker: it boots Pyodide (from its memory snapshot
// when the build has a valid one), with numpy, Pillow, msgpack and the pyapp package, and meanwhile starts
// onnxruntime-web, which needs no Python: imported, its WebAssembly compiled and its threads started with
// the self-test model's session. Then pyapp.web.worker takes the page's messages, from the first one on.
//
//   pyworker.js?threads=N    N caps onnxruntime-web's threads (0 or absent: up to MAX_THREADS)
//
// Decoder sessions are made here too, once per model folder (decoderSession): when the page sends a demo's
// decoder early ({type: "warm-decoder", model_url, family, decoder}, handled here, not queued for Python), its
// session is made and run once on zeros while Python still boots, from when its interpreter has loaded (begun
// at once, on a first visit it slowed Python's start by 1.5-2 s on two cores: first mask 6.9 s against 6.2-6.5
// when begun then). WebAssembly's optimising tier compiles the decoder's hot code in the background once it
// has run, given idle cores: measured (rocket, 2 threads), a session's first runs back to back took 300-380,
// 250-320, 240-330, 230-330 ms and only the fifth or sixth reached its steady 110-150; after one run and a 1 s
// pause the second run took 140-155 (README, "Speed of a click").
//
// What the page hears from here, before Python speaks for itself: {type: "python", snapshot, timings}
// once Python runs, or {type: "boot-failed", message} if it cannot start. The timings (ms since the worker
// started) are filled in as they happen: snapshot_ms (fetched and inflated), interpreter_ms (Pyodide and
// the packages loaded), python_ms (pyapp imported), and ort_ms (onnxruntime-web's self-test session made,
// read by pyapp.web.worker for samtab:ready).

/** @type {MessageEvent[]} the page's messages that came before Python listened */
const queued = [];
/** @type {(event: MessageEvent) => void} */
let deliver = (event) => queued.push(event);
// (Set before the first await: a message posted at once to a module worker is lost otherwise.)
self.onmessage = (event) => {
  if (event.data?.type === "warm-decoder") warmDecoder(event.data);
  else deliver(event);
};

const SITE = new URL("./", import.meta.url).href;
const PYODIDE = `${SITE}vendor/pyodide/`;
const ORT = `${SITE}vendor/ort/`;
const SNAPSHOT = `${PYODIDE}snapshot.bin.gz`;
const PACKAGES = ["numpy", "pillow", "msgpack"];
// What any Pyodide 0.27 snapshot is: its first word, and whole 64 KiB pages of at least the interpreter's
// initial memory. Pyodide itself refuses another build's snapshot (the build id in its header), but one of
// the wrong size leaves its WebAssembly unable to start and loadPyodide waiting forever: checked here.
const SNAPSHOT_MAGIC = 1886286592;
const SNAPSHOT_MIN_BYTES = 20 * 2 ** 20;
const MAX_THREADS = 4; // past four, the decoder gains little and the page loses cores
const started = performance.now();
const since = () => Math.round(performance.now() - started);
/** @type {Record<string, number>} milestones in ms since the worker started, for the page's boot figures */
const timings = {};

/** ?threads=N as a whole number of threads from 1 to 1024, or 0 (no cap) for anything else. */
function threadCap() {
  const value = Number(new URL(import.meta.url).searchParams.get("threads") || 0);
  return Number.isInteger(value) && value >= 1 && value <= 1024 ? value : 0;
}

/** onnxruntime-web, started at once: the WebGPU build when the browser offers an adapter, else the WASM
 * build (threads when the page is cross-origin isolated); its self-test model's session made. */
async function startOrt() {
  let threads = 1;
  if (self.crossOriginIsolated) {
    const cap = threadCap() || MAX_THREADS;
    threads = Math.max(1, Math.min(cap, MAX_THREADS, navigator.hardwareConcurrency || 1));
  }
  let provider = "wasm";
  let notice = "";
  // @ts-expect-error: WebGPU's types are not in this project's lib
  const gpu = navigator.gpu;
  if (!gpu) notice = "WebGPU is not available in this browser";
  else {
    try {
      provider = (await gpu.requestAdapter()) ? "webgpu" : "wasm";
      if (provider === "wasm") notice = "this browser has WebGPU but no adapter for it";
    } catch (error) {
      notice = `WebGPU failed to start (${error})`;
    }
  }
  if (notice) notice += `: using WebAssembly with ${threads} thread${threads > 1 ? "s" : ""}`;
  const module = await import(`${ORT}${provider === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"}`);
  module.env.wasm.proxy = false; // this already is a worker
  module.env.wasm.numThreads = threads;
  const clock = performance.now();
  const selftest = await module.InferenceSession.create(`${SITE}vendor/selftest.onnx`, {
    executionProviders: provider === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
  });
  timings.ort_ms = since();
  return { module, provider, threads, notice, selftest, session_ms: performance.now() - clock, at_ms: timings.ort_ms };
}

/** @type {Map<string, Promise<any>>} decoder sessions by model folder URL */
const decoders = new Map();
/** @type {Promise<any> | null} startOrt's, once started */
let ortStarted = null;
/** @type {() => void} */
let interpreterLoaded = () => {};
const interpreter = new Promise((resolve) => {
  interpreterLoaded = () => resolve(undefined);
});

/**
 * The decoder session of a model folder, made once (pyapp.web.worker's Loader asks for it when a photo opens;
 * the page's early "warm-decoder" may have made it already). A session that could not be made is forgotten,
 * so that the next ask tries again and reports why.
 * @param {string} modelUrl  the model's folder, ending in /
 * @param {Uint8Array} bytes  the decoder file
 * @param {string} family  model.json's: SAM2's decoder runs ~25 % faster fully optimised (0.35 s to create);
 *   the baseline's 900 small nodes take 1.1 s to optimise fully for no gain ("basic": 0.1 s)
 */
function decoderSession(modelUrl, bytes, family) {
  let made = decoders.get(modelUrl);
  if (!made) {
    made = (async () => {
      const { module, provider } = await /** @type {Promise<any>} */ (ortStarted);
      return module.InferenceSession.create(bytes, {
        executionProviders: provider === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
        graphOptimizationLevel: family === "sam2.1" ? "all" : "basic",
      });
    })();
    decoders.set(modelUrl, made);
    made.catch(() => decoders.delete(modelUrl));
  }
  return made;
}

decoderSession.has = (/** @type {string} */ modelUrl) => decoders.has(modelUrl);

/** The page's demo decoder, sent while Python boots: its session made and run once on zeros (its answer
 * unread), so that its first clicks run at full pace. A failure is left for the photo's opening to report. */
async function warmDecoder(/** @type {{model_url: string, family: string, decoder: ArrayBuffer}} */ data) {
  if (!ortStarted || decoders.has(data.model_url)) return;
  try {
    await interpreter;
    const session = await decoderSession(data.model_url, new Uint8Array(data.decoder), data.family);
    const { module } = await ortStarted;
    /** @type {Record<string, any>} */
    const feeds = {};
    for (const input of session.inputMetadata) {
      if (!input.isTensor || input.type !== "float32") return; // a decoder this warm-up does not know
      const dims = input.shape.map((/** @type {number | string} */ d) => (typeof d === "number" && d > 0 ? d : 1));
      feeds[input.name] = new module.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    await session.run(feeds);
  } catch (error) {
    console.warn("samtab: the decoder's early warm-up failed:", error);
  }
}

/** The snapshot's bytes; null when this build has none (tools/vendor.py makes one); an Error when it could
 * not be read. */
async function snapshotBytes() {
  try {
    const response = await fetch(SNAPSHOT);
    if (!response.ok || !response.body) return null;
    const stream = response.body.pipeThrough(new DecompressionStream("gzip"));
    const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    const magic = bytes.length >= 4 ? new DataView(bytes.buffer).getUint32(0, true) : 0;
    if (magic !== SNAPSHOT_MAGIC || bytes.length < SNAPSHOT_MIN_BYTES || bytes.length % 65536) {
      return new Error(`${SNAPSHOT} is not a Pyodide snapshot (${bytes.length} bytes)`);
    }
    timings.snapshot_ms = since();
    return bytes;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

async function startPython() {
  const app = fetch(`${SITE}vendor/pyapp.zip`).then((response) => {
    if (!response.ok) throw new Error(`vendor/pyapp.zip answered HTTP ${response.status}`);
    return response.arrayBuffer();
  });
  const snapshot = snapshotBytes();
  const { loadPyodide } = await import(`${PYODIDE}pyodide.mjs`);
  const options = { indexURL: PYODIDE, packages: PACKAGES, env: { HOME: "/home/pyodide" } };
  let pyodide = null;
  let from = "snapshot";
  try {
    // (Given the promise, Pyodide loads its runtime while the snapshot still arrives.)
    pyodide = await loadPyodide({
      ...options,
      _loadSnapshot: snapshot.then((bytes) => {
        if (bytes instanceof Uint8Array) return bytes;
        throw bytes ?? new Error("this build has no snapshot");
      }),
    });
  } catch (error) {
    // No snapshot, another build's, or a damaged one: the interpreter starts as it would without one.
    from = (await snapshot) === null ? "none" : "fallback";
    if (from === "fallback") console.warn(`samtab: the Python snapshot was not used (${error}); starting without it`);
    pyodide = await loadPyodide(options);
  }
  timings.interpreter_ms = since();
  interpreterLoaded();
  pyodide.unpackArchive(await app, "zip");
  return { pyodide, from };
}

async function boot() {
  const ort = startOrt();
  ortStarted = ort;
  ort.catch(() => {}); // its failure is Python's to report, once Python runs
  const { pyodide, from } = await startPython();
  const worker = pyodide.pyimport("pyapp.web.worker");
  timings.python_ms = since();
  self.postMessage({ type: "python", snapshot: from, timings });
  const channel = {
    postMessage: (/** @type {any} */ message, /** @type {Transferable[]} */ transfer = []) =>
      self.postMessage(message, transfer),
    /** @type {((event: MessageEvent) => void) | null} */
    onmessage: null,
  };
  worker.start(channel, ort, decoderSession);
  deliver = (event) => channel.onmessage?.(event);
  for (const event of queued.splice(0)) deliver(event);
}

boot().catch((error) => {
  console.error("samtab: Python could not start:", error);
  self.postMessage({ type: "boot-failed", message: String(error?.message || error) });
});
