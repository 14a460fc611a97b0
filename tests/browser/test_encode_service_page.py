"""A site deployed with a team's encode service (issue 17, part 2): the page sends a person's photo to the
real service (tools/encode_service.py on uvicorn, on loopback) only after asking, with the service's origin
shown; the bundle that comes back is the one samtab-encode writes. A site deployed without one sends
nothing anywhere, whatever its address says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtab_tools import encode_service
from samtab_tools.browser import AppPage, SiteServer, recorded_events

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "models" / "baseline"
TIMEOUT = 120_000
MAX_BYTES = 2_000_000


class Counting:
    """The service's ASGI app, every request it is sent recorded as (method, path)."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def posts(self) -> int:
        return sum(method == "POST" for method, _ in self.seen)


@pytest.fixture(scope="module")
def service(site):
    """The real service on a free loopback port, with the baseline model the site has (the `site` fixture
    built it), its uploads capped at MAX_BYTES."""
    counting = Counting(encode_service.make_app(BASELINE, max_bytes=MAX_BYTES))
    with encode_service.running(counting) as port:
        counting.origin = f"http://127.0.0.1:{port}"
        yield counting


@pytest.fixture(scope="module")
def served_with_service(service):
    """tools/serve.py --encode-service ORIGIN: the site as deployed with that setting."""
    server = SiteServer("--encode-service", service.origin, build=False)
    yield server
    server.stop()


@pytest.fixture
def app(page):
    page.set_default_timeout(TIMEOUT)
    return AppPage(page, timeout_ms=TIMEOUT)


@pytest.fixture
def photos(tmp_path) -> dict[str, Path]:
    import skimage.data

    data = Path(skimage.data.__file__).parent
    out = {}
    for name, source in (("my cup.png", "coffee.png"), ("my cat.png", "chelsea.png"), ("my rocket.jpg", "rocket.jpg")):
        out[name] = tmp_path / name
        shutil.copyfile(data / source, out[name])
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    out["my noise.png"] = tmp_path / "my noise.png"
    Image.fromarray(noise).save(out["my noise.png"])  # ~3 MB: over the service's MAX_BYTES
    return out


def cli_bundle(photo: Path, out: Path) -> bytes:
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "encode.py"), str(photo), "--model", str(BASELINE), "--out", str(out)]
        + ["--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return (out / f"{photo.name}.msgpack").read_bytes()


def choose_photo(app: AppPage, photo: Path) -> None:
    app.page.set_input_files("#file-input", str(photo))


def question(app: AppPage) -> str:
    app.page.wait_for_selector("#encode-bar:not([hidden]) #encode-send:not([hidden])")
    return app.page.inner_text("#encode-text")


def test_without_a_service_the_page_sends_a_photo_nowhere_whatever_its_address_says(app, site, service, photos):
    before = list(service.seen)
    app.open(f"{site.url}?demo=shapes&encoder={service.origin}")
    choose_photo(app, photos["my cup.png"])
    error = app.wait_for("error")
    assert error["phase"] == "encode" and "this site has none" in error["message"], error
    assert "nothing leaves your machine" in error["message"]
    assert app.count("opened") == 1, "the demo stays open"
    assert service.seen == before, "not even the service's /health was asked"
    csp = app.page.evaluate("fetch(location.href).then((r) => r.headers.get('Content-Security-Policy'))")
    assert service.origin not in csp
    assert app.page.inner_text(".tagline").endswith("Nothing leaves your machine.")


def test_the_photo_is_sent_only_once_the_person_says_so_and_comes_back_as_samtab_encodes_it(
    app, served_with_service, service, photos, tmp_path
):
    app.open(f"{served_with_service.url}?demo=shapes")
    posts = service.posts()
    tagline = app.page.inner_text(".tagline")
    assert tagline.endswith(f"Nothing leaves your machine unless you send a photo to {service.origin}."), tagline

    # Asked, with the service's origin shown; "Encode here" keeps the photo on the machine.
    choose_photo(app, photos["my cat.png"])
    text = question(app)
    assert service.origin in text and "encode it in this tab" in text, text
    assert app.page.locator("#encode-go").is_visible()
    assert service.posts() == posts, "nothing is sent before the answer"
    opened = app.count("opened")
    app.page.click("#encode-go")
    assert app.wait_for("encoded")["via"] == "tab"
    app.wait_for("opened", opened)
    assert service.posts() == posts

    # Asked again for the next photo; "Send" sends it.
    encoded, opened = app.count("encoded"), app.count("opened")
    choose_photo(app, photos["my cup.png"])
    question(app)
    app.page.click("#encode-send")
    sent = app.wait_for("encoded", encoded)
    assert sent["via"] == "service" and sent["service"] == service.origin and not sent["cached"], sent
    assert sent["model"] == "samtab baseline (classical, not SAM2)"
    app.wait_for("opened", opened)
    app.wait_until_ready()
    assert service.posts() == posts + 1
    mask = app.mask_after_click(290, 160, (600, 400))
    assert mask[160, 290] and 0.01 < mask.mean() < 0.6
    with app.page.expect_download() as download:
        app.page.click("#save-bundle")
    made = Path(download.value.path()).read_bytes()
    assert made == cli_bundle(photos["my cup.png"], tmp_path / "cli"), "the service's bundle is samtab-encode's"

    # Said yes once: the next photo goes without a question; one over the service's limit gets its message
    # and the photo open stays.
    encoded, opened = app.count("encoded"), app.count("opened")
    choose_photo(app, photos["my rocket.jpg"])
    assert app.wait_for("encoded", encoded)["via"] == "service"
    app.wait_for("opened", opened)
    errors, opened = app.count("error"), app.count("opened")
    choose_photo(app, photos["my noise.png"])
    error = app.wait_for("error", errors)
    assert error["phase"] == "encode" and "my noise.png could not be encoded" in error["message"], error
    assert "over the encode service's limit" in error["message"], "the service's own message says what is wrong"
    assert app.count("opened") == opened and not error["fatal"], "the rocket stays open"


def test_a_link_chooses_the_service_or_the_tab_but_no_other_service(app, served_with_service, service, photos):
    app.open(f"{served_with_service.url}?demo=shapes&encoder=service")
    posts = service.posts()
    choose_photo(app, photos["my cat.png"])
    question(app)
    assert app.page.locator("#encode-go").is_hidden(), "?encoder=service offers the service alone"
    app.page.click("#encode-cancel")
    app.page.wait_for_selector("#encode-bar", state="hidden")
    assert service.posts() == posts

    def reopen(query: str) -> None:
        app.page.goto(f"{served_with_service.url}?demo=shapes&{query}")
        app.wait_for("opened")

    reopen("encoder=tab")
    choose_photo(app, photos["my cat.png"])
    assert app.wait_for("encoded")["via"] == "tab"
    assert service.posts() == posts

    reopen("encoder=http://127.0.0.1:9/")
    choose_photo(app, photos["my rocket.jpg"])  # (the cat's bundle is kept now: it would open from there)
    error = app.wait_for("error")
    assert "is not this site's encode service" in error["message"] and service.origin in error["message"], error
    assert service.posts() == posts
    assert [e for e in recorded_events(app.page, "error") if e["detail"]["phase"] != "encode"] == []
