#!/usr/bin/env bash
# Run the whole suite: lint, then every test tier. Exit non-zero when nothing was collected.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
