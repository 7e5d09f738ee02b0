//! De-duplication: a tool group never receives the same inner packet twice within the window.
//!
//! When both ends of a connection are mirrored, each packet arrives twice, under two outer
//! sources and VNIs, often on two RX queues and so on two workers. [`DedupKeyer`] turns the inner
//! packet into a [`DedupKey`] that is equal for the two copies (TTL, checksum and optionally
//! DSCP/ECN and inner VLANs ignored); [`DedupTable`] is the fixed-size, lock-free table all
//! workers share through an `Arc` to decide which copy is first.

mod key;
mod table;

pub use key::{DedupKey, DedupKeyer};
pub use table::{DedupTable, Seen};
