#!/usr/bin/env bash
# Re-resolve the image lock files from requirements/*.in (and pyproject.toml's extras).
# The hub image runs Python 3.12 (the z2jh hub image); the user images Python 3.11.
# Inputs name our package as file:///src/kumohub (where the Dockerfiles copy it); this
# script points that at the checkout while resolving.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
uv=${UV:-$HOME/.cache/kumohub/tools/bin/uv}
export UV_PYTHON_DOWNLOADS=never
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$here"/requirements/*.in "$here"/requirements/*.txt; do
  [ -e "$f" ] && sed "s#file:///src/kumohub#file://$repo#" "$f" > "$work/$(basename "$f")"
done
compile() {  # in-file python-version out-file
  (cd "$work" && "$uv" pip compile -q --python-version "$2" --no-header --no-annotate "$1" -o "$3")
  sed "s#file://$repo#file:///src/kumohub#" "$work/$3" > "$here/requirements/$3"
}
compile hub.in 3.12 hub.txt
compile user.in 3.11 user.txt
compile user-gpu.in 3.11 user-gpu.txt
echo "locked: images/requirements/{hub,user,user-gpu}.txt"
