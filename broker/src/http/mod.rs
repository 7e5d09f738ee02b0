//! The control plane's HTTP listeners: the endpoint and the health listener, each a table of
//! routes on the bounded server of [`server`].
//!
//! The endpoint (`[broker] metrics`):
//!
//! | Method      | Path       | Answer                                                      |
//! |-------------|------------|-------------------------------------------------------------|
//! | GET         | `/metrics` | Prometheus text exposition of every metric                  |
//! | GET         | `/status`  | the live [`Status`] as JSON                                 |
//! | POST        | `/reload`  | re-read the config file: the [`ReloadOutcome`] as JSON      |
//! | GET, HEAD   | `/healthz` | `200` or `503` with a one-line reason ([`Health`])          |
//! | GET         | `/capture` | a live capture, streamed as pcapng ([`crate::inspect`])     |
//! | GET         | `/trace`   | a packet trace, streamed as one JSON object per packet      |
//!
//! The health listener (`[broker] health`) answers `GET` and `HEAD /healthz` and nothing else:
//! it is what a load balancer's health check reaches, and its subnets must never reach
//! `/reload`, `/status` or `/metrics`.
//!
//! # Design
//! Both answer from what the control loop last published: the Prometheus recorder's rendering,
//! an `ArcSwap<Status>` and an `ArcSwap<Health>`. Nothing here touches a port, a queue or a
//! packet; the server bounds what clients can cost (threads, time, bytes: see [`server`]).
//!
//! The listeners are bound before DPDK starts (so a busy address is refused before any device
//! is touched), but their threads are started after EAL initialisation, from the main lcore:
//! threads inherit the CPU affinity of the thread that spawns them, and EAL pins the main lcore
//! to the control core, so the endpoint never runs on a worker's core. [`Endpoint::thread_cpus`]
//! reports the CPUs the endpoint threads may use, read from the kernel, for `/status` to show.
//!
//! `POST /reload` hands the request to the control loop (which alone changes the running
//! appliance) and waits for its outcome: `200` applied, `422` invalid config, `409` a change that
//! needs a restart (both refused, the running config kept), `503` when the control loop does not
//! answer (stopping). The body is the outcome as JSON, which `broker reload` prints.
//!
//! `GET /capture` and `GET /trace` stream while they last (see [`server`]'s streams) and are
//! started and checked by [`crate::inspect`]: `400` with the reason for a bad parameter, `409`
//! while another capture (or trace) runs.
//!
//! Adding a route is one entry in [`ROUTES`] and one arm in [`answer`] (or, for a stream, in
//! [`Sources`]' service).
//!
//! # Limitations
//! Plain HTTP, no authentication: the default address is loopback; expose the endpoint further
//! only on a management network (anyone who reaches it can trigger a reload, though only of the
//! file the broker was started with, and capture the mirrored traffic). `broker check` warns
//! when it binds elsewhere without `metrics_allow`.

pub mod server;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::info;

use crate::inspect::Inspect;
use crate::report::{Health, ReloadOutcome, Status};
use crate::requests::ReloadClient;
pub use server::Refusals;
use server::{Answer, Limits, Method, Reply, Request, Server, Service};

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Status,
    Reload,
    Health,
    Capture,
    Trace,
}

/// Method, path, route: the endpoint's table.
const ROUTES: &[(Method, &str, Route)] = &[
    (Method::Get, "/metrics", Route::Metrics),
    (Method::Get, "/status", Route::Status),
    (Method::Post, "/reload", Route::Reload),
    (Method::Get, "/healthz", Route::Health),
    (Method::Head, "/healthz", Route::Health),
    (Method::Get, "/capture", Route::Capture),
    (Method::Get, "/trace", Route::Trace),
];

/// The health listener's table: `/healthz` only.
const HEALTH_ROUTES: &[(Method, &str, Route)] = &[
    (Method::Get, "/healthz", Route::Health),
    (Method::Head, "/healthz", Route::Health),
];

/// What the endpoint serves from: the latest publication of the control loop.
#[derive(Clone)]
pub struct Sources {
    pub metrics: PrometheusHandle,
    pub status: Arc<ArcSwap<Status>>,
    pub health: Arc<ArcSwap<Health>>,
    /// Where `POST /reload` goes; `None`: reload only by SIGHUP.
    pub reload: Option<ReloadClient>,
    /// Live captures and packet traces; `None`: not available.
    pub inspect: Option<Arc<Inspect>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The route of `method` on `path` in `table`, or the refusal to send.
pub fn route(table: &[(Method, &str, Route)], method: &Method, path: &str) -> Result<Route, Reply> {
    let mut allowed = Vec::new();
    for (m, p, route) in table {
        if *p == path {
            if m == method {
                return Ok(*route);
            }
            allowed.push(m.as_str());
        }
    }
    if allowed.is_empty() {
        let known: Vec<String> = table
            .iter()
            .map(|(m, p, _)| format!("{} {p}", m.as_str()))
            .collect();
        Err(Reply::text(
            404,
            format!("not found: {}\n", known.join(", ")),
        ))
    } else {
        let allow = allowed.join(", ");
        Err(Reply {
            allow: Some(allow.clone()),
            ..Reply::text(405, format!("{path} accepts {allow}\n"))
        })
    }
}

/// `/healthz`: the status and the reason line.
fn health_reply(health: &Health) -> Reply {
    Reply::text(health.http_code(), format!("{}\n", health.reason))
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
        Route::Health => health_reply(&sources.health.load()),
        Route::Capture | Route::Trace => {
            Reply::text(500, "a stream is not answered here: see Sources::answer\n")
        }
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

impl Service for Sources {
    fn answer(&self, request: &Request) -> Answer {
        let query = request.query.as_deref();
        let started = match (route(ROUTES, &request.method, &request.path), &self.inspect) {
            (Err(refusal), _) => return refusal.into(),
            (Ok(Route::Capture | Route::Trace), None) => {
                return Reply::text(503, "captures and traces are not available\n").into();
            }
            (Ok(Route::Capture), Some(inspect)) => inspect.capture(query),
            (Ok(Route::Trace), Some(inspect)) => inspect.trace(query),
            (Ok(route), _) => return answer(self, route).into(),
        };
        match started {
            Ok(stream) => Answer::Stream(stream),
            Err(refusal) => refusal.into(),
        }
    }
}

/// The health listener's service: `/healthz` from the control loop's latest look.
struct HealthOnly(Arc<ArcSwap<Health>>);

impl Service for HealthOnly {
    fn answer(&self, request: &Request) -> Answer {
        match route(HEALTH_ROUTES, &request.method, &request.path) {
            Ok(_) => health_reply(&self.0.load()),
            Err(refusal) => refusal,
        }
        .into()
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

/// Binds the health listener's address; no thread is started yet.
pub fn bind_health(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| {
        anyhow::anyhow!("cannot listen on {address} for health checks: {e} ([broker] health)")
    })
}

/// A running listener.
#[derive(Debug)]
pub struct Endpoint {
    server: Server,
    cpus: Arc<OnceLock<Option<String>>>,
}

impl Endpoint {
    /// Serves `listener` from `sources` to the peers `allow` holds (all when `None`; call it from
    /// the control thread: see the module docs on CPU affinity).
    pub fn serve(
        listener: TcpListener,
        sources: Sources,
        allow: Option<Vec<IpNet>>,
    ) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::start(listener, Arc::new(sources), allow, "broker-http")?;
        info!(
            "metrics and status on http://{0}/metrics and /status",
            endpoint.server.address()
        );
        Ok(endpoint)
    }

    /// Serves `GET`/`HEAD /healthz` on `listener`, and nothing else.
    pub fn serve_health(
        listener: TcpListener,
        health: Arc<ArcSwap<Health>>,
    ) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::start(
            listener,
            Arc::new(HealthOnly(health)),
            None,
            "broker-health",
        )?;
        info!(
            "health checks on http://{}/healthz",
            endpoint.server.address()
        );
        Ok(endpoint)
    }

    fn start(
        listener: TcpListener,
        service: Arc<dyn Service>,
        allow: Option<Vec<IpNet>>,
        name: &str,
    ) -> anyhow::Result<Endpoint> {
        let server = Server::serve(listener, service, Limits::ENDPOINT, allow, name)?;
        // The threads were spawned from this one and inherit its CPUs: read them here once.
        let cpus = Arc::new(OnceLock::new());
        let _ = cpus.set(allowed_cpus());
        Ok(Endpoint { server, cpus })
    }

    /// What the listener refused so far.
    pub fn refusals(&self) -> Arc<Refusals> {
        self.server.refusals().clone()
    }

    /// The CPUs the endpoint's threads may run on.
    pub fn thread_cpus(&self) -> Option<String> {
        self.cpus.get().cloned().flatten()
    }

    /// Stops answering and waits for the endpoint's threads.
    pub fn stop(self) {
        self.server.stop();
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
            health: Arc::new(ArcSwap::from_pointee(Health {
                ok: true,
                reason: "ok: 1 worker polling".into(),
            })),
            reload: None,
            inspect: None,
        }
    }

    /// The reply of a service that answers at once.
    fn reply(answer: Answer) -> Reply {
        match answer {
            Answer::Reply(reply) => reply,
            Answer::Stream(_) => panic!("a stream, not a reply"),
        }
    }

    fn request(method: Method, target: &str) -> Request {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        Request {
            method,
            path,
            query,
            body: Vec::new(),
        }
    }

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(route(ROUTES, &Method::Get, "/metrics"), Ok(Route::Metrics));
        assert_eq!(route(ROUTES, &Method::Get, "/status"), Ok(Route::Status));
        assert_eq!(route(ROUTES, &Method::Post, "/reload"), Ok(Route::Reload));
        assert_eq!(route(ROUTES, &Method::Head, "/healthz"), Ok(Route::Health));
        assert_eq!(route(ROUTES, &Method::Get, "/nope").unwrap_err().code, 404);
        let refused = route(ROUTES, &Method::Get, "/reload").unwrap_err();
        assert_eq!(
            (refused.code, refused.allow.as_deref()),
            (405, Some("POST"))
        );
        assert_eq!(
            route(ROUTES, &Method::Post, "/metrics").unwrap_err().code,
            405
        );
        // A query does not change the route.
        let s = sources();
        assert_eq!(
            reply(s.answer(&request(Method::Get, "/metrics?x=1"))).code,
            200
        );
        assert_eq!(
            reply(s.answer(&request(Method::Get, "/capture?port=x"))).code,
            503,
            "no captures without a data plane"
        );
        assert_eq!(route(ROUTES, &Method::Get, "/trace"), Ok(Route::Trace));
        assert_eq!(
            route(ROUTES, &Method::Post, "/capture").unwrap_err().code,
            405
        );
    }

    #[test]
    fn the_health_listener_answers_healthz_and_nothing_else() {
        let health = Arc::new(ArcSwap::from_pointee(Health::starting()));
        let service = HealthOnly(health.clone());
        let starting = reply(service.answer(&request(Method::Get, "/healthz")));
        assert_eq!(
            (starting.code, starting.body.as_slice()),
            (503, &b"starting\n"[..])
        );
        health.store(Arc::new(Health {
            ok: true,
            reason: "ok".into(),
        }));
        assert_eq!(
            reply(service.answer(&request(Method::Head, "/healthz"))).code,
            200
        );
        for (method, path) in [
            (Method::Post, "/reload"),
            (Method::Get, "/metrics"),
            (Method::Get, "/status"),
            (Method::Get, "/capture"),
            (Method::Get, "/trace"),
        ] {
            assert_eq!(
                reply(service.answer(&request(method, path))).code,
                404,
                "{path} is not served here"
            );
        }
        assert_eq!(
            reply(service.answer(&request(Method::Post, "/healthz"))).code,
            405
        );
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
        let health = answer(&s, Route::Health);
        assert_eq!(
            (health.code, health.body.as_slice()),
            (200, &b"ok: 1 worker polling\n"[..])
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
        let endpoint = Endpoint::serve(listener, sources(), None).unwrap();
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
            "the endpoint threads inherit this thread's CPUs"
        );
        endpoint.stop();
    }

    #[test]
    fn a_busy_address_is_refused_with_the_setting_named() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = bind(first.local_addr().unwrap()).unwrap_err().to_string();
        assert!(err.contains("[broker] metrics"), "{err}");
        let err = bind_health(first.local_addr().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[broker] health"), "{err}");
    }
}
