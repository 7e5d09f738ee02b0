//! Per-worker counters: written by one worker, read by the control thread.
//!
//! # Design
//! Each worker owns one [`WorkerCounters`] (behind an `Arc`). Every block of counters is aligned
//! to and padded to whole cache lines, so two workers' counters never share a line. A [`Counter`] is an `AtomicU64` that only its worker writes, with a relaxed
//! load + store: on x86 that compiles to a plain `add` to memory, no `lock` prefix, no shared
//! read-modify-write per packet — yet the control thread's reads are data-race free. The control
//! thread sums the workers' counters when it publishes metrics or prints the summary.
//!
//! Each block of counters is declared with `counter_block!`: a field's doc line is declared once
//! and becomes the help text of its metric (the `FIELDS` table the control plane iterates), so
//! the operator-facing explanation cannot drift from the code that counts.
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
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
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
        CounterArray {
            lines: counters(len.div_ceil(8)),
            len,
        }
    }

    /// The counter at `index`, if there is one.
    #[inline(always)]
    pub fn get(&self, index: usize) -> Option<&Counter> {
        if index < self.len {
            self.lines.get(index / 8).map(|line| &line.0[index % 8])
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Counter> {
        self.lines
            .iter()
            .flat_map(|line| line.0.iter())
            .take(self.len)
    }
}

impl std::ops::Index<usize> for CounterArray {
    type Output = Counter;

    /// The counter at `index`, for the hot path, where the index is in range by construction.
    ///
    /// # Panics
    /// If `index` is not below [`CounterArray::len`] (a padding counter of the last line would
    /// otherwise count it quietly).
    #[inline(always)]
    fn index(&self, index: usize) -> &Counter {
        assert!(index < self.len, "counter {index} of {}", self.len);
        &self.lines[index / 8].0[index % 8]
    }
}

/// One counter of a block as the control plane reads it: its name and doc line, and where it
/// is in the block (`T`) and in the block's totals (`V`). Declared once per field by
/// `counter_block!`, so the metric, its help text and the summary row all come from the field's
/// declaration.
pub struct CounterField<T, V> {
    /// snake_case name, unique in its block (`delivered_packets`): the metric is named after it.
    pub name: &'static str,
    /// The field's doc line: the metric's help text.
    pub help: &'static str,
    /// Reads the field.
    pub get: fn(&T) -> &Counter,
    /// Reads the field's total.
    pub total: fn(&V) -> u64,
}

impl<T, V> std::fmt::Debug for CounterField<T, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterField")
            .field("name", &self.name)
            .field("help", &self.help)
            .finish()
    }
}

/// Declares a struct of [`Counter`]s (each with a doc line and a name), optionally followed by
/// other fields (`and { … }`); the struct of its totals (`=> Totals`: the same field names, as
/// plain sums, so a reader names a counter by its field and a typo does not compile); and the
/// tables that describe them: `FIELDS` (every counter: name, doc line, accessors) and `DOCS`
/// (the other fields' doc lines, by field name).
macro_rules! counter_block {
    (
        $(#[$meta:meta])*
        pub struct $block:ident => $totals:ident {
            $( $(#[doc = $doc:literal])+ $field:ident = $name:literal, )+
        }
        $( and {
            $( $(#[doc = $other_doc:literal])+ pub $other:ident: $other_ty:ty, )+
        } )?
    ) => {
        $(#[$meta])*
        pub struct $block {
            $( $(#[doc = $doc])+ pub $field: Counter, )+
            $( $( $(#[doc = $other_doc])+ pub $other: $other_ty, )+ )?
        }

        #[doc = concat!("The plain counters of [`", stringify!($block), "`], read or summed.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $totals {
            $( $(#[doc = $doc])+ pub $field: u64, )+
        }

        impl $totals {
            /// Adds `other`, field by field.
            pub fn add(&mut self, other: &$totals) {
                $( self.$field = self.$field.wrapping_add(other.$field); )+
            }
        }

        impl $block {
            /// Every counter of the block, in declaration order.
            pub const FIELDS: &'static [CounterField<$block, $totals>] = &[$(
                CounterField {
                    name: $name,
                    help: concat!($($doc),+).trim_ascii(),
                    get: {
                        fn get(counters: &$block) -> &Counter {
                            &counters.$field
                        }
                        get
                    },
                    total: {
                        fn total(totals: &$totals) -> u64 {
                            totals.$field
                        }
                        total
                    },
                },
            )+];

            /// The doc lines of the fields that are not plain counters, by field name.
            pub const DOCS: &'static [(&'static str, &'static str)] =
                &[$( $( (stringify!($other), concat!($($other_doc),+).trim_ascii()), )+ )?];

            /// The doc line of a field that is not a plain counter (`""` for an unknown name).
            pub fn doc(field: &str) -> &'static str {
                Self::DOCS.iter().find(|(name, _)| *name == field).map_or("", |(_, doc)| doc)
            }

            /// The plain counters' current values.
            pub fn read(&self) -> $totals {
                $totals { $( $field: self.$field.get(), )+ }
            }
        }
    };
}

counter_block! {
    /// Counters of one session, on one worker.
    #[derive(Debug, Default)]
    #[repr(align(64))]
    pub struct SessionCounters => SessionTotals {
        /// packets that reached the session (after decap and VNI lookup)
        packets = "packets",
        /// bytes of the inner frames that reached the session
        bytes = "bytes",
        /// packets of the session delivered to at least one tool group
        delivered = "delivered_packets",
        /// packets of the session rejected by its filter
        filtered = "filtered_packets",
        /// packets of the session every tool group already had: within the dedup window, or from the copy mirrored at its sender
        duplicate = "duplicate_packets",
        /// of the session's duplicate packets, those the sender rule alone withheld: the copy mirrored at the sender reaches each of its tool groups on the same port
        duplicate_sender = "duplicate_sender_packets",
        /// packets of the session no tool group had a live port for
        no_live_port = "no_live_port_packets",
        /// inner IP packets shorter than their IP length field says (cut by the mirror source, e.g. AWS packet-length)
        truncated_by_source = "truncated_packets",
    }
}

counter_block! {
    /// Counters of one tool group, on one worker.
    #[derive(Debug, Default)]
    #[repr(align(64))]
    pub struct GroupCounters => GroupTotals {
        /// copies sent towards the group's ports
        copies = "packets",
        /// packets not sent to the group because the port (of a round-robin group: the group) had received them within the dedup window
        duplicates = "duplicate_packets",
        /// packets not sent to the group because the copy mirrored at their sender reaches the same port (the sender rule)
        sender_duplicates = "duplicate_sender_packets",
        /// dedup entries of other live packets evicted to make room (the table is too small)
        dedup_evictions = "dedup_evictions",
        /// packets the group could not take because none of its ports was live
        no_live_port = "no_live_port_packets",
        /// copies cut to the group's slice length
        sliced = "sliced_packets",
    }
}

counter_block! {
    /// Counters of one tool port, on one worker. `copies == tx_packets + tx_dropped + no_buffer`.
    #[derive(Debug, Default)]
    #[repr(align(64))]
    pub struct PortCounters => PortTotals {
        /// copies the pipeline handed to this port
        copies = "packets",
        /// bytes of those copies
        copy_bytes = "bytes",
        /// copies lost because no mbuf was left to clone them
        no_buffer = "no_buffer_packets",
        /// packets the port's TX queue accepted
        tx_packets = "tx_packets",
        /// bytes the port's TX queue accepted
        tx_bytes = "tx_bytes",
        /// packets the port's TX queue refused (ring full), freed
        tx_dropped = "tx_dropped_packets",
        /// copies cut so that, encapsulated, they fit the via port's MTU (tunnel ports; never fragmented)
        egress_truncated = "egress_truncated_packets",
    }
}

counter_block! {
    /// Hit counters of one filter: one per rule (by position in the filter's rule list) and one for
    /// the default action.
    #[derive(Debug)]
    #[repr(align(64))]
    pub struct FilterCounters => FilterTotals {
        /// packets no rule of the filter matched, which took the filter's default action
        default = "default_hits",
    }
    and {
        /// packets whose first matching rule (lowest rule number) was this one
        pub rules: CounterArray,
    }
}

/// Classes of the burst-size histogram: class `k` counts RX bursts of `2^k ..= 2^(k+1) - 1`
/// packets (1, 2–3, 4–7, 8–15, 16–31), the last one every burst of 32 packets or more.
pub const BURST_CLASSES: usize = 6;

/// The burst-size class of a burst of `packets` (at least one) packets.
#[inline(always)]
pub const fn burst_class(packets: usize) -> usize {
    let log2 = (usize::BITS - 1).saturating_sub(packets.leading_zeros()) as usize;
    if log2 < BURST_CLASSES {
        log2
    } else {
        BURST_CLASSES - 1
    }
}

/// The smallest and largest burst of a class (`None`: no upper bound, the last class).
pub const fn burst_class_bounds(class: usize) -> (usize, Option<usize>) {
    let low = 1 << class;
    if class + 1 >= BURST_CLASSES {
        (low, None)
    } else {
        (low, Some((low << 1) - 1))
    }
}

counter_block! {
    /// Everything one worker counts.
    #[derive(Debug)]
    #[repr(align(64))]
    pub struct WorkerCounters => WorkerTotals {
        /// packets received from the worker's RX queue
        rx_packets = "rx_packets",
        /// bytes received from the worker's RX queue
        rx_bytes = "rx_bytes",
        /// RX polls that returned packets
        busy_polls = "busy_polls",
        /// RX polls that returned nothing
        idle_polls = "idle_polls",
        /// packets for the worker's addressed port itself (outcome control) dropped because the queue to the control side was full
        control_dropped = "control_dropped_packets",
    }
    and {
        /// RX polls that returned packets, by the number of packets (burst-size class)
        pub bursts: CounterArray,
        /// received packets, by their single outcome
        pub outcomes: CounterArray,
        /// One set per session of the config, by session index.
        pub sessions: Box<[SessionCounters]>,
        /// One set per tool group of the config, by group index.
        pub groups: Box<[GroupCounters]>,
        /// One set per tool port of the config, by tool port index.
        pub ports: Box<[PortCounters]>,
        /// One set per filter of the config, by filter index.
        pub filters: Box<[FilterCounters]>,
    }
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
            control_dropped: Counter::default(),
            bursts: CounterArray::new(BURST_CLASSES),
            outcomes: CounterArray::new(Outcome::COUNT),
            sessions: counters(config.sessions.len()),
            groups: counters(config.tool_groups.len()),
            ports: counters(config.tool_ports.len()),
            filters: config
                .filters
                .iter()
                .map(|f| FilterCounters {
                    rules: CounterArray::new(f.rules.len()),
                    default: Counter::default(),
                })
                .collect(),
        }
    }

    /// Zeroed counters for `workers` workers.
    pub fn for_workers(
        config: &ValidatedConfig,
        workers: usize,
    ) -> Box<[std::sync::Arc<WorkerCounters>]> {
        (0..workers)
            .map(|_| std::sync::Arc::new(WorkerCounters::new(config)))
            .collect()
    }

    /// Whether these counters fit a config (same numbers of sessions, groups, ports and rules).
    pub fn fits(&self, config: &ValidatedConfig) -> bool {
        self.has_shape(
            config.sessions.len(),
            config.tool_groups.len(),
            config.tool_ports.len(),
            config.filters.iter().map(|f| f.rules.len()),
        )
    }

    /// Whether these counters are for `sessions` sessions, `groups` tool groups, `ports` tool
    /// ports, and filters of `rules` rules each.
    pub fn has_shape(
        &self,
        sessions: usize,
        groups: usize,
        ports: usize,
        rules: impl ExactSizeIterator<Item = usize>,
    ) -> bool {
        self.sessions.len() == sessions
            && self.groups.len() == groups
            && self.ports.len() == ports
            && self.filters.len() == rules.len()
            && self
                .filters
                .iter()
                .zip(rules)
                .all(|(c, n)| c.rules.len() == n)
    }

    /// Counts one outcome.
    #[inline(always)]
    pub fn outcome(&self, outcome: Outcome) {
        // Outcome::index is always below Outcome::COUNT, the length of `outcomes`.
        self.outcomes[outcome.index()].incr();
    }

    /// Counts one RX poll that returned `packets` (at least one) packets: a busy poll and its
    /// burst-size class. Once per burst, two plain adds.
    #[inline(always)]
    pub fn burst(&self, packets: usize) {
        self.busy_polls.incr();
        // burst_class is always below BURST_CLASSES, the length of `bursts`.
        self.bursts[burst_class(packets)].incr();
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
        a[9].incr();
        assert_eq!(a.get(9).map(Counter::get), Some(4));
    }

    #[test]
    #[should_panic(expected = "counter 10 of 10")]
    fn indexing_past_the_counters_stops_even_inside_the_last_line() {
        let a = CounterArray::new(10);
        a[10].incr();
    }

    #[test]
    fn counter_tables_name_every_field_with_its_doc_line() {
        let s = SessionCounters::default();
        s.delivered.add(7);
        let delivered = SessionCounters::FIELDS
            .iter()
            .find(|f| f.name == "delivered_packets")
            .unwrap();
        assert_eq!((delivered.get)(&s).get(), 7);
        assert_eq!(
            delivered.help,
            "packets of the session delivered to at least one tool group"
        );
        assert_eq!(SessionCounters::FIELDS.len(), 8);
        assert_eq!(GroupCounters::FIELDS.len(), 6);
        assert_eq!(PortCounters::FIELDS.len(), 7);
        assert_eq!(WorkerCounters::FIELDS.len(), 5);
        let mut names = std::collections::HashSet::new();
        for (block, name, help) in SessionCounters::FIELDS
            .iter()
            .map(|f| ("session", f.name, f.help))
            .chain(
                GroupCounters::FIELDS
                    .iter()
                    .map(|f| ("group", f.name, f.help)),
            )
            .chain(
                PortCounters::FIELDS
                    .iter()
                    .map(|f| ("port", f.name, f.help)),
            )
            .chain(
                WorkerCounters::FIELDS
                    .iter()
                    .map(|f| ("worker", f.name, f.help)),
            )
            .chain(
                FilterCounters::FIELDS
                    .iter()
                    .map(|f| ("filter", f.name, f.help)),
            )
        {
            assert!(names.insert((block, name)), "{block}.{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(
                !help.is_empty() && help == help.trim(),
                "{block}.{name}: {help:?}"
            );
        }
        assert_eq!(
            FilterCounters::doc("rules"),
            "packets whose first matching rule (lowest rule number) was this one"
        );
        assert_eq!(FilterCounters::doc("nope"), "");
        // Each accessor reads its own field.
        let p = PortCounters::default();
        for (i, f) in PortCounters::FIELDS.iter().enumerate() {
            (f.get)(&p).add(1 << i);
        }
        assert_eq!(p.tx_dropped.get(), 1 << 5);
        assert_eq!(p.copies.get(), 1);
    }

    #[test]
    fn burst_classes_are_powers_of_two() {
        assert_eq!(burst_class(1), 0);
        assert_eq!(burst_class(2), 1);
        assert_eq!(burst_class(3), 1);
        assert_eq!(burst_class(4), 2);
        assert_eq!(burst_class(31), 4);
        assert_eq!(burst_class(32), 5);
        assert_eq!(burst_class(1000), 5);
        assert_eq!(burst_class_bounds(0), (1, Some(1)));
        assert_eq!(burst_class_bounds(2), (4, Some(7)));
        assert_eq!(burst_class_bounds(5), (32, None));
        let config = config::fixtures::config(config::fixtures::MINIMAL);
        let w = WorkerCounters::new(&config);
        w.burst(32);
        w.burst(5);
        w.burst(6);
        assert_eq!(w.busy_polls.get(), 3);
        let classes: Vec<u64> = w.bursts.iter().map(Counter::get).collect();
        assert_eq!(classes, [0, 0, 2, 0, 0, 1]);
    }

    #[test]
    fn outcome_counters_are_indexed_by_outcome() {
        let config = config::fixtures::config(config::fixtures::MINIMAL);
        let w = WorkerCounters::new(&config);
        w.outcome(Outcome::Filtered);
        w.outcome(Outcome::Malformed(crate::Reason::VxlanNoVni));
        w.outcome(Outcome::Malformed(crate::Reason::VxlanNoVni));
        assert_eq!(w.outcome_count(Outcome::Filtered), 1);
        assert_eq!(
            w.outcome_count(Outcome::Malformed(crate::Reason::VxlanNoVni)),
            2
        );
        assert_eq!(w.outcome_count(Outcome::Delivered), 0);
        assert!(w.fits(&config));
    }
}
