//! VXLAN to three analyzers, one of them behind the router: the network lab's own run
//! (`scripts/netlab/lab.toml`, the config `scripts/run-lab.sh --network` uses).

use std::collections::BTreeMap;

use super::decode::Encap;
use super::scenario::{Scenario, lab_config_text};
use super::traffic::{AnalyzerFrames, Capture, Middle};
use super::verify::tunnels_of;
use crate::support::outcome_count;

const ANALYZERS: [&str; 3] = ["a1", "a2", "a3"];

/// Runs the lab: the sample from the peer, each inner frame to one of a1, a2 (on the broker's
/// subnet) and a3 (behind the router), everything checked (see `Scenario::check_group`); the
/// gateway path seen at the router. Then `after` looks at what the analyzers received before the
/// scratch directory goes. `None` when skipped for lack of privileges.
pub fn three_analyzers(
    tag: &str,
    middle: Middle,
    after: impl FnOnce(&Scenario, &BTreeMap<String, AnalyzerFrames>),
) -> Option<()> {
    let mut run = Scenario::start(tag, middle, |_| lab_config_text(), &ANALYZERS)?;
    let router = Capture::start(
        &run.lab,
        "router",
        "eth0",
        &run.scratch.path("router-eth0.pcap"),
    );
    let (sent, got) = run.send_and_receive(&ANALYZERS, "");
    let delivery = run.check_group("ids", &got);

    // The off-link analyzer's copies went to the gateway: at the router they still carry the
    // broker's MAC as source, the router's as destination, TTL 64 (one less at a3, checked above).
    let (broker, router_host, a3) = (
        run.lab.host("broker"),
        run.lab.host("router"),
        run.lab.host("a3"),
    );
    let via_router: Vec<_> = tunnels_of(&router.finish(), Encap::Vxlan)
        .unwrap()
        .into_iter()
        .filter(|t| t.ip_destination == a3.v4())
        .collect();
    assert_eq!(
        via_router.len(),
        delivery.ports["a3"].len(),
        "every copy to a3 passed the router"
    );
    for t in &via_router {
        assert_eq!(
            (t.eth_source, t.eth_destination, t.ttl),
            (broker.mac, router_host.mac, 64),
            "a copy to a3 leaves the broker for its gateway"
        );
    }

    after(&run, &got);
    let stopped = run.stop();
    for port in ANALYZERS {
        assert_eq!(
            stopped.port_count(port, "copies"),
            delivery.ports[port].len() as u64,
            "{port}: copies counted == copies received"
        );
        assert_eq!(stopped.port_count(port, "egress_truncated"), 0, "{port}");
    }
    if let Some(ended) = &stopped.broker {
        assert_eq!(
            outcome_count(&ended.summary, "delivered"),
            sent.packets,
            "every mirrored packet delivered"
        );
        assert!(
            outcome_count(&ended.summary, "control") > 0,
            "the peer's ARP request went to the kernel side"
        );
    }
    Some(())
}

#[test]
fn three_analyzers_one_behind_the_gateway() {
    three_analyzers("vx", Middle::Broker, |_, _| {});
}

#[test]
fn harness_three_analyzers_kernel_stand_in() {
    three_analyzers("vxk", Middle::StandIn, |_, _| {});
}
