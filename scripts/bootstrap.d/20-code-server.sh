#!/usr/bin/env bash
# code-server (VS Code in the browser) for local mode and tests, from the npm registry.
#
# Production images install code-server the standard way (see images/); on this kind of machine
# only the npm registry is reachable, so the npm package is built here once per version and
# cached under $KUMOHUB_CACHE/code-server/<version>/. Warm runs only refresh one symlink:
# .venv/bin/code-server, which puts it on every local user server's PATH.
set -euo pipefail

version=4.100.3 # the newest release whose engines field accepts Node 20
repo=${KUMOHUB_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
cache=${KUMOHUB_CACHE:-$HOME/.cache/kumohub}
root="$cache/code-server"
prefix="$root/$version"
link="$repo/.venv/bin/code-server"

# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"

expose() {
  mkdir -p "$(dirname "$link")"
  ln -sfn "$prefix/bin/code-server" "$link"
}

if [ -x "$prefix/bin/code-server" ] && [ -e "$prefix/.complete" ]; then
  expose
  exit 0
fi

# Headers and tools the native modules (kerberos, node-pty, spdlog, keymap...) compile against.
build_packages=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config g++ make python3)
ensure_apt_packages "code-server build packages" "${build_packages[@]}"
command -v rg >/dev/null || { say "code-server needs ripgrep: apt-get install ripgrep"; exit 1; }

node_version=$(node -p 'process.versions.node')
if [ "${node_version%%.*}" != 20 ]; then
  say "code-server $version needs Node 20 (found $node_version)"
  exit 1
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9 # another bootstrap may be building the same version
if [ -x "$prefix/bin/code-server" ] && [ -e "$prefix/.complete" ]; then
  expose
  exit 0
fi

say "building code-server $version from npm (cold: several minutes; cached afterwards)"
started=$(date +%s)
work="$root/.build-$version"
rm -rf "$work" "$prefix"
mkdir -p "$work/tmp" "$work/probe"
export TMPDIR="$work/tmp"
export npm_config_cache=${npm_config_cache:-$cache/npm}

# Node headers for node-gyp: the distribution's headers when they match the running Node,
# otherwise the official binary distribution published on npm (it ships include/node).
headers_version=$(sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\)/\2/p' \
  /usr/include/node/node_version.h 2>/dev/null | paste -sd.)
if [ "$headers_version" = "$node_version" ]; then
  nodedir=/usr
else
  nodedir="$cache/node-headers/$node_version"
  if [ ! -e "$nodedir/include/node/node.h" ]; then
    node_dist="node-linux-$(node -p 'process.arch')"
    say "fetching Node $node_version headers from the npm package $node_dist"
    (cd "$work/probe" && npm pack --silent "$node_dist@$node_version" >/dev/null)
    mkdir -p "$nodedir"
    tar xzf "$work/probe/$node_dist-$node_version.tgz" -C "$nodedir" --strip-components=1 \
      package/include
  fi
fi

# @vscode/ripgrep downloads its binary from GitHub in postinstall unless the release tarball is
# already in its cache folder ($TMPDIR/vscode-ripgrep-cache-<package version>/). Build that
# tarball from Debian's ripgrep, named the way the pinned package version asks for it.
(cd "$work/probe" && npm pack --silent "code-server@$version" >/dev/null \
  && tar xzf "code-server-$version.tgz" package/lib/vscode/npm-shrinkwrap.json)
rg_pkg=$(node -p "require('$work/probe/package/lib/vscode/npm-shrinkwrap.json')
  .packages['node_modules/@vscode/ripgrep'].version")
(cd "$work/probe" && npm pack --silent "@vscode/ripgrep@$rg_pkg" >/dev/null \
  && tar xzf "vscode-ripgrep-$rg_pkg.tgz" package/lib/postinstall.js)
rg_release=$(sed -n "s/^const VERSION = '\(.*\)';.*/\1/p" "$work/probe/package/lib/postinstall.js")
case "$(node -p 'process.arch')" in
  x64) rg_target=x86_64-unknown-linux-musl ;;
  arm64) rg_target=aarch64-unknown-linux-musl ;;
  *) say "no ripgrep seeding rule for $(node -p 'process.arch')"; exit 1 ;;
esac
rg_cache="$TMPDIR/vscode-ripgrep-cache-$rg_pkg"
mkdir -p "$rg_cache/stage"
cp "$(command -v rg)" "$rg_cache/stage/rg"
tar czf "$rg_cache/ripgrep-$rg_release-$rg_target.tar.gz" -C "$rg_cache/stage" rg

# code-server's postinstall refuses to run as root without unsafe_perm; ~/.npmrc may say yes=false.
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir="$nodedir"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
export JOBS=${JOBS:-$(nproc)}
# A project-local install: with --global, npm 11 hands global/prefix to the nested `npm install`
# of code-server's postinstall, which then replaces code-server itself in the global folder.
mkdir -p "$work/prefix/bin"
echo '{"name": "kumohub-code-server", "private": true}' >"$work/prefix/package.json"
(cd "$work/prefix" && npm install --no-save --loglevel=error "code-server@$version") \
  >"$work/npm.log" 2>&1 || {
  tail -n 40 "$work/npm.log"
  say "code-server install failed; full log: $work/npm.log"
  exit 1
}
ln -s ../node_modules/code-server/out/node/entry.js "$work/prefix/bin/code-server"
"$work/prefix/bin/code-server" --config=/dev/null --version >/dev/null

mv "$work/prefix" "$prefix"
touch "$prefix/.complete"
rm -rf "$work"
expose
say "code-server $version installed in $(($(date +%s) - started)) s"
