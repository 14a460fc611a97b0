"""tools/serve.py: headers, MIME types, and no way out of site/."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    httpd = serve.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def get(server, path: str, method: str = "GET"):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.request(method, path)  # http.client sends the path as given: nothing normalizes it
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_every_response_carries_the_isolation_and_security_headers(server):
    for path in ("/", "/app.js", "/no-such-file"):
        response, _ = get(server, path)
        for name, value in serve.SECURITY_HEADERS.items():
            assert response.getheader(name) == value, (path, name)


def test_csp_allows_only_the_page_origin():
    policy = serve.SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    for directive in policy.split(";"):
        for source in directive.split()[1:]:
            assert source in ("'self'", "'none'", "'unsafe-eval'", "'wasm-unsafe-eval'", "'unsafe-inline'",
                              "blob:", "data:"), source


@pytest.mark.parametrize("suffix, mime", [
    (".mjs", "text/javascript"), (".js", "text/javascript"), (".wasm", "application/wasm"),
    (".onnx", "application/octet-stream"), (".msgpack", "application/vnd.msgpack"),
    (".toml", "application/toml"), (".py", "text/x-python"), (".json", "application/json"),
])
def test_mime_types(server, tmp_path, suffix, mime):
    name = f"mime-test{suffix}"
    target = serve.SITE / name
    target.write_bytes(b"x")
    try:
        response, body = get(server, "/" + name)
    finally:
        target.unlink()
    assert response.status == 200 and body == b"x"
    assert response.getheader("Content-Type").split(";")[0] == mime


@pytest.mark.parametrize("path", [
    "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/%2E%2E%2Fpyproject.toml", "/..%2fpyproject.toml",
    "/vendor/../../pyproject.toml", "//etc/passwd", "/%2Fetc%2Fpasswd", "/..\\pyproject.toml",
    "/%5c..%5cpyproject.toml", "/%00index.html", "/%ff%fe", "/%252e%252e/pyproject.toml",
    "http://evil.example/../pyproject.toml", "/./../pyproject.toml", "/vendor/%2e%2e/%2e%2e/pyproject.toml",
])
def test_paths_outside_site_are_refused(server, path):
    response, body = get(server, path)
    assert response.status == 404
    assert b"samtab" not in body and b"root:" not in body


def test_a_symlink_out_of_site_is_refused(server):
    """A link inside site/ that points outside it (a careless deploy, a hostile archive) serves nothing."""
    link = serve.SITE / "escape-test.toml"
    link.symlink_to(ROOT / "pyproject.toml")
    try:
        response, body = get(server, "/escape-test.toml")
    finally:
        link.unlink()
    assert response.status == 404 and b"samtab" not in body


def test_no_directory_listing(server):
    response, _ = get(server, "/vendor/")
    assert response.status == 404


def test_static_host_header_files_agree_with_the_server():
    site = ROOT / "site"
    netlify = {}
    for line in (site / "_headers").read_text().splitlines():
        if line.startswith("  ") and ":" in line:
            name, value = line.strip().split(":", 1)
            netlify[name] = value.strip()
    assert netlify == serve.SECURITY_HEADERS
    vercel = json.loads((site / "vercel.json").read_text())
    [rule] = vercel["headers"]
    assert rule["source"] == "/(.*)"
    assert {h["key"]: h["value"] for h in rule["headers"]} == serve.SECURITY_HEADERS


def test_cli_binds_loopback_prints_the_url_and_stops_on_ctrl_c():
    process = subprocess.Popen([sys.executable, str(ROOT / "tools" / "serve.py"), "--port", "0", "--no-build"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serve: samtab at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.stdout.close()


def test_cli_reports_a_busy_port():
    httpd = serve.make_server("127.0.0.1", 0)
    try:
        port = httpd.server_address[1]
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "serve.py"), "--port", str(port), "--no-build"],
                                capture_output=True, text=True, timeout=30)
    finally:
        httpd.server_close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
