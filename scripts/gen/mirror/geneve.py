"""Generic GENEVE mirrors (RFC 8926): Ethernet with options, or bare IP.

Two shapes that other senders use and a broker must take apart:

* `carry="ethernet"`: protocol type 0x6558 (transparent Ethernet bridging), the mirrored frame
  whole, with TLV options (Open vSwitch, OVN and hypervisor sensors attach metadata this way);
* `carry="ip"`: protocol type 0x0800 or 0x86DD, the mirrored packet from its IP header on, no
  Ethernet (as GWLB, or GCP's packet intercept, deliver).

`option_sets` is a list of option lists; packet n of the mirror carries `option_sets[n % len]`, so one
session exercises several option layouts. Options are non-critical unless the caller passes a type
with bit 7 set (then the C flag is set as RFC 8926 requires).
"""

from .inner import InnerView
from .net import flow_source_port, stable_hash
from .tunnels import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_TRANSPARENT_ETHERNET,
    GENEVE_PORT,
    Mirrored,
    SessionInfo,
    Underlay,
    describe_mirrored,
    ethernet,
    geneve_header,
    outer_five_tuple,
    udp_datagram,
)


class GeneveMirror:
    """A sensor that sends what it mirrors to a collector in GENEVE."""

    def __init__(self, vni: int, underlay: Underlay, source_ips, carry: str = "ethernet",
                 option_sets=((),)):
        if carry not in ("ethernet", "ip"):
            raise ValueError("carry is 'ethernet' or 'ip'")
        self.vni = vni
        self.underlay = underlay
        self.source_ips = list(source_ips)
        self.carry = carry
        self.option_sets = [list(options) for options in option_sets] or [[]]
        self.sent = 0
        self.next_ip_id = stable_hash("ip-id", underlay.src_ip, vni) & 0xFFFF

    @property
    def encap(self) -> str:
        return "geneve-eth" if self.carry == "ethernet" else "geneve-ip"

    def session_info(self) -> SessionInfo:
        return SessionInfo(encap=self.encap, vni=self.vni, mirror_sources=[self.underlay.src_ip],
                           source_ips=self.source_ips)

    def encapsulate(self, view: InnerView) -> Mirrored:
        options = self.option_sets[self.sent % len(self.option_sets)]
        self.sent += 1
        if self.carry == "ethernet":
            protocol, payload = ETHERTYPE_TRANSPARENT_ETHERNET, view.frame
        else:
            protocol = ETHERTYPE_IPV4 if view.ip_version == 4 else ETHERTYPE_IPV6
            payload = view.l3
        sport = flow_source_port(*view.flow)
        ip_id, self.next_ip_id = self.next_ip_id, (self.next_ip_id + 1) & 0xFFFF
        l3 = udp_datagram(self.underlay, sport, GENEVE_PORT,
                          geneve_header(self.vni, protocol, options) + payload, ip_id=ip_id,
                          flow_label=stable_hash("flow-label", *view.flow) & 0xFFFFF)
        # inner_len: what follows the GENEVE header, the frame or (bare IP) the packet without
        # Ethernet.
        describe = describe_mirrored(self.encap, self.vni, self.underlay.src_ip, len(payload),
                                     len(payload), geneve_protocol=protocol,
                                     geneve_options=len(options))
        return Mirrored(frame=ethernet(self.underlay, l3),
                        outer_flow=outer_five_tuple(self.underlay, sport, GENEVE_PORT),
                        describe=describe)
