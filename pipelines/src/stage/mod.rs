//! The packet stages, one file each, in the order a packet meets them.

pub mod balance;
pub mod decap;
pub mod dedup;
pub mod filter;
pub mod flow_cache;
pub mod local;
pub mod maglev;
