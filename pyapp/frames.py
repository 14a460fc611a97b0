"""The view a person sees, made again after every click: cheaply, by keeping what did not change.

The photo is shown at view size (its long edge capped at MAX_VIEW_EDGE; the canvas scales it by CSS), as
RGBA made once per photo. Zoomed in, the part on screen is drawn again from the photo's own pixels (a
detail). Each is a Layer: each mask made once at its size, the other objects' part of the frame and its tint
kept until one of them changes, so a click only copies its mask's pixels from the tint.
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


class Layer:
    """What a frame is made of at one size: the photo's pixels, (h, w, 4) uint8 RGBA, and a step's mask and
    logits at that size (functions given); and what is kept from one frame to the next. The other objects change
    rarely and the current one on every click: their part of the frame (the photo with their overlays, or the
    union of their masks) and its tint in the current object's colour are kept until one of them changes, so a
    click only copies its mask's pixels from the tint. Each mask is made once (by Step.look)."""

    MASKS_KEPT = 64  # masks kept for the next frames (undo, redo, switching objects)

    def __init__(self, photo: np.ndarray, mask_of, logits_of, feather_scale: float):
        self.photo = photo
        self._mask_of, self._logits_of = mask_of, logits_of
        self.feather_scale = feather_scale  # this layer's pixels per photo pixel (a soft edge is in photo pixels)
        self._masks: dict[tuple, np.ndarray] = {}
        self._base: np.ndarray | None = None  # the part of the frame only other objects change
        self._base_key: tuple | None = None
        self._tints: dict[tuple, np.ndarray] = {}  # the base tinted in a colour (the current object's, the hover's)
        self._soft: tuple[tuple, np.ndarray] | None = None  # the soft-edged cutout's matte, and what it is of

    def forget(self) -> None:
        self._masks.clear()
        self._base_key = None
        self._tints.clear()
        self._soft = None

    def mask(self, step: Step) -> np.ndarray | None:
        if step.candidates is None or step.prompt.empty:
            return None
        key = step.look
        mask = self._masks.get(key)
        if mask is None:
            if len(self._masks) > self.MASKS_KEPT:
                self._masks.clear()
            mask = self._masks[key] = self._mask_of(step)
        return mask

    def render(
        self, objects: Objects, view: str, opacity: float, hover: Step | None = None, feather: float = 0.0
    ) -> np.ndarray:
        """The view of these objects at this layer's size (see Frames.render), without the clicks' markers."""
        height, width = self.photo.shape[:2]
        if view == "cutout" and feather > 0:
            key = (feather, tuple((obj.id, obj.current.look) for obj in objects.items))
            if self._soft is None or self._soft[0] != key:  # the matte is made again only when a mask changes
                logits = [plane for obj in objects.items if (plane := self._logits_of(obj.current)) is not None]
                alpha = composite.soft_alpha(logits, feather * self.feather_scale, (height, width))
                self._soft = (key, alpha)
            return composite.cutout(self.photo, [], self._soft[1])
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
                self._base = composite.overlay(self.photo, [(mask, obj.colour) for obj, mask in others], opacity)
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
            return pixels
        chosen = [self._base] if mine is None else [self._base, mine]
        return (composite.cutout if view == "cutout" else composite.erase)(self.photo, chosen)

    def _tinted(self, colour: tuple[int, int, int], opacity: float) -> np.ndarray:
        """The frame's base tinted with `colour`, made once per base and colour."""
        key = (self._base_key, colour)
        tinted = self._tints.get(key)
        if tinted is None:
            if len(self._tints) >= 2:  # another base: the others are of no more use
                self._tints = {k: v for k, v in self._tints.items() if k[0] == self._base_key}
            tinted = self._tints[key] = composite.tint(self._base, colour, opacity)
        return tinted


class Frames:
    """Frames of one photo. `shown`: the photo at view size, (h, w, 4) uint8 RGBA; `image_size`: the
    photo's own (width, height), which prompts are in; `photo`: the photo itself (RGB), for details."""

    MASKS_KEPT = Layer.MASKS_KEPT

    def __init__(self, shown: np.ndarray, image_size: tuple[int, int], photo: Image.Image | None = None):
        self.shown = shown
        self.image_size = image_size
        self.photo = photo  # None: `shown` is all there is (scaled up for details)
        width, height = self.size
        self._view = Layer(
            shown, lambda step: step.mask(width, height), lambda step: step.logits(width, height), width / image_size[0]
        )
        self._detail: tuple[tuple, Layer] | None = None  # the last detail's (region, size) and its layer

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.shown.shape[:2]
        return width, height

    def forget(self) -> None:
        """Drop what is kept (the objects were replaced)."""
        self._view.forget()
        if self._detail is not None:
            self._detail[1].forget()

    def mask(self, step: Step) -> np.ndarray | None:
        """The step's chosen mask at view size (None before decoding); each is upsampled once."""
        return self._view.mask(step)

    def render(
        self, objects: Objects, view: str, opacity: float, hover: Step | None = None, feather: float = 0.0
    ) -> np.ndarray:
        """The view of these objects, (h, w, 4) uint8 RGBA: every object's mask over the photo, tinted
        (overlay), the objects alone (cutout, its edges faded over `feather` photo pixels) or the photo without
        them (erase); the current object's clicks and box marked; `hover`, a preview of what a click would
        select, tinted white."""
        pixels = self._view.render(objects, view, opacity, hover, feather)
        current = objects.current
        if current is not None and not current.prompt.empty:
            self.mark(pixels, current.prompt)
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
        resolution. (h, w, 4) uint8 RGBA. What is kept from one detail to the next is kept while the region and
        size stay (clicks, undo, a hover)."""
        key = (region, size)
        if self._detail is None or self._detail[0] != key:
            self._detail = (key, self._detail_layer(region, size))
        return self._detail[1].render(objects, view, opacity, hover, feather)

    def _detail_layer(self, region: tuple[int, int, int, int], size: tuple[int, int]) -> Layer:
        x0, y0, x1, y1 = region
        photo = self.photo if self.photo is not None else Image.fromarray(self.shown).convert("RGB")
        if photo.size != self.image_size:
            photo = photo.resize(self.image_size, Image.BILINEAR)
        part = photo.crop(region) if size == (x1 - x0, y1 - y0) else photo.resize(size, Image.BILINEAR, box=region)
        # The photo's rows and columns the detail's pixels show: the masks are sampled there.
        rows = y0 + ((np.arange(size[1]) + 0.5) * (y1 - y0) / size[1]).astype(np.intp)
        cols = x0 + ((np.arange(size[0]) + 0.5) * (x1 - x0) / size[0]).astype(np.intp)
        width, height = self.image_size

        def logits_of(step: Step) -> np.ndarray | None:
            return step.logits_at(width, height, rows, cols, self.size)

        def mask_of(step: Step) -> np.ndarray | None:
            logits = logits_of(step)
            return None if logits is None else logits > 0

        return Layer(composite.rgba(np.asarray(part)), mask_of, logits_of, size[0] / (x1 - x0))

    def mark(self, pixels: np.ndarray, prompt: Prompt) -> None:
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
