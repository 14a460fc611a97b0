// @ts-check
// samtab's main-thread edge. It moves events and pixels and nothing else: every prompt, mask, view and
// export is computed by Python (pyapp) in the Python worker (site/pyworker.js → pyapp.web.worker), which
// sends back ready-to-paint RGBA frames and the state of the controls. Its modules, in js/:
//
//   main.js      start-up: the first paint, the worker, the gallery, ?demo=; the window's own events
//   state.js     the page's state: one object, every field declared
//   protocol.js  the messages between the page and the worker, as types
//   contract.js  the observable contract (README): <body data-state>, #status, samtab:* events, errors
//   worker.js    the worker, started, watched and restarted; commands numbered and kept until answered
//   handlers.js  what the page does with each of the worker's messages
//   canvas.js    painting, and the pointer: clicks, boxes, long presses, hover previews
//   controls.js  the toolbar, the list of objects, the keyboard
//   keys.js      the keyboard shortcuts: one table for the keys, the help and the README
//   photos.js    demos, one's own files, opening them in the worker
//   offline.js   what a visit needed, kept by the service worker for offline use when the page is still
//   saves.js     work saved in IndexedDB, and offered back
//   runtime.js   whether the browser runtime (vendor/) is on the server
//
// The modules import vendor/constants.js, which tools/vendor.py writes from pyapp with the rest of the
// runtime. On a site deployed without vendor/ no module could load and the page would say nothing, so they
// are loaded from here, where that can still be said (as fail() would say it: the modules did not load).
import { missing, RUNTIME_MISSING } from "./js/runtime.js";

try {
  await import("./js/main.js");
} catch (error) {
  console.error("samtab: the page's modules did not load:", error);
  const { message, hint } = (await missing("./vendor/constants.js"))
    ? RUNTIME_MISSING
    : { message: "The page could not start.", hint: "Reload the page to try again." };
  document.getElementById("status").textContent = message;
  document.getElementById("status-detail").textContent = hint;
  document.body.dataset.state = "error";
  const detail = { phase: "page", message, hint, fatal: true, t_ms: Math.round(performance.now() * 10) / 10 };
  window.dispatchEvent(new CustomEvent("samtab:error", { detail }));
}
