"""Pixels for the three views: overlay, cutout and erase. Inputs and outputs are numpy arrays:

    photo   (H, W, 4) uint8 RGBA with opaque alpha (`rgba(photo_rgb)` makes it once per photo), at the size
            being drawn: the display size, or the photo's own size for exports. Callers resize the photo
            once and upsample each mask's logits to that size (pyapp.postprocess), so the photo is never
            resampled twice
    mask    (H, W) bool
    result  (H, W, 4) uint8 RGBA, ready for a canvas's ImageData or a PNG

This runs on every click, in Pyodide too, where numpy has no SIMD and strided access is slow: pixels are
handled as whole uint32 words (one per RGBA pixel) and only within each mask's bounding box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_LITTLE = np.little_endian


def rgba(photo: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 4) uint8 with opaque alpha; RGBA input is returned as it is."""
    if photo.ndim == 3 and photo.shape[2] == 4:
        return photo
    out = np.empty(photo.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = photo
    out[..., 3] = 255
    return out


def _words(pixels: np.ndarray) -> np.ndarray:
    """A (H, W) uint32 view of contiguous (H, W, 4) uint8 pixels."""
    return pixels.view(np.uint32).reshape(pixels.shape[:2])


def _word(colour: Sequence[int], alpha: int = 255) -> np.uint32:
    r, g, b = (int(c) for c in colour)
    return np.uint32(r | g << 8 | b << 16 | alpha << 24) if _LITTLE else np.uint32(r << 24 | g << 16 | b << 8 | alpha)


_ALPHA = _word((0, 0, 0), 255)
_RGB = np.uint32(~int(_ALPHA) & 0xFFFFFFFF)


_BYTE = np.uint64(8)
_LAST_BYTE = np.uint64(56)


def edges(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch a pixel outside it (4-neighbourhood; the frame's border is not an
    outside): its visible outline.

    Eight pixels at a time, as the bytes of 64-bit words (in Pyodide a bool array's neighbours compared one
    byte at a time cost 6 ms per 1024-px frame, this 1 ms): the mask with its border rows and columns
    repeated, rows padded to whole words; a word's left and right neighbours are itself shifted by a byte,
    with the byte carried in from the next word."""
    height, width = mask.shape
    stride = (width + 2 + 7) // 8 * 8
    padded = np.empty((height + 2, stride), np.uint8)
    padded[1:-1, 1 : width + 1] = mask
    padded[1:-1, 0] = mask[:, 0]
    padded[1:-1, width + 1 :] = mask[:, -1:]
    padded[0], padded[-1] = padded[1], padded[-2]
    words = padded.view(np.uint64)  # byte k of word j is column 8j + k
    later, earlier = (np.left_shift, np.right_shift) if _LITTLE else (np.right_shift, np.left_shift)
    centre = words[1:-1]
    inner = centre & words[:-2] & words[2:]
    left = later(centre, _BYTE)  # each byte's left neighbour, moved into its place
    left[:, 1:] |= earlier(centre[:, :-1], _LAST_BYTE)
    right = earlier(centre, _BYTE)
    right[:, :-1] |= later(centre[:, 1:], _LAST_BYTE)
    inner &= left
    inner &= right
    return (centre & ~inner).view(np.uint8)[:, 1 : width + 1].view(bool)


def mask_bounds(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns that hold the mask's (H, W) pixels (None if it has none). The columns by OR-ing
    the rows' bytes within the rows found: a bool array's any(axis=0) runs along the strided axis, which in
    Pyodide takes several times longer (0.37 against 0.12 ms for 640x427)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(columns(mask[rows[0] : rows[-1] + 1]))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def columns(mask: np.ndarray) -> np.ndarray:
    """mask.any(axis=0) of an (H, W) bool array, as W bytes (non-zero: the column holds a pixel of it)."""
    return np.bitwise_or.reduce(np.asarray(mask, dtype=bool).view(np.uint8), axis=0)


_LANES = np.uint32(0x00FF00FF)


def _blend(words: np.ndarray, colour: np.uint32, weight: int) -> np.ndarray:
    """(pixel·(256 − weight) + colour·weight) / 256 for every channel at once: two channels per 16-bit
    lane of a uint32 (R and B, then G and A), so no lane overflows (255·256 < 2¹⁶)."""
    keep = np.uint32(256 - weight)
    tint_rb = (colour & _LANES) * np.uint32(weight)
    tint_ga = ((colour >> np.uint32(8)) & _LANES) * np.uint32(weight)
    rb = (((words & _LANES) * keep + tint_rb) >> np.uint32(8)) & _LANES
    ga = ((((words >> np.uint32(8)) & _LANES) * keep + tint_ga) >> np.uint32(8)) & _LANES
    return rb | (ga << np.uint32(8))


def tint(photo: np.ndarray, colour: tuple[int, int, int], opacity: float) -> np.ndarray:
    """The whole photo tinted with `colour` at `opacity`: what a mask of that colour shows through."""
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be from 0 to 1, not {opacity}")
    base = np.ascontiguousarray(rgba(photo))
    out = np.empty_like(base)
    np.copyto(_words(out), _blend(_words(base), _word(colour), int(round(opacity * 256))))
    return out


def paint(
    pixels: np.ndarray, tinted: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], outline: bool = True
) -> np.ndarray:
    """Lay one mask on `pixels` in place: its pixels from `tinted` (see tint), and a solid outline."""
    if mask.shape != pixels.shape[:2]:
        raise ValueError(f"a mask of {mask.shape} does not fit a photo of {pixels.shape[:2]}")
    bounds = mask_bounds(mask)
    if bounds is None:
        return pixels
    words = _words(pixels)
    np.copyto(words[bounds], _words(tinted)[bounds], where=mask[bounds])
    if outline:
        # The outline within the bounds, plus a pixel of margin so the edge test sees the outside.
        rows = slice(max(bounds[0].start - 1, 0), bounds[0].stop + 1)
        cols = slice(max(bounds[1].start - 1, 0), bounds[1].stop + 1)
        np.copyto(words[rows, cols], _word(colour), where=edges(mask[rows, cols]))
    return pixels


def overlay(
    photo: np.ndarray,
    layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    opacity: float = 0.5,
    outline: bool = True,
) -> np.ndarray:
    """Each (mask, colour) laid over the photo at `opacity`, with a solid outline so small or pale objects
    still show."""
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be from 0 to 1, not {opacity}")
    out = rgba(photo).copy()
    for mask, colour in layers:
        bounds = mask_bounds(mask) if mask.shape == out.shape[:2] else None
        if bounds is None:
            paint(out, out, mask, colour, outline)  # checks the shape; an empty mask paints nothing
            continue
        region = np.ascontiguousarray(out[bounds])
        tinted = np.zeros_like(out)
        tinted[bounds] = tint(region, colour, opacity)
        paint(out, tinted, mask, colour, outline)
    return out


def union(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    combined = np.zeros(shape, dtype=bool)
    for mask in masks:
        combined |= mask
    return combined


def _keep(photo: np.ndarray, opaque: np.ndarray) -> np.ndarray:
    """The photo, transparent wherever `opaque` is false."""
    source = _words(np.ascontiguousarray(rgba(photo)))
    out = np.empty(photo.shape[:2] + (4,), dtype=np.uint8)
    np.copyto(_words(out), np.where(opaque, source, source & _RGB))
    return out


def cutout(photo: np.ndarray, masks: Sequence[np.ndarray], alpha: np.ndarray | None = None) -> np.ndarray:
    """The selected objects alone, on a transparent background; with `alpha` ((H, W) uint8, soft_alpha's),
    its opacity instead of the masks' hard edges."""
    if alpha is None:
        return _keep(photo, union(masks, photo.shape[:2]))
    out = np.array(rgba(photo), dtype=np.uint8)
    out[..., 3] = alpha
    return out


def soft_alpha(logits: Sequence[np.ndarray], feather: float, shape: tuple[int, int]) -> np.ndarray:
    """An alpha matte (H, W) uint8 from the objects' logits at (H, W): their masks (logits > 0, united), each
    edge faded over about `feather` pixels, half inside and half outside (two box blurs of feather / 2: a
    smooth ramp across a straight edge, corners rounded; the photo's border is not an edge). Below 2 pixels:
    the hard edge."""
    alpha = np.zeros(shape, dtype=np.float32)
    for plane in logits:
        alpha = np.maximum(alpha, np.asarray(plane) > 0)
    radius = int(round(feather / 4))
    if radius >= 1:
        for _ in range(2):
            alpha = _box_blur(_box_blur(alpha, radius, 0), radius, 1)
    return np.round(alpha * 255).astype(np.uint8)


def _box_blur(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """The mean over 2 * radius + 1 values along `axis` (0 or 1), the edge values repeated beyond the ends."""
    if axis == 1:
        return _box_blur(values.T, radius, 0).T
    padded = np.concatenate([np.repeat(values[:1], radius + 1, axis=0), values, np.repeat(values[-1:], radius, axis=0)])
    sums = np.cumsum(padded, axis=0, dtype=np.float32)  # at most a few thousand values of 0-1: float32 holds
    window = 2 * radius + 1
    return (sums[window:] - sums[:-window]) * np.float32(1 / window)


def erase(photo: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """The photo with the selected objects removed (transparent where they were)."""
    return _keep(photo, ~union(masks, photo.shape[:2]))


INCLUDE_COLOUR, EXCLUDE_COLOUR, BOX_COLOUR = (34, 197, 94), (239, 68, 68), (37, 99, 235)


def markers(
    pixels: np.ndarray,
    points: Sequence[tuple[float, float, bool]],
    box: tuple[float, ...] | None = None,
    radius: int = 5,
) -> np.ndarray:
    """Draw the prompt on RGBA pixels in place: each point (x, y, include) in pixel coordinates of
    `pixels` as a dot (green include, red exclude) ringed in white, and the box as a rectangle."""
    words = _words(pixels)
    height, width = words.shape
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, x1 = max(0, min(x0, width - 1)), max(0, min(x1, width - 1))
        y0, y1 = max(0, min(y0, height - 1)), max(0, min(y1, height - 1))
        colour = _word(BOX_COLOUR)
        for thickness in range(2):
            words[min(y0 + thickness, y1), x0 : x1 + 1] = colour
            words[max(y1 - thickness, y0), x0 : x1 + 1] = colour
            words[y0 : y1 + 1, min(x0 + thickness, x1)] = colour
            words[y0 : y1 + 1, max(x1 - thickness, x0)] = colour
    ring = radius + 2
    yy, xx = np.mgrid[-ring : ring + 1, -ring : ring + 1]
    distance = np.hypot(xx, yy)
    for x, y, include in points:
        cx, cy = int(round(x)), int(round(y))
        top, left = cy - ring, cx - ring
        rows = slice(max(0, top), min(height, cy + ring + 1))
        cols = slice(max(0, left), min(width, cx + ring + 1))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        local = distance[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
        region = words[rows, cols]
        region[local <= ring] = _word((255, 255, 255))
        region[local <= radius] = _word(INCLUDE_COLOUR if include else EXCLUDE_COLOUR)
    return pixels
