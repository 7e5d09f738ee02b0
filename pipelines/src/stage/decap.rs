//! Decapsulation: from a mirrored tunnel packet to the customer's frame inside it.
//!
//! ```text
//! outer Ethernet [VLAN [VLAN]] IPv4|IPv6 [ext…] UDP ─┬─ VXLAN  ──────────────── Ethernet frame
//!                                                    └─ GENEVE [options] ─┬──── Ethernet frame
//!                                                                         └──── bare IPv4/IPv6
//! and, when that frame is itself IP/UDP to a tunnel port (AWS GWLB: GENEVE carrying the
//! Traffic Mirroring VXLAN), once or twice more.
//! ```
//!
//! # Design
//! One call per packet, no allocation, no copy of the payload: the headers are parsed in the
//! first segment, the outcome is returned as data (`Err(Outcome)`, as VPP's error next-node), and
//! on success the outer headers are removed by moving the packet's start
//! ([`PacketBuf::strip_front`]) and its end ([`PacketBuf::truncate`]). Parsing is read-only until
//! the very end, so a packet that is dropped is never half-modified.
//!
//! **Who is trusted.** The outermost IP source is the sender of the mirror traffic; it is checked
//! against `allowed_sources` as soon as the outer IP header is known to be well-formed, before any
//! byte after it is interpreted, so a host outside the allowlist is counted as `source_denied`
//! whatever it sends behind its IP header. Lookups are a binary search over the CIDRs compiled into
//! sorted, merged address ranges: O(log n) per packet, however long the list.
//!
//! With `pass_untunneled` the allowlist is about who may send *tunnels*: on a SPAN port or TAP the
//! untunnelled frames come from the switch's mirror, and their IP source is the monitored host,
//! not a sender to trust or refuse. So a denied source's frame is read on to its UDP destination
//! port: to a tunnel port it is `source_denied` (before the tunnel header is read), anything else
//! is untunnelled and passed like every other untunnelled frame; a malformed outer header stays
//! `malformed`, as for any untunnelled frame.
//!
//! **Which layers can make a packet malformed.** Only the outermost tunnel: its headers were
//! written by the cloud, and a lie there (a length past the frame, a fragment, a VXLAN header
//! without a VNI) means the packet cannot be decapsulated. An inner layer that looks like a
//! tunnel (IP/UDP to a VXLAN or GENEVE port) but does not parse as one is the customer's own
//! mirrored packet — malformed or not, it is what an IDS wants to see — so it is delivered as the
//! innermost frame — even when what it carries is empty: the customer's packet is delivered
//! as it was mirrored. Two bounds protect the broker: the *outermost* tunnel must carry at
//! least an Ethernet header's worth of bytes (`inner_too_short`: there is no customer frame to
//! deliver; for bare IP in GENEVE, at least one byte of IP packet, delivered behind the
//! synthetic Ethernet header below), and at most [`MAX_TUNNEL_DEPTH`] tunnels are removed
//! (`tunnel_too_deep`: a VXLAN-in-VXLAN-in-… bomb is dropped and counted, not followed).
//!
//! **GENEVE's O and C bits** (a control message; critical options present) are reported by
//! [`crate::wire::geneve`] and not acted on: a passive broker does not interpret options, and
//! dropping such packets would hide from the analyzers exactly the traffic that carries them.
//!
//! **Checksums are not verified** (outer IPv4 header checksum, outer UDP checksum; UDP checksum 0
//! is accepted). The NIC or the cloud fabric has already verified or recomputed them on the way
//! in; AWS sends VXLAN with UDP checksum 0 anyway; and verifying the UDP checksum means reading
//! every payload byte of every packet, doubling the memory traffic of a stage that otherwise
//! touches only headers. Corruption inside the headers is caught by the length checks; corruption
//! of the inner payload is the analyzer's business, which sees the packet as it was mirrored.
//!
//! **Untunneled frames.** A frame that is not a tunnel (non-IP, non-UDP, UDP to another port) is
//! `NotTunnel`, or `Ok(Untunneled)` (unchanged) when untunneled frames are passed to a session.
//! An outer Ethernet/VLAN/IP/UDP header that is *malformed* stays `Malformed` even then: the
//! session behind `pass_untunneled` would parse the same broken header, and counting it as
//! malformed tells the operator why.
//!
//! **Bare IP in GENEVE.** GENEVE may carry IPv4 or IPv6 without an Ethernet header (protocol type
//! 0x0800 / 0x86DD). Every later stage and every analyzer expects Ethernet, so a fixed Ethernet
//! header ([`SYNTHETIC_DESTINATION`], [`SYNTHETIC_SOURCE`], EtherType from the protocol type) is
//! written in place into the last 14 bytes of the stripped headers, which always exist (outer
//! Ethernet, IP, UDP and GENEVE precede the inner packet), and the packet then starts there.
//!
//! # Limitations
//! - Headers must lie in the first segment (DPDK's first segment holds 2 KiB or more; tunnel
//!   headers are at most a few hundred bytes). A header cut by a segment boundary is reported
//!   as truncated.
//! - Outer fragments are not reassembled (`outer_fragment`). An IPv6 atomic fragment (Fragment
//!   header with offset 0 and M 0, RFC 6946) is a whole packet and is decapsulated.
//! - A customer's own VXLAN/GENEVE traffic to a configured port, mirrored inside the cloud's
//!   tunnel, is decapsulated too (it cannot be told from a nested delivery tunnel); the VNI and
//!   mirror source then are the customer's.
//! - A UDP port listed both as VXLAN and as GENEVE is treated as VXLAN.
//! - The allowlist compares addresses as they are: an IPv4-mapped IPv6 source (`::ffff:a.b.c.d`)
//!   matches IPv6 CIDRs only.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::buf::PacketBuf;
use crate::flow::ip_proto;
use crate::outcome::{Outcome, Reason};
use crate::wire::{self, EtherType, ethernet, geneve, ipv4, ipv6, udp, vlan, vxlan};

/// The most tunnels removed from one packet. AWS GWLB mirror traffic is two deep (GENEVE carrying
/// VXLAN); one more level leaves room for a provider that wraps that again. Beyond it the packet
/// is a decapsulation bomb, not a delivery path.
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// Destination MAC of the Ethernet header written in front of a bare IP packet from GENEVE: a
/// locally administered unicast address (bit 1 of the first byte set, bit 0 clear) that no
/// vendor owns, so analyzers never mistake it for a real station.
pub const SYNTHETIC_DESTINATION: ethernet::Address = [0x02, 0, 0, 0, 0, 0x02];

/// Source MAC of the synthesised Ethernet header (locally administered, like the destination).
pub const SYNTHETIC_SOURCE: ethernet::Address = [0x02, 0, 0, 0, 0, 0x01];

/// What the decapsulation stage needs from the configuration, compiled for per-packet lookups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecapConfig {
    /// UDP destination ports of VXLAN, sorted, without duplicates.
    vxlan_ports: Box<[u16]>,
    /// UDP destination ports of GENEVE, sorted, without duplicates.
    geneve_ports: Box<[u16]>,
    /// The VXLAN ports, and the VXLAN and GENEVE ports together, padded to a fixed length
    /// with their first port, when they fit (see [`Padded`]): the fast path's checks.
    vxlan_scan: Option<Padded<u16, 4>>,
    tunnel_scan: Option<Padded<u16, 8>>,
    /// `None`: any sender is accepted.
    allowed_sources: Option<AddressRanges>,
    pass_untunneled: bool,
}

impl DecapConfig {
    /// Compiles the port lists and the allowlist (`None`: every sender; `Some(&[])`: none).
    pub fn new(
        vxlan_ports: &[u16],
        geneve_ports: &[u16],
        allowed_sources: Option<&[IpNet]>,
        pass_untunneled: bool,
    ) -> DecapConfig {
        let vxlan_ports = sorted_unique(vxlan_ports);
        let geneve_ports = sorted_unique(geneve_ports);
        DecapConfig {
            vxlan_scan: Padded::new(&vxlan_ports),
            tunnel_scan: Padded::new(&[&vxlan_ports[..], &geneve_ports[..]].concat()),
            vxlan_ports,
            geneve_ports,
            allowed_sources: allowed_sources.map(AddressRanges::new),
            pass_untunneled,
        }
    }

    /// From the validated `[decap]` settings: untunneled frames pass when they have a session.
    pub fn from_settings(s: &config::DecapSettings) -> DecapConfig {
        DecapConfig::new(
            &s.vxlan_ports,
            &s.geneve_ports,
            s.allowed_sources.as_deref(),
            s.untunneled_session.is_some(),
        )
    }

    /// Whether `source` may send mirror traffic.
    pub fn is_allowed_source(&self, source: IpAddr) -> bool {
        self.allowed_sources
            .as_ref()
            .is_none_or(|ranges| ranges.contains(source))
    }

    /// Whether the IPv4 address `source` (as a big-endian integer) may send mirror traffic.
    #[inline]
    fn is_allowed_ipv4_source(&self, source: u32) -> bool {
        self.allowed_sources
            .as_ref()
            .is_none_or(|ranges| match &ranges.v4_scan {
                Some(scan) => scan.any(|&(start, end)| (start <= source) & (source <= end)),
                None => range_contains(&ranges.v4, source),
            })
    }

    #[inline]
    fn is_vxlan_port(&self, udp_dst_port: u16) -> bool {
        match &self.vxlan_scan {
            Some(scan) => scan.any(|&port| port == udp_dst_port),
            None => contains_port(&self.vxlan_ports, udp_dst_port),
        }
    }

    /// Whether `udp_dst_port` is a VXLAN or a GENEVE port.
    #[inline]
    pub fn is_tunnel_port(&self, udp_dst_port: u16) -> bool {
        match &self.tunnel_scan {
            Some(scan) => scan.any(|&port| port == udp_dst_port),
            None => {
                contains_port(&self.vxlan_ports, udp_dst_port)
                    || contains_port(&self.geneve_ports, udp_dst_port)
            }
        }
    }

    fn tunnel_kind(&self, udp_dst_port: u16) -> Option<TunnelKind> {
        if self.is_vxlan_port(udp_dst_port) {
            Some(TunnelKind::Vxlan)
        } else if contains_port(&self.geneve_ports, udp_dst_port) {
            Some(TunnelKind::Geneve)
        } else {
            None
        }
    }
}

/// Whether the sorted `ports` hold `port`: a configuration lists one or two tunnel ports, which a
/// scan checks without the branches of a search.
#[inline]
fn contains_port(ports: &[u16], port: u16) -> bool {
    if ports.len() <= 4 {
        ports.iter().fold(false, |found, &p| found | (p == port))
    } else {
        ports.binary_search(&port).is_ok()
    }
}

/// A short set (1 to `N` items) in a fixed array padded with its first item: a test of every
/// entry (which the compiler unrolls, or turns into a few vector compares, with no bound to
/// check) is then a membership test, as the padding repeats a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Padded<T, const N: usize>([T; N]);

impl<T: Copy, const N: usize> Padded<T, N> {
    /// `None` for an empty set or one of more than `N` items.
    fn new(items: &[T]) -> Option<Padded<T, N>> {
        let (&first, _) = items.split_first()?;
        (items.len() <= N).then(|| {
            let mut padded = [first; N];
            padded[..items.len()].copy_from_slice(items);
            Padded(padded)
        })
    }

    /// Whether `test` holds for an item (every entry tested: no early exit to branch on).
    #[inline(always)]
    fn any(&self, test: impl Fn(&T) -> bool) -> bool {
        self.0.iter().fold(false, |found, item| found | test(item))
    }
}

fn sorted_unique(ports: &[u16]) -> Box<[u16]> {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    ports.into_boxed_slice()
}

/// A set of IP addresses compiled from CIDRs: per family, sorted, disjoint, non-adjacent
/// inclusive ranges of the addresses as integers, so membership is one binary search (for a
/// few IPv4 ranges, a scan of them padded: the fast path's check).
#[derive(Clone, Debug, PartialEq, Eq)]
struct AddressRanges {
    v4: Box<[(u32, u32)]>,
    /// `v4` padded, when it has 1 to 4 ranges (the usual allowlist: a VPC's CIDR or two).
    v4_scan: Option<Padded<(u32, u32), 4>>,
    v6: Box<[(u128, u128)]>,
}

impl AddressRanges {
    fn new(nets: &[IpNet]) -> AddressRanges {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        let v4 = merge_ranges(v4);
        AddressRanges {
            v4_scan: Padded::new(&v4),
            v4,
            v6: merge_ranges(v6),
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => range_contains(&self.v4, u32::from(a)),
            IpAddr::V6(a) => range_contains(&self.v6, u128::from(a)),
        }
    }
}

/// An address as an unsigned integer (`u32` for IPv4, `u128` for IPv6).
trait AddressBits: Copy + Ord {
    fn successor(self) -> Option<Self>;
}

impl AddressBits for u32 {
    fn successor(self) -> Option<u32> {
        self.checked_add(1)
    }
}

impl AddressBits for u128 {
    fn successor(self) -> Option<u128> {
        self.checked_add(1)
    }
}

/// Sorts inclusive ranges and merges those that overlap or touch.
fn merge_ranges<A: AddressBits>(mut ranges: Vec<(A, A)>) -> Box<[(A, A)]> {
    ranges.sort_unstable();
    let mut merged: Vec<(A, A)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            // A range ending at the largest address swallows everything after it.
            Some(last) if last.1.successor().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end)
            }
            _ => merged.push((start, end)),
        }
    }
    merged.into_boxed_slice()
}

/// Whether `addr` is inside one of the sorted, disjoint inclusive `ranges`.
#[inline]
fn range_contains<A: AddressBits>(ranges: &[(A, A)], addr: A) -> bool {
    // The last range starting at or before `addr` is the only one that can hold it.
    let after = ranges.partition_point(|&(start, _)| start <= addr);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, end)| addr <= end)
}

/// The tunnels removed from a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// Outermost IP source: the sender, checked against the allowlist.
    pub outer_source: IpAddr,
    /// IP source of the innermost tunnel (the mirrored ENI for AWS).
    pub mirror_source: IpAddr,
    /// VNI of the innermost tunnel.
    pub vni: u32,
    /// Tunnels removed (1..=[`MAX_TUNNEL_DEPTH`]).
    pub depth: u8,
}

/// A packet that [`decap`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decapped {
    /// The packet now starts at the innermost Ethernet frame.
    Tunnelled(Tunnel),
    /// Not a tunnel, passed unchanged (only when the configuration passes untunneled frames).
    Untunneled,
}

/// Removes the tunnel headers in front of the customer's frame.
///
/// On `Ok(Tunnelled)`, `pkt` starts at the innermost Ethernet frame and ends where that frame
/// ends (outer padding and bytes past the tunnel's UDP length are cut off). On `Ok(Untunneled)`
/// and on `Err`, `pkt` is unchanged. `Err` is `SourceDenied`, `NotTunnel` or `Malformed(reason)`.
///
/// The common shape (untagged IPv4 / UDP / VXLAN around a frame that is no tunnel) is
/// recognised by a fast path (`decap/fast.rs`) that reaches the same result as the general walk
/// ([`decap_general`]) in a fraction of its instructions.
// Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
#[inline(always)]
pub fn decap<B: PacketBuf>(cfg: &DecapConfig, pkt: &mut B) -> Result<Decapped, Outcome> {
    if let Some(accepted) = fast::vxlan_over_ipv4(cfg, pkt.data(), pkt.pkt_len()) {
        pkt.truncate(accepted.end);
        // The fast path read 64 bytes of the first segment, and the frame ends at or after them.
        if !pkt.strip_front(fast::INNER_OFFSET) {
            return Err(Outcome::Malformed(Reason::InnerTooShort));
        }
        return Ok(Decapped::Tunnelled(accepted.tunnel));
    }
    decap_general(cfg, pkt)
}

/// [`decap`] without its fast path: every layer parsed with the wire views. Public so the fast
/// path can be checked and benched against it.
pub fn decap_general<B: PacketBuf>(cfg: &DecapConfig, pkt: &mut B) -> Result<Decapped, Outcome> {
    let whole = Region {
        start: 0,
        end: pkt.pkt_len(),
        framing: Framing::Ethernet,
    };
    let outermost = match parse_layer(cfg, pkt.data(), whole, Trust::Outermost) {
        Ok(Step::Tunnel(layer)) => layer,
        Ok(Step::NotTunnel) if cfg.pass_untunneled => return Ok(Decapped::Untunneled),
        Ok(Step::NotTunnel) => return Err(Outcome::NotTunnel),
        Ok(Step::Denied) => return Err(Outcome::SourceDenied),
        Err(reason) => return Err(Outcome::Malformed(reason)),
    };

    // Nested tunnels. Each turn either stops or goes one level deeper, and the depth bound
    // returns: the loop cannot outlive MAX_TUNNEL_DEPTH turns.
    let mut innermost = outermost;
    let mut depth = 1;
    while let Ok(Step::Tunnel(next)) = parse_layer(cfg, pkt.data(), innermost.inner, Trust::Nested)
    {
        if depth == MAX_TUNNEL_DEPTH {
            return Err(Outcome::Malformed(Reason::TunnelTooDeep));
        }
        depth += 1;
        innermost = next;
    }

    let Region {
        start,
        end,
        framing,
    } = innermost.inner;
    let start = match framing {
        Framing::Ethernet => start,
        Framing::BareIp(ethertype) => {
            // At least the outer Ethernet, IP, UDP and GENEVE headers (50 bytes) precede `start`
            // in the first segment, so these 14 bytes exist; `get_mut` keeps that a checked fact.
            let header_start = start.saturating_sub(ethernet::HEADER_LEN);
            let Some(header) = pkt.data_mut().get_mut(header_start..start) else {
                return Err(Outcome::Malformed(Reason::InnerTooShort));
            };
            let mut frame = ethernet::Frame::new_unchecked(header);
            frame.set_destination(SYNTHETIC_DESTINATION);
            frame.set_source(SYNTHETIC_SOURCE);
            frame.set_ethertype(ethertype);
            header_start
        }
    };
    pkt.truncate(end);
    // `start` is inside the first segment: the tunnel header before it was parsed there.
    if !pkt.strip_front(start) {
        return Err(Outcome::Malformed(Reason::InnerTooShort));
    }
    Ok(Decapped::Tunnelled(Tunnel {
        outer_source: outermost.ip_source,
        mirror_source: innermost.ip_source,
        vni: innermost.vni,
        depth,
    }))
}

/// One tunnel the decapsulation removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelLayer {
    pub kind: TunnelKind,
    /// The IP source of the tunnel's packet (the outermost one is the mirror traffic's sender).
    pub source: IpAddr,
    pub vni: u32,
}

/// The tunnels [`decap`] would remove from a packet whose first segment is `first_segment` and
/// whose length is `pkt_len`, outermost first, and how many: a description for a packet trace,
/// read-only, made before `decap` runs (the general walk, whichever path `decap` takes; both
/// reach the same result). A packet `decap` refuses describes the layers read before the
/// refusal.
pub fn describe(
    cfg: &DecapConfig,
    first_segment: &[u8],
    pkt_len: usize,
) -> ([Option<TunnelLayer>; MAX_TUNNEL_DEPTH as usize], u8) {
    let mut layers = [None; MAX_TUNNEL_DEPTH as usize];
    let mut region = Region {
        start: 0,
        end: pkt_len,
        framing: Framing::Ethernet,
    };
    let mut trust = Trust::Outermost;
    let mut depth = 0;
    while let Ok(Step::Tunnel(layer)) = parse_layer(cfg, first_segment, region, trust) {
        let Some(slot) = layers.get_mut(usize::from(depth)) else {
            break;
        };
        *slot = Some(TunnelLayer {
            kind: layer.kind,
            source: layer.ip_source,
            vni: layer.vni,
        });
        depth += 1;
        region = layer.inner;
        trust = Trust::Nested;
    }
    (layers, depth)
}

/// A part of the packet, in offsets from the packet's start, holding one frame.
#[derive(Clone, Copy, Debug)]
struct Region {
    start: usize,
    /// One past the frame's last byte (may lie beyond the first segment).
    end: usize,
    framing: Framing,
}

/// How the frame in a [`Region`] begins.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// With an Ethernet header.
    Ethernet,
    /// Directly with an IP header of this EtherType (GENEVE protocol type 0x0800 / 0x86DD).
    BareIp(EtherType),
}

/// The kind of a tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Vxlan,
    Geneve,
}

impl TunnelKind {
    /// `vxlan`, `geneve`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }
}

/// Which layer is being parsed: the outermost one is checked against the allowlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trust {
    Outermost,
    Nested,
}

/// One tunnel layer: who sent it, its VNI, and the frame it carries.
#[derive(Clone, Copy, Debug)]
struct Layer {
    kind: TunnelKind,
    ip_source: IpAddr,
    vni: u32,
    inner: Region,
}

/// What one layer turned out to be.
#[derive(Clone, Copy, Debug)]
enum Step {
    Tunnel(Layer),
    NotTunnel,
    Denied,
}

/// Where the IP header led: the UDP header's offset and the IP payload's length from there.
struct Transport {
    ip_source: IpAddr,
    protocol: u8,
    /// Offset of the transport header, from the region's start.
    offset: usize,
    /// Whether the IP source may send tunnels (always, in a nested layer). `false` only with
    /// `pass_untunneled`; otherwise a denied source ends the parse at its IP header.
    sender_allowed: bool,
    /// Bytes of IP payload from `offset` on, as the IP header says (checked against the packet).
    len: usize,
}

/// Parses the frame in `region` as a tunnel. `first_segment` is the packet's first segment; the
/// region's `end` is checked against, never read beyond.
fn parse_layer(
    cfg: &DecapConfig,
    first_segment: &[u8],
    region: Region,
    trust: Trust,
) -> Result<Step, Reason> {
    // The frame's bytes present in the first segment, and its length in the packet.
    let frame_len = region.end.saturating_sub(region.start);
    let present = first_segment.get(region.start..).unwrap_or_default();
    let frame = present.get(..frame_len).unwrap_or(present);

    let (ethertype, l3_offset) = match region.framing {
        Framing::BareIp(ethertype) => (ethertype, 0),
        Framing::Ethernet => {
            let eth = ethernet::Frame::new_checked(frame).map_err(|_| Reason::EthernetTruncated)?;
            let tags =
                vlan::read_tags(eth.ethertype(), eth.payload()).map_err(|e| match e.kind {
                    vlan::TagErrorKind::Truncated => Reason::VlanTruncated,
                    vlan::TagErrorKind::TooDeep => Reason::VlanTooDeep,
                })?;
            (tags.ethertype, ethernet::HEADER_LEN + tags.len)
        }
    };
    let l3 = frame.get(l3_offset..).unwrap_or_default();
    let l3_len = frame_len.saturating_sub(l3_offset);
    let transport = match ethertype {
        EtherType::Ipv4 => parse_ipv4(cfg, l3, l3_len, trust)?,
        EtherType::Ipv6 => parse_ipv6(cfg, l3, l3_len, trust)?,
        _ => return Ok(Step::NotTunnel),
    };
    let Some(transport) = transport else {
        return Ok(Step::Denied);
    };
    if transport.protocol != ip_proto::UDP {
        return Ok(Step::NotTunnel);
    }

    let udp_offset = l3_offset + transport.offset;
    // The datagram ends where IP says: bytes after it are padding, not a UDP header (the IP
    // payload may reach past the first segment, then the segment's end bounds the view).
    let datagram = frame.get(udp_offset..).unwrap_or_default();
    let datagram = datagram.get(..transport.len).unwrap_or(datagram);
    let udp = udp::Packet::new_checked(datagram).map_err(|_| Reason::UdpTruncated)?;
    let udp_len = usize::from(udp.len());
    // RFC 768: the length counts the header, so it is at least 8; it cannot exceed what IP
    // carries. A shorter UDP length than the IP payload leaves trailing bytes, cut off below.
    if udp_len < udp::HEADER_LEN || udp_len > transport.len {
        return Err(Reason::UdpBadLength);
    }
    let Some(kind) = cfg.tunnel_kind(udp.dst_port()) else {
        return Ok(Step::NotTunnel);
    };
    if !transport.sender_allowed {
        return Ok(Step::Denied);
    }
    let tunnel_offset = udp_offset + udp::HEADER_LEN;
    let tunnel_end = udp_offset + udp_len;
    // `udp.payload()` stops at the UDP length (or the first segment's end).
    let (vni, header_len, framing) = match kind {
        TunnelKind::Vxlan => {
            let vxlan =
                vxlan::Packet::new_checked(udp.payload()).map_err(|_| Reason::VxlanTruncated)?;
            if !vxlan.has_vni() {
                return Err(Reason::VxlanNoVni);
            }
            (vxlan.vni(), vxlan::HEADER_LEN, Framing::Ethernet)
        }
        TunnelKind::Geneve => {
            let geneve = geneve::Packet::new_checked(udp.payload()).map_err(|e| match e {
                wire::Error::BadVersion => Reason::GeneveBadVersion,
                wire::Error::OptionsOverrun => Reason::GeneveOptionsOverrun,
                _ => Reason::GeneveTruncated,
            })?;
            let framing = match geneve.protocol_type() {
                EtherType::TransparentEthernet => Framing::Ethernet,
                ip @ (EtherType::Ipv4 | EtherType::Ipv6) => Framing::BareIp(ip),
                _ => return Err(Reason::GeneveUnknownProtocol),
            };
            (geneve.vni(), geneve.header_len(), framing)
        }
    };
    let inner_offset = tunnel_offset + header_len;
    let inner_len = tunnel_end.saturating_sub(inner_offset);
    let shortest = match framing {
        Framing::Ethernet => ethernet::HEADER_LEN,
        Framing::BareIp(_) => 1,
    };
    if inner_len < shortest {
        return Err(Reason::InnerTooShort);
    }
    Ok(Step::Tunnel(Layer {
        kind,
        ip_source: transport.ip_source,
        vni,
        inner: Region {
            start: region.start + inner_offset,
            end: region.start + tunnel_end,
            framing,
        },
    }))
}

/// Whether `source` may send tunnels, or `None` when the frame is `source_denied` here and now:
/// a denied outermost source without `pass_untunneled` (nothing after its IP header is read).
/// With `pass_untunneled` the verdict waits for the UDP destination port: only a tunnel is denied.
fn sender_allowed(cfg: &DecapConfig, source: IpAddr, trust: Trust) -> Option<bool> {
    let allowed = trust == Trust::Nested || cfg.is_allowed_source(source);
    (allowed || cfg.pass_untunneled).then_some(allowed)
}

/// Parses an IPv4 header: `bytes` are those present from the header on, `available` the bytes
/// the frame has from there. `Ok(None)`: `source_denied` (see [`sender_allowed`]).
fn parse_ipv4(
    cfg: &DecapConfig,
    bytes: &[u8],
    available: usize,
    trust: Trust,
) -> Result<Option<Transport>, Reason> {
    let ip = ipv4::Packet::new_checked(bytes).map_err(|e| match e {
        wire::Error::BadVersion => Reason::Ipv4BadVersion,
        wire::Error::BadHeaderLength => Reason::Ipv4BadIhl,
        _ => Reason::Ipv4Truncated,
    })?;
    let header_len = ip.header_len();
    let total_len = usize::from(ip.total_len());
    // A frame longer than the total length carries Ethernet padding (cut off with the tunnel's
    // UDP length); a shorter one lost bytes.
    if total_len < header_len || total_len > available {
        return Err(Reason::Ipv4BadLength);
    }
    let ip_source = IpAddr::V4(ip.src_addr());
    let Some(sender_allowed) = sender_allowed(cfg, ip_source, trust) else {
        return Ok(None);
    };
    if ip.is_fragment() {
        return Err(Reason::OuterFragment);
    }
    Ok(Some(Transport {
        ip_source,
        protocol: ip.protocol(),
        offset: header_len,
        len: total_len - header_len,
        sender_allowed,
    }))
}

/// Parses an IPv6 header and its extension headers, like [`parse_ipv4`].
fn parse_ipv6(
    cfg: &DecapConfig,
    bytes: &[u8],
    available: usize,
    trust: Trust,
) -> Result<Option<Transport>, Reason> {
    let ip = ipv6::Packet::new_checked(bytes).map_err(|e| match e {
        wire::Error::BadVersion => Reason::Ipv6BadVersion,
        _ => Reason::Ipv6Truncated,
    })?;
    let payload_len = usize::from(ip.payload_len());
    if ipv6::HEADER_LEN + payload_len > available {
        return Err(Reason::Ipv6BadLength);
    }
    let ip_source = IpAddr::V6(ip.src_addr());
    let Some(sender_allowed) = sender_allowed(cfg, ip_source, trust) else {
        return Ok(None);
    };
    let chain =
        ipv6::walk_extension_headers(ip.next_header(), ip.payload()).map_err(|e| match e.kind {
            ipv6::ChainErrorKind::Truncated => Reason::Ipv6ExtTruncated,
            ipv6::ChainErrorKind::TooMany => Reason::Ipv6ExtTooMany,
        })?;
    if chain.fragment.is_some_and(|f| f.is_fragment()) {
        return Err(Reason::OuterFragment);
    }
    Ok(Some(Transport {
        ip_source,
        protocol: chain.protocol,
        offset: ipv6::HEADER_LEN + chain.len,
        len: payload_len - chain.len,
        sender_allowed,
    }))
}

mod fast;
#[cfg(test)]
mod tests;
