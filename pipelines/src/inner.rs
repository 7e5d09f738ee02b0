//! The decapsulated frame, parsed once for the stages after decap (session, filter, dedup,
//! balance).
//!
//! # Design
//! One pass over the first segment with the `wire` views: Ethernet, up to two VLAN tags, IPv4 or
//! IPv6 (extension headers walked), then the transport ports. It never fails: whatever cannot be
//! read is reported as absent (`flow: None`, `has_ports: false`), because the frame is the
//! customer's mirrored packet and is delivered whatever its shape — only what the filter and the
//! balancer can key on depends on it. No allocation, no panic on any input.
//!
//! Cloud mirroring may cut packets to a configured length (AWS "packet length"): the IP header
//! then claims more bytes than the packet holds. That is reported (`truncated_by_source`) and is
//! not an error: the addresses and usually the ports are still there.
//!
//! The common frame (untagged Ethernet / IPv4 without options, its first 38 bytes present) is
//! read by a fast path at fixed offsets, as the decap stage's fast path does
//! (`stage/decap/fast.rs`): same result as the walk, held equal to it by a property test; every
//! other frame takes the walk.
//!
//! # Limitations
//! More than two stacked inner VLAN tags make the frame non-IP (no flow). The IPv6 extension
//! headers walked are those of [`crate::wire::ipv6`]; the ports of a packet whose chain is cut or
//! too long are not read (its protocol is then the header the walk stopped at).

use std::net::IpAddr;

use crate::flow::{FlowKey, ip_proto};
use crate::wire::{EtherType, ethernet, ipv4, ipv6, vlan};

/// What the stages after decap need to know about the inner frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inner {
    /// Offset of the inner IP header in the frame (after Ethernet and VLAN tags); for a non-IP
    /// frame, where its Ethernet payload starts. Never beyond the first segment's length, so
    /// `&frame[l3_offset as usize..]` cannot panic.
    pub l3_offset: u16,
    /// Inner VLAN ids looked through, outermost first; `vlan_count` of them are valid.
    pub vlan_ids: [u16; 2],
    pub vlan_count: u8,
    /// `None` for non-IP frames (ARP, LLDP, …), frames with more than two VLAN tags, and IP
    /// headers too short (or of the wrong version) to read addresses from.
    pub flow: Option<FlowKey>,
    /// The inner IP header claims more bytes than the packet has: the mirroring source cut the
    /// packet (AWS packet-length truncation), or cut it inside the IP header itself.
    pub truncated_by_source: bool,
}

/// Parses the inner frame. `frame` is the first segment of the decapsulated packet (starting at
/// its Ethernet header) and `pkt_len` the length of the whole packet, all segments.
// The fast path inlined into the pipeline's passes (see "Inlining" in `crate::pipeline`), the
// walk called.
#[inline(always)]
pub fn parse_inner(frame: &[u8], pkt_len: usize) -> Inner {
    match untagged_ipv4(frame, pkt_len) {
        Some(inner) => inner,
        None => parse_general(frame, pkt_len),
    }
}

/// Bytes the fast path reads: Ethernet (14), IPv4 without options (20), the transport ports (4).
const FAST_NEEDED: usize = 38;

/// The fast path: an untagged Ethernet / IPv4 frame without IP options whose first
/// [`FAST_NEEDED`] bytes are in `frame`, read at fixed offsets; `None` for any other frame (the
/// walk, [`parse_general`], reads it). Its answer is the walk's: the IPv4 header is whole, so
/// the walk would read the addresses, and the ports when the protocol has them, the datagram is
/// not a later fragment and its total length covers them (the walk's payload ends at the total
/// length, or at the header when that is shorter).
#[inline(always)]
fn untagged_ipv4(frame: &[u8], pkt_len: usize) -> Option<Inner> {
    let h: &[u8; FAST_NEEDED] = frame.first_chunk()?;
    if u16::from_be_bytes([h[12], h[13]]) != 0x0800 || h[14] != 0x45 {
        return None;
    }
    // The 20 bytes of the header (IHL 5), as the walk's view reads them.
    let ip = ipv4::Packet::new_unchecked(&h[14..34]);
    let (src, dst, protocol) = (
        IpAddr::V4(ip.src_addr()),
        IpAddr::V4(ip.dst_addr()),
        ip.protocol(),
    );
    let total_len = ip.total_len();
    let ports_present = total_len >= 20 + 4
        && ip.fragment_offset() == 0
        && matches!(protocol, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP);
    let mut flow = if ports_present {
        let src_port = u16::from_be_bytes([h[34], h[35]]);
        let dst_port = u16::from_be_bytes([h[36], h[37]]);
        FlowKey::with_ports(src, dst, protocol, src_port, dst_port)
    } else {
        FlowKey::without_ports(src, dst, protocol)
    };
    flow.fragment = ip.is_fragment();
    Some(Inner {
        l3_offset: ethernet::HEADER_LEN as u16,
        vlan_ids: [0; 2],
        vlan_count: 0,
        flow: Some(flow),
        truncated_by_source: usize::from(total_len) > pkt_len.saturating_sub(ethernet::HEADER_LEN),
    })
}

/// [`parse_inner`] without its fast path: the layers walked with the wire views.
#[inline(never)]
fn parse_general(frame: &[u8], pkt_len: usize) -> Inner {
    let mut inner = Inner {
        l3_offset: 0,
        vlan_ids: [0; 2],
        vlan_count: 0,
        flow: None,
        truncated_by_source: false,
    };
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        inner.l3_offset = offset_u16(frame.len());
        return inner;
    };
    let (tags, complete) = match vlan::read_tags(eth.ethertype(), eth.payload()) {
        Ok(tags) => (tags, true),
        Err(err) => (err.partial, false),
    };
    inner.vlan_ids = tags.ids;
    inner.vlan_count = tags.count;
    let l3_offset = ethernet::HEADER_LEN + tags.len;
    inner.l3_offset = offset_u16(l3_offset);
    if !complete {
        return inner;
    }

    let l3 = frame.get(l3_offset..).unwrap_or_default();
    // Bytes the packet has from the IP header on, in all segments.
    let available = pkt_len.saturating_sub(l3_offset);
    // Everything the packet holds from here is in `l3`: a header cut short was cut by the source
    // (not by a segment boundary).
    let cut_here = l3.len() >= available;
    match tags.ethertype {
        EtherType::Ipv4 => match ipv4::Packet::new_checked(l3) {
            Ok(ip) => {
                inner.truncated_by_source = usize::from(ip.total_len()) > available;
                inner.flow = Some(ipv4_flow(&ip));
            }
            Err(crate::wire::Error::Truncated) => inner.truncated_by_source = cut_here,
            Err(_) => {}
        },
        EtherType::Ipv6 => match ipv6::Packet::new_checked(l3) {
            Ok(ip) => {
                inner.truncated_by_source =
                    ipv6::HEADER_LEN + usize::from(ip.payload_len()) > available;
                inner.flow = Some(ipv6_flow(&ip));
            }
            Err(crate::wire::Error::Truncated) => inner.truncated_by_source = cut_here,
            Err(_) => {}
        },
        _ => {}
    }
    inner
}

/// `l3_offset` values are at most Ethernet + two tags (22 bytes) or the frame's length when it
/// is shorter than Ethernet (13): they always fit.
fn offset_u16(offset: usize) -> u16 {
    u16::try_from(offset).unwrap_or(u16::MAX)
}

fn ipv4_flow(ip: &ipv4::Packet<&[u8]>) -> FlowKey {
    let src = IpAddr::V4(ip.src_addr());
    let dst = IpAddr::V4(ip.dst_addr());
    let protocol = ip.protocol();
    // Only the first fragment (offset 0) carries the transport header.
    let ports = if ip.fragment_offset() == 0 {
        transport_ports(protocol, ip.payload())
    } else {
        None
    };
    let mut key = match ports {
        Some((sp, dp)) => FlowKey::with_ports(src, dst, protocol, sp, dp),
        None => FlowKey::without_ports(src, dst, protocol),
    };
    key.fragment = ip.is_fragment();
    key
}

fn ipv6_flow(ip: &ipv6::Packet<&[u8]>) -> FlowKey {
    let src = IpAddr::V6(ip.src_addr());
    let dst = IpAddr::V6(ip.dst_addr());
    match ipv6::walk_extension_headers(ip.next_header(), ip.payload()) {
        Ok(chain) => {
            let fragment = chain.fragment.filter(|f| f.is_fragment());
            let first_piece = fragment.is_none_or(|f| f.offset == 0);
            let upper = ip.payload().get(chain.len..).unwrap_or_default();
            let ports = if first_piece {
                transport_ports(chain.protocol, upper)
            } else {
                None
            };
            let mut key = match ports {
                Some((sp, dp)) => FlowKey::with_ports(src, dst, chain.protocol, sp, dp),
                None => FlowKey::without_ports(src, dst, chain.protocol),
            };
            key.fragment = fragment.is_some();
            key
        }
        Err(err) => {
            let mut key = FlowKey::without_ports(src, dst, err.partial.protocol);
            key.fragment = err.partial.fragment.is_some_and(|f| f.is_fragment());
            key
        }
    }
}

/// The source and destination ports of a TCP, UDP or SCTP header, when its first four bytes are
/// present. All three start with them (RFC 9293 §3.1, RFC 768, RFC 9260 §3.1), so a mirrored
/// packet cut inside its transport header still yields its ports.
fn transport_ports(protocol: u8, l4: &[u8]) -> Option<(u16, u16)> {
    if !matches!(protocol, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP) {
        return None;
    }
    match l4 {
        [s0, s1, d0, d1, ..] => Some((
            u16::from_be_bytes([*s0, *s1]),
            u16::from_be_bytes([*d0, *d1]),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::{ExtHeader, Fragment, next_header};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1, 1000)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn ipv4_tcp() {
        let frame = tcp_v4(b"hello");
        let inner = parse_inner(&frame, frame.len());
        assert_eq!(inner.l3_offset, 14);
        assert_eq!(inner.vlan_count, 0);
        assert!(!inner.truncated_by_source);
        assert_eq!(
            inner.flow,
            Some(FlowKey::with_ports(
                v4([10, 0, 0, 1]),
                v4([10, 0, 0, 2]),
                ip_proto::TCP,
                1234,
                80
            ))
        );
    }

    #[test]
    fn qinq_ipv6_udp() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(
                etherparse::VlanId::try_new(100).unwrap(),
                etherparse::VlanId::try_new(200).unwrap(),
            )
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .udp(5353, 53)
            .write(&mut frame, b"query")
            .unwrap();
        let inner = parse_inner(&frame, frame.len());
        assert_eq!(inner.l3_offset, 22);
        assert_eq!((inner.vlan_ids, inner.vlan_count), ([100, 200], 2));
        let flow = inner.flow.unwrap();
        assert_eq!(flow.src, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (flow.protocol, flow.src_port, flow.dst_port, flow.has_ports),
            (ip_proto::UDP, 5353, 53, true)
        );
    }

    #[test]
    fn three_vlan_tags_are_not_ip() {
        let frame = tcp_v4(b"x");
        let mut tagged = frame[..12].to_vec();
        for id in [1u8, 2, 3] {
            tagged.extend_from_slice(&[0x81, 0x00, 0x00, id]);
        }
        tagged.extend_from_slice(&frame[12..]);
        let inner = parse_inner(&tagged, tagged.len());
        assert_eq!(inner.flow, None);
        assert_eq!((inner.vlan_ids, inner.vlan_count), ([1, 2], 2));
        // Two tags of the same frame are looked through.
        let two = [&tagged[..20], &tagged[24..]].concat();
        assert!(parse_inner(&two, two.len()).flow.is_some());
    }

    #[test]
    fn arp_and_short_frames_have_no_flow() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&MAC_A);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        let inner = parse_inner(&arp, arp.len());
        assert_eq!((inner.flow, inner.l3_offset), (None, 14));
        let short = parse_inner(&arp[..9], 9);
        assert_eq!((short.flow, short.l3_offset), (None, 9));
    }

    #[test]
    fn truncated_by_source() {
        let frame = tcp_v4(&[7u8; 100]);
        // AWS cut the mirrored packet to 64 bytes: the IP total length still says 154.
        let cut = &frame[..64];
        let inner = parse_inner(cut, cut.len());
        assert!(inner.truncated_by_source);
        assert_eq!(inner.flow.unwrap().dst_port, 80);
        // Cut inside the TCP header after the ports: the ports survive.
        let cut = &frame[..14 + 20 + 4];
        assert_eq!(parse_inner(cut, cut.len()).flow.unwrap().src_port, 1234);
        // Cut inside the ports: the addresses survive, the ports do not.
        let cut = &frame[..14 + 20 + 3];
        let flow = parse_inner(cut, cut.len()).flow.unwrap();
        assert!(!flow.has_ports && flow.src_port == 0);
        // Cut inside the IP header: no flow, but the cut is reported.
        let cut = &frame[..14 + 12];
        let inner = parse_inner(cut, cut.len());
        assert!(inner.truncated_by_source && inner.flow.is_none());
    }

    #[test]
    fn multi_segment_is_not_truncation() {
        let frame = tcp_v4(&[7u8; 100]);
        // Only the first 64 bytes are in the first segment, but the packet has them all.
        let inner = parse_inner(&frame[..64], frame.len());
        assert!(!inner.truncated_by_source);
        // An IP header split by the segment boundary is neither a flow nor a source cut.
        let inner = parse_inner(&frame[..20], frame.len());
        assert!(!inner.truncated_by_source && inner.flow.is_none());
    }

    #[test]
    fn ipv4_fragments() {
        let mut frame = tcp_v4(b"0123456789");
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
        ip.set_fragmentation(false, true, 0);
        let first = parse_inner(&frame, frame.len()).flow.unwrap();
        assert!(first.fragment && first.has_ports && first.dst_port == 80);
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
        ip.set_fragmentation(false, false, 1480);
        let later = parse_inner(&frame, frame.len()).flow.unwrap();
        assert!(later.fragment && !later.has_ports);
        assert_eq!(later.protocol, ip_proto::TCP);
    }

    /// Ethernet + IPv6 with the given extension headers (kind, length) before `upper` and `l4`.
    fn ipv6_with_ext(
        exts: &[(u8, usize)],
        upper: u8,
        l4: &[u8],
        fragment: Option<Fragment>,
    ) -> Vec<u8> {
        let chain_len: usize = exts.iter().map(|e| e.1).sum();
        let mut frame = vec![0u8; 14 + 40 + chain_len + l4.len()];
        let mut eth = ethernet::Frame::new_unchecked(&mut frame[..]);
        eth.set_ethertype(EtherType::Ipv6);
        let mut ip = ipv6::Packet::new_unchecked(&mut frame[14..]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len((chain_len + l4.len()) as u16);
        ip.set_next_header(exts.first().map_or(upper, |e| e.0));
        ip.set_src_addr(Ipv6Addr::LOCALHOST);
        ip.set_dst_addr("fe80::1".parse().unwrap());
        let mut at = 54;
        for (i, &(kind, len)) in exts.iter().enumerate() {
            let mut h = ExtHeader::new_unchecked(&mut frame[at..at + len], kind);
            h.set_next_header(exts.get(i + 1).map_or(upper, |e| e.0));
            h.set_header_len(len);
            if let (next_header::FRAGMENT, Some(f)) = (kind, fragment) {
                h.set_fragment(f);
            }
            at += len;
        }
        frame[at..].copy_from_slice(l4);
        frame
    }

    #[test]
    fn ipv6_upper_layer_after_extension_headers() {
        let exts = [
            (next_header::HOP_BY_HOP, 8),
            (next_header::DESTINATION_OPTIONS, 16),
            (next_header::AUTHENTICATION, 12),
        ];
        let frame = ipv6_with_ext(
            &exts,
            ip_proto::SCTP,
            &[0x0b, 0xb8, 0x0f, 0xa0, 0, 0, 0, 0],
            None,
        );
        let flow = parse_inner(&frame, frame.len()).flow.unwrap();
        assert_eq!(
            (flow.protocol, flow.src_port, flow.dst_port, flow.fragment),
            (ip_proto::SCTP, 3000, 4000, false)
        );
    }

    #[test]
    fn ipv6_fragments() {
        let exts = [(next_header::FRAGMENT, 8)];
        let first = Fragment {
            offset: 0,
            more: true,
            ident: 7,
        };
        let frame = ipv6_with_ext(&exts, ip_proto::UDP, &[0, 1, 0, 2, 0, 8, 0, 0], Some(first));
        let flow = parse_inner(&frame, frame.len()).flow.unwrap();
        assert!(flow.fragment && flow.has_ports && flow.dst_port == 2);

        let later = Fragment {
            offset: 1232,
            more: false,
            ident: 7,
        };
        let frame = ipv6_with_ext(&exts, ip_proto::UDP, &[0, 1, 0, 2, 0, 8, 0, 0], Some(later));
        let flow = parse_inner(&frame, frame.len()).flow.unwrap();
        assert!(flow.fragment && !flow.has_ports && flow.protocol == ip_proto::UDP);

        let atomic = Fragment {
            offset: 0,
            more: false,
            ident: 7,
        };
        let frame = ipv6_with_ext(
            &exts,
            ip_proto::UDP,
            &[0, 1, 0, 2, 0, 8, 0, 0],
            Some(atomic),
        );
        let flow = parse_inner(&frame, frame.len()).flow.unwrap();
        assert!(!flow.fragment && flow.has_ports);
    }

    #[test]
    fn ipv6_chain_cut_by_the_source() {
        let exts = [(next_header::HOP_BY_HOP, 8), (next_header::ROUTING, 24)];
        let frame = ipv6_with_ext(&exts, ip_proto::TCP, &[0; 20], None);
        let cut = &frame[..14 + 40 + 8 + 10];
        let inner = parse_inner(cut, cut.len());
        assert!(inner.truncated_by_source);
        let flow = inner.flow.unwrap();
        assert_eq!(
            (flow.protocol, flow.has_ports),
            (next_header::ROUTING, false)
        );
    }

    #[test]
    fn icmp_has_no_ports() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut frame, b"ping")
            .unwrap();
        let flow = parse_inner(&frame, frame.len()).flow.unwrap();
        assert_eq!((flow.protocol, flow.has_ports), (ip_proto::ICMP, false));
    }

    #[test]
    fn wrong_ip_version_is_not_a_flow() {
        let mut frame = tcp_v4(b"x");
        frame[14] = 0x65;
        let inner = parse_inner(&frame, frame.len());
        assert!(inner.flow.is_none() && !inner.truncated_by_source);
    }

    /// The common frames the fast path reads: TCP, UDP, ICMP, a first and a later fragment.
    fn common_frames() -> Vec<Vec<u8>> {
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 3], [192, 0, 2, 9], 64)
            .udp(5353, 53)
            .write(&mut udp, b"query")
            .unwrap();
        let mut icmp = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, b"ping")
            .unwrap();
        let mut fragments = Vec::new();
        for (more, offset) in [(true, 0), (false, 1480)] {
            let mut frame = tcp_v4(b"0123456789");
            ipv4::Packet::new_unchecked(&mut frame[14..]).set_fragmentation(false, more, offset);
            fragments.push(frame);
        }
        let mut sctp = tcp_v4(b"chunk");
        sctp[14 + 9] = ip_proto::SCTP;
        [vec![tcp_v4(b"hello"), udp, icmp, sctp], fragments].concat()
    }

    #[test]
    fn the_fast_path_takes_the_common_frames() {
        for frame in common_frames() {
            let fast = untagged_ipv4(&frame, frame.len());
            assert!(fast.is_some(), "{frame:02x?}");
            assert_eq!(fast, Some(parse_general(&frame, frame.len())));
        }
    }

    proptest! {
        /// The fast path answers as the walk does whenever it answers: on common frames with
        /// bytes of their headers changed, cut anywhere, in a longer packet or not.
        #[test]
        fn the_fast_path_is_the_walk(
            which in 0usize..6,
            // Anywhere in the headers, or in a field the fast path decides on (EtherType,
            // version and IHL, total length, flags and fragment offset, protocol).
            edits in proptest::collection::vec(
                (prop_oneof![0usize..40, proptest::sample::select(vec![12, 13, 14, 17, 20, 21, 23])],
                 prop_oneof![any::<u8>(), 0u8..32, 0x40u8..0x50]),
                0..4,
            ),
            total_len in proptest::option::of(0u16..80),
            cut in 0usize..80,
            extra in 0usize..100,
        ) {
            let mut frame = common_frames().swap_remove(which);
            if let Some(len) = total_len {
                frame[16..18].copy_from_slice(&len.to_be_bytes());
            }
            for (at, byte) in edits {
                if let Some(b) = frame.get_mut(at) {
                    *b = byte;
                }
            }
            frame.truncate(cut);
            let pkt_len = frame.len() + extra;
            if let Some(fast) = untagged_ipv4(&frame, pkt_len) {
                prop_assert_eq!(fast, parse_general(&frame, pkt_len));
            }
            prop_assert_eq!(parse_inner(&frame, pkt_len), parse_general(&frame, pkt_len));
        }

        #[test]
        fn never_panics(frame in proptest::collection::vec(any::<u8>(), 0..200), extra in 0usize..100) {
            let inner = parse_inner(&frame, frame.len() + extra);
            prop_assert!(usize::from(inner.l3_offset) <= frame.len());
            prop_assert!(inner.vlan_count <= 2);
        }

        #[test]
        fn mutated_frames_never_panic(edits in proptest::collection::vec((0usize..200, any::<u8>()), 0..8), cut in 0usize..200) {
            let exts = [(next_header::HOP_BY_HOP, 8), (next_header::FRAGMENT, 8)];
            let mut frame = ipv6_with_ext(&exts, ip_proto::TCP, &[0; 20], Some(Fragment { offset: 0, more: true, ident: 1 }));
            for (at, byte) in edits {
                if let Some(b) = frame.get_mut(at % 82) {
                    *b = byte;
                }
            }
            frame.truncate(cut.max(1));
            let inner = parse_inner(&frame, frame.len());
            prop_assert!(usize::from(inner.l3_offset) <= frame.len());
        }
    }
}
