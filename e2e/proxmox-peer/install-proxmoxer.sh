#!/usr/bin/env bash
# Installs the pinned proxmoxer (requirements.txt) into a cached venv and prints its python path.
# The venv lives in ~/.cache/homelab-operator/proxmoxer-<version>-<pins hash>/ and is rebuilt only when
# requirements.txt changes. Needs python3 with venv and access to PyPI (cold install: a few seconds).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's/^proxmoxer==//p' "$here/requirements.txt")"
pins="$(sha256sum "$here/requirements.txt" | cut -c1-12)"
cache_root="${HOMELAB_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/homelab-operator}"
venv="$cache_root/proxmoxer-$version-$pins"
if [[ ! -f "$venv/.complete" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt" >&2
  "$venv/bin/python" -c 'import proxmoxer, requests' >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
