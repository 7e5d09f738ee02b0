//! One dimension of the filter over an ordered key space (IPv4 or IPv6 addresses, ports): the
//! elementary intervals cut by the rules' range boundaries, each with the set of rules covering it.
//!
//! # Design
//! `n` ranges cut the key space into at most `2n + 1` elementary intervals inside which every key
//! is matched by the same rules. Compiling sweeps the sorted boundaries once, adding a rule where
//! its range starts and removing it after its range ends; neighbouring intervals that end up with
//! the same set are merged. A lookup searches the interval starts in a complete 4-ary tree without
//! a branch on the key ([`IntervalMap::lookup`]; the filter module docs say what else was tried).

use super::rule_set::{RowId, RuleBits, RuleSetsBuilder};

/// A key of an interval dimension: an unsigned integer type.
pub(super) trait Point: Copy + Ord {
    const MIN: Self;
    const MAX: Self;
    /// The next key, `None` at the maximum.
    fn successor(self) -> Option<Self>;
}

macro_rules! point {
    ($($ty:ty),+) => {$(
        impl Point for $ty {
            const MIN: Self = <$ty>::MIN;
            const MAX: Self = <$ty>::MAX;
            fn successor(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    )+};
}
point!(u16, u32, u128);

/// A rule's inclusive range in one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RuleRange<K> {
    pub(super) rule: usize,
    pub(super) first: K,
    pub(super) last: K,
}

/// An elementary interval: the keys from `first` up to the next interval's `first`, all accepted
/// by the same rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Interval<K> {
    pub(super) first: K,
    pub(super) rules: RowId,
}

/// Cuts the dimension into elementary intervals, in key order from `K::MIN`, for `ranges` (each
/// `first <= last`, one per rule at most) plus `everywhere`, the rules that accept every key.
/// Neighbours with the same rules are merged.
pub(super) fn elementary_intervals<K: Point>(
    ranges: &[RuleRange<K>],
    everywhere: &RuleBits,
    sets: &mut RuleSetsBuilder,
) -> Vec<Interval<K>> {
    // (key, rule, true when the rule's range starts at key / false when it ended just before)
    let mut events: Vec<(K, usize, bool)> = Vec::with_capacity(ranges.len() * 2);
    for range in ranges {
        events.push((range.first, range.rule, true));
        if let Some(after) = range.last.successor() {
            events.push((after, range.rule, false));
        }
    }
    events.sort_unstable_by_key(|&(key, _, _)| key);

    let mut active = everywhere.clone();
    let mut intervals: Vec<Interval<K>> = Vec::new();
    let mut pending = events.iter().peekable();
    let mut first = K::MIN;
    loop {
        // One rule has one range per dimension, so a rule never starts and ends at one key.
        while let Some(&(_, rule, begins)) = pending.next_if(|&&(key, _, _)| key == first) {
            if begins {
                active.insert(rule);
            } else {
                active.remove(rule);
            }
        }
        let rules = sets.intern(&active);
        if intervals.last().is_none_or(|last| last.rules != rules) {
            intervals.push(Interval { first, rules });
        }
        match pending.peek() {
            Some(&&(key, _, _)) => first = key,
            None => break,
        }
    }
    intervals
}

/// Elementary intervals of one dimension → the set of rules that accept a key there, searched
/// in a complete (`KEYS` + 1)-ary tree stored breadth-first.
#[derive(Clone, Debug)]
pub(super) struct IntervalMap<K, const KEYS: usize> {
    /// Node `n` holds `KEYS` sorted interval starts and has children `n·(KEYS+1) + 1 + c`.
    /// Padded with `K::MAX` to a complete tree of `depth` levels.
    nodes: Box<[[K; KEYS]]>,
    /// The rules of each interval, in key order, padded with the last interval's rules (which
    /// run to `K::MAX`) to the tree's key count.
    rows: Box<[RowId]>,
    depth: u32,
    /// Index of the first (virtual) node of level `depth`: `(F^depth − 1) / (F − 1)`.
    leaf_base: usize,
    interval_count: usize,
}

impl<K: Point, const KEYS: usize> IntervalMap<K, KEYS> {
    const FANOUT: usize = KEYS + 1;

    /// `intervals`: as [`elementary_intervals`] returns them (at least one, from `K::MIN`).
    pub(super) fn new(intervals: &[Interval<K>]) -> IntervalMap<K, KEYS> {
        let last = intervals
            .last()
            .expect("there is always the interval from K::MIN")
            .rules;
        // The smallest complete tree with room for every start: FANOUT^depth - 1 keys.
        let mut depth = 0;
        let mut capacity = 0;
        while capacity < intervals.len() {
            depth += 1;
            capacity = capacity * Self::FANOUT + KEYS;
        }
        let node_count = capacity / KEYS;
        let mut nodes = vec![[K::MAX; KEYS]; node_count];
        let mut starts = intervals.iter().map(|interval| interval.first);
        // An in-order walk of the tree visits the keys in order.
        fn fill<K: Copy, const KEYS: usize>(
            node: usize,
            starts: &mut impl Iterator<Item = K>,
            nodes: &mut [[K; KEYS]],
        ) {
            if node >= nodes.len() {
                return;
            }
            for slot in 0..KEYS {
                fill(node * (KEYS + 1) + 1 + slot, starts, nodes);
                if let Some(start) = starts.next() {
                    nodes[node][slot] = start;
                }
            }
            fill(node * (KEYS + 1) + 1 + KEYS, starts, nodes);
        }
        fill(0, &mut starts, &mut nodes);
        let mut rows: Vec<RowId> = intervals.iter().map(|interval| interval.rules).collect();
        rows.resize(capacity, last);
        IntervalMap {
            nodes: nodes.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
            depth,
            leaf_base: node_count,
            interval_count: intervals.len(),
        }
    }

    /// The rules that accept `key`: those of the last interval starting at or below it.
    ///
    /// The number of starts at or below `key` (its rank) is, written in base FANOUT, the
    /// sequence of per-node counts along the search path of a complete tree. Counting is
    /// compare-and-add: no branch and no conditional move, so random keys cost no misprediction
    /// and every search takes `depth` steps. The padding (`K::MAX`) is counted only for the key
    /// `K::MAX`, whose rank then points into the padding of `rows`: the last interval's rules.
    #[inline]
    pub(super) fn lookup(&self, key: K) -> RowId {
        let mut node = 0;
        for _ in 0..self.depth {
            let below: usize = self.nodes[node]
                .iter()
                .map(|&start| usize::from(start <= key))
                .sum();
            node = node * Self::FANOUT + 1 + below;
        }
        // The walk ends on a (virtual) child at level `depth`; its position in that level is the
        // key's rank, rank >= 1 since the first start is K::MIN.
        self.rows[(node - self.leaf_base).saturating_sub(1)]
    }

    /// Elementary intervals (the padding left out).
    pub(super) fn interval_count(&self) -> usize {
        self.interval_count
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.nodes) + size_of_val(&*self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_set::RuleSets;
    use super::*;

    /// Builds a map of `ranges` over rules `0..ranges.len()` (rule `i` has `ranges[i]`) and the
    /// rules of `everywhere` (numbered after them), returning it with its sets.
    fn map(ranges: &[(u16, u16)], everywhere: usize) -> (IntervalMap<u16, 3>, RuleSets, usize) {
        let rule_count = ranges.len() + everywhere;
        let ranges: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(rule, &(first, last))| RuleRange { rule, first, last })
            .collect();
        let mut all = RuleBits::empty(rule_count);
        for rule in ranges.len()..rule_count {
            all.insert(rule);
        }
        let mut sets = RuleSetsBuilder::new(rule_count);
        let map = IntervalMap::new(&elementary_intervals(&ranges, &all, &mut sets));
        (map, sets.finish(), rule_count)
    }

    fn first_rule(map: &IntervalMap<u16, 3>, sets: &RuleSets, key: u16) -> Option<usize> {
        let row = map.lookup(key);
        sets.members(row).first().copied()
    }

    #[test]
    fn keys_at_range_edges_fall_on_the_right_side() {
        let (map, sets, _) = map(&[(10, 20), (15, 30)], 0);
        assert_eq!(first_rule(&map, &sets, 9), None);
        assert_eq!(first_rule(&map, &sets, 10), Some(0));
        assert_eq!(first_rule(&map, &sets, 20), Some(0));
        assert_eq!(first_rule(&map, &sets, 21), Some(1));
        assert_eq!(first_rule(&map, &sets, 30), Some(1));
        assert_eq!(first_rule(&map, &sets, 31), None);
        // (-inf,10) [10,15) [15,20] (20,30] (30,inf)
        assert_eq!(map.interval_count(), 5);
    }

    #[test]
    fn ranges_touching_the_ends_of_the_key_space() {
        let (map, sets, _) = map(&[(0, 0), (u16::MAX, u16::MAX)], 0);
        assert_eq!(first_rule(&map, &sets, 0), Some(0));
        assert_eq!(first_rule(&map, &sets, 1), None);
        assert_eq!(first_rule(&map, &sets, u16::MAX - 1), None);
        assert_eq!(first_rule(&map, &sets, u16::MAX), Some(1));
    }

    #[test]
    fn rules_everywhere_match_every_key_and_identical_neighbours_merge() {
        // Rule 2 matches everywhere, rules 0 and 1 cover adjacent ranges: three different sets,
        // and no boundary at 0 (the first range starts at the minimum).
        let (map, sets, _) = map(&[(0, 49), (50, 60)], 1);
        assert_eq!(first_rule(&map, &sets, 49), Some(0));
        assert_eq!(first_rule(&map, &sets, 50), Some(1));
        assert_eq!(first_rule(&map, &sets, 61), Some(2));
        assert_eq!(map.interval_count(), 3);
    }

    #[test]
    fn many_ranges_agree_with_a_scan_on_every_key() {
        // Pseudo-random ranges (deterministic), nested and overlapping, cutting the space into
        // many intervals; every one of the 65,536 keys is checked against a scan of the ranges.
        let mut state = 0x2545_F491_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u16
        };
        let ranges: Vec<(u16, u16)> = (0..150)
            .map(|_| {
                let (a, b) = (next(), next() / 64);
                (a, a.saturating_add(b))
            })
            .collect();
        let (map, sets, _) = map(&ranges, 1);
        for key in 0..=u16::MAX {
            let expected = ranges
                .iter()
                .position(|&(first, last)| first <= key && key <= last)
                .unwrap_or(ranges.len());
            assert_eq!(first_rule(&map, &sets, key), Some(expected), "key {key}");
        }
    }

    #[test]
    fn no_ranges_is_one_interval() {
        let (map, sets, _) = map(&[], 2);
        assert_eq!(map.interval_count(), 1);
        assert_eq!(first_rule(&map, &sets, 12345), Some(0));
    }
}
