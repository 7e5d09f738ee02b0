//! Every buffer the data plane owns, sized once at start from the config, and printed.
//!
//! # Design
//! The broker allocates its packet memory before the first packet and never again: the mbuf
//! pool (sized by [`super::pool::plan`] from every place an mbuf can wait), the descriptor rings
//! of the ingress RX queues and the tool ports' TX queues (fixed by `[dpdk]`), each worker's TX
//! buffers (one burst per tool port, plus one for discarded packets) and the dedup table (a
//! fixed array of `[dedup] capacity` entries). None of them grows with traffic: under load a full
//! ring or buffer drops (and counts) rather than allocates. [`Resources`] gathers their sizes for
//! the start-up log and `/status`, so the memory a broker will use is known before it runs.
//!
//! What is not here is small and bounded by the config: compiled plans (one live, plus the one
//! a worker may be finishing a burst with), the counters of each plan, the control plane's
//! metrics registry (label values come from config names only).

use config::ValidatedConfig;
use pipelines::pipeline::BURST;

use crate::report::Resources;

/// `sizeof(struct rte_mbuf)`: two cache lines in front of each mbuf's headroom and data.
const MBUF_HEADER_BYTES: u64 = 128;
/// `RTE_PKTMBUF_HEADROOM` in Debian's DPDK build.
const MBUF_HEADROOM_BYTES: u64 = 128;

/// The buffers of `config` with `workers` workers, `tx_queues[i]` TX queues on tool port `i`,
/// `idle_rx_descriptors` in tool ports' unpolled RX queues, the pool of `mbufs` mbufs of
/// `data_room` bytes planned as `pool_plan`, and a dedup table of `dedup` (entries, bytes, bytes
/// of them on huge pages).
pub fn measure(
    config: &ValidatedConfig,
    workers: usize,
    tx_queues: &[u16],
    idle_rx_descriptors: u64,
    (mbufs, data_room, pool_plan): (u32, u16, String),
    dedup: Option<(u64, u64, u64)>,
) -> Resources {
    let rx_descriptors = config
        .ingress
        .iter()
        .map(|i| u64::from(i.queues) * u64::from(config.dpdk.rx_descriptors))
        .sum();
    let tx_descriptors = tx_queues
        .iter()
        .map(|&q| u64::from(q) * u64::from(config.dpdk.tx_descriptors))
        .sum();
    let tool_ports = config.tool_ports.len();
    let (dedup_entries, dedup_bytes, dedup_huge_page_bytes) = dedup.unwrap_or((0, 0, 0));
    Resources {
        mbufs,
        mbuf_data_room: data_room,
        mbuf_pool_bytes: u64::from(mbufs)
            * (MBUF_HEADER_BYTES + MBUF_HEADROOM_BYTES + u64::from(data_room)),
        mbuf_pool_plan: pool_plan,
        rx_descriptors,
        idle_rx_descriptors,
        tx_descriptors,
        workers,
        tool_ports,
        tx_buffer_mbufs: (workers * (tool_ports + 1) * BURST) as u64,
        dedup_entries,
        dedup_bytes,
        dedup_huge_page_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_from_the_config_and_printed_as_one_block() {
        let config = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        let r = measure(
            &config,
            2,
            &[2, 2, 1],
            64,
            (8191, 2048, "8191 mbufs: …".into()),
            Some((1 << 20, 8 << 20, 6 << 20)),
        );
        assert_eq!((r.rx_descriptors, r.idle_rx_descriptors), (1024, 64));
        assert_eq!(r.tx_descriptors, 5 * 1024);
        assert_eq!(r.tx_buffer_mbufs, 2 * 4 * 32);
        assert_eq!(r.mbuf_pool_bytes, 8191 * (2048 + 256));
        let text = r.to_string();
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(
            text.contains(
                "TX buffers     256 mbufs: 2 worker(s) × (3 tool port(s) + 1 discard) × 32"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "RX rings       1024 descriptors over the ingress queues, 64 in tool ports' unpolled RX queues"
            ),
            "{text}"
        );
        assert!(
            text.contains("dedup table    1048576 entries = 8.0 MiB, 6.0 MiB of it on huge pages"),
            "{text}"
        );
    }
}
