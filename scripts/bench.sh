#!/usr/bin/env bash
# The end-to-end bench: the broker's full pipeline against dpdk-testpmd --forward-mode=io, on the
# same virtual devices (net_pcap with infinite_rx=1 in, net_null out), in alternating rounds.
# See BENCHMARKS.md for what it measures, the figures and how to read them.
#
#     scripts/bench.sh [--rounds N] [--seconds S] [--warmup S] [--packets N] [--captures min,imix]
#                      [--scenarios testpmd,broker-1w,broker-1w-2p20,broker-2w,broker-2w-2p20,fanout-1w,metrics-on,metrics-off]
#
# Captures (made once, kept in out/bench/): the mirror generator's `min-size` (64-byte inner
# frames: 114 bytes on the wire) and `imix` (inner 64/594/1518 bytes, 7:4:1) profiles, whole and
# split in two like RSS, spread over the 64 sessions of the bench config, second copies of
# packets mirrored at both ends dropped (scripts/bench/spread_vnis.py). Results: a table on
# stdout and out/bench/results.json.
#
# The machine should be otherwise idle: the bench pins its workers (CPU 1, and CPU 0 for the
# second worker) and testpmd's forwarding core (CPU 1). It prints the load average before every
# run; compare figures of one run only.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

rounds=3
seconds=5
warmup=2
packets=20000
captures=min,imix
scenarios=testpmd,broker-1w,broker-1w-2p20,broker-2w,broker-2w-2p20,fanout-1w,metrics-on,metrics-off
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--packets) packets=$2; shift 2 ;;
	--captures) captures=$2; shift 2 ;;
	--scenarios) scenarios=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

need_cmd cargo "install Rust with rustup (https://rustup.rs)"
need_cmd dpdk-testpmd "apt-get install -y dpdk-dev"
need_cmd "$PYTHON" "apt-get install -y python3-scapy"

log "building the broker (release)"
cargo build --release --locked -p broker
broker=$(pwd)/target/release/broker

out=out/bench
mkdir -p "$out"
# The generator's profile for each capture name.
profile_of() {
	case $1 in
	min) echo min-size ;;
	imix) echo imix ;;
	*) die "unknown capture $1 (min or imix)" ;;
	esac
}
IFS=, read -r -a names <<<"$captures"
for name in "${names[@]}"; do
	stamp="$out/$name.$packets.made"
	[ -f "$stamp" ] && continue
	profile=$(profile_of "$name")
	log "generating the $profile capture ($packets packets, whole and split in two)"
	"$PYTHON" scripts/gen/mirrorgen.py "$profile" -o "$out/raw-$name.pcap" --packets "$packets" >/dev/null
	"$PYTHON" scripts/gen/mirrorgen.py "$profile" -o "$out/raw-$name-split.pcap" --packets "$packets" --split 2 >/dev/null
	"$PYTHON" scripts/bench/spread_vnis.py "$out/raw-$name.pcap" "$out/$name.pcap"
	"$PYTHON" scripts/bench/spread_vnis.py \
		"$out/raw-$name-split.0.pcap" "$out/$name.0.pcap" "$out/raw-$name-split.1.pcap" "$out/$name.1.pcap"
	rm -f "$out/$name".*.made
	touch "$stamp"
done

log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" scripts/bench/e2e.py --broker "$broker" --out "$out" --captures "$captures" \
	--rounds "$rounds" --warmup "$warmup" --seconds "$seconds" --scenarios "$scenarios"
