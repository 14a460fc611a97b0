"""samtab-encode --ray (tools/encode_ray.py) on a local Ray cluster of 2 CPUs started by the test: the same files
as the serial run, byte for byte; a bad photo reported and the rest encoded; a resumed run skips what is done
without starting an actor; an actor process killed mid-run is made again by Ray and every bundle comes out."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyapp import bundle as bundles
from samtab_tools import encode, encode_ray


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray.startup_s = time.perf_counter() - started
    yield ray
    ray.shutdown()


def make_photos(folder: Path, count: int, size=(240, 180)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    photos = []
    for i in range(count):
        path = folder / f"photo{i:03d}.{'png' if i % 3 == 0 else 'jpg'}"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0] + i, 3), dtype=np.uint8)).save(path)
        photos.append(path)
    return photos


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_bundles_are_the_serial_runs_byte_for_byte_and_a_bad_photo_is_reported(
    ray_cluster, baseline, tmp_path, capsys, figures
):
    photos = make_photos(tmp_path / "photos", 8)
    (tmp_path / "photos" / "notes.jpg").write_text("not a photo")
    started = time.perf_counter()
    assert encode.main([str(tmp_path / "photos"), "--model", str(baseline), "--out", str(tmp_path / "serial")]) == 1
    serial_s = time.perf_counter() - started
    capsys.readouterr()

    started = time.perf_counter()
    argv = [str(tmp_path / "photos"), "--model", str(baseline), "--out", str(tmp_path / "ray"), "--ray"]
    assert encode.main(argv) == 1, "a failed photo makes the exit code 1"
    ray_s = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert "encode: 8 encoded, 0 skipped, 1 failed" in out, out
    assert "FAILED notes.jpg: notes.jpg is not a photo Pillow can read" in err, err
    assert "encode: Ray: 2 actors (0 GPU, 1 CPU each) for 9 photos" in err, err
    assert files(tmp_path / "ray") == files(tmp_path / "serial")
    assert len(files(tmp_path / "ray")) == 2 * len(photos)
    figures(
        f"8 photos + 1 bad, baseline model: serial {serial_s:.1f} s, Ray (2 actors, local, started) {ray_s:.1f} s; "
        f"Ray started in {ray_cluster.startup_s:.1f} s"
    )

    # Run again: what is done is skipped before Ray is asked for anything; the bad photo is tried again.
    assert encode.main(argv) == 1
    out, err = capsys.readouterr()
    assert (
        "encode: 0 encoded, 8 skipped, 1 failed" in out
        and "encode: Ray: 1 actor (0 GPU, 1 CPU each) for 1 photo" in err
    )
    assert "max_restarts" not in err, "no warning from Ray"
    (tmp_path / "photos" / "notes.jpg").unlink()
    assert encode.main(argv) == 0
    out, err = capsys.readouterr()
    assert "encode: 0 encoded, 8 skipped, 0 failed" in out and "encode: Ray:" not in err, (out, err)
    # Another photo's bundle under a photo's name is never replaced without --force.
    os.replace(tmp_path / "ray" / "photo001.jpg.msgpack", tmp_path / "ray" / "photo002.jpg.msgpack")
    assert encode.main(argv) == 1
    out, err = capsys.readouterr()
    assert "encode: 1 encoded, 6 skipped, 1 failed" in out, out
    assert "photo002.jpg.msgpack exists and it was made from a different photo; pass --force" in err, err
    assert encode.main([*argv, "--force"]) == 0
    assert files(tmp_path / "ray") == files(tmp_path / "serial")


def actor_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"ray::{encode_ray.ACTOR_NAME}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_an_actor_killed_mid_run_is_made_again_and_every_bundle_comes_out(ray_cluster, baseline, tmp_path, figures):
    photos = make_photos(tmp_path / "photos", 40, size=(640, 480))
    out = tmp_path / "ray"
    results: list = []
    run = threading.Thread(
        target=lambda: results.extend(encode_ray.encode_all(photos, baseline, out, progress=False)), daemon=True
    )
    run.start()
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.msgpack"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = actor_pids()
    assert run.is_alive() and len(pids) == 2, (run.is_alive(), pids)
    done_before = len(list(out.glob("*.msgpack")))
    os.kill(pids[0], signal.SIGKILL)  # as the kernel's OOM killer, or a lost machine, would
    run.join(timeout=300)
    assert not run.is_alive()
    assert [r.status for r in results] == ["encoded"] * len(photos), [(r.photo.name, r.message) for r in results]
    for photo in photos:
        bundle = bundles.read_bundle((out / f"{photo.name}.msgpack").read_bytes())
        assert bundle.image_sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert not list(out.glob(".*")) and not list(out.glob("*.part*")), "no temporary file is left"
    assert pids[0] not in actor_pids()
    figures(f"an actor killed after {done_before} of {len(photos)} bundles: all {len(photos)} written, all valid")


def test_the_actors_fit_the_cluster():
    assert encode_ray.plan({"CPU": 16.0}, "auto", None) == encode_ray.Plan(16, 1, 0, 1)
    assert encode_ray.plan({"CPU": 16.0, "GPU": 4.0}, "auto", None) == encode_ray.Plan(4, 1, 1, 0)
    assert encode_ray.plan({"CPU": 16.0, "GPU": 4.0}, "cpu", None) == encode_ray.Plan(16, 1, 0, 1)
    assert encode_ray.plan({"CPU": 16.0}, "auto", 3).actors == 3


def test_actors_without_ray_is_refused(baseline, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        encode.main([str(tmp_path), "--model", str(baseline), "--out", str(tmp_path / "out"), "--actors", "2"])
    assert exit_.value.code == 2 and "--actors N needs --ray" in capsys.readouterr().err
