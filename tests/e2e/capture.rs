//! Live capture and packet trace against a running broker (`--no-huge`, `net_pcap` replaying
//! the lab's capture forever, `net_null` analyzers): `broker capture` for each selector, the
//! pcapng read back by tshark (interface names, counts, snap length, `-w -` piped into
//! `tshark -r -`), the requests it refuses, a reader too slow for the traffic (drops counted,
//! the accounting still exact), and `broker trace` (what it says of each packet agrees with the
//! config: a filtered packet names the rule that rejected it).

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::metrics::lab_config;
use crate::running::{Running, free_address, http};
use crate::support::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lab on an endless replay with its endpoint at `address`; dedup's window short enough
/// that most packets are delivered (the replay loops every few milliseconds).
fn start(s: &Scratch, address: SocketAddr) -> Running {
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let text = lab_config(&capture, address).replace("window = \"50ms\"", "window = \"1ms\"");
    assert!(
        text.contains("window = \"1ms\""),
        "the lab's dedup window moved"
    );
    let config = s.write("lab.toml", &text);
    let mut running = Running::start(&config, &s.dir, &[]);
    running.wait_for_log("metrics and status on", Duration::from_secs(30));
    running
}

/// `broker capture <args> --address <address>` in `dir`.
fn capture(address: SocketAddr, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("capture")
        .args(args)
        .args(["--address", &address.to_string()])
        .current_dir(dir)
        .output()
        .expect("run broker capture")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A metric of `GET /metrics`, summed over its series.
fn metric(address: SocketAddr, name: &str) -> u64 {
    let (code, body) = http("GET", address, "/metrics");
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Polls `metric` (published once a second) until `wanted` holds; its last value either way.
fn metric_until(address: SocketAddr, name: &str, wanted: impl Fn(u64) -> bool) -> u64 {
    let started = Instant::now();
    loop {
        let value = metric(address, name);
        if wanted(value) || started.elapsed() > Duration::from_secs(30) {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn each_selector_captures_what_it_names_and_trace_shows_the_stages() {
    let s = Scratch::new("capture");
    let address = free_address();
    let running = start(&s, address);

    // A tool port: what it sends (group ids takes whole inner frames).
    let out = capture(
        address,
        &s.dir,
        &["--port", "ids-1", "-c", "50", "-w", "ids.pcapng"],
    );
    assert_ok(&out, "capture --port ids-1");
    assert!(
        text(&out.stderr).contains("50 packets written to ids.pcapng"),
        "{}",
        text(&out.stderr)
    );
    let ids = s.path("ids.pcapng");
    let rows = tshark_fields(
        &ids,
        None,
        &["frame.interface_name", "vxlan.vni", "ip.src"],
        &[],
    );
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r[0] == "ids-1"), "{rows:?}");
    assert!(
        rows.iter().all(|r| r[1].is_empty()),
        "inner frames, no tunnel: {rows:?}"
    );
    assert_eq!(tshark_frames(&ids, &[]), 50);
    let info = text(&Command::new("capinfos").arg(&ids).output().unwrap().stdout);
    assert!(
        info.contains("broker lab: what tool port ids-1 sends"),
        "{info}"
    );
    assert!(info.contains("Name = ids-1"), "{info}");

    // The recorder's port: every copy cut to the group's 128-byte slice.
    let out = capture(
        address,
        &s.dir,
        &["--port", "recorder-1", "-c", "200", "-w", "rec.pcapng"],
    );
    assert_ok(&out, "capture --port recorder-1");
    let rows = tshark_fields(&s.path("rec.pcapng"), None, &["frame.len"], &[]);
    assert_eq!(rows.len(), 200);
    let lengths: Vec<u32> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(lengths.iter().all(|&l| l <= 128), "{lengths:?}");
    assert!(
        lengths.contains(&128),
        "some frames are longer than the slice"
    );

    // An ingress port, as received, cut to the snap length.
    let out = capture(
        address,
        &s.dir,
        &[
            "--ingress",
            "mirror0",
            "-c",
            "40",
            "-s",
            "60",
            "-w",
            "in.pcapng",
        ],
    );
    assert_ok(&out, "capture --ingress mirror0");
    let rows = tshark_fields(
        &s.path("in.pcapng"),
        None,
        &[
            "frame.interface_name",
            "frame.len",
            "frame.cap_len",
            "udp.dstport",
        ],
        &[],
    );
    assert_eq!(rows.len(), 40);
    for row in &rows {
        assert_eq!(row[0], "mirror0");
        let (len, cap): (u32, u32) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        assert_eq!(cap, len.min(60), "{row:?}");
        assert_eq!(
            row[3], "4789",
            "the mirrored frame, its VXLAN tunnel and all"
        );
    }
    assert!(rows.iter().any(|r| r[1].parse::<u32>().unwrap() > 60));

    // An outcome, written to standard output and read by tshark from its standard input.
    let mut broker_capture = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["capture", "--outcome", "filtered", "-c", "10", "-w", "-"])
        .args(["--address", &address.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run broker capture");
    let tshark = Command::new("tshark")
        .args(["-r", "-", "-T", "fields", "-E", "occurrence=l"])
        .args([
            "-e",
            "frame.interface_name",
            "-e",
            "frame.comment",
            "-e",
            "vxlan.vni",
        ])
        .args(["-e", "ip.proto", "-e", "udp.dstport"])
        .stdin(Stdio::from(broker_capture.stdout.take().unwrap()))
        .output()
        .expect("run tshark -r -");
    let capture_status = broker_capture.wait().unwrap();
    assert!(capture_status.success());
    assert!(tshark.status.success(), "{}", text(&tshark.stderr));
    let rows: Vec<Vec<String>> = text(&tshark.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 10, "{rows:?}");
    for row in &rows {
        assert_eq!(
            (row[0].as_str(), row[1].as_str()),
            ("mirror0", "filtered"),
            "{row:?}"
        );
        assert_eq!(row[2], "101", "only session web has a filter: {row:?}");
        // The filter accepts TCP and DNS queries: what it rejects is ICMP or UDP.
        assert!(row[3] == "1" || row[3] == "17", "{row:?}");
    }

    // A capture bounded by time alone.
    let started = Instant::now();
    let out = capture(
        address,
        &s.dir,
        &[
            "--outcome",
            "malformed",
            "--duration",
            "1s",
            "-w",
            "none.pcapng",
        ],
    );
    assert_ok(&out, "capture --duration");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        text(&out.stderr).contains("0 packets written"),
        "the lab sends nothing malformed"
    );
    assert_eq!(tshark_frames(&s.path("none.pcapng"), &[]), 0);

    // Refused, with the reason, and a non-zero exit.
    for (args, reason) in [
        (
            &["--port", "nope", "-w", "x"][..],
            "no tool port \"nope\"; the tool ports are: ids-1, ids-2, recorder-1",
        ),
        (
            &["--ingress", "mirror1", "-w", "x"][..],
            "no ingress port \"mirror1\"",
        ),
        (
            &["--outcome", "filterd", "-w", "x"][..],
            "no outcome \"filterd\"",
        ),
        (
            &["--outcome", "malformed:nope", "-w", "x"][..],
            "no malformed reason \"nope\"",
        ),
        (
            &["--port", "ids-1", "-c", "0", "-w", "x"][..],
            "count=\"0\"",
        ),
        (
            &["--port", "ids-1", "-s", "0", "-w", "x"][..],
            "snaplen=\"0\"",
        ),
        (
            &["--port", "ids-1", "-s", "300000", "-w", "x"][..],
            "from 1 to 262144",
        ),
    ] {
        let out = capture(address, &s.dir, args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("400") && stderr.contains(reason),
            "{args:?}: {stderr}"
        );
    }
    let out = capture(address, &s.dir, &["-w", "x"]);
    assert!(!out.status.success(), "no selector");
    let out = capture(
        address,
        &s.dir,
        &["--port", "ids-1", "--ingress", "mirror0", "-w", "x"],
    );
    assert!(!out.status.success(), "two selectors");

    // One capture at a time: a second one is refused while the first runs.
    let mut first = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args([
            "capture",
            "--ingress",
            "mirror0",
            "--duration",
            "3s",
            "-s",
            "64",
            "-w",
            "first.pcapng",
        ])
        .args(["--address", &address.to_string()])
        .current_dir(&s.dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The second capture of mirror0 in the log (the first ended above).
    let started = Instant::now();
    while running
        .log()
        .matches("capture started: broker lab: what ingress port mirror0")
        .count()
        < 2
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            running.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = capture(
        address,
        &s.dir,
        &["--port", "ids-1", "-c", "1", "-w", "second.pcapng"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("409"), "{}", text(&out.stderr));
    assert!(first.wait().unwrap().success());
    assert!(tshark_frames(&s.path("first.pcapng"), &[]) > 0);

    // The trace: 2000 packets as JSON, each line one packet.
    let out = running.cli(&[
        "trace",
        "-c",
        "2000",
        "--json",
        "--address",
        &address.to_string(),
    ]);
    assert_ok(&out, "trace --json");
    let packets: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(packets.len(), 2000);
    let mut seen = std::collections::BTreeMap::new();
    for p in &packets {
        let outcome = p["outcome"].as_str().unwrap();
        *seen.entry(outcome.to_owned()).or_insert(0) += 1;
        assert_eq!(p["ingress"], "mirror0");
        assert_eq!(p["decap"]["result"], "tunnelled", "{p}");
        assert_eq!(p["decap"]["tunnels"][0]["kind"], "vxlan", "{p}");
        assert!(p["decap"]["stripped"].as_u64().unwrap() >= 50, "{p}");
        let vni = p["vni"].as_u64().unwrap();
        let Some(session) = p["session"].as_str() else {
            assert_eq!(outcome, "unknown_session", "{p}");
            continue;
        };
        assert_eq!(
            session,
            match vni {
                101 => "web",
                102 => "db",
                103 => "edge",
                other => panic!("vni {other}"),
            }
        );
        let protocol = p["flow"]["protocol"].as_str().unwrap_or("none");
        // What the filter said, and why: web's rules by number.
        match (session, &p["filter"]) {
            ("web", filter) => {
                assert_eq!(filter["name"], "web-filter");
                let expected = match (
                    protocol,
                    p["direction"].as_str(),
                    p["flow"]["destination_port"].as_u64(),
                ) {
                    ("tcp", _, _) => (Some(100), "accept"),
                    ("udp", Some("egress"), Some(53)) => (Some(200), "accept"),
                    ("icmp", _, _) => (Some(300), "reject"),
                    _ => (None, "reject"),
                };
                assert_eq!(
                    (filter["rule"].as_u64(), filter["action"].as_str().unwrap()),
                    expected,
                    "{p}"
                );
                if expected.1 == "reject" {
                    assert_eq!(outcome, "filtered", "{p}");
                    assert!(p["groups"].as_array().unwrap().is_empty());
                }
            }
            (_, filter) => assert!(filter.is_null(), "{p}"),
        }
        if outcome == "delivered" {
            let groups = p["groups"].as_array().unwrap();
            assert!(!groups.is_empty(), "{p}");
            for g in groups.iter().filter(|g| g["copy"] == "queued") {
                assert_eq!(g["tx"], "sent", "net_null takes everything: {p}");
                assert!(g["port"].is_string(), "{p}");
                if g["name"] == "recorder" {
                    assert!(g["length"].as_u64().unwrap() <= 128, "{p}");
                }
            }
            assert!(groups.iter().any(|g| g["copy"] == "queued"), "{p}");
        }
        if outcome == "duplicate" {
            let groups = p["groups"].as_array().unwrap();
            assert!(groups.iter().all(|g| g["dedup"] == "duplicate"), "{p}");
        }
    }
    for outcome in ["delivered", "filtered"] {
        assert!(
            seen.get(outcome).is_some_and(|&n| n > 0),
            "no {outcome} packet traced: {seen:?}"
        );
    }

    // The text form, and the trace's refusals.
    let out = running.cli(&[
        "trace",
        "-c",
        "3",
        "--ingress",
        "mirror0",
        "--address",
        &address.to_string(),
    ]);
    assert_ok(&out, "trace");
    let printed = text(&out.stdout);
    assert_eq!(
        printed.lines().filter(|l| l.starts_with("packet ")).count(),
        3,
        "{printed}"
    );
    assert!(printed.contains("  decap      vxlan vni "), "{printed}");
    assert!(printed.contains("  outcome    "), "{printed}");
    assert!(text(&out.stderr).contains("3 packets traced"));
    let out = running.cli(&[
        "trace",
        "--ingress",
        "nope",
        "--address",
        &address.to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no ingress port \"nope\""),
        "{}",
        text(&out.stderr)
    );
    let out = running.cli(&["trace", "-c", "20000", "--address", &address.to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("from 1 to 10000"),
        "{}",
        text(&out.stderr)
    );

    // Captured packets are counted; the broker's accounting is exact.
    let least = 50 + 200 + 40 + 10;
    let captured = metric_until(address, "broker_worker_captured_packets_total", |v| {
        v >= least
    });
    assert!(captured >= least, "{captured} copies counted");
    let ended = running.stop(Duration::from_secs(20));
    ended.assert_exact();
}

#[test]
fn a_slow_reader_loses_copies_counted_and_the_broker_loses_nothing() {
    let s = Scratch::new("capture-slow");
    let address = free_address();
    let running = start(&s, address);
    // Standard output is a pipe nobody reads for a while: the CLI blocks, then the broker's
    // socket, then every buffer of the capture fills and the workers count what they cannot
    // copy. The traffic goes on.
    let mut slow = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["capture", "--ingress", "mirror0", "-w", "-"])
        .args(["--address", &address.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run broker capture");
    let mut pipe = slow.stdout.take().unwrap();
    let dropped = metric_until(
        address,
        "broker_worker_capture_dropped_packets_total",
        |v| v > 0,
    );
    assert!(dropped > 0, "a reader this slow loses copies");
    // Read now, and ask the capture to end (Ctrl-C): it ends properly, its drops in its
    // statistics block.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let sent = Command::new("kill")
        .args(["-s", "INT", &slow.id().to_string()])
        .status();
    assert!(sent.is_ok_and(|s| s.success()));
    let status = slow.wait().unwrap();
    let mut stderr = String::new();
    slow.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let bytes = reader.join().unwrap();
    let file = s.write("slow.pcapng", "");
    std::fs::write(&file, &bytes).unwrap();
    let written = tshark_frames(&file, &[]) as u64;
    assert!(written > 0);
    assert!(
        stderr.contains(&format!("{written} packets written to standard output; "))
            && stderr.contains(" selected but not copied (the capture's buffers were full"),
        "{stderr}"
    );
    let info = text(&Command::new("capinfos").arg(&file).output().unwrap().stdout);
    assert!(info.contains("Number of stat entries = 1"), "{info}");
    // The capture was the broker's only one: its counters are this capture's, exactly. Every
    // copy handed to the reader is in the file; every one that found no buffer is counted, in
    // the metric and in the file's statistics (which the CLI reports).
    let reported = number_after(&stderr, "standard output; ").expect("the drops reported");
    assert!(
        reported >= dropped,
        "{reported} < {dropped} seen while it ran"
    );
    let counted = metric_until(
        address,
        "broker_worker_capture_dropped_packets_total",
        |v| v == reported,
    );
    assert_eq!(
        counted, reported,
        "drops: the metric against the file's statistics"
    );
    let captured = metric_until(address, "broker_worker_captured_packets_total", |v| {
        v == written
    });
    assert_eq!(captured, written, "copies: the metric against the file");
    let ended = running.stop(Duration::from_secs(20));
    ended.assert_exact();
}
