//! `broker run`: the appliance from start to exit.
//!
//! # Design
//! In order: the endpoint's listener is bound (before DPDK, so a busy address stops the broker
//! before it touches a device), signal handlers are installed, the data plane starts
//! ([`Appliance::start`]), the endpoint starts on the control core ([`Telemetry::start`]),
//! systemd is told the broker is ready when it started it ([`Notifier`]), the control loop runs
//! until a stop ([`control::run`]), and the stop is bounded by a watchdog: the endpoint stops,
//! the data plane drains ([`Appliance::stop`]), and the summary is built from the control
//! state's totals and printed. A config that does not load never gets here: `main` prints it
//! with its source lines and exits 78.

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use config::ValidatedConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::control::health::HealthWatch;
use crate::control::stop::{DRAIN_DEADLINE, Watchdog};
use crate::control::systemd::Notifier;
use crate::control::telemetry::Telemetry;
use crate::control::{self, Signals, state::ControlState};
use crate::http;
use crate::metrics::ledger::Totals;
use crate::metrics::rows;
use crate::report::{Health, StopReason, Summary};
use crate::requests;
use crate::runtime::Appliance;

/// Exit status when the accounting identities do not hold at exit (a bug, never expected).
const EXIT_ACCOUNTING_MISMATCH: u8 = 3;
/// Exit status of a second SIGINT/SIGTERM, which stops at once (128 + SIGINT, as shells do).
const EXIT_SECOND_SIGNAL: i32 = 130;

/// Installs the handlers: the first SIGINT/SIGTERM asks for a graceful drain, a second one exits
/// at once; SIGHUP asks for a reload (its default action would end the process).
fn install_signal_handlers() -> anyhow::Result<Signals> {
    let signals = Signals::default();
    for signal in [SIGINT, SIGTERM] {
        // Before `stop` is set, so the control loop that sees `stop` can name the signal.
        signal_hook::flag::register_usize(signal, signals.stop_signal.clone(), signal as usize)
            .context("installing signal handlers")?;
        signal_hook::flag::register_conditional_shutdown(
            signal,
            EXIT_SECOND_SIGNAL,
            signals.stop.clone(),
        )
        .context("installing signal handlers")?;
        signal_hook::flag::register(signal, signals.stop.clone())
            .context("installing signal handlers")?;
    }
    signal_hook::flag::register(SIGHUP, signals.reload.clone())
        .context("installing signal handlers")?;
    Ok(signals)
}

/// Runs `config` until a stop; prints the summary (and writes it to `summary_json`).
pub fn run(config: ValidatedConfig, summary_json: Option<&Path>) -> anyhow::Result<ExitCode> {
    let listener = config.broker.metrics.map(http::bind).transpose()?;
    let health_listener = config.broker.health.map(http::bind_health).transpose()?;
    let signals = install_signal_handlers()?;
    let app = Appliance::start(&config, signals.stop.clone())?;
    let mut state = ControlState::new(config);
    let health = Arc::new(ArcSwap::from_pointee(Health::starting()));
    let mut health_watch = HealthWatch::new(health.clone(), app.workers());
    let (reload_client, reload_requests) = requests::channel();
    // Started after EAL init, on the main lcore: the endpoints' threads inherit its core.
    let started = health_listener
        .map(|l| http::Endpoint::serve_health(l, health.clone()))
        .transpose()
        .and_then(|health_endpoint| {
            let health_refusals = health_endpoint.as_ref().map(http::Endpoint::refusals);
            let telemetry = listener
                .map(|l| {
                    Telemetry::start(
                        &app,
                        &state,
                        l,
                        health.clone(),
                        health_refusals,
                        Some(reload_client),
                    )
                })
                .transpose()?;
            Ok((telemetry, health_endpoint))
        });
    let (mut telemetry, health_endpoint) = match started {
        Ok(started) => started,
        Err(e) => {
            finish(app, &state, StopReason::Error);
            return Err(e);
        }
    };
    let requests = telemetry.is_some().then_some(reload_requests);
    // Every port started, the workers poll, the endpoint serves: ready (under systemd).
    let mut notifier = Notifier::from_env();
    if let Some(notifier) = notifier.as_mut() {
        notifier.ready();
    }
    let reason = control::run(
        &app,
        &mut state,
        &mut health_watch,
        &signals,
        telemetry.as_mut(),
        requests,
        notifier.as_mut(),
    );
    // From here the stop is bounded: the watchdog ends the process if the drain hangs.
    let watchdog = Watchdog::arm(DRAIN_DEADLINE, "the drain (stopping workers and ports)");
    if let Some(telemetry) = telemetry {
        telemetry.stop();
    }
    if let Some(endpoint) = health_endpoint {
        endpoint.stop();
    }
    let summary = finish(app, &state, reason);
    watchdog.disarm();
    println!("{summary}");
    if let Some(path) = summary_json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if summary.violations().is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(EXIT_ACCOUNTING_MISMATCH))
    }
}

/// Stops the data plane and sums up what it did.
fn finish(app: Appliance, state: &ControlState, reason: StopReason) -> Summary {
    let stopped = app.stop();
    let totals: Totals = state.totals(&stopped.counters);
    let mut summary = rows::summary(&state.config, &totals, reason);
    summary.ingress = stopped.ingress;
    summary.mbufs_in_use_at_exit = u64::from(stopped.mbufs_in_use);
    summary
}
