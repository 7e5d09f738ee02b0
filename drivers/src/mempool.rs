//! `Mempool`: a pool of packet mbufs, alive for the rest of the process.
//!
//! # Design
//! A [`Mempool`] is a `Copy` handle on an `rte_mempool` made by `rte_pktmbuf_pool_create_by_ops`.
//! Pools are **never freed**: an [`Mbuf`] (and every mbuf a driver holds in its rings) points
//! back at its pool, and freeing a pool while one of them exists would be a use after free. A
//! process creates its pools once at start (one per NUMA socket is typical), so nothing is lost
//! by keeping them; the memory goes back with the process (see the `eal` module docs).
//!
//! The pool uses the `ring_mp_mc` ops explicitly, whatever `--mbuf-pool-ops-name` says: mbufs
//! are freed from any thread (an `Mbuf` is `Send`), which needs a multi-producer/multi-consumer
//! pool.
//!
//! # Limitations
//! Hardware mempool offloads (the ops some NICs prefer) are not used.

use std::ffi::{CStr, CString, c_int};
use std::fmt;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::Mbuf;
use crate::sys;

/// Thread-safe pool operations: see the module docs.
const POOL_OPS: &CStr = c"ring_mp_mc";

/// A pool of packet mbufs. Copy it freely: pools live for the rest of the process.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
}

// SAFETY: the handle only names a pool that is never freed. Allocation, free and the counters
// go through multi-producer/multi-consumer ring ops (forced at creation) and per-lcore caches
// that each EAL thread owns alone, so any thread may use the pool at any time.
unsafe impl Send for Mempool {}
// SAFETY: as for `Send`; `&Mempool` offers nothing beyond what the `Copy` handle offers.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Bytes of packet data per mbuf that hold a standard 1518-byte frame in one segment.
    pub const DEFAULT_DATA_ROOM: u16 = 2048;

    /// Creates the pool `name` (unique in the process) of `count` mbufs, each with
    /// `data_room` bytes for packet data (DPDK's headroom, `RTE_PKTMBUF_HEADROOM`, is added on
    /// top), a per-lcore cache of `cache` mbufs, on NUMA socket `socket` (`None`: any).
    ///
    /// DPDK works best with `count` one less than a power of two and `cache` dividing it; it
    /// refuses (`EINVAL`) a `cache` above 512 or above `count / 1.5`, and a `name` already used
    /// (`EEXIST`).
    pub fn new(
        _eal: &Eal,
        name: &str,
        count: u32,
        cache: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInName(name.to_owned()))?;
        let room = data_room
            .checked_add(sys::RTE_PKTMBUF_HEADROOM as u16)
            .ok_or(DpdkError::DataRoomTooLarge(data_room))?;
        let socket = match socket {
            None => sys::SOCKET_ID_ANY,
            Some(s) => c_int::try_from(s).unwrap_or(sys::SOCKET_ID_ANY),
        };
        // SAFETY: EAL is initialised (`_eal`); the name and ops strings are NUL-terminated and
        // only read during the call (DPDK copies the name). The result is a pool or NULL.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create_by_ops(
                c_name.as_ptr(),
                count,
                cache,
                0,
                room,
                socket,
                POOL_OPS.as_ptr(),
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool { raw })
            .ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create_by_ops"))
    }

    /// A new empty packet (one segment, no data) from this pool; `None` when it is exhausted.
    /// Fill it with [`Mbuf::append`].
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the process; the result is a fresh mbuf or NULL.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: a non-NULL result is a fresh packet whose only reference is handed to us.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs handed out and not yet returned (held by packets, clones or drivers' rings).
    /// Mbufs sitting in per-lcore caches count as available.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid; the count reads the ring and the caches without locking.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Mbufs ready to be allocated, in the pool's ring and its per-lcore caches.
    pub fn available(&self) -> u32 {
        // SAFETY: as for `in_use`.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Number of mbufs the pool was created with.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pool is valid and `size` is set once at creation.
        unsafe { (*self.raw.as_ptr()).size }
    }

    /// Bytes of packet data per mbuf, headroom excluded (what [`Mempool::new`] was given).
    pub fn data_room(&self) -> u16 {
        // SAFETY: the pool is a packet mbuf pool (made by `new`), whose private area holds the
        // data room size that `rte_pktmbuf_data_room_size` reads.
        let room = unsafe { sys::rte_pktmbuf_data_room_size(self.raw.as_ptr()) };
        room.saturating_sub(sys::RTE_PKTMBUF_HEADROOM as u16)
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        // SAFETY: the pool is valid; `name` is a NUL-terminated array set once at creation.
        let name = unsafe { CStr::from_ptr((*self.raw.as_ptr()).name.as_ptr()) };
        name.to_string_lossy().into_owned()
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish()
    }
}
