//! Metrics and live status: from the workers' counters to Prometheus and `/status`.
//!
//! # Design
//! The hot path pays nothing here. Workers bump their own plain counters
//! ([`pipelines::counters`]: a relaxed load and store, no shared read-modify-write). Once a
//! second the control loop ([`crate::control::telemetry`]) takes a [`snapshot`] of the
//! appliance: the counters summed by name into typed totals through the [`ledger`], DPDK port
//! statistics and link state, a sample of the dedup table. The [`publish::Publisher`] sets the
//! series it registered from it (counters as absolute values), and the same reading becomes the
//! live [`crate::report::Status`]. The HTTP endpoint ([`crate::http`]) serves the recorder's
//! rendering and the latest status; it never reads a counter itself.
//!
//! One path for counts: the workers' counters → [`ledger::Totals`] (typed, by name) → the
//! series, the status rows and the exit summary's rows ([`rows`]). The metric names, labels and
//! help texts come from one table ([`catalog`]).
//!
//! # Limitations
//! A counter whose name disappears in a reload keeps its last total in the registry (it is not
//! deleted), which is what a Prometheus counter should do.

pub mod catalog;
pub mod ledger;
pub mod process;
pub mod publish;
pub mod rows;
pub mod snapshot;
