//! The keys a tool group balances on: which packets must reach the same analyzer.
//!
//! # Design
//! Each `balance` mode hashes the fields that define "the same conversation" for it, and the
//! group's [`Maglev`](super::maglev::Maglev) table turns the hash into a port:
//! - `source` ([`source_hash`]): the mirrored interface and the session's VNI, so one mirrored
//!   interface goes to one analyzer. The interface is the address of the session's `source_ips`
//!   the copy was taken at (the destination of a packet entering it, the source of one leaving
//!   it), so that every broker can tell where the *other* copy of a packet mirrored at both ends
//!   goes (the sender rule); when `source_ips` do not say (none listed, or both ends listed), it
//!   is the mirror source (the outer source address) with the packet's VNI. For AWS, whose outer
//!   source is the ENI's primary IPv4 address, the two agree for the ENI's IPv4 traffic;
//! - `flow` ([`flow_hash`]): the inner 5-tuple, symmetric, so both directions of a connection meet;
//! - `ip-pair` ([`ip_pair_hash`]): the inner address pair, symmetric, so everything between two
//!   hosts (fragments included) meets.
//!
//! Like the Maglev table, these hashes (and what the pipeline hashes with them: the golden test
//! of `pipelines/tests/fleet.rs` pins config and packets to ports) are part of the contract
//! between the brokers of a fleet, which must agree across versions, so the function is written
//! out here rather than borrowed
//! from a crate: the fields are packed into 64-bit words (below), the words are absorbed two at a
//! time by a *folded multiply* (the 128-bit product of two words, its halves XORed: the core of
//! wyhash and its successors), and a last folded multiply finishes:
//!
//! ```text
//! fold(a, b)   = low64(a × b) ^ high64(a × b)          (a × b: the full 128-bit product)
//! h            = BALANCE_SEED
//! for each pair of words (w0, w1): h = fold(w0 ^ MIX[0] ^ h, w1 ^ MIX[1])
//! hash         = fold(h ^ MIX[2], number of words ^ MIX[1])
//! ```
//! The golden tests pin the values: changing the packing, the constants or the steps is a
//! breaking change. Working on words in registers matters: an earlier version hashed a byte
//! encoding with XXH3 and spent most of its 10+ ns in store-to-load forwarding stalls (the
//! encoding is written in pieces, then read back in wider loads).
//!
//! Symmetry comes from ordering the two endpoints before hashing (the lower first), not from a
//! commutative mix such as XOR: ordering keeps the packing injective, so two different
//! conversations collide only as often as the hash collides. An endpoint is lower when its
//! address, read as a big-endian integer, is smaller, or the addresses are equal and its port is
//! smaller.
//!
//! Packing (`family` is 4 or 6; an IPv4-mapped IPv6 address stays IPv6; IPv6 addresses are two
//! words, high half first; unused words are 0):
//!
//! | mode    | IPv4 words                               | IPv6 words                               |
//! |---------|------------------------------------------|------------------------------------------|
//! | source  | `addr << 32 \| vni`, `family`            | `addr`, `vni << 8 \| family`, 0          |
//! | flow    | `low << 32 \| high`, `ports_and_family`  | `low`, `high`, `ports_and_family`, 0     |
//! | ip-pair | `low << 32 \| high`, `family`            | `low`, `high`, `family`, 0               |
//!
//! with `ports_and_family = low_port << 48 | high_port << 32 | protocol << 8 | family`.
//!
//! # Limitations
//! - Under `flow`, a packet without ports (ICMP, any other portless protocol) and every
//!   **fragment**, first or later, is hashed by [`ip_pair_hash`]: later fragments carry no ports,
//!   and all fragments of one datagram must reach the analyzer that reassembles them. A TCP or UDP
//!   flow whose packets are sometimes fragmented may therefore see its fragments go to another
//!   analyzer than its unfragmented packets. Under `ip-pair` this never happens.
//! - The hashes are not keyed (every broker must compute the same values), so whoever can send
//!   traffic into a mirrored network can craft flows that all land on one analyzer.
//! - A key whose two addresses are of different families cannot come from a packet; if one is
//!   given, it is hashed as IPv6 with `family` 0 and its IPv4 address as IPv4-mapped IPv6.

use std::net::IpAddr;

use crate::flow::FlowKey;

/// Seed of the balance hashes. Part of the fleet contract.
pub const BALANCE_SEED: u64 = 0x6272_6f6b_6572_6c62; // "brokerlb"
/// Constants of the mixer: random odd 64-bit numbers. Part of the fleet contract.
const MIX: [u64; 3] = [
    0x2d35_8dcc_aa6c_78a5,
    0x8bb8_4b93_962e_acc9,
    0x4b33_a62e_d433_d4a3,
];
/// Family byte of a key mixing IPv4 and IPv6 (see *Limitations*).
const MIXED_FAMILIES: u64 = 0;

/// Hash for `balance = "source"`: the mirrored interface's address (or the mirror source, the
/// outer source address) and the VNI.
#[inline]
pub fn source_hash(mirror_source: IpAddr, vni: u32) -> u64 {
    let vni = u64::from(vni);
    match mirror_source {
        IpAddr::V4(a) => hash([u64::from(a.to_bits()) << 32 | vni, 4]),
        IpAddr::V6(a) => {
            let [high, low] = split(a.to_bits());
            hash([high, low, vni << 8 | 6, 0])
        }
    }
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
    let ports_and_family = |low_port: u16, high_port: u16, family: u64| {
        u64::from(low_port) << 48
            | u64::from(high_port) << 32
            | u64::from(key.protocol) << 8
            | family
    };
    match (key.src, key.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let ((low, low_port), (high, high_port)) =
                ordered((src.to_bits(), key.src_port), (dst.to_bits(), key.dst_port));
            hash([
                u64::from(low) << 32 | u64::from(high),
                ports_and_family(low_port, high_port, 4),
            ])
        }
        (src, dst) => {
            let ((low, low_port), (high, high_port)) =
                ordered((v6_bits(src), key.src_port), (v6_bits(dst), key.dst_port));
            let ([low_high, low_low], [high_high, high_low]) = (split(low), split(high));
            let last = ports_and_family(low_port, high_port, v6_family(src, dst));
            hash([low_high, low_low, high_high, high_low, last, 0])
        }
    }
}

/// Hash for `balance = "ip-pair"`: the symmetric address pair, ignoring protocol and ports.
#[inline]
pub fn ip_pair_hash(key: &FlowKey) -> u64 {
    match (key.src, key.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let ((low, _), (high, _)) = ordered((src.to_bits(), 0), (dst.to_bits(), 0));
            hash([u64::from(low) << 32 | u64::from(high), 4])
        }
        (src, dst) => {
            let ((low, _), (high, _)) = ordered((v6_bits(src), 0), (v6_bits(dst), 0));
            let ([low_high, low_low], [high_high, high_low]) = (split(low), split(high));
            hash([
                low_high,
                low_low,
                high_high,
                high_low,
                v6_family(src, dst),
                0,
            ])
        }
    }
}

/// The two endpoints `(address, port)`, lower first.
#[inline(always)]
fn ordered<A: Ord>(a: (A, u16), b: (A, u16)) -> ((A, u16), (A, u16)) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The address as a 128-bit integer, IPv4 as IPv4-mapped IPv6 (only for mixed keys).
#[inline(always)]
fn v6_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// The family of a key that is not IPv4 on both sides.
#[inline(always)]
fn v6_family(src: IpAddr, dst: IpAddr) -> u64 {
    if src.is_ipv6() && dst.is_ipv6() {
        6
    } else {
        MIXED_FAMILIES
    }
}

/// High and low 64-bit halves.
#[inline(always)]
fn split(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

/// The low and high halves of the 128-bit product, XORed.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// The balance hash of `N` words (`N` even), as specified in the module docs.
#[inline(always)]
fn hash<const N: usize>(words: [u64; N]) -> u64 {
    let mut h = BALANCE_SEED;
    for pair in words.chunks_exact(2) {
        h = fold(pair[0] ^ MIX[0] ^ h, pair[1] ^ MIX[1]);
    }
    fold(h ^ MIX[2], N as u64 ^ MIX[1])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::flow::ip_proto;
    use crate::stage::maglev::Maglev;

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

    /// Structured keys (one subnet, sequential ports) must still look random: every bit of the
    /// hash is set about half the time, and a Maglev table spreads them evenly.
    #[test]
    fn structured_keys_spread_evenly() {
        let names: Vec<String> = (0..8).map(|i| format!("zeek-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let table = Maglev::build(&names, &[true; 8]);
        let count = 160_000u32;
        let mut ones = [0u32; 64];
        let mut per_port = [[0u32; 8]; 3];
        for i in 0..count {
            let [_, _, c, d] = i.to_be_bytes();
            let src = v4(10, 0, c, d);
            let key = FlowKey::with_ports(
                src,
                v4(10, 1, 0, 1),
                ip_proto::TCP,
                1024 + (i % 50) as u16,
                443,
            );
            let hashes = [flow_hash(&key), ip_pair_hash(&key), source_hash(src, 7)];
            for (mode, &hash) in hashes.iter().enumerate() {
                per_port[mode][usize::from(table.lookup(hash).unwrap())] += 1;
            }
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += (hashes[0] >> bit & 1) as u32;
            }
        }
        for (bit, &n) in ones.iter().enumerate() {
            let share = f64::from(n) / f64::from(count);
            assert!(
                (share - 0.5).abs() < 0.01,
                "bit {bit} set in {share} of the hashes"
            );
        }
        let fair = f64::from(count) / 8.0;
        for (mode, ports) in per_port.iter().enumerate() {
            for &n in ports {
                assert!(
                    (f64::from(n) - fair).abs() < 0.03 * fair,
                    "mode {mode}: {ports:?}"
                );
            }
        }
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
        let v4_addr = v4(10, 0, 0, 1);
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let v4_peer = v4(10, 0, 0, 2);
        let mapped_peer = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped());
        assert_ne!(source_hash(v4_addr, 7), source_hash(mapped, 7));
        let keys = [
            FlowKey::with_ports(v4_addr, v4_peer, ip_proto::UDP, 1, 2),
            FlowKey::with_ports(mapped, mapped_peer, ip_proto::UDP, 1, 2),
            FlowKey::with_ports(v4_addr, mapped_peer, ip_proto::UDP, 1, 2),
        ];
        let flows: HashSet<u64> = keys.iter().map(flow_hash).collect();
        let pairs: HashSet<u64> = keys.iter().map(ip_pair_hash).collect();
        assert_eq!((flows.len(), pairs.len()), (3, 3));
        // A mixed key (impossible from a packet) is still symmetric.
        assert_eq!(flow_hash(&keys[2]), flow_hash(&reversed(&keys[2])));
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
        276829015273090102,
        6630551551549379061,
        9150209966519288338,
        13751602680090950584,
        16443519240835307076,
        8457787827062249403,
    ];
}
