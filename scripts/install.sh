#!/usr/bin/env bash
# Install everything warden needs into this checkout, idempotently (fast when nothing changed):
#   .venv/                 Python deps pinned in requirements.lock, warden itself in editable mode
#   contracts/node_modules solc, OpenZeppelin and anvil, exactly as contracts/package-lock.json says
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

py_stamp=$(stamp requirements.lock pyproject.toml)
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat .venv/.warden-installed 2>/dev/null)" != "$py_stamp" ]; then
  echo "install: Python packages (requirements.lock)"
  # the lock is complete (pip freeze), so nothing is resolved and nothing beyond it is installed
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$py_stamp" > .venv/.warden-installed
fi

npm_stamp=$(stamp contracts/package-lock.json)
if [ "$(cat contracts/node_modules/.warden-installed 2>/dev/null)" != "$npm_stamp" ]; then
  echo "install: npm tools (contracts/package-lock.json: solc, OpenZeppelin, anvil)"
  (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_stamp" > contracts/node_modules/.warden-installed
fi

# the dashboard's browser tests drive Debian's chromium (never a downloaded browser)
if [ ! -x /usr/bin/chromium ]; then
  echo "install: chromium (dashboard browser tests)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
