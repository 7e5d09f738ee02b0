//! Decapsulation tests: real cloud shapes built with an independent encoder (`etherparse`) and
//! with the `wire` setters, one test per `Reason`, and property tests on arbitrary input.

use super::*;
use crate::buf::VecBuf;
use crate::inner::parse_inner;
use etherparse::PacketBuilder;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The mirrored ENI / the sender of AWS Traffic Mirroring.
const ENI: [u8; 4] = [172, 31, 0, 5];
/// The broker's (mirror target's) address.
const TARGET: [u8; 4] = [172, 31, 9, 9];
/// A GWLB endpoint, the outer sender when mirror traffic is delivered through GWLB.
const GWLB: [u8; 4] = [10, 1, 0, 10];
const SENDER_V6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
const TARGET_V6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
const MAC_OUT_A: [u8; 6] = [0x06, 0xaa, 0, 0, 0, 1];
const MAC_OUT_B: [u8; 6] = [0x06, 0xaa, 0, 0, 0, 2];

/// Offsets in an untagged outer IPv4 packet.
const IP: usize = 14;
const UDP: usize = 34;
const TUNNEL: usize = 42;

fn cfg() -> DecapConfig {
    DecapConfig::new(&[4789], &[6081], None, false)
}

/// The customer's packet: Ethernet, IPv4, TCP with a payload.
fn customer_frame() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x0c], [2, 0, 0, 0, 0, 0x0d])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 443, 1, 1000)
        .write(&mut out, b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    out
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    [&[0x08, 0, 0, 0, v[1], v[2], v[3], 0][..], inner].concat()
}

fn geneve(vni: u32, protocol: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let v = vni.to_be_bytes();
    let p = protocol.to_be_bytes();
    let header = [
        (options.len() / 4) as u8,
        0,
        p[0],
        p[1],
        v[1],
        v[2],
        v[3],
        0,
    ];
    [&header[..], options, payload].concat()
}

/// Options like AWS GWLB's: three TLVs of class 0x0108 (flow cookie, ENI id, attachment id).
fn gwlb_options() -> Vec<u8> {
    let mut options = Vec::new();
    for (kind, words) in [(1u8, 2u8), (2, 2), (3, 1)] {
        options.extend_from_slice(&[0x01, 0x08, kind, words]);
        options.extend(std::iter::repeat_n(kind, usize::from(words) * 4));
    }
    options
}

fn udp_v4(src: [u8; 4], dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_OUT_A, MAC_OUT_B)
        .ipv4(src, TARGET, 255)
        .udp(50000, dst_port)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp_v6(src: [u8; 16], dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_OUT_A, MAC_OUT_B)
        .ipv6(src, TARGET_V6, 64)
        .udp(50000, dst_port)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn aws_vxlan(vni: u32) -> Vec<u8> {
    udp_v4(ENI, 4789, &vxlan(vni, &customer_frame()))
}

/// Inserts `tags` (TPID, VLAN id) after the MAC addresses of `frame`.
fn with_tags(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for &(tpid, id) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

/// An outer IPv6 packet with the extension headers `exts` (kind, length) before UDP.
fn udp_v6_with_ext(
    exts: &[(u8, usize)],
    fragment: Option<ipv6::Fragment>,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let plain = udp_v6(SENDER_V6, dst_port, payload);
    let chain_len: usize = exts.iter().map(|e| e.1).sum();
    let mut out = plain[..54].to_vec();
    out.resize(54 + chain_len, 0);
    out.extend_from_slice(&plain[54..]);
    let mut ip = ipv6::Packet::new_unchecked(&mut out[14..]);
    let payload_len = ip.payload_len() as usize + chain_len;
    ip.set_payload_len(payload_len as u16);
    ip.set_next_header(exts.first().map_or(ip_proto::UDP, |e| e.0));
    let mut at = 54;
    for (i, &(kind, len)) in exts.iter().enumerate() {
        let mut h = ipv6::ExtHeader::new_unchecked(&mut out[at..at + len], kind);
        h.set_next_header(exts.get(i + 1).map_or(ip_proto::UDP, |e| e.0));
        h.set_header_len(len);
        if let (ipv6::next_header::FRAGMENT, Some(f)) = (kind, fragment) {
            h.set_fragment(f);
        }
        at += len;
    }
    out
}

fn run(cfg: &DecapConfig, bytes: &[u8]) -> (Result<Decapped, Outcome>, VecBuf) {
    let mut pkt = VecBuf::new(bytes);
    let result = decap(cfg, &mut pkt);
    (result, pkt)
}

fn tunnel(outer: [u8; 4], mirror: [u8; 4], vni: u32, depth: u8) -> Result<Decapped, Outcome> {
    Ok(Decapped::Tunnelled(Tunnel {
        outer_source: IpAddr::V4(outer.into()),
        mirror_source: IpAddr::V4(mirror.into()),
        vni,
        depth,
    }))
}

#[test]
fn aws_traffic_mirroring_vxlan() {
    let (result, pkt) = run(&cfg(), &aws_vxlan(0x00_1234));
    assert_eq!(result, tunnel(ENI, ENI, 0x1234, 1));
    assert_eq!(pkt.to_vec(), customer_frame());
    let inner = parse_inner(pkt.data(), pkt.pkt_len());
    let flow = inner.flow.unwrap();
    assert_eq!(
        (flow.dst, flow.dst_port),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 443)
    );
}

#[test]
fn vni_zero_and_reserved_bits_are_fine() {
    let mut bytes = aws_vxlan(0);
    bytes[TUNNEL] = 0xff; // every reserved flag bit set, I set
    bytes[TUNNEL + 1..TUNNEL + 4].copy_from_slice(&[0xff; 3]);
    bytes[TUNNEL + 7] = 0xff;
    assert_eq!(run(&cfg(), &bytes).0, tunnel(ENI, ENI, 0, 1));
}

#[test]
fn outer_ethernet_padding_is_trimmed() {
    let mut bytes = aws_vxlan(7);
    bytes.extend_from_slice(&[0u8; 6]);
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(ENI, ENI, 7, 1));
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn bytes_beyond_the_udp_length_are_trimmed() {
    // IP payload longer than UDP says: the trailing 5 bytes are not part of the tunnel.
    let mut bytes = aws_vxlan(7);
    bytes.extend_from_slice(&[0xee; 5]);
    let total = (bytes.len() - IP) as u16;
    ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_total_len(total);
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(ENI, ENI, 7, 1));
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn outer_ipv4_options_are_skipped() {
    // The same packet with a 24-byte IPv4 header (one word of options) before UDP.
    let plain = aws_vxlan(9);
    let mut bytes = plain[..UDP].to_vec();
    bytes.extend_from_slice(&[0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
    bytes.extend_from_slice(&plain[UDP..]);
    let mut ip = ipv4::Packet::new_unchecked(&mut bytes[IP..]);
    ip.set_version_and_header_len(24);
    ip.set_total_len(ip.total_len() + 4);
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(ENI, ENI, 9, 1));
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn udp_checksums_are_not_verified() {
    // etherparse wrote a correct checksum; a wrong one and 0 are both accepted.
    for checksum in [0u16, 0xdead] {
        let mut bytes = aws_vxlan(3);
        udp::Packet::new_unchecked(&mut bytes[UDP..]).set_checksum(checksum);
        ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_checksum(0xbeef);
        assert_eq!(run(&cfg(), &bytes).0, tunnel(ENI, ENI, 3, 1));
    }
}

#[test]
fn aws_gwlb_geneve_carrying_vxlan() {
    // GWLB → broker: GENEVE with GWLB's options, carrying the Traffic Mirroring VXLAN packet
    // the mirrored ENI sent.
    let mirror_packet = aws_vxlan(77);
    let bytes = udp_v4(
        GWLB,
        6081,
        &geneve(0, 0x6558, &gwlb_options(), &mirror_packet),
    );
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(GWLB, ENI, 77, 2));
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn azure_vtap_vxlan_on_a_custom_port_with_ipv6_inside() {
    let mut customer = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(SENDER_V6, TARGET_V6, 64)
        .udp(33333, 53)
        .write(&mut customer, b"dns")
        .unwrap();
    let cfg = DecapConfig::new(&[4789, 4790], &[], None, false);
    let bytes = udp_v4([100, 64, 0, 1], 4790, &vxlan(0xab_cdef, &customer));
    let (result, pkt) = run(&cfg, &bytes);
    assert_eq!(
        result,
        tunnel([100, 64, 0, 1], [100, 64, 0, 1], 0xab_cdef, 1)
    );
    assert_eq!(pkt.to_vec(), customer);
    assert_eq!(
        parse_inner(pkt.data(), pkt.pkt_len())
            .flow
            .unwrap()
            .dst_port,
        53
    );
}

#[test]
fn geneve_bare_ipv4_gets_a_synthetic_ethernet_header() {
    let customer = customer_frame();
    let ip_packet = &customer[14..];
    let bytes = udp_v4(GWLB, 6081, &geneve(5, 0x0800, &gwlb_options(), ip_packet));
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(GWLB, GWLB, 5, 1));
    let frame = pkt.to_vec();
    assert_eq!(&frame[..6], &SYNTHETIC_DESTINATION);
    assert_eq!(&frame[6..12], &SYNTHETIC_SOURCE);
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    assert_eq!(&frame[14..], ip_packet);
}

#[test]
fn geneve_bare_ipv6() {
    let mut customer = Vec::new();
    PacketBuilder::ipv6(SENDER_V6, TARGET_V6, 64)
        .udp(1, 2)
        .write(&mut customer, b"v6")
        .unwrap();
    let bytes = udp_v6(SENDER_V6, 6081, &geneve(6, 0x86dd, &[], &customer));
    let (result, pkt) = run(&cfg(), &bytes);
    assert!(matches!(
        result,
        Ok(Decapped::Tunnelled(Tunnel {
            vni: 6,
            depth: 1,
            ..
        }))
    ));
    let frame = pkt.to_vec();
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    assert_eq!(&frame[14..], &customer[..]);
}

#[test]
fn geneve_bare_ip_nested_tunnel_is_followed() {
    // GENEVE carrying a bare IPv4 packet that is itself VXLAN.
    let mirror_packet = aws_vxlan(88);
    let bytes = udp_v4(GWLB, 6081, &geneve(0, 0x0800, &[], &mirror_packet[14..]));
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(GWLB, ENI, 88, 2));
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn ipv6_outer_with_extension_headers() {
    let exts = [
        (ipv6::next_header::HOP_BY_HOP, 8),
        (ipv6::next_header::DESTINATION_OPTIONS, 16),
    ];
    let bytes = udp_v6_with_ext(&exts, None, 4789, &vxlan(42, &customer_frame()));
    let (result, pkt) = run(&cfg(), &bytes);
    let sender = IpAddr::V6(Ipv6Addr::from(SENDER_V6));
    assert_eq!(
        result,
        Ok(Decapped::Tunnelled(Tunnel {
            outer_source: sender,
            mirror_source: sender,
            vni: 42,
            depth: 1
        }))
    );
    assert_eq!(pkt.to_vec(), customer_frame());
}

#[test]
fn ipv6_atomic_fragment_is_a_whole_packet() {
    let exts = [(ipv6::next_header::FRAGMENT, 8)];
    let atomic = ipv6::Fragment {
        offset: 0,
        more: false,
        ident: 1,
    };
    let bytes = udp_v6_with_ext(&exts, Some(atomic), 4789, &vxlan(42, &customer_frame()));
    assert!(matches!(run(&cfg(), &bytes).0, Ok(Decapped::Tunnelled(_))));
    let first = ipv6::Fragment {
        offset: 0,
        more: true,
        ident: 1,
    };
    let bytes = udp_v6_with_ext(&exts, Some(first), 4789, &vxlan(42, &customer_frame()));
    assert_eq!(
        run(&cfg(), &bytes).0,
        Err(Outcome::Malformed(Reason::OuterFragment))
    );
}

#[test]
fn qinq_outer() {
    let plain = aws_vxlan(11);
    for tags in [
        &[(0x8100, 5)][..],
        &[(0x88a8, 100), (0x8100, 5)],
        &[(0x9100, 100), (0x8100, 5)],
    ] {
        let bytes = with_tags(&plain, tags);
        let (result, pkt) = run(&cfg(), &bytes);
        assert_eq!(result, tunnel(ENI, ENI, 11, 1), "{tags:?}");
        assert_eq!(pkt.to_vec(), customer_frame());
    }
    // And with etherparse's own QinQ encoding.
    let mut bytes = Vec::new();
    PacketBuilder::ethernet2(MAC_OUT_A, MAC_OUT_B)
        .double_vlan(
            etherparse::VlanId::try_new(10).unwrap(),
            etherparse::VlanId::try_new(20).unwrap(),
        )
        .ipv4(ENI, TARGET, 64)
        .udp(1, 4789)
        .write(&mut bytes, &vxlan(12, &customer_frame()))
        .unwrap();
    assert_eq!(run(&cfg(), &bytes).0, tunnel(ENI, ENI, 12, 1));
}

#[test]
fn three_tunnels_deep_is_the_limit() {
    let two = udp_v4([10, 0, 2, 2], 4789, &vxlan(2, &aws_vxlan(1)));
    let three = udp_v4([10, 0, 3, 3], 6081, &geneve(3, 0x6558, &[], &two));
    let (result, pkt) = run(&cfg(), &three);
    assert_eq!(result, tunnel([10, 0, 3, 3], ENI, 1, 3));
    assert_eq!(pkt.to_vec(), customer_frame());
    let four = udp_v4([10, 0, 4, 4], 4789, &vxlan(4, &three));
    let (result, pkt) = run(&cfg(), &four);
    assert_eq!(result, Err(Outcome::Malformed(Reason::TunnelTooDeep)));
    assert_eq!(pkt.to_vec(), four, "a dropped packet is left as it was");
}

#[test]
fn an_inner_layer_that_is_not_a_valid_tunnel_is_delivered() {
    // The customer's own packet to UDP 4789, with a VXLAN header lacking the I flag: it is the
    // mirrored packet, not a delivery tunnel.
    let mut customer = udp_v4([192, 168, 0, 1], 4789, &vxlan(5, &customer_frame()));
    customer[TUNNEL] = 0x00;
    let bytes = udp_v4(ENI, 4789, &vxlan(9, &customer));
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(ENI, ENI, 9, 1));
    assert_eq!(pkt.to_vec(), customer);

    // Mirrored with packet-length truncation: the inner IP total length claims more than the
    // tunnel carries, so the inner VXLAN is not followed.
    let customer = udp_v4([192, 168, 0, 1], 4789, &vxlan(5, &customer_frame()));
    let cut = &customer[..60];
    let bytes = udp_v4(ENI, 4789, &vxlan(9, cut));
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!(result, tunnel(ENI, ENI, 9, 1));
    assert_eq!(pkt.to_vec(), cut);
    assert!(parse_inner(pkt.data(), pkt.pkt_len()).truncated_by_source);

    // An inner tunnel carrying less than an Ethernet header is not followed either.
    let customer = udp_v4([192, 168, 0, 1], 4789, &vxlan(5, &[1, 2, 3]));
    let bytes = udp_v4(ENI, 4789, &vxlan(9, &customer));
    let (result, pkt) = run(&cfg(), &bytes);
    assert_eq!((result, pkt.to_vec()), (tunnel(ENI, ENI, 9, 1), customer));
}

#[test]
fn not_tunnelled_frames() {
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_OUT_A);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2(MAC_OUT_A, MAC_OUT_B)
        .ipv4(ENI, TARGET, 64)
        .tcp(1, 4789, 0, 0)
        .write(&mut tcp, b"x")
        .unwrap();
    let other_port = udp_v4(ENI, 53, &vxlan(1, &customer_frame()));
    let passing = DecapConfig::new(&[4789], &[6081], None, true);
    for bytes in [&arp, &tcp, &other_port] {
        assert_eq!(run(&cfg(), bytes).0, Err(Outcome::NotTunnel));
        let (result, pkt) = run(&passing, bytes);
        assert_eq!(result, Ok(Decapped::Untunneled));
        assert_eq!(&pkt.to_vec(), bytes, "an untunneled packet is unchanged");
    }
}

#[test]
fn malformed_outer_headers_stay_malformed_with_pass_untunneled() {
    let passing = DecapConfig::new(&[4789], &[6081], None, true);
    let mut bytes = aws_vxlan(1);
    ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_total_len(2000);
    assert_eq!(
        run(&passing, &bytes).0,
        Err(Outcome::Malformed(Reason::Ipv4BadLength))
    );
    // Even when the port is not a tunnel port: UDP's length is still checked.
    let mut bytes = udp_v4(ENI, 53, b"dns query");
    udp::Packet::new_unchecked(&mut bytes[UDP..]).set_len(4);
    assert_eq!(
        run(&passing, &bytes).0,
        Err(Outcome::Malformed(Reason::UdpBadLength))
    );
}

#[test]
fn allowlist_checks_the_outermost_source() {
    let nets: Vec<IpNet> = ["172.31.0.0/24", "10.1.0.0/16", "2001:db8::/64"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let cfg = DecapConfig::new(&[4789], &[6081], Some(&nets), false);
    assert_eq!(run(&cfg, &aws_vxlan(1)).0, tunnel(ENI, ENI, 1, 1));
    assert_eq!(
        run(
            &cfg,
            &udp_v4([172, 31, 1, 5], 4789, &vxlan(1, &customer_frame()))
        )
        .0,
        Err(Outcome::SourceDenied)
    );
    // GWLB delivery: only the outer sender (10.1.0.10) must be allowed, not the mirrored ENI.
    let mirror = udp_v4([192, 0, 2, 1], 4789, &vxlan(77, &customer_frame()));
    let gwlb = udp_v4(GWLB, 6081, &geneve(0, 0x6558, &[], &mirror));
    assert_eq!(run(&cfg, &gwlb).0, tunnel(GWLB, [192, 0, 2, 1], 77, 2));
    // IPv6 senders.
    assert!(matches!(
        run(&cfg, &udp_v6(SENDER_V6, 4789, &vxlan(1, &customer_frame()))).0,
        Ok(Decapped::Tunnelled(_))
    ));
    let mut outsider = SENDER_V6;
    outsider[7] = 1;
    assert_eq!(
        run(&cfg, &udp_v6(outsider, 4789, &vxlan(1, &customer_frame()))).0,
        Err(Outcome::SourceDenied)
    );
    // Nothing after the outer IP header is trusted from a denied sender: a broken UDP header
    // or a fragment is still `source_denied`.
    let mut bytes = udp_v4([8, 8, 8, 8], 4789, &vxlan(1, &customer_frame()));
    udp::Packet::new_unchecked(&mut bytes[UDP..]).set_len(3);
    ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_fragmentation(false, true, 0);
    assert_eq!(run(&cfg, &bytes).0, Err(Outcome::SourceDenied));
    // An empty allowlist admits nobody; a non-IP frame has no source to check.
    let nobody = DecapConfig::new(&[4789], &[], Some(&[]), true);
    assert_eq!(run(&nobody, &aws_vxlan(1)).0, Err(Outcome::SourceDenied));
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_OUT_A);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(run(&nobody, &arp).0, Ok(Decapped::Untunneled));
}

/// A SPAN port with an allowlist for the tunnels that arrive on it too (config/examples/
/// span-port.toml): with `pass_untunneled`, only a tunnel from outside the list is denied; the
/// untunnelled frames of every host pass, and a malformed header is still malformed.
#[test]
fn allowlist_with_pass_untunneled_denies_tunnels_only() {
    let vteps: Vec<IpNet> = ["172.31.0.0/24", "2001:db8::/64"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let span = DecapConfig::new(&[4789], &[6081], Some(&vteps), true);
    let cloud = DecapConfig::new(&[4789], &[6081], Some(&vteps), false);
    let host = [192, 0, 2, 7];
    let mut outsider_v6 = SENDER_V6;
    outsider_v6[7] = 1;

    // A VTEP's tunnel is decapsulated; a tunnel from anyone else is denied, VXLAN or GENEVE,
    // IPv4 or IPv6, with or without pass_untunneled.
    assert_eq!(run(&span, &aws_vxlan(1)).0, tunnel(ENI, ENI, 1, 1));
    for bytes in [
        udp_v4(host, 4789, &vxlan(1, &customer_frame())),
        udp_v4(host, 6081, &geneve(0, 0x6558, &[], &customer_frame())),
        udp_v6(outsider_v6, 4789, &vxlan(1, &customer_frame())),
    ] {
        assert_eq!(run(&span, &bytes).0, Err(Outcome::SourceDenied));
        assert_eq!(run(&cloud, &bytes).0, Err(Outcome::SourceDenied));
    }
    // Even one whose tunnel header is broken: the tunnel header is not read from a denied sender.
    let no_vni = udp_v4(host, 4789, &[0u8; 8]);
    assert_eq!(run(&span, &no_vni).0, Err(Outcome::SourceDenied));

    // The monitored hosts' own frames, as a switch mirrors them: passed unchanged on a SPAN
    // port, denied where untunnelled frames are not passed (before anything past IP is read).
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2(MAC_OUT_A, MAC_OUT_B)
        .ipv4(host, TARGET, 64)
        .tcp(40000, 443, 0, 0)
        .write(&mut tcp, b"GET /")
        .unwrap();
    let dns = udp_v4(host, 53, b"dns query");
    let dns_v6 = udp_v6(outsider_v6, 53, b"dns query");
    for bytes in [&tcp, &dns, &dns_v6] {
        let (result, pkt) = run(&span, bytes);
        assert_eq!(result, Ok(Decapped::Untunneled));
        assert_eq!(&pkt.to_vec(), bytes, "an untunneled packet is unchanged");
        assert_eq!(run(&cloud, bytes).0, Err(Outcome::SourceDenied));
    }

    // A malformed outer header is malformed from anyone on a SPAN port, as for any untunnelled
    // frame; without pass_untunneled the denied source is decided first.
    let mut bad_udp = udp_v4(host, 53, b"dns query");
    udp::Packet::new_unchecked(&mut bad_udp[UDP..]).set_len(4);
    assert_eq!(
        run(&span, &bad_udp).0,
        Err(Outcome::Malformed(Reason::UdpBadLength))
    );
    assert_eq!(run(&cloud, &bad_udp).0, Err(Outcome::SourceDenied));
}

#[test]
fn allowlist_ranges_merge_and_search() {
    let nets: Vec<IpNet> = [
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.0.128/25",
        "0.0.0.0/32",
        "255.255.255.255/32",
        "::/0",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let ranges = AddressRanges::new(&nets);
    assert_eq!(
        ranges.v4.len(),
        3,
        "adjacent and nested ranges merge: {:?}",
        ranges.v4
    );
    assert_eq!(ranges.v6.len(), 1);
    for (addr, inside) in [
        ("10.0.0.0", true),
        ("10.0.1.255", true),
        ("10.0.2.0", false),
        ("9.255.255.255", false),
        ("0.0.0.0", true),
        ("0.0.0.1", false),
        ("255.255.255.255", true),
        ("ffff::1", true),
    ] {
        assert_eq!(ranges.contains(addr.parse().unwrap()), inside, "{addr}");
    }
}

#[test]
fn from_settings() {
    let settings = config::DecapSettings {
        vxlan_ports: vec![4789],
        geneve_ports: vec![6081],
        allowed_sources: Some(vec!["172.31.0.0/16".parse().unwrap()]),
        untunneled_session: None,
        default_session: None,
    };
    let cfg = DecapConfig::from_settings(&settings);
    assert_eq!(
        cfg,
        DecapConfig::new(
            &[4789],
            &[6081],
            Some(&["172.31.0.0/16".parse().unwrap()]),
            false
        )
    );
    assert!(cfg.is_allowed_source(IpAddr::V4(ENI.into())));
    assert!(!cfg.is_allowed_source(IpAddr::V4(GWLB.into())));
}

#[test]
fn multi_segment_jumbo_frame() {
    let mut customer = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(7, 9)
        .write(&mut customer, &vec![0x5a; 8900])
        .unwrap();
    let mut bytes = udp_v4(ENI, 4789, &vxlan(21, &customer));
    bytes.extend_from_slice(&[0; 3]); // padding at the very end, in the last segment
    let segments: Vec<Vec<u8>> = bytes.chunks(2048).map(<[u8]>::to_vec).collect();
    assert_eq!(segments.len(), 5);
    let mut pkt = VecBuf::from_segments(segments);
    assert_eq!(decap(&cfg(), &mut pkt), tunnel(ENI, ENI, 21, 1));
    assert_eq!(pkt.segments(), 5);
    assert_eq!(pkt.to_vec(), customer);
    let inner = parse_inner(pkt.data(), pkt.pkt_len());
    assert!(!inner.truncated_by_source);
    assert_eq!(inner.flow.unwrap().dst_port, 9);

    // Padding that fills a whole last segment releases it.
    let mut bytes = udp_v4(ENI, 4789, &vxlan(21, &customer_frame()));
    let len = bytes.len();
    bytes.extend_from_slice(&[0; 10]);
    let mut pkt = VecBuf::from_segments(vec![bytes[..len].to_vec(), bytes[len..].to_vec()]);
    assert_eq!(decap(&cfg(), &mut pkt), tunnel(ENI, ENI, 21, 1));
    assert_eq!((pkt.segments(), pkt.to_vec()), (1, customer_frame()));
}

#[test]
fn a_header_split_by_a_segment_boundary_is_truncated() {
    let bytes = aws_vxlan(1);
    let mut pkt = VecBuf::from_segments(vec![bytes[..UDP + 4].to_vec(), bytes[UDP + 4..].to_vec()]);
    assert_eq!(
        decap(&cfg(), &mut pkt),
        Err(Outcome::Malformed(Reason::UdpTruncated))
    );
}

#[test]
fn a_udp_header_cut_by_the_ip_length_is_truncated_even_with_padding_after_it() {
    // IPv4 total length 24: the datagram holds 4 bytes of UDP header; the frame's bytes after it
    // are padding and must not be read as the rest of the header.
    let mut bytes = aws_vxlan(1);
    ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_total_len(24);
    assert_eq!(
        run(&cfg(), &bytes).0,
        Err(Outcome::Malformed(Reason::UdpTruncated))
    );
    let mut bytes = udp_v6(SENDER_V6, 4789, &vxlan(7, &customer_frame()));
    ipv6::Packet::new_unchecked(&mut bytes[IP..]).set_payload_len(4);
    assert_eq!(
        run(&cfg(), &bytes).0,
        Err(Outcome::Malformed(Reason::UdpTruncated))
    );
}

/// A packet that `decap` must reject with `reason`. The match is exhaustive: a new `Reason`
/// does not compile until it has a test here.
fn packet_for(reason: Reason) -> Vec<u8> {
    let base = aws_vxlan(7);
    let v6 = udp_v6(SENDER_V6, 4789, &vxlan(7, &customer_frame()));
    let mut bytes = base.clone();
    match reason {
        Reason::EthernetTruncated => bytes.truncate(13),
        Reason::VlanTruncated => bytes = [&base[..12], &[0x81, 0x00, 0x00][..]].concat(),
        Reason::VlanTooDeep => bytes = with_tags(&base, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]),
        Reason::Ipv4Truncated => bytes.truncate(IP + 19),
        Reason::Ipv4BadVersion => bytes[IP] = 0x55,
        Reason::Ipv4BadIhl => bytes[IP] = 0x44,
        Reason::Ipv4BadLength => {
            let total = (base.len() - IP + 1) as u16;
            ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_total_len(total);
        }
        Reason::Ipv6Truncated => bytes = v6[..IP + 39].to_vec(),
        Reason::Ipv6BadVersion => {
            bytes = v6;
            bytes[IP] = 0x45;
        }
        Reason::Ipv6BadLength => {
            bytes = v6;
            let mut ip = ipv6::Packet::new_unchecked(&mut bytes[IP..]);
            ip.set_payload_len(ip.payload_len() + 1);
        }
        Reason::Ipv6ExtTruncated => {
            bytes = udp_v6_with_ext(
                &[(ipv6::next_header::HOP_BY_HOP, 8)],
                None,
                4789,
                &vxlan(7, &customer_frame()),
            );
            bytes[IP + 40 + 1] = 200; // Hop-by-Hop length: 1608 bytes
        }
        Reason::Ipv6ExtTooMany => {
            let exts = [(ipv6::next_header::DESTINATION_OPTIONS, 8); 9];
            bytes = udp_v6_with_ext(&exts, None, 4789, &vxlan(7, &customer_frame()));
        }
        Reason::OuterFragment => {
            ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_fragmentation(false, true, 0)
        }
        Reason::UdpTruncated => {
            ipv4::Packet::new_unchecked(&mut bytes[IP..]).set_total_len(24);
            bytes.truncate(IP + 24);
        }
        Reason::UdpBadLength => udp::Packet::new_unchecked(&mut bytes[UDP..]).set_len(7),
        Reason::VxlanTruncated => udp::Packet::new_unchecked(&mut bytes[UDP..]).set_len(8 + 7),
        Reason::VxlanNoVni => bytes[TUNNEL] = 0xf7,
        Reason::GeneveTruncated => {
            bytes = udp_v4(GWLB, 6081, &geneve(1, 0x6558, &[], &customer_frame()));
            udp::Packet::new_unchecked(&mut bytes[UDP..]).set_len(8 + 7);
        }
        Reason::GeneveBadVersion => {
            bytes = udp_v4(GWLB, 6081, &geneve(1, 0x6558, &[], &customer_frame()));
            bytes[TUNNEL] |= 0x40;
        }
        Reason::GeneveOptionsOverrun => {
            bytes = udp_v4(GWLB, 6081, &geneve(1, 0x6558, &[], &customer_frame()[..20]));
            bytes[TUNNEL] = 0x3f; // 252 bytes of options announced, 20 present
        }
        Reason::GeneveUnknownProtocol => {
            bytes = udp_v4(GWLB, 6081, &geneve(1, 0x0806, &[], &customer_frame()))
        }
        Reason::TunnelTooDeep => {
            for depth in 0..3 {
                bytes = udp_v4([10, 0, 0, depth], 4789, &vxlan(u32::from(depth), &bytes));
            }
        }
        Reason::InnerTooShort => bytes = udp_v4(ENI, 4789, &vxlan(7, &customer_frame()[..13])),
    }
    bytes
}

#[test]
fn every_reason_is_produced() {
    for &reason in Reason::ALL {
        let bytes = packet_for(reason);
        let (result, pkt) = run(&cfg(), &bytes);
        assert_eq!(result, Err(Outcome::Malformed(reason)), "{reason}");
        assert_eq!(
            pkt.to_vec(),
            bytes,
            "{reason}: a dropped packet is left as it was"
        );
    }
}

#[test]
fn inner_too_short_also_for_an_empty_bare_ip_payload() {
    let bytes = udp_v4(GWLB, 6081, &geneve(1, 0x0800, &[], &[]));
    assert_eq!(
        run(&cfg(), &bytes).0,
        Err(Outcome::Malformed(Reason::InnerTooShort))
    );
    let bytes = udp_v4(ENI, 4789, &vxlan(7, &[]));
    assert_eq!(
        run(&cfg(), &bytes).0,
        Err(Outcome::Malformed(Reason::InnerTooShort))
    );
}

/// Valid packets of every shape, for the mutation properties.
fn valid_packets() -> Vec<Vec<u8>> {
    let customer = customer_frame();
    vec![
        aws_vxlan(1),
        udp_v4(
            GWLB,
            6081,
            &geneve(0, 0x6558, &gwlb_options(), &aws_vxlan(2)),
        ),
        udp_v4(
            GWLB,
            6081,
            &geneve(0, 0x0800, &gwlb_options(), &customer[14..]),
        ),
        udp_v6_with_ext(
            &[
                (ipv6::next_header::HOP_BY_HOP, 8),
                (ipv6::next_header::AUTHENTICATION, 12),
            ],
            None,
            4789,
            &vxlan(3, &customer),
        ),
        with_tags(&aws_vxlan(4), &[(0x88a8, 1), (0x8100, 2)]),
        udp_v4(
            [10, 0, 3, 3],
            4789,
            &vxlan(3, &udp_v4([10, 0, 2, 2], 4789, &vxlan(2, &aws_vxlan(1)))),
        ),
    ]
}

fn check_invariants(
    cfg: &DecapConfig,
    original: &[u8],
    result: Result<Decapped, Outcome>,
    pkt: &VecBuf,
) {
    match result {
        Ok(Decapped::Tunnelled(t)) => {
            assert!((1..=MAX_TUNNEL_DEPTH).contains(&t.depth));
            assert!(pkt.pkt_len() >= ethernet::HEADER_LEN && pkt.pkt_len() < original.len());
            assert!(cfg.is_allowed_source(t.outer_source));
            let inner = parse_inner(pkt.data(), pkt.pkt_len());
            assert!(usize::from(inner.l3_offset) <= pkt.data().len());
        }
        Ok(Decapped::Untunneled) | Err(_) => assert_eq!(pkt.to_vec(), original),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), pass: bool) {
        let cfg = DecapConfig::new(&[4789], &[6081], None, pass);
        let (result, pkt) = run(&cfg, &bytes);
        check_invariants(&cfg, &bytes, result, &pkt);
        let _ = parse_inner(&bytes, bytes.len());
    }

    #[test]
    fn mutated_packets_never_panic(
        which in 0usize..6,
        edits in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        cut in proptest::option::of(0usize..400),
        split in proptest::option::of(1usize..400),
        restricted: bool,
    ) {
        let nets: Vec<IpNet> = vec!["172.31.0.0/16".parse().unwrap(), "10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
        let cfg = DecapConfig::new(&[4789], &[6081], restricted.then_some(&nets[..]), true);
        let mut bytes = valid_packets().swap_remove(which);
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let mut pkt = match split {
            Some(at) if at < bytes.len() => VecBuf::from_segments(vec![bytes[..at].to_vec(), bytes[at..].to_vec()]),
            _ => VecBuf::new(&bytes),
        };
        let result = decap(&cfg, &mut pkt);
        check_invariants(&cfg, &bytes, result, &pkt);
    }

    #[test]
    fn segment_boundaries_after_the_headers_do_not_matter(which in 0usize..6, split in 0usize..200) {
        let bytes = valid_packets().swap_remove(which);
        let (single, single_pkt) = run(&cfg(), &bytes);
        prop_assert!(matches!(single, Ok(Decapped::Tunnelled(_))));
        // Split somewhere after the last tunnel header (the customer frame is at the end).
        let at = bytes.len() - customer_frame().len() + 14 + split % (customer_frame().len() - 14);
        let mut pkt = VecBuf::from_segments(vec![bytes[..at].to_vec(), bytes[at..].to_vec()]);
        prop_assert_eq!(decap(&cfg(), &mut pkt), single);
        prop_assert_eq!(pkt.to_vec(), single_pkt.to_vec());
    }

    #[test]
    fn allowlist_matches_a_linear_scan(nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..12), probes in proptest::collection::vec(any::<u32>(), 1..20)) {
        let nets: Vec<IpNet> = nets.iter().map(|&(a, len)| IpNet::V4(ipnet::Ipv4Net::new(a.into(), len).unwrap().trunc())).collect();
        let ranges = AddressRanges::new(&nets);
        for probe in probes.into_iter().chain(nets.iter().map(|n| match n { IpNet::V4(n) => u32::from(n.broadcast()), IpNet::V6(_) => 0 })) {
            let addr = IpAddr::V4(probe.into());
            prop_assert_eq!(ranges.contains(addr), nets.iter().any(|n| n.contains(&addr)), "{}", addr);
        }
    }
}

/// The padded sets of the fast path answer as the sorted lists do, for lists that fit them and
/// lists that do not (0 to 6 ports of each kind, 0 to 6 allowed IPv4 ranges).
#[test]
fn padded_sets_answer_as_the_lists() {
    for count in 0..=6u16 {
        let vxlan: Vec<u16> = (0..count).map(|i| 4789 + 7 * i).collect();
        let geneve: Vec<u16> = (0..count).map(|i| 6081 + 3 * i).collect();
        let nets: Vec<IpNet> = (0..count)
            .map(|i| format!("10.{}.0.0/16", 2 * i).parse().unwrap())
            .collect();
        let cfg = DecapConfig::new(&vxlan, &geneve, Some(&nets), false);
        assert_eq!(cfg.vxlan_scan.is_some(), (1..=4).contains(&count));
        assert_eq!(cfg.tunnel_scan.is_some(), (1..=4).contains(&count));
        for port in 0..=u16::MAX {
            let is_vxlan = contains_port(&cfg.vxlan_ports, port);
            assert_eq!(cfg.is_vxlan_port(port), is_vxlan, "{count} ports: {port}");
            let is_tunnel = is_vxlan || contains_port(&cfg.geneve_ports, port);
            assert_eq!(cfg.is_tunnel_port(port), is_tunnel, "{count} ports: {port}");
        }
        let ranges = cfg.allowed_sources.as_ref().unwrap();
        assert_eq!(ranges.v4_scan.is_some(), (1..=4).contains(&count));
        for address in
            (0..=u32::MAX)
                .step_by(4099)
                .chain([0x0a00_0000, 0x0a00_ffff, 0x0a01_0000, 0x09ff_ffff])
        {
            assert_eq!(
                cfg.is_allowed_ipv4_source(address),
                range_contains(&ranges.v4, address),
                "{count} ranges: {address:#x}"
            );
        }
    }
}
