#!/bin/sh
# Build the autorollback wheel and install it, with the pinned dependencies of constraints.txt,
# into a new virtualenv. The Dockerfile runs exactly this; so does the test that stands in for it.
# Usage: hack/install-venv.sh VENV [SOURCE_DIR]
set -eu
venv="$1"
src="${2:-.}"
wheels="$(mktemp -d)"
python3 -m pip wheel --quiet --no-cache-dir --no-deps --wheel-dir "$wheels" "$src"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
  -c "$src/constraints.txt" "$wheels"/autorollback-*.whl
rm -rf "$wheels"
