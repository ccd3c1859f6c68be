#!/usr/bin/env bash
# Runs every test: unit tests and the namespace integration tests in tests/, which start real
# upkeep and keepalived daemons in network namespaces (so: root).
#   scripts/test.sh                      # everything
#   scripts/test.sh --test two_hosts     # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: must run as root: the integration tests create network namespaces, veth links" >&2
    echo "         and raw sockets (e.g. sudo scripts/test.sh)" >&2
    exit 1
fi

scripts/install-deps.sh

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# WASM plugins (Rust and C) that the plugin tests load: built into target/plugins/.
scripts/build-plugins.sh
cargo build -p upkeep
# The integration tests run this binary (same target dir as the build above).
export UPKEEP_BIN="${UPKEEP_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/upkeep}"
cargo test --workspace "$@"
