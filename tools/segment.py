"""Segment a photo headless, with the same pipeline the browser runs (pyapp), in onnxruntime.

    python tools/segment.py --demo DIR_OR_BUNDLE [--model DIR] --point X,Y[,LABEL] ... [--box X0,Y0,X1,Y1]
                            --out mask.png [--all-at-once] [--candidate best|0|1|2] [--hires]
    python tools/segment.py --demo DIR_OR_BUNDLE [--model DIR] --everything --out DIR
                            [--points-per-side 32] [--pred-iou-thresh 0.8] [--stability-thresh 0.95]
                            [--stability-offset 1.0] [--nms-thresh 0.7]

--demo     a demo folder (with demo.json, e.g. site/demos/shapes), a bundle file (.msgpack), or a folder of
           manifest.json + embedding.bin (the in-the-wild layout)
--model    the model folder; overrides the one the demo names. Needed for in-the-wild bundles.
--point    X,Y in the photo's pixels (0,0 is the centre of the top-left pixel), LABEL 1 include (default)
           or 0 exclude. Repeatable.
--box      two opposite corners in the photo's pixels.

Like the app, the prompt is replayed as a person would click: the box first, then each point, every
decode after the first refining the previous mask (mask_input). --all-at-once decodes everything in one go.
Writes the chosen candidate's mask as a PNG at the photo's original size (atomically) and prints a JSON
summary: the photo's size, the candidate written and the scores, the mask's area, the number of decodes and
the last decode's prompt ({points: [[x, y, include]], box: [x0, y0, x1, y1] or null}). Of the model folder it
reads model.json and the one decoder it runs, so a published folder (site/models/NAME/, no encoder) will do.
Anything wrong (a file, the model, the prompt, --out, memory) is one `segment: error: ...` line and exit 1.

--everything segments the whole photo with no prompt, as Meta's automatic mask generator does (pyapp.everything:
a grid of points, Meta's filters and names, one decode per point): into the folder --out (new, or empty) it
writes mask-001.png ... (at the photo's size, best predicted IoU first) and coco.json (the masks as polygons,
pyapp.export.coco), and prints a JSON summary (masks, decodes, each mask's area, scores and grid point).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyapp import everything
from pyapp.bundle import Bundle, BundleError, read_bundle, read_manifest_bundle
from pyapp.coords import OutsideImage
from pyapp.export import coco, png
from pyapp.model import ModelError
from pyapp.prompt import Box, Point, Prompt
from pyapp.runner import OnnxRuntimeRunner
from pyapp.segmenter import Segmenter
from samtab_tools.files import write_atomic
from samtab_tools.modelio import read_model_folder


def parse_point(text: str) -> Point:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--point {text!r}: expected X,Y or X,Y,LABEL") from None
    if len(values) not in (2, 3) or (len(values) == 3 and values[2] not in (0, 1)):
        raise argparse.ArgumentTypeError(f"--point {text!r}: expected X,Y or X,Y,LABEL with LABEL 1 or 0")
    return Point(values[0], values[1], include=len(values) == 2 or values[2] == 1)


def parse_box(text: str) -> Box:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected X0,Y0,X1,Y1") from None
    return Box.from_corners(x0, y0, x1, y1)


class DemoError(ValueError):
    """A demo folder's demo.json is unreadable or does not name its bundle and model; the message says what."""


def read_demo(demo: Path) -> tuple[Path, Path]:
    """The bundle file and the model folder a demo folder's demo.json names (paths relative to the folder)."""
    path = demo / "demo.json"
    try:
        entry = json.loads(path.read_bytes())
    except ValueError as error:  # not JSON, or not UTF-8
        raise DemoError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(entry, dict):
        raise DemoError(f"{path} must hold a JSON object with 'bundle' and 'model'")
    for key, what in (("bundle", "the bundle file"), ("model", "the model folder")):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise DemoError(
                f"{path}: '{key}' ({what}, relative to the demo folder) is missing or not text; "
                "tools/demos.py writes demo folders, or pass a bundle file and --model DIR"
            )
    return demo / entry["bundle"], (demo / entry["model"]).resolve()


def load(demo: Path) -> tuple[Bundle, Path | None]:
    """The bundle, and the model folder the demo names (None when it names none)."""
    if demo.is_dir() and (demo / "demo.json").exists():
        bundle, model = read_demo(demo)
        return read_bundle(bundle.read_bytes()), model
    if demo.is_dir() and (demo / "manifest.json").exists():
        return read_manifest_bundle((demo / "manifest.json").read_bytes(), (demo / "embedding.bin").read_bytes()), None
    if demo.is_file():
        return read_bundle(demo.read_bytes()), None
    raise FileNotFoundError(f"{demo} is not a demo folder (demo.json), a bundle file, or a manifest.json folder")


def prompts(points: list[Point], box: Box | None, all_at_once: bool) -> list[Prompt]:
    """The successive prompts a person clicking would make (or one prompt with everything)."""
    if all_at_once:
        return [Prompt(tuple(points), box)]
    steps, prompt = [], Prompt()
    if box is not None:
        prompt = prompt.with_box(box)
        steps.append(prompt)
    for point in points:
        prompt = prompt.with_point(point)
        steps.append(prompt)
    return steps


def segment(
    bundle: Bundle,
    model_dir: Path,
    points: list[Point],
    box: Box | None = None,
    *,
    all_at_once: bool = False,
    hires: bool = False,
    candidate: str = "best",
    threads: int = 0,
):
    """Run the pipeline; return (segmenter, object, mask at the photo's size)."""
    part = "decoder_hires" if hires else "decoder"
    info = read_model_folder(model_dir, parts=(part,))  # only the decoder that runs: no encoder is needed
    if part not in info.files:
        raise ModelError(f"{model_dir} has no hi-res decoder; export it with tools/export_sam2.py --hires")
    try:
        runner = OnnxRuntimeRunner(model_dir / info.files[part], threads=threads)
    except Exception as error:  # noqa: BLE001 - onnxruntime's exception classes (InvalidProtobuf, Fail, ...) share no base
        raise ModelError(f"onnxruntime cannot load {model_dir / info.files[part]}: {error}") from None
    segmenter = Segmenter(bundle, info.name, runner.input_names)  # refuses a bundle of another model
    obj = segmenter.objects.new()
    for prompt in prompts(points, box, all_at_once):
        obj.push(prompt)
        segmenter.decode(obj, runner)
    if candidate != "best":
        obj.current.chosen = int(candidate)
    return segmenter, obj, segmenter.mask(obj)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, type=Path, metavar="DIR_OR_BUNDLE")
    parser.add_argument("--model", type=Path, metavar="DIR", help="model folder (overrides the demo's)")
    parser.add_argument("--point", type=parse_point, action="append", default=[], metavar="X,Y[,LABEL]")
    parser.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1")
    parser.add_argument("--out", required=True, type=Path, help="where to write the mask PNG")
    parser.add_argument("--all-at-once", action="store_true", help="one decode with every prompt")
    parser.add_argument(
        "--candidate",
        choices=["best", "0", "1", "2"],
        default="best",
        help="which of the three candidate masks to write (default: the best-scored)",
    )
    parser.add_argument("--hires", action="store_true", help="use the model's hi-res decoder")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: its choice)")
    parser.add_argument("--everything", action="store_true", help="segment the whole photo (no prompt)")
    defaults = everything.Settings()
    parser.add_argument("--points-per-side", type=int, default=defaults.points_per_side)
    parser.add_argument("--pred-iou-thresh", type=float, default=defaults.pred_iou_thresh)
    parser.add_argument("--stability-thresh", type=float, default=defaults.stability_score_thresh)
    parser.add_argument("--stability-offset", type=float, default=defaults.stability_score_offset)
    parser.add_argument("--nms-thresh", type=float, default=defaults.box_nms_thresh)
    args = parser.parse_args(argv)
    if args.everything:
        if args.point or args.box is not None:
            parser.error("--everything takes no --point or --box")
        return segment_everything(args)
    if not args.point and args.box is None:
        parser.error("give at least one --point or a --box")
    if args.out.is_dir():
        return fail(f"--out {args.out} is a folder: give the mask's file name, e.g. {args.out / 'mask.png'}")
    bundle = None
    try:
        bundle, demo_model = load(args.demo)
        model_dir = args.model or demo_model
        if model_dir is None:
            raise ModelError(f"{args.demo} does not name its model: pass --model DIR")
        segmenter, obj, mask = segment(
            bundle,
            model_dir,
            args.point,
            args.box,
            all_at_once=args.all_at_once,
            hires=args.hires,
            candidate=args.candidate,
            threads=args.threads,
        )
        data = png(mask)
    except (BundleError, DemoError, ModelError, OutsideImage) as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"cannot read {error.filename}: {error.strerror}" if error.strerror else str(error))
    except MemoryError:
        if bundle is None:
            return fail(f"out of memory while reading {args.demo}: is it really a bundle (a few MB)?")
        return fail(
            f"out of memory: the bundle declares a {bundle.width}x{bundle.height} photo "
            f"({bundle.width * bundle.height / 1e6:,.0f} MP), whose full-size mask does not fit in this "
            "machine's memory. If the photo is not that large, the bundle is wrong: encode the photo "
            "again with tools/encode.py"
        )
    try:
        write_atomic(args.out, data)
    except (FileExistsError, NotADirectoryError):  # from making the folder: a file stands in its path
        return fail(f"cannot write the mask to {args.out}: part of its folder path is a file, not a folder")
    except OSError as error:
        return fail(
            f"cannot write the mask to {args.out}: {error.strerror or error}. "
            "Give --out a file in a folder you can write"
        )
    step = obj.current
    print(
        json.dumps(
            {
                "out": str(args.out),
                "width": segmenter.width,
                "height": segmenter.height,
                "mask_index": step.chosen,
                "iou": [round(float(v), 4) for v in step.candidates.iou],
                "area_px": int(mask.sum()),
                "decodes": len(prompts(args.point, args.box, args.all_at_once)),
                "prompt": step.prompt.to_json(),
            }
        )
    )
    return 0


def segment_everything(args) -> int:
    """--everything: every mask of the photo into the folder args.out."""
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        return fail(f"--out {args.out} must be a new or empty folder (nothing in it is overwritten)")
    try:
        settings = everything.Settings(
            points_per_side=args.points_per_side,
            pred_iou_thresh=args.pred_iou_thresh,
            stability_score_thresh=args.stability_thresh,
            stability_score_offset=args.stability_offset,
            box_nms_thresh=args.nms_thresh,
        )
        bundle, demo_model = load(args.demo)
        model_dir = args.model or demo_model
        if model_dir is None:
            raise ModelError(f"{args.demo} does not name its model: pass --model DIR")
        info = read_model_folder(model_dir, parts=("decoder",))
        runner = OnnxRuntimeRunner(model_dir / info.files["decoder"], threads=args.threads)
        segmenter = Segmenter(bundle, info.name, runner.input_names)
        run = everything.Everything(segmenter, settings)
        while run.pending:
            # One prompt a run: onnxruntime on the CPU is no faster with a batch of them (SAM2.1 tiny, 2 threads:
            # 23 ms a prompt alone, 30 in sixteens), unlike onnxruntime-web's WASM (pyapp.session.EVERYTHING_BATCH).
            run.add(runner.run(run.next_feeds()))
        found = run.result()
        names = [f"mask-{index + 1:03d}" for index in range(len(found))]
        masks = [item.mask for item in found]  # each upsampled once, for the COCO file and its PNG
        document = coco(
            list(zip(names, masks, strict=True)),
            width=segmenter.width,
            height=segmenter.height,
            file_name=str(args.demo.name),
            score=[item.predicted_iou for item in found],
            polygon_tolerance=1.0,
        )
        for name, mask in zip(names, masks, strict=True):
            write_atomic(args.out / f"{name}.png", png(mask))
        write_atomic(args.out / "coco.json", json.dumps(document).encode())
    except (BundleError, DemoError, ModelError, ValueError) as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"{error.filename}: {error.strerror}" if error.strerror else str(error))
    summary = {
        "out": str(args.out),
        "width": segmenter.width,
        "height": segmenter.height,
        "decodes": run.runs,
        "masks": [
            {
                "file": f"{name}.png",
                "area_px": item.area,
                "predicted_iou": round(item.predicted_iou, 4),
                "stability_score": round(item.stability_score, 4),
                "point": [round(v, 2) for v in item.point],
            }
            for name, item in zip(names, found, strict=True)
        ],
    }
    print(json.dumps(summary))
    return 0


def fail(message: str) -> int:
    print(f"segment: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
