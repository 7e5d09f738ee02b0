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
//! # Why this shape
//! Each choice below was measured with `cargo bench -p broker-pipelines --bench filter` against
//! the alternatives named (the figures are in BENCHMARKS.md, *Filter: the measurement log*):
//! - The cost depends more on what a packet matches than on the rule count: in a small filter
//!   most packets find no rule about their addresses and skip the intersection; in a large one
//!   every packet matches and its sets span more chunks. The bench's filters therefore carry no
//!   catch-all rule tailored to make the small filter intersect.
//! - The tree walks are bound by instructions, not by the latency of their dependent loads:
//!   walking two levels per step, or several packets' trees in lockstep, cost more. Deriving the
//!   rank from the node the walk ends on saves a multiply-add per level.
//! - A binary search of the interval starts compiles to a branch that varied addresses
//!   mispredict (it only wins when one burst repeats, which is why the bench rotates bursts);
//!   the 4-ary tree is branch-free. Wider nodes (7, 15 or 16 keys, vector compares) wait on a
//!   horizontal sum, and `popcnt` is not in the baseline target.
//! - A packet's lookups and its intersection run together ([`CompiledFilter::classify`]): a
//!   whole burst's lookups first, then its intersections, paid at most at 10,000 rules, and
//!   the pipeline decides packet by packet.
//! - The `any` / `containing` split: one precomputed set per address interval gives every
//!   interval dense chunks of its own, which miss the caches; no split at all costs most at
//!   10,000 rules. Chunks of 8 words (2 or 4 lose at 10,000 rules, 16 gain nothing); no summary
//!   word per set; the skip test pays for small filters, where it usually spares every chunk.
//! - The IPv4 direct table is built for every filter: the smallest filters, left to their
//!   two-level tree, were slower than with it. Its variants lost: dense /16s left to the tree,
//!   windows of 8 starts, a branch-free /24 level, `u32` slots (as fast, twice the memory).
//! - Ports: the two-level table is as fast as a direct 65,536-entry one and smaller.
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
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub fn classify(&self, key: Option<&FlowKey>, direction: Option<Direction>) -> FilterVerdict {
        let lookup = match key {
            Some(key) => self.lookup(key, direction),
            None => return self.default_verdict(),
        };
        self.verdict(self.sets.first_match(&lookup))
    }

    /// The sets of the rules accepting each field of the packet.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
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
