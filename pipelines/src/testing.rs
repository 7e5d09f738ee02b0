//! Helpers for tests, benches and fuzz targets: a packet builder written independently of the
//! wire views (tests must not build their inputs with the code under test), a sink that keeps
//! what it is given, and a deterministic generator. (Sample configs are `config::fixtures`.)
//!
//! Not part of the data path: compiled for this crate's tests and with the `testing` feature,
//! which the benches and the fuzz crate (separate crates) enable.
#![doc(hidden)]

use std::net::IpAddr;

use crate::buf::{PacketBuf, Sink};
use crate::observe::{Observer, TraceRecord};
use crate::outcome::Outcome;
use crate::pipeline::BURST;

/// Internet checksum (RFC 1071) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame: dst 02:00:00:00:00:02, src 02:00:00:00:00:01.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet (no options, TTL 64, DF clear, id 1) with a correct header checksum.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet (hop limit 64, no extension headers).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next_header);
    p.push(64);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram with checksum 0 (legal for IPv4).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// A TCP segment (20-byte header, ACK|PSH, checksum not computed).
pub fn tcp(src_port: u16, dst_port: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&src_port.to_be_bytes());
    s.extend_from_slice(&dst_port.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    s
}

/// An inner Ethernet/IPv4/TCP frame.
pub fn inner_tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    src_port: u16,
    dst_port: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    ethernet(
        0x0800,
        &ipv4(src, dst, 6, &tcp(src_port, dst_port, seq, payload)),
    )
}

/// An inner Ethernet/IPv6/UDP frame.
pub fn inner_udp6(
    src: [u8; 16],
    dst: [u8; 16],
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    ethernet(
        0x86DD,
        &ipv6(src, dst, 17, &udp(src_port, dst_port, payload)),
    )
}

/// A VXLAN header (RFC 7348): I flag set, `vni`.
pub fn vxlan_header(vni: u32) -> [u8; 8] {
    let v = (vni << 8).to_be_bytes();
    [0x08, 0, 0, 0, v[0], v[1], v[2], 0]
}

/// A whole mirrored frame as AWS VPC Traffic Mirroring sends it: Ethernet/IPv4/UDP 4789/VXLAN,
/// from the mirrored interface's address `outer_src`, around `inner`.
pub fn aws_vxlan(outer_src: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut tunnel = vxlan_header(vni).to_vec();
    tunnel.extend_from_slice(inner);
    // AWS derives the UDP source port from the inner flow; any value will do here.
    let sport = 49152 | (checksum(inner) & 0x3FFF);
    ethernet(
        0x0800,
        &ipv4(outer_src, [10, 0, 0, 100], 17, &udp(sport, 4789, &tunnel)),
    )
}

/// An IPv4 address as bytes, for readability in tests.
pub fn v4(a: &str) -> [u8; 4] {
    match a.parse::<IpAddr>() {
        Ok(IpAddr::V4(v)) => v.octets(),
        _ => panic!("not an IPv4 address: {a}"),
    }
}

/// An IPv6 address as bytes.
pub fn v6(a: &str) -> [u8; 16] {
    match a.parse::<IpAddr>() {
        Ok(IpAddr::V6(v)) => v.octets(),
        _ => panic!("not an IPv6 address: {a}"),
    }
}

/// A sink that keeps delivered packets with their port, keeps punted ones (for the control
/// side) and counts discards.
#[derive(Debug)]
pub struct CollectSink<B> {
    pub delivered: Vec<(u16, B)>,
    pub punted: Vec<B>,
    pub discarded: usize,
}

impl<B> Default for CollectSink<B> {
    fn default() -> Self {
        CollectSink {
            delivered: Vec::new(),
            punted: Vec::new(),
            discarded: 0,
        }
    }
}

impl<B> Sink<B> for CollectSink<B> {
    fn deliver(&mut self, port: u16, pkt: B) {
        self.delivered.push((port, pkt));
    }

    fn discard(&mut self, _pkt: B) {
        self.discarded += 1;
    }

    fn punt(&mut self, pkt: B) {
        self.punted.push(pkt);
    }
}

/// A sink that watches: it traces the packets of the burst whose bit is set in `traced`,
/// keeps each packet's outcome and counts the copies it sees delivered (the tap's hooks, as the
/// broker's worker has them), then hands everything to `inner`. Allocates only in
/// [`TracingSink::new`].
#[derive(Debug)]
pub struct TracingSink<S> {
    pub inner: S,
    /// Bit `i`: packet `i` of the burst is traced.
    pub traced: u32,
    pub records: Box<[TraceRecord; BURST]>,
    /// Each packet's outcome, by index in the burst.
    pub outcomes: [Option<Outcome>; BURST],
    /// `(index, group, port, length)` of the copies delivered in the last burst, in order;
    /// `deliveries[..delivered]`.
    pub deliveries: Box<[(usize, u16, u16, usize)]>,
    pub delivered: usize,
}

impl<S> TracingSink<S> {
    /// Traces every packet of each burst (`traced` can be narrowed after).
    pub fn new(inner: S) -> TracingSink<S> {
        TracingSink {
            inner,
            traced: u32::MAX,
            records: Box::new([TraceRecord::EMPTY; BURST]),
            outcomes: [None; BURST],
            deliveries: vec![(0, 0, 0, 0); BURST * config::MAX_TOOLS_PER_SESSION].into(),
            delivered: 0,
        }
    }

    /// Starts the records of a burst, as the worker does before the pipeline runs.
    pub fn begin<B: PacketBuf>(&mut self, pkts: &[Option<B>]) {
        self.outcomes = [None; BURST];
        self.delivered = 0;
        for (i, (record, pkt)) in self.records.iter_mut().zip(pkts).enumerate() {
            if let (Some(pkt), true) = (pkt, self.traced & (1 << i) != 0) {
                record.begin(pkt);
            }
        }
    }
}

impl<B, S: Sink<B>> Sink<B> for TracingSink<S> {
    fn deliver(&mut self, port: u16, pkt: B) {
        self.inner.deliver(port, pkt);
    }

    fn discard(&mut self, pkt: B) {
        self.inner.discard(pkt);
    }

    fn punt(&mut self, pkt: B) {
        self.inner.punt(pkt);
    }
}

impl<B: PacketBuf, S> Observer<B> for TracingSink<S> {
    fn trace(&mut self, index: usize) -> Option<&mut TraceRecord> {
        if index < BURST && self.traced & (1 << index) != 0 {
            self.records.get_mut(index)
        } else {
            None
        }
    }

    fn outcome(&mut self, index: usize, outcome: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    fn delivering(&mut self, index: usize, group: u16, port: u16, pkt: &B) {
        if let Some(slot) = self.deliveries.get_mut(self.delivered) {
            *slot = (index, group, port, pkt.pkt_len());
            self.delivered += 1;
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood): a tiny deterministic generator, so that tests and benches
/// replay the same inputs on every run.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (not 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, each with its weight (their sum not 0).
    pub fn weighted<T: Copy>(&mut self, items: &[(u64, T)]) -> T {
        let total: u64 = items.iter().map(|(weight, _)| weight).sum();
        let mut pick = self.below(total);
        for &(weight, item) in items {
            if pick < weight {
                return item;
            }
            pick -= weight;
        }
        items[items.len() - 1].1
    }
}
