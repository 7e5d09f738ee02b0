//! The de-duplication key of an inner packet: equal for the two mirrored copies of one packet.
//!
//! # Design
//! The key covers the inner packet from L3 on, over all segments, normalised so that the copies
//! delivered by the two mirrored ends of a connection agree: the IPv4 TTL and header checksum (a
//! router between the two ENIs decrements one and so changes the other) and the IPv6 hop limit
//! are blanked; the DSCP/ECN bits (IPv4 TOS, IPv6 traffic class) too when the config says so.
//! The inner VLAN ids are part of the key unless the config says to ignore them.
//!
//! All the fields blanked lie in the first 12 bytes of the IP header, so the packet is never
//! copied: those 12 bytes are copied to the stack and normalised, the rest is hashed where it
//! lies (XXH3-128, one call for a one-segment packet, streamed over a chain), and a second,
//! short XXH3-128 call binds the normalised head, its length, the VLAN ids and the digest of the
//! rest into the key (see [`BLOCK`] for its layout). `hash` and `fingerprint` are the two 64-bit halves of that 128-bit result:
//! the table picks the key's buckets with one and stores 50 bits of the other, so two different
//! packets whose entries meet in a bucket are confused with probability 2^-50 (the table's
//! module docs state what that gives per second).
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

use std::fmt;
use std::hash::{BuildHasher, RandomState};

use xxhash_rust::xxh3::{Xxh3, xxh3_128_with_secret};

use crate::buf::PacketBuf;

/// Size of an XXH3 secret (the crate's default size).
const SECRET_SIZE: usize = 192;
/// The IP header bytes that may be normalised: every blanked field lies in the first 12.
const HEAD: usize = 12;
/// The encoding hashed into the key is made of 16-byte blocks, each built in registers and
/// written with one store, so that XXH3's 16-byte reads of it are forwarded from the store
/// buffer instead of stalling (writing it field by field cost more than both hashes):
/// - block 0: the normalised head (12 bytes), its length, the VLAN count, the first VLAN id;
/// - block 1: the digest of the rest of the packet;
/// - block 2, with two VLAN ids or more: ids 2 to 9, or the digest of a deeper stack.
const BLOCK: usize = 16;
/// VLAN ids written into the key as they are; a deeper stack is folded into a digest.
const INLINE_VLAN_IDS: usize = 1 + BLOCK / 2;
/// VLAN count meaning "more than [`INLINE_VLAN_IDS`], folded into a digest".
const DEEP_VLAN_STACK: u8 = 0xff;

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
    ignore_dscp_ecn: bool,
    ignore_vlan: bool,
}

impl fmt::Debug for DedupKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupKeyer")
            .field("secret", &"<redacted>")
            .field("ignore_dscp_ecn", &self.ignore_dscp_ecn)
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
        DedupKeyer {
            secret,
            ignore_dscp_ecn,
            ignore_vlan,
        }
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
        DedupKeyer {
            secret,
            ignore_dscp_ecn,
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
        let mut head = [0u8; HEAD];
        let (head_len, l3_len, rest_digest) = if pkt.segments() == 1 {
            let l3 = pkt.data().get(l3_offset..).unwrap_or_default();
            let (first, rest) = l3.split_at(l3.len().min(HEAD));
            match first.first_chunk::<HEAD>() {
                Some(whole) => head = *whole,
                None => head[..first.len()].copy_from_slice(first),
            }
            let digest = xxh3_128_with_secret(rest, &self.secret);
            (first.len(), l3.len(), digest)
        } else {
            self.walk_segments(pkt, l3_offset, &mut head)
        };
        let (low, high) = self.normalised_head(head, l3_len);
        let vlan_ids = if self.ignore_vlan { &[][..] } else { vlan_ids };
        let (vlan_count, first_vlan, more_vlans) = self.vlan_blocks(vlan_ids);

        let head_block = u128::from(low)
            | u128::from(high) << 64
            | (head_len as u128) << 96
            | u128::from(vlan_count) << 104
            | u128::from(first_vlan) << 112;
        let mut encoding = [0u8; 3 * BLOCK];
        encoding[..BLOCK].copy_from_slice(&head_block.to_le_bytes());
        encoding[BLOCK..2 * BLOCK].copy_from_slice(&rest_digest.to_le_bytes());
        let len = match more_vlans {
            Some(block) => {
                encoding[2 * BLOCK..].copy_from_slice(&block.to_le_bytes());
                3 * BLOCK
            }
            None => 2 * BLOCK,
        };
        let key = xxh3_128_with_secret(&encoding[..len], &self.secret);
        DedupKey {
            hash: key as u64,
            fingerprint: (key >> 64) as u64,
        }
    }

    /// The VLAN part of the encoding: (count, first id, block of the next ids or of the digest
    /// of a stack deeper than [`INLINE_VLAN_IDS`]).
    #[inline(always)]
    fn vlan_blocks(&self, vlan_ids: &[u16]) -> (u8, u16, Option<u128>) {
        match vlan_ids {
            [] => (0, 0, None),
            &[only] => (1, only, None),
            &[first, ref next @ ..] if vlan_ids.len() <= INLINE_VLAN_IDS => {
                let block = next
                    .iter()
                    .enumerate()
                    .fold(0u128, |block, (i, &id)| block | u128::from(id) << (16 * i));
                (vlan_ids.len() as u8, first, Some(block))
            }
            _ => (DEEP_VLAN_STACK, 0, Some(self.vlan_stack_digest(vlan_ids))),
        }
    }

    #[cold]
    fn vlan_stack_digest(&self, vlan_ids: &[u16]) -> u128 {
        let mut stack = Xxh3::with_secret(self.secret);
        for id in vlan_ids {
            stack.update(&id.to_le_bytes());
        }
        stack.digest128()
    }

    /// The chained-packet path of [`DedupKeyer::key`]: copies the first [`HEAD`] bytes of L3
    /// into `head`, streams the rest; returns (head length, L3 length, digest of the rest).
    #[cold]
    fn walk_segments<B: PacketBuf>(
        &self,
        pkt: &B,
        l3_offset: usize,
        head: &mut [u8; HEAD],
    ) -> (usize, usize, u128) {
        let mut rest = Xxh3::with_secret(self.secret);
        let (mut skip, mut head_len, mut l3_len) = (l3_offset, 0, 0);
        pkt.for_each_segment(|segment| {
            let Some(segment) = segment.get(skip..) else {
                skip -= segment.len();
                return;
            };
            skip = 0;
            l3_len += segment.len();
            let (first, others) = segment.split_at(segment.len().min(HEAD - head_len));
            head[head_len..head_len + first.len()].copy_from_slice(first);
            head_len += first.len();
            rest.update(others);
        });
        (head_len, l3_len, rest.digest128())
    }

    /// The head as two little-endian words (bytes 0–7, bytes 8–11), with the fields that differ
    /// between mirrored copies of one packet blanked when the L3 part is long enough to be an IP
    /// header.
    #[inline(always)]
    fn normalised_head(&self, head: [u8; HEAD], l3_len: usize) -> (u64, u32) {
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11] = head;
        let mut low = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        let mut high = u32::from_le_bytes([b8, b9, b10, b11]);
        // Byte `i` of the head is bits `8i..8i+8` of `low` (i < 8) or of `high` (i − 8).
        match b0 >> 4 {
            4 if l3_len >= 20 => {
                high &= 0x0000_ff00; // TTL (byte 8) and header checksum (10, 11) blanked
                if self.ignore_dscp_ecn {
                    low &= !0xff00; // DSCP and ECN (byte 1)
                }
            }
            6 if l3_len >= 40 => {
                low &= !(0xff << 56); // hop limit (byte 7)
                if self.ignore_dscp_ecn {
                    // Traffic class: the low nibble of byte 0 and the high nibble of byte 1.
                    low &= !0xf00f;
                }
            }
            _ => {}
        }
        (low, high)
    }
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
