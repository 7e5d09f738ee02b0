//! VXLAN header (RFC 7348 §5).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The payload is an Ethernet frame ("Inner Ethernet Header").
//!
//! RFC 7348 §5: "Flags (8 bits): where the I flag MUST be set to 1 for a valid VXLAN Network ID
//! (VNI). The other 7 bits (designated "R") are reserved fields and MUST be set to zero on
//! transmission and ignored on receipt." The view therefore reports the I flag and the VNI and
//! never looks at reserved bits; any 24-bit VNI, 0 included, is valid.

use super::{Error, Field, Result, read_u24, write_u24};

mod field {
    use super::Field;

    pub const FLAGS: usize = 0;
    pub const VNI: Field = 4..7;
    pub const PAYLOAD: usize = 8;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The I flag: "the VNI is valid".
pub const FLAG_VNI: u8 = 0x08;

/// The IANA-assigned VXLAN UDP port.
pub const IANA_PORT: u16 = 4789;

/// A read/write view of a VXLAN header and the frame after it.
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

    /// The whole flags byte, reserved bits included.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag is set, i.e. the VNI is valid.
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_VNI != 0
    }

    /// The 24-bit VXLAN Network Identifier (meaningful when [`Packet::has_vni`]).
    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI)
    }

    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the VNI (low 24 bits of `vni`).
    pub fn set_vni(&mut self, vni: u32) {
        write_u24(self.buffer.as_mut(), field::VNI, vni);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static HEADER: [u8; 10] = [
        0x08, // flags: I
        0x00, 0x00, 0x00, // reserved
        0x12, 0x34, 0x56, // VNI 0x123456
        0x00, // reserved
        0x02, 0x00, // start of the inner Ethernet frame
    ];

    #[test]
    fn deconstruct() {
        let vxlan = Packet::new_checked(&HEADER[..]).unwrap();
        assert!(vxlan.has_vni());
        assert_eq!(vxlan.vni(), 0x12_3456);
        assert_eq!(vxlan.payload(), &[0x02, 0x00]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 10];
        let mut vxlan = Packet::new_unchecked(&mut bytes[..]);
        vxlan.set_flags(FLAG_VNI);
        vxlan.set_vni(0x12_3456);
        vxlan.payload_mut().copy_from_slice(&[0x02, 0x00]);
        assert_eq!(bytes, HEADER);
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&HEADER[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(
            Packet::new_checked(&HEADER[..8])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn reserved_bits_are_ignored_and_i_flag_is_read() {
        let mut bytes = HEADER;
        bytes[0] = 0xf7; // every reserved flag bit, no I
        bytes[1..4].copy_from_slice(&[0xff, 0xff, 0xff]);
        bytes[7] = 0xff;
        let vxlan = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!vxlan.has_vni());
        assert_eq!(vxlan.vni(), 0x12_3456);
        bytes[0] = 0xff;
        assert!(Packet::new_checked(&bytes[..]).unwrap().has_vni());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(vxlan) = Packet::new_checked(&bytes[..]) {
                let _ = (vxlan.flags(), vxlan.has_vni(), vxlan.vni(), vxlan.payload());
            }
        }

        #[test]
        fn emit_then_parse(flags: u8, vni in 0u32..(1 << 24), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut bytes = vec![0u8; HEADER_LEN + payload.len()];
            let mut vxlan = Packet::new_unchecked(&mut bytes[..]);
            vxlan.set_flags(flags);
            vxlan.set_vni(vni);
            vxlan.payload_mut().copy_from_slice(&payload);
            let vxlan = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((vxlan.flags(), vxlan.vni(), vxlan.has_vni()), (flags, vni, flags & FLAG_VNI != 0));
            prop_assert_eq!(vxlan.payload(), &payload[..]);
        }
    }
}
