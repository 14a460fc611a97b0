"""Fixtures shared by the unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def baseline(tmp_path_factory):
    """The built-in classical model (tools/baseline_model.py), built once per session in a fraction of a second."""
    out = tmp_path_factory.mktemp("models") / "baseline"
    subprocess.run([sys.executable, str(ROOT / "tools" / "baseline_model.py"), "--out", str(out)], check=True,
                   capture_output=True)
    return out
