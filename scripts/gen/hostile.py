#!/usr/bin/python3
"""hostile: write a capture of malformed and adversarial mirror packets, and the outcome each must get.

Deterministic (no clock, no randomness): the same command always writes the same bytes. Headers are
built with `struct` (scripts/gen/adversarial/wire.py), so that every lie is exactly the one intended;
the catalogue (scripts/gen/adversarial/catalogue.py) says, for every packet, the outcome the broker's
documentation promises and which sentence decides it. No third-party module is needed.
"""

import argparse
import collections
import json
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adversarial import catalogue  # noqa: E402

FORMAT_VERSION = 1
PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
CAPTURE_START = 1_700_000_000
PACKET_INTERVAL_US = 10


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write(out: Path, packets) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as pcap:
        pcap.write(struct.pack("<IHHiIII", PCAP_MAGIC_MICROSECONDS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        for index, packet in enumerate(packets):
            micros = index * PACKET_INTERVAL_US
            pcap.write(struct.pack("<IIII", CAPTURE_START + micros // 1_000_000, micros % 1_000_000,
                                   len(packet.frame), len(packet.frame)))
            pcap.write(packet.frame)

    expected = collections.Counter(p.reason or p.outcome for p in packets)
    kinds = {}
    for p in packets:
        entry = kinds.setdefault(p.kind, {"outcome": p.reason or p.outcome, "packets": 0})
        if entry["outcome"] != (p.reason or p.outcome):
            entry["outcome"] = "mixed"
        entry["packets"] += 1
    meta = {
        "generator": "scripts/gen/hostile.py",
        "format_version": FORMAT_VERSION,
        "file": out.name,
        "config": {
            "allowed_sources": catalogue.ALLOWED_SOURCES,
            "vxlan_ports": [4789],
            "geneve_ports": [6081],
            "sessions": [{"name": name, "vni": vni} for name, vni in catalogue.SESSIONS],
            "synthetic_destination": catalogue.SYNTHETIC_DESTINATION.hex(),
            "synthetic_source": catalogue.SYNTHETIC_SOURCE.hex(),
        },
        "packet_count": len(packets),
        "kind_count": len(kinds),
        "expected_outcomes": dict(sorted(expected.items())),
        "kinds": kinds,
    }
    lines = []
    for index, p in enumerate(packets):
        lines.append(_json({"index": index, "kind": p.kind, "what": p.what, "outcome": p.outcome,
                            "reason": p.reason, "doc": p.doc, "frame_len": len(p.frame), "delivered": p.delivered}))
    header = json.dumps(meta, sort_keys=True, indent=1)
    with open(out.with_name(out.name + ".json"), "w", encoding="utf-8") as sidecar:
        sidecar.write(header[:-2] + ',\n "packets": [\n' + ",\n".join(lines) + "\n ]\n}\n")
    return meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="hostile.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0],
        epilog="""output:
  OUT        classic pcap, Ethernet, microsecond timestamps 10 us apart from 2023-11-14 22:13:20 UTC
  OUT.json   the sidecar: the broker config the expectations assume (allowlist, ports, sessions),
             expected_outcomes (packets per outcome label or malformed reason), kinds, and one
             object per packet, one per line: index, kind, what, outcome (delivered, source_denied,
             not_tunnel, unknown_session, malformed), reason, doc (the documentation that decides),
             frame_len, delivered (offset and len of the frame a tool receives, vni, mirror_source,
             depth, synthetic_ethertype when a synthetic Ethernet header goes in front)

example:
  /usr/bin/python3 scripts/gen/hostile.py -o samples/hostile.pcap
""")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="pcap file to write")
    args = parser.parse_args(argv)
    meta = write(args.output, catalogue.build())
    print(f"{args.output}: {meta['packet_count']} packets of {meta['kind_count']} kinds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
