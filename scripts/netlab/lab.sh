#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The network lab: `scripts/run-lab.sh --network` runs this after installing what is missing and
# building the broker. It builds the topology of scripts/netlab.sh (namespaces nl-lab-*), runs the
# broker in its namespace on scripts/netlab/lab.toml, shows the health check and ping answering on
# the broker's address, replays samples/aws-mirror.pcap from the peer as AWS would mirror it, shows
# what each analyzer received, stops the broker (its summary), and removes everything it built,
# however it ends. The same topology, sender and config are the test
# `network::vxlan::three_analyzers_one_behind_the_gateway` (tests/e2e/network).
#
#   scripts/netlab/lab.sh BROKER [--keep]
#
# --keep: before stopping, keep the lab up and print commands to look around, until Enter.
# Outputs under out/network/: the plan, the broker's log and summary, one capture per analyzer.
set -euo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[ $# -ge 1 ] || die "usage: scripts/netlab/lab.sh BROKER [--keep]"
broker=$(realpath "$1")
keep=false
[ "${2:-}" = --keep ] && keep=true
[ "$(id -u)" -eq 0 ] || die "the network lab builds network namespaces: run it as root"

cd "$(repo_root)"
name=lab
out=out/network
config=scripts/netlab/lab.toml
admin=127.0.0.1:9477
analyzers=(a1 a2 a3)
mkdir -p "$out"
rm -f "$out"/*.pcap "$out"/summary.json "$out"/broker.*

# on HOST CMD… : CMD in HOST's namespace. Background processes are started with `ip netns exec`
# itself instead, so that $! is their own id (ip execs the command; a function would fork).
on() {
	local host=$1
	shift
	ip netns exec "nl-$name-$host" "$@"
}

broker_pid=""
capture_pids=()
cleanup() {
	local status=$?
	for pid in "${capture_pids[@]}"; do
		kill -INT "$pid" 2>/dev/null || true
	done
	if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
		kill -TERM "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	scripts/netlab.sh down "$name" || warn "scripts/netlab.sh down $name failed: see scripts/netlab.sh list"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the topology: scripts/netlab.sh up $name (drawing in scripts/netlab.sh)"
scripts/netlab.sh up "$name" >"$out/plan.txt"
plan() { sed -n "s/^$1=//p" "$out/plan.txt" | cut -d/ -f1; }
broker_ip=$(plan broker.ipv4)

log "checking $config"
"$broker" check --config "$config" >"$out/check.txt"
log "starting the broker in nl-$name-broker (log: $out/broker.log)"
ip netns exec "nl-$name-broker" "$broker" run --config "$config" --summary-json "$out/summary.json" \
	>"$out/broker.out" 2>"$out/broker.log" &
broker_pid=$!

# Ready once every analyzer's next hop answered ARP: each tool port live.
all_live='import json, sys
status = json.load(sys.stdin)
sys.exit(0 if all(p["live"] for g in status["tool_groups"] for p in g["ports"]) else 1)'
for ((i = 0; ; i++)); do
	kill -0 "$broker_pid" 2>/dev/null || die "the broker stopped: $(cat "$out/broker.log")"
	if on broker "$broker" status --json --address "$admin" 2>/dev/null | "$PYTHON" -c "$all_live" 2>/dev/null; then
		break
	fi
	[ "$i" -lt 150 ] || die "the analyzers did not all become live within 30 s: $(tail -5 "$out/broker.log")"
	sleep 0.2
done

for a in "${analyzers[@]}"; do
	on "$a" ip link add vx0 type vxlan dstport 4789 external
	on "$a" sysctl -qw net.ipv6.conf.vx0.disable_ipv6=1
	on "$a" ip link set vx0 mtu 9000 up
	ip netns exec "nl-$name-$a" tcpdump -n --immediate-mode -U -Q in -i vx0 -w "$out/$a.pcap" 2>/dev/null &
	capture_pids+=($!)
	ip netns exec "nl-$name-$a" tcpdump -n --immediate-mode -U -Q in -i eth0 -w "$out/$a-outer.pcap" \
		2>/dev/null &
	capture_pids+=($!)
done
sleep 1

cat <<EOF

The broker owns $broker_ip on its DPDK port (net_af_packet on the veth of nl-$name-broker); its
kernel side (a tap interface) answers ARP, ping and the health check a load balancer would send:

  \$ ip netns exec nl-$name-peer curl -s http://$broker_ip:8080/healthz
EOF
printf '  %s\n' "$(on peer curl -s -m 3 "http://$broker_ip:8080/healthz")"
echo "  \$ ip netns exec nl-$name-peer ping -c 2 $broker_ip"
on peer ping -n -c 2 -i 0.2 "$broker_ip" | sed -n 's/^/  /; /bytes from\|packet loss/p'

cat <<EOF

Replaying samples/aws-mirror.pcap from the peer, as AWS Traffic Mirroring would send it (VXLAN to
UDP 4789 with each session's VNI; the peer's kernel resolves $broker_ip by ARP first):
  \$ ip netns exec nl-$name-peer $PYTHON scripts/netlab/send.py samples/aws-mirror.pcap --to $broker_ip
EOF
printf '  %s\n' "$(on peer "$PYTHON" scripts/netlab/send.py samples/aws-mirror.pcap --to "$broker_ip")"
sleep 1
for pid in "${capture_pids[@]}"; do
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
capture_pids=()

echo
echo "Each connection went to one analyzer, as VXLAN (a3 through the router $(plan router.ipv4)):"
for a in "${analyzers[@]}"; do
	count=$(tcpdump -nr "$out/$a.pcap" 2>/dev/null | wc -l)
	printf '  %-3s %-12s %4s inner frames decapsulated by its kernel vxlan netdev → %s\n' \
		"$a" "$(plan "$a.ipv4")" "$count" "$out/$a.pcap"
done
echo
echo "  \$ ip netns exec nl-$name-broker $broker status --address $admin"
on broker "$broker" status --address "$admin" | sed 's/^/  /'

if [ "$keep" = true ]; then
	cat <<EOF

The lab is up. To look around (in another terminal):
  ip netns exec nl-$name-broker $broker status --address $admin
  ip netns exec nl-$name-a1 tcpdump -ni vx0                   # a1's decapsulated traffic, live
  ip netns exec nl-$name-peer $PYTHON scripts/netlab/send.py samples/aws-mirror.pcap --to $broker_ip
  ip netns exec nl-$name-peer curl -s http://$broker_ip:8080/healthz
  ip netns exec nl-$name-a2 ip link set eth0 down              # a2 vanishes: its flows move
EOF
	read -r -p "Press Enter to stop the broker and remove the lab. " _
fi

log "stopping the broker"
kill -TERM "$broker_pid"
wait "$broker_pid" || warn "the broker exited with status $?"
broker_pid=""
cat "$out/broker.out"
cat <<EOF

Read the captures with, for example:
  tcpdump -nr $out/a1.pcap | head                  # inner frames a1 received, as mirrored
  tshark -r $out/a3-outer.pcap -Y vxlan -T fields -e eth.src -e ip.src -e ip.ttl -e udp.srcport -e vxlan.vni | head
                                                   # at a3: from the router (TTL 63), one UDP source port per connection
  tshark -r $out/a2-outer.pcap -Y vxlan -V -c 1    # one copy, every header field
The plan of the topology is in $out/plan.txt, the broker's summary in $out/summary.json.
EOF
