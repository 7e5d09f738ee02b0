//! The packet stages of the broker, on byte buffers: no I/O, no DPDK, no `unsafe`.
#![forbid(unsafe_code)]

pub mod buf;
pub mod flow;
pub mod outcome;
pub mod stage;

pub use buf::{PacketBuf, Sink, VecBuf};
pub use flow::FlowKey;
pub use outcome::{Outcome, Reason};
