//! The broker as systemd runs it, without systemd (this machine does not run it as PID 1): the
//! notification protocol against a `NOTIFY_SOCKET` the test binds, the reload `ExecReload=`
//! runs, and the unit's system-call filter applied to the real binary.

use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::running::*;
use crate::support::*;

/// A config replaying `capture` forever into one `net_null` analyzer, endpoint at `metrics`
/// (`""`: off).
fn endless(capture: &Path, metrics: &str) -> String {
    endless_config("e2e-systemd", capture, metrics, &[("ids", &["ids-1"])])
}

/// Binds a notify socket in `s` and starts the broker on `config` with `NOTIFY_SOCKET` naming
/// it, and `env` besides.
fn start_notified(s: &Scratch, config: &Path, env: &[(&str, &str)]) -> (Listener, Running) {
    let socket = s.path("notify.sock");
    let notify = Listener::bind(&socket);
    let mut env = env.to_vec();
    env.push(("NOTIFY_SOCKET", socket.to_str().unwrap()));
    (notify, Running::start_with(config, &s.dir, &[], &[], &env))
}

/// The notifications sent to a socket the test binds, each with when it arrived.
struct Listener {
    socket: UnixDatagram,
    received: Vec<(Instant, String)>,
}

impl Listener {
    fn bind(path: &Path) -> Listener {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Listener {
            socket,
            received: Vec::new(),
        }
    }

    /// Reads what arrives for `duration`.
    fn collect(&mut self, duration: Duration) {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < duration {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.received.push((Instant::now(), text));
            }
        }
    }

    /// Reads until a notification satisfies `done`; panics with what came after `deadline`.
    fn until(&mut self, deadline: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.received.push((Instant::now(), text.clone()));
                if done(&text) {
                    return text;
                }
            }
        }
        panic!(
            "no such notification within {deadline:?}; received: {:?}",
            self.texts()
        );
    }

    fn texts(&self) -> Vec<&str> {
        self.received.iter().map(|(_, t)| t.as_str()).collect()
    }

    fn count(&self, text: &str) -> usize {
        self.received.iter().filter(|(_, t)| t == text).count()
    }
}

/// The received rate of a `STATUS=received X packets/s, …` line.
fn received_rate(status: &str) -> Option<&str> {
    status
        .strip_prefix("STATUS=received ")?
        .split(" packets/s")
        .next()
}

#[test]
fn ready_after_the_workers_run_then_status_watchdog_reload_and_stopping() {
    let s = Scratch::new("systemd-notify");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let address = free_address();
    let config = s.write("broker.toml", &endless(&capture, &address.to_string()));
    // A 300 ms watchdog: pings every 150 ms.
    let (mut notify, mut broker) = start_notified(&s, &config, &[("WATCHDOG_USEC", "300000")]);

    let ready = notify.until(Duration::from_secs(30), |t| t.starts_with("READY=1"));
    assert_eq!(ready, "READY=1\nSTATUS=running");
    assert_eq!(notify.received.len(), 1, "READY=1 comes first");
    // Written before READY=1 was sent: the ports and workers run, the endpoint serves.
    let log = broker.log();
    assert!(log.contains("worker(s) running"), "{log}");
    assert!(log.contains("metrics and status on"), "{log}");
    assert!(log.contains("watchdog ping every 150ms"), "{log}");

    notify.collect(Duration::from_secs(3));
    // 20 pings expected in 3 s; a loaded machine may delay the loop, never stop it.
    let pings = notify.count("WATCHDOG=1");
    assert!(pings >= 5, "{pings} pings in 3 s: {:?}", notify.texts());
    let statuses: Vec<&str> = notify
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("STATUS=received"))
        .collect();
    assert!(statuses.len() >= 2, "{:?}", notify.texts());
    for status in &statuses {
        assert!(
            status.contains(" packets/s, delivered ")
                && status.ends_with(" packets/s; config generation 1"),
            "{status}"
        );
    }
    assert!(
        statuses.iter().any(|s| received_rate(s) != Some("0")),
        "the capture flows: some STATUS has a received rate above 0: {statuses:?}"
    );

    // A reload (SIGHUP) is announced and ends ready again.
    let before = notify.received.len();
    broker.signal("HUP");
    notify.until(Duration::from_secs(10), |t| t == "READY=1\nSTATUS=reloaded");
    let around: Vec<&str> = notify.texts()[before..]
        .iter()
        .copied()
        .filter(|t| *t != "WATCHDOG=1" && !t.starts_with("STATUS=received"))
        .collect();
    assert_eq!(
        around,
        [
            "RELOADING=1\nSTATUS=reloading the config",
            "READY=1\nSTATUS=reloaded"
        ]
    );

    broker.signal("TERM");
    notify.until(Duration::from_secs(10), |t| {
        t == "STOPPING=1\nSTATUS=stopping (SIGTERM): draining"
    });
    let ended = broker
        .wait_exit(Duration::from_secs(15))
        .expect("the broker stops after SIGTERM");
    ended.assert_exact();
    assert!(
        ended
            .stderr
            .contains("SIGTERM: stopping (draining the workers, then the summary)"),
        "{}",
        ended.stderr
    );
}

#[test]
fn no_watchdog_pings_for_another_process_and_stopping_when_idle() {
    let s = Scratch::new("systemd-idle");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let config = endless(&capture, "")
        .replace(",infinite_rx=1", "")
        .replace("metrics = \"\"", "metrics = \"\"\nstop_when_idle = \"1s\"");
    let config = s.write("broker.toml", &config);
    // WATCHDOG_PID names another process: the watchdog is not this broker's to ping.
    let (mut notify, mut broker) = start_notified(
        &s,
        &config,
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    notify.until(Duration::from_secs(30), |t| t.starts_with("READY=1"));
    notify.until(Duration::from_secs(30), |t| {
        t == "STOPPING=1\nSTATUS=stopping (ingress idle): draining"
    });
    let ended = broker
        .wait_exit(Duration::from_secs(15))
        .expect("the broker stops when idle");
    ended.assert_exact();
    assert_eq!(notify.count("WATCHDOG=1"), 0, "{:?}", notify.texts());
    assert!(
        notify
            .texts()
            .iter()
            .any(|t| t.starts_with("STATUS=received")),
        "STATUS= every second until the stop: {:?}",
        notify.texts()
    );
}

#[test]
fn exec_reload_fails_when_the_running_broker_refuses_the_file() {
    let s = Scratch::new("systemd-reload");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let address = free_address();
    let text = endless(&capture, &address.to_string());
    let config = s.write("broker.toml", &text);
    let mut broker = Running::start(&config, &s.dir, &[]);
    broker.wait_for_log("metrics and status on", Duration::from_secs(30));

    // What ExecReload= runs, on the file as it is: applied.
    let reload = broker.cli(&["reload", "--config", config.to_str().unwrap()]);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );

    // The file now invalid (a session names no tool group): `broker reload --config` still
    // finds the endpoint (only [broker] metrics is read), the broker refuses and counts it,
    // and the command fails, so `systemctl reload` would.
    std::fs::write(
        &config,
        text.replace("tools = [\"ids\"]", "tools = [\"idz\"]"),
    )
    .unwrap();
    let refused = broker.cli(&["reload", "--config", config.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(out.contains("unknown tool group \"idz\""), "{out}");
    let status = broker.status(address);
    assert_eq!(status["config"]["reloads"]["invalid"], 1, "{status:#}");
    assert_eq!(status["config"]["reloads"]["applied"], 1, "{status:#}");
    broker.stop(Duration::from_secs(15)).assert_exact();
}

/// `scripts/systemd/syscall-filter.py` on the unit, running `broker run` on `config`.
fn under_the_unit_filter(config: &Path, cwd: &Path, extra: &[&str]) -> std::process::Output {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let root = repo_root();
    let output = Command::new(python)
        .arg(root.join("scripts/systemd/syscall-filter.py"))
        .arg(root.join("scripts/systemd/broker.service"))
        .args(extra)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_broker"))
        .args(["run", "--config"])
        .arg(config)
        .current_dir(cwd)
        .env("NOTIFY_SOCKET", cwd.join("notify.sock"))
        .output()
        .expect("run scripts/systemd/syscall-filter.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("needs python3-seccomp"),
        "apt-get install python3-seccomp (scripts/install-deps.sh)"
    );
    output
}

#[test]
fn the_units_system_call_filter_lets_the_broker_run() {
    let s = Scratch::new("systemd-seccomp");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let address = free_address();
    // Once through the capture, endpoint on, notifications on: every path a service takes.
    let config = endless(&capture, &address.to_string())
        .replace(",infinite_rx=1", "")
        .replace("[dpdk]", "stop_when_idle = \"1s\"\n[dpdk]");
    let config = s.write("broker.toml", &config);
    let _notify = UnixDatagram::bind(s.path("notify.sock")).unwrap();

    // Under the unit's list, with iopl failing as the unit's SystemCallErrorNumber=EPERM makes
    // it (EAL probes it and goes on): a clean run.
    let run = under_the_unit_filter(&config, &s.dir, &["--errno", "iopl"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{:?}\n{stderr}", run.status);
    assert!(stderr.contains("ingress idle"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("every packet has exactly one outcome"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );

    // The filter is in force: without a call the broker makes, the kernel kills it (SIGSYS).
    let run = under_the_unit_filter(
        &config,
        &s.dir,
        &["--errno", "iopl", "--without", "sched_setaffinity"],
    );
    assert_eq!(run.status.signal(), Some(31), "{:?}", run.status);
}
