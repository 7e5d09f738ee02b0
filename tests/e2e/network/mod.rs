//! Analyzers across an IP network (issue 11): the broker owns an address on a `net_af_packet`
//! port, receives mirrored VXLAN sent to it through a peer's kernel, and sends each copy
//! encapsulated (VXLAN, GENEVE, L2GRE, ERSPAN II) to analyzers it reaches by ARP/ND, directly or
//! through a gateway. Everything runs in network namespaces the test builds and removes.
//!
//! # Design
//! - **One topology definition**: `scripts/netlab.sh` builds it (namespaces, veth pairs, a
//!   bridge, a router; the address plan is drawn there) and prints its plan;
//!   [`topology::Netlab`] drives the script and removes the topology on drop, also when the
//!   test panics. The lab a newcomer runs (`scripts/run-lab.sh --network`) uses the same script,
//!   the same sender and the same config as [`vxlan`]'s first test.
//! - **Independent ends**: the peer sends through its kernel's UDP stack
//!   (`scripts/netlab/send.py`), so it must resolve the broker's address by ARP first; each
//!   analyzer decapsulates VXLAN with a Linux `vxlan` netdev in external mode and captures the
//!   inner frames, and captures everything on its interface, which the test decodes on its own
//!   ([`decode`]) and with tshark's dissectors, and the two must agree frame by frame.
//! - **Expected frames** come from the sample capture decoded by the e2e decoder and the
//!   validated config ([`verify`]): which groups get a packet, every header field of each copy,
//!   each flow at one port of its group, whole and in order.
//! - **The broker or a stand-in**: every scenario that the broker's absence does not make
//!   meaningless also runs with `scripts/netlab/standin.py` in the broker's namespace — the
//!   kernel's sockets doing what issue 11 asks for (the tests named `harness_…_kernel_stand_in`).
//!   They prove the harness (topology, sender, receivers, decoders, comparisons) on its own, and
//!   tell a broken harness from a broken broker when a broker test fails.
//!
//! # Limitations
//! - Which port of a group gets a flow is not predicted (that would copy the broker's Maglev
//!   table); what `balance = "flow"` promises is checked instead (see [`verify`]).
//! - Needs root (network namespaces); without it a test fails, unless
//!   `BROKER_TESTS_ALLOW_UNPRIVILEGED=1` makes it print "SKIPPED". The Suricata test skips, and
//!   says so, when `suricata` is not installed (`scripts/install-deps.sh --suricata`).
//! - The kernel here has no geneve, gretap or erspan netdevs: those encapsulations are checked
//!   from captures (the test's decoder and tshark), not by a kernel receiver.

mod decode;
mod scenario;
mod topology;
mod traffic;
mod verify;

mod encapsulations;
mod exception;
mod liveness;
mod mtu;
mod suricata;
mod vxlan;
