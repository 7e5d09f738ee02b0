//! Live capture and packet trace, on the workers' side: what a worker copies, traces and hands
//! over while someone watches, and the one load it pays when nobody does.
//!
//! # Design
//! The control side (the endpoint's `/capture` and `/trace`, `crate::inspect`) starts a
//! [`Capture`] or a [`Trace`] through the [`Taps`] every worker shares: it publishes what runs
//! under a new generation number, and workers compare that number with the one they run once
//! per poll — a relaxed load, the whole cost when nothing runs. A worker that sees a new number
//! takes the lock once, adopts what runs (its share of the capture's buffers, the trace), and
//! from then runs its bursts through [`WorkerTap::run_burst`]: the watched pipeline
//! ([`pipelines::observe`]) with the worker's TX side wrapped so that it sees copies and flush
//! results. When nothing is left for it to do it goes back to the plain pipeline.
//!
//! **Capture.** Each worker has a bounded pool of preallocated [`Slot`]s (made by the control
//! side when the capture starts, [`Capture::new`]): a packet that matches takes a slot from its
//! free channel, its bytes up to the snap length are copied in, and the slot goes to the
//! capture's channel to the reader; the reader writes it out and sends it back. Both channels
//! hold every slot, so a send never fails and nothing is allocated on the worker. A packet that
//! finds no free slot (the reader is behind) is not copied: it is counted
//! (`capture_dropped_packets`, and per capture), never waited for. Where the copy is made:
//! - an ingress port: the frame as received, before the pipeline;
//! - a tool port: each copy as the port sends it, sliced and, for a tunnel port, behind its
//!   outer headers ([`pipelines::observe::Observer::delivering`]), whether the TX queue then
//!   takes it or not;
//! - an outcome: every frame is copied as received before the pipeline (the decapsulation
//!   strips headers in place, so the original bytes are gone once the outcome is known), and
//!   the copies of the packets that get the outcome are kept; the others' slots are reused at
//!   the next burst.
//!
//! **Trace.** A trace holds a count of packets still to trace; a worker claims the first packets
//! of a burst against it (one atomic update per burst while a trace runs), starts their
//! [`TraceRecord`]s, and the pipeline fills them. The TX result of each copy is known when its
//! port's buffer is flushed: the worker notes where in the buffer each traced copy went, and
//! after a burst with traced packets it flushes every buffer at once, so each copy's result is
//! known before the burst ends (batching is lost for that burst only). Finished records go to
//! the trace's channel, which holds as many as the trace's count.
//!
//! **Stopping.** The control side publishes a generation without the capture (or trace); each
//! worker, at its next poll, gives its share back ([`Capture::returned`]) and drops its
//! reference, so the buffers are freed by the control side, never on a worker.
//!
//! # Limitations
//! - One capture and one trace at a time (the control side refuses a second with `409`).
//! - Timestamps are those of the burst (the worker's clock, read once per burst): packets of a
//!   burst share one.
//! - A copy longer than [`LARGEST_FRAME`] is cut there whatever the snap length (no port of the
//!   broker receives or sends longer frames: jumbo frames stop at 9216 bytes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use config::MAX_TOOLS_PER_SESSION;
use drivers::Mbuf;
use pipelines::counters::WorkerCounters;
use pipelines::observe::{CopyTrace, Observer, TraceRecord, TxResult};
use pipelines::pipeline::{BURST, Pipeline};
use pipelines::plan::Plan;
use pipelines::{Outcome, PacketBuf, Sink};

use super::tx::TxSet;

/// The longest copy a capture keeps (see the module's limitations).
pub const LARGEST_FRAME: usize = 16 * 1024;

/// The buffers one worker gets for a capture: enough for a few thousand small packets or a few
/// hundred whole frames, between two reads of the reader.
pub const CAPTURE_BYTES_PER_WORKER: usize = 8 << 20;

/// Bounds on the slots per worker: at least two bursts' worth (an outcome capture stages a
/// whole burst), at most what a reader drains between two reads.
const MIN_SLOTS: usize = 2 * BURST;
const MAX_SLOTS: usize = 8192;

/// Which packets a capture copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// What a tool port sends (index in the config's tool ports).
    ToolPort(u16),
    /// What an ingress port receives (index in the config's ingress ports).
    Ingress(u16),
    /// Packets that get an outcome.
    Outcome(OutcomeMatch),
}

/// The outcome a capture selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeMatch {
    /// Exactly this outcome (a malformed one with its reason).
    Exactly(Outcome),
    /// Malformed, whatever the reason.
    AnyMalformed,
}

impl OutcomeMatch {
    pub fn matches(self, outcome: Outcome) -> bool {
        match self {
            OutcomeMatch::Exactly(o) => o == outcome,
            OutcomeMatch::AnyMalformed => matches!(outcome, Outcome::Malformed(_)),
        }
    }
}

/// One captured packet: its bytes up to the snap length, in a buffer the control side made.
#[derive(Debug)]
pub struct Slot {
    /// The worker whose pool it belongs to (where the reader sends it back).
    pub worker: u16,
    /// The ingress port it arrived on (ingress and outcome captures) or the tool port that sent
    /// it.
    pub interface: u16,
    /// The outcome it got (outcome captures).
    pub outcome: Option<Outcome>,
    /// When its burst was taken, on the workers' clock.
    pub time_ns: u64,
    /// Its length on the wire, and the bytes copied (`data[..len]`).
    pub original_len: u32,
    pub len: u32,
    pub data: Box<[u8]>,
}

impl Slot {
    /// An empty slot of `size` bytes for worker `worker` (the control side makes them).
    pub fn new(worker: u16, size: usize) -> Slot {
        Slot {
            worker,
            interface: 0,
            outcome: None,
            time_ns: 0,
            original_len: 0,
            len: 0,
            data: vec![0; size].into_boxed_slice(),
        }
    }

    /// The bytes copied.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..(self.len as usize).min(self.data.len())]
    }

    /// Copies `pkt`, every segment, up to the slot's size.
    pub fn fill<B: PacketBuf>(&mut self, pkt: &B, interface: u16, time_ns: u64) {
        self.interface = interface;
        self.outcome = None;
        self.time_ns = time_ns;
        self.original_len = u32::try_from(pkt.pkt_len()).unwrap_or(u32::MAX);
        let mut len = 0;
        let data = &mut self.data;
        pkt.for_each_segment(|segment| {
            let room = data.len() - len;
            let n = segment.len().min(room);
            data[len..len + n].copy_from_slice(&segment[..n]);
            len += n;
        });
        self.len = len as u32;
    }
}

/// One worker's share of a capture: its free slots, and the copies it staged for an outcome
/// capture (by index in the burst).
#[derive(Debug)]
pub struct WorkerShare {
    free: Receiver<Slot>,
    staged: [Option<Slot>; BURST],
}

/// A running capture, shared by the control side and the workers.
#[derive(Debug)]
pub struct Capture {
    pub selector: Selector,
    /// Where workers send the slots they filled.
    full: SyncSender<Slot>,
    /// Each worker's share, taken by the worker while it runs the capture.
    shares: Box<[Mutex<Option<Box<WorkerShare>>>]>,
    /// Packets selected but not copied (no free slot), all workers, by interface (the ingress
    /// port or tool port, as [`Slot::interface`]).
    dropped: Box<[AtomicU64]>,
}

/// The control side's end of a capture: the filled slots, and where each worker's go back.
#[derive(Debug)]
pub struct CaptureReader {
    pub full: Receiver<Slot>,
    free: Box<[SyncSender<Slot>]>,
}

impl CaptureReader {
    /// Gives a slot back to its worker's pool.
    pub fn recycle(&self, slot: Slot) {
        if let Some(free) = self.free.get(usize::from(slot.worker)) {
            // The pool holds every slot of the worker: never full. A worker gone (stopping)
            // drops what it is sent.
            let _ = free.try_send(slot);
        }
    }
}

/// Slots of `size` bytes for one worker: the bytes a worker may hold, within bounds.
pub fn slots_per_worker(size: usize) -> usize {
    (CAPTURE_BYTES_PER_WORKER / size.max(1)).clamp(MIN_SLOTS, MAX_SLOTS)
}

impl Capture {
    /// A capture of `selector` keeping `snaplen` bytes of each packet, with its buffers for
    /// `workers` workers (allocated here, on the control side); its drops are counted for
    /// `interfaces` interfaces (the config's ingress ports, or its tool ports).
    pub fn new(
        selector: Selector,
        snaplen: u32,
        workers: usize,
        interfaces: usize,
    ) -> (Arc<Capture>, CaptureReader) {
        let size = (snaplen as usize).clamp(1, LARGEST_FRAME);
        let slots = slots_per_worker(size);
        let (full, filled) = mpsc::sync_channel(slots * workers.max(1));
        let mut shares = Vec::with_capacity(workers);
        let mut free = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = mpsc::sync_channel(slots);
            for _ in 0..slots - BURST {
                // Room for every slot: cannot fail.
                let _ = sender.try_send(Slot::new(worker as u16, size));
            }
            shares.push(Mutex::new(Some(Box::new(WorkerShare {
                free: receiver,
                staged: std::array::from_fn(|_| Some(Slot::new(worker as u16, size))),
            }))));
            free.push(sender);
        }
        let capture = Capture {
            selector,
            full,
            shares: shares.into_boxed_slice(),
            dropped: (0..interfaces).map(|_| AtomicU64::new(0)).collect(),
        };
        (
            Arc::new(capture),
            CaptureReader {
                full: filled,
                free: free.into_boxed_slice(),
            },
        )
    }

    /// Packets of `interface` the capture selected but could not copy, so far.
    pub fn dropped(&self, interface: u16) -> u64 {
        self.dropped
            .get(usize::from(interface))
            .map_or(0, |d| d.load(Ordering::Relaxed))
    }

    /// Whether every worker has given its share back (it stopped, or never started).
    pub fn returned(&self) -> bool {
        self.shares.iter().all(|s| lock(s).is_some())
    }

    fn take_share(&self, worker: usize) -> Option<Box<WorkerShare>> {
        self.shares.get(worker).and_then(|s| lock(s).take())
    }

    fn give_back(&self, worker: usize, share: Box<WorkerShare>) {
        if let Some(s) = self.shares.get(worker) {
            *lock(s) = Some(share);
        }
    }
}

/// A running trace.
#[derive(Debug)]
pub struct Trace {
    /// Only packets of this ingress port (index in the config's ingress ports).
    pub ingress: Option<u16>,
    /// Packets still to trace; workers claim them burst by burst.
    remaining: AtomicU64,
    records: SyncSender<TraceRecord>,
}

impl Trace {
    /// A trace of the next `count` packets (of `ingress`, when given), and where their records
    /// arrive (room for all of them).
    pub fn new(count: u32, ingress: Option<u16>) -> (Arc<Trace>, Receiver<TraceRecord>) {
        let (records, receiver) = mpsc::sync_channel(count as usize);
        let trace = Trace {
            ingress,
            remaining: AtomicU64::new(u64::from(count)),
            records,
        };
        (Arc::new(trace), receiver)
    }

    /// Claims up to `wanted` packets: how many may be traced.
    fn claim(&self, wanted: u64) -> u64 {
        match self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left.saturating_sub(wanted))
            }) {
            Ok(left) => left.min(wanted),
            Err(_) => 0,
        }
    }
}

/// What the workers are asked to run.
#[derive(Debug, Default)]
struct Armed {
    generation: u64,
    capture: Option<Arc<Capture>>,
    trace: Option<Arc<Trace>>,
}

/// Something of its kind already runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// The switchboard the control side and every worker share.
#[derive(Debug, Default)]
pub struct Taps {
    /// The generation of what runs; 0 when nothing does. Workers load it once per poll.
    armed: AtomicU64,
    current: Mutex<Armed>,
    /// The last generation published.
    last: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a thread panicked holding it; the data (options of Arcs) is intact.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Taps {
    pub fn new() -> Arc<Taps> {
        Arc::new(Taps::default())
    }

    /// Publishes `armed` under a new generation (0 when it asks for nothing).
    fn publish(&self, armed: &mut Armed) {
        let generation = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        armed.generation = generation;
        let published = if armed.capture.is_some() || armed.trace.is_some() {
            generation
        } else {
            0
        };
        // Workers read what runs under the lock: the number only tells them to look.
        self.armed.store(published, Ordering::Release);
    }

    /// Starts `capture`; `Busy` when one runs.
    pub fn start_capture(&self, capture: &Arc<Capture>) -> Result<(), Busy> {
        let mut armed = lock(&self.current);
        if armed.capture.is_some() {
            return Err(Busy);
        }
        armed.capture = Some(capture.clone());
        self.publish(&mut armed);
        Ok(())
    }

    /// Stops `capture` if it runs.
    pub fn stop_capture(&self, capture: &Arc<Capture>) {
        let mut armed = lock(&self.current);
        if armed
            .capture
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, capture))
        {
            armed.capture = None;
            self.publish(&mut armed);
        }
    }

    /// Starts `trace`; `Busy` when one runs.
    pub fn start_trace(&self, trace: &Arc<Trace>) -> Result<(), Busy> {
        let mut armed = lock(&self.current);
        if armed.trace.is_some() {
            return Err(Busy);
        }
        armed.trace = Some(trace.clone());
        self.publish(&mut armed);
        Ok(())
    }

    /// Stops `trace` if it runs.
    pub fn stop_trace(&self, trace: &Arc<Trace>) {
        let mut armed = lock(&self.current);
        if armed.trace.as_ref().is_some_and(|t| Arc::ptr_eq(t, trace)) {
            armed.trace = None;
            self.publish(&mut armed);
        }
    }
}

/// Where a traced copy went in its port's TX buffer, until the buffer is flushed.
#[derive(Clone, Copy, Debug, Default)]
struct Ticket {
    /// The packet's index in the burst.
    index: u8,
    group: u16,
    port: u16,
    /// Its position in the port's buffer.
    position: u16,
}

/// Copies a traced burst can have waiting for their TX result.
const TICKETS: usize = BURST * MAX_TOOLS_PER_SESSION;

/// One worker's side of the taps.
#[derive(Debug)]
pub struct WorkerTap {
    taps: Arc<Taps>,
    worker: u16,
    ingress: u16,
    /// The generation this worker runs (0: nothing).
    generation: u64,
    /// Whether the worker's bursts go through [`WorkerTap::run_burst`].
    pub watching: bool,
    capture: Option<(Arc<Capture>, Box<WorkerShare>)>,
    trace: Option<Arc<Trace>>,
    /// The records of the burst's traced packets (bit `i` of `traced`: packet `i`).
    records: Box<[TraceRecord; BURST]>,
    traced: u32,
    tickets: Box<[Ticket; TICKETS]>,
    pending: usize,
}

impl WorkerTap {
    /// Worker `worker`'s side, polling ingress port `ingress`.
    pub fn new(taps: Arc<Taps>, worker: u16, ingress: u16) -> WorkerTap {
        WorkerTap {
            taps,
            worker,
            ingress,
            generation: 0,
            watching: false,
            capture: None,
            trace: None,
            records: Box::new([TraceRecord::EMPTY; BURST]),
            traced: 0,
            tickets: Box::new([Ticket::default(); TICKETS]),
            pending: 0,
        }
    }

    /// What runs now, and whether this worker has adopted it. One relaxed load: the whole cost
    /// of the taps when nothing runs.
    #[inline(always)]
    pub fn changed(&self) -> bool {
        self.taps.armed.load(Ordering::Relaxed) != self.generation
    }

    /// Adopts what the control side published: its share of a new capture, a new trace; gives
    /// back the share of a capture that stopped. Once per change, off the per-packet path.
    #[cold]
    pub fn adopt(&mut self) {
        let armed = lock(&self.taps.current);
        let wanted = armed.capture.as_ref();
        let keep = matches!((&self.capture, wanted), (Some((c, _)), Some(w)) if Arc::ptr_eq(c, w));
        if !keep {
            if let Some((capture, share)) = self.capture.take() {
                capture.give_back(usize::from(self.worker), share);
            }
            self.capture = wanted.and_then(|c| {
                let relevant = match c.selector {
                    Selector::Ingress(i) => i == self.ingress,
                    Selector::ToolPort(_) | Selector::Outcome(_) => true,
                };
                if !relevant {
                    return None;
                }
                c.take_share(usize::from(self.worker))
                    .map(|share| (c.clone(), share))
            });
        }
        self.trace = armed
            .trace
            .as_ref()
            .filter(|t| t.ingress.is_none_or(|i| i == self.ingress))
            .cloned();
        self.generation = if armed.capture.is_some() || armed.trace.is_some() {
            armed.generation
        } else {
            0
        };
        self.watching = self.capture.is_some() || self.trace.is_some();
    }

    /// Runs a burst through the watched pipeline: capture copies, trace records, then the
    /// records' TX results and their hand-over.
    #[inline(never)]
    pub fn run_burst(
        &mut self,
        pipeline: &mut Pipeline,
        plan: &Plan,
        now_ns: u64,
        pkts: &mut [Option<Mbuf>],
        tx: &mut TxSet,
    ) {
        let counters = pipeline.counters().clone();
        self.traced = 0;
        if let Some(trace) = &self.trace {
            let present = pkts.iter().take(BURST).filter(|p| p.is_some()).count();
            let claimed = trace.claim(present as u64) as usize;
            for (i, pkt) in pkts.iter().enumerate().take(BURST) {
                if self.traced.count_ones() as usize >= claimed {
                    break;
                }
                if let Some(pkt) = pkt {
                    let record = &mut self.records[i];
                    record.worker = self.worker;
                    record.ingress = self.ingress;
                    record.plan_generation = plan.generation;
                    record.time_ns = now_ns;
                    record.begin(pkt);
                    self.traced |= 1 << i;
                }
            }
        }
        if let Some((capture, share)) = &mut self.capture {
            match capture.selector {
                Selector::Ingress(port) => {
                    for pkt in pkts.iter().flatten() {
                        copy(capture, &share.free, &counters, pkt, port, now_ns);
                    }
                }
                Selector::Outcome(_) => {
                    for (staged, pkt) in share.staged.iter_mut().zip(pkts.iter()) {
                        let Some(pkt) = pkt else { continue };
                        if staged.is_none() {
                            *staged = share.free.try_recv().ok();
                        }
                        if let Some(slot) = staged {
                            slot.fill(pkt, self.ingress, now_ns);
                        }
                    }
                }
                Selector::ToolPort(_) => {}
            }
        }
        self.pending = 0;
        let mut watched = Watched {
            tap: self,
            tx,
            counters: &counters,
            now_ns,
        };
        pipeline.run_observed(plan, now_ns, pkts, &mut watched);
        if self.traced != 0 {
            let (tickets, pending, records) =
                (&mut self.tickets, &mut self.pending, &mut self.records);
            tx.flush_all_reporting(|port, sent| {
                resolve(&mut tickets[..*pending], records, port, sent);
            });
            *pending = 0;
            if let Some(trace) = &self.trace {
                for (i, record) in self.records.iter().enumerate() {
                    if self.traced & (1 << i) != 0 {
                        // Room for every record of the trace; a trace that ended takes none.
                        let _ = trace.records.try_send(*record);
                    }
                }
            }
        }
    }
}

/// Copies `pkt` into a free slot of `capture` and hands it to the reader; counts it dropped
/// when no slot is free.
fn copy(
    capture: &Capture,
    free: &Receiver<Slot>,
    counters: &WorkerCounters,
    pkt: &Mbuf,
    interface: u16,
    now_ns: u64,
) {
    match free.try_recv() {
        Ok(mut slot) => {
            slot.fill(pkt, interface, now_ns);
            hand_over(capture, counters, slot);
        }
        Err(_) => dropped(capture, counters, interface),
    }
}

fn hand_over(capture: &Capture, counters: &WorkerCounters, slot: Slot) {
    let interface = slot.interface;
    match capture.full.try_send(slot) {
        Ok(()) => counters.captured.incr(),
        // The channel holds every slot: it cannot be full, and the control side keeps its end
        // until every worker has let the capture go.
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            dropped(capture, counters, interface);
        }
    }
}

fn dropped(capture: &Capture, counters: &WorkerCounters, interface: u16) {
    counters.capture_dropped.incr();
    if let Some(d) = capture.dropped.get(usize::from(interface)) {
        d.fetch_add(1, Ordering::Relaxed);
    }
}

/// Marks the traced copies waiting in `port`'s buffer, now flushed: the first `sent` went out.
fn resolve(tickets: &mut [Ticket], records: &mut [TraceRecord; BURST], port: u16, sent: usize) {
    for ticket in tickets.iter_mut().filter(|t| t.port == port) {
        let result = if usize::from(ticket.position) < sent {
            TxResult::Sent
        } else {
            TxResult::Dropped
        };
        if let Some(group) = records
            .get_mut(usize::from(ticket.index))
            .and_then(|r| r.group_mut(ticket.group))
        {
            if let CopyTrace::Queued { tx, .. } = &mut group.copy {
                *tx = result;
            }
        }
        // Resolved: no port has this index.
        ticket.port = u16::MAX;
    }
}

/// The worker's TX side as the watched pipeline's sink: it also sees what the pipeline shows.
struct Watched<'a> {
    tap: &'a mut WorkerTap,
    tx: &'a mut TxSet,
    counters: &'a WorkerCounters,
    now_ns: u64,
}

impl Sink<Mbuf> for Watched<'_> {
    fn deliver(&mut self, port: u16, pkt: Mbuf) {
        if let Some(sent) = self.tx.deliver_reporting(port, pkt) {
            let tap = &mut *self.tap;
            resolve(
                &mut tap.tickets[..tap.pending],
                &mut tap.records,
                port,
                sent,
            );
        }
    }

    fn discard(&mut self, pkt: Mbuf) {
        self.tx.discard(pkt);
    }

    fn punt(&mut self, pkt: Mbuf) {
        self.tx.punt(pkt);
    }
}

impl Observer<Mbuf> for Watched<'_> {
    fn trace(&mut self, index: usize) -> Option<&mut TraceRecord> {
        if index < BURST && self.tap.traced & (1 << index) != 0 {
            self.tap.records.get_mut(index)
        } else {
            None
        }
    }

    fn outcome(&mut self, index: usize, outcome: Outcome) {
        let Some((capture, share)) = &mut self.tap.capture else {
            return;
        };
        let Selector::Outcome(wanted) = capture.selector else {
            return;
        };
        if !wanted.matches(outcome) {
            return;
        }
        match share.staged.get_mut(index).and_then(Option::take) {
            Some(mut slot) => {
                slot.outcome = Some(outcome);
                hand_over(capture, self.counters, slot);
            }
            None => dropped(capture, self.counters, self.tap.ingress),
        }
    }

    fn delivering(&mut self, index: usize, group: u16, port: u16, pkt: &Mbuf) {
        if let Some((capture, share)) = &self.tap.capture {
            if capture.selector == Selector::ToolPort(port) {
                copy(capture, &share.free, self.counters, pkt, port, self.now_ns);
            }
        }
        let tap = &mut *self.tap;
        if index < BURST && tap.traced & (1 << index) != 0 && tap.pending < TICKETS {
            tap.tickets[tap.pending] = Ticket {
                index: index as u8,
                group,
                port,
                position: self.tx.buffered(port) as u16,
            };
            tap.pending += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::VecBuf;

    #[test]
    fn a_slot_copies_every_segment_up_to_its_size() {
        let mut slot = Slot::new(0, 10);
        let pkt = VecBuf::from_segments(vec![vec![1; 6], vec![2; 6]]);
        slot.fill(&pkt, 3, 99);
        assert_eq!(slot.bytes(), &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(
            (slot.original_len, slot.interface, slot.time_ns),
            (12, 3, 99)
        );
        slot.fill(&VecBuf::new(&[7; 4]), 1, 5);
        assert_eq!(slot.bytes(), &[7; 4]);
    }

    #[test]
    fn slots_per_worker_stay_within_bounds() {
        assert_eq!(slots_per_worker(LARGEST_FRAME), 512);
        assert_eq!(slots_per_worker(64), MAX_SLOTS);
        assert_eq!(slots_per_worker(1 << 20), MIN_SLOTS);
    }

    #[test]
    fn a_full_capture_counts_what_it_cannot_copy_and_never_waits() {
        let (capture, reader) = Capture::new(Selector::Ingress(0), 64, 1, 1);
        let share = capture.take_share(0).unwrap();
        let counters = WorkerCounters::new(&config::fixtures::config(config::fixtures::MINIMAL));
        let pool = slots_per_worker(64) - BURST;
        // Nobody reads: the pool's slots are copied, then every packet after is counted.
        let pkt = VecBuf::new(&[0xab; 100]);
        for _ in 0..pool + 10 {
            match share.free.try_recv() {
                Ok(mut slot) => {
                    slot.fill(&pkt, 0, 1);
                    hand_over(&capture, &counters, slot);
                }
                Err(_) => dropped(&capture, &counters, 0),
            }
        }
        assert_eq!(counters.captured.get(), pool as u64);
        assert_eq!(counters.capture_dropped.get(), 10);
        assert_eq!(capture.dropped(0), 10);
        assert_eq!(capture.dropped(1), 0, "no such interface");
        // The reader takes one and gives it back: one more fits.
        let slot = reader.full.try_recv().unwrap();
        assert_eq!(slot.bytes(), &[0xab; 64][..], "cut to the snap length");
        assert_eq!(slot.original_len, 100);
        reader.recycle(slot);
        assert!(share.free.try_recv().is_ok());
        assert!(!capture.returned());
        capture.give_back(0, share);
        assert!(capture.returned());
    }

    #[test]
    fn one_capture_and_one_trace_at_a_time_and_workers_follow() {
        let taps = Taps::new();
        let mut tap = WorkerTap::new(taps.clone(), 0, 1);
        assert!(!tap.changed());
        let (capture, _reader) = Capture::new(Selector::Ingress(1), 128, 1, 2);
        taps.start_capture(&capture).unwrap();
        let (other, _) = Capture::new(Selector::Ingress(0), 128, 1, 2);
        assert_eq!(taps.start_capture(&other), Err(Busy));
        assert!(tap.changed());
        tap.adopt();
        assert!(tap.watching && !tap.changed());
        assert!(!capture.returned(), "the worker holds its share");
        let (trace, _records) = Trace::new(5, Some(0));
        taps.start_trace(&trace).unwrap();
        tap.adopt();
        assert!(tap.trace.is_none(), "a trace of another ingress port");
        assert!(tap.capture.is_some(), "the capture goes on");
        taps.stop_capture(&capture);
        tap.adopt();
        assert!(capture.returned(), "the share is back");
        assert_eq!(Arc::strong_count(&capture), 1, "the worker let go");
        assert!(!tap.watching, "nothing for this worker");
        assert!(
            tap.changed() || tap.generation != 0,
            "the trace still runs elsewhere"
        );
        taps.stop_trace(&trace);
        tap.adopt();
        assert!(!tap.changed() && tap.generation == 0);
    }

    #[test]
    fn a_trace_hands_out_exactly_its_count() {
        let (trace, _records) = Trace::new(10, None);
        let claims: Vec<u64> = (0..5).map(|_| trace.claim(4)).collect();
        assert_eq!(claims, [4, 4, 2, 0, 0]);
    }

    #[test]
    fn tickets_resolve_by_position_in_the_flushed_buffer() {
        let mut records = Box::new([TraceRecord::EMPTY; BURST]);
        for (i, group) in [(0usize, 3u16), (1, 3)] {
            records[i].push_group(pipelines::observe::GroupTrace {
                group,
                balance: config::Balance::Flow,
                key: 0,
                port: Some(2),
                dedup: Default::default(),
                sliced_to: None,
                copy: CopyTrace::Queued {
                    len: 60,
                    encapsulation: None,
                    egress_truncated: false,
                    tx: TxResult::Pending,
                },
            });
        }
        let mut tickets = [
            Ticket {
                index: 0,
                group: 3,
                port: 2,
                position: 30,
            },
            Ticket {
                index: 1,
                group: 3,
                port: 2,
                position: 31,
            },
        ];
        resolve(&mut tickets, &mut records, 7, 0);
        assert!(tickets.iter().all(|t| t.port == 2), "another port's flush");
        resolve(&mut tickets, &mut records, 2, 31);
        let tx = |i: usize| match records[i].groups()[0].copy {
            CopyTrace::Queued { tx, .. } => tx,
            _ => unreachable!(),
        };
        assert_eq!((tx(0), tx(1)), (TxResult::Sent, TxResult::Dropped));
    }
}
