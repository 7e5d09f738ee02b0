//! The test's own decoder of what an analyzer receives: one tunnel layer (VXLAN, GENEVE, L2GRE
//! or ERSPAN II over IPv4 or IPv6) taken apart field by field, written from the RFCs and drafts
//! (RFC 7348, RFC 8926, RFC 2784/2890, draft-foschiano-erspan-03), not from the broker's wire
//! views. Outer Ethernet and IP are read with etherparse; checksums are summed here.

use std::net::IpAddr;

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};

/// An encapsulation, as a config's `tunnel` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encap {
    Vxlan,
    Geneve,
    L2gre,
    Erspan2,
}

/// The outer UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp {
    pub source_port: u16,
    pub destination_port: u16,
    pub checksum: u16,
    /// The checksum is 0 (none), or it sums right over the pseudo-header and the datagram.
    pub checksum_ok: bool,
}

/// The tunnel header, every field as it was on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelHeader {
    /// RFC 7348 §5: 8 flag bits (only I, 0x08, defined), 24 reserved bits, the VNI, 8 reserved
    /// bits.
    Vxlan {
        flags: u8,
        reserved: [u8; 4],
        vni: u32,
    },
    /// RFC 8926 §3.4.
    Geneve {
        version: u8,
        oam: bool,
        critical: bool,
        reserved_flags: u8,
        protocol: u16,
        vni: u32,
        reserved: u8,
        options: Vec<GeneveOption>,
    },
    /// RFC 2784 + RFC 2890 (key).
    L2gre {
        flags_version: u16,
        protocol: u16,
        key: Option<u32>,
    },
    /// GRE (0x88BE, with a sequence number) + ERSPAN type II (draft-foschiano-erspan-03 §4.2).
    Erspan2 {
        gre_flags_version: u16,
        sequence: Option<u32>,
        version: u8,
        vlan: u16,
        cos: u8,
        encap_type: u8,
        truncated: bool,
        session_id: u16,
        reserved: u16,
        index: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveOption {
    pub class: u16,
    pub option_type: u8,
    /// The option's data (its length field × 4 bytes).
    pub data: Vec<u8>,
}

/// A tunnelled frame an analyzer received.
#[derive(Clone, Debug)]
pub struct Tunnelled {
    pub eth_source: [u8; 6],
    pub eth_destination: [u8; 6],
    pub ip_source: IpAddr,
    pub ip_destination: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DF (IPv6 is never fragmented on the way: true).
    pub dont_fragment: bool,
    /// The IPv4 header checksum sums right (IPv6: true).
    pub ip_checksum_ok: bool,
    pub udp: Option<Udp>,
    pub encap: Encap,
    pub header: TunnelHeader,
    pub inner: Vec<u8>,
}

impl Tunnelled {
    /// The VNI of a VXLAN or GENEVE header.
    pub fn vni(&self) -> Option<u32> {
        match &self.header {
            TunnelHeader::Vxlan { vni, .. } | TunnelHeader::Geneve { vni, .. } => Some(*vni),
            _ => None,
        }
    }
}

/// One's complement sum of `bytes` as big-endian 16-bit words (an odd last byte padded).
fn sum16(bytes: &[u8], mut sum: u32) -> u32 {
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Whether a UDP datagram's checksum sums right over the IP pseudo-header (RFC 768, RFC 8200
/// §8.1); 0 means "none" over IPv4 only.
fn udp_checksum_ok(source: IpAddr, destination: IpAddr, datagram: &[u8], checksum: u16) -> bool {
    if checksum == 0 {
        return source.is_ipv4();
    }
    let mut sum = 17 + datagram.len() as u32;
    for address in [source, destination] {
        sum = match address {
            IpAddr::V4(a) => sum16(&a.octets(), sum),
            IpAddr::V6(a) => sum16(&a.octets(), sum),
        };
    }
    fold(sum16(datagram, sum)) == 0xFFFF
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Takes a received frame apart. `Ok(None)`: not a tunnel packet (ARP, neighbour discovery, an
/// ICMP error, …); `Err`: a tunnel packet that is malformed (cut short, fragmented, an unknown
/// GRE protocol).
pub fn decode(frame: &[u8]) -> Result<Option<Tunnelled>, String> {
    let Ok(sliced) = SlicedPacket::from_ethernet(frame) else {
        return Ok(None);
    };
    let Some(LinkSlice::Ethernet2(eth)) = &sliced.link else {
        return Ok(None);
    };
    let (ip_source, ip_destination, ttl, dont_fragment, ip_checksum_ok, payload) = match &sliced.net
    {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let ok = fold(sum16(h.slice(), 0)) == 0xFFFF;
            let p = ip.payload();
            if p.fragmented {
                return Err("an outer IPv4 fragment".into());
            }
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                h.dont_fragment(),
                ok,
                (p.ip_number.0, p.payload),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let p = ip.payload();
            if p.fragmented {
                return Err("an outer IPv6 fragment".into());
            }
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                true,
                true,
                (p.ip_number.0, p.payload),
            )
        }
        _ => return Ok(None),
    };
    let (udp, encap, header, inner) = match (payload.0, &sliced.transport) {
        (17, Some(TransportSlice::Udp(u))) => {
            let port = u.destination_port();
            let datagram = payload.1;
            let udp = Udp {
                source_port: u.source_port(),
                destination_port: port,
                checksum: u.checksum(),
                checksum_ok: udp_checksum_ok(ip_source, ip_destination, datagram, u.checksum()),
            };
            let body = u.payload();
            match port {
                4789 => {
                    let (header, inner) = vxlan(body)?;
                    (Some(udp), Encap::Vxlan, header, inner)
                }
                6081 => {
                    let (header, inner) = geneve(body)?;
                    (Some(udp), Encap::Geneve, header, inner)
                }
                _ => return Ok(None),
            }
        }
        (47, _) => {
            let (encap, header, inner) = gre(payload.1)?;
            (None, encap, header, inner)
        }
        _ => return Ok(None),
    };
    Ok(Some(Tunnelled {
        eth_source: eth.source(),
        eth_destination: eth.destination(),
        ip_source,
        ip_destination,
        ttl,
        dont_fragment,
        ip_checksum_ok,
        udp,
        encap,
        header,
        inner: inner.to_vec(),
    }))
}

fn vxlan(b: &[u8]) -> Result<(TunnelHeader, &[u8]), String> {
    if b.len() < 8 {
        return Err(format!("VXLAN header cut short: {} bytes", b.len()));
    }
    let header = TunnelHeader::Vxlan {
        flags: b[0],
        reserved: [b[1], b[2], b[3], b[7]],
        vni: u32::from_be_bytes([0, b[4], b[5], b[6]]),
    };
    Ok((header, &b[8..]))
}

fn geneve(b: &[u8]) -> Result<(TunnelHeader, &[u8]), String> {
    if b.len() < 8 {
        return Err(format!("GENEVE header cut short: {} bytes", b.len()));
    }
    let options_len = usize::from(b[0] & 0x3F) * 4;
    let Some(mut options_bytes) = b.get(8..8 + options_len) else {
        return Err("GENEVE options run past the packet".into());
    };
    let mut options = Vec::new();
    while !options_bytes.is_empty() {
        if options_bytes.len() < 4 {
            return Err("a GENEVE option header cut short".into());
        }
        let len = usize::from(options_bytes[3] & 0x1F) * 4;
        let Some(data) = options_bytes.get(4..4 + len) else {
            return Err("a GENEVE option runs past the options".into());
        };
        options.push(GeneveOption {
            class: be16(options_bytes, 0),
            option_type: options_bytes[2],
            data: data.to_vec(),
        });
        options_bytes = &options_bytes[4 + len..];
    }
    let header = TunnelHeader::Geneve {
        version: b[0] >> 6,
        oam: b[1] & 0x80 != 0,
        critical: b[1] & 0x40 != 0,
        reserved_flags: b[1] & 0x3F,
        protocol: be16(b, 2),
        vni: u32::from_be_bytes([0, b[4], b[5], b[6]]),
        reserved: b[7],
        options,
    };
    Ok((header, &b[8 + options_len..]))
}

fn gre(b: &[u8]) -> Result<(Encap, TunnelHeader, &[u8]), String> {
    if b.len() < 4 {
        return Err(format!("GRE header cut short: {} bytes", b.len()));
    }
    let flags_version = be16(b, 0);
    let protocol = be16(b, 2);
    // RFC 2784 §2.1 and RFC 2890 §2: C (checksum + reserved1), K (key), S (sequence number),
    // each 4 bytes, in that order.
    let mut at = 4;
    let mut field = |present: bool| -> Result<Option<u32>, String> {
        if !present {
            return Ok(None);
        }
        let value = b.get(at..at + 4).ok_or("GRE header cut short")?;
        at += 4;
        Ok(Some(be32(value, 0)))
    };
    field(flags_version & 0x8000 != 0)?;
    let key = field(flags_version & 0x2000 != 0)?;
    let sequence = field(flags_version & 0x1000 != 0)?;
    match protocol {
        0x6558 => Ok((
            Encap::L2gre,
            TunnelHeader::L2gre {
                flags_version,
                protocol,
                key,
            },
            &b[at..],
        )),
        0x88BE => {
            let e = b.get(at..at + 8).ok_or("ERSPAN II header cut short")?;
            let (word, second) = (be32(e, 0), be32(e, 4));
            let header = TunnelHeader::Erspan2 {
                gre_flags_version: flags_version,
                sequence,
                version: (word >> 28) as u8,
                vlan: ((word >> 16) & 0x0FFF) as u16,
                cos: ((word >> 13) & 0x7) as u8,
                encap_type: ((word >> 11) & 0x3) as u8,
                truncated: word & 0x400 != 0,
                session_id: (word & 0x3FF) as u16,
                reserved: (second >> 20) as u16,
                index: second & 0xF_FFFF,
            };
            Ok((Encap::Erspan2, header, &b[at + 8..]))
        }
        other => Err(format!(
            "GRE protocol {other:#06x}: neither 0x6558 nor 0x88BE"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn inner() -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(1000, 2000)
            .write(&mut frame, b"payload")
            .unwrap();
        frame
    }

    #[test]
    fn vxlan_over_ipv4_every_field() {
        let mut body = vec![0x08, 0, 0, 0, 0, 0, 101, 0];
        body.extend_from_slice(&inner());
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 0x11])
            .ipv4([10, 77, 0, 10], [10, 77, 0, 11], 64)
            .udp(50000, 4789)
            .write(&mut frame, &body)
            .unwrap();
        let t = decode(&frame).unwrap().unwrap();
        assert_eq!(t.encap, Encap::Vxlan);
        assert_eq!(t.vni(), Some(101));
        assert_eq!(t.inner, inner());
        assert_eq!((t.ttl, t.dont_fragment, t.ip_checksum_ok), (64, true, true));
        let udp = t.udp.unwrap();
        assert_eq!((udp.source_port, udp.destination_port), (50000, 4789));
        assert!(
            udp.checksum != 0 && udp.checksum_ok,
            "etherparse computes it"
        );
        // A flipped payload bit breaks the UDP checksum; a flipped TTL the IPv4 one.
        let mut bad = frame.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!decode(&bad).unwrap().unwrap().udp.unwrap().checksum_ok);
        bad = frame.clone();
        bad[14 + 8] = 63;
        assert!(!decode(&bad).unwrap().unwrap().ip_checksum_ok);
        // Cut inside the VXLAN header: malformed, not "not a tunnel".
        let cut = &frame[..14 + 20 + 8 + 4];
        let mut cut = cut.to_vec();
        cut[14 + 2..14 + 4].copy_from_slice(&(20u16 + 8 + 4).to_be_bytes());
        cut[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&12u16.to_be_bytes());
        assert!(decode(&cut).is_err());
    }

    #[test]
    fn gre_and_erspan_fields() {
        let mut gre = vec![0x20, 0x00, 0x65, 0x58, 0, 0, 0, 9];
        gre.extend_from_slice(&inner());
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv4([10, 77, 0, 10], [10, 77, 0, 12], 64)
            .write(&mut frame, etherparse::IpNumber(47), &gre)
            .unwrap();
        let t = decode(&frame).unwrap().unwrap();
        assert_eq!(
            t.header,
            TunnelHeader::L2gre {
                flags_version: 0x2000,
                protocol: 0x6558,
                key: Some(9)
            }
        );
        assert_eq!(t.inner, inner());

        // S bit, sequence 7; ERSPAN: version 1, VLAN 0, COS 0, En 3, T, session 5, index 0.
        let word: u32 = 1 << 28 | 3 << 11 | 1 << 10 | 5;
        let mut erspan = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 7];
        erspan.extend_from_slice(&word.to_be_bytes());
        erspan.extend_from_slice(&[0; 4]);
        erspan.extend_from_slice(&inner());
        frame.clear();
        PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv4([10, 77, 0, 10], [10, 77, 0, 12], 64)
            .write(&mut frame, etherparse::IpNumber(47), &erspan)
            .unwrap();
        let t = decode(&frame).unwrap().unwrap();
        assert_eq!(
            t.header,
            TunnelHeader::Erspan2 {
                gre_flags_version: 0x1000,
                sequence: Some(7),
                version: 1,
                vlan: 0,
                cos: 0,
                encap_type: 3,
                truncated: true,
                session_id: 5,
                reserved: 0,
                index: 0
            }
        );
        assert_eq!(t.inner, inner());
    }

    #[test]
    fn geneve_over_ipv6_with_an_option_and_its_checksum() {
        let mut body = vec![0x03, 0x00, 0x65, 0x58, 0, 0, 101, 0];
        body.extend_from_slice(&[0xFF, 0xF0, 0x01, 0x02, 0, 0, 101, 1, 0xDE, 0xAD, 0xBE, 0xEF]);
        body.extend_from_slice(&inner());
        let mut frame = Vec::new();
        let source = "fd00:77::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let destination = "fd00:77:1::13"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv6(source, destination, 64)
            .udp(50000, 6081)
            .write(&mut frame, &body)
            .unwrap();
        let t = decode(&frame).unwrap().unwrap();
        let TunnelHeader::Geneve {
            protocol, options, ..
        } = &t.header
        else {
            panic!("{t:?}")
        };
        assert_eq!(*protocol, 0x6558);
        assert_eq!(
            options,
            &[GeneveOption {
                class: 0xFFF0,
                option_type: 1,
                data: vec![0, 0, 101, 1, 0xDE, 0xAD, 0xBE, 0xEF]
            }]
        );
        assert_eq!(t.inner, inner());
        assert!(t.udp.unwrap().checksum_ok);
        // Over IPv6 a zero checksum is not "none" (RFC 8200 §8.1): refused.
        let at = 14 + 40 + 6;
        frame[at..at + 2].copy_from_slice(&[0, 0]);
        assert!(!decode(&frame).unwrap().unwrap().udp.unwrap().checksum_ok);
    }

    #[test]
    fn what_is_not_a_tunnel_is_none() {
        let arp = [0xFFu8; 42];
        assert!(decode(&arp).unwrap().is_none());
        assert!(decode(&inner()).unwrap().is_none(), "UDP to port 2000");
    }
}
