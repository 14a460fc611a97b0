"""pyapp.image: photos of any kind become upright RGB, then SAM2's encoder input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pyapp import contract
from pyapp import image as images

# EXIF orientation → the transpose that makes the stored pixels upright (the EXIF specification's table).
UPRIGHT = {1: None, 2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM,
           5: Image.TRANSPOSE, 6: Image.ROTATE_270, 7: Image.TRANSVERSE, 8: Image.ROTATE_90}


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def marked(width=40, height=24) -> Image.Image:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:4, :6] = (255, 0, 0)  # a red corner, so any rotation or flip shows
    pixels[-3:, :] = (0, 0, 255)
    return Image.fromarray(pixels, "RGB")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
    stored = marked()
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = images.open_photo(encoded(stored, exif=exif))
    expected = stored if UPRIGHT[orientation] is None else stored.transpose(UPRIGHT[orientation])
    assert photo.rgb.size == expected.size
    np.testing.assert_array_equal(np.asarray(photo.rgb), np.asarray(expected))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "P", "CMYK", "I;16", "1", "I", "F"])
def test_any_mode_becomes_rgb(mode):
    source = marked().convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
        (np.linspace(0, 65535 if mode == "I;16" else 1000, 40 * 24).reshape(24, 40)).astype(
            {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    assert source.mode == mode
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I", "F") else "PNG"
    photo = images.open_photo(encoded(source, fmt))
    assert photo.rgb.mode == "RGB" and photo.rgb.size == (40, 24)


def test_sixteen_bit_uses_the_full_range():
    ramp = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    photo = images.open_photo(encoded(Image.fromarray(ramp), "PNG"))
    grey = np.asarray(photo.rgb)[..., 0]
    assert grey.min() == 0 and grey.max() == 255  # not clipped to white, not crushed to black


def test_transparency_is_laid_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 4:, 3] = 255  # left half fully transparent red, right half opaque red
    photo = images.open_photo(encoded(Image.fromarray(rgba, "RGBA")))
    pixels = np.asarray(photo.rgb)
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[0, 7]) == (255, 0, 0)
    palette = Image.fromarray(rgba, "RGBA").convert("P")
    palette.info["transparency"] = 0
    assert images.open_photo(encoded(palette)).rgb.mode == "RGB"


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is a text file, not a photo", "not a photo Pillow can read"),
])
def test_bad_files_get_clear_errors(data, message):
    with pytest.raises(images.PhotoError, match=message):
        images.open_photo(data, name="holiday.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(fmt):
    rng = np.random.default_rng(1)
    data = encoded(Image.fromarray(rng.integers(0, 255, (300, 300, 3), np.uint8)), fmt)
    with pytest.raises(images.PhotoError, match="holiday.jpg"):
        images.open_photo(data[: len(data) // 2], name="holiday.jpg")


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the guard stays on; make a "bomb" cheaply
    with pytest.raises(images.PhotoError, match="too large to open safely"):
        images.open_photo(encoded(Image.new("RGB", (100, 100))))


def test_sha256_is_of_the_file_bytes():
    import hashlib

    data = encoded(marked())
    assert images.open_photo(data).sha256 == hashlib.sha256(data).hexdigest()


def test_encoder_input_stretches_and_normalises():
    rgb = Image.new("RGB", (300, 100), (124, 116, 104))  # the ImageNet mean, roughly
    x = images.encoder_input(rgb)
    assert x.shape == (1, 3, contract.IMAGE_SIZE, contract.IMAGE_SIZE) and x.dtype == np.float32
    expected = (np.array([124, 116, 104]) / 255 - np.array(contract.IMAGENET_MEAN)) / np.array(contract.IMAGENET_STD)
    np.testing.assert_allclose(x[0].mean(axis=(1, 2)), expected, atol=1e-5)
    # A stretch, not a pad: the left third of the photo fills the left third of the input.
    half = np.zeros((100, 300, 3), np.uint8)
    half[:, :100] = 255
    x = images.encoder_input(Image.fromarray(half))
    column = x[0, 0, 512]
    assert column[: 1024 // 3 - 4].min() > 2.0 and column[1024 // 3 + 4:].max() < -2.0


def test_preview_caps_the_long_edge_and_never_enlarges():
    assert images.preview(Image.new("RGB", (4000, 3000)), 2048).size == (2048, 1536)
    small = Image.new("RGB", (300, 200))
    assert images.preview(small, 2048) is small
