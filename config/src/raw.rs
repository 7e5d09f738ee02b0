//! The TOML file as written: one struct per table, `deny_unknown_fields` everywhere.
//!
//! Values are already checked one by one (see [`crate::values`]); what relates items to each
//! other (names, references, duplicates) is checked by [`crate::validate`], which is why names,
//! references and the values of unique keys keep their [`Spanned`] location. Defaults that depend
//! on nothing else are applied there too, so that this module reads like the schema.

use serde::Deserialize;
use toml::Spanned;

use crate::model::{
    Action, Balance, DedupMode, Device, Direction, Encapsulation, Kernel, OnPortDown, PortRange,
    Rss, Vni,
};
use crate::values::{
    Address, Cidr, CpuId, DedupCapacity, DedupWindow, DescriptorCount, ErspanSessionId, GreKey,
    HumanDuration, InterfaceAddress, LcoresSetting, ListenAddress, MbufCache, MbufCount,
    MetricsAddress, Mtu, Name, Protocol, QueueCount, RuleNumber, SliceLength, TunnelVniSetting,
    UdpPort,
};

/// A list that keeps the location of the list and of each entry.
pub type SpannedList<T> = Spanned<Vec<Spanned<T>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub broker: RawBroker,
    #[serde(default)]
    pub dpdk: RawDpdk,
    #[serde(default)]
    pub workers: RawWorkers,
    pub ingress: SpannedList<RawIngress>,
    #[serde(rename = "uplink")]
    pub uplinks: Option<SpannedList<RawUplink>>,
    #[serde(default)]
    pub decap: RawDecap,
    pub dedup: Option<Spanned<RawDedup>>,
    #[serde(rename = "session")]
    pub sessions: Option<SpannedList<RawSession>>,
    #[serde(rename = "filter")]
    pub filters: Option<SpannedList<RawFilter>>,
    #[serde(rename = "tool_group")]
    pub tool_groups: Option<SpannedList<RawToolGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBroker {
    pub name: Name,
    pub stop_when_idle: Option<Spanned<HumanDuration>>,
    pub metrics: Option<Spanned<MetricsAddress>>,
    pub metrics_allow: Option<Spanned<Vec<Cidr>>>,
    pub health: Option<Spanned<ListenAddress>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpdk {
    #[serde(default)]
    pub eal_args: Vec<Spanned<String>>,
    pub mbufs: Option<Spanned<MbufCount>>,
    pub mbuf_cache: Option<MbufCache>,
    pub rx_descriptors: Option<DescriptorCount>,
    pub tx_descriptors: Option<DescriptorCount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkers {
    pub lcores: Option<Spanned<LcoresSetting>>,
    pub control_core: Option<Spanned<CpuId>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngress {
    pub name: Spanned<Name>,
    pub device: Spanned<Device>,
    pub queues: Option<QueueCount>,
    pub mtu: Option<Mtu>,
    pub rss: Option<Spanned<Rss>>,
    pub address: Option<SpannedList<InterfaceAddress>>,
    pub gateway: Option<SpannedList<Address>>,
    pub kernel: Option<Spanned<Kernel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    pub name: Spanned<Name>,
    pub device: Spanned<Device>,
    pub mtu: Option<Mtu>,
    pub address: SpannedList<InterfaceAddress>,
    pub gateway: Option<SpannedList<Address>>,
    pub kernel: Option<Spanned<Kernel>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecap {
    pub vxlan_ports: Option<SpannedList<UdpPort>>,
    pub geneve_ports: Option<SpannedList<UdpPort>>,
    pub allowed_sources: Option<Spanned<Vec<Cidr>>>,
    pub pass_untunneled: Option<Spanned<bool>>,
    pub untunneled_session: Option<Spanned<Name>>,
    pub default_session: Option<Spanned<Name>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedup {
    pub mode: Option<Spanned<DedupMode>>,
    pub window: Option<DedupWindow>,
    pub capacity: Option<DedupCapacity>,
    #[serde(default)]
    pub ignore_dscp_ecn: bool,
    #[serde(default)]
    pub ignore_vlan: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub name: Spanned<Name>,
    pub vni: Option<Spanned<Vni>>,
    pub tools: SpannedList<Name>,
    pub filter: Option<Spanned<Name>>,
    #[serde(default)]
    pub source_ips: Vec<Spanned<Address>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    pub name: Spanned<Name>,
    pub default: Option<Action>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub number: Spanned<RuleNumber>,
    pub action: Action,
    pub direction: Option<Direction>,
    pub protocol: Option<Spanned<Protocol>>,
    pub src_cidr: Option<Spanned<Cidr>>,
    pub dst_cidr: Option<Spanned<Cidr>>,
    pub src_ports: Option<Spanned<PortRange>>,
    pub dst_ports: Option<Spanned<PortRange>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolGroup {
    pub name: Spanned<Name>,
    pub balance: Option<Balance>,
    pub slice: Option<SliceLength>,
    pub dedup: Option<bool>,
    pub on_port_down: Option<OnPortDown>,
    pub ports: SpannedList<RawToolPort>,
}

/// A tool port: a `device`, or a `tunnel` to a `remote` address `via` an addressed port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolPort {
    pub name: Spanned<Name>,
    pub device: Option<Spanned<Device>>,
    pub tunnel: Option<Spanned<Encapsulation>>,
    pub remote: Option<Spanned<Address>>,
    pub via: Option<Spanned<Name>>,
    pub vni: Option<Spanned<TunnelVniSetting>>,
    pub dst_port: Option<Spanned<UdpPort>>,
    pub key: Option<Spanned<GreKey>>,
    pub session_id: Option<Spanned<ErspanSessionId>>,
}
