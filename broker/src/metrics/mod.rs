//! Metrics and live status: from the workers' counters to Prometheus and `/status`.
//!
//! # Design
//! The hot path pays nothing here. Workers bump their own plain counters
//! ([`pipelines::counters`]: a relaxed load and store, no shared read-modify-write); the control
//! loop, on the main lcore, calls [`Telemetry::tick`] every `TICK`, and once a [`INTERVAL`] has
//! passed it reads the appliance ([`snapshot`]: counters summed by name through the
//! [`ledger`], DPDK port statistics and link state, a sample of the dedup table), writes the
//! totals into the Prometheus recorder ([`publish`]: counters as absolute values) and swaps the
//! new [`Status`] in. The HTTP endpoint ([`crate::http`]) serves the recorder's rendering and
//! the latest status; it never reads a counter itself.
//!
//! The exit summary ([`crate::summary`]) is built from the same [`ledger::Totals`].
//!
//! With `[broker] metrics = ""` none of this runs: no recorder, no listener, no publication
//! (the control loop still sums `rx_packets` for `stop_when_idle`).
//!
//! # Limitations
//! What Prometheus sees is at most [`INTERVAL`] (plus its scrape interval) old. A counter whose
//! name disappears in a reload keeps its last total in the registry (it is not deleted), which
//! is what a Prometheus counter should do.

pub mod catalog;
pub mod ledger;
pub mod publish;
pub mod snapshot;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::control::reload::ReloadClient;
use crate::http::{Endpoint, Sources};
use crate::runtime::Appliance;
use crate::status::Status;
use snapshot::Snapshot;

/// How often the control loop publishes: Prometheus scrapes every 10–60 s in most setups, so a
/// second is fresher than anyone reads, and one reading per second costs nothing measurable.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The running metrics and status endpoint.
#[derive(Debug)]
pub struct Telemetry {
    endpoint: Endpoint,
    status: Arc<ArcSwap<Status>>,
    last_publish: Instant,
}

impl Telemetry {
    /// Installs the Prometheus recorder, publishes a first reading of `app`, then serves
    /// `listener` (bound before EAL started; see [`crate::http::bind`]). Call it on the main
    /// lcore, after EAL initialisation, so the endpoint's threads inherit the control core.
    /// `POST /reload` goes to `reload`.
    pub fn start(
        app: &Appliance,
        listener: TcpListener,
        reload: Option<ReloadClient>,
    ) -> anyhow::Result<Telemetry> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .context("installing the Prometheus recorder")?;
        catalog::describe();
        let first = Snapshot::read(app, None);
        publish::publish(&first);
        let status = Arc::new(ArcSwap::from_pointee(first.status));
        let endpoint = Endpoint::serve(
            listener,
            Sources {
                metrics: handle,
                status: status.clone(),
                reload,
            },
        )?;
        Ok(Telemetry {
            endpoint,
            status,
            last_publish: Instant::now(),
        })
    }

    /// Publishes a new reading of `app` if [`INTERVAL`] has passed since the last one.
    pub fn tick(&mut self, app: &Appliance) {
        if self.last_publish.elapsed() >= INTERVAL {
            self.publish(app);
        }
    }

    /// Reads `app` and publishes the reading now.
    pub fn publish(&mut self, app: &Appliance) {
        let snapshot = Snapshot::read(app, self.endpoint.thread_cpus());
        publish::publish(&snapshot);
        self.status.store(Arc::new(snapshot.status));
        self.last_publish = Instant::now();
    }

    /// Stops the endpoint.
    pub fn stop(self) {
        self.endpoint.stop();
    }
}
