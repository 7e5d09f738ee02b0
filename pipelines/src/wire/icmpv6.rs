//! ICMPv6 (RFC 4443): the common header, echo request and reply, and the neighbour discovery
//! messages the broker needs (RFC 4861 neighbour solicitation and advertisement, with their
//! link-layer address options).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! echo request / reply (RFC 4443 §4.1, §4.2):
//! |           Identifier          |        Sequence Number        |
//! |     Data ...
//! neighbour solicitation (RFC 4861 §4.3)     | advertisement (§4.4):
//! |                           Reserved         |R|S|O|     Reserved                 |
//! |                    Target Address (16 bytes)                                    |
//! |   Options ...
//! ```
//!
//! # Design
//! Every message has at least 8 bytes (the RFC 4443 error messages, echo, and the ND messages
//! all have a second 32-bit word), so `new_checked` checks those; a neighbour solicitation or
//! advertisement must also hold its target address (24 bytes), which `new_checked` checks too,
//! so that [`Packet::target_addr`] cannot fail on a checked view. Options are walked by
//! [`NdOptions`], bounded by the bytes given.
//!
//! The checksum covers a pseudo-header. RFC 4443 §2.3: "The checksum is the 16-bit one's
//! complement of the one's complement sum of the entire ICMPv6 message, starting with the
//! ICMPv6 message type field, and prepended with a "pseudo-header" of IPv6 header fields, as
//! specified in [IPv6, Section 8.1]." The buffer is therefore the whole ICMPv6 message, and the
//! checksum methods take the IPv6 source and destination.
//!
//! What RFC 4861 asks a receiver to validate (hop limit 255, code 0, options of non-zero
//! length, …) needs the IPv6 header as well and is done by the caller (`crate::neighbour`).

use std::net::Ipv6Addr;

use super::{Error, Field, Result, checksum, ethernet, read_u16, write_u16};
use crate::flow::ip_proto;

mod field {
    use super::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ_NO: Field = 6..8;
    pub const ND_FLAGS: usize = 4;
    pub const ND_RESERVED: Field = 4..8;
    pub const TARGET: Field = 8..24;
    pub const ECHO_DATA: usize = 8;
    pub const ND_OPTIONS: usize = 24;
}

/// Length of the smallest message (type, code, checksum and one 32-bit word).
pub const HEADER_LEN: usize = 8;
/// Length of a neighbour solicitation or advertisement without options.
pub const ND_LEN: usize = field::ND_OPTIONS;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// The ICMPv6 message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// 1.
    DestinationUnreachable,
    /// 2.
    PacketTooBig,
    /// 3.
    TimeExceeded,
    /// 4.
    ParameterProblem,
    /// 128.
    EchoRequest,
    /// 129.
    EchoReply,
    /// 133.
    RouterSolicitation,
    /// 134.
    RouterAdvertisement,
    /// 135.
    NeighbourSolicitation,
    /// 136.
    NeighbourAdvertisement,
    /// 137.
    Redirect,
    /// Any other type, kept as it was read.
    Unknown(u8),
}

impl Message {
    /// Whether this is one of the five neighbour discovery messages of RFC 4861 (router
    /// solicitation and advertisement, neighbour solicitation and advertisement, redirect).
    pub const fn is_neighbour_discovery(self) -> bool {
        matches!(
            self,
            Message::RouterSolicitation
                | Message::RouterAdvertisement
                | Message::NeighbourSolicitation
                | Message::NeighbourAdvertisement
                | Message::Redirect
        )
    }
}

impl From<u8> for Message {
    fn from(value: u8) -> Message {
        match value {
            1 => Message::DestinationUnreachable,
            2 => Message::PacketTooBig,
            3 => Message::TimeExceeded,
            4 => Message::ParameterProblem,
            128 => Message::EchoRequest,
            129 => Message::EchoReply,
            133 => Message::RouterSolicitation,
            134 => Message::RouterAdvertisement,
            135 => Message::NeighbourSolicitation,
            136 => Message::NeighbourAdvertisement,
            137 => Message::Redirect,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(value: Message) -> u8 {
        match value {
            Message::DestinationUnreachable => 1,
            Message::PacketTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParameterProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::RouterSolicitation => 133,
            Message::RouterAdvertisement => 134,
            Message::NeighbourSolicitation => 135,
            Message::NeighbourAdvertisement => 136,
            Message::Redirect => 137,
            Message::Unknown(other) => other,
        }
    }
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the 8-byte header is present (`Truncated`) and, for a
    /// neighbour solicitation or advertisement, the target address (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < HEADER_LEN || (packet.has_target() && len < ND_LEN) {
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

    fn has_target(&self) -> bool {
        matches!(
            self.msg_type(),
            Message::NeighbourSolicitation | Message::NeighbourAdvertisement
        )
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
    pub fn echo_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ECHO_DATA..]
    }

    /// A neighbour advertisement's R flag: "the sender is a router".
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::ND_FLAGS] & FLAG_ROUTER != 0
    }

    /// A neighbour advertisement's S flag: "the advertisement was sent in response to a
    /// Neighbor Solicitation from the Destination address".
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::ND_FLAGS] & FLAG_SOLICITED != 0
    }

    /// A neighbour advertisement's O flag: "the advertisement should override an existing cache
    /// entry and update the cached link-layer address".
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::ND_FLAGS] & FLAG_OVERRIDE != 0
    }

    /// The target address of a neighbour solicitation or advertisement; `None` for other
    /// messages.
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        self.has_target().then(|| {
            let mut octets = [0; 16];
            octets.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
            Ipv6Addr::from(octets)
        })
    }

    /// The options of a neighbour solicitation or advertisement (empty for other messages).
    pub fn nd_options(&self) -> &[u8] {
        if self.has_target() {
            &self.buffer.as_ref()[field::ND_OPTIONS..]
        } else {
            &[]
        }
    }

    /// Whether the checksum is right for a message sent from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, bytes.len() as u32);
        checksum::add(pseudo, checksum::sum(bytes)) == 0xffff
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

    pub fn echo_data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ECHO_DATA..]
    }

    /// Writes the second word of a neighbour solicitation (`false, false, false`: all reserved)
    /// or advertisement: the R, S and O flags, every reserved bit zero.
    pub fn set_nd_flags(&mut self, router: bool, solicited: bool, overrides: bool) {
        let bytes = self.buffer.as_mut();
        bytes[field::ND_RESERVED].fill(0);
        let mut flags = 0;
        if router {
            flags |= FLAG_ROUTER;
        }
        if solicited {
            flags |= FLAG_SOLICITED;
        }
        if overrides {
            flags |= FLAG_OVERRIDE;
        }
        bytes[field::ND_FLAGS] = flags;
    }

    /// Writes the target address (bytes 8–23).
    pub fn set_target_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&addr.octets());
    }

    /// The bytes after the target address, writable (for the options).
    pub fn nd_options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ND_OPTIONS..]
    }

    /// Computes and writes the checksum for a message sent from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let bytes = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, bytes.len() as u32);
        let sum = checksum::add(pseudo, checksum::sum(bytes));
        self.set_checksum(checksum::finish(sum));
    }
}

/// Neighbour discovery option types (RFC 4861 §4.6).
pub mod nd_option {
    /// Source Link-layer Address.
    pub const SOURCE_LINK_LAYER_ADDR: u8 = 1;
    /// Target Link-layer Address.
    pub const TARGET_LINK_LAYER_ADDR: u8 = 2;
    /// Length of a link-layer address option for Ethernet (one 8-byte unit).
    pub const LINK_LAYER_ADDR_LEN: usize = 8;
}

/// One neighbour discovery option (RFC 4861 §4.6):
///
/// ```text
/// |     Type      |    Length     |              ...              |
/// ~                              ...                              ~
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdOption<'a> {
    pub kind: u8,
    /// The option's bytes after the type and length.
    pub data: &'a [u8],
}

impl NdOption<'_> {
    /// The Ethernet address of a source or target link-layer address option. RFC 4861 §4.6.1:
    /// "The variable length link-layer address. The content and format of this field (including
    /// byte and bit ordering) is expected to be specified in specific documents that describe
    /// how IPv6 operates over different link layers" — for Ethernet (RFC 2464 §8), a length of 1
    /// and the 6-byte address.
    pub fn link_layer_addr(&self) -> Option<ethernet::Address> {
        match self.kind {
            nd_option::SOURCE_LINK_LAYER_ADDR | nd_option::TARGET_LINK_LAYER_ADDR => {
                self.data.try_into().ok()
            }
            _ => None,
        }
    }
}

/// The options in `bytes`, in order. Yields `Err(Truncated)` once, then stops, at an option of
/// length zero or one running past the bytes: RFC 4861 §4.6, "The value 0 is invalid. Nodes
/// MUST silently discard an ND packet that contains an option with length zero."
#[derive(Clone, Debug)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdOptions<'a> {
    pub const fn new(bytes: &'a [u8]) -> NdOptions<'a> {
        NdOptions { rest: bytes }
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        let len = after_kind
            .first()
            .map_or(0, |&units| usize::from(units) * 8);
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Error::Truncated));
        }
        let (option, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(NdOption {
            kind,
            data: &option[2..],
        }))
    }
}

/// Writes an Ethernet link-layer address option of `kind` into the first 8 bytes of `out`.
pub fn write_link_layer_option(out: &mut [u8], kind: u8, mac: ethernet::Address) {
    out[0] = kind;
    out[1] = 1;
    out[2..nd_option::LINK_LAYER_ADDR_LEN].copy_from_slice(&mac);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn src() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }

    fn dst() -> Ipv6Addr {
        "2001:db8::10".parse().unwrap()
    }

    #[rustfmt::skip]
    static ADVERTISEMENT: [u8; 32] = [
        0x88, 0x00, // neighbour advertisement, code 0
        0x00, 0x00, // checksum (filled in by the test)
        0x60, 0x00, 0x00, 0x00, // S and O set
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, // target 2001:db8::7
        0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x07, // target link-layer address 02::07
    ];

    #[rustfmt::skip]
    static ECHO: [u8; 12] = [
        0x80, 0x00, // echo request, code 0
        0x00, 0x00, // checksum
        0xbe, 0xef, // identifier
        0x00, 0x02, // sequence number
        0xde, 0xad, 0xbe, 0xef, // data
    ];

    fn with_checksum<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(src(), dst());
        bytes
    }

    #[test]
    fn deconstruct_advertisement() {
        let bytes = with_checksum(ADVERTISEMENT);
        let icmp = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(icmp.msg_type(), Message::NeighbourAdvertisement);
        assert!(icmp.msg_type().is_neighbour_discovery());
        assert_eq!(icmp.code(), 0);
        assert!(!icmp.router_flag() && icmp.solicited_flag() && icmp.override_flag());
        assert_eq!(icmp.target_addr(), Some("2001:db8::7".parse().unwrap()));
        let options: Vec<_> = NdOptions::new(icmp.nd_options()).collect();
        assert_eq!(options.len(), 1);
        let option = options[0].unwrap();
        assert_eq!(option.kind, nd_option::TARGET_LINK_LAYER_ADDR);
        assert_eq!(option.link_layer_addr(), Some([2, 0, 0, 0, 0, 7]));
        assert!(icmp.verify_checksum(src(), dst()));
        assert!(!icmp.verify_checksum(src(), "2001:db8::11".parse().unwrap()));
    }

    #[test]
    fn construct_advertisement() {
        let mut bytes = [0xffu8; 32];
        let mut icmp = Packet::new_unchecked(&mut bytes[..]);
        icmp.set_msg_type(Message::NeighbourAdvertisement);
        icmp.set_code(0);
        icmp.set_nd_flags(false, true, true);
        icmp.set_target_addr("2001:db8::7".parse().unwrap());
        write_link_layer_option(
            icmp.nd_options_mut(),
            nd_option::TARGET_LINK_LAYER_ADDR,
            [2, 0, 0, 0, 0, 7],
        );
        icmp.fill_checksum(src(), dst());
        assert_eq!(bytes, with_checksum(ADVERTISEMENT));
    }

    #[test]
    fn deconstruct_and_construct_echo() {
        let bytes = with_checksum(ECHO);
        let icmp = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(icmp.msg_type(), Message::EchoRequest);
        assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (0xbeef, 2));
        assert_eq!(icmp.echo_data(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(icmp.target_addr(), None);
        assert!(icmp.nd_options().is_empty());

        let mut built = [0u8; 12];
        let mut icmp = Packet::new_unchecked(&mut built[..]);
        icmp.set_msg_type(Message::EchoRequest);
        icmp.set_echo_ident(0xbeef);
        icmp.set_echo_seq_no(2);
        icmp.echo_data_mut()
            .copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        icmp.fill_checksum(src(), dst());
        assert_eq!(built, bytes);
    }

    #[test]
    fn checksum_matches_an_independent_encoder() {
        for bytes in [&with_checksum(ADVERTISEMENT)[..], &with_checksum(ECHO)[..]] {
            let theirs = etherparse::Icmpv6Slice::from_slice(bytes).unwrap();
            let expected = theirs
                .icmp_type()
                .calc_checksum(src().octets(), dst().octets(), theirs.payload())
                .unwrap();
            assert_eq!(Packet::new_checked(bytes).unwrap().checksum(), expected);
        }
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Packet::new_checked(&ECHO[..8]).is_ok());
    }

    #[test]
    fn truncated_target() {
        assert_eq!(
            Packet::new_checked(&ADVERTISEMENT[..23]).unwrap_err(),
            Error::Truncated
        );
        let icmp = Packet::new_checked(&ADVERTISEMENT[..24]).unwrap();
        assert!(icmp.target_addr().is_some() && icmp.nd_options().is_empty());
    }

    #[test]
    fn options_of_length_zero_or_past_the_end_stop_the_walk() {
        let zero = [1u8, 0, 2, 0, 0, 0, 0, 1];
        let walked: Vec<_> = NdOptions::new(&zero).collect();
        assert_eq!(walked, vec![Err(Error::Truncated)]);
        let past = [1u8, 2, 2, 0, 0, 0, 0, 1];
        assert_eq!(
            NdOptions::new(&past).collect::<Vec<_>>(),
            vec![Err(Error::Truncated)]
        );
        assert_eq!(
            NdOptions::new(&[1]).collect::<Vec<_>>(),
            vec![Err(Error::Truncated)]
        );
        // A nonce option (type 14) is kept; it has no link-layer address.
        let nonce = [14u8, 1, 1, 2, 3, 4, 5, 6];
        let option = NdOptions::new(&nonce).next().unwrap().unwrap();
        assert_eq!((option.kind, option.link_layer_addr()), (14, None));
    }

    #[test]
    fn unknown_types_are_kept() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Message::from(value)), value);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                       nd in prop_oneof![Just(None), Just(Some(135u8)), Just(Some(136u8))]) {
            let mut bytes = bytes;
            if let (Some(kind), Some(first)) = (nd, bytes.first_mut()) {
                *first = kind;
            }
            if let Ok(icmp) = Packet::new_checked(&bytes[..]) {
                let _ = (icmp.msg_type(), icmp.code(), icmp.checksum(), icmp.echo_ident(), icmp.echo_seq_no());
                let _ = (icmp.echo_data(), icmp.router_flag(), icmp.target_addr(), icmp.verify_checksum(src(), dst()));
                for option in NdOptions::new(icmp.nd_options()).flatten() {
                    let _ = option.link_layer_addr();
                }
            }
        }

        #[test]
        fn option_walk_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut total = 0;
            let mut count = 0;
            for option in NdOptions::new(&bytes) {
                count += 1;
                total += option.map_or(0, |o| o.data.len() + 2);
            }
            prop_assert!(total <= bytes.len() && count <= bytes.len() / 8 + 1);
        }

        #[test]
        fn emit_then_parse_solicitation(target: [u8; 16], mac: [u8; 6], src_addr: [u8; 16], dst_addr: [u8; 16]) {
            let (s, d) = (Ipv6Addr::from(src_addr), Ipv6Addr::from(dst_addr));
            let mut bytes = [0u8; ND_LEN + 8];
            let mut icmp = Packet::new_unchecked(&mut bytes[..]);
            icmp.set_msg_type(Message::NeighbourSolicitation);
            icmp.set_code(0);
            icmp.set_nd_flags(false, false, false);
            icmp.set_target_addr(target.into());
            write_link_layer_option(icmp.nd_options_mut(), nd_option::SOURCE_LINK_LAYER_ADDR, mac);
            icmp.fill_checksum(s, d);
            let icmp = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(icmp.target_addr(), Some(Ipv6Addr::from(target)));
            let option = NdOptions::new(icmp.nd_options()).next().unwrap().unwrap();
            prop_assert_eq!((option.kind, option.link_layer_addr()), (nd_option::SOURCE_LINK_LAYER_ADDR, Some(mac)));
            prop_assert!(icmp.verify_checksum(s, d));
        }
    }
}
