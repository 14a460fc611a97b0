"""Writing model folders (encoder.onnx, decoder.onnx, [decoder_hires.onnx], [encoder_web.onnx], model.json),
shared by the tools that make models: tools/export_sam2.py (SAM2.1) and tools/baseline_model.py (the built-in
baseline).

The folder is assembled in a temporary sibling and renamed into place, so a crash never leaves half a model,
and an existing folder is only replaced when the caller says so (`force`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pyapp.model import ModelInfo, parse_model_info

ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


class ModelFolderExists(FileExistsError):
    pass


def describe(model) -> dict[str, list[dict]]:
    """Inputs and outputs of an ONNX model (path, bytes or ModelProto): name, shape (ints, or strings for
    dynamic dimensions) and dtype."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    elif isinstance(model, bytes):
        model = onnx.load_from_string(model)
    initializers = {init.name for init in model.graph.initializer}

    def rows(values):
        out = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
            out.append(
                {"name": value.name, "shape": shape, "dtype": ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type))}
            )
        return out

    return {"inputs": rows(model.graph.input), "outputs": rows(model.graph.output)}


def opset_of(model) -> int:
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    elif isinstance(model, bytes):
        model = onnx.load_from_string(model)
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def write_model_folder(out_dir: Path, parts: dict[str, Path | bytes], info: dict, force: bool = False) -> ModelInfo:
    """Write a model folder atomically.

    parts: {"encoder": path-or-bytes, "decoder": ..., optionally "decoder_hires", "encoder_web": ...}
    info:  model.json fields other than files, io and opset (name, family, config, weights, ...), which are
           filled in from the ONNX files themselves.
    Raises ModelFolderExists when out_dir exists and force is false.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ModelFolderExists(f"{out_dir} already exists; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        files, io = {}, {}
        for part, source in parts.items():
            name = f"{part}.onnx"
            target = staging / name
            if isinstance(source, bytes):
                target.write_bytes(source)
            else:
                shutil.copyfile(source, target)
            files[part] = name
            io[part] = describe(target)
        data = {
            "format": 1,
            "contract": "sam2",
            "config": None,
            **info,
            "files": files,
            "io": io,
            "opset": opset_of(staging / "decoder.onnx"),
        }
        model_info = parse_model_info(data, where=f"{out_dir}/model.json")  # never write a folder we'd refuse
        (staging / "model.json").write_text(model_info.to_json())
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out_dir)
        return model_info
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_model_folder(model_dir: Path, parts: tuple[str, ...] | None = None) -> ModelInfo:
    """model.json of a model folder, checked, with every file it names present, or only those of `parts`
    (a published folder, site/models/NAME/, holds the decoders but never the encoder)."""
    model_dir = Path(model_dir)
    path = model_dir / "model.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{model_dir} is not a model folder: it has no model.json "
            "(make one with tools/baseline_model.py or tools/export_sam2.py)"
        )
    info = parse_model_info(path.read_bytes(), where=str(path))  # bytes: a non-UTF-8 file is "not valid JSON"
    for part, name in info.files.items():
        if (parts is None or part in parts) and not (model_dir / name).exists():
            raise FileNotFoundError(f"{model_dir}: model.json names {name} ({part}), which is missing")
    return info
