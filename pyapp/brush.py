"""Brush strokes on a mask: what a person paints on top of the model's mask (issue 16).

A stroke is the pointer's path (a polyline, in the photo's pixels: (0, 0) is the centre of the top-left
pixel), a radius, a hardness and whether it adds or removes. Its coverage of a pixel is 1 within
hardness × radius of the path, falling off linearly to 0 at the radius (hardness 1: a hard edge). Applied in
order on the mask as a fraction (add: the larger of the two, remove: the smaller of the mask and 1 - the
coverage), then thresholded at one half; on logits (what soft cutouts fade) a stroke's coverage is mapped to
logits of slope STROKE_LOGIT_SLOPE around 0, so the two agree: a pixel is in the mask exactly when its logit
is above 0. Pure numpy, at any size: a stroke made on the photo is drawn on a view of it scaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STROKE_LOGIT_SLOPE = 8.0  # logits per unit of coverage around its middle (coverage 1/2: logit 0)
MAX_STROKE_POINTS = 4096  # a stroke longer than this is refused (a page sends one message per stroke)


@dataclass(frozen=True)
class Stroke:
    points: tuple[tuple[float, float], ...]  # the path, in the photo's pixels
    radius: float  # in the photo's pixels
    hardness: float = 1.0  # 0..1: the share of the radius painted fully
    add: bool = True  # False: it removes
    size: tuple[int, int] = (0, 0)  # the photo's (width, height), which the points are in

    def __post_init__(self):
        if not self.points or len(self.points) > MAX_STROKE_POINTS:
            raise ValueError(f"a stroke has 1 to {MAX_STROKE_POINTS} points, not {len(self.points)}")
        if not (0 < self.radius <= 4096) or not (0 <= self.hardness <= 1):
            raise ValueError("a stroke's radius is 0 to 4096 pixels and its hardness 0 to 1")
        if min(self.size) <= 0:
            raise ValueError("a stroke needs the size of the photo it was made on")


def coverage(
    stroke: Stroke, width: int, height: int, rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> tuple[slice, slice, np.ndarray] | None:
    """The stroke's coverage of a (height, width) picture of the photo: (rows, cols, values in [0, 1]) over
    the stroke's bounding box, or None if it misses the picture. With `rows` and `cols` (ascending pixel
    indices of the picture: a part of it, or a sparser grid over it), the coverage of those pixels only, its
    slices indexing `rows` and `cols`."""
    sx, sy = width / stroke.size[0], height / stroke.size[1]
    points = np.array(stroke.points, dtype=np.float64) * (sx, sy) + ((sx - 1) / 2, (sy - 1) / 2)  # centres map
    radius = stroke.radius * (sx + sy) / 2
    x0, y0 = np.floor(points.min(axis=0) - radius).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + radius).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    if rows is None or cols is None:
        rows, cols = np.arange(height), np.arange(width)
    i0, i1 = np.searchsorted(cols, [x0, x1])  # the grid's columns and rows within the stroke's reach
    j0, j1 = np.searchsorted(rows, [y0, y1])
    if x0 >= x1 or y0 >= y1 or i0 >= i1 or j0 >= j1:
        return None
    yy, xx = np.meshgrid(rows[j0:j1].astype(np.float64), cols[i0:i1].astype(np.float64), indexing="ij")
    distance = np.full(yy.shape, np.inf)
    ends = np.vstack([points, points[-1:]])  # one point: a dab, a segment of no length
    for (ax, ay), (bx, by) in zip(ends[:-1], ends[1:]):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / length2, 0, 1) if length2 > 0 else 0.0
        np.minimum(distance, np.hypot(xx - (ax + t * dx), yy - (ay + t * dy)), out=distance)
    soft = radius * (1 - stroke.hardness)
    if soft <= 0:
        values = (distance <= radius).astype(np.float32)
    else:
        values = np.clip((radius - distance) / soft, 0, 1).astype(np.float32)
    return slice(j0, j1), slice(i0, i1), values


def apply_to_mask(
    mask: np.ndarray, strokes: Sequence[Stroke], grid: tuple[int, int, np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The (height, width) bool mask with the strokes applied in order. With `grid` (width, height, rows,
    cols), the mask is those rows and columns of a (height, width) picture (see coverage)."""
    if not strokes:
        return mask
    height, width = mask.shape
    amount = mask.astype(np.float32)
    for stroke in strokes:
        covered = coverage(stroke, *grid) if grid is not None else coverage(stroke, width, height)
        if covered is None:
            continue
        rows, cols, values = covered
        if stroke.add:
            np.maximum(amount[rows, cols], values, out=amount[rows, cols])
        else:
            np.minimum(amount[rows, cols], 1 - values, out=amount[rows, cols])
    return amount > 0.5


def apply_to_logits(
    logits: np.ndarray, strokes: Sequence[Stroke], grid: tuple[int, int, np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The (height, width) logits with the strokes applied in order: logits > 0 is apply_to_mask(logits > 0).
    `grid`: as for apply_to_mask."""
    if not strokes:
        return logits
    height, width = logits.shape
    out = logits.astype(np.float32, copy=True)
    for stroke in strokes:
        covered = coverage(stroke, *grid) if grid is not None else coverage(stroke, width, height)
        if covered is None:
            continue
        rows, cols, values = covered
        painted = (values - 0.5) * STROKE_LOGIT_SLOPE
        if stroke.add:
            np.maximum(out[rows, cols], np.where(values > 0, painted, -np.inf), out=out[rows, cols])
        else:
            np.minimum(out[rows, cols], np.where(values > 0, -painted, np.inf), out=out[rows, cols])
    return out
