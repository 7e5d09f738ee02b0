//! The packet buffer the stages work on, and where finished packets go.
//!
//! # Design
//! The pipeline is generic over [`PacketBuf`] so the same code runs on DPDK mbufs (the `drivers`
//! crate implements the trait for its owning `Mbuf`) and on [`VecBuf`] in unit tests, property
//! tests, fuzz targets and benches, none of which need DPDK. The trait exposes exactly what the
//! stages need: the first segment's bytes (headers are parsed there), the total length, moving the
//! start forward (decapsulation without a copy), cutting the tail (padding, slicing) and a second
//! handle on the same bytes (fan-out to several tool groups without copying the payload).
//!
//! Dropping a `PacketBuf` releases it (an mbuf goes back to its pool).

/// A packet: a chain of one or more segments, the headers in the first.
pub trait PacketBuf: Sized {
    /// The bytes of the first segment (all of the packet when it has one segment).
    fn data(&self) -> &[u8];

    /// The first segment's bytes, writable. Only the decapsulation stage writes (a synthesised
    /// Ethernet header in front of a bare inner IP packet), and only before [`PacketBuf::share`]:
    /// shared handles see the same bytes.
    fn data_mut(&mut self) -> &mut [u8];

    /// Length of the whole packet, all segments.
    fn pkt_len(&self) -> usize;

    /// Number of segments (1 for an ordinary frame; jumbo frames arrive as chains).
    fn segments(&self) -> usize;

    /// Calls `f` with each segment's bytes, first to last.
    fn for_each_segment(&self, f: impl FnMut(&[u8]));

    /// Removes `n` bytes from the front. `n` must not exceed `data().len()`; the stages only strip
    /// headers they have parsed in the first segment. Returns `false` (and changes nothing) if
    /// `n` is too large.
    fn strip_front(&mut self, n: usize) -> bool;

    /// Shortens the packet to `len` bytes, releasing tail segments that fall entirely beyond it.
    /// A `len` at or beyond `pkt_len()` changes nothing.
    fn truncate(&mut self, len: usize);

    /// A second handle on the same bytes, with its own start and length (a DPDK indirect clone):
    /// truncating one handle does not change the other. `None` when no buffer is left for the
    /// handle (counted by the caller).
    fn share(&self) -> Option<Self>;
}

/// Where the pipeline puts the packets of a burst once it has decided their fate.
pub trait Sink<B> {
    /// Queue `pkt` for transmission on the tool port with this index
    /// (`broker_config::ToolPortId`). The sink owns it from here: it transmits it or counts it
    /// as a TX drop on that port.
    fn deliver(&mut self, port: u16, pkt: B);

    /// The packet was dropped (its outcome is already counted); the sink releases it, in bulk
    /// where it can.
    fn discard(&mut self, pkt: B);
}

/// A heap-backed [`PacketBuf`] for tests, benches and fuzzing.
///
/// Segments are separate vectors so multi-segment behaviour (jumbo frames) is exercised without
/// DPDK. `share` copies: tests observe behaviour, not memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    /// The segments, first to last; the first holds `head` bytes of headroom before `start`.
    segs: Vec<Vec<u8>>,
    /// Offset of the packet's first byte in `segs[0]`.
    start: usize,
}

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
