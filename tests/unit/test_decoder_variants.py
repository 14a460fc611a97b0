"""tools/decoder_variants.py: the balanced IoU that judges a fast decoder, and the refusal of one whose masks
drift, on the random-init SAM2.1 tiny decoder and a demo photo's bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from samtab_tools import decoder_variants as dv

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "site" / "demos" / "rocket-sam2.1-tiny-random"


def test_balanced_iou_is_one_for_equal_masks_and_low_for_a_shifted_mask_that_covers_most_of_the_photo():
    mask = np.ones((256, 256), dtype=bool)
    mask[100:140, 60:120] = False  # a hole: the foreground is most of the photo, as random-init masks are
    shifted = np.roll(mask, 4, axis=1)
    assert dv.balanced_iou(mask, mask) == 1.0
    assert dv.balanced_iou(np.zeros_like(mask), np.zeros_like(mask)) == 1.0
    # the foreground IoU flatters the shift (about 0.99); the background's catches it
    assert dv.balanced_iou(mask, shifted) < 0.9 < np.count_nonzero(mask & shifted) / np.count_nonzero(mask | shifted)
    assert dv.balanced_iou(mask, ~mask) == 0.0


def test_verdict_keeps_only_a_variant_whose_masks_hold_and_that_is_faster():
    assert dv.verdict(0.995, 1.3)[0]
    assert not dv.verdict(0.98, 3.0)[0]
    assert not dv.verdict(1.0, 1.1)[0]


def drifting(decoder: Path, out: Path) -> Path:
    """The decoder with its largest weight nudged by 10 % noise: a variant whose masks drift."""
    model = onnx.load(str(decoder))
    largest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(largest)
    noise = np.random.default_rng(0).normal(0, 0.1 * float(np.abs(weights).mean() + 1e-6), weights.shape)
    largest.CopyFrom(numpy_helper.from_array((weights + noise).astype(weights.dtype), largest.name))
    onnx.save(model, str(out))
    return out


def test_the_tool_refuses_a_variant_whose_masks_drift_and_scores_an_exact_copy_one(sam2_model, tmp_path, capsys):
    decoder = sam2_model / "decoder.onnx"
    photos = dv.load_photos([DEMO], decoder)
    sets = dv.prompt_sets(photos, 8)
    exact = tmp_path / "copy.onnx"
    exact.write_bytes(decoder.read_bytes())
    variants = [
        dv.Variant("fp32", decoder),
        dv.Variant("copy", exact),
        dv.Variant("drift", drifting(decoder, tmp_path / "drift.onnx")),
    ]
    reference, copy, drift = dv.measure(variants, photos, sets, threads=1, rounds=1)
    print(dv.table([reference, copy, drift], len(sets), len(photos), 1))
    assert copy.iou_min == 1.0
    assert drift.iou_min < dv.MIN_IOU
    assert not drift.kept and "drift" in drift.why
