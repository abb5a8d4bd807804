#!/usr/bin/env bash
# Builds the pinned helm CLI from its Go module into a per-version cache folder and prints its path (last
# line). helm's go.mod has no replace directives, so a plain `go install pkg@version` works here.
# HELM=/path/to/helm skips the build.
set -euo pipefail
HELM_VERSION=v4.3.1

log() { printf '[helm-build] %s\n' "$*" >&2; }

if [[ -n "${HELM:-}" ]]; then
  [[ -x "$HELM" ]] || { log "HELM=$HELM is not executable"; exit 1; }
  echo "$HELM"
  exit 0
fi
cache_root="${HOMELAB_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/homelab-operator}"
out="$cache_root/helm-$HELM_VERSION"
if [[ -x "$out/helm" ]]; then
  log "cached: $out/helm"
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build helm (or set HELM)"; exit 1; }
log "building helm $HELM_VERSION"
mkdir -p "$out.tmp"
GOBIN="$out.tmp" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/helm"
