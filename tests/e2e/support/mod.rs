//! What the end-to-end tests share: scratch directories, the capture generator, running the real
//! `broker` binary with a deadline, reading pcaps, and an independent decoder of mirrored frames.
//!
//! The decoder here is deliberately not the broker's: outer layers are parsed with `etherparse`
//! and the tunnel headers by hand, so a bug in the pipeline's parsers cannot hide in the tests.

#![allow(dead_code)] // each test file uses its own part

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::{LaxNetSlice, LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("broker/ has a parent")
        .to_path_buf()
}

/// EAL arguments for tests: no hugepages, no PCI, and nothing shared between the test processes
/// that run side by side.
pub const EAL_ARGS: &str =
    r#"["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]"#;

/// A directory of its own for one test, under `target/e2e/`; kept when the test fails.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = repo_root()
            .join("target")
            .join("e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the config and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "scratch directory kept for inspection: {}",
                self.dir.display()
            );
        }
    }
}

/// The start of a config that stops when idle, without endpoint: broker `name`, one ingress port
/// with one RX queue per file of `inputs` (`net_pcap`), and the allowlist 10.0.0.0/8.
pub fn pcap_ingress_config(name: &str, inputs: &[PathBuf]) -> String {
    let rx: Vec<String> = inputs
        .iter()
        .map(|f| format!("rx_pcap={}", f.display()))
        .collect();
    format!(
        r#"
[broker]
name = "{name}"
stop_when_idle = "1s"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,{}"
queues = {}
[decap]
allowed_sources = ["10.0.0.0/8"]
"#,
        rx.join(","),
        inputs.len()
    )
}

/// Runs the project's capture generator: `profile` into `out` (split into `split` files when asked,
/// by the outer 5-tuple unless `extra` says `--split-by inner`). Returns the files written, in
/// order.
pub fn generate(out: &Path, profile: &str, split: Option<usize>, extra: &[&str]) -> Vec<PathBuf> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("scripts/gen/mirrorgen.py"))
        .arg(profile)
        .arg("-o")
        .arg(out)
        .args(extra);
    if let Some(k) = split {
        cmd.arg("--split").arg(k.to_string());
    }
    let output = cmd
        .output()
        .expect("run mirrorgen.py (is python3-scapy installed?)");
    assert!(
        output.status.success(),
        "mirrorgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    match split {
        None => vec![out.to_path_buf()],
        Some(k) => {
            let stem = out.with_extension("");
            (0..k)
                .map(|i| PathBuf::from(format!("{}.{i}.pcap", stem.display())))
                .collect()
        }
    }
}

/// What a `broker run` did.
pub struct BrokerRun {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The `--summary-json` output.
    pub summary: serde_json::Value,
}

impl BrokerRun {
    /// The count of an outcome (`delivered`, …) or of a malformed reason.
    pub fn outcome(&self, label: &str) -> u64 {
        outcome_count(&self.summary, label)
    }

    /// A row of `tool_ports` by name.
    pub fn port(&self, name: &str) -> &serde_json::Value {
        self.summary["tool_ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no tool port {name} in the summary"))
    }

    /// A row of `tool_groups` by name.
    pub fn group(&self, name: &str) -> &serde_json::Value {
        self.summary["tool_groups"]
            .as_array()
            .and_then(|groups| groups.iter().find(|g| g["name"] == name))
            .unwrap_or_else(|| panic!("no tool group {name} in the summary"))
    }

    pub fn received(&self) -> u64 {
        self.summary["received"].as_u64().unwrap_or(0)
    }

    /// Asserts the run ended well and the accounting identities held.
    pub fn assert_clean(&self) {
        assert!(
            self.success,
            "broker failed ({:?}):\n{}\n{}",
            self.code, self.stdout, self.stderr
        );
        let total: u64 = self.summary["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .map(|o| o["packets"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(self.received(), total, "received == Σ outcomes");
        for p in self.summary["tool_ports"].as_array().expect("tool_ports") {
            let n = |k: &str| p[k].as_u64().unwrap_or(0);
            assert_eq!(
                n("copies"),
                n("transmitted") + n("tx_dropped") + n("no_buffer"),
                "port {}",
                p["name"]
            );
        }
        assert_eq!(self.summary["mbufs_in_use_at_exit"], 0, "no mbuf leaked");
    }
}

/// The count of an outcome (`delivered`, `control`, …) or of a malformed reason in an exit
/// summary or a status.
pub fn outcome_count(summary: &serde_json::Value, label: &str) -> u64 {
    summary["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["outcome"] == label || o["reason"] == label)
        .map(|o| o["packets"].as_u64().unwrap_or(0))
        .sum()
}

/// Runs `broker run --config <config>` from `cwd`, killing it after `deadline`.
pub fn run_broker(config: &Path, cwd: &Path, deadline: Duration) -> BrokerRun {
    run_broker_with_signals(config, cwd, deadline, &[])
}

/// As [`run_broker`], sending each `(delay, signal)` (a `kill -s` name: `TERM`, `INT`) once
/// `delay` has passed since the start.
pub fn run_broker_with_signals(
    config: &Path,
    cwd: &Path,
    deadline: Duration,
    signals: &[(Duration, &str)],
) -> BrokerRun {
    let summary_path = config.with_extension("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--summary-json")
        .arg(&summary_path)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start broker");
    let started = Instant::now();
    let mut pending: Vec<(Duration, &str)> = signals.to_vec();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for broker") {
            break status;
        }
        if let Some(i) = pending
            .iter()
            .position(|(delay, _)| started.elapsed() >= *delay)
        {
            let (_, signal) = pending.remove(i);
            let sent = Command::new("kill")
                .arg("-s")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
            assert!(
                sent.is_ok_and(|s| s.success()),
                "kill -s {signal} {}",
                child.id()
            );
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "broker still running after {deadline:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("collect output");
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    BrokerRun {
        success: status.success(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        summary,
    }
}

/// Runs `broker check --config <config>`.
pub fn check_config(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run broker check")
}

/// The frames of a pcap file, in order.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("pcap record").data.into_owned());
    }
    frames
}

/// A mirrored frame as the test understands it, independently of the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrored {
    /// Source address of the innermost tunnel's IP header (the mirrored interface).
    pub mirror_source: IpAddr,
    pub vni: u32,
    /// The innermost frame.
    pub inner: Vec<u8>,
}

/// Decodes Ethernet [VLAN…] IP UDP → VXLAN (4789) or GENEVE (6081) → inner frame, repeatedly
/// while the inner frame is itself such a tunnel. `None` when the outer frame is not a tunnel.
pub fn decode_mirror(frame: &[u8]) -> Option<Mirrored> {
    let mut found = None;
    let mut current = frame.to_vec();
    for _ in 0..3 {
        let Some((source, udp_port, payload)) = udp_of(&current) else {
            break;
        };
        let (vni, inner) = match udp_port {
            4789 if payload.len() >= 8 && payload[0] & 0x08 != 0 => (
                u32::from_be_bytes([0, payload[4], payload[5], payload[6]]),
                payload[8..].to_vec(),
            ),
            6081 if payload.len() >= 8 => {
                let options = usize::from(payload[0] & 0x3F) * 4;
                let protocol = u16::from_be_bytes([payload[2], payload[3]]);
                let vni = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
                let body = payload.get(8 + options..)?.to_vec();
                match protocol {
                    0x6558 => (vni, body),
                    // Bare IP: the broker delivers it behind a fixed Ethernet header.
                    0x0800 | 0x86DD => {
                        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
                        f.extend_from_slice(&protocol.to_be_bytes());
                        f.extend_from_slice(&body);
                        (vni, f)
                    }
                    _ => break,
                }
            }
            _ => break,
        };
        found = Some(Mirrored {
            mirror_source: source,
            vni,
            inner: inner.clone(),
        });
        current = inner;
    }
    found
}

/// (IP source, UDP destination port, UDP payload) of an Ethernet frame, when it is UDP.
fn udp_of(frame: &[u8]) -> Option<(IpAddr, u16, Vec<u8>)> {
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let source = match sliced.net.as_ref()? {
        NetSlice::Ipv4(ip) => IpAddr::V4(ip.header().source_addr()),
        NetSlice::Ipv6(ip) => IpAddr::V6(ip.header().source_addr()),
        _ => return None,
    };
    match sliced.transport? {
        TransportSlice::Udp(udp) => Some((source, udp.destination_port(), udp.payload().to_vec())),
        _ => None,
    }
}

/// The inner packet from L3 on with TTL / hop limit and the IPv4 header checksum blanked: equal
/// for the two copies of one packet, different for different packets.
pub fn normalised_l3(frame: &[u8]) -> Vec<u8> {
    let mut offset = 12;
    while matches!(
        frame.get(offset..offset + 2),
        Some([0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00])
    ) {
        offset += 4;
    }
    let mut l3 = frame[offset + 2..].to_vec();
    match l3.first().map(|b| b >> 4) {
        Some(4) if l3.len() >= 20 => {
            l3[8] = 0;
            l3[10] = 0;
            l3[11] = 0;
        }
        Some(6) if l3.len() >= 40 => l3[7] = 0,
        _ => {}
    }
    l3
}

/// The copies of each packet: indices of `inners` grouped by [`normalised_l3`], in the order of
/// that identity.
pub fn copies_by_packet<'a>(
    inners: impl IntoIterator<Item = &'a [u8]>,
) -> BTreeMap<Vec<u8>, Vec<usize>> {
    let mut by_packet: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
    for (i, inner) in inners.into_iter().enumerate() {
        by_packet.entry(normalised_l3(inner)).or_default().push(i);
    }
    by_packet
}

/// The inner flow of a frame (addresses, protocol, ports), as etherparse reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InnerFlow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Read leniently (etherparse's lax slicing): a frame cut short (sliced, or cut to fit an MTU)
/// keeps its headers but not the length its IP header states, and still has its flow.
pub fn inner_flow(frame: &[u8]) -> Option<InnerFlow> {
    let sliced = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst, protocol) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload().ip_number.0,
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload().ip_number.0,
        ),
        _ => return None,
    };
    let (src_port, dst_port) = match sliced.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        _ => (0, 0),
    };
    Some(InnerFlow {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
    })
}

/// Count of each distinct frame.
pub fn multiset(frames: impl IntoIterator<Item = Vec<u8>>) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for f in frames {
        *m.entry(f).or_insert(0) += 1;
    }
    m
}

/// Reads `fields` of every frame of a pcap with tshark (the independent decoder), one row per
/// frame that passes the display `filter`, each field's first occurrence (the outermost layer).
/// `options` go to tshark as they are (`-d udp.port==4790,vxlan`, `-o pref:value`).
pub fn tshark_fields(
    path: &Path,
    filter: Option<&str>,
    fields: &[&str],
    options: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "occurrence=f"]);
    for field in fields {
        cmd.arg("-e").arg(field);
    }
    if let Some(filter) = filter {
        cmd.arg("-Y").arg(filter);
    }
    let output = cmd.args(options).output().expect("run tshark");
    assert!(
        output.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Decodes a pcap with tshark (the independent decoder) and returns its frame count; fails the
/// test if tshark finds a malformed frame. Without TCP reassembly, as in
/// `network::verify::tshark_agrees`: the captures hold packets mirrored at both ends (a
/// retransmission to tshark), and a capture that lost copies to a slow reader holds whichever of
/// them survived, so reassembly would report overlaps ("New fragment overlaps old data") that
/// depend on timing and say nothing of any frame.
pub fn tshark_frames(path: &Path, decode_as: &[&str]) -> usize {
    let mut options: Vec<&str> = decode_as.iter().flat_map(|d| ["-d", d]).collect();
    options.extend(["-o", "tcp.desegment_tcp_streams:FALSE"]);
    let rows = tshark_fields(path, None, &["frame.number", "_ws.malformed"], &options);
    let malformed: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.get(1).is_some_and(|m| !m.is_empty()))
        .collect();
    assert!(
        malformed.is_empty(),
        "tshark finds malformed frames in {}: {malformed:?}",
        path.display()
    );
    rows.len()
}
