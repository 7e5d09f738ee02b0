//! Once warm, a burst through the whole pipeline allocates nothing: decap, session, filter,
//! dedup (key and table), balance, fan-out with shared handles and slicing, drops of every kind,
//! and the counters.
//!
//! The packets live in a `FixedPool` (its buffers are allocated once, up front, as a DPDK mempool
//! is; `share` takes a second buffer from it). A counting global allocator counts what this
//! thread allocates while armed. A control shows the count catches a per-packet allocation: the
//! same bursts on `VecBuf`, whose `share` allocates by design, are caught.

mod alloc_counter;
#[path = "../benches/pipeline/workload.rs"]
mod workload;

use std::sync::Arc;

use alloc_counter::{Counting, allocations_in};
use pipelines::counters::WorkerCounters;
use pipelines::fixed_pool::{CountingSink, FixedPool, PoolBuf};
use pipelines::pipeline::{BURST, Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use pipelines::testing::{aws_vxlan, ethernet, inner_tcp4, ipv4, udp, v4};
use pipelines::{Outcome, Reason, VecBuf};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SINGLE: &str = include_str!("../benches/pipeline/single.toml");
const FANOUT: &str = include_str!("../benches/pipeline/fanout.toml");

/// The bench's frames with, every few packets, one that takes another path: a second copy of
/// the packet before it (dedup hit), an unknown VNI, a denied sender, a filtered packet (telnet,
/// which the bench filter rejects), a malformed tunnel.
fn mixed_frames() -> Vec<Vec<u8>> {
    let mut frames = workload::frames(4096);
    let eni = v4("172.31.10.5");
    let telnet = aws_vxlan(
        eni,
        1000,
        &inner_tcp4(eni, v4("10.200.0.1"), 40000, 23, 7, b"login"),
    );
    let bad_udp_length = {
        let mut f = aws_vxlan(eni, 1000, &inner_tcp4(eni, v4("203.0.113.5"), 1, 2, 3, b""));
        f[38..40].copy_from_slice(&3u16.to_be_bytes()); // UDP length 3: malformed
        f
    };
    let not_vxlan = ethernet(
        0x0800,
        &ipv4(eni, v4("172.31.0.200"), 17, &udp(5, 53, b"dns")),
    );
    for i in (8..frames.len()).step_by(8) {
        frames[i] = match (i / 8) % 6 {
            0 | 1 => frames[i - 1].clone(),
            2 => aws_vxlan(eni, 7, &frames[i][50..]),
            3 => aws_vxlan(v4("192.0.2.1"), 1000, &frames[i][50..]),
            4 => telnet.clone(),
            _ => [bad_udp_length.clone(), not_vxlan.clone()][(i / 48) % 2].clone(),
        };
    }
    frames
}

struct Rig {
    plan: Plan,
    pipeline: Pipeline,
    counters: Arc<WorkerCounters>,
    now_ns: u64,
    next: usize,
}

impl Rig {
    fn new(toml: &str) -> Rig {
        let config = config::fixtures::config(toml);
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
        Rig {
            pipeline: Pipeline::new(0, &plan, dedup),
            plan,
            counters,
            now_ns: 1 << 40,
            next: 0,
        }
    }

    /// Fills the burst with the next frames, in buffers made by `make`.
    fn fill<B>(
        &mut self,
        frames: &[Vec<u8>],
        pkts: &mut [Option<B>; BURST],
        make: &mut impl FnMut(&[u8]) -> Option<B>,
    ) {
        for slot in pkts.iter_mut() {
            *slot = make(&frames[self.next]);
            self.next = (self.next + 1) % frames.len();
        }
    }

    /// Runs the pipeline on the burst.
    fn run<B: pipelines::PacketBuf>(
        &mut self,
        pkts: &mut [Option<B>; BURST],
        sink: &mut CountingSink,
    ) {
        self.pipeline.run(&self.plan, self.now_ns, pkts, sink);
        self.now_ns += 3_200;
    }

    /// One burst of the next frames through the pipeline.
    fn burst<B: pipelines::PacketBuf>(
        &mut self,
        frames: &[Vec<u8>],
        pkts: &mut [Option<B>; BURST],
        make: &mut impl FnMut(&[u8]) -> Option<B>,
        sink: &mut CountingSink,
    ) {
        self.fill(frames, pkts, make);
        self.run(pkts, sink);
    }

    fn outcome(&self, outcome: Outcome) -> u64 {
        self.counters.outcome_count(outcome)
    }
}

#[test]
fn a_warm_burst_through_the_pipeline_allocates_nothing() {
    let frames = mixed_frames();
    // The harness counts: an allocation on this thread while armed is seen.
    let (_, control) = allocations_in(|| std::hint::black_box(vec![1u8; 3]));
    assert_eq!(control, 1);

    for (name, toml) in [("single", SINGLE), ("fanout", FANOUT)] {
        let mut rig = Rig::new(toml);
        let groups = rig.plan.groups.len();
        let pool = FixedPool::new(BURST * (groups + 1), 2048);
        let mut sink = CountingSink::new(rig.plan.tool_ports);
        let mut pkts: [Option<PoolBuf>; BURST] = [const { None }; BURST];
        let mut make = |bytes: &[u8]| pool.packet(bytes);
        // Warm: every path taken once, the round-robin turns sized, the caches filled.
        for _ in 0..256 {
            rig.burst(&frames, &mut pkts, &mut make, &mut sink);
        }
        let before = rig.counters.rx_packets.get();
        let ((), allocations) = allocations_in(|| {
            for _ in 0..1024 {
                rig.burst(&frames, &mut pkts, &mut make, &mut sink);
            }
        });
        assert_eq!(allocations, 0, "{name}: the warm pipeline allocated");
        // Every path was taken while counting.
        assert_eq!(rig.counters.rx_packets.get() - before, 1024 * BURST as u64);
        for outcome in [
            Outcome::Delivered,
            Outcome::Duplicate,
            Outcome::UnknownSession,
            Outcome::SourceDenied,
            Outcome::Filtered,
            Outcome::NotTunnel,
            Outcome::Malformed(Reason::UdpBadLength),
        ] {
            assert!(rig.outcome(outcome) > 0, "{name}: no {outcome:?} packet");
        }
        assert!(sink.total_delivered() >= rig.outcome(Outcome::Delivered));
        if groups > 1 {
            assert!(
                sink.total_delivered() > rig.outcome(Outcome::Delivered),
                "{name}: no fan-out"
            );
        }
        assert_eq!(
            pool.available(),
            BURST * (groups + 1),
            "{name}: every buffer came back"
        );
    }
}

#[test]
fn the_count_catches_a_pipeline_that_allocates_per_packet() {
    // On VecBuf, whose `share` allocates by design, the same warm pipeline allocates for every
    // extra copy of the fan-out: the count sees it (the buffers are made before arming).
    let frames = mixed_frames();
    let mut rig = Rig::new(FANOUT);
    let mut sink = CountingSink::new(rig.plan.tool_ports);
    let mut pkts: [Option<VecBuf>; BURST] = [const { None }; BURST];
    let mut make = |bytes: &[u8]| Some(VecBuf::new(bytes));
    for _ in 0..256 {
        rig.burst(&frames, &mut pkts, &mut make, &mut sink);
    }
    rig.fill(&frames, &mut pkts, &mut make);
    let delivered = rig.outcome(Outcome::Delivered);
    let ((), allocations) = allocations_in(|| rig.run(&mut pkts, &mut sink));
    let fanned_out = rig.outcome(Outcome::Delivered) - delivered;
    assert!(
        fanned_out > 0 && allocations >= fanned_out,
        "{allocations} allocations, {fanned_out} packets fanned out"
    );
}
