"""VXLAN over an IPv6 underlay, with or without an extension header before UDP.

The cloud mirror services modelled here send IPv4 outer headers, but VXLAN over IPv6 is what Linux
`vxlan` devices and self-managed sensors in IPv6-only underlays send, and a broker that parses outer IPv6 must walk extension headers to reach UDP. With
`destination_options`, a Destination Options header (carrying a Tunnel Encapsulation Limit option,
RFC 2473) sits between IPv6 and UDP.

The UDP checksum is computed (over IPv6 a zero checksum needs RFC 6935's special permission) and the
flow label is a hash of the inner flow, as Linux sets it for tunnels (RFC 6438).
"""

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
    udp_datagram,
    vxlan_header,
)


class Vxlan6Mirror:
    encap = "vxlan-ipv6"

    def __init__(self, vni: int, underlay: Underlay, source_ips):
        if underlay.version != 6:
            raise ValueError("the underlay of a Vxlan6Mirror is IPv6")
        self.vni = vni
        self.underlay = underlay
        self.source_ips = list(source_ips)

    def session_info(self) -> SessionInfo:
        note = "IPv6 Destination Options header before UDP" if self.underlay.destination_options else ""
        return SessionInfo(encap=self.encap, vni=self.vni, mirror_sources=[self.underlay.src_ip],
                           source_ips=self.source_ips, note=note)

    def encapsulate(self, view: InnerView) -> Mirrored:
        sport = flow_source_port(*view.flow)
        l3 = udp_datagram(self.underlay, sport, VXLAN_PORT, vxlan_header(self.vni) + view.frame,
                          flow_label=stable_hash("flow-label", *view.flow) & 0xFFFFF)
        describe = describe_mirrored(self.encap, self.vni, self.underlay.src_ip, len(view.frame),
                                     len(view.frame),
                                     outer_destination_options=self.underlay.destination_options)
        return Mirrored(frame=ethernet(self.underlay, l3),
                        outer_flow=outer_five_tuple(self.underlay, sport, VXLAN_PORT),
                        describe=describe)
