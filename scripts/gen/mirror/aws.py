"""AWS VPC Traffic Mirroring: what a mirror target receives.

From the AWS documentation (Traffic Mirroring: targets, sessions, packet format):

* the mirrored packet is VXLAN-encapsulated, UDP destination port 4789, and sent to the mirror
  target (an ENI, an NLB, or a GWLB endpoint; for the last see `gwlb.py`);
* the VXLAN VNI is the session's virtual network ID (chosen by the user, else assigned);
* "packet length": only the first N bytes after the VXLAN header are mirrored; the inner headers
  are not rewritten, so the inner IP length still states the full size.

Modelled beyond the documentation: the outer source address is the mirrored ENI's primary private
IPv4 address (also when the mirrored traffic is IPv6); the UDP source port is a hash of the inner
flow (so that RSS on the target spreads flows and keeps each on one queue); the outer IPv4
identification counts up per session; TTL 64, DF set, UDP checksum zero.
"""

from typing import Optional

from .inner import InnerView
from .net import flow_source_port, stable_hash
from .tunnels import (
    VXLAN_PORT,
    Mirrored,
    SessionInfo,
    Underlay,
    describe_mirrored,
    ethernet,
    outer_five_tuple,
    truncate_frame,
    udp_datagram,
    vxlan_header,
)


class AwsMirror:
    """The mirror session of one ENI: its mirrored packets, as the target receives them."""

    encap = "aws-vxlan"

    def __init__(self, vni: int, eni_ip: str, eni_addresses, target_ip: str, target_mac: str,
                 target_router_mac: str, packet_length: Optional[int] = None):
        if packet_length is not None and packet_length < 1:
            raise ValueError("packet length is at least 1 byte")
        self.vni = vni
        self.eni_ip = eni_ip
        self.eni_addresses = list(eni_addresses)
        self.packet_length = packet_length
        self.underlay = Underlay(src_ip=eni_ip, dst_ip=target_ip, src_mac=target_router_mac,
                                 dst_mac=target_mac)
        self.next_ip_id = stable_hash("ip-id", eni_ip, vni) & 0xFFFF

    def session_info(self) -> SessionInfo:
        return SessionInfo(encap=self.encap, vni=self.vni, mirror_sources=[self.eni_ip],
                           source_ips=self.eni_addresses, truncate=self.packet_length)

    def datagram(self, view: InnerView):
        """The VXLAN packet from IP on (what GWLB carries), its outer 5-tuple and description."""
        inner = truncate_frame(view.frame, self.packet_length)
        sport = flow_source_port(*view.flow)
        ip_id, self.next_ip_id = self.next_ip_id, (self.next_ip_id + 1) & 0xFFFF
        l3 = udp_datagram(self.underlay, sport, VXLAN_PORT, vxlan_header(self.vni) + inner, ip_id=ip_id)
        describe = describe_mirrored(self.encap, self.vni, self.eni_ip, len(view.frame), len(inner))
        return l3, outer_five_tuple(self.underlay, sport, VXLAN_PORT), describe

    def encapsulate(self, view: InnerView) -> Mirrored:
        l3, outer_flow, describe = self.datagram(view)
        return Mirrored(frame=ethernet(self.underlay, l3), outer_flow=outer_flow, describe=describe)
