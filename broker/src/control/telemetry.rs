//! Publishing: the control loop's metrics and `/status`, and the endpoint that serves them.
//!
//! # Design
//! [`Telemetry::start`] installs the Prometheus recorder, publishes a first reading and starts
//! the endpoint ([`crate::http`]); the control loop then calls [`Telemetry::tick`] every tick,
//! which publishes once an [`INTERVAL`] has passed (or [`Telemetry::publish`] at once, after a
//! plan change). A publication reads the appliance and the control state into a
//! [`Snapshot`], sets the metrics from it and swaps the new
//! status into the endpoint's cell.
//!
//! With `[broker] metrics = ""` none of this runs: no recorder, no listener, no publication
//! (the control loop still sums `rx_packets` for `stop_when_idle`).
//!
//! # Limitations
//! What Prometheus sees is at most [`INTERVAL`] (plus its scrape interval) old.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::state::ControlState;
use crate::http::{Endpoint, Refusals, Sources};
use crate::inspect::Inspect;
use crate::metrics::catalog;
use crate::metrics::publish::Publisher;
use crate::metrics::snapshot::{Refused, Snapshot};
use crate::report::{ConfigStatus, Health, Status};
use crate::requests::ReloadClient;
use crate::runtime::Appliance;

/// How often the control loop publishes: Prometheus scrapes every 10–60 s in most setups, so a
/// second is fresher than anyone reads, and one reading per second costs nothing measurable.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The running metrics and status endpoint.
#[derive(Debug)]
pub struct Telemetry {
    endpoint: Endpoint,
    status: Arc<ArcSwap<Status>>,
    publisher: Publisher,
    last_publish: Instant,
    /// What each HTTP listener refused (the endpoint, and the health listener if there is one).
    listeners: Vec<(&'static str, Arc<Refusals>)>,
    /// The endpoint's captures and traces (they name what they show from the running config).
    inspect: Arc<Inspect>,
}

impl Telemetry {
    /// Installs the Prometheus recorder, publishes a first reading of `app`, then serves
    /// `listener` (bound before EAL started; see [`crate::http::bind`]). Call it on the main
    /// lcore, after EAL initialisation, so the endpoint's threads inherit the control core.
    /// `POST /reload` goes to `reload`, `/healthz` answers from `health`; the refusals of the
    /// health listener, when there is one, are published beside the endpoint's.
    pub fn start(
        app: &Appliance,
        state: &ControlState,
        listener: TcpListener,
        health: Arc<ArcSwap<Health>>,
        health_refusals: Option<Arc<Refusals>>,
        reload: Option<ReloadClient>,
    ) -> anyhow::Result<Telemetry> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .context("installing the Prometheus recorder")?;
        catalog::describe();
        let status = Arc::new(ArcSwap::from_pointee(Status::default()));
        let inspect = Arc::new(Inspect::new(
            app.taps.clone(),
            app.clock,
            app.workers(),
            &state.config,
            state.generation,
        ));
        let endpoint = Endpoint::serve(
            listener,
            Sources {
                metrics: handle,
                status: status.clone(),
                health,
                reload,
                inspect: Some(inspect.clone()),
            },
            state.config.broker.metrics_allow.clone(),
        )?;
        let mut listeners = vec![("endpoint", endpoint.refusals())];
        listeners.extend(health_refusals.map(|r| ("health", r)));
        let mut telemetry = Telemetry {
            endpoint,
            status,
            publisher: Publisher::default(),
            last_publish: Instant::now(),
            listeners,
            inspect,
        };
        telemetry.publish(app, state);
        Ok(telemetry)
    }

    /// Publishes a new reading of `app` and `state` if [`INTERVAL`] has passed since the last.
    pub fn tick(&mut self, app: &Appliance, state: &ControlState) {
        if self.last_publish.elapsed() >= INTERVAL {
            self.publish(app, state);
        }
    }

    /// Reads `app` and `state` and publishes the reading now.
    pub fn publish(&mut self, app: &Appliance, state: &ControlState) {
        let mut snapshot = reading(app, state, self.endpoint.thread_cpus());
        snapshot.refused = self
            .listeners
            .iter()
            .map(|(listener, refusals)| Refused::of(listener, refusals))
            .collect();
        self.publisher.publish(&snapshot);
        self.status.store(Arc::new(snapshot.status));
        self.inspect.update_names(&state.config, state.generation);
        self.last_publish = Instant::now();
    }

    /// Stops the endpoint.
    pub fn stop(self) {
        self.endpoint.stop();
    }
}

/// A reading of `app` and of the control plane's `state`.
fn reading(app: &Appliance, state: &ControlState, endpoint_cpus: Option<String>) -> Snapshot {
    let plan = app.plans.load_full();
    let config = ConfigStatus {
        path: state.config.path.as_ref().map(|p| p.display().to_string()),
        generation: state.generation,
        plan_generation: plan.generation,
        reloads: state.reloads.clone(),
        retired_counter_sets_pending: state.ledger.pending(),
    };
    Snapshot::read(
        app,
        &state.config,
        &plan,
        state.totals(&plan.counters),
        config,
        endpoint_cpus,
    )
}
