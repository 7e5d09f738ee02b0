//! Scalar values of the TOML file that check themselves as they deserialize.
//!
//! "Parse, don't validate": a [`Name`], a [`Cidr`] or a [`Ranged`] integer cannot exist with a bad
//! value, so the checks of [`crate::validate`] only deal with how items relate to each other
//! (references, duplicates). A value that fails here becomes a `toml` error, which carries the
//! value's span: the message says what was expected and the location comes for free.
//!
//! # Limitations
//! Serde stops at the first bad value, so only the first one of these errors is reported.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Unexpected, Visitor};
use toml::Spanned;

use crate::model::{
    Action, Balance, DedupMode, Device, DeviceArg, DeviceKind, Direction, Encapsulation, Kernel,
    OnPortDown, PciAddress, PortRange, Rss, Vni,
};

/// An integer of the TOML file that must lie in `MIN..=MAX`, stored as `T`.
///
/// `MIN`/`MAX` are chosen within `T`'s range for every alias below, so the conversion after the
/// range check cannot fail; it is still checked rather than cast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ranged<T, const MIN: i64, const MAX: i64>(T);

impl<T: Copy, const MIN: i64, const MAX: i64> Ranged<T, MIN, MAX> {
    pub fn get(self) -> T {
        self.0
    }
}

impl<'de, T, const MIN: i64, const MAX: i64> Deserialize<'de> for Ranged<T, MIN, MAX>
where
    T: TryFrom<i64>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RangedVisitor<T, const MIN: i64, const MAX: i64>(PhantomData<T>);

        impl<T: TryFrom<i64>, const MIN: i64, const MAX: i64> Visitor<'_> for RangedVisitor<T, MIN, MAX> {
            type Value = Ranged<T, MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer in {MIN}..={MAX}")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                if !(MIN..=MAX).contains(&value) {
                    return Err(E::custom(format!(
                        "{value} is out of range: expected an integer in {MIN}..={MAX}"
                    )));
                }
                T::try_from(value)
                    .map(Ranged)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                match i64::try_from(value) {
                    Ok(value) => self.visit_i64(value),
                    Err(_) => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
                }
            }
        }

        deserializer.deserialize_i64(RangedVisitor::<T, MIN, MAX>(PhantomData))
    }
}

/// Queues of one ingress port. 64 is far beyond what one port needs and keeps worker counts sane.
pub type QueueCount = Ranged<u16, 1, 64>;
/// 68 is the IPv4 minimum MTU (RFC 791); 9216 the largest jumbo frame common NICs accept.
pub type Mtu = Ranged<u16, 68, 9216>;
/// DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE` is 512.
pub type MbufCache = Ranged<u32, 0, 512>;
pub type MbufCount = Ranged<u32, 1, { u32::MAX as i64 }>;
/// A CPU id: `cpu_set_t` (the affinity mask of Linux's glibc) holds 1024 CPUs.
pub type CpuId = Ranged<u32, 0, 1023>;
/// Entries of the dedup table; 2^28 entries is already several GiB of table.
pub type DedupCapacity = Ranged<u32, 0, { 1 << 28 }>;
/// A UDP destination port to recognise a tunnel by; port 0 is never a destination.
pub type UdpPort = Ranged<u16, 1, 65535>;
/// AWS Traffic Mirroring's rule numbers: 1..=32766.
pub type RuleNumber = Ranged<u16, 1, 32766>;

/// A name of the config (broker, port, session, filter, tool group): 1–64 ASCII letters, digits,
/// `-`, `_` or `.`, starting with a letter or digit. Names end up as metric labels, in logs and on
/// command lines, where anything else would need quoting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for Name {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut chars = text.chars();
        match chars.next() {
            None => return Err("a name may not be empty".to_owned()),
            Some(first) if !first.is_ascii_alphanumeric() => {
                return Err(format!("name {text:?} must start with a letter or digit"));
            }
            Some(_) => {}
        }
        if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c))) {
            return Err(format!(
                "name {text:?} contains {bad:?}: use ASCII letters, digits, '-', '_' or '.'"
            ));
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!(
                "name {text:?} is {} characters long, at most {} are allowed",
                text.len(),
                Self::MAX_LEN
            ));
        }
        Ok(Name(text.to_owned()))
    }
}

impl FromStr for Device {
    type Err = String;

    /// `NAME[,ARG…]` where NAME is a PCI address (`0000:3b:00.0`, `3b:00.0`) or a vdev name
    /// (`net_pcap0`), and each ARG is `key=value` or a bare `key`.
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("device {text:?} contains {bad:?}"));
        }
        let mut parts = text.split(',');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err(format!(
                "device {text:?} has no device name before its arguments \
                 (expected e.g. \"0000:3b:00.0\" or \"net_pcap0,rx_pcap=in.pcap\")"
            ));
        }
        let mut args = Vec::new();
        for arg in parts {
            let (key, value) = match arg.split_once('=') {
                Some((key, value)) => (key, Some(value.to_owned())),
                None => (arg, None),
            };
            if key.is_empty() {
                return Err(format!(
                    "device {text:?}: argument {arg:?} has no name (expected key=value)"
                ));
            }
            args.push(DeviceArg {
                key: key.to_owned(),
                value,
            });
        }
        let kind = match PciAddress::parse(name) {
            Some(address) => DeviceKind::Pci(address),
            None => DeviceKind::Vdev {
                name: name.to_owned(),
                driver: name
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .to_owned(),
            },
        };
        Ok(Device::new(text.to_owned(), kind, args))
    }
}

/// An address prefix. A bare address is a host prefix (`/32`, `/128`). Host bits set beyond the
/// prefix length (`10.0.1.0/16`) are refused: they are usually a typo for another length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn get(self) -> IpNet {
        self.0
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(address) => IpNet::from(address),
                Err(_) => {
                    return Err(format!(
                        "{text:?} is not an address prefix (expected e.g. \"10.0.0.0/8\" or \
                         \"2001:db8::/32\")"
                    ));
                }
            },
        };
        if net.trunc() != net {
            return Err(format!(
                "{text:?} has bits set after the prefix length: did you mean \"{}\"?",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }
}

/// An address of the file (`source_ips`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address(IpAddr);

impl Address {
    pub fn get(self) -> IpAddr {
        self.0
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse().map(Address).map_err(|_| {
            format!(
                "{text:?} is not an IP address (expected e.g. \"10.0.1.15\" or \"2001:db8::15\")"
            )
        })
    }
}

/// A duration written the `humantime` way: `"2s"`, `"50ms"`, `"1m 30s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text)
            .map(HumanDuration)
            .map_err(|error| {
                format!("{text:?} is not a duration ({error}); write e.g. \"2s\" or \"50ms\"")
            })
    }
}

/// The dedup window: at most 10 s. A longer window only holds memory (entries live that long)
/// for copies that, in a mirror, arrive within milliseconds of each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupWindow(Duration);

impl DedupWindow {
    pub const MAX: Duration = Duration::from_secs(10);

    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for DedupWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let window = HumanDuration::from_str(text)?.get();
        if window > Self::MAX {
            return Err(format!(
                "{text:?} is longer than the maximum window of {}",
                humantime::format_duration(Self::MAX)
            ));
        }
        Ok(DedupWindow(window))
    }
}

/// The metrics endpoint: a socket address, or `""` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsAddress(Option<SocketAddr>);

impl MetricsAddress {
    pub const DEFAULT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        9477,
    ));

    pub fn get(self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for MetricsAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(MetricsAddress(None));
        }
        text.parse()
            .map(|address| MetricsAddress(Some(address)))
            .map_err(|_| {
                format!(
                    "{text:?} is not a socket address (expected e.g. \"127.0.0.1:9477\" or \
                 \"[::1]:9477\", or \"\" to disable metrics)"
                )
            })
    }
}

/// An address a port owns, with the length of its subnet's prefix: `"10.20.5.10/24"`. The host
/// bits are the point here (unlike a [`Cidr`]); the address must be one a host can own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceAddress(IpNet);

impl InterfaceAddress {
    pub fn get(self) -> IpNet {
        self.0
    }
}

impl FromStr for InterfaceAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let net: IpNet = text.parse().map_err(|_| {
            if text.parse::<IpAddr>().is_ok() {
                format!(
                    "{text:?} has no prefix length: write the port's subnet too, e.g.                      \"{text}/24\" (the broker reaches hosts on it directly, others through                      the gateway)"
                )
            } else {
                format!(
                    "{text:?} is not an address with a prefix length (expected e.g.                      \"10.20.5.10/24\" or \"2600:1f18:5::10/64\")"
                )
            }
        })?;
        let address = net.addr();
        if address.is_unspecified() || address.is_loopback() || address.is_multicast() {
            return Err(format!("{address} cannot be a port's own address"));
        }
        if let IpNet::V4(v4) = net {
            // On a /31 or /32 every address is a host (RFC 3021); otherwise the first and the
            // last are the subnet and its broadcast.
            if v4.prefix_len() < 31 && (v4.addr() == v4.network() || v4.addr() == v4.broadcast()) {
                return Err(format!(
                    "{address} is the {} of {}: give the port a host address",
                    if v4.addr() == v4.network() {
                        "network address"
                    } else {
                        "broadcast address"
                    },
                    v4.trunc()
                ));
            }
        }
        Ok(InterfaceAddress(net))
    }
}

/// A listening socket address (`"0.0.0.0:8080"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddress(SocketAddr);

impl ListenAddress {
    pub fn get(self) -> SocketAddr {
        self.0
    }
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse().map(ListenAddress).map_err(|_| {
            format!(
                "{text:?} is not a socket address (expected e.g. \"0.0.0.0:8080\" or \"[::]:8080\")"
            )
        })
    }
}

/// The VNI a tunnel tool port sends under: a number, or `"session"` (the VNI of the mirror
/// session each copy came from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelVniSetting {
    Session,
    Fixed(Vni),
}

impl<'de> Deserialize<'de> for TunnelVniSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TunnelVniVisitor;
        impl Visitor<'_> for TunnelVniVisitor {
            type Value = TunnelVniSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a VNI (0..=16777215) or \"session\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<TunnelVniSetting, E> {
                match text {
                    "session" => Ok(TunnelVniSetting::Session),
                    other => Err(E::invalid_value(Unexpected::Str(other), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<TunnelVniSetting, E> {
                u32::try_from(value)
                    .ok()
                    .and_then(Vni::new)
                    .map(TunnelVniSetting::Fixed)
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(value), &self))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<TunnelVniSetting, E> {
                i64::try_from(value)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
                    .and_then(|value| self.visit_i64(value))
            }
        }
        deserializer.deserialize_any(TunnelVniVisitor)
    }
}

/// An ERSPAN type II session id: 10 bits.
pub type ErspanSessionId = Ranged<u16, 0, 1023>;
/// A GRE key: 32 bits.
pub type GreKey = Ranged<u32, 0, { u32::MAX as i64 }>;

/// Implements `Deserialize` through `FromStr` for types read from a TOML string.
macro_rules! deserialize_from_str {
    ($($type:ty => $expecting:literal),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct FromStrVisitor;
                impl Visitor<'_> for FromStrVisitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$type, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(FromStrVisitor)
            }
        }
    )*};
}

deserialize_from_str! {
    Name => "a name (a string of ASCII letters, digits, '-', '_' or '.')",
    Device => "a DPDK device string such as \"0000:3b:00.0\" or \"net_pcap0,rx_pcap=in.pcap\"",
    Cidr => "an address prefix such as \"10.0.0.0/8\"",
    Address => "an IP address such as \"10.0.1.15\"",
    HumanDuration => "a duration such as \"2s\" or \"50ms\"",
    DedupWindow => "a duration such as \"50ms\"",
    MetricsAddress => "a socket address such as \"127.0.0.1:9477\", or \"\"",
    InterfaceAddress => "an address with its prefix length such as \"10.20.5.10/24\"",
    ListenAddress => "a socket address such as \"0.0.0.0:8080\"",
}

/// Descriptors of one RX or TX ring: a power of two in 64..=16384 (DPDK PMDs index their rings
/// with a mask; 64 is the smallest ring most PMDs accept, 16384 the largest of common NICs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorCount(u16);

impl DescriptorCount {
    pub const DEFAULT: DescriptorCount = DescriptorCount(1024);

    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for DescriptorCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let count = Ranged::<u16, 64, 16384>::deserialize(deserializer)?.get();
        if !count.is_power_of_two() {
            return Err(de::Error::custom(format!(
                "{count} is not a power of two: ring sizes are 64, 128, 256, … 16384"
            )));
        }
        Ok(DescriptorCount(count))
    }
}

/// `slice`: 0 for whole frames, else 14..=65535 bytes (14: at least the inner Ethernet header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceLength(Option<u16>);

impl SliceLength {
    pub const MIN: u16 = 14;

    pub fn get(self) -> Option<u16> {
        self.0
    }
}

impl<'de> Deserialize<'de> for SliceLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let length = Ranged::<u16, 0, 65535>::deserialize(deserializer)?.get();
        match length {
            0 => Ok(SliceLength(None)),
            length if length < Self::MIN => Err(de::Error::custom(format!(
                "slice = {length} would cut the inner Ethernet header: use 0 (whole frames) or \
                 {}..=65535",
                Self::MIN
            ))),
            length => Ok(SliceLength(Some(length))),
        }
    }
}

impl<'de> Deserialize<'de> for Vni {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Ranged::<u32, 0, { Vni::MAX as i64 }>::deserialize(deserializer)?.get();
        Vni::new(value).ok_or_else(|| de::Error::custom("a VNI has 24 bits"))
    }
}

/// An IP protocol: `"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"` or a number 0..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol(u8);

impl Protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;

    pub fn get(self) -> u8 {
        self.0
    }

    /// Only TCP and UDP have ports (for a rule's port ranges).
    pub fn has_ports(self) -> bool {
        self.0 == Self::TCP || self.0 == Self::UDP
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;
        impl Visitor<'_> for ProtocolVisitor {
            type Value = Protocol;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or a protocol number 0..=255")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Protocol, E> {
                match text {
                    "tcp" => Ok(Protocol(Protocol::TCP)),
                    "udp" => Ok(Protocol(Protocol::UDP)),
                    "icmp" => Ok(Protocol(Protocol::ICMP)),
                    "icmpv6" => Ok(Protocol(Protocol::ICMPV6)),
                    other => Err(E::invalid_value(Unexpected::Str(other), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Protocol, E> {
                u8::try_from(value)
                    .map(Protocol)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Protocol, E> {
                u8::try_from(value)
                    .map(Protocol)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
            }
        }
        deserializer.deserialize_any(ProtocolVisitor)
    }
}

/// `"443"`, `"1024-65535"` or `443`.
impl FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let port = |part: &str| {
            part.trim().parse::<u16>().map_err(|_| {
                format!("{text:?} is not a port range (expected e.g. \"443\" or \"1024-65535\")")
            })
        };
        let (first, last) = match text.split_once('-') {
            Some((first, last)) => (port(first)?, port(last)?),
            None => {
                let only = port(text)?;
                (only, only)
            }
        };
        if first > last {
            return Err(format!(
                "port range {text:?} is empty: its first port is after its last"
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortRangeVisitor;
        impl Visitor<'_> for PortRangeVisitor {
            type Value = PortRange;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port (443 or \"443\") or a range (\"1024-65535\")")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<PortRange, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<PortRange, E> {
                u16::try_from(value)
                    .map(|port| PortRange {
                        first: port,
                        last: port,
                    })
                    .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<PortRange, E> {
                u16::try_from(value)
                    .map(|port| PortRange {
                        first: port,
                        last: port,
                    })
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
            }
        }
        deserializer.deserialize_any(PortRangeVisitor)
    }
}

/// Implements `Deserialize` for enums the config writes as keywords (declared with their
/// keywords in [`crate::model`]: `ALL` and `as_str`).
macro_rules! deserialize_keyword {
    ($($type:ty),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const KEYWORDS: &[&str] = &{
                    let mut keywords = [""; <$type>::ALL.len()];
                    let mut i = 0;
                    while i < keywords.len() {
                        keywords[i] = <$type>::ALL[i].as_str();
                        i += 1;
                    }
                    keywords
                };
                struct KeywordVisitor;
                impl Visitor<'_> for KeywordVisitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "one of {}", KEYWORDS.join(", "))
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$type, E> {
                        <$type>::ALL
                            .iter()
                            .find(|value| value.as_str() == text)
                            .copied()
                            .ok_or_else(|| E::unknown_variant(text, KEYWORDS))
                    }
                }
                deserializer.deserialize_str(KeywordVisitor)
            }
        }
    )*};
}

deserialize_keyword!(
    Action,
    Direction,
    Balance,
    Rss,
    OnPortDown,
    Kernel,
    Encapsulation,
    DedupMode
);

/// `lcores = "auto"` or `lcores = [2, 3]`; list entries keep their spans for the repeat check.
#[derive(Clone, Debug, PartialEq)]
pub enum LcoresSetting {
    Auto,
    List(Vec<Spanned<CpuId>>),
}

impl<'de> Deserialize<'de> for LcoresSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LcoresVisitor;
        impl<'de> Visitor<'de> for LcoresVisitor {
            type Value = LcoresSetting;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"auto\" or a list of CPU ids")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<LcoresSetting, E> {
                match text {
                    "auto" => Ok(LcoresSetting::Auto),
                    other => Err(E::invalid_value(Unexpected::Str(other), &self)),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LcoresSetting, A::Error> {
                let mut cpus = Vec::new();
                while let Some(cpu) = seq.next_element()? {
                    cpus.push(cpu);
                }
                Ok(LcoresSetting::List(cpus))
            }
        }
        deserializer.deserialize_any(LcoresVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_labels_and_refuse_the_rest() {
        for good in ["web", "ids-1", "a", "x_y.z", "9lives"] {
            assert!(good.parse::<Name>().is_ok(), "{good}");
        }
        for bad in ["", "-web", "web filter", "wéb", ".hidden", &"a".repeat(65)] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
    }

    #[test]
    fn device_identity_ignores_devargs_and_pci_spelling() {
        let device = |text: &str| text.parse::<Device>().unwrap().port_name();
        assert_eq!(device("net_pcap0,rx_pcap=a.pcap"), "net_pcap0");
        assert_eq!(device("3B:00.0"), "0000:3b:00.0");
        assert_eq!(device("0000:3b:00.0,rxq_cqe_comp_en=1"), "0000:3b:00.0");
        assert_ne!(device("net_pcap1"), device("net_pcap0"));
        assert!(",rx_pcap=a.pcap".parse::<Device>().is_err());
        assert!("".parse::<Device>().is_err());
        assert!("net_pcap0, iface=x".parse::<Device>().is_err());
    }

    #[test]
    fn devices_are_read_once_into_their_parts() {
        let pcap: Device = "net_pcap0,rx_pcap=a.pcap,rx_pcap=b.pcap,infinite_rx=1"
            .parse()
            .unwrap();
        assert_eq!(pcap.vdev_driver(), Some("net_pcap"));
        assert_eq!(pcap.pci_address(), None);
        assert_eq!(
            pcap.arg_values("rx_pcap").collect::<Vec<_>>(),
            ["a.pcap", "b.pcap"]
        );
        assert_eq!(pcap.arg_values("infinite_rx").collect::<Vec<_>>(), ["1"]);
        assert_eq!(pcap.to_string(), pcap.as_str());
        let nic: Device = "3b:00.1,flag,rxq_cqe_comp_en=0".parse().unwrap();
        let address = nic.pci_address().unwrap();
        assert_eq!(
            (
                address.domain,
                address.bus,
                address.device,
                address.function
            ),
            (0, 0x3b, 0, 1)
        );
        assert_eq!(nic.port_name(), "0000:3b:00.1");
        assert_eq!(nic.vdev_driver(), None);
        assert_eq!(
            nic.args()
                .iter()
                .map(|a| (a.key.as_str(), a.value.as_deref()))
                .collect::<Vec<_>>(),
            [("flag", None), ("rxq_cqe_comp_en", Some("0"))]
        );
        assert!("net_null0,=x".parse::<Device>().is_err());
    }

    #[test]
    fn pci_addresses_in_both_forms_and_nothing_else() {
        let full = |text: &str| PciAddress::parse(text).map(|a| a.to_string());
        assert_eq!(full("0000:3b:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(full("3B:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(full("ABCD:3b:1f.7").as_deref(), Some("abcd:3b:1f.7"));
        for not in [
            "net_pcap0",
            "0000:3b:00.8",
            "00:3b:00.0",
            "zz:00.0",
            "3b:20.0",
            "0000:3b:00.",
            "0000-3b:00.0",
            "3b:0.00",
        ] {
            assert_eq!(PciAddress::parse(not), None, "{not}");
        }
    }

    #[test]
    fn cidrs_take_prefixes_and_bare_addresses_but_no_host_bits() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().get().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "10.0.1.15".parse::<Cidr>().unwrap().get().to_string(),
            "10.0.1.15/32"
        );
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().unwrap().get().prefix_len(),
            128
        );
        let error = "10.0.1.0/16".parse::<Cidr>().unwrap_err();
        assert!(error.contains("did you mean \"10.0.0.0/16\""), "{error}");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("web".parse::<Cidr>().is_err());
    }

    #[test]
    fn port_ranges_parse_single_ports_and_ranges() {
        assert_eq!(
            "443".parse(),
            Ok(PortRange {
                first: 443,
                last: 443
            })
        );
        assert_eq!(
            "1024-65535".parse(),
            Ok(PortRange {
                first: 1024,
                last: 65535
            })
        );
        assert_eq!("0-0".parse(), Ok(PortRange { first: 0, last: 0 }));
        assert!(
            "2000-1000"
                .parse::<PortRange>()
                .unwrap_err()
                .contains("first port is after")
        );
        for bad in ["", "-", "1-", "65536", "1-2-3", "http", "-5"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_metrics_addresses() {
        assert_eq!(
            "50ms".parse::<HumanDuration>().unwrap().get(),
            Duration::from_millis(50)
        );
        assert!("2 parsecs".parse::<HumanDuration>().is_err());
        assert_eq!(
            "10s".parse::<DedupWindow>().unwrap().get(),
            DedupWindow::MAX
        );
        assert!("10s 1ms".parse::<DedupWindow>().is_err());
        assert_eq!("".parse::<MetricsAddress>().unwrap().get(), None);
        assert_eq!(
            "[::1]:80".parse::<MetricsAddress>().unwrap().get(),
            Some("[::1]:80".parse().unwrap())
        );
        assert!("localhost:9477".parse::<MetricsAddress>().is_err());
    }
}
