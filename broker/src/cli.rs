//! The command line: `broker run`, `broker check`, `broker status`, `broker reload`,
//! `broker capture`, `broker trace`, `broker import`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};

/// `broker --version`: the package version and the git revision it was built from
/// (`broker/build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BROKER_REVISION"),
    ")"
);

/// Packet broker appliance: receives cloud traffic mirrors (VXLAN, GENEVE) on DPDK ports,
/// decapsulates, filters, de-duplicates and fans them out to analyzers.
#[derive(Debug, Parser)]
#[command(name = "broker", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one object a
    /// line) for log collectors. `RUST_LOG` chooses what is logged (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// The shape of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-01-01T12:00:00.000000Z  INFO broker::runtime: 1 worker(s) running`.
    Text,
    /// `{"timestamp":"…","level":"INFO","message":"1 worker(s) running","target":"broker::runtime"}`.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker until SIGINT/SIGTERM (or, with `stop_when_idle`, until the ingress is idle),
    /// then print the accounting summary.
    Run {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Also write the exit summary to this file as JSON.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
    },
    /// Validate a configuration and print what the broker understood; touches no device. Exits
    /// 0 when the config is valid, 78 (EX_CONFIG) when it is not.
    Check {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Print the result as one JSON document instead: validity, errors and warnings (file,
        /// line, column, key path, message) and a summary of the config (README "broker check
        /// --json").
        #[arg(long)]
        json: bool,
    },
    /// Print the live status of a running broker (ports and links, workers and their cores,
    /// tool groups and their live ports, outcome totals), from its `GET /status`.
    Status {
        /// The broker's metrics/status endpoint (`[broker] metrics`).
        #[arg(
            short,
            long,
            default_value = "127.0.0.1:9477",
            conflicts_with = "config"
        )]
        address: SocketAddr,
        /// Take the endpoint's address from this configuration file instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print the JSON document itself.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Print per-second rates instead, every interval, until interrupted: packets and bits
        /// received per ingress port, sent per tool port and tool group, and the outcomes.
        /// Redrawn in place on a terminal; one block per interval otherwise.
        #[arg(short, long)]
        watch: bool,
        /// With --watch: how often (e.g. `1s`, `500ms`; the broker publishes once a second).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration, requires = "watch")]
        interval: Duration,
        /// With --watch: stop after this many intervals.
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
    },
    /// Make a running broker re-read its config file (as SIGHUP does), through its
    /// `POST /reload`; print the new config generation, or why the config was refused (the
    /// running one is then kept, and the exit status is 1).
    Reload {
        /// The broker's metrics/status endpoint (`[broker] metrics`).
        #[arg(
            short,
            long,
            default_value = "127.0.0.1:9477",
            conflicts_with = "config"
        )]
        address: SocketAddr,
        /// Take the endpoint's address from this configuration file instead (the broker
        /// reloads the file it was started with).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Capture, from a running broker, what a tool port sends, what an ingress port receives,
    /// or the packets that get an outcome, into a pcapng file (its endpoint's `GET /capture`).
    /// Works whatever the EAL mode (`--no-huge` too). The file names the broker and has one
    /// interface per port; ends after COUNT packets, after DURATION, or on Ctrl-C, then says
    /// how many packets were written and how many the broker could not copy (the reader was
    /// behind: the traffic itself is never held back).
    #[command(group(ArgGroup::new("what").required(true).multiple(false)))]
    Capture {
        /// The broker's metrics/status endpoint (`[broker] metrics`).
        #[arg(
            short,
            long,
            default_value = "127.0.0.1:9477",
            conflicts_with = "config"
        )]
        address: SocketAddr,
        /// Take the endpoint's address from this configuration file instead.
        #[arg(long)]
        config: Option<PathBuf>,
        /// What a tool port sends: each copy as it leaves, sliced and, for a tunnel port,
        /// encapsulated.
        #[arg(long, value_name = "NAME", group = "what")]
        port: Option<String>,
        /// What an ingress port receives, as received.
        #[arg(long, value_name = "NAME", group = "what")]
        ingress: Option<String>,
        /// The packets that get this outcome (`filtered`, `unknown_session`, `malformed`,
        /// `malformed:vxlan_no_vni`, …; README "Outcomes"), as received.
        #[arg(long, value_name = "OUTCOME[:REASON]", group = "what")]
        outcome: Option<String>,
        /// Stop after this many packets.
        #[arg(short = 'c', long, value_name = "COUNT")]
        count: Option<u64>,
        /// Keep this many bytes of each packet (default 65535: whole frames).
        #[arg(short = 's', long, value_name = "SNAPLEN")]
        snaplen: Option<u32>,
        /// Stop after this long (`10s`, `2m`).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// The pcapng file to write (`-`: standard output, e.g. `-w - | tshark -r -`).
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: PathBuf,
    },
    /// Trace the next packets through the stages of a running broker, as VPP's `trace add`
    /// does (its endpoint's `GET /trace`): decapsulation and the tunnels removed, session,
    /// direction, the filter rule that decided (or the default), each tool group's balance key,
    /// port, dedup verdict and slice, the copy's TX result and the outcome.
    Trace {
        /// The broker's metrics/status endpoint (`[broker] metrics`).
        #[arg(
            short,
            long,
            default_value = "127.0.0.1:9477",
            conflicts_with = "config"
        )]
        address: SocketAddr,
        /// Take the endpoint's address from this configuration file instead.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Trace this many packets (at most 10000).
        #[arg(short = 'c', long, value_name = "COUNT", default_value_t = 10)]
        count: u32,
        /// Only packets this ingress port receives.
        #[arg(long, value_name = "NAME")]
        ingress: Option<String>,
        /// Stop after this long, however many packets were traced.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Print each packet as the JSON object the broker sends, one a line.
        #[arg(long)]
        json: bool,
    },
    /// Convert another tool's configuration into the broker's TOML, printed on standard output.
    #[command(subcommand)]
    Import(Import),
    /// Write the shell completions or the man pages of this command line into DIR (for
    /// packaging: scripts/package.sh).
    #[command(hide = true)]
    Generate {
        what: Generated,
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
}

/// What `broker generate` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Generated {
    /// `broker.bash`, `_broker` (zsh) and `broker.fish`.
    Completions,
    /// `broker.1` and one page per subcommand (`broker-run.1`, …).
    Man,
}

/// What `broker import` converts.
#[derive(Debug, Subcommand)]
pub enum Import {
    /// AWS Traffic Mirroring filters, from the JSON output of `aws ec2
    /// describe-traffic-mirror-filters`, as `[[filter]]` tables: inbound rules get
    /// `direction = "ingress"`, outbound rules `"egress"`, both lists merged by AWS rule number
    /// and renumbered 10, 20, …; anything a broker filter cannot express is refused, by name.
    AwsFilters {
        /// The JSON file (`-`: standard input).
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
    },
}
