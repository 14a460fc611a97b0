"""The app as a person uses it, in Debian's Chromium with real mouse events.

Most tests use the synthetic "shapes" demo (tools/synthetic.py: known objects) with the built-in baseline
model; one checks the random-init SAM2.1 decoder in the browser against tools/segment.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from samtab_tools import synthetic
from samtab_tools.browser import APP_EVENT_RECORDER, RequestLog, python_worker, recorded_events
from samtab_tools.browser import AppPage as App

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120_000


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def truth():
    """The shapes demo's objects: its photo is tools/synthetic.py's default scene."""
    image, objects = synthetic.scene()
    meta = json.loads((ROOT / "site" / "demos" / "shapes" / "truth.json").read_text())
    return image, objects, meta


@pytest.fixture
def app(page):
    page.set_default_timeout(TIMEOUT)
    return App(page)


def shapes_url(site, extra: str = "") -> str:
    return f"{site.url}?demo=shapes{extra}"


def test_gallery_shows_every_demo_with_credit(app, site):
    """One card per photo (six), whatever the number of models the site has."""
    app.open(shapes_url(site))
    items = app.page.locator("#gallery li")
    assert items.count() == 6
    text = app.page.inner_text("#gallery")
    for words in ("Shapes", "12 megapixels", "Coffee", "Chelsea", "Astronaut", "scikit-image", "CC0", "Public domain"):
        assert words in text
    assert app.page.locator("#gallery button[aria-current=true]").get_attribute("data-slug") == "shapes"


def test_switching_the_model_keeps_the_objects_and_decodes_their_clicks_again(app, site, truth):
    """The model switch lists the photo's models; another model opens the same photo with its own bundle and
    decoder and applies the clicks again (the objects stay, their masks are that model's); the gallery's
    cards then open photos with it; ?demo=<slug> still opens a photo with its model."""
    image, objects, _ = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    options = app.page.eval_on_selector_all("#model-switch option", "options => options.map((o) => o.textContent)")
    assert options == ["samtab baseline (classical, not SAM2)", "SAM2.1 tiny (random init, seed 0)"]
    app.click(*synthetic.interior_point(objects[0]["mask"]), (width, height))
    app.page.keyboard.press("n")
    app.click(*synthetic.interior_point(objects[1]["mask"]), (width, height))
    before = [row["name"] for row in app.ui()["objects"]]
    opened, masks = app.count("opened"), app.count("mask")
    app.page.select_option("#model-switch", "shapes-sam2.1-tiny-random")
    assert app.wait_for("opened", opened)["model"] == "SAM2.1 tiny (random init, seed 0)"
    app.page.wait_for_function("document.getElementById('status').textContent.startsWith('Model: SAM2.1 tiny')")
    app.wait_until_ready()
    assert [row["name"] for row in app.ui()["objects"]] == before
    assert [row["clicks"] for row in app.ui()["objects"]] == ["1 click", "1 click"]
    assert app.count("mask") > masks  # decoded again, by SAM2
    assert app.page.locator("#gallery button[aria-current=true]").get_attribute("data-photo") == "shapes"
    # The gallery's cards now open their photo with SAM2.
    opened = app.count("opened")
    app.page.click("#gallery button[data-photo=coffee]")
    assert app.wait_for("opened", opened)["slug"] == "coffee-sam2.1-tiny-random"
    assert app.page.input_value("#model-switch") == "coffee-sam2.1-tiny-random"


def test_the_photo_is_painted_before_python_is_ready_and_early_clicks_are_kept(app, site, truth):
    image, objects, meta = truth
    height, width = image.shape[:2]
    app.page.add_init_script(APP_EVENT_RECORDER)
    app.page.goto(shapes_url(site))
    app.page.wait_for_function("window.__samtab_events.some(e => e.name == 'photo')", timeout=TIMEOUT)
    painted = recorded_events(app.page, "photo")[0]["detail"]["t_ms"]
    assert not recorded_events(app.page, "python")  # the photo is up, Python is not
    target = meta["objects"][0]
    app.page.mouse.click(*app.canvas_point(*target["point"], width, height))  # clicked while loading
    detail = app.wait_for("mask")
    assert painted < recorded_events(app.page, "python")[0]["detail"]["t_ms"]
    assert detail["clicks"] == 1 and detail["object"] == 1
    assert iou(app.mask(), objects[0]["mask"]) >= 0.95


def test_one_click_inside_each_object_selects_it(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    for index, (target, known) in enumerate(zip(meta["objects"], objects)):
        if index:
            app.page.keyboard.press("n")  # a new object for each shape
        detail = app.click(*target["point"], size)
        assert set(detail) >= {"object", "clicks", "mask_index", "iou", "area_px", "latency_ms"}
        assert set(detail["latency_ms"]) >= {"total", "decode", "python", "paint"}
        score = iou(app.mask(), known["mask"])
        assert score >= 0.95, (known["name"], score)
        assert abs(detail["area_px"] - known["mask"].sum()) <= 0.05 * known["mask"].sum()


def test_exclude_click_and_undo_restore_exactly(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    first, second = meta["objects"][0], meta["objects"][1]
    # A box around two shapes selects both; an exclude click on one removes it.
    x0 = min(first["box"][0], second["box"][0]) - 4
    y0 = min(first["box"][1], second["box"][1]) - 4
    x1 = max(first["box"][0] + first["box"][2], second["box"][0] + second["box"][2]) + 4
    y1 = max(first["box"][1] + first["box"][3], second["box"][1] + second["box"][3]) + 4
    app.drag((x0, y0), (min(x1, size[0] - 1), min(y1, size[1] - 1)), size)
    before_data, _ = app.export("mask")
    before = np.asarray(Image.open(io.BytesIO(before_data))) > 127
    app.click(*second["point"], size, button="right")
    after = app.mask()
    assert after[objects[1]["mask"]].mean() < 0.05  # the excluded shape is gone
    assert after.sum() < before.sum()
    app.page.keyboard.press("Control+z")
    app.page.wait_for_function("!document.querySelector('#redo').disabled")
    undone, _ = app.export("mask")
    assert undone == before_data  # exactly the previous mask, byte for byte


def test_box_prompt(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    target = meta["objects"][2]
    x, y, w, h = target["box"]
    detail = app.drag((x - 3, y - 3), (x + w + 3, y + h + 3), size)
    assert detail["clicks"] == 2  # a box is two corner prompts
    assert iou(app.mask(), objects[2]["mask"]) >= 0.9


def test_views_and_exports_at_the_original_size(app, site, truth):
    from pycocotools import mask as coco_mask

    image, objects, meta = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    app.click(*meta["objects"][0]["point"], (width, height))
    app.page.keyboard.press("n")
    app.click(*meta["objects"][1]["point"], (width, height))
    # What each view paints (the view is the photo's size here): the cutout keeps the objects' pixels and
    # nothing else, the erase view everything but them, the overlay all of it, tinted where they are.
    both = objects[0]["mask"] | objects[1]["mask"]
    overlay = app.canvas_pixels()
    for view in ("cutout", "erase", "overlay"):
        app.page.click(f"#view-{view}")
        app.page.wait_for_function(f"document.getElementById('view-{view}').getAttribute('aria-pressed') === 'true'")
        app.page.wait_for_timeout(300)
        pixels = app.canvas_pixels()
        shown = pixels[..., 3] > 0
        if view == "cutout":
            assert iou(shown, both) >= 0.97, iou(shown, both)
            # the photo's own pixels (but where the current object's clicks are marked)
            assert (pixels[..., :3][shown & both] == image[shown & both]).all(axis=-1).mean() > 0.99
        elif view == "erase":
            assert iou(~shown, both) >= 0.97, iou(~shown, both)
        else:
            assert shown.all() and (pixels == overlay).all()
            tinted = (pixels[..., :3] != image).any(axis=-1)
            assert iou(tinted, both) >= 0.95
    data, name = app.export("mask")
    assert name == "shapes-object-2-mask.png"
    assert Image.open(io.BytesIO(data)).size == (width, height)
    data, name = app.export("cutout")
    cutout = Image.open(io.BytesIO(data))
    assert name == "shapes-object-2-cutout.png" and cutout.mode == "RGBA" and cutout.size == (width, height)
    alpha = np.asarray(cutout)[..., 3] > 0
    assert iou(alpha, objects[1]["mask"]) >= 0.95
    np.testing.assert_array_equal(np.asarray(cutout)[..., :3][alpha], image[alpha])  # the photo's own pixels
    data, name = app.export("coco")
    document = json.loads(data)
    assert name == "shapes-coco.json" and len(document["annotations"]) == 2
    for annotation, known in zip(document["annotations"], objects[:2]):
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):  # polygons, united as COCO readers do
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        else:
            rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
        decoded = coco_mask.decode(rle).astype(bool)
        assert decoded.shape == (height, width) and iou(decoded, known["mask"]) >= 0.95
    # YOLO: a zip of the labels (a line per object, normalised polygon) and the class names.
    data, name = app.export("yolo")
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert name == "shapes-yolo.zip" and sorted(archive.namelist()) == ["classes.txt", "labels/shapes.txt"]
    classes = archive.read("classes.txt").decode().splitlines()
    lines = archive.read("labels/shapes.txt").decode().splitlines()
    assert len(lines) == 2 and len(classes) == 2
    for line, known in zip(lines, objects[:2]):
        fields = line.split()
        points = np.array([float(v) for v in fields[1:]]).reshape(-1, 2) * [width, height]
        filled = coco_mask.decode(coco_mask.frPyObjects([points.ravel().tolist()], height, width)[0]).astype(bool)
        assert iou(filled, known["mask"]) >= 0.95
    # Every object's mask in a zip; the polygon tolerance set to 0 gives exact polygons (pixel for pixel).
    data, name = app.export("masks")
    assert name == "shapes-masks.zip" and len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 2
    app.page.fill("#polygon-tolerance", "0")
    data, _ = app.export("coco")
    for annotation in json.loads(data)["annotations"]:
        exact = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(annotation["segmentation"], height, width)))
        assert int(exact.sum()) == annotation["area"]
    # A soft edge (the slider beside the opacity): the cutout PNG's alpha fades at the object's edge.
    app.page.eval_on_selector("#feather", "(e) => { e.value = '8'; e.dispatchEvent(new Event('input')); }")
    app.wait_until_ready()
    data, _ = app.export("cutout")
    alpha = np.asarray(Image.open(io.BytesIO(data)))[..., 3]
    assert ((alpha > 0) & (alpha < 255)).sum() > 100 and iou(alpha >= 128, objects[1]["mask"]) >= 0.95


def changed_canvas(app, before: np.ndarray, timeout_s: float = 30) -> np.ndarray:
    """The canvas once it shows something other than `before` (hover frames send no event)."""
    for _ in range(int(timeout_s * 10)):
        pixels = app.canvas_pixels()
        if (pixels != before).any():
            return pixels
        app.page.wait_for_timeout(100)
    raise AssertionError("the canvas did not change")


def test_hovering_before_the_first_click_previews_what_it_would_select(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    plain = app.canvas_pixels()
    app.page.mouse.move(*app.canvas_point(*meta["objects"][0]["point"], *size))
    hovered = changed_canvas(app, plain)
    tinted = (hovered != plain).any(axis=-1)
    assert iou(tinted, objects[0]["mask"]) >= 0.9, iou(tinted, objects[0]["mask"])
    assert app.count("mask") == 0 and app.ui()["objects"] == []  # a preview records nothing
    app.page.mouse.move(5, 5)  # off the canvas: the preview goes
    assert (changed_canvas(app, hovered) == plain).all()
    app.click(*meta["objects"][1]["point"], size)
    clicked = app.canvas_pixels()
    app.page.mouse.move(*app.canvas_point(*meta["objects"][0]["point"], *size))
    app.page.wait_for_timeout(1000)
    assert (app.canvas_pixels() == clicked).all()  # after the first click, hovering previews nothing


@pytest.mark.parametrize("scale, viewport", [(2, {"width": 900, "height": 700}), (1, {"width": 700, "height": 600})])
def test_mask_lands_under_the_cursor_at_any_css_scale_and_pixel_ratio(browser, site, truth, scale, viewport):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(device_scale_factor=scale, viewport=viewport, accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(shapes_url(site))
        page.locator("#canvas").scroll_into_view_if_needed()
        box = page.locator("#canvas").bounding_box()
        assert abs(box["width"] - size[0]) > 50  # the canvas really is scaled by CSS
        assert page.evaluate("devicePixelRatio") == scale
        target = meta["objects"][3]
        app.click(*target["point"], size)
        assert iou(app.mask(), objects[3]["mask"]) >= 0.95
    finally:
        context.close()


def test_on_a_phone_the_whole_photo_is_in_the_first_screen_and_a_tap_makes_a_mask(browser, site, truth):
    """390 x 844 CSS px, pixel ratio 2, touch (issue 16): the photo comes first, full width, wholly on the
    first screen; the demos are a strip below the controls; nothing is wider than the screen; a tap selects."""
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(shapes_url(site))
        assert page.evaluate("[innerWidth, document.documentElement.scrollWidth]") == [390, 390]
        box = page.locator("#canvas").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["width"] >= 360
        gallery = page.locator("#gallery").bounding_box()
        assert gallery["y"] > box["y"] + box["height"]  # below the photo
        cards = page.locator("#gallery li").evaluate_all("items => items.map((li) => li.getBoundingClientRect().top)")
        assert len(set(cards)) == 1  # one row: a strip
        assert not page.is_visible(".shortcuts")
        x, y = meta["objects"][3]["point"]
        before = app.count("mask")
        page.touchscreen.tap(
            box["x"] + (x + 0.5) * box["width"] / size[0], box["y"] + (y + 0.5) * box["height"] / size[1]
        )
        app.wait_for("mask", before)
        assert iou(app.mask(), objects[3]["mask"]) >= 0.95
        assert page.inner_text("#status-detail").startswith("A tap adds, a long press removes")
    finally:
        context.close()


def test_sam2_decoder_in_the_browser_matches_the_headless_pipeline(app, site, tmp_path, truth):
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    slug = "shapes-sam2.1-tiny-random"
    app.open(f"{site.url}?demo={slug}")
    opened = recorded_events(app.page, "opened")[0]["detail"]
    assert opened["model"] == "SAM2.1 tiny (random init, seed 0)"
    # Its session was made, and run once, while Python booted (the page sent the decoder as it arrived).
    assert opened["timings"]["decoder_made_ahead"] == 1
    clicks = [
        (meta["objects"][0]["point"], "left"),
        (meta["objects"][1]["point"], "right"),
        ((size[0] * 0.7, size[1] * 0.3), "left"),
    ]
    for point, button in clicks:
        detail = app.click(*point, size, button=button)
    browser_mask = app.mask()
    out = tmp_path / "mask.png"
    args = [
        sys.executable,
        str(ROOT / "tools" / "segment.py"),
        "--demo",
        str(ROOT / "site" / "demos" / slug),
        "--model",
        str(ROOT / "models" / "sam2.1-tiny-random"),
        "--out",
        str(out),
    ]
    for x, y, include in detail["prompt"]["points"]:
        args += ["--point", f"{x},{y},{include}"]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    headless = np.asarray(Image.open(out)) > 127
    summary = json.loads(result.stdout)
    assert summary["mask_index"] == detail["mask_index"]
    foreground = iou(browser_mask, headless)
    background = iou(~browser_mask, ~headless)
    assert min(foreground, background) >= 0.999, (foreground, background)


def decoded_ahead(app, where: str) -> None:
    """Wait until the worker has decoded a click ahead of it."""
    for _ in range(300):
        if app.stats()["speculation"] == "decoded":
            return
        app.page.wait_for_timeout(50)
    raise AssertionError(f"nothing was decoded {where}: {app.stats_now()}")


def rest(app, point, size) -> None:
    """Move the pointer to `point` and keep it there until the worker has decoded a click there."""
    app.page.mouse.move(*app.canvas_point(*point, *size))
    decoded_ahead(app, "where the pointer rested")


def same_as_decoded_at_the_click(app, point, size, answered: dict) -> None:
    """`answered`, a click at `point` that took a decode made ahead of it, is undone and made again with the
    hover preview off (decoded when it is made): the same mask, to the pixel."""
    pixels, mask = app.canvas_pixels(), app.mask()
    app.page.keyboard.press("Control+z")
    app.page.uncheck("#hover-preview")
    fresh = app.click(*point, size)
    assert not fresh.get("speculated") and fresh["latency_ms"]["decode"] > 0
    for key in ("prompt", "mask_index", "iou", "area_px"):
        assert fresh[key] == answered[key], key
    np.testing.assert_array_equal(app.canvas_pixels(), pixels)
    np.testing.assert_array_equal(app.mask(), mask)
    app.page.check("#hover-preview")


def test_a_click_where_the_pointer_rested_paints_the_mask_decoded_before_it(app, site, truth):
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(f"{site.url}?demo=shapes-sam2.1-tiny-random")
    app.click(*meta["objects"][0]["point"], size)
    target = (size[0] * 0.7, size[1] * 0.3)
    rest(app, target, size)
    assert app.count("mask") == 1  # after the first click, nothing shows before the click
    speculated = app.click(*target, size)
    assert speculated.get("speculated") and speculated["latency_ms"]["decode"] == 0
    assert speculated["clicks"] == 2 and speculated["refined"]
    same_as_decoded_at_the_click(app, target, size, speculated)
    # A click elsewhere than where the pointer rested is decoded as made (from the press, or the release).
    rested = (size[0] * 0.3, size[1] * 0.7)
    rest(app, rested, size)
    elsewhere = app.click(size[0] * 0.5, size[1] * 0.5, size)
    assert elsewhere["latency_ms"]["decode"] > 0 and elsewhere["clicks"] == 3
    x, y, _ = elsewhere["prompt"]["points"][-1]
    assert abs(x - size[0] * 0.5) <= 2 and abs(y - size[1] * 0.5) <= 2, elsewhere["prompt"]


def test_a_click_is_decoded_from_the_press_and_a_drag_drops_that_decode(app, site, truth):
    """A click's decode starts when the button goes down (hover preview on): held until that decode is done,
    the release paints it at once, the same mask as the click decoded at the release; a press that drags is a
    box."""
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(f"{site.url}?demo=shapes-sam2.1-tiny-random")
    app.click(*meta["objects"][0]["point"], size)
    target = (size[0] * 0.7, size[1] * 0.3)
    mouse = app.page.mouse
    mouse.move(*app.canvas_point(*target, *size))
    mouse.down()  # at once: no rest before it
    decoded_ahead(app, "from the press")
    assert app.count("mask") == 1  # nothing shows while the button is down
    mouse.up()
    pressed = app.wait_for("mask", 1)
    assert pressed.get("speculated") and pressed["latency_ms"]["decode"] == 0 and pressed["clicks"] == 2
    same_as_decoded_at_the_click(app, target, size, pressed)  # (hover preview off: nothing decoded at a press)
    # A press that becomes a drag: the box's mask, not the pressed point's.
    app.page.keyboard.press("n")
    boxed = app.drag((size[0] * 0.2, size[1] * 0.2), (size[0] * 0.6, size[1] * 0.6), size)
    assert boxed["prompt"]["box"] is not None and boxed["prompt"]["points"] == [] and not boxed.get("speculated")


def test_a_fingers_tap_and_a_pens_click_are_decoded_from_the_press_too(browser, site, truth):
    """A finger's and a pen's press start the click's decode as a mouse button's does (hover preview on): held
    until the worker has decoded it, nothing shows; the lift paints it at once, the same mask as the click
    decoded when made. A pen held over the screen rests as a mouse pointer does. A long press (an exclude) is
    decoded when it is made."""
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(viewport={"width": 1280, "height": 900}, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(f"{site.url}?demo=shapes-sam2.1-tiny-random")
        cdp = context.new_cdp_session(page)
        app.click(*meta["objects"][0]["point"], size)
        # A finger, pressed (no rest: a finger has none) and held until the worker has decoded the tap.
        target = (size[0] * 0.7, size[1] * 0.3)
        x, y = app.canvas_point(*target, *size)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        decoded_ahead(app, "from a finger's press")
        assert app.count("mask") == 1  # nothing shows while the finger is down
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        tapped = app.wait_for("mask", 1)
        assert tapped.get("speculated") and tapped["latency_ms"]["decode"] == 0 and tapped["clicks"] == 2
        assert tapped["prompt"]["points"][-1][2] == 1  # a tap includes
        same_as_decoded_at_the_click(app, target, size, tapped)
        # A pen's tip, the same.
        target = (size[0] * 0.3, size[1] * 0.7)
        x, y = app.canvas_point(*target, *size)
        pen = {"x": x, "y": y, "button": "left", "clickCount": 1, "pointerType": "pen"}
        cdp.send("Input.dispatchMouseEvent", {"type": "mousePressed", **pen})
        decoded_ahead(app, "from a pen's press")
        before = app.count("mask")
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseReleased", **pen})
        penned = app.wait_for("mask", before)
        assert penned.get("speculated") and penned["latency_ms"]["decode"] == 0 and penned["clicks"] == 3
        # A pen held over the screen rests as a mouse pointer does: the click there is decoded before the press.
        x, y = app.canvas_point(size[0] * 0.6, size[1] * 0.6, *size)
        pen = {"x": x, "y": y, "pointerType": "pen"}
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", **pen})
        decoded_ahead(app, "where a pen rested")
        before = app.count("mask")
        for kind in ("mousePressed", "mouseReleased"):
            cdp.send("Input.dispatchMouseEvent", {"type": kind, **pen, "button": "left", "clickCount": 1})
        rested = app.wait_for("mask", before)
        assert rested.get("speculated") and rested["latency_ms"]["decode"] == 0 and rested["clicks"] == 4
        # A long press excludes: not the tap decoded from its press, but its own decode.
        target = (size[0] * 0.5, size[1] * 0.5)
        x, y = app.canvas_point(*target, *size)
        before = app.count("mask")
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        held = app.wait_for("mask", before)  # at 550 ms, the finger still down
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert not held.get("speculated") and held["latency_ms"]["decode"] > 0 and held["clicks"] == 5
        assert held["prompt"]["points"][-1][2] == 0
    finally:
        context.close()


def test_a_mismatched_bundle_is_refused_and_the_work_kept(app, site, truth, tmp_path):
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    app.click(*meta["objects"][0]["point"], size)
    before = app.mask()
    demos = ROOT / "site" / "demos"
    photo = next((ROOT / ".cache" / "demo-sources").glob("shapes.png"))
    wrong_photo_bundle = next((demos / "chelsea").glob("*.msgpack"))
    app.page.set_input_files("#file-input", [str(photo), str(wrong_photo_bundle)])
    error = app.wait_for("error")
    assert "different photo" in error["message"] and not error["fatal"]
    assert "kept" in error["hint"]
    assert app.page.evaluate("document.body.dataset.state") == "error"
    assert app.page.locator("#object-list li").count() == 1
    np.testing.assert_array_equal(app.mask(), before)  # the photo and its object are still there
    other_model_bundle = next((demos / "shapes-sam2.1-tiny-random").glob("*.msgpack"))
    # The right photo, but its bundle by another model than the one... is accepted: the site has that
    # model. A bundle naming a model the site lacks is refused:
    fake = tmp_path / "shapes.png.msgpack"
    from pyapp.bundle import read_bundle, write_bundle

    real = read_bundle(other_model_bundle.read_bytes())
    fake.write_bytes(
        write_bundle(
            real.embeddings(),
            width=real.width,
            height=real.height,
            image_sha256=real.image_sha256,
            model_name="SAM2.1 large (not on this site)",
        )
    )
    app.page.set_input_files("#file-input", [str(photo), str(fake)])
    error = app.wait_for("error", 1)
    assert "SAM2.1 large (not on this site)" in error["message"] and "does not have" in error["message"]
    np.testing.assert_array_equal(app.mask(), before)


def test_renaming_another_object_keeps_what_is_typed_while_frames_arrive(app, site, truth):
    """Focusing another object's name selects it (a frame follows, and more while a decode runs): the field
    the person types in stays theirs, the list is updated in place, not rebuilt under the cursor."""
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    app.click(*meta["objects"][0]["point"], size)
    app.page.keyboard.press("n")
    app.click(*meta["objects"][1]["point"], size)
    first = app.page.locator("#object-list li[data-id='1'] input")
    first.click()  # object 1 was not current: this selects it, and its frame arrives while typing
    app.page.wait_for_function("document.querySelector('#object-list li[data-id=\"1\"]').ariaCurrent === 'true'")
    app.page.keyboard.press("Control+a")  # in the field: its text, not a shortcut
    first.press_sequentially("Left mug", delay=15)
    first.press("Enter")
    app.page.wait_for_function("document.querySelector('#object-list li[data-id=\"1\"] input').value === 'Left mug'")
    app.wait_until_ready()
    objects = app.ui()["objects"]
    assert objects[0]["name"] == "Left mug" and objects[0]["selected"], objects
    assert objects[1]["name"] == "Object 2" and not objects[1]["selected"]
    assert app.page.evaluate("document.activeElement.tagName") != "INPUT"  # Enter finished the edit


def test_own_photo_and_bundle_open_in_the_tab(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(f"{site.url}?demo=coffee")
    photo = ROOT / ".cache" / "demo-sources" / "shapes.png"
    bundle = next((ROOT / "site" / "demos" / "shapes").glob("*.msgpack"))
    before = app.count("opened")
    app.page.set_input_files("#file-input", [str(photo), str(bundle)])
    app.wait_for("opened", before)
    app.click(*meta["objects"][0]["point"], size)
    assert iou(app.mask(), objects[0]["mask"]) >= 0.95


def test_a_file_too_large_to_be_a_bundle_is_refused_before_it_is_read(app, site, truth, tmp_path):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    app.click(*meta["objects"][0]["point"], size)
    bundle = tmp_path / "huge.png.msgpack"
    with bundle.open("wb") as f:  # 21 MiB: past what any bundle can be
        f.truncate(21 * 2**20)
    photo = ROOT / "site" / "demos" / "shapes" / "shapes.png.preview.png"
    app.page.set_input_files("#file-input", [str(photo), str(bundle)])
    error = app.wait_for("error")
    assert (
        error["message"]
        == "huge.png.msgpack is 21.0 MB: a bundle is at most 20.0 MB, so this is not one tools/encode.py made."
        and "kept" in error["hint"]
    )
    assert app.stats()["page"]["log"] == 1 and app.ui()["objects"][0]["clicks"] == "1 click"  # the work is kept


def test_no_request_leaves_the_origin_in_a_whole_session(browser, site, truth, figures):
    image, _, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(accept_downloads=True)
    log = RequestLog()
    context.on("request", log.record)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(shapes_url(site))  # boot, the gallery, a demo
        for index in range(20):  # 20 clicks over the five objects, each a new object now and then
            target = meta["objects"][index % len(meta["objects"])]
            if index % 4 == 0 and index:
                page.keyboard.press("n")
            app.click(target["point"][0] + index % 3, target["point"][1], size, "left" if index % 5 else "right")
        for view in ("cutout", "erase", "overlay"):
            page.click(f"#view-{view}")
        for what in ("mask", "cutout", "coco"):
            app.export(what)
        page.click("#gallery button[data-slug=coffee]")
        app.wait_for("opened", 1)
    finally:
        context.close()
    foreign = log.foreign(site.origin)
    figures(f"whole session: {len(log.urls)} requests, {len(foreign)} off the origin {site.origin}")
    assert foreign == []
    assert len(log.urls) > 40  # the page, its scripts, Python's packages, models, bundles, previews
    assert any("decoder.onnx" in url for url in log.urls) and any(".msgpack" in url for url in log.urls)


def test_works_offline_after_the_first_visit(browser, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(accept_downloads=True)  # service workers allowed here
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(shapes_url(site))
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        kept = page.evaluate("""() => new Promise((resolve) => navigator.serviceWorker.addEventListener(
            "message", (e) => e.data?.type === "kept" && e.data.done && resolve(true)))""")
        assert kept
        context.set_offline(True)
        page.reload()
        app.wait_for("opened")
        app.click(*meta["objects"][0]["point"], size)
        assert iou(app.mask(), objects[0]["mask"]) >= 0.95
    finally:
        context.close()


def test_a_dead_worker_is_restarted_and_the_clicks_are_kept(app, site, truth):
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    app.open(shapes_url(site))
    app.click(*meta["objects"][0]["point"], size)
    try:
        python_worker(app.page).evaluate("close()")  # the worker dies without a word
    except Exception:  # noqa: BLE001 - the evaluation dies with it
        pass
    before = app.count("opened")
    app.page.mouse.click(*app.canvas_point(*meta["objects"][2]["point"], *size), button="right")  # while dead
    app.wait_for("opened", before)
    app.wait_until_ready()
    detail = recorded_events(app.page, "mask")[-1]["detail"]
    errors = recorded_events(app.page, "error")
    assert errors and "restarting" in errors[0]["detail"]["message"] and not errors[0]["detail"]["fatal"]
    assert detail["clicks"] == 2  # the click before the crash and the one made while it was down
    assert [p[2] for p in detail["prompt"]["points"]] == [1, 0]
    assert iou(app.mask(), objects[0]["mask"]) >= 0.95
    # The first worker was sent the decoder while Python booted; the new one gets it with the photo.
    made_ahead = [e["detail"]["timings"]["decoder_made_ahead"] for e in recorded_events(app.page, "opened")]
    assert made_ahead == [1, 0]


def test_segment_everything_makes_an_object_of_each_thing_and_one_undo_takes_them_back(app, site, truth):
    """The Everything button (key A): a progress line while the worker decodes a 16 x 16 grid, then one
    object per mask kept, named auto 1..n; the shapes scene's objects are among them (the baseline scores its
    thin ring under Meta's 0.8: four of five); one undo removes them all; Stop adds nothing."""
    from pycocotools import mask as coco_mask

    image, objects, _ = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    app.page.wait_for_selector("#everything:not([disabled])")  # once the photo's controls have come
    photo = app.canvas_pixels()
    app.page.keyboard.press("a")
    app.page.wait_for_function("document.getElementById('status').textContent.startsWith('Segmenting everything')")
    assert app.page.inner_text("#everything") == "Stop" and app.page.is_visible("#progress")
    # The masks show as they are found, while the run goes on (the shapes take ~7 s here): the canvas changes
    # while the objects list is still empty (a frame paints the canvas and the list together).
    shown_during_the_run = False
    while app.page.inner_text("#everything") == "Stop" and not shown_during_the_run:
        pixels = app.canvas_pixels()
        shown_during_the_run = not np.array_equal(pixels, photo) and app.ui()["objects"] == []
        app.page.wait_for_timeout(200)
    assert shown_during_the_run
    app.page.wait_for_function("document.getElementById('status').textContent.startsWith('Segment everything:')")
    app.wait_until_ready()
    names = [row["name"] for row in app.ui()["objects"]]
    assert len(names) >= 4 and names == [f"auto {i}" for i in range(1, len(names) + 1)]
    assert app.page.inner_text("#everything") == "Everything" and not app.page.is_visible("#progress")
    document = json.loads(app.export("coco")[0])
    masks = []
    for annotation in document["annotations"]:
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        else:
            rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
        masks.append(coco_mask.decode(rle).astype(bool))
    found = [max(iou(mask, known["mask"]) for mask in masks) for known in objects]
    assert sum(score >= 0.9 for score in found) >= 4, found
    # An automatic object is edited as any other: a click refines the current one (the last), no object is made.
    refined = app.click(*synthetic.interior_point(objects[0]["mask"]), (width, height), button="right")
    assert refined["clicks"] == 2 and [row["name"] for row in app.ui()["objects"]] == names
    app.page.keyboard.press("Control+z")  # the click
    app.page.keyboard.press("Control+z")  # the whole automatic result
    # (An undo does not make the page busy: the objects go when the worker's frame comes.)
    app.page.wait_for_function("document.querySelectorAll('#object-list li').length === 0")
    assert app.ui()["objects"] == []
    # Started and stopped at once: nothing is added, and a click then works as always.
    app.page.click("#everything")
    app.page.click("#everything")
    app.page.wait_for_function("document.getElementById('status').textContent.includes('nothing was added')")
    app.wait_until_ready()
    assert app.ui()["objects"] == []
    app.click(*synthetic.interior_point(objects[0]["mask"]), (width, height))
    [row] = app.ui()["objects"]
    assert row["name"].startswith("Object ")  # (numbered on from the objects undone)


def test_remove_background_cuts_out_the_subject_in_one_step(app, site, truth):
    """Remove background (key R): a new object "Subject" with no prompt from the person, shown cut out; the
    status says how to save it; the transparent PNG is every shape on the backdrop (holes filled: the ring's
    too); a click refines it; one undo removes it; the work made before is kept throughout."""
    image, objects, _ = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    # The status says which model answers the clicks, "not SAM2" for the baseline.
    assert app.page.inner_text("#status") == "Click anywhere on the image. Model: samtab baseline (classical, not SAM2)"
    app.click(*synthetic.interior_point(objects[0]["mask"]), (width, height))
    before = app.count("mask")
    app.page.keyboard.press("r")
    detail = app.wait_for("mask", before)
    app.wait_until_ready()
    assert detail["prompt"]["solid"] and detail["prompt"]["box"] == [0, 0, width - 1, height - 1]
    ui = app.ui()
    assert [row["name"] for row in ui["objects"]] == ["Object 1", "Subject"] and ui["objects"][1]["selected"]
    assert ui["view"] == "cutout"
    status = app.page.inner_text("#status")
    assert status.startswith("Subject: background removed, mask") and "transparent PNG" in app.page.inner_text(
        "#status-detail"
    )
    data, name = app.export("cutout")
    assert Image.open(io.BytesIO(data)).text["Model"] == "samtab baseline (classical, not SAM2)"
    alpha = np.asarray(Image.open(io.BytesIO(data)))[..., 3] > 0
    everything = np.any([known["mask"] for known in objects], axis=0)
    assert name == "shapes-subject-cutout.png" and iou(alpha, ndimage.binary_fill_holes(everything)) >= 0.95
    # What the canvas shows is the cutout: the backdrop transparent, a shape opaque.
    pixels = app.canvas_pixels()
    assert pixels[5, 5, 3] == 0 and pixels[pixels.shape[0] * 30 // 100, pixels.shape[1] * 22 // 100, 3] == 255
    # A click refines the subject; it stays solid.
    refined = app.click(width / 2, height / 2, (width, height), button="right")
    assert refined["prompt"]["solid"] and len(refined["prompt"]["points"]) == 1
    app.page.keyboard.press("Control+z")
    app.page.keyboard.press("Control+z")
    app.page.wait_for_function("document.querySelectorAll('#object-list li').length === 1")
    assert [row["name"] for row in app.ui()["objects"]] == ["Object 1"]


def test_brush_strokes_painted_with_the_pointer_are_the_masks_cpython_makes(app, site, truth):
    """Brush mode (B): a stroke dragged across the backdrop adds to the object's mask, one with Alt held takes
    a band out of it; the exported mask is, to the pixel, what pyapp makes in CPython of the same click and
    strokes; each stroke is one undo step, and a click after them keeps them."""
    from pyapp.app import App as CoreApp
    from pyapp.runner import OnnxRuntimeRunner
    from samtab_tools.modelio import read_model_folder
    from samtab_tools.segment import load

    image, objects, _ = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    box = app.page.locator("#canvas").bounding_box()
    css = (box["width"], box["height"])

    def on_screen(x, y):  # CSS px of the canvas -> the page's coordinates
        return box["x"] + x, box["y"] + y

    click = synthetic.interior_point(objects[0]["mask"])
    app.click(*click, (width, height))
    click_css = ((click[0] + 0.5) * css[0] / width, (click[1] + 0.5) * css[1] / height)
    app.page.keyboard.press("b")
    assert app.ui()["objects"][0]["clicks"] == "1 click"
    mouse = app.page.mouse
    strokes = [((0.10, 0.55), (0.45, 0.60), False), ((0.23, 0.10), (0.23, 0.45), True)]  # (from, to, alt)
    sent = []
    for start, end, alt in strokes:
        a = (start[0] * css[0], start[1] * css[1])
        b = (end[0] * css[0], end[1] * css[1])
        mouse.move(*on_screen(*a))
        if alt:
            app.page.keyboard.down("Alt")
        mouse.down()
        mouse.move(*on_screen(*b), steps=12)
        mouse.up()
        if alt:
            app.page.keyboard.up("Alt")
        sent.append((a, b, not alt))
        app.wait_until_ready()
    app.page.wait_for_function("!document.getElementById('undo').disabled")
    got = app.mask()
    # The same click and strokes in CPython (a straight drag: its path is the segment between its ends).
    bundle, model = load(ROOT / "site" / "demos" / "shapes")
    info = read_model_folder(model, parts=("decoder",))
    runner = OnnxRuntimeRunner(model / info.files["decoder"])
    core = CoreApp()
    core.open(bundle, info.name, runner.input_names, Image.fromarray(image), photo_name="shapes.png")
    core.click(*click_css, *css)
    while (job := core.next_decode()) is not None:
        core.accept(job, runner.run(job.feeds))
    for a, b, add in sent:
        core.stroke([a, b], 12, *css, hardness=0.8, add=add)
    want = core.step_mask(core.segmenter.objects.current.current, width, height)
    assert np.count_nonzero(got != want) <= 0.002 * got.size, np.count_nonzero(got != want)
    assert got[int(0.57 * height), int(0.3 * width)]  # the added stroke, on the backdrop
    assert not got[int(0.3 * height), int(0.23 * width)]  # the band taken out of the disc
    # One undo takes back one stroke.
    app.page.keyboard.press("Control+z")
    app.wait_until_ready()
    app.page.wait_for_timeout(300)
    assert app.mask()[int(0.3 * height), int(0.23 * width)]


def test_clicks_land_where_they_are_made_when_zoomed_and_panned(app, site, truth):
    """The wheel zooms around the pointer (the point under it stays), a middle-button drag pans, F fits again;
    a click on an object at 3x, and after a pan, selects that object; a box dragged there has its corners where
    they were dragged."""
    image, objects, meta = truth
    height, width = image.shape[:2]
    app.open(shapes_url(site))
    fitted = app.page.locator("#canvas").bounding_box()
    ellipse = meta["objects"][3]["point"]
    x, y = app.canvas_point(*ellipse, width, height)
    app.page.mouse.move(x, y)
    for _ in range(6):
        app.page.mouse.wheel(0, -120)
    app.page.wait_for_function("document.getElementById('canvas').style.transform !== ''")
    zoomed = app.page.locator("#canvas").bounding_box()
    assert zoomed["width"] > 2 * fitted["width"]
    assert app.canvas_point(*ellipse, width, height) == pytest.approx((x, y), abs=2)  # still under the pointer
    assert iou(app.mask_after_click(*ellipse, (width, height)), objects[3]["mask"]) >= 0.95
    # Pan with the middle button, then click on the ring, now brought into view.
    app.page.keyboard.press("n")
    ring = meta["objects"][4]["point"]
    rx, ry = app.canvas_point(*ring, width, height)
    area = app.page.locator("#image-area").bounding_box()
    target = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    # (The ring is off the visible area: the drag starts in the middle and moves the photo by ring -> middle.)
    app.page.mouse.move(*target)
    app.page.mouse.down(button="middle")
    app.page.mouse.move(2 * target[0] - rx, 2 * target[1] - ry, steps=5)
    app.page.mouse.up(button="middle")
    assert app.canvas_point(*ring, width, height) == pytest.approx(target, abs=2)
    assert iou(app.mask_after_click(*ring, (width, height)), objects[4]["mask"]) >= 0.9
    # A box drawn around the ring at this zoom: its corners land where they are dragged.
    app.page.keyboard.press("n")
    x0, y0, w, h = meta["objects"][4]["box"]
    boxed = app.drag((x0 - 4, y0 - 4), (x0 + w + 3, y0 + h + 3), (width, height))
    assert boxed["prompt"]["box"] == pytest.approx([x0 - 4, y0 - 4, x0 + w + 3, y0 + h + 3], abs=0.5)
    app.page.keyboard.press("f")
    assert app.page.locator("#canvas").bounding_box() == pytest.approx(fitted, abs=1)


def test_zoomed_in_a_12_megapixel_photo_is_drawn_from_its_own_pixels_and_its_full_size_mask(app, site):
    """At 400 % of a 4000 x 3000 photo (the view has 1024 x 768 pixels: each would be a 16-pixel block), the
    page shows the worker's detail: each screen pixel is the photo pixel it falls on, cut out by the exported
    (photo-size) mask, to the pixel; a click and a brush stroke made at that zoom land where they are made and
    the detail follows them; F fits the photo again and the detail goes."""
    slug = "shapes-12mp"
    meta = json.loads((ROOT / "site" / "demos" / slug / "truth.json").read_text())
    size = (meta["width"], meta["height"])
    assert size == (4000, 3000)
    app.open(f"{site.url}?demo={slug}")
    disc = next(o for o in meta["objects"] if o["name"] == "red disc")
    app.click(*disc["point"], size)
    app.page.keyboard.press("v")  # the cutout view: the object alone, on the checkerboard
    x0, y0, w, h = disc["box"]
    edge = (x0 + w - 1, y0 + h // 2)  # the disc's right edge, half way down
    app.zoom_to(400, *edge, size)
    mask = app.mask()
    pixels, cols, rows = app.detail(size)
    # Screen pixels well inside a photo pixel (a 4-pixel block's middle two) and on the photo.
    inner_cols = (np.abs(cols - np.round(cols)) > 0.2) & (cols >= 0) & (cols < size[0])
    inner_rows = (np.abs(rows - np.round(rows)) > 0.2) & (rows >= 0) & (rows < size[1])
    shown = pixels[inner_rows][:, inner_cols]
    under = mask[rows[inner_rows].astype(int)][:, cols[inner_cols].astype(int)]
    red = (shown[..., 0] > 150) & (shown[..., 1] < 110)  # the disc's own pixels, not the checkerboard's
    assert under.any() and (~under).any()  # the edge is on the screen
    assert np.count_nonzero(red != under) <= 0.001 * red.size, np.count_nonzero(red != under)
    photo = np.asarray(Image.open(ROOT / "site" / "demos" / slug / "shapes-12mp.jpg.preview.jpg"))
    want = photo[rows[inner_rows].astype(int)][:, cols[inner_cols].astype(int)]
    inside = red & under
    # The photo's own pixels (Pyodide's JPEG decoder differs from CPython's by a few levels at colour edges).
    differ = np.abs(shown[inside][:, :3].astype(int) - want[inside])
    assert differ.mean() <= 1 and np.percentile(differ, 99) <= 4, (differ.mean(), np.percentile(differ, 99))
    # A click at this zoom, just inside the edge: where it is made; the frame brings the detail with it.
    before = app.count("mask")
    spot = (edge[0] - 20, edge[1])
    app.page.mouse.click(*app.canvas_point(*spot, *size))
    clicked = app.wait_for("mask", before)
    assert "detail" in clicked["latency_ms"]
    assert clicked["prompt"]["points"][-1][:2] == pytest.approx([spot[0], spot[1]], abs=0.5)
    # A brush stroke that removes a band across the edge (Alt), 4 px wide on the photo (8 CSS px across at 400 %).
    app.page.keyboard.press("b")
    mouse = app.page.mouse
    a, b = (edge[0] - 60, edge[1] - 20), (edge[0] - 60, edge[1] + 20)  # (on the screen: 160 CSS px)
    app.page.keyboard.down("Alt")
    mouse.move(*app.canvas_point(*a, *size))
    mouse.down()
    mouse.move(*app.canvas_point(*b, *size), steps=10)
    mouse.up()
    app.page.keyboard.up("Alt")
    app.settled_stats()  # the stroke applied, its frame (and the detail in it) painted
    app.page.wait_for_function("document.getElementById('image-area').classList.contains('detailed')")
    brushed = app.mask()
    assert not brushed[edge[1], edge[0] - 60] and not brushed[edge[1] - 15, edge[0] - 60]
    assert brushed[edge[1], edge[0] - 90] and brushed[edge[1], edge[0] - 35]  # beside the band: kept
    pixels, cols, rows = app.detail(size)
    column = np.argmin(np.abs(cols - (edge[0] - 60 + 0.5)))
    row = np.argmin(np.abs(rows - (edge[1] + 0.5)))
    assert not (pixels[row, column, 0] > 150 and pixels[row, column, 1] < 110)  # the band shows cut out
    app.page.keyboard.press("f")
    app.page.wait_for_function("document.getElementById('detail').hidden")


def test_two_fingers_pinch_zoom_and_pan_without_clicking(browser, site, truth):
    """Touch (issue 16): two fingers spread apart zoom around the point between them, and moving together pan;
    nothing is clicked by them; a one-finger tap afterwards still selects."""
    image, objects, meta = truth
    size = (image.shape[1], image.shape[0])
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        app = App(page).open(shapes_url(site))
        cdp = context.new_cdp_session(page)

        def touch(kind: str, *points):
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": kind, "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]},
            )

        fitted = page.locator("#canvas").bounding_box()
        mx, my = app.canvas_point(*meta["objects"][3]["point"], *size)  # the ellipse, between the fingers
        touch("touchStart", (mx - 30, my), (mx + 30, my))
        for step in range(1, 11):
            touch("touchMove", (mx - 30 - 6 * step, my), (mx + 30 + 6 * step, my))  # 60 px apart -> 180
        for step in range(1, 6):
            touch("touchMove", (mx - 90 + 4 * step, my - 4 * step), (mx + 90 + 4 * step, my - 4 * step))  # pan
        touch("touchEnd")
        zoomed = page.locator("#canvas").bounding_box()
        assert zoomed["width"] / fitted["width"] == pytest.approx(3, rel=0.02)
        # The ellipse's point followed the fingers' middle, which moved 20 px right and 20 px up.
        assert app.canvas_point(*meta["objects"][3]["point"], *size) == pytest.approx((mx + 20, my - 20), abs=2)
        assert app.ui()["objects"] == []  # nothing was clicked
        before = app.count("mask")
        page.touchscreen.tap(*app.canvas_point(*meta["objects"][3]["point"], *size))
        app.wait_for("mask", before)
        assert iou(app.mask(), objects[3]["mask"]) >= 0.95
    finally:
        context.close()
