"""pyapp.model: model.json read and checked the same way by the tools and the app, with a message for each
thing that can be wrong."""

from __future__ import annotations

import copy
import json

import pytest

from pyapp import contract
from pyapp.model import ModelError, parse_model_info


def io_of(decoder_inputs=None):
    embeddings = [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in contract.EMBEDDING_SHAPES.items()]
    prompt = [
        {"name": "point_coords", "shape": [1, "num_points", 2], "dtype": "float32"},
        {"name": "point_labels", "shape": [1, "num_points"], "dtype": "float32"},
        {"name": "mask_input", "shape": [1, 1, 256, 256], "dtype": "float32"},
        {"name": "has_mask_input", "shape": [1], "dtype": "float32"},
    ]
    outputs = [
        {"name": "masks", "shape": [1, 3, 256, 256], "dtype": "float32"},
        {"name": "iou_predictions", "shape": [1, 3], "dtype": "float32"},
    ]
    return {
        "encoder": {
            "inputs": [{"name": "image", "shape": [1, 3, 1024, 1024], "dtype": "float32"}],
            "outputs": embeddings,
        },
        "decoder": {
            "inputs": decoder_inputs if decoder_inputs is not None else embeddings + prompt,
            "outputs": outputs,
        },
    }


VALID = {
    "format": 1,
    "name": "SAM2.1 tiny",
    "contract": "sam2",
    "family": "sam2.1",
    "config": "sam2.1_hiera_t",
    "weights": "random-init, seed 0",
    "opset": 17,
    "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
    "io": io_of(),
    "exported_by": "tools/export_sam2.py",
}


def test_a_valid_model_json_is_read_whole_and_written_back_the_same():
    info = parse_model_info(json.dumps(VALID))
    assert info.name == "SAM2.1 tiny" and info.input_names()[:3] == list(contract.EMBEDDING_SHAPES)
    assert info.extra == {"exported_by": "tools/export_sam2.py"} and not info.has_hires
    assert json.loads(info.to_json()) == VALID


def changed(path, value):
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "data, words",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (changed(["format"], 2), "format 2 is not supported"),
        (changed(["name"], KeyError), "'name' is missing"),
        (changed(["opset"], "17"), "'opset' is missing or not a int"),
        (changed(["contract"], "sam1"), "contract 'sam1' is not 'sam2'"),
        (changed(["family"], "yolo"), "family 'yolo' is not one of"),
        (changed(["files", "decoder"], KeyError), "files.decoder is missing"),
        (changed(["files", "decoder"], "../../etc/passwd"), "must be a plain file name"),
        (changed(["io", "encoder", "outputs"], []), "the encoder has no output 'image_embed'"),
        (changed(["io", "decoder", "inputs"], io_of([])["encoder"]["outputs"]), "has no input 'point_coords'"),
        (
            changed(
                ["io", "decoder", "inputs"], io_of()["decoder"]["inputs"] + [{"name": "orig_im_size", "shape": [2]}]
            ),
            "inputs the SAM2 contract does not know: ['orig_im_size']",
        ),
        (
            changed(["io", "decoder", "outputs"], [{"name": "masks", "shape": [1, 3, 256, 256]}]),
            "no output 'iou_predictions'",
        ),
    ],
)
def test_what_is_wrong_is_named(data, words):
    with pytest.raises(ModelError, match=words.replace("(", r"\(").replace("[", r"\[")):
        parse_model_info(data if isinstance(data, str) else json.dumps(data), where="m/model.json")


def test_a_decoder_takes_a_batch_of_prompts_when_its_point_coords_say_so():
    assert not parse_model_info(json.dumps(VALID)).prompt_batch()  # [1, "num_points", 2]: one prompt a run
    batched = copy.deepcopy(VALID)
    for tensor in batched["io"]["decoder"]["inputs"]:
        if tensor["name"] in ("point_coords", "point_labels"):
            tensor["shape"][0] = "prompts"
    assert parse_model_info(json.dumps(batched)).prompt_batch()
