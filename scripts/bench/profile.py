#!/usr/bin/env python3
"""Where a worker's time goes, by source file of this repository.

    perf record -e cpu-clock -F 4000 -p $(pgrep -x broker) -o perf.data -- sleep 5
    scripts/bench/profile.py perf.data [--comm rte-worker-1] [--binary target/release/broker]

Each sample of the worker thread is attributed to the innermost frame of its inline chain
(`addr2line -i`) whose file is in this repository, so that library code inlined into a stage
(atomics, integer arithmetic, iterators) counts for that stage; a sample in another object
(a DPDK driver, libc, the kernel) counts for that object. Prints the share of each, largest
first. Needs perf and binutils (addr2line, readelf).
"""

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path


def text_segment(binary):
    """(file offset, virtual address) of the executable LOAD segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
            return int(fields[1], 16), int(fields[2], 16)
    sys.exit(f"profile.py: no executable segment in {binary}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="perf.data of the broker's process")
    parser.add_argument("--comm", default="rte-worker-1", help="the worker thread's name")
    parser.add_argument("--binary", default="target/release/broker")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    repo = str(Path(__file__).resolve().parents[2]) + "/"

    mmaps = subprocess.run(["perf", "script", "-i", args.data, "--show-mmap-events"],
                           capture_output=True, text=True).stdout
    mapping = None
    for line in mmaps.splitlines():
        m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*\]: r-xp (\S+)", line)
        if m and m.group(4) == binary:
            mapping = (int(m.group(1), 16), int(m.group(3), 16))
    if mapping is None:
        sys.exit(f"profile.py: {binary} is not mapped executable in {args.data}")
    start, pgoff = mapping
    seg_off, seg_vaddr = text_segment(binary)

    samples = []
    script = subprocess.run(["perf", "script", "-i", args.data, "--comm", args.comm, "-G",
                             "-F", "ip,dso"], capture_output=True, text=True).stdout
    for line in script.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            samples.append((int(fields[0], 16), fields[1].strip("()")))
    if not samples:
        sys.exit(f"profile.py: no samples of thread {args.comm}")

    def vaddr(ip):
        return ip - start + pgoff - seg_off + seg_vaddr

    ours = sorted({vaddr(ip) for ip, dso in samples if dso == binary})
    out = subprocess.run(["addr2line", "-i", "-f", "-a", "-e", binary] + [hex(a) for a in ours],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    where = {}
    address, frames = None, []

    def settle():
        if address is None:
            return
        files = [loc.rsplit(":", 1)[0] for _, loc in frames]
        inside = [f for f in files if f.startswith(repo)]
        where[address] = inside[0][len(repo):] if inside else "outside the repository"

    i = 0
    while i < len(out):
        if out[i].startswith("0x"):
            settle()
            address, frames = int(out[i], 16), []
            i += 1
        else:
            frames.append((out[i], out[i + 1] if i + 1 < len(out) else "?:0"))
            i += 2
    settle()

    count = collections.Counter()
    for ip, dso in samples:
        count[where[vaddr(ip)] if dso == binary else Path(dso).name] += 1
    print(f"{len(samples)} samples of {args.comm}")
    for name, n in count.most_common(args.top):
        print(f"{100 * n / len(samples):6.2f} %  {name}")


if __name__ == "__main__":
    main()
