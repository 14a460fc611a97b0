"""Shared test set-up: the project's tools are importable as modules (tools/ is not a package)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
