#!/usr/bin/env python3
"""Rewrite the VXLAN VNI of every packet of a mirror capture to one of N session VNIs.

The mirror generator's `min-size` and `imix` profiles use the four sessions of its `aws`
profile; the end-to-end bench runs a broker with 64 sessions, and the packets should spread
over all of them, as the traffic of 64 mirrored ENIs would. Each packet's new VNI is
`BASE + (outer UDP source port mod N)`: AWS derives the outer source port from the mirrored
flow, so every packet of one flow stays in one session and consecutive packets mostly change
session (the broker's last-VNI cache gets no free ride).

Only IPv4 outer headers without VLAN tags carrying VXLAN to UDP 4789 are rewritten (all the
packets of those profiles); anything else is copied unchanged and counted. Classic pcap in,
classic pcap out, standard library only.

    spread_vnis.py IN.pcap OUT.pcap [--sessions 64] [--base 1000]
"""

import argparse
import struct
import sys

VXLAN_PORT = 4789


def rewrite(frame: bytearray, sessions: int, base: int) -> bool:
    if len(frame) < 14 + 20 + 8 + 8 or frame[12:14] != b"\x08\x00":
        return False
    ihl = (frame[14] & 0x0F) * 4
    if frame[14] >> 4 != 4 or frame[23] != 17 or ihl < 20:
        return False
    udp = 14 + ihl
    if len(frame) < udp + 16:
        return False
    sport, dport = struct.unpack_from("!HH", frame, udp)
    if dport != VXLAN_PORT:
        return False
    vni = base + sport % sessions
    # VXLAN: flags(1) reserved(3) VNI(3) reserved(1)
    frame[udp + 8 + 4 : udp + 8 + 7] = vni.to_bytes(3, "big")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--base", type=int, default=1000)
    args = parser.parse_args()

    with open(args.input, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        print(f"{args.input}: not a classic pcap file", file=sys.stderr)
        return 1
    out = bytearray(data[:24])
    at, rewritten, kept = 24, 0, 0
    while at + 16 <= len(data):
        header = data[at : at + 16]
        incl = struct.unpack_from(endian + "I", header, 8)[0]
        frame = bytearray(data[at + 16 : at + 16 + incl])
        if rewrite(frame, args.sessions, args.base):
            rewritten += 1
        else:
            kept += 1
        out += header + frame
        at += 16 + incl
    with open(args.output, "wb") as f:
        f.write(out)
    print(
        f"spread_vnis: {args.output}: {rewritten} packets over VNIs {args.base}..{args.base + args.sessions - 1}, "
        f"{kept} left as they were",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
