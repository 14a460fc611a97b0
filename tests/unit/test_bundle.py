"""pyapp.bundle: the one reader and writer of embedding bundles."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp import bundle, contract

SHA = "ab" * 32


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in contract.EMBEDDING_SHAPES.items()}


@pytest.fixture(scope="module")
def packed(embeddings):
    return bundle.write_bundle(embeddings, width=640, height=427, image_sha256=SHA, model_name="m")


def document(packed):
    return msgpack.unpackb(packed, raw=False)


def repack(doc) -> bytes:
    return msgpack.packb(doc, use_bin_type=True)


@pytest.mark.parametrize("dtype, tolerance", [("float16", 2e-3), ("float32", 0.0)])
def test_round_trip(embeddings, dtype, tolerance):
    data = bundle.write_bundle(embeddings, width=640, height=427, image_sha256=SHA, model_name="m", dtype=dtype)
    read = bundle.read_bundle(data)
    assert (read.width, read.height, read.image_sha256, read.model_name, read.dtype) == (640, 427, SHA, "m", dtype)
    expanded = read.embeddings()
    for name, array in embeddings.items():
        assert expanded[name].dtype == np.float32 and expanded[name].shape == array.shape
        assert np.abs(expanded[name] - array).max() <= tolerance * max(1, np.abs(array).max())
    assert read.embeddings() is expanded  # expanded once per photo, reused on every click


def test_sizes(packed):
    assert contract.EMBEDDING_VALUES == 4_194_304
    assert 8 * 2**20 < len(packed) < 8 * 2**20 + 4096


def test_stored_tensors_are_views_not_copies(packed):
    read = bundle.read_bundle(packed)
    assert all(not t.flags.writeable for t in read.tensors.values())
    whole = np.frombuffer(packed, np.uint8)
    assert all(np.shares_memory(t, whole) for t in read.tensors.values())  # msgpack copied none of them


def test_a_bytearray_is_copied_so_checked_tensors_cannot_change_under_the_reader(packed):
    data = bytearray(packed)
    read = bundle.read_bundle(data)
    data[:] = b"\xff" * len(data)  # NaN everywhere, after the reader checked the values
    data += b"more"  # and resizable: the reader holds no view of it
    for name, tensor in bundle.read_bundle(packed).tensors.items():
        np.testing.assert_array_equal(read.tensors[name], tensor)


def test_writer_refuses_float16_overflow(embeddings):
    big = dict(embeddings, image_embed=embeddings["image_embed"] * 1e6)
    with pytest.raises(bundle.BundleError, match="float16 range.*float32"):
        bundle.write_bundle(big, width=1, height=1, image_sha256=SHA, model_name="m")
    bundle.write_bundle(big, width=1, height=1, image_sha256=SHA, model_name="m", dtype="float32")


def test_writer_refuses_wrong_shapes_and_nan(embeddings):
    with pytest.raises(bundle.BundleError, match="high_res_feats_0 has shape"):
        bundle.write_bundle(
            dict(embeddings, high_res_feats_0=np.zeros((1, 32, 128, 128), np.float32)),
            width=1,
            height=1,
            image_sha256=SHA,
            model_name="m",
        )
    nan = embeddings["image_embed"].copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(bundle.BundleError, match="NaN"):
        bundle.write_bundle(dict(embeddings, image_embed=nan), width=1, height=1, image_sha256=SHA, model_name="m")


def test_check_fits(packed):
    read = bundle.read_bundle(packed)
    read.check_fits("m", image_sha256=SHA)
    with pytest.raises(bundle.BundleError, match="made with the model 'm', but the loaded decoder is 'other'"):
        read.check_fits("other")
    with pytest.raises(bundle.BundleError, match="different photo"):
        read.check_fits("m", image_sha256="cd" * 32)


def mutate(packed, change):
    doc = document(packed)
    change(doc)
    return repack(doc)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(version=2), "format version 2"),
        (lambda d: d.pop("format"), "not a samtab bundle"),
        (lambda d: d["model"].update(contract="sam1"), "contract"),
        (lambda d: d["model"].pop("name"), "does not name the model"),
        (lambda d: d["image"].update(width=0), "width 0"),
        (lambda d: d["image"].update(height=1.5), "height 1.5"),
        (lambda d: d["image"].update(sha256="xyz"), "sha256"),
        (lambda d: d["tensors"].pop("image_embed"), "missing image_embed"),
        (lambda d: d["tensors"].update(extra=d["tensors"]["image_embed"]), "unknown extra"),
        (lambda d: d["tensors"]["image_embed"].update(shape=[1, 256, 32, 128]), "image_embed has shape"),
        (lambda d: d["tensors"]["image_embed"].update(dtype="int8"), "dtype 'int8'"),
        (lambda d: d["tensors"]["image_embed"].update(dtype="float32"), "truncated or mislabelled"),
        (
            lambda d: d["tensors"]["high_res_feats_1"].update(data=d["tensors"]["high_res_feats_1"]["data"][:-2]),
            "truncated",
        ),
        (lambda d: d["tensors"]["high_res_feats_1"].update(data="text"), "not binary"),
    ],
)
def test_reader_names_what_is_wrong(packed, change, message):
    with pytest.raises(bundle.BundleError, match=message):
        bundle.read_bundle(mutate(packed, change))


def test_reader_refuses_nan_values(packed):
    def poison(doc):
        data = bytearray(doc["tensors"]["image_embed"]["data"])
        data[10:12] = np.array([np.inf], "<f2").tobytes()
        doc["tensors"]["image_embed"]["data"] = bytes(data)

    with pytest.raises(bundle.BundleError, match="NaN or infinite"):
        bundle.read_bundle(mutate(packed, poison))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a readable MessagePack"),
        (b"\x92\x01\x02", "must be a MessagePack map"),
        (b"not a bundle at all", "not a readable MessagePack|must be a MessagePack map"),
        (msgpack.packb({"a": msgpack.ExtType(5, b"x")}), "extension type"),
        (b"\x82\xa1a\x01\xa1a\x02", "key 'a' twice"),
        (b"\x91" * 100_000, "nested too deeply|not a readable"),
        (b"\xdb\xff\xff\xff\xff", "not a readable"),  # a str claiming 4 GiB
        (b"\x00" * (bundle.MAX_BUNDLE_BYTES + 1), "more than a bundle can be"),
    ],
)
def test_reader_refuses_garbage(data, message):
    with pytest.raises(bundle.BundleError, match=message):
        bundle.read_bundle(data)


def test_truncated_bundle_is_refused(packed):
    for cut in (1, 100, len(packed) // 2, len(packed) - 1):
        with pytest.raises(bundle.BundleError):
            bundle.read_bundle(packed[:cut])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_end_in_bundle_error(data):
    with pytest.raises(bundle.BundleError):
        bundle.read_bundle(data)


@pytest.mark.parametrize("layout", ["samtab", "wild-msgpack", "wild-manifest"])
@pytest.mark.parametrize("width, height", [(60000, 60000), (65535, 1526), (10001, 10000)])
def test_reader_refuses_more_pixels_than_samtab_opens(packed, embeddings, layout, width, height):
    """A bundle's declared size is what the page resizes the photo to and what the tools write masks at:
    65535 x 65535 cost them gigabytes (MemoryError in the page, 16 GiB in tools/segment.py)."""
    with pytest.raises(bundle.BundleError) as refused:
        read_sized(packed, embeddings, layout, width, height)
    message = str(refused.value)
    assert f"declares a {width}x{height} photo" in message  # what the bundle says
    assert "more than the 100 MP samtab opens (100,000,000 pixels)" in message  # the cap
    assert "scale it down to at most 100 MP and encode it again with tools/encode.py" in message  # what to do


@pytest.mark.parametrize("layout", ["samtab", "wild-msgpack", "wild-manifest"])
@pytest.mark.parametrize("width, height", [(10000, 10000), (65535, 1525), (1525, 65535)])
def test_reader_opens_photos_up_to_the_cap(packed, embeddings, layout, width, height):
    assert width * height <= contract.MAX_PHOTO_PIXELS
    read = read_sized(packed, embeddings, layout, width, height)
    assert (read.width, read.height, read.layout) == (width, height, layout)


def read_sized(packed, embeddings, layout, width, height) -> bundle.Bundle:
    """A valid bundle of `layout` declaring the photo size width x height, read."""
    if layout == "samtab":
        return bundle.read_bundle(mutate(packed, lambda d: d["image"].update(width=width, height=height)))
    if layout == "wild-msgpack":
        return bundle.read_bundle(repack(wild_document(embeddings, height, width)))
    manifest, blob = manifest_layout(embeddings)
    manifest.update(originalWidth=width, originalHeight=height)
    return bundle.read_manifest_bundle(json.dumps(manifest), blob)


def wild_document(embeddings, height=427, width=640):
    return {
        "tensors": {n: {"data": a.astype("<f2").tobytes(), "shape": list(a.shape)} for n, a in embeddings.items()},
        "original_size": [height, width],
    }


def test_wild_msgpack_layout(embeddings):
    doc = wild_document(embeddings)
    read = bundle.read_bundle(repack(doc))
    assert (read.layout, read.width, read.height, read.model_name, read.dtype) == (
        "wild-msgpack",
        640,
        427,
        None,
        "float16",
    )
    read.check_fits("any model")  # it names none, so the caller's model is taken
    doc["tensors"]["image_embed"]["data"] = doc["tensors"]["image_embed"]["data"][:-6]
    with pytest.raises(bundle.BundleError, match="neither float16 nor float32"):
        bundle.read_bundle(repack(doc))


def manifest_layout(embeddings, dtype="<f4", label="float32"):
    blob, tensors = b"", {}
    for name, array in embeddings.items():
        tensors[name] = {"offset": len(blob), "shape": list(array.shape), "dtype": label}
        blob += array.astype(dtype).tobytes()
    return {"originalWidth": 640, "originalHeight": 427, "tensors": tensors}, blob


def test_wild_manifest_layout(embeddings):
    manifest, blob = manifest_layout(embeddings)
    read = bundle.read_manifest_bundle(json.dumps(manifest), blob)
    assert (read.layout, read.width, read.height, read.dtype) == ("wild-manifest", 640, 427, "float32")
    np.testing.assert_array_equal(read.embeddings()["high_res_feats_0"], embeddings["high_res_feats_0"])


def test_wild_manifest_mislabelled_float32_is_read_by_its_byte_count(embeddings):
    manifest, blob = manifest_layout(embeddings, "<f4", "float16")
    read = bundle.read_manifest_bundle(manifest, blob)
    assert read.dtype == "float32"
    np.testing.assert_array_equal(read.embeddings()["image_embed"], embeddings["image_embed"])


@pytest.mark.parametrize("label", ["complex128", "float64", "int8", "bfloat16", "Float32", "", None, 32, ["float32"]])
def test_wild_manifest_refuses_a_dtype_label_other_than_float16_or_float32(embeddings, label):
    """The byte count used to decide alone, so complex128 over float32-sized data was read as float32."""
    manifest, blob = manifest_layout(embeddings)
    manifest["tensors"]["high_res_feats_0"]["dtype"] = label
    if label is None:
        del manifest["tensors"]["high_res_feats_0"]["dtype"]
    with pytest.raises(
        bundle.BundleError,
        match=r"high_res_feats_0 has dtype .*, but samtab reads float16 or float32 "
        r"embeddings only; export them as float16 or float32",
    ):
        bundle.read_manifest_bundle(json.dumps(manifest), blob)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m, b: (m["tensors"]["image_embed"].update(offset=10**9), b), "outside embedding.bin"),
        (lambda m, b: (m["tensors"]["image_embed"].update(offset=-4), b), "outside embedding.bin"),
        (lambda m, b: (m, b[:-100]), "does not hold"),
        (lambda m, b: (m.update(originalWidth="640"), b), "originalWidth"),
        (lambda m, b: (m["tensors"].pop("high_res_feats_1"), b), "exactly"),
    ],
)
def test_wild_manifest_errors(embeddings, change, message):
    manifest, blob = manifest_layout(embeddings)
    _, blob2 = change(manifest, blob)
    with pytest.raises(bundle.BundleError, match=message):
        bundle.read_manifest_bundle(manifest, blob2 if blob2 is not None else blob)
