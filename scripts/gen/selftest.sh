#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Self-test of the mirrored-capture generator: every profile generated twice (byte-identical) and
# decoded by tshark, packet by packet against its JSON sidecar; split files, CLI refusals, and the
# committed sample (samples/aws-mirror.pcap) regenerated and compared. Exits non-zero on failure.
# Arguments go to unittest (e.g. -v, or a test name such as Profiles.test_gwlb).
set -euo pipefail

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=../lib.sh
. "$here/../lib.sh"

need_cmd tshark "install it with scripts/install-deps.sh"
"$PYTHON" -c 'import scapy' 2>/dev/null || die "$PYTHON cannot import scapy: install python3-scapy (scripts/install-deps.sh)"
exec "$PYTHON" "$here/selftest.py" "$@"
