"""Writing the capture(s) and their JSON sidecars.

The pcap is written here, not by scapy, so that every byte is under control: classic pcap, microsecond
timestamps, link type Ethernet, and timestamps that are a function of the packet index (packet n is
captured at CAPTURE_START + n × PACKET_INTERVAL_US), never of the clock.

`--split K` models a NIC's RSS: K files, each packet in the file its hash picks, in the original
order. What is hashed is `--split-by`:

* `outer` (the default): the outer 5-tuple, so one direction of an outer flow stays in one file. Two
  copies of one packet (both ends mirrored) must land in different files, as they would on two RX
  queues: for the sources of such pairs the hash leaves the source address out and adds the source's
  colour (0 or 1, different for the two ends, see `scenario.mirror_pair_colours`), which puts the
  copies in files h and h+1 mod K while still keeping every outer flow in one file.
* `lb`: the outer 5-tuple, as a load balancer in front of several brokers hashes flows (AWS NLB and
  GWLB hash the 5-tuple of UDP): one outer flow, one file, and nothing keeps the two copies of a
  packet apart or together, so they share a file or not as the hash falls. With K = brokers ×
  queues, broker `b` takes files b·queues … b·queues + queues − 1, one per RX queue (its NIC's RSS).
* `inner`: the inner 5-tuple, symmetrically (the protocol and the two address/port ends sorted), as a
  NIC hashing the inner headers with a symmetric Toeplitz key does: both directions of a connection
  and both copies of a mirrored packet land in one file, in their original order. Without ports
  (ICMP, ICMPv6) only the addresses count, as in RSS; an inner frame that is not IP would be hashed
  as `outer` does (no profile has one today).

Each output file `F` gets a sidecar `F.json`: what the generator meant to write (profile, sessions,
one object per packet, one per line). Sidecars are streamed, so large captures need no memory.
"""

import json
import struct
from pathlib import Path

from .net import stable_hash

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
CAPTURE_START = 1_700_000_000  # 2023-11-14 22:13:20 UTC, an arbitrary fixed origin
PACKET_INTERVAL_US = 10  # 100,000 packets per second

# What `--split` hashes (see the module documentation).
SPLIT_BY_OUTER, SPLIT_BY_INNER, SPLIT_BY_LB = "outer", "inner", "lb"
SPLIT_BY = (SPLIT_BY_OUTER, SPLIT_BY_INNER, SPLIT_BY_LB)
# IP protocols whose ports a NIC's RSS hashes (TCP, UDP); for the others only the addresses count.
PORTED_PROTOCOLS = frozenset({6, 17})


def timestamp(index: int):
    micros = index * PACKET_INTERVAL_US
    return CAPTURE_START + micros // 1_000_000, micros % 1_000_000


def _symmetric_inner_flow(describe: dict):
    """(protocol, lower end, higher end) of the packet's inner flow, the same for both directions;
    None when the inner frame is not IP."""
    src, dst, proto = (describe.get(key) for key in ("inner_src", "inner_dst", "inner_proto"))
    if src is None or dst is None or proto is None:
        return None
    if proto in PORTED_PROTOCOLS:
        ends = sorted([(src, describe["inner_sport"]), (dst, describe["inner_dport"])])
    else:
        ends = sorted([(src,), (dst,)])
    return (proto, *ends)


def split_paths(path: Path, count: int):
    """out.pcap → out.0.pcap … out.{count-1}.pcap (a path without .pcap gets .0 … appended)."""
    if path.suffix == ".pcap":
        return [path.with_name(f"{path.stem}.{i}.pcap") for i in range(count)]
    return [path.with_name(f"{path.name}.{i}") for i in range(count)]


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class _Output:
    """One pcap file and its sidecar, written as packets come."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.count = 0
        self.pcap = open(path, "wb")
        self.pcap.write(struct.pack("<IHHiIII", PCAP_MAGIC_MICROSECONDS, *PCAP_VERSION, 0, 0,
                                    SNAPLEN, LINKTYPE_ETHERNET))
        self.sidecar = open(sidecar_path(path), "w", encoding="utf-8")
        # The sidecar is one JSON object; "packets" is streamed one object per line and the count
        # follows it.
        header = _json(meta)
        self.sidecar.write(header[:-1] + ',"packets":[\n')

    def write(self, record, describe: dict):
        seconds, micros = timestamp(record.index)
        frame = record.frame
        self.pcap.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
        self.pcap.write(frame)
        describe["file_index"] = self.count
        self.sidecar.write(("" if self.count == 0 else ",\n") + _json(describe))
        self.count += 1

    def close(self):
        self.pcap.close()
        self.sidecar.write(f'\n],"packet_count":{self.count}}}\n')
        self.sidecar.close()


class Outputs:
    """The file, or the `split` files, of one run."""

    def __init__(self, path: Path, split, colours: dict, meta: dict, split_by: str = SPLIT_BY_OUTER):
        if split_by not in SPLIT_BY:
            raise ValueError(f"split by {split_by!r}: one of {', '.join(SPLIT_BY)}")
        self.split = split
        self.split_by = split_by
        self.colours = colours
        paths = [path] if split is None else split_paths(path, split)
        self.outputs = []
        for number, file_path in enumerate(paths):
            file_meta = dict(meta, file=file_path.name, split=self._split_meta(number))
            self.outputs.append(_Output(file_path, file_meta))
        self.file_of_first_copy = {}

    def _split_meta(self, number: int):
        if self.split is None:
            return None
        meta = {"index": number, "count": self.split}
        # Only when not the default, so that outer splits keep the sidecars they always had.
        if self.split_by != SPLIT_BY_OUTER:
            meta["by"] = self.split_by
        return meta

    def paths(self):
        return [output.path for output in self.outputs]

    def _file_for(self, record) -> int:
        if self.split is None:
            return 0
        if self.split_by == SPLIT_BY_INNER:
            inner = _symmetric_inner_flow(record.describe)
            if inner is not None:
                return stable_hash("rss-inner", *inner) % self.split
        src, dst, proto, sport, dport = record.outer_flow
        if self.split_by == SPLIT_BY_LB:
            return stable_hash("lb", src, dst, proto, sport, dport) % self.split
        colour = self.colours.get(src)
        if colour is None:
            return stable_hash("rss", src, dst, proto, sport, dport) % self.split
        return (stable_hash("rss-pair", dst, proto, sport, dport) + colour) % self.split

    def write(self, record):
        number = self._file_for(record)
        if record.copy_of is not None:
            first = self.file_of_first_copy.pop(record.copy_of)
            # On the outer hash the copies' sources differ by colour, so a shared file is a bug;
            # the inner hash puts them together on purpose.
            if self.split is not None and self.split_by == SPLIT_BY_OUTER and number == first:
                raise RuntimeError(f"packet {record.index} and its copy {record.copy_of} fell in one "
                                   f"file; copies must be split apart")
        else:
            # Remember only until the copy (if any) comes; it is always the next packet.
            self.file_of_first_copy = {record.index: number}
        describe = dict(record.describe, index=record.index, copy_of=record.copy_of,
                        second_copy=record.copy_of is not None)
        if self.split is not None:
            describe["split_file"] = number
        self.outputs[number].write(record, describe)

    def close(self):
        for output in self.outputs:
            output.close()
