"""Parity with Meta: samtab's whole pipeline against Meta's SAM2 predictor path, on the same seeded weights.

OURS   tools/encode.py's encode_photo (pyapp.image.open_photo -> encoder_input -> encoder.onnx in onnxruntime ->
       pyapp.bundle, written as float32; the float16 bundle is written from the same encoder output) ->
       pyapp.bundle.read_bundle -> pyapp.segmenter.Segmenter (pyapp.feeds) -> decoder.onnx in onnxruntime ->
       pyapp.postprocess, replaying each prompt as tools/segment.py does (its `prompts`: box first, then one
       click at a time, every decode after the first refining the previous chosen low-res logits).
META   tools/meta_reference.MetaPredictor: SAM2ImagePredictor.set_image / predict re-created without
       torchvision (ToTensor, antialiased bilinear Resize((1024, 1024)), Normalize; forward_image,
       _prepare_backbone_features, + no_mem_embed; box corners as points with labels 2, 3 before the clicks,
       sam_prompt_encoder(points, boxes=None, masks), sam_mask_decoder(multimask_output=True),
       postprocess_masks' bilinear upsampling of the unclamped logits, > 0), on Meta's PyTorch model built
       with the same seed, refining with `mask_input=low_res_logits[best][None]`. Each step's arguments are
       built from the prompt set's own clicks and box (`meta_steps`), never through pyapp.prompt or
       `segment.prompts`, so a replay that loses the box or a click cannot reach both sides: the points each
       of our decodes feeds must be those Meta's prompt encoder gets for the same step.

The model is SAM2.1 tiny, random init, seed 0, exported once for this module with
`tools/export_sam2.py --random-init --seed 0 --no-check`. Three photos from scikit-image: coffee (600x400 PNG,
stretched up), chelsea saved as a JPEG with EXIF orientation 6 (451x300 stored, 300x451 upright; Meta gets
the decoded pixels turned with np.rot90, not through Pillow's exif_transpose) and retina cropped to 1411x700
(PNG; shrunk across and stretched down, so the antialiasing of the resize matters). 23 prompt sets per
photo (6 single clicks, two of them on the corner pixels; 5 sets of 2-5 points with exclusions; 4 boxes, one
the whole photo; 3 box + points; 3 click-by-click replays of 2-3 points and 2 of a box then clicks, each
decode after the first with mask_input): 30-32 decodes per photo. Masks are compared at the photo's size by
min(foreground IoU, background IoU) (shared SAM2.md: random-init masks cover most of a photo), on the
best-scored candidate of each side; the chosen indices must agree.

Measured on the 2-core CPU machine (torch 2.13.0+cpu, onnxruntime 1.31.1, Pillow 13.0, numpy 2.4), over all
30-32 decodes of each photo:

    photo              encoder input diff   features   fp32 IoU          fp32 logits  fp16 IoU          fp16 logits
                       max       mean       max diff   min      mean     max diff     min      mean     max diff
    coffee 600x400     7.2e-07   3.0e-08    3.8e-06    0.99996  1.00000  3.1e-06      0.99915  0.99964  1.6e-04
    chelsea 300x451    6.0e-07   3.4e-08    3.6e-06    1.00000  1.00000  1.5e-06      0.99922  0.99962  1.1e-04
    retina 1411x700    1.1e-06   8.5e-08    3.3e-06    0.99998  1.00000  2.4e-06      0.99911  0.99949  1.5e-04

Logits: the chosen candidate upsampled to the photo's size, ours against Meta's, both from the ±32-clamped
low-res logits (random-init logits stay within ±0.5, so clamping changes nothing here; see below). The
low-res logits themselves differ by at most 7.9e-07 (fp32) and 1.9e-04 (fp16). The chosen candidate agreed
in all 93 decodes, fp32 and fp16 (Meta's smallest margin between its two best scores: 0.0093). The fp16 IoUs
fall below 1 because random-init logits are tiny (±0.5), so fp16's ~1e-4 moves pixels across 0.

Preprocessing: Meta resizes the float tensor with F.interpolate(bilinear, antialias=True) (torchvision's
tensor Resize; sam2 1.1.0 needs torchvision >= 0.20.1, where antialias defaults to True), samtab with
Pillow's BILINEAR on float "F" planes. Both implement the same filter (torch's antialiased kernel is a port
of Pillow's; for enlarging it is plain bilinear with edge clamping), so the encoder inputs agree to float
rounding (max 1.1e-06 after normalisation, table above), enlarging and shrinking alike. (Without
antialiasing, which shrinking needs, the retina crop's input would differ by up to 0.10, mean 1.7e-03;
enlarging, torch's antialiased and plain bilinear agree to 5e-07.) Running Meta's
encoder on samtab's input instead of its own moved the features by at most 3.1e-06 (measured once while
writing this; the end-to-end figures above include it). pyapp.image.encoder_input is left as it was.

What differs between the export and Meta's predictor, and what the tests below pin down:

- Padding point: none. Meta's predictor always calls the prompt encoder with boxes=None (a box goes in as
  two points), so `_embed_points(pad=True)` appends the (0, 0, label -1) point for clicks, boxes and both,
  exactly as samexporter's decoder does in-graph. Only a direct `sam_prompt_encoder(boxes=...)` call, which
  neither Meta predictor makes, skips it: on a box alone that moves the low-res logits by 0.08-0.11 (of
  ±0.3-0.4) and the masks' min IoU to 0.23-0.56. The export follows the predictor; the test checks both.
- Clamping: a real, small difference. The export clamps the low-res logits to ±32 in-graph and samtab
  upsamples the clamped values; Meta upsamples the UNCLAMPED logits and clamps only the low-res logits it
  returns (those fed back as mask_input, which therefore agree). A photo pixel can only change if its 2x2
  block of low-res cells holds a logit beyond ±32 and one of the other sign, i.e. on an edge where the
  logits jump by more than 32 within a cell or two. Measured: Meta's random-init logits scaled to ±100
  (speckled, far more edge than a real mask) flip 0.8-2.0 % of pixels (min IoU 0.86-0.94); a smooth disc
  with a logit slope of 8 or 22 per cell changes nothing, 32 per cell 4 of 987,700 pixels, 64 per cell 311
  (edge moved <= 0.08 cell), a step edge (1000 per cell) 1353 pixels (edge moved <= 0.42 cell, about
  W/600 photo pixels; min IoU 0.9956). Left as is here: removing it means changing the exported decoder
  (samexporter's wrapper clamps) to return unclamped logits, and mask_input would then need clamping in
  pyapp; real-weight logits would tell whether it is worth it.
- Box handling: none. Meta puts the corners (labels 2, 3) before the clicks, as pyapp.prompt does; every box
  decode above (alone, with points, first in a replay) matches. samtab orders a dragged box's corners with
  Box.from_corners; Meta takes the XYXY it is given.
- Coordinates: x*1024/W in float64 then float32 (samtab) vs in float32 (Meta): float rounding only. samtab
  refuses clicks outside the photo, which Meta would accept.

These tests need torch, Meta's sam2 and samexporter (`bash tools/setup.sh --test`); without them they fail,
saying so, rather than skip. About 60 s on the 2-core machine (the export 12 s; per photo about 2.5 s for
onnxruntime's encoder, 4-6 s for Meta's and 8-10 s for the decodes of the three sides). `pytest -s` prints
the figures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyapp import bundle as bundles
from pyapp import contract
from pyapp import image as images
from pyapp.postprocess import upsample
from pyapp.prompt import Box, Point
from pyapp.runner import OnnxRuntimeRunner
from pyapp.segmenter import Segmenter
from pyapp.segmenter import record as record_answer
from samtab_tools import encode, export_sam2, meta_reference, modelio, segment

ROOT = Path(__file__).resolve().parents[2]
SEED = 0

# Required (the issue's acceptance figures) and tolerances a few times above what was measured.
IOU_FP32 = 0.999
IOU_FP16 = 0.99
INPUT_TOLERANCE = 1e-5  # measured 1.1e-06
FEATURE_TOLERANCE = 1e-4  # measured 4.3e-06
LOGITS_FP32 = 1e-4  # measured 3.3e-06
LOGITS_FP16 = 2e-3  # measured 1.9e-04
PROMPT_TOLERANCE = 1e-3  # model-space coordinates (0-1024) in float32: rounding only
# A chosen-candidate disagreement is only excused when Meta's two best scores are closer than this.
SCORE_MARGIN = {"float32": 1e-5, "float16": 1e-3}


# --- the photos ------------------------------------------------------------------------------------------------


def _coffee(folder: Path) -> tuple[Path, np.ndarray]:
    from skimage import data

    rgb = data.coffee()  # 600x400
    path = folder / "coffee.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def _chelsea_exif6(folder: Path) -> tuple[Path, np.ndarray]:
    from skimage import data

    path = folder / "chelsea-exif6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(data.chelsea()).save(path, quality=90, exif=exif)  # 451x300 stored
    # Meta's side: the decoded pixels as stored, turned upright by hand (not through Pillow's exif_transpose).
    with Image.open(path) as stored:
        pixels = np.asarray(stored.convert("RGB"))
    return path, np.rot90(pixels, k=-1)


def _retina_crop(folder: Path) -> tuple[Path, np.ndarray]:
    from skimage import data

    rgb = np.ascontiguousarray(data.retina()[355:1055])  # 1411x700: shrunk across, stretched down
    path = folder / "retina-crop.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


PHOTOS = {"coffee": _coffee, "chelsea-exif6": _chelsea_exif6, "retina-crop": _retina_crop}


# --- the prompts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSet:
    kind: str
    points: tuple[Point, ...]
    box: Box | None
    replay: bool  # click by click with mask_input (tools/segment.py's default), or all at once


def prompt_sets(width: int, height: int, seed: int) -> list[PromptSet]:
    """23 prompt sets in the photo's pixels, reproducible from the seed."""
    rng = np.random.default_rng(seed)

    def point(include: bool = True, box: Box | None = None) -> Point:
        x0, y0, x1, y1 = (0.0, 0.0, width - 1.0, height - 1.0) if box is None else (box.x0, box.y0, box.x1, box.y1)
        return Point(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)), include)

    def box() -> Box:
        (x0, x1), (y0, y1) = np.sort(rng.uniform(0, width - 1, 2)), np.sort(rng.uniform(0, height - 1, 2))
        x1, y1 = max(x1, min(width - 1.0, x0 + width / 8)), max(y1, min(height - 1.0, y0 + height / 8))
        return Box.from_corners(float(x0), float(y0), float(x1), float(y1))

    def coin() -> bool:
        return bool(rng.integers(0, 2))

    whole = Box(0.0, 0.0, width - 1.0, height - 1.0)
    sets = [
        PromptSet("click", (Point(0.0, 0.0),), None, False),  # the corners' pixel centres
        PromptSet("click", (Point(width - 1.0, height - 1.0),), None, False),
    ]
    sets += [PromptSet("click", (point(),), None, False) for _ in range(4)]
    for _ in range(5):
        extra = int(rng.integers(0, 4))  # 2-5 points, the second one excluded
        sets.append(PromptSet("points", (point(), point(False), *(point(coin()) for _ in range(extra))), None, False))
    sets.append(PromptSet("box", (), whole, False))
    sets += [PromptSet("box", (), box(), False) for _ in range(3)]
    for _ in range(3):
        b = box()
        sets.append(
            PromptSet(
                "box + points", (point(True, b), *(point(coin(), b) for _ in range(int(rng.integers(0, 3))))), b, False
            )
        )
    for _ in range(3):
        sets.append(
            PromptSet(
                "clicks, refined", (point(), *(point(coin()) for _ in range(int(rng.integers(1, 3))))), None, True
            )
        )
    for _ in range(2):
        b = box()
        sets.append(
            PromptSet(
                "box then clicks, refined",
                (point(True, b), *(point(False, b) for _ in range(int(rng.integers(0, 2))))),
                b,
                True,
            )
        )
    return sets


def meta_steps(prompt_set: PromptSet) -> list[dict]:
    """SAM2ImagePredictor.predict's arguments (the photo's pixels, XYXY box) for each decode of a prompt set,
    built from its own clicks and box, not through pyapp.prompt or tools/segment.py (whose replay is under
    test): all at once, one call with everything; click by click, the box alone first (when there is one),
    then the box with the first 1, 2, ... clicks."""
    xy = np.array([[p.x, p.y] for p in prompt_set.points], np.float32).reshape(-1, 2)
    labels = np.array([1 if p.include else 0 for p in prompt_set.points], np.int32)
    box = prompt_set.box
    box = None if box is None else np.array([box.x0, box.y0, box.x1, box.y1], np.float32)
    if not prompt_set.replay:
        counts = [len(xy)]
    else:
        counts = ([0] if box is not None else []) + list(range(1, len(xy) + 1))
    return [
        {"point_coords": xy[:n] if n else None, "point_labels": labels[:n] if n else None, "box": box} for n in counts
    ]


def min_iou(a: np.ndarray, b: np.ndarray) -> float:
    """min(foreground IoU, background IoU) of two boolean masks (1 when both are empty, or both full)."""

    def iou(x, y):
        union = np.logical_or(x, y).sum()
        return 1.0 if union == 0 else float(np.logical_and(x, y).sum() / union)

    return min(iou(a, b), iou(~a, ~b))


# --- fixtures: the export, Meta's model, one photo at a time -------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(torch, tmp_path_factory):
    out = tmp_path_factory.mktemp("parity") / "sam2.1-tiny"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "export_sam2.py"),
            "--random-init",
            "--seed",
            str(SEED),
            "--out",
            str(out),
            "--force",
            "--no-check",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def meta(torch):
    """Meta's model with the export's weights (same config, same seed), behind the predictor's path."""
    return meta_reference.MetaPredictor(export_sam2.build_model("sam2.1_hiera_t", seed=SEED))


@pytest.fixture(scope="module")
def ours(model_dir):
    info = modelio.read_model_folder(model_dir)
    encoder = encode.Encoder(model_dir, info, "CPUExecutionProvider")  # tools/encode.py's session wrapper
    runner = OnnxRuntimeRunner(model_dir / info.files["decoder"])
    return info, encoder, runner


@dataclass
class Decode:
    """One decode compared: a prompt set's step."""

    kind: str
    step: int
    refined: bool  # had a mask_input
    iou: dict[str, float] = field(default_factory=dict)  # per bundle dtype
    logits: dict[str, float] = field(default_factory=dict)  # max abs diff of the upsampled chosen logits
    low_res: dict[str, float] = field(default_factory=dict)  # max abs diff of all three low-res logits
    chosen: dict[str, tuple[int, int]] = field(default_factory=dict)  # (ours, Meta's)
    # The points fed (point_coords, model space) against those Meta's prompt encoder got: max abs diff, or
    # inf when their number or labels differ.
    prompt_diff: float = 0.0
    margin: float = 0.0  # Meta's best score minus its second best
    meta_max_logit: float = 0.0


@dataclass
class Case:
    name: str
    width: int
    height: int
    exif_upright: bool
    input_diff: tuple[float, float]  # encoder input: max abs, mean abs
    feature_diff: float
    decodes: list[Decode]
    steps: list[tuple[str, int, int]]  # per prompt set: kind, our decodes, Meta's
    prompt_sets: int
    seconds: float
    meta_low_res: np.ndarray  # one decode's low-res logits (3, 256, 256), for the clamping test
    meta_features: dict[str, np.ndarray]

    def figures(self, dtype: str) -> tuple[float, float, float]:
        ious = [d.iou[dtype] for d in self.decodes]
        return min(ious), float(np.mean(ious)), max(d.logits[dtype] for d in self.decodes)


@pytest.fixture(scope="module", params=list(PHOTOS))
def case(request, tmp_path_factory, ours, meta) -> Case:
    """Encode the photo once on each side, then replay every prompt set on the three sides."""
    started = time.perf_counter()
    info, encoder, runner = ours
    folder = tmp_path_factory.mktemp(request.param)
    path, meta_rgb = PHOTOS[request.param](folder)

    # Ours: tools/encode.py's encode_photo writes a float32 bundle; the float16 one is what --dtype float16
    # writes from the same encoder output.
    result = encode.encode_photo(path, encoder, folder / "bundles", dtype="float32", force=False, preview_edge=512)
    assert result.status == "encoded", result.message
    bundle32 = bundles.read_bundle(result.bundle.read_bytes())
    bundle16 = bundles.read_bundle(
        bundles.write_bundle(
            bundle32.embeddings(),
            width=bundle32.width,
            height=bundle32.height,
            image_sha256=bundle32.image_sha256,
            model_name=bundle32.model_name,
            dtype="float16",
        )
    )
    assert (bundle32.dtype, bundle16.dtype) == ("float32", "float16")
    photo = images.open_photo(path)
    width, height = photo.width, photo.height
    exif_upright = np.array_equal(np.asarray(photo.rgb), meta_rgb)

    # Meta: its preprocessing and image encoder, once.
    meta_input = meta_reference.preprocess(meta_rgb).numpy()
    diff = np.abs(images.encoder_input(photo.rgb) - meta_input)
    meta.set_input(meta_input, (meta_rgb.shape[0], meta_rgb.shape[1]))
    meta_features = meta.embeddings()
    ours_features = bundle32.embeddings()
    feature_diff = max(float(np.abs(ours_features[n] - meta_features[n]).max()) for n in contract.EMBEDDING_SHAPES)

    segmenters = {
        dtype: Segmenter(b, info.name, runner.input_names, image_sha256=photo.sha256)
        for dtype, b in (("float32", bundle32), ("float16", bundle16))
    }
    sets = prompt_sets(width, height, seed=list(PHOTOS).index(request.param))
    decodes, steps, sample = [], [], None
    for prompt_set in sets:
        objects = {dtype: s.objects.new(prompt_set.kind) for dtype, s in segmenters.items()}
        previous = None  # Meta's chosen low-res logits, (1, 256, 256)
        ours_steps = segment.prompts(list(prompt_set.points), prompt_set.box, all_at_once=not prompt_set.replay)
        theirs = meta_steps(prompt_set)
        steps.append((prompt_set.kind, len(ours_steps), len(theirs)))
        for step, (prompt, meta_args) in enumerate(zip(ours_steps, theirs)):
            masks, scores, low_res = meta.predict(
                **meta_args, mask_input=previous, multimask_output=True, return_logits=True
            )
            meta_coords, meta_labels = meta.prompt(**meta_args)
            best = int(np.argmax(scores))
            top = np.sort(scores)
            record = Decode(
                prompt_set.kind,
                step,
                previous is not None,
                margin=float(top[-1] - top[-2]),
                meta_max_logit=float(np.abs(masks).max()),
            )
            sample = low_res if sample is None else sample
            meta_logits_clamped = meta_reference.upsample_logits(low_res, height, width).numpy()
            previous = low_res[best][None]
            for dtype, segmenter in segmenters.items():
                obj = objects[dtype]
                obj.push(prompt)
                feeds = segmenter.feeds(obj.current)
                assert feeds["has_mask_input"][0] == (1.0 if record.refined else 0.0)
                same = feeds["point_labels"].shape == meta_labels.shape and np.array_equal(
                    feeds["point_labels"], meta_labels.astype(np.float32)
                )
                off = float(np.abs(feeds["point_coords"] - meta_coords).max()) if same else float("inf")
                record.prompt_diff = max(record.prompt_diff, off)
                candidates = record_answer(obj.current, runner.run(feeds))
                chosen = candidates.best
                # Compared with Meta's candidate of the same index (they agree unless excused, see the test).
                logits = upsample(candidates.logits[chosen], width, height)
                record.chosen[dtype] = (chosen, best)
                record.iou[dtype] = min_iou(segmenter.mask(obj), masks[chosen] > meta_reference.MASK_THRESHOLD)
                record.logits[dtype] = float(np.abs(logits - meta_logits_clamped[chosen]).max())
                record.low_res[dtype] = float(np.abs(candidates.low_res_logits - low_res).max())
            decodes.append(record)
    return Case(
        request.param,
        width,
        height,
        exif_upright,
        (float(diff.max()), float(diff.mean())),
        feature_diff,
        decodes,
        steps,
        len(sets),
        time.perf_counter() - started,
        sample,
        meta_features,
    )


# --- the tests -----------------------------------------------------------------------------------------------------


def test_the_photo_is_upright_and_preprocessed_as_meta_does(case):
    assert case.exif_upright, f"{case.name}: open_photo's upright RGB is not the pixels Meta gets"
    if case.name == "chelsea-exif6":
        assert (case.width, case.height) == (300, 451)
    worst, mean = case.input_diff
    assert worst <= INPUT_TOLERANCE, (
        f"{case.name}: encoder input differs from Meta's (antialiased bilinear "
        f"resize) by up to {worst:.3g}, mean {mean:.3g}"
    )
    assert case.feature_diff <= FEATURE_TOLERANCE, f"{case.name}: features differ by up to {case.feature_diff:.3g}"


def test_the_prompts_cover_what_the_issue_asks(case):
    assert case.prompt_sets >= 20
    kinds = {d.kind for d in case.decodes}
    assert kinds == {"click", "points", "box", "box + points", "clicks, refined", "box then clicks, refined"}
    assert sum(d.refined for d in case.decodes) >= 5


def test_each_step_feeds_the_prompt_metas_predictor_gets(case):
    """tools/segment.py's replay (its `prompts`), through pyapp's feeds, against the prompt set itself: as many
    decodes, and each feeds the points and labels Meta's prompt encoder gets for that step: the box's corners
    first, at every step once drawn, then every click so far."""
    other = [(kind, ours, theirs) for kind, ours, theirs in case.steps if ours != theirs]
    assert not other, f"{case.name}: the replay decoded other steps than its clicks and box make: {other}"
    worst = max(d.prompt_diff for d in case.decodes)
    print(
        f"\n{case.name}: the points fed differ from those Meta's prompt encoder gets by up to {worst:.2g} "
        f"(model space, 0-1024)"
    )
    for d in case.decodes:
        assert d.prompt_diff <= PROMPT_TOLERANCE, (
            f"{case.name} {d.kind} step {d.step}: the points fed are not Meta's "
            f"({'other points or labels' if d.prompt_diff == float('inf') else f'off by {d.prompt_diff:.3g}'})"
        )


@pytest.mark.parametrize(
    "dtype, required, logits_tolerance", [("float32", IOU_FP32, LOGITS_FP32), ("float16", IOU_FP16, LOGITS_FP16)]
)
def test_masks_match_metas_predictor(case, dtype, required, logits_tolerance):
    worst_iou, mean_iou, worst_logits = case.figures(dtype)
    chosen = [d.chosen[dtype] for d in case.decodes]
    print(
        f"\n{case.name} {case.width}x{case.height} {dtype}: {len(case.decodes)} decodes from {case.prompt_sets} "
        f"prompt sets; IoU min {worst_iou:.5f} mean {mean_iou:.5f}; upsampled logits max abs diff "
        f"{worst_logits:.2g}; low-res {max(d.low_res[dtype] for d in case.decodes):.2g}; encoder input diff "
        f"max {case.input_diff[0]:.2g} mean {case.input_diff[1]:.2g}; features {case.feature_diff:.2g}; "
        f"{case.seconds:.1f} s; same candidate chosen in {sum(ours == theirs for ours, theirs in chosen)}"
        f"/{len(chosen)} (Meta's smallest best-to-second score margin {min(d.margin for d in case.decodes):.2g})"
    )
    for d in case.decodes:
        ours, theirs = d.chosen[dtype]
        assert ours == theirs or d.margin < SCORE_MARGIN[dtype], (
            f"{case.name} {d.kind} step {d.step}: chose candidate {ours}, Meta {theirs} (score margin {d.margin:.2g})"
        )
        assert d.iou[dtype] >= required, f"{case.name} {d.kind} step {d.step}: min IoU {d.iou[dtype]:.5f} < {required}"
    assert worst_logits <= logits_tolerance, f"{case.name}: upsampled logits differ by up to {worst_logits:.3g}"


def test_the_predictor_path_pads_a_box_as_the_export_does(case, meta, ours, torch):
    """Meta's predictor passes a box as two points with boxes=None, so the prompt encoder appends the padding
    point, as the export does in-graph. The prompt encoder's own `boxes=` path (no padding point), which the
    predictor never takes, gives other masks: this test would see the difference."""
    _, _, runner = ours
    meta.set_features(case.meta_features, (case.height, case.width))
    box = np.array([0.2 * case.width, 0.3 * case.height, 0.7 * case.width, 0.8 * case.height], np.float32)
    model = meta.model
    _, predictor_scores, predictor_low_res = meta.predict(box=box, multimask_output=True)

    model_box = meta.transform_coords(torch.from_numpy(box).reshape(1, 2, 2)).reshape(1, 4)
    with torch.no_grad():
        sparse, dense = model.sam_prompt_encoder(points=None, boxes=model_box, masks=None)
        unpadded, _, _, _ = model.sam_mask_decoder(
            image_embeddings=meta.features["image_embed"],
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=meta.features["high_res_feats"],
        )
    coords = model_box.reshape(1, 2, 2).numpy()
    feeds = {
        **case.meta_features,
        "point_coords": coords,
        "point_labels": np.array([[contract.LABEL_BOX_TOP_LEFT, contract.LABEL_BOX_BOTTOM_RIGHT]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    exported = runner.run(feeds)["masks"][0]
    assert np.abs(exported - predictor_low_res).max() <= LOGITS_FP32
    moved = float(np.abs(unpadded[0].numpy() - predictor_low_res).max())
    best = int(np.argmax(predictor_scores))
    agreement = min_iou(
        upsample(unpadded[0, best].numpy(), case.width, case.height) > 0,
        upsample(predictor_low_res[best], case.width, case.height) > 0,
    )
    print(
        f"\n{case.name}: the boxes= path (no padding point) moves the low-res logits by {moved:.3g} "
        f"(their range: {np.abs(predictor_low_res).max():.3g}); min IoU of the masks {agreement:.3f}"
    )
    assert moved > 1e-2


def test_clamping_before_upsampling_only_moves_saturated_edges(case):
    """samtab upsamples the decoder's ±32-clamped logits, Meta the unclamped ones. Identical while the logits
    stay within ±32 (always, with random weights); beyond, only pixels whose 2x2 source block holds a
    saturated cell and a cell of the other sign can change. Measured on Meta's logits scaled up to ±100
    (speckled random-init logits: far more edges than a real mask has)."""
    assert max(d.meta_max_logit for d in case.decodes) < meta_reference.LOGIT_CLAMP  # so the IoUs above are exact
    low_res = case.meta_low_res.astype(np.float32)
    scaled = low_res * (100.0 / np.abs(low_res).max())
    meta_mask = meta_reference.upsample_logits(scaled, case.height, case.width).numpy() > 0
    our_mask = upsample(np.clip(scaled, -32, 32), case.width, case.height) > 0
    changed = meta_mask != our_mask

    # Each photo pixel blends a 2x2 block of low-res cells (align_corners=False, clamped at the border); as
    # clamping keeps signs, a pixel can only change if its block holds a saturated cell and a cell of the
    # opposite sign: on the mask's edge, next to a logit beyond ±32.
    def sources(out_size):
        low = np.minimum(np.floor(_sources(out_size)[0]).astype(int), 255)
        return low, np.minimum(low + 1, 255)

    (r0, r1), (c0, c1) = sources(case.height), sources(case.width)
    block = np.stack([scaled[:, r[:, None], c[None, :]] for r in (r0, r1) for c in (c0, c1)])
    high, low = block.max(axis=0), block.min(axis=0)
    allowed = ((high > 32) & (low < 0)) | ((low < -32) & (high > 0))
    assert not (changed & ~allowed).any(), f"{case.name}: clamping changed pixels away from saturated edges"
    agreement = min(min_iou(o, m) for o, m in zip(our_mask, meta_mask))
    print(
        f"\n{case.name}: with logits scaled to ±100, clamping before upsampling flips {changed.sum()} of "
        f"{changed.size} pixels ({changed.mean():.2%}); min IoU {agreement:.4f}"
    )


def _sources(out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The low-res source position of each output pixel (bilinear, align_corners=False, 256 cells)."""
    return np.maximum((np.arange(out_size) + 0.5) * 256 / out_size - 0.5, 0), np.arange(out_size)


@pytest.mark.parametrize("slope", [8.0, 22.0, 32.0, 64.0, 1000.0])
def test_clamping_moves_a_smooth_edge_by_at_most_half_a_cell(torch, slope):
    """A disc-shaped mask whose logits rise by `slope` per low-res cell away from its edge (radius 80 cells),
    upsampled to 1411x700: clamping first changes nothing unless the logits jump by more than 32 within a 2x2
    block of cells across the edge (a slope above 32/sqrt(2) per cell), and then moves the edge by at most
    about half a cell."""
    width, height, radius = 1411, 700, 80.3
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    logits = (slope * (radius - np.hypot(y - 127.6, x - 128.2))).astype(np.float32)
    meta_mask = meta_reference.upsample_logits(logits, height, width).numpy() > 0
    our_mask = upsample(np.clip(logits, -32, 32), width, height) > 0
    changed = meta_mask != our_mask
    source_y, source_x = _sources(height)[0], _sources(width)[0]
    off_edge = np.abs(np.hypot(source_y[:, None] - 127.6, source_x[None, :] - 128.2) - radius)
    moved = float(off_edge[changed].max()) if changed.any() else 0.0
    print(
        f"\nslope {slope:g}/cell: {changed.sum()} of {changed.size} pixels change, at most {moved:.2f} cells "
        f"from the edge; min IoU {min_iou(our_mask, meta_mask):.5f}"
    )
    if slope * 2**0.5 <= 32:
        assert not changed.any()
    assert moved <= 0.75
