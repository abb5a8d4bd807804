#!/usr/bin/env bash
# Builds e2e/talosctl/config-validator (Talos' machine-config validation from pkg/machinery, pinned by
# versions.env) into a per-version cache folder and prints the binary's path on stdout (last line).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

PEER=config-validator-build
# shellcheck source=../../scripts/lib/peer-build.sh
source "$here/../../scripts/lib/peer-build.sh"
source_hash=$(cat "$here/config-validator/main.go" "$here/versions.env" | sha256sum | cut -c1-12)  # contents only: the key must not depend on where the checkout is
out="$cache_root/talos-config-validator-$VALIDATOR_MACHINERY_VERSION-$source_hash"
use_cached "$out/talos-config-validator"
go_build_env
work="$out.build"
rm -rf "$work"
mkdir -p "$work" "$out"
start=$(date +%s)

cp "$here/config-validator/main.go" "$work/"
cd "$work"
go mod download -json "github.com/siderolabs/talos/pkg/machinery@$VALIDATOR_MACHINERY_VERSION" >/dev/null
upstream_mod="$(go env GOMODCACHE)/cache/download/github.com/siderolabs/talos/pkg/machinery/@v/$VALIDATOR_MACHINERY_VERSION.mod"
{
  echo "module homelab-operator.local/talos-config-validator"
  echo
  grep -E '^go [0-9]' "$upstream_mod"
  echo
  echo "require github.com/siderolabs/talos/pkg/machinery $VALIDATOR_MACHINERY_VERSION"
  echo
  echo "replace ("
  for s in $VALIDATOR_SUBSTITUTES; do
    printf '\t%s => %s %s\n' "${s%%=*}" "${s%%=*}" "${s#*=}"
  done
  echo ")"
} > go.mod
log "resolving pkg/machinery $VALIDATOR_MACHINERY_VERSION"
go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$out/talos-config-validator.tmp" . >&2
mv "$out/talos-config-validator.tmp" "$out/talos-config-validator"
rm -rf "$work"
log "built $out/talos-config-validator in $(( $(date +%s) - start ))s"
echo "$out/talos-config-validator"
