//! The command line: `broker run`, `broker check`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Packet broker appliance: receives cloud traffic mirrors (VXLAN, GENEVE) on DPDK ports,
/// decapsulates, filters, de-duplicates and fans them out to analyzers.
#[derive(Debug, Parser)]
#[command(name = "broker", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
    /// Validate a configuration and print what the broker understood; touches no device.
    Check {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
}
