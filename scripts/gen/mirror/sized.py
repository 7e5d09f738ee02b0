"""Inner traffic of exact frame lengths, for throughput tests: IMIX and minimum-size frames.

Lengths are of the inner Ethernet frame as captured, without the 4-byte FCS, which is how a mirror
carries it: a "64-byte frame" here is 64 bytes after the VXLAN header, so the AWS mirror packet of
a minimum-size frame is 14 + 20 + 8 + 8 + 64 = 114 bytes.

* `IMIX`: the simple IMIX, 7:4:1 of 64, 594 and 1518 bytes (lengths as in RFC 6985 / the classic
  Agilent IMIX, FCS excluded as above).
* `MIN_SIZE`: 64 bytes only.

`SizeCycle` hands out lengths in exact proportion: every cycle of 12 (IMIX) is a shuffle of 7 + 4 + 1.
`SizedFlow` makes a packet of any length its headers fit in: TCP in an established connection
(no options, so that 64 bytes fit: 14 + 20 + 20 + 10), UDP, or ICMP echo.

Limitations: TCP flows are captured mid-connection (no handshake); IPv6 TCP and VLAN-tagged IPv6
UDP do not fit in 64 bytes, so those flows are skipped for minimum-size packets.
"""

import struct
from typing import Iterator

from scapy.layers.inet import ICMP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest
from scapy.packet import Raw

from .inner import InnerPacket
from .traffic import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Ends, IpStack

IMIX = ((64, 7), (594, 4), (1518, 1))
MIN_SIZE = ((64, 1),)

SIZE_MIXES = {"imix": IMIX, "min": MIN_SIZE}

L4_HEADER_LEN = {"tcp": 20, "udp": 8, "echo": 8}


def header_overhead(ends: Ends, protocol: str) -> int:
    """Bytes of Ethernet (+ 802.1Q), IP and L4 headers of a sized flow's packets: its smallest frame."""
    l2 = 14 if ends.vlan is None else 18
    l3 = 20 if ends.ip_version == 4 else 40
    return l2 + l3 + L4_HEADER_LEN[protocol]


class SizeCycle:
    """Inner frame lengths in the exact proportions of a mix, shuffled within each cycle."""

    def __init__(self, rng, mix):
        self.rng = rng
        self.mix = mix
        self.pending = []

    def __iter__(self) -> Iterator[int]:
        while True:
            if not self.pending:
                self.pending = [length for length, weight in self.mix for _ in range(weight)]
                self.rng.shuffle(self.pending)
            yield self.pending.pop()

    def smallest(self) -> int:
        return min(length for length, _ in self.mix)


class SizedFlow:
    """One flow whose packets have exactly the frame lengths asked for."""

    def __init__(self, rng, ends: Ends, protocol: str, server_port: int, conversation: int):
        if protocol not in L4_HEADER_LEN:
            raise ValueError(f"unknown sized protocol {protocol}")
        self.rng = rng
        self.ends = ends
        self.protocol = protocol
        self.stack = IpStack(rng, ends)
        self.conversation = conversation
        self.client_port = rng.randrange(32768, 61000)
        self.server_port = server_port
        self.next_seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.echo_identifier = rng.randrange(1 << 16)
        self.echo_sequence = 0
        self.echo_reply_due = False
        self.sent = 0
        # Flows come and go: after this many packets the scheduler starts a fresh one.
        self.remaining = rng.randrange(20, 200)

    def overhead(self) -> int:
        return header_overhead(self.ends, self.protocol)

    def fits(self, frame_len: int) -> bool:
        return self.overhead() <= frame_len

    def packet(self, frame_len: int) -> InnerPacket:
        payload_len = frame_len - self.overhead()
        if payload_len < 0:
            raise ValueError(f"{frame_len}-byte frame too short for this flow")
        self.remaining -= 1
        if self.protocol == "echo":
            return self._echo(payload_len)
        from_client = self.rng.random() < 0.6
        sender, receiver = self.stack.endpoints(from_client)
        sport, dport = (self.client_port, self.server_port) if from_client else (self.server_port, self.client_port)
        payload = self._payload(payload_len)
        if self.protocol == "udp":
            l3 = self.stack.header(from_client, dont_fragment=False) / UDP(sport=sport, dport=dport)
            proto, describe = PROTO_UDP, {"kind": "udp"}
        else:
            seq = self.next_seq[from_client]
            flags = "PA" if payload else "A"
            tcp = TCP(sport=sport, dport=dport, seq=seq, ack=self.next_seq[not from_client],
                      flags=flags, window=1024)
            self.next_seq[from_client] = (seq + payload_len) & 0xFFFFFFFF
            l3 = self.stack.header(from_client) / tcp
            proto, describe = PROTO_TCP, {"kind": "tcp", "tcp_flags": flags}
        if payload:
            l3 = l3 / Raw(payload)
        return self.stack.packet(from_client, l3, (sender.ip, receiver.ip, proto, sport, dport),
                                 app="sized", conversation=self.conversation, **describe)

    def _payload(self, length: int) -> bytes:
        """iperf3's layout: seconds, microseconds and a packet counter, then data. Besides being
        what a load generator sends, the leading 0x65 keeps decoders' heuristics (RTP/RTCP want
        version 2 in the top bits) from taking random bytes for a protocol and calling it
        malformed."""
        self.sent += 1
        header = struct.pack("!IIQ", 1_700_000_000 + self.sent // 100_000, self.sent % 100_000 * 10,
                             self.sent)
        return (header + self.rng.randbytes(max(0, length - len(header))))[:length]

    def _echo(self, payload_len: int) -> InnerPacket:
        # Requests and replies alternate, as ping's do.
        from_client = not self.echo_reply_due
        if from_client:
            self.echo_sequence = (self.echo_sequence + 1) & 0xFFFF
        self.echo_reply_due = from_client
        sender, receiver = self.stack.endpoints(from_client)
        data = self.rng.randbytes(payload_len)
        identifier, sequence = self.echo_identifier, self.echo_sequence
        if self.ends.ip_version == 4:
            icmp = ICMP(type=8 if from_client else 0, id=identifier, seq=sequence)
            l3 = self.stack.header(from_client) / icmp / Raw(data)
            proto, kind = PROTO_ICMP, "icmp"
        else:
            echo = ICMPv6EchoRequest if from_client else ICMPv6EchoReply
            l3 = self.stack.header(from_client) / echo(id=identifier, seq=sequence, data=data)
            proto, kind = PROTO_ICMPV6, "icmpv6"
        return self.stack.packet(from_client, l3, (sender.ip, receiver.ip, proto, identifier, 0),
                                 kind=kind, app="sized", conversation=self.conversation)
