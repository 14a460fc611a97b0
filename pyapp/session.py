"""The worker's session: the page's messages in; photos opened, decodes run, frames and answers out.

Pure Python (asyncio, no `js`): the browser edge (pyapp.web.worker) gives it `post` (a message to the
page), a `Loader` (fetching, and decoder sessions in onnxruntime-web) and passes on the page's messages;
the tests drive the same class in CPython with onnxruntime. The messages are pyapp.protocol's dataclasses:
each kind has its handler in HANDLERS. Messages that arrive while a photo opens or a replay runs wait their
turn, in order: each is applied to the state the ones before it made.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from . import collection, contract, everything, protocol
from .app import App, Decode, polygon_tolerance
from .bundle import BundleError, read_bundle, write_bundle
from .coords import OutsideImage
from .frames import Preview
from .image import PhotoError, encoder_input, open_photo
from .prompt import OBJECT_COLOURS, SegObject, Step
from .stopwatch import Stopwatch

DAMAGED_DECODER_HINT = (
    "The decoder file is damaged or is not an ONNX model: rebuild the site's models "
    "(python tools/demos.py, or tools/serve.py) and reload. Your current photo is kept."
)
KEPT = "Your work so far is kept."
MAX_MESSAGE = 300  # characters of any text shown to a person: errors from libraries can be kilobytes


EVERYTHING_PROGRESS_S = 0.25  # segment everything tells the page its progress at most this often
# Grid points decoded in one run by a decoder that takes a batch of prompts (ModelInfo.prompt_batch). Measured in
# onnxruntime-web (WASM, 2 threads, SAM2.1 tiny): 87 ms a prompt alone, 84 in fours, 81 in sixteens; eight keep
# a run under a second, so a Stop and the watchdog's pings are still answered within one.
EVERYTHING_BATCH = 8
# Decodes made when a photo opens, before anyone clicks (see Session._warm). One: WebAssembly's optimising tier
# compiles onnxruntime's hot code in the background once it has run, if the cores are free; a second run at
# once only delays that (a demo's decoder has also run once while Python booted: site/pyworker.js). bench
# --vs-js plain, first click 1 s after the photo opened against the median click: 177 vs 172, 171 vs 169 ms
# with one; 174 vs 184, 180 vs 155 with two.
WARM_RUNS = 1
# Times the first warm-up run's mask is composited afresh. WebAssembly's optimising tier compiles a function
# once it has run enough: composited once, Pyodide's and numpy's per-click code was still being compiled,
# beside the decoder, during the first ~30 clicks (first click 112 ms against 95 with these; bench --vs-js
# plain 1.10-1.15x -> 1.10-1.11x). About 4 ms each in Pyodide. Each also marks the click and makes the
# controls' state, as a click's frame does: a first click less its decoder run took 26-37 ms without those
# (median 33, 11 photos opened) and 11-27 with them (median 21, 15 photos), the next clicks ~5 ms less too.
WARM_RENDERS = 20
# A click this close (CSS pixels) to where the pointer rested is the click that was speculated on: it takes the
# rested point and its decode (issue 13). Farther, it is decoded as made.
SPECULATION_RADIUS_CSS = 3.0


@dataclass
class Speculation:
    """A decode of what a click at the resting pointer would make of the current object (its prompt plus that
    point, refining its current mask), started before the click. Valid while the current object and its
    current state (and the candidate chosen on it) are those it was made from."""

    decode: Decode
    rest: protocol.Hover
    base: Step | None  # the current object's state it refines (None: there was no object yet)
    chosen: int
    adopted: protocol.Click | None = None  # the click that took it

    @property
    def preview(self) -> bool:
        """Before the object's first click the speculation is shown (the hover preview); after it, not until
        the click. A press's never is: the button may be dragging a box."""
        return not self.rest.press and (self.base is None or self.base.prompt.empty)

    def answers(self, click: protocol.Click | protocol.Hover, obj: SegObject | None) -> bool:
        """Whether `click` (or a press or rest there), made on the current object `obj`, is the click this
        decode was made for."""
        rest = self.rest
        return (
            click.include == rest.include
            and (click.css_width, click.css_height) == (rest.css_width, rest.css_height)
            and math.hypot(click.x - rest.x, click.y - rest.y) <= SPECULATION_RADIUS_CSS
            and (obj.current if obj is not None else None) is self.base
            and (self.base is None or self.base.chosen == self.chosen)
        )


class DecoderError(Exception):
    """The decoder runtime cannot load a model's decoder file."""


class Runner(Protocol):
    """A decoder session (onnxruntime-web in the browser, onnxruntime in tests)."""

    model_name: str
    input_names: list[str]

    async def run(self, feeds: dict[str, np.ndarray], embeddings: set[str]) -> dict[str, np.ndarray]: ...

    async def warm(self, feeds: dict[str, np.ndarray], embeddings: set[str]) -> dict[str, np.ndarray]:
        """A run whose answer nobody sees (the warm-up when a photo opens: see Session._warm)."""

    def forget_photo(self) -> None: ...


class Loader(Protocol):
    async def runner(self, model_url: str, decoder: bytes | None) -> Runner:
        """The decoder of the model folder at model_url (made once per folder); raises DecoderError."""

    async def fetch(self, url: str, what: str) -> bytes: ...


def brief(text: str, limit: int = MAX_MESSAGE) -> str:
    """A message for a person: its first line, at most `limit` characters."""
    text = str(text).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _and_frame(method):
    """A command that changes what is shown: a frame follows it, and any decode it made necessary."""

    def handler(self, message: dict) -> None:
        method(self, message)
        self.frame()
        self.schedule()

    return handler


class Session:
    def __init__(self, post, loader: Loader, *, pack=lambda array: array):
        """post(message): to the page. pack(array): what a posted message carries for pixels or a file's
        bytes (the edge copies them into a transferable buffer; its time is the mask's `send` share)."""
        self.post = post
        self.pack = pack
        self.loader = loader
        self.app = App()
        self.runner: Runner | None = None
        self.seq = None  # the open photo's number, from the page
        self.inbox: deque[protocol.Message] = deque()
        self._pump: asyncio.Task | None = None
        self._loop: asyncio.Task | None = None
        self.decode_failed = False
        self.cancelled = False  # a segment-everything run was told to stop
        self.warm_left = 0  # runs of the warm-up still to make on the open photo (see _warm)
        self.warm_step = None  # the warm-up's first step, which its second refines
        self.warm_ms: list[float] = []  # how long the open photo's warm-up runs took
        self.replaying = False  # no frames while a replay rebuilds the state
        self.rest: protocol.Hover | None = None  # where the pointer rests, not yet speculated on
        self.speculation: Speculation | None = None  # the latest, in flight or decoded
        self.hover_step = None  # the speculation shown as the hover preview
        self.viewport: protocol.Viewport | None = None  # zoomed in: the part shown, drawn in detail
        self.view_stale = False  # zoomed in, frames brought the detail alone: the view's pixels are older
        self.click_started: float | None = None
        self.last_input = 0  # the id of the last click or box applied to the prompt
        self.tasks: set[asyncio.Task] = set()

    # --- messages in --------------------------------------------------------------------------------

    def handle(self, raw: dict) -> None:
        """A message from the page. Hovers act at once (or not at all while something else is under way);
        everything else is applied in order, one at a time."""
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError as error:
            cmd = raw.get("cmd") if isinstance(raw, dict) else None
            self.fail(
                "input",
                str(error),
                "Reload the page if this keeps happening. " + KEPT,
                refused=cmd if isinstance(cmd, int) else None,
            )
            return
        if isinstance(message, (protocol.Hover, protocol.HoverEnd)):
            self.hover(message)
        elif isinstance(message, protocol.Viewport):
            self.zoomed(message)
        elif isinstance(message, protocol.Prepare):
            self.prepare(message)
        elif isinstance(message, protocol.MakeBundle):
            self.make_bundle(message)
        elif isinstance(message, protocol.OpenCollection):
            self.open_collection(message)
        elif isinstance(message, protocol.CollectionExport):
            self.spawn(self.export_collection(message))
        elif isinstance(message, protocol.OpenSession):
            self.open_session(message)
        elif isinstance(message, protocol.EverythingCancel):
            self.cancelled = True  # seen before the run's next decode (or before it starts)
        elif (
            self.busy
            or isinstance(message, (protocol.OpenDemo, protocol.OpenFiles, protocol.Replay, protocol.Everything))
            or (isinstance(message, protocol.Export) and message.what == "labels" and self.decoding)
        ):
            self.inbox.append(message)
            if not self.busy:
                self._pump = self.spawn(self._drain())
        else:
            self.command(message)
        if isinstance(message, protocol.Everything):
            self.cancelled = False  # a stop sent after this run's start, even before it begins, stops it

    @property
    def busy(self) -> bool:
        """Messages are being applied (a photo opening, a replay): new ones wait in the inbox."""
        return self._pump is not None and not self._pump.done()

    async def _drain(self) -> None:
        opens = (protocol.OpenDemo, protocol.OpenFiles)
        while self.inbox:
            message = self.inbox.popleft()
            if isinstance(message, opens) and any(isinstance(later, opens) for later in self.inbox):
                continue  # another photo was chosen since: open that one only
            if isinstance(message, protocol.OpenDemo):
                await self.open_demo(message)
            elif isinstance(message, protocol.OpenFiles):
                await self.open_files(message)
            elif isinstance(message, protocol.Replay):
                await self.replay(message.messages)
            elif isinstance(message, protocol.Everything):
                await self.everything(message)
            elif isinstance(message, protocol.Export) and message.what == "labels":
                # A photo of a collection is left: its objects with the masks of every click made on it (a
                # decode under way is awaited; what comes after, e.g. the next photo's opening, waits for it).
                await self.decoded()
                self.command(message)
            else:
                self.command(message)

    def hover(self, message: protocol.Hover | protocol.HoverEnd) -> None:
        """The pointer rests (the page sends this once it has been still for a moment) or left the photo."""
        if isinstance(message, protocol.HoverEnd):
            self._forget_speculation()
            if self.app.ready and not self.busy:
                self.frame()
        elif self.app.ready and not self.busy:
            spec = self.speculation
            if spec is not None and spec.adopted is None and spec.answers(message, self.app.segmenter.objects.current):
                # Pressed where the pointer rested: that decode, in flight or done, is the click's; a new one
                # would drop it and make the click wait for a fresh run.
                self.rest = None
                return
            self.rest = message
            self.schedule()

    def zoomed(self, message: protocol.Viewport) -> None:
        """The page zoomed or panned: its part of the view is drawn from the photo's own pixels from now on (in
        every frame), and at once unless something else is under way (its next frame brings it then)."""
        self.viewport = message if message.width > 0 and message.height > 0 else None
        if not self.app.ready or self.busy or self.replaying:
            return
        if self.view_stale:  # the view's pixels show again where the detail does not (or all of them): made now
            self.frame(whole=True)
        elif self.viewport is not None:
            detail = self.detail(self.hover_step)
            if detail is not None:
                self.send(protocol.Detail(self.seq, **detail))

    def detail(self, hover=None) -> dict | None:
        """The viewport's detail (protocol.Detail's fields), or None when zoomed out or it misses the photo."""
        viewport = self.viewport
        if viewport is None:
            return None
        region = (viewport.x0, viewport.y0, viewport.x1, viewport.y1)
        try:
            drawn, pixels = self.app.detail(region, viewport.width, viewport.height, hover)
        except ValueError:  # panned off the photo: nothing to draw
            return None
        height, width = pixels.shape[:2]
        x0, y0, x1, y1 = drawn
        return {
            "id": viewport.id,
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "width": width,
            "height": height,
            "pixels": self.pack(pixels),
        }

    def prepare(self, message: protocol.Prepare) -> None:
        """A photo to encode in the tab: its encoder input, made as tools/encode.py makes it."""
        try:
            photo = open_photo(message.photo, name=message.photo_name)
            tensor = encoder_input(photo.rgb)
        except PhotoError as error:
            self.fail("encode", brief(error), "Your current photo and its objects are kept.")
            return
        except MemoryError:
            self.fail(
                "encode",
                f"{message.photo_name} is too large for the memory this tab has; scale it down.",
                "Your current photo and its objects are kept.",
            )
            return
        self.send(protocol.Prepared(message.seq, self.pack(tensor), photo.width, photo.height, photo.sha256))

    def open_collection(self, message: protocol.OpenCollection) -> None:
        """A collection's index, checked (pyapp.collection): its photos for the page's filmstrip."""
        try:
            if message.folder is not None:
                found = collection.folder_index(message.url, message.folder, message.model)
            else:
                found = collection.read_index(message.index, message.url)
        except collection.CollectionError as error:
            self.fail("collection", brief(error), "Your current photo and its objects are kept.")
            return
        document = found.document()
        self.send(protocol.CollectionOpened(message.seq, found.name, found.model, found.classes, document["photos"]))

    def open_session(self, message: protocol.OpenSession) -> None:
        """A session file, checked against the open collection: refused (with why) if it is another's."""
        try:
            found = collection.read_index(message.index)
            work = collection.read_session(message.session, found)
        except collection.CollectionError as error:
            self.fail("collection", brief(error), "Your current photo and its objects are kept.")
            return
        except Exception as error:  # noqa: BLE001 - a damaged file must not stop the worker
            self.fail("collection", f"The session file cannot be read: {type(error).__name__}: {brief(error)}", KEPT)
            return
        self.send(protocol.SessionOpened(message.seq, work.document()))

    async def export_collection(self, message: protocol.CollectionExport) -> None:
        """The whole collection's COCO document or YOLO zip (pyapp.collection), from the objects the page kept
        of each photo: nothing is decoded, so it does not wait for the photo open. It yields to the event loop
        after each photo: the page's pings (and clicks) are answered meanwhile."""
        try:
            found = collection.read_index(message.index)
            work = collection.read_session(message.session, found)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", found.name).strip("-").lower() or "collection"
            if message.what == "coco":
                # RLE unless polygons are asked for: exact, and ~20x quicker for a large collection
                steps = collection.coco_steps(found, work, polygon_tolerance=message.tolerance)
                name, mime = f"{slug}-coco.json", "application/json"
            elif message.what == "yolo":
                tolerance = polygon_tolerance(message.tolerance)
                steps = collection.yolo_zip_steps(found, work, tolerance=tolerance, images=message.images)
                name, mime = f"{slug}-yolo.zip", "application/zip"
            else:
                raise ValueError(f"there is no collection export {brief(repr(message.what), 40)}")
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    result = done.value
                    break
                await asyncio.sleep(0)
            data = json.dumps(result).encode() if message.what == "coco" else result
        except (collection.CollectionError, ValueError) as error:
            self.fail("export", f"The collection cannot be exported: {brief(error)}", KEPT)
            return
        except MemoryError:
            self.fail("export", "This tab ran out of memory exporting the collection.", KEPT)
            return
        except Exception as error:  # noqa: BLE001 - an export that fails must not stop the worker or lose work
            self.fail("export", f"The collection cannot be exported: {type(error).__name__}: {brief(error)}", KEPT)
            return
        self.send(protocol.Download(f"collection-{message.what}", name, mime, self.pack(data)))

    def make_bundle(self, message: protocol.MakeBundle) -> None:
        """The tab encoder's outputs, written as the bundle tools/encode.py would write."""
        try:
            embeddings = {}
            for name, shape in contract.EMBEDDING_SHAPES.items():
                raw = message.embeddings.get(name)
                if raw is None:
                    raise BundleError(f"the encoder gave no {name!r}")
                data = raw.to_bytes() if hasattr(raw, "to_bytes") else bytes(raw)
                if len(data) != 4 * int(np.prod(shape)):
                    raise BundleError(f"the encoder's {name} has {len(data)} bytes, not {4 * int(np.prod(shape))}")
                embeddings[name] = np.frombuffer(data, np.float32).reshape(shape)
            bundle = write_bundle(
                embeddings,
                width=message.width,
                height=message.height,
                image_sha256=message.sha256,
                model_name=message.model_name,
            )
        except BundleError as error:
            self.fail("encode", f"The encoder's answer cannot be stored: {brief(error)}", "Your current photo is kept.")
            return
        self.send(protocol.BundleMade(message.seq, self.pack(bundle)))

    def _forget_speculation(self) -> None:
        """A speculation in flight is not stopped (a WASM run cannot be): its answer is dropped."""
        self.rest = None
        if self.speculation is not None and self.speculation.adopted is None:
            self.speculation = None
        self.hover_step = None

    def command(self, message: protocol.Message) -> None:
        """Apply one command (or export) and answer it: applied (with whether a click joined the step
        before), refused (nothing to do), or an error that says why (the work so far is kept either way)."""
        cmd = getattr(message, "cmd", None)
        if not self.app.ready:
            self.fail("input", "Open a photo first.", "Pick a demo or open your own photo and its bundle.", refused=cmd)
            return
        try:
            result = HANDLERS[type(message)](self, message)
        except MemoryError:
            self.fail(
                message.kind,
                "This tab ran out of memory for that (the photo is large): nothing was changed.",
                "Close other tabs, or scale the photo down and encode it again. " + KEPT,
                refused=cmd,
            )
            return
        except (IndexError, OutsideImage):
            # Nothing to undo, redo or clear; a click just off the photo: nothing to do, nothing pending.
            self.send(protocol.Refused(cmd))
            if isinstance(message, (protocol.Click, protocol.Box)) and not self.decoding:
                self.send(protocol.Settled(self.last_input))
            return
        except Exception as error:  # noqa: BLE001 - one bad command must not lose the work
            self.fail(message.kind, brief(error) or type(error).__name__, KEPT, refused=cmd)
            return
        if isinstance(message, protocol.Command) and cmd is not None:
            joins, at = result if isinstance(result, tuple) else (result, None)
            self.send(protocol.Applied(cmd, joins, at))

    # --- commands -----------------------------------------------------------------------------------

    def _input(self, message: protocol.Click | protocol.Box) -> bool | tuple[bool, tuple[float, float]]:
        """Returns whether the input joined the step before, and for a click that took a speculation the
        rested point it committed (the page logs that point, so a replay decodes exactly this prompt)."""
        app = self.app
        self.last_input = max(self.last_input, message.id)
        self.click_started = message.t0
        spec, self.speculation, self.rest = self.speculation, None, None
        if (
            isinstance(message, protocol.Click)
            and message.joins is None
            and not self.replaying
            and spec is not None
            and spec.adopted is None
            and spec.answers(message, app.segmenter.objects.current)
        ):
            app.adopt(spec.decode.step)
            spec.adopted = message
            spec.decode = replace(spec.decode, obj=app.segmenter.objects.current)
            self.hover_step = None
            if spec.decode.step.decoded:
                self.spawn(self._show_adopted(spec))  # after the page has its answer to the click
            else:
                self.speculation = spec  # the decode loop shows it when its run ends
            return False, (spec.rest.x, spec.rest.y)
        if isinstance(message, protocol.Click):
            joined = app.click(
                message.x, message.y, message.css_width, message.css_height, message.include, join=message.joins
            )
        else:
            joined = app.box(
                message.x0,
                message.y0,
                message.x1,
                message.y1,
                message.css_width,
                message.css_height,
                join=message.joins,
            )
        self.hover_step = None
        self.schedule()
        return joined

    @_and_frame
    def _undo(self, message):
        self.app.undo()

    @_and_frame
    def _redo(self, message):
        self.app.redo()

    @_and_frame
    def _clear(self, message):
        self.app.clear()

    @_and_frame
    def _new_object(self, message):
        self.app.new_object()

    @_and_frame
    def _select(self, message):
        self.app.select(message.id)

    @_and_frame
    def _rename(self, message):
        self.app.rename(message.id, message.name)

    @_and_frame
    def _classify(self, message):
        self.app.classify(message.id, message.label)

    @_and_frame
    def _delete(self, message):
        self.app.delete(message.id)

    @_and_frame
    def _candidate(self, message):
        self.app.choose_candidate(message.index)

    @_and_frame
    def _view(self, message):
        self.app.set_view(message.view, message.opacity, message.feather)

    @_and_frame
    def _stroke(self, message):
        points = message.points
        if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in points):
            raise ValueError("a stroke's points are [x, y] pairs of numbers")
        self.app.stroke(
            [(float(x), float(y)) for x, y in points],
            message.radius,
            message.css_width,
            message.css_height,
            hardness=message.hardness,
            add=message.add,
        )

    @_and_frame
    def _subject(self, message):
        self.app.remove_background()

    @_and_frame
    def _reset(self, message):
        self.app.reset()

    def _export(self, message: protocol.Export) -> None:
        app = self.app
        exports = {
            "mask": app.export_mask,
            "cutout": app.export_cutout,
            "masks": app.export_masks,
            "coco": lambda: app.export_coco(message.tolerance),
            "yolo": lambda: app.export_yolo(message.tolerance),
            "labels": lambda: ("labels.json", "application/json", json.dumps(app.labels()).encode()),
        }
        if message.what not in exports:
            raise ValueError(f"there is no export {brief(repr(message.what), 40)}")
        name, mime, data = exports[message.what]()
        self.send(protocol.Download(message.what, name, mime, self.pack(data)))

    async def replay(self, messages: list[dict]) -> None:
        """Apply commands that were applied before (a restarted worker; work restored after a reload) so
        that the same steps are rebuilt and decoded: each click or box joins the step before exactly when it
        did then, and before any other command the decodes it came after are awaited, as they were then (a
        candidate is chosen from a decoded step; the undo history holds what it held). A command that fails
        is answered and skipped; the rest go on."""
        self.replaying = True
        try:
            for raw in messages:
                try:
                    message = protocol.parse(raw)
                    if not isinstance(message, protocol.Command):
                        raise protocol.ProtocolError(f"a replay holds commands only, not {message.kind!r}")
                except protocol.ProtocolError as error:
                    cmd = raw.get("cmd") if isinstance(raw, dict) else None
                    self.fail("input", str(error), KEPT, refused=cmd if isinstance(cmd, int) else None)
                    continue
                if not (isinstance(message, (protocol.Click, protocol.Box)) and message.joins):
                    await self.decoded()
                    if self.decode_failed:
                        return  # the page restarts this worker, and replays into the next one
                if isinstance(message, protocol.Everything):
                    await self.everything(message)
                else:
                    self.command(message)
        finally:
            self.replaying = False
        self.frame()
        self.schedule()

    # --- segment everything -----------------------------------------------------------------------

    async def everything(self, message: protocol.Everything) -> None:
        """Segment the whole photo: one decode per grid point, the page told the progress (at most every
        EVERYTHING_PROGRESS_S), the masks kept added as objects in one undo step at the end. Each decode is one
        turn of the event loop, so the page's messages (its watchdog's pings, a cancel) are answered between
        them; clicks wait in the inbox until the run ends."""
        cmd = message.cmd
        if not self.app.ready:
            hint = "Pick a demo or open your own photo and its bundle."
            self.fail("everything", "Open a photo first.", hint, refused=cmd)
            return
        if not 1 <= message.points_per_side <= 64:
            self.fail("everything", "The grid must have 1 to 64 points a side.", KEPT, refused=cmd)
            return
        await self.decoded()  # what was clicked before is decoded first
        segmenter, runner = self.app.segmenter, self.runner
        run = everything.Everything(
            segmenter, everything.Settings(points_per_side=message.points_per_side), size=self.app.view_size
        )
        total, shown, painted = run.pending, 0.0, 0
        batch = EVERYTHING_BATCH if getattr(runner, "prompt_batch", False) else 1
        preview = None
        if not self.replaying:  # the masks are shown as they are found, over the view the run starts from
            objects = segmenter.objects
            preview = Preview(self.app.render(), OBJECT_COLOURS.index(objects.next_colour), self.app.opacity)
        try:
            while run.pending:
                if self.cancelled and not self.replaying:
                    self.send(protocol.Refused(cmd))
                    self.frame()  # the view without the masks found
                    self.status("Segment everything was stopped: nothing was added.", "ready")
                    return
                kept = run.add(await runner.run(run.next_feeds(batch), set(segmenter.embeddings)))
                if self.app.segmenter is not segmenter:
                    self.send(protocol.Refused(cmd))  # another photo was opened meanwhile
                    return
                if preview is not None:
                    for found in kept:
                        preview.add(found)
                if not self.replaying and (time.monotonic() - shown > EVERYTHING_PROGRESS_S or not run.pending):
                    shown = time.monotonic()
                    self.send(protocol.Progress("everything", run.done, total, len(run.found), batch))
                    if preview.changed > painted:  # masks laid since the last frame
                        painted = preview.changed
                        self.frame(pixels=preview.pixels)
        except Exception as error:  # noqa: BLE001 - as a click's decode: the worker is restarted and replays
            self.decode_failed = True
            self.send(protocol.Error("decode", f"the decoder failed ({brief(error, 200)})", restart=True))
            return
        found = run.result()
        self.app.add_objects([(f"auto {index + 1}", item) for index, item in enumerate(found)])
        if cmd is not None:
            self.send(protocol.Applied(cmd))
        self.frame()
        if not self.replaying:
            self.status(
                f"Segment everything: {len(found)} mask{'s' if len(found) != 1 else ''} from {total} points "
                f"({run.runs} decoder run{'s' if run.runs != 1 else ''})"
                + ("" if found else "; none passed the filters"),
                "ready",
            )

    # --- opening ------------------------------------------------------------------------------------

    async def open_demo(self, message: protocol.OpenDemo) -> None:
        from PIL import Image

        clock, steps = Stopwatch(), {}
        try:
            self.status("Loading the photo's embeddings…", "bundle")
            preview = self.spawn(self.loader.fetch(message.preview_url, "The photo"))
            preview.add_done_callback(lambda task: task.cancelled() or task.exception())  # reported below
            runner = await self.loader.runner(message.model_url, message.decoder)
            steps["decoder_ms"] = clock.lap()
            # 1 when its session was made, and run once, while Python booted (site/pyworker.js)
            steps["decoder_made_ahead"] = int(getattr(runner, "made_ahead", False))
            data = message.bundle
            if data is None:
                data = await self.loader.fetch(message.bundle_url, "The photo's embeddings")
            bundle = read_bundle(data)
            steps["bundle_ms"] = clock.lap()
            photo = Image.open(io.BytesIO(await preview))
            photo.load()
            steps["photo_ms"] = clock.lap()
            self._switch(bundle, runner, photo, message.name, None)
            steps["switch_ms"] = clock.lap()
        except BundleError as error:
            self.fail("open", f"This demo's embeddings are not usable: {brief(error)}", "The previous photo is kept.")
        except DecoderError as error:
            self.fail("open", f"This demo cannot be used: {brief(error)}", DAMAGED_DECODER_HINT)
        except MemoryError:
            self.fail("open", "This demo is too large for the memory this tab has.", "The previous photo is kept.")
        except Exception as error:  # noqa: BLE001
            self.fail("open", f"The demo could not be opened: {brief(error)}", "Check the connection and try again.")
        else:
            self._opened(message.seq, clock.total(), steps, bundle.image_sha256 or message.name)
            self.schedule()  # the warm-up

    async def open_files(self, message: protocol.OpenFiles) -> None:
        clock = Stopwatch()
        photo_name = message.photo_name or "the photo"
        try:
            # The tools' cap holds in the tab too: a 100 MP photo opened, decoded and exported (mask, cutout,
            # COCO) in Chromium took the WebAssembly heap to 3.0 GB of its 4 GB (README, "Your own photo").
            photo = open_photo(message.photo, name=photo_name)
            bundle = read_bundle(message.bundle)
            models = message.models
            model_name = bundle.model_name
            if model_name is None:
                raise BundleError("this bundle does not say which model made it, so samtab cannot pick a decoder")
            if model_name not in models:
                raise BundleError(
                    f"it was made with the model '{model_name}', which this site does not have "
                    f"(it has: {', '.join(models) or 'none'})"
                )
            runner = await self.loader.runner(models[model_name], None)
            self._switch(bundle, runner, photo.rgb, photo_name, photo.sha256)
        except (BundleError, PhotoError) as error:
            self.fail(
                "open",
                f"{message.bundle_name or 'The bundle'} cannot be used with {photo_name}: {brief(error)}",
                "Your current photo and its objects are kept.",
            )
        except DecoderError as error:
            self.fail("open", f"The files could not be opened: {brief(error)}", DAMAGED_DECODER_HINT)
        except MemoryError:
            self.fail(
                "open",
                f"{photo_name} is too large for the memory this tab has; scale it down and encode it again.",
                "Your current photo and its objects are kept.",
            )
        except Exception as error:  # noqa: BLE001
            self.fail(
                "open", f"The files could not be opened: {brief(error)}", "Your current photo and its objects are kept."
            )
        else:
            self._opened(message.seq, clock.total(), {}, photo.sha256)
            self.schedule()  # the warm-up

    def _switch(self, bundle, runner: Runner, photo, name: str, sha256: str | None) -> None:
        previous = self.runner
        self.app.open(bundle, runner.model_name, runner.input_names, photo, photo_name=name, image_sha256=sha256)
        if previous is not None:
            previous.forget_photo()
        runner.forget_photo()
        self.runner = runner
        self.rest = self.speculation = self.hover_step = None
        self.warm_left, self.warm_step, self.warm_ms = WARM_RUNS, None, []

    def _opened(self, seq: int, open_ms: float, steps: dict, photo_key: str | None) -> None:
        width, height = self.app.view_size
        self.seq = seq
        self.viewport, self.view_stale = None, False  # the page shows a new photo whole
        segmenter = self.app.segmenter
        self.send(
            protocol.Opened(
                seq,
                segmenter.width,
                segmenter.height,
                width,
                height,
                self.runner.model_name,
                photo_key,
                {"open_ms": open_ms, **steps},
            )
        )
        self.frame()

    # --- decoding -----------------------------------------------------------------------------------

    @property
    def decoding(self) -> bool:
        return self._loop is not None and not self._loop.done()

    def schedule(self) -> None:
        if not self.decoding:
            self._loop = self.spawn(self.decode_loop())

    async def decoded(self) -> None:
        """Until nothing is left to decode."""
        self.schedule()
        while self.decoding:
            await self._loop

    async def decode_loop(self) -> None:
        """Decode until the state needs nothing more. Clicks that arrive during a decode only change the
        prompt; the next pass decodes the latest prompt once (latest wins, nothing piles up). With nothing
        else to do, what a click at the resting pointer would make is decoded ahead of the click (one run at
        a time: a real click or box always goes next)."""
        try:
            while True:
                clock = Stopwatch()
                decode = self.app.next_decode()
                if decode is None and self.warm_left and not self.replaying:
                    await self._warm()
                    continue
                if decode is not None:
                    self.warm_left = 0  # a real decode warms as well, and goes first
                spec = None if decode or self.replaying else self._speculate()
                job = decode or (spec.decode if spec else None)
                if job is None:
                    break
                timings = {"feeds": clock.lap()}
                # The inputs this mask answers for: up to the last one if it is the object's current step
                # (not an earlier one, decoded first because the current one refines it).
                t0 = self.click_started
                covered = self.last_input if decode and decode.step is decode.obj.current else 0
                segmenter = self.app.segmenter
                try:
                    outputs = await self.runner.run(job.feeds, set(segmenter.embeddings))
                except BaseException:
                    self.app.abandon(job)
                    raise
                if self.app.segmenter is not segmenter:
                    continue  # another photo was opened during the decode: its answer is for nothing shown
                timings["decode"] = clock.lap()
                # The edge's split of it (onnxruntime-web: tensors in, the run, outputs back), if it has one.
                timings.update((f"decode.{k}", v) for k, v in getattr(self.runner, "timings", {}).items())
                self.app.accept(job, outputs)
                if decode:
                    self.hover_step = None
                    if not self.replaying:
                        detail = {**self._mask_detail(job), "input": covered}
                        timings["postprocess"] = clock.lap()
                        self.frame(mask=detail, t0=t0, timings=timings)
                elif spec.adopted is not None:
                    self.speculation = None
                    self._show_mask(spec, timings)
                elif spec is self.speculation and spec.preview:
                    self.hover_step = job.step
                    self.frame()
            if not self.replaying:
                self.send(protocol.Settled(self.last_input))
        except Exception as error:  # noqa: BLE001
            # onnxruntime-web in a bad state (a WebGPU device lost, memory exhausted) does not recover in
            # this worker: the page restarts it and replays the work into a fresh one.
            self.decode_failed = True
            self.send(protocol.Error("decode", f"the decoder failed ({brief(error, 200)})", restart=True))

    async def _warm(self) -> None:
        """One run of the warm-up: decodes nobody sees, made when a photo opens and nothing else waits, so
        that the first click does not pay first-run costs (onnxruntime-web makes its tensors and buffers;
        WebAssembly compiles the hot code of onnxruntime, numpy and the compositor with its optimising tier).
        Each run is one pass of the decode loop, so a click goes first: a click at the photo's centre (its
        mask upsampled and composited WARM_RENDERS times, not shown), then (with WARM_RUNS above one) an exclude
        click refining it, the path of every later click."""
        self.warm_left -= 1
        width, height = self.app.view_size
        first = self.warm_step is None
        job = self.app.detached(
            width * (0.5 if first else 0.3), height * 0.5, width, height, include=first, previous=self.warm_step
        )
        segmenter, clock = self.app.segmenter, Stopwatch()
        outputs = await self.runner.warm(job.feeds, set(segmenter.embeddings))
        if self.app.segmenter is not segmenter:
            return
        self.app.accept(job, outputs)
        if first:
            for _ in range(WARM_RENDERS):
                self.app.frames.forget()  # each time the whole path: upsampled, tinted, composited, outlined,
                self.app.frames.mark(self.app.render(hover=job.step), job.step.prompt)  # the click marked
                self.app.state()  # and the controls' state made
        self.warm_ms.append(clock.total())
        self.warm_step = job.step if self.warm_left else None

    def _speculate(self) -> Speculation | None:
        """Start the decode of what a click where the pointer rests would make (None if it would make
        nothing: off the photo, or the current state not decoded yet)."""
        rest, self.rest = self.rest, None
        if rest is None:
            return None
        try:
            decode = self.app.speculate(rest.x, rest.y, rest.css_width, rest.css_height, rest.include)
        except ValueError:  # OutsideImage
            return None
        if decode is None:
            return None
        base = decode.obj.current if decode.obj is not None else None
        spec = Speculation(decode, rest, base, base.chosen if base is not None else 0)
        decode.step.in_flight = True
        self.speculation = spec
        return spec

    async def _show_adopted(self, spec: Speculation) -> None:
        self._show_mask(spec, {"feeds": 0.0, "decode": 0.0})
        if not self.decoding:
            self.send(protocol.Settled(self.last_input))

    def _show_mask(self, spec: Speculation, timings: dict) -> None:
        """The mask of a click answered by a speculation (decoded before the click, or while it came)."""
        clock = Stopwatch()
        step, obj = spec.decode.step, spec.decode.obj
        covered = spec.adopted.id if step is obj.current else 0
        detail = {**self._mask_detail(spec.decode), "input": covered, "speculated": True}
        timings["postprocess"] = clock.lap()
        self.frame(mask=detail, t0=spec.adopted.t0, timings=timings)

    def _mask_detail(self, decode) -> dict:
        step = decode.step
        width, height = self.app.view_size
        mask = self.app.step_mask(step, width, height)
        scale = (self.app.segmenter.width * self.app.segmenter.height) / (width * height)
        return {
            "object": decode.obj.id,
            "clicks": step.prompt.clicks,
            "mask_index": step.chosen,
            "iou": round(float(step.candidates.iou[step.chosen]), 4),
            "area_px": int(round(np.count_nonzero(mask) * scale)),
            "prompt": step.prompt.to_json(),
            "refined": bool(decode.feeds.get("has_mask_input", [0])[0]),
        }

    # --- messages out -------------------------------------------------------------------------------

    def frame(
        self,
        mask: dict | None = None,
        t0: float | None = None,
        timings: dict | None = None,
        pixels: np.ndarray | None = None,
        whole: bool = False,
    ) -> None:
        """Render the view (or take `pixels`, made elsewhere) and send it, with the state of the controls.
        Zoomed in, the part shown is drawn in detail, and the view itself (under it, shown only where the
        detail does not reach) is made again only when the page zooms or pans (zoomed), or with `whole`."""
        if self.replaying or not self.app.ready:
            return
        clock = Stopwatch()
        detail = None
        if pixels is None:
            detail = self.detail(self.hover_step)  # zoomed in: the part shown, from the photo's own pixels
            detail_ms = clock.lap()
            if detail is None or whole:
                pixels = self.app.render(hover=self.hover_step)
            self.view_stale = pixels is None
        else:
            detail_ms = clock.lap()
        composite_ms = clock.lap()
        width, height = self.app.view_size
        packed, state = (self.pack(pixels) if pixels is not None else None), self.app.state()
        if mask is not None:
            timings = {**(timings or {}), "composite": composite_ms, "send": clock.lap()}
            if detail is not None:
                timings["detail"] = detail_ms
            timings["python"] = round(sum(v for k, v in timings.items() if not k.startswith("decode")), 1)
            mask["latency_ms"] = timings
        t0 = t0 if mask is not None else None
        self.send(protocol.Frame(self.seq, width, height, packed, state, mask, t0, detail))

    def send(self, message: protocol.Outbound) -> None:
        self.post(message.to_message())

    def status(self, text: str, phase: str) -> None:
        self.send(protocol.Status(text, phase))

    def fail(self, phase: str, message: str, hint: str = "", fatal: bool = False, refused: int | None = None) -> None:
        self.send(protocol.Error(phase, brief(message), brief(hint), fatal, refused))

    def stats(self) -> dict:
        """Work queued or under way and the steps held (for leak checks), and the speculation (none, running,
        decoded)."""
        segmenter = self.app.segmenter
        steps = segmenter.objects.steps() if segmenter else []
        spec = self.speculation
        return {
            "decoding": self.decoding,
            "applying": self.busy,  # a photo opening or a replay under way (between its decodes, too)
            "warm_ms": self.warm_ms,
            "speculation": "none" if spec is None else "decoded" if spec.decode.step.decoded else "running",
            "tasks": len(self.tasks),
            "queued": len(self.inbox),
            "steps": len(steps),
            "decoded_steps": sum(step.decoded for step in steps),
        }

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


# What each command does to the session (pyapp.protocol's dataclasses; opening, replays and hovers are
# handled by `handle` itself, as they change what is applied when).
HANDLERS = {
    protocol.Click: Session._input,
    protocol.Box: Session._input,
    protocol.Undo: Session._undo,
    protocol.Redo: Session._redo,
    protocol.Clear: Session._clear,
    protocol.NewObject: Session._new_object,
    protocol.Select: Session._select,
    protocol.Rename: Session._rename,
    protocol.Classify: Session._classify,
    protocol.Delete: Session._delete,
    protocol.Candidate: Session._candidate,
    protocol.View: Session._view,
    protocol.Reset: Session._reset,
    protocol.Subject: Session._subject,
    protocol.Stroke: Session._stroke,
    protocol.Export: Session._export,
}
