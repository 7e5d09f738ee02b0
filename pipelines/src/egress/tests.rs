//! The templates against headers built from scratch, an independent decoder (etherparse) and
//! our own parsers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use config::{Direction, Vni};
use proptest::prelude::*;

use super::*;
use crate::buf::VecBuf;
use crate::flow::FlowKey;
use crate::stage::balance::flow_hash;
use crate::testing;
use crate::wire::{EtherType, erspan, ethernet, geneve, gre, ipv4, ipv6, udp, vxlan};

const SOURCE_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x0a];
const NEXT_HOP_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x01];

fn spec(encapsulation: Encapsulation, source: &str, remote: &str, mtu: u16) -> TemplateSpec {
    TemplateSpec {
        encapsulation,
        source_mac: SOURCE_MAC,
        next_hop_mac: NEXT_HOP_MAC,
        source: source.parse().unwrap(),
        remote: remote.parse().unwrap(),
        mtu,
    }
}

fn vxlan_session() -> Encapsulation {
    Encapsulation::Vxlan {
        dst_port: vxlan::IANA_PORT,
        vni: VniChoice::Session,
    }
}

fn fields() -> PacketFields {
    PacketFields {
        vni: 101,
        direction: Some(Direction::Ingress),
        flow_hash: 0x1234_5678_9abc_def0,
        ip_ident: 0x0102,
        sequence: 7,
        truncated: false,
    }
}

/// Writes the header for `inner` (one segment) and returns header and inner frame joined.
fn encapsulate(template: &Template, fields: &PacketFields, inner: &[u8]) -> Vec<u8> {
    let described = template.inner_frame([inner]);
    let mut out = vec![0u8; MAX_HEADER_LEN];
    let n = template.write(fields, &described, &mut out).unwrap();
    out.truncate(n);
    out.extend_from_slice(inner);
    out
}

/// The header a copy must have, built field by field with the `wire` views and every checksum
/// computed in full over the finished packet: nothing of the template's precomputation, its
/// partial sums or its patching is used.
fn from_scratch(spec: &TemplateSpec, fields: &PacketFields, inner: &[u8]) -> Vec<u8> {
    let encapsulation = spec.encapsulation;
    let header_len = encapsulation.overhead(spec.remote);
    let mut packet = vec![0u8; header_len + inner.len()];
    packet[header_len..].copy_from_slice(inner);
    let ipv6 = spec.remote.is_ipv6();
    let l4 = 14 + if ipv6 { 40 } else { 20 };
    let vni = fields.vni & 0xff_ffff;
    let source_port = 49152 + (fields.flow_hash % 16384) as u16;
    let direction: u8 = match fields.direction {
        None => 0,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    };
    let vni_of = |choice: VniChoice| match choice {
        VniChoice::Session => vni,
        VniChoice::Fixed(fixed) => fixed.get(),
    };
    let datagram_len = (packet.len() - l4) as u16;

    let mut eth = ethernet::Frame::new_unchecked(&mut packet[..]);
    eth.set_destination(spec.next_hop_mac);
    eth.set_source(spec.source_mac);
    eth.set_ethertype(if ipv6 {
        EtherType::Ipv6
    } else {
        EtherType::Ipv4
    });

    let tunnel = &mut packet[l4..];
    let protocol = match encapsulation {
        Encapsulation::Vxlan {
            dst_port,
            vni: choice,
        } => {
            let mut vxlan = vxlan::Packet::new_unchecked(udp_header(
                tunnel,
                source_port,
                dst_port,
                datagram_len,
            ));
            vxlan.set_flags(0x08);
            vxlan.set_vni(vni_of(choice));
            17
        }
        Encapsulation::Geneve {
            dst_port,
            vni: choice,
            broker_hash,
        } => {
            let mut geneve = geneve::Packet::new_unchecked(udp_header(
                tunnel,
                source_port,
                dst_port,
                datagram_len,
            ));
            geneve.set_version_and_options_len(0, 12);
            geneve.set_flags(false, false);
            geneve.set_protocol_type(EtherType::TransparentEthernet);
            geneve.set_vni(vni_of(choice));
            let mut option = geneve::Tlv::new_unchecked(geneve.options_mut());
            option.set_class(0xfff0);
            option.set_option_type(0x01);
            option.set_data_len(8);
            let data = option.data_mut();
            data[..3].copy_from_slice(&vni.to_be_bytes()[1..]);
            data[3] = direction;
            data[4..].copy_from_slice(&broker_hash.to_be_bytes());
            17
        }
        Encapsulation::L2Gre { key } => {
            let mut gre = gre::Packet::new_unchecked(&mut tunnel[..]);
            gre.set_flags(false, key.is_some(), false);
            gre.set_protocol_type(EtherType::TransparentEthernet);
            if let Some(key) = key {
                gre.set_key(key);
            }
            47
        }
        Encapsulation::Erspan2 { session_id } => {
            let mut gre = gre::Packet::new_unchecked(&mut tunnel[..]);
            gre.set_flags(false, false, true);
            gre.set_protocol_type(EtherType::Erspan);
            gre.set_sequence(fields.sequence);
            let mut erspan = erspan::Packet::new_unchecked(gre.payload_mut());
            erspan.set_version_and_vlan(0);
            let id = match session_id {
                SessionIdChoice::SessionVni => (vni % 1024) as u16,
                SessionIdChoice::Fixed(id) => id,
            };
            erspan.set_cos_encap_truncated_session(
                0,
                erspan::Encap::TagInFrame,
                fields.truncated,
                id,
            );
            erspan.set_index(0);
            47
        }
    };

    match (spec.source, spec.remote) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut ip = ipv4::Packet::new_unchecked(&mut packet[14..]);
            ip.set_version_and_header_len(20);
            ip.set_dscp_ecn(0);
            ip.set_total_len(datagram_len + 20);
            ip.set_ident(fields.ip_ident);
            ip.set_fragmentation(true, false, 0);
            ip.set_ttl(64);
            ip.set_protocol(protocol);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            ip.fill_checksum();
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut ip = ipv6::Packet::new_unchecked(&mut packet[14..]);
            ip.set_version_class_flow(0, (fields.flow_hash & 0xf_ffff) as u32);
            ip.set_payload_len(datagram_len);
            ip.set_next_header(protocol);
            ip.set_hop_limit(64);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            if protocol == 17 {
                udp::Packet::new_unchecked(&mut packet[l4..]).fill_checksum_ipv6(src, dst);
            }
        }
        _ => unreachable!("the strategy pairs addresses of one family"),
    }
    packet
}

/// Writes a UDP header with checksum 0 at the start of `datagram` and returns the rest.
fn udp_header(datagram: &mut [u8], src_port: u16, dst_port: u16, len: u16) -> &mut [u8] {
    let mut udp = udp::Packet::new_unchecked(datagram);
    udp.set_src_port(src_port);
    udp.set_dst_port(dst_port);
    udp.set_len(len);
    udp.set_checksum(0);
    &mut udp.into_inner()[udp::HEADER_LEN..]
}

/// Decodes `packet` with etherparse (outer Ethernet, IP and UDP) and our own views (the
/// tunnel), checking every property issue 11 asks of the outer headers, and returns the inner
/// frame.
fn decode(spec: &TemplateSpec, fields: &PacketFields, packet: &[u8]) -> Vec<u8> {
    let sliced = etherparse::SlicedPacket::from_ethernet(packet).expect("etherparse decodes it");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!("not Ethernet II");
    };
    assert_eq!(eth.source(), spec.source_mac);
    assert_eq!(eth.destination(), spec.next_hop_mac);
    let ip_payload = match &sliced.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            let header = ip.header();
            assert_eq!(header.ttl(), 64);
            assert!(header.dont_fragment());
            assert_eq!(header.identification(), fields.ip_ident);
            assert_eq!(usize::from(header.total_len()), packet.len() - 14);
            assert_eq!(
                header.header_checksum(),
                header.to_header().calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert_eq!(IpAddr::from(header.source()), spec.source);
            assert_eq!(IpAddr::from(header.destination()), spec.remote);
            ip.payload().payload
        }
        Some(etherparse::NetSlice::Ipv6(ip)) => {
            let header = ip.header();
            assert_eq!(header.hop_limit(), 64);
            assert_eq!(usize::from(header.payload_length()), packet.len() - 54);
            assert_eq!(
                u64::from(header.flow_label().value()),
                fields.flow_hash & 0xf_ffff
            );
            assert_eq!(IpAddr::from(header.source()), spec.source);
            assert_eq!(IpAddr::from(header.destination()), spec.remote);
            ip.payload().payload
        }
        other => panic!("not IP: {other:?}"),
    };
    let udp_payload = |dst_port: u16| -> &[u8] {
        let Some(etherparse::TransportSlice::Udp(udp)) = &sliced.transport else {
            panic!("not UDP");
        };
        assert!(udp.source_port() >= 49152);
        assert_eq!(udp.source_port(), 49152 + (fields.flow_hash % 16384) as u16);
        assert_eq!(udp.destination_port(), dst_port);
        assert_eq!(usize::from(udp.length()), ip_payload.len());
        match &sliced.net {
            Some(etherparse::NetSlice::Ipv6(ip)) => {
                let expected = udp
                    .to_header()
                    .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
                    .unwrap();
                assert_ne!(udp.checksum(), 0, "UDP checksum over IPv6");
                assert_eq!(udp.checksum(), expected, "UDP checksum over IPv6");
            }
            _ => assert_eq!(udp.checksum(), 0, "UDP checksum 0 over IPv4"),
        }
        udp.payload()
    };
    let vni = fields.vni & 0xff_ffff;
    let vni_of = |choice: VniChoice| match choice {
        VniChoice::Session => vni,
        VniChoice::Fixed(fixed) => fixed.get(),
    };
    match spec.encapsulation {
        Encapsulation::Vxlan {
            dst_port,
            vni: choice,
        } => {
            let payload = udp_payload(dst_port);
            let vxlan = vxlan::Packet::new_checked(payload).unwrap();
            // Flags 0x08 and every reserved bit zero (Suricata's strict check, Arkime's mask).
            assert_eq!(&payload[..4], &[0x08, 0, 0, 0]);
            assert_eq!(payload[7], 0);
            assert_eq!(vxlan.vni(), vni_of(choice));
            vxlan.payload().to_vec()
        }
        Encapsulation::Geneve {
            dst_port,
            vni: choice,
            broker_hash,
        } => {
            let geneve = geneve::Packet::new_checked(udp_payload(dst_port)).unwrap();
            assert!(!geneve.is_control() && !geneve.has_critical_options());
            assert_eq!(geneve.protocol_type(), EtherType::TransparentEthernet);
            assert_eq!(geneve.vni(), vni_of(choice));
            let option = geneve::Tlv::new_checked(geneve.options()).unwrap();
            assert_eq!(option.option_len(), geneve.options_len(), "one option");
            assert_eq!((option.class(), option.option_type()), (0xfff0, 0x01));
            assert!(!option.is_critical());
            let data = option.data();
            assert_eq!(u32::from_be_bytes([0, data[0], data[1], data[2]]), vni);
            assert_eq!(data[3], direction_code(fields.direction));
            assert_eq!(
                u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                broker_hash
            );
            geneve.payload().to_vec()
        }
        Encapsulation::L2Gre { key } => {
            assert!(sliced.transport.is_none());
            let gre = gre::Packet::new_checked(ip_payload).unwrap();
            assert_eq!((gre.has_checksum(), gre.has_sequence()), (false, false));
            assert_eq!((gre.reserved0(), gre.key()), (0, key));
            assert_eq!(gre.protocol_type(), EtherType::TransparentEthernet);
            gre.payload().to_vec()
        }
        Encapsulation::Erspan2 { session_id } => {
            let gre = gre::Packet::new_checked(ip_payload).unwrap();
            // "only S (bit 03) may be set to 1"
            assert_eq!(&ip_payload[..2], &[0x10, 0x00]);
            assert_eq!(gre.protocol_type(), EtherType::Erspan);
            assert_eq!(gre.sequence(), Some(fields.sequence));
            let erspan = erspan::Packet::new_checked(gre.payload()).unwrap();
            let expected_id = match session_id {
                SessionIdChoice::SessionVni => (vni % 1024) as u16,
                SessionIdChoice::Fixed(id) => id,
            };
            assert_eq!(erspan.session_id(), expected_id);
            assert_eq!(erspan.truncated(), fields.truncated);
            assert_eq!(erspan.encap(), erspan::Encap::TagInFrame);
            assert_eq!((erspan.cos(), erspan.reserved(), erspan.index()), (0, 0, 0));
            erspan.payload().to_vec()
        }
    }
}

fn vni_choice() -> impl Strategy<Value = VniChoice> {
    prop_oneof![
        Just(VniChoice::Session),
        (0..=Vni::MAX).prop_map(|v| VniChoice::Fixed(Vni::new(v).unwrap())),
    ]
}

fn encapsulation() -> impl Strategy<Value = Encapsulation> {
    prop_oneof![
        (prop_oneof![Just(4789u16), any::<u16>()], vni_choice())
            .prop_map(|(dst_port, vni)| Encapsulation::Vxlan { dst_port, vni }),
        (
            prop_oneof![Just(6081u16), any::<u16>()],
            vni_choice(),
            any::<u32>()
        )
            .prop_map(|(dst_port, vni, broker_hash)| Encapsulation::Geneve {
                dst_port,
                vni,
                broker_hash
            }),
        any::<Option<u32>>().prop_map(|key| Encapsulation::L2Gre { key }),
        prop_oneof![
            Just(SessionIdChoice::SessionVni),
            (0u16..1024).prop_map(SessionIdChoice::Fixed)
        ]
        .prop_map(|session_id| Encapsulation::Erspan2 { session_id }),
    ]
}

fn addresses() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
    ]
}

fn packet_fields() -> impl Strategy<Value = PacketFields> {
    (
        any::<u32>(),
        prop_oneof![
            Just(None),
            Just(Some(Direction::Ingress)),
            Just(Some(Direction::Egress))
        ],
        any::<u64>(),
        any::<u16>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(vni, direction, flow_hash, ip_ident, sequence, truncated)| PacketFields {
                vni,
                direction,
                flow_hash,
                ip_ident,
                sequence,
                truncated,
            },
        )
}

fn template_spec() -> impl Strategy<Value = TemplateSpec> {
    (
        encapsulation(),
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        addresses(),
        prop_oneof![1280u16..=9216, Just(1500), Just(9001), Just(u16::MAX)],
    )
        .prop_map(
            |(encapsulation, source_mac, next_hop_mac, (source, remote), mtu)| TemplateSpec {
                encapsulation,
                source_mac,
                next_hop_mac,
                source,
                remote,
                mtu,
            },
        )
}

/// Splits `bytes` at `cuts` (positions, any order, clamped) into segments.
fn segments(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[start..cut].to_vec());
        start = cut;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The patched template equals the header built from scratch, for every encapsulation, both
    /// families, any parameters and per-packet fields, and inner frames given in segments of any
    /// lengths (odd ones included, which matters to the IPv6 UDP checksum).
    #[test]
    fn patched_template_equals_a_header_built_from_scratch(
        spec in template_spec(),
        fields in packet_fields(),
        inner in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(0usize..300, 0..4),
    ) {
        let template = Template::new(spec).unwrap();
        let reference = from_scratch(&spec, &fields, &inner);
        prop_assert_eq!(template.overhead(), reference.len() - inner.len());
        let pkt = VecBuf::from_segments(segments(&inner, &cuts));
        let described = template.inner_frame_of(&pkt);
        prop_assert_eq!(described.len(), inner.len());
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = template.write(&fields, &described, &mut out).unwrap();
        prop_assert_eq!(&out[..n], &reference[..n]);
    }

    /// What the template writes decodes, with etherparse for the outer headers and with our
    /// views for the tunnel, to the values asked for, and carries the inner frame unchanged.
    #[test]
    fn written_headers_decode_to_what_was_asked(
        spec in template_spec(),
        fields in packet_fields(),
        inner in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let template = Template::new(spec).unwrap();
        let packet = encapsulate(&template, &fields, &inner);
        prop_assert_eq!(decode(&spec, &fields, &packet), inner);
    }

    /// Describing the frame from its segments or from the packet buffer gives the same result.
    #[test]
    fn inner_frame_from_segments_or_buffer_agree(
        spec in template_spec(),
        inner in proptest::collection::vec(any::<u8>(), 0..100),
        cuts in proptest::collection::vec(0usize..100, 0..4),
    ) {
        let template = Template::new(spec).unwrap();
        let parts = segments(&inner, &cuts);
        let from_buffer = template.inner_frame_of(&VecBuf::from_segments(parts.clone()));
        let from_segments = template.inner_frame(parts.iter().map(Vec::as_slice));
        prop_assert_eq!(from_buffer, from_segments);
    }
}

/// A VXLAN-over-IPv4 header as an annotated byte array, its checksum computed by the
/// independent `testing::checksum`.
#[test]
fn vxlan_over_ipv4_bytes() {
    let spec = spec(vxlan_session(), "10.20.5.10", "10.20.7.11", 9001);
    let template = Template::new(spec).unwrap();
    let inner = [0xeeu8; 60];
    let packet = encapsulate(&template, &fields(), &inner);
    #[rustfmt::skip]
    let mut expected: [u8; 50] = [
        0x02, 0, 0, 0, 0, 0x01, // next hop
        0x02, 0, 0, 0, 0, 0x0a, // via port
        0x08, 0x00, // IPv4
        0x45, 0x00, // version 4, IHL 5, DSCP/ECN 0
        0x00, 0x60, // total length 96: IP 20 + UDP 8 + VXLAN 8 + inner 60
        0x01, 0x02, // identification
        0x40, 0x00, // DF
        64, 17, // TTL 64, UDP
        0x00, 0x00, // checksum (filled in below)
        10, 20, 5, 10, // source
        10, 20, 7, 11, // remote
        0xde, 0xf0, // source port 49152 + 0xdef0 % 16384 = 49152 + 0x1ef0 = 57072 = 0xdef0
        0x12, 0xb5, // destination port 4789
        0x00, 0x4c, // UDP length 8 + 8 + 60 = 76
        0x00, 0x00, // UDP checksum 0 over IPv4
        0x08, 0x00, 0x00, 0x00, // VXLAN flags: I only
        0x00, 0x00, 0x65, // VNI 101 (the session's)
        0x00, // reserved
    ];
    let sum = testing::checksum(&expected[14..34]);
    expected[24..26].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(&packet[..50], &expected[..]);
    assert_eq!(&packet[50..], &inner[..]);
}

#[test]
fn overheads_and_the_largest_inner_frame() {
    let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
    let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
    let geneve = Encapsulation::Geneve {
        dst_port: 6081,
        vni: VniChoice::Session,
        broker_hash: 0,
    };
    let cases = [
        (vxlan_session(), 50, 70),
        (geneve, 62, 82),
        (Encapsulation::L2Gre { key: None }, 38, 58),
        (Encapsulation::L2Gre { key: Some(9) }, 42, 62),
        (
            Encapsulation::Erspan2 {
                session_id: SessionIdChoice::SessionVni,
            },
            50,
            70,
        ),
    ];
    for (encapsulation, over_v4, over_v6) in cases {
        assert_eq!(encapsulation.overhead(v4), over_v4, "{encapsulation:?}");
        assert_eq!(encapsulation.overhead(v6), over_v6, "{encapsulation:?}");
        // The via port's MTU counts the IP packet, not the outer Ethernet header.
        assert_eq!(encapsulation.max_inner_len(v4, 1500), 1500 - (over_v4 - 14));
        assert_eq!(encapsulation.max_inner_len(v6, 9001), 9001 - (over_v6 - 14));
        assert_eq!(encapsulation.max_inner_len(v6, 20), 0);
    }
    // A VXLAN copy to a 1500-byte path carries a 1450-byte inner IP packet, as everywhere.
    assert_eq!(vxlan_session().max_inner_len(v4, 1500), 1450 + 14);
    let template = Template::new(spec(vxlan_session(), "10.0.0.1", "10.0.0.2", 1500)).unwrap();
    assert_eq!((template.overhead(), template.max_inner_len()), (50, 1464));
}

#[test]
fn a_frame_of_exactly_the_largest_size_fills_the_mtu() {
    for (source, remote) in [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")] {
        let template = Template::new(spec(vxlan_session(), source, remote, 1500)).unwrap();
        let inner = vec![0u8; template.max_inner_len()];
        let packet = encapsulate(&template, &fields(), &inner);
        assert_eq!(packet.len() - 14, 1500, "the outer IP packet is the MTU");
        let one_more = template.inner_frame([&[0u8][..], &inner]);
        assert_eq!(
            template.write(&fields(), &one_more, &mut [0u8; MAX_HEADER_LEN]),
            Err(WriteError::InnerTooLong)
        );
    }
}

#[test]
fn bad_specs_are_refused() {
    let mixed = spec(vxlan_session(), "10.0.0.1", "fd00::2", 1500);
    assert_eq!(Template::new(mixed), Err(TemplateError::FamilyMismatch));
    let erspan = Encapsulation::Erspan2 {
        session_id: SessionIdChoice::Fixed(1024),
    };
    assert_eq!(
        Template::new(spec(erspan, "10.0.0.1", "10.0.0.2", 1500)),
        Err(TemplateError::SessionIdTooLarge(1024))
    );
    let erspan = Encapsulation::Erspan2 {
        session_id: SessionIdChoice::Fixed(1023),
    };
    assert!(Template::new(spec(erspan, "10.0.0.1", "10.0.0.2", 1500)).is_ok());
    // IPv4's minimum MTU leaves 68 - 36 = 32 bytes: an inner frame fits; over IPv6 none does.
    assert!(Template::new(spec(vxlan_session(), "10.0.0.1", "10.0.0.2", 68)).is_ok());
    let err = Template::new(spec(vxlan_session(), "fd00::1", "fd00::2", 68)).unwrap_err();
    assert_eq!(
        err,
        TemplateError::MtuTooSmall {
            mtu: 68,
            overhead: 70
        }
    );
    assert!(err.to_string().contains("MTU 68"));
}

#[test]
fn write_refuses_short_buffers_and_unsummed_frames() {
    let v6 = Template::new(spec(vxlan_session(), "fd00::1", "fd00::2", 1500)).unwrap();
    let v4 = Template::new(spec(vxlan_session(), "10.0.0.1", "10.0.0.2", 1500)).unwrap();
    let inner = [0u8; 64];
    let unsummed = v4.inner_frame([&inner[..]]);
    let mut out = [0xaau8; MAX_HEADER_LEN];
    assert_eq!(
        v6.write(&fields(), &unsummed, &mut out),
        Err(WriteError::InnerNotSummed)
    );
    assert_eq!(
        v4.write(&fields(), &unsummed, &mut out[..49]),
        Err(WriteError::BufferTooShort)
    );
    assert_eq!(out, [0xaa; MAX_HEADER_LEN], "nothing written on error");
    // A frame summed for an IPv6 template serves an IPv4 one (the sum is not needed there).
    let summed = v6.inner_frame([&inner[..]]);
    assert_eq!(v4.write(&fields(), &summed, &mut out), Ok(50));
    assert!(v6.sums_inner_frame() && !v4.sums_inner_frame());
}

#[test]
fn both_directions_of_a_connection_share_the_outer_source_port() {
    let a: IpAddr = "10.0.1.10".parse().unwrap();
    let b: IpAddr = "192.0.2.7".parse().unwrap();
    let forward = flow_hash(&FlowKey::with_ports(a, b, 6, 40000, 443));
    let reverse = flow_hash(&FlowKey::with_ports(b, a, 6, 443, 40000));
    assert_eq!(udp_source_port(forward), udp_source_port(reverse));
    for hash in [0, 1, 16383, 16384, u64::MAX] {
        assert!(udp_source_port(hash) >= 49152);
    }
    assert_eq!(udp_source_port(16383), 65535);
    assert_eq!(udp_source_port(16384), 49152);
}

#[test]
fn the_next_hop_can_change_without_rebuilding() {
    let mut template = Template::new(spec(vxlan_session(), "10.0.0.1", "10.0.0.2", 1500)).unwrap();
    let moved = [0x02, 0, 0, 0, 0, 0x99];
    template.set_next_hop_mac(moved);
    assert_eq!(template.spec().next_hop_mac, moved);
    let packet = encapsulate(&template, &fields(), &[0u8; 20]);
    assert_eq!(&packet[..6], &moved);
    let rebuilt = Template::new(TemplateSpec {
        next_hop_mac: moved,
        ..*template.spec()
    })
    .unwrap();
    assert_eq!(template, rebuilt);
}

#[test]
fn only_erspan_uses_a_sequence_number() {
    let erspan = Encapsulation::Erspan2 {
        session_id: SessionIdChoice::SessionVni,
    };
    assert!(
        Template::new(spec(erspan, "10.0.0.1", "10.0.0.2", 1500))
            .unwrap()
            .uses_sequence()
    );
    assert!(
        !Template::new(spec(vxlan_session(), "10.0.0.1", "10.0.0.2", 1500))
            .unwrap()
            .uses_sequence()
    );
}

#[test]
fn broker_name_hash_is_fnv_1a_32() {
    // Test vectors of the FNV reference suite.
    assert_eq!(broker_name_hash(""), 0x811c_9dc5);
    assert_eq!(broker_name_hash("a"), 0xe40c_292c);
    assert_eq!(broker_name_hash("foobar"), 0xbf9c_f968);
}

#[test]
fn direction_codes() {
    assert_eq!(direction_code(None), 0);
    assert_eq!(direction_code(Some(Direction::Ingress)), 1);
    assert_eq!(direction_code(Some(Direction::Egress)), 2);
}
