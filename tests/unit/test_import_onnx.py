"""tools/import_onnx.py: a SAM2 ONNX pair made by someone else becomes a model folder: our own export, and a
variant whose tensors are renamed and reordered, give the same answers as the originals; what does not fit the
contract is refused with a message that names it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pyapp import contract
from samtab_tools.import_onnx import _rename, main


def run(path: Path, feeds: dict) -> dict:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})))


@pytest.fixture(scope="module")
def feeds():
    rng = np.random.default_rng(5)
    return {
        "image": rng.standard_normal((1, 3, 1024, 1024)).astype(np.float32),
        "point_coords": np.array([[[200.0, 300.0], [700.0, 650.0]]], np.float32),
        "point_labels": np.array([[1.0, 0.0]], np.float32),
        "mask_input": rng.standard_normal((1, 1, 256, 256)).astype(np.float32),
        "has_mask_input": np.ones(1, np.float32),
    }


def answers(files: Path | tuple[Path, Path], feeds: dict, renamed: dict | None = None) -> dict:
    """The encoder's and then the decoder's outputs, by the contract's names, of a model folder or a pair of
    files (`renamed`: the contract's names -> the files')."""
    names = renamed or {}
    rename = {v: k for k, v in names.items()}
    encoder, decoder = files if isinstance(files, tuple) else (files / "encoder.onnx", files / "decoder.onnx")
    image = {names.get("image", "image"): feeds["image"]}
    embeddings = {rename.get(k, k): v for k, v in run(encoder, image).items()}
    prompt = {names.get(k, k): v for k, v in {**embeddings, **feeds}.items() if k != "image"}
    return {**embeddings, **{rename.get(k, k): v for k, v in run(decoder, prompt).items()}}


RENAMES = {
    "image": "pixel_values",
    "image_embed": "embeddings",
    "high_res_feats_0": "feat_s0",
    "high_res_feats_1": "feat_s1",
    "point_coords": "coords",
    "point_labels": "labels",
    "mask_input": "prev_mask",
    "has_mask_input": "has_prev",
    "masks": "low_res_masks_out",
    "iou_predictions": "scores",
}


def test_our_own_export_imports_as_it_is(sam2_model, tmp_path, feeds, capsys):
    out = tmp_path / "imported"
    assert (
        main(
            [str(sam2_model / "encoder.onnx"), str(sam2_model / "decoder.onnx"), "--out", str(out)]
            + ["--name", "tiny again", "--no-web-encoder"]
        )
        == 0
    )
    info = json.loads((out / "model.json").read_text())
    assert info["name"] == "tiny again" and info["family"] == "sam2.1"
    assert info["weights"].startswith("imported: encoder sha256:")
    original, imported = answers(sam2_model, feeds), answers(out, feeds)
    assert original.keys() == imported.keys()
    for name in original:
        np.testing.assert_array_equal(imported[name], original[name])
    assert "fits the contract as the decoder" in capsys.readouterr().out


def test_a_renamed_and_reordered_variant_is_put_back_in_the_contracts_terms(sam2_model, tmp_path, feeds):
    encoder, decoder = onnx.load(str(sam2_model / "encoder.onnx")), onnx.load(str(sam2_model / "decoder.onnx"))
    _rename(encoder.graph, RENAMES)
    _rename(decoder.graph, RENAMES)
    outputs = list(encoder.graph.output)
    del encoder.graph.output[:]
    encoder.graph.output.extend([outputs[2], outputs[0], outputs[1]])
    inputs = list(decoder.graph.input)
    del decoder.graph.input[:]
    decoder.graph.input.extend(inputs[::-1])
    paths = tmp_path / "their_encoder.onnx", tmp_path / "their_decoder.onnx"
    onnx.save(encoder, str(paths[0]))
    onnx.save(decoder, str(paths[1]))
    out = tmp_path / "imported"
    assert main([*map(str, paths), "--out", str(out), "--no-web-encoder"]) == 0
    info = json.loads((out / "model.json").read_text())
    assert [t["name"] for t in info["io"]["encoder"]["outputs"]] == list(contract.EMBEDDING_SHAPES)
    assert [t["name"] for t in info["io"]["decoder"]["inputs"]] == list(contract.DECODER_INPUTS)
    theirs = answers(paths, feeds, RENAMES)
    ours = answers(out, feeds)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_what_does_not_fit_the_contract_is_refused_saying_what(sam2_model, tmp_path, capsys):
    decoder = onnx.load(str(sam2_model / "decoder.onnx"))
    decoder.graph.input.append(onnx.helper.make_tensor_value_info("orig_im_size", onnx.TensorProto.FLOAT, [2]))
    extra = tmp_path / "sam1_style_decoder.onnx"
    onnx.save(decoder, str(extra))
    encoder = str(sam2_model / "encoder.onnx")
    assert main([encoder, str(extra), "--out", str(tmp_path / "a"), "--no-web-encoder"]) == 1
    assert "orig_im_size [2]" in capsys.readouterr().err
    # The pair swapped: the decoder given as the encoder.
    assert main([str(sam2_model / "decoder.onnx"), encoder, "--out", str(tmp_path / "b"), "--no-web-encoder"]) == 1
    assert "the encoder must take one (1, 3, 1024, 1024) image" in capsys.readouterr().err
    notes = tmp_path / "notes.onnx"
    notes.write_text("not a model")
    assert main([encoder, str(notes), "--out", str(tmp_path / "c"), "--no-web-encoder"]) == 1
    assert "notes.onnx is not an ONNX model" in capsys.readouterr().err
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main([encoder, str(sam2_model / "decoder.onnx"), "--out", str(existing), "--no-web-encoder"]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")
