"""Exports at the photo's original resolution: mask PNG, cutout PNG, and all objects as COCO JSON with
run-length encoded masks (the compressed RLE strings pycocotools reads)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def png(pixels: np.ndarray) -> bytes:
    """(H, W) bool or uint8 → greyscale PNG; (H, W, 4) uint8 → RGBA PNG."""
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 4)):
        raise ValueError(f"cannot write {pixels.dtype} pixels of shape {pixels.shape} as a PNG")
    out = io.BytesIO()
    # compress_level 1: masks and cutouts compress well anyway, and export should feel instant.
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a mask in column-major order, starting with a run of zeros (COCO's convention)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    return [0, *runs] if flat[0] else runs


def rle_string(counts: Sequence[int]) -> str:
    """COCO's compressed RLE: each count (as a difference from the one two before, after the first two)
    in 5-bit groups with a continuation bit, as characters from '0'."""
    out = []
    for index, count in enumerate(counts):
        value = int(count) - (int(counts[index - 2]) if index > 2 else 0)
        more = True
        while more:
            chunk = value & 0x1F
            value >>= 5
            more = value != -1 if chunk & 0x10 else value != 0
            if more:
                chunk |= 0x20
            out.append(chr(chunk + 48))
    return "".join(out)


def bbox(mask: np.ndarray) -> list[int]:
    """[x, y, width, height] of the mask's pixels, COCO style; zeros for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def coco(
    objects: Sequence[tuple[str, np.ndarray]],
    *,
    width: int,
    height: int,
    file_name: str,
    score: Sequence[float] | None = None,
) -> dict:
    """A COCO-style document for one photo: one category per distinct object name, one annotation per
    object, its mask as compressed RLE."""
    names = list(dict.fromkeys(name for name, _ in objects))
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    annotations = []
    for index, (name, mask) in enumerate(objects):
        if mask.shape != (height, width):
            raise ValueError(f"{name}: mask {mask.shape} is not the photo's {height}×{width}")
        annotation = {
            "id": index + 1,
            "image_id": 1,
            "category_id": names.index(name) + 1,
            "segmentation": {"size": [height, width], "counts": rle_string(rle_counts(mask))},
            "area": int(mask.sum()),
            "bbox": bbox(mask),
            "iscrowd": 0,
        }
        if score is not None:
            annotation["score"] = float(score[index])
        annotations.append(annotation)
    return {
        "info": {"description": "Masks made with samtab (Segment Anything 2 in a browser tab)"},
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "categories": categories,
        "annotations": annotations,
    }
