//! Zero-copy views of the headers the broker reads, one file per header.
//!
//! # Design
//! Each header is a `Packet<T: AsRef<[u8]>>` (smoltcp's shape): the byte ranges of its fields in a
//! `field` module, `new_checked` that validates the buffer **once** so that every getter after it
//! reads inside the buffer and cannot panic, `payload()` returning a sub-slice of the same buffer
//! (nothing is copied), and setters on `T: AsMut<[u8]>` so tests and the decapsulation stage can
//! emit headers with the same code that reads them. Field values the broker does not know are
//! kept (`EtherType::Unknown(0x1234)`), never rejected by the view: what to do with them is the
//! stage's decision.
//!
//! A view checks what its own header says about itself (length, version, header-length fields).
//! Lengths that relate a header to the *packet* (an IPv4 total length, a UDP length) are exposed
//! but not enforced here: the buffer a view sees may be the first segment of a multi-segment
//! packet, or a mirrored packet that the cloud truncated on purpose, and only the caller knows
//! which. `payload()` is therefore "the payload bytes present in this buffer".
//!
//! Checksums are not verified by any view (see `stage::decap` for why).

pub mod arp;
pub mod checksum;
pub mod erspan;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use ethernet::EtherType;

/// Why a view refused its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before the fixed part of the header does, or before the header length
    /// the header itself announces.
    Truncated,
    /// The version field names a version this view does not describe.
    BadVersion,
    /// A header-length field is below the header's minimum (an IPv4 IHL below 5).
    BadHeaderLength,
    /// The variable-length part announced by the header (GENEVE options) runs past the buffer.
    OptionsOverrun,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "header cut short",
            Error::BadVersion => "unknown version",
            Error::BadHeaderLength => "header length field below the minimum",
            Error::OptionsOverrun => "options run past the buffer",
        })
    }
}

impl std::error::Error for Error {}

/// A result whose error is a wire [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The byte range of one field inside a header.
pub(crate) type Field = std::ops::Range<usize>;

/// Reads a big-endian `u16` at `field` (two bytes). Callers pass ranges their `new_checked` has
/// proven to be inside `bytes`.
pub(crate) fn read_u16(bytes: &[u8], field: Field) -> u16 {
    let b = &bytes[field];
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian 24-bit value at `field` (three bytes).
pub(crate) fn read_u24(bytes: &[u8], field: Field) -> u32 {
    let b = &bytes[field];
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// Reads a big-endian `u32` at `field` (four bytes).
pub(crate) fn read_u32(bytes: &[u8], field: Field) -> u32 {
    let b = &bytes[field];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes `value` big-endian into the two bytes of `field`.
pub(crate) fn write_u16(bytes: &mut [u8], field: Field, value: u16) {
    bytes[field].copy_from_slice(&value.to_be_bytes());
}

/// Writes the low 24 bits of `value` big-endian into the three bytes of `field`.
pub(crate) fn write_u24(bytes: &mut [u8], field: Field, value: u32) {
    bytes[field].copy_from_slice(&value.to_be_bytes()[1..]);
}

/// Writes `value` big-endian into the four bytes of `field`.
pub(crate) fn write_u32(bytes: &mut [u8], field: Field, value: u32) {
    bytes[field].copy_from_slice(&value.to_be_bytes());
}
