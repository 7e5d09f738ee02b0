#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The network lab's topology, defined once: network namespaces, veth pairs and a bridge for a broker
# that receives mirrored traffic on an addressed port and sends copies to analyzers across an IP
# network. Used by `scripts/run-lab.sh --network` and by the tests in tests/e2e/network (through
# std::process::Command), so the lab a newcomer runs and the topology CI tests are the same.
#
#   scripts/netlab.sh up NAME [--broker dpdk|kernel]   build it (removing a leftover NAME first),
#                                                       print the plan
#   scripts/netlab.sh down NAME                         end the processes left in its namespaces,
#                                                       delete them (and with them every veth and
#                                                       the bridge); quiet when there is nothing
#   scripts/netlab.sh plan NAME                         print the plan, build nothing
#   scripts/netlab.sh exec NAME HOST CMD…               run CMD in HOST's namespace
#   scripts/netlab.sh list                              namespaces of every netlab (leftovers)
#
# NAME: 1-16 of [a-z0-9] (tests use a tag and their process id). Every namespace is
# `nl-NAME-<role>`; every interface is created inside a namespace, never in the caller's, and
# every address is in 10.77.0.0/16 or fd00:77::/32, inside the namespaces only: nothing here can
# send to any other network.
#
#                 nl-NAME-sw: bridge br0, MTU 1600 ("lan": 10.77.0.0/24, fd00:77::/64)
#        ┌──────────────┬──────────────┬──────────────┬──────────────┐
#     broker eth0     peer eth0      router eth0      a1 eth0        a2 eth0
#     .10  ::10       .2   ::2       .1   ::1         .11  ::11      .12  ::12
#     broker up0                     router eth1 ─── a3 eth0   ("far": 10.77.1.0/24, MTU 1600)
#     .10  ::10 ─── a4 eth0          .1   ::1        .13  ::13
#     ("up": 10.77.2.0/24, MTU 1500)
#     .14  ::14
#
# - broker: where the broker runs (`ip netns exec nl-NAME-broker broker run …`). With
#   `--broker dpdk` (the default) eth0 and up0 are up but own no address and have IPv6 off: the
#   broker's `net_af_packet` ports take them, and its `kernel = "tap"` interfaces hold the
#   addresses. With `--broker kernel` the kernel owns the addresses (and a default route via the
#   router), for a stand-in that uses the kernel's sockets (tests/e2e/network, harness tests).
# - peer: the mirror source; sends mirrored VXLAN to the broker's address (it must resolve it by
#   ARP first).
# - router: forwards between lan and far; the broker's gateway (10.77.0.1, fd00:77::1).
# - a1, a2: analyzers on the broker's subnet; a3: off-link behind the router (reached through the
#   gateway); a4: on the broker's uplink subnet, whose MTU is 1500 (lan and far carry 1600, so
#   the peer can send the sample capture's 1518-byte inner frames without fragmenting them).
#
# MAC addresses are fixed (02:77:SS:00:00:HH, locally administered). Transmit checksum offload is
# off on every veth: a veth leaves checksums partial, `net_af_packet` hands such frames to DPDK
# unfixed, and captures would show them unfinished (docs: NOTES-dpdk, issue 11 point 8).
#
# The plan, printed by `up` and `plan`, is one `host.key=value` line per fact (ns, iface, mac,
# ipv4, ipv6, mtu, and gateway4/gateway6 where a host has one).
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The topology: one line per host interface.
#   host       role    iface  segment  mac                ipv4           ipv6              mtu
HOSTS=(
	"broker     broker  eth0   lan      02:77:00:00:00:10  10.77.0.10/24  fd00:77::10/64    1600"
	"uplink     broker  up0    up       02:77:02:00:00:10  10.77.2.10/24  fd00:77:2::10/64  1500"
	"peer       peer    eth0   lan      02:77:00:00:00:02  10.77.0.2/24   fd00:77::2/64     1600"
	"router     rt      eth0   lan      02:77:00:00:00:01  10.77.0.1/24   fd00:77::1/64     1600"
	"router-far rt      eth1   far      02:77:01:00:00:01  10.77.1.1/24   fd00:77:1::1/64   1600"
	"a1         a1      eth0   lan      02:77:00:00:00:11  10.77.0.11/24  fd00:77::11/64    1600"
	"a2         a2      eth0   lan      02:77:00:00:00:12  10.77.0.12/24  fd00:77::12/64    1600"
	"a3         a3      eth0   far      02:77:01:00:00:13  10.77.1.13/24  fd00:77:1::13/64  1600"
	"a4         a4      eth0   up       02:77:02:00:00:14  10.77.2.14/24  fd00:77:2::14/64  1500"
)
# Namespaces, in the order they are made ("sw" holds the bridge of segment lan).
ROLES=(sw broker peer rt a1 a2 a3 a4)
# The segments: "lan" is the bridge; the others are one veth pair between two hosts.
LAN_MTU=1600
# Default routes (inside the namespaces only: nothing lies beyond them): the router on lan and far.
declare -A GATEWAY4=([lan]=10.77.0.1 [far]=10.77.1.1)
declare -A GATEWAY6=([lan]=fd00:77::1 [far]=fd00:77:1::1)

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

ns_of() { printf 'nl-%s-%s' "$1" "$2"; }

check_name() {
	[[ "$1" =~ ^[a-z0-9]{1,16}$ ]] || die "bad lab name '$1': 1-16 of [a-z0-9]"
}

print_plan() {
	local name=$1 line host role iface segment mac ipv4 ipv6 mtu
	for line in "${HOSTS[@]}"; do
		read -r host role iface segment mac ipv4 ipv6 mtu <<<"$line"
		printf '%s.ns=%s\n' "$host" "$(ns_of "$name" "$role")"
		printf '%s.iface=%s\n%s.segment=%s\n%s.mac=%s\n' "$host" "$iface" "$host" "$segment" "$host" "$mac"
		printf '%s.ipv4=%s\n%s.ipv6=%s\n%s.mtu=%s\n' "$host" "$ipv4" "$host" "$ipv6" "$host" "$mtu"
		if [ -n "${GATEWAY4[$segment]:-}" ] && [ "$host" != router ]; then
			printf '%s.gateway4=%s\n%s.gateway6=%s\n' "$host" "${GATEWAY4[$segment]}" "$host" "${GATEWAY6[$segment]}"
		fi
	done
}

# Processes still running in one of the lab's namespaces: the lab's own (captures, a broker, a
# sender) that their owner did not end. Ended by process id, TERM first.
end_processes() {
	local ns=$1 pids
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086 # one id per word
	kill -TERM $pids 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
}

down() {
	local name=$1 role ns failed=0
	for role in "${ROLES[@]}"; do
		ns=$(ns_of "$name" "$role")
		[ -e "/run/netns/$ns" ] || continue
		end_processes "$ns"
		ip netns del "$ns" 2>/dev/null || {
			warn "could not delete network namespace $ns"
			failed=1
		}
	done
	return "$failed"
}

# in_ns NAME ROLE CMD… : CMD inside the namespace.
in_ns() {
	local name=$1 role=$2
	shift 2
	ip netns exec "$(ns_of "$name" "$role")" "$@"
}

# A host interface: its end of the veth pair exists; address it (or not) and bring it up.
configure_host() {
	local name=$1 broker_mode=$2 host=$3 role=$4 iface=$5 segment=$6 mac=$7 ipv4=$8 ipv6=$9 mtu=${10}
	local ns
	ns=$(ns_of "$name" "$role")
	ip -n "$ns" link set "$iface" address "$mac" mtu "$mtu"
	in_ns "$name" "$role" ethtool -K "$iface" tx off >/dev/null
	if [ "$role" = broker ] && [ "$broker_mode" = dpdk ]; then
		# The broker's DPDK port: the kernel must neither answer for it nor send from it.
		in_ns "$name" "$role" sysctl -qw "net.ipv6.conf.$iface.disable_ipv6=1"
		ip -n "$ns" link set "$iface" up
		return
	fi
	ip -n "$ns" addr add "$ipv4" dev "$iface"
	ip -n "$ns" addr add "$ipv6" dev "$iface" nodad
	ip -n "$ns" link set "$iface" up
	if [ -n "${GATEWAY4[$segment]:-}" ] && [ "$role" != rt ]; then
		ip -n "$ns" route add default via "${GATEWAY4[$segment]}"
		ip -n "$ns" -6 route add default via "${GATEWAY6[$segment]}"
	fi
}

# On exit while `up` builds (set -e: a command failed), the half-built lab goes.
abandon_build() {
	local status=$?
	if [ "$status" -ne 0 ]; then
		warn "building lab $building failed; removing it"
		down "$building" || true
	fi
}

up() {
	local name=$1 broker_mode=$2 role ns line host iface segment mac ipv4 ipv6 mtu
	down "$name" || true
	building=$name
	trap abandon_build EXIT
	for role in "${ROLES[@]}"; do
		ns=$(ns_of "$name" "$role")
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# No duplicate address detection: addresses are usable at once (they are unique by design).
		in_ns "$name" "$role" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done
	in_ns "$name" rt sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

	local sw
	sw=$(ns_of "$name" sw)
	ip -n "$sw" link add br0 type bridge
	ip -n "$sw" link set br0 mtu "$LAN_MTU" up

	# The veth pairs: lan hosts to a bridge port, the others to their segment's other host.
	declare -A first_of_segment=()
	for line in "${HOSTS[@]}"; do
		read -r host role iface segment mac ipv4 ipv6 mtu <<<"$line"
		ns=$(ns_of "$name" "$role")
		if [ "$segment" = lan ]; then
			ip -n "$sw" link add "p-$host" type veth peer name "$iface" netns "$ns"
			ip -n "$sw" link set "p-$host" mtu "$mtu" master br0 up
		elif [ -z "${first_of_segment[$segment]:-}" ]; then
			first_of_segment[$segment]="$ns $iface"
		else
			local first_ns first_iface
			read -r first_ns first_iface <<<"${first_of_segment[$segment]}"
			ip -n "$first_ns" link add "$first_iface" type veth peer name "$iface" netns "$ns"
		fi
	done
	for line in "${HOSTS[@]}"; do
		# shellcheck disable=SC2086 # the line's fields, as arguments
		configure_host "$name" "$broker_mode" $line
	done
	trap - EXIT
	print_plan "$name"
}

[ $# -ge 1 ] || {
	usage >&2
	exit 2
}
command=$1
shift
case "$command" in
up)
	[ $# -ge 1 ] || die "usage: netlab.sh up NAME [--broker dpdk|kernel]"
	name=$1
	shift
	check_name "$name"
	broker_mode=dpdk
	while [ $# -gt 0 ]; do
		case "$1" in
		--broker)
			[ $# -ge 2 ] || die "--broker needs dpdk or kernel"
			broker_mode=$2
			shift 2
			;;
		*) die "unknown option: $1" ;;
		esac
	done
	case "$broker_mode" in dpdk | kernel) ;; *) die "--broker: dpdk or kernel, not '$broker_mode'" ;; esac
	[ "$(id -u)" -eq 0 ] || die "building network namespaces needs root"
	for tool in ip ethtool sysctl; do
		need_cmd "$tool" "run scripts/install-deps.sh"
	done
	up "$name" "$broker_mode"
	;;
down)
	[ $# -eq 1 ] || die "usage: netlab.sh down NAME"
	check_name "$1"
	down "$1"
	;;
plan)
	[ $# -eq 1 ] || die "usage: netlab.sh plan NAME"
	check_name "$1"
	print_plan "$1"
	;;
exec)
	[ $# -ge 3 ] || die "usage: netlab.sh exec NAME HOST CMD…"
	check_name "$1"
	name=$1 host=$2
	shift 2
	role=$(print_plan "$name" | sed -n "s/^$host\.ns=nl-$name-//p")
	[ -n "$role" ] || die "no host '$host' in the lab"
	in_ns "$name" "$role" "$@"
	;;
list)
	ip netns list | awk '{print $1}' | grep -E '^nl-[a-z0-9]+-(sw|broker|peer|rt|a[1-4])$' || true
	;;
-h | --help) usage ;;
*)
	usage >&2
	die "unknown command: $command"
	;;
esac
