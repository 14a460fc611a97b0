"""Prompts: include and exclude points, a box, one object's history with undo and redo, several objects.

All coordinates here are the photo's pixel coordinates (pyapp.coords' image space); the mapping to the
model happens in one place (pyapp.coords), called when the decoder's feeds are built (pyapp.feeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .contract import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT, LABEL_EXCLUDE, LABEL_INCLUDE
from .coords import Mapping
from .postprocess import Candidates

# Distinct, colour-blind-friendly colours for objects (Okabe–Ito), cycled; blue first, since the warm
# colours vanish on skin, wood and food, the things people most often cut out.
OBJECT_COLOURS = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
                  (240, 228, 66), (0, 0, 0))


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
    """What the user has said about one object: points and at most one box."""

    points: tuple[Point, ...] = ()
    box: Box | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

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
            coords += [mapping.image_to_model(self.box.x0, self.box.y0), mapping.image_to_model(self.box.x1, self.box.y1)]
            labels += [LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]
        for point in self.points:
            coords.append(mapping.image_to_model(point.x, point.y))
            labels.append(point.label)
        return (np.asarray(coords, dtype=np.float32)[None], np.asarray(labels, dtype=np.float32)[None])

    def to_json(self) -> dict:
        return {"points": [[p.x, p.y, int(p.include)] for p in self.points],
                "box": None if self.box is None else [self.box.x0, self.box.y0, self.box.x1, self.box.y1]}


@dataclass
class Step:
    """One state of an object: its prompt and, once decoded, the decoder's answer for it."""

    prompt: Prompt
    candidates: Candidates | None = None  # all three candidate masks and their scores
    chosen: int = 0  # the candidate shown (the best-scored unless the user picked another)
    in_flight: bool = False  # its decode has started and not yet ended


# Undo keeps this many states per object. A decoded state holds its three candidates (about 0.8 MB of
# logits), so an unbounded history would grow the worker's memory with every click for as long as the tab
# is open; fifty is what photo editors keep by default.
HISTORY_LIMIT = 50


@dataclass
class SegObject:
    """One object being segmented: a history of steps with undo and redo."""

    id: int
    name: str
    colour: tuple[int, int, int]
    history: list[Step] = field(default_factory=lambda: [Step(Prompt())])
    position: int = 0  # index of the current step in history

    @property
    def current(self) -> Step:
        return self.history[self.position]

    @property
    def prompt(self) -> Prompt:
        return self.current.prompt

    @property
    def waiting(self) -> bool:
        """The current state is an edit still waiting for its decode (not started yet)."""
        step = self.current
        return self.position > 0 and step.candidates is None and not step.in_flight and not step.prompt.empty

    def push(self, prompt: Prompt, *, join: bool | None = False) -> Step:
        """A new state after the current one; anything that was undone is dropped (no redo past an edit).
        Only the oldest states are forgotten past HISTORY_LIMIT.

        join=None: an edit made while the current state still waits for its decode joins that state
        instead of adding one. Clicks made faster than the decoder answers are so decoded together, once
        (latest wins), and each decode refines the mask the decode before gave (mask_input), whatever the
        timing. join=True: the edit joins the current state (replaying a session whose steps are known)."""
        if (join is None and self.waiting) or (join and self.position > 0 and not self.current.prompt.empty):
            self.history[self.position] = Step(prompt)
            return self.current
        del self.history[self.position + 1:]
        self.history.append(Step(prompt))
        self.position += 1
        if len(self.history) > HISTORY_LIMIT:
            del self.history[:len(self.history) - HISTORY_LIMIT]
            self.position = len(self.history) - 1
        return self.current

    def add_point(self, point: Point, *, join: bool | None = False) -> Step:
        return self.push(self.prompt.with_point(point), join=join)

    def set_box(self, box: Box, *, join: bool | None = False) -> Step:
        return self.push(self.prompt.with_box(box), join=join)

    def clear(self) -> Step:
        return self.push(Prompt())

    @property
    def can_undo(self) -> bool:
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        return self.position < len(self.history) - 1

    def undo(self) -> Step:
        if not self.can_undo:
            raise IndexError("nothing to undo")
        self.position -= 1
        return self.current

    def redo(self) -> Step:
        if not self.can_redo:
            raise IndexError("nothing to redo")
        self.position += 1
        return self.current

    def mask_input(self, index: int | None = None) -> np.ndarray | None:
        """The chosen low-res logits (1, 1, 256, 256) of the step before the current one (or the one at
        `index`), fed back so a new click refines the mask rather than starting over; None for the first
        click or after a clear."""
        index = self.position if index is None else index
        if index == 0:
            return None
        previous = self.history[index - 1]
        if previous.candidates is None or previous.prompt.empty:
            return None
        return previous.candidates.low_res_logits[previous.chosen][None, None]


class Objects:
    """All the objects on one photo, with the one being edited."""

    def __init__(self):
        self.items: list[SegObject] = []
        self.current: SegObject | None = None
        self._next_id = 1

    def new(self, name: str | None = None) -> SegObject:
        obj = SegObject(id=self._next_id, name=name or f"Object {self._next_id}",
                        colour=OBJECT_COLOURS[(self._next_id - 1) % len(OBJECT_COLOURS)])
        self._next_id += 1
        self.items.append(obj)
        self.current = obj
        return obj

    def get(self, object_id: int) -> SegObject:
        for obj in self.items:
            if obj.id == object_id:
                return obj
        raise KeyError(f"no object {object_id}")

    def select(self, object_id: int) -> SegObject:
        self.current = self.get(object_id)
        return self.current

    def rename(self, object_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("an object needs a name")
        self.get(object_id).name = name[:80]

    def delete(self, object_id: int) -> None:
        obj = self.get(object_id)
        self.items.remove(obj)
        if self.current is obj:
            self.current = self.items[-1] if self.items else None

    def editing(self) -> SegObject:
        """The object clicks go to, made on the first click."""
        return self.current if self.current is not None else self.new()
