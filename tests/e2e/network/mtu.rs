//! A copy that would not fit the via port's MTU is cut to fit and counted, never fragmented.
//!
//! The uplink `up` (MTU 1500, `kernel = "none"`: the broker answers ARP and ping itself) sends
//! to a4 as VXLAN and as ERSPAN II, both over IPv4: the largest inner frame that fits is
//! 1500 − 20 − 16 = 1464 bytes, so the sample's longer frames (up to 1518 bytes) arrive cut to
//! 1464, each cut copy counted in `egress_truncated` of its tool port, and ERSPAN's T bit set on
//! exactly the cut copies. The lan carries 1600 bytes, so the input arrives whole.

use super::scenario::{Scenario, config_text};
use super::traffic::Middle;

fn cut_to_fit(tag: &str, middle: Middle) {
    let Some(mut run) = Scenario::start(
        tag,
        middle,
        |lab| {
            let a4 = lab.host("a4").ipv4;
            config_text(
                lab,
                &[
                    (
                        "cut",
                        vec![format!(
                            r#"{{ name = "cut-vxlan", tunnel = "vxlan", remote = "{a4}", via = "up" }}"#
                        )],
                    ),
                    (
                        "cut-erspan",
                        vec![format!(
                            r#"{{ name = "cut-erspan", tunnel = "erspan2", remote = "{a4}", via = "up", session_id = 5 }}"#
                        )],
                    ),
                ],
                Some("none"),
            )
        },
        &["cut-vxlan", "cut-erspan"],
    ) else {
        return;
    };
    let expect = run.expect("cut-vxlan");
    assert_eq!(expect.max_inner, 1464, "1500 − IPv4 20 − UDP 8 − VXLAN 8");
    let longer = run
        .input
        .packets
        .iter()
        .filter(|p| p.inner.len() > expect.max_inner)
        .count() as u64;
    assert!(longer > 0, "the sample has frames to cut");

    let (_, got) = run.send_and_receive(&["a4"], "");
    // Each frame checked cut to 1464 bytes, ERSPAN's T bit on exactly those.
    run.check_group("cut", &got);
    run.check_group("cut-erspan", &got);
    let received = &got["a4"].outer;
    let biggest = received.iter().map(Vec::len).max().unwrap_or(0);
    assert_eq!(biggest, 14 + 1500, "the largest copy fills the MTU exactly");

    if matches!(middle, Middle::Broker) {
        let uplink = run.lab.host("uplink").v4();
        assert_eq!(
            run.lab.ping("a4", uplink, 3),
            3,
            "the uplink (kernel = \"none\") answers ping itself"
        );
    }
    let stopped = run.stop();
    for port in ["cut-vxlan", "cut-erspan"] {
        assert_eq!(
            stopped.port_count(port, "egress_truncated"),
            longer,
            "{port}: every cut copy counted"
        );
    }
}

#[test]
fn copies_longer_than_the_mtu_are_cut_and_counted() {
    cut_to_fit("mtu", Middle::Broker);
}

#[test]
fn harness_copies_cut_to_the_mtu_kernel_stand_in() {
    cut_to_fit("mtuk", Middle::StandIn);
}
