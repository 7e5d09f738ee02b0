//! Frames built by hand (independently of the views under test), decoded by etherparse where it
//! knows the protocol.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::testing;

const OUR_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x0a];
const PEER_MAC: ethernet::Address = [0x02, 0, 0, 0, 0, 0x01];

fn our_v4() -> Ipv4Addr {
    Ipv4Addr::new(10, 20, 5, 10)
}

fn peer_v4() -> Ipv4Addr {
    Ipv4Addr::new(10, 20, 5, 1)
}

fn our_v6() -> Ipv6Addr {
    "2600:1f18:5::10".parse().unwrap()
}

fn peer_v6() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}

fn port() -> PortAddresses {
    PortAddresses {
        mac: OUR_MAC,
        ipv4: Some(our_v4()),
        ipv6: Some(our_v6()),
    }
}

fn frame(
    dst: ethernet::Address,
    src: ethernet::Address,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet/IPv4 ARP packet, field by field.
fn arp_packet(
    operation: u16,
    sender: (ethernet::Address, Ipv4Addr),
    target: (ethernet::Address, Ipv4Addr),
) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&operation.to_be_bytes());
    p.extend_from_slice(&sender.0);
    p.extend_from_slice(&sender.1.octets());
    p.extend_from_slice(&target.0);
    p.extend_from_slice(&target.1.octets());
    p
}

/// An Ethernet/IPv6/ICMPv6 frame, the checksum computed by `testing::checksum` over the
/// pseudo-header written out.
fn icmpv6_frame(
    dst_mac: ethernet::Address,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    mut message: Vec<u8>,
) -> Vec<u8> {
    let mut pseudo = src.octets().to_vec();
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(message.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&message);
    let sum = testing::checksum(&pseudo);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ip = testing::ipv6(src.octets(), dst.octets(), 58, &message);
    ip[7] = hop_limit;
    frame(dst_mac, PEER_MAC, 0x86dd, &ip)
}

/// A neighbour solicitation or advertisement message: type, the flags byte, target, options.
fn nd_message(msg_type: u8, flags: u8, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(options);
    m
}

fn link_layer_option(kind: u8, mac: ethernet::Address) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend_from_slice(&mac);
    o
}

/// The advertisement a neighbour sends back to our solicitation.
fn advertisement_from_peer(hop_limit: u8, flags: u8, options: &[u8]) -> Vec<u8> {
    icmpv6_frame(
        OUR_MAC,
        peer_v6(),
        our_v6(),
        hop_limit,
        nd_message(136, flags, peer_v6(), options),
    )
}

fn echo_request_v4(dst: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(data);
    let sum = testing::checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    frame(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &testing::ipv4(peer_v4().octets(), dst.octets(), 1, &icmp),
    )
}

#[test]
fn arp_request_is_a_padded_broadcast_request() {
    let f = arp_request(OUR_MAC, our_v4(), peer_v4());
    assert_eq!(f.len(), 60);
    let sliced = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!("not Ethernet");
    };
    assert_eq!((eth.destination(), eth.source()), ([0xff; 6], OUR_MAC));
    let Some(etherparse::NetSlice::Arp(arp)) = &sliced.net else {
        panic!("not ARP");
    };
    let arp = arp.to_packet().try_eth_ipv4().unwrap();
    assert_eq!(arp.operation, etherparse::ArpOperation::REQUEST);
    assert_eq!(
        (arp.sender_mac, arp.sender_ipv4, arp.target_ipv4),
        (OUR_MAC, our_v4().octets(), peer_v4().octets())
    );
    assert_eq!(
        &f[14..42],
        &arp_packet(1, (OUR_MAC, our_v4()), ([0; 6], peer_v4()))[..]
    );
    assert_eq!(&f[42..], &[0; 18], "padding");
}

#[test]
fn neighbour_solicitation_goes_to_the_solicited_node_group() {
    let target: Ipv6Addr = "2600:1f18:5::1:2345".parse().unwrap();
    let f = neighbour_solicitation(OUR_MAC, our_v6(), target);
    let expected = icmpv6_frame(
        [0x33, 0x33, 0xff, 0x01, 0x23, 0x45],
        our_v6(),
        "ff02::1:ff01:2345".parse().unwrap(),
        255,
        nd_message(135, 0, target, &link_layer_option(1, OUR_MAC)),
    );
    // The hand-built frame has the peer's source MAC; ours has ours.
    assert_eq!(&f[..6], &expected[..6]);
    assert_eq!(&f[6..12], &OUR_MAC);
    assert_eq!(&f[12..], &expected[12..]);

    let sliced = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6");
    };
    assert_eq!(ip.header().hop_limit(), 255);
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6");
    };
    assert!(matches!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::NeighborSolicitation
    ));
    let expected_sum = icmp
        .icmp_type()
        .calc_checksum(
            ip.header().source(),
            ip.header().destination(),
            icmp.payload(),
        )
        .unwrap();
    assert_eq!(icmp.checksum(), expected_sum);
    // A solicitation teaches its sender's address to whoever receives it.
    assert_eq!(
        learn(&f),
        Some(Neighbour {
            ip: our_v6().into(),
            mac: OUR_MAC
        })
    );
}

#[test]
fn arp_replies_requests_and_gratuitous_arp_teach_the_sender() {
    let reply = frame(
        OUR_MAC,
        PEER_MAC,
        0x0806,
        &arp_packet(2, (PEER_MAC, peer_v4()), (OUR_MAC, our_v4())),
    );
    let gratuitous = frame(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp_packet(1, (PEER_MAC, peer_v4()), ([0; 6], peer_v4())),
    );
    let expected = Some(Neighbour {
        ip: peer_v4().into(),
        mac: PEER_MAC,
    });
    assert_eq!(learn(&reply), expected);
    assert_eq!(learn(&gratuitous), expected);
    // A probe (RFC 5227) says nothing about an address yet; a multicast sender is no station.
    let probe = frame(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp_packet(1, (PEER_MAC, Ipv4Addr::UNSPECIFIED), ([0; 6], peer_v4())),
    );
    assert_eq!(learn(&probe), None);
    let multicast = frame(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp_packet(2, ([0x01, 0, 0x5e, 0, 0, 1], peer_v4()), ([0; 6], our_v4())),
    );
    assert_eq!(learn(&multicast), None);
    // RARP's operations and cut packets are not learnt from.
    let rarp = frame(
        OUR_MAC,
        PEER_MAC,
        0x0806,
        &arp_packet(4, (PEER_MAC, peer_v4()), (OUR_MAC, our_v4())),
    );
    assert_eq!(learn(&rarp), None);
    assert_eq!(learn(&reply[..41]), None);
}

#[test]
fn advertisements_teach_their_target_when_they_validate() {
    let tlla = link_layer_option(2, PEER_MAC);
    let good = advertisement_from_peer(255, 0x60, &tlla);
    assert_eq!(
        learn(&good),
        Some(Neighbour {
            ip: peer_v6().into(),
            mac: PEER_MAC
        })
    );
    // Forwarded by a router (hop limit below 255): refused.
    assert_eq!(learn(&advertisement_from_peer(254, 0x60, &tlla)), None);
    // No target link-layer address option: nothing to learn.
    assert_eq!(learn(&advertisement_from_peer(255, 0x60, &[])), None);
    // An option of length zero: the whole message is discarded.
    let mut zero = tlla.clone();
    zero.extend_from_slice(&[14, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(learn(&advertisement_from_peer(255, 0x60, &zero)), None);
    // A bad checksum.
    let mut corrupt = good.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert_eq!(learn(&corrupt), None);
    // Code other than 0.
    let mut message = nd_message(136, 0x60, peer_v6(), &tlla);
    message[1] = 1;
    assert_eq!(
        learn(&icmpv6_frame(OUR_MAC, peer_v6(), our_v6(), 255, message)),
        None
    );
    // A multicast target.
    let message = nd_message(136, 0x20, "ff02::1".parse().unwrap(), &tlla);
    assert_eq!(
        learn(&icmpv6_frame(OUR_MAC, peer_v6(), our_v6(), 255, message)),
        None
    );
    // To a multicast destination with the Solicited flag set.
    let message = nd_message(136, 0x60, peer_v6(), &tlla);
    let to_all = icmpv6_frame([0x33, 0x33, 0, 0, 0, 1], peer_v6(), ALL_NODES, 255, message);
    assert_eq!(learn(&to_all), None);
    // Unsolicited, to all nodes: fine.
    let message = nd_message(136, 0x20, peer_v6(), &tlla);
    let unsolicited = icmpv6_frame([0x33, 0x33, 0, 0, 0, 1], peer_v6(), ALL_NODES, 255, message);
    assert!(learn(&unsolicited).is_some());
}

#[test]
fn solicitations_from_the_unspecified_address_teach_nothing() {
    let target = our_v6();
    let group = ipv6::solicited_node(target);
    let dad = icmpv6_frame(
        ipv6::multicast_mac(group),
        Ipv6Addr::UNSPECIFIED,
        group,
        255,
        nd_message(135, 0, target, &[]),
    );
    assert_eq!(learn(&dad), None);
    // With a source link-layer option, it is invalid (RFC 4861 §7.1.1) and not answered either.
    let invalid = icmpv6_frame(
        ipv6::multicast_mac(group),
        Ipv6Addr::UNSPECIFIED,
        group,
        255,
        nd_message(135, 0, target, &link_layer_option(1, PEER_MAC)),
    );
    assert_eq!(answer(&port(), &invalid), None);
}

#[test]
fn answers_an_arp_request_for_its_address() {
    let request = frame(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp_packet(1, (PEER_MAC, peer_v4()), ([0; 6], our_v4())),
    );
    let reply = answer(&port(), &request).unwrap();
    assert_eq!(reply.len(), 60);
    assert_eq!(&reply[..6], &PEER_MAC, "to the asker");
    assert_eq!(&reply[6..12], &OUR_MAC);
    let arp = etherparse::ArpPacket::from_slice(&reply[14..])
        .unwrap()
        .try_eth_ipv4()
        .unwrap();
    assert_eq!(arp.operation, etherparse::ArpOperation::REPLY);
    assert_eq!(
        (arp.sender_mac, arp.sender_ipv4),
        (OUR_MAC, our_v4().octets())
    );
    assert_eq!(
        (arp.target_mac, arp.target_ipv4),
        (PEER_MAC, peer_v4().octets())
    );
    // The asker learns us from it.
    assert_eq!(
        learn(&reply),
        Some(Neighbour {
            ip: our_v4().into(),
            mac: OUR_MAC
        })
    );

    // Not for us, not a request, or a port without an IPv4 address: no answer.
    let other = frame(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp_packet(
            1,
            (PEER_MAC, peer_v4()),
            ([0; 6], Ipv4Addr::new(10, 20, 5, 99)),
        ),
    );
    assert_eq!(answer(&port(), &other), None);
    assert_eq!(answer(&port(), &reply), None);
    let v6_only = PortAddresses {
        ipv4: None,
        ..port()
    };
    assert_eq!(answer(&v6_only, &request), None);
    // Our own request, looped back.
    let looped = frame(
        [0xff; 6],
        OUR_MAC,
        0x0806,
        &arp_packet(1, (OUR_MAC, peer_v4()), ([0; 6], our_v4())),
    );
    assert_eq!(answer(&port(), &looped), None);
}

#[test]
fn answers_a_neighbour_solicitation_for_its_address() {
    let group = ipv6::solicited_node(our_v6());
    let solicitation = icmpv6_frame(
        ipv6::multicast_mac(group),
        peer_v6(),
        group,
        255,
        nd_message(135, 0, our_v6(), &link_layer_option(1, PEER_MAC)),
    );
    let na = answer(&port(), &solicitation).unwrap();
    assert_eq!(&na[..6], &PEER_MAC, "to the source link-layer address");
    let sliced = etherparse::SlicedPacket::from_ethernet(&na).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6");
    };
    assert_eq!(ip.header().hop_limit(), 255);
    assert_eq!(
        (ip.header().source_addr(), ip.header().destination_addr()),
        (our_v6(), peer_v6())
    );
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6");
    };
    let etherparse::Icmpv6Type::NeighborAdvertisement(header) = icmp.icmp_type() else {
        panic!("not an advertisement");
    };
    assert!(!header.router && header.solicited && header.r#override);
    let expected_sum = icmp
        .icmp_type()
        .calc_checksum(our_v6().octets(), peer_v6().octets(), icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), expected_sum);
    assert_eq!(
        learn(&na),
        Some(Neighbour {
            ip: our_v6().into(),
            mac: OUR_MAC
        })
    );

    // Duplicate address detection (unspecified source): answered to all nodes, S clear.
    let dad = icmpv6_frame(
        ipv6::multicast_mac(group),
        Ipv6Addr::UNSPECIFIED,
        group,
        255,
        nd_message(135, 0, our_v6(), &[]),
    );
    let na = answer(&port(), &dad).unwrap();
    assert_eq!(&na[..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let na_ip = ipv6::Packet::new_checked(&na[14..]).unwrap();
    assert_eq!(na_ip.dst_addr(), ALL_NODES);
    let na_icmp = icmpv6::Packet::new_checked(na_ip.payload()).unwrap();
    assert!(!na_icmp.solicited_flag() && na_icmp.override_flag());

    // Without a source link-layer option: back to the frame's source MAC.
    let bare = icmpv6_frame(
        OUR_MAC,
        peer_v6(),
        our_v6(),
        255,
        nd_message(135, 0, our_v6(), &[]),
    );
    assert_eq!(&answer(&port(), &bare).unwrap()[..6], &PEER_MAC);

    // For another address, or forwarded: no answer.
    let other = icmpv6_frame(
        ipv6::multicast_mac(group),
        peer_v6(),
        group,
        255,
        nd_message(135, 0, "2600:1f18:5::99".parse().unwrap(), &[]),
    );
    assert_eq!(answer(&port(), &other), None);
    let forwarded = icmpv6_frame(
        OUR_MAC,
        peer_v6(),
        our_v6(),
        64,
        nd_message(135, 0, our_v6(), &[]),
    );
    assert_eq!(answer(&port(), &forwarded), None);
}

#[test]
fn answers_an_icmp_echo_request_to_its_address() {
    let data = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let request = echo_request_v4(our_v4(), data);
    let reply = answer(&port(), &request).unwrap();
    assert_eq!((&reply[..6], &reply[6..12]), (&PEER_MAC[..], &OUR_MAC[..]));
    let sliced = etherparse::SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4");
    };
    let header = ip.header();
    assert_eq!(
        header.header_checksum(),
        header.to_header().calc_header_checksum()
    );
    assert_eq!(
        (header.source_addr(), header.destination_addr()),
        (our_v4(), peer_v4())
    );
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        panic!("not ICMP");
    };
    let etherparse::Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
        panic!("not an echo reply");
    };
    assert_eq!((echo.id, echo.seq), (0x1234, 1));
    assert_eq!(icmp.payload(), data);
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );

    // A short request is answered by a padded frame.
    assert_eq!(
        answer(&port(), &echo_request_v4(our_v4(), b""))
            .unwrap()
            .len(),
        60
    );
    // Not to us, a bad checksum, or not a request: no answer.
    assert_eq!(answer(&port(), &echo_request_v4(peer_v4(), data)), None);
    let mut corrupt = request.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert_eq!(answer(&port(), &corrupt), None);
    assert_eq!(answer(&port(), &reply), None);
}

#[test]
fn answers_an_icmpv6_echo_request_to_its_address() {
    let mut message = vec![128, 0, 0, 0, 0xbe, 0xef, 0, 9];
    message.extend_from_slice(b"ping6");
    let request = icmpv6_frame(OUR_MAC, peer_v6(), our_v6(), 64, message.clone());
    let reply = answer(&port(), &request).unwrap();
    let sliced = etherparse::SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6");
    };
    assert_eq!(
        (ip.header().source_addr(), ip.header().destination_addr()),
        (our_v6(), peer_v6())
    );
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6");
    };
    let etherparse::Icmpv6Type::EchoReply(echo) = icmp.icmp_type() else {
        panic!("not an echo reply");
    };
    assert_eq!((echo.id, echo.seq), (0xbeef, 9));
    assert_eq!(icmp.payload(), b"ping6");
    let expected_sum = icmp
        .icmp_type()
        .calc_checksum(our_v6().octets(), peer_v6().octets(), icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), expected_sum);
    assert_eq!(reply.len(), 14 + 40 + 13);

    let to_other = icmpv6_frame(
        OUR_MAC,
        peer_v6(),
        "2600:1f18:5::99".parse().unwrap(),
        64,
        message,
    );
    assert_eq!(answer(&port(), &to_other), None);
    let v4_only = PortAddresses {
        ipv6: None,
        ..port()
    };
    assert_eq!(answer(&v4_only, &request), None);
}

#[test]
fn two_ports_resolve_each_other() {
    let a = port();
    let b = PortAddresses {
        mac: PEER_MAC,
        ipv4: Some(peer_v4()),
        ipv6: Some("2600:1f18:5::1".parse().unwrap()),
    };
    let reply = answer(&b, &arp_request(a.mac, our_v4(), peer_v4())).unwrap();
    assert_eq!(
        learn(&reply),
        Some(Neighbour {
            ip: IpAddr::V4(peer_v4()),
            mac: PEER_MAC
        })
    );
    let b_v6 = b.ipv6.unwrap();
    let advert = answer(&b, &neighbour_solicitation(a.mac, our_v6(), b_v6)).unwrap();
    assert_eq!(&advert[..6], &a.mac);
    assert_eq!(
        learn(&advert),
        Some(Neighbour {
            ip: b_v6.into(),
            mac: PEER_MAC
        })
    );
}

/// Valid frames of every kind handled here, to mutate.
fn samples() -> Vec<Vec<u8>> {
    let group = ipv6::solicited_node(our_v6());
    let mut echo6 = vec![128, 0, 0, 0, 0xbe, 0xef, 0, 9];
    echo6.extend_from_slice(b"ping6");
    vec![
        arp_request(PEER_MAC, peer_v4(), our_v4()).to_vec(),
        neighbour_solicitation(PEER_MAC, peer_v6(), our_v6()).to_vec(),
        advertisement_from_peer(255, 0x60, &link_layer_option(2, PEER_MAC)),
        icmpv6_frame(
            ipv6::multicast_mac(group),
            Ipv6Addr::UNSPECIFIED,
            group,
            255,
            nd_message(135, 0, our_v6(), &[]),
        ),
        echo_request_v4(our_v4(), b"data"),
        icmpv6_frame(OUR_MAC, peer_v6(), our_v6(), 64, echo6),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let _ = learn(&bytes);
        let _ = answer(&port(), &bytes);
    }

    /// Valid frames with bytes changed or cut: never a panic, and any answer is addressed from
    /// the port.
    #[test]
    fn mutated_frames_never_panic(
        sample in 0usize..6,
        edits in proptest::collection::vec((0usize..100, any::<u8>()), 0..4),
        cut in prop_oneof![Just(usize::MAX), 0usize..100],
    ) {
        let mut f = samples()[sample].clone();
        for (at, byte) in edits {
            if let Some(b) = f.get_mut(at) {
                *b = byte;
            }
        }
        f.truncate(cut);
        let _ = learn(&f);
        if let Some(reply) = answer(&port(), &f) {
            prop_assert_eq!(&reply[6..12], &OUR_MAC[..]);
            prop_assert!(reply.len() >= MIN_FRAME_LEN);
        }
    }

    #[test]
    fn every_unmutated_sample_is_understood(sample in 0usize..6) {
        let f = &samples()[sample];
        prop_assert!(learn(f).is_some() || answer(&port(), f).is_some());
    }
}
