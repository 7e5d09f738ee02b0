//! Egress encapsulation: the outer headers that carry a copy to a tunnel tool port (an analyzer
//! reachable only by IP), built once per destination and patched per packet.
//!
//! ```text
//! VXLAN    Ethernet | IPv4 or IPv6 | UDP → 4789 | VXLAN                      | inner frame
//! GENEVE   Ethernet | IPv4 or IPv6 | UDP → 6081 | GENEVE + the broker option | inner frame
//! L2GRE    Ethernet | IPv4 or IPv6 | GRE 0x6558 [key]                        | inner frame
//! ERSPAN   Ethernet | IPv4 or IPv6 | GRE 0x88BE + sequence | ERSPAN type II  | inner frame
//! ```
//!
//! # Design
//! **Templates.** A [`Template`] is made when the plan is built, from a [`TemplateSpec`] (the
//! encapsulation and its parameters, the via port's MAC, addresses and MTU, the resolved next
//! hop's MAC). It holds the whole outer header with every constant written by the `wire` views
//! (the same code that parses them), the per-packet fields at zero, and the partial checksums of
//! the constant parts. [`Template::write`] copies those bytes into the header segment the caller
//! chains in front of the copy (the copy's own bytes are never written: a clone shares them with
//! every other group's clone) and patches the per-packet fields:
//!
//! | field | value |
//! |---|---|
//! | IPv4 total length / IPv6 payload length, UDP length | from the inner frame's length |
//! | IPv4 identification | [`PacketFields::ip_ident`] |
//! | IPv4 header checksum | the template's partial sum + total length + identification |
//! | IPv6 flow label | low 20 bits of the flow hash (RFC 6438: tunnel endpoints set it from the inner flow) |
//! | UDP source port | 49152 + flow hash mod 16384 ([`udp_source_port`]) |
//! | UDP checksum | 0 over IPv4; computed over IPv6 |
//! | VXLAN / GENEVE VNI | the session's VNI, when the port does not fix one |
//! | GENEVE option | session VNI and direction (the broker name hash is constant) |
//! | GRE sequence, ERSPAN T bit and session id | [`PacketFields::sequence`], [`PacketFields::truncated`], the session VNI mod 1024 unless fixed |
//!
//! Everything else (TTL/hop limit 64, DF set, VXLAN flags 0x08 with every reserved bit zero, the
//! GENEVE protocol 0x6558, the GRE flags) is in the template and never touched again. The
//! per-packet work is a copy of at most [`MAX_HEADER_LEN`] bytes and a handful of stores: no
//! allocation, no loop over the payload — except over IPv6, where RFC 8200 §8.1 makes the UDP
//! checksum mandatory ("whenever originating a UDP packet, an IPv6 node must compute a UDP
//! checksum over the packet and the pseudo-header"), and Zeek drops tunnel packets with a zero
//! UDP checksum over IPv6. That sum is taken over the inner frame's segments
//! ([`Template::inner_frame_of`]) before the header is chained; GRE has no checksum and needs no
//! such pass.
//!
//! **Incremental IPv4 checksum.** The one's complement sum is associative, so the template
//! keeps the sum of its IPv4 header with total length, identification and checksum at zero,
//! and each packet adds its two values to it (RFC 1624's update, from fields that were zero).
//! A property test holds every patched header equal to one built from scratch by the `wire`
//! views with the checksums computed in full, as `stage::decap`'s fast path is held equal to
//! its general path.
//!
//! **UDP source port.** RFC 7348 §5: "It is recommended that the UDP source port number be
//! calculated using a hash of fields from the inner packet [...] it is RECOMMENDED that the
//! value be in the dynamic/private port range 49152-65535". The hash is the balancer's
//! symmetric flow hash ([`crate::stage::balance::flow_hash`]), so both directions of a
//! connection share one outer 5-tuple and an analyzer's RSS or AF_PACKET fanout keeps them on
//! one worker, as with AWS Traffic Mirroring's own VXLAN.
//!
//! **The broker's GENEVE option.** Every GENEVE copy carries one option (RFC 8926 §3.5) in the
//! experimental-use class range, not critical (a receiver that does not know it ignores it):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Option Class = 0xFFF0      |  Type = 0x01  |0|0|0|Len = 2  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Session VNI (24 bits, big-endian)    |   Direction   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Broker name hash (32 bits, big-endian, FNV-1a)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! - *Session VNI*: the VNI of the mirror session the copy came from (even when the GENEVE
//!   header's own VNI is fixed by the port's `vni`).
//! - *Direction*: 0 unknown, 1 ingress (towards the mirrored interface: the inner destination is
//!   one of the session's `source_ips`), 2 egress (from it). No cloud's mirror format carries
//!   this.
//! - *Broker name hash*: 32-bit FNV-1a of `[broker] name` ([`broker_name_hash`]), telling apart
//!   the brokers of a fleet that feed one analyzer.
//!
//! Reading it: with tshark, `tshark -r copies.pcap -Y 'geneve.option.class == 0xfff0' -T fields
//! -e geneve.vni -e geneve.option.unknown.data` prints the 8 data bytes as hex (`0000650100c0ffee`:
//! session VNI 0x000065 = 101, direction 1 = ingress, hash 0x00c0ffee). In Zeek, the options of
//! the packet being analyzed are returned by `PacketAnalyzer::Geneve::get_options()` (a vector per
//! GENEVE layer of records with `class`, `typ` and `data`); take the record with `class == 0xFFF0`
//! and `typ == 1` and read `data` as above: bytes 0–2 the session VNI, byte 3 the direction,
//! bytes 4–7 the broker name hash.
//!
//! **ERSPAN type II.** The GRE header has only the S bit (draft-foschiano-erspan-03: "only S (bit
//! 03) may be set to 1"); the sequence number is per tool port, shared by the workers, and comes
//! from the caller ([`PacketFields::sequence`]; [`Template::uses_sequence`] says which ports need
//! one). The ERSPAN header has version 1, the session id, En = 11 ("VLAN tag preserved in
//! frame": the inner frame is sent as mirrored, tags included, so the VLAN field is undefined
//! and written 0, as FD.io VPP does), COS 0, index 0, and the T bit set on copies cut to fit the
//! MTU ("This occurs if the ERSPAN encapsulated frame exceeds the configured MTU").
//!
//! **MTU.** The via port's MTU is the largest IP packet it sends, so the largest inner frame is
//! the MTU minus the outer IP and tunnel headers ([`Encapsulation::max_inner_len`]); the caller
//! cuts longer copies to it and counts them (`egress_truncated`); [`Template::write`] refuses a
//! longer one rather than emit a frame the port cannot send. Copies are never fragmented: DF is
//! set, and a mirror copy is worth less than the cost of reassembly at the analyzer.
//!
//! # Limitations
//! - The outer header has no VLAN tag, no IPv4 options and no IPv6 extension headers, and its
//!   DSCP/traffic class is 0.
//! - ERSPAN type II only (type III, which has a direction bit, is not decoded by Suricata); COS
//!   and the original VLAN are not conveyed in the ERSPAN header (the frame keeps its tags).
//! - A copy whose inner frame has no flow key (non-IP) gets whatever hash the caller gives; the
//!   pipeline's choice is the caller's.
//! - Over IPv6 the UDP checksum costs one pass over the inner frame per copy (see *Design*); an
//!   IPv4 remote avoids it.

mod template;
#[cfg(test)]
mod tests;

pub use template::{
    Encapsulation, InnerFrame, MAX_HEADER_LEN, OPTION_CLASS, OPTION_DATA_LEN, OPTION_TYPE,
    PacketFields, SessionIdChoice, Template, TemplateError, TemplateSpec, VniChoice, WriteError,
    broker_name_hash, direction_code, udp_source_port,
};
