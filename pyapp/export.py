"""Exports at the photo's original resolution: mask PNG, cutout PNG, all objects as COCO JSON (polygons, or
run-length encoded masks: the compressed RLE strings pycocotools reads) and as YOLO segmentation labels."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from pyapp import polygons
from pyapp.everything import mask_box

# A polygon stands for a mask in COCO only if it loses at most this share of the mask's area; else RLE.
MAX_POLYGON_LOSS = 0.01
# A mask of more parts and holes than this is a speckle (random weights make such): COCO takes it as RLE, and
# YOLO's one polygon keeps the largest this many (joining thousands would also take seconds in the tab).
MAX_POLYGON_RINGS = 100


def png(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """(H, W) bool or uint8 → greyscale PNG; (H, W, 4) uint8 → RGBA PNG. `text`: text chunks (keyword: value,
    as iTXt: any characters), e.g. the model that made the mask."""
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 4)):
        raise ValueError(f"cannot write {pixels.dtype} pixels of shape {pixels.shape} as a PNG")
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)  # international text: any characters (an object's name may have them)
    out = io.BytesIO()
    # compress_level 1: masks and cutouts compress well anyway, and export should feel instant.
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, "PNG", compress_level=1, pnginfo=info)
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
    if not mask.any():
        return [0, 0, 0, 0]
    x0, y0, x1, y1 = mask_box(mask)
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def coco(
    objects: Sequence[tuple[str, np.ndarray]],
    *,
    width: int,
    height: int,
    file_name: str,
    score: Sequence[float] | None = None,
    polygon_tolerance: float | None = None,
    model: str | None = None,
) -> dict:
    """A COCO-style document for one photo: one category per distinct object name, one annotation per
    object. Its mask as compressed RLE, or with `polygon_tolerance` (pixels) as polygons simplified within
    it (holes joined by slits), unless they would lose more than MAX_POLYGON_LOSS of the area (then RLE).
    `model`, the model that made the masks, goes in its info."""
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
            "segmentation": segmentation(mask, polygon_tolerance),
            "area": int(np.count_nonzero(mask)),
            "bbox": bbox(mask),
            "iscrowd": 0,
        }
        if score is not None:
            annotation["score"] = float(score[index])
        annotations.append(annotation)
    info = {"description": "Masks made with samtab (Segment Anything 2 in a browser tab)"}
    if model is not None:
        info["model"] = model
    return {
        "info": info,
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "categories": categories,
        "annotations": annotations,
    }


def segmentation(mask: np.ndarray, polygon_tolerance: float | None = None) -> dict | list[list[float]]:
    """COCO's segmentation of a mask: polygons within `polygon_tolerance` pixels if they keep the area (see
    coco), else compressed RLE."""
    height, width = mask.shape
    if polygon_tolerance is not None and mask.any():
        crop, corner = _cropped(mask)  # traced and checked on the object's box alone: a small object is quick
        traced = polygons.rings(crop)
        if len(traced) <= MAX_POLYGON_RINGS:
            shapes = polygons.polygons(crop, polygon_tolerance, traced=traced)
            lost = np.count_nonzero(polygons.fill(shapes, *crop.shape) != crop)
            if lost <= MAX_POLYGON_LOSS * np.count_nonzero(mask):
                return [[round(float(v), 2) for v in (shape + corner).ravel()] for shape in shapes]
    return {"size": [height, width], "counts": rle_string(rle_counts(mask))}


def _cropped(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask's bounding box of pixels, and its top-left corner (x, y) in the mask: polygons traced on the
    box, moved by the corner, are the mask's (the simplification keeps traced vertices: none leaves the box)."""
    x0, y0, x1, y1 = mask_box(mask)
    return mask[y0 : y1 + 1, x0 : x1 + 1], np.array([x0, y0], dtype=np.float64)


def yolo(objects: Sequence[tuple[str, np.ndarray]], *, tolerance: float = 1.0) -> tuple[str, str]:
    """YOLO segmentation labels for one photo: a line per object, `class x1 y1 x2 y2 ...` in coordinates
    normalised to the photo's width and height, the object's parts (and holes) joined into one polygon by
    slits of no width (at most MAX_POLYGON_RINGS of them, the largest); and the class names, one per line
    (class 0 first), one class per distinct object name. Objects with an empty mask have no line."""
    names = list(dict.fromkeys(name for name, _ in objects))
    lines = [yolo_line(mask, names.index(name), tolerance) for name, mask in objects]
    return "".join(line + "\n" for line in lines if line), "".join(name + "\n" for name in names)


def yolo_line(mask: np.ndarray, class_index: int, tolerance: float = 1.0) -> str | None:
    """An object's YOLO segmentation line (see yolo), or None for an empty mask."""
    height, width = mask.shape
    if not mask.any():
        return None
    crop, corner = _cropped(mask)
    shapes = polygons.polygons(crop, tolerance, max_rings=MAX_POLYGON_RINGS)
    if not shapes:
        return None
    joined = shapes[0]
    for shape in shapes[1:]:
        joined = polygons.keyhole(joined, shape)
    scaled = ((joined + corner) / np.array([width, height])).ravel()
    return " ".join([str(class_index), *(f"{v:.6f}" for v in scaled)])
