"""A case's broker configuration as data, its `config.toml`, and the expectation.

The configuration is written once, here, as Python values; `render()` turns it into the TOML
the broker reads and `expect()` walks every input packet through the behaviour the broker
documents (config/README.md, /work/shared/DESIGN.md, the stage modules' docs):

1. a frame broken on purpose ends as `malformed(reason)`;
2. an IP frame whose outermost source is outside `allowed_sources` ends as `source_denied`;
3. a frame that is no tunnel ends as `not_tunnel`, or goes to `untunneled_session`;
4. the innermost VNI picks the session, else `default_session`, else `unknown_session`;
5. the session counts the packet (and `truncated_by_source` when the mirror cut it); its filter
   decides with AWS Traffic Mirroring semantics: rules by ascending number, the first match
   decides, else the default; a rule's direction matches only a packet with that direction,
   which is *ingress* when the inner destination is one of the session's `source_ips`, else
   *egress* when the inner source is; ports match only TCP/UDP; a CIDR only its own family;
6. each of the session's tool groups, in order: with `[dedup]` on and the group taking part, it
   drops a packet it has already received (same `identity`: a copy of one packet mirrored at
   both ends) and counts it; otherwise it picks its port (a one-port group: that port;
   round-robin: the group's turn counter, advanced only for a copy it delivers, so that a
   duplicate does not use up a port's turn, as in pipelines/src/pipeline/mod.rs `finish`);
7. the copy is cut to the group's `slice` when longer, and the port emits it.

Only what the builder knows is used: the packet's flow, VNI and copy relation, never a parse of
its bytes. Balance by source, flow or address pair over several ports is a hash the generator
does not reproduce (the e2e tests check those); `expect()` refuses such a group.
"""

import ipaddress
import json
from dataclasses import dataclass, field
from typing import List, Optional

# The broker's outcome labels (pipelines/src/outcome.rs), in the summary's order.
OUTCOMES = ["delivered", "filtered", "duplicate", "source_denied", "not_tunnel", "unknown_session",
            "no_live_port"]

PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}

EAL_ARGS = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry"]


@dataclass
class Rule:
    number: int
    action: str
    direction: Optional[str] = None
    protocol: Optional[object] = None  # name or number
    src_cidr: Optional[str] = None
    dst_cidr: Optional[str] = None
    src_ports: Optional[str] = None  # "80" or "1024-65535"
    dst_ports: Optional[str] = None
    description: Optional[str] = None

    def matches(self, flow, direction: Optional[str]) -> bool:
        if self.direction is not None and self.direction != direction:
            return False
        if flow is None:
            return False  # a non-IP packet matches no rule
        if self.protocol is not None:
            number = PROTOCOL_NUMBERS.get(self.protocol, self.protocol)
            if flow.proto != number:
                return False
        for cidr, address in ((self.src_cidr, flow.src), (self.dst_cidr, flow.dst)):
            if cidr is not None:
                network = ipaddress.ip_network(cidr)
                address = ipaddress.ip_address(address)
                if network.version != address.version or address not in network:
                    return False
        for ports, port in ((self.src_ports, flow.sport), (self.dst_ports, flow.dport)):
            if ports is not None:
                if not flow.has_ports:
                    return False
                first, _, last = str(ports).partition("-")
                if not int(first) <= port <= int(last or first):
                    return False
        return True


@dataclass
class Filter:
    name: str
    default: str = "reject"
    rules: List[Rule] = field(default_factory=list)

    def decide(self, flow, direction: Optional[str]) -> str:
        for rule in sorted(self.rules, key=lambda r: r.number):
            if rule.matches(flow, direction):
                return rule.action
        return self.default


@dataclass
class Session:
    name: str
    tools: List[str]
    vni: Optional[int] = None
    filter: Optional[str] = None
    source_ips: List[str] = field(default_factory=list)

    def direction(self, flow) -> Optional[str]:
        if flow is None:
            return None
        addresses = {ipaddress.ip_address(a) for a in self.source_ips}
        if ipaddress.ip_address(flow.dst) in addresses:
            return "ingress"
        if ipaddress.ip_address(flow.src) in addresses:
            return "egress"
        return None


@dataclass
class Group:
    name: str
    ports: List[str]
    balance: str = "source"
    slice: int = 0
    dedup: bool = True


@dataclass
class Config:
    name: str
    sessions: List[Session]
    groups: List[Group]
    filters: List[Filter] = field(default_factory=list)
    vxlan_ports: Optional[List[int]] = None
    geneve_ports: Optional[List[int]] = None
    allowed_sources: Optional[List[str]] = None
    pass_untunneled: bool = False
    untunneled_session: Optional[str] = None
    default_session: Optional[str] = None
    dedup_window: Optional[str] = None
    # Comment lines at the top of config.toml.
    comment: str = ""

    def tool_ports(self):
        return [port for group in self.groups for port in group.ports]

    def session_for_vni(self, vni: int) -> Optional[Session]:
        for session in self.sessions:
            if session.vni == vni:
                return session
        return self.session(self.default_session)

    def session(self, name: Optional[str]) -> Optional[Session]:
        return next((s for s in self.sessions if s.name == name), None)

    def allowed(self, address: Optional[str]) -> bool:
        if self.allowed_sources is None or address is None:
            return True
        address = ipaddress.ip_address(address)
        return any(address.version == network.version and address in network
                   for network in map(ipaddress.ip_network, self.allowed_sources))


# --- config.toml -----------------------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def render(config: Config) -> str:
    """The case's config.toml. `@CASE@` stands for the case directory, `@OUT@` for the directory
    the tool ports write into; the test substitutes both."""
    lines = [f"# {line}".rstrip() for line in config.comment.strip().splitlines()]
    lines += [
        "# Written by scripts/gen/conformance.py: regenerate, do not edit. The test replaces @CASE@",
        "# with this directory and @OUT@ with a scratch directory before running the broker.",
        "",
        "[broker]",
        f"name = {_toml('conformance-' + config.name)}",
        'stop_when_idle = "1s"',
        'metrics = ""',
        "",
        "[dpdk]",
        f"eal_args = {_toml(EAL_ARGS)}",
        "",
        "[[ingress]]",
        'name = "mirror0"',
        'device = "net_pcap0,rx_pcap=@CASE@/input.pcap"',
    ]
    decap = []
    if config.vxlan_ports is not None:
        decap.append(f"vxlan_ports = {_toml(config.vxlan_ports)}")
    if config.geneve_ports is not None:
        decap.append(f"geneve_ports = {_toml(config.geneve_ports)}")
    if config.allowed_sources is not None:
        decap.append(f"allowed_sources = {_toml(config.allowed_sources)}")
    if config.pass_untunneled:
        decap.append("pass_untunneled = true")
    if config.untunneled_session is not None:
        decap.append(f"untunneled_session = {_toml(config.untunneled_session)}")
    if config.default_session is not None:
        decap.append(f"default_session = {_toml(config.default_session)}")
    if decap:
        lines += ["", "[decap]"] + decap
    if config.dedup_window is not None:
        lines += ["", "[dedup]", f"window = {_toml(config.dedup_window)}"]
    for session in config.sessions:
        lines += ["", "[[session]]", f"name = {_toml(session.name)}"]
        if session.vni is not None:
            lines.append(f"vni = {session.vni}")
        lines.append(f"tools = {_toml(session.tools)}")
        if session.filter is not None:
            lines.append(f"filter = {_toml(session.filter)}")
        if session.source_ips:
            lines.append(f"source_ips = {_toml(session.source_ips)}")
    for fil in config.filters:
        lines += ["", "[[filter]]", f"name = {_toml(fil.name)}", f"default = {_toml(fil.default)}"]
        for rule in fil.rules:
            lines += ["", "[[filter.rule]]", f"number = {rule.number}", f"action = {_toml(rule.action)}"]
            for key in ("direction", "protocol", "src_cidr", "dst_cidr", "src_ports", "dst_ports",
                        "description"):
                value = getattr(rule, key)
                if value is not None:
                    lines.append(f"{key} = {_toml(value)}")
    device = 1
    for group in config.groups:
        lines += ["", "[[tool_group]]", f"name = {_toml(group.name)}", f"balance = {_toml(group.balance)}"]
        if group.slice:
            lines.append(f"slice = {group.slice}")
        if not group.dedup:
            lines.append("dedup = false")
        lines.append("ports = [")
        for port in group.ports:
            lines.append(f'    {{ name = "{port}", device = "net_pcap{device},tx_pcap=@OUT@/{port}.pcap" }},')
            device += 1
        lines.append("]")
    return "\n".join(lines) + "\n"


# --- the expectation -------------------------------------------------------------------------------

@dataclass
class Emitted:
    """A frame a tool port must emit."""

    input_index: int
    frame: bytes
    # Length of the frame before the source or the slice cut it (for decoders: the wire length).
    wire_len: int
    note: str


@dataclass
class Expectation:
    outcomes: dict
    fates: list  # per input packet: what becomes of it, in words
    ports: dict  # port name → [Emitted]
    counters: dict


def expect(config: Config, packets) -> Expectation:
    """Walks `packets` through the documented behaviour (see the module documentation)."""
    for group in config.groups:
        if len(group.ports) > 1 and group.balance != "round-robin":
            raise ValueError(f"group {group.name}: the port a {group.balance} hash picks among "
                             f"{len(group.ports)} ports is the broker's to choose; use one port or "
                             "round-robin in the corpus")
    outcomes = {}
    fates = []
    sessions = {s.name: dict(packets=0, delivered=0, filtered=0, duplicate=0, no_live_port=0,
                             truncated_by_source=0) for s in config.sessions}
    groups = {g.name: dict(copies=0, duplicates=0, dedup_evictions=0, no_live_port=0, sliced=0)
              for g in config.groups}
    ports = {p: dict(copies=0, transmitted=0, tx_bytes=0, tx_dropped=0, no_buffer=0)
             for p in config.tool_ports()}
    emitted = {p: [] for p in config.tool_ports()}
    turns = {g.name: 0 for g in config.groups}
    seen = {g.name: set() for g in config.groups}
    filters = {f.name: f for f in config.filters}

    def count(label):
        outcomes[label] = outcomes.get(label, 0) + 1

    for index, packet in enumerate(packets):
        if packet.malformed is not None:
            count(packet.malformed)
            fates.append(f"malformed({packet.malformed})")
            continue
        if not config.allowed(packet.outer_src):
            count("source_denied")
            fates.append(f"source_denied ({packet.outer_src})")
            continue
        if packet.vni is None:
            session = config.session(config.untunneled_session) if config.pass_untunneled else None
            if session is None:
                count("not_tunnel")
                fates.append("not_tunnel")
                continue
        else:
            session = config.session_for_vni(packet.vni)
            if session is None:
                count("unknown_session")
                fates.append(f"unknown_session (vni {packet.vni})")
                continue
        row = sessions[session.name]
        row["packets"] += 1
        if packet.truncated_by_source:
            row["truncated_by_source"] += 1
        direction = session.direction(packet.flow)
        if session.filter is not None and filters[session.filter].decide(packet.flow, direction) == "reject":
            row["filtered"] += 1
            count("filtered")
            fates.append(f"session {session.name}, {direction or 'no direction'}: filtered")
            continue
        placed, duplicate_in = [], []
        for name in session.tools:
            group = next(g for g in config.groups if g.name == name)
            if config.dedup_window is not None and group.dedup:
                if packet.identity in seen[name]:
                    groups[name]["duplicates"] += 1
                    duplicate_in.append(name)
                    continue
                seen[name].add(packet.identity)
            # The turn is taken by a delivered copy only (after the dedup check).
            turn = turns[name]
            turns[name] += 1
            port = group.ports[turn % len(group.ports)] if group.balance == "round-robin" else group.ports[0]
            frame = packet.delivered
            if group.slice and len(frame) > group.slice:
                frame = frame[:group.slice]
                groups[name]["sliced"] += 1
            groups[name]["copies"] += 1
            ports[port]["copies"] += 1
            ports[port]["transmitted"] += 1
            ports[port]["tx_bytes"] += len(frame)
            emitted[port].append(Emitted(index, frame, packet.full_len, packet.note))
            placed.append(f"{port}" + (f" ({len(frame)} B)" if len(frame) < len(packet.delivered) else ""))
        where = f"session {session.name}, {direction or 'no direction'}"
        if placed:
            row["delivered"] += 1
            count("delivered")
            dups = f"; duplicate for {', '.join(duplicate_in)}" if duplicate_in else ""
            fates.append(f"{where}: delivered to {', '.join(placed)}{dups}")
        else:
            row["duplicate"] += 1
            count("duplicate")
            fates.append(f"{where}: duplicate for {', '.join(duplicate_in)}")

    counters = {
        "received": len(packets),
        "received_bytes": sum(len(p.frame) for p in packets),
        "stopped_by": "idle",
        "outcomes": dict(sorted(outcomes.items())),
        "sessions": sessions,
        "tool_groups": groups,
        "tool_ports": ports,
        "ingress": {"mirror0": dict(ipackets=len(packets), imissed=0, ierrors=0, rx_nombuf=0)},
        "mbufs_in_use_at_exit": 0,
    }
    return Expectation(outcomes=outcomes, fates=fates, ports=emitted, counters=counters)
