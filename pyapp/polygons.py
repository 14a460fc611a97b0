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

# Directions of travel along pixel edges, as (dy, dx) on the grid of pixel corners: east, south, west, north.
_STEPS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def rings(mask: np.ndarray) -> list[np.ndarray]:
    """The boundary of `mask` as closed rings of corner points ((N, 2) float arrays of x, y; the first point
    is not repeated), only where the direction changes. The foreground is on the right of the direction of
    travel (y pointing down): outer rings run clockwise on the screen, holes counter-clockwise. Where two
    pixels touch at a corner only, the rings turn away from each other (4-connected parts), except at the
    corner a ring was started from."""
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    height, width = m.shape  # padded; corners run 0..height-1 and 0..width-1 in padded pixel units
    cols = width  # corner (i, j) -> i * cols + j; only corners 1..H-1 are ever used, inside the padding
    out: dict[int, list[tuple[int, int]]] = {}  # corner -> [(next corner, direction)]

    def add(starts: np.ndarray, direction: int) -> None:
        dy, dx = _STEPS[direction]
        for i, j in starts.tolist():
            out.setdefault(i * cols + j, []).append(((i + dy) * cols + (j + dx), direction))

    below_only = m[1:, :] & ~m[:-1, :]  # edge at y = r (top of pixel r), fg below: walk east
    above_only = m[:-1, :] & ~m[1:, :]  # fg above, bg below: walk west, from the edge's east end
    right_only = m[:, 1:] & ~m[:, :-1]  # edge at x = c (left of pixel c), fg right: walk north
    left_only = m[:, :-1] & ~m[:, 1:]  # fg left, bg right: walk south
    r, c = np.nonzero(below_only)
    add(np.stack([r + 1, c], 1), 0)
    r, c = np.nonzero(above_only)
    add(np.stack([r + 1, c + 1], 1), 2)
    r, c = np.nonzero(right_only)
    add(np.stack([r + 1, c + 1], 1), 3)
    r, c = np.nonzero(left_only)
    add(np.stack([r, c + 1], 1), 1)

    result = []
    while out:
        start = next(iter(out))
        corner, direction = start, None
        points = []
        while corner != start or direction is None:
            choices = out[corner]
            pick = 0
            if len(choices) > 1 and direction is not None:
                # Where two diagonal pixels meet, turn left of the way we came: they stay apart.
                order = [(direction + 3) % 4, direction, (direction + 1) % 4, (direction + 2) % 4]
                pick = min(range(len(choices)), key=lambda k: order.index(choices[k][1]))
            nxt, step = choices.pop(pick)
            if not choices:
                del out[corner]
            if step != direction:
                points.append(corner)
            corner, direction = nxt, step
        ring = np.array([(p % cols - 1, p // cols - 1) for p in points], dtype=np.float64)
        result.append(_corners_only(ring))
    return [ring for ring in result if len(ring) >= 3]


def _corners_only(ring: np.ndarray) -> np.ndarray:
    """Drop points where the ring goes straight on (the start point of a traced ring may be one)."""
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
    """The mask as polygons without holes: one per connected part (4-connected), each hole joined to the
    ring around it by a slit of no width; simplified within `tolerance` pixels (0: exact). With `max_rings`,
    only that many of the largest parts and holes (by area) are kept: a speckled mask's thousands of specks
    and pinholes are dropped (and joining each would take time quadratic in their number). `traced`: the
    mask's rings() if already made."""
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
