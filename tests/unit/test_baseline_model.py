"""tools/baseline_model.py: the built-in classical segmenter, in the SAM2 contract, meets its bar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from pyapp import contract
from pyapp import image as images
from pyapp.bundle import read_bundle, write_bundle
from pyapp.prompt import Box, Point
from pyapp.runner import OnnxRuntimeRunner
from pyapp.segmenter import Segmenter
from samtab_tools import baseline_model, synthetic
from samtab_tools.modelio import read_model_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "baseline"
    baseline_model.build(out)
    return out


@pytest.fixture(scope="module")
def encoder(model):
    return ort.InferenceSession(str(model / "encoder.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def runner(model):
    return OnnxRuntimeRunner(model / "decoder.onnx", threads=1)


def segmenter_for(image: np.ndarray, encoder, runner) -> Segmenter:
    rgb = Image.fromarray(image)
    outputs = dict(
        zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"image": images.encoder_input(rgb)}))
    )
    bundle = read_bundle(
        write_bundle(outputs, width=rgb.width, height=rgb.height, image_sha256="0" * 64, model_name=baseline_model.NAME)
    )
    return Segmenter(bundle, baseline_model.NAME, runner.input_names)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_model_follows_the_sam2_contract(model, encoder, runner):
    info = read_model_folder(model)
    assert info.name == baseline_model.NAME and info.family == "baseline" and info.weights == "built-in"
    assert "not SAM2" in info.name
    outputs = {o.name: o.shape for o in encoder.get_outputs()}
    assert outputs == {name: list(shape) for name, shape in contract.EMBEDDING_SHAPES.items()}
    assert runner.input_names == list(contract.DECODER_INPUTS)
    decoder = ort.InferenceSession(str(model / "decoder.onnx"), providers=["CPUExecutionProvider"])
    points = [i for i in decoder.get_inputs() if i.name == "point_coords"][0]
    assert points.shape == ["prompts", "num_points", 2] and all(i.type == "tensor(float)" for i in decoder.get_inputs())
    assert {o.name: o.shape for o in decoder.get_outputs()} == {
        "masks": ["prompts", 3, 256, 256],
        "iou_predictions": ["prompts", 3],
    }
    assert read_model_folder(model).prompt_batch() and runner.prompt_batch
    assert all(o.type == "tensor(float)" for o in [*decoder.get_outputs(), *encoder.get_outputs()])
    assert info.opset == 17
    assert (model / "encoder.onnx").stat().st_size < 100_000  # small: no weights at all


@pytest.mark.parametrize("seed, size", [(0, (960, 640)), (1, (640, 960)), (2, (800, 800))])
def test_one_click_inside_each_shape_selects_it(encoder, runner, seed, size):
    image, objects = synthetic.scene(seed, size)
    segmenter = segmenter_for(image, encoder, runner)
    for obj, described in zip(objects, synthetic.describe(objects)):
        target = segmenter.objects.new()
        target.add_point(Point(*described["point"]))
        segmenter.decode(target, runner)
        score = iou(segmenter.mask(target), obj["mask"])
        assert score >= 0.95, (obj["name"], score)


def test_box_around_a_shape_selects_it(encoder, runner):
    image, objects = synthetic.scene(0)
    segmenter = segmenter_for(image, encoder, runner)
    for obj, described in zip(objects, synthetic.describe(objects)):
        x, y, w, h = described["box"]
        target = segmenter.objects.new()
        target.set_box(Box(x - 3, y - 3, x + w + 3, y + h + 3))
        segmenter.decode(target, runner)
        assert iou(segmenter.mask(target), obj["mask"]) >= 0.9, obj["name"]


def test_an_exclude_click_removes_the_region_it_lands_in(encoder, runner):
    image, objects = synthetic.scene(0)
    described = synthetic.describe(objects)
    segmenter = segmenter_for(image, encoder, runner)
    a, b = described[0], described[2]  # the disc and the triangle, one above the other
    x0, y0 = min(a["box"][0], b["box"][0]) - 4, min(a["box"][1], b["box"][1]) - 4
    x1 = max(a["box"][0] + a["box"][2], b["box"][0] + b["box"][2]) + 4
    y1 = min(639, max(a["box"][1] + a["box"][3], b["box"][1] + b["box"][3]) + 4)
    target = segmenter.objects.new()
    target.set_box(Box(x0, y0, x1, y1))
    segmenter.decode(target, runner)
    both = segmenter.mask(target)
    assert both[objects[0]["mask"]].mean() > 0.95 and both[objects[2]["mask"]].mean() > 0.95
    target.add_point(Point(*b["point"], include=False))
    segmenter.decode(target, runner)
    after = segmenter.mask(target)
    assert after[objects[2]["mask"]].mean() < 0.02  # the excluded triangle is gone
    assert after[objects[0]["mask"]].mean() > 0.95  # the disc stays


def test_a_click_selects_its_own_region_not_the_same_colour_elsewhere(encoder, runner):
    image, objects = synthetic.scene(0)
    twin = image.copy()
    # Paint a second red disc far away: same colour, not connected.
    yy, xx = np.mgrid[0:640, 0:960]
    other = np.hypot(xx - 820, yy - 560) < 50
    twin[other] = image[objects[0]["mask"]][0]
    segmenter = segmenter_for(twin, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(*synthetic.describe(objects)[0]["point"]))
    segmenter.decode(target, runner)
    mask = segmenter.mask(target)
    assert iou(mask, objects[0]["mask"]) >= 0.95 and mask[other].mean() < 0.01


def test_ring_does_not_take_its_hole(encoder, runner):
    image, objects = synthetic.scene(0)
    ring = objects[4]
    segmenter = segmenter_for(image, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(*synthetic.describe(objects)[4]["point"]))
    segmenter.decode(target, runner)
    ys, xs = np.nonzero(ring["mask"])
    centre = (int(ys.mean()), int(xs.mean()))
    assert not segmenter.mask(target)[centre]


def two_touching_regions(difference: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 640×480 photo with two rectangles side by side, touching, on a grey background; the right one's
    colour is the left one's plus `difference`."""
    image = np.full((480, 640, 3), 150, np.uint8)
    image[:, :, 2] = 170
    left, right = np.zeros((480, 640), bool), np.zeros((480, 640), bool)
    left[120:360, 100:320], right[120:360, 320:540] = True, True
    image[left] = (190, 60, 50)
    image[right] = np.add((190, 60, 50), difference)
    return image, left, right


def test_an_exclude_click_splits_two_touching_similar_regions(encoder, runner):
    image, left, right = two_touching_regions((-8, 8, 6))  # close enough in colour to flood into each other
    segmenter = segmenter_for(image, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(210, 240))
    segmenter.decode(target, runner)
    assert segmenter.mask(target)[right].mean() > 0.9  # one click takes both...
    target.add_point(Point(430, 240, include=False))
    segmenter.decode(target, runner)
    mask = segmenter.mask(target)
    assert mask[right].mean() < 0.02 and iou(mask, left) >= 0.9  # ...until the other one is excluded


def test_an_exclude_click_splits_one_uniform_region_between_the_clicks(encoder, runner):
    image, left, right = two_touching_regions((0, 0, 0))  # one uniform rectangle
    segmenter = segmenter_for(image, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(150, 240))
    target.add_point(Point(490, 240, include=False))
    segmenter.decode(target, runner)
    mask = segmenter.mask(target)
    assert mask[240, 150] and not mask[240, 490]
    assert mask[left].mean() > 0.8 and mask[right].mean() < 0.2  # split near the middle, not at an edge


def test_feeding_the_previous_mask_back_keeps_it(encoder, runner):
    image, objects = synthetic.scene(1, (640, 960))
    segmenter = segmenter_for(image, encoder, runner)
    for obj, described in zip(objects, synthetic.describe(objects)):
        target = segmenter.objects.new()
        target.add_point(Point(*described["point"]))
        feeds = segmenter.feeds(target.current)
        first = runner.run(feeds)
        best = int(np.argmax(first["iou_predictions"][0]))
        again = runner.run(
            dict(feeds, mask_input=first["masks"][:, best : best + 1], has_mask_input=np.ones(1, np.float32))
        )
        assert iou(again["masks"][0, best] > 0, first["masks"][0, best] > 0) >= 0.99, obj["name"]


def test_a_click_near_an_edge_still_selects_its_side(encoder, runner):
    image, objects = synthetic.scene(0)
    disc = objects[0]["mask"]
    ys, xs = np.nonzero(disc)
    x, y = int(xs.min()) + 6, int(ys[xs.argmin()])  # 6 pixels inside the disc's leftmost point
    segmenter = segmenter_for(image, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(x, y))
    segmenter.decode(target, runner)
    assert iou(segmenter.mask(target), disc) >= 0.95


def test_padding_points_and_mask_input_rules(model, encoder, runner):
    image, objects = synthetic.scene(0)
    segmenter = segmenter_for(image, encoder, runner)
    target = segmenter.objects.new()
    target.add_point(Point(*synthetic.describe(objects)[1]["point"]))
    feeds = segmenter.feeds(target.current)
    plain = runner.run(feeds)
    padded = dict(
        feeds,
        point_coords=np.concatenate([feeds["point_coords"], np.zeros((1, 1, 2), np.float32)], 1),
        point_labels=np.concatenate([feeds["point_labels"], -np.ones((1, 1), np.float32)], 1),
    )
    np.testing.assert_allclose(runner.run(padded)["masks"], plain["masks"], atol=1e-5)  # padding changes nothing
    noise = np.random.default_rng(0).normal(0, 10, (1, 1, 256, 256)).astype(np.float32)
    ignored = runner.run(dict(feeds, mask_input=noise))  # has_mask_input is 0: mask_input is ignored
    np.testing.assert_array_equal(ignored["masks"], plain["masks"])
    used = runner.run(dict(feeds, mask_input=noise, has_mask_input=np.ones(1, np.float32)))
    assert not np.array_equal(used["masks"], plain["masks"])
    np.testing.assert_array_equal(runner.run(feeds)["masks"], plain["masks"])  # deterministic
    for n in (2, 5):  # the same click repeated: the same answer, for any number of points
        many = dict(
            feeds,
            point_coords=np.repeat(feeds["point_coords"], n, 1),
            point_labels=np.repeat(feeds["point_labels"], n, 1),
        )
        np.testing.assert_allclose(runner.run(many)["masks"], plain["masks"], atol=1e-5)
    padding_only = dict(
        feeds, point_coords=np.full((1, 3, 2), 500, np.float32), point_labels=-np.ones((1, 3), np.float32)
    )
    assert (runner.run(padding_only)["masks"] < 0).all()  # nothing asked, nothing selected
    assert np.abs(plain["masks"]).max() <= 32 and plain["iou_predictions"].shape == (1, 3)


def test_cli_refuses_to_overwrite_without_force(model, tmp_path):
    out = tmp_path / "baseline"
    tool = [sys.executable, str(ROOT / "tools" / "baseline_model.py"), "--out", str(out)]
    assert subprocess.run(tool, capture_output=True).returncode == 0
    again = subprocess.run(tool, capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr
    assert subprocess.run([*tool, "--force"], capture_output=True).returncode == 0


def test_a_batch_of_prompts_gets_what_each_prompt_gets_alone(runner, encoder):
    """The baseline takes a batch of prompts in one run, as SAM2's export does (its graph runs once per prompt)."""
    rng = np.random.default_rng(3)
    image = rng.standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    embeddings = dict(zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"image": image})))
    coords = rng.uniform(0, 1024, (5, 2, 2)).astype(np.float32)
    labels = np.array([[1, 0], [1, 1], [1, 0], [0, 1], [1, 1]], np.float32)
    previous = {
        "mask_input": rng.normal(0, 3, (1, 1, 256, 256)).astype(np.float32),
        "has_mask_input": np.ones(1, np.float32),
    }
    together = runner.run({**embeddings, **previous, "point_coords": coords, "point_labels": labels})
    for index in range(len(coords)):
        alone = runner.run(
            {
                **embeddings,
                **previous,
                "point_coords": coords[index : index + 1],
                "point_labels": labels[index : index + 1],
            }
        )
        for name in ("masks", "iou_predictions"):
            np.testing.assert_array_equal(together[name][index : index + 1], alone[name])
