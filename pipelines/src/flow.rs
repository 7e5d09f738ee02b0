//! What the later stages need to know about the inner packet, parsed once per packet.

use std::net::IpAddr;

/// The inner packet's addresses and transport ports, as the filter and the balancer see them.
///
/// Built from the inner frame after decapsulation (inner VLAN tags looked through). Only IP
/// packets have one; a non-IP inner frame (ARP, LLDP, …) has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 upper-layer protocol found after the extension headers.
    pub protocol: u8,
    /// Transport ports, when the packet is TCP, UDP or SCTP, its ports are in the bytes present
    /// and it is not a non-first fragment; `(0, 0)` otherwise.
    pub src_port: u16,
    pub dst_port: u16,
    /// Whether `src_port`/`dst_port` were read from the packet.
    pub has_ports: bool,
    /// The packet is a fragment (first or later) of a larger IP packet.
    pub fragment: bool,
}

impl FlowKey {
    /// A key for a packet that carries ports.
    pub fn with_ports(
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> FlowKey {
        FlowKey {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            has_ports: true,
            fragment: false,
        }
    }

    /// A key for a packet without transport ports (ICMP, a later fragment, …).
    pub fn without_ports(src: IpAddr, dst: IpAddr, protocol: u8) -> FlowKey {
        FlowKey {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            has_ports: false,
            fragment: false,
        }
    }
}

/// IP protocol numbers the stages name.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}
