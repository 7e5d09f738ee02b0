//! The control plane's HTTP endpoint: one listener, a table of routes.
//!
//! | Method | Path       | Answer                                                           |
//! |--------|------------|------------------------------------------------------------------|
//! | GET    | `/metrics` | Prometheus text exposition of every metric                       |
//! | GET    | `/status`  | the live [`Status`] as JSON                                      |
//! | POST   | `/reload`  | re-read the config file: the [`ReloadOutcome`] as JSON           |
//!
//! # Design
//! `tiny_http` (synchronous, small) accepts connections on its own thread and hands parsed
//! requests to the endpoint thread, which answers from what the control loop last published:
//! the Prometheus recorder's rendering and an `ArcSwap<Status>`. Nothing here touches a port, a
//! queue or a packet; the worst a slow client can do is delay the next scrape.
//!
//! The listener is bound before DPDK starts (so a busy address is refused before any device is
//! touched), but its threads are started after EAL initialisation, from the main lcore: threads
//! inherit the CPU affinity of the thread that spawns them, and EAL pins the main lcore to the
//! control core, so the endpoint never runs on a worker's core. [`Endpoint::thread_cpus`] reports
//! the CPUs the endpoint thread may use, read from the kernel, for `/status` to show.
//!
//! `POST /reload` hands the request to the control loop (which alone changes the running
//! appliance) and waits for its outcome: `200` applied, `422` invalid config, `409` a change that
//! needs a restart (both refused, the running config kept), `503` when the control loop does not
//! answer (stopping). The body is the outcome as JSON, which `broker reload` prints.
//!
//! Adding a route is one entry in [`ROUTES`] and one arm in [`answer`].
//!
//! # Limitations
//! Plain HTTP, no authentication: the default address is loopback; expose it further only on a
//! management network (anyone who reaches it can trigger a reload, though only of the file the
//! broker was started with). `tiny_http` gives each open connection a thread; a client that opens
//! thousands of connections can make the control core busy (never the workers).

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use tiny_http::{Header, Method, Response, Server};
use tracing::{info, warn};

use crate::report::{ReloadOutcome, Status};
use crate::requests::ReloadClient;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Status,
    Reload,
}

/// Method, path, route.
const ROUTES: &[(Method, &str, Route)] = &[
    (Method::Get, "/metrics", Route::Metrics),
    (Method::Get, "/status", Route::Status),
    (Method::Post, "/reload", Route::Reload),
];

/// What the endpoint serves from: the latest publication of the control loop.
#[derive(Clone)]
pub struct Sources {
    pub metrics: PrometheusHandle,
    pub status: Arc<ArcSwap<Status>>,
    /// Where `POST /reload` goes; `None`: reload only by SIGHUP.
    pub reload: Option<ReloadClient>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// An answer, before it goes on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl Reply {
    fn text(code: u16, body: impl Into<String>) -> Reply {
        Reply {
            code,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            allow: None,
        }
    }
}

/// The route of `method` on `url`, or the refusal to send.
pub fn route(method: &Method, url: &str) -> Result<Route, Reply> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut allowed = Vec::new();
    for (m, p, route) in ROUTES {
        if *p == path {
            if m == method {
                return Ok(*route);
            }
            allowed.push(m.as_str());
        }
    }
    if allowed.is_empty() {
        Err(Reply::text(
            404,
            "not found: GET /metrics or /status, POST /reload\n",
        ))
    } else {
        let allow = allowed.join(", ");
        Err(Reply {
            allow: Some(allow.clone()),
            ..Reply::text(405, format!("{path} accepts {allow}\n"))
        })
    }
}

/// The answer to a routed request.
pub fn answer(sources: &Sources, route: Route) -> Reply {
    match route {
        Route::Metrics => Reply {
            code: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: sources.metrics.render().into_bytes(),
            allow: None,
        },
        Route::Status => match serde_json::to_vec_pretty(sources.status.load().as_ref()) {
            Ok(body) => Reply {
                code: 200,
                content_type: "application/json",
                body,
                allow: None,
            },
            Err(e) => Reply::text(500, format!("status: {e}\n")),
        },
        Route::Reload => match sources.reload.as_ref().map(ReloadClient::request) {
            None => Reply::text(503, "reload is not available\n"),
            Some(Err(e)) => Reply::text(503, format!("{e}\n")),
            Some(Ok(outcome)) => reload_reply(&outcome),
        },
    }
}

/// The answer to `POST /reload`: the outcome as JSON, under its HTTP status.
fn reload_reply(outcome: &ReloadOutcome) -> Reply {
    match serde_json::to_vec_pretty(outcome) {
        Ok(mut body) => {
            body.push(b'\n');
            Reply {
                code: outcome.http_code(),
                content_type: "application/json",
                body,
                allow: None,
            }
        }
        Err(e) => Reply::text(500, format!("reload outcome: {e}\n")),
    }
}

/// The CPUs the calling thread may run on, as the kernel lists them (`0`, `0-3,8`).
pub fn allowed_cpus() -> Option<String> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|cpus| cpus.trim().to_owned())
}

/// Binds the endpoint's address; no thread is started yet.
pub fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| {
        anyhow::anyhow!("cannot listen on {address} for metrics and status: {e} ([broker] metrics; \"\" turns it off)")
    })
}

/// The running endpoint.
pub struct Endpoint {
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
    address: SocketAddr,
    cpus: Arc<OnceLock<Option<String>>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Serves `listener` from `sources` on a new thread (call it from the control thread: see
    /// the module docs on CPU affinity).
    pub fn serve(listener: TcpListener, sources: Sources) -> anyhow::Result<Endpoint> {
        let address = listener.local_addr()?;
        let server =
            Arc::new(Server::from_listener(listener, None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let cpus = Arc::new(OnceLock::new());
        let thread = {
            let server = server.clone();
            let cpus = cpus.clone();
            std::thread::Builder::new()
                .name("broker-http".into())
                .spawn(move || {
                    let _ = cpus.set(allowed_cpus());
                    for request in server.incoming_requests() {
                        let reply = match route(request.method(), request.url()) {
                            Ok(route) => answer(&sources, route),
                            Err(refusal) => refusal,
                        };
                        let mut response =
                            Response::from_data(reply.body).with_status_code(reply.code);
                        if let Ok(h) = Header::from_bytes("Content-Type", reply.content_type) {
                            response.add_header(h);
                        }
                        if let Some(Ok(h)) = reply.allow.map(|a| Header::from_bytes("Allow", a)) {
                            response.add_header(h);
                        }
                        if let Err(e) = request.respond(response) {
                            warn!("endpoint: answering a request: {e}");
                        }
                    }
                })?
        };
        info!("metrics and status on http://{address}/metrics and /status");
        Ok(Endpoint {
            server,
            thread: Some(thread),
            address,
            cpus,
        })
    }

    /// The CPUs the endpoint thread may run on, once it has started.
    pub fn thread_cpus(&self) -> Option<String> {
        self.cpus.get().cloned().flatten()
    }

    /// Stops answering and waits for the endpoint thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn sources() -> Sources {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("broker_test_total", "a test counter");
            metrics::counter!("broker_test_total", "port" => "p").absolute(42);
        });
        let status = Status {
            broker: "t".into(),
            ..Status::default()
        };
        Sources {
            metrics: handle,
            status: Arc::new(ArcSwap::from_pointee(status)),
            reload: None,
        }
    }

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(route(&Method::Get, "/metrics"), Ok(Route::Metrics));
        assert_eq!(route(&Method::Get, "/metrics?x=1"), Ok(Route::Metrics));
        assert_eq!(route(&Method::Get, "/status"), Ok(Route::Status));
        assert_eq!(route(&Method::Post, "/reload"), Ok(Route::Reload));
        assert_eq!(route(&Method::Get, "/nope").unwrap_err().code, 404);
        let refused = route(&Method::Get, "/reload").unwrap_err();
        assert_eq!(
            (refused.code, refused.allow.as_deref()),
            (405, Some("POST"))
        );
        assert_eq!(route(&Method::Post, "/metrics").unwrap_err().code, 405);
    }

    #[test]
    fn answers_from_the_published_sources() {
        let s = sources();
        let metrics = answer(&s, Route::Metrics);
        let text = String::from_utf8(metrics.body).unwrap();
        assert!(
            text.contains("# HELP broker_test_total a test counter"),
            "{text}"
        );
        assert!(text.contains("broker_test_total{port=\"p\"} 42"), "{text}");
        let status = answer(&s, Route::Status);
        assert_eq!(status.content_type, "application/json");
        let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
        assert_eq!(json["broker"], "t");
        s.status.store(Arc::new(Status {
            broker: "swapped".into(),
            ..Status::default()
        }));
        let json: serde_json::Value =
            serde_json::from_slice(&answer(&s, Route::Status).body).unwrap();
        assert_eq!(json["broker"], "swapped", "answers the latest publication");
        assert_eq!(
            answer(&s, Route::Reload).code,
            503,
            "no reload channel: unavailable"
        );
    }

    #[test]
    fn reload_goes_to_the_control_loop_and_answers_its_outcome() {
        let (client, requests) = crate::requests::channel();
        let s = Sources {
            reload: Some(client),
            ..sources()
        };
        let control = std::thread::spawn(move || {
            let outcomes = [
                ReloadOutcome::Invalid {
                    error: "broker.toml:3:1: nope".into(),
                },
                ReloadOutcome::NeedsRestart {
                    error: "restart".into(),
                    changes: vec!["[dpdk] mbufs".into()],
                },
                ReloadOutcome::Applied {
                    config_generation: 2,
                    plan_generation: 3,
                    counters: crate::report::CounterChange::Kept,
                    warnings: vec![],
                },
            ];
            for outcome in outcomes {
                requests.recv().unwrap().send(outcome).unwrap();
            }
        });
        let invalid = answer(&s, Route::Reload);
        assert_eq!(invalid.code, 422);
        let json: serde_json::Value = serde_json::from_slice(&invalid.body).unwrap();
        assert_eq!(json["outcome"], "invalid");
        assert_eq!(json["error"], "broker.toml:3:1: nope");
        assert_eq!(answer(&s, Route::Reload).code, 409);
        let applied = answer(&s, Route::Reload);
        assert_eq!(applied.code, 200);
        let json: serde_json::Value = serde_json::from_slice(&applied.body).unwrap();
        assert_eq!(
            (json["outcome"].as_str(), json["config_generation"].as_u64()),
            (Some("applied"), Some(2))
        );
        control.join().unwrap();
        // The control loop is gone: the endpoint says so rather than waiting.
        assert_eq!(answer(&s, Route::Reload).code, 503);
    }

    fn get(address: SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_over_tcp_and_stops() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = listener.local_addr().unwrap();
        let endpoint = Endpoint::serve(listener, sources()).unwrap();
        let answer = get(address, "GET /metrics HTTP/1.0\r\n\r\n");
        assert!(
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
            "{answer}"
        );
        assert!(
            answer.contains("broker_test_total{port=\"p\"} 42"),
            "{answer}"
        );
        let answer = get(address, "GET /missing HTTP/1.0\r\n\r\n");
        assert!(answer.contains(" 404 "), "{answer}");
        let (status, _) = crate::client::fetch_status(address).unwrap();
        assert_eq!(status.broker, "t");
        assert_eq!(
            endpoint.thread_cpus(),
            allowed_cpus(),
            "the endpoint thread inherits this thread's CPUs"
        );
        endpoint.stop();
    }

    #[test]
    fn a_busy_address_is_refused_with_the_setting_named() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = bind(first.local_addr().unwrap()).unwrap_err().to_string();
        assert!(err.contains("[broker] metrics"), "{err}");
    }
}
