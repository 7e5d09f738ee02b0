//! UDP header (RFC 768).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |   Source Port   |    Dest Port    |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! ```
//! RFC 768: "Length is the length in octets of this user datagram including this header and the
//! data. (This means the minimum value of the length is eight.)" The view exposes the length and
//! stops `payload()` at it; whether it is below 8 or beyond the IP payload is the caller's check,
//! because only the caller knows the IP payload length.

use std::net::Ipv6Addr;

use super::{Error, Field, Result, checksum, read_u16, write_u16};
use crate::flow::ip_proto;

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// The checksum field of a datagram over IPv6 whose pseudo-header, header and data sum to
/// `sum`: its complement, except that a computed 0 is sent as 0xffff (RFC 8200 §8.1), 0 meaning
/// "no checksum".
#[inline]
pub const fn ipv6_checksum_field(sum: u16) -> u16 {
    match checksum::finish(sum) {
        0 => 0xffff,
        value => value,
    }
}

/// A read/write view of a UDP header and the payload bytes present after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Header plus data, in bytes, as the header claims it.
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the length field announces no data (`len() <= 8`).
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum; 0 means "not computed" over IPv4 (RFC 768) and is allowed for tunnels over
    /// IPv6 by RFC 6935/6936.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The sum the checksum protects over IPv6 (RFC 8200 §8.1): the pseudo-header, and the
    /// header and data present up to the length. The buffer must hold the whole datagram.
    fn sum_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let datagram = &self.buffer.as_ref()[..HEADER_LEN + self.payload().len()];
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, datagram.len() as u32);
        checksum::add(pseudo, checksum::sum(datagram))
    }

    /// Whether the checksum of a datagram sent over IPv6 from `src` to `dst` is right (0, "not
    /// computed", is wrong over IPv6 outside the tunnel exceptions of RFC 6935).
    pub fn verify_checksum_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0 && self.sum_ipv6(src, dst) == 0xffff
    }

    /// The data bytes present: from the header to the length, or to the end of the buffer when
    /// the length reaches beyond it (empty when it is below 8).
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let end = usize::from(self.len()).max(HEADER_LEN).min(bytes.len());
        &bytes[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes and writes the checksum of a datagram sent over IPv6 from `src` to `dst`; the
    /// length must be set and the buffer hold the whole datagram. RFC 8200 §8.1: "if that
    /// computation yields a result of zero, it must be changed to hex FFFF for placement in the
    /// UDP header."
    pub fn fill_checksum_ipv6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let sum = self.sum_ipv6(src, dst);
        self.set_checksum(ipv6_checksum_field(sum));
    }

    /// The data bytes present (see [`Packet::payload`]), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len())
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static PACKET: [u8; 14] = [
        0xc3, 0x50, // source port 50000
        0x12, 0xb5, // destination port 4789 (VXLAN)
        0x00, 0x0c, // length 12: header + 4 bytes
        0x00, 0x00, // checksum 0: not computed
        0x08, 0x00, 0x00, 0x00, // data
        0xee, 0xee, // beyond the length
    ];

    #[test]
    fn deconstruct() {
        let udp = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(udp.src_port(), 50000);
        assert_eq!(udp.dst_port(), 4789);
        assert_eq!(udp.len(), 12);
        assert!(!udp.is_empty());
        assert_eq!(udp.checksum(), 0);
        assert_eq!(udp.payload(), &[0x08, 0, 0, 0]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xeeu8; 14];
        let mut udp = Packet::new_unchecked(&mut bytes[..]);
        udp.set_src_port(50000);
        udp.set_dst_port(4789);
        udp.set_len(12);
        udp.set_checksum(0);
        udp.payload_mut().copy_from_slice(&[0x08, 0, 0, 0]);
        assert_eq!(bytes, PACKET);
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&PACKET[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(
            Packet::new_checked(&PACKET[..8])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn length_below_header_or_past_buffer_is_clamped() {
        let mut bytes = PACKET;
        bytes[4..6].copy_from_slice(&3u16.to_be_bytes());
        assert!(
            Packet::new_checked(&bytes[..])
                .unwrap()
                .payload()
                .is_empty()
        );
        bytes[4..6].copy_from_slice(&400u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().payload().len(), 6);
    }

    #[test]
    fn ipv6_checksum_matches_an_independent_encoder() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut bytes = PACKET[..12].to_vec();
        Packet::new_unchecked(&mut bytes[..]).fill_checksum_ipv6(src, dst);
        let (header, payload) = etherparse::UdpHeader::from_slice(&bytes).unwrap();
        let ip = etherparse::Ipv6Header {
            payload_length: 12,
            next_header: etherparse::IpNumber::UDP,
            source: src.octets(),
            destination: dst.octets(),
            ..Default::default()
        };
        assert_eq!(
            header.calc_checksum_ipv6(&ip, payload).unwrap(),
            header.checksum
        );
        let udp = Packet::new_checked(&bytes[..]).unwrap();
        assert!(udp.verify_checksum_ipv6(src, dst));
        assert!(!udp.verify_checksum_ipv6(src, "2001:db8::3".parse().unwrap()));
        bytes[6..8].copy_from_slice(&[0, 0]);
        assert!(
            !Packet::new_checked(&bytes[..])
                .unwrap()
                .verify_checksum_ipv6(src, dst)
        );
    }

    #[test]
    fn a_zero_ipv6_checksum_is_sent_as_all_ones() {
        // Data chosen so that the sum is all ones: the checksum computes to 0.
        let (src, dst) = (Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED);
        let mut bytes = [0u8; 10];
        bytes[4..6].copy_from_slice(&10u16.to_be_bytes());
        let partial = checksum::add(
            checksum::pseudo_header_v6(src, dst, ip_proto::UDP, 10),
            checksum::sum(&bytes),
        );
        bytes[8..10].copy_from_slice(&(!partial).to_be_bytes());
        let mut udp = Packet::new_unchecked(&mut bytes[..]);
        udp.fill_checksum_ipv6(src, dst);
        assert_eq!(udp.checksum(), 0xffff);
        assert!(udp.verify_checksum_ipv6(src, dst));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(udp) = Packet::new_checked(&bytes[..]) {
                let _ = (udp.src_port(), udp.dst_port(), udp.len(), udp.checksum(), udp.payload());
            }
        }

        #[test]
        fn emit_then_parse(src: u16, dst: u16, checksum: u16, payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut bytes = vec![0u8; HEADER_LEN + payload.len()];
            let mut udp = Packet::new_unchecked(&mut bytes[..]);
            udp.set_src_port(src);
            udp.set_dst_port(dst);
            udp.set_len((HEADER_LEN + payload.len()) as u16);
            udp.set_checksum(checksum);
            udp.payload_mut().copy_from_slice(&payload);
            let udp = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((udp.src_port(), udp.dst_port(), udp.checksum()), (src, dst, checksum));
            prop_assert_eq!(udp.payload(), &payload[..]);
        }
    }
}
