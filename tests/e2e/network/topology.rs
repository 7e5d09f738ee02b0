//! The lab's topology for a test: `scripts/netlab.sh up` builds it and prints its plan, which is
//! read here into [`Host`]s; dropping the [`Netlab`] runs `scripts/netlab.sh down`, also when
//! the test panics. The script is the one definition of the topology (the lab a newcomer runs
//! uses it too); this module only drives it and runs commands inside its namespaces.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::running::{CAP_NET_ADMIN, CAP_SYS_ADMIN, require_capabilities};
use crate::support::repo_root;

/// Who owns the addresses of the broker's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerSide {
    /// The broker: its interfaces are up without an address, for its `net_af_packet` ports.
    Dpdk,
    /// The kernel (for the stand-in of the harness tests).
    Kernel,
}

/// One interface of the plan (`scripts/netlab.sh plan`).
#[derive(Clone, Debug)]
pub struct Host {
    /// The network namespace it is in.
    pub ns: String,
    pub iface: String,
    /// `lan` (the bridge), `far` (behind the router) or `up` (the broker's uplink).
    pub segment: String,
    pub mac: [u8; 6],
    pub ipv4: Ipv4Addr,
    /// `10.77.0.10/24`: the address with its prefix, as a config's `address` takes it.
    pub ipv4_cidr: String,
    pub ipv6: Ipv6Addr,
    pub ipv6_cidr: String,
    pub mtu: u16,
    /// The router's address on this host's segment, where there is a router.
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
}

impl Host {
    pub fn v4(&self) -> IpAddr {
        IpAddr::V4(self.ipv4)
    }

    pub fn v6(&self) -> IpAddr {
        IpAddr::V6(self.ipv6)
    }
}

/// A built topology; removed on drop.
#[derive(Debug)]
pub struct Netlab {
    pub name: String,
    hosts: BTreeMap<String, Host>,
}

fn script() -> PathBuf {
    repo_root().join("scripts/netlab.sh")
}

impl Netlab {
    /// Builds the topology for the test `tag` (a few letters, unique among the tests; the
    /// process id makes it unique among test runs). `None` when the process lacks the privileges
    /// and `BROKER_TESTS_ALLOW_UNPRIVILEGED=1` says to skip (loudly); without that variable a
    /// missing privilege fails the test.
    pub fn up(tag: &str, side: BrokerSide) -> Option<Netlab> {
        if !require_capabilities(
            &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
            "CAP_NET_ADMIN and CAP_SYS_ADMIN",
            "this network test",
        ) {
            return None;
        }
        let name = format!("{tag}{}", std::process::id());
        let side = match side {
            BrokerSide::Dpdk => "dpdk",
            BrokerSide::Kernel => "kernel",
        };
        let out = Command::new(script())
            .args(["up", &name, "--broker", side])
            .output()
            .expect("run scripts/netlab.sh");
        // From here on the namespaces may exist: the value removes them whatever happens next.
        let mut lab = Netlab {
            name,
            hosts: BTreeMap::new(),
        };
        assert!(
            out.status.success(),
            "scripts/netlab.sh up {}: {}",
            lab.name,
            String::from_utf8_lossy(&out.stderr)
        );
        lab.hosts = parse_plan(&String::from_utf8_lossy(&out.stdout));
        Some(lab)
    }

    /// A host of the plan: `broker`, `uplink` (the broker's second port), `peer`, `router`,
    /// `router-far`, `a1` … `a4`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .get(name)
            .unwrap_or_else(|| panic!("no host {name} in the lab's plan"))
    }

    /// `ip netns exec <ns of host>`: the prefix that runs a program inside `host`'s namespace.
    pub fn wrap(&self, host: &str) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.host(host).ns]
    }

    /// A command running `program` inside `host`'s namespace.
    pub fn command(&self, host: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.host(host).ns])
            .arg(program);
        command
    }

    /// Runs `args` inside `host`'s namespace and returns its output, whatever its status.
    pub fn output(&self, host: &str, args: &[&str]) -> Output {
        self.command(host, args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("run {args:?} in {host}: {e}"))
    }

    /// Runs `args` inside `host`'s namespace; panics with its stderr unless it succeeds.
    pub fn run(&self, host: &str, args: &[&str]) -> String {
        let out = self.output(host, args);
        assert!(
            out.status.success(),
            "{} in {host}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Brings `host`'s interface up or down (its namespace's link: the analyzer disappears).
    pub fn set_link(&self, host: &str, up: bool) {
        let h = self.host(host);
        let state = if up { "up" } else { "down" };
        self.run(host, &["ip", "link", "set", &h.iface, state]);
    }

    /// Echo replies `from` gets for `count` pings to `to` (one a 100 ms, 1 s wait each).
    pub fn ping(&self, from: &str, to: IpAddr, count: u32) -> u32 {
        let out = self.output(
            from,
            &[
                "ping",
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.1",
                "-W",
                "1",
                &to.to_string(),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(" packets transmitted, ")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no ping summary from {from} to {to}: {text}"))
    }

    /// An HTTP request with curl from `from`: (status code, body); status 0 when no response
    /// came (refused, timed out).
    pub fn curl(&self, from: &str, method: &str, url: &str) -> (u16, String) {
        let mut args = vec!["curl", "-s", "-m", "3", "-w", "\n%{http_code}"];
        match method {
            "GET" => {}
            "HEAD" => args.push("-I"),
            other => args.extend(["-X", other]),
        }
        args.push(url);
        let out = self.output(from, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}

impl Drop for Netlab {
    fn drop(&mut self) {
        let out = Command::new(script()).args(["down", &self.name]).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!(
                "scripts/netlab.sh down {} failed: {:?}; see `scripts/netlab.sh list`",
                self.name,
                out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            );
        }
    }
}

/// `host.key=value` lines into hosts.
fn parse_plan(text: &str) -> BTreeMap<String, Host> {
    let mut facts: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a plan line: {line:?}"));
        let (host, fact) = key
            .rsplit_once('.')
            .unwrap_or_else(|| panic!("not a plan line: {line:?}"));
        facts.entry(host).or_default().insert(fact, value);
    }
    facts
        .into_iter()
        .map(|(host, f)| {
            let get = |k: &str| {
                *f.get(k)
                    .unwrap_or_else(|| panic!("the plan has no {host}.{k}"))
            };
            let address = |k: &str| get(k).split('/').next().unwrap().to_owned();
            let h = Host {
                ns: get("ns").to_owned(),
                iface: get("iface").to_owned(),
                segment: get("segment").to_owned(),
                mac: parse_mac(get("mac")),
                ipv4: address("ipv4").parse().expect("ipv4"),
                ipv4_cidr: get("ipv4").to_owned(),
                ipv6: address("ipv6").parse().expect("ipv6"),
                ipv6_cidr: get("ipv6").to_owned(),
                mtu: get("mtu").parse().expect("mtu"),
                gateway4: f.get("gateway4").map(|a| a.parse().expect("gateway4")),
                gateway6: f.get("gateway6").map(|a| a.parse().expect("gateway6")),
            };
            (host.to_owned(), h)
        })
        .collect()
}

pub fn parse_mac(text: &str) -> [u8; 6] {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("a MAC address byte"))
        .collect();
    bytes.try_into().expect("six bytes")
}
