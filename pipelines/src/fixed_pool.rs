//! A [`PacketBuf`] from a fixed pool of buffers, and a sink that releases what it is given: for
//! benches and tests that must not allocate per packet (the zero-allocation test, the
//! full-pipeline bench).
//!
//! # Design
//! [`VecBuf`](crate::VecBuf) allocates on every `new` and every `share`, by design (tests observe
//! behaviour, not memory). A [`FixedPool`] allocates all its buffers once, up front, and hands
//! them out as [`PoolBuf`]s, which give their storage back when dropped — the way a DPDK mempool
//! recycles mbufs. `share` takes a second buffer from the pool and copies the bytes (an mbuf clone
//! copies nothing, but neither allocates); an empty pool makes `share` return `None`, as a DPDK
//! clone does when the pool is exhausted.
//!
//! # Limitations
//! One segment per packet, at most the pool's buffer size. Not `Send` (the pool is an `Rc`): one
//! pool per thread.
#![doc(hidden)]

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::buf::{PacketBuf, Sink};

/// Buffers allocated once; [`PoolBuf`]s borrow them and give them back on drop.
pub struct FixedPool {
    free: RefCell<Vec<Vec<u8>>>,
    buffer_size: usize,
    /// Bytes left in front of every packet (an mbuf's headroom), for [`PacketBuf::prepend`].
    headroom: usize,
    capacity: usize,
}

impl fmt::Debug for FixedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedPool")
            .field("buffer_size", &self.buffer_size)
            .field("capacity", &self.capacity)
            .field("available", &self.available())
            .finish()
    }
}

impl FixedPool {
    /// `count` buffers of `buffer_size` bytes, all allocated now.
    pub fn new(count: usize, buffer_size: usize) -> Rc<FixedPool> {
        FixedPool::with_headroom(count, buffer_size, 0)
    }

    /// The same, with `headroom` bytes (zeroed on every [`FixedPool::packet`]) in front of every
    /// packet, as DPDK's mbufs have `RTE_PKTMBUF_HEADROOM`: room for [`PacketBuf::prepend`]
    /// beyond what decapsulation strips (GENEVE over IPv6 adds more than VXLAN over IPv4 takes
    /// off).
    pub fn with_headroom(count: usize, buffer_size: usize, headroom: usize) -> Rc<FixedPool> {
        let free = (0..count)
            .map(|_| Vec::with_capacity(headroom + buffer_size))
            .collect();
        Rc::new(FixedPool {
            free: RefCell::new(free),
            buffer_size,
            headroom,
            capacity: count,
        })
    }

    /// Buffers not handed out.
    pub fn available(&self) -> usize {
        self.free.borrow().len()
    }

    /// A packet holding a copy of `bytes`, or `None` when the pool is empty or `bytes` does not
    /// fit a buffer. Allocates nothing.
    pub fn packet(self: &Rc<Self>, bytes: &[u8]) -> Option<PoolBuf> {
        if bytes.len() > self.buffer_size {
            return None;
        }
        let mut storage = self.free.borrow_mut().pop()?;
        storage.clear();
        // Within the capacity reserved in `with_headroom`.
        storage.resize(self.headroom, 0);
        storage.extend_from_slice(bytes);
        Some(PoolBuf {
            start: self.headroom,
            storage,
            pool: Rc::clone(self),
        })
    }

    fn give_back(&self, storage: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        // Never beyond the `count` slots reserved in `new`: every buffer came from here.
        if free.len() < self.capacity {
            free.push(storage);
        }
    }
}

/// A packet in a buffer of a [`FixedPool`]; the buffer goes back to the pool on drop.
pub struct PoolBuf {
    storage: Vec<u8>,
    /// Offset of the packet's first byte in `storage`.
    start: usize,
    pool: Rc<FixedPool>,
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuf")
            .field("pkt_len", &self.pkt_len())
            .finish()
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.storage));
    }
}

impl PacketBuf for PoolBuf {
    fn data(&self) -> &[u8] {
        self.storage.get(self.start..).unwrap_or_default()
    }

    fn data_mut(&mut self) -> &mut [u8] {
        self.storage.get_mut(self.start..).unwrap_or_default()
    }

    fn pkt_len(&self) -> usize {
        self.storage.len() - self.start
    }

    fn segments(&self) -> usize {
        1
    }

    fn for_each_segment(&self, mut f: impl FnMut(&[u8])) {
        f(self.data());
    }

    fn strip_front(&mut self, n: usize) -> bool {
        if n > self.pkt_len() {
            return false;
        }
        self.start += n;
        true
    }

    fn truncate(&mut self, len: usize) {
        if len < self.pkt_len() {
            self.storage.truncate(self.start + len);
        }
    }

    fn share(&self) -> Option<PoolBuf> {
        self.pool.packet(self.data())
    }

    /// Into the room in front of the packet (what decapsulation stripped): a pool buffer is
    /// never shared (`share` copies), so that room is this packet's alone. No allocation, which
    /// a bench wants; the real header mbuf's allocation is measured end to end.
    fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(len)?;
        self.start = start;
        let header = &mut self.storage[start..start + len];
        header.fill(0);
        Some(header)
    }
}

/// A sink that counts what it is given, per tool port, and drops it (buffers go back to their
/// pool). Allocates only in [`CountingSink::new`].
#[derive(Debug)]
pub struct CountingSink {
    /// Packets delivered to each tool port.
    pub delivered: Box<[u64]>,
    /// Bytes delivered to each tool port.
    pub delivered_bytes: Box<[u64]>,
    pub discarded: u64,
}

impl CountingSink {
    /// A sink for `tool_ports` tool ports.
    pub fn new(tool_ports: usize) -> CountingSink {
        CountingSink {
            delivered: vec![0; tool_ports].into_boxed_slice(),
            delivered_bytes: vec![0; tool_ports].into_boxed_slice(),
            discarded: 0,
        }
    }

    /// Packets delivered to all ports.
    pub fn total_delivered(&self) -> u64 {
        self.delivered.iter().sum()
    }
}

impl<B: PacketBuf> Sink<B> for CountingSink {
    fn deliver(&mut self, port: u16, pkt: B) {
        let port = usize::from(port);
        if let (Some(n), Some(bytes)) = (
            self.delivered.get_mut(port),
            self.delivered_bytes.get_mut(port),
        ) {
            *n += 1;
            *bytes += pkt.pkt_len() as u64;
        }
    }

    fn discard(&mut self, _pkt: B) {
        self.discarded += 1;
    }

    fn punt(&mut self, _pkt: B) {
        self.discarded += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_return_to_the_pool() {
        let pool = FixedPool::new(2, 64);
        let a = pool.packet(&[1, 2, 3]).unwrap();
        let b = a.share().unwrap();
        assert_eq!(pool.available(), 0);
        assert!(a.share().is_none(), "an empty pool cannot share");
        assert!(pool.packet(&[0; 65]).is_none());
        drop(a);
        assert_eq!(pool.available(), 1);
        assert_eq!(b.data(), &[1, 2, 3]);
        drop(b);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn strip_truncate_and_independent_shares() {
        let pool = FixedPool::new(4, 64);
        let mut a = pool.packet(&[1, 2, 3, 4, 5, 6]).unwrap();
        assert!(a.strip_front(2));
        assert!(!a.strip_front(5));
        let mut b = a.share().unwrap();
        b.truncate(2);
        a.truncate(10);
        assert_eq!((a.data(), b.data()), (&[3, 4, 5, 6][..], &[3, 4][..]));
        a.data_mut()[0] = 9;
        assert_eq!(b.data()[0], 3);
    }

    #[test]
    fn counting_sink_counts_per_port_and_releases() {
        let pool = FixedPool::new(2, 64);
        let mut sink = CountingSink::new(2);
        sink.deliver(1, pool.packet(&[0; 10]).unwrap());
        sink.discard(pool.packet(&[0; 3]).unwrap());
        sink.deliver(7, pool.packet(&[0; 3]).unwrap()); // no such port: not counted
        assert_eq!((&*sink.delivered, sink.discarded), (&[0, 1][..], 1));
        assert_eq!(sink.delivered_bytes[1], 10);
        assert_eq!(pool.available(), 2);
    }
}
