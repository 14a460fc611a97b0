"""Serve site/ locally, the way a static host configured with site/_headers would.

    python tools/serve.py [--port 8000] [--host 127.0.0.1] [--allow-host NAME ...] [--no-build]
                          [--encode-service ORIGIN]

Builds the runtime (tools/vendor.py) and, when missing, the demo gallery (tools/demos.py) first unless told
not to (--no-build), then serves site/ with the headers that make the page cross-origin isolated (so
onnxruntime-web can run threads), a Content-Security-Policy that allows only this origin (and the encode
service's that site/settings.js names, tools/site_settings.py, or --encode-service for this run), and the
right MIME types. Binds to 127.0.0.1 unless --host says otherwise (the port: --port, else $PORT, else 8000).
Ctrl-C stops it.

Only the host names it serves are answered (DNS rebinding: a page on evil.example whose name is made to
resolve to 127.0.0.1 would otherwise read the site; its requests say `Host: evil.example`). Served are
localhost, 127.0.0.1, [::1], the --host given, every --allow-host NAME and, when bound to all addresses
(--host 0.0.0.0), any IP address: which of the machine's addresses a person on the network types is not known
in advance, and an address, unlike a name, cannot be rebound. Any other Host gets 421; a missing or malformed
one 400. The port in Host is not checked: a rebinding page uses the server's own port anyway, and a
forwarded port (ssh -L, a container) arrives with another. A request line in absolute form
(`GET http://NAME/path`) is checked against NAME and then served as its path alone.
"""

from __future__ import annotations

import argparse
import http.server
import io
import ipaddress
import os
import posixpath
import re
import sys
import urllib.parse
from functools import partial
from pathlib import Path

from samtab_tools import demos, site_build, site_settings, vendor
from samtab_tools.site_settings import SECURITY_HEADERS  # noqa: F401  (the headers with no encode service)

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

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


# A connection must deliver its request (line and headers) within this many seconds of going quiet, and
# each write of a response must go through within it. A browser sends its request as soon as it connects,
# so a few seconds is ample even on a slow machine; past it an idle, half-open or HTTP/0.9-style connection
# (each holds a thread) is closed instead of kept for ever. Each read restarts the clock: a client that
# trickles a byte every few seconds still holds its thread (a local development server; see --host).
REQUEST_TIMEOUT_S = 5

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# A Host header: a name or an IPv4 address, or an IPv6 address in brackets, then an optional port.
HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")


def host_name(value: str) -> str | None:
    """The host of a Host header (or of an absolute request target's authority), as a URL writes it: lower
    case, IPv6 in brackets and compressed, no trailing dot, no port. None when it is malformed."""
    match = HOST_HEADER.fullmatch(value.strip())
    if not match:
        return None
    name = match.group(1).lower().rstrip(".")
    if name.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            return None
    return name or None


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    timeout = REQUEST_TIMEOUT_S
    # Errors are a line of text, not an HTML page.
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"

    def parse_request(self) -> bool:
        """The request line and headers, then its target and Host: only the host names this server serves
        are answered, and the target is reduced to its path (and query), so nothing built from it (the
        redirect of a folder to its URL with a slash) can point to another host."""
        if len(self.raw_requestline.split()) == 2:
            # HTTP/0.9 ("GET /"): refused at once. The standard library would wait for headers that an
            # HTTP/0.9 client never sends; the answer is sent as HTTP/1.0 so that the client can read it.
            self.command, self.request_version = None, "HTTP/1.0"
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            self.close_connection = True
            self.send_error(400, "HTTP/0.9 is not supported", "send HTTP/1.0 or HTTP/1.1")
            return False
        if not super().parse_request():
            return False
        authority = None
        if not self.path.startswith("/"):  # absolute form: its authority replaces Host (RFC 9112, 3.2.2)
            target = urllib.parse.urlsplit(self.path)
            if target.scheme.lower() != "http" or not target.netloc:
                self.send_error(400, "Bad request target", "send a path that starts with /")
                return False
            authority = target.netloc
            self.path = "/" + target.path.lstrip("/") + (f"?{target.query}" if target.query else "")
        if authority is None:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1:
                self.send_error(400, "Bad Host", "the request needs exactly one Host header")
                return False
            authority = hosts[0]
        name = host_name(authority)
        if name is None:
            self.send_error(400, "Bad Host", "the Host header is not a host name or address")
            return False
        if not self.server.serves(name):
            self.send_error(
                421,
                "Misdirected Request",
                f"this server does not serve the host {name}; start tools/serve.py with "
                "--allow-host NAME to serve a name of your own",
            )
            return False
        return True

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
        settings = self.server.settings_text
        if settings is not None and urllib.parse.urlsplit(self.path).path == f"/{site_settings.SETTINGS_JS}":
            body = settings.encode()  # --encode-service: the settings this server was started with
            self.send_response(200)
            self.send_header("Content-Type", MIME_TYPES[".js"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        if not self.translate_path(self.path):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "Not found")  # no directory listings
        return None

    def end_headers(self) -> None:
        if self.server.security_headers:
            for name, value in self.server.headers.items():
                self.send_header(name, value)
        # Development server: always revalidate, so an edited file is seen on reload.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # connections waiting to be accepted: the standard library's 5 drops a burst
    verbose = False
    security_headers = True
    headers: dict[str, str] = SECURITY_HEADERS  # what security_headers sends: site/settings.js's
    settings_text: str | None = None  # settings.js as served, when --encode-service overrides the site's
    host_names: frozenset[str] = frozenset(LOOPBACK_NAMES)
    any_ip_address = False  # bound to all addresses: any IP address is served

    def serves(self, name: str) -> bool:
        """Whether a request for this host (as host_name() gives it) is answered."""
        return name in self.host_names or (self.any_ip_address and is_ip_address(name))


def make_server(
    host: str,
    port: int,
    verbose: bool = False,
    security_headers: bool = True,
    allow_hosts: tuple[str, ...] = (),
    site: Path = SITE,
    encode_service: str | None = None,
) -> SiteServer:
    """A server bound to (host, port) (port 0: a free one) that serves `site` (by default site/) under the
    names in the module docstring, with the headers its settings.js makes (site_settings), or, given
    `encode_service` (an origin), with that encode service in place of the site's setting."""
    server = SiteServer((host, port), partial(SiteHandler, directory=str(site)))
    server.verbose = verbose
    server.security_headers = security_headers
    settings = site_settings.read(site)
    if encode_service is not None:
        settings["encodeService"] = site_settings.service_origin(encode_service)
        server.settings_text = site_settings.render(settings)
    server.headers = site_settings.security_headers(settings["encodeService"])
    bound = server.server_address[0]  # an IPv4 address (the server's address family)
    names = {*LOOPBACK_NAMES, host_name(host), host_name(bound), *(host_name(name) for name in allow_hosts)}
    server.host_names = frozenset(name for name in names if name)
    server.any_ip_address = ipaddress.ip_address(bound).is_unspecified
    return server


def allowed_host(text: str) -> str:
    """--allow-host NAME: a host name or address, as a browser's address bar would show it."""
    name = host_name(text)
    if name is None or HOST_HEADER.fullmatch(text.strip()).group(1) != text.strip():  # malformed, or a port
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address (give it without a port)")
    return name


def encode_service_origin(text: str) -> str:
    try:
        return site_settings.service_origin(text)
    except site_settings.SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535; 0 picks a free one)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--port",
        type=port_number,
        default=None,
        help="port to listen on (default: $PORT, else 8000; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; use 0.0.0.0 to share it on your network)",
    )
    parser.add_argument(
        "--allow-host",
        type=allowed_host,
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (by default only localhost, 127.0.0.1, "
        "[::1], --host and, with --host 0.0.0.0, IP addresses; others get 421). Repeatable",
    )
    parser.add_argument("--no-build", action="store_true", help="do not run tools/vendor.py first")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--no-isolation-headers",
        action="store_true",
        help="send none of the security headers, like a static host that cannot set them "
        "(the page then isolates itself through its service worker, sw.js)",
    )
    parser.add_argument(
        "--encode-service",
        metavar="ORIGIN",
        type=encode_service_origin,
        help="the origin of an encode service (tools/encode_service.py) the page may send photos to, for this "
        "run, in place of site/settings.js's (tools/site_settings.py sets that one, for deploying)",
    )
    args = parser.parse_args(argv)
    if args.port is None:  # $PORT matters only when --port is not given
        try:
            args.port = port_number(os.environ.get("PORT", "8000"))
        except argparse.ArgumentTypeError as error:
            parser.error(f"the environment variable PORT={error}: set it to a port number, or pass --port")

    if not args.no_build:
        try:
            vendor.assemble()
        except vendor.VendorError as error:
            print(f"serve: cannot build the runtime: {error}", file=sys.stderr)
            return 1
        if not demos.is_built():
            demos.build()
        site_build.write()  # page files edited since: a new build for the service worker
    try:
        server = make_server(
            args.host,
            args.port,
            args.verbose,
            not args.no_isolation_headers,
            tuple(args.allow_host),
            encode_service=args.encode_service,
        )
    except OSError as error:
        print(
            f"serve: cannot listen on {args.host}:{args.port}: {error.strerror}. Pick another port with --port.",
            file=sys.stderr,
        )
        return 1
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    try:  # from the moment the URL is printed, Ctrl-C stops it cleanly
        print(f"serve: samtab at http://{shown}:{port}/ (serving {SITE}; Ctrl-C stops)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nserve: stopped", flush=True)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
