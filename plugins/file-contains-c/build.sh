#!/usr/bin/env bash
# Builds the file-contains check (C) into OUT_DIR/file-contains-c.wasm (default: the workspace's
# target/plugins). Needs clang, wasm-ld (lld), wasi-libc and libclang-rt-dev-wasm32 (Debian),
# wit-bindgen and wasm-tools (cargo install): scripts/build-plugins.sh installs them.
#
#   wit-bindgen c      C bindings of the check-plugin world, generated from plugin-sdk/wit
#   clang              a core wasm32 module (reactor: no main), libc from wasi-libc for malloc
#                      and memcpy only, so the module imports nothing from WASI
#   wasm-tools         wraps the core module into a component (no WASI adapter needed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="${1:-${CARGO_TARGET_DIR:-$root/target}/plugins}"
build="$here/../target/file-contains-c"
wit="$root/plugin-sdk/wit"
out="$out_dir/file-contains-c.wasm"

inputs=("$here/file_contains.c" "$here/build.sh" "$wit"/*.wit)
if [ -f "$out" ]; then
    stale=0
    for f in "${inputs[@]}"; do [ "$f" -nt "$out" ] && stale=1; done
    if [ "$stale" = 0 ]; then
        echo "file-contains-c: up to date"
        exit 0
    fi
fi

mkdir -p "$build" "$out_dir"
if ! log=$(wit-bindgen c --world check-plugin "$wit" --out-dir "$build" 2>&1); then
    echo "$log" >&2
    exit 1
fi
clang --target=wasm32-wasi --sysroot=/usr -Os -mexec-model=reactor \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    -I"$build" -Wl,--strip-debug \
    -o "$build/core.wasm" \
    "$here/file_contains.c" "$build/check_plugin.c" "$build/check_plugin_component_type.o"
if wasm-tools print "$build/core.wasm" | grep -q '(import "wasi_snapshot_preview1"'; then
    echo "file-contains-c: the module imports WASI; keep it to malloc/memcpy-level libc" >&2
    exit 1
fi
wasm-tools component new "$build/core.wasm" -o "$build/file-contains-c.wasm"
wasm-tools validate --features component-model "$build/file-contains-c.wasm"
cp "$build/file-contains-c.wasm" "$out"
echo "file-contains-c: built $out"
