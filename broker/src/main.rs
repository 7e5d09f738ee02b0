//! `broker`: the packet broker appliance's binary.

mod cli;
mod control;
mod generate;
mod http;
mod import;
mod metrics;
mod runtime;
mod status;
mod summary;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use control::Signals;
use control::stop::{DRAIN_DEADLINE, Watchdog};
use metrics::Telemetry;
use runtime::Appliance;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing_subscriber::EnvFilter;

/// Exit status when the accounting identities do not hold at exit (a bug, never expected).
const EXIT_ACCOUNTING_MISMATCH: u8 = 3;
/// Exit status of a second SIGINT/SIGTERM, which stops at once (128 + SIGINT, as shells do).
const EXIT_SECOND_SIGNAL: i32 = 130;

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
        } => {
            let config = config::load(&config)?;
            // Bound before DPDK starts: a busy address stops the broker before it touches a device.
            let listener = config.broker.metrics.map(http::bind).transpose()?;
            let signals = Signals::default();
            for signal in [SIGINT, SIGTERM] {
                // The first signal sets `stop` (graceful drain); a second one exits at once.
                signal_hook::flag::register_conditional_shutdown(
                    signal,
                    EXIT_SECOND_SIGNAL,
                    signals.stop.clone(),
                )
                .context("installing signal handlers")?;
                signal_hook::flag::register(signal, signals.stop.clone())
                    .context("installing signal handlers")?;
            }
            // SIGHUP re-reads the config (its default action would end the process).
            signal_hook::flag::register(SIGHUP, signals.reload.clone())
                .context("installing signal handlers")?;
            let mut app = Appliance::start(config, signals.stop.clone())?;
            let (reload_client, reload_requests) = control::reload::channel();
            // Started after EAL init, on the main lcore: the endpoint's threads inherit its core.
            let started = listener
                .map(|l| Telemetry::start(&app, l, Some(reload_client)))
                .transpose();
            let mut telemetry = match started {
                Ok(t) => t,
                Err(e) => {
                    app.shutdown("error");
                    return Err(e);
                }
            };
            let requests = telemetry.is_some().then_some(reload_requests);
            let reason = control::run(&mut app, &signals, telemetry.as_mut(), requests);
            // From here the stop is bounded: the watchdog ends the process if the drain hangs.
            let watchdog = Watchdog::arm(DRAIN_DEADLINE, "the drain (stopping workers and ports)");
            if let Some(telemetry) = telemetry {
                telemetry.stop();
            }
            let summary = app.shutdown(reason.label());
            watchdog.disarm();
            println!("{summary}");
            if let Some(path) = summary_json {
                let json = serde_json::to_string_pretty(&summary)?;
                std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if summary.violations().is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_ACCOUNTING_MISMATCH))
            }
        }
        Command::Status {
            address,
            config,
            json,
        } => {
            let address = endpoint_address(address, config)?;
            let (status, body) = status::fetch(address)?;
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
            let outcome = control::reload::request(address)?;
            println!("{}", control::reload::describe(&outcome));
            Ok(match outcome {
                control::reload::ReloadOutcome::Applied { .. } => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            })
        }
    }
}

/// The endpoint's address: from `config`'s `[broker] metrics` when a file is given.
fn endpoint_address(
    address: std::net::SocketAddr,
    config: Option<std::path::PathBuf>,
) -> anyhow::Result<std::net::SocketAddr> {
    match config {
        Some(path) => config::load(&path)?
            .broker
            .metrics
            .with_context(|| format!("{}: [broker] metrics is off (\"\")", path.display())),
        None => Ok(address),
    }
}
