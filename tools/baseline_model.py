"""The built-in baseline: a classical interactive segmenter in exactly the SAM2 contract. Not SAM2.

    python tools/baseline_model.py --out models/baseline [--force]

No weights are learned or downloaded: every number below is chosen by hand, and the model builds in a
fraction of a second without torch. It lets the demos work offline and gives the tests a model whose
right answers are known; a real SAM2.1 export replaces it for real use.

Encoder (image → the three SAM2 tensors; channels not listed are zero): the photo is averaged over 4×4
pixels (256×256), un-normalised to RGB and converted to CIELAB (÷100, lightness weighted by 0.7 so that
shading counts less than hue), so that Euclidean distance is roughly the perceived difference.
    high_res_feats_0 (1, 32, 256, 256): 0-2 that colour, lightly smoothed (what mask edges are cut from);
        3-5 the same unsmoothed
    high_res_feats_1 (1, 64, 128, 128): 0-2 the colour averaged to 128×128 ("mid" cells of 8×8 model
        pixels); 3 its change per cell (edge strength)
    image_embed (1, 256, 64, 64): 0-2 the colour averaged to 64×64 ("coarse" cells); 3 its edge strength

Decoder (embeddings + prompt → 3 candidate masks as logits, and their scores):
    1. Every point's colour, sampled on the mid grid under a small Gaussian. A box (labels 2 and 3) adds
       16 exclude points just outside it: what looks like the box's surroundings is not the object.
    2. A flood from the include points, on minimax paths: entering a cell costs its colour distance to
       the nearest include point, leaving it costs its edge strength (so the last cells of an object are
       reached but an edge is not crossed), a path costs its dearest cell (plus a tiny amount per step, so
       that equal claims go to the nearer click). It runs 64 steps on the coarse grid, where a cell costs
       what its cheapest quarter costs (thin objects stay connected), then 32 steps on the mid grid from
       there. The exclude points flood the same way through cells (nearly) as close in colour to them as
       to the include points. Connectivity keeps a same-coloured object elsewhere out.
    3. The three candidates: cells whose path cost is within a tight or a medium tolerance, and a 'whole
       object' one from a second flood where colour counts less (×0.65) so that edges bound it rather
       than colour drift (a shaded object); each minus cells the exclude flood reaches more cheaply.
       With a box: also what is inside it, unlike its surroundings and not reached from them; nothing
       outside it.
    4. Crisp edges at 256×256: around each region, the local mean colour inside and outside it
       (normalised box filters over 7×7 coarse cells); a pixel's logit is how much closer its fine colour
       is to the inside mean than to the outside one. That is linear across an edge and zero where a pixel
       is half object, half background, so the app's bilinear upsampling of the logits puts the edge at
       the right sub-pixel place. The region grown by a mid cell bounds the mask; its interior gets a
       bonus so that texture does not punch holes in it.
    5. A previous mask (has_mask_input = 1) nudges the logits by a tenth of its own (at most ±1).
    Scores: the share of the region's border that is a clear border (the cells just outside are on an
    edge, or far from the clicked colour, rather than just past a colour drift), times the stability of
    its logits (area at > 2 over area at > −2) and its compactness; the medium one is favoured a little
    (shown when all three agree).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pyapp import contract
from pyapp.contract import (
    EMBEDDING_SHAPES,
    ENCODER_INPUT,
    IMAGE_SIZE,
    LABEL_BOX_BOTTOM_RIGHT,
    LABEL_BOX_TOP_LEFT,
    LABEL_EXCLUDE,
    LABEL_INCLUDE,
    LOW_RES_MASK_SIZE,
    MASK_CANDIDATES,
)

NAME = "samtab baseline (classical, not SAM2)"
OPSET, IR_VERSION = 17, 8  # what onnxruntime-web 1.30 and onnxruntime both accept
# The three feature grids: the embeddings' sides (256, 128, 64).
FINE, MID, COARSE = (EMBEDDING_SHAPES[name][-1] for name in ("high_res_feats_0", "high_res_feats_1", "image_embed"))
# The decoder's prompt inputs (the embeddings come first, as contract.DECODER_INPUTS orders them).
PROMPT_SHAPES = {
    "point_coords": [1, "num_points", 2],
    "point_labels": [1, "num_points"],
    "mask_input": [1, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE],
    "has_mask_input": [1],
}
LIGHTNESS_WEIGHT = 0.7

# Per candidate (tight, medium, whole): the dearest cell a path from an include point may cross. A cell
# costs its colour distance (CIELAB/100) to the nearest include point's colour (for the whole-object
# candidate, scaled by WHOLE_COLOUR_SCALE: edges bound it more than colour) or, to be passed, its colour
# change per cell / EDGE_RATIO (an edge), whichever is larger.
PATH_TOLERANCES = (0.075, 0.12, 0.12)
WHOLE_COLOUR_SCALE = 0.65
COLOUR_TOLERANCES = tuple(t / s for t, s in zip(PATH_TOLERANCES, (1, 1, WHOLE_COLOUR_SCALE)))
EDGE_RATIO = 0.6
UNREACHED = 10.0
COARSE_STEPS, MID_STEPS, STEP_COST = 64, 32, 0.0002
TRUST_EDGE = 0.06  # colour change per mid cell at which a cell's colour is trusted 1/e as much
SAMPLE_SIGMA = 0.7  # cells (of the fine grid, and of the mid grid): the Gaussians a point's colours are averaged under
SEED_SIGMA = 0.7  # cells: the cells where a Gaussian this wide round a point is ≥ 0.5 are its seeds
EXCLUDE_MARGIN = 0.02**2  # a cell may join an exclude flood while (nearly) as close to it as to includes
BOX_POINTS = 16
BOX_OUTSET = 12.0  # model pixels outside the box where its surroundings are sampled
LOCAL_WINDOW = 7  # coarse cells: the window of the local inside/outside means
CONTRAST_FLOOR = 0.05  # keeps the logit scale sane where inside and outside look alike
LOGIT_GAIN = 40.0
CORE_BONUS = 6.0
MASK_INPUT_WEIGHT, MASK_INPUT_CLIP = 0.1, 10.0
STABILITY_MARGIN = 2.0
CLEAR_COLOUR = 1.5  # × the colour tolerance: a border cell that far from the clicked colour is clear
CANDIDATE_PRIOR = (0.97, 1.0, 0.95)


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

    def f(self, value) -> str:
        """A float32 constant (scalar or array)."""
        return self.const(np.asarray(value, np.float32))

    def i(self, *values: int) -> str:
        """An int64 1-D constant (shapes, axes)."""
        return self.const(np.array(values, np.int64))

    def op(self, kind: str, *inputs: str, name: str | None = None, **attrs) -> str:
        self.count += 1
        output = name or f"{kind.lower()}{self.count}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [output], **attrs))
        return output

    # Shorthands for the operations used most.
    def add(self, a, b):
        return self.op("Add", a, b)

    def sub(self, a, b):
        return self.op("Sub", a, b)

    def mul(self, a, b):
        return self.op("Mul", a, b)

    def div(self, a, b):
        return self.op("Div", a, b)

    def min(self, *xs):
        return self.op("Min", *xs)

    def max(self, *xs):
        return self.op("Max", *xs)

    def reshape(self, x, *shape):
        return self.op("Reshape", x, self.i(*shape))

    def slice(self, x, start, end, axis):
        return self.op("Slice", x, self.i(start), self.i(end), self.i(axis))

    def sum(self, x, *axes, keep=1):
        return self.op("ReduceSum", x, self.i(*axes), keepdims=keep)

    def where(self, condition, a, b):
        return self.op("Where", condition, a, b)

    def pool(self, kind: str, x, size: int) -> str:
        half = size // 2
        extra = {"count_include_pad": 0} if kind == "AveragePool" else {}
        return self.op(kind, x, kernel_shape=[size, size], strides=[1, 1], pads=[half] * 4, **extra)

    def erode(self, x, size: int = 3) -> str:
        return self.op("Neg", self.pool("MaxPool", self.op("Neg", x), size))

    def upsample(self, x, factor: int) -> str:
        """Bilinear, half-pixel centres: the same resampling as the app's (align_corners=False)."""
        return self.op(
            "Resize", x, "", self.f([1, 1, factor, factor]), mode="linear", coordinate_transformation_mode="half_pixel"
        )

    def model(self, inputs, outputs) -> bytes:
        import onnx

        graph = self.helper.make_graph(self.nodes, self.name, inputs, outputs, initializer=self.initializers)
        model = self.helper.make_model(
            graph,
            opset_imports=[self.helper.make_opsetid("", OPSET)],
            producer_name="samtab",
            doc_string=__doc__.split("\n\n")[0],
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model.SerializeToString()


def _tensor(name: str, shape) -> object:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# --------------------------------------------------------------------------------------------- encoder


def _lab_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear RGB → XYZ relative to the D65 white, and cube-rooted XYZ → weighted Lab/100 (matrix, bias)."""
    rgb_to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    white = np.array([0.95047, 1.0, 1.08883])
    to_xyz = rgb_to_xyz / white[:, None]
    # L = 116·fy − 16, a = 500·(fx − fy), b = 200·(fy − fz); divided by 100, L weighted.
    to_lab = np.array([[0, 1.16 * LIGHTNESS_WEIGHT, 0], [5.0, -5.0, 0], [0, 2.0, -2.0]])
    bias = np.array([-0.16 * LIGHTNESS_WEIGHT, 0, 0])
    return to_xyz.astype(np.float32), to_lab.astype(np.float32), bias.astype(np.float32)


def _smooth(g: Graph, x: str, channels: int) -> str:
    """A [1, 2, 1]/4 blur in each direction: removes pixel noise, keeps a step edge's midpoint in place."""
    kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    weights = np.tile(kernel, (channels, 1, 1, 1))
    padded = g.op("Pad", x, g.i(0, 0, 1, 1, 0, 0, 1, 1), mode="edge")
    return g.op("Conv", padded, g.f(weights), group=channels)


def _gradient(g: Graph, x: str, channels: int) -> str:
    """(1, 1, H, W): the colour change per cell (central differences, over all channels)."""
    dx = np.zeros((channels * 2, 1, 3, 3), np.float32)
    dx[0::2, 0, 1, 0], dx[0::2, 0, 1, 2] = -0.5, 0.5
    dx[1::2, 0, 0, 1], dx[1::2, 0, 2, 1] = -0.5, 0.5
    padded = g.op("Pad", x, g.i(0, 0, 1, 1, 0, 0, 1, 1), mode="edge")
    both = g.op("Conv", padded, g.f(dx), group=channels)  # x and y differences for every channel
    return g.op("Sqrt", g.sum(g.mul(both, both), 1))


def build_encoder() -> bytes:
    g = Graph("samtab_baseline_encoder")
    # Averaging first is exact (the normalisation is affine) and 16× cheaper than un-normalising 1024².
    step = IMAGE_SIZE // FINE
    small = g.op("AveragePool", ENCODER_INPUT, kernel_shape=[step, step], strides=[step, step])  # (1, 3, 256, 256)
    mean, std = (np.array(v, np.float32).reshape(1, 3, 1, 1) for v in (contract.IMAGENET_MEAN, contract.IMAGENET_STD))
    rgb = g.op("Clip", g.add(g.mul(small, g.f(std)), g.f(mean)), g.f(0.0), g.f(1.0))
    linear = g.op("Pow", rgb, g.f(2.2))  # sRGB's transfer curve, closely enough
    to_xyz, to_lab, lab_bias = _lab_matrices()
    xyz = g.op("Conv", linear, g.f(to_xyz.reshape(3, 3, 1, 1)))
    xyz = g.op("Relu", xyz)
    cube_root = g.op("Pow", xyz, g.f(1 / 3))
    f = g.where(g.op("Greater", xyz, g.f(0.008856)), cube_root, g.add(g.mul(xyz, g.f(7.787)), g.f(16 / 116)))
    lab = g.op("Conv", f, g.f(to_lab.reshape(3, 3, 1, 1)), g.f(lab_bias))  # (1, 3, 256, 256)

    def output(name: str, channels: str, have: int) -> None:
        """The embedding `name`: `have` channels, then zeros up to the contract's count."""
        total = EMBEDDING_SHAPES[name][1]
        g.op("Identity", g.op("Pad", channels, g.i(0, 0, 0, 0, 0, total - have, 0, 0), mode="constant"), name=name)

    fine = _smooth(g, lab, 3)
    output("high_res_feats_0", g.op("Concat", fine, lab, axis=1), 6)
    step = FINE // MID
    mid = g.op("AveragePool", lab, kernel_shape=[step, step], strides=[step, step])
    output("high_res_feats_1", g.op("Concat", mid, _gradient(g, mid, 3), axis=1), 4)
    step = FINE // COARSE
    coarse = g.op("AveragePool", lab, kernel_shape=[step, step], strides=[step, step])
    output("image_embed", g.op("Concat", coarse, _gradient(g, coarse, 3), axis=1), 4)
    return g.model(
        [_tensor(ENCODER_INPUT, [1, 3, IMAGE_SIZE, IMAGE_SIZE])],
        [_tensor(name, shape) for name, shape in EMBEDDING_SHAPES.items()],
    )


# --------------------------------------------------------------------------------------------- decoder


def _box_outline() -> tuple[np.ndarray, ...]:
    """Where the box's surroundings are sampled, as x = ax·x_lo + bx·x_hi + cx (same for y): four points
    per side, just outside it, going round."""
    t = np.arange(4) / 4
    ax = np.concatenate([1 - t, np.zeros(4), t, np.ones(4)])
    bx = np.concatenate([t, np.ones(4), 1 - t, np.zeros(4)])
    cx = np.concatenate([np.zeros(4), np.full(4, BOX_OUTSET), np.zeros(4), np.full(4, -BOX_OUTSET)])
    ay = np.concatenate([np.ones(4), 1 - t, np.zeros(4), t])
    by = np.concatenate([np.zeros(4), t, np.ones(4), 1 - t])
    cy = np.concatenate([np.full(4, -BOX_OUTSET), np.zeros(4), np.full(4, BOX_OUTSET), np.zeros(4)])
    return tuple(v.astype(np.float32) for v in (ax, bx, cx, ay, by, cy))


class Prompt:
    """The prompt as graph values: every point's position and kind (the user's points, then BOX_POINTS
    exclude points round the box, or padding without a box), and the box."""

    def __init__(self, g: Graph):
        one = g.f(1.0)
        coords = g.op("Squeeze", "point_coords", g.i(0))  # (N, 2)
        labels = g.op("Squeeze", "point_labels", g.i(0))  # (N,)
        x = g.op("Gather", coords, g.const(np.array(0, np.int64)), axis=1)
        y = g.op("Gather", coords, g.const(np.array(1, np.int64)), axis=1)

        def is_label(values: str, label: float) -> str:
            return g.op("Cast", g.op("Equal", values, g.f(label)), to=1)

        # The box: the mean of each kind of corner (one box is meant), in either order.
        top_left, bottom_right = is_label(labels, LABEL_BOX_TOP_LEFT), is_label(labels, LABEL_BOX_BOTTOM_RIGHT)
        count_tl, count_br = g.sum(top_left, 0), g.sum(bottom_right, 0)  # (1,)
        self.has_box = g.mul(g.min(count_tl, one), g.min(count_br, one))  # (1,): 1 or 0

        def corner(values: str, which: str, count: str) -> str:
            return g.div(g.sum(g.mul(values, which), 0), g.max(count, one))

        x_a, x_b = corner(x, top_left, count_tl), corner(x, bottom_right, count_br)
        y_a, y_b = corner(y, top_left, count_tl), corner(y, bottom_right, count_br)
        self.x_lo, self.x_hi = g.min(x_a, x_b), g.max(x_a, x_b)
        self.y_lo, self.y_hi = g.min(y_a, y_b), g.max(y_a, y_b)

        ax, bx, cx, ay, by, cy = (g.f(v) for v in _box_outline())
        limit = g.f(IMAGE_SIZE - 1)
        outline_x = g.op("Clip", g.add(g.add(g.mul(ax, self.x_lo), g.mul(bx, self.x_hi)), cx), g.f(0.0), limit)
        outline_y = g.op("Clip", g.add(g.add(g.mul(ay, self.y_lo), g.mul(by, self.y_hi)), cy), g.f(0.0), limit)
        outline_labels = g.op("Expand", g.sub(self.has_box, one), g.i(BOX_POINTS))  # 0 with a box, else −1
        self.x, self.y = g.op("Concat", x, outline_x, axis=0), g.op("Concat", y, outline_y, axis=0)  # (M,)
        all_labels = g.op("Concat", labels, outline_labels, axis=0)
        self.include = is_label(all_labels, LABEL_INCLUDE)  # (M,) 0/1
        self.exclude = is_label(all_labels, LABEL_EXCLUDE)
        round_box = g.op("Concat", g.mul(labels, g.f(0.0)), g.op("Expand", one, g.i(BOX_POINTS)), axis=0)
        self.outline = g.mul(round_box, self.exclude)


class Level:
    """One grid the prompt is matched on: its colour, edges, the points' seeds and every cell's squared
    colour distance to every point's colours."""

    def __init__(self, g: Graph, tensor: str, size: int, prompt: Prompt):
        self.g, self.size, self.prompt = g, size, prompt
        self.cell = IMAGE_SIZE / size
        self.tensor = tensor
        self.colour = g.slice(tensor, 0, 3, 1)  # (1, 3, n, n)

    @property
    def edge(self) -> str:
        """(1, 1, n, n): the colour change per cell (channel 3 of the coarse and mid grids)."""
        return self.g.slice(self.tensor, 3, 4, 1)

    def gaussian(self, position: str, sigma: float) -> str:
        """(M, n): exp(−(cell − position)² / 2σ²) over the cells, positions in model pixels."""
        g = self.g
        cells = g.f(np.arange(self.size, dtype=np.float32).reshape(1, self.size))
        offset = g.sub(cells, g.op("Unsqueeze", g.sub(g.div(position, g.f(self.cell)), g.f(0.5)), g.i(1)))
        return g.op("Exp", g.mul(g.mul(offset, offset), g.f(-0.5 / sigma**2)))

    def sample(self, sigma: float) -> str:
        """(M, 3): each point's colour, averaged under a Gaussian around it."""
        g, n = self.g, self.size
        wx, wy = self.gaussian(self.prompt.x, sigma), self.gaussian(self.prompt.y, sigma)
        wx, wy = g.div(wx, g.sum(wx, 1)), g.div(wy, g.sum(wy, 1))
        by_row = g.op("MatMul", g.reshape(self.colour, 3 * n, n), g.op("Transpose", wx, perm=[1, 0]))
        by_row = g.reshape(by_row, 3, n, -1)  # (3, n, M)
        summed = g.sum(g.mul(by_row, g.op("Transpose", wy, perm=[1, 0])), 1, keep=0)  # (3, M)
        return g.op("Transpose", summed, perm=[1, 0])

    def measure(self, point_colour: str, copies: int) -> None:
        """Squared colour distances (copies·M, n·n) = |c|² − 2 p·c + |p|² to the points' colours (each
        point has `copies` of them, one block of M after another), and the nearest of each kind."""
        g, n = self.g, self.size
        flat = g.reshape(self.colour, 3, n * n)
        cross = g.mul(g.op("MatMul", point_colour, flat), g.f(2.0))
        distance = g.op(
            "Relu", g.add(g.sub(g.sum(g.mul(flat, flat), 0), cross), g.sum(g.mul(point_colour, point_colour), 1))
        )
        self.distance, self.copies = distance, copies
        self.to_include = self.nearest(self.prompt.include)
        self.to_exclude = self.nearest(self.prompt.exclude)
        self.to_outline = self.nearest(self.prompt.outline)

    def nearest(self, which: str) -> str:
        """(1, 1, n, n): squared distance to the nearest point of a kind (1e3 when there is none)."""
        g, one = self.g, self.g.f(1.0)
        column = g.op("Unsqueeze", g.op("Concat", *[which] * self.copies, axis=0), g.i(1))
        masked = g.add(g.mul(self.distance, column), g.mul(g.sub(one, column), g.f(1e3)))
        return g.reshape(g.op("ReduceMin", masked, axes=[0], keepdims=1), 1, 1, self.size, self.size)

    def cost(self) -> tuple[str, str]:
        """What entering a cell costs each flood, (1, 3, n, n), and what leaving it costs, (1, 1, n, n).

        Entering: the colour distance to the nearest include point (channel 0); the same scaled down by
        WHOLE_COLOUR_SCALE (1: the 'whole object' flood, which edges bound more than colour does); the
        colour distance to the nearest exclude point, for cells (nearly) as close in colour to it as to
        the include points (2). Leaving: the cell's edge strength. A cell on an edge may be reached, so
        the region takes the object's last cells, but not passed, so the flood does not cross the edge."""
        g = self.g
        include = g.op("Sqrt", self.to_include)
        closer = g.op("LessOrEqual", self.to_exclude, g.add(self.to_include, g.f(EXCLUDE_MARGIN)))
        exclude = g.where(closer, g.op("Sqrt", self.to_exclude), g.f(UNREACHED))
        entering = g.op("Concat", include, g.mul(include, g.f(WHOLE_COLOUR_SCALE)), exclude, axis=1)
        return entering, g.div(self.edge, g.f(EDGE_RATIO))

    def seeds(self) -> str:
        """(1, 3, n, n): 0 on the cells under the include (channels 0, 1) and exclude (2) points, else
        −UNREACHED (negated costs: the flood works on −cost, with MaxPool)."""
        g, p = self.g, self.prompt
        wx, wy = self.gaussian(p.x, SEED_SIGMA), self.gaussian(p.y, SEED_SIGMA)
        blobs = g.mul(g.op("Unsqueeze", wy, g.i(2)), g.op("Unsqueeze", wx, g.i(1)))  # (M, n, n), peak ≤ 1
        channels = []
        for which in (p.include, p.exclude):
            hit = g.op("ReduceMax", g.mul(blobs, g.reshape(which, -1, 1, 1)), axes=[0], keepdims=1)
            channels.append(g.reshape(hit, 1, 1, self.size, self.size))
        under = g.op("GreaterOrEqual", g.op("Concat", channels[0], channels[0], channels[1], axis=1), g.f(0.5))
        return g.where(under, g.f(0.0), g.f(-UNREACHED))

    def grid(self) -> str:
        """(n,): the cells' centres in model pixels."""
        return self.g.f((np.arange(self.size, dtype=np.float32) + 0.5) * self.cell)

    def region(self, reached: str, own_colour: bool = False, scale: float = 1.0) -> str:
        """(1, 3, n, n) 0/1: each candidate's region, from the flood's (negated) path costs; with
        own_colour, only cells whose own (mean) colour is within the tolerance too; scale multiplies the
        tolerances."""
        g, p, n = self.g, self.prompt, self.size
        cost = g.op("Neg", reached)  # (1, 3, n, n): include, include (whole), exclude
        include_cost, exclude_cost = g.slice(cost, 0, 1, 1), g.slice(cost, 2, 3, 1)
        candidate_cost = g.op("Concat", include_cost, include_cost, g.slice(cost, 1, 2, 1), axis=1)
        tolerance = g.f(np.array(PATH_TOLERANCES, np.float32).reshape(1, 3, 1, 1) * scale)
        # Reached cheaply enough, and more cheaply than from any exclude point.
        by_points = g.op(
            "And", g.op("LessOrEqual", candidate_cost, tolerance), g.op("Less", include_cost, exclude_cost)
        )
        if own_colour:
            colour_tolerance = g.f(np.array(COLOUR_TOLERANCES, np.float32).reshape(1, 3, 1, 1) * scale)
            by_points = g.op("And", by_points, g.op("LessOrEqual", g.op("Sqrt", self.to_include), colour_tolerance))
        centres, slack = self.grid(), g.f(self.cell / 2)

        def within(lo: str, hi: str) -> str:
            return g.op(
                "And", g.op("GreaterOrEqual", centres, g.sub(lo, slack)), g.op("LessOrEqual", centres, g.add(hi, slack))
            )

        in_box = g.op(
            "And", g.reshape(within(p.y_lo, p.y_hi), 1, 1, n, 1), g.reshape(within(p.x_lo, p.x_hi), 1, 1, 1, n)
        )
        # With a box: also what is inside it, unlike its surroundings and not reached from them.
        unlike_surroundings = g.op("Greater", g.op("Sqrt", self.to_outline), tolerance)
        by_box = g.op("And", g.op("Greater", exclude_cost, tolerance), unlike_surroundings)
        with_box = g.op("And", g.op("Or", by_points, by_box), in_box)
        has_box = g.op("Greater", g.reshape(p.has_box, 1, 1, 1, 1), g.f(0.0))
        chosen = g.op("Or", g.op("And", has_box, with_box), g.op("And", g.op("Not", has_box), by_points))
        return g.op("Cast", chosen, to=1)


def _flood(g: Graph, reached: str, cost: tuple[str, str], steps: int, step_cost: float) -> str:
    """Minimax paths on negated costs: a cell's cost is that of the best path to it from a seed, a path
    costing as much as its dearest cell plus a tiny amount per step (so that equal claims go to the
    nearer click). 8-connected: a step is a 3×3 MaxPool."""
    entering, leaving = (g.op("Neg", c) for c in cost)
    per_step = g.f(step_cost)
    for _ in range(steps):
        spread = g.sub(g.pool("MaxPool", g.min(reached, leaving), 3), per_step)
        reached = g.max(reached, g.min(spread, entering))
    return reached


def build_decoder() -> bytes:
    """The decoder, taking a batch of prompts as SAM2's export does: the one-prompt graph below, run for each
    prompt of the batch by an ONNX Scan (the classical model has nothing to share between prompts)."""
    return _over_prompts(_one_prompt_decoder())


def _over_prompts(single: bytes) -> bytes:
    """A one-prompt decoder made into one for a batch of prompts: point_coords (B, N, 2) and point_labels (B, N)
    in, masks (B, 3, 256, 256) and iou_predictions (B, 3) out. Scan slices the prompts; its body is the
    one-prompt graph, whose prompt inputs and outputs are renamed (a subgraph may not reuse the names of the
    graph around it) and which reads the embeddings, mask_input and has_mask_input from the graph around it."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(single)
    graph = model.graph
    renamed = {"point_coords": "one/point_coords", "point_labels": "one/point_labels"}
    renamed |= {output.name: f"one/{output.name}" for output in graph.output}
    nodes = []
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
        nodes.append(node)
    axis = helper.make_tensor("one/axis", TensorProto.INT64, [1], [0])
    body = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["one/coords", "one/axis"], ["one/point_coords"]),
            helper.make_node("Unsqueeze", ["one/labels", "one/axis"], ["one/point_labels"]),
            *nodes,
            *(
                helper.make_node("Squeeze", [f"one/{output.name}", "one/axis"], [f"one/{output.name}/squeezed"])
                for output in graph.output
            ),
        ],
        "one_prompt",
        [_tensor("one/coords", ["num_points", 2]), _tensor("one/labels", ["num_points"])],
        [
            _tensor(f"one/{o.name}/squeezed", [d.dim_value for d in o.type.tensor_type.shape.dim][1:])
            for o in graph.output
        ],
        initializer=[axis],
    )
    scan = helper.make_node(
        "Scan", ["point_coords", "point_labels"], [o.name for o in graph.output], body=body, num_scan_inputs=2
    )
    inputs = [_tensor(i.name, ["prompts", *PROMPT_SHAPES[i.name][1:]]) if i.name in renamed else i for i in graph.input]
    outputs = [
        _tensor(o.name, ["prompts", *[d.dim_value for d in o.type.tensor_type.shape.dim][1:]]) for o in graph.output
    ]
    batched = helper.make_model(
        helper.make_graph([scan], graph.name, inputs, outputs, initializer=graph.initializer),
        opset_imports=model.opset_import,
        producer_name=model.producer_name,
        doc_string=model.doc_string,
    )
    batched.ir_version = model.ir_version
    onnx.checker.check_model(batched, full_check=True)
    return batched.SerializeToString()


def _one_prompt_decoder() -> bytes:
    g = Graph("samtab_baseline_decoder")
    one, half = g.f(1.0), g.f(0.5)
    prompt = Prompt(g)
    coarse = Level(g, "image_embed", COARSE, prompt)
    mid = Level(g, "high_res_feats_1", MID, prompt)
    fine = Level(g, "high_res_feats_0", FINE, prompt)
    # Two colours per point: right under it (a click near an edge, a thin object) and around it (texture).
    point_colours = g.op("Concat", fine.sample(SAMPLE_SIGMA), mid.sample(SAMPLE_SIGMA), axis=0)  # (2M, 3)
    coarse.measure(point_colours, copies=2)
    mid.measure(point_colours, copies=2)

    # ---- the flood: far on the coarse grid, then on the mid grid for detail
    mid_entering, mid_leaving = mid.cost()

    def cheapest_quarter(cost: str) -> str:
        """A coarse cell costs what its cheapest mid cell costs: thin objects stay connected."""
        return g.op("Neg", g.op("MaxPool", g.op("Neg", cost), kernel_shape=[2, 2], strides=[2, 2]))

    coarse_reached = _flood(
        g, coarse.seeds(), (cheapest_quarter(mid_entering), cheapest_quarter(mid_leaving)), COARSE_STEPS, STEP_COST
    )
    # Where a coarse cell's mean colour is close too, it belongs (whatever texture its mid cells have).
    coarse_region = coarse.region(coarse_reached, own_colour=True)  # (1, 3, 64, 64)
    nearest2 = g.f([1, 1, 2, 2])
    # The mid flood starts from the coarse one (no cell cheaper than itself) and refines it.
    start = g.max(
        g.min(g.op("Resize", coarse_reached, "", nearest2, mode="nearest"), g.op("Neg", mid_entering)), mid.seeds()
    )
    mid_reached = _flood(g, start, (mid_entering, mid_leaving), MID_STEPS, STEP_COST / 2)
    region = g.max(mid.region(mid_reached), g.op("Resize", coarse_region, "", nearest2, mode="nearest"))
    region = g.reshape(region, 3, 1, MID, MID)  # candidates as the batch axis from here on

    # ---- local inside/outside mean colours → a linear discriminant per pixel at 256×256
    # Cells on an edge mix two colours: they tell little about either side.
    trust = g.op("Exp", g.op("Neg", g.div(g.mul(mid.edge, mid.edge), g.f(TRUST_EDGE**2))))
    inside_w, outside_w = g.mul(region, trust), g.mul(g.sub(one, region), trust)  # (3, 1, 128, 128)
    stack = g.op("Concat", g.mul(inside_w, mid.colour), inside_w, g.mul(outside_w, mid.colour), outside_w, axis=1)
    stack = g.op("AveragePool", stack, kernel_shape=[2, 2], strides=[2, 2])  # (3, 8, 64, 64)
    local = g.pool("AveragePool", stack, LOCAL_WINDOW)
    overall = g.sum(stack, 2, 3)  # (3, 8, 1, 1)
    tiny, weight_floor = g.f(1e-6), g.f(0.02)

    def mean(start: int) -> str:
        """Local mean colour, falling back to the candidate's overall mean where the window is empty."""
        overall_mean = g.div(
            g.slice(overall, start, start + 3, 1), g.add(g.slice(overall, start + 3, start + 4, 1), tiny)
        )
        return g.div(
            g.add(g.slice(local, start, start + 3, 1), g.mul(overall_mean, weight_floor)),
            g.add(g.slice(local, start + 3, start + 4, 1), weight_floor),
        )

    inside, outside = mean(0), mean(4)  # (3, 3, 64, 64)
    difference = g.sub(inside, outside)
    contrast = g.op("Sqrt", g.add(g.sum(g.mul(difference, difference), 1), tiny))  # (3, 1, 64, 64)
    scale = g.add(contrast, g.f(CONTRAST_FLOOR))
    # |p − out|² − |p − in|² = 2 p·(in − out) + |out|² − |in|², divided by the contrast.
    slope = g.div(g.mul(difference, g.f(2.0 * LOGIT_GAIN)), scale)
    offset = g.div(
        g.mul(g.sub(g.sum(g.mul(outside, outside), 1), g.sum(g.mul(inside, inside), 1)), g.f(LOGIT_GAIN)), scale
    )
    plane = g.upsample(g.op("Concat", slope, offset, axis=1), FINE // COARSE)  # (3, 4, 256, 256)
    logits = g.add(g.sum(g.mul(g.slice(plane, 0, 3, 1), fine.colour), 1), g.slice(plane, 3, 4, 1))

    # The region, grown by a cell, bounds the mask; its interior, shrunk by a cell, gets a bonus.
    core = g.op("Resize", g.erode(coarse_region), "", nearest2, mode="nearest")
    core = g.max(g.reshape(core, 3, 1, MID, MID), g.erode(region))
    grown = g.pool("MaxPool", region, 3)
    shape = g.upsample(g.op("Concat", core, grown, axis=1), FINE // MID)  # (3, 2, 256, 256)
    logits = g.add(logits, g.mul(g.slice(shape, 0, 1, 1), g.f(CORE_BONUS)))
    logits = g.min(logits, g.mul(g.sub(g.slice(shape, 1, 2, 1), half), g.f(64.0)))  # (3, 1, 256, 256)

    # The box bounds the mask too: a ramp of 2 per model pixel, zero 2 model pixels outside the box.
    pixels = g.f((np.arange(FINE, dtype=np.float32) + 0.5) * (IMAGE_SIZE / FINE))

    def inside_by(lo: str, hi: str) -> str:
        return g.min(g.sub(pixels, lo), g.sub(hi, pixels))  # (256,) model pixels, > 0 inside

    box_distance = g.min(
        g.reshape(inside_by(prompt.y_lo, prompt.y_hi), 1, 1, FINE, 1),
        g.reshape(inside_by(prompt.x_lo, prompt.x_hi), 1, 1, 1, FINE),
    )
    box_bound = g.mul(g.add(box_distance, g.f(2.0)), g.f(2.0))
    box_bound = g.where(g.op("Greater", g.reshape(prompt.has_box, 1, 1, 1, 1), g.f(0.0)), box_bound, g.f(32.0))
    logits = g.reshape(g.min(logits, box_bound), 1, 3, FINE, FINE)

    # The previous mask, when given, nudges the logits.
    previous = g.mul(
        g.op("Clip", "mask_input", g.f(-MASK_INPUT_CLIP), g.f(MASK_INPUT_CLIP)),
        g.mul("has_mask_input", g.f(MASK_INPUT_WEIGHT)),
    )
    masks, scores = contract.DECODER_OUTPUTS
    logits = g.op("Clip", g.add(logits, previous), g.f(-32.0), g.f(32.0), name=masks)

    # Scores, an honest guess at the IoU: how much of the region's border is a clear border (the cells just
    # outside it are on an edge the flood could not pass, or far from the clicked colour, not merely past a
    # colour drift), times the stability of its logits (area at > 2 over area at > −2) and its compactness
    # (√(area / (area + border)): fragments and speckle score low); the medium one is favoured a little,
    # so that it is shown when the three agree.
    ring = g.sub(grown, region)  # (3, 1, 128, 128)
    path_tolerance = g.f(np.array(PATH_TOLERANCES, np.float32).reshape(3, 1, 1, 1))
    colour_tolerance = g.f(np.array(COLOUR_TOLERANCES, np.float32).reshape(3, 1, 1, 1) * CLEAR_COLOUR)
    on_edge = g.op("Greater", mid_leaving, path_tolerance)
    far = g.op("Greater", g.op("Sqrt", mid.to_include), colour_tolerance)
    clear = g.op("Cast", g.op("Or", on_edge, far), to=1)  # (3, 1, 128, 128)
    clarity = g.div(g.sum(g.mul(ring, clear), 1, 2, 3, keep=0), g.max(g.sum(ring, 1, 2, 3, keep=0), one))
    firm = g.sum(g.op("Cast", g.op("Greater", logits, g.f(STABILITY_MARGIN)), to=1), 2, 3, keep=0)
    loose = g.sum(g.op("Cast", g.op("Greater", logits, g.f(-STABILITY_MARGIN)), to=1), 2, 3, keep=0)
    stability = g.div(firm, g.max(loose, one))  # (1, 3)
    area = g.sum(region, 1, 2, 3, keep=0)
    compact = g.op("Sqrt", g.div(area, g.max(g.add(area, g.sum(ring, 1, 2, 3, keep=0)), one)))  # fragments score low
    score = g.mul(g.mul(stability, g.reshape(clarity, 1, 3)), g.reshape(compact, 1, 3))
    g.op("Mul", score, g.f(np.array([CANDIDATE_PRIOR], np.float32)), name=scores)

    return g.model(
        [_tensor(name, {**EMBEDDING_SHAPES, **PROMPT_SHAPES}[name]) for name in contract.DECODER_INPUTS],
        [
            _tensor(masks, [1, MASK_CANDIDATES, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE]),
            _tensor(scores, [1, MASK_CANDIDATES]),
        ],
    )


def build(out_dir: Path, force: bool = False):
    from samtab_tools.modelio import write_model_folder
    from samtab_tools.web_encoder import optimised

    encoder = build_encoder()
    return write_model_folder(
        out_dir,
        # encoder_web: the encoder the page runs for a photo without a bundle (tools/web_encoder.py)
        {"encoder": encoder, "decoder": build_decoder(), "encoder_web": optimised(encoder)},
        {"name": NAME, "family": "baseline", "weights": "built-in", "config": None},
        force=force,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    args = parser.parse_args(argv)
    from samtab_tools.modelio import ModelFolderExists

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
