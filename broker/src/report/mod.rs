//! What the broker tells the outside world, as data: the JSON of `GET /status`, of
//! `POST /reload` and of the exit summary (`broker run --summary-json`), and the tables
//! `broker status`, `broker reload` and `broker run` print from the same structs.
//!
//! # Design
//! These types are the contract between the running broker and its clients (the CLI, scripts,
//! the tests): the broker fills them ([`crate::metrics`], [`crate::control`]), serialises them,
//! and the CLI deserialises and prints them ([`crate::client`]). They hold data and its
//! printing only, and depend on no other module of the crate, so every side can use them.

pub mod health;
pub mod reload;
pub mod resources;
pub mod status;
pub mod summary;
pub mod units;

pub use health::Health;
pub use reload::{CounterChange, ReloadOutcome, ReloadStats, ReloadVerdict};
pub use resources::Resources;
pub use status::{
    AddressedStatus, ConfigStatus, ControlStatus, DedupStatus, GroupPortStatus, GroupStatus,
    LinkStatus, PoolStatus, PortRole, PortStatus, Status, TunnelStatus, WorkerStatus,
};
pub use summary::{GroupRow, IngressRow, OutcomeRow, PortRow, SessionRow, StopReason, Summary};
pub use units::si;
