//! The validated configuration: the only form of the config the runtime accepts.
//!
//! Every name of the TOML file is resolved here into an index (`SessionId`, `GroupId`, …), every
//! value is range-checked and every list is in the order the data plane wants (filter rules by
//! number). Building one is the job of [`crate::load`] / [`crate::parse`]; nothing else in the
//! workspace constructs these types from untrusted input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Declares an enum the config writes as a keyword: each variant with its keyword, which is also
/// what [`std::fmt::Display`] and `as_str` give back, and `ALL`, the variants in order (the
/// keywords `Deserialize` accepts). One table, so the file's spelling and the broker's labels
/// (metrics, status, `broker check`) cannot drift apart.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[doc = $doc:literal])+ $variant:ident = $keyword:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword the config file uses for this value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $keyword,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Index types: positions in the vectors of [`ValidatedConfig`]. `u16` keeps per-packet verdicts
/// small; validation refuses configs with more items than fit.
macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u16);
        impl $name {
            /// The position in its vector.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}
index_type!(
    /// Position of a session in [`ValidatedConfig::sessions`].
    SessionId
);
index_type!(
    /// Position of a filter in [`ValidatedConfig::filters`].
    FilterId
);
index_type!(
    /// Position of a tool group in [`ValidatedConfig::tool_groups`].
    GroupId
);
index_type!(
    /// Position of a tool port in [`ValidatedConfig::tool_ports`] (all groups' ports, flattened).
    ToolPortId
);
index_type!(
    /// Position of an ingress port in [`ValidatedConfig::ingress`].
    IngressId
);
index_type!(
    /// Position of an uplink in [`ValidatedConfig::uplinks`].
    UplinkId
);

/// The MTU a port has when the config does not set one (Ethernet's).
pub const DEFAULT_MTU: u16 = 1500;

/// A checked configuration, names resolved to indices.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedConfig {
    /// The file it was read from, when it was read from a file.
    pub path: Option<PathBuf>,
    pub broker: BrokerSettings,
    pub dpdk: DpdkSettings,
    pub workers: WorkerSettings,
    /// Ports the mirrored traffic arrives on. At least one.
    pub ingress: Vec<IngressPort>,
    /// Addressed ports used only to send (tunnel tool ports' `via`).
    pub uplinks: Vec<UplinkPort>,
    pub decap: DecapSettings,
    /// `None` when de-duplication is disabled (no `[dedup]` table, or `window`/`capacity` 0).
    pub dedup: Option<DedupSettings>,
    pub sessions: Vec<Session>,
    pub filters: Vec<Filter>,
    pub tool_groups: Vec<ToolGroup>,
    /// Every tool port of every group, flattened; a group lists its ports by [`ToolPortId`].
    pub tool_ports: Vec<ToolPort>,
    /// Things that are legal but probably not what the operator wants (printed by `check` and at
    /// start), e.g. "no `decap.allowed_sources`: any host may inject packets".
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSettings {
    /// Instance name, used in logs and as the `broker` label of metrics.
    pub name: String,
    /// Lab mode: once packets have flowed and the ingress has been idle this long, drain and exit.
    pub stop_when_idle: Option<Duration>,
    /// Listen address of the Prometheus/status endpoint; `None` when disabled (`metrics = ""`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Who may connect to the endpoint (peer addresses); `None`: whoever can reach it.
    pub metrics_allow: Option<Vec<IpNet>>,
    /// Listen address of the health listener (`GET`/`HEAD /healthz` and nothing else), for a
    /// load balancer's health checks; `None`: none.
    pub health: Option<std::net::SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkSettings {
    /// Extra EAL arguments, passed first, verbatim (`--no-huge`, `-m 1024`, `--no-pci`, …).
    pub eal_args: Vec<String>,
    /// Mbufs in the pool; `None`: computed from ports, queues and descriptors at start.
    pub mbufs: Option<u32>,
    /// Per-lcore mempool cache size.
    pub mbuf_cache: u32,
    /// RX descriptors per ingress queue.
    pub rx_descriptors: u16,
    /// TX descriptors per tool-port queue.
    pub tx_descriptors: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lcores {
    /// Chosen with hwloc on the ingress port's NUMA node, skipping the control core.
    Auto,
    /// One CPU id per worker, in ingress/queue order.
    List(Vec<u32>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    pub lcores: Lcores,
    /// CPU the control thread (EAL main lcore) runs on; `None`: the first CPU of the machine.
    pub control_core: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPort {
    pub name: String,
    /// DPDK device: a PCI address (`0000:3b:00.0`, optionally `,devargs`) or a vdev
    /// (`net_pcap0,rx_pcap=…`, `net_af_packet0,iface=…`).
    pub device: Device,
    /// RX queues, one worker each.
    pub queues: u16,
    /// MTU to set on the port; `None`: leave the device's default.
    pub mtu: Option<u16>,
    /// What the NIC hashes to spread packets over the RX queues.
    pub rss: Rss,
    /// The port's own addresses, gateways and kernel side; `None`: the port owns no address
    /// (it only receives mirrored traffic sent to its MAC or in promiscuous mode).
    pub addressing: Option<Addressing>,
}

/// An addressed port used only to send: tunnel tool ports leave through it; what it receives
/// goes to its kernel side (or, without one, to the broker's neighbour handling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkPort {
    pub name: String,
    pub device: Device,
    /// MTU to set on the port; `None`: leave the device's default.
    pub mtu: Option<u16>,
    pub addressing: Addressing,
}

keyword_enum! {
    /// The kernel side of an addressed port: where the traffic for the port itself goes (ARP,
    /// neighbour discovery, ping, TCP and UDP to its addresses).
    pub enum Kernel {
        /// No kernel side: the broker answers ARP, neighbour solicitations and echo requests
        /// itself; other traffic to the port's addresses is dropped (outcome `control`, counted).
        None = "none",
        /// A kernel interface on DPDK's `net_tap` (one system call per packet: fine for ARP,
        /// ping and health checks; works everywhere).
        Tap = "tap",
        /// A kernel interface through virtio-user and vhost-net (DPDK's exception path for
        /// production; needs the `vhost_net` kernel module).
        VirtioUser = "virtio-user",
    }
}

/// What an addressed port owns: at most one address per family with its subnet, a gateway per
/// family for remotes off the subnet, and its kernel side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    /// Next hop for IPv4 remotes off `ipv4`'s subnet (inside it).
    pub gateway_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 remotes off `ipv6`'s subnet (link-local, or inside it).
    pub gateway_v6: Option<Ipv6Addr>,
    pub kernel: Kernel,
}

impl Addressing {
    /// The port's own address of `remote`'s family.
    pub fn own_address_for(&self, remote: IpAddr) -> Option<IpAddr> {
        match remote {
            IpAddr::V4(_) => self.ipv4.map(|net| IpAddr::V4(net.addr())),
            IpAddr::V6(_) => self.ipv6.map(|net| IpAddr::V6(net.addr())),
        }
    }

    /// Whether `address` is one of the port's own.
    pub fn owns(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(a) => self.ipv4.is_some_and(|net| net.addr() == a),
            IpAddr::V6(a) => self.ipv6.is_some_and(|net| net.addr() == a),
        }
    }

    /// The next hop toward `remote`: `remote` itself on one of the port's subnets, else the
    /// gateway of its family; `None` when the port can reach neither.
    pub fn next_hop(&self, remote: IpAddr) -> Option<IpAddr> {
        match remote {
            IpAddr::V4(a) => match self.ipv4 {
                Some(net) if net.contains(&a) => Some(remote),
                Some(_) => self.gateway_v4.map(IpAddr::V4),
                None => None,
            },
            IpAddr::V6(a) => match self.ipv6 {
                Some(net) if net.contains(&a) => Some(remote),
                Some(_) => self.gateway_v6.map(IpAddr::V6),
                None => None,
            },
        }
    }
}

/// An addressed port: an ingress port with an address, or an uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressedPortId {
    Ingress(IngressId),
    Uplink(UplinkId),
}

keyword_enum! {
    /// What an ingress port's RSS hashes (only matters with more than one queue).
    pub enum Rss {
        /// The outer IP addresses and UDP/TCP ports, as every NIC can: the two copies of a packet
        /// mirrored at both ends may reach different workers.
        Outer = "outer",
        /// The first inner headers of VXLAN and GENEVE packets, with a symmetric key (NIC flow
        /// rules): both copies of a packet and both directions of a connection reach one worker,
        /// so each flow leaves in arrival order. Start fails on a device that cannot.
        Inner = "inner",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecapSettings {
    /// UDP destination ports recognised as VXLAN (RFC 7348).
    pub vxlan_ports: Vec<u16>,
    /// UDP destination ports recognised as GENEVE (RFC 8926).
    pub geneve_ports: Vec<u16>,
    /// Outer source addresses allowed to send mirrored traffic; `None`: everyone (warned).
    pub allowed_sources: Option<Vec<IpNet>>,
    /// Session that frames which are not tunnelled go to; `None`: they are dropped (`not_tunnel`).
    /// Set by `pass_untunneled = true` + `untunneled_session = "…"`.
    pub untunneled_session: Option<SessionId>,
    /// Session that tunnelled frames with an unknown VNI go to; `None`: dropped (`unknown_session`).
    pub default_session: Option<SessionId>,
}

keyword_enum! {
    /// How de-duplication recognises the second copy of a packet mirrored at both of its ends.
    pub enum DedupMode {
        /// A table shared by the broker's workers remembers what each analyzer received within
        /// the window: the copy checked second is dropped. It sees only the copies this broker
        /// receives.
        Window = "window",
        /// From the config alone, per packet, no table: the copy mirrored at the receiver is
        /// dropped where the copy mirrored at the sender reaches the same analyzer. Every broker
        /// of a fleet makes the same choice.
        Sender = "sender",
        /// The sender rule, then the window for what is left.
        SenderWindow = "sender+window",
    }
}

impl DedupMode {
    /// Whether the mode keeps a table (the window).
    pub const fn uses_window(self) -> bool {
        matches!(self, DedupMode::Window | DedupMode::SenderWindow)
    }

    /// Whether the mode applies the sender rule.
    pub const fn uses_sender_rule(self) -> bool {
        matches!(self, DedupMode::Sender | DedupMode::SenderWindow)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupSettings {
    /// How the copies of a packet mirrored at both ends are recognised.
    pub mode: DedupMode,
    /// A tool port (a round-robin group: the group) receives an inner packet at most once within
    /// this window. Non-zero. Unused in mode `"sender"`.
    pub window: Duration,
    /// Entries in the shared table (fixed at start). Non-zero. Unused in mode `"sender"`.
    pub capacity: u32,
    /// Also ignore the DSCP/ECN bits (IPv4 TOS, IPv6 traffic class) in the key.
    pub ignore_dscp_ecn: bool,
    /// Leave inner VLAN tags out of the key (by default two copies under different inner VLAN
    /// ids are different packets).
    pub ignore_vlan: bool,
}

/// A 24-bit VXLAN/GENEVE network identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    pub const MAX: u32 = 0x00FF_FFFF;

    /// `None` when `value` does not fit in 24 bits.
    pub const fn new(value: u32) -> Option<Vni> {
        if value <= Self::MAX {
            Some(Vni(value))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    /// `None` only for a session used as `default_session` / `untunneled_session`.
    pub vni: Option<Vni>,
    /// `None`: every packet is accepted.
    pub filter: Option<FilterId>,
    /// Tool groups the session's packets go to, in config order; at least one, no repeats.
    pub tools: Vec<GroupId>,
    /// The mirrored ENI's addresses: give packets a direction (ingress when the inner destination
    /// is one of them, egress when the inner source is).
    pub source_ips: Vec<IpAddr>,
}

keyword_enum! {
    /// What a filter rule, or a filter's default, does with a packet.
    pub enum Action {
        /// The packet goes on to the session's tool groups.
        Accept = "accept",
        /// The packet is dropped (outcome `filtered`).
        Reject = "reject",
    }
}

keyword_enum! {
    /// Which way a packet crossed the mirrored interface.
    pub enum Direction {
        /// Towards the mirrored interface: the inner destination is one of the session's
        /// `source_ips`.
        Ingress = "ingress",
        /// From the mirrored interface: the inner source is one of the session's `source_ips`.
        Egress = "egress",
    }
}

/// An inclusive port range, `first <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// 1–32766, unique within the filter; lower numbers are evaluated first.
    pub number: u16,
    pub action: Action,
    /// `None`: both directions, and packets with no direction.
    pub direction: Option<Direction>,
    /// IP protocol number (upper-layer protocol after IPv6 extension headers); `None`: any.
    pub protocol: Option<u8>,
    /// `None`: any address of any family. When both are set they are of one family.
    pub src_cidr: Option<IpNet>,
    pub dst_cidr: Option<IpNet>,
    /// Only TCP/UDP packets match a rule with a port range.
    pub src_ports: Option<PortRange>,
    pub dst_ports: Option<PortRange>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    /// Applied when no rule matches.
    pub default: Action,
    /// Sorted by `number`, ascending.
    pub rules: Vec<Rule>,
}

keyword_enum! {
    /// How a tool group chooses the port of a packet.
    pub enum Balance {
        /// Mirror source (outer source address + VNI): one mirrored ENI → one analyzer.
        Source = "source",
        /// Symmetric inner 5-tuple: both directions of a connection → one analyzer.
        Flow = "flow",
        /// Symmetric inner address pair (fragments stay with their flow).
        IpPair = "ip-pair",
        /// Packet by packet, in turn.
        RoundRobin = "round-robin",
    }
}

keyword_enum! {
    /// What a tool group does with the share of a port that is down.
    pub enum OnPortDown {
        /// Move the dead port's keys to the live ports (and back when it returns).
        Rebalance = "rebalance",
        /// Drop (and count) what would have gone to the dead port.
        Drop = "drop",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolGroup {
    pub name: String,
    pub balance: Balance,
    /// Deliver only the first `slice` bytes of the inner frame; `None`: whole frames.
    pub slice: Option<u16>,
    /// Take part in de-duplication (when `[dedup]` is enabled).
    pub dedup: bool,
    pub on_port_down: OnPortDown,
    /// At least one, in config order.
    pub ports: Vec<ToolPortId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolPort {
    /// Unique among all ports (ingress, uplink and tool).
    pub name: String,
    pub group: GroupId,
    /// Where its copies go.
    pub output: ToolOutput,
}

impl ToolPort {
    /// The DPDK device of a cabled tool port.
    pub fn device(&self) -> Option<&Device> {
        match &self.output {
            ToolOutput::Device(device) => Some(device),
            ToolOutput::Tunnel(_) => None,
        }
    }

    /// The tunnel of a tool port that reaches its analyzer over the network.
    pub fn tunnel(&self) -> Option<&TunnelSpec> {
        match &self.output {
            ToolOutput::Device(_) => None,
            ToolOutput::Tunnel(tunnel) => Some(tunnel),
        }
    }
}

/// Where a tool port's copies go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolOutput {
    /// Out of a DPDK port cabled to the analyzer (unique among all ports' devices).
    Device(Device),
    /// Encapsulated toward the analyzer's address, out of an addressed port.
    Tunnel(TunnelSpec),
}

keyword_enum! {
    /// How a copy is encapsulated toward an analyzer.
    pub enum Encapsulation {
        /// VXLAN (RFC 7348) as AWS Traffic Mirroring sends it: analyzers set up for AWS need no
        /// change.
        Vxlan = "vxlan",
        /// GENEVE (RFC 8926) carrying Ethernet, with an option of the broker's giving the
        /// mirror session's VNI and the packet's direction.
        Geneve = "geneve",
        /// Transparent Ethernet bridging over GRE (RFC 2784/2890), with an optional key.
        L2gre = "l2gre",
        /// ERSPAN type II over GRE: a session id and a sequence number.
        Erspan2 = "erspan2",
    }
}

/// The VNI a VXLAN or GENEVE tool port sends under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelVni {
    /// The VNI of the mirror session each copy came from (the packet's own VNI for a session
    /// without one, 0 for untunnelled frames).
    Session,
    Fixed(Vni),
}

/// The session id an ERSPAN tool port sends under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErspanSession {
    /// The mirror session's VNI modulo 1024.
    SessionVni,
    /// 0..=1023.
    Fixed(u16),
}

/// A tool port that reaches its analyzer over the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSpec {
    pub encapsulation: Encapsulation,
    /// The analyzer's address.
    pub remote: IpAddr,
    /// The addressed port the copies leave from (it has an address of `remote`'s family).
    pub via: AddressedPortId,
    /// Where the frames go first: `remote` on the via port's subnet, else its gateway.
    pub next_hop: IpAddr,
    /// VXLAN and GENEVE.
    pub vni: TunnelVni,
    /// UDP destination port (VXLAN and GENEVE).
    pub dst_port: u16,
    /// L2GRE.
    pub key: Option<u32>,
    /// ERSPAN II.
    pub erspan_session: ErspanSession,
}

/// Bytes of the outer Ethernet header every encapsulation starts with.
pub const OUTER_ETHERNET_LEN: usize = 14;

impl TunnelSpec {
    /// Bytes the encapsulation adds in front of an inner Ethernet frame: outer Ethernet, IP
    /// (20 or 40), then UDP (8) + VXLAN (8), UDP + GENEVE (8) + the broker's option (4 + 8),
    /// GRE (4, + 4 with a key), or GRE with a sequence number (8) + ERSPAN II (8).
    pub fn overhead(&self) -> usize {
        let ip = if self.remote.is_ipv4() { 20 } else { 40 };
        let tunnel = match self.encapsulation {
            Encapsulation::Vxlan => 8 + 8,
            Encapsulation::Geneve => 8 + 8 + 4 + 8,
            Encapsulation::L2gre => 4 + if self.key.is_some() { 4 } else { 0 },
            Encapsulation::Erspan2 => 8 + 8,
        };
        OUTER_ETHERNET_LEN + ip + tunnel
    }

    /// The largest inner frame that fits an IP MTU of `mtu` once encapsulated (copies longer
    /// than this are cut to it, never fragmented).
    pub fn max_inner_len(&self, mtu: u16) -> usize {
        usize::from(mtu).saturating_sub(self.overhead() - OUTER_ETHERNET_LEN)
    }
}

/// A PCI address, `domain:bus:device.function` (`0000:3b:00.0`). The config also accepts the
/// short form `bus:device.function` (domain 0), and hex digits in either case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciAddress {
    /// Parses `DDDD:BB:DD.F` or `BB:DD.F` (the device number below 0x20, the function below 8);
    /// `None` for anything else. The one place the broker reads PCI addresses.
    pub fn parse(text: &str) -> Option<PciAddress> {
        let (domain, rest) = match text.len() {
            12 => (
                u16::from_str_radix(text.get(..4)?, 16).ok()?,
                text.get(4..)?,
            ),
            7 => (0, text.get(..0)?),
            _ => return None,
        };
        let rest = if text.len() == 12 {
            rest.strip_prefix(':')?
        } else {
            text
        };
        let hex_u8 = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(s, 16).ok())
                .flatten()
        };
        let (bus, rest) = rest.split_once(':')?;
        let (device, function) = rest.split_once('.')?;
        let function = match function.as_bytes() {
            [digit @ b'0'..=b'7'] => digit - b'0',
            _ => return None,
        };
        let (bus, device) = (hex_u8(bus)?, hex_u8(device)?);
        (device < 0x20).then_some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

impl std::fmt::Display for PciAddress {
    /// The full, lowercase form DPDK names the port by.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// What kind of DPDK device a port is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A PCI device (a NIC or one of its virtual functions), passed to EAL with `-a`.
    Pci(PciAddress),
    /// A virtual device, passed to EAL with `--vdev`: `name` is what DPDK calls the port
    /// (`net_pcap0`), `driver` the driver the name asks for (`net_pcap`: the name without its
    /// instance number).
    Vdev { name: String, driver: String },
}

/// One `key=value` (or bare `key`) device argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceArg {
    pub key: String,
    pub value: Option<String>,
}

/// A DPDK device as the config names it: a PCI address or a vdev name, and its arguments
/// (`net_pcap0,rx_pcap=in.pcap,infinite_rx=1`). Read once, here; the runtime asks it for what it
/// needs (the EAL option, the port's name, an argument) and never splits the text again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// As written in the config (what EAL is given, what `/status` shows).
    text: String,
    kind: DeviceKind,
    args: Vec<DeviceArg>,
}

impl Device {
    /// Builds a device from its parts (the config's parser checked `text` splits into them).
    pub(crate) fn new(text: String, kind: DeviceKind, args: Vec<DeviceArg>) -> Device {
        Device { text, kind, args }
    }

    /// The device string as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> &DeviceKind {
        &self.kind
    }

    /// The PCI address of a PCI device.
    pub fn pci_address(&self) -> Option<PciAddress> {
        match self.kind {
            DeviceKind::Pci(address) => Some(address),
            DeviceKind::Vdev { .. } => None,
        }
    }

    /// The driver a vdev asks for (`net_pcap`); `None` for a PCI device (its driver is the one
    /// bound to it, known only once DPDK probed it).
    pub fn vdev_driver(&self) -> Option<&str> {
        match &self.kind {
            DeviceKind::Vdev { driver, .. } => Some(driver),
            DeviceKind::Pci(_) => None,
        }
    }

    /// What DPDK names the port: the full PCI address, or the vdev name. Two devices with the
    /// same port name are one device.
    pub fn port_name(&self) -> String {
        match &self.kind {
            DeviceKind::Pci(address) => address.to_string(),
            DeviceKind::Vdev { name, .. } => name.clone(),
        }
    }

    /// The device arguments, in order.
    pub fn args(&self) -> &[DeviceArg] {
        &self.args
    }

    /// The values of every argument named `key`, in order (`rx_pcap` may repeat).
    pub fn arg_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.args
            .iter()
            .filter(move |arg| arg.key == key)
            .filter_map(|arg| arg.value.as_deref())
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<str> for Device {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Device {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl ValidatedConfig {
    /// The name of an addressed port.
    pub fn addressed_port_name(&self, id: AddressedPortId) -> &str {
        match id {
            AddressedPortId::Ingress(i) => &self.ingress[i.index()].name,
            AddressedPortId::Uplink(u) => &self.uplinks[u.index()].name,
        }
    }

    /// What an addressed port owns.
    pub fn addressing(&self, id: AddressedPortId) -> &Addressing {
        match id {
            AddressedPortId::Ingress(i) => self.ingress[i.index()]
                .addressing
                .as_ref()
                .expect("the config resolves `via` only to ingress ports with an address"),
            AddressedPortId::Uplink(u) => &self.uplinks[u.index()].addressing,
        }
    }

    /// The MTU set on an addressed port (`None`: the device's default).
    pub fn addressed_port_mtu(&self, id: AddressedPortId) -> Option<u16> {
        match id {
            AddressedPortId::Ingress(i) => self.ingress[i.index()].mtu,
            AddressedPortId::Uplink(u) => self.uplinks[u.index()].mtu,
        }
    }

    /// Every addressed port with what it owns, ingress ports first, in config order.
    pub fn addressed_ports(&self) -> impl Iterator<Item = (AddressedPortId, &Addressing)> {
        let ingress = self.ingress.iter().enumerate().filter_map(|(i, port)| {
            port.addressing
                .as_ref()
                .map(|a| (AddressedPortId::Ingress(IngressId(i as u16)), a))
        });
        let uplinks = self.uplinks.iter().enumerate().map(|(u, port)| {
            (
                AddressedPortId::Uplink(UplinkId(u as u16)),
                &port.addressing,
            )
        });
        ingress.chain(uplinks)
    }
}
