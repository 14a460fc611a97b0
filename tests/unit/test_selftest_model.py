"""The boot self-test model gives, in onnxruntime, the numbers the page is checked against."""

import numpy as np
import onnxruntime as ort

from samtab_tools import selftest_model


def test_onnxruntime_matches_the_reference():
    session = ort.InferenceSession(selftest_model.build(), providers=["CPUExecutionProvider"])
    check = selftest_model.boot_check()
    x = np.asarray(check["input"], dtype=np.float32)
    [y] = session.run([check["output_name"]], {check["input_name"]: x})
    np.testing.assert_allclose(y, np.asarray(check["expected"], dtype=np.float32), atol=1e-6)
    np.testing.assert_allclose(y, selftest_model.expected(x), atol=1e-6)
    # A dynamic batch dimension, as the decoder's point count will be.
    [y5] = session.run(None, {"x": np.ones((5, 8), np.float32)})
    assert y5.shape == (5, 4)


def test_model_bytes_are_deterministic():
    assert selftest_model.build() == selftest_model.build()
