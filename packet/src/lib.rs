//! The packet buffer the stages work on, and where finished packets go.
//!
//! # Design
//! The pipeline (`pipelines`) is generic over [`PacketBuf`] so the same code runs on DPDK mbufs
//! (`drivers` implements the trait for its owning `Mbuf`) and on heap buffers in unit tests,
//! property tests, fuzz targets and benches, none of which need DPDK. The trait exposes exactly
//! what the stages need: the first segment's bytes (headers are parsed there), the total length,
//! moving the start forward (decapsulation without a copy), cutting the tail (padding, slicing),
//! a second handle on the same bytes (fan-out to several tool groups without copying the
//! payload), and prefetch hints.
//!
//! The traits live in this crate of their own, with no dependencies, so that the FFI crate
//! (`drivers`) and the packet stages (`pipelines`) share them without `drivers` depending on the
//! stages or on the configuration (TOML, serde) they are built from.
//!
//! Dropping a `PacketBuf` releases it (an mbuf goes back to its pool).
//!
//! # Limitations
//! The prefetch hints do nothing unless the buffer type implements [`PacketBuf::prefetch`]: safe
//! Rust has no prefetch instruction, so only `drivers` (which may use `unsafe`) provides one.
#![forbid(unsafe_code)]

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

    /// A second handle on the same bytes, with its own start and length (a DPDK indirect clone,
    /// or a copy where that is cheaper): truncating one handle does not change the other. `None`
    /// when no buffer is left for the handle (counted by the caller).
    fn share(&self) -> Option<Self>;

    /// A writable segment of `len` bytes chained in front of the packet (the outer headers of a
    /// tunnelled copy), which becomes its first segment; `None` when no buffer is left for it
    /// (counted by the caller) or `len` does not fit one. The packet's own bytes are not touched,
    /// so this works on a shared handle too: the headroom in front of a clone's data belongs to
    /// every clone and is never written; a buffer whose bytes are this handle's alone may take
    /// the segment in its own headroom instead. The segment's bytes are zero until the caller
    /// writes them.
    fn prepend(&mut self, len: usize) -> Option<&mut [u8]>;

    /// A hint: start bringing the cache line that holds `value` into the caches, so that a later
    /// read of it does not wait for memory. It reads nothing, writes nothing and cannot fail; a
    /// stage calls it for data it will read soon (the dedup buckets of a burst), so that the
    /// cache misses of several reads overlap. The default does nothing (see the crate docs).
    #[inline(always)]
    fn prefetch<T>(value: &T) {
        let _ = value;
    }

    /// A hint: start bringing the first cache line of the packet's bytes (its outermost headers)
    /// into the caches. The default prefetches `data()[0]` with [`PacketBuf::prefetch`].
    ///
    /// The pipeline does not call it today: prefetching the headers of the packets a few places
    /// ahead in the burst (DPDK l3fwd's way) did not pay where it could be measured, on packets a
    /// driver had just copied into their buffers (BENCHMARKS.md). With a NIC writing packets
    /// into memory it may, and this is where a worker would ask for it.
    #[inline(always)]
    fn prefetch_data(&self) {
        if let Some(first) = self.data().first() {
            Self::prefetch(first);
        }
    }
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

    /// The packet is for the addressed port it arrived on (outcome `control`, already counted):
    /// the sink hands it to the control side, or counts and releases it when it cannot.
    fn punt(&mut self, pkt: B);
}
