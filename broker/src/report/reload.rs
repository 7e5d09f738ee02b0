//! What a reload came to: the answer of `POST /reload`, what `broker reload` prints, and the
//! reload counts `/status` and the metrics show.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What became of a reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new config runs.
    Applied {
        config_generation: u64,
        plan_generation: u64,
        /// Whether the plan kept the counters or brought new ones (another shape).
        counters: CounterChange,
        /// The new config's warnings.
        warnings: Vec<String>,
    },
    /// The file cannot be read or is not a valid config: nothing changed.
    Invalid { error: String },
    /// The config is valid but changes what only a restart can change: nothing changed.
    NeedsRestart { error: String, changes: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterChange {
    /// Same sessions, groups, ports and rules: the plan counts into the same counters.
    Kept,
    /// Another shape: new counters; the old ones were retired into the ledger.
    Renewed,
}

/// Which way a reload went, without its details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadVerdict {
    /// The new config runs.
    Applied,
    /// Refused: the file was unreadable or invalid.
    Invalid,
    /// Refused: the change needs a restart.
    NeedsRestart,
}

impl ReloadVerdict {
    /// `applied`, `invalid`, `needs_restart`: also the `reason` label of
    /// `broker_config_reload_failures_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadVerdict::Applied => "applied",
            ReloadVerdict::Invalid => "invalid",
            ReloadVerdict::NeedsRestart => "needs_restart",
        }
    }
}

impl fmt::Display for ReloadVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReloadOutcome {
    pub fn verdict(&self) -> ReloadVerdict {
        match self {
            ReloadOutcome::Applied { .. } => ReloadVerdict::Applied,
            ReloadOutcome::Invalid { .. } => ReloadVerdict::Invalid,
            ReloadOutcome::NeedsRestart { .. } => ReloadVerdict::NeedsRestart,
        }
    }

    /// The error of a refused reload.
    pub fn error(&self) -> Option<&str> {
        match self {
            ReloadOutcome::Applied { .. } => None,
            ReloadOutcome::Invalid { error } | ReloadOutcome::NeedsRestart { error, .. } => {
                Some(error)
            }
        }
    }

    /// The HTTP status `POST /reload` answers with.
    pub fn http_code(&self) -> u16 {
        match self {
            ReloadOutcome::Applied { .. } => 200,
            // The request was fine; the file it names is not (Unprocessable Content).
            ReloadOutcome::Invalid { .. } => 422,
            // Conflicts with the running appliance.
            ReloadOutcome::NeedsRestart { .. } => 409,
        }
    }
}

impl fmt::Display for ReloadOutcome {
    /// One line (or a few) for people: what `broker reload` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadOutcome::Applied {
                config_generation,
                plan_generation,
                counters,
                warnings,
            } => {
                write!(
                    f,
                    "reloaded: config generation {config_generation} running (plan {plan_generation}; counters {})",
                    match counters {
                        CounterChange::Kept => "kept",
                        CounterChange::Renewed =>
                            "renewed: another shape, the old totals kept by name",
                    }
                )?;
                for warning in warnings {
                    write!(f, "\nwarning: {warning}")?;
                }
                Ok(())
            }
            ReloadOutcome::Invalid { error } => {
                write!(
                    f,
                    "reload refused: invalid config, the running one is kept:\n{error}"
                )
            }
            ReloadOutcome::NeedsRestart { changes, .. } => write!(
                f,
                "reload refused: these changes need a restart (broker run), the running config is kept:\n  {}",
                changes.join("\n  ")
            ),
        }
    }
}

/// The reload counts `/status` and the metrics show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStats {
    pub applied: u64,
    /// Refused: the file was unreadable or invalid.
    pub invalid: u64,
    /// Refused: the change needs a restart.
    pub needs_restart: u64,
    pub last: Option<LastReload>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReload {
    /// When it was attempted, in seconds since the Unix epoch.
    pub unix_seconds: u64,
    pub outcome: ReloadVerdict,
    pub error: Option<String>,
}

impl ReloadStats {
    /// Counts `outcome` and keeps it as the last reload.
    pub fn record(&mut self, outcome: &ReloadOutcome) {
        let verdict = outcome.verdict();
        match verdict {
            ReloadVerdict::Applied => self.applied += 1,
            ReloadVerdict::Invalid => self.invalid += 1,
            ReloadVerdict::NeedsRestart => self.needs_restart += 1,
        }
        self.last = Some(LastReload {
            unix_seconds: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            outcome: verdict,
            error: outcome.error().map(str::to_owned),
        });
    }

    /// Whether the last reload (if any) was applied.
    pub fn last_succeeded(&self) -> bool {
        self.last
            .as_ref()
            .is_none_or(|l| l.outcome == ReloadVerdict::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_each_outcome_and_keep_the_last() {
        let mut stats = ReloadStats::default();
        assert!(stats.last_succeeded(), "no reload yet");
        stats.record(&ReloadOutcome::Invalid {
            error: "x.toml:3:1: bad".into(),
        });
        assert!(!stats.last_succeeded());
        stats.record(&ReloadOutcome::Applied {
            config_generation: 2,
            plan_generation: 2,
            counters: CounterChange::Kept,
            warnings: vec![],
        });
        assert_eq!(
            (stats.applied, stats.invalid, stats.needs_restart),
            (1, 1, 0)
        );
        assert!(stats.last_succeeded());
        let json = serde_json::to_value(ReloadOutcome::NeedsRestart {
            error: "e".into(),
            changes: vec!["c".into()],
        })
        .unwrap();
        assert_eq!(json["outcome"], "needs_restart");
    }

    #[test]
    fn verdicts_serialise_as_their_labels() {
        for verdict in [
            ReloadVerdict::Applied,
            ReloadVerdict::Invalid,
            ReloadVerdict::NeedsRestart,
        ] {
            assert_eq!(
                serde_json::to_value(verdict).unwrap(),
                serde_json::Value::from(verdict.as_str())
            );
        }
    }
}
