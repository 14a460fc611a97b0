"""pyapp.session: what the worker does with the page's messages, driven in CPython as the browser drives it.

The page's side is played by `Page` below: it numbers commands, keeps the log of those the worker applied
(with whether each click joined the step before) and drops those it refused, as the page does (site/js/worker.js); a
restarted worker gets that log as one replay. Decoders: a numpy stand-in whose answer depends on every
input (points, labels, the fed-back mask), with decodes that a test can hold and release; and the built-in
baseline ONNX model in onnxruntime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json

import numpy as np
import pytest
from PIL import Image

from pyapp import contract
from pyapp.bundle import write_bundle
from pyapp.runner import OnnxRuntimeRunner
from pyapp.session import EVERYTHING_BATCH, MAX_MESSAGE, WARM_RUNS, DecoderError, Session

WIDTH, HEIGHT = 1200, 800
CSS = (600, 400)  # the canvas as the page shows it: half the photo's size
INPUTS = list(contract.DECODER_INPUTS)


class Discs:
    """A stand-in decoder: candidates are discs of radius 20, 40, 60 (in 256-px cells) around the include
    points, less discs around the exclude points, plus half the fed-back mask; the scores favour the middle
    one. Each answer depends on the prompt and the mask fed back, so a replay that feeds anything else shows."""

    model_name = "stand-in"
    input_names = INPUTS

    def __init__(self, held: bool = False, fail: Exception | None = None):
        self.calls: list[dict] = []
        self.warmed = 0
        self.held = held  # decodes wait for release()
        self.fail = fail
        self._gate = asyncio.Event()

    def release(self):
        self._gate.set()

    async def run(self, feeds, embeddings):
        self.calls.append(feeds)
        if self.held:
            await self._gate.wait()
            self._gate.clear()
        await asyncio.sleep(0)
        if self.fail:
            raise self.fail
        return self.answer(feeds)

    async def warm(self, feeds, embeddings):
        self.warmed += 1
        return self.answer(feeds)

    def answer(self, feeds):
        coords, labels = feeds["point_coords"][0] / 4, feeds["point_labels"][0]
        yy, xx = np.mgrid[0:256, 0:256] + 0.5
        masks = []
        for radius in (20, 40, 60):
            logits = np.full((256, 256), -10.0, np.float32)
            for (x, y), label in zip(coords, labels):
                distance = np.hypot(xx - x, yy - y)
                if label == 1:
                    logits = np.maximum(logits, radius - distance)
                elif label == 0:
                    logits = np.minimum(logits, distance - 10)
            masks.append(logits + 0.5 * feeds["has_mask_input"][0] * feeds["mask_input"][0, 0])
        return {
            "masks": np.stack(masks)[None].astype(np.float32),
            "iou_predictions": np.array([[0.5, 0.9, 0.7]], np.float32),
        }

    def forget_photo(self):
        pass


class OnnxRunner:
    """The built-in baseline model in onnxruntime, with the browser runner's (asynchronous) shape."""

    def __init__(self, model_dir):
        info = json.loads((model_dir / "model.json").read_text())
        self.model_name = info["name"]
        self.runner = OnnxRuntimeRunner(model_dir / info["files"]["decoder"])
        self.input_names = self.runner.input_names

    async def run(self, feeds, embeddings):
        await asyncio.sleep(0)
        return self.runner.run(feeds)

    async def warm(self, feeds, embeddings):
        return await self.run(feeds, embeddings)

    def forget_photo(self):
        pass


class Loader:
    def __init__(self, runner, files: dict[str, bytes]):
        self._runner, self.files = runner, files

    async def runner(self, model_url, decoder):
        if model_url == "broken/":
            raise DecoderError(
                "onnxruntime-web could not load the decoder broken/decoder.onnx (protobuf parsing failed)"
            )
        return self._runner

    async def fetch(self, url, what):
        await asyncio.sleep(0)
        if url not in self.files:
            raise RuntimeError(f"{what} could not be loaded ({url} answered HTTP 404)")
        return self.files[url]


def photo_files(model_name: str, width=WIDTH, height=HEIGHT, seed=0, name="photo") -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    embeddings = {n: rng.standard_normal(s).astype(np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    preview = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8)).save(preview, "PNG")
    bundle = write_bundle(embeddings, width=width, height=height, image_sha256=f"{seed:064x}", model_name=model_name)
    return {f"{name}.png": preview.getvalue(), f"{name}.msgpack": bundle}


def open_message(seq=1, name="photo"):
    return {
        "type": "open",
        "seq": seq,
        "model_url": "model/",
        "bundle_url": f"{name}.msgpack",
        "preview_url": f"{name}.png",
        "name": name,
    }


class Page:
    """The page's side of the protocol, as the page (site/js/) plays it."""

    def __init__(self, runner, files=None):
        self.runner = runner
        self.loader = Loader(runner, files or photo_files(runner.model_name))
        self.posted: list[dict] = []
        self.session = Session(self.posted.append, self.loader)
        self.cmd = 0
        self.inputs = 0
        self.sent: dict[int, dict] = {}  # commands sent, by cmd, not answered yet
        self.log: list[dict] = []  # commands applied, in order, with joins for clicks and boxes

    def send(self, message: dict) -> None:
        if message["type"] not in ("open", "open-files", "export", "hover", "hover-end", "replay", "everything-cancel"):
            self.cmd += 1
            message = {**message, "cmd": self.cmd}
            if message["type"] in ("click", "box"):
                self.inputs += 1
                message["id"] = self.inputs
            self.sent[self.cmd] = message
        self.session.handle(message)

    def click(self, x, y, include=True):
        self.send(
            {"type": "click", "x": x, "y": y, "css_width": CSS[0], "css_height": CSS[1], "include": include, "t0": 0}
        )

    def rest(self, x, y, include=True, press=False):
        """The pointer has been still at (x, y) for a moment (the page's rest timer fired); press: a mouse
        button went down there."""
        self.send(
            {"type": "hover", "x": x, "y": y, "css_width": CSS[0], "css_height": CSS[1], "include": include}
            | ({"press": True} if press else {})
        )

    def receive(self) -> None:
        """Read what the worker posted: answers move commands into the log, or drop them."""
        for message in self.posted:
            if message["type"] == "applied" and message["cmd"] in self.sent:
                entry = self.sent.pop(message["cmd"])
                entry.update((key, message[key]) for key in ("joins", "x", "y") if key in message)
                self.log.append(entry)
            elif message["type"] in ("refused", "error") and message.get("refused") in self.sent:
                self.sent.pop(message["refused"])
            elif message["type"] == "refused":
                self.sent.pop(message["cmd"], None)

    async def settle(self):
        """Until the worker has applied everything and decoded everything."""
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not self.session.busy and not self.session.decoding:
                break
        self.receive()

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.posted if m["type"] == kind]

    def state(self) -> dict:
        return self.session.app.state()

    def masks(self) -> list[np.ndarray]:
        app = self.session.app
        return [obj.current.mask(*app.view_size) for obj in app.segmenter.objects.items]


async def opened(runner) -> Page:
    """A page with the photo open in a worker using `runner`, settled."""
    page = Page(runner)
    page.send(open_message())
    await page.settle()
    return page


async def finished(page: Page) -> None:
    """Until the worker's own tasks (a collection's export) are done."""
    while page.session.tasks:
        await asyncio.gather(*list(page.session.tasks))
    page.receive()


def restarted(page: Page, runner=None) -> Page:
    """A fresh worker given the photo and the page's log, as the page does after a crash."""
    again = Page(runner or type(page.runner)(), page.loader.files)
    again.cmd, again.inputs = page.cmd, page.inputs
    again.send(open_message())
    again.session.handle({"type": "replay", "messages": page.log})
    return again


def run(coroutine):
    """Run a scenario in an event loop of its own thread (the browser tests' Playwright keeps a loop running in
    this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_session_that_used_every_control_is_rebuilt_exactly_after_a_restart():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        page.send({"type": "candidate", "index": 2})  # before its decode: refused, and not logged
        await page.settle()
        page.send({"type": "candidate", "index": 2})  # not the best-scored: the next click refines it
        page.click(320, 210, include=False)
        page.click(310, 190)  # joins the step waiting
        await page.settle()
        page.send({"type": "rename", "id": 1, "name": "Cup"})
        page.send({"type": "rename", "id": 1, "name": "   "})  # refused: an object needs a name
        page.send({"type": "classify", "id": 1, "label": "cup"})
        page.send({"type": "new-object"})
        page.send(
            {
                "type": "box",
                "x0": 50,
                "y0": 50,
                "x1": 150,
                "y1": 120,
                "css_width": CSS[0],
                "css_height": CSS[1],
                "t0": 0,
            }
        )
        await page.settle()
        page.click(900, 900)  # off the canvas: refused quietly
        page.send({"type": "new-object"})
        page.click(500, 300)
        await page.settle()
        page.send({"type": "delete", "id": 2})
        page.send({"type": "undo"})  # the delete
        page.send({"type": "undo"})  # the last click
        page.send({"type": "redo"})
        page.send({"type": "select", "id": 1})
        page.click(280, 220)
        await page.settle()
        page.send({"type": "undo"})
        page.send({"type": "select", "id": 3})
        page.send({"type": "clear"})
        page.send({"type": "clear"})  # nothing left to clear: refused quietly
        page.send({"type": "delete", "id": 3})
        page.send({"type": "view", "view": "cutout", "opacity": 0.7})
        page.send({"type": "select", "id": 42})  # no such object: refused with a message
        await page.settle()
        assert page.sent == {}  # every command answered
        errors = page.of("error")
        assert [e["refused"] for e in errors] == [2, 7, 26] and not any(e.get("restart") for e in errors)
        assert [m["cmd"] for m in page.of("refused")] == [11, 23]  # nothing to do: no message at all
        assert all(len(e["message"]) <= MAX_MESSAGE for e in errors)

        again = restarted(page)
        await again.settle()
        assert again.of("error") == [] and again.sent == {}
        assert again.state() == page.state()
        for before, after in zip(page.masks(), again.masks(), strict=True):
            np.testing.assert_array_equal(before, after)
        np.testing.assert_array_equal(again.session.app.render(), page.session.app.render())
        # The same decodes, fed the same way, in the same order (the chosen candidate fed back included).
        assert len(again.runner.calls) == len(page.runner.calls)
        for first, second in zip(page.runner.calls, again.runner.calls):
            for name in ("point_coords", "point_labels", "mask_input", "has_mask_input"):
                np.testing.assert_array_equal(first[name], second[name])
        # And the history too: undoing both sessions step by step shows the same states.
        while page.state()["can_undo"]:
            page.send({"type": "undo"})
            again.send({"type": "undo"})
            await page.settle()
            await again.settle()
            assert again.state() == page.state()
        assert not again.state()["can_undo"]
        return page

    page = run(scenario())
    assert page.state()["objects"] == []


@pytest.mark.parametrize(
    "messages, objects, clicks",
    [
        # The cases: a replay that stopped at its first failing message lost everything after it.
        (
            [
                {"type": "click", "x": 300, "y": 200},
                {"type": "candidate", "index": 1},
                {"type": "new-object"},
                {"type": "click", "x": 100, "y": 100},
            ],
            2,
            [1, 1],
        ),
        ([{"type": "undo"}, {"type": "click", "x": 300, "y": 200}, {"type": "click", "x": 310, "y": 200}], 1, [2]),
        (
            [
                {"type": "click", "x": 300, "y": 200},
                {"type": "rename", "id": 1, "name": ""},
                {"type": "select", "id": 7},
                {"type": "what-is-this"},
                {"type": "click", "x": 9999, "y": 1},
                {"type": "click", "x": 320, "y": 200},
            ],
            1,
            [2],
        ),
    ],
)
def test_a_replay_skips_what_fails_and_applies_the_rest(messages, objects, clicks):
    async def scenario():
        page = await opened(Discs())
        replay = []
        for n, message in enumerate(messages, 1):
            if message["type"] == "click":
                message = {**message, "css_width": CSS[0], "css_height": CSS[1], "id": n}
            replay.append({**message, "cmd": n})
        page.session.handle({"type": "replay", "messages": replay})
        await page.settle()
        state = page.state()
        assert [o["clicks"] for o in state["objects"]] == clicks and len(state["objects"]) == objects
        assert page.of("frame")[-1]["state"] == state  # one frame after the replay shows it
        assert all(o["has_mask"] for o in state["objects"])

    run(scenario())


def test_clicks_during_a_decode_are_decoded_together_once_and_say_they_joined():
    async def scenario():
        runner = Discs(held=True)
        page = await opened(runner)
        page.click(300, 200)
        await asyncio.sleep(0)
        for x in (310, 320, 330):
            page.click(x, 200)
        page.receive()
        assert [entry.get("joins") for entry in page.log] == [False, False, True, True]
        runner.release()
        await asyncio.sleep(0.01)
        runner.release()
        await page.settle()
        masks = [f["mask"] for f in page.of("frame") if "mask" in f]
        assert len(runner.calls) == 2 and [m["clicks"] for m in masks] == [1, 4]
        assert masks[-1]["refined"] and masks[-1]["input"] == 4
        assert page.of("settled")[-1]["input"] == 4

    run(scenario())


def test_the_worker_says_it_is_applying_a_replay_until_the_replay_is_over():
    """What the page (and a test) may wait on after a restart: the replay is under way, also between its
    decodes, when nothing decodes."""

    async def scenario():
        page = await opened(Discs())
        for x in (300, 310):
            page.click(x, 200)
            await page.settle()
        runner = Discs(held=True)
        again = await opened(runner)
        again.session.handle({"type": "replay", "messages": page.log})
        await asyncio.sleep(0.01)
        assert again.session.stats()["applying"]
        while again.session.stats()["applying"]:
            runner.release()
            await asyncio.sleep(0.01)
        await again.settle()
        assert not again.session.stats()["applying"] and len(runner.calls) == 2

    run(scenario())


def test_messages_sent_while_a_photo_opens_wait_and_are_applied_to_it_in_order():
    async def scenario():
        page = Page(Discs())
        page.send(open_message())
        page.click(300, 200)  # arrives before the photo is open
        page.send({"type": "new-object"})
        page.click(100, 100)
        assert page.session.stats()["queued"] == 4  # the open, not begun yet, and the three
        await page.settle()
        assert [o["clicks"] for o in page.state()["objects"]] == [1, 1] and page.of("error") == []

    run(scenario())


def test_of_several_photos_chosen_quickly_only_the_last_is_opened():
    async def scenario():
        files = {
            **photo_files("stand-in", name="a", seed=1),
            **photo_files("stand-in", 640, 480, 2, "b"),
            **photo_files("stand-in", 800, 600, 3, "c"),
        }
        page = Page(Discs(), files)
        page.send(open_message(1, "a"))
        page.send(open_message(2, "b"))
        page.send(open_message(3, "c"))
        page.click(100, 100)
        await page.settle()
        opened = page.of("opened")
        assert opened[-1]["seq"] == 3 and (opened[-1]["width"], opened[-1]["height"]) == (800, 600)
        assert 2 not in [m["seq"] for m in opened]  # superseded before it began
        assert page.state()["objects"][0]["clicks"] == 1

    run(scenario())


async def clicked_on_a_with_b_to_come() -> tuple[Page, Discs]:
    """Photo "a" open (photo "b" available), clicked once, its decode held until the runner is released."""
    files = {**photo_files("stand-in", name="a", seed=1), **photo_files("stand-in", 640, 480, 2, "b")}
    runner = Discs(held=True)
    page = Page(runner, files)
    page.send(open_message(1, "a"))
    await page.settle()
    page.click(300, 200)
    await asyncio.sleep(0)
    return page, runner


def test_a_photo_left_during_a_decode_gives_its_objects_with_that_decodes_mask():
    """A photo of a collection is left (the page asks for its labels, then opens the next photo) while the
    decode of its last click runs: the labels wait for that decode, so the object has the mask of every
    click; the next photo opens after them."""
    import json

    from pyapp import collection

    async def scenario():
        page, runner = await clicked_on_a_with_b_to_come()
        page.send({"type": "export", "what": "labels"})
        page.send(open_message(2, "b"))
        await asyncio.sleep(0.01)
        assert page.of("download") == []  # not before the decode ends
        runner.release()
        await page.settle()
        [labels] = [json.loads(bytes(d["data"])) for d in page.of("download")]
        [obj] = labels
        height, width = obj["mask"]["size"]
        assert (width, height) != (640, 480) and collection.mask_from_rle(obj["mask"]["counts"], height, width).any()
        assert page.of("opened")[-1]["seq"] == 2 and page.state()["objects"] == []

    run(scenario())


def test_a_decode_that_ends_after_another_photo_opened_paints_nothing_on_it():
    async def scenario():
        page, runner = await clicked_on_a_with_b_to_come()
        page.send(open_message(2, "b"))
        await asyncio.sleep(0.01)
        runner.release()
        await page.settle()
        assert [f for f in page.of("frame") if "mask" in f] == []
        assert page.of("frame")[-1]["seq"] == 2 and page.state()["objects"] == []

    run(scenario())


def test_hover_previews_before_the_first_click_only():
    async def scenario():
        page = await opened(Discs())
        plain = page.of("frame")[-1]["pixels"]
        page.rest(300, 200)
        await page.settle()
        hovered = page.of("frame")[-1]
        changed = (hovered["pixels"] != plain).any(axis=-1)
        assert changed.sum() > 1000 and "mask" not in hovered  # tinted where the click would select
        assert page.state()["objects"] == []  # and nothing recorded
        page.send({"type": "hover-end"})
        np.testing.assert_array_equal(page.of("frame")[-1]["pixels"], plain)
        page.click(300, 200)
        await page.settle()
        frames, calls = len(page.of("frame")), len(page.runner.calls)
        page.rest(100, 100)
        await page.settle()
        assert len(page.runner.calls) == calls + 1  # after the first click, the click is decoded ahead...
        assert len(page.of("frame")) == frames  # ...but nothing is shown until it comes
        assert page.state()["objects"][0]["clicks"] == 1

    run(scenario())


def fresh(clicks: list[tuple[float, float, bool]]) -> Page:
    """A page given the same clicks with no pointer resting anywhere (every click decoded as made)."""

    async def scenario():
        page = await opened(Discs())
        for x, y, include in clicks:
            page.click(x, y, include)
            await page.settle()
        return page

    return run(scenario())


def rebuilt(page: Page) -> Page:
    """A restarted worker given the page's log (see restarted), once it has replayed it."""

    async def scenario():
        again = restarted(page, Discs())
        await again.settle()
        return again

    return run(scenario())


def mask_frames(page: Page) -> list[dict]:
    return [f["mask"] for f in page.of("frame") if "mask" in f]


@pytest.mark.parametrize("include", [True, False])
def test_a_click_where_the_pointer_rested_paints_the_speculated_decode(include):
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        page.rest(400, 250, include)
        await page.settle()
        calls = len(page.runner.calls)
        page.click(401.5, 251.5, include)  # within 3 CSS px of the rested point
        await page.settle()
        assert len(page.runner.calls) == calls  # answered by the decode made before the click
        mask = mask_frames(page)[-1]
        assert mask["speculated"] and mask["input"] == 2 and mask["clicks"] == 2 and mask["refined"]
        assert mask["latency_ms"]["decode"] == 0
        assert (page.log[-1]["x"], page.log[-1]["y"]) == (400, 250)  # the rested point is what was committed
        assert page.of("settled")[-1]["input"] == 2 and page.state()["can_undo"]
        return page

    page = run(scenario())
    # The same as a fresh decode of that prompt: mask, candidates, and what the decoder was fed.
    made = fresh([(300, 200, True), (400, 250, include)])
    assert page.state() == made.state()
    np.testing.assert_array_equal(page.masks()[0], made.masks()[0])
    for name in ("point_coords", "point_labels", "mask_input", "has_mask_input"):
        np.testing.assert_array_equal(page.runner.calls[-1][name], made.runner.calls[-1][name])
    np.testing.assert_array_equal(page.of("frame")[-1]["pixels"], made.of("frame")[-1]["pixels"])
    # And a restarted worker rebuilds it from the page's log.
    again = rebuilt(page)
    assert again.state() == page.state()
    np.testing.assert_array_equal(again.masks()[0], page.masks()[0])


def test_the_first_click_where_the_pointer_rested_takes_the_hover_preview():
    async def scenario():
        page = await opened(Discs())
        page.rest(300, 200)
        await page.settle()
        page.click(300, 200)
        await page.settle()
        assert len(page.runner.calls) == 1 and mask_frames(page)[-1]["speculated"]
        assert [o["clicks"] for o in page.state()["objects"]] == [1]
        page.send({"type": "undo"})
        await page.settle()
        assert page.state()["objects"] == [] and page.state()["can_redo"]  # one action, made by the click
        page.send({"type": "redo"})
        await page.settle()
        return page

    page, made = run(scenario()), fresh([(300, 200, True)])
    assert page.state() == made.state()
    np.testing.assert_array_equal(page.masks()[0], made.masks()[0])


def test_a_press_starts_the_clicks_decode_which_the_click_takes_unshown_until_then():
    async def scenario():
        runner = Discs(held=True)
        page = await opened(runner)
        frames = len(page.of("frame"))
        page.rest(300, 200, press=True)  # the button goes down: before the object's first click
        await asyncio.sleep(0.01)
        runner.release()
        await page.settle()
        assert len(runner.calls) == 1 and page.state()["objects"] == []
        assert len(page.of("frame")) == frames  # not shown as a hover preview: the button may be dragging a box
        page.click(300, 200)  # the button comes up
        await page.settle()
        assert len(runner.calls) == 1 and mask_frames(page)[-1]["speculated"]
        return page

    page, made = run(scenario()), fresh([(300, 200, True)])
    assert page.state() == made.state()
    np.testing.assert_array_equal(page.masks()[0], made.masks()[0])


def test_a_press_where_the_pointer_rested_keeps_that_decode():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        page.rest(400, 250)
        await page.settle()
        calls = len(page.runner.calls)
        page.rest(401, 250, press=True)  # decoded already: not decoded again...
        await page.settle()
        assert len(page.runner.calls) == calls
        page.click(401, 250)  # ...and the click paints it at once
        await page.settle()
        assert len(page.runner.calls) == calls and mask_frames(page)[-1]["speculated"]
        assert mask_frames(page)[-1]["latency_ms"]["decode"] == 0
        return page

    page, made = run(scenario()), fresh([(300, 200, True), (400, 250, True)])
    assert page.state() == made.state()


def test_a_press_that_becomes_a_box_drops_its_decode():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        page.rest(100, 100, press=True)
        await page.settle()
        box = {"x0": 100, "y0": 100, "x1": 250, "y1": 220, "css_width": CSS[0], "css_height": CSS[1], "t0": 0}
        page.send({"type": "box", **box})
        await page.settle()
        assert page.session.speculation is None and not mask_frames(page)[-1].get("speculated")
        assert page.state()["objects"][0]["clicks"] == 3  # the click before, and the box's two corners
        assert mask_frames(page)[-1]["prompt"]["box"] is not None
        return page

    run(scenario())


def test_clicks_the_speculation_does_not_answer_are_decoded_as_made():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        cases = [
            ("farther than 3 px", lambda: None, (404, 250, True)),
            ("the other label", lambda: None, (400, 250, False)),
            ("another candidate chosen", lambda: page.send({"type": "candidate", "index": 0}), (400, 250, True)),
            ("another object", lambda: page.send({"type": "new-object"}), (400, 250, True)),
        ]
        for why, meanwhile, (x, y, include) in cases:
            page.rest(400, 250)
            await page.settle()
            calls = len(page.runner.calls)
            meanwhile()
            await page.settle()
            page.click(x, y, include)
            await page.settle()
            assert len(page.runner.calls) == calls + 1, why
            assert not mask_frames(page)[-1].get("speculated") and (page.log[-1]["x"], page.log[-1]["y"]) == (x, y)
            page.send({"type": "undo"})
            await page.settle()

    run(scenario())


def test_a_click_during_the_speculated_decode_takes_it_when_it_ends():
    async def scenario():
        runner = Discs(held=True)
        page = await opened(runner)
        page.click(300, 200)
        await asyncio.sleep(0.01)
        runner.release()
        await page.settle()
        page.rest(400, 250)
        await asyncio.sleep(0.01)  # the speculation runs...
        page.click(400, 250)  # ...when the click comes
        page.click(200, 300)  # and a click after that waits for it, then refines its answer
        page.receive()
        assert [entry.get("joins") for entry in page.log] == [False, False, False]
        for _ in range(2):
            runner.release()
            await asyncio.sleep(0.01)
        await page.settle()
        assert len(runner.calls) == 3
        masks = mask_frames(page)
        assert [(m["clicks"], m.get("speculated", False)) for m in masks] == [(1, False), (2, True), (3, False)]
        return page

    page = run(scenario())
    made = fresh([(300, 200, True), (400, 250, True), (200, 300, True)])
    assert page.state() == made.state()
    np.testing.assert_array_equal(page.masks()[0], made.masks()[0])


def test_a_storm_of_rests_and_clicks_ends_on_the_mask_of_the_clicks_made():
    async def scenario():
        runner = Discs(held=True)
        page = await opened(runner)
        rng = np.random.default_rng(7)
        for index in range(40):
            x, y = float(rng.uniform(10, 590)), float(rng.uniform(10, 390))
            action = rng.integers(0, 5)
            if action == 0:
                page.rest(x, y)
            elif action == 1:
                page.rest(x, y)
                for _ in range(3):
                    await asyncio.sleep(0)  # the speculation may start (if no decode runs)
                page.click(x + 1, y)
            elif action == 2:
                page.click(x, y, bool(rng.integers(0, 2)))
            elif action == 3:
                page.send({"type": "hover-end"})
            else:
                page.send({"type": "new-object"} if index % 7 == 0 else {"type": "undo"})
            if rng.integers(0, 2):
                runner.release()
            await asyncio.sleep(0)
        runner.held = False
        runner.release()
        await page.settle()
        assert page.of("error") == []
        return page

    page = run(scenario())
    speculated = sum(bool(m.get("speculated")) for m in mask_frames(page))
    again = rebuilt(page)
    assert again.state() == page.state() and speculated > 0
    for before, after in zip(page.masks(), again.masks(), strict=True):
        if before is None:
            assert after is None
        else:
            np.testing.assert_array_equal(before, after)


def test_the_decoder_is_warmed_on_each_photo_before_the_first_click():
    async def scenario():
        files = {**photo_files("stand-in", name="a", seed=1), **photo_files("stand-in", 640, 480, 2, "b")}
        runner = Discs()
        page = Page(runner, files)
        page.send(open_message(1, "a"))
        await page.settle()
        assert runner.warmed == WARM_RUNS and runner.calls == []  # warmed, nothing shown, nothing recorded
        assert page.state()["objects"] == [] and [f for f in page.of("frame") if "mask" in f] == []
        assert len(page.of("frame")) == 1  # the frame of the photo opening, no other
        page.click(300, 200)
        await page.settle()
        assert runner.warmed == WARM_RUNS and len(runner.calls) == 1
        page.send(open_message(2, "b"))
        page.click(100, 100)  # a click waiting for the photo is decoded at once: it is the warm-up
        await page.settle()
        assert runner.warmed == WARM_RUNS and len(runner.calls) == 2

    run(scenario())


def test_a_failing_decoder_asks_for_a_restart_with_a_short_message():
    async def scenario():
        page = Page(Discs(fail=RuntimeError("input 'x' is not a tensor name: " + "y" * 245_000)))
        page.send(open_message())
        await page.settle()
        page.click(300, 200)
        await page.settle()
        [error] = page.of("error")
        assert error["restart"] and len(error["message"]) <= MAX_MESSAGE

    run(scenario())


def test_opening_errors_are_messages_and_keep_the_photo():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        page.send({**open_message(2), "model_url": "broken/"})
        await page.settle()
        [error] = page.of("error")
        assert error["phase"] == "open" and "protobuf" in error["message"] and "photo is kept" in error["hint"]
        assert page.state()["objects"][0]["clicks"] == 1
        page.send({**open_message(3), "bundle_url": "missing.msgpack"})
        await page.settle()
        assert "HTTP 404" in page.of("error")[-1]["message"] and page.state()["objects"][0]["clicks"] == 1

    run(scenario())


def test_a_persons_photo_must_have_the_size_its_bundle_declares():
    """A bundle that carries the photo's sha256 but declares another size (crafted, or damaged) is refused:
    the photo is never resized to what a bundle says."""
    import hashlib

    async def scenario():
        page = Page(Discs())
        photo = io.BytesIO()
        Image.new("RGB", (600, 400)).save(photo, "PNG")
        embeddings = {n: np.zeros(s, np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
        bundle = write_bundle(
            embeddings,
            width=60000,
            height=1600,
            model_name="stand-in",
            image_sha256=hashlib.sha256(photo.getvalue()).hexdigest(),
        )
        page.send(
            {
                "type": "open-files",
                "seq": 1,
                "photo": photo.getvalue(),
                "photo_name": "mine.png",
                "bundle": bundle,
                "bundle_name": "mine.png.msgpack",
                "models": {"stand-in": "m/"},
            }
        )
        await page.settle()
        [error] = page.of("error")
        assert "60000×1600" in error["message"] and "600×400" in error["message"] and not page.session.app.ready

    run(scenario())


def test_replay_with_the_baseline_model_rebuilds_the_same_masks(baseline):
    """The same, with a real ONNX model (the built-in baseline) on the synthetic shapes scene."""
    from pyapp import image as images
    from samtab_tools import encode, synthetic

    async def scenario():
        image, objects = synthetic.scene()
        preview = io.BytesIO()
        Image.fromarray(image).save(preview, "PNG")
        runner = OnnxRunner(baseline)
        encoder = encode.Encoder(baseline, encode.read_model_folder(baseline), "CPUExecutionProvider")
        features = encoder.run(images.encoder_input(images.open_photo(preview.getvalue()).rgb))
        files = {
            "photo.png": preview.getvalue(),
            "photo.msgpack": write_bundle(
                features, width=960, height=640, image_sha256="ab" * 32, model_name=runner.model_name
            ),
        }
        page = Page(runner, files)
        page.send(open_message())
        await page.settle()
        described = synthetic.describe(objects)
        for index, item in enumerate(described[:3]):
            if index:
                page.send({"type": "new-object"})
            x, y = item["point"]
            page.click((x + 0.5) * CSS[0] / 960, (y + 0.5) * CSS[1] / 640)
        page.send({"type": "undo"})
        await page.settle()
        again = restarted(page, OnnxRunner(baseline))
        await again.settle()
        assert again.state() == page.state() and len(page.masks()) == 3 and page.masks()[2] is None
        for before, after in zip(page.masks(), again.masks(), strict=True):
            np.testing.assert_array_equal(before, after)

    run(scenario())


class SteepDiscs(Discs):
    """Discs whose logits rise 10 per cell: stable enough for Meta's default stability filter (offset 1.0)."""

    def answer(self, feeds):
        out = super().answer(feeds)
        return {**out, "masks": out["masks"] * 10}


def test_segment_everything_adds_its_masks_as_objects_in_one_undo_step_and_a_restart_rebuilds_them():
    """4 x 4 grid points, each decoded (the stand-in's best, 0.9, passes Meta's 0.8); the masks kept become
    objects "auto 1..n" showing them, one undo step; progress reaches the page; a replay rebuilds the same."""

    async def scenario():
        page = await opened(SteepDiscs())
        page.click(300, 200)
        await page.settle()
        calls = len(page.runner.calls)
        started = len(page.posted)
        page.send({"type": "everything", "points_per_side": 4})
        await page.settle()
        assert len(page.runner.calls) == calls + 16
        # The masks found are shown while the run goes on, before they become objects: a frame of them
        # comes before the run's answer, over the view it started from, with the objects not made yet.
        during = page.posted[
            started : next(i for i, m in enumerate(page.posted) if m["type"] == "applied" and i > started)
        ]
        shown = [m for m in during if m["type"] == "frame"]
        assert shown and [o["name"] for o in shown[0]["state"]["objects"]] == ["Object 1"]
        before = [m for m in page.posted[:started] if m["type"] == "frame"][-1]
        assert not np.array_equal(shown[0]["pixels"], before["pixels"])
        objects = page.session.app.segmenter.objects.items
        names = [obj.name for obj in objects]
        assert names[0] == "Object 1" and len(names) > 10 and names[1:] == [f"auto {i}" for i in range(1, len(names))]
        assert all(mask is not None and mask.any() for mask in page.masks())
        progress = page.of("progress")
        assert progress and progress[-1]["done"] == progress[-1]["total"] == 16
        assert page.log[-1]["type"] == "everything"
        before = page.masks()
        again = restarted(page, SteepDiscs())
        await again.settle()
        assert [o.name for o in again.session.app.segmenter.objects.items] == names
        for a, b in zip(again.masks(), before, strict=True):
            np.testing.assert_array_equal(a, b)
        page.send({"type": "undo"})
        await page.settle()
        assert [obj.name for obj in page.session.app.segmenter.objects.items] == ["Object 1"]
        page.send({"type": "redo"})
        await page.settle()
        assert len(page.session.app.segmenter.objects.items) == len(names)
        page.click(100, 100)  # a click edits the current object, the last automatic one, as any other
        await page.settle()
        assert page.session.app.segmenter.objects.current.prompt.clicks == 2

    run(scenario())


class BatchedSteepDiscs(SteepDiscs):
    """The same answers, for a decoder that takes a batch of prompts in one run (as the SAM2 export does)."""

    prompt_batch = True

    def answer(self, feeds):
        prompts = ("point_coords", "point_labels")
        alone = [
            super(BatchedSteepDiscs, self).answer({**feeds, **{name: feeds[name][i : i + 1] for name in prompts}})
            for i in range(len(feeds["point_coords"]))
        ]
        return {name: np.concatenate([out[name] for out in alone]) for name in alone[0]}


def test_segment_everything_decodes_a_batch_of_points_a_run_when_the_decoder_takes_one():
    """The same objects as one point a run, in an eighth of the runs; the progress says how many a run."""

    async def scenario():
        pages = []
        for runner in (SteepDiscs(), BatchedSteepDiscs()):
            page = await opened(runner)
            before = len(runner.calls)
            page.send({"type": "everything", "points_per_side": 4})
            await page.settle()
            pages.append((page, len(runner.calls) - before))
        (single, single_runs), (batched, batched_runs) = pages
        assert (single_runs, batched_runs) == (16, 16 // EVERYTHING_BATCH)
        assert batched.of("progress")[-1]["per_run"] == EVERYTHING_BATCH and single.of("progress")[-1]["per_run"] == 1
        assert [o.name for o in batched.session.app.segmenter.objects.items] == [
            o.name for o in single.session.app.segmenter.objects.items
        ]
        for a, b in zip(batched.masks(), single.masks(), strict=True):
            np.testing.assert_array_equal(a, b)
        assert batched.of("status")[-1]["text"].endswith("from 16 points (2 decoder runs)")

    run(scenario())


def test_segment_everything_stopped_adds_nothing_and_the_clicks_made_meanwhile_follow():
    async def scenario():
        page = await opened(SteepDiscs(held=True))
        page.runner.release()
        page.send({"type": "everything", "points_per_side": 4})
        for _ in range(3):  # three decodes, then stop
            for _ in range(50):
                await asyncio.sleep(0)
            page.runner.release()
        page.send({"type": "everything-cancel"})
        page.click(300, 200)  # waits for the run to end
        for _ in range(20):
            page.runner.release()
            await asyncio.sleep(0)
        page.runner.held = False
        page.runner.release()
        await page.settle()
        assert len(page.runner.calls) < 16 + 3
        assert [obj.name for obj in page.session.app.segmenter.objects.items] == ["Object 1"]
        assert all(entry["type"] != "everything" for entry in page.log)
        assert "nothing was added" in page.of("status")[-2]["text"] or any(
            "nothing was added" in m["text"] for m in page.of("status")
        )

    run(scenario())


def test_segment_everything_stopped_before_it_starts_adds_nothing():
    """The page's Stop can reach the worker before the run has begun (it waits for earlier decodes): it
    still stops it."""

    async def scenario():
        page = await opened(SteepDiscs())
        page.click(300, 200)
        page.send({"type": "everything", "points_per_side": 4})
        page.send({"type": "everything-cancel"})
        await page.settle()
        assert [obj.name for obj in page.session.app.segmenter.objects.items] == ["Object 1"]
        assert all(entry["type"] != "everything" for entry in page.log)

    run(scenario())


def test_remove_background_is_a_command_a_restart_replays():
    """The subject is an object made by one command (logged like a click): a restarted worker rebuilds it,
    solid, with the same mask; the view the worker shows becomes the cutout."""

    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        page.send({"type": "subject"})
        await page.settle()
        subject = page.session.app.segmenter.objects.current
        assert (subject.name, subject.prompt.solid, page.state()["view"]) == ("Subject", True, "cutout")
        assert page.log[-1]["type"] == "subject" and page.masks()[-1] is not None
        again = restarted(page, Discs())
        await again.settle()
        assert again.state() == page.state()
        for before, after in zip(page.masks(), again.masks(), strict=True):
            np.testing.assert_array_equal(before, after)

    run(scenario())


def test_brush_strokes_are_commands_a_restart_replays_and_bad_ones_are_refused():
    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        page.send(
            {"type": "stroke", "points": [[50, 50], [150, 60]], "radius": 10, "css_width": CSS[0], "css_height": CSS[1]}
        )
        page.send(
            {
                "type": "stroke",
                "points": [[300, 150], [300, 250]],
                "radius": 6,
                "css_width": CSS[0],
                "css_height": CSS[1],
                "add": False,
                "hardness": 0.5,
            }
        )
        page.send({"type": "stroke", "points": [[1, "x"]], "radius": 6, "css_width": CSS[0], "css_height": CSS[1]})
        await page.settle()
        assert [m["type"] for m in page.log] == ["click", "stroke", "stroke"]  # the bad one refused, not logged
        assert any("points are [x, y] pairs" in m.get("message", "") for m in page.of("error"))
        assert len(page.session.app.segmenter.objects.current.current.strokes) == 2
        again = restarted(page, Discs())
        await again.settle()
        for before, after in zip(page.masks(), again.masks(), strict=True):
            np.testing.assert_array_equal(before, after)

    run(scenario())


def test_zoomed_in_every_frame_brings_the_part_shown_drawn_from_the_photos_own_pixels():
    """A viewport (the page zoomed in) is answered at once with its detail, and every frame after it brings the
    detail too (a click, an undo), until the page zooms out; a viewport off the photo draws nothing; a new
    photo starts zoomed out. Not a command: nothing of it is logged or replayed."""

    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        region = {"x0": 100.5, "y0": 80.0, "x1": 400.0, "y1": 300.2}
        page.send({"type": "viewport", "id": 1, **region, "width": 1200, "height": 880})
        [detail] = page.of("detail")
        assert (detail["id"], detail["x0"], detail["y0"], detail["x1"], detail["y1"]) == (1, 100, 80, 400, 301)
        assert (detail["width"], detail["height"]) == (300, 221)  # more screen than pixels: the region's own size
        app = page.session.app
        _, want = app.detail(tuple(region.values()), 1200, 880)
        assert np.array_equal(detail["pixels"], want)
        page.click(350, 250)
        await page.settle()
        frame = page.of("frame")[-1]
        assert frame["mask"]["latency_ms"]["detail"] >= 0 and frame["detail"]["id"] == 1
        _, want = app.detail(tuple(region.values()), 1200, 880)
        assert np.array_equal(frame["detail"]["pixels"], want)  # the new mask, in detail
        page.send({"type": "undo"})
        assert page.of("frame")[-1]["detail"]["id"] == 1
        page.send(
            {"type": "viewport", "id": 2, "x0": -500, "y0": -500, "x1": -10, "y1": -10, "width": 50, "height": 50}
        )
        np.testing.assert_array_equal(page.of("frame")[-1]["pixels"], app.render())  # ...but after a pan, at once
        assert len(page.of("detail")) == 1
        page.send({"type": "undo"})
        assert "detail" not in page.of("frame")[-1]  # off the photo: nothing to draw
        page.send({"type": "viewport", "id": 3})  # zoomed out
        page.send({"type": "redo"})
        assert "detail" not in page.of("frame")[-1]
        page.send({"type": "viewport", "id": 4, **region, "width": 150, "height": 110})
        assert (page.of("detail")[-1]["width"], page.of("detail")[-1]["height"]) == (150, 110)  # fewer: sampled
        page.send(open_message(seq=2))
        await page.settle()
        assert "detail" not in page.of("frame")[-1]  # a new photo shows whole
        page.receive()
        assert all(entry["type"] != "viewport" for entry in page.log)

    run(scenario())


def test_a_photo_to_encode_in_the_tab_is_prepared_and_its_bundle_written_as_the_cli_writes_it(baseline):
    """prepare: the encoder input pyapp.image makes (as tools/encode.py), the photo's size and sha256; the
    photo open is untouched. make-bundle: the bundle write_bundle makes of those outputs (tools/encode.py's
    bytes). A file that is no photo, or outputs of the wrong size, are refused with phase "encode"."""
    import onnxruntime as ort

    from pyapp.image import encoder_input, open_photo

    async def scenario():
        page = await opened(Discs())
        state = page.state()
        photo = photo_files("m", 320, 200, seed=7, name="mine")["mine.png"]
        page.send({"type": "prepare", "seq": 1, "photo": photo, "photo_name": "mine.png"})
        [prepared] = page.of("prepared")
        local = open_photo(photo)
        np.testing.assert_array_equal(prepared["tensor"], encoder_input(local.rgb))
        assert (prepared["width"], prepared["height"], prepared["sha256"]) == (320, 200, local.sha256)
        assert page.state() == state
        session = ort.InferenceSession(str(baseline / "encoder.onnx"), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, {"image": prepared["tensor"]})))
        message = {"seq": 2, "width": 320, "height": 200, "sha256": local.sha256, "model_name": "samtab baseline"}
        embeddings = {name: value.astype(np.float32).tobytes() for name, value in outputs.items()}
        page.send({"type": "make-bundle", "embeddings": embeddings, **message})
        [made] = page.of("bundle-made")
        want = write_bundle(outputs, width=320, height=200, image_sha256=local.sha256, model_name="samtab baseline")
        assert made["seq"] == 2 and bytes(made["data"]) == want
        page.send({"type": "prepare", "seq": 3, "photo": b"not a photo at all", "photo_name": "notes.txt"})
        page.send({"type": "make-bundle", "embeddings": {**embeddings, "image_embed": b"1234"}, **message})
        errors = page.of("error")
        assert [e["phase"] for e in errors] == ["encode", "encode"], errors
        assert "notes.txt" in errors[0]["message"] and "image_embed" in errors[1]["message"]
        assert len(page.of("prepared")) == 1 and len(page.of("bundle-made")) == 1 and page.state() == state

    run(scenario())


def test_a_collection_index_is_checked_and_its_photos_listed_without_touching_the_photo_open(baseline):
    """collection: the index pyapp.collection reads, its photos as listed; a damaged one is refused with
    phase "collection" and a message that says what is wrong; the photo open and its objects stay."""
    import json

    from pyapp import collection

    index = collection.Collection(
        "pets",
        "samtab baseline",
        [collection.Photo("a.jpg", 40, 30, "0" * 64, "a.jpg.msgpack", "a.jpg.preview.jpg")],
        ["cat", "dog"],
    )

    async def scenario():
        page = await opened(Discs())
        page.send({"type": "click", "cmd": 1, "x": 40, "y": 40, "css_width": 100, "css_height": 100})
        await page.settle()
        state = page.state()
        page.send(
            {"type": "collection", "seq": 4, "index": json.dumps(index.document()), "url": "pets/collection.json"}
        )
        [answer] = page.of("collection")
        assert (answer["seq"], answer["name"], answer["model"], answer["classes"]) == (
            4,
            "pets",
            "samtab baseline",
            ["cat", "dog"],
        )
        assert answer["photos"] == index.document()["photos"]
        page.send({"type": "collection", "seq": 5, "index": '{"kind": "samtab-collection", "version": 1}'})
        [error] = page.of("error")
        assert error["phase"] == "collection" and "collection.json's name" in error["message"]
        assert "kept" in error["hint"] and page.state() == state

    run(scenario())


def test_classes_are_given_undone_and_exported_and_a_collection_exports_from_the_objects_kept():
    """classify gives an object a class (one action: undo takes it back), the app's state and exports show it;
    labels: each object's name, class and mask (RLE), as a collection's session keeps them; collection-export:
    the whole collection's COCO and YOLO from those, with nothing decoded."""
    import io
    import json
    import zipfile

    from pyapp import collection

    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        page.send({"type": "new-object"})
        page.click(500, 300)
        await page.settle()
        page.send({"type": "classify", "cmd": 90, "id": 1, "label": " cat "})
        assert [o["label"] for o in page.state()["objects"]] == ["cat", None]
        page.send({"type": "undo"})
        assert [o["label"] for o in page.state()["objects"]] == [None, None]
        page.send({"type": "redo"})
        page.send({"type": "export", "what": "coco"})
        document = json.loads(bytes(page.of("download")[-1]["data"]))
        assert [c["name"] for c in document["categories"]] == ["cat", "Object 2"]
        page.send({"type": "export", "what": "labels"})
        await page.settle()  # (labels wait for a decode under way)
        labels = json.loads(bytes(page.of("download")[-1]["data"]))
        assert [(o["name"], o["class"]) for o in labels] == [("Object 1", "cat"), ("Object 2", None)]
        app = page.session.app
        width, height = app.segmenter.width, app.segmenter.height
        masks = [m for _, m in app._masks(width, height)]
        for entry, mask in zip(labels, masks):
            assert np.array_equal(collection.mask_from_rle(entry["mask"]["counts"], height, width), mask)

        index = collection.Collection(
            "discs",
            "samtab baseline",
            [collection.Photo("photo.png", width, height, None, "p.msgpack", "p.png")],
            ["cat", "dog"],
        ).document()
        session = {
            "kind": "samtab-session",
            "version": 1,
            "collection": "discs",
            "model": "samtab baseline",
            "classes": ["cat", "dog"],
            "photos": {"photo.png": {"status": "in progress", "objects": labels}},
        }
        page.send({"type": "collection-export", "what": "coco", "index": index, "session": session})
        await finished(page)
        download = page.of("download")[-1]
        assert (download["what"], download["name"]) == ("collection-coco", "discs-coco.json")
        whole = json.loads(bytes(download["data"]))
        assert [c["name"] for c in whole["categories"]] == ["cat", "dog", "Object 2"]
        assert [a["category_id"] for a in whole["annotations"]] == [1, 3]
        png = io.BytesIO()
        from PIL import Image

        Image.new("RGB", (width, height)).save(png, "PNG")
        page.send(
            {
                "type": "collection-export",
                "what": "yolo",
                "index": index,
                "session": session,
                "images": {"photo.png": png.getvalue()},
            }
        )
        await finished(page)
        archive = zipfile.ZipFile(io.BytesIO(bytes(page.of("download")[-1]["data"])))
        assert sorted(archive.namelist()) == ["data.yaml", "images/photo.png", "labels/photo.txt"]
        page.send({"type": "collection-export", "what": "coco", "index": index, "session": {**session, "model": "x"}})
        await finished(page)
        [error] = page.of("error")
        assert error["phase"] == "export" and "'x'" in error["message"] and "kept" in error["hint"]

    run(scenario())


def test_a_session_file_is_checked_against_the_collection_and_a_damaged_one_refused_without_harm(baseline):
    """session: a session file read (pyapp.collection) against the open collection, answered with the session
    as read; one of another model, or no JSON at all, refused with phase "collection"; the photo open and its
    objects stay."""
    import json

    from pyapp import collection

    index = collection.Collection(
        "pets", "samtab baseline", [collection.Photo("a.jpg", 4, 3, None, "a.jpg.msgpack", "a.jpg.preview.jpg")]
    ).document()
    mask = np.zeros((3, 4), bool)
    mask[1:, 2:] = True
    work = {
        "status": "done",
        "log": [{"type": "click"}],
        "objects": [collection.Labelled.of("cup", None, mask).document()],
    }
    session = {
        "kind": "samtab-session",
        "version": 1,
        "collection": "pets",
        "model": "samtab baseline",
        "classes": [],
        "current": "a.jpg",
        "photos": {"a.jpg": work},
    }

    async def scenario():
        page = await opened(Discs())
        page.click(300, 200)
        await page.settle()
        state = page.state()
        page.send({"type": "session", "seq": 3, "index": index, "session": json.dumps(session)})
        [answer] = page.of("session")
        assert answer["seq"] == 3 and answer["session"]["photos"]["a.jpg"]["objects"] == work["objects"]
        page.send({"type": "session", "seq": 4, "index": index, "session": json.dumps({**session, "model": "m2"})})
        page.send({"type": "session", "seq": 5, "index": index, "session": "\x00 not json"})
        errors = page.of("error")
        assert [e["phase"] for e in errors] == ["collection", "collection"]
        assert "'m2'" in errors[0]["message"] and "not JSON" in errors[1]["message"]
        assert page.state() == state and len(page.of("session")) == 1

    run(scenario())
