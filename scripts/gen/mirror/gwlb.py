"""AWS Gateway Load Balancer as the mirror target: GENEVE carrying the VXLAN mirror packet.

A mirror session may target a GWLB endpoint. The ENI sends its VXLAN mirror packet to the endpoint's
address; GWLB then delivers that IP packet to one of its appliances (here, the broker) inside GENEVE,
UDP port 6081. So the broker sees two tunnels, GENEVE → VXLAN → the mirrored frame:

    Ether / IPv4 (GWLB → appliance) / UDP 6081 / GENEVE (proto 0x0800, VNI 0, 3 AWS TLVs)
          / IPv4 (ENI → GWLB endpoint) / UDP 4789 / VXLAN (session VNI) / mirrored Ethernet frame

GWLB's GENEVE, as AWS describes it ("Integrate your custom logic or appliance with AWS Gateway Load
Balancer"): protocol type 0x0800/0x86DD (GWLB carries IP packets, no Ethernet) and three
options of class 0x0108 (AWS): type 1, the 64-bit GWLB endpoint (VPC endpoint) ID; type 2, the 64-bit
attachment ID; type 3, the 32-bit flow cookie, which GWLB chooses per flow. With them the GENEVE
header is 8 + 32 bytes, and IPv4 + UDP + GENEVE the 68 bytes of overhead that AWS documents. GWLB
does not use the VNI; it is 0 here.
"""

from .aws import AwsMirror
from .inner import InnerView
from .net import flow_source_port, stable_hash
from .tunnels import (
    ETHERTYPE_IPV4,
    GENEVE_PORT,
    GeneveOption,
    Mirrored,
    SessionInfo,
    Underlay,
    ethernet,
    geneve_header,
    outer_five_tuple,
    udp_datagram,
)

AWS_OPTION_CLASS = 0x0108
OPTION_GWLBE_ID = 1
OPTION_ATTACHMENT_ID = 2
OPTION_FLOW_COOKIE = 3


class GwlbMirror:
    """Mirror sessions targeting one GWLB endpoint, delivered by GWLB to one appliance."""

    encap = "gwlb-geneve-vxlan"

    def __init__(self, session: AwsMirror, gwlb_ip: str, appliance_ip: str, appliance_mac: str,
                 appliance_router_mac: str, gwlbe_id: int, attachment_id: int):
        self.session = session
        self.underlay = Underlay(src_ip=gwlb_ip, dst_ip=appliance_ip, src_mac=appliance_router_mac,
                                 dst_mac=appliance_mac)
        self.gwlbe_id = gwlbe_id
        self.attachment_id = attachment_id
        self.next_ip_id = stable_hash("ip-id", gwlb_ip, appliance_ip, session.vni) & 0xFFFF

    def session_info(self) -> SessionInfo:
        info = self.session.session_info()
        info.encap = self.encap
        info.note = (f"VXLAN mirror packets from {self.session.eni_ip} inside GENEVE from GWLB "
                     f"{self.underlay.src_ip}")
        return info

    def encapsulate(self, view: InnerView) -> Mirrored:
        vxlan_packet, vxlan_flow, describe = self.session.datagram(view)
        # GWLB load-balances and keeps state by the 5-tuple of the packet it receives: here, the
        # VXLAN packet's. The flow cookie and the GENEVE source port follow from it.
        flow_cookie = stable_hash("gwlb-flow-cookie", *vxlan_flow) & 0xFFFFFFFF
        options = [
            GeneveOption(AWS_OPTION_CLASS, OPTION_GWLBE_ID, self.gwlbe_id.to_bytes(8, "big")),
            GeneveOption(AWS_OPTION_CLASS, OPTION_ATTACHMENT_ID, self.attachment_id.to_bytes(8, "big")),
            GeneveOption(AWS_OPTION_CLASS, OPTION_FLOW_COOKIE, flow_cookie.to_bytes(4, "big")),
        ]
        sport = flow_source_port(*vxlan_flow)
        ip_id, self.next_ip_id = self.next_ip_id, (self.next_ip_id + 1) & 0xFFFF
        payload = geneve_header(0, ETHERTYPE_IPV4, options) + vxlan_packet
        l3 = udp_datagram(self.underlay, sport, GENEVE_PORT, payload, ip_id=ip_id)
        describe.update({
            "encap": self.encap,
            "geneve_vni": 0,
            "geneve_options": len(options),
            "gwlb_flow_cookie": flow_cookie,
            "vxlan_src": vxlan_flow[0],
            "vxlan_dst": vxlan_flow[1],
            "vxlan_sport": vxlan_flow[3],
        })
        return Mirrored(frame=ethernet(self.underlay, l3),
                        outer_flow=outer_five_tuple(self.underlay, sport, GENEVE_PORT),
                        describe=describe)
