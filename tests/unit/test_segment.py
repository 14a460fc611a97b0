"""tools/segment.py: the browser's pipeline, headless, on a demo folder or a bundle.

What it writes is checked against the pipeline run directly (pyapp's Segmenter and OnnxRuntimeRunner) on
prompts built here, click by click, with the random-init SAM2.1 tiny: unlike the baseline, its three
candidates differ and every prompt token (each point, the box's two corners, mask_input) moves its masks, so
a wrong candidate, box or replay shows in the mask. The baseline checks that a click finds a real object.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
from PIL import Image

from pyapp.bundle import read_bundle
from pyapp.prompt import Box, Point, Prompt
from pyapp.runner import OnnxRuntimeRunner
from pyapp.segmenter import Segmenter
from samtab_tools import baseline_model, encode, segment, synthetic
from samtab_tools.modelio import read_model_folder

ROOT = Path(__file__).resolve().parents[2]
SEGMENT = [sys.executable, str(ROOT / "tools" / "segment.py")]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The synthetic scene encoded with the baseline: its folder, model, bundle and truth."""
    folder = tmp_path_factory.mktemp("segment")
    model = folder / "baseline"
    baseline_model.build(model)
    photo = folder / "shapes.png"
    synthetic.save_scene(photo, folder / "truth.json")
    [result] = encode.encode_all([photo], model, folder / "out", progress=False)
    image, objects = synthetic.scene()
    return folder, model, result.bundle, objects, synthetic.describe(objects)


class Direct:
    """The pipeline run here, on the SAM2.1 bundle: each prompt decoded in turn, each decode after the first
    refining the one before (mask_input), as a person clicking makes them."""

    def __init__(self, model: Path, bundle: Path):
        self.model, self.bundle = model, bundle
        self.info = read_model_folder(model)
        self.runner = OnnxRuntimeRunner(model / self.info.files["decoder"], threads=1)

    def run(self, steps: list[Prompt], candidate: int | None = None):
        """(mask at the photo's size, the object) after decoding `steps`; `candidate` is then chosen."""
        segmenter = Segmenter(read_bundle(self.bundle.read_bytes()), self.info.name, self.runner.input_names)
        obj = segmenter.objects.new()
        for prompt in steps:
            obj.push(prompt)
            segmenter.decode(obj, self.runner)
        if candidate is not None:
            obj.current.chosen = candidate
        return segmenter.mask(obj), obj


@pytest.fixture(scope="module")
def sam2(tmp_path_factory, sam2_model):
    """The random-init SAM2.1 tiny (exported when missing) and the synthetic scene encoded with it."""
    folder = tmp_path_factory.mktemp("segment-sam2")
    photo = folder / "shapes.png"
    synthetic.save_scene(photo, folder / "truth.json")
    [result] = encode.encode_all([photo], sam2_model, folder / "out", progress=False)
    _, objects = synthetic.scene()
    return Direct(sam2_model, result.bundle), synthetic.describe(objects)


def run(*args, **kwargs):
    return subprocess.run([*SEGMENT, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def run_sam2(direct: Direct, tmp_path: Path, *args) -> tuple[np.ndarray, dict]:
    """segment.py on the SAM2.1 bundle (one onnxruntime thread, like Direct): the mask it wrote, its summary."""
    out = tmp_path / "mask.png"
    result = run("--demo", direct.bundle, "--model", direct.model, "--threads", "1", *args, "--out", out)
    assert result.returncode == 0, result.stderr
    return read_mask(out), json.loads(result.stdout)


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 127


def differ(a: np.ndarray, b: np.ndarray) -> int:
    return int((a != b).sum())


def test_points_give_the_object(scene, tmp_path):
    _, model, bundle, objects, described = scene
    x, y = described[1]["point"]
    result = run("--demo", bundle, "--model", model, "--point", f"{x},{y}", "--out", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    mask = read_mask(tmp_path / "m.png")
    assert mask.shape == (640, 960) and summary["area_px"] == int(mask.sum()) and summary["decodes"] == 1
    truth = objects[1]["mask"]
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.95


def test_replay_decodes_click_by_click_keeping_every_point(sam2, tmp_path):
    direct, described = sam2
    a, b, c = (
        Point(*described[0]["point"]),
        Point(*described[3]["point"], include=False),
        Point(*described[1]["point"]),
    )
    args = [arg for p in (a, b, c) for arg in ("--point", f"{p.x:g},{p.y:g},{int(p.include)}")]
    replayed, _ = direct.run([Prompt((a,)), Prompt((a, b)), Prompt((a, b, c))])
    at_once, _ = direct.run([Prompt((a, b, c))])
    latest_only, _ = direct.run([Prompt((a,)), Prompt((b,)), Prompt((c,))])
    # The model tells these apart, so the mask shows which one the tool ran.
    assert differ(replayed, at_once) > 100 and differ(replayed, latest_only) > 100

    mask, summary = run_sam2(direct, tmp_path, *args)
    assert differ(mask, replayed) == 0, f"{differ(mask, replayed)} pixels differ from the click-by-click replay"
    assert summary["decodes"] == 3
    assert summary["prompt"] == {"points": [[a.x, a.y, 1], [b.x, b.y, 0], [c.x, c.y, 1]], "box": None}

    mask, summary = run_sam2(direct, tmp_path, *args, "--all-at-once")
    assert differ(mask, at_once) == 0 and summary["decodes"] == 1


def test_the_chosen_candidate_is_the_mask_written(sam2, tmp_path):
    direct, described = sam2
    click = [Prompt((Point(*described[2]["point"]),))]
    _, obj = direct.run(click)
    best = obj.current.candidates.best
    masks = [direct.run(click, candidate)[0] for candidate in range(3)]
    others = [k for k in range(3) if differ(masks[k], masks[best]) > 100]
    assert others, "the three candidates should differ for this click"
    for candidate in [*others, best]:
        mask, summary = run_sam2(
            direct, tmp_path, "--point", "{},{}".format(*described[2]["point"]), "--candidate", candidate
        )
        assert summary["mask_index"] == candidate
        assert differ(mask, masks[candidate]) == 0, f"--candidate {candidate} wrote another mask"
    mask, summary = run_sam2(direct, tmp_path, "--point", "{},{}".format(*described[2]["point"]))
    assert summary["mask_index"] == best and differ(mask, masks[best]) == 0


def test_a_box_is_given_by_any_two_opposite_corners_and_stays_with_the_points(sam2, tmp_path):
    direct, described = sam2
    x, y, w, h = described[2]["box"]
    box = Box(x - 3, y - 3, x + w + 3, y + h + 3)
    point = Point(*described[2]["point"])
    wanted, _ = direct.run([Prompt(box=box), Prompt((point,), box)])
    as_dragged, _ = direct.run(
        [Prompt(box=Box(box.x1, box.y0, box.x0, box.y1)), Prompt((point,), Box(box.x1, box.y0, box.x0, box.y1))]
    )
    box_dropped, _ = direct.run([Prompt(box=box), Prompt((point,))])
    assert differ(wanted, as_dragged) > 100 and differ(wanted, box_dropped) > 100

    for corners in ((box.x1, box.y1, box.x0, box.y0), (box.x1, box.y0, box.x0, box.y1)):  # dragged up-left, down-left
        mask, summary = run_sam2(
            direct, tmp_path, "--box", ",".join(f"{v:g}" for v in corners), "--point", f"{point.x:g},{point.y:g}"
        )
        assert summary["prompt"] == {"points": [[point.x, point.y, 1]], "box": [box.x0, box.y0, box.x1, box.y1]}
        assert summary["decodes"] == 2
        assert differ(mask, wanted) == 0, f"{differ(mask, wanted)} pixels differ for the corners {corners}"


def test_a_published_model_folder_without_its_encoder_will_do(scene, tmp_path):
    """site/models/NAME/ (tools/demos.py) holds model.json and the decoders, never the encoder: the README's
    own example runs on it."""
    _, model, bundle, _, described = scene
    published = tmp_path / "published"
    published.mkdir()
    for name in ("model.json", "decoder.onnx"):
        shutil.copyfile(model / name, published / name)
    x, y = described[1]["point"]
    result = run("--demo", bundle, "--model", published, "--point", f"{x},{y}", "--out", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr
    (published / "decoder.onnx").unlink()
    result = run("--demo", bundle, "--model", published, "--point", f"{x},{y}", "--out", tmp_path / "n.png")
    assert result.returncode == 1 and "decoder.onnx (decoder), which is missing" in result.stderr


def assert_refused(result, out: Path, message: str) -> None:
    """Exit 1 with one `segment: error:` line saying `message`, no traceback, and no file left behind."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("segment: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()
    if out.parent.is_dir():
        assert not list(out.parent.glob(f".{out.name}.*")), "a partial file was left behind"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--point", "5000,10"], "outside"),
        (["--point", "10,10", "--model", "{folder}/nope"], "no model.json"),
    ],
)
def test_errors_are_clear(scene, tmp_path, args, message):
    folder, model, bundle, _, _ = scene
    filled = [a.format(folder=folder) for a in args]
    if "--model" not in filled:
        filled += ["--model", str(model)]
    result = run("--demo", bundle, *filled, "--out", tmp_path / "m.png")
    assert_refused(result, tmp_path / "m.png", message)


@pytest.mark.parametrize(
    "demo_json, message",
    [
        (b"{not json", "demo.json is not valid JSON"),
        (b"\xc3\x28{}", "demo.json is not valid JSON"),  # not UTF-8
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"bundle": "shapes.png.msgpack"}', "'model' (the model folder"),
        (b'{"bundle": 5, "model": "../baseline"}', "'bundle' (the bundle file"),
        (b'{"bundle": "shapes.png.msgpack", "model": ["../baseline"]}', "'model' (the model folder"),
        (b'{"bundle": "", "model": "../baseline"}', "'bundle' (the bundle file"),
        (b'{"bundle": ".", "model": "../baseline"}', "Is a directory"),
        (b'{"bundle": "nope.msgpack", "model": "../baseline"}', "No such file"),
        (b'{"bundle": "demo.json", "model": "../baseline"}', "MessagePack"),
        (b'{"bundle": "shapes.png.msgpack", "model": "../nope"}', "no model.json"),
    ],
)
def test_an_invalid_demo_json_is_refused_with_a_message(scene, tmp_path, demo_json, message):
    folder, _, bundle, _, _ = scene
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copyfile(bundle, demo / "shapes.png.msgpack")
    (tmp_path / "baseline").symlink_to(folder / "baseline")
    (demo / "demo.json").write_bytes(demo_json)
    result = run("--demo", demo, "--point", "10,10", "--out", tmp_path / "m.png")
    assert_refused(result, tmp_path / "m.png", message)


def test_a_demo_folder_is_read_through_its_demo_json(scene, tmp_path):
    folder, _, bundle, _, described = scene
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copyfile(bundle, demo / "shapes.png.msgpack")
    (demo / "demo.json").write_text(json.dumps({"bundle": "shapes.png.msgpack", "model": str(folder / "baseline")}))
    result = run("--demo", demo, "--point", "{},{}".format(*described[1]["point"]), "--out", tmp_path / "m.png")
    assert result.returncode == 0, result.stderr


def without_root_override() -> list[str]:
    """Root writes into a read-only folder anyway; without CAP_DAC_OVERRIDE it cannot, as anyone else."""
    if os.geteuid() != 0:
        return []
    assert shutil.which("setpriv"), "running as root, this test needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize(
    "out, message",
    [
        ("{tmp}", "is a folder"),
        ("{tmp}/locked/mask.png", "Permission denied"),  # a read-only folder
        ("{tmp}/locked/new/mask.png", "Permission denied"),  # a missing parent that cannot be made
        ("{tmp}/a-file.txt/mask.png", "part of its folder path is a file"),
        ("{tmp}/a-file.txt/more/mask.png", "part of its folder path is a file"),
    ],
)
def test_an_out_that_cannot_be_written_is_refused_with_a_message(scene, tmp_path, out, message):
    _, model, bundle, _, _ = scene
    (tmp_path / "a-file.txt").write_text("mine\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = Path(out.format(tmp=tmp_path))
    try:
        result = subprocess.run(
            [
                *without_root_override(),
                *SEGMENT,
                "--demo",
                str(bundle),
                "--model",
                str(model),
                "--point",
                "10,10",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        locked.chmod(0o755)
    if out == tmp_path:
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    else:
        assert_refused(result, out, message)
    assert (tmp_path / "a-file.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file.txt", "locked"] and not any(locked.iterdir())


def limit_memory() -> None:
    """The child may map 4 GiB at most, so that a huge allocation fails at once on this shared machine
    instead of taking its memory (onnxruntime and numpy need far less)."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


# segment.py with the bundle reader's pixel cap lifted: what a cap too high, or none, would leave to memory.
WITHOUT_PIXEL_CAP = (
    "import sys; from pyapp import contract; contract.MAX_PHOTO_PIXELS = 1 << 40; "
    "from samtab_tools import segment; sys.exit(segment.main(sys.argv[1:]))"
)


@pytest.mark.parametrize("cap", ["as it is", "pixel cap lifted"])
def test_a_bundle_that_declares_a_huge_photo_gets_a_message(scene, tmp_path, cap):
    """A bundle may carry a real photo's embeddings but declare 60000x60000: its masks would take 14 GB
    (float32 logits at that size). The bundle reader refuses it (pyapp.contract.MAX_PHOTO_PIXELS); without
    that cap the allocation fails (MemoryError, here within a 4 GiB limit). Either way: one line, exit 1."""
    _, model, bundle, _, _ = scene
    document = msgpack.unpackb(bundle.read_bytes())  # a real bundle, its declared size changed
    document["image"].update(width=60000, height=60000)
    huge = tmp_path / "huge.msgpack"
    huge.write_bytes(msgpack.packb(document, use_bin_type=True))
    args = ["--demo", huge, "--model", model, "--point", "100,100", "--out", tmp_path / "m.png"]
    command = SEGMENT if cap == "as it is" else [sys.executable, "-c", WITHOUT_PIXEL_CAP]
    result = subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=300, preexec_fn=limit_memory
    )
    assert_refused(result, tmp_path / "m.png", "declares a 60000x60000 photo")
    if cap == "pixel cap lifted":
        assert "out of memory" in result.stderr


def raise_memory_error(*args, **kwargs):
    raise MemoryError


@pytest.mark.parametrize(
    "where, message",
    [
        ("read_bundle", "out of memory while reading"),
        ("Segmenter.mask", "out of memory: the bundle declares a 960x640 photo"),
        ("png", "out of memory: the bundle declares a 960x640 photo"),
    ],
)
def test_running_out_of_memory_anywhere_gets_a_message(scene, tmp_path, monkeypatch, capsys, where, message):
    _, model, bundle, _, _ = scene
    owner, _, name = where.rpartition(".")
    monkeypatch.setattr(getattr(segment, owner) if owner else segment, name, raise_memory_error)
    code = segment.main(
        ["--demo", str(bundle), "--model", str(model), "--point", "10,10", "--out", str(tmp_path / "m.png")]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("segment: error: ") and message in err, err
    assert not (tmp_path / "m.png").exists()


def test_a_decoder_onnxruntime_cannot_load_is_refused(scene, tmp_path):
    _, model, bundle, _, _ = scene
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copyfile(model / "model.json", broken / "model.json")
    (broken / "decoder.onnx").write_bytes(b"not an onnx file")
    result = run("--demo", bundle, "--model", broken, "--point", "10,10", "--out", tmp_path / "m.png")
    assert_refused(result, tmp_path / "m.png", "onnxruntime cannot load")


def test_a_bundle_of_another_model_is_refused(scene, tmp_path):
    folder, _, bundle, _, _ = scene
    other = folder / "other-model"
    baseline_model.build(other)
    info = json.loads((other / "model.json").read_text())
    info["name"] = "another model"
    (other / "model.json").write_text(json.dumps(info))
    result = run("--demo", bundle, "--model", other, "--point", "10,10", "--out", tmp_path / "m.png")
    assert_refused(result, tmp_path / "m.png", "another model")


def test_point_and_box_arguments_are_checked(scene, tmp_path):
    _, model, bundle, _, _ = scene
    for bad in (["--point", "1,2,3"], ["--point", "a,b"], ["--box", "1,2,3"]):
        result = run("--demo", bundle, "--model", model, *bad, "--out", tmp_path / "m.png")
        assert result.returncode == 2 and "expected" in result.stderr
    assert run("--demo", bundle, "--model", model, "--out", tmp_path / "m.png").returncode == 2


def test_everything_finds_each_object_of_the_shapes_scene_with_the_baseline(scene, tmp_path):
    """--everything on the synthetic scene: each known object is one of the masks written (IoU >= 0.9), the
    masks are PNGs at the photo's size, best first, and coco.json holds them for pycocotools. The baseline
    scores thin shapes 0.71-0.77 (its ring), so its predicted-IoU threshold is 0.7 here, not Meta's 0.8."""
    from pycocotools import mask as coco_mask

    folder, model, bundle, objects, _ = scene
    out = tmp_path / "everything"
    result = run("--demo", bundle, "--model", model, "--everything", "--points-per-side", 16,
                 "--pred-iou-thresh", 0.7, "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["decodes"] == 256
    files = [entry["file"] for entry in summary["masks"]]
    assert sorted(path.name for path in out.iterdir()) == sorted([*files, "coco.json"])
    scores = [entry["predicted_iou"] for entry in summary["masks"]]
    assert scores == sorted(scores, reverse=True)
    masks = [read_mask(out / name) for name in files]
    for known in objects:
        best = max((known["mask"] & m).sum() / (known["mask"] | m).sum() for m in masks)
        assert best >= 0.9, known["name"]
    document = json.loads((out / "coco.json").read_text())
    assert len(document["annotations"]) == len(masks)
    for annotation, mask in zip(document["annotations"], masks, strict=True):
        height, width = mask.shape
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        else:
            rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
        read = coco_mask.decode(rle).astype(bool)
        assert (read & mask).sum() / (read | mask).sum() >= 0.98


def test_everything_refuses_a_folder_with_files_and_prompts(scene, tmp_path):
    folder, model, bundle, _, _ = scene
    (tmp_path / "kept.txt").write_text("mine")
    result = run("--demo", bundle, "--model", model, "--everything", "--out", tmp_path)
    assert result.returncode == 1 and "must be a new or empty folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]
    result = run("--demo", bundle, "--model", model, "--everything", "--point", "5,5", "--out", tmp_path / "x")
    assert result.returncode == 2 and "--everything takes no --point" in result.stderr
