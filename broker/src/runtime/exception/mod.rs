//! The exception path: the traffic of the addressed ports themselves, between the wire and the
//! kernel side, and the resolution of the tunnel ports' next hops.
//!
//! # Design
//! Workers hand the frames for an addressed port itself (outcome `control`: ARP, neighbour
//! discovery, ICMP, TCP and non-mirror UDP to its addresses; [`pipelines::stage::local`]) to
//! this path through a bounded channel, never waiting: a full channel drops the frame and the
//! worker counts it. An uplink's receive queue is polled here directly (an uplink only sends;
//! what it receives is for the control side). One thread, started from the control thread (so
//! on the control core), does, every millisecond it finds nothing to do:
//! - learns next hops' addresses from every such frame ([`neighbours`]), then hands the frame to
//!   the port's kernel interface (`kernel = "tap"` or `"virtio-user"`, [`kernel`]), or, with
//!   `kernel = "none"`, answers ARP, neighbour solicitations and echo requests itself;
//! - sends what the kernel interface sends out of the port, on a transmit queue no worker
//!   uses, once it has checked that the frame is the port's own to send (its MAC and
//!   addresses: [`pipelines::stage::local::sent_by`]); anything else is dropped and counted;
//! - asks every next hop for its address each [`neighbours::PROBE_INTERVAL`], and publishes the
//!   table for the control loop, which builds a plan whenever a next hop changes address or
//!   comes or goes (as for a link).
//!
//! Nothing here is per mirrored packet: the data path pays one classification per frame of an
//! addressed port (a few comparisons) and nothing else.
//!
//! # Limitations
//! Control traffic waits up to a millisecond in the channel: fine for ARP, ping and health
//! checks, not meant for bulk transfers to the broker's own addresses.

pub mod kernel;
pub mod neighbours;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use config::Kernel;
use drivers::{Mbuf, Mempool, RxQueue, TxQueue};
use pipelines::PacketBuf;
use pipelines::neighbour::{self, PortAddresses};
use pipelines::stage::local::sent_by;
use tracing::warn;

use super::tx::TxQueueRef;
use neighbours::{NeighbourTable, NextHopState};

/// Descriptors of the queues of a kernel interface and of an addressed port's control queue:
/// control traffic is ARP, ping and health checks.
pub const CONTROL_DESCRIPTORS: u16 = 256;

/// Frames waiting between the workers and the exception path: a burst from every worker and
/// then some; a full channel means the path fell behind, and the worker drops and counts.
pub const CHANNEL_FRAMES: usize = 1024;

/// A frame for an addressed port itself: the port (index in the exception path's ports) and
/// the frame.
pub type Punted = (u16, Mbuf);

/// How long the loop sleeps when it found nothing to do.
const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Frames taken from a queue at a time.
const BURST: usize = 32;

/// What the exception path counts for one addressed port (written by its thread only).
#[derive(Debug, Default)]
pub struct SideCounters {
    /// Frames for the port handed to its kernel side.
    pub to_kernel: AtomicU64,
    /// Frames the kernel side sent out of the port.
    pub from_kernel: AtomicU64,
    /// Frames the kernel side sent that were not the port's own to send, dropped.
    pub from_kernel_dropped: AtomicU64,
    /// ARP, neighbour and echo answers the broker sent itself (`kernel = "none"`).
    pub answered: AtomicU64,
    /// Frames for the port the broker had no answer to (`kernel = "none"`), or that a full
    /// queue refused, dropped.
    pub dropped: AtomicU64,
    /// Neighbour requests sent for the tunnel ports' next hops.
    pub probes: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    // One writer: a load and a store, as the workers' counters.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// One addressed port as the exception path sees it.
#[derive(Debug)]
pub struct Side {
    pub name: String,
    pub addresses: PortAddresses,
    pub kernel: Kernel,
    /// The port's transmit queue that no worker uses (shared with a worker's only when the
    /// device has too few).
    pub tx: TxQueueRef,
    /// An uplink's receive queue (everything it receives is for the control side).
    pub rx: Option<RxQueue>,
    /// The kernel interface's port, when there is one: its receive and transmit queues.
    pub kernel_queues: Option<(RxQueue, TxQueue)>,
    /// The kernel interface's setup, held for its `Drop`: its policy rules go when the path
    /// stops.
    pub _kernel_side: Option<kernel::KernelSide>,
    pub counters: Arc<SideCounters>,
}

/// What the control loop reads: every next hop as the path last saw it.
#[derive(Clone, Debug, Default)]
pub struct NextHops {
    pub states: Vec<NextHopState>,
}

/// The running exception path.
#[derive(Debug)]
pub struct ExceptionPath {
    thread: Option<JoinHandle<Vec<Side>>>,
    stop: Arc<AtomicBool>,
    /// The next hops as last published.
    pub next_hops: Arc<ArcSwap<NextHops>>,
    /// By side, in the order given.
    pub counters: Vec<Arc<SideCounters>>,
}

impl ExceptionPath {
    /// Starts the path for `sides` (indexed as the workers' [`Punted`] frames name them), taking
    /// frames from `punted`, resolving `next_hops` ((side, address) pairs), building frames in
    /// `pool`. Call it from the control thread: the path's thread inherits its CPU.
    pub fn start(
        sides: Vec<Side>,
        punted: Receiver<Punted>,
        next_hops: Vec<neighbours::Key>,
        pool: Mempool,
    ) -> anyhow::Result<ExceptionPath> {
        let stop = Arc::new(AtomicBool::new(false));
        let table = NeighbourTable::new(next_hops);
        let published = Arc::new(ArcSwap::from_pointee(NextHops {
            states: table.states(),
        }));
        let counters = sides.iter().map(|s| s.counters.clone()).collect();
        let mut path = Path {
            sides,
            punted,
            table,
            pool,
            published: published.clone(),
            last_publish: Instant::now(),
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("broker-exception".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if !path.turn(Instant::now()) {
                            std::thread::sleep(IDLE_SLEEP);
                        }
                    }
                    path.sides
                })?
        };
        Ok(ExceptionPath {
            thread: Some(thread),
            stop,
            next_hops: published,
            counters,
        })
    }

    /// Stops the thread; the sides come back (their queues, and the kernel sides whose policy
    /// rules go when they are dropped).
    pub fn stop(mut self) -> Vec<Side> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(sides)) => sides,
            _ => Vec::new(),
        }
    }
}

/// The thread's state.
struct Path {
    sides: Vec<Side>,
    punted: Receiver<Punted>,
    table: NeighbourTable,
    pool: Mempool,
    published: Arc<ArcSwap<NextHops>>,
    last_publish: Instant,
}

impl Path {
    /// One turn: every queue drained once, probes sent, the table published when it changed
    /// (and once a second for the ages). Returns whether anything was received.
    fn turn(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut changed = false;
        // Empty, or every worker gone (stopping): nothing more this turn either way.
        while let Ok((side, frame)) = self.punted.try_recv() {
            busy = true;
            changed |= self.take(usize::from(side), frame, now);
        }
        let mut burst: [Option<Mbuf>; BURST] = [const { None }; BURST];
        for side in 0..self.sides.len() {
            let received = match self.sides[side].rx.as_mut() {
                Some(rx) => rx.rx_burst(&mut burst),
                None => 0,
            };
            for frame in burst[..received].iter_mut().filter_map(Option::take) {
                busy = true;
                changed |= self.take(side, frame, now);
            }
            let from_kernel = match self.sides[side].kernel_queues.as_mut() {
                Some((rx, _)) => rx.rx_burst(&mut burst),
                None => 0,
            };
            for frame in burst[..from_kernel].iter_mut().filter_map(Option::take) {
                busy = true;
                self.sent_by_kernel(side, frame);
            }
        }
        for probe in self.table.probes(now) {
            self.probe(probe);
        }
        changed |= self.table.expire(now);
        if changed || now.duration_since(self.last_publish) >= Duration::from_secs(1) {
            self.published.store(Arc::new(NextHops {
                states: self.table.states(),
            }));
            self.last_publish = now;
        }
        busy
    }

    /// A frame for side `side` itself: learnt from, then handed to its kernel side or answered.
    /// Returns whether a next hop changed.
    fn take(&mut self, side: usize, frame: Mbuf, now: Instant) -> bool {
        let Some(s) = self.sides.get_mut(side) else {
            return false;
        };
        let changed = neighbour::learn(frame.data())
            .is_some_and(|neighbour| self.table.learn(side, neighbour, now));
        match (&mut s.kernel_queues, s.kernel) {
            (Some((_, to_kernel)), _) => {
                if send_to_kernel(to_kernel, frame) {
                    bump(&s.counters.to_kernel, 1);
                } else {
                    bump(&s.counters.dropped, 1);
                }
            }
            (None, _) => match neighbour::answer(&s.addresses, frame.data()) {
                Some(reply) => {
                    drop(frame);
                    if build(&self.pool, &reply).is_some_and(|m| send(&mut s.tx, m)) {
                        bump(&s.counters.answered, 1);
                    } else {
                        bump(&s.counters.dropped, 1);
                    }
                }
                None => bump(&s.counters.dropped, 1),
            },
        }
        changed
    }

    /// A frame side `side`'s kernel interface sent: out of the port if it is the port's own.
    fn sent_by_kernel(&mut self, side: usize, frame: Mbuf) {
        let s = &mut self.sides[side];
        if !sent_by(&s.addresses, frame.data()) {
            bump(&s.counters.from_kernel_dropped, 1);
            return;
        }
        if send(&mut s.tx, frame) {
            bump(&s.counters.from_kernel, 1);
        } else {
            bump(&s.counters.dropped, 1);
        }
    }

    /// Asks a next hop for its address.
    fn probe(&mut self, probe: neighbours::Probe) {
        let (side, ip) = probe.key;
        let Some(s) = self.sides.get_mut(side) else {
            return;
        };
        let frame: Option<Vec<u8>> = match ip {
            std::net::IpAddr::V4(target) => s.addresses.ipv4.map(|own| {
                let mut frame = neighbour::arp_request(s.addresses.mac, own, target).to_vec();
                if let Some(mac) = probe.unicast {
                    // A refresh goes to the known address only (RFC 1122 §2.3.2.1 unicast poll).
                    frame[..6].copy_from_slice(&mac);
                }
                frame
            }),
            // Always to the target's solicited-node group: a unicast refresh would also need the
            // IPv6 destination to be the target's (RFC 4861 §7.2.2), and the group reaches it.
            std::net::IpAddr::V6(target) => s.addresses.ipv6.map(|own| {
                neighbour::neighbour_solicitation(s.addresses.mac, own, target).to_vec()
            }),
        };
        let Some(frame) = frame else {
            return;
        };
        if build(&self.pool, &frame).is_some_and(|m| send(&mut s.tx, m)) {
            bump(&s.counters.probes, 1);
        } else {
            warn!("{}: no room to ask {ip} for its address", s.name);
        }
    }
}

/// An mbuf holding `bytes`; `None` when the pool is empty.
fn build(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
    let mut mbuf = pool.alloc()?;
    mbuf.append(bytes).then_some(mbuf)
}

/// Sends one frame on `queue`; what the queue refuses is freed. Returns whether it was taken.
fn send(queue: &mut TxQueueRef, frame: Mbuf) -> bool {
    let mut one = [Some(frame)];
    // Refused: dropped with the slot.
    queue.send(&mut one) == 1
}

/// Sends one frame on a kernel interface's queue (its own: no other user).
fn send_to_kernel(queue: &mut TxQueue, frame: Mbuf) -> bool {
    let mut one = [Some(frame)];
    queue.tx_burst(&mut one) == 1
}

pub use super::tx::PuntSender;
