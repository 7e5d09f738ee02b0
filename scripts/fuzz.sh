#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time, one after another, and reports executions and
# crashes. Exits non-zero if any target crashed (its input is in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default: 60 s each, targets burst burst_split config
#
# New inputs the fuzzer finds go to fuzz/target/corpus/<target>/ (not checked in); the checked-in
# seeds in fuzz/corpus/<target>/ are read, never written. To keep a finding as a regression seed,
# copy the artifact into fuzz/corpus/<target>/ (`cargo test` replays it from then on).
# Needs a nightly toolchain and cargo-fuzz: scripts/install-deps.sh --fuzz.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
	seconds=$1
	shift
fi
case "${1:-}" in
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(burst burst_split config)

need_cmd cargo "install Rust with rustup (https://rustup.rs)"
rustup toolchain list 2>/dev/null | grep -q '^nightly' || die "no nightly toolchain: run scripts/install-deps.sh --fuzz"
cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz is missing: run scripts/install-deps.sh --fuzz"

cd "$(repo_root)/fuzz"
log "building the targets (release, debug assertions on)"
mkdir -p target
cargo +nightly fuzz build -O >target/build.log 2>&1 || {
	cat target/build.log >&2
	die "cargo fuzz build failed"
}

crashed=()
summary=()
for target in "${targets[@]}"; do
	[[ -d corpus/$target ]] || die "unknown target $target (no fuzz/corpus/$target/)"
	work="target/corpus/$target"
	logfile="target/fuzz-$target.log"
	mkdir -p "$work"
	extra=()
	case "$target" in
	config) extra=(-dict=config.dict -max_len=8192) ;;
	*) extra=(-max_len=16384) ;;
	esac
	log "$target: ${seconds} s (log: fuzz/$logfile)"
	status=0
	cargo +nightly fuzz run -O "$target" "$work" "corpus/$target" -- \
		-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 "${extra[@]}" >"$logfile" 2>&1 || status=$?
	executions=$(awk '/stat::number_of_executed_units/ {print $2}' "$logfile" | tail -1)
	coverage=$(grep -oE 'cov: [0-9]+' "$logfile" | tail -1 | awk '{print $2}')
	if [[ $status -ne 0 ]]; then
		crashed+=("$target")
		summary+=("$target: CRASH after ${executions:-?} executions (exit $status); see fuzz/$logfile and fuzz/artifacts/$target/")
		grep -E '^(thread .* panicked|==[0-9]+==ERROR|SUMMARY)' "$logfile" | head -5 >&2 || true
	else
		summary+=("$target: ${executions:-?} executions in ${seconds} s, coverage ${coverage:-?} edges, no crash")
	fi
done

printf '%s\n' "${summary[@]}"
if [[ ${#crashed[@]} -gt 0 ]]; then
	die "crashed: ${crashed[*]}"
fi
