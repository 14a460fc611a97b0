"""A person's own photo opened without a bundle is encoded in the tab (issue 17): js/encode.js, the encoder's
worker (site/encoder-worker.js), and the Python worker's prepare and make-bundle (pyapp.session). Checked
against tools/encode.py --web-encoder (the same encoder file in onnxruntime on the CPU, the same pyapp.image)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyapp.app import App as CoreApp
from pyapp.bundle import Bundle, read_bundle
from pyapp.image import encoder_input, open_photo
from pyapp.runner import OnnxRuntimeRunner
from samtab_tools.browser import AppPage, recorded_events

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "site" / "models"
TIMEOUT = 180_000


@pytest.fixture
def app(page):
    page.set_default_timeout(TIMEOUT)
    return AppPage(page, timeout_ms=TIMEOUT)


@pytest.fixture
def photos(tmp_path) -> dict[str, Path]:
    """Two of the demo photos, under names of a person's own (no demo has their bundles by these names)."""
    import skimage.data

    data = Path(skimage.data.__file__).parent
    out = {}
    for name, source in (("my cup.png", "coffee.png"), ("my cat.png", "chelsea.png")):
        out[name] = tmp_path / name
        shutil.copyfile(data / source, out[name])
    return out


def cli_bundle(model: Path, photo: Path, out: Path) -> Bundle:
    """tools/encode.py --web-encoder's bundle of the photo."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "encode.py"), str(photo), "--model", str(model), "--out", str(out)]
        + ["--web-encoder", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return read_bundle((out / f"{photo.name}.msgpack").read_bytes())


def fp16_steps(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference of two float16 arrays, in float16 steps at their magnitude; differences of at
    most 2e-5 count as none (near 0 a step is far smaller than the float32 outputs of two runtimes differ:
    the page's and the CPU's differ by ~2e-6)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    step = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float16)).astype(np.float32)
    differ = np.abs(a - b)
    return float(np.where(differ <= 2e-5, 0, differ / step).max())


def balanced_iou(a: np.ndarray, b: np.ndarray) -> float:
    def iou(x, y):
        union = np.count_nonzero(x | y)
        return 1.0 if union == 0 else np.count_nonzero(x & y) / union

    return min(iou(a, b), iou(~a, ~b))


def masks_of(bundle: Bundle, model: Path, photo: Path, clicks) -> list[np.ndarray]:
    """The masks pyapp makes (CPython, onnxruntime) of this bundle for each click, one after the other."""
    runner = OnnxRuntimeRunner(model / "decoder.onnx")
    core = CoreApp()
    core.open(bundle, bundle.model_name, runner.input_names, open_photo(photo).rgb, photo_name=photo.name)
    out = []
    for x, y, include in clicks:
        core.click(x, y, bundle.width, bundle.height, include)
        while (job := core.next_decode()) is not None:
            core.accept(job, runner.run(job.feeds))
        out.append(core.step_mask(core.segmenter.objects.current.current, bundle.width, bundle.height))
    return out


def assert_same_as_cli(tab: Bundle, model: Path, photo: Path, tmp: Path) -> None:
    cli = cli_bundle(model, photo, tmp / "cli")
    assert (tab.width, tab.height, tab.image_sha256, tab.model_name) == (
        cli.width,
        cli.height,
        cli.image_sha256,
        cli.model_name,
    )
    for name, values in cli.tensors.items():
        assert fp16_steps(tab.tensors[name], values) <= 1, name  # the stored values: at most one float16 step
    clicks = [(tab.width * 0.5, tab.height * 0.4, True), (tab.width * 0.2, tab.height * 0.8, False)]
    clicks += [(tab.width * 0.7, tab.height * 0.6, True)]
    for a, b in zip(masks_of(tab, model, photo, clicks), masks_of(cli, model, photo, clicks), strict=True):
        assert balanced_iou(a, b) >= 0.999


def test_a_photo_without_a_bundle_is_encoded_here_saved_and_opened_again_at_once(app, site, photos, tmp_path):
    """With the baseline model: choosing a photo alone encodes it in the tab (its encoder is small: no
    question), opens it, and a click makes a mask; the bundle made is tools/encode.py's; "Save bundle" saves
    it, and the photo with that bundle opens as any photo with its bundle does; choosing the photo again opens
    it from the bundle kept (IndexedDB), without encoding it again."""
    app.open(f"{site.url}?demo=shapes")
    cup = photos["my cup.png"]
    opened = app.count("opened")
    app.page.set_input_files("#file-input", str(cup))
    encoded = app.wait_for("encoded")
    assert not encoded["cached"] and encoded["model"] == "samtab baseline (classical, not SAM2)"
    app.wait_for("opened", opened)
    app.wait_until_ready()
    assert app.page.inner_text("#status").startswith("Click anywhere on the image.")
    mask = app.mask_after_click(290, 160, (600, 400))
    assert mask[160, 290] and 0.01 < mask.mean() < 0.6
    data, name = save_bundle(app)
    assert name == "my cup.png.msgpack"
    tab = read_bundle(data)
    assert_same_as_cli(tab, ROOT / "models" / "baseline", cup, tmp_path)
    # The photo again: its bundle comes from IndexedDB.
    opened = app.count("opened")
    app.page.set_input_files("#file-input", str(cup))
    again = app.wait_for("encoded", 1)
    assert again["cached"]
    app.wait_for("opened", opened)
    # The photo and its saved bundle, opened together: the same mask for the same click.
    saved = tmp_path / name
    saved.write_bytes(data)
    opened = app.count("opened")
    app.page.set_input_files("#file-input", [str(cup), str(saved)])
    app.wait_for("opened", opened)
    assert np.array_equal(app.mask_after_click(290, 160, (600, 400)), mask)
    assert app.page.locator("#save-bundle").is_hidden()  # a bundle of one's own: nothing to save
    assert [e for e in recorded_events(app.page, "error")] == []


def save_bundle(app: AppPage) -> tuple[bytes, str]:
    with app.page.expect_download() as download:
        app.page.click("#save-bundle")
    return Path(download.value.path()).read_bytes(), download.value.suggested_filename


def test_sam2_in_the_tab_makes_the_bundle_the_cli_makes_and_cancel_stops_an_encode(app, site, photos, tmp_path):
    """With the random-init SAM2.1 tiny: its 67 MB encoder is downloaded only once the person says so (the size
    is shown first); the tab's float32 outputs are within 1e-3 of onnxruntime's on the CPU for the same file,
    the bundle within one float16 step of tools/encode.py's, and the masks the same (balanced IoU >= 0.999).
    Then Cancel during another photo's encode stops it: the photo open and its objects stay, nothing opens;
    the same photo chosen again is encoded."""
    model = ROOT / "models" / "sam2.1-tiny-random"
    app.open(f"{site.url}?demo=shapes-sam2.1-tiny-random&diagnostics=1")
    cup = photos["my cup.png"]
    opened = app.count("opened")
    app.page.set_input_files("#file-input", str(cup))
    app.page.wait_for_selector("#encode-go:visible")
    question = app.page.inner_text("#encode-text")
    size_mb = (MODELS / "sam2.1-tiny-random" / "encoder_web.onnx").stat().st_size / 2**20
    assert "my cup.png has no bundle" in question and f"{size_mb:.0f} MB" in question
    app.page.click("#encode-go")
    encoded = app.wait_for("encoded")
    assert not encoded["cached"] and encoded["run_ms"] > 0
    app.wait_for("opened", opened)
    # The encoder's float32 outputs against onnxruntime's on the CPU, compared in the page.
    import onnxruntime as ort

    session = ort.InferenceSession(str(model / "encoder_web.onnx"), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"image": encoder_input(open_photo(cup).rgb)})
    names = [o.name for o in session.get_outputs()]
    for name, values in zip(names, reference):
        body = values.astype(np.float32).tobytes()
        app.page.route(f"{site.url}__reference/{name}", lambda route, _request, body=body: route.fulfill(body=body))
    worst = app.page.evaluate(
        """async ([base, names]) => {
          const out = {};
          for (const name of names) {
            const want = new Float32Array(await (await fetch(base + '__reference/' + name)).arrayBuffer());
            const got = new Float32Array(window.__samtab_encoder_outputs[name]);
            let worst = want.length === got.length ? 0 : Infinity;
            for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
            out[name] = worst;
          }
          return out;
        }""",
        [site.url, names],
    )
    assert set(worst) == set(names) and max(worst.values()) <= 1e-3, worst
    data, _ = save_bundle(app)
    assert_same_as_cli(read_bundle(data), model, cup, tmp_path)
    # Work on this photo, then another photo's encode cancelled: the work stays.
    app.click(300, 200, (600, 400))
    cat = photos["my cat.png"]
    app.page.set_input_files("#file-input", str(cat))  # the encoder is here already: no question
    app.page.wait_for_function("document.getElementById('status-detail').textContent.startsWith('The encoder is')")
    app.page.click("#encode-cancel")
    app.page.wait_for_function("document.getElementById('status').textContent === 'Encoding cancelled.'")
    app.wait_until_ready()
    assert app.count("encode-cancelled") == 1 and app.count("opened") == opened + 1
    assert app.ui()["objects"][0]["clicks"] == "1 click"
    assert app.page.locator("#encode-bar").is_hidden()
    # Chosen again, it is encoded (in a new worker: the cancelled one was terminated).
    app.page.set_input_files("#file-input", str(cat))
    assert not app.wait_for("encoded", 1)["cached"]
    app.wait_for("opened", opened + 1)
    assert recorded_events(app.page, "error") == []
    assert [e["detail"]["photo"] for e in recorded_events(app.page, "encoded")] == ["my cup.png", "my cat.png"]
