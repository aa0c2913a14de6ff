#!/bin/sh
# Build the autorollback wheel and install it, with the pinned dependencies of constraints.txt,
# into a new virtualenv. The Dockerfile runs exactly this (with the `operator` extra); so does the
# test that stands in for it. Without EXTRAS: just the CLI (`autorollback status`, kubectl-autorollback).
# Usage: hack/install-venv.sh VENV [SOURCE_DIR] [EXTRAS]
set -eu
venv="$1"
src="${2:-.}"
extras="${3:-}"
wheels="$(mktemp -d)"
python3 -m pip wheel --quiet --no-cache-dir --no-deps --wheel-dir "$wheels" "$src"
python3 -m venv "$venv"
wheel="$(echo "$wheels"/autorollback-*.whl)"
"$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
  -c "$src/constraints.txt" "$wheel${extras:+[$extras]}"
rm -rf "$wheels"
