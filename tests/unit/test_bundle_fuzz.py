"""Fuzzing the bundle readers (pyapp.bundle) with hypothesis: 10,000 generated and mutated bundles per run.

Six tests build inputs close to valid ones and break them (their share of the cases is in SHARES):

  samtab_small  structured mutations of the samtab document with tiny tensors: every field set to wrong
                types and near-misses, deleted, extra and non-str keys, data cut or grown, NaN and friends
  samtab_full   the same on the full-size document (8 MiB), so the shape, byte-count and NaN checks run
  wild          the same on the in-the-wild layout {tensors: {name: {data, shape}}, original_size: [H, W]}
  raw           hand-made MessagePack put into bundles or read alone: huge declared lengths, extension
                types (incl. the timestamp, -1), deep nesting, wide containers, duplicate and non-str keys
                written at the byte level, 0xc1, headers that lie, bytes after the end
  bytes         byte-level damage to packed bundles: truncation, bit flips, inserts, deletes, splices
  manifest      manifest.json + embedding.bin: bad, overlapping, negative, huge and non-int offsets, labels,
                shapes, entries, the JSON text itself (cut, flipped, duplicate keys, deep, around the size cap)

Every case is a recipe (kind, base, mutations); a failing one is printed as corpus JSON, ready to be kept
in bundle_corpus/ (see its README), where the full-size ones stay recipes instead of 8 MiB files.

The oracle, for every input: the reader returns a Bundle that is valid by the contract or raises BundleError
with a message; any other exception is a crash. Where the test knows the document (all but `bytes` and
inputs with lying headers) it also predicts the verdict from its own reading of docs/bundle-format.md. A
valid result must hold exactly the input's values: the document's, or (where the test does not know it)
what msgpack decodes from the same bytes; for manifests, the bytes at the offsets the format picks. The
regression corpus (test_corpus) runs every kept case through the same oracle. Each call runs under a time
limit (CASE_SECONDS: SIGALRM interrupts a hang in Python code, and the measured time fails a slow call in C
code) and under tracemalloc (numpy's buffers are traced), on every case. Its peak must stay within the
reader's design bound:

  copies of the input  none of a bytes input (the tensors are views of it); a bytearray or memoryview is
                       copied to bytes once; an embedding.bin that is not a flat byte view ('f' from a
                       Float32Array) is copied once
  + MASK_BYTES         np.isfinite's boolean mask of the largest tensor (2 MiB)
  + META_BYTES         the metadata msgpack decodes (at most bundle.MAX_META_BYTES, held up to three times:
                       the bytes msgpack gets, msgpack.fallback's buffer, the decoded strings), at most
                       bundle.MAX_ITEMS small objects, and the error message
  + MANIFEST_BYTES     for manifests: json.loads of at most bundle.MAX_MANIFEST_BYTES of text

The reader runs under both msgpack implementations (IMPLEMENTATIONS): the C extension CPython uses, and the
pure-Python msgpack.fallback the page runs in Pyodide. Each fuzz test gives each half of its cases, from seeds
RUN_SEED and RUN_SEED + 1; the corpus runs whole under each.

Budget: DEFAULT_CASES in all; `pytest --fuzz-cases N` or SAMTAB_FUZZ_CASES=N for longer runs (split by the
same shares). Every run draws a fresh seed, printed in each summary line and on failure; SAMTAB_FUZZ_SEED=S
replays a run. Each test prints a one-line summary; SAMTAB_FUZZ_REPORT=path also writes them as JSON.
"""

from __future__ import annotations

import copy
import functools
import json
import lzma
import math
import os
import random
import re
import signal
import time
import tracemalloc
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import msgpack.fallback
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pyapp import bundle, contract
from pyapp.bundle import Bundle, BundleError

# --- budget, bounds ----------------------------------------------------------------------------------

DEFAULT_CASES = 10_000
SHARES = {"samtab_small": 1700, "samtab_full": 1300, "wild": 1300, "raw": 2000, "bytes": 2000, "manifest": 1700}
assert sum(SHARES.values()) == DEFAULT_CASES
RUN_SEED = int(os.environ.get("SAMTAB_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
CASE_SECONDS = 2.0

SHAPES = contract.EMBEDDING_SHAPES
NAMES = tuple(SHAPES)
COUNT = {name: math.prod(shape) for name, shape in SHAPES.items()}
ITEMSIZE = {"float16": 2, "float32": 4}
MASK_BYTES = max(COUNT.values())
META_BYTES = 512 * 1024
MANIFEST_BYTES = 2 * 2**20
FULL_SIZE = 2**20  # inputs this large carry real tensors: they reach the shape, byte-count and NaN checks
KNOWN_KEYS = {"format", "version", "model", "image", "tensors"}
SHA = "ab" * 32


def total_cases(config: pytest.Config) -> int:
    return config.getoption("--fuzz-cases", default=None) or int(os.environ.get("SAMTAB_FUZZ_CASES") or DEFAULT_CASES)


def budget(config: pytest.Config, name: str) -> int:
    """The cases of one fuzz test under one msgpack implementation."""
    return max(1, round(total_cases(config) * SHARES[name] / DEFAULT_CASES / len(IMPLEMENTATIONS)))


# The MessagePack decoders the reader runs under: {name: (unpackb, the module it must come from)}.
IMPLEMENTATIONS = {
    "c": (msgpack.unpackb, "msgpack._cmsgpack"),
    "python": (msgpack.fallback.unpackb, "msgpack.fallback"),
}


@dataclass
class Decoder:
    name: str  # of IMPLEMENTATIONS
    calls: int = 0  # the reader's calls to it: a valid bundle cannot be read without one

    def check_used(self) -> None:
        assert self.calls, f"the reader never decoded through bundle._unpackb, so msgpack {self.name} went untested"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request, monkeypatch) -> Decoder:
    """Point the reader at one msgpack implementation (this CPython has both: the C extension by default)."""
    unpackb, module = IMPLEMENTATIONS[request.param]
    assert unpackb.__module__ == module, f"{request.param}: msgpack's unpackb comes from {unpackb.__module__}"
    decoder = Decoder(request.param)

    def counted(*args, **kwargs):
        decoder.calls += 1
        return unpackb(*args, **kwargs)

    monkeypatch.setattr(bundle, "_unpackb", counted)
    return decoder


# --- running one case: time limit, traced peak, outcome ------------------------------------------------


@dataclass
class Stats:
    requested: int = 0
    cases: int = 0
    valid: int = 0
    refused: int = 0
    predicted: int = 0  # cases whose verdict the test predicted from the format (and the reader matched)
    full_size: int = 0
    max_seconds: float = 0.0
    read_seconds: float = 0.0  # in the reader, of `seconds`
    max_peak: int = 0
    max_over_copies: int = 0  # peak minus the copies of the input the bound allows
    seconds: float = 0.0
    messages: Counter = field(default_factory=Counter)


STATS: dict[str, Stats] = {}


class Hang(Exception):
    """A reader call ran past CASE_SECONDS."""


def _on_alarm(signum, frame):
    raise Hang(f"the reader ran past {CASE_SECONDS} s: a hang")


def message_prefix(message: str) -> str:
    """The words of an error message before the first value in it (a number, quote or bracket)."""
    words = []
    for word in message.split():
        if len(words) == 8 or re.match(r"[-+]?\d|['\"\[({<]", word):
            break
        words.append(word)
    return " ".join(words) or message[:40]


def read_checked(stats: Stats, read, *args, size: int, copies: int, extra: int = 0) -> Bundle | BundleError:
    """One reader call, timed and traced. Returns the Bundle or the BundleError; anything else raised goes
    through (a crash). Fails on a hang or a peak beyond `copies` + MASK_BYTES + META_BYTES + `extra`."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = read(*args)
    except BundleError as error:
        result = error
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    stats.cases += 1
    stats.full_size += size >= FULL_SIZE
    stats.max_seconds = max(stats.max_seconds, seconds)
    stats.read_seconds += seconds
    stats.max_peak = max(stats.max_peak, peak)
    stats.max_over_copies = max(stats.max_over_copies, peak - copies)
    assert seconds <= CASE_SECONDS, f"the reader took {seconds:.2f} s"
    assert peak <= copies + MASK_BYTES + META_BYTES + extra, (
        f"the reader allocated {peak / 2**20:.2f} MiB for a {size / 2**20:.2f} MiB input"
    )
    if isinstance(result, BundleError):
        assert str(result).strip(), "BundleError without a message"
        stats.refused += 1
        stats.messages[message_prefix(str(result))] += 1
    else:
        assert isinstance(result, Bundle), f"the reader returned {type(result).__name__}"
        check_bundle(result)
        stats.valid += 1
    return result


def check_bundle(result: Bundle) -> None:
    """A Bundle the reader returned is valid by the contract, whatever the input was."""
    assert list(result.tensors) == list(NAMES)
    for name, array in result.tensors.items():
        assert array.shape == SHAPES[name], (name, array.shape)
        assert array.dtype in (np.dtype("<f2"), np.dtype("<f4")), (name, array.dtype)
        assert finite(array), f"{name} holds NaN or infinity"
    assert is_size(result.width, result.height), (result.width, result.height)
    if result.layout == "samtab":
        assert isinstance(result.model_name, str) and result.model_name.strip(), result.model_name
        assert isinstance(result.image_sha256, str) and re.fullmatch("[0-9a-f]{64}", result.image_sha256)
        assert result.version == bundle.VERSION
        assert all(type(key) is str and key not in KNOWN_KEYS for key in result.extra), result.extra.keys()
    else:
        assert result.layout in ("wild-msgpack", "wild-manifest"), result.layout
        assert result.model_name is None and result.image_sha256 is None


def verdict(stats: Stats, result: Bundle | BundleError, expected: str | None | bool, what: str) -> None:
    """`expected`: None (valid), a reason the input is invalid, or False (unknown: anything goes)."""
    if expected is False:
        return
    stats.predicted += 1
    if expected is None:
        assert isinstance(result, Bundle), f"a valid {what} was refused: {result}"
    else:
        assert isinstance(result, BundleError), f"an invalid {what} ({expected}) was accepted as valid"


# --- the documents: full-size and small data, the two MessagePack layouts ------------------------------


@functools.cache
def full_data() -> dict[str, dict[str, bytes]]:
    """The encoder outputs of a made-up photo, as float16 and float32 bytes: built once, shared by every case."""
    rng = np.random.default_rng(7)
    arrays = {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in SHAPES.items()}
    return {
        dtype: {name: a.astype(f"<f{ITEMSIZE[dtype]}").tobytes() for name, a in arrays.items()} for dtype in ITEMSIZE
    }


@functools.cache
def small_data() -> dict[str, dict[str, bytes]]:
    """Eight values per tensor: cheap documents, refused at the byte counts at the latest, so what they
    exercise is every check before."""
    values = np.linspace(-2, 2, 8, dtype=np.float32)
    return {dtype: {name: values.astype(f"<f{ITEMSIZE[dtype]}").tobytes() for name in NAMES} for dtype in ITEMSIZE}


def base_data(size: str) -> dict[str, dict[str, bytes]]:
    return full_data() if size == "full" else small_data()


EXPONENT = {"float16": 0x7C00, "float32": 0x7F800000}


def finite(values: np.ndarray) -> bool:
    """No NaN or infinity, by the exponent bits (independent of the reader's np.isfinite, and ten times as
    fast for float16)."""
    dtype = values.dtype.name
    return not ((values.view(f"<u{ITEMSIZE[dtype]}") & EXPONENT[dtype]) == EXPONENT[dtype]).any()


def is_finite(data: bytes | memoryview, dtype: str) -> bool:
    if any(data is known for sizes in (full_data(), small_data()) for known in sizes[dtype].values()):
        return True
    return finite(np.frombuffer(data, f"<f{ITEMSIZE[dtype]}"))


def same_values(array: np.ndarray, data: bytes | memoryview) -> bool:
    """The array holds exactly these bytes (compared as integers: NaN-safe, no copy of the array)."""
    unsigned = f"<u{array.dtype.itemsize}"
    return memoryview(data).nbytes == array.nbytes and np.array_equal(
        array.view(unsigned).ravel(), np.frombuffer(data, unsigned)
    )


def make_document(layout: str, size: str) -> dict:
    """A valid document (or, with small data, one valid but for its tensors' sizes); the bytes are shared."""
    data = base_data(size)["float16"]
    if layout == "wild":
        return {
            "tensors": {n: {"data": data[n], "shape": list(s)} for n, s in SHAPES.items()},
            "original_size": [427, 640],
        }
    return {
        "format": bundle.FORMAT,
        "version": bundle.VERSION,
        "model": {"name": "m", "contract": contract.CONTRACT},
        "image": {"width": 640, "height": 427, "sha256": SHA},
        "tensors": {n: {"dtype": "float16", "shape": list(s), "data": data[n]} for n, s in SHAPES.items()},
    }


# --- raw MessagePack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes standing for one MessagePack item inside a document."""

    data: bytes
    exact: bool = True  # one complete item, exactly as its headers declare
    refused: bool = False  # holds what no bundle may (ext, 0xc1, bad UTF-8, a non-str or repeated key,
    #                        a string or container over the caps): the reader must refuse it wherever it is
    depth: int = 0  # nested arrays and maps
    items: int = 1  # MessagePack items, itself included
    text: str | None = None  # the decoded string, when it is one
    payload: int = 0  # bytes of bin payloads in it (the rest counts towards bundle.MAX_META_BYTES)


class Pairs(list):
    """A map as (key, value) pairs: keys may repeat or be Raw, which a dict cannot express."""


HEAD = {
    "str": {"fix": (0xA0, 31), "8": (0xD9, 1), "16": (0xDA, 2), "32": (0xDB, 4)},
    "bin": {"8": (0xC4, 1), "16": (0xC5, 2), "32": (0xC6, 4)},
    "array": {"fix": (0x90, 15), "16": (0xDC, 2), "32": (0xDD, 4)},
    "map": {"fix": (0x80, 15), "16": (0xDE, 2), "32": (0xDF, 4)},
}


def forms(kind: str, n: int) -> list[str]:
    """The header forms that can declare `n` (non-canonical wide ones included: they are valid MessagePack)."""
    return [form for form, (_, size) in HEAD[kind].items() if (n <= size if form == "fix" else n < 256**size)]


def header(kind: str, n: int, form: str) -> bytes:
    first, size = HEAD[kind][form]
    return bytes([first | n]) if form == "fix" else bytes([first]) + n.to_bytes(size, "big")


def encode(value: Any) -> bytes:
    """MessagePack, with Raw items and Pairs maps written as they are."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, (dict, Pairs)):
        pairs = list(value.items()) if isinstance(value, dict) else value
        body = b"".join(encode(k) + encode(v) for k, v in pairs)
        return header("map", len(pairs), forms("map", len(pairs))[0]) + body
    if isinstance(value, list):
        return header("array", len(value), forms("array", len(value))[0]) + b"".join(map(encode, value))
    return msgpack.packb(value, use_bin_type=True)


def walk_raw(value: Any):
    """(Raw, used as a key) for every Raw in a document, and every Pairs map."""
    if isinstance(value, Raw):
        yield value, False
    elif isinstance(value, (dict, Pairs)):
        if isinstance(value, Pairs):
            yield value, False
        for key, item in value.items() if isinstance(value, dict) else value:
            if isinstance(key, Raw):
                yield key, True
            yield from walk_raw(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_raw(item)


def measure(value: Any) -> tuple[int, int, bool, int]:
    """(MessagePack items, nested arrays and maps, every string and container within the caps, bytes of bin
    payloads)."""
    if isinstance(value, Raw):
        return value.items, value.depth, True, value.payload
    if isinstance(value, (dict, Pairs, list)):
        if isinstance(value, list) and not isinstance(value, Pairs):
            children, entries = value, len(value)
        else:
            pairs = list(value.items()) if isinstance(value, dict) else value
            children, entries = [part for pair in pairs for part in pair], len(pairs)
        items, depth, within, payload = 1, 0, entries <= bundle.MAX_META_ITEMS, 0
        for child in children:
            i, d, w, b = measure(child)
            items, depth, within, payload = items + i, max(depth, d), within and w, payload + b
        return items, depth + 1, within, payload
    if isinstance(value, str):
        return 1, 0, len(value.encode("utf-8", "surrogatepass")) <= bundle.MAX_STR_BYTES, 0
    return 1, 0, True, len(value) if isinstance(value, bytes) else 0


# --- what docs/bundle-format.md says, read independently of the reader --------------------------------


def is_side(value: Any) -> bool:
    return type(value) is int and 1 <= value <= bundle.MAX_IMAGE_SIDE


def is_size(width: Any, height: Any) -> bool:
    return is_side(width) and is_side(height) and width * height <= contract.MAX_PHOTO_PIXELS


def keys_are_str(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str for k in value) and all(keys_are_str(v) for v in value.values())
    return all(keys_are_str(v) for v in value) if isinstance(value, list) else True


def spec_tensors(entries: Any, labelled: bool) -> str | None:
    if not isinstance(entries, dict) or set(entries) != set(NAMES):
        return "not exactly the three tensors"
    for name, shape in SHAPES.items():
        entry = entries[name]
        if not isinstance(entry, dict):
            return f"{name} is not a map"
        dims = entry.get("shape")
        if not (type(dims) is list and all(type(d) is int for d in dims) and tuple(dims) == shape):
            return f"{name}'s shape"
        data = entry.get("data")
        if type(data) is not bytes:
            return f"{name}'s data is not bin"
        if labelled:
            dtype = entry.get("dtype")
            if type(dtype) is not str or dtype not in ITEMSIZE or len(data) != COUNT[name] * ITEMSIZE[dtype]:
                return f"{name}'s dtype or byte count"
        else:
            dtype = {COUNT[name] * size: d for d, size in ITEMSIZE.items()}.get(len(data))
            if dtype is None:
                return f"{name}'s byte count"
        if not is_finite(data, dtype):
            return f"{name} holds NaN or infinity"
    return None


def spec_document(doc: Any) -> str | None:
    """Why a decoded document is not a valid bundle, or None."""
    if not isinstance(doc, dict):
        return "not a map"
    if not keys_are_str(doc):
        return "a key is not a string"
    if doc.get("format") == bundle.FORMAT:
        model, image = doc.get("model"), doc.get("image")
        if type(doc.get("version")) is not int or doc["version"] != bundle.VERSION:
            return "version"
        if not isinstance(model, dict) or model.get("contract") != contract.CONTRACT:
            return "model contract"
        if not isinstance(model.get("name"), str) or not model["name"].strip():
            return "model name"
        if not isinstance(image, dict) or not is_size(image.get("width"), image.get("height")):
            return "image size"
        if not isinstance(image.get("sha256"), str) or not re.fullmatch("[0-9a-f]{64}", image["sha256"]):
            return "sha256"
        return spec_tensors(doc.get("tensors"), labelled=True)
    if "tensors" in doc and "original_size" in doc:
        size = doc["original_size"]
        if not (type(size) is list and len(size) == 2 and is_size(size[1], size[0])):
            return "original_size"
        return spec_tensors(doc["tensors"], labelled=False)
    return "neither layout"


def expectation(doc: Any, packed_size: int) -> str | None | bool:
    """The verdict for a (possibly Raw-holding) document of `packed_size` bytes: None valid, a reason, or
    False (unknown)."""
    raws = list(walk_raw(doc))
    maps = [item for item, _ in raws if isinstance(item, Pairs)]
    raws = [(item, as_key) for item, as_key in raws if isinstance(item, Raw)]
    if any(not item.exact for item, _ in raws):
        return False  # a header that lies shifts everything after it: no prediction
    if any(item.refused for item, _ in raws):
        return "a forbidden item"
    if any(as_key and item.text is None for item, as_key in raws):
        return "a key that is not a string"
    for pairs in maps:
        texts = [k.text if isinstance(k, Raw) else k for k, _ in pairs]
        if len(set(map(repr, texts))) != len(texts):
            return "a key twice"
    items, depth, within, payload = measure(doc)
    if not within or items > bundle.MAX_ITEMS or depth > bundle.MAX_DEPTH:
        return "over the MessagePack caps"
    if packed_size - payload > bundle.MAX_META_BYTES:
        return "over the metadata cap"
    return spec_document(decoded(doc))


def decoded(value: Any) -> Any:
    """The document as the reader decodes it, once its Raw items are known to be exact and allowed: only
    those are decoded (with msgpack), the rest (and the tensors' bytes) are the document's own."""
    if isinstance(value, Raw):
        return msgpack.unpackb(value.data, raw=False, strict_map_key=False)
    if isinstance(value, (dict, Pairs)):
        pairs = value.items() if isinstance(value, dict) else value
        return {(k.text if isinstance(k, Raw) else k): decoded(v) for k, v in pairs}
    return [decoded(v) for v in value] if isinstance(value, list) else value


def plain(value: Any) -> Any:
    """A decoded value with the reader's memoryviews (its bin payloads) as bytes, to compare with the document."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, list) else value


def check_matches(result: Bundle, doc: dict) -> None:
    """A valid result holds exactly the document's values."""
    if result.layout == "samtab":
        image = doc["image"]
        assert (result.width, result.height, result.image_sha256, result.model_name) == (
            image["width"],
            image["height"],
            image["sha256"],
            doc["model"]["name"],
        )
        assert repr(plain(result.extra)) == repr({k: v for k, v in doc.items() if k not in KNOWN_KEYS})
    else:
        assert [result.height, result.width] == doc["original_size"]
    for name, array in result.tensors.items():
        assert same_values(array, doc["tensors"][name]["data"]), name


# --- mutations of a document ---------------------------------------------------------------------------


def shape_variants(name: str) -> list:
    shape = list(SHAPES[name])
    out = [
        shape,
        shape[1:],
        shape + [1],
        shape[::-1],
        [],
        [shape],
        [True] + shape[1:],
        [-1] + shape[1:],
        [2**64 - 1] + shape[1:],
        shape[:2] + [shape[2] * shape[3]],
        [COUNT[name]],
        ",".join(map(str, shape)),
    ]
    for i in range(4):
        for dim in (shape[i] + 1, shape[i] - 1, float(shape[i]), str(shape[i])):
            out.append(shape[:i] + [dim] + shape[i + 1 :])
    return out + [list(SHAPES[other]) for other in NAMES if other != name]


SIDE_NEAR = [
    1,
    2,
    427,
    640,
    65535,
    0,
    -1,
    65536,
    2**31,
    2**64 - 1,
    True,
    False,
    1.0,
    640.0,
    640.5,
    "640",
    b"640",
    None,
    [640],
    math.nan,
    math.inf,
    1525,
    1526,
    10000,
    10001,
]
# (width, height) either side of contract.MAX_PHOTO_PIXELS (100 MP): 65535 x 1526 is 100,006,410 pixels
SIZE_NEAR = [
    (10000, 10000),
    (10001, 10000),
    (10000, 10001),
    (65535, 1525),
    (65535, 1526),
    (1526, 65535),
    (65535, 65535),
    (60000, 60000),
]
DTYPE_NEAR = [
    "float16",
    "float32",
    "float64",
    "int8",
    "uint16",
    "bfloat16",
    "float16 ",
    "Float16",
    "FLOAT32",
    "<f2",
    "f2",
    "half",
    "",
    b"float16",
    None,
    16,
    ["float16"],
    {"name": "float16"},
]
DATA_NEAR = [None, "abc", [0.5, -0.5, 0.0, 1.0], b"", 0, {"data": b"\x00\x00"}]
NEAR = {
    "samtab": {
        ("format",): [
            bundle.FORMAT,
            "samtab-bundle ",
            " samtab-bundle",
            "Samtab-bundle",
            "samtab-bundle\x00",
            "samtab_bundle",
            "samtab",
            "",
            b"samtab-bundle",
            None,
            1,
        ],
        ("version",): [1, True, 1.0, 2, 0, -1, "1", b"\x01", None, [1], 2**64 - 1],
        ("model", "name"): [
            "m",
            "sam2-hiera-tiny",
            "",
            " ",
            "\t\n",
            "\u00a0",
            "\u00e9",
            "x" * 4096,
            "x" * 4097,
            b"m",
            None,
            0,
            ["m"],
        ],
        ("model", "contract"): [contract.CONTRACT, "sam1", "SAM2", "sam2 ", "", b"sam2", None, 2],
        ("image", "width"): SIDE_NEAR,
        ("image", "height"): SIDE_NEAR,
        ("image", "sha256"): [
            SHA,
            "0" * 64,
            "f" * 64,
            SHA.upper(),
            SHA + "\n",
            "\n" + SHA,
            SHA + " ",
            SHA[:-2],
            SHA + "ab",
            "g" * 64,
            SHA[:-1],
            SHA + "\x00",
            SHA.encode(),
            None,
            0,
        ],
        ("model",): [{}, [], "m", None],
        ("tensors",): [{}, [], None],
        ("image",): [{}, [640, 427], None] + [{"width": w, "height": h, "sha256": SHA} for w, h in SIZE_NEAR],
        **{("tensors", n): [{}, [], None, b""] for n in NAMES},
        **{("tensors", n, "dtype"): DTYPE_NEAR for n in NAMES},
        **{("tensors", n, "shape"): shape_variants(n) for n in NAMES},
        **{("tensors", n, "data"): DATA_NEAR for n in NAMES},
    },
    "wild": {
        ("original_size",): [
            [427, 640],
            [640, 427],
            [1, 1],
            [65535, 65535],
            [0, 640],
            [427],
            [427, 640, 3],
            [427.0, 640],
            [True, 640],
            ["427", 640],
            [],
            None,
            427,
            [[427, 640]],
            [65536, 1],
            [-1, 1],
            {"h": 427},
        ]
        + [[h, w] for w, h in SIZE_NEAR],
        ("format",): ["other", bundle.FORMAT, None, b"samtab-bundle"],
        ("tensors",): [{}, [], None],
        **{("tensors", n): [{}, [], None, b""] for n in NAMES},
        **{("tensors", n, "shape"): shape_variants(n) for n in NAMES},
        **{("tensors", n, "data"): DATA_NEAR for n in NAMES},
        **{("tensors", n, "dtype"): ["float16", "float32", "int8"] for n in NAMES},  # ignored by the layout
    },
}
MAPS = {
    "samtab": [(), ("model",), ("image",), ("tensors",)] + [("tensors", n) for n in NAMES],
    "wild": [(), ("tensors",)] + [("tensors", n) for n in NAMES],
}
DATA_VARIANTS = {
    "cut1": lambda d, name, size: d[:-1],
    "cut2": lambda d, name, size: d[:-2],
    "cut4": lambda d, name, size: d[:-4],
    "grow1": lambda d, name, size: d + b"\x00",
    "grow2": lambda d, name, size: d + b"\x00\x00",
    "half": lambda d, name, size: d[: len(d) // 2],
    "double": lambda d, name, size: d + d,
    "empty": lambda d, name, size: b"",
    "float32": lambda d, name, size: base_data(size)["float32"][name],
    "float16": lambda d, name, size: base_data(size)["float16"][name],
    "other": lambda d, name, size: base_data(size)["float16"][NAMES[(NAMES.index(name) + 1) % 3]],
    "floats": lambda d, name, size: [0.5] * 8,
    "text": lambda d, name, size: "data",
}
# float16 and float32 bit patterns written into tensor data: the first five must be refused, the rest kept
PATTERNS = {
    "nan": (0x7E00, 0x7FC00000),
    "snan": (0x7C01, 0x7F800001),
    "-nan": (0xFE00, 0xFFC00000),
    "inf": (0x7C00, 0x7F800000),
    "-inf": (0xFC00, 0xFF800000),
    "-0": (0x8000, 0x80000000),
    "subnormal": (0x0001, 0x00000001),
    "-subnormal": (0x83FF, 0x807FFFFF),
    "max": (0x7BFF, 0x7F7FFFFF),
    "-max": (0xFBFF, 0xFF7FFFFF),
}

JUNK_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, -1, 255, 256, 65535, 65536, 2**32, 2**63 - 1, 2**64 - 1, -(2**63)]),
    st.floats(),
    st.sampled_from([0.0, -0.0, 5e-324, 1.5, math.inf, -math.inf, math.nan]),
    st.text(max_size=12),
    st.binary(max_size=12),
)
JUNK = st.recursive(
    JUNK_LEAF,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "x",
            "extra",
            "format",
            "version",
            "model",
            "image",
            "tensors",
            "original_size",
            "image_embed",
            "name",
            "dtype",
            "data",
            "shape",
            "",
            "Format",
            "tensors ",
        ]
    ),
    st.text(max_size=8),
    st.integers(-2, 2),
    st.none(),
    st.binary(max_size=3),
    st.sampled_from([1.5, True]),
)


def at(doc: Any, path) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def apply_document_op(doc: Any, op: list, size: str) -> Any:
    """Apply one mutation to `doc` (in place where it can) and return the document. An op whose place is
    gone (an earlier op deleted or replaced it) does nothing."""
    kind, *args = op
    if kind in ("set", "del"):
        path = tuple(args[0])
        if not path:
            return copy.deepcopy(args[1]) if kind == "set" else doc
        parent = at(doc, path[:-1])
        if isinstance(parent, dict):
            if kind == "set":
                parent[path[-1]] = copy.deepcopy(args[1])
            else:
                parent.pop(path[-1], None)
    elif kind == "key":
        target = at(doc, args[0])
        if isinstance(target, dict):
            target[args[1]] = copy.deepcopy(args[2])
    elif kind in ("data", "poison", "as"):
        entry = at(doc, ("tensors", args[0]))
        if not isinstance(entry, dict):
            return doc
        name, data = args[0], entry.get("data")
        data = data if isinstance(data, bytes) else base_data(size)["float16"][name]
        if kind == "data":
            entry["data"] = DATA_VARIANTS[args[1]](data, name, size)
        elif kind == "as":
            entry["data"] = base_data(size)[args[1]][name]
            if "dtype" in entry or "format" in doc:
                entry["dtype"] = args[1]
        elif data:
            wide = entry.get("dtype") == "float32" or len(data) == 4 * COUNT[name]
            width = 4 if wide and len(data) >= 4 else 2
            index = args[1] % (len(data) // width) * width if len(data) >= width else 0
            poisoned = bytearray(data)
            poisoned[index : index + width] = PATTERNS[args[2]][width == 4].to_bytes(width, "little")
            entry["data"] = bytes(poisoned[: len(data)])
    elif kind == "all":
        for name in NAMES:
            doc = apply_document_op(doc, ["as", name, args[0]], size)
    elif kind in ("raw_add", "raw_set"):  # a Raw pair into the map at path (which becomes Pairs)
        path, key, value = tuple(args[0]), args[1], args[2]
        target = at(doc, path) if path else doc
        if not isinstance(target, (dict, Pairs)):
            return doc
        pairs = Pairs(target.items() if isinstance(target, dict) else target)
        if kind == "raw_set":
            pairs = Pairs((k, value if k == key else v) for k, v in pairs)
            if key not in [k for k, _ in pairs]:
                pairs.append((key, value))
        else:
            pairs.append((key, value))
        if not path:
            return pairs
        at(doc, path[:-1])[path[-1]] = pairs
    else:
        raise AssertionError(f"unknown op {op!r}")
    return doc


def document_ops(layout: str):
    near, maps = NEAR[layout], MAPS[layout]
    return st.one_of(
        st.sampled_from(sorted(near)).flatmap(  # a near miss (or a valid value) for the field
            lambda path: st.tuples(st.just("set"), st.just(path), st.sampled_from(near[path]))
        ),
        st.tuples(st.just("set"), st.sampled_from(sorted(near)), JUNK),
        st.tuples(st.just("del"), st.sampled_from(sorted(near))),
        st.tuples(st.just("key"), st.sampled_from(maps), KEYS, JUNK),
        st.tuples(st.just("data"), st.sampled_from(NAMES), st.sampled_from(sorted(DATA_VARIANTS))),
        st.tuples(
            st.just("poison"),
            st.sampled_from(NAMES),
            st.integers(0, 2**22) | st.just(-1),
            st.sampled_from(sorted(PATTERNS)),
        ),
        st.tuples(st.just("as"), st.sampled_from(NAMES), st.sampled_from(sorted(ITEMSIZE))),
        st.tuples(st.just("all"), st.sampled_from(sorted(ITEMSIZE))),
    ).map(list)


CONTAINERS = ["bytes", "bytes", "bytearray", "memoryview"]


def bundle_copies(data: bytes | bytearray, container: str) -> int:
    """The bytes read_bundle may copy: none of bytes (the tensors are views of it), all of anything else."""
    return 0 if container == "bytes" else len(data)


def as_container(data: bytes | bytearray, container: str):
    """The input as the reader gets it (a bytearray given as a bytearray is passed on, not copied)."""
    if container == "bytearray" and isinstance(data, bytearray):
        return data
    return {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview}[container](data)


def document_recipes(layout: str, size: str):
    return st.fixed_dictionaries(
        {
            "kind": st.just("document"),
            "layout": st.just(layout),
            "size": st.just(size),
            "ops": st.lists(document_ops(layout), max_size=3),
            "container": st.sampled_from(CONTAINERS),
        }
    )


def build_document(recipe: dict) -> tuple[Any, bytes]:
    """The document a recipe describes, and its bytes (before any byte-level `after` ops)."""
    doc = make_document(recipe["layout"], recipe["size"])
    for op in recipe.get("ops", []):
        doc = apply_document_op(doc, op, recipe["size"])
    raw = any(True for _ in walk_raw(doc))
    return doc, encode(doc) if raw else msgpack.packb(doc, use_bin_type=True)


# --- raw MessagePack strategies ------------------------------------------------------------------------


def _raw_str(payload: bytes, form: str) -> Raw:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return Raw(
        header("str", len(payload), form) + payload,
        refused=text is None or len(payload) > bundle.MAX_STR_BYTES,
        text=text,
    )


def _with_form(kind: str, payloads, make):
    return payloads.flatmap(lambda p: st.sampled_from(forms(kind, len(p))).map(lambda form: make(p, form)))


FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
RAW_NUMBER = st.one_of(
    st.integers(-(2**63), 2**64 - 1).map(lambda v: Raw(msgpack.packb(v))),
    st.sampled_from(sorted(FIXED)).flatmap(  # every width, non-canonical ones too, any payload (NaN, -0, ...)
        lambda first: st.binary(min_size=FIXED[first], max_size=FIXED[first]).map(lambda p: Raw(bytes([first]) + p))
    ),
    st.sampled_from(
        [
            b"\xc0",
            b"\xc2",
            b"\xc3",
            b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
            b"\xca\xff\x80\x00\x00",
            b"\xcb\x80\x00\x00\x00\x00\x00\x00\x00",
        ]
    ).map(Raw),
)
RAW_STR = _with_form(
    "str",
    st.one_of(
        st.text(max_size=16).map(str.encode),
        st.binary(max_size=16),
        st.sampled_from([4095, 4096, 4097]).map(lambda n: b"a" * n),
    ),
    _raw_str,
)
RAW_BIN = _with_form(
    "bin",
    st.binary(max_size=16) | st.just(b"\x00" * 5000),
    lambda p, form: Raw(header("bin", len(p), form) + p, payload=len(p)),
)
EXT_FIXED = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


@st.composite
def raw_ext(draw) -> Raw:
    code = draw(st.just(-1) | st.integers(-128, 127))  # -1: the timestamp, which msgpack decodes itself
    size = draw(st.sampled_from([4, 8, 12, 1, 2, 16, 0, 3, 300]))
    payload = draw(st.binary(min_size=size, max_size=size))
    if size in EXT_FIXED and draw(st.booleans()):
        head = bytes([EXT_FIXED[size]])
    else:
        first, width = draw(st.sampled_from([(0xC7, 1), (0xC8, 2), (0xC9, 4)]).filter(lambda f: size < 256 ** f[1]))
        head = bytes([first]) + size.to_bytes(width, "big")
    return Raw(head + code.to_bytes(1, "big", signed=True) + payload, refused=True)


@st.composite
def raw_lie(draw) -> Raw:
    """A header declaring more (or other) than follows: huge lengths, counts that do not match, cut numbers."""
    kind = draw(st.sampled_from(["str", "bin", "array", "map", "number"]))
    payload = draw(st.binary(max_size=8))
    if kind == "number":
        first = draw(st.sampled_from(sorted(FIXED)))
        return Raw(bytes([first]) + payload[: FIXED[first] - 1], exact=False)
    declared = draw(
        st.sampled_from([2**16 - 1, 2**32 - 1, 2**31, bundle.MAX_BUNDLE_BYTES, bundle.MAX_BUNDLE_BYTES + 1, 65, 4097])
        | st.integers(0, 20)
    )
    return Raw(header(kind, declared, draw(st.sampled_from(forms(kind, declared)))) + payload, exact=False)


@st.composite
def raw_deep(draw) -> Raw:
    depth = draw(
        st.sampled_from(
            [bundle.MAX_DEPTH - 2, bundle.MAX_DEPTH - 1, bundle.MAX_DEPTH, bundle.MAX_DEPTH + 1, 1000, 1023, 1024, 1025]
        )
        | st.integers(1, 40)
        | st.integers(1000, 3000)
    )
    leaf = draw(RAW_NUMBER | RAW_STR)
    if draw(st.booleans()):
        return Raw(b"\x91" * depth + leaf.data, leaf.exact, leaf.refused, depth + leaf.depth, depth + leaf.items)
    return Raw(b"\x81\xa1k" * depth + leaf.data, leaf.exact, leaf.refused, depth + leaf.depth, 2 * depth + leaf.items)


@functools.cache
def wide(kind: str, n: int, form: str) -> Raw:
    """An array of n nils, or a map of n distinct keys to nil."""
    body = b"\xc0" * n if kind == "array" else b"".join(msgpack.packb(f"k{i}") + b"\xc0" for i in range(n))
    return Raw(
        header(kind, n, form) + body,
        refused=n > bundle.MAX_META_ITEMS,
        depth=1,
        items=1 + n * (1 if kind == "array" else 2),
    )


@st.composite
def raw_wide(draw) -> Raw:
    n = draw(st.integers(bundle.MAX_META_ITEMS - 2, bundle.MAX_META_ITEMS + 3) | st.sampled_from([1000, 2**16 - 1]))
    kind = draw(st.sampled_from(["array", "map"]))
    return wide(kind, n, draw(st.sampled_from(forms(kind, n))))


@functools.cache
def bomb(levels: int, width: int, leaf: bytes) -> Raw:
    """`levels` nested arrays of `width` copies of the level below: width**levels leaves from a few bytes
    each. Without a cap on items in all, 17 MiB of nested empty maps decode to 1.3 GiB of dicts."""
    data, items = leaf, 1
    for _ in range(levels):
        data, items = header("array", width, forms("array", width)[-1]) + data * width, 1 + width * items
    return Raw(data, refused=width > bundle.MAX_META_ITEMS, depth=levels + (leaf[0] in (0x80, 0x90)), items=items)


RAW_BOMB = st.builds(
    bomb,
    st.integers(2, 3),
    st.sampled_from([16, 32, 63, 64]),
    st.sampled_from([b"\x80", b"\x90", b"\xa1a", b"\xcb" + bytes(8), b"\xc0"]),
)
RAW_KEY = st.one_of(  # few distinct texts, in every str form, so that duplicates come often
    _with_form("str", st.sampled_from(["a", "b", "format", "tensors", "data", ""]).map(str.encode), _raw_str),
    RAW_NUMBER,
    RAW_BIN,
    st.just(Raw(b"\x91\x01", depth=1, items=2)),
)


def _array(args) -> Raw:
    children, form = args
    form = form if form in forms("array", len(children)) else "16"
    return Raw(
        header("array", len(children), form) + b"".join(c.data for c in children),
        exact=all(c.exact for c in children),
        refused=any(c.refused for c in children),
        depth=1 + max((c.depth for c in children), default=0),
        items=1 + sum(c.items for c in children),
        payload=sum(c.payload for c in children),
    )


def _map(args) -> Raw:
    pairs, form = args
    form = form if form in forms("map", len(pairs)) else "16"
    texts = [k.text for k, _ in pairs]
    refused = any(k.refused or v.refused for k, v in pairs) or None in texts or len(set(texts)) != len(texts)
    return Raw(
        header("map", len(pairs), form) + b"".join(k.data + v.data for k, v in pairs),
        exact=all(k.exact and v.exact for k, v in pairs),
        refused=refused,
        depth=1 + max((max(k.depth, v.depth) for k, v in pairs), default=0),
        items=1 + sum(k.items + v.items for k, v in pairs),
        payload=sum(k.payload + v.payload for k, v in pairs),
    )


@functools.cache
def strings(n: int, length: int) -> Raw:
    """An array of n strings of `length` bytes: 14 to 17 of about 4 KiB put a bundle either side of
    bundle.MAX_META_BYTES (64 KiB)."""
    body = b"".join(msgpack.packb(f"{i:02}".ljust(length, "s")) for i in range(n))
    return Raw(header("array", n, forms("array", n)[0]) + body, depth=1, items=1 + n)


RAW_META = st.builds(strings, st.integers(14, 17), st.sampled_from([3900, 4000, 4096]))
RAW_LEAF = st.one_of(RAW_NUMBER, RAW_STR, RAW_BIN, raw_ext(), st.just(Raw(b"\xc1", refused=True)), raw_lie())
RAW = st.one_of(
    st.recursive(
        RAW_LEAF,
        lambda inner: st.one_of(
            st.tuples(st.lists(inner, max_size=6), st.sampled_from(["fix", "16", "32"])).map(_array),
            st.tuples(st.lists(st.tuples(RAW_KEY, inner), max_size=5), st.sampled_from(["fix", "16", "32"])).map(_map),
        ),
        max_leaves=12,
    ),
    raw_deep(),
    raw_wide(),
    RAW_BOMB,
    RAW_META,
)
RAW_SET_PLACES = {
    "samtab": [((), k) for k in ("format", "version", "model", "image", "tensors")]
    + [(("model",), "name"), (("model",), "contract"), (("image",), "width"), (("image",), "sha256")]
    + [(("tensors", n), k) for n in NAMES for k in ("dtype", "shape", "data")],
    "wild": [((), "tensors"), ((), "original_size")] + [(("tensors", n), k) for n in NAMES for k in ("shape", "data")],
}


RAW_ADD_KEY = RAW_KEY | st.text(max_size=6).map(lambda t: _raw_str(t.encode(), forms("str", len(t.encode()))[0]))


@st.composite
def raw_recipes(draw) -> dict:
    mode = draw(st.sampled_from(["add", "add", "set", "set", "alone", "trailing", "miscount"]))
    value = draw(RAW)
    if mode == "alone":
        return {"kind": "raw", "mode": mode, "data": value, "container": draw(st.sampled_from(CONTAINERS))}
    layout = draw(st.sampled_from(["samtab", "samtab", "wild"]))
    size = draw(st.sampled_from(["full", "small", "small"]))
    recipe = {
        "kind": "document",
        "mode": mode,
        "layout": layout,
        "size": size,
        "container": draw(st.sampled_from(CONTAINERS)),
        "ops": [],
    }
    if mode == "add":
        key = draw(RAW_ADD_KEY)
        recipe["ops"] = [["raw_add", draw(st.sampled_from(MAPS[layout])), key, value]]
    elif mode == "set":
        path, key = draw(st.sampled_from(RAW_SET_PLACES[layout]))
        recipe["ops"] = [["raw_set", path, key, value]]
    elif mode == "trailing":
        recipe["after"] = [["append", value.data]]
    else:  # the top map's count, one off
        recipe["after"] = [["byte", 0, 0x80 | (len(make_document(layout, "small")) + draw(st.sampled_from([-1, 1])))]]
    return recipe


# --- byte-level damage ------------------------------------------------------------------------------------

BYTE_BASES = {  # name: the recipe of a packed bundle to damage
    "samtab-full": {"kind": "document", "layout": "samtab", "size": "full"},
    "samtab-full-float32": {"kind": "document", "layout": "samtab", "size": "full", "ops": [["all", "float32"]]},
    "samtab-small": {"kind": "document", "layout": "samtab", "size": "small"},
    "wild-full": {"kind": "document", "layout": "wild", "size": "full"},
    "wild-small": {"kind": "document", "layout": "wild", "size": "small"},
}


@functools.cache
def byte_base(name: str) -> tuple[bytes, tuple[int, ...]]:
    """A packed bundle and its interesting positions: every byte outside the tensor payloads, and a few
    bytes either side of each payload's ends."""
    doc, packed = build_document(BYTE_BASES[name])
    spans = sorted(
        (start, start + len(entry["data"]))
        for entry in doc["tensors"].values()
        for start in [packed.find(entry["data"])]
    )
    positions, previous_end = [], 0
    for start, end in spans:
        positions += range(previous_end, min(start + 8, end))
        previous_end = max(end - 8, start + 8)
    return packed, tuple(positions + list(range(previous_end, len(packed))))


def apply_byte_ops(data: bytes, ops: list) -> bytearray:
    """Positions wrap around the current length, so every op applies to any input."""
    out = bytearray(data)
    for kind, *args in ops:
        where = args[0] % (len(out) + 1) if kind != "append" else len(out)
        if kind == "truncate":
            del out[where:]
        elif kind == "flip" and where < len(out):
            out[where] ^= 1 << args[1]
        elif kind == "byte" and where < len(out):
            out[where] = args[1]
        elif kind == "insert":
            out[where:where] = args[1]
        elif kind == "append":
            out += args[0]
        elif kind == "delete":
            del out[where : where + args[1]]
        elif kind == "repeat":
            out[where:where] = out[where : where + args[1]]
        elif kind == "splice":
            other = byte_base(args[1])[0]
            out[where:] = other[args[2] % (len(other) + 1) :]
    return out


SPECIAL_BYTES = [
    0xC1,
    0xD6,
    0xD7,
    0xC7,
    0xD4,
    0xDB,
    0xDD,
    0xDF,
    0xC6,
    0xC4,
    0x80,
    0x90,
    0xA0,
    0xCB,
    0xCA,
    0xC0,
    0xC2,
    0xC3,
    0x7F,
    0xFF,
    0x00,
    0x91,
    0x8F,
]
SPECIAL_INSERTS = [
    b"\xd6\xff\x00\x00\x00\x00",
    b"\xc7\x0c\xff" + b"\x00" * 12,
    b"\xdb\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\x91" * 40,
    b"\xc1",
    b"\x00\x7e",
    b"\x00\x7c",
    b"\xa6format",
]


@functools.cache
def byte_ops(name: str):
    """Damage to one base: positions among its interesting ones half the time, anywhere otherwise."""
    packed, interesting = byte_base(name)
    position = st.sampled_from(interesting) | st.integers(0, len(packed))
    return st.one_of(
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("flip"), position, st.integers(0, 7)),
        st.tuples(st.just("byte"), position, st.sampled_from(SPECIAL_BYTES) | st.integers(0, 255)),
        st.tuples(st.just("insert"), position, st.sampled_from(SPECIAL_INSERTS) | st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), position, st.integers(1, 16)),
        st.tuples(st.just("repeat"), position, st.integers(1, 64)),
        st.tuples(st.just("splice"), position, st.sampled_from(sorted(BYTE_BASES)), st.integers(0, 2**24)),
    ).map(list)


@st.composite
def byte_recipes(draw) -> dict:
    name = draw(
        st.sampled_from(
            ["samtab-full", "samtab-full", "samtab-full-float32", "samtab-small", "wild-full", "wild-small"]
        )
    )
    return {
        "kind": "bytes",
        "base": name,
        "ops": draw(st.lists(byte_ops(name), min_size=1, max_size=3)),
        "container": draw(st.sampled_from(CONTAINERS)),
    }


# --- manifest.json + embedding.bin --------------------------------------------------------------------------

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8))
JSON_JUNK = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
OFFSET_NEAR = [-1, -4, 0, 1, 2**31, 2**63, 10**30, 0.0, 1.5, "0", True, False, None, [0], {"offset": 0}, math.nan]
LABEL_NEAR = ["float16", "float32", "float64", "int8", "Float32", "", [], {}, None, 16, ["float16"]]
EMBEDDING_VARIANTS = ["cut1", "cut_half", "grow1", "grow4", "empty", "oversize"]


def manifest_op():  # built once (below): hypothesis strategies are slow to build on every draw
    name = st.sampled_from(NAMES)
    return st.one_of(
        st.tuples(st.just("offset"), name, st.sampled_from(OFFSET_NEAR) | JSON_JUNK | st.integers(-10, 2**25)),
        st.tuples(st.just("move"), name, st.sampled_from([-4, -2, -1, 1, 2, 4, 2**20])),
        st.tuples(st.just("overlap"), name, name, st.sampled_from([0, 0, 2, -2, 1])),
        st.tuples(st.just("label"), name, st.sampled_from(LABEL_NEAR) | JSON_JUNK),
        st.tuples(st.just("shape"), name, st.sampled_from(shape_variants("image_embed")) | JSON_JUNK),
        st.tuples(st.just("entry"), name, JSON_JUNK),
        st.tuples(st.just("drop"), name),
        st.tuples(
            st.just("add"),
            st.sampled_from(["extra", "image_embed ", "1"]) | st.integers(0, 2) | st.none(),
            st.just({"offset": 0, "shape": [1], "dtype": "float16"}) | JSON_JUNK,
        ),
        st.tuples(
            st.just("side"),
            st.sampled_from(["originalWidth", "originalHeight"]),
            st.sampled_from([v for v in SIDE_NEAR if not isinstance(v, bytes)]) | JSON_JUNK,
        ),
        st.tuples(st.just("size"), st.sampled_from(SIZE_NEAR)),
        st.tuples(st.just("unset"), st.sampled_from(["originalWidth", "originalHeight", "tensors"])),
        st.tuples(st.just("tensors"), JSON_JUNK),
        st.tuples(st.just("top"), JSON_JUNK),
        st.tuples(st.just("embedding"), st.sampled_from(EMBEDDING_VARIANTS)),
        st.tuples(st.just("poison"), name, st.integers(0, 2**22) | st.just(-1), st.sampled_from(sorted(PATTERNS))),
    ).map(list)


def text_op():
    cap = bundle.MAX_MANIFEST_BYTES
    return st.one_of(
        st.tuples(st.just("cut"), st.integers(0, 400)),
        st.tuples(
            st.just("byte"),
            st.integers(0, 400),
            st.sampled_from([0x7B, 0x7D, 0x22, 0x2C, 0x00, 0xFF, 0x5B]) | st.integers(0, 255),
        ),
        st.tuples(st.just("dup"), st.sampled_from(['"originalWidth": 1', '"tensors": {}', '"originalHeight": 427'])),
        st.tuples(st.just("deep"), st.sampled_from([10, 500, 999, 1000, 5000, 30000])),
        st.tuples(st.just("pad_to"), st.sampled_from([cap - 1, cap, cap + 1, 4 * cap])),
        st.tuples(
            st.just("replace"),
            st.sampled_from(
                [
                    ("640", "NaN"),
                    ("640", "1e999"),
                    ("640", "6" * 5000),
                    ("640", "640.0"),
                    ("640", "-0"),
                    ("427", "true"),
                    ('"float', '"FLOAT'),
                    ("[1,", "[01,"),
                ]
            ),
        ),
        st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=8)),
    ).map(list)


MANIFEST_OP, TEXT_OP = manifest_op(), text_op()


def triple(values):
    return st.lists(st.sampled_from(values), min_size=3, max_size=3)


@st.composite
def manifest_recipes(draw) -> dict:
    # The layout of embedding.bin: half the time the plain one, so that its bytes are often cached.
    return {
        "kind": "manifest",
        "size": draw(st.sampled_from(["full", "small"])),
        "order": draw(st.just(list(NAMES)) | st.permutations(NAMES)),
        "dtypes": draw(st.sampled_from([["float16"] * 3, ["float32"] * 3]) | triple(["float16", "float32"])),
        "labels": draw(st.just(["same"] * 3) | triple(["same", "float16", "float32"])),
        "gaps": draw(st.just([0, 0, 0]) | triple([0, 0, 2, 4, 100])),
        "lead": draw(st.sampled_from([0, 0, 0, 1, 64])),
        "ops": draw(st.lists(MANIFEST_OP, max_size=3)),
        "form": draw(st.sampled_from(["dict", "str", "str", "bytes", "utf-16", "bom"])),
        "text_ops": draw(st.lists(TEXT_OP, max_size=2)),
        "container": draw(st.sampled_from(["bytes", "bytes", "bytearray", "memoryview", "memoryview-f"])),
    }


@functools.lru_cache(maxsize=4)
def embedding_bin(size: str, order: tuple, dtypes: tuple, gaps: tuple, lead: int) -> tuple[bytes, tuple]:
    """embedding.bin's bytes (shared by the cases with the same layout) and each tensor's offset."""
    data = base_data(size)
    pieces, offsets = [b"\x00" * lead], [lead]
    for name, dtype, gap in zip(order, dtypes, gaps):
        pieces += [data[dtype][name], b"\x00" * gap]
        offsets.append(offsets[-1] + len(data[dtype][name]) + gap)
    return b"".join(pieces), tuple(offsets[:-1])


def build_manifest(recipe: dict) -> tuple[Any, bytes, Any]:
    """(the manifest as passed: dict, str or bytes; embedding.bin's bytes; how it is passed)."""
    embedding, offsets = embedding_bin(
        recipe["size"], *map(tuple, (recipe["order"], recipe["dtypes"], recipe["gaps"])), recipe["lead"]
    )
    tensors = {
        name: {"offset": offset, "shape": list(SHAPES[name]), "dtype": dtype if label == "same" else label}
        for name, offset, dtype, label in zip(recipe["order"], offsets, recipe["dtypes"], recipe["labels"])
    }
    manifest: Any = {"originalWidth": 640, "originalHeight": 427, "tensors": tensors}
    for kind, *args in recipe["ops"]:
        entries = manifest.get("tensors") if isinstance(manifest, dict) else None
        entry = entries.get(args[0]) if isinstance(entries, dict) and args and args[0] in NAMES else None
        if kind == "embedding":
            embedding = {
                "cut1": lambda e: e[:-1],
                "cut_half": lambda e: e[: len(e) // 2],
                "grow1": lambda e: e + b"\x00",
                "grow4": lambda e: e + b"\x00" * 4,
                "empty": lambda e: b"",
                "oversize": lambda e: e + b"\x00" * (bundle.MAX_BUNDLE_BYTES + 1 - len(e)),
            }[args[0]](embedding)
        elif kind == "top":
            manifest = copy.deepcopy(args[0])
        elif kind == "size" and isinstance(manifest, dict):
            manifest["originalWidth"], manifest["originalHeight"] = args[0]
        elif kind in ("side", "unset", "tensors"):
            if isinstance(manifest, dict):
                if kind == "unset":
                    manifest.pop(args[0], None)
                else:
                    manifest[args[0] if kind == "side" else "tensors"] = copy.deepcopy(args[-1])
        elif kind == "add" and isinstance(entries, dict):
            entries[args[0]] = copy.deepcopy(args[1])
        elif kind in ("entry", "drop") and isinstance(entries, dict):
            if kind == "drop":
                entries.pop(args[0], None)
            else:
                entries[args[0]] = copy.deepcopy(args[1])
        elif isinstance(entry, dict):
            if kind == "offset":
                entry["offset"] = copy.deepcopy(args[1])
            elif kind == "move" and type(entry.get("offset")) is int:
                entry["offset"] += args[1]
            elif kind == "overlap" and type(at(entries, (args[1], "offset"))) is int:
                entry["offset"] = entries[args[1]]["offset"] + args[2]
            elif kind in ("label", "shape"):
                entry["dtype" if kind == "label" else "shape"] = copy.deepcopy(args[1])
            elif kind == "poison" and type(entry.get("offset")) is int and 0 <= entry["offset"] < len(embedding):
                width = 4 if entry.get("dtype") == "float32" else 2
                index = entry["offset"] + args[1] % COUNT[args[0]] * width
                poisoned = bytearray(embedding)
                poisoned[index : index + width] = PATTERNS[args[2]][width == 4].to_bytes(width, "little")
                embedding = bytes(poisoned[: len(embedding)])
    if recipe["form"] != "dict":
        text = json.dumps(manifest)
        for kind, *args in recipe["text_ops"]:
            if kind == "cut":
                text = text[: args[0]]
            elif kind == "byte" and text:
                where = args[0] % len(text)
                text = text[:where] + chr(args[1]) + text[where + 1 :]
            elif kind in ("dup", "deep"):
                inner = args[0] if kind == "dup" else '"deep": ' + "[" * args[0] + "]" * args[0]
                text = text.replace("{", "{" + inner + ", ", 1) if text.startswith("{") else inner + text
            elif kind == "pad_to":
                text += " " * max(0, args[0] - len(text))
            elif kind == "replace":
                text = text.replace(*args[0])
            elif kind == "garbage":
                text += args[0].decode("latin-1")
        manifest = {
            "str": lambda t: t,
            "bytes": lambda t: t.encode("utf-8", "surrogatepass"),
            "utf-16": lambda t: t.encode("utf-16", "surrogatepass"),
            "bom": lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass"),
        }[recipe["form"]](text)
    return manifest, embedding, recipe["container"]


def embedding_container(embedding: bytes, container: str):
    if container == "memoryview-f":  # what Pyodide hands over for a Float32Array (or Uint16Array)
        return memoryview(embedding).cast("f" if len(embedding) % 4 == 0 else "H" if len(embedding) % 2 == 0 else "B")
    return as_container(embedding, container)


def embedding_copies(passed) -> int:
    """The bytes the reader may copy of embedding.bin: all of it when it is not a flat byte view."""
    return passed.nbytes if isinstance(passed, memoryview) and passed.format != "B" else 0


def _unique_pairs(pairs):
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a key twice")
    return dict(pairs)


def spec_manifest(manifest: Any, embedding: bytes) -> tuple[str | None, dict]:
    """(why the manifest layout is invalid or None, {"size": (width, height), "tensors": {name: (offset, dtype)}}),
    from the format's description:
    offsets inside embedding.bin; each labelled float16 or float32; the bytes up to the next offset decide the
    dtype (or, when they do not fit either, the label, with padding after the tensor)."""
    if len(embedding) > bundle.MAX_BUNDLE_BYTES:
        return "embedding.bin too big", {}
    if isinstance(manifest, (str, bytes)):
        if len(manifest) > bundle.MAX_MANIFEST_BYTES:
            return "manifest too big", {}
        try:
            manifest = json.loads(manifest, object_pairs_hook=_unique_pairs)
        except (ValueError, RecursionError):
            return "bad JSON", {}
    if not isinstance(manifest, dict):
        return "not an object", {}
    if not is_size(manifest.get("originalWidth"), manifest.get("originalHeight")):
        return "image size", {}
    entries = manifest.get("tensors")
    if not isinstance(entries, dict) or set(entries) != set(NAMES):
        return "tensors", {}
    if not all(isinstance(entry, dict) for entry in entries.values()):
        return "an entry is not an object", {}
    offsets = {name: entry.get("offset") for name, entry in entries.items()}
    if not all(type(o) is int and 0 <= o < len(embedding) for o in offsets.values()):
        return "offset outside", {}
    if not all(type(entry.get("dtype")) is str and entry["dtype"] in ITEMSIZE for entry in entries.values()):
        return "a dtype label other than float16 and float32", {}
    order = sorted(NAMES, key=lambda n: (offsets[n], n))
    ends = [offsets[n] for n in order[1:]] + [len(embedding)]
    found = {}
    for name, end in zip(order, ends):
        span, label = end - offsets[name], entries[name].get("dtype")
        dtype = {COUNT[name] * size: d for d, size in ITEMSIZE.items()}.get(span)
        if dtype is None and COUNT[name] * ITEMSIZE[label] <= span:
            dtype = label
        if dtype is None:
            return f"{name}'s span", {}
        dims = entries[name].get("shape")
        if not (type(dims) is list and all(type(d) is int for d in dims) and tuple(dims) == SHAPES[name]):
            return f"{name}'s shape", {}
        if not is_finite(memoryview(embedding)[offsets[name] : offsets[name] + COUNT[name] * ITEMSIZE[dtype]], dtype):
            return f"{name} holds NaN or infinity", {}
        found[name] = (offsets[name], dtype)
    return None, {"size": (manifest["originalWidth"], manifest["originalHeight"]), "tensors": found}


# --- one case: the reader's input, what it may allocate, and the oracle -------------------------------------


@dataclass
class Case:
    """One reader call, and what the format says of its input."""

    read: Any  # bundle.read_bundle or bundle.read_manifest_bundle
    args: tuple
    size: int  # the input's bytes (embedding.bin's, for a manifest)
    copies: int  # the bytes of it the reader may copy
    expected: str | None | bool  # the verdict the format predicts (see verdict())
    values: Any  # values(bundle): a valid result holds exactly the input's values
    extra: int = 0  # what else the reader may allocate (json.loads of manifest.json)


def bundle_case(data: bytes | bytearray, container: str, expected: str | None | bool, doc: Any = None) -> Case:
    """read_bundle on `data`. A valid result holds the document's values where the test knows the document
    exactly (`expected` None), else what msgpack (not the reader) decodes from the same bytes."""

    def values(result: Bundle) -> None:
        known = decoded(doc) if expected is None else msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)
        check_matches(result, known)

    return Case(
        bundle.read_bundle,
        (as_container(data, container),),
        len(data),
        bundle_copies(data, container),
        expected,
        values,
    )


def manifest_case(manifest: Any, embedding: bytes, container: str) -> Case:
    """read_manifest_bundle: a valid result holds the bytes at the offsets and in the dtypes the format picks."""
    expected, found = spec_manifest(manifest, embedding)
    passed = embedding_container(embedding, container)

    def values(result: Bundle) -> None:
        assert result.layout == "wild-manifest" and (result.width, result.height) == found["size"]
        for name, (offset, dtype) in found["tensors"].items():
            size = COUNT[name] * ITEMSIZE[dtype]
            assert result.tensors[name].dtype.name == dtype, (name, result.tensors[name].dtype)
            assert same_values(result.tensors[name], memoryview(embedding)[offset : offset + size]), name

    return Case(
        bundle.read_manifest_bundle,
        (manifest, passed),
        len(embedding),
        embedding_copies(passed),
        expected,
        values,
        MANIFEST_BYTES,
    )


def recipe_case(recipe: dict) -> Case:
    """The case a recipe of any kind describes."""
    container = recipe.get("container", "bytes")
    if recipe["kind"] == "manifest":
        return manifest_case(*build_manifest(recipe))
    if recipe["kind"] == "bytes":  # damaged anywhere: no prediction
        return bundle_case(apply_byte_ops(byte_base(recipe["base"])[0], recipe["ops"]), container, False)
    if recipe["kind"] == "raw":  # one item alone: none this small can be a whole bundle
        return bundle_case(recipe["data"].data, container, "too small to be a bundle")
    doc, data = build_document(recipe)
    if recipe.get("after"):
        return bundle_case(apply_byte_ops(data, recipe["after"]), container, "bytes after the end, or a miscounted map")
    return bundle_case(data, container, expectation(doc, len(data)), doc)


def run_case(stats: Stats, case: Case, what: str) -> Bundle | BundleError:
    """Read, within the bounds; check the verdict, and a valid result's values."""
    result = read_checked(stats, case.read, *case.args, size=case.size, copies=case.copies, extra=case.extra)
    verdict(stats, result, case.expected, what)
    if isinstance(result, Bundle):
        case.values(result)
    return result


# --- the fuzz tests ---------------------------------------------------------------------------------------


def fuzz(request: pytest.FixtureRequest, name: str, implementation: Decoder, strategy) -> None:
    """Run max_examples cases drawn from `strategy` under one msgpack implementation, then print and keep the
    summary."""
    cases = budget(request.config, name)
    key = f"{name}[{implementation.name}]"
    stats = STATS[key] = Stats(requested=cases)
    run_seed = RUN_SEED + sorted(IMPLEMENTATIONS).index(implementation.name)  # the two draw different cases

    @seed(run_seed)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(strategy)
    def run(recipe):
        try:
            run_case(stats, recipe_case(recipe), recipe["kind"])
        except BaseException as error:  # ready to keep: see bundle_corpus/README.md
            error.add_note(f"as a corpus recipe: {json.dumps(to_json(recipe))}")
            raise

    start = time.perf_counter()
    try:
        run()
    except BaseException as error:
        error.add_note(
            f"bundle fuzzer seed {RUN_SEED}: replay with SAMTAB_FUZZ_SEED={RUN_SEED} "
            f"--fuzz-cases {total_cases(request.config)} -k '{request.node.name}'"
        )
        raise
    finally:
        stats.seconds = time.perf_counter() - start
        request.getfixturevalue("figures")(summary_line(key, stats))
    assert stats.cases >= cases, f"hypothesis ran {stats.cases} of {cases} cases"
    if name != "manifest" and stats.valid:  # a valid bundle cannot be read without msgpack
        implementation.check_used()


def summary_line(name: str, stats: Stats) -> str:
    messages = "; ".join(f"{prefix} x{count}" for prefix, count in stats.messages.most_common())
    return (
        f"fuzz {name} (seed {RUN_SEED}): {stats.cases} cases, {stats.valid} valid, {stats.refused} refused, "
        f"{stats.full_size} full-size, {stats.predicted} verdicts predicted; max {stats.max_seconds * 1000:.1f} ms "
        f"per case, max peak {stats.max_peak / 2**20:.2f} MiB ({stats.max_over_copies / 2**20:.2f} MiB over the "
        f"input's copies); {stats.seconds:.1f} s ({stats.read_seconds:.1f} s reading) | refusals: {messages}"
    )


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    """After the module: the summaries as JSON, to SAMTAB_FUZZ_REPORT if set."""
    yield
    path = os.environ.get("SAMTAB_FUZZ_REPORT")
    if path and STATS:
        report = {
            "seed": RUN_SEED,
            "cases": sum(stats.cases for stats in STATS.values()),
            "seconds": round(sum(stats.seconds for stats in STATS.values()), 1),
            "bounds": {
                "case_seconds": CASE_SECONDS,
                "mask_bytes": MASK_BYTES,
                "meta_bytes": META_BYTES,
                "manifest_bytes": MANIFEST_BYTES,
            },
            "tests": {
                name: {**asdict(stats), "messages": dict(stats.messages.most_common())} for name, stats in STATS.items()
            },
        }
        Path(path).write_text(json.dumps(report, indent=2) + "\n")


def test_fuzz_samtab_small(request, implementation):
    fuzz(request, "samtab_small", implementation, document_recipes("samtab", "small"))


def test_fuzz_samtab_full(request, implementation):
    fuzz(request, "samtab_full", implementation, document_recipes("samtab", "full"))


def test_fuzz_wild(request, implementation):
    fuzz(
        request,
        "wild",
        implementation,
        st.sampled_from(["full", "small"]).flatmap(lambda size: document_recipes("wild", size)),
    )


def test_fuzz_raw(request, implementation):
    fuzz(request, "raw", implementation, raw_recipes())


def test_fuzz_bytes(request, implementation):
    fuzz(request, "bytes", implementation, byte_recipes())


def test_fuzz_manifest(request, implementation):
    fuzz(request, "manifest", implementation, manifest_recipes())


# --- the regression corpus ----------------------------------------------------------------------------------

CORPUS = Path(__file__).parent / "bundle_corpus"


def to_json(value: Any) -> Any:
    """A recipe as corpus JSON: bytes as {"hex": ...}, Raw items as {"raw": ...}."""
    if isinstance(value, Raw):
        return {"raw": value.data.hex()}
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return [to_json(v) for v in value] if isinstance(value, (list, tuple)) else value


def corpus_file(name: str) -> bytes:
    data = (CORPUS / name).read_bytes()
    return lzma.decompress(data) if name.endswith(".xz") else data


def from_json(value: Any) -> Any:
    """Corpus JSON to recipe values: {"hex": ...} is bytes, {"raw": ...} a Raw item, {"raw_file": ...} a Raw
    item kept in a file of the corpus."""
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, dict) and set(value) == {"raw"}:
        return Raw(bytes.fromhex(value["raw"]), exact=False)
    if isinstance(value, dict) and set(value) == {"raw_file"}:
        return Raw(corpus_file(value["raw_file"]), exact=False)
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    return [from_json(v) for v in value] if isinstance(value, list) else value


def corpus_case(case: dict) -> Case:
    """The reader call one corpus case describes, with the fuzzer's oracle."""
    if "recipe" in case:
        return recipe_case(from_json(case["recipe"]))
    data = corpus_file(case["file"])
    if case.get("read") == "manifest":
        return manifest_case(data, bytes.fromhex(case.get("embedding_hex", "")), "bytes")
    return bundle_case(data, case.get("container", "bytes"), False)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.json")), ids=lambda path: path.stem)
def test_corpus(path, implementation):
    """Every kept input ends as recorded: a valid bundle holding exactly the input's values, or BundleError
    naming what is wrong; within the fuzzer's bounds, and as the format predicts where it can."""
    case = json.loads(path.read_text())
    result = run_case(Stats(), corpus_case(case), case["read"])
    if "error" in case["expect"]:
        assert isinstance(result, BundleError), f"accepted as valid: {case['why']}"
        assert case["expect"]["error"] in str(result), str(result)
    else:
        assert isinstance(result, Bundle), f"refused: {result}"
        if case["read"] == "bundle":
            implementation.check_used()
        assert result.layout == case["expect"].get("layout", result.layout)
        assert result.dtype == case["expect"].get("dtype", result.dtype)
