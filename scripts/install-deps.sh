#!/usr/bin/env bash
# Installs what upkeep's integration tests and demo need. Idempotent: installs only what is
# missing, so it is cheap to run before every test run.
#   keepalived   the interop peer and harness self-test
#   iproute2     ip netns / link / addr (the lab)
#   tcpdump      looking at VRRP traffic by hand
#   nftables     packet-loss scenarios
#   python3      the HA lab in shared/lab
#   procps       pgrep/sysctl
#   iputils-ping the client's pings of the VIP
#   bird2, frr   the routing daemons the BGP announcement tests drive and peer with
set -euo pipefail

pkgs=(keepalived iproute2 tcpdump nftables python3 procps iputils-ping bird2 frr)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "install-deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The WASM plugin target, if rustup manages the toolchain.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        rustup target add wasm32-wasip2 || echo "install-deps.sh: warning: could not add wasm32-wasip2" >&2
    fi
fi
