// @ts-check
// Keeping what a visit needed for offline use: the page names the files, the service worker (sw.js) fetches,
// checks and stores them. A person outranks it: fetching, hashing and storing tens of MB takes a second or
// more of both cores here, and a click in that second took twice its time (measured: begun when a photo opened,
// first click 228 ms against 108 begun after 3 s of stillness; then a first click 3.5 s after opening a demo,
// in the keep, 350-370 ms against 170). So it starts only after the page has been still, and while it runs
// anything sent to the Python worker (a click, a box, a hover's decode) holds it: the service worker stops
// (a fetch at once, a store within a piece, a hash when done), and the page asks again once it is still
// (what is kept already is passed over).
import { state } from "./state.js";

// Still for this long (no click or box, nothing opening or decoding) before a keep starts.
const KEEP_DELAY_MS = 3000;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let keepTimer;
let keeping = false; // a keep asked for, not answered, and not held yet

export function scheduleKeep() {
  clearTimeout(keepTimer);
  const inputs = state.inputSeq;
  keepTimer = setTimeout(() => {
    const busy = ["busy", "booting"].includes(document.body.dataset.state ?? "");
    if (busy || state.inputSeq !== inputs) scheduleKeep();
    else requestIdleCallback(() => void keepForOffline(), { timeout: 2000 });
  }, KEEP_DELAY_MS);
}

/** The page is in use: a keep under way stops (once asked, its answer says it was not done). */
export function holdKeep() {
  if (!keeping) return;
  keeping = false;
  navigator.serviceWorker?.controller?.postMessage({ type: "hold" });
}

navigator.serviceWorker?.addEventListener("message", (event) => {
  if (event.data?.type !== "kept") return;
  keeping = false;
  if (event.data.done === false) scheduleKeep(); // held: the rest when the page is still again
});

// A new build's service worker took over during this visit (a redeploy: it claims the page and deletes the
// old build's copy): it is asked to keep this visit's files too, else nothing would be offline until the next.
navigator.serviceWorker?.addEventListener("controllerchange", () => {
  if (state.opened) scheduleKeep();
});

// Ask the service worker to keep everything this visit needed, so the next one works offline: what the
// page loaded, the runtime the Python worker loaded (every vendor/ file; the WebGPU build only if used), the
// open demo's files with every decoder its model names, and an encoder downloaded to encode a person's photo.
async function keepForOffline() {
  const controller = navigator.serviceWorker?.controller;
  if (!controller) return;
  const urls = new Set(
    performance
      .getEntriesByType("resource")
      .map((entry) => entry.name.split("#")[0])
      .filter((url) => new URL(url).origin === location.origin),
  );
  urls.add(new URL("./", document.baseURI).href);
  for (const url of state.keep) urls.add(url); // what the encoder's worker downloaded
  const demo = state.photo?.demo;
  if (demo) {
    for (const url of [demo.previewUrl, demo.bundleUrl, `${demo.modelUrl}model.json`]) urls.add(url);
    try {
      const model = await (await fetch(`${demo.modelUrl}model.json`)).json();
      for (const [part, file] of Object.entries(model.files)) {
        if (!part.startsWith("encoder")) urls.add(new URL(/** @type {string} */ (file), demo.modelUrl).href);
      }
    } catch {
      /* offline already: keep what is known */
    }
  }
  keeping = true;
  controller.postMessage({
    type: "keep",
    urls: [...urls],
    webgpu: state.readyInfo?.execution_provider === "webgpu",
  });
}
