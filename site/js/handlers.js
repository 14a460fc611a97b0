// @ts-check
// What the page does with each of the worker's messages (protocol.js): one handler per message type.
import { clearBrushLayer, paintDetail, paintFrame } from "./canvas.js";
import { renderStrip, sendCollection, sessionRefused, showCollection, takeLabels, takeSession } from "./collection.js";
import { clearError, clickHint, download, emit, fail, now, setStatus, touch, updateState } from "./contract.js";
import { endEverything, renderControls, showEverything } from "./controls.js";
import { answered, refused, showSaveBundle } from "./encode.js";
import { keysOf } from "./keys.js";
import { scheduleKeep } from "./offline.js";
import { keepPreviousPhoto, openInWorker } from "./photos.js";
import { offerRestore, replayHere, restored } from "./saves.js";
import { state } from "./state.js";
import { acknowledge, explainBootFailure, flushOutbox, forget, onWorkerCrash, resume } from "./worker.js";

/** @typedef {import("./protocol.js").FromWorker} FromWorker */
/** @typedef {import("./protocol.js").Controls} Controls */
/** @typedef {import("./protocol.js").Mask} Mask */

/** @type {{[T in FromWorker["type"]]: (data: Extract<FromWorker, {type: T}>) => void}} */
const HANDLERS = {
  pong() {},

  python(data) {
    state.timings.python_ms = now();
    emit("python", { python_ms: state.timings.python_ms, snapshot: data.snapshot, worker: data.timings });
    setStatus("Loading the decoder…", "ort");
  },

  async "boot-failed"(data) {
    const { message, hint } = await explainBootFailure(data.message);
    fail("python", message, hint);
  },

  stats(data) {
    emit("stats", {
      ...data,
      type: undefined,
      page: {
        log: state.log.length,
        unacked: state.unacked.size,
        outbox: state.outbox.length,
        // @ts-expect-error: performance.memory is Chromium's alone
        js_heap_bytes: performance.memory?.usedJSHeapSize ?? null,
        restarts: state.restarts,
      },
    });
  },

  applied(data) {
    acknowledge(data);
    endEverything(data.cmd);
    restored();
    renderStrip();
  },

  collection(data) {
    showCollection(data);
  },

  session(data) {
    takeSession(data);
  },

  refused(data) {
    forget(data.cmd);
    endEverything(data.cmd);
    restored();
  },

  progress(data) {
    if (data.what !== "everything" || !state.everything) return;
    Object.assign(state.everything, { done: data.done, total: data.total, found: data.found, perRun: data.per_run });
    showEverything();
  },

  settled(data) {
    state.covered = Math.max(state.covered, data.input);
    updateState();
  },

  status(data) {
    setStatus(data.text, data.phase);
  },

  ready(data) {
    state.workerReady = true;
    clearError();
    state.readyInfo = data.info;
    state.timings.ort_ms = now();
    updateState();
    emit("ready", { ...data.info, timings: { ...state.timings, worker: data.info.timings } });
    sendCollection();
    if (state.photo) openInWorker();
    else if (state.collectionRequest) setStatus("Reading the collection…", "open");
    else {
      const notice = data.info.notice || "";
      setStatus("Choose a demo, or open your own photo and its bundle", "ready", notice, !!notice);
    }
  },

  opened(data) {
    if (data.seq !== state.photo?.seq) return; // an older photo, replaced meanwhile
    state.opened = true;
    state.opening = false;
    showSaveBundle();
    if (state.restarting) {
      resume();
      clearError(); // the restart worked: its notice has done its job
    } else {
      state.photo.key = `${data.photo_key}|${data.model_name}`;
      flushOutbox();
      const carry = state.photo.carry ?? [];
      state.photo.carry = [];
      if (carry.length) {
        // The same photo with another model, or a photo of the collection opened again: the objects are made
        // again, their masks by this model.
        if (state.photo.collection !== undefined) {
          replayHere(carry, 0, "Restoring this photo's objects…", "This photo's objects are back as you left them.");
        } else {
          replayHere(
            carry,
            0,
            `Decoding your objects' clicks with ${data.model_name}…`,
            `Model: ${data.model_name}. Your objects' clicks were decoded again with it.`,
          );
        }
      } else offerRestore();
    }
    state.restarting = false;
    updateState();
    const notice = state.readyInfo?.notice || "";
    // Which model answers the clicks: the baseline's name says "not SAM2" (issue 16).
    setStatus(
      `${touch() ? "Tap" : "Click"} anywhere on the image. Model: ${data.model_name}`,
      "ready",
      notice,
      !!notice,
    );
    emit("opened", {
      slug: state.photo.slug,
      width: data.width,
      height: data.height,
      model: data.model_name,
      timings: data.timings,
    });
    scheduleKeep();
  },

  frame(data) {
    // (Busy ends with "settled", when the worker has nothing left to decode, for any object.)
    if (data.seq !== state.photo?.seq) {
      // a photo replaced meanwhile: not painted over the new one
      updateState();
      return;
    }
    const started = performance.now();
    if (data.pixels) paintFrame(data); // (zoomed in, a frame may bring the detail alone: see canvas.js)
    clearBrushLayer(); // a stroke drawn on the layer is in the frame now
    state.shown = state.photo;
    renderControls(data.state);
    paintDetail(data.detail); // zoomed in: the part shown, from the photo's own pixels
    const { mask } = data;
    if (mask) {
      requestAnimationFrame(() => {
        const painted = performance.now();
        /** @type {Record<string, number>} */
        const latency = { ...mask.latency_ms, paint: Math.round((painted - started) * 10) / 10 };
        if (data.t0 != null) latency.total = Math.round((painted - data.t0) * 10) / 10;
        updateState();
        describeMask(mask, data.state);
        emit("mask", { ...mask, latency_ms: latency });
      });
    }
  },

  detail(data) {
    if (data.seq === state.photo?.seq) paintDetail(data);
  },

  download(data) {
    if (data.what === "labels") {
      takeLabels(data.data); // a photo of the collection left: its objects, kept for the collection's exports
      return;
    }
    download(data.name, data.mime, data.data);
    if (data.what.startsWith("collection-")) setStatus(`Exported the collection: ${data.name}`, "export");
    emit("export", { what: data.what, name: data.name, bytes: data.data.byteLength });
  },

  prepared(data) {
    answered(data);
  },

  "bundle-made"(data) {
    answered(data);
  },

  error(data) {
    if (data.phase === "collection") sessionRefused(); // (its message is shown below, as any error's)
    if (data.phase === "encode") {
      refused(data.message); // js/encode.js says what failed, with the photo's name
      return;
    }
    if (data.restart) {
      onWorkerCrash(data.message);
      return;
    }
    if (data.refused !== undefined) {
      forget(data.refused);
      restored();
    }
    state.covered = state.inputSeq;
    state.opening = false;
    if (data.phase === "open" && state.previousPhoto) keepPreviousPhoto();
    fail(data.phase, data.message, data.hint, !!data.fatal);
  },
};

export function onWorkerMessage(/** @type {MessageEvent<FromWorker>} */ { data }) {
  const handler = Object.hasOwn(HANDLERS, data?.type) ? HANDLERS[data.type] : null;
  if (handler) /** @type {(data: FromWorker) => void} */ (handler)(data);
  else console.warn("samtab: unknown worker message", data);
}

function describeMask(/** @type {Mask} */ mask, /** @type {Controls} */ controls) {
  const object = controls.open ? controls.objects.find((o) => o.id === mask.object) : null;
  if (!object) return;
  const clicks = `${object.clicks} click${object.clicks === 1 ? "" : "s"}`;
  if (mask.prompt.solid) {
    const points = mask.prompt.points.length;
    const refined = points ? `, refined by ${points} click${points === 1 ? "" : "s"}` : "";
    setStatus(
      `${object.name}: background removed${refined}, mask ${mask.mask_index + 1} of 3 (score ${mask.iou.toFixed(2)})`,
      "mask",
      `${keysOf("export-cutout")} saves it as a transparent PNG; clicks refine it; ${keysOf("candidate")} choose another mask.`,
    );
    return;
  }
  setStatus(
    `${object.name}: ${clicks}, mask ${mask.mask_index + 1} of 3 (score ${mask.iou.toFixed(2)})`,
    "mask",
    clickHint(),
  );
}
