//! DPDK 22.11 for the broker: generated bindings and the safe wrappers around them.
//!
//! # Design
//! Unsafe code is fenced in three layers:
//! 1. `sys` (private): bindgen's output for `src/shim.h`, produced by `build.rs` against the
//!    system's `libdpdk` (pkg-config), with C wrappers for DPDK's `static inline` functions. The
//!    only raw FFI.
//! 2. The safe wrappers, one idea per module: [`eal`] (init once, lcores, launch, TSC),
//!    [`mempool`] (pools that live for the process), [`mbuf`] (the owned packet, implementing
//!    [`packet::PacketBuf`]), [`port`] (configure, start, stats, and the RX/TX queue handles
//!    of the data path), [`flow`] (flow rules: RSS on the inner headers), [`acl`] (DPDK's classifier, for
//!    the comparison with the broker's filter), [`error`] (`rte_errno` typed once), and beside
//!    DPDK [`memory`] (huge pages under the broker's own large allocations: `madvise`). Every `unsafe` block states the
//!    invariant it relies on in a `// SAFETY:` comment.
//! 3. Every other crate of the workspace uses only this safe API.
//!
//! Lifetimes: the EAL is never cleaned up and pools are never freed, so no handle can outlive
//! what it points to (see [`eal`]). Queue handles make polling exclusive and keep a port from
//! being reconfigured, stopped or closed under a worker (see [`port`]).

#![warn(missing_docs)]

mod sys;

pub mod acl;
pub mod eal;
pub mod error;
pub mod flow;
pub mod mbuf;
pub mod memory;
pub mod mempool;
pub mod port;

pub use acl::{AclInputV4, AclRuleV4, AclV4};
pub use eal::{Eal, current_lcore, dpdk_version, isolated_args, rdtsc};
pub use error::DpdkError;
pub use flow::{Tunnel, symmetric_rss_key};
pub use mbuf::{Mbuf, free_bulk};
pub use mempool::Mempool;
pub use port::{
    Link, Port, PortConfig, PortInfo, PortSetup, PortStats, QueueStats, RxQueue, TxQueue,
};
