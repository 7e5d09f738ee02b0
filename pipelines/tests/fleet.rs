//! De-duplication across brokers, on byte buffers: several pipelines with one config and no
//! shared state (a fleet), each fed the copies a load balancer gives it; and the fleet contract
//! that makes them agree (which port a key goes to).
//!
//! The rule every group and port keeps: a port receives a packet once if a copy keyed to it is
//! accepted by its session's filter, never twice; a round-robin group receives it once. The
//! expectation is computed here from the packets the test builds and the config: which copies
//! exist, their sessions, directions and filter verdicts, and the port each copy keys to (with
//! the balance hashes and the groups' Maglev tables, the contract pinned by the golden test
//! below).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use config::Balance;
use config::fixtures;
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use pipelines::stage::balance::{flow_hash, source_hash};
use pipelines::testing::{CollectSink, SplitMix64, aws_vxlan, ethernet, ipv4, tcp, udp};
use pipelines::{FlowKey, Outcome, VecBuf};

/// Mirrored ENIs, each its own session `e<i>` (VNI 300 + i) with address 10.0.<i>.10; the even
/// ones send to `ids`, `ark` and `rr`, the odd ones to `ids` and `rr`; every third filters.
const ENIS: u8 = 8;

fn config_text(mode: &str) -> String {
    let mut text = format!(
        "[broker]\nname = \"fleet\"\n[[ingress]]\nname = \"in\"\ndevice = \"net_null0\"\n\
         [decap]\nallowed_sources = [\"10.0.0.0/8\"]\n[dedup]\nmode = \"{mode}\"\n"
    );
    if mode != "sender" {
        text.push_str("window = \"1s\"\ncapacity = 65536\n");
    }
    for i in 0..ENIS {
        let tools = if i % 2 == 0 {
            "\"ids\", \"ark\", \"rr\""
        } else {
            "\"ids\", \"rr\""
        };
        let filter = if i % 3 == 0 {
            "filter = \"policy\"\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[session]]\nname = \"e{i}\"\nvni = {}\ntools = [{tools}]\n{filter}source_ips = [\"10.0.{i}.10\"]\n",
            300 + u32::from(i)
        ));
    }
    text.push_str(
        r#"
[[filter]]
name = "policy"
default = "accept"
[[filter.rule]]
number = 100
action = "reject"
direction = "ingress"
protocol = "udp"
[[filter.rule]]
number = 200
action = "reject"
direction = "egress"
protocol = "icmp"
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }, { name = "ids-2", device = "net_null2" }, { name = "ids-3", device = "net_null3" }]
[[tool_group]]
name = "ark"
balance = "source"
ports = [{ name = "ark-1", device = "net_null4" }, { name = "ark-2", device = "net_null5" }, { name = "ark-3", device = "net_null6" }]
[[tool_group]]
name = "rr"
balance = "round-robin"
ports = [{ name = "rr-1", device = "net_null7" }, { name = "rr-2", device = "net_null8" }]
"#,
    );
    text
}

/// Groups by index, as in the config: ids, ark, rr; tool ports 0–2, 3–5, 6–7.
const GROUP_OF_PORT: [usize; 8] = [0, 0, 0, 1, 1, 1, 2, 2];

/// One broker: a plan, a pipeline and its counters, its own dedup table if the mode has one.
struct Broker {
    plan: Plan,
    pipeline: Pipeline,
    counters: Arc<WorkerCounters>,
}

impl Broker {
    fn new(text: &str) -> Broker {
        let config = fixtures::config(text);
        let counters = Arc::new(WorkerCounters::new(&config));
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::default(),
            Box::new([counters.clone()]),
        );
        let dedup = config
            .dedup
            .as_ref()
            .and_then(|d| Dedup::for_settings(d, Some(3)));
        Broker {
            pipeline: Pipeline::new(0, &plan, dedup),
            plan,
            counters,
        }
    }

    /// Runs `frames` in bursts of `burst`; returns (port, inner frame) of every copy sent.
    fn run(&mut self, frames: &[Vec<u8>], burst: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        for chunk in frames.chunks(burst.max(1)) {
            let mut pkts: Vec<Option<VecBuf>> =
                chunk.iter().map(|f| Some(VecBuf::new(f))).collect();
            let mut sink = CollectSink::default();
            self.pipeline.run(
                &self.plan,
                Duration::from_millis(1).as_nanos() as u64,
                &mut pkts,
                &mut sink,
            );
            out.extend(sink.delivered.into_iter().map(|(p, b)| (p, b.to_vec())));
        }
        let outcomes: u64 = Outcome::all().map(|o| self.counters.outcome_count(o)).sum();
        assert_eq!(self.counters.rx_packets.get(), outcomes, "rx == Σ outcomes");
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

/// A mirrored copy: the frame, which broker the balancer gave it to, and what the test knows.
#[derive(Clone, Debug)]
struct Mirrored {
    frame: Vec<u8>,
    inner: Vec<u8>,
    broker: usize,
    session: u8,
    flow: FlowKey,
    /// Taken at the sender (else at the receiver, or the only copy of a packet to the internet).
    at_sender: bool,
    accepted: bool,
}

/// A packet of `protocol` from `src` to `dst`, identified by `id` (in its payload), as seen
/// with `ttl`; and its flow.
fn inner_packet(
    protocol: Protocol,
    src: [u8; 4],
    dst: [u8; 4],
    id: u32,
    ttl: u8,
) -> (Vec<u8>, FlowKey) {
    let payload = id.to_be_bytes();
    let (sport, dport) = match protocol {
        Protocol::Tcp => (40000 + (id % 500) as u16, 443),
        _ => (50000 + (id % 300) as u16, 53),
    };
    let (number, l4) = match protocol {
        Protocol::Tcp => (6, tcp(sport, dport, id, &payload)),
        Protocol::Udp => (17, udp(sport, dport, &payload)),
        Protocol::Icmp => (1, [&[8u8, 0, 0, 0, 0, 1, 0, 1][..], &payload].concat()),
    };
    let mut frame = ethernet(0x0800, &ipv4(src, dst, number, &l4));
    frame[14 + 8] = ttl; // the checksum goes stale: the dedup key ignores both
    let flow = match protocol {
        Protocol::Icmp => FlowKey::without_ports(src.into(), dst.into(), number),
        _ => FlowKey::with_ports(src.into(), dst.into(), number, sport, dport),
    };
    (frame, flow)
}

fn eni(i: u8) -> [u8; 4] {
    [10, 0, i, 10]
}

/// What the policy filter (every third session) does with a copy.
fn policy(session: u8, protocol: Protocol, ingress: bool) -> bool {
    session % 3 != 0
        || !matches!(
            (ingress, protocol),
            (true, Protocol::Udp) | (false, Protocol::Icmp)
        )
}

/// `packets` packets: between two ENIs (a copy at each end, each to a broker of `brokers`
/// picked at random) or to the internet (one copy).
fn traffic(rng: &mut SplitMix64, packets: u32, brokers: usize) -> Vec<Mirrored> {
    let mut copies = Vec::new();
    for id in 0..packets {
        let protocol = rng.weighted(&[(5, Protocol::Tcp), (3, Protocol::Udp), (2, Protocol::Icmp)]);
        let a = rng.below(u64::from(ENIS)) as u8;
        let mut ends = vec![a];
        let dst = if rng.chance(70) {
            let b = (a + 1 + rng.below(u64::from(ENIS) - 1) as u8) % ENIS;
            ends.push(b);
            eni(b)
        } else {
            [198, 51, 100, (id % 200) as u8 + 1]
        };
        for (n, &end) in ends.iter().enumerate() {
            let at_sender = n == 0;
            let ttl = if at_sender { 64 } else { 63 };
            let (inner, flow) = inner_packet(protocol, eni(a), dst, id, ttl);
            copies.push(Mirrored {
                frame: aws_vxlan(eni(end), 300 + u32::from(end), &inner),
                inner,
                broker: rng.below(brokers as u64) as usize,
                session: end,
                flow,
                at_sender,
                accepted: policy(end, protocol, !at_sender),
            });
        }
    }
    copies
}

/// Where a copy goes in a group: a port (hash-balanced) or the group (round-robin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Port(u16),
    Group(usize),
}

fn place(plan: &Plan, copy: &Mirrored, group: usize) -> Place {
    let g = &plan.groups[group];
    let key = match g.balance {
        Balance::Flow => flow_hash(&copy.flow),
        // The interface the copy was taken at, under its session's VNI.
        Balance::Source => {
            let interface = if copy.at_sender {
                copy.flow.src
            } else {
                copy.flow.dst
            };
            source_hash(interface, 300 + u32::from(copy.session))
        }
        _ => return Place::Group(group),
    };
    Place::Port(g.port_for_hash(key).expect("every port is live"))
}

fn tools(session: u8) -> &'static [usize] {
    if session % 2 == 0 {
        &[0, 1, 2]
    } else {
        &[0, 2]
    }
}

/// Packet id of a delivered inner frame (its last four bytes).
fn id_of(inner: &[u8]) -> u32 {
    u32::from_be_bytes(inner[inner.len() - 4..].try_into().unwrap())
}

/// (place, packet id) → the copies reaching it, by their index.
fn reaching(plan: &Plan, copies: &[Mirrored]) -> BTreeMap<(Place, u32), Vec<usize>> {
    let mut out: BTreeMap<(Place, u32), Vec<usize>> = BTreeMap::new();
    for (c, copy) in copies.iter().enumerate().filter(|(_, c)| c.accepted) {
        for &group in tools(copy.session) {
            out.entry((place(plan, copy, group), id_of(&copy.inner)))
                .or_default()
                .push(c);
        }
    }
    out
}

/// The brokers' outputs merged: (place, packet id) → the inner frames delivered there.
fn merged(outputs: &[Vec<(u16, Vec<u8>)>]) -> BTreeMap<(Place, u32), Vec<Vec<u8>>> {
    let mut out: BTreeMap<(Place, u32), Vec<Vec<u8>>> = BTreeMap::new();
    for output in outputs {
        for (port, inner) in output {
            let group = GROUP_OF_PORT[usize::from(*port)];
            let at = if group == 2 {
                Place::Group(2)
            } else {
                Place::Port(*port)
            };
            out.entry((at, id_of(inner)))
                .or_default()
                .push(inner.clone());
        }
    }
    out
}

/// Runs `copies` through `brokers` brokers (no shared state), each copy on the broker
/// `broker_of` says.
fn fleet(
    mode: &str,
    copies: &[Mirrored],
    brokers: usize,
    broker_of: impl Fn(&Mirrored) -> usize,
    burst: usize,
) -> Vec<Vec<(u16, Vec<u8>)>> {
    let text = config_text(mode);
    (0..brokers)
        .map(|b| {
            let frames: Vec<Vec<u8>> = copies
                .iter()
                .filter(|c| broker_of(c) == b)
                .map(|c| c.frame.clone())
                .collect();
            Broker::new(&text).run(&frames, burst)
        })
        .collect()
}

#[test]
fn sender_rule_gives_each_port_each_packet_once_across_brokers() {
    let plan = Broker::new(&config_text("sender")).plan;
    for seed in 1..=12u64 {
        let mut rng = SplitMix64(seed);
        let brokers = 1 + rng.below(3) as usize;
        let copies = traffic(&mut rng, 300, brokers);
        let expected = reaching(&plan, &copies);
        for mode in ["sender", "sender+window"] {
            let burst = 1 + rng.below(40) as usize;
            let got = merged(&fleet(mode, &copies, brokers, |c| c.broker, burst));
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "seed {seed}, {mode}, {brokers} brokers: the places each packet reaches"
            );
            for (key, frames) in &got {
                // Once, and the sender's copy where both reach the place.
                let reaching = &expected[key];
                let kept = reaching
                    .iter()
                    .find(|&&c| copies[c].at_sender)
                    .unwrap_or(&reaching[0]);
                assert_eq!(
                    frames,
                    &vec![copies[*kept].inner.clone()],
                    "seed {seed}, {mode}: {key:?}"
                );
            }
        }
    }
}

#[test]
fn the_window_holds_on_one_broker_and_not_across_brokers() {
    let plan = Broker::new(&config_text("window")).plan;
    let mut rng = SplitMix64(99);
    let copies = traffic(&mut rng, 400, 2);
    let expected = reaching(&plan, &copies);

    // One broker: once per place (per port, per round-robin group), whichever copy came first.
    let once = merged(&fleet("window", &copies, 1, |_| 0, 32));
    assert_eq!(
        once.iter()
            .map(|(k, f)| (*k, f.len()))
            .collect::<BTreeMap<_, _>>(),
        expected.keys().map(|k| (*k, 1)).collect(),
        "one broker: each place once"
    );

    // Two brokers: once per broker holding a copy for the place: the control for the sender rule.
    let twice = merged(&fleet("window", &copies, 2, |c| c.broker, 32));
    let wanted: BTreeMap<(Place, u32), usize> = expected
        .iter()
        .map(|(k, cs)| {
            let brokers: BTreeSet<usize> = cs.iter().map(|&c| copies[c].broker).collect();
            (*k, brokers.len())
        })
        .collect();
    let got: BTreeMap<(Place, u32), usize> = twice.iter().map(|(k, f)| (*k, f.len())).collect();
    assert_eq!(got, wanted);
    let duplicates = wanted.values().filter(|&&n| n == 2).count();
    assert!(
        duplicates > 50,
        "the window lets {duplicates} through twice across brokers"
    );
}

#[test]
fn a_source_group_dedups_per_port_so_each_end_reaches_its_own_analyzer() {
    // The lab's bug: dedup per group kept whichever copy came first for the whole group, while
    // the two copies key to two analyzers: each analyzer saw one direction of a connection.
    let mut broker = Broker::new(&config_text("window"));
    let ark = &broker.plan.groups[1];
    let port = |i: u8| ark.port_for_hash(source_hash(IpAddr::from(eni(i)), 300 + u32::from(i)));
    // Even ENIs send to `ark`: find two on different ports, and two on one port.
    let evens: Vec<u8> = (0..ENIS).step_by(2).collect();
    let apart = evens
        .iter()
        .flat_map(|&a| evens.iter().map(move |&b| (a, b)))
        .find(|&(a, b)| a != b && port(a) != port(b));
    let together = evens
        .iter()
        .flat_map(|&a| evens.iter().map(move |&b| (a, b)))
        .find(|&(a, b)| a != b && port(a) == port(b));
    let mut sent = 0;
    for (pair, ports_expected) in [(apart, 2), (together, 1)] {
        let Some((a, b)) = pair else { continue };
        sent += 1;
        // Both directions of a connection, each mirrored at both ends.
        let mut frames = Vec::new();
        for (n, (src, dst)) in [(a, b), (b, a)].into_iter().enumerate() {
            let (inner, _) = inner_packet(Protocol::Tcp, eni(src), eni(dst), 1000 + n as u32, 64);
            frames.push(aws_vxlan(eni(src), 300 + u32::from(src), &inner));
            frames.push(aws_vxlan(eni(dst), 300 + u32::from(dst), &inner));
        }
        let out = broker.run(&frames, 32);
        let ark_ports: BTreeMap<u16, usize> = out
            .iter()
            .filter(|(p, _)| GROUP_OF_PORT[usize::from(*p)] == 1)
            .fold(BTreeMap::new(), |mut m, (p, _)| {
                *m.entry(*p).or_insert(0) += 1;
                m
            });
        assert_eq!(ark_ports.len(), ports_expected, "{a}, {b}: {ark_ports:?}");
        // Each port receives both directions (each packet once).
        assert!(
            ark_ports.values().all(|&n| n == 2),
            "{a}, {b}: {ark_ports:?}"
        );
    }
    assert_eq!(sent, 2, "the config has both cases");
}

/// The fleet contract: brokers of any version send a key to the same port. This config and
/// these packets must map to these ports for ever (a change is a breaking change for fleets).
const CONTRACT: &str = r#"
[broker]
name = "contract"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "web"
vni = 4001
tools = ["ark", "ids"]
source_ips = ["10.1.0.5", "fd00:1::7"]
[[session]]
name = "db"
vni = 4002
tools = ["ark", "ids"]
source_ips = ["10.1.0.9"]
[[session]]
name = "unlisted"
vni = 4003
tools = ["ark", "ids"]
[[tool_group]]
name = "ark"
balance = "source"
ports = [{ name = "ark-1", device = "net_null1" }, { name = "ark-2", device = "net_null2" }, { name = "ark-3", device = "net_null3" }, { name = "ark-4", device = "net_null4" }]
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null5" }, { name = "ids-2", device = "net_null6" }, { name = "ids-3", device = "net_null7" }]
"#;

#[test]
fn source_keys_map_to_ports_as_the_fleet_contract_pins() {
    use pipelines::testing::{inner_tcp4, inner_udp6, v4, v6};
    let mut broker = Broker::new(CONTRACT);
    let web_out = inner_tcp4(v4("10.1.0.5"), v4("198.51.100.1"), 40001, 443, 1, b"a");
    let web_in6 = inner_udp6(v6("2001:db8::1"), v6("fd00:1::7"), 53, 40002, b"b");
    let web_to_db = inner_tcp4(v4("10.1.0.5"), v4("10.1.0.9"), 40003, 5432, 1, b"c");
    let unlisted = inner_tcp4(v4("10.9.9.9"), v4("198.51.100.2"), 40004, 80, 1, b"d");
    let frames = [
        // Keyed by the interface under the session's VNI: 10.1.0.5 / 4001.
        aws_vxlan(v4("10.1.0.5"), 4001, &web_out),
        // fd00:1::7 / 4001 (the IPv6 interface, though the outer source is IPv4).
        aws_vxlan(v4("10.1.0.5"), 4001, &web_in6),
        // The two copies of one packet: 10.1.0.5 / 4001, then 10.1.0.9 / 4002.
        aws_vxlan(v4("10.1.0.5"), 4001, &web_to_db),
        aws_vxlan(v4("10.1.0.9"), 4002, &web_to_db),
        // No source_ips: the mirror source and the VNI, 10.9.9.9 / 4003.
        aws_vxlan(v4("10.9.9.9"), 4003, &unlisted),
    ];
    let names = [
        "ark-1", "ark-2", "ark-3", "ark-4", "ids-1", "ids-2", "ids-3",
    ];
    let got: Vec<&str> = broker
        .run(&frames, 32)
        .iter()
        .map(|(port, _)| names[usize::from(*port)])
        .collect();
    assert_eq!(got, GOLDEN_PORTS);
}

/// (ark, ids) per frame, in order; without dedup, both copies of `web_to_db` are delivered.
const GOLDEN_PORTS: [&str; 10] = [
    "ark-2", "ids-2", "ark-3", "ids-2", "ark-2", "ids-3", "ark-1", "ids-3", "ark-4", "ids-2",
];
