"""pyapp.postprocess: Meta-exact upsampling of the logits, and the candidates."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp import postprocess


def test_upsample_matches_pytorch_bilinear_align_corners_false():
    import torch  # installed by `bash tools/setup.sh --test` (the export dependencies)

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((3, 256, 256)) * 8).astype(np.float32)
    for width, height in ((1024, 683), (451, 300), (100, 77), (256, 256), (4000, 3)):
        ours = postprocess.upsample(logits, width, height)
        theirs = torch.nn.functional.interpolate(
            torch.from_numpy(logits)[None], size=(height, width), mode="bilinear", align_corners=False
        )[0].numpy()
        assert ours.shape == (3, height, width)
        np.testing.assert_allclose(ours, theirs, atol=5e-4)  # float32 rounding of the weights
        assert ((ours > 0) != (theirs > 0)).mean() < 1e-4


def test_thresholding_logits_not_masks_gives_smooth_edges():
    # A diagonal edge in logits: upsampled logits give a staircase of 1-pixel steps, not 4-pixel blocks.
    yy, xx = np.mgrid[0:256, 0:256]
    logits = (xx - yy + 0.5).astype(np.float32)
    mask = postprocess.to_mask(logits, 1024, 1024)
    first_true = mask.argmax(axis=1)
    assert np.abs(np.diff(first_true[10:-10])).max() <= 1


def test_a_mask_upsampled_only_where_it_can_be_true_is_the_whole_upsampled_and_thresholded():
    """to_mask upsamples only the window that the positive logits' sources reach: the same mask, pixel for pixel,
    as thresholding the whole, for objects anywhere (at the borders too), none, all, and every way of scaling."""
    rng = np.random.default_rng(1)
    fields = []
    for _ in range(40):
        logits = np.full((256, 256), -4.0, np.float32) + rng.standard_normal((256, 256)).astype(np.float32) * 0.1
        y, x = rng.integers(0, 256, 2)
        h, w = rng.integers(1, 60, 2)
        logits[y : y + h, x : x + w] = rng.standard_normal((len(logits[y : y + h]), len(logits[0, x : x + w]))) * 3
        fields.append(logits)
    corner = np.full((256, 256), -1.0, np.float32)
    corner[-1, -1] = 0.25  # one positive logit, in the last row and column
    fields += [corner, np.full((256, 256), -1.0, np.float32), np.full((256, 256), 2.0, np.float32)]
    edge = np.full((256, 256), -1e-30, np.float32)
    edge[100, 100] = 1e-30  # tiny values: no positive from rounding outside
    fields.append(edge)
    sizes = [(640, 427), (1024, 1024), (451, 300), (100, 77), (4000, 3), (3, 4000), (256, 256)]
    for index, logits in enumerate(fields):
        width, height = sizes[index % len(sizes)]
        want = postprocess.upsample(logits, width, height) > 0
        got = postprocess.to_mask(logits, width, height)
        assert got.shape == (height, width) and got.dtype == bool
        np.testing.assert_array_equal(got, want)
    assert not postprocess.to_mask(fields[-3], 640, 427).any()
    assert postprocess.to_mask(fields[-2], 640, 427).all()


def test_candidates_from_outputs_and_best():
    masks = np.zeros((1, 3, 256, 256), np.float32)
    candidates = postprocess.Candidates.from_outputs({"masks": masks, "iou_predictions": np.array([[0.2, 0.7, 0.5]])})
    assert candidates.best == 1 and candidates.low_res_logits.shape == (3, 256, 256)
    hires = postprocess.Candidates.from_outputs(
        {"masks": np.zeros((1, 3, 512, 512), np.float32), "iou_predictions": np.zeros((1, 3)), "low_res_masks": masks}
    )
    assert hires.logits.shape == (3, 512, 512) and hires.low_res_logits.shape == (3, 256, 256)
    with pytest.raises(ValueError):
        postprocess.Candidates.from_outputs({"masks": np.zeros((3, 256, 256)), "iou_predictions": np.zeros(3)})
