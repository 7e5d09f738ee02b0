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
//! - *class* ([`class`]): direction × protocol × "carries ports", a direct table.
//! - source and destination *address* ([`address`]): per family, the elementary intervals cut by
//!   the rules' CIDR boundaries ([`interval`]), searched in a branch-free 4-ary tree. A dimension
//!   answers with two sets, the rules naming no address there (the same for every packet) and
//!   the rules whose CIDR contains the address (sparse).
//! - source and destination *port* ([`port_map`]): a two-level table of the elementary intervals
//!   of `0..=65535`.
//!
//! Sets are interned ([`rule_set`]): cut into 512-rule chunks, identical chunks and identical
//! sets stored once. The intersection walks the chunks in rule order, skipping those where no
//! address-containing rule and no rule free of both addresses lies, and stops at the first
//! chunk with a match.
//!
//! [`CompiledFilter::classify_burst`] does the lookups of a whole burst before any intersection
//! (as VPP stages do), so the independent searches of successive packets overlap.
//!
//! # Measurements
//! `cargo bench -p broker-pipelines --bench filter`, on the shared 2-core development VM (AMD
//! EPYC), x86-64 baseline target. Filters of random but realistic rules (see the bench), bursts
//! of 32 packets, 256 different bursts in turn so that neither the caches nor the branch
//! predictor learn them. Nanoseconds per packet:
//!
//! | rules  | `classify_burst` | `classify` | `classify_linear` |
//! |-------:|-----------------:|-----------:|------------------:|
//! | 10     | MEASURE          |            |                   |
//! | 100    |                  |            |                   |
//! | 1,000  |                  |            |                   |
//! | 10,000 |                  |            |                   |
//!
//! What was tried and measured (1,000 rules unless said otherwise):
//! - A binary search of the interval starts: LLVM compiles its comparison to a branch that
//!   random addresses mispredict; on bursts that repeat (the branch predictor learns them) it is
//!   the fastest search, on varied traffic ≈ 50 % slower than the branch-free tree. Forcing
//!   conditional moves (`select_unpredictable`) gives the tree's speed but needs Rust 1.88.
//! - Static B-trees with 16-key nodes counted with vector compares; 8- and 16-ary trees: slower,
//!   a level then waits on a horizontal sum (and `popcnt` is not in the baseline target).
//! - Searching the trees of several packets in lockstep, or all source searches of a burst in
//!   one loop: slower than letting the out-of-order core overlap whole lookups.
//! - One interned set per interval (`any ∪ containing` precomputed): every interval then has its
//!   own dense chunks, which miss the caches: 30 % slower than the split.
//! - Without the split at all, 10,000 rules cost 78 ns instead of 49 (hot bursts).
//! - Chunks of 2 or 4 words instead of 8: equal up to 1,000 rules, slower at 10,000.
//! - A direct 65,536-entry port table: as fast, but 128 KiB per dimension.
//! - Intersecting every chunk without the skip test: faster at 100 and 1,000 rules, slower at
//!   10 (the skip usually spares small filters any chunk at all).
//!
//! # Limitations
//! - Memory grows faster than the rule count: the address dimensions have up to `2n + 1`
//!   intervals, each with a row of `n / 512` chunk ids; chunk interning keeps it at a few MiB for
//!   10,000 rules (the bench prints the figures).
//! - Only the first 65,536 rules can be told apart by [`FilterVerdict::rule`]; later rules are
//!   ignored by both [`CompiledFilter`] and [`classify_linear`]. A validated filter has at most
//!   32,766 (rule numbers are unique in 1–32766).
//! - Compiling is for the control thread (milliseconds, allocations); classifying allocates
//!   nothing.

mod address;
mod class;
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
use rule_set::{AddressSets, Lookup, RowId, RuleBits, RuleSets, RuleSetsBuilder};

/// Rules beyond this many cannot be named by a `u16` rule index and are ignored.
const MAX_RULES: usize = u16::MAX as usize + 1;

/// Packets whose lookups [`CompiledFilter::classify_burst`] completes before intersecting: a
/// DPDK burst.
const GROUP: usize = 32;

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
    /// A lookup no rule matches, for packets that are not IP.
    no_match: Lookup<3>,
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
        let nothing = sets.intern(&RuleBits::empty(rules.len()));
        let no_match = Lookup {
            sets: [nothing; 3],
            addresses: [AddressSets {
                any: nothing,
                containing: nothing,
            }; 2],
            naming_no_address: nothing,
        };
        CompiledFilter {
            default: filter.default,
            actions: rules.iter().map(|rule| rule.action).collect(),
            classes,
            src,
            dst,
            naming_no_address,
            src_ports,
            dst_ports,
            no_match,
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

    /// The verdicts of a burst: `verdicts[i]` for `keys[i]` travelling in `directions[i]`, for
    /// as many packets as the shortest of the three slices holds (the rest of `verdicts` is left
    /// as it was). The same verdicts as [`Self::classify`], faster on bursts: see the module docs.
    pub fn classify_burst(
        &self,
        keys: &[Option<FlowKey>],
        directions: &[Option<Direction>],
        verdicts: &mut [FilterVerdict],
    ) {
        let mut lookups = [self.no_match; GROUP];
        for ((keys, directions), verdicts) in keys
            .chunks(GROUP)
            .zip(directions.chunks(GROUP))
            .zip(verdicts.chunks_mut(GROUP))
        {
            let packets = keys.len().min(directions.len());
            for ((lookup, key), &direction) in lookups.iter_mut().zip(keys).zip(directions) {
                *lookup = match key {
                    Some(key) => self.lookup(key, direction),
                    None => self.no_match,
                };
            }
            for (verdict, lookup) in verdicts.iter_mut().zip(&lookups).take(packets) {
                *verdict = self.verdict(self.sets.first_match(lookup));
            }
        }
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
