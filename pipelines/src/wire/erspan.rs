//! ERSPAN type II header (draft-foschiano-erspan-03), as carried after a GRE header with
//! protocol type 0x88BE and the Sequence Number Present bit set.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Ver  |          VLAN         | COS | En|T|    Session ID     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Reserved         |                  Index                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The payload is the mirrored Ethernet frame.
//!
//! # Design
//! The draft tells type I from type II by the GRE header, not by this one: "Type I and II's
//! value is 0x88BE", and in type II's GRE header "out of the C, R, K, S, s, Recur, Flags,
//! Version fields only S (bit 03) may be set to 1". Type I has no ERSPAN header at all; the
//! caller, having read the GRE S bit, knows whether to apply this view.
//!
//! "Ver: ERSPAN Encapsulation version. [...] Set to 0x1 for Type II." `new_checked` refuses
//! other versions (`BadVersion`): type III (version 2) is a different, longer header with a
//! GRE protocol type of its own.
//!
//! The fields, as the draft defines them:
//! - VLAN: "Original VLAN of the frame, mirrored from the source. If the En field is set to 11,
//!   the value of VLAN is undefined."
//! - COS: "Original class of service of the frame, mirrored from the source."
//! - En: "The trunk encapsulation type associated with the ERSPAN source port for ingress
//!   ERSPAN traffic": 00 originally without VLAN tag, 01 ISL, 10 802.1Q, 11 "VLAN tag preserved
//!   in frame" ([`Encap`]).
//! - T: "the frame copy encapsulated in the ERSPAN packet has been truncated. This occurs if the
//!   ERSPAN encapsulated frame exceeds the configured MTU."
//! - Session ID (10 bits): "Identification associated with each ERSPAN session."
//! - Index (20 bits): "A 20 bit index/port number associated with the ERSPAN traffic's port and
//!   direction (ingress/egress). N.B.: This field is platform dependent."

use super::{Error, Field, Result, read_u16, read_u32, write_u16, write_u32};

mod field {
    use super::Field;

    pub const VER_VLAN: Field = 0..2;
    pub const COS_EN_T_SESSION: Field = 2..4;
    pub const RESERVED_INDEX: Field = 4..8;
    pub const PAYLOAD: usize = 8;
}

/// Length of the type II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The version field of a type II header.
pub const VERSION_II: u8 = 1;

/// The largest session id (10 bits).
pub const MAX_SESSION_ID: u16 = 0x3ff;

/// The largest index (20 bits).
pub const MAX_INDEX: u32 = 0xf_ffff;

/// The En field: how the mirrored frame's VLAN tagging is conveyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encap {
    /// 00: the frame was originally without a VLAN tag.
    Untagged,
    /// 01: the frame was originally ISL encapsulated.
    Isl,
    /// 10: the frame was originally 802.1Q encapsulated (its VLAN in the VLAN field).
    Dot1q,
    /// 11: any VLAN tag is preserved in the frame itself; the VLAN field is undefined.
    TagInFrame,
}

impl Encap {
    const fn from_bits(bits: u16) -> Encap {
        match bits & 0b11 {
            0b00 => Encap::Untagged,
            0b01 => Encap::Isl,
            0b10 => Encap::Dot1q,
            _ => Encap::TagInFrame,
        }
    }

    const fn bits(self) -> u16 {
        match self {
            Encap::Untagged => 0b00,
            Encap::Isl => 0b01,
            Encap::Dot1q => 0b10,
            Encap::TagInFrame => 0b11,
        }
    }
}

/// A read/write view of an ERSPAN type II header and the frame after it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the 8-byte header is present (`Truncated`) and that
    /// its version is 1, type II (`BadVersion`).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != VERSION_II {
            return Err(Error::BadVersion);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::VER_VLAN) >> 12) as u8
    }

    /// The original VLAN id (12 bits; undefined when [`Packet::encap`] is `TagInFrame`).
    pub fn vlan(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::VER_VLAN) & 0x0fff
    }

    fn cos_en_t_session(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::COS_EN_T_SESSION)
    }

    /// The original class of service (3 bits).
    pub fn cos(&self) -> u8 {
        (self.cos_en_t_session() >> 13) as u8
    }

    pub fn encap(&self) -> Encap {
        Encap::from_bits(self.cos_en_t_session() >> 11)
    }

    /// The T bit: the mirrored frame was cut to fit the MTU.
    pub fn truncated(&self) -> bool {
        self.cos_en_t_session() & 0x0400 != 0
    }

    /// The session id (10 bits).
    pub fn session_id(&self) -> u16 {
        self.cos_en_t_session() & MAX_SESSION_ID
    }

    /// The 12 reserved bits ("All bits are set to zero"), reported as read.
    pub fn reserved(&self) -> u16 {
        (read_u32(self.buffer.as_ref(), field::RESERVED_INDEX) >> 20) as u16
    }

    /// The index (20 bits, platform dependent).
    pub fn index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::RESERVED_INDEX) & MAX_INDEX
    }

    /// The mirrored frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 1 (type II) and the VLAN id (12 bits kept).
    pub fn set_version_and_vlan(&mut self, vlan: u16) {
        let value = u16::from(VERSION_II) << 12 | (vlan & 0x0fff);
        write_u16(self.buffer.as_mut(), field::VER_VLAN, value);
    }

    /// Sets COS (3 bits kept), En, T and the session id (10 bits kept).
    pub fn set_cos_encap_truncated_session(
        &mut self,
        cos: u8,
        encap: Encap,
        truncated: bool,
        session_id: u16,
    ) {
        let value = u16::from(cos & 0b111) << 13
            | encap.bits() << 11
            | u16::from(truncated) << 10
            | (session_id & MAX_SESSION_ID);
        write_u16(self.buffer.as_mut(), field::COS_EN_T_SESSION, value);
    }

    /// Sets the index (20 bits kept) and zeroes the reserved bits.
    pub fn set_index(&mut self, index: u32) {
        write_u32(
            self.buffer.as_mut(),
            field::RESERVED_INDEX,
            index & MAX_INDEX,
        );
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[rustfmt::skip]
    static HEADER: [u8; 10] = [
        0x10, 0x64, // version 1, VLAN 100
        0xbc, 0x05, // COS 5, En 11 (tag in frame), T set, session id 5
        0x00, 0x01, 0x23, 0x45, // reserved 0, index 0x12345
        0x02, 0x00, // start of the mirrored frame
    ];

    #[test]
    fn deconstruct() {
        let erspan = Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!((erspan.version(), erspan.vlan(), erspan.cos()), (1, 100, 5));
        assert_eq!(erspan.encap(), Encap::TagInFrame);
        assert!(erspan.truncated());
        assert_eq!(erspan.session_id(), 5);
        assert_eq!((erspan.reserved(), erspan.index()), (0, 0x12345));
        assert_eq!(erspan.payload(), &[0x02, 0x00]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xffu8; 10];
        let mut erspan = Packet::new_unchecked(&mut bytes[..]);
        erspan.set_version_and_vlan(100);
        erspan.set_cos_encap_truncated_session(5, Encap::TagInFrame, true, 5);
        erspan.set_index(0x12345);
        erspan.payload_mut().copy_from_slice(&[0x02, 0x00]);
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
    fn other_versions_are_refused() {
        let mut bytes = HEADER;
        bytes[0] = 0x20; // type III
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn every_encap_value_reads_back() {
        for encap in [Encap::Untagged, Encap::Isl, Encap::Dot1q, Encap::TagInFrame] {
            assert_eq!(Encap::from_bits(encap.bits()), encap);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(erspan) = Packet::new_checked(&bytes[..]) {
                let _ = (erspan.vlan(), erspan.cos(), erspan.encap(), erspan.truncated(), erspan.session_id());
                let _ = (erspan.reserved(), erspan.index(), erspan.payload());
            }
        }

        #[test]
        fn emit_then_parse(vlan in 0u16..4096, cos in 0u8..8, encap in 0u16..4, truncated: bool,
                           session_id in 0u16..1024, index in 0u32..(1 << 20),
                           payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let encap = Encap::from_bits(encap);
            let mut bytes = vec![0xa5u8; HEADER_LEN + payload.len()];
            let mut erspan = Packet::new_unchecked(&mut bytes[..]);
            erspan.set_version_and_vlan(vlan);
            erspan.set_cos_encap_truncated_session(cos, encap, truncated, session_id);
            erspan.set_index(index);
            erspan.payload_mut().copy_from_slice(&payload);
            let erspan = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((erspan.vlan(), erspan.cos(), erspan.encap()), (vlan, cos, encap));
            prop_assert_eq!((erspan.truncated(), erspan.session_id()), (truncated, session_id));
            prop_assert_eq!((erspan.reserved(), erspan.index()), (0, index));
            prop_assert_eq!(erspan.payload(), &payload[..]);
        }
    }
}
