// Cross-origin isolation for static hosts that cannot send headers (PyScript's "mini-coi" convention,
// written for samtab). On the page: if the page is not isolated, register this file as a service worker
// and reload once. In the service worker: add COOP/COEP/CORP to every same-origin response.
// Where the host already sends the headers (tools/serve.py, _headers, vercel.json), it does nothing.
(() => {
  if (typeof window === "undefined") {
    self.addEventListener("install", () => self.skipWaiting());
    self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
    self.addEventListener("fetch", (event) => {
      const { request } = event;
      if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
      if (new URL(request.url).origin !== self.location.origin) return;
      event.respondWith(fetch(request).then((response) => {
        if (response.status === 0) return response;
        const headers = new Headers(response.headers);
        headers.set("Cross-Origin-Opener-Policy", "same-origin");
        headers.set("Cross-Origin-Embedder-Policy", "require-corp");
        headers.set("Cross-Origin-Resource-Policy", "same-origin");
        return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
      }));
    });
    return;
  }
  if (window.crossOriginIsolated || !window.isSecureContext || !("serviceWorker" in navigator)) return;
  const tried = "samtab:coi-reload";
  if (sessionStorage.getItem(tried)) {
    // A reload under the service worker did not help (e.g. the browser refused): go on without threads.
    sessionStorage.removeItem(tried);
    return;
  }
  navigator.serviceWorker.register(document.currentScript.src).then((registration) => {
    const reload = () => { sessionStorage.setItem(tried, "1"); location.reload(); };
    if (registration.active && !navigator.serviceWorker.controller) reload();
    else navigator.serviceWorker.addEventListener("controllerchange", reload, { once: true });
  }, (error) => console.warn("samtab: could not register the isolation service worker:", error));
})();
