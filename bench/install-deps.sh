#!/usr/bin/env bash
# What the benchmark needs beyond a Rust toolchain, from Debian: keepalived (the reference),
# iproute2 (ip, ss), ping, and the DejaVu font the PNG's text is drawn with. Run as root.
set -euo pipefail
pkgs=(keepalived iproute2 iputils-ping fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "bench deps: ${pkgs[*]} installed"
