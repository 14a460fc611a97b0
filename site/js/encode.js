// @ts-check
// A person's own photo opened without a bundle is encoded here, in the tab (issue 17): the photo's encoder
// input is made by our Python (pyapp.image, the same code as tools/encode.py), the encoder runs in a worker of
// its own (site/encoder-worker.js: cancel terminates it), and the Python worker writes its outputs as the
// bundle tools/encode.py would write (pyapp.bundle). The photo then opens as one's own photo and bundle do.
// Bundles made here are kept in IndexedDB under the photo's sha256 and the model's name, the least recently
// used dropped past KEPT_BYTES, so that the photo opens again at once; "Save bundle" downloads it.
// The encoder is downloaded only then, its size said first; the service worker keeps it for offline visits.
// A site deployed with a team's encode service (site/settings.js, tools/site_settings.py; the CSP allows that
// origin alone) may send the photo there instead (tools/encode_service.py): the person is asked first, with
// the service's origin shown, once a visit. `?encoder=tab` encodes here; `?encoder=service` (or the service's
// own address) sends it there, still after asking; a link cannot name another service.
import { $, clearError, emit, fail, put, setStatus, updateState } from "./contract.js";
import { openOwnBytes } from "./photos.js";
import { objectStore } from "./saves.js";
import { state } from "./state.js";
import { send } from "./worker.js";

const BUNDLES_DB = "samtab-bundles";
const BUNDLES_STORE = "bundles";
const KEPT_BYTES = 256 * 2 ** 20; // bundles kept, all photos together (a SAM2 bundle is ~8 MB)
const ASK_BYTES = 2 ** 20; // an encoder this large is downloaded only once the person says so
const ANSWER_MS = 60_000; // the Python worker answers a prepare or a make-bundle within this

const offer = $("encode-bar"); // the question before a download, then Cancel while encoding
const offerText = $("encode-text");
const goButton = $("encode-go");
const sendButton = $("encode-send");
const cancelButton = $("encode-cancel");
const saveButton = /** @type {HTMLButtonElement} */ ($("save-bundle"));

/** @type {Worker | null} */
let encoder = null;
let encodeSeq = 0;
/** @type {Map<number, {resolve: (data: any) => void, reject: (error: Error) => void}>} the Python worker's answers */
const waiting = new Map();
/** @type {Set<string>} encoder files downloaded in this tab: not asked about again */
const downloaded = new Set();
/** @type {{seq: number, cancelled: boolean, stop: () => void} | null} the encode under way */
let current = null;
/** The encode service this site was deployed with (its origin), or null: then nothing leaves the machine. */
const SERVICE = /** @type {string | null} */ (/** @type {any} */ (self).SAMTAB_SETTINGS?.encodeService ?? null);
// On a site with a service, the header's promise says when a photo would leave.
const tagline = document.querySelector(".tagline");
if (SERVICE && tagline) {
  tagline.textContent = `Segment Anything 2, in this tab. Nothing leaves your machine unless you send a photo to ${SERVICE}.`;
}
/** Whether the person said yes to sending photos to SERVICE in this visit. */
let serviceAllowed = false;

// --- the Python worker's answers ---------------------------------------------------------------------

/** `prepared` and `bundle-made`, from js/handlers.js. */
export function answered(/** @type {{seq: number}} */ data) {
  waiting.get(data.seq)?.resolve(data);
  waiting.delete(data.seq);
}

/** An error of phase "encode" from the Python worker: the encode waiting for it fails with its message. */
export function refused(/** @type {string} */ message) {
  for (const pending of waiting.values()) pending.reject(new Error(message));
  waiting.clear();
}

function ask(/** @type {any} */ message, /** @type {Transferable[]} */ transfer) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(message.seq);
      reject(new Error("Python did not answer; reload the page"));
    }, ANSWER_MS);
    waiting.set(message.seq, {
      resolve: (data) => {
        clearTimeout(timer);
        resolve(data);
      },
      reject: (error) => {
        clearTimeout(timer);
        reject(error);
      },
    });
    send(message, transfer);
  });
}

// --- bundles kept --------------------------------------------------------------------------------------

const bundles = objectStore(BUNDLES_DB, BUNDLES_STORE, "key");

/** The bundle kept for this photo and model, marked as used now; null if there is none. */
async function keptBundle(/** @type {string} */ key) {
  try {
    const entry = await bundles("readonly", (store) => store.get(key));
    if (!entry) return null;
    bundles("readwrite", (store) => store.put({ ...entry, used: Date.now() })).catch(() => {});
    return /** @type {ArrayBuffer} */ (entry.bundle);
  } catch {
    return null; // no IndexedDB (a private window may refuse it): encoded again
  }
}

/** Keep a bundle made here; the least recently used go past KEPT_BYTES. */
async function keepBundle(/** @type {string} */ key, /** @type {ArrayBuffer} */ bundle) {
  try {
    await bundles("readwrite", (store) => store.put({ key, bundle, bytes: bundle.byteLength, used: Date.now() }));
    /** @type {{key: string, bytes: number, used: number}[]} */
    const all = await bundles("readonly", (store) => store.getAll());
    all.sort((a, b) => b.used - a.used);
    let total = 0;
    for (const entry of all) {
      total += entry.bytes;
      if (total > KEPT_BYTES && entry.key !== key) await bundles("readwrite", (store) => store.delete(entry.key));
    }
  } catch (error) {
    console.warn("samtab: the bundle made here is not kept:", error);
  }
}

// --- encoding ------------------------------------------------------------------------------------------

const hex = (/** @type {ArrayBuffer} */ digest) =>
  [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
const mb = (/** @type {number} */ bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;

/** The model a person's photo is encoded with: the one the gallery opens photos with, else the first. */
export function chosenModel() {
  const names = Object.keys(state.models);
  return names.includes(state.preferredModel) ? state.preferredModel : names[0];
}

/** @type {((answer: "tab" | "service" | null) => void) | null} the question asked before an encode */
let asking = null;

/** Ask where (or whether) to encode: resolves "tab", "service" or null (Cancel). */
function choose(/** @type {string} */ text, /** @type {{tab: boolean, service: boolean}} */ offered) {
  return /** @type {Promise<"tab" | "service" | null>} */ (
    new Promise((resolve) => {
      offerText.textContent = text;
      goButton.hidden = !offered.tab;
      sendButton.hidden = !offered.service;
      sendButton.textContent = `Send to ${SERVICE}`;
      offer.hidden = false;
      asking = (answer) => {
        asking = null;
        offerText.textContent = "";
        goButton.hidden = sendButton.hidden = true;
        resolve(answer);
      };
    })
  );
}

goButton.addEventListener("click", () => asking?.("tab"));
sendButton.addEventListener("click", () => asking?.("service"));
cancelButton.addEventListener("click", () => (asking ? asking(null) : stopEncoding()));

/** Where photos go by this page's address: "tab", "service" (after asking), or "ask" (either, after asking). */
function requestedRoute() {
  const asked = new URLSearchParams(location.search).get("encoder");
  if (!asked) return SERVICE ? "ask" : "tab";
  if (asked === "tab") return "tab";
  if (!SERVICE) {
    throw new Error(
      `the link asks for an encode service (?encoder=${asked}), but this site has none: photos are encoded in ` +
        "this tab and nothing leaves your machine. Open the page without ?encoder= to encode it here",
    );
  }
  let origin = null;
  try {
    origin = new URL(asked === "service" ? SERVICE : asked).origin;
  } catch {}
  if (origin !== SERVICE) {
    throw new Error(
      `?encoder=${asked} is not this site's encode service (${SERVICE}); a link cannot send photos anywhere else`,
    );
  }
  return "service";
}

/** The service's GET /health, or null with why (it is not reached, or its model is not one of this site's). */
async function serviceModel() {
  try {
    const response = await fetch(`${SERVICE}/health`, { credentials: "omit", cache: "no-store" });
    if (!response.ok) return { model: null, why: `${SERVICE} answered HTTP ${response.status}` };
    const health = await response.json();
    if (!(health.model in state.models)) {
      return { model: null, why: `${SERVICE} encodes with ${health.model}, which this site does not have` };
    }
    return { model: /** @type {string} */ (health.model), maxBytes: Number(health.max_bytes) || Infinity, why: "" };
  } catch (error) {
    return { model: null, why: `${SERVICE} does not answer (${error.message})` };
  }
}

/**
 * @callback Encoded  what becomes of a photo's bundle once made (or found kept)
 * @param {string} name  the photo's file name
 * @param {ArrayBuffer} photo  its bytes
 * @param {ArrayBuffer} bundle
 * @param {string} sha256  the photo's
 */

/** @type {Encoded} one's own photo: opened with its bundle */
const openEncoded = (name, photo, bundle) => openOwnBytes(name, photo, bundle, `${name}.msgpack`, true);

/**
 * A photo without a bundle: its kept bundle, or encoded here; then opened as one's own photo and bundle, or
 * given to `whenMade` (a photo of a collection, encoded with the collection's `model`).
 * @param {File} file
 * @param {{model?: string, whenMade?: Encoded}} [options]
 */
export async function encodePhoto(file, { model: required = "", whenMade = openEncoded } = {}) {
  if (current) stopEncoding(); // the last one chosen is encoded
  clearError();
  const model = required || chosenModel();
  const modelUrl = state.models[model];
  if (!modelUrl) {
    fail("open", "This site has no model to encode your photo with.", "Open the photo with its bundle instead.", false);
    return;
  }
  const seq = ++encodeSeq;
  /** @type {{seq: number, cancelled: boolean, stop: () => void}} */
  const job = { seq, cancelled: false, stop: () => {} };
  current = job;
  updateBusy();
  try {
    const bytes = await file.arrayBuffer();
    const sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
    const key = `${sha256}|${model}`;
    const kept = await keptBundle(key);
    if (job.cancelled) return;
    if (kept) {
      finish(job);
      emit("encoded", { cached: true, model, photo: file.name });
      whenMade(file.name, bytes, kept, sha256);
      return;
    }
    let route = requestedRoute();
    if (route !== "tab") {
      const service = await serviceModel();
      if (job.cancelled) return;
      if (required && service.model && service.model !== required) {
        Object.assign(service, { model: null, why: `${SERVICE} encodes with ${service.model}, not ${required}` });
      }
      if (!service.model) {
        if (route === "service") throw new Error(service.why);
        console.warn(`samtab: ${service.why}; encoding here`);
        route = "tab";
      } else {
        const answer = serviceAllowed
          ? "service"
          : await choose(
              `${file.name} has no bundle. Send it to the encode service at ${SERVICE} (${service.model})` +
                (route === "ask" ? ", or encode it in this tab (nothing leaves your machine)?" : "?") +
                " Photos are sent only if you say so, asked once a visit.",
              { tab: route === "ask", service: true },
            );
        if (job.cancelled) return;
        if (!answer) {
          finish(job);
          setStatus(`${file.name} was not encoded.`, "ready", "Your current photo and its objects are kept.");
          return;
        }
        if (answer === "service") {
          serviceAllowed = true;
          await encodeOnService(job, file, bytes, service.model, service.maxBytes ?? Infinity, whenMade);
          return;
        }
        route = "tab";
      }
    }
    const info = await (await fetch(new URL("model.json", modelUrl))).json();
    const encoderFile = info.files?.encoder_web ?? info.files?.encoder;
    const input = info.io?.encoder?.inputs?.[0]?.name;
    if (!encoderFile || !input) throw new Error(`the model ${model} has no encoder on this site`);
    const url = new URL(encoderFile, modelUrl).href;
    if (!downloaded.has(url)) {
      const head = await fetch(url, { method: "HEAD" });
      if (!head.ok) throw new Error(`the model ${model} has no encoder on this site (${url}: HTTP ${head.status})`);
      const size = Number(head.headers.get("Content-Length")) || 0;
      // A large download is asked about first (SAM2.1 tiny's encoder: 109 MB); a small one just happens.
      const yes =
        size < ASK_BYTES ||
        (await choose(
          `${file.name} has no bundle. Encode it here with ${model}? Its encoder is ${mb(size)}, downloaded once.`,
          { tab: true, service: false },
        ));
      if (job.cancelled) return;
      if (!yes) {
        finish(job);
        setStatus(`${file.name} was not encoded.`, "ready", "Your current photo and its objects are kept.");
        return;
      }
    }
    setStatus(`Encoding ${file.name} with ${model}…`, "encode", "Preparing the photo…", false);
    offer.hidden = false; // its Cancel stops the encode
    const photoCopy = bytes.slice(0);
    const prepared = await ask({ type: "prepare", seq, photo: photoCopy, photo_name: file.name }, [photoCopy]);
    if (job.cancelled) return;
    const outputs = await runEncoder(job, url, input, prepared.tensor, file.name);
    if (job.cancelled) return;
    if (new URLSearchParams(location.search).get("diagnostics") === "1") {
      // For the parity test: the encoder's float32 outputs, before they are stored as float16.
      Object.assign(window, { __samtab_encoder_outputs: structuredClone(outputs.outputs) });
    }
    downloaded.add(url);
    state.keep.add(url); // the service worker keeps it for offline visits
    const made = await ask(
      {
        type: "make-bundle",
        seq,
        embeddings: outputs.outputs,
        width: prepared.width,
        height: prepared.height,
        sha256: prepared.sha256,
        model_name: model,
      },
      Object.values(outputs.outputs),
    );
    if (job.cancelled) return;
    finish(job);
    const bundle = /** @type {ArrayBuffer} */ (made.data);
    await keepBundle(key, bundle.slice(0));
    emit("encoded", {
      cached: false,
      model,
      photo: file.name,
      via: "tab",
      ...outputs.timings,
      provider: outputs.provider,
    });
    whenMade(file.name, bytes, bundle, sha256);
  } catch (error) {
    if (job.cancelled) return;
    finish(job);
    fail(
      "encode",
      `${file.name} could not be encoded: ${error.message}`,
      "Your current photo and its objects are kept.",
      false,
    );
  }
}

/** The photo sent to the encode service (its POST /encode); its bundle kept and opened as one made here. */
async function encodeOnService(
  /** @type {{seq: number, cancelled: boolean, stop: () => void}} */ job,
  /** @type {File} */ file,
  /** @type {ArrayBuffer} */ bytes,
  /** @type {string} */ model,
  /** @type {number} */ maxBytes,
  /** @type {Encoded} */ whenMade,
) {
  if (bytes.byteLength > maxBytes) {
    // Refused here, not after an upload the service would stop reading (a slow link would see it fail).
    throw new Error(
      `it is ${mb(bytes.byteLength)}, over the encode service's limit of ${mb(maxBytes)}; open the page ` +
        "with ?encoder=tab to encode it in this tab",
    );
  }
  const controller = new AbortController();
  const started = performance.now();
  const tick = () =>
    setStatus(
      `Encoding ${file.name} on ${SERVICE}…`,
      "encode",
      `${mb(bytes.byteLength)} sent; ${Math.round((performance.now() - started) / 1000)} s (Cancel stops it).`,
      false,
    );
  tick();
  const ticker = window.setInterval(tick, 1000);
  job.stop = () => controller.abort();
  offer.hidden = false; // its Cancel stops the encode
  try {
    const response = await fetch(`${SERVICE}/encode?name=${encodeURIComponent(file.name)}`, {
      method: "POST",
      body: bytes,
      headers: { "Content-Type": file.type || "application/octet-stream" },
      credentials: "omit",
      signal: controller.signal,
    }).catch((error) => {
      if (job.cancelled) throw error;
      throw new Error(`the encode service at ${SERVICE} could not be reached (${error.message}); try again`);
    });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      throw new Error(answer.error || `${SERVICE} answered HTTP ${response.status}`);
    }
    const bundle = await response.arrayBuffer();
    if (job.cancelled) return;
    finish(job);
    const sha256 = response.headers.get("X-Samtab-Sha256") || hex(await crypto.subtle.digest("SHA-256", bytes));
    await keepBundle(`${sha256}|${model}`, bundle.slice(0));
    emit("encoded", {
      cached: false,
      model,
      photo: file.name,
      via: "service",
      service: SERVICE,
      encode_ms: Number(response.headers.get("X-Samtab-Encode-Ms")),
      total_ms: Math.round(performance.now() - started),
    });
    whenMade(file.name, bytes, bundle, sha256);
  } finally {
    clearInterval(ticker);
  }
}

/** The encoder's outputs for the prepared tensor, in the encoder's worker; its progress on the status line. */
function runEncoder(
  /** @type {{cancelled: boolean, stop: () => void}} */ job,
  /** @type {string} */ url,
  /** @type {string} */ input,
  /** @type {ArrayBuffer} */ tensor,
  /** @type {string} */ name,
) {
  encoder ??= new Worker(new URL("../encoder-worker.js", import.meta.url), { type: "module" });
  const worker = encoder;
  return /** @type {Promise<{outputs: Record<string, ArrayBuffer>, timings: Record<string, number>, provider: string}>} */ (
    new Promise((resolve, reject) => {
      let ticker = 0;
      job.stop = () => {
        clearInterval(ticker);
        worker.terminate(); // a WebAssembly run cannot be stopped otherwise
        if (encoder === worker) encoder = null;
        reject(new Error("cancelled"));
      };
      worker.onmessage = ({ data }) => {
        if (data.id !== job.seq) return;
        if (data.type === "progress") {
          setStatus(
            `Encoding ${name}…`,
            "encode",
            `Downloading the encoder: ${mb(data.received)} of ${mb(data.total)}`,
          );
        } else if (data.type === "encoding") {
          const started = performance.now();
          const tick = () =>
            setStatus(
              `Encoding ${name}…`,
              "encode",
              `The encoder is running: ${Math.round((performance.now() - started) / 1000)} s (Cancel stops it).`,
            );
          tick();
          ticker = window.setInterval(tick, 1000);
        } else if (data.type === "encoded") {
          clearInterval(ticker);
          resolve(data);
        } else if (data.type === "failed") {
          clearInterval(ticker);
          reject(new Error(data.message));
        }
      };
      worker.onerror = (event) => {
        clearInterval(ticker);
        reject(new Error(event.message || "the encoder's worker failed"));
      };
      const threads = Number(new URLSearchParams(location.search).get("threads")) || 0;
      worker.postMessage({ type: "encode", id: job.seq, url, input, tensor, threads }, [tensor]);
    })
  );
}

function finish(/** @type {{seq: number}} */ job) {
  if (current?.seq !== job.seq) return;
  current = null;
  asking?.(false);
  offer.hidden = true;
  updateBusy();
}

/** Cancel: the encode under way stops (its worker terminated); the photo open stays. */
export function stopEncoding() {
  const job = current;
  if (!job) return;
  job.cancelled = true;
  job.stop();
  refused("cancelled");
  finish(job);
  setStatus("Encoding cancelled.", "ready", "Your current photo and its objects are kept.");
  emit("encode-cancelled", {});
}

function updateBusy() {
  state.encoding = current !== null;
  updateState();
}

// --- saving the bundle made here -------------------------------------------------------------------------

/** The photo open is one encoded here (or opened from a bundle kept from that): "Save bundle" saves it. */
export function showSaveBundle() {
  const files = state.photo?.kind === "files" && state.photo.encoded ? state.photo.files : null;
  saveButton.hidden = !files;
}

saveButton.addEventListener("click", () => {
  const photo = state.photo;
  if (!photo?.files || !photo.encoded) return;
  const url = URL.createObjectURL(new Blob([photo.files.bundle], { type: "application/x-msgpack" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: photo.bundleName });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  emit("export", { what: "bundle", name: photo.bundleName, bytes: photo.files.bundle.byteLength });
  put(saveButton, "title", `Saved as ${photo.bundleName}`);
});
