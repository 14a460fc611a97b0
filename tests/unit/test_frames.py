"""pyapp.frames: what is kept from one frame to the next, and that keeping it changes no pixel."""

from __future__ import annotations

import numpy as np

from pyapp import composite, postprocess
from pyapp.frames import Frames, fit_view
from pyapp.prompt import Objects, Point


def answered(step, radius):
    """A decoded step: discs of half, once and one and a half `radius` cells in the middle of the logits."""
    yy, xx = np.mgrid[0:256, 0:256]
    distance = np.hypot(xx - 128, yy - 128)
    stack = np.stack([radius * scale - distance for scale in (0.5, 1.0, 1.5)]).astype(np.float32)
    step.candidates = postprocess.Candidates(stack, np.array([0.2, 0.9, 0.5], np.float32), stack)
    step.chosen = 1


def scene():
    objects = Objects()
    for radius in (30, 60):
        objects.new()
        objects.edit(lambda prompt: prompt.with_point(Point(200, 160)))  # the middle
        answered(objects.current.current, radius)
    photo = np.random.default_rng(0).integers(0, 255, (160, 200, 4), np.uint8)
    photo[..., 3] = 255
    return objects, Frames(photo, (400, 320))


def test_a_kept_frame_is_the_frame_made_afresh():
    objects, frames = scene()
    first = frames.render(objects, "overlay", 0.5)
    again = frames.render(objects, "overlay", 0.5)  # from what was kept
    np.testing.assert_array_equal(first, again)
    fresh = Frames(frames.shown, frames.image_size).render(objects, "overlay", 0.5)
    np.testing.assert_array_equal(first, fresh)
    objects.choose(2)  # the current object changes: only its part is made again
    changed = frames.render(objects, "overlay", 0.5)
    np.testing.assert_array_equal(changed, Frames(frames.shown, frames.image_size).render(objects, "overlay", 0.5))
    assert (changed != first).any()


def test_each_mask_is_upsampled_once_and_the_views_paint_it():
    objects, frames = scene()
    step = objects.current.current
    assert frames.mask(step) is frames.mask(step)
    mask = frames.mask(step)
    assert mask.shape == (160, 200) and mask.sum() > 0
    cutout = frames.render(objects, "cutout", 0.5)
    both = composite.union([frames.mask(o.current) for o in objects.items], (160, 200))
    shown = cutout[..., 3] > 0
    assert (shown == both).all()  # (the click's marker is inside the object)
    erased = frames.render(objects, "erase", 0.5)
    assert ((erased[..., 3] > 0) == ~both).mean() > 0.99  # but the marker, opaque in the hole


def test_the_view_is_the_photo_scaled_to_a_long_edge_of_1024():
    assert fit_view(4032, 3024) == (1024, 768) and fit_view(640, 480) == (640, 480) and fit_view(1, 5000) == (1, 1024)


def test_the_segment_everything_preview_lays_each_new_mask_once_in_place():
    from types import SimpleNamespace

    from pyapp.frames import Preview
    from pyapp.prompt import OBJECT_COLOURS

    view = np.full((40, 60, 4), 100, np.uint8)
    view[..., 3] = 255
    preview = Preview(view, first_colour=1, opacity=0.5)
    square = np.zeros((40, 60), bool)
    square[10:20, 5:25] = True
    preview.add(SimpleNamespace(box=(5, 10, 24, 19), mask=square))
    inside, outside = preview.pixels[15, 15], preview.pixels[30, 40]
    assert not np.array_equal(inside, view[15, 15]) and np.array_equal(outside, view[30, 40])
    assert tuple(preview.pixels[10, 5, :3]) == OBJECT_COLOURS[1]  # the outline, in the next object's colour
    assert preview.changed == 1 and np.array_equal(view[15, 15], [100, 100, 100, 255])  # the view is not changed
    laid = preview.pixels.copy()
    nearly = square.copy()
    nearly[12:14, 5:7] = False  # the same thing, found from another grid point
    preview.add(SimpleNamespace(box=(5, 10, 24, 19), mask=nearly))
    assert preview.changed == 1 and np.array_equal(preview.pixels, laid)
    other = np.zeros((40, 60), bool)
    other[25:35, 30:50] = True
    preview.add(SimpleNamespace(box=(30, 25, 49, 34), mask=other))
    assert preview.changed == 2 and tuple(preview.pixels[25, 30, :3]) == OBJECT_COLOURS[2]
