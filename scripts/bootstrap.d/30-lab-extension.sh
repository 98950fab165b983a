#!/usr/bin/env bash
# Build KumoHub's JupyterLab extension (extensions/lab) into a wheel and install it into the venv.
#
# The wheel is cached under $KUMOHUB_CACHE/lab/<hash of the extension's sources and lock>, so a
# warm run only reinstalls it (about a second); a cold run needs the npm registry for
# `jlpm install` (node packages are cached in $KUMOHUB_CACHE/yarn) and builds in 1-3 minutes.
# The wheel also installs the sys-prefix page_config.json that disables and locks JupyterLab's
# download and export plugins.
set -euo pipefail

repo=${KUMOHUB_REPO:?run through scripts/bootstrap.sh}
cache=${KUMOHUB_CACHE:?run through scripts/bootstrap.sh}
uv=${UV:?run through scripts/bootstrap.sh}
src="$repo/extensions/lab"
python="$repo/.venv/bin/python"
self=$(readlink -f "$0")

# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"

export UV_CACHE_DIR="${UV_CACHE_DIR:-$cache/uv}" UV_PYTHON_DOWNLOADS=never
export npm_config_cache="$cache/npm" npm_config_yes=true
export YARN_CACHE_FOLDER="$cache/yarn" YARN_ENABLE_GLOBAL_CACHE=false YARN_ENABLE_TELEMETRY=0

# Everything that goes into the wheel, plus this script (how it is built).
source_hash() {
  (
    cd "$src"
    find package.json yarn.lock .yarnrc.yml tsconfig.json pyproject.toml install.json README.md \
      kumohub_lab/__init__.py jupyter-config src style -type f -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
    sha256sum < "$self"
  ) | sha256sum | cut -c1-20
}

key=$(source_hash)
wheel_dir="$cache/lab/$key"
wheel=""
if [ -d "$wheel_dir" ]; then
  wheel=$(find "$wheel_dir" -maxdepth 1 -name 'kumohub_lab-*.whl' | head -n 1)
fi

if [ -z "$wheel" ]; then
  say "building the JupyterLab extension (kumohub-lab, cache key $key)"
  mkdir -p "$cache/lab"
  staging=$(mktemp -d "$cache/lab/.build.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  "$uv" build -q --wheel --python "$python" --out-dir "$staging" "$src"
  mkdir -p "$wheel_dir"
  mv "$staging"/kumohub_lab-*.whl "$wheel_dir/"
  wheel=$(find "$wheel_dir" -maxdepth 1 -name 'kumohub_lab-*.whl' | head -n 1)
  # Keep the three newest builds; older ones only take space.
  find "$cache/lab" -mindepth 1 -maxdepth 1 -type d ! -name '.build.*' -printf '%T@ %p\n' \
    | sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
fi

"$uv" pip install -q --python "$python" --no-deps --reinstall "$wheel"
