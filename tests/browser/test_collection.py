"""A collection in the page (issue 18 part 1), in Debian's Chromium: a served collection.json opened as a
filmstrip, photos switched with the strip and the `,` and `.` keys, each photo's objects kept and back exactly
as they were (their masks, exported as COCO) when it is opened again; a bad index refused with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samtab_tools.browser import APP_EVENT_RECORDER, AppPage, recorded_events

ROOT = Path(__file__).resolve().parents[2]
INDEX = ROOT / "site" / "demos" / "collection.json"


@pytest.fixture
def app(page, site):
    page.set_default_timeout(120_000)
    return AppPage(page)


def strip(app: AppPage) -> list[tuple[str, str, bool]]:
    """The filmstrip as a person sees it: (name, status, open) per photo."""
    rows = app.page.evaluate("""() => [...document.querySelectorAll('#filmstrip-list button')].map((b) =>
        [b.querySelector('.title').textContent, b.querySelector('.photo-status').textContent,
         b.getAttribute('aria-current') === 'true'])""")
    return [tuple(row) for row in rows]


def opened_photo(app: AppPage, after: int) -> str:
    return app.wait_for("opened", after)["slug"].split("/", 1)[1]


def back_as_left(app: AppPage, times: int) -> None:
    """Until the page has said a reopened photo's objects are back (the status event: the status line itself
    may already show the next mask's words), and the worker has settled."""
    app.page.wait_for_function(
        "window.__samtab_events.filter(e => e.name == 'status' && "
        f"e.detail.text.includes('back as you left them')).length >= {times}"
    )
    app.settled_stats()


def coco(app: AppPage) -> list[dict]:
    app.settled_stats()
    data, _ = app.export("coco")
    return json.loads(data)["annotations"]


def test_photos_switch_and_each_keeps_its_objects(app, site):
    index = json.loads(INDEX.read_text())
    photos = {p["name"]: (p["width"], p["height"]) for p in index["photos"]}
    names = list(photos)
    app.open(f"{site.url}?collection=demos/collection.json")
    [shown] = [{k: v for k, v in e["detail"].items() if k != "t_ms"} for e in recorded_events(app.page, "collection")]
    assert shown == {"name": "Demo photos", "model": index["model"], "photos": len(names), "classes": index["classes"]}
    assert app.page.locator("#filmstrip-title").text_content() == "Demo photos"
    assert app.page.locator("#gallery").is_hidden()  # the strip takes the demos' place
    assert strip(app) == [(name, "not started", name == names[0]) for name in names]

    first, second = names[0], names[1]
    w, h = photos[first]
    app.click(0.5 * w, 0.5 * h, photos[first])
    app.click(0.3 * w, 0.3 * h, photos[first], button="right")
    before = coco(app)
    assert len(before) == 1
    assert strip(app)[0] == (first, "in progress", True)

    app.page.keyboard.press(".")
    assert opened_photo(app, 1) == second
    w, h = photos[second]
    app.click(0.4 * w, 0.6 * h, photos[second])
    app.page.keyboard.press("n")
    app.click(0.7 * w, 0.3 * h, photos[second])
    second_objects = coco(app)
    assert len(second_objects) == 2

    app.page.keyboard.press(",")
    assert opened_photo(app, 2) == first
    back_as_left(app, 1)
    assert coco(app) == before  # the same masks, decoded again from the same clicks
    assert [row[1] for row in strip(app)[:3]] == ["in progress", "in progress", "not started"]
    assert strip(app)[0][2] and not app.ui()["restore"]

    app.page.click(f"#filmstrip-list button[data-index='{names.index(second)}']")
    assert opened_photo(app, 3) == second
    back_as_left(app, 2)
    assert coco(app) == second_objects
    app.page.keyboard.press(",")  # from the second photo back to the first, and from the first to the last
    assert opened_photo(app, 4) == first
    app.page.keyboard.press(",")
    assert opened_photo(app, 5) == names[-1]
    errors = [e["detail"] for e in recorded_events(app.page, "error")]
    assert not errors, errors


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.update(kind="something-else"), ["not a samtab collection", "--index"]),
        (lambda d: d.update(model="a model this site lacks"), ["no decoder", "a model this site lacks"]),
        (lambda d: d["photos"][0].update(bundle="https://elsewhere.example/x.msgpack"), ["not an address"]),
    ],
)
def test_a_collection_that_cannot_be_opened_says_why(app, site, change, words):
    document = json.loads(INDEX.read_text())
    change(document)
    app.page.route(
        "**/demos/bad-collection.json",
        lambda route, request: route.fulfill(status=200, content_type="application/json", body=json.dumps(document)),
    )
    app.page.add_init_script(APP_EVENT_RECORDER)
    app.page.goto(f"{site.url}?collection=demos/bad-collection.json")
    app.page.wait_for_function("window.__samtab_events?.some(e => e.name == 'error')")
    [error] = [e["detail"] for e in recorded_events(app.page, "error")]
    assert error["phase"] == "collection" and not error["fatal"], error
    text = error["message"] + " " + error["hint"]
    for word in words:
        assert word in text, text
    assert app.page.locator("#filmstrip").is_hidden()


def download(app: AppPage, selector: str) -> tuple[bytes, str]:
    with app.page.expect_download() as caught:
        app.page.click(selector)
    return Path(caught.value.path()).read_bytes(), caught.value.suggested_filename


def test_classes_whole_exports_and_a_session_file_round_trip(app, site, tmp_path):
    """Objects given the collection's classes (Alt+digit, the object's class list), the whole collection
    exported as COCO (read by pycocotools) and as a YOLO zip (the previews as images), the work saved as a
    session file and opened again in a new visit: the same exports; a session of another model refused."""
    import io
    import zipfile

    from pycocotools.coco import COCO

    index = json.loads(INDEX.read_text())
    photos = {p["name"]: (p["width"], p["height"]) for p in index["photos"]}
    names = list(photos)
    classes = index["classes"]
    app.open(f"{site.url}?collection=demos/collection.json")
    first, second = names[0], names[1]
    w, h = photos[first]
    app.click(0.5 * w, 0.5 * h, photos[first])
    app.page.keyboard.press("Alt+1")
    app.page.wait_for_function(f"document.querySelector('#object-list select').value === {json.dumps(classes[0])}")
    one_photo = json.loads(app.export("coco")[0])
    assert [c["name"] for c in one_photo["categories"]] == [classes[0]]  # a single photo's export uses it too
    app.page.keyboard.press(".")
    assert opened_photo(app, 1) == second
    w, h = photos[second]
    app.click(0.4 * w, 0.6 * h, photos[second])
    app.page.keyboard.press("n")
    app.click(0.8 * w, 0.2 * h, photos[second])
    app.page.select_option("#object-list li[data-id='2'] select", classes[2])  # by the list, not a key
    app.settled_stats()

    data, name = download(app, "#collection-coco")
    assert name == "demo-photos-coco.json"
    whole = json.loads(data)
    assert [c["name"] for c in whole["categories"]][:3] == classes
    assert [image["file_name"] for image in whole["images"]] == names
    by_image = {image["id"]: image["file_name"] for image in whole["images"]}
    found = [(by_image[a["image_id"]], whole["categories"][a["category_id"] - 1]["name"]) for a in whole["annotations"]]
    assert found == [(first, classes[0]), (second, "Object 1"), (second, classes[2])]
    api = COCO()
    api.dataset = whole
    api.createIndex()
    for annotation in whole["annotations"]:
        assert isinstance(annotation["segmentation"], dict)  # RLE: the exact mask
        assert api.annToMask(annotation).sum() == annotation["area"] > 0
    # the first photo's object, left for the second, is the mask its own export showed (as polygons there)
    alone = COCO()
    alone.dataset = one_photo
    alone.createIndex()
    theirs, ours = alone.annToMask(one_photo["annotations"][0]), api.annToMask(whole["annotations"][0])
    assert (theirs != ours).sum() <= 0.01 * ours.sum() + 1

    data, name = download(app, "#collection-yolo")
    archive = zipfile.ZipFile(io.BytesIO(data))
    listed = sorted(archive.namelist())
    assert "data.yaml" in listed and len([n for n in listed if n.startswith("images/")]) == len(names)
    assert len([n for n in listed if n.startswith("labels/")]) == len(names)
    second_stem = second.rsplit(".", 1)[0]
    lines = archive.read(f"labels/{second_stem}.txt").decode().splitlines()
    assert [int(line.split()[0]) for line in lines] == [3, 2]  # "Object 1" after the three classes; "thing"

    app.page.keyboard.press("d")  # the second photo is done
    assert strip(app)[1] == (second, "done", True)
    assert app.page.get_attribute("#photo-done", "aria-pressed") == "true"
    session, name = download(app, "#session-save")
    assert name == "demo-photos-session.json"
    saved = tmp_path / name
    saved.write_bytes(session)
    document = json.loads(session)
    assert sorted(document["photos"]) == sorted([first, second]) and document["current"] == second
    assert [document["photos"][n]["status"] for n in (first, second)] == ["in progress", "done"]

    # A new visit (a reload, a closed tab): the work saved in IndexedDB comes back by itself, the photo left
    # open first, and the exports are the same.
    app.page.wait_for_function(
        "window.__samtab_events.some(e => e.name == 'autosaved' && e.detail.photos == 2 && e.detail.done == 1)"
    )
    app.page.goto(f"{site.url}?collection=demos/collection.json")
    assert app.wait_for("session") == {"photos": 2, "resumed": True, "t_ms": pytest.approx(0, abs=1e9)}
    assert opened_photo(app, 0) == second
    back_as_left(app, 1)
    app.settled_stats()
    assert json.loads(download(app, "#collection-coco")[0])["annotations"] == whole["annotations"]

    # Another machine: the session file brings the same work back.
    app.page.evaluate("indexedDB.deleteDatabase('samtab-collections')")
    app.page.goto(f"{site.url}?collection=demos/collection.json")
    app.wait_for("opened")
    opened = app.count("opened")
    assert opened_photo(app, 0) == first  # nothing saved here: the first photo
    app.page.set_input_files("#session-input", str(saved))
    assert opened_photo(app, opened) == second
    back_as_left(app, 1)
    app.settled_stats()
    again = json.loads(download(app, "#collection-coco")[0])
    assert again["annotations"] == whole["annotations"] and again["categories"] == whole["categories"]
    assert [row[1] for row in strip(app)[:3]] == ["in progress", "done", "not started"]

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**document, "model": "another model"}))
    app.page.set_input_files("#session-input", str(other))
    app.page.wait_for_function("window.__samtab_events.some(e => e.name == 'error')")
    [error] = [e["detail"] for e in recorded_events(app.page, "error")]
    assert error["phase"] == "collection" and "another model" in error["message"] and not error["fatal"]


def test_a_folder_opens_as_a_collection_and_its_photos_without_a_bundle_are_encoded_here(app, site, tmp_path):
    """Open folder…: samtab-encode's --out folder with a photo it encoded and one it did not (no
    collection.json): both in the strip, the second "needs encoding"; opening it encodes it in the tab with
    the collection's model, and both photos' objects go into COCO (all). Then the same folder with the
    collection.json samtab-encode --index writes: read from it."""
    import shutil
    import subprocess
    import sys

    import skimage.data
    from PIL import Image

    data = Path(skimage.data.__file__).parent
    folder = tmp_path / "holiday"
    folder.mkdir()
    shutil.copyfile(data / "coffee.png", folder / "my cup.png")
    shutil.copyfile(data / "chelsea.png", folder / "my cat.png")
    model = ROOT / "models" / "baseline"
    encode = [sys.executable, str(ROOT / "tools" / "encode.py"), str(folder / "my cup.png"), "--model", str(model)]
    run = subprocess.run([*encode, "--out", str(folder), "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    sizes = {name: Image.open(folder / name).size for name in ("my cup.png", "my cat.png")}

    app.open(f"{site.url}?demo=shapes")
    app.page.set_input_files("#folder-input", str(folder))
    shown = app.wait_for("collection")
    assert shown["name"] == "holiday" and shown["photos"] == 2
    assert opened_photo(app, 1) == "my cup.png"  # the first with a bundle
    assert strip(app) == [("my cat.png", "needs encoding", False), ("my cup.png", "not started", True)]
    w, h = sizes["my cup.png"]
    app.click(0.5 * w, 0.5 * h, sizes["my cup.png"])
    assert len(coco(app)) == 1

    app.page.click("#filmstrip-list button[data-index='0']")  # the cat: encoded here, then opened
    encoded = app.wait_for("encoded")
    assert not encoded["cached"] and encoded["model"] == json.loads((model / "model.json").read_text())["name"]
    assert opened_photo(app, 2) == "my cat.png"
    app.wait_until_ready()
    assert strip(app)[0] == ("my cat.png", "not started", True)
    w, h = sizes["my cat.png"]
    app.click(0.5 * w, 0.4 * h, sizes["my cat.png"])
    app.settled_stats()
    whole, name = download(app, "#collection-coco")
    document = json.loads(whole)
    assert name == "holiday-coco.json"
    assert sorted(image["file_name"] for image in document["images"]) == ["my cat.png", "my cup.png"]
    assert len(document["annotations"]) == 2
    assert {(image["width"], image["height"]) for image in document["images"]} == set(sizes.values())

    # with samtab-encode --index's collection.json: its photos (those with a bundle) and its name
    run = subprocess.run([*encode, "--out", str(folder), "--index", "Trip", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    app.page.set_input_files("#folder-input", str(folder))
    assert app.wait_for("collection", 1)["name"] == "Trip"
    assert opened_photo(app, 3) == "my cup.png"
    assert strip(app) == [("my cup.png", "not started", True)]

    # several photos (and a bundle) chosen with Open photo…: a collection of them too
    chosen = [folder / "my cup.png", folder / "my cup.png.msgpack", folder / "my cat.png"]
    app.page.set_input_files("#file-input", [str(path) for path in chosen])
    shown = app.wait_for("collection", 2)
    assert shown["name"] == "Chosen photos" and shown["photos"] == 2
    assert opened_photo(app, 4) == "my cup.png"
    assert strip(app) == [("my cat.png", "needs encoding", False), ("my cup.png", "not started", True)]
    errors = [e["detail"] for e in recorded_events(app.page, "error")]
    assert not errors, errors
