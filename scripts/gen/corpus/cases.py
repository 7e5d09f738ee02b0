"""The cases of the conformance corpus: one function each, returning the input and the config.

Every case keeps its tool groups' port choice knowable (one port, or round-robin: with one
worker, copy i of a group goes to port i mod n); stickiness of hashed balancing over several
ports is the e2e tests' business. Inputs stay small (tens of packets, short HTTP bodies) so the
checked-in corpus stays a few hundred KB.
"""

from dataclasses import dataclass
from typing import List

from mirror.aws import AwsMirror
from mirror.azure import AZURE_GATEWAY_MAC, AzureVtap, azure_vm_mac
from mirror.geneve import GeneveMirror
from mirror.gwlb import GwlbMirror
from mirror.inner import Host
from mirror.net import local_mac
from mirror.profiles import _sensor_underlay, aws_target, interface, remote
from mirror.scenario import Template
from mirror.traffic import Ends
from mirror.tunnels import (
    ETHERTYPE_TRANSPARENT_ETHERNET,
    GENEVE_PORT,
    IPPROTO_UDP,
    VXLAN_PORT,
    GeneveOption,
    Underlay,
    geneve_header,
    vxlan_header,
)
from mirror.vxlan6 import Vxlan6Mirror

from .model import Config, Filter, Group, Rule, Session
from .packets import (
    TPID_8021AD,
    TPID_8021Q,
    AzureVtapOnPort,
    Flow,
    Known,
    OuterTags,
    Packet,
    Plain,
    arp_request,
    behind_synthetic_ethernet,
    conversation_packets,
    cut_to,
    ipv4,
    ipv6,
    outer_ethernet,
    probe,
    udp,
    vxlan_frame,
    vxlan_l3,
)


@dataclass
class Case:
    name: str
    summary: str
    config: Config
    packets: List[Packet]


def interleave_at(base, extra, every: int):
    """`base` with the packets of `extra` inserted after every `every` of its packets, so the
    special frames sit among ordinary traffic (and the broker's per-VNI cache is exercised)."""
    out, pending = [], list(extra)
    for number, packet in enumerate(base, start=1):
        out.append(packet)
        if pending and number % every == 0:
            out.append(pending.pop(0))
    return out + pending


def one_port(name: str, **kwargs) -> Group:
    return Group(name=name, ports=[f"{name}-1"], **kwargs)


# --- AWS VPC Traffic Mirroring --------------------------------------------------------------------

def aws_vxlan() -> Case:
    target = aws_target("10.0.0.100")
    web = interface("10.0.1.10", "eni-web")
    db4, db6 = interface("10.0.2.20", "eni-db"), interface("fd00:2::20", "eni-db")
    m_web = Known(AwsMirror(101, web.ip, [web.ip], **target))
    m_db = Known(AwsMirror(0xFFFFFF, db4.ip, [db4.ip, db6.ip], **target))
    at_web, at_db4, at_db6 = ((web, m_web),), ((db4, m_db),), ((db6, m_db),)
    templates = [
        Template("http", Ends(remote("198.51.100.11", ttl=128), web, hops=11), at_web, server_port=80,
                 host_name="shop.example.com", max_body=500),
        Template("http", Ends(db4, remote("203.0.113.80"), hops=10, vlan=20), at_db4, server_port=8080,
                 host_name="updates.example.org", max_body=300),
        Template("dns", Ends(web, remote("198.51.100.53"), hops=7), at_web),
        Template("echo", Ends(db6, remote("2001:db8:53::53"), hops=8), at_db6, echo_count=2),
        Template("echo", Ends(web, remote("203.0.113.101"), hops=13), at_web, echo_count=2),
        Template("dns", Ends(db6, remote("2001:db8:53::53"), hops=8), at_db6),
    ]
    packets = conversation_packets(templates, seed=11, count=56, stream="aws")
    web_filter = Filter("web-filter", default="reject", rules=[
        Rule(100, "accept", direction="ingress", protocol="tcp", dst_ports="80",
             description="HTTP requests to the web server"),
        Rule(110, "accept", direction="egress", protocol="tcp", src_ports="80",
             description="and its responses"),
        Rule(200, "accept", direction="egress", protocol="udp", dst_cidr="198.51.100.53/32",
             dst_ports="53", description="DNS queries to the resolver (answers fall to the default)"),
        Rule(300, "reject", protocol="icmp", description="no pings"),
    ])
    config = Config(
        name="aws-vxlan",
        comment="AWS VPC Traffic Mirroring to an ENI target: VXLAN 4789 from the mirrored ENIs.",
        allowed_sources=["10.0.0.0/16"],
        sessions=[
            Session("web", ["ids", "recorder"], vni=101, filter="web-filter", source_ips=[web.ip]),
            Session("db", ["ids"], vni=0xFFFFFF, source_ips=[db4.ip, db6.ip]),
        ],
        filters=[web_filter],
        groups=[Group("ids", ["ids-1", "ids-2"], balance="round-robin"),
                one_port("recorder", slice=128)],
    )
    return Case("aws-vxlan", "AWS VPC Traffic Mirroring: VXLAN (4789) from two ENIs, VNIs 101 and "
                "16777215 (the largest), dual-stack and 802.1Q-tagged inner frames; an AWS-style "
                "filter with directions on session web; a round-robin group of two ports and a "
                "recorder sliced to 128 bytes", config, packets)


def truncated() -> Case:
    target = aws_target("172.31.0.200")
    web = interface("172.31.10.5", "web")
    app4, app6 = interface("172.31.20.7", "app"), interface("2001:db8:20::7", "app")
    m_web = Known(AwsMirror(7, web.ip, [web.ip], packet_length=100, **target), cut_to(100))
    m_app = Known(AwsMirror(8, app4.ip, [app4.ip, app6.ip], **target))
    templates = [
        Template("http", Ends(remote("198.51.100.12"), web, hops=11), ((web, m_web),), server_port=80,
                 host_name="shop.example.com", max_body=1500),
        Template("http", Ends(remote("2001:db8:443::2"), app6, hops=12), ((app6, m_app),), server_port=80,
                 host_name="app.example.com", max_body=1500),
        Template("echo", Ends(web, remote("203.0.113.101"), hops=13), ((web, m_web),), echo_count=2),
        Template("dns", Ends(app4, remote("198.51.100.53"), hops=7), ((app4, m_app),)),
    ]
    packets = conversation_packets(templates, seed=12, count=48, stream="truncated")
    config = Config(
        name="truncated",
        comment="AWS packet length: session 7 mirrors the first 100 bytes of each packet.",
        allowed_sources=["172.31.0.0/16"],
        sessions=[Session("cut", ["ids", "recorder"], vni=7, source_ips=[web.ip]),
                  Session("whole", ["ids", "recorder"], vni=8, source_ips=[app4.ip, app6.ip])],
        groups=[one_port("ids"), one_port("recorder", slice=80)],
    )
    return Case("truncated", "AWS packet-length truncation: session 7 mirrors the first 100 bytes "
                "(the inner IP length still says the full size: truncated_by_source), session 8 "
                "whole packets; the recorder slices to 80 bytes, the ids gets what arrived",
                config, packets)


def outer_qinq() -> Case:
    target = aws_target("10.0.0.100")
    a, b, c = interface("10.0.1.10", "eni-a"), interface("10.0.1.11", "eni-b"), interface("10.0.1.12", "eni-c")
    plain = Known(AwsMirror(101, a.ip, [a.ip], **target))
    dot1q = OuterTags(Known(AwsMirror(102, b.ip, [b.ip], **target)), [(TPID_8021Q, 100)])
    qinq = OuterTags(Known(AwsMirror(103, c.ip, [c.ip], **target)), [(TPID_8021AD, 200), (TPID_8021Q, 100)])
    templates = [
        Template("http", Ends(remote("198.51.100.13"), a, hops=11), ((a, plain),), server_port=80,
                 max_body=300),
        Template("dns", Ends(b, remote("198.51.100.53"), hops=7), ((b, dot1q),)),
        Template("http", Ends(c, remote("203.0.113.80"), hops=10, vlan=30), ((c, qinq),), server_port=80,
                 max_body=300),
        Template("echo", Ends(c, remote("203.0.113.102"), hops=13), ((c, qinq),), echo_count=2),
    ]
    packets = conversation_packets(templates, seed=13, count=36, stream="qinq")
    extra = []
    for number, tags, label in [
        (1, [(0x9100, 300), (TPID_8021Q, 100)], "pre-standard QinQ (0x9100, 0x8100): decapsulated"),
        (2, [(TPID_8021Q, 100), (TPID_8021Q, 101)], "two 802.1Q tags: decapsulated"),
    ]:
        inner, flow = probe(number, src=c.ip)
        frame = outer_ethernet(vxlan_l3(c.ip, "10.0.0.100", 103, inner), tags=tags)
        extra.append(Packet(frame=frame, note=f"vxlan vni 103, outer {label}", outer_src=c.ip, vni=103,
                            mirror_src=c.ip, delivered=inner, full_len=len(inner), flow=flow,
                            identity=("probe", number)))
    inner, _ = probe(3, src=c.ip)
    three = [(TPID_8021AD, 200), (TPID_8021Q, 100), (TPID_8021Q, 101)]
    extra.append(Packet(frame=outer_ethernet(vxlan_l3(c.ip, "10.0.0.100", 103, inner), tags=three),
                        note="vxlan vni 103 behind three outer VLAN tags: beyond QinQ",
                        outer_src=c.ip, malformed="vlan_too_deep"))
    config = Config(
        name="outer-qinq",
        comment="Mirror traffic arriving on tagged links: no tag, 802.1Q, QinQ (802.1ad + 802.1Q).",
        allowed_sources=["10.0.1.0/24"],
        sessions=[Session("untagged", ["ids"], vni=101, source_ips=[a.ip]),
                  Session("dot1q", ["ids"], vni=102, source_ips=[b.ip]),
                  Session("qinq", ["ids"], vni=103, source_ips=[c.ip])],
        groups=[one_port("ids")],
    )
    return Case("outer-qinq", "outer VLAN tags before the VXLAN packet: none, one 802.1Q tag, QinQ "
                "(0x88A8 then 0x8100), the pre-standard 0x9100 and two 0x8100 tags (all "
                "decapsulated) and three tags (malformed: vlan_too_deep)",
                config, interleave_at(packets, extra, 9))


def _unknown_vni_input():
    target = aws_target("10.0.0.100")
    a, b, c = interface("10.0.1.10", "eni-a"), interface("10.0.2.20", "eni-c"), interface("10.0.3.30", "eni-d")
    templates = [
        Template("http", Ends(remote("198.51.100.14"), a, hops=11),
                 ((a, Known(AwsMirror(101, a.ip, [a.ip], **target))),), server_port=80, max_body=300),
        Template("dns", Ends(b, remote("198.51.100.53"), hops=7),
                 ((b, Known(AwsMirror(102, b.ip, [b.ip], **target))),)),
        Template("echo", Ends(c, remote("203.0.113.103"), hops=13),
                 ((c, Known(AwsMirror(103, c.ip, [c.ip], **target))),), echo_count=3),
    ]
    return conversation_packets(templates, seed=14, count=30, stream="unknown-vni"), a


def unknown_vni() -> Case:
    packets, a = _unknown_vni_input()
    config = Config(
        name="unknown-vni",
        comment="Only VNI 101 has a session; 102 and 103 are dropped as unknown_session.",
        allowed_sources=["10.0.0.0/16"],
        sessions=[Session("web", ["ids"], vni=101, source_ips=[a.ip])],
        groups=[one_port("ids")],
    )
    return Case("unknown-vni", "VNIs 101, 102, 103 arrive; only 101 has a session and there is no "
                "default_session: the others are counted as unknown_session", config, packets)


def unknown_vni_default() -> Case:
    packets, a = _unknown_vni_input()
    config = Config(
        name="unknown-vni-default",
        comment="As unknown-vni, with a default_session that takes VNIs 102 and 103.",
        allowed_sources=["10.0.0.0/16"],
        default_session="catchall",
        sessions=[Session("web", ["ids"], vni=101, source_ips=[a.ip]),
                  Session("catchall", ["recorder"])],
        groups=[one_port("ids"), one_port("recorder", slice=64)],
    )
    return Case("unknown-vni-default", "the input of unknown-vni with default_session = \"catchall\": "
                "VNIs 102 and 103 go to the catch-all session's recorder (sliced to 64 bytes)",
                config, packets)


def allowlist() -> Case:
    target = aws_target("10.0.0.100")
    web = interface("10.0.1.10", "eni-web")
    v6 = interface("10.70.1.10", "v6-host")
    legit = Known(AwsMirror(101, web.ip, [web.ip], **target))
    forged = Known(AwsMirror(101, "192.0.2.66", [web.ip], **target))

    def underlay6(address):
        return Underlay(src_ip=address, dst_ip="fd00::100", src_mac=local_mac("router", "collector6"),
                        dst_mac=local_mac("interface", "collector6"))

    legit6 = Known(Vxlan6Mirror(501, underlay6("fd00:1::11"), [v6.ip]))
    forged6 = Known(Vxlan6Mirror(501, underlay6("2001:db8:bad::1"), [v6.ip]))
    templates = [
        Template("http", Ends(remote("198.51.100.15"), web, hops=11), ((web, legit),), server_port=80,
                 max_body=300),
        Template("dns", Ends(web, remote("198.51.100.53"), hops=7), ((web, forged),)),
        Template("echo", Ends(v6, remote("203.0.113.104"), hops=13), ((v6, legit6),), echo_count=2),
        Template("echo", Ends(v6, remote("203.0.113.105"), hops=13), ((v6, forged6),), echo_count=2),
    ]
    packets = conversation_packets(templates, seed=15, count=36, stream="allowlist")
    inner, flow = probe(1)
    extra = [
        Packet(frame=vxlan_frame("192.0.2.66", "10.0.0.100", 0, inner, flags=0x00),
               note="from 192.0.2.66, VXLAN without the I flag: denied before the VXLAN header is read",
               outer_src="192.0.2.66"),
        Packet(frame=outer_ethernet(ipv4("10.0.1.10", "10.0.0.100", IPPROTO_UDP,
                                         udp(50001, VXLAN_PORT, vxlan_header(101) + inner),
                                         flags_fragment=0x2000)),
               note="from allowed 10.0.1.10, an outer IPv4 fragment (MF set): malformed",
               outer_src="10.0.1.10", malformed="outer_fragment"),
        Packet(frame=outer_ethernet(ipv4("192.0.2.66", "10.0.0.100", IPPROTO_UDP,
                                         udp(50001, VXLAN_PORT, vxlan_header(101) + inner),
                                         flags_fragment=0x2000)),
               note="from 192.0.2.66, the same fragment: denied first", outer_src="192.0.2.66"),
        Packet(frame=inner[:12] + bytes.fromhex("0800") + ipv4("192.0.2.66", "10.0.0.100", IPPROTO_UDP,
                                                                 udp(5353, 53, b"\x00" * 12)),
               note="from 192.0.2.66, plain UDP (no tunnel): denied, not not_tunnel",
               outer_src="192.0.2.66"),
    ]
    config = Config(
        name="allowlist",
        comment="allowed_sources: only the VPC's ENIs and one IPv6 sensor may send mirror traffic.",
        allowed_sources=["10.0.1.0/24", "fd00:1::/64"],
        sessions=[Session("web", ["ids"], vni=101, source_ips=[web.ip]),
                  Session("sensor6", ["ids"], vni=501, source_ips=[v6.ip])],
        groups=[one_port("ids")],
    )
    return Case("allowlist", "allowed_sources = 10.0.1.0/24 and fd00:1::/64: VXLAN from 192.0.2.66 and "
                "from 2001:db8:bad::1 (forged copies of sessions 101 and 501) is source_denied, "
                "whatever it carries (even broken or untunnelled); the allowed sources' traffic "
                "is delivered", config, interleave_at(packets, extra, 8))


# --- AWS Gateway Load Balancer --------------------------------------------------------------------

def gwlb() -> Case:
    appliance = {"appliance_ip": "10.100.0.10", "appliance_mac": local_mac("interface", "appliance"),
                 "appliance_router_mac": local_mac("router", "appliance")}
    target = aws_target("10.0.0.200")
    a = interface("10.0.1.10", "eni-a")
    c = interface("10.0.2.20", "eni-c")
    ids = dict(gwlbe_id=0x0A1B2C3D4E5F6071, attachment_id=0x0F1E2D3C4B5A6978)
    m_a = Known(GwlbMirror(AwsMirror(101, a.ip, [a.ip], **target), "10.100.0.50", **appliance, **ids))
    m_c = Known(GwlbMirror(AwsMirror(102, c.ip, [c.ip], **target), "10.100.1.50", **appliance, **ids))
    direct = Known(AwsMirror(101, a.ip, [a.ip], target_ip="10.100.0.10",
                             target_mac=local_mac("interface", "appliance"),
                             target_router_mac=local_mac("router", "appliance")))
    templates = [
        Template("http", Ends(remote("198.51.100.16"), a, hops=11), ((a, m_a),), server_port=80, max_body=400),
        Template("http", Ends(c, remote("203.0.113.80"), hops=10, vlan=20), ((c, m_c),), server_port=80,
                 max_body=300),
        Template("dns", Ends(a, remote("198.51.100.53"), hops=7), ((a, m_a),)),
        Template("echo", Ends(c, remote("203.0.113.106"), hops=13), ((c, m_c),), echo_count=2),
        Template("echo", Ends(a, remote("203.0.113.107"), hops=13), ((a, direct),), echo_count=1),
    ]
    packets = conversation_packets(templates, seed=16, count=40, stream="gwlb")
    config = Config(
        name="gwlb",
        comment="Behind an AWS Gateway Load Balancer: GENEVE 6081 from the GWLB nodes, carrying the\n"
                "VXLAN mirror packets. Only the GWLB nodes may send; the inner VXLAN source (the\n"
                "mirrored ENI) is the mirror source.",
        allowed_sources=["10.100.0.0/23"],
        sessions=[Session("shop", ["ids"], vni=101, source_ips=[a.ip]),
                  Session("payments", ["ids", "arkime"], vni=102, source_ips=[c.ip])],
        groups=[one_port("ids", balance="flow"), one_port("arkime", slice=256, dedup=False)],
    )
    return Case("gwlb", "AWS GWLB: GENEVE (6081, the three AWS TLVs, bare IPv4) from GWLB nodes "
                "10.100.0.50 and 10.100.1.50 carrying the VXLAN mirror packets of sessions 101 "
                "and 102; the allowlist holds the GWLB subnets only, so the ENI's VXLAN sent "
                "straight to the broker is source_denied", config, packets)


# --- Azure virtual network TAP --------------------------------------------------------------------

def azure() -> Case:
    collector = dict(collector_ip="10.1.0.100", collector_mac=azure_vm_mac(0x100))
    vm1 = Host("10.1.1.4", azure_vm_mac(1), AZURE_GATEWAY_MAC)
    vm2_4 = Host("10.1.1.5", azure_vm_mac(2), AZURE_GATEWAY_MAC)
    vm2_6 = Host("fd00:a::5", azure_vm_mac(2), AZURE_GATEWAY_MAC)
    vm3 = Host("10.1.2.4", azure_vm_mac(3), AZURE_GATEWAY_MAC, ttl=128)
    tap1 = Known(AzureVtap(201, "10.240.0.21", [vm1.ip], **collector))
    tap2 = Known(AzureVtapOnPort(8472, 202, "10.240.0.22", [vm2_4.ip, vm2_6.ip], **collector))
    tap3 = Known(AzureVtapOnPort(4790, 203, "10.240.0.22", [vm3.ip], **collector))
    templates = [
        Template("http", Ends(remote("198.51.100.17", ttl=128), vm1, hops=11), ((vm1, tap1),),
                 server_port=80, max_body=400),
        Template("dns", Ends(vm2_4, remote("198.51.100.53"), hops=7), ((vm2_4, tap2),)),
        Template("echo", Ends(vm2_6, remote("2001:db8:53::53"), hops=8), ((vm2_6, tap2),), echo_count=2),
        Template("http", Ends(vm2_4, remote("203.0.113.80"), hops=10, vlan=50), ((vm2_4, tap2),),
                 server_port=80, max_body=300),
        Template("echo", Ends(vm3, remote("203.0.113.108"), hops=13), ((vm3, tap3),), echo_count=1),
    ]
    packets = conversation_packets(templates, seed=17, count=44, stream="azure")
    for packet in packets:
        if packet.vni == 203:
            # UDP 4790 is not in vxlan_ports: the broker does not look inside.
            packet.vni, packet.note = None, packet.note + " (to UDP 4790, not a VXLAN port)"
    config = Config(
        name="azure-vxlan",
        comment="Azure virtual network TAP: VXLAN from the VM hosts, one VNI per TAP configuration;\n"
                "TAP 202's destination port is 8472, listed beside 4789.",
        vxlan_ports=[4789, 8472],
        allowed_sources=["10.240.0.0/24"],
        sessions=[Session("vm1", ["ids"], vni=201, source_ips=[vm1.ip]),
                  Session("vm2", ["ids"], vni=202, source_ips=[vm2_4.ip, vm2_6.ip]),
                  Session("vm3", ["ids"], vni=203, source_ips=[vm3.ip])],
        groups=[one_port("ids")],
    )
    return Case("azure-vxlan", "Azure vTAP: VXLAN from VM hosts 10.240.0.21/.22 with Azure MACs, VNI "
                "201 on UDP 4789, VNI 202 on 8472 (vxlan_ports = [4789, 8472]), and VNI 203 sent to "
                "4790, which is not listed: not_tunnel", config, packets)


# --- generic GENEVE and VXLAN over IPv6 -----------------------------------------------------------

def geneve_options() -> Case:
    sensor_id = GeneveOption(0xFFFF, 0x01, bytes.fromhex("0000002a"))
    metadata = GeneveOption(0x0100, 0x02, bytes.fromhex("0011223344556677"))
    empty = GeneveOption(0x0101, 0x03)
    longest = GeneveOption(0x0104, 0x04, bytes(range(124)))
    a = interface("10.60.1.10", "sensor-a-host")
    b4, b6 = interface("10.60.2.20", "sensor-b-host"), interface("fd00:60:2::20", "sensor-b-host")
    m_a = Known(GeneveMirror(301, _sensor_underlay("10.50.0.11"), [a.ip],
                             option_sets=[[], [sensor_id], [sensor_id, metadata, empty]]))
    m_b = Known(GeneveMirror(302, _sensor_underlay("10.50.0.12"), [b4.ip, b6.ip],
                             option_sets=[[longest, sensor_id]]))
    templates = [
        Template("http", Ends(remote("198.51.100.18"), a, hops=11, vlan=60), ((a, m_a),), server_port=80,
                 max_body=400),
        Template("dns", Ends(b6, remote("2001:db8:53::53"), hops=8), ((b6, m_b),)),
        Template("echo", Ends(a, remote("203.0.113.109"), hops=13), ((a, m_a),), echo_count=2),
        Template("echo", Ends(b4, remote("203.0.113.110"), hops=13), ((b4, m_b),), echo_count=2),
    ]
    packets = conversation_packets(templates, seed=18, count=36, stream="geneve-options")
    config = Config(
        name="geneve-options",
        comment="GENEVE (6081) carrying Ethernet (0x6558) with TLV options: none, one, three, and\n"
                "132 bytes of them (a 124-byte option and a 4-byte one).",
        allowed_sources=["10.50.0.0/24"],
        sessions=[Session("sensor-a", ["ids"], vni=301, source_ips=[a.ip]),
                  Session("sensor-b", ["ids", "recorder"], vni=302, source_ips=[b4.ip, b6.ip])],
        groups=[one_port("ids", balance="ip-pair"), one_port("recorder", slice=100)],
    )
    return Case("geneve-options", "GENEVE with Ethernet and options of every size up to 132 bytes, "
                "skipped by their length", config, packets)


def geneve_bare_ip() -> Case:
    a4, a6 = interface("10.60.1.10", "sensor-a-host"), interface("fd00:60:1::10", "sensor-a-host")
    b = interface("10.60.2.20", "sensor-b-host")
    m_a = Known(GeneveMirror(401, _sensor_underlay("10.50.0.21"), [a4.ip, a6.ip], carry="ip"),
                behind_synthetic_ethernet)
    m_b = Known(GeneveMirror(402, _sensor_underlay("10.50.0.22"), [b.ip], carry="ip",
                             option_sets=[[GeneveOption(0xFFFF, 0x01, bytes.fromhex("0000002b"))]]),
                behind_synthetic_ethernet)
    templates = [
        Template("http", Ends(remote("198.51.100.19"), a4, hops=11), ((a4, m_a),), server_port=80,
                 max_body=400),
        Template("echo", Ends(a6, remote("2001:db8:53::53"), hops=8), ((a6, m_a),), echo_count=2),
        Template("dns", Ends(b, remote("198.51.100.53"), hops=7), ((b, m_b),)),
        Template("dns", Ends(a6, remote("2001:db8:53::53"), hops=8), ((a6, m_a),)),
    ]
    packets = conversation_packets(templates, seed=19, count=36, stream="geneve-bare-ip")
    config = Config(
        name="geneve-bare-ip",
        comment="GENEVE carrying IPv4/IPv6 without Ethernet (protocol 0x0800 / 0x86DD): the broker\n"
                "delivers them behind its fixed Ethernet header 02:00:00:00:00:01 -> 02:00:00:00:00:02.",
        allowed_sources=["10.50.0.0/24"],
        sessions=[Session("sensor-a", ["ids"], vni=401, source_ips=[a4.ip, a6.ip]),
                  Session("sensor-b", ["ids"], vni=402, source_ips=[b.ip])],
        groups=[one_port("ids")],
    )
    return Case("geneve-bare-ip", "GENEVE carrying bare IPv4 and IPv6 (no Ethernet), with and without "
                "an option: delivered behind the fixed Ethernet header 02:00:00:00:00:01 → "
                "02:00:00:00:00:02", config, packets)


def ipv6_outer() -> Case:
    def underlay(address, destination_options):
        return Underlay(src_ip=address, dst_ip="fd00::100", src_mac=local_mac("router", "collector6"),
                        dst_mac=local_mac("interface", "collector6"), destination_options=destination_options)

    a4, a6 = interface("10.70.1.10", "v6-host-a"), interface("fd00:70:1::10", "v6-host-a")
    b4 = interface("10.70.2.20", "v6-host-b")
    m_a = Known(Vxlan6Mirror(501, underlay("fd00:1::11", False), [a4.ip, a6.ip]))
    m_b = Known(Vxlan6Mirror(502, underlay("fd00:1::12", True), [b4.ip]))
    templates = [
        Template("http", Ends(remote("198.51.100.20"), a4, hops=11, vlan=70), ((a4, m_a),), server_port=80,
                 max_body=400),
        Template("http", Ends(remote("198.51.100.21"), b4, hops=11), ((b4, m_b),), server_port=80,
                 max_body=400),
        Template("echo", Ends(a6, remote("2001:db8:53::53"), hops=8), ((a6, m_a),), echo_count=2),
        Template("dns", Ends(b4, remote("198.51.100.53"), hops=7), ((b4, m_b),)),
    ]
    packets = conversation_packets(templates, seed=20, count=40, stream="ipv6-outer")
    config = Config(
        name="ipv6-outer",
        comment="VXLAN over IPv6: VNI 501 plain, VNI 502 with a Destination Options header before UDP.",
        allowed_sources=["fd00:1::/64"],
        sessions=[Session("host-a", ["ids"], vni=501, source_ips=[a4.ip, a6.ip]),
                  Session("host-b", ["ids"], vni=502, source_ips=[b4.ip])],
        groups=[one_port("ids")],
    )
    return Case("ipv6-outer", "VXLAN over IPv6 (UDP checksum computed, flow label set) from fd00:1::11, "
                "and from fd00:1::12 with a Destination Options extension header", config, packets)


# --- both ends mirrored ---------------------------------------------------------------------------

def dedup_both_ends() -> Case:
    target = aws_target("10.0.0.100")
    a4, a6 = interface("10.0.1.10", "eni-a"), interface("fd00:1::10", "eni-a")
    b4, b6 = interface("10.0.1.11", "eni-b"), interface("fd00:1::11", "eni-b")
    c4 = interface("10.1.5.50", "eni-c")
    m_a = Known(AwsMirror(101, a4.ip, [a4.ip, a6.ip], **target))
    m_b = Known(AwsMirror(104, b4.ip, [b4.ip, b6.ip], **target))
    m_c = Known(AwsMirror(105, c4.ip, [c4.ip], **target))
    templates = [
        Template("http", Ends(a4, b4), ((a4, m_a), (b4, m_b)), server_port=8080, max_body=600),
        Template("echo", Ends(b4, a4), ((b4, m_b), (a4, m_a)), echo_count=2),
        Template("echo", Ends(a6, b6), ((a6, m_a), (b6, m_b)), echo_count=2),
        Template("dns", Ends(a4, c4, hops=1), ((a4, m_a), (c4, m_c))),
        Template("echo", Ends(c4, a4, hops=1), ((c4, m_c), (a4, m_a)), echo_count=2),
    ]
    packets = conversation_packets(templates, seed=21, count=64, stream="both-ends")
    config = Config(
        name="dedup-both-ends",
        comment="Both ends of each connection mirrored, each end by its own session: every packet\n"
                "arrives twice. ids takes part in dedup, raw does not.",
        allowed_sources=["10.0.0.0/8"],
        dedup_window="10s",
        sessions=[Session("a", ["ids", "raw"], vni=101, source_ips=[a4.ip, a6.ip]),
                  Session("b", ["ids", "raw"], vni=104, filter="no-egress-ping", source_ips=[b4.ip, b6.ip]),
                  Session("c", ["ids"], vni=105, source_ips=[c4.ip])],
        filters=[Filter("no-egress-ping", default="accept", rules=[
            Rule(10, "reject", direction="egress", protocol="icmp",
                 description="B's own pings are seen at A anyway")])],
        groups=[one_port("ids"), one_port("raw", slice=64, dedup=False)],
    )
    return Case("dedup-both-ends", "both ends mirrored (VNIs 101/104 on one subnet, 105 across a transit "
                "gateway: TTL one lower at the receiving end): ids receives each packet once, the "
                "first copy its sessions accept; raw (dedup = false, slice 64) every accepted copy; "
                "a copy rejected by B's filter does not count as seen", config, packets)


# --- not tunnelled --------------------------------------------------------------------------------

def _untunneled_input():
    target = aws_target("10.0.0.100")
    web = interface("10.0.1.10", "eni-web")
    vm = interface("10.128.0.5", "gce-vm")
    tunnelled = Known(AwsMirror(101, web.ip, [web.ip], **target))
    plain = Known(Plain([vm.ip]))
    templates = [
        Template("http", Ends(remote("198.51.100.22"), web, hops=11), ((web, tunnelled),), server_port=80,
                 max_body=300),
        Template("http", Ends(remote("198.51.100.23"), vm, hops=11), ((vm, plain),), server_port=80,
                 max_body=300),
        Template("dns", Ends(vm, remote("198.51.100.53"), hops=7), ((vm, plain),)),
        Template("echo", Ends(vm, remote("203.0.113.111"), hops=13), ((vm, plain),), echo_count=2),
    ]
    packets = conversation_packets(templates, seed=22, count=36, stream="untunneled")
    extra = [arp_request("10.128.0.5", "10.128.0.1")]
    return interleave_at(packets, extra, 10), web, vm


def untunneled_drop() -> Case:
    packets, web, _ = _untunneled_input()
    config = Config(
        name="untunneled-drop",
        comment="VXLAN mirror traffic mixed with frames that are not tunnelled; pass_untunneled off.",
        sessions=[Session("web", ["ids"], vni=101, source_ips=[web.ip])],
        groups=[one_port("ids"), one_port("span")],
    )
    config.sessions.append(Session("unused", ["span"], vni=999))
    return Case("untunneled-drop", "AWS VXLAN mixed with a GCP-style VM's own packets (no tunnel) and "
                "an ARP request; pass_untunneled is off: the untunnelled frames are not_tunnel",
                config, packets)


def untunneled_pass() -> Case:
    packets, web, vm = _untunneled_input()
    config = Config(
        name="untunneled-pass",
        comment="The input of untunneled-drop with pass_untunneled: frames that are not tunnelled go\n"
                "to the session \"gce-vm\", whose source_ips give them a direction.",
        pass_untunneled=True,
        untunneled_session="gce-vm",
        sessions=[Session("web", ["ids"], vni=101, source_ips=[web.ip]),
                  Session("gce-vm", ["span"], filter="no-dns", source_ips=[vm.ip])],
        filters=[Filter("no-dns", default="accept", rules=[
            Rule(10, "reject", protocol="udp", src_ports="53", description="DNS answers"),
            Rule(20, "reject", protocol="udp", dst_ports="53", description="DNS queries")])],
        groups=[one_port("ids"), one_port("span")],
    )
    config.sessions.append(Session("unused", ["span"], vni=999))
    return Case("untunneled-pass", "the input of untunneled-drop with pass_untunneled = true and "
                "untunneled_session = \"gce-vm\": the VM's frames (and the ARP request) reach the span "
                "port unchanged, minus DNS, which the session's filter rejects", config, packets)


# --- malformed outer headers and the edges that are not ---------------------------------------------

def malformed() -> Case:
    src, dst = "10.0.1.10", "10.0.0.100"
    packets = []
    number = 0

    def good(frame, inner, flow, note, vni=4242, mirror_src=src, outer=src):
        packets.append(Packet(frame=frame, note=note, outer_src=outer, vni=vni, mirror_src=mirror_src,
                              delivered=inner, full_len=len(inner), flow=flow,
                              identity=("malformed-case", len(packets))))

    def bad(frame, reason, note, outer=src):
        packets.append(Packet(frame=frame, note=f"{note}: malformed", outer_src=outer, malformed=reason))

    def next_probe(**kwargs):
        nonlocal number
        number += 1
        return probe(number, **kwargs)

    def vxlan_udp(inner, vni=4242, flags=0x08):
        header = bytes([flags, 0, 0, 0]) + (vni << 8).to_bytes(4, "big")
        return udp(50000, VXLAN_PORT, header + inner)

    # Edges that are not errors.
    inner, flow = next_probe()
    good(vxlan_frame(src, dst, 0, inner), inner, flow, "vxlan vni 0", vni=0)
    inner, flow = next_probe()
    header = bytes([0x0C, 0xAB, 0xCD, 0xEF]) + ((4242 << 8) | 0x5A).to_bytes(4, "big")
    good(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, VXLAN_PORT, header + inner))), inner, flow,
         "vxlan with reserved bits and reserved bytes set (ignored)")
    inner, flow = next_probe()
    good(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner), options=bytes([1, 1, 1, 0]))),
         inner, flow, "outer IPv4 with 4 bytes of options (IHL 6)")
    inner, flow = next_probe()
    good(vxlan_frame(src, dst, 4242, inner) + bytes(4), inner, flow,
         "4 bytes after the outer IP packet (trailer): cut off")
    inner, flow = next_probe()
    datagram = vxlan_udp(inner) + b"\xee" * 6
    datagram = datagram[:4] + (len(datagram) - 6).to_bytes(2, "big") + datagram[6:]
    good(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, datagram)), inner, flow,
         "UDP length 6 bytes short of the IP payload: the bytes after it are cut off")
    inner, flow = next_probe()
    atomic = bytes([IPPROTO_UDP, 0, 0, 0]) + (0x1234).to_bytes(4, "big")  # offset 0, M clear
    good(outer_ethernet(ipv6("fd00:1::10", "fd00::100", 44, atomic + vxlan_udp(inner)), version=6),
         inner, flow, "outer IPv6 atomic fragment (offset 0, M 0): a whole packet",
         mirror_src="fd00:1::10", outer="fd00:1::10")
    inner, flow = next_probe(src="10.9.9.9")
    innermost = vxlan_l3("10.9.9.9", "10.9.9.1", 4242, inner)
    middle = geneve_frame_l3("10.8.8.8", "10.8.8.1", 8, outer_ethernet(innermost))
    good(vxlan_frame(src, dst, 9, outer_ethernet(middle)), inner, flow,
         "three tunnels: VXLAN 9 / GENEVE 8 / VXLAN 4242 from 10.9.9.9, the mirror source",
         mirror_src="10.9.9.9")
    inner, flow = next_probe()
    customer = outer_ethernet(ipv4("10.0.1.10", "10.0.1.99", IPPROTO_UDP,
                                   udp(41000, VXLAN_PORT, bytes(8) + inner)))
    good(vxlan_frame(src, dst, 4242, customer), customer, Flow("10.0.1.10", "10.0.1.99", 17, 41000, 4789),
         "vxlan carrying a customer's UDP 4789 packet that is no VXLAN (no I flag): delivered as it is")

    # One frame per malformed reason.
    inner, _ = next_probe()
    whole = vxlan_frame(src, dst, 4242, inner)
    bad(whole[:12], "ethernet_truncated", "12-byte frame", outer=None)
    bad(whole[:12] + bytes.fromhex("8100") + b"\x00\x64", "vlan_truncated", "802.1Q tag cut short", outer=None)
    bad(outer_ethernet(vxlan_l3(src, dst, 4242, inner),
                       tags=[(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)]),
        "vlan_too_deep", "three outer VLAN tags", outer=None)
    bad(whole[:14 + 12], "ipv4_truncated", "outer IPv4 header cut at 12 bytes", outer=None)
    ip = vxlan_l3(src, dst, 4242, inner)
    bad(outer_ethernet(bytes([0x75]) + ip[1:]), "ipv4_bad_version", "EtherType IPv4, version 7", outer=None)
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner), version_ihl=0x44)), "ipv4_bad_ihl",
        "outer IPv4 IHL 4", outer=None)
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner), total_len=20 + len(vxlan_udp(inner)) + 40)),
        "ipv4_bad_length", "outer IPv4 total length 40 bytes past the frame", outer=None)
    bad(outer_ethernet(ipv6("fd00:1::10", "fd00::100", IPPROTO_UDP, b"")[:30], version=6), "ipv6_truncated",
        "outer IPv6 header cut at 30 bytes", outer=None)
    v6 = ipv6("fd00:1::10", "fd00::100", IPPROTO_UDP, vxlan_udp(inner), version=5)
    bad(outer_ethernet(v6, version=6), "ipv6_bad_version", "EtherType IPv6, version 5", outer=None)
    payload = vxlan_udp(inner)
    bad(outer_ethernet(ipv6("fd00:1::10", "fd00::100", IPPROTO_UDP, payload, payload_len=len(payload) + 16),
                       version=6), "ipv6_bad_length", "outer IPv6 payload length 16 bytes past the frame",
        outer=None)
    runaway = bytes([IPPROTO_UDP, 200, 1, 4, 0, 0, 0, 0])  # Destination Options claiming 1608 bytes
    bad(outer_ethernet(ipv6("fd00:1::10", "fd00::100", 60, runaway + payload), version=6),
        "ipv6_ext_truncated", "outer IPv6 Destination Options header running past the packet",
        outer="fd00:1::10")
    chain = b"".join(bytes([60 if i < 8 else IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0]) for i in range(9))
    bad(outer_ethernet(ipv6("fd00:1::10", "fd00::100", 60, chain + payload), version=6),
        "ipv6_ext_too_many", "nine outer IPv6 extension headers", outer="fd00:1::10")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner), flags_fragment=0x2000)),
        "outer_fragment", "outer IPv4 first fragment (MF set)")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner)[100:], flags_fragment=0x000D)),
        "outer_fragment", "outer IPv4 later fragment (offset 104)")
    fragment = bytes([IPPROTO_UDP, 0, 0, 1]) + (0x1235).to_bytes(4, "big")  # offset 0, M set
    bad(outer_ethernet(ipv6("fd00:1::10", "fd00::100", 44, fragment + payload), version=6),
        "outer_fragment", "outer IPv6 Fragment header with M set", outer="fd00:1::10")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, b"\xc3\x50\x12")), "udp_truncated",
        "outer UDP header of 3 bytes")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, VXLAN_PORT, payload[8:], length=7))),
        "udp_bad_length", "outer UDP length 7")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, VXLAN_PORT, payload[8:], length=len(payload) + 9))),
        "udp_bad_length", "outer UDP length past the IP payload")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, VXLAN_PORT, b"\x08\x00\x00\x00"))),
        "vxlan_truncated", "VXLAN header of 4 bytes")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, vxlan_udp(inner, flags=0x00))), "vxlan_no_vni",
        "VXLAN flags 0x00 (no I flag)")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, GENEVE_PORT, b"\x00\x00\x65\x58\x00\x10"))),
        "geneve_truncated", "GENEVE header of 6 bytes")
    geneve = bytearray(geneve_header(4242, ETHERTYPE_TRANSPARENT_ETHERNET) + inner)
    geneve[0] |= 0x40  # version 1
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, GENEVE_PORT, bytes(geneve)))),
        "geneve_bad_version", "GENEVE version 1")
    geneve = bytearray(geneve_header(4242, ETHERTYPE_TRANSPARENT_ETHERNET)) + inner[:8]
    geneve[0] = 20  # 80 bytes of options announced, 8 present
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, GENEVE_PORT, bytes(geneve)))),
        "geneve_options_overrun", "GENEVE options of 80 bytes announced, 8 present")
    bad(outer_ethernet(ipv4(src, dst, IPPROTO_UDP, udp(50000, GENEVE_PORT, geneve_header(4242, 0x88B5) + inner))),
        "geneve_unknown_protocol", "GENEVE protocol type 0x88B5")
    nested = inner
    for level in range(4):
        nested = vxlan_frame(f"10.0.{level}.1", dst, 4242, nested)
    bad(nested, "tunnel_too_deep", "four VXLAN tunnels nested", outer="10.0.3.1")
    bad(vxlan_frame(src, dst, 4242, inner[:10]), "inner_too_short", "VXLAN carrying a 10-byte frame")
    bad(vxlan_frame(src, dst, 4242, b""), "inner_too_short", "VXLAN carrying nothing")

    # Good and bad interleaved, so a broken frame never spoils the next one.
    edges = [p for p in packets if p.malformed is None]
    broken = [p for p in packets if p.malformed is not None]
    ordered = interleave_at(broken, edges, 3)
    config = Config(
        name="malformed",
        comment="Outer headers broken one way each, between frames at the edges of what is legal.",
        allowed_sources=["10.0.0.0/8", "fd00::/8"],
        sessions=[Session("edge", ["ids"], vni=0), Session("probe", ["ids"], vni=4242)],
        groups=[one_port("ids")],
    )
    return Case("malformed", "one frame per malformed reason (and two outer fragments, two bad UDP "
                "lengths, two short inner frames) between legal edge cases: VNI 0, VXLAN reserved bits "
                "set, outer IPv4 options, an outer trailer, a UDP length shorter than the IP payload, "
                "an IPv6 atomic fragment, three nested tunnels, and a customer's packet to UDP 4789 that "
                "is no VXLAN", config, ordered)


def geneve_frame_l3(src: str, dst: str, vni: int, inner: bytes) -> bytes:
    """IP/UDP/GENEVE (Ethernet, no options) around the frame `inner`, from the IP header on."""
    return ipv4(src, dst, IPPROTO_UDP,
                udp(50000, GENEVE_PORT, geneve_header(vni, ETHERTYPE_TRANSPARENT_ETHERNET) + inner))


CASES = [aws_vxlan, gwlb, azure, geneve_options, geneve_bare_ip, ipv6_outer, dedup_both_ends, truncated,
         outer_qinq, unknown_vni, unknown_vni_default, allowlist, untunneled_drop, untunneled_pass, malformed]
