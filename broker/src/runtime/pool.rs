//! How many mbufs the broker needs, worked out from the config before anything starts.
//!
//! Every place an mbuf can wait is counted: the RX rings of the ingress queues, the TX rings of
//! the tool ports, each worker's RX burst, TX buffers and discard buffer, the per-lcore mempool
//! caches (DPDK lets a cache hold up to 1.5× its size), and the packets a `net_pcap` device with
//! `infinite_rx=1` keeps cached for replay. Running out of mbufs at run time is not fatal (the
//! NIC counts `rx_nombuf`, a failed clone counts `no_buffer`), but the pool is sized so that it
//! does not happen by construction.

use std::path::Path;

use config::{Device, ValidatedConfig};
use pipelines::pipeline::BURST;

/// The pool size and how it was reached, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPlan {
    pub mbufs: u32,
    pub explanation: String,
}

/// Packets in the pcap files a `net_pcap` `infinite_rx=1` device replays (it caches them all).
fn infinite_rx_packets(device: &Device) -> u64 {
    if !device.arg_values("infinite_rx").any(|v| v == "1") {
        return 0;
    }
    device
        .arg_values("rx_pcap")
        .map(|path| count_pcap_packets(Path::new(path)))
        .sum()
}

/// Number of packets in a capture file, legacy pcap or pcapng (what tshark and dumpcap write by
/// default; DPDK's `net_pcap` reads both through libpcap); 0 if it cannot be read (DPDK will
/// report the error). The format is told by the file's first four bytes, as libpcap does.
fn count_pcap_packets(path: &Path) -> u64 {
    use pcap_file::pcapng::Block;
    use std::io::{BufReader, Read, Seek};
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || file.rewind().is_err() {
        return 0;
    }
    let mut n = 0;
    // A pcapng file starts with a Section Header Block, whose type reads the same in either byte
    // order; anything else is left to the legacy reader, which checks its own magic numbers.
    if u32::from_le_bytes(magic) == PCAPNG_SECTION_HEADER {
        let Ok(mut reader) = pcap_file::pcapng::PcapNgReader::new(BufReader::new(file)) else {
            return 0;
        };
        // libpcap returns the packets of Enhanced, Simple and (obsolete) Packet blocks.
        while let Some(Ok(block)) = reader.next_block() {
            if matches!(
                block,
                Block::EnhancedPacket(_) | Block::SimplePacket(_) | Block::Packet(_)
            ) {
                n += 1;
            }
        }
    } else {
        let Ok(mut reader) = pcap_file::pcap::PcapReader::new(BufReader::new(file)) else {
            return 0;
        };
        while let Some(Ok(_)) = reader.next_packet() {
            n += 1;
        }
    }
    n
}

/// The block type of a pcapng Section Header Block, a palindrome in bytes (0x0A0D0D0A).
const PCAPNG_SECTION_HEADER: u32 = 0x0A0D_0D0A;

/// The pool for `config` with `workers` workers, `tx_queues[i]` TX queues on tool port `i`,
/// `idle_rx` mbufs in the RX rings some tool ports' drivers insist on (never polled), and
/// `control_path` mbufs that the addressed ports, their kernel sides and the tunnel ports' header
/// segments may hold ([`super::ports::control_path_mbufs`]).
pub fn plan(
    config: &ValidatedConfig,
    workers: usize,
    tx_queues: &[u16],
    idle_rx: u64,
    control_path: u64,
) -> PoolPlan {
    let rx_rings: u64 = config
        .ingress
        .iter()
        .map(|i| u64::from(i.queues) * u64::from(config.dpdk.rx_descriptors))
        .sum::<u64>()
        + idle_rx;
    let tx_rings: u64 = tx_queues
        .iter()
        .map(|&q| u64::from(q) * u64::from(config.dpdk.tx_descriptors))
        .sum();
    let burst = BURST as u64;
    let per_worker = burst * (2 + config.tool_ports.len() as u64);
    let in_workers = per_worker * workers as u64;
    let caches = (workers as u64 + 1) * u64::from(config.dpdk.mbuf_cache) * 3 / 2;
    let replay: u64 = config
        .ingress
        .iter()
        .map(|i| infinite_rx_packets(&i.device))
        .sum();
    // Headroom for what the broker does not own: PMD-internal buffers, a burst in flight in
    // a driver's TX path, control-plane allocations.
    let slack = 1024;
    let needed = rx_rings + tx_rings + in_workers + caches + replay + control_path + slack;
    if let Some(explicit) = config.dpdk.mbufs {
        return PoolPlan {
            mbufs: explicit,
            explanation: format!(
                "{explicit} mbufs (dpdk.mbufs; the config's needs estimate {needed})"
            ),
        };
    }
    // A mempool's ring is most efficient at 2^n - 1 entries.
    let mbufs = (needed + 1)
        .next_power_of_two()
        .saturating_sub(1)
        .min(u64::from(u32::MAX)) as u32;
    PoolPlan {
        mbufs,
        explanation: format!(
            "{mbufs} mbufs: RX rings {rx_rings} + TX rings {tx_rings} + worker buffers {in_workers} + caches {caches} + pcap replay {replay}{} + slack {slack}",
            if control_path > 0 {
                format!(" + addressed ports {control_path}")
            } else {
                String::new()
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_from_rings_buffers_and_caches() {
        let config = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        // 1 ingress queue × 1024 + 3 tool ports × 1 queue × 1024 + 2 workers × 32 × 5 + 3 × 256 × 1.5 + 1024
        let p = plan(&config, 2, &[1, 1, 1], 0, 0);
        let needed = 1024 + 3 * 1024 + 2 * 32 * 5 + 1152 + 1024;
        assert_eq!(
            u64::from(p.mbufs),
            (needed as u64 + 1).next_power_of_two() - 1
        );
        assert!(p.explanation.contains("TX rings 3072"), "{}", p.explanation);
    }

    #[test]
    fn explicit_count_wins() {
        let mut config = config::fixtures::config(config::fixtures::MINIMAL);
        config.dpdk.mbufs = Some(4095);
        assert_eq!(plan(&config, 1, &[1], 0, 0).mbufs, 4095);
    }

    /// Writes `packets` 60-byte frames as legacy pcap.
    fn write_pcap(path: &Path, packets: u8) {
        let file = std::fs::File::create(path).unwrap();
        let mut w = pcap_file::pcap::PcapWriter::new(file).unwrap();
        for i in 0..packets {
            let data = [i; 60];
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                std::time::Duration::ZERO,
                60,
                &data,
            ))
            .unwrap();
        }
    }

    /// Writes `packets` 60-byte frames as pcapng in `endianness`: an interface, then Enhanced
    /// Packet Blocks, with an interface statistics block (not a packet) in the middle and a
    /// Simple Packet Block at the end.
    fn write_pcapng(path: &Path, packets: u8, endianness: pcap_file::Endianness) {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsBlock;
        use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
        let file = std::fs::File::create(path).unwrap();
        let mut w = pcap_file::pcapng::PcapNgWriter::with_endianness(file, endianness).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(
            pcap_file::DataLink::ETHERNET,
            0,
        ))
        .unwrap();
        for i in 0..packets - 1 {
            let data = [i; 60];
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::ZERO,
                original_len: 60,
                data: data.as_slice().into(),
                options: vec![],
            })
            .unwrap();
            if i == 0 {
                w.write_pcapng_block(InterfaceStatisticsBlock {
                    interface_id: 0,
                    timestamp: 0,
                    options: vec![],
                })
                .unwrap();
            }
        }
        w.write_pcapng_block(SimplePacketBlock {
            original_len: 60,
            data: [0xEE; 60].as_slice().into(),
        })
        .unwrap();
    }

    #[test]
    fn infinite_rx_replay_is_counted_from_the_file() {
        let dir = std::env::temp_dir().join(format!("pool-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("three.pcap");
        write_pcap(&pcap, 3);
        let pcapng_le = dir.join("four-le.pcapng");
        write_pcapng(&pcapng_le, 4, pcap_file::Endianness::Little);
        let pcapng_be = dir.join("five-be.pcapng");
        write_pcapng(&pcapng_be, 5, pcap_file::Endianness::Big);
        let not_a_capture = dir.join("text.pcap");
        std::fs::write(&not_a_capture, "not a capture\n").unwrap();

        for (path, packets) in [
            (&pcap, 3),
            (&pcapng_le, 4),
            (&pcapng_be, 5),
            (&not_a_capture, 0),
            (&dir.join("missing.pcap"), 0),
        ] {
            let device = |text: String| text.parse::<Device>().unwrap();
            let replayed = device(format!(
                "net_pcap0,rx_pcap={},infinite_rx=1",
                path.display()
            ));
            assert_eq!(
                infinite_rx_packets(&replayed),
                packets,
                "{}",
                path.display()
            );
            // Without infinite_rx nothing is cached for replay.
            let once = device(format!("net_pcap0,rx_pcap={}", path.display()));
            assert_eq!(infinite_rx_packets(&once), 0, "{}", path.display());
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
