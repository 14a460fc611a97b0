"""Shared test set-up. The tests import the installed project: `pyapp` and the tools as `samtab_tools`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def torch():
    """torch, with Meta's sam2 and samexporter importable; without them the test FAILS (never skips) and
    says how to install them."""
    from samtab_tools import export_sam2

    try:
        export_sam2.load_dependencies()
    except export_sam2.MissingDependency as error:
        pytest.fail(
            f"these tests need torch, Meta's sam2 and samexporter: run `bash tools/setup.sh --test`\n({error})",
            pytrace=False,
        )
    import torch

    return torch


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-cases",
        type=int,
        default=None,
        help="bundle fuzzer (tests/unit/test_bundle_fuzz.py): generated and mutated bundles in all; "
        "default 10,000, or SAMTAB_FUZZ_CASES",
    )


FIGURES = pytest.StashKey[list]()


@pytest.fixture
def figures(request):
    """figures(line): a measured figure for docs/reliability.md, printed in the run's terminal summary
    (whatever pytest captured) under "samtab figures"."""
    lines = request.config.stash.setdefault(FIGURES, [])
    return lambda line: lines.append(f"{request.node.name}: {line}")


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("samtab figures")
        for line in lines:
            terminalreporter.write_line(line)


SAM2_MODEL = ROOT / "models" / "sam2.1-tiny-random"


@pytest.fixture(scope="session")
def sam2_model():
    """The random-init SAM2.1 tiny in models/ (where tools/demos.py finds it), exported when missing."""
    if not (SAM2_MODEL / "model.json").exists():
        export = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "export_sam2.py"),
                "--random-init",
                "--seed",
                "0",
                "--out",
                str(SAM2_MODEL),
                "--no-check",
            ],
            capture_output=True,
            text=True,
        )
        assert export.returncode == 0, export.stdout + export.stderr
    return SAM2_MODEL
