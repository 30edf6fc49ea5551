#!/usr/bin/env bash
# Builds the JavaScript myplugin guest into a WebAssembly component:
#   guest/js/build.sh  ->  target/guests/myplugin-js.wasm
# Needs node (>= 18) and npm. Installs the pinned toolchain (package-lock.json)
# into guest/js/node_modules on first use; works offline after that.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/guests/myplugin-js.wasm}"

cd "$here"

# (Re)install only when node_modules is missing or older than the lock file.
stamp=node_modules/.package-lock.json
if [[ ! -f $stamp || package-lock.json -nt $stamp || package.json -nt $stamp ]]; then
  if [[ -f package-lock.json ]]; then
    npm ci --no-audit --no-fund
  else
    npm install --no-audit --no-fund
  fi
fi

# componentize-js maps the current directory to the guest's `/` while it
# evaluates the module, so myplugin.js and cln-guest.js are found from here.
mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
node build.js myplugin.js "$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out"
