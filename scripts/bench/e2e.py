#!/usr/bin/env python3
"""The end-to-end bench: the broker and dpdk-testpmd on the same virtual devices, alternating.

Run by scripts/bench.sh (which builds the broker and prepares the captures); see BENCHMARKS.md.

Every run replays a capture from a `net_pcap` port with `infinite_rx=1` (the driver caches the
file and copies its frames into fresh mbufs forever) and transmits to `net_null` ports (which
free what they are given). Rates come from the ports' own counters over a fixed interval after a
warm-up:
  - testpmd: its periodic port statistics (`--stats-period 1`), Rx-pps of the pcap port and
    Tx-pps of the null port, which it computes from the port counters and the TSC; the mean of
    the periods after the warm-up;
  - the broker: its Prometheus endpoint, `broker_port_rx_packets_total{port="mirror"}` and the
    sum of `broker_port_tx_packets_total` over the tool ports (the ports' own counters), read at
    two publications `--seconds` apart and divided by the difference of `broker_uptime_seconds`
    of the same publications.
The broker runs also check that the scenario is the one intended: no packet filtered, none a
duplicate, none malformed, during the measured interval.

Scenarios, for each capture (one packet in, one packet out, except the fan-out):
  testpmd        dpdk-testpmd --forward-mode=io, one forwarding core: the framework's ceiling
  broker-1w      the full pipeline, one worker, one tool group of 4 ports (flow balance),
                 a dedup table of 16,384 entries (it stays in L2)
  broker-1w-2p20 the same with a dedup table of 2^20 entries (8 MiB, what a 50 ms window at
                 10 GbE needs: its buckets miss the caches)
  broker-2w      the same with 2 RX queues and 2 workers (the capture split in two, like RSS)
  broker-2w-2p20 the same with the 2^20-entry table (the workers share the table: a small one
                 stays in both cores' caches and its lines pass between them, a large one does not)
  fanout-1w      one worker, three tool groups (flow / source / round-robin sliced): 3 copies
  metrics-on     broker-1w, its endpoint scraped every second (an eager Prometheus)
  metrics-off    broker-1w with `metrics = ""`: no exporter, no publication, no listener
Rounds alternate the scenarios, every other round in reverse order, so that the machine's load
hits all of them alike.

metrics-on and metrics-off cannot both be read from the endpoint (one has none), so both are
measured the same other way: the packets the exit summary reports received, over the time from
the log line saying the workers run to the SIGINT that stops them (warm-up included, alike in
both).
"""

import argparse
import io
import json
import os
import pty
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EAL = ["--no-huge", "--no-pci", "--no-shconf", "--no-telemetry"]


def log(message):
    print(f"e2e: {message}", file=sys.stderr, flush=True)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


TICKS = os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(pid):
    """CPU time so far of the process's poll-mode lcore threads (DPDK names them rte-worker-N)."""
    total = 0
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/comm") as f:
                if not f.read().startswith("rte-worker"):
                    continue
            with open(f"{task_dir}/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / TICKS


# --- testpmd -------------------------------------------------------------------------------

def read_lines(stream):
    """Lines from a pseudo-terminal until the other end closes it (EIO on Linux)."""
    while True:
        try:
            line = stream.readline()
        except OSError:
            return
        if not line:
            return
        yield line


def run_testpmd(capture, packets_in_capture, warmup, seconds, memory_mb):
    mbufs = packets_in_capture + 16384
    cmd = [
        "dpdk-testpmd", "-l", "0,1", "-m", str(memory_mb), *EAL,
        "--vdev", f"net_pcap0,rx_pcap={capture},infinite_rx=1",
        "--vdev", "net_null0,no-rx=1",
        "--",
        "--forward-mode=io", "--nb-cores=1", "--burst=32",
        f"--total-num-mbufs={mbufs}", "--stats-period=1",
    ]
    # A terminal for its output, so that each period's statistics arrive when printed (to a
    # pipe, stdio would hold several periods in its buffer and the CPU time read at their
    # arrival would not match them).
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL)
    os.close(terminal)
    lines = io.TextIOWrapper(os.fdopen(controller, "rb", buffering=0), errors="replace")
    # Per statistics period: (port 0 Rx-pps, port 1 Tx-pps, worker CPU seconds and time at its
    # end). testpmd prints a period's statistics when at least `--stats-period` has passed at its
    # once-a-second check, so periods last one or two seconds; its rates are per second anyway.
    periods = []
    port = None
    rx_pps = None
    wanted = warmup + seconds
    output = []
    deadline = time.monotonic() + wanted + 60
    try:
        for line in read_lines(lines):
            output.append(line)
            m = re.search(r"NIC statistics for port (\d+)", line)
            if m:
                port = int(m.group(1))
                continue
            m = re.search(r"Rx-pps:\s+(\d+)", line)
            if m and port == 0:
                rx_pps = int(m.group(1))
            m = re.search(r"Tx-pps:\s+(\d+)", line)
            if m and port == 1 and rx_pps is not None:
                periods.append((rx_pps, int(m.group(1)), worker_cpu_seconds(proc.pid), time.monotonic()))
                rx_pps = None
                if len(periods) > wanted:
                    break
            if time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            # Keep reading so that its output never blocks it while it stops.
            for _ in read_lines(lines):
                pass
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lines.close()
    # The first period starts before forwarding; then `warmup` periods of warm-up.
    measured = periods[1 + warmup : 1 + warmup + seconds]
    if len(measured) < seconds:
        raise RuntimeError("testpmd gave too few statistics periods:\n" + "".join(output[-40:]))
    rx_mpps = statistics.mean(p[0] for p in measured) / 1e6
    # The forwarding core's share of a CPU while measured (the machine may be shared).
    cpu_share = (measured[-1][2] - periods[warmup][2]) / (measured[-1][3] - periods[warmup][3])
    return {
        "rx_mpps": rx_mpps,
        "tx_mpps": statistics.mean(p[1] for p in measured) / 1e6,
        "worker_cpu": cpu_share,
        "rx_mpps_per_cpu": rx_mpps / cpu_share if cpu_share > 0 else 0.0,
    }


# --- the broker ------------------------------------------------------------------------------

def scrape(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            pass
    return values


def snapshot(address, tool_ports):
    v = scrape(address)
    outcome = lambda o: v.get(f'broker_packets_total{{outcome="{o}"}}', 0.0)
    return {
        "uptime": v.get("broker_uptime_seconds", 0.0),
        "rx": v.get('broker_port_rx_packets_total{port="mirror"}', 0.0),
        "tx": sum(v.get(f'broker_port_tx_packets_total{{port="{p}"}}', 0.0) for p in tool_ports),
        "delivered": outcome("delivered"),
        "unwanted": sum(outcome(o) for o in ("duplicate", "filtered", "malformed", "source_denied",
                                               "unknown_session", "not_tunnel", "no_live_port")),
    }


def next_publication(address, tool_ports, after_uptime, timeout=10, proc=None):
    """The first snapshot whose publication is later than `after_uptime`, read within 20 ms of
    its making (the CPU time read right after it must belong to the same moment).

    Scraping renders every series on the broker's control core, which the second worker shares
    (about 2 ms a scrape): the endpoint is polled every 20 ms only in the last 1.2 s before the
    publication is due, and read once a second before that."""
    deadline = time.monotonic() + timeout
    previous = None  # monotonic time of the previous scrape
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
        wait = 0.02
        try:
            s = snapshot(address, tool_ports)
            now = time.monotonic()
            fresh = previous is not None and now - previous < 0.06
            previous = now
            if s["uptime"] > after_uptime and fresh:
                return s
            if s["uptime"] <= after_uptime:
                # Publications are `broker_uptime_seconds` apart in wall time too; this one may
                # be up to a second old.
                wait = min(1.0, max(wait, after_uptime - s["uptime"] - 1.2))
        except OSError:
            previous = None
        time.sleep(wait)
    raise RuntimeError(f"no metrics publication from {address}")


def run_broker(broker, config_path, address, tool_ports, warmup, seconds):
    proc = subprocess.Popen([broker, "run", "--config", config_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = next_publication(address, tool_ports, 0.0, timeout=60, proc=proc)
        start = next_publication(address, tool_ports, first["uptime"] + warmup)
        cpu_start = worker_cpu_seconds(proc.pid)
        end = next_publication(address, tool_ports, start["uptime"] + seconds - 0.5)
        cpu_end = worker_cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"broker exited with {proc.returncode}:\n{out[-3000:]}")
    interval = end["uptime"] - start["uptime"]
    rx = end["rx"] - start["rx"]
    unwanted = end["unwanted"] - start["unwanted"]
    if unwanted > 0:
        raise RuntimeError(f"{config_path}: {unwanted:.0f} packets were not delivered during the "
                           "measurement (duplicate, filtered, malformed…): not the intended scenario")
    # The workers' CPU time while measured, in CPUs (2 workers on dedicated cores: 2.0).
    cpu_share = (cpu_end - cpu_start) / interval
    return {
        "rx_mpps": rx / interval / 1e6,
        "tx_mpps": (end["tx"] - start["tx"]) / interval / 1e6,
        "interval_s": interval,
        "worker_cpu": cpu_share,
        "rx_mpps_per_cpu": rx / interval / 1e6 / cpu_share if cpu_share > 0 else 0.0,
    }


def run_broker_by_summary(broker, config_path, address, duration):
    """Runs the broker for `duration` seconds after its workers start, scraping `address` every
    second when it is not empty, then stops it; the rate from the exit summary."""
    proc = subprocess.Popen([broker, "run", "--config", config_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    started = None
    try:
        for line in proc.stdout:
            output.append(line)
            if "worker(s) running" in line:
                started = time.monotonic()
                break
        if started is None:
            raise RuntimeError(f"the broker never started its workers:\n{''.join(output)[-3000:]}")
        # Keep its output flowing (it logs little while running, but a full pipe would block it).
        reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
        reader.start()
        cpu_start = worker_cpu_seconds(proc.pid)
        scrapes = 0
        while time.monotonic() - started < duration:
            time.sleep(min(1.0, max(0.0, duration - (time.monotonic() - started))))
            if address and time.monotonic() - started < duration:
                scrape(address)
                scrapes += 1
        cpu_end = worker_cpu_seconds(proc.pid)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(output)
    if proc.returncode != 0:
        raise RuntimeError(f"broker exited with {proc.returncode}:\n{text[-3000:]}")
    m = re.search(r"^received (\d+) packets", text, re.MULTILINE)
    if not m:
        raise RuntimeError(f"no exit summary:\n{text[-3000:]}")
    if address and scrapes == 0:
        raise RuntimeError("the endpoint was never scraped")
    interval = stopped - started
    rx_mpps = int(m.group(1)) / interval / 1e6
    cpu_share = (cpu_end - cpu_start) / interval
    return {
        "rx_mpps": rx_mpps,
        "tx_mpps": rx_mpps,
        "interval_s": interval,
        "worker_cpu": cpu_share,
        "rx_mpps_per_cpu": rx_mpps / cpu_share if cpu_share > 0 else 0.0,
    }


def write_config(out_dir, name, scenario, captures, metrics, worker_cpus=None, capacity=None):
    path = os.path.join(out_dir, f"{name}.toml")
    cmd = [sys.executable, os.path.join(HERE, "config.py"), scenario, "--metrics", metrics]
    if worker_cpus:
        cmd += ["--worker-cpus", worker_cpus]
    if capacity:
        cmd += ["--capacity", str(capacity)]
    for c in captures:
        cmd += ["--capture", os.path.abspath(c)]
    with open(path, "w") as f:
        subprocess.run(cmd, check=True, stdout=f)
    return path


def count_packets(pcap):
    with open(pcap, "rb") as f:
        data = f.read()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    at, n = 24, 0
    while at + 16 <= len(data):
        incl = int.from_bytes(data[at + 8 : at + 12], "little" if endian == "<" else "big")
        at += 16 + incl
        n += 1
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--out", required=True, help="directory with the captures; results go there")
    parser.add_argument("--captures", default="min,imix",
                        help="comma-separated names: OUT/NAME.pcap, OUT/NAME.0.pcap, OUT/NAME.1.pcap")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--metrics", default="127.0.0.1:9481")
    parser.add_argument("--scenarios",
                        default="testpmd,broker-1w,broker-1w-2p20,broker-2w,broker-2w-2p20,fanout-1w,"
                                "metrics-on,metrics-off")
    args = parser.parse_args()

    scenarios = args.scenarios.split(",")
    captures = args.captures.split(",")
    results = {c: {s: [] for s in scenarios} for c in captures}
    loads = []
    for capture in captures:
        whole = os.path.join(args.out, f"{capture}.pcap")
        halves = [os.path.join(args.out, f"{capture}.{i}.pcap") for i in (0, 1)]
        configs = {
            "broker-1w": (write_config(args.out, f"{capture}-broker-1w", "single", [whole], args.metrics),
                          [f"flow-{i}" for i in range(4)]),
            "broker-1w-2p20": (write_config(args.out, f"{capture}-broker-1w-2p20", "single", [whole],
                                            args.metrics, capacity=1 << 20),
                               [f"flow-{i}" for i in range(4)]),
            # The second worker on CPU 0, with the (mostly sleeping) control thread: "auto" would
            # put both on CPU 1 of a two-CPU machine.
            "broker-2w": (write_config(args.out, f"{capture}-broker-2w", "single", halves, args.metrics, "1,0"),
                          [f"flow-{i}" for i in range(4)]),
            "broker-2w-2p20": (write_config(args.out, f"{capture}-broker-2w-2p20", "single", halves,
                                            args.metrics, "1,0", capacity=1 << 20),
                               [f"flow-{i}" for i in range(4)]),
            "fanout-1w": (write_config(args.out, f"{capture}-fanout-1w", "fanout", [whole], args.metrics),
                          [f"flow-{i}" for i in range(4)] + ["source-0", "source-1", "rr-0", "rr-1"]),
            "metrics-off": (write_config(args.out, f"{capture}-metrics-off", "single", [whole], ""), []),
        }
        packets = count_packets(whole)
        for round_number in range(1, args.rounds + 1):
            # Every other round in reverse, so that no scenario always runs right after another
            # (a run can leave the caches, the CPU's clock or the page cache in its favour).
            order = scenarios if round_number % 2 else scenarios[::-1]
            for scenario in order:
                load = load_average()
                loads.append(load)
                log(f"{capture} round {round_number}: {scenario} (load {load})")
                if scenario == "testpmd":
                    r = run_testpmd(whole, packets, args.warmup, args.seconds, args.memory_mb)
                elif scenario == "metrics-on":
                    r = run_broker_by_summary(args.broker, configs["broker-1w"][0], args.metrics,
                                              args.warmup + args.seconds)
                elif scenario == "metrics-off":
                    r = run_broker_by_summary(args.broker, configs["metrics-off"][0], "",
                                              args.warmup + args.seconds)
                else:
                    config, ports = configs[scenario]
                    r = run_broker(args.broker, config, args.metrics, ports, args.warmup, args.seconds)
                r["load"] = load
                results[capture][scenario].append(r)
                log(f"  rx {r['rx_mpps']:.2f} Mpps, tx {r['tx_mpps']:.2f} Mpps, "
                    f"forwarding threads on {r['worker_cpu']:.2f} CPUs: {r['rx_mpps_per_cpu']:.2f} Mpps per CPU")

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print_table(results, args)
    return 0


def print_table(results, args):
    print()
    print(f"End-to-end, {args.rounds} alternating rounds, {args.warmup} s warm-up, "
          f"{args.seconds} s measured per run. Rates: mean of the rounds (min–max).")
    for capture, by_scenario in results.items():
        print()
        print(f"capture {capture}:")

        def rates(scenario, key):
            return [r[key] for r in by_scenario.get(scenario, [])]

        def cell(values):
            if not values:
                return "-"
            return f"{statistics.mean(values):6.2f} ({min(values):.2f}–{max(values):.2f})"

        for scenario, label in (("testpmd", "testpmd io, 1 core      Mpps in"),
                                ("broker-1w", "broker, 1 worker        Mpps in"),
                                ("broker-1w-2p20", "broker, 1 worker, 2^20  Mpps in"),
                                ("broker-2w", "broker, 2 workers       Mpps in"),
                                ("broker-2w-2p20", "broker, 2 workers, 2^20 Mpps in"),
                                ("fanout-1w", "broker fan-out 3 groups copies/s (M)"),
                                ("metrics-on", "broker, metrics on      Mpps in"),
                                ("metrics-off", "broker, metrics off     Mpps in")):
            key = "tx_mpps" if scenario == "fanout-1w" else "rx_mpps"
            print(f"  {label:38} {cell(rates(scenario, key))}")
        ratios = []
        tp, b1, b2 = rates("testpmd", "rx_mpps"), rates("broker-1w", "rx_mpps"), rates("broker-2w", "rx_mpps")
        if tp and b1:
            # Per round: the runs of one round saw about the same load.
            ratios.append(("broker 1 worker / testpmd", [b / t for b, t in zip(b1, tp)]))
        if b1 and b2:
            ratios.append(("broker 2 workers / 1 worker", [b / a for b, a in zip(b2, b1)]))
        on, off = rates("metrics-on", "rx_mpps"), rates("metrics-off", "rx_mpps")
        if on and off:
            ratios.append(("metrics on / metrics off", [a / b for a, b in zip(on, off)]))
        for label, values in ratios:
            print(f"  {label:38} {cell(values)}")
        print("  per CPU-second of the forwarding threads (what a dedicated core would do):")
        for scenario, label in (("testpmd", "testpmd io          Mpps per CPU"),
                                ("broker-1w", "broker, 1 worker    Mpps per CPU"),
                                ("broker-1w-2p20", "broker, 1w, 2^20    Mpps per CPU"),
                                ("broker-2w", "broker, 2 workers   Mpps per CPU"),
                                ("broker-2w-2p20", "broker, 2w, 2^20    Mpps per CPU"),
                                ("fanout-1w", "broker fan-out      Mpps in per CPU"),
                                ("metrics-on", "broker, metrics on  Mpps per CPU"),
                                ("metrics-off", "broker, metrics off Mpps per CPU")):
            shares = rates(scenario, "worker_cpu")
            share = f"  (threads on {statistics.mean(shares):.2f} CPUs)" if shares else ""
            print(f"    {label:36} {cell(rates(scenario, 'rx_mpps_per_cpu'))}{share}")
        tpc, b1c, b2c = (rates(s, "rx_mpps_per_cpu") for s in ("testpmd", "broker-1w", "broker-2w"))
        if tpc and b1c:
            print(f"    {'broker 1 worker / testpmd, per CPU':36} {cell([b / t for b, t in zip(b1c, tpc)])}")
        b1lc = rates("broker-1w-2p20", "rx_mpps_per_cpu")
        if tpc and b1lc:
            print(f"    {'broker 1w 2^20 / testpmd, per CPU':36} {cell([b / t for b, t in zip(b1lc, tpc)])}")
        onc, offc = rates("metrics-on", "rx_mpps_per_cpu"), rates("metrics-off", "rx_mpps_per_cpu")
        if onc and offc:
            print(f"    {'metrics on / metrics off, per CPU':36} {cell([a / b for a, b in zip(onc, offc)])}")
        if b1c and b2c:
            # Two workers on two dedicated cores would do twice their rate per CPU.
            print(f"    {'2 workers / 1 worker, dedicated cores':36} {cell([2 * b / a for b, a in zip(b2c, b1c)])}")
        b2lc = rates("broker-2w-2p20", "rx_mpps_per_cpu")
        if b1lc and b2lc:
            print(f"    {'same, 2^20-entry table':36} {cell([2 * b / a for b, a in zip(b2lc, b1lc)])}")


if __name__ == "__main__":
    sys.exit(main())
