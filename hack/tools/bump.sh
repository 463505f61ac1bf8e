#!/usr/bin/env bash
# Regenerates the helper modules hack/tools/kube and hack/tools/etcd from versions.env.
# kube-apiserver/kubectl and etcd cannot be `go install`ed (their modules carry replace
# directives), so each is built from a tiny module that requires it; run this after changing a
# version and commit the result (go.mod + go.sum pin every hash, so CI never needs the network
# for anything but module downloads).
set -euo pipefail
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

echo "== kube helper module (k8s.io/kubernetes $K8S_VERSION)"
rm -rf "$here/kube" && mkdir -p "$here/kube" && cd "$here/kube"
go mod init dwnsync.io/hack/tools/kube >/dev/null 2>&1
go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$K8S_VERSION"
# k8s.io/kubernetes replaces its staging modules with ./staging/...; mirror that list with the
# published staging versions.
gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=>/{print $1}' "$gomod" | while read -r m; do
  go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
done
go mod edit -tool=k8s.io/kubernetes/cmd/kube-apiserver -tool=k8s.io/kubernetes/cmd/kubectl
go mod tidy

echo "== etcd helper module (go.etcd.io/etcd/server/v3 $ETCD_VERSION)"
rm -rf "$here/etcd" && mkdir -p "$here/etcd" && cd "$here/etcd"
go mod init dwnsync.io/hack/tools/etcd >/dev/null 2>&1
go mod edit -go=1.26.0
go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
go mod tidy
echo "== gen helper module (controller-gen $CONTROLLER_TOOLS_VERSION, helm $HELM_VERSION)"
rm -rf "$here/gen" && mkdir -p "$here/gen" && cd "$here/gen"
go mod init dwnsync.io/hack/tools/gen >/dev/null 2>&1
go mod edit -go=1.26.0
go get -tool "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
go mod tidy
echo "done: commit hack/tools/{kube,etcd,gen}"
