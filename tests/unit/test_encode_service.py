"""tools/encode_service.py: the real service on a loopback port, driven by a plain HTTP client: bundles equal to
samtab-encode's, limits that answer with a message, a busy service that refuses rather than queues, clients that
go away, and the headers a cross-origin isolated page needs."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from pyapp.bundle import read_bundle
from samtab_tools import encode, encode_service

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 2_000_000
MAX_PIXELS = 50_000_000
MAX_JOBS = 2


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def error(self) -> str:
        return json.loads(self.body)["error"]


def call(port: int, method: str, path: str, body=None, headers: dict | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def health(port: int) -> dict:
    reply = call(port, "GET", "/health")
    assert reply.status == 200
    return json.loads(reply.body)


def wait_for_jobs(port: int, jobs: int, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while health(port)["jobs"] != jobs:
        assert time.monotonic() < deadline, f"the service still has {health(port)['jobs']} jobs, not {jobs}"
        time.sleep(0.02)


def start_upload(port: int, length: int, first_bytes: bytes) -> socket.socket:
    """A client that declares `length` bytes of photo and sends only `first_bytes` (so far)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n".encode()
    client.sendall(head + first_bytes)
    return client


def png_that_declares(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares width×height pixels: a decompression bomb's first line."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 320×240 JPEG whose EXIF says to turn it upright (so the bundle is of the turned photo)."""
    path = tmp_path_factory.mktemp("photos") / "turned.jpg"
    pixels = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=90)
    return path


def samtab_encode(photo: Path, model: Path, out: Path, part: str = "encoder") -> bytes:
    results = encode.encode_all([photo], model, out, progress=False, part=part)
    assert results[0].status == "encoded", results[0].message
    return results[0].bundle.read_bytes()


@pytest.fixture(scope="module")
def expected(photo, baseline, tmp_path_factory) -> bytes:
    """The bundle samtab-encode writes for the photo."""
    return samtab_encode(photo, baseline, tmp_path_factory.mktemp("encoded"))


@pytest.fixture(scope="module")
def service(baseline):
    """The service on the baseline model, with limits small enough to test."""
    app = encode_service.make_app(baseline, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, max_jobs=MAX_JOBS)
    with encode_service.running(app) as port:
        yield port


def test_health_names_the_model_and_the_limits(service):
    assert health(service) == {
        "ok": True,
        "model": "samtab baseline (classical, not SAM2)",
        "encoder": "encoder.onnx",
        "jobs": 0,
        "max_jobs": MAX_JOBS,
        "max_bytes": MAX_BYTES,
        "max_pixels": MAX_PIXELS,
    }


def test_a_photo_comes_back_as_the_very_bundle_samtab_encode_writes(service, photo, expected):
    reply = call(service, "POST", "/encode?name=turned.jpg", photo.read_bytes(), {"Content-Type": "image/jpeg"})
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/msgpack"
    assert reply.body == expected
    bundle = read_bundle(reply.body)
    assert (bundle.width, bundle.height) == (240, 320)  # upright
    assert reply.headers["X-Samtab-Model"] == bundle.model_name == "samtab baseline (classical, not SAM2)"
    assert reply.headers["X-Samtab-Sha256"] == bundle.image_sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert int(reply.headers["X-Samtab-Encode-Ms"]) >= 0


def test_any_model_name_fits_in_the_model_header_percent_encoded(baseline, photo, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(baseline, model)
    info = json.loads((model / "model.json").read_text())
    info["name"] = "SAM2.1 \u2018tiny\u2019 100%"
    (model / "model.json").write_text(json.dumps(info))
    with encode_service.running(encode_service.make_app(model)) as port:
        reply = call(port, "POST", "/encode", photo.read_bytes())
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["X-Samtab-Model"] == "SAM2.1 %E2%80%98tiny%E2%80%99 100%25"  # decodeURIComponent reads it
    assert unquote(reply.headers["X-Samtab-Model"]) == read_bundle(reply.body).model_name == info["name"]


def test_the_web_encoder_gives_the_bundles_the_page_makes(baseline, photo, tmp_path):
    with encode_service.running(encode_service.make_app(baseline, web_encoder=True)) as port:
        assert health(port)["encoder"] == "encoder_web.onnx"
        reply = call(port, "POST", "/encode", photo.read_bytes())
    assert reply.status == 200, reply.body[:300]
    assert reply.body == samtab_encode(photo, baseline, tmp_path, part="encoder_web")


def test_concurrent_photos_each_get_the_bundle_or_a_503_and_no_slot_leaks(service, photo, expected):
    data = photo.read_bytes()
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: call(service, "POST", "/encode", data), range(6)))
    assert {reply.status for reply in replies} <= {200, 503}
    assert sum(reply.status == 200 for reply in replies) >= MAX_JOBS
    for reply in replies:
        if reply.status == 200:
            assert reply.body == expected
        else:
            assert int(reply.headers["Retry-After"]) >= 1 and "busy" in reply.error()
    wait_for_jobs(service, 0)


def test_a_busy_service_refuses_at_once_with_retry_after(service, photo):
    uploads = [start_upload(service, 100_000, b"\xff\xd8") for _ in range(MAX_JOBS)]  # each holds a slot
    try:
        wait_for_jobs(service, MAX_JOBS)
        started = time.monotonic()
        reply = call(service, "POST", "/encode", photo.read_bytes())
        assert reply.status == 503 and time.monotonic() - started < 5
        assert int(reply.headers["Retry-After"]) >= 1
        assert f"all {MAX_JOBS} of its encode slots are taken" in reply.error()
    finally:
        for upload in uploads:
            upload.close()
    wait_for_jobs(service, 0)


@pytest.mark.parametrize(
    "size, count",
    [
        ((8_000, 8_000), "8,000×8,000 = 64,000,000 pixels"),  # over the service's cap
        ((20_000, 20_000), "400,000,000 pixels"),  # over Pillow's own bomb guard too
    ],
)
def test_a_decompression_bomb_is_refused_from_its_header(service, size, count):
    started = time.monotonic()
    reply = call(service, "POST", "/encode?name=bomb.png", png_that_declares(*size))
    assert reply.status == 422 and time.monotonic() - started < 5
    assert reply.error().startswith(f"bomb.png is too large to open safely: {count}, over")
    assert f"cap of {MAX_PIXELS:,}" in reply.error()  # the service's cap, not samtab's default
    assert health(service)["jobs"] == 0


@pytest.mark.parametrize(
    "body, message",
    [
        (b"hello", "notes.txt is not a photo Pillow can read (it holds text"),
        (b"", "notes.txt is empty: the request carried no bytes"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "cut"),  # a JPEG's first bytes and nothing more
    ],
)
def test_what_is_not_a_whole_photo_is_refused_with_422(service, body, message):
    reply = call(service, "POST", "/encode?name=notes.txt", body)
    assert reply.status == 422 and message in reply.error()
    assert reply.headers["Content-Type"] == "application/json"


def test_a_photo_over_max_bytes_is_refused_with_413_whether_or_not_its_length_is_declared(service):
    too_many = b"\xff\xd8" + bytes(MAX_BYTES)
    reply = call(service, "POST", "/encode?name=big.jpg", too_many)  # Content-Length: checked before reading
    assert reply.status == 413
    assert f"big.jpg is {len(too_many):,} bytes, over the encode service's limit of {MAX_BYTES:,}" in reply.error()

    chunks = (too_many[i : i + 65536] for i in range(0, len(too_many), 65536))
    reply = call(service, "POST", "/encode?name=big.jpg", chunks)  # an iterable: sent chunked, no Content-Length
    assert reply.status == 413
    assert f"big.jpg is more than {MAX_BYTES:,} bytes" in reply.error()
    assert health(service)["jobs"] == 0


def test_a_client_killed_mid_upload_leaks_nothing(service, photo, expected):
    upload = start_upload(service, 1_000_000, b"\x89PNG\r\n\x1a\n")
    wait_for_jobs(service, 1)
    upload.close()
    wait_for_jobs(service, 0)
    reply = call(service, "POST", "/encode", photo.read_bytes())
    assert reply.status == 200 and reply.body == expected


def test_an_upload_that_stalls_gets_408_and_frees_its_slot(baseline):
    with encode_service.running(encode_service.make_app(baseline, upload_timeout_s=0.3)) as port:
        upload = start_upload(port, 1000, b"\xff\xd8")
        try:
            answer = upload.makefile("rb").read()  # the service answers, then closes the connection
        finally:
            upload.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"took longer than 0.3 s to arrive" in answer
        wait_for_jobs(port, 0)


def test_an_encode_past_the_timeout_gets_503_and_its_slot_comes_back_when_it_ends(baseline, photo):
    with encode_service.running(encode_service.make_app(baseline, timeout_s=0.001)) as port:
        reply = call(port, "POST", "/encode?name=turned.jpg", photo.read_bytes())
        assert reply.status == 503 and int(reply.headers["Retry-After"]) >= 1
        assert "encoding turned.jpg took longer than the service's limit of 0.001 s" in reply.error()
        wait_for_jobs(port, 0)


def test_a_page_on_another_origin_may_call_it(service, photo):
    preflight = call(
        service,
        "OPTIONS",
        "/encode",
        headers={
            "Origin": "http://example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight.status in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Private-Network"] == "true"
    assert preflight.headers["Cross-Origin-Resource-Policy"] == "cross-origin"

    headers = {"Origin": "http://example.test", "Content-Type": "image/jpeg"}
    for body, status in ((photo.read_bytes(), 200), (b"hello", 422)):  # the page reads refusals too
        reply = call(service, "POST", "/encode", body, headers)
        assert reply.status == status
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        exposed = reply.headers["Access-Control-Expose-Headers"]
        assert all(name in exposed for name in ("X-Samtab-Model", "X-Samtab-Sha256", "X-Samtab-Encode-Ms"))


def test_only_the_allowed_origins_are_let_in(baseline):
    with encode_service.running(encode_service.make_app(baseline, allow_origins=["http://a.test"])) as port:
        allowed = call(port, "GET", "/health", headers={"Origin": "http://a.test"})
        other = call(port, "GET", "/health", headers={"Origin": "http://b.test"})
        preflight = call(
            port,
            "OPTIONS",
            "/encode",
            headers={"Origin": "http://b.test", "Access-Control-Request-Method": "POST"},
        )
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://a.test"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # CORP is not CORS: always there
    assert preflight.status == 400 and "Access-Control-Allow-Origin" not in preflight.headers


def test_the_command_line_refuses_what_is_not_a_model_in_one_line(baseline, tmp_path, capsys):
    assert encode_service.main(["--model", str(tmp_path / "nonexistent")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("encode_service: error: ") and "has no model.json" in error
    assert error.count("\n") == 1

    broken = tmp_path / "broken"
    shutil.copytree(baseline, broken)
    (broken / "encoder.onnx").write_bytes(b"not a model")
    assert encode_service.main(["--model", str(broken)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"encode_service: error: {broken / 'encoder.onnx'}: onnxruntime cannot load it")
    assert error.count("\n") == 1


def test_the_command_prints_its_url_serves_and_stops_on_ctrl_c(baseline, photo, expected):
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "encode_service.py"), "--model", str(baseline), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("encode_service: samtab baseline (classical, not SAM2) (encoder.onnx, "), line
        port = int(line.split(" at http://127.0.0.1:")[1].split(":")[0])
        assert health(port)["max_bytes"] == 64 * 1024 * 1024
        reply = call(port, "POST", "/encode", photo.read_bytes())
        assert reply.status == 200 and reply.body == expected
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "encode_service: stopped" in process.stdout.read()
    finally:
        process.kill()
        process.stdout.close()


def test_a_busy_port_is_reported(baseline, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert encode_service.main(["--model", str(baseline), "--port", str(port)]) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
        with pytest.raises(encode_service.ServiceError, match=f"cannot listen on 127.0.0.1:{port} "):
            with encode_service.running(encode_service.make_app(baseline), port=port):
                pass
