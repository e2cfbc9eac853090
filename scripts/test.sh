#!/usr/bin/env bash
# The whole test suite: install what is missing, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo "test: ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "test: mypy"
.venv/bin/mypy
echo "test: pytest"
# pytest exits 5 when it collects nothing; set -e makes that (like any non-zero exit) a failure
.venv/bin/pytest "$@"
