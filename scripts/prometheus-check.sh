#!/usr/bin/env bash
# Checks the monitoring files with Prometheus' own tools, and optionally a running broker:
#   - dashboards/prometheus/prometheus.yml with `promtool check config` (which checks the alert
#     rules it loads too), and the rules' unit tests with `promtool test rules`,
#   - dashboards/broker.json parses, and every target has an expression,
#   - with an address, a scrape of that broker's /metrics with `promtool check metrics`
#     (the metric names, types and help lines Prometheus' linter expects).
#
#   scripts/prometheus-check.sh                    the files only
#   scripts/prometheus-check.sh 127.0.0.1:9477     … and a running broker's /metrics
#
# The end-to-end test (cargo test -p broker --test e2e metrics) does all of this and more against
# a real Prometheus; this script is for checking an installation by hand.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
-h | --help)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

cd "$(repo_root)"
need_cmd promtool "install Debian's prometheus package (scripts/install-deps.sh)"

log "promtool check config dashboards/prometheus/prometheus.yml (and the alert rules it loads)"
promtool check config dashboards/prometheus/prometheus.yml >&2
log "promtool test rules dashboards/prometheus/alerts.test.yml"
promtool test rules dashboards/prometheus/alerts.test.yml >&2

log "dashboards/broker.json"
"$PYTHON" - dashboards/broker.json <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
panels, exprs = list(dashboard["panels"]), 0
while panels:
    panel = panels.pop()
    panels.extend(panel.get("panels", []))
    for target in panel.get("targets", []):
        if not target.get("expr"):
            sys.exit(f"panel {panel.get('title')!r}: a target without an expression")
        exprs += 1
names = [v["name"] for v in dashboard["templating"]["list"]]
print(f"  {exprs} expressions, variables {', '.join(names)}", file=sys.stderr)
PY

if [ $# -ge 1 ]; then
	address=$1
	log "promtool check metrics on http://$address/metrics"
	scrape=$("$PYTHON" -c 'import sys, urllib.request; print(urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode(), end="")' "$address") ||
		die "no answer from http://$address/metrics (is the broker running with [broker] metrics = \"$address\"?)"
	lint=$(printf '%s\n' "$scrape" | promtool check metrics 2>&1) || die "promtool check metrics failed: $lint"
	[ -z "$lint" ] || die "promtool check metrics: $lint"
	log "  $(printf '%s\n' "$scrape" | grep -c '^# TYPE') metric families, no lint"
fi
log "ok"
