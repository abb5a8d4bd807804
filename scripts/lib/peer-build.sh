# Sourced by the scripts that build test peers from the Go module proxy (control plane, talosctl, the
# Talos config validator, helm): where the cache lives, logging, an override variable, a cache hit, and
# the Go environment. The sourcing script sets PEER (its log tag) before sourcing.

cache_root="${HOMELAB_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/homelab-operator}"

log() { printf '[%s] %s\n' "${PEER:-peer-build}" "$*" >&2; }

# use_override NAME: when the variable NAME holds a path (e.g. TALOSCTL=/usr/bin/talosctl), that binary
# is the answer and nothing is built.
use_override() {
  local value="${!1:-}"
  [[ -n "$value" ]] || return 0
  [[ -x "$value" ]] || { log "$1=$value is not executable"; exit 1; }
  echo "$value"
  exit 0
}

# use_cached PATH: a binary already built for the same pins is the answer.
use_cached() {
  [[ -x "$1" ]] || return 0
  log "cached: $1"
  echo "$1"
  exit 0
}

# go_build_env: fails clearly without Go, then sets what every build here uses. Static binaries; modules
# resolved as the wrapper go.mod says; GOTOOLCHAIN=auto so a newer go directive fetches its toolchain.
go_build_env() {
  command -v go >/dev/null || { log "Go is required to build ${PEER:-this peer}"; exit 1; }
  export GOFLAGS="-mod=mod -buildvcs=false"
  export CGO_ENABLED=0
  export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
}
