//! ARP packet (RFC 826), and its Ethernet/IPv4 form as a [`Repr`].
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Hardware Type         |         Protocol Type         |
//! |  HW Addr Len  | Proto Addr Len|           Operation           |
//! ~   Sender Hardware Address (HW Addr Len bytes)                 ~
//! ~   Sender Protocol Address (Proto Addr Len bytes)              ~
//! ~   Target Hardware Address (HW Addr Len bytes)                 ~
//! ~   Target Protocol Address (Proto Addr Len bytes)              ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Design
//! RFC 826 sizes the addresses by the packet's own length fields ("ar$sha: (n bytes) Hardware
//! address of sender of this packet, n from the ar$hln field"), so the [`Packet`] view is
//! generic: `new_checked` checks that the four addresses its length fields announce are present,
//! and the address getters return slices. The broker only speaks Ethernet/IPv4 ARP; [`Repr`] is
//! that form (hardware type 1, protocol type 0x0800, lengths 6 and 4), parsed from a view that
//! has it and refused (`None`) otherwise. Operations other than request and reply (RARP, InARP)
//! are kept as [`Operation::Unknown`].

use std::net::Ipv4Addr;

use super::{Error, EtherType, Field, Result, ethernet, read_u16, write_u16};

mod field {
    use super::Field;

    pub const HARDWARE_TYPE: Field = 0..2;
    pub const PROTOCOL_TYPE: Field = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Field = 6..8;
    pub const ADDRESSES: usize = 8;
}

/// Length of the fixed part, before the addresses.
pub const FIXED_LEN: usize = field::ADDRESSES;

/// The hardware type of Ethernet (RFC 826 `ares_hrd$Ethernet`).
pub const HARDWARE_ETHERNET: u16 = 1;

/// The ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1, `ares_op$REQUEST`.
    Request,
    /// 2, `ares_op$REPLY`.
    Reply,
    /// Any other value (RARP, InARP, …), kept as it was read.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Operation {
        match value {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(value: Operation) -> u16 {
        match value {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

/// A read/write view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the fixed part (`Truncated`) and the four addresses
    /// its length fields announce (`Truncated`) are present.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < FIXED_LEN || len < packet.packet_len() {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HARDWARE_TYPE)
    }

    /// The protocol address space, from the EtherType registry.
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PROTOCOL_TYPE))
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HARDWARE_LEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL_LEN]
    }

    pub fn operation(&self) -> Operation {
        Operation::from(read_u16(self.buffer.as_ref(), field::OPERATION))
    }

    /// Length of the packet as its length fields describe it (what follows is padding).
    pub fn packet_len(&self) -> usize {
        FIXED_LEN + 2 * (usize::from(self.hardware_len()) + usize::from(self.protocol_len()))
    }

    /// The byte ranges of the sender hardware, sender protocol, target hardware and target
    /// protocol addresses.
    fn address_fields(&self) -> [Field; 4] {
        let (h, p) = (
            usize::from(self.hardware_len()),
            usize::from(self.protocol_len()),
        );
        let sha = FIXED_LEN;
        let spa = sha + h;
        let tha = spa + p;
        let tpa = tha + h;
        [sha..spa, spa..tha, tha..tpa, tpa..tpa + p]
    }

    pub fn sender_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.address_fields()[0].clone()]
    }

    pub fn sender_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.address_fields()[1].clone()]
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.address_fields()[2].clone()]
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.address_fields()[3].clone()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::HARDWARE_TYPE, value);
    }

    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PROTOCOL_TYPE, value.into());
    }

    /// Sets both address lengths; set them before the addresses, whose places they decide.
    pub fn set_address_lens(&mut self, hardware_len: u8, protocol_len: u8) {
        let bytes = self.buffer.as_mut();
        bytes[field::HARDWARE_LEN] = hardware_len;
        bytes[field::PROTOCOL_LEN] = protocol_len;
    }

    pub fn set_operation(&mut self, value: Operation) {
        write_u16(self.buffer.as_mut(), field::OPERATION, value.into());
    }

    /// Writes the four addresses, each as long as the length fields say.
    pub fn set_addresses(&mut self, sha: &[u8], spa: &[u8], tha: &[u8], tpa: &[u8]) {
        let fields = self.address_fields();
        let bytes = self.buffer.as_mut();
        for (field, value) in fields.into_iter().zip([sha, spa, tha, tpa]) {
            bytes[field].copy_from_slice(value);
        }
    }
}

/// An Ethernet/IPv4 ARP packet, the only form the broker reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    pub operation: Operation,
    pub sender_mac: ethernet::Address,
    pub sender_ip: Ipv4Addr,
    pub target_mac: ethernet::Address,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = FIXED_LEN + 2 * (6 + 4);

    /// The packet's fields, or `None` when it is not Ethernet/IPv4 ARP (hardware type 1,
    /// protocol type 0x0800, address lengths 6 and 4).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Option<Repr> {
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return None;
        }
        Some(Repr {
            operation: packet.operation(),
            sender_mac: packet.sender_hardware_addr().try_into().ok()?,
            sender_ip: ipv4(packet.sender_protocol_addr())?,
            target_mac: packet.target_hardware_addr().try_into().ok()?,
            target_ip: ipv4(packet.target_protocol_addr())?,
        })
    }

    /// Writes the packet into the first [`Repr::LEN`] bytes of `packet`'s buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_address_lens(6, 4);
        packet.set_operation(self.operation);
        packet.set_addresses(
            &self.sender_mac,
            &self.sender_ip.octets(),
            &self.target_mac,
            &self.target_ip.octets(),
        );
    }
}

fn ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(bytes).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[rustfmt::skip]
    static REQUEST: [u8; 30] = [
        0x00, 0x01, // hardware type Ethernet
        0x08, 0x00, // protocol type IPv4
        0x06, 0x04, // address lengths 6 and 4
        0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // sender MAC
        10, 20, 5, 10, // sender IP
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: unknown yet
        10, 20, 5, 1, // target IP
        0x00, 0x00, // Ethernet padding
    ];

    fn repr() -> Repr {
        Repr {
            operation: Operation::Request,
            sender_mac: [2, 0, 0, 0, 0, 0x0a],
            sender_ip: Ipv4Addr::new(10, 20, 5, 10),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 20, 5, 1),
        }
    }

    #[test]
    fn deconstruct() {
        let arp = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(arp.hardware_type(), 1);
        assert_eq!(arp.protocol_type(), EtherType::Ipv4);
        assert_eq!((arp.hardware_len(), arp.protocol_len()), (6, 4));
        assert_eq!(arp.operation(), Operation::Request);
        assert_eq!(arp.packet_len(), 28);
        assert_eq!(arp.sender_hardware_addr(), &[2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(arp.sender_protocol_addr(), &[10, 20, 5, 10]);
        assert_eq!(arp.target_hardware_addr(), &[0; 6]);
        assert_eq!(arp.target_protocol_addr(), &[10, 20, 5, 1]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 30];
        let mut arp = Packet::new_unchecked(&mut bytes[..]);
        arp.set_hardware_type(1);
        arp.set_protocol_type(EtherType::Ipv4);
        arp.set_address_lens(6, 4);
        arp.set_operation(Operation::Request);
        arp.set_addresses(
            &[2, 0, 0, 0, 0, 0x0a],
            &[10, 20, 5, 10],
            &[0; 6],
            &[10, 20, 5, 1],
        );
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn parse() {
        let arp = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(Repr::parse(&arp), Some(repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 30];
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn matches_an_independent_decoder() {
        let theirs = etherparse::ArpPacket::from_slice(&REQUEST).unwrap();
        let theirs = theirs.try_eth_ipv4().unwrap();
        assert_eq!(theirs.operation, etherparse::ArpOperation::REQUEST);
        assert_eq!(theirs.sender_mac, repr().sender_mac);
        assert_eq!(theirs.sender_ipv4, repr().sender_ip.octets());
        assert_eq!(theirs.target_ipv4, repr().target_ip.octets());
    }

    #[test]
    fn truncated_fixed_part() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn truncated_addresses() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        assert!(Packet::new_checked(&REQUEST[..28]).is_ok());
    }

    #[test]
    fn other_forms_are_kept_by_the_view_and_refused_by_the_repr() {
        let mut bytes = REQUEST;
        bytes[0..2].copy_from_slice(&6u16.to_be_bytes()); // IEEE 802 networks
        assert!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).is_none());
        let mut bytes = REQUEST;
        bytes[6..8].copy_from_slice(&8u16.to_be_bytes()); // InARP request
        let arp = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(arp.operation(), Operation::Unknown(8));
        assert_eq!(Repr::parse(&arp).unwrap().operation, Operation::Unknown(8));
        let mut bytes = REQUEST;
        bytes[5] = 16; // 16-byte protocol addresses: the buffer is too short for them
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(arp) = Packet::new_checked(&bytes[..]) {
                let _ = (arp.hardware_type(), arp.protocol_type(), arp.operation());
                let _ = (arp.sender_hardware_addr(), arp.sender_protocol_addr());
                let _ = (arp.target_hardware_addr(), arp.target_protocol_addr(), Repr::parse(&arp));
            }
        }

        #[test]
        fn emit_then_parse(operation: u16, sender_mac: [u8; 6], sender_ip: [u8; 4], target_mac: [u8; 6], target_ip: [u8; 4]) {
            let repr = Repr {
                operation: Operation::from(operation),
                sender_mac,
                sender_ip: sender_ip.into(),
                target_mac,
                target_ip: target_ip.into(),
            };
            let mut bytes = [0u8; Repr::LEN];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Some(repr));
        }
    }
}
