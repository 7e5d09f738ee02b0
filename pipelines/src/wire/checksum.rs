//! The Internet checksum (RFC 1071), shared by every view that computes one (IPv4, UDP, ICMP,
//! ICMPv6, GRE) and by the egress templates, which update it incrementally.
//!
//! # Design
//! RFC 1071 §1: "Adjacent octets to be checksummed are paired to form 16-bit integers, and the
//! 1's complement sum of these 16-bit integers is formed." Three properties of that sum decide
//! the code:
//! - it is the sum modulo `0xffff`, so 64-bit words can be added, the carries out of the
//!   accumulator counted and added back at the end, and the total folded to 16 bits (`2^16 ≡ 1`,
//!   so `2^64 ≡ 1`): one addition per eight bytes;
//! - byte swapping commutes with it (RFC 1071 §2.B: "byte order independence"), so the words are
//!   read in the machine's cheap little-endian order and the folded sum swapped once;
//! - it is associative and commutative, so a header can be summed once with its per-packet
//!   fields at zero and the per-packet values added later ([`add`]): the egress templates patch
//!   the IPv4 header checksum from a precomputed partial sum (RFC 1624's incremental update,
//!   in the simple case where the old field values are zero);
//! - "byte order independence" (§2.B): a run of bytes that starts at an odd offset contributes
//!   its own sum byte-swapped, which lets [`Accumulator`] sum a packet segment by segment
//!   whatever the segments' lengths.
//!
//! A *sum* here is the folded one's complement sum (never 0 for non-zero input); the checksum
//! field holds its complement ([`finish`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The folded 16-bit one's complement sum of `bytes`, an odd last byte padded with zero.
#[inline]
pub fn sum(bytes: &[u8]) -> u16 {
    fold(raw_sum(bytes)).swap_bytes()
}

/// One's complement addition of two sums (the end-around carry of RFC 1071).
#[inline]
pub const fn add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checksum field's value for a sum: its complement.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// The sum of the IPv4 pseudo-header (RFC 768): source, destination, zero, protocol, and the
/// upper-layer length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let words =
        u64::from(src.to_bits()) + u64::from(dst.to_bits()) + u64::from(protocol) + u64::from(len);
    fold(words)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the 32-bit
/// upper-layer packet length, three zero bytes and the next header value.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u16 {
    let mut acc = u64::from(next_header) + u64::from(len);
    for addr in [src, dst] {
        let bits = addr.to_bits();
        for shift in [96, 64, 32, 0] {
            acc += u64::from((bits >> shift) as u32);
        }
    }
    fold(acc)
}

/// A running sum over bytes given in pieces (the segments of a packet), each piece at whatever
/// offset the previous ones leave it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accumulator {
    sum: u64,
    len: usize,
}

impl Accumulator {
    /// An empty sum.
    pub const fn new() -> Accumulator {
        Accumulator { sum: 0, len: 0 }
    }

    /// Adds the next `bytes`, which follow the bytes added so far.
    #[inline]
    pub fn add(&mut self, bytes: &[u8]) {
        let piece = sum(bytes);
        // A piece starting at an odd offset has its bytes in the other halves of the 16-bit
        // words: its contribution is its own sum byte-swapped (RFC 1071 §2.B).
        let piece = if self.len % 2 == 1 {
            piece.swap_bytes()
        } else {
            piece
        };
        self.sum += u64::from(piece);
        self.len += bytes.len();
    }

    /// The folded sum of every byte added.
    pub fn sum(&self) -> u16 {
        fold(self.sum)
    }

    /// How many bytes were added.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The sum of `bytes` read as little-endian 64-bit words, the last one padded with zeros,
/// unfolded: congruent modulo `0xffff` to the sum of the bytes' little-endian 16-bit words,
/// which is their big-endian (network order) sum byte-swapped (RFC 1071 §2.B), whatever the
/// machine's byte order. [`sum`] swaps it back once, after folding.
///
/// Eight bytes per addition, with the carries out of the 64-bit accumulator counted apart and
/// added back at the end (`2^64 ≡ 1` modulo `0xffff`): half the additions of 32-bit words and
/// no byte swap per word.
#[inline]
fn raw_sum(bytes: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut carries: u64 = 0;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let (next, carry) = acc.overflowing_add(word);
        acc = next;
        carries += u64::from(carry);
    }
    let tail = words
        .remainder()
        .iter()
        .enumerate()
        .fold(0u64, |tail, (i, &b)| tail | u64::from(b) << (8 * i));
    let (acc, carry) = acc.overflowing_add(tail);
    let (acc, carry) = acc.overflowing_add(carries + u64::from(carry));
    // After a carry out of the last addition the sum is below the carries, far from wrapping.
    acc + u64::from(carry)
}

/// Folds a wide sum to 16 bits with end-around carries.
#[inline]
const fn fold(mut acc: u64) -> u16 {
    // Each step keeps the value modulo 0xffff and shrinks it; four steps reach 16 bits from any
    // 64-bit value (64 → 33 → 18 → 17 → 16 bits).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use proptest::prelude::*;

    #[test]
    fn rfc_1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xab]), 0xab00, "an odd last byte is the high half");
    }

    #[test]
    fn all_ones_stays_all_ones() {
        assert_eq!(sum(&[0xff; 64]), 0xffff);
        assert_eq!(add(0xffff, 0xffff), 0xffff);
        assert_eq!(add(0xfffe, 0x0002), 0x0001);
    }

    #[test]
    fn pseudo_headers_match_their_bytes() {
        let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 7, 9));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s4.octets());
        bytes.extend_from_slice(&d4.octets());
        bytes.extend_from_slice(&[0, 17, 0x12, 0x34]);
        assert_eq!(pseudo_header_v4(s4, d4, 17, 0x1234), sum(&bytes));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::1234:5678:9abc:def0".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&d6.octets());
        bytes.extend_from_slice(&0x0001_0203u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(s6, d6, 58, 0x0001_0203), sum(&bytes));
    }

    proptest! {
        /// Against the plainly written 16-bit version in `testing` (an independent oracle).
        #[test]
        fn sum_matches_the_word_by_word_definition(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(finish(sum(&bytes)), testing::checksum(&bytes));
        }

        /// Summing in pieces of any lengths, odd ones included, gives the sum of the whole.
        #[test]
        fn pieces_sum_like_the_whole(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                     cuts in proptest::collection::vec(0usize..300, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut acc = Accumulator::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                acc.add(&bytes[start..cut]);
                start = cut;
            }
            prop_assert_eq!(acc.len(), bytes.len());
            prop_assert_eq!(acc.sum(), sum(&bytes));
        }

        /// Patching a zeroed field by addition equals summing the patched bytes.
        #[test]
        fn adding_a_field_equals_summing_it(mut bytes in proptest::collection::vec(any::<u8>(), 2..64),
                                            at in 0usize..32, value: u16) {
            let at = (at % (bytes.len() / 2)) * 2;
            bytes[at..at + 2].copy_from_slice(&[0, 0]);
            let partial = sum(&bytes);
            bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
            prop_assert_eq!(add(partial, value), sum(&bytes));
        }
    }
}
