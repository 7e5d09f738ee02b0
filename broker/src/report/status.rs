//! Live status: what `GET /status` answers and `broker status` prints.
//!
//! # Design
//! The control loop builds a [`Status`] once a second from the same reading it publishes as
//! metrics (see [`crate::metrics`]) and swaps it into the endpoint's cell; the HTTP thread only
//! serialises the latest one. `broker status` fetches it over HTTP ([`crate::client`]) and
//! prints it as tables ([`Status`]'s `Display`), or as the JSON itself (`--json`), so scripts
//! and people read the same document.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::reload::ReloadStats;
use super::resources::Resources;
use super::summary::OutcomeRow;

/// Everything `GET /status` answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The instance name (`[broker] name`).
    pub broker: String,
    pub version: String,
    /// The git revision the broker was built from (`unknown` when it was built without one).
    #[serde(default)]
    pub revision: String,
    pub dpdk_version: String,
    pub config: ConfigStatus,
    /// Seconds since the data plane started.
    pub uptime_seconds: f64,
    /// When it started, in seconds since the Unix epoch.
    pub started_unix_seconds: f64,
    pub control: ControlStatus,
    /// Ingress ports, then tool ports, in config order.
    pub ports: Vec<PortStatus>,
    pub workers: Vec<WorkerStatus>,
    pub tool_groups: Vec<GroupStatus>,
    /// The addressed ports: what they own, and their traffic with their kernel side.
    #[serde(default)]
    pub addressed: Vec<AddressedStatus>,
    /// The tunnel tool ports: where they send, and their next hops.
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
    /// `None` when de-duplication is off.
    pub dedup: Option<DedupStatus>,
    pub mbuf_pool: PoolStatus,
    /// The data plane's fixed buffers, sized at start.
    #[serde(default)]
    pub resources: Resources,
    /// Packets the workers received.
    pub received: u64,
    /// Every outcome, including those that counted zero (as in the exit summary).
    pub outcomes: Vec<OutcomeRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The file the running config was read from.
    pub path: Option<String>,
    /// Configurations loaded since start (a reload adds one).
    pub generation: u64,
    /// Plans built since start (reloads and link changes).
    pub plan_generation: u64,
    /// Reloads since start by outcome, and the last one.
    #[serde(default)]
    pub reloads: ReloadStats,
    /// Counter sets retired by reloads that a worker may still write (read live until no
    /// worker holds them, then folded into the totals).
    #[serde(default)]
    pub retired_counter_sets_pending: usize,
}

/// Where the control plane runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStatus {
    /// The EAL main lcore: the control loop's thread.
    pub lcore: u32,
    /// The CPU it is pinned to.
    pub cpu: Option<u32>,
    /// The CPUs the HTTP endpoint's thread may run on (Linux `Cpus_allowed_list`): it inherits
    /// the control thread's, so it never competes with a worker's core.
    pub endpoint_cpus: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub name: String,
    pub role: PortRole,
    /// The tool group of a tool port.
    pub tool_group: Option<String>,
    /// The DPDK device string from the config.
    pub device: String,
    /// The poll-mode driver (`net_pcap`, `net_ice`, …); empty if DPDK could not say.
    pub driver: String,
    /// NUMA node of the device; `None` for virtual devices.
    pub numa_node: Option<u32>,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// `None` if DPDK could not read it.
    pub link: Option<LinkStatus>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// `imissed`: dropped by the NIC, RX queues full.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// What a port is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortRole {
    /// Mirrored traffic arrives on it.
    #[default]
    Ingress,
    /// Copies leave on it for an analyzer.
    Tool,
    /// An addressed port that only sends (tunnelled copies, its control traffic).
    Uplink,
}

impl PortRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            PortRole::Ingress => "ingress",
            PortRole::Tool => "tool",
            PortRole::Uplink => "uplink",
        }
    }
}

impl fmt::Display for PortRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub up: bool,
    /// `None` when the device does not know.
    pub speed_mbps: Option<u32>,
    pub full_duplex: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub index: usize,
    /// The EAL lcore the worker runs on.
    pub lcore: u32,
    /// The CPU that lcore is pinned to.
    pub cpu: Option<u32>,
    /// The NUMA node of that CPU (DPDK's socket id).
    pub numa_node: Option<u32>,
    /// The ingress port and RX queue the worker polls.
    pub port: String,
    pub queue: u16,
    pub rx_packets: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    /// `source`, `flow`, `ip-pair` or `round-robin`.
    pub balance: String,
    pub dedup: bool,
    /// The group's ports in config order, each with whether the data plane sends to it now.
    pub ports: Vec<GroupPortStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPortStatus {
    pub name: String,
    /// Whether the current plan sends to this port (its link was up when the plan was built).
    pub live: bool,
}

/// An addressed port: its addresses, its kernel side and the traffic of the port itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressedStatus {
    pub name: String,
    pub mac: String,
    pub mtu: u16,
    /// With their prefix lengths.
    pub addresses: Vec<String>,
    pub gateways: Vec<String>,
    /// `none`, `tap` or `virtio-user`.
    pub kernel: String,
    /// Frames for the port handed to its kernel side.
    pub to_kernel: u64,
    /// Frames the kernel side sent out of the port.
    pub from_kernel: u64,
    /// Frames the kernel side sent that were not the port's own, dropped.
    pub from_kernel_dropped: u64,
    /// ARP, neighbour and echo answers the broker sent itself (no kernel side).
    pub answered: u64,
    /// Frames for the port dropped (nothing to answer, or a full queue).
    pub dropped: u64,
    /// Neighbour requests sent for next hops.
    pub probes: u64,
}

impl AddressedStatus {
    /// The exception path's counters, in the order of `metrics::catalog::EXCEPTION_COUNTERS`.
    pub fn counts(&self) -> [u64; 6] {
        [
            self.to_kernel,
            self.from_kernel,
            self.from_kernel_dropped,
            self.answered,
            self.dropped,
            self.probes,
        ]
    }
}

/// A tunnel tool port and its next hop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub port: String,
    pub tool_group: String,
    /// `vxlan`, `geneve`, `l2gre` or `erspan2`.
    pub encapsulation: String,
    pub remote: String,
    pub via: String,
    pub next_hop: String,
    /// The next hop's MAC, once it answered (kept while it is silent).
    pub next_hop_mac: Option<String>,
    /// The next hop answered within the last 3 seconds.
    #[serde(default)]
    pub next_hop_answers: bool,
    /// Seconds since the next hop last answered.
    pub next_hop_age_seconds: Option<f64>,
    /// Whether the current plan sends to this port (its via link is up and its next hop
    /// answers).
    pub live: bool,
    /// The largest inner frame that fits the via port's MTU once encapsulated.
    pub max_inner_len: usize,
}

/// The packet buffer pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Mbufs in the pool.
    pub size: u32,
    /// Mbufs taken from it.
    pub in_use: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupStatus {
    pub window_seconds: f64,
    pub entries: u64,
    /// Entries within the window, estimated from a sample of the table.
    pub live_entries: u64,
}

fn opt<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn link_text(link: Option<&LinkStatus>) -> String {
    match link {
        None => "unknown".to_owned(),
        Some(l) if !l.up => "down".to_owned(),
        Some(l) => match l.speed_mbps {
            Some(mbps) if mbps % 1000 == 0 => format!("up {} Gb/s", mbps / 1000),
            Some(mbps) => format!("up {mbps} Mb/s"),
            None => "up".to_owned(),
        },
    }
}

impl fmt::Display for Status {
    /// The tables `broker status` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "broker {:?} {} ({}) on {}, up {:.0} s",
            self.broker, self.version, self.revision, self.dpdk_version, self.uptime_seconds
        )?;
        writeln!(
            f,
            "config {} (generation {}, plan {}); control on lcore {}, CPU {}; endpoint thread on CPUs {}",
            self.config.path.as_deref().unwrap_or("-"),
            self.config.generation,
            self.config.plan_generation,
            self.control.lcore,
            opt(self.control.cpu),
            self.control.endpoint_cpus.as_deref().unwrap_or("-"),
        )?;
        let r = &self.config.reloads;
        if let Some(last) = &r.last {
            writeln!(
                f,
                "reloads: {} applied, {} invalid, {} refused (need a restart); last {}{}",
                r.applied,
                r.invalid,
                r.needs_restart,
                last.outcome,
                last.error
                    .as_deref()
                    .map_or_else(String::new, |e| format!(": {e}"))
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<16} {:<8} {:<10} {:<12} {:>4} {:>14} {:>14} {:>10} {:>10} {:>10}",
            "PORT",
            "ROLE",
            "DRIVER",
            "LINK",
            "NUMA",
            "RX PACKETS",
            "TX PACKETS",
            "RX MISSED",
            "RX ERRORS",
            "NO MBUF"
        )?;
        for p in &self.ports {
            writeln!(
                f,
                "{:<16} {:<8} {:<10} {:<12} {:>4} {:>14} {:>14} {:>10} {:>10} {:>10}",
                p.name,
                p.role,
                p.driver,
                link_text(p.link.as_ref()),
                opt(p.numa_node),
                p.rx_packets,
                p.tx_packets,
                p.rx_missed,
                p.rx_errors,
                p.rx_nombuf
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<7} {:>5} {:>4} {:>4} {:<20} {:>14} {:>7}",
            "WORKER", "LCORE", "CPU", "NUMA", "POLLS", "RX PACKETS", "BUSY"
        )?;
        for w in &self.workers {
            let polls = w.busy_polls + w.idle_polls;
            let busy = if polls == 0 {
                0.0
            } else {
                100.0 * w.busy_polls as f64 / polls as f64
            };
            writeln!(
                f,
                "{:<7} {:>5} {:>4} {:>4} {:<20} {:>14} {:>6.1}%",
                w.index,
                w.lcore,
                opt(w.cpu),
                opt(w.numa_node),
                format!("{} queue {}", w.port, w.queue),
                w.rx_packets,
                busy
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<16} {:<12} {:<6} PORTS",
            "TOOL GROUP", "BALANCE", "DEDUP"
        )?;
        for g in &self.tool_groups {
            let mut ports = String::new();
            for (i, p) in g.ports.iter().enumerate() {
                let _ = write!(
                    ports,
                    "{}{} ({})",
                    if i > 0 { ", " } else { "" },
                    p.name,
                    if p.live { "live" } else { "down" }
                );
            }
            let live = g.ports.iter().filter(|p| p.live).count();
            writeln!(
                f,
                "{:<16} {:<12} {:<6} {live}/{} live: {ports}",
                g.name,
                g.balance,
                if g.dedup { "yes" } else { "no" },
                g.ports.len()
            )?;
        }
        if !self.tunnels.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<16} {:<8} {:<24} {:<10} {:<24} {:<18} {:>7} LIVE",
                "TUNNEL PORT", "ENCAP", "REMOTE", "VIA", "NEXT HOP", "NEXT HOP MAC", "AGE"
            )?;
            for t in &self.tunnels {
                writeln!(
                    f,
                    "{:<16} {:<8} {:<24} {:<10} {:<24} {:<18} {:>7} {}",
                    t.port,
                    t.encapsulation,
                    t.remote,
                    t.via,
                    t.next_hop,
                    t.next_hop_mac.as_deref().unwrap_or("-"),
                    t.next_hop_age_seconds
                        .map_or_else(|| "-".to_owned(), |a| format!("{a:.1}s")),
                    if t.live { "yes" } else { "no" }
                )?;
            }
        }
        if !self.addressed.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<16} {:<36} {:<12} {:>10} {:>10} {:>8} {:>8}",
                "ADDRESSED PORT",
                "ADDRESSES",
                "KERNEL",
                "TO KERNEL",
                "FROM KRNL",
                "ANSWERED",
                "DROPPED"
            )?;
            for a in &self.addressed {
                writeln!(
                    f,
                    "{:<16} {:<36} {:<12} {:>10} {:>10} {:>8} {:>8}",
                    a.name,
                    a.addresses.join(", "),
                    a.kernel,
                    a.to_kernel,
                    a.from_kernel,
                    a.answered,
                    a.dropped + a.from_kernel_dropped
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "mbuf pool: {} of {} in use",
            self.mbuf_pool.in_use, self.mbuf_pool.size
        )?;
        if let Some(d) = &self.dedup {
            writeln!(
                f,
                "dedup: window {} s, {} of {} entries live (estimated)",
                d.window_seconds, d.live_entries, d.entries
            )?;
        }
        if self.resources.mbufs > 0 {
            writeln!(f, "{}", self.resources)?;
        }
        writeln!(f)?;
        writeln!(f, "received {} packets", self.received)?;
        for o in self
            .outcomes
            .iter()
            .filter(|o| o.packets > 0 || o.reason.is_none())
        {
            let name = match &o.reason {
                Some(r) => format!("malformed({r})"),
                None => o.outcome.clone(),
            };
            writeln!(f, "  {name:<36} {:>14}", o.packets)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            broker: "lab".into(),
            version: "0.1.0".into(),
            revision: "abc1234".into(),
            dpdk_version: "DPDK 22.11.4".into(),
            config: ConfigStatus {
                path: Some("config/lab.toml".into()),
                generation: 1,
                plan_generation: 1,
                reloads: ReloadStats::default(),
                retired_counter_sets_pending: 0,
            },
            uptime_seconds: 12.0,
            started_unix_seconds: 1.7e9,
            control: ControlStatus {
                lcore: 0,
                cpu: Some(0),
                endpoint_cpus: Some("0".into()),
            },
            ports: vec![PortStatus {
                name: "mirror0".into(),
                role: PortRole::Ingress,
                driver: "net_pcap".into(),
                link: Some(LinkStatus {
                    up: true,
                    speed_mbps: Some(10_000),
                    full_duplex: true,
                }),
                rx_packets: 1234,
                rx_missed: 5,
                ..PortStatus::default()
            }],
            workers: vec![WorkerStatus {
                index: 0,
                lcore: 1,
                cpu: Some(1),
                numa_node: Some(0),
                port: "mirror0".into(),
                queue: 0,
                rx_packets: 1234,
                busy_polls: 1,
                idle_polls: 3,
            }],
            addressed: vec![],
            tunnels: vec![],
            tool_groups: vec![GroupStatus {
                name: "ids".into(),
                balance: "source".into(),
                dedup: true,
                ports: vec![
                    GroupPortStatus {
                        name: "ids-1".into(),
                        live: true,
                    },
                    GroupPortStatus {
                        name: "ids-2".into(),
                        live: false,
                    },
                ],
            }],
            dedup: Some(DedupStatus {
                window_seconds: 0.05,
                entries: 1024,
                live_entries: 10,
            }),
            mbuf_pool: PoolStatus {
                size: 8192,
                in_use: 1000,
            },
            resources: Resources {
                mbufs: 8191,
                mbuf_data_room: 2048,
                tx_buffer_mbufs: 96,
                workers: 1,
                tool_ports: 2,
                ..Resources::default()
            },
            received: 1234,
            outcomes: vec![OutcomeRow {
                outcome: "delivered".into(),
                reason: None,
                packets: 1234,
            }],
        }
    }

    #[test]
    fn json_round_trips() {
        let status = sample();
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["ports"][0]["link"]["up"], true);
        assert_eq!(value["workers"][0]["lcore"], 1);
        assert_eq!(value["tool_groups"][0]["ports"][1]["live"], false);
        assert_eq!(value["config"]["generation"], 1);
        assert_eq!(value["revision"], "abc1234");
    }

    #[test]
    fn table_shows_links_workers_and_live_ports() {
        let text = sample().to_string();
        assert!(
            text.starts_with("broker \"lab\" 0.1.0 (abc1234) on DPDK 22.11.4, up 12 s\n"),
            "{text}"
        );
        assert!(text.contains("up 10 Gb/s"), "{text}");
        assert!(text.contains("mirror0 queue 0"), "{text}");
        assert!(text.contains("25.0%"), "busy share of polls: {text}");
        assert!(
            text.contains("1/2 live: ids-1 (live), ids-2 (down)"),
            "{text}"
        );
        assert!(
            text.contains("config config/lab.toml (generation 1, plan 1)"),
            "{text}"
        );
        assert!(text.contains("delivered"), "{text}");
        assert!(
            text.contains("TX buffers     96 mbufs"),
            "resources: {text}"
        );
        assert!(!text.contains("reloads:"), "no reload yet: {text}");
        let mut reloaded = sample();
        reloaded.config.reloads.needs_restart = 1;
        reloaded.config.reloads.last = Some(super::super::reload::LastReload {
            unix_seconds: 1,
            outcome: super::super::ReloadVerdict::NeedsRestart,
            error: Some("[dpdk] mbufs: None → Some(4095)".into()),
        });
        let text = reloaded.to_string();
        assert!(
            text.contains("reloads: 0 applied, 0 invalid, 1 refused (need a restart); last needs_restart: [dpdk] mbufs"),
            "{text}"
        );
        let mut down = sample();
        down.ports[0].link = Some(LinkStatus {
            up: false,
            speed_mbps: None,
            full_duplex: false,
        });
        assert!(down.to_string().contains(" down "), "{}", down);
    }
}
