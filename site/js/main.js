// @ts-check
// Start-up: the first paint, the worker, the gallery and the demo the address names; and what the window
// itself reports (errors, requests for the worker's figures, a new service worker).
import { paintPlaceholder } from "./canvas.js";
import { collectionFromQuery } from "./collection.js";
import { emit, fail, now } from "./contract.js";
import { onWorkerMessage } from "./handlers.js";
import "./offline.js";
import { demoFromQuery, loadGallery, openDemo } from "./photos.js";
import { state } from "./state.js";
import { send, startWorker } from "./worker.js";

addEventListener("error", (event) => {
  if (/ResizeObserver loop/.test(event.message)) return; // the browser's benign layout notice
  fail("page", `Something went wrong: ${event.message}`, "Reload the page to try again.");
});
addEventListener("unhandledrejection", (event) =>
  fail("page", `Something went wrong: ${event.reason?.message || event.reason}`, "Reload the page to try again."),
);
// Tests and benchmarks ask the worker for its memory figures; the answer comes as a samtab:stats event.
addEventListener("samtab:request-stats", () => {
  if (state.workerReady) send({ type: "stats" });
});

async function boot() {
  emit("boot", { cross_origin_isolated: crossOriginIsolated });
  paintPlaceholder("Choose a demo, or open your own photo");
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  state.timings.painted_ms = now();
  emit("painted", { painted_ms: state.timings.painted_ms });
  const workerStarted = startWorker(onWorkerMessage);
  await loadGallery();
  const query = new URLSearchParams(location.search);
  const requested = query.get("demo");
  const collection = query.get("collection");
  if (collection) {
    try {
      await collectionFromQuery(collection);
    } catch (error) {
      fail("collection", `The collection “${collection}” could not be opened: ${error.message}`, "", false);
    }
  } else if (requested) {
    try {
      await openDemo(await demoFromQuery(requested));
    } catch (error) {
      fail("open", `The demo “${requested}” could not be opened: ${error.message}`, "Choose one from the list.", false);
    }
  }
  await workerStarted;
}

boot();
