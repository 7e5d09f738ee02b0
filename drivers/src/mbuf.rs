//! `Mbuf`: an owned DPDK packet buffer (a chain of `rte_mbuf` segments), freed on drop.
//!
//! # Design
//! An [`Mbuf`] owns one reference to a packet: the head segment and, through `next`, the rest of
//! the chain. It is `#[repr(transparent)]` over `NonNull<rte_mbuf>`, so `Option<Mbuf>` has the
//! null-pointer niche and `[Option<Mbuf>]` has exactly the layout of DPDK's `struct rte_mbuf *[]`:
//! RX and TX bursts hand a slice of slots straight to the driver, without a copy or an
//! allocation ([`crate::port::RxQueue::rx_burst`], [`crate::port::TxQueue::tx_burst`]).
//!
//! It implements [`PacketBuf`] so the pipeline stages run on it unchanged:
//! - `data()` is the first segment (`buf_addr + data_off`, `data_len` bytes): headers live there.
//! - `truncate` cuts a chain anywhere (`rte_pktmbuf_trim` only shortens the last segment): the
//!   segment holding the new last byte is shortened, the segments after it are freed, and the
//!   head's `pkt_len` and `nb_segs` are fixed.
//! - `share` is `rte_pktmbuf_clone` into the mbuf's own pool: indirect mbufs that point at the
//!   same data, each with its own start, length and chain, so truncating a clone leaves the
//!   original as it was. A one-segment packet of at most [`SHARE_COPY_MAX`] bytes is copied into
//!   a fresh mbuf instead: cheaper than a clone's atomic reference counts, and both handles then
//!   own their bytes (so each can take a tunnel header in its headroom).
//! - `prepend` moves the start back into the head's headroom when the head's buffer is this
//!   handle's alone (what decapsulation stripped, then DPDK's headroom); otherwise (a clone, or
//!   a packet with clones) it chains a header mbuf from the packet's pool in front.
//! - `prefetch` is `rte_prefetch0` (`prefetcht0`), which safe code cannot issue; the pipeline
//!   uses it for the dedup table's buckets, and `prefetch_data` (the trait's default) for the
//!   first line of the packet's bytes.
//!
//! Writing: bytes are only handed out mutably ([`PacketBuf::data_mut`], [`Mbuf::append`]) while
//! this handle is the only one that can see them: a direct segment with a reference count of 1
//! (and, for an external buffer, a shared-info count of 1). Once shared, `data_mut` returns an
//! empty slice and `append` fails; the pipeline only writes before it shares.
//!
//! Fields of `rte_mbuf` are read and written through raw pointers, never through `&rte_mbuf`: a
//! clone dropped on another thread updates the reference count of our segments atomically, and a
//! Rust reference to the struct would claim no such write can happen.
//!
//! # Limitations
//! An `Mbuf` may be dropped on any thread. That relies on the pool being multi-producer /
//! multi-consumer, which [`crate::mempool::Mempool`] enforces (`ring_mp_mc` ops).

use std::ffi::c_uint;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

use packet::PacketBuf;

use crate::sys;

/// [`PacketBuf::share`] copies one-segment packets of at most this many bytes instead of
/// cloning them: a clone costs two atomic reference-count updates on the shared segment (and
/// the indirect mbuf's attach and detach), which cost more than copying a short packet into a
/// fresh mbuf (BENCHMARKS.md, "Tunnel egress"); longer packets are cloned.
pub const SHARE_COPY_MAX: usize = 512;

/// An owned packet buffer: one reference to a chain of DPDK mbufs, released on drop.
#[repr(transparent)]
pub struct Mbuf {
    head: NonNull<sys::rte_mbuf>,
}

// `[Option<Mbuf>]` is passed to DPDK as `struct rte_mbuf **`: check the layout the burst
// functions rely on (also guaranteed by the `Option` docs for `repr(transparent)` over
// `NonNull`).
const _: () = {
    assert!(size_of::<Option<Mbuf>>() == size_of::<*mut sys::rte_mbuf>());
    assert!(align_of::<Option<Mbuf>>() == align_of::<*mut sys::rte_mbuf>());
};

// SAFETY: an `Mbuf` is the sole owner of its reference to the chain; nothing else reaches the
// head through it. Every DPDK operation it performs (free, clone, refcount updates) is
// thread-safe: reference counts are atomic and the pools are multi-producer/multi-consumer, using
// no per-lcore cache on threads that are not EAL lcores.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a packet DPDK handed over.
    ///
    /// # Safety
    /// `head` must be the head of a valid mbuf chain whose reference the caller owns and gives
    /// away (nothing else will free it).
    pub(crate) unsafe fn from_raw(head: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { head }
    }

    /// Appends `bytes` at the end of the packet, adding segments from the packet's pool when
    /// the last one is full. Returns `false`, leaving the packet as it was, when the packet is
    /// shared (see [`PacketBuf::share`]), when the pool runs out, or when the packet would
    /// exceed DPDK's limits (4 GiB, 65535 segments).
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        let old_len = self.pkt_len();
        let fits = u32::try_from(bytes.len())
            .ok()
            .and_then(|n| n.checked_add(self.head_pkt_len()))
            .is_some();
        let Some(last) = self.segments_iter().last() else {
            return false;
        };
        if !fits || !last.is_exclusive() {
            return false;
        }
        // SAFETY: `last` is the last segment of this chain and exclusive (checked above).
        let mut rest = unsafe { self.fill_tailroom(last.raw, bytes) };
        while !rest.is_empty() {
            // SAFETY: the head's pool is the valid pool it came from; pools are never freed.
            let segment = unsafe { sys::rte_pktmbuf_alloc((*self.head.as_ptr()).pool) };
            let Some(segment) = NonNull::new(segment) else {
                self.truncate(old_len);
                return false;
            };
            // SAFETY: both are valid chains we own. On success the head adopts the empty
            // `segment` (nb_segs grows, pkt_len is unchanged); on failure we still own it.
            let chained = unsafe { sys::rte_pktmbuf_chain(self.head.as_ptr(), segment.as_ptr()) };
            if chained != 0 {
                // SAFETY: `segment` was not adopted; we own it and free it once.
                unsafe { sys::rte_pktmbuf_free(segment.as_ptr()) };
                self.truncate(old_len);
                return false;
            }
            // SAFETY: `segment` is now the last segment of this chain, fresh from the pool.
            rest = unsafe { self.fill_tailroom(segment, rest) };
        }
        true
    }

    /// Copies as much of `bytes` as fits into the tailroom of `segment` and grows its
    /// `data_len` and the head's `pkt_len`. Returns what did not fit.
    ///
    /// # Safety
    /// `segment` must be the last segment of this chain, with a data buffer only this handle
    /// reaches (exclusive, or fresh from the pool), and `pkt_len + bytes.len()` must fit a u32.
    unsafe fn fill_tailroom<'b>(
        &mut self,
        segment: NonNull<sys::rte_mbuf>,
        bytes: &'b [u8],
    ) -> &'b [u8] {
        let m = segment.as_ptr();
        // The tailroom `[data_off + data_len, buf_len)` lies inside the data buffer and belongs
        // to no packet; `data_len` grows by at most the tailroom, so stays within `buf_len`.
        // SAFETY: `segment` is a valid, exclusive segment of our chain (the caller's contract),
        // so writing its tailroom aliases nothing.
        let copied = unsafe {
            let tailroom = usize::from(sys::rte_pktmbuf_tailroom(m));
            let copied = bytes.len().min(tailroom);
            let end = usize::from((*m).data_off) + usize::from((*m).data_len);
            let dst = (*m).buf_addr.cast::<u8>().add(end);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, copied);
            // At most the tailroom, a u16 quantity.
            (*m).data_len += copied as u16;
            copied
        };
        // The caller guarantees the whole append fits in a u32 `pkt_len`.
        self.set_head_counts(self.head_pkt_len() + copied as u32, self.head_nb_segs());
        &bytes[copied..]
    }

    /// A second handle on the same bytes: `rte_pktmbuf_clone` into the head's own pool,
    /// indirect mbufs attached to every segment (a reference taken on each, atomically). `None`
    /// when the pool is exhausted. [`PacketBuf::share`] uses it for long packets.
    pub fn clone_indirect(&self) -> Option<Mbuf> {
        let m = self.head.as_ptr();
        // SAFETY: the head is a valid chain and its pool valid (pools are never freed).
        let clone = unsafe { sys::rte_pktmbuf_clone(m, (*m).pool) };
        // SAFETY: a non-NULL result is a fresh chain whose only reference is handed to us.
        NonNull::new(clone).map(|head| unsafe { Mbuf::from_raw(head) })
    }

    /// A copy of a one-segment packet in a fresh mbuf from the head's pool (its own bytes:
    /// exclusive, writable). `None` when the pool is exhausted or the packet has more than one
    /// segment or does not fit one. [`PacketBuf::share`] uses it for short packets.
    pub fn copy(&self) -> Option<Mbuf> {
        if self.head_nb_segs() != 1 {
            return None;
        }
        let m = self.head.as_ptr();
        // SAFETY: the head's pool is the valid pool it came from; pools are never freed.
        let fresh = NonNull::new(unsafe { sys::rte_pktmbuf_alloc((*m).pool) })?;
        // SAFETY: `fresh` is a valid mbuf fresh from the pool, owned here only: the handle
        // frees it on every path below.
        let copy = unsafe { Mbuf::from_raw(fresh) };
        let bytes = self.data();
        let f = fresh.as_ptr();
        // A fresh mbuf has data_len 0 and its data buffer to itself; the copy reads this
        // handle's first (and only) segment, a different buffer.
        // SAFETY: the tailroom `[data_off, buf_len)` is checked to hold `bytes` before the copy.
        unsafe {
            let room = usize::from((*f).buf_len) - usize::from((*f).data_off);
            let len = u16::try_from(bytes.len())
                .ok()
                .filter(|_| bytes.len() <= room)?;
            let dst = (*f).buf_addr.cast::<u8>().add(usize::from((*f).data_off));
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            (*f).data_len = len;
            (*f).pkt_len = u32::from(len);
        }
        Some(copy)
    }

    /// Whether the head segment's data buffer is this handle's alone (direct, not referenced by
    /// clones: [`Segment::is_exclusive`]) and its headroom holds `len` bytes: then
    /// [`PacketBuf::prepend`] needs no header mbuf.
    fn headroom_is_own(&self, len: usize) -> bool {
        let head = self.head_segment();
        // SAFETY: the head is a valid mbuf; `data_off` only changes through this handle.
        let headroom = usize::from(unsafe { (*head.as_ptr()).data_off });
        len <= headroom && head.is_exclusive()
    }

    /// [`PacketBuf::prepend`] into the head's own headroom: the packet's start moves back over
    /// `len` bytes (what decapsulation stripped, then DPDK's headroom), as `rte_pktmbuf_prepend`
    /// does, and they are zeroed.
    ///
    /// # Safety
    /// [`Mbuf::headroom_is_own`] must hold for `len`.
    unsafe fn prepend_in_headroom(&mut self, len: usize) -> &mut [u8] {
        let m = self.head.as_ptr();
        // `len <= data_off`, a u16; `data_len + len` stays within `buf_len` because the data
        // ends where it did and only the start moves back.
        let len16 = len as u16;
        // The `len` bytes are zeroed before the slice is made, which `&mut self` borrows
        // uniquely, as it does the head's fields.
        // SAFETY: the head is exclusive (the caller's contract) and `len <= data_off`.
        unsafe {
            (*m).data_off -= len16;
            (*m).data_len += len16;
            (*m).pkt_len += u32::from(len16);
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            std::ptr::write_bytes(start, 0, len);
            std::slice::from_raw_parts_mut(start, len)
        }
    }

    fn head_pkt_len(&self) -> u32 {
        // SAFETY: the head is a valid mbuf; `pkt_len` is only written through this handle.
        unsafe { (*self.head.as_ptr()).pkt_len }
    }

    fn head_nb_segs(&self) -> u16 {
        // SAFETY: the head is a valid mbuf; `nb_segs` is only written through this handle.
        unsafe { (*self.head.as_ptr()).nb_segs }
    }

    fn set_head_counts(&mut self, pkt_len: u32, nb_segs: u16) {
        let m = self.head.as_ptr();
        // SAFETY: the head is a valid mbuf this handle owns mutably; these fields describe this
        // handle's chain only (a clone has its own head).
        unsafe {
            (*m).pkt_len = pkt_len;
            (*m).nb_segs = nb_segs;
        }
    }

    /// The segments, head first.
    fn segments_iter(&self) -> Segments<'_> {
        Segments {
            next: Some(self.head),
            _chain: PhantomData,
        }
    }

    /// The head segment.
    fn head_segment(&self) -> Segment<'_> {
        Segment {
            raw: self.head,
            _chain: PhantomData,
        }
    }
}

/// One segment of a chain borrowed from its [`Mbuf`]: valid, and unchanged, for `'a`.
#[derive(Clone, Copy)]
struct Segment<'a> {
    raw: NonNull<sys::rte_mbuf>,
    _chain: PhantomData<&'a Mbuf>,
}

impl<'a> Segment<'a> {
    fn as_ptr(self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    fn data_len(self) -> u16 {
        // SAFETY: a `Segment` is a valid segment of a chain borrowed for `'a`.
        unsafe { (*self.as_ptr()).data_len }
    }

    /// The segment's bytes.
    fn bytes(self) -> &'a [u8] {
        let m = self.as_ptr();
        // The chain is borrowed for `'a`, so this handle does not change the bytes meanwhile, and
        // no other handle writes shared bytes (`data_mut` and `append` require exclusivity).
        // SAFETY: for a valid mbuf, `buf_addr + data_off` starts `data_len` initialised bytes
        // inside its data buffer (DPDK's `rte_pktmbuf_mtod`).
        unsafe {
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            std::slice::from_raw_parts(start, usize::from((*m).data_len))
        }
    }

    /// Whether the segment's data buffer is reachable through this segment only: not an
    /// indirect clone, not referenced by clones, and, for an external buffer, not shared with
    /// other mbufs.
    fn is_exclusive(self) -> bool {
        let m = self.as_ptr();
        // SAFETY: the segment is valid; `ol_flags` and `shinfo` are set when the mbuf is
        // attached and only change under its owner; DPDK's helpers read the counts atomically.
        unsafe {
            let flags = (*m).ol_flags;
            if flags & sys::SHIM_MBUF_F_INDIRECT != 0 || sys::rte_mbuf_refcnt_read(m) != 1 {
                return false;
            }
            flags & sys::SHIM_MBUF_F_EXTERNAL == 0
                || sys::rte_mbuf_ext_refcnt_read((*m).shinfo) == 1
        }
    }
}

/// Walks a chain through `next`, borrowing the `Mbuf` so the chain cannot change meanwhile.
struct Segments<'a> {
    next: Option<NonNull<sys::rte_mbuf>>,
    _chain: PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let raw = self.next?;
        // SAFETY: `raw` is a valid segment of a chain borrowed from its `Mbuf`; its `next` is
        // NULL or the following valid segment.
        self.next = NonNull::new(unsafe { (*raw.as_ptr()).next });
        Some(Segment {
            raw,
            _chain: PhantomData,
        })
    }
}

/// Where to cut a chain of segments with these data lengths so that it holds `len` bytes: the
/// index of the last segment kept and its new data length. The first segment is always kept,
/// even when `len` is 0. `None` when the segments hold fewer than `len` bytes.
fn cut_point(segment_lens: impl IntoIterator<Item = u16>, len: u32) -> Option<(usize, u16)> {
    let mut before = 0u32;
    for (index, seg_len) in segment_lens.into_iter().enumerate() {
        let through = before.saturating_add(u32::from(seg_len));
        if through >= len {
            // `len - before` is at most `seg_len`, a u16.
            let keep = u16::try_from(len - before).unwrap_or(seg_len);
            return Some((index, keep));
        }
        before = through;
    }
    None
}

impl PacketBuf for Mbuf {
    fn data(&self) -> &[u8] {
        self.head_segment().bytes()
    }

    fn data_mut(&mut self) -> &mut [u8] {
        if !self.head_segment().is_exclusive() {
            return &mut [];
        }
        let m = self.head.as_ptr();
        // Exclusive (checked above), and `&mut self` keeps anyone from sharing it meanwhile.
        // SAFETY: the head is valid and its data buffer reachable through this handle only, so a
        // unique borrow of its `data_len` bytes at `buf_addr + data_off` aliases nothing.
        unsafe {
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            std::slice::from_raw_parts_mut(start, usize::from((*m).data_len))
        }
    }

    fn pkt_len(&self) -> usize {
        self.head_pkt_len() as usize
    }

    fn segments(&self) -> usize {
        usize::from(self.head_nb_segs())
    }

    fn for_each_segment(&self, mut f: impl FnMut(&[u8])) {
        for segment in self.segments_iter() {
            f(segment.bytes());
        }
    }

    fn strip_front(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if n > self.head_segment().data_len() {
            return false;
        }
        // `rte_pktmbuf_adj` moves `data_off` forward and shrinks `data_len` and `pkt_len`, all
        // fields of this handle's own head (a clone has its own head).
        // SAFETY: the head is a valid mbuf we own mutably, and `n <= data_len`.
        let start = unsafe { sys::rte_pktmbuf_adj(self.head.as_ptr(), n) };
        !start.is_null()
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.pkt_len() {
            return;
        }
        // `len < pkt_len <= u32::MAX`.
        let len = len as u32;
        let Some((last_index, last_len)) =
            cut_point(self.segments_iter().map(Segment::data_len), len)
        else {
            return;
        };
        let Some(last) = self.segments_iter().nth(last_index) else {
            return;
        };
        let m = last.as_ptr();
        // `data_len` and `next` of `m` belong to this chain (a clone's segments are separate
        // indirect mbufs); `last_len` is at most the current `data_len`.
        // SAFETY: `m` is a segment of the chain this handle owns mutably; the detached tail is
        // a valid chain of segments this handle owned, freed once.
        unsafe {
            (*m).data_len = last_len;
            let tail = std::mem::replace(&mut (*m).next, std::ptr::null_mut());
            if !tail.is_null() {
                sys::rte_pktmbuf_free(tail);
            }
        }
        // At most the old nb_segs, a u16.
        self.set_head_counts(len, (last_index + 1) as u16);
    }

    fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.headroom_is_own(len) {
            // SAFETY: just checked.
            return Some(unsafe { self.prepend_in_headroom(len) });
        }
        // SAFETY: the head's pool is the valid pool it came from; pools are never freed.
        let header = NonNull::new(unsafe { sys::rte_pktmbuf_alloc((*self.head.as_ptr()).pool) })?;
        let h = header.as_ptr();
        // A fresh mbuf: data_off at the headroom, data_len 0, a data buffer of buf_len bytes.
        // SAFETY: `h` is a valid mbuf fresh from the pool, owned here only.
        let room = unsafe { usize::from((*h).buf_len) - usize::from((*h).data_off) };
        let Some(len16) = u16::try_from(len).ok().filter(|_| len <= room) else {
            // SAFETY: `h` is ours and not chained: freed once.
            unsafe { sys::rte_pktmbuf_free(h) };
            return None;
        };
        // The bytes are zeroed before any slice of them exists. `rte_pktmbuf_chain(h, head)`
        // appends our chain after `h`, adding its `pkt_len` and `nb_segs` to `h`'s; on failure
        // (too many segments) nothing changed and we still own both.
        // SAFETY: `len <= room`: `h`'s own buffer (fresh, direct), and both chains are ours.
        unsafe {
            let start = (*h).buf_addr.cast::<u8>().add(usize::from((*h).data_off));
            std::ptr::write_bytes(start, 0, len);
            (*h).data_len = len16;
            (*h).pkt_len = u32::from(len16);
            if sys::rte_pktmbuf_chain(h, self.head.as_ptr()) != 0 {
                sys::rte_pktmbuf_free(h);
                return None;
            }
        }
        // The chain now starts at the header; this handle owns it (its one reference).
        self.head = header;
        // SAFETY: as above: `len` bytes of the header's exclusive buffer, borrowed through
        // `&mut self` for as long as the slice lives.
        Some(unsafe {
            let start = (*h).buf_addr.cast::<u8>().add(usize::from((*h).data_off));
            std::slice::from_raw_parts_mut(start, len)
        })
    }

    fn prefetch<T>(value: &T) {
        // `rte_prefetch0` is DPDK's `prefetcht0`, a hint: it never faults, whatever the address
        // (an unmapped one is ignored).
        // SAFETY: reads nothing the program can observe, writes nothing; the pointer is valid.
        unsafe { sys::rte_prefetch0((value as *const T).cast()) }
    }

    fn share(&self) -> Option<Mbuf> {
        if self.head_nb_segs() == 1 && self.pkt_len() <= SHARE_COPY_MAX {
            self.copy()
        } else {
            self.clone_indirect()
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // `rte_pktmbuf_free` releases every segment, returning to its pool each whose count
        // drops to zero.
        // SAFETY: this handle owns one reference to a valid chain and is never used again.
        unsafe { sys::rte_pktmbuf_free(self.head.as_ptr()) }
    }
}

impl std::ops::Deref for Mbuf {
    type Target = [u8];

    /// The first segment's bytes, as [`PacketBuf::data`]: wire views work on an `Mbuf` directly.
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl AsRef<[u8]> for Mbuf {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segments())
            .field("first_segment_len", &self.data().len())
            .finish()
    }
}

/// Frees every packet in `pkts` at once (`rte_pktmbuf_free_bulk`, which groups segments by pool)
/// and leaves every slot `None`.
pub fn free_bulk(pkts: &mut [Option<Mbuf>]) {
    for chunk in pkts.chunks_mut(c_uint::MAX as usize) {
        // DPDK skips NULL entries; the slots are emptied right after without running `Drop`.
        // SAFETY: `[Option<Mbuf>]` is `struct rte_mbuf *[]` with NULL for `None` (asserted at
        // compile time above), and each chain is freed once.
        unsafe { sys::rte_pktmbuf_free_bulk(as_raw_slots(chunk), chunk.len() as c_uint) };
        for slot in chunk.iter_mut() {
            std::mem::forget(slot.take());
        }
    }
}

/// `pkts` as DPDK's `struct rte_mbuf **`.
pub(crate) fn as_raw_slots(pkts: &mut [Option<Mbuf>]) -> *mut *mut sys::rte_mbuf {
    // `Option<Mbuf>` is a nullable `*mut rte_mbuf` (layout asserted at the top of this file).
    pkts.as_mut_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::cut_point;

    #[test]
    fn cut_inside_a_middle_segment() {
        assert_eq!(cut_point([3, 2, 1], 4), Some((1, 1)));
        assert_eq!(cut_point([3, 2, 1], 5), Some((1, 2)));
    }

    #[test]
    fn cut_on_a_segment_boundary_keeps_the_full_segment() {
        assert_eq!(cut_point([3, 2, 1], 3), Some((0, 3)));
        assert_eq!(cut_point([2048, 2048, 2048, 856], 4096), Some((1, 2048)));
    }

    #[test]
    fn cut_to_nothing_keeps_an_empty_first_segment() {
        assert_eq!(cut_point([3, 2, 1], 0), Some((0, 0)));
        assert_eq!(cut_point([0, 5], 0), Some((0, 0)));
    }

    #[test]
    fn empty_leading_segments_are_skipped() {
        assert_eq!(cut_point([0, 5], 3), Some((1, 3)));
    }

    #[test]
    fn a_length_beyond_the_chain_has_no_cut() {
        assert_eq!(cut_point([3, 2, 1], 7), None);
        assert_eq!(cut_point([], 1), None);
        assert_eq!(cut_point([3, 2, 1], 6), Some((2, 1)));
    }
}
