//! `broker status --watch`: what a running broker does per second, from two readings of its
//! `/status`.
//!
//! # Design
//! Every interval the CLI fetches `/status` again and prints the rates between that reading and
//! the one before ([`Rates::between`]): packets and bits per second received on each ingress
//! port (with the NIC's misses, errors and mbuf failures per second), sent on each tool port and
//! by each tool group (the sum of its ports), and every outcome's packets per second. The time
//! between two readings is the broker's own (`uptime_seconds`), not the CLI's clock, so a late
//! fetch does not skew a rate. On a terminal the block is redrawn in place; written to a pipe or
//! a file, one block is appended per interval (a blank line between blocks), so it can be kept
//! as a log.
//!
//! # Limitations
//! The broker publishes its status once a second: a shorter `--interval` only prints when a new
//! reading is there. Bits per second are DPDK's byte counts times 8: Ethernet frames without
//! preamble, inter-frame gap and (on most drivers) FCS. A broker that restarted between two
//! readings starts the rates over.

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::client;
use crate::report::{PortRole, Status, si};

/// Packets and bits per second of one port.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortRate {
    pub name: String,
    pub packets: f64,
    pub bits: f64,
    /// Ingress: missed (RX queues full) + receive errors + mbuf allocation failures per second.
    /// Tool ports: transmit errors per second.
    pub drops: f64,
}

/// One tool group's rate and its ports'.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupRate {
    pub name: String,
    pub packets: f64,
    pub bits: f64,
    pub ports: Vec<PortRate>,
}

/// The rates between two readings of one broker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub broker: String,
    /// When the later reading was taken, in seconds since the Unix epoch.
    pub at_unix_seconds: f64,
    /// Seconds between the readings (the broker's clock).
    pub seconds: f64,
    /// Packets the workers received per second.
    pub received: f64,
    /// Every outcome (`malformed` summed over its reasons) in the status' order, per second.
    pub outcomes: Vec<(String, f64)>,
    pub ingress: Vec<PortRate>,
    pub groups: Vec<GroupRate>,
}

fn per_second(before: u64, after: u64, seconds: f64) -> Option<f64> {
    (after >= before).then(|| (after - before) as f64 / seconds)
}

/// (outcome, packets) with the malformed reasons summed, in first-seen order.
fn outcome_totals(status: &Status) -> Vec<(String, u64)> {
    let mut totals: Vec<(String, u64)> = Vec::new();
    for row in &status.outcomes {
        match totals.iter_mut().find(|(name, _)| *name == row.outcome) {
            Some((_, packets)) => *packets += row.packets,
            None => totals.push((row.outcome.clone(), row.packets)),
        }
    }
    totals
}

impl Rates {
    /// The rates from `before` to `after`; `None` when they are not two readings of one run (the
    /// broker restarted, or no time passed: the same publication read twice).
    pub fn between(before: &Status, after: &Status) -> Option<Rates> {
        let seconds = after.uptime_seconds - before.uptime_seconds;
        let same_run = (after.started_unix_seconds - before.started_unix_seconds).abs() < 1e-3
            && before.ports.len() == after.ports.len();
        if !same_run || seconds <= 0.0 {
            return None;
        }
        let rate = |b: u64, a: u64| per_second(b, a, seconds);
        let received = rate(before.received, after.received)?;
        let before_outcomes = outcome_totals(before);
        let outcomes = outcome_totals(after)
            .into_iter()
            .map(|(name, packets)| {
                let earlier = before_outcomes
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0, |(_, p)| *p);
                Some((name, rate(earlier, packets)?))
            })
            .collect::<Option<Vec<_>>>()?;
        let mut ingress = Vec::new();
        let mut groups: Vec<GroupRate> = Vec::new();
        for (b, a) in before.ports.iter().zip(&after.ports) {
            if a.name != b.name {
                return None;
            }
            match a.role {
                // An uplink's traffic is its tunnel ports' (and its control traffic).
                PortRole::Uplink => {}
                PortRole::Ingress => ingress.push(PortRate {
                    name: a.name.clone(),
                    packets: rate(b.rx_packets, a.rx_packets)?,
                    bits: 8.0 * rate(b.rx_bytes, a.rx_bytes)?,
                    drops: rate(
                        b.rx_missed + b.rx_errors + b.rx_nombuf,
                        a.rx_missed + a.rx_errors + a.rx_nombuf,
                    )?,
                }),
                PortRole::Tool => {
                    let port = PortRate {
                        name: a.name.clone(),
                        packets: rate(b.tx_packets, a.tx_packets)?,
                        bits: 8.0 * rate(b.tx_bytes, a.tx_bytes)?,
                        drops: rate(b.tx_errors, a.tx_errors)?,
                    };
                    let group_name = a.tool_group.clone().unwrap_or_default();
                    let group = match groups.iter_mut().position(|g| g.name == group_name) {
                        Some(i) => &mut groups[i],
                        None => {
                            groups.push(GroupRate {
                                name: group_name,
                                ..GroupRate::default()
                            });
                            groups.last_mut().expect("just pushed")
                        }
                    };
                    group.packets += port.packets;
                    group.bits += port.bits;
                    group.ports.push(port);
                }
            }
        }
        Some(Rates {
            broker: after.broker.clone(),
            at_unix_seconds: after.started_unix_seconds + after.uptime_seconds,
            seconds,
            received,
            outcomes,
            ingress,
            groups,
        })
    }
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock(unix_seconds: f64) -> String {
    let s = unix_seconds.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl fmt::Display for Rates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "broker {:?} at {} UTC, per second over the last {:.1} s",
            self.broker,
            clock(self.at_unix_seconds),
            self.seconds
        )?;
        let mut outcomes = String::new();
        for (name, rate) in &self.outcomes {
            // Delivered always; the others when something had them.
            if name == "delivered" || *rate > 0.0 {
                let _ = write!(outcomes, "  {name} {}", si(*rate));
            }
        }
        writeln!(f, "received {} packets/s:{outcomes}", si(self.received))?;
        writeln!(
            f,
            "{:<28} {:>10} {:>10} {:>10}",
            "INGRESS", "PACKETS/S", "BITS/S", "DROPS/S"
        )?;
        for p in &self.ingress {
            writeln!(
                f,
                "{:<28} {:>10} {:>10} {:>10}",
                p.name,
                si(p.packets),
                si(p.bits),
                si(p.drops)
            )?;
        }
        writeln!(
            f,
            "{:<28} {:>10} {:>10} {:>10}",
            "TOOL GROUP / PORT", "PACKETS/S", "BITS/S", "DROPS/S"
        )?;
        for g in &self.groups {
            writeln!(f, "{:<28} {:>10} {:>10}", g.name, si(g.packets), si(g.bits))?;
            for p in &g.ports {
                writeln!(
                    f,
                    "  {:<26} {:>10} {:>10} {:>10}",
                    p.name,
                    si(p.packets),
                    si(p.bits),
                    si(p.drops)
                )?;
            }
        }
        Ok(())
    }
}

/// Prints the rates of the broker at `address` every `interval`, `count` times (or until
/// interrupted).
pub fn run(
    address: SocketAddr,
    interval: Duration,
    count: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    let mut previous = client::fetch_status(address)?.0;
    let mut printed = 0;
    while count.is_none_or(|count| printed < count) {
        std::thread::sleep(interval);
        let current = client::fetch_status(address)?.0;
        if current.uptime_seconds == previous.uptime_seconds {
            // The same publication: wait for the next.
            continue;
        }
        let mut out = std::io::stdout().lock();
        match Rates::between(&previous, &current) {
            Some(rates) => {
                if terminal {
                    // Home and clear: the block replaces the last one.
                    write!(out, "\x1b[H\x1b[2J{rates}")?;
                } else {
                    if printed > 0 {
                        writeln!(out)?;
                    }
                    write!(out, "{rates}")?;
                }
                printed += 1;
            }
            None => writeln!(
                out,
                "broker {:?} restarted (or changed its ports): rates start over",
                current.broker
            )?,
        }
        out.flush()?;
        previous = current;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{OutcomeRow, PortStatus};

    fn port(name: &str, role: PortRole, group: Option<&str>, packets: u64) -> PortStatus {
        PortStatus {
            name: name.into(),
            role,
            tool_group: group.map(Into::into),
            rx_packets: if role == PortRole::Ingress {
                packets
            } else {
                0
            },
            rx_bytes: if role == PortRole::Ingress {
                packets * 100
            } else {
                0
            },
            tx_packets: if role == PortRole::Tool { packets } else { 0 },
            tx_bytes: if role == PortRole::Tool {
                packets * 64
            } else {
                0
            },
            rx_missed: packets / 100,
            ..PortStatus::default()
        }
    }

    fn reading(uptime: f64, received: u64) -> Status {
        let row = |outcome: &str, reason: Option<&str>, packets| OutcomeRow {
            outcome: outcome.into(),
            reason: reason.map(Into::into),
            packets,
        };
        Status {
            broker: "lab".into(),
            started_unix_seconds: 1_700_000_000.0,
            uptime_seconds: uptime,
            ports: vec![
                port("mirror0", PortRole::Ingress, None, received),
                port("ids-1", PortRole::Tool, Some("ids"), received / 2),
                port("ids-2", PortRole::Tool, Some("ids"), received / 4),
                port("rec-1", PortRole::Tool, Some("recorder"), received / 10),
            ],
            received,
            outcomes: vec![
                row("delivered", None, received / 2),
                row("filtered", None, 0),
                row("malformed", Some("udp_truncated"), received / 10),
                row("malformed", Some("vxlan_no_vni"), received / 10),
            ],
            ..Status::default()
        }
    }

    #[test]
    fn rates_per_port_group_and_outcome_over_the_brokers_time() {
        let rates = Rates::between(&reading(10.0, 1000), &reading(12.0, 5000)).unwrap();
        assert_eq!(rates.seconds, 2.0);
        assert_eq!(rates.received, 2000.0);
        assert_eq!(
            rates.outcomes,
            [
                ("delivered".to_owned(), 1000.0),
                ("filtered".to_owned(), 0.0),
                ("malformed".to_owned(), 400.0)
            ]
        );
        assert_eq!(
            rates.ingress,
            [PortRate {
                name: "mirror0".into(),
                packets: 2000.0,
                bits: 2000.0 * 100.0 * 8.0,
                drops: 20.0,
            }]
        );
        let names: Vec<_> = rates.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["ids", "recorder"]);
        assert_eq!(rates.groups[0].packets, 1000.0 + 500.0);
        assert_eq!(rates.groups[0].bits, 1500.0 * 64.0 * 8.0);
        assert_eq!(rates.groups[0].ports.len(), 2);
        assert_eq!(rates.groups[1].ports[0].packets, 200.0);

        let text = rates.to_string();
        assert!(
            text.starts_with("broker \"lab\" at 22:13:32 UTC, per second over the last 2.0 s\n"),
            "{text}"
        );
        assert!(
            text.contains("received 2.00 k packets/s:  delivered 1.00 k  malformed 400\n"),
            "{text}"
        );
        assert!(text.contains("\nids "), "{text}");
        assert!(text.contains("\n  ids-2 "), "{text}");
    }

    #[test]
    fn no_rates_across_a_restart_or_from_one_publication() {
        let before = reading(10.0, 1000);
        assert_eq!(Rates::between(&before, &before), None);
        let mut restarted = reading(3.0, 10);
        restarted.started_unix_seconds += 20.0;
        assert_eq!(Rates::between(&before, &restarted), None);
        // A counter that went back is not a rate either.
        let mut back = reading(11.0, 2000);
        back.ports[1].tx_packets = 0;
        assert_eq!(Rates::between(&before, &back), None);
    }
}
