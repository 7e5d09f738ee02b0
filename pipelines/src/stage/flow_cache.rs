//! A per-worker flow cache, as Open vSwitch's exact-match cache: what the pipeline decided for a
//! recent inner flow of a session (its direction, the filter's verdict, the tool ports of its
//! balanced groups, the sender rule's verdict), so that the next packet of the flow skips the
//! filter, the hashes and the Maglev lookups.
//!
//! # Design
//! The key is everything those decisions read of a packet: the session, the tunnel's mirror
//! source and VNI (the `source` balance key of a session without `source_ips`, the VNI of a
//! default session), and the inner flow key (addresses, protocol, ports, whether it has ports
//! and is a fragment). Everything else they read is the plan's, so the cache is emptied when
//! the worker takes on a new plan ([`FlowCache::clear`], called on every plan change), and a
//! value is never used under another plan than the one it was computed with. Port liveness is
//! the plan's too: a link going down or up, or a tunnel's next hop starting or stopping to
//! answer, makes the control plane build a new plan with a new generation, so no cached route
//! outlives the liveness it was computed with.
//!
//! Two-way set associative, 1,024 entries, allocated once with the pipeline: a lookup reads
//! the two entries of one set and compares whole keys (an exact match: a hash collision costs a
//! miss, never a wrong answer). A new flow replaces one of the two, chosen by a hash bit.
//!
//! The values are whatever the pipeline stores ([`FlowCache`] is generic over them); it holds
//! them equal to a fresh computation (a test replays traffic with the cache on and off, and the
//! `burst_split` fuzz target compares the two).
//!
//! A miss costs the lookup and the store on top of the decisions (about as much as a hit
//! saves), so the cache is adaptive ([`FlowCacheMode::Adaptive`], the pipeline's default): it
//! counts the hits of each probe of [`PROBE`] lookups, and after a probe with fewer than half,
//! stands aside for 15 probes' worth of packets (their decisions computed, the cache untouched),
//! then probes again. Traffic without flow locality then pays a counter per packet and a probe
//! one time in 16.
//!
//! # Limitations
//! Traffic with more active flows than entries, or whose flows each send one packet within the
//! cache's reuse distance, gains nothing (the pipeline bench's main workload is such traffic:
//! BENCHMARKS.md has both figures). Traffic whose hit rate sits near one half pays misses in
//! the probes and gains little outside them.

use std::net::IpAddr;

use crate::flow::FlowKey;

/// Entries of a cache (a power of two).
pub const ENTRIES: usize = 1024;
const WAYS: usize = 2;
const SETS: usize = ENTRIES / WAYS;

/// What a cached decision depends on, packed into eight words: the inner source and
/// destination and the mirror source (two words each, IPv4 in the low bits), the VNI and the
/// ports, then the session, the protocol and the flags (families of the three addresses,
/// whether tunnelled, has ports, is a fragment). Two keys compare with XORs folded together: no
/// branch per field, and few enough instructions for the compiler to do it in vector registers.
#[derive(Clone, Copy, Debug)]
pub struct FlowCacheKey {
    words: [u64; 8],
}

impl PartialEq for FlowCacheKey {
    #[inline]
    fn eq(&self, other: &FlowCacheKey) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .fold(0, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

impl Eq for FlowCacheKey {}

fn bits(address: IpAddr) -> (u128, bool) {
    match address {
        IpAddr::V4(a) => (u128::from(a.to_bits()), false),
        IpAddr::V6(a) => (a.to_bits(), true),
    }
}

impl FlowCacheKey {
    /// The key of a packet of `flow` in session `session`, tunnelled from `mirror` with `vni`
    /// (`None`: untunnelled).
    #[inline]
    pub fn new(session: u16, tunnel: Option<(IpAddr, u32)>, flow: &FlowKey) -> FlowCacheKey {
        let (src, src_v6) = bits(flow.src);
        let (dst, dst_v6) = bits(flow.dst);
        let (mirror, mirror_v6, vni) = match tunnel {
            Some((mirror, vni)) => {
                let (m, v6) = bits(mirror);
                (m, v6, vni)
            }
            None => (0, false, 0),
        };
        let flags = u8::from(src_v6)
            | u8::from(dst_v6) << 1
            | u8::from(mirror_v6) << 2
            | u8::from(tunnel.is_some()) << 3
            | u8::from(flow.has_ports) << 4
            | u8::from(flow.fragment) << 5;
        FlowCacheKey {
            words: [
                src as u64,
                (src >> 64) as u64,
                dst as u64,
                (dst >> 64) as u64,
                mirror as u64,
                (mirror >> 64) as u64,
                u64::from(vni) << 32 | u64::from(flow.src_port) << 16 | u64::from(flow.dst_port),
                u64::from(session) << 16 | u64::from(flow.protocol) << 8 | u64::from(flags),
            ],
        }
    }

    /// A hash of every field (not symmetric: the two directions of a flow are two keys).
    #[inline]
    fn hash(&self) -> u64 {
        let [
            src_low,
            src_high,
            dst_low,
            dst_high,
            mirror_low,
            mirror_high,
            ports,
            rest,
        ] = self.words;
        let mixed = (src_low ^ src_high)
            ^ (dst_low ^ dst_high).rotate_left(21)
            ^ (mirror_low ^ mirror_high).rotate_left(42)
            ^ ports
            ^ rest.rotate_left(48);
        // One folded 64 × 64 → 128-bit multiply: every input bit reaches the high bits.
        let product = u128::from(mixed) * 0x9e37_79b9_7f4a_7c15;
        (product as u64) ^ (product >> 64) as u64
    }
}

/// Whether a pipeline consults its flow cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowCacheMode {
    /// Never: every packet's decisions are computed.
    Off,
    /// While it pays: stood aside when fewer than half the lookups of a probe hit (the default).
    Adaptive,
    /// For every packet with an inner flow, whatever the hit rate (tests and benches).
    Always,
}

/// Lookups in a probe: the hit rate is judged over this many.
pub const PROBE: u32 = 4096;
/// Packets the cache stands aside for after a probe where it did not pay: probes then cost
/// 1/16 of the time.
const STAND_ASIDE: u32 = 15 * PROBE;

/// The cache of one worker (see the module docs).
#[derive(Debug)]
pub struct FlowCache<V> {
    slots: Box<[Option<(FlowCacheKey, V)>]>,
    adaptive: bool,
    /// Lookups and hits of the current probe.
    lookups: u32,
    hits: u32,
    /// Packets left to pass by without a lookup.
    aside: u32,
}

impl<V: Copy> FlowCache<V> {
    /// An empty cache (its one allocation), adaptive or not (see [`FlowCacheMode`]).
    pub fn new(adaptive: bool) -> FlowCache<V> {
        FlowCache {
            slots: vec![None; ENTRIES].into_boxed_slice(),
            adaptive,
            lookups: 0,
            hits: 0,
            aside: 0,
        }
    }

    /// Forgets every entry: the plan changed. Off the hot path (once per plan).
    pub fn clear(&mut self) {
        self.slots.fill(None);
    }

    /// Whether this packet goes through the cache (else its decisions are computed and the cache
    /// left alone): `false` while the cache stands aside, after a probe where it did not pay.
    #[inline]
    pub fn in_use(&mut self) -> bool {
        if self.aside == 0 {
            return true;
        }
        self.aside -= 1;
        false
    }

    /// Sets `value` to the value stored for `key`; or, when there is none, has `compute` set it
    /// and stores it over one of the key's set's two entries (an empty one first, else the one
    /// a bit of the hash picks). In place, as the pipeline's values are large.
    #[inline]
    pub fn fill(&mut self, key: &FlowCacheKey, value: &mut V, compute: impl FnOnce(&mut V)) {
        let hash = key.hash();
        let set = set_of(hash);
        let hit = match self.find(set, key) {
            Some(stored) => {
                *value = *stored;
                true
            }
            None => {
                compute(value);
                let ways = &mut self.slots[set..set + WAYS];
                let way = match ways.iter().position(Option::is_none) {
                    Some(way) => way,
                    None => (hash >> 32) as usize % WAYS,
                };
                ways[way] = Some((*key, *value));
                false
            }
        };
        if self.adaptive {
            self.lookups += 1;
            self.hits += u32::from(hit);
            if self.lookups == PROBE {
                if self.hits < PROBE / 2 {
                    self.aside = STAND_ASIDE;
                }
                self.lookups = 0;
                self.hits = 0;
            }
        }
    }

    /// The value stored for `key` in the set starting at `set`.
    #[inline]
    fn find(&self, set: usize, key: &FlowCacheKey) -> Option<&V> {
        self.slots[set..set + WAYS]
            .iter()
            .flatten()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value stored for `key`, if it is still there (tests).
    #[cfg(test)]
    fn get(&self, key: &FlowCacheKey) -> Option<&V> {
        self.find(set_of(key.hash()), key)
    }
}

/// The first slot of the set of a key of `hash`.
#[inline]
fn set_of(hash: u64) -> usize {
    // The high bits (the multiply's best mixed), times the set count, over 2^64.
    ((u128::from(hash) * SETS as u128) >> 64) as usize * WAYS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, dst: &str, sport: u16, dport: u16) -> FlowKey {
        FlowKey::with_ports(src.parse().unwrap(), dst.parse().unwrap(), 6, sport, dport)
    }

    #[test]
    fn a_stored_key_is_found_and_others_are_not() {
        let mut cache = FlowCache::<u32>::new(false);
        let mirror = Some(("172.31.10.5".parse().unwrap(), 1000));
        let a = FlowCacheKey::new(3, mirror, &flow("10.0.0.1", "10.0.0.2", 40000, 443));
        assert_eq!(cache.get(&a), None);
        let mut value = 0;
        cache.fill(&a, &mut value, |v| *v = 7);
        assert_eq!(value, 7);
        cache.fill(&a, &mut value, |v| *v = 8);
        assert_eq!(value, 7, "found, not computed");
        assert_eq!(cache.get(&a), Some(&7));
        // The same flow seen the other way, in another session, from another mirror source or
        // VNI, untunnelled, or without ports: other keys.
        let others = [
            FlowCacheKey::new(3, mirror, &flow("10.0.0.2", "10.0.0.1", 443, 40000)),
            FlowCacheKey::new(4, mirror, &flow("10.0.0.1", "10.0.0.2", 40000, 443)),
            FlowCacheKey::new(
                3,
                Some(("172.31.10.6".parse().unwrap(), 1000)),
                &flow("10.0.0.1", "10.0.0.2", 40000, 443),
            ),
            FlowCacheKey::new(
                3,
                Some(("172.31.10.5".parse().unwrap(), 1001)),
                &flow("10.0.0.1", "10.0.0.2", 40000, 443),
            ),
            FlowCacheKey::new(3, None, &flow("10.0.0.1", "10.0.0.2", 40000, 443)),
            FlowCacheKey::new(
                3,
                mirror,
                &FlowKey::without_ports(
                    "10.0.0.1".parse().unwrap(),
                    "10.0.0.2".parse().unwrap(),
                    6,
                ),
            ),
            // An IPv4 address and the IPv6 address with the same low bits.
            FlowCacheKey::new(3, mirror, &flow("::a00:1", "10.0.0.2", 40000, 443)),
        ];
        for other in others {
            assert_ne!(other, a);
            assert_eq!(cache.get(&other), None, "{other:?}");
        }
        cache.clear();
        assert_eq!(cache.get(&a), None, "cleared");
    }

    #[test]
    fn keys_spread_over_the_sets_and_recent_ones_stay() {
        let mut cache = FlowCache::<u16>::new(false);
        let keys: Vec<FlowCacheKey> = (0..400u16)
            .map(|i| FlowCacheKey::new(0, None, &flow("10.0.0.1", "10.0.0.2", 30000 + i, 80)))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            cache.fill(key, &mut 0, |v| *v = i as u16);
        }
        // 400 keys in 512 sets of two: only a set's third key evicts, which a good spread
        // makes rare.
        let kept = keys
            .iter()
            .enumerate()
            .filter(|(i, k)| cache.get(k) == Some(&(*i as u16)))
            .count();
        assert!(kept >= 390, "{kept} of 400 kept");
    }

    #[test]
    fn an_adaptive_cache_stands_aside_while_it_does_not_pay_and_comes_back() {
        let mut cache = FlowCache::<u32>::new(true);
        let key = |i: u32| {
            FlowCacheKey::new(
                0,
                None,
                &flow("10.0.0.1", "10.0.0.2", i as u16, (i >> 16) as u16),
            )
        };
        // A probe of lookups that all hit (one flow): the cache stays in use.
        for _ in 0..2 * PROBE {
            assert!(cache.in_use());
            cache.fill(&key(1), &mut 0, |v| *v = 1);
        }
        // A probe with just under half hits: it stands aside for STAND_ASIDE packets.
        for i in 0..PROBE {
            assert!(cache.in_use());
            // Key 1 every other lookup but the first: PROBE / 2 - 1 hits.
            let k = if i % 2 == 0 && i > 0 {
                key(1)
            } else {
                key(100 + i)
            };
            cache.fill(&k, &mut 0, |v| *v = 0);
        }
        for _ in 0..STAND_ASIDE {
            assert!(!cache.in_use());
        }
        // Then a new probe, with hits again: in use for good.
        for _ in 0..3 * PROBE {
            assert!(cache.in_use());
            cache.fill(&key(1), &mut 0, |v| *v = 1);
        }
        // A cache that is not adaptive never stands aside.
        let mut always = FlowCache::<u32>::new(false);
        for i in 0..2 * PROBE {
            assert!(always.in_use());
            always.fill(&key(1000 + i), &mut 0, |v| *v = 0);
        }
    }
}
