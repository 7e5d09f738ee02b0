//! Log lines: `tracing`'s events, written to standard error as text or as JSON.
//!
//! # Design
//! One subscriber for the whole process, set up before anything logs. `RUST_LOG` chooses what
//! is logged, with `tracing-subscriber`'s `EnvFilter` syntax (`info` when unset or unreadable;
//! `broker=debug`, `warn,broker::control=debug`, …). `--log-format json` writes one JSON object
//! per line for log collectors: `timestamp`, `level`, `target`, `message` and the event's other
//! fields at the top level (no span list: the broker logs no spans).
//!
//! # Limitations
//! DPDK logs through its own `rte_log`, to standard error, as text: its lines are not JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the subscriber: call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal: not in journald, files or pipes.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
