//! What the control plane owns and the data plane never sees.
//!
//! The running config (the one the current plan was built from), how many configs were loaded,
//! the totals of the counter sets reloads retired ([`Ledger`]), and the reload counts. The
//! control loop is its only writer; the metrics and status readings borrow it.

use std::sync::Arc;

use config::ValidatedConfig;
use pipelines::counters::WorkerCounters;

use crate::metrics::ledger::{Ledger, Totals};
use crate::report::ReloadStats;

/// The control plane's state.
#[derive(Debug)]
pub struct ControlState {
    /// The config the current plan was built from.
    pub config: ValidatedConfig,
    /// Configurations loaded since start: 1 for the first (a reload adds one).
    pub generation: u64,
    /// Totals of the counter sets retired with the plans that carried them.
    pub ledger: Ledger,
    /// Reloads attempted since start, by outcome.
    pub reloads: ReloadStats,
}

impl ControlState {
    /// The state of a broker that has just started with `config`.
    pub fn new(config: ValidatedConfig) -> ControlState {
        ControlState {
            config,
            generation: 1,
            ledger: Ledger::default(),
            reloads: ReloadStats::default(),
        }
    }

    /// Everything counted so far, `live` being the current plan's counters.
    pub fn totals(&self, live: &[Arc<WorkerCounters>]) -> Totals {
        self.ledger.totals(&self.config, live)
    }

    /// The config file, for log lines.
    pub fn config_path(&self) -> String {
        self.config
            .path
            .as_ref()
            .map_or_else(|| "the config".to_owned(), |p| p.display().to_string())
    }
}
