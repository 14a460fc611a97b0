"""pyapp.brush: strokes rasterised at any size, applied over masks and logits alike (strokes on objects:
test_app.py and test_session.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pyapp import brush
from pyapp.brush import Stroke


def test_a_hard_stroke_covers_what_lies_within_its_radius_of_its_path():
    stroke = Stroke(((10.0, 20.0), (50.0, 20.0)), radius=5, size=(80, 40))
    rows, cols, values = brush.coverage(stroke, 80, 40)
    covered = np.zeros((40, 80), bool)
    covered[rows, cols] = values > 0
    yy, xx = np.mgrid[0:40, 0:80]
    distance = np.where(
        xx < 10, np.hypot(xx - 10, yy - 20), np.where(xx > 50, np.hypot(xx - 50, yy - 20), abs(yy - 20))
    )
    assert np.array_equal(covered, distance <= 5)
    dab = Stroke(((3.0, 3.0),), radius=2.5, size=(80, 40))  # one point: a disc
    rows, cols, values = brush.coverage(dab, 80, 40)
    assert values.sum() == np.count_nonzero(np.hypot(*np.mgrid[-3:4, -3:4]) <= 2.5)


def test_softness_falls_off_linearly_from_hardness_times_radius_to_the_radius():
    stroke = Stroke(((50.0, 50.0),), radius=20, hardness=0.5, size=(101, 101))
    rows, cols, values = brush.coverage(stroke, 101, 101)
    full = np.zeros((101, 101), np.float32)
    full[rows, cols] = values
    assert full[50, 50] == 1 and full[50, 60] == 1  # within 10 px: fully painted
    assert full[50, 65] == pytest.approx(0.5)  # half way between 10 and 20
    assert full[50, 70] == 0 and full[50, 75] == 0


def test_masks_and_logits_agree_whatever_the_strokes():
    rng = np.random.default_rng(0)
    for _ in range(30):
        logits = rng.normal(0, 3, (48, 64)).astype(np.float32)
        strokes = [
            Stroke(
                tuple(map(tuple, rng.uniform(-10, 70, (rng.integers(1, 6), 2)))),
                radius=float(rng.uniform(1, 12)),
                hardness=float(rng.uniform(0, 1)),
                add=bool(rng.integers(0, 2)),
                size=(64, 48),
            )
            for _ in range(rng.integers(1, 5))
        ]
        assert np.array_equal(brush.apply_to_logits(logits, strokes) > 0, brush.apply_to_mask(logits > 0, strokes))


def test_a_stroke_drawn_on_a_smaller_view_of_the_photo_is_the_same_stroke():
    stroke = Stroke(((100.0, 80.0), (300.0, 200.0), (350.0, 90.0)), radius=18, hardness=0.6, size=(400, 300))
    full = brush.apply_to_mask(np.zeros((300, 400), bool), [stroke])
    half = brush.apply_to_mask(np.zeros((150, 200), bool), [stroke])
    shrunk = np.asarray(Image.fromarray(full).resize((200, 150), Image.BILINEAR)) > 0  # (Pillow's bool resize)
    assert np.count_nonzero(half & shrunk) / np.count_nonzero(half | shrunk) >= 0.95


@pytest.mark.parametrize(
    "kwargs",
    [
        {"points": ()},
        {"radius": 0},
        {"hardness": 1.5},
        {"size": (0, 10)},
        {"points": ((1.0, 1.0),) * (brush.MAX_STROKE_POINTS + 1)},
    ],
)
def test_a_stroke_that_makes_no_sense_is_refused(kwargs):
    args = {"points": ((1.0, 1.0),), "radius": 3.0, "size": (10, 10)} | kwargs
    with pytest.raises(ValueError):
        Stroke(**args)
