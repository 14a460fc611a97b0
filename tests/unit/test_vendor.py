"""tools/vendor.py: the served runtime is exactly what the official lock vouches for, rebuilt idempotently."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from samtab_tools import vendor

ROOT = Path(__file__).resolve().parents[2]
SERVED_PACKAGES = {"numpy", "pillow", "msgpack"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest():
    return vendor.assemble()


def test_manifest_matches_the_files_served(manifest):
    for relative, entry in manifest["files"].items():
        path = vendor.VENDOR / relative
        assert path.stat().st_size == entry["size"], relative
        assert sha256(path) == entry["sha256"], relative
    served = {p.relative_to(vendor.VENDOR).as_posix() for p in vendor.VENDOR.rglob("*") if p.is_file()}
    assert served == set(manifest["files"]) | {"MANIFEST.json"}


def test_the_snapshot_is_this_pyodide_builds_memory_in_whole_pages(manifest):
    """vendor/pyodide/snapshot.bin.gz is a Pyodide memory snapshot (its magic number) of the build served
    (the build id in its header is pyodide.mjs's: Pyodide refuses any other), padded to whole 64 KiB pages
    (the worker's memory is made as large as the snapshot)."""
    data = gzip.decompress((vendor.VENDOR / vendor.SNAPSHOT).read_bytes())
    words = struct.unpack_from("<12I", data)
    assert words[0] == 1886286592  # Pyodide 0.27's snapshot magic number
    build_id = "".join(f"{word:08x}" for word in words[4:12])
    assert f'BUILD_ID:"{build_id}"' in (vendor.VENDOR / "pyodide" / "pyodide.mjs").read_text()
    assert len(data) % 65536 == 0 and len(data) >= 20 * 2**20


def test_trimmed_lock_lists_exactly_what_is_served_with_correct_hashes(manifest):
    lock = json.loads((vendor.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    official = json.loads((vendor.NODE_MODULES / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"] == official["info"] and lock["info"]["version"] == "0.27.7"
    assert set(lock["packages"]) == SERVED_PACKAGES
    wheels = {p.name for p in (vendor.VENDOR / "pyodide").glob("*.whl")}
    assert wheels == {entry["file_name"] for entry in lock["packages"].values()}
    for name, entry in lock["packages"].items():
        assert sha256(vendor.VENDOR / "pyodide" / entry["file_name"]) == entry["sha256"], name
        if name != "msgpack":  # the official wheels are byte for byte the official ones
            assert entry == official["packages"][name]
    assert lock["packages"]["numpy"]["version"] == "2.0.2"
    assert lock["packages"]["msgpack"]["version"] == vendor.MSGPACK_VERSION


def test_msgpack_wheel_is_pure_python():
    wheel = vendor.VENDOR / "pyodide" / f"msgpack-{vendor.MSGPACK_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "msgpack/fallback.py" in names
        assert not [n for n in names if n.endswith((".so", ".pyd", ".c", ".pyx"))]
        assert "Tag: py3-none-any" in archive.read(f"msgpack-{vendor.MSGPACK_VERSION}.dist-info/WHEEL").decode()


def test_msgpack_wheel_build_is_reproducible(tmp_path, monkeypatch):
    real_cache = vendor.CACHE
    (tmp_path / "msgpack").mkdir()
    shutil.copy(real_cache / "msgpack" / f"msgpack-{vendor.MSGPACK_VERSION}.tar.gz", tmp_path / "msgpack")
    (tmp_path / "build-env").symlink_to(real_cache / "build-env")  # same pinned backend, no download
    monkeypatch.setattr(vendor, "CACHE", tmp_path)
    rebuilt = vendor.build_msgpack_wheel()
    assert rebuilt != real_cache / "msgpack" / rebuilt.name
    assert sha256(rebuilt) == sha256(real_cache / "msgpack" / rebuilt.name)


def test_second_run_changes_nothing(manifest, capsys):
    before = {p: p.stat().st_mtime_ns for p in vendor.VENDOR.rglob("*") if p.is_file()}
    vendor.assemble()
    assert "0 written (up to date)" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in vendor.VENDOR.rglob("*") if p.is_file()}


def test_leftover_files_are_removed(manifest):
    stale = vendor.VENDOR / "old-layout" / "stale.js"
    stale.parent.mkdir()
    stale.write_text("// from an older layout")
    vendor.assemble()
    assert not stale.exists() and not stale.parent.exists()


def test_a_tampered_wheel_is_refused_with_a_message_that_says_what_to_do(tmp_path, monkeypatch):
    official = vendor.official_lock()
    real_wheels = vendor.CACHE / f"pyodide-{vendor.PYODIDE_VERSION}"
    source = tmp_path / "wheels"
    source.mkdir()
    for name in vendor.OFFICIAL_WHEELS:
        shutil.copy(real_wheels / official["packages"][name]["file_name"], source)
    numpy_wheel = source / official["packages"]["numpy"]["file_name"]
    numpy_wheel.write_bytes(numpy_wheel.read_bytes() + b"tampered")
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(vendor, "WHEEL_BUNDLES", ())  # no PyPI fallback: only the folder given
    with pytest.raises(vendor.VendorError) as error:
        vendor.gather_official_wheels(official, [source])
    message = str(error.value)
    assert numpy_wheel.name in message and "--wheels" in message
    assert "pillow" not in message  # the good wheels were accepted


def test_wheels_folder_is_accepted_when_hashes_match(tmp_path, monkeypatch):
    official = vendor.official_lock()
    real_wheels = vendor.CACHE / f"pyodide-{vendor.PYODIDE_VERSION}"
    nested = tmp_path / "pyodide" / "full"  # an unpacked distribution keeps its wheels in a subfolder
    nested.mkdir(parents=True)
    for name in vendor.OFFICIAL_WHEELS:
        shutil.copy(real_wheels / official["packages"][name]["file_name"], nested)
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(vendor, "WHEEL_BUNDLES", ())
    found = vendor.gather_official_wheels(official, [tmp_path / "pyodide"])
    assert set(found) == {official["packages"][n]["file_name"] for n in vendor.OFFICIAL_WHEELS}


def test_missing_npm_is_named(monkeypatch):
    monkeypatch.setattr(vendor, "installed_npm_version", lambda name: None)
    monkeypatch.setattr(vendor.shutil, "which", lambda name: None)
    with pytest.raises(vendor.VendorError, match="npm was not found.*nodejs npm"):
        vendor.ensure_npm_packages()


def test_cli_refuses_a_missing_wheels_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "vendor.py"), "--wheels", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "no such folder" in result.stderr


PYAPP_CONSTANTS = ("VIEWS", "MAX_VIEW_EDGE", "MAX_BUNDLE_BYTES", "MAX_MESSAGE")


def test_the_pages_constants_are_pyapps(manifest):
    """site/vendor/constants.js (the page paints a photo and checks a file before its Python runs) exports
    pyapp's values under pyapp's names, read by node as the browser imports the module."""
    from pyapp import app, bundle, session

    assert "constants.js" in manifest["files"]
    node = shutil.which("node")
    assert node, "this test needs Node.js: run `bash tools/setup.sh`, which installs it"
    script = (
        f"const m = await import({json.dumps((vendor.VENDOR / 'constants.js').as_uri())});"
        "console.log(JSON.stringify(m));"
    )
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "VIEWS": list(app.VIEWS),
        "MAX_VIEW_EDGE": app.MAX_VIEW_EDGE,
        "MAX_BUNDLE_BYTES": bundle.MAX_BUNDLE_BYTES,
        "MAX_MESSAGE": session.MAX_MESSAGE,
    }


def test_the_page_declares_none_of_pyapps_constants_itself():
    """One source: the page's modules import these from vendor/constants.js, never restate them."""
    sources = sorted((ROOT / "site").glob("*.js")) + sorted((ROOT / "site" / "js").glob("*.js"))
    pattern = re.compile(rf"\b({'|'.join(PYAPP_CONSTANTS)})\s*=(?!=)")
    restated = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sources
        for match in pattern.finditer(path.read_text())
    ]
    assert len(sources) > 5 and restated == []
