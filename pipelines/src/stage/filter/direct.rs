//! The IPv4 address dimension: direct-indexed levels (DIR-16, then /24 where needed) in front
//! of the interval tree.
//!
//! # Design
//! The elementary intervals are those of [`IntervalMap`]; only the search changes. A table of
//! 65,536 slots, one per /16 (the top 16 bits of the address), gives the interval containing the
//! /16's first address. When at most [`WINDOW`] interval starts fall inside the rest of the /16,
//! the key's interval is that one plus the number of the following [`WINDOW`] starts at or below
//! the key: one table load and one compare-and-add over a few consecutive keys, without a branch
//! on the key, instead of a walk of up to six tree levels. A /16 with more starts (a dense one)
//! points at 256 entries, one per /24, searched the same way; a /24 with more than [`WINDOW`]
//! starts is searched in the tree.
//!
//! The window needs no count of the /16's (or /24's) starts: the starts after them lie in later
//! blocks (or are the `u32::MAX` padding), above any key of this one, so they add nothing. The
//! only key the padding can count is `u32::MAX` itself, which then lands in the padding of
//! `rows`, the last interval's rules: the right ones, since the last interval runs to
//! `u32::MAX`.
//!
//! The slots and entries are `u16` (128 KiB per dimension and 512 bytes per dense /16): the
//! table is built when the dimension has at most [`MAX_DIRECT_INTERVALS`] intervals, which
//! leaves the tree alone only beyond ≈ 16,000 IPv4 CIDRs in one dimension.
//!
//! Every filter gets the table, the smallest too: at 10 rules (about ten intervals, a tree two
//! levels deep) it is still a little faster than the tree alone. The filter module docs give
//! the figures, and those of the variants tried (wider windows, a branch-free /24 level, `u32`
//! slots, the tree alone for small filters).
//!
//! # Limitations
//! The table costs 128 KiB per dimension whatever the filter's size, plus 512 bytes per dense
//! /16.

use super::interval::{Interval, IntervalMap};
use super::rule_set::RowId;

/// Keys per node of the IPv4 search tree (fan-out 4).
///
/// Measured with 1,000 rules (≈ 1,100 intervals per family and dimension): 3 keys per node
/// beat 1 (binary), 4, 7 and 15, whose deeper or wider steps cost more than they save.
const TREE_KEYS: usize = 3;

/// Interval starts a /16 or a /24 may hold and still be searched by the window.
const WINDOW: usize = 4;

/// Tag of a slot whose /16 holds more than [`WINDOW`] starts (it has an entry per /24), and of
/// an entry whose /24 does (search the tree). Interval indices and block numbers stay below it.
const TAG: u16 = 1 << 15;

/// The table is built up to this many intervals: their indices fit beside the tag.
const MAX_DIRECT_INTERVALS: usize = TAG as usize;

/// Which search a key takes (tests check that each is exercised).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Path {
    /// The tree alone: no table was built.
    TreeOnly,
    /// The window after the /16's first address.
    Slash16,
    /// The window after the /24's first address (the /16 is dense).
    Slash24,
    /// The tree (the /24 is dense).
    DenseSlash24,
}

/// IPv4 address → the rules whose CIDR contains it.
#[derive(Clone, Debug)]
pub(super) struct V4Map {
    tree: IntervalMap<u32, TREE_KEYS>,
    direct: Option<Dir16>,
}

/// The direct levels.
#[derive(Clone, Debug)]
struct Dir16 {
    /// Per /16: the index (in `rows`) of the interval holding its first address, or, tagged,
    /// the number of its block of 256 entries (one per /24) in `entries`.
    slots: Box<[u16; 1 << 16]>,
    /// The index (in `rows`) of the interval holding the /24's first address, or [`TAG`].
    entries: Box<[u16]>,
    /// The interval starts but the first (`0`), then [`WINDOW`] × `u32::MAX`: `later_starts[i]`
    /// is where interval `i + 1` starts.
    later_starts: Box<[u32]>,
    /// The rules of each interval, padded with the last interval's to `later_starts.len() + 1`.
    rows: Box<[RowId]>,
}

impl V4Map {
    /// `intervals`: as `elementary_intervals` cuts them (at least one, from 0).
    pub(super) fn new(intervals: &[Interval<u32>]) -> V4Map {
        V4Map::with_limit(intervals, MAX_DIRECT_INTERVALS)
    }

    /// [`Self::new`], with the table built up to `max_direct_intervals` intervals (at most
    /// [`MAX_DIRECT_INTERVALS`]).
    fn with_limit(intervals: &[Interval<u32>], max_direct_intervals: usize) -> V4Map {
        let direct = intervals.len() <= max_direct_intervals.min(MAX_DIRECT_INTERVALS);
        V4Map {
            tree: IntervalMap::new(intervals),
            direct: direct.then(|| Dir16::new(intervals)),
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

    /// The search `key` takes.
    #[cfg(test)]
    pub(super) fn path(&self, key: u32) -> Path {
        let Some(direct) = &self.direct else {
            return Path::TreeOnly;
        };
        let slot = direct.slots[(key >> 16) as usize];
        match (slot & TAG != 0, direct.entry(key) & TAG != 0) {
            (false, _) => Path::Slash16,
            (true, false) => Path::Slash24,
            (true, true) => Path::DenseSlash24,
        }
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
                    + size_of_val(&*direct.entries)
                    + size_of_val(&*direct.later_starts)
                    + size_of_val(&*direct.rows)
            })
    }
}

impl Dir16 {
    /// `intervals`: at least one (from 0), at most [`MAX_DIRECT_INTERVALS`].
    fn new(intervals: &[Interval<u32>]) -> Dir16 {
        let starts: Vec<u32> = intervals.iter().map(|interval| interval.first).collect();
        // Index of the interval holding `address` (the first start is 0).
        let holding = |address: u32| starts.partition_point(|&start| start <= address) - 1;
        // Starts in `first + 1 ..= last`.
        let inside = |first: u32, last: u32| holding(last) - holding(first);
        // Below the tag: fewer intervals than MAX_DIRECT_INTERVALS, and fewer blocks (each
        // holds more than WINDOW starts).
        let narrow = |index: usize| {
            u16::try_from(index)
                .ok()
                .filter(|&index| index < TAG)
                .expect("at most MAX_DIRECT_INTERVALS intervals")
        };
        let mut slots = vec![0u16; 1 << 16];
        let mut entries: Vec<u16> = Vec::new();
        for (slot, prefix) in slots.iter_mut().zip(0u32..) {
            let (first, last) = (prefix << 16, prefix << 16 | 0xFFFF);
            if inside(first, last) <= WINDOW {
                *slot = narrow(holding(first));
                continue;
            }
            *slot = narrow(entries.len() / 256) | TAG;
            for low in 0..256 {
                let (first, last) = (first | low << 8, first | low << 8 | 0xFF);
                entries.push(if inside(first, last) <= WINDOW {
                    narrow(holding(first))
                } else {
                    TAG
                });
            }
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
            entries: entries.into_boxed_slice(),
            later_starts: later_starts.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
        }
    }

    /// The entry of `key`: its /16's slot, or when that is tagged, its /24's entry. A branch,
    /// not a mask: see the module docs.
    #[inline]
    fn entry(&self, key: u32) -> u16 {
        let slot = self.slots[(key >> 16) as usize];
        if slot & TAG == 0 {
            return slot;
        }
        let block = usize::from(slot & !TAG);
        self.entries[block * 256 + (key >> 8 & 0xFF) as usize]
    }

    /// The interval of the /16's or /24's first address, plus the starts of the window at or
    /// below `key`. The indexing cannot fail: a tagged slot numbers a block of 256 entries, an
    /// untagged slot or entry is below the interval count, `later_starts` holds `WINDOW` more
    /// starts than that and `rows` one more than `later_starts`.
    #[inline]
    fn lookup(&self, key: u32, tree: &IntervalMap<u32, TREE_KEYS>) -> RowId {
        let entry = self.entry(key);
        if entry & TAG != 0 {
            return tree.lookup(key);
        }
        let base = usize::from(entry);
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
        let tree = V4Map::with_limit(&intervals, 0);
        let direct = V4Map::new(&intervals);
        (tree, direct, sets.finish())
    }

    /// Every rule containing `key`, by a scan of `ranges`.
    fn scan(ranges: &[(u32, u32)], key: u32) -> Vec<usize> {
        (0..ranges.len())
            .filter(|&rule| ranges[rule].0 <= key && key <= ranges[rule].1)
            .collect()
    }

    /// Checks `keys` on both maps against the scan; returns the direct map's paths of `keys`.
    fn check(ranges: &[(u32, u32)], keys: impl IntoIterator<Item = u32>) -> Vec<Path> {
        let (tree, direct, sets) = maps(ranges);
        let mut paths = Vec::new();
        for key in keys {
            let expected = scan(ranges, key);
            assert_eq!(
                sets.members(direct.lookup(key)),
                expected,
                "key {key:#010x}"
            );
            assert_eq!(sets.members(tree.lookup(key)), expected, "key {key:#010x}");
            assert_eq!(tree.path(key), Path::TreeOnly);
            paths.push(direct.path(key));
        }
        paths
    }

    /// The path of `key` in the direct map of `ranges`.
    fn path(ranges: &[(u32, u32)], key: u32) -> Path {
        maps(ranges).1.path(key)
    }

    /// The keys around `point`: one below, itself, one above (within `u32`).
    fn around(point: u32) -> [u32; 3] {
        [point.saturating_sub(1), point, point.saturating_add(1)]
    }

    /// Every range's ends and their neighbours.
    fn edges(ranges: &[(u32, u32)]) -> Vec<u32> {
        ranges
            .iter()
            .flat_map(|&(first, last)| around(first).into_iter().chain(around(last)))
            .collect()
    }

    /// `count` host routes at `base + 16`, `base + 32`, …: two starts each.
    fn host_routes(base: u32, count: u32) -> impl Iterator<Item = (u32, u32)> {
        (1..=count).map(move |i| (base + i * 16, base + i * 16))
    }

    #[test]
    fn both_ends_of_the_space() {
        let ranges = [
            (0, 0),
            (u32::MAX, u32::MAX),
            (0, u32::MAX),
            (0xFFFF_0000, u32::MAX),
        ];
        let mut keys = edges(&ranges);
        keys.extend([0xFFFF, 0x1_0000, 0xFFFE_FFFF, 0xFFFF_FFFE]);
        check(&ranges, keys);
        assert_eq!(path(&ranges, 0), Path::Slash16);
        assert_eq!(path(&ranges, u32::MAX), Path::Slash16);
    }

    #[test]
    fn the_last_address_on_every_path() {
        let last_keys = [0xFFFF_0000, 0xFFFF_FF00, 0xFFFF_FFFE, u32::MAX];
        // The last /16 with exactly WINDOW starts: its window counts the padding for
        // u32::MAX only.
        let ranges: Vec<_> = host_routes(0xFFFF_1000, WINDOW as u32 / 2).collect();
        assert_eq!(path(&ranges, u32::MAX), Path::Slash16);
        check(&ranges, edges(&ranges).into_iter().chain(last_keys));
        // More: one entry per /24, the last /24 with exactly WINDOW starts, one range ending
        // at u32::MAX.
        let ranges: Vec<_> = host_routes(0xFFFF_1000, WINDOW as u32)
            .chain(host_routes(0xFFFF_FF00, WINDOW as u32 / 2 - 1))
            .chain([(0xFFFF_FFF0, u32::MAX)])
            .collect();
        assert_eq!(path(&ranges, u32::MAX), Path::Slash24);
        check(&ranges, edges(&ranges).into_iter().chain(last_keys));
        // More in the last /24: the tree.
        let ranges: Vec<_> = host_routes(0xFFFF_FF00, WINDOW as u32)
            .chain([(0xFFFF_FFF0, u32::MAX)])
            .collect();
        assert_eq!(path(&ranges, u32::MAX), Path::DenseSlash24);
        assert_eq!(path(&ranges, 0xFFFF_FE00), Path::Slash24);
        check(&ranges, edges(&ranges).into_iter().chain(last_keys));
    }

    #[test]
    fn intervals_starting_exactly_on_a_slash_16_or_a_slash_24() {
        // 10.1.0.0/16 and 10.2.0.0/15 start on a /16 start, 10.1.0.0/24 too; the slot of 10.1
        // must already include the interval starting at its first address. 10.4/16 has one
        // entry per /24 and a range starting on 10.4.7.0.
        let ranges: Vec<_> = [
            (0x0A01_0000, 0x0A01_FFFF),
            (0x0A02_0000, 0x0A03_FFFF),
            (0x0A01_0000, 0x0A01_00FF),
            (0x0A04_0000, 0x0A04_0000),
            (0x0A04_0700, 0x0A04_07FF),
        ]
        .into_iter()
        .chain(host_routes(0x0A04_0200, WINDOW as u32))
        .collect();
        assert_eq!(path(&ranges, 0x0A01_0000), Path::Slash16);
        assert_eq!(path(&ranges, 0x0A04_0700), Path::Slash24);
        let mut keys = edges(&ranges);
        keys.extend([
            0x0A00_FFFF,
            0x0A01_0100,
            0x0A04_06FF,
            0x0A04_FFFF,
            0x0A05_0000,
        ]);
        check(&ranges, keys);
    }

    #[test]
    fn dense_slash_16s_are_split_by_slash_24_and_dense_slash_24s_searched_in_the_tree() {
        // 192.168/16: 40 host routes spread out (by /24), and 192.168.200/24 full of them
        // (the tree); 10.x with one /24 each (a window per /16); the window's edge: 11.0/16
        // with exactly WINDOW starts, 12.0/16 with one more, the last range ending with it.
        let mut ranges: Vec<(u32, u32)> = (0..40)
            .map(|i| (0xC0A8_0000 + i * 997, 0xC0A8_0000 + i * 997))
            .collect();
        ranges.extend(host_routes(0xC0A8_C800, 12));
        ranges.extend((0..30).map(|i| (0x0A00_0100 + (i << 16), 0x0A00_01FF + (i << 16))));
        ranges.extend(host_routes(0x0B00_0000, WINDOW as u32 / 2));
        ranges.extend(host_routes(0x0C00_0000, WINDOW as u32 / 2));
        ranges.push((0x0C00_F000, 0x0C00_FFFF));
        assert_eq!(path(&ranges, 0xC0A8_1234), Path::Slash24);
        assert_eq!(path(&ranges, 0xC0A8_C880), Path::DenseSlash24);
        assert_eq!(path(&ranges, 0x0A05_0000), Path::Slash16);
        assert_eq!(path(&ranges, 0x0B00_0000), Path::Slash16);
        assert_eq!(path(&ranges, 0x0C00_0000), Path::Slash24);
        let mut keys = edges(&ranges);
        keys.extend([
            0xC0A7_FFFF,
            0xC0A8_0000,
            0xC0A8_C7FF,
            0xC0A8_C8FF,
            0xC0A8_FFFF,
            0xC0A9_0000,
            0x0B00_FFFF,
            0x0C01_0000,
        ]);
        check(&ranges, keys);
    }

    #[test]
    fn many_ranges_agree_with_a_scan_on_every_path() {
        // Pseudo-random nested and overlapping ranges of every size, concentrated in a few
        // blocks so that sparse and dense /16s and /24s occur; keys at every boundary, at every
        // /16's first address, and random.
        let mut state = 0x9E37_79B9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let ranges: Vec<(u32, u32)> = (0..800)
            .map(|_| {
                let first = match next() % 4 {
                    0 => 0x0A00_0000 | next() & 0x00FF_FFFF,
                    1 => 0xC0A8_0000 | next() & 0xFFFF,
                    2 => 0xC0A8_0700 | next() & 0xFF,
                    _ => next(),
                };
                let prefix = [8, 16, 20, 24, 28, 32][(next() % 6) as usize];
                let mask = u32::MAX.checked_shr(prefix).unwrap_or(0);
                (first & !mask, first | mask)
            })
            .collect();
        let mut keys: Vec<u32> = (0..20_000).map(|_| next()).collect();
        keys.extend(edges(&ranges));
        keys.extend((0..=u16::MAX).map(|prefix| u32::from(prefix) << 16));
        let paths = check(&ranges, keys);
        for wanted in [Path::Slash16, Path::Slash24, Path::DenseSlash24] {
            assert!(paths.contains(&wanted), "no key took {wanted:?}");
        }
    }

    #[test]
    fn maps_beyond_the_limit_keep_the_tree_alone() {
        // Two ranges: five intervals. Within the limit, the table; beyond it, the tree alone,
        // with the same answers (`check` compares both against the scan).
        let ranges = [(0x0A00_0000, 0x0AFF_FFFF), (0x0A01_0000, 0x0A01_0000)];
        let intervals = |ranges: &[(u32, u32)]| {
            let ranges: Vec<_> = ranges
                .iter()
                .enumerate()
                .map(|(rule, &(first, last))| RuleRange { rule, first, last })
                .collect();
            let mut sets = RuleSetsBuilder::new(ranges.len());
            elementary_intervals(&ranges, &RuleBits::empty(ranges.len()), &mut sets)
        };
        let intervals = intervals(&ranges);
        assert_eq!(intervals.len(), 5);
        assert_eq!(
            V4Map::with_limit(&intervals, 5).path(0x0A01_0000),
            Path::Slash16
        );
        assert_eq!(
            V4Map::with_limit(&intervals, 4).path(0x0A01_0000),
            Path::TreeOnly
        );
        check(&ranges, edges(&ranges));
    }
}
