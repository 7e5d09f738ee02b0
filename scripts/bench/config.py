#!/usr/bin/env python3
"""Write the broker config of one end-to-end bench scenario (TOML on stdout).

Every scenario runs the whole pipeline the way a production broker would for the `aws` sessions
of the mirror generator, spread over 64 sessions (see spread_vnis.py):
  - allowlist of the senders (172.31.0.0/16), VXLAN decap;
  - 64 sessions, VNIs 1000..1063, every one with the mirrored ENIs' addresses as `source_ips`
    (so packets have a direction) and the same 100-rule filter;
  - the filter: 100 rules shaped like a real mirror filter (rejects of management ports and
    private ranges the capture never uses, accepts of the services it does use, per direction)
    with default `accept`: every packet of the capture is accepted (the bench checks
    `filtered == 0`), so that one packet leaves per packet in, as with testpmd;
  - dedup on for every group, with a window shorter than one loop of the replayed capture (so
    no packet is a duplicate: the bench checks it) and a table sized for that window;
  - tool ports are `net_null` devices.

Scenarios:
  single   one tool group of 4 ports, balance = flow            (one copy per packet)
  fanout   three tool groups: flow (4 ports), source (2 ports), round-robin sliced to 96 bytes
           (2 ports)                                            (three copies per packet)

    config.py SCENARIO --capture A.pcap [--capture B.pcap] --metrics 127.0.0.1:9480
              [--window-us 200] [--capacity 16384] [--memory-mb 1024] [--worker-cpus 1,0]

One `--capture` per RX queue (and worker): `net_pcap` gives one RX queue per `rx_pcap`.
"""

import argparse
import sys

SESSIONS = 64
VNI_BASE = 1000
# The mirrored ENIs of the generator's `aws` profile (its sidecar lists them per session).
SOURCE_IPS = ["172.31.10.5", "172.31.20.7", "2001:db8:20::7", "172.31.30.9", "172.31.40.11"]
ALLOWED_SOURCES = ["172.31.0.0/16"]


def filter_rules():
    """100 rules, numbered 10, 20, ..., in evaluation order."""
    rules = []

    def rule(action, **fields):
        rules.append((action, fields))

    # Management and legacy ports, from anywhere: reject (the capture has none).
    for port in ["22", "23", "135-139", "445", "1433", "3389", "5900-5910", "6379", "9200", "11211"]:
        rule("reject", protocol="tcp", dst_ports=port)
    for port in ["69", "161-162", "1900", "5353"]:
        rule("reject", protocol="udp", dst_ports=port)
    # Private ranges the VPC does not use, per direction: reject.
    for i in range(20):
        rule("reject", direction="ingress", src_cidr=f"10.{i * 12}.0.0/14")
        rule("reject", direction="egress", dst_cidr=f"192.168.{i * 8}.0/21")
    # Partner networks: specific services accepted, the rest rejected.
    for i in range(12):
        rule("accept", protocol="tcp", dst_cidr=f"100.{64 + i}.0.0/16", dst_ports="443")
        rule("reject", protocol="tcp", dst_cidr=f"100.{64 + i}.0.0/16")
    # The services the capture uses: accepted per direction and family.
    rule("accept", direction="egress", protocol="tcp", src_cidr="172.31.0.0/16", dst_ports="5201")
    rule("accept", direction="ingress", protocol="tcp", dst_cidr="172.31.0.0/16", src_ports="5201")
    rule("accept", direction="egress", protocol="udp", dst_cidr="198.51.100.0/24", dst_ports="53")
    rule("accept", direction="ingress", protocol="udp", src_cidr="198.51.100.0/24", src_ports="53")
    rule("accept", direction="egress", protocol="udp", src_cidr="2001:db8:20::/48")
    rule("accept", direction="ingress", protocol="udp", dst_cidr="2001:db8:20::/48")
    rule("accept", protocol="icmp", src_cidr="172.31.0.0/16")
    rule("accept", protocol="icmp", dst_cidr="172.31.0.0/16")
    rule("accept", protocol="58", src_cidr="2001:db8::/32")
    rule("accept", protocol="58", dst_cidr="2001:db8::/32")
    # Odd cases from an operator's list: reject.
    for cidr in ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
                 "fe80::/10", "ff00::/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15"]:
        rule("reject", src_cidr=cidr)
    rule("reject", protocol="47")
    rule("reject", protocol="50")
    assert len(rules) == 100, len(rules)
    return rules


def toml_value(value):
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value + '"'
    return str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["single", "fanout"])
    parser.add_argument("--capture", action="append", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--window-us", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=16384)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--worker-cpus", help='CPUs of the workers ("1,0"); default: lcores = "auto"')
    args = parser.parse_args()

    out = []
    w = out.append
    w(f"# Generated by scripts/bench/config.py {args.scenario}: see BENCHMARKS.md.")
    w("[broker]")
    w(f'name = "bench-{args.scenario}"')
    w(f'metrics = "{args.metrics}"')
    w("[dpdk]")
    w(f'eal_args = ["--no-huge", "-m", "{args.memory_mb}", "--no-pci", "--no-shconf", "--no-telemetry"]')
    w("[workers]")
    if args.worker_cpus:
        w(f"lcores = [{args.worker_cpus}]")
        w("control_core = 0")
    else:
        w('lcores = "auto"')
    w("[[ingress]]")
    w('name = "mirror"')
    pcaps = ",".join(f"rx_pcap={c}" for c in args.capture)
    w(f'device = "net_pcap0,{pcaps},infinite_rx=1"')
    w(f"queues = {len(args.capture)}")
    w("[decap]")
    w(f"allowed_sources = {toml_value(ALLOWED_SOURCES)}")
    w("[dedup]")
    w(f'window = "{args.window_us}us"')
    w(f"capacity = {args.capacity}")

    groups = ["flow"] if args.scenario == "single" else ["flow", "source", "rr"]
    for s in range(SESSIONS):
        w("[[session]]")
        w(f'name = "s{s}"')
        w(f"vni = {VNI_BASE + s}")
        w(f"tools = {toml_value(groups)}")
        w('filter = "f100"')
        w(f"source_ips = {toml_value(SOURCE_IPS)}")

    w("[[filter]]")
    w('name = "f100"')
    w('default = "accept"')
    for i, (action, fields) in enumerate(filter_rules()):
        w("[[filter.rule]]")
        w(f"number = {10 * (i + 1)}")
        w(f'action = "{action}"')
        for key, value in fields.items():
            if key == "protocol" and value.isdigit():
                w(f"protocol = {value}")
            else:
                w(f"{key} = {toml_value(value)}")

    null = iter(range(1, 100))

    def ports(prefix, n):
        return ", ".join(
            f'{{ name = "{prefix}-{i}", device = "net_null{next(null)},no-rx=1" }}' for i in range(n)
        )

    w("[[tool_group]]")
    w('name = "flow"')
    w('balance = "flow"')
    w(f"ports = [{ports('flow', 4)}]")
    if args.scenario == "fanout":
        w("[[tool_group]]")
        w('name = "source"')
        w('balance = "source"')
        w(f"ports = [{ports('source', 2)}]")
        w("[[tool_group]]")
        w('name = "rr"')
        w('balance = "round-robin"')
        w("slice = 96")
        w(f"ports = [{ports('rr', 2)}]")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
