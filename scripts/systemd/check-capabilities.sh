#!/usr/bin/env bash
# Which capabilities does the broker need? Runs it as an unprivileged system user with exactly
# the capabilities of each scenario (setpriv: ambient, inheritable and bounding sets), with and
# without the one the scenario is about, and checks that it runs only with it. Prints one line
# per scenario and fails if any result differs from the expectation.
#
#     scripts/systemd/check-capabilities.sh [path/to/broker]     (default target/release/broker)
#
# Needs root (it creates a system user `brokercap` if missing, a network namespace with veth and
# tap interfaces, and briefly reserves 64 2-MiB hugepages, restoring the previous count and
# unmounting what it mounted on exit). Touches no interface outside its own namespace.
set -euo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root: it switches to an unprivileged user itself"
need_cmd setpriv "apt-get install util-linux"
need_cmd ip "apt-get install iproute2"
cd "$(repo_root)"
broker_src=${1:-target/release/broker}
[ -x "$broker_src" ] || die "no broker binary at $broker_src (cargo build --release -p broker)"

user=brokercap
if ! id "$user" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
	log "created system user $user"
fi
work=$(mktemp -d /tmp/broker-caps.XXXXXX)
ns=brkcap$$
hugedir=$work/huge
nr_file=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
nr_before=$(cat "$nr_file" 2>/dev/null || echo "")
cleanup() {
	mountpoint -q "$hugedir" 2>/dev/null && umount "$hugedir"
	[ -n "$nr_before" ] && echo "$nr_before" >"$nr_file" 2>/dev/null
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Everything the user reads or writes lives in the scratch directory.
cp "$broker_src" "$work/broker"
cp samples/aws-mirror.pcap "$work/in.pcap"
mkdir -p "$work/out" "$hugedir"
chown "$user:$user" "$work/out"
chmod 755 "$work"

ip netns add "$ns"
ip -n "$ns" link set lo up
for i in 0 1 2 3 4 5; do
	ip -n "$ns" link add "afp$i" type veth peer name "afp${i}p"
	ip -n "$ns" link set "afp$i" up
	ip -n "$ns" link set "afp${i}p" up
done

# config NAME TOOL-PORT-DEVICES METRICS [EAL-ARGS]: a lab config replaying the sample once.
config() {
	local name=$1 devices=$2 metrics=$3
	local eal=${4:-'"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"'}
	local ports="" i=1
	for d in $devices; do
		ports="$ports{ name = \"t$i\", device = \"$d\" }, "
		i=$((i + 1))
	done
	cat >"$work/$name.toml" <<EOF
[broker]
name = "caps"
stop_when_idle = "1s"
metrics = "$metrics"
[dpdk]
eal_args = [$eal]
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap=$work/in.pcap"
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
[[session]]
name = "web"
vni = 101
tools = ["g"]
[[tool_group]]
name = "g"
ports = [${ports%, }]
EOF
	echo "$work/$name.toml"
}

failures=0
# scenario DESCRIPTION CAPS(comma list, "" for none) EXPECT(ok|fail) CONFIG
scenario() {
	local what=$1 caps=$2 expect=$3 cfg=$4 set="-all" result
	[ -n "$caps" ] && set="-all,+${caps//,/,+}"
	if ip netns exec "$ns" setpriv --reuid="$user" --regid="$user" --clear-groups \
		--inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" -- \
		"$work/broker" run --config "$cfg" >"$cfg.out" 2>"$cfg.log"; then
		result=ok
	else
		result=fail
	fi
	if [ "$result" = "$expect" ]; then
		printf '  %-62s caps: %-34s %s (as expected)\n' "$what" "${caps:-none}" "$result"
	else
		printf '  %-62s caps: %-34s %s, EXPECTED %s\n' "$what" "${caps:-none}" "$result" "$expect"
		sed 's/^/      | /' "$cfg.log" | grep -iE 'error|fail|denied|permit' | head -5 || true
		failures=$((failures + 1))
	fi
}

echo "broker as user '$user' with only the listed capabilities (in network namespace $ns):"
c=$(config pcap "net_pcap1,tx_pcap=$work/out/t1.pcap" "")
scenario "net_pcap files (read the capture, write the outputs)" "" ok "$c"

c=$(config afp "net_af_packet0,iface=afp0" "")
scenario "net_af_packet analyzer port" "" fail "$c"
# DPDK's port start restores the MAC address and promiscuous state with SIOCSIF* ioctls.
scenario "net_af_packet analyzer port" "net_raw" fail "$c"
scenario "net_af_packet analyzer port" "net_raw,net_admin" ok "$c"

# Each queue's RX+TX ring is mmap(MAP_LOCKED): 2 MiB by default, checked one mapping at a time
# against RLIMIT_MEMLOCK; only a ring larger than the limit needs CAP_IPC_LOCK.
c=$(config afp6 "net_af_packet0,iface=afp0 net_af_packet1,iface=afp1 net_af_packet2,iface=afp2 net_af_packet3,iface=afp3 net_af_packet4,iface=afp4 net_af_packet5,iface=afp5" "")
scenario "6 net_af_packet ports, default 2 MiB rings (memlock $(ulimit -l) KiB)" "net_raw,net_admin" ok "$c"
c=$(config afpbig "net_af_packet0,iface=afp0,framecnt=4096" "")
scenario "net_af_packet with a 16 MiB ring (framecnt=4096)" "net_raw,net_admin" fail "$c"
scenario "net_af_packet with a 16 MiB ring (framecnt=4096)" "net_raw,net_admin,ipc_lock" ok "$c"

c=$(config tap "net_tap0,iface=captap0" "")
scenario "net_tap analyzer port" "" fail "$c"
scenario "net_tap analyzer port" "net_admin" ok "$c"

c=$(config low "net_null1" "127.0.0.1:80")
scenario "metrics listener on port 80" "" fail "$c"
scenario "metrics listener on port 80" "net_bind_service" ok "$c"
c=$(config high "net_null1" "127.0.0.1:9477")
scenario "metrics listener on port 9477" "" ok "$c"

if echo 64 >"$nr_file" 2>/dev/null && [ "$(cat "$nr_file")" -ge 64 ]; then
	huge_eal='"--huge-dir", "'$hugedir'", "-m", "64", "--no-pci", "--no-shconf", "--no-telemetry"'
	dpdk-hugepages.py --mount --directory "$hugedir" --user 0 --group 0
	c=$(config huge-root "net_null1" "" "$huge_eal")
	scenario "hugepages, mount point not writable by the user" "" fail "$c"
	umount "$hugedir"
	dpdk-hugepages.py --mount --directory "$hugedir" --user "$(id -u "$user")" --group "$(id -g "$user")"
	c=$(config huge "net_null1" "" "$huge_eal")
	scenario "hugepages, mount point owned by the user" "" ok "$c"
	umount "$hugedir"
	c=$(config in-memory "net_null1" "" '"--in-memory", "-m", "64", "--no-pci", "--no-telemetry"')
	scenario "hugepages with --in-memory (no mount point needed)" "" ok "$c"
else
	echo "  (hugepages cannot be reserved here: hugepage scenarios skipped)"
fi

if [ "$failures" -gt 0 ]; then
	die "$failures scenario(s) did not behave as expected"
fi
log "every scenario behaved as expected"
