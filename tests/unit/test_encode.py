"""tools/encode.py: photos in, bundles and previews out, atomically, resumably, one bad photo at a time."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from pyapp import image as images
from pyapp.bundle import read_bundle

ROOT = Path(__file__).resolve().parents[2]
ENCODE = [sys.executable, str(ROOT / "tools" / "encode.py")]


def photo(path: Path, size=(96, 64), orientation: int | None = None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
    image = Image.fromarray(pixels)
    options = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    image.save(path, **options)
    return path


def run(*args):
    return subprocess.run([*ENCODE, *map(str, args), "--quiet"], capture_output=True, text=True, timeout=600)


def test_bundle_and_preview_describe_the_upright_photo(baseline, tmp_path):
    source = photo(tmp_path / "rotated.png", size=(96, 64), orientation=6)
    result = run(source, "--model", baseline, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    bundle = read_bundle((tmp_path / "out" / "rotated.png.msgpack").read_bytes())
    opened = images.open_photo(source)
    assert (bundle.width, bundle.height) == (64, 96)  # EXIF orientation 6 turns the 96×64 pixels upright
    assert bundle.image_sha256 == opened.sha256
    assert bundle.model_name == "samtab baseline (classical, not SAM2)" and bundle.dtype == "float16"
    preview = Image.open(tmp_path / "out" / "rotated.png.preview.png")
    np.testing.assert_array_equal(np.asarray(preview.convert("RGB")), np.asarray(opened.rgb))
    # The bundle holds what the encoder gives for pyapp.image's input, to fp16 precision.
    session = ort.InferenceSession(str(baseline / "encoder.onnx"), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"image": images.encoder_input(opened.rgb)})))
    for name, array in bundle.embeddings().items():
        np.testing.assert_allclose(array, outputs[name], rtol=2e-3, atol=2e-3)


def test_float32_on_request(baseline, tmp_path):
    source = photo(tmp_path / "a.png")
    assert run(source, "--model", baseline, "--out", tmp_path, "--dtype", "float32").returncode == 0
    assert read_bundle((tmp_path / "a.png.msgpack").read_bytes()).dtype == "float32"


def test_one_bad_photo_is_reported_and_the_rest_go_on(baseline, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "good1.png", seed=1)
    photo(folder / "good2.jpg", seed=2)
    (folder / "notes.jpg").write_text("this is a text file, not a photo")
    (folder / "empty.png").write_bytes(b"")
    result = run(folder, "--model", baseline, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert "notes.jpg" in result.stderr and "not a photo Pillow can read" in result.stderr
    assert "empty.png" in result.stderr and "empty" in result.stderr
    assert "2 encoded, 0 skipped, 2 failed" in result.stdout
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["good1.png.msgpack", "good1.png.preview.png", "good2.jpg.msgpack", "good2.jpg.preview.jpg"]


def test_a_second_run_resumes_and_skips_what_is_done(baseline, tmp_path):
    photo(tmp_path / "a.png", seed=1)
    photo(tmp_path / "b.png", seed=2)
    out = tmp_path / "out"
    assert run(tmp_path / "a.png", "--model", baseline, "--out", out).returncode == 0
    before = (out / "a.png.msgpack").stat().st_mtime_ns
    result = run(tmp_path / "a.png", tmp_path / "b.png", "--model", baseline, "--out", out)
    assert result.returncode == 0 and "1 encoded, 1 skipped, 0 failed" in result.stdout
    assert (out / "a.png.msgpack").stat().st_mtime_ns == before


def test_never_overwrites_another_photos_bundle_without_force(baseline, tmp_path):
    out = tmp_path / "out"
    first = photo(tmp_path / "a.png", seed=1)
    assert run(first, "--model", baseline, "--out", out).returncode == 0
    original = (out / "a.png.msgpack").read_bytes()
    photo(first, seed=2)  # a different photo under the same name
    result = run(first, "--model", baseline, "--out", out)
    assert result.returncode == 1 and "different photo" in result.stderr and "--force" in result.stderr
    assert (out / "a.png.msgpack").read_bytes() == original
    assert run(first, "--model", baseline, "--out", out, "--force").returncode == 0
    assert (out / "a.png.msgpack").read_bytes() != original


def test_shards_partition_the_photos(baseline, tmp_path):
    for i in range(6):
        photo(tmp_path / f"p{i}.png", size=(32, 32), seed=i)
    seen = []
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        result = run(*[tmp_path / f"p{i}.png" for i in range(6)], "--model", baseline, "--out", out, "--shard", f"{k}/2")
        assert result.returncode in (0, 2), result.stderr  # 2 only if a shard happens to be empty
        seen += [p.name for p in out.glob("*.msgpack")] if out.exists() else []
    assert sorted(seen) == sorted(f"p{i}.png.msgpack" for i in range(6))


def test_leftovers_of_a_killed_run_are_removed(baseline, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a.png.msgpack.x1y2.partial").write_bytes(b"half a bundle")
    assert run(photo(tmp_path / "a.png"), "--model", baseline, "--out", out).returncode == 0
    assert not list(out.glob(".*"))


@pytest.mark.parametrize("args, message", [
    (["nope.png", "--model", "{model}", "--out", "{tmp}"], "nope.png: no such file or folder"),
    (["{photo}", "--model", "{tmp}/no-model", "--out", "{tmp}"], "has no model.json"),
    (["{photo}", "--model", "{model}", "--out", "{tmp}", "--provider", "quantum"], "onnxruntime here offers only"),
])
def test_usage_errors(baseline, tmp_path, args, message):
    source = photo(tmp_path / "a.png")
    filled = [a.format(model=baseline, tmp=tmp_path, photo=source) for a in args]
    result = run(*filled)
    assert result.returncode == 2 and message in result.stderr


def test_shard_argument_is_checked(baseline, tmp_path):
    result = run(photo(tmp_path / "a.png"), "--model", baseline, "--out", tmp_path, "--shard", "3/2")
    assert result.returncode == 2 and "K must be from 1 to N" in result.stderr
