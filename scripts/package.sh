#!/usr/bin/env bash
# Builds the Debian package: target/debian/broker_<version>_amd64.deb (cargo deb, with the
# metadata in broker/Cargo.toml). Shell completions and man pages are generated from the CLI
# definition first (`broker generate`), so the package always matches the binary in it.
#
#   scripts/package.sh                   release build (what to ship)
#   scripts/package.sh --profile dev     the debug build `cargo test` already made (scripts/test.sh
#                                        packages that one: same layout, no release build in CI)
#
# Installs cargo-deb (`cargo install --locked cargo-deb`) when it is missing. Prints the path of
# the package on stdout. scripts/package-test.sh installs it into a scratch root and checks it.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

profile=release
while [ $# -gt 0 ]; do
	case "$1" in
	--profile)
		[ $# -ge 2 ] || die "--profile needs a value (release or dev)"
		profile=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
case "$profile" in
release) outdir=release ;;
dev) outdir=debug ;;
*) die "profile $profile: release or dev" ;;
esac

cd "$(repo_root)"
need_cmd cargo "install Rust with rustup (https://rustup.rs)"
need_cmd dpkg-shlibdeps "apt-get install dpkg-dev (cargo deb works out the library dependencies with it)"
# Pinned: the version whose behaviour the metadata and this script were checked with (it packages
# the dev profile with a warning; a later one may refuse that).
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
	log "installing cargo-deb $cargo_deb_version (cargo install --locked)"
	cargo install --locked "cargo-deb@$cargo_deb_version" >/dev/null 2>&1 ||
		die "cargo install --locked cargo-deb@$cargo_deb_version failed (run it by hand to see why)"
fi

log "building the broker ($profile)"
cargo build --locked --profile "$profile" -p broker
target=$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
broker=$target/$outdir/broker
generated=$target/$outdir/generated
rm -rf "$generated"
"$broker" generate completions "$generated/completions"
"$broker" generate man "$generated/man"
# Debian installs man pages compressed (gzip -9n: no name or time stamp, reproducible).
gzip -9n "$generated"/man/*.1

log "packaging"
# --no-build: the binary above is the one packaged, with the completions and pages made from it.
# (Not `tee /dev/stderr`: when stderr is a log file, reopening it truncates it.)
output=$(cargo deb --locked -p broker --no-build --profile "$profile" 2>&1) || {
	printf '%s\n' "$output" >&2
	die "cargo deb failed"
}
printf '%s\n' "$output" >&2
deb=$(printf '%s\n' "$output" | tail -n 1)
[ -f "$deb" ] || die "cargo deb did not say where the package is (last line: $deb)"
echo "$deb"
