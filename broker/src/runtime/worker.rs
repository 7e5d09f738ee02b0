//! The poll-mode worker: one per ingress RX queue, pinned to its lcore, run to completion.
//!
//! # Design
//! The loop is DPDK's l2fwd shape: `rx_burst` into a stack array of [`BURST`] mbufs, the whole
//! pipeline on the burst inside this thread, packets buffered per tool port and sent with
//! `tx_burst` on this worker's TX queue of that port. Nothing per packet takes a lock, allocates,
//! logs, or touches a cache line another worker writes (counters are this worker's own; the
//! dedup table is the one structure shared by design).
//!
//! Between bursts the worker loads the current [`Plan`] (one `arc-swap` load: a reload or a
//! link change takes effect at the next burst, never in the middle of one), and drains its TX
//! buffers when the drain timer fires or the RX queue is idle, so a trickle of packets is not
//! held back waiting for a full buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use drivers::{Mbuf, RxQueue};
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{BURST, Pipeline};
use pipelines::plan::Plan;

use super::clock::Clock;
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
    pub plans: Arc<ArcSwap<Plan>>,
    pub stop: Arc<AtomicBool>,
    pub clock: Clock,
}

impl Worker {
    /// Polls until `stop` is set, then flushes what is buffered and returns.
    pub fn run(mut self) {
        let mut burst: [Option<Mbuf>; BURST] = [const { None }; BURST];
        let mut next_drain = self.clock.now_ns() + DRAIN_NS;
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.rx.rx_burst(&mut burst);
            let counters: &WorkerCounters = self.pipeline.counters();
            if n == 0 {
                counters.idle_polls.incr();
                if self.tx.pending() {
                    self.tx.flush_all();
                }
                continue;
            }
            counters.burst(n);
            let now = self.clock.now_ns();
            let plan = self.plans.load();
            if self.pipeline.adopt(&plan) {
                // A reload changed the counters' shape. What is buffered was counted as copies
                // in the old set: send it and count it there, then count in the new set, so each
                // set balances on its own and the old one is never written again.
                self.tx.flush_all();
                self.tx.set_counters(self.pipeline.counters().clone());
            }
            self.pipeline.run(&plan, now, &mut burst[..n], &mut self.tx);
            self.tx.end_of_burst();
            if now >= next_drain {
                self.tx.flush_all();
                next_drain = now + DRAIN_NS;
            }
        }
        self.tx.flush_all();
    }
}
