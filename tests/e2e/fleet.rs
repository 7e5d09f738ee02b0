//! A fleet: two `broker` processes with one config behind a load balancer, each on two RX
//! queues, fed the parts of one mirrored capture that a balancer hashing the outer 5-tuple sends
//! them (`mirrorgen.py fleet --split 4 --split-by lb`: files 0–1 to broker A, 2–3 to broker B).
//! Twelve ENIs, each its own session, talk to each other, so many packets arrive twice, and the
//! balancer puts their two copies on one broker or on two as the hash falls.
//!
//! The expectation is the test's own, from the decoded input and the config below: a packet is
//! the normalised L3 of its copies; a copy's session is its VNI's, its direction and the
//! interface it was taken at come from that session's `source_ips`, and [`policy`] says whether
//! its session's filter accepts it. Rule (1) of the fleet: every analyzer port receives each
//! packet exactly once if a copy keyed to that port is accepted, and never otherwise; a
//! round-robin group, each packet once. Which port a copy keys to is the fleet contract — the
//! Maglev table of the group's port names and the balance hashes of `pipelines::stage`, pinned by
//! their golden tests — and the test computes it with those functions from its own decoding;
//! everything else (which copies exist, filters, directions, which copy is kept) is worked out
//! here. The structure is also checked from the outputs alone: no connection on two ports of the
//! `flow` group, each interface on one port of the `source` group, the same port in both
//! brokers.
//!
//! Runs, with `[dedup] mode`:
//! - `"sender"`, the fleet: the merged outputs are exactly what the rule predicts, frame for
//!   frame (where both copies reach a port, the sender's is the one kept);
//! - `"sender"`, one broker with the whole capture (`--split 2 --split-by lb`): the same frames;
//! - `"window"`, one broker: the rule too (the table's identity is per port), which copy wins
//!   being the workers' race;
//! - `"window"`, the fleet, the control: every packet whose two accepted copies reach one port
//!   from two brokers arrives there twice, exactly those, and there are many.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pipelines::FlowKey;
use pipelines::stage::balance::{flow_hash, source_hash};
use pipelines::stage::maglev::Maglev;
use serde_json::Value;

use crate::support::*;

const IDS: [&str; 3] = ["ids-1", "ids-2", "ids-3"];
const ARKIME: [&str; 3] = ["arkime-1", "arkime-2", "arkime-3"];
const RR: [&str; 2] = ["rr-1", "rr-2"];

/// Packets of the capture.
const PACKETS: &str = "4000";

/// The tool groups: `ids` balanced by flow, `arkime` by source, `rr` in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Group {
    Ids,
    Arkime,
    Rr,
}

impl Group {
    const ALL: [Group; 3] = [Group::Ids, Group::Arkime, Group::Rr];

    fn name(self) -> &'static str {
        match self {
            Group::Ids => "ids",
            Group::Arkime => "arkime",
            Group::Rr => "rr",
        }
    }

    fn ports(self) -> &'static [&'static str] {
        match self {
            Group::Ids => &IDS,
            Group::Arkime => &ARKIME,
            Group::Rr => &RR,
        }
    }
}

/// Where a copy counts: a port of a hash-balanced group, or a round-robin group as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Place {
    Port(&'static str),
    Group(Group),
}

/// The filter of every third session, as config text; [`policy`] is the same in code.
const POLICY: &str = r#"
[[filter]]
name = "policy"
default = "accept"

[[filter.rule]]
number = 100
action = "reject"
direction = "ingress"
protocol = "udp"
description = "no DNS answers or queries as they arrive"

[[filter.rule]]
number = 200
action = "reject"
direction = "egress"
protocol = "icmp"
description = "no pings as they leave"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// [`POLICY`] for a packet of `flow` in `direction` (`None`: no direction, accepted).
fn policy(flow: &InnerFlow, direction: Option<Direction>) -> bool {
    const ICMP: u8 = 1;
    const UDP: u8 = 17;
    !matches!(
        (direction, flow.protocol),
        (Some(Direction::Ingress), UDP) | (Some(Direction::Egress), ICMP)
    )
}

/// A session of the config: one per ENI of the capture.
struct Session {
    name: String,
    vni: u32,
    source_ips: Vec<IpAddr>,
    filtered: bool,
    tools: Vec<Group>,
}

impl Session {
    /// Every third session filters; the even ones also send to `arkime`.
    fn new(position: usize, vni: u32, source_ips: Vec<IpAddr>) -> Session {
        let tools = if position % 2 == 0 {
            vec![Group::Ids, Group::Arkime, Group::Rr]
        } else {
            vec![Group::Ids, Group::Rr]
        };
        Session {
            name: format!("eni-{vni}"),
            vni,
            source_ips,
            filtered: position % 3 == 0,
            tools,
        }
    }
}

/// Which end of its packet a copy was taken at, from its session's `source_ips`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Viewpoint {
    Sender,
    Receiver,
    Other,
}

/// One mirrored copy of the input.
struct Copy {
    /// Broker A (0) or B (1) of the fleet: fleet file / 2.
    broker: usize,
    session: usize,
    mirror_source: IpAddr,
    inner: Vec<u8>,
    flow: InnerFlow,
    viewpoint: Viewpoint,
    accepted: bool,
}

/// The input, decoded, and where each copy goes.
struct Input {
    sessions: Vec<Session>,
    copies: Vec<Copy>,
    /// The copies of each packet, by normalised L3 (indices into `copies`).
    packets: Vec<Vec<usize>>,
    packet_of: HashMap<Vec<u8>, usize>,
    /// The fleet's files (two per broker) and the one broker's.
    fleet_files: Vec<PathBuf>,
    single_files: Vec<PathBuf>,
    ids: Maglev,
    arkime: Maglev,
}

fn sidecar(path: &Path) -> Value {
    let text = std::fs::read_to_string(format!("{}.json", path.display())).expect("sidecar");
    serde_json::from_str(&text).expect("sidecar is JSON")
}

fn maglev(group: Group) -> Maglev {
    let ports = group.ports();
    Maglev::build(ports, &vec![true; ports.len()])
}

impl Input {
    fn generate(s: &Scratch) -> Input {
        let lb = ["--packets", PACKETS, "--split-by", "lb"];
        let fleet_files = generate(&s.path("fleet.pcap"), "fleet", Some(4), &lb);
        let single_files = generate(&s.path("whole.pcap"), "fleet", Some(2), &lb);
        let sessions: Vec<Session> = sidecar(&fleet_files[0])["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .enumerate()
            .map(|(position, s)| {
                let ips = s["source_ips"].as_array().expect("source_ips");
                Session::new(
                    position,
                    s["vni"].as_u64().expect("vni") as u32,
                    ips.iter()
                        .map(|a| a.as_str().unwrap().parse().unwrap())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(sessions.len(), 12, "the fleet profile has twelve ENIs");

        let mut copies = Vec::new();
        for (file, path) in fleet_files.iter().enumerate() {
            for frame in read_pcap(path) {
                let mirrored = decode_mirror(&frame).expect("every frame is a VXLAN mirror");
                let session = sessions
                    .iter()
                    .position(|s| s.vni == mirrored.vni)
                    .expect("a session per VNI");
                let flow = inner_flow(&mirrored.inner).expect("inner IP");
                let mine = &sessions[session].source_ips;
                let (src, dst) = (mine.contains(&flow.src), mine.contains(&flow.dst));
                let (viewpoint, direction) = match (src, dst) {
                    (true, false) => (Viewpoint::Sender, Some(Direction::Egress)),
                    (false, true) => (Viewpoint::Receiver, Some(Direction::Ingress)),
                    (true, true) => (Viewpoint::Other, Some(Direction::Ingress)),
                    (false, false) => (Viewpoint::Other, None),
                };
                copies.push(Copy {
                    broker: file / 2,
                    session,
                    mirror_source: mirrored.mirror_source,
                    accepted: !sessions[session].filtered || policy(&flow, direction),
                    inner: mirrored.inner,
                    flow,
                    viewpoint,
                });
            }
        }
        let by_identity = copies_by_packet(copies.iter().map(|c| c.inner.as_slice()));
        let mut packet_of = HashMap::new();
        let mut packets = Vec::new();
        for (identity, members) in by_identity {
            assert!(members.len() <= 2, "a packet mirrored more than twice");
            if let [a, b] = members[..] {
                let views = [copies[a].viewpoint, copies[b].viewpoint];
                assert!(
                    views.contains(&Viewpoint::Sender) && views.contains(&Viewpoint::Receiver),
                    "two copies: one taken at each end"
                );
            }
            packet_of.insert(identity, packets.len());
            packets.push(members);
        }
        Input {
            sessions,
            copies,
            packets,
            packet_of,
            fleet_files,
            single_files,
            ids: maglev(Group::Ids),
            arkime: maglev(Group::Arkime),
        }
    }

    /// Where copy `c` goes in `group`: its port by the group's balance, or the round-robin group.
    fn place(&self, c: usize, group: Group) -> Place {
        let copy = &self.copies[c];
        let port = |table: &Maglev, hash: u64| {
            let position = table.lookup(hash).expect("every port is live");
            Place::Port(group.ports()[usize::from(position)])
        };
        match group {
            Group::Ids => {
                let f = &copy.flow;
                let key = if matches!(f.protocol, 6 | 17) {
                    FlowKey::with_ports(f.src, f.dst, f.protocol, f.src_port, f.dst_port)
                } else {
                    FlowKey::without_ports(f.src, f.dst, f.protocol)
                };
                port(&self.ids, flow_hash(&key))
            }
            Group::Arkime => {
                let vni = self.sessions[copy.session].vni;
                let interface = match copy.viewpoint {
                    Viewpoint::Sender => copy.flow.src,
                    Viewpoint::Receiver => copy.flow.dst,
                    Viewpoint::Other => copy.mirror_source,
                };
                port(&self.arkime, source_hash(interface, vni))
            }
            Group::Rr => Place::Group(Group::Rr),
        }
    }

    /// The places each accepted copy of packet `p` reaches: (place, copy).
    fn reached(&self, p: usize) -> Vec<(Place, usize)> {
        self.packets[p]
            .iter()
            .filter(|&&c| self.copies[c].accepted)
            .flat_map(|&c| {
                let session = &self.sessions[self.copies[c].session];
                session.tools.iter().map(move |&g| (self.place(c, g), c))
            })
            .collect()
    }

    /// Rule (1): each place receives each packet once if some accepted copy reaches it. The
    /// frame is the one the sender rule keeps: the sender's copy where both reach the place.
    fn predicted(&self) -> BTreeMap<Place, Vec<Vec<u8>>> {
        let mut out: BTreeMap<Place, Vec<Vec<u8>>> = BTreeMap::new();
        for p in 0..self.packets.len() {
            let mut at: BTreeMap<Place, Vec<usize>> = BTreeMap::new();
            for (place, c) in self.reached(p) {
                at.entry(place).or_default().push(c);
            }
            for (place, candidates) in at {
                let kept = candidates
                    .iter()
                    .copied()
                    .find(|&c| self.copies[c].viewpoint == Viewpoint::Sender)
                    .unwrap_or(candidates[0]);
                out.entry(place)
                    .or_default()
                    .push(self.copies[kept].inner.clone());
            }
        }
        out
    }

    /// The window in the fleet: a place receives a packet once per broker that holds an accepted
    /// copy reaching it. Counts per (place, packet).
    fn window_across_brokers(&self) -> BTreeMap<(Place, usize), usize> {
        let mut out = BTreeMap::new();
        for p in 0..self.packets.len() {
            let mut brokers: BTreeMap<Place, BTreeSet<usize>> = BTreeMap::new();
            for (place, c) in self.reached(p) {
                brokers
                    .entry(place)
                    .or_default()
                    .insert(self.copies[c].broker);
            }
            for (place, set) in brokers {
                out.insert((place, p), set.len());
            }
        }
        out
    }

    /// The receiver's copies the sender rule drops, per group: accepted, their group also
    /// reached by the accepted sender's copy at the same place.
    fn sender_drops(&self) -> BTreeMap<Group, u64> {
        let mut drops = BTreeMap::new();
        for members in &self.packets {
            let [a, b] = members[..] else { continue };
            let (sender, receiver) = if self.copies[a].viewpoint == Viewpoint::Sender {
                (a, b)
            } else {
                (b, a)
            };
            if !self.copies[sender].accepted || !self.copies[receiver].accepted {
                continue;
            }
            let tools = |c: usize| &self.sessions[self.copies[c].session].tools;
            for &group in tools(receiver) {
                if tools(sender).contains(&group)
                    && self.place(sender, group) == self.place(receiver, group)
                {
                    *drops.entry(group).or_insert(0) += 1;
                }
            }
        }
        drops
    }
}

/// The config of one broker on two RX queue files, writing its outputs with `prefix`.
fn config(s: &Scratch, input: &Input, files: &[PathBuf], prefix: &str, mode: &str) -> PathBuf {
    let mut text = pcap_ingress_config(&format!("e2e-fleet-{prefix}"), files);
    text.push_str(&format!("[dedup]\nmode = \"{mode}\"\n"));
    if mode != "sender" {
        // Far longer than the capture's replay: no copy outlives it.
        text.push_str("window = \"10s\"\n");
    }
    for session in &input.sessions {
        let ips: Vec<String> = session
            .source_ips
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let tools: Vec<String> = session
            .tools
            .iter()
            .map(|g| format!("\"{}\"", g.name()))
            .collect();
        text.push_str(&format!(
            "[[session]]\nname = \"{}\"\nvni = {}\ntools = [{}]\n{}source_ips = [{}]\n",
            session.name,
            session.vni,
            tools.join(", "),
            if session.filtered {
                "filter = \"policy\"\n"
            } else {
                ""
            },
            ips.join(", ")
        ));
    }
    text.push_str(POLICY);
    let mut device = 0;
    for (group, balance) in [
        (Group::Ids, "flow"),
        (Group::Arkime, "source"),
        (Group::Rr, "round-robin"),
    ] {
        let ports: Vec<String> = group
            .ports()
            .iter()
            .map(|name| {
                device += 1;
                format!(
                    "{{ name = \"{name}\", device = \"net_pcap{device},tx_pcap={}\" }}",
                    s.path(&format!("{prefix}-{name}.pcap")).display()
                )
            })
            .collect();
        text.push_str(&format!(
            "\n[[tool_group]]\nname = \"{}\"\nbalance = \"{balance}\"\nports = [{}]\n",
            group.name(),
            ports.join(", ")
        ));
    }
    s.write(&format!("{prefix}.toml"), &text)
}

/// What one broker sent: its run and the frames of each tool port.
struct Run {
    run: BrokerRun,
    ports: BTreeMap<&'static str, Vec<Vec<u8>>>,
}

/// Runs the brokers of `prefixes` at once (each on its own pair of files), and reads their
/// outputs.
fn run_brokers(s: &Scratch, input: &Input, mode: &str, brokers: &[(&str, &[PathBuf])]) -> Vec<Run> {
    let configs: Vec<PathBuf> = brokers
        .iter()
        .map(|(prefix, files)| config(s, input, files, prefix, mode))
        .collect();
    let runs: Vec<BrokerRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .iter()
            .map(|config| scope.spawn(|| run_broker(config, &s.dir, Duration::from_secs(90))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("broker thread"))
            .collect()
    });
    runs.into_iter()
        .zip(brokers)
        .map(|(run, (prefix, files))| {
            run.assert_clean();
            assert!(
                run.stderr.contains("2 worker(s) running"),
                "two workers:\n{}",
                run.stderr
            );
            let frames: u64 = files.iter().map(|f| read_pcap(f).len() as u64).sum();
            assert_eq!(run.received(), frames, "{prefix} received its files");
            let ports = Group::ALL
                .iter()
                .flat_map(|g| g.ports())
                .map(|&name| (name, read_pcap(&s.path(&format!("{prefix}-{name}.pcap")))))
                .collect();
            Run { run, ports }
        })
        .collect()
}

/// The frames of `runs`, merged, per place (the round-robin ports as their group).
fn merged(runs: &[Run]) -> BTreeMap<Place, Vec<Vec<u8>>> {
    let mut out: BTreeMap<Place, Vec<Vec<u8>>> = BTreeMap::new();
    for run in runs {
        for (&name, frames) in &run.ports {
            let place = if RR.contains(&name) {
                Place::Group(Group::Rr)
            } else {
                Place::Port(name)
            };
            out.entry(place).or_default().extend(frames.iter().cloned());
        }
    }
    out
}

/// Frame multisets, place by place, with the first difference named.
fn assert_same_frames(
    got: &BTreeMap<Place, Vec<Vec<u8>>>,
    wanted: &BTreeMap<Place, Vec<Vec<u8>>>,
    what: &str,
) {
    let places: BTreeSet<&Place> = got.keys().chain(wanted.keys()).collect();
    for place in places {
        let (g, w) = (
            multiset(got.get(place).cloned().unwrap_or_default()),
            multiset(wanted.get(place).cloned().unwrap_or_default()),
        );
        if g != w {
            let extra = g.iter().filter(|(f, n)| w.get(*f) != Some(n)).count();
            let missing = w.iter().filter(|(f, n)| g.get(*f) != Some(n)).count();
            panic!(
                "{what}: {place:?} differs ({} frames against {}; {extra} distinct frames counted \
                 otherwise than expected, {missing} expected ones counted otherwise)",
                g.values().sum::<usize>(),
                w.values().sum::<usize>()
            );
        }
    }
}

/// Per (place, packet): how many times the place received the packet; every frame must be an
/// accepted copy of its packet reaching that place.
fn counts(
    input: &Input,
    outputs: &BTreeMap<Place, Vec<Vec<u8>>>,
) -> BTreeMap<(Place, usize), usize> {
    let mut out = BTreeMap::new();
    for (place, frames) in outputs {
        for frame in frames {
            let p = *input
                .packet_of
                .get(&normalised_l3(frame))
                .unwrap_or_else(|| panic!("{place:?}: a frame of no input packet"));
            assert!(
                input
                    .reached(p)
                    .iter()
                    .any(|&(at, c)| at == *place && input.copies[c].inner == *frame),
                "{place:?}: a frame that is no accepted copy reaching it"
            );
            *out.entry((*place, p)).or_insert(0) += 1;
        }
    }
    out
}

/// From the outputs alone: no connection on two ports of `ids`, each interface (by the frames
/// only it can have sent) on one port of `arkime`, and the same port in every broker.
fn assert_sticky(input: &Input, runs: &[Run]) {
    let connection = |f: &InnerFlow| {
        let (a, b) = ((f.src, f.src_port), (f.dst, f.dst_port));
        (f.protocol, a.min(b), a.max(b))
    };
    let mut sole: HashMap<&[u8], Option<usize>> = HashMap::new();
    for (c, copy) in input.copies.iter().enumerate() {
        sole.entry(&copy.inner)
            .and_modify(|v| *v = None)
            .or_insert(Some(c));
    }
    let mut ids_ports: HashMap<_, HashSet<&str>> = HashMap::new();
    let mut arkime_ports: HashMap<(IpAddr, u32), HashSet<&str>> = HashMap::new();
    for run in runs {
        for (&name, frames) in &run.ports {
            for frame in frames {
                if IDS.contains(&name) {
                    let flow = inner_flow(frame).expect("inner IP");
                    ids_ports.entry(connection(&flow)).or_default().insert(name);
                }
                if let (true, Some(Some(c))) = (ARKIME.contains(&name), sole.get(frame.as_slice()))
                {
                    let copy = &input.copies[*c];
                    let interface = match copy.viewpoint {
                        Viewpoint::Sender => copy.flow.src,
                        Viewpoint::Receiver => copy.flow.dst,
                        Viewpoint::Other => copy.mirror_source,
                    };
                    let key = (interface, input.sessions[copy.session].vni);
                    arkime_ports.entry(key).or_default().insert(name);
                }
            }
        }
    }
    for (conn, ports) in &ids_ports {
        assert_eq!(ports.len(), 1, "connection {conn:?} split over {ports:?}");
    }
    for (interface, ports) in &arkime_ports {
        assert_eq!(ports.len(), 1, "interface {interface:?} on {ports:?}");
    }
    assert!(ids_ports.len() > 100 && arkime_ports.len() >= 12);
    let used: HashSet<&str> = ids_ports
        .values()
        .chain(arkime_ports.values())
        .flatten()
        .copied()
        .collect();
    assert_eq!(
        used.len(),
        IDS.len() + ARKIME.len(),
        "every hashed port used"
    );
}

#[test]
fn two_brokers_give_each_analyzer_every_packet_of_its_sources_once() {
    let s = Scratch::new("fleet");
    let input = Input::generate(&s);
    let predicted = input.predicted();
    let split = input
        .packets
        .iter()
        .filter(|m| m.len() == 2 && input.copies[m[0]].broker != input.copies[m[1]].broker)
        .count();
    let both_ends = input.packets.iter().filter(|m| m.len() == 2).count();
    eprintln!(
        "{} copies of {} packets; {both_ends} mirrored at both ends, {split} of them with a copy \
         on each broker",
        input.copies.len(),
        input.packets.len()
    );
    assert!(
        split > 200 && both_ends - split > 200,
        "the balancer splits and keeps together"
    );

    // ---- "sender": the fleet, then one broker with everything --------------------------------
    let (a, b) = input.fleet_files.split_at(2);
    let fleet = run_brokers(&s, &input, "sender", &[("a", a), ("b", b)]);
    let fleet_out = merged(&fleet);
    assert_same_frames(&fleet_out, &predicted, "sender, fleet");
    assert_sticky(&input, &fleet);
    let drops = input.sender_drops();
    for group in Group::ALL {
        let counted: u64 = fleet
            .iter()
            .map(|r| {
                r.run.group(group.name())["sender_duplicates"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        assert_eq!(counted, drops[&group], "{} sender duplicates", group.name());
        for r in &fleet {
            assert_eq!(r.run.group(group.name())["duplicates"], 0, "no window");
        }
    }
    eprintln!("sender rule drops per group: {drops:?}");

    let one = run_brokers(&s, &input, "sender", &[("one", &input.single_files)]);
    assert_same_frames(
        &merged(&one),
        &fleet_out,
        "sender, one broker against the fleet",
    );

    // ---- "window", one broker: the rule holds, whichever copy wins ----------------------------
    let one = run_brokers(&s, &input, "window", &[("one-window", &input.single_files)]);
    let once: BTreeMap<(Place, usize), usize> = input
        .window_across_brokers()
        .into_keys()
        .map(|key| (key, 1))
        .collect();
    assert_eq!(counts(&input, &merged(&one)), once, "window, one broker");

    // ---- "window", the fleet: the control --------------------------------------------------------
    let fleet = run_brokers(&s, &input, "window", &[("aw", a), ("bw", b)]);
    let wanted = input.window_across_brokers();
    let twice = wanted.values().filter(|&&n| n == 2).count();
    assert!(
        twice > 200,
        "the window in a fleet lets the packets whose copies reach two brokers through twice: {twice}"
    );
    assert_eq!(
        counts(&input, &merged(&fleet)),
        wanted,
        "window, fleet: once per broker holding a copy for the place"
    );
    eprintln!("window in the fleet: {twice} (place, packet) pairs delivered twice");
}
