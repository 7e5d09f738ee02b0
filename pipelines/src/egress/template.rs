//! The header template of one tunnel tool port (see the module docs of [`crate::egress`]).

use std::net::IpAddr;

use config::{Direction, Vni};

use crate::buf::PacketBuf;
use crate::flow::ip_proto;
use crate::wire::{EtherType, checksum, erspan, ethernet, geneve, gre, ipv4, ipv6, udp, vxlan};

/// Option class of the broker's GENEVE option: the first of RFC 8926's "Experimental Use" range
/// (0xFFF0–0xFFFF), which needs no registration.
pub const OPTION_CLASS: u16 = 0xFFF0;
/// Option type of the broker's GENEVE option (the critical bit clear).
pub const OPTION_TYPE: u8 = 0x01;
/// Data bytes of the broker's GENEVE option: session VNI (3), direction (1), name hash (4).
pub const OPTION_DATA_LEN: usize = 8;
/// The GENEVE options block of a copy: the broker's option and nothing else.
const GENEVE_OPTIONS_LEN: usize = geneve::OPTION_HEADER_LEN + OPTION_DATA_LEN;

/// The longest outer header: Ethernet, IPv6, UDP, GENEVE with the broker's option.
pub const MAX_HEADER_LEN: usize = ethernet::HEADER_LEN
    + ipv6::HEADER_LEN
    + udp::HEADER_LEN
    + geneve::HEADER_LEN
    + GENEVE_OPTIONS_LEN;

/// TTL and hop limit of every copy: the common default of hosts (RFC 1700's recommendation),
/// enough for any routed path to an analyzer.
const TTL: u8 = 64;

/// Where the outer IP header starts.
const L3: usize = ethernet::HEADER_LEN;

/// The first UDP source port of copies (RFC 6335's dynamic range, 49152–65535).
const SOURCE_PORT_BASE: u16 = 49152;

/// The UDP source port of a copy whose inner flow hashes to `flow_hash`: 49152 + hash mod
/// 16384, the dynamic port range RFC 7348 recommends.
#[inline]
pub const fn udp_source_port(flow_hash: u64) -> u16 {
    SOURCE_PORT_BASE + (flow_hash % 16384) as u16
}

/// The direction byte of the broker's GENEVE option: 0 unknown, 1 ingress, 2 egress.
#[inline]
pub const fn direction_code(direction: Option<Direction>) -> u8 {
    match direction {
        None => 0,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    }
}

/// The broker name hash of the GENEVE option: 32-bit FNV-1a of the name's UTF-8 bytes (offset
/// basis 0x811C9DC5, prime 0x01000193), simple enough to recompute in any analyzer's script.
pub fn broker_name_hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The VNI written in a VXLAN or GENEVE header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VniChoice {
    /// The VNI of the mirror session each copy came from (per packet).
    Session,
    /// One VNI for every copy to this port.
    Fixed(Vni),
}

/// The session id written in an ERSPAN type II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionIdChoice {
    /// The mirror session's VNI modulo 1024 (per packet).
    SessionVni,
    /// One id for every copy to this port (at most [`erspan::MAX_SESSION_ID`]).
    Fixed(u16),
}

/// How copies are carried to a tunnel tool port, with the parameters of each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// VXLAN (RFC 7348) over UDP to `dst_port` (IANA: 4789, [`vxlan::IANA_PORT`]).
    Vxlan { dst_port: u16, vni: VniChoice },
    /// GENEVE (RFC 8926) over UDP to `dst_port` (IANA: 6081, [`geneve::IANA_PORT`]), protocol
    /// type 0x6558, with the broker's option carrying `broker_hash` ([`broker_name_hash`]).
    Geneve {
        dst_port: u16,
        vni: VniChoice,
        broker_hash: u32,
    },
    /// GRE (RFC 2784) with protocol type 0x6558 and, when given, the key (RFC 2890).
    L2Gre { key: Option<u32> },
    /// ERSPAN type II: GRE with a sequence number, protocol type 0x88BE, the ERSPAN header.
    Erspan2 { session_id: SessionIdChoice },
}

impl Encapsulation {
    /// Whether the tunnel runs over UDP (else over GRE).
    const fn is_udp(&self) -> bool {
        matches!(
            self,
            Encapsulation::Vxlan { .. } | Encapsulation::Geneve { .. }
        )
    }

    /// Length of the headers after the outer IP header.
    const fn tunnel_len(&self) -> usize {
        match self {
            Encapsulation::Vxlan { .. } => udp::HEADER_LEN + vxlan::HEADER_LEN,
            Encapsulation::Geneve { .. } => {
                udp::HEADER_LEN + geneve::HEADER_LEN + GENEVE_OPTIONS_LEN
            }
            Encapsulation::L2Gre { key } => gre::header_len(false, key.is_some(), false),
            Encapsulation::Erspan2 { .. } => {
                gre::header_len(false, false, true) + erspan::HEADER_LEN
            }
        }
    }

    /// Bytes added in front of each inner frame sent to `remote`: the outer Ethernet and IP
    /// headers and the tunnel's (VXLAN over IPv4 50, over IPv6 70; GENEVE 62/82; L2GRE 38/58,
    /// 4 more with a key; ERSPAN II 50/70).
    pub const fn overhead(&self, remote: IpAddr) -> usize {
        let ip = if remote.is_ipv6() {
            ipv6::HEADER_LEN
        } else {
            ipv4::MIN_HEADER_LEN
        };
        ethernet::HEADER_LEN + ip + self.tunnel_len()
    }

    /// The largest inner frame (its Ethernet header included) that fits, encapsulated toward
    /// `remote`, in an IP packet of `mtu` bytes (the via port's MTU); 0 when none does.
    pub const fn max_inner_len(&self, remote: IpAddr, mtu: u16) -> usize {
        (mtu as usize).saturating_sub(self.overhead(remote) - ethernet::HEADER_LEN)
    }
}

/// Everything a template is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TemplateSpec {
    pub encapsulation: Encapsulation,
    /// The via port's MAC: the outer source.
    pub source_mac: ethernet::Address,
    /// The resolved next hop: the remote itself when it is on one of the via port's subnets,
    /// else the gateway.
    pub next_hop_mac: ethernet::Address,
    /// The via port's address of the remote's family: the outer source.
    pub source: IpAddr,
    /// The analyzer's address: the outer destination.
    pub remote: IpAddr,
    /// The via port's MTU: the largest IP packet it sends.
    pub mtu: u16,
}

/// Why a template cannot be built (configuration validation should have refused the spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateError {
    /// The source and remote addresses are of different families.
    FamilyMismatch,
    /// A fixed ERSPAN session id does not fit in 10 bits.
    SessionIdTooLarge(u16),
    /// The MTU leaves no room for an inner Ethernet header after the encapsulation.
    MtuTooSmall { mtu: u16, overhead: usize },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::FamilyMismatch => {
                f.write_str("source and remote addresses are of different families")
            }
            TemplateError::SessionIdTooLarge(id) => write!(
                f,
                "ERSPAN session id {id} does not fit in 10 bits (at most {})",
                erspan::MAX_SESSION_ID
            ),
            TemplateError::MtuTooSmall { mtu, overhead } => write!(
                f,
                "MTU {mtu} leaves no room for an inner frame after {overhead} bytes of encapsulation"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Why [`Template::write`] wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// The output is shorter than the header ([`Template::overhead`]).
    BufferTooShort,
    /// The inner frame is longer than [`Template::max_inner_len`]: cut it first.
    InnerTooLong,
    /// The inner frame was described without the sum this template needs (describe it with
    /// this template's [`Template::inner_frame_of`]).
    InnerNotSummed,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteError::BufferTooShort => "header buffer shorter than the header",
            WriteError::InnerTooLong => "inner frame longer than the MTU allows",
            WriteError::InnerNotSummed => "inner frame described without its checksum",
        })
    }
}

impl std::error::Error for WriteError {}

/// What a copy's header says that the template cannot know in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketFields {
    /// The mirror session's VNI (or the packet's, for a session without one); 24 bits used.
    pub vni: u32,
    /// The packet's direction relative to the mirrored interface.
    pub direction: Option<Direction>,
    /// The symmetric hash of the inner flow ([`crate::stage::balance::flow_hash`]).
    pub flow_hash: u64,
    /// The outer IPv4 identification (unused over IPv6).
    pub ip_ident: u16,
    /// The GRE sequence number (ERSPAN only: [`Template::uses_sequence`]).
    pub sequence: u32,
    /// The copy was cut to fit the MTU (ERSPAN's T bit).
    pub truncated: bool,
}

/// The inner frame as its header must describe it: its length and, where the header's checksum
/// covers it (UDP over IPv6), its sum. Made by [`Template::inner_frame_of`] or
/// [`Template::inner_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InnerFrame {
    len: usize,
    sum: Option<u16>,
}

impl InnerFrame {
    /// Length of the inner frame.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the inner frame is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The outer header of one tunnel tool port, constants filled, patched per packet by
/// [`Template::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    spec: TemplateSpec,
    bytes: [u8; MAX_HEADER_LEN],
    /// The header's length: the encapsulation overhead.
    len: usize,
    /// Where the outer IP header ends (UDP or GRE starts).
    l4: usize,
    ipv6: bool,
    /// IPv4: the sum of the IPv4 header with total length, identification and checksum zero.
    /// IPv6 with UDP: the sum of the pseudo-header's addresses and next header. Otherwise 0.
    partial_sum: u16,
    max_inner_len: usize,
}

impl Template {
    /// Builds the header for `spec`.
    pub fn new(spec: TemplateSpec) -> Result<Template, TemplateError> {
        let ipv6 = match (spec.source, spec.remote) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(TemplateError::FamilyMismatch),
        };
        if let Encapsulation::Erspan2 {
            session_id: SessionIdChoice::Fixed(id),
        } = spec.encapsulation
        {
            if id > erspan::MAX_SESSION_ID {
                return Err(TemplateError::SessionIdTooLarge(id));
            }
        }
        let len = spec.encapsulation.overhead(spec.remote);
        let max_inner_len = spec.encapsulation.max_inner_len(spec.remote, spec.mtu);
        if max_inner_len < ethernet::HEADER_LEN {
            return Err(TemplateError::MtuTooSmall {
                mtu: spec.mtu,
                overhead: len,
            });
        }
        let l4 = len - spec.encapsulation.tunnel_len();

        let mut bytes = [0u8; MAX_HEADER_LEN];
        let header = &mut bytes[..len];
        let mut eth = ethernet::Frame::new_unchecked(&mut header[..L3]);
        eth.set_destination(spec.next_hop_mac);
        eth.set_source(spec.source_mac);
        eth.set_ethertype(if ipv6 {
            EtherType::Ipv6
        } else {
            EtherType::Ipv4
        });

        let protocol = if spec.encapsulation.is_udp() {
            ip_proto::UDP
        } else {
            ip_proto::GRE
        };
        // Lengths, the IPv4 identification and checksum, the flow label: per packet, zero here.
        let partial_sum = match (spec.source, spec.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut ip = ipv4::Packet::new_unchecked(&mut header[L3..l4]);
                ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
                ip.set_fragmentation(true, false, 0);
                ip.set_ttl(TTL);
                ip.set_protocol(protocol);
                ip.set_src_addr(src);
                ip.set_dst_addr(dst);
                checksum::sum(&header[L3..l4])
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ip = ipv6::Packet::new_unchecked(&mut header[L3..l4]);
                ip.set_version_class_flow(0, 0);
                ip.set_next_header(protocol);
                ip.set_hop_limit(TTL);
                ip.set_src_addr(src);
                ip.set_dst_addr(dst);
                if spec.encapsulation.is_udp() {
                    checksum::pseudo_header_v6(src, dst, protocol, 0)
                } else {
                    0
                }
            }
            _ => return Err(TemplateError::FamilyMismatch),
        };

        let tunnel = &mut header[l4..];
        match spec.encapsulation {
            Encapsulation::Vxlan { dst_port, vni } => {
                udp::Packet::new_unchecked(&mut tunnel[..udp::HEADER_LEN]).set_dst_port(dst_port);
                let mut vxlan = vxlan::Packet::new_unchecked(&mut tunnel[udp::HEADER_LEN..]);
                // RFC 7348 §5: the I flag set, "The other 7 bits (designated "R") are reserved
                // fields and MUST be set to zero on transmission"; the reserved bytes stay 0.
                vxlan.set_flags(vxlan::FLAG_VNI);
                vxlan.set_vni(fixed_vni(vni));
            }
            Encapsulation::Geneve {
                dst_port,
                vni,
                broker_hash,
            } => {
                udp::Packet::new_unchecked(&mut tunnel[..udp::HEADER_LEN]).set_dst_port(dst_port);
                let mut geneve = geneve::Packet::new_unchecked(&mut tunnel[udp::HEADER_LEN..]);
                geneve.set_version_and_options_len(0, GENEVE_OPTIONS_LEN);
                geneve.set_flags(false, false);
                geneve.set_protocol_type(EtherType::TransparentEthernet);
                geneve.set_vni(fixed_vni(vni));
                let mut option = geneve::Tlv::new_unchecked(geneve.options_mut());
                option.set_class(OPTION_CLASS);
                option.set_option_type(OPTION_TYPE);
                option.set_data_len(OPTION_DATA_LEN);
                option.data_mut()[4..].copy_from_slice(&broker_hash.to_be_bytes());
            }
            Encapsulation::L2Gre { key } => {
                let mut gre = gre::Packet::new_unchecked(tunnel);
                gre.set_flags(false, key.is_some(), false);
                gre.set_protocol_type(EtherType::TransparentEthernet);
                if let Some(key) = key {
                    gre.set_key(key);
                }
            }
            Encapsulation::Erspan2 { session_id } => {
                let gre_len = gre::header_len(false, false, true);
                let mut gre = gre::Packet::new_unchecked(&mut tunnel[..gre_len]);
                gre.set_flags(false, false, true);
                gre.set_protocol_type(EtherType::Erspan);
                let mut erspan = erspan::Packet::new_unchecked(&mut tunnel[gre_len..]);
                erspan.set_version_and_vlan(0);
                erspan.set_cos_encap_truncated_session(
                    0,
                    erspan::Encap::TagInFrame,
                    false,
                    match session_id {
                        SessionIdChoice::Fixed(id) => id,
                        SessionIdChoice::SessionVni => 0,
                    },
                );
                erspan.set_index(0);
            }
        }

        Ok(Template {
            spec,
            bytes,
            len,
            l4,
            ipv6,
            partial_sum,
            max_inner_len,
        })
    }

    /// What the template was built from.
    pub const fn spec(&self) -> &TemplateSpec {
        &self.spec
    }

    /// Bytes the header adds in front of each inner frame (the header's length).
    pub const fn overhead(&self) -> usize {
        self.len
    }

    /// The largest inner frame that fits the via port's MTU: cut longer copies to it.
    pub const fn max_inner_len(&self) -> usize {
        self.max_inner_len
    }

    /// Whether copies need a sequence number ([`PacketFields::sequence`]): ERSPAN only, so other
    /// ports skip the shared counter.
    pub const fn uses_sequence(&self) -> bool {
        matches!(self.spec.encapsulation, Encapsulation::Erspan2 { .. })
    }

    /// Whether the header's checksum covers the inner frame (UDP over IPv6), so that
    /// [`Template::inner_frame_of`] reads every byte of it.
    pub const fn sums_inner_frame(&self) -> bool {
        self.ipv6 && self.spec.encapsulation.is_udp()
    }

    /// Points the template at a new next-hop MAC (the neighbour answered from another address).
    pub fn set_next_hop_mac(&mut self, mac: ethernet::Address) {
        self.spec.next_hop_mac = mac;
        ethernet::Frame::new_unchecked(&mut self.bytes[..L3]).set_destination(mac);
    }

    /// Describes the inner frame of `pkt` (all of it, every segment), summing its bytes only
    /// when [`Template::sums_inner_frame`]. Call it after cutting the copy and before chaining
    /// the header segment in front.
    #[inline]
    pub fn inner_frame_of<B: PacketBuf>(&self, pkt: &B) -> InnerFrame {
        if !self.sums_inner_frame() {
            return InnerFrame {
                len: pkt.pkt_len(),
                sum: None,
            };
        }
        let mut acc = checksum::Accumulator::new();
        pkt.for_each_segment(|segment| acc.add(segment));
        InnerFrame {
            len: acc.len(),
            sum: Some(acc.sum()),
        }
    }

    /// Describes an inner frame given as its segments, in order (see
    /// [`Template::inner_frame_of`]).
    pub fn inner_frame<'a>(&self, segments: impl IntoIterator<Item = &'a [u8]>) -> InnerFrame {
        let mut acc = checksum::Accumulator::new();
        let mut len = 0;
        for segment in segments {
            if self.sums_inner_frame() {
                acc.add(segment);
            }
            len += segment.len();
        }
        InnerFrame {
            len,
            sum: self.sums_inner_frame().then(|| acc.sum()),
        }
    }

    /// Writes the header for a copy of `inner` into the start of `out` and returns its length
    /// ([`Template::overhead`]). Nothing is written on error.
    #[inline]
    pub fn write(
        &self,
        fields: &PacketFields,
        inner: &InnerFrame,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        if inner.len > self.max_inner_len {
            return Err(WriteError::InnerTooLong);
        }
        let inner_sum = match inner.sum {
            Some(sum) => sum,
            None if self.sums_inner_frame() => return Err(WriteError::InnerNotSummed),
            None => 0,
        };
        let (len, l4) = (self.len, self.l4);
        let header = out.get_mut(..len).ok_or(WriteError::BufferTooShort)?;
        header.copy_from_slice(&self.bytes[..len]);

        // Fits in 16 bits: at most the MTU, checked above through max_inner_len.
        let ip_payload_len = (len - l4 + inner.len) as u16;
        if self.ipv6 {
            let mut ip = ipv6::Packet::new_unchecked(&mut header[L3..l4]);
            ip.set_version_class_flow(0, fields.flow_hash as u32);
            ip.set_payload_len(ip_payload_len);
        } else {
            let total_len = ip_payload_len + ipv4::MIN_HEADER_LEN as u16;
            let mut ip = ipv4::Packet::new_unchecked(&mut header[L3..l4]);
            ip.set_total_len(total_len);
            ip.set_ident(fields.ip_ident);
            let sum = checksum::add(checksum::add(self.partial_sum, total_len), fields.ip_ident);
            ip.set_checksum(checksum::finish(sum));
        }

        let session_vni = fields.vni & Vni::MAX;
        let tunnel = &mut header[l4..];
        match self.spec.encapsulation {
            Encapsulation::Vxlan { vni, .. } => {
                if vni == VniChoice::Session {
                    vxlan::Packet::new_unchecked(&mut tunnel[udp::HEADER_LEN..])
                        .set_vni(session_vni);
                }
            }
            Encapsulation::Geneve { vni, .. } => {
                let mut geneve = geneve::Packet::new_unchecked(&mut tunnel[udp::HEADER_LEN..]);
                if vni == VniChoice::Session {
                    geneve.set_vni(session_vni);
                }
                let mut option = geneve::Tlv::new_unchecked(geneve.options_mut());
                let vni_direction = session_vni << 8 | u32::from(direction_code(fields.direction));
                option.data_mut()[..4].copy_from_slice(&vni_direction.to_be_bytes());
            }
            Encapsulation::L2Gre { .. } => {}
            Encapsulation::Erspan2 { session_id } => {
                let gre_len = gre::header_len(false, false, true);
                gre::Packet::new_unchecked(&mut tunnel[..gre_len]).set_sequence(fields.sequence);
                let session_id = match session_id {
                    SessionIdChoice::Fixed(id) => id,
                    SessionIdChoice::SessionVni => (session_vni % 1024) as u16,
                };
                erspan::Packet::new_unchecked(&mut tunnel[gre_len..])
                    .set_cos_encap_truncated_session(
                        0,
                        erspan::Encap::TagInFrame,
                        fields.truncated,
                        session_id,
                    );
            }
        }

        if self.spec.encapsulation.is_udp() {
            let mut datagram = udp::Packet::new_unchecked(&mut tunnel[..udp::HEADER_LEN]);
            datagram.set_src_port(udp_source_port(fields.flow_hash));
            datagram.set_len(ip_payload_len);
            if self.ipv6 {
                // The pseudo-header's addresses and next header (precomputed) and its length,
                // then the UDP and tunnel headers as written (checksum still 0), then the inner
                // frame, which starts at an even offset of the datagram (16 or 28 bytes in).
                let sum = checksum::add(self.partial_sum, ip_payload_len);
                let sum = checksum::add(sum, checksum::sum(tunnel));
                let sum = checksum::add(sum, inner_sum);
                udp::Packet::new_unchecked(&mut tunnel[..udp::HEADER_LEN])
                    .set_checksum(udp::ipv6_checksum_field(sum));
            }
        }
        Ok(len)
    }
}

/// The VNI a template holds: the fixed one, or 0 to be patched per packet.
const fn fixed_vni(choice: VniChoice) -> u32 {
    match choice {
        VniChoice::Fixed(vni) => vni.get(),
        VniChoice::Session => 0,
    }
}
