//! The poll-mode worker: one per ingress RX queue, pinned to its lcore, run to completion.
//!
//! # Design
//! The loop is DPDK's l2fwd shape: `rx_burst` into a stack array of [`BURST`] mbufs, the whole
//! pipeline on the burst inside this thread, packets buffered per tool port and sent with
//! `tx_burst` on this worker's TX queue of that port. Nothing per packet takes a lock, allocates,
//! logs, or touches a cache line another worker writes (counters are this worker's own; the
//! dedup table is the one structure shared by design).
//!
//! The worker reads the current [`Plan`] through an `arc-swap` cache: one relaxed load of the
//! plan pointer per poll, compared with the plan it holds (a full `ArcSwap::load` costs a few
//! atomic read-modify-writes). A reload or a link change takes effect at the next poll, never in
//! the middle of a burst. The worker drains its TX buffers when the drain timer fires or the RX
//! queue is idle, so a trickle of packets is not held back waiting for a full buffer.
//!
//! A live capture or a packet trace costs the loop one relaxed load per poll while none runs
//! ([`WorkerTap::changed`]); while one runs, the bursts go through [`WorkerTap::run_burst`]
//! instead of the plain pipeline ([`super::tap`]).
//!
//! One turn of the loop is [`Worker::poll`], public so that a test can run the real loop a known
//! number of times (the zero-allocation test).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;
use drivers::{Mbuf, RxQueue};
use pipelines::pipeline::{BURST, Pipeline};
use pipelines::plan::Plan;

use super::clock::Clock;
use super::tap::WorkerTap;
use super::tx::TxSet;

/// How long a packet may wait in a TX buffer that is not full, as in l2fwd (100 µs): long enough
/// to batch, short enough that analyzers see no added latency.
const DRAIN_NS: u64 = 100_000;

/// Everything one worker owns.
#[derive(Debug)]
pub struct Worker {
    pub rx: RxQueue,
    pub tx: TxSet,
    pub pipeline: Pipeline,
    /// Its side of the live captures and packet traces.
    pub tap: WorkerTap,
    pub plans: Arc<ArcSwap<Plan>>,
    pub stop: Arc<AtomicBool>,
    pub clock: Clock,
}

/// What the loop carries from one poll to the next.
#[derive(Debug)]
pub struct PollState {
    /// The RX burst, filled by the driver and emptied by the pipeline.
    burst: [Option<Mbuf>; BURST],
    /// When the TX buffers are drained next, in [`Clock`] nanoseconds.
    next_drain: u64,
    /// The plan the worker runs, refreshed when the control plane swaps in another.
    plan: Cache<Arc<ArcSwap<Plan>>, Arc<Plan>>,
}

impl PollState {
    pub fn new(worker: &Worker) -> PollState {
        PollState {
            burst: [const { None }; BURST],
            next_drain: worker.clock.now_ns() + DRAIN_NS,
            plan: Cache::new(worker.plans.clone()),
        }
    }
}

impl Worker {
    /// Polls until `stop` is set, then flushes what is buffered and returns.
    pub fn run(mut self) {
        let mut state = PollState::new(&self);
        while !self.stop.load(Ordering::Relaxed) {
            self.poll(&mut state);
        }
        self.tx.flush_all();
    }

    /// One turn of the loop: receive a burst, run the pipeline on it, hand the packets to the TX
    /// buffers (or flush them when the queue is idle or the drain timer fires). Returns the
    /// number of packets received.
    #[inline]
    pub fn poll(&mut self, state: &mut PollState) -> usize {
        let plan = state.plan.load();
        if self.pipeline.adopt(plan) {
            // A reload changed the counters' shape. What is buffered was counted as copies
            // in the old set: send it and count it there, then count in the new set, so each
            // set balances on its own and the old one is never written again.
            self.tx.flush_all();
            self.tx.set_counters(self.pipeline.counters().clone());
        }
        if self.tap.changed() {
            self.tap.adopt();
        }
        let n = self.rx.rx_burst(&mut state.burst);
        if n == 0 {
            self.pipeline.counters().idle_polls.incr();
            if self.tx.pending() {
                self.tx.flush_all();
            }
            return 0;
        }
        self.pipeline.counters().burst(n);
        let now = self.clock.now_ns();
        if self.tap.watching {
            self.tap.run_burst(
                &mut self.pipeline,
                plan,
                now,
                &mut state.burst[..n],
                &mut self.tx,
            );
        } else {
            self.pipeline
                .run(plan, now, &mut state.burst[..n], &mut self.tx);
        }
        self.tx.end_of_burst();
        if now >= state.next_drain {
            self.tx.flush_all();
            state.next_drain = now + DRAIN_NS;
        }
        n
    }
}
