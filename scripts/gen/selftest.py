#!/usr/bin/python3
"""Self-test of mirrorgen: every profile, checked against an independent decoder.

For every profile the generator runs twice with the same seed in separate processes (different
PYTHONHASHSEED) and once with another seed: the first two must be byte-identical, the third not.
Each capture is then decoded by tshark (Wireshark's dissectors, which share no code with scapy or
the generator) and every packet is compared with its sidecar entry: outer addresses and ports, the
tunnel layering, VNIs, inner addresses, TTL, VLAN, IP length (the full length, also when truncated),
checksums, and the absence of malformed packets and of warnings. Byte-level properties (the two
copies of a both-ends packet are identical from L3 on except TTL and checksum; split files add up
to the unsplit capture, split by outer headers keep outer flows together and copies apart, split by
inner headers keep connections and copies together) are read with the small pcap reader below. Finally the committed sample
must be exactly what its documented command produces, and the conformance corpus
(tests/conformance/) exactly what scripts/gen/conformance.py writes.

Run: scripts/gen/selftest.sh   (or /usr/bin/python3 scripts/gen/selftest.py -v)
"""

import collections
import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "mirrorgen.py"
REPO = HERE.parent.parent
SAMPLE = REPO / "samples" / "aws-mirror.pcap"
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")

# Packets per profile: small enough to run quickly, large enough that every template of the
# profile is instantiated. The lab runs at its default size because it is also the sample.
PACKETS = {
    "lab": None,
    "aws": 200,
    "gwlb": 200,
    "azure": 200,
    "geneve-options": 200,
    "geneve-bare-ip": 200,
    "ipv6-outer": 200,
    "both-ends": 200,
    "fleet": 600,
    "truncated": 200,
    "min-size": 120,
    "imix": 600,
}
# The other-seed run is needed once per code path that draws random numbers, not per format.
OTHER_SEED = ["aws", "both-ends", "imix"]
SPLITS = [("lab", 3), ("both-ends", 2), ("both-ends", 5)]
# --split-by inner: the lab has one both-ends session and ICMP, both-ends nothing else.
INNER_SPLITS = [("lab", 3), ("both-ends", 2)]
# --split-by lb: two brokers of two queues each.
LB_SPLITS = [("fleet", 4)]
PORTED_PROTOCOLS = (6, 17)  # TCP, UDP: RSS hashes their ports, of other protocols the addresses

# tshark's expert severities (epan/proto.h): PI_WARN and above must not appear on a clean packet.
PI_WARN = 0x00600000
CHECKSUM_GOOD, CHECKSUM_NOT_PRESENT = "1", "3"

FIELDS = [
    "frame.len", "frame.protocols",
    "ip.src", "ip.dst", "ip.ttl", "ip.len", "ip.id", "ip.checksum.status",
    "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.plen",
    "udp.srcport", "udp.dstport", "udp.checksum.status",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.checksum.status",
    "icmp.ident", "icmp.checksum.status", "icmpv6.echo.identifier", "icmpv6.checksum.status",
    "vxlan.vni", "vxlan.flags",
    "geneve.vni", "geneve.proto_type", "geneve.option.class", "geneve.option.type",
    "geneve.option.length", "geneve.flags.critical",
    "vlan.id", "_ws.malformed", "_ws.expert.severity",
]
TSHARK_OPTIONS = [
    "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
    "-o", "udp.check_checksum:TRUE",
    # The decoder is told nothing else: VXLAN (4789) and GENEVE (6081) are its defaults too.
    "-d", "udp.port==4789,vxlan",
]


# --- running things -------------------------------------------------------------------------------

def generate(profile, output, seed=1, packets=None, hash_seed="0", extra=()):
    command = [PYTHON, str(GENERATOR), profile, "-o", str(output), "--seed", str(seed)]
    if packets:
        command += ["--packets", str(packets)]
    command += list(extra)
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return output


def tshark_decode(path):
    """One dict per frame, field → list of occurrences (in protocol order)."""
    command = ["tshark", "-n", "-r", str(path), *TSHARK_OPTIONS, "-T", "fields",
               "-E", "occurrence=a", "-E", "aggregator=|", "-E", "separator=/t"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"tshark failed on {path}:\n{result.stderr}")
    frames = []
    for line in result.stdout.splitlines():
        values = line.split("\t")
        frames.append({field: (value.split("|") if value else [])
                       for field, value in zip(FIELDS, values)})
    return frames


def read_pcap(path):
    """[(seconds, microseconds, frame bytes)] of a classic little-endian pcap."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert magic == 0xA1B2C3D4 and linktype == 1, f"{path}: not a microsecond Ethernet pcap"
    records, offset = [], 24
    while offset < len(data):
        seconds, micros, captured, original = struct.unpack_from("<IIII", data, offset)
        offset += 16
        records.append((seconds, micros, data[offset : offset + captured]))
        assert captured == original
        offset += captured
    return records


def read_sidecar(path):
    return json.loads(Path(str(path) + ".json").read_text())


# --- decoding helpers -----------------------------------------------------------------------------

def l3_layers(frame):
    """The frame's IPv4/IPv6 headers, outermost first: dicts with version, src, dst, ttl, length."""
    fields = {4: ("ip.src", "ip.dst", "ip.ttl", "ip.len"), 6: ("ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.plen")}
    position = {4: 0, 6: 0}
    layers = []
    for token in frame["frame.protocols"][0].split(":"):
        version = {"ip": 4, "ipv6": 6}.get(token)
        if version is None:
            continue
        i = position[version]
        position[version] += 1
        src, dst, ttl, length = (frame[name][i] if i < len(frame[name]) else None for name in fields[version])
        layers.append({"version": version, "src": src, "dst": dst, "ttl": int(ttl),
                       "length": int(length) + (0 if version == 4 else 40)})
    return layers


def expected_protocols(packet):
    outer = {
        "aws-vxlan": "eth:ethertype:ip:udp:vxlan:",
        "azure-vxlan": "eth:ethertype:ip:udp:vxlan:",
        "gwlb-geneve-vxlan": "eth:ethertype:ip:udp:geneve:ip:udp:vxlan:",
        "geneve-eth": "eth:ethertype:ip:udp:geneve:",
        "geneve-ip": "eth:ethertype:ip:udp:geneve:",
        "vxlan-ipv6": "eth:ethertype:ipv6:"
        + ("ipv6.dstopts:" if packet.get("outer_destination_options") else "") + "udp:vxlan:",
    }[packet["encap"]]
    inner = ""
    if packet["encap"] != "geneve-ip":
        inner += "eth:ethertype:" + ("vlan:ethertype:" if packet["inner_vlan"] is not None else "")
    inner += "ip:" if packet["inner_version"] == 4 else "ipv6:"
    if not packet["truncated"]:
        inner += packet["kind"]
    return outer + inner


def inner_l2_len(packet):
    if packet["encap"] == "geneve-ip":
        return 0
    return 18 if packet["inner_vlan"] is not None else 14


def outer_overhead(packet, frame):
    """Bytes before the inner frame, from the decoded headers."""
    options = int(frame["geneve.option.length"][0]) if frame["geneve.option.length"] else 0
    return {
        "aws-vxlan": 50,
        "azure-vxlan": 50,
        "gwlb-geneve-vxlan": 14 + 20 + 8 + 8 + options + 20 + 8 + 8,
        "geneve-eth": 50 + options,
        "geneve-ip": 50 + options,
        "vxlan-ipv6": 70 + (8 if packet.get("outer_destination_options") else 0),
    }[packet["encap"]]


def blanked_l3(frame_bytes, packet):
    """The inner packet from L3 on with TTL/hop limit and IPv4 header checksum zeroed: the part the
    two copies of a both-ends packet share."""
    start = len(frame_bytes) - packet["captured_inner_len"] + inner_l2_len(packet)
    l3 = bytearray(frame_bytes[start:])
    if packet["inner_version"] == 4:
        l3[8] = 0
        l3[10:12] = b"\x00\x00"
    else:
        l3[7] = 0
    return bytes(l3)


# --- the fixture: every run, once ------------------------------------------------------------------

class Runs:
    directory = None
    outputs = {}
    decoded = {}


def setUpModule():
    for tool in ("tshark",):
        if shutil.which(tool) is None:
            raise unittest.SkipTest(f"{tool} is not installed (scripts/install-deps.sh)")
    Runs.directory = Path(tempfile.mkdtemp(prefix="mirrorgen-selftest-"))
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for profile, packets in PACKETS.items():
            for run, seed, hash_seed in (("a", 1, "0"), ("b", 1, "4242"), ("c", 2, "0")):
                if run == "c" and profile not in OTHER_SEED:
                    continue
                output = Runs.directory / run / f"{profile}.pcap"
                jobs[(profile, run)] = pool.submit(generate, profile, output, seed, packets, hash_seed)
        for profile, count in SPLITS:
            output = Runs.directory / f"split{count}" / f"{profile}.pcap"
            jobs[(profile, f"split{count}")] = pool.submit(
                generate, profile, output, 1, PACKETS[profile], "0", ["--split", str(count)])
        for profile, count in INNER_SPLITS:
            output = Runs.directory / f"split{count}-inner" / f"{profile}.pcap"
            jobs[(profile, f"split{count}-inner")] = pool.submit(
                generate, profile, output, 1, PACKETS[profile], "0",
                ["--split", str(count), "--split-by", "inner"])
        for profile, count in LB_SPLITS:
            output = Runs.directory / f"split{count}-lb" / f"{profile}.pcap"
            jobs[(profile, f"split{count}-lb")] = pool.submit(
                generate, profile, output, 1, PACKETS[profile], "0",
                ["--split", str(count), "--split-by", "lb"])
        Runs.outputs = {key: job.result() for key, job in jobs.items()}
        decodes = {profile: pool.submit(tshark_decode, Runs.outputs[(profile, "a")]) for profile in PACKETS}
        Runs.decoded = {profile: job.result() for profile, job in decodes.items()}


def tearDownModule():
    if Runs.directory is not None:
        shutil.rmtree(Runs.directory, ignore_errors=True)


def output(profile, run="a"):
    return Runs.outputs[(profile, run)]


# --- the tests ------------------------------------------------------------------------------------

class Determinism(unittest.TestCase):
    def test_same_seed_same_bytes_in_another_process(self):
        for profile in PACKETS:
            with self.subTest(profile=profile):
                a, b = output(profile, "a"), output(profile, "b")
                self.assertEqual(a.read_bytes(), b.read_bytes())
                self.assertEqual(Path(f"{a}.json").read_bytes(), Path(f"{b}.json").read_bytes())

    def test_another_seed_other_bytes(self):
        for profile in OTHER_SEED:
            with self.subTest(profile=profile):
                self.assertNotEqual(output(profile, "a").read_bytes(), output(profile, "c").read_bytes())

    def test_timestamps_follow_the_packet_index(self):
        for index, (seconds, micros, _) in enumerate(read_pcap(output("lab"))):
            self.assertEqual((seconds - 1_700_000_000) * 1_000_000 + micros, index * 10)


class Sample(unittest.TestCase):
    def test_sample_is_what_its_command_makes(self):
        """samples/README.md: `mirrorgen.py lab -o samples/aws-mirror.pcap` (defaults)."""
        self.assertTrue(SAMPLE.exists(), f"{SAMPLE} is missing")
        self.assertEqual(SAMPLE.read_bytes(), output("lab").read_bytes(),
                         "samples/aws-mirror.pcap differs from a fresh 'mirrorgen.py lab': regenerate it")
        sample_sidecar, fresh_sidecar = read_sidecar(SAMPLE), read_sidecar(output("lab"))
        self.assertEqual(sample_sidecar.pop("file"), SAMPLE.name)
        fresh_sidecar.pop("file")
        self.assertEqual(sample_sidecar, fresh_sidecar)


class DecodesAsDescribed(unittest.TestCase):
    """tshark's reading of each capture, packet by packet, against the sidecar."""

    def test_every_packet(self):
        for profile in PACKETS:
            sidecar = read_sidecar(output(profile))
            frames = Runs.decoded[profile]
            with self.subTest(profile=profile):
                self.assertEqual(len(frames), len(sidecar["packets"]))
                self.assertEqual(sidecar["packet_count"], len(frames))
                expected_total = PACKETS[profile] or sidecar["packets_total"]
                self.assertEqual(len(frames), expected_total)
            truncating = {session["vni"] for session in sidecar["sessions"] if session["truncate"]}
            mismatches = []
            for packet, frame in zip(sidecar["packets"], frames):
                try:
                    self.check_packet(packet, frame, packet["vni"] in truncating)
                except AssertionError as error:
                    mismatches.append(f"packet {packet['index']}: {str(error).splitlines()[0]}")
            with self.subTest(profile=profile):
                # The first few are enough to see what is wrong; a broken format breaks them all.
                self.assertEqual(mismatches[:5], [], f"{len(mismatches)} packets differ from the sidecar")

    def check_packet(self, packet, frame, session_truncates):
        self.assertEqual(int(frame["frame.len"][0]), packet["frame_len"])
        self.assertTrue(frame["frame.protocols"][0].startswith(expected_protocols(packet)),
                        f'{frame["frame.protocols"][0]} for {expected_protocols(packet)}')
        layers = l3_layers(frame)
        outer, inner = layers[0], layers[-1]
        self.assertEqual((outer["src"], outer["dst"]), (packet["outer_src"], packet["outer_dst"]))
        self.assertEqual(int(frame["udp.srcport"][0]), packet["outer_sport"])
        self.assertEqual(int(frame["udp.dstport"][0]), packet["outer_dport"])
        self.assertEqual(layers[-2]["src"] if packet["encap"] == "gwlb-geneve-vxlan" else outer["src"],
                         packet["mirror_src"])

        # Tunnels and VNIs.
        if packet["encap"] in ("aws-vxlan", "azure-vxlan", "vxlan-ipv6", "gwlb-geneve-vxlan"):
            self.assertEqual(frame["vxlan.vni"], [str(packet["vni"])])
            self.assertEqual(frame["vxlan.flags"], ["0x0800"])  # I flag only
        if packet["encap"] == "gwlb-geneve-vxlan":
            self.assertEqual(frame["geneve.vni"], ["0x000000"])
        elif packet["encap"].startswith("geneve"):
            self.assertEqual(int(frame["geneve.vni"][0], 16), packet["vni"])
        if packet["encap"].startswith("geneve") or packet["encap"].startswith("gwlb"):
            self.assertEqual(len(frame["geneve.option.class"]), packet["geneve_options"])
            self.assertEqual(frame["geneve.flags.critical"], ["0"])

        # The inner packet: addresses, TTL, VLAN, full length, captured length.
        self.assertEqual(inner["version"], packet["inner_version"])
        self.assertEqual((inner["src"], inner["dst"]), (packet["inner_src"], packet["inner_dst"]))
        self.assertEqual(inner["ttl"], packet["inner_ttl"])
        self.assertEqual(frame["vlan.id"], [] if packet["inner_vlan"] is None else [str(packet["inner_vlan"])])
        self.assertEqual(inner["length"] + inner_l2_len(packet), packet["inner_len"])
        self.assertEqual(packet["frame_len"] - outer_overhead(packet, frame), packet["captured_inner_len"])
        self.assertEqual(packet["truncated"], packet["captured_inner_len"] < packet["inner_len"])

        # Inner ports (ICMP: the echo identifier).
        kind = packet["kind"]
        if kind in ("tcp", "udp"):
            ports = (int(frame[f"{kind}.srcport"][-1]), int(frame[f"{kind}.dstport"][-1]))
            self.assertEqual(ports, (packet["inner_sport"], packet["inner_dport"]))
        elif kind == "icmp":
            self.assertEqual(int(frame["icmp.ident"][0]), packet["inner_sport"])
        elif kind == "icmpv6" and not packet["truncated"]:
            self.assertEqual(int(frame["icmpv6.echo.identifier"][0], 0), packet["inner_sport"])

        # Checksums: IPv4 headers always good; L4 good unless the mirror cut the packet short; the
        # outer UDP checksum is zero over IPv4 and computed over IPv6.
        self.assertTrue(all(status == CHECKSUM_GOOD for status in frame["ip.checksum.status"]))
        self.assertEqual(frame["udp.checksum.status"][0],
                         CHECKSUM_NOT_PRESENT if outer["version"] == 4 else CHECKSUM_GOOD)
        if not packet["truncated"]:
            statuses = (frame["udp.checksum.status"][1:] + frame["tcp.checksum.status"]
                        + frame["icmp.checksum.status"] + frame["icmpv6.checksum.status"])
            self.assertTrue(all(s in (CHECKSUM_GOOD, CHECKSUM_NOT_PRESENT) for s in statuses), statuses)
            self.assertNotIn(CHECKSUM_NOT_PRESENT, frame["tcp.checksum.status"] + frame["icmp.checksum.status"])

        # Nothing malformed; no warnings except in truncating sessions (tshark then sees ACKs of
        # bytes it never saw) and on second copies (which it rightly calls retransmissions).
        if not packet["truncated"]:
            self.assertEqual(frame["_ws.malformed"], [])
        if not session_truncates and not packet["second_copy"]:
            severities = [int(value) for value in frame["_ws.expert.severity"]]
            self.assertTrue(all(severity < PI_WARN for severity in severities), severities)


def packets_and_frames(profile):
    return read_sidecar(output(profile))["packets"], Runs.decoded[profile], read_pcap(output(profile))


class Profiles(unittest.TestCase):
    """What each profile promises, read from the decoded capture."""

    def vni_sources(self, profile):
        sources = collections.defaultdict(set)
        for frame in Runs.decoded[profile]:
            layers = l3_layers(frame)
            vni = int(frame["vxlan.vni"][0]) if frame["vxlan.vni"] else int(frame["geneve.vni"][0], 16)
            source = layers[-2]["src"] if frame["geneve.vni"] and frame["vxlan.vni"] else layers[0]["src"]
            sources[vni].add(source)
        return dict(sources)

    def test_lab(self):
        packets, frames, records = packets_and_frames("lab")
        self.assertTrue(300 <= len(frames) <= 2000)
        self.assertEqual(self.vni_sources("lab"), {101: {"10.0.1.10", "10.0.1.11"}, 102: {"10.0.2.20"},
                                                   103: {"10.0.3.30"}})
        self.assertEqual({l3_layers(frame)[0]["dst"] for frame in frames}, {"10.0.0.100"})
        protocols = " ".join(frame["frame.protocols"][0] for frame in frames)
        for needed in ("vxlan:eth:ethertype:ip:tcp", "vxlan:eth:ethertype:ip:udp:dns", ":icmp",
                       "vxlan:eth:ethertype:ipv6:tcp", ":icmpv6", "vlan:ethertype:ip:",
                       "vlan:ethertype:ipv6:", ":http", ":tls"):
            self.assertIn(needed, protocols)
        inner6 = {l3_layers(f)[-1]["src"] for f in frames if l3_layers(f)[-1]["version"] == 6}
        self.assertIn("fd00:3::30", inner6)
        # Both ends of one connection mirrored in session 101: byte-identical inner packets, and as
        # many as the sidecar marks as second copies.
        seen = collections.Counter(blanked_l3(frame, packet) for packet, (_, _, frame) in zip(packets, records))
        second_copies = [p for p in packets if p["second_copy"]]
        self.assertGreater(len(second_copies), 10)
        self.assertEqual(sum(count - 1 for count in seen.values()), len(second_copies))
        for packet in second_copies:
            first = packets[packet["copy_of"]]
            self.assertEqual((first["vni"], packet["vni"]), (101, 101))
            self.assertEqual({first["outer_src"], packet["outer_src"]}, {"10.0.1.10", "10.0.1.11"})
            self.assertEqual(records[packet["index"]][2][50:], records[first["index"]][2][50:])

    def test_both_ends(self):
        packets, frames, records = packets_and_frames("both-ends")
        firsts = [p for p in packets if not p["second_copy"]]
        seconds = [p for p in packets if p["second_copy"]]
        self.assertIn(len(firsts) - len(seconds), (0, 1))  # the capture may end between two copies
        routed = same_subnet = 0
        for packet in seconds:
            first = packets[packet["copy_of"]]
            self.assertEqual(packet["copy_of"], packet["index"] - 1)
            frame, first_frame = frames[packet["index"]], frames[first["index"]]
            self.assertNotEqual(l3_layers(frame)[0]["src"], l3_layers(first_frame)[0]["src"])
            self.assertNotEqual(frame["vxlan.vni"], first_frame["vxlan.vni"])
            self.assertEqual(blanked_l3(records[packet["index"]][2], packet),
                             blanked_l3(records[first["index"]][2], first))
            inner, first_inner = l3_layers(frame)[-1], l3_layers(first_frame)[-1]
            ttl_drop = first_inner.pop("ttl") - inner.pop("ttl")
            self.assertEqual(inner, first_inner)
            self.assertEqual(frame["tcp.seq_raw"], first_frame["tcp.seq_raw"])
            if packet["inner_version"] == 4:  # the last ip.id is the inner header's
                self.assertEqual(frame["ip.id"][-1], first_frame["ip.id"][-1])
            if "10.1.5.50" in (first["outer_src"], packet["outer_src"]):
                self.assertEqual(ttl_drop, 1)
                routed += 1
            else:
                self.assertEqual(ttl_drop, 0)
                same_subnet += 1
        self.assertGreater(routed, 0)
        self.assertGreater(same_subnet, 0)
        self.assertEqual({p["vni"] for p in packets}, {101, 104, 105})

    def test_fleet(self):
        packets, frames, records = packets_and_frames("fleet")
        sessions = read_sidecar(output("fleet"))["sessions"]
        # One session per ENI: its own VNI and outer source, the source among its addresses.
        self.assertEqual(len(sessions), 12)
        self.assertEqual(len({s["vni"] for s in sessions}), 12)
        for session in sessions:
            self.assertEqual(len(session["mirror_sources"]), 1)
            self.assertIn(session["mirror_sources"][0], session["source_ips"])
        self.assertEqual({vni: sources for vni, sources in self.vni_sources("fleet").items()},
                         {s["vni"]: set(s["mirror_sources"]) for s in sessions})
        seconds = [p for p in packets if p["second_copy"]]
        self.assertGreater(len(seconds), len(packets) // 5)
        routed = 0
        for packet in seconds:
            first = packets[packet["copy_of"]]
            self.assertNotEqual(first["vni"], packet["vni"])
            self.assertEqual((first["direction"], packet["direction"]), ("egress", "ingress"))
            self.assertEqual(blanked_l3(records[packet["index"]][2], packet),
                             blanked_l3(records[first["index"]][2], first))
            routed += first["inner_ttl"] - packet["inner_ttl"]
        self.assertGreater(routed, 0)
        self.assertEqual({p["inner_version"] for p in seconds}, {4, 6})
        self.assertEqual({p["kind"] for p in seconds}, {"tcp", "udp", "icmp"})
        # And traffic mirrored at one end only: the internet side of every ENI.
        self.assertTrue(any(p["inner_src"].startswith("203.0.113.") for p in packets))

    def test_gwlb(self):
        packets, frames, _ = packets_and_frames("gwlb")
        for frame in frames:
            self.assertEqual(frame["geneve.proto_type"], ["0x0800"])
            self.assertEqual([int(c, 16) for c in frame["geneve.option.class"]], [0x0108] * 3)
            self.assertEqual([int(t, 16) for t in frame["geneve.option.type"]], [1, 2, 3])
            # tshark: the header's options length, then each option's (header included).
            self.assertEqual(frame["geneve.option.length"], ["32", "12", "12", "8"])
            layers = l3_layers(frame)
            self.assertEqual(layers[0]["dst"], "10.100.0.10")
            self.assertEqual(layers[1]["dst"], "10.0.0.200")
        self.assertEqual({l3_layers(f)[0]["src"] for f in frames}, {"10.100.0.50", "10.100.1.50"})
        self.assertEqual(self.vni_sources("gwlb"), {101: {"10.0.1.10"}, 102: {"10.0.2.20"}, 103: {"10.0.3.30"}})

    def test_azure(self):
        self.assertEqual(self.vni_sources("azure"), {201: {"10.240.0.21"}, 202: {"10.240.0.21"},
                                                     203: {"10.240.0.22"}})

    def test_geneve_options(self):
        packets, frames, _ = packets_and_frames("geneve-options")
        layouts = collections.Counter()
        for packet, frame in zip(packets, frames):
            self.assertEqual(frame["geneve.proto_type"], ["0x6558"])
            layouts[(packet["vni"], tuple(frame["geneve.option.length"][1:]))] += 1
        self.assertEqual(set(layouts), {(301, ()), (301, ("8",)), (301, ("8", "12", "4")), (302, ("128", "8"))})

    def test_geneve_bare_ip(self):
        packets, frames, _ = packets_and_frames("geneve-bare-ip")
        versions = collections.Counter()
        for packet, frame in zip(packets, frames):
            expected = "0x0800" if packet["inner_version"] == 4 else "0x86dd"
            self.assertEqual(frame["geneve.proto_type"], [expected])
            versions[expected] += 1
        self.assertEqual(set(versions), {"0x0800", "0x86dd"})

    def test_ipv6_outer(self):
        _, frames, _ = packets_and_frames("ipv6-outer")
        variants = collections.Counter((frame["ipv6.src"][0], "ipv6.dstopts" in frame["frame.protocols"][0])
                                       for frame in frames)
        self.assertEqual(set(variants), {("fd00:1::11", False), ("fd00:1::12", True)})

    def test_truncated(self):
        packets, frames, _ = packets_and_frames("truncated")
        truncated = [p for p in packets if p["truncated"]]
        self.assertGreater(len(truncated), 20)
        self.assertGreater(len(packets) - len(truncated), 20)
        self.assertEqual({p["vni"] for p in truncated}, {1, 0xF00000})
        for packet in truncated:
            self.assertEqual(packet["captured_inner_len"], 128)
            self.assertEqual(int(frames[packet["index"]]["frame.len"][0]), 50 + 128)
            self.assertGreater(l3_layers(frames[packet["index"]])[-1]["length"] + 14, 128)

    def test_min_size(self):
        self.assertEqual({frame["frame.len"][0] for frame in Runs.decoded["min-size"]}, {"114"})

    def test_imix(self):
        lengths = collections.Counter(frame["frame.len"][0] for frame in Runs.decoded["imix"])
        self.assertEqual(lengths, {"114": 350, "644": 200, "1568": 50})


def connection(packet):
    """Both directions of an inner connection: the protocol and its two ends, sorted."""
    if packet["inner_proto"] in PORTED_PROTOCOLS:
        ends = sorted([(packet["inner_src"], packet["inner_sport"]),
                       (packet["inner_dst"], packet["inner_dport"])])
    else:
        ends = sorted([packet["inner_src"], packet["inner_dst"]])
    return (packet["inner_proto"], *ends)


class Split(unittest.TestCase):
    def read_parts(self, profile, run, count, split_meta):
        """{index: file number} and {index: sidecar packet} of a split run, after checking that its
        files add up to the unsplit capture, each in the original order."""
        whole = read_pcap(output(profile))
        base = output(profile, run)
        parts = [base.with_name(f"{base.stem}.{i}.pcap") for i in range(count)]
        self.assertFalse(base.exists())
        file_of, packets, merged = {}, {}, {}
        for number, part in enumerate(parts):
            sidecar = read_sidecar(part)
            self.assertEqual(sidecar["split"], dict(split_meta, index=number, count=count))
            records = read_pcap(part)
            indices = [p["index"] for p in sidecar["packets"]]
            self.assertEqual(indices, sorted(indices))  # order kept
            self.assertEqual(len(records), len(indices))
            for packet, record in zip(sidecar["packets"], records):
                merged[packet["index"]] = record
                file_of[packet["index"]] = number
                packets[packet["index"]] = packet
        self.assertEqual([merged[i] for i in range(len(whole))], whole)
        return file_of, packets

    def assert_outer_flows_in_one_file(self, file_of, packets):
        flow_files = collections.defaultdict(set)
        for index, packet in packets.items():
            flow = (packet["outer_src"], packet["outer_dst"], packet["outer_sport"],
                    packet["outer_dport"])
            flow_files[flow].add(file_of[index])
        self.assertTrue(all(len(files) == 1 for files in flow_files.values()))

    def test_split_files_add_up_and_keep_flows_and_separate_copies(self):
        for profile, count in SPLITS:
            with self.subTest(profile=profile, split=count):
                file_of, packets = self.read_parts(profile, f"split{count}", count, {})
                self.assert_outer_flows_in_one_file(file_of, packets)
                self.assertGreater(len(set(file_of.values())), 1)
                copies = [p for p in packets.values() if p["second_copy"]]
                self.assertTrue(copies)
                for packet in copies:
                    self.assertNotEqual(file_of[packet["index"]], file_of[packet["copy_of"]])

    def test_split_by_inner_keeps_connections_and_copies_together(self):
        for profile, count in INNER_SPLITS:
            with self.subTest(profile=profile, split=count):
                run = f"split{count}-inner"
                file_of, packets = self.read_parts(profile, run, count, {"by": "inner"})
                command = read_sidecar(output(profile, run).with_name(f"{profile}.0.pcap"))["command"]
                self.assertIn(f"--split {count} --split-by inner", command)
                connection_files = collections.defaultdict(set)
                directions = collections.defaultdict(set)
                for index, packet in packets.items():
                    connection_files[connection(packet)].add(file_of[index])
                    directions[connection(packet)].add(packet["inner_src"])
                self.assertTrue(all(len(files) == 1 for files in connection_files.values()),
                                {c: f for c, f in connection_files.items() if len(f) > 1})
                # Not vacuous: connections seen both ways, ICMP among them, and several files.
                self.assertGreater(sum(len(d) == 2 for d in directions.values()), 3)
                self.assertTrue(any(c[0] not in PORTED_PROTOCOLS for c in connection_files))
                self.assertGreater(len(set(file_of.values())), 1)
                copies = [p for p in packets.values() if p["second_copy"]]
                self.assertTrue(copies)
                for packet in copies:
                    self.assertEqual(file_of[packet["index"]], file_of[packet["copy_of"]])

    def test_split_by_lb_keeps_outer_flows_and_lets_copies_fall_as_they_may(self):
        for profile, count in LB_SPLITS:
            with self.subTest(profile=profile, split=count):
                file_of, packets = self.read_parts(profile, f"split{count}-lb", count, {"by": "lb"})
                self.assert_outer_flows_in_one_file(file_of, packets)
                self.assertEqual(set(file_of.values()), set(range(count)))
                copies = [p for p in packets.values() if p["second_copy"]]
                together = sum(file_of[p["index"]] == file_of[p["copy_of"]] for p in copies)
                # Nothing keeps the copies together or apart: both happen, often.
                self.assertGreater(together, len(copies) // (2 * count))
                self.assertGreater(len(copies) - together, len(copies) // 2)


class CommandLine(unittest.TestCase):
    def run_generator(self, *args, python=(PYTHON,)):
        return subprocess.run([*python, str(GENERATOR), *args], capture_output=True, text=True)

    def test_help_lists_every_profile(self):
        result = self.run_generator("--help")
        self.assertEqual(result.returncode, 0)
        for profile in PACKETS:
            self.assertIn(f"  {profile} ", result.stdout)

    def test_refusals(self):
        target = str(Runs.directory / "refused.pcap")
        for args, message in [
            (("azure", "-o", target, "--truncate", "100"), "--truncate applies to AWS"),
            (("both-ends", "-o", target, "--split", "1"), "--split needs at least 2"),
            (("fleet", "-o", target, "--split", "2"), "cannot put the two copies of every packet"),
            (("both-ends", "-o", target, "--split-by", "inner"), "--split-by needs --split"),
            (("lab", "-o", target, "--split", "2", "--split-by", "rss"), "invalid choice"),
            (("lab", "-o", target, "--packets", "0"), "must be at least 1"),
            (("nonsense", "-o", target), "invalid choice"),
        ]:
            with self.subTest(args=args):
                result = self.run_generator(*args)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(message, result.stderr)
        self.assertFalse(Path(target).exists())

    def test_missing_scapy_is_explained(self):
        # -S: no site-packages, hence no Debian dist-packages and no scapy.
        result = self.run_generator("lab", "-o", str(Runs.directory / "x.pcap"), python=(PYTHON, "-S"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("scapy is not importable", result.stderr)
        self.assertIn("python3-scapy", result.stderr)


class CorpusModel(unittest.TestCase):
    """The conformance corpus' expectation (corpus/model.py) where it meets the broker's own tests:
    as pipelines/tests/pipeline.rs `round_robin_turns_go_to_copies_not_to_duplicates`, a
    round-robin group keeps alternating when every packet arrives twice, because a duplicate
    takes no turn."""

    def test_round_robin_turns_go_to_copies_not_to_duplicates(self):
        import sys
        sys.path.insert(0, str(HERE))
        from corpus.model import Config, Group, Session, expect
        from corpus.packets import Packet

        config = Config(name="rr-dedup", sessions=[Session("web", ["ids"], vni=101)],
                        groups=[Group("ids", ["ids-1", "ids-2"], balance="round-robin")],
                        dedup_window="10s")
        packets = [Packet(frame=bytes([seq]) * 60, note=f"packet {seq}, copy {copy}", outer_src="10.0.0.1",
                          vni=101, delivered=bytes([seq]) * 60, full_len=60, identity=seq)
                   for seq in range(1, 9) for copy in (1, 2)]
        expectation = expect(config, packets)
        self.assertEqual(expectation.outcomes, {"delivered": 8, "duplicate": 8})
        self.assertEqual([e.input_index for e in expectation.ports["ids-1"]], [0, 4, 8, 12])
        self.assertEqual([e.input_index for e in expectation.ports["ids-2"]], [2, 6, 10, 14])


class ConformanceCorpus(unittest.TestCase):
    """tests/conformance/ (see its README) is exactly what scripts/gen/conformance.py writes, also
    in a process with another string-hash seed."""

    def test_corpus_is_what_its_generator_writes(self):
        for hash_seed in ("0", "4242"):
            result = subprocess.run([PYTHON, str(HERE / "conformance.py"), "--check"], capture_output=True,
                                    text=True, env=dict(os.environ, PYTHONHASHSEED=hash_seed))
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
