//! IPv4 header (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (IHL > 5)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `new_checked` validates the header itself (version, IHL, the IHL's bytes present). The total
//! length is exposed and `payload()` stops at it, but a total length beyond the buffer is not an
//! error of the view: the buffer may be a first segment or a deliberately truncated mirror copy.

use std::net::Ipv4Addr;

use super::{Error, Field, Result, checksum, read_u16, write_u16};

mod field {
    use super::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLAGS_FRAG_OFFSET: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options (IHL 5).
pub const MIN_HEADER_LEN: usize = 20;

const FLAG_DONT_FRAGMENT: u16 = 0x4000;
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 header and the payload bytes present after it.
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

    /// Checks, in this order: 20 bytes present (`Truncated`), version 4 (`BadVersion`), IHL at
    /// least 5 (`BadHeaderLength`), the IHL's bytes present (`Truncated`).
    ///
    /// RFC 791 §3.1: "Internet Header Length is the length of the internet header in 32 bit
    /// words, and thus points to the beginning of the data. Note that the minimum value for a
    /// correct header is 5."
    pub fn check_header(&self) -> Result<()> {
        let bytes = self.buffer.as_ref();
        let Some(&ver_ihl) = bytes.get(field::VER_IHL) else {
            return Err(Error::Truncated);
        };
        if bytes.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if ver_ihl >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = usize::from(ver_ihl & 0x0f) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if bytes.len() < header_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The former TOS byte: DSCP (6 bits) and ECN (2 bits).
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram in bytes, header included, as the header claims it.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET) & FLAG_DONT_FRAGMENT != 0
    }

    pub fn more_fragments(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET) & FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn fragment_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET) & FRAG_OFFSET_MASK) * 8
    }

    /// Whether this datagram is one fragment of a larger one. RFC 791 §3.2: a datagram is
    /// complete when "the more-fragments flag is zero and the fragment offset is zero"; anything
    /// else is a fragment, the first (offset 0, MF set) included.
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET)
            & (FLAG_MORE_FRAGMENTS | FRAG_OFFSET_MASK)
            != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload (an IP protocol number, `flow::ip_proto`).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum is right (RFC 791: the one's complement sum of the header,
    /// checksum included, is all ones).
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The payload bytes present: from the end of the header to the total length, or to the end
    /// of the buffer when the total length reaches beyond it (empty when it is below the header
    /// length).
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let start = self.header_len();
        let end = usize::from(self.total_len()).max(start).min(bytes.len());
        &bytes[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the IHL for a header of `header_len` bytes (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::TOTAL_LEN, value);
    }

    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    /// Sets the DF and MF flags and the fragment offset (in bytes, a multiple of 8).
    pub fn set_fragmentation(
        &mut self,
        dont_fragment: bool,
        more_fragments: bool,
        offset_bytes: u16,
    ) {
        let mut value = (offset_bytes / 8) & FRAG_OFFSET_MASK;
        if dont_fragment {
            value |= FLAG_DONT_FRAGMENT;
        }
        if more_fragments {
            value |= FLAG_MORE_FRAGMENTS;
        }
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG_OFFSET, value);
    }

    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum (for emitting; the data path never does this).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::sum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(checksum::finish(sum));
    }

    /// The payload bytes present (see [`Packet::payload`]), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len())
            .max(start)
            .min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static PACKET: [u8; 30] = [
        0x46, // version 4, IHL 6 (24 bytes: one option word)
        0xb8, // DSCP 46 (EF), ECN 0
        0x00, 0x1c, // total length 28: 24 header + 4 payload
        0x12, 0x34, // identification
        0x20, 0x03, // MF set, fragment offset 3 units = 24 bytes
        0x40, // TTL 64
        0x11, // protocol UDP
        0x00, 0x00, // checksum (filled in by the test)
        0x0a, 0x00, 0x00, 0x01, // source 10.0.0.1
        0xc0, 0xa8, 0x01, 0x02, // destination 192.168.1.2
        0x01, 0x01, 0x01, 0x00, // options: NOP NOP NOP EOL
        0xaa, 0xbb, 0xcc, 0xdd, // payload
        0xee, 0xff, // Ethernet padding beyond the total length
    ];

    fn packet_with_checksum() -> [u8; 30] {
        let mut bytes = PACKET;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        bytes
    }

    #[test]
    fn deconstruct() {
        let bytes = packet_with_checksum();
        let ip = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 24);
        assert_eq!(ip.dscp_ecn(), 0xb8);
        assert_eq!(ip.total_len(), 28);
        assert_eq!(ip.ident(), 0x1234);
        assert!(!ip.dont_fragment() && ip.more_fragments());
        assert_eq!(ip.fragment_offset(), 24);
        assert!(ip.is_fragment());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), 17);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(ip.options(), &[1, 1, 1, 0]);
        assert_eq!(
            ip.payload(),
            &[0xaa, 0xbb, 0xcc, 0xdd],
            "padding after the total length is not payload"
        );
        assert!(ip.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 30];
        bytes[28..].copy_from_slice(&[0xee, 0xff]);
        let mut ip = Packet::new_unchecked(&mut bytes[..]);
        ip.set_version_and_header_len(24);
        ip.set_dscp_ecn(0xb8);
        ip.set_total_len(28);
        ip.set_ident(0x1234);
        ip.set_fragmentation(false, true, 24);
        ip.set_ttl(64);
        ip.set_protocol(17);
        ip.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        ip.set_dst_addr(Ipv4Addr::new(192, 168, 1, 2));
        ip.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        bytes[20..24].copy_from_slice(&[1, 1, 1, 0]);
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(bytes, packet_with_checksum());
    }

    #[test]
    fn checksum_matches_an_independent_encoder() {
        let mut header = etherparse::Ipv4Header::new(
            100,
            63,
            etherparse::IpNumber::TCP,
            [1, 2, 3, 4],
            [5, 6, 7, 8],
        )
        .unwrap();
        header.header_checksum = header.calc_header_checksum();
        let mut bytes = header.to_bytes().to_vec();
        let expected = Packet::new_checked(&bytes[..]).unwrap().checksum();
        let mut ip = Packet::new_unchecked(&mut bytes[..]);
        ip.fill_checksum();
        assert_eq!(ip.checksum(), expected);
        assert!(Packet::new_checked(&bytes[..]).unwrap().verify_checksum());
    }

    #[test]
    fn truncated_fixed_header() {
        assert_eq!(
            Packet::new_checked(&PACKET[..0]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET[..19]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn truncated_options() {
        // 20 bytes present, but IHL 6 announces 24.
        assert_eq!(
            Packet::new_checked(&PACKET[..23]).unwrap_err(),
            Error::Truncated
        );
        assert!(
            Packet::new_checked(&PACKET[..24])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn bad_version() {
        let mut bytes = PACKET;
        bytes[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn ihl_below_five() {
        let mut bytes = PACKET;
        bytes[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadHeaderLength
        );
    }

    #[test]
    fn payload_is_clamped_to_the_buffer_and_the_header() {
        let mut bytes = PACKET;
        bytes[2..4].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().payload().len(),
            6,
            "total length past the buffer"
        );
        bytes[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert!(
            Packet::new_checked(&bytes[..])
                .unwrap()
                .payload()
                .is_empty(),
            "total length inside the header"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(ip) = Packet::new_checked(&bytes[..]) {
                let _ = (ip.header_len(), ip.total_len(), ip.is_fragment(), ip.fragment_offset(), ip.protocol());
                let _ = (ip.src_addr(), ip.dst_addr(), ip.options(), ip.payload(), ip.verify_checksum());
            }
        }

        #[test]
        fn emit_then_parse(
            options_words in 0usize..=10, dscp: u8, ident: u16, df: bool, mf: bool, offset in 0u16..8192,
            ttl: u8, protocol: u8, src: [u8; 4], dst: [u8; 4], payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let header_len = MIN_HEADER_LEN + options_words * 4;
            let mut bytes = vec![0u8; header_len + payload.len()];
            let mut ip = Packet::new_unchecked(&mut bytes[..]);
            ip.set_version_and_header_len(header_len);
            ip.set_dscp_ecn(dscp);
            ip.set_total_len((header_len + payload.len()) as u16);
            ip.set_ident(ident);
            ip.set_fragmentation(df, mf, offset * 8);
            ip.set_ttl(ttl);
            ip.set_protocol(protocol);
            ip.set_src_addr(src.into());
            ip.set_dst_addr(dst.into());
            ip.payload_mut().copy_from_slice(&payload);
            ip.fill_checksum();
            let ip = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(ip.header_len(), header_len);
            prop_assert_eq!((ip.dscp_ecn(), ip.ident(), ip.ttl(), ip.protocol()), (dscp, ident, ttl, protocol));
            prop_assert_eq!((ip.dont_fragment(), ip.more_fragments(), ip.fragment_offset()), (df, mf, offset * 8));
            prop_assert_eq!(ip.is_fragment(), mf || offset != 0);
            prop_assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Addr::from(src), Ipv4Addr::from(dst)));
            prop_assert_eq!(ip.payload(), &payload[..]);
            prop_assert!(ip.verify_checksum());
        }
    }
}
