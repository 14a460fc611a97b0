"""Serve site/ locally, the way a static host configured with site/_headers would.

    python tools/serve.py [--port 8000] [--host 127.0.0.1] [--no-build]

Builds the runtime (tools/vendor.py) and, when missing, the demo gallery (tools/demos.py) first unless told
not to (--no-build), then serves site/ with the headers that make
the page cross-origin isolated (so onnxruntime-web can run threads and PyScript's worker can reach the page),
a Content-Security-Policy that allows only this origin, and the right MIME types. Binds to 127.0.0.1 unless
--host says otherwise. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import http.server
import os
import posixpath
import sys
import urllib.parse
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

# The same headers as site/_headers (Netlify, Cloudflare Pages) and site/vercel.json; tests check they agree.
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    # 'wasm-unsafe-eval' lets WebAssembly compile; 'unsafe-eval' is needed by PyScript and Pyodide, which
    # build functions from strings; blob: is where PyScript starts its worker. Nothing else is allowed.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' blob:; "
        "worker-src 'self' blob:; connect-src 'self' blob: data:; img-src 'self' blob: data:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".msgpack": "application/vnd.msgpack",
    ".toml": "application/toml",
    ".py": "text/x-python; charset=utf-8",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def translate_path(self, path: str) -> str:
        """Map a URL path into site/, refusing anything that would leave it (.., encoded, absolute)."""
        try:
            path = urllib.parse.unquote(urllib.parse.urlsplit(path).path, errors="strict")
        except UnicodeDecodeError:
            return ""
        normalized = posixpath.normpath(path)
        parts = [part for part in normalized.split("/") if part]
        if any(part in ("..", ".") or "\\" in part or "\0" in part for part in parts):
            return ""
        full = Path(self.directory, *parts)
        try:
            full.resolve().relative_to(Path(self.directory).resolve())
        except ValueError:
            return ""
        return str(full) + ("/" if path.endswith("/") else "")

    def send_head(self):
        if not self.translate_path(self.path):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "Not found")  # no directory listings
        return None

    def end_headers(self) -> None:
        if self.server.security_headers:
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
        # Development server: always revalidate, so an edited file is seen on reload.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    verbose = False
    security_headers = True


def make_server(host: str, port: int, verbose: bool = False, security_headers: bool = True) -> SiteServer:
    server = SiteServer((host, port), partial(SiteHandler, directory=str(SITE)))
    server.verbose = verbose
    server.security_headers = security_headers
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)),
                        help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; use 0.0.0.0 to share it on your network)")
    parser.add_argument("--no-build", action="store_true", help="do not run tools/vendor.py first")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--no-isolation-headers", action="store_true",
                        help="send none of the security headers, like a static host that cannot set them "
                             "(the page then isolates itself through its service worker, sw.js)")
    args = parser.parse_args(argv)

    if not args.no_build:
        sys.path.insert(0, str(ROOT / "tools"))
        import demos
        import vendor

        try:
            vendor.assemble()
        except vendor.VendorError as error:
            print(f"serve: cannot build the runtime: {error}", file=sys.stderr)
            return 1
        if not demos.is_built():
            demos.build()
        import site_build

        site_build.write()  # page files edited since: a new build for the service worker
    try:
        server = make_server(args.host, args.port, args.verbose, not args.no_isolation_headers)
    except OSError as error:
        print(f"serve: cannot listen on {args.host}:{args.port}: {error.strerror}. "
              "Pick another port with --port.", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serve: samtab at http://{shown}:{port}/ (serving {SITE}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nserve: stopped", flush=True)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
