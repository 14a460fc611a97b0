"""pyapp.coords: the one mapping between the canvas, the photo and the model."""

from __future__ import annotations

import pytest

from pyapp.coords import Mapping, OutsideImage, device_to_css


def test_display_to_image_to_model_round_trip():
    mapping = Mapping(width=640, height=427, display_width=320.0, display_height=213.5)
    x, y = mapping.display_to_image(160.0, 100.0)
    assert (x, y) == pytest.approx((319.5, 199.5))
    assert mapping.image_to_display(x, y) == pytest.approx((160.0, 100.0))
    mx, my = mapping.image_to_model(x, y)
    assert (mx, my) == pytest.approx((x * 1024 / 640, y * 1024 / 427))  # a stretch, per axis
    assert mapping.model_to_image(mx, my) == pytest.approx((x, y))


def test_pixel_centres_are_integers():
    mapping = Mapping.for_image(10, 10)
    assert mapping.display_to_image(0.5, 0.5) == (0.0, 0.0)
    assert mapping.display_to_image(9.5, 3.5) == (9.0, 3.0)


@pytest.mark.parametrize("x, y", [(-0.01, 5), (5, -1), (100, 5), (5, 80), (100.0, 79.999)])
def test_points_outside_the_photo_are_refused(x, y):
    mapping = Mapping(width=200, height=160, display_width=100, display_height=80)
    with pytest.raises(OutsideImage):
        mapping.display_to_image(x, y)


def test_image_points_outside_are_refused_for_the_model():
    mapping = Mapping.for_image(100, 50)
    with pytest.raises(OutsideImage):
        mapping.image_to_model(100, 10)
    with pytest.raises(OutsideImage):
        mapping.image_to_model(10, -0.6)


def test_device_pixels_to_css():
    assert device_to_css(200, 100, 2.0) == (100, 50)
