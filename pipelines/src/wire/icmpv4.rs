//! ICMP for IPv4 (RFC 792): the common header, and the echo request and reply fields.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |           Identifier          |        Sequence Number        |  (echo; other
//! |     Data ...                                                  |   types differ)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Design
//! Every ICMP message has the 8-byte header above (type, code, checksum and four bytes whose
//! meaning depends on the type), so `new_checked` checks those 8 bytes and nothing else; the
//! identifier and sequence number getters read the second word whatever the type, and mean
//! something for echo messages only. The buffer is the whole ICMP message (the IP payload):
//! RFC 792: "The checksum is the 16-bit ones's complement of the one's complement sum of the
//! ICMP message starting with the ICMP Type."

use super::{Error, Field, Result, checksum, read_u16, write_u16};

mod field {
    use super::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ_NO: Field = 6..8;
    pub const DATA: usize = 8;
}

/// Length of the ICMP header.
pub const HEADER_LEN: usize = field::DATA;

/// The ICMP message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0.
    EchoReply,
    /// 3.
    DestinationUnreachable,
    /// 8.
    EchoRequest,
    /// 11.
    TimeExceeded,
    /// Any other type, kept as it was read.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(value: u8) -> Message {
        match value {
            0 => Message::EchoReply,
            3 => Message::DestinationUnreachable,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(value: Message) -> u8 {
        match value {
            Message::EchoReply => 0,
            Message::DestinationUnreachable => 3,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::Unknown(other) => other,
        }
    }
}

/// A read/write view of an ICMP message.
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
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier (bytes 4–5).
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The echo sequence number (bytes 6–7).
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// The bytes after the 8-byte header (an echo's data).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// Whether the checksum over the whole buffer is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO, value);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(self.buffer.as_ref());
        self.set_checksum(checksum::finish(sum));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use proptest::prelude::*;

    #[rustfmt::skip]
    static ECHO: [u8; 12] = [
        0x08, 0x00, // echo request, code 0
        0x00, 0x00, // checksum (filled in by the test)
        0x12, 0x34, // identifier
        0x00, 0x07, // sequence number
        b'p', b'i', b'n', b'g', // data
    ];

    fn echo_with_checksum() -> [u8; 12] {
        let mut bytes = ECHO;
        let sum = testing::checksum(&bytes);
        bytes[2..4].copy_from_slice(&sum.to_be_bytes());
        bytes
    }

    #[test]
    fn deconstruct() {
        let bytes = echo_with_checksum();
        let icmp = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code()), (Message::EchoRequest, 0));
        assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (0x1234, 7));
        assert_eq!(icmp.data(), b"ping");
        assert!(icmp.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut bytes = [0xffu8; 12];
        let mut icmp = Packet::new_unchecked(&mut bytes[..]);
        icmp.set_msg_type(Message::EchoRequest);
        icmp.set_code(0);
        icmp.set_echo_ident(0x1234);
        icmp.set_echo_seq_no(7);
        icmp.data_mut().copy_from_slice(b"ping");
        icmp.fill_checksum();
        assert_eq!(bytes, echo_with_checksum());
    }

    #[test]
    fn checksum_matches_an_independent_encoder() {
        let bytes = echo_with_checksum();
        let theirs = etherparse::Icmpv4Slice::from_slice(&bytes).unwrap();
        assert_eq!(
            theirs.icmp_type().calc_checksum(theirs.payload()),
            Packet::new_checked(&bytes[..]).unwrap().checksum()
        );
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Packet::new_checked(&ECHO[..8]).unwrap().data().is_empty());
    }

    #[test]
    fn unknown_types_are_kept() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Message::from(value)), value);
        }
        assert_eq!(Message::from(42), Message::Unknown(42));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(icmp) = Packet::new_checked(&bytes[..]) {
                let _ = (icmp.msg_type(), icmp.code(), icmp.checksum(), icmp.echo_ident(), icmp.echo_seq_no());
                let _ = (icmp.data(), icmp.verify_checksum());
            }
        }

        #[test]
        fn emit_then_parse(msg_type: u8, code: u8, ident: u16, seq_no: u16,
                           data in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut bytes = vec![0u8; HEADER_LEN + data.len()];
            let mut icmp = Packet::new_unchecked(&mut bytes[..]);
            icmp.set_msg_type(Message::from(msg_type));
            icmp.set_code(code);
            icmp.set_echo_ident(ident);
            icmp.set_echo_seq_no(seq_no);
            icmp.data_mut().copy_from_slice(&data);
            icmp.fill_checksum();
            let icmp = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((u8::from(icmp.msg_type()), icmp.code()), (msg_type, code));
            prop_assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (ident, seq_no));
            prop_assert_eq!(icmp.data(), &data[..]);
            prop_assert!(icmp.verify_checksum());
        }
    }
}
