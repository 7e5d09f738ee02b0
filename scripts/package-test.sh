#!/usr/bin/env bash
# Installs the Debian package into a scratch root and checks it, leaving the system as it was:
#   - the file is broker_<version>_amd64.deb, and its Depends (dpdk included) are installed here;
#   - `dpkg --root SCRATCH --force-script-chrootless -i` installs it (the postinst runs, with
#     DPKG_ROOT set, and creates the broker user in the scratch root's /etc/passwd); dependencies
#     are checked against this system above, since the scratch root has none;
#   - every file the package should hold is there; /etc/broker/broker.toml is a conffile;
#   - the installed `broker` runs: --version (with the git revision), `broker check` on the
#     installed config and on every installed example, and exits 78 (EX_CONFIG) on a bad config;
#   - the bash completions load, every man page renders, the units pass `systemd-analyze verify`;
#   - `dpkg -r` then `--purge` remove it all (the conffile only on purge).
#
#   scripts/package-test.sh [target/debian/broker_<version>_amd64.deb]
#
# Needs root (dpkg --root), and touches nothing outside its scratch directory: no package of this
# system is installed or removed, no user created, no service told anything.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
-h | --help)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

cd "$(repo_root)"
version=$(cargo metadata --format-version 1 --no-deps |
	"$PYTHON" -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "broker"))')
deb=${1:-target/debian/broker_${version}_amd64.deb}
[ -f "$deb" ] || die "no package at $deb (scripts/package.sh makes it)"
[ "$(id -u)" -eq 0 ] || die "run as root: dpkg --root needs it (nothing outside a scratch directory is touched)"
need_cmd dpkg-deb "not a Debian system?"

[ "$(basename "$deb")" = "broker_${version}_amd64.deb" ] ||
	die "$deb: expected the name broker_${version}_amd64.deb"
[ "$(dpkg-deb -f "$deb" Package)" = broker ] || die "Package is not broker"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || die "Version is not $version"
[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ] || die "Architecture is not amd64"

# Every dependency installed here, in a version that satisfies it (the scratch root has none).
depends=$(dpkg-deb -f "$deb" Depends)
case ", $depends," in
*", dpdk,"*) ;;
*) die "Depends lacks dpdk (the poll-mode drivers are loaded at run time): $depends" ;;
esac
IFS=',' read -ra clauses <<<"$depends"
for clause in "${clauses[@]}"; do
	clause=$(echo "$clause" | xargs)
	name=${clause%% *}
	installed=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
	case "$installed" in
	"install ok installed "*) ;;
	*) die "dependency $clause is not installed here" ;;
	esac
	if [[ $clause =~ \((.+)\ (.+)\) ]]; then
		dpkg --compare-versions "${installed##* }" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" ||
			die "dependency $clause: version ${installed##* } installed"
	fi
done
log "$(basename "$deb"): Depends satisfied here: $depends"

root=$(mktemp -d /tmp/broker-package.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
scratch_dpkg() {
	dpkg --root="$root" --force-script-chrootless "$@"
}
log "installing into $root"
scratch_dpkg --force-depends -i "$deb" >"$root/dpkg.log" 2>&1 || {
	cat "$root/dpkg.log" >&2
	die "dpkg -i into the scratch root failed"
}
[ "$(dpkg-query --root="$root" -W -f='${Status}' broker)" = "install ok installed" ] ||
	die "dpkg does not record broker as installed"

for file in \
	usr/bin/broker \
	lib/systemd/system/broker.service lib/systemd/system/broker-hugepages.service \
	usr/lib/sysusers.d/broker.conf lib/udev/rules.d/60-broker-vfio.rules \
	usr/share/doc/broker/systemd/virtual-devices.conf \
	usr/share/doc/broker/systemd.md usr/share/doc/broker/operations.md \
	usr/share/doc/broker/analyzers.md usr/share/doc/broker/fleet.md \
	etc/broker/broker.toml \
	usr/share/doc/broker/examples/aws-vpc-mirroring.toml usr/share/doc/broker/examples/gwlb.toml \
	usr/share/doc/broker/examples/span-port.toml \
	usr/share/doc/broker/examples/aws-traffic-mirror-filters.json \
	usr/share/broker/prometheus/prometheus.yml usr/share/broker/prometheus/alerts.yml \
	usr/share/broker/grafana/dashboards/broker.json \
	usr/share/broker/grafana/provisioning/datasources/prometheus.yaml \
	usr/share/broker/grafana/provisioning/dashboards/broker.yaml \
	usr/share/bash-completion/completions/broker usr/share/zsh/vendor-completions/_broker \
	usr/share/fish/vendor_completions.d/broker.fish \
	usr/share/man/man1/broker.1.gz usr/share/man/man1/broker-run.1.gz \
	usr/share/man/man1/broker-import-aws-filters.1.gz \
	usr/share/man/man1/broker-capture.1.gz usr/share/man/man1/broker-trace.1.gz; do
	[ -s "$root/$file" ] || die "the package does not install /$file"
done
dpkg-query --root="$root" -W -f='${Conffiles}' broker | grep -q ' /etc/broker/broker.toml ' ||
	die "/etc/broker/broker.toml is not a conffile"
grep -q '^broker:' "$root/etc/passwd" || die "the postinst did not create the broker user"

broker=$root/usr/bin/broker
"$broker" --version | grep -qE "^broker $version \(([0-9a-f]+|unknown)\)$" ||
	die "installed broker --version: $("$broker" --version)"
for config in "$root/etc/broker/broker.toml" "$root"/usr/share/doc/broker/examples/*.toml; do
	"$broker" check --config "$config" >"$root/check.out" 2>&1 || {
		cat "$root/check.out" >&2
		die "the installed broker check refuses the installed ${config#"$root"}"
	}
done
printf '[broker]\nname = "x"\nname = "y"\n' >"$root/bad.toml"
status=0
"$broker" check --config "$root/bad.toml" >"$root/check.out" 2>&1 || status=$?
[ "$status" -eq 78 ] || die "the installed broker check exits $status on a bad config, not 78 (EX_CONFIG)"
log "installed broker $version checks /etc/broker/broker.toml and every example; a bad config exits 78"

bash -c '. "$1" && complete -p broker' _ "$root/usr/share/bash-completion/completions/broker" >/dev/null ||
	die "the bash completions do not load"
pages=$(ls "$root/usr/share/man/man1/")
if command -v man >/dev/null 2>&1; then
	for page in "$root"/usr/share/man/man1/*.1.gz; do
		MANWIDTH=80 man -l "$page" 2>&1 | grep -q '^NAME' || die "man -l ${page#"$root"} renders no NAME section"
	done
fi
log "completions load; man pages render: $(echo "$pages" | tr '\n' ' ')"

if command -v systemd-analyze >/dev/null 2>&1; then
	# The installed units, with /usr/bin/broker pointing at the scratch root's copy (the other
	# commands they run, dpdk-hugepages.py, kill, umount, are this system's).
	mkdir "$root/verify"
	for unit in broker.service broker-hugepages.service; do
		sed "s|/usr/bin/broker |$root/usr/bin/broker |" "$root/lib/systemd/system/$unit" >"$root/verify/$unit"
	done
	grep -q "^ExecStart=$root/usr/bin/broker run" "$root/verify/broker.service" ||
		die "broker.service does not run /usr/bin/broker run"
	grep -q "^ExecReload=$root/usr/bin/broker reload" "$root/verify/broker.service" ||
		die "broker.service does not reload with /usr/bin/broker reload"
	systemd-analyze verify "$root/verify/broker.service" "$root/verify/broker-hugepages.service" \
		>"$root/verify.out" 2>&1 || {
		cat "$root/verify.out" >&2
		die "systemd-analyze verify refuses the installed units"
	}
	log "systemd-analyze verify: the installed units are valid"
fi

scratch_dpkg -r broker >"$root/dpkg.log" 2>&1 || die "dpkg -r failed: $(cat "$root/dpkg.log")"
[ ! -e "$root/usr/bin/broker" ] || die "dpkg -r left /usr/bin/broker"
[ -e "$root/etc/broker/broker.toml" ] || die "dpkg -r removed the conffile (only purge should)"
scratch_dpkg --purge broker >"$root/dpkg.log" 2>&1 || die "dpkg --purge failed: $(cat "$root/dpkg.log")"
[ ! -e "$root/etc/broker/broker.toml" ] || die "dpkg --purge left /etc/broker/broker.toml"
log "removed and purged: nothing of the package left in the scratch root"
log "ok"
