//! GENEVE header (RFC 8926 §3.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! ~                    Variable-Length Options                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Design
//! RFC 8926 §3.4: "Opt Len (6 bits): The length of the option fields, expressed in 4-byte
//! multiples, not including the 8-byte fixed tunnel header. This results in a minimum total
//! Geneve header size of 8 bytes and a maximum of 260 bytes. The start of the payload headers can
//! be found using this offset from the end of the base Geneve header." Options are therefore
//! skipped as one block of `Opt Len × 4` bytes, never walked one by one: skipping cannot loop and
//! costs the same whatever the options are (AWS GWLB puts its flow cookie and ENI ids there).
//!
//! "Version (2 bits): The current version number is 0. Packets received by a tunnel endpoint
//! with an unknown version MUST be dropped." A version 1+ header may be laid out differently,
//! so `new_checked` refuses it (`BadVersion`) rather than read fields it cannot vouch for.
//!
//! The O (control) and C (critical options) bits are reported, not acted on: see
//! `stage::decap` for why a monitoring broker delivers such packets.

use super::{Error, EtherType, Field, Result, read_u16, read_u24, write_u16, write_u24};

mod field {
    use super::Field;

    pub const VER_OPT_LEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    pub const VNI: Field = 4..7;
    pub const OPTIONS: usize = 8;
}

/// Length of the fixed header (without options).
pub const HEADER_LEN: usize = field::OPTIONS;

/// The largest options block the 6-bit Opt Len can announce (63 × 4 bytes).
pub const MAX_OPTIONS_LEN: usize = 63 * 4;

/// The IANA-assigned GENEVE UDP port.
pub const IANA_PORT: u16 = 6081;

const FLAG_OAM: u8 = 0x80;
const FLAG_CRITICAL: u8 = 0x40;

/// A read/write view of a GENEVE header, its options and the payload after them.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking, in this order: the 8-byte fixed header is present
    /// (`Truncated`), the version is 0 (`BadVersion`), the options announced by Opt Len are
    /// present (`OptionsOverrun`).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 0 {
            return Err(Error::BadVersion);
        }
        if len < HEADER_LEN + packet.options_len() {
            return Err(Error::OptionsOverrun);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_OPT_LEN] >> 6
    }

    /// Length of the options in bytes (Opt Len × 4).
    pub fn options_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_OPT_LEN] & 0x3f) * 4
    }

    /// Length of the whole GENEVE header, options included: where the payload starts.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// The O bit: "This packet contains a control message" (RFC 8926).
    pub fn is_control(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_OAM != 0
    }

    /// The C bit: "One or more options has the critical bit set".
    pub fn has_critical_options(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_CRITICAL != 0
    }

    /// "The type of protocol data unit appearing after the Geneve header. This follows the
    /// EtherType convention; with Ethernet itself being represented by the value 0x6558."
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI)
    }

    /// The options, as one block of bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The bytes after the options.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version (2 bits) and the options length in bytes (a multiple of 4, at most
    /// [`MAX_OPTIONS_LEN`]).
    pub fn set_version_and_options_len(&mut self, version: u8, options_len: usize) {
        self.buffer.as_mut()[field::VER_OPT_LEN] =
            (version << 6) | ((options_len / 4) as u8 & 0x3f);
    }

    pub fn set_flags(&mut self, control: bool, critical: bool) {
        let mut value = 0;
        if control {
            value |= FLAG_OAM;
        }
        if critical {
            value |= FLAG_CRITICAL;
        }
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PROTOCOL, value.into());
    }

    /// Sets the VNI (low 24 bits of `vni`).
    pub fn set_vni(&mut self, vni: u32) {
        write_u24(self.buffer.as_mut(), field::VNI, vni);
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// Length of an option's header (class, type, length).
pub const OPTION_HEADER_LEN: usize = 4;

/// The largest option data the 5-bit length can announce (31 × 4 bytes).
pub const MAX_OPTION_DATA_LEN: usize = 31 * 4;

const OPTION_CRITICAL: u8 = 0x80;

/// One option (RFC 8926 §3.5), at the start of `buffer`:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Option Class         |      Type     |R|R|R| Length  |
/// |                      Variable-Length Option Data              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// "Length (5 bits): Length of the option, expressed in 4-byte multiples, excluding the Option
/// Header." The high bit of the type is the critical bit: a receiver that does not know a
/// critical option must drop the packet, so the broker's own option is not critical.
#[derive(Debug, Clone)]
pub struct Tlv<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Tlv<T> {
        Tlv { buffer }
    }

    /// Wraps `buffer` after checking that the option header (`Truncated`) and the data its
    /// length announces (`OptionsOverrun`) are present.
    pub fn new_checked(buffer: T) -> Result<Tlv<T>> {
        let option = Tlv::new_unchecked(buffer);
        let len = option.buffer.as_ref().len();
        if len < OPTION_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if len < option.option_len() {
            return Err(Error::OptionsOverrun);
        }
        Ok(option)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn class(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 0..2)
    }

    /// The type, critical bit included.
    pub fn option_type(&self) -> u8 {
        self.buffer.as_ref()[2]
    }

    /// Whether the type's critical bit is set.
    pub fn is_critical(&self) -> bool {
        self.option_type() & OPTION_CRITICAL != 0
    }

    /// Length of the data in bytes.
    pub fn data_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[3] & 0x1f) * 4
    }

    /// Length of the whole option: where the next one starts.
    pub fn option_len(&self) -> usize {
        OPTION_HEADER_LEN + self.data_len()
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[OPTION_HEADER_LEN..self.option_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tlv<T> {
    pub fn set_class(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), 0..2, value);
    }

    /// Sets the type, critical bit included.
    pub fn set_option_type(&mut self, value: u8) {
        self.buffer.as_mut()[2] = value;
    }

    /// Sets the data length in bytes (a multiple of 4, at most [`MAX_OPTION_DATA_LEN`]), the
    /// reserved bits zero.
    pub fn set_data_len(&mut self, len: usize) {
        self.buffer.as_mut()[3] = (len / 4) as u8 & 0x1f;
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.option_len();
        &mut self.buffer.as_mut()[OPTION_HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A header shaped like AWS GWLB's: two options (12 bytes each).
    #[rustfmt::skip]
    static HEADER: [u8; 34] = [
        0x06, // version 0, Opt Len 6 (24 bytes)
        0x00, // O=0, C=0
        0x65, 0x58, // protocol type: Ethernet
        0x00, 0x00, 0x2a, // VNI 42
        0x00, // reserved
        // option: class 0x0108 (AWS), type 1, length 2 words, 8 bytes of data
        0x01, 0x08, 0x01, 0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
        // option: class 0x0108, type 3, length 2 words
        0x01, 0x08, 0x03, 0x02, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
        0x02, 0x00, // start of the inner Ethernet frame
    ];

    #[test]
    fn deconstruct() {
        let geneve = Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(geneve.version(), 0);
        assert_eq!(geneve.options_len(), 24);
        assert_eq!(geneve.header_len(), 32);
        assert!(!geneve.is_control() && !geneve.has_critical_options());
        assert_eq!(geneve.protocol_type(), EtherType::TransparentEthernet);
        assert_eq!(geneve.vni(), 42);
        assert_eq!(geneve.options(), &HEADER[8..32]);
        assert_eq!(geneve.payload(), &[0x02, 0x00]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 34];
        let mut geneve = Packet::new_unchecked(&mut bytes[..]);
        geneve.set_version_and_options_len(0, 24);
        geneve.set_flags(false, false);
        geneve.set_protocol_type(EtherType::TransparentEthernet);
        geneve.set_vni(42);
        geneve.options_mut().copy_from_slice(&HEADER[8..32]);
        geneve.payload_mut().copy_from_slice(&[0x02, 0x00]);
        assert_eq!(bytes, HEADER);
    }

    #[test]
    fn truncated_fixed_header() {
        assert_eq!(
            Packet::new_checked(&HEADER[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn options_past_the_buffer() {
        assert_eq!(
            Packet::new_checked(&HEADER[..31]).unwrap_err(),
            Error::OptionsOverrun
        );
        assert!(
            Packet::new_checked(&HEADER[..32])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn unknown_version() {
        let mut bytes = HEADER;
        bytes[0] = 0x46; // version 1
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn flags_and_bare_ip_protocol() {
        let mut bytes = HEADER;
        bytes[1] = 0xc0;
        bytes[2..4].copy_from_slice(&[0x86, 0xdd]);
        let geneve = Packet::new_checked(&bytes[..]).unwrap();
        assert!(geneve.is_control() && geneve.has_critical_options());
        assert_eq!(geneve.protocol_type(), EtherType::Ipv6);
    }

    #[test]
    fn deconstruct_option() {
        let geneve = Packet::new_checked(&HEADER[..]).unwrap();
        let first = Tlv::new_checked(geneve.options()).unwrap();
        assert_eq!((first.class(), first.option_type()), (0x0108, 1));
        assert!(!first.is_critical());
        assert_eq!((first.data_len(), first.option_len()), (8, 12));
        assert_eq!(first.data(), &[0xaa; 8]);
        let second = Tlv::new_checked(&geneve.options()[first.option_len()..]).unwrap();
        assert_eq!((second.option_type(), second.data()), (3, &[0xbb; 8][..]));
    }

    #[test]
    fn construct_option() {
        let mut bytes = [0xffu8; 12];
        let mut option = Tlv::new_unchecked(&mut bytes[..]);
        option.set_class(0x0108);
        option.set_option_type(1);
        option.set_data_len(8);
        option.data_mut().copy_from_slice(&[0xaa; 8]);
        assert_eq!(bytes, HEADER[8..20]);
    }

    #[test]
    fn truncated_option_header_and_data() {
        assert_eq!(
            Tlv::new_checked(&HEADER[8..11]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Tlv::new_checked(&HEADER[8..19]).unwrap_err(),
            Error::OptionsOverrun
        );
        let critical = [0xff, 0xf0, 0x81, 0x00];
        let option = Tlv::new_checked(&critical[..]).unwrap();
        assert!(option.is_critical() && option.data().is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(geneve) = Packet::new_checked(&bytes[..]) {
                prop_assert!(geneve.header_len() <= bytes.len());
                let _ = (geneve.is_control(), geneve.has_critical_options(), geneve.protocol_type(), geneve.vni());
                let _ = (geneve.options(), geneve.payload());
                if let Ok(option) = Tlv::new_checked(geneve.options()) {
                    prop_assert!(option.option_len() <= geneve.options_len());
                    let _ = (option.class(), option.is_critical(), option.data());
                }
            }
        }

        #[test]
        fn emit_then_parse(words in 0usize..64, control: bool, critical: bool, protocol: u16, vni in 0u32..(1 << 24),
                           payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let options_len = words * 4;
            let mut bytes = vec![0x5au8; HEADER_LEN + options_len + payload.len()];
            let mut geneve = Packet::new_unchecked(&mut bytes[..]);
            geneve.set_version_and_options_len(0, options_len);
            geneve.set_flags(control, critical);
            geneve.set_protocol_type(EtherType::from(protocol));
            geneve.set_vni(vni);
            geneve.payload_mut().copy_from_slice(&payload);
            let geneve = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(geneve.options_len(), options_len);
            prop_assert_eq!((geneve.is_control(), geneve.has_critical_options()), (control, critical));
            prop_assert_eq!((u16::from(geneve.protocol_type()), geneve.vni()), (protocol, vni));
            prop_assert_eq!(geneve.payload(), &payload[..]);
        }

        #[test]
        fn emit_then_parse_option(class: u16, option_type: u8, words in 0usize..32,
                                  fill: u8) {
            let mut bytes = vec![0x5au8; OPTION_HEADER_LEN + words * 4];
            let mut option = Tlv::new_unchecked(&mut bytes[..]);
            option.set_class(class);
            option.set_option_type(option_type);
            option.set_data_len(words * 4);
            option.data_mut().fill(fill);
            let option = Tlv::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((option.class(), option.option_type()), (class, option_type));
            prop_assert_eq!(option.is_critical(), option_type >= 0x80);
            prop_assert_eq!(option.data(), &vec![fill; words * 4][..]);
        }
    }
}
