// @ts-check
// Whether the browser runtime (site/vendor/, which tools/vendor.py builds) is on this server: a site deployed
// without it is told so, not left blank. No imports: app.js uses it when the other modules could not load.

/** What the page says when it is missing. */
export const RUNTIME_MISSING = Object.freeze({
  message: "The Python runtime is not on this server.",
  hint: "Build it with `python tools/vendor.py` (or start the site with `python tools/serve.py`), then reload.",
});

/** Whether the server says it has no such file (a network that fails says nothing). */
export async function missing(/** @type {string} */ url) {
  try {
    return !(await fetch(url, { method: "HEAD" })).ok;
  } catch {
    return false;
  }
}
