//! Local traffic of an addressed port: which received frames are for the port itself, to be
//! handed to the control side (the outcome `control`), and which are mirror traffic for the
//! data path.
//!
//! # Design
//! A frame is for the port ([`Local::Control`]) when it is:
//! - ARP, any (the kernel side, or the broker for `kernel = "none"`, owns the port's ARP);
//! - an IPv6 neighbour discovery message, any (IPv6's ARP: router and neighbour solicitations
//!   and advertisements, redirects);
//! - other ICMPv6 to the port's IPv6 address, its solicited-node group (RFC 4291 §2.7.1), the
//!   all-nodes group, or a link-local unicast address (the kernel interface's own link-local
//!   address is its business, not the broker's configuration, and it is what the kernel resolves
//!   a link-local gateway such as `fe80::1` from);
//! - ICMP to the port's IPv4 address;
//! - TCP to one of the port's addresses, and UDP to one of them **except to a decapsulation
//!   port** (the VXLAN and GENEVE ports of `[decap]`, [`DecapConfig::is_tunnel_port`]): mirror
//!   traffic is UDP to exactly those ports, and stays on the data path.
//!
//! Everything else is [`Local::DataPath`]: the decapsulation stage decides what it is (mirror
//! traffic, or a frame it counts as not a tunnel or malformed). A frame too malformed to tell
//! is data path too, so the decap stage counts it with its reason rather than the kernel
//! seeing it.
//!
//! The common case costs a few comparisons: a VXLAN packet to the port's IPv4 address is
//! recognised by its EtherType, the IPv4 header checks, its destination address, its protocol
//! and its UDP destination port, all at fixed offsets of the first segment; nothing is walked
//! unless an IPv6 packet carries extension headers.
//!
//! Fragments: a UDP fragment to the port stays on the data path (a non-first fragment has no
//! port to tell mirror traffic from the port's own, and the decap stage already counts outer
//! fragments as `outer_fragment`); ICMP and TCP fragments go to the control side, whose kernel
//! reassembles them.
//!
//! # Limitations
//! - Untagged frames only: an addressed port is a cloud or routed port; a VLAN-tagged frame is
//!   data path.
//! - An IPv6 packet whose extension-header chain is cut or too long is data path.
//! - Broadcast and multicast IPv4 (DHCP, IGMP) are data path: the port's addresses are static.

use std::net::Ipv6Addr;

use super::decap::DecapConfig;
use crate::flow::ip_proto;
use crate::neighbour::{ALL_NODES, PortAddresses};
use crate::wire::{EtherType, arp, ethernet, icmpv6, ipv4, ipv6, udp};

/// Where a frame received on an addressed port goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Local {
    /// Mirror traffic, or anything else the data path decides on.
    DataPath,
    /// For the port itself: to the control side.
    Control,
}

/// Classifies `frame` (the first segment of a frame received on the port with `port`'s
/// addresses; `decap` knows the decapsulation ports).
#[inline]
pub fn classify(port: &PortAddresses, decap: &DecapConfig, frame: &[u8]) -> Local {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return Local::DataPath;
    };
    let l3 = &frame[ethernet::HEADER_LEN..];
    match eth.ethertype() {
        EtherType::Arp => Local::Control,
        EtherType::Ipv4 => match port.ipv4 {
            Some(own) => match ipv4::Packet::new_checked(l3) {
                Ok(ip) if ip.dst_addr() == own => {
                    transport(decap, ip.protocol(), ip.is_fragment(), ip.payload())
                }
                _ => Local::DataPath,
            },
            None => Local::DataPath,
        },
        EtherType::Ipv6 => classify_ipv6(port.ipv6, decap, l3),
        _ => Local::DataPath,
    }
}

/// Whether `frame`, which the port's kernel side sent, is the port's own to send: from the
/// port's MAC and, for ARP and IP, from one of its addresses (for IPv6 also its link-local
/// addresses, which the kernel chooses, and the unspecified address of duplicate address
/// detection; for ARP also 0.0.0.0, a probe). Anything else (a frame the kernel would forward,
/// another protocol) must not leave through the port.
pub fn sent_by(port: &PortAddresses, frame: &[u8]) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return false;
    };
    if eth.source() != port.mac {
        return false;
    }
    let l3 = &frame[ethernet::HEADER_LEN..];
    match eth.ethertype() {
        EtherType::Arp => arp::Packet::new_checked(l3)
            .ok()
            .and_then(|packet| arp::Repr::parse(&packet))
            .is_some_and(|arp| {
                arp.sender_mac == port.mac
                    && (Some(arp.sender_ip) == port.ipv4 || arp.sender_ip.is_unspecified())
            }),
        EtherType::Ipv4 => {
            ipv4::Packet::new_checked(l3).is_ok_and(|ip| Some(ip.src_addr()) == port.ipv4)
        }
        EtherType::Ipv6 => ipv6::Packet::new_checked(l3).is_ok_and(|ip| {
            let src = ip.src_addr();
            Some(src) == port.ipv6 || src.is_unicast_link_local() || src.is_unspecified()
        }),
        _ => false,
    }
}

fn classify_ipv6(own: Option<Ipv6Addr>, decap: &DecapConfig, l3: &[u8]) -> Local {
    let Ok(ip) = ipv6::Packet::new_checked(l3) else {
        return Local::DataPath;
    };
    let payload = ip.payload();
    let (protocol, l4, fragment) = if ipv6::is_extension_header(ip.next_header()) {
        match ipv6::walk_extension_headers(ip.next_header(), payload) {
            Ok(chain) => (
                chain.protocol,
                &payload[chain.len..],
                chain.fragment.is_some_and(|f| f.is_fragment()),
            ),
            Err(_) => return Local::DataPath,
        }
    } else {
        (ip.next_header(), payload, false)
    };
    let dst = ip.dst_addr();
    let to_own = own == Some(dst);
    if protocol == ip_proto::ICMPV6 {
        let neighbour_discovery = !fragment
            && l4
                .first()
                .is_some_and(|&t| icmpv6::Message::from(t).is_neighbour_discovery());
        let for_us = to_own
            || dst == ALL_NODES
            || dst.is_unicast_link_local()
            || own.is_some_and(|own| ipv6::solicited_node(own) == dst);
        return if neighbour_discovery || for_us {
            Local::Control
        } else {
            Local::DataPath
        };
    }
    if to_own {
        transport(decap, protocol, fragment, l4)
    } else {
        Local::DataPath
    }
}

/// The fate of a packet to one of the port's addresses, by its transport.
#[inline]
fn transport(decap: &DecapConfig, protocol: u8, fragment: bool, l4: &[u8]) -> Local {
    match protocol {
        ip_proto::ICMP | ip_proto::ICMPV6 | ip_proto::TCP => Local::Control,
        ip_proto::UDP if !fragment => match udp::Packet::new_checked(l4) {
            Ok(datagram) if !decap.is_tunnel_port(datagram.dst_port()) => Local::Control,
            _ => Local::DataPath,
        },
        _ => Local::DataPath,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{
        aws_vxlan, ethernet, inner_tcp4, ipv4, ipv6, tcp, udp, v4, v6, vxlan_header,
    };

    const OWN_V4: &str = "10.0.0.100"; // the destination of `testing::aws_vxlan`
    const OWN_V6: &str = "2600:1f18:5::10";
    const PEER_V4: &str = "10.0.1.10";
    const PEER_V6: &str = "2600:1f18:5::1";

    fn port() -> PortAddresses {
        PortAddresses {
            mac: [2, 0, 0, 0, 0, 2],
            ipv4: Some(OWN_V4.parse().unwrap()),
            ipv6: Some(OWN_V6.parse().unwrap()),
        }
    }

    fn decap() -> DecapConfig {
        DecapConfig::new(&[4789], &[6081], None, false)
    }

    fn classify_frame(frame: &[u8]) -> Local {
        classify(&port(), &decap(), frame)
    }

    fn v4_frame(dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
        ethernet(0x0800, &ipv4(v4(PEER_V4), v4(dst), protocol, payload))
    }

    fn v6_frame(dst: &str, next_header: u8, payload: &[u8]) -> Vec<u8> {
        ethernet(0x86dd, &ipv6(v6(PEER_V6), v6(dst), next_header, payload))
    }

    fn tcp_inner() -> Vec<u8> {
        inner_tcp4(v4("192.0.2.1"), v4("192.0.2.2"), 40000, 443, 1, b"x")
    }

    /// An echo request, a neighbour solicitation, an MLD query: ICMPv6 messages by type.
    fn icmpv6_message(msg_type: u8) -> Vec<u8> {
        let mut m = vec![msg_type, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&v6(OWN_V6));
        m
    }

    #[test]
    fn mirror_traffic_to_the_port_stays_on_the_data_path() {
        let vxlan = aws_vxlan(v4(PEER_V4), 101, &tcp_inner());
        assert_eq!(classify_frame(&vxlan), Local::DataPath);
        let mut geneve = vec![0x00, 0x00, 0x65, 0x58, 0, 0, 7, 0];
        geneve.extend_from_slice(&tcp_inner());
        assert_eq!(
            classify_frame(&v4_frame(OWN_V4, 17, &udp(50000, 6081, &geneve))),
            Local::DataPath
        );
        let mut tunnel = vxlan_header(5).to_vec();
        tunnel.extend_from_slice(&tcp_inner());
        assert_eq!(
            classify_frame(&v6_frame(OWN_V6, 17, &udp(50000, 4789, &tunnel))),
            Local::DataPath
        );
    }

    #[test]
    fn arp_and_neighbour_discovery_are_always_control() {
        let arp = ethernet(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(classify_frame(&arp), Local::Control);
        let no_addresses = PortAddresses {
            ipv4: None,
            ipv6: None,
            ..port()
        };
        assert_eq!(classify(&no_addresses, &decap(), &arp), Local::Control);
        for msg_type in [133, 134, 135, 136, 137] {
            let to_group = v6_frame("ff02::1:ff00:10", 58, &icmpv6_message(msg_type));
            assert_eq!(classify_frame(&to_group), Local::Control, "type {msg_type}");
            let elsewhere = v6_frame("2600:1f18:9::9", 58, &icmpv6_message(msg_type));
            assert_eq!(
                classify_frame(&elsewhere),
                Local::Control,
                "type {msg_type}"
            );
        }
    }

    #[test]
    fn icmpv6_to_the_port_its_groups_or_link_local_is_control() {
        let echo = icmpv6_message(128);
        for dst in [OWN_V6, "ff02::1:ff00:10", "ff02::1", "fe80::1234"] {
            assert_eq!(
                classify_frame(&v6_frame(dst, 58, &echo)),
                Local::Control,
                "{dst}"
            );
        }
        for dst in ["2600:1f18:5::11", "ff02::1:ff00:11", "ff02::16"] {
            assert_eq!(
                classify_frame(&v6_frame(dst, 58, &echo)),
                Local::DataPath,
                "{dst}"
            );
        }
    }

    #[test]
    fn icmp_tcp_and_udp_to_the_port_are_control() {
        let echo = [8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(classify_frame(&v4_frame(OWN_V4, 1, &echo)), Local::Control);
        let syn = tcp(50000, 8080, 1, b"");
        assert_eq!(classify_frame(&v4_frame(OWN_V4, 6, &syn)), Local::Control);
        assert_eq!(classify_frame(&v6_frame(OWN_V6, 6, &syn)), Local::Control);
        let dns = udp(53, 40000, b"answer");
        assert_eq!(classify_frame(&v4_frame(OWN_V4, 17, &dns)), Local::Control);
        assert_eq!(classify_frame(&v6_frame(OWN_V6, 17, &dns)), Local::Control);
    }

    #[test]
    fn traffic_to_other_addresses_is_data_path() {
        let syn = tcp(50000, 8080, 1, b"");
        assert_eq!(classify_frame(&v4_frame(PEER_V4, 6, &syn)), Local::DataPath);
        assert_eq!(
            classify_frame(&v4_frame(PEER_V4, 1, &[8, 0, 0, 0, 0, 1, 0, 1])),
            Local::DataPath
        );
        assert_eq!(classify_frame(&v6_frame(PEER_V6, 6, &syn)), Local::DataPath);
        assert_eq!(
            classify_frame(&v4_frame("255.255.255.255", 17, &udp(68, 67, b""))),
            Local::DataPath
        );
        // GRE, ESP or anything else to the port: not in the list, so the data path decides.
        assert_eq!(
            classify_frame(&v4_frame(OWN_V4, 47, &[0; 8])),
            Local::DataPath
        );
        // A port without an IPv4 address owns no IPv4 traffic.
        let v6_only = PortAddresses {
            ipv4: None,
            ..port()
        };
        assert_eq!(
            classify(&v6_only, &decap(), &v4_frame(OWN_V4, 6, &syn)),
            Local::DataPath
        );
    }

    #[test]
    fn fragments_to_the_port() {
        let syn = tcp(50000, 8080, 1, b"");
        let mut tcp_fragment = v4_frame(OWN_V4, 6, &syn);
        tcp_fragment[20] = 0x20; // MF
        assert_eq!(classify_frame(&tcp_fragment), Local::Control);
        let mut udp_fragment = v4_frame(OWN_V4, 17, &udp(53, 40000, b"answer"));
        udp_fragment[20] = 0x20;
        assert_eq!(classify_frame(&udp_fragment), Local::DataPath);
        // IPv6: a Fragment header (offset 0, M set) in front of UDP.
        let mut chain = vec![17, 0, 0, 1, 0, 0, 0, 9];
        chain.extend_from_slice(&udp(53, 40000, b"answer"));
        assert_eq!(
            classify_frame(&v6_frame(OWN_V6, 44, &chain)),
            Local::DataPath
        );
        chain[0] = 6;
        let cut = chain.len() - 8;
        chain[8..].copy_from_slice(&tcp(50000, 8080, 1, b"")[..cut]);
        assert_eq!(
            classify_frame(&v6_frame(OWN_V6, 44, &chain)),
            Local::Control
        );
    }

    #[test]
    fn extension_headers_are_walked() {
        // Hop-by-Hop (Router Alert, as MLD uses) in front of an MLD query to all nodes.
        let mut chain = vec![58, 0, 5, 2, 0, 0, 1, 0];
        chain.extend_from_slice(&icmpv6_message(130));
        assert_eq!(
            classify_frame(&v6_frame("ff02::1", 0, &chain)),
            Local::Control
        );
        // Hop-by-Hop in front of VXLAN to the port.
        let mut tunnel = vxlan_header(5).to_vec();
        tunnel.extend_from_slice(&tcp_inner());
        let mut chain = vec![17, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&udp(50000, 4789, &tunnel));
        assert_eq!(
            classify_frame(&v6_frame(OWN_V6, 0, &chain)),
            Local::DataPath
        );
        // A chain cut short.
        assert_eq!(
            classify_frame(&v6_frame(OWN_V6, 0, &[17, 4, 0, 0])),
            Local::DataPath
        );
    }

    #[test]
    fn malformed_and_non_ip_frames_are_data_path() {
        let vxlan = aws_vxlan(v4(PEER_V4), 101, &tcp_inner());
        for cut in [0, 13, 14, 33, 41] {
            assert_eq!(
                classify_frame(&vxlan[..cut]),
                Local::DataPath,
                "cut at {cut}"
            );
        }
        let tagged = {
            let mut f = vxlan[..12].to_vec();
            f.extend_from_slice(&[0x81, 0x00, 0, 5]);
            f.extend_from_slice(&vxlan[12..]);
            f
        };
        assert_eq!(classify_frame(&tagged), Local::DataPath);
        assert_eq!(classify_frame(&ethernet(0x88cc, &[0; 40])), Local::DataPath);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = classify_frame(&bytes);
        }

        /// Every packet to a VXLAN or GENEVE port at the port's address, whatever it carries and from
        /// whomever, stays on the data path.
        #[test]
        fn every_tunnel_packet_to_the_port_is_data_path(
            source: [u8; 4], vni in 0u32..(1 << 24), inner in proptest::collection::vec(any::<u8>(), 14..80),
            geneve_port: bool, ipv6_outer: bool,
        ) {
            let port_number = if geneve_port { 6081 } else { 4789 };
            let mut tunnel = vxlan_header(vni).to_vec();
            tunnel.extend_from_slice(&inner);
            let datagram = udp(50000, port_number, &tunnel);
            let frame = if ipv6_outer {
                v6_frame(OWN_V6, 17, &datagram)
            } else {
                ethernet(0x0800, &ipv4(source, v4(OWN_V4), 17, &datagram))
            };
            prop_assert_eq!(classify_frame(&frame), Local::DataPath);
        }

        /// TCP to the port's address is control, whatever the ports.
        #[test]
        fn every_tcp_segment_to_the_port_is_control(src_port: u16, dst_port: u16, source: [u8; 4]) {
            let segment = tcp(src_port, dst_port, 1, b"");
            let frame = ethernet(0x0800, &ipv4(source, v4(OWN_V4), 6, &segment));
            prop_assert_eq!(classify_frame(&frame), Local::Control);
        }
    }

    #[test]
    fn the_kernel_side_sends_only_from_the_ports_mac_and_addresses() {
        let port = PortAddresses {
            mac: [2, 0, 0, 0, 0, 0x10],
            ipv4: Some("10.20.5.10".parse().unwrap()),
            ipv6: Some("2600:1f18:5::10".parse().unwrap()),
        };
        let own_arp = crate::neighbour::arp_request(
            port.mac,
            port.ipv4.unwrap(),
            "10.20.5.1".parse().unwrap(),
        );
        assert!(sent_by(&port, &own_arp));
        let foreign = crate::neighbour::arp_request(
            [2, 0, 0, 0, 0, 0x11],
            port.ipv4.unwrap(),
            "10.20.5.1".parse().unwrap(),
        );
        assert!(!sent_by(&port, &foreign), "another MAC");
        let spoofed = crate::neighbour::arp_request(
            port.mac,
            "10.20.5.11".parse().unwrap(),
            "10.20.5.1".parse().unwrap(),
        );
        assert!(!sent_by(&port, &spoofed), "another sender address");
        let solicitation = crate::neighbour::neighbour_solicitation(
            port.mac,
            "fe80::10".parse().unwrap(),
            "fe80::1".parse().unwrap(),
        );
        assert!(sent_by(&port, &solicitation), "from a link-local address");
        let from_other = crate::neighbour::neighbour_solicitation(
            port.mac,
            "2600:1f18:5::11".parse().unwrap(),
            "fe80::1".parse().unwrap(),
        );
        assert!(!sent_by(&port, &from_other));
        assert!(!sent_by(&port, &[0u8; 10]), "not a frame");
    }
}
