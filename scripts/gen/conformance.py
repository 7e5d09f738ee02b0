#!/usr/bin/python3
"""conformance: write the broker's conformance corpus (tests/conformance/), or check it.

Each case directory gets the input capture, the broker config that replays it, and what the
broker must emit on every tool port and count in its exit summary, computed from how the input
was built (see corpus/__init__.py), never by running the broker. `tests/e2e/conformance.rs`
runs the real broker on every case and compares.

  /usr/bin/python3 scripts/gen/conformance.py            rewrite tests/conformance/
  /usr/bin/python3 scripts/gen/conformance.py --check    regenerate into a temporary directory and
                                                         compare byte for byte (exit 1 on a difference)

Run with Debian's interpreter (`/usr/bin/python3`), which sees the python3-scapy package.
"""

import argparse
import filecmp
import logging
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = REPO / "tests" / "conformance"

README_HEAD = """\
# Conformance corpus

Captures shaped like each cloud's mirror output, each with the broker config that replays it and
what the broker must do with every frame. **Generated**: do not edit; change
`scripts/gen/corpus/` and run

```sh
/usr/bin/python3 scripts/gen/conformance.py          # rewrite this directory
/usr/bin/python3 scripts/gen/conformance.py --check  # regenerate elsewhere, compare byte for byte
```

`scripts/gen/selftest.sh` runs the check, so a corpus that its generator no longer writes fails CI.

## A case

| file | what |
|---|---|
| `input.pcap` | the frames the broker receives, in order |
| `config.toml` | the broker config; `@CASE@` stands for the case directory, `@OUT@` for the directory the tool ports write into |
| `expected/<port>.pcap` | the frames each tool port must emit, in order (a frame cut by the mirror source or a slice keeps its full length as the record's original length) |
| `expected.json` | per input frame what it is and what must become of it; per port the frames (input index, length, full length); every counter of the exit summary (`broker run --summary-json`): outcomes and malformed reasons (those not listed are 0), sessions, tool groups, tool ports |

The expectation is computed by the generator from what it built (the inner frames, the session
each belongs to, what the filter decides on the flow it generated, which packet is a copy of which,
what slicing keeps), not by running the broker. Every case runs one worker, and every tool group has
one port or balances round-robin (copy *i* of a group goes to port *i* mod *n*), so the port of
every frame is known; stickiness of hashed balancing is checked by the other e2e tests.

`tests/e2e/conformance.rs` runs the real broker on each case (`cargo test -p broker --test e2e
conformance`), compares every port's output frame by frame and every counter exactly, and decodes
each output with tshark. To run a case by hand, from the repository root:

```sh
case=tests/conformance/aws-vxlan; mkdir -p /tmp/out
sed -e "s|@CASE@|$case|g" -e "s|@OUT@|/tmp/out|g" $case/config.toml > /tmp/case.toml
target/debug/broker run --config /tmp/case.toml --summary-json /tmp/summary.json
```

## Cases

| case | frames | what |
|---|---:|---|
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="conformance.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=CORPUS, metavar="DIR",
                        help=f"corpus directory (default {CORPUS.relative_to(REPO)})")
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory and compare with DIR byte for byte")
    return parser.parse_args(argv)


def generate(directory: Path):
    from corpus.cases import CASES
    from corpus.write import write_case

    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    names = set()
    for build in CASES:
        case = build()
        if case.name in names:
            raise ValueError(f"two cases named {case.name}")
        names.add(case.name)
        expectation = write_case(case, directory / case.name)
        delivered = sum(len(frames) for frames in expectation.ports.values())
        rows.append(f"| [`{case.name}`]({case.name}/) | {len(case.packets)} in, {delivered} out | "
                    f"{case.summary} |")
    for stale in sorted(p for p in directory.iterdir() if p.is_dir() and p.name not in names):
        if (stale / "expected.json").exists():
            raise ValueError(f"{stale} is a case the generator no longer writes: remove it")
    (directory / "README.md").write_text(README_HEAD + "\n".join(rows) + "\n", encoding="utf-8")


def differences(expected: Path, actual: Path):
    """Files that differ, are missing or are extra in `actual`, relative to `expected`."""
    found = []
    comparison = filecmp.dircmp(expected, actual, ignore=[])

    def walk(cmp, prefix):
        found.extend(f"missing: {prefix}{name}" for name in cmp.left_only)
        found.extend(f"not generated: {prefix}{name}" for name in cmp.right_only)
        for name in cmp.common_files:
            if not filecmp.cmp(Path(cmp.left) / name, Path(cmp.right) / name, shallow=False):
                found.append(f"differs: {prefix}{name}")
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(comparison, "")
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    if not args.check:
        generate(args.output)
        print(f"conformance: wrote {args.output}")
        return 0
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        generate(Path(scratch))
        found = differences(Path(scratch), args.output)
    if found:
        print(f"conformance: {args.output} is not what the generator writes:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        print("  regenerate with /usr/bin/python3 scripts/gen/conformance.py and commit", file=sys.stderr)
        return 1
    print(f"conformance: {args.output} is exactly what the generator writes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
