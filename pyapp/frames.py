"""The view a person sees, made again after every click: cheaply, by keeping what did not change.

The photo is shown at view size (its long edge capped at MAX_VIEW_EDGE; the canvas scales it by CSS), as
RGBA made once per photo. Each mask is upsampled to view size once. The other objects change rarely and the
current one on every click: their part of the frame (the photo with their overlays, or the union of their
masks) and its tint in the current object's colour are kept until one of them changes, so a click only
copies its mask's pixels from the tint.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import composite
from .coords import Mapping
from .everything import box_ious
from .prompt import OBJECT_COLOURS, Objects, Prompt, Step

VIEWS = ("overlay", "cutout", "erase")
MAX_VIEW_EDGE = 1024  # the long edge of the pixels composited per click
HOVER_COLOUR = (255, 255, 255)


def fit_view(width: int, height: int, max_edge: int = MAX_VIEW_EDGE) -> tuple[int, int]:
    """The view size of a width × height photo: the same, or scaled down to a long edge of max_edge."""
    scale = min(1.0, max_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class Frames:
    """Frames of one photo. `shown`: the photo at view size, (h, w, 4) uint8 RGBA; `image_size`: the
    photo's own (width, height), which prompts are in."""

    MASKS_KEPT = 64  # view-size masks kept for the next frames (undo, redo, switching objects)

    def __init__(self, shown: np.ndarray, image_size: tuple[int, int], photo: Image.Image | None = None):
        self.shown = shown
        self.image_size = image_size
        self.photo = photo  # the photo at its own size (RGB), for details; None: `shown` is all there is
        self._detail: tuple[tuple, np.ndarray, np.ndarray, np.ndarray] | None = None  # (what, photo, rows, cols)
        self._detail_masks: dict[tuple, np.ndarray] = {}
        self._masks: dict[tuple, np.ndarray] = {}  # by Step.look
        self._base: np.ndarray | None = None  # the part of the frame only other objects change
        self._base_key: tuple | None = None
        self._tints: dict[tuple, np.ndarray] = {}  # the base tinted in a colour (the current object's, the hover's)
        self._soft: tuple[tuple, np.ndarray] | None = None  # the soft-edged cutout's matte, and what it is of

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.shown.shape[:2]
        return width, height

    def forget(self) -> None:
        """Drop what is kept (the objects were replaced)."""
        self._masks.clear()
        self._base_key = None
        self._tints.clear()
        self._soft = None
        self._detail_masks.clear()

    def mask(self, step: Step) -> np.ndarray | None:
        """The step's chosen mask at view size (None before decoding); each is upsampled once."""
        if step.candidates is None or step.prompt.empty:
            return None
        key = step.look
        mask = self._masks.get(key)
        if mask is None:
            if len(self._masks) > self.MASKS_KEPT:
                self._masks.clear()
            mask = self._masks[key] = step.mask(*self.size)
        return mask

    def render(
        self, objects: Objects, view: str, opacity: float, hover: Step | None = None, feather: float = 0.0
    ) -> np.ndarray:
        """The view of these objects, (h, w, 4) uint8 RGBA: every object's mask over the photo, tinted
        (overlay), the objects alone (cutout, its edges faded over `feather` photo pixels) or the photo without
        them (erase); the current object's clicks and box marked; `hover`, a preview of what a click would
        select, tinted white."""
        width, height = self.size
        if view == "cutout" and feather > 0:
            key = (feather, tuple((obj.id, obj.current.look) for obj in objects.items))
            if self._soft is None or self._soft[0] != key:  # the matte is made again only when a mask changes
                steps = [obj.current for obj in objects.items]
                logits = [plane for step in steps if (plane := step.logits(width, height)) is not None]
                alpha = composite.soft_alpha(logits, feather * width / self.image_size[0], (height, width))
                self._soft = (key, alpha)
            pixels = composite.cutout(self.shown, [], self._soft[1])
            current = objects.current
            if current is not None and not current.prompt.empty:
                self._mark(pixels, current.prompt)
            return pixels
        current = objects.current
        others = [
            (obj, mask)
            for obj in objects.items
            if obj is not current
            for mask in [self.mask(obj.current)]
            if mask is not None
        ]
        key = (view, opacity, tuple((obj.id, obj.current.look) for obj, _ in others))
        if key != self._base_key:
            if view == "overlay":
                self._base = composite.overlay(self.shown, [(mask, obj.colour) for obj, mask in others], opacity)
            else:
                self._base = composite.union([mask for _, mask in others], (height, width))
            self._base_key = key
        mine = self.mask(current.current) if current is not None else None
        if view == "overlay":
            # The tint in the colour of the object clicks go to, made when the base changes (a photo opened,
            # another object selected or made) rather than on the click that shows its first mask.
            tinted = self._tinted(current.colour if current is not None else objects.next_colour, opacity)
            pixels = self._base.copy()
            if mine is not None:
                composite.paint(pixels, tinted, mine, current.colour)
            hovered = self.mask(hover) if hover is not None else None
            if hovered is not None:
                composite.paint(pixels, self._tinted(HOVER_COLOUR, opacity), hovered, HOVER_COLOUR)
        else:
            chosen = [self._base] if mine is None else [self._base, mine]
            pixels = (composite.cutout if view == "cutout" else composite.erase)(self.shown, chosen)
        if current is not None and not current.prompt.empty:
            self._mark(pixels, current.prompt)
        return pixels

    def detail(
        self,
        objects: Objects,
        view: str,
        opacity: float,
        region: tuple[int, int, int, int],
        size: tuple[int, int],
        hover: Step | None = None,
        feather: float = 0.0,
    ) -> np.ndarray:
        """A part of the view drawn from the photo's own pixels: when zoomed in, the view's pixels (at most
        MAX_VIEW_EDGE a side) are too few for the screen. `region`: the photo's pixels [x0, x1) × [y0, y1);
        `size`: the (width, height) to draw it at, at most the region's own (beyond 100 % the page enlarges
        the pixels). The masks are the photo-size masks the exports hold, computed for these pixels only
        (Step.logits_at). What render() shows, but for the clicks' markers: the page draws those at the screen's
        resolution. (h, w, 4) uint8 RGBA."""
        photo, rows, cols = self._detail_photo(region, size)
        width, height = self.image_size

        def mask(step: Step) -> np.ndarray | None:
            key = (step.look, region, size)
            if key not in self._detail_masks:
                if len(self._detail_masks) > self.MASKS_KEPT:
                    self._detail_masks.clear()
                logits = step.logits_at(width, height, rows, cols, self.size)
                self._detail_masks[key] = None if logits is None else logits > 0
            return self._detail_masks[key]

        current = objects.current
        if view == "cutout" and feather > 0:
            steps = [obj.current for obj in objects.items]
            logits = [p for step in steps if (p := step.logits_at(width, height, rows, cols, self.size)) is not None]
            alpha = composite.soft_alpha(logits, feather * size[0] / (region[2] - region[0]), photo.shape[:2])
            return composite.cutout(photo, [], alpha)
        masks = [(obj, m) for obj in objects.items if (m := mask(obj.current)) is not None]
        if view != "overlay":
            chosen = [m for _, m in masks]
            return (composite.cutout if view == "cutout" else composite.erase)(photo, chosen)
        pixels = composite.overlay(photo, [(m, obj.colour) for obj, m in masks if obj is not current], opacity)
        mine = next((m for obj, m in masks if obj is current), None)
        if mine is not None:
            composite.paint(pixels, self._detail_tint(pixels, mine, current.colour, opacity), mine, current.colour)
        hovered = mask(hover) if hover is not None else None
        if hovered is not None:
            composite.paint(pixels, self._detail_tint(pixels, hovered, HOVER_COLOUR, opacity), hovered, HOVER_COLOUR)
        return pixels

    @staticmethod
    def _detail_tint(pixels: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], opacity: float) -> np.ndarray:
        """`pixels` tinted with `colour` within the mask's bounds (what paint takes its pixels from)."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        tinted = np.empty_like(pixels)
        if rows.size:
            bounds = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            tinted[bounds] = composite.tint(np.ascontiguousarray(pixels[bounds]), colour, opacity)
        return tinted

    def _detail_photo(
        self, region: tuple[int, int, int, int], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The photo's part for a detail, RGBA at `size`, and the photo's rows and columns its pixels show (the
        masks are sampled there); kept while the detail's region and size stay."""
        key = (region, size)
        if self._detail is None or self._detail[0] != key:
            x0, y0, x1, y1 = region
            photo = self.photo if self.photo is not None else Image.fromarray(self.shown).convert("RGB")
            if photo.size != self.image_size:
                photo = photo.resize(self.image_size, Image.BILINEAR)
            part = photo.crop(region) if size == (x1 - x0, y1 - y0) else photo.resize(size, Image.BILINEAR, box=region)
            rows = y0 + ((np.arange(size[1]) + 0.5) * (y1 - y0) / size[1]).astype(np.intp)
            cols = x0 + ((np.arange(size[0]) + 0.5) * (x1 - x0) / size[0]).astype(np.intp)
            self._detail = (key, composite.rgba(np.asarray(part)), rows, cols)
        return self._detail[1], self._detail[2], self._detail[3]

    def _tinted(self, colour: tuple[int, int, int], opacity: float) -> np.ndarray:
        """The frame's base tinted with `colour`, made once per base and colour."""
        key = (self._base_key, colour)
        tinted = self._tints.get(key)
        if tinted is None:
            if len(self._tints) >= 2:  # another base: the others are of no more use
                self._tints = {k: v for k, v in self._tints.items() if k[0] == self._base_key}
            tinted = self._tints[key] = composite.tint(self._base, colour, opacity)
        return tinted

    def _mark(self, pixels: np.ndarray, prompt: Prompt) -> None:
        """The clicks and the box, where they were made (photo → view pixels)."""
        height, width = pixels.shape[:2]
        view = Mapping(*self.image_size, width, height)

        def at(x: float, y: float) -> tuple[float, float]:
            vx, vy = view.image_to_display(x, y)
            return vx - 0.5, vy - 0.5  # display position → the centre of the view pixel it falls in

        points = [(*at(p.x, p.y), p.include) for p in prompt.points]
        box = None
        if prompt.box is not None:
            box = (*at(prompt.box.x0, prompt.box.y0), *at(prompt.box.x1, prompt.box.y1))
        composite.markers(pixels, points, box)


class Preview:
    """The view while segment everything runs: each mask kept so far laid once over the view the run started
    from, in the objects' colours in turn, so that a frame of it is a copy rather than a composite of every
    mask. A mask whose box is nearly one already laid (box IoU > DUPLICATE_BOX_IOU: the same thing found from
    another grid point, which NMS drops at the end) is not laid again: many grid points find the same thing.
    NMS also orders the objects by score, so their colours may differ from the preview's."""

    DUPLICATE_BOX_IOU = 0.9

    def __init__(self, view: np.ndarray, first_colour: int, opacity: float):
        self.pixels = np.ascontiguousarray(view).copy()
        self.opacity = opacity
        self.next_colour = first_colour  # an index into OBJECT_COLOURS
        self.boxes = np.zeros((0, 4))  # (x0, y0, x1, y1) inclusive, of the masks laid
        self.changed = 0  # counts the masks laid: a frame is worth sending when it grew

    def add(self, found) -> None:
        """Lay a segment-everything candidate (pyapp.everything.Found, at the view's size) on the view."""
        box = np.array(found.box, dtype=np.float64)
        if len(self.boxes) and box_ious(box, self.boxes).max() > self.DUPLICATE_BOX_IOU:
            return
        self.boxes = np.vstack([self.boxes, box])
        colour = OBJECT_COLOURS[self.next_colour % len(OBJECT_COLOURS)]
        self.next_colour += 1
        self.changed += 1
        height, width = self.pixels.shape[:2]
        # The box and a pixel around it (where the outline's edge test looks), as a view: painted in place.
        rows = slice(max(int(box[1]) - 1, 0), min(int(box[3]) + 2, height))
        cols = slice(max(int(box[0]) - 1, 0), min(int(box[2]) + 2, width))
        region = self.pixels[rows, cols]
        tinted = composite.tint(np.ascontiguousarray(region), colour, self.opacity)
        composite.paint(region, tinted, found.mask[rows, cols], colour)
