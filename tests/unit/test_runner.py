"""pyapp.runner: a decoder in onnxruntime (CPython), named inputs in, named outputs out."""

from __future__ import annotations

import numpy as np

from pyapp import contract
from pyapp.coords import Mapping
from pyapp.feeds import decoder_feeds
from pyapp.model import parse_model_info
from pyapp.prompt import Point, Prompt
from pyapp.runner import OnnxRuntimeRunner


def test_the_baseline_decoder_runs_with_the_contracts_inputs_and_outputs(baseline):
    info = parse_model_info((baseline / "model.json").read_text())
    runner = OnnxRuntimeRunner(baseline / info.files["decoder"], threads=1)
    assert set(runner.input_names) <= set(contract.DECODER_INPUTS)
    embeddings = {n: np.zeros(s, np.float32) for n, s in contract.EMBEDDING_SHAPES.items()}
    feeds = decoder_feeds(runner.input_names, embeddings, Prompt((Point(10, 10),)), Mapping.for_image(64, 64))
    outputs = runner.run(feeds)
    assert set(outputs) >= set(contract.DECODER_OUTPUTS)
    assert outputs["masks"].shape == (1, contract.MASK_CANDIDATES, 256, 256)
    assert outputs["iou_predictions"].shape == (1, contract.MASK_CANDIDATES)
