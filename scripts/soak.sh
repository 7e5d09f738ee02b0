#!/usr/bin/env bash
# Soak: runs the release broker on endless mirrored traffic for a while (10 minutes unless told
# otherwise) and checks that its memory does not grow: every buffer is sized at start, so the
# resident set after warm-up must stay flat however many packets pass.
#
#     scripts/soak.sh [minutes]
#
# The traffic is the lab's AWS VXLAN sessions (scripts/gen/mirrorgen.py, 2000 packets) replayed
# forever by a net_pcap `infinite_rx` ingress, through decap, allowlist, filter, dedup and
# Maglev fan-out to three net_null analyzer ports, one worker. The script samples the broker's
# VmRSS (/proc/<pid>/status) after a warm-up (SOAK_WARMUP seconds, default 30), every minute and
# at the end, stops the broker with SIGTERM, checks the exit summary, and appends a row (date,
# machine, command, RSS start/end/max and each minute, packets) to the Soak section of
# BENCHMARKS.md. It fails if the RSS grew by more than SOAK_MAX_GROWTH_KIB (default 4096) after
# warm-up, or if the broker did not stop cleanly.
#
# Needs what the lab needs (scripts/install-deps.sh); run as root or as a user that may run the
# lab (no hugepages, no NIC).
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

minutes=${1:-10}
case $minutes in
'' | *[!0-9]*) die "usage: $0 [minutes] (a whole number; got '$minutes')" ;;
esac
[ "$minutes" -ge 1 ] || die "at least one minute"
warmup=${SOAK_WARMUP:-30}
max_growth_kib=${SOAK_MAX_GROWTH_KIB:-4096}

cd "$(repo_root)"
need_cmd cargo "install Rust with rustup (https://rustup.rs)"
"$PYTHON" -c 'import scapy' 2>/dev/null || die "$PYTHON cannot import scapy: run scripts/install-deps.sh"

log "building the broker (release)"
cargo build --release --locked -p broker
broker=$(pwd)/target/release/broker

work=$(mktemp -d "${TMPDIR:-/tmp}/broker-soak.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

"$PYTHON" scripts/gen/mirrorgen.py lab --packets 2000 -o "$work/mirror.pcap" >/dev/null
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/soak.toml" <<EOF
[broker]
name = "soak"
metrics = "127.0.0.1:$port"

[dpdk]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry"]

[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap=$work/mirror.pcap,infinite_rx=1"

[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]

[dedup]
window = "50ms"

[[session]]
name = "web"
vni = 101
tools = ["ids", "recorder"]
filter = "web-filter"
source_ips = ["10.0.1.10", "10.0.1.11"]

[[session]]
name = "db"
vni = 102
tools = ["ids"]

[[session]]
name = "edge"
vni = 103
tools = ["ids", "recorder"]

[[filter]]
name = "web-filter"
default = "reject"

[[filter.rule]]
number = 100
action = "accept"
protocol = "tcp"

[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }, { name = "ids-2", device = "net_null2" }]

[[tool_group]]
name = "recorder"
slice = 128
ports = [{ name = "recorder-1", device = "net_null3" }]
EOF

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
received() {
	"$broker" status --json --address "127.0.0.1:$port" 2>/dev/null |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["received"])' 2>/dev/null || echo "?"
}

log "running the broker for $minutes minute(s) after a ${warmup} s warm-up (work dir $work)"
"$broker" run --config "$work/soak.toml" --summary-json "$work/summary.json" \
	>"$work/broker.out" 2>"$work/broker.log" &
pid=$!
sleep "$warmup"
kill -0 "$pid" 2>/dev/null || die "the broker stopped during warm-up: $(tail -5 "$work/broker.log")"
grep -A5 'resources, fixed at start' "$work/broker.log" >&2 || true

start_kib=$(rss_kib "$pid")
max_kib=$start_kib
samples=$(mib "$start_kib")
log "minute 0: RSS $(mib "$start_kib") MiB, $(received) packets received"
for minute in $(seq 1 "$minutes"); do
	sleep 60
	kill -0 "$pid" 2>/dev/null || die "the broker stopped at minute $minute: $(tail -5 "$work/broker.log")"
	kib=$(rss_kib "$pid")
	[ "$kib" -gt "$max_kib" ] && max_kib=$kib
	samples="$samples $(mib "$kib")"
	log "minute $minute: RSS $(mib "$kib") MiB, $(received) packets received"
done
end_kib=$(rss_kib "$pid")
[ "$end_kib" -gt "$max_kib" ] && max_kib=$end_kib

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
tail -4 "$work/broker.out" >&2
[ "$status" -eq 0 ] || die "the broker exited with status $status: $(tail -5 "$work/broker.log")"
packets=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["received"])' "$work/summary.json")
mpps=$(awk -v p="$packets" -v s="$((minutes * 60 + warmup))" 'BEGIN { printf "%.2f", p / s / 1e6 }')
growth=$((max_kib - start_kib))

date_utc=$(date -u '+%Y-%m-%d %H:%M')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$cpu, $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB, Linux $(uname -r)"
command="scripts/soak.sh $minutes"
[ "$warmup" = 30 ] || command="SOAK_WARMUP=$warmup $command"
row="| $date_utc | $machine | \`$command\` | $minutes | $(mib "$start_kib") | $(mib "$end_kib") | $(mib "$max_kib") | $samples | $packets | $mpps |"

# The Soak section is the last of BENCHMARKS.md; the row goes after the last row of its table.
"$PYTHON" - "$row" <<'PY'
import sys
row = sys.argv[1]
path = "BENCHMARKS.md"
header = """## Soak

`scripts/soak.sh [minutes]` (default 10) runs the release broker on an endless replay of the
lab's mirrored traffic (`net_pcap` `infinite_rx`, 2000 packets of three AWS VXLAN sessions, with
allowlist, filter, dedup and fan-out to three `net_null` analyzer ports, one worker), samples its
resident set (`VmRSS`) after a warm-up (30 s unless `SOAK_WARMUP` says otherwise), every minute
and at the end, and stops it with SIGTERM (the exit summary's identities must hold). Every
buffer is sized at start (see the `resources` block the broker logs), so the RSS must stay flat:
the script fails if it grows by more than 4 MiB after warm-up. RSS in MiB; Mpps over the whole
run, warm-up included.

| Date (UTC) | Machine | Command | Minutes | RSS start | RSS end | RSS max | RSS each minute | Packets | Mpps |
|---|---|---|---|---|---|---|---|---|---|
"""
try:
    text = open(path).read()
except FileNotFoundError:
    text = ""
if "\n## Soak\n" not in "\n" + text:
    text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + header
lines = text.split("\n")
start = next(i for i, l in enumerate(lines) if l == "## Soak")
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
last_row = max(i for i in range(start, end) if lines[i].startswith("|"))
lines.insert(last_row + 1, row)
open(path, "w").write("\n".join(lines))
PY
log "RSS start $(mib "$start_kib") MiB, end $(mib "$end_kib") MiB, max $(mib "$max_kib") MiB; $packets packets ($mpps Mpps); row added to BENCHMARKS.md"
[ "$growth" -le "$max_growth_kib" ] || die "RSS grew by $growth KiB after warm-up (limit $max_growth_kib KiB)"
