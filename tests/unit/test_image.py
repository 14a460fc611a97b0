"""pyapp.image: photos of any kind become upright RGB, then SAM2's encoder input."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from pyapp import contract
from pyapp import image as images

ROOT = Path(__file__).resolve().parents[2]

# EXIF orientation → the transpose that makes the stored pixels upright (the EXIF specification's table).
UPRIGHT = {
    1: None,
    2: Image.FLIP_LEFT_RIGHT,
    3: Image.ROTATE_180,
    4: Image.FLIP_TOP_BOTTOM,
    5: Image.TRANSPOSE,
    6: Image.ROTATE_270,
    7: Image.TRANSVERSE,
    8: Image.ROTATE_90,
}


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
    # I;16 and I hold a 16-bit photo's 0..65535, F a float photo's 0..1: each full range becomes 0..255.
    ramp, scale = {
        "I;16": (np.linspace(0, 65535, 960).astype(np.uint16), 1 / 257),
        "I": (np.linspace(0, 65535, 960).astype(np.int32), 1 / 257),
        "F": (np.linspace(0, 1, 960).astype(np.float32), 255),
    }.get(mode, (None, None))
    source = marked().convert(mode) if ramp is None else Image.fromarray(ramp.reshape(24, 40))
    assert source.mode == mode
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I", "F") else "PNG"
    photo = images.open_photo(encoded(source, fmt))
    assert photo.rgb.mode == "RGB" and photo.rgb.size == (40, 24)
    pixels = np.asarray(photo.rgb).astype(int)
    if ramp is None:  # every pixel is opaque: what Pillow's own conversion shows
        np.testing.assert_array_equal(pixels, np.asarray(source.convert("RGB")))
    else:
        grey = pixels[..., 0]
        assert (grey == pixels[..., 1]).all() and (grey == pixels[..., 2]).all()
        assert grey.min() == 0 and grey.max() == 255  # not clipped to white, not crushed to black
        assert np.abs(grey - ramp.reshape(24, 40).astype(float) * scale).max() <= 0.5


def test_sixteen_bit_uses_the_full_range():
    ramp = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    photo = images.open_photo(encoded(Image.fromarray(ramp), "PNG"))
    grey = np.asarray(photo.rgb)[..., 0]
    assert grey.min() == 0 and grey.max() == 255  # not crushed to black
    assert np.abs(grey - ramp / 257).max() <= 0.5  # nor clipped to white from 255 up


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


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, not a photo", "not a photo Pillow can read"),
    ],
)
def test_bad_files_get_clear_errors(data, message):
    with pytest.raises(images.PhotoError, match=message):
        images.open_photo(data, name="holiday.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(fmt):
    rng = np.random.default_rng(1)
    data = encoded(Image.fromarray(rng.integers(0, 255, (300, 300, 3), np.uint8)), fmt)
    with pytest.raises(images.PhotoError, match="holiday.jpg"):
        images.open_photo(data[: len(data) // 2], name="holiday.jpg")


def blank_png(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A complete, valid greyscale PNG of black pixels, compressed a few rows at a time (the pixels are never
    held): 13,000×13,000 takes 20 KB at 1 bit a pixel, 165 KB at 8 bits."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze = zlib.compressobj(6)
    row = bytes(1 + (width * bit_depth + 7) // 8)  # filter byte 0, then the row's pixels
    batch = max(1, 4_000_000 // len(row))
    pixels = b"".join(
        [squeeze.compress(row * min(batch, height - top)) for top in range(0, height, batch)] + [squeeze.flush()]
    )
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class Decoding(Exception):
    """Raised instead of decoding: open_photo got past every size check."""


@pytest.fixture
def no_decoding(monkeypatch):
    """Image.load (the decode) raises Decoding: a photo of any size can be opened up to that point for free."""

    def load(self):
        raise Decoding(self.size)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def refusal(data: bytes, **options) -> str:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(images.PhotoError) as refused:
            images.open_photo(data, name="holiday.png", **options)
    assert not seen  # Pillow's warning does not leak out
    return str(refused.value)


def check_refusal(message: str, pixels: str, cap: int, whose: str = "samtab's") -> None:
    assert message.startswith(
        f"holiday.png is too large to open safely: {pixels} pixels, over {whose} cap of {cap:,}, "
    )
    for words in (
        "keeps memory in bounds",
        "bytes a pixel",
        "decompression bombs",
        f"scale it down first, to {cap:,} pixels or fewer",
    ):
        assert words in message, message


def test_a_photo_at_the_cap_opens_and_one_pixel_more_is_refused():
    photo = encoded(Image.fromarray(np.full((80, 100, 3), 77, np.uint8)))
    assert images.open_photo(photo, max_pixels=8000).rgb.getpixel((99, 79)) == (77, 77, 77)
    check_refusal(refusal(photo, max_pixels=7999), "100×80 = 8,000", 7999)


# Where the sizes sit: Pillow warns above MAX_IMAGE_PIXELS (89,478,485) and refuses above twice that.
PILLOW = Image.MAX_IMAGE_PIXELS
BAND = [  # (photo, width, height, refused by)
    ("in Pillow's warning band, under the cap", 9500, 10000, None),
    ("exactly the cap", 10000, 10000, None),
    ("one row over the cap", 10000, 10001, "samtab"),
    ("in Pillow's warning band, over the cap (the issue's 20 KB bomb)", 13000, 13000, "samtab"),
    ("over twice Pillow's limit", 13500, 13500, "Pillow"),
]


@pytest.mark.parametrize("width, height, refused_by", [case[1:] for case in BAND], ids=[case[0] for case in BAND])
def test_the_pixel_cap_holds_across_pillows_warning_band(no_decoding, width, height, refused_by):
    pixels = width * height
    assert (pixels <= contract.MAX_PHOTO_PIXELS) == (refused_by is None)
    assert PILLOW < pixels and (pixels > 2 * PILLOW) == (refused_by == "Pillow")
    photo = blank_png(width, height)
    if refused_by is None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(Decoding):
                images.open_photo(photo, name="holiday.png")
        assert not seen  # Pillow's warning band is ours to decide: no warning leaks out
        return
    message = refusal(photo)  # no Decoding: refused from the header
    check_refusal(
        message,
        f"{pixels:,}" if refused_by == "Pillow" else f"{width:,}×{height:,} = {pixels:,}",
        contract.MAX_PHOTO_PIXELS,
    )


@pytest.mark.parametrize(
    "width, height, max_pixels, refused_by",
    [
        (40, 40, 2000, None),  # in Pillow's warning band (1,000 to 2,000), under the cap
        (45, 40, 1700, "samtab"),  # in Pillow's warning band, over the cap
        (50, 50, 10_000, "Pillow"),  # over twice Pillow's limit: Pillow's guard is the second line
    ],
)
def test_pillows_own_guard_stays_a_second_line(monkeypatch, width, height, max_pixels, refused_by):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's limit, scaled down to decode cheaply
    photo = encoded(Image.new("RGB", (width, height), (200, 100, 50)))
    if refused_by is None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            opened = images.open_photo(photo, max_pixels=max_pixels)
        assert opened.rgb.size == (width, height) and opened.rgb.getpixel((0, 0)) == (200, 100, 50) and not seen
    elif refused_by == "samtab":
        check_refusal(refusal(photo, max_pixels=max_pixels), f"{width}×{height} = {width * height:,}", max_pixels)
    else:
        check_refusal(refusal(photo, max_pixels=max_pixels), f"{width * height:,}", 2000, whose="Pillow's")


MEASURE = """
import resource, sys
from pyapp import image as images

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

images.open_photo(sys.argv[2])  # Pillow's plugins load on first use
data = open(sys.argv[1], "rb").read()
before = peak()
try:
    images.open_photo(data, name="holiday.png")
except images.PhotoError as error:
    print(peak() - before)
    print(error)
"""


def test_a_photo_over_the_cap_is_refused_before_it_is_decoded(tmp_path, figures):
    """In a process of its own, so the peak memory is this photo's alone."""
    width = height = 13000  # in Pillow's warning band; 8 bits a pixel, so decoding takes 169 MB at least
    bomb, small = tmp_path / "bomb.png", tmp_path / "small.png"
    bomb.write_bytes(blank_png(width, height, bit_depth=8))
    small.write_bytes(encoded(marked()))
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(bomb), str(small)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout, result.stderr or "the photo was opened"
    grown, message = result.stdout.split("\n", 1)
    check_refusal(message.strip(), "13,000×13,000 = 169,000,000", contract.MAX_PHOTO_PIXELS)
    figures(
        f"a {bomb.stat().st_size / 1000:.0f} KB PNG of {width}×{height} 8-bit pixels is refused with the "
        f"peak memory {int(grown) / 1e6:.1f} MB higher (decoding it would take {width * height / 1e6:.0f} MB)"
    )
    assert int(grown) < width * height / 8


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
    assert column[: 1024 // 3 - 4].min() > 2.0 and column[1024 // 3 + 4 :].max() < -2.0


def test_preview_caps_the_long_edge_and_never_enlarges():
    assert images.preview(Image.new("RGB", (4000, 3000)), 2048).size == (2048, 1536)
    small = Image.new("RGB", (300, 200))
    assert images.preview(small, 2048) is small
