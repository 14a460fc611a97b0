// @ts-check
// The encoder's own worker (issue 17): a person's photo without a bundle is encoded here, in onnxruntime-web,
// never on the main thread and never in the decoder's worker (an encode takes seconds and a WebAssembly run
// cannot be interrupted: the page cancels one by terminating this worker, which its watchdog never pings).
// The page starts it when it is first needed (js/encode.js).
//
//   in:  {type: "encode", id, url, input, tensor: ArrayBuffer (1x3x1024x1024 float32), threads}
//        url: the encoder file (fetched once, then its session kept for the next photos)
//   out: {type: "progress", id, received, total}   the encoder file downloading (bytes)
//        {type: "encoding", id}                    downloaded and its session made: the run starts
//        {type: "encoded", id, outputs: {name: ArrayBuffer (float32)}, timings: {download_ms, session_ms,
//         run_ms}, provider, threads}
//        {type: "failed", id, message}

const ORT = new URL("./vendor/ort/", import.meta.url).href;
const MAX_THREADS = 4;

/** @type {{module: any, provider: string, threads: number} | null} */
let runtime = null;
/** @type {{url: string, session: any} | null} */
let loaded = null;

/** onnxruntime-web: the WebGPU build when the browser offers an adapter, else WASM (threads when isolated). */
async function start(/** @type {number} */ cap) {
  let threads = 1;
  if (self.crossOriginIsolated) {
    threads = Math.max(1, Math.min(cap || MAX_THREADS, MAX_THREADS, navigator.hardwareConcurrency || 1));
  }
  let provider = "wasm";
  try {
    // @ts-expect-error: WebGPU's types are not in this project's lib
    if (navigator.gpu && (await navigator.gpu.requestAdapter())) provider = "webgpu";
  } catch {
    /* no adapter: WebAssembly */
  }
  const module = await import(`${ORT}${provider === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"}`);
  module.env.wasm.proxy = false; // this already is a worker
  module.env.wasm.numThreads = threads;
  return { module, provider, threads };
}

/** The encoder file's bytes, its download reported as it goes. */
async function download(/** @type {string} */ url, /** @type {number} */ id) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the encoder could not be loaded (${url} answered HTTP ${response.status})`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const bytes = new Uint8Array(total);
  let received = 0;
  let reported = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > total) throw new Error("the encoder file is larger than its server said");
    bytes.set(value, received);
    received += value.length;
    if (performance.now() - reported > 150) {
      reported = performance.now();
      postMessage({ type: "progress", id, received, total });
    }
  }
  return bytes.subarray(0, received);
}

self.onmessage = async ({ data }) => {
  if (data?.type !== "encode") return;
  const { id } = data;
  try {
    runtime ??= await start(data.threads);
    const timings = { download_ms: 0, session_ms: 0, run_ms: 0 };
    if (loaded?.url !== data.url) {
      let clock = performance.now();
      const bytes = await download(data.url, id);
      timings.download_ms = Math.round(performance.now() - clock);
      clock = performance.now();
      const session = await runtime.module.InferenceSession.create(bytes, {
        executionProviders: runtime.provider === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
      });
      timings.session_ms = Math.round(performance.now() - clock);
      loaded = { url: data.url, session };
    }
    postMessage({ type: "encoding", id });
    const clock = performance.now();
    const image = new runtime.module.Tensor("float32", new Float32Array(data.tensor), [1, 3, 1024, 1024]);
    const results = await loaded.session.run({ [data.input]: image });
    timings.run_ms = Math.round(performance.now() - clock);
    /** @type {Record<string, ArrayBuffer>} */
    const outputs = {};
    for (const [name, tensor] of Object.entries(results)) {
      const values = /** @type {Float32Array} */ (tensor.data);
      outputs[name] = values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength);
      tensor.dispose?.();
    }
    postMessage(
      { type: "encoded", id, outputs, timings, provider: runtime.provider, threads: runtime.threads },
      Object.values(outputs),
    );
  } catch (error) {
    postMessage({ type: "failed", id, message: String(error?.message ?? error) });
  }
};
