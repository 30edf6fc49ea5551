#!/usr/bin/env bash
# Turn a pyln-client plugin into a cln-wasm-host guest, and install it.
#
#   guest/python/pyln-build.sh PLUGIN.py|DIR [-o OUT.wasm] [--main FILE.py]
#                              [--dir PLUGIN_DIR [--name NAME] [--policy FILE] [--force]]
#
# PLUGIN.py is a plugin written for pyln-client 25.12.1, unedited. A DIR holds
# its main file (DIR/DIR.py, or --main) beside its own pure-Python modules and
# packages, and its dependencies in requirements.txt or, failing that,
# pyproject.toml's [project] dependencies (as lightningd/plugins has them),
# installed pure Python only; pyln-client itself is left out: the guest gets
# the bundled pyln/client, its transport replaced. Tests (test_*.py, *_test.py,
# conftest.py, tests/) are left out.
#
# Scans the sources (pyln_scan.py): node methods called become the guest's
# asks, each with its file:line; imports the sandbox cannot serve (threading,
# socket, subprocess, asyncio, native code, gossmap) are refused here, with
# the place. Builds the component with the pinned componentize-py (as
# build.sh does) into OUT (default target/guests/NAME.wasm). With --dir, runs
# `cln-wasm-host install` (the host is $CLN_WASM_HOST, else target/bin or
# target/release), which writes the plugin file and its policy, granting
# nothing, and prints how to start it.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
toolchain="$root/target/toolchains/componentize-py-$COMPONENTIZE_PY_VERSION"

usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
src="$1"; shift
out="" main="" dir="" name="" policy="" force=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -o) out="$2"; shift 2 ;;
        --main) main="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --name) name="$2"; shift 2 ;;
        --policy) policy="$2"; shift 2 ;;
        --force) force=(--force); shift ;;
        *) usage ;;
    esac
done

src="$(cd "$(dirname "$src")" && pwd)/$(basename "$src")"
if [[ -d "$src" ]]; then
    [[ -n "$main" ]] || main="$src/$(basename "$src").py"
    [[ "$main" = /* ]] || main="$src/$main"
    [[ -f "$main" ]] || { echo "no main file $main (name it with --main)" >&2; exit 2; }
    # The plugin's own modules and packages; its tests are not part of it.
    mapfile -t sources < <(find "$src" -name '*.py' \
        -not -path '*/__pycache__/*' -not -path '*/.*' -not -path '*/tests/*' \
        -not -name 'test_*.py' -not -name '*_test.py' -not -name conftest.py \
        -not -name setup.py | sort)
elif [[ -f "$src" ]]; then
    main="$src"
    sources=("$src")
else
    echo "no such plugin: $src" >&2; exit 2
fi
module="$(basename "$main" .py)"
[[ -n "$name" ]] || name="$module"
[[ -n "$out" ]] || out="$root/target/guests/$name.wasm"
stage="$root/target/guests/pyln-src-$name"

unset VIRTUAL_ENV PYTHONPATH
mkdir -p "$root/target/toolchains"
exec 9>"$root/target/toolchains/.pyln-$name.lock"
flock 9

cpy="$toolchain/bin/componentize-py"
{
    flock 8
    if ! "$cpy" --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
        echo "installing componentize-py $COMPONENTIZE_PY_VERSION in $toolchain" >&2
        rm -rf "$toolchain"
        python3 -m venv "$toolchain" ||
            { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
        "$toolchain/bin/python3" -m pip install --quiet --disable-pip-version-check \
            "componentize-py==$COMPONENTIZE_PY_VERSION"
    fi
} 8>"$root/target/toolchains/.myplugin-py.lock"

# Up to date when nothing it is made of is newer (the sources, the bundled
# pyln, these scripts, the WIT).
newer() {
    find "${sources[@]}" "$here/pyln" "$here/pyln_scan.py" "$0" "$wit" \
        ${src_reqs:+"$src_reqs"} -newer "$out" -type f 2>/dev/null | head -1
}
src_reqs=""
if [[ -d "$src" && -f "$src/requirements.txt" ]]; then
    src_reqs="$src/requirements.txt"
elif [[ -d "$src" && -f "$src/pyproject.toml" ]]; then
    src_reqs="$src/pyproject.toml"
fi
if [[ -f "$out" && -z "$(newer)" ]]; then
    echo "up to date: $out" >&2
    skip_build=true
else
    skip_build=false
fi

if ! $skip_build; then
rm -rf "$stage"
mkdir -p "$stage" "$(dirname "$out")"
cp -r "$here/pyln" "$stage/"
for f in "${sources[@]}"; do
    if [[ -d "$src" ]]; then
        rel="${f#"$src"/}"
        mkdir -p "$stage/$(dirname "$rel")"
        cp "$f" "$stage/$rel"
    else
        cp "$f" "$stage/"
    fi
done

if [[ -n "$src_reqs" ]]; then
    reqs="$stage/.requirements.txt"
    all="$stage/.requirements.all"
    if [[ "$src_reqs" = *.toml ]]; then
        python3 - "$src_reqs" > "$all" <<'PY'
import sys
try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("pyproject.toml: reading it needs Python 3.11 (tomllib)")
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f).get("project", {}).get("dependencies", [])
print("\n".join(deps))
PY
    else
        cp "$src_reqs" "$all"
    fi
    # The guest's pyln-client is the bundled one; pyln-proto and pyln-bolt7 are native crypto.
    grep -viE '^[[:space:]]*pyln-(client|proto|bolt7)\b' "$all" > "$reqs" || true
    if grep -qiE '^[[:space:]]*pyln-(client|proto|bolt7)\b' "$all"; then
        echo "$(basename "$src_reqs"): pyln-client is bundled (25.12.1), pyln-proto and pyln-bolt7 are not available; left out" >&2
    fi
    if grep -qE '^[[:space:]]*[^#[:space:]]' "$reqs"; then
        "$toolchain/bin/python3" -m pip install --quiet --disable-pip-version-check \
            --no-compile --target "$stage/.deps" -r "$reqs"
        native="$(find "$stage/.deps" \( -name '*.so' -o -name '*.so.*' -o -name '*.pyd' \) | head -5)"
        if [[ -n "$native" ]]; then
            echo "refused: $(basename "$src_reqs") installs native code, which the sandbox cannot load:" >&2
            echo "$native" | sed "s|$stage/.deps/|  |" >&2
            exit 1
        fi
        cp -r "$stage/.deps/." "$stage/"
        rm -rf "$stage/.deps"
    fi
fi

python3 "$here/pyln_scan.py" "$here/pyln/client/lightning.py" "$stage/pyln_asks.py" "${sources[@]}"

cat > "$stage/cln_pyln_app.py" <<EOF
# Written by pyln-build.sh: the plugin module, then the world it serves.
import importlib
from pyln.client import _sandbox
_module = importlib.import_module("$module")
WitWorld = _sandbox.world(_module)
EOF

tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# componentize-py imports the plugin now: a module it cannot find is named
# plainly (a native one such as _ssl is not in the guest's Python at all).
if ! "$cpy" -q -d "$wit" -w plugin componentize cln_pyln_app -p "$stage" -o "$tmp" \
        2> "$stage/.componentize.log"; then
    tail -20 "$stage/.componentize.log" >&2
    missing="$(grep -oE "No module named '[^']+'" "$stage/.componentize.log" | head -1 | cut -d"'" -f2)"
    if [[ -n "$missing" ]]; then
        echo "refused: importing the plugin needs module $missing, which the guest does not have: it is native code (not in the guest's Python) or not among the plugin's declared pure-Python dependencies" >&2
    fi
    exit 1
fi
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "built: $out ($(stat -c %s "$out") bytes)" >&2
fi

if [[ -n "$dir" ]]; then
    host="${CLN_WASM_HOST:-}"
    for candidate in "$root/target/bin/cln-wasm-host" "$root/target/release/cln-wasm-host"; do
        [[ -n "$host" ]] || { [[ -x "$candidate" ]] && host="$candidate"; }
    done
    [[ -n "$host" ]] || host="$(command -v cln-wasm-host || true)"
    [[ -n "$host" ]] || { echo "no cln-wasm-host (set CLN_WASM_HOST or cargo build --release)" >&2; exit 1; }
    args=(install "$out" --dir "$dir" --name "$name")
    [[ -z "$policy" ]] || args+=(--policy "$policy")
    exec "$host" "${args[@]}" "${force[@]}"
fi
