// Registers samtab's service worker (sw.js): it keeps a copy of everything the page loads, so the app
// works offline after the first visit, and adds the cross-origin isolation headers on hosts that cannot
// send them (PyScript's "mini-coi" convention). If the page is not isolated yet, it reloads once under
// the service worker's control.
(() => {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) return;
  const tried = "samtab:isolation-reload";
  // updateViaCache "none": the browser checks sw.js and the build.js it imports past any HTTP cache, so a
  // redeployed site is noticed on the next visit.
  navigator.serviceWorker
    .register(new URL("./sw.js", document.currentScript.src).href, { updateViaCache: "none" })
    .then(
      (registration) => {
        if (window.crossOriginIsolated) return;
        if (sessionStorage.getItem(tried)) {
          // A reload under the service worker did not help: go on without threads.
          sessionStorage.removeItem(tried);
          return;
        }
        const reload = () => {
          sessionStorage.setItem(tried, "1");
          location.reload();
        };
        if (registration.active && navigator.serviceWorker.controller) reload();
        else navigator.serviceWorker.addEventListener("controllerchange", reload, { once: true });
      },
      (error) => console.warn("samtab: the service worker could not be registered:", error),
    );
})();
