"""Fast variants of a SAM2 decoder, measured against the fp32 one: size, session time, run time and masks.

    python tools/decoder_variants.py [--decoder PATH] [--demos DIR ...] [--prompts 60] [--out DIR] [--threads 2]

--decoder  the fp32 decoder (default: site/models/sam2.1-tiny-random/decoder.onnx)
--demos    demo folders whose bundles that decoder reads (default: site/demos/*-sam2.1-tiny-random)
--prompts  prompt sets, spread over the demos (default 60): 1-3 include/exclude points, some with a box,
           half of them replayed click by click, each decode refining the one before (mask_input)
--out      a new folder to keep the variants that pass, with table.md; without it they go to a temporary one

Variants: onnxruntime's dynamic int8 (QUInt8, per-tensor, after quant_pre_process, Meta's web-demo recipe),
fp16 weights with fp32 inputs and outputs, the graph optimised offline by onnxruntime (as .onnx and as .ort,
loaded with optimisation off: what that saves is session time), outputs nobody reads dropped, and a fixed
number of prompt points (padded with label -1). Each is replayed on the same prompt sets as the fp32
decoder, each with its own previous masks as mask_input, as the app would. Balanced IoU = min(foreground
IoU, background IoU) of the best-scored mask, at 256x256 and upsampled to the photo as the app does; a
prompt set scores its worst decode. A variant is kept only if every prompt set scores >= MIN_IOU and it
runs >= MIN_SPEEDUP times as fast (CPython's CPU here; the browser is the final judge). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyapp import contract
from pyapp.bundle import Bundle, BundleError
from pyapp.coords import Mapping
from pyapp.feeds import decoder_feeds
from pyapp.model import ModelError, parse_model_info
from pyapp.postprocess import Candidates, to_mask
from pyapp.prompt import Box, Point, Prompt
from samtab_tools.files import copy_atomic, write_atomic
from samtab_tools.segment import DemoError, load, prompts

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DECODER = ROOT / "site" / "models" / "sam2.1-tiny-random" / "decoder.onnx"
# What pyapp reads of a decoder's outputs (pyapp.postprocess.Candidates.from_outputs).
READ_OUTPUTS = (*contract.DECODER_OUTPUTS, "low_res_masks")
MIN_IOU = 0.99
MIN_SPEEDUP = 1.15
FIXED_POINTS = 6  # a box's two corners and up to four points: every prompt set made here fits


def balanced_iou(a: np.ndarray, b: np.ndarray) -> float:
    """min(IoU of the foregrounds, IoU of the backgrounds) of two boolean masks of one shape; 1.0 when both
    are empty or both full. A plain IoU flatters masks that cover most of the photo; this does not."""

    def iou(x: np.ndarray, y: np.ndarray) -> float:
        union = np.count_nonzero(x | y)
        return 1.0 if union == 0 else np.count_nonzero(x & y) / union

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    return min(iou(a, b), iou(~a, ~b))


@dataclass(frozen=True)
class Photo:
    name: str
    embeddings: dict[str, np.ndarray]
    mapping: Mapping

    @classmethod
    def from_bundle(cls, name: str, bundle: Bundle) -> Photo:
        return cls(name, bundle.embeddings(), Mapping.for_image(bundle.width, bundle.height))


@dataclass(frozen=True)
class PromptSet:
    """Prompts decoded one after the other on one photo, each refining the mask of the one before."""

    photo: int
    prompts: tuple[Prompt, ...]


def prompt_sets(photos: list[Photo], count: int, seed: int = 0) -> list[PromptSet]:
    """`count` prompt sets, round-robin over the photos. Kinds in turn: one include point; 2-3 mixed points
    at once; a box then 0-2 points click by click; 2-3 mixed points click by click."""
    rng = random.Random(seed)
    sets = []
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = photo.mapping.width, photo.mapping.height
        kind = i % 4
        n = 1 if kind == 0 else rng.randint(0, 2) if kind == 2 else rng.randint(2, 3)
        points = [
            Point(rng.uniform(0, w - 1), rng.uniform(0, h - 1), include=j == 0 or rng.random() < 0.5) for j in range(n)
        ]
        box = None
        if kind == 2:
            bw, bh = rng.uniform(0.2, 0.7) * w, rng.uniform(0.2, 0.7) * h
            x0, y0 = rng.uniform(0, w - 1 - bw), rng.uniform(0, h - 1 - bh)
            box = Box(x0, y0, x0 + bw, y0 + bh)
        sets.append(PromptSet(i % len(photos), tuple(prompts(points, box, all_at_once=kind < 2))))
    return sets


@dataclass
class Replay:
    """One decoder's answers to the prompt sets: per set, per decode, the best-scored mask at 256 and at the
    photo's size; and the time of every run, in ms."""

    masks: list[list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    run_ms: list[float] = field(default_factory=list)


def session(path: Path, threads: int, optimise: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT's warnings about unused initialisers are noise here
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pad_points(feeds: dict[str, np.ndarray], points: int) -> dict[str, np.ndarray]:
    """Pad point_coords/point_labels to `points` with padding points (label -1) for a fixed-shape decoder."""
    coords, labels = feeds["point_coords"], feeds["point_labels"]
    extra = points - coords.shape[1]
    if extra < 0:
        raise ValueError(f"a prompt of {coords.shape[1]} points does not fit a decoder fixed at {points}")
    return {
        **feeds,
        "point_coords": np.concatenate([coords, np.zeros((1, extra, 2), np.float32)], axis=1),
        "point_labels": np.concatenate([labels, np.full((1, extra), contract.LABEL_PADDING, np.float32)], axis=1),
    }


def replay(sess, photos: list[Photo], sets: list[PromptSet], fixed_points: int | None = None) -> Replay:
    names = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    result = Replay()
    for prompt_set in sets:
        photo, previous, masks = photos[prompt_set.photo], None, []
        for prompt in prompt_set.prompts:
            feeds = decoder_feeds(names, photo.embeddings, prompt, photo.mapping, previous)
            if fixed_points:
                feeds = pad_points(feeds, fixed_points)
            start = time.perf_counter()
            answer = Candidates.from_outputs(dict(zip(outputs, sess.run(outputs, feeds))))
            result.run_ms.append((time.perf_counter() - start) * 1000)
            best = answer.best
            previous = answer.low_res_logits[best][None, None]
            low = answer.low_res_logits[best] > 0
            masks.append((low, to_mask(answer.logits[best], photo.mapping.width, photo.mapping.height)))
        result.masks.append(masks)
    return result


def set_scores(reference: Replay, variant: Replay) -> list[float]:
    """Per prompt set, the worst balanced IoU of its decodes, at 256 and at the photo's size."""
    return [
        min(balanced_iou(a, b) for ref, var in zip(ref_set, var_set) for a, b in zip(ref, var))
        for ref_set, var_set in zip(reference.masks, variant.masks)
    ]


def verdict(iou_min: float, speedup: float) -> tuple[bool, str]:
    if iou_min < MIN_IOU:
        return False, f"masks drift: balanced IoU {iou_min:.3f} < {MIN_IOU}"
    if speedup < MIN_SPEEDUP:
        return False, f"masks hold; not {MIN_SPEEDUP - 1:.0%} faster ({speedup:.2f}x)"
    return True, f"masks hold, {speedup:.2f}x: measure it in the browser"


@dataclass
class Variant:
    name: str
    path: Path | None  # None: not built (the reason is in `why`)
    optimise: bool = True  # onnxruntime optimises the graph when the session is made
    fixed_points: int | None = None
    why: str = ""


@dataclass
class Row:
    variant: Variant
    size_mb: float = float("nan")
    session_ms: float = float("nan")
    run_ms: float = float("nan")
    speedup: float = float("nan")
    iou_min: float = float("nan")
    iou_median: float = float("nan")
    kept: bool = False
    why: str = ""


def measure(
    variants: list[Variant], photos: list[Photo], sets: list[PromptSet], threads: int, rounds: int = 2
) -> list[Row]:
    """One row per variant, the first being the fp32 reference: size, session creation (median of `rounds`),
    run time (median over every decode of `rounds` replays) and the balanced IoU of each prompt set against
    the reference. The variants take turns at each prompt set, so a busy machine slows them all alike. A variant
    onnxruntime cannot load or run gets a row that says why."""
    rows = [Row(v, why=v.why) for v in variants]
    sessions, times, answers = {}, {}, {}
    live = [i for i, v in enumerate(variants) if v.path is not None]
    for _ in range(rounds):
        for i in list(live):
            try:
                start = time.perf_counter()
                sessions[i] = session(variants[i].path, threads, variants[i].optimise)
                times.setdefault(i, []).append((time.perf_counter() - start) * 1000)
                if i not in answers:
                    answers[i] = replay(sessions[i], photos, sets, variants[i].fixed_points)  # also warms it up
            except Exception as error:  # noqa: BLE001 - onnxruntime's errors (Fail, InvalidGraph, ...) share no base
                rows[i].why = f"onnxruntime fails: {str(error).splitlines()[0][:120]}"
                live.remove(i)
    run_ms = {i: [] for i in live}
    for _ in range(rounds):
        for prompt_set in sets:  # turn by turn at each prompt set: the machine's load changes by the second
            for i in live:
                # untimed first: after another session ran, the caches are cold and a run takes twice as long
                replay(sessions[i], photos, [prompt_set], variants[i].fixed_points)
                run_ms[i] += replay(sessions[i], photos, [prompt_set], variants[i].fixed_points).run_ms
    if 0 not in live:
        return rows
    for i in live:
        row = rows[i]
        row.size_mb = variants[i].path.stat().st_size / 1e6
        row.session_ms, row.run_ms = statistics.median(times[i]), statistics.median(run_ms[i])
        scores = set_scores(answers[0], answers[i])
        row.iou_min, row.iou_median = min(scores), statistics.median(scores)
        row.speedup = statistics.median(run_ms[0]) / row.run_ms
        if i:
            row.kept, row.why = verdict(row.iou_min, row.speedup)
    return rows


def build_variants(decoder: Path, folder: Path) -> list[Variant]:
    """Write each variant of `decoder` into `folder`; one that cannot be built says why."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed
    from onnxruntime.transformers.float16 import convert_float_to_float16

    def attempt(name: str, path: Path, make, optimise: bool = True, fixed_points: int | None = None) -> Variant:
        try:
            make(path)
        except Exception as error:  # noqa: BLE001 - converters raise anything
            return Variant(name, None, why=f"cannot build: {str(error).splitlines()[0][:120]}")
        return Variant(name, path, optimise, fixed_points)

    def int8(path: Path) -> None:
        pre = folder / "decoder.pre.onnx"
        quant_pre_process(str(decoder), str(pre))
        quantize_dynamic(pre, path, per_channel=False, reduce_range=False, weight_type=QuantType.QUInt8)
        pre.unlink()

    def fp16(path: Path) -> None:
        onnx.save(convert_float_to_float16(onnx.load(str(decoder)), keep_io_types=True), str(path))

    def offline(level, ort_format: bool = False):
        def make(path: Path) -> None:
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            options.optimized_model_filepath = str(path)
            options.log_severity_level = 3
            if ort_format:
                options.add_session_config_entry("session.save_model_format", "ORT")
            ort.InferenceSession(str(decoder), options, providers=["CPUExecutionProvider"])

        return make

    def fixed(path: Path) -> None:
        model = onnx.load(str(decoder))
        make_dim_param_fixed(model.graph, "num_points", FIXED_POINTS)
        fix_output_shapes(model)
        onnx.save(model, str(path))

    outputs = [o.name for o in onnx.load(str(decoder), load_external_data=False).graph.output]
    unread = [name for name in outputs if name not in READ_OUTPUTS]
    extended, everything = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return [
        attempt("(a) int8 dynamic, QUInt8 per-tensor", folder / "decoder.int8.onnx", int8),
        attempt("(b) fp16 weights, fp32 io", folder / "decoder.fp16.onnx", fp16),
        attempt("(c) ORT-optimised EXTENDED, .onnx", folder / "decoder.opt.onnx", offline(extended), optimise=False),
        attempt(
            "(c) ORT-optimised ALL, .onnx (this CPU only)", folder / "decoder.all.onnx", offline(everything), False
        ),
        attempt("(c) ORT format, EXTENDED, .ort", folder / "decoder.ort", offline(extended, ort_format=True), False),
        Variant(
            "(d) outputs nobody reads dropped",
            None,
            why=f"unread outputs: {', '.join(unread)}" if unread else f"none to drop: pyapp reads {', '.join(outputs)}",
        ),
        attempt(f"(e) prompt fixed at {FIXED_POINTS} points", folder / "decoder.fixed.onnx", fixed, True, FIXED_POINTS),
    ]


def table(rows: list[Row], sets: int, photos: int, threads: int) -> str:
    def num(value: float, fmt: str, unit: str = "") -> str:
        return "-" if value != value else format(value, fmt) + unit  # NaN: not measured

    lines = [
        f"Balanced IoU vs fp32 over {sets} prompt sets on {photos} photos (worst decode of each set, at 256 and "
        f"at the photo's size); onnxruntime CPU, {threads} intra-op threads.",
        "",
        "| variant | size MB | session ms | run median ms | speed-up | balanced IoU min / median | kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(rows):
        kept = "reference" if n == 0 else ("yes: " if r.kept else "no: ") + r.why
        lines.append(
            f"| {r.variant.name} | {num(r.size_mb, '.1f')} | {num(r.session_ms, '.0f')} | {num(r.run_ms, '.1f')} "
            f"| {num(r.speedup, '.2f', 'x')} | {num(r.iou_min, '.3f')} / {num(r.iou_median, '.3f')} | {kept} |"
        )
    return "\n".join(lines) + "\n"


def load_photos(demos: list[Path], decoder: Path) -> list[Photo]:
    """The demos' bundles; refuses one made by another model than the decoder's (its model.json, if any)."""
    info = decoder.parent / "model.json"
    name = parse_model_info(info.read_bytes(), str(info)).name if info.exists() else None
    photos = []
    for demo in demos:
        bundle, _ = load(demo)
        if name is not None:
            bundle.check_fits(name)
        photos.append(Photo.from_bundle(demo.name, bundle))
    return photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoder", type=Path, default=DEFAULT_DECODER, metavar="PATH")
    parser.add_argument("--demos", type=Path, nargs="+", metavar="DIR")
    parser.add_argument("--prompts", type=int, default=60, metavar="N")
    parser.add_argument("--out", type=Path, metavar="DIR")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    demos = args.demos or sorted((ROOT / "site" / "demos").glob("*-sam2.1-tiny-random"))
    if args.prompts < 1 or args.threads < 1:
        parser.error("--prompts and --threads must be at least 1")
    if not args.decoder.is_file():
        parser.error(f"--decoder {args.decoder} is not a file: export one with tools/export_sam2.py")
    if not demos:
        parser.error("no demos: pass --demos DIR ... (folders with demo.json, written by tools/demos.py)")
    if args.out is not None and args.out.exists():
        parser.error(f"--out {args.out} exists: give a new folder (nothing is overwritten)")
    try:
        photos = load_photos(demos, args.decoder)
    except (BundleError, DemoError, ModelError, OSError) as error:
        print(f"decoder_variants: error: {error}", file=sys.stderr)
        return 1
    try:
        session(args.decoder, 1)
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors share no base
        print(f"decoder_variants: error: onnxruntime cannot load {args.decoder}: {error}", file=sys.stderr)
        return 1
    sets = prompt_sets(photos, args.prompts)
    with tempfile.TemporaryDirectory(prefix="decoder-variants-") as tmp:
        folder = Path(tmp)
        print(f"building variants of {args.decoder} in {folder} ...", file=sys.stderr)
        variants = [Variant("fp32 (exact)", args.decoder), *build_variants(args.decoder, folder)]
        print(f"measuring {len(variants)} decoders on {len(sets)} prompt sets ...", file=sys.stderr)
        rows = measure(variants, photos, sets, args.threads)
        text = table(rows, len(sets), len(photos), args.threads)
        print(text)
        if args.out is not None:
            for row in rows[1:]:
                if row.kept:
                    copy_atomic(row.variant.path, args.out / row.variant.path.name)
            write_atomic(args.out / "table.md", text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
