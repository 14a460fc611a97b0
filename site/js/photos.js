// @ts-check
// Photos: the demo gallery, a demo named in the address, one's own photo and bundle (chosen or dropped),
// opening each in the worker.
import { MAX_BUNDLE_BYTES } from "../vendor/constants.js";
import { paintPhoto } from "./canvas.js";
import { collectionFromFiles } from "./collection.js";
import { $, clearError, emit, fail, now, setDetail, setStatus, updateState } from "./contract.js";
import { renderControls, requestRedraw } from "./controls.js";
import { encodePhoto } from "./encode.js";
import { hideRestore } from "./saves.js";
import { state } from "./state.js";
import { send } from "./worker.js";

/** @typedef {import("./state.js").Demo} Demo */
/** @typedef {import("./protocol.js").Command} Command */
/** @typedef {import("./state.js").Photo} Photo */
/** @typedef {import("./protocol.js").OpenDemo} OpenDemo */

const DEMO_INDEX = "./demos/index.json";
// Files a person opens are checked before they are read into memory. A bundle is never larger than
// MAX_BUNDLE_BYTES. Photos are refused past 100 MP from their header (pyapp.image); a file past
// MAX_PHOTO_FILE_BYTES is larger than any such photo's JPEG or PNG is likely to be, and would be copied into
// the tab's memory before its header could be read.
const MAX_PHOTO_FILE_BYTES = 256 * 2 ** 20;

/** @type {HTMLInputElement} */
const fileInput = $("file-input");
const dropHint = $("drop-hint");

// --- demos ---------------------------------------------------------------------------------------------

export async function loadGallery() {
  try {
    const response = await fetch(DEMO_INDEX);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const index = await response.json();
    state.demos = index.demos.map((/** @type {any} */ demo) => ({
      ...demo,
      previewUrl: new URL(demo.preview, response.url).href,
      bundleUrl: new URL(demo.bundle, response.url).href,
      modelUrl: new URL(demo.model, response.url).href,
    }));
  } catch {
    setStatus(
      "The demo gallery is missing",
      "gallery",
      "Build it with `python tools/demos.py` (tools/serve.py does it for you). You can still open your own photo.",
    );
  }
  for (const demo of state.demos) state.models[demo.model_name] = demo.modelUrl;
  // One card per photo (its first demo's, the baseline's in the default gallery); it opens the photo with the
  // model last used when the photo has a demo with it. The model switch (#model-switch) changes it.
  $("gallery").replaceChildren(
    ...[...photoGroups().values()].map(([demo]) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.slug = demo.slug;
      button.dataset.photo = photoOf(demo);
      button.title = `${demo.title}: ${demo.credit} (${demo.licence})`;
      const image = Object.assign(document.createElement("img"), { src: demo.previewUrl, alt: "", loading: "lazy" });
      const title = Object.assign(document.createElement("span"), { className: "title", textContent: demo.title });
      const credit = Object.assign(document.createElement("span"), {
        className: "credit",
        textContent: `${demo.credit} · ${demo.licence}`,
      });
      button.append(image, title, credit);
      button.addEventListener("click", () => {
        const group = photoGroups().get(photoOf(demo)) ?? [demo];
        openDemo(group.find((d) => d.model_name === state.preferredModel) ?? demo);
      });
      item.append(button);
      return item;
    }),
  );
}

const photoOf = (/** @type {Demo} */ demo) => demo.photo ?? demo.slug;

/** The gallery's demos by photo, in the index's order: each photo's demos, one per model. */
function photoGroups() {
  /** @type {Map<string, Demo[]>} */
  const groups = new Map();
  for (const demo of state.demos) groups.set(photoOf(demo), [...(groups.get(photoOf(demo)) ?? []), demo]);
  return groups;
}

const modelSwitch = /** @type {HTMLSelectElement} */ ($("model-switch"));

/** The model switch lists the models the current demo's photo has (hidden for one's own photo, or one model). */
function showModels(/** @type {Demo | undefined} */ demo) {
  const group = demo ? (photoGroups().get(photoOf(demo)) ?? [demo]) : [];
  $("model-switch-label").hidden = group.length < 2;
  modelSwitch.replaceChildren(
    ...group.map((d) =>
      Object.assign(document.createElement("option"), {
        value: d.slug,
        textContent: d.model_name,
        selected: d === demo,
      }),
    ),
  );
}

// Another model for the same photo: it opens with that model's bundle and decoder, and the commands applied so
// far (every click, box, choice and name) are applied again, so the objects stay and their masks are decoded
// by the new model.
modelSwitch.addEventListener("change", () => {
  const demo = state.demos.find((d) => d.slug === modelSwitch.value);
  if (!demo || !state.photo?.demo || photoOf(demo) !== photoOf(state.photo.demo)) return;
  const carry = [...state.log, ...state.unacked.values(), ...state.outbox];
  openDemo(demo, carry);
});

/**
 * The demo ?demo= names: a slug of the gallery, or a relative URL of a demo folder (with its demo.json).
 * @returns {Promise<Demo>}
 */
export async function demoFromQuery(/** @type {string} */ value) {
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
  /** @type {Record<string, string>} */
  const urls = {};
  for (const [name, key] of [
    ["previewUrl", "preview"],
    ["bundleUrl", "bundle"],
    ["modelUrl", "model"],
  ]) {
    if (typeof demo[key] !== "string") throw new Error(`its demo.json has no ${key}`);
    const url = new URL(demo[key], new URL("demo.json", folder));
    if (url.origin !== location.origin) throw new Error(`its ${key} (${url.origin}) is not on this site`);
    urls[name] = url.href;
  }
  return { ...demo, ...urls };
}

/** A new photo becomes the current one: the old one's work is put aside with it. */
function beginPhoto(/** @type {Omit<Photo, "seq">} */ chosen) {
  clearError();
  if (state.photo) {
    state.photo.work = { log: state.log, unacked: state.unacked, outbox: state.outbox, sessionId: state.sessionId };
  }
  state.previousPhoto = state.opened ? state.photo : null;
  const photo = { ...chosen, seq: ++state.openSeq };
  state.photo = photo;
  state.opened = false;
  state.outbox = [];
  state.unacked = new Map();
  state.log = [];
  state.sessionId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  hideRestore();
  state.opening = true;
  state.covered = state.inputSeq;
  updateState();
  showModels(photo.demo);
  for (const button of document.querySelectorAll("#gallery button")) {
    if (button instanceof HTMLElement) {
      button.setAttribute("aria-current", String(!!photo.demo && button.dataset.photo === photoOf(photo.demo)));
    }
  }
  return photo;
}

/** The new files were refused (or could not be read): the worker kept the photo it had, and so does the page. */
export function keepPreviousPhoto() {
  state.photo = state.previousPhoto;
  state.shown = state.photo;
  state.opened = true;
  ({ log: state.log, unacked: state.unacked, outbox: state.outbox, sessionId: state.sessionId } = state.photo.work);
  showModels(state.photo.demo);
  if (state.controls) requestRedraw();
}

// Large downloads start the moment a demo is chosen, in parallel with Python starting up, and show their
// progress; the worker gets the bytes (so the first click waits for a decode, not for a download).
async function fetchWithProgress(/** @type {string} */ url, /** @type {string} */ label) {
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
      const mb = (/** @type {number} */ n) => (n / 2 ** 20).toFixed(1);
      setDetail(`Loading ${label}: ${mb(received)} of ${mb(total)} MB`);
    }
  }
  return bytes.buffer.slice(0, received);
}

async function prefetch(/** @type {Demo} */ demo) {
  const model = await (await fetch(`${demo.modelUrl}model.json`)).json();
  const decoding = fetchWithProgress(new URL(model.files.decoder, demo.modelUrl).href, "the decoder");
  // The decoder to the worker as soon as it is here: its session is made and run once while Python boots
  // and the embeddings still arrive (site/pyworker.js), so the first clicks run at full pace.
  /** @type {Worker | null} */
  let warmedIn = null;
  decoding.then(
    (decoder) => {
      if (!state.worker) return;
      const copy = decoder.slice(0);
      warmedIn = state.worker;
      send({ type: "warm-decoder", model_url: demo.modelUrl, family: model.family, decoder: copy }, [copy]);
    },
    () => {},
  );
  const [bundle, decoder] = await Promise.all([fetchWithProgress(demo.bundleUrl, "the photo's embeddings"), decoding]);
  return { bundle, decoder, warmedIn: () => warmedIn };
}

/**
 * @param {Demo} demo
 * @param {Command[]} carry  commands to apply again once it opens (its objects, made with another model, or
 *   before another photo of the collection was opened)
 * @param {number} [collection]  its index in the open collection, when it is one of its photos
 */
export async function openDemo(demo, carry = [], collection = undefined) {
  const photo = beginPhoto({ kind: "demo", slug: demo.slug, demo, downloads: prefetch(demo), carry, collection });
  state.preferredModel = demo.model_name;
  photo.downloads.catch(() => {}); // reported when the worker needs them
  state.previousPhoto = null; // a demo always replaces the photo
  renderControls(null);
  setStatus(`Opening “${demo.title}”…`, "open");
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
  else {
    setStatus(
      `“${demo.title}” is shown; Python is still starting…`,
      "python",
      "Your clicks are kept and applied as soon as it is ready.",
    );
  }
}

// --- one's own files -----------------------------------------------------------------------------------

async function openFiles(/** @type {FileList | File[]} */ chosen) {
  const files = [...chosen];
  const photos = files.filter((file) => /\.(jpe?g|png|webp|tiff?|bmp|gif)$/i.test(file.name));
  if (photos.length > 1 || files.some((file) => file.name === "collection.json")) {
    collectionFromFiles(files); // several photos (with their bundles): a collection
    return;
  }
  const bundle = files.find((file) => /\.(msgpack|mpk)$/i.test(file.name));
  const photo = files.find(
    (file) =>
      file !== bundle && (file.type.startsWith("image/") || /\.(jpe?g|png|webp|tiff?|bmp|gif)$/i.test(file.name)),
  );
  if (!photo) {
    const message = bundle
      ? `Also open the photo that ${bundle.name} was made for.`
      : "Open a photo (and the .msgpack bundle tools/encode.py made for it, if you have one).";
    fail("open", message, "Select both files at once, or drop both on the page.", false);
    return;
  }
  const mb = (/** @type {number} */ bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  if (bundle && bundle.size > MAX_BUNDLE_BYTES) {
    fail(
      "open",
      `${bundle.name} is ${mb(bundle.size)}: a bundle is at most ${mb(MAX_BUNDLE_BYTES)}, so this is not ` +
        "one tools/encode.py made.",
      "Your current photo and its objects are kept.",
      false,
    );
    return;
  }
  if (photo.size > MAX_PHOTO_FILE_BYTES) {
    fail(
      "open",
      `${photo.name} is ${mb(photo.size)}; this tab opens photo files up to ${mb(MAX_PHOTO_FILE_BYTES)}` +
        " (its memory is limited).",
      "Scale the photo down and open it again. Your current work is kept.",
      false,
    );
    return;
  }
  if (!state.workerReady) {
    fail("open", "Python is still starting: open your files again in a moment.", "", false);
    return;
  }
  if (!bundle) {
    encodePhoto(photo); // no bundle: encoded here (js/encode.js), or its bundle kept from an earlier encode
    return;
  }
  const opening = beginPhoto({ kind: "files", slug: null, photoName: photo.name, bundleName: bundle.name });
  setStatus(`Opening ${photo.name}…`, "open");
  let bytes;
  try {
    bytes = await Promise.all([photo.arrayBuffer(), bundle.arrayBuffer()]);
  } catch (error) {
    if (state.photo !== opening) return;
    state.opening = false;
    if (state.previousPhoto) keepPreviousPhoto();
    fail(
      "open",
      `${photo.name} or ${bundle.name} could not be read: ${error.message}`,
      "Open them again (a file changed or removed since it was chosen cannot be read).",
      false,
    );
    return;
  }
  if (state.photo !== opening) return; // another photo was chosen while these were read
  opening.files = { photo: bytes[0], bundle: bytes[1] };
  if (state.workerReady) openInWorker(); // else the worker, once ready again, opens them
}

/** A photo and its bundle, already read (a bundle made in this tab, or kept from an earlier encode). */
export function openOwnBytes(
  /** @type {string} */ photoName,
  /** @type {ArrayBuffer} */ photo,
  /** @type {ArrayBuffer} */ bundle,
  /** @type {string} */ bundleName,
  encoded = false,
) {
  const opening = beginPhoto({ kind: "files", slug: null, photoName, bundleName, encoded });
  setStatus(`Opening ${photoName}…`, "open");
  opening.files = { photo, bundle };
  if (state.workerReady) openInWorker(); // else the worker, once ready again, opens them
}

fileInput.addEventListener("change", () => {
  if (fileInput.files?.length) openFiles(fileInput.files);
  fileInput.value = "";
});

let dragDepth = 0;
document.addEventListener("dragenter", (event) => {
  event.preventDefault();
  dragDepth += 1;
  dropHint.hidden = false;
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropHint.hidden = true;
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  dropHint.hidden = true;
  const items = [...(event.dataTransfer?.items ?? [])];
  if (items.some((item) => item.webkitGetAsEntry?.()?.isDirectory)) {
    // (A dropped folder comes as one empty file; its photos only through "Open folder…".)
    fail(
      "open",
      "A dropped folder cannot be read here.",
      "Open it with Open folder… (its photos become a collection), or drop its photos and bundles. Your work is kept.",
      false,
    );
    return;
  }
  if (event.dataTransfer?.files.length) openFiles(event.dataTransfer.files);
});

// --- the worker ----------------------------------------------------------------------------------------

/** The current photo, to the worker (once it is ready; again after it was restarted). */
export async function openInWorker() {
  const photo = state.photo;
  const seq = photo.seq;
  if (photo.kind === "demo") {
    const { demo } = photo;
    /** @type {OpenDemo} */
    const message = {
      type: "open",
      seq,
      bundle_url: demo.bundleUrl,
      model_url: demo.modelUrl,
      preview_url: demo.previewUrl,
      name: demo.slug,
    };
    /** @type {ArrayBuffer[]} */
    const transfer = [];
    try {
      // Copies, so the originals stay available should the worker need to be restarted.
      const { bundle, decoder, warmedIn } = await photo.downloads;
      message.bundle = bundle.slice(0);
      transfer.push(message.bundle);
      if (warmedIn() !== state.worker) {
        // (A worker that was sent the decoder early has it; a restarted one has not.)
        message.decoder = decoder.slice(0);
        transfer.push(message.decoder);
      }
    } catch (error) {
      console.warn("samtab: prefetch failed; the worker fetches itself:", error);
    }
    if (photo === state.photo) send(message, transfer);
  } else if (photo.files) {
    // Copies, so the originals stay available should the worker need to be restarted.
    const photoCopy = photo.files.photo.slice(0);
    const bundleCopy = photo.files.bundle.slice(0);
    send(
      {
        type: "open-files",
        seq,
        photo: photoCopy,
        photo_name: photo.photoName,
        bundle: bundleCopy,
        bundle_name: photo.bundleName,
        models: state.models,
      },
      [photoCopy, bundleCopy],
    );
  }
}
