//! Suricata, set up as for AWS Traffic Mirroring (its defaults: VXLAN on UDP 4789), reads each
//! analyzer's capture of the broker's copies (`suricata -r`) and finds the same flows as in the
//! mirrored input: every connection with its application protocol and its packet and byte
//! counts each way, at exactly one analyzer. Needs Suricata (`scripts/install-deps.sh
//! --suricata`, from Debian's bookworm-backports); without it the test says loudly that it
//! skips, unless `BROKER_TESTS_REQUIRE_SURICATA=1` (set by `scripts/test.sh --suricata`) makes
//! that a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::scenario::sample;
use super::traffic::Middle;
use super::vxlan::three_analyzers;

/// A Suricata flow record, without its timestamps and ids.
type FlowRecord = BTreeMap<&'static str, String>;

/// Whether Suricata can run here; panics when it cannot but the run asked for it.
fn suricata_available() -> bool {
    let ok = Command::new("suricata")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let message = "suricata is not installed: the Suricata test needs it \
                       (scripts/install-deps.sh --suricata installs it from bookworm-backports)";
        assert!(
            std::env::var("BROKER_TESTS_REQUIRE_SURICATA").as_deref() != Ok("1"),
            "{message}, and BROKER_TESTS_REQUIRE_SURICATA=1 requires it"
        );
        eprintln!("\n!!!!!!!!!! SKIPPED: {message}\n");
    }
    ok
}

/// Whether an address belongs to the lab itself (its hosts, link-local, multicast): flows
/// between them are the lab's own traffic (neighbour discovery), not mirrored ones.
fn lab_address(text: &str) -> bool {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.octets()[..2] == [10, 77] || a.is_multicast(),
        Ok(IpAddr::V6(a)) => {
            let s = a.segments();
            (s[0] == 0xfd00 && s[1] == 0x77) || s[0] & 0xffc0 == 0xfe80 || a.is_multicast()
        }
        Err(_) => false,
    }
}

/// The flows Suricata logs for `pcap`: the mirrored connections, not the tunnels carrying them
/// (UDP to 4789) nor the lab's own traffic.
fn suricata_flows(pcap: &Path, log_dir: &Path) -> BTreeSet<FlowRecord> {
    std::fs::create_dir_all(log_dir).unwrap();
    let out = Command::new("suricata")
        .arg("-r")
        .arg(pcap)
        .arg("-l")
        .arg(log_dir)
        // No rules (flows only), no checksum checks (a mirror copy's are the source's), one
        // thread.
        .args(["-S", "/dev/null", "-k", "none", "--runmode", "single"])
        .output()
        .expect("run suricata");
    assert!(
        out.status.success(),
        "suricata -r {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let eve = std::fs::read_to_string(log_dir.join("eve.json")).expect("suricata's eve.json");
    eve.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("an eve.json record"))
        .filter(|e| e["event_type"] == "flow")
        .filter(|e| !(e["proto"] == "UDP" && e["dest_port"] == 4789))
        .filter(|e| {
            !lab_address(e["src_ip"].as_str().unwrap_or(""))
                && !lab_address(e["dest_ip"].as_str().unwrap_or(""))
        })
        .map(|e| {
            let field = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let mut record = FlowRecord::new();
            for key in [
                "proto",
                "src_ip",
                "src_port",
                "dest_ip",
                "dest_port",
                "vlan",
                "app_proto",
            ] {
                record.insert(key, field(&e[key]));
            }
            for key in [
                "pkts_toserver",
                "pkts_toclient",
                "bytes_toserver",
                "bytes_toclient",
            ] {
                record.insert(key, field(&e["flow"][key]));
            }
            record
        })
        .collect()
}

fn same_flows_as_the_input(tag: &str, middle: Middle) {
    if !suricata_available() {
        return;
    }
    three_analyzers(tag, middle, |run, got| {
        let input = suricata_flows(&sample(), &run.scratch.path("suricata-input"));
        assert!(
            input.len() > 30,
            "Suricata finds the sample's flows: {input:?}"
        );
        let mut union = BTreeSet::new();
        for (analyzer, frames) in got {
            let flows = suricata_flows(
                &frames.outer_pcap,
                &run.scratch.path(&format!("suricata-{analyzer}")),
            );
            assert!(!flows.is_empty(), "Suricata finds flows at {analyzer}");
            for flow in flows {
                assert!(
                    union.insert(flow.clone()),
                    "flow {flow:?} at {analyzer} and another analyzer"
                );
            }
        }
        let missing: Vec<_> = input.difference(&union).collect();
        let extra: Vec<_> = union.difference(&input).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "Suricata's flows at the analyzers differ from the input's.\nonly in the input: \
             {missing:?}\nonly at the analyzers: {extra:?}"
        );
        eprintln!(
            "Suricata: the same {} flows at the analyzers as in the input",
            input.len()
        );
    });
}

#[test]
fn suricata_finds_the_same_flows_as_in_the_mirrored_input() {
    same_flows_as_the_input("sur", Middle::Broker);
}

#[test]
fn harness_suricata_finds_the_same_flows_kernel_stand_in() {
    same_flows_as_the_input("surk", Middle::StandIn);
}
