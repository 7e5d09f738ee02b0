//! The logic of the fuzz targets, shared by the `fuzz/` crate (`cargo fuzz`, nightly) and the
//! corpus replay tests (`cargo test` runs every file of `fuzz/corpus/<target>/` through the same
//! functions, on stable). A target function panics when an invariant breaks; that is the finding.
//!
//! # Input format (`burst`, `burst_split`)
//! ```text
//! byte 0      flags: bit 0 picks the config (PLAIN or PASSING), bit 1 takes tool ports 1, 2 and 5
//!             down (the only ports of groups rec and pairs), bits 2..8 seed the chunk sizes of burst_split
//! then        records: a big-endian u16 whose top 2 bits choose how the packet is cut into
//!             segments (0: one, 1: 2048-byte segments as DPDK's default mbufs, 2: 64-byte
//!             segments, 3: two halves) and whose low 14 bits are its length, then that many
//!             bytes (fewer when the input ends first)
//! ```
//! [`encode`] writes this format (the seed corpora are made with it).
//!
//! # What is checked
//! `burst`: every packet leaves the burst, `rx == Σ outcomes`, each packet is either discarded or
//! delivered (never both), `delivered` counts the packets with copies, port, group and session
//! counters agree with what reached the sink, no copy exceeds its group's slice, and every copy's
//! bytes are bytes of its packet (decapsulation only moves the start and the end) or, for bare IP
//! from GENEVE, the synthetic Ethernet header followed by such bytes.
//! `burst_split`: the same packets as one call, one packet per call and in input-chosen chunks
//! give the same counters and the same copies in the same order (the dedup clock is fixed); run
//! twice, with the flow cache and without, they give the same counters and copies too.
//! `config`: any text through `config::parse` never panics; an accepted config describes itself,
//! compiles into a [`Plan`] (all ports up, and all down) and shapes counters that fit it.
#![doc(hidden)]

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

use config::ValidatedConfig;

use crate::buf::{PacketBuf, Sink, VecBuf};
use crate::counters::WorkerCounters;
use crate::outcome::{Outcome, Reason};
use crate::pipeline::{Dedup, Pipeline};
use crate::plan::{Plan, PortFacts, TunnelLink};
use crate::stage::decap::{SYNTHETIC_DESTINATION, SYNTHETIC_SOURCE};
use crate::stage::flow_cache::FlowCacheMode;

/// The fuzzed pipeline's config: the VNIs of the sample captures and of the hostile capture,
/// a filter, all four balance modes, dedup, two slice lengths, an addressed ingress port (its
/// own traffic goes to the control side) and tunnel tool ports (VXLAN, GENEVE over IPv6,
/// ERSPAN II through the gateway). Tool ports: 0 ids-1, 1 ids-2, 2 rec-1, 3 rr-1, 4 rr-2,
/// 5 pairs-1, 6 net-1, 7 net-2, 8 net-3.
pub const PLAIN: &str = r#"
[broker]
name = "fuzz"
[[ingress]]
name = "in"
device = "net_null0"
address = ["10.0.9.10/24", "fd00:9::10/64"]
gateway = ["10.0.9.1"]
[decap]
allowed_sources = ["10.0.0.0/8", "172.16.0.0/12", "fd00::/8"]
geneve_ports = [6081]
[dedup]
window = "10ms"
capacity = 1024
[[session]]
name = "web"
vni = 101
tools = ["ids", "rec"]
filter = "web"
source_ips = ["10.0.1.10", "10.0.1.11"]
[[session]]
name = "db"
vni = 102
tools = ["ids"]
source_ips = ["10.0.2.20"]
[[session]]
name = "edge"
vni = 103
tools = ["ids", "rec", "rr", "net"]
source_ips = ["10.0.3.30", "fd00:3::30"]
[[session]]
name = "hostile"
vni = 100
tools = ["ids", "rec", "pairs"]
[[session]]
name = "geneve"
vni = 200
tools = ["rr"]
[[session]]
name = "gwlb"
vni = 300
tools = ["ids"]
[[session]]
name = "zero"
vni = 0
tools = ["rec"]
[[session]]
name = "max"
vni = 16777215
tools = ["ids", "rr"]
[[session]]
name = "aws"
vni = 1
tools = ["pairs"]
[[filter]]
name = "web"
default = "reject"
[[filter.rule]]
number = 100
action = "accept"
protocol = "tcp"
[[filter.rule]]
number = 200
action = "accept"
direction = "egress"
protocol = "udp"
dst_ports = "53"
[[filter.rule]]
number = 300
action = "reject"
protocol = "icmp"
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }, { name = "ids-2", device = "net_null2" }]
[[tool_group]]
name = "rec"
balance = "source"
slice = 64
ports = [{ name = "rec-1", device = "net_null3" }]
[[tool_group]]
name = "rr"
balance = "round-robin"
slice = 200
dedup = false
ports = [{ name = "rr-1", device = "net_null4" }, { name = "rr-2", device = "net_null5" }]
[[tool_group]]
name = "pairs"
balance = "ip-pair"
on_port_down = "drop"
ports = [{ name = "pairs-1", device = "net_null6" }]
[[tool_group]]
name = "net"
balance = "flow"
ports = [
    { name = "net-1", tunnel = "vxlan", remote = "10.0.9.21", via = "in" },
    { name = "net-2", tunnel = "geneve", remote = "fd00:9::22", via = "in" },
    { name = "net-3", tunnel = "erspan2", remote = "10.0.7.23", via = "in" },
]
"#;

/// The fuzzed ingress port's MAC (what its own traffic is addressed to).
pub const INGRESS_MAC: [u8; 6] = [0x02, 0xf0, 0x22, 0, 0, 0x10];

/// The link of every tunnel port of the fuzzed configs: a 1500-byte MTU, so longer copies are
/// cut to fit.
const TUNNEL_LINK: TunnelLink = TunnelLink {
    source_mac: INGRESS_MAC,
    next_hop_mac: [0x02, 0xf0, 0x22, 0, 0, 0x01],
    mtu: 1500,
};

/// [`PLAIN`] plus a default session for unknown VNIs and untunneled frames passed to it.
pub fn passing() -> String {
    format!(
        "{PLAIN}\n[[session]]\nname = \"catchall\"\ntools = [\"rec\", \"pairs\"]\n",
    )
    .replace(
        "geneve_ports = [6081]",
        "geneve_ports = [6081]\ndefault_session = \"catchall\"\npass_untunneled = true\nuntunneled_session = \"catchall\"",
    )
}

/// The dedup clock of every run (the fixed "now").
pub const NOW_NS: u64 = 1_000_000_000;

/// Longest packet a record can carry (14 bits).
pub const MAX_RECORD: usize = 0x3FFF;

/// How a packet is cut into segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segmentation {
    One,
    /// DPDK's default mbuf data room.
    Mbufs2048,
    Small64,
    Halves,
}

impl Segmentation {
    fn from_bits(bits: u16) -> Segmentation {
        match bits & 3 {
            0 => Segmentation::One,
            1 => Segmentation::Mbufs2048,
            2 => Segmentation::Small64,
            _ => Segmentation::Halves,
        }
    }

    fn bits(self) -> u16 {
        match self {
            Segmentation::One => 0,
            Segmentation::Mbufs2048 => 1,
            Segmentation::Small64 => 2,
            Segmentation::Halves => 3,
        }
    }

    fn cut(self, bytes: &[u8]) -> VecBuf {
        let chunked =
            |size: usize| VecBuf::from_segments(bytes.chunks(size).map(<[u8]>::to_vec).collect());
        match self {
            Segmentation::One => VecBuf::new(bytes),
            Segmentation::Mbufs2048 => chunked(2048),
            Segmentation::Small64 => chunked(64),
            Segmentation::Halves if bytes.len() >= 2 => {
                let (a, b) = bytes.split_at(bytes.len() / 2);
                VecBuf::from_segments(vec![a.to_vec(), b.to_vec()])
            }
            Segmentation::Halves => VecBuf::new(bytes),
        }
    }
}

/// A decoded fuzz input.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub flags: u8,
    pub packets: Vec<(Segmentation, &'a [u8])>,
}

/// Decodes the input format (any bytes are an input).
pub fn decode(data: &[u8]) -> Input<'_> {
    let Some((&flags, mut rest)) = data.split_first() else {
        return Input {
            flags: 0,
            packets: Vec::new(),
        };
    };
    let mut packets = Vec::new();
    while let [hi, lo, tail @ ..] = rest {
        let word = u16::from_be_bytes([*hi, *lo]);
        let len = usize::from(word & MAX_RECORD as u16).min(tail.len());
        let (packet, after) = tail.split_at(len);
        packets.push((Segmentation::from_bits(word >> 14), packet));
        rest = after;
    }
    Input { flags, packets }
}

/// Encodes packets in the input format (packets longer than [`MAX_RECORD`] are cut).
pub fn encode(flags: u8, packets: &[(Segmentation, &[u8])]) -> Vec<u8> {
    let mut out = vec![flags];
    for (segmentation, packet) in packets {
        let packet = &packet[..packet.len().min(MAX_RECORD)];
        let word = (segmentation.bits() << 14) | packet.len() as u16;
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(packet);
    }
    out
}

/// A packet that remembers which input packet it is, through decap, clones and slicing.
#[derive(Clone, Debug)]
pub struct TaggedBuf {
    pub id: u32,
    pub buf: VecBuf,
}

impl PacketBuf for TaggedBuf {
    fn data(&self) -> &[u8] {
        self.buf.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.buf.data_mut()
    }
    fn pkt_len(&self) -> usize {
        self.buf.pkt_len()
    }
    fn segments(&self) -> usize {
        self.buf.segments()
    }
    fn for_each_segment(&self, f: impl FnMut(&[u8])) {
        self.buf.for_each_segment(f)
    }
    fn strip_front(&mut self, n: usize) -> bool {
        self.buf.strip_front(n)
    }
    fn truncate(&mut self, len: usize) {
        self.buf.truncate(len)
    }
    fn share(&self) -> Option<TaggedBuf> {
        Some(TaggedBuf {
            id: self.id,
            buf: self.buf.share()?,
        })
    }
    fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        self.buf.prepend(len)
    }
}

/// One copy handed to the sink: tool port, packet id, bytes.
pub type Delivery = (u16, u32, Vec<u8>);

/// What reached the sink, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub copies: Vec<Delivery>,
    pub discarded: Vec<u32>,
    /// Packets for an addressed port itself.
    pub punted: Vec<u32>,
}

impl Sink<TaggedBuf> for Received {
    fn deliver(&mut self, port: u16, pkt: TaggedBuf) {
        self.copies.push((port, pkt.id, pkt.buf.to_vec()));
    }
    fn discard(&mut self, pkt: TaggedBuf) {
        self.discarded.push(pkt.id);
    }
    fn punt(&mut self, pkt: TaggedBuf) {
        self.punted.push(pkt.id);
    }
}

/// A pipeline with its plan and counters, built from one of the two configs.
#[derive(Debug)]
pub struct Harness {
    pub config: &'static ValidatedConfig,
    pub plan: Plan,
    pub pipeline: Pipeline,
    pub counters: Arc<WorkerCounters>,
}

/// The config and plan of each `flags & 3`, built once per process: a plan is immutable and
/// compiling one (Maglev tables, filters) costs far more than a fuzz execution should.
fn shared(flags: u8) -> &'static (ValidatedConfig, Plan) {
    static SHARED: OnceLock<Vec<(ValidatedConfig, Plan)>> = OnceLock::new();
    let all = SHARED.get_or_init(|| {
        (0..4u8)
            .map(|flags| {
                let text = if flags & 1 == 0 {
                    PLAIN.to_owned()
                } else {
                    passing()
                };
                let config = match config::parse(&text, None) {
                    Ok(c) => c,
                    Err(e) => panic!("the fuzzing config does not validate: {e}"),
                };
                let live: Vec<bool> = (0..config.tool_ports.len())
                    .map(|p| flags & 2 == 0 || !matches!(p, 1 | 2 | 5))
                    .collect();
                let facts = PortFacts {
                    tunnels: config
                        .tool_ports
                        .iter()
                        .map(|p| p.tunnel().map(|_| TUNNEL_LINK))
                        .collect(),
                    ingress_macs: vec![Some(INGRESS_MAC)],
                    ..PortFacts::links(&live)
                };
                let plan = Plan::build(&config, 1, &facts, WorkerCounters::for_workers(&config, 1));
                (config, plan)
            })
            .collect()
    });
    &all[usize::from(flags & 3)]
}

impl Harness {
    /// The harness for `flags` (config and port liveness), with fresh counters, dedup table
    /// and pipeline state.
    ///
    /// # Panics
    /// If the built-in configs stop validating: the fuzzing setup itself is broken.
    pub fn new(flags: u8) -> Harness {
        let (config, shared_plan) = shared(flags);
        let counters = Arc::new(WorkerCounters::new(config));
        let mut plan = shared_plan.with_counters(Box::new([counters.clone()]));
        // ERSPAN sequences of its own: runs compared with each other start from the same 0.
        plan.sequences = (0..plan.tool_ports).map(|_| AtomicU32::new(0)).collect();
        let dedup = config
            .dedup
            .as_ref()
            .and_then(|d| Dedup::for_settings(d, Some(0x5EED)));
        Harness {
            config,
            pipeline: Pipeline::new(0, &plan, dedup),
            plan,
            counters,
        }
    }

    /// Runs `packets` (ids `first_id..`) as one call of [`Pipeline::run`].
    pub fn run(
        &mut self,
        first_id: u32,
        packets: &[(Segmentation, &[u8])],
        received: &mut Received,
    ) {
        let mut burst: Vec<Option<TaggedBuf>> = packets
            .iter()
            .zip(first_id..)
            .map(|((segmentation, bytes), id)| {
                Some(TaggedBuf {
                    id,
                    buf: segmentation.cut(bytes),
                })
            })
            .collect();
        self.pipeline.run(&self.plan, NOW_NS, &mut burst, received);
        assert!(
            burst.iter().all(Option::is_none),
            "a packet was left in the burst"
        );
    }

    /// Every counter, flattened in a fixed order (for comparing runs).
    pub fn snapshot(&self) -> Vec<u64> {
        let c = &self.counters;
        let mut out = vec![c.rx_packets.get(), c.rx_bytes.get()];
        out.extend(c.outcomes.iter().map(|x| x.get()));
        for s in c.sessions.iter() {
            out.extend(
                [
                    &s.packets,
                    &s.bytes,
                    &s.delivered,
                    &s.filtered,
                    &s.duplicate,
                    &s.no_live_port,
                    &s.truncated_by_source,
                ]
                .map(|x| x.get()),
            );
        }
        for g in c.groups.iter() {
            out.extend(
                [
                    &g.copies,
                    &g.duplicates,
                    &g.dedup_evictions,
                    &g.no_live_port,
                    &g.sliced,
                ]
                .map(|x| x.get()),
            );
        }
        for p in c.ports.iter() {
            out.extend([&p.copies, &p.copy_bytes, &p.no_buffer].map(|x| x.get()));
        }
        for f in c.filters.iter() {
            out.extend(f.rules.iter().map(|x| x.get()));
            out.push(f.default.get());
        }
        out
    }
}

/// Target `burst`: the whole pipeline on the input's packets, every invariant checked.
pub fn burst(data: &[u8]) {
    let input = decode(data);
    let mut harness = Harness::new(input.flags);
    let mut received = Received::default();
    harness.run(0, &input.packets, &mut received);
    check_burst(&harness, &input.packets, &received);
}

/// Target `burst_split`: the same packets in three burst splits give the same result.
pub fn burst_split(data: &[u8]) {
    let input = decode(data);
    let packets = &input.packets;

    let mut whole = Harness::new(input.flags);
    whole.pipeline.set_flow_cache(FlowCacheMode::Always);
    let mut whole_received = Received::default();
    whole.run(0, packets, &mut whole_received);

    let mut single = Harness::new(input.flags);
    let mut single_received = Received::default();
    for (id, packet) in (0..).zip(packets.chunks(1)) {
        single.run(id, packet, &mut single_received);
    }

    let mut chunked = Harness::new(input.flags);
    let mut chunked_received = Received::default();
    let mut state = u32::from(input.flags >> 2) | 0x100;
    let mut start = 0;
    while start < packets.len() {
        // xorshift: chunk sizes 1..=40 straddle the internal burst of 32.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 40 + 1) as usize;
        let end = (start + size).min(packets.len());
        chunked.run(start as u32, &packets[start..end], &mut chunked_received);
        start = end;
    }

    check_burst(&whole, packets, &whole_received);
    assert_eq!(
        whole.snapshot(),
        single.snapshot(),
        "counters: one call vs one packet per call"
    );
    assert_eq!(
        whole.snapshot(),
        chunked.snapshot(),
        "counters: one call vs chunks"
    );
    assert_eq!(
        whole_received, single_received,
        "copies: one call vs one packet per call"
    );
    assert_eq!(
        whole_received, chunked_received,
        "copies: one call vs chunks"
    );

    // The flow cache changes nothing: the packets once more through the same pipeline (every
    // flow of the first pass now found in its cache), against a pipeline without a cache.
    let mut uncached = Harness::new(input.flags);
    uncached.pipeline.set_flow_cache(FlowCacheMode::Off);
    let mut uncached_received = Received::default();
    uncached.run(0, packets, &mut uncached_received);
    uncached.run(packets.len() as u32, packets, &mut uncached_received);
    whole.run(packets.len() as u32, packets, &mut whole_received);
    assert_eq!(
        whole.snapshot(),
        uncached.snapshot(),
        "counters: flow cache vs none"
    );
    assert_eq!(
        whole_received, uncached_received,
        "copies: flow cache vs none"
    );
}

/// The invariants of one run of `packets` (ids 0..) that ended in `received`.
pub fn check_burst(harness: &Harness, packets: &[(Segmentation, &[u8])], received: &Received) {
    let c = &harness.counters;
    let n = packets.len() as u64;
    let outcome = |o: Outcome| c.outcome_count(o);
    assert_eq!(c.rx_packets.get(), n, "rx_packets");
    assert_eq!(
        c.rx_bytes.get(),
        packets.iter().map(|(_, p)| p.len() as u64).sum::<u64>(),
        "rx_bytes"
    );
    let outcomes: u64 = Outcome::all().map(outcome).sum();
    assert_eq!(outcomes, n, "rx == Σ outcomes");

    // Each packet discarded or punted once, or delivered (its copies adjacent), never two of them.
    let mut copies_of = vec![0usize; packets.len()];
    for &(_, id, _) in &received.copies {
        copies_of[id as usize] += 1;
    }
    let mut discarded = vec![false; packets.len()];
    for &id in received.discarded.iter().chain(&received.punted) {
        assert!(
            !discarded[id as usize],
            "packet {id} discarded or punted twice"
        );
        discarded[id as usize] = true;
        assert_eq!(
            copies_of[id as usize], 0,
            "packet {id} discarded and delivered"
        );
    }
    for (id, (&copies, &dropped)) in copies_of.iter().zip(&discarded).enumerate() {
        assert!(copies > 0 || dropped, "packet {id} vanished");
    }
    let delivered = copies_of.iter().filter(|&&k| k > 0).count() as u64;
    assert_eq!(
        outcome(Outcome::Delivered),
        delivered,
        "delivered == packets with copies"
    );
    assert_eq!(
        outcome(Outcome::Control),
        received.punted.len() as u64,
        "control == packets punted"
    );

    // Counters agree with the sink.
    let copies = received.copies.len() as u64;
    let sum = |it: &mut dyn Iterator<Item = u64>| it.sum::<u64>();
    assert_eq!(
        sum(&mut c.ports.iter().map(|p| p.copies.get())),
        copies,
        "Σ port copies"
    );
    assert_eq!(
        sum(&mut c.ports.iter().map(|p| p.no_buffer.get())),
        0,
        "VecBuf always shares"
    );
    assert_eq!(
        sum(&mut c.groups.iter().map(|g| g.copies.get())),
        copies,
        "Σ group copies"
    );
    let bytes: u64 = received.copies.iter().map(|(_, _, b)| b.len() as u64).sum();
    assert_eq!(
        sum(&mut c.ports.iter().map(|p| p.copy_bytes.get())),
        bytes,
        "Σ port copy bytes"
    );
    for (port, counters) in c.ports.iter().enumerate() {
        let to_port = received
            .copies
            .iter()
            .filter(|(p, _, _)| usize::from(*p) == port)
            .count() as u64;
        assert_eq!(counters.copies.get(), to_port, "copies of port {port}");
    }
    let before_session: u64 = [
        Outcome::Control,
        Outcome::SourceDenied,
        Outcome::NotTunnel,
        Outcome::UnknownSession,
    ]
    .into_iter()
    .chain(Reason::ALL.iter().map(|r| Outcome::Malformed(*r)))
    .map(outcome)
    .sum();
    let sessions = |pick: fn(&crate::counters::SessionCounters) -> u64| {
        c.sessions.iter().map(pick).sum::<u64>()
    };
    assert_eq!(
        sessions(|s| s.packets.get()),
        n - before_session,
        "Σ session packets"
    );
    assert_eq!(
        sessions(|s| s.delivered.get()),
        delivered,
        "Σ session delivered"
    );
    assert_eq!(
        sessions(|s| s.filtered.get()),
        outcome(Outcome::Filtered),
        "Σ session filtered"
    );
    assert_eq!(
        sessions(|s| s.duplicate.get()),
        outcome(Outcome::Duplicate),
        "Σ session duplicate"
    );
    assert_eq!(
        sessions(|s| s.no_live_port.get()),
        outcome(Outcome::NoLivePort),
        "Σ session no_live_port"
    );

    // Every copy: a port that exists, its group's slice respected, bytes of its own packet (behind
    // the outer headers of a tunnel port, which fit its MTU).
    let group_of_port = |port: u16| {
        harness
            .config
            .tool_ports
            .get(usize::from(port))
            .map(|p| p.group.index())
    };
    let mut copies_per_packet_group = std::collections::HashSet::new();
    for (port, id, bytes) in &received.copies {
        let group = group_of_port(*port)
            .unwrap_or_else(|| panic!("copy to port {port}, which does not exist"));
        assert!(
            copies_per_packet_group.insert((*id, group)),
            "packet {id} reached group {group} twice"
        );
        let inner = match &harness.plan.egress[usize::from(*port)] {
            Some(template) => {
                assert!(
                    bytes.len() >= template.overhead()
                        && bytes.len() - template.overhead() <= template.max_inner_len(),
                    "copy of {} bytes to tunnel port {port}: outer headers of {}, at most {} inside",
                    bytes.len(),
                    template.overhead(),
                    template.max_inner_len()
                );
                &bytes[template.overhead()..]
            }
            None => &bytes[..],
        };
        if let Some(limit) = harness.plan.groups[group].slice {
            assert!(
                inner.len() <= limit,
                "copy of {} bytes for group {group} sliced at {limit}",
                inner.len()
            );
        }
        let (_, original) = packets[*id as usize];
        assert!(
            comes_from(inner, original),
            "copy of packet {id} ({} bytes) is not a part of it",
            inner.len()
        );
    }
}

/// Whether `copy` is a contiguous part of `original`, or a synthetic Ethernet header for bare IP
/// followed by one.
fn comes_from(copy: &[u8], original: &[u8]) -> bool {
    if is_part_of(copy, original) {
        return true;
    }
    match copy.split_at_checked(14) {
        Some((header, rest)) => {
            header[..6] == SYNTHETIC_DESTINATION
                && header[6..12] == SYNTHETIC_SOURCE
                && matches!(header[12..], [0x08, 0x00] | [0x86, 0xDD])
                && is_part_of(rest, original)
        }
        None => false,
    }
}

fn is_part_of(part: &[u8], whole: &[u8]) -> bool {
    if part.is_empty() {
        return true;
    }
    let probe = &part[..part.len().min(16)];
    (0..=whole.len().saturating_sub(part.len()))
        .any(|start| whole[start..].starts_with(probe) && whole[start..].starts_with(part))
}

/// Target `config`: arbitrary text through the config parser and, when accepted, the plan.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, None) {
        Ok(config) => {
            let description = config.describe();
            assert!(
                !description.is_empty(),
                "an accepted config describes itself"
            );
            for live in [&[][..], &vec![false; config.tool_ports.len()][..]] {
                let plan = Plan::build(
                    &config,
                    1,
                    &PortFacts::links(live),
                    WorkerCounters::for_workers(&config, 1),
                );
                assert_eq!(plan.sessions.len(), config.sessions.len());
                assert_eq!(plan.groups.len(), config.tool_groups.len());
                assert_eq!(plan.tool_ports, config.tool_ports.len());
            }
            let counters = WorkerCounters::new(&config);
            assert!(
                counters.fits(&config),
                "counters shaped for a config fit it"
            );
        }
        Err(error) => {
            assert!(!error.diagnostics().is_empty(), "a refusal says why");
            let _ = error.to_string();
            let _ = error.detailed().to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{aws_vxlan, inner_tcp4, v4};

    #[test]
    fn decode_reads_what_encode_writes() {
        let a = [1u8, 2, 3];
        let b = vec![7u8; 5000];
        let data = encode(
            3,
            &[
                (Segmentation::One, &a),
                (Segmentation::Mbufs2048, &b),
                (Segmentation::Halves, &[]),
            ],
        );
        let input = decode(&data);
        assert_eq!(input.flags, 3);
        assert_eq!(input.packets.len(), 3);
        assert_eq!(input.packets[0], (Segmentation::One, &a[..]));
        assert_eq!(input.packets[1], (Segmentation::Mbufs2048, &b[..]));
        assert_eq!(input.packets[2], (Segmentation::Halves, &[][..]));
        // A record cut by the end of the input keeps what is there; a lone length byte is dropped.
        let cut = decode(&data[..10]);
        assert_eq!(
            cut.packets,
            vec![
                (Segmentation::One, &a[..]),
                (Segmentation::Mbufs2048, &b[..2])
            ]
        );
        assert!(decode(&[]).packets.is_empty());
        assert!(decode(&[0, 1]).packets.is_empty());
    }

    #[test]
    fn both_configs_validate() {
        for flags in 0..4 {
            let h = Harness::new(flags);
            assert_eq!(h.config.tool_ports.len(), 9);
            assert_eq!(
                h.plan.egress.iter().flatten().count(),
                3,
                "tunnel templates"
            );
        }
        assert!(Harness::new(1).plan.default_session.is_some());
    }

    #[test]
    fn the_checks_can_fail() {
        let frame = aws_vxlan(
            v4("10.0.1.10"),
            100,
            &inner_tcp4(v4("192.0.2.1"), v4("192.0.2.2"), 1, 2, 3, b"x"),
        );
        let packets = [(Segmentation::One, &frame[..])];
        let mut h = Harness::new(0);
        let mut received = Received::default();
        h.run(0, &packets, &mut received);
        check_burst(&h, &packets, &received);
        assert_eq!(received.copies.len(), 3, "session hostile: ids, rec, pairs");
        // A copy with a byte the packet does not have, or one copy too many, is caught.
        let mut forged = Received {
            copies: received.copies.clone(),
            ..Received::default()
        };
        forged.copies[0].2[0] ^= 0xFF;
        assert!(std::panic::catch_unwind(|| check_burst(&h, &packets, &forged)).is_err());
        let mut doubled = Received {
            copies: received.copies.clone(),
            ..Received::default()
        };
        doubled.copies.push(received.copies[0].clone());
        assert!(std::panic::catch_unwind(|| check_burst(&h, &packets, &doubled)).is_err());
    }
}
