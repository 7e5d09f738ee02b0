//! Graceful stop end to end: SIGTERM or SIGINT stop polling, flush every TX buffer, print the
//! summary and exit 0 within a bounded time; a drain that cannot finish (a worker stuck in a
//! driver) is cut by the watchdog with its own exit status; a second signal exits at once (130),
//! even while the drain is stuck.
//!
//! The stuck worker is real, not simulated: a `net_pcap` analyzer port writing into a FIFO that
//! the test holds open but never reads blocks in `write(2)` once the pipe's buffer is full, as a
//! file on a hung NFS mount or a wedged NIC would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::running::*;
use crate::support::*;

/// The broker's drain deadline (`control::stop::DRAIN_DEADLINE`) and the status it exits with
/// when the deadline passes (`EXIT_DRAIN_TIMEOUT`).
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
const EXIT_DRAIN_TIMEOUT: i32 = 4;

/// A config replaying `capture` forever to `ports` (name, device), one group each, sliced.
fn config(capture: &Path, ports: &[(&str, String)]) -> String {
    let mut text = format!(
        r#"
[broker]
name = "e2e-stop"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={},infinite_rx=1"
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
[[session]]
name = "all"
vni = 101
tools = [{}]
"#,
        capture.display(),
        ports
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, device) in ports {
        text.push_str(&format!(
            "[[tool_group]]\nname = \"{name}\"\nslice = 64\nports = [{{ name = \"{name}\", device = \"{device}\" }}]\n"
        ));
    }
    text
}

#[test]
fn sigterm_and_sigint_flush_every_buffer_print_the_summary_and_exit_zero() {
    let s = Scratch::new("stop");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    for signal in ["TERM", "INT"] {
        let outputs: Vec<PathBuf> = (1..=2)
            .map(|i| s.path(&format!("{signal}-{i}.pcap")))
            .collect();
        let ports: Vec<(&str, String)> = ["a", "b"]
            .iter()
            .zip(&outputs)
            .enumerate()
            .map(|(i, (name, out))| {
                (
                    *name,
                    format!("net_pcap{},tx_pcap={}", i + 1, out.display()),
                )
            })
            .collect();
        let path = s.write(&format!("{signal}.toml"), &config(&capture, &ports));
        let mut broker = Running::start(&path, &s.dir, &[]);
        broker.wait_for_log("worker(s) running", Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(700));
        let signalled = Instant::now();
        broker.signal(signal);
        let ended = broker
            .wait_exit(DRAIN_DEADLINE + Duration::from_secs(10))
            .expect("the broker stops");
        let took = signalled.elapsed();
        eprintln!(
            "SIG{signal}: stopped {took:?} after the signal, {} packets",
            ended.received()
        );
        assert!(
            took < DRAIN_DEADLINE,
            "SIG{signal}: the drain took {took:?}"
        );
        ended.assert_exact();
        assert!(
            ended
                .stdout
                .contains("broker \"e2e-stop\" stopped (signal)"),
            "{}",
            ended.stdout
        );
        assert!(
            ended
                .stdout
                .contains("accounting: every packet has exactly one outcome"),
            "{}",
            ended.stdout
        );
        assert!(ended.received() > 0);
        // Every packet the summary counts as transmitted is in the port's file: nothing was
        // left in a TX buffer.
        for ((name, _), out) in ports.iter().zip(&outputs) {
            let frames = read_pcap(out).len() as u64;
            assert_eq!(
                frames,
                ended.port_count(name, "transmitted"),
                "SIG{signal}: {name}'s file"
            );
            assert!(frames > 0);
        }
    }
}

/// A FIFO the test holds open for reading and writing (so the broker's open does not block)
/// and never reads: once its buffer is full, every write into it blocks.
struct Unread {
    path: PathBuf,
    _held: std::fs::File,
}

impl Unread {
    fn new(path: PathBuf) -> Unread {
        let made = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        let held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open the FIFO");
        Unread { path, _held: held }
    }
}

/// A broker whose only worker is blocked writing into an unread FIFO.
fn stuck_broker(s: &Scratch, name: &str) -> (Running, Unread) {
    let capture = generate(&s.path(&format!("{name}.pcap")), "lab", None, &[]).remove(0);
    let fifo = Unread::new(s.path(&format!("{name}.fifo")));
    let ports = [(
        "stuck",
        format!("net_pcap1,tx_pcap={}", fifo.path.display()),
    )];
    let path = s.write(&format!("{name}.toml"), &config(&capture, &ports));
    let mut broker = Running::start(&path, &s.dir, &[]);
    broker.wait_for_log("worker(s) running", Duration::from_secs(30));
    // The pipe holds 64 KiB: a few hundred sliced packets, long gone after this.
    std::thread::sleep(Duration::from_millis(500));
    (broker, fifo)
}

#[test]
fn a_drain_that_cannot_finish_is_ended_by_the_watchdog() {
    let s = Scratch::new("stop-stuck");
    let (mut broker, _fifo) = stuck_broker(&s, "stuck");
    let signalled = Instant::now();
    broker.signal("TERM");
    let ended = broker
        .wait_exit(DRAIN_DEADLINE * 3)
        .expect("the watchdog ends the broker");
    let took = signalled.elapsed();
    eprintln!(
        "stuck drain: exit {:?} {took:?} after SIGTERM",
        ended.status.code()
    );
    assert_eq!(
        ended.status.code(),
        Some(EXIT_DRAIN_TIMEOUT),
        "{}",
        ended.stderr
    );
    assert!(
        took >= DRAIN_DEADLINE && took < DRAIN_DEADLINE + Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        ended.stderr.contains("did not finish within 5s"),
        "{}",
        ended.stderr
    );
}

#[test]
fn a_second_signal_exits_at_once_even_while_the_drain_is_stuck() {
    let s = Scratch::new("stop-twice");
    let (mut broker, _fifo) = stuck_broker(&s, "twice");
    broker.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        broker.alive(),
        "the drain is stuck: still running after the first signal"
    );
    let second = Instant::now();
    broker.signal("INT");
    let ended = broker
        .wait_exit(Duration::from_secs(3))
        .expect("a second signal ends the broker");
    let took = second.elapsed();
    eprintln!(
        "second signal: exit {:?} {took:?} after it",
        ended.status.code()
    );
    assert_eq!(ended.status.code(), Some(130), "{}", ended.stderr);
    assert!(took < Duration::from_millis(500), "at once: {took:?}");
}
