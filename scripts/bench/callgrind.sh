#!/usr/bin/env bash
# Instructions per packet of the full-pipeline bench, counted by callgrind (deterministic: the
# same binary and input always give the same count, whatever the machine's load).
#
#     scripts/bench/callgrind.sh [CASE] [--annotate]
#
# CASE is one of the pipeline bench's cases (single, single_no_filter, single_no_dedup,
# single_no_filter_no_dedup, single_sender, single_sender_window, single_sender_unfiltered,
# fanout, …; default single). The bench binary runs twice, for 200 and
# for 1,200 bursts, under callgrind; the difference of the two totals divided by 1,000 × 32 is
# the cost of one packet in steady state, setup (building the frames, the plan) cancelled out.
# With --annotate, the functions of the longer run are listed by inclusive cost.
set -euo pipefail

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$(repo_root)"
need_cmd valgrind "apt-get install -y valgrind"

case_name=${1:-single}
annotate=${2:-}
short=200
long=1200

log "building the pipeline bench"
bench=$(cargo bench -p broker-pipelines --bench pipeline --no-run --message-format=json 2>/dev/null |
	"$PYTHON" -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pipeline" and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || die "no pipeline bench binary"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
total() {
	BENCH_FIXED_CALLS=$1 BENCH_CASE=$case_name valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" \
		"$bench" >/dev/null 2>"$out/log.$1" || { cat "$out/log.$1" >&2; die "callgrind failed"; }
	sed -n 's/^summary: //p' "$out/cg.$1"
}
a=$(total $short)
b=$(total $long)
per_packet=$(((b - a) / ((long - short) * 32)))
echo "$case_name: $per_packet instructions per packet ($a for $short bursts, $b for $long)"
if [ "$annotate" = "--annotate" ]; then
	callgrind_annotate --inclusive=yes "$out/cg.$long" 2>/dev/null | head -60
fi
