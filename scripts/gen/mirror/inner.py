"""The inner traffic: hosts, and packets as each mirrored interface saw them.

A packet of a conversation is built once, as its sender put it on the wire (L3 and up, scapy, not
yet serialised). Mirroring happens at an interface at one end of the conversation, and what that
interface sees depends on which end it is:

* at the sender, the packet carries the sender's initial TTL (hop limit), its source MAC is the
  sender's and its destination MAC the next hop's (the peer on the same subnet, else the subnet's
  router);
* at the receiver, the TTL is lower by the routers on the path and, when the path is routed, the
  source MAC is the receiver's router's.

`InnerPacket.view_at(host)` returns that frame. When both ends of a connection are mirrored, the two
copies therefore differ exactly as they do in a VPC: the same bytes from L3 on except TTL and IPv4
header checksum (routed path), and possibly different Ethernet headers. Hosts outside the mirrored
network (internet peers) are never viewpoints; their `ttl` and the path's `hops` together give the
TTL that arrives at the mirrored interface.
"""

from dataclasses import dataclass, field
from typing import Optional

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6

from .tunnels import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ethernet_header


@dataclass(frozen=True)
class Host:
    """An endpoint of inner traffic (one address: a dual-stack interface is two hosts)."""

    ip: str
    mac: str
    # MAC of the router of the host's subnet: the next hop of its routed traffic, and the source
    # MAC of routed traffic it receives.
    router_mac: str
    # Initial TTL / hop limit of its stack (Linux 64, Windows 128).
    ttl: int = 64


@dataclass(frozen=True)
class InnerView:
    """A packet as one mirrored interface saw it."""

    frame: bytes
    # Bytes before the IP header: 14, or 18 with an 802.1Q tag.
    l2_len: int
    ip_version: int
    # (source address, destination address, IP protocol, source port, destination port); for ICMP
    # echo the ports are (identifier, 0). Directional.
    flow: tuple

    @property
    def l3(self) -> bytes:
        return self.frame[self.l2_len :]


@dataclass
class InnerPacket:
    """One packet of a conversation, as its sender sent it (see the module documentation)."""

    # IP or IPv6 with its payload; TTL/hop limit and checksums are filled in by `view_at`.
    l3: object
    sender: Host
    receiver: Host
    # Routers between sender and receiver: 0 on one subnet.
    hops: int
    # 802.1Q VLAN id of the inner frame, or None for an untagged frame.
    vlan: Optional[int]
    flow: tuple
    # What the sidecar says about it: kind (tcp/udp/icmp/icmpv6), app, tcp_flags, conversation.
    describe: dict = field(default_factory=dict)

    def view_at(self, viewpoint: Host) -> InnerView:
        if viewpoint == self.sender:
            ttl = self.sender.ttl
            src_mac = self.sender.mac
            dst_mac = self.receiver.mac if self.hops == 0 else self.sender.router_mac
        elif viewpoint == self.receiver:
            ttl = self.sender.ttl - self.hops
            src_mac = self.sender.mac if self.hops == 0 else self.receiver.router_mac
            dst_mac = self.receiver.mac
        else:
            raise ValueError(f"{viewpoint.ip} is not an end of {self.flow}")
        if not 1 <= ttl <= 255:
            raise ValueError(f"TTL {ttl} out of range for {self.flow}")

        # Set on the stored packet and serialised at once (scapy recomputes the IPv4 checksum and
        # the L4 checksum at every build); cheaper than copying the packet for each view.
        if isinstance(self.l3, IP):
            self.l3.ttl, version, ethertype = ttl, 4, ETHERTYPE_IPV4
        elif isinstance(self.l3, IPv6):
            self.l3.hlim, version, ethertype = ttl, 6, ETHERTYPE_IPV6
        else:
            raise TypeError("inner packets are IPv4 or IPv6")
        l2 = ethernet_header(dst_mac, src_mac, ethertype, self.vlan)
        return InnerView(frame=l2 + bytes(self.l3), l2_len=len(l2), ip_version=version, flow=self.flow)

    def direction_at(self, viewpoint: Host) -> str:
        """AWS Traffic Mirroring's words: egress leaves the mirrored interface, ingress enters it."""
        return "egress" if viewpoint == self.sender else "ingress"
