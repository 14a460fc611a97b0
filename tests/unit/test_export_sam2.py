"""tools/export_sam2.py: SAM2.1 tiny with random weights (seed 0) is exported once for this module, with
--hires, through the command line; onnxruntime (CPU) must then give what samexporter's PyTorch wrappers give.

These tests need torch, Meta's sam2 and samexporter (`bash tools/setup.sh --test` installs them); without
them they fail, saying so, rather than skip.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pyapp import contract
from pyapp.model import parse_model_info
from samtab_tools import export_sam2, modelio

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "export_sam2.py"
TOLERANCE = 1e-4
LOW_RES = (1, contract.MASK_CANDIDATES, contract.LOW_RES_MASK_SIZE, contract.LOW_RES_MASK_SIZE)
HIRES = (1, contract.MASK_CANDIDATES, contract.HIRES_MASK_SIZE, contract.HIRES_MASK_SIZE)


def run_tool(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def exported(torch, tmp_path_factory):
    """The exported model folder and the tool's output. The folder exists beforehand, holding a stale file,
    so --force is exercised too."""
    out = tmp_path_factory.mktemp("export") / "sam2.1-tiny"
    out.mkdir()
    (out / "stale.txt").write_text("--force replaces the whole folder\n")
    started = time.perf_counter()
    result = run_tool("--random-init", "--seed", "0", "--out", out, "--hires", "--force")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    print(f"\nexport (tiny, --hires, --check) took {time.perf_counter() - started:.1f} s\n{log}")
    return out, log


@pytest.fixture(scope="module")
def info(exported):
    out, _ = exported
    return modelio.read_model_folder(out)


@pytest.fixture(scope="module")
def sessions(exported, info):
    out, _ = exported
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return {
        part: ort.InferenceSession(str(out / name), options, providers=["CPUExecutionProvider"])
        for part, name in info.files.items()
    }


@pytest.fixture(scope="module")
def reference(torch):
    """samexporter's PyTorch wrappers around the same seed-0 model, built in this process."""
    model = export_sam2.build_model("sam2.1_hiera_t", seed=0)
    encoder, decoder, decoder_hires = export_sam2.wrappers(model)

    def run(module, inputs: dict) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in module(*(torch.from_numpy(v) for v in inputs.values()))]

    return {
        "encoder": lambda inputs: run(encoder, inputs),
        "decoder": lambda inputs: run(decoder, inputs),
        "decoder_hires": lambda inputs: run(decoder_hires, inputs),
        "model": model,
    }


@pytest.fixture(scope="module")
def embeddings(sessions, reference):
    """(onnxruntime's, PyTorch's) encoder outputs for a photo-like image: smooth shapes plus noise,
    normalised as the contract says."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0 : contract.IMAGE_SIZE, 0 : contract.IMAGE_SIZE] / contract.IMAGE_SIZE
    rgb = np.stack([(x - 0.4) ** 2 + (y - 0.5) ** 2 < 0.08, 0.5 + 0.5 * np.sin(9 * x) * np.cos(5 * y), y])
    rgb = np.clip(rgb + rng.normal(0, 0.05, rgb.shape), 0, 1)
    mean = np.array(contract.IMAGENET_MEAN)[:, None, None]
    std = np.array(contract.IMAGENET_STD)[:, None, None]
    image = ((rgb - mean) / std)[None].astype(np.float32)
    names = list(contract.EMBEDDING_SHAPES)
    got = dict(zip(names, sessions["encoder"].run(names, {contract.ENCODER_INPUT: image})))
    want = dict(zip(names, reference["encoder"]({contract.ENCODER_INPUT: image})))
    return got, want


def prompt(points, labels, mask_input=None) -> dict[str, np.ndarray]:
    size = contract.LOW_RES_MASK_SIZE
    return {
        "point_coords": np.asarray(points, np.float32).reshape(1, -1, 2),
        "point_labels": np.asarray(labels, np.float32).reshape(1, -1),
        "mask_input": (
            np.zeros((1, 1, size, size), np.float32)
            if mask_input is None
            else np.asarray(mask_input, np.float32).reshape(1, 1, size, size)
        ),
        "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
    }


PROMPTS = {
    "one point": ([[512.0, 400.0]], [contract.LABEL_INCLUDE]),
    "three points, one excluded": (
        [[380.5, 520.0], [700.0, 250.25], [100.0, 900.0]],
        [contract.LABEL_INCLUDE, contract.LABEL_EXCLUDE, contract.LABEL_INCLUDE],
    ),
    "a box": ([[150.0, 200.0], [800.0, 760.0]], [contract.LABEL_BOX_TOP_LEFT, contract.LABEL_BOX_BOTTOM_RIGHT]),
    "a box and a point": (
        [[150.0, 200.0], [800.0, 760.0], [420.0, 480.0]],
        [contract.LABEL_BOX_TOP_LEFT, contract.LABEL_BOX_BOTTOM_RIGHT, contract.LABEL_INCLUDE],
    ),
}


def metas_decoder(torch, model, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What SAM2ImagePredictor._predict computes for the contract's decoder inputs (points already in model
    space; the prompt encoder pads them itself), before any clamping: (masks (1, 3, 256, 256), iou (1, 3)),
    the three multimask outputs."""
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        sparse, dense = model.sam_prompt_encoder(
            points=(t["point_coords"], t["point_labels"]),
            boxes=None,
            masks=t["mask_input"] if inputs["has_mask_input"][0] else None,
        )
        masks, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=t["image_embed"],
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=[t["high_res_feats_0"], t["high_res_feats_1"]],
        )
    return masks.numpy(), iou.numpy()


def assert_close(got: np.ndarray, want: np.ndarray, what: str, tolerance: float = TOLERANCE) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    diff = float(np.abs(got - want).max())
    assert diff <= tolerance, f"{what}: differs by up to {diff:.3g} (tolerance {tolerance:g})"


# --- the command line, before any work -------------------------------------------------------------------------


def test_an_existing_folder_needs_force_and_is_refused_before_any_work(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    started = time.perf_counter()
    result = run_tool("--random-init", "--seed", "0", "--out", out, timeout=60)
    assert result.returncode == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == "", "nothing (not even importing torch) may happen before the check"
    assert time.perf_counter() - started < 20
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_missing_checkpoint_is_refused(tmp_path):
    result = run_tool(
        "--checkpoint", tmp_path / "nope.pt", "--config", "sam2.1_hiera_l", "--out", tmp_path / "m", timeout=60
    )
    assert result.returncode == 1 and "not found" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_a_missing_dependency_names_the_install_commands(tmp_path):
    # samexporter made unimportable in a child process: the tool must say how to install, and not crash.
    code = (
        "import sys; sys.modules['samexporter'] = None; from samtab_tools import export_sam2; "
        "sys.exit(export_sam2.main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--random-init", "--out", str(tmp_path / "m")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for command in (
        "bash tools/setup.sh --export",
        "pip install torch==2.13.0",
        "SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install --no-build-isolation --no-deps sam2==1.1.0",
        "pip install --no-deps samexporter==0.5.0",
    ):
        assert command in result.stderr, result.stderr
    assert not (tmp_path / "m").exists()


# --- the model builder ---------------------------------------------------------------------------------------------


def state_dict(torch, **kwargs) -> dict:
    return export_sam2.build_model("sam2.1_hiera_t", **kwargs).state_dict()


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(torch):
    first, again, other = state_dict(torch, seed=0), state_dict(torch, seed=0), state_dict(torch, seed=1)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    differing = [k for k in first if not torch.equal(first[k], other[k])]
    assert len(differing) > len(first) // 2, f"only {len(differing)} of {len(first)} tensors changed with the seed"


def test_a_checkpoint_loads_and_must_match_its_config(torch, tmp_path):
    weights = state_dict(torch, seed=3)
    checkpoint = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": weights}, checkpoint)
    loaded = export_sam2.build_model("sam2.1_hiera_t", checkpoint=checkpoint).state_dict()
    assert all(torch.equal(weights[k], loaded[k]) for k in weights)
    assert export_sam2.model_name("sam2.1_hiera_t", checkpoint, None) == "SAM2.1 tiny (sam2.1_hiera_tiny.pt)"
    with pytest.raises(export_sam2.ExportError, match="does --config match"):
        export_sam2.build_model("sam2.1_hiera_s", checkpoint=checkpoint)


def test_the_wrappers_compute_what_metas_predictor_computes(torch, reference, embeddings):
    # What SAM2ImagePredictor.set_image and ._predict do (without importing it: it needs torchvision):
    # forward_image, no_mem_embed added to the lowest-resolution level, the prompt encoder with its own
    # padding point and +0.5, the mask decoder's three multimask outputs, logits clamped to ±32 (which these
    # logits, within ±0.5, never reach: test_the_decoders_clamp_logits_beyond_32_... drives them past it).
    model = reference["model"]
    image = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 3, 1024, 1024)).astype(np.float32))
    with torch.no_grad():
        _, vision_feats, _, sizes = model._prepare_backbone_features(model.forward_image(image))
        vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
        high_res_0, high_res_1, embed = [
            f.permute(1, 2, 0).reshape(1, -1, *size) for f, size in zip(vision_feats, sizes)
        ]
    ours = reference["encoder"]({contract.ENCODER_INPUT: image.numpy()})
    for got, want in zip(ours, (embed, high_res_0, high_res_1)):
        np.testing.assert_array_equal(got, want.numpy())

    _, features = embeddings
    previous = np.random.default_rng(6).normal(0, 8, (1, 1, 256, 256)).astype(np.float32)
    for points, labels in PROMPTS.values():
        for mask in (None, previous):
            inputs = {**features, **prompt(points, labels, mask)}
            masks, iou = reference["decoder"](inputs)
            want_masks, want_iou = metas_decoder(torch, model, inputs)
            assert_close(masks, np.clip(want_masks, -32.0, 32.0), "masks against Meta's path", 1e-5)
            assert_close(iou, want_iou, "iou_predictions against Meta's path", 1e-5)


# --- the exported folder -------------------------------------------------------------------------------------------


def test_model_json_follows_the_contract(exported, info):
    out, log = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder.onnx",
        "decoder_hires.onnx",
        "encoder.onnx",
        "encoder_web.onnx",
        "model.json",
    ]
    assert parse_model_info((out / "model.json").read_text()) == info
    assert info.name == "SAM2.1 tiny (random init, seed 0)"
    assert (info.family, info.config, info.weights, info.opset) == (
        "sam2.1",
        "sam2.1_hiera_t",
        "random-init, seed 0",
        17,
    )
    assert info.has_hires

    def shapes(part, side):
        return {t["name"]: tuple(t["shape"]) for t in info.io[part][side]}

    assert shapes("encoder", "inputs") == {contract.ENCODER_INPUT: (1, 3, contract.IMAGE_SIZE, contract.IMAGE_SIZE)}
    assert shapes("encoder", "outputs") == contract.EMBEDDING_SHAPES
    assert [t["name"] for t in info.io["encoder"]["outputs"]] == list(contract.EMBEDDING_SHAPES)
    decoder_inputs = {
        **contract.EMBEDDING_SHAPES,
        "point_coords": ("prompts", "num_points", 2),
        "point_labels": ("prompts", "num_points"),
        "mask_input": (1, 1, 256, 256),
        "has_mask_input": (1,),
    }
    for part in ("decoder", "decoder_hires"):
        assert info.input_names(part) == list(contract.DECODER_INPUTS)
        assert shapes(part, "inputs") == decoder_inputs
        assert all(t["dtype"] == "float32" for side in ("inputs", "outputs") for t in info.io[part][side])

    def batched(shape):
        return ("prompts", *shape[1:])

    assert shapes("decoder", "outputs") == {"masks": batched(LOW_RES), "iou_predictions": ("prompts", 3)}
    assert [t["name"] for t in info.io["decoder"]["outputs"]] == list(contract.DECODER_OUTPUTS)
    assert shapes("decoder_hires", "outputs") == {
        "masks": batched(HIRES),
        "iou_predictions": ("prompts", 3),
        "low_res_masks": batched(LOW_RES),
    }
    assert info.prompt_batch("decoder") and info.prompt_batch("decoder_hires")
    # The tool's own check ran and printed its numbers.
    assert "max abs diff" in log and "checking onnxruntime" in log


def test_encoder_matches_pytorch(embeddings):
    got, want = embeddings
    for name, shape in contract.EMBEDDING_SHAPES.items():
        assert got[name].shape == shape
        assert_close(got[name], want[name], f"encoder {name}")


@pytest.mark.parametrize("name", PROMPTS)
def test_decoder_matches_pytorch(name, sessions, reference, embeddings):
    _, features = embeddings
    inputs = {**features, **prompt(*PROMPTS[name])}
    masks, iou = sessions["decoder"].run(list(contract.DECODER_OUTPUTS), inputs)
    want_masks, want_iou = reference["decoder"](inputs)
    assert masks.shape == LOW_RES and iou.shape == (1, contract.MASK_CANDIDATES)
    assert_close(masks, want_masks, f"{name}: masks")
    assert_close(iou, want_iou, f"{name}: iou_predictions")


def test_the_decoders_clamp_logits_beyond_32_as_metas_predictor_returns_them(torch, sessions, reference, embeddings):
    """Meta's predictor returns its low-res logits clamped to ±32 (what mask_input gets back); the decoders
    clamp in-graph, and the hi-res one upsamples the clamped logits, as pyapp.postprocess does. Random-init
    logits stay within ±0.5, so high_res_feats_0 is scaled up 300 times: it is added after the mask decoder's
    last normalisation, so the logits grow with it, to about ±100: both signs past ±32."""
    import torch.nn.functional as F

    _, features = embeddings
    inputs = {
        **features,
        "high_res_feats_0": features["high_res_feats_0"] * 300,
        **prompt(*PROMPTS["a box and a point"]),
    }
    unclamped, _ = metas_decoder(torch, reference["model"], inputs)
    saturated = np.abs(unclamped) > 32
    print(
        f"\nMeta's logits reach {unclamped.min():.1f} .. {unclamped.max():.1f}: {saturated.mean():.1%} of cells "
        f"past ±32"
    )
    assert (unclamped > 32).any() and (unclamped < -32).any(), "the logits must pass ±32 for this test to mean anything"
    want = np.clip(unclamped, -32.0, 32.0)
    # Logits of ±100 carry float32 rounding of about 1e-6 of their size through the graph: a looser tolerance.
    masks, _ = sessions["decoder"].run(list(contract.DECODER_OUTPUTS), inputs)
    assert_close(masks, want, "decoder.onnx masks against Meta's clamped logits", 1e-3)
    assert np.array_equal(np.abs(masks[saturated]), np.full(saturated.sum(), 32.0, np.float32))
    hires, _, low_res = sessions["decoder_hires"].run(["masks", "iou_predictions", "low_res_masks"], inputs)
    assert_close(low_res, want, "decoder_hires.onnx low_res_masks against Meta's clamped logits", 1e-3)
    upsampled = F.interpolate(
        torch.from_numpy(want), size=contract.HIRES_MASK_SIZE, mode="bilinear", align_corners=False
    ).numpy()
    assert_close(hires, upsampled, "decoder_hires.onnx masks against the clamped logits upsampled", 1e-3)
    print(
        f"decoder.onnx against Meta's clamped logits: max abs diff {np.abs(masks - want).max():.2g}; the hi-res "
        f"masks against them upsampled: {np.abs(hires - upsampled).max():.2g}"
    )


def test_decoder_with_a_previous_mask_matches_pytorch(sessions, reference, embeddings):
    _, features = embeddings
    first = {**features, **prompt(*PROMPTS["one point"])}
    masks, iou = reference["decoder"](first)
    previous = masks[0, int(np.argmax(iou[0]))]
    inputs = {**features, **prompt([[512.0, 400.0], [600.0, 640.0]], [1, 0], mask_input=previous)}
    got = sessions["decoder"].run(list(contract.DECODER_OUTPUTS), inputs)
    want = reference["decoder"](inputs)
    assert_close(got[0], want[0], "masks with mask_input")
    assert_close(got[1], want[1], "iou_predictions with mask_input")
    # ... and the mask is really used: with has_mask_input=0 the answer differs.
    ignored = sessions["decoder"].run(["masks"], {**inputs, "has_mask_input": np.zeros(1, np.float32)})[0]
    assert np.abs(ignored - got[0]).max() > 1e-3


def test_the_number_of_points_is_dynamic(sessions, reference, embeddings):
    _, features = embeddings
    rng = np.random.default_rng(11)
    for n in (1, 2, 5, 12):
        labels = rng.integers(0, 2, n)
        labels[0] = 1
        inputs = {**features, **prompt(rng.uniform(0, contract.IMAGE_SIZE, (n, 2)), labels)}
        masks, iou = sessions["decoder"].run(list(contract.DECODER_OUTPUTS), inputs)
        assert masks.shape == LOW_RES and iou.shape == (1, contract.MASK_CANDIDATES)
        if n in (5, 12):
            want_masks, want_iou = reference["decoder"](inputs)
            assert_close(masks, want_masks, f"{n} points: masks")
            assert_close(iou, want_iou, f"{n} points: iou_predictions")


def test_hires_decoder_upsamples_the_same_masks(torch, sessions, reference, embeddings):
    import torch.nn.functional as F

    _, features = embeddings
    inputs = {**features, **prompt(*PROMPTS["three points, one excluded"])}
    masks, iou, low_res = sessions["decoder_hires"].run(["masks", "iou_predictions", "low_res_masks"], inputs)
    assert masks.shape == HIRES and low_res.shape == LOW_RES and iou.shape == (1, contract.MASK_CANDIDATES)
    plain_masks, plain_iou = sessions["decoder"].run(list(contract.DECODER_OUTPUTS), inputs)
    assert_close(low_res, plain_masks, "low_res_masks against decoder.onnx", 1e-5)
    assert_close(iou, plain_iou, "iou_predictions against decoder.onnx", 1e-5)
    upsampled = F.interpolate(
        torch.from_numpy(low_res), size=contract.HIRES_MASK_SIZE, mode="bilinear", align_corners=False
    ).numpy()
    assert_close(masks, upsampled, "masks against F.interpolate(low_res_masks)", 1e-5)
    for got, want, name in zip(
        (masks, iou, low_res), reference["decoder_hires"](inputs), ("masks", "iou_predictions", "low_res_masks")
    ):
        assert_close(got, want, f"hires {name}")


def test_a_batch_of_prompts_is_decoded_in_one_run_as_each_alone(sessions, embeddings):
    """Segment everything's grid points, several a run: each prompt of a batch gets what it gets alone (the
    decoder repeats the photo's features per prompt, as Meta's predictor does for a batch of boxes)."""
    _, features = embeddings
    rng = np.random.default_rng(12)
    points = rng.uniform(0, contract.IMAGE_SIZE, (8, 1, 2)).astype(np.float32)
    for part in ("decoder", "decoder_hires"):
        session = sessions[part]
        names = [o.name for o in session.get_outputs()]
        inputs = {**features, **prompt(points[0], [1])}
        together = session.run(names, {**inputs, "point_coords": points, "point_labels": np.ones((8, 1), np.float32)})
        for index in range(len(points)):
            alone = session.run(names, {**inputs, **prompt(points[index], [1])})
            for name, got, want in zip(names, together, alone):
                assert got.shape[0] == len(points)
                assert_close(got[index : index + 1], want, f"{part}.{name}, prompt {index} of a batch")


def test_the_encoder_the_page_runs_keeps_the_masks_and_is_smaller(exported, info, sessions):
    """encoder_web.onnx (tools/web_encoder.py): the graph onnxruntime-web can load (no If nodes, standard
    operators only), its weights float16 (half the optimised graph's file), kept because the masks the decoder
    makes from its embeddings keep balanced IoU >= 0.99 against the float32 encoder's on 60 prompt sets over the
    demo photos (measured by the export itself, on the weights it exports; the log says the lowest)."""
    import onnx

    out, log = exported
    graph = onnx.load(str(out / info.files["encoder_web"])).graph
    assert not [n for n in graph.node if n.op_type == "If" or n.domain not in ("", "ai.onnx")]
    assert info.io["encoder_web"] == info.io["encoder"]
    # (SAM2.1 tiny: 67 MB, where the encoder is 109 MB and its optimised graph in float32 134 MB)
    assert (out / "encoder_web.onnx").stat().st_size < 0.65 * (out / "encoder.onnx").stat().st_size
    found = re.search(r"float16 weights, [0-9.]+ MB, lowest balanced IoU ([0-9.]+) on (\d+) prompt sets", log)
    assert found, log
    assert float(found.group(1)) >= 0.99 and int(found.group(2)) >= 50
    # And its embeddings are near the float32 encoder's (float16 weights: a few thousandths).
    image = np.random.default_rng(3).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    web, full = (sessions[part].run(None, {"image": image}) for part in ("encoder_web", "encoder"))
    for a, b in zip(web, full):
        assert np.abs(a - b).max() <= 0.02 * np.abs(b).max()


# --- --download: Meta's checkpoint fetched, resumed, checked --------------------------------------------------------


class CheckpointServer:
    """Serves one file over HTTP on loopback, as a mirror of Meta's checkpoints would: Range requests answered
    with 206 (unless `resumes` is false), the first answer cut off after `cut_after` bytes (the connection
    dropped), and every request's Range header recorded."""

    def __init__(self, name: str, data: bytes, *, cut_after: int | None = None, resumes: bool = True):
        import http.server
        import threading

        self.data, self.cut_after, self.resumes, self.ranges = data, cut_after, resumes, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                if self.path != f"/ckpt/{name}":
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and server.resumes:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.data) - 1}/{len(server.data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(server.data) - start))
                self.end_headers()
                body = server.data[start:]
                if server.cut_after is not None:
                    body, server.cut_after = body[: server.cut_after], None
                    self.wfile.write(body)
                    self.close_connection = True
                    self.connection.shutdown(2)  # dropped mid-file, as a flaky network does
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ckpt/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def checkpoint_of(data: bytes, file: str = "sam2.1_hiera_tiny.pt") -> export_sam2.Checkpoint:
    import hashlib

    return export_sam2.Checkpoint("sam2.1_hiera_t", file, len(data), hashlib.sha256(data).hexdigest())


def test_the_checkpoint_table_names_metas_four_files():
    assert set(export_sam2.CHECKPOINTS) == {"tiny", "small", "base-plus", "large"}
    for checkpoint in export_sam2.CHECKPOINTS.values():
        assert checkpoint.config in export_sam2.CONFIGS and export_sam2.CONFIGS[checkpoint.config][1] == checkpoint.file
        assert re.fullmatch(r"[0-9a-f]{64}", checkpoint.sha256)
        assert 100e6 < checkpoint.size < 1e9
    assert export_sam2.MIRROR.startswith("https://dl.fbaipublicfiles.com/segment_anything_2/")


def test_download_resumes_an_interrupted_file_and_checks_it(tmp_path):
    data = np.random.default_rng(7).bytes(3_000_000)
    checkpoint = checkpoint_of(data)
    logged = []
    with CheckpointServer(checkpoint.file, data, cut_after=1_100_000) as server:
        with pytest.raises(export_sam2.ExportError, match="stopped after 1.1 MB of 3.0 MB.*resumes") as stopped:
            export_sam2.download(checkpoint, tmp_path, server.url, log=logged.append)
        assert "Traceback" not in str(stopped.value)
        part = tmp_path / (checkpoint.file + ".part")
        assert part.stat().st_size == 1_100_000 and not (tmp_path / checkpoint.file).exists()

        path = export_sam2.download(checkpoint, tmp_path, server.url, log=logged.append)
        assert server.ranges == [None, "bytes=1100000-"], "the second run asks for the rest only"
        assert path == tmp_path / checkpoint.file and path.read_bytes() == data and not part.exists()

        # There already: checked, used, nothing asked of the server.
        assert export_sam2.download(checkpoint, tmp_path, server.url, log=logged.append) == path
        assert len(server.ranges) == 2
    assert any("resuming after 1.1 MB" in line for line in logged), logged


def test_download_starts_again_when_the_server_does_not_resume(tmp_path):
    data = np.random.default_rng(8).bytes(2_000_000)
    checkpoint = checkpoint_of(data)
    (tmp_path / (checkpoint.file + ".part")).write_bytes(data[:500_000])
    logged = []
    with CheckpointServer(checkpoint.file, data, resumes=False) as server:
        path = export_sam2.download(checkpoint, tmp_path, server.url, log=logged.append)
    assert path.read_bytes() == data
    assert any("does not resume downloads: starting again" in line for line in logged), logged


def test_download_refuses_bytes_that_are_not_metas_file(tmp_path):
    data = np.random.default_rng(9).bytes(1_000_000)
    checkpoint = checkpoint_of(data)
    damaged = bytearray(data)
    damaged[123_456] ^= 1
    with CheckpointServer(checkpoint.file, bytes(damaged)) as server:
        with pytest.raises(
            export_sam2.ExportError, match="has sha256 .* was damaged or is another file, and was deleted"
        ):
            export_sam2.download(checkpoint, tmp_path, server.url, log=lambda _: None)
    assert list(tmp_path.iterdir()) == [], "a damaged download is deleted, never kept or exported"

    with CheckpointServer(checkpoint.file, data[:-10]) as server:
        with pytest.raises(export_sam2.ExportError, match=r"offers 1\.0 MB.*that is not the file"):
            export_sam2.download(checkpoint, tmp_path, server.url, log=lambda _: None)

    # A file of the wrong bytes already in the cache is not used, and not silently replaced.
    (tmp_path / checkpoint.file).write_bytes(bytes(damaged))
    with pytest.raises(export_sam2.ExportError, match="is not Meta's .* delete it"):
        export_sam2.download(checkpoint, tmp_path, "http://127.0.0.1:9/", log=lambda _: None)
    assert (tmp_path / checkpoint.file).read_bytes() == bytes(damaged)


def test_download_offline_says_what_to_do_and_writes_nothing(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "model"
    result = run_tool("--download", "tiny", "--out", out, "--cache", tmp_path / "cache", "--mirror",
                      f"http://127.0.0.1:{port}/", timeout=60)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "could not reach" in result.stderr and "offline" in result.stderr, result.stderr
    assert "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt" in result.stderr
    assert "(156.0 MB)" in result.stderr and "run this again" in result.stderr
    assert not out.exists()


def test_download_exports_metas_checkpoint_and_records_its_sha256(torch, exported, tmp_path, monkeypatch, capsys):
    """The whole path with a checkpoint saved as Meta's are ({"model": state_dict}): the random-init weights
    of seed 0 served on loopback in place of Meta's tiny file (the table's size and sha256 made its), the
    download cut off once; the export equals the --random-init --seed 0 one's decoder, byte for byte."""
    import hashlib
    import io

    buffer = io.BytesIO()
    torch.save({"model": export_sam2.build_model("sam2.1_hiera_t", seed=0).state_dict()}, buffer)
    data = buffer.getvalue()
    monkeypatch.setitem(export_sam2.CHECKPOINTS, "tiny", checkpoint_of(data))
    out, cache = tmp_path / "sam2.1-tiny", tmp_path / "cache"
    with CheckpointServer("sam2.1_hiera_tiny.pt", data, cut_after=len(data) // 3) as server:
        arguments = ["--download", "tiny", "--out", str(out), "--cache", str(cache), "--mirror", server.url]
        arguments += ["--no-check", "--no-web-encoder"]
        assert export_sam2.main(arguments) == 1
        assert "run this again: it resumes from there" in capsys.readouterr().err
        assert not out.exists()
        assert export_sam2.main(arguments) == 0, capsys.readouterr().err
        assert server.ranges == [None, f"bytes={len(data) // 3}-"]
    info = modelio.read_model_folder(out)
    assert info.weights == "sha256:" + hashlib.sha256(data).hexdigest()
    assert info.name == "SAM2.1 tiny (sam2.1_hiera_tiny.pt)" and info.config == "sam2.1_hiera_t"
    assert (cache / "sam2.1_hiera_tiny.pt").read_bytes() == data
    assert (out / "decoder.onnx").read_bytes() == (exported[0] / "decoder.onnx").read_bytes()


def test_download_takes_no_config_or_seed():
    for extra, message in ((["--config", "sam2.1_hiera_l"], "leave --config out"), (["--seed", "1"], "--seed goes")):
        result = run_tool("--download", "tiny", "--out", "/nonexistent/m", *extra, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
