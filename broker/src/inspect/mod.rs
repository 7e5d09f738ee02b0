//! Live capture and packet trace, on the endpoint's side: `GET /capture` streams pcapng,
//! `GET /trace` streams one JSON record per traced packet.
//!
//! # Design
//! A request is checked here, whole, before anything starts: every parameter known, every
//! name a port of the config, every number in range; a bad one is answered `400` with the
//! reason, a second capture (or trace) while one runs `409`. Then the capture or trace is
//! started through the workers' [`Taps`] (`runtime::tap`, which says what the workers do) and
//! its stream ([`capture::CaptureStream`], [`trace::TraceStream`]) is handed to the HTTP
//! server, which sends it chunked while it lasts ([`crate::http::server`]): until its count
//! or its duration is reached, or the client closes its side (the CLI does on Ctrl-C: the
//! stream then ends properly, the capture's statistics written last), or goes away (the
//! stream is dropped, which stops the capture). Nothing here runs on a worker, and nothing
//! here waits on one for more than the few microseconds a worker takes to reach its next poll.
//!
//! Names come from the config: tool ports and ingress ports are fixed at start (a reload
//! cannot change them); the names a trace shows for sessions, filters and groups are those of
//! the config the control loop last published ([`Inspect::update_names`]).
//!
//! # Limitations
//! One capture and one trace at a time. Each holds one of the endpoint's answering threads
//! while it runs (the endpoint has four: `/metrics` and `/status` keep two at least).

pub mod capture;
pub mod cli;
pub mod pcapng;
pub mod query;
pub mod trace;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use config::ValidatedConfig;
use pipelines::{Outcome, Reason};

use crate::http::server::{Reply, Stream};
use crate::runtime::clock::Clock;
use crate::runtime::tap::{Capture, OutcomeMatch, Selector, Taps, Trace};
use query::Query;
use trace::Names;

/// The default snap length: whole frames (`tcpdump`'s historical default).
pub const DEFAULT_SNAPLEN: u32 = 65_535;
/// The largest snap length asked for (`tcpdump`'s largest; copies stop at
/// [`crate::runtime::tap::LARGEST_FRAME`] anyway).
pub const MAX_SNAPLEN: u32 = 262_144;
/// Packets a trace shows when the request does not say.
pub const DEFAULT_TRACE_COUNT: u32 = 10;
/// The most packets one trace may ask for: records are held until read, a kilobyte each.
pub const MAX_TRACE_COUNT: u32 = 10_000;
/// The longest duration a request may ask for.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The ports of the running appliance, by index: fixed at start.
#[derive(Clone, Debug)]
pub struct Ports {
    pub ingress: Vec<String>,
    /// Tool ports: name, and what its copies become (`tool port of group ids`, `VXLAN tunnel to
    /// 10.0.9.21`).
    pub tools: Vec<(String, String)>,
}

impl Ports {
    pub fn of(config: &ValidatedConfig) -> Ports {
        Ports {
            ingress: config.ingress.iter().map(|i| i.name.clone()).collect(),
            tools: config
                .tool_ports
                .iter()
                .map(|p| {
                    let group = config
                        .tool_groups
                        .get(p.group.index())
                        .map_or("?", |g| g.name.as_str());
                    let role = match p.tunnel() {
                        Some(t) => format!(
                            "tool port of group {group}: {} to {} (the encapsulated frames)",
                            t.encapsulation, t.remote
                        ),
                        None => format!("tool port of group {group}"),
                    };
                    (p.name.clone(), role)
                })
                .collect(),
        }
    }
}

/// What the endpoint needs to start captures and traces.
pub struct Inspect {
    taps: Arc<Taps>,
    clock: Clock,
    /// `[broker] name`.
    broker: String,
    workers: usize,
    ports: Ports,
    names: ArcSwap<Names>,
}

impl std::fmt::Debug for Inspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspect")
            .field("broker", &self.broker)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// How a capture or trace answers a bad request.
fn bad_request(reason: impl std::fmt::Display) -> Reply {
    Reply::text(400, format!("{reason}\n"))
}

impl Inspect {
    /// For the appliance whose workers share `taps` (`workers` of them, on `clock`), running
    /// `config` (generation `generation`).
    pub fn new(
        taps: Arc<Taps>,
        clock: Clock,
        workers: usize,
        config: &ValidatedConfig,
        generation: u64,
    ) -> Inspect {
        Inspect {
            taps,
            clock,
            broker: config.broker.name.clone(),
            workers,
            ports: Ports::of(config),
            names: ArcSwap::from_pointee(Names::of(config, generation)),
        }
    }

    /// Takes the names of `config` (generation `generation`) for the traces, if they are not
    /// those already.
    pub fn update_names(&self, config: &ValidatedConfig, generation: u64) {
        if self.names.load().generation != generation {
            self.names.store(Arc::new(Names::of(config, generation)));
        }
    }

    /// Nanoseconds to add to a worker's clock to get the time since the Unix epoch (read now:
    /// the TSC and the wall clock do not drift apart within a capture that matters).
    fn epoch_offset_ns(&self) -> i128 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        wall - i128::from(self.clock.now_ns())
    }

    fn ingress_index(&self, name: &str) -> Result<u16, Reply> {
        self.ports
            .ingress
            .iter()
            .position(|n| n == name)
            .map(|i| i as u16)
            .ok_or_else(|| {
                bad_request(format!(
                    "no ingress port {name:?}; the ingress ports are: {}",
                    self.ports.ingress.join(", ")
                ))
            })
    }

    fn tool_port_index(&self, name: &str) -> Result<u16, Reply> {
        self.ports
            .tools
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| i as u16)
            .ok_or_else(|| {
                let names: Vec<&str> = self.ports.tools.iter().map(|(n, _)| n.as_str()).collect();
                bad_request(format!(
                    "no tool port {name:?}; the tool ports are: {}",
                    names.join(", ")
                ))
            })
    }

    /// `GET /capture?…`: the stream, or the refusal.
    pub fn capture(&self, query: Option<&str>) -> Result<Stream, Reply> {
        let mut q = Query::parse(
            query,
            &["port", "ingress", "outcome", "count", "snaplen", "duration"],
        )
        .map_err(bad_request)?;
        let selectors = [q.take("port"), q.take("ingress"), q.take("outcome")];
        let (selector, what, interfaces) = match selectors {
            [Some(port), None, None] => {
                let index = self.tool_port_index(&port)?;
                let (name, role) = &self.ports.tools[usize::from(index)];
                (
                    Selector::ToolPort(index),
                    format!("what tool port {name} sends"),
                    vec![pcapng::Interface {
                        name: name.clone(),
                        description: role.clone(),
                    }],
                )
            }
            [None, Some(ingress), None] => {
                let index = self.ingress_index(&ingress)?;
                (
                    Selector::Ingress(index),
                    format!("what ingress port {ingress} receives"),
                    vec![self.ingress_interface(usize::from(index))],
                )
            }
            [None, None, Some(outcome)] => {
                let wanted = parse_outcome(&outcome).map_err(bad_request)?;
                (
                    Selector::Outcome(wanted),
                    format!("packets whose outcome is {outcome}, as received"),
                    (0..self.ports.ingress.len())
                        .map(|i| self.ingress_interface(i))
                        .collect(),
                )
            }
            _ => {
                return Err(bad_request(
                    "say what to capture: one of port=NAME (a tool port), ingress=NAME (an \
                     ingress port) or outcome=OUTCOME[:REASON]",
                ));
            }
        };
        let count = q.number("count", 1, u64::MAX).map_err(bad_request)?;
        let snaplen = q
            .number("snaplen", 1, u64::from(MAX_SNAPLEN))
            .map_err(bad_request)?
            .map_or(DEFAULT_SNAPLEN, |s| s as u32);
        let duration = q.duration("duration", MAX_DURATION).map_err(bad_request)?;
        let port_count = match selector {
            Selector::ToolPort(_) => self.ports.tools.len(),
            Selector::Ingress(_) | Selector::Outcome(_) => self.ports.ingress.len(),
        };
        let (capture, reader) = Capture::new(selector, snaplen, self.workers, port_count);
        if self.taps.start_capture(&capture).is_err() {
            return Err(Reply::text(
                409,
                "a capture is running already (one at a time): stop it first\n",
            ));
        }
        let stream = capture::CaptureStream::new(capture::Setup {
            taps: self.taps.clone(),
            capture,
            reader,
            application: format!("broker {}", env!("CARGO_PKG_VERSION")),
            comment: format!("broker {}: {what}", self.broker),
            interfaces,
            snaplen,
            count,
            duration,
            epoch_offset_ns: self.epoch_offset_ns(),
        });
        match stream {
            Ok(stream) => Ok(Stream {
                content_type: "application/vnd.tcpdump.pcap",
                body: Box::new(stream),
            }),
            Err(e) => Err(Reply::text(500, format!("{e}\n"))),
        }
    }

    fn ingress_interface(&self, index: usize) -> pcapng::Interface {
        pcapng::Interface {
            name: self.ports.ingress[index].clone(),
            description: "ingress port (frames as received)".to_owned(),
        }
    }

    /// `GET /trace?…`: the stream of records, or the refusal.
    pub fn trace(&self, query: Option<&str>) -> Result<Stream, Reply> {
        let mut q = Query::parse(query, &["count", "ingress", "duration"]).map_err(bad_request)?;
        let count = q
            .number("count", 1, u64::from(MAX_TRACE_COUNT))
            .map_err(bad_request)?
            .map_or(DEFAULT_TRACE_COUNT, |c| c as u32);
        let ingress = q
            .take("ingress")
            .map(|name| self.ingress_index(&name))
            .transpose()?;
        let duration = q.duration("duration", MAX_DURATION).map_err(bad_request)?;
        let (trace, records) = Trace::new(count, ingress);
        if self.taps.start_trace(&trace).is_err() {
            return Err(Reply::text(
                409,
                "a trace is running already (one at a time): stop it first\n",
            ));
        }
        Ok(Stream {
            content_type: "application/x-ndjson",
            body: Box::new(trace::TraceStream::new(trace::Setup {
                taps: self.taps.clone(),
                trace,
                records,
                names: self.names.load_full(),
                ingress: self.ports.ingress.clone(),
                tools: self.ports.tools.iter().map(|(n, _)| n.clone()).collect(),
                count,
                duration,
                epoch_offset_ns: self.epoch_offset_ns(),
            })),
        })
    }
}

/// `filtered`, `malformed`, `malformed:vxlan_no_vni`, `malformed(vxlan_no_vni)`.
pub fn parse_outcome(text: &str) -> Result<OutcomeMatch, String> {
    let (name, reason) = match text.split_once([':', '(']) {
        Some((name, reason)) => (name, Some(reason.trim_end_matches(')'))),
        None => (text, None),
    };
    let mut labels: Vec<&str> = Outcome::all().map(Outcome::label).collect();
    labels.dedup();
    if name == "malformed" {
        return match reason {
            None => Ok(OutcomeMatch::AnyMalformed),
            Some(reason) => Reason::ALL
                .iter()
                .find(|r| r.label() == reason)
                .map(|r| OutcomeMatch::Exactly(Outcome::Malformed(*r)))
                .ok_or_else(|| {
                    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.label()).collect();
                    format!(
                        "no malformed reason {reason:?}; the reasons are: {}",
                        reasons.join(", ")
                    )
                }),
        };
    }
    let outcome = Outcome::all()
        .find(|o| o.label() == name && !matches!(o, Outcome::Malformed(_)))
        .ok_or_else(|| {
            format!(
                "no outcome {name:?}; the outcomes are: {}",
                labels.join(", ")
            )
        })?;
    match reason {
        None => Ok(OutcomeMatch::Exactly(outcome)),
        Some(_) => Err(format!(
            "only malformed has reasons ({name}:{} names none)",
            reason.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_by_label_with_a_reason_for_malformed() {
        assert_eq!(
            parse_outcome("filtered"),
            Ok(OutcomeMatch::Exactly(Outcome::Filtered))
        );
        assert_eq!(parse_outcome("malformed"), Ok(OutcomeMatch::AnyMalformed));
        assert_eq!(
            parse_outcome("malformed:vxlan_no_vni"),
            Ok(OutcomeMatch::Exactly(Outcome::Malformed(
                Reason::VxlanNoVni
            )))
        );
        assert_eq!(
            parse_outcome("malformed(vxlan_no_vni)"),
            Ok(OutcomeMatch::Exactly(Outcome::Malformed(
                Reason::VxlanNoVni
            )))
        );
        let err = parse_outcome("filterd").unwrap_err();
        assert!(
            err.contains("no outcome \"filterd\"") && err.contains("filtered"),
            "{err}"
        );
        assert!(
            parse_outcome("malformed:nope")
                .unwrap_err()
                .contains("vxlan_no_vni")
        );
        assert!(
            parse_outcome("filtered:x")
                .unwrap_err()
                .contains("only malformed")
        );
    }
}
