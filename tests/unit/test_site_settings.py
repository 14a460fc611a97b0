"""tools/site_settings.py: the encode service's origin, set at deploy time, is the one place the headers
(tools/serve.py, site/_headers, site/vercel.json) and the page (site/settings.js) learn it from; without it
connect-src names the site alone."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
from pathlib import Path

import pytest

from samtab_tools import serve, site_settings

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"


def connect_src(policy: str) -> set[str]:
    [directive] = [part.split() for part in policy.split(";") if part.split()[:1] == ["connect-src"]]
    return set(directive[1:])


@pytest.mark.parametrize(
    "given, origin",
    [
        ("https://encode.example.org", "https://encode.example.org"),
        ("https://Encode.Example.org/", "https://encode.example.org"),
        ("https://encode.example.org:443", "https://encode.example.org"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
    ],
)
def test_a_service_address_becomes_its_origin(given, origin):
    assert site_settings.service_origin(given) == origin


@pytest.mark.parametrize(
    "given, message",
    [
        ("encode.example.org", "is not an http"),
        ("ftp://encode.example.org", "is not an http"),
        ("https://encode.example.org/encode", "more than an origin"),
        ("https://encode.example.org/?x=1", "more than an origin"),
        ("https://user:pw@encode.example.org", "more than an origin"),
        ("https://encode.example.org:99999", "not an address"),
    ],
)
def test_anything_but_an_origin_is_refused(given, message):
    with pytest.raises(site_settings.SettingsError, match=message):
        site_settings.service_origin(given)


def test_the_repository_site_has_no_service_and_its_header_files_are_made_from_its_settings(tmp_path):
    """Deployed as committed, nothing leaves the machine: settings.js names no service, and every header
    file is what site_settings writes for that (so they cannot drift from the settings)."""
    assert site_settings.read(SITE) == {"encodeService": None}
    assert connect_src(site_settings.security_headers(None)["Content-Security-Policy"]) == {"'self'", "blob:", "data:"}
    copy = tmp_path / "site"
    copy.mkdir()
    site_settings.write(site_settings.read(SITE), copy)
    for name in ("settings.js", "_headers", "vercel.json"):
        assert (copy / name).read_text() == (SITE / name).read_text(), f"site/{name} is not what the settings make"


@pytest.fixture
def site_with_a_service(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copyfile(SITE / "index.html", site / "index.html")
    site_settings.write({"encodeService": "https://encode.example.org"}, site)
    return site


def test_a_service_joins_connect_src_in_every_header_file_and_nothing_else_changes(site_with_a_service):
    settings = site_settings.parse((site_with_a_service / "settings.js").read_text())
    assert settings == {"encodeService": "https://encode.example.org"}
    want = site_settings.security_headers("https://encode.example.org")
    base = site_settings.SECURITY_HEADERS
    assert connect_src(want["Content-Security-Policy"]) == {"'self'", "blob:", "data:", "https://encode.example.org"}
    assert {k: v for k, v in want.items() if k != "Content-Security-Policy"} == {
        k: v for k, v in base.items() if k != "Content-Security-Policy"
    }
    netlify = {}
    for line in (site_with_a_service / "_headers").read_text().splitlines():
        if line.startswith("  "):
            name, value = line.strip().split(": ", 1)
            netlify[name] = value
    assert netlify == want
    [rule] = json.loads((site_with_a_service / "vercel.json").read_text())["headers"]
    assert {h["key"]: h["value"] for h in rule["headers"]} == want


def served(server, path: str):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    return response, body


def test_serve_sends_the_headers_of_the_site_it_serves(site_with_a_service):
    response, _ = served(serve.make_server("127.0.0.1", 0, site=site_with_a_service), "/")
    assert "https://encode.example.org" in connect_src(response.getheader("Content-Security-Policy"))


def test_serve_encode_service_overrides_the_setting_for_its_run_alone(site_with_a_service):
    server = serve.make_server("127.0.0.1", 0, site=site_with_a_service, encode_service="http://127.0.0.1:8765/")
    response, body = served(server, "/settings.js?v=1")
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/javascript")
    assert site_settings.parse(body.decode()) == {"encodeService": "http://127.0.0.1:8765"}
    sources = connect_src(response.getheader("Content-Security-Policy"))
    assert "http://127.0.0.1:8765" in sources and "https://encode.example.org" not in sources
    assert (site_with_a_service / "settings.js").read_text().count("encode.example.org") == 1, "the file is untouched"
    with pytest.raises(site_settings.SettingsError):
        serve.make_server("127.0.0.1", 0, encode_service="https://x.example/path")


def test_the_command_sets_and_clears_the_service(tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    assert site_settings.main(["--encode-service", "https://Encode.example.org/"], site) == 0
    assert "encode service: https://encode.example.org" in capsys.readouterr().out
    assert "https://encode.example.org" in (site / "_headers").read_text()
    assert site_settings.main(["--encode-service", "https://encode.example.org/x"], site) == 2
    assert "more than an origin" in capsys.readouterr().err
    assert "https://encode.example.org" in (site / "settings.js").read_text(), "a refused change writes nothing"
    assert site_settings.main(["--no-encode-service"], site) == 0
    assert "nothing leaves the machine" in capsys.readouterr().out
    assert "encode.example.org" not in (site / "_headers").read_text() + (site / "vercel.json").read_text()
    assert (site / "build.js").exists(), "settings.js is part of the build the service worker keeps"
