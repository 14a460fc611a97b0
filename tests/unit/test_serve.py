"""tools/serve.py: headers, MIME types, no way out of site/, only the host names it serves, and no connection
held for ever."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from samtab_tools import serve

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


@pytest.mark.parametrize(
    "suffix, mime",
    [
        (".mjs", "text/javascript"),
        (".js", "text/javascript"),
        (".wasm", "application/wasm"),
        (".onnx", "application/octet-stream"),
        (".msgpack", "application/vnd.msgpack"),
        (".toml", "application/toml"),
        (".py", "text/x-python"),
        (".json", "application/json"),
    ],
)
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


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/%2E%2E%2Fpyproject.toml",
        "/..%2fpyproject.toml",
        "/vendor/../../pyproject.toml",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/..\\pyproject.toml",
        "/%5c..%5cpyproject.toml",
        "/%00index.html",
        "/%ff%fe",
        "/%252e%252e/pyproject.toml",
        "http://127.0.0.1/../pyproject.toml",
        "/./../pyproject.toml",
        "/vendor/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
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


# --- the security headers: every place that states them, and the policy itself ---------------------------


def netlify_headers() -> dict[str, str]:
    headers = {}
    for line in (serve.SITE / "_headers").read_text().splitlines():
        if line.startswith("  ") and ":" in line:
            name, value = line.strip().split(":", 1)
            assert name not in headers, f"site/_headers states {name} twice"
            headers[name] = value.strip()
    return headers


def vercel_headers() -> dict[str, str]:
    [rule] = json.loads((serve.SITE / "vercel.json").read_text())["headers"]
    assert rule["source"] == "/(.*)"
    return {h["key"]: h["value"] for h in rule["headers"]}


def served_headers() -> dict[str, str]:
    httpd = serve.make_server("127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        response, _ = get(httpd, "/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    return {name: response.getheader(name) for name in serve.SECURITY_HEADERS}


# Every place the security headers are stated, each read as {name: value}; each must say the same, and each
# is held to the policy below. (The service worker, for hosts that cannot send headers, belongs here too.)
def service_worker_headers() -> dict[str, str]:
    """What site/sw.js adds to every response on hosts that cannot send headers (its SECURITY_HEADERS)."""
    text = (ROOT / "site" / "sw.js").read_text()
    block = re.search(r"const SECURITY_HEADERS = (\{.*?\});", text, re.S)
    assert block, "site/sw.js has no SECURITY_HEADERS object"
    return json.loads(re.sub(r",\s*}", "}", block.group(1)))


HEADER_SOURCES = {
    "tools/serve.py SECURITY_HEADERS": lambda: dict(serve.SECURITY_HEADERS),
    "site/sw.js (hosts without headers)": service_worker_headers,
    "tools/serve.py as served": served_headers,
    "site/_headers": netlify_headers,
    "site/vercel.json": vercel_headers,
}

# The most each CSP directive may allow. A source may be dropped (stricter); adding one, or dropping a
# directive (its default may be wider), fails here and has to be argued for.
CSP_LIMITS = {
    "default-src": {"'self'"},
    # WebAssembly compiles ('wasm-unsafe-eval'); functions built from strings ('unsafe-eval': the browser
    # tests' string predicates). Workers and scripts come from the origin alone (no blob: workers since the
    # worker is site/pyworker.js, not a PyScript worker at a blob: URL).
    "script-src": {"'self'", "'unsafe-eval'", "'wasm-unsafe-eval'"},
    "worker-src": {"'self'"},
    "connect-src": {"'self'", "blob:", "data:"},
    "img-src": {"'self'", "blob:", "data:"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def parse_csp(policy: str) -> dict[str, set[str]]:
    """{directive: its sources}, directive names in lower case."""
    directives = {}
    for part in policy.split(";"):
        if part.strip():
            name, *sources = part.split()
            assert name.lower() not in directives, f"{name} appears twice (browsers ignore the second)"
            directives[name.lower()] = set(sources)
    return directives


@pytest.mark.parametrize("source", HEADER_SOURCES)
def test_every_header_source_states_the_same_headers_and_policy(source):
    want = dict(serve.SECURITY_HEADERS)
    got = HEADER_SOURCES[source]()
    assert set(got) == set(want), f"{source} states {sorted(got)}, tools/serve.py {sorted(want)}"
    assert parse_csp(got.pop("Content-Security-Policy")) == parse_csp(want.pop("Content-Security-Policy")), source
    assert got == want, source


@pytest.mark.parametrize("source", HEADER_SOURCES)
def test_csp_allows_only_the_page_origin_directive_by_directive(source):
    policy = parse_csp(HEADER_SOURCES[source]()["Content-Security-Policy"])
    assert set(policy) == set(CSP_LIMITS), f"{source}: directives {sorted(policy)}, expected {sorted(CSP_LIMITS)}"
    for directive, sources in policy.items():
        assert sources <= CSP_LIMITS[directive], f"{source}: {directive} adds {sorted(sources - CSP_LIMITS[directive])}"
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts and "*" not in scripts, source
    assert not any(s.rstrip(":") in ("http", "https") or "." in s or "*" in s for s in scripts), source


def test_cli_binds_loopback_prints_the_url_and_stops_on_ctrl_c():
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "serve.py"), "--port", "0", "--no-build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "serve.py"), "--port", str(port), "--no-build"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        httpd.server_close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_a_bad_port_in_the_environment_matters_only_without_port():
    tool = [sys.executable, str(ROOT / "tools" / "serve.py"), "--no-build"]
    for value in ("abc", "70000", ""):
        result = subprocess.run(tool, env={**os.environ, "PORT": value}, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"PORT='{value}' is not a port number" in result.stderr and "--port" in result.stderr
    result = subprocess.run([*tool, "--port", "99999"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "'99999' is not a port number" in result.stderr
    process = subprocess.Popen(
        [*tool, "--port", "0"],
        env={**os.environ, "PORT": "abc"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("serve: samtab at http://127.0.0.1:"), line
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.stdout.close()


# --- connections: each request must arrive in time, and a thread is held only while it does ---------------


@pytest.fixture
def own_server():
    """A fresh server on a free loopback port, so that thread counts are this test's own."""
    httpd = serve.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def read_all(sock: socket.socket, wait: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it has not within `wait` s."""
    sock.settimeout(wait)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for more than {wait:.0f} s (got {data[:80]!r})")
    return data


def raw_request(server, data: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        return read_all(sock, serve.REQUEST_TIMEOUT_S + 10)


def handler_threads() -> int:
    """Threads of this process handling a connection (socketserver names them after their target)."""
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_idle_connections_are_closed_after_the_request_timeout_and_their_threads_end(own_server, figures):
    wait_for(lambda: handler_threads() == 0)  # earlier tests' connections, if any, have ended
    before = threading.active_count()
    sockets = [socket.create_connection(own_server.server_address[:2], timeout=10) for _ in range(50)]
    try:
        wait_for(lambda: handler_threads() >= 50)
        held = handler_threads()
        assert held == 50, f"{held} handler threads for 50 connections"
        started = time.monotonic()
        for sock in sockets:
            assert read_all(sock, serve.REQUEST_TIMEOUT_S + 10) == b""  # closed, nothing sent
        closed_s = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    wait_for(lambda: handler_threads() == 0)
    assert handler_threads() == 0, f"{handler_threads()} handler threads remain"
    figures(
        f"50 idle connections held {held} threads; all closed {closed_s:.1f} s later "
        f"(timeout {serve.REQUEST_TIMEOUT_S} s); threads {before} before, {threading.active_count()} after"
    )


def test_an_http_0_9_request_line_is_answered_at_once(own_server, figures):
    started = time.monotonic()
    response = raw_request(own_server, b"GET /\r\n")
    figures(f"answered in {1000 * (time.monotonic() - started):.0f} ms")
    assert response.startswith(b"HTTP/1.0 400 ") and b"HTTP/0.9 is not supported" in response


# --- host names: only those it serves (DNS rebinding), and no redirect to another host ----------------------


def request_with_host(server, host: str | None, path: str = "/") -> tuple[int, bytes]:
    head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "\r\n"
    response = raw_request(server, head.encode("latin-1"))
    return int(response.split(b" ", 2)[1]), response


@pytest.mark.parametrize(
    "host, status",
    [
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("[::1]:{port}", 200),
        ("LocalHost.", 200),
        ("[0:0:0:0:0:0:0:1]", 200),
        ("127.0.0.1:1234", 200),  # the port is not checked (forwarded ports)
        ("evil.example:{port}", 421),
        ("evil.example", 421),
        ("localhost.evil.example:{port}", 421),
        ("127.0.0.1.evil.example", 421),
        ("10.0.0.7:{port}", 421),  # loopback-bound: no other address
        (None, 400),
        ("", 400),
        ("evil.example@127.0.0.1", 400),
        ("127.0.0.1:{port}/x", 400),
        ("a b", 400),
    ],
)
def test_only_the_host_names_it_serves_are_answered(own_server, host, status):
    host = host if host is None else host.format(port=own_server.server_address[1])
    got, response = request_with_host(own_server, host)
    assert got == status, response[:300]
    if status != 200:
        assert b"samtab" not in response and b"<" not in response.split(b"\r\n\r\n", 1)[1]


def test_two_host_headers_are_refused(own_server):
    port = own_server.server_address[1]
    response = raw_request(
        own_server, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n".encode()
    )
    assert response.startswith(b"HTTP/1.0 400 ")


def test_allow_host_adds_a_name_and_all_addresses_serve_any_ip_address():
    for host, allow, answers in (
        ("127.0.0.1", ("mybox.lan",), {"mybox.lan:8000": 200, "MyBox.LAN": 200, "evil.example": 421}),
        (
            "0.0.0.0",
            (),
            {
                "192.0.2.7:8000": 200,
                "[2001:db8::7]": 200,
                "localhost": 200,
                "evil.example": 421,
                "192.0.2.7.evil.example": 421,
            },
        ),
    ):
        httpd = serve.make_server(host, 0, allow_hosts=allow)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            local = ("127.0.0.1", httpd.server_address[1])
            for name, status in answers.items():
                head = f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode()
                with socket.create_connection(local, timeout=10) as sock:
                    sock.sendall(head)
                    response = read_all(sock, serve.REQUEST_TIMEOUT_S + 10)
                assert int(response.split(b" ", 2)[1]) == status, (host, name, response[:200])
        finally:
            httpd.shutdown()
            httpd.server_close()


def test_allow_host_takes_a_name_without_a_port():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "serve.py"),
            "--no-build",
            "--port",
            "0",
            "--allow-host",
            "mybox.lan:8000",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "without a port" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "target, status, location",
    [
        ("http://evil.example/vendor", 421, None),  # its authority is its host: not served
        ("http://evil.example:{port}/vendor?x=1", 421, None),
        ("http://127.0.0.1:{port}/vendor", 301, "/vendor/"),
        ("http://localhost//evil.example/../vendor", 301, "/evil.example/../vendor/"),  # a path, not //evil.example
        ("http://127.0.0.1:{port}/vendor?x=1", 301, "/vendor/?x=1"),
        ("https://127.0.0.1:{port}/vendor", 400, None),
        ("/vendor", 301, "/vendor/"),
    ],
)
def test_a_folder_redirect_points_to_a_path_never_to_a_host(own_server, target, status, location):
    """The standard library builds a folder's redirect from the request target as given, so an absolute
    target (GET http://evil.example/vendor) used to redirect to http://evil.example/vendor/."""
    port = own_server.server_address[1]
    # Host names the server itself (http.client would take it from an absolute target): the target decides.
    head = f"GET {target.format(port=port)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    response = raw_request(own_server, head.encode())
    assert int(response.split(b" ", 2)[1]) == status, response[:300]
    headers = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    locations = [h.split(": ", 1)[1] for h in headers if h.lower().startswith("location:")]
    assert locations == ([location] if location else [])
