//! Both ends mirrored, two RX queues, two workers: de-duplication shared between the workers,
//! an AWS-style filter with directions, and two tool groups with different slicing and balance.
//!
//! `mirrorgen.py both-ends --split 2` mirrors every packet at both ends of its connection (ENIs
//! A, B on one subnet; C behind a transit gateway, so its copies have a TTL one lower and other
//! MACs) and puts the two copies of each packet in different files: two RX queues, so the copies
//! meet only in the shared dedup table. Each end is its own session, whose `source_ips` give the
//! copy a direction: the copy taken at the sender is egress, the one taken at the receiver
//! ingress, so the filter may accept one copy of a packet, both, or none.
//!
//! The expectation is the test's own: it decodes the input (`decode_mirror`, `inner_flow`),
//! groups the copies of one packet by their normalised L3 bytes (TTL/hop limit and IPv4 checksum
//! blanked, as the dedup key documents), applies the filter below to each copy, and cross-checks
//! both against the generator's sidecar (`direction`, `second_copy`, `copy_of`). Which of two
//! accepted copies wins is a race between the workers, so the test checks that exactly one of
//! them reached each group, never which.
//!
//! The second test models an ingress with `rss = "inner"`: `--split-by inner` puts both copies of
//! a packet and both directions of a connection in one file (one RX queue, one worker), as a NIC
//! hashing the inner headers with a symmetric key does. There is no race left: the duplicate count
//! is exact, and every tool port receives each connection in exactly its input order. The order
//! check is shown to see a swap of two frames; fed a split by outer headers instead, it fails on
//! every run seen (tens of inversions), but by timing, so that is not a test here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The recorder's slice.
const SLICE: usize = 96;
const IDS_PORTS: [&str; 2] = ["ids-1", "ids-2"];
const RECORDER: &str = "recorder-1";

/// The filter every session uses, as config text; [`policy`] is the same in code.
const POLICY: &str = r#"
[[filter]]
name = "policy"
default = "reject"

[[filter.rule]]
number = 100
action = "reject"
protocol = "icmp"
description = "no IPv4 pings"

[[filter.rule]]
number = 200
action = "accept"
direction = "egress"
protocol = "tcp"
dst_ports = "8080"
description = "HTTP requests leaving the client"

[[filter.rule]]
number = 210
action = "accept"
direction = "egress"
protocol = "tcp"
dst_ports = "443"
description = "TLS leaving the client"

[[filter.rule]]
number = 300
action = "accept"
direction = "ingress"
description = "everything that enters a mirrored interface"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// [`POLICY`]: first match by rule number, else reject. Every packet of this profile has a
/// direction (each copy is taken at one of its own ends).
fn policy(flow: &InnerFlow, direction: Direction) -> bool {
    const ICMP: u8 = 1;
    const TCP: u8 = 6;
    if flow.protocol == ICMP {
        return false;
    }
    if direction == Direction::Egress
        && flow.protocol == TCP
        && (flow.dst_port == 8080 || flow.dst_port == 443)
    {
        return true;
    }
    direction == Direction::Ingress
}

/// One mirrored copy of the input.
#[derive(Debug)]
struct Copy {
    /// Input file (RX queue) and position in it.
    file: usize,
    position: usize,
    /// Position in the capture before it was split (the sidecar's `index`).
    index: u64,
    session: String,
    inner: Vec<u8>,
    flow: InnerFlow,
    accepted: bool,
}

/// The session of a VNI: its name and the mirrored interface's addresses.
struct SessionSpec {
    name: String,
    vni: u64,
    source_ips: Vec<IpAddr>,
}

fn read_sidecar(input: &Path) -> Value {
    let path = PathBuf::from(format!("{}.json", input.display()));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read sidecar"))
        .expect("sidecar is JSON")
}

/// Decodes the input files; cross-checks directions and copy pairs with the sidecars. Returns the
/// sessions, the copies, and the copies of each packet (indices into the copies).
fn load(inputs: &[PathBuf]) -> (Vec<SessionSpec>, Vec<Copy>, Vec<Vec<usize>>) {
    let first = read_sidecar(&inputs[0]);
    let sessions: Vec<SessionSpec> = first["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            let vni = s["vni"].as_u64().expect("vni");
            SessionSpec {
                name: format!("vni-{vni}"),
                vni,
                source_ips: s["source_ips"]
                    .as_array()
                    .expect("source_ips")
                    .iter()
                    .map(|a| a.as_str().unwrap().parse().unwrap())
                    .collect(),
            }
        })
        .collect();
    assert_eq!(sessions.len(), 3, "both-ends has three sessions");

    let mut copies = Vec::new();
    // Global sidecar index → copy, and the generator's copy pairs.
    let mut by_index: HashMap<u64, usize> = HashMap::new();
    let mut pairs = Vec::new();
    for (file, input) in inputs.iter().enumerate() {
        let sidecar = read_sidecar(input);
        let described = sidecar["packets"].as_array().expect("packets");
        let frames = read_pcap(input);
        assert_eq!(
            frames.len(),
            described.len(),
            "{} and its sidecar",
            input.display()
        );
        for (position, (frame, about)) in frames.iter().zip(described).enumerate() {
            let mirrored = decode_mirror(frame).expect("every frame is a VXLAN mirror");
            let session = sessions
                .iter()
                .find(|s| s.vni == u64::from(mirrored.vni))
                .expect("a session per VNI");
            let flow = inner_flow(&mirrored.inner).expect("inner IP");
            let direction = if session.source_ips.contains(&flow.dst) {
                Direction::Ingress
            } else {
                assert!(
                    session.source_ips.contains(&flow.src),
                    "every copy is taken at one of its ends"
                );
                Direction::Egress
            };
            let sidecar_direction = match about["direction"].as_str() {
                Some("ingress") => Direction::Ingress,
                _ => Direction::Egress,
            };
            assert_eq!(direction, sidecar_direction, "direction of {about}");
            let index = about["index"].as_u64().expect("index");
            by_index.insert(index, copies.len());
            if about["second_copy"] == true {
                pairs.push((about["copy_of"].as_u64().expect("copy_of"), index));
            }
            copies.push(Copy {
                file,
                position,
                index,
                session: session.name.clone(),
                accepted: policy(&flow, direction),
                inner: mirrored.inner,
                flow,
            });
        }
    }

    // The copies of one packet, by the test's own identity, must be the generator's pairs.
    let by_key = copies_by_packet(copies.iter().map(|c| c.inner.as_slice()));
    let mut generator_pairs: HashSet<(usize, usize)> = pairs
        .iter()
        .map(|(first, second)| (by_index[first], by_index[second]))
        .collect();
    for group in by_key.values() {
        match group.as_slice() {
            [_] => {}
            [a, b] => {
                assert!(
                    generator_pairs.remove(&(*a, *b)) || generator_pairs.remove(&(*b, *a)),
                    "copies {a} and {b} have one identity but are no pair of the generator"
                );
            }
            more => panic!("{} copies of one packet: {more:?}", more.len()),
        }
    }
    assert!(
        generator_pairs.is_empty(),
        "pairs of the generator the test does not see as one packet: {generator_pairs:?}"
    );
    (sessions, copies, by_key.into_values().collect())
}

fn config(s: &Scratch, inputs: &[PathBuf], sessions: &[SessionSpec], dedup: bool) -> PathBuf {
    let mut text = pcap_ingress_config("e2e-dedup", inputs);
    if dedup {
        // Far longer than the capture's replay: no copy can outlive it.
        text.push_str("[dedup]\nwindow = \"10s\"\n");
    }
    for session in sessions {
        let ips: Vec<String> = session
            .source_ips
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        text.push_str(&format!(
            "[[session]]\nname = \"{}\"\nvni = {}\ntools = [\"ids\", \"recorder\"]\nfilter = \"policy\"\nsource_ips = [{}]\n",
            session.name,
            session.vni,
            ips.join(", ")
        ));
    }
    text.push_str(POLICY);
    let port = |name: &str, n: usize| {
        format!(
            "{{ name = \"{name}\", device = \"net_pcap{n},tx_pcap={}\" }}",
            s.path(&format!("{name}.pcap")).display()
        )
    };
    text.push_str(&format!(
        "\n[[tool_group]]\nname = \"ids\"\nbalance = \"flow\"\nports = [{}, {}]\n\n[[tool_group]]\nname = \"recorder\"\nbalance = \"source\"\nslice = {SLICE}\nports = [{}]\n",
        port(IDS_PORTS[0], 1),
        port(IDS_PORTS[1], 2),
        port(RECORDER, 3)
    ));
    s.write(
        if dedup {
            "dedup-on.toml"
        } else {
            "dedup-off.toml"
        },
        &text,
    )
}

/// Which packet (index into `packets`) each candidate output frame stands for: `cut` maps a
/// copy's inner frame to what the group receives. A frame standing for two packets would make
/// the test blind, so it is refused.
fn candidates(
    copies: &[Copy],
    packets: &[Vec<usize>],
    cut: impl Fn(&[u8]) -> Vec<u8>,
) -> HashMap<Vec<u8>, usize> {
    let mut map = HashMap::new();
    for (p, members) in packets.iter().enumerate() {
        for &c in members.iter().filter(|&&c| copies[c].accepted) {
            if let Some(other) = map.insert(cut(&copies[c].inner), p) {
                assert_eq!(
                    other, p,
                    "two packets give one output frame: the test could not tell them apart"
                );
            }
        }
    }
    map
}

/// The copy an output frame can only have come from (its bytes are those of one accepted copy).
fn sole_source(copies: &[Copy], cut: impl Fn(&[u8]) -> Vec<u8>) -> HashMap<Vec<u8>, Option<usize>> {
    let mut map: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
    for (c, copy) in copies.iter().enumerate().filter(|(_, c)| c.accepted) {
        map.entry(cut(&copy.inner))
            .and_modify(|v| *v = None)
            .or_insert(Some(c));
    }
    map
}

/// Frames of one input file and one (directional) inner flow leave a port in their input order.
fn assert_per_flow_order(
    port: &str,
    output: &[Vec<u8>],
    copies: &[Copy],
    sole: &HashMap<Vec<u8>, Option<usize>>,
) {
    let mut last: HashMap<(usize, InnerFlow), usize> = HashMap::new();
    for (i, frame) in output.iter().enumerate() {
        if let Some(Some(c)) = sole.get(frame) {
            let copy = &copies[*c];
            if let Some(previous) = last.insert((copy.file, copy.flow), copy.position) {
                assert!(
                    previous < copy.position,
                    "{port}: frame {i} (file {} position {}) of {:?} leaves after position {previous}",
                    copy.file,
                    copy.position,
                    copy.flow
                );
            }
        }
    }
}

/// Both directions of an inner connection: the protocol and its two ends, sorted.
type Connection = (u8, (IpAddr, u16), (IpAddr, u16));

fn connection(flow: &InnerFlow) -> Connection {
    let a = (flow.src, flow.src_port);
    let b = (flow.dst, flow.dst_port);
    (flow.protocol, a.min(b), a.max(b))
}

#[test]
fn both_ends_on_two_workers_each_group_gets_each_accepted_packet_once() {
    let s = Scratch::new("dedup");
    let input = Input::generate(&s, &[]);
    let expected = &input.expected;

    // ---- dedup on --------------------------------------------------------------------------------
    let (on, out) = run_with_dedup(&s, &input);
    assert_each_group_gets_each_accepted_packet_once(&input, &out);
    assert_flow_balance(&out.ids);

    // Per-flow order, for every frame that can only have come from one copy.
    let sole_whole = sole_source(&input.copies, whole);
    let sole_cut = sole_source(&input.copies, cut);
    for (port, frames) in IDS_PORTS.iter().zip(&out.ids) {
        assert_per_flow_order(port, frames, &input.copies, &sole_whole);
        assert_eq!(
            tshark_frames(&s.path(&format!("{port}.pcap")), &[]),
            frames.len()
        );
    }
    assert_per_flow_order(RECORDER, &out.recorder, &input.copies, &sole_cut);

    // Per packet: the second accepted copy is a duplicate for both groups, unless the two copies
    // were checked at the same moment on the two workers and split the groups between them (each
    // group still gets the packet once: the group counters are exact); both copies of such a
    // packet are `delivered`.
    let delivered = on.outcome("delivered");
    assert!(
        delivered >= expected.delivered_packets,
        "{delivered} delivered, fewer than the {} accepted packets",
        expected.delivered_packets
    );
    assert_counters(&on, &input, &out, delivered - expected.delivered_packets);

    // ---- dedup off: the same input, and every accepted copy arrives -------------------------------
    let (copies, packets) = (&input.copies, &input.packets);
    for name in IDS_PORTS.iter().chain([&RECORDER]) {
        std::fs::remove_file(s.path(&format!("{name}.pcap")))
            .expect("remove the first run's output");
    }
    let off = run_broker(
        &config(&s, &input.files, &input.sessions, false),
        &s.dir,
        Duration::from_secs(60),
    );
    off.assert_clean();
    let ids_off: Vec<Vec<u8>> = IDS_PORTS
        .iter()
        .flat_map(|p| read_pcap(&s.path(&format!("{p}.pcap"))))
        .collect();
    let recorder_off = read_pcap(&s.path(&format!("{RECORDER}.pcap")));
    let accepted_inner = || {
        copies
            .iter()
            .filter(|c| c.accepted)
            .map(|c| c.inner.clone())
    };
    assert_eq!(
        multiset(ids_off.clone()),
        multiset(accepted_inner()),
        "ids: every accepted copy, once"
    );
    assert_eq!(
        multiset(recorder_off.clone()),
        multiset(accepted_inner().map(|f| cut(&f))),
        "recorder: every accepted copy, cut"
    );
    let map = candidates(copies, packets, whole);
    let mut received = vec![0usize; packets.len()];
    for frame in &ids_off {
        received[map[frame]] += 1;
    }
    for (p, members) in packets.iter().enumerate() {
        assert_eq!(
            received[p],
            input.accepted_of(members),
            "without dedup, packet {members:?} arrives once per accepted copy"
        );
    }
    assert_eq!(
        received.iter().filter(|&&n| n == 2).count() as u64,
        expected.both_accepted,
        "each duplicate now arrives twice"
    );
    assert_eq!(off.outcome("duplicate"), 0);
    assert_eq!(off.outcome("filtered"), expected.filtered);
    assert_eq!(off.outcome("delivered"), expected.accepted_copies);
    for group in ["ids", "recorder"] {
        assert_eq!(
            off.group(group)["copies"],
            expected.accepted_copies,
            "{group} copies without dedup"
        );
        assert_eq!(off.group(group)["duplicates"], 0);
    }
}

/// The inner RSS of `rss = "inner"`: a symmetric hash of the inner 5-tuple puts both copies of a
/// packet and both directions of a connection on one RX queue, hence one worker. Dedup then sees
/// the copies one after the other (exact counts, no race), and every tool port receives each
/// connection in exactly its input order.
#[test]
fn both_ends_split_by_inner_headers_each_connection_leaves_in_input_order() {
    let s = Scratch::new("dedup-inner");
    let input = Input::generate(&s, &["--split-by", "inner"]);
    let expected = &input.expected;

    // The input is what inner RSS gives: copies and connections each in one file, and both files
    // carry many connections (both workers have work).
    let mut files_of: HashMap<Connection, HashSet<usize>> = HashMap::new();
    for members in &input.packets {
        let files: HashSet<usize> = members.iter().map(|&c| input.copies[c].file).collect();
        assert_eq!(files.len(), 1, "copies {members:?} in one file");
        for &c in members {
            let copy = &input.copies[c];
            files_of
                .entry(connection(&copy.flow))
                .or_default()
                .insert(copy.file);
        }
    }
    for (conn, files) in &files_of {
        assert_eq!(files.len(), 1, "connection {conn:?} in files {files:?}");
    }
    for file in 0..input.files.len() {
        let connections = files_of.values().filter(|f| f.contains(&file)).count();
        assert!(
            connections >= 10,
            "file {file} carries {connections} connections: too few for the test to mean much"
        );
    }

    let (on, out) = run_with_dedup(&s, &input);
    assert_each_group_gets_each_accepted_packet_once(&input, &out);
    assert_flow_balance(&out.ids);

    // No race: every packet is delivered once and its other accepted copy, if any, is a duplicate.
    assert_eq!(
        on.outcome("delivered"),
        expected.delivered_packets,
        "delivered: one copy per accepted packet"
    );
    assert_eq!(
        on.outcome("duplicate"),
        expected.both_accepted,
        "duplicate: exactly the packets whose two copies were accepted"
    );
    assert_counters(&on, &input, &out, 0);

    // Strict order per connection, both directions together, on every port.
    let ids_map = candidates(&input.copies, &input.packets, whole);
    let recorder_map = candidates(&input.copies, &input.packets, cut);
    let mut long_connections = 0;
    let mut files_delivered = HashSet::new();
    for (port, frames, map) in [
        (IDS_PORTS[0], &out.ids[0], &ids_map),
        (IDS_PORTS[1], &out.ids[1], &ids_map),
        (RECORDER, &out.recorder, &recorder_map),
    ] {
        let sequences = connection_sequences(&input, frames, map);
        if let Some(inversion) = first_inversion(&input.copies, &sequences) {
            panic!("{port}: {inversion}");
        }
        long_connections += sequences.values().filter(|s| s.len() >= 10).count();
        files_delivered.extend(
            sequences
                .values()
                .flatten()
                .map(|&(_, c)| input.copies[c].file),
        );

        // The check sees an inversion when there is one: the same frames with the first two of
        // the longest connection swapped.
        let (_, longest) = sequences
            .iter()
            .max_by_key(|(conn, s)| (s.len(), **conn))
            .expect("frames on every port");
        let mut swapped = frames.clone();
        swapped.swap(longest[0].0, longest[1].0);
        assert!(
            first_inversion(&input.copies, &connection_sequences(&input, &swapped, map)).is_some(),
            "{port}: two frames of a connection swapped and the order check does not see it"
        );
    }
    assert_eq!(
        files_delivered.len(),
        input.files.len(),
        "both workers delivered packets"
    );
    assert!(
        long_connections >= 30,
        "only {long_connections} connections of 10 packets or more on a port"
    );
    eprintln!("{long_connections} (port, connection) pairs of 10 packets or more, all in order");
}

// ---- what the tests share ------------------------------------------------------------------------

fn whole(frame: &[u8]) -> Vec<u8> {
    frame.to_vec()
}

/// What the recorder receives of a frame.
fn cut(frame: &[u8]) -> Vec<u8> {
    frame[..frame.len().min(SLICE)].to_vec()
}

/// Counts the filter gives, from the test's own decoding of the input.
struct Expected {
    accepted_copies: u64,
    /// Packets of which at least one copy is accepted: each group receives each once.
    delivered_packets: u64,
    /// Packets of which both copies are accepted: one of them is a duplicate.
    both_accepted: u64,
    longer_than_slice: u64,
    filtered: u64,
}

/// The generated input files and what the test makes of them.
struct Input {
    files: Vec<PathBuf>,
    sessions: Vec<SessionSpec>,
    copies: Vec<Copy>,
    /// The copies of each packet (indices into `copies`).
    packets: Vec<Vec<usize>>,
    expected: Expected,
}

impl Input {
    /// `both-ends`, 1600 packets split over two files (RX queues), `split_args` choosing the hash.
    fn generate(s: &Scratch, split_args: &[&str]) -> Input {
        let args: Vec<&str> = ["--packets", "1600"]
            .iter()
            .chain(split_args)
            .copied()
            .collect();
        let files = generate(&s.path("both-ends.pcap"), "both-ends", Some(2), &args);
        let (sessions, copies, packets) = load(&files);
        let expected = Expected::of(&copies, &packets);
        Input {
            files,
            sessions,
            copies,
            packets,
            expected,
        }
    }

    /// How many copies of a packet the filter accepts.
    fn accepted_of(&self, members: &[usize]) -> usize {
        accepted_of(&self.copies, members)
    }
}

fn accepted_of(copies: &[Copy], members: &[usize]) -> usize {
    members.iter().filter(|&&c| copies[c].accepted).count()
}

impl Expected {
    /// The counts, after checking the input has every case the tests need.
    fn of(copies: &[Copy], packets: &[Vec<usize>]) -> Expected {
        let accepted_copies = copies.iter().filter(|c| c.accepted).count() as u64;
        let packets_with = |n: usize| {
            packets
                .iter()
                .filter(|p| accepted_of(copies, p) == n)
                .count() as u64
        };
        let expected = Expected {
            accepted_copies,
            delivered_packets: packets_with(1) + packets_with(2),
            both_accepted: packets_with(2),
            longer_than_slice: packets
                .iter()
                .filter(|p| {
                    p.iter()
                        .any(|&c| copies[c].accepted && copies[c].inner.len() > SLICE)
                })
                .count() as u64,
            filtered: copies.len() as u64 - accepted_copies,
        };
        assert!(
            expected.both_accepted > 50 && expected.filtered > 50,
            "the profile gives duplicates ({}) and rejections ({})",
            expected.both_accepted,
            expected.filtered
        );
        assert!(
            packets_with(1) > 0,
            "and packets of which the filter takes one copy"
        );
        assert!(
            packets.iter().all(|p| p.len() == 2 || p.len() == 1),
            "each packet mirrored at both ends"
        );
        eprintln!(
            "{} copies of {} packets: {} filtered, {} packets with both copies accepted, \
             {} delivered, {} longer than the slice",
            copies.len(),
            packets.len(),
            expected.filtered,
            expected.both_accepted,
            expected.delivered_packets,
            expected.longer_than_slice
        );
        expected
    }
}

/// What the tool ports received.
struct Delivered {
    /// Per ids port, in `IDS_PORTS` order.
    ids: Vec<Vec<Vec<u8>>>,
    recorder: Vec<Vec<u8>>,
}

/// Runs the broker on `input` with dedup on; checks the run was clean with two workers.
fn run_with_dedup(s: &Scratch, input: &Input) -> (BrokerRun, Delivered) {
    let run = run_broker(
        &config(s, &input.files, &input.sessions, true),
        &s.dir,
        Duration::from_secs(60),
    );
    run.assert_clean();
    assert!(
        run.stderr.contains("2 worker(s) running"),
        "two workers:\n{}",
        run.stderr
    );
    let delivered = Delivered {
        ids: IDS_PORTS
            .iter()
            .map(|p| read_pcap(&s.path(&format!("{p}.pcap"))))
            .collect(),
        recorder: read_pcap(&s.path(&format!("{RECORDER}.pcap"))),
    };
    (run, delivered)
}

/// Every accepted packet reaches each group exactly once (one of its accepted copies), and the
/// recorder's copies are cut to the slice.
fn assert_each_group_gets_each_accepted_packet_once(input: &Input, out: &Delivered) {
    let (copies, packets) = (&input.copies, &input.packets);
    for (group, outputs, map) in [
        (
            "ids",
            out.ids.iter().flatten().collect::<Vec<_>>(),
            candidates(copies, packets, whole),
        ),
        (
            "recorder",
            out.recorder.iter().collect(),
            candidates(copies, packets, cut),
        ),
    ] {
        let mut received = vec![0u32; packets.len()];
        for (i, frame) in outputs.iter().enumerate() {
            let p = map.get(frame.as_slice()).unwrap_or_else(|| {
                panic!(
                    "{group}: frame {i} ({} bytes) is no accepted inner frame (or a cut of one); it starts {:02x?}",
                    frame.len(),
                    &frame[..frame.len().min(64)]
                )
            });
            received[*p] += 1;
        }
        for (p, members) in packets.iter().enumerate() {
            let expected = u32::from(input.accepted_of(members) > 0);
            assert_eq!(
                received[p],
                expected,
                "{group}: packet with copies {members:?} (accepted {}) received {} times",
                input.accepted_of(members),
                received[p]
            );
        }
    }
    // Some of the recorder's copies were cut (the candidates above show they are cuts).
    assert!(
        out.recorder.iter().any(|f| f.len() == SLICE)
            && out.recorder.iter().all(|f| f.len() <= SLICE)
    );
}

/// Flow balance: both directions of a connection on one ids port, and both ports used.
fn assert_flow_balance(ids: &[Vec<Vec<u8>>]) {
    let mut ports_of: HashMap<Connection, HashSet<usize>> = HashMap::new();
    for (port, frames) in ids.iter().enumerate() {
        for frame in frames {
            ports_of
                .entry(connection(&inner_flow(frame).expect("inner IP")))
                .or_default()
                .insert(port);
        }
    }
    for (conn, ports) in &ports_of {
        assert_eq!(ports.len(), 1, "connection {conn:?} on ids ports {ports:?}");
    }
    assert!(
        ids.iter().all(|frames| !frames.is_empty()),
        "flow balance uses both ids ports"
    );
}

/// The exit summary's counters of a dedup-on run against the input; `split` packets had both
/// copies delivered, each to some of the groups (the workers' race, see the first test).
fn assert_counters(on: &BrokerRun, input: &Input, out: &Delivered, split: u64) {
    let expected = &input.expected;
    assert_eq!(on.received(), input.copies.len() as u64);
    assert_eq!(on.outcome("filtered"), expected.filtered);
    assert_eq!(
        on.outcome("duplicate"),
        expected.both_accepted - split,
        "every accepted copy is delivered or a duplicate ({split} packets split between the workers)"
    );
    for group in ["ids", "recorder"] {
        let g = on.group(group);
        assert_eq!(g["copies"], expected.delivered_packets, "{group} copies");
        assert_eq!(
            g["duplicates"], expected.both_accepted,
            "{group} duplicates"
        );
        assert_eq!(g["dedup_evictions"], 0, "{group}: the table never filled");
    }
    assert_eq!(on.group("recorder")["sliced"], expected.longer_than_slice);
    assert_eq!(on.group("ids")["sliced"], 0);
    for (port, frames) in IDS_PORTS
        .iter()
        .zip(&out.ids)
        .chain([(&RECORDER, &out.recorder)])
    {
        let row = on.port(port);
        assert_eq!(row["copies"], frames.len() as u64, "{port} copies");
        assert_eq!(
            row["transmitted"],
            frames.len() as u64,
            "{port} transmitted"
        );
        assert_eq!(
            row["tx_bytes"],
            frames.iter().map(|f| f.len() as u64).sum::<u64>(),
            "{port} bytes"
        );
    }
    for session in &input.sessions {
        let row = on.summary["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == session.name.as_str())
            .expect("session row");
        let mine: Vec<&Copy> = input
            .copies
            .iter()
            .filter(|c| c.session == session.name)
            .collect();
        let n = |k: &str| row[k].as_u64().unwrap();
        assert_eq!(n("packets"), mine.len() as u64, "{} packets", session.name);
        assert_eq!(
            n("filtered"),
            mine.iter().filter(|c| !c.accepted).count() as u64,
            "{} filtered",
            session.name
        );
        // Which of two accepted copies wins is the workers' race; their sum is not.
        assert_eq!(
            n("delivered") + n("duplicate"),
            mine.iter().filter(|c| c.accepted).count() as u64,
            "{} accepted",
            session.name
        );
    }
    let session_duplicates: u64 = on.summary["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["duplicate"].as_u64().unwrap())
        .sum();
    assert_eq!(session_duplicates, expected.both_accepted);
}

/// Per connection (both directions), the frames of `output` that belong to it, in output order:
/// (index in `output`, the packet's first copy). `map` tells the packet of a frame.
fn connection_sequences(
    input: &Input,
    output: &[Vec<u8>],
    map: &HashMap<Vec<u8>, usize>,
) -> BTreeMap<Connection, Vec<(usize, usize)>> {
    let mut sequences: BTreeMap<Connection, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, frame) in output.iter().enumerate() {
        let p = *map
            .get(frame)
            .unwrap_or_else(|| panic!("frame {i} is no accepted packet"));
        let first = *input.packets[p]
            .iter()
            .min_by_key(|&&c| input.copies[c].index)
            .expect("a packet has a copy");
        sequences
            .entry(connection(&input.copies[first].flow))
            .or_default()
            .push((i, first));
    }
    sequences
}

/// The first frame, by output order, that leaves after a frame of its connection whose packet came
/// later in the capture (by the generator's index, before the split: within one input file, the
/// file's order).
fn first_inversion(
    copies: &[Copy],
    sequences: &BTreeMap<Connection, Vec<(usize, usize)>>,
) -> Option<String> {
    sequences
        .iter()
        .filter_map(|(conn, sequence)| {
            sequence.windows(2).find_map(|pair| {
                let ((before, earlier), (after, later)) = (pair[0], pair[1]);
                let (earlier, later) = (&copies[earlier], &copies[later]);
                (earlier.index >= later.index).then(|| {
                    (
                        after,
                        format!(
                            "frame {after} (packet {}, first copy at file {} position {}) of \
                             connection {conn:?} leaves after frame {before} (packet {}, first \
                             copy at file {} position {})",
                            later.index,
                            later.file,
                            later.position,
                            earlier.index,
                            earlier.file,
                            earlier.position
                        ),
                    )
                })
            })
        })
        .min_by_key(|(after, _)| *after)
        .map(|(_, message)| message)
}
