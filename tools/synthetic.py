"""Synthetic scenes with known objects: solid shapes of distinct colours on a gently shaded background.

    python tools/synthetic.py OUT.png OUT.json [--seed N] [--size WxH]

The shapes demo (tools/demos.py) is `scene()` with its defaults; tests rebuild it from here to get the
true masks. The JSON lists each object's name, colour, bounding box [x, y, w, h] and an interior point
(the pixel farthest from its edge), in the photo's pixels.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from samtab_tools.files import write_atomic

COLOURS = {
    "red disc": (214, 48, 49),
    "blue rectangle": (40, 90, 200),
    "green triangle": (30, 160, 70),
    "yellow ellipse": (240, 200, 40),
    "purple ring": (140, 60, 170),
}


def _shapes(width: int, height: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    s = min(width, height)
    jitter = lambda: rng.uniform(-0.03, 0.03) * s  # noqa: E731 - small moves so seeds differ
    cx, cy = 0.22 * width + jitter(), 0.30 * height + jitter()
    disc = np.hypot(xx - cx, yy - cy) <= 0.16 * s
    x0, y0 = 0.55 * width + jitter(), 0.12 * height + jitter()
    rectangle = (xx >= x0) & (xx <= x0 + 0.30 * width) & (yy >= y0) & (yy <= y0 + 0.25 * height)
    ax, ay = 0.10 * width + jitter(), 0.90 * height
    bx, by = 0.40 * width + jitter(), 0.90 * height
    tx, ty = 0.25 * width + jitter(), 0.58 * height + jitter()

    def side(px, py, qx, qy):
        return (qx - px) * (yy - py) - (qy - py) * (xx - px)

    d1, d2, d3 = side(ax, ay, bx, by), side(bx, by, tx, ty), side(tx, ty, ax, ay)
    triangle = ((d1 <= 0) & (d2 <= 0) & (d3 <= 0)) | ((d1 >= 0) & (d2 >= 0) & (d3 >= 0))
    ex, ey = 0.62 * width + jitter(), 0.70 * height + jitter()
    ellipse = ((xx - ex) / (0.14 * width)) ** 2 + ((yy - ey) / (0.12 * height)) ** 2 <= 1
    rx, ry = 0.88 * width + jitter() * 0.3, 0.72 * height + jitter() * 0.3
    radius = np.hypot(xx - rx, yy - ry)
    ring = (radius <= 0.09 * s) & (radius >= 0.05 * s)
    return {
        "red disc": disc,
        "blue rectangle": rectangle,
        "green triangle": triangle,
        "yellow ellipse": ellipse,
        "purple ring": ring,
    }


def scene(seed: int = 0, size: tuple[int, int] = (960, 640)) -> tuple[np.ndarray, list[dict]]:
    """An RGB uint8 (H, W, 3) photo and its objects: [{name, mask (H, W) bool, colour}], not touching."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # A soft grey-beige gradient with a little noise: not flat, but far from every shape's colour.
    base = 175 + 35 * (xx / width) - 25 * (yy / height)
    image = np.stack([base + 8, base + 4, base - 6], axis=-1) + rng.normal(0, 3, (height, width, 3))
    objects = []
    for name, mask in _shapes(width, height, rng).items():
        colour = COLOURS[name]
        shade = 1 + 0.06 * (xx / width - 0.5)  # a slight shading across each shape, like light on it
        image[mask] = np.asarray(colour, np.float32)[None] * shade[mask][:, None]
        objects.append({"name": name, "mask": mask, "colour": colour})
    return np.clip(image, 0, 255).round().astype(np.uint8), objects


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel farthest from the mask's edge (repeated 4-neighbour erosion), as (x, y)."""
    current, last = mask.copy(), mask
    while current.any():
        last = current
        eroded = current.copy()
        eroded[1:, :] &= current[:-1, :]
        eroded[:-1, :] &= current[1:, :]
        eroded[:, 1:] &= current[:, :-1]
        eroded[:, :-1] &= current[:, 1:]
        eroded[0, :] = eroded[-1, :] = False
        eroded[:, 0] = eroded[:, -1] = False
        current = eroded
    ys, xs = np.nonzero(last)
    middle = len(ys) // 2
    return int(xs[middle]), int(ys[middle])


def describe(objects: list[dict]) -> list[dict]:
    out = []
    for obj in objects:
        ys, xs = np.nonzero(obj["mask"])
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        out.append(
            {
                "name": obj["name"],
                "colour": list(obj["colour"]),
                "box": box,
                "point": list(interior_point(obj["mask"])),
                "area": int(obj["mask"].sum()),
            }
        )
    return out


def _encoded(image: Image.Image, suffix: str) -> bytes:
    out = io.BytesIO()
    if suffix in (".jpg", ".jpeg"):
        image.save(out, "JPEG", quality=92)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def save_scene(photo: Path, truth: Path, seed: int = 0, size: tuple[int, int] = (960, 640)) -> None:
    image, objects = scene(seed, size)
    write_atomic(Path(photo), _encoded(Image.fromarray(image), Path(photo).suffix.lower()))
    described = {"seed": seed, "width": size[0], "height": size[1], "objects": describe(objects)}
    write_atomic(Path(truth), (json.dumps(described, indent=1) + "\n").encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("png", type=Path)
    parser.add_argument("json", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="960x640")
    args = parser.parse_args()
    save_scene(args.png, args.json, args.seed, tuple(int(v) for v in args.size.split("x")))


if __name__ == "__main__":
    main()
