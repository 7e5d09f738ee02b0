//! The control plane: what runs on the main lcore while the workers poll.
//!
//! # Design
//! One loop, woken every [`TICK`] (or at once by a request of the endpoint, [`crate::requests`]), owns
//! every decision that is not per packet and the control plane's state ([`state`]: the running
//! config, the ledger of retired counters, the reload counts): when to stop (a signal, or in labs `stop_when_idle`), reloading the config
//! ([`reload`]: SIGHUP or `POST /reload`), following the tool ports' links ([`links`]), folding
//! retired counters into the ledger once no worker holds them, and publishing metrics and status
//! once a second ([`telemetry`], and at once after a plan change). It never
//! touches a packet and never blocks a worker: everything it changes reaches the data plane as a
//! new immutable [`pipelines::plan::Plan`] swapped in between bursts. Stopping is bounded in
//! time ([`stop`]). Under systemd it also tells the service manager how it is doing
//! ([`systemd`]: status, watchdog pings from the loop itself, reloads, the stop).

pub mod health;
pub mod links;
pub mod reload;
pub mod state;
pub mod stop;
pub mod systemd;
pub mod telemetry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tracing::info;

use crate::report::StopReason;
use crate::requests::ReplyTo;
use crate::runtime::Appliance;
use health::HealthWatch;
use links::LinkWatch;
use state::ControlState;
use systemd::Notifier;
use telemetry::Telemetry;

/// How often the control loop wakes up. Short enough that a link change or a stop request is
/// acted on within tens of milliseconds (a failover must complete within 100 ms), long enough to
/// cost nothing.
pub const TICK: Duration = Duration::from_millis(20);

/// The flags signal handlers set (see `main`).
#[derive(Clone, Debug, Default)]
pub struct Signals {
    /// SIGINT / SIGTERM: drain and stop.
    pub stop: Arc<AtomicBool>,
    /// The number of the signal that set `stop` (0: none), for the log line.
    pub stop_signal: Arc<AtomicUsize>,
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

/// [`reload::reload`], between `RELOADING=1` and `READY=1` when systemd listens.
fn notified_reload(
    app: &Appliance,
    state: &mut ControlState,
    links: &LinkWatch,
    notifier: Option<&mut Notifier>,
) -> crate::report::ReloadOutcome {
    let Some(notifier) = notifier else {
        return reload::reload(app, state, links);
    };
    notifier.reloading();
    let outcome = reload::reload(app, state, links);
    notifier.reloaded(&outcome);
    outcome
}

/// `SIGTERM` for SIGTERM's number; what asked for the stop when no signal did.
fn signal_name(number: usize) -> String {
    i32::try_from(number).ok().filter(|&n| n != 0).map_or_else(
        || "stop requested".to_owned(),
        |n| {
            signal_hook::low_level::signal_name(n)
                .map_or_else(|| format!("signal {n}"), str::to_owned)
        },
    )
}

/// Packets the workers have received so far, over every plan's counters.
fn received(app: &Appliance, state: &ControlState) -> u64 {
    state.ledger.received(&app.plans.load().counters)
}

/// Runs the control plane until the appliance must stop; publishes through `telemetry` when
/// the metrics endpoint is on, takes reload requests from `requests` (the endpoint's
/// `POST /reload`), and tells systemd through `notifier` when it started the broker.
pub fn run(
    app: &Appliance,
    state: &mut ControlState,
    health: &mut HealthWatch,
    signals: &Signals,
    mut telemetry: Option<&mut Telemetry>,
    mut requests: Option<Receiver<ReplyTo>>,
    mut notifier: Option<&mut Notifier>,
) -> StopReason {
    let mut idle = state.config.broker.stop_when_idle.map(IdleWatch::new);
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
            let signal = signal_name(signals.stop_signal.load(Ordering::Relaxed));
            info!("{signal}: stopping (draining the workers, then the summary)");
            if let Some(notifier) = notifier.as_deref_mut() {
                notifier.stopping(&signal);
            }
            health.stopping();
            return StopReason::Signal;
        }
        let mut changed = !links.poll(app, &state.config).is_empty();
        if signals.reload.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: reloading {}", state.config_path());
            notified_reload(app, state, &links, notifier.as_deref_mut());
            changed = true;
        }
        if let Some(reply) = request {
            info!("POST /reload: reloading {}", state.config_path());
            let outcome = notified_reload(app, state, &links, notifier.as_deref_mut());
            changed = true;
            // The client may have given up waiting; the reload stands either way.
            let _ = reply.try_send(outcome);
        }
        state.ledger.settle();
        health.look(&app.plans.load(), state);
        if let Some(notifier) = notifier.as_deref_mut() {
            notifier.tick(app, state);
        }
        if let Some(telemetry) = telemetry.as_deref_mut() {
            if changed {
                telemetry.publish(app, state);
            } else {
                telemetry.tick(app, state);
            }
        }
        if changed {
            let wanted = state.config.broker.stop_when_idle;
            if idle.as_ref().map(|w| w.idle) != wanted {
                idle = wanted.map(IdleWatch::new);
            }
        }
        if let Some(watch) = idle.as_mut() {
            let rx = received(app, state);
            if watch.expired(rx) {
                info!(
                    "ingress idle for {:?} after {rx} packets: stopping",
                    watch.idle
                );
                if let Some(notifier) = notifier.as_deref_mut() {
                    notifier.stopping("ingress idle");
                }
                health.stopping();
                return StopReason::Idle;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_are_named() {
        assert_eq!(
            signal_name(signal_hook::consts::SIGTERM as usize),
            "SIGTERM"
        );
        assert_eq!(signal_name(signal_hook::consts::SIGINT as usize), "SIGINT");
        assert_eq!(signal_name(0), "stop requested");
    }

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
