//! A port dimension of the filter as a direct table: one load per lookup.

use super::interval::Interval;
use super::rule_set::RowId;

const SMALL: usize = 16;

/// Port → the rules that accept it.
#[derive(Debug)]
pub(super) struct PortMap {
    /// Port → position in `rows`; empty when there is a single interval (no rule names a port
    /// range in this dimension), which spares the table.
    index: Box<[u16]>,
    small: [u16; SMALL],
    rows: Box<[RowId]>,
}

impl PortMap {
    pub(super) fn new(intervals: &[Interval<u16>]) -> PortMap {
        let rows: Box<[RowId]> = intervals.iter().map(|interval| interval.rules).collect();
        let mut small = [u16::MAX; SMALL];
        if rows.len() <= 1 {
            return PortMap { index: Box::new([]), small, rows };
        }
        let mut index = vec![0u16; 1 << 16];
        let ends = intervals.iter().skip(1).map(|next| usize::from(next.first)).chain([1 << 16]);
        for ((position, interval), end) in (0..=u16::MAX).zip(intervals).zip(ends) {
            index[usize::from(interval.first)..end].fill(position);
        }
        PortMap { index: index.into_boxed_slice(), small, rows }
    }

    #[inline]
    pub(super) fn lookup(&self, port: u16) -> RowId {
        let position = match self.index.get(usize::from(port)) {
            Some(&position) => usize::from(position),
            None => 0,
        };
        self.rows[position]
    }

    pub(super) fn interval_count(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.index) + size_of_val(&*self.rows)
    }
}
