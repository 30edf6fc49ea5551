#!/bin/sh
# Usage: benches/python-venv.sh NAME REQUIREMENT...
# Makes the venv target/toolchains/NAME with the pinned REQUIREMENTs, once
# (again when they change). benches/myplugin.rs runs its Python baselines and
# its plot with these venvs' python.
set -eu
name=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/toolchains/$name"
stamp="$venv/.requirements"
wanted=$(printf '%s\n' "$@")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
printf '%s\n' "$wanted" > "$stamp"
