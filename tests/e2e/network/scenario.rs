//! One run of the lab, so that each test is a few lines: build the topology, start the broker
//! (or the stand-in) on a config, send the sample capture from the peer, receive at the
//! analyzers, and check a tool group's copies against the input.

use std::collections::BTreeMap;
use std::path::PathBuf;

use config::ValidatedConfig;

use super::decode::Encap;
use super::topology::Netlab;
use super::traffic::{AnalyzerFrames, Middle, Middlebox, Receivers, Sent, Stopped, send_mirror};
use super::verify::{
    Delivery, Input, PortExpect, check_port, match_group, tshark_agrees, tunnels_of,
};
use crate::support::{Scratch, repo_root};

/// The mirrored input of every scenario: AWS VXLAN from three sessions (samples/README.md).
pub fn sample() -> PathBuf {
    repo_root().join("samples/aws-mirror.pcap")
}

/// The config of the network lab (`scripts/run-lab.sh --network`).
pub fn lab_config_text() -> String {
    let path = repo_root().join("scripts/netlab/lab.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Packets per second of the mirror sender: the sample's 600 packets in 0.3 s, a pace a debug
/// broker on a shared machine keeps up with.
pub const RATE: u32 = 2000;

/// A config for the lab's broker namespace: the ingress `eni` (addressed, kernel side on a tap,
/// MTU 1600), the uplink `up` when `uplink` says how (`kernel = "…"`; MTU 1500), the sample's
/// three sessions sending to every group of `groups` (name, `ports = [...]` entries).
pub fn config_text(lab: &Netlab, groups: &[(&str, Vec<String>)], uplink: Option<&str>) -> String {
    let b = lab.host("broker");
    let mut text = format!(
        r#"[broker]
name = "netlab-test"
metrics = "{admin}"
health = "[::]:8080"
[dpdk]
eal_args = {eal}
[[ingress]]
name = "eni"
device = "net_af_packet0,iface={iface}"
address = ["{v4}", "{v6}"]
gateway = ["{g4}", "{g6}"]
mtu = {mtu}
kernel = "tap"
"#,
        admin = super::traffic::ADMIN,
        eal = crate::support::EAL_ARGS,
        iface = b.iface,
        v4 = b.ipv4_cidr,
        v6 = b.ipv6_cidr,
        g4 = b.gateway4.expect("the broker has a gateway"),
        g6 = b.gateway6.expect("the broker has a gateway"),
        mtu = b.mtu,
    );
    if let Some(kernel) = uplink {
        let u = lab.host("uplink");
        text += &format!(
            r#"[[uplink]]
name = "up"
device = "net_af_packet1,iface={}"
address = ["{}", "{}"]
mtu = {}
kernel = "{kernel}"
"#,
            u.iface, u.ipv4_cidr, u.ipv6_cidr, u.mtu
        );
    }
    let tools: Vec<String> = groups.iter().map(|(g, _)| format!("\"{g}\"")).collect();
    text += &format!(
        "[decap]\nallowed_sources = [\"{}/32\"]\n",
        lab.host("peer").ipv4
    );
    for (name, vni, sources) in [
        ("web", 101, r#""10.0.1.10", "10.0.1.11""#),
        ("db", 102, r#""10.0.2.20""#),
        ("edge", 103, r#""10.0.3.30", "fd00:3::30""#),
    ] {
        text += &format!(
            "[[session]]\nname = \"{name}\"\nvni = {vni}\ntools = [{}]\nsource_ips = [{sources}]\n",
            tools.join(", ")
        );
    }
    for (group, ports) in groups {
        text += &format!(
            "[[tool_group]]\nname = \"{group}\"\nbalance = \"flow\"\nports = [\n    {},\n]\n",
            ports.join(",\n    ")
        );
    }
    text
}

/// A running scenario. Field order is drop order: the middlebox ends before the scratch
/// directory and the topology go.
pub struct Scenario {
    pub middle: Option<Middlebox>,
    pub config: ValidatedConfig,
    pub input: Input,
    pub scratch: Scratch,
    pub lab: Netlab,
}

impl Scenario {
    /// Builds the lab for test `tag`, writes the config `config(&lab)` and starts `middle` on it,
    /// waiting until the tool ports `live` are live. `None` when the test is skipped for lack of
    /// privileges (see [`Netlab::up`]).
    pub fn start(
        tag: &str,
        middle: Middle,
        config: impl FnOnce(&Netlab) -> String,
        live: &[&str],
    ) -> Option<Scenario> {
        let lab = Netlab::up(tag, middle.side())?;
        let scratch = Scratch::new(&format!("network-{tag}"));
        let path = scratch.write("broker.toml", &config(&lab));
        let validated = config::load(&path).unwrap_or_else(|e| panic!("the test's config: {e}"));
        let input = Input::read(&sample(), &validated);
        let middlebox = Middlebox::start(&lab, middle, &path, &scratch.dir, live);
        Some(Scenario {
            middle: Some(middlebox),
            config: validated,
            input,
            scratch,
            lab,
        })
    }

    /// Starts the receivers of `analyzers`, sends the sample from the peer to the broker's
    /// address, and returns what each analyzer received once the traffic has settled. `phase`
    /// prefixes the capture files (several rounds in one test).
    pub fn send_and_receive(
        &self,
        analyzers: &[&str],
        phase: &str,
    ) -> (Sent, BTreeMap<String, AnalyzerFrames>) {
        let receivers = Receivers::start(&self.lab, analyzers, &self.scratch.dir, phase);
        let sent = send_mirror(&self.lab, &sample(), self.lab.host("broker").v4(), RATE);
        assert_eq!(
            (sent.packets, sent.skipped),
            (self.input.packets.len() as u64, 0),
            "the sender sent every packet of the sample: {}",
            sent.report
        );
        let broker_mac = self.lab.host("broker").mac;
        assert_eq!(
            super::topology::parse_mac(&sent.resolved_mac),
            broker_mac,
            "the peer resolved the broker's address to its port's MAC"
        );
        (sent, receivers.finish())
    }

    pub fn expect(&self, port: &str) -> PortExpect {
        PortExpect::new(&self.config, &self.lab, port)
    }

    /// Checks everything tool group `group` delivered against the input: the copies at each of
    /// its ports' analyzers (decoded by the test and by tshark, which must agree), every header
    /// field, each flow on one port whole and in order, every port given some flows, and for
    /// VXLAN the inner frames the analyzer's kernel decapsulated equal to the test's decoding.
    /// Returns which input packets each port carried. Each analyzer must receive at most one
    /// port of each encapsulation (else their copies could not be told apart); a port whose
    /// analyzer `got` has no capture of must have received nothing.
    pub fn check_group(&self, group: &str, got: &BTreeMap<String, AnalyzerFrames>) -> Delivery {
        let g = self
            .config
            .tool_groups
            .iter()
            .find(|g| g.name == group)
            .unwrap_or_else(|| panic!("no tool group {group}"));
        // A port whose analyzer is not captured (its link is down) is taken to receive nothing:
        // the group's packets must all arrive at the others.
        let expects: Vec<PortExpect> = g
            .ports
            .iter()
            .map(|p| self.expect(&self.config.tool_ports[p.index()].name))
            .filter(|e| got.contains_key(&e.analyzer))
            .collect();
        let mut tunnels = BTreeMap::new();
        let mut inner = BTreeMap::new();
        let mut max_inner = BTreeMap::new();
        for e in &expects {
            let frames = &got[&e.analyzer];
            let t = tunnels_of(&frames.outer, e.encap)
                .unwrap_or_else(|err| panic!("{} at {}: {err}", e.port, e.analyzer));
            tshark_agrees(&frames.outer_pcap, e.encap, &t).unwrap_or_else(|err| panic!("{err}"));
            if e.encap == Encap::Vxlan {
                let ours: Vec<&Vec<u8>> = t.iter().map(|t| &t.inner).collect();
                let kernel: Vec<&Vec<u8>> = frames.decapsulated.iter().collect();
                assert!(
                    kernel == ours,
                    "{}: the kernel's vxlan netdev decapsulated {} frames, the test's decoder {} \
                     (or different bytes)",
                    e.analyzer,
                    kernel.len(),
                    ours.len()
                );
            }
            inner.insert(e.port.clone(), t.iter().map(|t| t.inner.clone()).collect());
            max_inner.insert(e.port.clone(), e.max_inner);
            tunnels.insert(e.port.clone(), t);
        }
        let expected = self.input.for_group(&self.config, group);
        let delivery = match_group(&self.input, &expected, &inner, &max_inner)
            .unwrap_or_else(|err| panic!("group {group}: {err}"));
        for e in &expects {
            check_port(&self.input, &tunnels[&e.port], &delivery.ports[&e.port], e)
                .unwrap_or_else(|err| panic!("{err}"));
            assert!(
                !delivery.ports[&e.port].is_empty(),
                "port {} of {group} got no flow at all: {:?}",
                e.port,
                delivery.flows
            );
        }
        eprintln!(
            "group {group}: {}",
            delivery
                .ports
                .iter()
                .map(|(p, i)| format!(
                    "{p} {} packets in {} flows",
                    i.len(),
                    delivery.flows[p].len()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        delivery
    }

    /// The broker, for the steps only it takes (status, logs).
    pub fn broker(&mut self) -> &mut crate::running::Running {
        self.middle.as_mut().expect("running").broker()
    }

    /// Stops the middlebox (the broker's exit is checked: exit 0, the accounting identities).
    pub fn stop(&mut self) -> Stopped {
        self.middle.take().expect("running").stop()
    }
}
