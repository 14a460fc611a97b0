"""pyapp.composite: overlays, cutouts and erasures, pixel by pixel."""

from __future__ import annotations

import numpy as np

from pyapp import composite


def test_overlay_tints_inside_outlines_the_edge_and_leaves_the_rest(scene):
    photo, mask = scene
    out = composite.overlay(photo, [(mask, (255, 0, 0))], opacity=0.5)
    assert out.shape == (40, 60, 4) and (out[..., 3] == 255).all()
    assert tuple(out[20, 30, :3]) == (177, 50, 50)  # halfway to red
    assert tuple(out[10, 30, :3]) == (255, 0, 0)  # the outline
    assert tuple(out[0, 0, :3]) == (100, 100, 100)
    assert (composite.overlay(photo, [(mask, (255, 0, 0))], opacity=0, outline=False)[..., :3] == photo).all()


def test_cutout_and_erase_are_complements(scene):
    photo, mask = scene
    cut, erased = composite.cutout(photo, [mask]), composite.erase(photo, [mask])
    assert ((cut[..., 3] == 255) == mask).all() and ((erased[..., 3] == 255) == ~mask).all()
    assert (cut[..., :3] == photo).all()


def test_edges_are_the_pixels_with_a_neighbour_outside_for_any_shape():
    rng = np.random.default_rng(5)
    for height, width in [(1, 1), (1, 9), (9, 1), (7, 8), (8, 7), (15, 17), (40, 63), (33, 1024)]:
        for density in (0.2, 0.6, 0.95, 1.0):
            mask = rng.random((height, width)) < density
            # The definition, one neighbour at a time (a neighbour beyond the frame does not count).
            inner = mask.copy()
            inner[1:, :] &= mask[:-1, :]
            inner[:-1, :] &= mask[1:, :]
            inner[:, 1:] &= mask[:, :-1]
            inner[:, :-1] &= mask[:, 1:]
            np.testing.assert_array_equal(composite.edges(mask), mask & ~inner, err_msg=f"{height}x{width}")


def test_a_masks_bounds_are_the_rows_and_columns_that_hold_its_pixels():
    rng = np.random.default_rng(7)
    for height, width in [(1, 1), (1, 9), (9, 1), (40, 63), (427, 640)]:
        for density in (0.0, 0.001, 0.3, 1.0):
            whole = rng.random((height + 2, width + 3)) < density
            for mask in (whole[1:-1, 2:-1], np.ascontiguousarray(whole[1:-1, 2:-1])):  # a view, and its copy
                rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
                expected = None if rows.size == 0 else (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                assert composite.mask_bounds(mask) == expected, (height, width, density)
                np.testing.assert_array_equal(composite.columns(mask).astype(bool), mask.any(axis=0))


def test_edges_of_a_square():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    assert composite.edges(mask).sum() == 6 * 4 - 4


def test_soft_alpha_fades_an_edge_over_the_feather_width():
    """A straight edge at x = 20 (whatever the logits' slope): alpha rises from 0 to 255 over about `feather`
    pixels centred on it, half-way at the edge; below 2 pixels, and with feather 0, the hard edge."""
    x = np.arange(60, dtype=np.float32)
    for slope in (0.05, 1.0, 30.0):
        logits = np.tile((x - 19.5) * slope, (5, 1))
        alpha = composite.soft_alpha([logits], 16.0, logits.shape)[2].astype(int)
        assert alpha[:11].max() == 0 and alpha[29:].min() == 255  # 8 px either side, with the blur's rounding
        assert (np.diff(alpha[10:30]) >= 0).all() and 100 <= alpha[19] <= 155 and 100 <= alpha[20] <= 155
        hard = (x >= 20) * 255
        np.testing.assert_array_equal(composite.soft_alpha([logits], 0, logits.shape)[2], hard)
        np.testing.assert_array_equal(composite.soft_alpha([logits], 1.5, logits.shape)[2], hard)
    photo = np.zeros((5, 60, 3), np.uint8)
    full = np.ones((5, 60), np.float32)  # an object filling the photo: its border is not an edge
    assert (composite.soft_alpha([full], 16.0, (5, 60)) == 255).all()
    out = composite.cutout(photo, [], composite.soft_alpha([np.tile(x - 19.5, (5, 1))], 16.0, (5, 60)))
    assert out.shape == (5, 60, 4) and out[0, 19, 3] not in (0, 255)
