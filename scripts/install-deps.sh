#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install what building, running and testing the broker need on Debian 12 (bookworm), on a machine
# that has only Rust (rustup). Idempotent: a package that is already installed is left alone, and
# `apt-get update` runs only when something is missing. Run as root, or as a user with sudo.
#
#   scripts/install-deps.sh            base group (build + run + test) and the prometheus service fix
#   scripts/install-deps.sh --bench    … plus linux-perf, valgrind, hyperfine
#   scripts/install-deps.sh --fuzz     … plus a nightly toolchain and cargo-fuzz (per user, via rustup/cargo)
#   scripts/install-deps.sh --suricata … plus Suricata 7 from Debian's bookworm-backports suite
#                                          (adds that suite to apt's sources; optional: the test that
#                                          needs it says so when it skips)
#
# Prints one line per group: "already installed" or what it installed. Exits non-zero with a
# message naming the step when apt, rustup or cargo fails.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat <<'EOF'
Usage: scripts/install-deps.sh [--bench] [--fuzz] [--suricata] [-h|--help]

Installs on Debian 12, idempotently:
  base       libdpdk-dev dpdk dpdk-dev clang libclang-dev pkg-config libhwloc-dev libudev-dev
             libpcap-dev python3-scapy python3-seccomp tshark prometheus iproute2 tcpdump dpkg-dev
             ethtool iputils-ping curl
  --bench    linux-perf valgrind hyperfine
  --fuzz     a nightly Rust toolchain (rustup) and cargo-fuzz (cargo install), each only if missing;
             installed for the invoking user (SUDO_USER when run through sudo)
  --suricata suricata from bookworm-backports (Debian 12's main archive has none); adds
             /etc/apt/sources.list.d/bookworm-backports.sources when no source names that suite,
             and keeps the package's service stopped and disabled (the tests run it on files)
and stops and disables the prometheus system service: the package starts one on :9090, while
the tests start their own Prometheus on a loopback port of their choosing.

Apt runs as root directly, or through sudo when you are not root.
EOF
}

# DPDK and its bindings (bindgen needs clang/libclang, the -sys build needs pkg-config), hwlocality
# (hwloc, udev), the net_pcap PMD and pcap-based tests (libpcap), the generator (scapy), the
# independent decoder of the tests (tshark), the metrics checks (prometheus, promtool), the lab
# and network-test tooling (ip, tcpdump; ethtool turns checksum offload off on the test's veths,
# ping and curl reach the broker's address from a peer namespace), the systemd unit's system-call
# filter applied in the tests (python3-seccomp: scripts/systemd/syscall-filter.py), and the Debian
# package (dpkg-shlibdeps works out its library dependencies).
BASE_PACKAGES=(
	libdpdk-dev dpdk dpdk-dev
	clang libclang-dev pkg-config
	libhwloc-dev libudev-dev
	libpcap-dev
	python3-scapy python3-seccomp tshark
	prometheus
	iproute2 tcpdump ethtool iputils-ping curl
	dpkg-dev
)
BENCH_PACKAGES=(linux-perf valgrind hyperfine)

want_bench=false
want_fuzz=false
want_suricata=false
for arg in "$@"; do
	case "$arg" in
	--bench) want_bench=true ;;
	--fuzz) want_fuzz=true ;;
	--suricata) want_suricata=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $arg"
		;;
	esac
done

[ -r /etc/debian_version ] || die "this script is for Debian 12 (no /etc/debian_version here)"
need_cmd dpkg "not a Debian system?"
need_root

apt_updated=false

# Packages of "$@" that dpkg does not report as installed (a removed package whose configuration
# files remain is "deinstall ok config-files": it counts as missing).
missing_packages() {
	local package
	# (Not `dpkg -s | grep -q`: grep stops at the first match, dpkg dies of SIGPIPE on a long
	# description, and under pipefail an installed package would look missing.)
	for package in "$@"; do
		case "$(dpkg -s "$package" 2>/dev/null)" in
		*"Status: install ok installed"*) ;;
		*) printf '%s\n' "$package" ;;
		esac
	done
}

apt_get() {
	# `env` carries DEBIAN_FRONTEND through sudo, which would otherwise reset the environment.
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@"
}

# install_group NAME PACKAGE… : installs the missing ones, prints one line.
install_group() {
	local group=$1
	shift
	local missing
	mapfile -t missing < <(missing_packages "$@")
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "$group: already installed"
		return
	fi
	if [ "$apt_updated" = false ]; then
		apt_get update >/dev/null || die "apt-get update failed (network? sources.list?)"
		apt_updated=true
	fi
	if printf '%s\n' "${missing[@]}" | grep -qx tshark; then
		# wireshark-common asks whether non-root users may capture; answer "no" beforehand so the
		# install never stops at a prompt (tests read pcap files and need no capture rights).
		echo 'wireshark-common wireshark-common/install-setuid boolean false' |
			$SUDO debconf-set-selections || die "debconf-set-selections failed"
	fi
	# Without recommends: nothing we use comes from them, and they would pull in e.g. ipython3 and
	# prometheus-node-exporter (another daemon) on a fresh machine.
	apt_get install --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install failed for: ${missing[*]} (run 'apt-get install ${missing[*]}' to see why)"
	echo "$group: installed ${missing[*]}"
}

# rustup and cargo install per user: run them as the user who builds, also when this script runs
# through sudo (a login shell puts ~/.cargo/bin on PATH for that user).
as_build_user() {
	if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
		sudo -u "$SUDO_USER" -H bash -lc '"$@"' as_build_user "$@"
	else
		"$@"
	fi
}

install_fuzz_group() {
	local installed=()
	as_build_user rustup --version >/dev/null 2>&1 ||
		die "rustup not found for $(as_build_user id -un): install Rust with rustup first (https://rustup.rs)"
	# cargo-fuzz needs -Z flags (sanitizers), which only a nightly toolchain accepts.
	if ! as_build_user rustup toolchain list | grep -q '^nightly'; then
		as_build_user rustup toolchain install nightly --profile minimal >/dev/null ||
			die "rustup toolchain install nightly failed"
		installed+=("nightly toolchain")
	fi
	if ! as_build_user cargo fuzz --version >/dev/null 2>&1; then
		as_build_user cargo install --locked cargo-fuzz >/dev/null 2>&1 ||
			die "cargo install --locked cargo-fuzz failed (run it by hand to see why)"
		installed+=("cargo-fuzz")
	fi
	if [ "${#installed[@]}" -eq 0 ]; then
		echo "fuzz: already installed"
	else
		echo "fuzz: installed ${installed[*]}"
	fi
}

# Debian's prometheus package enables its service and starts it on :9090. The tests and the lab
# start their own Prometheus on a chosen loopback port with their own config; a system instance would
# occupy :9090 and scrape nothing useful, so it is stopped and kept from starting at boot. Nothing
# else of the package changes (the `prometheus` and `promtool` binaries are what we use). The same
# holds for suricata's service, which would sniff the machine's first interface: the tests run
# `suricata -r` on capture files.
#
# disable_service NAME WHY : stops the service NAME and keeps it from starting at boot.
disable_service() {
	local name=$1 why=$2
	local changed=false
	if [ -d /run/systemd/system ]; then
		if systemctl is-active --quiet "$name.service"; then
			$SUDO systemctl stop "$name.service" || die "systemctl stop $name failed"
			changed=true
		fi
		if systemctl is-enabled --quiet "$name.service" 2>/dev/null; then
			$SUDO systemctl disable --quiet "$name.service" || die "systemctl disable $name failed"
			changed=true
		fi
	elif [ -x "/etc/init.d/$name" ]; then
		# No systemd (containers, sysvinit): the init.d script and its rc.d links.
		if $SUDO "/etc/init.d/$name" status >/dev/null 2>&1; then
			$SUDO "/etc/init.d/$name" stop >/dev/null || die "/etc/init.d/$name stop failed"
			changed=true
		fi
		if compgen -G "/etc/rc[2-5].d/S*$name" >/dev/null; then
			$SUDO update-rc.d "$name" disable >/dev/null 2>&1 || die "update-rc.d $name disable failed"
			changed=true
		fi
	fi
	if [ "$changed" = true ]; then
		echo "$name service: stopped and disabled ($why)"
	else
		echo "$name service: already stopped and disabled"
	fi
}

BACKPORTS_SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources

# Debian 12's main archive has no Suricata; its bookworm-backports suite has 7.0.x. The suite is
# added unless a source names it already. Apt gives backports a low priority by default, so
# nothing else is upgraded from it: only suricata and the libraries it needs come from there.
install_suricata_group() {
	if [ -z "$(missing_packages suricata)" ]; then
		echo "suricata: already installed"
	else
		if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
			printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
				'Suites: bookworm-backports' 'Components: main' \
				'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
				$SUDO tee "$BACKPORTS_SOURCES" >/dev/null || die "could not write $BACKPORTS_SOURCES"
			apt_updated=false
		fi
		if [ "$apt_updated" = false ]; then
			apt_get update >/dev/null || die "apt-get update failed (network? sources.list?)"
			apt_updated=true
		fi
		apt_get install --no-install-recommends -t bookworm-backports suricata >/dev/null ||
			die "apt-get install -t bookworm-backports suricata failed (run it by hand to see why)"
		echo "suricata: installed $(dpkg-query -W -f '${Version}' suricata) from bookworm-backports"
	fi
	disable_service suricata "the tests run suricata -r on capture files"
}

install_group base "${BASE_PACKAGES[@]}"
disable_service prometheus "tests run their own"
if [ "$want_bench" = true ]; then
	install_group bench "${BENCH_PACKAGES[@]}"
fi
if [ "$want_fuzz" = true ]; then
	install_fuzz_group
fi
if [ "$want_suricata" = true ]; then
	install_suricata_group
fi
