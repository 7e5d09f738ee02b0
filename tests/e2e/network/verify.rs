//! What the analyzers should have received, derived without the broker, and the checks that
//! compare it with what they did receive.
//!
//! - **The input** is the sample capture decoded by the e2e tests' own decoder
//!   ([`crate::support::decode_mirror`]); each packet's direction follows the session's
//!   `source_ips` as the config documents it (ingress when the inner destination is one of them,
//!   else egress when the inner source is, else unknown).
//! - **Which groups get a packet** follows the validated config: every tool group of the session
//!   of the packet's VNI (the tests use no filter, dedup or slicing).
//! - **Which port of a group** is the broker's choice (a Maglev table over its live ports); the
//!   test does not recompute it, which would copy the broker's algorithm rather than check it.
//!   It checks what `balance = "flow"` promises instead ([`match_group`]): every packet the
//!   group should get reaches exactly one port, each flow (the symmetric inner 5-tuple) reaches
//!   one port only, and each port receives each of its flows whole, byte for byte, in input
//!   order. A test asserts besides that every port got some flows (the split is real).
//! - **Each copy's headers** ([`check_port`]) are held to issue 11's contract from the lab's plan
//!   (the via port's and the next hop's MAC addresses, the router's hop) and the config (VNI,
//!   key, session id, the broker name's hash), decoded by [`super::decode`] — and the same
//!   fields read by tshark's dissectors must agree frame by frame ([`tshark_agrees`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::path::Path;

use config::{AddressedPortId, Encapsulation, ErspanSession, TunnelVni, ValidatedConfig};

use super::decode::{Encap, GeneveOption, TunnelHeader, Tunnelled, decode};
use super::topology::{Host, Netlab};
use crate::support::{decode_mirror, inner_flow, read_pcap, tshark_fields};

/// The symmetric flow of an inner frame: protocol and both ends (address, port) in order, so
/// both directions of a connection have one key; `None` for a frame that is not IP. A copy cut
/// to fit the MTU keeps its flow.
pub type Flow = Option<(u8, (IpAddr, u16), (IpAddr, u16))>;

pub fn flow_of(frame: &[u8]) -> Flow {
    let f = inner_flow(frame)?;
    let (a, b) = ((f.src, f.src_port), (f.dst, f.dst_port));
    Some((f.protocol, a.min(b), a.max(b)))
}

/// A packet of the mirrored input.
#[derive(Clone, Debug)]
pub struct InputPacket {
    /// Its mirror session's VNI.
    pub vni: u32,
    pub inner: Vec<u8>,
    pub flow: Flow,
    /// 0 unknown, 1 ingress, 2 egress (the GENEVE option's encoding).
    pub direction: u8,
}

/// The mirrored input, decoded independently of the broker.
#[derive(Debug)]
pub struct Input {
    pub packets: Vec<InputPacket>,
}

impl Input {
    /// Every tunnelled packet of `capture`, with directions from `config`'s sessions.
    pub fn read(capture: &Path, config: &ValidatedConfig) -> Input {
        let packets = read_pcap(capture)
            .iter()
            .filter_map(|frame| decode_mirror(frame))
            .map(|m| {
                let session = config
                    .sessions
                    .iter()
                    .find(|s| s.vni.map(|v| v.get()) == Some(m.vni));
                let flow = inner_flow(&m.inner);
                let sources = session.map(|s| s.source_ips.as_slice()).unwrap_or(&[]);
                let direction = match flow {
                    Some(f) if sources.contains(&f.dst) => 1,
                    Some(f) if sources.contains(&f.src) => 2,
                    _ => 0,
                };
                InputPacket {
                    vni: m.vni,
                    flow: flow_of(&m.inner),
                    inner: m.inner,
                    direction,
                }
            })
            .collect();
        Input { packets }
    }

    /// Indices of the packets `group` should get: those of a session that sends to it.
    pub fn for_group(&self, config: &ValidatedConfig, group: &str) -> Vec<usize> {
        let g = config
            .tool_groups
            .iter()
            .position(|g| g.name == group)
            .unwrap_or_else(|| panic!("no tool group {group}"));
        let vnis: BTreeSet<u32> = config
            .sessions
            .iter()
            .filter(|s| s.tools.iter().any(|t| t.index() == g))
            .filter_map(|s| s.vni.map(|v| v.get()))
            .collect();
        (0..self.packets.len())
            .filter(|&i| vnis.contains(&self.packets[i].vni))
            .collect()
    }
}

/// Which input packet each port of a group received (in arrival order), and its flows.
#[derive(Debug, Default)]
pub struct Delivery {
    pub ports: BTreeMap<String, Vec<usize>>,
    pub flows: BTreeMap<String, BTreeSet<Flow>>,
}

/// Matches what each port of a group received (`received`: inner frames in arrival order)
/// with the input packets `expected` for the group, each cut to its port's largest inner frame
/// (`max_inner`). Fails, naming the port, frame and flow, unless every expected packet arrived
/// exactly once, each flow at one port only, whole and in input order, and nothing else arrived.
pub fn match_group(
    input: &Input,
    expected: &[usize],
    received: &BTreeMap<String, Vec<Vec<u8>>>,
    max_inner: &BTreeMap<String, usize>,
) -> Result<Delivery, String> {
    let mut pending: BTreeMap<Flow, VecDeque<usize>> = BTreeMap::new();
    for &i in expected {
        pending
            .entry(input.packets[i].flow)
            .or_default()
            .push_back(i);
    }
    let mut owner: BTreeMap<Flow, &str> = BTreeMap::new();
    let mut delivery = Delivery::default();
    for (port, frames) in received {
        let cut = max_inner[port];
        let mut indices = Vec::with_capacity(frames.len());
        for (n, frame) in frames.iter().enumerate() {
            let flow = flow_of(frame);
            match owner.insert(flow, port) {
                Some(other) if other != port => {
                    return Err(format!(
                        "flow {flow:?} reached both {other} and {port} (frame {n} of {port})"
                    ));
                }
                _ => {}
            }
            let Some(i) = pending.get_mut(&flow).and_then(VecDeque::pop_front) else {
                return Err(format!(
                    "frame {n} of {port} (flow {flow:?}, {} bytes) is not an expected packet: \
                     its flow was not sent to this group, or came more often than sent",
                    frame.len()
                ));
            };
            let want = &input.packets[i].inner;
            let want = &want[..want.len().min(cut)];
            if frame.as_slice() != want {
                let later = pending[&flow]
                    .iter()
                    .position(|&j| input.packets[j].inner[..].starts_with(frame));
                return Err(format!(
                    "frame {n} of {port} is not input packet {i} (flow {flow:?}): {} bytes \
                     instead of {}{}",
                    frame.len(),
                    want.len(),
                    later.map_or(String::new(), |k| format!(
                        "; it is the flow's packet {} places later: one was lost or reordered",
                        k + 1
                    ))
                ));
            }
            indices.push(i);
            delivery.flows.entry(port.clone()).or_default().insert(flow);
        }
        delivery.ports.insert(port.clone(), indices);
    }
    let missing: Vec<String> = pending
        .iter()
        .filter(|(_, q)| !q.is_empty())
        .map(|(flow, q)| {
            format!(
                "{} of flow {flow:?} (first: input packet {})",
                q.len(),
                q[0]
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!("packets never received: {}", missing.join("; ")));
    }
    Ok(delivery)
}

/// What every copy to one tunnel tool port must look like at its analyzer.
#[derive(Clone, Debug)]
pub struct PortExpect {
    pub port: String,
    /// The lab host that is the port's `remote`.
    pub analyzer: String,
    pub encap: Encap,
    pub eth_source: [u8; 6],
    pub eth_destination: [u8; 6],
    pub ip_source: IpAddr,
    pub ip_destination: IpAddr,
    /// 64, less one per router on the way.
    pub ttl: u8,
    pub udp_port: u16,
    /// `None`: the session's VNI.
    pub vni: Option<u32>,
    pub key: Option<u32>,
    /// `None`: the session's VNI modulo 1024.
    pub session_id: Option<u16>,
    /// FNV-1a of `[broker] name`.
    pub broker_hash: u32,
    /// The largest inner frame that fits the via port's MTU.
    pub max_inner: usize,
}

/// 32-bit FNV-1a (the GENEVE option's broker name hash), from its definition.
pub fn fnv1a32(text: &str) -> u32 {
    text.bytes().fold(0x811C_9DC5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn host_with_address(lab: &Netlab, address: IpAddr) -> (&'static str, &Host) {
    const HOSTS: [&str; 9] = [
        "broker",
        "uplink",
        "peer",
        "router",
        "router-far",
        "a1",
        "a2",
        "a3",
        "a4",
    ];
    HOSTS
        .iter()
        .map(|&n| (n, lab.host(n)))
        .find(|(_, h)| h.v4() == address || h.v6() == address)
        .unwrap_or_else(|| panic!("no lab host has the address {address}"))
}

impl PortExpect {
    /// The expectations for tool port `port` of `config`, from the lab's plan: who sends (the
    /// via port's host), who receives (the host that has the remote address), and whether a
    /// router lies between them (then the frame arrives from the router's MAC with TTL 63).
    pub fn new(config: &ValidatedConfig, lab: &Netlab, port: &str) -> PortExpect {
        let tool = config
            .tool_ports
            .iter()
            .find(|p| p.name == port)
            .unwrap_or_else(|| panic!("no tool port {port}"));
        let tunnel = tool.tunnel().expect("a tunnel port");
        let (addressing, mtu) = match tunnel.via {
            AddressedPortId::Ingress(i) => {
                let ingress = &config.ingress[i.index()];
                (ingress.addressing.as_ref().expect("addressed"), ingress.mtu)
            }
            AddressedPortId::Uplink(u) => {
                let uplink = &config.uplinks[u.index()];
                (&uplink.addressing, uplink.mtu)
            }
        };
        let ip_source = addressing
            .own_address_for(tunnel.remote)
            .expect("the via port has an address of the remote's family");
        let (_, via) = host_with_address(lab, ip_source);
        let (analyzer, remote) = host_with_address(lab, tunnel.remote);
        let (eth_source, ttl) = if remote.segment == via.segment {
            (via.mac, 64)
        } else {
            let gateway = match tunnel.remote {
                IpAddr::V4(_) => IpAddr::V4(remote.gateway4.expect("a gateway")),
                IpAddr::V6(_) => IpAddr::V6(remote.gateway6.expect("a gateway")),
            };
            (host_with_address(lab, gateway).1.mac, 63)
        };
        let encap = match tunnel.encapsulation {
            Encapsulation::Vxlan => Encap::Vxlan,
            Encapsulation::Geneve => Encap::Geneve,
            Encapsulation::L2gre => Encap::L2gre,
            Encapsulation::Erspan2 => Encap::Erspan2,
        };
        // Bytes after the outer IP header, before the inner frame (RFC 7348, RFC 8926 + the
        // broker's 12-byte option, RFC 2890, GRE with a sequence number + ERSPAN II).
        let tunnel_len = match encap {
            Encap::Vxlan => 8 + 8,
            Encap::Geneve => 8 + 8 + 4 + 8,
            Encap::L2gre => 4 + if tunnel.key.is_some() { 4 } else { 0 },
            Encap::Erspan2 => 8 + 8,
        };
        let ip_len = if tunnel.remote.is_ipv4() { 20 } else { 40 };
        let mtu = usize::from(mtu.unwrap_or(via.mtu));
        PortExpect {
            port: port.to_owned(),
            analyzer: analyzer.to_owned(),
            encap,
            eth_source,
            eth_destination: remote.mac,
            ip_source,
            ip_destination: tunnel.remote,
            ttl,
            udp_port: tunnel.dst_port,
            vni: match tunnel.vni {
                TunnelVni::Session => None,
                TunnelVni::Fixed(v) => Some(v.get()),
            },
            key: tunnel.key,
            session_id: match tunnel.erspan_session {
                ErspanSession::SessionVni => None,
                ErspanSession::Fixed(id) => Some(id),
            },
            broker_hash: fnv1a32(&config.broker.name),
            max_inner: mtu - ip_len - tunnel_len,
        }
    }
}

/// The tunnel frames of one port's encapsulation among what an analyzer received, decoded;
/// fails on a malformed tunnel frame.
pub fn tunnels_of(frames: &[Vec<u8>], encap: Encap) -> Result<Vec<Tunnelled>, String> {
    let mut out = Vec::new();
    for (n, frame) in frames.iter().enumerate() {
        match decode(frame) {
            Ok(Some(t)) if t.encap == encap => out.push(t),
            Ok(_) => {}
            Err(e) => return Err(format!("frame {n}: {e}")),
        }
    }
    Ok(out)
}

/// Checks each copy to one port (`frames`, which carried input packets `indices`) against the
/// contract: outer addresses, TTL, DF and checksums, the UDP source port (49152–65535, one per
/// flow), and every field of the tunnel header. Returns every discrepancy (at most 20).
pub fn check_port(
    input: &Input,
    frames: &[Tunnelled],
    indices: &[usize],
    e: &PortExpect,
) -> Result<(), String> {
    let mut errors = Vec::new();
    if frames.len() != indices.len() {
        errors.push(format!(
            "{} tunnel frames but {} delivered packets",
            frames.len(),
            indices.len()
        ));
    }
    let mut source_ports: BTreeMap<Flow, u16> = BTreeMap::new();
    let mut last_sequence: Option<u32> = None;
    for (n, (t, &i)) in frames.iter().zip(indices).enumerate() {
        let packet = &input.packets[i];
        let mut fail = |what: String| {
            if errors.len() < 20 {
                errors.push(format!("{} frame {n} (input {i}): {what}", e.port));
            }
        };
        if (t.eth_source, t.eth_destination) != (e.eth_source, e.eth_destination) {
            fail(format!(
                "MAC {:02x?} → {:02x?}, expected {:02x?} → {:02x?}",
                t.eth_source, t.eth_destination, e.eth_source, e.eth_destination
            ));
        }
        if (t.ip_source, t.ip_destination) != (e.ip_source, e.ip_destination) {
            fail(format!("IP {} → {}", t.ip_source, t.ip_destination));
        }
        if t.ttl != e.ttl {
            fail(format!("TTL/hop limit {}, expected {}", t.ttl, e.ttl));
        }
        if !t.dont_fragment || !t.ip_checksum_ok {
            fail(format!(
                "IPv4 DF {} checksum ok {}",
                t.dont_fragment, t.ip_checksum_ok
            ));
        }
        let session_vni = packet.vni;
        let vni = e.vni.unwrap_or(session_vni);
        if let Some(udp) = t.udp {
            if udp.destination_port != e.udp_port || udp.source_port < 49152 {
                fail(format!(
                    "UDP {} → {}, expected a source port ≥ 49152 → {}",
                    udp.source_port, udp.destination_port, e.udp_port
                ));
            }
            let checksum_ok = match t.ip_source {
                IpAddr::V4(_) => udp.checksum == 0,
                IpAddr::V6(_) => udp.checksum != 0 && udp.checksum_ok,
            };
            if !checksum_ok {
                fail(format!(
                    "UDP checksum {:#06x} (0 over IPv4, correct over IPv6)",
                    udp.checksum
                ));
            }
            match source_ports.insert(packet.flow, udp.source_port) {
                Some(first) if first != udp.source_port => fail(format!(
                    "UDP source port {} but {first} earlier in the flow: not one per flow",
                    udp.source_port
                )),
                _ => {}
            }
        }
        let cut = packet.inner.len() > e.max_inner;
        match &t.header {
            TunnelHeader::Vxlan {
                flags,
                reserved,
                vni: got,
            } => {
                if *flags != 0x08 || *reserved != [0; 4] || *got != vni {
                    fail(format!(
                        "VXLAN flags {flags:#04x} reserved {reserved:?} VNI {got}, expected \
                         0x08, zeros, VNI {vni}"
                    ));
                }
            }
            TunnelHeader::Geneve {
                version,
                oam,
                critical,
                reserved_flags,
                protocol,
                vni: got,
                reserved,
                options,
            } => {
                let mut data = (session_vni << 8 | u32::from(packet.direction))
                    .to_be_bytes()
                    .to_vec();
                data.extend_from_slice(&e.broker_hash.to_be_bytes());
                let option = GeneveOption {
                    class: 0xFFF0,
                    option_type: 0x01,
                    data,
                };
                if (
                    *version,
                    *oam,
                    *critical,
                    *reserved_flags,
                    *protocol,
                    *reserved,
                ) != (0, false, false, 0, 0x6558, 0)
                    || *got != vni
                    || options.as_slice() != std::slice::from_ref(&option)
                {
                    fail(format!(
                        "GENEVE {:?}, expected VNI {vni}, protocol 0x6558 and {option:?}",
                        t.header
                    ));
                }
            }
            TunnelHeader::L2gre {
                flags_version,
                protocol,
                key,
            } => {
                let flags = if e.key.is_some() { 0x2000 } else { 0 };
                if (*flags_version, *protocol, *key) != (flags, 0x6558, e.key) {
                    fail(format!(
                        "GRE flags {flags_version:#06x} protocol {protocol:#06x} key {key:?}, \
                         expected {flags:#06x}, 0x6558, {:?}",
                        e.key
                    ));
                }
            }
            TunnelHeader::Erspan2 {
                gre_flags_version,
                sequence,
                version,
                vlan,
                cos,
                encap_type,
                truncated,
                session_id,
                reserved,
                index,
            } => {
                let id = e.session_id.unwrap_or((session_vni % 1024) as u16);
                if (
                    *gre_flags_version,
                    *version,
                    *vlan,
                    *cos,
                    *encap_type,
                    *reserved,
                    *index,
                ) != (0x1000, 1, 0, 0, 3, 0, 0)
                    || *session_id != id
                    || *truncated != cut
                {
                    fail(format!(
                        "{:?}, expected GRE 0x1000, version 1, En 3, session id {id}, T {cut}",
                        t.header
                    ));
                }
                match (last_sequence, sequence) {
                    (_, None) => fail("no GRE sequence number".into()),
                    (Some(before), Some(s)) if *s != before.wrapping_add(1) => {
                        fail(format!("sequence {s} after {before}: not the next one"))
                    }
                    _ => {}
                }
                last_sequence = *sequence;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The fields tshark reads for an encapsulation, and how to read the same from our decoding.
fn tshark_view(encap: Encap) -> (&'static str, &'static [&'static str]) {
    match encap {
        Encap::Vxlan => (
            "vxlan",
            &["udp.srcport", "udp.dstport", "vxlan.flags", "vxlan.vni"],
        ),
        Encap::Geneve => (
            "geneve",
            &[
                "udp.srcport",
                "udp.dstport",
                "geneve.vni",
                "geneve.proto_type",
                "geneve.option.class",
                "geneve.option.type",
                "geneve.option.length",
                "geneve.option.unknown.data",
            ],
        ),
        Encap::L2gre => (
            "gre.proto == 0x6558",
            &["gre.flags_and_version", "gre.proto", "gre.key"],
        ),
        Encap::Erspan2 => (
            "erspan",
            &[
                "gre.flags_and_version",
                "gre.sequence_number",
                "erspan.version",
                "erspan.vlan",
                "erspan.cos",
                "erspan.encap",
                "erspan.truncated",
                "erspan.spanid",
                "erspan.index",
            ],
        ),
    }
}

fn our_view(t: &Tunnelled) -> Vec<String> {
    let udp = |t: &Tunnelled| {
        let u = t.udp.expect("UDP");
        vec![u.source_port.to_string(), u.destination_port.to_string()]
    };
    let n = |v: u64| v.to_string();
    match &t.header {
        TunnelHeader::Vxlan {
            flags,
            reserved,
            vni,
        } => {
            let mut v = udp(t);
            v.extend([
                n(u64::from(*flags) << 8 | u64::from(reserved[0])),
                n((*vni).into()),
            ]);
            v
        }
        TunnelHeader::Geneve {
            protocol,
            vni,
            options,
            ..
        } => {
            let mut v = udp(t);
            let first = options.first();
            v.extend([
                n((*vni).into()),
                n((*protocol).into()),
                first.map_or(String::new(), |o| n(o.class.into())),
                first.map_or(String::new(), |o| n(o.option_type.into())),
                first.map_or(String::new(), |o| n(4 + o.data.len() as u64)),
                first.map_or(String::new(), |o| {
                    o.data.iter().map(|b| format!("{b:02x}")).collect()
                }),
            ]);
            v
        }
        TunnelHeader::L2gre {
            flags_version,
            protocol,
            key,
        } => vec![
            n((*flags_version).into()),
            n((*protocol).into()),
            key.map_or(String::new(), |k| n(k.into())),
        ],
        TunnelHeader::Erspan2 {
            gre_flags_version,
            sequence,
            version,
            vlan,
            cos,
            encap_type,
            truncated,
            session_id,
            index,
            ..
        } => vec![
            n((*gre_flags_version).into()),
            sequence.map_or(String::new(), |s| n(s.into())),
            n((*version).into()),
            n((*vlan).into()),
            n((*cos).into()),
            n((*encap_type).into()),
            n(u64::from(*truncated)),
            n((*session_id).into()),
            n((*index).into()),
        ],
    }
}

/// A tshark value as our view writes it: numbers in decimal (tshark prints some in hex),
/// bytes as lowercase hex.
fn normalise(field: &str, value: &str) -> String {
    if field.ends_with(".data") {
        return value.replace(':', "").to_lowercase();
    }
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    };
    parsed.map_or_else(|| value.to_owned(), |v| v.to_string())
}

/// Reads `pcap` with tshark's dissectors and checks they see the same tunnel frames as our
/// decoder (`ours`, in capture order), field by field, and nothing malformed.
pub fn tshark_agrees(pcap: &Path, encap: Encap, ours: &[Tunnelled]) -> Result<(), String> {
    let (filter, fields) = tshark_view(encap);
    let mut all = vec!["_ws.malformed"];
    all.extend_from_slice(fields);
    // Without TCP reassembly: a packet mirrored at both ends is a retransmission to it, which it
    // would call malformed; the tunnel layers are what this reads.
    let rows = tshark_fields(
        pcap,
        Some(filter),
        &all,
        &["-o", "tcp.desegment_tcp_streams:FALSE"],
    );
    if rows.len() != ours.len() {
        return Err(format!(
            "tshark finds {} {encap:?} frames in {}, our decoder {}",
            rows.len(),
            pcap.display(),
            ours.len()
        ));
    }
    for (n, (row, t)) in rows.iter().zip(ours).enumerate() {
        if !row[0].is_empty() {
            return Err(format!(
                "tshark: frame {n} of {} is malformed",
                pcap.display()
            ));
        }
        let theirs: Vec<String> = fields
            .iter()
            .zip(&row[1..])
            .map(|(f, v)| normalise(f, v))
            .collect();
        let ours = our_view(t);
        if theirs != ours {
            return Err(format!(
                "{encap:?} frame {n} of {}: tshark reads {fields:?} = {theirs:?}, our decoder {ours:?}",
                pcap.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The comparison catches what it must: a lost, duplicated, reordered or altered frame, a
    //! flow split over two ports, and a frame no one sent.

    use super::*;
    use etherparse::PacketBuilder;

    fn frame(flow: u8, seq: u8, reply: bool) -> Vec<u8> {
        let (a, b) = ([192, 0, 2, flow], [198, 51, 100, 1]);
        let (src, dst, sport, dport) = if reply {
            (b, a, 80, 40000)
        } else {
            (a, b, 40000, 80)
        };
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, u32::from(seq), 1000)
            .write(&mut f, &[seq; 20])
            .unwrap();
        f
    }

    /// Three flows of four packets each (requests and replies interleaved).
    fn input() -> Input {
        let mut packets = Vec::new();
        for seq in 0..4 {
            for flow in 1..=3 {
                let inner = frame(flow, seq, seq % 2 == 1);
                packets.push(InputPacket {
                    vni: 101,
                    flow: flow_of(&inner),
                    inner,
                    direction: 0,
                });
            }
        }
        Input { packets }
    }

    /// Which input packets each port received, in order.
    type Ports<'a> = &'a [(&'a str, &'a [usize])];

    fn received(ports: Ports, input: &Input) -> BTreeMap<String, Vec<Vec<u8>>> {
        ports
            .iter()
            .map(|(p, idx)| {
                let frames = idx
                    .iter()
                    .map(|&i| input.packets[i].inner.clone())
                    .collect();
                (p.to_string(), frames)
            })
            .collect()
    }

    fn check(ports: Ports) -> Result<Delivery, String> {
        let input = input();
        let all: Vec<usize> = (0..input.packets.len()).collect();
        let cut = ports.iter().map(|(p, _)| (p.to_string(), 9000)).collect();
        match_group(&input, &all, &received(ports, &input), &cut)
    }

    #[test]
    fn a_correct_split_passes_and_reports_the_flows() {
        // Flow 1 (packets 0, 3, 6, 9) and flow 3 (2, 5, 8, 11) on p1, flow 2 on p2.
        let d = check(&[("p1", &[0, 2, 3, 5, 6, 8, 9, 11]), ("p2", &[1, 4, 7, 10])]).unwrap();
        assert_eq!(d.flows["p1"].len(), 2);
        assert_eq!(d.ports["p2"], vec![1, 4, 7, 10]);
        // Frames of different flows may interleave differently: only the order within a flow
        // counts.
        check(&[("p1", &[2, 0, 5, 3, 8, 6, 11, 9]), ("p2", &[1, 4, 7, 10])]).unwrap();
    }

    #[test]
    fn every_fault_is_caught() {
        let faults: [(&str, Ports); 5] = [
            (
                "lost",
                &[("p1", &[0, 2, 3, 5, 6, 8, 9]), ("p2", &[1, 4, 7, 10])],
            ),
            (
                "duplicated",
                &[
                    ("p1", &[0, 2, 3, 5, 6, 8, 9, 11, 11]),
                    ("p2", &[1, 4, 7, 10]),
                ],
            ),
            (
                "reordered",
                &[("p1", &[0, 2, 6, 5, 3, 8, 9, 11]), ("p2", &[1, 4, 7, 10])],
            ),
            (
                "split flow",
                &[("p1", &[0, 2, 3, 5, 6, 8, 9]), ("p2", &[1, 4, 7, 10, 11])],
            ),
            (
                "nothing for p2",
                &[("p1", &[0, 2, 3, 5, 6, 8, 9, 11]), ("p2", &[])],
            ),
        ];
        for (what, ports) in faults {
            assert!(check(ports).is_err(), "{what} was not caught");
        }
        // An altered byte, and a frame of a flow never sent.
        let input = input();
        let all: Vec<usize> = (0..input.packets.len()).collect();
        let cut: BTreeMap<String, usize> = [("p1".to_string(), 9000)].into();
        let mut got = received(&[("p1", &all)], &input);
        assert!(match_group(&input, &all, &got, &cut).is_ok());
        *got.get_mut("p1").unwrap()[4].last_mut().unwrap() ^= 1;
        assert!(match_group(&input, &all, &got, &cut).is_err());
        let mut got = received(&[("p1", &all)], &input);
        got.get_mut("p1").unwrap().push(frame(9, 0, false));
        assert!(match_group(&input, &all, &got, &cut).is_err());
    }

    #[test]
    fn copies_cut_to_fit_are_expected_cut() {
        let input = input();
        let all: Vec<usize> = (0..input.packets.len()).collect();
        let cut: BTreeMap<String, usize> = [("p1".to_string(), 60)].into();
        let mut got = received(&[("p1", &all)], &input);
        assert!(match_group(&input, &all, &got, &cut).is_err(), "whole");
        for f in got.get_mut("p1").unwrap() {
            f.truncate(60);
        }
        match_group(&input, &all, &got, &cut).unwrap();
    }

    #[test]
    fn fnv1a_of_known_strings() {
        // The FNV test vectors (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a32(""), 0x811C_9DC5);
        assert_eq!(fnv1a32("a"), 0xE40C_292C);
    }
}
