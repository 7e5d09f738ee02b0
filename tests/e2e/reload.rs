//! Hot reload under load: while an endless (`infinite_rx`) capture flows through two workers,
//! the config file is reloaded 100 times, alternating two valid configs of different shapes (a
//! session, a filter and its rule more in one), with invalid ones in between (a syntax error, a
//! validation error, a change that needs a restart). Every valid reload must be applied, every
//! invalid one refused and counted, and at the end the accounting must be exact: the driver's RX
//! count equals the packets received, every packet has exactly one outcome, every copy is
//! transmitted or counted — nothing lost or counted twice across 100 plan and counter swaps.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::running::*;
use crate::support::*;

/// Valid reloads, alternating between the two shapes.
const VALID_RELOADS: usize = 100;
/// An invalid reload after every this many valid ones.
const INVALID_EVERY: usize = 8;
/// Pause between reloads: the workers take a few bursts under each plan.
const PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Sessions web and db to the ids group.
    Small,
    /// Small, plus session edge (to ids and recorder) and a filter on web: another shape of
    /// counters (one session, one filter, two rules more).
    Large,
}

/// The broken files, each refused for its own reason.
#[derive(Clone, Copy, Debug)]
enum Broken {
    /// Not TOML.
    Syntax,
    /// TOML, but a session names an unknown tool group.
    Validation,
    /// Valid, but changes the TX rings: needs a restart.
    NeedsRestart,
}

fn config(captures: &[std::path::PathBuf], metrics: SocketAddr, shape: Shape) -> String {
    let rx: Vec<String> = captures
        .iter()
        .map(|c| format!("rx_pcap={}", c.display()))
        .collect();
    let mut text = format!(
        r#"
[broker]
name = "e2e-reload"
metrics = "{metrics}"
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,{},infinite_rx=1"
queues = {}
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
[dedup]
window = "50ms"
[[session]]
name = "web"
vni = 101
tools = ["ids"]
{}
[[session]]
name = "db"
vni = 102
tools = ["ids"]
[[tool_group]]
name = "ids"
balance = "source"
ports = [{{ name = "ids-1", device = "net_null1" }}, {{ name = "ids-2", device = "net_null2" }}]
[[tool_group]]
name = "recorder"
slice = 128
ports = [{{ name = "recorder-1", device = "net_null3" }}]
"#,
        rx.join(","),
        captures.len(),
        if shape == Shape::Large {
            "filter = \"web-filter\""
        } else {
            ""
        }
    );
    if shape == Shape::Large {
        text.push_str(
            r#"
[[session]]
name = "edge"
vni = 103
tools = ["ids", "recorder"]
[[filter]]
name = "web-filter"
default = "reject"
[[filter.rule]]
number = 100
action = "accept"
protocol = "tcp"
[[filter.rule]]
number = 200
action = "reject"
protocol = "icmp"
"#,
        );
    }
    text
}

fn broken(valid: &str, how: Broken) -> String {
    match how {
        Broken::Syntax => format!("{valid}\nthis is = = not toml\n"),
        Broken::Validation => valid.replacen("tools = [\"ids\"]", "tools = [\"idz\"]", 1),
        Broken::NeedsRestart => valid.replacen("[dpdk]\n", "[dpdk]\ntx_descriptors = 2048\n", 1),
    }
}

/// Replaces the config file in one step (a reload never reads a half-written file).
fn install(path: &Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).expect("write config");
    std::fs::rename(&staged, path).expect("rename config into place");
}

/// `POST /reload`: the outcome document.
fn post_reload(address: SocketAddr) -> (u16, Value) {
    let (code, body) = http("POST", address, "/reload");
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("POST /reload answered {code} {body:?}: {e}"));
    (code, json)
}

fn reload_count(status: &Value) -> u64 {
    let r = &status["config"]["reloads"];
    ["applied", "invalid", "needs_restart"]
        .iter()
        .map(|k| r[*k].as_u64().unwrap_or(0))
        .sum()
}

fn metric(scrape: &str, line_start: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_hundred_reloads_under_load_lose_and_duplicate_nothing() {
    let s = Scratch::new("reload");
    let captures = generate(&s.path("mirror.pcap"), "lab", Some(2), &[]);
    let metrics = free_address();
    let small = config(&captures, metrics, Shape::Small);
    let large = config(&captures, metrics, Shape::Large);
    let path = s.write("broker.toml", &small);
    let mut broker = Running::start(&path, &s.dir, &[]);
    broker.wait_for_log("metrics and status on", Duration::from_secs(30));
    assert!(
        broker.log().contains("2 worker(s) running"),
        "{}",
        broker.log()
    );
    // Traffic flows before the first reload.
    wait_for_status(metrics, Duration::from_secs(10), "traffic", |s| {
        s["received"].as_u64().unwrap_or(0) > 0
    });

    let started = Instant::now();
    let (mut applied, mut invalid, mut needs_restart) = (0u64, 0u64, 0u64);
    let mut kinds = [Broken::Syntax, Broken::Validation, Broken::NeedsRestart]
        .into_iter()
        .cycle();
    for i in 1..=VALID_RELOADS {
        if i % INVALID_EVERY == 0 {
            let how = kinds.next().unwrap();
            let current = if i % 2 == 0 { &large } else { &small };
            install(&path, &broken(current, how));
            let (code, outcome) = post_reload(metrics);
            match how {
                Broken::Syntax | Broken::Validation => {
                    assert_eq!(
                        (code, outcome["outcome"].as_str()),
                        (422, Some("invalid")),
                        "{outcome}"
                    );
                    invalid += 1;
                }
                Broken::NeedsRestart => {
                    assert_eq!(
                        (code, outcome["outcome"].as_str()),
                        (409, Some("needs_restart")),
                        "{outcome}"
                    );
                    assert!(
                        outcome["error"]
                            .as_str()
                            .unwrap()
                            .contains("[dpdk] tx_descriptors: 1024 → 2048"),
                        "the refusal names the change: {outcome}"
                    );
                    needs_restart += 1;
                }
            }
            if matches!(how, Broken::Validation) {
                assert!(
                    outcome["error"]
                        .as_str()
                        .unwrap()
                        .contains("unknown tool group \"idz\""),
                    "{outcome}"
                );
            }
            std::thread::sleep(PAUSE);
        }
        let (shape, text) = if i % 2 == 1 {
            (Shape::Large, &large)
        } else {
            (Shape::Small, &small)
        };
        install(&path, text);
        if i % 10 == 0 {
            // SIGHUP: no answer on the wire; the status counts it.
            let before = applied + invalid + needs_restart;
            broker.signal("HUP");
            let status = wait_for_status(
                metrics,
                Duration::from_secs(10),
                "the SIGHUP reload",
                |st| reload_count(st) > before,
            );
            assert_eq!(
                status["config"]["reloads"]["last"]["outcome"], "applied",
                "{status}"
            );
        } else if i % 25 == 1 {
            // The CLI prints the outcome.
            let out = broker.cli(&["reload", "--address", &metrics.to_string()]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "broker reload: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains(&format!("reloaded: config generation {}", applied + 2)),
                "{text}"
            );
        } else {
            let (code, outcome) = post_reload(metrics);
            assert_eq!(code, 200, "{outcome}");
            assert_eq!(outcome["config_generation"], applied + 2, "{outcome}");
            assert_eq!(
                outcome["counters"], "renewed",
                "{shape:?}: the two configs differ in shape, every reload renews the counters"
            );
        }
        applied += 1;
        std::thread::sleep(PAUSE);
    }
    let took = started.elapsed();

    // The refusals of the CLI: printed, exit status 1, nothing changed.
    install(&path, &broken(&small, Broken::Syntax));
    let out = broker.cli(&["reload", "--address", &metrics.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("reload refused: invalid config"), "{text}");
    invalid += 1;
    install(&path, &small);

    // Status and metrics report the final generation and every refusal; every retired counter
    // set is folded once the workers have moved on.
    let status = wait_for_status(
        metrics,
        Duration::from_secs(10),
        "the retired sets folded",
        |st| {
            st["config"]["retired_counter_sets_pending"] == 0
                && reload_count(st) == applied + invalid + needs_restart
        },
    );
    let reloads = &status["config"]["reloads"];
    assert_eq!(status["config"]["generation"], 1 + applied, "{status}");
    assert_eq!(
        status["config"]["plan_generation"],
        1 + applied,
        "net_null links never change: one plan per reload"
    );
    assert_eq!(
        (
            reloads["applied"].as_u64(),
            reloads["invalid"].as_u64(),
            reloads["needs_restart"].as_u64()
        ),
        (Some(applied), Some(invalid), Some(needs_restart)),
        "{status}"
    );
    assert_eq!(reloads["last"]["outcome"], "invalid");
    std::thread::sleep(Duration::from_millis(1100)); // one publication past the last change
    let (_, scrape) = http("GET", metrics, "/metrics");
    assert_eq!(
        metric(&scrape, "broker_config_generation "),
        Some((1 + applied) as f64),
        "{scrape}"
    );
    assert_eq!(
        metric(
            &scrape,
            "broker_config_reload_failures_total{reason=\"invalid\"} "
        ),
        Some(invalid as f64)
    );
    assert_eq!(
        metric(
            &scrape,
            "broker_config_reload_failures_total{reason=\"needs_restart\"} "
        ),
        Some(needs_restart as f64)
    );
    assert_eq!(
        metric(&scrape, "broker_config_last_reload_successful "),
        Some(0.0)
    );

    let ended = broker.stop(Duration::from_secs(20));
    ended.assert_exact();
    let received = ended.received();
    eprintln!(
        "{VALID_RELOADS} reloads (+{} refused) in {took:?} while {received} packets flowed",
        invalid + needs_restart
    );
    assert!(received > 10_000, "traffic flowed throughout: {received}");
    // Both shapes ran: the large one's session and filter saw packets, and the totals of the
    // sets retired 100 times are all there under their names.
    let sessions = ended.summary["sessions"].as_array().unwrap();
    let session = |name: &str| {
        sessions
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no session {name}: {sessions:?}"))
    };
    assert!(
        session("edge")["packets"].as_u64().unwrap() > 0,
        "{sessions:?}"
    );
    assert!(
        session("web")["filtered"].as_u64().unwrap() > 0,
        "the large shape's filter rejected some: {sessions:?}"
    );
    let per_session: u64 = sessions
        .iter()
        .map(|r| r["packets"].as_u64().unwrap())
        .sum();
    let outcome = |name: &str| {
        ended.summary["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["outcome"] == name)
            .map(|o| o["packets"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        per_session,
        received
            - outcome("unknown_session")
            - outcome("source_denied")
            - outcome("not_tunnel")
            - outcome("malformed"),
        "every packet that reached a session is counted under one session name"
    );
}
