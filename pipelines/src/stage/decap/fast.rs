//! The fast path of decapsulation: the one shape nearly every mirrored packet has.
//!
//! # Design
//! AWS Traffic Mirroring, Azure vTAP and most GCP/Tencent mirrors deliver untagged
//! Ethernet / IPv4 without options / UDP to a VXLAN port / VXLAN / an Ethernet frame that is not
//! itself a tunnel. As VPP's decap nodes do, that case is checked with a few loads at fixed
//! offsets of the first 64 bytes instead of the general layer-by-layer walk, which spends most
//! of its instructions on the generality (VLAN stacks, IPv6 extension chains, GENEVE options,
//! nested tunnels, an error reason for every failed check).
//!
//! The fast path only ever *accepts*: it answers `Some` when every check the general path
//! ([`super::decap`]) would make passes, with the same result, and `None` as soon as anything
//! differs from the common shape or any check fails — the general path then decides, and finds
//! the precise outcome or reason. So the fast path cannot change an outcome, only how fast the
//! common one is reached; a property test holds the two equal on arbitrary and mutated packets.
//!
//! The inner frame must be seen not to be a tunnel itself (AWS GWLB nests VXLAN in GENEVE; a
//! customer may run VXLAN): an inner IPv4 (without options) or IPv6 packet whose protocol is
//! not UDP, or is UDP to a port that is neither a VXLAN nor a GENEVE port, is not one whatever
//! its other fields say; anything else (inner VLAN tags, IPv4 options, IPv6 extension headers,
//! non-IP) goes the general way.

use super::{DecapConfig, Tunnel};
use crate::flow::ip_proto;

/// Bytes the fast path reads: outer Ethernet (14), IPv4 (20), UDP (8), VXLAN (8), and the inner
/// Ethernet header (14).
const NEEDED: usize = 64;
/// Offset of the inner frame: the outer headers' length.
pub(super) const INNER_OFFSET: usize = 50;
const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86DD;

#[inline(always)]
fn be16(bytes: &[u8; NEEDED], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// A packet the fast path accepted: the tunnel, and where its inner frame ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Accepted {
    pub(super) tunnel: Tunnel,
    /// One past the inner frame's last byte (the outer UDP datagram's end).
    pub(super) end: usize,
}

/// Recognises an untagged Ethernet / IPv4 (no options) / UDP / VXLAN packet whose inner frame
/// is not a tunnel, from an allowed source, with every length consistent. `first_segment` is
/// the packet's first segment and `pkt_len` the length of the whole packet. `None`: not that
/// shape, or a check failed (the general path decides).
// Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
#[inline(always)]
pub(super) fn vxlan_over_ipv4(
    cfg: &DecapConfig,
    first_segment: &[u8],
    pkt_len: usize,
) -> Option<Accepted> {
    let h: &[u8; NEEDED] = first_segment.first_chunk()?;
    // Outer Ethernet without VLAN tags, IPv4 with a 20-byte header.
    if be16(h, 12) != IPV4 || h[14] != 0x45 {
        return None;
    }
    let total_len = usize::from(be16(h, 16));
    // The IP length covers its header and fits the frame (what follows it is padding).
    if total_len < 20 || total_len > pkt_len.checked_sub(14)? {
        return None;
    }
    let source = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
    // Not a fragment (MF clear, offset 0), UDP, allowed sender.
    if be16(h, 20) & 0x3fff != 0 || h[23] != ip_proto::UDP || !cfg.is_allowed_ipv4_source(source) {
        return None;
    }
    let udp_len = usize::from(be16(h, 38));
    // The UDP length holds the VXLAN header and an Ethernet header and fits the IP payload.
    if udp_len < 8 + 8 + 14 || udp_len > total_len - 20 || !cfg.is_vxlan_port(be16(h, 36)) {
        return None;
    }
    // VXLAN with the I flag (the VNI is valid).
    if h[42] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, h[46], h[47], h[48]]);
    let end = 34 + udp_len;
    let inner = first_segment.get(INNER_OFFSET..end.min(first_segment.len()))?;
    if !surely_not_a_tunnel(cfg, be16(h, 62), inner) {
        return None;
    }
    let source = std::net::IpAddr::V4(source.into());
    Some(Accepted {
        tunnel: Tunnel {
            outer_source: source,
            mirror_source: source,
            vni,
            depth: 1,
        },
        end,
    })
}

/// Whether the inner `frame` (its bytes present in the first segment, at most up to the end of
/// the tunnel), of EtherType `ethertype`, cannot be parsed as a tunnel by the general path.
/// `false` means "maybe": the general path looks.
#[inline(always)]
fn surely_not_a_tunnel(cfg: &DecapConfig, ethertype: u16, frame: &[u8]) -> bool {
    // The offset of the transport header and the protocol, when they lie at a fixed place.
    let (transport, protocol) = match ethertype {
        IPV4 => match frame.get(14..24) {
            // Too short to be an IPv4 header: the general path cannot take it for a tunnel.
            None => return true,
            Some(ip) if ip[0] == 0x45 => (14 + 20, ip[9]),
            // Another version (not a tunnel either) or options: let the general path see.
            Some(_) => return false,
        },
        IPV6 => match frame.get(14..54) {
            None => return true,
            Some(ip) => (14 + 40, ip[6]),
        },
        _ => return false,
    };
    match protocol {
        ip_proto::TCP | ip_proto::ICMP | ip_proto::ICMPV6 => true,
        ip_proto::UDP => match frame.get(transport + 2..transport + 4) {
            Some(&[high, low]) => !cfg.is_tunnel_port(u16::from_be_bytes([high, low])),
            // The UDP header is cut: not a tunnel.
            _ => true,
        },
        // IPv6 extension headers and other protocols: the general path walks them.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{DecapConfig, Decapped, decap, decap_general};
    use crate::buf::{PacketBuf, VecBuf};
    use crate::testing::{
        aws_vxlan, ethernet, inner_tcp4, inner_udp6, ipv4, udp, v4, v6, vxlan_header,
    };

    fn cfg() -> DecapConfig {
        let nets = ["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        DecapConfig::new(&[4789, 4790], &[6081], Some(&nets), false)
    }

    /// Both paths on `frame`: same outcome, and the same packet left behind.
    fn same_as_general(
        cfg: &DecapConfig,
        frame: &[u8],
        extra_len: usize,
    ) -> Result<(), TestCaseError> {
        // A second segment makes the packet longer than its first segment.
        let segments = |bytes: &[u8]| {
            if extra_len == 0 {
                VecBuf::new(bytes)
            } else {
                VecBuf::from_segments(vec![bytes.to_vec(), vec![0xee; extra_len]])
            }
        };
        let (mut fast, mut general) = (segments(frame), segments(frame));
        let fast_result = decap(cfg, &mut fast);
        let general_result = decap_general(cfg, &mut general);
        prop_assert_eq!(fast_result, general_result);
        prop_assert_eq!(fast.to_vec(), general.to_vec());
        Ok(())
    }

    fn samples() -> Vec<Vec<u8>> {
        let tcp = inner_tcp4(
            v4("10.0.1.10"),
            v4("192.0.2.7"),
            40000,
            443,
            1,
            b"hello, world",
        );
        let dns6 = inner_udp6(v6("fd00::1"), v6("fd00::2"), 5353, 53, b"query");
        let inner_vxlan = {
            let mut t = vxlan_header(7).to_vec();
            t.extend_from_slice(&tcp);
            ethernet(
                0x0800,
                &ipv4(v4("10.9.9.9"), v4("10.9.9.8"), 17, &udp(1, 4789, &t)),
            )
        };
        let icmp = ethernet(
            0x0800,
            &ipv4(
                v4("10.0.1.10"),
                v4("10.0.1.11"),
                1,
                &[8, 0, 0, 0, 0, 1, 0, 1],
            ),
        );
        vec![
            aws_vxlan(v4("10.0.1.10"), 101, &tcp),
            aws_vxlan(v4("10.0.1.10"), 102, &dns6),
            aws_vxlan(v4("10.0.1.10"), 103, &inner_vxlan),
            aws_vxlan(v4("10.0.1.10"), 104, &icmp),
            aws_vxlan(v4("192.0.2.1"), 105, &tcp), // denied
        ]
    }

    #[test]
    fn the_common_shape_takes_the_fast_path() {
        let frame = &samples()[0];
        let (len, data) = (frame.len(), frame.as_slice());
        let accepted = super::vxlan_over_ipv4(&cfg(), data, len).expect("fast path");
        assert_eq!((accepted.tunnel.vni, accepted.end), (101, len));
        let mut pkt = VecBuf::new(frame);
        assert!(matches!(decap(&cfg(), &mut pkt), Ok(Decapped::Tunnelled(t)) if t.vni == 101));
        // A nested tunnel, a denied source: the general path decides.
        assert!(super::vxlan_over_ipv4(&cfg(), &samples()[2], samples()[2].len()).is_none());
        assert!(super::vxlan_over_ipv4(&cfg(), &samples()[4], samples()[4].len()).is_none());
    }

    #[test]
    fn samples_agree_with_the_general_path() {
        for frame in samples() {
            same_as_general(&cfg(), &frame, 0).unwrap();
            same_as_general(&cfg(), &frame, 100).unwrap();
        }
    }

    /// Random bytes, and the values that flip the fast path's decisions (IPv4 version/IHL,
    /// fragment bits, protocols, EtherType halves, the VXLAN I flag, UDP ports 4789 and 6081).
    fn byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(vec![
                0x00, 0x01, 0x06, 0x08, 0x11, 0x12, 0x15, 0x17, 0x1e, 0x20, 0x3a, 0x40, 0x45, 0x46,
                0x81, 0x86, 0xb5, 0xc1, 0xdd, 0xff
            ]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Bytes of the first 100 changed, maybe a cut, maybe a trailing segment: the fast path agrees
        /// with the general one.
        #[test]
        fn mutated_packets_agree_with_the_general_path(
            sample in 0usize..5,
            edits in proptest::collection::vec((0usize..100, byte()), 0..4),
            cut in prop_oneof![Just(usize::MAX), 1usize..140],
            extra in prop_oneof![Just(0usize), 1usize..64],
        ) {
            let mut frame = samples()[sample].clone();
            for (at, byte) in edits {
                if let Some(b) = frame.get_mut(at) {
                    *b = byte;
                }
            }
            frame.truncate(cut);
            same_as_general(&cfg(), &frame, extra)?;
        }

        #[test]
        fn arbitrary_bytes_agree_with_the_general_path(frame in proptest::collection::vec(any::<u8>(), 0..120)) {
            same_as_general(&cfg(), &frame, 0)?;
        }
    }

    #[test]
    fn a_packet_whose_ip_length_exceeds_its_first_segment_uses_the_whole_packet() {
        let frame = &samples()[0];
        let pkt = VecBuf::from_segments(vec![frame[..70].to_vec(), frame[70..].to_vec()]);
        assert!(super::vxlan_over_ipv4(&cfg(), pkt.data(), pkt.pkt_len()).is_some());
        same_as_general(&cfg(), frame, 0).unwrap();
    }
}
