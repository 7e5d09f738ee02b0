//! The semantics point by point (each checked on both the compiled form and the linear scan),
//! and a property test holding the two equal on random filters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use config::{Action, Direction, Filter, PortRange, Rule};
use ipnet::IpNet;
use proptest::prelude::*;

use super::{CompiledFilter, FilterVerdict, classify_linear};
use crate::flow::{FlowKey, ip_proto};

fn rule(number: u16, action: Action) -> Rule {
    Rule {
        number,
        action,
        direction: None,
        protocol: None,
        src_cidr: None,
        dst_cidr: None,
        src_ports: None,
        dst_ports: None,
        description: None,
    }
}

fn filter(default: Action, rules: Vec<Rule>) -> Filter {
    Filter {
        name: "test".into(),
        default,
        rules,
    }
}

fn net(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn ports(first: u16, last: u16) -> PortRange {
    PortRange { first, last }
}

fn tcp(src: &str, src_port: u16, dst: &str, dst_port: u16) -> FlowKey {
    FlowKey::with_ports(ip(src), ip(dst), ip_proto::TCP, src_port, dst_port)
}

fn icmp(src: &str, dst: &str) -> FlowKey {
    FlowKey::without_ports(ip(src), ip(dst), ip_proto::ICMP)
}

/// The verdict of the compiled filter, after checking that the linear scan agrees.
fn verdict(filter: &Filter, key: Option<&FlowKey>, direction: Option<Direction>) -> FilterVerdict {
    let compiled = CompiledFilter::compile(filter).classify(key, direction);
    assert_eq!(
        compiled,
        classify_linear(filter, key, direction),
        "compiled vs linear"
    );
    compiled
}

fn matched(index: u16, action: Action) -> FilterVerdict {
    FilterVerdict {
        action,
        rule: Some(index),
    }
}

fn defaulted(action: Action) -> FilterVerdict {
    FilterVerdict { action, rule: None }
}

#[test]
fn a_rule_with_a_direction_never_matches_a_packet_without_one() {
    let mut ingress = rule(10, Action::Accept);
    ingress.direction = Some(Direction::Ingress);
    let f = filter(Action::Reject, vec![ingress]);
    let key = tcp("10.0.0.1", 1234, "10.0.0.2", 80);
    assert_eq!(
        verdict(&f, Some(&key), Some(Direction::Ingress)),
        matched(0, Action::Accept)
    );
    assert_eq!(
        verdict(&f, Some(&key), Some(Direction::Egress)),
        defaulted(Action::Reject)
    );
    assert_eq!(verdict(&f, Some(&key), None), defaulted(Action::Reject));
}

#[test]
fn a_rule_without_a_direction_matches_every_direction_and_none() {
    let f = filter(Action::Reject, vec![rule(10, Action::Accept)]);
    let key = tcp("10.0.0.1", 1234, "10.0.0.2", 80);
    for direction in [None, Some(Direction::Ingress), Some(Direction::Egress)] {
        assert_eq!(
            verdict(&f, Some(&key), direction),
            matched(0, Action::Accept)
        );
    }
}

#[test]
fn a_cidr_never_matches_an_address_of_the_other_family() {
    let mut any_v4 = rule(1, Action::Accept);
    any_v4.src_cidr = Some(net("0.0.0.0/0"));
    let mut any_v6 = rule(2, Action::Reject);
    any_v6.dst_cidr = Some(net("::/0"));
    let f = filter(Action::Accept, vec![any_v4, any_v6]);
    let v4 = tcp("192.0.2.1", 1, "192.0.2.2", 2);
    let v6 = tcp("2001:db8::1", 1, "2001:db8::2", 2);
    let v4_mapped = tcp("::ffff:192.0.2.1", 1, "::ffff:192.0.2.2", 2);
    assert_eq!(verdict(&f, Some(&v4), None), matched(0, Action::Accept));
    assert_eq!(verdict(&f, Some(&v6), None), matched(1, Action::Reject));
    assert_eq!(
        verdict(&f, Some(&v4_mapped), None),
        matched(1, Action::Reject)
    );
}

#[test]
fn an_absent_cidr_matches_both_families() {
    let mut web = rule(1, Action::Accept);
    web.dst_ports = Some(ports(443, 443));
    let f = filter(Action::Reject, vec![web]);
    for key in [
        tcp("192.0.2.1", 5000, "192.0.2.2", 443),
        tcp("2001:db8::1", 5000, "::1", 443),
    ] {
        assert_eq!(verdict(&f, Some(&key), None), matched(0, Action::Accept));
    }
}

#[test]
fn a_rule_mixing_families_matches_nothing() {
    let mut mixed = rule(1, Action::Accept);
    mixed.src_cidr = Some(net("0.0.0.0/0"));
    mixed.dst_cidr = Some(net("::/0"));
    let f = filter(Action::Reject, vec![mixed]);
    for key in [
        tcp("192.0.2.1", 1, "192.0.2.2", 2),
        tcp("2001:db8::1", 1, "::1", 2),
    ] {
        assert_eq!(verdict(&f, Some(&key), None), defaulted(Action::Reject));
    }
}

#[test]
fn a_port_range_never_matches_a_packet_without_ports() {
    let mut all_ports = rule(1, Action::Reject);
    all_ports.dst_ports = Some(ports(0, u16::MAX));
    let mut all_src_ports = rule(2, Action::Reject);
    all_src_ports.src_ports = Some(ports(0, u16::MAX));
    let f = filter(Action::Accept, vec![all_ports, all_src_ports]);
    let ping = icmp("10.0.0.1", "10.0.0.2");
    assert_eq!(verdict(&f, Some(&ping), None), defaulted(Action::Accept));
    let fragment = FlowKey::without_ports(ip("10.0.0.1"), ip("10.0.0.2"), ip_proto::TCP);
    assert_eq!(
        verdict(&f, Some(&fragment), None),
        defaulted(Action::Accept)
    );
    let syn = tcp("10.0.0.1", 0, "10.0.0.2", 0);
    assert_eq!(verdict(&f, Some(&syn), None), matched(0, Action::Reject));
}

#[test]
fn a_rule_without_ports_matches_a_packet_without_ports() {
    let mut icmp_only = rule(1, Action::Accept);
    icmp_only.protocol = Some(ip_proto::ICMP);
    let f = filter(Action::Reject, vec![icmp_only]);
    assert_eq!(
        verdict(&f, Some(&icmp("10.0.0.1", "10.0.0.2")), None),
        matched(0, Action::Accept)
    );
    let key = tcp("10.0.0.1", 1, "10.0.0.2", 2);
    assert_eq!(verdict(&f, Some(&key), None), defaulted(Action::Reject));
}

#[test]
fn the_lowest_numbered_matching_rule_decides() {
    let mut web = rule(100, Action::Reject);
    web.dst_ports = Some(ports(80, 80));
    let mut subnet = rule(200, Action::Accept);
    subnet.dst_cidr = Some(net("10.0.0.0/8"));
    let catch_all = rule(300, Action::Reject);
    let f = filter(Action::Accept, vec![web, subnet, catch_all]);
    let to_web = tcp("192.0.2.1", 999, "10.1.1.1", 80);
    assert_eq!(verdict(&f, Some(&to_web), None), matched(0, Action::Reject));
    let to_ssh = tcp("192.0.2.1", 999, "10.1.1.1", 22);
    assert_eq!(verdict(&f, Some(&to_ssh), None), matched(1, Action::Accept));
    let elsewhere = tcp("192.0.2.1", 999, "192.0.2.9", 22);
    assert_eq!(
        verdict(&f, Some(&elsewhere), None),
        matched(2, Action::Reject)
    );
}

#[test]
fn no_match_gives_the_default_either_way() {
    let mut only_udp = rule(1, Action::Accept);
    only_udp.protocol = Some(ip_proto::UDP);
    let key = tcp("10.0.0.1", 1, "10.0.0.2", 2);
    for default in [Action::Accept, Action::Reject] {
        let f = filter(default, vec![only_udp.clone()]);
        assert_eq!(verdict(&f, Some(&key), None), defaulted(default));
    }
}

#[test]
fn an_empty_filter_gives_the_default() {
    for default in [Action::Accept, Action::Reject] {
        let f = filter(default, vec![]);
        let compiled = CompiledFilter::compile(&f);
        assert_eq!(compiled.rule_count(), 0);
        let key = tcp("10.0.0.1", 1, "10.0.0.2", 2);
        assert_eq!(
            verdict(&f, Some(&key), Some(Direction::Egress)),
            defaulted(default)
        );
        assert_eq!(verdict(&f, None, None), defaulted(default));
    }
}

#[test]
fn a_packet_that_is_not_ip_matches_no_rule() {
    let f = filter(Action::Reject, vec![rule(1, Action::Accept)]);
    assert_eq!(verdict(&f, None, None), defaulted(Action::Reject));
    assert_eq!(
        verdict(&f, None, Some(Direction::Ingress)),
        defaulted(Action::Reject)
    );
}

#[test]
fn the_whole_space_prefixes_include_both_ends() {
    let mut v4 = rule(1, Action::Accept);
    v4.dst_cidr = Some(net("0.0.0.0/0"));
    let mut v6 = rule(2, Action::Accept);
    v6.dst_cidr = Some(net("::/0"));
    let f = filter(Action::Reject, vec![v4, v6]);
    for (dst, index) in [
        ("0.0.0.0", 0),
        ("255.255.255.255", 0),
        ("::", 1),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1),
    ] {
        let key = icmp(dst, dst);
        assert_eq!(
            verdict(&f, Some(&key), None),
            matched(index, Action::Accept),
            "{dst}"
        );
    }
}

#[test]
fn host_prefixes_match_their_address_only() {
    let mut v4 = rule(1, Action::Accept);
    v4.src_cidr = Some(net("10.0.0.5/32"));
    let mut v6 = rule(2, Action::Accept);
    v6.src_cidr = Some(net("2001:db8::5/128"));
    let mut top = rule(3, Action::Accept);
    top.src_cidr = Some(net("255.255.255.255/32"));
    let mut bottom = rule(4, Action::Accept);
    bottom.src_cidr = Some(net("::/128"));
    let f = filter(Action::Reject, vec![v4, v6, top, bottom]);
    let expectations = [
        ("10.0.0.4", None),
        ("10.0.0.5", Some(0)),
        ("10.0.0.6", None),
        ("2001:db8::4", None),
        ("2001:db8::5", Some(1)),
        ("2001:db8::6", None),
        ("255.255.255.254", None),
        ("255.255.255.255", Some(2)),
        ("::", Some(3)),
        ("::1", None),
    ];
    for (src, index) in expectations {
        let expected = match index {
            Some(index) => matched(index, Action::Accept),
            None => defaulted(Action::Reject),
        };
        assert_eq!(
            verdict(&f, Some(&icmp(src, "192.0.2.1")), None),
            expected,
            "{src}"
        );
    }
}

#[test]
fn cidr_ranges_ignore_host_bits_and_end_at_the_broadcast_address() {
    let mut subnet = rule(1, Action::Accept);
    subnet.dst_cidr = Some(net("10.1.2.77/24"));
    let f = filter(Action::Reject, vec![subnet]);
    for (dst, inside) in [
        ("10.1.1.255", false),
        ("10.1.2.0", true),
        ("10.1.2.255", true),
        ("10.1.3.0", false),
    ] {
        let expected = if inside {
            matched(0, Action::Accept)
        } else {
            defaulted(Action::Reject)
        };
        assert_eq!(
            verdict(&f, Some(&icmp("192.0.2.1", dst)), None),
            expected,
            "{dst}"
        );
    }
}

#[test]
fn port_ranges_include_their_ends_down_to_0_and_up_to_65535() {
    let mut zero = rule(1, Action::Accept);
    zero.src_ports = Some(ports(0, 0));
    let mut top = rule(2, Action::Accept);
    top.dst_ports = Some(ports(u16::MAX, u16::MAX));
    let mut middle = rule(3, Action::Accept);
    middle.dst_ports = Some(ports(1000, 2000));
    let f = filter(Action::Reject, vec![zero, top, middle]);
    let expectations = [
        (0, 1, Some(0)),
        (1, 1, None),
        (1, u16::MAX, Some(1)),
        (1, u16::MAX - 1, None),
        (1, 999, None),
        (1, 1000, Some(2)),
        (1, 2000, Some(2)),
        (1, 2001, None),
    ];
    for (src_port, dst_port, index) in expectations {
        let expected = match index {
            Some(index) => matched(index, Action::Accept),
            None => defaulted(Action::Reject),
        };
        let key = tcp("10.0.0.1", src_port, "10.0.0.2", dst_port);
        assert_eq!(
            verdict(&f, Some(&key), None),
            expected,
            "{src_port} -> {dst_port}"
        );
    }
}

#[test]
fn protocol_must_be_equal() {
    let mut udp = rule(1, Action::Accept);
    udp.protocol = Some(ip_proto::UDP);
    let f = filter(Action::Reject, vec![udp]);
    let dns = FlowKey::with_ports(ip("10.0.0.1"), ip("10.0.0.2"), ip_proto::UDP, 5353, 53);
    assert_eq!(verdict(&f, Some(&dns), None), matched(0, Action::Accept));
    assert_eq!(
        verdict(&f, Some(&tcp("10.0.0.1", 5353, "10.0.0.2", 53)), None),
        { defaulted(Action::Reject) }
    );
}

#[test]
fn a_rule_matches_in_the_third_chunk_and_beyond_the_first_word() {
    // 1,500 rules that never match (UDP only) then one that does: the match sits in the third
    // chunk of 512 rules, past the first words of every chunk.
    let mut rules: Vec<Rule> = (1..=1500)
        .map(|number| {
            let mut never = rule(number, Action::Reject);
            never.protocol = Some(ip_proto::UDP);
            never
        })
        .collect();
    let mut last = rule(1501, Action::Accept);
    last.dst_cidr = Some(net("10.0.0.0/8"));
    rules.push(last);
    let f = filter(Action::Reject, rules);
    let key = tcp("192.0.2.1", 1, "10.9.9.9", 2);
    assert_eq!(verdict(&f, Some(&key), None), matched(1500, Action::Accept));
    let key = tcp("192.0.2.1", 1, "11.9.9.9", 2);
    assert_eq!(verdict(&f, Some(&key), None), defaulted(Action::Reject));
}

/// A deterministic generator for the large-filter test (no test may depend on chance).
use crate::testing::SplitMix64 as SplitMix;

fn random_v4_net(rng: &mut SplitMix) -> IpNet {
    let prefix = [8, 12, 16, 20, 24, 24, 28, 32, 32][rng.below(9) as usize];
    let address = Ipv4Addr::from(0x0A00_0000 | (rng.next_u64() as u32 & 0x00FF_FFFF));
    IpNet::new(address.into(), prefix).expect("prefix <= 32")
}

fn random_v6_net(rng: &mut SplitMix) -> IpNet {
    let prefix = [32, 48, 56, 64, 128][rng.below(5) as usize];
    let address = Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(rng.next_u64()) << 32);
    IpNet::new(address.into(), prefix).expect("prefix <= 128")
}

#[test]
fn ten_thousand_rules_compile_and_agree_with_the_scan() {
    let mut rng = SplitMix(10_000);
    let rules: Vec<Rule> = (1..=10_000)
        .map(|number| {
            let mut r = rule(
                number,
                if rng.below(2) == 0 {
                    Action::Accept
                } else {
                    Action::Reject
                },
            );
            let v6 = rng.below(5) == 0;
            let pick = |rng: &mut SplitMix| {
                if v6 {
                    random_v6_net(rng)
                } else {
                    random_v4_net(rng)
                }
            };
            r.src_cidr = (rng.below(3) != 0).then(|| pick(&mut rng));
            r.dst_cidr = (rng.below(3) != 0).then(|| pick(&mut rng));
            r.protocol = [None, Some(ip_proto::TCP), Some(ip_proto::UDP)][rng.below(3) as usize];
            if r.protocol.is_some() && rng.below(2) == 0 {
                let first = rng.below(65536) as u16;
                r.dst_ports = Some(ports(first, first.saturating_add(rng.below(100) as u16)));
            }
            r.direction =
                [None, Some(Direction::Ingress), Some(Direction::Egress)][rng.below(3) as usize];
            r
        })
        .collect();
    let f = filter(Action::Reject, rules);
    let started = std::time::Instant::now();
    let compiled = CompiledFilter::compile(&f);
    eprintln!(
        "compiled 10,000 rules in {:?}: {compiled:?}",
        started.elapsed()
    );
    assert_eq!(compiled.rule_count(), 10_000);
    let mut matches = 0;
    for _ in 0..500 {
        let v6 = rng.below(5) == 0;
        let address = |rng: &mut SplitMix| {
            if v6 {
                random_v6_net(rng).network()
            } else {
                random_v4_net(rng).network()
            }
        };
        let (src, dst) = (address(&mut rng), address(&mut rng));
        let protocol = [ip_proto::TCP, ip_proto::UDP, ip_proto::ICMP][rng.below(3) as usize];
        let key = if protocol == ip_proto::ICMP {
            FlowKey::without_ports(src, dst, protocol)
        } else {
            FlowKey::with_ports(
                src,
                dst,
                protocol,
                rng.next_u64() as u16,
                rng.next_u64() as u16,
            )
        };
        let direction =
            [None, Some(Direction::Ingress), Some(Direction::Egress)][rng.below(3) as usize];
        let expected = classify_linear(&f, Some(&key), direction);
        assert_eq!(
            compiled.classify(Some(&key), direction),
            expected,
            "{key:?} {direction:?}"
        );
        matches += usize::from(expected.rule.is_some());
    }
    // The sample exercises matches deep in the filter, not only the default.
    assert!(matches > 50, "only {matches} of 500 keys matched a rule");
}

// ---- property test: compiled == linear ----

/// CIDRs from a small pool, so that rules overlap, nest and share boundaries. In the IPv4
/// direct table (`direct.rs`), 10.1/16 then holds more starts than a window and is split by
/// /24: 10.1.2/24 too holds more (the tree), 10.1.5/24 fewer (a window).
const CIDR_POOL: &[&str] = &[
    "0.0.0.0/0",
    "0.0.0.0/32",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.128/25",
    "10.1.2.3/32",
    "10.1.2.9/32",
    "10.1.2.200/31",
    "10.1.2.77/24",
    "10.1.5.0/28",
    "10.255.255.255/32",
    "192.168.0.0/16",
    "255.255.255.255/32",
    "::/0",
    "::/128",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "2001:db8:1::1/128",
    "fe80::/10",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
];

/// Port ranges from a small pool, plus arbitrary ones.
fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        prop::sample::select(vec![
            ports(0, 0),
            ports(0, u16::MAX),
            ports(u16::MAX, u16::MAX),
            ports(53, 53),
            ports(80, 80),
            ports(79, 81),
            ports(443, 8443),
            ports(1024, u16::MAX),
        ]),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| ports(a.min(b), a.max(b))),
    ]
}

fn direction() -> impl Strategy<Value = Option<Direction>> {
    prop::option::of(prop_oneof![
        Just(Direction::Ingress),
        Just(Direction::Egress)
    ])
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Accept), Just(Action::Reject)]
}

fn protocol() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![
            ip_proto::ICMP,
            ip_proto::TCP,
            ip_proto::UDP,
            ip_proto::ICMPV6
        ]),
        any::<u8>(),
    ]
}

fn cidr() -> impl Strategy<Value = IpNet> {
    prop::sample::select(CIDR_POOL).prop_map(net)
}

fn arbitrary_rule() -> impl Strategy<Value = Rule> {
    (
        action(),
        direction(),
        prop::option::weighted(0.3, protocol()),
        prop::option::weighted(0.5, cidr()),
        prop::option::weighted(0.5, cidr()),
        prop::option::weighted(0.2, port_range()),
        prop::option::weighted(0.3, port_range()),
    )
        .prop_map(
            |(action, direction, protocol, src_cidr, dst_cidr, src_ports, dst_ports)| Rule {
                number: 0,
                action,
                direction,
                protocol,
                src_cidr,
                dst_cidr,
                src_ports,
                dst_ports,
                description: None,
            },
        )
}

fn arbitrary_filter() -> impl Strategy<Value = Filter> {
    (action(), prop::collection::vec(arbitrary_rule(), 0..200)).prop_map(|(default, mut rules)| {
        for (rule, number) in rules.iter_mut().zip(1..) {
            rule.number = number;
        }
        filter(default, rules)
    })
}

/// Addresses on and next to the pool's boundaries, plus arbitrary ones.
fn address() -> impl Strategy<Value = IpAddr> {
    let edges: Vec<IpAddr> = CIDR_POOL
        .iter()
        .flat_map(|text| {
            let net = net(text);
            let (network, broadcast) = (net.network(), net.broadcast());
            [network, broadcast, step(network, -1), step(broadcast, 1)]
        })
        .collect();
    prop_oneof![
        3 => prop::sample::select(edges),
        1 => any::<Ipv4Addr>().prop_map(IpAddr::V4),
        1 => any::<Ipv6Addr>().prop_map(IpAddr::V6),
    ]
}

/// `address + delta`, wrapping within its family.
fn step(address: IpAddr, delta: i8) -> IpAddr {
    match address {
        IpAddr::V4(a) => Ipv4Addr::from(u32::from(a).wrapping_add_signed(delta.into())).into(),
        IpAddr::V6(a) => Ipv6Addr::from(u128::from(a).wrapping_add_signed(delta.into())).into(),
    }
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            0, 1, 52, 53, 54, 79, 80, 81, 443, 1023, 1024, 8443, 65534, 65535
        ]),
        any::<u16>(),
    ]
}

fn arbitrary_key() -> impl Strategy<Value = Option<FlowKey>> {
    prop::option::weighted(
        0.95,
        (
            address(),
            address(),
            protocol(),
            any::<bool>(),
            port(),
            port(),
        )
            .prop_map(|(src, dst, protocol, has_ports, src_port, dst_port)| {
                if has_ports {
                    FlowKey::with_ports(src, dst, protocol, src_port, dst_port)
                } else {
                    FlowKey::without_ports(src, dst, protocol)
                }
            }),
    )
}

proptest! {
    #[test]
    fn compiled_filter_agrees_with_the_linear_scan(
        filter in arbitrary_filter(),
        packets in prop::collection::vec((arbitrary_key(), direction()), 64),
    ) {
        let compiled = CompiledFilter::compile(&filter);
        prop_assert_eq!(compiled.rule_count(), filter.rules.len());
        for (key, direction) in &packets {
            let expected = classify_linear(&filter, key.as_ref(), *direction);
            prop_assert_eq!(
                compiled.classify(key.as_ref(), *direction),
                expected,
                "key {:?} direction {:?}",
                key,
                direction
            );
        }
    }
}
