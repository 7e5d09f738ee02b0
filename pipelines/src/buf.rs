//! The packet buffer the stages work on ([`PacketBuf`]) and where finished packets go
//! ([`Sink`]): the traits live in the `packet` crate, shared with `drivers`, and are re-exported
//! here. `VecBuf`, a heap-backed buffer, is test harness (tests, benches, fuzzing: compiled with
//! `cfg(test)` or the `testing` feature).

pub use packet::{PacketBuf, Sink};

/// A heap-backed [`PacketBuf`] for tests, benches and fuzzing.
///
/// Segments are separate vectors so multi-segment behaviour (jumbo frames) is exercised without
/// DPDK. `share` copies: tests observe behaviour, not memory.
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    /// The segments, first to last; the first holds `head` bytes of headroom before `start`.
    segs: Vec<Vec<u8>>,
    /// Offset of the packet's first byte in `segs[0]`.
    start: usize,
}

#[cfg(any(test, feature = "testing"))]
impl VecBuf {
    /// A one-segment packet holding `bytes`.
    pub fn new(bytes: &[u8]) -> VecBuf {
        VecBuf {
            segs: vec![bytes.to_vec()],
            start: 0,
        }
    }

    /// A packet made of `segments` (the first must not be empty unless it is the only one).
    pub fn from_segments(segments: Vec<Vec<u8>>) -> VecBuf {
        let segs = if segments.is_empty() {
            vec![Vec::new()]
        } else {
            segments
        };
        VecBuf { segs, start: 0 }
    }

    /// All the packet's bytes, segments joined.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pkt_len());
        self.for_each_segment(|s| out.extend_from_slice(s));
        out
    }
}

#[cfg(any(test, feature = "testing"))]
impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.segs[0][self.start..]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.segs[0][self.start..]
    }

    fn pkt_len(&self) -> usize {
        self.segs.iter().map(Vec::len).sum::<usize>() - self.start
    }

    fn segments(&self) -> usize {
        self.segs.len()
    }

    fn for_each_segment(&self, mut f: impl FnMut(&[u8])) {
        f(self.data());
        for seg in &self.segs[1..] {
            f(seg);
        }
    }

    fn strip_front(&mut self, n: usize) -> bool {
        if n > self.data().len() {
            return false;
        }
        self.start += n;
        true
    }

    fn truncate(&mut self, len: usize) {
        let mut remaining = len + self.start;
        let mut keep = 0;
        for seg in &mut self.segs {
            keep += 1;
            if seg.len() >= remaining {
                seg.truncate(remaining);
                break;
            }
            remaining -= seg.len();
        }
        // A one-segment packet stays one segment even when cut to nothing.
        self.segs.truncate(keep.max(1));
    }

    fn share(&self) -> Option<VecBuf> {
        Some(self.clone())
    }

    fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        // The bytes before `start` (stripped headers) stay where they are, unreachable: the new
        // header is a segment of its own, as an mbuf's is.
        let first = self.segs[0].split_off(self.start);
        self.segs[0] = first;
        self.start = 0;
        self.segs.insert(0, vec![0; len]);
        Some(&mut self.segs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_and_truncate_one_segment() {
        let mut b = VecBuf::new(&[1, 2, 3, 4, 5, 6]);
        assert!(b.strip_front(2));
        assert_eq!(b.data(), &[3, 4, 5, 6]);
        assert!(!b.strip_front(5));
        b.truncate(3);
        assert_eq!(b.to_vec(), vec![3, 4, 5]);
        b.truncate(10);
        assert_eq!(b.pkt_len(), 3);
    }

    #[test]
    fn truncate_releases_tail_segments() {
        let mut b = VecBuf::from_segments(vec![vec![1, 2, 3], vec![4, 5], vec![6]]);
        assert_eq!(b.pkt_len(), 6);
        assert_eq!(b.segments(), 3);
        b.truncate(4);
        assert_eq!(b.to_vec(), vec![1, 2, 3, 4]);
        assert_eq!(b.segments(), 2);
        b.truncate(3);
        assert_eq!(b.segments(), 1);
    }

    #[test]
    fn shared_handles_are_independent() {
        let b = VecBuf::new(&[1, 2, 3, 4]);
        let mut c = b.share().unwrap();
        c.truncate(2);
        assert_eq!(b.pkt_len(), 4);
        assert_eq!(c.to_vec(), vec![1, 2]);
    }
}
