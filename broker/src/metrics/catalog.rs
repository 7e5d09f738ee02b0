//! Every metric the broker exports: name, type, labels and help text, in one table.
//!
//! # Design
//! The metrics of the data plane's counters are derived from the counter blocks' `FIELDS`
//! tables (`broker_<block>_<field name>_total`, help = the field's doc line) and from the
//! [`Outcome`] / [`Reason`] enums (help = the variants' doc lines), so a counter added to a block
//! appears here, documented, without a second edit. The few metrics that come from elsewhere —
//! DPDK's port statistics, link state, the dedup table's size, build information — are declared
//! here with their help text. The publisher ([`super::publish`]) names metrics only through this
//! module, [`describe`] registers every help text with the recorder, and the README's metrics
//! table is generated from [`catalog`] (a test keeps the two equal).

use std::fmt::Write as _;

use pipelines::counters::{
    FilterCounters, GroupCounters, PortCounters, SessionCounters, WorkerCounters,
};
use pipelines::{Outcome, Reason};

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    #[cfg(test)]
    pub fn label(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: String,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: String,
}

// Label sets. Values come from config names, fixed enums and small integers only.
pub const NO_LABELS: &[&str] = &[];
pub const SESSION: &[&str] = &["session"];
pub const GROUP: &[&str] = &["tool_group"];
pub const TOOL_PORT: &[&str] = &["tool_group", "port"];
pub const WORKER: &[&str] = &["worker"];
pub const WORKER_BURSTS: &[&str] = &["worker", "size"];
pub const WORKER_INFO: &[&str] = &["worker", "lcore", "cpu", "numa_node", "port", "queue"];
pub const OUTCOME: &[&str] = &["outcome"];
pub const REASON: &[&str] = &["reason"];
pub const FILTER_RULE: &[&str] = &["filter", "rule", "action"];
pub const FILTER_DEFAULT: &[&str] = &["filter", "action"];
pub const PORT: &[&str] = &["port"];
pub const PORT_INFO: &[&str] = &["port", "role", "driver", "numa_node"];
pub const PORT_QUEUE: &[&str] = &["port", "queue"];
pub const PORT_XSTAT: &[&str] = &["port", "xstat"];
pub const LISTENER_REASON: &[&str] = &["listener", "reason"];
pub const BUILD_INFO_LABELS: &[&str] = &["broker", "version", "dpdk_version", "revision"];
pub const RELOAD_REASON: &[&str] = &["reason"];
pub const ADDRESS_INFO: &[&str] = &["port", "mac", "address", "kernel"];
pub const TUNNEL_INFO: &[&str] = &[
    "tool_group",
    "port",
    "encapsulation",
    "remote",
    "via",
    "next_hop",
];

// Metrics that do not come from a counter block.
pub const BUILD_INFO: &str = "broker_build_info";
pub const CONFIG_GENERATION: &str = "broker_config_generation";
pub const PLAN_GENERATION: &str = "broker_plan_generation";
pub const CONFIG_RELOAD_FAILURES: &str = "broker_config_reload_failures_total";
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "broker_config_last_reload_successful";
pub const TOOL_PORT_LIVE: &str = "broker_tool_port_live";
pub const UPTIME: &str = "broker_uptime_seconds";
pub const START_TIME: &str = "broker_start_time_seconds";
pub const MBUF_POOL_SIZE: &str = "broker_mbuf_pool_size";
pub const MBUF_POOL_IN_USE: &str = "broker_mbuf_pool_in_use";
pub const PACKETS: &str = "broker_packets_total";
pub const MALFORMED: &str = "broker_malformed_packets_total";
pub const WORKER_BURSTS_TOTAL: &str = "broker_worker_bursts_total";
pub const WORKER_INFO_NAME: &str = "broker_worker_info";
pub const FILTER_RULE_HITS: &str = "broker_filter_rule_hits_total";
pub const DEDUP_WINDOW: &str = "broker_dedup_window_seconds";
pub const DEDUP_ENTRIES: &str = "broker_dedup_table_entries";
pub const DEDUP_LIVE_ENTRIES: &str = "broker_dedup_table_live_entries";
pub const DEDUP_HUGE_PAGE_BYTES: &str = "broker_dedup_table_huge_page_bytes";
pub const PORT_INFO_NAME: &str = "broker_port_info";
pub const PORT_LINK_UP: &str = "broker_port_link_up";
pub const PORT_LINK_SPEED: &str = "broker_port_link_speed_bytes_per_second";
pub const PORT_XSTATS: &str = "broker_port_xstats_total";
pub const HTTP_REFUSED: &str = "broker_http_refused_connections_total";
pub const ADDRESS_INFO_NAME: &str = "broker_port_address_info";
pub const TUNNEL_INFO_NAME: &str = "broker_tunnel_info";
pub const TUNNEL_NEXT_HOP_RESOLVED: &str = "broker_tunnel_next_hop_resolved";
pub const TUNNEL_NEXT_HOP_AGE: &str = "broker_tunnel_next_hop_age_seconds";
pub const TUNNEL_MAX_INNER: &str = "broker_tunnel_max_inner_frame_bytes";
// The process' resources, named as Prometheus' client libraries name them (no `broker_` prefix,
// so dashboards and alerts written for any process apply): see `super::process`.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// DPDK's port statistics (`rte_eth_stats`): metric name, help. The help says what the
/// driver's field means (the fields' docs in `drivers::PortStats`), with DPDK's field name.
pub const PORT_STATS: [(&str, &str); 8] = [
    (
        "broker_port_rx_packets_total",
        "packets the port received (ipackets)",
    ),
    (
        "broker_port_tx_packets_total",
        "packets the port sent (opackets)",
    ),
    (
        "broker_port_rx_bytes_total",
        "bytes the port received (ibytes)",
    ),
    ("broker_port_tx_bytes_total", "bytes the port sent (obytes)"),
    (
        "broker_port_rx_missed_packets_total",
        "packets the NIC dropped because its RX queues were full: the workers fell behind (imissed)",
    ),
    (
        "broker_port_rx_errors_total",
        "erroneous packets the port received (ierrors)",
    ),
    (
        "broker_port_tx_errors_total",
        "packets the port failed to send (oerrors)",
    ),
    (
        "broker_port_rx_nombuf_total",
        "RX mbuf allocation failures: the packet pool ran dry (rx_nombuf)",
    ),
];

/// The exception path's counters of each addressed port (`report::AddressedStatus::counts`, same
/// order): metric name, help.
pub const EXCEPTION_COUNTERS: [(&str, &str); 6] = [
    (
        "broker_exception_to_kernel_frames_total",
        "frames for the port's own addresses (ARP, neighbour discovery, ICMP, the load balancer's health checks) handed to its kernel interface",
    ),
    (
        "broker_exception_from_kernel_frames_total",
        "frames the port's kernel interface sent out of the port (its ARP and neighbour answers and requests, echo replies, health-check answers)",
    ),
    (
        "broker_exception_from_kernel_dropped_frames_total",
        "frames the port's kernel interface sent that were not the port's own to send (another source MAC or address, a protocol other than ARP and IP), dropped",
    ),
    (
        "broker_exception_answered_frames_total",
        "ARP, neighbour-solicitation and echo answers the broker sent itself (kernel = \"none\")",
    ),
    (
        "broker_exception_dropped_frames_total",
        "frames for the port's own addresses dropped: nothing answers them (kernel = \"none\"), or the kernel interface's queue was full",
    ),
    (
        "broker_exception_neighbour_probes_total",
        "ARP requests and neighbour solicitations sent out of the port for the tunnel tool ports' next hops",
    ),
];

/// DPDK's per-queue statistics, for the queues the broker configured (up to
/// `RTE_ETHDEV_QUEUE_STAT_CNTRS`): metric name, help.
pub const QUEUE_STATS: [(&str, &str); 5] = [
    (
        "broker_port_queue_rx_packets_total",
        "packets received on this RX queue (q_ipackets)",
    ),
    (
        "broker_port_queue_rx_bytes_total",
        "bytes received on this RX queue (q_ibytes)",
    ),
    (
        "broker_port_queue_tx_packets_total",
        "packets sent on this TX queue (q_opackets)",
    ),
    (
        "broker_port_queue_tx_bytes_total",
        "bytes sent on this TX queue (q_obytes)",
    ),
    (
        "broker_port_queue_errors_total",
        "packets of this queue index dropped by the driver (q_errors)",
    ),
];

/// The metric of a counter block's field: `broker_<block>_<field name>_total`.
pub fn block_metric(block: &str, field: &str) -> String {
    format!("broker_{block}_{field}_total")
}

pub const SESSION_BLOCK: &str = "session";
pub const GROUP_BLOCK: &str = "tool_group";
pub const TOOL_PORT_BLOCK: &str = "tool_port";
pub const WORKER_BLOCK: &str = "worker";
pub const FILTER_BLOCK: &str = "filter";

/// Help of `broker_packets_total`: the outcomes and their doc lines.
fn outcomes_help() -> String {
    let mut help = format!(
        "{}; every received packet has exactly one:",
        WorkerCounters::doc("outcomes")
    );
    let mut seen = Vec::new();
    for outcome in Outcome::all() {
        if seen.contains(&outcome.label()) {
            continue;
        }
        seen.push(outcome.label());
        let text = match outcome {
            Outcome::Malformed(_) => {
                "malformed outer headers, dropped (by reason: broker_malformed_packets_total)"
            }
            other => other.help(),
        };
        let _ = write!(help, " {} = {};", outcome.label(), text);
    }
    help.pop();
    help
}

/// Help of `broker_malformed_packets_total`: the reasons and their doc lines.
fn reasons_help() -> String {
    let mut help = String::from(
        "packets dropped as malformed (outer headers that lie about their length, are cut short, or nest past a bound), by reason:",
    );
    for reason in Reason::ALL {
        let _ = write!(help, " {} = {};", reason.label(), reason.help());
    }
    help.pop();
    help
}

fn def(
    name: impl Into<String>,
    kind: Kind,
    labels: &'static [&'static str],
    help: impl Into<String>,
) -> MetricDef {
    MetricDef {
        name: name.into(),
        kind,
        labels,
        help: help.into(),
    }
}

/// Every metric family, in the order of the README table.
pub fn catalog() -> Vec<MetricDef> {
    use Kind::{Counter, Gauge};
    let mut all = vec![
        def(
            BUILD_INFO,
            Gauge,
            BUILD_INFO_LABELS,
            "always 1: the instance name, the broker version, the DPDK version it runs on and the git revision it was built from",
        ),
        def(
            CONFIG_GENERATION,
            Gauge,
            NO_LABELS,
            "configurations loaded since start (1 for the first; every reload adds one)",
        ),
        def(
            PLAN_GENERATION,
            Gauge,
            NO_LABELS,
            "data-plane plans built since start (a reload or a link change builds one)",
        ),
        def(
            CONFIG_RELOAD_FAILURES,
            Counter,
            RELOAD_REASON,
            "reloads refused, the running config kept: invalid = the file is unreadable or not a valid config; needs_restart = it changes what only a restart can (ports, queues, EAL, lcores, dedup table)",
        ),
        def(
            CONFIG_LAST_RELOAD_SUCCESSFUL,
            Gauge,
            NO_LABELS,
            "1 when the last reload was applied (or none was tried), 0 when it was refused",
        ),
        def(
            UPTIME,
            Gauge,
            NO_LABELS,
            "seconds since the data plane started",
        ),
        def(
            START_TIME,
            Gauge,
            NO_LABELS,
            "when the data plane started, in seconds since the Unix epoch",
        ),
        def(
            MBUF_POOL_SIZE,
            Gauge,
            NO_LABELS,
            "mbufs in the packet buffer pool",
        ),
        def(
            MBUF_POOL_IN_USE,
            Gauge,
            NO_LABELS,
            "mbufs taken from the pool (RX rings, workers' buffers, TX rings, caches, pcap replay)",
        ),
        def(PACKETS, Counter, OUTCOME, outcomes_help()),
        def(MALFORMED, Counter, REASON, reasons_help()),
    ];
    for f in WorkerCounters::FIELDS {
        all.push(def(
            block_metric(WORKER_BLOCK, f.name),
            Counter,
            WORKER,
            f.help,
        ));
    }
    all.push(def(
        WORKER_BURSTS_TOTAL,
        Counter,
        WORKER_BURSTS,
        format!(
            "{}: 1, 2-3, 4-7, 8-15, 16-31, 32+",
            WorkerCounters::doc("bursts")
        ),
    ));
    all.push(def(
        WORKER_INFO_NAME,
        Gauge,
        WORKER_INFO,
        "always 1: the worker's EAL lcore, CPU and NUMA node, and the ingress port and RX queue it polls",
    ));
    for f in SessionCounters::FIELDS {
        all.push(def(
            block_metric(SESSION_BLOCK, f.name),
            Counter,
            SESSION,
            f.help,
        ));
    }
    all.push(def(
        FILTER_RULE_HITS,
        Counter,
        FILTER_RULE,
        FilterCounters::doc("rules"),
    ));
    for f in FilterCounters::FIELDS {
        all.push(def(
            block_metric(FILTER_BLOCK, f.name),
            Counter,
            FILTER_DEFAULT,
            f.help,
        ));
    }
    for f in GroupCounters::FIELDS {
        all.push(def(
            block_metric(GROUP_BLOCK, f.name),
            Counter,
            GROUP,
            f.help,
        ));
    }
    for f in PortCounters::FIELDS {
        all.push(def(
            block_metric(TOOL_PORT_BLOCK, f.name),
            Counter,
            TOOL_PORT,
            f.help,
        ));
    }
    all.push(def(
        TOOL_PORT_LIVE,
        Gauge,
        TOOL_PORT,
        "1 when the data plane sends to the port (its link was up when the current plan was built), 0 when its group's table leaves it out",
    ));
    all.extend([
        def(DEDUP_WINDOW, Gauge, NO_LABELS, "a tool group receives an inner packet at most once within this window"),
        def(DEDUP_ENTRIES, Gauge, NO_LABELS, "entries of the dedup table all workers share (its fixed capacity)"),
        def(
            DEDUP_LIVE_ENTRIES,
            Gauge,
            NO_LABELS,
            "entries of the dedup table still within the window, estimated from a sample of the table",
        ),
        def(
            DEDUP_HUGE_PAGE_BYTES,
            Gauge,
            NO_LABELS,
            "bytes of the dedup table the kernel put on huge pages at start (0: a table under 2 MiB, or the kernel could not)",
        ),
        def(PORT_INFO_NAME, Gauge, PORT_INFO, "always 1: the port's role (ingress or tool), DPDK driver and NUMA node"),
        def(PORT_LINK_UP, Gauge, PORT, "1 when the port's link is up, 0 when it is down"),
        def(PORT_LINK_SPEED, Gauge, PORT, "the link's speed in bytes per second (0 when the device does not know it)"),
    ]);
    for (name, help) in PORT_STATS {
        all.push(def(name, Counter, PORT, help));
    }
    for (name, help) in QUEUE_STATS {
        all.push(def(name, Counter, PORT_QUEUE, help));
    }
    all.push(def(
        PORT_XSTATS,
        Counter,
        PORT_XSTAT,
        "the driver's extended statistics (rte_eth_xstats), by DPDK's name for each",
    ));
    all.push(def(
        ADDRESS_INFO_NAME,
        Gauge,
        ADDRESS_INFO,
        "always 1, one series per address of an addressed port: the MAC it answers with, the address with its prefix length, and its kernel side (none, tap or virtio-user)",
    ));
    for (name, help) in EXCEPTION_COUNTERS {
        all.push(def(name, Counter, PORT, help));
    }
    all.extend([
        def(
            TUNNEL_INFO_NAME,
            Gauge,
            TUNNEL_INFO,
            "always 1: a tunnel tool port's encapsulation, the analyzer's address, the ingress port it sends through and the next hop it sends to",
        ),
        def(
            TUNNEL_NEXT_HOP_RESOLVED,
            Gauge,
            TOOL_PORT,
            "1 while the tunnel port's next hop answers ARP or neighbour solicitation (asked every second, silent after 3 s), 0 when it never answered or went silent",
        ),
        def(
            TUNNEL_NEXT_HOP_AGE,
            Gauge,
            TOOL_PORT,
            "seconds since the tunnel port's next hop last answered (NaN until it first answers)",
        ),
        def(
            TUNNEL_MAX_INNER,
            Gauge,
            TOOL_PORT,
            "the longest mirrored frame the tunnel port sends whole: the via port's MTU less the outer headers; longer copies are cut (broker_tool_port_egress_truncated_packets_total)",
        ),
    ]);
    all.push(def(
        HTTP_REFUSED,
        Counter,
        LISTENER_REASON,
        "connections an HTTP listener (endpoint, health) refused: not_allowed = the peer is not in [broker] metrics_allow; over_capacity = closed to make room for a newer one, or every answering thread busy; timed_out = the request did not arrive in time; malformed = not HTTP, or over a size limit",
    ));
    all.extend([
        def(
            PROCESS_CPU_SECONDS,
            Counter,
            NO_LABELS,
            "CPU time the broker process used, user and system, in whole seconds (every worker polls, so it grows by about one second per worker per second)",
        ),
        def(
            PROCESS_RESIDENT_MEMORY,
            Gauge,
            NO_LABELS,
            "resident memory of the broker process, in bytes; DPDK's hugepages are not counted (with hugepages, the mbuf pool is not in it; the dedup table is, on transparent huge pages or not)",
        ),
        def(
            PROCESS_VIRTUAL_MEMORY,
            Gauge,
            NO_LABELS,
            "virtual memory of the broker process, in bytes",
        ),
        def(
            PROCESS_OPEN_FDS,
            Gauge,
            NO_LABELS,
            "file descriptors the broker process has open",
        ),
        def(
            PROCESS_MAX_FDS,
            Gauge,
            NO_LABELS,
            "the broker process' limit on open file descriptors (RLIMIT_NOFILE, soft)",
        ),
        def(
            PROCESS_START_TIME,
            Gauge,
            NO_LABELS,
            "when the broker process started, in seconds since the Unix epoch (before DPDK initialised, unlike broker_start_time_seconds)",
        ),
    ]);
    all
}

/// Registers every metric's type and help text with the installed recorder.
pub fn describe() {
    for m in catalog() {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
        }
    }
}

/// The README's metrics table (Markdown), generated from [`catalog`] (the README test compares
/// and, with `BLESS=1`, rewrites).
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out = String::from("| Metric | Type | Labels | Meaning |\n| --- | --- | --- | --- |\n");
    for m in catalog() {
        let labels = if m.labels.is_empty() {
            "—".to_owned()
        } else {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Outcome and reason values are listed in their own table below.
        let help = match m.name.as_str() {
            PACKETS => format!("{}; see *Outcomes*", WorkerCounters::doc("outcomes")),
            MALFORMED => "packets dropped as malformed, by reason; see *Outcomes*".to_owned(),
            _ => m.help.clone(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {labels} | {} |",
            m.name,
            m.kind.label(),
            help.replace('|', "\\|")
        );
    }
    out.push_str("\n#### Outcomes\n\n");
    out.push_str(
        "`broker_packets_total{outcome}` — every received packet has exactly one outcome:\n\n",
    );
    out.push_str("| `outcome` | Meaning |\n| --- | --- |\n");
    let mut seen = Vec::new();
    for outcome in Outcome::all() {
        if !seen.contains(&outcome.label()) {
            seen.push(outcome.label());
            let help = match outcome {
                Outcome::Malformed(_) => {
                    "malformed outer headers, dropped; by reason in `broker_malformed_packets_total`"
                }
                other => other.help(),
            };
            let _ = writeln!(out, "| `{}` | {help} |", outcome.label());
        }
    }
    out.push_str(
        "\n`broker_malformed_packets_total{reason}`:\n\n| `reason` | Meaning |\n| --- | --- |\n",
    );
    for reason in Reason::ALL {
        let _ = writeln!(out, "| `{}` | {} |", reason.label(), reason.help());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_are_unique() {
        let all = catalog();
        let mut names = std::collections::HashSet::new();
        for m in &all {
            assert!(names.insert(m.name.clone()), "{} twice", m.name);
            // `process_*`: the names every Prometheus client library gives these.
            assert!(
                m.name.starts_with("broker_") || m.name.starts_with("process_"),
                "{}",
                m.name
            );
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            match m.kind {
                Kind::Counter => assert!(
                    m.name.ends_with("_total"),
                    "counter {} must end in _total",
                    m.name
                ),
                Kind::Gauge => assert!(
                    !m.name.ends_with("_total"),
                    "gauge {} must not end in _total",
                    m.name
                ),
            }
            if m.name.contains("bytes") && m.kind == Kind::Counter {
                assert!(m.name.ends_with("_bytes_total"), "{}", m.name);
            }
            assert!(!m.help.is_empty(), "{} has no help", m.name);
        }
        assert!(names.contains("broker_port_rx_packets_total"));
        assert!(names.contains("broker_session_delivered_packets_total"));
        assert!(names.contains("broker_tool_port_tx_dropped_packets_total"));
        assert!(names.contains("broker_filter_default_hits_total"));
    }

    #[test]
    fn help_comes_from_the_doc_lines() {
        let all = catalog();
        let help = |name: &str| {
            all.iter()
                .find(|m| m.name == name)
                .map(|m| m.help.clone())
                .unwrap()
        };
        assert_eq!(
            help("broker_tool_group_duplicate_packets_total"),
            GroupCounters::FIELDS[1].help
        );
        assert_eq!(
            help("broker_tool_group_duplicate_packets_total"),
            "packets not sent to the group because the port (of a round-robin group: the group) had received them within the dedup window"
        );
        let outcomes = help(PACKETS);
        for o in Outcome::all().filter(|o| !matches!(o, Outcome::Malformed(_))) {
            assert!(
                outcomes.contains(&format!("{} = {}", o.label(), o.help())),
                "{o}: {outcomes}"
            );
        }
        let reasons = help(MALFORMED);
        for r in Reason::ALL {
            assert!(
                reasons.contains(&format!("{} = {}", r.label(), r.help())),
                "{r}"
            );
        }
    }
}

#[cfg(test)]
mod readme {
    use super::markdown_table;

    const START: &str =
        "<!-- metrics-table:start (generated by `BLESS=1 cargo test -p broker readme`) -->\n";
    const END: &str = "<!-- metrics-table:end -->";

    /// The README's metrics table is the catalogue's; `BLESS=1` rewrites it.
    #[test]
    fn readme_metrics_table_matches_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("read README.md");
        let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
            panic!("README.md has no metrics table markers ({START:?} … {END:?})");
        };
        let current = &readme[start + START.len()..end];
        let generated = format!("\n{}\n", markdown_table());
        if current != generated {
            if std::env::var_os("BLESS").is_some() {
                let updated = format!("{}{START}{generated}{}", &readme[..start], &readme[end..]);
                std::fs::write(&path, updated).expect("write README.md");
            } else {
                panic!(
                    "README.md's metrics table is out of date: run `BLESS=1 cargo test -p broker readme`"
                );
            }
        }
    }
}
