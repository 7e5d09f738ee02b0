#!/usr/bin/python3
"""A stand-in for the broker in the network lab, made of the kernel's sockets. NOT the broker: it
exists so the lab's harness (topology, sender, receivers, decoders, comparisons) can be proven on
its own, and so a failing broker test can be told apart from a failing harness.

    standin.py CONFIG

Run inside the broker's namespace built with `scripts/netlab.sh up NAME --broker kernel`, where
the kernel owns the addresses of the config's addressed ports: it answers ARP, neighbour
discovery and ping, routes through the gateway and builds the outer IP headers. The stand-in
reads the same broker config a test gives the broker and does, for the subset it understands,
what issue 11 asks of the broker:

- receives VXLAN on UDP 4789 at the ingress addresses, from the `[decap] allowed_sources` only;
- sends each inner frame to every tool group of the session of its VNI, to the port a symmetric
  hash of the inner flow picks (any `balance` is treated as "flow"; no filters, dedup or slicing);
- encapsulates as the port's `tunnel` says, out of its `via` port's address: VXLAN or GENEVE (with
  the broker's option: class 0xFFF0, type 1, session VNI | direction | FNV-1a of the broker name)
  over UDP from source port 49152 + hash mod 16384 with the IPv4 checksum 0 (SO_NO_CHECK), L2GRE
  (key) and ERSPAN II (per-port sequence from 0, En = 3, T on cut copies) over a raw GRE socket;
  DF set (IP_PMTUDISC_DO), TTL 64 (the kernel's default);
- cuts an inner frame that would not fit the via port's `mtu` (default 1500) and counts it.

Prints "stand-in ready" on stderr once listening; on SIGTERM or SIGINT prints a JSON report on
stdout (received, delivered, per tool port: copies, bytes, egress_truncated) and exits 0.
"""

import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import tomllib
import zlib

# The lab's shared module, beside this file; no __pycache__ left in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirror import ETH_P_TEB, VXLAN_PORT, flow_key, ip_of, vxlan_header  # noqa: E402

SO_NO_CHECK = 11  # linux/asm-generic/socket.h: send UDP over IPv4 without a checksum
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # linux/in.h: set DF, never fragment
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO = 23, 2
IPPROTO_GRE = 47
ETH_P_ERSPAN = 0x88BE
OPTION_CLASS, OPTION_TYPE = 0xFFF0, 0x01


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


class Port:
    """A tunnel tool port and its sockets."""

    def __init__(self, spec, via, broker_hash):
        self.name = spec["name"]
        self.tunnel = spec["tunnel"]
        self.remote = ipaddress.ip_address(spec["remote"])
        self.vni = spec.get("vni", "session")
        self.key = spec.get("key")
        self.session_id = spec.get("session_id")
        self.dst_port = spec.get("dst_port", 6081 if self.tunnel == "geneve" else VXLAN_PORT)
        self.family = socket.AF_INET6 if self.remote.version == 6 else socket.AF_INET
        self.source = via["addresses"][self.remote.version]
        self.mtu = via["mtu"]
        self.broker_hash = broker_hash
        self.sequence = 0
        self.sockets = {}
        self.copies = self.bytes = self.truncated = 0

    def overhead(self):
        """Bytes between the outer IP header and the inner frame."""
        gre = 8 if self.key is not None else 4
        return {"vxlan": 16, "geneve": 28, "l2gre": gre, "erspan2": 16}[self.tunnel]

    def socket(self, source_port):
        if source_port not in self.sockets:
            if self.tunnel in ("vxlan", "geneve"):
                s = socket.socket(self.family, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self.family == socket.AF_INET:
                    s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
            else:
                s = socket.socket(self.family, socket.SOCK_RAW, IPPROTO_GRE)
            if self.family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
            s.bind((str(self.source), source_port))
            self.sockets[source_port] = s
        return self.sockets[source_port]

    def send(self, inner, session_vni, direction, flow_hash):
        ip_header = 40 if self.family == socket.AF_INET6 else 20
        room = self.mtu - ip_header - self.overhead()
        cut = len(inner) > room
        if cut:
            inner = inner[:room]
            self.truncated += 1
        vni = session_vni if self.vni == "session" else self.vni
        if self.tunnel == "vxlan":
            header = vxlan_header(vni)
        elif self.tunnel == "geneve":
            option = struct.pack("!HBB", OPTION_CLASS, OPTION_TYPE, 2)
            option += struct.pack("!II", session_vni << 8 | direction, self.broker_hash)
            header = struct.pack("!BBHI", len(option) // 4, 0, ETH_P_TEB, vni << 8) + option
        elif self.tunnel == "l2gre":
            if self.key is None:
                header = struct.pack("!HH", 0, ETH_P_TEB)
            else:
                header = struct.pack("!HHI", 0x2000, ETH_P_TEB, self.key)
        else:
            session_id = self.session_id if self.session_id is not None else session_vni % 1024
            # GRE with only S; ERSPAN II: version 1, VLAN 0, COS 0, En 3, T, session id; index 0.
            word = 1 << 28 | 3 << 11 | int(cut) << 10 | session_id
            header = struct.pack("!HHIII", 0x1000, ETH_P_ERSPAN, self.sequence, word, 0)
            self.sequence = (self.sequence + 1) & 0xFFFFFFFF
        udp = self.tunnel in ("vxlan", "geneve")
        source_port = 49152 + flow_hash % 16384 if udp else 0
        destination = (str(self.remote), self.dst_port if udp else 0)
        self.socket(source_port).sendto(header + inner, destination)
        self.copies += 1
        self.bytes += len(inner)


def load(path):
    with open(path, "rb") as f:
        config = tomllib.load(f)
    addressed = {}
    for port in config.get("ingress", []) + config.get("uplink", []):
        if "address" in port:
            addresses = {}
            for text in port["address"]:
                interface = ipaddress.ip_interface(text)
                addresses[interface.version] = interface.ip
            addressed[port["name"]] = {"addresses": addresses, "mtu": port.get("mtu", 1500)}
    broker_hash = fnv1a32(config["broker"]["name"])
    groups = {}
    for group in config.get("tool_group", []):
        ports = [Port(p, addressed[p["via"]], broker_hash) for p in group["ports"] if "tunnel" in p]
        if len(ports) != len(group["ports"]):
            sys.exit(f"standin.py: tool group {group['name']} has a port that is not a tunnel")
        groups[group["name"]] = ports
    sessions = {}
    for session in config.get("session", []):
        source_ips = {ipaddress.ip_address(a).packed for a in session.get("source_ips", [])}
        sessions[session["vni"]] = ([groups[g] for g in session["tools"]], source_ips)
    allowed = [ipaddress.ip_network(n) for n in config.get("decap", {}).get("allowed_sources", [])]
    ingress = [
        address
        for port in config["ingress"]
        if port["name"] in addressed
        for address in addressed[port["name"]]["addresses"].values()
    ]
    return ingress, allowed, sessions, groups


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ingress, allowed, sessions, groups = load(sys.argv[1])
    selector = selectors.DefaultSelector()
    for address in ingress:
        s = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((str(address), VXLAN_PORT))
        selector.register(s, selectors.EVENT_READ)
    report = {"received": 0, "delivered": 0, "source_denied": 0, "unknown_session": 0, "malformed": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    print("stand-in ready", file=sys.stderr, flush=True)
    while not stop:
        for key, _ in selector.select(timeout=0.05):
            try:
                data, peer = key.fileobj.recvfrom(65535)
            except InterruptedError:
                continue
            report["received"] += 1
            if allowed and not any(ipaddress.ip_address(peer[0]) in n for n in allowed):
                report["source_denied"] += 1
                continue
            if len(data) < 8 + 14 or not data[0] & 0x08:
                report["malformed"] += 1
                continue
            vni, inner = int.from_bytes(data[4:7], "big"), data[8:]
            if vni not in sessions:
                report["unknown_session"] += 1
                continue
            tools, source_ips = sessions[vni]
            ip = ip_of(inner)
            direction = 0
            if ip is not None and ip[1] in source_ips:
                direction = 1
            elif ip is not None and ip[0] in source_ips:
                direction = 2
            flow_hash = zlib.crc32(repr(flow_key(inner)).encode())
            for ports in tools:
                ports[flow_hash % len(ports)].send(inner, vni, direction, flow_hash)
            report["delivered"] += 1
    report["tool_ports"] = [
        {"name": p.name, "copies": p.copies, "bytes": p.bytes, "egress_truncated": p.truncated}
        for ports in groups.values()
        for p in ports
    ]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
