#!/usr/bin/env bash
# Builds the kwok binary (sigs.k8s.io/kwok, pinned by versions.env) from the Go module proxy into the
# peer cache and prints its path on stdout (last line). Next to it, stages/ holds kwok's own pod Stages
# of that version (kustomize/stage/pod/fast in the module: pods become Running, complete, are deleted);
# since v0.8.0 kwok has no built-in stages, so local mode passes these. kwok's go.mod has no replace
# directives, so a plain `go install module/cmd@version` builds it as released.
# KWOK=/path/to/kwok uses that binary (its folder must hold the same stages/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

PEER=kwok-build
# shellcheck source=../../../scripts/lib/peer-build.sh
source "$here/../../../scripts/lib/peer-build.sh"

use_override KWOK
out="$cache_root/kwok/$KWOK_VERSION"
stages_present() { compgen -G "$1/stages/pod-*.yaml" >/dev/null; }
if stages_present "$out"; then use_cached "$out/kwok"; fi

go_build_env
start=$(date +%s)
module_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -d "$module_dir/kustomize/stage/pod/fast" ]] || { log "no pod stages in $module_dir"; exit 1; }
if [[ -x "$out/kwok" ]]; then
  # Built before the stages were kept next to it: add them.
  mkdir -p "$out/stages"
  cp "$module_dir"/kustomize/stage/pod/fast/pod-*.yaml "$out/stages/"
else
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp/stages"
  log "building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  GOBIN="$out.tmp" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  cp "$module_dir"/kustomize/stage/pod/fast/pod-*.yaml "$out.tmp/stages/"
  rm -rf "$out"
  mv "$out.tmp" "$out"
fi
log "ready in $(( $(date +%s) - start ))s: $out/kwok"
echo "$out/kwok"
