"""tools/bench.py click --vs-js, the parts that need no browser: the bundle in jsref's folder layout, the
server that hands it and the page to Chromium, and the resting points of the rest-away pointer pattern."""

from __future__ import annotations

import http.client
import json
import math
import random

import numpy as np
import pytest

from pyapp import bundle, contract
from samtab_tools.bench import away_point, python_price
from samtab_tools.browser import JsRefServer, jsref_layout

JSREF_DTYPES = {"float16": np.dtype("<f2")}  # worker.mjs: `t.dtype === "float16"`, anything else is read as f32


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in contract.EMBEDDING_SHAPES.items()}


def read_as_jsref_does(manifest: dict, embedding: bytes) -> dict[str, np.ndarray]:
    """worker.mjs's reading: from each offset, shape's product values of the labelled dtype, as float32."""
    out = {}
    for name, entry in manifest["tensors"].items():
        dtype = JSREF_DTYPES.get(entry["dtype"], np.dtype("<f4"))
        count = math.prod(entry["shape"])
        values = np.frombuffer(embedding, dtype=dtype, count=count, offset=entry["offset"])
        out[name] = values.astype(np.float32).reshape(entry["shape"])
    return out


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_a_bundle_in_jsref_layout_keeps_the_stored_bytes_and_jsref_reads_the_same_values(embeddings, dtype):
    data = bundle.write_bundle(embeddings, width=640, height=427, image_sha256="ab" * 32, model_name="m", dtype=dtype)
    original = bundle.read_bundle(data)
    manifest, embedding = jsref_layout(original)

    assert len(embedding) == sum(t.nbytes for t in original.tensors.values())  # fp16 stays fp16: no expansion
    again = bundle.read_manifest_bundle(json.dumps(manifest), embedding)
    assert (again.width, again.height) == (640, 427)
    for name, stored in original.tensors.items():
        assert again.tensors[name].dtype == stored.dtype
        assert again.tensors[name].tobytes() == stored.tobytes()
    for name, values in read_as_jsref_does(manifest, embedding).items():
        np.testing.assert_array_equal(values, original.embeddings()[name])


@pytest.fixture
def served(tmp_path, embeddings):
    jsref, ort = tmp_path / "shared" / "jsref", tmp_path / "ort"
    jsref.mkdir(parents=True)
    ort.mkdir()
    (jsref / "index.html").write_text("<!doctype html>page")
    (jsref / "worker.mjs").write_text("export {};")
    (ort / "ort.wasm.min.mjs").write_text("export {};")
    (ort / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    decoder = tmp_path / "models" / "decoder.onnx"
    decoder.parent.mkdir()
    decoder.write_bytes(b"onnx bytes")
    (tmp_path / "secret.txt").write_text("not for the page")
    preview = tmp_path / "photo.jpg"
    preview.write_bytes(b"\xff\xd8 a jpeg")
    data = bundle.write_bundle(embeddings, width=640, height=427, image_sha256="ab" * 32, model_name="m")
    with JsRefServer(bundle.read_bundle(data), preview, decoder, jsref=jsref, ort=ort) as server:
        yield server


def get(server: JsRefServer, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A GET of `path` exactly as written (no client-side normalisation of `..`)."""
    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path, mime, body",
    [
        ("/index.html", "text/html", b"<!doctype html>page"),
        ("/worker.mjs", "text/javascript", b"export {};"),
        ("/ort/ort.wasm.min.mjs", "text/javascript", b"export {};"),
        ("/ort/ort-wasm-simd-threaded.wasm", "application/wasm", b"\0asm"),
        ("/demo/decoder.onnx", "application/octet-stream", b"onnx bytes"),
        ("/demo/preview.jpg", "image/jpeg", b"\xff\xd8 a jpeg"),
    ],
)
def test_the_jsref_server_serves_page_runtime_and_demo_cross_origin_isolated(served, path, mime, body):
    status, headers, data = get(served, path)
    assert status == 200
    assert headers["Content-Type"].startswith(mime)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert data == body


def test_the_jsref_server_serves_the_converted_bundle_where_the_manifest_points(served):
    _, _, manifest = get(served, "/demo/manifest.json")
    _, _, embedding = get(served, "/demo/embedding.bin")
    assert set(json.loads(manifest)["tensors"]) == set(contract.EMBEDDING_SHAPES)
    assert len(embedding) == 2 * sum(math.prod(s) for s in contract.EMBEDDING_SHAPES.values())


@pytest.mark.parametrize("path", ["/../../secret.txt", "/ort/../secret.txt", "/ort/%2e%2e/secret.txt", "/demo/"])
def test_the_jsref_server_answers_nothing_outside_its_folders(served, path):
    status, _, data = get(served, path)
    assert status == 404
    assert b"not for the page" not in data


def test_without_the_jsref_page_the_bench_says_where_it_looked(tmp_path, embeddings):
    data = bundle.write_bundle(embeddings, width=64, height=48, image_sha256="ab" * 32, model_name="m")
    with pytest.raises(SystemExit, match=r"not found at .*nowhere.*\.\./shared/jsref"):
        JsRefServer(bundle.read_bundle(data), tmp_path / "p.jpg", tmp_path / "d.onnx", jsref=tmp_path / "nowhere")


def test_the_rest_away_pattern_rests_40_to_120_css_px_from_the_click_inside_the_canvas():
    box = {"x": 100.0, "y": 50.0, "width": 640.0, "height": 427.0}
    rng = random.Random(1)
    for x, y in [(105.0, 55.0), (735.0, 472.0), (420.0, 260.0)] * 50:  # corners too
        ax, ay = away_point(x, y, box, rng)
        assert 40 <= math.hypot(ax - x, ay - y) <= 120
        assert box["x"] < ax < box["x"] + box["width"] and box["y"] < ay < box["y"] + box["height"]


def test_the_price_of_python_pairs_each_rounds_runs_and_leaves_out_the_clicks_answered_ahead():
    def samtab(totals_runs_python, speculated):
        return {
            "latency_ms": [{"total": t, "decode.run": r, "python": p} for t, r, p in totals_runs_python],
            "speculated_clicks": speculated,
        }

    runs = [
        {  # a slow round: both pages' runs near 200 ms; the click answered ahead (12 ms) is not a decode
            "jsref": {"decode_median_ms": 200.0, "click_median_ms": 203.0},
            "samtab": samtab([(210, 198, 6), (216, 202, 7), (12, 0, 3)], [False, False, True]),
        },
        {  # a quick one
            "jsref": {"decode_median_ms": 100.0, "click_median_ms": 102.0},
            "samtab": samtab([(111, 101, 5), (111, 103, 6)], [False, False]),
        },
    ]
    price = python_price(runs)
    assert price["run_ratios"] == pytest.approx([1.0, 1.02])
    assert price["run_ratio"] == pytest.approx(1.01)
    assert price["samtab_run"] == pytest.approx(151.0) and price["jsref_run"] == pytest.approx(150.0)
    assert price["python"] == pytest.approx(6.0)
    # per click: 12 and 14 ms, then 10 and 8 (a median of totals less a median of runs would say 13 and 9)
    assert price["samtab_beyond"] == pytest.approx(11.0) and price["jsref_beyond"] == pytest.approx(2.5)
    only_ahead = [{"jsref": runs[0]["jsref"], "samtab": samtab([(12, 0, 3)], [True])}]
    assert python_price(only_ahead) is None
