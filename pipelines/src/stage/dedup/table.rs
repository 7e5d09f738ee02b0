//! The de-duplication table shared by all workers: fixed size, lock-free, linearizable per key.
//!
//! # Design
//! The table is an array of buckets, one 64-byte cache line each, holding four 16-byte entries
//! `(fingerprint, stamp_ns)`. A key may sit in any of the eight entries of two buckets, one
//! chosen from its `hash`, the other from its `fingerprint` (its *candidates*, always in that
//! order); the fingerprint is compared in full. Both are first mixed with the tool group, so each
//! group has its own view of the table (the same packet for two groups is two independent
//! entries). A fingerprint of 0 marks an empty entry. An entry is *live* while
//! `now − stamp < window`.
//!
//! Two buckets rather than one: in the steady state of a table at load ρ (entries expiring as
//! fast as new ones come), a key whose candidates are all live must evict one, which happens
//! about ρ⁴ of the time with one 4-entry bucket and ρ⁸ with two. The bench measured, with one
//! bucket, 11 % of inserts evicting a live entry at half load (38 % when aiming at 90 %, which it
//! could not reach: 76 %); with two, 0.9 % at half load (28 % at 90 %, reaching 85 %). The price
//! is a second cache line per check, whose miss overlaps the first, and which
//! [`DedupTable::bucket_of`] and [`DedupTable::second_bucket_of`] let a stage prefetch across a
//! whole burst.
//!
//! Every entry is one `portable_atomic::AtomicU128`: on x86_64 a `lock cmpxchg16b` for the
//! compare-and-swap and, on CPUs with AVX (detected at run time), a plain `vmovdqa` for the load,
//! which does not take the cache line exclusive, so a bucket that only sees duplicates stays
//! shared between the cores. [`DedupTable::is_lock_free`] reports whether the CPU has
//! `cmpxchg16b` (every x86_64 since 2008 does); without it portable-atomic falls back to a lock.
//!
//! `check(key)`:
//! 1. read the eight candidates (eight atomic loads: a *view*, not a snapshot);
//! 2. a live entry with the fingerprint → `Duplicate` (nothing is written);
//! 3. otherwise the victim is the candidate of the view with the smallest stamp, the first in
//!    candidate order on a tie (empty and expired entries are naturally the oldest), and it is
//!    replaced by `(fingerprint, max(now, victim.stamp, 1))` with a CAS whose expected value is
//!    the one read (stamp 0 is reserved for empty entries, so an entry written at time 0 does not
//!    tie with them);
//! 4. on CAS failure, start again from 1 (at most [`MAX_ATTEMPTS`] times; then report `New`
//!    without recording: a contended table passes a packet, never drops one).
//!
//! ## Why two checks of one key cannot both win
//! Every write to an entry is a successful CAS that stores `max(now, stamp read, 1)`, so along the
//! modification order of each entry the stamps never decrease. Suppose two concurrent checks C1
//! and C2 of a key K (same group, so the same candidates in the same order) both succeed, C1 by a
//! CAS on candidate `a` after reading view V1, C2 on candidate `b` after reading view V2, and
//! neither saw K live (else it returned `Duplicate`).
//! - `a = b`: the CASes are ordered, say C1's first. C2's CAS succeeded, so the value it read
//!   (V2\[a\]) was the value just before its write, hence C1's write `(K, …)` or a later one. Had it
//!   been C1's write, C2 would have seen K; so another check overwrote K in between: an eviction,
//!   which that check reported as `NewEvictedLive`, or K had expired.
//! - `a ≠ b`: if C2 read entry `a` after C1's write, C2 saw K (or an entry that replaced it, as
//!   above); so V2\[a\] precedes C1's write and `stamp(V2[a]) ≤ stamp(V1[a])`. Likewise
//!   `stamp(V1[b]) ≤ stamp(V2[b])`. C1 chose `a`: `(stamp(V1[a]), a) < (stamp(V1[b]), b)`; C2 chose
//!   `b`: `(stamp(V2[b]), b) < (stamp(V2[a]), a)`. Chaining, `(stamp(V1[a]), a) < (stamp(V1[b]), b)
//!   ≤ (stamp(V2[b]), b) < (stamp(V2[a]), a) ≤ (stamp(V1[a]), a)`: a contradiction.
//!
//! So a second `New` for K within the window happens only after K's entry was evicted (counted as
//! `NewEvictedLive` by whoever evicted it) or when [`MAX_ATTEMPTS`] CASes in a row lost a race.
//! Without the `max()`, a stamp could go down (a worker whose clock read is older replacing a newer
//! entry), two views could then order the entries differently, and both checks could win; with a
//! victim rule that is not a function of the view alone (say, each worker preferring its own free
//! entry), they would pick different entries and both win (the stress test catches this). The
//! argument uses only the modification order of each entry (coherence), so `Relaxed` ordering is
//! enough: no other memory is published through the table.
//!
//! # Limitations
//! - A key has eight candidate entries: when all eight hold live keys, recording it evicts the
//!   oldest (reported, so the caller counts it), and a later duplicate of the evicted packet gets
//!   through. Size the table at twice the packets per window (half load: under 1 % of inserts
//!   evict; the bench prints the rate for its loads).
//! - The stamps come from the callers' clock (a monotonic ns counter shared by the workers);
//!   a worker whose reading is late by `d` sees entries up to `d` younger than they are.
//! - On an x86_64 CPU without AVX, portable-atomic loads an entry with `lock cmpxchg16b`, which
//!   takes the cache line exclusive: duplicates checked on several cores then contend for it.
//!   Building with `-C target-feature=+cmpxchg16b,+avx` (or a `target-cpu` that has them) also
//!   inlines the atomics instead of dispatching through a function pointer.
//! - A check reads two cache lines that are, in a large table, two cache misses (overlapped),
//!   and with 4 KiB pages two TLB misses: the cost of a check is the memory latency, not the
//!   arithmetic. The table lives on the Rust heap (this crate has no `unsafe` to ask for huge
//!   pages).

use std::fmt;
use std::time::Duration;

use portable_atomic::AtomicU128;
use std::sync::atomic::Ordering::Relaxed;

use super::key::DedupKey;

/// Entries per bucket: four 16-byte entries fill one 64-byte cache line.
const WAYS: usize = 4;
/// Entries a key may occupy: the entries of its two buckets.
const CANDIDATES: usize = 2 * WAYS;
/// CAS attempts before a check gives up and passes the packet unrecorded. A failed CAS means
/// another check writing to the same entries made progress, so running out needs that many
/// lost races in a row on one key's candidates.
pub const MAX_ATTEMPTS: usize = 16;
/// Spreads group numbers over the hash space (the 64-bit golden ratio; odd, so the group salts
/// are distinct).
const GROUP_HASH_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
/// A second odd constant for the fingerprint salt, unrelated to the first.
const GROUP_FINGERPRINT_SALT: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// Whether a packet is new for a tool group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    /// First sighting within the window for this group: deliver it.
    New,
    /// New, but a live entry of another packet had to be evicted to record it (counted by the
    /// caller: the table is too small for the traffic).
    NewEvictedLive,
    /// Seen within the window by this group: drop it.
    Duplicate,
}

/// One bucket: one cache line. Public so that a stage can prefetch it ([`DedupTable::bucket_of`]);
/// its entries are the table's own.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct Bucket {
    entries: [AtomicU128; WAYS],
}

/// An entry's value: the fingerprint in the high half, the stamp in the low half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    fingerprint: u64,
    stamp_ns: u64,
}

impl Entry {
    fn load(slot: &AtomicU128) -> Entry {
        let bits = slot.load(Relaxed);
        Entry {
            fingerprint: (bits >> 64) as u64,
            stamp_ns: bits as u64,
        }
    }

    fn bits(self) -> u128 {
        (u128::from(self.fingerprint) << 64) | u128::from(self.stamp_ns)
    }

    fn is_live(self, now_ns: u64, window_ns: u64) -> bool {
        self.fingerprint != 0 && now_ns.saturating_sub(self.stamp_ns) < window_ns
    }
}

/// The stamp of an entry written at `now_ns` over `victim`: never below the victim's (stamps of
/// an entry never decrease, see the module docs), and never 0, which only empty entries have (an
/// entry written at time 0 must not tie with the empty ones and be evicted first).
#[inline]
fn stamp(now_ns: u64, victim: Entry) -> u64 {
    now_ns.max(victim.stamp_ns).max(1)
}

/// What a read of the candidates decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    Duplicate,
    /// Replace candidate `index`, whose value was read as `current`.
    Replace {
        index: usize,
        current: Entry,
    },
}

/// The entries a key may occupy, in the order the victim rule breaks ties.
type Candidates<'t> = [&'t AtomicU128; CANDIDATES];

/// The table all workers share through an `Arc`. See the module docs.
pub struct DedupTable {
    /// At least two, so that a key's two buckets can always differ.
    buckets: Box<[Bucket]>,
    window_ns: u64,
}

impl fmt::Debug for DedupTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupTable")
            .field("entries", &self.capacity())
            .field("window_ns", &self.window_ns)
            .finish()
    }
}

impl DedupTable {
    /// A table of at least `capacity` entries (rounded up to whole 4-entry buckets, at least two)
    /// remembering packets for `window`. All its memory is allocated here; it never grows.
    pub fn new(capacity: u32, window: Duration) -> DedupTable {
        let buckets = (capacity as usize).div_ceil(WAYS).max(2);
        DedupTable {
            buckets: (0..buckets).map(|_| Bucket::default()).collect(),
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Entries in the table (the capacity asked for, rounded up to whole buckets).
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Bytes of table memory.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// Whether this CPU updates entries without a lock (x86_64: it has `cmpxchg16b`).
    pub fn is_lock_free() -> bool {
        AtomicU128::is_lock_free()
    }

    /// Records that `group` receives the packet with `key` at `now_ns` (a monotonic ns clock
    /// shared by all workers). `New`: first sighting within the window for this group.
    /// `Duplicate`: seen within the window.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub fn check(&self, key: DedupKey, group: u16, now_ns: u64) -> Seen {
        let (candidates, fingerprint) = self.locate(key, group);
        for _ in 0..MAX_ATTEMPTS {
            let (index, current) = match self.scan(&candidates, fingerprint, now_ns) {
                Scan::Duplicate => return Seen::Duplicate,
                Scan::Replace { index, current } => (index, current),
            };
            let new = Entry {
                fingerprint,
                stamp_ns: stamp(now_ns, current),
            };
            let won = candidates[index]
                .compare_exchange(current.bits(), new.bits(), Relaxed, Relaxed)
                .is_ok();
            if won {
                return if current.is_live(now_ns, self.window_ns) {
                    Seen::NewEvictedLive
                } else {
                    Seen::New
                };
            }
        }
        Seen::New
    }

    /// The first bucket a [`DedupTable::check`] of `key` for `group` reads, for a stage to
    /// prefetch (`PacketBuf::prefetch`) for every key of a burst before checking them, so that
    /// the burst's cache misses overlap instead of being paid one after the other.
    #[inline]
    pub fn bucket_of(&self, key: DedupKey, group: u16) -> &Bucket {
        let (first, _, _) = self.buckets_of(key, group);
        first
    }

    /// The second bucket a check of `key` for `group` reads (see [`DedupTable::bucket_of`]).
    #[inline]
    pub fn second_bucket_of(&self, key: DedupKey, group: u16) -> &Bucket {
        let (_, second, _) = self.buckets_of(key, group);
        second
    }

    /// Live entries at `now_ns`. Reads the whole table: control plane only.
    pub fn occupancy(&self, now_ns: u64) -> usize {
        self.buckets
            .iter()
            .flat_map(|bucket| &bucket.entries)
            .filter(|slot| Entry::load(slot).is_live(now_ns, self.window_ns))
            .count()
    }

    /// Live entries at `now_ns`, estimated from at most `max_buckets` buckets spread evenly over
    /// the table (exact when the table has no more). Keys hash uniformly over the buckets, so a
    /// sample of a few thousand buckets is within a few percent of the whole, at a cost (and a
    /// cache footprint) that does not grow with the table. Control plane only.
    pub fn occupancy_estimate(&self, now_ns: u64, max_buckets: usize) -> usize {
        let count = self.buckets.len();
        if max_buckets >= count {
            return self.occupancy(now_ns);
        }
        let sample = max_buckets.max(1);
        let live = (0..sample)
            // Evenly spaced: bucket i·count/sample, distinct since sample < count.
            .filter_map(|i| {
                self.buckets
                    .get(((i as u128 * count as u128) / sample as u128) as usize)
            })
            .flat_map(|bucket| &bucket.entries)
            .filter(|slot| Entry::load(slot).is_live(now_ns, self.window_ns))
            .count();
        ((live as u128 * count as u128) / sample as u128) as usize
    }

    /// The candidates and the stored fingerprint of `key` for `group`.
    #[inline]
    fn locate(&self, key: DedupKey, group: u16) -> (Candidates<'_>, u64) {
        let (first, second, fingerprint) = self.buckets_of(key, group);
        let candidates = std::array::from_fn(|i| match i.checked_sub(WAYS) {
            None => &first.entries[i],
            Some(j) => &second.entries[j],
        });
        (candidates, fingerprint)
    }

    /// The two buckets of `key` for `group`, in candidate order, and its stored fingerprint.
    #[inline]
    fn buckets_of(&self, key: DedupKey, group: u16) -> (&Bucket, &Bucket, u64) {
        let group = u64::from(group) + 1;
        let hash = key.hash ^ group.wrapping_mul(GROUP_HASH_SALT);
        let fingerprint = match key.fingerprint ^ group.wrapping_mul(GROUP_FINGERPRINT_SALT) {
            0 => 1, // 0 marks an empty entry
            f => f,
        };
        let count = self.buckets.len();
        let first = bucket_index(hash, count);
        let second = match bucket_index(fingerprint, count) {
            same if same == first => (first + 1) % count, // `new` makes at least two buckets
            other => other,
        };
        (&self.buckets[first], &self.buckets[second], fingerprint)
    }

    /// Reads the candidates once: a live entry with `fingerprint`, or the victim (smallest
    /// stamp, first in candidate order on a tie) with the value read.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    fn scan(&self, candidates: &Candidates<'_>, fingerprint: u64, now_ns: u64) -> Scan {
        let view = candidates.map(Entry::load);
        if view
            .iter()
            .any(|e| e.fingerprint == fingerprint && e.is_live(now_ns, self.window_ns))
        {
            return Scan::Duplicate;
        }
        let mut index = 0;
        for (i, entry) in view.iter().enumerate().skip(1) {
            if entry.stamp_ns < view[index].stamp_ns {
                index = i;
            }
        }
        Scan::Replace {
            index,
            current: view[index],
        }
    }
}

/// A bucket index in `0..count` from a 64-bit hash (multiply-shift: uses the high bits).
#[inline(always)]
fn bucket_index(hash: u64, count: usize) -> usize {
    ((u128::from(hash) * count as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// splitmix64, for test keys.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn key(i: u64) -> DedupKey {
        DedupKey {
            hash: mix(i),
            fingerprint: mix(i ^ 0x5555_5555_5555_5555),
        }
    }

    fn table(capacity: u32) -> DedupTable {
        DedupTable::new(capacity, Duration::from_secs(1))
    }

    #[test]
    fn layout_and_memory() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
        let t = table(1001);
        assert_eq!(t.capacity(), 1004);
        assert_eq!(t.memory_bytes(), 251 * 64);
        assert_eq!(table(0).capacity(), 2 * WAYS);
        fn shared<T: Send + Sync>() {}
        shared::<DedupTable>();
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn entries_are_lock_free_on_this_machine() {
        // portable-atomic detects cmpxchg16b at run time; without it the table would take a lock.
        assert!(DedupTable::is_lock_free());
    }

    #[test]
    fn duplicate_within_the_window_new_after_it() {
        let t = table(1024);
        let k = key(1);
        assert_eq!(t.check(k, 0, 10 * SECOND), Seen::New);
        assert_eq!(t.check(k, 0, 10 * SECOND), Seen::Duplicate);
        assert_eq!(t.check(k, 0, 11 * SECOND - 1), Seen::Duplicate);
        // A duplicate does not extend the window: it is measured from the first sighting.
        assert_eq!(t.check(k, 0, 11 * SECOND), Seen::New);
        assert_eq!(t.check(k, 0, 11 * SECOND + 1), Seen::Duplicate);
        // A clock reading a little behind the stamp still sees the entry.
        assert_eq!(t.check(k, 0, 11 * SECOND - 5), Seen::Duplicate);
        assert_eq!(t.occupancy(11 * SECOND), 1);
        assert_eq!(t.occupancy(13 * SECOND), 0);
    }

    #[test]
    fn occupancy_estimate_is_exact_for_small_tables_and_close_for_large_ones() {
        let t = table(1 << 16);
        let mut inserted = 0;
        for i in 0..20_000 {
            if t.check(key(i), 0, SECOND) != Seen::Duplicate {
                inserted += 1;
            }
        }
        let exact = t.occupancy(SECOND);
        assert!(exact <= inserted && exact > 19_000, "{exact}");
        assert_eq!(t.occupancy_estimate(SECOND, usize::MAX), exact);
        let estimate = t.occupancy_estimate(SECOND, 2048);
        let error = estimate.abs_diff(exact) as f64 / exact as f64;
        assert!(error < 0.05, "estimate {estimate}, exact {exact}");
        // Expired entries are not counted, sampled or not.
        assert_eq!(t.occupancy_estimate(3 * SECOND, 2048), 0);
        assert_eq!(table(64).occupancy_estimate(0, 0), 0);
    }

    #[test]
    fn works_from_time_zero() {
        let t = table(64);
        assert_eq!(t.occupancy(0), 0);
        assert_eq!(t.check(key(1), 0, 0), Seen::New);
        assert_eq!(t.check(key(1), 0, 0), Seen::Duplicate);
        assert_eq!(t.check(key(2), 0, 0), Seen::New);
        assert_eq!(t.occupancy(0), 2);
    }

    #[test]
    fn groups_are_independent() {
        let t = table(1024);
        let k = key(7);
        assert_eq!(t.check(k, 0, SECOND), Seen::New);
        assert_eq!(t.check(k, 1, SECOND), Seen::New);
        assert_eq!(t.check(k, 65535, SECOND), Seen::New);
        for group in [0, 1, 65535] {
            assert_eq!(t.check(k, group, SECOND), Seen::Duplicate);
        }
        assert_eq!(t.check(k, 2, SECOND), Seen::New);
    }

    #[test]
    fn a_fingerprint_that_mixes_to_zero_still_works() {
        let t = table(64);
        // Group 0's salt is 1 × GROUP_FINGERPRINT_SALT: this key's fingerprint mixes to 0.
        let k = DedupKey {
            hash: 3,
            fingerprint: GROUP_FINGERPRINT_SALT,
        };
        assert_eq!(t.check(k, 0, 5), Seen::New);
        assert_eq!(t.check(k, 0, 6), Seen::Duplicate);
    }

    #[test]
    fn a_key_whose_candidates_are_all_live_evicts_the_oldest_and_says_so() {
        let t = table(0); // two buckets: every key's candidates are the whole table
        for i in 0..CANDIDATES as u64 {
            assert_eq!(t.check(key(i), 0, SECOND + i), Seen::New);
        }
        assert_eq!(t.check(key(100), 0, SECOND + 10), Seen::NewEvictedLive);
        // The oldest (key 0) went; the others are still there.
        for i in 1..CANDIDATES as u64 {
            assert_eq!(t.check(key(i), 0, SECOND + 11), Seen::Duplicate);
        }
        assert_eq!(t.check(key(0), 0, SECOND + 12), Seen::NewEvictedLive);
        // Once the entries expire, replacing them is no eviction.
        assert_eq!(t.check(key(200), 0, 5 * SECOND), Seen::New);
        assert_eq!(t.occupancy(5 * SECOND), 1);
    }

    #[test]
    fn replacing_an_entry_stamped_by_a_later_clock_keeps_its_stamp() {
        let t = table(0);
        for i in 0..CANDIDATES as u64 {
            assert_eq!(t.check(key(i), 0, 10 * SECOND), Seen::New);
        }
        // A worker whose clock reads earlier evicts one; the entry keeps the later stamp.
        assert_eq!(t.check(key(99), 0, 9 * SECOND), Seen::NewEvictedLive);
        let stamps: Vec<Entry> = t
            .buckets
            .iter()
            .flat_map(|b| &b.entries)
            .map(Entry::load)
            .collect();
        assert!(
            stamps.iter().all(|e| e.stamp_ns == 10 * SECOND),
            "{stamps:?}"
        );
    }

    /// A table far too small for the traffic never calls a new packet a duplicate.
    #[test]
    fn no_false_duplicates_in_a_full_table() {
        let t = DedupTable::new(1024, Duration::from_secs(3600));
        let (mut evicted, count) = (0, 2_000_000u64);
        for i in 0..count {
            match t.check(key(i), (i % 3) as u16, i) {
                Seen::Duplicate => panic!("key {i} is new"),
                Seen::NewEvictedLive => evicted += 1,
                Seen::New => {}
            }
        }
        assert!(evicted >= count - 1024, "{evicted}");
        assert_eq!(t.occupancy(count), 1024);
    }

    /// How a check records a key: the real one, or a variant with the classic race.
    type Check = fn(&DedupTable, DedupKey, u16, u64) -> Seen;

    /// The race the CAS prevents: read the candidates, then store without checking that it is
    /// unchanged. Used to show that [`offer_concurrently`] catches a broken table.
    fn check_then_store(t: &DedupTable, key: DedupKey, group: u16, now_ns: u64) -> Seen {
        let (candidates, fingerprint) = t.locate(key, group);
        match t.scan(&candidates, fingerprint, now_ns) {
            Scan::Duplicate => Seen::Duplicate,
            Scan::Replace { index, current } => {
                let new = Entry {
                    fingerprint,
                    stamp_ns: stamp(now_ns, current),
                };
                candidates[index].store(new.bits(), Relaxed);
                Seen::New
            }
        }
    }

    /// A CAS-based check whose victim rule depends on the thread (each thread prefers its own
    /// free entry): two threads reading the same bucket pick different entries and both win.
    /// Shows that the deterministic victim rule is what makes the CAS sufficient.
    fn cas_with_per_thread_victim(t: &DedupTable, key: DedupKey, group: u16, now_ns: u64) -> Seen {
        static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static PREFERRED: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % CANDIDATES;
        }
        let preferred = PREFERRED.with(|p| *p);
        let (candidates, fingerprint) = t.locate(key, group);
        loop {
            let view = candidates.map(Entry::load);
            if view
                .iter()
                .any(|e| e.fingerprint == fingerprint && e.is_live(now_ns, t.window_ns))
            {
                return Seen::Duplicate;
            }
            let index = (0..CANDIDATES)
                .map(|i| (preferred + i) % CANDIDATES)
                .find(|&i| !view[i].is_live(now_ns, t.window_ns))
                .unwrap_or(preferred);
            let new = Entry {
                fingerprint,
                stamp_ns: stamp(now_ns, view[index]),
            };
            if candidates[index]
                .compare_exchange(view[index].bits(), new.bits(), Relaxed, Relaxed)
                .is_ok()
            {
                return Seen::New;
            }
        }
    }

    /// `threads` threads offer the same `keys_per_round` keys, in the same order, for two groups,
    /// released together each round (spinning, so they start within a cache-line transfer of each
    /// other). Returns (keys that got more than one `New` in a group, keys that got none,
    /// evictions).
    fn offer_concurrently(
        check: Check,
        threads: usize,
        rounds: usize,
        keys_per_round: usize,
    ) -> (usize, usize, usize) {
        const GROUPS: u16 = 2;
        // Each round runs two windows after the previous one, so earlier rounds' entries have
        // expired and only this round's keys are live: no evictions.
        let table = DedupTable::new(1 << 20, Duration::from_secs(1));
        let round_started = AtomicUsize::new(0);
        let ready = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let news: Vec<AtomicUsize> = (0..keys_per_round * usize::from(GROUPS))
            .map(|_| AtomicUsize::new(0))
            .collect();
        let (mut doubles, mut missing, evictions) = (0, 0, AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut seen_round = 0;
                    loop {
                        // Wait for the next round (or the end), spinning then yielding.
                        let mut spins = 0u32;
                        while round_started.load(Ordering::Acquire) == seen_round {
                            if stop.load(Ordering::Acquire) {
                                return;
                            }
                            spins += 1;
                            if spins > 1000 {
                                std::thread::yield_now()
                            } else {
                                std::hint::spin_loop()
                            }
                        }
                        seen_round += 1;
                        let now = seen_round as u64 * 2 * SECOND;
                        for i in 0..keys_per_round {
                            let k = key(((seen_round as u64) << 32) | i as u64);
                            for group in 0..GROUPS {
                                match check(&table, k, group, now) {
                                    Seen::New => {
                                        news[i * usize::from(GROUPS) + usize::from(group)]
                                            .fetch_add(1, Ordering::Relaxed);
                                    }
                                    Seen::NewEvictedLive => {
                                        news[i * usize::from(GROUPS) + usize::from(group)]
                                            .fetch_add(1, Ordering::Relaxed);
                                        evictions.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Seen::Duplicate => {}
                                }
                            }
                        }
                        ready.fetch_add(1, Ordering::AcqRel);
                    }
                });
            }
            for round in 1..=rounds {
                round_started.store(round, Ordering::Release);
                while ready.load(Ordering::Acquire) < threads * round {
                    std::thread::yield_now();
                }
                for n in &news {
                    match n.swap(0, Ordering::Relaxed) {
                        0 => missing += 1,
                        1 => {}
                        _ => doubles += 1,
                    }
                }
            }
            stop.store(true, Ordering::Release);
        });
        (doubles, missing, evictions.into_inner())
    }

    fn stress_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 4)
    }

    /// Every key yields exactly one `New` per group, however the workers interleave.
    #[test]
    fn concurrent_checks_of_one_key_yield_exactly_one_new() {
        let (doubles, missing, evictions) =
            offer_concurrently(DedupTable::check, stress_threads(), 300, 512);
        assert_eq!(evictions, 0, "the table is large enough for no eviction");
        assert_eq!((doubles, missing), (0, 0));
    }

    /// The same harness catches a table without compare-and-swap and a table whose victim rule
    /// is not a function of the candidates' content, so the test above can fail.
    #[test]
    fn the_stress_test_catches_broken_tables() {
        for (name, broken) in [
            ("check then store", check_then_store as Check),
            ("per-thread victim", cas_with_per_thread_victim),
        ] {
            let caught = (0..50)
                .map(|_| offer_concurrently(broken, stress_threads(), 300, 512))
                .find(|&(doubles, _, _)| doubles > 0);
            assert!(
                caught.is_some(),
                "{name}: no race observed, the stress harness is too weak"
            );
        }
    }
}
