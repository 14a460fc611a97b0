// @ts-check
// A collection (issue 18): the photos of a served collection.json (`?collection=URL`, written by
// `samtab-encode ... --index`) or of a folder opened here (Open folder…, or several photos chosen at once),
// shown as a filmstrip; one photo is open at a time. Switching photos (the strip, or the keys of
// "collection-step") keeps each photo's commands and applies them again when it is opened again, so its
// objects come back as they were. The index (or the folder's list of files) is read by the worker
// (pyapp.collection): the page resolves its paths, on this site only, or to the folder's files.
import { $, download, emit, fail, setStatus } from "./contract.js";
import { chosenModel, encodePhoto } from "./encode.js";
import { openDemo } from "./photos.js";
import { objectStore } from "./saves.js";
import { state } from "./state.js";
import { send } from "./worker.js";

/** @typedef {import("./protocol.js").CollectionOpened} CollectionOpened */
/**
 * A collection on its way to the worker, to be read (checked) there.
 * @typedef {object} CollectionRequest
 * @property {number} seq
 * @property {string} url  its index's address; "folder:NAME/…" for a folder opened here
 * @property {string} [index]  collection.json's text
 * @property {Record<string, {header?: ArrayBuffer, width?: number, height?: number}>} [folder]  a folder without
 *   a collection.json: its files by path (pyapp.collection.folder_index)
 * @property {Map<string, File>} [files]  a folder's (or the chosen files') by their path in it
 * @property {string} [base]  the path in it of collection.json's folder ("" or ending in "/")
 * @property {string} [name]  the folder's
 */
/** @typedef {import("./protocol.js").Command} Command */

// The collection's session is saved in IndexedDB after every change (one entry per collection: its index's
// URL and model), and comes back when the collection is opened again.
const autosaves = objectStore("samtab-collections", "sessions", "id");
const AUTOSAVE_DELAY_MS = 500;
let autosaveTimer = 0;

const strip = $("filmstrip");
const list = $("filmstrip-list");

/** The index named in the address, fetched now and read once Python is ready (`sendCollection`). */
export async function collectionFromQuery(/** @type {string} */ value) {
  const url = new URL(value, document.baseURI);
  if (url.origin !== location.origin) throw new Error("a collection must come from this site");
  setStatus(`Opening the collection ${url.pathname}…`, "open");
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname} answered HTTP ${response.status}`);
  state.collectionRequest = { seq: ++state.openSeq, url: response.url, index: await response.text() };
  if (state.workerReady) sendCollection();
}

const PHOTO = /\.(jpe?g|png|webp|tiff?|bmp|gif)$/i;
const HEADER_BYTES = 4096; // of a bundle: its model, photo size and sha256 (pyapp.bundle.HEADER_BYTES)

/**
 * A folder (Open folder…), or several photos chosen or dropped at once, as a collection: read from its
 * collection.json when it has one (what samtab-encode --index writes), else made of its photos and the
 * bundles samtab-encode wrote for them (PHOTO.msgpack, PHOTO.preview.jpg) by the worker; photos without a
 * bundle are encoded when they are opened. Nothing is uploaded: the files are read where they are.
 * @param {File[]} files
 */
export async function collectionFromFiles(files) {
  /** @type {Map<string, File>} */
  const byPath = new Map();
  for (const file of files) {
    const path = file.webkitRelativePath || file.name;
    byPath.set(path.includes("/") ? path.slice(path.indexOf("/") + 1) : path, file); // without the folder's name
  }
  const name = files[0]?.webkitRelativePath.split("/")[0] || "Chosen photos";
  const depth = (/** @type {string} */ path) => path.split("/").length;
  const indexPath = [...byPath.keys()]
    .filter((path) => path.split("/").at(-1) === "collection.json")
    .sort((a, b) => depth(a) - depth(b))[0];
  setStatus(`Opening the folder ${name}…`, "open");
  /** @type {CollectionRequest} */
  const request = { seq: ++state.openSeq, url: `folder:${name}/${indexPath ?? ""}`, files: byPath, name };
  if (indexPath) {
    request.base = indexPath.slice(0, -"collection.json".length);
    request.index = await /** @type {File} */ (byPath.get(indexPath)).text();
  } else {
    request.base = "";
    request.folder = {};
    for (const [path, file] of byPath) {
      if (/\.msgpack$/i.test(path)) {
        request.folder[path] = { header: await file.slice(0, HEADER_BYTES).arrayBuffer() };
      } else if (PHOTO.test(path) && !path.split("/").at(-1)?.includes(".preview.")) {
        // A photo without a bundle is listed at its upright size, which only decoding it tells.
        request.folder[path] = byPath.has(`${path}.msgpack`) ? {} : await sizeOf(file);
      } else if (PHOTO.test(path)) {
        request.folder[path] = {};
      }
    }
  }
  state.collectionRequest = request;
  if (state.workerReady) sendCollection();
}

/** A photo's width and height, upright (EXIF applied), or nothing when it cannot be decoded. */
async function sizeOf(/** @type {File} */ file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return {};
  }
}

const folderInput = /** @type {HTMLInputElement} */ ($("folder-input"));
$("open-folder").addEventListener("click", () => folderInput.click());
folderInput.addEventListener("change", () => {
  const files = [...(folderInput.files ?? [])];
  folderInput.value = "";
  if (files.length) collectionFromFiles(files);
});

/** The worker is ready: the index waiting for it is sent. */
export function sendCollection() {
  const request = state.collectionRequest;
  if (!request) return;
  if (request.folder) {
    const url = request.name ?? "folder";
    send({ type: "collection", seq: request.seq, folder: request.folder, url, model: chosenModel() });
    return;
  }
  const name = request.url.split("/").at(-1) || "collection.json";
  send({ type: "collection", seq: request.seq, index: request.index ?? "", url: name });
}

/** The worker read the index: its photos, with this site's URLs, in the filmstrip; the first one opens. */
export function showCollection(/** @type {CollectionOpened} */ data) {
  const request = state.collectionRequest;
  if (!request || data.seq !== request.seq) return;
  state.collectionRequest = null;
  const modelUrl = state.models[data.model];
  if (!modelUrl) {
    fail(
      "collection",
      `This site has no decoder for the model “${data.model}” that the collection's bundles were made with.`,
      "Publish that model on the site (tools/demos.py publishes every model folder in models/), or encode the " +
        "photos again with a model the site has.",
      false,
    );
    return;
  }
  const { files } = request;
  /** A path of the index: the file of the folder opened here (null: not in it), or an address on this site. */
  const fileOf = (/** @type {string | null} */ path) => {
    if (path === null || !files) return null;
    const inFolder = decodeURIComponent(new URL(path, `https://folder.invalid/${request.base ?? ""}`).pathname);
    return files.get(inFolder.slice(1)) ?? null;
  };
  const resolve = (/** @type {string | null} */ path) => {
    if (path === null) return null;
    if (files) {
      const file = fileOf(path);
      return file ? URL.createObjectURL(file) : null;
    }
    const url = new URL(path, request.url);
    if (url.origin !== location.origin) throw new Error(`${path} is not on this site`);
    return url.href;
  };
  let photos;
  try {
    photos = data.photos.map((photo) => {
      const bundleUrl = resolve(photo.bundle);
      if (photo.bundle && !bundleUrl)
        throw new Error(`${photo.bundle}, which collection.json lists, is not in the folder`);
      const file = fileOf(photo.photo) ?? undefined;
      const photoUrl = resolve(photo.photo);
      return { ...photo, bundleUrl, photoUrl, file, previewUrl: resolve(photo.preview) ?? photoUrl };
    });
  } catch (error) {
    fail(
      "collection",
      `The collection cannot be opened: ${error.message}.`,
      files ? "Open the whole folder samtab-encode wrote." : "Its paths must stay on this site.",
      false,
    );
    return;
  }
  forgetFiles();
  state.collection = {
    url: request.url,
    name: data.name,
    model: data.model,
    modelUrl,
    classes: data.classes,
    photos,
    index: -1,
    work: new Map(),
    labels: new Map(),
    done: new Set(),
    asked: [],
    sessionSeq: 0,
  };
  document.body.dataset.collection = "open";
  strip.hidden = false;
  $("filmstrip-title").textContent = data.name;
  list.replaceChildren(
    ...photos.map((photo, index) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.index = String(index);
      const image = Object.assign(document.createElement("img"), { alt: "", loading: "lazy" });
      if (photo.previewUrl) image.src = photo.previewUrl;
      const name = Object.assign(document.createElement("span"), { className: "title", textContent: photo.name });
      const status = Object.assign(document.createElement("span"), { className: "photo-status" });
      button.append(image, name, status);
      button.addEventListener("click", () => openCollectionPhoto(index));
      item.append(button);
      return item;
    }),
  );
  emit("collection", { name: data.name, model: data.model, photos: photos.length, classes: data.classes });
  resumeOrStart();
}

/** The addresses of the files of a folder opened before are let go. */
function forgetFiles() {
  for (const photo of state.collection?.photos ?? []) {
    for (const url of new Set([photo.bundleUrl, photo.previewUrl, photo.photoUrl])) {
      if (url?.startsWith("blob:")) URL.revokeObjectURL(url);
    }
  }
}

/** The photo a collection opens at: its first with a bundle (or its first, to be encoded, if none has one). */
const firstEncoded = () => Math.max(0, state.collection?.photos.findIndex((photo) => photo.bundleUrl) ?? 0);

const autosaveId = () => `${state.collection?.url}|${state.collection?.model}`;

/** The collection's work saved on an earlier visit comes back (checked by the worker, as a session file is);
 * else its first photo opens. */
async function resumeOrStart() {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  let saved = null;
  try {
    saved = await autosaves("readonly", (store) => store.get(autosaveId()));
  } catch (error) {
    console.warn("samtab: the collection's saved work cannot be read:", error);
  }
  if (!saved || !Object.keys(saved.session.photos).length) {
    openCollectionPhoto(firstEncoded());
    return;
  }
  collection.sessionSeq = ++state.openSeq;
  collection.resuming = true;
  send({ type: "session", seq: collection.sessionSeq, index: indexDocument(), session: JSON.stringify(saved.session) });
}

/** The worker refused a session (a file, or the saved one): with no photo open yet, the first one opens. */
export function sessionRefused() {
  const collection = state.collection;
  if (!collection) return;
  collection.resuming = false;
  if (collection.index < 0) openCollectionPhoto(firstEncoded());
}

/** Save the collection's work once the page has been still for a moment (after every change), and at once
 * when the page is left. */
function scheduleAutosave() {
  clearTimeout(autosaveTimer);
  autosaveTimer = setTimeout(autosave, AUTOSAVE_DELAY_MS);
}

function autosave() {
  clearTimeout(autosaveTimer);
  const collection = state.collection;
  if (!collection || collection.index < 0 || collection.resuming) return;
  const session = sessionDocument();
  const entry = { id: autosaveId(), saved: Date.now(), session };
  autosaves("readwrite", (store) => store.put(entry))
    .then(() => emit("autosaved", { photos: Object.keys(session.photos).length, done: collection.done.size }))
    .catch((error) => console.warn("samtab: the collection's work was not saved:", error));
}
addEventListener("pagehide", autosave);

/** The photo open is left: its commands are kept, and its objects asked of the worker (`takeLabels`). */
function leavePhoto() {
  const collection = state.collection;
  if (!collection || collection.index < 0 || state.photo?.collection !== collection.index) return;
  const name = collection.photos[collection.index].name;
  collection.work.set(name, currentWork());
  askLabels(name);
}

/** Ask the worker for the open photo's objects (name, class, mask), answered in order (`takeLabels`). */
function askLabels(/** @type {string} */ name) {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  if (!state.opened || !state.controls?.open) return;
  collection.asked.push(name);
  send({ type: "export", what: "labels" });
}

/** The worker's answer to `askLabels`: the objects of the photo asked first. */
export function takeLabels(/** @type {ArrayBuffer} */ data) {
  const collection = state.collection;
  const name = collection?.asked.shift();
  if (!collection || name === undefined) return;
  collection.labels.set(name, JSON.parse(new TextDecoder().decode(data)));
  scheduleAutosave();
  if (!collection.asked.length) for (const resolve of waiting.splice(0)) resolve(undefined);
}

/** @type {((value: unknown) => void)[]} */
const waiting = [];

/** Until every photo's objects asked of the worker are in (the open photo's asked now, once it has settled). */
async function labelsOfAll() {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  const started = performance.now();
  while (state.covered < state.inputSeq && performance.now() - started < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (collection.index >= 0 && state.photo?.collection === collection.index) {
    askLabels(collection.photos[collection.index].name);
  }
  if (collection.asked.length) {
    // (an answer that never comes, its worker restarted, does not hold the export for ever)
    await Promise.race([new Promise((resolve) => waiting.push(resolve)), new Promise((r) => setTimeout(r, 15_000))]);
    collection.asked = [];
  }
}

/** The work on the collection, as pyapp.collection's session document (Save session; the exports). */
function sessionDocument() {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  /** @type {Record<string, import("./protocol.js").PhotoWork>} */
  const photos = {};
  for (const [index, photo] of collection.photos.entries()) {
    const log = index === collection.index ? currentWork() : (collection.work.get(photo.name) ?? []);
    const objects = collection.labels.get(photo.name) ?? [];
    const status = statusOf(index) === "done" ? "done" : "in progress";
    if (log.length || objects.length || status === "done") {
      photos[photo.name] = { sha256: photo.sha256, status, log, objects };
    }
  }
  return {
    kind: "samtab-session",
    version: 1,
    collection: collection.name,
    model: collection.model,
    classes: collection.classes,
    current: collection.photos[collection.index]?.name ?? null,
    photos,
  };
}

/** collection.json's document again, for the worker's checks (the page keeps its photos with URLs added). */
function indexDocument() {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  return {
    kind: "samtab-collection",
    version: 1,
    name: collection.name,
    model: collection.model,
    classes: collection.classes,
    photos: collection.photos.map(({ name, width, height, sha256, bundle, preview, photo }) => ({
      name,
      width,
      height,
      sha256,
      bundle,
      preview,
      photo,
    })),
  };
}

/** The whole collection's COCO document, or its YOLO zip with the previews as its images. */
async function exportCollection(/** @type {"coco" | "yolo"} */ what) {
  const collection = state.collection;
  if (!collection) return;
  setStatus(`Exporting the collection “${collection.name}”…`, "export");
  await labelsOfAll();
  /** @type {Record<string, ArrayBuffer>} */
  const images = {};
  if (what === "yolo") {
    for (const photo of collection.photos) {
      if (!photo.previewUrl) continue;
      const response = await fetch(photo.previewUrl);
      if (response.ok) images[photo.name] = await response.arrayBuffer();
    }
  }
  send({ type: "collection-export", what, index: indexDocument(), session: sessionDocument(), images });
}

/** Save session: the work on every photo of the collection, as a JSON file. */
async function saveSession() {
  const collection = state.collection;
  if (!collection) return;
  await labelsOfAll();
  const data = new TextEncoder().encode(JSON.stringify(sessionDocument()));
  const slug =
    collection.name
      .replace(/[^A-Za-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .toLowerCase() || "collection";
  download(`${slug}-session.json`, "application/json", data.buffer);
  emit("export", { what: "session", name: `${slug}-session.json`, bytes: data.byteLength });
}

/** Open session: a session file, sent to the worker to be checked against this collection. */
async function openSession(/** @type {File} */ file) {
  const collection = state.collection;
  if (!collection) return;
  if (file.size > 256 * 2 ** 20) {
    fail("collection", `${file.name} is too large to be a session file.`, "Your work is kept.", false);
    return;
  }
  collection.sessionSeq = ++state.openSeq;
  send({ type: "session", seq: collection.sessionSeq, index: indexDocument(), session: await file.text() });
}

/** The session file, read and checked: every photo's work is the session's; its current photo opens. */
export function takeSession(/** @type {import("./protocol.js").SessionOpened} */ data) {
  const collection = state.collection;
  if (!collection || data.seq !== collection.sessionSeq) return;
  const resumed = collection.resuming;
  collection.resuming = false;
  const session = data.session;
  collection.classes = session.classes;
  collection.work = new Map(Object.entries(session.photos).map(([name, work]) => [name, work.log]));
  collection.labels = new Map(Object.entries(session.photos).map(([name, work]) => [name, work.objects]));
  collection.done = new Set(Object.keys(session.photos).filter((name) => session.photos[name].status === "done"));
  const current = collection.photos.findIndex((photo) => photo.name === session.current);
  const index = current >= 0 ? current : Math.max(collection.index, 0);
  collection.index = -1; // the photo open now is replaced by the session's, even if it is the same one
  openCollectionPhoto(index);
  emit("session", { photos: Object.keys(session.photos).length, resumed });
}

const sessionInput = /** @type {HTMLInputElement} */ ($("session-input"));
$("collection-coco").addEventListener("click", () => exportCollection("coco"));
$("collection-yolo").addEventListener("click", () => exportCollection("yolo"));
$("session-save").addEventListener("click", () => saveSession());
$("session-open").addEventListener("click", () => sessionInput.click());
sessionInput.addEventListener("change", () => {
  const [file] = sessionInput.files ?? [];
  sessionInput.value = "";
  if (file) openSession(file);
});

/** The commands applied to the open photo so far: what it is reopened with. */
function currentWork() {
  return [...state.log, ...state.unacked.values(), ...state.outbox];
}

/** A photo of the collection becomes the open one; the one open before keeps its commands. */
export function openCollectionPhoto(/** @type {number} */ index) {
  const collection = state.collection;
  if (!collection || index < 0 || index >= collection.photos.length || index === collection.index) return;
  const photo = collection.photos[index];
  if (!photo.bundleUrl) {
    encodeInCollection(index);
    return;
  }
  leavePhoto();
  collection.index = index;
  /** @type {import("./state.js").Demo} */
  const demo = {
    slug: `${collection.name}/${photo.name}`,
    title: photo.name,
    credit: collection.name,
    licence: "",
    width: photo.width,
    height: photo.height,
    model_name: collection.model,
    photo: `collection:${photo.name}`,
    previewUrl: /** @type {string} */ (photo.previewUrl),
    bundleUrl: photo.bundleUrl,
    modelUrl: collection.modelUrl,
  };
  openDemo(demo, collection.work.get(photo.name) ?? [], index);
  renderStrip();
}

/** A photo of the collection without a bundle: encoded here (or by the site's encode service, if the person
 * says so) with the collection's model, as one's own photo is, then opened; the bundle stays in this tab. */
async function encodeInCollection(/** @type {number} */ index) {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  const photo = collection.photos[index];
  let file = photo.file ?? null;
  try {
    if (!file && photo.photoUrl) {
      const response = await fetch(photo.photoUrl);
      if (!response.ok) throw new Error(`${photo.photo} answered HTTP ${response.status}`);
      const type = response.headers.get("Content-Type") ?? "";
      file = new File([await response.blob()], photo.name.split("/").at(-1) ?? photo.name, { type });
    }
  } catch (error) {
    fail("collection", `${photo.name} needs encoding, and its photo cannot be read: ${error.message}.`, KEPT, false);
    return;
  }
  if (!file) {
    fail(
      "collection",
      `${photo.name} needs encoding, and the collection does not have the photo itself.`,
      `Encode it with samtab-encode PHOTOS... --out FOLDER --index. ${KEPT}`,
      false,
    );
    return;
  }
  const source = file;
  encodePhoto(source, {
    model: collection.model,
    whenMade: (_name, _bytes, bundle, sha256) => {
      if (state.collection !== collection) return;
      photo.bundleUrl = URL.createObjectURL(new Blob([bundle]));
      photo.sha256 ??= sha256;
      photo.previewUrl ??= URL.createObjectURL(source);
      openCollectionPhoto(index);
    },
  });
}
const KEPT = "The photo open now is kept.";

/** Previous (-1) or next (+1) photo of the collection; false when no collection is open (the key is free). */
export function stepPhoto(/** @type {number} */ by) {
  const collection = state.collection;
  if (!collection) return false;
  const count = collection.photos.length;
  let index = collection.index;
  for (let tries = 0; tries < count; tries++) {
    index = (index + by + count) % count;
    if (collection.photos[index].bundleUrl) break; // photos that need encoding are stepped over
  }
  openCollectionPhoto(index);
}

/** Each photo's status in the strip: not started, in progress (it has commands), needs encoding; and which is open. */
export function renderStrip() {
  const collection = state.collection;
  if (!collection) return;
  scheduleAutosave();
  const count = (/** @type {string} */ status) => collection.photos.filter((_, i) => statusOf(i) === status).length;
  $("filmstrip-where").textContent =
    `Photo ${collection.index + 1} of ${collection.photos.length}: ${count("done")} done, ` +
    `${count("in progress")} in progress. Keys , and . step.`;
  const current = collection.photos[collection.index];
  putPressed(current ? collection.done.has(current.name) : false);
  for (const button of list.querySelectorAll("button")) {
    const index = Number(button.dataset.index);
    const photo = collection.photos[index];
    const status = statusOf(index);
    button.dataset.status = status;
    button.setAttribute("aria-current", String(index === collection.index));
    const label = button.querySelector(".photo-status");
    if (label) label.textContent = status;
    button.title = `${photo.name}: ${status}${status === "needs encoding" ? " (open it to encode it)" : ""}`;
  }
}

/** A photo's status: needs encoding (no bundle), done (so marked), in progress (it has commands), or not
 * started. */
function statusOf(/** @type {number} */ index) {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  const photo = collection.photos[index];
  const work = index === collection.index ? currentWork() : (collection.work.get(photo.name) ?? []);
  if (!photo.bundleUrl) return "needs encoding";
  if (collection.done.has(photo.name)) return "done";
  return work.length ? "in progress" : "not started";
}

const doneButton = $("photo-done");
const putPressed = (/** @type {boolean} */ pressed) => doneButton.setAttribute("aria-pressed", String(pressed));

/** Mark the open photo done (or not done again); false when no collection is open (the key is free). */
export function toggleDone() {
  const collection = state.collection;
  const photo = collection?.photos[collection.index];
  if (!collection || !photo) return false;
  if (!collection.done.delete(photo.name)) collection.done.add(photo.name);
  renderStrip();
}
doneButton.addEventListener("click", () => toggleDone());
