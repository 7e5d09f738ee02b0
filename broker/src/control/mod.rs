//! The control plane: what runs on the main lcore while the workers poll.
//!
//! # Design
//! One loop, woken every [`TICK`] (or at once by a `POST /reload`), owns every decision that is
//! not per packet: when to stop (a signal, or in labs `stop_when_idle`), reloading the config
//! ([`reload`]: SIGHUP or `POST /reload`), following the tool ports' links ([`links`]), folding
//! retired counters into the ledger once no worker holds them, and publishing metrics and status
//! once a second ([`crate::metrics::Telemetry::tick`], and at once after a plan change). It never
//! touches a packet and never blocks a worker: everything it changes reaches the data plane as a
//! new immutable [`pipelines::plan::Plan`] swapped in between bursts. Stopping is bounded in
//! time ([`stop`]).

pub mod links;
pub mod reload;
pub mod stop;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tracing::info;

use crate::metrics::Telemetry;
use crate::runtime::Appliance;
use links::LinkWatch;
use reload::ReplyTo;

/// How often the control loop wakes up. Short enough that a link change or a stop request is
/// acted on within tens of milliseconds (a failover must complete within 100 ms), long enough to
/// cost nothing.
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
    /// SIGHUP: reload the config file.
    pub reload: Arc<AtomicBool>,
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

/// Packets the workers have received so far, over every plan's counters.
fn received(app: &Appliance) -> u64 {
    app.ledger.received(&app.plans.load().counters)
}

/// Runs the control plane until the appliance must stop; publishes through `telemetry` when
/// the metrics endpoint is on, and takes reload requests from `requests` (the endpoint's
/// `POST /reload`).
pub fn run(
    app: &mut Appliance,
    signals: &Signals,
    mut telemetry: Option<&mut Telemetry>,
    mut requests: Option<Receiver<ReplyTo>>,
) -> StopReason {
    let mut idle = app.config.broker.stop_when_idle.map(IdleWatch::new);
    let mut links = LinkWatch::new(app.tools.len());
    loop {
        // Sleep a tick, or less when `POST /reload` asks.
        let request = match requests.as_ref().map(|r| r.recv_timeout(TICK)) {
            Some(Ok(reply)) => Some(reply),
            Some(Err(RecvTimeoutError::Timeout)) => None,
            Some(Err(RecvTimeoutError::Disconnected)) => {
                requests = None;
                std::thread::sleep(TICK);
                None
            }
            None => {
                std::thread::sleep(TICK);
                None
            }
        };
        if signals.stop.load(Ordering::Relaxed) {
            return StopReason::Signal;
        }
        let mut changed = !links.poll(app).is_empty();
        if signals.reload.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: reloading {}", config_path(app));
            reload::reload(app, links.live());
            changed = true;
        }
        if let Some(reply) = request {
            info!("POST /reload: reloading {}", config_path(app));
            let outcome = reload::reload(app, links.live());
            changed = true;
            // The client may have given up waiting; the reload stands either way.
            let _ = reply.try_send(outcome);
        }
        app.ledger.settle();
        if let Some(telemetry) = telemetry.as_deref_mut() {
            if changed {
                telemetry.publish(app);
            } else {
                telemetry.tick(app);
            }
        }
        if changed {
            let wanted = app.config.broker.stop_when_idle;
            if idle.as_ref().map(|w| w.idle) != wanted {
                idle = wanted.map(IdleWatch::new);
            }
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

fn config_path(app: &Appliance) -> String {
    app.config
        .path
        .as_ref()
        .map_or_else(|| "the config".to_owned(), |p| p.display().to_string())
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
