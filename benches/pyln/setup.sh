#!/bin/sh
# Installs pyln-client (pinned) into a venv at target/toolchains/pyln, once.
# benches/myplugin.rs runs this, then benches/pyln/myplugin.py with the venv's
# python.
set -eu
PYLN_CLIENT_VERSION=26.6.9
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/toolchains/pyln"
stamp="$venv/.pyln-client-$PYLN_CLIENT_VERSION"
[ -f "$stamp" ] && exit 0
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pyln-client==$PYLN_CLIENT_VERSION"
touch "$stamp"
