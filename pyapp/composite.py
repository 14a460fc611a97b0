"""Pixels for the three views: overlay, cutout and erase. Inputs and outputs are numpy arrays:

    photo   (H, W, 3) uint8, at whatever size is being drawn (the display size, or the photo's own size
            for exports): callers resize the photo once and upsample each mask's logits to that size
            (pyapp.postprocess), so the photo is never resampled twice
    mask    (H, W) bool
    result  (H, W, 4) uint8 RGBA, ready for a canvas's ImageData or a PNG
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def edges(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch a pixel outside it (4-neighbourhood): its visible outline."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def _rgba(photo: np.ndarray, alpha: np.ndarray | int = 255) -> np.ndarray:
    out = np.empty(photo.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = photo
    out[..., 3] = alpha
    return out


def overlay(photo: np.ndarray, layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]], opacity: float = 0.5,
            outline: bool = True) -> np.ndarray:
    """Each (mask, colour) laid over the photo at `opacity`, with a solid outline so small or pale objects
    still show."""
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be from 0 to 1, not {opacity}")
    out = _rgba(photo)
    weight = int(round(opacity * 256))
    for mask, colour in layers:
        if mask.shape != photo.shape[:2]:
            raise ValueError(f"a mask of {mask.shape} does not fit a photo of {photo.shape[:2]}")
        if weight:
            pixels = out[mask, :3].astype(np.uint16)
            tint = np.asarray(colour, dtype=np.uint16)
            out[mask, :3] = ((pixels * (256 - weight) + tint * weight) >> 8).astype(np.uint8)
        if outline:
            out[edges(mask), :3] = colour
    return out


def union(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    combined = np.zeros(shape, dtype=bool)
    for mask in masks:
        combined |= mask
    return combined


def cutout(photo: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """The selected objects alone, on a transparent background."""
    return _rgba(photo, union(masks, photo.shape[:2]).astype(np.uint8) * 255)


def erase(photo: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """The photo with the selected objects removed (transparent where they were)."""
    return _rgba(photo, (~union(masks, photo.shape[:2])).astype(np.uint8) * 255)
