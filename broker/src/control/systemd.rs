//! systemd's service notifications (`sd_notify(3)`): readiness, status, watchdog, reload, stop.
//!
//! # Design
//! Under `Type=notify` systemd names a Unix datagram socket in `NOTIFY_SOCKET` (a path, or
//! `@name` in the abstract namespace); each notification is one datagram of newline-separated
//! `KEY=VALUE` lines. That is all the protocol this needs, so it is written here with std's
//! `UnixDatagram` (a few dozen lines, no `unsafe`) rather than taken from a crate: `sd-notify`,
//! the maintained small one, does the same and more (file-descriptor store, socket activation)
//! and now links `libc` for the monotonic clock of `Type=notify-reload`, which the broker does
//! not use (below). Without `NOTIFY_SOCKET` (not under systemd, or another `Type=`) nothing is
//! sent and nothing costs anything.
//!
//! What the broker says, and when:
//! - `READY=1` once [`crate::runtime::Appliance::start`] returned (every port started, every
//!   worker polling) and the endpoint serves (`run`): `systemctl start` returns then, and units
//!   ordered after the broker start only then.
//! - `STATUS=received … packets/s, delivered … packets/s; config generation N` about once a
//!   second from the control loop ([`Notifier::tick`]), for `systemctl status`; a refused last
//!   reload is added to it.
//! - `WATCHDOG=1` from the control loop at half the interval systemd asks for in
//!   `WATCHDOG_USEC` (when `WATCHDOG_PID`, if set, is this process): a control loop that hangs
//!   stops pinging, and systemd kills and restarts the broker (`WatchdogSec=`, `Restart=`). The
//!   pings come from the loop itself, not a thread of their own, so they prove the loop turns.
//! - `RELOADING=1` before a reload (SIGHUP or `POST /reload`) and `READY=1` after it, whatever
//!   its outcome: a refused config leaves the running one in place, so the broker is ready.
//! - `STOPPING=1` when the stop begins (a signal, or `stop_when_idle`), before the drain.
//!
//! A notification that cannot be sent is logged once and the broker carries on: it runs the
//! same with or without a service manager listening.
//!
//! # Limitations
//! `RELOADING=1` carries no `MONOTONIC_USEC=`, which `Type=notify-reload` (systemd 253 and
//! later) wants: reading `CLOCK_MONOTONIC`'s raw value needs `libc` and `unsafe`, and Debian 12
//! has systemd 252, where the unit is `Type=notify` with `ExecReload=broker reload` (which
//! reports a refused config itself). `NOTIFY_SOCKET` of the `vsock:` form (systemd 254 and
//! later, for virtual machines) is not supported.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use pipelines::Outcome;
use tracing::{info, warn};

use super::state::ControlState;
use crate::report::{ReloadOutcome, ReloadVerdict, si};
use crate::runtime::Appliance;

/// How often `STATUS=` is refreshed: as often as the metrics, which `systemctl status` readers
/// will compare it with.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Where notifications go and what is due.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    /// Half of `WATCHDOG_USEC`: how often to ping; `None` without a watchdog.
    watchdog: Option<Duration>,
    last_ping: Instant,
    last_status: Instant,
    /// (when, received, delivered) at the last `STATUS=`, for the rates: the first rates are
    /// from the notifier's creation, just before `READY=1`, when the workers have only started.
    previous: (Instant, u64, u64),
    /// A send failed already (logged once).
    failed: bool,
}

/// The socket address `NOTIFY_SOCKET` names: an absolute path, or `@name` (abstract namespace).
fn parse_socket(value: &str) -> Result<SocketAddr, String> {
    if let Some(name) = value.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())
    } else if value.starts_with('/') {
        SocketAddr::from_pathname(value).map_err(|e| e.to_string())
    } else {
        Err("neither an absolute path nor @name".to_owned())
    }
}

/// The ping interval from `WATCHDOG_USEC` and `WATCHDOG_PID` (as `sd_watchdog_enabled(3)` reads
/// them): half the timeout, so one late tick does not miss it.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

/// The `STATUS=` text.
fn status_line(
    received_per_second: f64,
    delivered_per_second: f64,
    state: &ControlState,
) -> String {
    let mut status = format!(
        "received {} packets/s, delivered {} packets/s; config generation {}",
        si(received_per_second),
        si(delivered_per_second),
        state.generation
    );
    if let Some(last) = &state.reloads.last {
        if last.outcome != ReloadVerdict::Applied {
            status.push_str(&format!("; last reload refused ({})", last.outcome));
        }
    }
    status
}

impl Notifier {
    /// The notifier of a service started by systemd with `NOTIFY_SOCKET`; `None` otherwise.
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())?;
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        match Notifier::new(&socket, watchdog) {
            Ok(notifier) => {
                info!(
                    "systemd notifications to {socket}{}",
                    watchdog.map_or_else(String::new, |w| format!(", watchdog ping every {w:?}"))
                );
                Some(notifier)
            }
            Err(e) => {
                warn!("NOTIFY_SOCKET={socket:?}: {e}: no systemd notifications");
                None
            }
        }
    }

    /// A notifier sending to `socket` (`NOTIFY_SOCKET`'s form), pinging every `watchdog`.
    pub fn new(socket: &str, watchdog: Option<Duration>) -> Result<Notifier, String> {
        let address = parse_socket(socket)?;
        let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
        let now = Instant::now();
        Ok(Notifier {
            socket,
            address,
            watchdog,
            last_ping: now,
            last_status: now,
            previous: (now, 0, 0),
            failed: false,
        })
    }

    fn send(&mut self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            if !self.failed {
                warn!("systemd notification not sent ({e}); the broker runs on without");
                self.failed = true;
            }
        }
    }

    /// Every port is up and the workers poll.
    pub fn ready(&mut self) {
        self.send("READY=1\nSTATUS=running");
    }

    /// A reload begins.
    pub fn reloading(&mut self) {
        self.send("RELOADING=1\nSTATUS=reloading the config");
    }

    /// A reload ended with `outcome`: ready again, on the new config or the old one.
    pub fn reloaded(&mut self, outcome: &ReloadOutcome) {
        let status = match outcome.verdict() {
            ReloadVerdict::Applied => "reloaded".to_owned(),
            refused => format!("reload refused ({refused}): the running config is kept"),
        };
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// The stop begins: `why` says what asked for it.
    pub fn stopping(&mut self, why: &str) {
        self.send(&format!("STOPPING=1\nSTATUS=stopping ({why}): draining"));
    }

    /// Called on every turn of the control loop: pings the watchdog and refreshes `STATUS=`
    /// when they are due (the counters are read only then).
    pub fn tick(&mut self, app: &Appliance, state: &ControlState) {
        if let Some(interval) = self.watchdog {
            if self.last_ping.elapsed() >= interval {
                self.send("WATCHDOG=1");
                self.last_ping = Instant::now();
            }
        }
        if self.last_status.elapsed() < STATUS_INTERVAL {
            return;
        }
        let now = Instant::now();
        let totals = state.totals(&app.plans.load().counters);
        let (received, delivered) = (totals.received(), totals.outcome(Outcome::Delivered));
        let (then, earlier_received, earlier_delivered) = self.previous;
        let seconds = now.duration_since(then).as_secs_f64().max(1e-3);
        let received_rate = received.saturating_sub(earlier_received) as f64 / seconds;
        let delivered_rate = delivered.saturating_sub(earlier_delivered) as f64 / seconds;
        self.previous = (now, received, delivered);
        self.last_status = now;
        let line = status_line(received_rate, delivered_rate, state);
        self.send(&format!("STATUS={line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::reload::LastReload;

    #[test]
    fn socket_names() {
        assert_eq!(
            parse_socket("/run/systemd/notify")
                .unwrap()
                .as_pathname()
                .unwrap(),
            std::path::Path::new("/run/systemd/notify")
        );
        assert_eq!(
            parse_socket("@sd-notify-test").unwrap().as_abstract_name(),
            Some(&b"sd-notify-test"[..])
        );
        assert!(parse_socket("vsock:2:1234").is_err());
        assert!(parse_socket("relative/path").is_err());
    }

    #[test]
    fn watchdog_at_half_the_timeout_and_only_for_this_process() {
        let me = std::process::id().to_string();
        assert_eq!(
            watchdog_interval(Some("30000000"), None),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("400000"), Some(&me)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(watchdog_interval(Some("400000"), Some("1")), None);
        assert_eq!(watchdog_interval(Some("0"), None), None);
        assert_eq!(watchdog_interval(Some("soon"), None), None);
        assert_eq!(watchdog_interval(None, Some(&me)), None);
    }

    #[test]
    fn status_names_the_rates_and_a_refused_reload() {
        let config = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        let mut state = ControlState::new(config);
        assert_eq!(
            status_line(1_234_567.0, 999.0, &state),
            "received 1.23 M packets/s, delivered 999 packets/s; config generation 1"
        );
        state.reloads.last = Some(LastReload {
            unix_seconds: 1,
            outcome: ReloadVerdict::Invalid,
            error: Some("bad".into()),
        });
        assert!(
            status_line(0.0, 0.0, &state).ends_with("; last reload refused (invalid)"),
            "{}",
            status_line(0.0, 0.0, &state)
        );
    }

    #[test]
    fn datagrams_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut notifier = Notifier::new(path.to_str().unwrap(), None).unwrap();
        notifier.ready();
        notifier.stopping("SIGTERM");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=running");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"STOPPING=1\nSTATUS=stopping (SIGTERM): draining"
        );
        // The listener gone: the send fails, is logged once, and nothing panics.
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
        notifier.ready();
        assert!(notifier.failed);
    }
}
