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
//! difference named ([`restart_needed`], which names every setting of the config, so that a new
//! key cannot become reloadable by omission), and the running config is kept: half-applying a config
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
//! retired into the control state's [`crate::metrics::ledger::Ledger`], which keeps totals by name (and folds the
//! set only once no worker holds it), so no total ever goes back and the exit summary stays
//! exact.
//!
//! # Limitations
//! The file reloaded is the one the broker started with (`broker run --config`); a reload cannot
//! point it at another file (a remote client must not make the broker read arbitrary paths).

use std::sync::Arc;

use config::{
    BrokerSettings, DedupSettings, DpdkSettings, IngressPort, ToolOutput, ToolPort, UplinkPort,
    ValidatedConfig, WorkerSettings,
};
use pipelines::counters::WorkerCounters;
use pipelines::plan::Plan;
use tracing::{error, info, warn};

use super::links::LinkWatch;
use super::state::ControlState;
use crate::report::{CounterChange, ReloadOutcome};
use crate::runtime::Appliance;

/// Every setting a running appliance fixed at start, as (what, value printed), in a fixed order.
///
/// The config is taken apart field by field, with no `..`: a key added to the config does not
/// compile until it is listed here (fixed at start) or explicitly ignored (`_`, lives in the
/// plan and is reloadable).
fn fixed_at_start(config: &ValidatedConfig) -> Vec<(&'static str, String)> {
    let ValidatedConfig {
        // A reload always re-reads the file the broker started with.
        path: _,
        broker,
        dpdk,
        workers,
        ingress,
        uplinks,
        // Tunnel ports, allowlist, default and untunnelled sessions: in the plan.
        decap: _,
        dedup,
        // In the plan (with their counters, which a reload renews when their shape changes).
        sessions: _,
        filters: _,
        tool_groups: _,
        tool_ports,
        warnings: _,
    } = config;
    let BrokerSettings {
        name,
        // The control loop's own setting, read again after each reload.
        stop_when_idle: _,
        metrics,
        metrics_allow,
        health,
    } = broker;
    let DpdkSettings {
        eal_args,
        mbufs,
        mbuf_cache,
        rx_descriptors,
        tx_descriptors,
    } = dpdk;
    let WorkerSettings {
        lcores,
        control_core,
    } = workers;
    let ingress: Vec<String> = ingress
        .iter()
        .map(
            |IngressPort {
                 name,
                 device,
                 queues,
                 mtu,
                 rss,
                 // The kernel side and the next hops are set up at start.
                 addressing,
             }| {
                let mtu = mtu.map_or_else(|| "default".to_owned(), |m| m.to_string());
                let mut text = format!("{name} = {device} ({queues} queues, RSS {rss}, MTU {mtu})");
                if let Some(addressing) = addressing {
                    text.push_str(&format!(" {addressing:?}"));
                }
                text
            },
        )
        .collect();
    let uplinks: Vec<String> = uplinks
        .iter()
        .map(
            |UplinkPort {
                 name,
                 device,
                 mtu,
                 addressing,
             }| format!("{name} = {device} (MTU {mtu:?}) {addressing:?}"),
        )
        .collect();
    let tool_ports: Vec<String> = tool_ports
        .iter()
        .map(
            |ToolPort {
                 name,
                 // Which group holds a port is the groups' business: in the plan.
                 group: _,
                 // A device is opened, a tunnel's via port given TX queues, at start.
                 output,
             }| match output {
                ToolOutput::Device(device) => format!("{name} = {device}"),
                ToolOutput::Tunnel(tunnel) => format!("{name} = {tunnel:?}"),
            },
        )
        .collect();
    let mut fixed = vec![
        ("[broker] name", format!("{name:?}")),
        ("[broker] metrics", format!("{metrics:?}")),
        ("[broker] metrics_allow", format!("{metrics_allow:?}")),
        ("[broker] health", format!("{health:?}")),
        ("[dpdk] eal_args", format!("{eal_args:?}")),
        ("[dpdk] mbufs", format!("{mbufs:?}")),
        ("[dpdk] mbuf_cache", format!("{mbuf_cache:?}")),
        ("[dpdk] rx_descriptors", format!("{rx_descriptors:?}")),
        ("[dpdk] tx_descriptors", format!("{tx_descriptors:?}")),
        ("[workers] lcores", format!("{lcores:?}")),
        ("[workers] control_core", format!("{control_core:?}")),
        ("[[ingress]]", format!("{ingress:?}")),
        ("[[uplink]]", format!("{uplinks:?}")),
        ("tool ports", format!("{tool_ports:?}")),
    ];
    match dedup {
        None => fixed.push(("[dedup]", "off".to_owned())),
        Some(DedupSettings {
            mode,
            window,
            capacity,
            ignore_dscp_ecn,
            ignore_vlan,
        }) => fixed.extend([
            ("[dedup]", "on".to_owned()),
            // The table exists or not from the start; the sender rule could be swapped, but one
            // mode per run keeps what the counters mean simple.
            ("[dedup] mode", mode.to_string()),
            ("[dedup] window", format!("{window:?}")),
            ("[dedup] capacity", format!("{capacity:?}")),
            ("[dedup] ignore_dscp_ecn", format!("{ignore_dscp_ecn:?}")),
            ("[dedup] ignore_vlan", format!("{ignore_vlan:?}")),
        ]),
    }
    fixed
}

/// The differences between `old` and `new` that only a restart can apply (empty: a reload can),
/// one line each: `what: old → new`. A setting only one side has (the `[dedup]` keys when dedup
/// is turned on or off) is covered by the line of the setting that differs.
pub fn restart_needed(old: &ValidatedConfig, new: &ValidatedConfig) -> Vec<String> {
    let new = fixed_at_start(new);
    fixed_at_start(old)
        .into_iter()
        .filter_map(|(what, before)| {
            let (_, after) = new.iter().find(|(name, _)| *name == what)?;
            (before != *after).then(|| format!("{what}: {before} → {after}"))
        })
        .collect()
}

/// The names counters are kept under, in counter order: two configs with the same names can
/// share a set of counters (each counter keeps its meaning), others cannot.
fn counter_names(config: &ValidatedConfig) -> Vec<String> {
    let group_name = |g: config::GroupId| config.tool_groups[g.index()].name.as_str();
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
        names.push(format!("filter {} default {}", f.name, f.default));
        names.extend(
            f.rules
                .iter()
                .map(|r| format!("filter {} rule {} {}", f.name, r.number, r.action)),
        );
    }
    names
}

/// Whether a plan for `new` may keep the counters of a plan for `old`.
pub fn same_counters(old: &ValidatedConfig, new: &ValidatedConfig) -> bool {
    counter_names(old) == counter_names(new)
}

/// Re-reads the running config's file and, if it is valid and needs no restart, swaps in a plan
/// built from it with the tool ports' links and next hops as `links` knows them. Logs and counts
/// the outcome.
pub fn reload(app: &Appliance, state: &mut ControlState, links: &LinkWatch) -> ReloadOutcome {
    let outcome = attempt(app, state, links);
    state.reloads.record(&outcome);
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
            refused.verdict(),
            refused.error().unwrap_or_default()
        ),
    }
    outcome
}

fn attempt(app: &Appliance, state: &mut ControlState, links: &LinkWatch) -> ReloadOutcome {
    let Some(path) = state.config.path.clone() else {
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
    let changes = restart_needed(&state.config, &new);
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
    let (counters, change) = if same_counters(&state.config, &new) {
        (current.counters.clone(), CounterChange::Kept)
    } else {
        (
            WorkerCounters::for_workers(&new, app.workers()),
            CounterChange::Renewed,
        )
    };
    let generation = current.generation + 1;
    drop(current);
    let plan = Plan::build(&new, generation, &links.facts(app, &new), counters);
    let old = app.plans.swap(Arc::new(plan));
    if change == CounterChange::Renewed {
        let old_counters = old.counters.clone();
        // Our reference to the old plan goes now; workers drop theirs as they adopt the new one.
        drop(old);
        state.ledger.retire(&state.config, old_counters);
    }
    let warnings = new.warnings.clone();
    state.config = new;
    state.generation += 1;
    ReloadOutcome::Applied {
        config_generation: state.generation,
        plan_generation: generation,
        counters: change,
        warnings,
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
        let window = config(&format!("{text}\n[dedup]\n"));
        let sender = config(&format!("{text}\n[dedup]\nmode = \"sender\"\n"));
        assert_eq!(
            restart_needed(&window, &sender),
            vec!["[dedup] mode: window → sender".to_owned()]
        );
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
}
