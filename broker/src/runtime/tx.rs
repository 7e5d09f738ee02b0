//! A worker's transmit side: one buffer per tool port, flushed to that port's TX queue.
//!
//! # Design
//! As in DPDK's l2fwd: the pipeline hands packets to the [`TxSet`] (it is the pipeline's
//! [`Sink`]); each tool port has a fixed buffer of [`BURST`] mbufs, sent with one `tx_burst` when
//! full, when the worker's drain timer fires, when the RX queue is idle, and at stop. Packets of
//! one flow go through one buffer in order, so they leave in the order they arrived. A cabled
//! tool port's buffer goes to the worker's queue of that port; a tunnel port's, already
//! encapsulated, to the worker's queue of its `via` port, which several tunnel ports may share
//! (each keeps its own buffer, so each counts its own transmissions and drops).
//!
//! Frames for an addressed port itself (outcome `control`) go to the exception path through a
//! bounded channel, never waiting: a full channel drops the frame and counts it
//! (`control_dropped_packets`).
//!
//! A tool port may have fewer TX queues than there are workers (a `net_pcap` port with one
//! `tx_pcap` has exactly one; so do some virtual functions). Workers then share a queue through a
//! mutex taken once per flush — never per packet. A queue of its own needs no lock, and the type
//! of [`TxQueueRef`] makes the difference visible.
//!
//! A full TX ring never blocks the worker: what `tx_burst` does not take is freed at once and
//! counted as `tx_dropped` on that port. Dropped packets (`Sink::discard`) are freed in bulk.

use std::sync::{Arc, Mutex};

use std::sync::mpsc::SyncSender;

use drivers::{Mbuf, TxQueue, free_bulk};
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::BURST;
use pipelines::{PacketBuf, Sink};

/// The workers' side of the channel to the exception path: a frame for an addressed port itself,
/// with the port's side (its index among the exception path's ports).
pub type PuntSender = SyncSender<(u16, Mbuf)>;

/// A TX queue this worker uses alone, or shares with other workers.
#[derive(Debug)]
pub enum TxQueueRef {
    Own(TxQueue),
    Shared(Arc<Mutex<TxQueue>>),
}

impl TxQueueRef {
    /// Sends what it can of `pkts` (from the front); the rest stays in `pkts`.
    pub fn send(&mut self, pkts: &mut [Option<Mbuf>]) -> usize {
        match self {
            TxQueueRef::Own(q) => q.tx_burst(pkts),
            TxQueueRef::Shared(q) => {
                // A poisoned lock only means another worker panicked while sending; the queue
                // itself is still consistent (tx_burst is one C call).
                let mut q = q.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                q.tx_burst(pkts)
            }
        }
    }
}

/// A fixed array of mbufs, filled from the front.
#[derive(Debug)]
struct Buffer {
    pkts: [Option<Mbuf>; BURST],
    len: usize,
}

impl Buffer {
    const fn new() -> Buffer {
        Buffer {
            pkts: [const { None }; BURST],
            len: 0,
        }
    }

    /// Appends `pkt`. The buffer is never full here: every push is followed by a flush when
    /// the buffer fills.
    fn push(&mut self, pkt: Mbuf) {
        self.pkts[self.len] = Some(pkt);
        self.len += 1;
    }

    fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Frees everything in the buffer (in bulk) and empties it.
    fn free_all(&mut self) {
        free_bulk(&mut self.pkts[..self.len]);
        self.len = 0;
    }
}

/// One tool port as seen by one worker.
#[derive(Debug)]
struct TxPort {
    /// Index of its queue in [`TxSet::queues`].
    queue: usize,
    buffer: Buffer,
}

/// The worker's transmit side: a buffer per tool port (indexed by tool port id), and the
/// packets dropped during the current burst, waiting to be freed in bulk.
///
/// Its ports and its counters' port blocks are the config's tool ports, one each, in order
/// (checked when the set is made and when it gets new counters); a plan built from the same
/// config delivers only to those ports, so the TX path indexes them directly.
#[derive(Debug)]
pub struct TxSet {
    /// This worker's TX queues: of the cabled tool ports and of the addressed ports.
    queues: Box<[TxQueueRef]>,
    ports: Box<[TxPort]>,
    discards: Buffer,
    /// The exception path, with this worker's port's side (workers of an addressed port).
    punt: Option<(u16, PuntSender)>,
    counters: Arc<WorkerCounters>,
}

impl TxSet {
    /// A transmit side over `queues`, tool port `i` flushing to `queues[port_queue[i]]`; frames
    /// for the worker's own port go to `punt` when it is addressed.
    ///
    /// # Panics
    /// If `counters` do not have one port block per tool port, or a port names no queue (a bug
    /// of whoever built them).
    pub fn new(
        queues: Vec<TxQueueRef>,
        port_queue: Vec<usize>,
        punt: Option<(u16, PuntSender)>,
        counters: Arc<WorkerCounters>,
    ) -> TxSet {
        assert_eq!(
            counters.ports.len(),
            port_queue.len(),
            "the counters have a block per tool port"
        );
        assert!(
            port_queue.iter().all(|&q| q < queues.len()),
            "every tool port flushes to one of the worker's queues"
        );
        TxSet {
            queues: queues.into_boxed_slice(),
            ports: port_queue
                .into_iter()
                .map(|queue| TxPort {
                    queue,
                    buffer: Buffer::new(),
                })
                .collect(),
            discards: Buffer::new(),
            punt,
            counters,
        }
    }

    /// Counts into `counters` from now on (a new plan brought counters of another shape; the
    /// tool ports are the same, a reload cannot change them).
    ///
    /// # Panics
    /// If `counters` do not have one port block per tool port.
    pub fn set_counters(&mut self, counters: Arc<WorkerCounters>) {
        assert_eq!(
            counters.ports.len(),
            self.ports.len(),
            "the counters have a block per tool port"
        );
        self.counters = counters;
    }

    /// Sends what tool port `port` has buffered; frees and counts what the queue refused.
    /// Returns how many of the buffered packets (from the front) the queue took.
    fn flush(&mut self, port: usize) -> usize {
        let tx = &mut self.ports[port];
        let len = tx.buffer.len;
        if len == 0 {
            return 0;
        }
        let pkts = &mut tx.buffer.pkts[..len];
        let bytes: u64 = pkts.iter().flatten().map(|m| m.pkt_len() as u64).sum();
        let sent = self.queues[tx.queue].send(pkts);
        let unsent_bytes: u64 = pkts[sent..]
            .iter()
            .flatten()
            .map(|m| m.pkt_len() as u64)
            .sum();
        let c = &self.counters.ports[port];
        c.tx_packets.add(sent as u64);
        c.tx_bytes.add(bytes - unsent_bytes);
        c.tx_dropped.add((len - sent) as u64);
        free_bulk(&mut pkts[sent..]);
        tx.buffer.len = 0;
        sent
    }

    /// Sends every buffered packet and frees the discarded ones: at the drain timer, when the
    /// RX queue is idle, and at stop.
    pub fn flush_all(&mut self) {
        for port in 0..self.ports.len() {
            self.flush(port);
        }
        self.discards.free_all();
    }

    /// [`TxSet::flush_all`], telling `flushed` of each port it flushed: the port, and how many
    /// of its buffered packets (from the front) the queue took (a packet trace's TX results).
    pub fn flush_all_reporting(&mut self, mut flushed: impl FnMut(u16, usize)) {
        for port in 0..self.ports.len() {
            if self.ports[port].buffer.len > 0 {
                let sent = self.flush(port);
                // Tool port indices are u16 (the config's `ToolPortId`).
                flushed(port as u16, sent);
            }
        }
        self.discards.free_all();
    }

    /// How many packets tool port `port` has buffered: where the next one delivered to it goes.
    pub fn buffered(&self, port: u16) -> usize {
        self.ports[usize::from(port)].buffer.len
    }

    /// [`Sink::deliver`], telling whether the packet filled the buffer and had it flushed:
    /// then how many of the buffered packets (from the front) the queue took.
    pub fn deliver_reporting(&mut self, port: u16, pkt: Mbuf) -> Option<usize> {
        let index = usize::from(port);
        let tx = &mut self.ports[index];
        tx.buffer.push(pkt);
        tx.buffer.is_full().then(|| self.flush(index))
    }

    /// Frees the packets dropped during the burst (in bulk); buffered packets wait for a full
    /// buffer or the drain timer.
    pub fn end_of_burst(&mut self) {
        self.discards.free_all();
    }

    /// Hands `pkt`, a frame for this worker's addressed port itself, to the exception path; a
    /// full channel (or none) drops and counts it.
    fn punt_frame(&mut self, pkt: Mbuf) {
        let refused = match &self.punt {
            Some((side, channel)) => channel.try_send((*side, pkt)).err().map(|e| match e {
                std::sync::mpsc::TrySendError::Full((_, pkt))
                | std::sync::mpsc::TrySendError::Disconnected((_, pkt)) => pkt,
            }),
            None => Some(pkt),
        };
        if let Some(pkt) = refused {
            self.counters.control_dropped.incr();
            self.discard(pkt);
        }
    }

    /// Whether any packet waits in a buffer.
    pub fn pending(&self) -> bool {
        self.ports.iter().any(|p| p.buffer.len > 0)
    }
}

impl Sink<Mbuf> for TxSet {
    #[inline]
    fn deliver(&mut self, port: u16, pkt: Mbuf) {
        let port = usize::from(port);
        let tx = &mut self.ports[port];
        tx.buffer.push(pkt);
        if tx.buffer.is_full() {
            self.flush(port);
        }
    }

    fn punt(&mut self, pkt: Mbuf) {
        self.punt_frame(pkt);
    }

    #[inline]
    fn discard(&mut self, pkt: Mbuf) {
        self.discards.push(pkt);
        if self.discards.is_full() {
            self.discards.free_all();
        }
    }
}

impl Drop for TxSet {
    fn drop(&mut self) {
        self.flush_all();
    }
}
