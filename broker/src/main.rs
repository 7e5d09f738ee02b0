//! `broker`: the packet broker appliance's binary.
#![forbid(unsafe_code)]

mod check;
mod cli;
mod client;
mod control;
mod generate;
mod http;
mod import;
mod inspect;
mod logging;
mod metrics;
mod report;
mod requests;
mod run;
mod runtime;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use config::ConfigError;
use report::ReloadVerdict;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        // A config that does not read or validate: every problem with its source line and a
        // caret, and EX_CONFIG, which the systemd unit does not restart on.
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(config_error) => {
                eprintln!("error: {}", config_error.detailed());
                ExitCode::from(check::EXIT_CONFIG)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { config, json } => check::run(&config, json),
        Command::Run {
            config,
            summary_json,
        } => run::run(config::load(&config)?, summary_json.as_deref()),
        Command::Status {
            address,
            config,
            json,
            watch,
            interval,
            count,
        } => {
            let address = endpoint_address(address, config)?;
            if watch {
                return watch::run(address, interval, count);
            }
            let (status, body) = client::fetch_status(address)?;
            if json {
                println!("{}", body.trim_end());
            } else {
                print!("{status}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Capture {
            address,
            config,
            port,
            ingress,
            outcome,
            count,
            snaplen,
            duration,
            write,
        } => {
            let address = endpoint_address(address, config)?;
            let mut query: Vec<(&str, String)> = Vec::new();
            query.extend(port.map(|p| ("port", p)));
            query.extend(ingress.map(|i| ("ingress", i)));
            query.extend(outcome.map(|o| ("outcome", o)));
            query.extend(count.map(|c| ("count", c.to_string())));
            query.extend(snaplen.map(|s| ("snaplen", s.to_string())));
            query.extend(duration.map(|d| ("duration", humantime::format_duration(d).to_string())));
            inspect::cli::capture(address, &query, &write)
        }
        Command::Trace {
            address,
            config,
            count,
            ingress,
            duration,
            json,
        } => {
            let address = endpoint_address(address, config)?;
            let mut query: Vec<(&str, String)> = vec![("count", count.to_string())];
            query.extend(ingress.map(|i| ("ingress", i)));
            query.extend(duration.map(|d| ("duration", humantime::format_duration(d).to_string())));
            inspect::cli::trace(address, &query, json)
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

/// The endpoint's address: from `config`'s `[broker] metrics` when a file is given, read even
/// when the rest of the file is not a valid config (the running broker judges that: see
/// [`config::endpoint_address`]).
fn endpoint_address(address: SocketAddr, config: Option<PathBuf>) -> anyhow::Result<SocketAddr> {
    match config {
        Some(path) => config::endpoint_address(&path)?
            .with_context(|| format!("{}: [broker] metrics is off (\"\")", path.display())),
        None => Ok(address),
    }
}
