//! IEEE 802.1Q VLAN tag, as it follows a tag EtherType (0x8100, 0x88A8 or 0x9100).
//!
//! ```text
//!  0     3   4              16              32
//! +-----+---+---------------+---------------+----------
//! | PCP |DEI|    VLAN id    |   EtherType   | payload …
//! +-----+---+---------------+---------------+----------
//! ```
//! The view starts *after* the tag EtherType of the enclosing header (the Ethernet header or the
//! previous tag): the 2-byte Tag Control Information, then the EtherType of what follows. Stacked
//! tags (QinQ) are consecutive views whose `ethertype()` is itself a tag type.

use super::{Error, EtherType, Field, Result, read_u16, write_u16};

mod field {
    use super::Field;

    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// Length of a VLAN tag (after the tag EtherType).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of one VLAN tag.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic if it is shorter than a tag.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole tag.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN { Err(Error::Truncated) } else { Ok(()) }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Priority code point (3 bits).
    pub fn priority(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::TCI) >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn drop_eligible(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::TCI) & 0x1000 != 0
    }

    /// VLAN identifier (12 bits).
    pub fn vlan_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI) & 0x0fff
    }

    /// EtherType of what follows the tag.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the whole Tag Control Information from its three parts (`vlan_id` keeps 12 bits,
    /// `priority` 3).
    pub fn set_tci(&mut self, priority: u8, drop_eligible: bool, vlan_id: u16) {
        let tci = (u16::from(priority & 0x7) << 13) | (u16::from(drop_eligible) << 12) | (vlan_id & 0x0fff);
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static TAG: [u8; 6] = [
        0xb0, 0x64, // PCP 5, DEI 1, VLAN id 100
        0x08, 0x00, // EtherType IPv4
        0x45, 0x00, // payload
    ];

    #[test]
    fn deconstruct() {
        let tag = Packet::new_checked(&TAG[..]).unwrap();
        assert_eq!(tag.priority(), 5);
        assert!(tag.drop_eligible());
        assert_eq!(tag.vlan_id(), 100);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 6];
        let mut tag = Packet::new_unchecked(&mut bytes[..]);
        tag.set_tci(5, true, 100);
        tag.set_ethertype(EtherType::Ipv4);
        tag.payload_mut().copy_from_slice(&[0x45, 0x00]);
        assert_eq!(bytes, TAG);
    }

    #[test]
    fn truncated_tag() {
        assert_eq!(Packet::new_checked(&TAG[..3]).unwrap_err(), Error::Truncated);
        assert!(Packet::new_checked(&TAG[..4]).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(tag) = Packet::new_checked(&bytes[..]) {
                let _ = (tag.priority(), tag.drop_eligible(), tag.vlan_id(), tag.ethertype(), tag.payload());
            }
        }

        #[test]
        fn emit_then_parse(priority in 0u8..8, dei: bool, vlan_id in 0u16..4096, ethertype: u16) {
            let mut bytes = [0u8; HEADER_LEN];
            let mut tag = Packet::new_unchecked(&mut bytes[..]);
            tag.set_tci(priority, dei, vlan_id);
            tag.set_ethertype(EtherType::from(ethertype));
            let tag = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(tag.priority(), priority);
            prop_assert_eq!(tag.drop_eligible(), dei);
            prop_assert_eq!(tag.vlan_id(), vlan_id);
            prop_assert_eq!(u16::from(tag.ethertype()), ethertype);
        }
    }
}
