"""model.json: what a model folder holds, read and checked the same way by the tools and the app.

A model folder holds `encoder.onnx`, `decoder.onnx`, optionally `decoder_hires.onnx`, and `model.json`:

    {
      "format": 1,
      "name": "SAM2.1 tiny (random init, seed 0)",   # what a person sees; bundles record it
      "contract": "sam2",                            # pyapp.contract: the tensors every part exchanges
      "family": "sam2.1" | "baseline",
      "config": "sam2.1_hiera_t" | null,
      "weights": "sha256:<hex of the checkpoint>" | "random-init, seed N" | "built-in",
      "opset": 17,
      "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "decoder_hires": "decoder_hires.onnx"},
      "io": {"encoder": {"inputs": [{"name", "shape", "dtype"}], "outputs": [...]}, "decoder": {...}, ...}
    }

Shapes list ints, or strings for dynamic dimensions. A bundle is only decoded by a decoder whose model has
the same `name` (pyapp.bundle checks it), since embeddings of one model mean nothing to another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import contract

FORMAT = 1
FAMILIES = ("sam2.1", "sam2", "baseline")  # sam2: SAM2.0 weights (tools/import_onnx.py), the same contract


class ModelError(ValueError):
    """model.json is missing something or does not follow the SAM2 contract; the message says what."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    weights: str
    opset: int
    files: dict[str, str]
    io: dict[str, dict[str, list[dict[str, Any]]]]
    config: str | None = None
    contract: str = contract.CONTRACT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "name": self.name,
            "contract": self.contract,
            "family": self.family,
            "config": self.config,
            "weights": self.weights,
            "opset": self.opset,
            "files": self.files,
            "io": self.io,
            **self.extra,
        }
        return json.dumps(data, indent=1) + "\n"

    def input_names(self, part: str = "decoder") -> list[str]:
        return [tensor["name"] for tensor in self.io[part]["inputs"]]

    @property
    def has_hires(self) -> bool:
        return "decoder_hires" in self.files

    def prompt_batch(self, part: str = "decoder") -> bool:
        """Whether the decoder file takes a batch of prompts in one run: its point_coords' first dimension
        is dynamic (tools/export_sam2.py names it "prompts"), not 1."""
        shape = next(t["shape"] for t in self.io[part]["inputs"] if t["name"] == "point_coords")
        return not isinstance(shape[0], int)


def _tensors(io: dict, part: str, side: str, where: str) -> dict[str, dict]:
    try:
        tensors = io[part][side]
        return {t["name"]: t for t in tensors if isinstance(t["name"], str) and isinstance(t["shape"], list)}
    except (KeyError, TypeError) as error:
        raise ModelError(f"{where}: io.{part}.{side} is missing or malformed ({error})") from None


def _check_shape(tensor: dict, expected: tuple[int, ...], where: str) -> None:
    shape = tensor["shape"]
    fixed = [d if isinstance(d, int) else None for d in shape]
    if len(shape) != len(expected) or any(d is not None and d != e for d, e in zip(fixed, expected)):
        raise ModelError(f"{where}: {tensor['name']} has shape {shape}, the SAM2 contract needs {list(expected)}")


def parse_model_info(data: str | bytes | dict, where: str = "model.json") -> ModelInfo:
    """Read and check a model.json (text or already parsed); raise ModelError naming what is wrong."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise ModelError(f"{where} is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ModelError(f"{where} must hold a JSON object")
    if data.get("format") != FORMAT:
        raise ModelError(f"{where}: format {data.get('format')!r} is not supported (this samtab reads {FORMAT})")
    for key, kind in (("name", str), ("family", str), ("weights", str), ("opset", int), ("files", dict), ("io", dict)):
        if not isinstance(data.get(key), kind):
            raise ModelError(f"{where}: '{key}' is missing or not a {kind.__name__}")
    if data.get("contract") != contract.CONTRACT:
        raise ModelError(f"{where}: contract {data.get('contract')!r} is not {contract.CONTRACT!r}")
    if data["family"] not in FAMILIES:
        raise ModelError(f"{where}: family {data['family']!r} is not one of {', '.join(FAMILIES)}")
    files = data["files"]
    for part in ("encoder", "decoder"):
        if not isinstance(files.get(part), str):
            raise ModelError(f"{where}: files.{part} is missing")
    for part, name in files.items():
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise ModelError(f"{where}: files.{part} must be a plain file name in the model folder, not {name!r}")

    io = data["io"]
    encoder_outputs = _tensors(io, "encoder", "outputs", where)
    for name, shape in contract.EMBEDDING_SHAPES.items():
        if name not in encoder_outputs:
            raise ModelError(f"{where}: the encoder has no output {name!r}")
        _check_shape(encoder_outputs[name], shape, where)
    for part in [p for p in ("decoder", "decoder_hires") if p in files]:
        inputs = _tensors(io, part, "inputs", where)
        outputs = _tensors(io, part, "outputs", where)
        for name, shape in contract.EMBEDDING_SHAPES.items():
            if name not in inputs:
                raise ModelError(f"{where}: {part} has no input {name!r}")
            _check_shape(inputs[name], shape, where)
        unknown = set(inputs) - set(contract.DECODER_INPUTS)
        if unknown:
            raise ModelError(f"{where}: {part} has inputs the SAM2 contract does not know: {sorted(unknown)}")
        for name in ("point_coords", "point_labels"):
            if name not in inputs:
                raise ModelError(f"{where}: {part} has no input {name!r}")
        for name in contract.DECODER_OUTPUTS:
            if name not in outputs:
                raise ModelError(f"{where}: {part} has no output {name!r}")
    known = {"format", "name", "contract", "family", "config", "weights", "opset", "files", "io"}
    return ModelInfo(
        name=data["name"],
        family=data["family"],
        weights=data["weights"],
        opset=data["opset"],
        files=dict(files),
        io=io,
        config=data.get("config"),
        contract=data["contract"],
        extra={k: v for k, v in data.items() if k not in known},
    )
