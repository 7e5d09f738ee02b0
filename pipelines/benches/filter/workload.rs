//! The workload of the filter bench: random filters shaped like real mirror filters, and bursts
//! of packets aimed at them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use config::{Action, Direction, Filter, PortRange, Rule};
use ipnet::IpNet;
use pipelines::FlowKey;
use pipelines::flow::ip_proto;

pub const BURST: usize = 32;
pub const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// Deterministic, so every run benches the same filters.
pub use pipelines::testing::SplitMix64 as Rng;

const WELL_KNOWN_PORTS: [u16; 13] = [
    22, 25, 53, 80, 123, 443, 3306, 5432, 6379, 8080, 8443, 9200, 27017,
];

fn v4_address(rng: &mut Rng) -> Ipv4Addr {
    let random = rng.next_u64() as u32;
    let bits = rng.weighted(&[
        (60, 0x0A00_0000 | (random & 0x00FF_FFFF)), // 10.0.0.0/8
        (20, 0xAC10_0000 | (random & 0x000F_FFFF)), // 172.16.0.0/12
        (10, 0xC0A8_0000 | (random & 0x0000_FFFF)), // 192.168.0.0/16
        (10, random),                               // the Internet
    ]);
    Ipv4Addr::from(bits)
}

fn v6_address(rng: &mut Rng) -> Ipv6Addr {
    // A few /56 VPC blocks under one provider /32, random below.
    let vpc = u128::from(rng.next_u64() % 16) << 72;
    Ipv6Addr::from((0x2600_1f00_u128 << 96) | vpc | u128::from(rng.next_u64()))
}

fn cidr(rng: &mut Rng, v6: bool) -> IpNet {
    let net = if v6 {
        let prefix = rng.weighted(&[(5, 40), (15, 48), (20, 56), (40, 64), (20, 128)]);
        IpNet::new(v6_address(rng).into(), prefix)
    } else {
        let prefix = rng.weighted(&[
            (1, 8),
            (1, 12),
            (5, 16),
            (10, 20),
            (35, 24),
            (18, 28),
            (30, 32),
        ]);
        IpNet::new(v4_address(rng).into(), prefix)
    };
    net.expect("prefix within the family's length").trunc()
}

/// A rule as operators write them: about an address block (source, destination or both), most
/// often for one protocol and service port, often for one direction.
fn realistic_rule(rng: &mut Rng, number: u16) -> Rule {
    let v6 = rng.chance(15);
    let (src_cidr, dst_cidr) = match rng.weighted(&[(35, 0), (35, 1), (30, 2)]) {
        0 => (Some(cidr(rng, v6)), None),
        1 => (None, Some(cidr(rng, v6))),
        _ => (Some(cidr(rng, v6)), Some(cidr(rng, v6))),
    };
    let icmp = if v6 { ip_proto::ICMPV6 } else { ip_proto::ICMP };
    let protocol = rng.weighted(&[
        (45, Some(ip_proto::TCP)),
        (25, Some(ip_proto::UDP)),
        (5, Some(icmp)),
        (25, None),
    ]);
    let transport = matches!(protocol, Some(ip_proto::TCP | ip_proto::UDP));
    let dst_ports = (transport && rng.chance(60)).then(|| {
        if rng.chance(70) {
            let port = WELL_KNOWN_PORTS[(rng.next_u64() % WELL_KNOWN_PORTS.len() as u64) as usize];
            PortRange {
                first: port,
                last: port,
            }
        } else {
            let (first, last) = rng.weighted(&[
                (1, (1024, 65535)),
                (1, (8000, 8999)),
                (1, (30000, 32767)),
                (1, (49152, 65535)),
            ]);
            PortRange { first, last }
        }
    });
    let src_ports = (transport && rng.chance(10)).then(|| {
        let (first, last) = rng.weighted(&[(3, (1024, 65535)), (1, (53, 53))]);
        PortRange { first, last }
    });
    Rule {
        number,
        action: rng.weighted(&[(60, Action::Accept), (40, Action::Reject)]),
        direction: rng.weighted(&[
            (30, Some(Direction::Ingress)),
            (30, Some(Direction::Egress)),
            (40, None),
        ]),
        protocol,
        src_cidr,
        dst_cidr,
        src_ports,
        dst_ports,
        description: None,
    }
}

/// Specific rules, then 1 % of broad rules (no CIDR), rounded down, at the end, as operators
/// write them: catch-alls last, since a broad rule early would shadow everything behind it. The
/// 10-rule filter has none: a short filter of specific rules is the common small filter, and it
/// is the one that costs least per packet (most packets then find no rule about their
/// addresses), so it is the honest base of the 1,000-to-10 ratio.
pub fn realistic_filter(rng: &mut Rng, rule_count: usize) -> Filter {
    let broad = rule_count / 100;
    let rules = (1..=rule_count)
        .map(|number| {
            let mut rule = realistic_rule(rng, u16::try_from(number).expect("rule count fits u16"));
            if number > rule_count - broad {
                rule.src_cidr = None;
                rule.dst_cidr = None;
            }
            rule
        })
        .collect();
    Filter {
        name: format!("bench-{rule_count}"),
        default: Action::Reject,
        rules,
    }
}

fn address_in(rng: &mut Rng, net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(net) => {
            let host = rng.next_u64() as u32 & u32::from(net.hostmask());
            Ipv4Addr::from(u32::from(net.network()) | host).into()
        }
        IpNet::V6(net) => {
            let random = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            Ipv6Addr::from(u128::from(net.network()) | (random & u128::from(net.hostmask()))).into()
        }
    }
}

/// Addresses no rule names (CGNAT space, the IPv6 documentation prefix).
fn unused_address(rng: &mut Rng, v6: bool) -> IpAddr {
    let net: IpNet = if v6 { "2001:db8::/32" } else { "100.64.0.0/10" }
        .parse()
        .expect("literal");
    address_in(rng, net)
}

fn port_in(rng: &mut Rng, ports: Option<PortRange>, otherwise: u16) -> u16 {
    match ports {
        Some(PortRange { first, last }) => {
            first + (rng.next_u64() % (u64::from(last - first) + 1)) as u16
        }
        None => otherwise,
    }
}

/// A packet built to match `rule` (an earlier rule may still match it first).
fn packet_for(rng: &mut Rng, rule: &Rule) -> (Option<FlowKey>, Option<Direction>) {
    let v6 = matches!(rule.src_cidr.or(rule.dst_cidr), Some(IpNet::V6(_))) || rng.chance(15);
    let mut address = |net: Option<IpNet>| match net {
        Some(net) => address_in(rng, net),
        None if v6 => v6_address(rng).into(),
        None => v4_address(rng).into(),
    };
    let (src, dst) = (address(rule.src_cidr), address(rule.dst_cidr));
    let protocol = rule.protocol.unwrap_or(ip_proto::TCP);
    let key = if matches!(protocol, ip_proto::TCP | ip_proto::UDP) {
        let ephemeral = 32768 + (rng.next_u64() % 28232) as u16;
        let service = WELL_KNOWN_PORTS[(rng.next_u64() % WELL_KNOWN_PORTS.len() as u64) as usize];
        let src_port = port_in(rng, rule.src_ports, ephemeral);
        let dst_port = port_in(rng, rule.dst_ports, service);
        FlowKey::with_ports(src, dst, protocol, src_port, dst_port)
    } else {
        FlowKey::without_ports(src, dst, protocol)
    };
    let direction = rule.direction.or_else(|| {
        rng.weighted(&[
            (40, Some(Direction::Ingress)),
            (40, Some(Direction::Egress)),
            (20, None),
        ])
    });
    (Some(key), direction)
}

/// A packet from the address space the rules are about, not aimed at any rule.
fn random_packet(rng: &mut Rng, unused_space: bool) -> (Option<FlowKey>, Option<Direction>) {
    let v6 = rng.chance(15);
    let mut address = || match (unused_space, v6) {
        (true, _) => unused_address(rng, v6),
        (false, true) => v6_address(rng).into(),
        (false, false) => v4_address(rng).into(),
    };
    let (src, dst) = (address(), address());
    let protocol = rng.weighted(&[(60, ip_proto::TCP), (30, ip_proto::UDP), (10, 0)]);
    let key = if protocol == 0 {
        let icmp = if v6 { ip_proto::ICMPV6 } else { ip_proto::ICMP };
        FlowKey::without_ports(src, dst, icmp)
    } else {
        let service = WELL_KNOWN_PORTS[(rng.next_u64() % WELL_KNOWN_PORTS.len() as u64) as usize];
        let ephemeral = 32768 + (rng.next_u64() % 28232) as u16;
        let dst_port = if rng.chance(70) {
            service
        } else {
            rng.next_u64() as u16
        };
        FlowKey::with_ports(src, dst, protocol, ephemeral, dst_port)
    };
    let direction = rng.weighted(&[
        (40, Some(Direction::Ingress)),
        (40, Some(Direction::Egress)),
        (20, None),
    ]);
    (Some(key), direction)
}

/// 32 packets: 12 aimed at rules anywhere in the filter, 10 from the rules' address space, 10 from
/// addresses no rule names (they reach the broad rules or the default: the longest path).
pub fn varied_burst(rng: &mut Rng, filter: &Filter) -> Vec<(Option<FlowKey>, Option<Direction>)> {
    let mut burst: Vec<_> = (0..12)
        .map(|_| {
            let target = &filter.rules[(rng.next_u64() % filter.rules.len() as u64) as usize];
            packet_for(rng, target)
        })
        .collect();
    burst.extend((0..10).map(|_| random_packet(rng, false)));
    burst.extend((0..10).map(|_| random_packet(rng, true)));
    // Interleave the kinds, as traffic would.
    for index in (1..burst.len()).rev() {
        burst.swap(index, (rng.next_u64() % (index as u64 + 1)) as usize);
    }
    burst
}
