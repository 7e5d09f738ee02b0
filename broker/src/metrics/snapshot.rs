//! One reading of the running appliance: counters, ports, workers, dedup table.
//!
//! The control loop takes a [`Snapshot`] once a second; the same reading becomes the metrics
//! ([`super::publish`]) and the live [`Status`], so the two never disagree. Reading touches no
//! packet: counters are plain loads, port statistics and link state are DPDK control calls
//! (which DPDK allows while the queues are polled), and the dedup table is sampled, not scanned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use config::ValidatedConfig;
use drivers::{Port, PortStats};

use pipelines::plan::Plan;

use super::ledger::Totals;
use super::process::{self, ProcessStats};
use super::rows::outcome_rows;
use crate::http::Refusals;
use crate::report::{
    AddressedStatus, ConfigStatus, ControlStatus, DedupStatus, GroupPortStatus, GroupStatus,
    LinkStatus, PoolStatus, PortRole, PortStatus, Status, TunnelStatus, WorkerStatus,
};
use crate::runtime::Appliance;
use crate::runtime::exception::SideCounters;

/// Buckets of the dedup table read to estimate its occupancy: 4096 buckets (256 KiB) keep the
/// estimate within a few percent and the read well under a millisecond, whatever the table size.
const DEDUP_SAMPLE_BUCKETS: usize = 4096;

/// Extended statistics kept per port: real NICs have a few hundred; more would only mean a
/// driver listing per-queue counters for hundreds of queues.
pub const MAX_XSTATS: usize = 1024;

/// Everything one publication says.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub status: Status,
    pub totals: Totals,
    /// DPDK's statistics of each port of `status.ports` (same order); `None` if unreadable.
    pub port_stats: Vec<Option<PortStats>>,
    /// The driver's extended statistics of each port of `status.ports` (same order).
    pub xstats: Vec<Vec<(String, u64)>>,
    /// What the HTTP listeners refused.
    pub refused: Vec<Refused>,
    /// The process' resources; `None` when `/proc` could not be read.
    pub process: Option<ProcessStats>,
}

/// What one HTTP listener refused, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    /// `endpoint` or `health`.
    pub listener: &'static str,
    pub not_allowed: u64,
    pub over_capacity: u64,
    pub timed_out: u64,
    pub malformed: u64,
}

impl Refused {
    pub fn of(listener: &'static str, refusals: &Refusals) -> Refused {
        let read = |count: &std::sync::atomic::AtomicUsize| {
            count.load(std::sync::atomic::Ordering::Relaxed) as u64
        };
        Refused {
            listener,
            not_allowed: read(&refusals.not_allowed),
            over_capacity: read(&refusals.over_capacity),
            timed_out: read(&refusals.timed_out),
            malformed: read(&refusals.malformed),
        }
    }

    /// (reason label, count), in the catalogue's order.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("not_allowed", self.not_allowed),
            ("over_capacity", self.over_capacity),
            ("timed_out", self.timed_out),
            ("malformed", self.malformed),
        ]
    }
}

/// (ingress port name, RX queue) of each worker, in worker order: workers take the RX queues of
/// the ingress ports in config order.
pub fn worker_queues(config: &ValidatedConfig) -> Vec<(String, u16)> {
    config
        .ingress
        .iter()
        .flat_map(|i| (0..i.queues).map(move |q| (i.name.clone(), q)))
        .collect()
}

struct PortSpec<'a> {
    name: &'a str,
    role: PortRole,
    tool_group: Option<String>,
    /// The DPDK device string, or what stands for it.
    device: String,
    port: Port,
    rx_queues: u16,
    tx_queues: u16,
}

fn read_port(spec: PortSpec<'_>) -> (PortStatus, Option<PortStats>, Vec<(String, u64)>) {
    let info = spec.port.info().ok();
    let link = spec.port.link().ok().map(|l| LinkStatus {
        up: l.up,
        speed_mbps: l.speed_mbps,
        full_duplex: l.full_duplex,
    });
    let stats = spec.port.stats().ok();
    let mut xstats = spec.port.xstats().unwrap_or_default();
    xstats.truncate(MAX_XSTATS);
    let s = stats.unwrap_or_default();
    let status = PortStatus {
        name: spec.name.to_owned(),
        role: spec.role,
        tool_group: spec.tool_group,
        device: spec.device,
        driver: info.as_ref().map(|i| i.driver.clone()).unwrap_or_default(),
        numa_node: info.and_then(|i| i.socket),
        rx_queues: spec.rx_queues,
        tx_queues: spec.tx_queues,
        link,
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    };
    (status, stats, xstats)
}

/// `02:42:0a:14:05:0a`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// The addressed ports: what they own, and what the exception path counted for each.
fn addressed_status(app: &Appliance, config: &ValidatedConfig) -> Vec<AddressedStatus> {
    let counters = app
        .exception
        .as_ref()
        .map(|e| e.counters.as_slice())
        .unwrap_or_default();
    config
        .addressed_ports()
        .zip(&app.addressed)
        .enumerate()
        .map(|(side, ((_, addressing), a))| {
            let read = |pick: fn(&SideCounters) -> &AtomicU64| {
                counters
                    .get(side)
                    .map_or(0, |c| pick(c).load(Ordering::Relaxed))
            };
            AddressedStatus {
                name: a.name.clone(),
                mac: mac_text(a.mac),
                mtu: a.mtu,
                addresses: [
                    addressing.ipv4.map(|n| n.to_string()),
                    addressing.ipv6.map(|n| n.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect(),
                gateways: [
                    addressing.gateway_v4.map(|g| g.to_string()),
                    addressing.gateway_v6.map(|g| g.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect(),
                kernel: addressing.kernel.to_string(),
                to_kernel: read(|c| &c.to_kernel),
                from_kernel: read(|c| &c.from_kernel),
                from_kernel_dropped: read(|c| &c.from_kernel_dropped),
                answered: read(|c| &c.answered),
                dropped: read(|c| &c.dropped),
                probes: read(|c| &c.probes),
            }
        })
        .collect()
}

/// The tunnel tool ports with their next hops, as the exception path last published them and
/// as `plan` sends to them.
fn tunnel_status(app: &Appliance, config: &ValidatedConfig, plan: &Plan) -> Vec<TunnelStatus> {
    let next_hops = app.exception.as_ref().map(|e| e.next_hops.load_full());
    let now = Instant::now();
    config
        .tool_ports
        .iter()
        .enumerate()
        .filter_map(|(index, port)| {
            let tunnel = port.tunnel()?;
            let side = app.addressed.iter().position(|a| a.id == tunnel.via)?;
            let hop = next_hops.as_ref().and_then(|h| {
                h.states
                    .iter()
                    .find(|s| s.port == side && s.ip == tunnel.next_hop)
                    .copied()
            });
            let group = &plan.groups[port.group.index()];
            let position = config.tool_groups[port.group.index()]
                .ports
                .iter()
                .position(|p| p.index() == index)?;
            Some(TunnelStatus {
                port: port.name.clone(),
                tool_group: config.tool_groups[port.group.index()].name.clone(),
                encapsulation: tunnel.encapsulation.to_string(),
                remote: tunnel.remote.to_string(),
                via: app.addressed[side].name.clone(),
                next_hop: tunnel.next_hop.to_string(),
                next_hop_mac: hop.and_then(|h| h.mac).map(mac_text),
                next_hop_answers: hop.is_some_and(|h| h.live),
                next_hop_age_seconds: hop
                    .and_then(|h| h.last_answer)
                    .map(|t| now.duration_since(t).as_secs_f64()),
                live: group.live[position],
                max_inner_len: tunnel.max_inner_len(app.addressed[side].mtu),
            })
        })
        .collect()
}

impl Snapshot {
    /// Reads `app` now, running `plan` (built from `config`), with the counters' `totals` and
    /// the control plane's `config_status` as they are. `endpoint_cpus`: the CPUs the HTTP
    /// endpoint thread may use.
    pub fn read(
        app: &Appliance,
        config: &ValidatedConfig,
        plan: &Plan,
        totals: Totals,
        config_status: ConfigStatus,
        endpoint_cpus: Option<String>,
    ) -> Snapshot {
        let tx_queues_of = |port: Port| {
            app.addressed
                .iter()
                .find(|a| a.port == port)
                .map_or(0, |a| a.tx_queues)
        };
        let mut specs = Vec::with_capacity(app.ingress.len() + app.tools.len());
        for (spec, open) in config.ingress.iter().zip(&app.ingress) {
            specs.push(PortSpec {
                name: &open.name,
                role: PortRole::Ingress,
                tool_group: None,
                device: spec.device.to_string(),
                port: open.port,
                rx_queues: spec.queues,
                tx_queues: tx_queues_of(open.port),
            });
        }
        for (spec, open) in config.uplinks.iter().zip(&app.uplinks) {
            specs.push(PortSpec {
                name: &open.name,
                role: PortRole::Uplink,
                tool_group: None,
                device: spec.device.to_string(),
                port: open.port,
                rx_queues: 1,
                tx_queues: tx_queues_of(open.port),
            });
        }
        for ((spec, open), &queues) in config.tool_ports.iter().zip(&app.tools).zip(&app.tx_queues)
        {
            let Some(open) = open else { continue };
            specs.push(PortSpec {
                name: &open.name,
                role: PortRole::Tool,
                tool_group: Some(config.tool_groups[spec.group.index()].name.clone()),
                device: spec
                    .device()
                    .map_or_else(String::new, |device| device.to_string()),
                port: open.port,
                rx_queues: 0,
                tx_queues: queues,
            });
        }
        let mut ports = Vec::with_capacity(specs.len());
        let mut port_stats = Vec::with_capacity(specs.len());
        let mut xstats = Vec::with_capacity(specs.len());
        for spec in specs {
            let (status, stats, x) = read_port(spec);
            ports.push(status);
            port_stats.push(stats);
            xstats.push(x);
        }

        let mut workers = worker_queues(config);
        workers.truncate(app.workers());
        let workers = workers
            .into_iter()
            .enumerate()
            .map(|(index, (port, queue))| {
                let lcore = app.worker_lcores.get(index).copied().unwrap_or(u32::MAX);
                let w = totals
                    .workers
                    .get(index)
                    .map(|w| w.counts)
                    .unwrap_or_default();
                WorkerStatus {
                    index,
                    lcore,
                    cpu: app.eal.lcore_cpu(lcore),
                    // DPDK's socket of the lcore; hwloc's node of the CPU where DPDK does not know.
                    numa_node: app
                        .eal
                        .lcore_socket(lcore)
                        .filter(|&s| s != u32::MAX)
                        .or_else(|| app.lcores.worker_nodes.get(index).copied().flatten()),
                    port,
                    queue,
                    rx_packets: w.rx_packets,
                    busy_polls: w.busy_polls,
                    idle_polls: w.idle_polls,
                }
            })
            .collect();

        let tool_groups = config
            .tool_groups
            .iter()
            .enumerate()
            .map(|(g, group)| GroupStatus {
                name: group.name.clone(),
                balance: group.balance.to_string(),
                dedup: group.dedup && config.dedup.is_some(),
                ports: group
                    .ports
                    .iter()
                    .enumerate()
                    .map(|(position, p)| GroupPortStatus {
                        name: config.tool_ports[p.index()].name.clone(),
                        live: plan.groups[g].live[position],
                    })
                    .collect(),
            })
            .collect();

        let addressed = addressed_status(app, config);
        let tunnels = tunnel_status(app, config, plan);

        let dedup = match (&app.dedup, &config.dedup) {
            (Some(d), Some(settings)) => Some(DedupStatus {
                window_seconds: settings.window.as_secs_f64(),
                entries: d.table.capacity() as u64,
                live_entries: d
                    .table
                    .occupancy_estimate(app.clock.now_ns(), DEDUP_SAMPLE_BUCKETS)
                    as u64,
            }),
            _ => None,
        };

        let main = app.eal.main_lcore();
        let started_unix_seconds = app
            .started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let status = Status {
            broker: config.broker.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: env!("BROKER_REVISION").to_owned(),
            dpdk_version: drivers::dpdk_version(),
            config: config_status,
            uptime_seconds: app.started.elapsed().as_secs_f64(),
            started_unix_seconds,
            control: ControlStatus {
                lcore: main,
                cpu: app.eal.lcore_cpu(main),
                endpoint_cpus,
            },
            ports,
            workers,
            tool_groups,
            addressed,
            tunnels,
            dedup,
            mbuf_pool: PoolStatus {
                size: app.pool.capacity(),
                in_use: app.pool.in_use(),
            },
            resources: app.resources.clone(),
            received: totals.received(),
            outcomes: outcome_rows(&totals),
        };
        Snapshot {
            status,
            totals,
            port_stats,
            xstats,
            refused: Vec::new(),
            process: process::read(),
        }
    }
}
