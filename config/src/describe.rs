//! What `broker check` prints: the config as the broker understood it, defaults filled in and
//! references resolved, so an operator can compare it with what they meant.

use std::fmt::Write as _;
use std::time::Duration;

use crate::fleet::{self, Mirrored};
use crate::model::*;
use crate::validate::protocol_name;

impl ValidatedConfig {
    /// A multi-line, human-readable summary of the whole config: every port, session, filter
    /// rule and tool group, defaults made explicit, then the warnings.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_description(&mut out);
        out
    }

    fn write_description(&self, out: &mut String) -> std::fmt::Result {
        let broker = &self.broker;
        write!(out, "broker {:?}", broker.name)?;
        if let Some(path) = &self.path {
            write!(out, " from {}", path.display())?;
        }
        writeln!(out)?;
        match broker.metrics {
            Some(address) => writeln!(out, "  metrics: http://{address}/metrics")?,
            None => writeln!(out, "  metrics: off")?,
        }
        if let Some(allow) = &broker.metrics_allow {
            writeln!(out, "  endpoint clients allowed from: {}", list(allow))?;
        }
        if let Some(address) = broker.health {
            writeln!(
                out,
                "  health checks: http://{address}/healthz (GET and HEAD /healthz only)"
            )?;
        }
        if let Some(idle) = broker.stop_when_idle {
            writeln!(
                out,
                "  stops once traffic has been idle for {}",
                duration(idle)
            )?;
        }

        let dpdk = &self.dpdk;
        writeln!(out, "dpdk")?;
        if dpdk.eal_args.is_empty() {
            writeln!(out, "  EAL arguments: none")?;
        } else {
            writeln!(out, "  EAL arguments: {}", dpdk.eal_args.join(" "))?;
        }
        match dpdk.mbufs {
            Some(mbufs) => write!(out, "  mbufs: {mbufs}")?,
            None => write!(out, "  mbufs: computed at start")?,
        }
        writeln!(out, ", cache {} per lcore", dpdk.mbuf_cache)?;
        writeln!(
            out,
            "  descriptors: {} RX per ingress queue, {} TX per tool port",
            dpdk.rx_descriptors, dpdk.tx_descriptors
        )?;

        let queues: u32 = self.ingress.iter().map(|port| u32::from(port.queues)).sum();
        writeln!(out, "workers: {queues} (one per ingress queue)")?;
        match &self.workers.lcores {
            Lcores::Auto => writeln!(out, "  lcores: chosen at start (auto)")?,
            Lcores::List(cpus) => writeln!(out, "  lcores: CPUs {}", list(cpus))?,
        }
        match self.workers.control_core {
            Some(cpu) => writeln!(out, "  control thread: CPU {cpu}")?,
            None => writeln!(out, "  control thread: first CPU of the machine")?,
        }

        writeln!(out, "ingress ports: {}", self.ingress.len())?;
        let width = name_width(self.ingress.iter().map(|port| port.name.as_str()));
        for port in &self.ingress {
            let queues = plural(u32::from(port.queues), "queue");
            let mtu = port
                .mtu
                .map_or("device MTU".to_owned(), |mtu| format!("MTU {mtu}"));
            let rss = match port.rss {
                Rss::Outer => "",
                Rss::Inner => ", RSS on the inner headers",
            };
            writeln!(
                out,
                "  {:width$}  {}  ({queues}{rss}, {mtu})",
                port.name, port.device
            )?;
            if let Some(addressing) = &port.addressing {
                describe_addressing(out, addressing)?;
            }
        }
        if !self.uplinks.is_empty() {
            writeln!(out, "uplinks: {}", self.uplinks.len())?;
            let width = name_width(self.uplinks.iter().map(|port| port.name.as_str()));
            for port in &self.uplinks {
                let mtu = port
                    .mtu
                    .map_or("device MTU".to_owned(), |mtu| format!("MTU {mtu}"));
                writeln!(
                    out,
                    "  {:width$}  {}  (sends only, {mtu})",
                    port.name, port.device
                )?;
                describe_addressing(out, &port.addressing)?;
            }
        }

        let decap = &self.decap;
        writeln!(out, "decap")?;
        writeln!(out, "  VXLAN on UDP {}", or_none(&decap.vxlan_ports))?;
        writeln!(out, "  GENEVE on UDP {}", or_none(&decap.geneve_ports))?;
        match &decap.allowed_sources {
            Some(sources) => writeln!(out, "  mirror sources allowed: {}", or_none(sources))?,
            None => writeln!(out, "  mirror sources allowed: any (no allowed_sources)")?,
        }
        match decap.untunneled_session {
            Some(id) => writeln!(
                out,
                "  untunnelled frames: session {:?}",
                self.session_name(id)
            )?,
            None => writeln!(out, "  untunnelled frames: dropped (not_tunnel)")?,
        }
        match decap.default_session {
            Some(id) => writeln!(out, "  unknown VNIs: session {:?}", self.session_name(id))?,
            None => writeln!(out, "  unknown VNIs: dropped (unknown_session)")?,
        }

        match &self.dedup {
            None => writeln!(out, "dedup: off")?,
            Some(dedup) if !dedup.mode.uses_window() => writeln!(
                out,
                "dedup: mode {}: from the config alone, no table (the copy taken at the \
                 receiver is dropped where the sender's copy reaches the same analyzer)",
                dedup.mode
            )?,
            Some(dedup) => {
                let sender = if dedup.mode.uses_sender_rule() {
                    "the sender rule, then "
                } else {
                    ""
                };
                writeln!(
                    out,
                    "dedup: mode {}: {sender}a window of {} in a table of {} entries (this \
                     broker's copies)",
                    dedup.mode,
                    duration(dedup.window),
                    dedup.capacity
                )?;
                let mut key =
                    "  key: inner packet from L3, TTL/hop limit and IPv4 checksum ignored"
                        .to_owned();
                if dedup.ignore_dscp_ecn {
                    key.push_str(", DSCP/ECN ignored");
                }
                if dedup.ignore_vlan {
                    key.push_str(", inner VLAN tags ignored");
                }
                writeln!(out, "{key}")?;
            }
        }

        writeln!(out, "sessions: {}", self.sessions.len())?;
        let width = name_width(self.sessions.iter().map(|session| session.name.as_str()));
        for session in &self.sessions {
            let vni = session
                .vni
                .map_or("no VNI".to_owned(), |vni| format!("VNI {}", vni.get()));
            let tools: Vec<&str> = session
                .tools
                .iter()
                .map(|id| self.group_name(*id))
                .collect();
            write!(
                out,
                "  {:width$}  {vni} -> {}",
                session.name,
                tools.join(", ")
            )?;
            match session.filter {
                Some(id) => write!(out, "; filter {}", self.filter_name(id))?,
                None => write!(out, "; no filter (everything accepted)")?,
            }
            if !session.source_ips.is_empty() {
                write!(out, "; source IPs {}", list(&session.source_ips))?;
            }
            writeln!(out)?;
        }

        self.describe_both_ends(out)?;

        writeln!(out, "filters: {}", self.filters.len())?;
        for filter in &self.filters {
            writeln!(
                out,
                "  {}: {} rules, then {}",
                filter.name,
                filter.rules.len(),
                filter.default
            )?;
            for rule in &filter.rules {
                writeln!(out, "    {}", describe_rule(rule))?;
            }
        }

        writeln!(out, "tool groups: {}", self.tool_groups.len())?;
        for group in &self.tool_groups {
            let slice = group.slice.map_or("whole frames".to_owned(), |bytes| {
                format!("first {bytes} bytes")
            });
            let dedup = match (&self.dedup, group.dedup, group.balance) {
                (Some(_), true, Balance::RoundRobin) => "deduplicated per group",
                (Some(_), true, _) => "deduplicated per analyzer port",
                (Some(_), false, _) => "not deduplicated",
                (None, _, _) => "dedup off",
            };
            writeln!(
                out,
                "  {}: balance {}, {slice}, {dedup}, on port down {}",
                group.name, group.balance, group.on_port_down
            )?;
            let width = name_width(group.ports.iter().map(|id| self.port_name(*id)));
            for id in &group.ports {
                if let Some(port) = self.tool_ports.get(id.index()) {
                    match &port.output {
                        ToolOutput::Device(device) => {
                            writeln!(out, "    {:width$}  {device}", port.name)?
                        }
                        ToolOutput::Tunnel(tunnel) => writeln!(
                            out,
                            "    {:width$}  {}",
                            port.name,
                            self.describe_tunnel(tunnel)
                        )?,
                    }
                }
            }
        }

        if self.warnings.is_empty() {
            writeln!(out, "warnings: none")?;
        } else {
            writeln!(out, "warnings: {}", self.warnings.len())?;
            for warning in &self.warnings {
                writeln!(out, "  {warning}")?;
            }
        }
        Ok(())
    }

    /// Per session with `source_ips`: the other sessions that may mirror the other end of its
    /// packets, and what its own list says; then the addresses mirrored by several sessions.
    fn describe_both_ends(&self, out: &mut String) -> std::fmt::Result {
        const PEERS_SHOWN: usize = 8;
        if self.sessions.iter().all(|s| s.source_ips.is_empty()) {
            return Ok(());
        }
        let mirrored = Mirrored::new(&self.sessions);
        writeln!(
            out,
            "mirrored at both ends (from source_ips: a packet between two mirrored addresses \
             arrives once from each end)"
        )?;
        let width = name_width(self.sessions.iter().map(|session| session.name.as_str()));
        for (position, session) in self.sessions.iter().enumerate() {
            if session.source_ips.is_empty() {
                continue;
            }
            let peers: Vec<&str> = mirrored
                .peers(SessionId(position as u16))
                .into_iter()
                .map(|id| self.session_name(id))
                .collect();
            let mut line = match peers.len() {
                0 => "no other session mirrors an address of its families".to_owned(),
                n if n > PEERS_SHOWN => format!(
                    "peers mirrored by {} and {} more",
                    peers[..PEERS_SHOWN].join(", "),
                    n - PEERS_SHOWN
                ),
                _ => format!("peers mirrored by {}", peers.join(", ")),
            };
            if fleet::lists_two_of_a_family(session) {
                line.push_str(
                    "; two addresses of one family (if two interfaces, a packet between them \
                     arrives twice under this session)",
                );
            }
            writeln!(out, "  {:width$}  {line}", session.name)?;
        }
        for (address, sessions) in mirrored.shared() {
            let names: Vec<&str> = sessions.iter().map(|id| self.session_name(*id)).collect();
            writeln!(
                out,
                "  {address} is mirrored by {} sessions: {}",
                names.len(),
                names.join(", ")
            )?;
        }
        Ok(())
    }

    fn session_name(&self, id: SessionId) -> &str {
        self.sessions
            .get(id.index())
            .map_or("?", |session| session.name.as_str())
    }

    fn group_name(&self, id: GroupId) -> &str {
        self.tool_groups
            .get(id.index())
            .map_or("?", |group| group.name.as_str())
    }

    fn filter_name(&self, id: FilterId) -> &str {
        self.filters
            .get(id.index())
            .map_or("?", |filter| filter.name.as_str())
    }

    /// `vxlan to 10.20.7.11 (UDP 4789, VNI of the session) via eni, next hop 10.20.5.1; …`
    fn describe_tunnel(&self, tunnel: &TunnelSpec) -> String {
        let mut text = format!("{} to {}", tunnel.encapsulation, tunnel.remote);
        let vni = match tunnel.vni {
            TunnelVni::Session => "VNI of the session".to_owned(),
            TunnelVni::Fixed(vni) => format!("VNI {}", vni.get()),
        };
        let _ = match tunnel.encapsulation {
            Encapsulation::Vxlan | Encapsulation::Geneve => {
                write!(text, " (UDP {}, {vni})", tunnel.dst_port)
            }
            Encapsulation::L2gre => match tunnel.key {
                Some(key) => write!(text, " (key {key})"),
                None => write!(text, " (no key)"),
            },
            Encapsulation::Erspan2 => match tunnel.erspan_session {
                ErspanSession::SessionVni => {
                    write!(text, " (session id: the session's VNI mod 1024)")
                }
                ErspanSession::Fixed(id) => write!(text, " (session id {id})"),
            },
        };
        let via = self.addressed_port_name(tunnel.via);
        let _ = write!(text, " via {via}");
        if tunnel.next_hop != tunnel.remote {
            let _ = write!(text, ", next hop {}", tunnel.next_hop);
        }
        let (mtu, which) = match self.addressed_port_mtu(tunnel.via) {
            Some(mtu) => (mtu, ""),
            None => (DEFAULT_MTU, ", the usual device MTU"),
        };
        let _ = write!(
            text,
            "; adds {} bytes, inner frames up to {} bytes fit MTU {mtu}{which} (longer ones are cut)",
            tunnel.overhead(),
            tunnel.max_inner_len(mtu)
        );
        text
    }

    fn port_name(&self, id: ToolPortId) -> &str {
        self.tool_ports
            .get(id.index())
            .map_or("?", |port| port.name.as_str())
    }
}

/// `#100 accept direction=ingress protocol=tcp dst_cidr=10.0.0.0/8 dst_ports=443 "HTTPS"`: the
/// keys of the file, so a line can be matched with the rule it came from.
/// The lines of an addressed port: its addresses, gateways and kernel side.
fn describe_addressing(out: &mut String, addressing: &Addressing) -> std::fmt::Result {
    let addresses: Vec<String> = [
        addressing.ipv4.map(|net| net.to_string()),
        addressing.ipv6.map(|net| net.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let gateways: Vec<String> = [
        addressing.gateway_v4.map(|a| a.to_string()),
        addressing.gateway_v6.map(|a| a.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    write!(out, "    address {}", addresses.join(", "))?;
    if !gateways.is_empty() {
        write!(out, ", gateway {}", gateways.join(", "))?;
    }
    let kernel = match addressing.kernel {
        Kernel::None => "no kernel side: the broker answers ARP, neighbour solicitations and ping",
        Kernel::Tap => "kernel side on a tap interface (ARP, ND, ping and TCP/UDP to it)",
        Kernel::VirtioUser => "kernel side through virtio-user (ARP, ND, ping and TCP/UDP to it)",
    };
    writeln!(out, "; {kernel}")
}

fn describe_rule(rule: &Rule) -> String {
    let mut text = format!("#{} {}", rule.number, rule.action);
    let mut matches_anything = true;
    let mut condition = |text: &mut String, key: &str, value: String| {
        matches_anything = false;
        let _ = write!(text, " {key}={value}");
    };
    if let Some(direction) = rule.direction {
        condition(&mut text, "direction", direction.to_string());
    }
    if let Some(protocol) = rule.protocol {
        condition(&mut text, "protocol", protocol_name(protocol));
    }
    if let Some(cidr) = rule.src_cidr {
        condition(&mut text, "src_cidr", cidr.to_string());
    }
    if let Some(ports) = rule.src_ports {
        condition(&mut text, "src_ports", port_range(ports));
    }
    if let Some(cidr) = rule.dst_cidr {
        condition(&mut text, "dst_cidr", cidr.to_string());
    }
    if let Some(ports) = rule.dst_ports {
        condition(&mut text, "dst_ports", port_range(ports));
    }
    if matches_anything {
        text.push_str(" (every packet)");
    }
    if let Some(description) = &rule.description {
        let _ = write!(text, " {description:?}");
    }
    text
}

pub(crate) fn port_range(ports: PortRange) -> String {
    if ports.first == ports.last {
        ports.first.to_string()
    } else {
        format!("{}-{}", ports.first, ports.last)
    }
}

fn duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_none<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        list(items)
    }
}

fn plural(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|name| name.chars().count()).max().unwrap_or(0)
}
