#!/usr/bin/env python3
"""A/B comparison of two broker builds on one end-to-end scenario, alternating runs.

    ab.py A_BINARY B_BINARY CONFIG.toml [--rounds 5] [--seconds 4] [--warmup 2]

CONFIG is a config written by e2e.py (out/bench/min-broker-1w.toml, …). Prints each run's rate
and, per binary, the mean and best received Mpps and Mpps per CPU-second of the workers (the
machine may be shared; per CPU-second is the steadier figure), and B / A.
"""

import argparse
import re
import statistics
import sys

import e2e


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("config")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    with open(args.config) as f:
        text = f.read()
    address = re.search(r'^metrics = "([^"]+)"', text, re.M).group(1)
    ports = re.findall(r'name = "((?:flow|source|rr)-\d+)"', text)
    runs = {"A": [], "B": []}
    for round_number in range(1, args.rounds + 1):
        for label, binary in (("A", args.a), ("B", args.b)):
            r = e2e.run_broker(binary, args.config, address, ports, args.warmup, args.seconds)
            runs[label].append(r)
            print(f"round {round_number} {label}: {r['rx_mpps']:.2f} Mpps, {r['rx_mpps_per_cpu']:.2f} Mpps per CPU "
                  f"(load {e2e.load_average()})", flush=True)
    for label in ("A", "B"):
        rates = [r["rx_mpps"] for r in runs[label]]
        per_cpu = [r["rx_mpps_per_cpu"] for r in runs[label]]
        print(f"{label}: Mpps mean {statistics.mean(rates):.2f} best {max(rates):.2f}; "
              f"per CPU mean {statistics.mean(per_cpu):.2f} best {max(per_cpu):.2f}")
    mean = lambda label: statistics.mean(r["rx_mpps_per_cpu"] for r in runs[label])
    print(f"B / A, per CPU: {mean('B') / mean('A'):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
