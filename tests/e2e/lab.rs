//! The lab appliance end to end: AWS VXLAN mirrors on two RX queues, two workers, three analyzer
//! ports of one tool group balanced by mirror source, each a one-queue `net_pcap` port that the
//! two workers share.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::support::*;

/// A mirror source: the mirrored interface's address and the session's VNI.
type Source = (IpAddr, u32);

#[test]
fn two_queues_two_workers_deliver_every_inner_frame_once_in_order_sticky_by_source() {
    let s = Scratch::new("lab");
    let inputs = generate(&s.path("mirror.pcap"), "lab", Some(2), &[]);
    let ports = ["ids-1", "ids-2", "ids-3"];
    let tool_ports: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "{{ name = \"{name}\", device = \"net_pcap{},tx_pcap={}\" }}",
                i + 1,
                s.path(&format!("{name}.pcap")).display()
            )
        })
        .collect();
    let config = s.write(
        "lab.toml",
        &format!(
            r#"
[broker]
name = "e2e-lab"
stop_when_idle = "1s"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[workers]
lcores = "auto"
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},rx_pcap={}"
queues = 2
[decap]
allowed_sources = ["10.0.0.0/8"]
[[session]]
name = "web"
vni = 101
tools = ["ids"]
[[session]]
name = "db"
vni = 102
tools = ["ids"]
[[session]]
name = "edge"
vni = 103
tools = ["ids"]
[[tool_group]]
name = "ids"
balance = "source"
ports = [{}]
"#,
            inputs[0].display(),
            inputs[1].display(),
            tool_ports.join(", ")
        ),
    );
    let run = run_broker(&config, &s.dir, Duration::from_secs(60));
    run.assert_clean();
    assert!(
        run.stderr.contains("2 worker(s) running"),
        "two workers:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("shared by 2 workers"),
        "one-queue tool ports shared:\n{}",
        run.stderr
    );

    // What went in, decoded by the test: per input file, in order.
    let mut expected = Vec::new();
    let mut per_file = Vec::new();
    for input in &inputs {
        let decoded: Vec<Mirrored> = read_pcap(input)
            .iter()
            .map(|f| decode_mirror(f).expect("every sample frame is a VXLAN mirror"))
            .collect();
        expected.extend(decoded.iter().map(|m| m.inner.clone()));
        per_file.push(decoded);
    }
    let total = expected.len() as u64;
    assert!(total > 500, "the lab capture has hundreds of frames");
    assert_eq!(run.received(), total);
    assert_eq!(run.outcome("delivered"), total);

    // What came out, per port; tshark decodes every frame cleanly.
    let outputs: Vec<Vec<Vec<u8>>> = ports
        .iter()
        .map(|p| read_pcap(&s.path(&format!("{p}.pcap"))))
        .collect();
    for (name, frames) in ports.iter().zip(&outputs) {
        assert_eq!(
            tshark_frames(&s.path(&format!("{name}.pcap")), &[]),
            frames.len()
        );
        assert_eq!(run.port(name)["transmitted"], frames.len() as u64);
    }

    // Nothing lost, nothing invented.
    let delivered = multiset(outputs.iter().flatten().cloned());
    assert_eq!(
        delivered,
        multiset(expected.clone()),
        "the outputs hold exactly the inner frames of the input"
    );

    // Each mirror source on exactly one port. Frames mirrored at both ends are byte-identical
    // under two sources: attribute only frames that one source alone sent.
    let mut sources_of: HashMap<&[u8], HashSet<Source>> = HashMap::new();
    for m in per_file.iter().flatten() {
        sources_of
            .entry(&m.inner)
            .or_default()
            .insert((m.mirror_source, m.vni));
    }
    let mut port_of_source: HashMap<Source, HashSet<usize>> = HashMap::new();
    for (port, frames) in outputs.iter().enumerate() {
        for f in frames {
            let sources = &sources_of[f.as_slice()];
            if sources.len() == 1 {
                port_of_source
                    .entry(*sources.iter().next().unwrap())
                    .or_default()
                    .insert(port);
            }
        }
    }
    // A source whose frames were all mirrored at both ends too (the lab's 10.0.1.11) is placed
    // by elimination: the copies of such a frame are on its sources' ports, one copy each.
    let mut where_frame: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (port, frames) in outputs.iter().enumerate() {
        for f in frames {
            where_frame.entry(f.as_slice()).or_default().push(port);
        }
    }
    for (frame, sources) in &sources_of {
        let unplaced: Vec<_> = sources
            .iter()
            .filter(|s| !port_of_source.contains_key(*s))
            .collect();
        if let [source] = unplaced.as_slice() {
            let mut ports = where_frame[frame].clone();
            for placed in sources.iter().filter(|s| port_of_source.contains_key(*s)) {
                let port = port_of_source[placed].iter().next().copied().unwrap();
                let i = ports
                    .iter()
                    .position(|&p| p == port)
                    .expect("a copy on each source's port");
                ports.remove(i);
            }
            port_of_source.entry(**source).or_default().extend(ports);
        }
    }
    let all_sources: HashSet<Source> = sources_of.values().flatten().copied().collect();
    assert_eq!(all_sources.len(), 4, "the lab has four mirror sources");
    assert_eq!(
        port_of_source.len(),
        4,
        "every source placed: {port_of_source:?}"
    );
    for (source, ports) in &port_of_source {
        assert_eq!(
            ports.len(),
            1,
            "mirror source {source:?} reached ports {ports:?}"
        );
    }

    // Per-flow order: for every (mirror source, inner flow) that only one source sent, its frames
    // leave its port in the order they arrived.
    for decoded in &per_file {
        let mut flows: HashMap<(Source, InnerFlow), Vec<&[u8]>> = HashMap::new();
        for m in decoded {
            if sources_of[m.inner.as_slice()].len() == 1 {
                if let Some(flow) = inner_flow(&m.inner) {
                    flows
                        .entry(((m.mirror_source, m.vni), flow))
                        .or_default()
                        .push(&m.inner);
                }
            }
        }
        for ((source, flow), sent) in flows {
            let port = *port_of_source[&source].iter().next().unwrap();
            let wanted: HashSet<&[u8]> = sent.iter().copied().collect();
            let received: Vec<&[u8]> = outputs[port]
                .iter()
                .map(Vec::as_slice)
                .filter(|f| wanted.contains(f))
                .collect();
            assert_eq!(received, sent, "order of {flow:?} from {source:?}");
        }
    }
}

/// SIGTERM (and SIGINT) stop a broker that would otherwise run forever: it drains, prints the
/// summary and exits 0, with the accounting identities holding and no mbuf left out.
#[test]
fn a_signal_drains_and_exits_cleanly() {
    for signal in ["TERM", "INT"] {
        let s = Scratch::new(&format!("signal-{signal}"));
        let input = generate(&s.path("mirror.pcap"), "lab", None, &["--packets", "200"]);
        let config = s.write(
            "forever.toml",
            &format!(
                r#"
[broker]
name = "e2e-signal"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},infinite_rx=1"
[[session]]
name = "web"
vni = 101
tools = ["ids"]
[[tool_group]]
name = "ids"
ports = [{{ name = "ids-1", device = "net_null0" }}]
"#,
                input[0].display()
            ),
        );
        let run = run_broker_with_signals(
            &config,
            &s.dir,
            Duration::from_secs(60),
            &[(Duration::from_secs(4), signal)],
        );
        run.assert_clean();
        assert_eq!(run.summary["stopped_by"], "signal");
        assert!(
            run.received() > 1000,
            "infinite_rx replays the capture: {}",
            run.received()
        );
        assert!(run.outcome("delivered") > 0);
        assert!(
            run.stdout
                .contains("accounting: every packet has exactly one outcome"),
            "{}",
            run.stdout
        );
    }
}
