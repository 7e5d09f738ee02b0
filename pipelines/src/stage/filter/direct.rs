//! The IPv4 address dimension of large filters: a direct-indexed first level (DIR-16) in front
//! of the interval tree.
//!
//! # Design
//! The elementary intervals are those of [`IntervalMap`]; only the search changes. A table of
//! 65,536 slots, one per /16 (the top 16 bits of the address), gives the interval containing the
//! /16's first address. When at most [`WINDOW`] interval starts fall inside the rest of the /16,
//! the key's interval is that one plus the number of the following [`WINDOW`] starts at or below
//! the key: one table load and one compare-and-add over a few consecutive keys, without a branch
//! on the key, instead of a walk of five or six tree levels. A /16 with more starts (a dense one)
//! is tagged and searched in the tree, as before.
//!
//! The window needs no count of the /16's starts: the starts after them lie in later /16s (or
//! are the `u32::MAX` padding), above any key of this /16, so they add nothing. The only key the
//! padding can count is `u32::MAX` itself, which then lands in the padding of `rows`, the last
//! interval's rules: the right ones, since the last interval runs to `u32::MAX`.
//!
//! Small filters do without the table (see [`DIRECT_MIN_INTERVALS`]): their trees are one or two
//! levels deep, cheaper than a load from a 256 KiB table that random addresses spread over L2.

use super::interval::{Interval, IntervalMap};
use super::rule_set::RowId;

/// Keys per node of the IPv4 search tree (fan-out 4).
///
/// Measured with 1,000 rules (≈ 1,100 intervals per family and dimension): 3 keys per node
/// beat 1 (binary), 4, 7 and 15, whose deeper or wider steps cost more than they save.
const TREE_KEYS: usize = 3;

/// Interval starts a /16 may hold and still be searched by the window.
const WINDOW: usize = 4;

/// The direct table is built above this many intervals (tree depth 4 and more).
const DIRECT_MIN_INTERVALS: usize = 0;

/// Tag of a slot whose /16 holds more than [`WINDOW`] starts: search the tree.
const DENSE: u32 = 1 << 31;

/// IPv4 address → the rules whose CIDR contains it.
#[derive(Clone, Debug)]
pub(super) struct V4Map {
    tree: IntervalMap<u32, TREE_KEYS>,
    direct: Option<Dir16>,
}

/// The direct first level.
#[derive(Clone, Debug)]
struct Dir16 {
    /// Per /16: the index (in `rows`) of the interval holding its first address, or [`DENSE`].
    slots: Box<[u32; 1 << 16]>,
    /// The interval starts but the first (`0`), then [`WINDOW`] × `u32::MAX`: `later_starts[i]`
    /// is where interval `i + 1` starts.
    later_starts: Box<[u32]>,
    /// The rules of each interval, padded with the last interval's to `later_starts.len() + 1`.
    rows: Box<[RowId]>,
}

impl V4Map {
    /// `intervals`: as `elementary_intervals` cuts them (at least one, from 0).
    pub(super) fn new(intervals: &[Interval<u32>]) -> V4Map {
        V4Map::with_threshold(intervals, DIRECT_MIN_INTERVALS)
    }

    /// [`Self::new`], with the table built above `direct_min_intervals` intervals.
    pub(super) fn with_threshold(
        intervals: &[Interval<u32>],
        direct_min_intervals: usize,
    ) -> V4Map {
        V4Map {
            tree: IntervalMap::new(intervals),
            direct: (intervals.len() > direct_min_intervals).then(|| Dir16::new(intervals)),
        }
    }

    /// The rules whose CIDR contains `key`.
    #[inline]
    pub(super) fn lookup(&self, key: u32) -> RowId {
        match &self.direct {
            Some(direct) => direct.lookup(key, &self.tree),
            None => self.tree.lookup(key),
        }
    }

    /// Whether the direct table was built.
    #[cfg(test)]
    pub(super) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Whether `key` is searched in the tree although the table was built (its /16 is dense).
    #[cfg(test)]
    pub(super) fn is_dense(&self, key: u32) -> bool {
        self.direct
            .as_ref()
            .is_some_and(|direct| direct.slots[(key >> 16) as usize] & DENSE != 0)
    }

    /// Elementary intervals.
    pub(super) fn interval_count(&self) -> usize {
        self.tree.interval_count()
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.tree.memory_bytes()
            + self.direct.as_ref().map_or(0, |direct| {
                size_of_val(&*direct.slots)
                    + size_of_val(&*direct.later_starts)
                    + size_of_val(&*direct.rows)
            })
    }
}

impl Dir16 {
    fn new(intervals: &[Interval<u32>]) -> Dir16 {
        let starts: Vec<u32> = intervals.iter().map(|interval| interval.first).collect();
        let mut slots = vec![0u32; 1 << 16];
        // `next`: the first start above the /16's first address.
        let mut next = 1;
        for (slot, prefix) in slots.iter_mut().zip(0u32..) {
            let (first, last) = (prefix << 16, prefix << 16 | 0xFFFF);
            while starts.get(next).is_some_and(|&start| start <= first) {
                next += 1;
            }
            let inside = starts[next..]
                .iter()
                .take_while(|&&start| start <= last)
                .count();
            *slot = if inside > WINDOW {
                DENSE
            } else {
                // At most 2 × 65,536 + 1 intervals (two boundaries per rule): below the tag.
                u32::try_from(next - 1).expect("fewer than 2^31 intervals")
            };
        }
        let later_starts: Vec<u32> = starts
            .iter()
            .skip(1)
            .copied()
            .chain([u32::MAX; WINDOW])
            .collect();
        let mut rows: Vec<RowId> = intervals.iter().map(|interval| interval.rules).collect();
        let last = *rows.last().expect("there is always the interval from 0");
        rows.resize(later_starts.len() + 1, last);
        Dir16 {
            slots: slots
                .into_boxed_slice()
                .try_into()
                .expect("one slot per /16"),
            later_starts: later_starts.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
        }
    }

    /// The interval of the /16's first address, plus the starts of the window at or below
    /// `key`. The slices cannot fail: a slot is below the interval count, `later_starts` holds
    /// `WINDOW` more entries than that and `rows` one more than `later_starts`.
    #[inline]
    fn lookup(&self, key: u32, tree: &IntervalMap<u32, TREE_KEYS>) -> RowId {
        let slot = self.slots[(key >> 16) as usize];
        if slot & DENSE != 0 {
            return tree.lookup(key);
        }
        let base = slot as usize;
        let window = &self.later_starts[base..base + WINDOW];
        let later: usize = window.iter().map(|&start| usize::from(start <= key)).sum();
        self.rows[base + later]
    }
}

#[cfg(test)]
mod tests {
    use super::super::interval::{RuleRange, elementary_intervals};
    use super::super::rule_set::{RuleBits, RuleSets, RuleSetsBuilder};
    use super::*;

    /// Maps of `ranges` over rules `0..ranges.len()` (rule `i` has `ranges[i]`): the tree alone
    /// and with the table, and their sets.
    fn maps(ranges: &[(u32, u32)]) -> (V4Map, V4Map, RuleSets) {
        let ranges: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(rule, &(first, last))| RuleRange { rule, first, last })
            .collect();
        let mut sets = RuleSetsBuilder::new(ranges.len());
        let intervals = elementary_intervals(&ranges, &RuleBits::empty(ranges.len()), &mut sets);
        let tree = V4Map::with_threshold(&intervals, usize::MAX);
        let direct = V4Map::with_threshold(&intervals, 0);
        assert!(!tree.is_direct());
        assert!(direct.is_direct());
        (tree, direct, sets.finish())
    }

    /// Every rule containing `key`, by a scan of `ranges`.
    fn scan(ranges: &[(u32, u32)], key: u32) -> Vec<usize> {
        (0..ranges.len())
            .filter(|&rule| ranges[rule].0 <= key && key <= ranges[rule].1)
            .collect()
    }

    /// Checks `keys` on both maps against the scan.
    fn check(ranges: &[(u32, u32)], keys: impl IntoIterator<Item = u32>) {
        let (tree, direct, sets) = maps(ranges);
        for key in keys {
            let expected = scan(ranges, key);
            assert_eq!(
                sets.members(direct.lookup(key)),
                expected,
                "key {key:#010x}"
            );
            assert_eq!(sets.members(tree.lookup(key)), expected, "key {key:#010x}");
        }
    }

    /// The keys around `point`: one below, itself, one above (within `u32`).
    fn around(point: u32) -> [u32; 3] {
        [point.saturating_sub(1), point, point.saturating_add(1)]
    }

    #[test]
    fn both_ends_of_the_space() {
        let ranges = [
            (0, 0),
            (u32::MAX, u32::MAX),
            (0, u32::MAX),
            (0xFFFF_0000, u32::MAX),
        ];
        let keys = [
            0,
            1,
            0xFFFF,
            0x1_0000,
            0xFFFE_FFFF,
            0xFFFF_0000,
            u32::MAX - 1,
            u32::MAX,
        ];
        check(&ranges, keys);
        let (_, direct, _) = maps(&ranges);
        assert!(!direct.is_dense(0) && !direct.is_dense(u32::MAX));
    }

    #[test]
    fn the_last_slash_16_full_of_starts_ends_at_the_padding() {
        // More starts than the window in 255.255/16, and one range ending at its last address.
        let ranges: Vec<(u32, u32)> = (0..10)
            .map(|index| {
                (
                    0xFFFF_0000 + index * 0x100,
                    0xFFFF_0000 + index * 0x100 + 0x7F,
                )
            })
            .chain([(0xFFFF_FF00, u32::MAX)])
            .collect();
        let (_, direct, _) = maps(&ranges);
        assert!(direct.is_dense(u32::MAX));
        let mut keys: Vec<u32> = ranges.iter().flat_map(|&(a, b)| [a, b]).collect();
        keys.extend(keys.clone().iter().flat_map(|&key| around(key)));
        check(&ranges, keys);
        // Exactly WINDOW starts inside the last /16 (the window then counts the padding for
        // u32::MAX only).
        let ranges: Vec<(u32, u32)> = (0..WINDOW as u32 / 2)
            .map(|index| {
                (
                    0xFFFF_1000 + index * 0x100,
                    0xFFFF_1000 + index * 0x100 + 0x7F,
                )
            })
            .collect();
        let (_, direct, _) = maps(&ranges);
        assert!(!direct.is_dense(u32::MAX));
        let keys: Vec<u32> = ranges
            .iter()
            .flat_map(|&(a, b)| around(a).into_iter().chain(around(b)))
            .chain([0xFFFF_0000, 0xFFFF_FFFE, u32::MAX])
            .collect();
        check(&ranges, keys);
    }

    #[test]
    fn intervals_starting_exactly_on_a_slash_16() {
        // 10.1.0.0/16 and 10.2.0.0/15 start on a /16 start, 10.1.0.0/24 too; the slot of 10.1
        // must already include the interval starting at its first address.
        let ranges = [
            (0x0A01_0000, 0x0A01_FFFF),
            (0x0A02_0000, 0x0A03_FFFF),
            (0x0A01_0000, 0x0A01_00FF),
            (0x0A04_0000, 0x0A04_0000),
        ];
        let mut keys = Vec::new();
        for &(first, last) in &ranges {
            keys.extend(around(first));
            keys.extend(around(last));
        }
        keys.extend([
            0x0A00_FFFF,
            0x0A01_0100,
            0x0A03_FFFF,
            0x0A04_0001,
            0x0A04_FFFF,
        ]);
        check(&ranges, keys);
    }

    #[test]
    fn a_slash_16_with_many_boundaries_falls_back_to_the_tree() {
        // 192.168/16 with 40 host routes (dense: the tree), 10.x with one /24 each (direct),
        // and the window's edge: a /16 with exactly WINDOW starts and one with WINDOW + 1.
        let mut ranges: Vec<(u32, u32)> = (0..40)
            .map(|i| (0xC0A8_0000 + i * 997, 0xC0A8_0000 + i * 997))
            .collect();
        ranges.extend((0..30).map(|i| {
            (
                0x0A00_0000 + (i << 16) + 0x100,
                0x0A00_0000 + (i << 16) + 0x1FF,
            )
        }));
        // 11.0/16: WINDOW starts (host routes, each a start and the start after it).
        let host_routes = |slash_8: u32, count: u32| {
            (0..count).map(move |i| (slash_8 << 24 | (i + 1) << 4, slash_8 << 24 | (i + 1) << 4))
        };
        ranges.extend(host_routes(11, WINDOW as u32 / 2));
        // 12.0/16: WINDOW + 1 starts, the last range ending with the /16.
        ranges.extend(host_routes(12, WINDOW as u32 / 2));
        ranges.push((0x0C00_F000, 0x0C00_FFFF));
        let (_, direct, _) = maps(&ranges);
        assert!(direct.is_dense(0xC0A8_1234));
        assert!(!direct.is_dense(0x0A05_0000));
        assert!(!direct.is_dense(0x0B00_0000));
        assert!(direct.is_dense(0x0C00_0000));
        let mut keys: Vec<u32> = ranges
            .iter()
            .flat_map(|&(a, b)| around(a).into_iter().chain(around(b)))
            .collect();
        keys.extend([
            0xC0A7_FFFF,
            0xC0A8_0000,
            0xC0A8_FFFF,
            0xC0A9_0000,
            0x0B00_FFFF,
            0x0C01_0000,
        ]);
        check(&ranges, keys);
    }

    #[test]
    fn many_ranges_agree_with_a_scan() {
        // Pseudo-random nested and overlapping ranges of every size, concentrated in a few
        // /8s so that both dense and sparse /16s occur; keys at every boundary and random.
        let mut state = 0x9E37_79B9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let ranges: Vec<(u32, u32)> = (0..600)
            .map(|_| {
                let first = match next() % 3 {
                    0 => 0x0A00_0000 | next() & 0x00FF_FFFF,
                    1 => 0xC0A8_0000 | next() & 0xFFFF,
                    _ => next(),
                };
                let prefix = [8, 16, 20, 24, 28, 32][(next() % 6) as usize];
                let mask = u32::MAX.checked_shr(prefix).unwrap_or(0);
                (first & !mask, first | mask)
            })
            .collect();
        let (_, direct, _) = maps(&ranges);
        let keys: Vec<u32> = (0..20_000).map(|_| next()).collect();
        assert!(keys.iter().any(|&key| direct.is_dense(key)));
        assert!(keys.iter().any(|&key| !direct.is_dense(key)));
        let mut keys: Vec<u32> = keys;
        keys.extend(
            ranges
                .iter()
                .flat_map(|&(a, b)| around(a).into_iter().chain(around(b))),
        );
        keys.extend((0..=u16::MAX).map(|prefix| u32::from(prefix) << 16));
        check(&ranges, keys);
    }

    #[test]
    fn small_maps_keep_the_tree_alone() {
        let ranges = [RuleRange {
            rule: 0,
            first: 0x0A00_0000,
            last: 0x0AFF_FFFF,
        }];
        let mut sets = RuleSetsBuilder::new(1);
        let intervals = elementary_intervals(&ranges, &RuleBits::empty(1), &mut sets);
        assert!(!V4Map::new(&intervals).is_direct());
    }
}
