#!/usr/bin/env bash
# Builds the kwok binary (sigs.k8s.io/kwok, pinned by versions.env) from the Go module proxy into the
# peer cache and prints its path on stdout (last line). kwok's go.mod has no replace directives, so a
# plain `go install module/cmd@version` builds it as released. KWOK=/path/to/kwok uses that binary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

PEER=kwok-build
# shellcheck source=../../../scripts/lib/peer-build.sh
source "$here/../../../scripts/lib/peer-build.sh"

use_override KWOK
out="$cache_root/kwok/$KWOK_VERSION"
use_cached "$out/kwok"

go_build_env
mkdir -p "$out.tmp"
start=$(date +%s)
log "building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
GOBIN="$out.tmp" go install -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
log "built in $(( $(date +%s) - start ))s: $out/kwok"
echo "$out/kwok"
