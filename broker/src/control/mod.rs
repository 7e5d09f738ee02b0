//! The control plane: what runs on the main lcore while the workers poll.
//!
//! # Design
//! One loop, woken every [`TICK`], owns every decision that is not per packet: when to stop
//! (a signal, or in labs `stop_when_idle`), publishing metrics and status once a second
//! ([`crate::metrics::Telemetry::tick`]), and — each in its own module — what to change in the
//! running appliance. It never touches a packet and never blocks a worker: everything it changes
//! reaches the data plane as a new immutable [`pipelines::plan::Plan`] swapped in between bursts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::info;

use crate::metrics::Telemetry;
use crate::runtime::Appliance;

/// How often the control loop wakes up. Short enough that a link change or a stop request is
/// acted on within tens of milliseconds, long enough to cost nothing.
pub const TICK: Duration = Duration::from_millis(20);

/// Why the broker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// `stop_when_idle`: traffic flowed, then the ingress was idle that long.
    Idle,
}

impl StopReason {
    pub fn label(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::Idle => "idle",
        }
    }
}

/// The flags signal handlers set (see `main`).
#[derive(Clone, Debug, Default)]
pub struct Signals {
    /// SIGINT / SIGTERM: drain and stop.
    pub stop: Arc<AtomicBool>,
}

/// Notices the end of a lab run: packets have flowed, then none for `idle`.
#[derive(Debug)]
struct IdleWatch {
    idle: Duration,
    last_rx: u64,
    last_change: Instant,
}

impl IdleWatch {
    fn new(idle: Duration) -> IdleWatch {
        IdleWatch {
            idle,
            last_rx: 0,
            last_change: Instant::now(),
        }
    }

    /// Whether the ingress has gone quiet, given the packets received so far.
    fn expired(&mut self, rx: u64) -> bool {
        if rx != self.last_rx {
            self.last_rx = rx;
            self.last_change = Instant::now();
        }
        rx > 0 && self.last_change.elapsed() >= self.idle
    }
}

/// Packets the workers have received so far, under the current plan's counters.
fn received(app: &Appliance) -> u64 {
    app.plans
        .load()
        .counters
        .iter()
        .map(|c| c.rx_packets.get())
        .sum()
}

/// Runs the control plane until the appliance must stop; publishes through `telemetry` when
/// the metrics endpoint is on.
pub fn run(
    app: &mut Appliance,
    signals: &Signals,
    mut telemetry: Option<&mut Telemetry>,
) -> StopReason {
    let mut idle = app.config.broker.stop_when_idle.map(IdleWatch::new);
    loop {
        std::thread::sleep(TICK);
        if signals.stop.load(Ordering::Relaxed) {
            return StopReason::Signal;
        }
        if let Some(telemetry) = telemetry.as_deref_mut() {
            telemetry.tick(app);
        }
        if let Some(watch) = idle.as_mut() {
            let rx = received(app);
            if watch.expired(rx) {
                info!(
                    "ingress idle for {:?} after {rx} packets: stopping",
                    watch.idle
                );
                return StopReason::Idle;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_only_after_traffic_and_quiet() {
        let mut w = IdleWatch::new(Duration::from_millis(30));
        assert!(!w.expired(0));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!w.expired(0), "no traffic yet: not idle, however long");
        assert!(!w.expired(5));
        assert!(!w.expired(5));
        std::thread::sleep(Duration::from_millis(40));
        assert!(w.expired(5));
        assert!(!w.expired(6), "a new packet resets the watch");
    }
}
