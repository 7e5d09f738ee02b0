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
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
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
        let tci = (u16::from(priority & 0x7) << 13)
            | (u16::from(drop_eligible) << 12)
            | (vlan_id & 0x0fff);
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The most stacked tags [`read_tags`] looks through: QinQ (a service tag over a customer tag) is
/// the deepest stacking in common use; a third tag is more often a parser attack than a network.
pub const MAX_STACKED_TAGS: usize = 2;

/// What lies under the VLAN tags of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tags {
    /// EtherType after the last tag read (the frame's own EtherType when it has no tag).
    pub ethertype: EtherType,
    /// Bytes of tags read (4 per tag).
    pub len: usize,
    /// VLAN ids, outermost first; `count` of them are valid.
    pub ids: [u16; MAX_STACKED_TAGS],
    pub count: u8,
}

/// Why [`read_tags`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagErrorKind {
    /// A tag runs past the bytes given.
    Truncated,
    /// More than [`MAX_STACKED_TAGS`] tags.
    TooDeep,
}

/// A tag stack that could not be read to its end, with the tags read before it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TagError {
    pub kind: TagErrorKind,
    /// The tags read; `partial.ethertype` is the tag type that could not be read past.
    pub partial: Tags,
}

/// Reads the VLAN tags that follow an EtherType of `ethertype` (`bytes` are the bytes after it,
/// e.g. the Ethernet payload), looking through at most [`MAX_STACKED_TAGS`] of them. The loop is
/// a `for` over that bound: a frame of nothing but tags cannot keep it going.
pub fn read_tags(ethertype: EtherType, bytes: &[u8]) -> std::result::Result<Tags, TagError> {
    let mut tags = Tags {
        ethertype,
        len: 0,
        ids: [0; MAX_STACKED_TAGS],
        count: 0,
    };
    for slot in 0..MAX_STACKED_TAGS {
        if !tags.ethertype.is_vlan_tag() {
            return Ok(tags);
        }
        let tag = bytes
            .get(tags.len..)
            .and_then(|rest| Packet::new_checked(rest).ok())
            .ok_or(TagError {
                kind: TagErrorKind::Truncated,
                partial: tags,
            })?;
        tags.ids[slot] = tag.vlan_id();
        tags.count += 1;
        tags.len += HEADER_LEN;
        tags.ethertype = tag.ethertype();
    }
    if tags.ethertype.is_vlan_tag() {
        Err(TagError {
            kind: TagErrorKind::TooDeep,
            partial: tags,
        })
    } else {
        Ok(tags)
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
        assert_eq!(
            Packet::new_checked(&TAG[..3]).unwrap_err(),
            Error::Truncated
        );
        assert!(Packet::new_checked(&TAG[..4]).is_ok());
    }

    #[test]
    fn read_tags_looks_through_qinq() {
        // 802.1ad service tag 10, then 802.1Q customer tag 20, then IPv6.
        let bytes = [0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x86, 0xdd, 0x60];
        let tags = read_tags(EtherType::QinQ, &bytes).unwrap();
        assert_eq!(
            tags,
            Tags {
                ethertype: EtherType::Ipv6,
                len: 8,
                ids: [10, 20],
                count: 2
            }
        );
        let untagged = read_tags(EtherType::Ipv4, &bytes).unwrap();
        assert_eq!(
            (untagged.len, untagged.count, untagged.ethertype),
            (0, 0, EtherType::Ipv4)
        );
    }

    #[test]
    fn read_tags_stops_at_a_third_tag() {
        let bytes = [
            0x00, 0x01, 0x91, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00, 0x03, 0x08, 0x00,
        ];
        let err = read_tags(EtherType::QinQLegacy, &bytes).unwrap_err();
        assert_eq!(err.kind, TagErrorKind::TooDeep);
        assert_eq!(
            (err.partial.ids, err.partial.count, err.partial.len),
            ([1, 2], 2, 8)
        );
    }

    #[test]
    fn read_tags_truncated_second_tag() {
        let bytes = [0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x08];
        let err = read_tags(EtherType::Vlan, &bytes).unwrap_err();
        assert_eq!(err.kind, TagErrorKind::Truncated);
        assert_eq!((err.partial.count, err.partial.len), (1, 4));
        assert_eq!(
            read_tags(EtherType::Vlan, &[]).unwrap_err().kind,
            TagErrorKind::Truncated
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(tag) = Packet::new_checked(&bytes[..]) {
                let _ = (tag.priority(), tag.drop_eligible(), tag.vlan_id(), tag.ethertype(), tag.payload());
            }
        }

        #[test]
        fn read_tags_never_panics(first: u16, bytes in proptest::collection::vec(prop_oneof![Just(0x81u8), Just(0x00), any::<u8>()], 0..20)) {
            match read_tags(EtherType::from(first), &bytes) {
                Ok(tags) => prop_assert!(tags.len <= bytes.len() && !tags.ethertype.is_vlan_tag()),
                Err(err) => prop_assert!(err.partial.len <= bytes.len() && usize::from(err.partial.count) <= MAX_STACKED_TAGS),
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
