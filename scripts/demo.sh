#!/usr/bin/env bash
# Runs upkeep on examples/three-node: three hosts and a client in network namespaces on one
# bridge; stops the master's web server (its check fails: it hands the VIP over, and keeps off it
# when the web server is back, nopreempt), then stops the new master's daemon (a handover without
# dropped pings). Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (network namespaces, raw sockets)" >&2; exit 1; }
scripts/install-deps.sh >/dev/null
if [ -n "${UPKEEP_BIN:-}" ]; then
    BIN=$UPKEEP_BIN # a daemon built already (as for the tests)
else
    cargo build --release -p upkeep
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/upkeep
fi
P=ukdemo
WORK=$(mktemp -d)
EXAMPLE=$(mktemp -d /tmp/upkeep-demo-example.XXXXXX)
VIP=192.0.2.100

# Background jobs are disowned as they start (so bash reports none of them as "Killed" when
# they are stopped at exit) and their pids kept here, to stop and wait for at exit.
JOBS=()
start_bg() {
    "$@" &
    JOBS+=($!)
    disown $!
}
stop_jobs() {
    for pid in "${JOBS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # A stopping upkeep hands over for up to two intervals; then whatever is left goes.
    for _ in $(seq 1 30); do
        alive=0
        for pid in "${JOBS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${JOBS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
netns_down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap 'stop_jobs; netns_down; rm -rf "$WORK" "$EXAMPLE"' EXIT
netns_down

# The example's check runs as an unprivileged user (upkeep-script, else nobody), which script
# security requires to reach the script: from a clone in root's home (mode 0700) it cannot, and
# the daemons would refuse the config. So the configs and the script are staged in a fresh
# directory anyone may enter, as a package installs them (/usr/share/doc/upkeep/examples/).
chmod 0755 "$EXAMPLE"
cp -p examples/three-node/*.kdl examples/three-node/check_port80.sh "$EXAMPLE/"
echo "== examples/three-node staged in $EXAMPLE (mode 0755, so the check's user can reach its script)"

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
        # Not grep -q: ip killed by SIGPIPE would fail the pipeline (pipefail) and hide a holder.
        ip -n ${P}h$i -o addr show dev eth0 | grep " $VIP/" >/dev/null && echo -n "h$i "
    done
    echo
}

web_start() {
    # The example's check wants something listening on TCP port 80.
    start_bg ip netns exec ${P}h$1 python3 -m http.server 80 --bind 0.0.0.0 >/dev/null 2>&1
    echo "${JOBS[-1]}" >"$WORK/web$1.pid"
}
wait_holder() { # wait_holder HOST SECONDS: until HOST alone holds the VIP
    for _ in $(seq 1 $(($2 * 10))); do [ "$(holder)" = "$1 " ] && return 0; sleep 0.1; done
    return 1
}

for i in 1 2 3; do
    web_start $i
    start_bg ip netns exec ${P}h$i "$BIN" run --config "$EXAMPLE/h$i.kdl" --state-dir "$WORK/h$i" \
        >"$WORK/h$i.log" 2>&1
    echo "${JOBS[-1]}" >"$WORK/h$i.pid"
done

echo "== waiting for the election (advert interval 1 s, so about 4 s)"
for _ in $(seq 1 60); do [ -n "$(holder | tr -d ' ')" ] && break; sleep 0.2; done
sleep 1
if [ -z "$(holder | tr -d ' ')" ]; then
    echo "no host took the VIP; the daemons' logs:" >&2
    tail -n 5 "$WORK"/h?.log >&2
    exit 1
fi
echo "VIP $VIP is on: $(holder)"
ip netns exec ${P}cl ping -c 2 -i 0.2 -W 1 $VIP | tail -2
echo "== status of h1 (from $WORK/h1/status.json)"
cat "$WORK/h1/status.json"; echo

echo "== h1's web server stops: its check fails (every 2 s), priority 100 -> 80, and it hands over"
kill -TERM "$(cat "$WORK/web1.pid")"
t0=$EPOCHREALTIME
wait_holder h3 10 || wait_holder h2 1 || true
echo "VIP $VIP is on: $(holder)($(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s later; h1's daemon still runs: pid $(cat "$WORK/h1.pid"))"
ip netns exec ${P}cl ping -c 2 -i 0.2 -W 1 $VIP | tail -2
echo "== h1's web server is back: nopreempt, the VIP stays where it is"
web_start 1
sleep 5
echo "VIP $VIP is on: $(holder)"

new=$(holder | tr -d ' h')
echo "== SIGTERM to h$new (the master): it hands over without dropping pings"
kill -TERM "$(cat "$WORK/h$new.pid")"
sleep 2
echo "VIP $VIP is on: $(holder)"
ip netns exec ${P}cl ping -c 2 -i 0.2 -W 1 $VIP | tail -2
echo "== h1's log"
cat "$WORK/h1.log"
echo "== h$new's log"
cat "$WORK/h$new.log"
