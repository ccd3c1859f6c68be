#!/usr/bin/env bash
# Builds every WASM plugin into target/plugins/*.wasm (or $CARGO_TARGET_DIR/plugins), which
# core/tests/wasm_plugins.rs and the examples load. Idempotent and quick when nothing changed:
# it installs only what is missing and rebuilds only what is stale.
#
#   rustup target wasm32-wasip2           the Rust plugins (plugins/Cargo.toml, own workspace)
#   apt: clang lld wasi-libc libclang-rt-dev-wasm32
#                                         the C plugin (plugins/file-contains-c)
#   cargo install wasm-tools, wit-bindgen-cli (pinned below)
#                                         C bindings from the WIT, core module -> component
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

WASM_TOOLS_VERSION=1.263.0
WIT_BINDGEN_VERSION=0.63.0
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
out="${CARGO_TARGET_DIR:-$root/target}/plugins"
plugins_target="$root/plugins/target"

say() { echo "build-plugins.sh: $*"; }

# --- toolchain -----------------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        say "adding the wasm32-wasip2 target"
        rustup target add wasm32-wasip2
    fi
fi

apt_pkgs=(clang lld wasi-libc libclang-rt-dev-wasm32)
missing=()
for p in "${apt_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        say "missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cargo_tool BINARY CRATE VERSION [cargo install flags...]: installs CRATE@VERSION unless BINARY
# already reports that version.
cargo_tool() {
    local bin=$1 crate=$2 version=$3
    shift 3
    if "$bin" --version 2>/dev/null | grep -q " $version\b"; then
        return
    fi
    say "installing $crate $version"
    cargo install --locked --quiet "$crate@$version" "$@"
}
cargo_tool wasm-tools wasm-tools "$WASM_TOOLS_VERSION" --no-default-features --features component,validate,print
cargo_tool wit-bindgen wit-bindgen-cli "$WIT_BINDGEN_VERSION" --no-default-features --features c

# --- Rust plugins --------------------------------------------------------------------------
mkdir -p "$out"
(cd plugins && cargo build --release --target wasm32-wasip2 --target-dir "$plugins_target" --quiet)
for manifest in plugins/*/Cargo.toml; do
    crate=$(basename "$(dirname "$manifest")")
    built="$plugins_target/wasm32-wasip2/release/${crate//-/_}.wasm"
    [ -f "$built" ] || continue
    if ! cmp -s "$built" "$out/$crate.wasm"; then
        cp "$built" "$out/$crate.wasm"
        say "built $out/$crate.wasm"
    fi
done

# --- plugins in other languages: each folder with a build.sh -------------------------------
for script in plugins/*/build.sh; do
    "$script" "$out"
done

say "plugins in $out:"
ls -l "$out"/*.wasm
