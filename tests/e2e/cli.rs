//! The command line as an operator meets it: config errors (source line and caret, exit 78,
//! a missing file's cause once, a duplicate key named), `broker check --json`,
//! `--log-format json`, `broker status --watch`, and `--version`.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::running::*;
use crate::support::*;

/// `EX_CONFIG`: what a config error exits with.
const EXIT_CONFIG: i32 = 78;

fn broker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(args)
        .output()
        .expect("run the broker CLI")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lab config with its first session's tool group misspelt, and the line it is on.
fn misspelt_lab(s: &Scratch) -> (std::path::PathBuf, usize) {
    let lab = std::fs::read_to_string(repo_root().join("config/lab.toml")).unwrap();
    let wrong = lab.replacen("tools = [\"ids\"", "tools = [\"idz\"", 1);
    assert_ne!(
        wrong, lab,
        "config/lab.toml no longer sends a session to \"ids\" first"
    );
    let line = wrong
        .lines()
        .position(|l| l.contains("\"idz\""))
        .expect("the misspelt line")
        + 1;
    (s.write("bad.toml", &wrong), line)
}

#[test]
fn config_errors_show_the_line_and_a_caret_and_exit_78() {
    let s = Scratch::new("cli-errors");
    let (bad, line) = misspelt_lab(&s);
    let bad = bad.to_str().unwrap();
    for args in [vec!["check", "--config", bad], vec!["run", "--config", bad]] {
        let out = broker(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: {bad}:{line}:10: session[0] (\"web\").tools[0]: unknown tool group \"idz\""
            )),
            "{args:?}: {stderr}"
        );
        // The source line, and a caret under the offending name.
        assert!(
            stderr.contains(&format!("\n{line} | tools = [\"idz\"")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("|          ^^^^^\n"), "{args:?}: {stderr}");
        // Refused before DPDK: no device touched.
        assert!(!stderr.contains("EAL"), "{args:?}: {stderr}");
    }

    // A missing file: its cause once.
    let missing = s.path("missing.toml");
    let out = broker(&["check", "--config", missing.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );

    // A key set twice: named, with its line.
    let twice = s.write("twice.toml", "[broker]\nname = \"a\"\nname = \"b\"\n");
    let out = broker(&["check", "--config", twice.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:3:1: duplicate key \"name\"",
            twice.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("3 | name = \"b\"\n  | ^^^^"), "{stderr}");
}

#[test]
fn check_json_says_valid_or_every_error_with_its_place() {
    let s = Scratch::new("cli-check-json");
    let lab = repo_root().join("config/lab.toml");
    let out = broker(&["check", "--json", "--config", lab.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["format"], 1);
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], serde_json::json!([]));
    // The lab's one warning is the intended one: its source-balanced ids group sends a packet
    // mirrored at both ends to each end's analyzer.
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["key_path"], "tool_group[0] (\"ids\")");
    assert!(
        warnings[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("balance = \"source\" with de-duplication")),
        "{warnings:?}"
    );
    assert_eq!(report["config"]["name"], "lab");
    let groups: Vec<&str> = report["config"]["tool_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["ids", "recorder"]);

    let (bad, line) = misspelt_lab(&s);
    let out = broker(&["check", "--json", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], false);
    assert_eq!(report["config"], Value::Null);
    assert_eq!(
        report["errors"][0],
        serde_json::json!({"line": line, "column": 10, "key_path": "session[0] (\"web\").tools[0]",
            "message": "unknown tool group \"idz\" (known: ids, recorder)"})
    );
}

#[test]
fn version_names_the_revision() {
    let out = broker(&["--version"]);
    let version = text(&out.stdout);
    let expected = format!("broker {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");
    // A git checkout: the short hash of HEAD.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    if let Some(head) = head {
        assert_eq!(version.trim_end(), format!("{expected}{head})"));
    }
}

#[test]
fn json_logs_and_status_watch_on_a_running_broker() {
    let s = Scratch::new("cli-watch");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let address = free_address();
    let groups: &[(&str, &[&str])] = &[("ids", &["ids-1", "ids-2"]), ("recorder", &["recorder-1"])];
    let config = endless_config("e2e-cli", &capture, &address.to_string(), groups);
    let config = s.write("broker.toml", &config);
    let mut running = Running::start_with(&config, &s.dir, &[], &["--log-format", "json"], &[]);
    running.wait_for_log("metrics and status on", Duration::from_secs(30));

    let watch = running.cli(&[
        "status",
        "--watch",
        "--count",
        "2",
        "--address",
        &address.to_string(),
    ]);
    let out = text(&watch.stdout);
    assert!(watch.status.success(), "{out}{}", text(&watch.stderr));
    // Piped: two blocks, one after the other, no terminal escapes.
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
    for block in &blocks {
        let lines: Vec<&str> = block.lines().collect();
        assert!(
            lines[0].starts_with("broker \"e2e-cli\" at ")
                && lines[0].contains(" UTC, per second over the last "),
            "{block}"
        );
        assert!(lines[1].starts_with("received "), "{block}");
        assert!(
            !lines[1].starts_with("received 0 "),
            "the capture flows: {block}"
        );
        assert!(lines[1].contains(" delivered "), "{block}");
        let row = |name: &str| {
            lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("no row {name} in\n{block}"))
        };
        for name in ["mirror0", "ids", "ids-1", "ids-2", "recorder", "recorder-1"] {
            let rate = row(name).split_whitespace().nth(1).unwrap();
            assert_ne!(rate, "0", "{name} moves packets:\n{block}");
        }
    }

    let ended = running.stop(Duration::from_secs(15));
    ended.assert_exact();
    // Every line of ours is one JSON object; DPDK's own lines (EAL: …) are text.
    let ours: Vec<Value> = ended
        .stderr
        .lines()
        .filter(|l| !l.starts_with("EAL") && !l.starts_with("TELEMETRY") && !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |needle: &str| {
        ours.iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.contains(needle)))
            .unwrap_or_else(|| panic!("no log line with {needle:?}: {}", ended.stderr))
    };
    let running_line = find("worker(s) running");
    assert_eq!(running_line["level"], "INFO");
    assert_eq!(running_line["target"], "broker::runtime");
    assert!(running_line["timestamp"].is_string());
    find("SIGTERM: stopping");
}
