"""The embedding bundle: one photo's SAM2 encoder output, as MessagePack. One reader, one writer.

The format is documented in docs/bundle-format.md. The reader also accepts the two layouts found in the
wild (SAM2.md): a MessagePack map {tensors: {name: {data, shape}}, original_size: [H, W]}, and a folder of
manifest.json + embedding.bin. Whatever the layout, it checks everything it can before allocating anything
large: the input size against a cap, the MessagePack framing (item sizes, their number and nesting), tensor
names, shapes, dtypes and byte counts against the SAM2 contract, image sizes against caps; then values for NaN
and infinity. Every problem raises BundleError with a message that says what is wrong.

msgpack decodes only the metadata: the framing walk cuts the bin payloads out and msgpack sees a placeholder
for each, so the tensors are views of the input's bytes and the reader's memory does not depend on which
msgpack runs (its C extension in CPython; in Pyodide its pure-Python msgpack.fallback, which copies its whole
input into a buffer and each payload twice more).
"""

from __future__ import annotations

import functools
import json
import math
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from . import contract

FORMAT = "samtab-bundle"
VERSION = 1
DTYPES = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
# Caps: a valid bundle holds 4,194,304 values (8 MiB fp16, 16 MiB fp32) plus a little metadata.
MAX_BUNDLE_BYTES = 20 * 1024 * 1024
MAX_META_ITEMS = 64  # per MessagePack array or map
MAX_ITEMS = 1024  # MessagePack items in a whole bundle (a valid one has about 60)
MAX_DEPTH = 16  # nested arrays and maps (a valid bundle nests 4 deep: bundle, tensors, tensor, shape)
MAX_STR_BYTES = 4096
MAX_META_BYTES = 64 * 1024  # all but the bin payloads (a samtab bundle has about 400 bytes of it)
MAX_MANIFEST_BYTES = 64 * 1024  # a manifest.json is a few hundred bytes
MAX_IMAGE_SIDE = 65535  # and width x height at most contract.MAX_PHOTO_PIXELS
SHA256 = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: "$" would let a trailing newline through

# Values quoted in error messages are cut short: a bundle can make them arbitrarily large or deep.
_brief = reprlib.Repr()
_brief.maxlevel, _brief.maxstring, _brief.maxother = 3, 80, 80
_show = _brief.repr

# The MessagePack decoder. The tests point it at msgpack.fallback.unpackb (what Pyodide runs) as well.
_unpackb = msgpack.unpackb


class BundleError(ValueError):
    """The bundle is malformed, corrupt or made for something else; the message says what."""


@dataclass
class Bundle:
    """One photo's embeddings. `tensors` hold the stored values (fp16 or fp32, read-only views of the
    bundle's bytes); `embeddings()` expands them to float32 once and keeps the result."""

    width: int  # the photo's size after EXIF orientation, in pixels
    height: int
    tensors: dict[str, np.ndarray]
    model_name: str | None = None  # None for the in-the-wild layouts, which do not say
    image_sha256: str | None = None
    layout: str = "samtab"  # "samtab", "wild-msgpack" or "wild-manifest"
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys (bin values as memoryviews)
    _float32: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def dtype(self) -> str:
        return str(next(iter(self.tensors.values())).dtype.name)

    def embeddings(self) -> dict[str, np.ndarray]:
        """The three decoder inputs as float32 C-contiguous arrays. Expands fp16 once (one copy per
        tensor), then returns the same arrays on every call."""
        if self._float32 is None:
            self._float32 = {name: np.ascontiguousarray(t, dtype=np.float32) for name, t in self.tensors.items()}
        return self._float32

    def check_fits(self, model_name: str, *, image_sha256: str | None = None) -> None:
        """Refuse a bundle made by another model, or for another photo (when the photo's hash is known)."""
        if self.model_name is not None and self.model_name != model_name:
            raise BundleError(
                f"this bundle was made with the model '{self.model_name}', but the loaded decoder "
                f"is '{model_name}'; encode the photo again with that model, or load the other "
                "model"
            )
        if image_sha256 is not None and self.image_sha256 is not None and image_sha256 != self.image_sha256:
            raise BundleError(
                "this bundle was made for a different photo (its sha256 does not match); "
                "open the photo the bundle was made from, or encode this one with tools/encode.py"
            )


# --- writing -----------------------------------------------------------------------------------------


def write_bundle(
    embeddings: dict[str, np.ndarray],
    *,
    width: int,
    height: int,
    image_sha256: str,
    model_name: str,
    dtype: str = "float16",
    extra: dict[str, Any] | None = None,
) -> bytes:
    """Serialize one photo's encoder outputs. fp16 by default; values that do not fit fp16 are refused
    (use dtype="float32")."""
    if dtype not in DTYPES:
        raise BundleError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    tensors = {}
    for name, shape in contract.EMBEDDING_SHAPES.items():
        if name not in embeddings:
            raise BundleError(f"the encoder output {name!r} is missing")
        array = np.asarray(embeddings[name])
        if array.shape != shape:
            raise BundleError(f"{name} has shape {list(array.shape)}, the contract needs {list(shape)}")
        if not np.isfinite(array).all():
            raise BundleError(f"{name} holds NaN or infinite values: the encoder output is broken")
        with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
            stored = array.astype(DTYPES[dtype])
        if not np.isfinite(stored).all():
            raise BundleError(f"{name} has values beyond the float16 range; write the bundle with float32")
        tensors[name] = {"dtype": dtype, "shape": list(shape), "data": stored.tobytes()}
    header = _check_header({"width": width, "height": height, "sha256": image_sha256}, model_name)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model_name, "contract": contract.CONTRACT},
        "image": header,
        "tensors": tensors,
        **(extra or {}),
    }
    return msgpack.packb(document, use_bin_type=True)


# --- reading -----------------------------------------------------------------------------------------


def _unique_keys(pairs, where: str = "the bundle"):
    """A map's pairs as a dict: string keys, each once (of a key given twice, which one counts?)."""
    result = {}
    for key, value in pairs:
        if not isinstance(key, str):
            shown = f"holding {key.nbytes} bytes of binary data" if isinstance(key, memoryview) else _show(key)
            raise BundleError(f"{where} has the map key {shown}, which is not a string")
        if key in result:
            raise BundleError(f"{where} has the key {_show(key)} twice")
        result[key] = value
    return result


# MessagePack's first bytes, for the walk over a bundle before decoding it: the payload size of fixed-size
# numbers; the kind and size of the big-endian length (or count) that follows for the others; extensions.
_FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_SIZED = {
    0xC4: ("bin", 1),
    0xC5: ("bin", 2),
    0xC6: ("bin", 4),
    0xD9: ("str", 1),
    0xDA: ("str", 2),
    0xDB: ("str", 4),
    0xDC: ("array", 2),
    0xDD: ("array", 4),
    0xDE: ("map", 2),
    0xDF: ("map", 4),
}
_EXT = {0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}  # incl. the timestamp (-1), which msgpack decodes itself


def _check_framing(data: bytes) -> list[tuple[int, int, int]]:
    """Walk the MessagePack headers without decoding: every declared size fits the bytes that follow and the
    caps, nesting and the number of items stay small, no extension type appears, nothing follows the bundle.
    Returns where each bin item starts, and its payload's start and end.

    Payloads are skipped, so this takes at most MAX_ITEMS steps; and what msgpack then builds is bounded by
    MAX_META_BYTES and MAX_ITEMS small objects (without it, 17 MiB of nested empty maps decode to 1.3 GiB of
    dicts, and the fallback's copies of 1,000 strings of 4 KiB would cost 3 times their 4 MiB)."""
    unreadable = "the file is not a readable MessagePack bundle: "
    if not data:
        raise BundleError(unreadable + "it is empty")
    size, pos, items, bins = len(data), 0, 0, []
    open_counts = [1]  # items still to read in each open array or map; the whole file first
    while open_counts:
        if not open_counts[-1]:
            open_counts.pop()
            continue
        open_counts[-1] -= 1
        items += 1
        if items > MAX_ITEMS:
            raise BundleError(
                f"the bundle holds more than {MAX_ITEMS} MessagePack items (a samtab bundle has "
                "about 60): it is not a samtab bundle"
            )
        if pos >= size:
            raise BundleError(unreadable + f"it ends in the middle of an item after {size} bytes; it may be truncated")
        start, first = pos, data[pos]
        pos += 1
        if first <= 0x7F or first >= 0xE0 or first in (0xC0, 0xC2, 0xC3):
            continue  # fixint, nil, false, true: no payload
        if first in _EXT:
            raise BundleError("the bundle holds a MessagePack extension type; samtab bundles never do")
        if first == 0xC1:
            raise BundleError(unreadable + f"byte {start} is 0xc1, which MessagePack never uses")
        if first in _FIXED:
            kind, length = "number", _FIXED[first]
        elif first < 0x90:
            kind, length = "map", first & 0x0F
        elif first < 0xA0:
            kind, length = "array", first & 0x0F
        elif first < 0xC0:
            kind, length = "str", first & 0x1F
        else:
            kind, width = _SIZED[first]
            if pos + width > size:
                raise BundleError(
                    unreadable + f"it ends in the middle of an item after {size} bytes; it may be truncated"
                )
            length, pos = int.from_bytes(data[pos : pos + width], "big"), pos + width
        if kind in ("array", "map"):
            if length > MAX_META_ITEMS:
                raise BundleError(
                    f"the bundle holds a{'n' * (kind == 'array')} {kind} of {length} items, more "
                    f"than {MAX_META_ITEMS}: it is not a samtab bundle"
                )
            if len(open_counts) > MAX_DEPTH:
                raise BundleError(
                    f"the bundle is nested too deeply (more than {MAX_DEPTH} levels): it is not a samtab bundle"
                )
            open_counts.append(2 * length if kind == "map" else length)
            continue
        if pos + length > size:
            raise BundleError(
                unreadable + f"the item at byte {start} declares {length} bytes, but only "
                f"{size - pos} follow; it may be truncated"
            )
        if kind == "str" and length > MAX_STR_BYTES:
            raise BundleError(
                f"the bundle holds a string of {length} bytes, more than {MAX_STR_BYTES}: it is not a samtab bundle"
            )
        if kind == "bin":
            bins.append((start, pos, pos + length))
        pos += length
    if pos < size:
        raise BundleError(
            unreadable + f"{size - pos} bytes follow its end; it may be two files joined, or not a bundle at all"
        )
    meta = size - sum(end - payload for _, payload, end in bins)
    if meta > MAX_META_BYTES:
        raise BundleError(
            f"the bundle holds {meta:,} bytes besides its binary data, more than {MAX_META_BYTES:,} "
            "(a samtab bundle has about 400): it is not a samtab bundle"
        )
    return bins


def _unpack(data: bytes) -> Any:
    """The decoded document, each bin payload a read-only memoryview of `data` (no copy)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the bundle is {len(data) / 2**20:.1f} MiB, more than a bundle can be "
            f"({MAX_BUNDLE_BYTES / 2**20:.0f} MiB): it is not a samtab bundle"
        )
    bins = _check_framing(data)
    # msgpack would copy every payload (the fallback three times over): it gets the metadata only, with each
    # bin item replaced by an extension item (none is left after the framing walk) that holds its index.
    view = memoryview(data).toreadonly()
    pieces, payloads, pos = [], [], 0
    for start, payload, end in bins:
        pieces += [view[pos:start], b"\xd6\x00" + len(payloads).to_bytes(4, "big")]  # fixext 4, type 0
        payloads.append(view[payload:end])
        pos = end
    pieces.append(view[pos:])
    try:
        return _unpackb(
            b"".join(pieces),
            raw=False,
            strict_map_key=False,
            use_list=True,
            ext_hook=lambda code, index: payloads[int.from_bytes(index, "big")],
            object_pairs_hook=_unique_keys,
            max_bin_len=0,
            max_str_len=MAX_STR_BYTES,
            max_array_len=MAX_META_ITEMS,
            max_map_len=MAX_META_ITEMS,
            max_ext_len=4,
        )
    except BundleError:
        raise
    except RecursionError:
        raise BundleError("the bundle is nested too deeply: it is not a samtab bundle") from None
    except (
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        OverflowError,
    ) as error:
        raise BundleError(
            f"the file is not a readable MessagePack bundle ({type(error).__name__}: {error}); "
            "it may be truncated or not a bundle at all"
        ) from None


def _check_side(value: Any, what: str) -> None:
    """A photo's width or height: a whole number of pixels within the cap."""
    if type(value) is not int or not 1 <= value <= MAX_IMAGE_SIDE:
        raise BundleError(f"{what} {_show(value)} is not a whole number from 1 to {MAX_IMAGE_SIDE}")


def _check_pixels(width: int, height: int) -> None:
    """The photo's size within samtab's cap: the page resizes the photo to the bundle's size and the tools
    write masks at it, so a bundle that declares 65535 x 65535 would cost them gigabytes."""
    if width * height > contract.MAX_PHOTO_PIXELS:
        cap = contract.MAX_PHOTO_PIXELS
        raise BundleError(
            f"the bundle declares a {width}x{height} photo ({width * height / 1e6:,.0f} MP), more "
            f"than the {cap / 1e6:,.0f} MP samtab opens ({cap:,} pixels): no photo samtab can open "
            "has that size, so the bundle is damaged or made for something else. If the photo "
            f"really is that large, scale it down to at most {cap / 1e6:,.0f} MP and encode it "
            "again with tools/encode.py"
        )


def _check_header(image: Any, model_name: Any) -> dict[str, Any]:
    if not isinstance(image, dict):
        raise BundleError("the bundle's 'image' entry is missing or not a map")
    width, height = image.get("width"), image.get("height")
    _check_side(width, "the image width")
    _check_side(height, "the image height")
    _check_pixels(width, height)
    sha256 = image.get("sha256")
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
        raise BundleError("the image's sha256 is missing or not 64 lower-case hex digits")
    if not isinstance(model_name, str) or not model_name.strip():
        raise BundleError("the bundle does not name the model that made it")
    return {"width": width, "height": height, "sha256": sha256}


def _tensor(name: str, data: Any, shape: Any, dtype: str | None, where: str) -> np.ndarray:
    """A read-only array over `data`, after checking shape, dtype and byte count against the contract.
    With dtype None (a layout that does not say), the byte count decides between float16 and float32."""
    expected = contract.EMBEDDING_SHAPES[name]
    if not isinstance(shape, list) or [int(d) if type(d) is int else None for d in shape] != list(expected):
        raise BundleError(f"{where}: {name} has shape {_show(shape)}, the SAM2 contract needs {list(expected)}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BundleError(f"{where}: {name}'s data is not binary")
    count = math.prod(expected)
    if dtype is None:
        sizes = {count * d.itemsize: n for n, d in DTYPES.items()}
        if len(data) not in sizes:
            raise BundleError(
                f"{where}: {name} has {len(data)} bytes, which is neither float16 nor float32 "
                f"data for shape {list(expected)}"
            )
        dtype = sizes[len(data)]
    if dtype not in DTYPES:
        raise BundleError(f"{where}: {name} has dtype {_show(dtype)}; bundles hold float16 or float32")
    if len(data) != count * DTYPES[dtype].itemsize:
        raise BundleError(
            f"{where}: {name} has {len(data)} bytes, but {dtype} {list(expected)} needs "
            f"{count * DTYPES[dtype].itemsize}: the bundle is truncated or mislabelled"
        )
    array = np.frombuffer(data, dtype=DTYPES[dtype]).reshape(expected)
    if not np.isfinite(array).all():
        raise BundleError(f"{where}: {name} holds NaN or infinite values: the bundle is corrupt")
    return array


def _tensors(entries: Any, where: str, dtype_key: str | None) -> dict[str, np.ndarray]:
    if not isinstance(entries, dict):
        raise BundleError(f"{where}: 'tensors' is missing or not a map")
    missing = [name for name in contract.EMBEDDING_SHAPES if name not in entries]
    unknown = [name for name in entries if name not in contract.EMBEDDING_SHAPES]
    if missing or unknown:
        raise BundleError(
            f"{where}: the tensors must be exactly {', '.join(contract.EMBEDDING_SHAPES)}"
            + (f"; missing {', '.join(map(str, missing))}" if missing else "")
            + (f"; unknown {', '.join(map(str, unknown))}" if unknown else "")
        )
    tensors = {}
    for name in contract.EMBEDDING_SHAPES:
        entry = entries[name]
        if not isinstance(entry, dict):
            raise BundleError(f"{where}: {name} is not a map")
        declared = entry.get(dtype_key) if dtype_key else None
        if dtype_key and not isinstance(declared, str):
            raise BundleError(f"{where}: {name} does not say its dtype")
        tensors[name] = _tensor(name, entry.get("data"), entry.get("shape"), declared, where)
    return tensors


HEADER_BYTES = 4096  # a samtab bundle's map puts its few hundred bytes of metadata before its tensors


def read_header(prefix: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The model, width, height and sha256 of a samtab bundle from its first bytes (HEADER_BYTES are enough):
    what a collection's index needs of each bundle, without reading 8 MB per photo. The same checks as
    read_bundle's; the tensors are not looked at (read_bundle checks them when the photo is opened)."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_META_BYTES, max_bin_len=0, max_str_len=MAX_STR_BYTES)
    unpacker.feed(bytes(prefix[:MAX_META_BYTES]))
    found: dict[str, Any] = {}
    try:
        entries = unpacker.read_map_header()
        for _ in range(min(entries, MAX_META_ITEMS)):
            key = unpacker.unpack()
            if key == "tensors" or (found.keys() >= {"format", "version", "model", "image"}):
                break
            found[key] = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError) as error:
        if not found:
            raise BundleError(f"this is not a samtab bundle (it does not start as one: {error})") from None
        if found.get("format") == FORMAT:
            raise BundleError("the bundle is cut short: its first bytes do not hold its header") from None
    if found.get("format") != FORMAT:
        raise BundleError("this is not a bundle samtab-encode wrote (it does not say format samtab-bundle)")
    model_name, header = _check_meta(found)
    return {"model": model_name, **header}


def _check_meta(document: dict) -> tuple[str, dict[str, Any]]:
    """A samtab bundle's version, model and image entries, checked: (the model's name, the image header)."""
    version = document.get("version")
    if type(version) is not int or version != VERSION:  # True == 1 == 1.0
        raise BundleError(
            f"this bundle is format version {_show(version)}; this samtab reads version {VERSION}. "
            "Encode the photo again with this samtab's tools/encode.py"
        )
    model = document.get("model")
    if not isinstance(model, dict) or model.get("contract") != contract.CONTRACT:
        raise BundleError(f"the bundle's model is missing or does not follow the {contract.CONTRACT!r} contract")
    return model.get("name"), _check_header(document.get("image"), model.get("name"))


def read_bundle(data: bytes | bytearray | memoryview) -> Bundle:
    """Read a bundle (samtab's format, or the MessagePack layout found in the wild) from its bytes.

    The returned tensors are views of `data` when it is bytes; a bytearray or memoryview is copied once first
    (checked tensors must not change under the reader). `Bundle.embeddings()` makes the float32 copies."""
    document = _unpack(data if type(data) is bytes else bytes(data))
    if not isinstance(document, dict):
        raise BundleError("the bundle must be a MessagePack map")
    if document.get("format") == FORMAT:
        model_name, header = _check_meta(document)
        tensors = _tensors(document.get("tensors"), "bundle", "dtype")
        known = {"format", "version", "model", "image", "tensors"}
        return Bundle(
            width=header["width"],
            height=header["height"],
            tensors=tensors,
            model_name=model_name,
            image_sha256=header["sha256"],
            extra={k: v for k, v in document.items() if k not in known},
        )
    if "tensors" in document and "original_size" in document:
        size = document["original_size"]
        if not (
            isinstance(size, list) and len(size) == 2 and all(type(v) is int and 1 <= v <= MAX_IMAGE_SIDE for v in size)
        ):
            raise BundleError(f"original_size {_show(size)} is not [height, width] in pixels")
        _check_pixels(size[1], size[0])
        tensors = _tensors(document["tensors"], "bundle", None)
        return Bundle(width=size[1], height=size[0], tensors=tensors, layout="wild-msgpack")
    raise BundleError(
        "this file is not a samtab bundle (no 'format': 'samtab-bundle'), nor a layout samtab "
        "knows; make one with tools/encode.py"
    )


def read_manifest_bundle(manifest: bytes | str | dict, embedding: bytes | bytearray | memoryview) -> Bundle:
    """Read the folder layout found in the wild: manifest.json (originalWidth, originalHeight,
    tensors: {name: {offset, shape, dtype}}) and the flat little-endian embedding.bin it points into.
    `manifest` is manifest.json's text, or the JSON its caller parsed already.

    Each tensor is labelled float16 or float32, but the byte count between offsets decides the dtype when it
    disagrees with the label (one public implementation labels float32 data as float16)."""
    view = memoryview(embedding)
    if view.nbytes > MAX_BUNDLE_BYTES:
        raise BundleError(f"embedding.bin is {view.nbytes / 2**20:.1f} MiB, more than a bundle can be")
    if view.format != "B" or view.ndim != 1 or not view.c_contiguous:
        view = memoryview(view.tobytes())  # offsets count bytes (Pyodide hands a Float32Array over as 'f')
    if isinstance(manifest, (str, bytes, bytearray)):  # else a caller's already parsed JSON, checked below
        if len(manifest) > MAX_MANIFEST_BYTES:
            raise BundleError(
                f"manifest.json is larger than {MAX_MANIFEST_BYTES // 1024} KiB: it is not a bundle manifest"
            )
        try:
            manifest = json.loads(manifest, object_pairs_hook=functools.partial(_unique_keys, where="manifest.json"))
        except BundleError:
            raise
        except RecursionError:
            raise BundleError("manifest.json is nested too deeply: it is not a bundle manifest") from None
        except ValueError as error:
            raise BundleError(f"manifest.json is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json must hold a JSON object")
    width, height = manifest.get("originalWidth"), manifest.get("originalHeight")
    _check_side(width, "manifest.json: originalWidth")
    _check_side(height, "manifest.json: originalHeight")
    _check_pixels(width, height)
    entries = manifest.get("tensors")
    if not isinstance(entries, dict) or set(entries) != set(contract.EMBEDDING_SHAPES):
        raise BundleError(f"manifest.json: tensors must be exactly {', '.join(contract.EMBEDDING_SHAPES)}")
    spans = []
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise BundleError(f"manifest.json: {name} is {_show(entry)}, not an object with offset, shape and dtype")
        offset = entry.get("offset")
        if type(offset) is not int or not 0 <= offset < len(view):
            raise BundleError(
                f"manifest.json: {name}'s offset {_show(offset)} is outside embedding.bin ({len(view)} bytes)"
            )
        label = entry.get("dtype")
        if not isinstance(label, str) or label not in DTYPES:  # a known mislabel is tolerated, not an unknown one
            raise BundleError(
                f"manifest.json: {name} has dtype {_show(label)}, but samtab reads float16 or "
                "float32 embeddings only; export them as float16 or float32"
            )
        spans.append((offset, name))
    spans.sort()
    tensors = {}
    for index, (offset, name) in enumerate(spans):
        end = spans[index + 1][0] if index + 1 < len(spans) else len(view)
        count = math.prod(contract.EMBEDDING_SHAPES[name])
        label = entries[name]["dtype"]
        sized = {count * d.itemsize: n for n, d in DTYPES.items()}
        if end - offset in sized:
            dtype = sized[end - offset]
        elif offset + count * DTYPES[label].itemsize <= end:
            dtype = label  # trailing padding after the tensor
        else:
            raise BundleError(
                f"manifest.json: {name} spans {end - offset} bytes of embedding.bin, which does "
                f"not hold {count} float16 or float32 values"
            )
        size = count * DTYPES[dtype].itemsize
        tensors[name] = _tensor(name, view[offset : offset + size], entries[name].get("shape"), dtype, "embedding.bin")
    return Bundle(
        width=width,
        height=height,
        tensors=dict(sorted(tensors.items(), key=lambda kv: list(contract.EMBEDDING_SHAPES).index(kv[0]))),
        layout="wild-manifest",
    )
