"""The catalogue of hostile packets, each with the outcome the broker's documentation promises.

Every expectation is decided from the documentation of `pipelines/src/stage/decap.rs` (module docs:
what is malformed, what is delivered, in which order the checks run), the `Reason` list of
`pipelines/src/outcome.rs` and the wire modules' docs, never from running the broker. `doc` says
which sentence decides. Where the documentation is silent or ambiguous, `doc` starts with
"SILENT:" or "AMBIGUOUS:" and names the reading taken.

The broker configuration the expectations assume (the sidecar repeats it):
* `decap.allowed_sources = ["10.0.0.0/8", "fd00::/8"]`, VXLAN on 4789, GENEVE on 6081, no untunneled
  session, no default session;
* sessions for VNIs 100, 200, 300, 0 and 0xFFFFFF; VNIs 4242 and 0xABCDE have none.

Each packet carries a customer frame with a unique payload ("hostile <kind> <n>"), so the frame a
tool port receives can be matched to the packet it came from.
"""

import struct
from dataclasses import dataclass, field
from typing import Optional

from .wire import (
    ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_LLDP, ETHERTYPE_LOCAL_EXPERIMENTAL,
    ETHERTYPE_MPLS, ETHERTYPE_QINQ, ETHERTYPE_QINQ_LEGACY, ETHERTYPE_VLAN, GENEVE_PORT, INNER_DST_MAC,
    INNER_SRC_MAC, IPPROTO_AH, IPPROTO_DESTINATION_OPTIONS, IPPROTO_ESP, IPPROTO_FRAGMENT,
    IPPROTO_HOP_BY_HOP, IPPROTO_ICMP, IPPROTO_NO_NEXT_HEADER, IPPROTO_ROUTING, IPPROTO_TCP, IPPROTO_UDP,
    VXLAN_PORT, authentication_header, ethernet, fragment_header, geneve, geneve_option, ipv4, ipv6,
    options_header, routing_header, tcp, udp, vxlan,
)

ALLOWED_SOURCES = ["10.0.0.0/8", "fd00::/8"]
SESSIONS = [("main", 100), ("geneve", 200), ("gwlb", 300), ("vni-zero", 0), ("vni-max", 0xFFFFFF)]
UNKNOWN_VNI = 4242
UNKNOWN_VNI_2 = 0xABCDE

SENDER = "10.1.0.1"  # an allowed mirror source (an ENI)
SENDER_2 = "10.1.0.2"
GWLB = "10.30.255.5"  # allowed: a load balancer wrapping the mirror packets again
TARGET = "10.0.0.100"  # the broker
SENDER6 = "fd00:1::1"
TARGET6 = "fd00::100"
SPOOFED = "192.0.2.66"  # outside the allowlist (TEST-NET-1)
SPOOFED6 = "2001:db8::66"
MAPPED6 = "::ffff:10.1.0.1"  # an allowed IPv4 address, IPv4-mapped: matches IPv6 CIDRs only
CUSTOMER_SRC = "192.168.10.1"
CUSTOMER_DST = "192.168.20.2"

SOURCE_PORT = 49152
JUMBO_FRAME = 9000

SYNTHETIC_DESTINATION = bytes.fromhex("020000000002")
SYNTHETIC_SOURCE = bytes.fromhex("020000000001")

DOC_LENGTHS = "decap: a header that lies about its length or is cut short is malformed (Reason list)"
DOC_DELIVERED = "decap: on success the packet starts at the innermost Ethernet frame and ends where it ends"
DOC_UNTUNNELED = "decap: a frame that is not a tunnel (non-IP, non-UDP, UDP to another port) is NotTunnel"
DOC_CHECKSUMS = "decap: checksums are not verified (outer IPv4 header, outer UDP; UDP checksum 0 accepted)"
DOC_TRUST = ("decap: the outermost IP source is checked against allowed_sources as soon as the outer IP "
             "header is well-formed, before any byte after it is interpreted")
DOC_INNER_LAYER = ("decap: an inner layer that looks like a tunnel but does not parse as one is the customer's "
                   "mirrored packet, delivered as the innermost frame")
DOC_DEPTH = "decap: more than MAX_TUNNEL_DEPTH (3) tunnels is tunnel_too_deep"
DOC_INNER_SHORT = "decap: a tunnel carrying an empty frame or one shorter than Ethernet is inner_too_short"
DOC_SESSION = "pipeline: the innermost tunnel's VNI selects the session; a VNI of no session is unknown_session"
DOC_OPTIONS = ("SILENT: decap and wire::ipv4 skip IPv4 options as IHL bytes and never read them; no Reason "
               "concerns options, so any option bytes inside a well-formed IHL are delivered")


@dataclass
class Packet:
    kind: str
    what: str
    frame: bytes
    outcome: str  # delivered, source_denied, not_tunnel, unknown_session, malformed
    doc: str
    reason: Optional[str] = None
    delivered: Optional[dict] = None


@dataclass
class Catalogue:
    packets: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)

    # --- customer frames ---------------------------------------------------------------------------

    def tag(self, kind: str) -> bytes:
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        return f"hostile {kind} {n}".encode()

    def customer(self, kind: str, size=None) -> bytes:
        """Ethernet/IPv4/UDP 40000→9999 with a unique payload, padded to `size` bytes if given."""
        payload = self.tag(kind)
        if size is not None:
            fill = size - (14 + 20 + 8) - len(payload)
            payload += bytes((i * 7 + 3) & 0xFF for i in range(fill))
        return ethernet(ipv4(CUSTOMER_SRC, CUSTOMER_DST, IPPROTO_UDP, udp(40000, 9999, payload)),
                        dst=INNER_DST_MAC, src=INNER_SRC_MAC)

    def customer_ip(self, kind: str) -> bytes:
        """A bare IPv4/UDP packet (for GENEVE protocol type 0x0800)."""
        return ipv4(CUSTOMER_SRC, CUSTOMER_DST, IPPROTO_UDP, udp(40000, 9999, self.tag(kind)))

    def customer_ip6(self, kind: str) -> bytes:
        return ipv6("fd99::1", "fd99::2", IPPROTO_UDP, udp(40000, 9999, self.tag(kind)))

    # --- recording ---------------------------------------------------------------------------------

    def add(self, kind, what, frame, outcome, doc, reason=None):
        assert outcome != "delivered"
        assert (outcome == "malformed") == (reason is not None)
        self.packets.append(Packet(kind, what, frame, outcome, doc, reason))

    def malformed(self, kind, what, frame, reason, doc=DOC_LENGTHS):
        self.add(kind, what, frame, "malformed", doc, reason)

    def delivers(self, kind, what, frame, inner, vni, mirror_source, depth, doc=DOC_DELIVERED,
                 synthetic_ethertype=None, at_end=False):
        """`inner` is what the tool receives (for bare IP: what follows the synthetic Ethernet header);
        it is found in `frame` by its bytes, or is the end of the frame (`at_end`)."""
        if at_end:
            assert frame.endswith(inner)
            offset = len(frame) - len(inner)
        else:
            offset = frame.find(inner)
            assert offset >= 0 and frame.find(inner, offset + 1) < 0, f"{kind}: inner frame not unique"
        delivered = {"offset": offset, "len": len(inner), "vni": vni, "mirror_source": mirror_source,
                     "depth": depth, "synthetic_ethertype": synthetic_ethertype}
        self.packets.append(Packet(kind, what, frame, "delivered", doc, None, delivered))


# --- outer stacks ----------------------------------------------------------------------------------

def vxlan_v4(vni, inner, src=SENDER, *, tags=(), ip=None, udp_kw=None, vx=None, sport=SOURCE_PORT):
    """Ethernet [tags] / IPv4 src→TARGET / UDP sport→4789 / VXLAN vni / inner."""
    datagram = udp(sport, VXLAN_PORT, vxlan(vni, inner, **(vx or {})), **(udp_kw or {}))
    return ethernet(ipv4(src, TARGET, IPPROTO_UDP, datagram, **(ip or {})), tags=tags)


def geneve_v4(vni, payload, src=GWLB, **geneve_kw):
    return ethernet(ipv4(src, TARGET, IPPROTO_UDP, udp(SOURCE_PORT, GENEVE_PORT, geneve(vni, payload, **geneve_kw))))


def vxlan_v6(vni, inner, src=SENDER6, ext=b"", first=IPPROTO_UDP, payload_len=None):
    datagram = udp(SOURCE_PORT, VXLAN_PORT, vxlan(vni, inner))
    return ethernet(ipv6(src, TARGET6, first, ext + datagram, payload_len=payload_len), ETHERTYPE_IPV6)


def dest_opts(next_header):
    return options_header(next_header, b"")


# --- the catalogue ---------------------------------------------------------------------------------

def build() -> list:
    c = Catalogue()
    ethernet_and_vlan(c)
    outer_ipv4(c)
    outer_ipv6(c)
    outer_udp(c)
    vxlan_kinds(c)
    geneve_kinds(c)
    nesting(c)
    allowlist(c)
    sessions(c)
    jumbo(c)
    return c.packets


def ethernet_and_vlan(c: Catalogue):
    whole = vxlan_v4(100, c.customer("runt"))
    for n in range(14):
        c.malformed("runt", f"the first {n} bytes of a mirror packet (shorter than Ethernet)", whole[:n],
                    "ethernet_truncated")
    c.malformed("ethernet_only_ipv4", "exactly 14 bytes: an Ethernet header announcing IPv4, nothing after",
                whole[:14], "ipv4_truncated")
    c.malformed("ethernet_only_vlan", "exactly 14 bytes: an Ethernet header announcing a VLAN tag",
                ethernet(b"", ETHERTYPE_VLAN), "vlan_truncated")
    c.add("ethernet_only_other", "exactly 14 bytes, EtherType 0x88B5 (local experimental)",
          ethernet(b"", ETHERTYPE_LOCAL_EXPERIMENTAL), "not_tunnel", DOC_UNTUNNELED)
    c.malformed("vlan_tag_cut", "an 802.1Q tag cut after its first 2 bytes",
                ethernet(b"\x00\x0a", ETHERTYPE_VLAN), "vlan_truncated")
    inner = c.customer("vlan_3_tags")
    c.malformed("vlan_3_tags", "three stacked tags (802.1ad, 802.1Q, 802.1Q) before a valid VXLAN mirror",
                vxlan_v4(100, inner, tags=[(ETHERTYPE_QINQ, 10), (ETHERTYPE_VLAN, 20), (ETHERTYPE_VLAN, 30)]),
                "vlan_too_deep", "outcome: more than two outer VLAN tags (QinQ is the limit)")
    for kind, tags, what in [
        ("vlan_1_tag", [(ETHERTYPE_VLAN, 10)], "one 802.1Q tag"),
        ("vlan_qinq", [(ETHERTYPE_QINQ, 10), (ETHERTYPE_VLAN, 20)], "QinQ: 802.1ad over 802.1Q"),
        ("vlan_qinq_legacy", [(ETHERTYPE_QINQ_LEGACY, 10), (ETHERTYPE_VLAN, 20)], "legacy QinQ: 0x9100 over 802.1Q"),
    ]:
        inner = c.customer(kind)
        c.delivers(kind, f"{what} before a valid VXLAN mirror", vxlan_v4(100, inner, tags=tags), inner, 100,
                   SENDER, 1, "decap: outer Ethernet [VLAN [VLAN]] (two tags are the limit)")
    for ethertype, name in [(ETHERTYPE_ARP, "ARP"), (ETHERTYPE_LLDP, "LLDP"), (ETHERTYPE_MPLS, "MPLS")]:
        # The payload is a whole IPv4/UDP/VXLAN packet: only the EtherType says it is not IP.
        c.add("non_ip_outer", f"outer EtherType {name} (0x{ethertype:04x}) in front of VXLAN-looking bytes",
              ethernet(vxlan_v4(100, c.customer("non_ip_outer"))[14:], ethertype), "not_tunnel", DOC_UNTUNNELED)
    c.add("non_ip_outer", "an IEEE 802.3 length field (0x0030) instead of an EtherType",
          ethernet(bytes.fromhex("aaaa03000000") + bytes(42), 0x0030), "not_tunnel", DOC_UNTUNNELED)


def outer_ipv4(c: Catalogue):
    def valid(kind, **ip):
        return vxlan_v4(100, c.customer(kind), ip=ip)

    c.malformed("ipv4_header_cut", "an IPv4 header of 19 bytes", valid("ipv4_header_cut")[:14 + 19], "ipv4_truncated")
    for version in (0, 5, 6):
        c.malformed("ipv4_bad_version", f"EtherType IPv4, version field {version}",
                    valid("ipv4_bad_version", version=version), "ipv4_bad_version")
    for ihl in range(5):
        c.malformed("ipv4_bad_ihl", f"IHL {ihl} (below the minimum of 5 words)", valid("ipv4_bad_ihl", ihl=ihl),
                    "ipv4_bad_ihl")
    c.malformed("ipv4_ihl_past_frame", "IHL 15 (60 bytes) in a frame that ends 28 bytes into the header",
                valid("ipv4_ihl_past_frame", ihl=15)[:14 + 28], "ipv4_truncated",
                "outcome: outer IPv4 header cut short (the IHL's bytes are not all there)")
    c.malformed("ipv4_ihl_past_total_length", "IHL 15 with 40 bytes of NOP options present, total length 40",
                valid("ipv4_ihl_past_total_length", options=b"\x01" * 40, total_len=40), "ipv4_bad_length",
                "outcome: outer IPv4 total length smaller than its header")
    for total in (0, 19):
        c.malformed("ipv4_total_length_below_header", f"total length {total}, below the 20-byte header",
                    valid("ipv4_total_length_below_header", total_len=total), "ipv4_bad_length")
    frame = valid("ipv4_total_length_long")
    c.malformed("ipv4_total_length_long", "total length one byte more than the frame holds",
                valid("ipv4_total_length_long", total_len=len(frame) - 14 + 1), "ipv4_bad_length")
    c.malformed("ipv4_total_length_long", "total length 65535 in a small frame",
                valid("ipv4_total_length_long", total_len=0xFFFF), "ipv4_bad_length")
    c.malformed("ipv4_total_length_short", "total length covers IP, UDP and 8 bytes; the UDP length says more",
                valid("ipv4_total_length_short", total_len=20 + 8 + 8), "udp_bad_length",
                "outcome: outer UDP length larger than the IP payload (the frame's extra bytes are padding)")

    c.malformed("ipv4_total_length_inside_udp", "total length ends 4 bytes into the UDP header; the frame goes on",
                valid("ipv4_total_length_inside_udp", total_len=20 + 4), "udp_truncated",
                "decap: bytes past the IPv4 total length are Ethernet padding, so the UDP header is cut short "
                "(outcome: outer UDP header cut short)")

    inner = c.customer("ethernet_padding")
    c.delivers("ethernet_padding", "20 bytes of Ethernet padding after a valid IPv4 packet",
               vxlan_v4(100, inner) + bytes(20), inner, 100, SENDER, 1,
               "decap: outer padding is cut off (a frame longer than the total length carries padding)")
    nop4 = b"\x01" * 4
    record_route = bytes([7, 11, 4]) + bytes(8) + b"\x00"  # RR with room for 2 addresses, EOL
    timestamp = bytes([68, 12, 5, 0]) + bytes(8)  # timestamps only, room for 2
    for kind, options, what in [
        ("ipv4_option_nop", nop4, "four NOP options (IHL 6)"),
        ("ipv4_option_eol", b"\x00\x01\x01\x01", "EOL followed by bytes after the end of the list (IHL 6)"),
        ("ipv4_option_record_route", record_route, "a record-route option (IHL 8)"),
        ("ipv4_option_timestamp", timestamp, "a timestamp option (IHL 8)"),
        ("ipv4_option_zero_length", bytes([0x86, 0, 0, 0]), "an option whose length byte is 0 (IHL 6)"),
        ("ipv4_option_past_ihl", bytes([7, 39, 4, 0]), "a record-route option claiming 39 bytes in a 4-byte options area"),
        ("ipv4_options_max", b"\x01" * 40, "40 bytes of options (IHL 15, the maximum)"),
    ]:
        inner = c.customer(kind)
        c.delivers(kind, what, vxlan_v4(100, inner, ip={"options": options}), inner, 100, SENDER, 1, DOC_OPTIONS)
    c.malformed("ipv4_fragment_first", "first fragment: MF set, offset 0",
                valid("ipv4_fragment_first", flags_fragment=0x2000), "outer_fragment",
                "decap: outer fragments are not reassembled (RFC 791: MF or offset != 0 is a fragment)")
    c.malformed("ipv4_fragment_later", "a later fragment: MF clear, offset 1480 bytes",
                valid("ipv4_fragment_later", flags_fragment=185), "outer_fragment",
                "decap: outer fragments are not reassembled (RFC 791: MF or offset != 0 is a fragment)")
    inner = c.customer("ipv4_dont_fragment_clear")
    c.delivers("ipv4_dont_fragment_clear", "DF clear, MF clear, offset 0: a whole datagram",
               vxlan_v4(100, inner, ip={"flags_fragment": 0}), inner, 100, SENDER, 1)
    inner = c.customer("ipv4_bad_checksum")
    c.delivers("ipv4_bad_checksum", "outer IPv4 header checksum wrong",
               vxlan_v4(100, inner, ip={"checksum": 0xBAD0}), inner, 100, SENDER, 1, DOC_CHECKSUMS)
    datagram = tcp(SOURCE_PORT, VXLAN_PORT, vxlan(100, c.customer("ipv4_not_udp")))
    c.add("ipv4_not_udp", "TCP to port 4789 with a VXLAN-looking payload",
          ethernet(ipv4(SENDER, TARGET, IPPROTO_TCP, datagram)), "not_tunnel", DOC_UNTUNNELED)
    c.add("ipv4_not_udp", "ICMP echo request",
          ethernet(ipv4(SENDER, TARGET, IPPROTO_ICMP, bytes([8, 0, 0, 0, 0, 1, 0, 1]) + c.tag("ipv4_not_udp"))),
          "not_tunnel", DOC_UNTUNNELED)


def outer_ipv6(c: Catalogue):
    c.malformed("ipv6_header_cut", "an IPv6 header of 39 bytes", vxlan_v6(100, c.customer("ipv6_header_cut"))[:14 + 39],
                "ipv6_truncated")
    frame = bytearray(vxlan_v6(100, c.customer("ipv6_bad_version")))
    frame[14] = 0x40
    c.malformed("ipv6_bad_version", "EtherType IPv6, version field 4", bytes(frame), "ipv6_bad_version")
    frame = vxlan_v6(100, c.customer("ipv6_payload_length_long"))
    c.malformed("ipv6_payload_length_long", "payload length one byte more than the frame holds",
                vxlan_v6(100, c.customer("ipv6_payload_length_long"), payload_len=len(frame) - 54 + 1), "ipv6_bad_length")

    c.malformed("ipv6_payload_length_inside_udp", "payload length 4: it ends inside the UDP header; the frame goes on",
                vxlan_v6(100, c.customer("ipv6_payload_length_inside_udp"), payload_len=4), "udp_truncated",
                "decap: bytes past the IP payload length are padding, so the UDP header is cut short "
                "(outcome: outer UDP header cut short)")

    inner = c.customer("ipv6_udp_checksum_zero")
    c.delivers("ipv6_udp_checksum_zero", "VXLAN over IPv6 with UDP checksum 0 (RFC 6935 allows it for tunnels)",
               vxlan_v6(100, inner), inner, 100, SENDER6, 1, DOC_CHECKSUMS)

    def chain(kinds, last=IPPROTO_UDP):
        """Extension headers of the given kinds, in order, the last pointing to `last`."""
        out = b""
        for i, kind in enumerate(kinds):
            nxt = kinds[i + 1] if i + 1 < len(kinds) else last
            if kind == IPPROTO_FRAGMENT:
                out += fragment_header(nxt, 0, False)
            elif kind == IPPROTO_ROUTING:
                out += routing_header(nxt)
            elif kind == IPPROTO_AH:
                out += authentication_header(nxt)
            else:
                out += options_header(nxt, b"")
        return out

    def with_chain(kind, kinds, last=IPPROTO_UDP):
        inner = c.customer(kind)
        return inner, vxlan_v6(100, inner, ext=chain(kinds, last), first=kinds[0])

    _, frame = with_chain("ipv6_ext_9_headers", [IPPROTO_HOP_BY_HOP] + [IPPROTO_DESTINATION_OPTIONS] * 8)
    c.malformed("ipv6_ext_9_headers", "nine extension headers (Hop-by-Hop and 8 Destination Options)", frame,
                "ipv6_ext_too_many", "outcome: more than 8 outer IPv6 extension headers")
    inner, frame = with_chain("ipv6_ext_8_headers", [IPPROTO_HOP_BY_HOP] + [IPPROTO_DESTINATION_OPTIONS] * 7)
    c.delivers("ipv6_ext_8_headers", "eight extension headers: the most walked", frame, inner, 100, SENDER6, 1,
               "wire::ipv6: MAX_EXTENSION_HEADERS = 8 are walked")
    inner, frame = with_chain("ipv6_ext_hop_by_hop_loop", [IPPROTO_HOP_BY_HOP] * 9)
    c.malformed("ipv6_ext_hop_by_hop_loop", "Hop-by-Hop pointing to Hop-by-Hop, nine times over", frame,
                "ipv6_ext_too_many", "outcome: more than 8 outer IPv6 extension headers")
    inner, frame = with_chain("ipv6_ext_back_to_hop_by_hop",
                              [IPPROTO_HOP_BY_HOP, IPPROTO_DESTINATION_OPTIONS, IPPROTO_HOP_BY_HOP])
    c.delivers("ipv6_ext_back_to_hop_by_hop",
               "Hop-by-Hop → Destination Options → Hop-by-Hop again (RFC 8200: Hop-by-Hop only first)", frame,
               inner, 100, SENDER6, 1,
               "SILENT: decap and wire::ipv6 walk any chain of known headers up to 8; header order is not checked")

    # Truncated mid-header: a 16-byte Destination Options header of which the payload length
    # keeps 10 bytes (the frame holds all of them), and one cut by the end of the frame.
    long_opts = options_header(IPPROTO_UDP, bytes([1, 10]) + bytes(10))  # 16 bytes
    frame = ethernet(ipv6(SENDER6, TARGET6, IPPROTO_DESTINATION_OPTIONS, long_opts + udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, c.customer("ipv6_ext_cut"))),
                          payload_len=10), ETHERTYPE_IPV6)
    c.malformed("ipv6_ext_cut", "a 16-byte Destination Options header, payload length 10", frame,
                "ipv6_ext_truncated", "outcome: outer IPv6 extension header runs past the packet")
    frame = ethernet(ipv6(SENDER6, TARGET6, IPPROTO_DESTINATION_OPTIONS, long_opts[:12]), ETHERTYPE_IPV6)
    c.malformed("ipv6_ext_cut", "a 16-byte Destination Options header cut by the end of the frame at 12 bytes",
                frame, "ipv6_ext_truncated", "outcome: outer IPv6 extension header runs past the packet")

    for offset, more, what in [(0, True, "offset 0, M set (first fragment)"), (1232, False, "offset 1232, M clear (last fragment)")]:
        inner = c.customer("ipv6_fragment")
        frame = vxlan_v6(100, inner, ext=fragment_header(IPPROTO_UDP, offset, more), first=IPPROTO_FRAGMENT)
        c.malformed("ipv6_fragment", f"a Fragment header, {what}", frame, "outer_fragment",
                    "decap: outer fragments are not reassembled (IPv6 Fragment header with offset or M)")
    inner = c.customer("ipv6_atomic_fragment")
    frame = vxlan_v6(100, inner, ext=fragment_header(IPPROTO_UDP, 0, False), first=IPPROTO_FRAGMENT)
    c.delivers("ipv6_atomic_fragment", "an atomic fragment (offset 0, M clear, RFC 6946)", frame, inner, 100,
               SENDER6, 1, "decap limitations: an IPv6 atomic fragment is a whole packet and is decapsulated")
    inner = c.customer("ipv6_hop_by_hop_padding")
    hbh = options_header(IPPROTO_UDP, b"\x00\x00\x00" + bytes([1, 3, 0, 0, 0]) + b"\x00" + bytes([1, 0]))
    c.delivers("ipv6_hop_by_hop_padding", "Hop-by-Hop with Pad1 and PadN options (16 bytes)",
               vxlan_v6(100, inner, ext=hbh, first=IPPROTO_HOP_BY_HOP), inner, 100, SENDER6, 1,
               "wire::ipv6: Hop-by-Hop is walked by its length, options not interpreted")
    inner, frame = with_chain("ipv6_routing_and_ah", [IPPROTO_ROUTING, IPPROTO_AH])
    c.delivers("ipv6_routing_and_ah", "a Routing header then an Authentication Header", frame, inner, 100,
               SENDER6, 1, "wire::ipv6: Routing and AH (RFC 4302 length) are walked")
    c.add("ipv6_not_udp", "next header ESP (50): what follows is encrypted",
          ethernet(ipv6(SENDER6, TARGET6, IPPROTO_ESP, bytes(16) + c.tag("ipv6_not_udp")), ETHERTYPE_IPV6),
          "not_tunnel", "wire::ipv6: ESP is reported as the upper layer; " + DOC_UNTUNNELED)
    c.add("ipv6_not_udp", "next header 59 (No Next Header) with bytes after it",
          ethernet(ipv6(SENDER6, TARGET6, IPPROTO_NO_NEXT_HEADER, c.tag("ipv6_not_udp")), ETHERTYPE_IPV6),
          "not_tunnel", DOC_UNTUNNELED)
    jumbo_option = bytes([0xC2, 4]) + struct.pack("!I", 0)  # value patched below
    hbh = options_header(IPPROTO_UDP, jumbo_option)
    datagram = udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, c.customer("ipv6_jumbogram")))
    body = hbh[:4] + struct.pack("!I", len(hbh) + len(datagram)) + hbh[8:] + datagram
    c.malformed("ipv6_jumbogram", "a jumbogram: payload length 0, Hop-by-Hop Jumbo Payload option (RFC 2675)",
                ethernet(ipv6(SENDER6, TARGET6, IPPROTO_HOP_BY_HOP, body, payload_len=0), ETHERTYPE_IPV6),
                "ipv6_ext_truncated",
                "wire::ipv6 limitations: jumbograms are not recognised, the payload length reads 0, so the "
                "Hop-by-Hop header runs past the (empty) payload")


def outer_udp(c: Catalogue):
    frame = vxlan_v4(100, c.customer("udp_header_cut"))
    cut = frame[:14 + 20 + 4]
    cut = cut[:14] + ipv4(SENDER, TARGET, IPPROTO_UDP, cut[34:])  # a total length that agrees
    c.malformed("udp_header_cut", "an IPv4 packet whose UDP header has 4 bytes, at the end of the frame", cut,
                "udp_truncated")
    for length in (0, 7):
        c.malformed("udp_length_below_8", f"UDP length {length}",
                    vxlan_v4(100, c.customer("udp_length_below_8"), udp_kw={"length": length}), "udp_bad_length")
    inner = c.customer("udp_length_long")
    c.malformed("udp_length_long", "UDP length 1 byte beyond the IP payload",
                vxlan_v4(100, inner, udp_kw={"length": 8 + 8 + len(inner) + 1}), "udp_bad_length")
    inner = c.customer("udp_length_short")
    trailer = b"TRAILER-NOT-PART-OF-THE-FRAME"
    datagram = udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, inner + trailer), length=8 + 8 + len(inner))
    c.delivers("udp_length_short", "UDP length shorter than the IP payload: 29 bytes after the datagram",
               ethernet(ipv4(SENDER, TARGET, IPPROTO_UDP, datagram)), inner, 100, SENDER, 1,
               "decap: bytes past the tunnel's UDP length are cut off")
    inner = c.customer("udp_bad_checksum")
    c.delivers("udp_bad_checksum", "outer UDP checksum wrong (0xBEEF)",
               vxlan_v4(100, inner, udp_kw={"checksum": 0xBEEF}), inner, 100, SENDER, 1, DOC_CHECKSUMS)
    c.add("udp_other_port", "UDP to port 53 carrying VXLAN-looking bytes",
          ethernet(ipv4(SENDER, TARGET, IPPROTO_UDP, udp(SOURCE_PORT, 53, vxlan(100, c.customer("udp_other_port"))))),
          "not_tunnel", DOC_UNTUNNELED)
    c.add("udp_other_port", "UDP from port 4789 to port 40000 (a reply, not a tunnel)",
          ethernet(ipv4(SENDER, TARGET, IPPROTO_UDP, udp(VXLAN_PORT, 40000, vxlan(100, c.customer("udp_other_port"))))),
          "not_tunnel", DOC_UNTUNNELED)


def vxlan_kinds(c: Catalogue):
    for n in (0, 4, 7):
        c.malformed("vxlan_header_cut", f"UDP to 4789 with {n} bytes of payload",
                    ethernet(ipv4(SENDER, TARGET, IPPROTO_UDP, udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, b"")[:n]))),
                    "vxlan_truncated")
    for flags in (0x00, 0xF7):
        c.malformed("vxlan_i_flag_clear", f"VXLAN flags 0x{flags:02x}: the I flag clear",
                    vxlan_v4(100, c.customer("vxlan_i_flag_clear"), vx={"flags": flags}), "vxlan_no_vni",
                    "outcome: VXLAN header without the I flag (no valid VNI)")
    inner = c.customer("vxlan_reserved_bits")
    c.delivers("vxlan_reserved_bits", "VXLAN flags 0xFF and every reserved bit set",
               vxlan_v4(100, inner, vx={"flags": 0xFF, "reserved1": b"\xff\xff\xff", "reserved2": 0xFF}), inner, 100,
               SENDER, 1, "wire::vxlan: reserved bits are ignored on receipt (RFC 7348)")
    c.malformed("vxlan_empty_inner", "a VXLAN header and nothing after it", vxlan_v4(100, b""), "inner_too_short",
                DOC_INNER_SHORT)
    c.malformed("vxlan_inner_13_bytes", "an inner frame of 13 bytes", vxlan_v4(100, c.customer("vxlan_inner_13_bytes")[:13]),
                "inner_too_short", DOC_INNER_SHORT)
    inner = ethernet(b"", 0x88B6, dst=INNER_DST_MAC, src=bytes.fromhex("02000000beef"))
    c.delivers("vxlan_inner_14_bytes", "an inner frame of exactly 14 bytes (an Ethernet header alone)",
               vxlan_v4(100, inner), inner, 100, SENDER, 1, DOC_INNER_SHORT + " (14 is not shorter)")
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, INNER_SRC_MAC, bytes([192, 168, 10, 1]), bytes(6),
                      bytes([192, 168, 20, 2])) + c.tag("vxlan_inner_arp")
    inner = ethernet(arp, ETHERTYPE_ARP, dst=b"\xff" * 6, src=INNER_SRC_MAC)
    c.delivers("vxlan_inner_arp", "an inner ARP request (no IP: balanced by mirror source)", vxlan_v4(100, inner),
               inner, 100, SENDER, 1, "inner: non-IP frames are delivered whatever their shape (flow: None)")
    inner = ethernet(ipv4(CUSTOMER_SRC, CUSTOMER_DST, IPPROTO_UDP, udp(1, 2, c.tag("vxlan_inner_3_tags"))),
                     tags=[(ETHERTYPE_QINQ, 1), (ETHERTYPE_VLAN, 2), (ETHERTYPE_VLAN, 3)], dst=INNER_DST_MAC,
                     src=INNER_SRC_MAC)
    c.delivers("vxlan_inner_3_tags", "an inner frame with three VLAN tags", vxlan_v4(100, inner), inner, 100, SENDER,
               1, "inner limitations: more than two inner tags make the frame non-IP; it is still delivered")
    whole = c.customer("vxlan_inner_cut_by_source", size=400)
    inner = whole[:96]
    c.delivers("vxlan_inner_cut_by_source", "an inner IPv4 packet cut at 96 bytes (AWS packet length)",
               vxlan_v4(100, inner), inner, 100, SENDER, 1, "inner: truncated_by_source is counted, not an error")


def geneve_kinds(c: Catalogue):
    c.malformed("geneve_header_cut", "UDP to 6081 with 7 bytes of payload",
                ethernet(ipv4(GWLB, TARGET, IPPROTO_UDP, udp(SOURCE_PORT, GENEVE_PORT, geneve(200, b"")[:7]))),
                "geneve_truncated")
    for version in (1, 3):
        c.malformed("geneve_bad_version", f"GENEVE version {version}", geneve_v4(200, c.customer("geneve_bad_version"),
                    version=version), "geneve_bad_version", "wire::geneve: an unknown version MUST be dropped (RFC 8926)")
    c.malformed("geneve_options_overrun", "Opt Len 63 (252 bytes) with 40 bytes after the fixed header",
                geneve_v4(200, bytes(40), opt_len=63), "geneve_options_overrun")
    inner = c.customer("geneve_options_overrun")
    frame = ethernet(ipv4(GWLB, TARGET, IPPROTO_UDP, udp(SOURCE_PORT, GENEVE_PORT, geneve(200, inner, opt_len=20),
                                                         length=8 + 8 + 40)))
    c.malformed("geneve_options_overrun", "Opt Len 20 (80 bytes): the frame has them, the UDP length stops at 40",
                frame, "geneve_options_overrun", "outcome: GENEVE options run past the end of the UDP payload")
    for protocol in (ETHERTYPE_LOCAL_EXPERIMENTAL, ETHERTYPE_ARP):
        c.malformed("geneve_unknown_protocol", f"GENEVE protocol type 0x{protocol:04x}",
                    geneve_v4(200, c.customer("geneve_unknown_protocol"), protocol=protocol), "geneve_unknown_protocol")
    options = b"".join(geneve_option(0x0108, t, bytes([t]) * 56) for t in range(1, 5)) + geneve_option(0x0108, 5, bytes(8))
    assert len(options) == 252
    inner = c.customer("geneve_max_options")
    c.delivers("geneve_max_options", "252 bytes of options (Opt Len 63, the maximum)",
               geneve_v4(200, inner, options=options), inner, 200, GWLB, 1,
               "wire::geneve: options are skipped as one block of Opt Len x 4 bytes (up to 260-byte header)")
    inner = c.customer("geneve_control_critical")
    c.delivers("geneve_control_critical", "O (control) and C (critical options) bits set",
               geneve_v4(200, inner, flags=0xC0), inner, 200, GWLB, 1,
               "wire::geneve: the O and C bits are reported, not acted on (the promised reason in decap is "
               "not written: SILENT there)")
    ip4_packet = c.customer_ip("geneve_bare_ipv4")
    c.delivers("geneve_bare_ipv4", "GENEVE protocol 0x0800: bare IPv4", geneve_v4(200, ip4_packet, protocol=ETHERTYPE_IPV4),
               ip4_packet, 200, GWLB, 1, "decap: bare IP in GENEVE gets a synthetic Ethernet header",
               synthetic_ethertype=ETHERTYPE_IPV4)
    ip6_packet = c.customer_ip6("geneve_bare_ipv6")
    c.delivers("geneve_bare_ipv6", "GENEVE protocol 0x86DD: bare IPv6", geneve_v4(200, ip6_packet, protocol=ETHERTYPE_IPV6),
               ip6_packet, 200, GWLB, 1, "decap: bare IP in GENEVE gets a synthetic Ethernet header",
               synthetic_ethertype=ETHERTYPE_IPV6)
    c.delivers("geneve_bare_ip_1_byte", "GENEVE protocol 0x0800 carrying a single byte", geneve_v4(200, b"\x45", protocol=ETHERTYPE_IPV4),
               b"\x45", 200, GWLB, 1,
               "AMBIGUOUS: decap says a tunnel carrying a frame shorter than Ethernet is inner_too_short; a bare IP "
               "payload gets a 14-byte synthetic Ethernet header, so the frame delivered (15 bytes) is not shorter",
               synthetic_ethertype=ETHERTYPE_IPV4, at_end=True)
    c.malformed("geneve_bare_ip_empty", "GENEVE protocol 0x0800 and no byte after the header",
                geneve_v4(200, b"", protocol=ETHERTYPE_IPV4), "inner_too_short", DOC_INNER_SHORT)
    c.malformed("geneve_empty_inner", "GENEVE protocol 0x6558 and no byte after the header", geneve_v4(200, b""),
                "inner_too_short", DOC_INNER_SHORT)
    c.malformed("geneve_inner_13_bytes", "GENEVE carrying 13 bytes of Ethernet",
                geneve_v4(200, c.customer("geneve_inner_13_bytes")[:13]), "inner_too_short", DOC_INNER_SHORT)
    c.add("geneve_unknown_vni", f"GENEVE VNI {UNKNOWN_VNI_2:#x}, which no session has",
          geneve_v4(UNKNOWN_VNI_2, c.customer("geneve_unknown_vni")), "unknown_session", DOC_SESSION)
    inner = c.customer("geneve_over_ipv6")
    frame = ethernet(ipv6(SENDER6, TARGET6, IPPROTO_UDP, udp(SOURCE_PORT, GENEVE_PORT, geneve(200, inner))), ETHERTYPE_IPV6)
    c.delivers("geneve_over_ipv6", "GENEVE over an IPv6 underlay", frame, inner, 200, SENDER6, 1)


def wrap(depth, inner, vni_of=lambda level: 100):
    """`depth` tunnels around `inner`: VXLAN at odd levels, GENEVE at even ones, level 1 innermost.
    Level n is sent from 10.2.0.n (allowed); the outermost from GWLB."""
    frame = inner
    for level in range(1, depth + 1):
        src = GWLB if level == depth else f"10.2.0.{level}"
        if level % 2:
            payload = udp(SOURCE_PORT + level, VXLAN_PORT, vxlan(vni_of(level), frame))
        else:
            payload = udp(SOURCE_PORT + level, GENEVE_PORT, geneve(300, frame))
        frame = ethernet(ipv4(src, TARGET, IPPROTO_UDP, payload))
    return frame


def nesting(c: Catalogue):
    inner = c.customer("gwlb_geneve_vxlan")
    frame = geneve_v4(300, vxlan_v4(100, inner, src=SENDER),
                      options=geneve_option(0x0108, 1, bytes(8)) + geneve_option(0x0108, 2, bytes(8)))
    c.delivers("gwlb_geneve_vxlan", "AWS GWLB: GENEVE (with options) carrying the VXLAN mirror packet", frame, inner,
               100, SENDER, 2, "decap: GENEVE carrying VXLAN is followed; VNI and mirror source of the innermost")
    inner = c.customer("nested_3_deep")
    c.delivers("nested_3_deep", "three tunnels: VXLAN in GENEVE in VXLAN", wrap(3, inner), inner, 100, "10.2.0.1", 3,
               "decap: MAX_TUNNEL_DEPTH = 3 tunnels are removed")
    for depth in (4, 10):
        c.malformed("nested_bomb", f"{depth} tunnels nested", wrap(depth, c.customer("nested_bomb")), "tunnel_too_deep",
                    DOC_DEPTH)
    customer = vxlan_v4(100, c.customer("nested_inner_not_tunnel"), src="192.168.0.9", vx={"flags": 0})
    c.delivers("nested_inner_not_tunnel", "VXLAN carrying a customer's UDP/4789 packet whose VXLAN lacks the I flag",
               vxlan_v4(100, customer), customer, 100, SENDER, 1, DOC_INNER_LAYER)
    customer = vxlan_v4(100, c.customer("nested_inner_fragment"), src="192.168.0.9", ip={"flags_fragment": 0x2000})
    c.delivers("nested_inner_fragment", "VXLAN carrying a customer's fragmented UDP/4789 packet",
               vxlan_v4(100, customer), customer, 100, SENDER, 1, DOC_INNER_LAYER)
    customer = vxlan_v4(100, b"", src="192.168.0.9")
    customer += c.tag("nested_inner_empty")  # Ethernet padding after the customer's empty VXLAN
    c.delivers("nested_inner_empty", "VXLAN carrying a customer's VXLAN packet that carries no frame",
               vxlan_v4(100, customer), customer, 100, SENDER, 1,
               "AMBIGUOUS: decap names inner_too_short among 'the exceptions' to delivering an inner layer that "
               "does not parse; read as applying to the tunnel being removed, since an inner layer that is not "
               "followed is the customer's packet (the unit test an_inner_layer_that_is_not_a_valid_tunnel_is_"
               "delivered says so)")
    inner = c.customer("nested_inner_source_outside_allowlist")
    c.delivers("nested_inner_source_outside_allowlist", "an allowed GWLB carrying VXLAN from 192.0.2.66",
               geneve_v4(300, vxlan_v4(100, inner, src=SPOOFED)), inner, 100, SPOOFED, 2,
               "decap: only the outermost source is checked against the allowlist")
    innermost = c.customer("nested_3_deep_then_not_tunnel")
    customer = vxlan_v4(100, innermost, src="192.168.0.9", vx={"flags": 0})
    c.delivers("nested_3_deep_then_not_tunnel", "three tunnels around a customer's VXLAN packet without the I flag",
               wrap(3, customer), customer, 100, "10.2.0.1", 3, DOC_INNER_LAYER + "; " + DOC_DEPTH)
    c.add("nested_inner_vni_unknown", "GWLB GENEVE VNI 300 (a session) carrying VXLAN VNI 4242 (none)",
          geneve_v4(300, vxlan_v4(UNKNOWN_VNI, c.customer("nested_inner_vni_unknown"))), "unknown_session", DOC_SESSION)
    inner = c.customer("nested_outer_vni_unknown")
    c.delivers("nested_outer_vni_unknown", "GENEVE VNI 4242 (no session) carrying VXLAN VNI 100",
               geneve_v4(UNKNOWN_VNI, vxlan_v4(100, inner)), inner, 100, SENDER, 2, DOC_SESSION)


def allowlist(c: Catalogue):
    c.add("spoofed_source_v4", "a valid VXLAN mirror from 192.0.2.66", vxlan_v4(100, c.customer("spoofed_source_v4"), src=SPOOFED),
          "source_denied", DOC_TRUST)
    c.add("spoofed_source_v6", "a valid VXLAN mirror from 2001:db8::66",
          vxlan_v6(100, c.customer("spoofed_source_v6"), src=SPOOFED6), "source_denied", DOC_TRUST)
    c.add("spoofed_source_v4_mapped", "from ::ffff:10.1.0.1 (an allowed IPv4 address, IPv4-mapped)",
          vxlan_v6(100, c.customer("spoofed_source_v4_mapped"), src=MAPPED6), "source_denied",
          "decap limitations: an IPv4-mapped IPv6 source matches IPv6 CIDRs only")
    c.add("spoofed_then_malformed", "from 192.0.2.66, VXLAN without the I flag",
          vxlan_v4(100, c.customer("spoofed_then_malformed"), src=SPOOFED, vx={"flags": 0}), "source_denied", DOC_TRUST)
    c.add("spoofed_then_malformed", "from 192.0.2.66, an IPv4 fragment",
          vxlan_v4(100, c.customer("spoofed_then_malformed"), src=SPOOFED, ip={"flags_fragment": 0x2000}), "source_denied",
          DOC_TRUST)
    c.add("spoofed_then_malformed", "from 192.0.2.66, TCP",
          ethernet(ipv4(SPOOFED, TARGET, IPPROTO_TCP, tcp(1, VXLAN_PORT, c.tag("spoofed_then_malformed")))),
          "source_denied", DOC_TRUST)
    c.add("spoofed_then_malformed", "from 2001:db8::66, nine extension headers",
          ethernet(ipv6(SPOOFED6, TARGET6, IPPROTO_DESTINATION_OPTIONS,
                        b"".join(dest_opts(IPPROTO_DESTINATION_OPTIONS) for _ in range(8)) + dest_opts(IPPROTO_UDP)
                        + udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, c.customer("spoofed_then_malformed")))), ETHERTYPE_IPV6),
          "source_denied", DOC_TRUST)
    frame = vxlan_v4(100, c.customer("spoofed_with_bad_ip"), src=SPOOFED, ip={"total_len": 0xFFFF})
    c.malformed("spoofed_with_bad_ip", "from 192.0.2.66 with an IPv4 total length of 65535", frame, "ipv4_bad_length",
                DOC_TRUST + " (this header is not)")


def sessions(c: Catalogue):
    c.add("unknown_vni", f"VXLAN VNI {UNKNOWN_VNI}, which no session has", vxlan_v4(UNKNOWN_VNI, c.customer("unknown_vni")),
          "unknown_session", DOC_SESSION)
    for kind, vni in [("vni_zero", 0), ("vni_max", 0xFFFFFF)]:
        inner = c.customer(kind)
        c.delivers(kind, f"VXLAN VNI {vni:#x} (a session has it)", vxlan_v4(vni, inner), inner, vni, SENDER, 1,
                   "wire::vxlan: any 24-bit VNI, 0 included, is valid")


def jumbo(c: Catalogue):
    overhead = 14 + 20 + 8 + 8
    inner = c.customer("jumbo_vxlan", size=JUMBO_FRAME - overhead)
    frame = vxlan_v4(100, inner)
    assert len(frame) == JUMBO_FRAME
    c.delivers("jumbo_vxlan", "a 9000-byte VXLAN mirror packet (a chain of mbufs)", frame, inner, 100, SENDER, 1,
               "pipeline: jumbo frames arrive as chains and are delivered whole")
    inner = c.customer("jumbo_gwlb", size=JUMBO_FRAME - overhead - (14 + 20 + 8 + 8))
    frame = geneve_v4(300, vxlan_v4(100, inner))
    assert len(frame) == JUMBO_FRAME
    c.delivers("jumbo_gwlb", "a 9000-byte GWLB packet (GENEVE carrying VXLAN)", frame, inner, 100, SENDER, 2,
               "pipeline: jumbo frames arrive as chains and are delivered whole")
    inner = c.customer("jumbo_udp_length_short", size=JUMBO_FRAME - overhead - 100)
    datagram = udp(SOURCE_PORT, VXLAN_PORT, vxlan(100, inner + bytes(100)), length=8 + 8 + len(inner))
    frame = ethernet(ipv4(SENDER, TARGET, IPPROTO_UDP, datagram))
    assert len(frame) == JUMBO_FRAME
    c.delivers("jumbo_udp_length_short", "9000 bytes whose UDP length leaves 100 bytes out (cut in the last mbuf)",
               frame, inner, 100, SENDER, 1, "decap: bytes past the tunnel's UDP length are cut off")
    inner = c.customer("jumbo_ipv4_length_long", size=JUMBO_FRAME - overhead)
    frame = vxlan_v4(100, inner, ip={"total_len": JUMBO_FRAME - 14 + 1})
    c.malformed("jumbo_ipv4_length_long", "9000 bytes whose IPv4 total length claims one byte more", frame,
                "ipv4_bad_length")
