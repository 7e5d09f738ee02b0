#!/usr/bin/env python3
"""Prepare mirror captures for the end-to-end bench: spread them over N session VNIs and drop the
second copies of packets mirrored at both ends.

VNIs: the mirror generator's `min-size` and `imix` profiles use the four sessions of its `aws`
profile; the bench runs a broker with 64 sessions, and the packets should spread over all of
them, as the traffic of 64 mirrored ENIs would. Each packet's new VNI is
`BASE + (outer UDP source port mod N)`: AWS derives the outer source port from the mirrored
flow, so every packet of one flow stays in one session and consecutive packets mostly change
session (the broker's last-VNI cache gets no free ride).

Copies: the `aws` profile mirrors some conversations at both ends, so about 5 % of its packets
are the second copy of an inner packet. The bench wants one packet out per packet in (as
testpmd forwards), so it drops every packet whose inner packet (from L3 on, TTL / hop limit and
IPv4 checksum blanked, as the broker's dedup key) already appeared in any of the inputs.

Only IPv4 outer headers without VLAN tags carrying VXLAN to UDP 4789 are rewritten (all the
packets of those profiles); anything else is copied unchanged and counted. Classic pcap in,
classic pcap out, standard library only.

    spread_vnis.py [--sessions 64] [--base 1000] IN.pcap OUT.pcap [IN2.pcap OUT2.pcap ...]

Several input/output pairs share one record of inner packets seen (the files of a `--split`
capture: the two copies of a packet are in different files).
"""

import argparse
import struct
import sys

VXLAN_PORT = 4789


def vxlan_inner_offset(frame):
    """Offset of the inner Ethernet frame of an untagged IPv4/UDP 4789 packet, else None."""
    if len(frame) < 14 + 20 + 8 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[14] >> 4 != 4 or frame[23] != 17 or ihl < 20:
        return None
    udp = 14 + ihl
    if len(frame) < udp + 16 or struct.unpack_from("!H", frame, udp + 2)[0] != VXLAN_PORT:
        return None
    return udp + 16


def normalised_inner_l3(inner):
    """The inner packet from L3 on with the fields mirrored copies differ in blanked."""
    l3 = bytearray(inner[14:])
    if len(l3) >= 20 and l3[0] >> 4 == 4:
        l3[8] = 0  # TTL
        l3[10:12] = b"\x00\x00"  # header checksum
    elif len(l3) >= 40 and l3[0] >> 4 == 6:
        l3[7] = 0  # hop limit
    return bytes(l3)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    records = []
    at = 24
    while at + 16 <= len(data):
        header = data[at : at + 16]
        incl = struct.unpack_from(endian + "I", header, 8)[0]
        records.append((header, bytearray(data[at + 16 : at + 16 + incl])))
        at += 16 + incl
    return data[:24], records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--base", type=int, default=1000)
    parser.add_argument("files", nargs="+", help="IN OUT pairs")
    args = parser.parse_args()
    if len(args.files) % 2:
        parser.error("give input/output pairs")

    seen = set()
    for src, dst in zip(args.files[0::2], args.files[1::2]):
        header, records = read_pcap(src)
        out = bytearray(header)
        kept = dropped = untouched = 0
        for record_header, frame in records:
            inner = vxlan_inner_offset(frame)
            if inner is None:
                untouched += 1
            else:
                key = normalised_inner_l3(frame[inner:])
                if key in seen:
                    dropped += 1
                    continue
                seen.add(key)
                sport = struct.unpack_from("!H", frame, inner - 16)[0]
                vni = args.base + sport % args.sessions
                frame[inner - 4 : inner - 1] = vni.to_bytes(3, "big")
            out += record_header + frame
            kept += 1
        with open(dst, "wb") as f:
            f.write(out)
        print(
            f"spread_vnis: {dst}: {kept} packets over VNIs {args.base}..{args.base + args.sessions - 1}, "
            f"{dropped} second copies dropped, {untouched} not VXLAN (unchanged)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
