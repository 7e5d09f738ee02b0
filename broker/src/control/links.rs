//! Analyzer failover: the link watch takes a tool port whose link is down out of its group's
//! Maglev table, and puts it back when the link returns.
//!
//! # Design
//! Every control tick ([`super::TICK`], 20 ms) the watch reads the link state of every tool port
//! (`rte_eth_link_get_nowait`: a register read on a NIC, an `ioctl` on `net_tap`, never a wait).
//! When one changes, it builds a plan from the running config with the new liveness and swaps it
//! in: a dead port's keys spread over its group's live ports and only its own keys move (Maglev's
//! degraded tables, [`pipelines::stage::maglev`]), or, with `on_port_down = "drop"`, they are
//! dropped and counted as `no_live_port`. When the link returns, the all-live table comes back
//! and with it every key. A link change keeps the counters (the config did not change), so it
//! retires nothing.
//!
//! Polling, not the link-state interrupt: virtual devices mostly have none (`net_pcap`,
//! `net_null`, `net_ring`, `net_af_packet`), and a 20 ms poll already bounds detection well
//! within the 100 ms a failover may take. The time from detection to the new plan is logged with
//! the wall-clock time of the swap (`swapped_unix_us`), so a test or an operator can measure the
//! whole failover from the moment the link went down.
//!
//! # Limitations
//! - A driver that never reports its link down cannot fail over: `net_af_packet` (DPDK 22.11
//!   keeps its link up from start to stop, whatever the kernel interface does), `net_pcap`,
//!   `net_null`, `net_ring`. `net_tap` reports its interface's `IFF_UP && IFF_RUNNING`, and
//!   physical NICs their PHY's link.
//! - No hold-down: a flapping link rebuilds the plan at every flap (each build is a few
//!   milliseconds on the control core, never on a worker).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use config::ValidatedConfig;
use pipelines::plan::Plan;
use tracing::{info, warn};

use crate::runtime::Appliance;

/// The liveness of the tool ports as the current plan knows it.
#[derive(Debug)]
pub struct LinkWatch {
    /// By tool port index.
    live: Vec<bool>,
    /// Ports whose link could not be read (logged once each).
    unreadable: Vec<bool>,
}

/// A link that changed, as the watch saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkChange {
    pub port: String,
    pub up: bool,
}

/// Microseconds since the Unix epoch, for logs another process compares with its own clock.
pub fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

impl LinkWatch {
    /// A watch for `tool_ports` ports, all assumed live (the first plan's assumption); the
    /// first [`LinkWatch::poll`] corrects it.
    pub fn new(tool_ports: usize) -> LinkWatch {
        LinkWatch {
            live: vec![true; tool_ports],
            unreadable: vec![false; tool_ports],
        }
    }

    /// Liveness by tool port index, as the current plan has it.
    pub fn live(&self) -> &[bool] {
        &self.live
    }

    /// Reads every tool port's link; when any changed, swaps in a plan of `config` (the running
    /// one) with the new liveness and returns the changes.
    pub fn poll(&mut self, app: &Appliance, config: &ValidatedConfig) -> Vec<LinkChange> {
        let detected = Instant::now();
        let mut changes = Vec::new();
        for (index, open) in app.tools.iter().enumerate() {
            let up = match open.port.link() {
                Ok(link) => link.up,
                Err(e) => {
                    if let Some(logged) = self.unreadable.get_mut(index).filter(|l| !**l) {
                        *logged = true;
                        warn!(
                            "tool port {}: link state unreadable ({e}); taken as unchanged",
                            open.name
                        );
                    }
                    continue;
                }
            };
            if let Some(live) = self.live.get_mut(index).filter(|l| **l != up) {
                *live = up;
                changes.push(LinkChange {
                    port: open.name.clone(),
                    up,
                });
            }
        }
        if changes.is_empty() {
            return changes;
        }
        let current = app.plans.load_full();
        let generation = current.generation + 1;
        let plan = Plan::build(config, generation, &self.live, current.counters.clone());
        drop(current);
        app.plans.store(Arc::new(plan));
        let swapped_unix_us = unix_micros();
        let took = detected.elapsed();
        for change in &changes {
            let group = config
                .tool_ports
                .iter()
                .find(|p| p.name == change.port)
                .map(|p| &config.tool_groups[p.group.index()]);
            let (group_name, action) = match group {
                Some(g) if change.up => (g.name.as_str(), "back in its group's table"),
                Some(g) if g.on_port_down == config::OnPortDown::Drop => (
                    g.name.as_str(),
                    "its share is dropped (on_port_down = \"drop\")",
                ),
                Some(g) => (g.name.as_str(), "its keys move to the live ports"),
                None => ("?", ""),
            };
            let state = if change.up { "up" } else { "down" };
            if change.up {
                info!(
                    port = %change.port,
                    tool_group = group_name,
                    plan = generation,
                    swapped_unix_us = %swapped_unix_us,
                    "link watch: tool port {} link {state}: {action}; plan {generation} swapped in {:.3} ms after detection",
                    change.port,
                    took.as_secs_f64() * 1000.0
                );
            } else {
                warn!(
                    port = %change.port,
                    tool_group = group_name,
                    plan = generation,
                    swapped_unix_us = %swapped_unix_us,
                    "link watch: tool port {} link {state}: {action}; plan {generation} swapped in {:.3} ms after detection",
                    change.port,
                    took.as_secs_f64() * 1000.0
                );
            }
        }
        changes
    }
}
