//! Analyzer failover end to end, and a tool port that takes nothing.
//!
//! **Failover** (needs root: it creates a network namespace and tap interfaces). The broker runs
//! inside a network namespace the test creates (`ip netns add`), so the analyzer ports it opens —
//! `net_tap` devices, whose link DPDK reads from the kernel interface's `IFF_UP`/`IFF_RUNNING` —
//! exist only there; the test never touches an interface or address outside it, and deletes the
//! namespace however it ends. An endless capture from 48 mirror sources flows to two tool groups
//! balanced by source: `ids` (3 ports, `on_port_down = "rebalance"`) and `strict` (2 ports,
//! `on_port_down = "drop"`). A sniffer in the namespace (AF_PACKET on every tap) records which
//! sources reach which port. Then one port of each group is brought down with `ip link set …
//! down`: within 100 ms of the command the plan must have changed (measured against the
//! `swapped_unix_us` the broker logs); `ids`' live ports keep exactly their sources and the dead
//! port's sources spread over them; `strict` moves nothing (the dead port's share is dropped and
//! counted). When the links return, every source returns to its first port.
//!
//! (`net_af_packet` cannot be used here: DPDK 22.11's `af_packet` driver reports its link up
//! from start to stop whatever the kernel interface does, so no link watch can see it go down.)
//!
//! **A full TX ring** (no privilege needed): a `net_ring` tool port nobody drains fills after
//! its ring's size and refuses everything after; the worker must not wait for it, and the port
//! next to it must keep receiving every copy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use etherparse::PacketBuilder;
use serde_json::Value;

use crate::running::*;
use crate::support::*;

/// Mirror sources in the failover capture.
const SOURCES: u8 = 48;
/// How long a failover may take, from the `ip link set` command to the new plan.
const FAILOVER_BUDGET_US: u128 = 100_000;
/// How long each phase is sampled.
const SAMPLE_SECONDS: &str = "0.7";

/// A capture of `SOURCES` mirror sources (outer 10.9.0.i, VXLAN VNI 101), `per_source` packets
/// each, interleaved; the inner IPv4 source 192.168.1.i names the mirror source, so the test
/// can tell sources apart at the analyzers (which see inner frames only).
fn many_sources_capture(path: &Path, per_source: usize) {
    let file = std::fs::File::create(path).expect("create capture");
    let mut writer = pcap_file::pcap::PcapWriter::new(file).expect("pcap header");
    let mut t = Duration::ZERO;
    for round in 0..per_source {
        for i in 0..SOURCES {
            let inner_builder = PacketBuilder::ethernet2([2, 0, 0, 0, 1, i], [2, 0, 0, 0, 2, 1])
                .ipv4([192, 168, 1, i], [192, 168, 2, 1], 64)
                .udp(1000 + u16::from(i), 2000);
            let payload = [round as u8; 32];
            let mut inner = Vec::new();
            inner_builder.write(&mut inner, &payload).unwrap();
            let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 101, 0];
            vxlan.extend_from_slice(&inner);
            let outer_builder = PacketBuilder::ethernet2([2, 0, 0, 0, 3, i], [2, 0, 0, 0, 4, 1])
                .ipv4([10, 9, 0, i + 1], [10, 0, 0, 100], 64)
                .udp(40000 + u16::from(i), 4789);
            let mut frame = Vec::new();
            outer_builder.write(&mut frame, &vxlan).unwrap();
            t += Duration::from_micros(10);
            writer
                .write_packet(&pcap_file::pcap::PcapPacket::new(
                    t,
                    frame.len() as u32,
                    &frame,
                ))
                .unwrap();
        }
    }
}

/// Reads AF_PACKET sockets on the given interfaces for `seconds`: the inner IPv4 sources seen on
/// each, as JSON `{iface: {source: count}}`.
const SNIFFER: &str = r#"
import errno, json, select, socket, sys, time
seconds, ifaces = float(sys.argv[1]), sys.argv[2:]
socks = {}
for iface in ifaces:
    # Protocol 0 receives nothing until bind names the interface (and ETH_P_ALL): a socket
    # opened with ETH_P_ALL would queue frames of every interface until it is bound.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((iface, 3))
    s.setblocking(False)
    socks[s] = iface
seen = {iface: {} for iface in ifaces}
end = time.monotonic() + seconds
while time.monotonic() < end:
    ready, _, _ = select.select(list(socks), [], [], 0.05)
    for s in ready:
        for _ in range(256):
            try:
                frame = s.recv(64)
            except BlockingIOError:
                break
            except OSError as e:  # a socket on a downed interface reports ENETDOWN once
                if e.errno != errno.ENETDOWN:
                    raise
                break
            if len(frame) >= 34 and frame[12:14] == b"\x08\x00" and frame[26:28] == b"\xc0\xa8":
                src = socket.inet_ntoa(frame[26:30])
                counts = seen[socks[s]]
                counts[src] = counts.get(src, 0) + 1
print(json.dumps(seen))
"#;

/// A network namespace of this test; deleted on drop (its taps go with the broker).
struct Netns {
    name: String,
}

impl Netns {
    fn create(name: &str) -> Netns {
        // A namespace left by a crashed earlier run of this process id would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_owned(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.name]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !out.is_ok_and(|o| o.status.success()) {
            eprintln!("could not delete network namespace {}", self.name);
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which sources (by their last octet) each interface received, from a sniffer run.
type Seen = BTreeMap<String, BTreeSet<u8>>;

fn sniff(ns: &Netns, ifaces: &[&str]) -> Seen {
    let mut args = ns.exec();
    args.extend(["/usr/bin/python3", "-c", SNIFFER, SAMPLE_SECONDS]);
    args.extend(ifaces);
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run the sniffer");
    assert!(
        out.status.success(),
        "sniffer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("sniffer JSON");
    ifaces
        .iter()
        .map(|iface| {
            let sources = json[*iface]
                .as_object()
                .expect("an entry per interface")
                .keys()
                .map(|ip| ip.parse::<Ipv4Addr>().unwrap().octets()[3])
                .collect();
            (iface.to_string(), sources)
        })
        .collect()
}

/// Source → the one port of `ports` it reached; panics when a source reached two (or, unless
/// `partial`, none) of them.
fn mapping(seen: &Seen, ports: &[&str], phase: &str) -> BTreeMap<u8, String> {
    let mut map = BTreeMap::new();
    for port in ports {
        for &source in &seen[*port] {
            if let Some(other) = map.insert(source, port.to_string()) {
                panic!("{phase}: source {source} reached both {other} and {port}: {seen:?}");
            }
        }
    }
    map
}

/// Brings `iface` in `ns` up or down and returns how long after the command the broker's plan
/// changed (from its log), in microseconds.
fn set_link(broker: &mut Running, ns: &Netns, iface: &str, port: &str, up: bool) -> u128 {
    let state = if up { "up" } else { "down" };
    let before = std::fs::read_to_string(&broker.stderr)
        .unwrap_or_default()
        .len();
    let command_at = unix_micros();
    ip(&["-n", &ns.name, "link", "set", iface, state]);
    let needle = format!("link watch: tool port {port} link {state}");
    broker.wait_for_log(&needle, Duration::from_secs(5));
    let log = broker.log();
    let line = log[before..]
        .lines()
        .find(|l| l.contains(&needle))
        .expect("the link line");
    let swapped: u128 = line
        .split("swapped_unix_us=")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no swapped_unix_us in {line:?}"));
    swapped.saturating_sub(command_at)
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn live(status: &Value, group: &str, port: &str) -> bool {
    status["tool_groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == group))
        .and_then(|g| g["ports"].as_array())
        .and_then(|p| p.iter().find(|p| p["name"] == port))
        .map(|p| p["live"] == true)
        .unwrap_or_else(|| panic!("no port {group}/{port} in {status}"))
}

#[test]
fn a_dead_analyzer_leaves_its_group_within_100ms_only_its_sources_move_and_they_return() {
    if !require_capabilities(
        &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
        "CAP_NET_ADMIN and CAP_SYS_ADMIN",
        "the failover test",
    ) {
        return;
    }
    let s = Scratch::new("failover");
    let capture = s.path("sources.pcap");
    many_sources_capture(&capture, 8);
    let ns = Netns::create(&format!("brk-fo-{}", std::process::id()));
    let metrics: SocketAddr = "127.0.0.1:9477".parse().unwrap(); // the namespace's own loopback
    let config = s.write(
        "failover.toml",
        &format!(
            r#"
[broker]
name = "e2e-failover"
metrics = "{metrics}"
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},infinite_rx=1"
[decap]
allowed_sources = ["10.9.0.0/16"]
[[session]]
name = "vpc"
vni = 101
tools = ["ids", "strict"]
[[tool_group]]
name = "ids"
balance = "source"
on_port_down = "rebalance"
ports = [
    {{ name = "ids-1", device = "net_tap0,iface=ids1" }},
    {{ name = "ids-2", device = "net_tap1,iface=ids2" }},
    {{ name = "ids-3", device = "net_tap2,iface=ids3" }},
]
[[tool_group]]
name = "strict"
balance = "source"
on_port_down = "drop"
ports = [
    {{ name = "strict-1", device = "net_tap3,iface=st1" }},
    {{ name = "strict-2", device = "net_tap4,iface=st2" }},
]
"#,
            capture.display()
        ),
    );
    let mut broker = Running::start(&config, &s.dir, &ns.exec());
    broker.wait_for_log("metrics and status on", Duration::from_secs(30));
    let ids = ["ids1", "ids2", "ids3"];
    let strict = ["st1", "st2"];
    let all: Vec<&str> = ids.iter().chain(&strict).copied().collect();

    // All links up: every source reaches exactly one port of each group.
    let before = sniff(&ns, &all);
    let ids_before = mapping(&before, &ids, "all up");
    let strict_before = mapping(&before, &strict, "all up");
    assert_eq!(
        ids_before.len(),
        usize::from(SOURCES),
        "every source seen at ids: {before:?}"
    );
    assert_eq!(
        strict_before.len(),
        usize::from(SOURCES),
        "every source seen at strict: {before:?}"
    );
    let moved: BTreeSet<u8> = ids_before
        .iter()
        .filter(|(_, p)| *p == "ids2")
        .map(|(s, _)| *s)
        .collect();
    let dropped: BTreeSet<u8> = strict_before
        .iter()
        .filter(|(_, p)| *p == "st2")
        .map(|(s, _)| *s)
        .collect();
    assert!(
        !moved.is_empty() && !dropped.is_empty(),
        "the ports to fail carry sources: {before:?}"
    );

    // Down: within the budget of the command, out of the tables.
    let ids_down = set_link(&mut broker, &ns, "ids2", "ids-2", false);
    let strict_down = set_link(&mut broker, &ns, "st2", "strict-2", false);
    let status = broker.status(metrics);
    assert!(
        !live(&status, "ids", "ids-2") && live(&status, "ids", "ids-1"),
        "{status}"
    );
    assert!(!live(&status, "strict", "strict-2"), "{status}");
    std::thread::sleep(Duration::from_millis(200));
    let during = sniff(&ns, &all);
    assert!(
        during["ids2"].is_empty() && during["st2"].is_empty(),
        "nothing reaches a dead port: {during:?}"
    );
    let ids_during = mapping(&during, &ids, "ids-2 down");
    assert_eq!(
        ids_during.len(),
        usize::from(SOURCES),
        "rebalance: every source still reaches ids: {during:?}"
    );
    for (source, port) in &ids_during {
        if moved.contains(source) {
            assert_ne!(port, "ids2");
        } else {
            assert_eq!(
                port, &ids_before[source],
                "source {source} of a live port must not move"
            );
        }
    }
    let strict_during = mapping(&during, &strict, "strict-2 down");
    let kept: BTreeSet<u8> = strict_during.keys().copied().collect();
    let expected: BTreeSet<u8> = strict_before
        .keys()
        .filter(|s| !dropped.contains(s))
        .copied()
        .collect();
    assert_eq!(
        kept, expected,
        "drop: strict-1 keeps exactly its own sources, strict-2's are dropped"
    );

    // Up: every source returns to its first port.
    let ids_up = set_link(&mut broker, &ns, "ids2", "ids-2", true);
    let strict_up = set_link(&mut broker, &ns, "st2", "strict-2", true);
    let status = broker.status(metrics);
    assert!(
        live(&status, "ids", "ids-2") && live(&status, "strict", "strict-2"),
        "{status}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let after = sniff(&ns, &all);
    assert_eq!(
        mapping(&after, &ids, "back up"),
        ids_before,
        "every ids source back on its first port"
    );
    assert_eq!(
        mapping(&after, &strict, "back up"),
        strict_before,
        "every strict source back on its first port"
    );

    eprintln!(
        "failover latency (command → plan swapped): ids-2 down {ids_down} µs, strict-2 down {strict_down} µs, \
         ids-2 up {ids_up} µs, strict-2 up {strict_up} µs; {} of {SOURCES} sources moved and returned",
        moved.len()
    );
    for (what, us) in [
        ("ids-2 down", ids_down),
        ("strict-2 down", strict_down),
        ("ids-2 up", ids_up),
        ("strict-2 up", strict_up),
    ] {
        assert!(
            us < FAILOVER_BUDGET_US,
            "{what}: plan swapped {us} µs after the command (budget {FAILOVER_BUDGET_US} µs)"
        );
    }

    let ended = broker.stop(Duration::from_secs(20));
    ended.assert_exact();
    let group = |name: &str| {
        ended.summary["tool_groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap()
            .clone()
    };
    assert!(
        group("strict")["no_live_port"].as_u64().unwrap() > 0,
        "strict's dropped share is counted"
    );
    assert_eq!(group("ids")["no_live_port"], 0, "ids rebalanced everything");
    drop(ns);
}

#[test]
fn a_full_tx_ring_never_blocks_the_worker_or_the_other_ports() {
    let s = Scratch::new("tx-full");
    // Minimum-size frames: each copy for the stuck port is then one mbuf (below).
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &["--sizes", "min"]).remove(0);
    let config = s.write(
        "tx-full.toml",
        &format!(
            r#"
[broker]
name = "e2e-tx-full"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},infinite_rx=1"
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
[[session]]
name = "web"
vni = 101
tools = ["stuck", "healthy"]
[[session]]
name = "db"
vni = 102
tools = ["stuck", "healthy"]
[[session]]
name = "edge"
vni = 103
tools = ["stuck", "healthy"]
[[tool_group]]
name = "stuck"
# A ring that loops TX back to an RX queue nobody polls: full after its size.
ports = [{{ name = "stuck-1", device = "net_ring0" }}]
[[tool_group]]
name = "healthy"
ports = [{{ name = "healthy-1", device = "net_null0" }}]
"#,
            capture.display()
        ),
    );
    let mut broker = Running::start(&config, &s.dir, &[]);
    broker.wait_for_log("worker(s) running", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let ended = broker.stop(Duration::from_secs(20));
    assert!(
        !ended.summary.is_null(),
        "no summary: the broker did not stop by itself ({:?}):\n{}",
        ended.status,
        ended.stderr
    );

    let received = ended.received();
    let n = |port: &str, key: &str| ended.port_count(port, key);
    let (stuck_sent, stuck_dropped) = (n("stuck-1", "transmitted"), n("stuck-1", "tx_dropped"));
    eprintln!(
        "received {received}; stuck-1: {stuck_sent} transmitted, {stuck_dropped} dropped; healthy-1: {} transmitted",
        n("healthy-1", "transmitted")
    );
    // The ring took what fits and refused the rest, counted per port.
    assert!(
        stuck_sent > 0 && stuck_sent <= 4096,
        "stuck-1 took a ring's worth: {stuck_sent}"
    );
    assert_eq!(
        n("stuck-1", "copies"),
        stuck_sent + stuck_dropped,
        "every refused copy counted"
    );
    // The worker went on at full rate: traffic flowed long past the ring filling, and the port
    // next to it got every copy.
    assert!(
        received > 20 * stuck_sent,
        "the worker kept receiving: {received}"
    );
    assert_eq!(
        n("healthy-1", "copies"),
        received,
        "every packet reached the healthy port"
    );
    assert_eq!(n("healthy-1", "transmitted"), received);
    assert_eq!(n("healthy-1", "tx_dropped"), 0);
    // The only mbufs not back in the pool are the ones sitting in the undrained ring: the
    // broker leaked none (the exit summary flags them, hence the exit status). Each copy in the
    // ring is a copy of a packet of at most 512 bytes (`share` copies such packets rather than
    // clone them; the healthy group, last, took the original): one mbuf per packet.
    assert_eq!(
        ended.summary["mbufs_in_use_at_exit"].as_u64(),
        Some(stuck_sent),
        "in use at exit == what the ring holds"
    );
    let outcomes: u64 = ended.summary["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(outcomes, received, "received == Σ outcomes");
    assert_eq!(
        ended.status.code(),
        Some(3),
        "the summary reports the ring's mbufs as still in use"
    );
}
