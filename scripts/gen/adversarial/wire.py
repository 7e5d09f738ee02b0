"""Header builders that will write any value, lies included.

Every field can be overridden (a length, a version, a flag byte) so that the catalogue can build a
header that lies in exactly one way and is right in every other. Built with `struct`, byte by byte
from the RFCs named at each function; nothing here validates, on purpose.
"""

import ipaddress
import struct

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_QINQ_LEGACY = 0x9100
ETHERTYPE_TRANSPARENT_ETHERNET = 0x6558
ETHERTYPE_LLDP = 0x88CC
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_LOCAL_EXPERIMENTAL = 0x88B5

IPPROTO_HOP_BY_HOP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_NO_NEXT_HEADER = 59
IPPROTO_DESTINATION_OPTIONS = 60

VXLAN_PORT = 4789
GENEVE_PORT = 6081

# Outer MACs of the mirror traffic (a router towards the broker's NIC) and of the customers' frames.
OUTER_DST_MAC = bytes.fromhex("0a0000000064")
OUTER_SRC_MAC = bytes.fromhex("0a0000000001")
INNER_DST_MAC = bytes.fromhex("02000000000b")
INNER_SRC_MAC = bytes.fromhex("02000000000a")


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def internet_checksum(data: bytes) -> int:
    """RFC 1071."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(payload: bytes, ethertype=ETHERTYPE_IPV4, tags=(), dst=OUTER_DST_MAC, src=OUTER_SRC_MAC) -> bytes:
    """Destination, source, each (tag protocol id, VLAN id) of `tags` outermost first, EtherType."""
    header = dst + src
    for tpid, vlan in tags:
        header += struct.pack("!HH", tpid, vlan)
    return header + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, protocol: int, payload: bytes, *, options=b"", ihl=None, total_len=None,
         version=4, flags_fragment=0x4000, ident=0x1234, ttl=64, checksum=None) -> bytes:
    """RFC 791. `ihl` (words) and `total_len` default to the truth; `checksum` to the right one."""
    header_len = 20 + len(options)
    ihl = header_len // 4 if ihl is None else ihl
    total_len = header_len + len(payload) if total_len is None else total_len
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total_len & 0xFFFF, ident,
                         flags_fragment, ttl, protocol, 0, ip4(src), ip4(dst)) + options
    if checksum is None:
        checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, *, payload_len=None, version=6,
         hop_limit=64) -> bytes:
    """RFC 8200 fixed header; `payload` includes any extension headers."""
    payload_len = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", version << 28, payload_len, next_header, hop_limit, ip6(src),
                       ip6(dst)) + payload


def options_header(next_header: int, options: bytes) -> bytes:
    """Hop-by-Hop or Destination Options (RFC 8200 4.3/4.6), padded to 8n bytes with PadN/Pad1."""
    body = options
    room = (-(2 + len(body))) % 8
    if room == 1:
        body += b"\x00"  # Pad1
    elif room > 1:
        body += bytes([1, room - 2]) + bytes(room - 2)  # PadN
    length = (2 + len(body)) // 8 - 1
    return bytes([next_header, length]) + body


def routing_header(next_header: int) -> bytes:
    """RFC 8200 4.4, routing type 4 (segment routing) with no segment left: 8 bytes."""
    return bytes([next_header, 0, 4, 0, 0, 0, 0, 0])


def fragment_header(next_header: int, offset: int, more: bool, ident=0xCAFE) -> bytes:
    """RFC 8200 4.5: offset in bytes (a multiple of 8), M flag."""
    return struct.pack("!BBHI", next_header, 0, (offset & 0xFFF8) | int(more), ident)


def authentication_header(next_header: int) -> bytes:
    """RFC 4302: 12 bytes (Payload Len 1 = 3 words - 2), SPI 0x100, sequence 7, no ICV."""
    return struct.pack("!BBHII", next_header, 1, 0, 0x100, 7)


def udp(sport: int, dport: int, payload: bytes, *, length=None, checksum=0) -> bytes:
    """RFC 768; checksum 0 ("no checksum") unless told."""
    length = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, length & 0xFFFF, checksum) + payload


def tcp(sport: int, dport: int, payload: bytes) -> bytes:
    """A 20-byte TCP header (ACK|PSH), checksum not computed: only its protocol number matters."""
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x18, 0xFFFF, 0, 0) + payload


def vxlan(vni: int, payload: bytes, *, flags=0x08, reserved1=b"\x00\x00\x00", reserved2=0) -> bytes:
    """RFC 7348 5: flags (I = 0x08), 24 reserved bits, VNI, 8 reserved bits."""
    return bytes([flags]) + reserved1 + struct.pack("!I", ((vni & 0xFFFFFF) << 8) | reserved2) + payload


def geneve(vni: int, payload: bytes, *, protocol=ETHERTYPE_TRANSPARENT_ETHERNET, options=b"", version=0,
           opt_len=None, flags=0) -> bytes:
    """RFC 8926 3.4: Ver(2) OptLen(6) O C Rsvd(6) Protocol, VNI, Reserved, options."""
    opt_len = len(options) // 4 if opt_len is None else opt_len
    return struct.pack("!BBHI", (version << 6) | (opt_len & 0x3F), flags, protocol, (vni & 0xFFFFFF) << 8) \
        + options + payload


def geneve_option(option_class: int, option_type: int, data: bytes) -> bytes:
    """One TLV: class, type, 3 reserved bits and the length of `data` in 4-byte words."""
    assert len(data) % 4 == 0 and len(data) <= 124
    return struct.pack("!HBB", option_class, option_type, len(data) // 4) + data
