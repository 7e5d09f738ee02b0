//! Per-worker counters: written by one worker, read by the control thread.
//!
//! # Design
//! Each worker owns one [`WorkerCounters`] (behind an `Arc`). Every block of counters is aligned
//! to and padded to whole cache lines, so two workers' counters never share a line. A [`Counter`] is an `AtomicU64` that only its worker writes, with a relaxed
//! load + store: on x86 that compiles to a plain `add` to memory, no `lock` prefix, no shared
//! read-modify-write per packet — yet the control thread's reads are data-race free. The control
//! thread sums the workers' counters when it publishes metrics or prints the summary.
//!
//! Sizes come from the config the counters were made for (sessions, tool groups, tool ports,
//! filter rules). They travel with the [`crate::plan::Plan`]: a plan of another shape comes with
//! new counters, and the control plane keeps the totals of the old ones.

use std::sync::atomic::{AtomicU64, Ordering};

use config::ValidatedConfig;

use crate::outcome::Outcome;

/// A monotonically increasing count with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this (a second writer would lose updates).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline(always)]
    pub fn incr(&self) {
        self.add(1);
    }

    /// The current value (any thread).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A cache line of counters: the unit flat counter arrays are allocated in.
#[derive(Debug, Default)]
#[repr(align(64))]
struct CounterLine([Counter; 8]);

/// A fixed number of counters in whole cache lines.
#[derive(Debug)]
pub struct CounterArray {
    lines: Box<[CounterLine]>,
    len: usize,
}

impl CounterArray {
    /// `len` zeroed counters.
    pub fn new(len: usize) -> CounterArray {
        CounterArray { lines: counters(len.div_ceil(8)), len }
    }

    /// The counter at `index`, if there is one.
    #[inline(always)]
    pub fn get(&self, index: usize) -> Option<&Counter> {
        if index < self.len { self.lines.get(index / 8).map(|line| &line.0[index % 8]) } else { None }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Counter> {
        self.lines.iter().flat_map(|line| line.0.iter()).take(self.len)
    }
}

/// Counters of one session, on one worker.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct SessionCounters {
    /// packets that reached the session (after decap and VNI lookup)
    pub packets: Counter,
    /// bytes of the inner frames that reached the session
    pub bytes: Counter,
    /// packets of the session delivered to at least one tool group
    pub delivered: Counter,
    /// packets of the session rejected by its filter
    pub filtered: Counter,
    /// packets of the session every tool group had already received within the dedup window
    pub duplicate: Counter,
    /// packets of the session no tool group had a live port for
    pub no_live_port: Counter,
    /// inner IP packets shorter than their IP length field says (cut by the mirror source, e.g. AWS packet-length)
    pub truncated_by_source: Counter,
}

/// Counters of one tool group, on one worker.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct GroupCounters {
    /// copies sent towards the group's ports
    pub copies: Counter,
    /// packets not sent to the group because it had received them within the dedup window
    pub duplicates: Counter,
    /// dedup entries of other live packets evicted to make room (the table is too small)
    pub dedup_evictions: Counter,
    /// packets the group could not take because none of its ports was live
    pub no_live_port: Counter,
    /// copies cut to the group's slice length
    pub sliced: Counter,
}

/// Counters of one tool port, on one worker. `copies == tx_packets + tx_dropped + no_buffer`.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PortCounters {
    /// copies the pipeline handed to this port
    pub copies: Counter,
    /// bytes of those copies
    pub copy_bytes: Counter,
    /// copies lost because no mbuf was left to clone them
    pub no_buffer: Counter,
    /// packets the port's TX queue accepted
    pub tx_packets: Counter,
    /// bytes the port's TX queue accepted
    pub tx_bytes: Counter,
    /// packets the port's TX queue refused (ring full), freed
    pub tx_dropped: Counter,
}

/// Hit counters of one filter: one per rule (by position in the filter's rule list) and one for
/// the default action.
#[derive(Debug)]
#[repr(align(64))]
pub struct FilterCounters {
    pub rules: CounterArray,
    pub default: Counter,
}

/// Everything one worker counts.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// packets received from the RX queue
    pub rx_packets: Counter,
    /// bytes received from the RX queue
    pub rx_bytes: Counter,
    /// RX polls that returned packets
    pub busy_polls: Counter,
    /// RX polls that returned nothing
    pub idle_polls: Counter,
    /// One per [`Outcome`], by [`Outcome::index`].
    pub outcomes: CounterArray,
    pub sessions: Box<[SessionCounters]>,
    pub groups: Box<[GroupCounters]>,
    pub ports: Box<[PortCounters]>,
    pub filters: Box<[FilterCounters]>,
}

fn counters<T: Default>(n: usize) -> Box<[T]> {
    (0..n).map(|_| T::default()).collect()
}

impl WorkerCounters {
    /// Zeroed counters shaped for `config`.
    pub fn new(config: &ValidatedConfig) -> WorkerCounters {
        WorkerCounters {
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            busy_polls: Counter::default(),
            idle_polls: Counter::default(),
            outcomes: CounterArray::new(Outcome::COUNT),
            sessions: counters(config.sessions.len()),
            groups: counters(config.tool_groups.len()),
            ports: counters(config.tool_ports.len()),
            filters: config
                .filters
                .iter()
                .map(|f| FilterCounters { rules: CounterArray::new(f.rules.len()), default: Counter::default() })
                .collect(),
        }
    }

    /// Zeroed counters for `workers` workers.
    pub fn for_workers(config: &ValidatedConfig, workers: usize) -> Box<[std::sync::Arc<WorkerCounters>]> {
        (0..workers).map(|_| std::sync::Arc::new(WorkerCounters::new(config))).collect()
    }

    /// Whether these counters fit a config (same numbers of sessions, groups, ports and rules).
    pub fn fits(&self, config: &ValidatedConfig) -> bool {
        self.sessions.len() == config.sessions.len()
            && self.groups.len() == config.tool_groups.len()
            && self.ports.len() == config.tool_ports.len()
            && self.filters.len() == config.filters.len()
            && self.filters.iter().zip(&config.filters).all(|(c, f)| c.rules.len() == f.rules.len())
    }

    /// Counts one outcome.
    #[inline(always)]
    pub fn outcome(&self, outcome: Outcome) {
        // Outcome::index is always below Outcome::COUNT, the length of `outcomes`.
        if let Some(c) = self.outcomes.get(outcome.index()) {
            c.incr();
        }
    }

    /// The count of one outcome.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(outcome.index()).map_or(0, Counter::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_and_reads() {
        let c = Counter::default();
        c.incr();
        c.add(41);
        assert_eq!(c.get(), 42);
    }

    #[test]
    fn counter_arrays_fill_whole_lines() {
        let a = CounterArray::new(10);
        assert_eq!(a.len(), 10);
        assert!(a.get(9).is_some() && a.get(10).is_none());
        a.get(9).unwrap().add(3);
        assert_eq!(a.iter().map(Counter::get).sum::<u64>(), 3);
        assert_eq!(std::mem::align_of::<CounterLine>(), 64);
        assert_eq!(std::mem::size_of::<SessionCounters>() % 64, 0);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }

    #[test]
    fn outcome_counters_are_indexed_by_outcome() {
        let config = crate::testing::config(crate::testing::MINIMAL);
        let w = WorkerCounters::new(&config);
        w.outcome(Outcome::Filtered);
        w.outcome(Outcome::Malformed(crate::Reason::VxlanNoVni));
        w.outcome(Outcome::Malformed(crate::Reason::VxlanNoVni));
        assert_eq!(w.outcome_count(Outcome::Filtered), 1);
        assert_eq!(w.outcome_count(Outcome::Malformed(crate::Reason::VxlanNoVni)), 2);
        assert_eq!(w.outcome_count(Outcome::Delivered), 0);
        assert!(w.fits(&config));
    }
}
