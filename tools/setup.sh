#!/usr/bin/env bash
# Set up samtab on a fresh machine: a Python virtual environment (.venv) with the project and its tools,
# the pinned npm packages, the browser runtime in site/vendor/ and, with --test, Debian's Chromium and the
# test dependencies. Safe to run again: each step is skipped when already done.
#
#   bash tools/setup.sh           # what `python tools/serve.py` needs
#   bash tools/setup.sh --export  # plus what tools/export_sam2.py needs (CPU torch, Meta's sam2, samexporter)
#   bash tools/setup.sh --scale   # plus Ray, for samtab-encode --ray
#   bash tools/setup.sh --test    # plus what the tests need (the export's dependencies included)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
want_export=0
want_scale=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1; want_export=1 ;;
    --export) want_export=1 ;;
    --scale) want_scale=1 ;;
    *) printf 'setup: error: unknown option %s (use --test, --export or --scale)\n' "$arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "$1 is missing. Install it (Debian/Ubuntu: sudo apt-get install -y $2), then run this again."
  fi
  say "installing $2 with apt-get"
  if [ -z "${SAMTAB_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    export SAMTAB_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "Python 3.11+ is needed: install python3 and run this again."
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is needed; $("$python" --version) was found. Set PYTHON=/path/to/python3.11."

command -v npm >/dev/null || apt_install "npm (Node.js 20+)" "nodejs npm"

extras=tools
[ "$want_scale" = 1 ] && extras=tools,scale
[ "$want_tests" = 1 ] && extras=test
stamp=.venv/.samtab-installed  # "<extras> <hash of pyproject.toml>"; the test extras include the others'
hash=$(sha256sum pyproject.toml | cut -c1-16)
installed=$(cat "$stamp" 2>/dev/null || true)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
  installed=""
fi
if [ "$installed" != "$extras $hash" ] && [ "$installed" != "test $hash" ]; then
  say "installing samtab[$extras] into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  echo "$extras $hash" > "$stamp"
fi

# tools/export_sam2.py: CPU torch (pinned: an unpinned torch pulls a multi-GB CUDA build), Meta's sam2 (an sdist,
# built here without its CUDA extension; --no-deps, as it asks for torchvision, which fails to import beside
# torch 2.13) and samexporter's SAM2 wrappers (--no-deps, as it pins torch 2.10). pyproject.toml's `export`
# extra lists the same pins as export_pins. pip's warnings about sam2's and samexporter's own requirements
# (torchvision, torch 2.10, onnx 1.20, opencv...) are expected: the export needs none of those.
export_pins="torch==2.13.0 hydra-core==1.3.8 iopath==0.1.10 tqdm==4.70.1"
sam2_pin="sam2==1.1.0"
samexporter_pin="samexporter==0.5.0"
export_installed() {
  # shellcheck disable=SC2086
  .venv/bin/python - $export_pins $sam2_pin $samexporter_pin 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version

import torch, sam2, samexporter  # noqa: F401,E401  (importable, not only installed)

for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    if version(name).split("+")[0] != wanted:  # torch reports 2.13.0+cpu
        sys.exit(1)
EOF
}
if [ "$want_export" = 1 ] && ! export_installed; then
  say "installing the SAM2 export dependencies into .venv: $export_pins $sam2_pin $samexporter_pin"
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q --disable-pip-version-check $export_pins
  SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
    "$sam2_pin"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "$samexporter_pin"
  export_installed || die "the SAM2 export dependencies did not install (see pip's messages above)"
fi

if [ "$want_tests" = 1 ] && [ ! -x "${SAMTAB_CHROMIUM:-/usr/bin/chromium}" ]; then
  apt_install "Chromium (for the browser tests)" chromium
fi

.venv/bin/python tools/vendor.py
say "ready"
