//! What moves through the lab: the mirror sender in the peer namespace, the captures on the
//! analyzer side, and the middlebox in the broker namespace (the real broker, or the kernel
//! stand-in that proves the harness on its own).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::topology::Netlab;
use crate::running::{Ended, Running};
use crate::support::{read_pcap, repo_root};

/// The Python of Debian (the lab's tools need only its standard library).
const PYTHON: &str = "/usr/bin/python3";

fn netlab_tool(name: &str) -> String {
    repo_root()
        .join("scripts/netlab")
        .join(name)
        .display()
        .to_string()
}

/// What the mirror sender reports (`scripts/netlab/send.py`).
#[derive(Debug)]
pub struct Sent {
    pub packets: u64,
    pub skipped: u64,
    /// The MAC address the broker's address resolved to in the peer's neighbour table.
    pub resolved_mac: String,
    pub report: Value,
}

/// Replays `capture`'s mirrored frames as mirrored VXLAN from the peer to `to` at `rate`
/// packets per second (through the peer's kernel: it resolves `to` by ARP or ND first). Panics
/// with the sender's message when it fails (the address never resolved, a send failed).
pub fn send_mirror(lab: &Netlab, capture: &Path, to: std::net::IpAddr, rate: u32) -> Sent {
    let tool = netlab_tool("send.py");
    let capture = capture.display().to_string();
    let (to, rate) = (to.to_string(), rate.to_string());
    let out = lab.output(
        "peer",
        &[PYTHON, &tool, &capture, "--to", &to, "--rate", &rate],
    );
    assert!(
        out.status.success(),
        "the mirror sender failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the sender's JSON report");
    Sent {
        packets: report["sent"].as_u64().expect("sent"),
        skipped: report["skipped"].as_u64().expect("skipped"),
        resolved_mac: report["resolved_mac"].as_str().unwrap_or("").to_owned(),
        report,
    }
}

/// A tcpdump writing what one interface receives to a pcap file, inside a namespace; killed on
/// drop.
pub struct Capture {
    child: Option<Child>,
    pub path: PathBuf,
    what: String,
    ns: String,
    iface: String,
    /// The interface's count of received packets once tcpdump listened.
    rx_at_start: u64,
    /// What tcpdump prints (its counts of captured and dropped packets when it stops).
    log: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

/// The kernel's count of packets `iface` of namespace `ns` received.
fn rx_packets(ns: &str, iface: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", "dev", iface])
        .output()
        .expect("run ip");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("ip -s -j link show dev {iface} in {ns}"));
    json[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no RX count for {iface} in {ns}: {json}"))
}

/// Complete records in a pcap file tcpdump may still be writing (a record cut by the end of the
/// file does not count).
fn pcap_records(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap_or_default();
    let little_endian = data.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]);
    let (mut at, mut count) = (24, 0);
    while let Some(header) = data.get(at..at + 16) {
        let len = [header[8], header[9], header[10], header[11]];
        let len = if little_endian {
            u32::from_le_bytes(len)
        } else {
            u32::from_be_bytes(len)
        } as usize;
        if data.len() < at + 16 + len {
            break;
        }
        at += 16 + len;
        count += 1;
    }
    count
}

impl Capture {
    /// Starts capturing what `iface` of `host`'s namespace receives (`-Q in`: an analyzer's own
    /// answers, such as the ICMP errors that quote the copies, are not copies); returns once
    /// tcpdump listens.
    pub fn start(lab: &Netlab, host: &str, iface: &str, path: &Path) -> Capture {
        let mut command = lab.command(host, "tcpdump");
        // --immediate-mode: each packet is handed over as it arrives (else libpcap's ring hands
        // them over in blocks, up to a second late); -U: and written at once. In immediate mode
        // libpcap's ring has a slot of the snapshot length per packet: with the default 262144
        // bytes a ring holds a few dozen frames and overflows whenever tcpdump is descheduled on
        // a busy machine. The lab's frames are at most 1614 bytes: slots of 4 KiB in a 16 MiB
        // ring hold 4000 frames, several rounds of the sample.
        let options = ["-n", "--immediate-mode", "-U", "-s", "4096", "-B", "16384"];
        command
            .args(options)
            .args(["-Q", "in", "-i", iface, "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start tcpdump");
        let what = format!("tcpdump on {host} {iface}");
        // tcpdump says "listening on …" once its socket is bound.
        let mut stderr = child.stderr.take().expect("tcpdump's stderr");
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            match stderr.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{what} did not start: {}", String::from_utf8_lossy(&seen));
                }
            }
        }
        // Keep draining its stderr so it never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        let ns = lab.host(host).ns.clone();
        Capture {
            child: Some(child),
            path: path.to_path_buf(),
            what,
            rx_at_start: rx_packets(&ns, iface),
            log,
            ns,
            iface: iface.to_owned(),
        }
    }

    /// Packets the interface received since the capture started.
    fn received(&self) -> u64 {
        rx_packets(&self.ns, &self.iface) - self.rx_at_start
    }

    /// Waits until tcpdump has written every frame the interface received (it may lag behind
    /// on a busy machine, and what it has not read when it stops is lost; at most 10 s), stops
    /// it and returns the frames, in order.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        let start = Instant::now();
        let received = self.received();
        while pcap_records(&self.path) < received && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        let frames = read_pcap(&self.path);
        assert!(
            frames.len() as u64 >= received,
            "{} wrote {} frames but the interface received {received}: the capture lost some, \
             and a comparison would be meaningless. tcpdump said: {}",
            self.what,
            frames.len(),
            String::from_utf8_lossy(&self.log.lock().unwrap())
        );
        frames
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` runs tcpdump in its own process (exec): the id is tcpdump's.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("{} did not stop on SIGINT; killed", self.what);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until none of `captures`' interfaces has received a frame for `quiet` (at most
/// `deadline`): the traffic in flight has arrived.
fn settle(captures: &[&Capture], quiet: Duration, deadline: Duration) {
    let received = || -> u64 { captures.iter().map(|c| c.received()).sum() };
    let start = Instant::now();
    let mut last = received();
    let mut since = Instant::now();
    while since.elapsed() < quiet && start.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = received();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// What one analyzer received.
#[derive(Debug, Default)]
pub struct AnalyzerFrames {
    /// Every frame its interface received (tunnels, and ARP, ND and the like), in order.
    pub outer: Vec<Vec<u8>>,
    pub outer_pcap: PathBuf,
    /// The inner frames its Linux `vxlan` netdev (external mode) decapsulated, in order.
    pub decapsulated: Vec<Vec<u8>>,
}

/// The analyzers' receivers: for each, a `vxlan` netdev in external mode (any VNI, UDP 4789,
/// IPv4 and IPv6) capturing what it decapsulates, and a capture of everything its interface
/// receives (GENEVE, L2GRE and ERSPAN are decoded from that, by tshark and the test's decoder:
/// this kernel has no geneve, gretap or erspan netdevs).
pub struct Receivers {
    captures: Vec<(String, Capture, Capture)>,
}

impl Receivers {
    pub fn start(lab: &Netlab, analyzers: &[&str], dir: &Path, phase: &str) -> Receivers {
        let captures = analyzers
            .iter()
            .map(|&a| {
                let links = lab.run(a, &["ip", "-o", "link", "show"]);
                if !links.contains(" vx0:") {
                    lab.run(
                        a,
                        &[
                            "ip", "link", "add", "vx0", "type", "vxlan", "dstport", "4789",
                            "external",
                        ],
                    );
                    // The receiver only receives: no IPv6 of its own (router solicitations, MLD).
                    lab.run(a, &["sysctl", "-qw", "net.ipv6.conf.vx0.disable_ipv6=1"]);
                    lab.run(a, &["ip", "link", "set", "vx0", "mtu", "9000", "up"]);
                }
                let iface = lab.host(a).iface.clone();
                let outer =
                    Capture::start(lab, a, &iface, &dir.join(format!("{phase}{a}-outer.pcap")));
                let inner =
                    Capture::start(lab, a, "vx0", &dir.join(format!("{phase}{a}-vx0.pcap")));
                (a.to_owned(), outer, inner)
            })
            .collect();
        Receivers { captures }
    }

    /// Waits for the traffic in flight, stops the captures and reads them.
    pub fn finish(self) -> BTreeMap<String, AnalyzerFrames> {
        let all: Vec<&Capture> = self.captures.iter().flat_map(|(_, o, i)| [o, i]).collect();
        settle(&all, Duration::from_millis(500), Duration::from_secs(10));
        self.captures
            .into_iter()
            .map(|(name, outer, inner)| {
                let outer_pcap = outer.path.clone();
                let frames = AnalyzerFrames {
                    outer: outer.finish(),
                    outer_pcap,
                    decapsulated: inner.finish(),
                };
                (name, frames)
            })
            .collect()
    }
}

/// Who sits in the broker's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Middle {
    /// The real `broker` binary.
    Broker,
    /// `scripts/netlab/standin.py`: the kernel's sockets doing what the broker should, to prove
    /// the harness (not the broker).
    StandIn,
}

impl Middle {
    pub fn side(self) -> super::topology::BrokerSide {
        match self {
            Middle::Broker => super::topology::BrokerSide::Dpdk,
            Middle::StandIn => super::topology::BrokerSide::Kernel,
        }
    }
}

/// The broker's admin endpoint in the lab configs: its namespace's own loopback.
pub const ADMIN: &str = "127.0.0.1:9477";

/// The running middlebox.
pub enum Middlebox {
    Broker(Running),
    StandIn(StandIn),
}

/// The stand-in's process and its output files; killed on drop.
pub struct StandIn {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl StandIn {
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, then its report.
    fn stop(mut self) -> Value {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().expect("wait for the stand-in");
        assert!(
            status.success(),
            "the stand-in failed ({status}): {}",
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        );
        let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        serde_json::from_str(&text).expect("the stand-in's report")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Middlebox {
    /// Starts `middle` on `config` in the lab's broker namespace and waits until it can take
    /// traffic: the stand-in listens; the broker runs and every port of `tool_ports` is live
    /// (its tunnel's next hop answered).
    pub fn start(
        lab: &Netlab,
        middle: Middle,
        config: &Path,
        dir: &Path,
        tool_ports: &[&str],
    ) -> Middlebox {
        match middle {
            Middle::Broker => {
                let mut broker = Running::start(config, dir, &lab.wrap("broker"));
                broker.wait_for_log("metrics and status on", Duration::from_secs(30));
                let admin: SocketAddr = ADMIN.parse().unwrap();
                wait_for_ports(
                    &mut broker,
                    admin,
                    tool_ports,
                    true,
                    Duration::from_secs(20),
                );
                Middlebox::Broker(broker)
            }
            Middle::StandIn => {
                let stdout = dir.join("standin.stdout");
                let stderr = dir.join("standin.stderr");
                let child = lab
                    .command("broker", PYTHON)
                    .arg(netlab_tool("standin.py"))
                    .arg(config)
                    .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
                    .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
                    .spawn()
                    .expect("start the stand-in");
                let mut standin = StandIn {
                    child: Some(child),
                    stdout,
                    stderr: stderr.clone(),
                };
                let start = Instant::now();
                while !std::fs::read_to_string(&stderr)
                    .unwrap_or_default()
                    .contains("stand-in ready")
                {
                    assert!(
                        standin.alive() && start.elapsed() < Duration::from_secs(10),
                        "the stand-in did not start: {}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Middlebox::StandIn(standin)
            }
        }
    }

    /// The broker, for what only it does (status, logs).
    pub fn broker(&mut self) -> &mut Running {
        match self {
            Middlebox::Broker(b) => b,
            Middlebox::StandIn(_) => panic!("this step needs the broker, not the stand-in"),
        }
    }

    /// Stops it (SIGTERM) and returns its report.
    pub fn stop(self) -> Stopped {
        match self {
            Middlebox::Broker(broker) => {
                let ended = broker.stop(Duration::from_secs(20));
                ended.assert_exact();
                Stopped {
                    tool_ports: ended.summary["tool_ports"].clone(),
                    broker: Some(ended),
                }
            }
            Middlebox::StandIn(standin) => Stopped {
                tool_ports: standin.stop()["tool_ports"].clone(),
                broker: None,
            },
        }
    }
}

/// How the middlebox ended: per tool port counts (the broker's exit summary, or the stand-in's
/// report, in the same shape), and the broker's whole ending when it was the broker.
pub struct Stopped {
    tool_ports: Value,
    pub broker: Option<Ended>,
}

impl Stopped {
    /// A count of a tool port's row: `copies`, `egress_truncated`, …
    pub fn port_count(&self, port: &str, key: &str) -> u64 {
        self.tool_ports
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == port))
            .unwrap_or_else(|| panic!("no tool port {port} in {}", self.tool_ports))[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} for tool port {port}: {}", self.tool_ports))
    }
}

/// Whether `port` of any group is live in `status`.
pub fn port_live(status: &Value, port: &str) -> Option<bool> {
    status["tool_groups"]
        .as_array()?
        .iter()
        .flat_map(|g| g["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == port)
        .map(|p| p["live"] == true)
}

/// Polls the broker's status (its CLI, inside its namespace) until every port of `ports` is
/// live (`live`) or not; panics with the last status after `deadline`.
pub fn wait_for_ports(
    broker: &mut Running,
    admin: SocketAddr,
    ports: &[&str],
    live: bool,
    deadline: Duration,
) -> Value {
    let start = Instant::now();
    loop {
        let status = broker.status(admin);
        if ports.iter().all(|p| port_live(&status, p) == Some(live)) {
            return status;
        }
        assert!(
            broker.alive() && start.elapsed() < deadline,
            "tool ports {ports:?} not all {} within {deadline:?}: {}\n{}",
            if live { "live" } else { "down" },
            status["tool_groups"],
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
