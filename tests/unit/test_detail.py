"""A zoomed-in view drawn from the photo's own pixels (issue 16): pyapp.frames.Frames.detail and what it is made
of, each checked against the whole photo-size answer it is a part of (the masks the exports hold)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pyapp import brush, composite
from pyapp.brush import Stroke
from pyapp.postprocess import Candidates, upsample, upsample_at
from pyapp.prompt import Point, Prompt, Step

from .test_app import DiscDecoder, decode_all, opened_app


@pytest.mark.parametrize("size", [(4000, 3000), (1024, 683), (200, 100), (256, 256), (517, 3001)])
def test_a_part_of_the_upsampled_logits_is_bit_for_bit_that_part_of_the_whole(size):
    rng = np.random.default_rng(size[0])
    logits = rng.normal(0, 3, (256, 256)).astype(np.float32)
    width, height = size
    whole = upsample(logits, width, height)
    rows = np.sort(rng.choice(height, 60))
    cols = np.arange(width // 3, width // 2)
    assert np.array_equal(upsample_at(logits, width, height, rows, cols), whole[rows][:, cols])


def test_strokes_applied_to_a_part_are_those_pixels_of_the_strokes_applied_to_the_whole():
    rng = np.random.default_rng(1)
    width, height = 400, 300
    for _ in range(40):
        strokes = [
            Stroke(
                tuple(map(tuple, rng.uniform(-10, 410, (rng.integers(1, 6), 2)))),
                radius=float(rng.uniform(1, 40)),
                hardness=float(rng.uniform(0, 1)),
                add=bool(rng.integers(0, 2)),
                size=(width, height),
            )
            for _ in range(3)
        ]
        mask = rng.random((height, width)) > 0.5
        rows, cols = np.sort(rng.choice(height, 80, replace=False)), np.arange(50, 330, 3)
        part = brush.apply_to_mask(mask[rows][:, cols], strokes, grid=(width, height, rows, cols))
        assert np.array_equal(part, brush.apply_to_mask(mask, strokes)[rows][:, cols])


def blob_with_holes_and_specks() -> Candidates:
    """Logits of a disc with three holes and two specks beside it (smooth, as a decoder's are)."""
    yy, xx = np.mgrid[0:256, 0:256] + 0.5
    logits = (60 - np.hypot(xx - 128, yy - 128)) / 4
    for cx, cy, r in [(110, 120, 6), (150, 140, 3), (128, 100, 2)]:
        logits = np.minimum(logits, (np.hypot(xx - cx, yy - cy) - r) / 2)
    for cx, cy, r in [(30, 30, 3), (220, 200, 2)]:
        logits = np.maximum(logits, (r - np.hypot(xx - cx, yy - cy)) / 2)
    planes = np.stack([logits] * 3).astype(np.float32)
    return Candidates(planes, np.array([0.1, 0.9, 0.3], np.float32), planes)


def test_a_steps_logits_at_a_part_of_a_large_photo_are_those_of_its_whole_mask():
    width, height = 4000, 3000
    stroke = Stroke(((1500.0, 1400.0), (2300.0, 1700.0)), radius=60, hardness=0.5, size=(width, height))
    candidates = blob_with_holes_and_specks()
    step = Step(Prompt((Point(10, 10, True),)), candidates=candidates, chosen=1, strokes=(stroke,))
    rows, cols = np.arange(1000, 2000), np.arange(1200, 2600, 2)
    part = step.logits_at(width, height, rows, cols, (1024, 768))
    assert np.array_equal(part, step.logits(width, height)[rows][:, cols])
    # A solid subject's holes and specks are found at the view's size, and agree with the whole's here.
    solid = Step(Prompt((Point(10, 10, True),), solid=True), candidates=candidates, chosen=1)
    whole = solid.mask(width, height)
    assert not np.array_equal(whole, candidates.mask(1, width, height))  # there is something to fill and drop
    everywhere = np.arange(height), np.arange(width)
    assert np.array_equal(solid.logits_at(width, height, *everywhere, (1024, 768)) > 0, whole)


@pytest.fixture
def app():
    return opened_app()


def export_mask(opened) -> np.ndarray:
    """The current object's mask as the mask export writes it (photo size)."""
    _, _, data = opened.export_mask()
    return np.asarray(Image.open(io.BytesIO(data))) > 0


def test_a_detail_at_full_resolution_shows_the_exported_mask_pixel_for_pixel(app):
    decoder = DiscDecoder()
    width, height = app.view_size
    app.click(width * 0.4, height * 0.5, width, height)
    decode_all(app, decoder)
    app.click(width * 0.45, height * 0.55, width, height, include=False)
    decode_all(app, decoder)
    app.stroke([(width * 0.3, height * 0.3), (width * 0.6, height * 0.35)], 12, width, height, hardness=0.4)
    mask = export_mask(app)
    region = (300.0, 250.0, 700.5, 560.2)  # edges: the detail covers whole pixels 300-700 × 250-560
    for view, expect in [("cutout", mask), ("erase", ~mask)]:
        app.set_view(view)
        drawn, pixels = app.detail(region, 2000, 2000)  # more screen than pixels: drawn at the region's size
        assert drawn == (300, 250, 701, 561)
        assert pixels.shape == (311, 401, 4)
        assert np.array_equal(pixels[..., 3] == 255, expect[250:561, 300:701])
    app.set_view("overlay", opacity=0.5)
    _, pixels = app.detail(region, 2000, 2000)
    photo = np.asarray(app._photo)[250:561, 300:701]
    colour = app.segmenter.objects.current.colour
    assert np.array_equal(pixels, composite.overlay(photo, [(mask[250:561, 300:701], colour)], 0.5))


def test_a_detail_on_fewer_screen_pixels_samples_the_exported_mask(app):
    decoder = DiscDecoder()
    width, height = app.view_size
    app.click(width * 0.5, height * 0.5, width, height)
    decode_all(app, decoder)
    mask = export_mask(app)
    app.set_view("cutout")
    drawn, pixels = app.detail((0, 0, 1200, 800), 900, 600)
    assert drawn == (0, 0, 1200, 800) and pixels.shape == (600, 900, 4)
    rows, cols = ((np.arange(600) + 0.5) * 800 / 600).astype(int), ((np.arange(900) + 0.5) * 1200 / 900).astype(int)
    assert np.array_equal(pixels[..., 3] == 255, mask[rows][:, cols])


def test_a_detail_off_the_photo_is_refused(app):
    with pytest.raises(ValueError, match="misses the photo"):
        app.detail((1300, 0, 1400, 100), 100, 100)
