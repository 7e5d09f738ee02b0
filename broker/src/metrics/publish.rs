//! Writing a [`Snapshot`] into the metrics registry.
//!
//! # Design
//! A [`Publisher`] holds a handle for every series it has published: the handle is registered
//! with the recorder (names from [`super::catalog`], labels built) the first time its series
//! appears — at start for the fixed series, when a reload brings a new session, group, port or
//! rule name, when a driver first reports an extended statistic — and each publication only sets
//! values through the handles it holds. Counters are set to their absolute totals (the workers'
//! counters, summed into the typed [`super::ledger::Totals`], are the source of truth; the
//! registry only mirrors them), gauges to their current values. Writes go to whatever recorder
//! the handles were registered with: the Prometheus recorder in the broker, a local one in tests.

use std::collections::BTreeMap;

use metrics::{Counter, Gauge, Label};
use pipelines::counters::{
    BURST_CLASSES, FilterCounters, GroupCounters, GroupTotals, PortCounters, PortTotals,
    SessionCounters, SessionTotals, WorkerCounters, WorkerTotals, burst_class_bounds,
};
use pipelines::{Outcome, Reason};

use super::catalog::{self, block_metric};
use super::ledger::FilterHit;
use super::process::ProcessSeries;
use super::snapshot::Snapshot;
use crate::report::ReloadVerdict;

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect()
}

fn counter(name: &str, pairs: &[(&'static str, &str)]) -> Counter {
    metrics::counter!(name.to_owned(), labels(pairs))
}

fn gauge(name: &str, pairs: &[(&'static str, &str)]) -> Gauge {
    metrics::gauge!(name.to_owned(), labels(pairs))
}

/// The handle of `key`'s series in `series`, registered by `register` the first time.
fn handle<'m, K: Ord + Clone, H>(
    series: &'m mut BTreeMap<K, H>,
    key: &K,
    register: impl FnOnce() -> H,
) -> &'m H {
    if !series.contains_key(key) {
        series.insert(key.clone(), register());
    }
    &series[key]
}

/// `keys` paired with `values`, in order.
fn zip_labels<'a>(keys: &[&'static str], values: &'a [String]) -> Vec<(&'static str, &'a str)> {
    keys.iter()
        .zip(values)
        .map(|(k, v)| (*k, v.as_str()))
        .collect()
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

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// One counter block's series of one name: a handle per field, in `FIELDS` order.
fn block_series<T, V>(
    fields: &[pipelines::counters::CounterField<T, V>],
    block: &str,
    pairs: &[(&'static str, &str)],
) -> Vec<Counter> {
    fields
        .iter()
        .map(|f| counter(&block_metric(block, f.name), pairs))
        .collect()
}

/// Sets a block's series from its totals.
fn set_block<T, V>(fields: &[pipelines::counters::CounterField<T, V>], series: &[Counter], v: &V) {
    for (f, c) in fields.iter().zip(series) {
        c.absolute((f.total)(v));
    }
}

/// A worker's series.
struct WorkerSeries {
    counts: Vec<Counter>,
    bursts: Vec<Counter>,
}

/// The series of a port's DPDK statistics.
#[derive(Default)]
struct PortSeries {
    link_up: Option<Gauge>,
    link_speed: Option<Gauge>,
    stats: Vec<Counter>,
    queues: Vec<QueueSeries>,
    xstats: BTreeMap<String, Counter>,
}

/// The series of one queue index of a port: its RX series (packets, bytes, errors) where the
/// broker configured an RX queue of that index, its TX series (packets, bytes) where a TX queue.
struct QueueSeries {
    rx: Option<[Counter; 3]>,
    tx: Option<[Counter; 2]>,
}

/// The handles of every series published so far.
#[derive(Default)]
pub struct Publisher {
    fixed: Option<FixedSeries>,
    workers: Vec<WorkerSeries>,
    worker_info: BTreeMap<Vec<String>, Gauge>,
    sessions: BTreeMap<String, Vec<Counter>>,
    groups: BTreeMap<String, Vec<Counter>>,
    ports: BTreeMap<(String, String), Vec<Counter>>,
    filters: BTreeMap<FilterHit, Counter>,
    tool_port_live: BTreeMap<(String, String), Gauge>,
    dedup: Option<[Gauge; 4]>,
    port_info: BTreeMap<Vec<String>, Gauge>,
    /// By position in the status' ports (fixed for the life of the process).
    port_stats: Vec<PortSeries>,
    /// By (listener, reason).
    refused: BTreeMap<(&'static str, &'static str), Counter>,
    address_info: BTreeMap<Vec<String>, Gauge>,
    /// By addressed port: the exception path's counters.
    exception: BTreeMap<String, Vec<Counter>>,
    tunnel_info: BTreeMap<Vec<String>, Gauge>,
    /// By (tool group, port): resolved, age, longest inner frame.
    tunnels: BTreeMap<(String, String), [Gauge; 3]>,
    process: Option<ProcessSeries>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sessions", &self.sessions.len())
            .field("groups", &self.groups.len())
            .field("ports", &self.ports.len())
            .finish_non_exhaustive()
    }
}

/// The series every broker has, whatever its config.
struct FixedSeries {
    build_info: Gauge,
    config_generation: Gauge,
    plan_generation: Gauge,
    reloads_invalid: Counter,
    reloads_needs_restart: Counter,
    last_reload_successful: Gauge,
    uptime: Gauge,
    start_time: Gauge,
    pool_size: Gauge,
    pool_in_use: Gauge,
    /// By [`Outcome::index`]: `broker_packets_total{outcome}` for the simple outcomes,
    /// `broker_malformed_packets_total{reason}` for each malformed reason.
    outcomes: Vec<Counter>,
    /// `broker_packets_total{outcome="malformed"}`: the sum of the reasons.
    malformed: Counter,
}

impl FixedSeries {
    fn register(snapshot: &Snapshot) -> FixedSeries {
        let status = &snapshot.status;
        FixedSeries {
            build_info: gauge(
                catalog::BUILD_INFO,
                &[
                    ("broker", &status.broker),
                    ("version", &status.version),
                    ("dpdk_version", &status.dpdk_version),
                    ("revision", &status.revision),
                ],
            ),
            config_generation: gauge(catalog::CONFIG_GENERATION, &[]),
            plan_generation: gauge(catalog::PLAN_GENERATION, &[]),
            reloads_invalid: counter(
                catalog::CONFIG_RELOAD_FAILURES,
                &[("reason", ReloadVerdict::Invalid.as_str())],
            ),
            reloads_needs_restart: counter(
                catalog::CONFIG_RELOAD_FAILURES,
                &[("reason", ReloadVerdict::NeedsRestart.as_str())],
            ),
            last_reload_successful: gauge(catalog::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
            uptime: gauge(catalog::UPTIME, &[]),
            start_time: gauge(catalog::START_TIME, &[]),
            pool_size: gauge(catalog::MBUF_POOL_SIZE, &[]),
            pool_in_use: gauge(catalog::MBUF_POOL_IN_USE, &[]),
            outcomes: Outcome::all()
                .map(|outcome| match outcome {
                    Outcome::Malformed(reason) => {
                        counter(catalog::MALFORMED, &[("reason", reason.label())])
                    }
                    other => counter(catalog::PACKETS, &[("outcome", other.label())]),
                })
                .collect(),
            malformed: counter(
                catalog::PACKETS,
                &[(
                    "outcome",
                    Outcome::Malformed(Reason::EthernetTruncated).label(),
                )],
            ),
        }
    }
}

impl Publisher {
    /// Publishes `snapshot`, registering the series it has that were not published before.
    pub fn publish(&mut self, snapshot: &Snapshot) {
        let status = &snapshot.status;
        let totals = &snapshot.totals;
        if let Some(stats) = &snapshot.process {
            self.process
                .get_or_insert_with(ProcessSeries::register)
                .set(stats);
        }

        let fixed = self
            .fixed
            .get_or_insert_with(|| FixedSeries::register(snapshot));
        fixed.build_info.set(1.0);
        fixed.config_generation.set(status.config.generation as f64);
        fixed
            .plan_generation
            .set(status.config.plan_generation as f64);
        let reloads = &status.config.reloads;
        fixed.reloads_invalid.absolute(reloads.invalid);
        fixed.reloads_needs_restart.absolute(reloads.needs_restart);
        fixed
            .last_reload_successful
            .set(flag(reloads.last_succeeded()));
        fixed.uptime.set(status.uptime_seconds);
        fixed.start_time.set(status.started_unix_seconds);
        fixed.pool_size.set(f64::from(status.mbuf_pool.size));
        fixed.pool_in_use.set(f64::from(status.mbuf_pool.in_use));
        // Outcomes: `malformed` is the sum of its reasons.
        let mut malformed = 0;
        for (outcome, series) in Outcome::all().zip(&fixed.outcomes) {
            let count = totals.outcome(outcome);
            if matches!(outcome, Outcome::Malformed(_)) {
                malformed += count;
            }
            series.absolute(count);
        }
        fixed.malformed.absolute(malformed);

        for (index, w) in totals.workers.iter().enumerate() {
            if self.workers.len() <= index {
                let worker = index.to_string();
                self.workers.push(WorkerSeries {
                    counts: block_series(
                        WorkerCounters::FIELDS,
                        catalog::WORKER_BLOCK,
                        &[("worker", &worker)],
                    ),
                    bursts: (0..BURST_CLASSES)
                        .map(|class| {
                            counter(
                                catalog::WORKER_BURSTS_TOTAL,
                                &[("worker", &worker), ("size", &burst_size_label(class))],
                            )
                        })
                        .collect(),
                });
            }
            let series = &self.workers[index];
            set_block::<WorkerCounters, WorkerTotals>(
                WorkerCounters::FIELDS,
                &series.counts,
                &w.counts,
            );
            for (c, value) in series.bursts.iter().zip(&w.bursts) {
                c.absolute(*value);
            }
        }
        for w in &status.workers {
            let values = vec![
                w.index.to_string(),
                w.lcore.to_string(),
                optional(w.cpu),
                optional(w.numa_node),
                w.port.clone(),
                w.queue.to_string(),
            ];
            handle(&mut self.worker_info, &values, || {
                gauge(
                    catalog::WORKER_INFO_NAME,
                    &zip_labels(catalog::WORKER_INFO, &values),
                )
            })
            .set(1.0);
        }

        for (session, values) in &totals.sessions {
            let series = handle(&mut self.sessions, session, || {
                block_series(
                    SessionCounters::FIELDS,
                    catalog::SESSION_BLOCK,
                    &[("session", session)],
                )
            });
            set_block::<SessionCounters, SessionTotals>(SessionCounters::FIELDS, series, values);
        }
        for (hit, value) in &totals.filters {
            handle(&mut self.filters, hit, || match hit.rule {
                Some(rule) => counter(
                    catalog::FILTER_RULE_HITS,
                    &[
                        ("filter", &hit.filter),
                        ("rule", &rule.to_string()),
                        ("action", hit.action.as_str()),
                    ],
                ),
                None => counter(
                    &block_metric(catalog::FILTER_BLOCK, FilterCounters::FIELDS[0].name),
                    &[("filter", &hit.filter), ("action", hit.action.as_str())],
                ),
            })
            .absolute(*value);
        }
        for (group, values) in &totals.groups {
            let series = handle(&mut self.groups, group, || {
                block_series(
                    GroupCounters::FIELDS,
                    catalog::GROUP_BLOCK,
                    &[("tool_group", group)],
                )
            });
            set_block::<GroupCounters, GroupTotals>(GroupCounters::FIELDS, series, values);
        }
        for (key, values) in &totals.ports {
            let series = handle(&mut self.ports, key, || {
                block_series(
                    PortCounters::FIELDS,
                    catalog::TOOL_PORT_BLOCK,
                    &[("tool_group", &key.0), ("port", &key.1)],
                )
            });
            set_block::<PortCounters, PortTotals>(PortCounters::FIELDS, series, values);
        }

        for group in &status.tool_groups {
            for port in &group.ports {
                let key = (group.name.clone(), port.name.clone());
                handle(&mut self.tool_port_live, &key, || {
                    gauge(
                        catalog::TOOL_PORT_LIVE,
                        &[("tool_group", &group.name), ("port", &port.name)],
                    )
                })
                .set(flag(port.live));
            }
        }

        if let Some(d) = &status.dedup {
            let [window, entries, live, huge] = self.dedup.get_or_insert_with(|| {
                [
                    gauge(catalog::DEDUP_WINDOW, &[]),
                    gauge(catalog::DEDUP_ENTRIES, &[]),
                    gauge(catalog::DEDUP_LIVE_ENTRIES, &[]),
                    gauge(catalog::DEDUP_HUGE_PAGE_BYTES, &[]),
                ]
            });
            window.set(d.window_seconds);
            entries.set(d.entries as f64);
            live.set(d.live_entries as f64);
            huge.set(status.resources.dedup_huge_page_bytes as f64);
        }

        for p in &status.ports {
            let info = vec![
                p.name.clone(),
                p.role.as_str().to_owned(),
                p.driver.clone(),
                optional(p.numa_node),
            ];
            handle(&mut self.port_info, &info, || {
                gauge(
                    catalog::PORT_INFO_NAME,
                    &zip_labels(catalog::PORT_INFO, &info),
                )
            })
            .set(1.0);
        }
        for listener in &snapshot.refused {
            for (reason, count) in listener.by_reason() {
                handle(&mut self.refused, &(listener.listener, reason), || {
                    counter(
                        catalog::HTTP_REFUSED,
                        &[("listener", listener.listener), ("reason", reason)],
                    )
                })
                .absolute(count);
            }
        }
        self.publish_ports(snapshot);
        self.publish_network(snapshot);
    }

    /// The addressed ports' addresses and exception-path counters, the tunnel ports and their
    /// next hops.
    fn publish_network(&mut self, snapshot: &Snapshot) {
        for a in &snapshot.status.addressed {
            for address in &a.addresses {
                let info = vec![
                    a.name.clone(),
                    a.mac.clone(),
                    address.clone(),
                    a.kernel.clone(),
                ];
                handle(&mut self.address_info, &info, || {
                    gauge(
                        catalog::ADDRESS_INFO_NAME,
                        &zip_labels(catalog::ADDRESS_INFO, &info),
                    )
                })
                .set(1.0);
            }
            let series = handle(&mut self.exception, &a.name, || {
                catalog::EXCEPTION_COUNTERS
                    .iter()
                    .map(|(name, _)| counter(name, &[("port", &a.name)]))
                    .collect()
            });
            for (c, value) in series.iter().zip(a.counts()) {
                c.absolute(value);
            }
        }
        for t in &snapshot.status.tunnels {
            let info = vec![
                t.tool_group.clone(),
                t.port.clone(),
                t.encapsulation.clone(),
                t.remote.clone(),
                t.via.clone(),
                t.next_hop.clone(),
            ];
            handle(&mut self.tunnel_info, &info, || {
                gauge(
                    catalog::TUNNEL_INFO_NAME,
                    &zip_labels(catalog::TUNNEL_INFO, &info),
                )
            })
            .set(1.0);
            let key = (t.tool_group.clone(), t.port.clone());
            let [resolved, age, max_inner] = handle(&mut self.tunnels, &key, || {
                let pairs = [("tool_group", key.0.as_str()), ("port", key.1.as_str())];
                [
                    catalog::TUNNEL_NEXT_HOP_RESOLVED,
                    catalog::TUNNEL_NEXT_HOP_AGE,
                    catalog::TUNNEL_MAX_INNER,
                ]
                .map(|name| gauge(name, &pairs))
            });
            resolved.set(flag(t.next_hop_answers));
            age.set(t.next_hop_age_seconds.unwrap_or(f64::NAN));
            max_inner.set(t.max_inner_len as f64);
        }
    }

    /// The ports' link state and DPDK statistics.
    fn publish_ports(&mut self, snapshot: &Snapshot) {
        for (i, p) in snapshot.status.ports.iter().enumerate() {
            if self.port_stats.len() <= i {
                self.port_stats.resize_with(i + 1, PortSeries::default);
            }
            let series = &mut self.port_stats[i];
            let port = [("port", p.name.as_str())];
            if let Some(link) = p.link {
                series
                    .link_up
                    .get_or_insert_with(|| gauge(catalog::PORT_LINK_UP, &port))
                    .set(flag(link.up));
                let bytes_per_second = f64::from(link.speed_mbps.unwrap_or(0)) * 125_000.0;
                series
                    .link_speed
                    .get_or_insert_with(|| gauge(catalog::PORT_LINK_SPEED, &port))
                    .set(bytes_per_second);
            }
            let Some(Some(stats)) = snapshot.port_stats.get(i) else {
                continue;
            };
            if series.stats.is_empty() {
                series.stats = catalog::PORT_STATS
                    .iter()
                    .map(|(name, _)| counter(name, &port))
                    .collect();
            }
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
            for (c, value) in series.stats.iter().zip(values) {
                c.absolute(value);
            }
            let queues = usize::from(p.rx_queues.max(p.tx_queues)).min(stats.queues.len());
            while series.queues.len() < queues {
                let q = series.queues.len();
                let queue = q.to_string();
                let pairs = [("port", p.name.as_str()), ("queue", queue.as_str())];
                let [rx_packets, rx_bytes, tx_packets, tx_bytes, errors] =
                    catalog::QUEUE_STATS.map(|(name, _)| name);
                let rx = (q < usize::from(p.rx_queues))
                    .then(|| [rx_packets, rx_bytes, errors].map(|name| counter(name, &pairs)));
                let tx = (q < usize::from(p.tx_queues))
                    .then(|| [tx_packets, tx_bytes].map(|name| counter(name, &pairs)));
                series.queues.push(QueueSeries { rx, tx });
            }
            for (qs, QueueSeries { rx, tx }) in stats.queues.iter().zip(&series.queues) {
                if let Some([packets, bytes, errors]) = rx {
                    packets.absolute(qs.ipackets);
                    bytes.absolute(qs.ibytes);
                    errors.absolute(qs.errors);
                }
                if let Some([packets, bytes]) = tx {
                    packets.absolute(qs.opackets);
                    bytes.absolute(qs.obytes);
                }
            }
            for (name, value) in snapshot.xstats.get(i).into_iter().flatten() {
                handle(&mut series.xstats, name, || {
                    counter(catalog::PORT_XSTATS, &[("port", &p.name), ("xstat", name)])
                })
                .absolute(*value);
            }
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
    use crate::metrics::process::ProcessStats;
    use crate::metrics::snapshot::Refused;
    use crate::report::reload::LastReload;
    use crate::report::{
        AddressedStatus, DedupStatus, GroupPortStatus, GroupStatus, LinkStatus, PortRole,
        PortStatus, ReloadStats, Status, TunnelStatus, WorkerStatus,
    };

    /// A snapshot with something in every part: a filter, dedup, an ingress port with two RX
    /// queues and two addresses, a tool port, a tunnel port, xstats.
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
        let port = |name: &str, role: PortRole, rx_queues, tx_queues| PortStatus {
            name: name.into(),
            role,
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
            revision: "abc1234".into(),
            dpdk_version: "DPDK 22.11.11".into(),
            ports: vec![
                port("in", PortRole::Ingress, 2, 0),
                port("a-1", PortRole::Tool, 0, 1),
            ],
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
            addressed: vec![AddressedStatus {
                name: "in".into(),
                mac: "02:00:00:00:00:01".into(),
                mtu: 9001,
                addresses: vec!["10.0.9.10/24".into(), "fd00:9::10/64".into()],
                kernel: "tap".into(),
                to_kernel: 7,
                from_kernel: 6,
                probes: 3,
                ..AddressedStatus::default()
            }],
            tunnels: vec![TunnelStatus {
                port: "a-2".into(),
                tool_group: "a".into(),
                encapsulation: "vxlan".into(),
                remote: "10.0.8.21".into(),
                via: "in".into(),
                next_hop: "10.0.9.1".into(),
                next_hop_mac: Some("02:00:00:00:00:02".into()),
                next_hop_answers: false,
                next_hop_age_seconds: Some(4.5),
                live: false,
                max_inner_len: 8951,
            }],
            config: crate::report::ConfigStatus {
                reloads: ReloadStats {
                    applied: 2,
                    invalid: 3,
                    needs_restart: 1,
                    last: Some(LastReload {
                        unix_seconds: 1,
                        outcome: ReloadVerdict::Invalid,
                        error: Some("bad".into()),
                    }),
                },
                ..Default::default()
            },
            resources: crate::report::Resources {
                dedup_huge_page_bytes: 2 << 20,
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
            refused: vec![Refused {
                listener: "endpoint",
                timed_out: 2,
                ..Refused::default()
            }],
            process: Some(ProcessStats {
                cpu_seconds: 12.7,
                resident_bytes: 50 << 20,
                virtual_bytes: 3 << 30,
                open_fds: 17,
                max_fds: None,
                start_time_seconds: 1_700_000_000.5,
            }),
        }
    }

    /// Renders `snapshot` with a recorder of its own.
    pub(crate) fn render(snapshot: &Snapshot) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            catalog::describe();
            Publisher::default().publish(snapshot);
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
        has("broker_dedup_table_huge_page_bytes 2097152");
        has("broker_http_refused_connections_total{listener=\"endpoint\",reason=\"timed_out\"} 2");
        has("broker_tool_port_live{tool_group=\"a\",port=\"a-1\"} 1");
        has("broker_tool_port_live{tool_group=\"a\",port=\"a-2\"} 0");
        has("broker_config_reload_failures_total{reason=\"invalid\"} 3");
        has("broker_config_reload_failures_total{reason=\"needs_restart\"} 1");
        has("broker_config_last_reload_successful 0");
        has(
            "broker_build_info{broker=\"test\",version=\"0.1.0\",dpdk_version=\"DPDK 22.11.11\",revision=\"abc1234\"} 1",
        );
        has(
            "broker_port_address_info{port=\"in\",mac=\"02:00:00:00:00:01\",address=\"fd00:9::10/64\",kernel=\"tap\"} 1",
        );
        has("broker_exception_to_kernel_frames_total{port=\"in\"} 7");
        has("broker_exception_from_kernel_frames_total{port=\"in\"} 6");
        has("broker_exception_neighbour_probes_total{port=\"in\"} 3");
        has("broker_exception_answered_frames_total{port=\"in\"} 0");
        has(
            "broker_tunnel_info{tool_group=\"a\",port=\"a-2\",encapsulation=\"vxlan\",remote=\"10.0.8.21\",via=\"in\",next_hop=\"10.0.9.1\"} 1",
        );
        has("broker_tunnel_next_hop_resolved{tool_group=\"a\",port=\"a-2\"} 0");
        has("broker_tunnel_next_hop_age_seconds{tool_group=\"a\",port=\"a-2\"} 4.5");
        has("broker_tunnel_max_inner_frame_bytes{tool_group=\"a\",port=\"a-2\"} 8951");
        has("process_cpu_seconds_total 12");
        has("process_resident_memory_bytes 52428800");
        has("process_virtual_memory_bytes 3221225472");
        has("process_open_fds 17");
        has("process_max_fds 4294967295");
        has("process_start_time_seconds 1700000000.5");
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
        let mut publisher = Publisher::default();
        metrics::with_local_recorder(&recorder, || publisher.publish(&snapshot));
        snapshot.totals.workers[0].counts.rx_packets = 25;
        // The handles were registered with that recorder: no recorder needs to be current.
        publisher.publish(&snapshot);
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
