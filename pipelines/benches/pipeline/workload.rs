//! The full-pipeline bench's traffic: minimum-size AWS Traffic Mirroring frames (a 64-byte inner
//! frame, 114 bytes with the VXLAN tunnel), spread over the 64 sessions of the bench config, in
//! the mix of the mirror generator's `min-size` profile (scripts/gen/mirrorgen.py): IPv4 TCP,
//! UDP (DNS) and ICMP, IPv6 UDP and ICMPv6, both directions of every conversation.
//!
//! Every frame is different (a counter in the inner payload), so that, replayed in a loop longer
//! than the dedup window, none is a duplicate — as in the end-to-end bench.

use pipelines::testing::{aws_vxlan, ethernet, ipv4, ipv6, tcp, udp, v4, v6};

/// The bench configs' sessions take VNIs `VNI_BASE..VNI_BASE + SESSIONS`.
const VNI_BASE: u32 = 1000;
const SESSIONS: u32 = 64;
/// Inner frame length of a minimum-size mirrored packet.
pub const INNER_LEN: usize = 64;

/// The mirrored ENIs (the bench configs' `source_ips`; the allowlist is their /16).
const ENIS: [&str; 4] = ["172.31.10.5", "172.31.20.7", "172.31.30.9", "172.31.40.11"];
const ENI_V6: &str = "2001:db8:20::7";

/// Deterministic, so every run replays the same frames.
use pipelines::testing::SplitMix64 as Rng;

/// Pads or cuts `frame` to `len` bytes (the payloads below are sized so that it only pads the
/// counter in).
fn sized(mut frame: Vec<u8>, len: usize) -> Vec<u8> {
    frame.resize(len, 0);
    frame
}

/// `count` different mirrored frames.
pub fn frames(count: usize) -> Vec<Vec<u8>> {
    frames_of(count, 4096)
}

/// `count` different mirrored frames of `conversations` conversations per mirrored ENI (each a
/// few inner flows: both directions, the protocol of each frame picked apart).
pub fn frames_of(count: usize, conversations: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(0xB0A7_5EED);
    (0..count)
        .map(|i| {
            let pick = rng.next_u64();
            let eni_index = (pick % 4) as usize;
            let eni = v4(ENIS[eni_index]);
            let egress = (pick >> 2) & 1 == 0;
            let conversation = (pick >> 3) % conversations;
            let port = 32768 + conversation as u16;
            let counter = (i as u32).to_be_bytes();
            let vni = VNI_BASE + (conversation as u32 * 7 + eni_index as u32) % SESSIONS;
            let inner = match (pick >> 16) % 100 {
                // 51 %: TCP to an iperf-like service
                0..=50 => {
                    let peer = [203, 0, 113, 50 + (conversation % 60) as u8];
                    let (src, dst, sport, dport) = if egress {
                        (eni, peer, port, 5201)
                    } else {
                        (peer, eni, 5201, port)
                    };
                    ethernet(
                        0x0800,
                        &ipv4(src, dst, 6, &tcp(sport, dport, i as u32, &counter)),
                    )
                }
                // 18 %: DNS over IPv4
                51..=68 => {
                    let resolver = v4("198.51.100.53");
                    let (src, dst, sport, dport) = if egress {
                        (eni, resolver, port, 53)
                    } else {
                        (resolver, eni, 53, port)
                    };
                    ethernet(0x0800, &ipv4(src, dst, 17, &udp(sport, dport, &counter)))
                }
                // 21 %: ping
                69..=89 => {
                    let peer = [203, 0, 113, 100 + (conversation % 20) as u8];
                    let (src, dst) = if egress { (eni, peer) } else { (peer, eni) };
                    let mut echo = vec![if egress { 8 } else { 0 }, 0, 0, 0, 0, 1];
                    echo.extend_from_slice(&(conversation as u16).to_be_bytes());
                    echo.extend_from_slice(&counter);
                    ethernet(0x0800, &ipv4(src, dst, 1, &echo))
                }
                // 5 %: DNS over IPv6
                90..=94 => {
                    let (eni6, resolver) = (v6(ENI_V6), v6("2001:db8:53::53"));
                    let (src, dst, sport, dport) = if egress {
                        (eni6, resolver, port, 53)
                    } else {
                        (resolver, eni6, 53, port)
                    };
                    ethernet(
                        0x86DD,
                        &ipv6(src, dst, 17, &udp(sport, dport, &counter[2..])),
                    )
                }
                // 5 %: ping over IPv6
                _ => {
                    let (eni6, peer) = (v6(ENI_V6), v6("2001:db8:100::1"));
                    let (src, dst) = if egress { (eni6, peer) } else { (peer, eni6) };
                    let mut echo = vec![if egress { 128 } else { 129 }, 0, 0, 0];
                    echo.extend_from_slice(&counter);
                    ethernet(0x86DD, &ipv6(src, dst, 58, &echo))
                }
            };
            // Every inner frame is 64 bytes; the counter is what makes them differ.
            let mut inner = sized(inner, INNER_LEN);
            let tail = inner.len() - 4;
            inner[tail..].copy_from_slice(&counter);
            aws_vxlan(eni, vni, &inner)
        })
        .collect()
}
