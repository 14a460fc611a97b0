"""Fixtures shared by the unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def baseline(tmp_path_factory):
    """The built-in classical model (tools/baseline_model.py), built once per session in a fraction of a second."""
    out = tmp_path_factory.mktemp("models") / "baseline"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "baseline_model.py"), "--out", str(out)], check=True, capture_output=True
    )
    return out


@pytest.fixture
def scene():
    """A grey 60×40 photo and a 20×20 square mask in it (compositing and export tests)."""
    photo = np.full((40, 60, 3), 100, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 20:40] = True
    return photo, mask
