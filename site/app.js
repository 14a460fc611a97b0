// samtab's main-thread edge. It moves events and pixels and nothing else: every prompt, mask, view and
// export is computed by Python (pyapp) in the PyScript worker (site/worker.py → pyapp.web.worker), which
// sends back ready-to-paint RGBA frames and the state of the controls.
//
// The observable contract (README, "Observable contract"):
//   <body data-state>   booting → ready; busy while a photo opens or a mask is computed; error
//   #status             the status text a person reads
//   samtab:* events     CustomEvents on window; every detail has t_ms (ms since navigation start)

const WORKER_SCRIPT = "./worker.py";
// The worker's PyScript config (the packages from vendor/pyodide's lock, and the pyapp zip). It is passed
// as an object: PyScript 0.6.66 hands a config given by URL to the worker's Python as a bare string.
const WORKER_CONFIG = "./worker.json";
const PYODIDE_MODULE = "./vendor/pyodide/pyodide.mjs";
const PYSCRIPT_MODULE = "./vendor/pyscript/core.js";
const DEMO_INDEX = "./demos/index.json";
const DRAG_THRESHOLD_PX = 6;
const LONG_PRESS_MS = 550;
const VIEWS = ["overlay", "cutout", "erase"];
// A worker that has said nothing for this long (it answers a ping every few seconds) has died; while it
// starts (numpy, Pillow and onnxruntime-web load and compile), it may be silent for longer.
const WATCHDOG_MS = 10_000;
const BOOT_WATCHDOG_MS = 45_000;
const PING_MS = 2_500;
// A worker that fails this many times within RESTART_WINDOW_MS is not restarted again: something is
// wrong that a restart does not cure, and the person is told so.
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;
// What a person reads is kept short: errors from libraries can be kilobytes long.
const MAX_MESSAGE = 300;
// Files a person opens are checked before they are read into memory. A bundle is never larger than this
// (pyapp.bundle.MAX_BUNDLE_BYTES). Photos are refused past 100 MP from their header (pyapp.image); a file
// past MAX_PHOTO_FILE_BYTES is larger than any such photo's JPEG or PNG is likely to be, and would be
// copied into the tab's memory before its header could be read.
const MAX_BUNDLE_BYTES = 20 * 2 ** 20;
const MAX_PHOTO_FILE_BYTES = 256 * 2 ** 20;

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const statusLine = $("status");
const statusDetail = $("status-detail");

const state = {
  worker: null,
  workerReady: false,
  readyInfo: null,
  demos: [],
  models: {}, // model name → absolute URL of its folder
  photo: null, // {kind: "demo"|"files", seq, ...}: the photo chosen last (its pixels may still be coming)
  shown: null, // the photo whose pixels are on the canvas: clicks land on it, or nowhere
  openSeq: 0,
  opened: false, // the worker has the current photo
  // Commands (clicks, boxes, undo, names, views…) for the current photo, numbered by `cmd`:
  outbox: [], // not sent yet (the photo is still opening, or the worker restarting)
  unacked: new Map(), // sent, not answered yet (cmd → message), in the order sent
  log: [], // applied by the worker, in order, each click or box saying whether it joined the step before:
  //          replayed into a restarted worker, and saved (IndexedDB) to be restored after a reload
  cmdSeq: 0,
  controls: null, // the last state the worker sent
  excludeMode: false,
  view: "overlay",
  opacity: 0.5,
  opening: false, // a photo is being opened
  inputSeq: 0, // clicks and boxes sent, counted
  covered: 0, // the last of them the worker has settled (decoded, with nothing left to decode)
  restarts: 0,
  restartTimes: [],
  timings: {},
};

const now = () => Math.round(performance.now() * 10) / 10;

function emit(name, detail = {}) {
  window.dispatchEvent(new CustomEvent(`samtab:${name}`, { detail: { ...detail, t_ms: now() } }));
}

function updateState() {
  if (state.error) return; // an error stays on show until the person does something
  const busy = state.opening || state.covered < state.inputSeq;
  document.body.dataset.state = !state.workerReady ? "booting" : busy ? "busy" : "ready";
}

function clearError() {
  if (state.error === "kept") state.error = null; // fatal errors stay
}

function setStatus(text, phase, detail = "", notice = false) {
  statusLine.textContent = text;
  statusDetail.textContent = detail;
  statusDetail.classList.toggle("notice", notice);
  emit("status", { text, phase });
}

// fatal: the page cannot go on (boot failed). Otherwise the work so far is kept, and the message stays
// until the person's next action.
function brief(text) {
  const line = String(text ?? "").trim().split("\n")[0];
  return line.length <= MAX_MESSAGE ? line : `${line.slice(0, MAX_MESSAGE - 1)}…`;
}

function fail(phase, message, hint = "", fatal = true) {
  message = brief(message);
  hint = brief(hint);
  console.error(`samtab: ${phase}: ${message}`);
  statusLine.textContent = message;
  statusDetail.textContent = hint;
  statusDetail.classList.remove("notice");
  state.error = fatal ? "fatal" : "kept";
  document.body.dataset.state = "error";
  emit("error", { phase, message, hint, fatal });
}

// --- painting ------------------------------------------------------------------------------------------

function paintPlaceholder(text) {
  const { width, height } = canvas;
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  ctx.fillStyle = dark ? "#262624" : "#ececea";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = dark ? "#8a8a84" : "#77776f";
  ctx.font = "26px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillText(text, width / 2, height / 2);
}

function viewSize(width, height, maxEdge = 1024) {
  const scale = Math.min(1, maxEdge / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

// The photo appears as soon as its image has loaded, before Python is ready.
async function paintPhoto(source, width, height, stillWanted = () => true) {
  const bitmap = source instanceof Blob ? await createImageBitmap(source) : await loadImage(source);
  if (!stillWanted()) return null; // another photo was chosen while this one loaded
  const [w, h] = viewSize(width || bitmap.width, height || bitmap.height);
  canvas.width = w;
  canvas.height = h;
  fitCanvas();
  ctx.drawImage(bitmap, 0, 0, w, h);
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return { width: width || bitmap.width, height: height || bitmap.height };
}

// The canvas's CSS size: the photo as large as the image area allows, aspect kept. Clicks are mapped
// from this CSS box (pyapp.coords), so any CSS scale and any device pixel ratio put masks under the cursor.
function fitCanvas() {
  const area = $("image-area");
  const style = getComputedStyle(area);
  const width = area.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const top = area.getBoundingClientRect().top;
  const height = Math.max(200, innerHeight - Math.max(0, top) - 24);
  const scale = Math.min(width / canvas.width, height / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * scale)}px`;
  canvas.style.height = `${Math.floor(canvas.height * scale)}px`;
}
let areaWidth = 0;
new ResizeObserver(([entry]) => {
  // Only a change of width matters (the area's height follows the canvas: refitting on it would loop).
  if (Math.abs(entry.contentRect.width - areaWidth) < 1) return;
  areaWidth = entry.contentRect.width;
  requestAnimationFrame(fitCanvas); // after this layout, not inside it
}).observe($("image-area"));
addEventListener("resize", fitCanvas);

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`the photo ${url} could not be loaded`));
    image.src = url;
  });
}

function paintFrame({ width, height, pixels }) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
    fitCanvas();
  }
  ctx.putImageData(new ImageData(new Uint8ClampedArray(pixels), width, height), 0, 0);
}

// --- the worker ----------------------------------------------------------------------------------------

async function explainBootFailure(error) {
  try {
    const response = await fetch(PYODIDE_MODULE, { method: "HEAD" });
    if (!response.ok) {
      return ["The Python runtime is not on this server.",
        "Build it with `python tools/vendor.py` (or start the site with `python tools/serve.py`), then reload."];
    }
  } catch { /* the network itself failed */ }
  return [`Python could not start: ${error?.message || error}`, "Reload the page to try again."];
}

async function startWorker() {
  state.workerReady = false;
  updateState();
  setStatus(state.restarts ? "Restarting Python…" : "Starting Python…", "python");
  let worker;
  try {
    const configRequest = fetch(WORKER_CONFIG).then((response) => {
      if (!response.ok) throw new Error(`${WORKER_CONFIG}: HTTP ${response.status}`);
      return response.json();
    });
    const { PyWorker } = await import(PYSCRIPT_MODULE);
    // PyScript installs its `pyscript` package in a worker through hooks it registers only once its
    // plugins have loaded, then it defines <py-script>; a PyWorker created before that lacks them.
    await customElements.whenDefined("py-script");
    worker = await PyWorker(WORKER_SCRIPT, {
      config: await configRequest,
      // A PyScript worker lives at a blob: URL, so the interpreter is named by an absolute URL.
      version: new URL(PYODIDE_MODULE, document.baseURI).href,
    });
  } catch (error) {
    const [message, hint] = await explainBootFailure(error);
    fail("python", message, hint);
    return;
  }
  if (state.failedForGood) {
    worker.terminate();
    return;
  }
  state.timings.python_ms = now();
  emit("python", { python_ms: state.timings.python_ms });
  state.worker = worker;
  worker.onerror = (event) => onWorkerCrash(event.error?.message || event.message || String(event));
  worker.addEventListener("message", onWorkerMessage);
  watchWorker(worker);
  setStatus("Loading the decoder…", "ort");
  // ?threads=N caps onnxruntime-web's threads (benchmarks compare 1 thread with many).
  const query = new URLSearchParams(location.search);
  const threads = Number(query.get("threads")) || 0;
  // ?diagnostics=1 counts live PyProxies for the stats that leak checks read (a little slower).
  worker.postMessage({ type: "boot", base: new URL("./", document.baseURI).href, threads,
    diagnostics: query.get("diagnostics") === "1" });
}

// The worker can die without a word (a crash in WebAssembly, the browser reclaiming memory): while it
// is up, it is pinged, and silence past WATCHDOG_MS counts as a crash.
function watchWorker(worker) {
  state.lastHeard = performance.now();
  const timer = setInterval(() => {
    if (state.worker !== worker) {
      clearInterval(timer);
      return;
    }
    if (performance.now() - state.lastHeard > (state.workerReady ? WATCHDOG_MS : BOOT_WATCHDOG_MS)) {
      clearInterval(timer);
      onWorkerCrash("it stopped answering");
      return;
    }
    worker.postMessage({ type: "ping" });
  }, PING_MS);
}

function onWorkerCrash(reason) {
  if (state.worker) {
    state.worker.terminate();
    state.worker = null;
  }
  state.workerReady = false;
  state.opened = false;
  state.opening = !!state.photo; // it is opened again in the new worker
  const recent = state.restartTimes.filter((t) => performance.now() - t < RESTART_WINDOW_MS);
  if (recent.length >= MAX_RESTARTS) {
    state.failedForGood = true;
    fail("worker", `The worker failed ${recent.length + 1} times in a minute (last: ${reason}); it is not restarted again.`,
      "Your photo is still shown. Reload the page to try again; if it keeps happening, try another browser.");
    return;
  }
  state.restartTimes = [...recent, performance.now()];
  state.restarts += 1;
  state.restarting = true;
  fail("worker", `The worker stopped (${reason}); restarting it. Your objects and clicks are kept.`, "", false);
  startWorker();
}

function send(message, transfer = []) {
  state.worker.postMessage(message, transfer);
}

// What changes the photo's state goes through here, numbered: sent now if the photo is open in the worker,
// otherwise kept and sent once it is (clicks made while loading are not lost). The worker answers each:
// applied (it joins the log that a restarted worker replays and that is saved for after a reload) or
// refused (forgotten).
function command(message) {
  if (!state.photo) return;
  clearError();
  message.cmd = ++state.cmdSeq;
  if (message.type === "click" || message.type === "box") {
    message.id = ++state.inputSeq;
    updateState();
  }
  if (state.opened && state.workerReady) {
    state.unacked.set(message.cmd, message);
    send(message);
  } else {
    state.outbox.push(message);
  }
}

// An export changes nothing: it is not numbered, kept or replayed (the worker answers with the file).
function exportFile(what) {
  if (state.opened && state.workerReady) send({ type: "export", what });
}

function flushOutbox() {
  const outbox = state.outbox;
  state.outbox = [];
  for (const message of outbox) {
    state.unacked.set(message.cmd, message);
    send(message);
  }
}

// A restarted worker, once the photo is open again: the log as one replay (rebuilding the same steps), with
// any restored commands not yet answered (they replay too); then what was sent and not yet answered, then
// what waited.
function resume() {
  const pending = [...state.unacked.values()];
  const replayed = [...state.log, ...pending.filter((message) => "joins" in message)];
  if (replayed.length) send({ type: "replay", messages: replayed });
  for (const message of pending) if (!("joins" in message)) send(message);
  flushOutbox();
}

function acknowledge(cmd, joins) {
  const message = state.unacked.get(cmd);
  if (!message) return; // a replayed command, already in the log
  state.unacked.delete(cmd);
  state.log.push(joins === undefined ? message : { ...message, joins });
  restored();
}

function forget(cmd) {
  state.unacked.delete(cmd);
  const index = state.log.findIndex((message) => message.cmd === cmd);
  if (index >= 0) state.log.splice(index, 1);
  restored();
}

function onWorkerMessage({ data }) {
  state.lastHeard = performance.now();
  switch (data?.type) {
    case "pong":
      break;
    case "stats":
      emit("stats", { ...data, type: undefined, page: { log: state.log.length, unacked: state.unacked.size,
        outbox: state.outbox.length,
        js_heap_bytes: performance.memory?.usedJSHeapSize ?? null, restarts: state.restarts } });
      break;
    case "applied":
      acknowledge(data.cmd, data.joins);
      break;
    case "refused":
      forget(data.cmd);
      break;
    case "settled":
      state.covered = Math.max(state.covered, data.input);
      updateState();
      break;
    case "status":
      setStatus(data.text, data.phase);
      break;
    case "ready": {
      state.workerReady = true;
      clearError();
      state.readyInfo = data.info;
      state.timings.ort_ms = now();
      updateState();
      emit("ready", { ...data.info, timings: { ...state.timings, worker: data.info.timings } });
      if (state.photo) openInWorker();
      else setStatus("Choose a demo, or open your own photo and its bundle", "ready", data.info.notice || "", !!data.info.notice);
      break;
    }
    case "opened": {
      if (data.seq !== state.photo?.seq) break; // an older photo, replaced meanwhile
      state.opened = true;
      state.opening = false;
      if (state.restarting) {
        resume();
        clearError(); // the restart worked: its notice has done its job
      } else {
        state.photo.key = `${data.photo_key}|${data.model_name}`;
        flushOutbox();
        offerRestore();
      }
      state.restarting = false;
      updateState();
      setStatus("Click anywhere on the image", "ready", state.readyInfo?.notice || "", !!state.readyInfo?.notice);
      emit("opened", { slug: state.photo.slug, width: data.width, height: data.height, model: data.model_name,
        timings: data.timings });
      keepForOffline();
      break;
    }
    case "frame": {
      // (Busy ends with "settled", when the worker has nothing left to decode, for any object.)
      if (data.seq !== state.photo?.seq) { // a photo replaced meanwhile: not painted over the new one
        updateState();
        break;
      }
      const started = performance.now();
      paintFrame(data);
      state.shown = state.photo;
      renderControls(data.state);
      if (data.mask) {
        requestAnimationFrame(() => {
          const painted = performance.now();
          const latency = { ...data.mask.latency_ms, paint: Math.round((painted - started) * 10) / 10 };
          if (data.t0 != null) latency.total = Math.round((painted - data.t0) * 10) / 10;
          updateState();
          describeMask(data.mask, data.state);
          emit("mask", { ...data.mask, latency_ms: latency });
        });
      }
      break;
    }
    case "download":
      download(data.name, data.mime, data.data);
      emit("export", { what: data.what, name: data.name, bytes: data.data.byteLength });
      break;
    case "error":
      if (data.restart) {
        onWorkerCrash(data.message);
        break;
      }
      if (data.refused !== undefined) forget(data.refused);
      state.covered = state.inputSeq;
      state.opening = false;
      if (data.phase === "open" && state.previousPhoto) {
        // The new files were refused: the worker kept the photo it had, and so does the page.
        state.photo = state.previousPhoto;
        state.shown = state.photo;
        state.opened = true;
        ({ log: state.log, unacked: state.unacked, outbox: state.outbox, sessionId: state.sessionId } =
          state.photo.work);
        if (state.controls) requestRedraw();
      }
      fail(data.phase, data.message, data.hint, !!data.fatal);
      break;
    default:
      console.warn("samtab: unknown worker message", data);
  }
}

function describeMask(mask, controls) {
  const object = controls?.objects.find((o) => o.id === mask.object);
  if (!object) return;
  const clicks = `${object.clicks} click${object.clicks === 1 ? "" : "s"}`;
  setStatus(`${object.name}: ${clicks}, mask ${mask.mask_index + 1} of 3 (score ${mask.iou.toFixed(2)})`, "mask",
    "Left-click adds, right-click removes, drag draws a box; N starts a new object.");
}

// Ask the service worker to keep everything this visit needed, so the next one works offline: what the
// page loaded, the runtime the Python worker loaded (every vendor/ file; the WebGPU build only if used), and
// the open demo's files with every decoder its model names (never the encoder, which the site does not have).
async function keepForOffline() {
  const controller = navigator.serviceWorker?.controller;
  if (!controller) return;
  const urls = new Set(performance.getEntriesByType("resource").map((entry) => entry.name.split("#")[0])
    .filter((url) => new URL(url).origin === location.origin));
  urls.add(new URL("./", document.baseURI).href);
  const demo = state.photo?.demo;
  if (demo) {
    for (const url of [demo.previewUrl, demo.bundleUrl, `${demo.modelUrl}model.json`]) urls.add(url);
    try {
      const model = await (await fetch(`${demo.modelUrl}model.json`)).json();
      for (const [part, file] of Object.entries(model.files)) {
        if (part !== "encoder") urls.add(new URL(file, demo.modelUrl).href);
      }
    } catch { /* offline already: keep what is known */ }
  }
  controller.postMessage({ type: "keep", urls: [...urls], webgpu: state.readyInfo?.execution_provider === "webgpu" });
}
// A new build's service worker took over (the site was redeployed): it keeps its own copies.
navigator.serviceWorker?.addEventListener("controllerchange", () => {
  if (state.opened) keepForOffline();
});

function requestRedraw() {
  send({ type: "view", view: state.view, opacity: state.opacity });
}

function download(name, mime, data) {
  const url = URL.createObjectURL(new Blob([data], { type: mime }));
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// --- saved work ----------------------------------------------------------------------------------------
// After each change the photo's log is saved in IndexedDB (under the photo's sha256 and the model's name,
// one entry per visit), so that a reload, a crashed tab or a closed window loses nothing: when the same
// photo opens again with the same model, the page offers to restore the newest earlier entry. Nothing is
// ever overwritten by another visit; each photo keeps its SAVES_PER_PHOTO newest entries, and all photos
// together SAVES_MAX.
const SAVES_DB = "samtab-work";
const SAVES_STORE = "sessions";
const SAVES_PER_PHOTO = 3;
const SAVES_MAX = 30;
const SAVE_DELAY_MS = 300;
let savesDb = null;
let saveTimer = 0;

function saves(mode, work) {
  if (!savesDb) {
    savesDb = new Promise((resolve, reject) => {
      const request = indexedDB.open(SAVES_DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(SAVES_STORE, { keyPath: "id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return savesDb.then((db) => new Promise((resolve, reject) => {
    const transaction = db.transaction(SAVES_STORE, mode);
    const request = work(transaction.objectStore(SAVES_STORE));
    transaction.oncomplete = () => resolve(request?.result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  }));
}

// Saved when the page has been still for SAVE_DELAY_MS and the main thread is idle: never in a click's way.
function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => requestIdleCallback(() => saveWork()
    .catch((error) => console.warn("samtab: work not saved:", error)), { timeout: 2000 }), SAVE_DELAY_MS);
}

async function saveWork() {
  const photo = state.photo;
  const controls = state.controls;
  if (!photo?.key || !controls?.open || state.shown !== photo) return;
  const objects = controls.objects.filter((object) => object.clicks > 0);
  const id = state.sessionId;
  if (!objects.length) {
    await saves("readwrite", (store) => store.delete(id));
    return;
  }
  const log = [...state.log, ...state.unacked.values(), ...state.outbox];
  await saves("readwrite", (store) => store.put({ id, key: photo.key, saved: Date.now(), objects: objects.length,
    clicks: objects.reduce((sum, object) => sum + object.clicks, 0), log }));
  if (state.pruned === id) return; // older saves are pruned once a visit, when its own is first written
  state.pruned = id;
  const entries = (await saves("readonly", (store) => store.getAll())).sort((a, b) => b.saved - a.saved);
  const perPhoto = {};
  const surplus = entries.filter((entry, index) => {
    perPhoto[entry.key] = (perPhoto[entry.key] || 0) + 1;
    return perPhoto[entry.key] > SAVES_PER_PHOTO || index >= SAVES_MAX;
  });
  if (surplus.length) await saves("readwrite", (store) => { for (const entry of surplus) store.delete(entry.id); });
}

function ago(ms) {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? "" : "s"} ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} hour${hours === 1 ? "" : "s"} ago`;
  return `${Math.round(hours / 24)} days ago`;
}

async function offerRestore() {
  const photo = state.photo;
  let entries;
  try {
    entries = (await saves("readonly", (store) => store.getAll()))
      .filter((entry) => entry.key === photo.key && entry.id !== state.sessionId && entry.objects > 0)
      .sort((a, b) => b.saved - a.saved);
  } catch (error) {
    console.warn("samtab: saved work cannot be read:", error);
    return;
  }
  if (state.photo !== photo || !state.opened || !entries.length) return;
  const [entry] = entries;
  state.restoreOffer = entry;
  const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
  $("restore-text").textContent = `Your earlier work on this photo is saved: ${plural(entry.objects, "object")}, ` +
    `${plural(entry.clicks, "click")}, ${ago(Date.now() - entry.saved)}.`;
  $("restore").hidden = false;
  emit("restore-offer", { objects: entry.objects, clicks: entry.clicks, saved: entry.saved });
}

function hideRestore() {
  state.restoreOffer = null;
  $("restore").hidden = true;
}

// The saved log is applied like a restarted worker's: a replay rebuilds the same steps and masks. Work
// done on this visit before restoring is dropped from the view but stays saved under this visit's entry.
function restoreWork() {
  const entry = state.restoreOffer;
  hideRestore();
  if (!entry || !state.opened || !state.workerReady) return;
  clearError();
  if (state.log.length || state.unacked.size || state.outbox.length) {
    send({ type: "reset" });
    state.log = [];
    state.unacked = new Map();
    state.outbox = [];
    state.sessionId = `${state.sessionId}-r`;
  }
  const messages = entry.log.map((message) => {
    const renumbered = { ...message, cmd: ++state.cmdSeq };
    if (message.type === "click" || message.type === "box") renumbered.id = ++state.inputSeq;
    state.unacked.set(renumbered.cmd, renumbered);
    return renumbered;
  });
  state.restoring = { messages: messages.length, objects: entry.objects };
  updateState();
  setStatus("Restoring your earlier work…", "open");
  send({ type: "replay", messages });
}

// The worker has answered every restored command: say so.
function restored() {
  if (!state.restoring || state.unacked.size) return;
  const { messages, objects } = state.restoring;
  state.restoring = null;
  setStatus(`Your earlier work is back: ${objects} object${objects === 1 ? "" : "s"}.`, "ready",
    "Ctrl+Z takes back its steps one by one.");
  emit("restored", { messages, objects });
}

// --- photos --------------------------------------------------------------------------------------------

async function loadGallery() {
  try {
    const response = await fetch(DEMO_INDEX);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const index = await response.json();
    state.demos = index.demos.map((demo) => ({
      ...demo,
      previewUrl: new URL(demo.preview, response.url).href,
      bundleUrl: new URL(demo.bundle, response.url).href,
      modelUrl: new URL(demo.model, response.url).href,
    }));
  } catch (error) {
    setStatus("The demo gallery is missing", "gallery",
      "Build it with `python tools/demos.py` (tools/serve.py does it for you). You can still open your own photo.");
  }
  for (const demo of state.demos) state.models[demo.model_name] = demo.modelUrl;
  const list = $("gallery");
  list.replaceChildren(...state.demos.map((demo) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.slug = demo.slug;
    button.title = `${demo.title}: ${demo.credit} (${demo.licence})`;
    const image = Object.assign(document.createElement("img"), { src: demo.previewUrl, alt: "", loading: "lazy" });
    const title = Object.assign(document.createElement("span"), { className: "title", textContent: demo.title });
    const credit = Object.assign(document.createElement("span"), { className: "credit",
      textContent: `${demo.credit} · ${demo.licence}` });
    button.append(image, title, credit);
    button.addEventListener("click", () => openDemo(demo));
    item.append(button);
    return item;
  }));
}

async function demoFromQuery(value) {
  const bySlug = state.demos.find((demo) => demo.slug === value);
  if (bySlug) return bySlug;
  // A relative URL of a demo folder (with its demo.json), on this site only.
  const folder = new URL(value.endsWith("/") ? value : `${value}/`, document.baseURI);
  if (folder.origin !== location.origin) throw new Error("a demo must come from this site");
  const response = await fetch(new URL("demo.json", folder));
  if (!response.ok) throw new Error(`${folder.pathname}demo.json answered HTTP ${response.status}`);
  const demo = await response.json();
  // What demo.json points to must be on this site too (a photo, a bundle or a decoder from elsewhere would
  // be fetched, and run, by this page).
  const urls = {};
  for (const [name, key] of [["previewUrl", "preview"], ["bundleUrl", "bundle"], ["modelUrl", "model"]]) {
    if (typeof demo[key] !== "string") throw new Error(`its demo.json has no ${key}`);
    const url = new URL(demo[key], new URL("demo.json", folder));
    if (url.origin !== location.origin) throw new Error(`its ${key} (${url.origin}) is not on this site`);
    urls[name] = url.href;
  }
  return { ...demo, ...urls };
}

function beginPhoto(photo) {
  clearError();
  if (state.photo) {
    state.photo.work = { log: state.log, unacked: state.unacked, outbox: state.outbox, sessionId: state.sessionId };
  }
  state.previousPhoto = state.opened ? state.photo : null;
  state.photo = photo;
  photo.seq = ++state.openSeq;
  state.opened = false;
  state.outbox = [];
  state.unacked = new Map();
  state.log = [];
  state.sessionId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  hideRestore();
  state.opening = true;
  state.covered = state.inputSeq;
  updateState();
  for (const button of document.querySelectorAll("#gallery button")) {
    button.setAttribute("aria-current", String(button.dataset.slug === photo.slug));
  }
}

// Large downloads start the moment a demo is chosen, in parallel with Python starting up, and show their
// progress; the worker gets the bytes (so the first click waits for a decode, not for a download).
async function fetchWithProgress(url, label) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${label} could not be loaded (${url} answered HTTP ${response.status})`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (!response.body || total < 1 << 20) return response.arrayBuffer();
  const reader = response.body.getReader();
  const bytes = new Uint8Array(total);
  let received = 0;
  let shown = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > bytes.length) throw new Error(`${label} is larger than its server said`);
    bytes.set(value, received);
    received += value.length;
    if (performance.now() - shown > 200 && !state.opened) {
      shown = performance.now();
      statusDetail.textContent = `Loading ${label}: ${(received / 2 ** 20).toFixed(1)} of ${(total / 2 ** 20).toFixed(1)} MB`;
    }
  }
  return bytes.buffer.slice(0, received);
}

async function prefetch(demo) {
  const model = await (await fetch(`${demo.modelUrl}model.json`)).json();
  const [bundle, decoder] = await Promise.all([
    fetchWithProgress(demo.bundleUrl, "the photo's embeddings"),
    fetchWithProgress(new URL(model.files.decoder, demo.modelUrl).href, "the decoder"),
  ]);
  return { bundle, decoder };
}

async function openDemo(demo) {
  beginPhoto({ kind: "demo", slug: demo.slug, demo });
  state.photo.downloads = prefetch(demo);
  state.photo.downloads.catch(() => {}); // reported when the worker needs them
  state.previousPhoto = null; // a demo always replaces the photo
  renderControls(null);
  setStatus(`Opening “${demo.title}”…`, "open");
  const photo = state.photo;
  try {
    if (await paintPhoto(demo.previewUrl, demo.width, demo.height, () => state.photo === photo)) {
      state.shown = photo;
      emit("photo", { slug: demo.slug, painted_ms: now() });
    }
  } catch (error) {
    fail("open", `The photo could not be shown: ${error.message}`, "", false);
  }
  if (state.photo !== photo) return; // another photo was chosen meanwhile: it is the one opened
  if (state.workerReady) openInWorker();
  else setStatus(`“${demo.title}” is shown; Python is still starting…`, "python",
    "Your clicks are kept and applied as soon as it is ready.");
}

async function openFiles(files) {
  files = [...files];
  const bundle = files.find((file) => /\.(msgpack|mpk)$/i.test(file.name));
  const photo = files.find((file) => file !== bundle && (file.type.startsWith("image/") ||
    /\.(jpe?g|png|webp|tiff?|bmp|gif)$/i.test(file.name)));
  if (!photo || !bundle) {
    fail("open", photo ? `Also open the bundle made for ${photo.name} (${photo.name}.msgpack, from tools/encode.py).`
      : bundle ? `Also open the photo that ${bundle.name} was made for.`
        : "Open a photo and the .msgpack bundle that tools/encode.py made for it.",
    "Select both files at once, or drop both on the page.", false);
    return;
  }
  const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  if (bundle.size > MAX_BUNDLE_BYTES) {
    fail("open", `${bundle.name} is ${mb(bundle.size)}: a bundle is at most ${mb(MAX_BUNDLE_BYTES)}, so this is not ` +
      "one tools/encode.py made.", "Your current photo and its objects are kept.", false);
    return;
  }
  if (photo.size > MAX_PHOTO_FILE_BYTES) {
    fail("open", `${photo.name} is ${mb(photo.size)}; this tab opens photo files up to ${mb(MAX_PHOTO_FILE_BYTES)}` +
      " (its memory is limited).", "Scale the photo down, encode it again, and open both. Your current work is kept.",
    false);
    return;
  }
  if (!state.workerReady) {
    fail("open", "Python is still starting: open your files again in a moment.", "", false);
    return;
  }
  const keep = { photo: state.photo, opened: state.opened };
  beginPhoto({ kind: "files", slug: null, photoName: photo.name, bundleName: bundle.name });
  state.previousPhoto = keep.opened ? keep.photo : null;
  setStatus(`Opening ${photo.name}…`, "open");
  const [photoBytes, bundleBytes] = await Promise.all([photo.arrayBuffer(), bundle.arrayBuffer()]);
  state.photo.files = { photo: photoBytes, bundle: bundleBytes };
  openInWorker();
}

async function openInWorker() {
  const photo = state.photo;
  const seq = photo.seq;
  if (photo.kind === "demo") {
    const { demo } = photo;
    const message = { type: "open", seq, bundle_url: demo.bundleUrl, model_url: demo.modelUrl,
      preview_url: demo.previewUrl, name: demo.slug };
    const transfer = [];
    try {
      // Copies, so the originals stay available should the worker need to be restarted.
      const { bundle, decoder } = await photo.downloads;
      message.bundle = bundle.slice(0);
      message.decoder = decoder.slice(0);
      transfer.push(message.bundle, message.decoder);
    } catch (error) {
      console.warn("samtab: prefetch failed; the worker fetches itself:", error);
    }
    if (photo === state.photo && state.worker) send(message, transfer);
  } else {
    // Copies, so the originals stay available should the worker need to be restarted.
    const photoCopy = photo.files.photo.slice(0);
    const bundleCopy = photo.files.bundle.slice(0);
    send({ type: "open-files", seq, photo: photoCopy, photo_name: photo.photoName,
      bundle: bundleCopy, bundle_name: photo.bundleName, models: state.models }, [photoCopy, bundleCopy]);
  }
}

// --- controls ------------------------------------------------------------------------------------------

function renderControls(controls) {
  state.controls = controls;
  const open = !!controls?.open;
  const viewPending = [...state.unacked.values(), ...state.outbox].some((message) => message.type === "view");
  if (open && !viewPending) { // the worker's view, which a replay or a restore may have changed
    state.view = controls.view;
    state.opacity = controls.opacity;
    for (const name of VIEWS) $(`view-${name}`).setAttribute("aria-pressed", String(name === controls.view));
    $("opacity").value = String(Math.round(controls.opacity * 100));
  }
  if (open) scheduleSave(); // every change the worker applied ends in a frame with its state
  $("undo").disabled = !open || !controls.can_undo;
  $("redo").disabled = !open || !controls.can_redo;
  const current = open ? controls.objects.find((o) => o.id === controls.current) : null;
  $("clear").disabled = !current || current.clicks === 0;
  $("new-object").disabled = !open;
  const hasMask = open && controls.objects.some((o) => o.has_mask);
  $("export-mask").disabled = !current?.has_mask;
  $("export-cutout").disabled = !current?.has_mask;
  $("export-coco").disabled = !hasMask;
  const candidates = $("candidates");
  candidates.replaceChildren(...(open ? controls.candidates : []).map((score, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.id = `candidate-${index}`;
    button.textContent = `${index + 1}: ${score.toFixed(2)}`;
    button.title = `Candidate mask ${index + 1}, predicted IoU ${score.toFixed(3)} (key ${index + 1})`;
    button.setAttribute("aria-pressed", String(controls.chosen === index));
    button.addEventListener("click", () => command({ type: "candidate", index }));
    return button;
  }));
  const list = $("object-list");
  list.replaceChildren(...(open ? controls.objects : []).map((object) => {
    const item = document.createElement("li");
    item.dataset.id = object.id;
    item.setAttribute("aria-current", String(object.id === controls.current));
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    swatch.style.background = object.colour;
    const name = Object.assign(document.createElement("input"), { value: object.name, ariaLabel: "Object name" });
    name.addEventListener("focus", () => object.id !== controls.current && command({ type: "select", id: object.id }));
    name.addEventListener("change", () => command({ type: "rename", id: object.id, name: name.value }));
    name.addEventListener("keydown", (event) => { if (event.key === "Enter") name.blur(); event.stopPropagation(); });
    const count = Object.assign(document.createElement("span"), { className: "count",
      textContent: `${object.clicks} click${object.clicks === 1 ? "" : "s"}` });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "×",
      title: `Delete ${object.name}`, ariaLabel: `Delete ${object.name}` });
    remove.addEventListener("click", () => command({ type: "delete", id: object.id }));
    item.addEventListener("click", (event) => {
      if (event.target === item || event.target === swatch || event.target === count) command({ type: "select", id: object.id });
    });
    item.append(swatch, name, count, remove);
    return item;
  }));
}

function setView(view) {
  state.view = view;
  for (const name of VIEWS) $(`view-${name}`).setAttribute("aria-pressed", String(name === view));
  command({ type: "view", view, opacity: state.opacity });
}

function setExcludeMode(exclude) {
  state.excludeMode = exclude;
  $("mode-include").setAttribute("aria-pressed", String(!exclude));
  $("mode-exclude").setAttribute("aria-pressed", String(exclude));
}

// --- pointer input -------------------------------------------------------------------------------------

function cssPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return { x: event.clientX - rect.left, y: event.clientY - rect.top, w: rect.width, h: rect.height };
}

let press = null; // {start, pointerId, button, moved, longPressTimer}
let hoverFrame = 0;
let hoverPoint = null;

function clickMessage(point, include) {
  return { type: "click", x: point.x, y: point.y, css_width: point.w, css_height: point.h, include, t0: performance.now() };
}

function showBox(a, b) {
  const rect = canvas.getBoundingClientRect();
  const area = $("image-area").getBoundingClientRect();
  const box = $("box-rect");
  box.hidden = false;
  Object.assign(box.style, {
    left: `${rect.left - area.left + Math.min(a.x, b.x)}px`, top: `${rect.top - area.top + Math.min(a.y, b.y)}px`,
    width: `${Math.abs(b.x - a.x)}px`, height: `${Math.abs(b.y - a.y)}px`,
  });
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());

canvas.addEventListener("pointerdown", (event) => {
  if (!state.photo || (event.button !== 0 && event.button !== 2)) return;
  canvas.setPointerCapture(event.pointerId);
  press = { start: cssPoint(event), pointerId: event.pointerId, button: event.button, moved: false, longPress: false,
    photo: state.shown };
  if (event.pointerType === "touch") {
    press.timer = setTimeout(() => {
      if (press && !press.moved && press.photo === state.photo && state.shown === state.photo) {
        press.longPress = true;
        command(clickMessage(press.start, false)); // a long press excludes
      }
    }, LONG_PRESS_MS);
  }
});

canvas.addEventListener("pointermove", (event) => {
  const point = cssPoint(event);
  if (press && press.pointerId === event.pointerId) {
    if (Math.hypot(point.x - press.start.x, point.y - press.start.y) > DRAG_THRESHOLD_PX) press.moved = true;
    if (press.moved) showBox(press.start, point);
    return;
  }
  // Hover preview: at most one request per animation frame, and only before the object's first click.
  if (!$("hover-preview").checked || event.pointerType !== "mouse" || !state.opened) return;
  const current = state.controls?.objects.find((o) => o.id === state.controls.current);
  if (current && current.clicks > 0) return;
  hoverPoint = point;
  if (!hoverFrame) {
    hoverFrame = requestAnimationFrame(() => {
      hoverFrame = 0;
      if (hoverPoint) send({ type: "hover", x: hoverPoint.x, y: hoverPoint.y, css_width: hoverPoint.w, css_height: hoverPoint.h });
    });
  }
});

canvas.addEventListener("pointerleave", () => {
  hoverPoint = null;
  if (state.opened && state.workerReady && $("hover-preview").checked) send({ type: "hover-end" });
});

canvas.addEventListener("pointerup", (event) => {
  if (!press || press.pointerId !== event.pointerId) return;
  clearTimeout(press.timer);
  const end = cssPoint(event);
  const { start, moved, button, longPress, photo: pressedOn } = press;
  press = null;
  $("box-rect").hidden = true;
  hoverPoint = null;
  if (longPress) return;
  // A click lands on the photo that was on the canvas when the button went down, or nowhere: not on a
  // photo chosen meanwhile whose pixels are not showing yet.
  if (pressedOn !== state.photo || state.shown !== state.photo) return;
  if (moved) {
    const clamp = (v, max) => Math.min(Math.max(v, 0), max - 0.01);
    command({ type: "box", x0: clamp(start.x, start.w), y0: clamp(start.y, start.h), x1: clamp(end.x, end.w),
      y1: clamp(end.y, end.h), css_width: start.w, css_height: start.h, t0: performance.now() });
  } else {
    command(clickMessage(start, button === 0 && !state.excludeMode));
  }
});

canvas.addEventListener("pointercancel", () => {
  if (press) clearTimeout(press.timer);
  press = null;
  $("box-rect").hidden = true;
});

// --- buttons, keys, files ------------------------------------------------------------------------------

$("restore-yes").addEventListener("click", restoreWork);
$("restore-no").addEventListener("click", hideRestore);
$("mode-include").addEventListener("click", () => setExcludeMode(false));
$("mode-exclude").addEventListener("click", () => setExcludeMode(true));
for (const name of ["undo", "redo", "clear"]) $(name).addEventListener("click", () => command({ type: name }));
$("new-object").addEventListener("click", () => command({ type: "new-object" }));
for (const name of VIEWS) $(`view-${name}`).addEventListener("click", () => setView(name));
$("opacity").addEventListener("input", (event) => {
  state.opacity = Number(event.target.value) / 100;
  if (state.view === "overlay") command({ type: "view", view: state.view, opacity: state.opacity });
});
for (const what of ["mask", "cutout", "coco"]) {
  $(`export-${what}`).addEventListener("click", () => exportFile(what));
}
$("hover-preview").addEventListener("change", (event) => {
  if (!event.target.checked && state.opened) send({ type: "hover-end" });
});
$("open-files").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", (event) => {
  if (event.target.files.length) openFiles(event.target.files);
  event.target.value = "";
});

document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.type !== "checkbox" && event.target.type !== "range") return;
  const key = event.key.toLowerCase();
  const mod = event.ctrlKey || event.metaKey;
  let handled = true;
  if (mod && key === "z") command({ type: event.shiftKey ? "redo" : "undo" });
  else if (mod && key === "y") command({ type: "redo" });
  else if (mod || event.altKey) handled = false;
  else if (key === "escape") command({ type: "clear" });
  else if (key === "n") command({ type: "new-object" });
  else if (key === "i") setExcludeMode(false);
  else if (key === "x") setExcludeMode(true);
  else if (["1", "2", "3"].includes(key) && state.controls?.candidates.length) command({ type: "candidate", index: Number(key) - 1 });
  else if (key === "v") setView(VIEWS[(VIEWS.indexOf(state.view) + 1) % VIEWS.length]);
  else if (key === "m" && !$("export-mask").disabled) exportFile("mask");
  else if (key === "c" && !$("export-cutout").disabled) exportFile("cutout");
  else if (key === "j" && !$("export-coco").disabled) exportFile("coco");
  else if (key === "o") $("file-input").click();
  else handled = false;
  if (handled) event.preventDefault();
});

let dragDepth = 0;
document.addEventListener("dragenter", (event) => { event.preventDefault(); dragDepth += 1; $("drop-hint").hidden = false; });
document.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) $("drop-hint").hidden = true; });
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  $("drop-hint").hidden = true;
  if (event.dataTransfer?.files.length) openFiles(event.dataTransfer.files);
});

addEventListener("error", (event) => {
  if (/ResizeObserver loop/.test(event.message)) return; // the browser's benign layout notice
  fail("page", `Something went wrong: ${event.message}`, "Reload the page to try again.");
});
addEventListener("unhandledrejection", (event) =>
  fail("page", `Something went wrong: ${event.reason?.message || event.reason}`, "Reload the page to try again."));
// Tests and benchmarks ask the worker for its memory figures; the answer comes as a samtab:stats event.
addEventListener("samtab:request-stats", () => {
  if (state.worker && state.workerReady) send({ type: "stats" });
});
addEventListener("py:progress", ({ detail }) => {
  if (!state.workerReady && !state.photo) statusDetail.textContent = String(detail);
});

// --- boot ----------------------------------------------------------------------------------------------

async function boot() {
  emit("boot", { cross_origin_isolated: crossOriginIsolated });
  paintPlaceholder("Choose a demo, or open your own photo");
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  state.timings.painted_ms = now();
  emit("painted", { painted_ms: state.timings.painted_ms });
  const workerStarted = startWorker();
  await loadGallery();
  const requested = new URLSearchParams(location.search).get("demo");
  if (requested) {
    try {
      await openDemo(await demoFromQuery(requested));
    } catch (error) {
      fail("open", `The demo “${requested}” could not be opened: ${error.message}`, "Choose one from the list.", false);
    }
  }
  await workerStarted;
}

boot();
