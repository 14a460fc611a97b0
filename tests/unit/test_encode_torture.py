"""tools/encode.py under photo torture: broken, hostile and odd photos, kills mid-write, files in the way.

Every bad photo gets a message that names it and says what is wrong and what to do, and leaves nothing in
--out; every odd but good photo encodes upright with a sensible preview; a run killed at any moment leaves
only complete bundles and previews (and hidden temporaries the next run removes); nothing is replaced
without --force.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyapp import contract
from pyapp import image as images
from pyapp.bundle import BundleError, read_bundle, write_bundle

ROOT = Path(__file__).resolve().parents[2]
ENCODE = [sys.executable, str(ROOT / "tools" / "encode.py")]
PREVIEW_EDGE = 2048  # encode.py's default --preview-size
# write_atomic's hidden .NAME.HOST.PID.XXXXXXXX.partial
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9-]+\.\d+\.[a-z0-9_]{8}\.partial$")

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


def run(*args, timeout=300):
    return subprocess.run([*ENCODE, *map(str, args), "--quiet"], capture_output=True, text=True, timeout=timeout)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_by_hand(width: int, height: int, bit_depth: int, colour_type: int, rows, *, compress=zlib.compress) -> bytes:
    """A PNG written directly (Pillow cannot write 16-bit RGB or RGBA): each row is filter 0 + its bytes."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    pixels = compress(b"".join(b"\x00" + bytes(row) for row in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def noise(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8))


def smooth(width: int, height: int) -> Image.Image:
    """Gradients: JPEG keeps them well and they compress to little, even at 10000 pixels."""
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(
        np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), np.full_like(x, 90)], -1).astype(
            np.uint8
        )
    )


def marked(width=48, height=32) -> Image.Image:
    pixels = np.full((height, width, 3), 200, np.uint8)
    pixels[:8, :12] = (255, 0, 0)  # a red corner, so any rotation or flip shows
    pixels[-6:, :] = (0, 0, 255)  # and a blue bottom band
    return Image.fromarray(pixels, "RGB")


def with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def preview_size(width: int, height: int, edge: int = PREVIEW_EDGE) -> tuple[int, int]:
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def model_name(model: Path) -> str:
    return json.loads((model / "model.json").read_text())["name"]


def check_bundle(path: Path, photo: Path, size: tuple[int, int], model: Path) -> None:
    bundle = read_bundle(path.read_bytes())
    assert (bundle.width, bundle.height) == size
    assert bundle.image_sha256 == sha256(photo)
    assert bundle.model_name == model_name(model)
    assert set(bundle.tensors) == set(contract.EMBEDDING_SHAPES)


def check_preview(path: Path) -> Image.Image:
    """A complete image file: Pillow's structural check, then a full decode (which refuses truncation)."""
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def everything_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- 1. bad photos: a clear message each, and nothing written --------------------------------------------


def jpeg_parts() -> tuple[bytes, int]:
    data = encoded(smooth(320, 240), "JPEG", quality=90)
    return data, data.index(b"\xff\xda")  # start of scan: the headers end, the compressed pixels begin


def jpeg_cut(where: str) -> bytes:
    data, scan = jpeg_parts()
    return {
        "after its first marker": data[:2],
        "mid-header": data[: scan // 2],
        "just after the scan header": data[: scan + 20],
        "mid-scan": data[: (scan + len(data)) // 2],
        "without its end marker": data[:-2],
    }[where]


def png_cut(where: str) -> bytes:
    data = encoded(noise(200, 150, seed=3), "PNG")
    idat = data.index(b"IDAT")
    return {
        "after its signature": data[:8],
        "mid-header": data[:20],
        "mid-pixels": data[: (idat + len(data)) // 2],
        "without its end chunk": data[:-12],
        "without the end of its last chunk": data[:-14],
    }[where]


def png_bomb() -> bytes:
    """A complete, valid 30000×30000 1-bit PNG: 900 megapixels in about 110 KB."""
    squeeze = zlib.compressobj(9)
    row = bytes(1 + 30000 // 8)  # filter byte + 3750 bytes of black pixels
    return png_by_hand(
        30000,
        30000,
        1,
        0,
        [],
        compress=lambda _: b"".join([squeeze.compress(row * 1000) for _ in range(30)] + [squeeze.flush()]),
    )


def band_bomb() -> bytes:
    """A complete, valid 13000×13000 1-bit PNG of about 20 KB: 169 megapixels, inside the band (1x to 2x its
    limit) where Pillow only warns, and over samtab's cap; it costs ~5 GB to encode."""
    squeeze = zlib.compressobj(9)
    row = bytes(1 + (13000 + 7) // 8)
    return png_by_hand(
        13000,
        13000,
        1,
        0,
        [],
        compress=lambda _: b"".join([squeeze.compress(row * 1000) for _ in range(13)] + [squeeze.flush()]),
    )


def jpeg_bomb() -> bytes:
    """A tiny JPEG whose frame header claims 30000×30000 pixels (a few hundred bytes)."""
    data = encoded(Image.new("RGB", (16, 16), (40, 80, 120)), "JPEG")
    frame = data.index(b"\xff\xc0")
    return data[: frame + 5] + struct.pack(">HH", 30000, 30000) + data[frame + 9 :]


CUT_SHORT = [
    "is cut short",
    "the file ends before the photo does",
    "samtab does not encode part of a photo",
    "copy it again from the original",
]
TOO_LARGE = [
    "is too large to open safely",
    "over samtab's cap of 100,000,000",
    "keeps memory in bounds",
    "decompression bombs",
    "scale it down first, to 100,000,000 pixels or fewer",
]
BAD = {
    "empty.jpg": (lambda: b"", ["is empty (0 bytes)", "copy it again from the original"]),
    **{
        f"jpeg cut {where}.jpg": (lambda where=where: jpeg_cut(where), CUT_SHORT)
        for where in (
            "after its first marker",
            "mid-header",
            "just after the scan header",
            "mid-scan",
            "without its end marker",
        )
    },
    **{
        f"png cut {where}.png": (lambda where=where: png_cut(where), CUT_SHORT)
        for where in (
            "after its signature",
            "mid-header",
            "mid-pixels",
            "without its end chunk",
            "without the end of its last chunk",
        )
    },
    "notes.jpg": (
        lambda: b"shopping: eggs, milk\nthis is a text file, not a photo\n",
        [
            "is not a photo Pillow can read",
            "it holds text, not an image",
            "whatever its name says",
            "use a JPEG, PNG, WebP, TIFF or BMP file",
        ],
    ),
    "document.png": (
        lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 4,
        [
            "is not a photo Pillow can read",
            "its bytes are not a JPEG, PNG, WebP, TIFF, BMP or GIF image",
            "use a JPEG, PNG, WebP, TIFF or BMP file",
        ],
    ),
    "iphone.jpg": (
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
        ["is a HEIC/HEIF photo", "Pillow cannot read", "convert it to JPEG first"],
    ),
    "damaged.gif": (
        lambda: b"GIF89a" + b"\x10\x00\x10\x00" + bytes(5),
        ["is a damaged or cut-short GIF file", "copy it again from the original", "save it again"],
    ),
    "bomb.png": (png_bomb, [*TOO_LARGE, ": 900,000,000 pixels"]),
    "bomb.jpg": (jpeg_bomb, [*TOO_LARGE, ": 900,000,000 pixels"]),
    "band.png": (band_bomb, [*TOO_LARGE, ": 13,000×13,000 = 169,000,000 pixels"]),
}


def test_the_bad_photos_are_what_they_claim_to_be():
    data, scan = jpeg_parts()
    assert data[:2] == b"\xff\xd8" and data.endswith(b"\xff\xd9")
    assert 2 < len(jpeg_cut("mid-header")) < scan < len(jpeg_cut("just after the scan header"))
    assert len(jpeg_cut("just after the scan header")) < len(jpeg_cut("mid-scan")) < len(data) - 2
    whole = encoded(noise(200, 150, seed=3), "PNG")
    assert whole.endswith(chunk(b"IEND", b""))
    assert png_cut("without its end chunk") == whole[: whole.index(b"IEND") - 4]  # the pixels complete, no end
    assert whole.index(b"IDAT") < len(png_cut("mid-pixels")) < len(png_cut("without the end of its last chunk"))
    bomb = png_bomb()
    assert struct.unpack(">II", bomb[16:24]) == (30000, 30000) and len(bomb) < 150_000
    stream, size = zlib.decompressobj(), 0
    pixels = bomb[bomb.index(b"IDAT") + 4 : -16]
    for start in range(0, len(pixels), 4096):
        size += len(stream.decompress(pixels[start : start + 4096]))
    assert stream.eof and size == 30000 * (1 + 30000 // 8)  # a complete, valid PNG of 900 megapixels
    band = band_bomb()
    assert struct.unpack(">II", band[16:24]) == (13000, 13000) and len(band) < 25_000
    assert Image.MAX_IMAGE_PIXELS < 13000 * 13000 < 2 * Image.MAX_IMAGE_PIXELS  # Pillow alone only warns
    stream = zlib.decompressobj()
    pixels = band[band.index(b"IDAT") + 4 : -16]
    size = sum(len(stream.decompress(pixels[start : start + 4096])) for start in range(0, len(pixels), 4096))
    assert stream.eof and size == 13000 * (1 + (13000 + 7) // 8)
    bomb = jpeg_bomb()
    frame = bomb.index(b"\xff\xc0")
    assert struct.unpack(">HH", bomb[frame + 5 : frame + 9]) == (30000, 30000) and len(bomb) < 1000


@pytest.mark.parametrize("name", BAD)
def test_a_bad_photo_gets_a_clear_message_and_leaves_nothing(baseline, tmp_path, name):
    make, expected = BAD[name]
    source = tmp_path / name
    source.write_bytes(make())
    out = tmp_path / "out"
    result = run(source, "--model", baseline, "--out", out)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("encode: FAILED")]
    assert line.startswith(f"encode: FAILED {name}: {name} ")  # names the file
    for words in expected:
        assert words in line, line
    assert "0 encoded, 0 skipped, 1 failed" in result.stdout
    assert everything_in(out) == []  # no bundle, no preview, no temporary


# --- 2. odd but good photos: each encodes upright, with a sensible preview --------------------------------


def grey16() -> bytes:
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    image = Image.fromarray(np.tile(ramp, (16, 1)))
    assert image.mode == "I;16"
    return encoded(image, "PNG")


def rgb16(alpha: bool) -> bytes:
    ramp = np.linspace(0, 65535, 256).round().astype(">u2")
    planes = [ramp, ramp[::-1], np.full(256, 0x8000)]
    rows = []
    for y in range(16):
        opacity = [np.full(256, 65535 if y < 8 else 0)] if alpha else []
        rows.append(np.stack(planes + opacity, -1).astype(">u2").tobytes())  # PNG samples are big-endian
    return png_by_hand(256, 16, 16, 6 if alpha else 2, rows)


CMYK_PATCHES = [
    ((255, 0, 0, 0), (0, 255, 255)),
    ((0, 255, 0, 0), (255, 0, 255)),
    ((0, 0, 255, 0), (255, 255, 0)),
    ((0, 0, 0, 255), (0, 0, 0)),
    ((0, 0, 0, 0), (255, 255, 255)),
    ((0, 128, 255, 0), (255, 127, 0)),
]


def cmyk() -> bytes:
    image = Image.new("CMYK", (32 * len(CMYK_PATCHES), 32))
    for i, (ink, _) in enumerate(CMYK_PATCHES):
        image.paste(ink, (32 * i, 0, 32 * i + 32, 32))
    return encoded(image, "JPEG", quality=95)


PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
PALETTE_ALPHA = [0, 255, 128, 255]


def palette(fmt: str) -> bytes:
    image = Image.new("P", (16 * len(PALETTE), 16))
    image.putpalette([v for colour in PALETTE for v in colour])
    image.putdata([x // 16 for _ in range(16) for x in range(16 * len(PALETTE))])
    if fmt == "GIF":  # GIF has one transparent index, no partial transparency
        return encoded(image, "GIF", transparency=0)
    return encoded(image, "PNG", transparency=bytes(PALETTE_ALPHA))  # a tRNS chunk with an alpha per entry


def on_white(colour, alpha: int) -> np.ndarray:
    return np.asarray(colour) * alpha / 255 + 255 * (1 - alpha / 255)


def half_transparent(mode: str) -> bytes:
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[..., :3] = (200, 30, 60)
    pixels[:, 8:, 3] = 255  # left half transparent, right half opaque
    image = Image.fromarray(pixels, "RGBA")
    return encoded(image if mode == "RGBA" else image.convert("LA"), "PNG")


def oriented(fmt: str, orientation: int) -> bytes:
    return encoded(marked(), fmt, exif=with_orientation(orientation), **({"quality": 95} if fmt == "JPEG" else {}))


def check_grey16(shown: np.ndarray, _source: bytes):
    expected = np.linspace(0, 65535, 256) / 257  # the whole 16-bit range onto the 8-bit one
    assert np.abs(shown[..., 0] - expected).max() <= 1
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 0] == shown[..., 2]).all()
    assert abs(int(shown[0, 128, 0]) - 128) <= 1  # not clipped to white above 255


def check_rgb16(shown: np.ndarray, _source: bytes, alpha: bool = False):
    expected = np.linspace(0, 65535, 256) / 257
    top = shown[:8].astype(float)
    assert np.abs(top[..., 0] - expected).max() <= 1 and np.abs(top[..., 1] - expected[::-1]).max() <= 1
    assert np.abs(top[..., 2] - 0x8000 / 257).max() <= 1
    if alpha:
        assert (shown[8:] == 255).all()  # the transparent half is laid on white


def check_cmyk(shown: np.ndarray, _source: bytes):
    for i, (ink, colour) in enumerate(CMYK_PATCHES):
        centre = shown[12:20, 32 * i + 12 : 32 * i + 20].reshape(-1, 3).mean(axis=0)
        assert np.abs(centre - colour).max() <= 12, (ink, centre, colour)


def check_palette(shown: np.ndarray, _source: bytes):
    # pyapp.image.to_rgb: "Transparent pixels are laid on white, as an image viewer shows them."
    for i, (colour, alpha) in enumerate(zip(PALETTE, PALETTE_ALPHA)):
        assert np.abs(shown[:, 16 * i : 16 * i + 16] - on_white(colour, alpha)).max() <= 1, (colour, alpha)


def check_gif(shown: np.ndarray, _source: bytes):
    for i, colour in enumerate(PALETTE):
        centre = shown[4:12, 16 * i + 4 : 16 * i + 12].reshape(-1, 3).mean(axis=0)
        assert np.abs(centre - on_white(colour, 0 if i == 0 else 255)).max() <= 10  # a JPEG preview


def check_half_transparent(grey: bool):
    def check(shown: np.ndarray, _source: bytes):
        opaque = np.asarray(Image.new("RGB", (1, 1), (200, 30, 60)).convert("L" if grey else "RGB").convert("RGB"))
        assert (shown[:, :8] == 255).all()
        assert (shown[:, 8:] == opaque[0, 0]).all()

    return check


def check_oriented(orientation: int, fmt: str):
    def check(shown: np.ndarray, source: bytes):
        stored = marked() if fmt == "PNG" else Image.open(io.BytesIO(source)).convert("RGB")  # as decoded
        upright = stored if UPRIGHT[orientation] is None else stored.transpose(UPRIGHT[orientation])
        opened = images.open_photo(source).rgb
        np.testing.assert_array_equal(np.asarray(opened), np.asarray(upright))  # the EXIF table, independently
        if fmt == "PNG":
            np.testing.assert_array_equal(shown, np.asarray(opened))  # a PNG preview is the very pixels
        else:
            assert np.abs(shown.astype(int) - np.asarray(opened, int)).mean() < 3
        # The red corner ends where the EXIF table puts the stored top-left corner.
        red = np.argwhere((shown[..., 0] > 200) & (shown[..., 1] < 60) & (shown[..., 2] < 60))
        corner = np.zeros(stored.size[::-1], bool)
        corner[:8, :12] = True
        mask = Image.fromarray(corner)
        mask = mask if UPRIGHT[orientation] is None else mask.transpose(UPRIGHT[orientation])
        expected = np.argwhere(np.asarray(mask))
        assert np.abs(red.mean(axis=0) - expected.mean(axis=0)).max() < 1.5

    return check


def check_one_pixel(colour, tolerance):
    def check(shown: np.ndarray, _source: bytes):
        assert np.abs(shown[0, 0].astype(int) - colour).max() <= tolerance

    return check


def check_long(shown: np.ndarray, source: bytes, tolerance: float = 0.0):
    expected = np.asarray(images.preview(images.open_photo(source).rgb, PREVIEW_EDGE), int)
    assert np.abs(shown.astype(int) - expected).mean() <= tolerance


GOOD = {  # name: (the file's bytes, its upright size, a check of the preview's pixels)
    "grey16.png": (grey16, (256, 16), check_grey16),
    "rgb16.png": (lambda: rgb16(alpha=False), (256, 16), check_rgb16),
    "rgba16.png": (lambda: rgb16(alpha=True), (256, 16), lambda s, b: check_rgb16(s, b, alpha=True)),
    "cmyk.jpg": (cmyk, (32 * len(CMYK_PATCHES), 32), check_cmyk),
    "palette-trns.png": (lambda: palette("PNG"), (16 * len(PALETTE), 16), check_palette),
    "palette-trns.gif": (lambda: palette("GIF"), (16 * len(PALETTE), 16), check_gif),
    "rgba.png": (lambda: half_transparent("RGBA"), (16, 16), check_half_transparent(grey=False)),
    "la.png": (lambda: half_transparent("LA"), (16, 16), check_half_transparent(grey=True)),
    **{
        f"orientation{o}.{fmt.lower().replace('jpeg', 'jpg')}": (
            lambda o=o, fmt=fmt: oriented(fmt, o),
            (48, 32) if o < 5 else (32, 48),
            check_oriented(o, fmt),
        )
        for o in range(1, 9)
        for fmt in ("PNG", "JPEG")
    },
    "one-pixel.png": (
        lambda: encoded(Image.new("RGB", (1, 1), (12, 200, 99)), "PNG"),
        (1, 1),
        check_one_pixel((12, 200, 99), 0),
    ),
    "one-pixel.jpg": (
        lambda: encoded(Image.new("RGB", (1, 1), (12, 200, 99)), "JPEG", quality=95),
        (1, 1),
        check_one_pixel((12, 200, 99), 12),
    ),
    "wide.jpg": (
        lambda: encoded(smooth(10000, 200), "JPEG", quality=90),
        (10000, 200),
        lambda s, b: check_long(s, b, tolerance=2),
    ),
    "tall.png": (lambda: encoded(smooth(200, 10000), "PNG"), (200, 10000), check_long),
}


@pytest.fixture(scope="module")
def good_run(baseline, tmp_path_factory):
    """All the odd photos, encoded in one run (a folder given on the command line)."""
    folder = tmp_path_factory.mktemp("odd") / "photos"
    folder.mkdir()
    for name, (make, _, _) in GOOD.items():
        (folder / name).write_bytes(make())
    out = folder.parent / "out"
    return run(folder, "--model", baseline, "--out", out), folder, out


def test_all_odd_photos_encode(good_run):
    result, _, out = good_run
    assert result.returncode == 0, result.stderr
    assert f"{len(GOOD)} encoded, 0 skipped, 0 failed" in result.stdout
    assert not [name for name in everything_in(out) if name.startswith(".")]


@pytest.mark.parametrize("name", GOOD)
def test_an_odd_photo_encodes_upright_with_a_sensible_preview(baseline, good_run, name):
    _, folder, out = good_run
    _, size, check = GOOD[name]
    source = folder / name
    check_bundle(out / f"{name}.msgpack", source, size, baseline)
    suffix = ".png" if name.endswith(".png") else ".jpg"  # a PNG's preview stays lossless
    shown = check_preview(out / f"{name}.preview{suffix}")
    assert shown.size == preview_size(*size)
    check(np.asarray(shown), source.read_bytes())


# --- 3. a folder with one bad photo among good ones -------------------------------------------------------


def test_one_bad_photo_in_a_folder_is_named_and_the_good_ones_encode(baseline, tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    good = {
        "a-beach.jpg": encoded(noise(120, 80, 1), "JPEG"),
        "b-hills.png": encoded(noise(80, 120, 2), "PNG"),
        "d-town.webp": encoded(noise(64, 64, 3), "WEBP", lossless=True),
        "e-dusk.jpg": encoded(marked(), "JPEG", exif=with_orientation(8)),
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    (folder / "c-harbour.jpg").write_bytes(jpeg_cut("mid-scan"))
    out = tmp_path / "out"
    result = run(folder, "--model", baseline, "--out", out)
    assert result.returncode == 1
    assert "encode: FAILED c-harbour.jpg: c-harbour.jpg is cut short" in result.stderr
    assert result.stderr.count("FAILED") == 1 and "Traceback" not in result.stderr
    assert f"4 encoded, 0 skipped, 1 failed -> {out}" in result.stdout
    sizes = {"a-beach.jpg": (120, 80), "b-hills.png": (80, 120), "d-town.webp": (64, 64), "e-dusk.jpg": (32, 48)}
    for name, size in sizes.items():
        check_bundle(out / f"{name}.msgpack", folder / name, size, baseline)
        suffix = ".png" if name.endswith(".png") else ".jpg"
        assert check_preview(out / f"{name}.preview{suffix}").size == size
    assert not [name for name in everything_in(out) if "harbour" in name or name.startswith(".")]
    again = run(folder, "--model", baseline, "--out", out)
    assert again.returncode == 1 and "0 encoded, 4 skipped, 1 failed" in again.stdout


# --- 4. killed mid-write: only complete files under their names, and the next run finishes ----------------

KILL_PHOTOS = {"k1.jpg": ("JPEG", 1), "k2.png": ("PNG", 2), "k3.jpg": ("JPEG", 3)}
KILL_SIZE = (480, 360)


def check_after_a_kill(out: Path, folder: Path, model: Path) -> tuple[set[str], list[str]]:
    """Every bundle and preview under its own name is complete; return the photos done and the temporaries."""
    done, temporaries = set(), []
    for name in everything_in(out):
        if name.startswith("."):
            assert TEMPORARY.match(name), f"an unexpected hidden file: {name}"
            temporaries.append(name)
        elif name.endswith(".msgpack"):
            photo = name.removesuffix(".msgpack")
            check_bundle(out / name, folder / photo, KILL_SIZE, model)
            done.add(photo)
        else:
            photo, _, suffix = name.partition(".preview")
            assert photo in KILL_PHOTOS and suffix == (".png" if photo.endswith(".png") else ".jpg"), name
            assert check_preview(out / name).size == KILL_SIZE
    for photo in done:  # a bundle is written last: its preview is already there
        assert any(n.startswith(f"{photo}.preview") for n in everything_in(out)), photo
    return done, temporaries


def run_and_kill(command: list[str], out: Path, plan: tuple) -> bool:
    """Run encode.py into `out` and SIGKILL it when the plan says; False if it finished first."""
    process = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if plan[0] == "at":  # ("at", seconds after the start)
        try:
            process.wait(plan[1])
        except subprocess.TimeoutExpired:
            pass
    else:  # ("bundle" or "preview", what the temporary's name starts with, seconds to wait once it appears)
        wanted = f".{plan[1]}"
        while process.poll() is None and not any(
            n.startswith(wanted) and n.endswith(".partial") for n in (os.listdir(out) if out.exists() else [])
        ):
            time.sleep(0.0002)
        time.sleep(plan[2])
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return killed


def test_a_run_killed_at_any_moment_leaves_no_partial_file(baseline, tmp_path, figures):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, (fmt, seed) in KILL_PHOTOS.items():
        (folder / name).write_bytes(encoded(noise(*KILL_SIZE, seed), fmt))
    command = [*ENCODE, str(folder), "--model", str(baseline), "--quiet"]
    durations = []
    for attempt in range(2):  # the second run is warm, like the runs to be killed
        started = time.monotonic()
        whole_run = subprocess.run([*command, "--out", str(tmp_path / f"whole{attempt}")], capture_output=True)
        assert whole_run.returncode == 0, whole_run.stderr
        durations.append(time.monotonic() - started)
    whole = min(durations)

    rng = random.Random(20240611)
    # Eight kills at moments stepped across a whole run (start-up, encoding and writing alike); nine the moment
    # a given temporary appears: each photo's preview (killed at once: it is written in a few ms) and each
    # photo's bundle, twice (8 MB, fsynced: killed 0-4 ms later).
    plans = [("at", whole * (0.05 + 0.8 * i / 7)) for i in range(8)]
    for photo in KILL_PHOTOS:
        plans += [("preview", f"{photo}.preview", 0.0)]
        plans += [("bundle", f"{photo}.msgpack", rng.uniform(0, 0.004)) for _ in range(2)]
    tally = {
        "kills": 0,
        "finished first": 0,
        "during a bundle write": 0,
        "during a preview write": 0,
        "during the --out check": 0,
        "bundles left": 0,
    }
    for i, plan in enumerate(plans):
        out = tmp_path / f"out{i}"
        for _attempt in range(3):  # a run that finished before its kill is run again, killed sooner
            shutil.rmtree(out, ignore_errors=True)
            if run_and_kill(command, out, plan):
                tally["kills"] += 1
                break
            tally["finished first"] += 1
            assert check_after_a_kill(out, folder, baseline) == (set(KILL_PHOTOS), [])  # a finished run
            plan = ("at", plan[1] * 0.6) if plan[0] == "at" else plan  # the machine is faster than when timed

        done, temporaries = check_after_a_kill(out, folder, baseline)
        tally["bundles left"] += len(done)
        for name in temporaries:
            target = TEMPORARY.match(name)["target"]
            tally[
                "during a bundle write"
                if target.endswith(".msgpack")
                else "during a preview write"
                if ".preview." in target
                else "during the --out check"
            ] += 1
        before = {name: (out / f"{name}.msgpack").read_bytes() for name in done}

        resumed = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert f"{len(KILL_PHOTOS) - len(done)} encoded, {len(done)} skipped, 0 failed" in resumed.stdout
        done_now, temporaries_now = check_after_a_kill(out, folder, baseline)
        assert done_now == set(KILL_PHOTOS) and temporaries_now == []  # finished; the leftovers removed
        assert all((out / f"{name}.msgpack").read_bytes() == data for name, data in before.items())
        shutil.rmtree(out)
    figures(f"kill test: {len(plans)} moments to kill at, a whole run takes {whole:.2f} s: {tally}")
    assert tally["kills"] >= 15
    assert tally["during a bundle write"] >= 3  # it does catch bundles half-written


# --- 5. nothing is replaced without --force; --out that cannot be used -----------------------------------


def in_the_way(kind: str, photo: Path, out: Path, model: Path) -> Path:
    """Put something at the path encode.py would write for `photo`; return that path."""
    out.mkdir()
    bundle, preview = out / f"{photo.name}.msgpack", out / f"{photo.name}.preview.png"
    if kind == "a bundle of another photo":
        other = photo.parent / "other" / photo.name
        other.parent.mkdir()
        other.write_bytes(encoded(noise(96, 64, 99), "PNG"))
        assert run(other, "--model", model, "--out", out).returncode == 0
        (out / preview.name).unlink()  # only the bundle is in the way
        return bundle
    if kind == "a bundle from another model":
        zeros = {name: np.zeros(shape, np.float32) for name, shape in contract.EMBEDDING_SHAPES.items()}
        bundle.write_bytes(
            write_bundle(zeros, width=96, height=64, image_sha256=sha256(photo), model_name="another model")
        )
        return bundle
    if kind == "a corrupt file":
        bundle.write_bytes(b"\x85\xa6format\xa6samtab" + bytes(100))
        return bundle
    preview.write_bytes(encoded(noise(96, 64, 7), "PNG"))  # "another photo's preview"
    return preview


@pytest.mark.parametrize(
    "kind, message",
    [
        ("a bundle of another photo", "exists and it was made from a different photo; pass --force to replace it"),
        (
            "a bundle from another model",
            "exists and it was made with the model 'another model'; pass --force to replace it",
        ),
        ("a corrupt file", "exists and it is not a valid bundle ("),
        ("another photo's preview", "exists and is not this photo's preview; pass --force to replace it"),
    ],
)
def test_nothing_is_replaced_without_force(baseline, tmp_path, kind, message):
    photo = tmp_path / "a.png"
    photo.write_bytes(encoded(noise(96, 64, 1), "PNG"))
    out = tmp_path / "out"
    target = in_the_way(kind, photo, out, baseline)
    original, listing = target.read_bytes(), everything_in(out)
    if kind == "a corrupt file":
        with pytest.raises(BundleError):
            read_bundle(original)

    result = run(photo, "--model", baseline, "--out", out)
    assert result.returncode == 1
    assert f"encode: FAILED a.png: {target} {message}" in result.stderr and "pass --force" in result.stderr
    assert target.read_bytes() == original and everything_in(out) == listing  # untouched, nothing added

    forced = run(photo, "--model", baseline, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    check_bundle(out / "a.png.msgpack", photo, (96, 64), baseline)
    shown = check_preview(out / "a.png.preview.png")
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(images.open_photo(photo).rgb))
    assert everything_in(out) == ["a.png.msgpack", "a.png.preview.png"]


def test_this_photos_own_preview_is_not_in_the_way(baseline, tmp_path):
    """A run killed between the preview and the bundle leaves this photo's preview: the next run goes on."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(encoded(noise(96, 64, 1), "JPEG"))
    out = tmp_path / "out"
    assert run(photo, "--model", baseline, "--out", out).returncode == 0
    (out / "a.jpg.msgpack").unlink()
    result = run(photo, "--model", baseline, "--out", out)
    assert result.returncode == 0 and "1 encoded, 0 skipped, 0 failed" in result.stdout
    check_bundle(out / "a.jpg.msgpack", photo, (96, 64), baseline)


def without_root_override() -> list[str]:
    """Root writes into a read-only folder anyway; without CAP_DAC_OVERRIDE it cannot, as anyone else."""
    if os.geteuid() != 0:
        return []
    assert shutil.which("setpriv"), "running as root, this test needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("inside", ["", "new-folder"])
def test_a_read_only_out_folder_gets_a_clear_message(baseline, tmp_path, inside):
    photo = tmp_path / "a.png"
    photo.write_bytes(encoded(noise(96, 64, 1), "PNG"))
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / ".a.png.msgpack.abcd1234.partial").write_bytes(b"left by a killed run")
    out = locked / inside if inside else locked
    locked.chmod(0o555)
    try:
        result = subprocess.run(
            [*without_root_override(), *ENCODE, str(photo), "--model", str(baseline), "--out", str(out), "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        f"encode: error: --out {out}: cannot write there (Permission denied); choose a folder you can write "
        "to, or make this one writable"
    ) in result.stderr
    assert everything_in(locked) == [".a.png.msgpack.abcd1234.partial"]


def test_out_pointing_to_a_file_gets_a_clear_message(baseline, tmp_path):
    photo = tmp_path / "a.png"
    photo.write_bytes(encoded(noise(96, 64, 1), "PNG"))
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = run(photo, "--model", baseline, "--out", existing)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"encode: error: --out {existing} is a file, not a folder; name a folder" in result.stderr
    assert existing.read_text() == "keep me"
    below = run(photo, "--model", baseline, "--out", existing / "sub")
    assert below.returncode == 2 and "Traceback" not in below.stderr
    assert f"--out {existing / 'sub'}: cannot write there (Not a directory)" in below.stderr
