//! How many mbufs the broker needs, worked out from the config before anything starts.
//!
//! Every place an mbuf can wait is counted: the RX rings of the ingress queues, the TX rings of
//! the tool ports, each worker's RX burst, TX buffers and discard buffer, the per-lcore mempool
//! caches (DPDK lets a cache hold up to 1.5× its size), and the packets a `net_pcap` device with
//! `infinite_rx=1` keeps cached for replay. Running out of mbufs at run time is not fatal (the
//! NIC counts `rx_nombuf`, a failed clone counts `no_buffer`), but the pool is sized so that it
//! does not happen by construction.

use std::path::Path;

use config::ValidatedConfig;
use pipelines::pipeline::BURST;

/// The pool size and how it was reached, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPlan {
    pub mbufs: u32,
    pub explanation: String,
}

/// Packets in the pcap files a `net_pcap` `infinite_rx=1` device replays (it caches them all).
fn infinite_rx_packets(device: &str) -> u64 {
    let args: Vec<&str> = device.split(',').collect();
    if !args.iter().any(|a| a.trim() == "infinite_rx=1") {
        return 0;
    }
    args.iter()
        .filter_map(|a| a.trim().strip_prefix("rx_pcap="))
        .map(|path| count_pcap_packets(Path::new(path)))
        .sum()
}

/// Number of packets in a pcap file; 0 if it cannot be read (DPDK will report the error).
fn count_pcap_packets(path: &Path) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let Ok(mut reader) = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file)) else {
        return 0;
    };
    let mut n = 0;
    while let Some(Ok(_)) = reader.next_packet() {
        n += 1;
    }
    n
}

/// The pool for `config` with `workers` workers, `tx_queues[i]` TX queues on tool port `i`, and
/// `idle_rx` mbufs in the RX rings some tool ports' drivers insist on (never polled).
pub fn plan(config: &ValidatedConfig, workers: usize, tx_queues: &[u16], idle_rx: u64) -> PoolPlan {
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
    let needed = rx_rings + tx_rings + in_workers + caches + replay + slack;
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
            "{mbufs} mbufs: RX rings {rx_rings} + TX rings {tx_rings} + worker buffers {in_workers} + caches {caches} + pcap replay {replay} + slack {slack}"
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
        let p = plan(&config, 2, &[1, 1, 1], 0);
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
        assert_eq!(plan(&config, 1, &[1], 0).mbufs, 4095);
    }

    #[test]
    fn infinite_rx_replay_is_counted_from_the_file() {
        let dir = std::env::temp_dir().join(format!("pool-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("three.pcap");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = pcap_file::pcap::PcapWriter::new(file).unwrap();
        for i in 0..3u8 {
            let data = [i; 60];
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                std::time::Duration::ZERO,
                60,
                &data,
            ))
            .unwrap();
        }
        drop(w);
        let device = format!("net_pcap0,rx_pcap={},infinite_rx=1", path.display());
        assert_eq!(infinite_rx_packets(&device), 3);
        assert_eq!(
            infinite_rx_packets(&format!("net_pcap0,rx_pcap={}", path.display())),
            0
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
