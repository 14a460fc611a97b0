#!/usr/bin/env bash
# Set up samtab on a fresh machine: a Python virtual environment (.venv) with the project and its tools,
# the pinned npm packages, the browser runtime in site/vendor/ and, with --test, Debian's Chromium and the
# test dependencies. Safe to run again: each step is skipped when already done.
#
#   bash tools/setup.sh          # what `python tools/serve.py` needs
#   bash tools/setup.sh --test   # plus what the tests need
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

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
[ "$want_tests" = 1 ] && extras=test
stamp=.venv/.samtab-installed  # "<extras> <hash of pyproject.toml>"; the test extras include the tools'
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

if [ "$want_tests" = 1 ] && [ ! -x "${SAMTAB_CHROMIUM:-/usr/bin/chromium}" ]; then
  apt_install "Chromium (for the browser tests)" chromium
fi

.venv/bin/python tools/vendor.py
say "ready"
