#!/usr/bin/env bash
# Builds talosctl from the Go module proxy, pinned by versions.env, into a per-version cache folder and
# prints the binary's path on stdout (last line).
#
# Why a wrapper module: github.com/siderolabs/talos's go.mod replaces its nested module
# pkg/machinery with the path ./pkg/machinery, which the module zip does not contain (nested modules are
# cut out of it), and its other replace directives (forks of coredns, ethtool, kobject, ...) only apply
# when talos is the main module. So `go install .../cmd/talosctl@vX` cannot work: a throwaway main module
# requires talos and machinery at the same version and re-declares upstream's non-local replaces.
#
# With no argument it builds TALOS_VERSION; `build-talosctl.sh seed` builds TALOSCTL_SEED_VERSION (the
# seed's Talos minor, to validate the configs we generate for it with a talosctl of that minor).
#
# TALOSCTL=/path/to/talosctl (TALOSCTL_SEED for the seed's) skips the build (for a machine that already
# has one of the pinned version).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

PEER=talosctl-build
# shellcheck source=../../scripts/lib/peer-build.sh
source "$here/../../scripts/lib/peer-build.sh"
case "${1:-}" in
  "") use_override TALOSCTL ;;
  seed) TALOS_VERSION="$TALOSCTL_SEED_VERSION"; use_override TALOSCTL_SEED ;;
  *) log "unknown argument $1 (none, or seed)"; exit 2 ;;
esac
out="$cache_root/talosctl-$TALOS_VERSION"
use_cached "$out/talosctl"
go_build_env
work="$out.build"
rm -rf "$work"
mkdir -p "$work" "$out"
start=$(date +%s)

cd "$work"
go mod download -json "github.com/siderolabs/talos@$TALOS_VERSION" >/dev/null
upstream_mod="$(go env GOMODCACHE)/cache/download/github.com/siderolabs/talos/@v/$TALOS_VERSION.mod"
go_line=$(grep -E '^go [0-9]' "$upstream_mod")
godebug_line=$(grep -E '^godebug ' "$upstream_mod" || true)
# Every replace of upstream's go.mod, block or single-line form, except those pointing into its own tree.
replaces=$(awk '
  /^replace \($/ { inblock = 1; next }
  inblock && /^\)$/ { inblock = 0; next }
  inblock && /=>/ { print; next }
  /^replace [^(]/ { sub(/^replace /, ""); print }
' "$upstream_mod" | sed -E 's#//.*$##; s/^[[:space:]]+//; s/[[:space:]]+$//' | grep -v '=> \./' | grep -v '^$' || true)
{
  echo "module homelab-operator.local/talosctl-build"
  echo
  echo "$go_line"
  [[ -n "$godebug_line" ]] && echo "$godebug_line"
  echo
  echo "require ("
  echo "	github.com/siderolabs/talos $TALOS_VERSION"
  echo "	github.com/siderolabs/talos/pkg/machinery $TALOS_VERSION"
  echo ")"
  echo
  echo "replace ("
  while IFS= read -r r; do
    [[ -z "$r" ]] && continue
    # Some forks that upstream replaces with are not served by the module proxy. They patch code paths
    # of machined (link ethtool, wireguard, coredns), not of talosctl, so the upstream module is used
    # instead; the build below fails loudly if talosctl ever needs one of them.
    target="${r#*=> }"; target_path="${target% *}"; target_version="${target##* }"
    if go mod download "$target_path@$target_version" >/dev/null 2>&1; then
      printf '\t%s\n' "$r"
    else
      log "replacement not available from the module proxy, using upstream instead: $r"
    fi
  done <<<"$replaces"
  echo ")"
} > go.mod.tmp
# Written aside and moved in: the availability probes above run in this folder, and a half-written
# go.mod here made every one of them fail (all replaces were dropped as "not available").
mv go.mod.tmp go.mod
log "wrapper go.mod:"; sed 's/^/  /' go.mod >&2

log "resolving github.com/siderolabs/talos/cmd/talosctl@$TALOS_VERSION"
go get "github.com/siderolabs/talos/cmd/talosctl@$TALOS_VERSION" >&2
log "building (this takes a while on a cold cache)"
go build -trimpath -ldflags "-s -w" -o "$out/talosctl.tmp" github.com/siderolabs/talos/cmd/talosctl >&2
mv "$out/talosctl.tmp" "$out/talosctl"
rm -rf "$work"
log "built $out/talosctl in $(( $(date +%s) - start ))s"
"$out/talosctl" version --client --short >&2 || true
echo "$out/talosctl"
