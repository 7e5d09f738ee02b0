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

use std::net::IpAddr;

use super::scenario::{Scenario, config_text};
use super::topology::Netlab;
use super::traffic::Middle;

/// Group (and port `<group>-1`), its analyzer's address, and the rest of the port's entry.
fn ports(lab: &Netlab) -> [(&'static str, IpAddr, &'static str); 4] {
    let (a1, a2, a3) = (lab.host("a1"), lab.host("a2"), lab.host("a3"));
    [
        ("zeek", a3.v6(), r#"tunnel = "geneve""#),
        ("arkime", a2.v4(), r#"tunnel = "l2gre", key = 9"#),
        ("legacy", a1.v4(), r#"tunnel = "erspan2""#),
        ("fixed", a1.v6(), r#"tunnel = "vxlan", vni = 77"#),
    ]
}

const PORTS: [&str; 4] = ["zeek-1", "arkime-1", "legacy-1", "fixed-1"];

fn four_encapsulations(tag: &str, middle: Middle) {
    let config = |lab: &Netlab| {
        let groups: Vec<(&str, Vec<String>)> = ports(lab)
            .into_iter()
            .map(|(group, remote, rest)| {
                let port = format!(
                    r#"{{ name = "{group}-1", remote = "{remote}", via = "eni", {rest} }}"#
                );
                (group, vec![port])
            })
            .collect();
        config_text(lab, &groups, None)
    };
    let Some(mut run) = Scenario::start(tag, middle, config, &PORTS) else {
        return;
    };
    let (_, got) = run.send_and_receive(&["a1", "a2", "a3"], "");
    let all = run.input.packets.len();
    for (group, _, _) in ports(&run.lab) {
        let delivery = run.check_group(group, &got);
        let carried: usize = delivery.ports.values().map(Vec::len).sum();
        assert_eq!(carried, all, "{group} received the whole sample");
    }
    let stopped = run.stop();
    for port in PORTS {
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
