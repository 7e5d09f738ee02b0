//! Neighbour resolution and the answers of an addressed port: pure functions from frames to
//! frames, for the control loop (never the data path).
//!
//! - Resolving a next hop: [`arp_request`] and [`neighbour_solicitation`] build the question;
//!   [`learn`] recognises what a frame says about a neighbour's link-layer address (an ARP reply,
//!   request or gratuitous ARP; a neighbour advertisement, or a solicitation carrying its
//!   sender's address).
//! - A port with `kernel = "none"` answers for itself: [`answer`] builds the reply to an ARP
//!   request or neighbour solicitation for the port's address, and to an ICMP or ICMPv6 echo
//!   request to it.
//!
//! # Design
//! Every function takes untrusted bytes and never panics on them (a property test feeds them
//! arbitrary and mutated frames): frames are read through the checked `wire` views, and
//! anything that does not validate is `None`, not an error — on a shared link, frames the broker
//! does not take are the normal case.
//!
//! What is accepted follows the RFCs' receive rules:
//! - ARP (RFC 826): "the sender hardware and protocol addresses are always merged", whatever the
//!   operation, so requests and gratuitous ARP teach as much as replies. A probe (sender address
//!   0.0.0.0, RFC 5227) teaches nothing; a multicast or zero sender MAC is refused.
//! - Neighbour discovery (RFC 4861 §7.1.1, §7.1.2): "The IP Hop Limit field has a value of 255,
//!   i.e., the packet could not possibly have been forwarded by a router", the ICMP checksum is
//!   valid, the code is 0, the target is not multicast, every option has a non-zero length; a
//!   solicitation from the unspecified address goes to a solicited-node group and has no source
//!   link-layer option; an advertisement to a multicast address has the Solicited flag clear.
//!   An advertisement teaches its target's address from its Target Link-Layer Address option
//!   (§7.2.5: without it, "the receiving node SHOULD silently discard the received
//!   advertisement" while resolving); a solicitation teaches its source's address from its
//!   Source Link-Layer Address option (§7.2.3).
//!
//! Frames built here are padded to the Ethernet minimum ([`MIN_FRAME_LEN`], without the FCS):
//! some NICs do not pad short frames themselves.
//!
//! # Limitations
//! - Untagged Ethernet only (addressed ports are cloud or routed ports); IPv6 packets with
//!   extension headers before ICMPv6 are neither learnt from nor answered.
//! - Echo replies carry no IPv4 options (RFC 1122 §3.2.2.6 has a host include Record Route and
//!   Timestamp options "SHOULD"); fragmented echo requests are not answered (no reassembly), nor
//!   are requests to broadcast or multicast addresses.
//! - The broker does not run duplicate address detection for its own addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::flow::ip_proto;
use crate::wire::icmpv6::{Message as Icmpv6Message, NdOptions, nd_option};
use crate::wire::{EtherType, arp, ethernet, icmpv4, icmpv6, ipv4, ipv6};

/// The shortest Ethernet frame, without its FCS: shorter frames are padded to it.
pub const MIN_FRAME_LEN: usize = 60;

/// Length of the frame [`neighbour_solicitation`] builds: Ethernet, IPv6, the solicitation and
/// one source link-layer address option.
pub const SOLICITATION_FRAME_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::ND_LEN + nd_option::LINK_LAYER_ADDR_LEN;

/// RFC 4861: every neighbour discovery message is sent, and must be received, with this hop
/// limit.
const ND_HOP_LIMIT: u8 = 255;

/// Hop limit and TTL of echo replies.
const ECHO_TTL: u8 = 64;

const BROADCAST: ethernet::Address = [0xff; 6];

/// The link-scope all-nodes multicast group (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Who a port is on its link: the addresses it answers for and sends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortAddresses {
    pub mac: ethernet::Address,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// A neighbour's link-layer address, as a frame told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub mac: ethernet::Address,
}

/// The ARP request (broadcast) asking for `target`'s MAC, from a port with `mac` and
/// `sender_ip`.
pub fn arp_request(
    mac: ethernet::Address,
    sender_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> [u8; MIN_FRAME_LEN] {
    let request = arp::Repr {
        operation: arp::Operation::Request,
        sender_mac: mac,
        sender_ip,
        // RFC 826 leaves the target hardware address of a request unspecified; zero is what
        // every stack sends.
        target_mac: [0; 6],
        target_ip: target,
    };
    let mut frame = [0u8; MIN_FRAME_LEN];
    emit_arp(&mut frame, BROADCAST, &request);
    frame
}

/// The neighbour solicitation asking for `target`'s MAC, from a port with `mac` and the address
/// `source`: to `target`'s solicited-node group, with the source link-layer address option (RFC
/// 4861 §7.2.2: it "SHOULD be included" when the source is not unspecified, and the answer
/// needs it to reach us without a solicitation of its own).
pub fn neighbour_solicitation(
    mac: ethernet::Address,
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; SOLICITATION_FRAME_LEN] {
    let group = ipv6::solicited_node(target);
    let mut frame = [0u8; SOLICITATION_FRAME_LEN];
    let icmp = emit_ipv6_icmp(
        &mut frame,
        ipv6::multicast_mac(group),
        mac,
        (source, group),
        ND_HOP_LIMIT,
    );
    let mut ns = icmpv6::Packet::new_unchecked(icmp);
    ns.set_msg_type(Icmpv6Message::NeighbourSolicitation);
    ns.set_code(0);
    ns.set_nd_flags(false, false, false);
    ns.set_target_addr(target);
    icmpv6::write_link_layer_option(ns.nd_options_mut(), nd_option::SOURCE_LINK_LAYER_ADDR, mac);
    ns.fill_checksum(source, group);
    frame
}

/// What `frame` says about a neighbour's link-layer address, if it is an ARP packet or a
/// neighbour solicitation or advertisement that validates (see the module docs).
pub fn learn(frame: &[u8]) -> Option<Neighbour> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EtherType::Arp => {
            let arp = arp_of(frame)?;
            let learnable = matches!(
                arp.operation,
                arp::Operation::Request | arp::Operation::Reply
            ) && !arp.sender_ip.is_unspecified()
                && is_unicast(arp.sender_mac);
            learnable.then_some(Neighbour {
                ip: arp.sender_ip.into(),
                mac: arp.sender_mac,
            })
        }
        EtherType::Ipv6 => {
            let nd = nd_of(frame)?;
            let mac = nd.link_layer_addr.filter(|&mac| is_unicast(mac))?;
            match nd.message {
                Icmpv6Message::NeighbourAdvertisement => Some(Neighbour {
                    ip: nd.target.into(),
                    mac,
                }),
                // A solicitation from the unspecified address has no link-layer option (checked
                // by `nd_of`), so `mac` belongs to a real source address here.
                _ => Some(Neighbour {
                    ip: nd.src.into(),
                    mac,
                }),
            }
        }
        _ => None,
    }
}

/// The frame a port with `port`'s addresses sends in answer to `frame`, when `frame` is an ARP
/// request or neighbour solicitation for one of its addresses, or an ICMP or ICMPv6 echo request
/// to one of them; `None` for anything else.
pub fn answer(port: &PortAddresses, frame: &[u8]) -> Option<Vec<u8>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.source() == port.mac {
        // Our own frame looped back: never answer ourselves.
        return None;
    }
    match eth.ethertype() {
        EtherType::Arp => answer_arp(port, frame),
        EtherType::Ipv4 => answer_echo_v4(port, frame),
        EtherType::Ipv6 => answer_ipv6(port, frame),
        _ => None,
    }
}

/// RFC 826: "swap hardware and protocol fields, putting the local hardware and protocol
/// addresses in the sender fields. Set the ar$op field to ares_op$REPLY. Send the packet to the
/// (new) target hardware address".
fn answer_arp(port: &PortAddresses, frame: &[u8]) -> Option<Vec<u8>> {
    let own = port.ipv4?;
    let request = arp_of(frame)?;
    if request.operation != arp::Operation::Request
        || request.target_ip != own
        || request.sender_ip == own
        || !is_unicast(request.sender_mac)
    {
        return None;
    }
    let reply = arp::Repr {
        operation: arp::Operation::Reply,
        sender_mac: port.mac,
        sender_ip: own,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    let mut out = vec![0u8; MIN_FRAME_LEN];
    emit_arp(&mut out, request.sender_mac, &reply);
    Some(out)
}

/// RFC 792: "To form an echo reply message, the source and destination addresses are simply
/// reversed, the type code changed to 0, and the checksum recomputed."
fn answer_echo_v4(port: &PortAddresses, frame: &[u8]) -> Option<Vec<u8>> {
    let own = port.ipv4?;
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    if ip.dst_addr() != own
        || ip.protocol() != ip_proto::ICMP
        || ip.is_fragment()
        || !ip.verify_checksum()
        || usize::from(ip.total_len()) > eth.payload().len()
    {
        return None;
    }
    let request = icmpv4::Packet::new_checked(ip.payload()).ok()?;
    if request.msg_type() != icmpv4::Message::EchoRequest
        || request.code() != 0
        || !request.verify_checksum()
    {
        return None;
    }
    let icmp_len = ip.payload().len();
    let ip_len = ipv4::MIN_HEADER_LEN + icmp_len;
    let mut out = vec![0u8; (ethernet::HEADER_LEN + ip_len).max(MIN_FRAME_LEN)];
    emit_ethernet(&mut out, eth.source(), port.mac, EtherType::Ipv4);
    let mut reply_ip = ipv4::Packet::new_unchecked(&mut out[ethernet::HEADER_LEN..]);
    reply_ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
    reply_ip.set_dscp_ecn(0);
    reply_ip.set_total_len(ip_len as u16);
    reply_ip.set_ident(ip.ident());
    reply_ip.set_fragmentation(false, false, 0);
    reply_ip.set_ttl(ECHO_TTL);
    reply_ip.set_protocol(ip_proto::ICMP);
    reply_ip.set_src_addr(own);
    reply_ip.set_dst_addr(ip.src_addr());
    reply_ip.fill_checksum();
    let mut reply = icmpv4::Packet::new_unchecked(reply_ip.payload_mut());
    reply.set_msg_type(icmpv4::Message::EchoReply);
    reply.set_code(0);
    reply.set_echo_ident(request.echo_ident());
    reply.set_echo_seq_no(request.echo_seq_no());
    reply.data_mut().copy_from_slice(request.data());
    reply.fill_checksum();
    Some(out)
}

fn answer_ipv6(port: &PortAddresses, frame: &[u8]) -> Option<Vec<u8>> {
    let own = port.ipv6?;
    let (ip, icmp) = icmpv6_of(frame)?;
    match icmp.msg_type() {
        Icmpv6Message::NeighbourSolicitation => {
            let nd = nd_of(frame)?;
            (nd.target == own).then(|| advertisement(port.mac, own, &nd))
        }
        Icmpv6Message::EchoRequest if ip.dst_addr() == own && icmp.code() == 0 => {
            let eth = ethernet::Frame::new_checked(frame).ok()?;
            Some(echo_reply_v6(
                port.mac,
                own,
                eth.source(),
                ip.src_addr(),
                &icmp,
            ))
        }
        _ => None,
    }
}

/// RFC 4861 §7.2.4: "If the source of the solicitation is the unspecified address, the node
/// MUST set the Solicited flag to zero and multicast the advertisement to the all-nodes address.
/// Otherwise, the node MUST set the Solicited flag to one and unicast the advertisement to the
/// Source Address of the solicitation." The Override flag is set (the address is the port's
/// own, not an anycast one) and the target link-layer address option always included.
fn advertisement(mac: ethernet::Address, own: Ipv6Addr, ns: &Nd) -> Vec<u8> {
    let (dst, dst_mac, solicited) = if ns.src.is_unspecified() {
        (ALL_NODES, ipv6::multicast_mac(ALL_NODES), false)
    } else {
        // The solicitation's source link-layer option, else the frame it came in.
        (ns.src, ns.link_layer_addr.unwrap_or(ns.eth_src), true)
    };
    let mut out = vec![0u8; SOLICITATION_FRAME_LEN];
    let icmp = emit_ipv6_icmp(&mut out, dst_mac, mac, (own, dst), ND_HOP_LIMIT);
    let mut na = icmpv6::Packet::new_unchecked(icmp);
    na.set_msg_type(Icmpv6Message::NeighbourAdvertisement);
    na.set_code(0);
    na.set_nd_flags(false, solicited, true);
    na.set_target_addr(ns.target);
    icmpv6::write_link_layer_option(na.nd_options_mut(), nd_option::TARGET_LINK_LAYER_ADDR, mac);
    na.fill_checksum(own, dst);
    out
}

/// RFC 4443 §4.2: "The data received in the ICMPv6 Echo Request message MUST be returned
/// entirely and unmodified in the ICMPv6 Echo Reply message."
fn echo_reply_v6(
    mac: ethernet::Address,
    own: Ipv6Addr,
    dst_mac: ethernet::Address,
    dst: Ipv6Addr,
    request: &icmpv6::Packet<&[u8]>,
) -> Vec<u8> {
    let icmp_len = icmpv6::HEADER_LEN + request.echo_data().len();
    let len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len;
    let mut out = vec![0u8; len.max(MIN_FRAME_LEN)];
    let icmp = emit_ipv6_icmp(&mut out[..len], dst_mac, mac, (own, dst), ECHO_TTL);
    let mut reply = icmpv6::Packet::new_unchecked(icmp);
    reply.set_msg_type(Icmpv6Message::EchoReply);
    reply.set_code(0);
    reply.set_echo_ident(request.echo_ident());
    reply.set_echo_seq_no(request.echo_seq_no());
    reply.echo_data_mut().copy_from_slice(request.echo_data());
    reply.fill_checksum(own, dst);
    out
}

/// Writes an Ethernet header into the start of `out`.
fn emit_ethernet(
    out: &mut [u8],
    dst: ethernet::Address,
    src: ethernet::Address,
    ethertype: EtherType,
) {
    let mut eth = ethernet::Frame::new_unchecked(out);
    eth.set_destination(dst);
    eth.set_source(src);
    eth.set_ethertype(ethertype);
}

/// Writes an Ethernet frame carrying `arp` into `out` (padding left as it is).
fn emit_arp(out: &mut [u8], dst: ethernet::Address, arp: &arp::Repr) {
    emit_ethernet(out, dst, arp.sender_mac, EtherType::Arp);
    arp.emit(&mut arp::Packet::new_unchecked(
        &mut out[ethernet::HEADER_LEN..],
    ));
}

/// Writes Ethernet and IPv6 headers for an ICMPv6 message filling the rest of `out`, and
/// returns that rest (the message, to be written).
fn emit_ipv6_icmp(
    out: &mut [u8],
    dst_mac: ethernet::Address,
    src_mac: ethernet::Address,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    hop_limit: u8,
) -> &mut [u8] {
    emit_ethernet(out, dst_mac, src_mac, EtherType::Ipv6);
    let payload_len = out.len() - ethernet::HEADER_LEN - ipv6::HEADER_LEN;
    let mut ip = ipv6::Packet::new_unchecked(&mut out[ethernet::HEADER_LEN..]);
    ip.set_version_class_flow(0, 0);
    ip.set_payload_len(payload_len as u16);
    ip.set_next_header(ip_proto::ICMPV6);
    ip.set_hop_limit(hop_limit);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    &mut out[ethernet::HEADER_LEN + ipv6::HEADER_LEN..]
}

/// The Ethernet/IPv4 ARP packet in `frame`, if it is one.
fn arp_of(frame: &[u8]) -> Option<arp::Repr> {
    let packet = arp::Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
    arp::Repr::parse(&packet)
}

/// An IPv6 packet and the ICMPv6 message it carries, both borrowed from a frame.
type Icmpv6Packet<'a> = (ipv6::Packet<&'a [u8]>, icmpv6::Packet<&'a [u8]>);

/// The IPv6 header and the ICMPv6 message right after it (no extension headers), cut at the
/// payload length, its checksum verified.
fn icmpv6_of(frame: &[u8]) -> Option<Icmpv6Packet<'_>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv6 {
        return None;
    }
    let l3 = frame.get(ethernet::HEADER_LEN..)?;
    let ip = ipv6::Packet::new_checked(l3).ok()?;
    let payload_len = usize::from(ip.payload_len());
    if ip.next_header() != ip_proto::ICMPV6 || ip.payload().len() < payload_len {
        return None;
    }
    let message = l3.get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + payload_len)?;
    let icmp = icmpv6::Packet::new_checked(message).ok()?;
    icmp.verify_checksum(ip.src_addr(), ip.dst_addr())
        .then_some((ip, icmp))
}

/// A neighbour solicitation or advertisement that passed RFC 4861's receive checks.
#[derive(Clone, Copy, Debug)]
struct Nd {
    message: Icmpv6Message,
    eth_src: ethernet::Address,
    src: Ipv6Addr,
    target: Ipv6Addr,
    /// The source (solicitation) or target (advertisement) link-layer address option.
    link_layer_addr: Option<ethernet::Address>,
}

/// The neighbour solicitation or advertisement in `frame`, validated (RFC 4861 §7.1.1, §7.1.2).
fn nd_of(frame: &[u8]) -> Option<Nd> {
    let (ip, icmp) = icmpv6_of(frame)?;
    let message = icmp.msg_type();
    let option_kind = match message {
        Icmpv6Message::NeighbourSolicitation => nd_option::SOURCE_LINK_LAYER_ADDR,
        Icmpv6Message::NeighbourAdvertisement => nd_option::TARGET_LINK_LAYER_ADDR,
        _ => return None,
    };
    let target = icmp.target_addr()?;
    if ip.hop_limit() != ND_HOP_LIMIT || icmp.code() != 0 || target.is_multicast() {
        return None;
    }
    let mut link_layer_addr = None;
    for option in NdOptions::new(icmp.nd_options()) {
        let option = option.ok()?;
        if option.kind == option_kind {
            link_layer_addr = Some(option.link_layer_addr()?);
        }
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let valid = match message {
        Icmpv6Message::NeighbourSolicitation => {
            !src.is_unspecified() || (dst == ipv6::solicited_node(dst) && link_layer_addr.is_none())
        }
        _ => !dst.is_multicast() || !icmp.solicited_flag(),
    };
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    valid.then_some(Nd {
        message,
        eth_src: eth.source(),
        src,
        target,
        link_layer_addr,
    })
}

/// Whether `mac` can be a station's address: not multicast or broadcast (the I/G bit clear),
/// not all zeros.
fn is_unicast(mac: ethernet::Address) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

#[cfg(test)]
mod tests;
