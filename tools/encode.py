"""Encode photos with a SAM2-contract image encoder and write the bundles the browser app opens.

    python tools/encode.py IMAGE_OR_DIR... --model DIR --out DIR [--dtype float16|float32]
                           [--provider auto|cpu|cuda|coreml|NAME] [--force] [--shard K/N] [--preview-size PX]
                           [--web-encoder]

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
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pyapp import bundle as bundles
from pyapp import image as images
from pyapp.model import ModelError, ModelInfo
from pyapp.stopwatch import Stopwatch
from samtab_tools.files import make_partial, remove_stale_partials, write_atomic
from samtab_tools.modelio import read_model_folder

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
PROVIDER_PREFERENCE = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "coreml": "CoreMLExecutionProvider"}
DEFAULT_PREVIEW_EDGE = 2048


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

    def __init__(self, model_dir: Path, info: ModelInfo, provider: str, part: str = "encoder"):
        """part: "encoder", or "encoder_web" (the file the page runs: its bundles are the page's, bit for bit)."""
        if part not in info.files:
            raise UsageError(f"{model_dir}: model.json names no {part} (make it with tools/web_encoder.py)")
        self.model_dir, self.info, self.provider, self.part = model_dir, info, provider, part
        self._session = None

    def load(self) -> Encoder:
        """Create the session now (not thread-safe: load before sharing the encoder between threads)."""
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3  # encoders exported before may warn about a shape merge they handle fine
            self._session = ort.InferenceSession(
                str(self.model_dir / self.info.files[self.part]), options, providers=[self.provider]
            )
        return self

    def run(self, encoder_input):
        self.load()
        outputs = self._session.run(None, {self.info.input_names("encoder")[0]: encoder_input})
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, outputs))


def output_paths(photo: Path, out_dir: Path, source_format: str | None) -> tuple[Path, Path]:
    suffix = ".png" if source_format == "PNG" else ".jpg"
    return out_dir / f"{photo.name}.msgpack", out_dir / f"{photo.name}.preview{suffix}"


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


def encode_photo(photo: Path, encoder: Encoder, out_dir: Path, *, dtype: str, force: bool, preview_edge: int) -> Result:
    timings: dict[str, float] = {}
    clock = Stopwatch()
    try:
        opened = images.open_photo(photo, name=photo.name)
    except images.PhotoError as error:
        return Result(photo, "failed", str(error))
    timings["load"] = clock.lap()
    bundle_path, preview_path = output_paths(photo, out_dir, opened.source_format)
    verdict = existing_verdict(bundle_path, encoder.info.name, opened.sha256)
    if verdict == "same" and not force:
        return Result(photo, "skipped", "already encoded with this model", bundle_path, preview_path)
    if verdict not in (None, "same") and not force:
        return Result(photo, "failed", f"{bundle_path} exists and {verdict}; pass --force to replace it")
    clock.lap()  # (the checks above are not timed)
    shown = preview_bytes(opened.rgb, preview_path.suffix, preview_edge)
    timings["preview"] = clock.lap()
    # A preview already there is kept unless it is this very one (a run killed between the two writes left it).
    if not force and preview_path.exists() and preview_path.read_bytes() != shown:
        return Result(
            photo, "failed", f"{preview_path} exists and is not this photo's preview; pass --force to replace it"
        )

    clock.lap()
    encoder_input = images.encoder_input(opened.rgb)
    timings["preprocess"] = clock.lap()
    embeddings = encoder.run(encoder_input)
    timings["run"] = clock.lap()
    try:
        data = photo_bundle(opened, embeddings, model_name=encoder.info.name, dtype=dtype)
    except bundles.BundleError as error:
        return Result(photo, "failed", str(error))
    # The preview first, the bundle last: a bundle on disk means the photo is done.
    write_atomic(preview_path, shown)
    write_atomic(bundle_path, data)
    timings["write"] = clock.lap()
    return Result(photo, "encoded", "", bundle_path, preview_path, timings, len(data))


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
        line = {
            "encoded": f"encoded {photo.name} in {sum(result.timings_ms.values()) / 1000:.1f} s",
            "skipped": f"skipped {photo.name}: {result.message}",
            "failed": f"FAILED {photo.name}: {result.message}",
        }[result.status]
        (tqdm.write if progress else print)(
            f"encode: {line}", file=sys.stderr if result.status == "failed" else sys.stdout
        )
    return results


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
        help="encode with the model's encoder_web.onnx, the file the page runs for a photo without a bundle "
        "(tools/web_encoder.py): the bundles are those the page makes",
    )
    args = parser.parse_args(argv)
    try:
        photos = [p for p in collect_photos(args.inputs) if in_shard(p, args.shard)]
        if not photos:
            raise UsageError("no photos to encode" + (" in this shard" if args.shard else ""))
        results = encode_all(
            photos,
            args.model,
            args.out,
            dtype=args.dtype,
            provider=args.provider,
            force=args.force,
            preview_edge=args.preview_size,
            progress=not args.quiet,
            part="encoder_web" if args.web_encoder else "encoder",
        )
    except (UsageError, FileNotFoundError, ModelError) as error:
        print(f"encode: error: {error}", file=sys.stderr)
        return 2
    counts = {status: sum(r.status == status for r in results) for status in ("encoded", "skipped", "failed")}
    print(f"encode: {counts['encoded']} encoded, {counts['skipped']} skipped, {counts['failed']} failed -> {args.out}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
