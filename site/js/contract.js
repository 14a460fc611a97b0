// @ts-check
// The observable contract (README, "Observable contract"), which tests and benchmarks rely on:
//   <body data-state>   booting → ready; busy while a photo opens or a mask is computed; error
//   #status             the status text a person reads; #status-detail a hint, a notice or a step
//   samtab:* events     CustomEvents on window; every detail has t_ms (ms since navigation start)
import { MAX_MESSAGE } from "../vendor/constants.js";
import { keysOf } from "./keys.js";
import { state } from "./state.js";

/**
 * The page's element with this id (index.html has every one the modules name).
 * @type {<T extends HTMLElement = HTMLElement>(id: string) => T}
 */
export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/** Set an element's property only if it changed: a write, even of the same value, makes the page restyle it,
 * and the status and the controls are set on every frame. */
export function put(/** @type {any} */ element, /** @type {string} */ property, /** @type {unknown} */ value) {
  if (element[property] !== value) element[property] = value;
}

const statusLine = $("status");
const statusDetail = $("status-detail");

/** A touch screen is the main pointer (a phone, a tablet): the hints say tap and long press. */
export const touch = () => matchMedia("(pointer: coarse)").matches;

/** What clicks (or taps) do, for the status's second line. */
export const clickHint = () =>
  touch()
    ? "A tap adds, a long press removes, a drag draws a box; New object starts another."
    : `Left-click adds, right-click removes, drag draws a box; ${keysOf("new-object")} starts a new object.`;

export const now = () => Math.round(performance.now() * 10) / 10;

/**
 * @param {string} name  the event is samtab:<name>
 * @param {object} detail
 */
export function emit(name, detail = {}) {
  window.dispatchEvent(new CustomEvent(`samtab:${name}`, { detail: { ...detail, t_ms: now() } }));
}

// Busy for this long, the status shows its (spinning) ring: a click's mask comes before (app.css says why).
const SLOW_MS = 400;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let slowTimer;

export function updateState() {
  if (state.error) return; // an error stays on show until the person does something
  const busy = state.opening || state.encoding || state.covered < state.inputSeq || state.everything !== null;
  const body = document.body;
  body.dataset.state = !state.workerReady ? "booting" : busy ? "busy" : "ready";
  if (body.dataset.state !== "busy") {
    clearTimeout(slowTimer);
    slowTimer = undefined;
    delete body.dataset.slow;
  } else if (slowTimer === undefined && body.dataset.slow === undefined) {
    slowTimer = setTimeout(() => {
      slowTimer = undefined;
      if (body.dataset.state === "busy") body.dataset.slow = "";
    }, SLOW_MS);
  }
}

export function clearError() {
  if (state.error === "kept") state.error = null; // fatal errors stay
}

/**
 * @param {string} text
 * @param {string} phase
 * @param {string} detail
 * @param {boolean} notice  the detail is a notice (shown as one)
 */
export function setStatus(text, phase, detail = "", notice = false) {
  if (state.error === "fatal") return; // what stopped the page stays on show
  put(statusLine, "textContent", text);
  put(statusDetail, "textContent", detail);
  statusDetail.classList.toggle("notice", notice); // (a no-op when it already is so)
  emit("status", { text, phase });
}

/** The detail line alone (a download's progress): no event. */
export function setDetail(/** @type {string} */ text) {
  if (state.error === "fatal") return;
  statusDetail.textContent = text;
}

/** What a person reads is kept short: errors from libraries can be kilobytes long. */
function brief(/** @type {unknown} */ text) {
  const line = String(text ?? "")
    .trim()
    .split("\n")[0];
  return line.length <= MAX_MESSAGE ? line : `${line.slice(0, MAX_MESSAGE - 1)}…`;
}

/**
 * Something failed. fatal: the page cannot go on (boot failed). Otherwise the work so far is kept, and the
 * message stays until the person's next action.
 * @param {string} phase
 * @param {unknown} message
 * @param {unknown} hint
 */
export function fail(phase, message, hint = "", fatal = true) {
  const text = brief(message);
  const help = brief(hint);
  console.error(`samtab: ${phase}: ${text}`);
  statusLine.textContent = text;
  statusDetail.textContent = help;
  statusDetail.classList.remove("notice");
  state.error = fatal || state.error === "fatal" ? "fatal" : "kept";
  document.body.dataset.state = "error";
  delete document.body.dataset.slow;
  emit("error", { phase, message: text, hint: help, fatal });
}

/** A file saved to the person's downloads (an export, a session file). */
export function download(/** @type {string} */ name, /** @type {string} */ mime, /** @type {ArrayBuffer} */ data) {
  const url = URL.createObjectURL(new Blob([data], { type: mime }));
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
