//! The data plane's fixed buffers, as the start-up log and `/status` show them (sized by
//! [`crate::runtime::resources`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use pipelines::pipeline::BURST;

/// The sizes of the data plane's fixed buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Packet data bytes per mbuf (headroom excluded).
    pub mbuf_data_room: u16,
    /// The pool's packet memory: mbufs × (header + headroom + data room).
    pub mbuf_pool_bytes: u64,
    /// How the pool size was reached.
    pub mbuf_pool_plan: String,
    /// RX descriptors over all ingress queues.
    pub rx_descriptors: u64,
    /// RX descriptors of the never-polled RX queues some tool ports' drivers insist on
    /// (`net_tap`); each may hold an mbuf.
    #[serde(default)]
    pub idle_rx_descriptors: u64,
    /// TX descriptors over all tool port queues.
    pub tx_descriptors: u64,
    pub workers: usize,
    pub tool_ports: usize,
    /// Mbufs the workers' TX buffers can hold: workers × (tool ports + 1 discard buffer) × burst.
    pub tx_buffer_mbufs: u64,
    /// Dedup table entries (0: dedup off).
    pub dedup_entries: u64,
    /// Dedup table bytes (0: dedup off).
    pub dedup_bytes: u64,
    /// Dedup table bytes the kernel put on huge pages at start (0: none, or dedup off).
    #[serde(default)]
    pub dedup_huge_page_bytes: u64,
}

/// `bytes` in MiB, one decimal: "8.0 MiB".
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for Resources {
    /// The start-up block: one line per buffer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "resources, fixed at start (nothing here grows with traffic):"
        )?;
        writeln!(
            f,
            "  mbuf pool      {} mbufs × {} B data = {} ({})",
            self.mbufs,
            self.mbuf_data_room,
            mib(self.mbuf_pool_bytes),
            self.mbuf_pool_plan
        )?;
        write!(
            f,
            "  RX rings       {} descriptors over the ingress queues",
            self.rx_descriptors
        )?;
        if self.idle_rx_descriptors > 0 {
            write!(
                f,
                ", {} in tool ports' unpolled RX queues",
                self.idle_rx_descriptors
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  TX rings       {} descriptors over the tool ports' queues",
            self.tx_descriptors
        )?;
        writeln!(
            f,
            "  TX buffers     {} mbufs: {} worker(s) × ({} tool port(s) + 1 discard) × {BURST}",
            self.tx_buffer_mbufs, self.workers, self.tool_ports
        )?;
        if self.dedup_entries == 0 {
            write!(f, "  dedup table    off")
        } else {
            write!(
                f,
                "  dedup table    {} entries = {}",
                self.dedup_entries,
                mib(self.dedup_bytes)
            )?;
            if self.dedup_huge_page_bytes > 0 {
                write!(
                    f,
                    ", {} of it on huge pages",
                    mib(self.dedup_huge_page_bytes)
                )?;
            }
            Ok(())
        }
    }
}
