//! Ethernet II frame header (IEEE 802.3, DIX framing).
//!
//! ```text
//!  0                   6                  12        14
//! +-------------------+-------------------+---------+----------
//! |  destination MAC  |    source MAC     |EtherType| payload …
//! +-------------------+-------------------+---------+----------
//! ```
//! The frame check sequence is not part of the view: NICs strip it before software sees the frame.

use super::{Error, Field, Result, read_u16, write_u16};

/// The value of the EtherType field (also used for VLAN tags' inner type and GENEVE's protocol
/// type, which share the registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// IEEE 802.1Q customer VLAN tag (0x8100).
    Vlan,
    /// IEEE 802.1ad service VLAN tag, the outer tag of QinQ (0x88A8).
    QinQ,
    /// The pre-standard QinQ outer tag some switches still emit (0x9100).
    QinQLegacy,
    /// Transparent Ethernet bridging (0x6558): GENEVE's and GRE's protocol type for an Ethernet
    /// payload.
    TransparentEthernet,
    /// ERSPAN types I and II (0x88BE), as a GRE protocol type.
    Erspan,
    /// Any other value, kept as it was read.
    Unknown(u16),
}

impl EtherType {
    /// Whether this type announces a VLAN tag (802.1Q, 802.1ad or the legacy 0x9100).
    pub const fn is_vlan_tag(self) -> bool {
        matches!(
            self,
            EtherType::Vlan | EtherType::QinQ | EtherType::QinQLegacy
        )
    }
}

impl From<u16> for EtherType {
    fn from(value: u16) -> EtherType {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86DD => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88A8 => EtherType::QinQ,
            0x9100 => EtherType::QinQLegacy,
            0x6558 => EtherType::TransparentEthernet,
            0x88BE => EtherType::Erspan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> u16 {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86DD,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88A8,
            EtherType::QinQLegacy => 0x9100,
            EtherType::TransparentEthernet => 0x6558,
            EtherType::Erspan => 0x88BE,
            EtherType::Unknown(other) => other,
        }
    }
}

/// A MAC address.
pub type Address = [u8; 6];

mod field {
    use super::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Length of the Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it; getters may panic if it is shorter than the header.
    /// Use for emitting into a buffer you sized yourself.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// `Err(Truncated)` if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn destination(&self) -> Address {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        mac
    }

    pub fn source(&self) -> Address {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        mac
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_destination(&mut self, mac: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac);
    }

    pub fn set_source(&mut self, mac: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac);
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

    static FRAME: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination 02:00:00:00:00:02
        0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // source 0a:0b:0c:0d:0e:0f
        0x86, 0xdd, // EtherType IPv6
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.destination(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(frame.source(), [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
        assert_eq!(frame.ethertype(), EtherType::Ipv6);
        assert_eq!(frame.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xffu8; 18];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame.set_destination([2, 0, 0, 0, 0, 2]);
        frame.set_source([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
        frame.set_ethertype(EtherType::Ipv6);
        frame
            .payload_mut()
            .copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(bytes, FRAME);
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated
        );
        // Exactly a header and nothing else is a frame with an empty payload.
        assert!(
            Frame::new_checked(&FRAME[..14])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn unknown_ethertype_is_kept() {
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        for v in [
            0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x6558, 0x88be, 0x1234,
        ] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert!(EtherType::QinQLegacy.is_vlan_tag() && !EtherType::Ipv4.is_vlan_tag());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok(frame) = Frame::new_checked(&bytes[..]) {
                let _ = (frame.destination(), frame.source(), frame.ethertype(), frame.payload());
            }
        }

        #[test]
        fn emit_then_parse(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload in proptest::collection::vec(proptest::num::u8::ANY, 0..32)) {
            let mut bytes = vec![0u8; HEADER_LEN + payload.len()];
            let mut frame = Frame::new_unchecked(&mut bytes[..]);
            frame.set_destination(dst);
            frame.set_source(src);
            frame.set_ethertype(EtherType::from(ethertype));
            frame.payload_mut().copy_from_slice(&payload);
            let frame = Frame::new_checked(&bytes[..]).unwrap();
            proptest::prop_assert_eq!(frame.destination(), dst);
            proptest::prop_assert_eq!(frame.source(), src);
            proptest::prop_assert_eq!(u16::from(frame.ethertype()), ethertype);
            proptest::prop_assert_eq!(frame.payload(), &payload[..]);
        }
    }
}
