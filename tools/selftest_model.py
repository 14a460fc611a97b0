"""The small ONNX model the page runs at boot to prove onnxruntime-web works end to end.

    python tools/selftest_model.py OUT.onnx

y = relu(x @ W + b) for x of shape (N, 8) and fixed, known W (8, 4) and b (4,): small enough to check by
hand, but it exercises what the SAM2 decoder needs (float32 tensors, a dynamic dimension, MatMul, Add, an
activation). `expected(x)` gives the reference numbers the tests compare the browser's output with.
"""

from __future__ import annotations

import sys

import numpy as np

INPUT_WIDTH, OUTPUT_WIDTH = 8, 4
# The input the page feeds at boot; the browser test checks the output against expected(BOOT_INPUT).
BOOT_INPUT = (np.arange(2 * INPUT_WIDTH, dtype=np.float32).reshape(2, INPUT_WIDTH) * 3 % 7 - 2) / 4


def weights() -> tuple[np.ndarray, np.ndarray]:
    w = ((np.arange(INPUT_WIDTH * OUTPUT_WIDTH, dtype=np.float32).reshape(INPUT_WIDTH, OUTPUT_WIDTH) * 5) % 11 - 5) / 8
    # Chosen so that the boot input gives positive outputs and one column that relu must clip to 0.
    b = np.array([0.5, 0.75, 0.125, -1.0], dtype=np.float32)
    return w, b


def expected(x: np.ndarray) -> np.ndarray:
    w, b = weights()
    return np.maximum(x.astype(np.float32) @ w + b, 0).astype(np.float32)


def boot_check() -> dict:
    """What the page feeds the model at boot and the output it must get back (as JSON-ready lists)."""
    return {
        "input_name": "x",
        "output_name": "y",
        "input": BOOT_INPUT.tolist(),
        "expected": expected(BOOT_INPUT).tolist(),
    }


def build() -> bytes:
    """The serialized model (opset 17, IR 8: what onnxruntime-web 1.30 and onnxruntime both accept)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("the `onnx` package is missing: run `pip install -e '.[tools]'`") from error
    w, b = weights()
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["xwb"]),
            helper.make_node("Relu", ["xwb"], ["y"]),
        ],
        "samtab_selftest",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", INPUT_WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUTPUT_WIDTH])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="samtab")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "wb") as f:
        f.write(build())
