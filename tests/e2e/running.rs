//! A `broker run` in the background, for the tests that act on a running broker (reload,
//! failover, stop): its output goes to files the test reads while it runs, its endpoint is asked
//! for status and reloads, and it is killed and reaped however the test ends.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A loopback address for a broker's endpoint.
pub fn free_address() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// A broker started with `broker run --config … --summary-json …`.
pub struct Running {
    child: Option<Child>,
    /// Command prefix the broker runs under (`ip netns exec <ns>`), also used for its CLI.
    wrap: Vec<String>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub summary: PathBuf,
}

/// How a background broker ended.
pub struct Ended {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The `--summary-json` output, `Null` when it wrote none.
    pub summary: Value,
}

impl Running {
    /// Starts the broker on `config` from `cwd`, under `wrap` (empty: directly).
    pub fn start(config: &Path, cwd: &Path, wrap: &[&str]) -> Running {
        Running::start_with(config, cwd, wrap, &[], &[])
    }

    /// As [`Running::start`], with `options` before `run` (`--log-format json`) and `env` added
    /// to its environment.
    pub fn start_with(
        config: &Path,
        cwd: &Path,
        wrap: &[&str],
        options: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        let stdout = config.with_extension("stdout");
        let stderr = config.with_extension("stderr");
        let summary = config.with_extension("summary.json");
        let _ = std::fs::remove_file(&summary);
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_broker"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_broker")),
        };
        let child = command
            .args(options)
            .envs(env.iter().copied())
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--summary-json")
            .arg(&summary)
            .current_dir(cwd)
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .expect("start broker");
        Running {
            child: Some(child),
            wrap: wrap.iter().map(|s| s.to_string()).collect(),
            stdout,
            stderr,
            summary,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (a `kill -s` name: `TERM`, `INT`, `HUP`).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -s {signal}");
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// Waits until the log contains `needle`; panics with the log after `deadline` or if the
    /// broker exits first.
    pub fn wait_for_log(&mut self, needle: &str, deadline: Duration) {
        let start = Instant::now();
        loop {
            if self.log().contains(needle) {
                return;
            }
            assert!(
                self.alive(),
                "broker exited before logging {needle:?}:\n{}",
                self.log()
            );
            assert!(
                start.elapsed() < deadline,
                "broker did not log {needle:?} within {deadline:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `broker <args>` (the CLI) under the same prefix.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = match self.wrap.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_broker"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_broker")),
        };
        command.args(args).output().expect("run the broker CLI")
    }

    /// `broker status --json --address <address>`, parsed.
    pub fn status(&self, address: SocketAddr) -> Value {
        let out = self.cli(&["status", "--json", "--address", &address.to_string()]);
        assert!(
            out.status.success(),
            "broker status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("broker status --json prints JSON")
    }

    /// Waits for the broker to exit, at most `deadline`; `None` if it is still running then.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<Ended> {
        let start = Instant::now();
        let child = self.child.as_mut().expect("running");
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.child = None;
        Some(Ended {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: self.log(),
            summary: std::fs::read_to_string(&self.summary)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null),
        })
    }

    /// SIGTERM, then the end (panics if it takes longer than `deadline`).
    pub fn stop(mut self, deadline: Duration) -> Ended {
        self.signal("TERM");
        match self.wait_exit(deadline) {
            Some(ended) => ended,
            None => panic!(
                "broker still running {deadline:?} after SIGTERM:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Ended {
    /// A row of the summary's `tool_ports` by name.
    pub fn port(&self, name: &str) -> &Value {
        self.summary["tool_ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no tool port {name} in the summary"))
    }

    /// A number of the summary's `tool_ports` row `port`.
    pub fn port_count(&self, port: &str, key: &str) -> u64 {
        self.port(port)[key].as_u64().unwrap_or(0)
    }

    pub fn received(&self) -> u64 {
        self.summary["received"].as_u64().unwrap_or(0)
    }

    /// Asserts what every clean stop guarantees: exit 0, `received == Σ outcomes`, every copy
    /// transmitted or counted per port, no mbuf left in use, and the ingress driver's count of
    /// received packets equal to the workers' (nothing lost or counted twice between them).
    pub fn assert_exact(&self) {
        assert!(
            self.status.success(),
            "broker exit {:?}:\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        let outcomes: u64 = self.summary["outcomes"]
            .as_array()
            .expect("outcomes in the summary")
            .iter()
            .map(|o| o["packets"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(self.received(), outcomes, "received == Σ outcomes");
        for p in self.summary["tool_ports"].as_array().expect("tool_ports") {
            let n = |k: &str| p[k].as_u64().unwrap_or(0);
            assert_eq!(
                n("copies"),
                n("transmitted") + n("tx_dropped") + n("no_buffer"),
                "port {}: copies == transmitted + tx_dropped + no_buffer",
                p["name"]
            );
        }
        let driver_rx: u64 = self.summary["ingress"]
            .as_array()
            .expect("ingress rows")
            .iter()
            .map(|i| i["ipackets"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            driver_rx,
            self.received(),
            "the ingress driver's RX count == packets the workers received"
        );
        assert_eq!(self.summary["mbufs_in_use_at_exit"], 0, "no mbuf leaked");
    }
}

/// `GET` or `POST` `path` at a broker's endpoint: (status code, body).
pub fn http(method: &str, address: SocketAddr, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let url = format!("http://{address}{path}");
    let mut response = match method {
        "POST" => agent.post(&url).send_empty(),
        _ => agent.get(&url).call(),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let code = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("read body");
    (code, body)
}

/// Polls `GET /status` until `ready` holds for it; panics after `deadline`.
pub fn wait_for_status(
    address: SocketAddr,
    deadline: Duration,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (code, body) = http("GET", address, "/status");
        if code == 200 {
            let status: Value = serde_json::from_str(&body).expect("status JSON");
            if ready(&status) {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "status never showed {what} within {deadline:?}: {status}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bit of a capability in `/proc/self/status`' `CapEff` (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process has the capabilities `bits` (named `names`) a test needs. Without them
/// the test fails loudly (CI runs as root), unless `BROKER_TESTS_ALLOW_UNPRIVILEGED=1` says the
/// run knowingly lacks them: then a banner is printed and `false` returned.
pub fn require_capabilities(bits: &[u32], names: &str, test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapEff in /proc/self/status");
    if bits.iter().all(|&b| effective & (1 << b) != 0) {
        return true;
    }
    let message = format!(
        "this process lacks {names}: {test} needs them (network namespaces, tap interfaces). Run \
         as root, or set BROKER_TESTS_ALLOW_UNPRIVILEGED=1 to skip it knowingly."
    );
    if std::env::var("BROKER_TESTS_ALLOW_UNPRIVILEGED").as_deref() == Ok("1") {
        eprintln!("\n!!!!!!!!!! SKIPPED: {message}\n");
        false
    } else {
        panic!("{message}");
    }
}

/// A config named `name` replaying `capture` (mirrorgen's `lab` profile) forever: every VNI to
/// one session, sent to each of `groups` (name, its ports: `net_null` devices), the endpoint at
/// `metrics` (`""`: off).
pub fn endless_config(
    name: &str,
    capture: &Path,
    metrics: &str,
    groups: &[(&str, &[&str])],
) -> String {
    let group_names: Vec<String> = groups.iter().map(|(g, _)| format!("{g:?}")).collect();
    let mut text = format!(
        r#"
[broker]
name = "{name}"
metrics = "{metrics}"
[dpdk]
eal_args = {}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},infinite_rx=1"
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
default_session = "all"
[[session]]
name = "all"
tools = [{}]
"#,
        crate::support::EAL_ARGS,
        capture.display(),
        group_names.join(", ")
    );
    let mut device = 0;
    for (group, ports) in groups {
        let ports: Vec<String> = ports
            .iter()
            .map(|port| {
                device += 1;
                format!("{{ name = {port:?}, device = \"net_null{device}\" }}")
            })
            .collect();
        text.push_str(&format!(
            "[[tool_group]]\nname = {group:?}\nports = [{}]\n",
            ports.join(", ")
        ));
    }
    text
}
