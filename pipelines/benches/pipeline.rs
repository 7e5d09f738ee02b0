//! The whole pipeline per packet, in bursts of 32, as a worker runs it: decap, session, filter,
//! dedup, balance and dispatch, with the config of the end-to-end bench (scripts/bench/config.py:
//! allowlist, 64 sessions, a 100-rule filter, dedup, one tool group of 4 ports balanced by flow;
//! or three tool groups for the fan-out).
//!
//! The packets live in a [`FixedPool`] (no allocation per packet), wrapped in a buffer that
//! prefetches as the broker's mbufs do ([`Prefetching`]). Each call takes 32 fresh
//! copies of the next frames of a 32,768-frame loop into pool buffers, as the `net_pcap` driver
//! copies its cached frames into fresh mbufs, and runs the pipeline on them; the clock advances
//! 3.2 µs per burst (10 Mpps), so a loop of the frames lasts 3.3 ms, far longer than the 200 µs
//! dedup window: nothing is a duplicate. The copy alone is measured too and subtracted.
//!
//! Variants leave out the filter, dedup or both, so the differences show what each stage costs
//! inside the whole pipeline (caches shared with the other stages, branches of the real mix);
//! the `single_sender*` variants de-duplicate with the sender rule instead of (or before) the
//! window, its every lookup finding a sender (see `cases`). Three more run the pipeline watched (`pipelines::observe`), as the broker's workers do while a
//! capture or a trace runs: `_observed` with the hooks called for every outcome and copy but no
//! packet traced (a capture), `_traced` with every packet traced (the worst case of a trace).
//!
//! `cargo bench -p broker-pipelines --bench pipeline`
//!
//! With `BENCH_CASES=single,single_no_flow_cache` it prints the table for those cases only and
//! skips criterion's run. With `BENCH_FIXED_CALLS=N BENCH_CASE=<case>` it only makes N calls of one case, for
//! `valgrind --tool=callgrind` (scripts/bench/callgrind.sh).

#[path = "common/mod.rs"]
mod common;
#[path = "pipeline/workload.rs"]
mod workload;

use std::rc::Rc;
use std::sync::Arc;

use common::{BURST, Cost, fixed_calls, least_cost, print_costs};
use criterion::{Criterion, Throughput};
use pipelines::counters::WorkerCounters;
use pipelines::fixed_pool::{CountingSink, FixedPool, PoolBuf};
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts, TunnelLink};
use pipelines::stage::flow_cache::FlowCacheMode;
use pipelines::testing::TracingSink;
use pipelines::{Outcome, PacketBuf};

const SINGLE: &str = include_str!("pipeline/single.toml");
const FANOUT: &str = include_str!("pipeline/fanout.toml");

/// Frames in the replayed loop.
const FRAMES: usize = 32_768;
/// Clock step per burst: 32 packets at 10 Mpps.
const BURST_NS: u64 = 3_200;

/// One way of running the pipeline: its config, the dedup prefetch forced on or off (`None`: the
/// pipeline's choice by table size), and whether its tool ports are tunnels with a resolved next
/// hop (and its ingress port an addressed one).
struct Case {
    name: &'static str,
    toml: String,
    prefetch: Option<bool>,
    watch: Watch,
    tunnels: bool,
    /// How the per-worker flow cache is used (the pipeline's default: adaptive).
    flow_cache: FlowCacheMode,
    /// Conversations per mirrored ENI in the frames (4,096: nearly every frame of the loop is
    /// the only one of its flow in a stretch of 1,024 packets).
    conversations: u64,
}

/// Whether the pipeline runs watched, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// `Pipeline::run`: what the workers run when no capture or trace runs.
    Off,
    /// `Pipeline::run_observed`, no packet traced: the hooks of a capture.
    Hooks,
    /// `Pipeline::run_observed`, every packet traced.
    TraceAll,
}

fn cases() -> Vec<Case> {
    let without_filter = |t: &str| t.replace("filter = \"f100\"\n", "");
    let without_dedup = |t: &str| t.replace("[dedup]\nwindow = \"200us\"\ncapacity = 16384\n", "");
    // A dedup table of 2^20 entries (8 MiB), as a window of tens of milliseconds needs at
    // 10 Mpps: it does not fit the caches.
    let large_table = |t: &str| t.replace("capacity = 16384\n", "capacity = 1048576\n");
    // The sender rule: the workload's internet peers mirrored too, by one more session (sending
    // to a group of its own). Every copy taken at an ENI's receiving end then finds a sender
    // copy: one address lookup, the peer session's 100-rule filter, its groups scanned; that copy
    // never reaches the workload's group, so every packet is still delivered (the rule's full
    // cost, without the savings of the copies it drops).
    let sender = |t: &str, mode: &str| {
        let table = if mode == "sender" {
            ""
        } else {
            "window = \"200us\"\ncapacity = 16384\n"
        };
        // The workload's TCP and ping peers (203.0.113.50–119), its resolvers, its IPv6 peer.
        let peers: Vec<String> = (50..120)
            .map(|i| format!("\"203.0.113.{i}\""))
            .chain(
                ["198.51.100.53", "2001:db8:53::53", "2001:db8:100::1"].map(|p| format!("\"{p}\"")),
            )
            .collect();
        t.replace(
            "[dedup]\nwindow = \"200us\"\ncapacity = 16384\n",
            &format!("[dedup]\nmode = \"{mode}\"\n{table}"),
        ) + &format!(
            "[[session]]\nname = \"peers\"\nvni = 2000\ntools = [\"peers\"]\nfilter = \"f100\"\n\
             source_ips = [{}]\n[[tool_group]]\nname = \"peers\"\n\
             ports = [{{ name = \"peers-0\", device = \"net_null9\" }}]\n",
            peers.join(", ")
        )
    };
    let case = |name, toml: String| Case {
        name,
        toml,
        prefetch: None,
        watch: Watch::Off,
        tunnels: false,
        flow_cache: FlowCacheMode::Adaptive,
        conversations: 4096,
    };
    // 16 conversations per ENI: about 600 inner flows, each back every ~50 packets.
    let few_flows = |name, toml: String, flow_cache| Case {
        conversations: 16,
        flow_cache,
        ..case(name, toml)
    };
    let uncached = |name, toml: String| Case {
        flow_cache: FlowCacheMode::Off,
        ..case(name, toml)
    };
    let always_cached = |name, toml: String| Case {
        flow_cache: FlowCacheMode::Always,
        ..case(name, toml)
    };
    let tunnelled = |name, toml: String| Case {
        tunnels: true,
        ..case(name, toml)
    };
    vec![
        case("single", SINGLE.to_owned()),
        uncached("single_no_flow_cache", SINGLE.to_owned()),
        always_cached("single_flow_cache_always", SINGLE.to_owned()),
        few_flows(
            "single_few_flows",
            SINGLE.to_owned(),
            FlowCacheMode::Adaptive,
        ),
        few_flows(
            "single_few_flows_no_flow_cache",
            SINGLE.to_owned(),
            FlowCacheMode::Off,
        ),
        case("single_no_filter", without_filter(SINGLE)),
        case("single_no_dedup", without_dedup(SINGLE)),
        case(
            "single_no_filter_no_dedup",
            without_dedup(&without_filter(SINGLE)),
        ),
        Case {
            prefetch: Some(true),
            ..case("single_prefetch", SINGLE.to_owned())
        },
        case("single_2p20_table", large_table(SINGLE)),
        Case {
            prefetch: Some(false),
            ..case("single_2p20_table_no_prefetch", large_table(SINGLE))
        },
        // The tunnel cases' ingress port owns addresses (a tunnel leaves from an addressed
        // port), which adds the check for its own traffic: this case has that check and cabled
        // tool ports, so that the difference to the tunnel cases is the egress step alone.
        case("single_addressed", addressed(SINGLE)),
        tunnelled("single_vxlan4", tunnels(SINGLE, "vxlan", "10.0.9.21")),
        tunnelled("single_geneve6", tunnels(SINGLE, "geneve", "fd00:9::22")),
        case("single_sender", sender(SINGLE, "sender")),
        uncached("single_sender_no_flow_cache", sender(SINGLE, "sender")),
        case("single_sender_window", sender(SINGLE, "sender+window")),
        // The rule's own work: the peers' session without a filter to run.
        case(
            "single_sender_unfiltered",
            sender(SINGLE, "sender").replace(
                "tools = [\"peers\"]\nfilter = \"f100\"\n",
                "tools = [\"peers\"]\n",
            ),
        ),
        Case {
            watch: Watch::Hooks,
            ..case("single_observed", SINGLE.to_owned())
        },
        Case {
            watch: Watch::TraceAll,
            ..case("single_traced", SINGLE.to_owned())
        },
        case("fanout", FANOUT.to_owned()),
        Case {
            watch: Watch::TraceAll,
            ..case("fanout_traced", FANOUT.to_owned())
        },
        uncached("fanout_no_flow_cache", FANOUT.to_owned()),
        always_cached("fanout_flow_cache_always", FANOUT.to_owned()),
        few_flows(
            "fanout_few_flows",
            FANOUT.to_owned(),
            FlowCacheMode::Adaptive,
        ),
        few_flows(
            "fanout_few_flows_no_flow_cache",
            FANOUT.to_owned(),
            FlowCacheMode::Off,
        ),
        case("fanout_2p20_table", large_table(FANOUT)),
        Case {
            prefetch: Some(false),
            ..case("fanout_2p20_table_no_prefetch", large_table(FANOUT))
        },
    ]
}

/// The config with its ingress port addressed (both families, as a tunnel's `via` port).
fn addressed(toml: &str) -> String {
    let with = toml.replace(
        "queues = 1\n",
        "queues = 1\naddress = [\"10.0.9.10/24\", \"fd00:9::10/64\"]\n",
    );
    assert_ne!(with, toml, "the bench config changed shape");
    with
}

/// The config with its ingress port addressed and every cabled tool port (`net_null` devices)
/// a tunnel of kind `tunnel` to `remote` (one analyzer on the ingress port's subnet) through it.
fn tunnels(toml: &str, tunnel: &str, remote: &str) -> String {
    let mut out = String::new();
    for line in addressed(toml).lines() {
        if line.starts_with("ports = [") {
            let ports: Vec<String> = line
                .split("name = \"")
                .skip(1)
                .map(|rest| {
                    let name = &rest[..rest.find('"').expect("a quoted port name")];
                    format!(
                        "{{ name = \"{name}\", tunnel = \"{tunnel}\", remote = \"{remote}\", \
                         via = \"mirror\" }}"
                    )
                })
                .collect();
            out.push_str(&format!("ports = [{}]\n", ports.join(", ")));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The link of every tunnel port of the tunnel cases: the ingress port's MAC, a next hop's, the
/// usual MTU (the bench's copies are far below it).
const TUNNEL_LINK: TunnelLink = TunnelLink {
    source_mac: [0x02, 0xf0, 0x22, 0, 0, 0x10],
    next_hop_mac: [0x02, 0xf0, 0x22, 0, 0, 0x01],
    mtu: 1500,
};

/// A pool buffer whose prefetch hint is a prefetch instruction, as an mbuf's is (`drivers`
/// implements it with `rte_prefetch0`); a pool buffer alone, like every buffer of safe code,
/// ignores the hint.
#[derive(Debug)]
struct Prefetching(PoolBuf);

impl PacketBuf for Prefetching {
    fn data(&self) -> &[u8] {
        self.0.data()
    }

    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }

    fn pkt_len(&self) -> usize {
        self.0.pkt_len()
    }

    fn segments(&self) -> usize {
        self.0.segments()
    }

    fn for_each_segment(&self, f: impl FnMut(&[u8])) {
        self.0.for_each_segment(f);
    }

    fn strip_front(&mut self, n: usize) -> bool {
        self.0.strip_front(n)
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    fn share(&self) -> Option<Self> {
        self.0.share().map(Prefetching)
    }

    fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        self.0.prepend(len)
    }

    #[inline(always)]
    fn prefetch<T>(value: &T) {
        common::prefetch(value);
    }
}

/// A pipeline with its plan, the frames, a pool and a sink: everything one call needs.
struct Rig {
    plan: Plan,
    pipeline: Pipeline,
    counters: Arc<WorkerCounters>,
    frames: Rc<Vec<Vec<u8>>>,
    pool: Rc<FixedPool>,
    sink: TracingSink<CountingSink>,
    watch: Watch,
    burst: [Option<Prefetching>; BURST],
    next_frame: usize,
    now_ns: u64,
}

impl Rig {
    fn new(case: &Case, frames: Rc<Vec<Vec<u8>>>) -> Rig {
        let toml = case.toml.as_str();
        let config = config::fixtures::config(toml);
        let dedup_settings = config.dedup.as_ref();
        assert!(
            toml.contains("[dedup]") == dedup_settings.is_some(),
            "the bench config changed shape"
        );
        let counters = Arc::new(WorkerCounters::new(&config));
        let facts = PortFacts {
            tunnels: vec![case.tunnels.then_some(TUNNEL_LINK); config.tool_ports.len()],
            ingress_macs: vec![Some(TUNNEL_LINK.source_mac)],
            ..PortFacts::default()
        };
        let plan = Plan::build(&config, 1, &facts, Box::new([counters.clone()]));
        assert_eq!(
            plan.egress.iter().filter(|t| t.is_some()).count(),
            if case.tunnels { plan.tool_ports } else { 0 },
            "{}: every tool port a resolved tunnel, or none",
            case.name
        );
        let dedup = dedup_settings.and_then(|d| Dedup::for_settings(d, Some(1)));
        // The workload's sessions all send to the same groups.
        let copies_per_packet = config.sessions[0].tools.len();
        let mut pipeline = Pipeline::new(0, &plan, dedup);
        if let Some(on) = case.prefetch {
            pipeline.set_dedup_prefetch(on);
        }
        pipeline.set_flow_cache(case.flow_cache);
        Rig {
            pipeline,
            sink: {
                let mut sink = TracingSink::new(CountingSink::new(plan.tool_ports));
                sink.traced = if case.watch == Watch::TraceAll {
                    u32::MAX
                } else {
                    0
                };
                sink
            },
            watch: case.watch,
            plan,
            counters,
            frames: if case.conversations == 4096 {
                frames
            } else {
                Rc::new(workload::frames_of(FRAMES, case.conversations))
            },
            // An mbuf's headroom (`RTE_PKTMBUF_HEADROOM`), where the tunnel cases' headers go.
            pool: FixedPool::with_headroom(BURST * (copies_per_packet + 1), 2048, 128),
            burst: [const { None }; BURST],
            next_frame: 0,
            now_ns: 1_000_000_000,
        }
    }

    /// Copies the next 32 frames into pool buffers, as the driver does.
    #[inline]
    fn refill(&mut self) {
        for slot in &mut self.burst {
            *slot = self
                .pool
                .packet(&self.frames[self.next_frame])
                .map(Prefetching);
            self.next_frame = (self.next_frame + 1) % self.frames.len();
        }
    }

    /// One burst: refill, then the pipeline.
    #[inline]
    fn call(&mut self) {
        self.refill();
        if self.watch == Watch::Off {
            self.pipeline.run(
                &self.plan,
                self.now_ns,
                &mut self.burst,
                &mut self.sink.inner,
            );
        } else {
            // As the worker does: each traced packet's record starts from the packet.
            self.sink.begin(&self.burst);
            self.pipeline
                .run_observed(&self.plan, self.now_ns, &mut self.burst, &mut self.sink);
        }
        self.now_ns += BURST_NS;
    }

    /// Every packet went out once per tool group (nothing filtered, nothing duplicate).
    fn check(&self, name: &str) {
        let rx = self.counters.rx_packets.get();
        let delivered = self.counters.outcome_count(Outcome::Delivered);
        assert_eq!(
            delivered, rx,
            "{name}: every packet must be delivered: {:?}",
            self.sink
        );
        let copies = self.sink.inner.total_delivered();
        assert_eq!(
            copies,
            rx * self.plan.sessions[0].groups.len() as u64,
            "{name}: one copy per group"
        );
    }
}

fn main() {
    let frames = Rc::new(workload::frames(FRAMES));
    if let Some(calls) = fixed_calls() {
        let wanted = std::env::var("BENCH_CASE").unwrap_or_else(|_| "single".into());
        let case = cases()
            .into_iter()
            .find(|c| c.name == wanted)
            .expect("BENCH_CASE: no such case");
        let mut rig = Rig::new(&case, frames);
        for _ in 0..calls {
            rig.call();
        }
        rig.check(case.name);
        return;
    }

    let mut rows: Vec<(String, Cost)> = Vec::new();
    let refill = {
        let mut rig = Rig::new(&cases()[0], frames.clone());
        least_cost(BURST, 200, 1024, || {
            rig.refill();
            for slot in &mut rig.burst {
                drop(slot.take());
            }
        })
    };
    // `BENCH_CASES=a,b,…`: only those cases, and no criterion run (A/B comparisons).
    let only = std::env::var("BENCH_CASES").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|n| n == name))
    };
    for case in cases().into_iter().filter(|c| wanted(c.name)) {
        let mut rig = Rig::new(&case, frames.clone());
        let total = least_cost(BURST, 200, 1024, || rig.call());
        rig.check(case.name);
        rows.push((format!("{} (with the copy in)", case.name), total));
        rows.push((case.name.to_owned(), total.minus(refill)));
    }
    rows.push(("copy of the frames into buffers, alone".to_owned(), refill));
    print_costs("pipeline, 114-byte frames, burst 32", &rows);
    if only.is_some() {
        return;
    }

    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &frames);
    criterion.final_summary();
}

fn bench(c: &mut Criterion, frames: &Rc<Vec<Vec<u8>>>) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BURST as u64));
    for case in cases() {
        let mut rig = Rig::new(&case, frames.clone());
        group.bench_function(case.name, |b| b.iter(|| rig.call()));
    }
    group.finish();
}
