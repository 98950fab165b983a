#!/usr/bin/env bash
# Kernels load the %%athena magics by default, as in the images: the same ipython_config.py
# goes into the environment's etc/ipython (read by every IPython kernel of this venv).
set -euo pipefail
repo=${KUMOHUB_REPO:?run through scripts/bootstrap.sh}
install -d "$repo/.venv/etc/ipython"
install -m 0644 "$repo/images/user/ipython_config.py" "$repo/.venv/etc/ipython/ipython_config.py"
