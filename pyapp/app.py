"""The app's state and commands, without the browser: one photo, its objects, the view, the exports.

The browser edge (pyapp.web.worker) turns the page's messages into calls here, runs the decoder that
`next_decode()` asks for in onnxruntime-web, and posts what `render()` and `state()` return. The tests
drive this same class in CPython with onnxruntime, so everything but the edge is tested without a browser.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from . import collection, composite, everything, export
from .brush import Stroke
from .bundle import Bundle, BundleError
from .coords import Mapping
from .frames import MAX_VIEW_EDGE, VIEWS, Frames, fit_view
from .prompt import Box, Objects, Point, Prompt, SegObject, Step
from .segmenter import Segmenter, record

# Polygon exports (COCO, YOLO) are simplified within this many pixels (COCO falls back to RLE where a
# polygon would lose more than 1 % of the area: export.MAX_POLYGON_LOSS).
POLYGON_TOLERANCE = 1.0
MAX_POLYGON_TOLERANCE = 20.0
# Cutouts (the view and the PNG) fade their edges over this many photo pixels; 0: hard edges.
MAX_FEATHER = 50.0
# A zoomed-in view's detail is drawn on at most this many pixels (a 4K screen's worth).
MAX_DETAIL_PIXELS = 3840 * 2160


def polygon_tolerance(value: float | None) -> float:
    """A person's polygon tolerance (pixels), checked; None: POLYGON_TOLERANCE."""
    if value is None:
        return POLYGON_TOLERANCE
    if not 0 <= value <= MAX_POLYGON_TOLERANCE:
        raise ValueError(f"the polygon tolerance must be 0 to {MAX_POLYGON_TOLERANCE:g} pixels, not {value:g}")
    return float(value)


@dataclass
class Decode:
    """A decode the edge should run: the object and the step it is for, and the decoder's feeds."""

    obj: SegObject
    step: Step
    feeds: dict[str, np.ndarray]


class App:
    max_view_edge = MAX_VIEW_EDGE  # the view's long edge in pixels (benchmarks try others)

    def __init__(self):
        self.segmenter: Segmenter | None = None
        self.photo_name = "photo"
        self.view = "overlay"
        self.opacity = 0.5
        self.feather = 0.0  # the cutout's soft edge, in photo pixels (0: hard)
        self._full: np.ndarray | None = None  # the photo at its own size, (H, W, 3) uint8, for exports
        self._photo: Image.Image | None = None
        self.frames: Frames | None = None  # the view, at view size

    # --- opening ------------------------------------------------------------------------------------

    def open(
        self,
        bundle: Bundle,
        model_name: str,
        input_names: list[str],
        photo: Image.Image,
        *,
        photo_name: str = "photo",
        image_sha256: str | None = None,
    ) -> None:
        """Switch to a photo. Raises BundleError (and changes nothing) if the bundle does not fit the
        model or the photo; the previous photo and its objects are kept in that case."""
        segmenter = Segmenter(bundle, model_name, input_names, image_sha256=image_sha256)
        if image_sha256 is not None and photo.size != (bundle.width, bundle.height):
            # A person's own photo must be the one the bundle describes, pixel for pixel: a bundle that
            # declares another size (damaged, or crafted) would otherwise have the photo resized to it.
            raise BundleError(
                f"the bundle describes a {bundle.width}×{bundle.height} photo, but "
                f"{photo_name} is {photo.width}×{photo.height} (after its EXIF orientation); "
                "encode this photo again with tools/encode.py"
            )
        if photo.size != (bundle.width, bundle.height):
            # A preview smaller than the photo (demos cap it): shown as is, scaled to the photo's size for
            # exports. The photo a person opens themselves is always its full size.
            photo = photo.resize((bundle.width, bundle.height), Image.LANCZOS)
        self.segmenter = segmenter
        self._photo = photo.convert("RGB")
        self._full = None
        size = fit_view(*self._photo.size, self.max_view_edge)
        shown = self._photo.resize(size, Image.BILINEAR) if size != self._photo.size else self._photo
        self.frames = Frames(np.asarray(shown.convert("RGBA")), self._photo.size, self._photo)  # RGBA once
        self.photo_name = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", photo_name) or "photo"

    def reset(self) -> None:
        """Drop every object and the undo history (before restoring saved work over a fresh start)."""
        self._require().objects = Objects()
        self.frames.forget()

    @property
    def ready(self) -> bool:
        return self.segmenter is not None

    @property
    def view_size(self) -> tuple[int, int]:
        return self.frames.size

    def _require(self) -> Segmenter:
        if self.segmenter is None:
            raise RuntimeError("no photo is open")
        return self.segmenter

    # --- prompts ------------------------------------------------------------------------------------

    def _image_point(self, x: float, y: float, css_width: float, css_height: float) -> tuple[float, float]:
        segmenter = self._require()
        return Mapping(segmenter.width, segmenter.height, css_width, css_height).display_to_image(x, y)

    def click(
        self, x: float, y: float, css_width: float, css_height: float, include: bool = True, *, join: bool | None = None
    ) -> bool:
        """A click at CSS (x, y) on an element of css_width × css_height showing the whole photo.
        Raises OutsideImage (and changes nothing) for a click off the photo. `join`: see SegObject.push
        (by default a click joins the step still waiting for its decode); returns whether it joined."""
        point = Point(*self._image_point(x, y, css_width, css_height), include)
        return self.segmenter.objects.edit(lambda prompt: prompt.with_point(point), join=join)

    def box(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        css_width: float,
        css_height: float,
        *,
        join: bool | None = None,
    ) -> bool:
        box = Box.from_corners(
            *self._image_point(x0, y0, css_width, css_height), *self._image_point(x1, y1, css_width, css_height)
        )
        return self.segmenter.objects.edit(lambda prompt: prompt.with_box(box), join=join)

    def stroke(
        self,
        points: list[tuple[float, float]],
        radius: float,
        css_width: float,
        css_height: float,
        *,
        hardness: float = 1.0,
        add: bool = True,
    ) -> None:
        """A brush stroke on the current object, its path and radius in CSS pixels of an element of css_width ×
        css_height showing the whole photo (pyapp.brush); raises IndexError if there is no object to paint."""
        segmenter = self._require()
        mapping = Mapping(segmenter.width, segmenter.height, css_width, css_height)
        path = tuple(mapping.display_to_image(x, y, inside=False) for x, y in points)
        scale = segmenter.width / css_width
        stroke = Stroke(path, radius * scale, hardness, add, (segmenter.width, segmenter.height))
        segmenter.objects.stroke(stroke)

    def undo(self) -> None:
        """Undo the last action, on whichever object it was (raises IndexError if there is none)."""
        self._require().objects.undo()

    def redo(self) -> None:
        self._require().objects.redo()

    def clear(self) -> None:
        objects = self._require().objects
        if objects.current is None or objects.current.prompt.empty:
            raise IndexError("nothing to clear")
        objects.edit(lambda prompt: Prompt())

    def new_object(self) -> SegObject:
        return self._require().objects.new()

    def select(self, object_id: int) -> None:
        self._require().objects.select(object_id)

    def rename(self, object_id: int, name: str) -> None:
        self._require().objects.rename(object_id, name)

    def classify(self, object_id: int, label: str | None) -> None:
        self._require().objects.classify(object_id, label)

    def delete(self, object_id: int) -> None:
        self._require().objects.delete(object_id)

    def choose_candidate(self, index: int) -> None:
        self._require().objects.choose(index)

    def set_view(self, view: str, opacity: float | None = None, feather: float | None = None) -> None:
        if view not in VIEWS:
            raise ValueError(f"the view must be one of {', '.join(VIEWS)}, not {view!r}")
        if feather is not None and not 0 <= feather <= MAX_FEATHER:
            raise ValueError(f"the soft edge must be 0 to {MAX_FEATHER:g} pixels, not {feather:g}")
        self.view = view
        if opacity is not None:
            self.opacity = min(1.0, max(0.0, float(opacity)))
        if feather is not None:
            self.feather = float(feather)

    # --- decoding -----------------------------------------------------------------------------------

    def next_decode(self) -> Decode | None:
        """The decode the current state needs, if any: the current object's first, then any other object's
        whose last edit was left waiting when the person moved on to another object (a new one, a click on
        its name) before its decode began. Asked again after each decode, so clicks made meanwhile are
        decoded once, together (latest wins)."""
        if self.segmenter is None:
            return None
        objects = self.segmenter.objects
        first = [objects.current] if objects.current is not None else []
        for obj in first + [o for o in objects.items if o is not objects.current]:
            step = obj.current.next_to_decode()
            if step is not None:
                decode = Decode(obj, step, self.segmenter.feeds(step))
                step.in_flight = True  # clicks from now on make a new step (see SegObject.push)
                return decode
        return None

    def accept(self, decode: Decode, outputs: dict[str, np.ndarray]) -> None:
        """The decoder's answer, for the step it was asked for (the prompt may have moved on since)."""
        decode.step.in_flight = False
        record(decode.step, outputs)

    def abandon(self, decode: Decode) -> None:
        """The decode failed: its step waits again, to be decoded by the next attempt."""
        decode.step.in_flight = False

    def speculate(self, x: float, y: float, css_width: float, css_height: float, include: bool = True) -> Decode | None:
        """Feeds for what a click at CSS (x, y) would make of the current object: its prompt plus that point,
        refining its current mask; nothing is recorded (see adopt). Decode.obj is the current object (None
        if there is none yet). None while the current state still waits for its decode (the answer would
        refine a mask not known yet); OutsideImage off the photo."""
        obj = self._require().objects.current
        base = obj.current if obj is not None else None
        if base is not None and not base.prompt.empty and base.candidates is None:
            return None
        return replace(self.detached(x, y, css_width, css_height, include, base), obj=obj)

    def detached(
        self, x: float, y: float, css_width: float, css_height: float, include: bool, previous: Step | None
    ) -> Decode:
        """Feeds for a step of no object: `previous`'s prompt (if any) plus a click at CSS (x, y), refining
        its mask. Decode.obj is None."""
        segmenter = self._require()
        point = Point(*self._image_point(x, y, css_width, css_height), include)
        step = Step(
            previous.prompt.with_point(point) if previous is not None else Prompt((point,)),
            previous=previous,
            strokes=previous.strokes if previous is not None else (),
        )
        return Decode(None, step, segmenter.feeds(step))

    def add_objects(self, found: list[tuple[str, everything.Found]]) -> list[SegObject]:
        """Objects made from segment-everything masks, named as given, each showing its mask (a step whose
        prompt is the grid point that made it, decoded: a click on it refines that mask); one undo step."""
        objects = self._require().objects
        made = []
        with objects.action():
            for name, item in found:
                obj = objects.new(name)
                objects.adopt(Step(Prompt((Point(*item.point),)), candidates=item.candidates))
                made.append(obj)
        return made

    def remove_background(self) -> SegObject:
        """The photo's main subject as a new object, "Subject", shown in the cutout view; one undo step.

        Its prompt is a box around the whole photo: asked for "the thing in this box", SAM answers with what
        fills the frame, and the baseline with what is inside it and unlike its edges. The prompt is solid
        (pyapp.regions): a subject is one thing, so the mask's holes are filled and its specks dropped (what
        Meta's clean-up of small regions does, for any size). The best-scored candidate shows, as for a click;
        clicks refine it (they stay solid), and the other candidates can be chosen."""
        segmenter = self._require()
        objects = segmenter.objects
        box = Box(0.0, 0.0, segmenter.width - 1.0, segmenter.height - 1.0)  # pixel centres, corner to corner
        with objects.action():
            obj = objects.new("Subject")
            objects.edit(lambda prompt: Prompt(box=box, solid=True))
        self.view = "cutout"
        return obj

    def adopt(self, step: Step) -> None:
        """Make a speculated step the current object's next state (see Objects.adopt)."""
        self._require().objects.adopt(step)

    # --- pixels -------------------------------------------------------------------------------------

    def step_mask(self, step: Step, width: int, height: int) -> np.ndarray | None:
        """The step's shown mask at (width, height): at view size from the frames' masks (upsampled once)."""
        return self.frames.mask(step) if (width, height) == self.view_size else step.mask(width, height)

    def _masks(self, width: int, height: int, objects=None) -> list[tuple[SegObject, np.ndarray]]:
        segmenter = self._require()
        out = []
        for obj in objects if objects is not None else segmenter.objects.items:
            mask = self.step_mask(obj.current, width, height)
            if mask is not None:
                out.append((obj, mask))
        return out

    def render(self, hover: Step | None = None) -> np.ndarray:
        """The current view at view size, (h, w, 4) uint8 RGBA (pyapp.frames)."""
        return self.frames.render(self._require().objects, self.view, self.opacity, hover, self.feather)

    def detail(
        self, region: tuple[float, float, float, float], width: int, height: int, hover: Step | None = None
    ) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """The part of the view a zoomed-in page shows, from the photo's own pixels (Frames.detail): `region`,
        the photo's pixels it covers ((x0, y0, x1, y1), edges, clipped to the photo), on `width` × `height`
        screen pixels. Drawn at that size, or at the region's own size along an axis where that is smaller (the page
        enlarges it), and at most MAX_DETAIL_PIXELS. Returns the whole pixels drawn and the RGBA."""
        segmenter = self._require()
        x0, y0, x1, y1 = region
        x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        x1, y1 = min(segmenter.width, int(np.ceil(x1))), min(segmenter.height, int(np.ceil(y1)))
        if x1 <= x0 or y1 <= y0 or width < 1 or height < 1:
            raise ValueError(f"the detail's region {region} misses the photo or its size {width}×{height} is empty")
        cap = min(1.0, (MAX_DETAIL_PIXELS / ((x1 - x0) * (y1 - y0))) ** 0.5)
        scale_x, scale_y = min(cap, width / (x1 - x0)), min(cap, height / (y1 - y0))
        size = (max(1, round((x1 - x0) * scale_x)), max(1, round((y1 - y0) * scale_y)))
        pixels = self.frames.detail(
            segmenter.objects, self.view, self.opacity, (x0, y0, x1, y1), size, hover, self.feather
        )
        return (x0, y0, x1, y1), pixels

    def full_photo(self) -> np.ndarray:
        if self._full is None:
            self._full = np.asarray(self._photo)
        return self._full

    # --- exports ------------------------------------------------------------------------------------

    def _export_objects(self) -> list[tuple[SegObject, np.ndarray]]:
        segmenter = self._require()
        current = segmenter.objects.current
        masks = self._masks(segmenter.width, segmenter.height, [current] if current else [])
        if not masks:
            raise RuntimeError("there is no mask to export yet: click on the photo first")
        return masks

    def export_mask(self) -> tuple[str, str, bytes]:
        [(obj, mask)] = self._export_objects()
        return f"{self.photo_name}-{_slug(obj.name)}-mask.png", "image/png", export.png(mask, self._made_by(obj))

    def export_cutout(self) -> tuple[str, str, bytes]:
        [(obj, mask)] = self._export_objects()
        return (
            f"{self.photo_name}-{_slug(obj.name)}-cutout.png",
            "image/png",
            export.png(composite.cutout(self.full_photo(), [mask], self._soft_alpha([obj])), self._made_by(obj)),
        )

    def _made_by(self, obj: SegObject) -> dict[str, str]:
        """What a PNG export says of itself (text chunks): the app, the model that made the mask, the object."""
        return {"Software": "samtab", "Model": self._require().model_name, "Title": obj.name}

    def _soft_alpha(self, objects: list[SegObject]) -> np.ndarray | None:
        """The objects' soft-edged alpha at the photo's size, or None with hard edges (feather 0)."""
        if not self.feather:
            return None
        segmenter = self._require()
        size = (segmenter.width, segmenter.height)
        logits = [plane for obj in objects if (plane := obj.current.logits(*size)) is not None]
        return composite.soft_alpha(logits, self.feather, (segmenter.height, segmenter.width))

    def export_masks(self, tolerance: float | None = None) -> tuple[str, str, bytes]:
        """Every object's mask PNG at the photo's size, zipped (<photo>-<object>-mask.png each)."""
        segmenter = self._require()
        masks = self._masks(segmenter.width, segmenter.height)
        if not masks:
            raise RuntimeError("there is no mask to export yet: click on the photo first")
        out = io.BytesIO()
        names: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for obj, mask in masks:
                name = f"{self.photo_name}-{_slug(obj.name)}-mask.png"
                if name in names:  # two objects of one name: the second gets its id
                    name = f"{self.photo_name}-{_slug(obj.name)}-{obj.id}-mask.png"
                names.add(name)
                archive.writestr(name, export.png(mask, self._made_by(obj)))
            archive.comment = f"samtab; model: {segmenter.model_name}".encode()[:65535]
        return f"{self.photo_name}-masks.zip", "application/zip", out.getvalue()

    def labels(self) -> list[dict]:
        """Every object with a mask as a collection's session keeps it (pyapp.collection.Labelled): its name,
        class and mask (COCO RLE at the photo's size)."""
        segmenter = self._require()
        return [
            collection.Labelled.of(obj.name, obj.label, mask).document()
            for obj, mask in self._masks(segmenter.width, segmenter.height)
        ]

    def export_coco(self, tolerance: float | None = None) -> tuple[str, str, bytes]:
        segmenter = self._require()
        masks = self._masks(segmenter.width, segmenter.height)
        if not masks:
            raise RuntimeError("there is no mask to export yet: click on the photo first")
        document = export.coco(
            [(obj.label or obj.name, mask) for obj, mask in masks],
            width=segmenter.width,
            height=segmenter.height,
            file_name=self.photo_name,
            score=[float(obj.current.candidates.iou[obj.current.chosen]) for obj, _ in masks],
            polygon_tolerance=polygon_tolerance(tolerance),
            model=segmenter.model_name,
        )
        return f"{self.photo_name}-coco.json", "application/json", json.dumps(document).encode()

    def export_yolo(self, tolerance: float | None = None) -> tuple[str, str, bytes]:
        """YOLO segmentation labels as a zip: labels/<photo>.txt (a line per object) and classes.txt."""
        segmenter = self._require()
        masks = self._masks(segmenter.width, segmenter.height)
        if not masks:
            raise RuntimeError("there is no mask to export yet: click on the photo first")
        labels, classes = export.yolo(
            [(obj.label or obj.name, mask) for obj, mask in masks], tolerance=polygon_tolerance(tolerance)
        )
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"labels/{self.photo_name}.txt", labels)
            archive.writestr("classes.txt", classes)
            archive.comment = f"samtab; model: {segmenter.model_name}".encode()[:65535]
        return f"{self.photo_name}-yolo.zip", "application/zip", out.getvalue()

    # --- what the page shows ------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything the page's controls show, as plain JSON-able values."""
        if self.segmenter is None:
            return {"open": False}
        objects = self.segmenter.objects
        current = objects.current
        step = current.current if current else None
        candidates = step.candidates if step else None
        return {
            "open": True,
            "width": self.segmenter.width,
            "height": self.segmenter.height,
            "view": self.view,
            "opacity": self.opacity,
            "objects": [
                {
                    "id": o.id,
                    "name": o.name,
                    "label": o.label,
                    "colour": "#{:02x}{:02x}{:02x}".format(*o.colour),
                    "clicks": o.prompt.clicks,
                    "has_mask": o.current.candidates is not None and not o.prompt.empty,
                }
                for o in objects.items
            ],
            "current": current.id if current else None,
            "can_undo": objects.can_undo,
            "can_redo": objects.can_redo,
            "candidates": [round(float(v), 4) for v in candidates.iou] if candidates is not None else [],
            "chosen": step.chosen if candidates is not None else None,
            "prompt": current.prompt.to_json() if current else None,
        }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "object"
