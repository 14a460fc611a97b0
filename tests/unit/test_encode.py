"""tools/encode.py: photos in, bundles and previews out, atomically, resumably, one bad photo at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from pyapp import image as images
from pyapp.bundle import read_bundle
from samtab_tools import encode, files

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
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"image": images.encoder_input(opened.rgb)}))
    )
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


def test_a_bundle_whose_preview_was_deleted_is_made_again_with_it(baseline, tmp_path):
    photo(tmp_path / "a.jpg", seed=1)
    out = tmp_path / "out"
    assert run(tmp_path / "a.jpg", "--model", baseline, "--out", out).returncode == 0
    bundle, preview = (out / "a.jpg.msgpack").read_bytes(), (out / "a.jpg.preview.jpg").read_bytes()
    (out / "a.jpg.preview.jpg").unlink()
    result = run(tmp_path / "a.jpg", "--model", baseline, "--out", out)
    assert result.returncode == 0 and "1 encoded, 0 skipped, 0 failed" in result.stdout
    assert (out / "a.jpg.preview.jpg").read_bytes() == preview and (out / "a.jpg.msgpack").read_bytes() == bundle


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
        result = run(
            *[tmp_path / f"p{i}.png" for i in range(6)], "--model", baseline, "--out", out, "--shard", f"{k}/2"
        )
        assert result.returncode in (0, 2), result.stderr  # 2 only if a shard happens to be empty
        seen += [p.name for p in out.glob("*.msgpack")] if out.exists() else []
    assert sorted(seen) == sorted(f"p{i}.png.msgpack" for i in range(6))


# Runs tools/encode.py with its first file write paused: the data is on disk, the temporary not yet renamed
# into place (the moment a run sharing the folder could delete it), until a line comes on stdin.
PAUSED = """
import os, runpy, sys

fsync = os.fsync

def fsync_then_pause(fd):
    fsync(fd)
    os.fsync = fsync
    print("paused", flush=True)
    sys.stdin.readline()

os.fsync = fsync_then_pause
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_two_shards_encode_into_one_folder_at_once(baseline, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = [photo(folder / f"p{i}.png", size=(48, 32), seed=i).name for i in range(6)]
    shares = {k: [n for n in names if encode.in_shard(Path(n), (k, 2))] for k in (1, 2)}
    assert shares[1] and shares[2]
    out = tmp_path / "out"
    command = [str(folder), "--model", str(baseline), "--out", str(out), "--quiet"]
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED, *ENCODE[1:], *command, "--shard", "1/2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline() == "paused\n"
        [writing] = [name for name in os.listdir(out) if name.endswith(".partial")]
        assert f".{first.pid}." in writing  # shard 1 is mid-write
        second = run(*command, "--shard", "2/2")  # starts, cleans --out, encodes its share, ends
        assert second.returncode == 0, second.stderr
        assert f"{len(shares[2])} encoded, 0 skipped, 0 failed" in second.stdout
        assert writing in os.listdir(out)  # shard 2 left shard 1's temporary alone
        stdout, stderr = first.communicate("\n", timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert f"{len(shares[1])} encoded, 0 skipped, 0 failed" in stdout
    for name in names:
        bundle = read_bundle((out / f"{name}.msgpack").read_bytes())
        assert bundle.image_sha256 == images.open_photo(folder / name).sha256
    assert sorted(os.listdir(out)) == sorted(f"{n}{suffix}" for n in names for suffix in (".msgpack", ".preview.png"))


def test_only_temporaries_whose_writer_is_gone_are_removed(baseline, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ended = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; from samtab_tools import files; "
            "os.close(files.make_partial(sys.argv[1], 'a.png.msgpack')[0])",
            out,
        ]
    )
    assert ended.wait() == 0
    [killed] = out.iterdir()  # a run of this machine whose process has ended without renaming its temporary
    assert killed.name.startswith(f".a.png.msgpack.{files.this_host()}.{ended.pid}.")
    fd, writing = files.make_partial(out, "b.png.msgpack")  # this test's process, alive: it may be writing
    os.close(fd)
    fd, reused = files.make_partial(out, "c.png.msgpack")
    os.close(fd)
    # Another machine's: its process ids mean nothing here (this one is no process here), so it is kept...
    elsewhere = out / f".d.png.msgpack.another-machine.{ended.pid}.abcd1234.partial"
    abandoned = out / f".e.png.msgpack.another-machine.{ended.pid}.efgh5678.partial"  # ...unless a day old
    older = out / ".f.png.msgpack.x1y2.partial"  # samtab before writers were named
    for path in (elsewhere, abandoned, older):
        path.write_bytes(b"half a file")
    day_old = time.time() - files.STALE_AFTER - 60
    for path in (abandoned, Path(reused)):  # not touched for over a day: nobody is writing them
        os.utime(path, (day_old, day_old))

    assert run(photo(tmp_path / "a.png"), "--model", baseline, "--out", out).returncode == 0
    assert sorted(p.name for p in out.glob(".*")) == sorted([Path(writing).name, elsewhere.name])


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.png", "--model", "{model}", "--out", "{tmp}"], "nope.png: no such file or folder"),
        (["{photo}", "--model", "{tmp}/no-model", "--out", "{tmp}"], "has no model.json"),
        (["{photo}", "--model", "{model}", "--out", "{tmp}", "--provider", "quantum"], "onnxruntime here offers only"),
    ],
)
def test_usage_errors(baseline, tmp_path, args, message):
    source = photo(tmp_path / "a.png")
    filled = [a.format(model=baseline, tmp=tmp_path, photo=source) for a in args]
    result = run(*filled)
    assert result.returncode == 2 and message in result.stderr


def test_shard_argument_is_checked(baseline, tmp_path):
    result = run(photo(tmp_path / "a.png"), "--model", baseline, "--out", tmp_path, "--shard", "3/2")
    assert result.returncode == 2 and "K must be from 1 to N" in result.stderr


def test_index_lists_the_collection_for_the_page(baseline, tmp_path):
    from pyapp import collection

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed, name in enumerate(["b.jpg", "a.png", "notes.jpg"]):
        photo(photos / name, size=(96 + seed, 64), seed=seed)
    (photos / "notes.jpg").write_text("not a photo")
    out = tmp_path / "site" / "pets"
    result = run(
        photos / "a.png",
        photos / "b.jpg",
        photos / "notes.jpg",
        "--model",
        baseline,
        "--out",
        out,
        "--index",
        "--classes",
        "cat, dog,cat",
    )
    assert result.returncode == 1  # notes.jpg failed, and is not in the index
    index = collection.read_index((out / "collection.json").read_bytes())
    assert (index.name, index.classes) == ("pets", ["cat", "dog"])
    assert index.model == read_bundle((out / "a.png.msgpack").read_bytes()).model_name
    assert [p.name for p in index.photos] == ["a.png", "b.jpg"]
    first = index.photos[0]
    assert (first.bundle, first.preview, first.photo) == ("a.png.msgpack", "a.png.preview.png", "../../photos/a.png")
    assert (first.width, first.height, first.sha256) == (97, 64, images.open_photo(photos / "a.png").sha256)

    # More photos later: added at the end, the rest and the classes kept; a new name given is taken.
    photo(photos / "c.jpg", seed=7)
    assert (
        run(photos / "c.jpg", photos / "a.png", "--model", baseline, "--out", out, "--index", "Pets 2").returncode == 0
    )
    again = collection.read_index((out / "collection.json").read_bytes())
    assert (again.name, again.classes, [p.name for p in again.photos]) == (
        "Pets 2",
        ["cat", "dog"],
        ["a.png", "b.jpg", "c.jpg"],
    )

    result = run(photos / "c.jpg", "--model", baseline, "--out", out, "--index", "--shard", "1/2")
    assert result.returncode == 2 and "without --shard" in result.stderr
    other = collection.Collection("x", "other", [collection.Photo("a.png", 1, 1, photo="a.png")])
    (out / "collection.json").write_text(json.dumps(other.document()))
    result = run(photos / "c.jpg", "--model", baseline, "--out", out, "--index")
    assert result.returncode == 2 and "'other'" in result.stderr and "another --out" in result.stderr
