//! The de-duplication key of an inner packet: equal for the two mirrored copies of one packet.
//!
//! # Design
//! The key covers the inner packet from L3 on, over all segments, normalised so that the copies
//! delivered by the two mirrored ends of a connection agree: the IPv4 TTL and header checksum (a
//! router between the two ENIs decrements one and so changes the other) and the IPv6 hop limit
//! are blanked; the DSCP/ECN bits (IPv4 TOS, IPv6 traffic class) too when the config says so.
//! The inner VLAN ids are part of the key unless the config says to ignore them.
//!
//! The key is a keyed XXH3-128 ([`DedupKeyer::new`] draws the secret); a one-segment packet is
//! read once and never copied. All the fields blanked lie in the first 12 bytes of the IP header,
//! so:
//! - an L3 part of up to 240 bytes (XXH3's short and mid-size inputs, most packets) is hashed in
//!   one pass by this module's own XXH3-128, which reads the packet where it lies and takes the
//!   words that hold blanked fields with those bits cleared: the result is XXH3-128 of the
//!   normalised bytes (a test holds it equal to the `xxhash-rust` crate's on a normalised copy);
//! - a longer one is hashed from byte 16 on (one call for a one-segment packet, by the
//!   `twox-hash` crate, whose stripe loop runs on the widest vector unit the CPU has, chosen at
//!   run time; streamed over a chain), and a second, short XXH3-128 binds the normalised first 16
//!   bytes to that digest (two 16-byte blocks, see [`BLOCK`]);
//! - with VLAN ids, a last short XXH3-128 binds the digest of the L3 part to them.
//!
//! `hash` and `fingerprint` are the two 64-bit halves of the 128-bit result: the table picks the
//! key's buckets with one and stores 50 bits of the other, so two different packets whose entries
//! meet in a bucket are confused with probability 2^-50 (the table's module docs state what that
//! gives per second). The three shapes hashed (an L3 part, a head and a digest, a digest and
//! VLAN ids) cannot be made equal for two different packets without knowing a 128-bit digest
//! under the secret, so mixing them adds no collisions beyond XXH3's own.
//!
//! The hash is keyed with a 192-byte XXH3 secret drawn at start ([`DedupKeyer::new`]), so that
//! the packets an attacker can inject into a mirrored network cannot be crafted offline to
//! collide with (and so hide) the packets of another flow.
//!
//! # Limitations
//! - XXH3 with a secret is not a MAC: the key makes collisions impractical to aim at, not
//!   provably impossible. The secret is expanded from 128 bits of OS randomness (std's
//!   `RandomState`).
//! - Bytes after the IP packet (Ethernet padding of the inner frame) are part of the key; both
//!   copies carry the same inner frame, so they agree. Copies truncated to different lengths by
//!   two mirror sessions are different packets.
//! - IPv4 options and IPv6 extension headers are part of the key as they are (a hop-by-hop
//!   option rewritten in transit makes two copies different packets).
//! - A packet whose L3 part is shorter than an IP header (20 bytes for IPv4, 40 for IPv6) or is not
//!   IP is hashed as raw bytes, without normalisation.
//! - The one-pass hash covers XXH3's inputs of up to 240 bytes; longer ones pay a second, short
//!   call. The vector unit is chosen at run time only for the one-call digest of a one-segment
//!   packet: a chained packet's stream is hashed by `xxhash-rust`, whose vector unit is fixed at
//!   compile time (SSE2 on the baseline x86-64 target); the two crates' digests are equal.

use std::fmt;
use std::hash::{BuildHasher, RandomState};

use twox_hash::XxHash3_128;
use twox_hash::xxhash3_128::SECRET_MINIMUM_LENGTH;
use xxhash_rust::xxh3::{Xxh3, xxh3_128_with_secret};

use crate::buf::PacketBuf;

/// Size of an XXH3 secret (XXH3's default size).
const SECRET_SIZE: usize = 192;
// So that `twox-hash` never refuses the secret: its `Result` is never an error.
const _: () = assert!(SECRET_SIZE >= SECRET_MINIMUM_LENGTH);
/// The longest input XXH3 hashes without its stripe loop (its "mid-size" inputs): L3 parts up
/// to this length are hashed in one pass here.
const MID_SIZE_MAX: usize = 240;
/// The encodings hashed by the second and third calls are made of 16-byte blocks, each built in
/// registers and written with one store, so that XXH3's reads of it are forwarded from the store
/// buffer instead of stalling (writing them field by field cost more than the hashes):
/// - a long L3 part: its normalised first 16 bytes, then the digest of the rest;
/// - VLAN ids: the digest of the L3 part, then the VLAN count and up to
///   [`INLINE_VLAN_IDS`] ids, then, for a deeper stack, the digest of the stack.
const BLOCK: usize = 16;
/// VLAN ids written into the key as they are; a deeper stack is folded into a digest.
const INLINE_VLAN_IDS: usize = 7;
/// VLAN count meaning "more than [`INLINE_VLAN_IDS`], folded into a digest".
const DEEP_VLAN_STACK: u8 = 0xff;

/// The bits of the first 16 bytes of L3 (little-endian) that differ between mirrored copies.
/// IPv4: the TTL (byte 8) and the header checksum (bytes 10 and 11).
const IPV4_BLANK: u128 = 0xffff_00ff << 64;
/// IPv4: DSCP and ECN (byte 1).
const IPV4_DSCP_ECN: u128 = 0xff << 8;
/// IPv6: the hop limit (byte 7).
const IPV6_BLANK: u128 = 0xff << 56;
/// IPv6: the traffic class (the low nibble of byte 0 and the high nibble of byte 1).
const IPV6_TRAFFIC_CLASS: u128 = 0xf00f;

// XXH3's constants (the xxHash specification).
const PRIME64_1: u64 = 0x9e37_79b1_85eb_ca87;
const PRIME64_2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const PRIME64_4: u64 = 0x85eb_ca77_c2b2_ae63;
/// Where the secret words of the mid-size rounds after the fourth start.
const MID_SIZE_START_OFFSET: usize = 3;
/// Where the secret words of the mid-size inputs' last round start.
const MID_SIZE_LAST_OFFSET: usize = 136 - 17 - 16;

/// The key of one inner packet: the two 64-bit halves of a keyed 128-bit hash of the normalised
/// packet. Two copies of one packet have equal keys; two different packets have different keys
/// but for a collision of all 128 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// Chooses the key's two table buckets (one with each half).
    pub hash: u64,
    /// Its top 50 bits, salted, are stored and compared.
    pub fingerprint: u64,
}

/// Computes [`DedupKey`]s with a per-process secret and the configured normalisation options.
#[derive(Clone)]
pub struct DedupKeyer {
    secret: [u8; SECRET_SIZE],
    /// The bits blanked in the first 16 bytes of an IPv4 header ([`IPV4_BLANK`] and, when the
    /// config says so, [`IPV4_DSCP_ECN`]).
    ipv4_blank: u128,
    /// The same for an IPv6 header.
    ipv6_blank: u128,
    ignore_vlan: bool,
}

impl fmt::Debug for DedupKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupKeyer")
            .field("secret", &"<redacted>")
            .field("ignore_dscp_ecn", &(self.ipv4_blank != IPV4_BLANK))
            .field("ignore_vlan", &self.ignore_vlan)
            .finish()
    }
}

impl DedupKeyer {
    /// A keyer with a secret drawn from the OS for this process. Every worker must use the same
    /// keyer (clones of it), or their keys will not agree.
    pub fn new(ignore_dscp_ecn: bool, ignore_vlan: bool) -> DedupKeyer {
        // RandomState holds a 128-bit SipHash key from the OS; hashing a counter with it yields
        // independent-looking words under that key.
        let random = RandomState::new();
        let mut secret = [0; SECRET_SIZE];
        for (i, word) in secret.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&random.hash_one(i).to_le_bytes());
        }
        DedupKeyer::with_secret(secret, ignore_dscp_ecn, ignore_vlan)
    }

    /// A deterministic keyer (tests, benches, reproducing a trace): the secret is expanded from
    /// `seed` with splitmix64.
    pub fn with_seed(seed: u64, ignore_dscp_ecn: bool, ignore_vlan: bool) -> DedupKeyer {
        let mut state = seed;
        let mut secret = [0; SECRET_SIZE];
        for word in secret.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        DedupKeyer::with_secret(secret, ignore_dscp_ecn, ignore_vlan)
    }

    fn with_secret(
        secret: [u8; SECRET_SIZE],
        ignore_dscp_ecn: bool,
        ignore_vlan: bool,
    ) -> DedupKeyer {
        let (ipv4_blank, ipv6_blank) = if ignore_dscp_ecn {
            (IPV4_BLANK | IPV4_DSCP_ECN, IPV6_BLANK | IPV6_TRAFFIC_CLASS)
        } else {
            (IPV4_BLANK, IPV6_BLANK)
        };
        DedupKeyer {
            secret,
            ipv4_blank,
            ipv6_blank,
            ignore_vlan,
        }
    }

    /// The key of the inner packet from L3 on (`l3_offset` into the first segment), over all
    /// segments, with the IPv4 TTL and header checksum (IPv6: hop limit) ignored, DSCP/ECN ignored
    /// when asked, and the inner VLAN ids mixed in unless the VLANs are ignored. Never panics: an
    /// `l3_offset` beyond the packet gives the key of an empty packet, and a packet too short to
    /// hold an IP header is hashed as raw bytes.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub fn key<B: PacketBuf>(&self, pkt: &B, l3_offset: usize, vlan_ids: &[u16]) -> DedupKey {
        let digest = if pkt.segments() == 1 {
            let l3 = pkt.data().get(l3_offset..).unwrap_or_default();
            self.l3_digest(l3)
        } else {
            self.chained_l3_digest(pkt, l3_offset)
        };
        let key = if self.ignore_vlan || vlan_ids.is_empty() {
            digest
        } else {
            self.with_vlans(digest, vlan_ids)
        };
        DedupKey {
            hash: key as u64,
            fingerprint: (key >> 64) as u64,
        }
    }

    /// The bits of the first 16 bytes of `l3` (little-endian) to blank: none unless it is long
    /// enough to be an IP header.
    #[inline(always)]
    fn blanked_bits(&self, l3: &[u8]) -> u128 {
        match l3.first().map(|b| b >> 4) {
            Some(4) if l3.len() >= 20 => self.ipv4_blank,
            Some(6) if l3.len() >= 40 => self.ipv6_blank,
            _ => 0,
        }
    }

    /// The digest of the normalised L3 part of a one-segment packet.
    #[inline(always)]
    fn l3_digest(&self, l3: &[u8]) -> u128 {
        let blank = self.blanked_bits(l3);
        match l3.len() {
            // Shorter than any IP header: nothing is blanked.
            0..=16 => xxh3_128_with_secret(l3, &self.secret),
            17..=128 => self.short_xxh3(l3, blank),
            129..=MID_SIZE_MAX => self.mid_size_xxh3(l3, blank),
            _ => {
                let rest = l3.get(BLOCK..).unwrap_or_default();
                let head = block_at(l3, 0) & !blank;
                self.long_digest(head, self.long_xxh3(rest))
            }
        }
    }

    /// The digest of an L3 part longer than [`MID_SIZE_MAX`] bytes: its normalised first 16
    /// bytes and the digest of the rest, hashed together.
    fn long_digest(&self, head: u128, rest_digest: u128) -> u128 {
        let mut encoding = [0u8; 2 * BLOCK];
        encoding[..BLOCK].copy_from_slice(&head.to_le_bytes());
        encoding[BLOCK..].copy_from_slice(&rest_digest.to_le_bytes());
        xxh3_128_with_secret(&encoding, &self.secret)
    }

    /// The key of a packet with VLAN ids: its L3 digest and the ids, hashed together.
    fn with_vlans(&self, digest: u128, vlan_ids: &[u16]) -> u128 {
        let mut encoding = [0u8; 3 * BLOCK];
        encoding[..BLOCK].copy_from_slice(&digest.to_le_bytes());
        let len = if vlan_ids.len() <= INLINE_VLAN_IDS {
            let block = vlan_ids
                .iter()
                .enumerate()
                .fold(vlan_ids.len() as u128, |block, (i, &id)| {
                    block | u128::from(id) << (8 + 16 * i)
                });
            encoding[BLOCK..2 * BLOCK].copy_from_slice(&block.to_le_bytes());
            2 * BLOCK
        } else {
            let mut stack = Xxh3::with_secret(self.secret);
            for id in vlan_ids {
                stack.update(&id.to_le_bytes());
            }
            encoding[BLOCK..2 * BLOCK].copy_from_slice(&u128::from(DEEP_VLAN_STACK).to_le_bytes());
            encoding[2 * BLOCK..].copy_from_slice(&stack.digest128().to_le_bytes());
            3 * BLOCK
        };
        xxh3_128_with_secret(&encoding[..len], &self.secret)
    }

    /// The chained-packet path of [`DedupKeyer::l3_digest`], equal to it on the same bytes: an
    /// L3 part of up to [`MID_SIZE_MAX`] bytes is gathered and hashed as one; a longer one has
    /// its first 16 bytes gathered and the rest streamed.
    #[cold]
    fn chained_l3_digest<B: PacketBuf>(&self, pkt: &B, l3_offset: usize) -> u128 {
        let mut gathered = [0u8; MID_SIZE_MAX];
        let (mut skip, mut l3_len) = (l3_offset, 0);
        let mut rest = Xxh3::with_secret(self.secret);
        pkt.for_each_segment(|segment| {
            let Some(segment) = segment.get(skip..) else {
                skip -= segment.len();
                return;
            };
            skip = 0;
            let at = l3_len.min(MID_SIZE_MAX);
            let (first, others) = segment.split_at(segment.len().min(MID_SIZE_MAX - at));
            gathered[at..at + first.len()].copy_from_slice(first);
            // Bytes 16 on, for the long case: those gathered past 16, then all the others.
            rest.update(first.get(BLOCK.saturating_sub(at)..).unwrap_or_default());
            rest.update(others);
            l3_len += segment.len();
        });
        if l3_len <= MID_SIZE_MAX {
            return self.l3_digest(&gathered[..l3_len]);
        }
        let head =
            block_at(&gathered, 0) & !self.blanked_bits(&gathered[..l3_len.min(MID_SIZE_MAX)]);
        self.long_digest(head, rest.digest128())
    }

    /// XXH3-128 of `input` (more than 224 bytes) under the secret, by the `twox-hash` crate,
    /// which runs XXH3's stripe loop on the widest vector unit the CPU has, chosen at run time
    /// (AVX2 or SSE2 on x86-64, NEON on Arm): `xxhash-rust` picks it at compile time, so SSE2 on
    /// the baseline target. The other calls keep `xxhash-rust`: it hashes the short encodings
    /// faster, and its streaming hasher keys short inputs with the secret given, where that of
    /// `twox-hash` 2.1.5 uses XXH3's default secret (so a chained packet's key would not be keyed).
    #[inline(always)]
    fn long_xxh3(&self, input: &[u8]) -> u128 {
        XxHash3_128::oneshot_with_secret(&self.secret, input).unwrap_or_default()
    }

    /// XXH3-128 of `l3` (17 to 128 bytes) with the bits of `blank` cleared. XXH3 reads 16-byte
    /// blocks from both ends, pairwise, innermost pair first; only a block that starts in the
    /// first 12 bytes can hold blanked bits.
    #[inline(always)]
    fn short_xxh3(&self, l3: &[u8], blank: u128) -> u128 {
        let len = l3.len();
        let mut acc = Acc::new(len);
        let front = block_at(l3, 0) & !blank;
        // The blocks read from the end start at len − 16, len − 32, …: one holds blanked bits
        // only if it starts in the first 12 bytes, as the one at len − 32 of an input under 44
        // bytes and the one at len − 16 of an input under 28 do. (`blank` has no bits in byte
        // 15, so shifting it by 15 bytes or more gives nothing to blank.)
        let back = |at: usize| block_at(l3, at) & !(blank >> (8 * at.min(BLOCK - 1)));
        if len > 32 {
            if len > 64 {
                if len > 96 {
                    acc.mix32(
                        block_at(l3, 48),
                        block_at(l3, len - 64),
                        self.secret_block32(96),
                    );
                }
                acc.mix32(
                    block_at(l3, 32),
                    block_at(l3, len - 48),
                    self.secret_block32(64),
                );
            }
            acc.mix32(block_at(l3, 16), back(len - 32), self.secret_block32(32));
            acc.mix32(front, block_at(l3, len - 16), self.secret_block32(0));
        } else {
            acc.mix32(front, back(len - 16), self.secret_block32(0));
        }
        acc.finish(len)
    }

    /// XXH3-128 of `l3` (129 to 240 bytes) with the bits of `blank` cleared (only the first
    /// block can hold any).
    #[inline(always)]
    fn mid_size_xxh3(&self, l3: &[u8], blank: u128) -> u128 {
        let len = l3.len();
        let mut acc = Acc::new(len);
        acc.mix32(
            block_at(l3, 0) & !blank,
            block_at(l3, 16),
            self.secret_block32(0),
        );
        for round in 1..4 {
            acc.mix32(
                block_at(l3, 32 * round),
                block_at(l3, 32 * round + 16),
                self.secret_block32(32 * round),
            );
        }
        acc.low = avalanche(acc.low);
        acc.high = avalanche(acc.high);
        for round in 4..len / 32 {
            acc.mix32(
                block_at(l3, 32 * round),
                block_at(l3, 32 * round + 16),
                self.secret_block32(MID_SIZE_START_OFFSET + 32 * (round - 4)),
            );
        }
        acc.mix32(
            block_at(l3, len - 16),
            block_at(l3, len - 32),
            self.secret_block32(MID_SIZE_LAST_OFFSET),
        );
        acc.finish(len)
    }

    /// The four little-endian secret words from byte `at` on.
    #[inline(always)]
    fn secret_block32(&self, at: usize) -> [u64; 4] {
        let word = |i: usize| {
            let bytes = self.secret.get(at + 8 * i..).and_then(<[u8]>::first_chunk);
            u64::from_le_bytes(bytes.copied().unwrap_or_default())
        };
        [word(0), word(1), word(2), word(3)]
    }
}

/// Bytes `at..at + 16` of `bytes` as a little-endian number (zero past the end: never read so,
/// the callers' lengths keep every block inside).
#[inline(always)]
fn block_at(bytes: &[u8], at: usize) -> u128 {
    let block = bytes.get(at..).and_then(<[u8]>::first_chunk::<BLOCK>);
    u128::from_le_bytes(block.copied().unwrap_or_default())
}

/// XXH3's 128-bit accumulator for inputs of up to 240 bytes.
struct Acc {
    low: u64,
    high: u64,
}

impl Acc {
    #[inline(always)]
    fn new(len: usize) -> Acc {
        Acc {
            low: (len as u64).wrapping_mul(PRIME64_1),
            high: 0,
        }
    }

    /// Mixes two 16-byte input blocks with 32 bytes of secret (XXH3's `mix32B`, seed 0).
    #[inline(always)]
    fn mix32(&mut self, a: u128, b: u128, secret: [u64; 4]) {
        let (a_low, a_high) = (a as u64, (a >> 64) as u64);
        let (b_low, b_high) = (b as u64, (b >> 64) as u64);
        self.low = self
            .low
            .wrapping_add(fold_multiply(a_low ^ secret[0], a_high ^ secret[1]));
        self.low ^= b_low.wrapping_add(b_high);
        self.high = self
            .high
            .wrapping_add(fold_multiply(b_low ^ secret[2], b_high ^ secret[3]));
        self.high ^= a_low.wrapping_add(a_high);
    }

    #[inline(always)]
    fn finish(self, len: usize) -> u128 {
        let low = avalanche(self.low.wrapping_add(self.high));
        let high = self
            .low
            .wrapping_mul(PRIME64_1)
            .wrapping_add(self.high.wrapping_mul(PRIME64_4))
            .wrapping_add((len as u64).wrapping_mul(PRIME64_2));
        let high = avalanche(high).wrapping_neg();
        u128::from(low) | u128::from(high) << 64
    }
}

/// The 128-bit product of `a` and `b`, its halves xor-ed.
#[inline(always)]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// XXH3's final mix of a 64-bit word.
#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9e37_79f9);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    use super::*;
    use crate::buf::VecBuf;

    const L2: usize = 14;

    fn keyer() -> DedupKeyer {
        DedupKeyer::with_seed(1, false, false)
    }

    /// An Ethernet + IPv4 + UDP frame with a valid header checksum.
    fn ipv4_frame(ttl: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
            .udp(4000, 53);
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        frame[L2 + 1] = tos;
        frame[L2 + 4..L2 + 6].copy_from_slice(&0x1234u16.to_be_bytes());
        let (header, _) = etherparse::Ipv4Header::from_slice(&frame[L2..]).unwrap();
        frame[L2 + 10..L2 + 12].copy_from_slice(&header.calc_header_checksum().to_be_bytes());
        frame
    }

    /// An Ethernet + IPv6 + UDP frame.
    fn ipv6_frame(hop_limit: u8, traffic_class: u8, payload: &[u8]) -> Vec<u8> {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets();
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(src, dst, hop_limit)
            .udp(4000, 53);
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        // Traffic class: bits 4..12 of the first word of the IPv6 header.
        frame[L2] = 0x60 | (traffic_class >> 4);
        frame[L2 + 1] = (traffic_class << 4) | (frame[L2 + 1] & 0x0f);
        frame
    }

    fn key_of(keyer: &DedupKeyer, frame: &[u8], vlans: &[u16]) -> DedupKey {
        keyer.key(&VecBuf::new(frame), L2, vlans)
    }

    #[test]
    fn ttl_and_checksum_do_not_change_the_key() {
        let k = keyer();
        let a = ipv4_frame(64, 0, b"hello");
        let b = ipv4_frame(63, 0, b"hello");
        assert_ne!(a, b);
        assert_ne!(
            a[L2 + 10..L2 + 12],
            b[L2 + 10..L2 + 12],
            "the checksums differ too"
        );
        assert_eq!(key_of(&k, &a, &[]), key_of(&k, &b, &[]));
    }

    #[test]
    fn hop_limit_does_not_change_the_key() {
        let k = keyer();
        assert_eq!(
            key_of(&k, &ipv6_frame(64, 0, b"hello"), &[]),
            key_of(&k, &ipv6_frame(1, 0, b"hello"), &[])
        );
    }

    #[test]
    fn dscp_and_ecn_count_unless_ignored() {
        let (strict, lenient) = (keyer(), DedupKeyer::with_seed(1, true, false));
        for (a, b) in [
            (ipv4_frame(64, 0, b"x"), ipv4_frame(64, 0xb8, b"x")),
            (ipv4_frame(64, 0, b"x"), ipv4_frame(64, 0x01, b"x")),
            (ipv6_frame(64, 0, b"x"), ipv6_frame(64, 0xb8, b"x")),
            (ipv6_frame(64, 0, b"x"), ipv6_frame(64, 0x03, b"x")),
        ] {
            assert_ne!(key_of(&strict, &a, &[]), key_of(&strict, &b, &[]));
            assert_eq!(key_of(&lenient, &a, &[]), key_of(&lenient, &b, &[]));
        }
        // Ignoring the traffic class must not ignore the IP version or the flow label.
        let v6 = ipv6_frame(64, 0, b"x");
        let mut flow_label = v6.clone();
        flow_label[L2 + 1] ^= 0x01;
        assert_ne!(
            key_of(&lenient, &v6, &[]),
            key_of(&lenient, &flow_label, &[])
        );
    }

    #[test]
    fn vlan_ids_count_unless_ignored() {
        let (strict, lenient) = (keyer(), DedupKeyer::with_seed(1, false, true));
        let frame = ipv4_frame(64, 0, b"payload");
        // Stacks of every depth handled inline (0 to 9 ids), deeper ones (a digest), stacks that
        // differ only in their last id, and trailing zero ids (which must not vanish).
        let stacks: [&[u16]; 13] = [
            &[],
            &[0],
            &[10],
            &[11],
            &[10, 0],
            &[10, 20],
            &[20, 10],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[1, 2, 3, 4, 5, 6, 7, 8, 10],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 11],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0],
            &[4095; 40],
        ];
        let keys: HashSet<DedupKey> = stacks.iter().map(|s| key_of(&strict, &frame, s)).collect();
        assert_eq!(keys.len(), stacks.len());
        for stack in stacks {
            assert_eq!(
                key_of(&lenient, &frame, stack),
                key_of(&lenient, &frame, &[])
            );
        }
    }

    #[test]
    fn layer_two_is_not_part_of_the_key() {
        let k = keyer();
        let a = ipv4_frame(64, 0, b"payload");
        let mut b = a.clone();
        b[..12].copy_from_slice(&[9; 12]);
        assert_eq!(key_of(&k, &a, &[]), key_of(&k, &b, &[]));
        // The same packet behind a VLAN tag (l3_offset 18) with the VLAN ignored.
        let mut tagged = a[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&a[12..]);
        let lenient = DedupKeyer::with_seed(1, false, true);
        assert_eq!(
            lenient.key(&VecBuf::new(&tagged), 18, &[100]),
            key_of(&lenient, &a, &[])
        );
    }

    #[test]
    fn any_other_byte_changes_the_key() {
        let k = keyer();
        for frame in [
            ipv4_frame(64, 0, &[0x55; 200]),
            ipv6_frame(64, 0, &[0x55; 200]),
        ] {
            let original = key_of(&k, &frame, &[]);
            let ignored: &[usize] = if frame[L2] >> 4 == 4 {
                &[8, 10, 11]
            } else {
                &[7]
            };
            for i in L2..frame.len() {
                if ignored.contains(&(i - L2)) {
                    continue;
                }
                let mut changed = frame.clone();
                changed[i] ^= 0x01;
                assert_ne!(key_of(&k, &changed, &[]), original, "byte {} of L3", i - L2);
            }
            // Adding or removing a byte at the end too.
            assert_ne!(key_of(&k, &frame[..frame.len() - 1], &[]), original);
            let mut longer = frame.clone();
            longer.push(0);
            assert_ne!(key_of(&k, &longer, &[]), original);
        }
    }

    #[test]
    fn different_secrets_give_different_keys() {
        let frame = ipv4_frame(64, 0, b"payload");
        assert_ne!(
            key_of(&keyer(), &frame, &[]),
            key_of(&DedupKeyer::with_seed(2, false, false), &frame, &[])
        );
        let (a, b) = (DedupKeyer::new(false, false), DedupKeyer::new(false, false));
        assert_ne!(key_of(&a, &frame, &[]), key_of(&b, &frame, &[]));
        assert_eq!(key_of(&a, &frame, &[]), key_of(&a.clone(), &frame, &[]));
        assert!(format!("{a:?}").contains("<redacted>"));
    }

    #[test]
    fn short_and_odd_packets_never_panic_and_stay_distinct() {
        let k = keyer();
        let mut keys = HashSet::new();
        let bytes = ipv4_frame(64, 0, b"");
        for len in 0..=bytes.len() {
            keys.insert(key_of(&k, &bytes[..len], &[]));
        }
        // Every prefix from L2 on is a different packet (the empty L3 ones are all the same).
        assert_eq!(keys.len(), bytes.len() - L2 + 1);
        // An offset past the end is the empty packet.
        assert_eq!(
            k.key(&VecBuf::new(&bytes), bytes.len() + 5, &[]),
            k.key(&VecBuf::new(&[]), 0, &[])
        );
        let chained = VecBuf::from_segments(vec![vec![1, 2], vec![3]]);
        assert_eq!(k.key(&chained, 9, &[]), k.key(&VecBuf::new(&[]), 0, &[]));
    }

    #[test]
    fn a_short_ipv4_packet_is_hashed_raw() {
        // 19 bytes of "IPv4": too short to be a header, so the TTL byte counts.
        let k = keyer();
        let mut a = vec![0x45u8; 19];
        let b = {
            let mut b = a.clone();
            b[8] = 1;
            b
        };
        assert_ne!(
            k.key(&VecBuf::new(&a), 0, &[]),
            k.key(&VecBuf::new(&b), 0, &[])
        );
        a.push(0);
        let mut c = a.clone();
        c[8] = 1;
        assert_eq!(
            k.key(&VecBuf::new(&a), 0, &[]),
            k.key(&VecBuf::new(&c), 0, &[])
        );
    }

    #[test]
    fn distinct_packets_get_distinct_keys() {
        let k = keyer();
        let mut frame = ipv4_frame(64, 0, &[0; 32]);
        let (mut hashes, mut fingerprints) = (HashSet::new(), HashSet::new());
        let count = 100_000u32;
        for i in 0..count {
            let at = frame.len() - 4;
            frame[at..].copy_from_slice(&i.to_le_bytes());
            let key = key_of(&k, &frame, &[]);
            hashes.insert(key.hash);
            fingerprints.insert(key.fingerprint);
        }
        // Each half alone is collision-free at this scale (expected collisions ~ 3e-10).
        assert_eq!(hashes.len(), count as usize);
        assert_eq!(fingerprints.len(), count as usize);
    }

    /// What the key of a packet without VLAN ids is, written plainly: the L3 part copied, the
    /// fields that differ between mirrored copies zeroed, hashed by the `xxhash-rust` crate (in
    /// one call up to 240 bytes; beyond, the first 16 bytes and the digest of the rest).
    fn reference_key(keyer: &DedupKeyer, l3: &[u8], ignore_dscp_ecn: bool) -> DedupKey {
        let mut copy = l3.to_vec();
        match copy.first().map(|b| b >> 4) {
            Some(4) if copy.len() >= 20 => {
                for i in [8, 10, 11] {
                    copy[i] = 0; // TTL, header checksum
                }
                if ignore_dscp_ecn {
                    copy[1] = 0;
                }
            }
            Some(6) if copy.len() >= 40 => {
                copy[7] = 0; // hop limit
                if ignore_dscp_ecn {
                    copy[0] &= 0xf0;
                    copy[1] &= 0x0f;
                }
            }
            _ => {}
        }
        let key = if copy.len() <= MID_SIZE_MAX {
            xxh3_128_with_secret(&copy, &keyer.secret)
        } else {
            let mut encoding = copy[..16].to_vec();
            encoding
                .extend_from_slice(&xxh3_128_with_secret(&copy[16..], &keyer.secret).to_le_bytes());
            xxh3_128_with_secret(&encoding, &keyer.secret)
        };
        DedupKey {
            hash: key as u64,
            fingerprint: (key >> 64) as u64,
        }
    }

    #[test]
    fn the_one_pass_hash_is_xxh3_of_the_normalised_packet() {
        // Every length across XXH3's branches (17, 32, 64, 96, 128, 240) and the IP header
        // lengths (20, 40), as IPv4, IPv6 and neither.
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 167 + 13) as u8).collect();
        for ignore_dscp_ecn in [false, true] {
            let k = DedupKeyer::with_seed(3, ignore_dscp_ecn, false);
            for version in [0x45, 0x60, 0x10] {
                for len in 0..=bytes.len() {
                    let mut l3 = bytes[..len].to_vec();
                    if let Some(first) = l3.first_mut() {
                        *first = version;
                    }
                    assert_eq!(
                        k.key(&VecBuf::new(&l3), 0, &[]),
                        reference_key(&k, &l3, ignore_dscp_ecn),
                        "{len} bytes, first byte {version:#x}, ignore_dscp_ecn {ignore_dscp_ecn}"
                    );
                }
            }
        }
    }

    proptest! {
        /// A chain of segments keys like the same bytes in one segment, wherever the cuts fall
        /// (inside the L2 header, inside the IP head, in the payload).
        #[test]
        fn segments_key_like_one_segment(
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            v6 in any::<bool>(),
            cuts in proptest::collection::vec(0..700usize, 0..5),
            l3_offset in prop_oneof![Just(L2), 0..40usize],
            vlans in proptest::collection::vec(any::<u16>(), 0..10),
        ) {
            let frame = if v6 { ipv6_frame(9, 0, &payload) } else { ipv4_frame(9, 0, &payload) };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (frame.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut segments = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([frame.len()]) {
                segments.push(frame[start..cut].to_vec());
                start = cut;
            }
            let k = keyer();
            let whole = VecBuf::new(&frame);
            let chained = VecBuf::from_segments(segments);
            prop_assert_eq!(k.key(&chained, l3_offset, &vlans), k.key(&whole, l3_offset, &vlans));
        }

        /// The one-pass hash equals the crate's on a normalised copy, whatever the bytes.
        #[test]
        fn the_one_pass_hash_is_xxh3_of_any_normalised_packet(
            mut l3 in proptest::collection::vec(any::<u8>(), 0..400),
            version in prop_oneof![Just(4u8), Just(6u8), any::<u8>()],
            ignore_dscp_ecn in any::<bool>(),
        ) {
            if let Some(first) = l3.first_mut() {
                *first = version << 4 | (*first & 0x0f);
            }
            let k = DedupKeyer::with_seed(4, ignore_dscp_ecn, false);
            prop_assert_eq!(k.key(&VecBuf::new(&l3), 0, &[]), reference_key(&k, &l3, ignore_dscp_ecn));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            offset in 0..120usize,
            split in 0..100usize,
        ) {
            let k = keyer();
            let one = k.key(&VecBuf::new(&bytes), offset, &[]);
            let split = split.min(bytes.len());
            let two = k.key(&VecBuf::from_segments(vec![bytes[..split].to_vec(), bytes[split..].to_vec()]), offset, &[]);
            prop_assert_eq!(one, two);
        }
    }

    #[test]
    fn ipv4_and_ipv6_test_frames_parse() {
        // The builders above produce what they claim (guards the other tests).
        let v4 = ipv4_frame(64, 0xb8, b"abc");
        let parsed = etherparse::SlicedPacket::from_ethernet(&v4).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().ttl(), 64);
        assert_eq!(
            ip.header().to_header().calc_header_checksum(),
            ip.header().header_checksum()
        );
        assert_eq!(v4[L2 + 1], 0xb8);
        assert_eq!(ip.header().source_addr(), Ipv4Addr::new(10, 0, 0, 1));
        let v6 = ipv6_frame(7, 0xb8, b"abc");
        let parsed = etherparse::SlicedPacket::from_ethernet(&v6).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = parsed.net else {
            panic!("not IPv6")
        };
        assert_eq!(ip.header().hop_limit(), 7);
        assert_eq!(ip.header().traffic_class(), 0xb8);
    }
}
