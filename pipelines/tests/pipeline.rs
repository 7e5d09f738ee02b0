//! The whole burst path on byte buffers: outcomes, fan-out, slicing, balance, dedup, accounting.

use std::sync::Arc;
use std::time::Duration;

use config::fixtures;
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use pipelines::testing::{CollectSink, aws_vxlan, inner_tcp4, inner_udp6, v4, v6};
use pipelines::{Outcome, PacketBuf, Reason, VecBuf};

struct Harness {
    plan: Plan,
    pipeline: Pipeline,
    counters: Arc<WorkerCounters>,
}

impl Harness {
    fn new(toml: &str) -> Harness {
        Harness::with_live(toml, &[])
    }

    fn with_live(toml: &str, live: &[bool]) -> Harness {
        let config = fixtures::config(toml);
        let counters = Arc::new(WorkerCounters::new(&config));
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::links(live),
            Box::new([counters.clone()]),
        );
        let dedup = config
            .dedup
            .as_ref()
            .and_then(|d| Dedup::for_settings(d, Some(7)));
        Harness {
            pipeline: Pipeline::new(0, &plan, dedup),
            plan,
            counters,
        }
    }

    fn run_at(&mut self, now_ns: u64, frames: &[Vec<u8>]) -> CollectSink<VecBuf> {
        let mut pkts: Vec<Option<VecBuf>> = frames.iter().map(|f| Some(VecBuf::new(f))).collect();
        let mut sink = CollectSink::default();
        self.pipeline.run(&self.plan, now_ns, &mut pkts, &mut sink);
        assert!(
            pkts.iter().all(Option::is_none),
            "every packet must leave the burst"
        );
        sink
    }

    fn run(&mut self, frames: &[Vec<u8>]) -> CollectSink<VecBuf> {
        self.run_at(1_000_000, frames)
    }

    fn outcome(&self, o: Outcome) -> u64 {
        self.counters.outcome_count(o)
    }

    /// rx == Σ outcomes, and every copy is accounted on its port.
    fn assert_accounting(&self, sink: &CollectSink<VecBuf>) {
        let outcomes: u64 = Outcome::all().map(|o| self.outcome(o)).sum();
        assert_eq!(self.counters.rx_packets.get(), outcomes, "rx == Σ outcomes");
        let copies: u64 = self
            .counters
            .ports
            .iter()
            .map(|p| p.copies.get() - p.no_buffer.get())
            .sum();
        assert_eq!(
            copies,
            sink.delivered.len() as u64,
            "copies == packets given to the sink"
        );
    }
}

fn tcp_a_to_b(seq: u32) -> Vec<u8> {
    inner_tcp4(v4("10.0.1.10"), v4("192.0.2.7"), 40000, 443, seq, b"hello")
}

#[test]
fn delivers_the_inner_frame_without_the_tunnel() {
    let mut h = Harness::new(fixtures::MINIMAL);
    let inner = tcp_a_to_b(1);
    let sink = h.run(&[aws_vxlan(v4("10.0.1.10"), 1, &inner)]);
    assert_eq!(sink.delivered.len(), 1);
    assert_eq!(sink.delivered[0].0, 0);
    assert_eq!(sink.delivered[0].1.to_vec(), inner);
    assert_eq!(h.outcome(Outcome::Delivered), 1);
    h.assert_accounting(&sink);
}

#[test]
fn every_packet_ends_in_exactly_one_outcome() {
    let mut h = Harness::new(fixtures::MINIMAL);
    let inner = tcp_a_to_b(1);
    let good = aws_vxlan(v4("10.0.1.10"), 1, &inner);
    let unknown_vni = aws_vxlan(v4("10.0.1.10"), 99, &inner);
    let mut no_i_flag = good.clone();
    no_i_flag[42] = 0; // VXLAN flags byte: 14 (Ethernet) + 20 (IPv4) + 8 (UDP)
    let runt = good[..10].to_vec();
    let frames = vec![
        good.clone(),
        unknown_vni,
        inner.clone(),
        no_i_flag,
        runt,
        good,
    ];
    let sink = h.run(&frames);
    assert_eq!(h.outcome(Outcome::Delivered), 2);
    assert_eq!(h.outcome(Outcome::UnknownSession), 1);
    assert_eq!(h.outcome(Outcome::NotTunnel), 1);
    assert_eq!(h.outcome(Outcome::Malformed(Reason::VxlanNoVni)), 1);
    assert_eq!(h.outcome(Outcome::Malformed(Reason::EthernetTruncated)), 1);
    assert_eq!(sink.discarded, 4);
    h.assert_accounting(&sink);
}

#[test]
fn fan_out_gives_each_group_a_copy_and_slices_only_where_asked() {
    let mut h = Harness::new(fixtures::TWO_SESSIONS);
    let inner = inner_tcp4(
        v4("10.0.2.20"),
        v4("192.0.2.7"),
        40000,
        443,
        1,
        &[0xAB; 200],
    );
    let sink = h.run(&[aws_vxlan(v4("10.0.2.20"), 202, &inner)]);
    assert_eq!(sink.delivered.len(), 2);
    let to_a: Vec<_> = sink.delivered.iter().filter(|(p, _)| *p < 2).collect();
    let to_b: Vec<_> = sink.delivered.iter().filter(|(p, _)| *p == 2).collect();
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_b.len(), 1);
    assert_eq!(to_a[0].1.to_vec(), inner, "group a gets the whole frame");
    assert_eq!(
        to_b[0].1.to_vec(),
        inner[..64].to_vec(),
        "group b gets the first 64 bytes"
    );
    assert_eq!(h.counters.groups[1].sliced.get(), 1);
    assert_eq!(h.counters.groups[0].sliced.get(), 0);
    h.assert_accounting(&sink);
}

#[test]
fn flow_balance_sends_both_directions_to_one_port() {
    let mut h = Harness::new(fixtures::TWO_SESSIONS);
    for i in 0..200u16 {
        let client = [10, 0, 1, (i % 250) as u8];
        let server = v4("192.0.2.7");
        let out = inner_tcp4(client, server, 30000 + i, 443, 1, b"q");
        let back = inner_tcp4(server, client, 443, 30000 + i, 1, b"r");
        let sink = h.run(&[
            aws_vxlan(v4("10.0.1.10"), 101, &out),
            aws_vxlan(v4("10.0.1.10"), 101, &back),
        ]);
        assert_eq!(sink.delivered.len(), 2);
        assert_eq!(
            sink.delivered[0].0, sink.delivered[1].0,
            "flow {i}: both directions on one port"
        );
    }
    let ports: Vec<u64> = h.counters.ports[..2]
        .iter()
        .map(|p| p.copies.get())
        .collect();
    assert!(
        ports.iter().all(|&c| c > 100),
        "200 flows spread over both ports: {ports:?}"
    );
}

const SOURCE_BALANCE: &str = r#"
[broker]
name = "test"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "s"
vni = 5
tools = ["ids"]
[[tool_group]]
name = "ids"
balance = "source"
ports = [{ name = "i-1", device = "net_null1" }, { name = "i-2", device = "net_null2" }, { name = "i-3", device = "net_null3" }]
"#;

#[test]
fn source_balance_keeps_each_mirror_source_on_one_port() {
    let mut h = Harness::new(SOURCE_BALANCE);
    let mut port_of = std::collections::HashMap::new();
    for round in 0..20u32 {
        for eni in 1..=30u8 {
            let inner = inner_tcp4(
                [10, 0, 9, eni],
                v4("192.0.2.1"),
                1000 + round as u16,
                80,
                round,
                b"x",
            );
            let sink = h.run(&[aws_vxlan([10, 0, 9, eni], 5, &inner)]);
            let port = sink.delivered[0].0;
            assert_eq!(*port_of.entry(eni).or_insert(port), port, "ENI {eni} moved");
        }
    }
    let used: std::collections::HashSet<_> = port_of.values().collect();
    assert_eq!(used.len(), 3, "30 sources use all 3 ports");
}

#[test]
fn round_robin_takes_turns_over_live_ports() {
    let toml = SOURCE_BALANCE.replace("\"source\"", "\"round-robin\"");
    let mut h = Harness::with_live(&toml, &[true, false, true]);
    let inner = tcp_a_to_b(1);
    let frames: Vec<_> = (0..6)
        .map(|_| aws_vxlan(v4("10.0.1.10"), 5, &inner))
        .collect();
    let sink = h.run(&frames);
    let ports: Vec<u16> = sink.delivered.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports, vec![0, 2, 0, 2, 0, 2]);
}

#[test]
fn no_live_port_is_an_outcome() {
    let mut h = Harness::with_live(SOURCE_BALANCE, &[false, false, false]);
    let sink = h.run(&[aws_vxlan(v4("10.0.1.10"), 5, &tcp_a_to_b(1))]);
    assert!(sink.delivered.is_empty());
    assert_eq!(h.outcome(Outcome::NoLivePort), 1);
    assert_eq!(h.counters.groups[0].no_live_port.get(), 1);
    h.assert_accounting(&sink);
}

const BOTH_ENDS: &str = r#"
[broker]
name = "test"
[[ingress]]
name = "in"
device = "net_null0"
[dedup]
window = "50ms"
capacity = 4096
[[session]]
name = "client-eni"
vni = 101
tools = ["ids", "pcap"]
[[session]]
name = "server-eni"
vni = 102
tools = ["ids"]
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "i-1", device = "net_null1" }, { name = "i-2", device = "net_null2" }]
[[tool_group]]
name = "pcap"
dedup = false
ports = [{ name = "p-1", device = "net_null3" }]
"#;

/// The same inner packet as seen by the two mirrored ends: the TTL differs (one hop between),
/// and so does the IPv4 header checksum.
fn both_ends(seq: u32) -> (Vec<u8>, Vec<u8>) {
    let at_client = inner_tcp4(
        v4("10.0.1.10"),
        v4("10.0.2.20"),
        40000,
        5432,
        seq,
        b"select 1",
    );
    let mut at_server = at_client.clone();
    at_server[14 + 8] -= 1; // TTL
    at_server[14 + 10] = at_server[14 + 10].wrapping_add(1); // checksum byte (ignored by the key)
    (
        aws_vxlan(v4("10.0.1.10"), 101, &at_client),
        aws_vxlan(v4("10.0.2.20"), 102, &at_server),
    )
}

#[test]
fn dedup_removes_the_copy_from_the_other_end_within_the_window() {
    let mut h = Harness::new(BOTH_ENDS);
    let (first, second) = both_ends(1);
    let sink = h.run_at(1_000_000, &[first, second]);
    // First copy: ids + pcap. Second copy: ids says duplicate; the server session has no other group.
    assert_eq!(sink.delivered.len(), 2);
    assert_eq!(h.outcome(Outcome::Delivered), 1);
    assert_eq!(h.outcome(Outcome::Duplicate), 1);
    assert_eq!(h.counters.groups[0].duplicates.get(), 1);
    h.assert_accounting(&sink);

    // After the window, the same bytes are a new packet (a retransmission, say).
    let (first, _) = both_ends(1);
    let sink = h.run_at(
        1_000_000 + Duration::from_millis(51).as_nanos() as u64,
        &[first],
    );
    assert_eq!(sink.delivered.len(), 2);

    // A different packet is never a duplicate.
    let (other, _) = both_ends(2);
    let sink = h.run_at(
        1_000_000 + Duration::from_millis(52).as_nanos() as u64,
        &[other],
    );
    assert_eq!(sink.delivered.len(), 2);
}

#[test]
fn round_robin_turns_go_to_copies_not_to_duplicates() {
    // Both ends mirrored: every packet arrives twice in a row, the second copy a duplicate.
    // Only delivered copies take a turn, so the group still alternates between its ports.
    let toml = BOTH_ENDS.replace("\"flow\"", "\"round-robin\"");
    let mut h = Harness::new(&toml);
    let frames: Vec<Vec<u8>> = (1..=8)
        .flat_map(|seq| {
            let (first, second) = both_ends(seq);
            [first, second]
        })
        .collect();
    let sink = h.run(&frames);
    assert_eq!(h.outcome(Outcome::Duplicate), 8);
    let ids_ports: Vec<u16> = sink
        .delivered
        .iter()
        .map(|(p, _)| *p)
        .filter(|&p| p != 2)
        .collect();
    assert_eq!(ids_ports, vec![0, 1, 0, 1, 0, 1, 0, 1]);
    h.assert_accounting(&sink);
}

const FILTERED: &str = r#"
[broker]
name = "test"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "s"
vni = 7
tools = ["g"]
filter = "web"
source_ips = ["10.0.1.10"]
[[filter]]
name = "web"
[[filter.rule]]
number = 10
action = "accept"
direction = "egress"
protocol = "tcp"
dst_ports = "443"
[[filter.rule]]
number = 20
action = "accept"
protocol = "udp"
[[tool_group]]
name = "g"
ports = [{ name = "g-1", device = "net_null1" }]
"#;

#[test]
fn filters_decide_with_direction_and_count_rule_hits() {
    let mut h = Harness::new(FILTERED);
    let egress_https = tcp_a_to_b(1);
    let ingress_https = inner_tcp4(v4("192.0.2.7"), v4("10.0.1.10"), 40000, 443, 1, b"x");
    let dns6 = inner_udp6(v6("fd00::1"), v6("fd00::2"), 5353, 53, b"q");
    let sink = h.run(&[
        aws_vxlan(v4("10.0.1.10"), 7, &egress_https),
        aws_vxlan(v4("10.0.1.10"), 7, &ingress_https),
        aws_vxlan(v4("10.0.1.10"), 7, &dns6),
    ]);
    assert_eq!(sink.delivered.len(), 2);
    assert_eq!(h.outcome(Outcome::Filtered), 1);
    let hits = &h.counters.filters[0];
    assert_eq!(hits.rules.get(0).unwrap().get(), 1);
    assert_eq!(hits.rules.get(1).unwrap().get(), 1);
    assert_eq!(hits.default.get(), 1);
    assert_eq!(h.counters.sessions[0].filtered.get(), 1);
    h.assert_accounting(&sink);
}

#[test]
fn multi_segment_packets_are_delivered_whole() {
    let mut h = Harness::new(fixtures::MINIMAL);
    let inner = inner_tcp4(v4("10.0.1.10"), v4("192.0.2.7"), 1, 2, 3, &[0x5A; 8000]);
    let frame = aws_vxlan(v4("10.0.1.10"), 1, &inner);
    let segments: Vec<Vec<u8>> = frame.chunks(2048).map(<[u8]>::to_vec).collect();
    let mut pkts = vec![Some(VecBuf::from_segments(segments))];
    let mut sink = CollectSink::default();
    h.pipeline.run(&h.plan, 0, &mut pkts, &mut sink);
    assert_eq!(sink.delivered.len(), 1);
    assert!(sink.delivered[0].1.segments() > 1);
    assert_eq!(sink.delivered[0].1.to_vec(), inner);
}
