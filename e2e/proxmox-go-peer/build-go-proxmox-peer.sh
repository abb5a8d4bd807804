#!/usr/bin/env bash
# Builds e2e/proxmox-go-peer (main.go against github.com/luthermonson/go-proxmox, pinned below) into a
# per-version cache folder and prints the binary's path on stdout (last line). GO_PROXMOX_PEER=<path>
# uses a prebuilt binary instead.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The newest version the Go module proxy serves (its @v/list: v0.8.2, v0.9.0).
GO_PROXMOX_VERSION=v0.9.0

PEER=go-proxmox-peer-build
# shellcheck source=../../scripts/lib/peer-build.sh
source "$here/../../scripts/lib/peer-build.sh"
use_override GO_PROXMOX_PEER
# Contents only: the cache key must not depend on where the checkout is.
source_hash=$(cat "$here/main.go" "$here/build-go-proxmox-peer.sh" | sha256sum | cut -c1-12)
out="$cache_root/go-proxmox-peer-$GO_PROXMOX_VERSION-$source_hash"
use_cached "$out/go-proxmox-peer"
go_build_env
work="$out.build"
rm -rf "$work"
mkdir -p "$work" "$out"
start=$(date +%s)

cp "$here/main.go" "$work/"
cd "$work"
go mod download -json "github.com/luthermonson/go-proxmox@$GO_PROXMOX_VERSION" >/dev/null
upstream_mod="$(go env GOMODCACHE)/cache/download/github.com/luthermonson/go-proxmox/@v/$GO_PROXMOX_VERSION.mod"
{
  echo "module homelab-operator.local/go-proxmox-peer"
  echo
  grep -E '^go [0-9]' "$upstream_mod"
  echo
  echo "require github.com/luthermonson/go-proxmox $GO_PROXMOX_VERSION"
} > go.mod
log "resolving go-proxmox $GO_PROXMOX_VERSION"
go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$out/go-proxmox-peer.tmp" . >&2
mv "$out/go-proxmox-peer.tmp" "$out/go-proxmox-peer"
rm -rf "$work"
log "built $out/go-proxmox-peer in $(( $(date +%s) - start ))s"
echo "$out/go-proxmox-peer"
