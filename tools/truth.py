"""Truth masks of two demo photos' subjects, for the tests of "Remove background" (tests/unit/test_subject.py).

    python tools/truth.py [--check]

Writes tools/truth/<photo>.png (white: the subject) for scikit-image's coffee (the cup, its saucer and the
spoon) and astronaut (Eileen Collins with the helmet she holds; not the flag, nor the shuttle model). The
synthetic shapes scene needs none: tools/synthetic.py knows its objects.

How they were made, so that anyone can check and redo them: the seeds below were placed by hand, looking at
each photo (background: the border and spots on the table, flag, wall and shuttle; subject: spots on each of
its parts); scikit-image's random walker on the photo's CIELAB colours grows the two labels from them; then
the subject's holes are filled and only its largest part is kept. The coffee's table left of the saucer's
leftmost point (x 77) is so close to the saucer in colour that the walker leaks into it: that strip is cut.
Each overlay (--overlay DIR writes them) was inspected at 2x: edges are right to a few pixels. The PNGs are
committed; --check rebuilds them and says whether they still match (scikit-image's solver may differ by a
pixel across versions, which is why the tests read the committed files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "tools" / "truth"

# (x, y) seeds in the photo's pixels: background, subject. The border is background except where noted.
SEEDS = {
    "coffee": {
        "border": "all",
        "background": [
            (40, 250),
            (30, 120),
            (560, 300),
            (520, 60),
            (480, 380),
            (150, 392),
            (20, 350),
            (590, 200),
            (450, 30),
            (120, 40),
            (45, 200),
            (40, 280),
            (60, 170),
            (30, 230),
            (70, 300),
            (20, 180),
        ],
        "subject": [
            (290, 140),
            (250, 80),
            (330, 70),
            (200, 150),
            (390, 150),
            (230, 270),
            (365, 285),
            (410, 80),
            (120, 250),
            (150, 330),
            (300, 370),
            (440, 250),
            (430, 170),
            (100, 200),
            (280, 240),
            (200, 110),
            (250, 378),
            (350, 372),
            (95, 280),
            (470, 230),
        ],
        "beta": 30,
        "cut_left_of": 78,
    },
    "astronaut": {
        "border": "top, left, right",  # she and the helmet reach the bottom edge
        "background": [
            (30, 100),
            (60, 250),
            (40, 40),
            (100, 30),
            (330, 100),
            (400, 150),
            (420, 60),
            (440, 240),
            (480, 330),
            (480, 300),
            (350, 30),
            (130, 120),
            (320, 250),
            (375, 270),
            (470, 150),
            (10, 470),
            (80, 150),
            (20, 300),
            (295, 160),
            (300, 200),
            (310, 230),
            (305, 150),
            (315, 180),
            (12, 330),
            (300, 290),
        ],
        "subject": [
            (225, 50),
            (225, 120),
            (200, 200),
            (150, 180),
            (100, 350),
            (300, 320),
            (200, 450),
            (170, 385),
            (380, 420),
            (420, 400),
            (150, 495),
            (250, 400),
            (330, 480),
            (460, 470),
            (60, 440),
            (230, 260),
            (340, 380),
            (330, 300),
            (350, 330),
            (320, 270),
            (345, 360),
            (40, 370),
            (70, 240),
            (50, 300),
            (30, 340),
            (355, 300),
        ],
        "beta": 40,
        "cut_left_of": 0,
    },
}


def photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


def make(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(the subject mask, the seeds' labels: 1 background, 2 subject)."""
    from scipy import ndimage
    from skimage import color, segmentation

    spec, image = SEEDS[name], photo(name)
    height, width = image.shape[:2]
    seeds = np.zeros((height, width), np.int32)
    band = 6 if spec["border"] == "all" else 4
    seeds[:band, :] = 1
    seeds[:, :band] = 1
    seeds[:, -band:] = 1
    if spec["border"] == "all":
        seeds[-band:, :] = 1
    for label, half, points in ((1, 4, spec["background"]), (2, 3, spec["subject"])):
        for x, y in points:
            seeds[max(0, y - half) : y + half, max(0, x - half) : x + half] = label
    labels = segmentation.random_walker(color.rgb2lab(image), seeds, beta=spec["beta"], mode="cg_j", channel_axis=-1)
    mask = labels == 2
    mask[:, : spec["cut_left_of"]] = False
    mask = ndimage.binary_fill_holes(mask)
    parts, count = ndimage.label(mask)
    if count > 1:
        mask = parts == 1 + int(np.argmax(ndimage.sum(mask, parts, range(1, count + 1))))
    return mask, seeds


def overlay(name: str, mask: np.ndarray, seeds: np.ndarray) -> Image.Image:
    from scipy import ndimage

    out = photo(name).copy()
    out[~mask] //= 3
    out[mask ^ ndimage.binary_erosion(mask)] = (0, 255, 0)
    out[seeds == 1], out[seeds == 2] = (0, 0, 255), (255, 255, 0)
    return Image.fromarray(out)


def read(name: str) -> np.ndarray:
    """The committed truth mask of a photo, (height, width) bool."""
    return np.asarray(Image.open(TRUTH / f"{name}.png")) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild and compare with the committed masks")
    parser.add_argument("--overlay", type=Path, help="also write <photo>-overlay.png here, for inspection")
    args = parser.parse_args(argv)
    status = 0
    for name in SEEDS:
        mask, seeds = make(name)
        if args.overlay:
            args.overlay.mkdir(parents=True, exist_ok=True)
            overlay(name, mask, seeds).save(args.overlay / f"{name}-overlay.png")
        if args.check:
            differ = int(np.count_nonzero(mask != read(name)))
            print(f"truth: {name}: {differ} pixels differ from tools/truth/{name}.png")
            status |= differ > 0
        else:
            TRUTH.mkdir(exist_ok=True)
            Image.fromarray(mask).save(TRUTH / f"{name}.png", optimize=True)
            print(f"truth: {name}: {mask.mean():.1%} of the photo -> tools/truth/{name}.png")
    return status


if __name__ == "__main__":
    sys.exit(main())
