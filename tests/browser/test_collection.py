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
    app.page.wait_for_function("document.getElementById('status').textContent.includes('back as you left them')")
    assert coco(app) == before  # the same masks, decoded again from the same clicks
    assert [row[1] for row in strip(app)[:3]] == ["in progress", "in progress", "not started"]
    assert strip(app)[0][2] and not app.ui()["restore"]

    app.page.click(f"#filmstrip-list button[data-index='{names.index(second)}']")
    assert opened_photo(app, 3) == second
    app.page.wait_for_function("document.getElementById('status').textContent.includes('back as you left them')")
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
