//! From the file's shape ([`RawConfig`]) to the [`ValidatedConfig`] the runtime runs.
//!
//! Single values were checked as they were read ([`crate::values`]); here items are related to
//! each other: names are made unique and resolved into indices, references checked, defaults that
//! depend on other keys applied, and things that are legal but suspicious turned into warnings.
//!
//! # Design
//! Every check records its problem and carries on, so one run reports every mistake of the file,
//! each at its own location. Indices are assigned before references are resolved (groups and
//! filters before sessions, sessions before `decap`), so a reference to a duplicate name resolves
//! to its first definition and does not cascade into more errors.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::MAX_TOOLS_PER_SESSION;
use crate::error::Issue;
use crate::fleet::{self, Mirrored};
use crate::model::*;
use crate::raw::*;
use crate::values::{
    Address, DescriptorCount, InterfaceAddress, LcoresSetting, MetricsAddress, Name, Protocol,
    TunnelVniSetting, UdpPort,
};

const DEFAULT_MBUF_CACHE: u32 = 256;
const DEFAULT_VXLAN_PORT: u16 = 4789;
const DEFAULT_GENEVE_PORT: u16 = 6081;
const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_millis(50);
const DEFAULT_DEDUP_CAPACITY: u32 = 1 << 20;
/// DPDK refuses a mempool whose cache flush threshold (1.5 × cache) exceeds its size.
const MEMPOOL_CACHE_FLUSH_NUMERATOR: u64 = 3;
const MEMPOOL_CACHE_FLUSH_DENOMINATOR: u64 = 2;
/// Index types are `u16`: longer lists cannot be addressed.
/// EAL options the broker derives from the config itself (the lcore map from `[workers]`, one
/// `--vdev`/`-a` per port `device`): a second source of truth would silently disagree.
const EAL_OPTIONS_SET_BY_BROKER: &[(&str, &str)] = &[
    ("-l", "[workers] lcores"),
    ("-c", "[workers] lcores"),
    ("--lcores", "[workers] lcores"),
    ("--main-lcore", "[workers] control_core"),
    ("--master-lcore", "[workers] control_core"),
    ("--vdev", "the ports' `device`"),
    ("-a", "the ports' `device`"),
    ("--allow", "the ports' `device`"),
    ("-w", "the ports' `device`"),
    ("--pci-whitelist", "the ports' `device`"),
];

const MAX_ITEMS: usize = u16::MAX as usize;
/// Linux's `IFNAMSIZ` (16) less the terminating NUL: the longest kernel interface name.
const MAX_INTERFACE_NAME: usize = 15;
/// Names listed in "unknown … (known: …)" messages before the list is cut.
const KNOWN_NAMES_SHOWN: usize = 10;

/// A valid config (with `warnings` still empty) and the warnings to render into it.
pub(crate) type Checked = (ValidatedConfig, Vec<Issue>);

pub(crate) fn validate(raw: RawConfig, path: Option<PathBuf>) -> Result<Checked, Vec<Issue>> {
    let mut checker = Checker::default();
    let config = checker.config(raw, path);
    if checker.problems.is_empty() {
        Ok((config, checker.warnings))
    } else {
        Err(checker.problems)
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Issue>,
    warnings: Vec<Issue>,
}

/// Names of one kind (sessions, ports, …): reports the second definition of a name and resolves
/// references to the first.
struct Namespace<'a> {
    kind: &'static str,
    /// In definition order, for "known: …" lists.
    names: Vec<&'a str>,
    first: HashMap<&'a str, (usize, Range<usize>)>,
}

impl<'a> Namespace<'a> {
    fn new(kind: &'static str) -> Self {
        Namespace {
            kind,
            names: Vec::new(),
            first: HashMap::new(),
        }
    }

    /// Records a definition; `index` is what references to the name resolve to.
    fn define(&mut self, name: &'a Spanned<Name>, index: usize, problems: &mut Vec<Issue>) {
        let text = name.get_ref().as_str();
        match self.first.get(text) {
            Some((_, first)) => problems.push(
                Issue::at(
                    name.span(),
                    format!("duplicate {} name {text:?}", self.kind),
                )
                .first_defined_at(first.clone()),
            ),
            None => {
                self.first.insert(text, (index, name.span()));
                self.names.push(text);
            }
        }
    }

    fn resolve(&self, reference: &Spanned<Name>, problems: &mut Vec<Issue>) -> Option<usize> {
        let text = reference.get_ref().as_str();
        if let Some((index, _)) = self.first.get(text) {
            return Some(*index);
        }
        let known = if self.names.is_empty() {
            format!("no {} is defined", self.kind)
        } else {
            let mut known = self
                .names
                .iter()
                .take(KNOWN_NAMES_SHOWN)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if self.names.len() > KNOWN_NAMES_SHOWN {
                known.push_str(", …");
            }
            format!("known: {known}")
        };
        problems.push(Issue::at(
            reference.span(),
            format!("unknown {} {text:?} ({known})", self.kind),
        ));
        None
    }
}

/// Converts a position to an index type's `u16`. Lists longer than [`MAX_ITEMS`] have been
/// refused by [`Checker::check_count`] before any index is built, so the fallback is never used
/// in a config that validates.
fn index(position: usize) -> u16 {
    u16::try_from(position).unwrap_or(u16::MAX)
}

impl Checker {
    fn problem(&mut self, issue: Issue) {
        self.problems.push(issue);
    }

    fn warning(&mut self, issue: Issue) {
        self.warnings.push(issue);
    }

    fn check_count<T>(&mut self, list: &Spanned<Vec<T>>, key: &str, what: &str) {
        if list.get_ref().len() > MAX_ITEMS {
            self.problem(
                Issue::at(
                    list.span(),
                    format!(
                        "{} {what}: at most {MAX_ITEMS} are supported",
                        list.get_ref().len()
                    ),
                )
                .with_key_path(key),
            );
        }
    }

    fn config(&mut self, raw: RawConfig, path: Option<PathBuf>) -> ValidatedConfig {
        let sessions = raw.sessions.unwrap_or_else(empty_list);
        let filters = raw.filters.unwrap_or_else(empty_list);
        let tool_groups = raw.tool_groups.unwrap_or_else(empty_list);
        self.check_count(&sessions, "session", "sessions");
        self.check_count(&filters, "filter", "filters");
        self.check_count(&tool_groups, "tool_group", "tool groups");
        self.check_count(&raw.ingress, "ingress", "ingress ports");

        let mut port_names = Namespace::new("port");
        let mut port_devices = HashMap::new();
        let mut own_addresses = HashMap::new();
        let ingress = self.ingress(
            &raw.ingress,
            &mut port_names,
            &mut port_devices,
            &mut own_addresses,
        );
        let uplink_list = raw.uplinks.unwrap_or_else(empty_list);
        self.check_count(&uplink_list, "uplink", "uplinks");
        let uplinks = self.uplinks(
            &uplink_list,
            &mut port_names,
            &mut port_devices,
            &mut own_addresses,
        );
        let vias = Vias::new(&raw.ingress, &ingress, &uplink_list, &uplinks);
        let total_queues: u32 = ingress.iter().map(|port| u32::from(port.queues)).sum();
        let workers = self.workers(raw.workers, total_queues);
        let dpdk = self.dpdk(raw.dpdk, total_queues);

        let mut group_names = Namespace::new("tool group");
        let (groups, tool_ports) = self.tool_groups(
            &tool_groups,
            &mut group_names,
            &mut port_names,
            &mut port_devices,
            &vias,
            &own_addresses,
        );
        let mut filter_names = Namespace::new("filter");
        let filter_list = self.filters(&filters, &mut filter_names);

        let mut session_names = Namespace::new("session");
        for (position, session) in sessions.get_ref().iter().enumerate() {
            session_names.define(&session.get_ref().name, position, &mut self.problems);
        }
        let decap = self.decap(&raw.decap, &session_names);
        let session_list = self.sessions(&sessions, &raw.decap, &group_names, &filter_names);
        let dedup_written = raw
            .dedup
            .as_ref()
            .map(|dedup| (dedup.span(), dedup.get_ref().mode.is_some()));
        let dedup = raw.dedup.and_then(|dedup| self.dedup(dedup, &groups));
        if let (Some(settings), Some(written)) = (&dedup, dedup_written) {
            self.both_ends(
                &session_list,
                &sessions,
                &groups,
                &tool_groups,
                settings,
                written,
            );
        }

        self.unused(
            &session_list,
            &tool_groups,
            &filters,
            sessions.get_ref().is_empty(),
        );

        let stop_when_idle = raw.broker.stop_when_idle.map(|idle| {
            if idle.get_ref().get().is_zero() {
                self.problem(Issue::at(
                    idle.span(),
                    "stop_when_idle = \"0s\" would stop at the first gap between packets: \
                     leave it out to run until stopped",
                ));
            }
            idle.get_ref().get()
        });
        let metrics = raw
            .broker
            .metrics
            .as_ref()
            .map_or(Some(MetricsAddress::DEFAULT), |m| m.get_ref().get());
        let metrics_allow = raw.broker.metrics_allow.as_ref().map(|allow| {
            if allow.get_ref().is_empty() {
                self.problem(Issue::at(
                    allow.span(),
                    "an empty metrics_allow would refuse every client, the CLI included: list \
                     the networks that may connect, or leave the key out",
                ));
            }
            allow
                .get_ref()
                .iter()
                .map(|cidr| cidr.get())
                .collect::<Vec<_>>()
        });
        if let (Some(address), None) = (metrics, &metrics_allow) {
            if !address.ip().is_loopback() {
                let warning = format!(
                    "the endpoint listens on {address}, beyond loopback, and anyone who reaches \
                     it may POST /reload (it has no authentication): set [broker] metrics_allow \
                     to the management networks"
                );
                self.warning(match &raw.broker.metrics {
                    Some(m) => Issue::at(m.span(), warning),
                    None => Issue::about("broker.metrics", warning),
                });
            }
        }
        let health = raw.broker.health.map(|health| {
            if metrics == Some(health.get_ref().get()) {
                self.problem(Issue::at(
                    health.span(),
                    format!(
                        "the health listener cannot share {} with the metrics endpoint: it must \
                         answer /healthz and nothing else (a load balancer's subnets must never \
                         reach /reload)",
                        health.get_ref().get()
                    ),
                ));
            }
            health.get_ref().get()
        });
        ValidatedConfig {
            path,
            broker: BrokerSettings {
                name: raw.broker.name.into_string(),
                stop_when_idle,
                metrics,
                metrics_allow,
                health,
            },
            dpdk,
            workers,
            ingress,
            uplinks,
            decap,
            dedup,
            sessions: session_list,
            filters: filter_list,
            tool_groups: groups,
            tool_ports,
            warnings: Vec::new(),
        }
    }

    /// Registers a port's name and device in the namespace shared by ingress, uplink and tool
    /// ports.
    fn define_port<'a>(
        &mut self,
        name: &'a Spanned<Name>,
        device: &Spanned<Device>,
        port_names: &mut Namespace<'a>,
        port_devices: &mut HashMap<String, Range<usize>>,
    ) {
        port_names.define(name, 0, &mut self.problems);
        self.define_device(device, port_devices);
    }

    /// Registers a port's device: two ports cannot share one.
    fn define_device(
        &mut self,
        device: &Spanned<Device>,
        port_devices: &mut HashMap<String, Range<usize>>,
    ) {
        let identity = device.get_ref().port_name();
        if let Some(first) = port_devices.get(&identity) {
            self.problem(
                Issue::at(
                    device.span(),
                    format!(
                        "device {identity:?} is already used by another port (devices are \
                         compared by the name before the first ',')"
                    ),
                )
                .first_defined_at(first.clone()),
            );
        } else {
            port_devices.insert(identity, device.span());
        }
    }

    fn ingress<'a>(
        &mut self,
        list: &'a SpannedList<RawIngress>,
        port_names: &mut Namespace<'a>,
        port_devices: &mut HashMap<String, Range<usize>>,
        own_addresses: &mut HashMap<IpAddr, Range<usize>>,
    ) -> Vec<IngressPort> {
        if list.get_ref().is_empty() {
            self.problem(
                Issue::at(list.span(), "at least one ingress port is needed")
                    .with_key_path("ingress"),
            );
        }
        let mut ports = Vec::new();
        for port in list.get_ref() {
            let port = port.get_ref();
            self.define_port(&port.name, &port.device, port_names, port_devices);
            let queues = port.queues.map_or(1, |queues| queues.get());
            let rss = port.rss.as_ref().map_or(Rss::Outer, |rss| *rss.get_ref());
            if let (Some(span), Rss::Inner, 1) = (port.rss.as_ref().map(Spanned::span), rss, queues)
            {
                self.warning(Issue::at(
                    span,
                    "\"inner\" with one queue: there is nothing to spread, no flow rule is installed",
                ));
            }
            let addressing = match &port.address {
                Some(address) => self.addressing(
                    &port.name,
                    address,
                    port.gateway.as_ref(),
                    port.kernel.as_ref(),
                    own_addresses,
                ),
                None => {
                    if let Some(gateway) = &port.gateway {
                        self.problem(Issue::at(
                            gateway.span(),
                            "a gateway needs an address of the port's own (address = [...])",
                        ));
                    }
                    if let Some(kernel) = &port.kernel {
                        self.problem(Issue::at(
                            kernel.span(),
                            "kernel is the kernel side of an addressed port: this port has no \
                             address (address = [...])",
                        ));
                    }
                    None
                }
            };
            ports.push(IngressPort {
                name: port.name.get_ref().as_str().to_owned(),
                device: port.device.get_ref().clone(),
                queues,
                mtu: port.mtu.map(|mtu| mtu.get()),
                rss,
                addressing,
            });
        }
        ports
    }

    fn uplinks<'a>(
        &mut self,
        list: &'a SpannedList<RawUplink>,
        port_names: &mut Namespace<'a>,
        port_devices: &mut HashMap<String, Range<usize>>,
        own_addresses: &mut HashMap<IpAddr, Range<usize>>,
    ) -> Vec<UplinkPort> {
        let mut ports = Vec::new();
        for port in list.get_ref() {
            let port = port.get_ref();
            self.define_port(&port.name, &port.device, port_names, port_devices);
            let addressing = self
                .addressing(
                    &port.name,
                    &port.address,
                    port.gateway.as_ref(),
                    port.kernel.as_ref(),
                    own_addresses,
                )
                .unwrap_or(Addressing {
                    ipv4: None,
                    ipv6: None,
                    gateway_v4: None,
                    gateway_v6: None,
                    kernel: Kernel::None,
                });
            ports.push(UplinkPort {
                name: port.name.get_ref().as_str().to_owned(),
                device: port.device.get_ref().clone(),
                mtu: port.mtu.map(|mtu| mtu.get()),
                addressing,
            });
        }
        ports
    }

    /// What an addressed port owns: at most one address per family (no address owned by
    /// another port too), a gateway per family inside the subnet of its family's address (or
    /// IPv6 link-local), and its kernel side. `None` (and a problem) when no address is left.
    fn addressing(
        &mut self,
        name: &Spanned<Name>,
        addresses: &SpannedList<InterfaceAddress>,
        gateways: Option<&SpannedList<Address>>,
        kernel: Option<&Spanned<Kernel>>,
        own_addresses: &mut HashMap<IpAddr, Range<usize>>,
    ) -> Option<Addressing> {
        let mut addressing = Addressing {
            ipv4: None,
            ipv6: None,
            gateway_v4: None,
            gateway_v6: None,
            kernel: kernel.map_or(Kernel::None, |k| *k.get_ref()),
        };
        if let Some(kernel) = kernel.filter(|k| *k.get_ref() != Kernel::None) {
            let text = name.get_ref().as_str();
            if text.len() > MAX_INTERFACE_NAME {
                self.problem(
                    Issue::at(
                        kernel.span(),
                        format!(
                            "the kernel interface is named after the port, and Linux names have \
                             at most {MAX_INTERFACE_NAME} characters: {text:?} has {}",
                            text.len()
                        ),
                    )
                    .first_defined_at(name.span()),
                );
            }
        }
        if addresses.get_ref().is_empty() {
            self.problem(Issue::at(
                addresses.span(),
                "no address: give the port one address per family it sends from, with its \
                 prefix length (\"10.20.5.10/24\")",
            ));
            return None;
        }
        let mut first: [Option<Range<usize>>; 2] = [None, None];
        for address in addresses.get_ref() {
            let net = address.get_ref().get();
            let family = usize::from(net.addr().is_ipv6());
            if let Some(earlier) = &first[family] {
                self.problem(
                    Issue::at(
                        address.span(),
                        format!(
                            "a second {} address: a port owns at most one address per family",
                            family_name(net.addr())
                        ),
                    )
                    .first_defined_at(earlier.clone()),
                );
                continue;
            }
            if let Some(other) = own_addresses.get(&net.addr()) {
                self.problem(
                    Issue::at(
                        address.span(),
                        format!("{} is already the address of another port", net.addr()),
                    )
                    .first_defined_at(other.clone()),
                );
            } else {
                own_addresses.insert(net.addr(), address.span());
            }
            first[family] = Some(address.span());
            match net {
                ipnet::IpNet::V4(v4) => addressing.ipv4 = Some(v4),
                ipnet::IpNet::V6(v6) => addressing.ipv6 = Some(v6),
            }
        }
        let mut gateway_seen: [Option<Range<usize>>; 2] = [None, None];
        for gateway in gateways.map(|g| g.get_ref().as_slice()).unwrap_or_default() {
            let address = gateway.get_ref().get();
            let family = usize::from(address.is_ipv6());
            if let Some(earlier) = &gateway_seen[family] {
                self.problem(
                    Issue::at(
                        gateway.span(),
                        format!(
                            "a second {} gateway: a port has at most one gateway per family",
                            family_name(address)
                        ),
                    )
                    .first_defined_at(earlier.clone()),
                );
                continue;
            }
            gateway_seen[family] = Some(gateway.span());
            let problem = match address {
                IpAddr::V4(a) => match addressing.ipv4 {
                    None => Some("an IPv4 gateway, but the port has no IPv4 address".to_owned()),
                    Some(net) if net.addr() == a => {
                        Some(format!("{a} is the port's own address, not a gateway"))
                    }
                    Some(net) if !net.trunc().contains(&a) || a == net.broadcast() => {
                        Some(format!(
                            "gateway {a} is not a host of the port's subnet {}",
                            net.trunc()
                        ))
                    }
                    Some(_) => {
                        addressing.gateway_v4 = Some(a);
                        None
                    }
                },
                IpAddr::V6(a) => match addressing.ipv6 {
                    None => Some("an IPv6 gateway, but the port has no IPv6 address".to_owned()),
                    Some(net) if net.addr() == a => {
                        Some(format!("{a} is the port's own address, not a gateway"))
                    }
                    Some(net) if !(a.is_unicast_link_local() || net.trunc().contains(&a)) => {
                        Some(format!(
                            "gateway {a} is neither link-local (fe80::/10) nor on the port's \
                             subnet {}",
                            net.trunc()
                        ))
                    }
                    Some(_) => {
                        addressing.gateway_v6 = Some(a);
                        None
                    }
                },
            };
            if let Some(message) = problem {
                self.problem(Issue::at(gateway.span(), message));
            }
        }
        Some(addressing)
    }

    fn workers(&mut self, raw: RawWorkers, total_queues: u32) -> WorkerSettings {
        let control_core = raw.control_core.as_ref().map(|core| core.get_ref().get());
        let lcores = match raw.lcores {
            None => Lcores::Auto,
            Some(lcores) => match lcores.get_ref() {
                LcoresSetting::Auto => Lcores::Auto,
                LcoresSetting::List(cpus) => {
                    if u32::try_from(cpus.len()) != Ok(total_queues) {
                        self.problem(Issue::at(
                            lcores.span(),
                            format!(
                                "{} CPU ids for {total_queues} ingress queue(s): list one CPU \
                                 per queue (ingress ports' queues, in order), or use \"auto\"",
                                cpus.len()
                            ),
                        ));
                    }
                    let mut seen: HashMap<u32, Range<usize>> = HashMap::new();
                    for cpu in cpus {
                        let id = cpu.get_ref().get();
                        if let Some(first) = seen.get(&id) {
                            self.problem(
                                Issue::at(
                                    cpu.span(),
                                    format!("CPU {id} is listed twice: one worker per CPU"),
                                )
                                .first_defined_at(first.clone()),
                            );
                        } else {
                            seen.insert(id, cpu.span());
                        }
                    }
                    if let (Some(core), Some(control)) = (control_core, &raw.control_core) {
                        if seen.contains_key(&core) {
                            self.warning(Issue::at(
                                control.span(),
                                format!(
                                    "control core {core} is also a worker lcore: the control \
                                     thread will steal cycles from that worker"
                                ),
                            ));
                        }
                    }
                    Lcores::List(cpus.iter().map(|cpu| cpu.get_ref().get()).collect())
                }
            },
        };
        if total_queues > MAX_ITEMS as u32 {
            self.problem(Issue::about(
                "ingress",
                format!("{total_queues} ingress queues in all: at most {MAX_ITEMS} are supported"),
            ));
        }
        WorkerSettings {
            lcores,
            control_core,
        }
    }

    fn dpdk(&mut self, raw: RawDpdk, total_queues: u32) -> DpdkSettings {
        let mbuf_cache = raw
            .mbuf_cache
            .map_or(DEFAULT_MBUF_CACHE, |cache| cache.get());
        let rx_descriptors = raw.rx_descriptors.unwrap_or(DescriptorCount::DEFAULT).get();
        let tx_descriptors = raw.tx_descriptors.unwrap_or(DescriptorCount::DEFAULT).get();
        if let Some(mbufs) = &raw.mbufs {
            let count = u64::from(mbufs.get_ref().get());
            let for_cache = u64::from(mbuf_cache) * MEMPOOL_CACHE_FLUSH_NUMERATOR
                / MEMPOOL_CACHE_FLUSH_DENOMINATOR;
            if count < for_cache {
                self.problem(Issue::at(
                    mbufs.span(),
                    format!(
                        "{count} mbufs are too few for mbuf_cache = {mbuf_cache}: DPDK needs at \
                         least 1.5 × the cache size ({for_cache})"
                    ),
                ));
            }
            let for_rings = u64::from(total_queues) * u64::from(rx_descriptors);
            if count < for_rings {
                self.problem(Issue::at(
                    mbufs.span(),
                    format!(
                        "{count} mbufs cannot fill the RX rings: {total_queues} ingress queues × \
                         {rx_descriptors} rx_descriptors need {for_rings}"
                    ),
                ));
            }
        }
        for arg in &raw.eal_args {
            let option = arg.get_ref().split('=').next().unwrap_or_default();
            if let Some((_, owner)) = EAL_OPTIONS_SET_BY_BROKER.iter().find(|(o, _)| *o == option) {
                self.problem(Issue::at(
                    arg.span(),
                    format!(
                        "`{option}` is set by the broker from {owner}; remove it from eal_args"
                    ),
                ));
            }
        }
        DpdkSettings {
            eal_args: raw.eal_args.into_iter().map(Spanned::into_inner).collect(),
            mbufs: raw.mbufs.map(|mbufs| mbufs.get_ref().get()),
            mbuf_cache,
            rx_descriptors,
            tx_descriptors,
        }
    }

    fn tool_groups<'a>(
        &mut self,
        list: &'a SpannedList<RawToolGroup>,
        group_names: &mut Namespace<'a>,
        port_names: &mut Namespace<'a>,
        port_devices: &mut HashMap<String, Range<usize>>,
        vias: &Vias<'_>,
        own_addresses: &HashMap<IpAddr, Range<usize>>,
    ) -> (Vec<ToolGroup>, Vec<ToolPort>) {
        let mut groups = Vec::new();
        let mut tool_ports = Vec::new();
        for (position, group) in list.get_ref().iter().enumerate() {
            let group = group.get_ref();
            group_names.define(&group.name, position, &mut self.problems);
            if group.ports.get_ref().is_empty() {
                self.problem(Issue::at(
                    group.ports.span(),
                    "a tool group needs at least one port",
                ));
            }
            let mut ports = Vec::new();
            for spanned in group.ports.get_ref() {
                let port = spanned.get_ref();
                port_names.define(&port.name, 0, &mut self.problems);
                if let Some(device) = &port.device {
                    self.define_device(device, port_devices);
                }
                let Some(output) = self.tool_output(spanned, vias, own_addresses) else {
                    continue;
                };
                if tool_ports.len() == MAX_ITEMS {
                    self.problem(Issue::at(
                        group.ports.span(),
                        format!("more than {MAX_ITEMS} tool ports in all"),
                    ));
                    break;
                }
                ports.push(ToolPortId(index(tool_ports.len())));
                tool_ports.push(ToolPort {
                    name: port.name.get_ref().as_str().to_owned(),
                    group: GroupId(index(position)),
                    output,
                });
            }
            groups.push(ToolGroup {
                name: group.name.get_ref().as_str().to_owned(),
                balance: group.balance.unwrap_or(Balance::Source),
                slice: group.slice.and_then(|slice| slice.get()),
                dedup: group.dedup.unwrap_or(true),
                on_port_down: group.on_port_down.unwrap_or(OnPortDown::Rebalance),
                ports,
            });
        }
        (groups, tool_ports)
    }

    /// Where a tool port's copies go: its `device`, or its tunnel (`tunnel`, `remote`, `via`
    /// and the options of that encapsulation). `None` (and a problem) when neither is complete.
    fn tool_output(
        &mut self,
        spanned: &Spanned<RawToolPort>,
        vias: &Vias<'_>,
        own_addresses: &HashMap<IpAddr, Range<usize>>,
    ) -> Option<ToolOutput> {
        let port = spanned.get_ref();
        let tunnel_keys = [
            ("remote", port.remote.as_ref().map(Spanned::span)),
            ("via", port.via.as_ref().map(Spanned::span)),
            ("vni", port.vni.as_ref().map(Spanned::span)),
            ("dst_port", port.dst_port.as_ref().map(Spanned::span)),
            ("key", port.key.as_ref().map(Spanned::span)),
            ("session_id", port.session_id.as_ref().map(Spanned::span)),
        ];
        let (encapsulation, tunnel_span) = match (&port.device, &port.tunnel) {
            (Some(device), None) => {
                for (key, span) in tunnel_keys {
                    if let Some(span) = span {
                        self.problem(Issue::at(
                            span,
                            format!(
                                "{key} belongs to a tunnel port (tunnel = \"vxlan\", …): this \
                                 port has a device, cabled to its analyzer"
                            ),
                        ));
                    }
                }
                return Some(ToolOutput::Device(device.get_ref().clone()));
            }
            (Some(device), Some(tunnel)) => {
                self.problem(
                    Issue::at(
                        tunnel.span(),
                        "a tool port has a device (cabled) or a tunnel (to an address), not both",
                    )
                    .first_defined_at(device.span()),
                );
                return None;
            }
            (None, None) => {
                self.problem(Issue::at(
                    spanned.span(),
                    "a tool port needs device = \"…\" (a port cabled to its analyzer) or \
                     tunnel = \"vxlan\" with remote = \"…\" and via = \"…\" (an analyzer \
                     reached over the network)",
                ));
                return None;
            }
            (None, Some(tunnel)) => (*tunnel.get_ref(), tunnel.span()),
        };
        let only_for = |key: &str, allowed: &[Encapsulation]| {
            let list: Vec<&str> = allowed.iter().map(|e| e.as_str()).collect();
            format!(
                "{key} is not a setting of {encapsulation} (only of {})",
                list.join(" and ")
            )
        };
        let udp = [Encapsulation::Vxlan, Encapsulation::Geneve];
        if !udp.contains(&encapsulation) {
            for (key, span) in [
                ("vni", port.vni.as_ref().map(Spanned::span)),
                ("dst_port", port.dst_port.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.problem(Issue::at(span, only_for(key, &udp)));
                }
            }
        }
        if let (Some(key), false) = (&port.key, encapsulation == Encapsulation::L2gre) {
            self.problem(Issue::at(
                key.span(),
                only_for("key", &[Encapsulation::L2gre]),
            ));
        }
        if let (Some(id), false) = (&port.session_id, encapsulation == Encapsulation::Erspan2) {
            self.problem(Issue::at(
                id.span(),
                only_for("session_id", &[Encapsulation::Erspan2]),
            ));
        }
        let Some(remote) = &port.remote else {
            self.problem(Issue::at(
                tunnel_span,
                "a tunnel needs remote = \"…\": the analyzer's address",
            ));
            return None;
        };
        let Some(via) = &port.via else {
            self.problem(Issue::at(
                tunnel_span,
                "a tunnel needs via = \"…\": the addressed [[ingress]] or [[uplink]] port it \
                 leaves from",
            ));
            return None;
        };
        let address = remote.get_ref().get();
        let unusable = match address {
            IpAddr::V4(a) => {
                a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || a == Ipv4Addr::BROADCAST
            }
            IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
        };
        if unusable {
            self.problem(Issue::at(
                remote.span(),
                format!("{address} is not an analyzer's address: a unicast address is needed"),
            ));
            return None;
        }
        if let Some(own) = own_addresses.get(&address) {
            self.problem(
                Issue::at(
                    remote.span(),
                    format!("{address} is the broker's own address, not an analyzer's"),
                )
                .first_defined_at(own.clone()),
            );
            return None;
        }
        let (via_id, addressing) = vias.resolve(via, &mut self.problems)?;
        let Some(own) = addressing.own_address_for(address) else {
            self.problem(Issue::at(
                via.span(),
                format!(
                    "{} has no {} address: remote {address} cannot be reached from it",
                    via.get_ref().as_str(),
                    family_name(address)
                ),
            ));
            return None;
        };
        let Some(next_hop) = addressing.next_hop(address) else {
            self.problem(Issue::at(
                remote.span(),
                format!(
                    "{address} is not on the subnet of {} ({own}) and {} has no {} gateway: \
                     add gateway = [\"…\"] to it",
                    via.get_ref().as_str(),
                    via.get_ref().as_str(),
                    family_name(address)
                ),
            ));
            return None;
        };
        let default_port = match encapsulation {
            Encapsulation::Geneve => DEFAULT_GENEVE_PORT,
            _ => DEFAULT_VXLAN_PORT,
        };
        let dst_port = port
            .dst_port
            .as_ref()
            .map_or(default_port, |p| p.get_ref().get());
        if let (Encapsulation::Vxlan, Some(span)) = (
            encapsulation,
            port.dst_port
                .as_ref()
                .filter(|p| p.get_ref().get() != DEFAULT_VXLAN_PORT)
                .map(Spanned::span),
        ) {
            self.warning(Issue::at(
                span,
                format!(
                    "VXLAN on UDP {dst_port}: Arkime decodes VXLAN on 4789 only, and Suricata and \
                     Zeek need {dst_port} added to their VXLAN ports"
                ),
            ));
        }
        Some(ToolOutput::Tunnel(TunnelSpec {
            encapsulation,
            remote: address,
            via: via_id,
            next_hop,
            vni: match port.vni.as_ref().map(|v| *v.get_ref()) {
                None | Some(TunnelVniSetting::Session) => TunnelVni::Session,
                Some(TunnelVniSetting::Fixed(vni)) => TunnelVni::Fixed(vni),
            },
            dst_port,
            key: port.key.as_ref().map(|k| k.get_ref().get()),
            erspan_session: port
                .session_id
                .as_ref()
                .map_or(ErspanSession::SessionVni, |id| {
                    ErspanSession::Fixed(id.get_ref().get())
                }),
        }))
    }

    fn filters<'a>(
        &mut self,
        list: &'a SpannedList<RawFilter>,
        filter_names: &mut Namespace<'a>,
    ) -> Vec<Filter> {
        let mut filters = Vec::new();
        for (position, filter) in list.get_ref().iter().enumerate() {
            let filter = filter.get_ref();
            filter_names.define(&filter.name, position, &mut self.problems);
            let mut numbers: HashMap<u16, Range<usize>> = HashMap::new();
            let mut rules = Vec::new();
            for rule in &filter.rule {
                let rule = rule.get_ref();
                let number = rule.number.get_ref().get();
                if let Some(first) = numbers.get(&number) {
                    self.problem(
                        Issue::at(
                            rule.number.span(),
                            format!("rule number {number} is used twice in this filter"),
                        )
                        .first_defined_at(first.clone()),
                    );
                } else {
                    numbers.insert(number, rule.number.span());
                }
                rules.push(self.rule(rule));
            }
            rules.sort_by_key(|rule| rule.number);
            filters.push(Filter {
                name: filter.name.get_ref().as_str().to_owned(),
                default: filter.default.unwrap_or(Action::Reject),
                rules,
            });
        }
        filters
    }

    fn rule(&mut self, raw: &RawRule) -> Rule {
        if let (Some(src), Some(dst)) = (&raw.src_cidr, &raw.dst_cidr) {
            let (src_net, dst_net) = (src.get_ref().get(), dst.get_ref().get());
            if src_net.addr().is_ipv4() != dst_net.addr().is_ipv4() {
                self.problem(
                    Issue::at(
                        dst.span(),
                        format!(
                            "dst_cidr {dst_net} and src_cidr {src_net} are of different address \
                             families: the rule could never match"
                        ),
                    )
                    .first_defined_at(src.span()),
                );
            }
        }
        if let Some(protocol) = raw
            .protocol
            .as_ref()
            .filter(|protocol| !protocol.get_ref().has_ports())
        {
            for ports in [&raw.src_ports, &raw.dst_ports].into_iter().flatten() {
                self.problem(
                    Issue::at(
                        ports.span(),
                        format!(
                            "a port range needs protocol \"tcp\" or \"udp\" (or no protocol), \
                             not protocol {}",
                            protocol_name(protocol.get_ref().get())
                        ),
                    )
                    .first_defined_at(protocol.span()),
                );
            }
        }
        Rule {
            number: raw.number.get_ref().get(),
            action: raw.action,
            direction: raw.direction,
            protocol: raw
                .protocol
                .as_ref()
                .map(|protocol| protocol.get_ref().get()),
            src_cidr: raw.src_cidr.as_ref().map(|cidr| cidr.get_ref().get()),
            dst_cidr: raw.dst_cidr.as_ref().map(|cidr| cidr.get_ref().get()),
            src_ports: raw.src_ports.as_ref().map(|ports| *ports.get_ref()),
            dst_ports: raw.dst_ports.as_ref().map(|ports| *ports.get_ref()),
            description: raw.description.clone(),
        }
    }

    fn decap(&mut self, raw: &RawDecap, session_names: &Namespace<'_>) -> DecapSettings {
        let vxlan_ports = self.udp_ports(raw.vxlan_ports.as_ref(), DEFAULT_VXLAN_PORT);
        let geneve_ports = self.udp_ports(raw.geneve_ports.as_ref(), DEFAULT_GENEVE_PORT);
        for number in geneve_ports
            .iter()
            .filter(|port| vxlan_ports.contains(port))
        {
            // Point at an explicit entry: at most one of the two lists can be the default.
            let in_geneve = span_of_port(raw.geneve_ports.as_ref(), *number);
            let in_vxlan = span_of_port(raw.vxlan_ports.as_ref(), *number);
            let message = format!("UDP port {number} is in both vxlan_ports and geneve_ports");
            match (in_geneve, in_vxlan) {
                (Some(geneve), Some(vxlan)) => {
                    self.problem(Issue::at(geneve, message).first_defined_at(vxlan))
                }
                (Some(span), None) | (None, Some(span)) => self.problem(Issue::at(
                    span,
                    format!("{message} (the other list is at its default)"),
                )),
                (None, None) => self.problem(Issue::about("decap", message)),
            }
        }

        let pass_untunneled = raw
            .pass_untunneled
            .as_ref()
            .is_some_and(|pass| *pass.get_ref());
        match (&raw.pass_untunneled, &raw.untunneled_session) {
            (Some(pass), None) if *pass.get_ref() => self.problem(Issue::at(
                pass.span(),
                "pass_untunneled = true needs untunneled_session: the session that untunnelled \
                 frames go to",
            )),
            (_, Some(session)) if !pass_untunneled => self.problem(Issue::at(
                session.span(),
                "untunneled_session is set but pass_untunneled is not true: untunnelled frames \
                 would still be dropped",
            )),
            _ => {}
        }
        let untunneled_session = raw
            .untunneled_session
            .as_ref()
            .and_then(|name| session_names.resolve(name, &mut self.problems))
            .map(|position| SessionId(index(position)));
        let default_session = raw
            .default_session
            .as_ref()
            .and_then(|name| session_names.resolve(name, &mut self.problems))
            .map(|position| SessionId(index(position)));

        let allowed_sources = raw.allowed_sources.as_ref().map(|sources| {
            sources
                .get_ref()
                .iter()
                .map(|cidr| cidr.get())
                .collect::<Vec<_>>()
        });
        let tunnels = !(vxlan_ports.is_empty() && geneve_ports.is_empty());
        match &raw.allowed_sources {
            None if tunnels => self.warning(Issue::about(
                "decap.allowed_sources",
                "not set: any host that can reach the ingress port can inject packets",
            )),
            Some(sources) if sources.get_ref().is_empty() => self.warning(Issue::at(
                sources.span(),
                "empty: every tunnelled frame will be dropped as source_denied",
            )),
            _ => {}
        }
        if !tunnels && !pass_untunneled {
            self.problem(Issue::about(
                "decap",
                "vxlan_ports and geneve_ports are both empty and pass_untunneled is not set: \
                 every frame would be dropped",
            ));
        }

        DecapSettings {
            vxlan_ports,
            geneve_ports,
            allowed_sources,
            untunneled_session: untunneled_session.filter(|_| pass_untunneled),
            default_session,
        }
    }

    fn udp_ports(&mut self, list: Option<&SpannedList<UdpPort>>, default: u16) -> Vec<u16> {
        let Some(list) = list else {
            return vec![default];
        };
        let mut seen: HashMap<u16, Range<usize>> = HashMap::new();
        let mut ports = Vec::new();
        for port in list.get_ref() {
            let number = port.get_ref().get();
            if let Some(first) = seen.get(&number) {
                self.problem(
                    Issue::at(port.span(), format!("UDP port {number} is listed twice"))
                        .first_defined_at(first.clone()),
                );
            } else {
                seen.insert(number, port.span());
                ports.push(number);
            }
        }
        ports
    }

    fn sessions(
        &mut self,
        list: &SpannedList<RawSession>,
        decap: &RawDecap,
        group_names: &Namespace<'_>,
        filter_names: &Namespace<'_>,
    ) -> Vec<Session> {
        let designated = |name: &str| {
            [&decap.default_session, &decap.untunneled_session]
                .into_iter()
                .flatten()
                .any(|designated| designated.get_ref().as_str() == name)
        };
        let mut vnis: HashMap<Vni, Range<usize>> = HashMap::new();
        let mut sessions = Vec::new();
        for spanned in list.get_ref() {
            let raw = spanned.get_ref();
            let name = raw.name.get_ref().as_str();
            match &raw.vni {
                Some(vni) => {
                    if let Some(first) = vnis.get(vni.get_ref()) {
                        self.problem(
                            Issue::at(
                                vni.span(),
                                format!(
                                    "VNI {} is already used by another session",
                                    vni.get_ref().get()
                                ),
                            )
                            .first_defined_at(first.clone()),
                        );
                    } else {
                        vnis.insert(*vni.get_ref(), vni.span());
                    }
                }
                None if !designated(name) => self.problem(Issue::at(
                    spanned.span(),
                    format!(
                        "session {name:?} has no vni: only the session named by \
                         decap.default_session or decap.untunneled_session may omit it"
                    ),
                )),
                None => {}
            }

            let tools = raw.tools.get_ref();
            if tools.is_empty() {
                self.problem(Issue::at(
                    raw.tools.span(),
                    "a session needs at least one tool group",
                ));
            } else if tools.len() > MAX_TOOLS_PER_SESSION {
                self.problem(Issue::at(
                    raw.tools.span(),
                    format!(
                        "{} tool groups: a session sends to at most {MAX_TOOLS_PER_SESSION}",
                        tools.len()
                    ),
                ));
            }
            let mut groups: Vec<(GroupId, Range<usize>)> = Vec::new();
            for tool in tools {
                let Some(position) = group_names.resolve(tool, &mut self.problems) else {
                    continue;
                };
                let group = GroupId(index(position));
                if let Some((_, first)) = groups.iter().find(|(known, _)| *known == group) {
                    self.problem(
                        Issue::at(
                            tool.span(),
                            format!("tool group {:?} is listed twice", tool.get_ref().as_str()),
                        )
                        .first_defined_at(first.clone()),
                    );
                } else {
                    groups.push((group, tool.span()));
                }
            }

            let filter = raw
                .filter
                .as_ref()
                .and_then(|filter| filter_names.resolve(filter, &mut self.problems))
                .map(|position| FilterId(index(position)));

            let mut source_ips: Vec<(IpAddr, Range<usize>)> = Vec::new();
            for address in &raw.source_ips {
                let ip = address.get_ref().get();
                if let Some((_, first)) = source_ips.iter().find(|(known, _)| *known == ip) {
                    self.problem(
                        Issue::at(address.span(), format!("source IP {ip} is listed twice"))
                            .first_defined_at(first.clone()),
                    );
                } else {
                    source_ips.push((ip, address.span()));
                }
            }

            sessions.push(Session {
                name: name.to_owned(),
                vni: raw.vni.as_ref().map(|vni| *vni.get_ref()),
                filter,
                tools: groups.into_iter().map(|(group, _)| group).collect(),
                source_ips: source_ips.into_iter().map(|(ip, _)| ip).collect(),
            });
        }
        sessions
    }

    fn dedup(&mut self, raw: Spanned<RawDedup>, groups: &[ToolGroup]) -> Option<DedupSettings> {
        let span = raw.span();
        let raw = raw.into_inner();
        let window = raw
            .window
            .map_or(DEFAULT_DEDUP_WINDOW, |window| window.get());
        let capacity = raw
            .capacity
            .map_or(DEFAULT_DEDUP_CAPACITY, |capacity| capacity.get());
        let mode = raw
            .mode
            .as_ref()
            .map_or(DedupMode::Window, |m| *m.get_ref());
        let no_table = window.is_zero() || capacity == 0;
        match (mode, &raw.mode) {
            (DedupMode::Window, _) if no_table => return None,
            (DedupMode::SenderWindow, Some(written)) if no_table => self.problem(Issue::at(
                written.span(),
                "\"sender+window\" needs the window's table, which a window or capacity of 0 \
                 turns off: use mode = \"sender\" for the sender rule alone",
            )),
            (DedupMode::Sender, Some(written))
                if raw.window.is_some() || raw.capacity.is_some() =>
            {
                self.warning(Issue::at(
                    written.span(),
                    "window and capacity size the table that mode = \"sender\" does not keep: \
                     they are unused",
                ))
            }
            _ => {}
        }
        if !groups.is_empty() && groups.iter().all(|group| !group.dedup) {
            self.warning(Issue::at(
                span,
                "de-duplication is enabled but every tool group has dedup = false",
            ));
        }
        Some(DedupSettings {
            mode,
            window,
            capacity,
            ignore_dscp_ecn: raw.ignore_dscp_ecn,
            ignore_vlan: raw.ignore_vlan,
        })
    }

    /// Warnings about packets mirrored at both ends (see [`crate::fleet`]): a `source` group
    /// that sends them to two analyzers, the window that cannot see across a fleet, and what the
    /// sender rule cannot decide. `written` is the `[dedup]` table's span and whether its `mode`
    /// is written out.
    fn both_ends(
        &mut self,
        sessions: &[Session],
        raw_sessions: &SpannedList<RawSession>,
        groups: &[ToolGroup],
        raw_groups: &SpannedList<RawToolGroup>,
        dedup: &DedupSettings,
        (dedup_span, mode_written): (Range<usize>, bool),
    ) {
        let mirrored = Mirrored::new(sessions);
        let senders = |group: usize| {
            sessions
                .iter()
                .enumerate()
                .filter(move |(_, s)| s.tools.iter().any(|g| g.index() == group))
                .map(|(position, _)| SessionId(index(position)))
        };
        let mut window_blind = Vec::new();
        for (position, (group, raw)) in groups.iter().zip(raw_groups.get_ref()).enumerate() {
            if !group.dedup || !mirrored.both_ends_among(senders(position)) {
                continue;
            }
            window_blind.extend(senders(position));
            if group.balance == Balance::Source && group.ports.len() > 1 {
                self.warning(Issue::at(
                    raw.span(),
                    format!(
                        "balance = \"source\" with de-duplication: a packet between two \
                         mirrored interfaces (sessions {}) goes to the analyzer of each end, so \
                         where those differ both receive it. Intended: each analyzer sees whole \
                         connections of its own interfaces, and receives a packet once \
                         (\"flow\" and \"ip-pair\" send both copies to one analyzer)",
                        session_names(sessions, senders(position))
                    ),
                ));
            }
        }
        window_blind.sort_unstable();
        window_blind.dedup();
        if dedup.mode == DedupMode::Window && !mode_written && !window_blind.is_empty() {
            self.warning(Issue::at(
                dedup_span,
                format!(
                    "mode = \"window\" (the default) de-duplicates the copies this broker \
                     receives: in a fleet behind a load balancer, the two copies of a packet \
                     between mirrored interfaces (sessions {}) usually reach two brokers and \
                     both are delivered. Set mode = \"sender\" or \"sender+window\" for a \
                     fleet, or mode = \"window\" to say this broker runs alone",
                    session_names(sessions, window_blind.iter().copied())
                ),
            ));
        }
        if !dedup.mode.uses_sender_rule() {
            return;
        }
        // Copies that reach different tool groups are never duplicates of each other: only
        // sessions that share a de-duplicated group matter.
        let share_a_group = |a: &Session, b: &Session| {
            a.tools
                .iter()
                .any(|g| groups[g.index()].dedup && b.tools.contains(g))
        };
        for (position, (session, raw)) in sessions.iter().zip(raw_sessions.get_ref()).enumerate() {
            if !session.tools.iter().any(|g| groups[g.index()].dedup) {
                continue;
            }
            let raw = raw.get_ref();
            let shares_with_another = sessions
                .iter()
                .enumerate()
                .any(|(other, s)| other != position && share_a_group(session, s));
            if session.source_ips.is_empty() && shares_with_another {
                self.warning(Issue::at(
                    raw.name.span(),
                    "no source_ips: the sender rule cannot tell which of this session's copies \
                     were taken at a receiver, and delivers them all",
                ));
            } else if fleet::lists_two_of_a_family(session) {
                let second = raw
                    .source_ips
                    .iter()
                    .skip(1)
                    .find(|a| {
                        let family = a.get_ref().get().is_ipv4();
                        raw.source_ips
                            .iter()
                            .take_while(|b| !std::ptr::eq(*b, *a))
                            .any(|b| b.get_ref().get().is_ipv4() == family)
                    })
                    .map_or(raw.name.span(), Spanned::span);
                self.warning(Issue::at(
                    second,
                    "two addresses of one family: if they are two interfaces, a packet between \
                     them arrives twice under this one session, and the sender rule cannot tell \
                     which copy was taken at its sender: it delivers both (\"sender+window\" \
                     drops one when both reach one broker). Give each interface its own session",
                ));
            }
        }
        for (address, listed_by) in mirrored.shared() {
            let first = &sessions[listed_by[0].index()];
            for &later in &listed_by[1..] {
                if !share_a_group(first, &sessions[later.index()]) {
                    continue;
                }
                let raw = raw_sessions.get_ref()[later.index()].get_ref();
                let span = raw
                    .source_ips
                    .iter()
                    .find(|a| a.get_ref().get() == address)
                    .map_or(raw.name.span(), Spanned::span);
                self.warning(Issue::at(
                    span,
                    format!(
                        "{address} is also mirrored by session {:?}: each packet it sends \
                         arrives once per session, and the sender rule keeps every copy taken \
                         at a sender",
                        first.name
                    ),
                ));
            }
        }
    }

    fn unused(
        &mut self,
        sessions: &[Session],
        groups: &SpannedList<RawToolGroup>,
        filters: &SpannedList<RawFilter>,
        no_sessions: bool,
    ) {
        if no_sessions {
            self.warning(Issue::about(
                "session",
                "no session is defined: every packet will be dropped as unknown_session",
            ));
        }
        for (position, group) in groups.get_ref().iter().enumerate() {
            let id = GroupId(index(position));
            if !sessions.iter().any(|session| session.tools.contains(&id)) {
                self.warning(Issue::at(
                    group.span(),
                    format!(
                        "no session sends to tool group {:?}",
                        group.get_ref().name.get_ref().as_str()
                    ),
                ));
            }
        }
        for (position, filter) in filters.get_ref().iter().enumerate() {
            let id = FilterId(index(position));
            if !sessions.iter().any(|session| session.filter == Some(id)) {
                self.warning(Issue::at(
                    filter.span(),
                    format!(
                        "no session uses filter {:?}",
                        filter.get_ref().name.get_ref().as_str()
                    ),
                ));
            }
        }
    }
}

/// `"a", "b", "c" and 4 more`: the names of `ids`, the first few.
fn session_names(sessions: &[Session], ids: impl IntoIterator<Item = SessionId>) -> String {
    const SHOWN: usize = 5;
    let names: Vec<String> = ids
        .into_iter()
        .filter_map(|id| sessions.get(id.index()))
        .map(|s| format!("{:?}", s.name))
        .collect();
    if names.len() > SHOWN {
        format!(
            "{} and {} more",
            names[..SHOWN].join(", "),
            names.len() - SHOWN
        )
    } else {
        names.join(", ")
    }
}

/// `"tcp"` for 6, `"47"` for 47: how the file would spell the protocol.
pub(crate) fn protocol_name(protocol: u8) -> String {
    match protocol {
        Protocol::TCP => "tcp".to_owned(),
        Protocol::UDP => "udp".to_owned(),
        Protocol::ICMP => "icmp".to_owned(),
        Protocol::ICMPV6 => "icmpv6".to_owned(),
        other => other.to_string(),
    }
}

/// Where `number` is written in an explicit port list.
fn span_of_port(list: Option<&SpannedList<UdpPort>>, number: u16) -> Option<Range<usize>> {
    list?
        .get_ref()
        .iter()
        .find(|port| port.get_ref().get() == number)
        .map(Spanned::span)
}

/// An absent `[[…]]` list: no entries, so its span is never reported.
fn empty_list<T>() -> SpannedList<T> {
    Spanned::new(0..0, Vec::new())
}

/// `IPv4` or `IPv6`.
fn family_name(address: IpAddr) -> &'static str {
    if address.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The ports a tunnel may leave from, by name: every ingress port (those without an address are
/// named, to say so) and every uplink.
struct Vias<'a> {
    names: Namespace<'a>,
    /// By the index the names resolve to.
    ports: Vec<(AddressedPortId, Option<&'a Addressing>)>,
}

impl<'a> Vias<'a> {
    fn new(
        raw_ingress: &'a SpannedList<RawIngress>,
        ingress: &'a [IngressPort],
        raw_uplinks: &'a SpannedList<RawUplink>,
        uplinks: &'a [UplinkPort],
    ) -> Vias<'a> {
        let mut names = Namespace::new("ingress or uplink port");
        let mut ports = Vec::new();
        // Duplicate names were reported with the ports; these problems are not reported again.
        let mut ignored = Vec::new();
        for (i, (raw, port)) in raw_ingress.get_ref().iter().zip(ingress).enumerate() {
            names.define(&raw.get_ref().name, ports.len(), &mut ignored);
            ports.push((
                AddressedPortId::Ingress(IngressId(index(i))),
                port.addressing.as_ref(),
            ));
        }
        for (u, (raw, port)) in raw_uplinks.get_ref().iter().zip(uplinks).enumerate() {
            names.define(&raw.get_ref().name, ports.len(), &mut ignored);
            ports.push((
                AddressedPortId::Uplink(UplinkId(index(u))),
                Some(&port.addressing),
            ));
        }
        Vias { names, ports }
    }

    /// The addressed port `via` names, or a problem saying why it cannot be one.
    fn resolve(
        &self,
        via: &Spanned<Name>,
        problems: &mut Vec<Issue>,
    ) -> Option<(AddressedPortId, &'a Addressing)> {
        let (id, addressing) = *self.ports.get(self.names.resolve(via, problems)?)?;
        match addressing {
            Some(addressing) => Some((id, addressing)),
            None => {
                problems.push(Issue::at(
                    via.span(),
                    format!(
                        "ingress {:?} has no address: a tunnel leaves from a port that owns one \
                         (address = [\"…\"]) or from an [[uplink]]",
                        via.get_ref().as_str()
                    ),
                ));
                None
            }
        }
    }
}
