//! The endpoint and the health listener under a real broker: `/healthz` on both, nothing else
//! on the health listener (a `POST /reload` there changes nothing), and an endpoint that a
//! thousand half-open connections cannot take threads from or silence.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::metrics::lab_config;
use crate::running::{Running, free_address, http, wait_for_status};
use crate::support::*;

/// The lab on an endless replay, with the endpoint on `metrics` and the health listener on
/// `health`.
fn start(name: &str, metrics: SocketAddr, health: SocketAddr) -> (Scratch, Running) {
    let s = Scratch::new(name);
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let text = lab_config(&capture, metrics).replace(
        &format!("metrics = \"{metrics}\""),
        &format!("metrics = \"{metrics}\"\nhealth = \"{health}\""),
    );
    let config = s.write("lab.toml", &text);
    let running = Running::start(&config, &s.dir, &[]);
    (s, running)
}

/// Makes sure this process may open `needed` more files: the soft limit is raised to the hard
/// one (with util-linux' `prlimit`) when it is lower than that (1024 is a common default).
fn allow_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/self/limits");
    let mut numbers = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    let (soft, hard) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    if soft >= open + needed + 64 {
        return;
    }
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string()])
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    assert!(
        raised.is_ok_and(|s| s.success()) && hard >= open + needed + 64,
        "this test opens {needed} connections; the open-file limit is {soft} (hard {hard})"
    );
}

/// Threads of process `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .count()
}

#[test]
fn the_health_listener_answers_healthz_and_nothing_else() {
    let (metrics, health) = (free_address(), free_address());
    let (_s, mut running) = start("endpoint-health", metrics, health);
    running.wait_for_log("health checks on", Duration::from_secs(30));
    wait_for_status(metrics, Duration::from_secs(30), "traffic", |s| {
        s["received"].as_u64().unwrap_or(0) > 0
    });
    // The health look runs every tick: 200 once the workers have been seen polling.
    let mut answer = (0, String::new());
    for _ in 0..100 {
        answer = http("GET", health, "/healthz");
        if answer.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer.0, 200, "{answer:?}");
    assert!(
        answer
            .1
            .starts_with("ok: 1 worker polling, 2 tool groups with a live port"),
        "{answer:?}"
    );
    assert_eq!(http("GET", metrics, "/healthz"), answer, "the endpoint too");

    // HEAD: the status line and headers, no body.
    let mut stream = TcpStream::connect(health).unwrap();
    stream.write_all(b"HEAD /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text:?}");

    // Nothing else: the load balancer's subnets must never reach /reload, /status, /metrics.
    let before = wait_for_status(metrics, Duration::from_secs(5), "status", |_| true);
    for (method, path) in [("POST", "/reload"), ("GET", "/status"), ("GET", "/metrics")] {
        let (code, _) = http(method, health, path);
        assert_eq!(code, 404, "{method} {path} on the health listener");
    }
    let after = wait_for_status(metrics, Duration::from_secs(5), "status", |_| true);
    assert_eq!(
        (
            before["config"]["generation"].clone(),
            before["config"]["reloads"].clone()
        ),
        (
            after["config"]["generation"].clone(),
            after["config"]["reloads"].clone()
        ),
        "a POST /reload on the health listener reloads nothing"
    );

    let ended = running.stop(Duration::from_secs(10));
    ended.assert_exact();
}

#[test]
fn half_open_connections_take_no_threads_and_do_not_silence_metrics() {
    let (metrics, health) = (free_address(), free_address());
    let (_s, mut running) = start("endpoint-bounded", metrics, health);
    running.wait_for_log("health checks on", Duration::from_secs(30));
    wait_for_status(metrics, Duration::from_secs(30), "traffic", |s| {
        s["received"].as_u64().unwrap_or(0) > 0
    });
    let before = threads(running.pid());
    allow_open_files(1000);
    // A thousand connections that start a request and never finish it.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut stream = TcpStream::connect(metrics).expect("connect");
            let _ = stream.write_all(b"GET /metr");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let during = threads(running.pid());
    assert_eq!(during, before, "no thread per connection");
    let (code, body) = http("GET", metrics, "/metrics");
    assert_eq!(code, 200, "/metrics answers while they are open");
    assert!(body.contains("broker_packets_total"), "{body}");
    drop(idle);
    // The refusals are counted (made room for newer connections, or timed out).
    let mut refused = 0.0;
    for _ in 0..50 {
        let (_, body) = http("GET", metrics, "/metrics");
        refused = body
            .lines()
            .filter(|l| {
                l.starts_with("broker_http_refused_connections_total{listener=\"endpoint\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if refused >= 744.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        refused >= 744.0,
        "at most 256 are read at once: the others were refused and counted ({refused})"
    );
    running.stop(Duration::from_secs(10)).assert_exact();
}
