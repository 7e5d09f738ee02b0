//! Addressed ports, uplinks and tunnel tool ports (analyzers reached over the network): what is
//! accepted, what it becomes, and every mistake refused at its key.

mod support;

use std::net::IpAddr;

use config::*;
use support::*;

/// The interface of the network analyzers, as users write it.
const NETWORK: &str = r#"[broker]
name = "aws"
health = "0.0.0.0:8080"

[[ingress]]
name = "eni"
device = "0000:00:06.0"
address = ["10.20.5.10/24", "2600:1f18:5::10/64"]
gateway = ["10.20.5.1", "fe80::1"]
mtu = 9001
kernel = "tap"

[[uplink]]
name = "eni2"
device = "0000:00:07.0"
address = ["10.20.6.10/24"]
gateway = ["10.20.6.1"]
kernel = "tap"

[decap]
allowed_sources = ["10.0.0.0/8"]

[[session]]
name = "web"
vni = 101
tools = ["suricata"]

[[tool_group]]
name = "suricata"
balance = "flow"
ports = [
  { name = "suricata-1", tunnel = "vxlan", remote = "10.20.7.11", via = "eni" },
  { name = "suricata-2", tunnel = "vxlan", remote = "10.20.7.12", via = "eni", vni = 77 },
  { name = "zeek-1", tunnel = "geneve", remote = "2600:1f18:7::21", via = "eni" },
  { name = "arkime-1", tunnel = "l2gre", remote = "10.20.7.31", via = "eni2", key = 9 },
  { name = "legacy-1", tunnel = "erspan2", remote = "10.20.7.41", via = "eni2", session_id = 5 },
  { name = "local-1", tunnel = "vxlan", remote = "10.20.5.99", via = "eni" },
  { name = "tap-1", device = "0000:00:08.0" },
]
"#;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_documented_interface_is_understood() {
    let config = accepted(NETWORK);
    assert_eq!(config.broker.health, Some("0.0.0.0:8080".parse().unwrap()));
    let eni = config.ingress[0].addressing.as_ref().unwrap();
    assert_eq!(eni.ipv4, Some("10.20.5.10/24".parse().unwrap()));
    assert_eq!(eni.ipv6, Some("2600:1f18:5::10/64".parse().unwrap()));
    assert_eq!(eni.gateway_v4, Some("10.20.5.1".parse().unwrap()));
    assert_eq!(eni.gateway_v6, Some("fe80::1".parse().unwrap()));
    assert_eq!(eni.kernel, Kernel::Tap);
    assert_eq!(config.uplinks.len(), 1);
    assert_eq!(config.uplinks[0].addressing.ipv6, None);

    let tunnel = |name: &str| {
        config
            .tool_ports
            .iter()
            .find(|p| p.name == name)
            .and_then(ToolPort::tunnel)
            .unwrap_or_else(|| panic!("{name} is a tunnel port"))
            .clone()
    };
    let s1 = tunnel("suricata-1");
    assert_eq!(
        (s1.encapsulation, s1.remote, s1.dst_port, s1.vni),
        (
            Encapsulation::Vxlan,
            ip("10.20.7.11"),
            4789,
            TunnelVni::Session
        )
    );
    assert_eq!(s1.via, AddressedPortId::Ingress(IngressId(0)));
    assert_eq!(s1.next_hop, ip("10.20.5.1"), "off the subnet: the gateway");
    assert_eq!(
        tunnel("suricata-2").vni,
        TunnelVni::Fixed(Vni::new(77).unwrap())
    );
    let zeek = tunnel("zeek-1");
    assert_eq!((zeek.dst_port, zeek.next_hop), (6081, ip("fe80::1")));
    let arkime = tunnel("arkime-1");
    assert_eq!(arkime.via, AddressedPortId::Uplink(UplinkId(0)));
    assert_eq!((arkime.key, arkime.next_hop), (Some(9), ip("10.20.6.1")));
    assert_eq!(tunnel("legacy-1").erspan_session, ErspanSession::Fixed(5));
    assert_eq!(
        tunnel("local-1").next_hop,
        ip("10.20.5.99"),
        "on the subnet: the analyzer itself"
    );
    let tap = config
        .tool_ports
        .iter()
        .find(|p| p.name == "tap-1")
        .unwrap();
    assert_eq!(tap.device().unwrap().as_str(), "0000:00:08.0");
    assert_eq!(config.warnings, Vec::<String>::new());
}

#[test]
fn overheads_and_the_largest_inner_frame_per_encapsulation() {
    let config = accepted(NETWORK);
    let overhead = |name: &str| {
        let t = config
            .tool_ports
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .tunnel()
            .unwrap()
            .clone();
        (t.overhead(), t.max_inner_len(1500))
    };
    // Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
    assert_eq!(overhead("suricata-1"), (50, 1464));
    // Outer Ethernet 14 + IPv6 40 + UDP 8 + GENEVE 8 + option 4 + 8.
    assert_eq!(overhead("zeek-1"), (82, 1432));
    // Outer Ethernet 14 + IPv4 20 + GRE 4 + key 4.
    assert_eq!(overhead("arkime-1"), (42, 1472));
    // Outer Ethernet 14 + IPv4 20 + GRE with sequence 8 + ERSPAN II 8.
    assert_eq!(overhead("legacy-1"), (50, 1464));
}

#[test]
fn check_describes_ports_addresses_and_what_fits() {
    let text = accepted(NETWORK).describe();
    for expected in [
        "health checks: http://0.0.0.0:8080/healthz",
        "address 10.20.5.10/24, 2600:1f18:5::10/64, gateway 10.20.5.1, fe80::1; kernel side on a tap interface",
        "eni2",
        "(sends only, device MTU)",
        "suricata-1  vxlan to 10.20.7.11 (UDP 4789, VNI of the session) via eni, next hop 10.20.5.1; adds 50 bytes, inner frames up to 8965 bytes fit MTU 9001",
        "arkime-1    l2gre to 10.20.7.31 (key 9) via eni2, next hop 10.20.6.1; adds 42 bytes, inner frames up to 1472 bytes fit MTU 1500, the usual device MTU",
        "legacy-1    erspan2 to 10.20.7.41 (session id 5)",
        "local-1     vxlan to 10.20.5.99 (UDP 4789, VNI of the session) via eni; adds",
        "tap-1       0000:00:08.0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_tool_port_is_a_device_or_a_tunnel() {
    let text = NETWORK.replace(
        r#"{ name = "tap-1", device = "0000:00:08.0" }"#,
        r#"{ name = "tap-1", device = "0000:00:08.0", tunnel = "vxlan" }"#,
    );
    assert_refused_at(
        &text,
        "\"vxlan\" }",
        0,
        "tool_group[0] (\"suricata\").ports[6] (\"tap-1\").tunnel",
        "a device (cabled) or a tunnel",
    );
    let text = NETWORK.replace(
        r#"{ name = "tap-1", device = "0000:00:08.0" }"#,
        r#"{ name = "tap-1", device = "0000:00:08.0", remote = "10.0.0.1" }"#,
    );
    assert_refused_at(
        &text,
        "\"10.0.0.1\"",
        0,
        "tool_group[0] (\"suricata\").ports[6] (\"tap-1\").remote",
        "remote belongs to a tunnel port",
    );
    let text = NETWORK.replace(r#", remote = "10.20.7.31""#, "");
    assert_refused_at(
        &text,
        "\"l2gre\"",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").tunnel",
        "a tunnel needs remote",
    );
    let text = NETWORK.replace(
        r#"remote = "10.20.7.31", via = "eni2", "#,
        r#"remote = "10.20.7.31", "#,
    );
    assert_refused_at(
        &text,
        "\"l2gre\"",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").tunnel",
        "a tunnel needs via",
    );
    let text = NETWORK.replace("tunnel = \"l2gre\"", "tunnel = \"gre\"");
    assert_refused_at(
        &text,
        "\"gre\"",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").tunnel",
        "unknown variant `gre`, expected one of `vxlan`, `geneve`, `l2gre`, `erspan2`",
    );
}

#[test]
fn options_belong_to_their_encapsulation() {
    let text = NETWORK.replace(
        "via = \"eni2\", key = 9",
        "via = \"eni2\", key = 9, vni = 333",
    );
    assert_refused_at(
        &text,
        "333",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").vni",
        "vni is not a setting of l2gre (only of vxlan and geneve)",
    );
    let text = NETWORK.replace(
        "via = \"eni\", vni = 77",
        "via = \"eni\", vni = 77, key = 4242",
    );
    assert_refused_at(
        &text,
        "4242",
        0,
        "tool_group[0] (\"suricata\").ports[1] (\"suricata-2\").key",
        "key is not a setting of vxlan (only of l2gre)",
    );
    let text = NETWORK.replace("key = 9", "key = 9, session_id = 222");
    assert_refused_at(
        &text,
        "222",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").session_id",
        "session_id is not a setting of l2gre (only of erspan2)",
    );
    let text = NETWORK.replace("session_id = 5", "session_id = 1024");
    assert_refused_at(
        &text,
        "1024",
        0,
        "tool_group[0] (\"suricata\").ports[4] (\"legacy-1\").session_id",
        "out of range",
    );
    let text = NETWORK.replace("vni = 77", "vni = \"sessions\"");
    assert_refused_at(
        &text,
        "\"sessions\"",
        0,
        "tool_group[0] (\"suricata\").ports[1] (\"suricata-2\").vni",
        "a VNI (0..=16777215) or \"session\"",
    );
}

#[test]
fn via_must_own_an_address_of_the_remotes_family() {
    let text = NETWORK.replace(
        "remote = \"10.20.7.31\", via = \"eni2\"",
        "remote = \"2600:1f18:7::31\", via = \"eni2\"",
    );
    assert_refused_at(
        &text,
        "\"eni2\", key",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").via",
        "eni2 has no IPv6 address",
    );
    let text = NETWORK.replace("via = \"eni2\", key = 9", "via = \"eni3\", key = 9");
    assert_refused_at(
        &text,
        "\"eni3\"",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").via",
        "unknown ingress or uplink port \"eni3\" (known: eni, eni2)",
    );
    let text = minimal_with(
        "[[tool_group]]\nname = \"net\"\nports = [{ name = \"n-1\", tunnel = \"vxlan\", remote = \"10.9.9.9\", via = \"mirror0\" }]\n",
    )
    .replace("tools = [\"ids\"]", "tools = [\"ids\", \"net\"]");
    assert_refused_at(
        &text,
        "\"mirror0\" }",
        0,
        "tool_group[1] (\"net\").ports[0] (\"n-1\").via",
        "ingress \"mirror0\" has no address",
    );
}

#[test]
fn remotes_must_be_reachable_analyzers() {
    let text = NETWORK.replace("\"10.20.7.41\"", "\"10.20.6.10\"");
    assert_refused_at(
        &text,
        "\"10.20.6.10\", via",
        0,
        "tool_group[0] (\"suricata\").ports[4] (\"legacy-1\").remote",
        "10.20.6.10 is the broker's own address",
    );
    let text = NETWORK.replace("\"10.20.7.41\"", "\"224.0.0.5\"");
    assert_refused_at(
        &text,
        "\"224.0.0.5\"",
        0,
        "tool_group[0] (\"suricata\").ports[4] (\"legacy-1\").remote",
        "not an analyzer's address",
    );
    let text = NETWORK.replace("gateway = [\"10.20.6.1\"]\n", "");
    assert_refused_at(
        &text,
        "\"10.20.7.31\"",
        0,
        "tool_group[0] (\"suricata\").ports[3] (\"arkime-1\").remote",
        "10.20.7.31 is not on the subnet of eni2 (10.20.6.10) and eni2 has no IPv4 gateway",
    );
}

#[test]
fn addresses_gateways_and_kernel_sides() {
    let text = NETWORK.replace(
        "address = [\"10.20.6.10/24\"]",
        "address = [\"10.20.6.10/24\", \"10.20.6.11/24\"]",
    );
    assert_refused_at(
        &text,
        "\"10.20.6.11/24\"",
        0,
        "uplink[0] (\"eni2\").address[1]",
        "a second IPv4 address",
    );
    let text = NETWORK.replace("\"10.20.6.10/24\"", "\"10.20.5.10/24\"");
    assert_refused_at(
        &text,
        "\"10.20.5.10/24\"",
        1,
        "uplink[0] (\"eni2\").address[0]",
        "10.20.5.10 is already the address of another port",
    );
    let text = NETWORK.replace("\"10.20.6.10/24\"", "\"10.20.6.10\"");
    assert_refused_at(
        &text,
        "\"10.20.6.10\"",
        0,
        "uplink[0] (\"eni2\").address[0]",
        "has no prefix length",
    );
    let text = NETWORK.replace("\"10.20.6.10/24\"", "\"10.20.6.0/24\"");
    assert_refused_at(
        &text,
        "\"10.20.6.0/24\"",
        0,
        "uplink[0] (\"eni2\").address[0]",
        "10.20.6.0 is the network address of 10.20.6.0/24",
    );
    let text = NETWORK.replace("gateway = [\"10.20.6.1\"]", "gateway = [\"10.20.9.1\"]");
    assert_refused_at(
        &text,
        "\"10.20.9.1\"",
        0,
        "uplink[0] (\"eni2\").gateway[0]",
        "gateway 10.20.9.1 is not a host of the port's subnet 10.20.6.0/24",
    );
    let text = NETWORK.replace("gateway = [\"10.20.6.1\"]", "gateway = [\"fe80::1\"]");
    assert_refused_at(
        &text,
        "\"fe80::1\"]\nkernel = \"tap\"\n\n[decap]",
        0,
        "uplink[0] (\"eni2\").gateway[0]",
        "an IPv6 gateway, but the port has no IPv6 address",
    );
    let text = NETWORK.replace(
        "gateway = [\"10.20.5.1\", \"fe80::1\"]",
        "gateway = [\"10.20.5.1\", \"2600:1f19::1\"]",
    );
    assert_refused_at(
        &text,
        "\"2600:1f19::1\"",
        0,
        "ingress[0] (\"eni\").gateway[1]",
        "neither link-local (fe80::/10) nor on the port's subnet 2600:1f18:5::/64",
    );
    let text = minimal_with("").replace(
        "device = \"net_pcap0,rx_pcap=in.pcap\"",
        "device = \"net_pcap0,rx_pcap=in.pcap\"\nkernel = \"tap\"",
    );
    assert_refused_at(
        &text,
        "\"tap\"",
        0,
        "ingress[0] (\"mirror0\").kernel",
        "this port has no address",
    );
    let text = NETWORK.replace("kernel = \"tap\"\n\n[decap]", "kernel = \"kni\"\n\n[decap]");
    assert_refused_at(
        &text,
        "\"kni\"",
        0,
        "uplink[0] (\"eni2\").kernel",
        "expected one of `none`, `tap`, `virtio-user`",
    );
    let text = NETWORK.replace("address = [\"10.20.6.10/24\"]\n", "");
    assert_refused_at(
        &text,
        "[[uplink]]",
        0,
        "uplink[0] (\"eni2\")",
        "missing field `address`",
    );
}

#[test]
fn a_kernel_interface_takes_the_ports_name_which_linux_limits() {
    let text = NETWORK
        .replace("name = \"eni2\"", "name = \"uplink-to-analyzers\"")
        .replace("via = \"eni2\"", "via = \"uplink-to-analyzers\"");
    assert_refused_at(
        &text,
        "\"tap\"",
        1,
        "uplink[0] (\"uplink-to-analyzers\").kernel",
        "Linux names have at most 15 characters: \"uplink-to-analyzers\" has 19",
    );
}

#[test]
fn the_health_listener_is_not_the_metrics_endpoint() {
    let text = NETWORK.replace("health = \"0.0.0.0:8080\"", "health = \"127.0.0.1:9477\"");
    assert_refused_at(
        &text,
        "\"127.0.0.1:9477\"",
        0,
        "broker.health",
        "cannot share 127.0.0.1:9477 with the metrics endpoint",
    );
    let text = NETWORK.replace("health = \"0.0.0.0:8080\"", "health = \"8080\"");
    assert_refused_at(
        &text,
        "\"8080\"",
        0,
        "broker.health",
        "not a socket address",
    );
}

#[test]
fn a_vxlan_port_other_than_4789_is_warned_about() {
    let config = accepted(&NETWORK.replace("vni = 77", "vni = 77, dst_port = 8472"));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("Arkime decodes VXLAN on 4789 only"),
        "{:?}",
        config.warnings
    );
}
