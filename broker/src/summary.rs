//! The accounting summary printed when `broker run` stops (and written as JSON on request).
//!
//! It is built from the same [`Totals`] the metrics and `/status` publish (the per-worker
//! counters summed over workers, by name, retired counter sets included), and checks the two identities the design promises: `received == Σ outcomes`, and for every tool
//! port `copies == transmitted + tx_dropped + no_buffer`.

use std::fmt::{self, Write as _};

use config::ValidatedConfig;
use pipelines::Outcome;
use pipelines::counters::{GroupCounters, PortCounters, SessionCounters};
use serde::{Deserialize, Serialize};

use crate::metrics::ledger::{Totals, field};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRow {
    /// `delivered`, `filtered`, …, or `malformed` (with `reason`).
    pub outcome: String,
    pub reason: Option<String>,
    pub packets: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    pub name: String,
    pub packets: u64,
    pub delivered: u64,
    pub filtered: u64,
    pub duplicate: u64,
    pub no_live_port: u64,
    pub truncated_by_source: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    pub name: String,
    pub copies: u64,
    pub duplicates: u64,
    pub dedup_evictions: u64,
    pub no_live_port: u64,
    pub sliced: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortRow {
    pub name: String,
    pub group: String,
    pub copies: u64,
    pub transmitted: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
    pub no_buffer: u64,
}

/// Statistics an ingress port's driver reports (`rte_eth_stats`), beside what the workers counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngressRow {
    pub name: String,
    pub ipackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub rx_nombuf: u64,
}

/// Everything the exit summary says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub broker: String,
    /// Why the broker stopped: `idle`, `signal`.
    pub stopped_by: String,
    pub received: u64,
    pub received_bytes: u64,
    /// Every outcome, including those that counted zero.
    pub outcomes: Vec<OutcomeRow>,
    pub sessions: Vec<SessionRow>,
    pub tool_groups: Vec<GroupRow>,
    pub tool_ports: Vec<PortRow>,
    pub ingress: Vec<IngressRow>,
    /// Mbufs still taken from the pool after the ports were closed (0 unless something leaks).
    pub mbufs_in_use_at_exit: u64,
}

impl Summary {
    /// Sums `workers`' counters, named after `config` (the config they were shaped for).
    #[cfg(test)]
    pub fn collect(
        config: &ValidatedConfig,
        workers: &[&pipelines::counters::WorkerCounters],
        stopped_by: &str,
    ) -> Summary {
        Summary::from_totals(config, &Totals::of(config, workers), stopped_by)
    }

    /// The summary of `totals`: the rows of `config`'s sessions, groups and ports in config
    /// order, then those only retired counter sets know.
    pub fn from_totals(config: &ValidatedConfig, totals: &Totals, stopped_by: &str) -> Summary {
        let session_names = ordered(
            config.sessions.iter().map(|s| s.name.clone()),
            totals.sessions.keys(),
        );
        let sessions = session_names
            .into_iter()
            .map(|name| {
                let v = totals.sessions.get(&name).copied().unwrap_or_default();
                let f = |n| field(SessionCounters::FIELDS, &v, n);
                SessionRow {
                    packets: f("packets"),
                    delivered: f("delivered_packets"),
                    filtered: f("filtered_packets"),
                    duplicate: f("duplicate_packets"),
                    no_live_port: f("no_live_port_packets"),
                    truncated_by_source: f("truncated_packets"),
                    name,
                }
            })
            .collect();
        let group_names = ordered(
            config.tool_groups.iter().map(|g| g.name.clone()),
            totals.groups.keys(),
        );
        let tool_groups = group_names
            .into_iter()
            .map(|name| {
                let v = totals.groups.get(&name).copied().unwrap_or_default();
                let f = |n| field(GroupCounters::FIELDS, &v, n);
                GroupRow {
                    copies: f("packets"),
                    duplicates: f("duplicate_packets"),
                    dedup_evictions: f("dedup_evictions"),
                    no_live_port: f("no_live_port_packets"),
                    sliced: f("sliced_packets"),
                    name,
                }
            })
            .collect();
        let configured_ports = config.tool_ports.iter().map(|p| {
            let group = config
                .tool_groups
                .get(p.group.index())
                .map(|g| g.name.clone())
                .unwrap_or_default();
            (group, p.name.clone())
        });
        let tool_ports = ordered(configured_ports, totals.ports.keys())
            .into_iter()
            .map(|(group, name)| {
                let v = totals
                    .ports
                    .get(&(group.clone(), name.clone()))
                    .copied()
                    .unwrap_or_default();
                let f = |n| field(PortCounters::FIELDS, &v, n);
                PortRow {
                    copies: f("packets"),
                    transmitted: f("tx_packets"),
                    tx_bytes: f("tx_bytes"),
                    tx_dropped: f("tx_dropped_packets"),
                    no_buffer: f("no_buffer_packets"),
                    name,
                    group,
                }
            })
            .collect();
        Summary {
            broker: config.broker.name.clone(),
            stopped_by: stopped_by.to_owned(),
            received: totals.worker_sum("rx_packets"),
            received_bytes: totals.worker_sum("rx_bytes"),
            outcomes: outcome_rows(totals),
            sessions,
            tool_groups,
            tool_ports,
            ingress: Vec::new(),
            mbufs_in_use_at_exit: 0,
        }
    }

    /// Σ outcomes.
    pub fn outcome_total(&self) -> u64 {
        self.outcomes.iter().map(|o| o.packets).sum()
    }

    /// The identities that must hold; each violation described.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.received != self.outcome_total() {
            v.push(format!(
                "received {} != Σ outcomes {}",
                self.received,
                self.outcome_total()
            ));
        }
        for p in &self.tool_ports {
            if p.copies != p.transmitted + p.tx_dropped + p.no_buffer {
                v.push(format!(
                    "tool port {}: copies {} != transmitted {} + tx_dropped {} + no_buffer {}",
                    p.name, p.copies, p.transmitted, p.tx_dropped, p.no_buffer
                ));
            }
        }
        if self.mbufs_in_use_at_exit != 0 {
            v.push(format!(
                "{} mbufs still in use after the ports closed",
                self.mbufs_in_use_at_exit
            ));
        }
        v
    }
}

/// Every outcome with its total, in [`Outcome::index`] order (zeros included).
pub fn outcome_rows(totals: &Totals) -> Vec<OutcomeRow> {
    Outcome::all()
        .map(|o| OutcomeRow {
            outcome: o.label().to_owned(),
            reason: match o {
                Outcome::Malformed(r) => Some(r.label().to_owned()),
                _ => None,
            },
            packets: totals.outcome(o),
        })
        .collect()
}

/// `first` in its order, then the names of `known` that `first` lacks (in `known`'s order).
fn ordered<'a, K: Clone + PartialEq + 'a>(
    first: impl Iterator<Item = K>,
    known: impl Iterator<Item = &'a K>,
) -> Vec<K> {
    let mut names: Vec<K> = first.collect();
    for k in known {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "broker {:?} stopped ({})", self.broker, self.stopped_by)?;
        writeln!(
            f,
            "received {} packets ({} bytes)",
            self.received, self.received_bytes
        )?;
        for i in &self.ingress {
            writeln!(
                f,
                "  ingress {:<16} driver rx {:>10}  missed {:>8}  errors {:>8}  no mbuf {:>8}",
                i.name, i.ipackets, i.imissed, i.ierrors, i.rx_nombuf
            )?;
        }
        writeln!(f, "outcomes")?;
        for o in self
            .outcomes
            .iter()
            .filter(|o| o.packets > 0 || o.reason.is_none())
        {
            let name = match &o.reason {
                Some(r) => format!("malformed({r})"),
                None => o.outcome.clone(),
            };
            writeln!(f, "  {name:<36} {:>12}", o.packets)?;
        }
        let mut total = String::new();
        let _ = write!(total, "Σ outcomes {}", self.outcome_total());
        writeln!(
            f,
            "  {total:<36} {}",
            if self.received == self.outcome_total() {
                "= received"
            } else {
                "!= received"
            }
        )?;
        if !self.sessions.is_empty() {
            writeln!(
                f,
                "sessions                  packets    delivered     filtered    duplicate  no_live_port  truncated"
            )?;
            for s in &self.sessions {
                writeln!(
                    f,
                    "  {:<20} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10}",
                    s.name,
                    s.packets,
                    s.delivered,
                    s.filtered,
                    s.duplicate,
                    s.no_live_port,
                    s.truncated_by_source
                )?;
            }
        }
        writeln!(
            f,
            "tool ports                 group          copies  transmitted   tx_dropped    no_buffer"
        )?;
        for p in &self.tool_ports {
            writeln!(
                f,
                "  {:<24} {:<10} {:>10} {:>12} {:>12} {:>12}",
                p.name, p.group, p.copies, p.transmitted, p.tx_dropped, p.no_buffer
            )?;
        }
        for g in self
            .tool_groups
            .iter()
            .filter(|g| g.duplicates + g.dedup_evictions + g.no_live_port > 0)
        {
            writeln!(
                f,
                "  group {:<18} duplicates removed {}, dedup evictions {}, no live port {}",
                g.name, g.duplicates, g.dedup_evictions, g.no_live_port
            )?;
        }
        writeln!(f, "mbufs in use at exit: {}", self.mbufs_in_use_at_exit)?;
        let violations = self.violations();
        if violations.is_empty() {
            write!(
                f,
                "accounting: every packet has exactly one outcome; every copy is transmitted or counted"
            )
        } else {
            write!(f, "ACCOUNTING MISMATCH: {}", violations.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::counters::WorkerCounters;

    #[test]
    fn identities_hold_and_break_visibly() {
        let config = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        let w = WorkerCounters::new(&config);
        w.rx_packets.add(3);
        w.outcome(Outcome::Delivered);
        w.outcome(Outcome::Delivered);
        w.outcome(Outcome::NotTunnel);
        w.ports[0].copies.add(2);
        w.ports[0].tx_packets.add(1);
        w.ports[0].tx_dropped.add(1);
        let w2 = WorkerCounters::new(&config);
        w2.rx_packets.add(1);
        w2.outcome(Outcome::Filtered);
        let summary = Summary::collect(&config, &[&w, &w2], "idle");
        assert_eq!(summary.received, 4);
        assert!(
            summary.violations().is_empty(),
            "{:?}",
            summary.violations()
        );
        let text = summary.to_string();
        assert!(
            text.contains("delivered") && text.contains("= received"),
            "{text}"
        );
        assert!(text.contains("a-1"));

        w2.rx_packets.add(1);
        let broken = Summary::collect(&config, &[&w, &w2], "idle");
        assert_eq!(broken.violations().len(), 1);
        assert!(broken.to_string().contains("ACCOUNTING MISMATCH"));
    }

    #[test]
    fn rows_follow_the_config_then_retired_names() {
        use crate::metrics::ledger::Ledger;
        let before = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        let old = WorkerCounters::for_workers(&before, 1);
        old[0].sessions[0].packets.add(2); // session "a", gone from the next config
        old[0].ports[2].tx_packets.add(5); // port "b-1" of group "b", gone too
        old[0].ports[2].copies.add(5);
        let mut ledger = Ledger::default();
        ledger.retire(&before, old);
        let after = config::fixtures::config(config::fixtures::MINIMAL);
        let new = WorkerCounters::for_workers(&after, 1);
        let summary = Summary::from_totals(&after, &ledger.totals(&after, &new), "signal");
        let sessions: Vec<&str> = summary.sessions.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(sessions, ["s", "a", "b"]);
        assert_eq!(summary.sessions[1].packets, 2);
        let ports: Vec<(&str, &str)> = summary
            .tool_ports
            .iter()
            .map(|p| (p.group.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            ports,
            [("g", "g-1"), ("a", "a-1"), ("a", "a-2"), ("b", "b-1")]
        );
        assert_eq!(summary.tool_ports[3].transmitted, 5);
        assert!(
            summary.violations().is_empty(),
            "{:?}",
            summary.violations()
        );
    }
}
