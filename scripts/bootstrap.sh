#!/usr/bin/env bash
# Install everything KumoHub needs on this machine; safe to run again (fast when warm).
#   scripts/bootstrap.sh run   - what local mode needs
#   scripts/bootstrap.sh test  - that, plus the test tools (Chromium, moto, ...)
# Heavy, reusable artefacts are cached under ${KUMOHUB_CACHE:-$HOME/.cache/kumohub}.
set -euo pipefail

purpose=${1:-run}
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KUMOHUB_CACHE:-$HOME/.cache/kumohub}
mkdir -p "$cache"
export UV_CACHE_DIR="$cache/uv" UV_PYTHON_DOWNLOADS=never
export npm_config_cache="$cache/npm"

# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"

# --- system packages (Debian/Ubuntu) -------------------------------------------------------
apt_packages=(ripgrep)
if [ "$purpose" = test ]; then
  apt_packages+=(chromium)
fi
ensure_apt_packages "system packages" "${apt_packages[@]}"
for tool in python3 node npm; do
  command -v "$tool" >/dev/null || { say "$tool is required (Python 3.11+, Node 20+)"; exit 1; }
done

# --- Python: one venv from the lock file ---------------------------------------------------
tools="$cache/tools"
if [ ! -x "$tools/bin/uv" ]; then
  say "installing uv into $tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q "uv==0.13.9"
fi
uv="$tools/bin/uv"
lock="$repo/requirements/dev.txt"
stamp="$repo/.venv/.kumohub-lock"
if [ ! -x "$repo/.venv/bin/python" ]; then
  "$uv" venv -q --python python3 "$repo/.venv"
fi
if ! cmp -s "$lock" "$stamp" 2>/dev/null; then
  say "installing Python packages from requirements/dev.txt"
  "$uv" pip sync -q --python "$repo/.venv/bin/python" "$lock"
  cp "$lock" "$stamp"
fi
"$uv" pip install -q --python "$repo/.venv/bin/python" --no-deps -e "$repo"

# --- Node tools: configurable-http-proxy ----------------------------------------------------
if [ ! -x "$repo/node_modules/.bin/configurable-http-proxy" ] \
   || ! cmp -s "$repo/package-lock.json" "$repo/node_modules/.package-lock.json.kumohub" 2>/dev/null; then
  say "installing Node tools (configurable-http-proxy)"
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$repo/package-lock.json" "$repo/node_modules/.package-lock.json.kumohub"
fi

# --- extension points: each step script installs one more component -------------------------
for step in "$repo"/scripts/bootstrap.d/*.sh; do
  [ -e "$step" ] || continue
  KUMOHUB_REPO="$repo" KUMOHUB_CACHE="$cache" KUMOHUB_PURPOSE="$purpose" \
    UV="$uv" bash "$step"
done
say "ready ($purpose)"
