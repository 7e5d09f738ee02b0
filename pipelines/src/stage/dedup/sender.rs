//! The sender rule: which copy of a packet mirrored at both ends to drop, decided from the config
//! alone, so that every broker of a fleet decides alike with no state shared.
//!
//! # Design
//! The sessions' `source_ips` name the mirrored interfaces. A copy of a packet is *the receiver's
//! copy* when its session lists the packet's destination and not its source ([`Viewpoint`]).
//! For such a copy, the copies taken at the sender are those of the sessions that list the
//! source and not the destination; each exists (the cloud mirrors both directions at both ends:
//! the rule's assumption) and reaches the tool groups of its session when its filter accepts the
//! packet as *egress*. The pipeline drops the receiver's copy for each of its tool groups that
//! such a sender copy reaches **on the same port** — the same port because the group balances by
//! `flow` or `ip-pair` (both copies hash alike), or by `source` with both interfaces' keys on
//! one port, or any port of a `round-robin` group (whose identity is the group) — and delivers
//! it everywhere else. So each port receives the packet once if a copy keyed to it is accepted:
//! from the sender's copy where both would reach it, from its own copy otherwise.
//!
//! What the per-packet check needs is precomputed here from the config: an open-addressing
//! table from each mirrored address to the sessions listing it, and per session its filter, tool
//! groups and VNI. A receiver's copy costs one lookup of its source address (usually one
//! session, whose filter then classifies the packet once more); every other copy costs nothing
//! beyond its own session's [`Viewpoint`], which the filter needs anyway.
//!
//! # Limitations
//! - A copy whose session lists both ends ([`Viewpoint::Both`]) cannot be told from the other
//!   copy by the config: the rule keeps it (both copies are delivered where they meet, unless the
//!   window of `"sender+window"` sees both). A copy whose session lists neither end, or that is
//!   not IP, is kept too.
//! - If the sender's copy is lost on the way (the cloud's filter drops it, the network loses
//!   it), the packet is lost where the rule dropped the receiver's copy; the window would have
//!   kept whichever copy arrived.
//! - An interface mirrored by two sessions sends two sender copies: the rule drops the receiver's
//!   copy where either reaches its port, and both sender copies are delivered (`broker check`
//!   warns).
//! - Port liveness is this broker's: the rule assumes the sender's copy goes where this broker
//!   would send it. Brokers that see different ports down may disagree during the change.

use std::net::IpAddr;

use config::{Action, Direction, ValidatedConfig};

use crate::flow::FlowKey;
use crate::stage::balance::source_hash;
use crate::stage::filter::CompiledFilter;

/// Which end of a packet a copy was taken at, as the `source_ips` of the copy's session say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Viewpoint {
    /// The session lists the destination, not the source: taken at the receiver.
    Receiver,
    /// The session lists the source, not the destination: taken at the sender.
    Sender,
    /// The session lists both ends: taken at either, the config cannot say which.
    Both,
    /// Neither end (a session without `source_ips`, traffic the interface forwards), or not IP.
    Unknown,
}

impl Viewpoint {
    /// The viewpoint of a copy of `flow` under a session that mirrors the addresses `mirrors`
    /// says it does.
    #[inline]
    pub fn of(flow: Option<&FlowKey>, mirrors: impl Fn(IpAddr) -> bool) -> Viewpoint {
        let Some(flow) = flow else {
            return Viewpoint::Unknown;
        };
        match (mirrors(flow.src), mirrors(flow.dst)) {
            (false, true) => Viewpoint::Receiver,
            (true, false) => Viewpoint::Sender,
            (true, true) => Viewpoint::Both,
            (false, false) => Viewpoint::Unknown,
        }
    }

    /// The packet's direction for the session's filter: ingress when the destination is one of
    /// its addresses (also when the source is too), egress when only the source is.
    #[inline]
    pub fn direction(self) -> Option<Direction> {
        match self {
            Viewpoint::Receiver | Viewpoint::Both => Some(Direction::Ingress),
            Viewpoint::Sender => Some(Direction::Egress),
            Viewpoint::Unknown => None,
        }
    }

    /// The address of the interface the copy was taken at, when the session says which it is.
    #[inline]
    pub fn interface(self, flow: Option<&FlowKey>) -> Option<IpAddr> {
        match (self, flow) {
            (Viewpoint::Receiver, Some(flow)) => Some(flow.dst),
            (Viewpoint::Sender, Some(flow)) => Some(flow.src),
            _ => None,
        }
    }
}

/// A session as the sender rule needs it.
#[derive(Clone, Debug)]
struct SenderSession {
    filter: Option<u16>,
    /// Its tool groups (a handful: scanned).
    groups: Box<[u16]>,
    /// The VNI its `source` key uses: the session's, 0 without one.
    vni: u32,
}

/// A copy of the packet taken at its sender that exists and passes its session's filter.
#[derive(Clone, Copy, Debug)]
pub struct SenderCopy<'a> {
    groups: &'a [u16],
    /// The sender's interface (the packet's source) and its session's VNI.
    interface: IpAddr,
    vni: u32,
}

impl SenderCopy<'_> {
    /// Whether the copy is sent to tool group `group`.
    #[inline]
    pub fn sends_to(&self, group: u16) -> bool {
        self.groups.contains(&group)
    }

    /// Its key for `balance = "source"`: the sender's interface under its session's VNI (hashed
    /// only when a `source` group asks).
    #[inline]
    pub fn source_key(&self) -> u64 {
        source_hash(self.interface, self.vni)
    }
}

/// The precomputed sender rule of one config (see the module docs).
#[derive(Clone, Debug)]
pub struct SenderRule {
    mirrored: AddressIndex,
    sessions: Box<[SenderSession]>,
}

impl SenderRule {
    /// The rule for `config`'s sessions; filters are referred to by index (the plan's compiled
    /// filters, in config order).
    pub fn new(config: &ValidatedConfig) -> SenderRule {
        let mut by_address: Vec<(IpAddr, u16)> = config
            .sessions
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.source_ips.iter().map(move |&a| (a, i as u16)))
            .collect();
        by_address.sort_unstable();
        by_address.dedup();
        SenderRule {
            mirrored: AddressIndex::new(&by_address),
            sessions: config
                .sessions
                .iter()
                .map(|s| SenderSession {
                    filter: s.filter.map(|f| f.0),
                    groups: s.tools.iter().map(|g| g.0).collect(),
                    vni: s.vni.map_or(0, |v| v.get()),
                })
                .collect(),
        }
    }

    /// The sessions listing `address` among their `source_ips`, in session order.
    #[inline]
    pub fn sessions_mirroring(&self, address: IpAddr) -> &[u16] {
        self.mirrored.get(address)
    }

    /// The copies of `flow` taken at its sender that exist and pass their filter: one per session
    /// that lists the source and not the destination, and accepts the packet as egress. Meant
    /// for the receiver's copy; `filters` are the plan's, by index.
    #[inline]
    pub fn sender_copies<'a>(
        &'a self,
        flow: &'a FlowKey,
        filters: &'a [CompiledFilter],
    ) -> impl Iterator<Item = SenderCopy<'a>> + 'a {
        let senders = self.mirrored.get(flow.src);
        // Looked up only when some session mirrors the source (the common miss costs one lookup).
        let receivers = if senders.is_empty() {
            &[][..]
        } else {
            self.mirrored.get(flow.dst)
        };
        senders
            .iter()
            .filter(move |s| !receivers.contains(s))
            .filter_map(move |&s| {
                // The index holds only sessions of this config, and `filters` are compiled from
                // the same config's filters, in order (the plan builds both from one config).
                let session = &self.sessions[usize::from(s)];
                let accepted = session.filter.is_none_or(|f| {
                    filters[usize::from(f)]
                        .classify(Some(flow), Some(Direction::Egress))
                        .action
                        == Action::Accept
                });
                accepted.then_some(SenderCopy {
                    groups: &session.groups,
                    interface: flow.src,
                    vni: session.vni,
                })
            })
    }
}

/// Mirrored address → sessions, for one lookup per packet: open addressing with linear probing
/// in a table at most half full (as the plan's VNI table), each slot holding its sessions as a
/// range of one shared list.
#[derive(Clone, Debug)]
struct AddressIndex {
    /// `(address, start, len)` into `sessions`; `len` 0 marks an empty slot.
    slots: Box<[(IpAddr, u32, u16)]>,
    /// `slots.len() - 1` (the length is a power of two).
    mask: usize,
    sessions: Box<[u16]>,
}

impl AddressIndex {
    /// An index of `pairs`, sorted and without repeats.
    fn new(pairs: &[(IpAddr, u16)]) -> AddressIndex {
        let mut sessions = Vec::with_capacity(pairs.len());
        let mut entries: Vec<(IpAddr, u32, u16)> = Vec::new();
        for &(address, session) in pairs {
            match entries.last_mut() {
                Some((last, _, len)) if *last == address => *len += 1,
                _ => entries.push((address, sessions.len() as u32, 1)),
            }
            sessions.push(session);
        }
        let len = (entries.len() * 2).next_power_of_two().max(2);
        let mask = len - 1;
        let empty = (IpAddr::from([0u8; 4]), 0, 0);
        let mut slots = vec![empty; len].into_boxed_slice();
        for entry in entries {
            let mut at = Self::home(entry.0, mask);
            while slots[at].2 != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = entry;
        }
        AddressIndex {
            slots,
            mask,
            sessions: sessions.into(),
        }
    }

    /// Slot an address hashes to (a multiplicative hash of its bits; the family keeps IPv4 and
    /// IPv4-mapped IPv6 apart by comparison, not by hash).
    #[inline]
    fn home(address: IpAddr, mask: usize) -> usize {
        let bits = match address {
            IpAddr::V4(a) => u64::from(a.to_bits()),
            IpAddr::V6(a) => {
                let bits = a.to_bits();
                (bits >> 64) as u64 ^ bits as u64
            }
        };
        (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
    }

    #[inline]
    fn get(&self, address: IpAddr) -> &[u16] {
        let mut at = Self::home(address, self.mask);
        // At most half full: an empty slot ends every probe sequence.
        for _ in 0..self.slots.len() {
            let Some(&(stored, start, len)) = self.slots.get(at) else {
                break;
            };
            if len == 0 {
                break;
            }
            if stored == address {
                let start = start as usize;
                return self
                    .sessions
                    .get(start..start + usize::from(len))
                    .unwrap_or_default();
            }
            at = (at + 1) & self.mask;
        }
        &[]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::flow::ip_proto;
    use config::fixtures;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_index_finds_every_address_and_nothing_else() {
        let mut pairs: Vec<(IpAddr, u16)> = (0..500u32)
            .flat_map(|i| {
                let v4 = IpAddr::from((0x0a00_0000 + 7 * i).to_be_bytes());
                let v6 = IpAddr::from(std::net::Ipv6Addr::from(
                    (0xfd00u128 << 112) + u128::from(7 * i),
                ));
                [(v4, (i % 40) as u16), (v4, 40 + (i % 3) as u16), (v6, 7)]
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let index = AddressIndex::new(&pairs);
        assert!(index.slots.len().is_power_of_two() && index.slots.len() >= 2 * 1000);
        for i in 0..500u32 {
            let v4 = IpAddr::from((0x0a00_0000 + 7 * i).to_be_bytes());
            assert_eq!(index.get(v4), &[(i % 40) as u16, 40 + (i % 3) as u16]);
            let v6 = IpAddr::from(std::net::Ipv6Addr::from(
                (0xfd00u128 << 112) + u128::from(7 * i),
            ));
            assert_eq!(index.get(v6), &[7]);
            let absent = IpAddr::from((0x0a00_0000 + 7 * i + 1).to_be_bytes());
            assert_eq!(index.get(absent), &[] as &[u16]);
            // The IPv4-mapped form of a listed IPv4 address is another address.
            let IpAddr::V4(a) = v4 else { unreachable!() };
            assert_eq!(index.get(IpAddr::V6(a.to_ipv6_mapped())), &[] as &[u16]);
        }
        assert_eq!(AddressIndex::new(&[]).get(ip("0.0.0.0")), &[] as &[u16]);
    }

    #[test]
    fn viewpoints_directions_and_interfaces() {
        let a = ip("10.0.0.1");
        let b = ip("10.0.0.2");
        let flow = FlowKey::with_ports(a, b, ip_proto::TCP, 40000, 443);
        let mirrors =
            |list: &'static [&'static str]| move |x: IpAddr| list.iter().any(|m| ip(m) == x);
        let cases = [
            (
                &["10.0.0.2"][..],
                Viewpoint::Receiver,
                Some(Direction::Ingress),
                Some(b),
            ),
            (
                &["10.0.0.1"][..],
                Viewpoint::Sender,
                Some(Direction::Egress),
                Some(a),
            ),
            (
                &["10.0.0.1", "10.0.0.2"][..],
                Viewpoint::Both,
                Some(Direction::Ingress),
                None,
            ),
            (&[][..], Viewpoint::Unknown, None, None),
        ];
        for (list, viewpoint, direction, interface) in cases {
            let v = Viewpoint::of(Some(&flow), mirrors(list));
            assert_eq!(v, viewpoint, "{list:?}");
            assert_eq!(v.direction(), direction);
            assert_eq!(v.interface(Some(&flow)), interface);
        }
        assert_eq!(Viewpoint::of(None, |_| true), Viewpoint::Unknown);
        assert_eq!(Viewpoint::Sender.interface(None), None);
    }

    /// Three sessions: `a` mirrors 10.0.0.1 (filter: egress TCP only), `b` mirrors 10.0.0.2 and
    /// fd00::2, `ab` mirrors both 10.0.0.1 and 10.0.0.3.
    const CONFIG: &str = r#"
[broker]
name = "sender"
[[ingress]]
name = "in"
device = "net_null0"
[decap]
allowed_sources = ["10.0.0.0/8"]
[dedup]
mode = "sender"
[[session]]
name = "a"
vni = 11
tools = ["ids", "rec"]
filter = "egress-tcp"
source_ips = ["10.0.0.1"]
[[session]]
name = "b"
vni = 12
tools = ["ids"]
source_ips = ["10.0.0.2", "fd00::2"]
[[session]]
name = "ab"
vni = 13
tools = ["rec"]
source_ips = ["10.0.0.1", "10.0.0.3"]
[[filter]]
name = "egress-tcp"
default = "reject"
[[filter.rule]]
number = 1
action = "accept"
direction = "egress"
protocol = "tcp"
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }]
[[tool_group]]
name = "rec"
ports = [{ name = "rec-1", device = "net_null2" }]
"#;

    fn rule_and_filters() -> (SenderRule, Vec<CompiledFilter>) {
        let config = fixtures::config(CONFIG);
        let filters = config.filters.iter().map(CompiledFilter::compile).collect();
        (SenderRule::new(&config), filters)
    }

    /// (groups, source key) of every sender copy.
    fn copies(
        rule: &SenderRule,
        filters: &[CompiledFilter],
        flow: &FlowKey,
    ) -> Vec<(Vec<u16>, u64)> {
        rule.sender_copies(flow, filters)
            .map(|c| (c.groups.to_vec(), c.source_key()))
            .collect()
    }

    #[test]
    fn sender_copies_are_those_of_sessions_mirroring_only_the_source_and_accepting_egress() {
        let (rule, filters) = rule_and_filters();
        assert_eq!(rule.sessions_mirroring(ip("10.0.0.1")), &[0, 2]);
        assert_eq!(rule.sessions_mirroring(ip("fd00::2")), &[1]);
        let tcp = FlowKey::with_ports(ip("10.0.0.1"), ip("10.0.0.2"), ip_proto::TCP, 1, 2);
        let udp = FlowKey::with_ports(ip("10.0.0.1"), ip("10.0.0.2"), ip_proto::UDP, 1, 2);
        // From 10.0.0.1: session a (filter accepts egress TCP) and ab (no filter).
        assert_eq!(
            copies(&rule, &filters, &tcp),
            vec![
                (vec![0, 1], source_hash(ip("10.0.0.1"), 11)),
                (vec![1], source_hash(ip("10.0.0.1"), 13)),
            ]
        );
        // a's filter rejects UDP: only ab's copy is left.
        assert_eq!(
            copies(&rule, &filters, &udp),
            vec![(vec![1], source_hash(ip("10.0.0.1"), 13))]
        );
        // 10.0.0.1 → 10.0.0.3: ab lists both ends, so its copy is no sender copy.
        let within = FlowKey::with_ports(ip("10.0.0.1"), ip("10.0.0.3"), ip_proto::TCP, 1, 2);
        assert_eq!(
            copies(&rule, &filters, &within),
            vec![(vec![0, 1], source_hash(ip("10.0.0.1"), 11))]
        );
        // From an address nobody mirrors: no sender copy.
        let unmirrored = FlowKey::with_ports(ip("10.9.9.9"), ip("10.0.0.2"), ip_proto::TCP, 1, 2);
        assert!(copies(&rule, &filters, &unmirrored).is_empty());
        let copy = rule.sender_copies(&tcp, &filters).next().unwrap();
        assert!(copy.sends_to(0) && copy.sends_to(1) && !copy.sends_to(2));
    }

    proptest! {
        // Each case parses a config: fewer cases than the default keep the test quick.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against the config itself, session by session: the sender copies are the sessions
        /// that list the source, not the destination, and whose filter accepts egress.
        #[test]
        fn sender_copies_match_the_config(
            lists in proptest::collection::vec(proptest::collection::btree_set(0..6u8, 0..4), 1..6),
            filtered in proptest::collection::vec(any::<bool>(), 6),
            src in 0..7u8,
            dst in 0..7u8,
            tcp in any::<bool>(),
        ) {
            let address = |i: u8| if i % 2 == 0 {
                IpAddr::from([10, 0, 0, i])
            } else {
                IpAddr::from(std::net::Ipv6Addr::from((0xfd00u128 << 112) + u128::from(i)))
            };
            let mut text = String::from(
                "[broker]\nname = \"p\"\n[[ingress]]\nname = \"in\"\ndevice = \"net_null0\"\n\
                 [decap]\nallowed_sources = [\"10.0.0.0/8\"]\n\
                 [[filter]]\nname = \"egress-tcp\"\n[[filter.rule]]\nnumber = 1\n\
                 action = \"accept\"\ndirection = \"egress\"\nprotocol = \"tcp\"\n\
                 [[tool_group]]\nname = \"g\"\nports = [{ name = \"g-1\", device = \"net_null1\" }]\n",
            );
            for (i, list) in lists.iter().enumerate() {
                let ips: Vec<String> = list.iter().map(|&a| format!("\"{}\"", address(a))).collect();
                let filter = if filtered[i] { "filter = \"egress-tcp\"\n" } else { "" };
                text.push_str(&format!(
                    "[[session]]\nname = \"s{i}\"\nvni = {i}\ntools = [\"g\"]\n{filter}source_ips = [{}]\n",
                    ips.join(", ")
                ));
            }
            let config = fixtures::config(&text);
            let filters: Vec<CompiledFilter> = config.filters.iter().map(CompiledFilter::compile).collect();
            let rule = SenderRule::new(&config);
            let (src, dst) = (address(src), address(dst));
            prop_assume!(src.is_ipv4() == dst.is_ipv4());
            let protocol = if tcp { ip_proto::TCP } else { ip_proto::UDP };
            let flow = FlowKey::with_ports(src, dst, protocol, 1000, 2000);
            let got: BTreeSet<u64> = rule.sender_copies(&flow, &filters).map(|c| c.source_key()).collect();
            let wanted: BTreeSet<u64> = config
                .sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.source_ips.contains(&src) && !s.source_ips.contains(&dst))
                .filter(|(i, _)| !filtered[*i] || tcp)
                .map(|(i, _)| source_hash(src, i as u32))
                .collect();
            prop_assert_eq!(got, wanted);
        }
    }
}
