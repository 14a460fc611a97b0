// samtab's main-thread edge: paints the image area at once, starts the Python worker, moves messages
// between them, and keeps the page's observable contract (README, "Observable contract"):
//   <body data-state>   booting → ready | busy | error
//   #status             the status text a person reads
//   samtab:* events     CustomEvents on window; detail carries timings in ms since navigation start
// All the app's work happens in Python in the worker (site/worker.py → pyapp.web.worker); nothing here
// computes pixels or runs a model.

const WORKER_SCRIPT = "./worker.py";
// The worker's PyScript config (packages from vendor/pyodide's lock, the pyapp zip, onnxruntime-web).
// It is passed as an object: PyScript 0.6.66 hands a config given by URL to the worker's Python as a
// bare string, which breaks `pyscript.config`.
const WORKER_CONFIG = "./worker.json";
const PYODIDE_MODULE = "./vendor/pyodide/pyodide.mjs";
const PYSCRIPT_MODULE = "./vendor/pyscript/core.js";

const statusLine = document.getElementById("status");
const statusDetail = document.getElementById("status-detail");
const canvas = document.getElementById("canvas");
const timings = {};

const now = () => Math.round(performance.now() * 10) / 10;

function emit(name, detail = {}) {
  window.dispatchEvent(new CustomEvent(`samtab:${name}`, { detail: { ...detail, t_ms: now() } }));
}

function setState(state) {
  document.body.dataset.state = state;
}

function setStatus(text, phase, detail = "") {
  statusLine.textContent = text;
  statusDetail.textContent = detail;
  emit("status", { text, phase });
}

function fail(phase, message, hint = "") {
  setState("error");
  statusLine.textContent = message;
  statusDetail.textContent = hint;
  emit("error", { phase, message, hint });
  console.error(`samtab: ${phase}: ${message}`);
}

function paintPlaceholder() {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  ctx.fillStyle = dark ? "#262624" : "#ececea";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = dark ? "#8a8a84" : "#77776f";
  ctx.font = "28px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillText("Your photo appears here", width / 2, height / 2);
}

// Why the runtime might be missing, in words a person can act on.
async function explainBootFailure(error) {
  try {
    const response = await fetch(PYODIDE_MODULE, { method: "HEAD" });
    if (!response.ok) {
      return ["The Python runtime is not on this server.",
        "Build it with `python tools/vendor.py` (or start the site with `python tools/serve.py`), then reload."];
    }
  } catch { /* the network itself failed: fall through */ }
  return [`Python could not start: ${error?.message || error}`, "Reload the page to try again."];
}

function onWorkerMessage({ data }) {
  switch (data?.type) {
    case "status":
      setStatus(data.text, data.phase);
      break;
    case "ready": {
      timings.ort_ms = now();
      const detail = { ...data.info, timings: { ...timings, worker: data.info.timings } };
      setState("ready");
      setStatus("Click anywhere on the image", "ready");
      emit("ready", detail);
      break;
    }
    case "error":
      fail(data.phase || "worker", data.message, data.hint || "");
      break;
    default:
      console.warn("samtab: unknown worker message", data);
  }
}

async function boot() {
  setState("booting");
  emit("boot", { cross_origin_isolated: crossOriginIsolated });
  paintPlaceholder();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  timings.painted_ms = now();
  emit("painted", { painted_ms: timings.painted_ms });

  setStatus("Starting Python…", "python");
  // PyScript reports its own steps (Loading Pyodide, Loading numpy, …); show them under the status line.
  addEventListener("py:progress", ({ detail }) => {
    if (document.body.dataset.state === "booting") statusDetail.textContent = String(detail);
  });
  let worker;
  try {
    const configRequest = fetch(WORKER_CONFIG).then((response) => {
      if (!response.ok) throw new Error(`${WORKER_CONFIG}: HTTP ${response.status}`);
      return response.json();
    });
    const { PyWorker } = await import(PYSCRIPT_MODULE);
    // PyScript registers the hooks that install its `pyscript` package in a worker only once its plugins
    // have loaded, then defines <py-script>; a PyWorker created before that starts without `pyscript`.
    await customElements.whenDefined("py-script");
    worker = await PyWorker(WORKER_SCRIPT, {
      config: await configRequest,
      // PyScript's worker lives at a blob: URL, so the interpreter must be named by an absolute URL.
      version: new URL(PYODIDE_MODULE, document.baseURI).href,
    });
  } catch (error) {
    const [message, hint] = await explainBootFailure(error);
    fail("python", message, hint);
    return;
  }
  timings.python_ms = now();
  emit("python", { python_ms: timings.python_ms });
  worker.onerror = (event) => fail("worker", `The worker stopped: ${event.error?.message || event.message || event}`,
    "Reload the page to try again.");
  worker.addEventListener("message", onWorkerMessage);
  setStatus("Loading the decoder…", "ort");
  worker.postMessage({ type: "boot", base: new URL("./", document.baseURI).href });
}

addEventListener("error", (event) => fail("page", `Something went wrong: ${event.message}`, "Reload the page to try again."));
addEventListener("unhandledrejection", (event) =>
  fail("page", `Something went wrong: ${event.reason?.message || event.reason}`, "Reload the page to try again."));

boot();
