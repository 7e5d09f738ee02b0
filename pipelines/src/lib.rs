//! The packet stages of the broker, on byte buffers: no I/O, no DPDK, no `unsafe`.
#![forbid(unsafe_code)]

pub mod buf;
pub mod counters;
pub mod egress;
pub mod fixed_pool;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod inner;
pub mod neighbour;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod stage;
pub mod testing;
pub mod wire;

pub use buf::{PacketBuf, Sink, VecBuf};
pub use flow::FlowKey;
pub use outcome::{Outcome, Reason};
