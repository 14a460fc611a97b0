// samtab's service worker. Online, every request goes to the network as it is (so a visit always gets
// the current files, and nothing slows the first load); offline, the copy kept from the last visit answers.
// The page says what to keep once a photo is open ("keep" below), so copies are made in the background.
// Every same-origin response gets the cross-origin isolation headers, for hosts that cannot send them.
const CACHE = "samtab-v1";
const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function isolated(response) {
  if (response.status === 0 || response.type === "opaque") return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

async function networkFirst(request) {
  try {
    return isolated(await fetch(request));
  } catch (error) {
    // A page's address carries its options (?demo=…): any copy of the page will do.
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request, { ignoreVary: true, ignoreSearch: request.mode === "navigate" });
    if (cached) return isolated(cached);
    throw error;
  }
}

// The page names what it needs to work offline (what it loaded before this worker controlled it, and
// what its Python worker fetched): keep a copy of each that is not kept yet.
self.addEventListener("message", (event) => {
  if (event.data?.type !== "keep" || !Array.isArray(event.data.urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const url of event.data.urls) {
      if (new URL(url).origin !== self.location.origin) continue;
      // The runtime, models and bundles are large and change only with a rebuild: fetched once. The
      // page's own small files are refreshed on every visit.
      if (/\/(vendor|models|demos)\//.test(new URL(url).pathname) && await cache.match(url)) continue;
      try {
        const response = await fetch(url);
        if (response.ok) await cache.put(url, response);
      } catch { /* offline already: nothing to keep */ }
    }
    event.source?.postMessage({ type: "kept" });
  })());
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(networkFirst(request));
});
