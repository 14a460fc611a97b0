"""Masks as polygons, for the exports people load into their tools (COCO polygons, YOLO segmentation).

Pure numpy (Pillow and numpy are what the worker has): the boundary of a mask is traced along the pixels'
edges (so a polygon of it, filled, gives back the mask exactly), each ring's straight runs become single
segments, rings are simplified by Douglas-Peucker within a tolerance in pixels, and a hole is joined to the
ring around it by a slit of no width (a "keyhole"): COCO's and YOLO's polygons cannot say "hole" otherwise
(pycocotools unites an annotation's polygons).

Coordinates are (x, y) in pixels from the photo's top-left corner, pixel (r, c) covering [c, c+1] x [r, r+1].
"""

from __future__ import annotations

import numpy as np


def rings(mask: np.ndarray) -> list[np.ndarray]:
    """The boundary of `mask` as closed rings of corner points ((N, 2) float arrays of x, y; the first point
    is not repeated), only where the direction changes. The foreground is on the right of the direction of
    travel (y pointing down): outer rings run clockwise on the screen, holes counter-clockwise. Where two
    pixels touch at a corner only, a ring arriving there turns left, everywhere alike: foreground pixels
    touching at a corner are one part (8-connected; its ring passes that corner twice), a hole is a
    4-connected part of the background. A ring starts at the west end of its first side with the foreground
    below it (in reading order); rings come in the order of those sides.

    Vectorised: no Python loop per edge or corner. The corners where the boundary turns are found at once;
    each has one side of a ring leaving it (two where pixels touch at a corner only), which ends at the next
    such corner along its row or column; the side leaving there (the one on the left, of two) follows it.
    That makes a permutation of the sides whose cycles are the rings, labelled and ordered by pointer jumping
    in O(log n) rounds."""
    mask = np.asarray(mask, dtype=bool)
    m = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=bool)  # (np.pad takes longer, on a small mask)
    m[1:-1, 1:-1] = mask
    # Corner (i, j), at x = j, y = i, between the pixels a (up-left), b (up-right), c (down-left), d (down-right).
    a, b, c, d = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    turns = ((a ^ b) | (c ^ d)) & ((a ^ c) | (b ^ d))  # neither straight on along a row nor a column
    i, j = np.divmod(np.flatnonzero(turns), turns.shape[1])  # (np.nonzero is slower on 2-d arrays)
    if len(i) == 0:
        return []
    cols = m.shape[1]
    at, flat = i * cols + j, m.ravel()
    a, b, c, d = flat[at], flat[at + 1], flat[at + cols], flat[at + cols + 1]
    # The sides leaving each turn, with the foreground on their right; directions 0..3: east, south, west,
    # north (a left turn from k is to (k + 3) % 4, a right turn to (k + 1) % 4).
    leaves = np.stack([d & ~b, c & ~d, a & ~c, b & ~a])
    direction, corner = np.nonzero(leaves)  # sides in that order: the east ones first, in reading order
    count = len(corner)
    side = np.full((4, len(i)), -1, dtype=np.intp)
    side[direction, corner] = np.arange(count, dtype=np.intp)
    # A side ends at the next turn along its line: the turns are in reading order, and in column order by a
    # stable sort; only straight corners lie between.
    by_column = np.argsort(j * turns.shape[0] + i, kind="stable")
    column_place = np.empty_like(by_column)
    column_place[by_column] = np.arange(len(by_column))
    east, south, west, north = (corner[direction == k] for k in range(4))
    end = np.concatenate([east + 1, by_column[column_place[south] + 1], west - 1, by_column[column_place[north] - 1]])
    # The side that follows: the one leaving the end turn to the left, else the only one (to the right).
    jump = side[(direction + 3) % 4, end]
    right = jump < 0
    jump[right] = side[(direction[right] + 1) % 4, end[right]]
    # Pointer jumping: after k rounds, head[s] is the least side among the 2**k from s on along its ring, and
    # ahead[s] how many steps on from s it lies; once no round lowers a head, it is the least of the ring.
    head = np.arange(count, dtype=np.intp)
    ahead = np.zeros(count, dtype=np.intp)
    span = 1
    while True:
        other = head[jump]
        lower = other < head
        if not lower.any():
            break
        np.copyto(ahead, ahead[jump] + span, where=lower)
        np.minimum(head, other, out=head)
        jump = jump[jump]
        span *= 2
    # Sides to rings: grouped by head (in the order of their heads), each ring from its head on.
    size = np.bincount(head, minlength=count)
    heads = np.flatnonzero(size)
    lengths = size[heads]
    offset = np.zeros(count, dtype=np.intp)
    offset[heads] = np.cumsum(lengths) - lengths
    length = size[head]
    place = offset[head] + (length - ahead) % length
    points = np.empty((count, 2), dtype=np.float64)
    points[place, 0] = j[corner]
    points[place, 1] = i[corner]
    bounds = np.cumsum(lengths).tolist()
    return [points[s:e] for s, e in zip([0, *bounds[:-1]], bounds, strict=True) if e - s >= 3]


def _corners_only(ring: np.ndarray) -> np.ndarray:
    """Drop points where the ring goes straight on (rings() gives none; the tests check that with this)."""
    before, after = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    cross = (ring[:, 0] - before[:, 0]) * (after[:, 1] - ring[:, 1]) - (ring[:, 1] - before[:, 1]) * (
        after[:, 0] - ring[:, 0]
    )
    return ring[cross != 0]


def signed_area(ring: np.ndarray) -> float:
    """Shoelace area, positive for rings that run clockwise on the screen (y down): outer rings."""
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed ring: no point of the ring ends farther than `tolerance` pixels from the
    simplified one. A ring that would fall below three points is kept as it is."""
    if tolerance <= 0 or len(ring) <= 4:
        return ring
    # Split the ring at its first point and the point farthest from it: two open chains.
    far = int(np.argmax(np.hypot(*(ring - ring[0]).T)))
    keep = np.zeros(len(ring), dtype=bool)
    keep[[0, far]] = True
    closed = np.vstack([ring, ring[:1]])
    stack = [(0, far), (far, len(ring))]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        p, q = closed[a], closed[b]
        inner = closed[a + 1 : b]
        d = q - p
        length = float(np.hypot(*d))
        if length == 0:
            dist = np.hypot(*(inner - p).T)
        else:
            dist = np.abs(d[0] * (inner[:, 1] - p[1]) - d[1] * (inner[:, 0] - p[0])) / length
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            index = a + 1 + k
            keep[index % len(ring)] = True
            stack += [(a, index), (index, b)]
    simplified = ring[keep]
    return simplified if len(simplified) >= 3 else ring


def _inside(point: np.ndarray, ring: np.ndarray) -> bool:
    """Even-odd test of a point against a closed ring."""
    x, y = point
    x0, y0 = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def polygons(
    mask: np.ndarray, tolerance: float = 0.0, max_rings: int | None = None, traced: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """The mask as polygons without holes: one per connected part (8-connected, as rings() reads it), each
    hole joined to the ring around it by a slit of no width; simplified within `tolerance` pixels (0: exact).
    With `max_rings`, only that many of the largest parts and holes (by area) are kept: a speckled mask's
    thousands of specks and pinholes are dropped (and joining each would take time quadratic in their
    number). `traced`: the mask's rings() if already made."""
    traced = rings(mask) if traced is None else traced
    if max_rings is not None and len(traced) > max_rings:
        traced = sorted(traced, key=lambda ring: -abs(signed_area(ring)))[:max_rings]
    outers = [ring for ring in traced if signed_area(ring) > 0]
    holes = [ring for ring in traced if signed_area(ring) < 0]
    areas = [signed_area(ring) for ring in outers]
    boxes = np.array([[*ring.min(axis=0), *ring.max(axis=0)] for ring in outers]).reshape(-1, 4)
    joined: list[list[np.ndarray]] = [[] for _ in outers]
    for hole in holes:
        # A point just inside the foreground beside the hole's first edge (the foreground is on the right),
        # tested against the outer rings whose bounding boxes hold it.
        a, b = hole[0], hole[1]
        direction = (b - a) / max(1e-9, float(np.hypot(*(b - a))))
        probe = (a + b) / 2 + 0.25 * np.array([-direction[1], direction[0]])
        boxed = (
            (boxes[:, 0] <= probe[0])
            & (probe[0] <= boxes[:, 2])
            & (boxes[:, 1] <= probe[1])
            & (probe[1] <= boxes[:, 3])
        )
        around = [k for k in np.flatnonzero(boxed).tolist() if _inside(probe, outers[k])]
        if around:
            joined[min(around, key=lambda k: areas[k])].append(hole)
    result = []
    for outer, its_holes in zip(outers, joined, strict=True):
        ring = simplify(outer, tolerance)
        for hole in sorted(its_holes, key=lambda h: -abs(signed_area(h))):
            ring = keyhole(ring, simplify(hole, tolerance))
        result.append(ring)
    return result


def keyhole(ring: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`ring` with `hole` (or another ring: two parts made one polygon) spliced in through a slit of no
    width between their nearest points."""
    distance = np.hypot(ring[:, None, 0] - hole[None, :, 0], ring[:, None, 1] - hole[None, :, 1])
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    return np.vstack([ring[: i + 1], hole[j:], hole[: j + 1], ring[i:]])


def fill(polygon_list: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise polygons (even-odd, all together) at pixel centres: what a polygon export stands for.
    Vectorised: every edge's crossing of every pixel row's centre line, as a step in that row from the first
    pixel whose centre lies right of it; a pixel is inside where the steps before it are odd."""
    out = np.zeros((height, width), dtype=bool)
    edges = [np.hstack([p, np.roll(p, -1, axis=0)]) for p in polygon_list if len(p) >= 3]
    if not edges:
        return out
    e = np.vstack(edges)
    x0, y0, x1, y1 = e[:, 0], e[:, 1], e[:, 2], e[:, 3]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows whose centre y = row + 0.5 satisfies low <= y < high
    first = np.clip(np.ceil(low - 0.5), 0, height).astype(np.intp)
    stop = np.clip(np.ceil(high - 0.5), 0, height).astype(np.intp)
    spans = np.maximum(stop - first, 0)
    if not spans.any():
        return out
    which = np.repeat(np.arange(len(e)), spans)
    rows = first[which] + (np.arange(len(which)) - np.repeat(np.cumsum(spans) - spans, spans))
    y = rows + 0.5
    xs = x0[which] + (y - y0[which]) * (x1[which] - x0[which]) / (y1[which] - y0[which])
    start = np.clip(np.floor(xs - 0.5).astype(np.intp) + 1, 0, width)  # the first pixel with its centre > x
    steps = np.zeros((height, width + 1), dtype=np.int32)
    np.add.at(steps, (rows, start), 1)
    out[:] = (np.cumsum(steps[:, :width], axis=1) & 1).astype(bool)
    return out
