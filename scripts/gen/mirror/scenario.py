"""From a profile's conversation templates to a stream of mirrored packets.

A profile is a list of `Template`s: a kind of conversation (HTTP, TLS, DNS, ping) between two hosts,
and the mirrors that see it (one, or two when both ends of the connection are mirrored). The
scheduler keeps a few conversations open at once, instantiating templates in turn with fresh ports
and sequence numbers, and interleaves their packets (each conversation stays in order), as a mirror
of a busy interface shows them. Every inner packet yields one mirrored packet per mirror that sees
it; when two do, the copy from the sender's mirror comes first (it is taken on the way out, the
other on the way in) and the other is marked `second_copy` with `copy_of` pointing at the first.

With a size mix (IMIX, minimum size), templates become `SizedFlow`s between the same hosts and each
inner packet takes the next length of the mix.

The stream stops after exactly `limit` mirrored packets: conversations still open are cut short, and
if the limit falls between the two copies of a packet, only the first is emitted (a capture that
stopped in between).
"""

from dataclasses import dataclass, field
from typing import Iterator, Optional

from .inner import Host
from .sized import SizedFlow, SizeCycle, header_overhead
from .traffic import Ends, dns_conversation, echo_conversation, tcp_conversation

# Conversations open at once: enough to interleave, few enough that each one advances often.
OPEN_CONVERSATIONS = 5

# Transport of a template's traffic when it is replaced by sized flows. Ports 5201 (iperf3) carry
# random payloads that no decoder mistakes for a protocol it knows.
SIZED_PROTOCOL = {"http": "tcp", "tls": "tcp", "dns": "udp", "echo": "echo"}
SIZED_PORT = 5201

DNS_NAMES = ["www.example.com", "api.example.net", "cdn.example.org", "db.corp.example.com",
             "s3.example.com", "login.example.net"]


@dataclass(frozen=True)
class Template:
    """A kind of conversation that recurs, and who mirrors it."""

    app: str  # "http", "tls", "dns" or "echo"
    ends: Ends
    # (viewpoint host, mirror) pairs: the mirror sees the conversation at that host's interface.
    mirrors: tuple
    server_port: int = 0
    host_name: str = "www.example.com"
    # Largest HTTP body / TLS response, in bytes.
    max_body: int = 8000
    echo_count: int = 4

    def conversation(self, rng, number: int):
        if self.app in ("http", "tls"):
            return tcp_conversation(rng, self.ends, self.app, self.server_port, number,
                                    self.host_name, self.max_body)
        if self.app == "dns":
            return dns_conversation(rng, self.ends, number, DNS_NAMES)
        if self.app == "echo":
            return echo_conversation(rng, self.ends, number, self.echo_count)
        raise ValueError(f"unknown app {self.app}")

    def sized_flow(self, rng, number: int) -> SizedFlow:
        return SizedFlow(rng, self.ends, SIZED_PROTOCOL[self.app], SIZED_PORT, number)

    def mirrors_for(self, sender: Host):
        """The mirrors in the order they emit a packet from `sender`: the sender's first."""
        return sorted(self.mirrors, key=lambda pair: pair[0] != sender)


@dataclass
class Record:
    """One mirrored packet of the output."""

    index: int
    frame: bytes
    outer_flow: tuple
    describe: dict = field(default_factory=dict)
    # Index of the first copy when this is the second copy of a packet mirrored at both ends.
    copy_of: Optional[int] = None


def _describe(inner, viewpoint: Host, view, mirrored) -> dict:
    outer_src, outer_dst, _, outer_sport, outer_dport = mirrored.outer_flow
    inner_src, inner_dst, inner_proto, inner_sport, inner_dport = inner.flow
    describe = {
        "outer_src": outer_src,
        "outer_dst": outer_dst,
        "outer_sport": outer_sport,
        "outer_dport": outer_dport,
        "frame_len": len(mirrored.frame),
        "inner_version": view.ip_version,
        "inner_src": inner_src,
        "inner_dst": inner_dst,
        "inner_proto": inner_proto,
        "inner_sport": inner_sport,
        "inner_dport": inner_dport,
        "inner_vlan": inner.vlan,
        "inner_ttl": inner.sender.ttl if viewpoint == inner.sender else inner.sender.ttl - inner.hops,
        "direction": inner.direction_at(viewpoint),
    }
    describe.update(inner.describe)
    describe.update(mirrored.describe)
    return describe


def _natural_packets(templates, rng) -> Iterator:
    """(template, inner packet) in interleaved conversation order, forever."""
    open_conversations = []
    started = 0
    while True:
        while len(open_conversations) < min(OPEN_CONVERSATIONS, len(templates)):
            template = templates[started % len(templates)]
            open_conversations.append((template, template.conversation(rng, started)))
            started += 1
        position = rng.randrange(len(open_conversations))
        template, conversation = open_conversations[position]
        packet = next(conversation, None)
        if packet is None:
            del open_conversations[position]
            continue
        yield template, packet


def _sized_packets(templates, rng, mix) -> Iterator:
    sizes = SizeCycle(rng, mix)
    smallest = sizes.smallest()
    if not any(header_overhead(t.ends, SIZED_PROTOCOL[t.app]) <= smallest for t in templates):
        raise ValueError(f"no flow of this profile fits a {smallest}-byte frame")
    open_flows = []
    started = 0
    for frame_len in sizes:
        candidates = [i for i, (_, flow) in enumerate(open_flows) if flow.fits(frame_len)]
        while len(open_flows) < OPEN_CONVERSATIONS or not candidates:
            template = templates[started % len(templates)]
            open_flows.append((template, template.sized_flow(rng, started)))
            started += 1
            if open_flows[-1][1].fits(frame_len):
                candidates.append(len(open_flows) - 1)
        position = rng.choice(candidates)
        template, flow = open_flows[position]
        yield template, flow.packet(frame_len)
        if flow.remaining <= 0:
            del open_flows[position]


def mirrored_packets(templates, rng, limit: int, mix=None) -> Iterator[Record]:
    """Exactly `limit` mirrored packets (see the module documentation)."""
    if not templates:
        raise ValueError("a profile has at least one template")
    inner_packets = _natural_packets(templates, rng) if mix is None else _sized_packets(templates, rng, mix)
    emitted = 0
    while emitted < limit:
        template, inner = next(inner_packets)
        first_index = None
        for viewpoint, mirror in template.mirrors_for(inner.sender):
            if emitted == limit:
                break
            view = inner.view_at(viewpoint)
            mirrored = mirror.encapsulate(view)
            record = Record(index=emitted, frame=mirrored.frame, outer_flow=mirrored.outer_flow,
                            describe=_describe(inner, viewpoint, view, mirrored),
                            copy_of=first_index)
            if first_index is None:
                first_index = emitted
            emitted += 1
            yield record


def mirror_pair_colours(templates) -> dict:
    """Outer source address → 0 or 1, such that the two mirrors of a both-ends template differ.

    Used by `--split` to send the two copies of a packet to different files: the mirrors pairwise
    form a graph that must be two-colourable (it is for every profile here; a profile that broke
    this would be refused rather than split wrongly)."""
    neighbours = {}
    for template in templates:
        if len(template.mirrors) == 2:
            (_, first), (_, second) = template.mirrors
            a, b = first.session_info().mirror_sources[0], second.session_info().mirror_sources[0]
            if a == b:
                raise ValueError(f"both ends of a conversation mirrored from one source {a}")
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
    colours = {}
    for start in sorted(neighbours):
        if start in colours:
            continue
        colours[start] = 0
        pending = [start]
        while pending:
            node = pending.pop()
            for other in sorted(neighbours[node]):
                if other not in colours:
                    colours[other] = 1 - colours[node]
                    pending.append(other)
                elif colours[other] == colours[node]:
                    raise ValueError(f"mirrors {node} and {other}: copies cannot be split apart")
    return colours
