//! De-duplication: an analyzer never receives the same inner packet twice, and receives every
//! packet that a copy keyed to it carries.
//!
//! When both ends of a connection are mirrored, each packet arrives twice, under two sessions
//! (or two outer sources of one session), often on two RX queues and so on two workers — in a
//! fleet, often on two brokers. Each copy is keyed to a port of each tool group of its session by
//! the group's `balance`: both copies key to one port under `flow` and `ip-pair` (the hashes are
//! symmetric), to each end's own port under `source` (each interface's analyzer sees whole
//! connections of its interface, both directions), and a `round-robin` group has no key. The rule
//! for every group and port: the port receives the packet once if a copy keyed to it passes its
//! session's filter, never twice. Two ways to find the second copy, chosen by `[dedup] mode`:
//!
//! - **the window** ([`DedupTable`], [`DedupKeyer`]): a fixed-size, lock-free table that all
//!   workers of one broker share. [`DedupKey`] is equal for the two copies (TTL, checksum and
//!   optionally DSCP/ECN and inner VLANs ignored). The table keeps 50 bits of each key with a
//!   coarse timestamp in one 64-bit word: a new packet is taken for a duplicate with a small
//!   stated probability (at 10 million checks a second and half load, once in 163 days; see the
//!   table's docs). The identity checked is (packet, tool port) for
//!   hash-balanced groups — so the two copies of a `source` group that key to two ports are both
//!   delivered, and two that key to one port are not — and (packet, group) for round-robin groups,
//!   whose port is chosen after the check. Whichever copy is checked first wins. The table sees
//!   only this broker's copies.
//! - **the sender rule** ([`SenderRule`]): decided from the config alone, per packet, no table: the
//!   copy taken at the receiver is dropped for each group where the copy taken at the sender
//!   reaches the same port (see [`sender`]). Every broker of a fleet drops the same copies.
//!
//! `"sender+window"` applies the rule, then the window to what is left.
//!
//! When the two copies of a packet are checked at the same moment on two workers, each port
//! still gets the packet once, but the copies can split the groups between them (one copy
//! reaches the IDS, the other the recorder): both copies then count as `delivered`, and the
//! `duplicate` outcome, which means that *every* group of the session had the packet already,
//! is one short; the per-group duplicate counters stay exact.

mod key;
pub mod sender;
mod table;

pub use key::{DedupKey, DedupKeyer};
pub use sender::{SenderRule, Viewpoint};
pub use table::{Bucket, DedupTable, HUGE_PAGE, Seen};
