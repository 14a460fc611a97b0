// samtab's service worker. Network first, cache as the fallback: an online visit always gets the current
// files (and refreshes the copy), an offline visit gets the copy from the last visit. Every same-origin
// response gets the cross-origin isolation headers, for hosts that cannot send them.
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
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && request.method === "GET" && !request.headers.has("range")) {
      cache.put(request, response.clone()).catch(() => {}); // a full disk must not break the page
    }
    return isolated(response);
  } catch (error) {
    const cached = await cache.match(request, { ignoreVary: true });
    if (cached) return isolated(cached);
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(networkFirst(request));
});
