#!/usr/bin/python3
"""fuzzseeds: write the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the samples.

Deterministic; run from anywhere after regenerating a sample:

    /usr/bin/python3 scripts/gen/fuzzseeds.py

`burst` and `burst_split` inputs use the format of `pipelines/src/fuzzing.rs`: a flags byte, then
records of a big-endian u16 (top 2 bits: segmentation, low 14 bits: length) and the packet. Seeds:
each packet of samples/hostile.pcap alone (jumbo ones cut into 2048-byte segments, as DPDK's
mbufs), the whole hostile capture in one input, runs of 40 packets of samples/aws-mirror.pcap,
and frames for the ingress port's own addresses (ARP, ICMP echo, IPv6 neighbour solicitation, a TCP
health check: outcome `control`) mixed with mirrored traffic.
`config` seeds are the shipped configs. Existing seed files of these names are rewritten; files
the fuzzer added (named by their SHA-1) are left alone.
"""

import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
ONE, MBUFS_2048, SMALL_64, HALVES = range(4)
MAX_RECORD = 0x3FFF
RUN = 40


# Refusals worth starting from: each reaches a different check of the config crate.
MINIMAL = """[broker]
name = "seed"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "s"
vni = 1
tools = ["g"]
[[tool_group]]
name = "g"
ports = [{ name = "g-1", device = "net_null1" }]
"""
BROKEN_CONFIGS = {
    "minimal.toml": MINIMAL,
    "broken-unknown-key.toml": MINIMAL.replace('name = "seed"', 'name = "seed"\ncolour = "blue"'),
    "broken-vni-too-large.toml": MINIMAL.replace("vni = 1", "vni = 16777216"),
    "broken-unknown-tool.toml": MINIMAL.replace('tools = ["g"]', 'tools = ["h"]'),
    "broken-duplicate-port.toml": MINIMAL.replace('device = "net_null1"', 'device = "net_null0"'),
    "broken-not-toml.toml": "[broker\nname = ",
    "passing-untunneled.toml": MINIMAL + '[decap]\npass_untunneled = true\nuntunneled_session = "s"\n'
    'allowed_sources = ["10.0.0.0/8", "fd00::/8"]\ngeneve_ports = [6081, 6082]\n[dedup]\nwindow = "5ms"\n',
}


# The fuzzed ingress port (pipelines/src/fuzzing.rs, PLAIN): its MAC and addresses.
INGRESS_MAC = bytes([0x02, 0xF0, 0x22, 0, 0, 0x10])
PEER_MAC = bytes([0x02, 0xF0, 0x22, 0, 0, 0x01])
OWN_V4 = bytes([10, 0, 9, 10])
PEER_V4 = bytes([10, 0, 9, 1])
OWN_V6 = bytes.fromhex("fd000009000000000000000000000010")
PEER_V6 = bytes.fromhex("fd000009000000000000000000000001")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(protocol: int, payload: bytes, dst=OWN_V4) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, protocol, 0, PEER_V4, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return INGRESS_MAC + PEER_MAC + b"\x08\x00" + header + payload


def local_frames():
    """Frames a network neighbour sends the broker's own address: each is outcome `control`."""
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, PEER_MAC, PEER_V4, bytes(6), OWN_V4)
    yield "arp-request", b"\xff" * 6 + PEER_MAC + b"\x08\x06" + arp
    echo = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"ping"
    echo = echo[:2] + struct.pack("!H", checksum(echo)) + echo[4:]
    yield "icmp-echo", ipv4(1, echo)
    syn = struct.pack("!HHIIBBHHH", 40000, 8080, 1, 0, 0x50, 0x02, 65535, 0, 0)
    yield "tcp-health-check", ipv4(6, syn)
    # Neighbour solicitation to the solicited-node multicast group of OWN_V6.
    group = bytes.fromhex("ff0200000000000000000001ff") + OWN_V6[13:]
    ns = struct.pack("!BBHI", 135, 0, 0, 0) + OWN_V6 + struct.pack("!BB6s", 1, 1, PEER_MAC)
    pseudo = PEER_V6 + group + struct.pack("!I3xB", len(ns), 58)
    ns = ns[:2] + struct.pack("!H", checksum(pseudo + ns)) + ns[4:]
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(ns), 58, 255, PEER_V6, group)
    yield "ipv6-neighbour-solicitation", b"\x33\x33" + group[12:] + PEER_MAC + b"\x86\xdd" + ip6 + ns


def read_pcap(path: Path):
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    assert magic == 0xA1B2C3D4, f"{path}: not a little-endian microsecond pcap"
    offset, frames = 24, []
    while offset < len(data):
        _, _, caplen, _ = struct.unpack_from("<IIII", data, offset)
        frames.append(data[offset + 16:offset + 16 + caplen])
        offset += 16 + caplen
    return frames


def encode(flags: int, packets) -> bytes:
    out = bytearray([flags])
    for segmentation, packet in packets:
        packet = packet[:MAX_RECORD]
        out += struct.pack("!H", (segmentation << 14) | len(packet)) + packet
    return bytes(out)


def segmentation_for(frame: bytes) -> int:
    return MBUFS_2048 if len(frame) > 2048 else ONE


def write(target: str, name: str, data: bytes):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def main() -> int:
    hostile = read_pcap(ROOT / "samples" / "hostile.pcap")
    sidecar = json.loads((ROOT / "samples" / "hostile.pcap.json").read_text())
    kinds = [p["kind"] for p in sidecar["packets"]]
    seen = {}
    for frame, kind in zip(hostile, kinds):
        n = seen.get(kind, 0)
        seen[kind] = n + 1
        write("burst", f"hostile-{kind}-{n}", encode(0, [(segmentation_for(frame), frame)]))
    everything = [(segmentation_for(f), f) for f in hostile]
    write("burst", "hostile-all", encode(0, everything))
    write("burst", "hostile-all-passing-ports-down", encode(3, everything))
    write("burst", "hostile-all-small-segments", encode(1, [(SMALL_64, f) for f in hostile]))
    for flags in (0x54, 0xA7):
        write("burst_split", f"hostile-all-flags-{flags:02x}", encode(flags, everything))

    aws = read_pcap(ROOT / "samples" / "aws-mirror.pcap")
    for start in range(0, len(aws), RUN * 3):
        run = aws[start:start + RUN]
        segmentation = (start // (RUN * 3)) % 4
        write("burst", f"aws-mirror-{start:03d}", encode(0, [(segmentation, f) for f in run]))
        write("burst_split", f"aws-mirror-{start:03d}", encode(start & 0xFF, [(ONE, f) for f in run]))

    local = list(local_frames())
    for name, frame in local:
        write("burst", f"local-{name}", encode(0, [(ONE, frame)]))
    mixed = [(ONE, f) for pair in zip([f for _, f in local], aws) for f in pair]
    write("burst", "local-mixed-with-mirror", encode(0, mixed))
    write("burst_split", "local-mixed-with-mirror", encode(0x31, mixed))

    configs = [ROOT / "config" / "lab.toml"] + sorted((ROOT / "config" / "examples").glob("*.toml"))
    for path in configs:
        write("config", path.name, path.read_bytes())
    for name, text in BROKEN_CONFIGS.items():
        write("config", name, text.encode())
    total = sum(1 for _ in CORPUS.rglob("*") if _.is_file())
    print(f"{CORPUS}: {total} seed files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
