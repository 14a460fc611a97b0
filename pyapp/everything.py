"""Segment everything: masks for a whole photo without a prompt from the person, as Meta's automatic mask
generator makes them (`sam2/automatic_mask_generator.py`, one crop layer): a grid of single include points,
each decoded with its three candidates; a candidate is kept if its predicted IoU passes pred_iou_thresh and
its stability score (the IoU of the mask thresholded at +offset and at -offset) passes
stability_score_thresh; duplicates go by greedy box NMS ordered by predicted IoU.

Like pyapp.segmenter, the decoder is not called here: `next_feeds()` gives the inputs of the next point and
`add()` takes the decoder's outputs, so the same loop runs onnxruntime in CPython and onnxruntime-web in the
worker (one prompt per run; between runs the worker answers the page, and can be told to stop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import composite
from .feeds import decoder_feeds
from .postprocess import Candidates, upsample
from .prompt import Point, Prompt

# Candidates kept before deduplication, at most: past it, box NMS runs on what is kept so far (a candidate a
# later one would have suppressed first may then be missing; Meta's generator has no such cap). Each keeps its
# logits (256 KB) for the object it may become.
MAX_FOUND = 400


@dataclass(frozen=True)
class Settings:
    """Meta's names and defaults (SAM2AutomaticMaskGenerator), for one crop layer."""

    points_per_side: int = 32
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    mask_threshold: float = 0.0

    def __post_init__(self):
        if not 1 <= self.points_per_side <= 128:
            raise ValueError(f"points_per_side must be 1 to 128, not {self.points_per_side}")


@dataclass(frozen=True, eq=False)
class Found:
    """One candidate kept: its box at the working size (x0, y0, x1, y1: inclusive pixel indices, as Meta's
    batched_mask_to_box), its scores, the grid point that made it (photo pixels), its area and the decoder's
    answer for it alone (a Candidates of one mask: what an object made of it shows and refines)."""

    box: tuple[int, int, int, int]
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    area: int
    candidates: Candidates
    size: tuple[int, int]  # the working size (width, height) the box and area are at
    threshold: float = 0.0

    @property
    def mask(self) -> np.ndarray:
        """The mask at the working size."""
        return upsample(self.candidates.logits[0], *self.size) > self.threshold


def point_grid(n: int) -> np.ndarray:
    """(n * n, 2) points (x, y) in [0, 1], rows of x first, cell centres: Meta's build_point_grid."""
    side = np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    return np.stack([np.tile(side, n), np.repeat(side, n)], axis=-1)


def stability_score(logits: np.ndarray, threshold: float, offset: float) -> float:
    """The IoU of the mask at threshold + offset and at threshold - offset (the first lies inside the
    second). Both empty: nan, as in Meta's division, which no threshold passes."""
    inner = np.count_nonzero(logits > threshold + offset)
    outer = np.count_nonzero(logits > threshold - offset)
    return inner / outer if outer else float("nan")


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the mask's pixels, inclusive; zeros for an empty mask (Meta's convention)."""
    found = composite.mask_bounds(mask)
    if found is None:
        return (0, 0, 0, 0)
    rows, cols = found
    return (int(cols.start), int(rows.start), int(cols.stop) - 1, int(rows.stop) - 1)


def box_ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The IoU of one box (x0, y0, x1, y1) with each of `boxes` (N, 4), areas as torchvision's:
    (x1 - x0) * (y1 - y0)."""
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / ((box[2] - box[0]) * (box[3] - box[1]) + area - inter)


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression as torchvision's nms: highest score first, dropping every later box
    whose IoU with a kept one is above threshold (areas as (x1 - x0) * (y1 - y0)). Returns kept indices,
    best first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= box_ious(boxes[i], boxes) > threshold
    return keep


class Everything:
    """One photo's segment-everything run: `pending` points left; for each, `next_feeds()` then `add()` with
    the decoder's outputs; `result()` once done (or at any moment: what is kept so far, deduplicated)."""

    def __init__(self, segmenter, settings: Settings | None = None, size: tuple[int, int] | None = None):
        """`size`: the working (width, height) masks are made at for the filters and boxes (default: the
        photo's, as Meta's; the page uses its view's)."""
        self.segmenter = segmenter
        self.settings = settings or Settings()
        self.size = size or (segmenter.width, segmenter.height)
        grid = point_grid(self.settings.points_per_side)
        self.points = grid * np.array([segmenter.width, segmenter.height], dtype=np.float64)
        self.done = 0
        self.found: list[Found] = []
        self.runs = 0

    @property
    def pending(self) -> int:
        return len(self.points) - self.done

    def next_feeds(self, batch: int = 1) -> dict[str, np.ndarray]:
        """The decoder's inputs for the next `batch` grid points, each an include click there with nothing to
        refine: a batch of prompts (dimension 0) for a decoder that takes one (ModelInfo.prompt_batch)."""
        segmenter = self.segmenter
        feeds = []
        for x, y in self.points[self.done : self.done + batch]:
            prompt = Prompt(points=(Point(float(x), float(y), include=True),))
            feeds.append(decoder_feeds(segmenter.input_names, segmenter.embeddings, prompt, segmenter.mapping))
        if len(feeds) == 1:
            return feeds[0]
        batched = {name: np.concatenate([f[name] for f in feeds]) for name in ("point_coords", "point_labels")}
        return {**feeds[0], **batched}

    def add(self, outputs: dict[str, np.ndarray]) -> list[Found]:
        """The decoder's outputs for the points next_feeds() gave (one decoder run): the candidates that pass
        the filters are kept (and returned)."""
        self.runs += 1
        kept = []
        for index in range(len(outputs["iou_predictions"])):
            kept += self._add_one({name: value[index : index + 1] for name, value in outputs.items()})
        return kept

    def _add_one(self, outputs: dict[str, np.ndarray]) -> list[Found]:
        settings = self.settings
        point = tuple(float(v) for v in self.points[self.done])
        self.done += 1
        answer = Candidates.from_outputs(outputs)
        kept = []
        for index, score in enumerate(answer.iou.tolist()):
            if not score > settings.pred_iou_thresh:
                continue
            full = upsample(answer.logits[index], *self.size)
            stability = stability_score(full, settings.mask_threshold, settings.stability_score_offset)
            if not stability >= settings.stability_score_thresh:
                continue
            mask = full > settings.mask_threshold
            one = Candidates(
                answer.logits[index : index + 1].copy(),
                answer.iou[index : index + 1].copy(),
                answer.low_res_logits[index : index + 1].copy(),
            )
            area, box, threshold = int(np.count_nonzero(mask)), mask_box(mask), settings.mask_threshold
            kept.append(Found(box, float(score), float(stability), point, area, one, self.size, threshold))
        self.found += kept
        if len(self.found) > MAX_FOUND:
            self.found = self.result()
        return kept

    def result(self) -> list[Found]:
        """The masks kept, duplicates removed by box NMS (best predicted IoU first)."""
        if not self.found:
            return []
        boxes = np.array([found.box for found in self.found], dtype=np.float64)
        scores = np.array([found.predicted_iou for found in self.found])
        return [self.found[i] for i in box_nms(boxes, scores, self.settings.box_nms_thresh)]
