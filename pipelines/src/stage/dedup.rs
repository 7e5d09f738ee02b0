//! De-duplication: a tool group never receives the same inner packet twice within the window.
//!
//! When both ends of a connection are mirrored, each packet arrives twice, under two outer
//! sources and VNIs, often on two RX queues and so on two workers. [`DedupKeyer`] turns the inner
//! packet into a [`DedupKey`] that is equal for the two copies (TTL, checksum and optionally
//! DSCP/ECN and inner VLANs ignored); [`DedupTable`] is the fixed-size, lock-free table all
//! workers share through an `Arc` to decide which copy is first. It keeps 50 bits of each key
//! with a coarse timestamp in one 64-bit word: a new packet is taken for a duplicate with a
//! small stated probability (at 10 million checks a second and half load, once in 163 days;
//! see the table's docs).
//!
//! The table keeps one entry per (packet, tool group): a session's groups differ from one end's
//! session to the other's (the client's ENI may feed an IDS and a recorder, the server's only the
//! IDS), so "first copy" is decided per group. When the two copies of a packet are checked at
//! the same moment on two workers, each group still gets the packet once, but the copies can
//! split the groups between them (one copy reaches the IDS, the other the recorder): both copies
//! then count as `delivered`, and the `duplicate` outcome, which means that *every* group of the
//! session had the packet already, is one short; the per-group duplicate counters stay exact.

mod key;
mod table;

pub use key::{DedupKey, DedupKeyer};
pub use table::{Bucket, DedupTable, Seen};
