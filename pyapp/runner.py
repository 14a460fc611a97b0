"""The decoder runner interface, and its onnxruntime (CPython) implementation.

A runner has `input_names` (read from the model) and `run(feeds) -> outputs` (numpy in, numpy out). The
browser's runner (pyapp.web) wraps onnxruntime-web with the same shape, asynchronously.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Runner(Protocol):
    input_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OnnxRuntimeRunner:
    """A decoder in onnxruntime (CPython only: onnxruntime is imported here, not at module level)."""

    def __init__(self, decoder_path: str | Path, threads: int = 0, providers: list[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default
        self.session = ort.InferenceSession(str(decoder_path), options, providers=providers or ["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # A batch of prompts in one run (pyapp.model.ModelInfo.prompt_batch says the same from model.json).
        coords = next((i for i in self.session.get_inputs() if i.name == "point_coords"), None)
        self.prompt_batch = coords is not None and not isinstance(coords.shape[0], int)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
