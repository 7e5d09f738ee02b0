//! The source or destination address dimension of the filter.

use std::net::IpAddr;

use config::Rule;
use ipnet::IpNet;

use super::direct::V4Map;
use super::interval::{IntervalMap, RuleRange, elementary_intervals};
use super::rule_set::{AddressSets, RowId, RuleBits, RuleSetsBuilder};

/// Keys per node of the IPv6 search tree (fan-out 4), as in the IPv4 one (`direct.rs`).
const V6_KEYS: usize = 3;

/// One address dimension: the rules that accept an address, as `any ∪ containing`.
#[derive(Clone, Debug)]
pub(super) struct AddressMap {
    /// The rules that name no address here: they accept every address of both families.
    any: RowId,
    /// Per family, the rules whose CIDR contains the address (`any` left out).
    v4: V4Map,
    v6: IntervalMap<u128, V6_KEYS>,
}

impl AddressMap {
    /// `cidr_of(rule)`: the rule's CIDR in this dimension.
    pub(super) fn build(
        rules: &[Rule],
        cidr_of: impl Fn(&Rule) -> Option<IpNet>,
        sets: &mut RuleSetsBuilder,
    ) -> AddressMap {
        let mut any = RuleBits::empty(rules.len());
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (rule, net) in rules.iter().map(cidr_of).enumerate() {
            // `network()`/`broadcast()` ignore host bits, as `IpNet::contains` does.
            match net {
                None => any.insert(rule),
                Some(IpNet::V4(net)) => v4.push(RuleRange {
                    rule,
                    first: u32::from(net.network()),
                    last: u32::from(net.broadcast()),
                }),
                Some(IpNet::V6(net)) => v6.push(RuleRange {
                    rule,
                    first: u128::from(net.network()),
                    last: u128::from(net.broadcast()),
                }),
            }
        }
        let none = RuleBits::empty(rules.len());
        AddressMap {
            any: sets.intern(&any),
            // A family's tree holds only that family's CIDRs: an IPv4 CIDR never contains an
            // IPv6 address and the other way round.
            v4: V4Map::new(&elementary_intervals(&v4, &none, sets)),
            v6: IntervalMap::new(&elementary_intervals(&v6, &none, sets)),
        }
    }

    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub(super) fn lookup(&self, address: IpAddr) -> AddressSets {
        let containing = match address {
            IpAddr::V4(address) => self.v4.lookup(u32::from(address)),
            IpAddr::V6(address) => self.v6.lookup(u128::from(address)),
        };
        AddressSets {
            any: self.any,
            containing,
        }
    }

    /// Elementary intervals of the IPv4 and the IPv6 tree.
    pub(super) fn interval_counts(&self) -> (usize, usize) {
        (self.v4.interval_count(), self.v6.interval_count())
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }
}
