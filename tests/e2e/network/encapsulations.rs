//! GENEVE, L2GRE and ERSPAN II, and VXLAN over IPv6 with a fixed VNI: four tool groups of one
//! port each, so each analyzer receives every packet of the sample in input order, and every
//! field of every copy is read by the test's decoder and by tshark's dissectors:
//!
//! - `zeek` GENEVE over IPv6 to a3, behind the router (neighbour discovery of the IPv6
//!   gateway): VNI of the session, protocol 0x6558, the broker's option (class 0xFFF0, type 1:
//!   session VNI, direction from the session's `source_ips`, FNV-1a of the broker's name), the
//!   UDP checksum computed;
//! - `arkime` L2GRE to a2 with key 9;
//! - `legacy` ERSPAN II to a1: session id = session VNI mod 1024, En 3, the sequence number
//!   going up by one per copy;
//! - `fixed` VXLAN over IPv6 to a1 with `vni = 77`: decapsulated by a1's kernel, which refuses
//!   IPv6 VXLAN without a correct UDP checksum.

use super::scenario::{Scenario, config_text};
use super::traffic::Middle;

fn four_encapsulations(tag: &str, middle: Middle) {
    let Some(mut run) = Scenario::start(
        tag,
        middle,
        |lab| {
            let (a1, a2, a3) = (lab.host("a1"), lab.host("a2"), lab.host("a3"));
            let port = |name: &str, rest: String| vec![format!("{{ name = \"{name}\", {rest} }}")];
            config_text(
                lab,
                &[
                    (
                        "zeek",
                        port(
                            "zeek-1",
                            format!(r#"tunnel = "geneve", remote = "{}", via = "eni""#, a3.ipv6),
                        ),
                    ),
                    (
                        "arkime",
                        port(
                            "arkime-1",
                            format!(
                                r#"tunnel = "l2gre", remote = "{}", via = "eni", key = 9"#,
                                a2.ipv4
                            ),
                        ),
                    ),
                    (
                        "legacy",
                        port(
                            "legacy-1",
                            format!(r#"tunnel = "erspan2", remote = "{}", via = "eni""#, a1.ipv4),
                        ),
                    ),
                    (
                        "fixed",
                        port(
                            "fixed-1",
                            format!(
                                r#"tunnel = "vxlan", remote = "{}", via = "eni", vni = 77"#,
                                a1.ipv6
                            ),
                        ),
                    ),
                ],
                None,
            )
        },
        &["zeek-1", "arkime-1", "legacy-1", "fixed-1"],
    ) else {
        return;
    };
    let (_, got) = run.send_and_receive(&["a1", "a2", "a3"], "");
    let all = run.input.packets.len();
    for group in ["zeek", "arkime", "legacy", "fixed"] {
        let delivery = run.check_group(group, &got);
        let carried: usize = delivery.ports.values().map(Vec::len).sum();
        assert_eq!(carried, all, "{group} received the whole sample");
    }
    let stopped = run.stop();
    for port in ["zeek-1", "arkime-1", "legacy-1", "fixed-1"] {
        assert_eq!(stopped.port_count(port, "copies"), all as u64, "{port}");
        assert_eq!(stopped.port_count(port, "egress_truncated"), 0, "{port}");
    }
}

#[test]
fn geneve_l2gre_erspan_and_vxlan_over_ipv6_field_by_field() {
    four_encapsulations("enc", Middle::Broker);
}

#[test]
fn harness_four_encapsulations_kernel_stand_in() {
    four_encapsulations("enck", Middle::StandIn);
}
