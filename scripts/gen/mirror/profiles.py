"""The profiles: who is mirrored, by which format, and what traffic they carry.

Addresses: mirrored interfaces use private ranges (10/8, 172.31/16 for AWS's default VPC, fd00::/8);
internet peers use the documentation ranges 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32.
Remote peers' packets arrive with the TTL their stack set (64, or 128 for Windows) less the routers
on the way. DNS goes to a resolver on the internet side: AWS does not mirror traffic to the Amazon
DNS server, so a mirrored ENI's DNS to the VPC resolver would not appear.
"""

import ipaddress
from dataclasses import dataclass
from typing import Callable, Optional

from .aws import AwsMirror
from .azure import AZURE_GATEWAY_MAC, AzureVtap, azure_vm_mac
from .geneve import GeneveMirror
from .gwlb import GwlbMirror
from .inner import Host
from .net import local_mac
from .scenario import Template
from .traffic import Ends
from .tunnels import GeneveOption, Underlay
from .vxlan6 import Vxlan6Mirror

DEFAULT_TRUNCATE = 128


@dataclass(frozen=True)
class Options:
    """The command-line options that shape a profile."""

    truncate: Optional[int] = None


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    build: Callable[[Options], list]
    default_packets: int
    # "imix" or "min": inner frames of exact lengths instead of conversations.
    mix: Optional[str] = None
    # Whether --truncate applies (AWS mirror sessions have a packet length).
    truncatable: bool = False


# --- hosts ----------------------------------------------------------------------------------------

def _subnet(address: str) -> str:
    prefix = 24 if ipaddress.ip_address(address).version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def interface(address: str, name: str, ttl: int = 64, mac: Optional[str] = None,
              router_mac: Optional[str] = None) -> Host:
    """An address of a mirrored (or local) interface; the addresses of one dual-stack interface
    share its `name`, hence its MAC and its router's."""
    return Host(ip=address, mac=mac or local_mac("interface", name),
                router_mac=router_mac or local_mac("router", name), ttl=ttl)


def remote(address: str, ttl: int = 64) -> Host:
    """A peer beyond the mirrored network (never a viewpoint: its MAC never shows)."""
    return Host(ip=address, mac=local_mac("remote", address), router_mac=local_mac("remote-router", address),
                ttl=ttl)


def interface_templates(mirror, host4: Host, host6: Optional[Host] = None, vlan: Optional[int] = None,
                        number: int = 1, max_body: int = 8000):
    """The everyday traffic of one mirrored interface: HTTP served to the internet, TLS and DNS
    and ping going out, the same over IPv6 when it has an IPv6 address, and, with `vlan`, HTTP in a
    VLAN-tagged frame. `number` varies the peers from one interface to the next."""
    seen = ((host4, mirror),)
    templates = [
        Template("http", Ends(remote(f"198.51.100.{10 + number}", ttl=128), host4, hops=11), seen,
                 server_port=80, host_name="shop.example.com", max_body=max_body),
        Template("tls", Ends(host4, remote(f"203.0.113.{50 + number}"), hops=9), seen,
                 server_port=443, host_name="api.example.net", max_body=max_body),
        Template("dns", Ends(host4, remote("198.51.100.53"), hops=7), seen),
        Template("echo", Ends(host4, remote(f"203.0.113.{100 + number}"), hops=13), seen),
    ]
    if vlan is not None:
        templates.append(Template("http", Ends(host4, remote("203.0.113.80"), hops=10, vlan=vlan), seen,
                                  server_port=80, host_name="updates.example.org", max_body=max_body))
    if host6 is not None:
        seen6 = ((host6, mirror),)
        templates += [
            Template("tls", Ends(remote(f"2001:db8:443::{number:x}"), host6, hops=12), seen6,
                     server_port=443, host_name="app.example.com", max_body=max_body),
            Template("dns", Ends(host6, remote("2001:db8:53::53"), hops=8), seen6),
            Template("echo", Ends(host6, remote("2001:db8:53::53"), hops=8), seen6),
        ]
        if vlan is not None:
            templates.append(Template("http", Ends(host6, remote("2001:db8:80::80"), hops=10,
                                                   vlan=vlan + 1), seen6, server_port=80,
                                      host_name="updates.example.org", max_body=max_body))
    return templates


def interleave(*template_lists):
    """Templates of several interfaces taken in turn, so that the conversations open at any time
    belong to different sessions (as on a real mirror target) and a short capture covers them all."""
    merged = []
    for position in range(max(len(templates) for templates in template_lists)):
        merged += [templates[position] for templates in template_lists if position < len(templates)]
    return merged


# --- AWS VPC Traffic Mirroring --------------------------------------------------------------------

def aws_target(address: str):
    """Keyword arguments for an AwsMirror aimed at the target `address`."""
    return {"target_ip": address, "target_mac": local_mac("interface", "target", address),
            "target_router_mac": local_mac("router", "target", address)}


LAB_TARGET = "10.0.0.100"


def build_lab(options: Options):
    """The lab: three sessions, VNIs 101–103, one target. Session 101 holds two ENIs, and a
    connection between them is mirrored at both ends (both copies carry VNI 101)."""
    target = aws_target(LAB_TARGET)
    truncate = options.truncate
    eni_a = interface("10.0.1.10", "eni-a")
    eni_b = interface("10.0.1.11", "eni-b")
    eni_c = interface("10.0.2.20", "eni-c")
    eni_d4 = interface("10.0.3.30", "eni-d")
    eni_d6 = interface("fd00:3::30", "eni-d")
    mirror_a = AwsMirror(101, eni_a.ip, [eni_a.ip], packet_length=truncate, **target)
    mirror_b = AwsMirror(101, eni_b.ip, [eni_b.ip], packet_length=truncate, **target)
    mirror_c = AwsMirror(102, eni_c.ip, [eni_c.ip], packet_length=truncate, **target)
    mirror_d = AwsMirror(103, eni_d4.ip, [eni_d4.ip, eni_d6.ip], packet_length=truncate, **target)
    both_ends = ((eni_a, mirror_a), (eni_b, mirror_b))
    templates = [
        # One subnet, both ENIs mirrored: every packet twice, identical from L3 on.
        Template("http", Ends(eni_a, eni_b), both_ends, server_port=8080,
                 host_name="10.0.1.11:8080", max_body=4000),
        Template("echo", Ends(eni_b, eni_a), both_ends, echo_count=3),
    ]
    return interleave(
        templates,
        interface_templates(mirror_a, eni_a, number=1, max_body=6000),
        interface_templates(mirror_c, eni_c, vlan=20, number=2, max_body=6000),
        interface_templates(mirror_d, eni_d4, eni_d6, vlan=30, number=3, max_body=6000),
    )


def _aws_sessions(packet_length_of):
    """AWS-style sessions in a default VPC (172.31.0.0/16) aimed at an NLB (172.31.0.200), with
    VNIs at the edges of the 24-bit range. `packet_length_of(n)` gives session n's packet length."""
    target = aws_target("172.31.0.200")
    sessions = [
        (1, interface("172.31.10.5", "web"), None, None),
        (3000001, interface("172.31.20.7", "app"), interface("2001:db8:20::7", "app"), None),
        (0xF00000, interface("172.31.30.9", "batch"), None, 40),
        (0xFFFFFF, interface("172.31.40.11", "windows", ttl=128), None, None),
    ]
    per_interface = []
    for number, (vni, host4, host6, vlan) in enumerate(sessions, start=1):
        addresses = [host4.ip] + ([host6.ip] if host6 else [])
        mirror = AwsMirror(vni, host4.ip, addresses, packet_length=packet_length_of(number), **target)
        per_interface.append(interface_templates(mirror, host4, host6, vlan=vlan, number=number))
    return interleave(*per_interface)


def build_aws(options: Options):
    return _aws_sessions(lambda number: options.truncate)


def build_truncated(options: Options):
    """Sessions 1 and 3 mirror the first `truncate` bytes; sessions 2 and 4 whole packets."""
    length = options.truncate or DEFAULT_TRUNCATE
    return _aws_sessions(lambda number: length if number % 2 == 1 else None)


def build_both_ends(options: Options):
    """Connections whose both ends are mirrored, each end by its own session. A (VNI 101) and B
    (VNI 104) share a subnet: the copies are identical from L3 on. C (VNI 105) is in a peered VPC
    reached through a transit gateway: the copy taken at the receiving end has a TTL one lower (and
    so another IPv4 checksum) and other MAC addresses."""
    target = aws_target(LAB_TARGET)
    truncate = options.truncate
    a4, a6 = interface("10.0.1.10", "eni-a"), interface("fd00:1::10", "eni-a")
    b4, b6 = interface("10.0.1.11", "eni-b"), interface("fd00:1::11", "eni-b")
    c4 = interface("10.1.5.50", "eni-c")
    mirror_a = AwsMirror(101, a4.ip, [a4.ip, a6.ip], packet_length=truncate, **target)
    mirror_b = AwsMirror(104, b4.ip, [b4.ip, b6.ip], packet_length=truncate, **target)
    mirror_c = AwsMirror(105, c4.ip, [c4.ip], packet_length=truncate, **target)
    return [
        Template("http", Ends(a4, b4), ((a4, mirror_a), (b4, mirror_b)), server_port=8080,
                 host_name="10.0.1.11:8080", max_body=4000),
        Template("echo", Ends(b4, a4), ((b4, mirror_b), (a4, mirror_a)), echo_count=3),
        Template("tls", Ends(b6, a6), ((b6, mirror_b), (a6, mirror_a)), server_port=443,
                 host_name="a.internal.example", max_body=4000),
        Template("echo", Ends(a6, b6), ((a6, mirror_a), (b6, mirror_b)), echo_count=3),
        Template("dns", Ends(a4, c4, hops=1), ((a4, mirror_a), (c4, mirror_c))),
        Template("tls", Ends(a4, c4, hops=1), ((a4, mirror_a), (c4, mirror_c)), server_port=443,
                 host_name="c.peer.example", max_body=4000),
        Template("echo", Ends(c4, a4, hops=1), ((c4, mirror_c), (a4, mirror_a)), echo_count=3),
    ]


FLEET_ENIS = 12
FLEET_TARGET = "172.31.0.200"  # an NLB in front of the brokers


def fleet_enis():
    """The fleet profile's ENIs: (VNI, IPv4 host, IPv6 host or None), three subnets of four; the
    even ENIs are dual-stack."""
    enis = []
    for number in range(FLEET_ENIS):
        subnet, host = divmod(number, 4)
        name = f"fleet-eni-{number}"
        host4 = interface(f"10.{subnet + 1}.0.{10 + host}", name)
        host6 = interface(f"fd00:{subnet + 1}::{10 + host:x}", name) if number % 2 == 0 else None
        enis.append((2001 + number, host4, host6))
    return enis


def build_fleet(options: Options):
    """A VPC where many connections are mirrored at both ends, each ENI by its own session (its own
    VNI and outer source), aimed at an NLB: what a fleet of brokers behind it shares out. ENI n
    talks to ENIs n+1 (HTTP, DNS) and n+3 (TLS, ping), and a dual-stack one to n+2 over IPv6 (TLS),
    in the same subnet or through a router (the receiver's copy one TTL lower); every ENI also
    talks to the internet (mirrored at its end only). The ENIs that talk form triangles, so the
    copies cannot be split apart by colour (`--split-by outer`): split with `lb` or `inner`."""
    target = aws_target(FLEET_TARGET)
    enis = fleet_enis()
    mirrors = [AwsMirror(vni, host4.ip, [host4.ip] + ([host6.ip] if host6 else []),
                         packet_length=options.truncate, **target)
               for vni, host4, host6 in enis]
    both_ends, internet = [], []
    for number, (_, host4, host6) in enumerate(enis):
        mirror = mirrors[number]
        near, far = (number + 1) % FLEET_ENIS, (number + 3) % FLEET_ENIS
        near4, far4 = enis[near][1], enis[far][1]

        def hops(other, number=number):
            """Routers between ENI `number` and `other`: none in one subnet, else one."""
            return 0 if other // 4 == number // 4 else 1

        def seen(other, mine, theirs, mirror=mirror):
            """Mirrored at both ends: by this ENI's session and by `other`'s."""
            return ((mine, mirror), (theirs, mirrors[other]))

        both_ends += [
            Template("http", Ends(host4, near4, hops=hops(near)), seen(near, host4, near4),
                     server_port=8080, host_name=f"{near4.ip}:8080", max_body=3000),
            Template("dns", Ends(host4, near4, hops=hops(near)), seen(near, host4, near4)),
            Template("tls", Ends(host4, far4, hops=hops(far)), seen(far, host4, far4),
                     server_port=443, host_name="svc.internal.example", max_body=3000),
            Template("echo", Ends(far4, host4, hops=hops(far)), seen(far, far4, host4), echo_count=2),
        ]
        other6 = (number + 2) % FLEET_ENIS
        peer6 = enis[other6][2]
        if host6 is not None and peer6 is not None:
            both_ends.append(Template("tls", Ends(peer6, host6, hops=hops(other6)),
                                      seen(other6, peer6, host6), server_port=443,
                                      host_name="v6.internal.example", max_body=3000))
        internet.append(interface_templates(mirror, host4, host6, number=number + 1, max_body=3000))
    # A conversation mirrored at both ends, then one at one end, in turn.
    return interleave(both_ends, interleave(*internet))


# --- GWLB -----------------------------------------------------------------------------------------

def build_gwlb(options: Options):
    """Sessions 101–103 target a GWLB endpoint (10.0.0.200); GWLB nodes in two zones (10.100.0.50,
    10.100.1.50) deliver to the appliance (the broker, 10.100.0.10) in GENEVE."""
    appliance = {"appliance_ip": "10.100.0.10",
                 "appliance_mac": local_mac("interface", "appliance"),
                 "appliance_router_mac": local_mac("router", "appliance")}
    target = aws_target("10.0.0.200")
    truncate = options.truncate
    eni_a = interface("10.0.1.10", "eni-a")
    eni_c = interface("10.0.2.20", "eni-c")
    eni_d4, eni_d6 = interface("10.0.3.30", "eni-d"), interface("fd00:3::30", "eni-d")
    sessions = [
        (AwsMirror(101, eni_a.ip, [eni_a.ip], packet_length=truncate, **target), "10.100.0.50", eni_a, None, None),
        (AwsMirror(102, eni_c.ip, [eni_c.ip], packet_length=truncate, **target), "10.100.0.50", eni_c, None, 20),
        (AwsMirror(103, eni_d4.ip, [eni_d4.ip, eni_d6.ip], packet_length=truncate, **target),
         "10.100.1.50", eni_d4, eni_d6, None),
    ]
    per_interface = []
    for number, (session, gwlb_ip, host4, host6, vlan) in enumerate(sessions, start=1):
        mirror = GwlbMirror(session, gwlb_ip, gwlbe_id=0x0A1B2C3D4E5F6071,
                            attachment_id=0x0F1E2D3C4B5A6978, **appliance)
        per_interface.append(interface_templates(mirror, host4, host6, vlan=vlan, number=number))
    return interleave(*per_interface)


# --- Azure vTAP -----------------------------------------------------------------------------------

def build_azure(options: Options):
    """Three tapped VMs (VNIs 201–203) on two hosts (10.240.0.21, 10.240.0.22), one collector
    (10.1.0.100). VMs use Azure's MACs and see every off-link peer behind the gateway MAC."""
    collector_mac = azure_vm_mac(0x100)
    vms = [
        (201, "10.240.0.21", Host("10.1.1.4", azure_vm_mac(1), AZURE_GATEWAY_MAC), None, None),
        (202, "10.240.0.21", Host("10.1.1.5", azure_vm_mac(2), AZURE_GATEWAY_MAC),
         Host("fd00:a::5", azure_vm_mac(2), AZURE_GATEWAY_MAC), None),
        (203, "10.240.0.22", Host("10.1.2.4", azure_vm_mac(3), AZURE_GATEWAY_MAC, ttl=128), None, 50),
    ]
    per_interface = []
    for number, (vni, host_ip, vm4, vm6, vlan) in enumerate(vms, start=1):
        addresses = [vm4.ip] + ([vm6.ip] if vm6 else [])
        tap = AzureVtap(vni, host_ip, addresses, collector_ip="10.1.0.100", collector_mac=collector_mac)
        per_interface.append(interface_templates(tap, vm4, vm6, vlan=vlan, number=number))
    return interleave(*per_interface)


# --- generic GENEVE -------------------------------------------------------------------------------

def _sensor_underlay(address: str) -> Underlay:
    return Underlay(src_ip=address, dst_ip="10.50.0.100", src_mac=local_mac("router", "collector"),
                    dst_mac=local_mac("interface", "collector"))


def build_geneve_options(options: Options):
    """GENEVE carrying Ethernet (0x6558) with options. Session 301 cycles through no option, one,
    and three (one of them empty); session 302 sends 33 words of options (a 124-byte one, the
    largest a TLV can be, and a 4-byte one), beyond what a 5-bit length could hold in total."""
    sensor_id = GeneveOption(0xFFFF, 0x01, bytes.fromhex("0000002a"))
    metadata = GeneveOption(0x0100, 0x02, bytes.fromhex("0011223344556677"))
    empty = GeneveOption(0x0101, 0x03)
    long_option = GeneveOption(0x0104, 0x04, bytes(range(124)))
    host_a = interface("10.60.1.10", "sensor-a-host")
    host_b4, host_b6 = interface("10.60.2.20", "sensor-b-host"), interface("fd00:60:2::20", "sensor-b-host")
    mirror_a = GeneveMirror(301, _sensor_underlay("10.50.0.11"), [host_a.ip],
                            option_sets=[[], [sensor_id], [sensor_id, metadata, empty]])
    mirror_b = GeneveMirror(302, _sensor_underlay("10.50.0.12"), [host_b4.ip, host_b6.ip],
                            option_sets=[[long_option, sensor_id]])
    return interleave(interface_templates(mirror_a, host_a, vlan=60, number=1),
                      interface_templates(mirror_b, host_b4, host_b6, number=2))


def build_geneve_bare_ip(options: Options):
    """GENEVE carrying IP packets without Ethernet: protocol 0x0800 or 0x86DD after the inner
    packet's family. Session 401 has no options, 402 one."""
    host_a4, host_a6 = interface("10.60.1.10", "sensor-a-host"), interface("fd00:60:1::10", "sensor-a-host")
    host_b = interface("10.60.2.20", "sensor-b-host")
    mirror_a = GeneveMirror(401, _sensor_underlay("10.50.0.21"), [host_a4.ip, host_a6.ip], carry="ip")
    mirror_b = GeneveMirror(402, _sensor_underlay("10.50.0.22"), [host_b.ip], carry="ip",
                            option_sets=[[GeneveOption(0xFFFF, 0x01, bytes.fromhex("0000002b"))]])
    return interleave(interface_templates(mirror_a, host_a4, host_a6, number=1),
                      interface_templates(mirror_b, host_b, number=2))


# --- VXLAN over IPv6 ------------------------------------------------------------------------------

def build_ipv6_outer(options: Options):
    """VXLAN over IPv6 to fd00::100: session 501 from fd00:1::11 plain, session 502 from fd00:1::12
    with a Destination Options header between IPv6 and UDP."""
    def underlay(address: str, destination_options: bool) -> Underlay:
        return Underlay(src_ip=address, dst_ip="fd00::100", src_mac=local_mac("router", "collector6"),
                        dst_mac=local_mac("interface", "collector6"),
                        destination_options=destination_options)

    host_a4, host_a6 = interface("10.70.1.10", "v6-host-a"), interface("fd00:70:1::10", "v6-host-a")
    host_b4, host_b6 = interface("10.70.2.20", "v6-host-b"), interface("fd00:70:2::20", "v6-host-b")
    mirror_a = Vxlan6Mirror(501, underlay("fd00:1::11", False), [host_a4.ip, host_a6.ip])
    mirror_b = Vxlan6Mirror(502, underlay("fd00:1::12", True), [host_b4.ip, host_b6.ip])
    return interleave(interface_templates(mirror_a, host_a4, host_a6, vlan=70, number=1),
                      interface_templates(mirror_b, host_b4, host_b6, number=2))


PROFILES = {
    profile.name: profile
    for profile in [
        Profile("lab", "the lab sample: AWS VXLAN, sessions 101 (ENIs 10.0.1.10 and 10.0.1.11, "
                "one connection between them mirrored at both ends, both copies VNI 101), 102 "
                "(10.0.2.20) and 103 (10.0.3.30 + fd00:3::30); target 10.0.0.100",
                build_lab, 600, truncatable=True),
        Profile("aws", "AWS VXLAN: four sessions in a default VPC (172.31/16), VNIs 1, 3000001, "
                "0xF00000, 0xFFFFFF, target 172.31.0.200", build_aws, 600, truncatable=True),
        Profile("gwlb", "AWS GWLB: GENEVE (6081, three AWS TLVs) from GWLB nodes 10.100.0.50 and "
                "10.100.1.50, carrying the VXLAN mirror packets of sessions 101-103",
                build_gwlb, 500, truncatable=True),
        Profile("azure", "Azure vTAP: VXLAN from VM hosts 10.240.0.21/.22, VNIs 201-203, "
                "collector 10.1.0.100", build_azure, 500),
        Profile("geneve-options", "GENEVE with Ethernet (0x6558) and TLV options, VNIs 301-302",
                build_geneve_options, 500),
        Profile("geneve-bare-ip", "GENEVE carrying IPv4/IPv6 without Ethernet (0x0800/0x86DD), "
                "VNIs 401-402", build_geneve_bare_ip, 500),
        Profile("ipv6-outer", "VXLAN over IPv6 to fd00::100, VNI 501 plain, VNI 502 with a "
                "Destination Options header", build_ipv6_outer, 500),
        Profile("both-ends", "every packet mirrored at both ends: ENIs 10.0.1.10 (VNI 101), "
                "10.0.1.11 (VNI 104, same subnet) and 10.1.5.50 (VNI 105, via a transit gateway: "
                "TTL one lower at the receiving end)", build_both_ends, 400, truncatable=True),
        Profile("fleet", f"many connections mirrored at both ends: {FLEET_ENIS} ENIs (10.1-3.0.10-13, "
                "the even ones also fd00:1-3::a-d), each its own session (VNI 2001-2012, outer source "
                f"its address), talking to each other and to the internet; target an NLB "
                f"({FLEET_TARGET})", build_fleet, 4000, truncatable=True),
        Profile("truncated", f"the aws profile with packet-length truncation: sessions 1 and "
                f"0xF00000 mirror the first {DEFAULT_TRUNCATE} bytes (--truncate N), the others "
                "whole packets", build_truncated, 600, truncatable=True),
        Profile("min-size", "the aws sessions, 64-byte inner frames only (114-byte mirror packets)",
                build_aws, 600, mix="min", truncatable=True),
        Profile("imix", "the aws sessions, inner frames 7:4:1 of 64/594/1518 bytes",
                build_aws, 1200, mix="imix", truncatable=True),
    ]
}
