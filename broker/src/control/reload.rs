//! Hot reload: re-read the config file, and swap a new plan in without stopping a worker.
//!
//! # Design
//! A reload (SIGHUP, or `POST /reload` from `broker reload`) runs on the control loop, never on
//! a worker: the file is read and validated ([`config::load`]), compared with the running config,
//! and compiled into a new [`Plan`] (filters, Maglev tables, VNI index) here. The workers pick
//! the plan up between two bursts (they load the `ArcSwap` once per burst), so a burst is always
//! decided under one plan from start to end, and no packet waits for a reload.
//!
//! What a reload may change is what lives in the plan: sessions, filters and their rules, tool
//! groups (balance, slice, dedup participation, `on_port_down`, which ports they hold), the decap
//! settings (tunnel ports, `allowed_sources`, default and untunnelled sessions) and
//! `stop_when_idle`. What the running appliance fixed at start is refused, whole, with every
//! difference named ([`restart_needed`]), and the running config is kept: half-applying a config
//! would leave the broker in a state no file describes.
//!
//! | Refused change | Why it needs a restart |
//! |---|---|
//! | `[broker] name` | it labels every metric series and the instance |
//! | `[broker] metrics` | the listener is bound once, before DPDK starts |
//! | `[dpdk]` (any key) | EAL arguments, the mbuf pool and the ring sizes are fixed at start |
//! | `[workers]` (any key) | workers are pinned to their lcores at start |
//! | `[[ingress]]` (set, order, device, queues, `rss`, MTU) | ports and RX queues are configured and started once; a worker per queue |
//! | tool ports (set, order or device of any) | each worker holds a TX queue of every tool port, by position |
//! | `[dedup]` (on/off, window, capacity, key options) | the table is allocated once and shared by all workers |
//!
//! **Counters.** A plan carries the workers' counters, shaped for its config (counters are
//! indexed by session, group, port and rule position). When the new config names the same
//! sessions, groups, ports, filters and rules in the same order, the new plan takes the same
//! counters and nothing is retired. Otherwise it comes with new counters and the old set is
//! retired into the [`crate::metrics::ledger::Ledger`], which keeps totals by name (and folds the
//! set only once no worker holds it), so no total ever goes back and the exit summary stays
//! exact.
//!
//! # Limitations
//! The file reloaded is the one the broker started with (`broker run --config`); a reload cannot
//! point it at another file (a remote client must not make the broker read arbitrary paths).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use config::{Rss, ValidatedConfig};
use pipelines::counters::WorkerCounters;
use pipelines::plan::Plan;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::runtime::Appliance;

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

impl ReloadOutcome {
    /// The label of the outcome (`applied`, `invalid`, `needs_restart`), also the `reason` label
    /// of `broker_config_reload_failures_total`.
    pub fn label(&self) -> &'static str {
        match self {
            ReloadOutcome::Applied { .. } => "applied",
            ReloadOutcome::Invalid { .. } => "invalid",
            ReloadOutcome::NeedsRestart { .. } => "needs_restart",
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
    /// `applied`, `invalid` or `needs_restart`.
    pub outcome: String,
    pub error: Option<String>,
}

impl ReloadStats {
    fn record(&mut self, outcome: &ReloadOutcome) {
        match outcome {
            ReloadOutcome::Applied { .. } => self.applied += 1,
            ReloadOutcome::Invalid { .. } => self.invalid += 1,
            ReloadOutcome::NeedsRestart { .. } => self.needs_restart += 1,
        }
        self.last = Some(LastReload {
            unix_seconds: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            outcome: outcome.label().to_owned(),
            error: outcome.error().map(str::to_owned),
        });
    }

    /// Whether the last reload (if any) was applied.
    pub fn last_succeeded(&self) -> bool {
        self.last.as_ref().is_none_or(|l| l.outcome == "applied")
    }
}

/// What `POST /reload` hands the control loop: where to send the outcome.
pub type ReplyTo = mpsc::SyncSender<ReloadOutcome>;

/// The HTTP endpoint's side of the reload channel.
#[derive(Clone, Debug)]
pub struct ReloadClient(mpsc::Sender<ReplyTo>);

/// How long `POST /reload` waits for the control loop (reading, validating and compiling a
/// config takes milliseconds; this only bounds a control loop that is shutting down).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

impl ReloadClient {
    /// Asks the control loop to reload and waits for the outcome.
    pub fn request(&self) -> Result<ReloadOutcome, String> {
        let (reply, outcome) = mpsc::sync_channel(1);
        self.0
            .send(reply)
            .map_err(|_| "the control loop is not taking reloads (stopping)".to_owned())?;
        outcome
            .recv_timeout(REPLY_TIMEOUT)
            .map_err(|e| format!("no reload outcome from the control loop: {e}"))
    }
}

/// A reload channel: the client for the endpoint, the receiver for the control loop.
pub fn channel() -> (ReloadClient, mpsc::Receiver<ReplyTo>) {
    let (tx, rx) = mpsc::channel();
    (ReloadClient(tx), rx)
}

fn differs<T: PartialEq + std::fmt::Debug>(
    changes: &mut Vec<String>,
    what: &str,
    old: &T,
    new: &T,
) {
    if old != new {
        changes.push(format!("{what}: {old:?} → {new:?}"));
    }
}

/// The differences between `old` and `new` that only a restart can apply (empty: a reload can).
pub fn restart_needed(old: &ValidatedConfig, new: &ValidatedConfig) -> Vec<String> {
    let mut changes = Vec::new();
    let c = &mut changes;
    differs(c, "[broker] name", &old.broker.name, &new.broker.name);
    differs(
        c,
        "[broker] metrics",
        &old.broker.metrics,
        &new.broker.metrics,
    );
    differs(c, "[dpdk] eal_args", &old.dpdk.eal_args, &new.dpdk.eal_args);
    differs(c, "[dpdk] mbufs", &old.dpdk.mbufs, &new.dpdk.mbufs);
    differs(
        c,
        "[dpdk] mbuf_cache",
        &old.dpdk.mbuf_cache,
        &new.dpdk.mbuf_cache,
    );
    differs(
        c,
        "[dpdk] rx_descriptors",
        &old.dpdk.rx_descriptors,
        &new.dpdk.rx_descriptors,
    );
    differs(
        c,
        "[dpdk] tx_descriptors",
        &old.dpdk.tx_descriptors,
        &new.dpdk.tx_descriptors,
    );
    differs(
        c,
        "[workers] lcores",
        &old.workers.lcores,
        &new.workers.lcores,
    );
    differs(
        c,
        "[workers] control_core",
        &old.workers.control_core,
        &new.workers.control_core,
    );
    let ingress = |config: &ValidatedConfig| -> Vec<String> {
        config
            .ingress
            .iter()
            .map(|i| {
                let mtu = i
                    .mtu
                    .map_or_else(|| "default".to_owned(), |m| m.to_string());
                let rss = match i.rss {
                    Rss::Outer => "outer",
                    Rss::Inner => "inner",
                };
                format!(
                    "{} = {} ({} queues, RSS {rss}, MTU {mtu})",
                    i.name, i.device, i.queues
                )
            })
            .collect()
    };
    differs(c, "[[ingress]]", &ingress(old), &ingress(new));
    let tool_ports = |config: &ValidatedConfig| -> Vec<String> {
        config
            .tool_ports
            .iter()
            .map(|p| format!("{} = {}", p.name, p.device))
            .collect()
    };
    differs(c, "tool ports", &tool_ports(old), &tool_ports(new));
    match (&old.dedup, &new.dedup) {
        (None, None) => {}
        (Some(_), None) => changes.push("[dedup]: on → off".to_owned()),
        (None, Some(_)) => changes.push("[dedup]: off → on".to_owned()),
        (Some(o), Some(n)) => {
            differs(c, "[dedup] window", &o.window, &n.window);
            differs(c, "[dedup] capacity", &o.capacity, &n.capacity);
            differs(
                c,
                "[dedup] ignore_dscp_ecn",
                &o.ignore_dscp_ecn,
                &n.ignore_dscp_ecn,
            );
            differs(c, "[dedup] ignore_vlan", &o.ignore_vlan, &n.ignore_vlan);
        }
    }
    changes
}

/// The names counters are kept under, in counter order: two configs with the same names can
/// share a set of counters (each counter keeps its meaning), others cannot.
fn counter_names(config: &ValidatedConfig) -> Vec<String> {
    let group_name = |g: config::GroupId| {
        config
            .tool_groups
            .get(g.index())
            .map_or("?", |g| g.name.as_str())
    };
    let mut names = Vec::new();
    names.extend(
        config
            .sessions
            .iter()
            .map(|s| format!("session {}", s.name)),
    );
    names.extend(
        config
            .tool_groups
            .iter()
            .map(|g| format!("group {}", g.name)),
    );
    names.extend(
        config
            .tool_ports
            .iter()
            .map(|p| format!("port {}/{}", group_name(p.group), p.name)),
    );
    for f in &config.filters {
        names.push(format!("filter {} default {:?}", f.name, f.default));
        names.extend(
            f.rules
                .iter()
                .map(|r| format!("filter {} rule {} {:?}", f.name, r.number, r.action)),
        );
    }
    names
}

/// Whether a plan for `new` may keep the counters of a plan for `old`.
pub fn same_counters(old: &ValidatedConfig, new: &ValidatedConfig) -> bool {
    counter_names(old) == counter_names(new)
}

/// Re-reads the running config's file and, if it is valid and needs no restart, swaps in a plan
/// built from it for the tool ports' liveness `live`. Logs and counts the outcome.
pub fn reload(app: &mut Appliance, live: &[bool]) -> ReloadOutcome {
    let outcome = attempt(app, live);
    app.reloads.record(&outcome);
    match &outcome {
        ReloadOutcome::Applied {
            config_generation,
            plan_generation,
            counters,
            warnings,
        } => {
            for warning in warnings {
                warn!("config: {warning}");
            }
            info!(
                "reload: config generation {config_generation} running (plan {plan_generation}, counters {})",
                match counters {
                    CounterChange::Kept => "kept",
                    CounterChange::Renewed => "renewed, the old set retired",
                }
            );
        }
        refused => error!(
            "reload refused ({}), the running config is kept: {}",
            refused.label(),
            refused.error().unwrap_or_default()
        ),
    }
    outcome
}

fn attempt(app: &mut Appliance, live: &[bool]) -> ReloadOutcome {
    let Some(path) = app.config.path.clone() else {
        return ReloadOutcome::Invalid {
            error: "the running config was not read from a file".to_owned(),
        };
    };
    let new = match config::load(&path) {
        Ok(new) => new,
        Err(e) => {
            return ReloadOutcome::Invalid {
                error: e.to_string(),
            };
        }
    };
    let changes = restart_needed(&app.config, &new);
    if !changes.is_empty() {
        return ReloadOutcome::NeedsRestart {
            error: format!(
                "{}: these changes need a restart (broker run): {}",
                path.display(),
                changes.join("; ")
            ),
            changes,
        };
    }
    let current = app.plans.load_full();
    let (counters, change) = if same_counters(&app.config, &new) {
        (current.counters.clone(), CounterChange::Kept)
    } else {
        (
            WorkerCounters::for_workers(&new, app.workers()),
            CounterChange::Renewed,
        )
    };
    let generation = current.generation + 1;
    drop(current);
    let plan = Plan::build(&new, generation, live, counters);
    let old = app.plans.swap(Arc::new(plan));
    if change == CounterChange::Renewed {
        let old_counters = old.counters.clone();
        // Our reference to the old plan goes now; workers drop theirs as they adopt the new one.
        drop(old);
        app.ledger.retire(&app.config, old_counters);
    }
    let warnings = new.warnings.clone();
    app.config = new;
    app.config_generation += 1;
    ReloadOutcome::Applied {
        config_generation: app.config_generation,
        plan_generation: generation,
        counters: change,
        warnings,
    }
}

/// Asks the broker whose endpoint is `address` to reload (`POST /reload`): its outcome.
pub fn request(address: std::net::SocketAddr) -> anyhow::Result<ReloadOutcome> {
    use anyhow::Context;
    let url = format!("http://{address}/reload");
    let agent = crate::status::endpoint_agent(REPLY_TIMEOUT + Duration::from_secs(5));
    let mut response = agent.post(&url).send_empty().with_context(|| {
        format!(
            "no answer from {url} (is the broker running with [broker] metrics = \"{address}\"?)"
        )
    })?;
    let code = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    serde_json::from_str(&body).with_context(|| format!("{url} answered {code}: {}", body.trim()))
}

/// One line (or a few) for people: what `broker reload` prints.
pub fn describe(outcome: &ReloadOutcome) -> String {
    match outcome {
        ReloadOutcome::Applied {
            config_generation,
            plan_generation,
            counters,
            warnings,
        } => {
            let mut text = format!(
                "reloaded: config generation {config_generation} running (plan {plan_generation}; counters {})",
                match counters {
                    CounterChange::Kept => "kept",
                    CounterChange::Renewed => "renewed: another shape, the old totals kept by name",
                }
            );
            for warning in warnings {
                text.push_str(&format!("\nwarning: {warning}"));
            }
            text
        }
        ReloadOutcome::Invalid { error } => {
            format!("reload refused: invalid config, the running one is kept:\n{error}")
        }
        ReloadOutcome::NeedsRestart { changes, .. } => format!(
            "reload refused: these changes need a restart (broker run), the running config is kept:\n  {}",
            changes.join("\n  ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::fixtures;

    fn config(text: &str) -> ValidatedConfig {
        fixtures::config(text)
    }

    #[test]
    fn plan_level_changes_need_no_restart() {
        let old = config(fixtures::TWO_SESSIONS);
        let new = config(&format!(
            "{}\n[decap]\nallowed_sources = [\"10.0.0.0/8\"]\n",
            fixtures::TWO_SESSIONS.replace("balance = \"source\"", "balance = \"flow\"")
        ));
        assert_ne!(old, new);
        assert_eq!(restart_needed(&old, &new), Vec::<String>::new());
        assert!(same_counters(&old, &new), "same names: counters kept");
    }

    #[test]
    fn port_and_resource_changes_are_refused_each_named() {
        let old = config(fixtures::TWO_SESSIONS);
        let text = fixtures::TWO_SESSIONS;
        let tool_port = text
            .lines()
            .find(|l| l.starts_with("ports = ["))
            .expect("a tool group's ports");
        let cases = [
            ("[dpdk]\nrx_descriptors = 2048\n", "[dpdk] rx_descriptors"),
            ("[dedup]\nwindow = \"20ms\"\n", "[dedup]: off → on"),
        ];
        for (extra, named) in cases {
            let new = config(&format!("{text}\n{extra}"));
            let changes = restart_needed(&old, &new);
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert!(changes[0].starts_with(named), "{changes:?}");
        }
        let moved = config(&text.replace(tool_port, &tool_port.replace("net_null", "net_ring")));
        let changes = restart_needed(&old, &moved);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].starts_with("tool ports"), "{changes:?}");
        let more_queues = config(&text.replace(
            "device = \"net_null0\"",
            "device = \"net_null0\"\nqueues = 2",
        ));
        let changes = restart_needed(&old, &more_queues);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].starts_with("[[ingress]]"), "{changes:?}");
        let inner = config(&text.replace(
            "device = \"net_null0\"",
            "device = \"net_null0\"\nrss = \"inner\"",
        ));
        let changes = restart_needed(&old, &inner);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            changes[0].starts_with("[[ingress]]") && changes[0].contains("RSS inner"),
            "{changes:?}"
        );
    }

    #[test]
    fn another_shape_or_another_name_renews_the_counters() {
        let old = config(fixtures::TWO_SESSIONS);
        let renamed =
            config(&fixtures::TWO_SESSIONS.replace("name = \"a\"\nvni", "name = \"z\"\nvni"));
        assert!(!same_counters(&old, &renamed));
        let with_filter = config(&format!(
            "{}\n[[filter]]\nname = \"f\"\ndefault = \"accept\"\n",
            fixtures::TWO_SESSIONS
        ));
        assert!(!same_counters(&old, &with_filter));
        assert!(same_counters(&old, &old.clone()));
    }

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
}
