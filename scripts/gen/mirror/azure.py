"""Azure virtual network TAP (vTAP): what the collector receives.

From the Azure documentation (Virtual network TAP overview): the traffic of a tapped VM network
interface is mirrored to a destination (a collector's NIC IP or an internal load balancer frontend)
VXLAN-encapsulated, UDP port 4789 by default, with the VNI configured per TAP configuration.

Modelled beyond the documentation: the outer source address is that of the host running the tapped
VM (the platform, not the VM, encapsulates); the UDP source port is a hash of the inner flow; the outer IPv4 identification counts per tap; TTL 64, UDP checksum zero.
Inner frames carry Azure's MACs: VM NICs use the 00:0d:3a prefix and the virtual network's gateway
answers as 12:34:56:78:9a:bc, which is what a VM sees as the MAC of every off-host destination.
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

# What a VM in an Azure virtual network sees as its gateway's (every off-link next hop's) MAC.
AZURE_GATEWAY_MAC = "12:34:56:78:9a:bc"


def azure_vm_mac(index: int) -> str:
    """A MAC in the 00:0d:3a prefix Azure gives VM network interfaces."""
    return f"00:0d:3a:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


class AzureVtap:
    """One virtual network TAP configuration: a tapped VM NIC, its host, the destination."""

    encap = "azure-vxlan"

    def __init__(self, vni: int, host_ip: str, vm_addresses, collector_ip: str, collector_mac: str):
        self.vni = vni
        self.host_ip = host_ip
        self.vm_addresses = list(vm_addresses)
        self.underlay = Underlay(src_ip=host_ip, dst_ip=collector_ip, src_mac=AZURE_GATEWAY_MAC,
                                 dst_mac=collector_mac)
        self.next_ip_id = stable_hash("ip-id", host_ip, vni) & 0xFFFF

    def session_info(self) -> SessionInfo:
        return SessionInfo(encap=self.encap, vni=self.vni, mirror_sources=[self.host_ip],
                           source_ips=self.vm_addresses,
                           note="outer source is the host of the tapped VM")

    def encapsulate(self, view: InnerView) -> Mirrored:
        sport = flow_source_port(*view.flow)
        ip_id, self.next_ip_id = self.next_ip_id, (self.next_ip_id + 1) & 0xFFFF
        l3 = udp_datagram(self.underlay, sport, VXLAN_PORT, vxlan_header(self.vni) + view.frame,
                          ip_id=ip_id)
        describe = describe_mirrored(self.encap, self.vni, self.host_ip, len(view.frame), len(view.frame))
        return Mirrored(frame=ethernet(self.underlay, l3),
                        outer_flow=outer_five_tuple(self.underlay, sport, VXLAN_PORT),
                        describe=describe)
