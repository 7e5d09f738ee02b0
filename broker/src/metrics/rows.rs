//! Rows for people and scripts, read from the typed totals: the outcome rows `/status` and the
//! exit summary share, and the exit summary's rows of sessions, tool groups and tool ports.

use config::ValidatedConfig;
use pipelines::Outcome;

use super::ledger::Totals;
use crate::report::{GroupRow, OutcomeRow, PortRow, SessionRow, StopReason, Summary};

/// The summary of `totals`: the rows of `config`'s sessions, groups and ports in config
/// order, then those only retired counter sets know.
pub fn summary(config: &ValidatedConfig, totals: &Totals, stopped_by: StopReason) -> Summary {
    let session_names = ordered(
        config.sessions.iter().map(|s| s.name.clone()),
        totals.sessions.keys(),
    );
    let sessions = session_names
        .into_iter()
        .map(|name| {
            let v = totals.sessions.get(&name).copied().unwrap_or_default();
            SessionRow {
                packets: v.packets,
                delivered: v.delivered,
                filtered: v.filtered,
                duplicate: v.duplicate,
                duplicate_sender: v.duplicate_sender,
                no_live_port: v.no_live_port,
                truncated_by_source: v.truncated_by_source,
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
            GroupRow {
                copies: v.copies,
                duplicates: v.duplicates,
                sender_duplicates: v.sender_duplicates,
                dedup_evictions: v.dedup_evictions,
                no_live_port: v.no_live_port,
                sliced: v.sliced,
                name,
            }
        })
        .collect();
    let configured_ports = config.tool_ports.iter().map(|p| {
        let group = config.tool_groups[p.group.index()].name.clone();
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
            PortRow {
                copies: v.copies,
                transmitted: v.tx_packets,
                tx_bytes: v.tx_bytes,
                tx_dropped: v.tx_dropped,
                no_buffer: v.no_buffer,
                egress_truncated: v.egress_truncated,
                name,
                group,
            }
        })
        .collect();
    let workers = totals.all_workers();
    Summary {
        broker: config.broker.name.clone(),
        stopped_by,
        received: workers.rx_packets,
        received_bytes: workers.rx_bytes,
        outcomes: outcome_rows(totals),
        sessions,
        tool_groups,
        tool_ports,
        ingress: Vec::new(),
        mbufs_in_use_at_exit: 0,
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

#[cfg(test)]
mod tests {
    use super::summary as summarize;
    use super::*;
    use crate::metrics::ledger::Totals;
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
        let summary = summarize(&config, &Totals::of(&config, &[&w, &w2]), StopReason::Idle);
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
        let broken = summarize(&config, &Totals::of(&config, &[&w, &w2]), StopReason::Idle);
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
        let summary = summarize(&after, &ledger.totals(&after, &new), StopReason::Signal);
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
