"""The messages between the page (site/js/) and the worker (pyapp.session): one dataclass each.

The page posts plain objects; `parse` turns one into its dataclass, checking every field (a message with a
missing or wrong field is refused with a message that names it, rather than failing somewhere inside).
The worker's answers are dataclasses too; `to_message` gives the plain object the edge posts (numpy arrays
and bytes in it become transferred ArrayBuffers there). Field names are the wire names.

Commands change the photo's state: the page numbers them (`cmd`), keeps those the worker applied in a log
(replayed into a restarted worker, saved to be restored after a reload) and forgets those it refused.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ProtocolError(ValueError):
    """A message from the page that does not have the fields its type needs."""


@dataclass(frozen=True)
class Message:
    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Command(Message):
    """A change to the open photo's state, numbered by the page (None when replayed without a number)."""

    cmd: int | None = field(default=None, kw_only=True)


# --- page → worker: opening -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDemo(Message):
    """A demo; the page passes the bundle's and the decoder's bytes when it has downloaded them."""

    kind: ClassVar[str] = "open"
    seq: int
    bundle_url: str
    model_url: str
    preview_url: str
    name: str = "photo"
    bundle: bytes | None = None
    decoder: bytes | None = None


@dataclass(frozen=True)
class OpenFiles(Message):
    """A person's own photo and its bundle; `models`: the site's model names and their folders' URLs."""

    kind: ClassVar[str] = "open-files"
    seq: int
    photo: bytes
    photo_name: str
    bundle: bytes
    bundle_name: str
    models: dict = field(default_factory=dict)


# --- page → worker: commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Click(Command):
    """At CSS (x, y) on the canvas, shown css_width × css_height. id: the page's count of clicks and boxes;
    t0: when it was made (performance.now()); joins: replayed, whether it joined the step before."""

    kind: ClassVar[str] = "click"
    x: float
    y: float
    css_width: float
    css_height: float
    include: bool = True
    id: int = 0
    t0: float | None = None
    joins: bool | None = None


@dataclass(frozen=True)
class Box(Command):
    kind: ClassVar[str] = "box"
    x0: float
    y0: float
    x1: float
    y1: float
    css_width: float
    css_height: float
    id: int = 0
    t0: float | None = None
    joins: bool | None = None


@dataclass(frozen=True)
class Undo(Command):
    kind: ClassVar[str] = "undo"


@dataclass(frozen=True)
class Redo(Command):
    kind: ClassVar[str] = "redo"


@dataclass(frozen=True)
class Clear(Command):
    kind: ClassVar[str] = "clear"


@dataclass(frozen=True)
class NewObject(Command):
    kind: ClassVar[str] = "new-object"


@dataclass(frozen=True)
class Select(Command):
    kind: ClassVar[str] = "select"
    id: int


@dataclass(frozen=True)
class Delete(Command):
    kind: ClassVar[str] = "delete"
    id: int


@dataclass(frozen=True)
class Rename(Command):
    kind: ClassVar[str] = "rename"
    id: int
    name: str


@dataclass(frozen=True)
class Classify(Command):
    """Give object `id` a class (a name of the collection's class list); null: none."""

    kind: ClassVar[str] = "classify"
    id: int
    label: str | None = None


@dataclass(frozen=True)
class Candidate(Command):
    kind: ClassVar[str] = "candidate"
    index: int


@dataclass(frozen=True)
class View(Command):
    """The view (overlay, cutout, erase), the overlay's opacity, and the cutout's soft edge in photo pixels."""

    kind: ClassVar[str] = "view"
    view: str
    opacity: float | None = None
    feather: float | None = None


@dataclass(frozen=True)
class Reset(Command):
    """Every object and the undo history dropped (before restoring saved work over a fresh start). The page
    sends it without a `cmd`: it is not logged, since the log starts again with it."""

    kind: ClassVar[str] = "reset"


# --- page → worker: the rest ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay(Message):
    """Commands applied before, applied again in order (a restarted worker; work restored after a reload).
    Kept as plain objects: each is parsed when its turn comes, so one bad command skips only itself."""

    kind: ClassVar[str] = "replay"
    messages: list = field(default_factory=list)


@dataclass(frozen=True)
class Export(Message):
    """A download: mask, cutout, masks (every object's mask PNG, zipped), coco or yolo; `tolerance`: the
    polygons' simplification in pixels (coco, yolo; None: the app's default). "labels": every object's name,
    class and mask as JSON (pyapp.collection's session keeps them), for the page's collection, not a file:
    answered once a decode under way has ended (the photo left has every click's mask); what the page sends
    after it waits for it."""

    kind: ClassVar[str] = "export"
    what: str
    tolerance: float | None = None


@dataclass(frozen=True)
class Hover(Message):
    """The pointer rests at CSS (x, y) (still for a moment), or a mouse button went down there (press): what
    a click there would make is decoded ahead of the click; include: the label such a click would have (the
    button, the exclude mode). A press's decode is not shown as the hover preview (it may become a box)."""

    kind: ClassVar[str] = "hover"
    x: float
    y: float
    css_width: float
    css_height: float
    include: bool = True
    press: bool = False


@dataclass(frozen=True)
class HoverEnd(Message):
    kind: ClassVar[str] = "hover-end"


@dataclass(frozen=True)
class Everything(Command):
    """Segment the whole photo (pyapp.everything): a grid of points_per_side x points_per_side single-point
    prompts; each mask kept becomes an object named "auto N", all of them one undo step. Progress comes as
    `progress` messages; cancelled (EverythingCancel), nothing is added and the command is refused."""

    kind: ClassVar[str] = "everything"
    points_per_side: int = 16


@dataclass(frozen=True)
class Stroke(Command):
    """A brush stroke on the current object, one message per stroke: its path as [[x, y], ...] and its radius
    in CSS pixels of an element of css_width × css_height showing the whole photo; hardness 0..1; add or
    remove (pyapp.brush)."""

    kind: ClassVar[str] = "stroke"
    points: list
    radius: float
    css_width: float
    css_height: float
    hardness: float = 1.0
    add: bool = True


@dataclass(frozen=True)
class Subject(Command):
    """Remove background: the photo's main subject as a new object, "Subject", shown in the cutout view (see
    pyapp.app.App.remove_background); one undo step, decoded as a click is."""

    kind: ClassVar[str] = "subject"


@dataclass(frozen=True)
class Prepare(Message):
    """A person's photo without a bundle, to be encoded in the tab (issue 17): its encoder input is made here,
    as tools/encode.py makes it (pyapp.image: EXIF orientation, SAM2's resize and normalisation); the photo open
    is not touched. Answered with `prepared`, or an error of phase "encode"."""

    kind: ClassVar[str] = "prepare"
    seq: int
    photo: bytes
    photo_name: str = "photo"


@dataclass(frozen=True)
class MakeBundle(Message):
    """The encoder's outputs for a prepared photo, float32 bytes by name, to be written as a bundle as
    tools/encode.py writes it (pyapp.bundle, fp16). Answered with `bundle-made`, or an error of phase "encode"."""

    kind: ClassVar[str] = "make-bundle"
    seq: int
    embeddings: dict
    width: int
    height: int
    sha256: str
    model_name: str


@dataclass(frozen=True)
class Viewport(Message):
    """The page is zoomed in: the part of the photo it shows, (x0, y0, x1, y1) in the photo's pixels (edges),
    covers width × height screen pixels, more than the view has: every frame comes with that part drawn from
    the photo's own pixels (a `detail`). width 0: zoomed out, no details. id: the page's count of viewports
    (a detail names the one it was drawn for)."""

    kind: ClassVar[str] = "viewport"
    id: int
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class CollectionExport(Message):
    """The whole collection's export: "coco" (one JSON document) or "yolo" (a zip: labels/, data.yaml and the
    images the page passes, by photo name). `index`: the collection (collection.json's document); `session`:
    the work on it (pyapp.collection's session document: every photo's objects). `tolerance`: COCO's masks as
    polygons within it (None: as RLE, exact) and YOLO's polygons' (None: the app's default). Answered with a
    download."""

    kind: ClassVar[str] = "collection-export"
    what: str
    index: dict
    session: dict
    tolerance: float | None = None
    images: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpenSession(Message):
    """A session file (Open session) to be checked against the open collection (`index`, collection.json's
    document): answered with `session` (the session, read and checked), or an error of phase "collection"."""

    kind: ClassVar[str] = "session"
    seq: int
    index: dict
    session: str


@dataclass(frozen=True)
class OpenCollection(Message):
    """A collection's index (collection.json, pyapp.collection), to be checked: answered with `collection`, or
    an error of phase "collection". The photo open is not touched. A folder opened without a collection.json
    comes as `folder` instead (its files by path: a bundle's first bytes, a photo's size; see
    pyapp.collection.folder_index), `url` its name and `model` the page's model for photos without a bundle."""

    kind: ClassVar[str] = "collection"
    seq: int
    index: str = ""
    url: str = "collection.json"
    folder: dict | None = None
    model: str | None = None


@dataclass(frozen=True)
class EverythingCancel(Message):
    """Stop a segment-everything run between two decodes (a decoder run cannot be interrupted)."""

    kind: ClassVar[str] = "everything-cancel"


INBOUND: dict[str, type[Message]] = {
    cls.kind: cls
    for cls in (
        OpenDemo,
        OpenFiles,
        OpenCollection,
        CollectionExport,
        OpenSession,
        Click,
        Box,
        Undo,
        Redo,
        Clear,
        NewObject,
        Select,
        Delete,
        Rename,
        Classify,
        Candidate,
        View,
        Reset,
        Replay,
        Export,
        Hover,
        HoverEnd,
        Everything,
        Subject,
        Stroke,
        Viewport,
        Prepare,
        MakeBundle,
        EverythingCancel,
    )
}


def _check(name: str, value: Any, hint: Any) -> Any:
    """`value` as the field's type says (whole numbers are numbers; any number is not a bool), or raise."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if option is bytes and isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value) if not isinstance(value, bytes) else value
        if option in (dict, list) and isinstance(value, option):
            return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(f"its field {name!r} is {value}, not a finite number")
    wanted = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise ProtocolError(f"its field {name!r} is {type(value).__name__}, not {wanted}")


_HINTS: dict[type, dict[str, Any]] = {}


def parse(message: Any) -> Message:
    """The dataclass of a message from the page; ProtocolError if it is not one the worker knows."""
    if not isinstance(message, dict):
        raise ProtocolError("the worker got a message that is not an object")
    kind = message.get("type")
    cls = INBOUND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"the worker got a message it does not know: {str(kind)[:40]!r}")
    hints = _HINTS.get(cls) or _HINTS.setdefault(cls, typing.get_type_hints(cls))
    values = {}
    for spec in dataclasses.fields(cls):
        if spec.name in message:
            values[spec.name] = _check(spec.name, message[spec.name], hints[spec.name])
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ProtocolError(f"a {kind!r} message needs the field {spec.name!r}")
    return cls(**values)


# --- worker → page --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    kind: ClassVar[str] = ""

    def to_message(self) -> dict:
        """The plain object the edge posts (a shallow copy: arrays and bytes are the edge's to transfer)."""
        message = {"type": self.kind}
        message.update((spec.name, getattr(self, spec.name)) for spec in dataclasses.fields(self))
        return message


@dataclass(frozen=True)
class Status(Outbound):
    kind: ClassVar[str] = "status"
    text: str
    phase: str


@dataclass(frozen=True)
class Opened(Outbound):
    """photo_key: what saved work is filed under (the photo's sha256, or the demo's name)."""

    kind: ClassVar[str] = "opened"
    seq: int | None
    width: int
    height: int
    view_width: int
    view_height: int
    model_name: str
    photo_key: str | None
    timings: dict


@dataclass(frozen=True)
class Applied(Outbound):
    """A command took effect; joins (clicks and boxes): whether it joined the step before; at (a click that
    took the decode speculated where the pointer rested): the rested CSS point it committed, which the page
    logs instead of the click's own (at most 3 px away) so that a replay decodes the same prompt."""

    kind: ClassVar[str] = "applied"
    cmd: int | None
    joins: bool | None = None
    at: tuple[float, float] | None = None

    def to_message(self) -> dict:
        message = {"type": self.kind, "cmd": self.cmd}
        if self.joins is not None:
            message["joins"] = self.joins
        if self.at is not None:
            message["x"], message["y"] = self.at
        return message


@dataclass(frozen=True)
class Progress(Outbound):
    """A long job's progress: segment everything's points decoded of all, masks kept so far, and the points
    decoded in one decoder run (1 unless the decoder takes a batch of prompts)."""

    kind: ClassVar[str] = "progress"
    what: str
    done: int
    total: int
    found: int
    per_run: int = 1


@dataclass(frozen=True)
class Refused(Outbound):
    """A command had nothing to do (undo with nothing to undo, a click off the photo)."""

    kind: ClassVar[str] = "refused"
    cmd: int | None


@dataclass(frozen=True)
class Frame(Outbound):
    """The view to paint ((height, width, 4) RGBA pixels; None: zoomed in, the detail alone) and the controls'
    state; after a decode, the samtab:mask detail and when its input was made (t0)."""

    kind: ClassVar[str] = "frame"
    seq: int | None
    width: int
    height: int
    pixels: Any
    state: dict
    mask: dict | None = None
    t0: float | None = None
    detail: dict | None = None  # zoomed in: the part shown, from the photo's own pixels (Detail's fields)

    def to_message(self) -> dict:
        message = super().to_message()
        if self.mask is None:
            del message["mask"], message["t0"]
        if self.detail is None:
            del message["detail"]
        return message


@dataclass(frozen=True)
class Detail(Outbound):
    """A zoomed-in page's part of the view, drawn from the photo's own pixels (pyapp.frames.Frames.detail): the
    photo's pixels [x0, x1) × [y0, y1) as width × height RGBA pixels, for the page's viewport `id`. Sent alone
    when the viewport changes, and within each frame while zoomed in."""

    kind: ClassVar[str] = "detail"
    seq: int | None
    id: int
    x0: int
    y0: int
    x1: int
    y1: int
    width: int
    height: int
    pixels: Any


@dataclass(frozen=True)
class Prepared(Outbound):
    """A photo's encoder input, (1, 3, 1024, 1024) float32, and what its bundle will say of it."""

    kind: ClassVar[str] = "prepared"
    seq: int
    tensor: Any
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class CollectionOpened(Outbound):
    """A collection's index, checked: its photos as collection.json lists them (paths relative to it)."""

    kind: ClassVar[str] = "collection"
    seq: int
    name: str
    model: str
    classes: list
    photos: list


@dataclass(frozen=True)
class SessionOpened(Outbound):
    """A session file, checked: pyapp.collection's session document."""

    kind: ClassVar[str] = "session"
    seq: int
    session: dict


@dataclass(frozen=True)
class BundleMade(Outbound):
    kind: ClassVar[str] = "bundle-made"
    seq: int
    data: Any


@dataclass(frozen=True)
class Settled(Outbound):
    """Nothing left to decode; input: the last click or box applied."""

    kind: ClassVar[str] = "settled"
    input: int


@dataclass(frozen=True)
class Download(Outbound):
    kind: ClassVar[str] = "download"
    what: str
    name: str
    mime: str
    data: Any


@dataclass(frozen=True)
class Error(Outbound):
    """fatal: the page cannot go on; refused: the command that failed (the page forgets it); restart: the
    page should restart the worker (and replay the work into it)."""

    kind: ClassVar[str] = "error"
    phase: str
    message: str
    hint: str = ""
    fatal: bool = False
    refused: int | None = None
    restart: bool = False

    def to_message(self) -> dict:
        message = super().to_message()
        if self.refused is None:
            del message["refused"]
        if not self.restart:
            del message["restart"]
        return message
