"""pyapp.app: the app's commands and pixels, driven in CPython exactly as the browser worker drives them.

The decoder here is a small numpy stand-in (a disc around the include points, holes at the exclude
points) so that these tests check the app's own logic: mapping, history, views, exports. Real models
are exercised in test_segment.py and the browser tests.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from pyapp import contract
from pyapp.app import App
from pyapp.bundle import BundleError, read_bundle, write_bundle
from pyapp.coords import OutsideImage
from pyapp.frames import fit_view

WIDTH, HEIGHT = 1200, 800  # larger than the view, so view and photo sizes differ
SHA = "12" * 32


class DiscDecoder:
    """Candidates: discs of radius 20, 40, 60 (model pixels /4) around the include points, minus discs
    around exclude points; scores prefer the middle one. With has_mask_input, each candidate starts from the
    fed-back logits instead of nothing (a click refines the mask before it, as SAM's does), so which
    candidate was fed back shows in the next mask."""

    input_names = list(contract.DECODER_INPUTS)

    def __init__(self):
        self.calls = []

    def run(self, feeds):
        self.calls.append(feeds)
        coords, labels = feeds["point_coords"][0] / 4, feeds["point_labels"][0]
        yy, xx = np.mgrid[0:256, 0:256] + 0.5
        has_mask = feeds["has_mask_input"][0]
        start = has_mask * feeds["mask_input"][0, 0] + (1 - has_mask) * np.float32(-10.0)
        masks = []
        for radius in (20, 40, 60):
            logits = start.astype(np.float32)
            for (x, y), label in zip(coords, labels):
                distance = np.hypot(xx - x, yy - y)
                if label == 1:
                    logits = np.maximum(logits, radius - distance)
                elif label == 0:
                    logits = np.minimum(logits, distance - 10)
            masks.append(logits)
        masks = np.stack(masks)[None].astype(np.float32)
        return {"masks": masks, "iou_predictions": np.array([[0.5, 0.9, 0.7]], np.float32)}


@pytest.fixture
def app():
    return opened_app()


def opened_app() -> App:
    """An app with a 1200×800 random photo open (DiscDecoder answers its clicks)."""
    rng = np.random.default_rng(0)
    embeddings = {n: rng.standard_normal(s).astype(np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    bundle = read_bundle(write_bundle(embeddings, width=WIDTH, height=HEIGHT, image_sha256=SHA, model_name="m"))
    photo = Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8))
    app = App()
    app.open(bundle, "m", DiscDecoder.input_names, photo, photo_name="holiday.jpg", image_sha256=SHA)
    return app


def decode_all(app, decoder):
    while (job := app.next_decode()) is not None:
        app.accept(job, decoder.run(job.feeds))


def test_view_size_caps_the_long_edge():
    assert fit_view(1200, 800) == (1024, 683)
    assert fit_view(300, 200) == (300, 200)
    assert fit_view(1200, 800, 600) == (600, 400)


def test_a_click_becomes_a_mask_under_the_cursor(app):
    decoder = DiscDecoder()
    css_w, css_h = 600, 400  # the canvas shown at half the photo's size
    app.click(300, 200, css_w, css_h)  # the middle of the photo
    decode_all(app, decoder)
    full = app.segmenter.mask(app.segmenter.objects.current)
    assert full.shape == (HEIGHT, WIDTH) and full[400, 600]
    assert not full[50, 50]
    assert app.state()["chosen"] == 1 and app.state()["candidates"] == [0.5, 0.9, 0.7]


def test_clicks_off_the_photo_are_refused_and_change_nothing(app):
    with pytest.raises(OutsideImage):
        app.click(601, 10, 600, 400)
    assert app.segmenter.objects.current is None


def test_refinement_feeds_back_the_previous_mask(app):
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    app.click(320, 200, 600, 400, include=False)
    decode_all(app, decoder)
    first, second = decoder.calls
    assert first["has_mask_input"][0] == 0 and second["has_mask_input"][0] == 1
    assert second["point_coords"].shape == (1, 2, 2)


def test_latest_wins_clicks_made_during_a_decode_are_decoded_once(app):
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    job = app.next_decode()
    app.click(310, 200, 600, 400)  # arrives while the first decode runs
    app.click(320, 200, 600, 400)
    app.accept(job, decoder.run(job.feeds))
    decode_all(app, decoder)
    assert len(decoder.calls) == 2  # the first, then the latest: nothing piles up
    assert decoder.calls[-1]["point_coords"].shape == (1, 3, 2)
    assert app.next_decode() is None


def test_undo_restores_the_exact_previous_mask_without_decoding(app):
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    before = app.render().copy()
    app.click(350, 220, 600, 400)
    decode_all(app, decoder)
    assert not np.array_equal(app.render(), before)
    app.undo()
    assert app.next_decode() is None
    np.testing.assert_array_equal(app.render(), before)
    app.redo()
    assert app.state()["prompt"]["points"][-1][0] == pytest.approx(699.5)


def test_box_prompt(app):
    app.box(100, 100, 200, 150, 600, 400)
    job = app.next_decode()
    np.testing.assert_array_equal(job.feeds["point_labels"], [[2, 3]])


def test_candidates_can_be_chosen(app):
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    small = app.segmenter.mask(app.segmenter.objects.current).sum()
    app.choose_candidate(2)
    assert app.segmenter.mask(app.segmenter.objects.current).sum() > small
    with pytest.raises(ValueError):
        app.choose_candidate(3)


def test_the_next_click_refines_the_chosen_candidate_not_the_best_scored(app):
    """Press 3 (the largest candidate, not the best-scored), then click elsewhere: the decoder is fed that
    candidate's low-res logits, so the new mask grows from the chosen mask, not from the best-scored one."""
    decoder = DiscDecoder()
    app.click(150, 200, 600, 400)  # the photo's (299.5, 399.5): low-res cell (63.9, 127.8)
    decode_all(app, decoder)
    obj = app.segmenter.objects.current
    first = obj.current.candidates
    assert first.best == 1
    app.choose_candidate(2)
    app.click(450, 200, 600, 400)  # far enough that the two discs of radius 60 (low-res cells) do not meet
    decode_all(app, decoder)
    fed = decoder.calls[-1]
    assert fed["has_mask_input"][0] == 1
    np.testing.assert_array_equal(fed["mask_input"], first.low_res_logits[2][None, None])
    assert not np.array_equal(first.low_res_logits[2], first.low_res_logits[first.best])
    mask = app.segmenter.mask(obj)
    # 200 photo pixels (43 low-res cells) left of the first click: inside the chosen candidate (radius 60),
    # outside the best-scored (radius 40) and far from the second click.
    assert mask[400, 100]
    assert mask[400, 300] and mask[400, 900]  # both clicks


def test_objects_and_views(app):
    decoder = DiscDecoder()
    app.click(150, 100, 600, 400)
    decode_all(app, decoder)
    second = app.new_object()
    app.click(450, 300, 600, 400)
    decode_all(app, decoder)
    state = app.state()
    assert [o["has_mask"] for o in state["objects"]] == [True, True] and state["current"] == second.id
    overlay = app.render()
    assert overlay.shape == (683, 1024, 4) and (overlay[..., 3] == 255).all()
    # The current object's clicks are drawn where they were made: a green dot at the view's (768, 512).
    assert tuple(overlay[512, 768, :3]) == (34, 197, 94)
    app.new_object()  # an object with no clicks: no markers in the way of the views' pixels
    app.set_view("cutout")
    cut = app.render()
    app.set_view("erase")
    erased = app.render()
    assert ((cut[..., 3] == 255) == (erased[..., 3] == 0)).all()
    assert 0 < (cut[..., 3] == 255).mean() < 0.5
    with pytest.raises(ValueError):
        app.set_view("sepia")
    app.delete(second.id)
    assert len(app.state()["objects"]) == 2


def test_exports_are_at_the_photos_size(app):
    decoder = DiscDecoder()
    with pytest.raises(RuntimeError, match="click on the photo first"):
        app.export_mask()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    app.rename(app.segmenter.objects.current.id, "Blue vase")
    name, mime, data = app.export_mask()
    assert name == "holiday-blue-vase-mask.png" and mime == "image/png"
    mask = Image.open(io.BytesIO(data))
    assert mask.size == (WIDTH, HEIGHT) and mask.mode == "L"
    name, _, data = app.export_cutout()
    cutout = Image.open(io.BytesIO(data))
    assert name == "holiday-blue-vase-cutout.png" and cutout.size == (WIDTH, HEIGHT) and cutout.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(cutout)[..., 3] > 0, np.asarray(mask) > 0)
    name, mime, data = app.export_coco()
    document = json.loads(data)
    assert name == "holiday-coco.json" and mime == "application/json"
    assert document["images"][0]["width"] == WIDTH and document["annotations"][0]["area"] == int(
        (np.asarray(mask) > 0).sum()
    )
    # Polygons (or RLE where a polygon would lose area) that pycocotools reads back as the mask.
    from pycocotools import mask as coco_mask

    segmentation = document["annotations"][0]["segmentation"]
    assert isinstance(segmentation, list)
    read = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(segmentation, HEIGHT, WIDTH))).astype(bool)
    wanted = np.asarray(mask) > 0
    assert (read & wanted).sum() / (read | wanted).sum() >= 0.98
    name, mime, data = app.export_yolo()
    assert name == "holiday-yolo.zip" and mime == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["classes.txt", "labels/holiday.txt"]
    assert archive.read("classes.txt") == b"Blue vase\n"
    assert archive.read("labels/holiday.txt").decode().startswith("0 ")
    # Tolerance 0: the exact polygons (every pixel's edge), as many pixels as the mask; out of range: refused.
    exact = json.loads(app.export_coco(0)[2])["annotations"][0]["segmentation"]
    read = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(exact, HEIGHT, WIDTH))).astype(bool)
    np.testing.assert_array_equal(read, wanted)
    with pytest.raises(ValueError, match="0 to 20 pixels"):
        app.export_coco(-1)
    # A soft edge: the cutout PNG's alpha fades at the edge (values between 0 and 255), the view's too.
    app.set_view("cutout", feather=6)
    soft = np.asarray(Image.open(io.BytesIO(app.export_cutout()[2])))[..., 3]
    assert ((soft > 0) & (soft < 255)).sum() > 0 and (soft == 255).sum() > 0
    shown = app.render()[..., 3]
    assert ((shown > 0) & (shown < 255)).any()
    app.set_view("cutout", feather=0)
    hard = np.asarray(Image.open(io.BytesIO(app.export_cutout()[2])))[..., 3]
    assert set(np.unique(hard).tolist()) <= {0, 255}
    with pytest.raises(ValueError, match="soft edge must be 0 to 50"):
        app.set_view("cutout", feather=51)
    app.set_view("overlay")
    # Every object's mask PNG, zipped; two objects of one name keep both files.
    app.new_object()
    app.click(100, 100, 600, 400)
    decode_all(app, decoder)
    app.rename(app.segmenter.objects.current.id, "Blue vase")
    name, mime, data = app.export_masks()
    files = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert name == "holiday-masks.zip" and mime == "application/zip"
    assert files[0] == "holiday-blue-vase-mask.png" and len(files) == 2 and files[1] != files[0]


def test_a_mismatched_bundle_is_refused_and_the_work_kept(app):
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    before = app.state()
    other = read_bundle(
        write_bundle(
            {n: np.zeros(s, np.float32) for n, s in contract.EMBEDDING_SHAPES.items()},
            width=10,
            height=10,
            image_sha256=SHA,
            model_name="other model",
        )
    )
    with pytest.raises(BundleError, match="other model"):
        app.open(other, "m", DiscDecoder.input_names, Image.new("RGB", (10, 10)))
    with pytest.raises(BundleError, match="different photo"):
        app.open(
            read_bundle(
                write_bundle(
                    {n: np.zeros(s, np.float32) for n, s in contract.EMBEDDING_SHAPES.items()},
                    width=10,
                    height=10,
                    image_sha256=SHA,
                    model_name="m",
                )
            ),
            "m",
            DiscDecoder.input_names,
            Image.new("RGB", (10, 10)),
            image_sha256="34" * 32,
        )
    assert app.state() == before


def test_speculating_records_nothing_and_adopting_is_the_click(app):
    decoder = DiscDecoder()
    job = app.speculate(300, 200, 600, 400)
    app.accept(job, decoder.run(job.feeds))
    assert app.segmenter.objects.items == [] and job.obj is None
    assert app.render(hover=job.step).shape == (683, 1024, 4)
    app.adopt(job.step)  # the click came where the pointer rested: no decode
    obj = app.segmenter.objects.current
    assert obj.current is job.step and obj.prompt.clicks == 1 and app.state()["can_undo"]
    second = app.speculate(320, 210, 600, 400, include=False)
    assert second.feeds["has_mask_input"][0] == 1 and second.step.prompt.points[-1].include is False
    app.click(330, 200, 600, 400)
    assert app.speculate(340, 200, 600, 400) is None  # the click waits for its decode: nothing to refine yet


def other_photo(width: int, height: int):
    rng = np.random.default_rng(1)
    embeddings = {n: rng.standard_normal(s).astype(np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    bundle = read_bundle(write_bundle(embeddings, width=width, height=height, image_sha256="34" * 32, model_name="m"))
    return bundle, Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8))


def test_a_second_photo_renders_as_if_it_were_the_first(app):
    """Found by the browser's demo-switch storm: the tinted frame cached for the first photo was reused
    for the next one (same cache key): the old photo's pixels showed inside the new mask, or, for a
    larger photo, every click on it failed."""
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    app.render()
    for size in ((600, 400), (1200, 800)):
        bundle, photo = other_photo(*size)
        fresh = App()
        for each in (app, fresh):
            each.open(bundle, "m", DiscDecoder.input_names, photo)
            each.click(300, 200, 600, 400)
            decode_all(each, decoder)
        np.testing.assert_array_equal(app.render(), fresh.render())


def test_clicks_made_while_a_decode_runs_are_decoded_together_once(app):
    """Latest wins, and the result does not depend on timing: clicks made while a decode is running join
    one new step, decoded once, refining the mask of the step that was running."""
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    running = app.next_decode()  # the first click's decode starts...
    for x in (310, 320, 330):  # ...and three more clicks arrive meanwhile
        app.click(x, 200, 600, 400)
    app.accept(running, decoder.run(running.feeds))
    obj = app.segmenter.objects.current
    # One new step with the other three, refining the first click's
    assert len(obj.prompt.points) == 4 and obj.current.previous is running.step
    decode_all(app, decoder)
    assert len(decoder.calls) == 2 and decoder.calls[1]["has_mask_input"][0] == 1
    app.undo()
    assert len(obj.prompt.points) == 1  # undo takes back what one decode showed


def test_a_failed_decode_leaves_its_step_to_be_decoded_again(app):
    app.click(300, 200, 600, 400)
    job = app.next_decode()
    assert app.next_decode() is None  # running: not asked for twice
    app.abandon(job)
    assert app.next_decode() is not None


def test_undo_history_is_bounded(app):
    from pyapp.prompt import HISTORY_LIMIT

    decoder = DiscDecoder()
    for index in range(HISTORY_LIMIT + 30):
        app.click(100 + index, 200, 600, 400)
        decode_all(app, decoder)
    obj = app.segmenter.objects.current
    assert len(obj.prompt.points) == HISTORY_LIMIT + 30
    # What undo can reach is all that is kept: the current step and one per action remembered.
    assert len(app.segmenter.objects.steps()) == HISTORY_LIMIT + 1
    for _ in range(HISTORY_LIMIT):
        app.undo()
    assert len(obj.prompt.points) == 30 and obj.current.candidates is not None
    with pytest.raises(IndexError):
        app.undo()


def test_an_object_left_waiting_for_its_decode_is_still_decoded(app):
    """Clicks, then N (or a click on another object's name) before the decode began: the first object's
    last clicks are decoded all the same, after the current object's."""
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    running = app.next_decode()
    app.click(310, 200, 600, 400)  # waits behind the running decode
    app.new_object()
    app.click(100, 100, 600, 400)
    app.accept(running, decoder.run(running.feeds))
    decode_all(app, decoder)
    first, second = app.segmenter.objects.items
    assert first.current.candidates is not None and len(first.prompt.points) == 2
    assert second.current.candidates is not None
    assert len(json.loads(app.export_coco()[2])["annotations"]) == 2


def test_a_replayed_session_rebuilds_the_same_steps_and_masks(app):
    """What a restarted worker does with the page's replay log: the clicks applied at once, each saying
    whether it joined the step before; the steps are then decoded in order, each refining the one before,
    so every mask is what it was."""
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)
    decode_all(app, decoder)
    app.click(330, 200, 600, 400, include=False)
    running = app.next_decode()
    app.click(250, 210, 600, 400)  # these two join one step, made while the decode ran
    app.click(260, 190, 600, 400)
    app.accept(running, decoder.run(running.feeds))
    decode_all(app, decoder)
    before = app.segmenter.mask(app.segmenter.objects.current)

    bundle = app.segmenter.bundle
    replayed = App()
    replayed.open(bundle, "m", DiscDecoder.input_names, Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)))
    for (x, y, include), join in zip(
        [(300, 200, True), (330, 200, False), (250, 210, True), (260, 190, True)], [False, False, False, True]
    ):
        replayed.click(x, y, 600, 400, include, join=join)
    calls = len(decoder.calls)
    decode_all(replayed, decoder)
    assert len(decoder.calls) - calls == 3  # the three steps, in order, fed exactly as the first time
    for first, again in zip(decoder.calls[:3], decoder.calls[calls:]):
        for name in ("point_coords", "point_labels", "mask_input", "has_mask_input"):
            np.testing.assert_array_equal(first[name], again[name])
    obj = replayed.segmenter.objects.current
    np.testing.assert_array_equal(replayed.segmenter.mask(obj), before)
    sizes = [len(obj.prompt.points)]
    while replayed.state()["can_undo"]:
        replayed.undo()
        sizes.append(len(obj.prompt.points))
    assert sizes == [4, 2, 1, 0]  # the same three steps, undone one by one


def test_every_export_says_which_model_made_its_masks(app):
    """The model's name goes with the masks (issue 16): PNG text chunks, COCO's info, the zips' comments."""
    app.click(300, 200, 600, 400)
    decode_all(app, DiscDecoder())
    app.rename(app.segmenter.objects.current.id, "Tasse à café")
    for export in (app.export_mask, app.export_cutout):
        picture = Image.open(io.BytesIO(export()[2]))
        assert picture.text == {"Software": "samtab", "Model": "m", "Title": "Tasse à café"}
    assert json.loads(app.export_coco()[2])["info"]["model"] == "m"
    for export in (app.export_yolo, app.export_masks):
        with zipfile.ZipFile(io.BytesIO(export()[2])) as archive:
            assert archive.comment == b"samtab; model: m"
    with zipfile.ZipFile(io.BytesIO(app.export_masks()[2])) as archive:
        [name] = archive.namelist()
        assert Image.open(io.BytesIO(archive.read(name))).text["Model"] == "m"


def test_brush_strokes_refine_the_model_mask_stay_over_later_clicks_and_undo_one_by_one(app):
    """A stroke adds or removes on top of the model's mask, without a decode; a later click re-decodes the
    model's part and the strokes stay applied; each stroke is one undo step; exports have them; a clear drops
    them with the clicks."""
    decoder = DiscDecoder()
    app.click(300, 200, 600, 400)  # a disc around the photo's (599.5, 399.5)
    decode_all(app, decoder)
    step = app.segmenter.objects.current.current
    model_mask = app.step_mask(step, WIDTH, HEIGHT)
    calls = len(decoder.calls)
    # Add a stroke far from the disc, remove one across its middle (CSS px of a 600 x 400 element).
    app.stroke([(50, 50), (150, 60)], 10, 600, 400)
    app.stroke([(300, 150), (300, 250)], 6, 600, 400, add=False, hardness=0.5)
    assert app.next_decode() is None and len(decoder.calls) == calls  # no decode
    mask = app.step_mask(app.segmenter.objects.current.current, WIDTH, HEIGHT)
    assert mask[100:120, 100:300].any() and not model_mask[100:120, 100:300].any()  # added
    assert model_mask[399, 599] and not mask[399, 599]  # removed
    assert np.array_equal(mask, np.asarray(Image.open(io.BytesIO(app.export_mask()[2]))) > 0)
    view = app.step_mask(app.segmenter.objects.current.current, *app.view_size)  # the view has them too
    assert view[88:98, 90:250].all()  # (the photo's 1200 x 800 at 1024 x 683)
    # A click re-decodes the model's part; the strokes stay.
    app.click(320, 210, 600, 400)
    decode_all(app, decoder)
    after = app.step_mask(app.segmenter.objects.current.current, WIDTH, HEIGHT)
    assert after[100:120, 100:300].any() and not after[399, 599]
    assert len(app.segmenter.objects.current.current.strokes) == 2
    # Undo: the click, then each stroke.
    app.undo()
    assert np.array_equal(app.step_mask(app.segmenter.objects.current.current, WIDTH, HEIGHT), mask)
    app.undo()
    app.undo()
    assert np.array_equal(app.step_mask(app.segmenter.objects.current.current, WIDTH, HEIGHT), model_mask)
    app.redo()
    assert len(app.segmenter.objects.current.current.strokes) == 1
    app.clear()
    assert app.segmenter.objects.current.current.strokes == ()


def test_a_stroke_needs_an_object_with_a_click(app):
    with pytest.raises(IndexError):
        app.stroke([(10, 10)], 5, 600, 400)
