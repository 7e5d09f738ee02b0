//! Sets of rules as interned bit vectors: what every lookup dimension of the filter returns.
//!
//! # Design
//! A set of rules is a bit vector over rule indices, bit `i` for the `i`-th rule in evaluation
//! order, so the lowest set bit of an intersection is the first matching rule. The vector is cut
//! into chunks of [`CHUNK_WORDS`] words (512 rules, 64 bytes). Chunks are interned in one pool
//! shared by all dimensions, and a set is stored as a *row* of chunk ids, itself interned.
//!
//! Chunking is what keeps large filters small: two neighbouring elementary intervals of an address
//! dimension differ only in the rules whose range starts or ends between them, so their rows share
//! all chunks but one or two. Without it the memory of the bit-vector scheme grows as rules²
//! (one full vector per interval): 10,000 rules of the bench take 1.8 MiB instead of ≈ 13 MiB.
//!
//! Chunk id [`EMPTY_CHUNK`] is the all-zero chunk. It plays the aggregate ("summary") bit of the
//! aggregated bit-vector scheme: [`RuleSets::first_match`] skips a chunk where a set's id is
//! empty, or where no address-containing rule and no rule free of both addresses lies, without
//! reading a word of it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Words per chunk: 8 × 64 bits, a cache line's worth, the unit the intersection reads.
const CHUNK_WORDS: usize = 8;
/// Rules per chunk.
const CHUNK_RULES: usize = 64 * CHUNK_WORDS;

type Chunk = [u64; CHUNK_WORDS];

/// The id of the all-zero chunk, always present in the pool at this position.
const EMPTY_CHUNK: u32 = 0;

/// A set of rules interned in a [`RuleSets`]; cheap to copy, meaningless in another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct RowId(u32);

/// A plain set of rule indices, used while compiling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RuleBits {
    words: Vec<u64>,
}

impl RuleBits {
    /// The empty set, with room for `rule_count` rules.
    pub(super) fn empty(rule_count: usize) -> RuleBits {
        RuleBits {
            words: vec![0; rule_count.div_ceil(64)],
        }
    }

    /// Adds `rule`; `rule` must be below the `rule_count` the set was made for.
    pub(super) fn insert(&mut self, rule: usize) {
        self.words[rule / 64] |= 1 << (rule % 64);
    }

    /// Removes `rule`; `rule` must be below the `rule_count` the set was made for.
    pub(super) fn remove(&mut self, rule: usize) {
        self.words[rule / 64] &= !(1 << (rule % 64));
    }
}

/// Interns the sets of one filter while it is compiled.
#[derive(Clone, Debug)]
pub(super) struct RuleSetsBuilder {
    chunks_per_row: usize,
    chunks: Vec<Chunk>,
    chunk_ids: HashMap<Chunk, u32>,
    rows: Vec<u32>,
    row_ids: HashMap<Box<[u32]>, RowId>,
}

impl RuleSetsBuilder {
    /// A builder for the sets of a filter of `rule_count` rules.
    pub(super) fn new(rule_count: usize) -> RuleSetsBuilder {
        let empty = [0; CHUNK_WORDS];
        RuleSetsBuilder {
            chunks_per_row: rule_count.div_ceil(CHUNK_RULES),
            chunks: vec![empty],
            chunk_ids: HashMap::from([(empty, EMPTY_CHUNK)]),
            rows: Vec::new(),
            row_ids: HashMap::new(),
        }
    }

    /// The id of `set`, interning it (and its chunks) when it is new.
    pub(super) fn intern(&mut self, set: &RuleBits) -> RowId {
        let row: Box<[u32]> = set
            .words
            .chunks(CHUNK_WORDS)
            .map(|words| {
                let mut chunk = [0; CHUNK_WORDS];
                chunk[..words.len()].copy_from_slice(words);
                self.chunk_id(chunk)
            })
            .collect();
        debug_assert_eq!(
            row.len(),
            self.chunks_per_row,
            "set made for another rule count"
        );
        match self.row_ids.entry(row) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                let id = RowId(to_u32(self.rows.len() / self.chunks_per_row.max(1)));
                self.rows.extend_from_slice(new.key());
                *new.insert(id)
            }
        }
    }

    fn chunk_id(&mut self, chunk: Chunk) -> u32 {
        let next = to_u32(self.chunks.len());
        match self.chunk_ids.entry(chunk) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                self.chunks.push(chunk);
                *new.insert(next)
            }
        }
    }

    /// The frozen sets, ready for lookups.
    pub(super) fn finish(self) -> RuleSets {
        RuleSets {
            chunks_per_row: self.chunks_per_row,
            chunks: self.chunks.into_boxed_slice(),
            rows: self.rows.into_boxed_slice(),
        }
    }
}

/// Interning ids are `u32`: a filter has at most 65,536 rules, so at most 128 chunks per row, and
/// the pool of a filter that needed more than 2³² chunks or rows would not fit in memory anyway.
fn to_u32(count: usize) -> u32 {
    u32::try_from(count).expect("more than 2^32 interned rule sets")
}

/// The interned sets of one compiled filter.
#[derive(Clone, Debug)]
pub(super) struct RuleSets {
    chunks_per_row: usize,
    chunks: Box<[Chunk]>,
    rows: Box<[u32]>,
}

/// The sets one packet's lookups produced: the rules that match it are their intersection.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lookup<const N: usize> {
    /// Sets taken as they are (the packet's class, its ports).
    pub(super) sets: [RowId; N],
    /// The source and the destination address dimension.
    pub(super) addresses: [AddressSets; 2],
    /// `addresses[0].any ∩ addresses[1].any`: the rules that name neither address.
    pub(super) naming_no_address: RowId,
}

/// One address dimension, as the union of two sets: the rules that name no address there, and
/// those whose CIDR contains the packet's address.
///
/// The split is what makes the intersection fast: `any` is the same for every packet and dense,
/// `containing` is sparse (the handful of CIDRs around one address). A chunk where neither
/// address has a containing rule and no rule is free of both addresses cannot hold a match:
/// `(any₀ ∪ c₀) ∩ (any₁ ∪ c₁) ⊆ (any₀ ∩ any₁) ∪ c₀ ∪ c₁`.
#[derive(Clone, Copy, Debug)]
pub(super) struct AddressSets {
    pub(super) any: RowId,
    pub(super) containing: RowId,
}

impl RuleSets {
    fn row(&self, RowId(row): RowId) -> &[u32] {
        let start = row as usize * self.chunks_per_row;
        &self.rows[start..start + self.chunks_per_row]
    }

    fn chunk(&self, id: u32) -> &Chunk {
        &self.chunks[id as usize]
    }

    /// The lowest rule index in the intersection of `lookup`'s sets.
    // Inlined into the pipeline's passes: see "Inlining" in `crate::pipeline`.
    #[inline(always)]
    pub(super) fn first_match<const N: usize>(&self, lookup: &Lookup<N>) -> Option<usize> {
        let sets = lookup.sets.map(|set| self.row(set));
        let [src, dst] = lookup.addresses;
        let (src_any, src_containing) = (self.row(src.any), self.row(src.containing));
        let (dst_any, dst_containing) = (self.row(dst.any), self.row(dst.containing));
        let naming_no_address = self.row(lookup.naming_no_address);
        for chunk_index in 0..self.chunks_per_row {
            let src_containing = src_containing[chunk_index];
            let dst_containing = dst_containing[chunk_index];
            if src_containing == EMPTY_CHUNK
                && dst_containing == EMPTY_CHUNK
                && naming_no_address[chunk_index] == EMPTY_CHUNK
            {
                continue;
            }
            let ids = sets.map(|row| row[chunk_index]);
            if ids.contains(&EMPTY_CHUNK) {
                continue;
            }
            let mut common = [u64::MAX; CHUNK_WORDS];
            for id in ids {
                for (acc, word) in common.iter_mut().zip(self.chunk(id)) {
                    *acc &= word;
                }
            }
            for (any, containing) in [(src_any, src_containing), (dst_any, dst_containing)] {
                let any = self.chunk(any[chunk_index]);
                let containing = self.chunk(containing);
                for ((acc, any), containing) in common.iter_mut().zip(any).zip(containing) {
                    *acc &= any | containing;
                }
            }
            for (word_index, word) in common.iter().enumerate() {
                if *word != 0 {
                    let bit = word.trailing_zeros() as usize;
                    return Some(chunk_index * CHUNK_RULES + word_index * 64 + bit);
                }
            }
        }
        None
    }

    /// Every rule index in `set`, in order (tests read sets back with it).
    #[cfg(test)]
    pub(super) fn members(&self, set: RowId) -> Vec<usize> {
        let mut members = Vec::new();
        for (chunk_index, &id) in self.row(set).iter().enumerate() {
            for (word_index, &word) in self.chunk(id).iter().enumerate() {
                for bit in 0..64 {
                    if word & (1 << bit) != 0 {
                        members.push(chunk_index * CHUNK_RULES + word_index * 64 + bit);
                    }
                }
            }
        }
        members
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.chunks) + size_of_val(&*self.rows)
    }

    /// Distinct chunks in the pool (the empty one included).
    pub(super) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Distinct sets.
    pub(super) fn row_count(&self) -> usize {
        self.rows
            .len()
            .checked_div(self.chunks_per_row)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(rule_count: usize, rules: &[usize]) -> RuleBits {
        let mut set = RuleBits::empty(rule_count);
        for &rule in rules {
            set.insert(rule);
        }
        set
    }

    #[test]
    fn identical_sets_share_one_row_and_chunks() {
        let mut builder = RuleSetsBuilder::new(1500);
        let a = builder.intern(&set_of(1500, &[3, 1400]));
        let b = builder.intern(&set_of(1500, &[3, 1400]));
        let c = builder.intern(&set_of(1500, &[3]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let sets = builder.finish();
        assert_eq!(sets.row_count(), 2);
        // empty, {3}, {1400 - 1024}: the chunk holding rule 3 is shared by both rows.
        assert_eq!(sets.chunk_count(), 3);
    }

    /// A lookup of `sets` alone: the address dimensions accept every rule.
    fn plain<const N: usize>(sets: [RowId; N], all: RowId, empty: RowId) -> Lookup<N> {
        let address = AddressSets {
            any: all,
            containing: empty,
        };
        Lookup {
            sets,
            addresses: [address; 2],
            naming_no_address: all,
        }
    }

    #[test]
    fn first_match_is_the_lowest_shared_rule_across_chunks() {
        let mut builder = RuleSetsBuilder::new(2000);
        let a = builder.intern(&set_of(2000, &[5, 700, 1999]));
        let b = builder.intern(&set_of(2000, &[6, 700, 1999]));
        let c = builder.intern(&set_of(2000, &[5, 1999]));
        let empty = builder.intern(&RuleBits::empty(2000));
        let all = builder.intern(&set_of(2000, &(0..2000).collect::<Vec<_>>()));
        let sets = builder.finish();
        assert_eq!(sets.first_match(&plain([a, b], all, empty)), Some(700));
        assert_eq!(sets.first_match(&plain([a, c], all, empty)), Some(5));
        assert_eq!(sets.first_match(&plain([a, b, c], all, empty)), Some(1999));
        assert_eq!(sets.first_match(&plain([a, empty], all, empty)), None);
    }

    #[test]
    fn address_dimensions_are_unions_of_any_and_containing() {
        // Rules 0..1000 name no source, rules 1000..2000 name no destination; 1500 has a source
        // CIDR containing the packet's, 600 a destination CIDR containing the packet's. No rule
        // names neither, so only the chunks of 600 and 1500 are looked at.
        let mut builder = RuleSetsBuilder::new(2000);
        let first_half = builder.intern(&set_of(2000, &(0..1000).collect::<Vec<_>>()));
        let second_half = builder.intern(&set_of(2000, &(1000..2000).collect::<Vec<_>>()));
        let src_containing = builder.intern(&set_of(2000, &[1500]));
        let dst_containing = builder.intern(&set_of(2000, &[600]));
        let empty = builder.intern(&RuleBits::empty(2000));
        let all = builder.intern(&set_of(2000, &(0..2000).collect::<Vec<_>>()));
        let only_1500 = builder.intern(&set_of(2000, &[1500]));
        let sets = builder.finish();
        let lookup = |class, src_containing, dst_containing| Lookup {
            sets: [class],
            addresses: [
                AddressSets {
                    any: first_half,
                    containing: src_containing,
                },
                AddressSets {
                    any: second_half,
                    containing: dst_containing,
                },
            ],
            naming_no_address: empty,
        };
        // Rule 600: destination contains the packet's, source any. Rule 1500: the other way.
        assert_eq!(
            sets.first_match(&lookup(all, src_containing, dst_containing)),
            Some(600)
        );
        assert_eq!(
            sets.first_match(&lookup(only_1500, src_containing, dst_containing)),
            Some(1500)
        );
        assert_eq!(
            sets.first_match(&lookup(all, empty, dst_containing)),
            Some(600)
        );
        assert_eq!(
            sets.first_match(&lookup(all, src_containing, empty)),
            Some(1500)
        );
        assert_eq!(sets.first_match(&lookup(all, empty, empty)), None);
    }

    #[test]
    fn removing_a_rule_restores_the_previous_set() {
        let mut set = set_of(100, &[64, 99]);
        set.remove(64);
        assert_eq!(set, set_of(100, &[99]));
    }

    #[test]
    fn no_rules_means_no_chunks_and_no_match() {
        let mut builder = RuleSetsBuilder::new(0);
        let row = builder.intern(&RuleBits::empty(0));
        let sets = builder.finish();
        assert_eq!(sets.first_match(&plain([row], row, row)), None);
    }
}
