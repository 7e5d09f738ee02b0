//! The flow cache changes nothing the pipeline does. Traffic in which each inner flow comes back
//! in every session, from two mirror sources, in both directions, under the VNIs of a default
//! session and with ports that differ one field at a time (and ports 0 in whole packets and fragments), goes through a pipeline with the
//! cache and one without, twice (the second pass finds every flow cached); both give the same
//! counters and the same copies. Configs: sessions with and without `source_ips`, a filter
//! deciding by direction, protocol and ports, the four balance modes (source over three ports,
//! so that the mirror source and the VNI matter), slicing, each dedup mode, a port down.

use std::sync::Arc;
use std::time::Duration;

use config::fixtures;
use pipelines::VecBuf;
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use pipelines::stage::flow_cache::FlowCacheMode;
use pipelines::testing::{
    CollectSink, SplitMix64, aws_vxlan, ethernet, ipv4, ipv6, tcp, udp, v4, v6,
};

/// Sessions `e0`..`e3` (VNI 300 + i) mirror 10.0.i.10; `open` (VNI 400) lists no address;
/// `rest` takes every other VNI.
fn config_text(mode: &str) -> String {
    let mut text = format!(
        "[broker]\nname = \"cache\"\n[[ingress]]\nname = \"in\"\ndevice = \"net_null0\"\n\
         [decap]\nallowed_sources = [\"10.0.0.0/8\"]\ndefault_session = \"rest\"\n\
         [dedup]\nmode = \"{mode}\"\n"
    );
    if mode != "sender" {
        text.push_str("window = \"1s\"\ncapacity = 65536\n");
    }
    for i in 0..4 {
        let filter = if i % 2 == 0 {
            "filter = \"policy\"\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[session]]\nname = \"e{i}\"\nvni = {}\ntools = [\"ids\", \"ark\", \"pairs\", \"rr\"]\n\
             {filter}source_ips = [\"10.0.{i}.10\"]\n",
            300 + i
        ));
    }
    text.push_str(
        r#"
[[session]]
name = "open"
vni = 400
tools = ["ids", "ark", "rr"]
filter = "policy"
[[session]]
name = "rest"
tools = ["ark", "pairs"]
[[filter]]
name = "policy"
default = "accept"
[[filter.rule]]
number = 100
action = "reject"
direction = "ingress"
protocol = "udp"
dst_ports = "9000-9999"
[[filter.rule]]
number = 200
action = "accept"
direction = "egress"
protocol = "udp"
dst_ports = "53"
[[filter.rule]]
number = 250
action = "accept"
protocol = "udp"
dst_ports = "0-1"
[[filter.rule]]
number = 300
action = "reject"
protocol = "udp"
[[filter.rule]]
number = 400
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
name = "pairs"
balance = "ip-pair"
on_port_down = "drop"
ports = [{ name = "pairs-1", device = "net_null7" }, { name = "pairs-2", device = "net_null8" }]
[[tool_group]]
name = "rr"
balance = "round-robin"
slice = 60
ports = [{ name = "rr-1", device = "net_null9" }, { name = "rr-2", device = "net_null10" }]
"#,
    );
    text
}

/// `frame` (Ethernet, IPv4) as a fragment of its packet: flags and offset `flags_offset` (0x2000:
/// the first, more fragments; 1: a later one, at 8 bytes), its header checksum patched.
fn fragment(mut frame: Vec<u8>, flags_offset: u16) -> Vec<u8> {
    let ip = &mut frame[14..34];
    ip[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    ip[10..12].fill(0);
    let sum = pipelines::testing::checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// Inner frames among the mirrored addresses and others, in both directions, whose flows differ
/// one field at a time (the destination port alone, the protocol alone, the family).
fn inner_frames() -> Vec<Vec<u8>> {
    let hosts = [
        "10.0.0.10",
        "10.0.1.10",
        "10.0.2.10",
        "192.0.2.7",
        "198.51.100.9",
    ];
    let mut frames = Vec::new();
    for (i, a) in hosts.iter().enumerate() {
        for b in &hosts[i + 1..] {
            for (x, y) in [(v4(a), v4(b)), (v4(b), v4(a))] {
                for (sport, dport) in [
                    (40001, 53),
                    (40001, 443),
                    (40001, 9053),
                    (40002, 443),
                    (40003, 443),
                ] {
                    frames.push(ethernet(0x0800, &ipv4(x, y, 17, &udp(sport, dport, b"u"))));
                    frames.push(ethernet(
                        0x0800,
                        &ipv4(x, y, 6, &tcp(sport, dport, 1, b"t")),
                    ));
                }
                frames.push(ethernet(0x0800, &ipv4(x, y, 1, &[8, 0, 0, 0, 0, 1, 0, 1])));
                // Ports 0 in a whole packet, in a first fragment (balanced by the address pair)
                // and a later one (no ports read: the filter's port rules do not see it).
                let zero = ethernet(0x0800, &ipv4(x, y, 17, &udp(0, 0, b"z")));
                frames.push(fragment(zero.clone(), 0x2000));
                frames.push(fragment(zero.clone(), 1));
                frames.push(zero);
            }
        }
    }
    let (a, b) = (v6("fd00::10"), v6("2001:db8::9"));
    for (x, y) in [(a, b), (b, a)] {
        frames.push(ethernet(0x86DD, &ipv6(x, y, 17, &udp(40001, 53, b"d"))));
        frames.push(ethernet(0x86DD, &ipv6(x, y, 6, &tcp(40001, 53, 1, b"t"))));
    }
    frames
}

/// Every inner frame under every session's VNI and two VNIs of the default session, from two
/// mirror sources, shuffled; each packet different (a counter byte after its inner frame), a
/// third of them repeated at once (duplicates, where the window de-duplicates).
fn traffic() -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut counter = 0u8;
    for inner in inner_frames() {
        for vni in [300, 301, 302, 303, 400, 7000, 7001] {
            for mirror in ["10.0.0.10", "10.9.9.9"] {
                let mut inner = inner.clone();
                counter = counter.wrapping_add(1);
                inner.push(counter);
                packets.push(aws_vxlan(v4(mirror), vni, &inner));
            }
        }
    }
    let mut rng = SplitMix64(0xF10C_CACE);
    for i in (1..packets.len()).rev() {
        packets.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut with_repeats = Vec::new();
    for (i, packet) in packets.into_iter().enumerate() {
        if i % 3 == 0 {
            with_repeats.push(packet.clone());
        }
        with_repeats.push(packet);
    }
    with_repeats
}

/// What a pipeline did: its counters and every copy, in order (port and bytes).
fn run(
    text: &str,
    live: &[bool],
    cache: bool,
    traffic: &[Vec<u8>],
) -> (String, Vec<(u16, Vec<u8>)>) {
    let config = fixtures::config(text);
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
    // The second pass under a new plan: another port down, another one back (what a link
    // change does); the cache must not answer from the first plan.
    let live_after: Vec<bool> = (0..plan.tool_ports)
        .map(|p| p != 4 && live.get(p) != Some(&false) || p == 1)
        .collect();
    let plan_after = Plan::build(
        &config,
        2,
        &PortFacts::links(&live_after),
        Box::new([counters.clone()]),
    );
    let mut pipeline = Pipeline::new(0, &plan, dedup);
    pipeline.set_flow_cache(if cache {
        FlowCacheMode::Always
    } else {
        FlowCacheMode::Off
    });
    let mut sink = CollectSink::default();
    let mut now = Duration::from_secs(10).as_nanos() as u64;
    for plan in [&plan, &plan_after] {
        for chunk in traffic.chunks(32) {
            let mut burst: Vec<Option<VecBuf>> =
                chunk.iter().map(|p| Some(VecBuf::new(p))).collect();
            pipeline.run(plan, now, &mut burst, &mut sink);
            now += 1_000;
        }
    }
    let copies = sink
        .delivered
        .iter()
        .map(|(port, pkt)| (*port, pkt.to_vec()))
        .collect();
    (format!("{counters:?}"), copies)
}

#[test]
fn the_flow_cache_changes_no_counter_and_no_copy() {
    let traffic = traffic();
    for mode in ["window", "sender", "sender+window"] {
        let text = config_text(mode);
        for live in [
            vec![],
            vec![true, false, true, true, true, true, true, false, true],
        ] {
            let cached = run(&text, &live, true, &traffic);
            let uncached = run(&text, &live, false, &traffic);
            assert!(!cached.1.is_empty(), "{mode}: something is delivered");
            assert_eq!(cached.0, uncached.0, "{mode}, live {live:?}: counters");
            assert!(
                cached.1 == uncached.1,
                "{mode}, live {live:?}: copies differ ({} with the cache, {} without)",
                cached.1.len(),
                uncached.1.len()
            );
        }
    }
}
