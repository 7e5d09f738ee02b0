//! Graceful stop, with a deadline.
//!
//! # Design
//! The first SIGINT/SIGTERM sets the stop flag: the control loop returns, the workers finish the
//! burst in hand, flush every TX buffer and return, the ports are stopped and closed (a `net_pcap`
//! port writes out its file), and the summary is printed. A second signal exits at once with
//! status 130 (`signal_hook::flag::register_conditional_shutdown`, set up in `main`).
//!
//! Nothing in a drain should take long, but a worker can be stuck in a driver (a `net_pcap`
//! output on a pipe nobody reads blocks in `write`; a broken NIC never completes a TX), and a
//! broker that does not stop when asked is worse than one that stops untidily: a [`Watchdog`],
//! armed when the drain starts, ends the process with [`EXIT_DRAIN_TIMEOUT`] and a message if
//! the drain has not finished within [`DRAIN_DEADLINE`].

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a drain may take: workers finish one burst and flush at most a burst per tool port,
/// then the ports close. Milliseconds in practice; seconds only if something is stuck.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Exit status when the drain did not finish within [`DRAIN_DEADLINE`].
pub const EXIT_DRAIN_TIMEOUT: i32 = 4;

/// Ends the process if it is not disarmed in time.
#[derive(Debug)]
pub struct Watchdog {
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the countdown: unless [`Watchdog::disarm`] is called within `deadline`, prints
    /// what was being waited for and exits with [`EXIT_DRAIN_TIMEOUT`].
    pub fn arm(deadline: Duration, what: &'static str) -> Watchdog {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let done = done.clone();
            std::thread::Builder::new()
                .name("broker-watchdog".into())
                .spawn(move || {
                    let started = Instant::now();
                    let (lock, signal) = &*done;
                    let mut finished = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    while !*finished {
                        let Some(left) = deadline.checked_sub(started.elapsed()) else {
                            eprintln!(
                                "error: {what} did not finish within {deadline:?}: exiting without it (status {EXIT_DRAIN_TIMEOUT})"
                            );
                            // `_exit`, not `exit`: a stuck worker may hold a stdio stream
                            // (a `net_pcap` dumper) that `exit` would try to flush, and hang.
                            signal_hook::low_level::exit(EXIT_DRAIN_TIMEOUT);
                        };
                        finished = signal
                            .wait_timeout(finished, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                })
        };
        match thread {
            Ok(thread) => Watchdog {
                done,
                thread: Some(thread),
            },
            Err(e) => {
                // Without a thread there is no deadline; the drain itself still runs.
                tracing::warn!("no drain watchdog ({e}): the stop is not time-bounded");
                Watchdog { done, thread: None }
            }
        }
    }

    /// The drain finished: stop the countdown.
    pub fn disarm(mut self) {
        let (lock, signal) = &*self.done;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        signal.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disarmed_in_time_does_nothing() {
        let w = Watchdog::arm(Duration::from_secs(60), "test");
        let start = Instant::now();
        w.disarm();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "disarm returns at once"
        );
    }
}
