#!/usr/bin/python3
"""mirrorgen: write pcap files of cloud-mirrored traffic, as a packet broker receives it.

Run with Debian's interpreter (`/usr/bin/python3`), which sees the python3-scapy package. See
`mirrorgen.py --help` for the profiles and options, and mirror/__init__.py for the code's layout.
"""

import argparse
import importlib.util
import logging
import random
import sys
import textwrap
from pathlib import Path

FORMAT_VERSION = 1
MAX_FRAME = 9001  # AWS's largest MTU: a packet length beyond it truncates nothing


def require_scapy():
    if importlib.util.find_spec("scapy") is None:
        sys.exit(
            f"mirrorgen: scapy is not importable by {sys.executable}.\n"
            "  Install it with 'apt-get install python3-scapy' (or scripts/install-deps.sh) and run "
            "this script\n  with /usr/bin/python3: Debian's scapy is not visible to a pyenv or venv "
            "python3."
        )
    # scapy warns at import about interfaces and routes it cannot find; none of that matters to
    # writing files.
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv, profiles):
    profile_lines = "\n".join(
        textwrap.fill(f"{profile.summary} [default --packets {profile.default_packets}]", width=100,
                      initial_indent=f"  {name:<16}", subsequent_indent=" " * 18)
        for name, profile in profiles.items()
    )
    parser = argparse.ArgumentParser(
        prog="mirrorgen.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a pcap of mirrored traffic as cloud mirror services deliver it (VXLAN, "
        "GENEVE, GENEVE around VXLAN), with inner TCP/UDP/ICMP conversations over IPv4 and IPv6, "
        "and a JSON sidecar describing every packet. The same arguments always give byte-identical "
        "files: timestamps come from the packet index, randomness from --seed.",
        epilog=f"""profiles:
{profile_lines}

output:
  OUT               the capture: classic pcap, Ethernet, microsecond timestamps starting at
                    2023-11-14 22:13:20 UTC, 10 us apart
  OUT.json          the sidecar: profile, seed, sessions (VNI, mirror sources, interface
                    addresses: what a broker config needs) and one object per packet, one per
                    line: index, vni, encap, outer_src/dst/sport/dport, mirror_src, kind
                    (tcp/udp/icmp/icmpv6), app, inner addresses/ports/proto/vlan/ttl, direction
                    (ingress/egress at the mirrored interface), inner_len (the frame's full
                    length), captured_inner_len, truncated, second_copy and copy_of (both ends
                    mirrored), frame_len
  --split K         OUT.0.pcap ... OUT.<K-1>.pcap, each with its sidecar, packets assigned by a
                    hash like NIC RSS, each file in the original order; the sidecar's "split"
                    says {{index, count}} and, for --split-by inner or lb, "by": that
  --split-by outer  (default) hash of the outer 5-tuple: one outer flow, one file; the two
                    copies of a packet mirrored at both ends always go to different files
  --split-by inner  symmetric hash of the inner 5-tuple (ends sorted; addresses only without
                    ports), like inner RSS with a symmetric Toeplitz key: both directions of a
                    connection and both copies of a packet go to one file
  --split-by lb     hash of the outer 5-tuple as a load balancer in front of brokers (NLB, GWLB)
                    spreads flows: one outer flow, one file, the two copies of a packet in one
                    file or two as the hash falls; with K = brokers x queues, broker b takes
                    files b*queues ... b*queues+queues-1

examples:
  /usr/bin/python3 scripts/gen/mirrorgen.py lab -o samples/aws-mirror.pcap
  /usr/bin/python3 scripts/gen/mirrorgen.py both-ends -o /tmp/dup.pcap --split 2
  /usr/bin/python3 scripts/gen/mirrorgen.py both-ends -o /tmp/dup.pcap --split 2 --split-by inner
  /usr/bin/python3 scripts/gen/mirrorgen.py fleet -o /tmp/fleet.pcap --split 4 --split-by lb
  /usr/bin/python3 scripts/gen/mirrorgen.py imix -o /tmp/imix.pcap --packets 12000 --seed 7
""",
    )
    parser.add_argument("profile", choices=list(profiles), metavar="PROFILE",
                        help="what to generate (see below)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="pcap file to write (parent directories are created)")
    parser.add_argument("--packets", type=positive, metavar="N",
                        help="mirrored packets to write, in all files together (default: per profile); "
                        "open conversations are cut short at the end")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="seed of every random choice (default 1)")
    parser.add_argument("--split", type=positive, metavar="K",
                        help="write K files split by a 5-tuple hash, like RSS over K queues")
    parser.add_argument("--split-by", choices=["outer", "inner", "lb"],
                        help="what --split hashes: the outer 5-tuple keeping copies apart (default), "
                        "the inner one symmetrically, or the outer one as a load balancer (see below)")
    parser.add_argument("--truncate", type=positive, metavar="N",
                        help="AWS packet length: mirror only the first N bytes of each inner frame "
                        "(its IP length still says the full size). AWS-based profiles only; "
                        "'truncated' applies it to half its sessions (default 128)")
    parser.add_argument("--sizes", choices=["natural", "imix", "min"],
                        help="inner frame lengths: conversations as they come (natural), IMIX "
                        "7:4:1 of 64/594/1518 bytes, or 64 bytes only (default: per profile)")
    args = parser.parse_args(argv)
    if args.split_by is not None and args.split is None:
        parser.error("--split-by needs --split")
    return args


def session_summaries(templates):
    """Sessions of the sidecar: one per (encap, VNI), sources and addresses merged."""
    sessions = {}
    for template in templates:
        for _, mirror in template.mirrors:
            info = mirror.session_info()
            entry = sessions.setdefault((info.encap, info.vni), {
                "encap": info.encap, "vni": info.vni, "mirror_sources": [], "source_ips": [],
                "truncate": info.truncate, "note": info.note,
            })
            for key, values in (("mirror_sources", info.mirror_sources), ("source_ips", info.source_ips)):
                entry[key] += [value for value in values if value not in entry[key]]
    return sorted(sessions.values(), key=lambda entry: (entry["encap"], entry["vni"]))


def main(argv=None) -> int:
    require_scapy()
    from mirror.output import SPLIT_BY_OUTER, Outputs, sidecar_path
    from mirror.profiles import PROFILES, Options
    from mirror.scenario import mirror_pair_colours, mirrored_packets
    from mirror.sized import SIZE_MIXES

    args = parse_args(argv, PROFILES)
    profile = PROFILES[args.profile]
    if args.truncate is not None and not profile.truncatable:
        sys.exit(f"mirrorgen: --truncate applies to AWS mirror sessions; profile {profile.name} has none")
    if args.truncate is not None and args.truncate > MAX_FRAME:
        sys.exit(f"mirrorgen: --truncate {args.truncate} exceeds any frame ({MAX_FRAME})")
    packets = args.packets or profile.default_packets
    sizes = args.sizes or profile.mix or "natural"
    mix = SIZE_MIXES.get(sizes)

    templates = profile.build(Options(truncate=args.truncate))
    split_by = args.split_by or SPLIT_BY_OUTER
    # Only the outer split keeps copies apart, by colour; the others hash what they hash.
    try:
        colours = mirror_pair_colours(templates) if split_by == SPLIT_BY_OUTER else {}
    except ValueError as error:
        if args.split is not None:
            sys.exit(f"mirrorgen: {error}: --split-by outer cannot put the two copies of every "
                     f"packet of profile {profile.name} in different files (use --split-by lb or inner)")
        colours = {}
    if colours and args.split == 1 and split_by == SPLIT_BY_OUTER:
        sys.exit(f"mirrorgen: profile {profile.name} mirrors packets at both ends; split by the outer "
                 "headers, their copies go to different files, so --split needs at least 2 (or "
                 "--split-by inner)")

    command = [f"mirrorgen.py {profile.name}", f"--packets {packets}", f"--seed {args.seed}"]
    command += [f"--split {args.split}"] if args.split else []
    # Only when not the default, so that the commands of existing outputs stay what they were.
    command += [f"--split-by {split_by}"] if split_by != SPLIT_BY_OUTER else []
    command += [f"--truncate {args.truncate}"] if args.truncate else []
    command += [f"--sizes {args.sizes}"] if args.sizes else []
    meta = {
        "generator": "mirrorgen",
        "format": FORMAT_VERSION,
        "command": " ".join(command),
        "profile": profile.name,
        "seed": args.seed,
        "sizes": sizes,
        "truncate": args.truncate,
        "packets_total": packets,
        "sessions": session_summaries(templates),
    }

    args.output.parent.mkdir(parents=True, exist_ok=True)
    outputs = Outputs(args.output, args.split, colours, meta, split_by)
    try:
        rng = random.Random(args.seed)
        for record in mirrored_packets(templates, rng, packets, mix):
            record.describe["profile"] = profile.name
            outputs.write(record)
    except (ValueError, RuntimeError) as error:
        outputs.close()
        for path in outputs.paths():
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
        sys.exit(f"mirrorgen: {error}")
    outputs.close()
    for path in outputs.paths():
        print(f"mirrorgen: wrote {path} and {sidecar_path(path).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
