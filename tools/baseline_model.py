"""The built-in baseline: a classical interactive segmenter in exactly the SAM2 contract. Not SAM2.

    python tools/baseline_model.py --out models/baseline [--force]

No weights are learned or downloaded: every number below is chosen by hand, and the model builds in a
second without torch. It lets the demos work offline and gives the tests a model whose right answers are
known; a real SAM2.1 export replaces it for real use.

Encoder (image → the three SAM2 tensors; unused channels are zero):
    high_res_feats_0 (1, 32, 256, 256): the photo in an opponent colour space (luminance weighted down, so
        shading matters less than hue) averaged over 4×4 pixels (channels 0-2), and the same blurred over
        5×5 and 11×11 neighbourhoods (3-5, 6-8): colour, and colour in context, which tolerates texture
    image_embed (1, 256, 64, 64): the fine colour averaged to 64×64 (channels 0-2)

Decoder (embeddings + prompt → 3 candidate masks as logits, and their scores):
    1. The features under each point (pixel coordinates /4 → the 256 grid), as one-hot gathers.
    2. For each point, a colour affinity exp(−distance / tolerance) over the photo, at three tolerances:
       tight, medium and loose — the three candidates.
    3. A flood from the include points through similar colour (max-product paths with a small decay per
       step, on the 64×64 grid, 64 steps), so a click selects the region it lands in, connected, and not a
       same-coloured object elsewhere. Exclude points flood the same way.
    4. A pixel's include score is its reach × its affinity at 256×256 (crisp edges); it belongs to the
       mask where that beats the exclude points' score and a floor. Logits = 20 × (include − max(exclude,
       floor)): smooth around 0, so upsampling them gives clean edges.
    5. A box (labels 2, 3) keeps the mask inside it and adds what differs from the colour of its border.
    6. A previous mask (has_mask_input = 1) nudges the logits by a tenth of its own.
    Scores: each candidate's stability (IoU of its mask at logits > −2 and > 2), the medium one favoured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

NAME = "samtab baseline (classical, not SAM2)"
OPSET, IR_VERSION = 17, 8  # what onnxruntime-web 1.30 and onnxruntime both accept
GRID, COARSE = 256, 64  # the feature grid, and the coarse grid the flood runs on
TOLERANCES = (0.004, 0.015, 0.05)  # squared colour distance at which affinity falls to 1/e
FLOOD_STEPS, FLOOD_DECAY = 64, 0.995
FLOOR = 0.3  # an include score below this is never in the mask
LOGIT_SCALE = 20.0
MASK_INPUT_WEIGHT = 0.1
# Opponent colours from RGB in [0, 1]: luminance (weighted down), red-green, yellow-blue.
OPPONENT = np.array([[0.25 / 3, 0.25 / 3, 0.25 / 3],
                     [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
                     [1 / np.sqrt(6), 1 / np.sqrt(6), -2 / np.sqrt(6)]], dtype=np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FEATURE_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.6, 0.6, 0.6, 0.3, 0.3, 0.3], dtype=np.float32)


class Graph:
    """A little builder over onnx.helper: each call adds a node and returns its output's name."""

    def __init__(self, name: str):
        from onnx import helper

        self.helper, self.name = helper, name
        self.nodes, self.initializers, self.count = [], [], 0

    def const(self, value, name: str | None = None) -> str:
        from onnx import numpy_helper

        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        self.count += 1
        name = name or f"c{self.count}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        self.count += 1
        names = [name or f"{kind.lower()}{self.count}"] if outputs == 1 else \
            [f"{kind.lower()}{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def model(self, inputs, outputs) -> bytes:
        import onnx

        graph = self.helper.make_graph(self.nodes, self.name, inputs, outputs, initializer=self.initializers)
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                       producer_name="samtab", doc_string=__doc__.split("\n\n")[0])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model.SerializeToString()


def _tensor(name: str, shape) -> object:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _blur(g: Graph, x: str, size: int) -> str:
    half = size // 2
    return g.op("AveragePool", x, kernel_shape=[size, size], strides=[1, 1], pads=[half] * 4,
                count_include_pad=0)


def _zeros(g: Graph, shape: tuple[int, ...]) -> str:
    """A zero tensor made at run time (not stored: the model file stays small)."""
    from onnx import TensorProto, helper

    return g.op("ConstantOfShape", g.const(np.array(shape, np.int64)),
                value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))


def build_encoder() -> bytes:
    g = Graph("samtab_baseline_encoder")
    rgb = g.op("Add", g.op("Mul", "image", g.const(IMAGENET_STD.reshape(1, 3, 1, 1))),
               g.const(IMAGENET_MEAN.reshape(1, 3, 1, 1)))
    small = g.op("AveragePool", rgb, kernel_shape=[4, 4], strides=[4, 4])  # (1, 3, 256, 256)
    colour = g.op("Conv", small, g.const(OPPONENT.reshape(3, 3, 1, 1)))
    features = g.op("Concat", colour, _blur(g, colour, 5), _blur(g, colour, 11),
                    _zeros(g, (1, 23, GRID, GRID)), axis=1)
    g.op("Identity", features, name="high_res_feats_0")
    coarse = g.op("AveragePool", colour, kernel_shape=[4, 4], strides=[4, 4])  # (1, 3, 64, 64)
    g.op("Concat", coarse, _zeros(g, (1, 253, COARSE, COARSE)), axis=1, name="image_embed")
    g.op("Identity", _zeros(g, (1, 64, 128, 128)), name="high_res_feats_1")
    return g.model([_tensor("image", [1, 3, 1024, 1024])],
                   [_tensor("image_embed", [1, 256, 64, 64]), _tensor("high_res_feats_0", [1, 32, 256, 256]),
                    _tensor("high_res_feats_1", [1, 64, 128, 128])])


def _one_hot(g: Graph, index: str) -> str:
    """(N,) int64 grid indices → (N, 256) float one-hot rows."""
    grid = g.const(np.arange(GRID, dtype=np.int64).reshape(1, GRID))
    return g.op("Cast", g.op("Equal", g.op("Unsqueeze", index, g.const(np.array([1], np.int64))), grid),
                to=1)


def _grid_index(g: Graph, coordinate: str) -> str:
    """Model-space coordinates (1024) → indices on the 256 grid, clamped, int64."""
    cell = g.op("Floor", g.op("Div", coordinate, g.const(np.float32(1024 / GRID))))
    return g.op("Cast", g.op("Clip", cell, g.const(np.float32(0)), g.const(np.float32(GRID - 1))), to=7)


def build_decoder() -> bytes:
    g = Graph("samtab_baseline_decoder")
    channels = len(FEATURE_WEIGHTS)
    weights = g.const(np.sqrt(FEATURE_WEIGHTS).reshape(1, channels, 1, 1))
    # (1, 9, 256, 256) weighted features, and as (9, 65536) for products with the points' features.
    features = g.op("Mul", g.op("Slice", "high_res_feats_0", g.const(np.array([0], np.int64)),
                                g.const(np.array([channels], np.int64)), g.const(np.array([1], np.int64))), weights)
    flat = g.op("Reshape", features, g.const(np.array([channels, GRID * GRID], np.int64)))

    coords = g.op("Squeeze", "point_coords", g.const(np.array([0], np.int64)))  # (N, 2)
    labels = g.op("Squeeze", "point_labels", g.const(np.array([0], np.int64)))  # (N,)
    x = g.op("Gather", coords, g.const(np.array(0, np.int64)), axis=1)
    y = g.op("Gather", coords, g.const(np.array(1, np.int64)), axis=1)
    one_x, one_y = _one_hot(g, _grid_index(g, x)), _one_hot(g, _grid_index(g, y))  # (N, 256) each
    # Point features: f[n, c] = Σ_yx F[c, y, x]·oy[n, y]·ox[n, x], as two products.
    by_row = g.op("MatMul", g.op("Reshape", features, g.const(np.array([channels * GRID, GRID], np.int64))),
                  g.op("Transpose", one_x, perm=[1, 0]))  # (9·256, N)
    by_row = g.op("Reshape", by_row, g.const(np.array([channels, GRID, -1], np.int64)))  # (9, 256, N)
    point_features = g.op("ReduceSum", g.op("Mul", by_row, g.op("Transpose", one_y, perm=[1, 0])),
                          g.const(np.array([1], np.int64)), keepdims=0)  # (9, N)
    point_features = g.op("Transpose", point_features, perm=[1, 0])  # (N, 9)

    # Squared distances (N, 65536) = |F|² − 2 f·F + |f|², normalised by the total weight.
    f_sq = g.op("ReduceSum", g.op("Mul", flat, flat), g.const(np.array([0], np.int64)), keepdims=1)  # (1, P)
    p_sq = g.op("ReduceSum", g.op("Mul", point_features, point_features), g.const(np.array([1], np.int64)),
                keepdims=1)  # (N, 1)
    cross = g.op("MatMul", point_features, flat)  # (N, P)
    distance = g.op("Add", g.op("Sub", f_sq, g.op("Mul", cross, g.const(np.float32(2)))), p_sq)
    distance = g.op("Relu", g.op("Div", distance, g.const(np.float32(FEATURE_WEIGHTS.sum() / 3))))
    distance = g.op("Reshape", distance, g.const(np.array([1, -1, GRID, GRID], np.int64)))  # (1, N, 256, 256)

    # Affinity at three tolerances (the three candidates): (3, N, 256, 256).
    tolerances = g.const(np.array(TOLERANCES, np.float32).reshape(3, 1, 1, 1))
    affinity = g.op("Exp", g.op("Neg", g.op("Div", distance, tolerances)))

    def select(label_value: float) -> str:
        """(1, N, 1, 1) 1.0 where the point has this label."""
        hit = g.op("Cast", g.op("Equal", labels, g.const(np.float32(label_value))), to=1)
        return g.op("Reshape", hit, g.const(np.array([1, -1, 1, 1], np.int64)))

    include, exclude = select(1.0), select(0.0)
    seeds = g.op("Mul", g.op("Reshape", one_y, g.const(np.array([1, -1, GRID, 1], np.int64))),
                 g.op("Reshape", one_x, g.const(np.array([1, -1, 1, GRID], np.int64))))  # (1, N, 256, 256)
    big = g.const(np.float32(1e3))

    def nearest(kind: str) -> str:
        """(1, 1, 256, 256): the squared colour distance to the nearest point of this kind (1e3 if none)."""
        masked = g.op("Add", g.op("Mul", distance, kind), g.op("Mul", g.op("Sub", g.const(np.float32(1)), kind), big))
        return g.op("ReduceMin", masked, axes=[1], keepdims=1)

    def reach(kind: str) -> str:
        """(3, 1, 64, 64): how well each coarse cell is reached from this kind's points through similar
        colour (the best product of affinities along a path, decaying a little per step)."""
        best = g.op("ReduceMax", g.op("Mul", affinity, kind), axes=[1], keepdims=1)  # (3, 1, 256, 256)
        coarse = g.op("Mul", g.op("AveragePool", best, kernel_shape=[4, 4], strides=[4, 4]),
                      g.const(np.float32(FLOOD_DECAY)))
        seed = g.op("ReduceMax", g.op("Mul", seeds, kind), axes=[1], keepdims=1)
        current = g.op("Expand", g.op("MaxPool", seed, kernel_shape=[4, 4], strides=[4, 4]),
                       g.const(np.array([3, 1, COARSE, COARSE], np.int64)))
        for _ in range(FLOOD_STEPS):
            spread = g.op("MaxPool", current, kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
            current = g.op("Max", current, g.op("Mul", spread, coarse))
        return current

    def fine(coarse: str) -> str:
        return g.op("Resize", coarse, "", g.const(np.array([1, 1, 4, 4], np.float32)), mode="linear",
                    coordinate_transformation_mode="half_pixel")

    def colour_of(weights: str) -> str:
        """(3, 9): the mean feature over each candidate's (3, 1, 256, 256) weights."""
        flat_weights = g.op("Reshape", weights, g.const(np.array([3, GRID * GRID], np.int64)))
        total = g.op("Max", g.op("ReduceSum", flat_weights, g.const(np.array([1], np.int64)), keepdims=1),
                     g.const(np.float32(1e-3)))
        return g.op("Div", g.op("MatMul", flat_weights, g.op("Transpose", flat, perm=[1, 0])), total)

    def distance_to(colours: str) -> str:
        """(3, 1, 256, 256): squared distance of every pixel to each candidate's colour (3, 9)."""
        c_sq = g.op("ReduceSum", g.op("Mul", colours, colours), g.const(np.array([1], np.int64)), keepdims=1)
        d = g.op("Add", g.op("Sub", f_sq, g.op("Mul", g.op("MatMul", colours, flat), g.const(np.float32(2)))), c_sq)
        d = g.op("Relu", g.op("Div", d, g.const(np.float32(FEATURE_WEIGHTS.sum() / 3))))
        return g.op("Reshape", d, g.const(np.array([3, 1, GRID, GRID], np.int64)))

    def compare(own: str, other: str) -> str:
        """+1 where `own` distance is far smaller than `other`, −1 for the reverse, 0 where equal: a mixed
        pixel halfway between two colours lands on 0, so the edge sits where the photo's edge is."""
        return g.op("Div", g.op("Sub", other, own), g.op("Add", g.op("Add", other, own), g.const(np.float32(1e-4))))

    one = g.const(np.float32(1))
    include_reach, exclude_reach = reach(include), reach(exclude)
    # The region each candidate grows to (coarse), a ring just outside it, and the ring's colour: what the
    # object is told apart from at its edge.
    region = g.op("Clip", g.op("Mul", g.op("Sub", include_reach, g.const(np.float32(FLOOR))), g.const(np.float32(8))),
                  g.const(np.float32(0)), one)
    grown = g.op("MaxPool", region, kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
    ring = g.op("Relu", g.op("Sub", grown, region))
    outside = distance_to(colour_of(fine(ring)))
    exclude_distance = nearest(exclude)
    competitor = g.op("Min", outside, exclude_distance)
    point_score = compare(nearest(include), competitor)  # (3, 1, 256, 256) in [−1, 1]
    near_region = g.op("Clip", fine(grown), g.const(np.float32(0)), one)
    # Outside the grown region (a same colour elsewhere, not connected): −1.
    point_score = g.op("Sub", g.op("Mul", g.op("Add", point_score, one), near_region), one)

    # A box (corners with labels 2 and 3; at most one): inside it, what differs from the colour of its
    # border. With points too, the better of the two; the mask always stays inside the box.
    box_min, box_max = select(2.0), select(3.0)
    has_box = g.op("ReduceMax", box_min, keepdims=1)  # (1, 1, 1, 1): 1 if a box was given
    ones_n = g.op("Reshape", box_min, g.const(np.array([1, -1], np.int64)))
    ones_m = g.op("Reshape", box_max, g.const(np.array([1, -1], np.int64)))
    cumsum_axis = g.const(np.array(1, np.int64))
    cols = g.op("Mul", g.op("CumSum", g.op("MatMul", ones_n, one_x), cumsum_axis),
                g.op("CumSum", g.op("MatMul", ones_m, one_x), cumsum_axis, reverse=1))  # 1 within [x0, x1]
    rows = g.op("Mul", g.op("CumSum", g.op("MatMul", ones_n, one_y), cumsum_axis),
                g.op("CumSum", g.op("MatMul", ones_m, one_y), cumsum_axis, reverse=1))
    inside = g.op("Mul", g.op("Reshape", rows, g.const(np.array([1, 1, GRID, 1], np.int64))),
                  g.op("Reshape", cols, g.const(np.array([1, 1, 1, GRID], np.int64))))  # (1, 1, 256, 256)
    box_grown = g.op("MaxPool", inside, kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
    box_shrunk = g.op("Neg", g.op("MaxPool", g.op("Neg", inside), kernel_shape=[5, 5], strides=[1, 1],
                                  pads=[2, 2, 2, 2]))
    border = g.op("Expand", g.op("Sub", box_grown, box_shrunk), g.const(np.array([3, 1, GRID, GRID], np.int64)))
    border_distance = distance_to(colour_of(border))
    box_score = compare(tolerances, g.op("Min", border_distance, g.op("Add", exclude_distance, tolerances)))
    box_score = g.op("Sub", g.op("Mul", g.op("Add", box_score, one), inside), one)  # −1 outside the box
    with_box = g.op("Sub", g.op("Mul", g.op("Add", g.op("Max", point_score, box_score), one), inside), one)
    score = g.op("Add", g.op("Mul", with_box, has_box), g.op("Mul", point_score, g.op("Sub", one, has_box)))

    # Exclude clicks win where they reach better than the include clicks (a same-coloured region is split
    # between the nearest clicks).
    excluded = g.op("Clip", g.op("Mul", g.op("Sub", exclude_reach, include_reach), g.const(np.float32(10))),
                    g.const(np.float32(0)), one)
    excluded = g.op("Mul", fine(excluded), g.op("ReduceMax", exclude, keepdims=1))
    score = g.op("Sub", g.op("Mul", g.op("Add", score, one), g.op("Sub", one, excluded)), one)

    logits = g.op("Mul", g.op("Reshape", score, g.const(np.array([1, 3, GRID, GRID], np.int64))),
                  g.const(np.float32(LOGIT_SCALE)))
    previous = g.op("Mul", g.op("Clip", "mask_input", g.const(np.float32(-32)), g.const(np.float32(32))),
                    g.op("Mul", "has_mask_input", g.const(np.float32(MASK_INPUT_WEIGHT))))
    logits = g.op("Clip", g.op("Add", logits, previous), g.const(np.float32(-32)), g.const(np.float32(32)),
                  name="masks")

    # Scores: stability of each candidate, the medium one favoured a little.
    loose = g.op("Cast", g.op("Greater", logits, g.const(np.float32(-2))), to=1)
    tight = g.op("Cast", g.op("Greater", logits, g.const(np.float32(2))), to=1)
    axes = g.const(np.array([2, 3], np.int64))
    stability = g.op("Div", g.op("ReduceSum", tight, axes, keepdims=0),
                     g.op("Max", g.op("ReduceSum", loose, axes, keepdims=0), g.const(np.float32(1))))
    g.op("Mul", stability, g.const(np.array([[0.97, 1.0, 0.95]], np.float32)), name="iou_predictions")

    num_points = "num_points"
    return g.model(
        [_tensor("image_embed", [1, 256, 64, 64]), _tensor("high_res_feats_0", [1, 32, 256, 256]),
         _tensor("high_res_feats_1", [1, 64, 128, 128]), _tensor("point_coords", [1, num_points, 2]),
         _tensor("point_labels", [1, num_points]), _tensor("mask_input", [1, 1, 256, 256]),
         _tensor("has_mask_input", [1])],
        [_tensor("masks", [1, 3, 256, 256]), _tensor("iou_predictions", [1, 3])])


def build(out_dir: Path, force: bool = False):
    from modelio import write_model_folder

    return write_model_folder(out_dir, {"encoder": build_encoder(), "decoder": build_decoder()},
                              {"name": NAME, "family": "baseline", "weights": "built-in", "config": None},
                              force=force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    args = parser.parse_args(argv)
    from modelio import ModelFolderExists

    started = time.perf_counter()
    try:
        build(args.out, force=args.force)
    except ModelFolderExists as error:
        print(f"baseline_model: error: {error}", file=sys.stderr)
        return 1
    print(f"baseline_model: wrote {args.out} in {time.perf_counter() - started:.1f} s ({NAME})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
