"""The encoder the page runs to encode a person's photo in the tab (issue 17): encoder_web.onnx in a model folder.

    python tools/web_encoder.py MODEL_DIR [--prompts 60] [--fp32]

tools/export_sam2.py and tools/baseline_model.py run this after writing a model folder; run it yourself for a
folder made before (or by tools/import_onnx.py). It writes MODEL_DIR/encoder_web.onnx and names it in
model.json (files.encoder_web), which the page prefers to files.encoder:

- The graph optimised offline by onnxruntime at its BASIC level: standard ONNX operators only, constants
  folded and the If nodes SAM2's tracer leaves in the Hiera trunk resolved. onnxruntime-web 1.30 cannot make
  a session of the traced graph (its shape inference stumbles on those If nodes); this one it can, and it
  gives the same outputs as the original in onnxruntime, bit for bit.
- Its weights stored as float16, each cast back to float32 as the session loads it (so the arithmetic stays
  float32): half the download (SAM2.1 tiny: 134 -> 67 MB). Kept only if the masks it leads to keep balanced
  IoU >= 0.99 (pyapp's decoder on the same prompts, tools/decoder_variants.py) against the original encoder's,
  on --prompts prompt sets over the demo photos, and only if it is at least 10 % smaller; otherwise the float32
  graph is written. --fp32 skips the float16 attempt.

Prints what it wrote, its size and the lowest balanced IoU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from samtab_tools.files import write_atomic

MIN_IOU = 0.99
MIN_SAVING = 0.10  # the float16-weight file must be at least this much smaller to be worth its rounding
SMALL_TENSOR = 64  # initialisers with fewer values stay float32 (shapes, scales: nothing to save)


def optimised(encoder: Path | bytes) -> bytes:
    """The encoder as onnxruntime optimises it at its BASIC level (standard operators only), as ONNX bytes."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "encoder.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        ort.InferenceSession(
            encoder if isinstance(encoder, bytes) else str(encoder), options, providers=["CPUExecutionProvider"]
        )
        model = onnx.load(str(out))
    foreign = sorted({node.domain for node in model.graph.node if node.domain not in ("", "ai.onnx")})
    if foreign:
        raise ValueError(f"the optimised encoder uses operators of {', '.join(foreign)}, which the page may not run")
    used = {""} | {node.domain for node in model.graph.node}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)  # (onnxruntime lists every domain it knows)
    return model.SerializeToString()


def float16_weights(model_bytes: bytes) -> bytes:
    """The model with each float32 initialiser of SMALL_TENSOR values or more stored as float16 and cast back
    to float32 by a Cast node at the graph's start."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    stored, casts = [], []
    for initializer in list(graph.initializer):
        if initializer.data_type != TensorProto.FLOAT or int(np.prod(initializer.dims)) < SMALL_TENSOR:
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(initializer).astype(np.float16), f"{initializer.name}.fp16"
        )
        stored.append(half)
        casts.append(helper.make_node("Cast", [half.name], [initializer.name], to=TensorProto.FLOAT))
        graph.initializer.remove(initializer)
    graph.initializer.extend(stored)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model.SerializeToString()


def _session(model: Path | bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def photos_for_checking() -> list[Path]:
    """The demo photos (scikit-image's and the synthetic scenes), made if missing."""
    from samtab_tools import demos

    return [demos.demo_source(demo) for demo in demos.DEMO_LIST]


def fidelity(reference: Path, variant: bytes, decoder: Path, prompt_count: int, log=print) -> list[float]:
    """Per prompt set, the lowest balanced IoU of the masks the decoder makes from the variant's embeddings
    against those it makes from the reference encoder's (tools/decoder_variants.py's prompt sets and replay)."""
    from pyapp.coords import Mapping
    from pyapp.image import encoder_input, open_photo
    from samtab_tools import decoder_variants as dv

    sessions = {"reference": _session(reference), "variant": _session(variant)}
    name = sessions["reference"].get_inputs()[0].name
    outputs = {which: [] for which in sessions}
    for path in photos_for_checking():
        photo = open_photo(path)
        image = encoder_input(photo.rgb)
        mapping = Mapping.for_image(photo.width, photo.height)
        for which, session in sessions.items():
            names = [o.name for o in session.get_outputs()]
            embeddings = dict(zip(names, session.run(None, {name: image})))
            outputs[which].append(dv.Photo(path.name, embeddings, mapping))
        log(f"web_encoder: encoded {path.name} with both encoders")
    sets = dv.prompt_sets(outputs["reference"], prompt_count)
    decode = dv.session(decoder, threads=2)
    return dv.set_scores(dv.replay(decode, outputs["reference"], sets), dv.replay(decode, outputs["variant"], sets))


def build(encoder: Path | bytes, decoder: Path | None, prompts: int = 60, fp16: bool = True, log=print):
    """The web encoder's bytes and what was decided ({variant, bytes, iou_min, prompt_sets, why}). Without a
    decoder (nothing to check the masks with), float32 weights."""
    graph = optimised(encoder)
    report = {"variant": "optimised, float32 weights", "bytes": len(graph), "iou_min": None}
    if fp16 and decoder is not None:
        smaller = float16_weights(graph)
        if len(smaller) > (1 - MIN_SAVING) * len(graph):
            report["why"] = f"float16 weights save under {MIN_SAVING:.0%}: kept float32"
        else:
            reference = encoder if isinstance(encoder, Path) else None
            if reference is None:
                raise ValueError("the fidelity check needs the encoder as a file")
            scores = fidelity(reference, smaller, decoder, prompts, log)
            report.update(iou_min=min(scores), prompt_sets=len(scores))
            if report["iou_min"] >= MIN_IOU:
                graph = smaller
                report.update(variant="optimised, float16 weights", bytes=len(graph))
            else:
                report["why"] = f"float16 weights: balanced IoU {report['iou_min']:.4f} < {MIN_IOU}: kept float32"
    iou = (
        f", lowest balanced IoU {report['iou_min']:.4f} on {report['prompt_sets']} prompt sets"
        if report["iou_min"] is not None
        else ""
    )
    log(f"web_encoder: {report['variant']}, {report['bytes'] / 1e6:.1f} MB{iou}")
    return graph, report


def make(model_dir: Path, prompts: int = 60, fp16: bool = True, log=print) -> dict:
    """Write MODEL_DIR/encoder_web.onnx and name it in model.json; return what was decided."""
    from pyapp.model import parse_model_info
    from samtab_tools.modelio import describe, read_model_folder

    model_dir = Path(model_dir)
    info = read_model_folder(model_dir, parts=("encoder", "decoder"))
    graph, report = build(model_dir / info.files["encoder"], model_dir / info.files["decoder"], prompts, fp16, log)
    target = model_dir / "encoder_web.onnx"
    write_atomic(target, graph)
    data = json.loads((model_dir / "model.json").read_text())
    data["files"]["encoder_web"] = target.name
    data["io"]["encoder_web"] = describe(target)
    checked = parse_model_info(data, where=str(model_dir / "model.json"))  # never write one we would refuse
    write_atomic(model_dir / "model.json", checked.to_json().encode())
    log(f"web_encoder: wrote {target}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--prompts", type=int, default=60, help="prompt sets for the fidelity check (default 60)")
    parser.add_argument("--fp32", action="store_true", help="keep float32 weights (no float16 attempt)")
    args = parser.parse_args(argv)
    try:
        make(args.model_dir, args.prompts, fp16=not args.fp32)
    except (FileNotFoundError, ValueError) as error:
        print(f"web_encoder: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
