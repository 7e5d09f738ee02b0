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
//! table, which answers with the set of rules that accept that field value, as a bit vector in rule
//! order; the first bit set in the intersection of the sets is the deciding rule. The dimensions:
//! - *class* = direction × protocol × "carries ports": a direct table of 3 × 256 × 2 sets. Folding
//!   the "carries ports" condition in here means a packet without ports needs no port lookup.
//! - source and destination address: per family, the elementary intervals cut by the rules' CIDR
//!   boundaries ([`interval`]), IPv4 keys as `u32`, IPv6 as `u128`.
//! - source and destination port: elementary intervals of `0..=65535`, same structure.
//!
//! Sets are interned ([`rule_set`]): cut into cache-line chunks, identical chunks and identical
//! sets stored once, and an empty chunk in any dimension skips that chunk of the intersection.
//!
//! # Limitations
//! - Compiling costs memory that grows faster than the rule count: the address dimensions have up
//!   to `2n + 1` intervals and each keeps a row of `n / 512` chunk ids.
//! - Only the first 65,536 rules can be told apart by [`FilterVerdict::rule`]; later rules are
//!   ignored by both [`CompiledFilter`] and [`classify_linear`]. A validated filter has at most
//!   32,766 (rule numbers are unique in 1–32766).

mod interval;
mod port_map;
mod linear;
mod rule_set;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use config::{Action, Direction, Filter, Rule};

use crate::flow::FlowKey;
use interval::{IntervalMap, RuleRange, elementary_intervals};
use port_map::PortMap;
pub use linear::classify_linear;
use rule_set::{AddressSets, Lookup, RowId, RuleBits, RuleSets, RuleSetsBuilder};

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
        FilterVerdict { action: filter.default, rule: None }
    }
}

/// The three values a packet's direction can take, in the order of the class table.
const DIRECTIONS: [Option<Direction>; 3] = [None, Some(Direction::Ingress), Some(Direction::Egress)];
/// Entries of the class table: direction × protocol × carries ports.
const CLASS_COUNT: usize = DIRECTIONS.len() * 256 * 2;

/// Position of a packet's class in the class table.
fn class_index(direction: Option<Direction>, protocol: u8, has_ports: bool) -> usize {
    let direction = match direction {
        None => 0,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    };
    (direction * 256 + usize::from(protocol)) * 2 + usize::from(has_ports)
}

/// One address dimension (source or destination).
#[derive(Debug)]
struct AddressMap {
    /// The rules that name no address here: they accept every address of both families.
    any: RowId,
    /// Per family, the rules whose CIDR contains the address (`any` left out: see
    /// [`rule_set::AddressSets`]).
    v4: IntervalMap<u32, V4_KEYS>,
    v6: IntervalMap<u128, V6_KEYS>,
}
const V4_KEYS: usize = 3;
const V6_KEYS: usize = 3;

impl AddressMap {
    /// `cidr_of(rule)`: the rule's CIDR in this dimension.
    fn build(
        rules: &[Rule],
        cidr_of: impl Fn(&Rule) -> Option<ipnet::IpNet>,
        sets: &mut RuleSetsBuilder,
    ) -> AddressMap {
        let mut any = RuleBits::empty(rules.len());
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (rule, net) in rules.iter().map(cidr_of).enumerate() {
            match net {
                None => any.insert(rule),
                Some(ipnet::IpNet::V4(net)) => v4.push(RuleRange {
                    rule,
                    first: u32::from(net.network()),
                    last: u32::from(net.broadcast()),
                }),
                Some(ipnet::IpNet::V6(net)) => v6.push(RuleRange {
                    rule,
                    first: u128::from(net.network()),
                    last: u128::from(net.broadcast()),
                }),
            }
        }
        let none = RuleBits::empty(rules.len());
        AddressMap {
            any: sets.intern(&any),
            v4: IntervalMap::new(&elementary_intervals(&v4, &none, sets)),
            v6: IntervalMap::new(&elementary_intervals(&v6, &none, sets)),
        }
    }

    #[inline]
    fn lookup(&self, address: IpAddr) -> AddressSets {
        let containing = match address {
            IpAddr::V4(address) => self.v4.lookup(u32::from(address)),
            IpAddr::V6(address) => self.v6.lookup(u128::from(address)),
        };
        AddressSets { any: self.any, containing }
    }

    fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }
}

/// `ports_of(rule)`: the rule's port range in one dimension (source or destination).
fn build_port_map(
    rules: &[Rule],
    ports_of: impl Fn(&Rule) -> Option<config::PortRange>,
    sets: &mut RuleSetsBuilder,
) -> PortMap {
    let mut any_port = RuleBits::empty(rules.len());
    let mut ranges = Vec::new();
    for (rule, ports) in rules.iter().map(ports_of).enumerate() {
        match ports {
            None => any_port.insert(rule),
            // A range with first > last matches no port; it would also break the sweep.
            Some(ports) if ports.first > ports.last => {}
            Some(ports) => ranges.push(RuleRange { rule, first: ports.first, last: ports.last }),
        }
    }
    PortMap::new(&elementary_intervals(&ranges, &any_port, sets))
}

/// The class table: for each (direction, protocol, carries ports), the rules that accept it.
fn build_class_table(rules: &[Rule], sets: &mut RuleSetsBuilder) -> Box<[RowId]> {
    let accepts = |rule: &Rule, direction: Option<Direction>, has_ports: bool| {
        let wants_ports = rule.src_ports.is_some() || rule.dst_ports.is_some();
        rule.direction.is_none_or(|wanted| direction == Some(wanted)) && (has_ports || !wants_ports)
    };
    // Rules naming a protocol, by protocol: most protocols are named by no rule and share the set
    // of the rules that name none.
    let mut naming: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (index, rule) in rules.iter().enumerate() {
        if let Some(protocol) = rule.protocol {
            naming[usize::from(protocol)].push(index);
        }
    }
    let mut table = Vec::with_capacity(CLASS_COUNT);
    for direction in DIRECTIONS {
        let [without_ports, with_ports] = [false, true].map(|has_ports| {
            let mut set = RuleBits::empty(rules.len());
            for (index, rule) in rules.iter().enumerate() {
                if rule.protocol.is_none() && accepts(rule, direction, has_ports) {
                    set.insert(index);
                }
            }
            let row = sets.intern(&set);
            (set, row)
        });
        for named_by in &naming {
            for (has_ports, (any_protocol, any_protocol_row)) in
                [(false, &without_ports), (true, &with_ports)]
            {
                let row = if named_by.is_empty() {
                    *any_protocol_row
                } else {
                    let mut set = any_protocol.clone();
                    for &index in named_by {
                        if accepts(&rules[index], direction, has_ports) {
                            set.insert(index);
                        }
                    }
                    sets.intern(&set)
                };
                table.push(row);
            }
        }
    }
    debug_assert_eq!(table.len(), CLASS_COUNT);
    table.into_boxed_slice()
}

/// A filter compiled for classification: the data-path form of a [`config::Filter`].
pub struct CompiledFilter {
    default: Action,
    /// The action of each rule, by index.
    actions: Box<[Action]>,
    /// Indexed by [`class_index`].
    classes: Box<[RowId]>,
    src: AddressMap,
    dst: AddressMap,
    /// The rules that name neither a source nor a destination address.
    naming_no_address: RowId,
    /// A lookup that matches no rule (for packets that are not IP).
    no_match: Lookup<3>,
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
        let classes = build_class_table(rules, &mut sets);
        let src = AddressMap::build(rules, |rule| rule.src_cidr, &mut sets);
        let dst = AddressMap::build(rules, |rule| rule.dst_cidr, &mut sets);
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
            addresses: [AddressSets { any: nothing, containing: nothing }; 2],
            naming_no_address: nothing,
        };
        let src_ports = build_port_map(rules, |rule| rule.src_ports, &mut sets);
        let dst_ports = build_port_map(rules, |rule| rule.dst_ports, &mut sets);
        CompiledFilter {
            default: filter.default,
            actions: rules.iter().map(|rule| rule.action).collect(),
            classes,
            src,
            dst,
            naming_no_address,
            no_match,
            src_ports,
            dst_ports,
            sets: sets.finish(),
        }
    }

    /// The verdict for a packet of `key` (`None`: not an IP packet) travelling in `direction`.
    #[inline]
    pub fn classify(&self, key: Option<&FlowKey>, direction: Option<Direction>) -> FilterVerdict {
        let Some(key) = key else {
            return self.default_verdict();
        };
        self.verdict(self.sets.first_match(&self.lookup(key, direction)))
    }

    /// The verdicts of a burst: `verdicts[i]` for `keys[i]` travelling in `directions[i]`, for
    /// as many packets as the shortest of the three slices holds.
    pub fn classify_burst(
        &self,
        keys: &[Option<FlowKey>],
        directions: &[Option<Direction>],
        verdicts: &mut [FilterVerdict],
    ) {
        const GROUP: usize = 32;
        let mut lookups = [self.no_match; GROUP];
        for ((keys, directions), verdicts) in
            keys.chunks(GROUP).zip(directions.chunks(GROUP)).zip(verdicts.chunks_mut(GROUP))
        {
            for ((lookup, key), &direction) in lookups.iter_mut().zip(keys).zip(directions) {
                *lookup = match key {
                    Some(key) => self.lookup(key, direction),
                    None => self.no_match,
                };
            }
            for (verdict, lookup) in verdicts.iter_mut().zip(&lookups[..keys.len().min(directions.len())]) {
                *verdict = self.verdict(self.sets.first_match(lookup));
            }
        }
    }

    #[inline]
    fn lookup(&self, key: &FlowKey, direction: Option<Direction>) -> Lookup<3> {
        // A packet without ports is looked up as if its ports were whatever it holds (0): its
        // class already excludes every rule with a port range, and the port sets of any port
        // hold every rule without one. No branch on `has_ports`.
        let sets = [
            self.classes[class_index(direction, key.protocol, key.has_ports)],
            self.src_ports.lookup(key.src_port),
            self.dst_ports.lookup(key.dst_port),
        ];
        let addresses = [self.src.lookup(key.src), self.dst.lookup(key.dst)];
        Lookup { sets, addresses, naming_no_address: self.naming_no_address }
    }

    #[inline]
    fn verdict(&self, first: Option<usize>) -> FilterVerdict {
        match first.and_then(|index| Some((self.actions.get(index)?, u16::try_from(index).ok()?))) {
            Some((&action, index)) => FilterVerdict { action, rule: Some(index) },
            None => self.default_verdict(),
        }
    }

    fn default_verdict(&self) -> FilterVerdict {
        FilterVerdict { action: self.default, rule: None }
    }

    /// Rules compiled in.
    pub fn rule_count(&self) -> usize {
        self.actions.len()
    }

    /// Heap and inline bytes held by the compiled form.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of_val(&*self.actions)
            + size_of_val(&*self.classes)
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
            .field("src_v4_intervals", &self.src.v4.interval_count())
            .field("src_v6_intervals", &self.src.v6.interval_count())
            .field("dst_v4_intervals", &self.dst.v4.interval_count())
            .field("dst_v6_intervals", &self.dst.v6.interval_count())
            .field("src_port_intervals", &self.src_ports.interval_count())
            .field("dst_port_intervals", &self.dst_ports.interval_count())
            .field("rule_sets", &self.sets.row_count())
            .field("chunks", &self.sets.chunk_count())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}
