#!/usr/bin/env bash
# Builds the pinned helm CLI from its Go module into a per-version cache folder and prints its path (last
# line). helm's go.mod has no replace directives, so a plain `go install pkg@version` works here.
# HELM=/path/to/helm skips the build.
set -euo pipefail
HELM_VERSION=v4.3.1

PEER=helm-build
# shellcheck source=../../scripts/lib/peer-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/peer-build.sh"
use_override HELM
out="$cache_root/helm-$HELM_VERSION"
use_cached "$out/helm"
go_build_env
log "building helm $HELM_VERSION"
mkdir -p "$out.tmp"
GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/helm"
