//! The accounting summary printed when `broker run` stops (and written as JSON on request).
//!
//! It is built ([`crate::metrics::rows`]) from the same totals the metrics and `/status`
//! publish, and checks the two identities the design promises: `received == Σ outcomes`, and for
//! every tool port `copies == transmitted + tx_dropped + no_buffer`.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

/// Why the broker stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    #[default]
    Signal,
    /// `stop_when_idle`: traffic flowed, then the ingress was idle that long.
    Idle,
    /// Something failed after the data plane started (the broker stops what it started).
    Error,
}

impl StopReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::Idle => "idle",
            StopReason::Error => "error",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Of `duplicate`, those the sender rule alone withheld.
    pub duplicate_sender: u64,
    pub no_live_port: u64,
    pub truncated_by_source: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    pub name: String,
    pub copies: u64,
    /// Withheld by the dedup window.
    pub duplicates: u64,
    /// Withheld by the sender rule.
    pub sender_duplicates: u64,
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
    /// Copies a tunnel port cut to fit its via port's MTU (sent, cut).
    pub egress_truncated: u64,
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
    pub stopped_by: StopReason,
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
        for p in self.tool_ports.iter().filter(|p| p.egress_truncated > 0) {
            writeln!(
                f,
                "  tool port {:<14} cut {} copies to fit the MTU once encapsulated",
                p.name, p.egress_truncated
            )?;
        }
        for g in self
            .tool_groups
            .iter()
            .filter(|g| g.duplicates + g.sender_duplicates + g.dedup_evictions + g.no_live_port > 0)
        {
            writeln!(
                f,
                "  group {:<18} duplicates removed {} (window) + {} (sender rule), dedup evictions {}, no live port {}",
                g.name, g.duplicates, g.sender_duplicates, g.dedup_evictions, g.no_live_port
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
