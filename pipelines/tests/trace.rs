//! The observed pipeline: trace records say what each stage decided, the hooks see every
//! outcome and every copy, and watching changes nothing of what the pipeline does.

use std::net::IpAddr;
use std::sync::Arc;

use config::{Action, Balance, Direction, fixtures};
use pipelines::counters::WorkerCounters;
use pipelines::fuzzing::PLAIN;
use pipelines::observe::{CopyTrace, DecapTrace, DedupTrace, TraceRecord, TxResult};
use pipelines::pipeline::{BURST, Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts, TunnelLink};
use pipelines::stage::balance::{flow_hash, source_hash};
use pipelines::stage::decap::TunnelKind;
use pipelines::testing::{
    CollectSink, TracingSink, aws_vxlan, ethernet, inner_tcp4, ipv4, udp, v4,
};
use pipelines::{FlowKey, Outcome, PacketBuf, Reason, VecBuf};

/// The MAC of the fuzzed config's addressed ingress port.
const INGRESS_MAC: [u8; 6] = [0x02, 0xf0, 0x22, 0, 0, 0x10];

/// A pipeline on the fuzz config (four balance modes, a filter, dedup, slices, tunnel ports
/// resolved), and a second one, identical, to compare the unobserved run with.
struct Rig {
    plan: Plan,
    counters: Arc<WorkerCounters>,
    pipeline: Pipeline,
}

impl Rig {
    fn new() -> Rig {
        let config = fixtures::config(PLAIN);
        let counters = Arc::new(WorkerCounters::new(&config));
        let facts = PortFacts {
            tunnels: config
                .tool_ports
                .iter()
                .map(|p| {
                    p.tunnel().map(|_| TunnelLink {
                        source_mac: INGRESS_MAC,
                        next_hop_mac: [0x02, 0xf0, 0x22, 0, 0, 0x01],
                        mtu: 1500,
                    })
                })
                .collect(),
            ingress_macs: vec![Some(INGRESS_MAC)],
            ..PortFacts::default()
        };
        let plan = Plan::build(&config, 1, &facts, Box::new([counters.clone()]));
        let dedup = config
            .dedup
            .as_ref()
            .and_then(|d| Dedup::for_settings(d, Some(3)));
        let pipeline = Pipeline::new(0, &plan, dedup).on_ingress(0, &plan);
        Rig {
            plan,
            counters,
            pipeline,
        }
    }

    /// Runs `frames` (at most a burst) observed, every packet traced.
    fn traced(&mut self, frames: &[Vec<u8>]) -> TracingSink<CollectSink<VecBuf>> {
        assert!(frames.len() <= BURST);
        let mut pkts: Vec<Option<VecBuf>> = frames.iter().map(|f| Some(VecBuf::new(f))).collect();
        let mut sink = TracingSink::new(CollectSink::default());
        sink.begin(&pkts);
        self.pipeline
            .run_observed(&self.plan, 1_000_000_000, &mut pkts, &mut sink);
        assert!(pkts.iter().all(Option::is_none));
        sink
    }

    fn plain(&mut self, frames: &[Vec<u8>]) -> CollectSink<VecBuf> {
        let mut pkts: Vec<Option<VecBuf>> = frames.iter().map(|f| Some(VecBuf::new(f))).collect();
        let mut sink = CollectSink::default();
        self.pipeline
            .run(&self.plan, 1_000_000_000, &mut pkts, &mut sink);
        sink
    }
}

fn addr(a: &str) -> IpAddr {
    a.parse().unwrap()
}

/// Session "edge" (VNI 103): groups ids (flow), rec (source, slice 64), rr (round-robin, slice
/// 200, no dedup), net (flow, tunnel ports).
fn edge_packet(seq: u32) -> (Vec<u8>, Vec<u8>) {
    let inner = inner_tcp4(
        v4("10.0.3.30"),
        v4("192.0.2.7"),
        40000,
        443,
        seq,
        &[0x5a; 300],
    );
    (aws_vxlan(v4("10.0.3.30"), 103, &inner), inner)
}

#[test]
fn a_delivered_packet_names_every_stage() {
    let mut rig = Rig::new();
    let (frame, inner) = edge_packet(1);
    let sink = rig.traced(std::slice::from_ref(&frame));
    let r: &TraceRecord = &sink.records[0];
    assert_eq!(r.len as usize, frame.len());
    match r.decap {
        DecapTrace::Tunnelled {
            layers,
            depth,
            stripped,
        } => {
            assert_eq!(depth, 1);
            let layer = layers[0].unwrap();
            assert_eq!(
                (layer.kind, layer.source, layer.vni),
                (TunnelKind::Vxlan, addr("10.0.3.30"), 103)
            );
            assert!(layers[1].is_none());
            assert_eq!(stripped as usize, frame.len() - inner.len());
        }
        other => panic!("decap {other:?}"),
    }
    assert_eq!(r.inner_len as usize, inner.len());
    assert_eq!((r.session, r.vni), (Some(2), Some(103)));
    let flow = FlowKey::with_ports(addr("10.0.3.30"), addr("192.0.2.7"), 6, 40000, 443);
    assert_eq!(r.flow, Some(flow));
    assert_eq!(r.direction, Some(Direction::Egress));
    assert_eq!(r.filter, None, "session edge has no filter");
    assert_eq!(r.outcome, Some(Outcome::Delivered));
    assert_eq!(sink.outcomes[0], Some(Outcome::Delivered));

    let groups = r.groups();
    let names: Vec<(u16, Balance)> = groups.iter().map(|g| (g.group, g.balance)).collect();
    assert_eq!(
        names,
        [
            (0, Balance::Flow),
            (1, Balance::Source),
            (2, Balance::RoundRobin),
            (4, Balance::Flow)
        ]
    );
    assert_eq!(groups[0].key, flow_hash(&flow));
    assert_eq!(groups[1].key, source_hash(addr("10.0.3.30"), 103));
    assert_eq!(groups[2].key, 0, "the first turn of round-robin");
    assert_eq!(groups[0].dedup, DedupTrace::New);
    assert_eq!(
        groups[2].dedup,
        DedupTrace::NotChecked,
        "rr has dedup = false"
    );
    assert_eq!(groups[0].sliced_to, None);
    assert_eq!(groups[1].sliced_to, Some(64));
    assert_eq!(groups[2].sliced_to, Some(200));
    // Every copy the sink got is one the record names, on the port it names.
    assert_eq!(sink.inner.delivered.len(), 4);
    for (index, group, port, len) in &sink.deliveries[..sink.delivered] {
        assert_eq!(*index, 0);
        let g = groups.iter().find(|g| g.group == *group).unwrap();
        assert_eq!(g.port, Some(*port));
        match g.copy {
            CopyTrace::Queued {
                len: queued,
                encapsulation,
                egress_truncated,
                tx,
            } => {
                assert_eq!(queued as usize, *len);
                assert_eq!(tx, TxResult::Pending, "the worker fills in the TX result");
                assert!(!egress_truncated);
                // Group net's ports are tunnels: the whole inner frame behind their headers.
                assert_eq!(encapsulation.is_some(), *group == 4, "group {group}");
                let expected = match (encapsulation, g.sliced_to) {
                    (Some(overhead), _) => inner.len() + usize::from(overhead),
                    (None, Some(slice)) => slice as usize,
                    (None, None) => inner.len(),
                };
                assert_eq!(*len, expected, "group {group}");
            }
            other => panic!("group {group}: {other:?}"),
        }
    }
    let sent: Vec<(u16, usize)> = sink
        .inner
        .delivered
        .iter()
        .map(|(port, pkt)| (*port, pkt.pkt_len()))
        .collect();
    let seen: Vec<(u16, usize)> = sink.deliveries[..sink.delivered]
        .iter()
        .map(|(_, _, port, len)| (*port, *len))
        .collect();
    assert_eq!(sent, seen, "the hook sees each copy as the sink gets it");
}

#[test]
fn a_filtered_packet_names_the_rule_or_the_default() {
    let mut rig = Rig::new();
    // Session "web" (VNI 101), filter "web": default reject; rule 100 accepts TCP, 200 accepts
    // egress UDP to 53, 300 rejects ICMP.
    let eni = v4("10.0.1.10");
    let tcp = inner_tcp4(eni, v4("192.0.2.7"), 40000, 443, 1, b"x");
    let icmp = ethernet(
        0x0800,
        &ipv4(eni, v4("192.0.2.7"), 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    let udp80 = ethernet(
        0x0800,
        &ipv4(eni, v4("192.0.2.7"), 17, &udp(5000, 80, b"q")),
    );
    let dns = ethernet(
        0x0800,
        &ipv4(eni, v4("192.0.2.53"), 17, &udp(5000, 53, b"q")),
    );
    let sink = rig.traced(&[
        aws_vxlan(eni, 101, &tcp),
        aws_vxlan(eni, 101, &icmp),
        aws_vxlan(eni, 101, &udp80),
        aws_vxlan(eni, 101, &dns),
    ]);
    let verdict = |i: usize| {
        let r = &sink.records[i];
        let f = r.filter.expect("session web has a filter");
        assert_eq!(f.filter, 0);
        (f.rule, f.action, r.outcome.unwrap())
    };
    assert_eq!(verdict(0), (Some(0), Action::Accept, Outcome::Delivered));
    assert_eq!(verdict(1), (Some(2), Action::Reject, Outcome::Filtered));
    assert_eq!(verdict(2), (None, Action::Reject, Outcome::Filtered));
    assert_eq!(verdict(3), (Some(1), Action::Accept, Outcome::Delivered));
    assert_eq!(sink.records[3].direction, Some(Direction::Egress));
    // A filtered packet reaches no group.
    assert!(sink.records[1].groups().is_empty());
}

#[test]
fn refused_packets_say_where_they_stopped() {
    let mut rig = Rig::new();
    let inner = inner_tcp4(v4("10.0.1.10"), v4("192.0.2.7"), 1, 2, 3, b"x");
    let unknown = aws_vxlan(v4("10.0.1.10"), 4242, &inner);
    let mut no_vni = aws_vxlan(v4("10.0.1.10"), 101, &inner);
    no_vni[42] = 0;
    let denied = aws_vxlan(v4("192.0.2.1"), 101, &inner);
    let sink = rig.traced(&[unknown, no_vni, denied, inner]);
    let r = &sink.records;
    assert!(matches!(r[0].decap, DecapTrace::Tunnelled { depth: 1, .. }));
    assert_eq!((r[0].vni, r[0].session), (Some(4242), None));
    assert_eq!(r[0].outcome, Some(Outcome::UnknownSession));
    assert_eq!(r[1].decap, DecapTrace::Refused);
    assert_eq!(r[1].outcome, Some(Outcome::Malformed(Reason::VxlanNoVni)));
    assert_eq!(r[2].decap, DecapTrace::Refused);
    assert_eq!(r[2].outcome, Some(Outcome::SourceDenied));
    assert_eq!(r[3].decap, DecapTrace::Refused);
    assert_eq!(r[3].outcome, Some(Outcome::NotTunnel));
    for (i, record) in r.iter().take(4).enumerate() {
        assert_eq!(sink.outcomes[i], record.outcome, "packet {i}");
    }
}

#[test]
fn a_duplicate_and_geneve_carrying_vxlan() {
    let mut rig = Rig::new();
    // Session "db" (VNI 102, group ids with dedup): the same inner packet from both ends.
    let inner = inner_tcp4(v4("10.0.2.20"), v4("10.0.2.21"), 5432, 40000, 9, b"row");
    let first = aws_vxlan(v4("10.0.2.20"), 102, &inner);
    let second = aws_vxlan(v4("10.0.2.21"), 102, &inner);
    // Session "gwlb" (VNI 300): GENEVE from a load balancer around an AWS VXLAN packet.
    let vxlan = aws_vxlan(v4("10.0.3.30"), 300, &inner);
    let mut geneve = vec![0, 0, 0x65, 0x58, 0, 0, 0x07, 0];
    geneve.extend_from_slice(&vxlan);
    let gwlb = ethernet(
        0x0800,
        &ipv4(
            v4("172.16.0.5"),
            v4("10.0.9.10"),
            17,
            &udp(1234, 6081, &geneve),
        ),
    );
    let sink = rig.traced(&[first, second, gwlb]);
    let r = &sink.records;
    assert_eq!(r[0].groups()[0].dedup, DedupTrace::New);
    assert_eq!(r[1].groups()[0].dedup, DedupTrace::Duplicate);
    assert_eq!(r[1].groups()[0].copy, CopyTrace::None);
    assert_eq!(r[1].outcome, Some(Outcome::Duplicate));
    match r[2].decap {
        DecapTrace::Tunnelled { layers, depth, .. } => {
            assert_eq!(depth, 2);
            let (outer, inner_layer) = (layers[0].unwrap(), layers[1].unwrap());
            assert_eq!(
                (outer.kind, outer.source, outer.vni),
                (TunnelKind::Geneve, addr("172.16.0.5"), 7)
            );
            assert_eq!(
                (inner_layer.kind, inner_layer.source, inner_layer.vni),
                (TunnelKind::Vxlan, addr("10.0.3.30"), 300)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((r[2].vni, r[2].session), (Some(300), Some(5)));
}

#[test]
fn the_addressed_ports_own_traffic_is_traced_as_control() {
    let mut rig = Rig::new();
    // An ARP request for the port's own address, broadcast.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 10, 0, 9, 1]);
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 9, 10]);
    let sink = rig.traced(&[arp]);
    assert_eq!(sink.inner.punted.len(), 1);
    assert_eq!(sink.records[0].decap, DecapTrace::NotReached);
    assert_eq!(sink.records[0].outcome, Some(Outcome::Control));
}

#[test]
fn only_the_traced_packets_get_records_and_watching_changes_nothing() {
    let frames: Vec<Vec<u8>> = (0..BURST as u32)
        .map(|i| match i % 4 {
            0 => edge_packet(i).0,
            1 => aws_vxlan(
                v4("10.0.1.10"),
                101,
                &inner_tcp4(
                    v4("10.0.1.10"),
                    v4("192.0.2.9"),
                    1000 + i as u16,
                    80,
                    i,
                    b"a",
                ),
            ),
            2 => aws_vxlan(v4("10.0.1.10"), 9, b"short"),
            _ => aws_vxlan(
                v4("10.0.2.20"),
                102,
                &inner_tcp4(v4("10.0.2.20"), v4("10.0.2.21"), 5432, 1, i / 8, b"dup"),
            ),
        })
        .collect();
    let mut watched = Rig::new();
    let mut plain = Rig::new();
    for round in 0..3 {
        let mut pkts: Vec<Option<VecBuf>> = frames.iter().map(|f| Some(VecBuf::new(f))).collect();
        let mut sink = TracingSink::new(CollectSink::default());
        sink.traced = 0b1010_0101;
        sink.begin(&pkts);
        let before: Vec<u64> = Outcome::all()
            .map(|o| watched.counters.outcome_count(o))
            .collect();
        watched
            .pipeline
            .run_observed(&watched.plan, 1_000_000_000, &mut pkts, &mut sink);
        let unwatched = plain.plain(&frames);
        for (i, record) in sink.records.iter().enumerate() {
            assert_eq!(
                record.outcome.is_some(),
                sink.traced & (1 << i) != 0,
                "round {round}, packet {i}"
            );
        }
        let copies = |delivered: &[(u16, VecBuf)]| -> Vec<(u16, Vec<u8>)> {
            delivered.iter().map(|(p, b)| (*p, b.to_vec())).collect()
        };
        assert_eq!(copies(&sink.inner.delivered), copies(&unwatched.delivered));
        assert_eq!(sink.inner.discarded, unwatched.discarded);
        assert_eq!(sink.delivered, unwatched.delivered.len());
        // Every packet's outcome was seen, and they add up to the counters.
        assert!(sink.outcomes.iter().all(Option::is_some));
        for (outcome, before) in Outcome::all().zip(before) {
            let seen = sink
                .outcomes
                .iter()
                .filter(|o| **o == Some(outcome))
                .count() as u64;
            assert_eq!(
                watched.counters.outcome_count(outcome) - before,
                seen,
                "round {round}: {outcome}"
            );
        }
    }
    assert_eq!(
        watched.counters.read(),
        plain.counters.read(),
        "observed and plain runs count the same"
    );
    for outcome in Outcome::all() {
        assert_eq!(
            watched.counters.outcome_count(outcome),
            plain.counters.outcome_count(outcome)
        );
    }
}

/// The sender rule's verdict is in the trace: a copy taken at the receiver of a connection whose
/// sender is mirrored too names the rule (`SenderWithheld`), not the window, and ends as a
/// duplicate.
#[test]
fn the_sender_rule_is_named_where_it_withholds() {
    let text = r#"
[broker]
name = "trace-sender"
[[ingress]]
name = "in"
device = "net_null0"
[decap]
allowed_sources = ["10.0.0.0/8"]
[dedup]
mode = "sender"
[[session]]
name = "e1"
vni = 301
tools = ["ids"]
source_ips = ["10.0.1.10"]
[[session]]
name = "e2"
vni = 302
tools = ["ids"]
source_ips = ["10.0.2.10"]
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }, { name = "ids-2", device = "net_null2" }]
"#;
    let config = fixtures::config(text);
    let counters = Arc::new(WorkerCounters::new(&config));
    let plan = Plan::build(
        &config,
        1,
        &PortFacts::default(),
        Box::new([counters.clone()]),
    );
    let mut pipeline = Pipeline::new(0, &plan, None).on_ingress(0, &plan);
    let inner = inner_tcp4(v4("10.0.1.10"), v4("10.0.2.10"), 40000, 443, 1, &[1; 40]);
    // The same packet as mirrored at its sender (e1) and at its receiver (e2).
    let frames = [
        aws_vxlan(v4("10.0.1.10"), 301, &inner),
        aws_vxlan(v4("10.0.2.10"), 302, &inner),
    ];
    let mut pkts: Vec<Option<VecBuf>> = frames.iter().map(|f| Some(VecBuf::new(f))).collect();
    let mut sink = TracingSink::new(CollectSink::default());
    sink.begin(&pkts);
    pipeline.run_observed(&plan, 1_000_000_000, &mut pkts, &mut sink);

    let sender = &sink.records[0];
    assert_eq!(sender.outcome, Some(Outcome::Delivered));
    assert_eq!(sender.direction, Some(Direction::Egress));
    assert_eq!(sender.groups()[0].dedup, DedupTrace::NotChecked);
    let receiver = &sink.records[1];
    assert_eq!(receiver.direction, Some(Direction::Ingress));
    assert_eq!(receiver.groups()[0].dedup, DedupTrace::SenderWithheld);
    assert_eq!(receiver.outcome, Some(Outcome::Duplicate));
    assert_eq!(sink.inner.delivered.len(), 1, "the sender's copy only");
    assert_eq!(counters.groups[0].sender_duplicates.get(), 1);
}
