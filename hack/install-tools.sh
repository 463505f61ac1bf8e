#!/usr/bin/env bash
# Puts every tool the build and the tests need (and that is not a Go module dependency of the
# project) into ./bin, building each from source through the Go module proxy:
#
#   bin/k8s/<ver>-linux-amd64/{kube-apiserver,etcd,kubectl}   KUBEBUILDER_ASSETS (setup-envtest layout)
#   bin/controller-gen  bin/helm  bin/kubectl                  plain names, symlinks
#
# Built binaries live in a per-user cache keyed by tool and version
# (${XDG_CACHE_HOME:-$HOME/.cache}/dwnsync/tools/<tool>-<version>/) and are only linked into
# ./bin, so a fresh clone on the same machine (what CI is) reuses them in well under a second.
# Idempotent: a tool that is present at the right version is skipped.
#
# Usage: hack/install-tools.sh [envtest|controller-gen|helm ...]   (default: all)
#        hack/install-tools.sh --print-assets                        (prints KUBEBUILDER_ASSETS)
set -euo pipefail
export GOTOOLCHAIN=local
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/hack/tools"
# shellcheck source=tools/versions.env
source "$tools/versions.env"
k8s_plain="${K8S_VERSION#v}"
arch="$(go env GOOS)-$(go env GOARCH)"
assets="$root/bin/k8s/$k8s_plain-$arch"
cache="${DWNSYNC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dwnsync/tools}"

if [[ "${1:-}" == "--print-assets" ]]; then echo "$assets"; exit 0; fi

log() { printf '[install-tools] %s\n' "$*" >&2; }

# The helper modules must pin what versions.env says, or the build would silently use
# something else.
require_pin() { # file module version
  if ! grep -qE "^[[:space:]]*(require[[:space:]]+)?$2 $3( |$)" "$1"; then
    log "error: $1 does not pin $2 $3; run hack/tools/bump.sh and commit the result"
    exit 1
  fi
}
require_pin "$tools/kube/go.mod" k8s.io/kubernetes "$K8S_VERSION"
require_pin "$tools/etcd/go.mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
require_pin "$tools/gen/go.mod" sigs.k8s.io/controller-tools "$CONTROLLER_TOOLS_VERSION"
require_pin "$tools/gen/go.mod" helm.sh/helm/v3 "$HELM_VERSION"

# build NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]: builds into the cache unless it is there.
build() {
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=${5:-}
  local out="$cache/$name-$version/$name"
  if [[ -x "$out" ]]; then
    log "$name $version: cached"
  else
    local t0=$SECONDS
    log "$name $version: building $pkg (first time on this machine; minutes)"
    mkdir -p "$(dirname "$out")"
    (cd "$dir" && go build -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
    log "$name $version: built in $((SECONDS - t0)) s"
  fi
  printf '%s' "$out"
}

link() { # target linkpath
  mkdir -p "$(dirname "$2")"
  ln -sfn "$1" "$2"
}

want() { [[ $# -eq 0 ]] && return 0; local w; for w in "${selected[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }
selected=("$@")
t_start=$SECONDS

kver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$k8s_plain")"
kver="$kver -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$k8s_plain")"

if [[ ${#selected[@]} -eq 0 ]] || want envtest; then
  link "$(build kube-apiserver "$K8S_VERSION" "$tools/kube" k8s.io/kubernetes/cmd/kube-apiserver "$kver")" "$assets/kube-apiserver"
  link "$(build etcd "$ETCD_VERSION" "$tools/etcd" go.etcd.io/etcd/server/v3)" "$assets/etcd"
fi
if [[ ${#selected[@]} -eq 0 ]] || want envtest || want kubectl; then
  kc="$(build kubectl "$K8S_VERSION" "$tools/kube" k8s.io/kubernetes/cmd/kubectl "$kver")"
  link "$kc" "$assets/kubectl"
  link "$kc" "$root/bin/kubectl"
fi
if [[ ${#selected[@]} -eq 0 ]] || want controller-gen; then
  link "$(build controller-gen "$CONTROLLER_TOOLS_VERSION" "$tools/gen" sigs.k8s.io/controller-tools/cmd/controller-gen)" "$root/bin/controller-gen"
fi
if [[ ${#selected[@]} -eq 0 ]] || want helm; then
  hminor="$(cut -d. -f2 <<<"$k8s_plain")"
  hflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  hflags="$hflags -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$hminor"
  hflags="$hflags -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$hminor"
  link "$(build helm "$HELM_VERSION" "$tools/gen" helm.sh/helm/v3/cmd/helm "$hflags")" "$root/bin/helm"
fi
log "tools ready in $((SECONDS - t_start)) s (KUBEBUILDER_ASSETS=$assets)"
