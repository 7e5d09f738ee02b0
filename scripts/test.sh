#!/usr/bin/env bash
# Runs every test of the repository, from a fresh clone: installs what is missing (apt, idempotent),
# checks formatting and lints, runs the capture generator's self-test, then the whole Rust test
# suite — unit, property, corpus replay, DPDK driver tests and the end-to-end tests that run the
# real `broker` binary on DPDK virtual devices — and finally packages the broker as a .deb and
# installs it into a scratch root (scripts/package.sh, scripts/package-test.sh).
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip fmt/clippy (for iterating)
#   scripts/test.sh --suricata also install Suricata (bookworm-backports) and require the test
#                              that runs it, instead of letting it skip
#
# CI (.ci/run) calls this script. Runs as root, or as a user with sudo for the installs.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quick=false
install_options=()
for arg in "$@"; do
	case "$arg" in
	--quick) quick=true ;;
	--suricata)
		install_options+=(--suricata)
		export BROKER_TESTS_REQUIRE_SURICATA=1
		;;
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done

cd "$(repo_root)"
started=$SECONDS

log "installing what is missing"
scripts/install-deps.sh "${install_options[@]}"

need_cmd cargo "install Rust with rustup (https://rustup.rs)"
if ! $quick; then
	for component in rustfmt clippy; do
		if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
			log "adding the $component component"
			rustup component add "$component"
		fi
	done
	log "formatting"
	cargo fmt --all --check
	log "lints"
	cargo clippy --workspace --all-targets --locked -- -D warnings
fi

log "capture generator self-test"
scripts/gen/selftest.sh

log "Rust tests (unit, property, corpora, DPDK drivers, end to end)"
cargo test --workspace --locked

# The debug build the tests just made, packaged: the layout, maintainer script, units and the
# installed binary are what a release package has, without a release build in CI.
log "Debian package: built from the debug binary, installed into a scratch root, checked, removed"
scripts/package.sh --profile dev >/dev/null
scripts/package-test.sh

log "all tests passed in $((SECONDS - started)) s"
