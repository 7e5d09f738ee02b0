"""Conversations of inner traffic, each a generator of `InnerPacket`s in wire order.

* TCP: three-way handshake with the options a Linux stack sends, data segmented at the MSS with
  sequence and acknowledgement numbers that add up, delayed ACKs every second segment, timestamps,
  and a FIN/FIN/ACK close. The application on top is HTTP/1.1 (a request, a response with
  `Content-Length`) or TLS 1.3 (ClientHello with SNI, ServerHello, then encrypted records).
* UDP: DNS, an A and an AAAA query from one source port (as glibc's resolver does) with answers.
* ICMP / ICMPv6 echo: ping's request/reply pairs with its 56-byte payload.

Every random choice comes from the `random.Random` passed in, nothing from the clock.

Limitations: no loss, retransmission or reordering; no IPv4 fragments; TLS payloads are the right
shape but not real cryptography.
"""

import struct
from dataclasses import dataclass
from typing import Iterator, Optional

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Raw

from .inner import Host, InnerPacket
from .net import ip_version

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP = 1
PROTO_ICMPV6 = 58


@dataclass(frozen=True)
class Ends:
    """Who talks to whom, over how many routers, in which inner VLAN."""

    client: Host
    server: Host
    hops: int = 0
    vlan: Optional[int] = None

    @property
    def ip_version(self) -> int:
        return ip_version(self.client.ip)


class IpStack:
    """The IP header fields that the two ends' stacks choose: IPv4 identification counters, the
    IPv6 flow label of the connection (Linux sets one per socket)."""

    def __init__(self, rng, ends: Ends):
        self.ends = ends
        self.next_id = {True: rng.randrange(1 << 16), False: rng.randrange(1 << 16)}
        self.flow_label = {True: rng.randrange(1, 1 << 20), False: rng.randrange(1, 1 << 20)}

    def header(self, from_client: bool, dont_fragment: bool = True):
        sender, receiver = self.endpoints(from_client)
        if self.ends.ip_version == 4:
            ident = self.next_id[from_client]
            self.next_id[from_client] = (ident + 1) & 0xFFFF
            return IP(src=sender.ip, dst=receiver.ip, id=ident, flags="DF" if dont_fragment else 0)
        return IPv6(src=sender.ip, dst=receiver.ip, fl=self.flow_label[from_client])

    def endpoints(self, from_client: bool):
        ends = self.ends
        return (ends.client, ends.server) if from_client else (ends.server, ends.client)

    def packet(self, from_client: bool, l3, flow: tuple, **describe) -> InnerPacket:
        sender, receiver = self.endpoints(from_client)
        return InnerPacket(
            l3=l3,
            sender=sender,
            receiver=receiver,
            hops=self.ends.hops,
            vlan=self.ends.vlan,
            flow=flow,
            describe=describe,
        )


# --- TCP ------------------------------------------------------------------------------------------

# Linux defaults: initial windows of SYN and SYN-ACK, window scale 7, timestamps on.
SYN_WINDOW = 64240
SYNACK_WINDOW = 65160
WINDOW_SCALE = 7
TIMESTAMP_OPTION_LEN = 12  # NOP, NOP, kind 8 length 10


def mss_for(version: int) -> int:
    """MSS announced for a 1500-byte MTU: minus IP and TCP headers."""
    return 1460 if version == 4 else 1440


class TcpConnection:
    """Sequence numbers, acknowledgements and timestamps of one TCP connection."""

    def __init__(self, rng, ends: Ends, client_port: int, server_port: int, app: str, conversation):
        self.rng = rng
        self.stack = IpStack(rng, ends)
        self.ports = {True: (client_port, server_port), False: (server_port, client_port)}
        self.next_seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.tsval = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.last_tsval_seen = {True: 0, False: 0}
        self.window = {True: rng.randrange(250, 1200), False: rng.randrange(250, 1200)}
        self.app = app
        self.conversation = conversation
        # Payload bytes per segment: the MSS less the timestamp option carried by every segment.
        self.segment_size = mss_for(ends.ip_version) - TIMESTAMP_OPTION_LEN

    def segment(self, from_client: bool, flags: str, payload: bytes = b"") -> InnerPacket:
        sport, dport = self.ports[from_client]
        self.tsval[from_client] = (self.tsval[from_client] + self.rng.randrange(0, 4)) & 0xFFFFFFFF
        timestamp = ("Timestamp", (self.tsval[from_client], self.last_tsval_seen[from_client]))
        if flags in ("S", "SA"):
            # Linux's SYN options, in Linux's order.
            options = [("MSS", mss_for(self.stack.ends.ip_version)), ("SAckOK", b""), timestamp,
                       ("NOP", None), ("WScale", WINDOW_SCALE)]
            window = SYN_WINDOW if flags == "S" else SYNACK_WINDOW
        else:
            options = [("NOP", None), ("NOP", None), timestamp]
            window = self.window[from_client]
        seq = self.next_seq[from_client]
        ack = self.next_seq[not from_client] if "A" in flags else 0
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window,
                  options=options)
        # SYN and FIN each take one sequence number.
        consumed = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        self.next_seq[from_client] = (seq + consumed) & 0xFFFFFFFF
        self.last_tsval_seen[not from_client] = self.tsval[from_client]
        l3 = self.stack.header(from_client) / tcp
        if payload:
            l3 = l3 / Raw(payload)
        sender, receiver = self.stack.endpoints(from_client)
        return self.stack.packet(
            from_client, l3, (sender.ip, receiver.ip, PROTO_TCP, sport, dport),
            kind="tcp", app=self.app, tcp_flags=flags, conversation=self.conversation,
        )

    def handshake(self) -> Iterator[InnerPacket]:
        yield self.segment(True, "S")
        yield self.segment(False, "SA")
        yield self.segment(True, "A")

    def send(self, from_client: bool, message: bytes) -> Iterator[InnerPacket]:
        """`message` in MSS-sized segments, PSH on the last; the peer ACKs every second segment
        and the end of the message (delayed ACK)."""
        chunks = [message[i : i + self.segment_size] for i in range(0, len(message), self.segment_size)]
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            yield self.segment(from_client, "PA" if last else "A", chunk)
            if number % 2 == 0 or last:
                yield self.segment(not from_client, "A")

    def close(self) -> Iterator[InnerPacket]:
        yield self.segment(True, "FA")
        yield self.segment(False, "FA")
        yield self.segment(True, "A")


def http_messages(rng, host_name: str, max_body: int):
    path = rng.choice(["/", "/index.html", "/api/v1/items", "/static/app.js", "/health"])
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_name}\r\nUser-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    body = rng.randbytes(rng.randrange(0, max_body + 1))
    response = (
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return [(True, request), (False, response)]


def _tls_record(content_type: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def _tls_handshake(message_type: int, body: bytes) -> bytes:
    return struct.pack("!B", message_type) + len(body).to_bytes(3, "big") + body


def _tls_extension(extension_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", extension_type, len(body)) + body


def tls_messages(rng, server_name: str, max_body: int):
    """A TLS 1.3 exchange (RFC 8446): ClientHello with SNI and an X25519 key share, ServerHello,
    ChangeCipherSpec, then application-data records (the encrypted handshake, request, response)."""
    session_id = rng.randbytes(32)
    name = server_name.encode()
    client_extensions = b"".join([
        _tls_extension(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name),
        _tls_extension(0x000A, struct.pack("!HHH", 4, 0x001D, 0x0017)),  # x25519, secp256r1
        _tls_extension(0x000D, struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401)),
        _tls_extension(0x002B, struct.pack("!BH", 2, 0x0304)),  # supported_versions: TLS 1.3
        _tls_extension(0x0033, struct.pack("!HHH", 36, 0x001D, 32) + rng.randbytes(32)),
    ])
    client_hello = _tls_handshake(1, b"".join([
        struct.pack("!H", 0x0303), rng.randbytes(32),
        struct.pack("!B", 32), session_id,
        struct.pack("!HHHH", 6, 0x1301, 0x1302, 0x1303),
        struct.pack("!BB", 1, 0),
        struct.pack("!H", len(client_extensions)), client_extensions,
    ]))
    server_extensions = _tls_extension(0x002B, struct.pack("!H", 0x0304)) + _tls_extension(
        0x0033, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
    server_hello = _tls_handshake(2, b"".join([
        struct.pack("!H", 0x0303), rng.randbytes(32),
        struct.pack("!B", 32), session_id,
        struct.pack("!HB", 0x1301, 0),
        struct.pack("!H", len(server_extensions)), server_extensions,
    ]))
    change_cipher_spec = _tls_record(20, b"\x01")
    encrypted_handshake = _tls_record(23, rng.randbytes(rng.randrange(2000, 4000)))
    client_finished = _tls_record(23, rng.randbytes(53))
    request = _tls_record(23, rng.randbytes(rng.randrange(80, 600)))
    body_length = rng.randrange(100, max_body + 101)
    response = b"".join(
        _tls_record(23, rng.randbytes(min(16384 + 256, body_length - offset)))
        for offset in range(0, body_length, 16384 + 256)
    )
    return [
        (True, _tls_record(22, client_hello)),
        (False, _tls_record(22, server_hello) + change_cipher_spec + encrypted_handshake),
        (True, change_cipher_spec + client_finished + request),
        (False, response),
    ]


def tcp_conversation(rng, ends: Ends, app: str, server_port: int, conversation: int,
                     host_name: str, max_body: int) -> Iterator[InnerPacket]:
    client_port = rng.randrange(32768, 61000)  # Linux's ip_local_port_range
    connection = TcpConnection(rng, ends, client_port, server_port, app, conversation)
    yield from connection.handshake()
    messages = (http_messages if app == "http" else tls_messages)(rng, host_name, max_body)
    for from_client, message in messages:
        yield from connection.send(from_client, message)
    yield from connection.close()


# --- UDP: DNS -------------------------------------------------------------------------------------

def dns_conversation(rng, ends: Ends, conversation: int, names) -> Iterator[InnerPacket]:
    """An A and an AAAA query for one name from one port, each answered."""
    stack = IpStack(rng, ends)
    client_port = rng.randrange(32768, 61000)
    name = rng.choice(names)
    for query_type in ("A", "AAAA"):
        query_id = rng.randrange(1 << 16)
        question = DNSQR(qname=name, qtype=query_type)
        if query_type == "A":
            answer = f"203.0.113.{rng.randrange(1, 255)}"
        else:
            answer = f"2001:db8:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}"
        messages = [
            (True, DNS(id=query_id, rd=1, qd=question)),
            (False, DNS(id=query_id, qr=1, rd=1, ra=1, qd=question,
                        an=DNSRR(rrname=name, type=query_type, ttl=rng.randrange(30, 3600),
                                 rdata=answer))),
        ]
        for from_client, message in messages:
            sender, receiver = stack.endpoints(from_client)
            sport, dport = (client_port, 53) if from_client else (53, client_port)
            l3 = stack.header(from_client, dont_fragment=False) / UDP(sport=sport, dport=dport) / message
            yield stack.packet(from_client, l3, (sender.ip, receiver.ip, PROTO_UDP, sport, dport),
                               kind="udp", app="dns", conversation=conversation)


# --- ICMP echo ------------------------------------------------------------------------------------

def ping_payload(sequence: int) -> bytes:
    """Linux ping's 56 data bytes: an 8-byte send time (here derived from the sequence number, not
    the clock) and the pattern 0x10, 0x11, …"""
    return struct.pack("!II", 1_700_000_000 + sequence, 0) + bytes(range(0x10, 0x10 + 48))


def echo_conversation(rng, ends: Ends, conversation: int, count: int) -> Iterator[InnerPacket]:
    stack = IpStack(rng, ends)
    identifier = rng.randrange(1 << 16)
    v4 = ends.ip_version == 4
    for sequence in range(1, count + 1):
        for from_client in (True, False):
            sender, receiver = stack.endpoints(from_client)
            data = ping_payload(sequence)
            if v4:
                icmp = ICMP(type=8 if from_client else 0, id=identifier, seq=sequence)
                l3 = stack.header(from_client) / icmp / Raw(data)
            else:
                echo = ICMPv6EchoRequest if from_client else ICMPv6EchoReply
                l3 = stack.header(from_client) / echo(id=identifier, seq=sequence, data=data)
            flow = (sender.ip, receiver.ip, PROTO_ICMP if v4 else PROTO_ICMPV6, identifier, 0)
            yield stack.packet(from_client, l3, flow, kind="icmp" if v4 else "icmpv6",
                               app="echo", conversation=conversation)
