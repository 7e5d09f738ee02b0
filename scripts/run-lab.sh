#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The lab: builds the broker in release mode and runs it on the shipped sample capture
# (samples/aws-mirror.pcap, AWS VPC Traffic Mirroring VXLAN) with config/lab.toml. The analyzer
# ports are net_pcap devices writing pcap files under out/; the broker stops by itself once the
# capture has been replayed, prints its accounting summary and where the outputs are.
#
# Installs what is missing first (apt, idempotent). Runs as root, or as a user with sudo.
#
#   scripts/run-lab.sh                    the lab above
#   scripts/run-lab.sh --network [--keep] the network lab (scripts/netlab/lab.sh, as root): the
#                                         broker on a veth in a network namespace, mirrored VXLAN
#                                         from a peer namespace, copies as VXLAN to three analyzer
#                                         namespaces, one behind a router; --keep holds it up to
#                                         look around until Enter
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

network=false
keep=""
for arg in "$@"; do
	case "$arg" in
	--network) network=true ;;
	--keep) keep=--keep ;;
	-h | --help)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done
[ -z "$keep" ] || [ "$network" = true ] || die "--keep goes with --network"

cd "$(repo_root)"

log "installing what is missing"
scripts/install-deps.sh

need_cmd cargo "install Rust with rustup (https://rustup.rs)"
log "building the broker (release)"
cargo build --release --locked -p broker

broker=target/release/broker
if [ "$network" = true ]; then
	[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
	exec scripts/netlab/lab.sh "$broker" ${keep:+"$keep"}
fi

config=config/lab.toml
mkdir -p out
rm -f out/*.pcap out/summary.json

log "checking $config"
"$broker" check --config "$config"

log "running the lab (stops by itself when the capture has been replayed)"
"$broker" run --config "$config" --summary-json out/summary.json

echo
echo "Analyzer outputs (one pcap per tool port, the inner frames without the VXLAN tunnel):"
for f in out/*.pcap; do
	count=$(tshark -r "$f" -T fields -e frame.number 2>/dev/null | wc -l)
	printf '  %-22s %6s packets\n' "$f" "$count"
done
cat <<'EOT'

Read them with, for example:
  tcpdump -nr out/ids-1.pcap | head            # the IDS group's first port: whole inner frames
  tshark -r out/recorder.pcap -V | less        # the recorder group: first 128 bytes of each frame
  tshark -r out/ids-2.pcap -qz conv,tcp        # conversations the second IDS port received
  tshark -r samples/aws-mirror.pcap -d udp.port==4789,vxlan | head   # the input, still tunnelled

The summary above is also in out/summary.json.
EOT
