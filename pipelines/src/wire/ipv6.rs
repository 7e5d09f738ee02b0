//! IPv6 header (RFC 8200) and its extension-header chain.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                  Source Address (128 bits)                    |
//! |               Destination Address (128 bits)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Design
//! [`Packet`] is the fixed 40-byte header; [`ExtHeader`] is one extension header;
//! [`walk_extension_headers`] follows the Next Header chain to the upper-layer protocol. The walk
//! is bounded twice by construction: it visits at most [`MAX_EXTENSION_HEADERS`] headers (a `for`
//! over a fixed range, not a loop on packet data), and every header it visits is at least 8 bytes
//! long and entirely inside the buffer, so it can neither spin nor read past the end.
//!
//! # Limitations
//! Only the extension headers named in RFC 8200 §4 plus AH (RFC 4302) are walked: Hop-by-Hop
//! Options, Routing, Fragment, Destination Options, Authentication. ESP (50) hides what follows
//! and is reported as the upper layer, and so are Mobility (135), HIP (139) and Shim6 (140),
//! which a mirrored data packet does not carry in practice. Jumbograms (payload length 0 with a
//! Hop-by-Hop jumbo option, RFC 2675) are not recognised: their payload length reads as 0.

use std::net::Ipv6Addr;

use super::{Error, Field, Result, read_u16, read_u32, write_u16, write_u32};

mod field {
    use super::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// The most extension headers [`walk_extension_headers`] follows before giving up. RFC 8200 §4.1
/// lets each header type appear once (Destination Options twice), so a legitimate packet has at
/// most 7 of the 5 kinds walked here (6 without AH, plus the second Destination Options); 8 leaves
/// room for one repeated header and stops chains built to exhaust a parser.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Next Header values of the extension headers that are walked.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTHENTICATION: u8 = 51;
    pub const DESTINATION_OPTIONS: u8 = 60;
    /// "No Next Header": nothing follows (an upper layer with no bytes).
    pub const NO_NEXT_HEADER: u8 = 59;
}

/// Whether `value` names an extension header that [`walk_extension_headers`] walks past.
pub const fn is_extension_header(value: u8) -> bool {
    matches!(
        value,
        next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::FRAGMENT
            | next_header::AUTHENTICATION
            | next_header::DESTINATION_OPTIONS
    )
}

/// A read/write view of the fixed IPv6 header and the payload bytes present after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_header`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_header()?;
        Ok(packet)
    }

    /// `Truncated` when fewer than 40 bytes are present, `BadVersion` when the version is not 6.
    /// The payload length is not checked against the buffer (see the module `wire`).
    pub fn check_header(&self) -> Result<()> {
        let bytes = self.buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if bytes[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        (read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Bytes after the fixed header (extension headers included), as the header claims it.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The type of the first header after the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr_bytes(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr_bytes(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// The payload bytes present: up to the payload length, or to the end of the buffer when the
    /// payload length reaches beyond it.
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(bytes.len());
        &bytes[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label (20 bits kept).
    pub fn set_version_class_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let value = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, value);
    }

    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, value);
    }

    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value;
    }

    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload bytes present (see [`Packet::payload`]), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The solicited-node multicast group of `addr`. RFC 4291 §2.7.1: "A Solicited-Node multicast
/// address is formed by taking the low-order 24 bits of an address (unicast or anycast) and
/// appending those bits to the prefix FF02:0:0:0:0:1:FF00::/104".
pub const fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from_bits(0xff02_0000_0000_0000_0000_0001_ff00_0000 | (addr.to_bits() & 0xff_ffff))
}

/// The Ethernet address an IPv6 multicast group is sent to. RFC 2464 §7: "An IPv6 packet with a
/// multicast destination address DST [...] is transmitted to the Ethernet multicast address
/// whose first two octets are the value 3333 hexadecimal and whose last four octets are the last
/// four octets of DST."
pub const fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn addr_bytes(slice: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(slice);
    out
}

mod ext_field {
    use super::Field;

    pub const NEXT_HEADER: usize = 0;
    pub const LENGTH: usize = 1;
    /// Fragment header: offset (13 bits), 2 reserved bits, M flag.
    pub const FRAG_OFFSET_M: Field = 2..4;
    /// Fragment header: identification.
    pub const FRAG_IDENT: Field = 4..8;
}

/// The smallest extension header: every kind walked here is at least 8 bytes.
pub const MIN_EXT_HEADER_LEN: usize = 8;

/// What a Fragment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Offset of this fragment's data in the original packet, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// Whether the packet really is a piece of a larger one. RFC 6946 §4: a packet with a
    /// Fragment header whose "Fragment Offset" is 0 and whose "M" flag is 0 (an *atomic
    /// fragment*) "MUST [be processed] in isolation from any other packets/fragments": it is a
    /// whole packet.
    pub const fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more
    }
}

/// A read/write view of one extension header of kind `kind` (a [`next_header`] value).
#[derive(Debug, Clone)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps `buffer`, the start of an extension header of type `kind`, without checking it.
    pub const fn new_unchecked(buffer: T, kind: u8) -> ExtHeader<T> {
        ExtHeader { buffer, kind }
    }

    /// Wraps `buffer` after checking that the whole header, as long as its length field says,
    /// is present (`Truncated` otherwise).
    pub fn new_checked(buffer: T, kind: u8) -> Result<ExtHeader<T>> {
        let header = ExtHeader::new_unchecked(buffer, kind);
        let bytes = header.buffer.as_ref();
        if bytes.len() < MIN_EXT_HEADER_LEN || bytes.len() < header.header_len() {
            return Err(Error::Truncated);
        }
        Ok(header)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Next Header value this header was wrapped with.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The type of the header that follows.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NEXT_HEADER]
    }

    /// Length of this header in bytes.
    ///
    /// RFC 8200 §4.3/4.4/4.6: "Hdr Ext Len: Length of the [...] header in 8-octet units, not
    /// including the first 8 octets." §4.5: the Fragment header has no length field and is
    /// always 8 octets. RFC 4302 §2.2 (AH): "This 8-bit field specifies the length of AH in
    /// 32-bit words (4-byte units), minus '2'."
    pub fn header_len(&self) -> usize {
        let length_field = usize::from(self.buffer.as_ref()[ext_field::LENGTH]);
        match self.kind {
            next_header::FRAGMENT => MIN_EXT_HEADER_LEN,
            next_header::AUTHENTICATION => (length_field + 2) * 4,
            _ => (length_field + 1) * 8,
        }
    }

    /// The Fragment header's fields, when this is one.
    pub fn fragment(&self) -> Option<Fragment> {
        if self.kind != next_header::FRAGMENT {
            return None;
        }
        let bytes = self.buffer.as_ref();
        let offset_m = read_u16(bytes, ext_field::FRAG_OFFSET_M);
        Some(Fragment {
            offset: offset_m & 0xfff8,
            more: offset_m & 1 != 0,
            ident: read_u32(bytes, ext_field::FRAG_IDENT),
        })
    }

    /// The header's bytes after Next Header and the length field (options, routing data, …).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[2..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[ext_field::NEXT_HEADER] = value;
    }

    /// Sets the length field so that the header is `header_len` bytes (a multiple of 8, or of 4
    /// for AH; ignored for a Fragment header, whose second byte is reserved and set to 0).
    pub fn set_header_len(&mut self, header_len: usize) {
        let value = match self.kind {
            next_header::FRAGMENT => 0,
            next_header::AUTHENTICATION => header_len / 4 - 2,
            _ => header_len / 8 - 1,
        };
        self.buffer.as_mut()[ext_field::LENGTH] = value as u8;
    }

    /// Writes a Fragment header's offset (bytes, a multiple of 8), M flag and identification.
    pub fn set_fragment(&mut self, fragment: Fragment) {
        let offset_m = (fragment.offset & 0xfff8) | u16::from(fragment.more);
        let bytes = self.buffer.as_mut();
        write_u16(bytes, ext_field::FRAG_OFFSET_M, offset_m);
        write_u32(bytes, ext_field::FRAG_IDENT, fragment.ident);
    }
}

/// Where the extension-header chain led.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chain {
    /// The upper-layer protocol (or, in an [`ChainError`], the header that could not be walked).
    pub protocol: u8,
    /// Bytes of extension headers walked: the upper-layer header starts this far after the fixed
    /// header.
    pub len: usize,
    /// Extension headers walked.
    pub count: u8,
    /// The Fragment header's fields, if the chain has one.
    pub fragment: Option<Fragment>,
}

/// Why the chain could not be followed to its upper layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainErrorKind {
    /// An extension header runs past the bytes given.
    Truncated,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    TooMany,
}

/// A chain walk that stopped early, with what was learnt before it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainError {
    pub kind: ChainErrorKind,
    /// The walk so far; `partial.protocol` is the header type it could not walk past.
    pub partial: Chain,
}

/// Follows the extension headers in `bytes` (the bytes after the fixed header; pass
/// [`Packet::payload`] so that the chain must fit in the payload length) starting from the fixed
/// header's `first` Next Header value, to the upper-layer protocol.
pub fn walk_extension_headers(first: u8, bytes: &[u8]) -> std::result::Result<Chain, ChainError> {
    let mut chain = Chain {
        protocol: first,
        len: 0,
        count: 0,
        fragment: None,
    };
    for _ in 0..MAX_EXTENSION_HEADERS {
        if !is_extension_header(chain.protocol) {
            return Ok(chain);
        }
        let header = bytes
            .get(chain.len..)
            .and_then(|rest| ExtHeader::new_checked(rest, chain.protocol).ok())
            .ok_or(ChainError {
                kind: ChainErrorKind::Truncated,
                partial: chain,
            })?;
        if let Some(fragment) = header.fragment() {
            chain.fragment = Some(fragment);
        }
        chain.len += header.header_len();
        chain.count += 1;
        chain.protocol = header.next_header();
    }
    if is_extension_header(chain.protocol) {
        Err(ChainError {
            kind: ChainErrorKind::TooMany,
            partial: chain,
        })
    } else {
        Ok(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[rustfmt::skip]
    static PACKET: [u8; 90] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow label 0x12345
        0x00, 0x30, // payload length 48: 44 bytes of extension headers, 4 of UDP
        0x00, // next header: Hop-by-Hop
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination 2001:db8::2
        // Hop-by-Hop: next Routing, length 0 (8 bytes), PadN option
        0x2b, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
        // Routing: next Fragment, length 0, type 4, segments left 0, 4 bytes of data
        0x2c, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        // Fragment: next Destination Options, reserved, offset 16 units (128 bytes), M=1, ident
        0x3c, 0x00, 0x00, 0x81, 0xca, 0xfe, 0xba, 0xbe,
        // Destination Options: next AH, length 0
        0x33, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
        // AH: next UDP, payload length 1 ((1+2)*4 = 12 bytes), reserved, SPI, sequence
        0x11, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07,
        // upper layer (UDP ports)
        0x12, 0x34, 0x56, 0x78,
        // padding beyond the payload length
        0xee, 0xee,
    ];

    #[test]
    fn deconstruct() {
        let ip = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.traffic_class(), 0xb8);
        assert_eq!(ip.flow_label(), 0x12345);
        assert_eq!(ip.payload_len(), 48);
        assert_eq!(ip.next_header(), next_header::HOP_BY_HOP);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!(ip.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.payload().len(), 48, "padding is not payload");

        let chain = walk_extension_headers(ip.next_header(), ip.payload()).unwrap();
        assert_eq!(chain.protocol, 17);
        assert_eq!(chain.len, 44);
        assert_eq!(chain.count, 5);
        assert_eq!(
            chain.fragment,
            Some(Fragment {
                offset: 128,
                more: true,
                ident: 0xcafe_babe
            })
        );
        assert_eq!(&ip.payload()[chain.len..], &[0x12, 0x34, 0x56, 0x78]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 90];
        bytes[88..].copy_from_slice(&[0xee, 0xee]);
        let mut ip = Packet::new_unchecked(&mut bytes[..]);
        ip.set_version_class_flow(0xb8, 0x12345);
        ip.set_payload_len(48);
        ip.set_next_header(next_header::HOP_BY_HOP);
        ip.set_hop_limit(64);
        ip.set_src_addr("2001:db8::1".parse().unwrap());
        ip.set_dst_addr("2001:db8::2".parse().unwrap());
        let payload = ip.payload_mut();
        let headers = [
            (next_header::HOP_BY_HOP, next_header::ROUTING, 8, 0),
            (next_header::ROUTING, next_header::FRAGMENT, 8, 8),
            (
                next_header::FRAGMENT,
                next_header::DESTINATION_OPTIONS,
                8,
                16,
            ),
            (
                next_header::DESTINATION_OPTIONS,
                next_header::AUTHENTICATION,
                8,
                24,
            ),
            (next_header::AUTHENTICATION, 17, 12, 32),
        ];
        for (kind, next, len, at) in headers {
            let mut header = ExtHeader::new_unchecked(&mut payload[at..at + len], kind);
            header.set_next_header(next);
            header.set_header_len(len);
            if kind == next_header::FRAGMENT {
                header.set_fragment(Fragment {
                    offset: 128,
                    more: true,
                    ident: 0xcafe_babe,
                });
            }
        }
        payload[2..4].copy_from_slice(&[0x01, 0x04]); // Hop-by-Hop PadN
        payload[10] = 0x04; // routing type 4
        payload[26..28].copy_from_slice(&[0x01, 0x04]); // Destination Options PadN
        payload[38..40].copy_from_slice(&[0x01, 0x00]); // AH SPI low bytes
        payload[43] = 0x07; // AH sequence
        payload[44..48].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(bytes, PACKET);
    }

    #[test]
    fn truncated_fixed_header() {
        assert_eq!(
            Packet::new_checked(&PACKET[..39]).unwrap_err(),
            Error::Truncated
        );
        assert!(
            Packet::new_checked(&PACKET[..40])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn bad_version() {
        let mut bytes = PACKET;
        bytes[0] = 0x4b;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn truncated_extension_header_fixed_part() {
        // 4 bytes into the Hop-by-Hop header: not even its minimum 8.
        let err = walk_extension_headers(next_header::HOP_BY_HOP, &PACKET[40..44]).unwrap_err();
        assert_eq!(err.kind, ChainErrorKind::Truncated);
        assert_eq!(err.partial.protocol, next_header::HOP_BY_HOP);
        assert_eq!(err.partial.count, 0);
    }

    #[test]
    fn truncated_extension_header_by_its_length_field() {
        // Hop-by-Hop claims 3 units (32 bytes) but only 24 bytes remain.
        let bytes = [
            0x11, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            ExtHeader::new_checked(&bytes[..], next_header::HOP_BY_HOP).unwrap_err(),
            Error::Truncated
        );
        let err = walk_extension_headers(next_header::HOP_BY_HOP, &bytes).unwrap_err();
        assert_eq!(err.kind, ChainErrorKind::Truncated);
    }

    #[test]
    fn truncated_by_the_payload_length() {
        // The chain is whole in the buffer but the payload length stops in the AH header.
        let mut bytes = PACKET;
        bytes[4..6].copy_from_slice(&36u16.to_be_bytes());
        let ip = Packet::new_checked(&bytes[..]).unwrap();
        let err = walk_extension_headers(ip.next_header(), ip.payload()).unwrap_err();
        assert_eq!(err.kind, ChainErrorKind::Truncated);
        assert_eq!(err.partial.protocol, next_header::AUTHENTICATION);
        assert_eq!(err.partial.count, 4);
        assert!(err.partial.fragment.is_some());
    }

    #[test]
    fn authentication_header_length_is_in_four_byte_units_plus_two() {
        let ah = [
            0x06, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let header = ExtHeader::new_checked(&ah[..], next_header::AUTHENTICATION).unwrap();
        assert_eq!(header.header_len(), 24);
        assert_eq!(
            walk_extension_headers(next_header::AUTHENTICATION, &ah)
                .unwrap()
                .len,
            24
        );
        assert_eq!(
            ExtHeader::new_checked(&ah[..23], next_header::AUTHENTICATION).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn at_most_eight_extension_headers() {
        // Nine Destination Options headers, each pointing at the next, then TCP.
        let mut bytes = vec![0u8; 9 * 8];
        for i in 0..9 {
            bytes[i * 8] = if i == 8 {
                6
            } else {
                next_header::DESTINATION_OPTIONS
            };
        }
        let err = walk_extension_headers(next_header::DESTINATION_OPTIONS, &bytes).unwrap_err();
        assert_eq!(err.kind, ChainErrorKind::TooMany);
        assert_eq!(err.partial.count, 8);
        // Eight of them are fine.
        let chain = walk_extension_headers(next_header::DESTINATION_OPTIONS, &bytes[8..]).unwrap();
        assert_eq!((chain.protocol, chain.count, chain.len), (6, 8, 64));
    }

    #[test]
    fn no_extension_headers_and_no_next_header() {
        assert_eq!(
            walk_extension_headers(6, &[]).unwrap(),
            Chain {
                protocol: 6,
                len: 0,
                count: 0,
                fragment: None
            }
        );
        let chain = walk_extension_headers(next_header::NO_NEXT_HEADER, &[1, 2, 3]).unwrap();
        assert_eq!(chain.protocol, next_header::NO_NEXT_HEADER);
    }

    #[test]
    fn solicited_node_groups_and_their_macs() {
        let addr: Ipv6Addr = "2600:1f18:5::12:3456".parse().unwrap();
        let group = solicited_node(addr);
        assert_eq!(group, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(group), [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(
            multicast_mac("ff02::1".parse().unwrap()),
            [0x33, 0x33, 0, 0, 0, 1]
        );
    }

    #[test]
    fn atomic_fragment_is_not_a_fragment() {
        assert!(
            !Fragment {
                offset: 0,
                more: false,
                ident: 1
            }
            .is_fragment()
        );
        assert!(
            Fragment {
                offset: 0,
                more: true,
                ident: 1
            }
            .is_fragment()
        );
        assert!(
            Fragment {
                offset: 8,
                more: false,
                ident: 1
            }
            .is_fragment()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(ip) = Packet::new_checked(&bytes[..]) {
                let _ = (ip.traffic_class(), ip.flow_label(), ip.hop_limit(), ip.src_addr(), ip.dst_addr());
                match walk_extension_headers(ip.next_header(), ip.payload()) {
                    Ok(chain) => prop_assert!(chain.len <= ip.payload().len()),
                    Err(err) => prop_assert!(err.partial.len <= ip.payload().len()),
                }
            }
        }

        #[test]
        fn arbitrary_chains_never_panic(first in prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60)],
                                        bytes in proptest::collection::vec(prop_oneof![Just(0u8), Just(44), Just(51), Just(60), any::<u8>()], 0..200)) {
            match walk_extension_headers(first, &bytes) {
                Ok(chain) => prop_assert!(chain.len <= bytes.len() && usize::from(chain.count) <= MAX_EXTENSION_HEADERS),
                Err(err) => prop_assert!(err.partial.len <= bytes.len() && usize::from(err.partial.count) <= MAX_EXTENSION_HEADERS),
            }
        }

        #[test]
        fn emit_then_parse(traffic_class: u8, flow_label in 0u32..(1 << 20), hop_limit: u8, src: [u8; 16], dst: [u8; 16],
                           kinds in proptest::collection::vec(prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60)], 0..=8),
                           units in proptest::collection::vec(0usize..4, 8), upper: u8,
                           payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(!is_extension_header(upper));
            let lens: Vec<usize> = kinds.iter().zip(&units).map(|(&kind, &u)| match kind {
                next_header::FRAGMENT => 8,
                next_header::AUTHENTICATION => (u + 2) * 4,
                _ => (u + 1) * 8,
            }).collect();
            let chain_len: usize = lens.iter().sum();
            let mut bytes = vec![0u8; HEADER_LEN + chain_len + payload.len()];
            let mut ip = Packet::new_unchecked(&mut bytes[..]);
            ip.set_version_class_flow(traffic_class, flow_label);
            ip.set_payload_len((chain_len + payload.len()) as u16);
            ip.set_next_header(kinds.first().copied().unwrap_or(upper));
            ip.set_hop_limit(hop_limit);
            ip.set_src_addr(src.into());
            ip.set_dst_addr(dst.into());
            let mut at = HEADER_LEN;
            for (i, (&kind, &len)) in kinds.iter().zip(&lens).enumerate() {
                let mut header = ExtHeader::new_unchecked(&mut bytes[at..at + len], kind);
                header.set_next_header(kinds.get(i + 1).copied().unwrap_or(upper));
                header.set_header_len(len);
                if kind == next_header::FRAGMENT {
                    header.set_fragment(Fragment { offset: 64, more: false, ident: 9 });
                }
                at += len;
            }
            bytes[at..].copy_from_slice(&payload);
            let ip = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((ip.traffic_class(), ip.flow_label(), ip.hop_limit()), (traffic_class, flow_label, hop_limit));
            prop_assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv6Addr::from(src), Ipv6Addr::from(dst)));
            let chain = walk_extension_headers(ip.next_header(), ip.payload()).unwrap();
            prop_assert_eq!(chain.protocol, upper);
            prop_assert_eq!(chain.len, chain_len);
            prop_assert_eq!(usize::from(chain.count), kinds.len());
            prop_assert_eq!(chain.fragment.is_some(), kinds.contains(&next_header::FRAGMENT));
            prop_assert_eq!(&ip.payload()[chain.len..], &payload[..]);
        }
    }
}
