"""Masks as polygons (pyapp.polygons) and the exports made of them (COCO polygons, YOLO labels), checked
with pycocotools and with a YOLO reader written here from the format's description."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from pyapp import export, polygons
from samtab_tools import synthetic


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def pycocotools_fill(segmentation, height: int, width: int) -> np.ndarray:
    """What a COCO reader makes of a segmentation: polygons (united) or RLE."""
    if isinstance(segmentation, list):
        rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    return coco_mask.decode(rle).astype(bool)


def yolo_read(labels: str, classes: str, width: int, height: int) -> list[tuple[str, np.ndarray]]:
    """A YOLO segmentation reader written from the format's description: `class x1 y1 x2 y2 ...`, the
    points normalised to the photo's size; each polygon filled by pycocotools."""
    names = classes.splitlines()
    out = []
    for line in labels.splitlines():
        fields = line.split()
        points = np.array([float(v) for v in fields[1:]]).reshape(-1, 2) * [width, height]
        out.append((names[int(fields[0])], pycocotools_fill([points.ravel().tolist()], height, width)))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_exact_polygons_give_back_the_mask_to_the_pixel(seed):
    """Tolerance 0: the traced polygons (holes joined by slits) filled by pycocotools, and by our own fill,
    are the mask, whatever its shape: specks, holes, parts touching at a corner, the photo's border."""
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 60, 2))
    mask = rng.random((height, width)) < rng.uniform(0.05, 0.95)
    shapes = polygons.polygons(mask)
    np.testing.assert_array_equal(polygons.fill(shapes, height, width), mask)
    if mask.any():
        segmentation = [[float(v) for v in shape.ravel()] for shape in shapes]
        np.testing.assert_array_equal(pycocotools_fill(segmentation, height, width), mask)


def test_a_ring_becomes_one_polygon_with_its_hole_and_parts_stay_apart():
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    assert len(polygons.polygons(ring)) == 1
    two = np.zeros((5, 9), bool)
    two[1:4, 1:3] = two[1:4, 5:8] = True
    assert len(polygons.polygons(two)) == 2
    outer, hole = sorted(polygons.rings(ring), key=polygons.signed_area, reverse=True)
    assert polygons.signed_area(outer) == 49 and polygons.signed_area(hole) == -9


def test_simplified_polygons_of_the_shapes_scene_keep_iou_098_in_pycocotools():
    """The default tolerance (1 px) on the shapes demo's known objects: fewer points, IoU >= 0.98 as
    pycocotools reads them back; the thin ring, which its polygon would shrink by more than 1 %, as RLE."""
    _, objects = synthetic.scene()
    for known in objects:
        mask = known["mask"]
        height, width = mask.shape
        document = export.coco([("thing", mask)], width=width, height=height, file_name="x", polygon_tolerance=1.0)
        segmentation = json.loads(json.dumps(document))["annotations"][0]["segmentation"]
        assert iou(pycocotools_fill(segmentation, height, width), mask) >= 0.98
        if known["name"] == "purple ring":  # thin: simplified, it would lose 1.7 % of its area
            assert isinstance(segmentation, dict)
            continue
        assert isinstance(segmentation, list), "a smooth shape is exported as polygons"
        assert sum(len(polygon) // 2 for polygon in segmentation) <= len(polygons.polygons(mask)[0])


def test_coco_falls_back_to_rle_where_a_polygon_would_lose_area():
    """A one-pixel staircase simplifies to a line of no area: RLE instead, and exact."""
    stairs = np.eye(40, dtype=bool) | np.eye(40, k=1, dtype=bool)
    document = export.coco([("stairs", stairs)], width=40, height=40, file_name="x", polygon_tolerance=1.0)
    segmentation = document["annotations"][0]["segmentation"]
    assert isinstance(segmentation, dict) and "counts" in segmentation
    np.testing.assert_array_equal(pycocotools_fill(segmentation, 40, 40), stairs)
    exact = export.coco([("stairs", stairs)], width=40, height=40, file_name="x", polygon_tolerance=0.0)
    assert isinstance(exact["annotations"][0]["segmentation"], list)  # exact polygons lose nothing


def test_yolo_labels_read_back_by_an_independent_reader():
    """One line per object (its parts and holes joined into one polygon), classes by name, empty masks
    skipped; what a reader fills from each line has IoU >= 0.98 with the object's mask."""
    _, objects = synthetic.scene()
    height, width = objects[0]["mask"].shape
    ring = np.zeros((height, width), bool)
    ring[100:300, 100:300] = True
    ring[150:250, 150:250] = False
    ring[400:450, 600:700] = True  # a second part
    named = [("shape", objects[0]["mask"]), ("ring", ring), ("shape", objects[1]["mask"])]
    named.append(("nothing", np.zeros((height, width), bool)))
    labels, classes = export.yolo(named, tolerance=1.0)
    assert classes == "shape\nring\nnothing\n"
    read = yolo_read(labels, classes, width, height)
    assert [name for name, _ in read] == ["shape", "ring", "shape"]
    for (_, got), (_, mask) in zip(read, named, strict=False):
        assert iou(got, mask) >= 0.98
    for line in labels.splitlines():
        values = [float(v) for v in line.split()[1:]]
        assert len(values) % 2 == 0 and all(0 <= v <= 1 for v in values)


def test_the_apps_exports_use_polygons(tmp_path):
    """App.export_coco writes polygons; App.export_yolo a zip of labels/<photo>.txt and classes.txt."""
    from pyapp.app import POLYGON_TOLERANCE

    assert POLYGON_TOLERANCE == 1.0
    labels, classes = export.yolo([("a", np.pad(np.ones((4, 4), bool), 2))])
    assert labels.startswith("0 ") and classes == "a\n"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("classes.txt", classes)
    assert zipfile.ZipFile(archive).read("classes.txt") == b"a\n"


def test_a_speckled_mask_goes_to_rle_in_coco_and_keeps_its_largest_parts_in_yolo():
    """Random weights make masks of thousands of specks and pinholes: COCO writes RLE (exact) and YOLO's
    one polygon joins only the MAX_POLYGON_RINGS largest parts and holes, at once."""
    rng = np.random.default_rng(3)
    mask = np.zeros((300, 400), bool)
    mask[50:250, 50:350] = True
    mask ^= rng.random(mask.shape) < 0.02  # ~2,400 specks and pinholes
    assert len(polygons.rings(mask)) > 10 * export.MAX_POLYGON_RINGS
    segmentation = export.segmentation(mask, 1.0)
    assert isinstance(segmentation, dict)
    np.testing.assert_array_equal(pycocotools_fill(segmentation, 300, 400), mask)
    labels, classes = export.yolo([("speckled", mask)])
    [(_, read)] = yolo_read(labels, classes, 400, 300)
    assert iou(read, mask) >= 0.95


def test_fill_is_the_even_odd_rule_at_pixel_centres():
    """fill (vectorised) against the rule itself, pixel by pixel: a centre is inside when a ray to its left
    crosses the polygons' edges an odd number of times (edges taken half-open in y)."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        height, width = (int(v) for v in rng.integers(1, 24, 2))
        shapes = [rng.uniform(-3, max(height, width) + 3, (int(rng.integers(3, 9)), 2)) for _ in range(2)]
        expected = np.zeros((height, width), bool)
        for row in range(height):
            for col in range(width):
                x, y = col + 0.5, row + 0.5
                crossings = 0
                for shape in shapes:
                    for (x0, y0), (x1, y1) in zip(shape, np.roll(shape, -1, axis=0)):
                        if min(y0, y1) <= y < max(y0, y1) and x0 + (y - y0) * (x1 - x0) / (y1 - y0) < x:
                            crossings += 1
                expected[row, col] = crossings % 2 == 1
        assert np.array_equal(polygons.fill(shapes, height, width), expected)


def old_rings(mask: np.ndarray) -> list[np.ndarray]:
    """rings() as it was before it was vectorised (a walk along every pixel edge in a Python loop, 5 ms for
    a 600x400 mask of three blobs), kept here as a reference: on masks where no two pixels touch at a corner
    only, the new one must give the same rings."""
    steps = ((0, 1), (1, 0), (0, -1), (-1, 0))
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    cols = m.shape[1]
    out: dict[int, list[tuple[int, int]]] = {}

    def add(starts: np.ndarray, direction: int) -> None:
        dy, dx = steps[direction]
        for i, j in starts.tolist():
            out.setdefault(i * cols + j, []).append(((i + dy) * cols + (j + dx), direction))

    r, c = np.nonzero(m[1:, :] & ~m[:-1, :])
    add(np.stack([r + 1, c], 1), 0)
    r, c = np.nonzero(m[:-1, :] & ~m[1:, :])
    add(np.stack([r + 1, c + 1], 1), 2)
    r, c = np.nonzero(m[:, 1:] & ~m[:, :-1])
    add(np.stack([r + 1, c + 1], 1), 3)
    r, c = np.nonzero(m[:, :-1] & ~m[:, 1:])
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
                order = [(direction + 3) % 4, direction, (direction + 1) % 4, (direction + 2) % 4]
                pick = min(range(len(choices)), key=lambda k: order.index(choices[k][1]))
            nxt, step = choices.pop(pick)
            if not choices:
                del out[corner]
            if step != direction:
                points.append(corner)
            corner, direction = nxt, step
        ring = np.array([(p % cols - 1, p // cols - 1) for p in points], dtype=np.float64)
        result.append(polygons._corners_only(ring))
    return [ring for ring in result if len(ring) >= 3]


def varied_masks(seed: int) -> list[np.ndarray]:
    """Masks of every kind for rings(): speckle, blobs, checkerboard saddles, holes within holes, parts on
    the border, a diagonal line, one row or column, an empty and a full mask."""
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 48, 2))
    yy, xx = np.mgrid[:height, :width]
    blobs = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(-5, height + 5), rng.uniform(-5, width + 5)
        ry, rx = rng.uniform(1, height), rng.uniform(1, width)
        blobs ^= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1  # ^: rings and holes where they overlap
    nested = (np.minimum(np.minimum(yy, height - 1 - yy), np.minimum(xx, width - 1 - xx)) // 2) % 2 == 0
    checker = (yy + xx) % 2 == 0
    patchy = checker & (rng.random((height, width)) < 0.8)
    band = np.zeros((height, width), bool)
    band[:, : max(1, width // 3)] = band[: max(1, height // 4), :] = True
    return [
        rng.random((height, width)) < rng.uniform(0.05, 0.95),
        blobs,
        blobs ^ (rng.random((height, width)) < 0.05),
        nested,
        checker,
        patchy,
        band,
        np.eye(height, width, k=int(rng.integers(-2, 3)), dtype=bool),
        np.zeros((height, width), bool),
        np.ones((height, width), bool),
        rng.random((1, width)) < 0.5,
        rng.random((height, 1)) < 0.5,
    ]


def touching_at_a_corner_only(mask: np.ndarray) -> bool:
    m = np.pad(mask, 1)
    a, b, c, d = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    return bool(((a == d) & (b == c) & (a != b)).any())


@pytest.mark.parametrize("seed", range(25))
def test_rings_trace_every_mask_exactly_one_ring_per_boundary(seed):
    """Filled, the rings are the mask; each runs clockwise around a part of the foreground (8-connected)
    or counter-clockwise around a hole (a 4-connected part of the background), one ring each, turning at
    every point; where no two pixels touch at a corner only, they are the rings the edge-walking code gave
    (the same points in the same cyclic order)."""
    from pyapp import regions

    for mask in varied_masks(seed):
        height, width = mask.shape
        traced = polygons.rings(mask)
        np.testing.assert_array_equal(polygons.fill(traced, height, width), mask)
        areas = [polygons.signed_area(ring) for ring in traced]
        assert sum(areas) == np.count_nonzero(mask)
        parts = len(np.unique(regions.label(mask)[3]))
        holes = len(np.unique(regions.label(~np.pad(mask, 1), diagonal=False)[3])) - 1  # but the outside
        assert sum(area > 0 for area in areas) == parts
        assert sum(area < 0 for area in areas) == holes
        for ring in traced:
            assert ring.dtype == np.float64 and ring.shape[1] == 2 and len(ring) >= 4
            np.testing.assert_array_equal(polygons._corners_only(ring), ring)
            step = np.roll(ring, -1, axis=0) - ring
            assert np.all((step[:, 0] == 0) != (step[:, 1] == 0)), "sides along the pixels' edges"
        if not touching_at_a_corner_only(mask):
            before = old_rings(mask)
            assert len(traced) == len(before)
            assert sorted(map(cyclic, traced)) == sorted(map(cyclic, before))


def cyclic(ring: np.ndarray) -> tuple:
    """A ring's points from its least one on (where it starts does not matter)."""
    points = [tuple(p) for p in ring.tolist()]
    first = points.index(min(points))
    return tuple(points[first:] + points[:first])


def test_pixels_touching_at_a_corner_are_one_part_and_holes_touching_so_are_two():
    """Where two pixels meet at a corner only, a ring turns left, everywhere alike (the corner it starts from
    too): a diagonal of pixels is one part, its ring passing each corner twice; two diagonal pinholes are two
    holes (as pyapp.regions reads a mask, after Meta's clean-up of small regions)."""
    diagonal = np.eye(5, dtype=bool)
    [ring] = polygons.rings(diagonal)
    assert polygons.signed_area(ring) == 5 and len(ring) == 20
    pinholes = np.ones((4, 4), bool)
    pinholes[1, 1] = pinholes[2, 2] = False
    areas = sorted(polygons.signed_area(ring) for ring in polygons.rings(pinholes))
    assert areas == [-1, -1, 16]
    checker = np.indices((6, 6)).sum(axis=0) % 2 == 0  # one part around 8 pinholes (those off the border)
    areas = [polygons.signed_area(ring) for ring in polygons.rings(checker)]
    assert areas == [26] + [-1] * 8
