//! AWS Traffic Mirroring filters, compiled into lookup tables instead of scanned rule by rule.
//!
//! # Semantics
//! A filter is a list of rules sorted by rule number and a default action. The first rule that
//! matches decides; when none does, the default applies. A rule matches when every field it sets
//! matches:
//! - `direction`: the packet has that direction (a packet without a direction matches only rules
//!   without one);
//! - `protocol`: the IP protocol (for IPv6, the upper-layer protocol after extension headers);
//! - `src_cidr` / `dst_cidr`: the address is inside; an IPv4 CIDR never matches an IPv6 address
//!   and the other way round;
//! - `src_ports` / `dst_ports`: the packet carries ports ([`FlowKey::has_ports`]) and the port is
//!   in the inclusive range.
//!
//! A non-IP packet (no [`FlowKey`]) matches no rule. [`classify_linear`] is this paragraph as
//! code; [`CompiledFilter`] gives the same verdicts (a property test holds them equal).
//!
//! # Design
//! The bit-vector scheme of Lakshman and Stiliadis: each packet field is looked up in its own
//! structure, which answers with the set of rules accepting that value, a bit vector in rule
//! order; the lowest bit set in the intersection of the sets is the deciding rule.
//! - *class* (`class.rs`): direction × protocol × "carries ports", a direct table.
//! - source and destination *address* (`address.rs`): per family, the elementary intervals cut by
//!   the rules' CIDR boundaries (`interval.rs`), searched in a branch-free 4-ary tree; for IPv4,
//!   a direct table of the 65,536 /16s comes first (`direct.rs`, DIR-16 as in DPDK's LPM): a
//!   /16 with at most four interval starts inside gives its interval at once, the key's being
//!   found by comparing it with those four starts; a denser /16 has a table of its 256 /24s,
//!   searched the same way; only a /24 with more than four starts is left to the tree. A
//!   dimension answers with two sets, the rules naming no address there (the same for every
//!   packet) and the rules whose CIDR contains the address (sparse).
//! - source and destination *port* (`port_map.rs`): a two-level table of the elementary intervals
//!   of `0..=65535`.
//!
//! Sets are interned (`rule_set.rs`): cut into 512-rule chunks, identical chunks and identical
//! sets stored once. The intersection walks the chunks in rule order, skipping those where no
//! address-containing rule and no rule free of both addresses lies, and stops at the first
//! chunk with a match.
//!
//! # Measurements
//! `cargo bench -p broker-pipelines --bench filter` on the shared 2-core development VM (AMD
//! EPYC, x86-64 baseline target). Filters of random but realistic rules: mostly IPv4 VPC blocks
//! from /8 to /32, some IPv6, TCP/UDP services and port ranges, a third of the rules per
//! direction, and 1 % broad rules without CIDRs at the end (rounded down: the 10-rule filter has
//! none). 256 different bursts of 32 packets taken in turn, so that neither the caches nor the
//! branch predictor learn them. Least nanoseconds per packet over 300 passes, the least of six
//! runs alternated with runs of the build before the IPv4 direct table (2026-11-23; see
//! BENCHMARKS.md for cycles and the line-rate budgets):
//!
//! | rules  | `classify_burst` | `classify` | `classify_linear` | compile | memory   |
//! |-------:|-----------------:|-----------:|------------------:|--------:|---------:|
//! | 10     | 16.9 (17.2)      | 15.5       | 31                | 1.4 ms  | 272 KiB  |
//! | 100    | 22.1 (27.9)      | 21.6       | 203               | 2.5 ms  | 292 KiB  |
//! | 1,000  | 30.6 (40.0)      | 31.2       | 2,590             | 5 ms    | 476 KiB  |
//! | 10,000 | 49.5 (65.6)      | 55.3       | 32,000            | 35 ms   | 2.4 MiB  |
//!
//! (In parentheses: the tree alone, the build before.) 1,000 rules cost 1.81 × what 10 rules
//! cost (1.80 to 1.85 run by run; 2.32 or 2.33 with the tree alone). The small filter is the cheap end: most packets find no
//! rule about their addresses there and skip the intersection entirely; at 1,000 rules every
//! packet matches a rule and the sets are two chunks long. Split before the direct table: the
//! lookups alone cost 12.5 ns (10 rules) and 26.3 ns (1,000), the intersections 5.5 and 15 ns;
//! the table took about 9 ns off the lookups at 1,000 rules, so the intersection is now the
//! larger part of the difference. With a catch-all rule in the 10-rule filter too (every packet
//! then intersects), the ratio was 1.8 with the tree alone. The tree walks are bound by
//! instructions, not by the latency of their dependent loads: walking two levels per step (a
//! node and its four children read at once) cost 40 % more, and walking the trees of all the
//! burst's IPv4 addresses in lockstep saved 1 ns at 1,000 rules and 5 at 10,000 but cost 3 at
//! 10 (ratio 1.92, by slowing the small filter: not kept). Deriving the rank from the node the walk ends on (one
//! multiply-add less per level) saved 3 %.
//!
//! Tried, measured, dropped (1,000 rules unless said otherwise):
//! - A binary search of the interval starts: its comparison compiles to a branch that varied
//!   addresses mispredict, ≈ 50 % slower; it is the fastest only when one burst repeats (the
//!   predictor learns it), which is why the bench rotates bursts. Forcing conditional moves
//!   (`std::hint::select_unpredictable`) matches the tree but needs Rust 1.88.
//! - Static B-trees of 16-key nodes counted with vector compares, and 8- or 16-ary trees: 10 to
//!   35 % slower; a level then waits on a horizontal sum, and `popcnt` is not in the baseline
//!   target. Measured again with the untailored workload: 7 keys per node 15–25 % slower at
//!   every size, 15 keys 20–35 %.
//! - Searching several packets' trees in lockstep, all source searches of a burst in one loop,
//!   or pipelining packet i's lookups with packet i − 1's intersection: 10 to 20 % slower than
//!   all lookups, then all intersections.
//! - One interned set per address interval (`any ∪ containing` precomputed): every interval
//!   then has dense chunks of its own, which miss the caches: 30 % slower. Without the split at
//!   all, 10,000 rules cost 60 % more.
//! - Chunks of 2 or 4 words: equal up to 1,000 rules, 10 to 30 % slower at 10,000; 16 words:
//!   equal or slower.
//! - A summary word per set (which chunks are non-empty) intersected first: 5 to 15 % slower.
//! - Intersecting every chunk without the skip test: 5 to 10 % faster at 100 and 1,000 rules,
//!   10 to 30 % slower at 10 (where the skip usually spares every chunk).
//! - A direct 65,536-entry port table: as fast as the two-level one, with 128 KiB per dimension.
//! - Intersecting a chunk where neither address has a containing rule with the chunk of the
//!   rules naming no address (`any₀ ∩ any₁`, one chunk) instead of the two unions `any ∪
//!   containing` (four), behind a branch: 1,000 rules 30.7 against 30.6–31.1 (equal), 10,000
//!   rules 55.7 against 50.5 and 10 rules 18.8 against 17.3 (slower; least of three alternated
//!   runs, with the IPv4 direct table).
//! - IPv4 direct table variants (least of 2–3 alternated runs, 10 / 1,000 rules; kept: 16.9 /
//!   30.6): the /16 level alone, dense /16s searched in the tree (27 % of the bench's IPv4
//!   lookups at 1,000 rules, 61 % at 10,000): 16.9 / 33.7, 10,000 rules 63.6; windows of 8
//!   starts instead of 4: 17.8 / 33.3 (the ratio falls to 1.87 only because 10 rules get
//!   slower); the /24 entry read without a branch (a mask that is 0 for sparse /16s, so that
//!   every /16 points at entries): 18.0 / 32.8; `u32` slots: as fast as `u16` ones, with twice
//!   the memory. Building the table only above 64 intervals, so that small filters keep their
//!   two-level tree walk: 10 rules then cost 18.4–18.7 ns, more than with the table (16.9) and
//!   than before it (17.3): the table is built for every filter.
//!
//! # Limitations
//! - Memory grows faster than the rule count: the address dimensions have up to `2n + 1`
//!   intervals, each with a row of `n / 512` chunk ids; chunk interning keeps it at a few MiB for
//!   10,000 rules (the bench prints the figures).
//! - The IPv4 direct tables cost 256 KiB per filter (128 KiB per address dimension) whatever its
//!   size, and are left out (the tree alone, as fast as before them) for a dimension of more
//!   than 32,768 IPv4 intervals (≈ 16,000 CIDRs).
//! - Only the first 65,536 rules can be told apart by [`FilterVerdict::rule`]; later rules are
//!   ignored by both [`CompiledFilter`] and [`classify_linear`]. A validated filter has at most
//!   32,766 (rule numbers are unique in 1–32766).
//! - Compiling is for the control thread (milliseconds, allocations); classifying allocates
//!   nothing.

mod address;
mod class;
mod direct;
mod interval;
mod linear;
mod port_map;
mod rule_set;

#[cfg(test)]
mod tests;

use std::fmt;

use config::{Action, Direction, Filter};

use crate::flow::FlowKey;
use address::AddressMap;
use class::ClassTable;
pub use linear::classify_linear;
use port_map::PortMap;
use rule_set::{Lookup, RowId, RuleBits, RuleSets, RuleSetsBuilder};

/// Rules beyond this many cannot be named by a `u16` rule index and are ignored.
const MAX_RULES: usize = u16::MAX as usize + 1;

/// What the filter decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FilterVerdict {
    pub action: Action,
    /// Index in `Filter::rules` of the rule that decided; `None` when the default did.
    pub rule: Option<u16>,
}

impl FilterVerdict {
    fn default_of(filter: &Filter) -> FilterVerdict {
        FilterVerdict {
            action: filter.default,
            rule: None,
        }
    }
}

/// A filter compiled for classification: the data-path form of a [`config::Filter`].
#[derive(Clone)]
pub struct CompiledFilter {
    default: Action,
    /// The action of each rule, by index.
    actions: Box<[Action]>,
    classes: ClassTable,
    src: AddressMap,
    dst: AddressMap,
    /// The rules that name neither a source nor a destination address.
    naming_no_address: RowId,
    src_ports: PortMap,
    dst_ports: PortMap,
    sets: RuleSets,
}

impl CompiledFilter {
    /// Compiles `filter`, whose rules are sorted by number (as validation leaves them): rule order
    /// is evaluation order.
    pub fn compile(filter: &Filter) -> CompiledFilter {
        let rules = &filter.rules[..filter.rules.len().min(MAX_RULES)];
        let mut sets = RuleSetsBuilder::new(rules.len());
        let classes = ClassTable::build(rules, &mut sets);
        let src = AddressMap::build(rules, |rule| rule.src_cidr, &mut sets);
        let dst = AddressMap::build(rules, |rule| rule.dst_cidr, &mut sets);
        let src_ports = PortMap::build(rules, |rule| rule.src_ports, &mut sets);
        let dst_ports = PortMap::build(rules, |rule| rule.dst_ports, &mut sets);
        let mut naming_no_address = RuleBits::empty(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            if rule.src_cidr.is_none() && rule.dst_cidr.is_none() {
                naming_no_address.insert(index);
            }
        }
        let naming_no_address = sets.intern(&naming_no_address);
        CompiledFilter {
            default: filter.default,
            actions: rules.iter().map(|rule| rule.action).collect(),
            classes,
            src,
            dst,
            naming_no_address,
            src_ports,
            dst_ports,
            sets: sets.finish(),
        }
    }

    /// The verdict for a packet of `key` (`None`: not an IP packet) travelling in `direction`.
    #[inline]
    pub fn classify(&self, key: Option<&FlowKey>, direction: Option<Direction>) -> FilterVerdict {
        let lookup = match key {
            Some(key) => self.lookup(key, direction),
            None => return self.default_verdict(),
        };
        self.verdict(self.sets.first_match(&lookup))
    }

    /// The sets of the rules accepting each field of the packet.
    #[inline]
    fn lookup(&self, key: &FlowKey, direction: Option<Direction>) -> Lookup<3> {
        // A packet without ports is looked up with whatever ports it holds (0): its class
        // already excludes every rule with a port range, and the other rules accept any port.
        // This spares a branch on `has_ports`.
        let sets = [
            self.classes.lookup(direction, key.protocol, key.has_ports),
            self.src_ports.lookup(key.src_port),
            self.dst_ports.lookup(key.dst_port),
        ];
        let addresses = [self.src.lookup(key.src), self.dst.lookup(key.dst)];
        Lookup {
            sets,
            addresses,
            naming_no_address: self.naming_no_address,
        }
    }

    #[inline]
    fn verdict(&self, first_match: Option<usize>) -> FilterVerdict {
        let decided = first_match.and_then(|index| {
            Some(FilterVerdict {
                action: *self.actions.get(index)?,
                rule: index.try_into().ok(),
            })
        });
        decided.unwrap_or(self.default_verdict())
    }

    fn default_verdict(&self) -> FilterVerdict {
        FilterVerdict {
            action: self.default,
            rule: None,
        }
    }

    /// Rules compiled in.
    pub fn rule_count(&self) -> usize {
        self.actions.len()
    }

    /// Heap and inline bytes held by the compiled form.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of_val(&*self.actions)
            + self.classes.memory_bytes()
            + self.src.memory_bytes()
            + self.dst.memory_bytes()
            + self.src_ports.memory_bytes()
            + self.dst_ports.memory_bytes()
            + self.sets.memory_bytes()
    }
}

impl fmt::Debug for CompiledFilter {
    /// A summary: the tables themselves are large and unreadable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("default", &self.default)
            .field("rules", &self.rule_count())
            .field("src_intervals_v4_v6", &self.src.interval_counts())
            .field("dst_intervals_v4_v6", &self.dst.interval_counts())
            .field("src_port_intervals", &self.src_ports.interval_count())
            .field("dst_port_intervals", &self.dst_ports.interval_count())
            .field("rule_sets", &self.sets.row_count())
            .field("chunks", &self.sets.chunk_count())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}
