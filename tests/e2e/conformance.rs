//! The conformance corpus (`tests/conformance/`, written by `scripts/gen/conformance.py`): for
//! every case, the real broker replays `input.pcap` with the case's `config.toml` (one worker,
//! `stop_when_idle`), and then
//! - every tool port's output equals `expected/<port>.pcap`, frame by frame, byte for byte;
//! - every counter of the exit summary equals `expected.json`'s `counters`: received, every
//!   outcome and malformed reason (those the expectation does not list are 0), every session,
//!   tool group, tool port and ingress row;
//! - tshark decodes every output without a malformed frame (a frame cut by the mirror source or a
//!   slice is handed to it with its full length as the record's original length, as a capture
//!   with a snap length: cut, not malformed).
//!
//! The expectation is the generator's, computed from what it built; nothing here derives it from
//! the broker. A mismatch names the case, the port, the frame, and the input frame it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Cases run side by side: each broker is mostly waiting for `stop_when_idle`.
const PARALLEL_CASES: usize = 3;

fn corpus_dir() -> PathBuf {
    repo_root().join("tests").join("conformance")
}

/// The case directories (those with an `expected.json`), sorted.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/conformance/")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.join("expected.json").is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_case_of_the_corpus_gives_the_expected_frames_and_counters() {
    let cases = cases();
    assert!(cases.len() >= 15, "the corpus has its cases: {cases:?}");
    let mut failures = Vec::new();
    for batch in cases.chunks(PARALLEL_CASES) {
        let handles: Vec<_> = batch
            .iter()
            .map(|case| {
                let case = case.clone();
                std::thread::spawn(move || run_case(&case))
            })
            .collect();
        for (case, handle) in batch.iter().zip(handles) {
            if let Err(panic) = handle.join() {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", case.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One case, start to end; panics with a message naming what differs.
fn run_case(case: &Path) {
    let name = case
        .file_name()
        .and_then(|n| n.to_str())
        .expect("case name")
        .to_owned();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).expect("read"))
            .unwrap_or_else(|e| panic!("case {name}: expected.json: {e}"));
    let scratch = Scratch::new(&format!("conformance-{name}"));
    let text = std::fs::read_to_string(case.join("config.toml")).expect("read config.toml");
    assert!(
        text.contains("@CASE@") && text.contains("@OUT@"),
        "case {name}: config.toml has its placeholders"
    );
    let config = scratch.write(
        "config.toml",
        &text
            .replace("@CASE@", &case.display().to_string())
            .replace("@OUT@", &scratch.dir.display().to_string()),
    );
    let run = run_broker(&config, &scratch.dir, Duration::from_secs(60));
    assert!(
        run.success,
        "case {name}: broker failed ({:?}):\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("1 worker(s) running"),
        "case {name}: one worker:\n{}",
        run.stderr
    );

    let inputs = expected["input"].as_array().expect("input");
    let ports = expected["ports"].as_object().expect("ports");
    for (port, frames) in ports {
        let frames = frames.as_array().expect("frames of a port");
        let want = read_pcap(&case.join("expected").join(format!("{port}.pcap")));
        assert_eq!(
            want.len(),
            frames.len(),
            "case {name}: expected/{port}.pcap and expected.json disagree"
        );
        let output = scratch.path(&format!("{port}.pcap"));
        let got = read_pcap(&output);
        compare_port(&name, port, &want, &got, frames, inputs);
        let wire_lens: Vec<usize> = frames
            .iter()
            .map(|f| f["wire_len"].as_u64().expect("wire_len") as usize)
            .collect();
        let decoded = tshark_frames(&with_original_lengths(&output, &got, &wire_lens), &[]);
        assert_eq!(
            decoded,
            got.len(),
            "case {name}, port {port}: tshark decodes every frame"
        );
    }
    compare_counters(&name, &expected["counters"], &run);
    // Every tool port of the summary is one the expectation speaks for.
    for row in run.summary["tool_ports"].as_array().expect("tool_ports") {
        let port = row["name"].as_str().expect("port name");
        assert!(
            ports.contains_key(port),
            "case {name}: port {port} has no expectation"
        );
    }
    drop(scratch);
}

/// Frame by frame; the message says which frame, where it came from and where the bytes differ.
fn compare_port(
    case: &str,
    port: &str,
    want: &[Vec<u8>],
    got: &[Vec<u8>],
    frames: &[Value],
    inputs: &[Value],
) {
    let describe = |i: usize| {
        let input = frames[i]["input"].as_u64().expect("input index") as usize;
        format!(
            "input frame {input}: {} -> {}",
            inputs[input]["what"], inputs[input]["fate"]
        )
    };
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            let at = w
                .iter()
                .zip(g)
                .position(|(a, b)| a != b)
                .unwrap_or(w.len().min(g.len()));
            let window =
                |f: &[u8]| hex(&f[at.saturating_sub(4).min(f.len())..(at + 12).min(f.len())]);
            panic!(
                "case {case}, port {port}, frame {i} ({}): expected {} bytes, got {}; first difference at byte {at}: \
                 expected …{}…, got …{}…",
                describe(i),
                w.len(),
                g.len(),
                window(w),
                window(g)
            );
        }
    }
    if got.len() > want.len() {
        panic!(
            "case {case}, port {port}: {} frames emitted, {} expected; frame {} is one too many: {}",
            got.len(),
            want.len(),
            want.len(),
            hex(&got[want.len()][..got[want.len()].len().min(64)])
        );
    }
    if got.len() < want.len() {
        panic!(
            "case {case}, port {port}: {} frames emitted, {} expected; frame {} is missing ({})",
            got.len(),
            want.len(),
            got.len(),
            describe(got.len())
        );
    }
}

/// The summary's counters against the expectation, every one.
fn compare_counters(case: &str, want: &Value, run: &BrokerRun) {
    let summary = &run.summary;
    for key in [
        "received",
        "received_bytes",
        "stopped_by",
        "mbufs_in_use_at_exit",
    ] {
        assert_eq!(summary[key], want[key], "case {case}: counter {key}");
    }
    // Outcomes: every row of the summary, by outcome or malformed reason; unlisted ones are 0.
    let listed = want["outcomes"].as_object().expect("outcomes");
    let mut seen = BTreeMap::new();
    for row in summary["outcomes"].as_array().expect("summary outcomes") {
        let label = row["reason"]
            .as_str()
            .or(row["outcome"].as_str())
            .expect("outcome label");
        let count = row["packets"].as_u64().expect("packets");
        let expected = listed.get(label).map_or(0, |v| v.as_u64().expect("count"));
        assert_eq!(
            count, expected,
            "case {case}: outcome {label}\n{}",
            run.stdout
        );
        seen.insert(label.to_owned(), count);
    }
    for label in listed.keys() {
        assert!(
            seen.contains_key(label),
            "case {case}: the summary has no outcome {label}"
        );
    }
    // Sessions, tool groups, tool ports, ingress: one row per name, every counter of the row the
    // expectation names.
    for (table, key) in [
        ("sessions", "sessions"),
        ("tool_groups", "tool_groups"),
        ("tool_ports", "tool_ports"),
        ("ingress", "ingress"),
    ] {
        let rows = summary[table]
            .as_array()
            .unwrap_or_else(|| panic!("summary {table}"));
        let wanted = want[key]
            .as_object()
            .unwrap_or_else(|| panic!("expected {key}"));
        assert_eq!(rows.len(), wanted.len(), "case {case}: rows of {table}");
        for (name, counters) in wanted {
            let row = rows
                .iter()
                .find(|r| r["name"] == name.as_str())
                .unwrap_or_else(|| panic!("case {case}: no {table} row {name} in the summary"));
            for (counter, value) in counters.as_object().expect("counters") {
                assert_eq!(
                    &row[counter], value,
                    "case {case}: {table} {name}: {counter}\n{}",
                    run.stdout
                );
            }
        }
    }
}

/// A copy of `output` whose records carry `wire_lens` as their original lengths, for tshark.
fn with_original_lengths(output: &Path, frames: &[Vec<u8>], wire_lens: &[usize]) -> PathBuf {
    let path = output.with_extension("decode.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let mut writer = pcap_file::pcap::PcapWriter::new(file).expect("pcap header");
    for (i, frame) in frames.iter().enumerate() {
        let original = wire_lens
            .get(i)
            .copied()
            .unwrap_or(frame.len())
            .max(frame.len());
        let packet = pcap_file::pcap::PcapPacket::new(
            Duration::from_micros(i as u64),
            original as u32,
            frame,
        );
        writer.write_packet(&packet).expect("write pcap record");
    }
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
