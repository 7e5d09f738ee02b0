#!/usr/bin/python3
"""Mirror sender of the network lab: replays a capture of mirrored traffic as mirrored VXLAN to
the broker's address, through this namespace's kernel UDP stack.

    send.py CAPTURE --to ADDRESS [--rate PPS] [--repeat N] [--resolve-timeout SECONDS]

Each packet of CAPTURE that is VXLAN or GENEVE carrying Ethernet (the outermost tunnel, over IPv4
or IPv6) is sent again as VXLAN with its original VNI to ADDRESS:4789, from the UDP source port
the original used (AWS sets it from a hash of the inner flow, so the outer 5-tuples stay as the
mirror made them). Other packets are skipped and counted. The kernel sends them, so the peer must
first resolve ADDRESS by ARP (IPv4) or neighbour discovery (IPv6): after the first datagram the
sender waits for the neighbour entry, and fails with a message naming the address if it never
resolves (the broker did not answer). Then it goes on at RATE packets per second.

Prints a JSON report on stdout: packets sent, skipped, send errors, per VNI, bytes, the seconds
it took, and the MAC address ADDRESS resolved to. Exits 1 when the address did not resolve or a
send failed.
"""

import argparse
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time

# The lab's shared module, beside this file; no __pycache__ left in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirror import VXLAN_PORT, mirrored, read_pcap, vxlan_header  # noqa: E402

RESOLVED = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}


def neighbour(address):
    """(state, MAC) of this namespace's neighbour entry for ADDRESS, or (None, None)."""
    family = "-6" if address.version == 6 else "-4"
    command = ["ip", family, "neigh", "show", str(address)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        words = line.split()
        if words and words[0] == str(address):
            mac = words[words.index("lladdr") + 1] if "lladdr" in words else None
            return words[-1], mac
    return None, None


def wait_resolved(address, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, mac = neighbour(address)
        if state in RESOLVED and mac:
            return mac
        time.sleep(0.02)
    state, _ = neighbour(address)
    sys.exit(
        f"send.py: {address} did not resolve within {timeout} s (neighbour state {state}): "
        "nobody answered ARP/ND for it"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("capture")
    parser.add_argument("--to", required=True, type=ipaddress.ip_address, help="the broker's address")
    parser.add_argument("--rate", type=float, default=2000.0, help="packets per second (default 2000)")
    parser.add_argument("--repeat", type=int, default=1, help="send the capture this many times")
    parser.add_argument("--resolve-timeout", type=float, default=10.0)
    args = parser.parse_args()

    packets, skipped = [], 0
    for frame in read_pcap(args.capture):
        m = mirrored(frame)
        if m is None:
            skipped += 1
        else:
            packets.append(m)
    family = socket.AF_INET6 if args.to.version == 6 else socket.AF_INET
    sockets = {}

    def socket_for(port):
        if port not in sockets:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
            sockets[port] = s
        return sockets[port]

    report = {"sent": 0, "skipped": skipped * args.repeat, "errors": 0, "bytes": 0, "by_vni": {}}
    destination = (str(args.to), VXLAN_PORT)
    interval = 1.0 / args.rate
    start = time.monotonic()
    resolved_mac = None
    for _ in range(args.repeat):
        for vni, inner, source_port in packets:
            if resolved_mac is not None:
                # Paced against the schedule, not the previous send: no drift over a long run.
                delay = start + report["sent"] * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                socket_for(source_port).sendto(vxlan_header(vni) + inner, destination)
            except OSError as e:
                report["errors"] += 1
                print(f"send.py: sending to {args.to}: {e}", file=sys.stderr)
                continue
            report["sent"] += 1
            report["bytes"] += len(inner)
            report["by_vni"][str(vni)] = report["by_vni"].get(str(vni), 0) + 1
            if resolved_mac is None:
                # The kernel holds this first datagram until the address resolves.
                resolved_mac = wait_resolved(args.to, args.resolve_timeout)
                start = time.monotonic()
    report["seconds"] = round(time.monotonic() - start, 3)
    report["resolved_mac"] = resolved_mac
    print(json.dumps(report))
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
