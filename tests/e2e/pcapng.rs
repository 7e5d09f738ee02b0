//! pcapng inputs (what tshark and dumpcap write by default) work wherever pcap inputs do: the same
//! capture, converted by Wireshark's `editcap -F pcapng`, gives the same outputs and counts when
//! replayed once, and with `infinite_rx=1` the mbuf pool is sized for the packets the replay
//! caches (before, a pcapng counted 0 packets and a large one failed with "Not enough mbufs").
//! The captures are the shipped sample repeated by `mergecap -a`: no generator needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Copies of `samples/aws-mirror.pcap` (600 packets) in the test capture.
const COPIES: usize = 20;
/// Packets in the test capture: more than the whole pool of this config when the replay is not
/// counted (8191 mbufs), so an uncounted replay cannot start.
const PACKETS: usize = 600 * COPIES;

/// The shipped sample, `COPIES` times over, as a legacy pcap (mergecap, from Wireshark).
fn repeated_sample(s: &Scratch) -> PathBuf {
    let out = s.path("mirror.pcap");
    let sample = repo_root().join("samples/aws-mirror.pcap");
    let status = Command::new("mergecap")
        .arg("-a")
        .arg("-F")
        .arg("pcap")
        .arg("-w")
        .arg(&out)
        .args(std::iter::repeat_n(&sample, COPIES))
        .status()
        .expect("run mergecap (Debian package wireshark-common, installed with tshark)");
    assert!(status.success(), "mergecap failed");
    assert_eq!(read_pcap(&out).len(), PACKETS);
    out
}

/// `pcap` converted to pcapng by editcap (Wireshark's own converter, independent of the broker).
fn to_pcapng(pcap: &Path) -> PathBuf {
    let out = pcap.with_extension("pcapng");
    let status = Command::new("editcap")
        .arg("-F")
        .arg("pcapng")
        .arg(pcap)
        .arg(&out)
        .status()
        .expect("run editcap (Debian package wireshark-common, installed with tshark)");
    assert!(status.success(), "editcap -F pcapng failed");
    let bytes = std::fs::read(&out).expect("read the pcapng");
    assert_eq!(
        bytes.get(..4),
        Some(&[0x0A, 0x0D, 0x0D, 0x0A][..]),
        "editcap wrote a pcapng Section Header Block"
    );
    out
}

fn config(
    s: &Scratch,
    name: &str,
    input: &Path,
    infinite: bool,
    ports: &[(&str, String)],
) -> PathBuf {
    let ports: Vec<String> = ports
        .iter()
        .map(|(name, device)| format!("{{ name = \"{name}\", device = \"{device}\" }}"))
        .collect();
    s.write(
        &format!("{name}.toml"),
        &format!(
            r#"
[broker]
name = "e2e-pcapng"
stop_when_idle = "1s"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={}{}"
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
# The sample's three mirror sessions (VNIs 101-103) in one.
default_session = "mirrored"
[[session]]
name = "mirrored"
tools = ["ids"]
[[tool_group]]
name = "ids"
balance = "source"
ports = [{}]
"#,
            input.display(),
            if infinite { ",infinite_rx=1" } else { "" },
            ports.join(", ")
        ),
    )
}

#[test]
fn a_pcapng_input_gives_the_outputs_of_the_same_pcap_once_and_endlessly() {
    let s = Scratch::new("pcapng");
    let pcap = repeated_sample(&s);
    let pcapng = to_pcapng(&pcap);

    // Replayed once: the same frames on the same ports, the same counts.
    let mut runs = Vec::new();
    for (format, input) in [("pcap", &pcap), ("pcapng", &pcapng)] {
        let ports: Vec<(&str, String)> = ["ids-1", "ids-2"]
            .into_iter()
            .enumerate()
            .map(|(i, port)| {
                let out = s.path(&format!("{format}-{port}.pcap"));
                (port, format!("net_pcap{},tx_pcap={}", i + 1, out.display()))
            })
            .collect();
        let config = config(&s, &format!("once-{format}"), input, false, &ports);
        let run = run_broker(&config, &s.dir, Duration::from_secs(60));
        run.assert_clean();
        assert_eq!(
            run.received(),
            PACKETS as u64,
            "{format}: every packet read"
        );
        let outputs: Vec<Vec<Vec<u8>>> = ["ids-1", "ids-2"]
            .iter()
            .map(|port| read_pcap(&s.path(&format!("{format}-{port}.pcap"))))
            .collect();
        runs.push((run, outputs));
    }
    let (pcap_run, pcap_out) = &runs[0];
    let (pcapng_run, pcapng_out) = &runs[1];
    assert_eq!(pcapng_run.summary["outcomes"], pcap_run.summary["outcomes"]);
    assert_eq!(
        pcapng_run.summary["tool_ports"],
        pcap_run.summary["tool_ports"]
    );
    assert_eq!(
        pcapng_out, pcap_out,
        "the same frames, port by port, in order"
    );
    assert_eq!(
        pcap_out.iter().map(Vec::len).sum::<usize>(),
        PACKETS,
        "every mirrored frame delivered once"
    );

    // Replayed endlessly: the pool counts the packets the replay caches, in either format, and
    // the broker runs until stopped.
    for (format, input) in [("pcap", &pcap), ("pcapng", &pcapng)] {
        let ports = [
            ("ids-1", "net_null1".to_string()),
            ("ids-2", "net_null2".to_string()),
        ];
        let config = config(&s, &format!("endless-{format}"), input, true, &ports);
        let run = run_broker_with_signals(
            &config,
            &s.dir,
            Duration::from_secs(60),
            &[(Duration::from_secs(4), "TERM")],
        );
        run.assert_clean();
        assert!(
            run.stderr.contains(&format!("pcap replay {PACKETS}")),
            "{format}: the pool counts the replayed packets:\n{}",
            run.stderr
        );
        assert_eq!(run.summary["stopped_by"], "signal", "{format}");
        assert!(
            run.received() > PACKETS as u64,
            "{format}: the capture was replayed more than once: {}",
            run.received()
        );
        assert_eq!(run.outcome("delivered"), run.received(), "{format}");
    }
}
