// samtab's service worker. Online, every request goes to the network as it is (so a visit always gets
// the current files, and nothing slows the first load); offline, the copy kept from the last visit answers.
// The page says what to keep once a photo is open ("keep" below), so copies are made in the background.
//
// Copies belong to one build of the site: build.js (written by tools/site_build.py) lists every file with
// its size and sha256 and names the build. A copy is kept only if its bytes are that file's (a host's
// fallback page answering 200 for a missing file is never kept), in a cache named after the build; a new
// build (a redeploy) brings a new build.js, hence a new service worker, which deletes the other builds'
// caches when it takes over. Files made on the device (a Python snapshot, bundles made in the tab) go in a
// cache of their own, also named after the build.
//
// Every same-origin response gets the security headers too (isolation, CSP, nosniff), for hosts that
// cannot send them: the same as tools/serve.py, site/_headers and site/vercel.json (a test keeps them equal;
// the settings below may add an encode service's origin to connect-src, as they do).
try {
  importScripts("./build.js");
} catch {
  self.SAMTAB_BUILD = null; // no build manifest (a site deployed by hand): isolation works, offline copies not
}
const BUILD = self.SAMTAB_BUILD;
const CACHE = BUILD ? `samtab-${BUILD.id}` : null;
const DEVICE_CACHE = BUILD ? `samtab-device-${BUILD.id}` : null;
const SECURITY_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self' blob: data:; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};
// The site's settings (tools/site_settings.py): an encode service's origin joins connect-src, as in the
// header files made from the same settings.
try {
  importScripts("./settings.js");
} catch {
  self.SAMTAB_SETTINGS = null;
}
const SERVICE = self.SAMTAB_SETTINGS?.encodeService;
if (SERVICE) {
  const policy = SECURITY_HEADERS["Content-Security-Policy"];
  SECURITY_HEADERS["Content-Security-Policy"] = policy.replace("connect-src 'self'", `connect-src 'self' ${SERVICE}`);
}
const SCOPE = new URL("./", self.location).href;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) =>
  event.waitUntil(
    (async () => {
      // Caches of other builds (and of the versions before builds had ids) are of no use to this one.
      for (const name of await caches.keys()) {
        if (name.startsWith("samtab-") && name !== CACHE && name !== DEVICE_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  ),
);

// A response is given the headers it lacks. One that has them all (the server sent them) is passed on as it
// came: a Response made here would carry its body through this worker's JavaScript, for every byte of the
// runtime, and would not be the browser's own (its compiled WebAssembly is not reused from one visit to the
// next).
function secured(response) {
  if (response.status === 0 || response.type === "opaque") return response;
  if (Object.entries(SECURITY_HEADERS).every(([name, value]) => response.headers.get(name) === value)) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

// The site-relative path a URL names ("" and "x/" are their index.html), or null outside the site.
function sitePath(url) {
  const href = new URL(url).href.split(/[?#]/)[0];
  if (!href.startsWith(SCOPE)) return null;
  const path = decodeURIComponent(href.slice(SCOPE.length));
  return path === "" || path.endsWith("/") ? `${path}index.html` : path;
}

async function networkFirst(request) {
  try {
    return secured(await fetch(request));
  } catch (error) {
    // A page's address carries its options (?demo=…): its copy is the page's.
    const path = sitePath(request.url);
    const cached = CACHE && path && (await (await caches.open(CACHE)).match(new URL(path, SCOPE).href));
    if (cached) return secured(cached);
    throw error;
  }
}

async function sha256(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

// The page is in use (it says "hold" when it sends its Python worker anything while a keep runs): the keep
// under way stops (a fetch at once, a store within a piece, a hash when done), and its answer says it was not
// done; the page asks again when it is still. Fetching, hashing and storing tens of MB took both cores for a
// second, and a click in it twice its time.
let holds = 0;
const fetching = new Set(); // the AbortControllers of the fetches under way

// Keep one file of this build: fetched, checked against build.js, then stored, unless `held()` becomes true
// before that is done (a fetch is aborted then, a store stops within a piece). Returns what happened.
async function keep(cache, path, held) {
  const expected = BUILD.files[path];
  if (!expected) return "unknown";
  const url = new URL(path, SCOPE).href;
  const known = await cache.match(url);
  if (known) return "kept";
  const controller = new AbortController();
  fetching.add(controller);
  let response;
  let body;
  try {
    response = await fetch(url, { cache: "no-cache", signal: controller.signal });
    body = response.ok ? await response.arrayBuffer() : null;
  } catch {
    return held() ? "held" : "offline";
  } finally {
    fetching.delete(controller);
  }
  if (!response.ok) return "failed";
  if (held()) return "held";
  if (body.byteLength !== expected.size || (await sha256(body)) !== expected.sha256) return "mismatch";
  if (held()) return "held";
  try {
    await cache.put(url, new Response(inPieces(body, held), { status: 200, headers: response.headers }));
  } catch {
    return held() ? "held" : "failed"; // (failed: the browser would not store it, e.g. out of space)
  }
  return "kept";
}

// A file's bytes as a stream of PIECE-byte pieces that fails as soon as `held()`: a store under way stops
// within a piece (storing a 14 MB file took ~200 ms here, in one piece a click's wait).
const PIECE = 1 << 20;
function inPieces(body, held) {
  const bytes = new Uint8Array(body);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (held()) controller.error(new Error("held"));
      else if (at >= bytes.length) controller.close();
      else {
        controller.enqueue(bytes.subarray(at, at + PIECE));
        at += PIECE;
      }
    },
  });
}

// The page names what it needs to work offline: the URLs it loaded (and its Python worker fetched), the
// runtime (every vendor/ file; the WebGPU build only if it was used), the open demo's files and every
// decoder its model names. Each is kept if this build lists it, until the page holds it (`done`: false).
self.addEventListener("message", (event) => {
  if (event.data?.type === "hold") {
    holds += 1;
    for (const controller of fetching) controller.abort();
    return;
  }
  if (event.data?.type !== "keep" || !Array.isArray(event.data.urls)) return;
  event.waitUntil(
    (async () => {
      const counts = {};
      const asked = holds;
      const held = () => holds !== asked;
      let done = true;
      if (BUILD) {
        const cache = await caches.open(CACHE);
        const paths = new Set(event.data.urls.map(sitePath).filter((path) => path !== null));
        for (const path of Object.keys(BUILD.files)) {
          if (path.startsWith("vendor/") && (event.data.webgpu || !/webgpu|jsep|asyncify/.test(path))) paths.add(path);
        }
        for (const path of paths) {
          const result = held() ? "held" : await keep(cache, path, held);
          if (result === "held") {
            done = false;
            break;
          }
          counts[result] = (counts[result] || 0) + 1;
        }
      }
      event.source?.postMessage({ type: "kept", build: BUILD?.id ?? null, counts, done });
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(networkFirst(request));
});
