"""pyapp.prompt: objects, their steps, and undo and redo across every object."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp import postprocess
from pyapp.coords import Mapping
from pyapp.prompt import HISTORY_LIMIT, Box, Objects, Point, Prompt


def with_point(x, y, include=True):
    return lambda prompt: prompt.with_point(Point(x, y, include))


def decoded(step, best=1):
    """Give a step an answer: three flat candidates valued 1, 2, 3, the `best` one scored highest."""
    logits = np.stack([np.full((256, 256), v, np.float32) for v in (1.0, 2.0, 3.0)])
    scores = np.full(3, 0.1, np.float32)
    scores[best] = 0.9
    step.candidates = postprocess.Candidates(logits, scores, logits)
    step.chosen = best
    step.previous = None


def test_undo_redo_and_an_edit_after_undo():
    objects = Objects()
    objects.edit(with_point(1, 1))
    obj = objects.current
    objects.edit(with_point(2, 2, include=False))
    assert len(obj.prompt.points) == 2 and objects.can_undo and not objects.can_redo
    objects.undo()
    assert obj.prompt.points == (Point(1, 1),) and objects.can_redo
    objects.redo()
    assert len(obj.prompt.points) == 2
    objects.undo()
    objects.edit(with_point(3, 3))  # an edit after an undo drops what was undone
    assert obj.prompt.points == (Point(1, 1), Point(3, 3)) and not objects.can_redo
    objects.edit(lambda prompt: Prompt())  # clear
    assert obj.prompt.empty and objects.can_undo
    objects.undo()
    assert len(obj.prompt.points) == 2
    with pytest.raises(IndexError, match="nothing to undo"):
        Objects().undo()
    objects.redo()
    with pytest.raises(IndexError, match="nothing to redo"):
        objects.redo()


def test_undo_spans_objects_and_selects_what_it_changes():
    objects = Objects()
    objects.edit(with_point(1, 1))  # makes object 1
    first = objects.current
    second = objects.new()
    objects.edit(with_point(5, 5))
    objects.select(first.id)
    objects.undo()  # the last action was on the second object: it is undone there, and selected
    assert second.prompt.empty and objects.current is second and first.prompt.points == (Point(1, 1),)
    objects.undo()  # "new object"
    assert objects.items == [first] and objects.current is first
    objects.undo()  # the first click, which made the first object
    assert objects.items == [] and objects.current is None
    objects.redo()
    objects.redo()
    objects.redo()
    assert objects.items == [first, second] and second.prompt.points == (Point(5, 5),)


def test_delete_rename_and_candidate_choices_are_undone():
    objects = Objects()
    objects.edit(with_point(1, 1))
    first = objects.current
    decoded(first.current)
    objects.choose(2)
    objects.rename(first.id, "  Saucer ")
    second = objects.new("Cup")
    objects.delete(first.id)
    assert objects.items == [second] and objects.current is second
    objects.undo()
    assert objects.items == [first, second] and objects.current is second  # back in its place
    objects.undo()  # "new object"
    objects.undo()
    assert first.name == "Object 1"
    objects.undo()
    assert first.current.chosen == 1
    objects.redo()
    assert first.current.chosen == 2
    with pytest.raises(ValueError, match="needs a name"):
        objects.rename(first.id, "   ")
    with pytest.raises(ValueError, match="no candidate 4"):
        objects.choose(3)
    with pytest.raises(KeyError):
        objects.delete(99)


def test_one_action_can_change_several_objects():
    """An automatic result makes many objects at once: one undo takes them all back, one redo returns them."""
    objects = Objects()
    objects.edit(with_point(1, 1))
    kept = objects.current
    with objects.action():
        made = [objects.new(f"auto {n}") for n in range(1, 6)]
        for index, obj in enumerate(made):
            objects.select(obj.id)
            objects.edit(with_point(10 * index, 10))
    assert len(objects.items) == 6
    objects.undo()
    assert objects.items == [kept] and objects.current is kept
    objects.redo()
    assert objects.items == [kept, *made] and all(len(o.prompt.points) == 1 for o in made)


def test_the_history_keeps_fifty_actions_and_only_the_steps_they_need():
    objects = Objects()
    for index in range(HISTORY_LIMIT + 30):
        objects.edit(with_point(index, 0))
        decoded(objects.current.current)
    assert len(objects.steps()) == HISTORY_LIMIT + 1
    for _ in range(HISTORY_LIMIT):
        objects.undo()
    assert len(objects.current.prompt.points) == 30 and not objects.can_undo


def test_clicks_during_a_decode_join_the_step_waiting_and_not_the_running_one():
    objects = Objects()
    objects.edit(with_point(1, 1), join=None)
    obj = objects.current
    running = obj.current.next_to_decode()
    running.in_flight = True
    assert not objects.edit(with_point(2, 2), join=None)  # a new step: the first is being decoded
    assert objects.edit(with_point(3, 3), join=None)  # joins the step still waiting
    waiting = obj.current
    assert waiting.previous is running and len(waiting.prompt.points) == 3
    assert waiting.next_to_decode() is None  # it waits for the running decode, whose mask it refines
    running.in_flight = False
    decoded(running)
    assert waiting.next_to_decode() is waiting
    objects.undo()
    assert obj.current is running  # one undo takes back what one decode showed


def test_mask_feedback_is_the_chosen_candidate_of_the_step_refined():
    objects = Objects()
    objects.edit(with_point(1, 1))
    obj = objects.current
    assert obj.current.mask_input is None  # the first click has nothing to refine
    decoded(obj.current, best=1)
    objects.choose(2)  # not the best-scored one
    objects.edit(with_point(2, 2))
    fed = obj.current.mask_input
    assert fed.shape == (1, 1, 256, 256) and (fed == 3.0).all()
    objects.edit(lambda prompt: Prompt())
    objects.edit(with_point(3, 3))
    assert obj.current.mask_input is None  # after a clear, a click starts over


def test_prompt_arrays_put_the_box_first_like_meta():
    mapping = Mapping.for_image(512, 256)
    prompt = (
        Prompt()
        .with_point(Point(10, 20))
        .with_point(Point(30, 40, include=False))
        .with_box(Box.from_corners(100, 200, 50, 60))
    )
    coords, labels = prompt.model_arrays(mapping)
    assert coords.shape == (1, 4, 2) and coords.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_array_equal(labels, [[2, 3, 1, 0]])
    np.testing.assert_allclose(coords[0], [[100, 240], [200, 800], [20, 80], [60, 160]])


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError):
        Prompt().model_arrays(Mapping.for_image(10, 10))


def test_objects_new_select_rename_delete():
    objects = Objects()
    first, second = objects.new(), objects.new("Cup")
    assert objects.current is second and first.colour != second.colour
    objects.select(first.id)
    objects.rename(first.id, "  Saucer ")
    assert objects.current.name == "Saucer"
    with pytest.raises(ValueError):
        objects.rename(first.id, "   ")
    objects.delete(first.id)
    assert objects.current is second and [o.name for o in objects.items] == ["Cup"]
    with pytest.raises(KeyError):
        objects.get(first.id)
