// @ts-check
// A collection (issue 18): the photos of a served collection.json (`?collection=URL`, written by
// `samtab-encode ... --index`), shown as a filmstrip; one photo is open at a time. Switching photos (the strip,
// or the keys of "collection-step") keeps each photo's commands and applies them again when it is opened
// again, so its objects come back as they were. The index is read by the worker (pyapp.collection): the page
// resolves its paths, on this site only.
import { $, emit, fail, setStatus } from "./contract.js";
import { openDemo } from "./photos.js";
import { state } from "./state.js";
import { send } from "./worker.js";

/** @typedef {import("./protocol.js").CollectionOpened} CollectionOpened */
/** @typedef {import("./protocol.js").Command} Command */

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

/** The worker is ready: the index waiting for it is sent. */
export function sendCollection() {
  const request = state.collectionRequest;
  if (!request) return;
  const name = new URL(request.url).pathname.split("/").at(-1) || "collection.json";
  send({ type: "collection", seq: request.seq, index: request.index, url: name });
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
  /** @param {string | null} path */
  const resolve = (path) => {
    if (path === null) return null;
    const url = new URL(path, request.url);
    if (url.origin !== location.origin) throw new Error(`${path} is not on this site`);
    return url.href;
  };
  let photos;
  try {
    photos = data.photos.map((photo) => ({
      ...photo,
      bundleUrl: resolve(photo.bundle),
      previewUrl: resolve(photo.preview ?? photo.photo),
    }));
  } catch (error) {
    fail(
      "collection",
      `The collection cannot be opened: ${error.message}.`,
      "Its paths must stay on this site.",
      false,
    );
    return;
  }
  state.collection = {
    name: data.name,
    model: data.model,
    modelUrl,
    classes: data.classes,
    photos,
    index: -1,
    work: new Map(),
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
  openCollectionPhoto(0);
}

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
    fail(
      "collection",
      `${photo.name} needs encoding: the collection has no bundle for it yet.`,
      "Encode it with samtab-encode PHOTOS... --out FOLDER --index, or open it with Open photo… to encode it " +
        "here. The photo open now is kept.",
      false,
    );
    return;
  }
  if (collection.index >= 0 && state.photo?.collection === collection.index) {
    collection.work.set(collection.photos[collection.index].name, currentWork());
  }
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
  const done = collection.photos.filter((_, index) => statusOf(index) === "in progress").length;
  $("filmstrip-where").textContent =
    `Photo ${collection.index + 1} of ${collection.photos.length}, ${done} in progress. Keys , and . step.`;
  for (const button of list.querySelectorAll("button")) {
    const index = Number(button.dataset.index);
    const photo = collection.photos[index];
    const status = statusOf(index);
    button.dataset.status = status;
    button.setAttribute("aria-current", String(index === collection.index));
    const label = button.querySelector(".photo-status");
    if (label) label.textContent = status;
    button.title = `${photo.name}: ${status}`;
  }
}

/** A photo's status: needs encoding (no bundle), in progress (it has commands), or not started. */
function statusOf(/** @type {number} */ index) {
  const collection = /** @type {import("./state.js").Collection} */ (state.collection);
  const photo = collection.photos[index];
  const work = index === collection.index ? currentWork() : (collection.work.get(photo.name) ?? []);
  return !photo.bundleUrl ? "needs encoding" : work.length ? "in progress" : "not started";
}
