"""Input frames and what their builder knows about them.

A `Packet` is one frame of a case's input together with the facts the expectation needs, all
known by construction: the outermost IP source (what the allowlist checks), the VNI and mirror
source of the innermost tunnel, the frame the broker must hand on (the inner frame, cut where the
mirror source cut it; for bare IP from GENEVE behind the broker's fixed Ethernet header; the
frame itself when it is not tunnelled), the inner flow, and which packet it is a copy of when
both ends of a connection are mirrored. A frame broken on purpose carries the malformed reason
its builder broke it for, and nothing else.

Conversation traffic comes from mirrorgen's scenario (`mirrored_packets`) through `Known`, a
wrapper around any mirrorgen mirror that records, for each packet it encapsulates, the frame the
broker must deliver. Everything else is built here field by field with `struct`, like mirrorgen's
`tunnels` module.
"""

import ipaddress
import random
import struct
from dataclasses import dataclass
from typing import Callable, Optional

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from mirror.azure import AzureVtap
from mirror.net import flow_source_port
from mirror.scenario import mirrored_packets
from mirror.tunnels import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    VXLAN_PORT,
    Mirrored,
    SessionInfo,
    Underlay,
    describe_mirrored,
    ethernet,
    ethernet_header,
    internet_checksum,
    mac_bytes,
    outer_five_tuple,
    udp_datagram,
    vxlan_header,
)

# The Ethernet header the broker writes in front of a bare IP packet from GENEVE (documented in
# pipelines/src/stage/decap.rs): destination 02:00:00:00:00:02, source 02:00:00:00:00:01.
SYNTHETIC_DESTINATION = "02:00:00:00:00:02"
SYNTHETIC_SOURCE = "02:00:00:00:00:01"

PROTO_TCP, PROTO_UDP = 6, 17

TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8


@dataclass(frozen=True)
class Flow:
    """The inner packet's addresses, IP protocol and (TCP/UDP only) ports, directional."""

    src: str
    dst: str
    proto: int
    sport: int = 0
    dport: int = 0

    @property
    def has_ports(self) -> bool:
        return self.proto in (PROTO_TCP, PROTO_UDP)

    def __str__(self) -> str:
        names = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
        proto = names.get(self.proto, f"proto {self.proto}")
        if self.has_ports:
            return f"{proto} {self.src}:{self.sport} > {self.dst}:{self.dport}"
        return f"{proto} {self.src} > {self.dst}"


@dataclass
class Packet:
    """One input frame (see the module documentation)."""

    frame: bytes
    note: str
    # Source of the outermost IP header, None when the frame is not IP.
    outer_src: Optional[str] = None
    # Set on frames broken on purpose: the reason label the broker must count.
    malformed: Optional[str] = None
    # The innermost tunnel's VNI; None when the frame is not a tunnel.
    vni: Optional[int] = None
    mirror_src: Optional[str] = None
    # The frame a tool port receives (before the tool group's slicing), and its length before the
    # mirror source cut it (equal when it did not).
    delivered: Optional[bytes] = None
    full_len: int = 0
    # The delivered frame's IP flow; None for a non-IP frame.
    flow: Optional[Flow] = None
    # Equal for the mirrored copies of one packet, distinct otherwise.
    identity: object = None

    @property
    def truncated_by_source(self) -> bool:
        return self.delivered is not None and len(self.delivered) < self.full_len


# --- conversation traffic through mirrorgen's mirrors ---------------------------------------------

def whole(view):
    """The broker delivers the mirrored frame as it is."""
    return view.frame, len(view.frame)


def cut_to(length: Optional[int]):
    """AWS packet length: the first `length` bytes of the frame; the full length is remembered."""
    def delivered(view):
        return view.frame[:length] if length else view.frame, len(view.frame)
    return delivered


def behind_synthetic_ethernet(view):
    """Bare IP from GENEVE: the broker puts its fixed Ethernet header in front of the IP packet."""
    ethertype = ETHERTYPE_IPV4 if view.ip_version == 4 else ETHERTYPE_IPV6
    header = ethernet_header(SYNTHETIC_DESTINATION, SYNTHETIC_SOURCE, ethertype)
    return header + view.l3, len(header) + len(view.l3)


class Known:
    """A mirrorgen mirror that also records what the broker must deliver for each packet."""

    def __init__(self, mirror, delivered: Callable = whole):
        self.mirror = mirror
        self.delivered = delivered

    def session_info(self):
        return self.mirror.session_info()

    def encapsulate(self, view) -> Mirrored:
        mirrored = self.mirror.encapsulate(view)
        frame, full_len = self.delivered(view)
        mirrored.describe["_delivered"] = frame
        mirrored.describe["_full_len"] = full_len
        return mirrored


class OuterTags:
    """A mirror whose packets cross 802.1Q / 802.1ad tagged links before the broker: the outer
    Ethernet header gains `tags` ((TPID, VLAN id) pairs, outermost first)."""

    def __init__(self, mirror, tags):
        self.mirror = mirror
        self.tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)

    def session_info(self):
        return self.mirror.session_info()

    def encapsulate(self, view) -> Mirrored:
        mirrored = self.mirror.encapsulate(view)
        mirrored.frame = mirrored.frame[:12] + self.tags + mirrored.frame[12:]
        mirrored.describe["outer_tags"] = len(self.tags) // 4
        return mirrored


class Plain:
    """No mirror at all: the interface's own frames reach the broker as they are (GCP Packet
    Mirroring delivers the original packets to a load balancer's backends; a SPAN port too)."""

    encap = "none"

    def __init__(self, addresses):
        self.addresses = list(addresses)

    def session_info(self):
        return SessionInfo(encap=self.encap, vni=0, mirror_sources=self.addresses[:1],
                           source_ips=self.addresses)

    def encapsulate(self, view) -> Mirrored:
        describe = describe_mirrored(self.encap, None, None, len(view.frame), len(view.frame))
        return Mirrored(frame=view.frame, outer_flow=view.flow, describe=describe)


class AzureVtapOnPort(AzureVtap):
    """An Azure virtual network TAP whose destination port is not 4789 (the TAP resource's
    `destinationPort`), e.g. 8472, the Linux kernel's historical VXLAN port."""

    def __init__(self, port: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.port = port

    def encapsulate(self, view) -> Mirrored:
        sport = flow_source_port(*view.flow)
        ip_id, self.next_ip_id = self.next_ip_id, (self.next_ip_id + 1) & 0xFFFF
        l3 = udp_datagram(self.underlay, sport, self.port, vxlan_header(self.vni) + view.frame,
                          ip_id=ip_id)
        describe = describe_mirrored(self.encap, self.vni, self.host_ip, len(view.frame),
                                     len(view.frame), vxlan_port=self.port)
        return Mirrored(frame=ethernet(self.underlay, l3),
                        outer_flow=outer_five_tuple(self.underlay, sport, self.port),
                        describe=describe)


def conversation_packets(templates, seed: int, count: int, stream: str):
    """`count` mirrored packets of `templates` (mirrorgen's scheduler), as `Packet`s. Every mirror
    in the templates must be a `Known`, possibly wrapped by `OuterTags`."""
    packets = []
    for record in mirrored_packets(templates, random.Random(seed), count):
        d = record.describe
        proto = d["inner_proto"]
        flow = Flow(d["inner_src"], d["inner_dst"], proto,
                    d["inner_sport"] if proto in (PROTO_TCP, PROTO_UDP) else 0,
                    d["inner_dport"] if proto in (PROTO_TCP, PROTO_UDP) else 0)
        first = record.copy_of if record.copy_of is not None else record.index
        copy = " (second copy)" if record.copy_of is not None else ""
        cut = f", cut to {len(d['_delivered'])} of {d['_full_len']}" if d["_full_len"] > len(d["_delivered"]) else ""
        what = f"{flow} {d['kind']}/{d['app']} {d['direction']}{copy}{cut}"
        if d["encap"] == "none":
            note = f"not tunnelled: {what}"
        else:
            note = f"{d['encap']} vni {d['vni']} from {d['mirror_src']}: {what}"
        packets.append(Packet(
            frame=record.frame, note=note, outer_src=record.outer_flow[0], vni=d["vni"],
            mirror_src=d["mirror_src"], delivered=d["_delivered"], full_len=d["_full_len"],
            flow=flow, identity=(stream, first)))
    return packets


# --- single frames --------------------------------------------------------------------------------

def probe(number: int, src: str = "10.0.1.10", dst: str = "198.51.100.7", vlan: Optional[int] = None):
    """A small inner frame (UDP to the discard port) and its flow: the payload of hand-built
    tunnels. `number` makes every probe distinct."""
    sport = 40000 + number
    l3 = bytes(IP(src=src, dst=dst, id=number, ttl=64, flags="DF") / UDP(sport=sport, dport=9)
               / Raw(f"conformance probe {number}".encode()))
    frame = ethernet_header("02:00:00:00:0a:01", "02:00:00:00:0a:02", ETHERTYPE_IPV4, vlan) + l3
    return frame, Flow(src, dst, PROTO_UDP, sport, 9)


def vxlan_l3(src: str, dst: str, vni: int, inner: bytes, dport: int = VXLAN_PORT,
             flags: int = 0x08) -> bytes:
    """IP/UDP/VXLAN around `inner` (a frame), from the IP header on; `flags` other than the I
    flag alone make a bad header."""
    underlay = Underlay(src_ip=src, dst_ip=dst, src_mac="02:00:00:00:0b:01", dst_mac="02:00:00:00:0b:02")
    header = bytes([flags]) + vxlan_header(vni)[1:]
    return udp_datagram(underlay, 50000 + (vni & 0xFFF), dport, header + inner)


def outer_ethernet(l3: bytes, version: int = 4, tags=()) -> bytes:
    """The last hop's Ethernet header (router → broker) in front of `l3`."""
    ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6
    header = mac_bytes("02:00:00:00:0b:02") + mac_bytes("02:00:00:00:0b:01")
    header += b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)
    return header + struct.pack("!H", ethertype) + l3


def vxlan_frame(src: str, dst: str, vni: int, inner: bytes, **kwargs) -> bytes:
    return outer_ethernet(vxlan_l3(src, dst, vni, inner, **kwargs))


def ipv4(src: str, dst: str, protocol: int, payload: bytes, ttl: int = 64, ident: int = 0,
         flags_fragment: int = 0x4000, options: bytes = b"", total_len: Optional[int] = None,
         version_ihl: Optional[int] = None) -> bytes:
    """An IPv4 header (with a correct checksum) and `payload`; every field can be bent."""
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", version_ihl if version_ihl is not None else 0x40 | ihl, 0,
                         total_len if total_len is not None else 4 * ihl + len(payload), ident,
                         flags_fragment, ttl, protocol, 0, ipaddress.IPv4Address(src).packed,
                         ipaddress.IPv4Address(dst).packed) + options
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + payload


def udp(sport: int, dport: int, payload: bytes, length: Optional[int] = None) -> bytes:
    """A UDP header with checksum 0 (allowed over IPv4), its length bendable."""
    return struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(payload), 0) + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, payload_len: Optional[int] = None,
         version: int = 6, hop_limit: int = 64) -> bytes:
    """An IPv6 header and `payload`, its payload length and version bendable."""
    fixed = struct.pack("!IHBB", version << 28, payload_len if payload_len is not None else len(payload),
                        next_header, hop_limit)
    return fixed + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload


def arp_request(sender_ip: str, target_ip: str) -> Packet:
    """An ARP request: not IP, so neither allowlisted nor filtered by address; no flow."""
    frame = bytes(Ether(src="42:01:0a:80:00:05", dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=1, hwsrc="42:01:0a:80:00:05", psrc=sender_ip, pdst=target_ip))
    return Packet(frame=frame, note=f"not tunnelled: ARP who-has {target_ip} tell {sender_ip}",
                  delivered=frame, full_len=len(frame), identity=("plain", frame))

