#!/usr/bin/env bash
# Runs upkeep on examples/three-node: three hosts and a client in network namespaces on one
# bridge, then stops the master and shows the VIP moving. Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (network namespaces, raw sockets)" >&2; exit 1; }
scripts/install-deps.sh >/dev/null
cargo build --release -p upkeep
BIN=$PWD/target/release/upkeep
P=ukdemo
WORK=$(mktemp -d)
VIP=192.0.2.100

netns_down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap 'netns_down; rm -rf "$WORK"' EXIT
netns_down

ip netns add ${P}sw
ip -n ${P}sw link add br0 type bridge
ip -n ${P}sw link set br0 up
for h in h1 h2 h3 cl; do
    ip netns add $P$h
    ip link add $P$h-e type veth peer name $P$h-p
    ip link set $P$h-e netns $P$h
    ip link set $P$h-p netns ${P}sw
    ip -n ${P}sw link set $P$h-p master br0 up
    ip -n $P$h link set lo up
    ip -n $P$h link set $P$h-e name eth0
    ip -n $P$h link set eth0 up
done
for i in 1 2 3; do ip -n ${P}h$i addr add 192.0.2.$i/24 dev eth0; done
ip -n ${P}cl addr add 192.0.2.200/24 dev eth0

holder() {
    for i in 1 2 3; do
        ip -n ${P}h$i -o addr show dev eth0 | grep -q " $VIP/" && echo -n "h$i "
    done
    echo
}

for i in 1 2 3; do
    # The example's check wants something listening on TCP port 80.
    ip netns exec ${P}h$i python3 -m http.server 80 --bind 0.0.0.0 >/dev/null 2>&1 &
    ip netns exec ${P}h$i "$BIN" run --config examples/three-node/h$i.kdl --state-dir "$WORK/h$i" \
        >"$WORK/h$i.log" 2>&1 &
    echo $! >"$WORK/h$i.pid"
done

echo "== waiting for the election (advert interval 1 s, so about 4 s)"
for _ in $(seq 1 60); do [ -n "$(holder | tr -d ' ')" ] && break; sleep 0.2; done
sleep 1
echo "VIP $VIP is on: $(holder)"
ip netns exec ${P}cl ping -c 2 -i 0.2 -W 1 $VIP | tail -2
echo "== status of h1 (from $WORK/h1/status.json)"
cat "$WORK/h1/status.json"; echo

echo "== SIGTERM to h1 (the master): it hands over without dropping pings"
kill -TERM "$(cat "$WORK/h1.pid")"
sleep 2
echo "VIP $VIP is on: $(holder)"
ip netns exec ${P}cl ping -c 2 -i 0.2 -W 1 $VIP | tail -2
echo "== h1's log"
cat "$WORK/h1.log"
