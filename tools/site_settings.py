"""The site's deploy-time settings, and the security headers made from them.

    python tools/site_settings.py                                # show the settings
    python tools/site_settings.py --encode-service https://encode.example.org
    python tools/site_settings.py --no-encode-service            # the default: nothing leaves the machine

One setting so far, `encodeService`: the origin of a team's encode service (tools/encode_service.py) that
the page may send a person's photo to, after asking them, when the photo has no bundle. It is written to
site/settings.js (`self.SAMTAB_SETTINGS = {...}`, read by the page and by the service worker) and the
headers for static hosts are made from it again: site/_headers (Netlify, Cloudflare Pages) and
site/vercel.json. tools/serve.py reads site/settings.js and sends the same headers (its --encode-service
overrides the setting for a local run). The Content-Security-Policy's connect-src names exactly that origin
besides the site's own: nothing on the page, and no URL parameter, can send a photo anywhere else. Without
the setting connect-src is the site alone, as it always was.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path

from samtab_tools.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
SETTINGS_JS = "settings.js"
PREFIX = "self.SAMTAB_SETTINGS = "
DEFAULTS = {"encodeService": None}

# The headers every response of the site carries, with no encode service (security_headers adds one).
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    # 'wasm-unsafe-eval' lets WebAssembly compile; 'unsafe-eval' lets functions be built from strings (the page
    # runs without it, but the browser tests' string predicates need it). Nothing else is allowed: the worker
    # and onnxruntime-web's threads are scripts of this origin (no blob: workers).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; "
        "worker-src 'self'; connect-src 'self' blob: data:; img-src 'self' blob: data:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONNECT_SRC = "connect-src 'self'"  # where security_headers adds the service's origin (site/sw.js does the same)


class SettingsError(ValueError):
    pass


def service_origin(text: str) -> str:
    """An encode service's address as an origin, `scheme://host[:port]`: http or https, no path beyond "/",
    no query, fragment or credentials (a CSP source names an origin; a path there would be misleading)."""
    try:
        url = urllib.parse.urlsplit(text.strip())
        port = url.port
    except ValueError as error:
        raise SettingsError(f"{text!r} is not an address ({error})") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SettingsError(f"{text!r} is not an http(s) address such as https://encode.example.org")
    if url.path not in ("", "/") or url.query or url.fragment or url.username or url.password:
        raise SettingsError(
            f"{text!r} has more than an origin: give scheme://host[:port] alone "
            "(the page asks SERVICE/encode and SERVICE/health)"
        )
    host = url.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[url.scheme]
    return f"{url.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def parse(text: str) -> dict:
    """The settings site/settings.js holds (the defaults for what it leaves out)."""
    if not text.startswith(PREFIX):
        raise SettingsError(f"site/{SETTINGS_JS} does not start with {PREFIX!r}")
    try:
        data = json.loads(text[len(PREFIX) :].strip().rstrip(";"))
    except ValueError as error:
        raise SettingsError(f"site/{SETTINGS_JS} is not {PREFIX}<JSON>; ({error})") from None
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise SettingsError(f"site/{SETTINGS_JS} has unknown settings {sorted(unknown)}: it knows {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **data}
    if settings["encodeService"] is not None:
        settings["encodeService"] = service_origin(settings["encodeService"])
    return settings


def read(site: Path = SITE) -> dict:
    path = Path(site) / SETTINGS_JS
    return parse(path.read_text()) if path.exists() else dict(DEFAULTS)


def render(settings: dict) -> str:
    return PREFIX + json.dumps(settings, sort_keys=True) + ";\n"


def security_headers(encode_service: str | None) -> dict[str, str]:
    """The site's headers, its CSP's connect-src also naming the encode service's origin when there is one."""
    headers = dict(SECURITY_HEADERS)
    if encode_service:
        policy = headers["Content-Security-Policy"]
        assert policy.count(CONNECT_SRC) == 1
        headers["Content-Security-Policy"] = policy.replace(CONNECT_SRC, f"{CONNECT_SRC} {encode_service}")
    return headers


def netlify_headers(headers: dict[str, str]) -> str:
    lines = [
        "# Headers for Netlify and Cloudflare Pages, written by tools/site_settings.py from site/settings.js (the",
        "# same as tools/serve.py sends; a test keeps them in step). They make the page cross-origin isolated",
        "# (threads for onnxruntime-web) and allow only this origin, and the encode service's if one is set.",
        "/*",
        *(f"  {name}: {value}" for name, value in headers.items()),
    ]
    return "\n".join(lines) + "\n"


def vercel_headers(headers: dict[str, str]) -> str:
    rules = {"headers": [{"source": "/(.*)", "headers": [{"key": k, "value": v} for k, v in headers.items()]}]}
    return json.dumps(rules, indent=2) + "\n"


def write(settings: dict, site: Path = SITE) -> list[Path]:
    """Write settings.js and the static hosts' header files made from it; return the files changed."""
    headers = security_headers(settings["encodeService"])
    changed = []
    for name, text in (
        (SETTINGS_JS, render(settings)),
        ("_headers", netlify_headers(headers)),
        ("vercel.json", vercel_headers(headers)),
    ):
        path = Path(site) / name
        if not path.exists() or path.read_text() != text:
            write_atomic(path, text.encode())
            changed.append(path)
    return changed


def main(argv: list[str] | None = None, site: Path = SITE) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    service = parser.add_mutually_exclusive_group()
    service.add_argument("--encode-service", metavar="ORIGIN", help="the origin of the team's encode service")
    service.add_argument("--no-encode-service", action="store_true", help="no encode service (the default)")
    args = parser.parse_args(argv)
    try:
        settings = read(site)
        if args.encode_service is not None:
            settings["encodeService"] = service_origin(args.encode_service)
        elif args.no_encode_service:
            settings["encodeService"] = None
        changed = write(settings, site)
    except SettingsError as error:
        print(f"site_settings: error: {error}", file=sys.stderr)
        return 2
    from samtab_tools import site_build

    if changed:
        site_build.write(site)  # settings.js is a file of the build: a redeployed site is picked up
    where = settings["encodeService"] or "none: photos are encoded in the tab, nothing leaves the machine"
    print(f"site_settings: encode service: {where}")
    for path in changed:
        print(f"site_settings: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
