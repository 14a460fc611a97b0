// @ts-check
// The Python worker, from the page's side: started (and started again when it dies), watched, and sent
// messages. Commands, what changes the photo's state, are numbered and kept until the worker answers them,
// so that a restarted worker gets the same work back. What the page does with the worker's messages is
// handlers.js.
import { clearError, fail, setStatus, updateState } from "./contract.js";
import { holdKeep } from "./offline.js";
import { missing, RUNTIME_MISSING } from "./runtime.js";
import { state } from "./state.js";

/** @typedef {import("./protocol.js").Command} Command */
/** @typedef {import("./protocol.js").ToWorker} ToWorker */

// The worker boots Pyodide itself (from a memory snapshot when the build has one) and starts onnxruntime-web
// meanwhile: site/pyworker.js.
const WORKER_SCRIPT = "./pyworker.js";
const PYODIDE_MODULE = "./vendor/pyodide/pyodide.mjs";
// A worker that has said nothing for this long (it answers a ping every few seconds) has died; while it
// starts (numpy, Pillow and onnxruntime-web load and compile), it may be silent for longer.
const WATCHDOG_MS = 10_000;
const BOOT_WATCHDOG_MS = 45_000;
const PING_MS = 2_500;
// A worker that fails this many times within RESTART_WINDOW_MS is not restarted again: something is
// wrong that a restart does not cure, and the person is told so.
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

/** @type {(event: MessageEvent) => void} what the page does with the worker's messages (handlers.js) */
let listener = () => {};

/** What the page says when Python could not start: the runtime missing from the server, or the error. */
export async function explainBootFailure(/** @type {any} */ error) {
  if (await missing(PYODIDE_MODULE)) return RUNTIME_MISSING;
  return { message: `Python could not start: ${error?.message || error}`, hint: "Reload the page to try again." };
}

/** Start the worker; `onMessage` gets its messages (and those of any worker started after it dies). */
export async function startWorker(/** @type {(event: MessageEvent) => void} */ onMessage = listener) {
  listener = onMessage;
  state.workerReady = false;
  updateState();
  setStatus(state.restarts ? "Restarting Python…" : "Starting Python…", "python");
  // ?threads=N caps onnxruntime-web's threads (benchmarks compare 1 thread with many): the worker starts
  // onnxruntime-web before any message reaches it, so it reads N from its own address.
  const query = new URLSearchParams(location.search);
  const script = new URL(WORKER_SCRIPT, document.baseURI);
  if (query.has("threads")) script.searchParams.set("threads", query.get("threads") || "");
  let worker;
  try {
    worker = new Worker(script, { type: "module" });
  } catch (error) {
    const { message, hint } = await explainBootFailure(error);
    fail("python", message, hint);
    return;
  }
  state.worker = worker;
  worker.onerror = (/** @type {ErrorEvent} */ event) =>
    onWorkerCrash(event.error?.message || event.message || String(event));
  worker.addEventListener("message", (/** @type {MessageEvent} */ event) => {
    state.lastHeard = performance.now();
    listener(event);
  });
  watchWorker(worker);
  // ?diagnostics=1 counts live PyProxies for the stats that leak checks read (a little slower).
  send({
    type: "boot",
    base: new URL("./", document.baseURI).href,
    diagnostics: query.get("diagnostics") === "1",
  });
}

// The worker can die without a word (a crash in WebAssembly, the browser reclaiming memory): while it
// is up, it is pinged, and silence past WATCHDOG_MS counts as a crash.
function watchWorker(/** @type {any} */ worker) {
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

/** The worker died (or said it must be restarted): a new one is started, and gets the photo and its work. */
export function onWorkerCrash(/** @type {string} */ reason) {
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
    fail(
      "worker",
      `The worker failed ${recent.length + 1} times in a minute (last: ${reason}); it is not restarted again.`,
      "Your photo is still shown. Reload the page to try again; if it keeps happening, try another browser.",
    );
    return;
  }
  state.restartTimes = [...recent, performance.now()];
  state.restarts += 1;
  state.restarting = true;
  fail("worker", `The worker stopped (${reason}); restarting it. Your objects and clicks are kept.`, "", false);
  startWorker();
}

/** A message to the worker, if there is one (none while it restarts). The page is in use: keeping files for
offline use waits (js/offline.js). */
export function send(/** @type {ToWorker} */ message, /** @type {Transferable[]} */ transfer = []) {
  holdKeep();
  state.worker?.postMessage(message, transfer);
}

/** Whether the worker has the current photo open and can take commands now. */
export const canSend = () => state.opened && state.workerReady;

// What changes the photo's state goes through here, numbered: sent now if the photo is open in the worker,
// otherwise kept and sent once it is (clicks made while loading are not lost). The worker answers each:
// applied (it joins the log that a restarted worker replays and that is saved for after a reload) or
// refused (forgotten).
export function command(/** @type {Command} */ message) {
  if (!state.photo) return;
  clearError();
  message.cmd = ++state.cmdSeq;
  if (message.type === "click" || message.type === "box") {
    message.id = ++state.inputSeq;
    updateState();
  }
  if (canSend()) {
    state.unacked.set(message.cmd, message);
    send(message);
  } else {
    state.outbox.push(message);
  }
}

// An export changes nothing: it is not numbered, kept or replayed (the worker answers with the file).
// Polygon exports take the tolerance the person set (pixels).
export function exportFile(/** @type {"mask" | "cutout" | "masks" | "coco" | "yolo"} */ what, tolerance = 1) {
  if (!canSend()) return;
  send(what === "coco" || what === "yolo" ? { type: "export", what, tolerance } : { type: "export", what });
}

export function flushOutbox() {
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
export function resume() {
  const pending = [...state.unacked.values()];
  const replayed = [...state.log, ...pending.filter((message) => "joins" in message)];
  if (replayed.length) send({ type: "replay", messages: replayed });
  for (const message of pending) if (!("joins" in message)) send(message);
  flushOutbox();
}

/**
 * The worker applied a command: it joins the log (a click or box saying whether it joined the step before; a
 * click that took a speculated decode, at the rested point it committed).
 * @param {import("./protocol.js").Applied} applied
 */
export function acknowledge({ cmd, joins, x, y }) {
  const message = state.unacked.get(cmd);
  if (!message) return; // a replayed command, already in the log
  state.unacked.delete(cmd);
  /** @type {Record<string, unknown>} */
  const answered = {};
  if (joins !== undefined) answered.joins = joins;
  if (x !== undefined && y !== undefined) Object.assign(answered, { x, y });
  state.log.push(/** @type {Command} */ ({ ...message, ...answered }));
}

/** The worker refused command `cmd` (or it failed): forgotten. */
export function forget(/** @type {number} */ cmd) {
  state.unacked.delete(cmd);
  const index = state.log.findIndex((message) => message.cmd === cmd);
  if (index >= 0) state.log.splice(index, 1);
}
