//! A running trace as the HTTP server streams it, and the JSON of a traced packet: one object a
//! line (`application/x-ndjson`), which `broker trace` prints as text or passes on.
//!
//! # Design
//! The workers fill [`TraceRecord`]s with indices (session, filter, rule position, group,
//! port); the records are named here, off the workers, from the config ([`Names`]). The JSON is
//! the contract between the endpoint and the CLI (and anyone's `curl | jq`): [`TracedPacket`],
//! read back by the CLI with the same type.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use config::{Balance, ValidatedConfig};
use pipelines::Outcome;
use pipelines::observe::{CopyTrace, DecapTrace, DedupTrace, TraceRecord, TxResult};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::http::server::StreamBody;
use crate::runtime::tap::{Taps, Trace};

/// The names of a config, for naming trace records.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// The config generation they are from.
    pub generation: u64,
    pub sessions: Vec<String>,
    /// Filters: name, and the number of each rule by position.
    pub filters: Vec<(String, Vec<u16>)>,
    pub groups: Vec<String>,
    /// Tool ports: the encapsulation of a tunnel port (`vxlan to 10.0.9.21`).
    pub tunnels: Vec<Option<String>>,
}

impl Names {
    pub fn of(config: &ValidatedConfig, generation: u64) -> Names {
        Names {
            generation,
            sessions: config.sessions.iter().map(|s| s.name.clone()).collect(),
            filters: config
                .filters
                .iter()
                .map(|f| (f.name.clone(), f.rules.iter().map(|r| r.number).collect()))
                .collect(),
            groups: config.tool_groups.iter().map(|g| g.name.clone()).collect(),
            tunnels: config
                .tool_ports
                .iter()
                .map(|p| {
                    p.tunnel()
                        .map(|t| format!("{} to {}", t.encapsulation, t.remote))
                })
                .collect(),
        }
    }
}

/// One tunnel removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelView {
    /// `vxlan` or `geneve`.
    pub kind: String,
    /// Its packet's IP source (the outermost one: the mirror traffic's sender).
    pub source: IpAddr,
    pub vni: u32,
}

/// The decapsulation stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecapView {
    /// `tunnelled`, `untunneled` (passed as it is), `refused` (the outcome says why) or
    /// `not_reached` (for the addressed port itself).
    pub result: String,
    /// The tunnels, outermost first (those read before a refusal, for a refused packet).
    pub tunnels: Vec<TunnelView>,
    /// Bytes removed (tunnel headers and trailing padding).
    pub stripped: u32,
}

/// The inner packet's flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowView {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or the protocol number.
    pub protocol: String,
    pub source: IpAddr,
    pub destination: IpAddr,
    /// Transport ports, when the packet has them.
    pub source_port: Option<u16>,
    pub destination_port: Option<u16>,
}

/// The filter's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterView {
    pub name: String,
    /// The number of the rule that decided; `None`: the filter's default did.
    pub rule: Option<u16>,
    /// `accept` or `reject`.
    pub action: String,
}

/// One tool group of the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub name: String,
    /// `source`, `flow`, `ip-pair` or `round-robin`.
    pub balance: String,
    /// The key the group's table was looked up with (hexadecimal), or the round-robin turn.
    pub key: String,
    /// The port chosen; `None`: no live port could take it.
    pub port: Option<String>,
    /// `new`, `new_evicted_live`, `duplicate`, `sender_withheld` (the sender rule) or
    /// `not_checked`.
    pub dedup: String,
    /// Cut to this many bytes by the group's slice.
    pub sliced_to: Option<u32>,
    /// `none` (no copy: no live port, or a duplicate), `no_buffer`, or `queued`.
    pub copy: String,
    /// Bytes the port sends (with a tunnel port's outer headers).
    pub length: Option<u32>,
    /// A tunnel port's encapsulation and its outer headers' length.
    pub encapsulation: Option<String>,
    /// Cut so that, encapsulated, it fits the via port's MTU.
    pub egress_truncated: bool,
    /// `sent`, `tx_dropped` (the TX queue was full) or `pending`; `None` without a copy.
    pub tx: Option<String>,
}

/// One traced packet's way through the stages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedPacket {
    /// Its place in the trace, from 1.
    pub packet: u64,
    /// When its burst was taken, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub worker: u16,
    pub ingress: String,
    pub plan_generation: u64,
    /// Its length as received, and its segments.
    pub length: u32,
    pub segments: u16,
    pub decap: DecapView,
    pub inner_length: Option<u32>,
    pub vni: Option<u32>,
    pub session: Option<String>,
    pub flow: Option<FlowView>,
    /// `ingress`, `egress`, or `None` (neither end is one of the session's `source_ips`).
    pub direction: Option<String>,
    pub filter: Option<FilterView>,
    pub groups: Vec<GroupView>,
    /// Its single outcome (`malformed` with `reason`).
    pub outcome: String,
    pub reason: Option<String>,
}

fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        58 => "icmpv6".to_owned(),
        n => n.to_string(),
    }
}

fn name_of(names: &[String], index: usize) -> String {
    names
        .get(index)
        .cloned()
        .unwrap_or_else(|| format!("#{index}"))
}

impl TracedPacket {
    /// Names `record`, the `packet`-th of the trace.
    pub fn of(
        record: &TraceRecord,
        packet: u64,
        names: &Names,
        ingress: &[String],
        tools: &[String],
        epoch_offset_ns: i128,
    ) -> TracedPacket {
        let (result, tunnels, stripped) = match record.decap {
            DecapTrace::NotReached => ("not_reached", Vec::new(), 0),
            DecapTrace::Refused => ("refused", Vec::new(), 0),
            DecapTrace::Untunneled => ("untunneled", Vec::new(), 0),
            DecapTrace::Tunnelled {
                layers,
                depth,
                stripped,
            } => (
                "tunnelled",
                layers
                    .iter()
                    .take(usize::from(depth))
                    .flatten()
                    .map(|l| TunnelView {
                        kind: l.kind.as_str().to_owned(),
                        source: l.source,
                        vni: l.vni,
                    })
                    .collect(),
                stripped,
            ),
        };
        let decapped = matches!(
            record.decap,
            DecapTrace::Tunnelled { .. } | DecapTrace::Untunneled
        );
        let (outcome, reason) = match record.outcome {
            Some(Outcome::Malformed(r)) => ("malformed".to_owned(), Some(r.label().to_owned())),
            Some(o) => (o.label().to_owned(), None),
            None => ("unknown".to_owned(), None),
        };
        TracedPacket {
            packet,
            time_ns: (i128::from(record.time_ns) + epoch_offset_ns).max(0) as u64,
            worker: record.worker,
            ingress: name_of(ingress, usize::from(record.ingress)),
            plan_generation: record.plan_generation,
            length: record.len,
            segments: record.segments,
            decap: DecapView {
                result: result.to_owned(),
                tunnels,
                stripped,
            },
            inner_length: decapped.then_some(record.inner_len),
            vni: record.vni,
            session: record
                .session
                .map(|s| name_of(&names.sessions, usize::from(s))),
            flow: record.flow.map(|f| FlowView {
                protocol: protocol_name(f.protocol),
                source: f.src,
                destination: f.dst,
                source_port: f.has_ports.then_some(f.src_port),
                destination_port: f.has_ports.then_some(f.dst_port),
            }),
            direction: record.direction.map(|d| d.as_str().to_owned()),
            filter: record.filter.map(|f| {
                let (name, rules) = names
                    .filters
                    .get(usize::from(f.filter))
                    .cloned()
                    .unwrap_or_else(|| (format!("#{}", f.filter), Vec::new()));
                FilterView {
                    name,
                    rule: f
                        .rule
                        .map(|r| rules.get(usize::from(r)).copied().unwrap_or(u16::MAX)),
                    action: f.action.as_str().to_owned(),
                }
            }),
            groups: record
                .groups()
                .iter()
                .map(|g| {
                    let (copy, length, encapsulation, egress_truncated, tx) = match g.copy {
                        CopyTrace::None => ("none", None, None, false, None),
                        CopyTrace::NoBuffer => ("no_buffer", None, None, false, None),
                        CopyTrace::Queued {
                            len,
                            encapsulation,
                            egress_truncated,
                            tx,
                        } => (
                            "queued",
                            Some(len),
                            encapsulation.map(|overhead| {
                                let tunnel = g
                                    .port
                                    .and_then(|p| names.tunnels.get(usize::from(p)).cloned())
                                    .flatten()
                                    .unwrap_or_else(|| "tunnel".to_owned());
                                format!("{tunnel} ({overhead} bytes of outer headers)")
                            }),
                            egress_truncated,
                            Some(match tx {
                                TxResult::Pending => "pending",
                                TxResult::Sent => "sent",
                                TxResult::Dropped => "tx_dropped",
                            }),
                        ),
                    };
                    GroupView {
                        name: name_of(&names.groups, usize::from(g.group)),
                        balance: g.balance.as_str().to_owned(),
                        key: match g.balance {
                            Balance::RoundRobin => format!("turn {}", g.key),
                            _ => format!("{:#018x}", g.key),
                        },
                        port: g.port.map(|p| name_of(tools, usize::from(p))),
                        dedup: match g.dedup {
                            DedupTrace::NotChecked => "not_checked",
                            DedupTrace::New => "new",
                            DedupTrace::NewEvictedLive => "new_evicted_live",
                            DedupTrace::Duplicate => "duplicate",
                            DedupTrace::SenderWithheld => "sender_withheld",
                        }
                        .to_owned(),
                        sliced_to: g.sliced_to,
                        copy: copy.to_owned(),
                        length,
                        encapsulation,
                        egress_truncated,
                        tx: tx.map(str::to_owned),
                    }
                })
                .collect(),
            outcome,
            reason,
        }
    }
}

/// When, as `HH:MM:SS.nnnnnnnnn` UTC.
fn clock_time(time_ns: u64) -> String {
    let seconds = time_ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        time_ns % 1_000_000_000
    )
}

impl fmt::Display for TracedPacket {
    /// The text `broker trace` prints: a line per stage.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "packet {}: {} UTC, ingress {}, worker {}, {} bytes{} (plan {})",
            self.packet,
            clock_time(self.time_ns),
            self.ingress,
            self.worker,
            self.length,
            if self.segments > 1 {
                format!(" in {} segments", self.segments)
            } else {
                String::new()
            },
            self.plan_generation
        )?;
        let tunnels: Vec<String> = self
            .decap
            .tunnels
            .iter()
            .map(|t| format!("{} vni {} from {}", t.kind, t.vni, t.source))
            .collect();
        match self.decap.result.as_str() {
            "tunnelled" => writeln!(
                f,
                "  decap      {}; {} bytes stripped, {}-byte inner frame",
                tunnels.join(" > "),
                self.decap.stripped,
                self.inner_length.unwrap_or_default()
            )?,
            "untunneled" => writeln!(f, "  decap      not a tunnel: passed as it is")?,
            "refused" if tunnels.is_empty() => writeln!(f, "  decap      refused")?,
            "refused" => writeln!(f, "  decap      refused after {}", tunnels.join(" > "))?,
            _ => writeln!(f, "  decap      not reached: for the addressed port itself")?,
        }
        if let Some(flow) = &self.flow {
            let end = |address: &IpAddr, port: Option<u16>| match (address, port) {
                (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
                (a, Some(p)) => format!("{a}:{p}"),
                (a, None) => a.to_string(),
            };
            writeln!(
                f,
                "  inner      {} {} > {}",
                flow.protocol,
                end(&flow.source, flow.source_port),
                end(&flow.destination, flow.destination_port)
            )?;
        }
        if self.session.is_some() || self.vni.is_some() {
            let mut line = match &self.session {
                Some(s) => format!("  session    {s}"),
                None => "  session    none".to_owned(),
            };
            if let Some(vni) = self.vni {
                let _ = write!(line, " (vni {vni})");
            }
            if self.session.is_some() {
                let _ = write!(
                    line,
                    ", direction {}",
                    self.direction.as_deref().unwrap_or("unknown")
                );
            }
            writeln!(f, "{line}")?;
        }
        if let Some(filter) = &self.filter {
            match filter.rule {
                Some(rule) => writeln!(
                    f,
                    "  filter     {}: rule {rule} {}",
                    filter.name, filter.action
                )?,
                None => writeln!(
                    f,
                    "  filter     {}: no rule matched, default {}",
                    filter.name, filter.action
                )?,
            }
        }
        for g in &self.groups {
            let mut line = format!("  group      {} ({}, key {})", g.name, g.balance, g.key);
            match &g.port {
                Some(port) => {
                    let _ = write!(line, " -> {port}");
                }
                None => line.push_str(": no live port"),
            }
            if g.dedup != "not_checked" {
                let _ = write!(line, "; dedup {}", g.dedup);
            }
            if let Some(slice) = g.sliced_to {
                let _ = write!(line, "; sliced to {slice}");
            }
            match g.copy.as_str() {
                "queued" => {
                    if let Some(e) = &g.encapsulation {
                        let _ = write!(line, "; {e}");
                    }
                    if g.egress_truncated {
                        line.push_str(", cut to fit the MTU");
                    }
                    let _ = write!(
                        line,
                        "; {} bytes {}",
                        g.length.unwrap_or_default(),
                        g.tx.as_deref().unwrap_or("pending")
                    );
                }
                "no_buffer" => line.push_str("; no buffer for the copy"),
                _ => {}
            }
            writeln!(f, "{line}")?;
        }
        match &self.reason {
            Some(reason) => writeln!(f, "  outcome    {} ({reason})", self.outcome),
            None => writeln!(f, "  outcome    {}", self.outcome),
        }
    }
}

/// What a trace stream is made of.
#[derive(Debug)]
pub struct Setup {
    pub taps: Arc<Taps>,
    pub trace: Arc<Trace>,
    pub records: Receiver<TraceRecord>,
    pub names: Arc<Names>,
    pub ingress: Vec<String>,
    pub tools: Vec<String>,
    pub count: u32,
    pub duration: Option<Duration>,
    pub epoch_offset_ns: i128,
}

/// A trace being streamed.
#[derive(Debug)]
pub struct TraceStream {
    setup: Setup,
    deadline: Option<Instant>,
    sent: u64,
    finishing: bool,
    done: bool,
    stopped: bool,
}

impl TraceStream {
    pub fn new(setup: Setup) -> TraceStream {
        info!(
            "trace started: the next {} packets{}",
            setup.count,
            setup
                .trace
                .ingress
                .map(|i| format!(" of {}", name_of(&setup.ingress, usize::from(i))))
                .unwrap_or_default()
        );
        TraceStream {
            deadline: setup.duration.map(|d| Instant::now() + d),
            setup,
            sent: 0,
            finishing: false,
            done: false,
            stopped: false,
        }
    }

    fn write(&mut self, record: &TraceRecord, out: &mut Vec<u8>) {
        self.sent += 1;
        let packet = TracedPacket::of(
            record,
            self.sent,
            &self.setup.names,
            &self.setup.ingress,
            &self.setup.tools,
            self.setup.epoch_offset_ns,
        );
        if serde_json::to_writer(&mut *out, &packet).is_ok() {
            out.push(b'\n');
        }
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.setup.taps.stop_trace(&self.setup.trace);
        let waited = Instant::now();
        while Arc::strong_count(&self.setup.trace) > 1 && waited.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl StreamBody for TraceStream {
    fn next(&mut self, out: &mut Vec<u8>, wait: Duration) -> bool {
        if self.done {
            return false;
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            self.finishing = true;
        }
        let wanted = u64::from(self.setup.count);
        if !self.finishing {
            let wait = match self.deadline {
                Some(d) => wait.min(d.saturating_duration_since(now)),
                None => wait,
            };
            match self.setup.records.recv_timeout(wait) {
                Ok(record) => {
                    self.write(&record, out);
                    while self.sent < wanted {
                        match self.setup.records.try_recv() {
                            Ok(record) => self.write(&record, out),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.finishing = true,
            }
            if self.sent >= wanted {
                self.finishing = true;
            }
        }
        if self.finishing {
            self.stop();
            // Records of packets traced before the stop.
            while self.sent < wanted {
                match self.setup.records.try_recv() {
                    Ok(record) => self.write(&record, out),
                    Err(_) => break,
                }
            }
            info!("trace ended: {} packets traced", self.sent);
            self.done = true;
        }
        !self.done
    }

    fn finish(&mut self) {
        self.finishing = true;
    }
}

impl Drop for TraceStream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses one line of a trace stream.
pub fn parse_line(line: &str) -> Result<TracedPacket, serde_json::Error> {
    serde_json::from_str(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{Action, Direction};
    use pipelines::FlowKey;
    use pipelines::Reason;
    use pipelines::observe::{FilterTrace, GroupTrace, TunnelLayer};
    use pipelines::stage::decap::TunnelKind;

    fn names() -> Names {
        let config = config::fixtures::config(pipelines::fuzzing::PLAIN);
        Names::of(&config, 1)
    }

    #[test]
    fn a_record_is_named_from_the_config_and_reads_back() {
        let names = names();
        let mut record = TraceRecord {
            worker: 1,
            ingress: 0,
            plan_generation: 4,
            time_ns: 5_000_000_000,
            len: 164,
            segments: 1,
            decap: DecapTrace::Tunnelled {
                layers: [
                    Some(TunnelLayer {
                        kind: TunnelKind::Vxlan,
                        source: "10.0.1.10".parse().unwrap(),
                        vni: 101,
                    }),
                    None,
                    None,
                ],
                depth: 1,
                stripped: 50,
            },
            inner_len: 114,
            session: Some(0),
            vni: Some(101),
            flow: Some(FlowKey::without_ports(
                "10.0.1.10".parse().unwrap(),
                "192.0.2.7".parse().unwrap(),
                1,
            )),
            direction: Some(Direction::Egress),
            filter: Some(FilterTrace {
                filter: 0,
                rule: Some(2),
                action: Action::Reject,
            }),
            outcome: Some(Outcome::Filtered),
            ..TraceRecord::EMPTY
        };
        let packet = TracedPacket::of(&record, 3, &names, &["in".into()], &[], 1_000);
        assert_eq!(packet.session.as_deref(), Some("web"));
        let filter = packet.filter.clone().unwrap();
        assert_eq!(
            (filter.name.as_str(), filter.rule, filter.action.as_str()),
            ("web", Some(300), "reject"),
            "rule 300 is the third of filter web"
        );
        assert_eq!(packet.outcome, "filtered");
        assert_eq!(packet.time_ns, 5_000_001_000);
        assert_eq!(packet.decap.tunnels[0].kind, "vxlan");
        let line = serde_json::to_string(&packet).unwrap();
        assert_eq!(
            parse_line(&line).unwrap(),
            packet,
            "the CLI reads what the endpoint writes"
        );
        let text = packet.to_string();
        assert!(text.contains("filter     web: rule 300 reject"), "{text}");
        assert!(
            text.contains("decap      vxlan vni 101 from 10.0.1.10"),
            "{text}"
        );
        assert!(
            text.contains("inner      icmp 10.0.1.10 > 192.0.2.7"),
            "{text}"
        );

        record.filter = Some(FilterTrace {
            filter: 0,
            rule: None,
            action: Action::Reject,
        });
        record.outcome = Some(Outcome::Malformed(Reason::VxlanNoVni));
        record.push_group(GroupTrace {
            group: 0,
            balance: Balance::Flow,
            key: 0xabc,
            port: Some(1),
            dedup: DedupTrace::Duplicate,
            sliced_to: None,
            copy: CopyTrace::None,
        });
        let packet = TracedPacket::of(
            &record,
            4,
            &names,
            &["in".into()],
            &["ids-1".into(), "ids-2".into()],
            0,
        );
        assert_eq!(packet.filter.unwrap().rule, None);
        assert_eq!(
            (packet.outcome.as_str(), packet.reason.as_deref()),
            ("malformed", Some("vxlan_no_vni"))
        );
        let group = &packet.groups[0];
        assert_eq!(
            (
                group.name.as_str(),
                group.port.as_deref(),
                group.dedup.as_str()
            ),
            ("ids", Some("ids-2"), "duplicate")
        );
        assert_eq!(group.key, "0x0000000000000abc");
    }
}
