//! A running capture as the HTTP server streams it: the slots the workers fill, written out as
//! pcapng blocks, and given back.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::pcapng::{Interface, PcapngError, PcapngStream};
use crate::http::server::StreamBody;
use crate::runtime::tap::{Capture, CaptureReader, Selector, Slot, Taps};

/// Slots written into one part of the stream at most (a part is one HTTP chunk).
const SLOTS_PER_PART: usize = 1024;

/// How long a stopping capture waits for the workers to give their buffers back (they do at
/// their next poll, microseconds away; a worker that does not is stopping with the broker).
const RETURN_WAIT: Duration = Duration::from_secs(2);

/// What a capture stream is made of.
#[derive(Debug)]
pub struct Setup {
    pub taps: Arc<Taps>,
    pub capture: Arc<Capture>,
    pub reader: CaptureReader,
    /// The section header's `shb_userappl` and comment.
    pub application: String,
    pub comment: String,
    /// One per IDB: for a tool-port or ingress capture the port; for an outcome capture every
    /// ingress port, by index.
    pub interfaces: Vec<Interface>,
    pub snaplen: u32,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Added to a worker's clock to give the time since the Unix epoch.
    pub epoch_offset_ns: i128,
}

/// A capture being streamed.
#[derive(Debug)]
pub struct CaptureStream {
    taps: Arc<Taps>,
    capture: Arc<Capture>,
    reader: CaptureReader,
    pcapng: PcapngStream,
    count: Option<u64>,
    deadline: Option<Instant>,
    epoch_offset_ns: i128,
    /// Packets written, by interface (IDB).
    written: Vec<u64>,
    started: Instant,
    /// Asked to end: the next part is the last.
    finishing: bool,
    done: bool,
    /// The capture has been stopped and its buffers are back.
    stopped: bool,
}

impl CaptureStream {
    pub fn new(setup: Setup) -> Result<CaptureStream, PcapngError> {
        let pcapng = PcapngStream::new(
            &setup.application,
            &setup.comment,
            &setup.interfaces,
            setup.snaplen,
        );
        let pcapng = match pcapng {
            Ok(p) => p,
            Err(e) => {
                setup.taps.stop_capture(&setup.capture);
                return Err(e);
            }
        };
        info!("capture started: {}", setup.comment);
        Ok(CaptureStream {
            taps: setup.taps,
            capture: setup.capture,
            reader: setup.reader,
            pcapng,
            count: setup.count,
            deadline: setup.duration.map(|d| Instant::now() + d),
            epoch_offset_ns: setup.epoch_offset_ns,
            written: vec![0; setup.interfaces.len()],
            started: Instant::now(),
            finishing: false,
            done: false,
            stopped: false,
        })
    }

    fn total(&self) -> u64 {
        self.written.iter().sum()
    }

    fn counted_out(&self) -> bool {
        self.count.is_some_and(|c| self.total() >= c)
    }

    /// The IDB of a slot's interface: the port of a one-port capture, the ingress port of an
    /// outcome capture.
    fn interface_of(&self, slot: &Slot) -> u32 {
        match self.capture.selector {
            Selector::Outcome(_) => u32::from(slot.interface),
            Selector::ToolPort(_) | Selector::Ingress(_) => 0,
        }
    }

    /// Writes `slot` (unless the count is reached) and gives it back to its worker.
    fn write(&mut self, slot: Slot) {
        if !self.counted_out() {
            let interface = self.interface_of(&slot);
            let time = (i128::from(slot.time_ns) + self.epoch_offset_ns).max(0) as u64;
            let comment = slot.outcome.map(|o| o.to_string());
            match self.pcapng.packet(
                interface,
                time,
                slot.original_len,
                slot.bytes(),
                comment.as_deref(),
            ) {
                Ok(()) => {
                    if let Some(n) = self.written.get_mut(interface as usize) {
                        *n += 1;
                    }
                }
                Err(e) => warn!("capture: {e}"),
            }
        }
        self.reader.recycle(slot);
    }

    /// Stops the capture: the workers let it go and give their buffers back; what they had
    /// handed over is written (up to the count).
    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.taps.stop_capture(&self.capture);
        let waited = Instant::now();
        while !(self.capture.returned() && Arc::strong_count(&self.capture) == 1) {
            if waited.elapsed() > RETURN_WAIT {
                warn!("capture: a worker did not give its buffers back in time");
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        while let Ok(slot) = self.reader.full.try_recv() {
            self.write(slot);
        }
    }

    /// The statistics block of each interface, then the log line.
    fn end(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut dropped_total = 0;
        for (interface, &written) in self.written.clone().iter().enumerate() {
            let port = match self.capture.selector {
                Selector::ToolPort(p) | Selector::Ingress(p) => p,
                Selector::Outcome(_) => interface as u16,
            };
            let dropped = self.capture.dropped(port);
            dropped_total += dropped;
            if let Err(e) = self
                .pcapng
                .statistics(interface as u32, now, written, dropped)
            {
                warn!("capture: {e}");
            }
        }
        let dropped = if dropped_total > 0 {
            format!(
                ", {dropped_total} selected but not copied (no free buffer: the reader was behind)"
            )
        } else {
            String::new()
        };
        info!(
            "capture ended after {:.1?}: {} packets written{dropped}",
            self.started.elapsed(),
            self.total()
        );
    }
}

impl StreamBody for CaptureStream {
    fn next(&mut self, out: &mut Vec<u8>, wait: Duration) -> bool {
        if self.done {
            return false;
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) || self.counted_out() {
            self.finishing = true;
        }
        if !self.finishing {
            let wait = match self.deadline {
                Some(d) => wait.min(d.saturating_duration_since(now)),
                None => wait,
            };
            match self.reader.full.recv_timeout(wait) {
                Ok(slot) => {
                    self.write(slot);
                    for _ in 1..SLOTS_PER_PART {
                        match self.reader.full.try_recv() {
                            Ok(slot) => self.write(slot),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The capture holds the sending end: cannot happen while it lives.
                Err(RecvTimeoutError::Disconnected) => self.finishing = true,
            }
            if self.counted_out() {
                self.finishing = true;
            }
        }
        if self.finishing {
            self.stop();
            self.end();
            self.done = true;
        }
        self.pcapng.take(out);
        !self.done
    }

    fn finish(&mut self) {
        self.finishing = true;
    }
}

impl Drop for CaptureStream {
    /// The client went away (or the stream ended): the workers stop copying.
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
            info!(
                "capture ended by the client after {:.1?}: {} packets written",
                self.started.elapsed(),
                self.total()
            );
        }
    }
}
