"""tools/segment.py: the browser's pipeline, headless, on a demo folder or a bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import baseline_model
import encode
import synthetic

ROOT = Path(__file__).resolve().parents[2]
SEGMENT = [sys.executable, str(ROOT / "tools" / "segment.py")]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The synthetic scene encoded with the baseline: its folder, model, bundle and truth."""
    folder = tmp_path_factory.mktemp("segment")
    model = folder / "baseline"
    baseline_model.build(model)
    photo = folder / "shapes.png"
    synthetic.save_scene(photo, folder / "truth.json")
    [result] = encode.encode_all([photo], model, folder / "out", progress=False)
    image, objects = synthetic.scene()
    return folder, model, result.bundle, objects, synthetic.describe(objects)


def run(*args):
    return subprocess.run([*SEGMENT, *map(str, args)], capture_output=True, text=True, timeout=300)


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 127


def test_points_give_the_object(scene, tmp_path):
    _, model, bundle, objects, described = scene
    x, y = described[1]["point"]
    result = run("--demo", bundle, "--model", model, "--point", f"{x},{y}", "--out", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    mask = read_mask(tmp_path / "m.png")
    assert mask.shape == (640, 960) and summary["area_px"] == int(mask.sum()) and summary["decodes"] == 1
    truth = objects[1]["mask"]
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.95


def test_replay_refines_click_by_click_unlike_all_at_once(scene, tmp_path):
    _, model, bundle, _, described = scene
    args = ["--demo", bundle, "--model", model, "--point", "{},{}".format(*described[0]["point"]),
            "--point", "{},{},0".format(*described[3]["point"])]
    replay = json.loads(run(*args, "--out", tmp_path / "a.png").stdout)
    at_once = json.loads(run(*args, "--all-at-once", "--out", tmp_path / "b.png").stdout)
    assert replay["decodes"] == 2 and at_once["decodes"] == 1


def test_box_and_candidate_choice(scene, tmp_path):
    _, model, bundle, objects, described = scene
    x, y, w, h = described[2]["box"]
    result = run("--demo", bundle, "--model", model, "--box", f"{x + w + 3},{y + h + 3},{x - 3},{y - 3}",
                 "--candidate", "2", "--out", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mask_index"] == 2


@pytest.mark.parametrize("args, message", [
    (["--point", "5000,10"], "outside"),
    (["--point", "10,10", "--model", "{folder}/nope"], "no model.json"),
])
def test_errors_are_clear(scene, tmp_path, args, message):
    folder, model, bundle, _, _ = scene
    filled = [a.format(folder=folder) for a in args]
    if "--model" not in filled:
        filled += ["--model", str(model)]
    result = run("--demo", bundle, *filled, "--out", tmp_path / "m.png")
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "m.png").exists()


def test_a_bundle_of_another_model_is_refused(scene, tmp_path):
    folder, _, bundle, _, _ = scene
    other = folder / "other-model"
    baseline_model.build(other)
    info = json.loads((other / "model.json").read_text())
    info["name"] = "another model"
    (other / "model.json").write_text(json.dumps(info))
    result = run("--demo", bundle, "--model", other, "--point", "10,10", "--out", tmp_path / "m.png")
    assert result.returncode == 1 and "another model" in result.stderr


def test_point_and_box_arguments_are_checked(scene, tmp_path):
    _, model, bundle, _, _ = scene
    for bad in (["--point", "1,2,3"], ["--point", "a,b"], ["--box", "1,2,3"]):
        result = run("--demo", bundle, "--model", model, *bad, "--out", tmp_path / "m.png")
        assert result.returncode == 2 and "expected" in result.stderr
    assert run("--demo", bundle, "--model", model, "--out", tmp_path / "m.png").returncode == 2
