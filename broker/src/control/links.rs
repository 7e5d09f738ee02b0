//! Analyzer failover: the link watch takes a tool port that cannot take copies out of its group's
//! Maglev table, and puts it back when it can again. A cabled tool port can while its link is
//! up; a tunnel tool port while the link of its `via` port is up and its next hop answers.
//!
//! # Design
//! Every control tick ([`super::TICK`], 20 ms) the watch reads the link state of every cabled
//! tool port and every addressed port (`rte_eth_link_get_nowait`: a register read on a NIC, an
//! `ioctl` on `net_tap`, never a wait), and the next hops the exception path published (asked
//! every second, dead after three seconds of silence: [`crate::runtime::exception::neighbours`]).
//! When a port's liveness or a next hop's address changes, it builds a plan from the running
//! config with the new facts (a tunnel port's header template carries its next hop's MAC) and
//! swaps it in: a dead port's keys spread over its group's live ports and only its own keys move
//! (Maglev's degraded tables, [`pipelines::stage::maglev`]), or, with `on_port_down = "drop"`,
//! they are dropped and counted as `no_live_port`. When the port comes back, the all-live table
//! comes back and with it every key. A link change keeps the counters (the config did not
//! change), so it retires nothing.
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
//!   physical NICs their PHY's link. A tunnel port fails over on its next hop's silence whatever
//!   the driver.
//! - No hold-down: a flapping link rebuilds the plan at every flap (each build is a few
//!   milliseconds on the control core, never on a worker).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use config::{AddressedPortId, ToolOutput, ValidatedConfig};
use drivers::Port;
use pipelines::plan::{Plan, PortFacts, TunnelLink};
use tracing::{info, warn};

use crate::metrics::snapshot::mac_text;
use crate::runtime::Appliance;

/// What the current plan knows of the tool ports.
#[derive(Debug)]
pub struct LinkWatch {
    /// By tool port: the link it sends on is up (a tunnel port's: its via port's).
    links: Vec<bool>,
    /// By tool port: a tunnel port's resolved next hop (`None`: unresolved or silent).
    tunnels: Vec<Option<TunnelLink>>,
    /// Ports whose link could not be read (logged once each).
    unreadable: Vec<bool>,
}

/// A tool port whose liveness or next hop changed, as the watch saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkChange {
    pub port: String,
    pub up: bool,
    /// What changed, for the log line.
    pub why: String,
}

/// Microseconds since the Unix epoch, for logs another process compares with its own clock.
pub fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// The DPDK port a tool port sends on, and for a tunnel its via port (its index in
/// [`Appliance::addressed`]) and next hop.
fn sends_on(
    app: &Appliance,
    config: &ValidatedConfig,
    index: usize,
) -> Option<(Port, Option<(usize, IpAddr)>)> {
    match &config.tool_ports[index].output {
        ToolOutput::Device(_) => app.tools[index].as_ref().map(|open| (open.port, None)),
        ToolOutput::Tunnel(tunnel) => {
            let side = app.addressed.iter().position(|a| a.id == tunnel.via)?;
            Some((app.addressed[side].port, Some((side, tunnel.next_hop))))
        }
    }
}

impl LinkWatch {
    /// A watch for `tool_ports` ports: cabled ports assumed live, tunnels unresolved (the first
    /// plan's assumption); the first [`LinkWatch::poll`] corrects it.
    pub fn new(tool_ports: usize) -> LinkWatch {
        LinkWatch {
            links: vec![true; tool_ports],
            tunnels: vec![None; tool_ports],
            unreadable: vec![false; tool_ports],
        }
    }

    /// The facts the current plan was built from, for another plan of the running appliance
    /// (a reload): the links and next hops, the addressed ingress ports' MACs, and the ERSPAN
    /// sequences to carry on.
    pub fn facts(&self, app: &Appliance, config: &ValidatedConfig) -> PortFacts {
        PortFacts {
            live: self.links.clone(),
            tunnels: self.tunnels.clone(),
            ingress_macs: (0..config.ingress.len())
                .map(|i| {
                    app.addressed
                        .iter()
                        .find(|a| a.id == AddressedPortId::Ingress(config::IngressId(i as u16)))
                        .map(|a| a.mac)
                })
                .collect(),
            sequences: Some(app.plans.load().sequences.clone()),
        }
    }

    /// Reads every tool port's link and next hop; when any changed, swaps in a plan of `config`
    /// (the running one) with the new facts and returns the changes.
    pub fn poll(&mut self, app: &Appliance, config: &ValidatedConfig) -> Vec<LinkChange> {
        let detected = Instant::now();
        let next_hops = app.exception.as_ref().map(|e| e.next_hops.load_full());
        let mut changes = Vec::new();
        for index in 0..config.tool_ports.len() {
            let Some((port, tunnel)) = sends_on(app, config, index) else {
                continue;
            };
            let name = &config.tool_ports[index].name;
            let up = match port.link() {
                Ok(link) => link.up,
                Err(e) => {
                    if !self.unreadable[index] {
                        self.unreadable[index] = true;
                        warn!("tool port {name}: link state unreadable ({e}); taken as unchanged");
                    }
                    self.links[index]
                }
            };
            let resolved = tunnel.and_then(|(side, hop)| {
                let state = next_hops
                    .as_ref()?
                    .states
                    .iter()
                    .find(|s| s.port == side && s.ip == hop)
                    .copied()?;
                let via = &app.addressed[side];
                state.mac.filter(|_| state.live).map(|mac| TunnelLink {
                    source_mac: via.mac,
                    next_hop_mac: mac,
                    mtu: via.mtu,
                })
            });
            let was_live = self.links[index] && (tunnel.is_none() || self.tunnels[index].is_some());
            let live = up && (tunnel.is_none() || resolved.is_some());
            let link_changed = self.links[index] != up;
            let hop_changed = self.tunnels[index] != resolved;
            if !link_changed && !hop_changed {
                continue;
            }
            self.links[index] = up;
            self.tunnels[index] = resolved;
            let why = match (tunnel, resolved) {
                _ if link_changed => format!("link {}", if up { "up" } else { "down" }),
                (Some((_, hop)), Some(link)) => {
                    format!("next hop {hop} answers at {}", mac_text(link.next_hop_mac))
                }
                (Some((_, hop)), None) => format!("next hop {hop} does not answer"),
                (None, _) => String::new(),
            };
            if live != was_live || hop_changed {
                changes.push(LinkChange {
                    port: name.clone(),
                    up: live,
                    why,
                });
            }
        }
        if changes.is_empty() {
            return changes;
        }
        let current = app.plans.load_full();
        let generation = current.generation + 1;
        let plan = Plan::build(
            config,
            generation,
            &self.facts(app, config),
            current.counters.clone(),
        );
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
            let text = format!(
                "link watch: tool port {} {}: {action}; plan {generation} swapped in {:.3} ms after detection",
                change.port,
                change.why,
                took.as_secs_f64() * 1000.0
            );
            if change.up {
                info!(
                    port = %change.port,
                    tool_group = group_name,
                    plan = generation,
                    swapped_unix_us = %swapped_unix_us,
                    "{text}"
                );
            } else {
                warn!(
                    port = %change.port,
                    tool_group = group_name,
                    plan = generation,
                    swapped_unix_us = %swapped_unix_us,
                    "{text}"
                );
            }
        }
        changes
    }
}
