//! Writing a [`Snapshot`] into the metrics registry.
//!
//! Counters are set to their absolute totals (the workers' counters, summed, are the source of
//! truth; the registry only mirrors them), gauges to their current values. Every name comes from
//! [`super::catalog`]. Writes go to whatever recorder is installed: the Prometheus recorder in
//! the broker, a local one in tests.

use metrics::Label;
use pipelines::counters::{
    BURST_CLASSES, FilterCounters, GroupCounters, PortCounters, SessionCounters, WorkerCounters,
    burst_class_bounds,
};
use pipelines::{Outcome, Reason};

use super::catalog::{self, block_metric};
use super::snapshot::Snapshot;

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect()
}

fn counter(name: &str, pairs: &[(&'static str, &str)], value: u64) {
    metrics::counter!(name.to_owned(), labels(pairs)).absolute(value);
}

fn gauge(name: &str, pairs: &[(&'static str, &str)], value: f64) {
    metrics::gauge!(name.to_owned(), labels(pairs)).set(value);
}

/// The label value of a burst-size class: `1`, `2-3`, …, `32+`.
pub fn burst_size_label(class: usize) -> String {
    match burst_class_bounds(class) {
        (low, Some(high)) if high == low => low.to_string(),
        (low, Some(high)) => format!("{low}-{high}"),
        (low, None) => format!("{low}+"),
    }
}

fn optional(value: Option<u32>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
}

/// Publishes `snapshot`.
pub fn publish(snapshot: &Snapshot) {
    let status = &snapshot.status;
    let totals = &snapshot.totals;

    gauge(
        catalog::BUILD_INFO,
        &[
            ("broker", &status.broker),
            ("version", &status.version),
            ("dpdk_version", &status.dpdk_version),
        ],
        1.0,
    );
    gauge(
        catalog::CONFIG_GENERATION,
        &[],
        status.config.generation as f64,
    );
    gauge(
        catalog::PLAN_GENERATION,
        &[],
        status.config.plan_generation as f64,
    );
    let reloads = &status.config.reloads;
    counter(
        catalog::CONFIG_RELOAD_FAILURES,
        &[("reason", "invalid")],
        reloads.invalid,
    );
    counter(
        catalog::CONFIG_RELOAD_FAILURES,
        &[("reason", "needs_restart")],
        reloads.needs_restart,
    );
    gauge(
        catalog::CONFIG_LAST_RELOAD_SUCCESSFUL,
        &[],
        if reloads.last_succeeded() { 1.0 } else { 0.0 },
    );
    gauge(catalog::UPTIME, &[], status.uptime_seconds);
    gauge(catalog::START_TIME, &[], status.started_unix_seconds);
    gauge(
        catalog::MBUF_POOL_SIZE,
        &[],
        f64::from(status.mbuf_pool.size),
    );
    gauge(
        catalog::MBUF_POOL_IN_USE,
        &[],
        f64::from(status.mbuf_pool.in_use),
    );

    // Outcomes: `malformed` is the sum of its reasons.
    let mut malformed = 0;
    for outcome in Outcome::all() {
        let count = totals.outcome(outcome);
        match outcome {
            Outcome::Malformed(reason) => {
                malformed += count;
                counter(catalog::MALFORMED, &[("reason", reason.label())], count);
            }
            other => counter(catalog::PACKETS, &[("outcome", other.label())], count),
        }
    }
    counter(
        catalog::PACKETS,
        &[(
            "outcome",
            Outcome::Malformed(Reason::EthernetTruncated).label(),
        )],
        malformed,
    );

    for (index, w) in totals.workers.iter().enumerate() {
        let worker = index.to_string();
        for (f, value) in WorkerCounters::FIELDS.iter().zip(w.values) {
            counter(
                &block_metric(catalog::WORKER_BLOCK, f.name),
                &[("worker", &worker)],
                value,
            );
        }
        for (class, value) in w.bursts.iter().enumerate().take(BURST_CLASSES) {
            counter(
                catalog::WORKER_BURSTS_TOTAL,
                &[("worker", &worker), ("size", &burst_size_label(class))],
                *value,
            );
        }
    }
    for w in &status.workers {
        let (index, lcore, queue) = (
            w.index.to_string(),
            w.lcore.to_string(),
            w.queue.to_string(),
        );
        let (cpu, node) = (optional(w.cpu), optional(w.numa_node));
        let pairs = [
            ("worker", index.as_str()),
            ("lcore", &lcore),
            ("cpu", &cpu),
            ("numa_node", &node),
            ("port", &w.port),
            ("queue", &queue),
        ];
        gauge(catalog::WORKER_INFO_NAME, &pairs, 1.0);
    }

    for (session, values) in &totals.sessions {
        for (f, value) in SessionCounters::FIELDS.iter().zip(values) {
            counter(
                &block_metric(catalog::SESSION_BLOCK, f.name),
                &[("session", session)],
                *value,
            );
        }
    }
    for (hit, value) in &totals.filters {
        match hit.rule {
            Some(rule) => counter(
                catalog::FILTER_RULE_HITS,
                &[
                    ("filter", &hit.filter),
                    ("rule", &rule.to_string()),
                    ("action", hit.action),
                ],
                *value,
            ),
            None => counter(
                &block_metric(catalog::FILTER_BLOCK, FilterCounters::FIELDS[0].name),
                &[("filter", &hit.filter), ("action", hit.action)],
                *value,
            ),
        }
    }
    for (group, values) in &totals.groups {
        for (f, value) in GroupCounters::FIELDS.iter().zip(values) {
            counter(
                &block_metric(catalog::GROUP_BLOCK, f.name),
                &[("tool_group", group)],
                *value,
            );
        }
    }
    for ((group, port), values) in &totals.ports {
        for (f, value) in PortCounters::FIELDS.iter().zip(values) {
            counter(
                &block_metric(catalog::TOOL_PORT_BLOCK, f.name),
                &[("tool_group", group), ("port", port)],
                *value,
            );
        }
    }

    for group in &status.tool_groups {
        for port in &group.ports {
            gauge(
                catalog::TOOL_PORT_LIVE,
                &[("tool_group", &group.name), ("port", &port.name)],
                if port.live { 1.0 } else { 0.0 },
            );
        }
    }

    if let Some(d) = &status.dedup {
        gauge(catalog::DEDUP_WINDOW, &[], d.window_seconds);
        gauge(catalog::DEDUP_ENTRIES, &[], d.entries as f64);
        gauge(catalog::DEDUP_LIVE_ENTRIES, &[], d.live_entries as f64);
    }

    for (i, p) in status.ports.iter().enumerate() {
        let node = optional(p.numa_node);
        gauge(
            catalog::PORT_INFO_NAME,
            &[
                ("port", &p.name),
                ("role", &p.role),
                ("driver", &p.driver),
                ("numa_node", &node),
            ],
            1.0,
        );
        if let Some(link) = p.link {
            gauge(
                catalog::PORT_LINK_UP,
                &[("port", &p.name)],
                if link.up { 1.0 } else { 0.0 },
            );
            let bytes_per_second = f64::from(link.speed_mbps.unwrap_or(0)) * 125_000.0;
            gauge(
                catalog::PORT_LINK_SPEED,
                &[("port", &p.name)],
                bytes_per_second,
            );
        }
        let Some(Some(stats)) = snapshot.port_stats.get(i) else {
            continue;
        };
        let values = [
            stats.ipackets,
            stats.opackets,
            stats.ibytes,
            stats.obytes,
            stats.imissed,
            stats.ierrors,
            stats.oerrors,
            stats.rx_nombuf,
        ];
        for ((name, _), value) in catalog::PORT_STATS.iter().zip(values) {
            counter(name, &[("port", &p.name)], value);
        }
        let queues = usize::from(p.rx_queues.max(p.tx_queues));
        for (q, qs) in stats.queues.iter().enumerate().take(queues) {
            let queue = q.to_string();
            let pairs = [("port", p.name.as_str()), ("queue", queue.as_str())];
            let [rx_packets, rx_bytes, tx_packets, tx_bytes, errors] =
                catalog::QUEUE_STATS.map(|(name, _)| name);
            if q < usize::from(p.rx_queues) {
                counter(rx_packets, &pairs, qs.ipackets);
                counter(rx_bytes, &pairs, qs.ibytes);
                counter(errors, &pairs, qs.errors);
            }
            if q < usize::from(p.tx_queues) {
                counter(tx_packets, &pairs, qs.opackets);
                counter(tx_bytes, &pairs, qs.obytes);
            }
        }
        for (name, value) in snapshot.xstats.get(i).into_iter().flatten() {
            counter(
                catalog::PORT_XSTATS,
                &[("port", &p.name), ("xstat", name)],
                *value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use config::fixtures;
    use drivers::PortStats;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::metrics::catalog::{Kind, catalog};
    use crate::metrics::ledger::Totals;
    use crate::status::{
        DedupStatus, GroupPortStatus, GroupStatus, LinkStatus, PortStatus, Status, WorkerStatus,
    };

    /// A snapshot with something in every part: a filter, dedup, an ingress port with two RX
    /// queues, a tool port, xstats.
    pub(crate) fn sample() -> Snapshot {
        let text = fixtures::TWO_SESSIONS.replace(
            "name = \"a\"\nvni = 101",
            "name = \"a\"\nvni = 101\nfilter = \"f\"",
        ) + "[[filter]]\nname = \"f\"\ndefault = \"reject\"\n[[filter.rule]]\nnumber = 100\naction = \"accept\"\n"
            + "[dedup]\nwindow = \"50ms\"\n";
        let config = fixtures::config(&text);
        let workers = pipelines::counters::WorkerCounters::for_workers(&config, 2);
        workers[0].rx_packets.add(10);
        workers[1].rx_packets.add(5);
        workers[0].burst(7);
        workers[0].outcome(Outcome::Delivered);
        for _ in 0..3 {
            workers[1].outcome(Outcome::Malformed(Reason::VxlanNoVni));
        }
        workers[0].outcome(Outcome::Malformed(Reason::UdpTruncated));
        workers[0].sessions[0].delivered.add(1);
        workers[0].ports[1].tx_packets.add(4);
        workers[0].filters[0].rules.get(0).unwrap().add(6);
        let refs: Vec<_> = workers.iter().map(Arc::as_ref).collect();
        let totals = Totals::of(&config, &refs);
        let port = |name: &str, role: &str, rx_queues, tx_queues| PortStatus {
            name: name.into(),
            role: role.into(),
            driver: "net_null".into(),
            rx_queues,
            tx_queues,
            link: Some(LinkStatus {
                up: true,
                speed_mbps: Some(10_000),
                full_duplex: true,
            }),
            ..PortStatus::default()
        };
        let mut stats = PortStats {
            ipackets: 15,
            imissed: 2,
            ..PortStats::default()
        };
        stats.queues[0].ipackets = 10;
        stats.queues[1].ipackets = 5;
        let status = Status {
            broker: "test".into(),
            version: "0.1.0".into(),
            dpdk_version: "DPDK 22.11.11".into(),
            ports: vec![port("in", "ingress", 2, 0), port("a-1", "tool", 0, 1)],
            workers: (0..2)
                .map(|i| WorkerStatus {
                    index: i,
                    lcore: 1 + i as u32,
                    port: "in".into(),
                    queue: i as u16,
                    ..Default::default()
                })
                .collect(),
            dedup: Some(DedupStatus {
                window_seconds: 0.05,
                entries: 1024,
                live_entries: 3,
            }),
            tool_groups: vec![GroupStatus {
                name: "a".into(),
                ports: vec![
                    GroupPortStatus {
                        name: "a-1".into(),
                        live: true,
                    },
                    GroupPortStatus {
                        name: "a-2".into(),
                        live: false,
                    },
                ],
                ..GroupStatus::default()
            }],
            config: crate::status::ConfigStatus {
                reloads: crate::control::reload::ReloadStats {
                    applied: 2,
                    invalid: 3,
                    needs_restart: 1,
                    last: Some(crate::control::reload::LastReload {
                        unix_seconds: 1,
                        outcome: "invalid".into(),
                        error: Some("bad".into()),
                    }),
                },
                ..Default::default()
            },
            ..Status::default()
        };
        Snapshot {
            status,
            totals,
            port_stats: vec![
                Some(stats),
                Some(PortStats {
                    opackets: 4,
                    ..PortStats::default()
                }),
            ],
            xstats: vec![vec![("rx_good_packets".into(), 15)], vec![]],
        }
    }

    /// Renders `snapshot` with a recorder of its own.
    pub(crate) fn render(snapshot: &Snapshot) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            catalog::describe();
            publish(snapshot);
        });
        handle.render()
    }

    /// family → (type, help) from `# TYPE` / `# HELP` lines; and every sample line.
    fn families(text: &str) -> (BTreeMap<String, (String, String)>, Vec<String>) {
        let mut families: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                families.entry(name.into()).or_default().1 = help.into();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                families.entry(name.into()).or_default().0 = kind.into();
            } else if !line.is_empty() {
                samples.push(line.to_owned());
            }
        }
        (families, samples)
    }

    #[test]
    fn every_catalogued_metric_is_published_with_its_type_and_help_and_nothing_else() {
        let text = render(&sample());
        let (published, samples) = families(&text);
        let catalogued: BTreeMap<String, _> =
            catalog().into_iter().map(|m| (m.name.clone(), m)).collect();
        let published_names: BTreeSet<&String> = published.keys().collect();
        let catalogued_names: BTreeSet<&String> = catalogued.keys().collect();
        assert_eq!(
            published_names, catalogued_names,
            "published families == catalogue"
        );
        for (name, (kind, help)) in &published {
            let m = &catalogued[name];
            let expected = match m.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            assert_eq!(kind, expected, "{name}");
            assert_eq!(help, &m.help, "{name}");
        }
        // Label names of every sample are the catalogue's, in its order.
        for sample in &samples {
            let name = sample.split(['{', ' ']).next().unwrap();
            let m = &catalogued[name];
            let labels: Vec<&str> = sample
                .split_once('{')
                .map(|(_, rest)| rest.split('}').next().unwrap())
                .into_iter()
                .flat_map(|l| l.split(','))
                .filter_map(|pair| pair.split_once('=').map(|(k, _)| k))
                .collect();
            assert_eq!(labels, m.labels, "{sample}");
        }
    }

    #[test]
    fn values_are_the_totals() {
        let text = render(&sample());
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            )
        };
        has("broker_packets_total{outcome=\"delivered\"} 1");
        has("broker_packets_total{outcome=\"malformed\"} 4");
        has("broker_malformed_packets_total{reason=\"vxlan_no_vni\"} 3");
        has("broker_malformed_packets_total{reason=\"udp_truncated\"} 1");
        has("broker_packets_total{outcome=\"filtered\"} 0");
        has("broker_worker_rx_packets_total{worker=\"0\"} 10");
        has("broker_worker_rx_packets_total{worker=\"1\"} 5");
        has("broker_worker_bursts_total{worker=\"0\",size=\"4-7\"} 1");
        has("broker_worker_bursts_total{worker=\"0\",size=\"32+\"} 0");
        has("broker_session_delivered_packets_total{session=\"a\"} 1");
        has("broker_tool_port_tx_packets_total{tool_group=\"a\",port=\"a-2\"} 4");
        has("broker_filter_rule_hits_total{filter=\"f\",rule=\"100\",action=\"accept\"} 6");
        has("broker_filter_default_hits_total{filter=\"f\",action=\"reject\"} 0");
        has("broker_port_rx_missed_packets_total{port=\"in\"} 2");
        has("broker_port_queue_rx_packets_total{port=\"in\",queue=\"1\"} 5");
        has("broker_port_link_speed_bytes_per_second{port=\"in\"} 1250000000");
        has("broker_port_xstats_total{port=\"in\",xstat=\"rx_good_packets\"} 15");
        has("broker_dedup_table_live_entries 3");
        has("broker_tool_port_live{tool_group=\"a\",port=\"a-1\"} 1");
        has("broker_tool_port_live{tool_group=\"a\",port=\"a-2\"} 0");
        has("broker_config_reload_failures_total{reason=\"invalid\"} 3");
        has("broker_config_reload_failures_total{reason=\"needs_restart\"} 1");
        has("broker_config_last_reload_successful 0");
        has(
            "broker_build_info{broker=\"test\",version=\"0.1.0\",dpdk_version=\"DPDK 22.11.11\"} 1",
        );
        // Only configured queues: the ingress has no TX queue, the tool port no RX queue.
        assert!(
            !text.contains("broker_port_queue_tx_packets_total{port=\"in\""),
            "{text}"
        );
        assert!(
            !text.contains("broker_port_queue_rx_packets_total{port=\"a-1\""),
            "{text}"
        );
        assert!(!text.contains("queue=\"2\""), "{text}");
    }

    #[test]
    fn counters_only_grow_between_publications() {
        let mut snapshot = sample();
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || publish(&snapshot));
        snapshot.totals.workers[0].values[0] = 25;
        metrics::with_local_recorder(&recorder, || publish(&snapshot));
        assert!(
            handle
                .render()
                .contains("broker_worker_rx_packets_total{worker=\"0\"} 25")
        );
    }

    #[test]
    fn burst_size_labels() {
        let labels: Vec<String> = (0..BURST_CLASSES).map(burst_size_label).collect();
        assert_eq!(labels, ["1", "2-3", "4-7", "8-15", "16-31", "32+"]);
    }
}
