"""Export SAM2.1 (Meta's `sam2` package, through `samexporter`'s wrappers) to a samtab model folder.

    python tools/export_sam2.py --download tiny|small|base-plus|large --out DIR [--cache DIR] [--mirror URL]
    python tools/export_sam2.py --checkpoint sam2.1_hiera_large.pt --config sam2.1_hiera_l --out DIR
    python tools/export_sam2.py --random-init --seed 0 [--config sam2.1_hiera_t] --out DIR
        [--hires] [--opset 17] [--force] [--no-check] [--no-web-encoder]

Writes DIR/encoder.onnx, DIR/decoder.onnx, with --hires DIR/decoder_hires.onnx, DIR/encoder_web.onnx (the
encoder the page runs, tools/web_encoder.py; --no-web-encoder skips it) and DIR/model.json (tools/modelio.py),
all following the SAM2 contract of pyapp/contract.py:

    encoder  image (1,3,1024,1024) -> image_embed (1,256,64,64), high_res_feats_0 (1,32,256,256),
                                      high_res_feats_1 (1,64,128,128)
    decoder  image_embed, high_res_feats_0, high_res_feats_1, point_coords (B,N,2), point_labels (B,N),
             mask_input (1,1,256,256), has_mask_input (1,)  ->  masks (B,3,256,256), iou_predictions (B,3)
    decoder_hires  the same inputs -> masks (B,3,512,512), iou_predictions (B,3), low_res_masks (B,3,256,256)

N (the number of points) and B (a batch of prompts over the one photo, "prompts" in model.json; 1 for a click)
are the dynamic dimensions: segment everything decodes several grid points a run. The model is built with
Meta's `build_sam2("configs/sam2.1/<config>.yaml")` on CPU, from a checkpoint or, with --random-init, from
random weights after `torch.manual_seed(seed)` (the same seed gives the same weights, so the whole pipeline
can be tested on the true graph without real weights). `--download SIZE` fetches Meta's official SAM2.1
checkpoint first (CHECKPOINTS: its address, byte size and sha256) into --cache (default
$XDG_CACHE_HOME/samtab/checkpoints, i.e. ~/.cache/samtab/checkpoints): an interrupted download resumes where
it stopped on the next run (an HTTP Range request), a file already there is checked and used, and a file of
the wrong size or sha256 is never exported. model.json's `weights` records the checkpoint's sha256. The export
goes to a temporary folder first and the model folder is only written when everything worked; an existing
--out is only replaced with --force (checked before any work starts). `--check` (the default) runs onnxruntime
on a random image and prompt and prints the largest difference from PyTorch.

What samexporter 0.5.0's wrappers (`samexporter.export_sam2.SAM2ImageEncoder` / `SAM2ImageDecoder`) do,
and so what these ONNX files expect:

- The encoder wrapper runs the Hiera trunk + FPN, applies the mask decoder's `conv_s0`/`conv_s1` to the two
  high-resolution levels, and adds `no_mem_embed` to the lowest-resolution level (an image with no memory,
  as Meta's SAM2ImagePredictor does). It returns (high_res_feats_0, high_res_feats_1, image_embed); our
  wrapper only reorders them to the contract's order. The image is NOT normalised in-graph: feed the photo
  stretched to 1024x1024, RGB in [0, 1], ImageNet-normalised (pyapp.contract).
- The decoder wrapper takes `point_coords` in the 1024x1024 MODEL space, i.e. x*1024/W, y*1024/H for a point
  (x, y) of the original W x H photo; it has no orig_im_size input. In-graph it then, exactly as Meta's
  `PromptEncoder._embed_points(pad=True)`:
    * adds 0.5 to every coordinate (the centre of the pixel): do NOT add it yourself;
    * appends one padding point (0, 0) with label -1, as Meta's predictor always does for clicks and boxes:
      do NOT append one yourself. A -1 point embeds as "not a point" whatever its coordinates, but a second
      one is one more token in the attention and changes the masks (measured: logits moved by 0.4);
    * divides by 1024 and applies the random-Fourier positional encoding;
    * labels: -1 padding, 0 exclude, 1 include, 2 box top-left, 3 box bottom-right (a box is two points).
  Meta's predictor puts a box's two points before the clicks; the order does not change the answer beyond
  float rounding (prompt tokens carry no order).
- `mask_input` is the previous low-res logits (1,1,256,256); it is used as `has_mask_input * downscale(mask)
  + (1 - has_mask_input) * no_mask_embed`, so with has_mask_input=0 its content does not matter.
- Multimask output: the mask decoder's tokens 1..3 (token 0, the single-mask answer, is dropped), masks
  clamped to [-32, 32]. Upsample the logits bilinearly (align_corners=False) to the photo size and threshold
  at 0 (Meta's postprocess_masks). The hires decoder does the first step to 512x512 in-graph with
  F.interpolate(size=512, mode="bilinear", align_corners=False) and also returns the 256x256 logits as
  `low_res_masks` (what mask_input wants on the next click).

Imports: only `samexporter.export_sam2` (onnx, torch, sam2.build_sam, sam2.modeling) is used. Its siblings
`samexporter.sam2_onnx` (OpenCV) and Meta's `sam2.sam2_image_predictor` (torchvision, which fails to
import beside torch 2.13) are avoided. The legacy TorchScript exporter (`dynamo=False`) is used: the
dynamo exporter needs onnxscript, which samtab does not install.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pyapp import contract
from samtab_tools import modelio


@dataclass(frozen=True)
class Checkpoint:
    config: str
    file: str
    size: int  # bytes
    sha256: str


# Meta's SAM2.1 checkpoints, where sam2's checkpoints/download_ckpts.sh fetches them (092824: their release
# of 2024-09-28). Meta publishes no checksums: the sizes and hashes are those of the files it serves, as
# several public records of them agree.
MIRROR = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
CHECKPOINTS = {
    "tiny": Checkpoint(
        "sam2.1_hiera_t",
        "sam2.1_hiera_tiny.pt",
        156_008_466,
        "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
    ),
    "small": Checkpoint(
        "sam2.1_hiera_s",
        "sam2.1_hiera_small.pt",
        184_416_285,
        "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
    ),
    "base-plus": Checkpoint(
        "sam2.1_hiera_b+",
        "sam2.1_hiera_base_plus.pt",
        323_606_802,
        "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
    ),
    "large": Checkpoint(
        "sam2.1_hiera_l",
        "sam2.1_hiera_large.pt",
        898_083_611,
        "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
    ),
}
# --config -> (size name, Meta's checkpoint file name)
CONFIGS = {c.config: (size.replace("-plus", "+"), c.file) for size, c in CHECKPOINTS.items()}
DEFAULT_CONFIG = "sam2.1_hiera_t"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "samtab" / "checkpoints"
CHUNK = 1 << 20
DEFAULT_OPSET = 17

# Output names and shapes, in the order the files list them.
_LOW_RES = (1, contract.MASK_CANDIDATES, contract.LOW_RES_MASK_SIZE, contract.LOW_RES_MASK_SIZE)
_IOU = (1, contract.MASK_CANDIDATES)
ENCODER_OUTPUTS = dict(contract.EMBEDDING_SHAPES)  # image_embed, high_res_feats_0, high_res_feats_1
DECODER_OUTPUTS = {"masks": _LOW_RES, "iou_predictions": _IOU}
HIRES_OUTPUTS = {
    "masks": (1, contract.MASK_CANDIDATES, contract.HIRES_MASK_SIZE, contract.HIRES_MASK_SIZE),
    "iou_predictions": _IOU,
    "low_res_masks": _LOW_RES,
}
assert tuple(DECODER_OUTPUTS) == contract.DECODER_OUTPUTS

INSTALL_COMMANDS = """\
    .venv/bin/python -m pip install torch==2.13.0 hydra-core==1.3.8 iopath==0.1.10 tqdm==4.70.1
    SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install --no-build-isolation --no-deps sam2==1.1.0
    .venv/bin/python -m pip install --no-deps samexporter==0.5.0"""
INSTALL_HINT = (
    f"Install the export dependencies with `bash tools/setup.sh --export` (or --test), or by hand:\n"
    f"{INSTALL_COMMANDS}\n"
    "(torch stays pinned: an unpinned torch pulls a multi-GB CUDA build; never install torchvision "
    "beside it.)"
)

CHECK_TOLERANCE = 1e-3  # --check fails above this (the tests hold the export to 1e-4)


class ExportError(RuntimeError):
    """Something the user can fix; the message says what (printed without a traceback)."""


class MissingDependency(ExportError):
    pass


def load_dependencies():
    """Import torch and samexporter's SAM2 wrappers (which import Meta's sam2); return (torch, wrappers
    module). Raises MissingDependency naming what is missing and how to install it."""
    try:
        import sam2.build_sam  # noqa: F401
        import torch
        from samexporter import export_sam2 as wrappers  # onnx, torch, sam2.build_sam, sam2.modeling only
    except ImportError as error:
        raise MissingDependency(
            f"the export needs torch, Meta's sam2 and samexporter ({error}).\n{INSTALL_HINT}"
        ) from None
    return torch, wrappers


def model_name(config: str, checkpoint: Path | None, seed: int | None) -> str:
    size = CONFIGS[config][0]
    return f"SAM2.1 {size} ({checkpoint.name})" if checkpoint else f"SAM2.1 {size} (random init, seed {seed})"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def download(checkpoint: Checkpoint, folder: Path = CACHE, mirror: str = MIRROR, log=print) -> Path:
    """Meta's checkpoint in `folder`: downloaded from `mirror` unless it is there already, checked by its size
    and sha256 before it is used; returns its path. An interrupted download leaves FILE.part, which the next
    call continues (an HTTP Range request; from the start if the server does not resume). Raises ExportError
    saying what to do when the address cannot be reached, the download stops, or the bytes are not Meta's."""
    folder = Path(folder)
    target = folder / checkpoint.file
    url = mirror.rstrip("/") + "/" + checkpoint.file
    by_hand = (
        f"or download {MIRROR}{checkpoint.file} ({_megabytes(checkpoint.size)}) by other means into {folder}/ "
        "and run this again (it is checked, then used)"
    )
    if target.exists():
        if target.stat().st_size == checkpoint.size and file_sha256(target) == checkpoint.sha256:
            log(f"{target} is there already (its size and sha256 are Meta's)")
            return target
        raise ExportError(
            f"{target} is there but is not Meta's {checkpoint.file} (its size or sha256 differ): delete it and "
            "run this again to download it"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot make {folder} ({error.strerror or error}); pass --cache DIR") from None
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > checkpoint.size:
        part.unlink()
        have = 0
    if have < checkpoint.size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as error:
            raise ExportError(f"{url} answered {error.code} {error.reason}; check --mirror, {by_hand}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise ExportError(
                f"could not reach {url} ({reason}): is this machine offline? Run this again when it is "
                f"online{' (the download resumes where it stopped)' if have else ''}, {by_hand}"
            ) from None
        with response:
            if have and response.status != 206:
                log(f"{url} does not resume downloads: starting again from the first byte")
                have = 0
            length = response.headers.get("Content-Length")
            if length is not None and have + int(length) != checkpoint.size:
                raise ExportError(
                    f"{url} offers {_megabytes(have + int(length))}, Meta's {checkpoint.file} has "
                    f"{_megabytes(checkpoint.size)}: that is not the file; check --mirror, {by_hand}"
                )
            log(
                f"downloading {url} ({_megabytes(checkpoint.size)})"
                + (f", resuming after {_megabytes(have)}" if have else "")
                + f" into {part}"
            )
            started, shown = time.perf_counter(), have
            try:
                with open(part, "ab" if have else "wb") as f:
                    while chunk := response.read(CHUNK):
                        f.write(chunk)
                        have += len(chunk)
                        if have - shown >= checkpoint.size // 10 or have == checkpoint.size:
                            rate = (have - shown) / max(time.perf_counter() - started, 1e-6)
                            log(f"  {_megabytes(have)} of {_megabytes(checkpoint.size)} ({rate / 1e6:.1f} MB/s)")
                            started, shown = time.perf_counter(), have
            except (OSError, http.client.HTTPException) as error:
                raise ExportError(
                    f"the download of {url} stopped after {_megabytes(have)} of {_megabytes(checkpoint.size)} "
                    f"({type(error).__name__}: {error}); run this again: it resumes from there"
                ) from None
    have = part.stat().st_size
    if have != checkpoint.size:
        raise ExportError(
            f"the download of {url} stopped after {_megabytes(have)} of {_megabytes(checkpoint.size)}; run this "
            "again: it resumes from there"
        )
    digest = file_sha256(part)
    if digest != checkpoint.sha256:
        part.unlink()
        raise ExportError(
            f"the file downloaded from {url} has sha256 {digest}, Meta's {checkpoint.file} has "
            f"{checkpoint.sha256}: it was damaged or is another file, and was deleted; run this again, {by_hand}"
        )
    os.replace(part, target)
    log(f"downloaded {target}: its size and sha256 are Meta's")
    return target


def build_model(config: str = DEFAULT_CONFIG, checkpoint: Path | str | None = None, seed: int | None = None):
    """Meta's SAM2.1 model on CPU in eval mode: the checkpoint's weights, or random ones drawn after
    torch.manual_seed(seed) (the same seed gives the same state_dict)."""
    torch, _ = load_dependencies()
    from sam2.build_sam import build_sam2

    if config not in CONFIGS:
        raise ExportError(f"unknown config {config!r}: use one of {', '.join(CONFIGS)}")
    if (checkpoint is None) == (seed is None):
        raise ExportError("give either a checkpoint or a seed (random initialisation)")
    if seed is not None:
        torch.manual_seed(seed)
    try:
        with torch.no_grad():
            return build_sam2(
                f"configs/sam2.1/{config}.yaml",
                ckpt_path=str(checkpoint) if checkpoint else None,
                device="cpu",
                mode="eval",
            )
    except (RuntimeError, KeyError, OSError, ValueError) as error:
        if checkpoint is None:
            raise
        raise ExportError(
            f"could not load {checkpoint} as a {config} checkpoint ({type(error).__name__}: "
            f"{str(error)[:300] or 'missing or unexpected weights'}); does --config match it?"
        ) from None


def wrappers(model):
    """The PyTorch modules that are exported: (encoder, decoder, decoder_hires), with the contract's inputs
    and outputs in the contract's order."""
    torch, se = load_dependencies()
    import torch.nn.functional as F

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = se.SAM2ImageEncoder(model)

        def forward(self, image):
            high_res_feats_0, high_res_feats_1, image_embed = self.inner(image)
            return image_embed, high_res_feats_0, high_res_feats_1

    class HiresDecoder(torch.nn.Module):
        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, *inputs):  # the decoder's inputs, in the contract's order
            low_res_masks, iou_predictions = self.decoder(*inputs)
            size = contract.HIRES_MASK_SIZE
            masks = F.interpolate(low_res_masks, size=(size, size), mode="bilinear", align_corners=False)
            return masks, iou_predictions, low_res_masks

    class Decoder(se.SAM2ImageDecoder):
        """samexporter's decoder for a batch of prompts over one photo: Meta's mask decoder repeats the image's
        features once per prompt (`predict_masks(repeat_image=True)`, as SAM2ImagePredictor does for a batch of
        boxes), so point_coords (B, N, 2) and point_labels (B, N) give masks (B, 3, 256, 256); mask_input and
        has_mask_input stay one for the batch. With B = 1 it computes what samexporter's own forward does."""

        def forward(
            self,
            image_embed,
            high_res_feats_0,
            high_res_feats_1,
            point_coords,
            point_labels,
            mask_input,
            has_mask_input,
        ):
            masks, iou_predictions, _, _ = self.mask_decoder.predict_masks(
                image_embeddings=image_embed,
                image_pe=self.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=self._embed_points(point_coords, point_labels),
                dense_prompt_embeddings=self._embed_masks(mask_input, has_mask_input),
                repeat_image=True,
                high_res_features=[high_res_feats_0, high_res_feats_1],
            )
            return torch.clamp(masks[:, 1:], -32.0, 32.0), iou_predictions[:, 1:]  # multimask: tokens 1..3

    decoder = Decoder(model, multimask_output=True)
    return Encoder().eval(), decoder.eval(), HiresDecoder(decoder).eval()


def example_inputs(seed: int = 1234, points: int = 3):
    """A random normalised image and a prompt (numpy float32): (image, decoder prompt inputs as a dict)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    image = rng.standard_normal((1, 3, contract.IMAGE_SIZE, contract.IMAGE_SIZE)).astype(np.float32)
    prompt = {
        "point_coords": rng.uniform(0, contract.IMAGE_SIZE, (1, points, 2)).astype(np.float32),
        "point_labels": np.array([[1, 0, 1, 1, 0, 1, 1, 0][i % 8] for i in range(points)], np.float32)[None],
        "mask_input": np.zeros((1, 1, contract.LOW_RES_MASK_SIZE, contract.LOW_RES_MASK_SIZE), np.float32),
        "has_mask_input": np.zeros((1,), np.float32),
    }
    return image, prompt


def _export(
    torch, module, inputs: dict, path: Path, outputs: dict[str, tuple[int, ...]], opset: int, dynamic_axes=None
) -> None:
    """torch.onnx.export with the given input and output names, then checked, and the outputs' shapes
    (which the tracer leaves symbolic) declared."""
    import warnings

    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(v) if not isinstance(v, torch.Tensor) else v for v in inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            export_params=True,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    graph = proto.graph
    got_inputs = [i.name for i in graph.input if i.name not in {init.name for init in graph.initializer}]
    got_outputs = [o.name for o in graph.output]
    if got_inputs != list(inputs) or got_outputs != list(outputs):
        raise ExportError(
            f"{path.name}: the exporter wrote inputs {got_inputs} and outputs {got_outputs}, "
            f"expected {list(inputs)} and {list(outputs)}"
        )
    # The tracer declares the shapes of both branches of the If nodes it makes (Hiera's "pad to whole windows"),
    # and they differ (rank 5 and 4): onnxruntime 1.31 merges them leniently with a warning, onnxruntime-web 1.30
    # refuses to make a session (ShapeInferenceError). Undeclared, each branch's shape is inferred.
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "If" and attribute.HasField("g"):
                for branch_output in attribute.g.output:
                    branch_output.type.tensor_type.ClearField("shape")
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        named = (dynamic_axes or {}).get(output.name, {})  # dynamic dimensions keep their names
        del dims[:]
        for index, size in enumerate(outputs[output.name]):
            if index in named:
                dims.add().dim_param = named[index]
            else:
                dims.add().dim_value = size
    onnx.save(proto, str(path))


def export(model, work: Path, opset: int = DEFAULT_OPSET, hires: bool = False, log=print) -> dict[str, Path]:
    """Export the model's encoder, decoder (and hires decoder) into the folder `work`; return the parts."""
    import numpy as np

    torch, _ = load_dependencies()
    encoder, decoder, decoder_hires = wrappers(model)
    image, prompt = example_inputs(points=5)
    parts = {}

    started = time.perf_counter()
    parts["encoder"] = work / "encoder.onnx"
    _export(torch, encoder, {contract.ENCODER_INPUT: image}, parts["encoder"], ENCODER_OUTPUTS, opset)
    log(
        f"exported the encoder ({parts['encoder'].stat().st_size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - started:.1f} s"
    )

    # The decoder's graph does not depend on the values it is traced with: random features will do.
    rng = np.random.default_rng(0)
    embeddings = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in ENCODER_OUTPUTS.items()}
    decoder_inputs = {**embeddings, **prompt}
    # A batch of prompts (dimension 0, "prompts") and the number of points in each are dynamic.
    dynamic = {
        "point_coords": {0: "prompts", 1: "num_points"},
        "point_labels": {0: "prompts", 1: "num_points"},
        **{name: {0: "prompts"} for name in DECODER_OUTPUTS | HIRES_OUTPUTS},
    }
    for part, module, outputs in (
        ("decoder", decoder, DECODER_OUTPUTS),
        ("decoder_hires", decoder_hires, HIRES_OUTPUTS),
    )[: 2 if hires else 1]:
        started = time.perf_counter()
        parts[part] = work / f"{part}.onnx"
        _export(torch, module, decoder_inputs, parts[part], outputs, opset, dynamic)
        log(
            f"exported the {part.replace('_', ' ')} ({parts[part].stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
    return parts


def check(model, parts: dict[str, Path], log=print) -> dict[str, float]:
    """Run the exported files in onnxruntime (CPU) on a random image and prompt, and the PyTorch wrappers on
    the same input; return the largest absolute difference of each output."""
    import numpy as np
    import onnxruntime as ort

    torch, _ = load_dependencies()
    encoder, decoder, decoder_hires = wrappers(model)
    image, prompt = example_inputs(seed=4321, points=3)

    def session(part):
        options = ort.SessionOptions()
        options.log_severity_level = 3  # quiet: a load's warnings are not the check's findings
        return ort.InferenceSession(str(parts[part]), options, providers=["CPUExecutionProvider"])

    def torch_run(module, inputs):
        with torch.no_grad():
            return [t.numpy() for t in module(*(torch.from_numpy(v) for v in inputs.values()))]

    diffs = {}
    ort_embeddings = session("encoder").run(list(ENCODER_OUTPUTS), {contract.ENCODER_INPUT: image})
    torch_embeddings = torch_run(encoder, {contract.ENCODER_INPUT: image})
    for name, a, b in zip(ENCODER_OUTPUTS, ort_embeddings, torch_embeddings):
        if not a.shape == b.shape == ENCODER_OUTPUTS[name]:
            raise ExportError(
                f"encoder.{name}: onnxruntime gave shape {a.shape}, PyTorch {b.shape}, "
                f"the contract needs {ENCODER_OUTPUTS[name]}"
            )
        diffs[f"encoder.{name}"] = float(np.abs(a - b).max())
    # The decoders get PyTorch's embeddings, so their differences are their own.
    inputs = {**dict(zip(ENCODER_OUTPUTS, torch_embeddings)), **prompt}
    for part, module, outputs in (
        ("decoder", decoder, DECODER_OUTPUTS),
        ("decoder_hires", decoder_hires, HIRES_OUTPUTS),
    ):
        if part not in parts:
            continue
        got = session(part).run(list(outputs), inputs)
        want = torch_run(module, inputs)
        for name, a, b in zip(outputs, got, want):
            if not a.shape == b.shape == outputs[name]:
                raise ExportError(
                    f"{part}.{name}: onnxruntime gave shape {a.shape}, PyTorch {b.shape}, "
                    f"the contract needs {outputs[name]}"
                )
            diffs[f"{part}.{name}"] = float(np.abs(a - b).max())
    return diffs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Export SAM2.1 to a samtab model folder (encoder.onnx, "
        "decoder.onnx, [decoder_hires.onnx], model.json)."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="Meta's SAM2.1 checkpoint, e.g. sam2.1_hiera_large.pt")
    source.add_argument(
        "--download",
        choices=tuple(CHECKPOINTS),
        help="download Meta's SAM2.1 checkpoint of this size (or use the one in --cache), check it, export it",
    )
    source.add_argument(
        "--random-init", action="store_true", help="random weights (for tests): the same --seed gives the same model"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for --random-init (default 0)")
    parser.add_argument(
        "--config",
        choices=tuple(CONFIGS),
        default=None,
        help="the model's size, as Meta's checkpoint names it: "
        + ", ".join(f"{config} ({ckpt})" for config, (_, ckpt) in CONFIGS.items())
        + f"; required with --checkpoint, default {DEFAULT_CONFIG} with --random-init",
    )
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument(
        "--cache", type=Path, default=CACHE, help=f"where --download keeps checkpoints (default {CACHE})"
    )
    parser.add_argument(
        "--mirror", default=MIRROR, help=f"where --download fetches Meta's files from (default {MIRROR})"
    )
    parser.add_argument("--hires", action="store_true", help="also write decoder_hires.onnx (512x512 masks)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime with PyTorch on a random input (default on)",
    )
    parser.add_argument(
        "--web-encoder",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write encoder_web.onnx, the encoder the page runs for a photo without a bundle "
        "(tools/web_encoder.py; default on)",
    )
    args = parser.parse_args(argv)
    if args.download is not None:
        wanted = CHECKPOINTS[args.download].config
        if args.config not in (None, wanted):
            parser.error(f"--download {args.download} is the config {wanted}; leave --config out")
        if args.seed is not None:
            parser.error("--seed goes with --random-init, not --download")
        args.config = wanted
    elif args.checkpoint is not None:
        if args.config is None:
            parser.error("--checkpoint needs --config (one of: " + ", ".join(CONFIGS) + ")")
        if args.seed is not None:
            parser.error("--seed goes with --random-init, not --checkpoint")
    else:
        args.config = args.config or DEFAULT_CONFIG
        args.seed = 0 if args.seed is None else args.seed
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(f"export_sam2: {message}", flush=True)

    def fail(message: str) -> int:
        print(f"export_sam2: error: {message}", file=sys.stderr, flush=True)
        return 1

    # Checked first, before any slow import or work.
    if args.out.exists() and not args.force:
        return fail(f"{args.out} already exists; pass --force to replace it")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        return fail(f"checkpoint {args.checkpoint} not found")

    total = time.perf_counter()
    try:
        if args.download is not None:
            args.checkpoint = download(CHECKPOINTS[args.download], args.cache, args.mirror, log=log)
        started = time.perf_counter()
        load_dependencies()
        log(f"imported torch, sam2 and samexporter in {time.perf_counter() - started:.1f} s")

        name = model_name(args.config, args.checkpoint, args.seed)
        if args.checkpoint is not None:
            started = time.perf_counter()
            weights = f"sha256:{file_sha256(args.checkpoint)}"
            log(f"hashed {args.checkpoint.name} in {time.perf_counter() - started:.1f} s")
        else:
            weights = f"random-init, seed {args.seed}"

        started = time.perf_counter()
        log(f"building {name}")
        model = build_model(args.config, args.checkpoint, args.seed)
        log(f"built it in {time.perf_counter() - started:.1f} s")

        with tempfile.TemporaryDirectory(prefix="samtab-export-") as work:
            log(f"exporting at opset {args.opset}")
            parts = export(model, Path(work), opset=args.opset, hires=args.hires, log=log)
            if args.check:
                started = time.perf_counter()
                log("checking onnxruntime (CPU) against PyTorch on a random image and prompt")
                diffs = check(model, parts)
                for key, diff in diffs.items():
                    log(f"  {key}: max abs diff {diff:.2e}")
                worst = max(diffs.values())
                log(f"checked in {time.perf_counter() - started:.1f} s: max abs diff {worst:.2e}")
                if not worst <= CHECK_TOLERANCE:  # also catches NaN
                    return fail(
                        f"onnxruntime differs from PyTorch by {worst:.2e} (more than {CHECK_TOLERANCE}); "
                        "nothing was written"
                    )
            if args.web_encoder:
                from samtab_tools import web_encoder

                started = time.perf_counter()
                log("making the encoder the page runs (tools/web_encoder.py)")
                web, _ = web_encoder.build(parts["encoder"], parts["decoder"], log=log)
                parts["encoder_web"] = Path(work) / "encoder_web.onnx"
                parts["encoder_web"].write_bytes(web)
                log(f"made it in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            info = modelio.write_model_folder(
                args.out,
                parts,
                {"name": name, "family": "sam2.1", "config": args.config, "weights": weights},
                force=args.force,
            )
            log(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")
    except modelio.ModelFolderExists as error:
        return fail(str(error))
    except ExportError as error:
        return fail(str(error))
    sizes = ", ".join(f"{part} {(args.out / file).stat().st_size / 1e6:.1f} MB" for part, file in info.files.items())
    log(f"done in {time.perf_counter() - total:.1f} s: {info.name}; {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
