#!/usr/bin/env bash
# Installs the Debian packages the tests need beyond the toolchain, once: faketime (libfaketime),
# which runs an operator with its wall clock skewed for the leader-election skew tests.
# Idempotent: prints nothing and changes nothing when everything is there. Needs root (CI runs as root)
# or sudo the first time only.
set -euo pipefail

missing=()
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: missing ${missing[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "system-packages: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v faketime >/dev/null 2>&1
