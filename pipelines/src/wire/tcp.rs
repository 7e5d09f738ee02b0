//! TCP header (RFC 9293), the fields the broker reads: ports, sequence numbers, flags.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  DOffset | Rsrvd |   Flags    |            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Limitations
//! Options are not parsed; [`Packet::header_len`] says where they end. A mirrored segment cut
//! inside its fixed header is refused by `new_checked`; the inner-packet parser still reads the
//! ports from the first four bytes in that case (they are the first four bytes of TCP, UDP and
//! SCTP alike).

use super::{Error, Field, Result, read_u16, read_u32, write_u16, write_u32};

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUMBER: Field = 4..8;
    pub const ACK_NUMBER: Field = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
}

/// Length of the header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Flag bits of [`Packet::flags`].
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// A read/write view of the fixed TCP header.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the 20-byte fixed header is present (`Truncated`) and
    /// that the data offset is at least 5 words (`BadHeaderLength`).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.header_len() < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        Ok(packet)
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

    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUMBER)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUMBER)
    }

    /// Header length in bytes, options included (data offset × 4). The options may lie beyond
    /// the buffer.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The [`flags`] bits.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUMBER, value);
    }

    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUMBER, value);
    }

    /// Sets the data offset for a header of `header_len` bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
    }

    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    pub fn set_window(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static SEGMENT: [u8; 20] = [
        0x01, 0xbb, // source port 443
        0xd4, 0x31, // destination port 54321
        0x00, 0x00, 0x00, 0x01, // sequence number 1
        0x00, 0x00, 0x00, 0x02, // acknowledgment number 2
        0x50, // data offset 5 words
        0x12, // SYN + ACK
        0xff, 0xff, // window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent pointer
    ];

    #[test]
    fn deconstruct() {
        let tcp = Packet::new_checked(&SEGMENT[..]).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (443, 54321));
        assert_eq!((tcp.seq_number(), tcp.ack_number()), (1, 2));
        assert_eq!(tcp.header_len(), 20);
        assert_eq!(tcp.flags(), flags::SYN | flags::ACK);
        assert_eq!(tcp.window(), 0xffff);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 20];
        let mut tcp = Packet::new_unchecked(&mut bytes[..]);
        tcp.set_src_port(443);
        tcp.set_dst_port(54321);
        tcp.set_seq_number(1);
        tcp.set_ack_number(2);
        tcp.set_header_len(20);
        tcp.set_flags(flags::SYN | flags::ACK);
        tcp.set_window(0xffff);
        assert_eq!(bytes, SEGMENT);
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&SEGMENT[..19]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn data_offset_below_five() {
        let mut bytes = SEGMENT;
        bytes[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadHeaderLength
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(tcp) = Packet::new_checked(&bytes[..]) {
                let _ = (tcp.src_port(), tcp.dst_port(), tcp.seq_number(), tcp.ack_number(), tcp.header_len(), tcp.flags(), tcp.window());
            }
        }

        #[test]
        fn emit_then_parse(src: u16, dst: u16, seq: u32, ack: u32, words in 5usize..=15, flag_bits: u8, window: u16) {
            let mut bytes = [0u8; MIN_HEADER_LEN];
            let mut tcp = Packet::new_unchecked(&mut bytes[..]);
            tcp.set_src_port(src);
            tcp.set_dst_port(dst);
            tcp.set_seq_number(seq);
            tcp.set_ack_number(ack);
            tcp.set_header_len(words * 4);
            tcp.set_flags(flag_bits);
            tcp.set_window(window);
            let tcp = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.seq_number(), tcp.ack_number()), (src, dst, seq, ack));
            prop_assert_eq!((tcp.header_len(), tcp.flags(), tcp.window()), (words * 4, flag_bits, window));
        }
    }
}
