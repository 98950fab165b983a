#!/usr/bin/env bash
# Sample data for local mode's DuckDB engine: ~1M rows of Parquet, generated once per
# generator version into $KUMOHUB_CACHE/sample-data/<version>/ (a warm run only checks the
# version marker and returns).
set -euo pipefail
KUMOHUB_CACHE="$KUMOHUB_CACHE" "$KUMOHUB_REPO/.venv/bin/python" -m kumohub.extensions.query.sample_data
