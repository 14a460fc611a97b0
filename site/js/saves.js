// @ts-check
// Saved work. After each change the photo's log is saved in IndexedDB (under the photo's sha256 and the
// model's name, one entry per visit), so that a reload, a crashed tab or a closed window loses nothing: when
// the same photo opens again with the same model, the page offers to restore the newest earlier entry.
// Nothing is ever overwritten by another visit; each photo keeps its SAVES_PER_PHOTO newest entries, and all
// photos together SAVES_MAX.
import { $, clearError, emit, setStatus, updateState } from "./contract.js";
import { keysOf } from "./keys.js";
import { state } from "./state.js";
import { canSend, send } from "./worker.js";

/** @typedef {import("./state.js").SavedWork} SavedWork */
/** @typedef {import("./protocol.js").Command} Command */

const SAVES_DB = "samtab-work";
const SAVES_STORE = "sessions";
const SAVES_PER_PHOTO = 3;
const SAVES_MAX = 30;
const SAVE_DELAY_MS = 300;
let saveTimer = 0;

/**
 * An IndexedDB store of one database (made on first use, keyed by `keyPath`): a function that runs one
 * transaction on it and resolves with the result of the request `work` makes, once done.
 * @param {string} database
 * @param {string} name
 * @param {string} keyPath
 * @returns {(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest | undefined) => Promise<any>}
 */
export function objectStore(database, name, keyPath) {
  /** @type {Promise<IDBDatabase> | null} */
  let opened = null;
  return (mode, work) => {
    opened ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(name, { keyPath });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return opened.then(
      (db) =>
        new Promise((resolve, reject) => {
          const transaction = db.transaction(name, mode);
          const request = work(transaction.objectStore(name));
          transaction.oncomplete = () => resolve(request?.result);
          transaction.onerror = () => reject(transaction.error);
          transaction.onabort = () => reject(transaction.error);
        }),
    );
  };
}

const saves = objectStore(SAVES_DB, SAVES_STORE, "id");

// Saved when the page has been still for SAVE_DELAY_MS and the main thread is idle: never in a click's way.
export function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(
    () =>
      requestIdleCallback(() => saveWork().catch((error) => console.warn("samtab: work not saved:", error)), {
        timeout: 2000,
      }),
    SAVE_DELAY_MS,
  );
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
  /** @type {SavedWork} */
  const entry = {
    id,
    key: photo.key,
    saved: Date.now(),
    objects: objects.length,
    clicks: objects.reduce((sum, object) => sum + object.clicks, 0),
    log,
  };
  await saves("readwrite", (store) => store.put(entry));
  if (state.pruned === id) return; // older saves are pruned once a visit, when its own is first written
  state.pruned = id;
  /** @type {SavedWork[]} */
  const entries = (await saves("readonly", (store) => store.getAll())).sort((a, b) => b.saved - a.saved);
  /** @type {Record<string, number>} */
  const perPhoto = {};
  const surplus = entries.filter((entry, index) => {
    perPhoto[entry.key] = (perPhoto[entry.key] || 0) + 1;
    return perPhoto[entry.key] > SAVES_PER_PHOTO || index >= SAVES_MAX;
  });
  if (surplus.length) {
    await saves("readwrite", (store) => {
      for (const entry of surplus) store.delete(entry.id);
      return undefined;
    });
  }
}

function ago(/** @type {number} */ ms) {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? "" : "s"} ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} hour${hours === 1 ? "" : "s"} ago`;
  return `${Math.round(hours / 24)} days ago`;
}

const plural = (/** @type {number} */ count, /** @type {string} */ word) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** The photo just opened: earlier work on it, if any is saved, is offered back (#restore). */
export async function offerRestore() {
  const photo = state.photo;
  /** @type {SavedWork[]} */
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
  $("restore-text").textContent =
    `Your earlier work on this photo is saved: ${plural(entry.objects, "object")}, ` +
    `${plural(entry.clicks, "click")}, ${ago(Date.now() - entry.saved)}.`;
  $("restore").hidden = false;
  emit("restore-offer", { objects: entry.objects, clicks: entry.clicks, saved: entry.saved });
}

export function hideRestore() {
  state.restoreOffer = null;
  $("restore").hidden = true;
}

// The saved log is applied like a restarted worker's: a replay rebuilds the same steps and masks. Work
// done on this visit before restoring is dropped from the view but stays saved under this visit's entry.
function restoreWork() {
  const entry = state.restoreOffer;
  hideRestore();
  if (!entry || !canSend()) return;
  clearError();
  if (state.log.length || state.unacked.size || state.outbox.length) {
    send({ type: "reset" });
    state.log = [];
    state.unacked = new Map();
    state.outbox = [];
    state.sessionId = `${state.sessionId}-r`;
  }
  replayHere(entry.log, entry.objects, "Restoring your earlier work…");
}

/**
 * Commands applied before (saved work; the same photo with another model) applied again to the open photo,
 * renumbered, each answered as a command is: the log then holds them, as if they had been made here.
 * @param {Command[]} log
 * @param {number} objects  how many objects they make (for the status once done)
 * @param {string} doing  the status meanwhile
 * @param {string} [done]  the status once done (default: "Your earlier work is back: …")
 */
export function replayHere(log, objects, doing, done) {
  const messages = log.map((message) => {
    /** @type {Command} */
    const renumbered = { ...message, cmd: ++state.cmdSeq };
    if (renumbered.type === "click" || renumbered.type === "box") renumbered.id = ++state.inputSeq;
    state.unacked.set(renumbered.cmd, renumbered);
    return renumbered;
  });
  state.restoring = { messages: messages.length, objects, done };
  updateState();
  setStatus(doing, "open");
  send({ type: "replay", messages });
}

/** Once the worker has answered every restored command: say so. */
export function restored() {
  if (!state.restoring || state.unacked.size) return;
  const { messages, objects, done } = state.restoring;
  state.restoring = null;
  setStatus(
    done ?? `Your earlier work is back: ${plural(objects, "object")}.`,
    "ready",
    `${keysOf("undo")} takes back its steps one by one.`,
  );
  emit("restored", { messages, objects });
}

$("restore-yes").addEventListener("click", restoreWork);
$("restore-no").addEventListener("click", hideRestore);
