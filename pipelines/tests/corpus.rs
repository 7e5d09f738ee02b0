//! The fuzz targets' seed corpora replayed on stable (`fuzz/corpus/<target>/`, every file, through
//! the functions the `cargo fuzz` targets call), and the hostile capture packet by packet against
//! its sidecar's documented outcomes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipelines::counters::WorkerCounters;
use pipelines::fuzzing;
use pipelines::pipeline::Pipeline;
use pipelines::plan::{Plan, PortFacts};
use pipelines::testing::CollectSink;
use pipelines::{Outcome, PacketBuf, Reason, VecBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("pipelines/ has a parent")
        .to_path_buf()
}

/// Every file of `fuzz/corpus/<target>/`, sorted; at least `min` of them.
fn corpus(target: &str, min: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: {} files, expected at least {min}",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|path| (path.clone(), std::fs::read(&path).expect("read seed")))
        .collect()
}

/// Runs `target` on every file, naming the file that fails.
fn replay(target: &str, min: usize, run: fn(&[u8])) {
    for (path, data) in corpus(target, min) {
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("fuzz target {target} fails on {}", path.display());
        }
    }
}

#[test]
fn burst_corpus() {
    replay("burst", 100, fuzzing::burst);
}

#[test]
fn burst_split_corpus() {
    replay("burst_split", 5, fuzzing::burst_split);
}

#[test]
fn config_corpus() {
    replay("config", 5, fuzzing::config);
}

/// The seeds cover what they are meant to: every outcome of the pipeline is reached by the
/// `burst` corpus (so a fuzzer mutating it starts from every path).
#[test]
fn burst_corpus_reaches_every_outcome() {
    let mut seen = vec![0u64; Outcome::COUNT];
    let mut ports = 0;
    let mut copies_by_port = Vec::new();
    for (_, data) in corpus("burst", 100) {
        let input = fuzzing::decode(&data);
        let mut harness = fuzzing::Harness::new(input.flags);
        let mut received = fuzzing::Received::default();
        harness.run(0, &input.packets, &mut received);
        for outcome in Outcome::all() {
            seen[outcome.index()] += harness.counters.outcome_count(outcome);
        }
        ports = harness.plan.tool_ports;
        copies_by_port.resize(ports, 0u64);
        for (port, _, _) in &received.copies {
            copies_by_port[usize::from(*port)] += 1;
        }
    }
    // Every tool port, cabled or tunnel (each encapsulation), gets copies to check.
    assert!(ports > 0);
    assert!(
        copies_by_port.iter().all(|&n| n > 0),
        "copies by tool port: {copies_by_port:?}"
    );
    let missing: Vec<String> = Outcome::all()
        .filter(|o| seen[o.index()] == 0)
        .map(|o| o.to_string())
        .collect();
    assert!(missing.is_empty(), "outcomes no seed reaches: {missing:?}");
}

/// The seeds addressed to the ingress port itself (`scripts/gen/fuzzseeds.py`, `local-*`) are
/// each one frame that ends as outcome `control`, handed to the exception path.
#[test]
fn local_seeds_are_control() {
    let local: Vec<_> = corpus("burst", 100)
        .into_iter()
        .filter(|(path, _)| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("local-") && !n.contains("mixed"))
        })
        .collect();
    assert_eq!(local.len(), 4, "local seeds");
    for (path, data) in local {
        let input = fuzzing::decode(&data);
        let mut harness = fuzzing::Harness::new(input.flags);
        let mut received = fuzzing::Received::default();
        harness.run(0, &input.packets, &mut received);
        assert_eq!(
            harness.counters.outcome_count(Outcome::Control),
            1,
            "{}",
            path.display()
        );
        assert_eq!(received.punted.len(), 1, "{}", path.display());
    }
}

/// Classic little-endian microsecond pcap, as the generators write it.
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        data.get(..4),
        Some(&0xA1B2_C3D4u32.to_le_bytes()[..]),
        "pcap magic"
    );
    let mut frames = Vec::new();
    let mut offset = 24;
    while offset + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[offset + 8..offset + 12].try_into().unwrap()) as usize;
        frames.push(data[offset + 16..offset + 16 + caplen].to_vec());
        offset += 16 + caplen;
    }
    assert_eq!(offset, data.len(), "pcap ends with a whole record");
    frames
}

/// The broker config the hostile sidecar's expectations assume, one tool group, no slicing.
fn hostile_config(sidecar: &serde_json::Value) -> String {
    let c = &sidecar["config"];
    let list = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "[broker]\nname = \"hostile\"\n[[ingress]]\nname = \"in\"\ndevice = \"net_null0\"\n[decap]\n\
         allowed_sources = [{}]\nvxlan_ports = [{}]\ngeneve_ports = [{}]\n",
        list(&c["allowed_sources"]),
        list(&c["vxlan_ports"]),
        list(&c["geneve_ports"])
    );
    for s in c["sessions"].as_array().unwrap() {
        text += &format!(
            "[[session]]\nname = {}\nvni = {}\ntools = [\"ids\"]\n",
            s["name"], s["vni"]
        );
    }
    text + "[[tool_group]]\nname = \"ids\"\nports = [{ name = \"ids-1\", device = \"net_null1\" }]\n"
}

/// What the sidecar says a tool receives from packet `p` (`None`: nothing).
fn expected_delivery(
    p: &serde_json::Value,
    frame: &[u8],
    sidecar: &serde_json::Value,
) -> Option<Vec<u8>> {
    let d = p["delivered"].as_object()?;
    let offset = d["offset"].as_u64().unwrap() as usize;
    let len = d["len"].as_u64().unwrap() as usize;
    let mut out = Vec::new();
    if let Some(ethertype) = d["synthetic_ethertype"].as_u64() {
        let hex = |k: &str| sidecar["config"][k].as_str().unwrap().to_owned();
        for h in [hex("synthetic_destination"), hex("synthetic_source")] {
            out.extend((0..6).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()));
        }
        out.extend_from_slice(&(ethertype as u16).to_be_bytes());
    }
    out.extend_from_slice(&frame[offset..offset + len]);
    Some(out)
}

/// Each packet of `samples/hostile.pcap`, alone, in one segment and as 2048-byte mbufs: its
/// outcome is the one the sidecar documents, and what the tool gets is the sidecar's frame.
#[test]
fn hostile_capture_packet_by_packet() {
    let root = repo_root();
    let frames = read_pcap(&root.join("samples/hostile.pcap"));
    let sidecar: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("samples/hostile.pcap.json")).unwrap(),
    )
    .unwrap();
    let packets = sidecar["packets"].as_array().unwrap();
    assert_eq!(frames.len(), packets.len());
    let config = config::fixtures::config(&hostile_config(&sidecar));
    let compiled = Plan::build(
        &config,
        1,
        &PortFacts::default(),
        WorkerCounters::for_workers(&config, 1),
    );
    let mut mismatches = Vec::new();
    for segment in [usize::MAX, 2048] {
        let counters = Arc::new(WorkerCounters::new(&config));
        let plan = compiled.with_counters(Box::new([counters.clone()]));
        let mut pipeline = Pipeline::new(0, &plan, None);
        for (p, frame) in packets.iter().zip(&frames) {
            let before: Vec<u64> = Outcome::all().map(|o| counters.outcome_count(o)).collect();
            let buf = VecBuf::from_segments(frame.chunks(segment).map(<[u8]>::to_vec).collect());
            let mut sink = CollectSink::default();
            pipeline.run(&plan, 0, &mut [Some(buf)], &mut sink);
            let got: Vec<Outcome> = Outcome::all()
                .filter(|o| counters.outcome_count(*o) > before[o.index()])
                .collect();
            let want = match p["reason"].as_str() {
                Some(reason) => {
                    Outcome::Malformed(*Reason::ALL.iter().find(|r| r.label() == reason).unwrap())
                }
                None => Outcome::all().find(|o| o.label() == p["outcome"]).unwrap(),
            };
            let delivered: Vec<Vec<u8>> = sink.delivered.iter().map(|(_, b)| b.to_vec()).collect();
            let want_delivered: Vec<Vec<u8>> =
                expected_delivery(p, frame, &sidecar).into_iter().collect();
            if got != [want] || delivered != want_delivered {
                mismatches.push(format!(
                    "#{} {} ({}), segments of {segment}: outcome {got:?}, documented {want}; delivered {}",
                    p["index"],
                    p["kind"],
                    p["what"],
                    if delivered == want_delivered { "as documented" } else { "NOT as documented" }
                ));
            }
            if let (2048, Some((_, b))) = (segment, sink.delivered.first()) {
                // A jumbo frame stays a chain: delivered whole without being copied into one.
                assert_eq!(
                    b.segments() > 1,
                    b.pkt_len() > 2048,
                    "#{}: segments of the delivered copy",
                    p["index"]
                );
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} packets differ from the documentation:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
