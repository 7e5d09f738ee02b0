//! The de-duplication table shared by all workers: fixed size, lock-free, one 64-bit word per
//! entry, linearizable per key except for the cases stated under *Limitations*.
//!
//! # Design
//! The table is an array of buckets, one 64-byte cache line each, holding eight 64-bit entries.
//! A key may sit in any of the sixteen entries of two buckets, chosen from the two halves of its
//! `hash` (its *candidates*, always in that order). The hash and the fingerprint are first mixed
//! with the tool group, so each group has its own view of the table (the same packet for two
//! groups is two independent entries).
//!
//! Two buckets of eight rather than one: in the steady state of a table at load ρ (entries
//! expiring as fast as new ones come), a key whose candidates are all live must evict one. With
//! one bucket of eight that happens to about 4 % of inserts at half load; with sixteen candidates
//! in two buckets, taken in a victim order that interleaves the buckets (so that new entries
//! spread over both, see `check`), to hardly any (a few in a million; the previous table's eight
//! 16-byte candidates: a hundred in 10,000), and at 90 % load to fewer inserts too
//! (BENCHMARKS.md, *Dedup table*). Both
//! buckets come from the hash and none from the fingerprint, so that where an entry is stored
//! tells nothing about its fingerprint bits. The price is a second cache line per check, whose
//! miss overlaps the first's, and which a stage can prefetch with the first for a whole burst
//! ([`DedupTable::buckets_of`]).
//!
//! An entry is one `AtomicU64`: a plain `mov` to read, `lock cmpxchg` to write, on every 64-bit
//! CPU. Its 50 high bits are the key's *fingerprint* (see below), never 0; its 14 low bits are
//! its *stamp*, the time it was written in *ticks* modulo 2^14. A word of 0 is an empty entry
//! (never written).
//!
//! ## Time
//! A tick is the smallest power of two of nanoseconds that is at least `window / 64`, so a window
//! is 33 to 64 ticks long (fewer only under 64 ns), and 2^14 ticks (a *span*) are 256 to 512
//! windows. A check reads its clock once (`tick = now_ns >> shift`) and measures a candidate's
//! *age* as `(tick − stamp) mod 2^14`, taken in `[−64, 2^14 − 64)`: a negative age is a stamp
//! written by a worker whose clock reading is up to [`FUTURE_TICKS`] later than this one's. An
//! entry is *live* while its age is negative or below `live = ⌈(window − 1 ns) / tick⌉ + 1`.
//! Whatever the phase of the first sighting within its tick, a copy less than `window` after it
//! is less than `live` ticks after it, and a copy `live × tick` or more after it is at least
//! `live` ticks after it; `live × tick` is less than `window + 2 ticks`. So a packet is
//! remembered for at least the window and less than the window plus two ticks (1/16 of it).
//!
//! Stamps repeat every span: an entry left untouched for a whole span looks as young as one
//! written now. So the fingerprint bits an entry stores are the top 50 bits of the key's
//! fingerprint *salted with the stamp's span* (`(tick >> 14) × an odd constant`); a check works
//! out each candidate's span from its age and its own clock, and compares the candidate's
//! fingerprint bits with the key's for that span. An entry of the same key from an earlier span
//! then differs like an entry of any other key (see the collision probability below): a stale
//! entry can look live but cannot make a new packet a duplicate.
//!
//! `check(key)`:
//! 1. read the candidates, each once (64-bit atomic loads: a *view*, not a snapshot), the first
//!    bucket's eight, then the second's;
//! 2. a live candidate with the key's fingerprint for its span → `Duplicate` (nothing written;
//!    one in the first bucket ends the check before the second is read);
//! 3. otherwise the victim is the first empty candidate of the view in *victim order* (way 0 of
//!    the first bucket, way 0 of the second, way 1 of the first, …) if there is one, else the
//!    one whose age is the greatest on the check's clock, the first in victim order on a tie;
//!    it is replaced by the key's entry stamped with the check's tick — or with the victim's
//!    stamp if that is ahead of the clock, so that stamps never go backwards — with a CAS whose
//!    expected value is the one read;
//! 4. on CAS failure, start again from 1 (at most [`MAX_ATTEMPTS`] times; then report `New`
//!    without recording: a contended table passes a packet, never drops one).
//!
//! The table counts its entries never written (one atomic decrement per CAS that replaces an
//! empty entry, so only while it fills). Once the count is 0 no entry is empty again, and a check
//! that reads 0 (`Acquire`, after the decrements' `Release`: it cannot then read an entry as it
//! was before its first write) skips the test for empty candidates.
//!
//! ## Why two checks of one key cannot both win
//! Call an entry's *badness* the pair (empty, age): every empty entry beats every written one,
//! then the older beats the younger; the victim is the candidate of greatest badness, the first
//! in victim order on a tie. Along the modification order of each entry, badness never increases
//! when measured on one clock: an empty entry is only ever replaced by a written one, and a write
//! replaces an entry of age `a ≥ 0` by one of age 0 on the writer's clock, or one of negative age
//! by the same stamp. Below, candidates are named by their rank in victim order. Suppose two
//! concurrent checks C1 and C2 of a key K (same group, so the same candidates in the same order)
//! both succeed, C1 by a CAS on candidate `a` after reading view V1, C2 on `b`
//! after reading V2, and neither saw K live (else it returned `Duplicate`). The checks (and the
//! writes between them) may read clocks a few ticks apart; on another clock every age moves by
//! the same number of ticks, so the order of the candidates, each check's choice and the
//! monotonicity above are the same on C1's clock — unless an age wraps (leaves
//! `[−64, 2^14 − 64)`) between the two clocks. Measure every badness below on C1's clock.
//! - `a = b`: the CASes are ordered, say C1's first. C2's CAS succeeded, so the value it read
//!   (V2\[a\]) was the value just before its write, hence C1's write `(K, …)` or a later one. Had
//!   it been C1's write, C2 would have seen K; so another check overwrote K in between: an
//!   eviction, which that check reported as `NewEvictedLive`, or K had expired.
//! - `a ≠ b`: if C2 read entry `a` after C1's write, C2 saw K (or an entry that replaced it, as
//!   above); so V2\[a\] precedes C1's write and `bad(V2[a]) ≥ bad(V1[a])`. Likewise
//!   `bad(V1[b]) ≥ bad(V2[b])`. C1 chose `a`: `(bad(V1[a]), −a) > (bad(V1[b]), −b)`; C2 chose `b`:
//!   `(bad(V2[b]), −b) > (bad(V2[a]), −a)`. Chaining, `(bad(V2[b]), −b) > (bad(V2[a]), −a) ≥
//!   (bad(V1[a]), −a) > (bad(V1[b]), −b) ≥ (bad(V2[b]), −b)`: a contradiction.
//!
//! So a second `New` for K within the window happens only after K's entry was evicted (counted as
//! `NewEvictedLive` by whoever evicted it), when [`MAX_ATTEMPTS`] CASes in a row lost a race, or
//! when an age wraps between the clocks of the checks involved (*Limitations*). Without the "victim's stamp if ahead" rule, a stamp could go down (a
//! worker whose clock read is older replacing a newer entry), two views could then order the
//! entries differently, and both checks could win; with a victim rule that is not a function of
//! the view alone (say, each worker preferring its own free entry), they would pick different
//! entries and both win (the stress test catches both). The rule reads ages only through their
//! order, which does not change when every age moves by the same number of ticks; a cheaper rule
//! taking the first candidate that is no longer live would not have that: two checks whose
//! clocks fall on either side of the tick at which a candidate expires would choose different
//! victims in the same view and could both win, so it is not used. The argument uses only the modification
//! order of each entry (coherence), so `Relaxed` ordering is enough: no other memory is published
//! through the table.
//!
//! ## The probability of a false duplicate
//! A new packet is reported `Duplicate` only if one of its candidates that looks live holds
//! another key whose 50 stored fingerprint bits equal the key's (for that entry's span). The
//! fingerprint is 64 bits of a keyed XXH3-128 of the packet, independent of the bits that chose
//! the buckets, so each live candidate collides with probability 2^-50: a check errs with
//! probability at most `L × 2^-50`, `L` the candidates that look live (about 16 × the load; at
//! most 16). At 10 million checks a second (10 Mpps, one tool group; a group more is as many
//! checks more) and half load (L ≈ 8) that is 7.1 × 10^-8 per second: one false duplicate every
//! 163 days; at 90 % load (L ≈ 14.4) one every 91 days; with all sixteen candidates live, one
//! every 81 days. (The previous table compared 64 bits in eight candidates: 2^-64-class.)
//!
//! # Limitations
//! - A key has sixteen candidate entries: when all sixteen hold live keys, recording it evicts
//!   the oldest (reported, so the caller counts it), and a later duplicate of the evicted packet
//!   gets through. Size the table at twice the packets per window (half load: a few inserts in a
//!   million evict; the bench prints the rate for its loads). An entry is 8 bytes: 2^20 entries
//!   take 8 MiB.
//! - The window has a resolution of one tick (`window / 64` to `window / 32`): a packet is
//!   remembered for at least the window and less than the window plus two ticks.
//! - The stamps come from the callers' clock (a monotonic ns counter shared by the workers). A
//!   check whose clock reading is behind an entry's stamp by at most [`FUTURE_TICKS`] ticks (at
//!   least one window) sees it as live, as young as it can be; by more, it takes the stamp for
//!   one a span older, so it can pass a duplicate and evict a live entry (never drop a new
//!   packet), and the argument above no longer holds for that check.
//! - Wrap-around. An entry not rewritten for `2^14 − 64` ticks (255–510 windows) has an age that
//!   wraps to "64 ticks ahead". Two concurrent checks of one key can then both win if their clock
//!   readings fall in different ticks and, between the two, one of the key's candidates wraps;
//!   for candidates of uniformly spread stamps that is at most 16 × 2^-14 per tick between the
//!   readings (which are normally microseconds apart, a tick being at least `window / 64`), and
//!   it needs a candidate left untouched for 255 windows or more, which happens in lightly
//!   loaded tables only. A stale entry also looks live (for `live + 64` ticks of every span):
//!   [`DedupTable::occupancy`] counts it, and a key whose sixteen candidates all look live so
//!   evicts one and reports `NewEvictedLive` — possible after the whole table sat idle for a
//!   multiple of a span, for those `live + 64` ticks (under 1 % of a span). It never matches a
//!   key (the span salt above).
//! - A false duplicate has the probability stated above (the price of a 64-bit entry).
//! - A check reads two cache lines that are, in a large table, two cache misses (overlapped),
//!   and with 4 KiB pages two TLB misses: the cost of a check is the memory latency, not the
//!   arithmetic. The table lives on the Rust heap; one of [`HUGE_PAGE`] bytes or more starts on
//!   a multiple of it (up to `HUGE_PAGE − 64` bytes of padding before it), so that the broker
//!   can have all of it backed by huge pages ([`DedupTable::memory_range`]; this crate has no
//!   `unsafe` to ask the kernel itself).

use std::fmt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use super::key::DedupKey;

/// Entries per bucket: eight 8-byte entries fill one 64-byte cache line.
const WAYS: usize = 8;
/// Entries a key may occupy: the entries of its two buckets (the victim rule packs an index in
/// 4 bits).
const CANDIDATES: usize = 2 * WAYS;
const _: () = assert!(CANDIDATES <= 16);
/// CAS attempts before a check gives up and passes the packet unrecorded. A failed CAS means
/// another check writing to the same entries made progress, so running out needs that many
/// lost races in a row on one key's candidates.
pub const MAX_ATTEMPTS: usize = 16;

/// Bits of an entry holding its stamp (the low bits); the other 50 hold its fingerprint.
const STAMP_BITS: u32 = 14;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;
/// The tick is the smallest power of two of nanoseconds that is at least the window divided by
/// this: a window is 33 to 64 ticks long (fewer only for windows under 64 ns), so an entry is
/// remembered at most two ticks (1/16 of the window) longer than the window.
const TICKS_PER_WINDOW: u64 = 64;
/// Stamps up to this many ticks ahead of a check's clock are taken as written by a worker whose
/// clock reading is later than the checker's, not as stamps from the far past: the lag between
/// two workers' clock readings that the table tolerates (at least one window).
const FUTURE_TICKS: u64 = 64;

/// Spreads group numbers over the hash space (the 64-bit golden ratio; odd, so the group salts
/// are distinct).
const GROUP_HASH_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
/// A second odd constant for the fingerprint salt, unrelated to the first.
const GROUP_FINGERPRINT_SALT: u64 = 0xc2b2_ae3d_27d4_eb4f;
/// A third odd constant, salting the stored fingerprint with the stamp's span (see the module
/// docs: an entry from an earlier span does not match).
const SPAN_FINGERPRINT_SALT: u64 = 0xff51_afd7_ed55_8ccd;

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

/// One bucket of the table: one cache line of eight entries. A check reads two
/// ([`DedupTable::buckets_of`]); a stage may prefetch them before checking.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct Bucket {
    entries: [AtomicU64; WAYS],
}

/// The size and alignment of a huge page (2 MiB, x86-64's and arm64's): a table at least this
/// large starts on a multiple of it.
pub const HUGE_PAGE: usize = 2 << 20;

/// The table all workers share through an `Arc`. See the module docs.
pub struct DedupTable {
    /// The buckets, `storage[first..first + count]`, after the padding that starts a large table
    /// on a huge page boundary.
    storage: Box<[Bucket]>,
    first: usize,
    /// At least two, so that a key's two buckets can always differ.
    count: usize,
    window_ns: u64,
    /// A tick is `1 << tick_shift` ns.
    tick_shift: u32,
    /// An entry is live while its age in ticks (on the checker's clock) is below this.
    live_ticks: u64,
    /// Entries never written. Once it is 0 (it never rises), a check knows without looking that
    /// no candidate is empty and skips that test. Written only while the table fills.
    unwritten: Unwritten,
}

/// The count of unwritten entries, alone on its cache line: it is written while the table fills
/// and read by every check, and the fields beside it must not move with it.
#[repr(align(64))]
struct Unwritten(AtomicUsize);

impl fmt::Debug for DedupTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupTable")
            .field("entries", &self.capacity())
            .field("window_ns", &self.window_ns)
            .field("tick_ns", &(1u64 << self.tick_shift))
            .field("live_ticks", &self.live_ticks)
            .finish()
    }
}

/// A check's reading of the clock, in ticks, with what depends on it.
#[derive(Clone, Copy, Debug)]
struct Clock {
    /// The full tick count (not truncated to the stamp's bits).
    tick: u64,
    /// Oldness (see [`Clock::oldness`]) below which an entry is live.
    live_below: u64,
}

impl Clock {
    /// How old `entry` looks on this clock, in ticks plus [`FUTURE_TICKS`], modulo the stamp's
    /// range: 0 to `FUTURE_TICKS − 1` for stamps ahead of the clock, `FUTURE_TICKS` for a stamp
    /// of this tick, then older and older. The victim rule and liveness both read this.
    #[inline(always)]
    fn oldness(self, entry: u64) -> u64 {
        self.tick.wrapping_add(FUTURE_TICKS).wrapping_sub(entry) & STAMP_MASK
    }

    /// The full tick of a stamp whose oldness is `oldness` (right for stamps written within the
    /// last span, which live ones are).
    #[inline(always)]
    fn stamp_tick(self, oldness: u64) -> u64 {
        self.tick.wrapping_add(FUTURE_TICKS).wrapping_sub(oldness)
    }
}

/// A key's place in the table for one group: its two buckets and its fingerprint.
#[derive(Clone, Copy)]
struct Probe<'t> {
    buckets: [&'t Bucket; 2],
    /// The group-salted 64-bit fingerprint, before the span salt and the truncation.
    fingerprint: u64,
}

impl<'t> Probe<'t> {
    #[inline(always)]
    fn slot(&self, i: usize) -> &'t AtomicU64 {
        &self.buckets[i / WAYS].entries[i % WAYS]
    }

    /// The fingerprint bits this key stores with a stamp of span `span` (`tick >> STAMP_BITS`):
    /// the top 50 bits of the fingerprint salted with the span, never 0 (0 marks an empty
    /// entry).
    #[inline(always)]
    fn stored_fingerprint(&self, span: u64) -> u64 {
        match (self.fingerprint ^ span.wrapping_mul(SPAN_FINGERPRINT_SALT)) & !STAMP_MASK {
            0 => 1 << STAMP_BITS,
            f => f,
        }
    }
}

/// The fingerprints a live entry of the key may carry at `clock`: the one of the clock's span,
/// and near a span boundary the one of the neighbouring span that a live stamp can fall in.
#[derive(Clone, Copy)]
struct Wanted {
    span: u64,
    this_span: u64,
    other_span: u64,
    /// Whether a live stamp can be in the other span (the clock is within the live ticks after
    /// the start of its span, or within [`FUTURE_TICKS`] of its end): 129 ticks of 16,384.
    near_edge: bool,
}

impl Wanted {
    #[inline(always)]
    fn new(probe: &Probe<'_>, clock: Clock) -> Wanted {
        let span = clock.tick >> STAMP_BITS;
        let phase = clock.tick & STAMP_MASK;
        // A live stamp lies less than the live ticks before the clock or at most FUTURE_TICKS
        // after it: in the previous span only early in this one, in the next only late.
        let early = phase < clock.live_below.saturating_sub(FUTURE_TICKS);
        let late = phase + FUTURE_TICKS > STAMP_MASK;
        let this_span = probe.stored_fingerprint(span);
        let other_span = if early {
            probe.stored_fingerprint(span.wrapping_sub(1))
        } else if late {
            probe.stored_fingerprint(span.wrapping_add(1))
        } else {
            this_span // no live stamp is in another span
        };
        Wanted {
            span,
            this_span,
            other_span,
            near_edge: early || late,
        }
    }

    /// The fingerprint bits an entry of this key stamped at `stamp_tick` carries.
    #[inline(always)]
    fn for_stamp(self, stamp_tick: u64) -> u64 {
        if stamp_tick >> STAMP_BITS == self.span {
            self.this_span
        } else {
            self.other_span
        }
    }
}

/// What a read of the candidates decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    Duplicate,
    /// Replace candidate `index`, whose value was read as `current`, with `oldness` on the
    /// check's clock.
    Replace {
        index: usize,
        current: u64,
        oldness: u64,
    },
}

impl DedupTable {
    /// A table of at least `capacity` entries (rounded up to whole 8-entry buckets, at least two)
    /// remembering packets for `window`. All its memory is allocated here; it never grows. A
    /// table of [`HUGE_PAGE`] bytes or more starts on a multiple of it.
    pub fn new(capacity: u32, window: Duration) -> DedupTable {
        let buckets = (capacity as usize).div_ceil(WAYS).max(2);
        let bucket_bytes = std::mem::size_of::<Bucket>();
        let padding = if buckets * bucket_bytes >= HUGE_PAGE {
            HUGE_PAGE / bucket_bytes - 1
        } else {
            0
        };
        let storage: Box<[Bucket]> = (0..buckets + padding).map(|_| Bucket::default()).collect();
        // Buckets are 64-byte aligned, so the distance to the next boundary is whole buckets.
        let first = match padding {
            0 => 0,
            _ => (HUGE_PAGE - storage.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE / bucket_bytes,
        };
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let tick_ns = window_ns
            .div_ceil(TICKS_PER_WINDOW)
            .max(1)
            .next_power_of_two();
        // Live while age < live_ticks: every age below the window in ns maps to at most
        // ceil((window − 1) / tick) ticks, whatever the phase of the first sighting.
        let live_ticks = match window_ns {
            0 => 0,
            w => (w - 1).div_ceil(tick_ns) + 1,
        };
        DedupTable {
            storage,
            first,
            count: buckets,
            window_ns,
            tick_shift: tick_ns.trailing_zeros(),
            live_ticks,
            unwritten: Unwritten(AtomicUsize::new(buckets * WAYS)),
        }
    }

    /// Entries in the table (the capacity asked for, rounded up to whole buckets).
    pub fn capacity(&self) -> usize {
        self.count * WAYS
    }

    /// Bytes of table memory, with the padding that aligns a large table.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.storage)
    }

    /// The addresses of the buckets (the padding before a large table left out): for the
    /// caller to ask the kernel for huge pages under them. A table of [`HUGE_PAGE`] bytes or
    /// more starts on a multiple of it.
    pub fn memory_range(&self) -> std::ops::Range<usize> {
        let range = self.buckets().as_ptr_range();
        range.start as usize..range.end as usize
    }

    /// The buckets, without the padding.
    fn buckets(&self) -> &[Bucket] {
        &self.storage[self.first..self.first + self.count]
    }

    /// Whether entries are updated without a lock: 64-bit atomics are native on every 64-bit
    /// target.
    pub fn is_lock_free() -> bool {
        cfg!(target_has_atomic = "64")
    }

    #[inline(always)]
    fn clock(&self, now_ns: u64) -> Clock {
        Clock {
            tick: now_ns >> self.tick_shift,
            // A window of 0 keeps nothing, not even stamps ahead of the clock.
            live_below: match self.live_ticks {
                0 => 0,
                live => FUTURE_TICKS + live,
            },
        }
    }

    /// Records that `group` receives the packet with `key` at `now_ns` (a monotonic ns clock
    /// shared by all workers). `New`: first sighting within the window for this group.
    /// `Duplicate`: seen within the window.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub fn check(&self, key: DedupKey, group: u16, now_ns: u64) -> Seen {
        // 0 only once every entry was written, each by a CAS whose decrement (Release) this
        // reading (Acquire) then follows: no load of the check can see an entry still empty.
        let may_be_empty = self.unwritten.0.load(Acquire) != 0;
        self.check_with(key, group, now_ns, may_be_empty)
    }

    /// [`DedupTable::check`], told whether the table may still hold empty entries (`true` is
    /// always right; `false` only once none is left).
    #[inline(always)]
    fn check_with(&self, key: DedupKey, group: u16, now_ns: u64, may_be_empty: bool) -> Seen {
        let probe = self.locate(key, group);
        let clock = self.clock(now_ns);
        let wanted = Wanted::new(&probe, clock);
        for _ in 0..MAX_ATTEMPTS {
            let (index, current, oldness) = match scan(&probe, clock, wanted, may_be_empty) {
                Scan::Duplicate => return Seen::Duplicate,
                Scan::Replace {
                    index,
                    current,
                    oldness,
                } => (index, current, oldness),
            };
            let new = new_entry(clock, wanted, current, oldness);
            let won = probe
                .slot(index)
                .compare_exchange(current, new, Relaxed, Relaxed)
                .is_ok();
            if won {
                if is_empty(current) {
                    self.unwritten.0.fetch_sub(1, Release);
                }
                return if !is_empty(current) && oldness < clock.live_below {
                    Seen::NewEvictedLive
                } else {
                    Seen::New
                };
            }
        }
        Seen::New
    }

    /// The bucket of `key` for `group` that a check reads first. The check reads a second one
    /// too: a stage that prefetches should prefetch both ([`DedupTable::buckets_of`]).
    #[inline]
    pub fn bucket_of(&self, key: DedupKey, group: u16) -> &Bucket {
        self.locate(key, group).buckets[0]
    }

    /// The two buckets a check of `key` for `group` reads, in the order it reads them.
    #[inline]
    pub fn buckets_of(&self, key: DedupKey, group: u16) -> [&Bucket; 2] {
        self.locate(key, group).buckets
    }

    /// Live entries at `now_ns`. Reads the whole table: control plane only.
    pub fn occupancy(&self, now_ns: u64) -> usize {
        let clock = self.clock(now_ns);
        self.buckets().iter().map(|bucket| bucket.live(clock)).sum()
    }

    /// Live entries at `now_ns`, estimated from at most `max_buckets` buckets spread evenly over
    /// the table (exact when the table has no more). Keys hash uniformly over the buckets, so a
    /// sample of a few thousand buckets is within a few percent of the whole, at a cost (and a
    /// cache footprint) that does not grow with the table. Control plane only.
    pub fn occupancy_estimate(&self, now_ns: u64, max_buckets: usize) -> usize {
        let buckets = self.buckets();
        let count = buckets.len();
        if max_buckets >= count {
            return self.occupancy(now_ns);
        }
        let clock = self.clock(now_ns);
        let sample = max_buckets.max(1);
        let live: usize = (0..sample)
            // Evenly spaced: bucket i·count/sample, distinct since sample < count.
            .filter_map(|i| buckets.get(((i as u128 * count as u128) / sample as u128) as usize))
            .map(|bucket| bucket.live(clock))
            .sum();
        ((live as u128 * count as u128) / sample as u128) as usize
    }

    /// The buckets and the group-salted fingerprint of `key` for `group`.
    #[inline]
    fn locate(&self, key: DedupKey, group: u16) -> Probe<'_> {
        let group = u64::from(group) + 1;
        let hash = key.hash ^ group.wrapping_mul(GROUP_HASH_SALT);
        let count = self.count;
        // Both buckets come from the hash (its two halves), none from the fingerprint: the
        // fingerprint bits an entry stores are then independent of where it is stored, and
        // all 50 of them tell keys apart.
        let first = bucket_index(hash >> 32, count);
        let second = match bucket_index(hash & 0xffff_ffff, count) {
            // `new` makes at least two buckets.
            same if same == first => {
                if first + 1 == count {
                    0
                } else {
                    first + 1
                }
            }
            other => other,
        };
        Probe {
            buckets: [
                &self.storage[self.first + first],
                &self.storage[self.first + second],
            ],
            fingerprint: key.fingerprint ^ group.wrapping_mul(GROUP_FINGERPRINT_SALT),
        }
    }
}

impl Bucket {
    /// The bucket's entries, each read once (a *view*, not a snapshot).
    #[inline(always)]
    fn view(&self) -> [u64; WAYS] {
        std::array::from_fn(|way| self.entries[way].load(Relaxed))
    }

    /// Live entries of this bucket on `clock`.
    fn live(&self, clock: Clock) -> usize {
        self.entries
            .iter()
            .map(|slot| slot.load(Relaxed))
            .filter(|&entry| !is_empty(entry) && clock.oldness(entry) < clock.live_below)
            .count()
    }
}

/// An entry with no fingerprint: never written (every stored fingerprint is non-zero).
#[inline(always)]
fn is_empty(entry: u64) -> bool {
    entry <= STAMP_MASK
}

/// Reads the candidates, bucket by bucket: a live entry with the key's fingerprint, or the
/// victim: the first empty candidate in victim order, else the candidate that looks oldest on
/// the check's clock, the first in victim order on a tie. A live copy in the first bucket ends
/// the check before the second is read. With `may_be_empty` false (the table has no empty
/// entry left), the test for empty candidates is skipped.
#[inline(always)]
fn scan(probe: &Probe<'_>, clock: Clock, wanted: Wanted, may_be_empty: bool) -> Scan {
    let first = probe.buckets[0].view();
    if has_live_copy(&first, clock, wanted) {
        return Scan::Duplicate;
    }
    let second = probe.buckets[1].view();
    if has_live_copy(&second, clock, wanted) {
        return Scan::Duplicate;
    }
    let (empty_first, empty_second) = if may_be_empty {
        (empty_entries(&first), empty_entries(&second))
    } else {
        (0, 0)
    };
    // Victim order interleaves the buckets (way 0 of the first, way 0 of the second, way 1 of
    // the first, …): the lowest way empty in either bucket, the first bucket's on a tie.
    let (bucket, way) = match empty_first | empty_second {
        0 => oldest(&first, &second, clock),
        empty => {
            let way = empty.trailing_zeros() as usize;
            (usize::from(empty_first >> way & 1 == 0), way)
        }
    };
    let current = if bucket == 0 { first[way] } else { second[way] };
    Scan::Replace {
        index: bucket * WAYS + way,
        current,
        oldness: clock.oldness(current),
    }
}

/// Whether a bucket's view holds a live entry of the key. The fingerprints are compared first,
/// all of them, as a bit mask (a few operations per entry, no branch); only an entry with a
/// fingerprint of the key is looked at closely: live, and the fingerprint of its own stamp's
/// span.
#[inline(always)]
fn has_live_copy(view: &[u64; WAYS], clock: Clock, wanted: Wanted) -> bool {
    let same_fingerprint = |fingerprint: u64| {
        let mut mask = 0u32;
        for (way, &entry) in view.iter().enumerate() {
            mask |= u32::from((entry ^ fingerprint) <= STAMP_MASK) << way;
        }
        mask
    };
    let mut matches = same_fingerprint(wanted.this_span);
    if wanted.near_edge {
        matches |= same_fingerprint(wanted.other_span);
    }
    while matches != 0 {
        let entry = view[matches.trailing_zeros() as usize];
        matches &= matches - 1;
        if is_live_copy(entry, clock, wanted) {
            return true;
        }
    }
    false
}

/// The empty entries of a bucket's view as a bit mask (bit `i`: way `i`).
#[inline(always)]
fn empty_entries(view: &[u64; WAYS]) -> u32 {
    let mut empty = 0u32;
    for (way, &entry) in view.iter().enumerate() {
        empty |= u32::from(is_empty(entry)) << way;
    }
    empty
}

/// The candidate that looks oldest on `clock`, as (bucket, way), the first in victim order on a
/// tie (the oldness and the rank packed in one integer, so that the choice is a maximum). Only
/// called when no candidate is empty.
#[inline(always)]
fn oldest(first: &[u64; WAYS], second: &[u64; WAYS], clock: Clock) -> (usize, usize) {
    let mut worst = 0;
    for way in 0..WAYS {
        for (bucket, view) in [first, second].into_iter().enumerate() {
            let rank = 2 * way + bucket;
            worst = worst.max(clock.oldness(view[way]) << 4 | (CANDIDATES - 1 - rank) as u64);
        }
    }
    let rank = CANDIDATES - 1 - (worst & 0xf) as usize;
    (rank % 2, rank / 2)
}

/// Whether `entry` is a live entry of the key: live on `clock`, with the key's fingerprint for
/// its stamp's span.
#[inline(always)]
fn is_live_copy(entry: u64, clock: Clock, wanted: Wanted) -> bool {
    let oldness = clock.oldness(entry);
    oldness < clock.live_below && entry & !STAMP_MASK == wanted.for_stamp(clock.stamp_tick(oldness))
}

/// The entry written over `victim` (read with `oldness`): the key's fingerprint for the span of
/// the stamp, and the stamp: the clock's tick, or the victim's if that is ahead of the clock
/// (stamps never go backwards, see the module docs).
#[inline(always)]
fn new_entry(clock: Clock, wanted: Wanted, victim: u64, oldness: u64) -> u64 {
    let stamp_tick = if !is_empty(victim) && oldness < FUTURE_TICKS {
        clock.stamp_tick(oldness)
    } else {
        clock.tick
    };
    wanted.for_stamp(stamp_tick) | (stamp_tick & STAMP_MASK)
}

/// A bucket index in `0..count` from 32 bits of hash (multiply-shift: uses the high bits; a
/// table has at most 2^29 buckets).
#[inline(always)]
fn bucket_index(hash32: u64, count: usize) -> usize {
    ((hash32 * count as u64) >> 32) as usize
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

    fn tick_ns(t: &DedupTable) -> u64 {
        1 << t.tick_shift
    }

    /// Every entry of the table, in bucket order.
    fn entries(t: &DedupTable) -> Vec<u64> {
        t.buckets()
            .iter()
            .flat_map(|b| &b.entries)
            .map(|e| e.load(Relaxed))
            .collect()
    }

    #[test]
    fn layout_and_memory() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
        let t = table(1001);
        assert_eq!(t.capacity(), 1008);
        assert_eq!(t.memory_bytes(), 126 * 64);
        assert_eq!(table(0).capacity(), 2 * WAYS);
        fn shared<T: Send + Sync>() {}
        shared::<DedupTable>();
    }

    #[test]
    fn a_table_of_a_huge_page_or_more_starts_on_one() {
        for entries in [1u32 << 18, 3 << 17, 1 << 20] {
            let t = table(entries);
            let range = t.memory_range();
            assert_eq!(range.start % HUGE_PAGE, 0, "{entries} entries");
            assert_eq!(range.len(), entries as usize * 8);
            assert_eq!(t.capacity(), entries as usize);
            // The padding is less than a huge page.
            assert_eq!(t.memory_bytes(), range.len() + HUGE_PAGE - 64);
            // Every bucket a key can reach lies in the range.
            for i in 0..10_000 {
                for bucket in t.buckets_of(key(i), (i % 3) as u16) {
                    let at = bucket as *const Bucket as usize;
                    assert!(range.contains(&at) && range.contains(&(at + 63)));
                }
            }
        }
        // A smaller table has no padding.
        let t = table(1 << 17);
        assert_eq!(t.memory_bytes(), t.memory_range().len());
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn entries_are_lock_free_on_this_machine() {
        assert!(DedupTable::is_lock_free());
    }

    #[test]
    fn duplicate_within_the_window_new_after_it() {
        let t = table(1024);
        let k = key(1);
        // Entries are remembered for at least the window and less than the window plus two
        // ticks (the stamp's resolution).
        let forgotten = 11 * SECOND + 2 * tick_ns(&t);
        assert_eq!(t.check(k, 0, 10 * SECOND), Seen::New);
        assert_eq!(t.check(k, 0, 10 * SECOND), Seen::Duplicate);
        assert_eq!(t.check(k, 0, 11 * SECOND - 1), Seen::Duplicate);
        // A duplicate does not extend the window: it is measured from the first sighting.
        assert_eq!(t.check(k, 0, forgotten), Seen::New);
        assert_eq!(t.check(k, 0, forgotten + 1), Seen::Duplicate);
        // A clock reading a little behind the stamp still sees the entry.
        assert_eq!(t.check(k, 0, forgotten - 5), Seen::Duplicate);
        assert_eq!(t.occupancy(forgotten), 1);
        assert_eq!(t.occupancy(forgotten + 2 * SECOND), 0);
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

    /// Checks one key per `step_ns` from `now_ns` on, each key once: a table kept at about
    /// `live` live entries. Returns the evictions.
    fn steady_inserts(t: &DedupTable, live: u64, inserts: u64) -> u64 {
        let step_ns = SECOND / live;
        (0..inserts)
            .filter(|&i| t.check(key(i), 0, SECOND + i * step_ns) == Seen::NewEvictedLive)
            .count() as u64
    }

    #[test]
    fn a_half_full_table_hardly_ever_evicts() {
        // Victim order interleaves the two buckets, so new entries spread over both: the old
        // candidate order (the first bucket's eight, then the second's) evicted 6 live entries
        // here, the first free candidate in that order 26.
        let t = table(1 << 14);
        let live = t.capacity() as u64 / 2;
        let inserts = 3 * live;
        let evicted = steady_inserts(&t, live, inserts);
        assert!(
            evicted * 10_000 < inserts,
            "{evicted} of {inserts} inserts evicted"
        );
    }

    #[test]
    fn a_new_entry_takes_the_lowest_free_way_of_either_bucket() {
        let t = table(0); // two buckets
        let first_of = |k: DedupKey| t.buckets_of(k, 0)[0] as *const Bucket;
        let a = key(0);
        let b = (1..)
            .map(key)
            .find(|&k| first_of(k) == first_of(a))
            .expect("a key with the same first bucket");
        let [first, second] = t.buckets_of(a, 0);
        let way_of = |bucket: &Bucket, way: usize| bucket.entries[way].load(Relaxed);
        assert_eq!(t.check(a, 0, SECOND), Seen::New);
        assert_ne!(way_of(first, 0), 0);
        assert_eq!(t.check(b, 0, SECOND), Seen::New);
        // Way 0 of the second bucket comes before way 1 of the first.
        assert_ne!(way_of(second, 0), 0);
        assert_eq!(way_of(first, 1), 0);
    }

    #[test]
    fn skipping_the_empty_test_once_the_table_is_full_changes_nothing() {
        // The same checks on two tables, one always looking for empty entries: the same
        // answers and the same victims.
        let counted = table(256);
        let always = table(256);
        let live = 100;
        let step_ns = SECOND / live;
        // A span starts at check 300: from there on an empty entry's oldness (the clock's own)
        // is small, and a check that missed an empty entry would choose an older written one.
        let start_ns = (1u64 << (STAMP_BITS + counted.tick_shift)) - 300 * step_ns;
        let mut full_at = None;
        for i in 0..5_000u64 {
            let k = key(i % 1_500);
            let now_ns = start_ns + i * step_ns;
            assert_eq!(
                counted.check(k, (i % 2) as u16, now_ns),
                always.check_with(k, (i % 2) as u16, now_ns, true),
                "check {i}"
            );
            assert_eq!(entries(&counted), entries(&always), "check {i}");
            if full_at.is_none() && counted.unwritten.0.load(Relaxed) == 0 {
                full_at = Some(i);
            }
        }
        assert!(entries(&counted).iter().all(|&e| !is_empty(e)));
        let full_at = full_at.expect("the table filled");
        assert!(full_at < 2_500, "full after {full_at} checks");
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
        // One key per tick (the stamps' resolution), all within the window.
        let at = |i: u64| SECOND + i * tick_ns(&t);
        for i in 0..CANDIDATES as u64 {
            assert_eq!(t.check(key(i), 0, at(i)), Seen::New);
        }
        assert_eq!(t.check(key(100), 0, at(16)), Seen::NewEvictedLive);
        // The oldest (key 0) went; the others are still there.
        for i in 1..CANDIDATES as u64 {
            assert_eq!(t.check(key(i), 0, at(17)), Seen::Duplicate);
        }
        assert_eq!(t.check(key(0), 0, at(18)), Seen::NewEvictedLive);
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
        // A worker whose clock reads earlier (by less than the lag the table tolerates) evicts
        // one; the entry keeps the later stamp.
        let earlier = 10 * SECOND - (FUTURE_TICKS - 4) * tick_ns(&t);
        assert_eq!(t.check(key(99), 0, earlier), Seen::NewEvictedLive);
        let later = (10 * SECOND) >> t.tick_shift;
        let stamps: Vec<u64> = entries(&t).iter().map(|e| e & STAMP_MASK).collect();
        assert!(
            stamps.iter().all(|&s| s == later & STAMP_MASK),
            "{stamps:?}"
        );
        assert_eq!(t.check(key(99), 0, 10 * SECOND), Seen::Duplicate);
    }

    /// The ticks of `t` as a check at `now_ns` reads them.
    fn stamp_at(t: &DedupTable, now_ns: u64) -> u64 {
        (now_ns >> t.tick_shift) & STAMP_MASK
    }

    #[test]
    fn an_entry_packs_50_bits_of_fingerprint_over_a_14_bit_stamp() {
        let t = table(0);
        let now = 7 * SECOND;
        assert_eq!(t.check(key(3), 5, now), Seen::New);
        let written: Vec<u64> = entries(&t).into_iter().filter(|&e| e != 0).collect();
        let probe = t.locate(key(3), 5);
        let span = (now >> t.tick_shift) >> STAMP_BITS;
        assert_eq!(
            written,
            [probe.stored_fingerprint(span) | stamp_at(&t, now)]
        );
        // The fingerprint bits are the top 50 of the group-salted fingerprint, salted with the
        // stamp's span.
        assert_eq!(
            written[0] >> STAMP_BITS,
            (key(3).fingerprint
                ^ 6u64.wrapping_mul(GROUP_FINGERPRINT_SALT)
                ^ span.wrapping_mul(SPAN_FINGERPRINT_SALT))
                >> STAMP_BITS
        );
    }

    /// What a stage prefetches is what a check reads and writes.
    #[test]
    fn buckets_of_are_the_buckets_a_check_uses() {
        let t = table(1 << 12);
        for i in 0..200 {
            let (k, group) = (key(i), (i % 3) as u16);
            let [first, second] = t.buckets_of(k, group);
            assert!(std::ptr::eq(first, t.bucket_of(k, group)));
            assert!(!std::ptr::eq(first, second));
            assert_eq!(t.check(k, group, SECOND), Seen::New);
            let span = (SECOND >> t.tick_shift) >> STAMP_BITS;
            let entry = t.locate(k, group).stored_fingerprint(span) | stamp_at(&t, SECOND);
            let here = [first, second]
                .iter()
                .flat_map(|b| &b.entries)
                .filter(|e| e.load(Relaxed) == entry)
                .count();
            assert_eq!(here, 1, "key {i}");
            assert_eq!(entries(&t).iter().filter(|&&e| e == entry).count(), 1);
        }
        assert_eq!(t.occupancy(SECOND), 200);
    }

    #[test]
    fn fingerprint_zero_is_reserved_for_empty_entries() {
        let t = table(0);
        // Group 0's salt is 1 × GROUP_FINGERPRINT_SALT and span 0's salt is 0: this key's stored
        // fingerprint would be 0, the mark of an empty entry; it is stored as 1.
        let k = DedupKey {
            hash: 3,
            fingerprint: GROUP_FINGERPRINT_SALT,
        };
        assert_eq!(t.check(k, 0, 5), Seen::New);
        let written: Vec<u64> = entries(&t).into_iter().filter(|&e| e != 0).collect();
        assert_eq!(written, [1 << STAMP_BITS]);
        assert_eq!(t.occupancy(5), 1);
        // Empty entries are never live and are taken before any written one, even one stamped
        // at the same tick.
        for i in 0..CANDIDATES as u64 - 1 {
            assert_eq!(t.check(key(i), 0, 5), Seen::New, "key {i}");
        }
        assert_eq!(t.occupancy(5), CANDIDATES);
        assert_eq!(t.check(k, 0, 6), Seen::Duplicate);
    }

    /// For windows from 1 ns to an hour, first sightings at every phase of a tick and across
    /// span boundaries: a copy within the window is a duplicate, one two ticks after it is new,
    /// and a tick is at most 1/32 of the window.
    #[test]
    fn window_boundaries_hold_for_every_window_and_phase() {
        let windows_ns = [
            1,
            2,
            63,
            64,
            65,
            1_000,
            200_000,
            50_000_000,
            SECOND,
            10 * SECOND,
            3_600 * SECOND,
        ];
        for (w, window_ns) in windows_ns.into_iter().enumerate() {
            let t = DedupTable::new(1 << 12, Duration::from_nanos(window_ns));
            let tick = tick_ns(&t);
            if window_ns >= 64 {
                assert!(32 * tick < window_ns, "window {window_ns}: tick {tick}");
                assert!(64 * tick >= window_ns, "window {window_ns}: tick {tick}");
            }
            let span_ns = tick << STAMP_BITS;
            let bases = [
                0,
                1_000 * span_ns,
                // The last ticks of a span: the window straddles the span boundary.
                7 * span_ns - tick * (TICKS_PER_WINDOW / 2),
                u64::MAX / 4,
            ];
            let phases = [0, 1, tick / 2, tick - 1];
            for (b, base) in bases.into_iter().enumerate() {
                for (p, phase) in phases.into_iter().enumerate() {
                    let k = key(((w * 100 + b * 10 + p) as u64) << 40);
                    let first = base - base % tick + phase;
                    assert_eq!(t.check(k, 0, first), Seen::New);
                    let last_duplicate = first + window_ns - 1;
                    assert_eq!(
                        t.check(k, 0, last_duplicate),
                        Seen::Duplicate,
                        "window {window_ns}, base {base}, phase {phase}"
                    );
                    // A reader whose clock is behind the writer's by less than the lag the table
                    // tolerates still sees it.
                    let lagging = first.saturating_sub((FUTURE_TICKS - 1) * tick);
                    assert_eq!(t.check(k, 0, lagging), Seen::Duplicate);
                    let forgotten = first + window_ns + 2 * tick - 2;
                    assert_eq!(
                        t.check(k, 0, forgotten),
                        Seen::New,
                        "window {window_ns}, base {base}, phase {phase}"
                    );
                }
            }
        }
    }

    /// Stamps wrap every span (2^14 ticks): an entry left untouched for a whole span has the
    /// stamp of a live one, but its fingerprint was salted with its own span, so the same key
    /// does not match it.
    #[test]
    fn an_entry_a_whole_span_old_looks_live_but_does_not_match() {
        let t = table(1 << 12);
        let span_ns = tick_ns(&t) << STAMP_BITS;
        let first = 3 * SECOND;
        assert_eq!(t.check(key(1), 0, first), Seen::New);
        for (written, spans) in [1, 2, 5].into_iter().enumerate() {
            let later = first + spans * span_ns;
            // The stamps alone look live again (the limitation the span salt makes harmless):
            // every entry written so far, all at the same phase of a span.
            assert_eq!(t.occupancy(later), written + 1, "{spans} spans");
            assert_eq!(t.check(key(1), 0, later), Seen::New, "{spans} spans");
            assert_eq!(t.check(key(1), 0, later + 1), Seen::Duplicate);
        }
    }

    #[test]
    fn duplicates_are_found_across_a_span_boundary() {
        let t = table(0);
        let tick = tick_ns(&t);
        let boundary = 9 * (tick << STAMP_BITS);
        // Written in the last tick of a span, checked in the first of the next.
        assert_eq!(t.check(key(1), 0, boundary - 1), Seen::New);
        assert_eq!(t.check(key(1), 0, boundary), Seen::Duplicate);
        // Written in the first tick of a span, checked by a clock still in the previous span.
        assert_eq!(t.check(key(2), 0, boundary), Seen::New);
        assert_eq!(t.check(key(2), 0, boundary - 3 * tick), Seen::Duplicate);
        // A lagging check that keeps a victim's stamp from the next span stores the key's
        // fingerprint for that span, not for its own clock's.
        for i in 3..CANDIDATES as u64 + 1 {
            assert_eq!(t.check(key(i), 0, boundary + 2 * tick), Seen::New);
        }
        assert_eq!(
            t.check(key(100), 0, boundary - 2 * tick),
            Seen::NewEvictedLive
        );
        assert_eq!(t.check(key(100), 0, boundary + 3 * tick), Seen::Duplicate);
        assert_eq!(t.check(key(100), 0, boundary - 2 * tick), Seen::Duplicate);
    }

    /// Checks from clocks that disagree by up to the tolerated lag, on a table so small that
    /// every check replaces an entry: every write leaves a stamp no older than the one it
    /// replaced and no older than the writer's clock.
    #[test]
    fn stamps_never_go_backwards() {
        let t = DedupTable::new(0, Duration::from_micros(500));
        let tick = tick_ns(&t);
        let mut state = 0x1234_5678_u64;
        let mut random = move || {
            state = mix(state);
            state
        };
        let mut now = 1_000 * SECOND;
        let mut before = entries(&t);
        for i in 0..200_000u64 {
            now += random() % (3 * tick);
            let clock = now - random() % ((FUTURE_TICKS - 1) * tick);
            let reference = t.clock(now);
            t.check(key(random() % 64), (i % 2) as u16, clock);
            let after = entries(&t);
            for (&old, &new) in before.iter().zip(&after) {
                if old != new {
                    assert!(!is_empty(new));
                    assert!(
                        is_empty(old) || reference.oldness(new) <= reference.oldness(old),
                        "check {i}: {old:#x} -> {new:#x}"
                    );
                    assert!(t.clock(clock).oldness(new) <= FUTURE_TICKS);
                }
            }
            before = after;
        }
    }

    /// The clock may be anywhere in the u64 range, up to its end (ticks wrap like stamps).
    #[test]
    fn works_at_the_end_of_the_clock() {
        let t = DedupTable::new(64, Duration::from_nanos(50));
        let end = u64::MAX - 10;
        assert_eq!(t.check(key(1), 0, end), Seen::New);
        assert_eq!(t.check(key(1), 0, end + 10), Seen::Duplicate);
        assert_eq!(t.check(key(1), 0, end - 60), Seen::Duplicate);
        assert_eq!(t.occupancy(u64::MAX), 1);
    }

    #[test]
    fn a_window_of_zero_keeps_nothing() {
        let t = DedupTable::new(64, Duration::ZERO);
        for now in [0, 5, 5, 1_000] {
            assert_eq!(t.check(key(1), 0, now), Seen::New);
        }
        assert_eq!(t.occupancy(5), 0);
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
        let probe = t.locate(key, group);
        let clock = t.clock(now_ns);
        let wanted = Wanted::new(&probe, clock);
        match scan(&probe, clock, wanted, true) {
            Scan::Duplicate => Seen::Duplicate,
            Scan::Replace {
                index,
                current,
                oldness,
            } => {
                let new = new_entry(clock, wanted, current, oldness);
                probe.slot(index).store(new, Relaxed);
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
        let probe = t.locate(key, group);
        let clock = t.clock(now_ns);
        let wanted = Wanted::new(&probe, clock);
        let live = |entry: u64| !is_empty(entry) && clock.oldness(entry) < clock.live_below;
        loop {
            if scan(&probe, clock, wanted, true) == Scan::Duplicate {
                return Seen::Duplicate;
            }
            let view: [u64; CANDIDATES] = std::array::from_fn(|i| probe.slot(i).load(Relaxed));
            let index = (0..CANDIDATES)
                .map(|i| (preferred + i) % CANDIDATES)
                .find(|&i| !live(view[i]))
                .unwrap_or(preferred);
            let new = new_entry(clock, wanted, view[index], clock.oldness(view[index]));
            if probe
                .slot(index)
                .compare_exchange(view[index], new, Relaxed, Relaxed)
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
