"""The tools as installed commands (pyproject.toml's [project.scripts], in .venv/bin/): each runs from any
folder, and the installed project is this repository's pyapp and tools/ (the package samtab_tools)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent
SETUP_HINT = "the project's install is older than pyproject.toml: run `bash tools/setup.sh --test`"


def test_the_installed_packages_are_this_repositorys_from_any_folder(tmp_path):
    code = "import pyapp, samtab_tools; print(pyapp.__file__); print(samtab_tools.__file__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{SETUP_HINT}\n{result.stderr}"
    assert result.stdout.split() == [str(ROOT / "pyapp" / "__init__.py"), str(ROOT / "tools" / "__init__.py")]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_command_runs_from_any_folder(name, tmp_path):
    module, function = SCRIPTS[name].split(":")
    assert module.startswith("samtab_tools.") and function == "main", SCRIPTS[name]
    assert (ROOT / "tools" / f"{module.removeprefix('samtab_tools.')}.py").is_file(), SCRIPTS[name]
    command = BIN / name
    if not command.exists():
        pytest.fail(f"{command} is missing: {SETUP_HINT}", pytrace=False)
    result = subprocess.run([command, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name} "), result.stdout  # its own options, under its own name
    assert not any(tmp_path.iterdir()), "--help wrote files"
