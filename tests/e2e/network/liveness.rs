//! An analyzer that disappears and returns. A tunnel port is live only while its next hop
//! answers ARP: when a2's link goes down (its namespace's interface), a2 leaves the group —
//! status and log say so — and only a2's flows move, to a1 and a3; when it returns, every flow is
//! back where it was. Three rounds of the sample, one per state, each compared frame by frame.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::scenario::{Scenario, lab_config_text};
use super::traffic::{ADMIN, Middle, wait_for_ports};
use super::verify::Flow;

/// Which port each flow went to.
fn owners(flows: &BTreeMap<String, BTreeSet<Flow>>) -> BTreeMap<Flow, String> {
    flows
        .iter()
        .flat_map(|(port, fs)| fs.iter().map(move |f| (*f, port.clone())))
        .collect()
}

#[test]
fn a_vanished_analyzer_gives_up_only_its_flows_and_takes_them_back() {
    let Some(mut run) = Scenario::start(
        "live",
        Middle::Broker,
        |_| lab_config_text(),
        &["a1", "a2", "a3"],
    ) else {
        return;
    };
    let admin = ADMIN.parse().unwrap();
    let a2_next_hop = run.lab.host("a2").ipv4.to_string();

    let (_, got) = run.send_and_receive(&["a1", "a2", "a3"], "before-");
    let first = run.check_group("ids", &got);
    let before = owners(&first.flows);

    // a2 vanishes: detected through its next hop, logged, and only its flows move.
    let log_before = run.broker().log().len();
    let down_at = Instant::now();
    run.lab.set_link("a2", false);
    wait_for_ports(run.broker(), admin, &["a2"], false, Duration::from_secs(60));
    let detected = down_at.elapsed();
    let status = run.broker().status(admin);
    for port in ["a1", "a3"] {
        assert_eq!(
            super::traffic::port_live(&status, port),
            Some(true),
            "{port} stays live"
        );
    }
    let log = run.broker().log();
    let line = log[log_before..]
        .lines()
        .find(|l| l.contains("a2") && l.contains(&a2_next_hop))
        .unwrap_or_else(|| panic!("no log line names a2 and its next hop:\n{log}"));
    eprintln!("a2 down detected after {detected:?}: {line}");

    let (_, got) = run.send_and_receive(&["a1", "a3"], "down-");
    let during = owners(&run.check_group("ids", &got).flows);
    for (flow, port) in &before {
        if port == "a2" {
            assert_ne!(during[flow], "a2", "a2's flow {flow:?} moved");
        } else {
            assert_eq!(&during[flow], port, "flow {flow:?} of a live port stayed");
        }
    }

    // a2 returns: every flow back on its first port.
    run.lab.set_link("a2", true);
    wait_for_ports(run.broker(), admin, &["a2"], true, Duration::from_secs(60));
    let (_, got) = run.send_and_receive(&["a1", "a2", "a3"], "back-");
    let last = run.check_group("ids", &got);
    assert_eq!(
        owners(&last.flows),
        before,
        "every flow is back where it was"
    );

    let moved = before.values().filter(|p| *p == "a2").count();
    eprintln!("{moved} of {} flows moved and came back", before.len());
    let stopped = run.stop();
    assert_eq!(
        stopped.port_count("a2", "copies"),
        (first.ports["a2"].len() + last.ports["a2"].len()) as u64,
        "nothing was sent to a2 while it was gone"
    );
}
