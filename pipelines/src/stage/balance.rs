//! The keys a tool group balances on: which packets must reach the same analyzer.
//!
//! # Design
//! Each `balance` mode hashes the fields that define "the same conversation" for it, and the
//! group's [`Maglev`](super::maglev::Maglev) table turns the hash into a port:
//! - `source` ([`source_hash`]): the mirror source (outer source address) and VNI, so one
//!   mirrored ENI goes to one analyzer;
//! - `flow` ([`flow_hash`]): the inner 5-tuple, symmetric, so both directions of a connection meet;
//! - `ip-pair` ([`ip_pair_hash`]): the inner address pair, symmetric, so everything between two
//!   hosts (fragments included) meets.
//!
//! Like the Maglev table, these hashes are part of the contract between the brokers of a fleet,
//! which must agree across versions: they are XXH3-64 (a frozen, endian-independent algorithm)
//! with the fixed seed [`BALANCE_SEED`] over the byte layouts written out below, and the golden
//! tests pin their values. Changing a layout or the seed is a breaking change.
//!
//! Symmetry comes from ordering the two endpoints before hashing (the smaller `(address, port)`
//! first), not from a commutative mix such as XOR: ordering keeps the encoding injective, so two
//! different conversations collide only as often as XXH3 collides.
//!
//! Encodings (addresses in network byte order, ports and the VNI big-endian):
//! - source: `[family, VNI (4 bytes), address (4 | 16)]`
//! - flow: `[family, protocol, low address, high address, low port, high port]`
//! - ip-pair: `[family, low address, high address]`
//!
//! where `family` is 4 or 6. An IPv4-mapped IPv6 address stays IPv6.
//!
//! # Limitations
//! - Under `flow`, a packet without ports (ICMP, any other portless protocol) and every
//!   **fragment**, first or later, is hashed by [`ip_pair_hash`]: later fragments carry no ports,
//!   and all fragments of one datagram must reach the analyzer that reassembles them. A TCP or UDP
//!   flow whose packets are sometimes fragmented may therefore see its fragments go to another
//!   analyzer than its unfragmented packets. Under `ip-pair` this never happens.
//! - A packet whose two endpoints are of different families cannot exist; if a key holds one, the
//!   family byte is the source's.

use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::flow::FlowKey;

/// Seed of the balance hashes. Part of the fleet contract.
pub const BALANCE_SEED: u64 = 0x6272_6f6b_6572_6c62; // "brokerlb"

/// Longest encoding: family, protocol, two IPv6 addresses, two ports.
const MAX_ENCODING: usize = 1 + 1 + 16 + 16 + 2 + 2;

/// Hash for `balance = "source"`: the mirror source (outer source address) and the VNI.
#[inline]
pub fn source_hash(mirror_source: IpAddr, vni: u32) -> u64 {
    let mut buf = Encoding::new(family(mirror_source));
    buf.push(&vni.to_be_bytes());
    buf.push_addr(mirror_source);
    buf.hash()
}

/// Hash for `balance = "flow"`: the symmetric 5-tuple, `flow_hash(a→b) == flow_hash(b→a)`.
///
/// Fragments and packets without ports fall back to [`ip_pair_hash`] (see the module's
/// *Limitations*).
#[inline]
pub fn flow_hash(key: &FlowKey) -> u64 {
    if key.fragment || !key.has_ports {
        return ip_pair_hash(key);
    }
    let ((low, low_port), (high, high_port)) =
        ordered((key.src, key.src_port), (key.dst, key.dst_port));
    let mut buf = Encoding::new(family(key.src));
    buf.push(&[key.protocol]);
    buf.push_addr(low);
    buf.push_addr(high);
    buf.push(&low_port.to_be_bytes());
    buf.push(&high_port.to_be_bytes());
    buf.hash()
}

/// Hash for `balance = "ip-pair"`: the symmetric address pair, ignoring protocol and ports.
#[inline]
pub fn ip_pair_hash(key: &FlowKey) -> u64 {
    let ((low, _), (high, _)) = ordered((key.src, 0), (key.dst, 0));
    let mut buf = Encoding::new(family(key.src));
    buf.push_addr(low);
    buf.push_addr(high);
    buf.hash()
}

/// The two endpoints, smaller first (IPv4 before IPv6, then by address bytes, then by port).
#[inline]
fn ordered(a: (IpAddr, u16), b: (IpAddr, u16)) -> ((IpAddr, u16), (IpAddr, u16)) {
    if a <= b { (a, b) } else { (b, a) }
}

fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

/// A field encoding on the stack.
struct Encoding {
    bytes: [u8; MAX_ENCODING],
    len: usize,
}

impl Encoding {
    #[inline]
    fn new(family: u8) -> Encoding {
        let mut bytes = [0; MAX_ENCODING];
        bytes[0] = family;
        Encoding { bytes, len: 1 }
    }

    /// Appends `field`. The callers' fields never exceed [`MAX_ENCODING`] in total.
    #[inline]
    fn push(&mut self, field: &[u8]) {
        let end = self.len + field.len();
        if let Some(dst) = self.bytes.get_mut(self.len..end) {
            dst.copy_from_slice(field);
            self.len = end;
        }
    }

    #[inline]
    fn push_addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.push(&a.octets()),
            IpAddr::V6(a) => self.push(&a.octets()),
        }
    }

    #[inline]
    fn hash(&self) -> u64 {
        xxh3_64_with_seed(&self.bytes[..self.len], BALANCE_SEED)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::flow::ip_proto;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn reversed(key: &FlowKey) -> FlowKey {
        FlowKey {
            src: key.dst,
            dst: key.src,
            src_port: key.dst_port,
            dst_port: key.src_port,
            ..*key
        }
    }

    fn any_addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        ]
    }

    /// A flow key with both addresses of one family.
    fn any_key() -> impl Strategy<Value = FlowKey> {
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<(bool, bool)>(),
        )
            .prop_map(|(v6, a, b, protocol, sp, dp, (has_ports, fragment))| {
                let (src, dst) = if v6 {
                    (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))
                } else {
                    let (a4, b4) = ([a[0], a[1], a[2], a[3]], [b[0], b[1], b[2], b[3]]);
                    (
                        IpAddr::V4(Ipv4Addr::from(a4)),
                        IpAddr::V4(Ipv4Addr::from(b4)),
                    )
                };
                let (src_port, dst_port) = if has_ports { (sp, dp) } else { (0, 0) };
                FlowKey {
                    src,
                    dst,
                    protocol,
                    src_port,
                    dst_port,
                    has_ports,
                    fragment,
                }
            })
    }

    proptest! {
        #[test]
        fn flow_and_ip_pair_hashes_are_symmetric(key in any_key()) {
            prop_assert_eq!(flow_hash(&key), flow_hash(&reversed(&key)));
            prop_assert_eq!(ip_pair_hash(&key), ip_pair_hash(&reversed(&key)));
        }

        /// Changing one field of a port-carrying, unfragmented flow gives another hash (a
        /// single-field change can never turn a flow into its own reverse).
        #[test]
        fn flows_differing_in_one_field_hash_differently(
            key in any_key(),
            field in 0..5usize,
            other_addr in any_addr(),
            other in any::<u16>(),
        ) {
            let key = FlowKey { has_ports: true, fragment: false, ..key };
            let mut changed = key;
            match field {
                0 => changed.src = other_addr,
                1 => changed.dst = other_addr,
                2 => changed.protocol = other as u8,
                3 => changed.src_port = other,
                _ => changed.dst_port = other,
            }
            prop_assume!(changed != key);
            prop_assert_ne!(flow_hash(&key), flow_hash(&changed));
        }

        #[test]
        fn ip_pair_ignores_protocol_and_ports(key in any_key(), protocol in any::<u8>(), port in any::<u16>()) {
            let other = FlowKey { protocol, src_port: port, dst_port: port.wrapping_add(1), ..key };
            prop_assert_eq!(ip_pair_hash(&key), ip_pair_hash(&other));
        }

        #[test]
        fn source_hash_separates_sources_and_vnis(a in any_addr(), b in any_addr(), vni in 0..1u32 << 24, other in 0..1u32 << 24) {
            prop_assume!(a != b && vni != other);
            prop_assert_ne!(source_hash(a, vni), source_hash(b, vni));
            prop_assert_ne!(source_hash(a, vni), source_hash(a, other));
        }
    }

    #[test]
    fn distinct_flows_get_distinct_hashes() {
        let mut flows = HashSet::new();
        let mut hashes = HashSet::new();
        for i in 0..200_000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            let key = FlowKey::with_ports(
                v4(10, a, b, c),
                v4(10, 9, 9, d),
                ip_proto::TCP,
                1024 + (i % 7) as u16,
                443,
            );
            flows.insert((key.src, key.dst, key.src_port));
            hashes.insert(flow_hash(&key));
        }
        assert_eq!(hashes.len(), flows.len());
    }

    #[test]
    fn fragments_and_portless_packets_fall_back_to_the_address_pair() {
        let tcp = FlowKey::with_ports(v4(10, 0, 0, 1), v4(10, 0, 0, 2), ip_proto::TCP, 40000, 80);
        let first_fragment = FlowKey {
            fragment: true,
            ..tcp
        };
        let later_fragment = FlowKey {
            fragment: true,
            ..FlowKey::without_ports(tcp.dst, tcp.src, ip_proto::TCP)
        };
        let icmp = FlowKey::without_ports(tcp.src, tcp.dst, ip_proto::ICMP);
        let pair = ip_pair_hash(&tcp);
        assert_eq!(flow_hash(&first_fragment), pair);
        assert_eq!(flow_hash(&later_fragment), pair);
        assert_eq!(flow_hash(&icmp), pair);
        assert_ne!(flow_hash(&tcp), pair);
        // Under ip-pair, every packet between the two hosts agrees.
        for k in [tcp, first_fragment, later_fragment, icmp] {
            assert_eq!(ip_pair_hash(&k), pair);
        }
    }

    #[test]
    fn families_are_kept_apart() {
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_ne!(source_hash(v4(10, 0, 0, 1), 7), source_hash(mapped, 7));
    }

    /// Pins the fleet contract: if this fails, brokers of different versions disagree.
    #[test]
    fn golden_hashes() {
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let tcp = FlowKey::with_ports(v4(10, 0, 0, 1), v4(10, 0, 0, 2), ip_proto::TCP, 40000, 80);
        let udp6 = FlowKey::with_ports(
            v6("2001:db8::1"),
            v6("2001:db8::2"),
            ip_proto::UDP,
            53,
            5353,
        );
        let got = [
            source_hash(v4(172, 31, 5, 9), 4242),
            source_hash(v6("2001:db8::9"), 4242),
            flow_hash(&tcp),
            flow_hash(&udp6),
            ip_pair_hash(&tcp),
            ip_pair_hash(&udp6),
        ];
        assert_eq!(got, GOLDEN);
    }

    const GOLDEN: [u64; 6] = [
        12847121170437403576,
        12196521611787398696,
        3677050785880989299,
        5463159247060001841,
        5724345001363770477,
        4693412965137125133,
    ];
}
