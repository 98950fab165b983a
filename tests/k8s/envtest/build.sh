#!/usr/bin/env bash
# Build kube-apiserver and etcd from the Go module proxy for the test harness.
#
# Output: the directory holding both binaries, printed as the LAST line of stdout.
# Everything else goes to stderr.
#
#   KUMOHUB_ENVTEST_BIN=/dir  use prebuilt binaries (e.g. from setup-envtest); no build.
#   KUMOHUB_K8S_VERSION       Kubernetes version (default below)
#   KUMOHUB_ETCD_VERSION      etcd version (default below; paired as envtest pairs them)
#   KUMOHUB_CACHE_DIR         cache root (default $HOME/.cache/kumohub)
#
# Binaries are cached at $KUMOHUB_CACHE_DIR/envtest/k8s-<ver>-etcd-<ver>/; a warm run
# exits immediately. The Go module and build caches live in $KUMOHUB_CACHE_DIR/go so CI
# can cache that directory.
set -euo pipefail

K8S_VERSION="${KUMOHUB_K8S_VERSION:-v1.34.12}"
ETCD_VERSION="${KUMOHUB_ETCD_VERSION:-v3.6.4}"
CACHE_ROOT="${KUMOHUB_CACHE_DIR:-$HOME/.cache/kumohub}"

log() { echo "[envtest-build] $*" >&2; }

if [[ -n "${KUMOHUB_ENVTEST_BIN:-}" ]]; then
    for b in kube-apiserver etcd; do
        if [[ ! -x "$KUMOHUB_ENVTEST_BIN/$b" ]]; then
            log "KUMOHUB_ENVTEST_BIN=$KUMOHUB_ENVTEST_BIN has no executable '$b'"
            exit 1
        fi
    done
    echo "$KUMOHUB_ENVTEST_BIN"
    exit 0
fi

OUT="$CACHE_ROOT/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
    echo "$OUT"
    exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
    else log "no Go toolchain found (set GO=/path/to/go)"; exit 1
    fi
fi

export GOMODCACHE="${GOMODCACHE:-$CACHE_ROOT/go/mod}"
export GOCACHE="${GOCACHE:-$CACHE_ROOT/go/build}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
# Use the installed Go (k8s 1.34 needs >= 1.24); never fetch another toolchain.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
JOBS="${KUMOHUB_BUILD_JOBS:-2}"
export GOMAXPROCS="${GOMAXPROCS:-$JOBS}"

mkdir -p "$OUT" "$GOMODCACHE" "$GOCACHE"
# One build at a time per version (parallel pytest workers, CI jobs sharing a cache).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT/.lock"
    flock 9
    if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
        echo "$OUT"
        exit 0
    fi
fi
# Long and CPU-heavy: yield to interactive work on shared machines.
renice -n 10 $$ >/dev/null 2>&1 || true
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kumohub-envtest-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "go: $("$GO" version); output: $OUT"

# ---- kube-apiserver ---------------------------------------------------------------
build_apiserver() {
    local mod="$WORK/apiserver"
    mkdir -p "$mod"
    log "resolving k8s.io/kubernetes@$K8S_VERSION"
    local info gomod
    if ! info="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION")"; then
        log "go mod download k8s.io/kubernetes@$K8S_VERSION failed:"
        echo "$info" >&2
        return 1
    fi
    gomod="$(echo "$info" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    if [[ -z "$gomod" || ! -f "$gomod" ]]; then
        log "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION"; return 1
    fi
    # Staging modules: the release's go.mod replaces k8s.io/<name> => ./staging/src/k8s.io/<name>.
    local staging
    staging="$(grep -oE 'k8s\.io/[A-Za-z0-9._-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._-]+' "$gomod" \
        | awk '{print $1}' | sort -u)"
    if [[ -z "$staging" ]]; then
        log "no staging replaces found in $gomod"; return 1
    fi
    local stag_ver="v0.${K8S_VERSION#v1.}"
    {
        echo "module kumohub.local/envtest-apiserver"
        echo
        echo "go 1.24"
        echo
        echo "require k8s.io/kubernetes $K8S_VERSION"
        echo
        echo "replace ("
        for m in $staging; do echo "	$m => $m $stag_ver"; done
        echo ")"
    } > "$mod/go.mod"
    cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    log "$(echo "$staging" | wc -l) staging modules pinned to $stag_ver"
    (cd "$mod" && "$GO" mod tidy >&2)
    log "building kube-apiserver $K8S_VERSION"
    rm -f "$OUT/kube-apiserver.tmp"
    (cd "$mod" && "$GO" build -p "$JOBS" -pgo=off -trimpath -ldflags="-s -w \
        -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 \
        -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
        -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
    mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
}

# ---- etcd ---------------------------------------------------------------------------
build_etcd() {
    local mod="$WORK/etcd"
    mkdir -p "$mod"
    cat > "$mod/go.mod" <<GOMOD
module kumohub.local/envtest-etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
    cat > "$mod/main.go" <<'GO'
// Wrapper main: the etcd binary's main package is etcdmain.Main, as in etcd's own main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "$mod" && "$GO" mod tidy >&2)
    log "building etcd $ETCD_VERSION"
    rm -f "$OUT/etcd.tmp"
    (cd "$mod" && "$GO" build -p "$JOBS" -pgo=off -trimpath -ldflags="-s -w" \
        -o "$OUT/etcd.tmp" . >&2)
    mv "$OUT/etcd.tmp" "$OUT/etcd"
}

# (not `test || build`: errexit is off inside a function called from an || list)
if [[ ! -x "$OUT/etcd" ]]; then build_etcd; fi
if [[ ! -x "$OUT/kube-apiserver" ]]; then build_apiserver; fi
log "done"
echo "$OUT"
