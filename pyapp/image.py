"""Photos in, encoder input out: EXIF orientation, any Pillow mode to RGB, SAM2's stretch and normalisation.

Pure Python (numpy + Pillow): tools/encode.py uses it in CPython, and the app uses the same code in Pyodide
to open a person's own photo, so the pixels the bundle was made from and the pixels shown agree.
A photo over contract.MAX_PHOTO_PIXELS (or a caller's lower cap) is refused from its header, before a pixel
is decoded. Pillow's own decompression-bomb guard (Image.MAX_IMAGE_PIXELS) stays on as a second line: it
refuses only above twice its limit (~179 MP) and merely warns between 1x and 2x, where our cap decides.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from . import contract


class PhotoError(ValueError):
    """The photo cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Photo:
    """A photo ready for the model: RGB, EXIF orientation applied."""

    rgb: Image.Image  # mode "RGB", upright
    sha256: str  # of the file's bytes, as the user has them: bundles record it to refuse other photos
    source_format: str | None  # "JPEG", "PNG", ... as Pillow read it

    @property
    def width(self) -> int:
        return self.rgb.width

    @property
    def height(self) -> int:
        return self.rgb.height


def open_photo(
    source: bytes | str | Path, name: str | None = None, *, max_pixels: int = contract.MAX_PHOTO_PIXELS
) -> Photo:
    """Read a photo from bytes or a path; apply EXIF orientation; convert any mode to RGB.

    Raises PhotoError for files Pillow cannot read, truncated files, and photos of more than `max_pixels`
    pixels (width × height), which are refused from the header alone, before anything is decoded: a 20 KB
    PNG can declare 13,000×13,000 pixels and cost gigabytes once decoded. A truncated photo is refused, never
    decoded in part: a bundle of a photo with a grey bottom would be silently wrong.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else "the photo")
    if not data:
        raise PhotoError(f"{label} is empty (0 bytes): there is no photo in it; copy it again from the original")
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x its limit; the cap below decides there, so the warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                source_format = image.format
                pixels = image.width * image.height
                if pixels > max_pixels:
                    raise PhotoError(too_large(label, pixels, max_pixels, size=image.size))
                image.load()
                if cut_short(data):
                    # Pillow decodes a PNG whose pixels are all there but whose end is cut off (and with it any
                    # chunk after them, such as its EXIF orientation), and any truncated file once someone sets
                    # ImageFile.LOAD_TRUNCATED_IMAGES: refuse them like any other truncated file.
                    raise EOFError("the file has no end marker")
                upright = ImageOps.exif_transpose(image)
                rgb = to_rgb(upright)
    except PhotoError:
        raise
    except Image.DecompressionBombError as error:
        raise PhotoError(pillow_too_large(label, error, max_pixels)) from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoError(unreadable(label, data, error)) from None
    if rgb.width < 1 or rgb.height < 1:
        raise PhotoError(f"{label} has no pixels")
    return Photo(rgb=rgb, sha256=hashlib.sha256(data).hexdigest(), source_format=source_format)


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC
SIGNATURES = {
    b"\xff\xd8": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def file_kind(data: bytes) -> str | None:
    """What the first bytes say the file is ("JPEG", "PNG", ...), whatever its name says; None if unknown."""
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "HEIC"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in SIGNATURES.items() if data.startswith(magic)), None)


def cut_short(data: bytes) -> bool:
    """A JPEG or PNG without its end marker was cut off (a JPEG's may also sit in its EXIF thumbnail, so its
    presence proves nothing, but its absence proves the file incomplete)."""
    kind = file_kind(data)
    return (kind == "JPEG" and b"\xff\xd9" not in data) or (kind == "PNG" and PNG_END not in data)


def unreadable(label: str, data: bytes, error: Exception) -> str:
    """Why Pillow could not read a file, in plain words, and what to do."""
    kind = file_kind(data)
    if isinstance(error, EOFError) or "truncated" in str(error).lower() or cut_short(data):
        return (
            f"{label} is cut short: the file ends before the photo does (an interrupted copy or "
            "download?); samtab does not encode part of a photo: copy it again from the original"
        )
    if kind == "HEIC":
        return f"{label} is a HEIC/HEIF photo (as iPhones take), which Pillow cannot read; convert it to JPEG first"
    if kind:
        reason = (
            "its header cannot be read" if isinstance(error, Image.UnidentifiedImageError) else f"Pillow says: {error}"
        )
        return (
            f"{label} is a damaged or cut-short {kind} file ({reason}); copy it again from the original, "
            "or open it in an image editor and save it again"
        )
    head = data[:512]
    text = head.isascii() and all(c >= 32 or c in b"\t\n\r" for c in head)
    what = "it holds text, not an image" if text else "its bytes are not a JPEG, PNG, WebP, TIFF, BMP or GIF image"
    return (
        f"{label} is not a photo Pillow can read ({what}, whatever its name says); "
        "use a JPEG, PNG, WebP, TIFF or BMP file"
    )


# Peak memory of open_photo + encoder_input, measured on a 20 MP JPEG: the decoded photo, its RGB copy and
# the float32 planes of the resize.
ENCODE_BYTES_PER_PIXEL = 30


def too_large(
    label: str, pixels: int, cap: int, *, size: tuple[int, int] | None = None, whose: str = "samtab's"
) -> str:
    """Why a photo of `pixels` pixels is refused, and what to do."""
    count = f"{size[0]:,}×{size[1]:,} = {pixels:,} pixels" if size else f"{pixels:,} pixels"
    cost = pixels * ENCODE_BYTES_PER_PIXEL
    memory = f"{cost / 1e9:.1f} GB" if cost >= 1e9 else f"{cost / 1e6:.1f} MB"
    return (
        f"{label} is too large to open safely: {count}, over {whose} cap of {cap:,}, which keeps memory in "
        f"bounds (encoding takes about {ENCODE_BYTES_PER_PIXEL} bytes a pixel: {memory} for this photo) and "
        "guards against decompression bombs, small files that declare huge images; scale it down first, "
        f"to {cap:,} pixels or fewer"
    )


def pillow_too_large(label: str, error: Image.DecompressionBombError, max_pixels: int) -> str:
    """Pillow's refusal (above twice its limit, while opening, before our cap is checked), told like ours: our
    cap if the photo exceeds it too, else Pillow's limit (someone lowered Image.MAX_IMAGE_PIXELS)."""
    sizes = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(error))
    if not sizes:
        return f"{label} is too large to open safely (Pillow says: {error}); scale it down first"
    pixels, limit = int(sizes[1]), int(sizes[2])
    if pixels > max_pixels:
        return too_large(label, pixels, max_pixels)
    return too_large(label, pixels, limit, whose="Pillow's")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB. Transparent pixels are laid on white, as an image viewer shows them."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float greyscale: scale the full range to 8 bits rather than clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and values.max(initial=0) > 255):
            values = values / 257.0 if values.max(initial=0) <= 65535 else values / values.max() * 255
        elif mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255
        grey = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK (Pillow's naive conversion), YCbCr, LAB, HSV


def encoder_input(rgb: Image.Image) -> np.ndarray:
    """SAM2's preprocessing: stretch to 1024×1024 (no aspect kept, no padding), [0, 1], ImageNet-normalise.

    Returns float32 (1, 3, 1024, 1024). Meta resizes the float tensor bilinearly with antialiasing; Pillow's
    BILINEAR on a float ("F") channel is the same filter (torchvision's antialiased resize follows Pillow's),
    computed in float like Meta's rather than on rounded 8-bit values.
    """
    size = (contract.IMAGE_SIZE, contract.IMAGE_SIZE)
    pixels = np.asarray(rgb, dtype=np.float32) / 255.0
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c]), "F").resize(size, Image.BILINEAR))
        for c in range(3)
    ]
    stacked = np.stack(planes)
    mean = np.asarray(contract.IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(contract.IMAGENET_STD, dtype=np.float32)[:, None, None]
    return ((stacked - mean) / std)[None].astype(np.float32)


def preview(rgb: Image.Image, max_edge: int) -> Image.Image:
    """The photo for display, long edge capped at max_edge (never enlarged)."""
    scale = max_edge / max(rgb.size)
    if scale >= 1:
        return rgb
    return rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.LANCZOS)
