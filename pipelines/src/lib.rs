//! The packet stages of the broker, on byte buffers: no I/O, no DPDK, no `unsafe`.
//!
//! The test harness (`testing`: packet builders and a collecting sink; `fixed_pool`: a
//! non-allocating buffer; `fuzzing`: the fuzz targets' logic; `VecBuf`) is compiled only for this
//! crate's tests and for the `testing` feature, which tests, benches and the fuzz crate enable.
#![forbid(unsafe_code)]

pub mod buf;
pub mod counters;
pub mod egress;
#[cfg(any(test, feature = "testing"))]
pub mod fixed_pool;
pub mod flow;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod inner;
pub mod neighbour;
pub mod observe;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod stage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;

#[cfg(any(test, feature = "testing"))]
pub use buf::VecBuf;
pub use buf::{PacketBuf, Sink};
pub use flow::FlowKey;
pub use outcome::{Outcome, Reason};
