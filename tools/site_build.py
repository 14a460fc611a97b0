"""The site's build manifest, site/build.js: every file the site serves, with its size and sha256, and a
build id (the hash of that list).

    python tools/site_build.py        # after changing anything in site/ by hand (serve.py runs it itself)

The service worker (site/sw.js) reads it with importScripts: it keeps offline copies in a cache named after
the build id, checks every copy's size and sha256 before keeping it (a host's fallback page answering 200
for a missing file is never kept), and deletes the caches of other builds when it takes over. A new build
changes build.js, which the browser checks whenever it checks the service worker, so a redeployed site is
picked up on the next visit. tools/vendor.py, tools/demos.py and tools/serve.py write it after they change
the site; files whose size and time have not changed are not hashed again.

    self.SAMTAB_BUILD = {"id": "<16 hex>", "files": {"<path relative to site/>": {"size", "sha256"}}};
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from samtab_tools.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
BUILD_JS = "build.js"
PREFIX = "self.SAMTAB_BUILD = "
# Not served to the page as content (headers for static hosts), or the manifest itself.
SKIPPED = {BUILD_JS, "_headers", "vercel.json"}
CACHE = ROOT / ".cache" / "site-build.json"  # {path: [size, mtime_ns, sha256]}: hashes not worth redoing


def _files(site: Path) -> list[Path]:
    return sorted(
        p
        for p in site.rglob("*")
        if p.is_file()
        and p.relative_to(site).as_posix() not in SKIPPED
        and not any(part.startswith(".") for part in p.relative_to(site).parts)
    )


def manifest(site: Path = SITE, cache_path: Path | None = CACHE) -> dict:
    """{"id", "files"} for everything under `site` (hidden files, e.g. half-written ones, excluded)."""
    try:
        cache = json.loads(cache_path.read_text()) if cache_path else {}
    except (OSError, ValueError):
        cache = {}
    files, fresh = {}, {}
    for path in _files(site):
        relative = path.relative_to(site).as_posix()
        stat = path.stat()
        known = cache.get(str(path))
        if known and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            sha256 = known[2]
        else:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            sha256 = digest.hexdigest()
        fresh[str(path)] = [stat.st_size, stat.st_mtime_ns, sha256]
        files[relative] = {"size": stat.st_size, "sha256": sha256}
    if cache_path and fresh != cache:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(fresh))
    build_id = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    return {"id": build_id, "files": files}


def write(site: Path = SITE) -> dict:
    """Write site/build.js if what it says changed; return the manifest."""
    built = manifest(site)
    text = PREFIX + json.dumps(built, sort_keys=True, separators=(",", ":")) + ";\n"
    target = site / BUILD_JS
    if not target.exists() or target.read_text() != text:
        write_atomic(target, text.encode())
    return built


def read(site: Path = SITE) -> dict:
    """The manifest site/build.js holds."""
    text = (site / BUILD_JS).read_text()
    return json.loads(text[len(PREFIX) :].rstrip().rstrip(";"))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    built = write()
    print(f"site_build: {len(built['files'])} files, build {built['id']} -> site/{BUILD_JS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
