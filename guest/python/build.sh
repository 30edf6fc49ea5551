#!/usr/bin/env bash
# Build the Python myplugin guest: target/guests/myplugin-py.wasm.
# `build.sh [--force] --app PATH.py --name NAME` builds another app written
# with the kit (cln_guest.py) into target/guests/NAME.wasm instead.
#
# Installs the pinned componentize-py into a venv under target/toolchains/
# (once; later runs reuse it and need no network), writes the bindings for
# editors and type checkers to target/guests/python-bindings/, and builds the
# component when a source (the .py files here, the WIT, this script) is newer
# than it. `--force` rebuilds anyway. Runs from anywhere: paths are relative
# to this script.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
toolchain="$root/target/toolchains/componentize-py-$COMPONENTIZE_PY_VERSION"
bindings="$root/target/guests/python-bindings"
out="$root/target/guests/myplugin-py.wasm"
stage="$root/target/guests/python-src"
app="$here/myplugin.py"
force=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --force) force=true; shift ;;
        --app) app="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        --name) out="$root/target/guests/$2.wasm"; stage="$root/target/guests/python-src-$2"; shift 2 ;;
        *) echo "usage: build.sh [--force] [--app PATH.py --name NAME]" >&2; exit 2 ;;
    esac
done

unset VIRTUAL_ENV PYTHONPATH

# One build at a time (test binaries may call this script concurrently).
mkdir -p "$root/target/toolchains"
exec 9>"$root/target/toolchains/.myplugin-py.lock"
flock 9

cpy="$toolchain/bin/componentize-py"
if ! "$cpy" --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION in $toolchain" >&2
    rm -rf "$toolchain"
    mkdir -p "$(dirname "$toolchain")"
    python3 -m venv "$toolchain" ||
        { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    "$toolchain/bin/python3" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# Bindings: not needed by the build (componentize-py makes its own), only by
# editors and type checkers (add the folder to their Python path).
if [[ ! -f "$bindings/wit_world/__init__.py" ]] ||
   [[ -n "$(find "$wit" -newer "$bindings/wit_world/__init__.py" -name '*.wit')" ]]; then
    rm -rf "$bindings"
    "$cpy" -q -d "$wit" -w plugin bindings "$bindings"
fi

if ! $force && [[ -f "$out" ]] &&
   [[ -z "$(find "$here"/*.py "$here/build.sh" "$app" "$wit" \( -name '*.py' -o -name '*.wit' -o -name build.sh \) -newer "$out")" ]]; then
    echo "up to date: $out" >&2
    exit 0
fi

# componentize-py imports the app at build time and leaves __pycache__ beside
# it: build from a copy so that the source tree stays clean.
rm -rf "$stage"
mkdir -p "$stage" "$(dirname "$out")"
cp "$here/cln_guest.py" "$app" "$stage/"
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# -p: where the app (myplugin) and the kit (cln_guest) are.
"$cpy" -q -d "$wit" -w plugin componentize "$(basename "$app" .py)" -p "$stage" -o "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "built: $out ($(stat -c %s "$out") bytes)" >&2
