"""Segment everything (pyapp.everything) against Meta's automatic mask generator.

Meta's SAM2AutomaticMaskGenerator imports torchvision, which does not import beside torch 2.13 here, and its
predictor's transforms need torchvision too: its steps are run here from `sam2/utils/amg.py` itself
(build_point_grid, calculate_stability_score, batched_mask_to_box) on Meta's PyTorch model behind
tools/meta_reference.MetaPredictor (SAM2ImagePredictor's path without torchvision), in the order of the
generator's _process_batch, with a PyTorch stand-in for torchvision's batched_nms written from its
documentation. Both sides decode from the same embeddings (the demo's bundle, float32), so what is compared
is the generator: grid, decoding, filters, boxes, deduplication.

The model is SAM2.1 tiny with random weights (seed 0): its logits stay within about +-0.5 and nearly every
mask covers most of the photo, so Meta's defaults would keep nothing (stability offset 1.0 leaves every mask
empty at +1) or one (every box is the whole photo). The end-to-end test states its own thresholds; box NMS
is checked on its own, on boxes that overlap in every way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyapp import everything
from pyapp.bundle import read_bundle
from pyapp.runner import OnnxRuntimeRunner
from pyapp.segmenter import Segmenter
from pyapp.session import EVERYTHING_BATCH

ROOT = Path(__file__).resolve().parents[2]
DEMOS = ROOT / "site" / "demos"
SEED = 0


def amg():
    from sam2.utils import amg as meta_amg

    return meta_amg


def torch_nms(boxes, scores, threshold: float):
    """torchvision.ops.nms as documented: boxes sorted by score, highest first; a box is dropped when its
    IoU with a box already kept is above the threshold; returns the kept indices by decreasing score."""
    import torch

    boxes = torch.as_tensor(boxes, dtype=torch.float64)
    order = torch.argsort(torch.as_tensor(scores, dtype=torch.float64), descending=True, stable=True)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    for i in order.tolist():
        if all(
            (
                inter := (torch.min(boxes[i, 2], boxes[k, 2]) - torch.max(boxes[i, 0], boxes[k, 0])).clamp(min=0)
                * (torch.min(boxes[i, 3], boxes[k, 3]) - torch.max(boxes[i, 1], boxes[k, 1])).clamp(min=0)
            )
            / (area[i] + area[k] - inter)
            <= threshold
            for k in keep
        ):
            keep.append(i)
    return keep


def balanced_iou(a: np.ndarray, b: np.ndarray) -> float:
    def iou(x, y):
        union = np.count_nonzero(x | y)
        return np.count_nonzero(x & y) / union if union else 1.0

    return min(iou(a, b), iou(~a, ~b))


@pytest.mark.parametrize("n", [1, 2, 3, 8, 16, 32, 33])
def test_the_grid_is_metas(torch, n):
    np.testing.assert_allclose(everything.point_grid(n), amg().build_point_grid(n), rtol=0, atol=1e-12)


def test_stability_score_and_boxes_are_metas(torch):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 0.6, (6, 37, 53)).astype(np.float32)
    logits[5] = -1  # empty at every threshold: Meta's 0 / 0
    meta = amg().calculate_stability_score(torch.as_tensor(logits), 0.0, 0.3).numpy()
    ours = [everything.stability_score(plane, 0.0, 0.3) for plane in logits]
    np.testing.assert_allclose(ours[:5], meta[:5], rtol=1e-6)
    assert np.isnan(meta[5]) and np.isnan(ours[5])
    masks = logits > 0.4
    meta_boxes = amg().batched_mask_to_box(torch.as_tensor(masks)).numpy()
    assert [list(everything.mask_box(m)) for m in masks] == meta_boxes.astype(int).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_box_nms_is_torchvisions(torch, seed):
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 100, (60, 2))
    sizes = rng.uniform(1, 60, (60, 2))
    boxes = np.hstack([corners, corners + sizes]).round()  # whole pixels, as mask boxes are: ties happen
    boxes[10:20] = boxes[0]  # identical boxes
    scores = rng.uniform(0, 1, 60)
    for threshold in (0.0, 0.3, 0.7, 0.95, 1.0):
        assert everything.box_nms(boxes, scores, threshold) == torch_nms(boxes, scores, threshold)


SETTINGS = everything.Settings(
    points_per_side=8,
    pred_iou_thresh=0.5,  # random-init scores are 0.47-0.55: about half pass
    stability_score_offset=0.05,  # logits within +-0.5: at Meta's 1.0 every mask is empty
    stability_score_thresh=0.5,
    box_nms_thresh=1.0,  # every random-init mask's box is nearly the whole photo: NMS would keep one
)


def meta_everything(predictor, width: int, height: int, settings: everything.Settings) -> list[dict]:
    """Meta's generator's steps for one crop (the whole photo), one point per batch."""
    import torch

    meta = amg()
    points = meta.build_point_grid(settings.points_per_side) * np.array([[width, height]])
    found = []
    for point in points:
        logits, iou, _ = predictor.predict(
            point_coords=point[None], point_labels=np.array([1]), multimask_output=True, return_logits=True
        )
        logits, iou = torch.as_tensor(logits), torch.as_tensor(iou)
        keep = iou > settings.pred_iou_thresh
        logits, iou = logits[keep], iou[keep]
        stability = meta.calculate_stability_score(logits, settings.mask_threshold, settings.stability_score_offset)
        keep = stability >= settings.stability_score_thresh
        logits, iou, stability = logits[keep], iou[keep], stability[keep]
        masks = logits > settings.mask_threshold
        boxes = meta.batched_mask_to_box(masks)
        for k in range(len(masks)):
            found.append(
                {"mask": masks[k].numpy(), "box": boxes[k].numpy(), "iou": float(iou[k]), "point": tuple(point)}
            )
    kept = torch_nms(np.array([f["box"] for f in found]).reshape(-1, 4), [f["iou"] for f in found], 1.0)
    return [found[i] for i in kept]


@pytest.fixture(scope="module")
def meta_predictor(torch):
    from samtab_tools import export_sam2, meta_reference

    return meta_reference.MetaPredictor(export_sam2.build_model("sam2.1_hiera_t", seed=SEED))


@pytest.mark.parametrize("demo", ["coffee-sam2.1-tiny-random", "chelsea-sam2.1-tiny-random"])
def test_everything_matches_metas_generator(sam2_model, meta_predictor, demo, figures):
    """At least 20 masks per photo; the same count (+-2 %); matched one-to-one (same grid point, same
    order), each with balanced IoU >= 0.99 and the same box. The grid points are decoded in batches, as the
    page decodes them (the exported decoder takes a batch of prompts)."""
    info = json.loads((DEMOS / demo / "demo.json").read_text())
    bundle = read_bundle((DEMOS / demo / info["bundle"]).read_bytes())
    runner = OnnxRuntimeRunner(sam2_model / "decoder.onnx")
    assert runner.prompt_batch
    segmenter = Segmenter(bundle, info["model_name"], runner.input_names)
    run = everything.Everything(segmenter, SETTINGS)
    while run.pending:
        run.add(runner.run(run.next_feeds(EVERYTHING_BATCH)))
    assert run.runs == -(-(SETTINGS.points_per_side**2) // EVERYTHING_BATCH)
    ours = run.result()
    meta_predictor.set_features(segmenter.embeddings, (bundle.height, bundle.width))
    theirs = meta_everything(meta_predictor, bundle.width, bundle.height, SETTINGS)
    assert len(ours) >= 20 and abs(len(ours) - len(theirs)) <= 0.02 * len(theirs)
    by_point = {}
    for found in theirs:
        by_point.setdefault(found["point"], []).append(found)
    ious = []
    for found in ours:
        candidates = by_point.get(found.point, [])
        assert candidates, f"Meta kept no mask for the point {found.point}"
        best = max(candidates, key=lambda f: balanced_iou(f["mask"], found.mask))
        ious.append(balanced_iou(best["mask"], found.mask))
        assert list(found.box) == best["box"].astype(int).tolist() or ious[-1] >= 0.999
    figures(
        f"everything {demo}: {len(ours)} masks (Meta {len(theirs)}) from {SETTINGS.points_per_side**2} points, "
        f"balanced IoU min {min(ious):.5f}"
    )
    assert min(ious) >= 0.99
