"""A case on disk: `input.pcap`, `config.toml`, `expected/<port>.pcap`, `expected.json`.

Captures are classic pcap with microsecond timestamps that are a function of the frame index
(mirrorgen's `output.timestamp`), so a case is byte-identical from run to run. In the expected
pcaps a frame that the mirror source or a slice cut short keeps its full length as the record's
original length, as a capture with a snap length would: Wireshark then shows it as cut, not as
malformed.

`expected.json`:

* `input`: one object per input frame: what it is (as built) and what must become of it;
* `ports`: per tool port, the frames it must emit in order: the input frame each comes from, its
  length and its full length (`wire_len`); the bytes are in `expected/<port>.pcap`;
* `counters`: the exit summary's counters (`broker run --summary-json`), every one of them:
  `outcomes` lists the outcomes and malformed reasons that count something (all others must be
  0), then every session, tool group and tool port by name.
"""

import json
import shutil
import struct
from pathlib import Path

from mirror.output import LINKTYPE_ETHERNET, PCAP_MAGIC_MICROSECONDS, PCAP_VERSION, SNAPLEN, timestamp

from .model import expect, render


def write_pcap(path: Path, records):
    """`records`: (frame bytes, original length) in order."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_MAGIC_MICROSECONDS, *PCAP_VERSION, 0, 0, SNAPLEN,
                              LINKTYPE_ETHERNET))
        for index, (frame, original) in enumerate(records):
            seconds, micros = timestamp(index)
            out.write(struct.pack("<IIII", seconds, micros, len(frame), max(original, len(frame))))
            out.write(frame)


def _line(value) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def expected_json(case, expectation) -> str:
    """Readable and diffable: one input frame, one emitted frame, one counter row per line."""
    parts = ["{", f' "case": {_line(case.name)},', f' "summary": {_line(case.summary)},', ' "input": [']
    rows = []
    for index, (packet, fate) in enumerate(zip(case.packets, expectation.fates)):
        rows.append("  " + _line({"frame": index, "len": len(packet.frame), "what": packet.note, "fate": fate}))
    parts.append(",\n".join(rows))
    parts.append(" ],")
    parts.append(' "ports": {')
    port_blocks = []
    for port, frames in expectation.ports.items():
        entries = ",\n".join("   " + _line({"input": e.input_index, "len": len(e.frame), "wire_len": e.wire_len})
                             for e in frames)
        port_blocks.append(f"  {_line(port)}: [" + ("\n" + entries + "\n  ]" if entries else "]"))
    parts.append(",\n".join(port_blocks))
    parts.append(" },")
    counters = expectation.counters
    parts.append(' "counters": {')
    lines = []
    for key, value in counters.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            inner = ",\n".join(f"   {_line(name)}: {_line(row)}" for name, row in value.items())
            lines.append(f"  {_line(key)}: {{\n{inner}\n  }}")
        else:
            lines.append(f"  {_line(key)}: {_line(value)}")
    parts.append(",\n".join(lines))
    parts.append(" }")
    parts.append("}")
    text = "\n".join(parts) + "\n"
    json.loads(text)  # the hand-made layout is JSON
    return text


def check_identities(case):
    """With dedup on, the expectation treats packets of one `identity` as copies and all others as
    different packets. Make sure no two different packets are in fact the same inner packet
    (same bytes from L3 on, TTL / hop limit and IPv4 checksum aside), which the broker would
    rightly drop as a duplicate."""
    if case.config.dedup_window is None:
        return
    owner = {}
    for packet in case.packets:
        if packet.delivered is None or packet.malformed is not None:
            continue
        frame = packet.delivered
        offset = 12
        while frame[offset:offset + 2] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00"):
            offset += 4
        l3 = bytearray(frame[offset + 2:])
        if l3[:1] and l3[0] >> 4 == 4 and len(l3) >= 20:
            l3[8], l3[10], l3[11] = 0, 0, 0
        elif l3[:1] and l3[0] >> 4 == 6 and len(l3) >= 40:
            l3[7] = 0
        key = bytes(l3)
        if owner.setdefault(key, packet.identity) != packet.identity:
            raise ValueError(f"case {case.name}: '{packet.note}' is the same inner packet as one of "
                             f"identity {owner[key]}: the expectation would be wrong")


def write_case(case, directory: Path):
    """Writes the case into `directory` (replaced if it exists); returns its expectation."""
    check_identities(case)
    expectation = expect(case.config, case.packets)
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "expected").mkdir(parents=True)
    write_pcap(directory / "input.pcap", [(p.frame, len(p.frame)) for p in case.packets])
    (directory / "config.toml").write_text(render(case.config), encoding="utf-8")
    for port, frames in expectation.ports.items():
        write_pcap(directory / "expected" / f"{port}.pcap", [(e.frame, e.wire_len) for e in frames])
    (directory / "expected.json").write_text(expected_json(case, expectation), encoding="utf-8")
    return expectation
