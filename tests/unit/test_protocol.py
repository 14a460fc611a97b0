"""pyapp.protocol: the page's messages parsed into dataclasses, checked field by field; the worker's answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyapp import protocol


def test_every_message_the_page_sends_is_parsed_into_its_dataclass():
    click = protocol.parse(
        {
            "type": "click",
            "cmd": 3,
            "id": 2,
            "x": 10,
            "y": 20.5,
            "css_width": 600,
            "css_height": 400,
            "include": False,
            "t0": 1234.5,
        }
    )
    assert click == protocol.Click(10.0, 20.5, 600.0, 400.0, include=False, id=2, t0=1234.5, cmd=3)
    assert isinstance(click.x, float) and click.joins is None
    assert protocol.parse({"type": "undo", "cmd": 4}) == protocol.Undo(cmd=4)
    assert protocol.parse({"type": "rename", "cmd": 5, "id": 1.0, "name": "Cup"}) == protocol.Rename(1, "Cup", cmd=5)
    assert protocol.parse({"type": "view", "cmd": 6, "view": "cutout"}).opacity is None
    opened = protocol.parse(
        {
            "type": "open-files",
            "seq": 2,
            "photo": memoryview(b"jpeg"),
            "photo_name": "a.jpg",
            "bundle": bytearray(b"msgpack"),
            "bundle_name": "a.jpg.msgpack",
        }
    )
    assert opened.photo == b"jpeg" and type(opened.bundle) is bytes and opened.models == {}
    replay = protocol.parse({"type": "replay", "messages": [{"type": "undo"}]})
    assert replay.messages == [{"type": "undo"}]  # parsed one by one when applied
    assert protocol.parse({"type": "everything", "cmd": 7}) == protocol.Everything(16, cmd=7)
    assert protocol.parse({"type": "subject", "cmd": 9}) == protocol.Subject(cmd=9)
    stroke = {
        "type": "stroke",
        "cmd": 10,
        "points": [[1, 2], [3.5, 4]],
        "radius": 6,
        "css_width": 600,
        "css_height": 400,
    }
    assert protocol.parse(stroke) == protocol.Stroke([[1, 2], [3.5, 4]], 6.0, 600.0, 400.0, cmd=10)
    assert protocol.parse({"type": "export", "what": "coco", "tolerance": 0}).tolerance == 0
    assert protocol.parse({"type": "view", "cmd": 8, "view": "cutout", "feather": 4}).feather == 4
    assert set(protocol.INBOUND) == {
        "everything",
        "subject",
        "stroke",
        "everything-cancel",
        "open",
        "open-files",
        "click",
        "box",
        "undo",
        "redo",
        "clear",
        "new-object",
        "select",
        "delete",
        "rename",
        "candidate",
        "view",
        "reset",
        "replay",
        "export",
        "hover",
        "hover-end",
        "viewport",
        "prepare",
        "make-bundle",
        "collection",
        "collection-export",
        "session",
        "classify",
    }


@pytest.mark.parametrize(
    "message, words",
    [
        ("click", "not an object"),
        ({"x": 1}, "does not know: 'None'"),
        ({"type": "teleport"}, "does not know: 'teleport'"),
        ({"type": "click", "x": 1, "y": 2, "css_width": 3}, "needs the field 'css_height'"),
        ({"type": "click", "x": "1", "y": 2, "css_width": 3, "css_height": 4}, "'x' is str, not float"),
        ({"type": "click", "x": math.nan, "y": 2, "css_width": 3, "css_height": 4}, "'x' is nan, not a finite number"),
        ({"type": "select", "id": True}, "'id' is bool, not int"),
        ({"type": "select", "id": 1.5}, "'id' is float, not int"),
        ({"type": "candidate", "index": None}, "'index' is NoneType, not int"),
        ({"type": "open", "seq": 1, "bundle_url": "b", "model_url": "m", "preview_url": 7}, "'preview_url' is int"),
        ({"type": "undo", "cmd": "3"}, "'cmd' is str, not int or null"),
    ],
)
def test_a_message_without_the_fields_its_type_needs_is_refused_saying_which(message, words):
    with pytest.raises(protocol.ProtocolError, match=words):
        protocol.parse(message)


def test_answers_are_the_plain_objects_the_page_reads():
    pixels = np.zeros((2, 3, 4), np.uint8)
    frame = protocol.Frame(1, 3, 2, pixels, {"open": True}).to_message()
    assert frame == {"type": "frame", "seq": 1, "width": 3, "height": 2, "pixels": pixels, "state": {"open": True}}
    assert frame["pixels"] is pixels  # not copied: the edge transfers it
    with_mask = protocol.Frame(1, 3, 2, pixels, {}, {"object": 1}, 12.5).to_message()
    assert with_mask["mask"] == {"object": 1} and with_mask["t0"] == 12.5
    assert protocol.Applied(4).to_message() == {"type": "applied", "cmd": 4}
    assert protocol.Applied(4, True).to_message() == {"type": "applied", "cmd": 4, "joins": True}
    assert protocol.Error("open", "no").to_message() == {
        "type": "error",
        "phase": "open",
        "message": "no",
        "hint": "",
        "fatal": False,
    }
    assert protocol.Error("decode", "x", refused=7, restart=True).to_message()["restart"] is True
