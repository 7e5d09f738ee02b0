//! Flow rules (`rte_flow`): RSS on the inner headers of VXLAN and GENEVE packets, with a
//! symmetric key.
//!
//! # Design
//! A port's own RSS hashes the outer headers. Mirrored traffic makes that the wrong key: when
//! both ends of a connection are mirrored, the two copies of a packet come from two outer
//! sources and hash to two RX queues, so two workers race to de-duplicate them and a tool can
//! receive a flow's packets out of order. [`Port::hash_inner_headers`] installs one flow rule per
//! tunnel (UDP port) and outer IP version, `ETH / IPV4|IPV6 / UDP dst=port / VXLAN|GENEVE`, whose
//! action is RSS over every RX queue at `level = 2` (the first inner header, in `rte_flow`'s
//! numbering) on the IP addresses and TCP/UDP ports, with Toeplitz and
//! [`symmetric_rss_key`]. Both copies of a packet have the same inner headers, and the key makes
//! `(a → b)` and `(b → a)` hash alike: one connection, one queue, one worker. Packets no rule
//! matches keep the port's outer RSS.
//!
//! Every rule is validated (`rte_flow_validate`) before any is created, so a device that cannot
//! hash inner headers (most virtual devices, NICs without tunnel parsing) is refused with its
//! driver's own reason and left without half the rules; a creation that still fails removes the
//! ones already made (`rte_flow_flush`).
//!
//! # Limitations
//! - Only the first inner header is hashed. For a tunnel inside a tunnel (AWS GWLB's GENEVE
//!   carrying VXLAN) that is the inner tunnel's own outer header, which is per mirror source, not
//!   per connection.
//! - The patterns have no VLAN item: mirrored traffic that reaches the port VLAN-tagged matches
//!   no rule and keeps the outer RSS.
//! - Drivers differ in what they accept: `mlx5` takes such rules; DPDK 22.11's `ice` refuses an
//!   RSS level other than 0 and ENA has no flow rules; a VXLAN port other than 4789 may need the
//!   NIC told about it first. Whatever a driver refuses is reported as it words it.

use std::ffi::{CStr, c_void};
use std::ptr;

use crate::error::DpdkError;
use crate::port::{Port, control};
use crate::sys;

/// A UDP tunnel whose inner headers the NIC should hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN (RFC 7348) on this UDP destination port.
    Vxlan(u16),
    /// GENEVE (RFC 8926) on this UDP destination port.
    Geneve(u16),
}

/// Key length when the device does not say (the 40 bytes of the Microsoft RSS specification).
const DEFAULT_KEY_LEN: usize = 40;

/// A Toeplitz key that hashes a tuple and its reverse alike: the 16 bits `0x6d5a` repeated.
///
/// Toeplitz adds, for every set bit `i` of the input, the 32 key bits starting at bit `i`. With a
/// key of period 16, every field that starts at a multiple of 16 bits sees the same key windows
/// wherever it sits among such positions, so swapping the source and destination addresses
/// (32 or 128 bits apart) and ports (16 bits apart) leaves the hash unchanged (S. Woo, K. Park,
/// *Scalable TCP Session Monitoring with Symmetric Receive-side Scaling*, 2012).
pub fn symmetric_rss_key(len: usize) -> Vec<u8> {
    [0x6d, 0x5a].into_iter().cycle().take(len).collect()
}

impl Port {
    /// Spreads the packets of `tunnels` over RX queues `0..queues` by a symmetric hash of their
    /// first inner IP addresses and ports (see the module docs). Call after [`Port::start`].
    /// Returns the number of rules installed; on error none is left.
    pub fn hash_inner_headers(self, queues: u16, tunnels: &[Tunnel]) -> Result<usize, DpdkError> {
        if queues == 0 || tunnels.is_empty() {
            return Ok(0);
        }
        let _control = control();
        let key_len = match usize::from(self.raw_info()?.hash_key_size) {
            0 => DEFAULT_KEY_LEN,
            len => len,
        };
        let key = symmetric_rss_key(key_len);
        let queue_ids: Vec<u16> = (0..queues).collect();
        let rss = sys::rte_flow_action_rss {
            func: sys::rte_eth_hash_function::RTE_ETH_HASH_FUNCTION_TOEPLITZ,
            level: 2,
            types: sys::SHIM_ETH_RSS_IP | sys::SHIM_ETH_RSS_UDP | sys::SHIM_ETH_RSS_TCP,
            key_len: key_len as u32,
            queue_num: u32::from(queues),
            key: key.as_ptr(),
            queue: queue_ids.as_ptr(),
        };
        let actions = [
            sys::rte_flow_action {
                type_: sys::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_RSS,
                conf: ptr::from_ref(&rss).cast::<c_void>(),
            },
            sys::rte_flow_action {
                type_: sys::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_END,
                conf: ptr::null(),
            },
        ];
        let mut attr = sys::rte_flow_attr::default();
        attr.set_ingress(1);

        let rules: Vec<Rule> = tunnels
            .iter()
            .flat_map(|&tunnel| [Rule::new(tunnel, false), Rule::new(tunnel, true)])
            .collect();
        for rule in &rules {
            let items = rule.items();
            let mut error = sys::rte_flow_error::default();
            // SAFETY: attributes, END-terminated items and actions, specs, masks, key and queues
            // all live across the call, which only reads them; DPDK fills `error`.
            let ret = unsafe {
                sys::rte_flow_validate(
                    self.id(),
                    &attr,
                    items.as_ptr(),
                    actions.as_ptr(),
                    &mut error,
                )
            };
            if ret != 0 {
                return Err(flow_error(self, "rte_flow_validate", rule, ret, &error));
            }
        }
        for rule in &rules {
            let items = rule.items();
            let mut error = sys::rte_flow_error::default();
            // SAFETY: as for `rte_flow_validate` above; the driver copies what it keeps, and the
            // returned handle is owned by the port (released by `rte_flow_flush` or on close).
            let flow = unsafe {
                sys::rte_flow_create(
                    self.id(),
                    &attr,
                    items.as_ptr(),
                    actions.as_ptr(),
                    &mut error,
                )
            };
            if flow.is_null() {
                // SAFETY: reads the thread's rte_errno, which rte_flow_create sets on failure.
                let errno = unsafe { sys::shim_rte_errno() };
                let failure = flow_error(self, "rte_flow_create", rule, -errno, &error);
                let mut ignored = sys::rte_flow_error::default();
                // SAFETY: removes this port's rules; `ignored` is a valid place for DPDK to fill.
                unsafe { sys::rte_flow_flush(self.id(), &mut ignored) };
                return Err(failure);
            }
        }
        Ok(rules.len())
    }
}

/// One rule's pattern: the outer IP version, the tunnel and its UDP port (spec and mask, in
/// network order, owned here so the item pointers stay valid).
struct Rule {
    tunnel: Tunnel,
    ipv6: bool,
    udp_spec: sys::rte_flow_item_udp,
    udp_mask: sys::rte_flow_item_udp,
}

impl Rule {
    fn new(tunnel: Tunnel, ipv6: bool) -> Rule {
        let port = match tunnel {
            Tunnel::Vxlan(port) | Tunnel::Geneve(port) => port,
        };
        let mut udp_spec = sys::rte_flow_item_udp::default();
        udp_spec.hdr.dst_port = port.to_be();
        let mut udp_mask = sys::rte_flow_item_udp::default();
        udp_mask.hdr.dst_port = u16::MAX;
        Rule {
            tunnel,
            ipv6,
            udp_spec,
            udp_mask,
        }
    }

    /// `ETH / IPV4|IPV6 / UDP dst=port / VXLAN|GENEVE / END`; the items without a spec match any
    /// header of their type.
    fn items(&self) -> [sys::rte_flow_item; 5] {
        use sys::rte_flow_item_type as item;
        let any = |type_| sys::rte_flow_item {
            type_,
            spec: ptr::null(),
            last: ptr::null(),
            mask: ptr::null(),
        };
        let ip = if self.ipv6 {
            item::RTE_FLOW_ITEM_TYPE_IPV6
        } else {
            item::RTE_FLOW_ITEM_TYPE_IPV4
        };
        let tunnel = match self.tunnel {
            Tunnel::Vxlan(_) => item::RTE_FLOW_ITEM_TYPE_VXLAN,
            Tunnel::Geneve(_) => item::RTE_FLOW_ITEM_TYPE_GENEVE,
        };
        [
            any(item::RTE_FLOW_ITEM_TYPE_ETH),
            any(ip),
            sys::rte_flow_item {
                type_: item::RTE_FLOW_ITEM_TYPE_UDP,
                spec: ptr::from_ref(&self.udp_spec).cast::<c_void>(),
                last: ptr::null(),
                mask: ptr::from_ref(&self.udp_mask).cast::<c_void>(),
            },
            any(tunnel),
            any(item::RTE_FLOW_ITEM_TYPE_END),
        ]
    }

    fn describe(&self) -> String {
        let (name, port) = match self.tunnel {
            Tunnel::Vxlan(port) => ("VXLAN", port),
            Tunnel::Geneve(port) => ("GENEVE", port),
        };
        let ip = if self.ipv6 { "IPv6" } else { "IPv4" };
        format!("{name} on UDP {port} over {ip}")
    }
}

/// The driver's reason a rule was refused, with the call, the rule and the errno.
fn flow_error(
    port: Port,
    call: &'static str,
    rule: &Rule,
    ret: i32,
    error: &sys::rte_flow_error,
) -> DpdkError {
    let errno = ret.unsigned_abs() as i32;
    let reason = if error.message.is_null() {
        crate::error::strerror(errno)
    } else {
        // SAFETY: a non-NULL message is the driver's NUL-terminated static text.
        unsafe { CStr::from_ptr(error.message) }
            .to_string_lossy()
            .into_owned()
    };
    DpdkError::Flow {
        port: port.id(),
        call,
        rule: rule.describe(),
        errno,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    /// Toeplitz as the NICs compute it: for each set bit of the input, XOR in the 32 key bits
    /// that start at that bit.
    fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
        let bit = |i: usize| (key[i / 8] >> (7 - i % 8)) & 1 == 1;
        let mut hash = 0u32;
        for (byte_index, byte) in input.iter().enumerate() {
            for b in 0..8 {
                if byte & (0x80 >> b) != 0 {
                    let start = byte_index * 8 + b;
                    let window = (0..32).fold(0u32, |w, k| (w << 1) | u32::from(bit(start + k)));
                    hash ^= window;
                }
            }
        }
        hash
    }

    /// The RSS input of a 4-tuple: source and destination addresses, then ports.
    fn tuple(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        [src, dst, &sport.to_be_bytes(), &dport.to_be_bytes()].concat()
    }

    /// Random addresses of `len` bytes and ports: source, destination, source port, destination
    /// port.
    fn random_tuple(len: usize) -> impl Strategy<Value = (Vec<u8>, Vec<u8>, u16, u16)> {
        (
            vec(any::<u8>(), len),
            vec(any::<u8>(), len),
            any::<u16>(),
            any::<u16>(),
        )
    }

    /// Counts the tuples (IPv4 and IPv6, random) whose hash differs from their reverse's.
    fn asymmetric_tuples(key: &[u8], tuples: usize) -> usize {
        // Seeded the same on every run: the same tuples each time.
        let mut runner = TestRunner::deterministic();
        (0..tuples)
            .filter(|i| {
                let len = if i % 2 == 0 { 4 } else { 16 };
                let (src, dst, sport, dport) = random_tuple(len)
                    .new_tree(&mut runner)
                    .expect("a tuple")
                    .current();
                toeplitz(key, &tuple(&src, &dst, sport, dport))
                    != toeplitz(key, &tuple(&dst, &src, dport, sport))
            })
            .count()
    }

    #[test]
    fn the_symmetric_key_hashes_both_directions_alike() {
        for len in [40, 52] {
            let key = symmetric_rss_key(len);
            assert_eq!(key.len(), len);
            assert_eq!(asymmetric_tuples(&key, 2_000), 0, "key of {len} bytes");
        }
    }

    #[test]
    fn the_usual_key_does_not_which_is_why_the_rules_carry_their_own() {
        // The Microsoft RSS specification's key, DPDK drivers' usual default.
        let default_key: [u8; 40] = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        // The RSS specification's own verification vector: 66.9.149.187:2794 → 161.142.100.80:1766.
        let input = tuple(&[66, 9, 149, 187], &[161, 142, 100, 80], 2794, 1766);
        assert_eq!(toeplitz(&default_key, &input), 0x51cc_c178);
        assert!(asymmetric_tuples(&default_key, 2_000) > 1_900);
    }

    #[test]
    fn one_rule_per_tunnel_and_outer_ip_version_each_matching_its_udp_port() {
        let rule = Rule::new(Tunnel::Geneve(6081), true);
        let items = rule.items();
        assert_eq!(
            items.map(|i| i.type_),
            [
                sys::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_ETH,
                sys::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_IPV6,
                sys::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_UDP,
                sys::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_GENEVE,
                sys::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_END,
            ]
        );
        // Copied out: the UDP header is a packed struct.
        let (spec, mask) = (rule.udp_spec.hdr.dst_port, rule.udp_mask.hdr.dst_port);
        assert_eq!(spec, 6081u16.to_be());
        assert_eq!(mask, 0xffff);
        assert_eq!(rule.describe(), "GENEVE on UDP 6081 over IPv6");
        assert_eq!(
            Rule::new(Tunnel::Vxlan(4789), false).describe(),
            "VXLAN on UDP 4789 over IPv4"
        );
    }
}
