"""Addresses and hashes shared by every format.

Everything here is a pure function of its arguments. In particular nothing uses Python's `hash()`
of a string, which changes from process to process (PYTHONHASHSEED): a seed must give byte-identical
output in every run.
"""

import hashlib
import ipaddress

# Where source ports chosen by tunnel endpoints fall: the IANA dynamic range (RFC 6335), as RFC 7348
# section 5 recommends for the VXLAN source port ("a hash of the inner packet's headers").
DYNAMIC_PORT_FIRST = 49152
DYNAMIC_PORT_COUNT = 65536 - DYNAMIC_PORT_FIRST


def stable_hash(*parts) -> int:
    """A 64-bit hash of the string forms of `parts`, identical in every process."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(str(part).encode())
        digest.update(b"\x00")
    return int.from_bytes(digest.digest(), "big")


def flow_source_port(*flow) -> int:
    """The UDP source port a tunnel endpoint derives from the inner flow, so that receivers' RSS
    spreads inner flows over queues while each inner flow stays on one."""
    return DYNAMIC_PORT_FIRST + stable_hash("udp-source-port", *flow) % DYNAMIC_PORT_COUNT


def local_mac(*tag) -> str:
    """A locally administered unicast MAC address (first octet 0x02) named by `tag`: every address
    the generator invents comes from here, so two names never share a MAC by accident."""
    value = stable_hash("mac", *tag)
    octets = [0x02] + [(value >> shift) & 0xFF for shift in (32, 24, 16, 8, 0)]
    return ":".join(f"{octet:02x}" for octet in octets)


def ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version
