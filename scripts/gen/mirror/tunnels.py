"""Tunnel headers and outer (underlay) packets, shared by the cloud formats.

Everything outside the mirrored frame is built here with `struct`, field by field from the RFCs:
Ethernet, IPv4 (RFC 791), IPv6 (RFC 8200) with an optional Destination Options header, UDP (RFC 768)
and the VXLAN and GENEVE headers. Not with scapy's layers: scapy 2.5's VXLAN sets the GPE "next
protocol" flag when an Ethernet frame is stacked on it, its GENEVE loses bit 4 of the option length,
and building plain headers by hand is much faster. The self-test checks every checksum
with tshark.
"""

import ipaddress
import struct
from dataclasses import dataclass
from typing import Optional

from .net import ip_version

VXLAN_PORT = 4789  # RFC 7348 section 5, IANA
GENEVE_PORT = 6081  # RFC 8926 section 3.3, IANA

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_TRANSPARENT_ETHERNET = 0x6558  # GENEVE carrying an Ethernet frame (RFC 8926 3.4)

ETHERTYPE_VLAN = 0x8100
IPPROTO_UDP = 17
IPV6_DESTINATION_OPTIONS = 60

UNDERLAY_TTL = 64


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ethernet_header(dst_mac: str, src_mac: str, ethertype: int, vlan: Optional[int] = None) -> bytes:
    """Destination, source, then the EtherType, or an 802.1Q tag (priority 0, VLAN id) and then it."""
    addresses = mac_bytes(dst_mac) + mac_bytes(src_mac)
    if vlan is None:
        return addresses + struct.pack("!H", ethertype)
    if not 0 <= vlan <= 0xFFF:
        raise ValueError(f"VLAN id {vlan} does not fit in 12 bits")
    return addresses + struct.pack("!HHH", ETHERTYPE_VLAN, vlan, ethertype)


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header(src: str, dst: str, protocol: int, payload_len: int, ttl: int, ident: int) -> bytes:
    """20 bytes, no options, DSCP/ECN 0, DF set (mirror packets are not fragmented on the way)."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, 0x4000, ttl, protocol, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]


def vxlan_header(vni: int) -> bytes:
    """RFC 7348 section 5: flags with only the I bit (0x08) set, 24 reserved bits, the 24-bit VNI,
    8 reserved bits. "The I flag MUST be set to 1 for a valid VXLAN Network ID (VNI)."""
    if not 0 <= vni <= 0xFFFFFF:
        raise ValueError(f"VNI {vni} does not fit in 24 bits")
    return struct.pack("!B3xI", 0x08, vni << 8)


@dataclass(frozen=True)
class GeneveOption:
    """One GENEVE TLV (RFC 8926 section 3.5): class, type (bit 7 = critical), data in 4-byte words."""

    option_class: int
    option_type: int
    data: bytes = b""

    def encode(self) -> bytes:
        words, remainder = divmod(len(self.data), 4)
        if remainder or words > 31:
            raise ValueError("GENEVE option data is a multiple of 4 bytes, at most 124")
        return struct.pack("!HBB", self.option_class, self.option_type, words) + self.data

    @property
    def critical(self) -> bool:
        return bool(self.option_type & 0x80)


def geneve_header(vni: int, protocol: int, options=()) -> bytes:
    """RFC 8926 section 3.4: version 0, option length in 4-byte words, O (control) clear, C set when a
    critical option is present, protocol type (an EtherType), VNI, then the options."""
    encoded = b"".join(option.encode() for option in options)
    words = len(encoded) // 4
    if words > 63:
        raise ValueError("GENEVE options are at most 252 bytes")
    if not 0 <= vni <= 0xFFFFFF:
        raise ValueError(f"VNI {vni} does not fit in 24 bits")
    critical = any(option.critical for option in options)
    return struct.pack("!BBHI", words, 0x40 if critical else 0, protocol, vni << 8) + encoded


@dataclass(frozen=True)
class Underlay:
    """The outer addresses between a tunnel's sender and receiver."""

    src_ip: str
    dst_ip: str
    # Ethernet of the last hop: the receiver's subnet router → the receiver.
    src_mac: str
    dst_mac: str
    # IPv6 only: add a Destination Options header (RFC 8200 4.6) before UDP. It carries a Tunnel
    # Encapsulation Limit option (RFC 2473 4.1.1), the option tunnel endpoints actually send.
    destination_options: bool = False
    ttl: int = UNDERLAY_TTL

    @property
    def version(self) -> int:
        return ip_version(self.src_ip)


def udp_datagram(underlay: Underlay, sport: int, dport: int, payload: bytes,
                 ip_id: int = 0, flow_label: int = 0) -> bytes:
    """The outer IP + UDP around `payload`, from the IP header on.

    Over IPv4 the UDP checksum is zero, as RFC 7348 section 5 ("SHOULD be transmitted as zero") and
    RFC 8926 section 3.3 allow. Over IPv6 it is computed: a zero checksum is allowed there only with
    the care of RFC 6935/6936, and senders we model do compute it."""
    udp_len = 8 + len(payload)
    if underlay.version == 4:
        udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
        return ipv4_header(underlay.src_ip, underlay.dst_ip, IPPROTO_UDP, len(udp), underlay.ttl,
                           ip_id) + udp
    src = ipaddress.IPv6Address(underlay.src_ip).packed
    dst = ipaddress.IPv6Address(underlay.dst_ip).packed
    # RFC 8200 8.1: the pseudo-header holds the final destination, the upper-layer length and the
    # upper-layer protocol, whatever extension headers come between.
    pseudo_header = src + dst + struct.pack("!IxxxB", udp_len, IPPROTO_UDP)
    checksum = internet_checksum(pseudo_header + struct.pack("!HHHH", sport, dport, udp_len, 0) + payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, checksum or 0xFFFF) + payload
    extension, next_header = b"", IPPROTO_UDP
    if underlay.destination_options:
        # Next header UDP, length 0 (8 bytes in all); Tunnel Encapsulation Limit option (type 4,
        # length 1, limit 4), then a PadN option of one byte (type 1, length 1, 0).
        extension = struct.pack("!BB", IPPROTO_UDP, 0) + bytes([4, 1, 4, 1, 1, 0])
        next_header = IPV6_DESTINATION_OPTIONS
    fixed = struct.pack("!IHBB", (6 << 28) | (flow_label & 0xFFFFF), len(extension) + udp_len,
                        next_header, underlay.ttl)
    return fixed + src + dst + extension + udp


def ethernet(underlay: Underlay, l3: bytes) -> bytes:
    ethertype = ETHERTYPE_IPV4 if underlay.version == 4 else ETHERTYPE_IPV6
    return ethernet_header(underlay.dst_mac, underlay.src_mac, ethertype) + l3


def outer_five_tuple(underlay: Underlay, sport: int, dport: int) -> tuple:
    return (underlay.src_ip, underlay.dst_ip, IPPROTO_UDP, sport, dport)


@dataclass
class Mirrored:
    """One mirrored packet as it reaches the broker, and what the sidecar says about it."""

    frame: bytes
    # The outer 5-tuple a NIC's RSS would hash: (src, dst, 17, sport, dport).
    outer_flow: tuple
    describe: dict


@dataclass
class SessionInfo:
    """What a broker config needs to know about one mirror session (the sidecar's `sessions`)."""

    encap: str
    vni: int
    # Outer source addresses of the session's mirrored packets (the broker's mirror source).
    mirror_sources: list
    # The mirrored interfaces' own addresses: they give inner packets a direction.
    source_ips: list
    truncate: Optional[int] = None
    note: str = ""


def truncate_frame(frame: bytes, packet_length: Optional[int]) -> bytes:
    """The frame cut to `packet_length` bytes when it is longer (headers untouched: an IPv4 total
    length or IPv6 payload length still states the full size)."""
    return frame if packet_length is None else frame[:packet_length]


def describe_mirrored(encap: str, vni: int, mirror_src: str, inner_len: int, captured_inner_len: int,
                      **format_specific) -> dict:
    """The sidecar fields every format fills. `inner_len` is the length of what the mirror carries
    (the frame, or the IP packet for bare-IP GENEVE) before any truncation."""
    return dict(encap=encap, vni=vni, mirror_src=mirror_src, inner_len=inner_len,
                captured_inner_len=captured_inner_len, truncated=captured_inner_len < inner_len,
                **format_specific)
