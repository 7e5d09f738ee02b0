//! The validated configuration: the only form of the config the runtime accepts.
//!
//! Every name of the TOML file is resolved here into an index (`SessionId`, `GroupId`, …), every
//! value is range-checked and every list is in the order the data plane wants (filter rules by
//! number). Building one is the job of [`crate::load`] / [`crate::parse`]; nothing else in the
//! workspace constructs these types from untrusted input.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

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
    pub device: String,
    /// RX queues, one worker each.
    pub queues: u16,
    /// MTU to set on the port; `None`: leave the device's default.
    pub mtu: Option<u16>,
    /// What the NIC hashes to spread packets over the RX queues.
    pub rss: Rss,
}

/// What an ingress port's RSS hashes (only matters with more than one queue).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rss {
    /// The outer IP addresses and UDP/TCP ports, as every NIC can: the two copies of a packet
    /// mirrored at both ends may reach different workers.
    #[default]
    Outer,
    /// The first inner headers of VXLAN and GENEVE packets, with a symmetric key (NIC flow rules):
    /// both copies of a packet and both directions of a connection reach one worker, so each
    /// flow leaves in arrival order. Start fails on a device that cannot.
    Inner,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupSettings {
    /// A tool group receives an inner packet at most once within this window. Non-zero.
    pub window: Duration,
    /// Entries in the shared table (fixed at start). Non-zero.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Towards the mirrored interface: the inner destination is one of the session's `source_ips`.
    Ingress,
    /// From the mirrored interface: the inner source is one of the session's `source_ips`.
    Egress,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Balance {
    /// Mirror source (outer source address + VNI): one mirrored ENI → one analyzer.
    Source,
    /// Symmetric inner 5-tuple: both directions of a connection → one analyzer.
    Flow,
    /// Symmetric inner address pair (fragments stay with their flow).
    IpPair,
    /// Packet by packet, in turn.
    RoundRobin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnPortDown {
    /// Move the dead port's keys to the live ports (and back when it returns).
    Rebalance,
    /// Drop (and count) what would have gone to the dead port.
    Drop,
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
    /// Unique among all ports (ingress and tool).
    pub name: String,
    /// DPDK device, as for [`IngressPort::device`]; unique among all ports.
    pub device: String,
    pub group: GroupId,
}
