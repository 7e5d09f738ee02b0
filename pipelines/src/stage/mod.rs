//! The packet stages, one file each, in the order a packet meets them.

pub mod decap;
pub mod filter;
pub mod dedup;
pub mod balance;
pub mod maglev;
