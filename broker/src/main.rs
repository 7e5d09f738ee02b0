//! `broker`: the packet broker appliance's binary.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod control;
mod generate;
mod http;
mod import;
mod metrics;
mod report;
mod requests;
mod run;
mod runtime;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use report::ReloadVerdict;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: not in journald, files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { config } => {
            let config = config::load(&config)?;
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", config.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            summary_json,
        } => run::run(config::load(&config)?, summary_json.as_deref()),
        Command::Status {
            address,
            config,
            json,
        } => {
            let address = endpoint_address(address, config)?;
            let (status, body) = client::fetch_status(address)?;
            if json {
                println!("{}", body.trim_end());
            } else {
                print!("{status}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(what) => import::run(what),
        Command::Generate { what, dir } => generate::run(what, &dir),
        Command::Reload { address, config } => {
            let address = endpoint_address(address, config)?;
            let outcome = client::request_reload(address)?;
            println!("{outcome}");
            Ok(if outcome.verdict() == ReloadVerdict::Applied {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The endpoint's address: from `config`'s `[broker] metrics` when a file is given.
fn endpoint_address(address: SocketAddr, config: Option<PathBuf>) -> anyhow::Result<SocketAddr> {
    match config {
        Some(path) => config::load(&path)?
            .broker
            .metrics
            .with_context(|| format!("{}: [broker] metrics is off (\"\")", path.display())),
        None => Ok(address),
    }
}
