"""Encode photos with a SAM2-contract image encoder and write the bundles the browser app opens.

    python tools/encode.py IMAGE_OR_DIR... --model DIR --out DIR [--dtype float16|float32]
                           [--provider auto|cpu|cuda|coreml|NAME] [--force] [--shard K/N] [--preview-size PX]
                           [--web-encoder] [--index [NAME]] [--classes A,B,...]
                           [--ray [ADDRESS]] [--actors N]

For each photo P it writes, into --out:
    P.msgpack        the bundle (docs/bundle-format.md): the encoder's three outputs, fp16 by default
    P.preview.jpg    the photo upright (EXIF applied), long edge capped at --preview-size (.png for PNGs)
Both are written atomically (a temporary file, then a rename): an interrupted run leaves no partial file,
and the next run resumes, skipping photos already encoded with the same model. Several runs may write into
one --out at once (the shards of --shard K/N, on one machine or several): none removes the temporary files
of another that is still writing. An existing bundle made from another photo or model, or a preview of
another photo, is never replaced without --force. A photo that cannot be read, or that has more than
100 megapixels (pyapp.contract.MAX_PHOTO_PIXELS), is reported and skipped; the rest go on, and the exit
code is 1 if anything failed (2 for bad arguments, or an --out folder that cannot be written to).

The encoder runs in onnxruntime with the best provider available (CUDA, then CoreML, then CPU) unless
--provider says otherwise. Folders are read one level deep, photos in name order. --web-encoder runs the
model's encoder_web.onnx instead (the file the page runs for a photo opened without a bundle: its float16
weights round the embeddings a little differently), so the bundles are those the page makes.

--index [NAME] also writes OUT/collection.json (pyapp/collection.py): the collection NAME (default: the --out
folder's name) of every photo with a bundle in it, so that the page opens them all as one collection. Run
again with more photos, it adds them and keeps the rest and the class list; --classes sets the class list.
--ray encodes on Ray (tools/encode_ray.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pyapp import bundle as bundles
from pyapp import collection as collections
from pyapp import image as images
from pyapp.model import ModelError, ModelInfo
from pyapp.stopwatch import Stopwatch
from samtab_tools.files import make_partial, remove_stale_partials, write_atomic
from samtab_tools.modelio import read_model_folder

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
PROVIDER_PREFERENCE = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "coreml": "CoreMLExecutionProvider"}
DEFAULT_PREVIEW_EDGE = 2048
WEB_ENCODER_HELP = (
    "encode with the model's encoder_web.onnx, the file the page runs for a photo without a bundle "
    "(tools/web_encoder.py): the bundles are those the page makes"
)


class UsageError(Exception):
    pass


@dataclass
class Result:
    photo: Path
    status: str  # "encoded", "skipped" or "failed"
    message: str = ""
    bundle: Path | None = None
    preview: Path | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    bundle_bytes: int = 0


def collect_photos(inputs: list[str]) -> list[Path]:
    """Files named on the command line (whatever their suffix, so a bad one is reported), plus the photos
    directly inside each folder named, in name order, without duplicates."""
    photos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            photos.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES))
        elif path.exists():
            photos.append(path)
        else:
            raise UsageError(f"{item}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in photos))
    names = {}
    for p in unique:
        if p.name in names:
            raise UsageError(f"{names[p.name]} and {p} have the same name; their bundles would collide in --out")
        names[p.name] = p
    return unique


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: K must be from 1 to N")
    return k, n


def in_shard(photo: Path, shard: tuple[int, int] | None) -> bool:
    """Split by a hash of the file name, so every machine agrees and adding photos moves no others."""
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(photo.name.encode()).hexdigest(), 16) % n == k - 1


def choose_provider(requested: str) -> str:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested == "auto":
        return next(p for p in PROVIDER_PREFERENCE if p in available)
    name = PROVIDER_ALIASES.get(requested.lower(), requested)
    if name not in available:
        raise UsageError(f"--provider {requested}: onnxruntime here offers only {', '.join(available)}")
    return name


class Encoder:
    """An onnxruntime session on the model's encoder, created on first use (a resumed batch that has
    nothing left to do never loads it), or by `load()`. Once loaded, `run` may be called from several
    threads at once (tools/encode_service.py does): onnxruntime's InferenceSession.run is thread-safe."""

    def __init__(
        self,
        model_dir: Path,
        info: ModelInfo,
        provider: str,
        part: str = "encoder",
        *,
        data: bytes | None = None,
        threads: int = 0,
    ):
        """part: "encoder", or "encoder_web" (the file the page runs: its bundles are the page's, bit for bit).
        data: the encoder file's bytes, when they come from elsewhere than model_dir (a Ray actor on another
        machine gets them from the driver). threads: onnxruntime's intra-op threads (0: its default, all cores)."""
        if part not in info.files:
            raise UsageError(f"{model_dir}: model.json names no {part} (make it with tools/web_encoder.py)")
        self.model_dir, self.info, self.provider, self.part = model_dir, info, provider, part
        self.data, self.threads = data, threads
        self._session = None

    def load(self) -> Encoder:
        """Create the session now (not thread-safe: load before sharing the encoder between threads)."""
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3  # encoders exported before may warn about a shape merge they handle fine
            options.intra_op_num_threads = self.threads
            source = self.data if self.data is not None else str(self.model_dir / self.info.files[self.part])
            self._session = ort.InferenceSession(source, options, providers=[self.provider])
        return self

    def run(self, encoder_input):
        self.load()
        outputs = self._session.run(None, {self.info.input_names("encoder")[0]: encoder_input})
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, outputs))


def existing_verdict(bundle_path: Path, model_name: str, sha256: str) -> str | None:
    """None if nothing is there; "same" if it is this photo's bundle by this model; else why it differs."""
    if not bundle_path.exists():
        return None
    try:
        existing = bundles.read_bundle(bundle_path.read_bytes())
    except bundles.BundleError as error:
        return f"it is not a valid bundle ({error})"
    if existing.model_name != model_name:
        return f"it was made with the model '{existing.model_name}'"
    if existing.image_sha256 != sha256:
        return "it was made from a different photo"
    return "same"


def preview_bytes(rgb, suffix: str, preview_edge: int) -> bytes:
    """The preview file's bytes: the same photo always gives the same bytes (a resumed run relies on it)."""
    encoded = io.BytesIO()
    if suffix == ".png":
        images.preview(rgb, preview_edge).save(encoded, "PNG", compress_level=1)  # fast to write beats small
    else:
        images.preview(rgb, preview_edge).save(encoded, "JPEG", quality=90)
    return encoded.getvalue()


def prepare_out(out_dir: Path) -> None:
    """Make --out if needed, check that files can be written in it, and remove what killed runs left there
    (only theirs: other runs may be writing into the same folder, such as the other shards of --shard)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder; name a folder (it is made if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = make_partial(out_dir, "encode-probe")
        os.close(fd)
        os.unlink(probe)
        remove_stale_partials(out_dir)
    except OSError as error:
        raise UsageError(
            f"--out {out_dir}: cannot write there ({error.strerror or error}); choose a folder "
            "you can write to, or make this one writable"
        ) from None


def photo_bundle(opened: images.Photo, embeddings, *, model_name: str, dtype: str) -> bytes:
    """The bundle of an opened photo's encoder outputs, as encode and encode_service write it (raises
    bundles.BundleError for outputs that break the contract)."""
    return bundles.write_bundle(
        embeddings,
        width=opened.width,
        height=opened.height,
        image_sha256=opened.sha256,
        model_name=model_name,
        dtype=dtype,
    )


@dataclass
class Made:
    """A photo's two output files, made in memory (by this process, or by a Ray actor: tools/encode_ray.py)."""

    preview_suffix: str
    preview: bytes
    bundle: bytes
    timings_ms: dict[str, float]


def refusal(photo: Path, bundle_path: Path, model_name: str, sha256: str, force: bool) -> Result | None:
    """The Result for a photo whose bundle is there already (skipped if it is this photo's by this model,
    refused if it is anything else), or None when the photo is to be encoded."""
    verdict = existing_verdict(bundle_path, model_name, sha256)
    if verdict == "same" and not force:
        previews = [bundle_path.with_name(f"{photo.name}.preview{suffix}") for suffix in (".jpg", ".png")]
        preview = next((path for path in previews if path.exists()), None)
        if preview is not None:  # (a bundle whose preview was deleted is made again, with its preview)
            return Result(photo, "skipped", "already encoded with this model", bundle_path, preview)
        return None
    if verdict not in (None, "same") and not force:
        return Result(photo, "failed", f"{bundle_path} exists and {verdict}; pass --force to replace it")
    return None


def make_outputs(opened: images.Photo, encoder: Encoder, *, dtype: str, preview_edge: int) -> Made:
    """The preview and the bundle of an opened photo (raises bundles.BundleError for outputs that break the
    contract)."""
    clock = Stopwatch()
    timings: dict[str, float] = {}
    suffix = ".png" if opened.source_format == "PNG" else ".jpg"
    shown = preview_bytes(opened.rgb, suffix, preview_edge)
    timings["preview"] = clock.lap()
    encoder_input = images.encoder_input(opened.rgb)
    timings["preprocess"] = clock.lap()
    embeddings = encoder.run(encoder_input)
    timings["run"] = clock.lap()
    data = photo_bundle(opened, embeddings, model_name=encoder.info.name, dtype=dtype)
    return Made(suffix, shown, data, timings)


def write_outputs(photo: Path, out_dir: Path, made: Made, *, force: bool) -> Result:
    """Write a photo's preview, then its bundle, each atomically: a bundle on disk means the photo is done.
    A preview already there is kept unless it is this very one (a run killed between the two writes left it)."""
    bundle_path = out_dir / f"{photo.name}.msgpack"
    preview_path = out_dir / f"{photo.name}.preview{made.preview_suffix}"
    if not force and preview_path.exists() and preview_path.read_bytes() != made.preview:
        return Result(
            photo, "failed", f"{preview_path} exists and is not this photo's preview; pass --force to replace it"
        )
    clock = Stopwatch()
    write_atomic(preview_path, made.preview)
    write_atomic(bundle_path, made.bundle)
    timings = {**made.timings_ms, "write": clock.lap()}
    return Result(photo, "encoded", "", bundle_path, preview_path, timings, len(made.bundle))


def encode_photo(photo: Path, encoder: Encoder, out_dir: Path, *, dtype: str, force: bool, preview_edge: int) -> Result:
    clock = Stopwatch()
    try:
        opened = images.open_photo(photo, name=photo.name)
    except images.PhotoError as error:
        return Result(photo, "failed", str(error))
    load_ms = clock.lap()
    refused = refusal(photo, out_dir / f"{photo.name}.msgpack", encoder.info.name, opened.sha256, force)
    if refused:
        return refused
    try:
        made = make_outputs(opened, encoder, dtype=dtype, preview_edge=preview_edge)
    except bundles.BundleError as error:
        return Result(photo, "failed", str(error))
    made.timings_ms = {"load": load_ms, **made.timings_ms}
    return write_outputs(photo, out_dir, made, force=force)


def encode_all(
    photos: list[Path],
    model_dir: Path,
    out_dir: Path,
    *,
    dtype: str = "float16",
    provider: str = "auto",
    force: bool = False,
    preview_edge: int = DEFAULT_PREVIEW_EDGE,
    progress: bool = True,
    part: str = "encoder",
) -> list[Result]:
    info = read_model_folder(model_dir)
    encoder = Encoder(model_dir, info, choose_provider(provider), part)
    prepare_out(out_dir)
    results = []
    from tqdm import tqdm

    bar = tqdm(
        photos,
        unit="photo",
        disable=not progress or len(photos) < 2,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}",
    )
    for photo in bar:
        bar.set_postfix_str(photo.name[:40])
        try:
            result = encode_photo(photo, encoder, out_dir, dtype=dtype, force=force, preview_edge=preview_edge)
        except Exception as error:  # noqa: BLE001 - one bad photo (or a model error on it) must not stop the batch
            result = Result(photo, "failed", f"{type(error).__name__}: {error}")
        results.append(result)
        report(result, progress)
    return results


def report(result: Result, progress: bool) -> None:
    """A photo's line: on stdout, a failure on stderr (above the progress bar, if one is shown)."""
    name = result.photo.name
    line = {
        "encoded": f"encoded {name} in {sum(result.timings_ms.values()) / 1000:.1f} s",
        "skipped": f"skipped {name}: {result.message}",
        "failed": f"FAILED {name}: {result.message}",
    }[result.status]
    from tqdm import tqdm

    (tqdm.write if progress else print)(f"encode: {line}", file=sys.stderr if result.status == "failed" else sys.stdout)


INDEX = "collection.json"


def start_index(out_dir: Path, model_dir: Path, name: str, classes: list[str] | None) -> collections.Collection:
    """The collection --index writes: the one in OUT/collection.json (refused if it is another model's), or a
    new one; checked before anything is encoded."""
    model = read_model_folder(model_dir).name
    path = out_dir / INDEX
    if path.exists():
        try:
            collection = collections.read_index(path.read_bytes(), str(path))
        except collections.CollectionError as error:
            raise UsageError(f"{error} Move it away to make a new one.") from None
        if collection.model != model:
            raise UsageError(
                f"{path} is a collection of bundles made with the model '{collection.model}', not '{model}': "
                "encode into another --out"
            )
    else:
        collection = collections.Collection(name or out_dir.resolve().name, model, [])
    if name:
        collection.name = name
    if classes is not None:
        collection.classes = list(dict.fromkeys(classes))
    try:
        collections.check_classes(collection.classes, "the command line")
    except collections.CollectionError as error:
        raise UsageError(str(error)) from None
    return collection


def write_index(collection: collections.Collection, results: list[Result], out_dir: Path) -> None:
    """Add the photos with a bundle (encoded now or before) to the collection and write it atomically; a photo
    listed already is updated in its place, new ones go at the end."""
    photos = {photo.name: photo for photo in collection.photos}
    for result in results:
        if result.status == "failed" or result.bundle is None:
            continue
        bundle = bundles.read_bundle(result.bundle.read_bytes())
        try:
            source = Path(os.path.relpath(result.photo.resolve(), out_dir.resolve())).as_posix()
        except ValueError:  # another drive
            source = None
        photos[result.photo.name] = collections.Photo(
            result.photo.name,
            bundle.width,
            bundle.height,
            bundle.image_sha256,
            result.bundle.name,
            result.preview.name if result.preview else None,
            source,
        )
    collection.photos = list(photos.values())
    if not collection.photos:
        print(f"encode: no photo has a bundle in {out_dir}: {INDEX} not written", file=sys.stderr)
        return
    write_atomic(out_dir / INDEX, (json.dumps(collection.document(), indent=1, ensure_ascii=False) + "\n").encode())
    print(f"encode: {out_dir / INDEX}: {collection.name!r}, {len(collection.photos)} photos")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="photos, or folders of photos")
    parser.add_argument("--model", required=True, type=Path, help="a model folder (with model.json)")
    parser.add_argument("--out", required=True, type=Path, help="where the bundles and previews go")
    parser.add_argument(
        "--dtype",
        choices=sorted(bundles.DTYPES),
        default="float16",
        help="how the bundle stores the embeddings (default float16: half the size)",
    )
    parser.add_argument(
        "--provider",
        default="auto",
        help="onnxruntime execution provider: auto (default), cpu, cuda, coreml or a full name",
    )
    parser.add_argument("--force", action="store_true", help="replace bundles that already exist")
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="encode only the K-th of N shares of the photos (to split a collection across machines)",
    )
    parser.add_argument(
        "--preview-size",
        type=int,
        default=DEFAULT_PREVIEW_EDGE,
        metavar="PX",
        help=f"cap on the preview's long edge (default {DEFAULT_PREVIEW_EDGE})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--web-encoder",
        action="store_true",
        help=WEB_ENCODER_HELP,
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="encode on Ray actors, one onnxruntime session each (tools/encode_ray.py): ADDRESS as ray.init "
        "takes it (auto, HOST:6379, ray://HOST:10001); none: Ray's default, a new Ray on this machine if no "
        "cluster is there",
    )
    parser.add_argument(
        "--actors",
        type=int,
        metavar="N",
        help="with --ray: how many actors (default: one per GPU in the cluster, else one per CPU)",
    )
    parser.add_argument(
        "--index",
        nargs="?",
        const="",
        metavar="NAME",
        help="also write OUT/collection.json, the collection of every photo encoded in --out, for the page "
        "(NAME: the collection's name, default the --out folder's)",
    )
    parser.add_argument(
        "--classes",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        metavar="A,B,...",
        help="with --index: the collection's class list (default: the index's, or none)",
    )
    args = parser.parse_args(argv)
    if args.classes is not None and args.index is None:
        parser.error("--classes needs --index")
    if args.index is not None and args.shard:
        parser.error(
            "--index cannot be written by one shard of several: when all shards are done, run the same command "
            "once without --shard and with --index (it skips what is encoded and writes the index)"
        )
    if args.actors is not None and (args.ray is None or args.actors < 1):
        parser.error("--actors N needs --ray and N >= 1")
    options = {
        "dtype": args.dtype,
        "provider": args.provider,
        "force": args.force,
        "preview_edge": args.preview_size,
        "progress": not args.quiet,
        "part": "encoder_web" if args.web_encoder else "encoder",
    }
    try:
        photos = [p for p in collect_photos(args.inputs) if in_shard(p, args.shard)]
        if not photos:
            raise UsageError("no photos to encode" + (" in this shard" if args.shard else ""))
        index = None if args.index is None else start_index(args.out, args.model, args.index, args.classes)
        if args.ray is None:
            results = encode_all(photos, args.model, args.out, **options)
        else:
            from samtab_tools import encode_ray

            results = encode_ray.encode_all(
                photos, args.model, args.out, address=args.ray or None, actors=args.actors, **options
            )
        if index is not None:
            write_index(index, results, args.out)
    except (UsageError, FileNotFoundError, ModelError) as error:
        print(f"encode: error: {error}", file=sys.stderr)
        return 2
    counts = {status: sum(r.status == status for r in results) for status in ("encoded", "skipped", "failed")}
    print(f"encode: {counts['encoded']} encoded, {counts['skipped']} skipped, {counts['failed']} failed -> {args.out}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
