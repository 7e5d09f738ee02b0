//! The alert rules shipped beside the dashboard (`dashboards/prometheus/alerts.yml`), checked with
//! Prometheus' own `promtool`: the file is valid, its unit tests (`alerts.test.yml`) pass, every
//! alert has a case where it fires and one where it does not, every metric it names is one the
//! broker exports (README's metrics table, generated from the catalogue), and the unit tests fail
//! when the rules are replaced by ones that never fire, or always fire.
//!
//! The metrics test loads the same rules into a real Prometheus scraping a running broker and
//! finds every rule evaluated without error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian package prometheus)")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The alert names of a rule file, in order.
pub fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// The rule file with every expression replaced by `expr`.
fn with_every_expression(rules: &str, expr: &str) -> String {
    let replaced: Vec<String> = rules
        .lines()
        .map(|l| match l.find("expr: ") {
            Some(i) => format!("{}expr: {expr}", &l[..i]),
            None => l.to_owned(),
        })
        .collect();
    replaced.join("\n") + "\n"
}

/// Per alert name: (cases where it must fire, cases where it must not) in the unit-test file.
fn cases(tests: &str) -> BTreeMap<String, (usize, usize)> {
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname: ") else {
            continue;
        };
        let entry = cases.entry(name.to_owned()).or_default();
        match lines.get(i + 1) {
            Some(&"exp_alerts: []") => entry.1 += 1,
            Some(&"exp_alerts:") => entry.0 += 1,
            other => panic!("alertname {name} not followed by exp_alerts: {other:?}"),
        }
    }
    cases
}

/// The metric names of README's generated metrics table.
fn exported_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- metrics-table:start")
        .expect("metrics table start");
    let end = readme
        .find("<!-- metrics-table:end")
        .expect("metrics table end");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("broker_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests_cover_and_catch_every_rule() {
    let dir = repo_root().join("dashboards/prometheus");
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).expect("alerts.yml");
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).expect("alerts.test.yml");
    let names = alert_names(&rules);
    assert!(names.len() >= 10, "{names:?}");

    let check = promtool(&["check", "rules", "alerts.yml"], &dir);
    assert!(
        check.status.success(),
        "promtool check rules:\n{}",
        text(&check)
    );
    assert!(
        text(&check).contains(&format!("SUCCESS: {} rules found", names.len())),
        "{}",
        text(&check)
    );
    let unit = promtool(&["test", "rules", "alerts.test.yml"], &dir);
    assert!(
        unit.status.success(),
        "promtool test rules:\n{}",
        text(&unit)
    );

    // Every alert fires in some case and stays quiet in another; no test names a missing alert.
    let cases = cases(&tests);
    for name in &names {
        let (firing, quiet) = cases.get(name).copied().unwrap_or_default();
        assert!(
            firing > 0 && quiet > 0,
            "{name}: {firing} firing and {quiet} quiet cases"
        );
    }
    let unknown: Vec<&String> = cases.keys().filter(|n| !names.contains(n)).collect();
    assert!(
        unknown.is_empty(),
        "tests of alerts that do not exist: {unknown:?}"
    );

    // Only metrics the broker exports (plus Prometheus' own `up`).
    let exported = exported_metrics();
    assert!(exported.len() > 40, "{} metrics in README", exported.len());
    let named: BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .flat_map(|expr| expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|token| token.starts_with("broker_"))
        .collect();
    let missing: Vec<&&str> = named.iter().filter(|n| !exported.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "metrics the broker does not export: {missing:?}"
    );

    // The unit tests notice rules that never fire and rules that always fire: each alert shows
    // up among the failures.
    let s = Scratch::new("alerts");
    std::fs::write(s.path("alerts.test.yml"), &tests).unwrap();
    for (what, expr) in [
        ("never fire", "vector(1) > 2"),
        ("always fire", "vector(1)"),
    ] {
        std::fs::write(s.path("alerts.yml"), with_every_expression(&rules, expr)).unwrap();
        let check = promtool(&["check", "rules", "alerts.yml"], &s.dir);
        assert!(check.status.success(), "{what}: {}", text(&check));
        let unit = promtool(&["test", "rules", "alerts.test.yml"], &s.dir);
        assert!(
            !unit.status.success(),
            "rules that {what} pass the unit tests"
        );
        let report = text(&unit);
        for name in &names {
            assert!(
                report.contains(&format!("alertname: {name},")),
                "rules that {what}: no failing case for {name}:\n{report}"
            );
        }
    }
}
