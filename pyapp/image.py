"""Photos in, encoder input out: EXIF orientation, any Pillow mode to RGB, SAM2's stretch and normalisation.

Pure Python (numpy + Pillow): tools/encode.py uses it in CPython, and the app uses the same code in Pyodide
to open a person's own photo, so the pixels the bundle was made from and the pixels shown agree.
Pillow's decompression-bomb guard (Image.MAX_IMAGE_PIXELS) is left on: an oversized photo is refused.
"""

from __future__ import annotations

import hashlib
import io
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


def open_photo(source: bytes | str | Path, name: str | None = None) -> Photo:
    """Read a photo from bytes or a path; apply EXIF orientation; convert any mode to RGB.

    Raises PhotoError for files Pillow cannot read, truncated files and decompression bombs.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else "the photo")
    if not data:
        raise PhotoError(f"{label} is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            source_format = image.format
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = to_rgb(upright)
    except Image.DecompressionBombError as error:
        raise PhotoError(f"{label} is too large to open safely ({error}); scale it down first") from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PhotoError(f"{label} is not a photo Pillow can read ({error}); "
                         "use a JPEG, PNG, WebP, TIFF or BMP file") from None
    if rgb.width < 1 or rgb.height < 1:
        raise PhotoError(f"{label} has no pixels")
    return Photo(rgb=rgb, sha256=hashlib.sha256(data).hexdigest(), source_format=source_format)


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
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c]), "F").resize(size, Image.BILINEAR))
              for c in range(3)]
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
