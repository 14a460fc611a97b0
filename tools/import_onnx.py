"""Turn an existing SAM2 ONNX pair (samexporter's, or another public export) into a samtab model folder.

    python tools/import_onnx.py ENCODER.onnx DECODER.onnx --out DIR [--name NAME] [--family sam2.1]
                                [--force] [--no-web-encoder]

The two graphs are matched to the SAM2 contract (pyapp/contract.py) by what their tensors are, not by their
names or order: the encoder's input is the (1, 3, 1024, 1024) image, its outputs the three embeddings told
apart by their shapes; the decoder's inputs are the three embeddings (by shape), the points (rank 3, last
dimension 2), their labels (rank 2), the previous mask (1, 1, 256, 256) and its flag (1,); its outputs the
masks (rank 4, 3 candidates of 256 x 256) and their scores (rank 2, 3). Tensors are renamed to the contract's
names (inside If/Loop bodies too) and put in its order. What does not fit is refused with a message that names
it (an input the contract does not have, such as SAM1's orig_im_size, or masks at the photo's size). Both graphs
are then run on a random image and prompt in onnxruntime, and the folder is written (tools/modelio.py), with
encoder_web.onnx (tools/web_encoder.py) unless --no-web-encoder. model.json records the files' sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from pyapp import contract

FAMILIES = ("sam2.1", "sam2")


class ImportError_(ValueError):
    """The graphs do not fit the SAM2 contract; the message says what."""


def _dims(value) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def _fixed(shape: list, want: tuple) -> bool:
    """A declared shape that is the wanted one (a dynamic dimension matches any size)."""
    return len(shape) == len(want) and all(isinstance(d, str) or d == w for d, w in zip(shape, want))


def _by_shape(values, where: str) -> dict[str, object]:
    """The contract's embeddings among these graph values, by shape: {contract name: value}."""
    found = {}
    for name, shape in contract.EMBEDDING_SHAPES.items():
        matches = [v for v in values if _fixed(_dims(v), shape) and not any(isinstance(d, str) for d in _dims(v))]
        if len(matches) != 1:
            listed = ", ".join(f"{v.name} {_dims(v)}" for v in values)
            raise ImportError_(f"{where}: no single tensor of shape {list(shape)} for {name} among {listed}")
        found[name] = matches[0]
    return found


def _rename(graph, names: dict[str, str]) -> None:
    """Rename tensors everywhere in the graph and the graphs nested in its nodes."""
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _rename(attribute.g, names)
            for sub in attribute.graphs:
                _rename(sub, names)
    for values in (graph.input, graph.output, graph.value_info):
        for value in values:
            value.name = names.get(value.name, value.name)


def _order(values, names: list[str]) -> None:
    """Put the graph's inputs or outputs in the contract's order (initialisers listed as inputs go last)."""
    by_name = {v.name: v for v in values}
    ordered = [by_name[n] for n in names] + [v for v in values if v.name not in names]
    copies = [type(v)() for v in ordered]
    for copy, value in zip(copies, ordered):
        copy.CopyFrom(value)
    del values[:]
    values.extend(copies)


def encoder_to_contract(model) -> None:
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or not _fixed(_dims(inputs[0]), (1, 3, contract.IMAGE_SIZE, contract.IMAGE_SIZE)):
        listed = ", ".join(f"{v.name} {_dims(v)}" for v in inputs)
        raise ImportError_(f"the encoder must take one (1, 3, 1024, 1024) image; it takes {listed}")
    outputs = _by_shape(list(graph.output), "the encoder's outputs")
    names = {inputs[0].name: contract.ENCODER_INPUT, **{v.name: n for n, v in outputs.items()}}
    _rename(graph, names)
    _order(graph.output, list(contract.EMBEDDING_SHAPES))


def decoder_to_contract(model) -> None:
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    names = {v.name: n for n, v in _by_shape(inputs, "the decoder's inputs").items()}
    rest = [v for v in inputs if v.name not in names]
    rules = {
        "point_coords": lambda s: len(s) == 3 and s[2] == 2,
        "point_labels": lambda s: len(s) == 2,
        "mask_input": lambda s: _fixed(s, (1, 1, 256, 256)),
        "has_mask_input": lambda s: _fixed(s, (1,)),
    }
    for name, fits in rules.items():
        matches = [v for v in rest if fits(_dims(v))]
        if len(matches) != 1:
            raise ImportError_(f"the decoder has no single input for {name} ({', '.join(v.name for v in rest)})")
        names[matches[0].name] = name
    unknown = [f"{v.name} {_dims(v)}" for v in rest if v.name not in names]
    if unknown:
        raise ImportError_(
            f"the decoder takes inputs the SAM2 contract does not have: {', '.join(unknown)} (samtab upsamples the "
            "256x256 masks itself, so an export that takes the photo's size, as SAM1's orig_im_size, does not fit)"
        )
    outputs = list(graph.output)
    masks = [v for v in outputs if len(_dims(v)) == 4 and _dims(v)[1:] in ([3, 256, 256],)]
    scores = [v for v in outputs if len(_dims(v)) == 2 and _dims(v)[1] == 3]
    if len(masks) != 1 or len(scores) != 1:
        listed = ", ".join(f"{v.name} {_dims(v)}" for v in outputs)
        raise ImportError_(
            f"the decoder must give masks (N, 3, 256, 256) and scores (N, 3); it gives {listed} (masks at the "
            "photo's size do not fit: samtab upsamples the 256x256 logits itself)"
        )
    names[masks[0].name], names[scores[0].name] = "masks", "iou_predictions"
    _rename(graph, names)
    _order(graph.input, list(contract.DECODER_INPUTS))
    _order(graph.output, list(contract.DECODER_OUTPUTS))


def _smoke(encoder: bytes, decoder: bytes) -> None:
    """Both graphs run in onnxruntime on a random image and a two-point prompt, with the contract's shapes out."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 3, contract.IMAGE_SIZE, contract.IMAGE_SIZE)).astype(np.float32)
    session = ort.InferenceSession(encoder, options, providers=["CPUExecutionProvider"])
    embeddings = dict(zip([o.name for o in session.get_outputs()], session.run(None, {contract.ENCODER_INPUT: image})))
    for name, shape in contract.EMBEDDING_SHAPES.items():
        if embeddings[name].shape != shape:
            raise ImportError_(f"the encoder gave {name} of shape {list(embeddings[name].shape)}, not {list(shape)}")
    session = ort.InferenceSession(decoder, options, providers=["CPUExecutionProvider"])
    feeds = {
        **embeddings,
        "point_coords": np.array([[[300.0, 400.0], [600.0, 500.0]]], np.float32),
        "point_labels": np.array([[1.0, 0.0]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    wanted = {i.name for i in session.get_inputs()}
    masks, scores = session.run(list(contract.DECODER_OUTPUTS), {k: v for k, v in feeds.items() if k in wanted})
    if masks.shape[1:] != (3, 256, 256) or scores.shape[1:] != (3,):
        raise ImportError_(f"the decoder gave masks {list(masks.shape)} and scores {list(scores.shape)}")


def import_pair(encoder: Path, decoder: Path, out: Path, *, name: str, family: str, force: bool, web: bool, log=print):
    import onnx

    from samtab_tools import modelio

    models = {}
    for part, path, fit in (("encoder", encoder, encoder_to_contract), ("decoder", decoder, decoder_to_contract)):
        try:
            model = onnx.load(str(path))
        except Exception as error:  # noqa: BLE001 - onnx raises many kinds for a file that is not a model
            raise ImportError_(f"{path} is not an ONNX model ({str(error).splitlines()[0][:200]})") from None
        fit(model)
        models[part] = model.SerializeToString()
        log(f"import_onnx: {path.name}: fits the contract as the {part}")
    _smoke(models["encoder"], models["decoder"])
    log("import_onnx: both run in onnxruntime with the contract's shapes")
    sha = {
        part: hashlib.sha256(path.read_bytes()).hexdigest()
        for part, path in (("encoder", encoder), ("decoder", decoder))
    }
    weights = f"imported: encoder sha256:{sha['encoder']}, decoder sha256:{sha['decoder']}"
    with tempfile.TemporaryDirectory() as work:
        parts = {}
        for part, data in models.items():
            parts[part] = Path(work) / f"{part}.onnx"
            parts[part].write_bytes(data)
        if web:
            from samtab_tools import web_encoder

            data, _ = web_encoder.build(parts["encoder"], parts["decoder"], log=log)
            parts["encoder_web"] = Path(work) / "encoder_web.onnx"
            parts["encoder_web"].write_bytes(data)
        info = modelio.write_model_folder(
            out, parts, {"name": name, "family": family, "config": None, "weights": weights}, force=force
        )
    log(f"import_onnx: wrote {out} ({info.name})")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("encoder", type=Path)
    parser.add_argument("decoder", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--name", help="the model's name, as the page shows it (default: the folder's name)")
    parser.add_argument("--family", choices=FAMILIES, default="sam2.1", help="default sam2.1")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--web-encoder", action=argparse.BooleanOptionalAction, default=True, help="also write encoder_web.onnx"
    )
    args = parser.parse_args(argv)
    from samtab_tools.modelio import ModelFolderExists

    for path in (args.encoder, args.decoder):
        if not path.is_file():
            print(f"import_onnx: error: {path} not found", file=sys.stderr)
            return 2
    try:
        import_pair(
            args.encoder,
            args.decoder,
            args.out,
            name=args.name or args.out.name,
            family=args.family,
            force=args.force,
            web=args.web_encoder,
        )
    except (ImportError_, ModelFolderExists) as error:
        print(f"import_onnx: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
