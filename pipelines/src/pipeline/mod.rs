//! One worker's pipeline: a burst in, one decision per packet, then dispatch.
//!
//! # Design
//! As in VPP and DPDK's l3fwd, a burst is processed in passes over the whole burst, writing one
//! `Decision` per packet into a fixed array (no allocation):
//! 1. **decide**: decap, session, filter, balance (the tool port of every tool group), the
//!    sender rule (the copy taken at a packet's receiver leaves each group that the copy taken at
//!    its sender reaches on the same port: [`crate::stage::dedup::sender`]) and the dedup key;
//!    errors are data (a drop outcome), not control flow. What depends only on the session,
//!    tunnel and inner flow (direction, filter verdict, ports, sender rule: a route, `route.rs`) is
//!    computed once per flow and kept in the worker's flow cache
//!    ([`crate::stage::flow_cache`]), emptied when a new plan (a reload, a link or next-hop
//!    change) is taken on; the counters are written per packet from the route, cached or not;
//! 2. **prefetch** (large dedup tables only): the table buckets of every key of the burst start
//!    loading ([`PacketBuf::prefetch`], a prefetch instruction on mbufs), so that their cache
//!    misses overlap instead of being paid one after the other;
//! 3. **dedup and dispatch**, in arrival order: the window's check of each copy (under its port,
//!    or its group for round-robin: [`GroupPlan::window_scope`]), the outcome, then
//!    dropped packets go to the sink to be freed in bulk, delivered packets go to the sink once
//!    per tool group — extra groups get a shared handle (an mbuf clone, no payload copy), and
//!    slicing cuts only the handle of the group that asked for it.
//!
//! The prefetch pays only when the table does not fit the caches: then a check is a memory
//! access, and a burst's checks waiting for memory one after the other cost more than the rest
//! of the pipeline; a table that fits the caches only pays for the extra pass (BENCHMARKS.md has
//! the figures). So it is on for tables of [`DEDUP_PREFETCH_MIN_BYTES`] or more. Both buckets of
//! a key are prefetched: a check reads both, and prefetching only the first did not pay.
//!
//! Every index the passes use (session, filter, rule, tool group, tool port) was checked once,
//! when the plan was built, to be inside the plan's tables and the workers' counters
//! ([`Plan::build`]): the passes index directly, so that a broken invariant stops the worker
//! (`panic = "abort"`) instead of counting a packet under the wrong outcome or under none.
//!
//! **Watching.** [`Pipeline::run_observed`] is the same passes with a sink that also observes
//! ([`crate::observe`]): each packet's outcome where it is counted, each copy as the port gets
//! it, and a trace record filled for the packets it traces. [`Pipeline::run`] is
//! `run_observed` with an observer whose hooks are empty, so the plain pipeline compiles to
//! what it was before anything watched (the callgrind count of the pipeline bench is the
//! proof, BENCHMARKS.md).
//!
//! **Inlining.** The plain pipeline is one function (`run`, never inlined into its caller),
//! with the stages inlined into its passes. A program that also runs the watched pipeline (the
//! broker does) has a second copy of the passes calling the same stage functions, and LLVM
//! inlines a function called from two places much less readily than one called from one: the
//! stage functions on the way of every packet (decap and its fast path, the filter's lookups,
//! the dedup key, check and scan) are therefore `#[inline(always)]`, which keeps the plain
//! pipeline's code what it was (measured: without it, the pipeline bench's `single` case costs
//! 7% more instructions per packet). So are the first pass's `decide` and the last pass's
//! `deliver`: left to LLVM they stayed calls, whose argument passing, spills and register saves
//! cost more per packet than the duplication of their bodies costs in code size (callgrind on the
//! pipeline bench: fewer instructions per packet in every case measured).
//!
//! Accounting: every packet handed to [`Pipeline::run`] is counted in `rx_packets` and in
//! exactly one outcome counter; every copy given to the sink is counted on its port (`copies`),
//! and a copy that could not be made (no buffer for the clone) is counted there too.
//!
//! # Limitations
//! - A session delivers to at most [`config::MAX_TOOLS_PER_SESSION`] tool groups (checked by the
//!   config). Balancing by `flow` falls back to the address pair for packets without ports and
//!   to the mirror source for non-IP inner frames.
//! - Order: a tool port receives the packets of one RX queue in the order they arrived. When
//!   both ends of a connection are mirrored and the two copies land on different RX queues
//!   (different workers), dedup keeps whichever copy is checked first, so the surviving packets
//!   of one flow can come from both queues and interleave slightly out of order (the conformance
//!   test measured 2 to 7 inversions in 650 packets). Analyzers reassemble TCP and tolerate
//!   this. An ingress port with `rss = "inner"` (a NIC hashing the inner headers with a
//!   symmetric key) puts both copies and both directions of a connection on one queue, and then
//!   every flow keeps its order; so does a single RX queue. The sender rule keeps the copies of
//!   the sender where both would meet: one outer flow per direction, so each direction of a
//!   connection keeps its order there too.
//! - Round-robin takes a port's turn only for a copy actually delivered (after dedup), so
//!   duplicates do not skew it; turns are per worker, so with several workers the ports are
//!   used evenly overall but not in strict alternation.

mod route;

use std::sync::Arc;

use config::{Action, Balance, DedupSettings};

use std::sync::atomic::Ordering;

use crate::buf::{PacketBuf, Sink};
use crate::counters::{PortCounters, WorkerCounters};
use crate::egress::{PacketFields, Template};
use crate::inner::parse_inner;
use crate::neighbour::PortAddresses;
use crate::observe::{
    CopyTrace, DecapTrace, DedupTrace, FilterTrace, Observer, TxResult, Unobserved,
};
use crate::outcome::Outcome;
use crate::plan::{GroupPlan, Plan};
use crate::stage::decap::{Decapped, Tunnel, decap, describe};
use crate::stage::dedup::{DedupKey, DedupKeyer, DedupTable, Seen};
use crate::stage::flow_cache::{FlowCache, FlowCacheKey};
use crate::stage::local::{Local, classify};
use route::{Route, Target, bits_of, trace_groups};

/// No VNI: VNIs have 24 bits (what `Pipeline::last_vni` holds before the first lookup).
const NO_VNI: u32 = u32::MAX;

/// Packets per RX burst, as in DPDK's examples: big enough to amortise a poll, small enough that
/// the burst's headers stay in L1.
pub const BURST: usize = 32;

/// Dedup tables of this size or more get their buckets prefetched for the whole burst before the
/// checks: beyond the 1–2 MiB of a core's L2 a check is a memory access (see the module docs).
pub const DEDUP_PREFETCH_MIN_BYTES: usize = 1 << 20;

/// The fate of one packet of the burst, as the first pass decides it.
#[derive(Clone, Copy, Debug)]
struct Decision {
    /// The packet's session; `None`: dropped by the first pass (its outcome is already counted).
    session: Option<u16>,
    /// For the addressed port itself: to the control side (its outcome is already counted).
    punt: bool,
    /// Direction, filter verdict, flow hash and the copies before de-duplication (computed in
    /// place, or copied from the flow cache); `route.targets[..route.copies]` is what the last
    /// pass delivers.
    route: Route,
    /// The packet's dedup key, when its session de-duplicates.
    dedup_key: Option<DedupKey>,
    /// For tunnel ports' headers, when the plan has any: the mirror session's VNI (the
    /// packet's own for a session without one, 0 untunnelled).
    egress_vni: u32,
}

impl Decision {
    const DROP: Decision = Decision {
        session: None,
        punt: false,
        route: Route::EMPTY,
        dedup_key: None,
        egress_vni: 0,
    };
}

/// De-duplication shared by the workers: the table, and how to key packets for it.
#[derive(Debug, Clone)]
pub struct Dedup {
    pub table: Arc<DedupTable>,
    pub keyer: Arc<DedupKeyer>,
}

impl Dedup {
    /// The table and keyer `settings` ask for, or `None` when its mode keeps no window (mode
    /// "sender": the rule lives in the plan). `seed` gives a deterministic keyer (tests, benches,
    /// reproducing a trace); `None` draws a secret now.
    pub fn for_settings(settings: &DedupSettings, seed: Option<u64>) -> Option<Dedup> {
        if !settings.mode.uses_window() {
            return None;
        }
        let (dscp_ecn, vlan) = (settings.ignore_dscp_ecn, settings.ignore_vlan);
        let keyer = match seed {
            Some(seed) => DedupKeyer::with_seed(seed, dscp_ecn, vlan),
            None => DedupKeyer::new(dscp_ecn, vlan),
        };
        Some(Dedup {
            table: Arc::new(DedupTable::new(settings.capacity, settings.window)),
            keyer: Arc::new(keyer),
        })
    }
}

/// The per-worker pipeline state.
#[derive(Debug)]
pub struct Pipeline {
    /// This worker's index: which of the plan's counters it writes.
    worker: usize,
    /// The ingress port the worker polls: which of the plan's local addresses are its port's.
    ingress: usize,
    /// The IPv4 identification of the next tunnelled copy (any value does: DF is set).
    ip_ident: u16,
    counters: Arc<WorkerCounters>,
    dedup: Option<Dedup>,
    /// Next turn of each round-robin group.
    turns: Box<[u32]>,
    /// Last VNI looked up and its session (bursts tend to come from one mirror session);
    /// [`NO_VNI`] before the first lookup of a plan. Two plain fields, not an `Option`: the
    /// check is one compare and the update two stores.
    last_vni: (u32, Option<u16>),
    /// Generation of the plan `turns` and `last_vni` were made for.
    generation: u64,
    /// Whether to prefetch the dedup buckets of a burst before checking them.
    prefetch_dedup: bool,
    /// What the first pass decided for recent flows, for the plan of `generation` (`None`: off).
    flow_cache: Option<FlowCache<Route>>,
    decisions: [Decision; BURST],
}

impl Pipeline {
    /// The pipeline of worker `worker` (it counts into `plan`'s counters of that worker),
    /// de-duplicating through `dedup` when the config has it.
    ///
    /// # Panics
    /// If `plan` has no counters for `worker`: the control plane builds plans for every worker.
    pub fn new(worker: usize, plan: &Plan, dedup: Option<Dedup>) -> Pipeline {
        let counters = match plan.counters_of(worker) {
            Some(c) => c.clone(),
            None => panic!(
                "plan {} has no counters for worker {worker}",
                plan.generation
            ),
        };
        let prefetch_dedup = dedup
            .as_ref()
            .is_some_and(|d| d.table.memory_bytes() >= DEDUP_PREFETCH_MIN_BYTES);
        Pipeline {
            worker,
            ingress: 0,
            ip_ident: 0,
            counters,
            prefetch_dedup,
            dedup,
            turns: Box::new([]),
            last_vni: (NO_VNI, None),
            generation: u64::MAX,
            // Allocated here, once: the per-packet path never allocates.
            flow_cache: Some(FlowCache::new(true)),
            decisions: [Decision::DROP; BURST],
        }
    }

    /// The same pipeline on ingress port `ingress` (the first one otherwise): the frames of an
    /// addressed port for the port itself go to the control side.
    ///
    /// # Panics
    /// If `plan` has no such ingress port.
    pub fn on_ingress(mut self, ingress: usize, plan: &Plan) -> Pipeline {
        assert!(
            ingress < plan.local.len().max(1),
            "plan {} has no ingress port {ingress}",
            plan.generation
        );
        self.ingress = ingress;
        self
    }

    /// The counters this pipeline writes.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Turns the prefetch of dedup buckets on or off, whatever the table's size (benches compare
    /// the two).
    #[cfg(any(test, feature = "testing"))]
    pub fn set_dedup_prefetch(&mut self, on: bool) {
        self.prefetch_dedup = on;
    }

    /// Sets how the flow cache is used (benches and tests compare the modes; the default is
    /// [`FlowCacheMode::Adaptive`]). It starts empty.
    #[cfg(any(test, feature = "testing"))]
    pub fn set_flow_cache(&mut self, mode: crate::stage::flow_cache::FlowCacheMode) {
        use crate::stage::flow_cache::FlowCacheMode;
        self.flow_cache = match mode {
            FlowCacheMode::Off => None,
            FlowCacheMode::Adaptive => Some(FlowCache::new(true)),
            FlowCacheMode::Always => Some(FlowCache::new(false)),
        };
    }

    /// Processes `pkts` (each `Some`; `None` entries are skipped) with `plan` at time `now_ns`,
    /// leaving every entry `None`: each packet went to `sink`, delivered or discarded.
    ///
    /// Never inlined: see "Inlining" in the module docs.
    #[inline(never)]
    pub fn run<B: PacketBuf, S: Sink<B>>(
        &mut self,
        plan: &Plan,
        now_ns: u64,
        pkts: &mut [Option<B>],
        sink: &mut S,
    ) {
        self.run_observed(plan, now_ns, pkts, &mut Unobserved(sink));
    }

    /// [`Pipeline::run`], with `sink` watching too ([`crate::observe`]): it sees every
    /// packet's outcome and every copy delivered, by the packet's index in `pkts`, and the
    /// packets it traces get their records filled.
    ///
    /// Inlined into [`Pipeline::run`], so that the plain pipeline is one function, as it was
    /// before anyone watched: the stages are inlined into it the same way.
    #[inline(always)]
    pub fn run_observed<B: PacketBuf, S: Sink<B> + Observer<B>>(
        &mut self,
        plan: &Plan,
        now_ns: u64,
        pkts: &mut [Option<B>],
        sink: &mut S,
    ) {
        self.adopt(plan);
        let counters = &*self.counters;
        let dedup = self.dedup.as_ref();
        // The addresses of the port polled, when it has any: once per call, not per packet.
        let own = plan.local.get(self.ingress).and_then(Option::as_ref);
        for (chunk_index, chunk) in pkts.chunks_mut(BURST).enumerate() {
            let first = chunk_index * BURST;
            let (mut packets, mut bytes) = (0, 0);
            for (i, (slot, decision)) in chunk.iter_mut().zip(self.decisions.iter_mut()).enumerate()
            {
                if let Some(pkt) = slot {
                    packets += 1;
                    bytes += pkt.pkt_len() as u64;
                    decide(
                        counters,
                        dedup,
                        &self.turns,
                        &mut self.last_vni,
                        self.flow_cache.as_mut(),
                        plan,
                        own,
                        pkt,
                        decision,
                        sink,
                        first + i,
                    );
                }
            }
            counters.rx_packets.add(packets);
            counters.rx_bytes.add(bytes);
            if let (Some(d), true) = (dedup, self.prefetch_dedup) {
                for (slot, decision) in chunk.iter().zip(self.decisions.iter()) {
                    if let (Some(_), Some(key)) = (slot, decision.dedup_key) {
                        for target in &decision.route.targets[..usize::from(decision.route.copies)]
                        {
                            let scope =
                                plan.groups[usize::from(target.group)].window_scope(target.port);
                            let [first, second] = d.table.buckets_of(key, scope);
                            B::prefetch(first);
                            B::prefetch(second);
                        }
                    }
                }
            }
            for (i, (slot, decision)) in chunk.iter_mut().zip(self.decisions.iter_mut()).enumerate()
            {
                if let Some(pkt) = slot.take() {
                    if let Some(session) = decision.session {
                        finish(
                            counters,
                            dedup,
                            &mut self.turns,
                            plan,
                            now_ns,
                            session,
                            decision,
                            sink,
                            first + i,
                        );
                    }
                    dispatch(
                        counters,
                        plan,
                        decision,
                        &mut self.ip_ident,
                        pkt,
                        sink,
                        first + i,
                    );
                }
            }
        }
    }

    /// Takes on `plan` if it is not the current one: its counters and what depends on its shape.
    /// Off the hot path (once per plan change). Returns whether the counters changed (the worker
    /// then hands them to its TX side too).
    pub fn adopt(&mut self, plan: &Plan) -> bool {
        if plan.generation == self.generation {
            return false;
        }
        if self.turns.len() != plan.groups.len() {
            self.turns = vec![0; plan.groups.len()].into_boxed_slice();
        }
        self.last_vni = (NO_VNI, None);
        if let Some(cache) = &mut self.flow_cache {
            cache.clear();
        }
        self.generation = plan.generation;
        match plan.counters_of(self.worker) {
            Some(c) if !Arc::ptr_eq(c, &self.counters) => {
                self.counters = c.clone();
                true
            }
            _ => false,
        }
    }
}

/// Counts packet `index`'s single outcome, and tells the observer.
#[inline(always)]
fn count_outcome<B, O: Observer<B>>(
    counters: &WorkerCounters,
    observer: &mut O,
    index: usize,
    outcome: Outcome,
) {
    counters.outcome(outcome);
    if let Some(t) = observer.trace(index) {
        t.outcome = Some(outcome);
    }
    observer.outcome(index, outcome);
}

/// The trace of a packet the decapsulation stage passed: what it removed, what is left.
#[inline(always)]
fn trace_decapped<B: PacketBuf, O: Observer<B>>(
    observer: &mut O,
    index: usize,
    pkt: &B,
    vni: Option<u32>,
) {
    if let Some(t) = observer.trace(index) {
        t.inner_len = u32::try_from(pkt.pkt_len()).unwrap_or(u32::MAX);
        t.vni = vni;
        match &mut t.decap {
            DecapTrace::Tunnelled { stripped, .. } if vni.is_some() => {
                *stripped = t.len.saturating_sub(t.inner_len);
            }
            other => *other = DecapTrace::Untunneled,
        }
    }
}

/// The first pass for one packet: decap, session, filter, balance and dedup key, written into
/// `decision` (in place: it is large, and mostly left as it was).
// Always inlined: see "Inlining" in the module docs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn decide<B: PacketBuf, O: Observer<B>>(
    counters: &WorkerCounters,
    dedup: Option<&Dedup>,
    turns: &[u32],
    last_vni: &mut (u32, Option<u16>),
    flow_cache: Option<&mut FlowCache<Route>>,
    plan: &Plan,
    own: Option<&PortAddresses>,
    pkt: &mut B,
    decision: &mut Decision,
    observer: &mut O,
    index: usize,
) {
    decision.session = None;
    decision.punt = false;
    decision.route.copies = 0;
    decision.dedup_key = None;

    // On an addressed port, its own traffic (ARP, ND, ping, TCP, non-mirror UDP) first.
    if let Some(own) = own {
        if classify(own, &plan.decap, pkt.data()) == Local::Control {
            decision.punt = true;
            return count_outcome(counters, observer, index, Outcome::Control);
        }
    }

    if let Some(t) = observer.trace(index) {
        let (layers, depth) = describe(&plan.decap, pkt.data(), pkt.pkt_len());
        t.decap = DecapTrace::Tunnelled {
            layers,
            depth,
            stripped: 0,
        };
    }
    // The decap result stays where decap wrote it and is read through a reference: moving the
    // tunnel (two `IpAddr`s written field by field) as a whole made wide loads of narrow
    // stores, which the CPU cannot forward (a stall per packet in the end-to-end profile).
    let decapped = decap(&plan.decap, pkt);
    let (session_id, tunnel): (u16, Option<&Tunnel>) = match &decapped {
        Err(outcome) => {
            if let Some(t) = observer.trace(index) {
                t.decap = DecapTrace::Refused;
            }
            return count_outcome(counters, observer, index, *outcome);
        }
        Ok(Decapped::Tunnelled(tunnel)) => {
            trace_decapped(observer, index, pkt, Some(tunnel.vni));
            let session = if last_vni.0 == tunnel.vni {
                last_vni.1
            } else {
                let session = plan.session_for_vni(tunnel.vni);
                *last_vni = (tunnel.vni, session);
                session
            };
            match session {
                Some(s) => (s, Some(tunnel)),
                None => return count_outcome(counters, observer, index, Outcome::UnknownSession),
            }
        }
        Ok(Decapped::Untunneled) => {
            trace_decapped(observer, index, pkt, None);
            match plan.untunneled_session {
                Some(s) => (s, None),
                // The decap stage only passes untunneled frames when the config names their
                // session.
                None => return count_outcome(counters, observer, index, Outcome::NotTunnel),
            }
        }
    };
    if let Some(t) = observer.trace(index) {
        t.session = Some(session_id);
    }
    let session = &plan.sessions[usize::from(session_id)];
    let session_counters = &counters.sessions[usize::from(session_id)];
    session_counters.packets.incr();
    session_counters.bytes.add(pkt.pkt_len() as u64);

    let inner = parse_inner(pkt.data(), pkt.pkt_len());
    if inner.truncated_by_source {
        session_counters.truncated_by_source.incr();
    }
    let flow = inner.flow.as_ref();
    let route = &mut decision.route;
    match (flow_cache, flow) {
        (Some(cache), Some(f)) => {
            if cache.in_use() {
                let key =
                    FlowCacheKey::new(session_id, tunnel.map(|t| (t.mirror_source, t.vni)), f);
                // A miss: out of line, so that the hits' path stays short.
                cache.fill(&key, route, |route| {
                    route.compute_outlined(plan, session, tunnel, flow)
                });
            } else {
                route.compute(plan, session, tunnel, flow);
            }
        }
        _ => route.compute(plan, session, tunnel, flow),
    }
    if let Some(t) = observer.trace(index) {
        t.flow = inner.flow;
        t.direction = route.direction;
    }

    if let (Some(filter_id), Some(verdict)) = (session.filter, route.verdict) {
        let hits = &counters.filters[usize::from(filter_id)];
        match verdict.rule {
            Some(rule) => hits.rules[usize::from(rule)].incr(),
            None => hits.default.incr(),
        }
        if let Some(t) = observer.trace(index) {
            t.filter = Some(FilterTrace {
                filter: filter_id,
                rule: verdict.rule,
                action: verdict.action,
            });
        }
        if verdict.action == Action::Reject {
            session_counters.filtered.incr();
            return count_outcome(counters, observer, index, Outcome::Filtered);
        }
    }

    if let Some(d) = dedup.filter(|_| session.dedup) {
        decision.dedup_key = Some(d.keyer.key(
            pkt,
            usize::from(inner.l3_offset),
            &inner.vlan_ids[..usize::from(inner.vlan_count)],
        ));
    }

    decision.session = Some(session_id);
    if plan.has_tunnels {
        decision.egress_vni = session.vni.or(tunnel.map(|t| t.vni)).unwrap_or(0);
    }
    let route = &decision.route;
    for position in bits_of(route.no_live_port) {
        counters.groups[usize::from(session.groups[position])]
            .no_live_port
            .incr();
    }
    for position in bits_of(route.withheld) {
        counters.groups[usize::from(session.groups[position])]
            .sender_duplicates
            .incr();
    }
    if let Some(t) = observer.trace(index) {
        trace_groups(t, plan, session, tunnel, flow, route, turns);
    }
}

/// The last pass's decisions for a packet the first pass kept: each group's dedup check (the
/// groups that saw the packet within the window leave `targets`), the port of each round-robin
/// group that still gets a copy (its turn advances only then), then the packet's outcome.
#[inline]
#[allow(clippy::too_many_arguments)]
fn finish<B, O: Observer<B>>(
    counters: &WorkerCounters,
    dedup: Option<&Dedup>,
    turns: &mut [u32],
    plan: &Plan,
    now_ns: u64,
    session: u16,
    decision: &mut Decision,
    observer: &mut O,
    index: usize,
) {
    let mut window_duplicate = false;
    if let (Some(d), Some(key)) = (dedup, decision.dedup_key) {
        let mut kept = 0;
        for i in 0..usize::from(decision.route.copies) {
            let target = decision.route.targets[i];
            let g = usize::from(target.group);
            let group = &plan.groups[g];
            if group.dedup {
                let seen = d.table.check(key, group.window_scope(target.port), now_ns);
                if let Some(t) = observer
                    .trace(index)
                    .and_then(|t| t.group_mut(target.group))
                {
                    t.dedup = match seen {
                        Seen::Duplicate => DedupTrace::Duplicate,
                        Seen::NewEvictedLive => DedupTrace::NewEvictedLive,
                        Seen::New => DedupTrace::New,
                    };
                }
                match seen {
                    Seen::Duplicate => {
                        counters.groups[g].duplicates.incr();
                        window_duplicate = true;
                        continue;
                    }
                    Seen::NewEvictedLive => counters.groups[g].dedup_evictions.incr(),
                    Seen::New => {}
                }
            }
            decision.route.targets[kept] = target;
            kept += 1;
        }
        // At most `copies`, a u8.
        decision.route.copies = kept as u8;
    }
    let route = &mut decision.route;
    for target in &mut route.targets[..usize::from(route.copies)] {
        let g = usize::from(target.group);
        let group = &plan.groups[g];
        if group.balance == Balance::RoundRobin {
            let turn = turns[g];
            if let Some(port) = round_robin(group, &mut turns[g]) {
                target.port = port;
                if let Some(t) = observer
                    .trace(index)
                    .and_then(|t| t.group_mut(target.group))
                {
                    t.key = u64::from(turn);
                    t.port = Some(port);
                }
            }
        }
    }
    let session_counters = &counters.sessions[usize::from(session)];
    let outcome = if route.copies > 0 {
        session_counters.delivered.incr();
        Outcome::Delivered
    } else if window_duplicate || route.withheld != 0 {
        session_counters.duplicate.incr();
        if !window_duplicate {
            session_counters.duplicate_sender.incr();
        }
        Outcome::Duplicate
    } else {
        session_counters.no_live_port.incr();
        Outcome::NoLivePort
    };
    count_outcome(counters, observer, index, outcome);
}

#[inline]
fn round_robin(group: &GroupPlan, turn: &mut u32) -> Option<u16> {
    let port = group.port_for_turn(*turn);
    *turn = turn.wrapping_add(1);
    port
}

/// The last pass for one packet: hand it, or its copies, to the sink.
#[inline]
fn dispatch<B: PacketBuf, S: Sink<B> + Observer<B>>(
    counters: &WorkerCounters,
    plan: &Plan,
    decision: &Decision,
    ip_ident: &mut u16,
    pkt: B,
    sink: &mut S,
    index: usize,
) {
    if decision.punt {
        sink.punt(pkt);
        return;
    }
    let copies = usize::from(decision.route.copies);
    let Some((last, others)) = decision.route.targets[..copies].split_last() else {
        sink.discard(pkt);
        return;
    };
    // Clones first, while the original still holds the whole frame; the original goes last.
    for target in others {
        match pkt.share() {
            Some(copy) => deliver(
                counters, plan, decision, ip_ident, *target, copy, sink, index,
            ),
            None => {
                let port = &counters.ports[usize::from(target.port)];
                port.copies.incr();
                port.no_buffer.incr();
                if let Some(t) = sink.trace(index).and_then(|t| t.group_mut(target.group)) {
                    t.copy = CopyTrace::NoBuffer;
                }
            }
        }
    }
    deliver(counters, plan, decision, ip_ident, *last, pkt, sink, index);
}

// Always inlined: see "Inlining" in the module docs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn deliver<B: PacketBuf, S: Sink<B> + Observer<B>>(
    counters: &WorkerCounters,
    plan: &Plan,
    decision: &Decision,
    ip_ident: &mut u16,
    target: Target,
    mut pkt: B,
    sink: &mut S,
    index: usize,
) {
    let group = usize::from(target.group);
    let group_counters = &counters.groups[group];
    if let Some(limit) = plan.groups[group].slice {
        if pkt.pkt_len() > limit {
            pkt.truncate(limit);
            group_counters.sliced.incr();
            if let Some(t) = sink.trace(index).and_then(|t| t.group_mut(target.group)) {
                t.sliced_to = Some(u32::try_from(limit).unwrap_or(u32::MAX));
            }
        }
    }
    group_counters.copies.incr();
    let port_index = usize::from(target.port);
    let port = &counters.ports[port_index];
    port.copies.incr();
    let mut encapsulation = None;
    // Only a plan with tunnel ports has templates: one flag of the plan instead of a port's
    // entry (bound check, load) for the plans without.
    let template = if plan.has_tunnels {
        plan.egress[port_index].as_ref()
    } else {
        None
    };
    if let Some(template) = template {
        // For a trace: whether the copy is cut to fit, which `encapsulate` decides below.
        let cut = sink
            .trace(index)
            .map(|_| pkt.pkt_len() > template.max_inner_len());
        if !encapsulate(
            template, plan, port_index, decision, ip_ident, &mut pkt, port,
        ) {
            port.no_buffer.incr();
            if let Some(t) = sink.trace(index).and_then(|t| t.group_mut(target.group)) {
                t.copy = CopyTrace::NoBuffer;
            }
            sink.discard(pkt);
            return;
        }
        encapsulation = cut.map(|cut| (template.overhead(), cut));
    }
    port.copy_bytes.add(pkt.pkt_len() as u64);
    if let Some(t) = sink.trace(index).and_then(|t| t.group_mut(target.group)) {
        t.copy = CopyTrace::Queued {
            len: u32::try_from(pkt.pkt_len()).unwrap_or(u32::MAX),
            encapsulation: encapsulation.map(|(overhead, _)| overhead as u16),
            egress_truncated: encapsulation.is_some_and(|(_, cut)| cut),
            tx: TxResult::Pending,
        };
    }
    sink.delivering(index, target.group, target.port, &pkt);
    sink.deliver(target.port, pkt);
}

/// The egress step of a tunnel port: the copy cut to fit the via port's MTU once encapsulated
/// (counted), then its outer headers chained in front, from the port's template patched for
/// this packet. Returns `false` when no buffer was left for the headers.
#[inline]
fn encapsulate<B: PacketBuf>(
    template: &Template,
    plan: &Plan,
    port_index: usize,
    decision: &Decision,
    ip_ident: &mut u16,
    pkt: &mut B,
    port: &PortCounters,
) -> bool {
    let truncated = pkt.pkt_len() > template.max_inner_len();
    if truncated {
        pkt.truncate(template.max_inner_len());
        port.egress_truncated.incr();
    }
    let inner = template.inner_frame_of(&*pkt);
    let sequence = if template.uses_sequence() {
        // One shared sequence per ERSPAN port: the analyzer sees one increasing series.
        plan.sequences[port_index].fetch_add(1, Ordering::Relaxed)
    } else {
        0
    };
    *ip_ident = ip_ident.wrapping_add(1);
    let fields = PacketFields {
        vni: decision.egress_vni,
        direction: decision.route.direction,
        flow_hash: decision.route.flow_hash,
        ip_ident: *ip_ident,
        sequence,
        truncated,
    };
    let Some(header) = pkt.prepend(template.overhead()) else {
        return false;
    };
    // The header is exactly the template's length and the copy fits it: cannot fail.
    let written = template.write(&fields, &inner, header);
    debug_assert_eq!(written, Ok(template.overhead()));
    written.is_ok()
}
