//! GRE header (RFC 2784) with the key and sequence number extensions (RFC 2890).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Design
//! The three optional words are present exactly when their bit is set, in this order: RFC 2784
//! §2.3 "If the Checksum Present bit is set to one, then the Checksum and the Reserved1 fields
//! are present", RFC 2890 §2.1 "If the Key Present bit is set to 1, then it indicates that the
//! Key field is present in the GRE header", §2.2 likewise for the Sequence Number. The header is
//! therefore 4 to 16 bytes, and `new_checked` checks the bytes its own bits announce.
//!
//! RFC 2784 §2.3.2: "The Version Number field MUST contain the value zero." Version 1 is PPTP's
//! enhanced GRE (RFC 2637), laid out differently, so `new_checked` refuses any other version
//! (`BadVersion`). The Reserved0 bits are reported ([`Packet::reserved0`]), not judged: RFC 2784
//! §2.3.1 has a receiver discard packets whose bits 1–5 are set "unless that receiver implements
//! RFC 1701", and which of the two it is, is the caller's decision.
//!
//! The protocol type shares the EtherType registry: 0x6558 (transparent Ethernet bridging) for
//! L2GRE, 0x88BE for ERSPAN types I and II ([`super::erspan`]).

use super::{Error, EtherType, Field, Result, checksum, read_u16, read_u32, write_u16, write_u32};

mod field {
    use super::Field;

    pub const FLAGS_VERSION: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    pub const OPTIONAL: usize = 4;
}

/// Length of the header without optional fields.
pub const MIN_HEADER_LEN: usize = field::OPTIONAL;
/// Length of the header with checksum, key and sequence number.
pub const MAX_HEADER_LEN: usize = MIN_HEADER_LEN + 12;

const FLAG_CHECKSUM: u16 = 0x8000;
const FLAG_KEY: u16 = 0x2000;
const FLAG_SEQUENCE: u16 = 0x1000;
const VERSION_MASK: u16 = 0x0007;
/// Reserved0: every bit of the first word but C, K, S and the version (bit 1 is RFC 1701's
/// Routing Present, bit 4 its Strict Source Route, bits 5–7 its Recursion Control).
const RESERVED0_MASK: u16 = !(FLAG_CHECKSUM | FLAG_KEY | FLAG_SEQUENCE | VERSION_MASK);

/// Length of a header with the given optional fields.
pub const fn header_len(checksum: bool, key: bool, sequence: bool) -> usize {
    MIN_HEADER_LEN + 4 * (checksum as usize + key as usize + sequence as usize)
}

/// A read/write view of a GRE header and the payload after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking, in this order: the 4-byte fixed part is present
    /// (`Truncated`), the version is 0 (`BadVersion`), the optional fields the flags announce are
    /// present (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 0 {
            return Err(Error::BadVersion);
        }
        if len < packet.header_len() {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn flags_version(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_VERSION)
    }

    /// The C bit: the Checksum and Reserved1 fields are present.
    pub fn has_checksum(&self) -> bool {
        self.flags_version() & FLAG_CHECKSUM != 0
    }

    /// The K bit: the Key field is present.
    pub fn has_key(&self) -> bool {
        self.flags_version() & FLAG_KEY != 0
    }

    /// The S bit: the Sequence Number field is present.
    pub fn has_sequence(&self) -> bool {
        self.flags_version() & FLAG_SEQUENCE != 0
    }

    /// The Reserved0 bits, in place (the C, K, S and version bits masked out).
    pub fn reserved0(&self) -> u16 {
        self.flags_version() & RESERVED0_MASK
    }

    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION_MASK) as u8
    }

    /// The type of the payload, from the EtherType registry.
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    /// Length of the header, optional fields included: where the payload starts.
    pub fn header_len(&self) -> usize {
        header_len(self.has_checksum(), self.has_key(), self.has_sequence())
    }

    fn key_offset(&self) -> usize {
        MIN_HEADER_LEN + 4 * usize::from(self.has_checksum())
    }

    fn sequence_offset(&self) -> usize {
        self.key_offset() + 4 * usize::from(self.has_key())
    }

    /// The checksum field, when present.
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum()
            .then(|| read_u16(self.buffer.as_ref(), MIN_HEADER_LEN..MIN_HEADER_LEN + 2))
    }

    /// The key, when present. RFC 2890 §2.1: "The Key field contains a four octet number which
    /// was inserted by the encapsulator."
    pub fn key(&self) -> Option<u32> {
        let at = self.key_offset();
        self.has_key()
            .then(|| read_u32(self.buffer.as_ref(), at..at + 4))
    }

    /// The sequence number, when present.
    pub fn sequence(&self) -> Option<u32> {
        let at = self.sequence_offset();
        self.has_sequence()
            .then(|| read_u32(self.buffer.as_ref(), at..at + 4))
    }

    /// Whether the checksum is right, `true` when there is none. RFC 2784 §2.5: "the IP (one's
    /// complement) checksum sum of the all the 16 bit words in the GRE header and the payload
    /// packet"; the payload is the rest of the buffer.
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum() || checksum::sum(self.buffer.as_ref()) == 0xffff
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the first word's flags: which optional fields are present, every reserved bit
    /// zero, version 0. Set them before the optional fields, whose places they decide.
    pub fn set_flags(&mut self, checksum: bool, key: bool, sequence: bool) {
        let mut value = 0;
        if checksum {
            value |= FLAG_CHECKSUM;
        }
        if key {
            value |= FLAG_KEY;
        }
        if sequence {
            value |= FLAG_SEQUENCE;
        }
        write_u16(self.buffer.as_mut(), field::FLAGS_VERSION, value);
    }

    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PROTOCOL, value.into());
    }

    /// Writes the key (the K bit must be set).
    pub fn set_key(&mut self, value: u32) {
        let at = self.key_offset();
        write_u32(self.buffer.as_mut(), at..at + 4, value);
    }

    /// Writes the sequence number (the S bit must be set).
    pub fn set_sequence(&mut self, value: u32) {
        let at = self.sequence_offset();
        write_u32(self.buffer.as_mut(), at..at + 4, value);
    }

    /// Computes and writes the checksum over the header and the rest of the buffer, Reserved1
    /// zeroed (the C bit must be set).
    pub fn fill_checksum(&mut self) {
        let bytes = self.buffer.as_mut();
        write_u32(bytes, MIN_HEADER_LEN..MIN_HEADER_LEN + 4, 0);
        let sum = checksum::sum(bytes);
        write_u16(
            bytes,
            MIN_HEADER_LEN..MIN_HEADER_LEN + 2,
            checksum::finish(sum),
        );
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use proptest::prelude::*;

    #[rustfmt::skip]
    static PACKET: [u8; 20] = [
        0xb0, 0x00, // C, K and S set, reserved 0, version 0
        0x65, 0x58, // protocol type: transparent Ethernet bridging
        0x00, 0x00, 0x00, 0x00, // checksum (filled in by the test), reserved1
        0x00, 0x00, 0x00, 0x09, // key 9
        0x00, 0x01, 0x02, 0x03, // sequence number 0x10203
        0x02, 0x00, 0x00, 0x01, // start of the inner Ethernet frame
    ];

    fn packet_with_checksum() -> [u8; 20] {
        let mut bytes = PACKET;
        let sum = testing::checksum(&bytes);
        bytes[4..6].copy_from_slice(&sum.to_be_bytes());
        bytes
    }

    #[test]
    fn deconstruct() {
        let bytes = packet_with_checksum();
        let gre = Packet::new_checked(&bytes[..]).unwrap();
        assert!(gre.has_checksum() && gre.has_key() && gre.has_sequence());
        assert_eq!((gre.version(), gre.reserved0()), (0, 0));
        assert_eq!(gre.protocol_type(), EtherType::TransparentEthernet);
        assert_eq!(gre.header_len(), 16);
        assert_eq!(gre.checksum(), Some(testing::checksum(&PACKET)));
        assert_eq!(gre.key(), Some(9));
        assert_eq!(gre.sequence(), Some(0x10203));
        assert!(gre.verify_checksum());
        assert_eq!(gre.payload(), &[0x02, 0, 0, 1]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xeeu8; 20];
        let mut gre = Packet::new_unchecked(&mut bytes[..]);
        gre.set_flags(true, true, true);
        gre.set_protocol_type(EtherType::TransparentEthernet);
        gre.set_key(9);
        gre.set_sequence(0x10203);
        gre.payload_mut().copy_from_slice(&[0x02, 0, 0, 1]);
        gre.fill_checksum();
        assert_eq!(bytes, packet_with_checksum());
    }

    #[test]
    fn optional_fields_move_up_when_earlier_ones_are_absent() {
        // Only S (the ERSPAN type II shape): the sequence number follows the fixed word.
        let bytes = [0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 7, 0xaa];
        let gre = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (gre.checksum(), gre.key(), gre.sequence()),
            (None, None, Some(7))
        );
        assert_eq!(gre.protocol_type(), EtherType::Erspan);
        assert_eq!(gre.header_len(), 8);
        assert!(gre.verify_checksum(), "no checksum to get wrong");
        assert_eq!(gre.payload(), &[0xaa]);
        // Only K.
        let bytes = [0x20, 0x00, 0x65, 0x58, 0, 0, 0, 5];
        let gre = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((gre.key(), gre.sequence()), (Some(5), None));
        assert!(gre.payload().is_empty());
    }

    #[test]
    fn truncated_fixed_part() {
        assert_eq!(
            Packet::new_checked(&PACKET[..3]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn truncated_optional_fields() {
        assert_eq!(
            Packet::new_checked(&PACKET[..15]).unwrap_err(),
            Error::Truncated
        );
        assert!(
            Packet::new_checked(&PACKET[..16])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn other_versions_are_refused_and_reserved_bits_reported() {
        let mut bytes = PACKET;
        bytes[1] = 0x01; // version 1: PPTP
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
        bytes[0] = 0x40; // RFC 1701's Routing Present
        bytes[1] = 0x00;
        let gre = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(gre.reserved0(), 0x4000);
        assert_eq!(gre.header_len(), 4);
    }

    #[test]
    fn a_wrong_checksum_is_seen() {
        let mut bytes = packet_with_checksum();
        bytes[19] ^= 1;
        assert!(!Packet::new_checked(&bytes[..]).unwrap().verify_checksum());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(gre) = Packet::new_checked(&bytes[..]) {
                prop_assert!(gre.header_len() <= bytes.len());
                let _ = (gre.reserved0(), gre.protocol_type(), gre.checksum(), gre.key(), gre.sequence());
                let _ = (gre.verify_checksum(), gre.payload());
            }
        }

        #[test]
        fn emit_then_parse(c: bool, key: Option<u32>, sequence: Option<u32>, protocol: u16,
                           payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let len = header_len(c, key.is_some(), sequence.is_some());
            let mut bytes = vec![0x5au8; len + payload.len()];
            let mut gre = Packet::new_unchecked(&mut bytes[..]);
            gre.set_flags(c, key.is_some(), sequence.is_some());
            gre.set_protocol_type(EtherType::from(protocol));
            if let Some(k) = key {
                gre.set_key(k);
            }
            if let Some(s) = sequence {
                gre.set_sequence(s);
            }
            gre.payload_mut().copy_from_slice(&payload);
            if c {
                gre.fill_checksum();
            }
            let gre = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(gre.header_len(), len);
            prop_assert_eq!((gre.has_checksum(), gre.key(), gre.sequence()), (c, key, sequence));
            prop_assert_eq!((gre.reserved0(), u16::from(gre.protocol_type())), (0, protocol));
            prop_assert!(gre.verify_checksum());
            prop_assert_eq!(gre.payload(), &payload[..]);
        }
    }
}
