#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and etcd from the Go module
# proxy, pinned by versions.env, into a per-version cache folder, and prints that folder on stdout (last
# line). Only the binaries missing from that folder are built (a cache made before kube-scheduler was
# added only gets kube-scheduler).
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules at the non-existent v0.0.0 and
# maps them with replace directives that only apply when it is the main module, so `go install
# k8s.io/kubernetes/cmd/...@vX` cannot work. A throwaway main module requires k8s.io/kubernetes and
# re-declares every staging replace at the matching v0.X.Y. etcd's server/go.mod also has replaces,
# so it gets its own wrapper for the same reason.
#
# If KUBEBUILDER_ASSETS names a folder holding the binaries (the envtest convention), nothing is built
# and that folder is printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

PEER=control-plane-build
# shellcheck source=../../../scripts/lib/peer-build.sh
source "$here/../../../scripts/lib/peer-build.sh"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd; do  # kubectl is optional there, as in envtest
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks $b"; exit 1; }
  done
  log "using binaries from KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

out="$cache_root/control-plane/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
k8s_missing=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [[ -x "$out/$b" ]] || k8s_missing+=("$b")
done
etcd_missing=false
[[ -x "$out/etcd" ]] || etcd_missing=true
if ((${#k8s_missing[@]} == 0)) && [[ $etcd_missing == false ]]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi

go_build_env
work="$cache_root/control-plane/build-$KUBERNETES_VERSION"
mkdir -p "$work/k8s" "$work/etcd" "$out.tmp"
# Binaries already built for these pins are kept; only the missing ones are built below.
if [[ -d "$out" ]]; then cp -a "$out/." "$out.tmp/"; fi
start=$(date +%s)

# --- kube-apiserver, kube-controller-manager, kube-scheduler, kubectl ---
minor_patch="${KUBERNETES_VERSION#v1.}"           # 36.3
staging_version="v0.$minor_patch"                 # v0.36.3
((${#k8s_missing[@]} == 0)) || (
  cd "$work/k8s"
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null
  upstream_mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
  # The go and godebug lines of the main module set GODEBUG defaults: copy upstream's so the binaries
  # behave as released ones do, whatever Go builds them.
  go_line=$(grep -E '^go [0-9]' "$upstream_mod")
  godebug_line=$(grep -E '^godebug ' "$upstream_mod" || true)
  {
    echo "module homelab-operator.local/control-plane-build"
    echo
    echo "$go_line"
    [[ -n "$godebug_line" ]] && echo "$godebug_line"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving k8s.io/kubernetes $KUBERNETES_VERSION (staging $staging_version)"
  go mod tidy -e >/dev/null 2>&1 || true
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor_patch%%.*} -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "building ${k8s_missing[*]} (cold: several minutes on 2 cores)"
  go build -tags selinux,notest -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
    "${k8s_missing[@]/#/k8s.io/kubernetes/cmd/}"
)

# --- etcd ---
[[ $etcd_missing == false ]] || (
  cd "$work/etcd"
  cat > go.mod <<MOD
module homelab-operator.local/etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy -e >/dev/null 2>&1 || true
  log "building etcd $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
)

rm -rf "$out"
mv "$out.tmp" "$out"
log "built in $(( $(date +%s) - start ))s: $out"
echo "$out"
