"""What the network lab's Python tools share: reading a pcap, taking mirrored frames apart, and
the symmetric flow key of an inner frame.

Standard library only (no scapy): the tools run inside network namespaces with Debian's
/usr/bin/python3, and every header is parsed here from its RFC, independently of the broker.
"""

import struct

ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ_LEGACY = 0x9100
ETH_P_IPV4 = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_TEB = 0x6558  # transparent Ethernet bridging (GENEVE, L2GRE)
VXLAN_PORT = 4789
GENEVE_PORT = 6081
# IPv6 extension headers walked to reach the upper layer (RFC 8200 §4): hop-by-hop, routing,
# fragment, destination options.
IPV6_EXTENSIONS = {0, 43, 44, 60}


def read_pcap(path):
    """The frames of a classic pcap file (either byte order, micro- or nanosecond), in order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file (too short)")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file (pcapng? convert it with editcap -F pcap)")
    frames = []
    offset = 24
    while offset + 16 <= len(data):
        _, _, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        frames.append(data[offset : offset + captured])
        offset += captured
    return frames


def l3_of(frame):
    """(ethertype, offset of the layer after Ethernet and its VLAN tags), or None."""
    if len(frame) < 14:
        return None
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_LEGACY):
        offset += 4
        if offset + 2 > len(frame):
            return None
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    return ethertype, offset + 2


def ip_of(frame):
    """(source, destination, protocol, offset of the upper layer) of an Ethernet frame's IP
    packet, addresses as bytes; None when it is not IP."""
    l3 = l3_of(frame)
    if l3 is None:
        return None
    ethertype, offset = l3
    if ethertype == ETH_P_IPV4 and len(frame) >= offset + 20:
        ihl = (frame[offset] & 0x0F) * 4
        fragment = struct.unpack_from("!H", frame, offset + 6)[0] & 0x3FFF
        protocol = frame[offset + 9] if fragment == 0 else None
        return frame[offset + 12 : offset + 16], frame[offset + 16 : offset + 20], protocol, offset + ihl
    if ethertype == ETH_P_IPV6 and len(frame) >= offset + 40:
        source, destination = frame[offset + 8 : offset + 24], frame[offset + 24 : offset + 40]
        protocol, at = frame[offset + 6], offset + 40
        while protocol in IPV6_EXTENSIONS and at + 8 <= len(frame):
            if protocol == 44:  # a fragment: no ports to read
                return source, destination, None, at + 8
            protocol, at = frame[at], at + (frame[at + 1] + 1) * 8
        return source, destination, protocol, at
    return None


def flow_key(frame):
    """The symmetric flow key of an Ethernet frame: both directions of a connection give the same
    key (addresses and ports ordered); None for a frame that is not IP."""
    ip = ip_of(frame)
    if ip is None:
        return None
    source, destination, protocol, at = ip
    ports = (0, 0)
    if protocol in (6, 17) and at + 4 <= len(frame):
        ports = struct.unpack_from("!HH", frame, at)
    ends = sorted([(source, ports[0]), (destination, ports[1])])
    return (protocol or 0, ends[0], ends[1])


def mirrored(frame):
    """(VNI, inner frame, outer UDP source port) of a mirrored frame: VXLAN, or GENEVE carrying
    Ethernet, over IPv4 or IPv6 under any VLAN tags. The outermost tunnel only. None otherwise."""
    ip = ip_of(frame)
    if ip is None or ip[2] != 17:
        return None
    at = ip[3]
    if at + 8 > len(frame):
        return None
    source_port, destination_port = struct.unpack_from("!HH", frame, at)
    payload = frame[at + 8 :]
    if destination_port == VXLAN_PORT and len(payload) >= 8 and payload[0] & 0x08:
        return int.from_bytes(payload[4:7], "big"), payload[8:], source_port
    if destination_port == GENEVE_PORT and len(payload) >= 8:
        options = (payload[0] & 0x3F) * 4
        protocol = struct.unpack_from("!H", payload, 2)[0]
        if protocol == ETH_P_TEB and len(payload) >= 8 + options:
            return int.from_bytes(payload[4:7], "big"), payload[8 + options :], source_port
    return None


def vxlan_header(vni):
    """RFC 7348 §5: flags with only the I bit (0x08), every reserved bit zero, the 24-bit VNI."""
    return struct.pack("!B3xI", 0x08, vni << 8)
