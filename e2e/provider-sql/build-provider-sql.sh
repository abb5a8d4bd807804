#!/usr/bin/env bash
# Builds Crossplane's real provider-sql (github.com/crossplane-contrib/provider-sql, pinned below) from
# the Go module proxy into a per-version cache folder, with the CRDs of the same module version beside it
# (crds/, verbatim from the module's package/crds: the provider's controllers need all of them served
# before it starts). Prints the binary's path on stdout (last line). PROVIDER_SQL=<path> uses a prebuilt
# binary instead (its CRDs are then read from <dir of binary>/crds).
set -euo pipefail

# The release the shared reference CRDs were taken from (../shared/reference/crds/README.md); the module
# proxy serves it. Its go.mod has no replace directives, but `go install pkg@version` reads the module's
# version list for deprecations, which the proxy refuses here (403): so a throwaway main module requires
# the pin, takes upstream's go.sum and go directive, and builds the provider's main package.
PROVIDER_SQL_VERSION=v0.16.0
MODULE=github.com/crossplane-contrib/provider-sql

PEER=provider-sql-build
# shellcheck source=../../scripts/lib/peer-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/peer-build.sh"
use_override PROVIDER_SQL
out="$cache_root/provider-sql-$PROVIDER_SQL_VERSION"
use_cached "$out/provider-sql"
go_build_env
log "building provider-sql $PROVIDER_SQL_VERSION"
start=$(date +%s)
work="$out.build"
rm -rf "$out.tmp" "$work"
mkdir -p "$out.tmp/crds" "$work"
cd "$work"
go mod download -json "$MODULE@$PROVIDER_SQL_VERSION" >/dev/null
src="$(go env GOMODCACHE)/$MODULE@$PROVIDER_SQL_VERSION"
{
  echo "module homelab-operator.local/provider-sql-peer"
  echo
  grep -E '^go [0-9]' "$src/go.mod"
  echo
  echo "require $MODULE $PROVIDER_SQL_VERSION"
} > go.mod
cp "$src/go.sum" go.sum
chmod u+w go.sum
nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out.tmp/provider-sql" "$MODULE/cmd/provider" >&2
cp "$src/package/crds/"*.yaml "$out.tmp/crds/"
chmod 0644 "$out.tmp/crds/"*.yaml
cd /
rm -rf "$out" "$work"
mv "$out.tmp" "$out"
log "built $out/provider-sql in $(( $(date +%s) - start ))s"
echo "$out/provider-sql"
