"""Prompts: include and exclude points, a box; objects and their steps; undo and redo across objects.

All coordinates here are the photo's pixel coordinates (pyapp.coords' image space); the mapping to the
model happens in one place (pyapp.coords), called when the decoder's feeds are built (pyapp.feeds).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from . import brush, regions
from .brush import Stroke
from .contract import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT, LABEL_EXCLUDE, LABEL_INCLUDE
from .coords import Mapping
from .postprocess import Candidates, upsample_at

# Distinct, colour-blind-friendly colours for objects (Okabe–Ito), cycled; blue first, since the warm
# colours vanish on skin, wood and food, the things people most often cut out.
OBJECT_COLOURS = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    include: bool = True

    @property
    def label(self) -> int:
        return LABEL_INCLUDE if self.include else LABEL_EXCLUDE


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_corners(cls, ax: float, ay: float, bx: float, by: float) -> Box:
        """Any two opposite corners, in any order (a drag can go any way)."""
        return cls(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))


@dataclass(frozen=True)
class Prompt:
    """What the user has said about one object: points and at most one box. `solid`: the object is one solid
    subject (made by "Remove background"): its mask's holes are filled and its specks dropped
    (pyapp.regions.solid), also after the clicks that refine it."""

    points: tuple[Point, ...] = ()
    box: Box | None = None
    solid: bool = False

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    @property
    def clicks(self) -> int:
        """The inputs it holds, as a person counts them: each point, and a box's two corners."""
        return len(self.points) + (2 if self.box is not None else 0)

    def with_point(self, point: Point) -> Prompt:
        return replace(self, points=(*self.points, point))

    def with_box(self, box: Box) -> Prompt:
        return replace(self, box=box)

    def model_arrays(self, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
        """point_coords (1, N, 2) and point_labels (1, N), float32, in model space. As Meta's predictor
        does, the box's corners (labels 2 and 3) come first, then the points."""
        if self.empty:
            raise ValueError("an empty prompt has nothing for the decoder")
        coords, labels = [], []
        if self.box is not None:
            coords += [
                mapping.image_to_model(self.box.x0, self.box.y0),
                mapping.image_to_model(self.box.x1, self.box.y1),
            ]
            labels += [LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]
        for point in self.points:
            coords.append(mapping.image_to_model(point.x, point.y))
            labels.append(point.label)
        return (np.asarray(coords, dtype=np.float32)[None], np.asarray(labels, dtype=np.float32)[None])

    def to_json(self) -> dict:
        """{points: [[x, y, include]], box: [x0, y0, x1, y1] or null}, and solid: true for a solid subject."""
        out = {
            "points": [[p.x, p.y, int(p.include)] for p in self.points],
            "box": None if self.box is None else [self.box.x0, self.box.y0, self.box.x1, self.box.y1],
        }
        if self.solid:
            out["solid"] = True
        return out


@dataclass(eq=False)  # compared by identity: undo and redo keep references to steps
class Step:
    """One state of an object: its prompt, the step it refines, and, once decoded, the decoder's answer."""

    prompt: Prompt
    # The state this one was made from: its chosen mask is fed back (mask_input) so that a new click refines
    # the mask rather than starting over. Needed only until this step is decoded, then let go, so that a long
    # session does not keep every mask it ever made.
    previous: Step | None = None
    candidates: Candidates | None = None  # all three candidate masks and their scores
    chosen: int = 0  # the candidate shown (the best-scored unless the user picked another)
    in_flight: bool = False  # its decode has started and not yet ended
    # Brush strokes painted on the object, applied in order over the model's mask (pyapp.brush). A click's new
    # step keeps them: the model's part is decoded again, the strokes stay applied.
    strokes: tuple[Stroke, ...] = ()

    @property
    def look(self) -> tuple:
        """What the step's mask is made of: steps with the same look show the same mask (frames cache by it)."""
        return (self.candidates, self.chosen, self.prompt.solid, self.strokes)

    @property
    def decoded(self) -> bool:
        return self.candidates is not None

    @property
    def mask_input(self) -> np.ndarray | None:
        """The chosen low-res logits (1, 1, 256, 256) of the step this one refines; None for a first click,
        after a clear, or once this step is decoded."""
        previous = self.previous
        if previous is None or previous.candidates is None or previous.prompt.empty:
            return None
        return previous.candidates.low_res_logits[previous.chosen][None, None]

    def mask(self, width: int, height: int) -> np.ndarray | None:
        """The chosen candidate as a boolean (height, width) mask; None before decoding or when empty."""
        if self.candidates is None or self.prompt.empty:
            return None
        mask = self.candidates.mask(self.chosen, width, height)
        mask = regions.solid(mask) if self.prompt.solid else mask
        return brush.apply_to_mask(mask, self.strokes)

    def logits(self, width: int, height: int) -> np.ndarray | None:
        """The chosen candidate's logits upsampled to (height, width), float32 (for soft edges); None before
        decoding or when empty."""
        if self.candidates is None or self.prompt.empty:
            return None
        logits = self.candidates.upsampled(self.chosen, width, height)
        logits = regions.solid_logits(logits) if self.prompt.solid else logits
        return brush.apply_to_logits(logits, self.strokes)

    def logits_at(
        self, width: int, height: int, rows: np.ndarray, cols: np.ndarray, reference: tuple[int, int]
    ) -> np.ndarray | None:
        """logits(width, height)[rows][:, cols], computed for those pixels only (a zoomed part of a large photo;
        its mask: > 0). A solid prompt's holes and specks are those of its mask at `reference` size (the view:
        see regions.solid_logits_at). None before decoding or when empty."""
        if self.candidates is None or self.prompt.empty:
            return None
        logits = upsample_at(self.candidates.logits[self.chosen], width, height, rows, cols)
        if self.prompt.solid:
            whole = self.candidates.mask(self.chosen, *reference)
            logits = regions.solid_logits_at(logits, whole, rows, cols, (width, height))
        return brush.apply_to_logits(logits, self.strokes, grid=(width, height, rows, cols))

    def next_to_decode(self) -> Step | None:
        """The step to decode so that this one can be shown: itself, or the oldest undecoded step it
        refines (each decode refines the answer of the one before); None if nothing can start now
        (decoded, empty, or waiting for a decode already running)."""
        step, oldest = self, None
        while step is not None and step.candidates is None and not step.prompt.empty:
            if step.in_flight:
                return None
            oldest, step = step, step.previous
        return oldest


@dataclass(eq=False)
class SegObject:
    """One object being segmented: its current step (the history of steps is kept by Objects)."""

    id: int
    name: str
    colour: tuple[int, int, int]
    current: Step = field(default_factory=lambda: Step(Prompt()))
    label: str | None = None  # its class (a collection's class list names them), used by the exports

    @property
    def prompt(self) -> Prompt:
        return self.current.prompt

    @property
    def waiting(self) -> bool:
        """The current state is an edit still waiting for its decode (not started yet)."""
        step = self.current
        return step.candidates is None and not step.in_flight and not step.prompt.empty

    def push(self, prompt: Prompt, *, join: bool | None = False) -> Step | None:
        """Make `prompt` the object's state; return the step it replaces, or None if the edit joined the
        current step.

        join=None: an edit made while the current state still waits for its decode joins that state instead
        of adding one. Clicks made faster than the decoder answers are so decoded together, once (latest
        wins), and each decode refines the mask the decode before gave (mask_input), whatever the timing.
        join=True: the edit joins the current state (replaying a session whose steps are known)."""
        if self.waiting and (join is None or join):
            self.current.prompt = prompt  # not decoded and no decode running: nothing else has seen it
            return None
        before = self.current
        strokes = before.strokes if not prompt.empty else ()  # a clear drops the strokes with the clicks
        self.current = Step(prompt, previous=before, strokes=strokes)
        return before

    def add_point(self, point: Point, *, join: bool | None = False) -> Step | None:
        return self.push(self.prompt.with_point(point), join=join)

    def set_box(self, box: Box, *, join: bool | None = False) -> Step | None:
        return self.push(self.prompt.with_box(box), join=join)


# Undo keeps this many actions (for all objects together). A decoded state holds its three candidates
# (about 0.8 MB of logits), so an unbounded history would grow the worker's memory with every click for as
# long as the tab is open; fifty is what photo editors keep by default.
HISTORY_LIMIT = 50


class Change:
    """One part of an action on the objects, which can be undone and redone."""

    def undo(self, objects: Objects) -> None: ...

    def redo(self, objects: Objects) -> None: ...

    def steps(self) -> tuple[Step, ...]:
        return ()


@dataclass(eq=False)
class Added(Change):
    obj: SegObject
    index: int

    def undo(self, objects):
        objects.items.remove(self.obj)

    def redo(self, objects):
        objects.items.insert(self.index, self.obj)

    def steps(self):
        return (self.obj.current,)


@dataclass(eq=False)
class Removed(Change):
    obj: SegObject
    index: int

    def undo(self, objects):
        objects.items.insert(self.index, self.obj)

    def redo(self, objects):
        objects.items.remove(self.obj)

    def steps(self):
        return (self.obj.current,)


@dataclass(eq=False)
class Stepped(Change):
    obj: SegObject
    before: Step
    after: Step

    def undo(self, objects):
        self.obj.current = self.before

    def redo(self, objects):
        self.obj.current = self.after

    def steps(self):
        return (self.before, self.after)


@dataclass(eq=False)
class Renamed(Change):
    obj: SegObject
    before: str
    after: str

    def undo(self, objects):
        self.obj.name = self.before

    def redo(self, objects):
        self.obj.name = self.after


@dataclass(eq=False)
class Classed(Change):
    obj: SegObject
    before: str | None
    after: str | None

    def undo(self, objects):
        self.obj.label = self.before

    def redo(self, objects):
        self.obj.label = self.after


@dataclass(eq=False)
class Chose(Change):
    step: Step
    before: int
    after: int

    def undo(self, objects):
        self.step.chosen = self.before

    def redo(self, objects):
        self.step.chosen = self.after


@dataclass(eq=False)
class Action:
    """What one command did, to one object or several (a delete, a click that made an object, later an
    automatic result): undone and redone as one step, with the selection as it was before and after."""

    changes: list[Change]
    selected_before: SegObject | None
    selected_after: SegObject | None


class Objects:
    """All the objects on one photo, the one being edited, and the history of what was done to them:
    undo and redo span every object (undoing an edit selects the object it changed)."""

    def __init__(self):
        self.items: list[SegObject] = []
        self.current: SegObject | None = None
        self._next_id = 1
        self._undo: list[Action] = []
        self._redo: list[Action] = []
        self._open: Action | None = None  # the action being gathered by action()

    # --- the history --------------------------------------------------------------------------------

    def _record(self, changes: list[Change], selected_before: SegObject | None) -> None:
        if self._open is not None:  # inside action(): one step with the others
            self._open.changes += changes
            self._open.selected_after = self.current
            return
        self._undo.append(Action(changes, selected_before, self.current))
        del self._undo[:-HISTORY_LIMIT]
        self._redo.clear()

    @contextmanager
    def action(self):
        """Everything done inside is undone and redone as one step (e.g. an automatic result that makes
        many objects at once)."""
        if self._open is not None:
            yield
            return
        self._open = Action([], self.current, self.current)
        try:
            yield
        finally:
            action, self._open = self._open, None
            if action.changes:
                self._undo.append(action)
                del self._undo[:-HISTORY_LIMIT]
                self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> None:
        if not self._undo:
            raise IndexError("nothing to undo")
        action = self._undo.pop()
        for change in reversed(action.changes):
            change.undo(self)
        self.current = action.selected_before if action.selected_before in self.items else None
        self._redo.append(action)

    def redo(self) -> None:
        if not self._redo:
            raise IndexError("nothing to redo")
        action = self._redo.pop()
        for change in action.changes:
            change.redo(self)
        self.current = action.selected_after if action.selected_after in self.items else None
        self._undo.append(action)

    def steps(self) -> list[Step]:
        """Every step the objects or their history hold (for memory figures), each once."""
        found = {id(o.current): o.current for o in self.items}
        for action in self._undo + self._redo:
            for change in action.changes:
                found.update((id(s), s) for s in change.steps())
        return list(found.values())

    # --- commands -----------------------------------------------------------------------------------

    def new(self, name: str | None = None) -> SegObject:
        before = self.current
        obj = self._make(name)
        self._record([Added(obj, len(self.items) - 1)], before)
        return obj

    def _make(self, name: str | None = None) -> SegObject:
        obj = SegObject(
            id=self._next_id,
            name=name or f"Object {self._next_id}",
            colour=self.next_colour,
        )
        self._next_id += 1
        self.items.append(obj)
        self.current = obj
        return obj

    @property
    def next_colour(self) -> tuple[int, int, int]:
        """The colour the next object made will have."""
        return OBJECT_COLOURS[(self._next_id - 1) % len(OBJECT_COLOURS)]

    def _edited(self) -> tuple[SegObject, list[Change]]:
        """The object a click or box goes to, made on the first one, and the change that made it, if any."""
        if self.current is not None:
            return self.current, []
        obj = self._make()
        return obj, [Added(obj, len(self.items) - 1)]

    def edit(self, prompt_of, *, join: bool | None = False) -> bool:
        """Change the current object's prompt to `prompt_of(its prompt)` (the object is made on the first
        click); `join` as in SegObject.push. One action, unless the edit joined a step still waiting for its
        decode: returns whether it did (a replay must rebuild the same steps)."""
        before = self.current
        obj, changes = self._edited()
        replaced = obj.push(prompt_of(obj.prompt), join=join)
        if replaced is not None:
            changes.append(Stepped(obj, replaced, obj.current))
        if changes:
            self._record(changes, before)
        return replaced is None

    def adopt(self, step: Step) -> None:
        """Make `step`, a state made ahead of time from the current object's current state (a decode
        speculated while the pointer rested), that object's next state, as the click it answers would (one
        action; the object is made on the first click)."""
        before = self.current
        obj, changes = self._edited()
        if step.candidates is None:
            step.previous = obj.current  # (the same mask input: it was made from this state, or from nothing)
        changes.append(Stepped(obj, obj.current, step))
        obj.current = step
        self._record(changes, before)

    def stroke(self, stroke: Stroke) -> None:
        """Paint a brush stroke on the current object (one action): a step with the same prompt and model answer
        (no decode) and one stroke more. An object needs a click first: the strokes refine a model's mask."""
        obj = self.current
        if obj is None or obj.prompt.empty:
            raise IndexError("there is no object to paint on: click on the photo first")
        before = obj.current
        if before.candidates is None:  # its decode is still to come: this step waits for it instead
            step = Step(before.prompt, previous=before.previous, strokes=(*before.strokes, stroke))
        else:
            step = Step(before.prompt, candidates=before.candidates, chosen=before.chosen)
            step.strokes = (*before.strokes, stroke)
        obj.current = step
        self._record([Stepped(obj, before, step)], obj)

    def choose(self, index: int) -> None:
        """Show the current object's candidate `index` (its current step must be decoded)."""
        obj = self.current
        if obj is None or obj.current.candidates is None or obj.prompt.empty:
            raise RuntimeError("there is no mask to choose from yet")
        if index not in range(len(obj.current.candidates.iou)):
            raise ValueError(f"there is no candidate {index + 1}")
        if index != obj.current.chosen:
            self._record([Chose(obj.current, obj.current.chosen, index)], obj)
            obj.current.chosen = index

    def get(self, object_id: int) -> SegObject:
        for obj in self.items:
            if obj.id == object_id:
                return obj
        raise KeyError(f"there is no object {object_id}")

    def select(self, object_id: int) -> SegObject:
        self.current = self.get(object_id)
        return self.current

    def rename(self, object_id: int, name: str) -> None:
        obj = self.get(object_id)
        name = name.strip()[:80]
        if not name:
            raise ValueError("an object needs a name: type one, or press Esc to keep the old one")
        if name != obj.name:
            self._record([Renamed(obj, obj.name, name)], self.current)
            obj.name = name

    def classify(self, object_id: int, label: str | None) -> None:
        """Give an object a class (None or blank: none), one action."""
        obj = self.get(object_id)
        label = (label or "").strip()[:200] or None
        if label != obj.label:
            self._record([Classed(obj, obj.label, label)], self.current)
            obj.label = label

    def delete(self, object_id: int) -> None:
        obj = self.get(object_id)
        before = self.current
        index = self.items.index(obj)
        self.items.remove(obj)
        if self.current is obj:
            self.current = self.items[-1] if self.items else None
        self._record([Removed(obj, index)], before)
