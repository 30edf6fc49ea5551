#!/usr/bin/env bash
# Build the C myplugin guest: target/guests/myplugin-c.wasm.
#
# Toolchain: clang + wasm-ld + wasi-libc (Debian packages, installed with
# apt-get when missing and this runs as root), the pinned wit-bindgen-cli for
# the C bindings (cargo-installed once into target/toolchains/wit-bindgen;
# later runs reuse it and need no network), and rustup's wasm-component-ld as
# the linker, which turns the wasm32-wasi (preview 1) module into a WASI p2
# component with the reactor adapter it carries.
#
# Writes the bindings to target/guests/c-bindings/ and rebuilds the component
# only when a source (myplugin.c, the WIT, this script) is newer than it.
# `--force` rebuilds anyway. Runs from anywhere: paths are relative to this
# script.
set -euo pipefail

WIT_BINDGEN_VERSION=0.46.0 # the wit-bindgen crate the Rust guests use

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
toolchain="$root/target/toolchains/wit-bindgen"
bindings="$root/target/guests/c-bindings"
out="$root/target/guests/myplugin-c.wasm"
cc="${WASI_CC:-clang}" # a clang that targets wasm32-wasi
force=false
[[ "${1:-}" == "--force" ]] && force=true

# One build at a time (test binaries may call this script concurrently).
mkdir -p "$root/target/toolchains" "$(dirname "$out")"
exec 9>"$root/target/toolchains/.myplugin-c.lock"
flock 9

if ! $force && [[ -f "$out" ]] &&
   [[ -z "$(find "$here" "$wit" \( -name '*.c' -o -name '*.h' -o -name '*.wit' -o -name build.sh \) -newer "$out")" ]]; then
    echo "up to date: $out" >&2
    exit 0
fi

# --- clang, wasm-ld, wasi-libc, compiler-rt for wasm32 ----------------------
# One probe covers them all: a wasm32-wasi reactor using stdio (whose long
# double formatting needs compiler-rt's builtins).
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
cat >"$probe_dir/probe.c" <<'EOF'
#include <stdio.h>
int probe(char *b, double d) { return snprintf(b, 8, "%Lf", (long double) d); }
EOF
probe() {
    "$cc" --target=wasm32-wasi -mexec-model=reactor -O2 \
        "$probe_dir/probe.c" -o "$probe_dir/probe.wasm" >"$probe_dir/log" 2>&1
}
if ! probe; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "installing clang, lld, wasi-libc and compiler-rt for wasm32 (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || true
        apt-get install -y -qq --no-install-recommends clang lld wasi-libc >&2 || true
        # compiler-rt's wasm32 builtins come per clang version.
        major="$("$cc" -dumpversion 2>/dev/null | cut -d. -f1)" || true
        if [[ -n "$major" ]]; then
            apt-get install -y -qq --no-install-recommends "libclang-rt-$major-dev-wasm32" >&2 || true
        fi
    fi
    if ! probe; then
        cat "$probe_dir/log" >&2
        echo "cannot build for wasm32-wasi with $cc: needs clang, wasm-ld, wasi-libc" \
             "and compiler-rt's wasm32 builtins (Debian: apt-get install clang lld" \
             "wasi-libc libclang-rt-<clang major>-dev-wasm32)" >&2
        exit 1
    fi
fi

# --- wasm-component-ld, shipped with the Rust toolchain (rustup) ------------
host_triple="$(rustc -vV | sed -n 's/^host: //p')"
component_ld="$(rustc --print sysroot)/lib/rustlib/$host_triple/bin/wasm-component-ld"
if [[ ! -x "$component_ld" ]]; then
    echo "missing $component_ld: it comes with a rustup Rust toolchain (1.82 or later)" >&2
    exit 1
fi
wasm_ld="$("$cc" --target=wasm32-wasi -print-prog-name=wasm-ld)"

# --- the pinned wit-bindgen-cli ---------------------------------------------
wit_bindgen="$toolchain/bin/wit-bindgen"
if ! "$wit_bindgen" --version 2>/dev/null | grep -qx "wit-bindgen-cli $WIT_BINDGEN_VERSION"; then
    echo "installing wit-bindgen-cli $WIT_BINDGEN_VERSION in $toolchain" >&2
    cargo install wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --locked --force \
        --no-default-features --features c --root "$toolchain"
fi

# --- bindings, then the component --------------------------------------------
rm -rf "$bindings"
if ! log="$("$wit_bindgen" c "$wit" --world plugin --out-dir "$bindings" 2>&1)"; then
    echo "$log" >&2
    exit 1
fi

tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -rf "$probe_dir" "$tmp"' EXIT
# -mexec-model=reactor: no main; the component calls `_initialize` (wasi-libc's
# constructors) once per instance before any export. --strip-debug drops the
# DWARF that Debian's libc.a carries (100 KiB) but keeps the function names
# for backtraces.
"$cc" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra \
    -I "$bindings" \
    "$here/myplugin.c" "$bindings/plugin.c" "$bindings/plugin_component_type.o" \
    -fuse-ld="$component_ld" \
    -Wl,--wasm-ld-path="$wasm_ld" \
    -Wl,--wasi-adapter=reactor \
    -Wl,--strip-debug \
    -o "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap 'rm -rf "$probe_dir"' EXIT
echo "built: $out ($(stat -c %s "$out") bytes)" >&2
