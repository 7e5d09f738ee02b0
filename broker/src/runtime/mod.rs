//! Bringing the appliance up, running it, and bringing it down.
//!
//! # Design
//! `run` does, in order: plan the lcores (hwloc), build the EAL command line and initialise
//! EAL, size and create the mbuf pool, open and configure every port (refusing a device that
//! cannot give what the config asks, before anything starts), start the ports, build the first
//! [`Plan`], launch one worker per ingress RX queue on its lcore, then run the control loop on the
//! main lcore until a signal or (labs) `stop_when_idle`. Stopping is the reverse: workers finish
//! their burst and flush their TX buffers, ports are stopped and closed (a `net_pcap` port
//! writes out its file on close), the summary is collected and the pool is checked for leaks.

pub mod clock;
pub mod eal_args;
pub mod lcores;
pub mod pool;
pub mod tx;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use config::ValidatedConfig;
use drivers::{Eal, Mempool, Port, PortSetup};
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::Plan;
use pipelines::stage::dedup::{DedupKeyer, DedupTable};
use tracing::{info, warn};

use crate::summary::{IngressRow, Summary};
use clock::Clock;
use tx::{TxQueueRef, TxSet};
use worker::Worker;

/// How often the control loop wakes up to look at signals and idleness.
const CONTROL_TICK: Duration = Duration::from_millis(20);


/// Why the broker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    Signal,
    Idle,
}

impl StopReason {
    fn label(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::Idle => "idle",
        }
    }
}

/// A port the broker opened, with its name from the config.
struct OpenPort {
    name: String,
    port: Port,
}

/// Runs the broker with `config` until it is told to stop; returns the exit summary.
pub fn run(config: ValidatedConfig, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    for warning in &config.warnings {
        warn!("config: {warning}");
    }
    let lcores = lcores::plan(&config).map_err(anyhow::Error::msg).context("choosing worker cores")?;
    for warning in &lcores.warnings {
        warn!("lcores: {warning}");
    }
    info!("{lcores}");
    let args = eal_args::build(&config, &lcores);
    info!(args = %args.join(" "), "initialising DPDK EAL");
    let eal = Eal::init(&args).context("initialising DPDK EAL")?;
    let workers = lcores.workers.len();

    let ingress = open_ports(&eal, config.ingress.iter().map(|i| (&i.name, &i.device)))?;
    let tools = open_ports(&eal, config.tool_ports.iter().map(|p| (&p.name, &p.device)))?;

    // Tool ports: one TX queue per worker where the device has them, fewer (shared) otherwise.
    let mut tx_queue_counts = Vec::with_capacity(tools.len());
    for tool in &tools {
        let info = tool.port.info().with_context(|| format!("tool port {}", tool.name))?;
        if info.max_tx_queues == 0 {
            bail!("tool port {} ({}): the device offers no TX queue", tool.name, info.driver);
        }
        tx_queue_counts.push((workers as u16).min(info.max_tx_queues).max(1));
    }
    let pool_plan = pool::plan(&config, workers, &tx_queue_counts);
    info!("mbuf pool: {}", pool_plan.explanation);
    // DPDK's default data room (2 KiB): a 1500-byte frame plus the largest mirror encapsulation
    // fits one mbuf; jumbo frames arrive as chains.
    let pool = Mempool::new(&eal, "broker_mbufs", pool_plan.mbufs, config.dpdk.mbuf_cache, Mempool::DEFAULT_DATA_ROOM, None)
        .context("creating the mbuf pool (is there enough memory? see dpdk.eal_args -m)")?;

    for (spec, open) in config.ingress.iter().zip(&ingress) {
        let info = open.port.info().with_context(|| format!("ingress {}", open.name))?;
        if info.max_rx_queues < spec.queues {
            bail!(
                "ingress {}: the device ({}) offers {} RX queues, the config asks for {} (ingress.queues)",
                open.name,
                info.driver,
                info.max_rx_queues,
                spec.queues
            );
        }
        let setup = PortSetup {
            rx_queues: spec.queues,
            tx_queues: 0,
            rx_descriptors: config.dpdk.rx_descriptors,
            tx_descriptors: config.dpdk.tx_descriptors,
            mempool: pool,
            mtu: spec.mtu,
        };
        open.port.configure(&setup).with_context(|| format!("configuring ingress {}", open.name))?;
    }
    for (open, &queues) in tools.iter().zip(&tx_queue_counts) {
        let setup = PortSetup {
            rx_queues: 0,
            tx_queues: queues,
            rx_descriptors: config.dpdk.rx_descriptors,
            tx_descriptors: config.dpdk.tx_descriptors,
            mempool: pool,
            mtu: None,
        };
        open.port.configure(&setup).with_context(|| format!("configuring tool port {}", open.name))?;
    }
    for open in ingress.iter().chain(&tools) {
        open.port.start().with_context(|| format!("starting port {}", open.name))?;
    }
    for open in &ingress {
        if let Err(e) = open.port.enable_promiscuous() {
            warn!("ingress {}: promiscuous mode: {e}", open.name);
        }
    }

    // Queues: RX queue q of each ingress to the next worker; each worker's TX queue of each tool
    // port, shared round-robin when the port has fewer queues than workers.
    let mut rx_queues = Vec::with_capacity(workers);
    for (spec, open) in config.ingress.iter().zip(&ingress) {
        for q in 0..spec.queues {
            rx_queues.push(open.port.take_rx_queue(q).with_context(|| format!("ingress {} RX queue {q}", open.name))?);
        }
    }
    let mut tx_queues: Vec<Vec<TxQueueRef>> = (0..workers).map(|_| Vec::with_capacity(tools.len())).collect();
    for (open, &queues) in tools.iter().zip(&tx_queue_counts) {
        let mut taken = Vec::with_capacity(usize::from(queues));
        for q in 0..queues {
            taken.push(open.port.take_tx_queue(q).with_context(|| format!("tool port {} TX queue {q}", open.name))?);
        }
        if usize::from(queues) >= workers {
            for (w, queue) in taken.into_iter().enumerate().take(workers) {
                tx_queues[w].push(TxQueueRef::Own(queue));
            }
        } else {
            info!("tool port {}: {queues} TX queue(s) shared by {workers} workers", open.name);
            let shared: Vec<Arc<Mutex<drivers::TxQueue>>> =
                taken.into_iter().map(|q| Arc::new(Mutex::new(q))).collect();
            for (w, queues_of_worker) in tx_queues.iter_mut().enumerate() {
                queues_of_worker.push(TxQueueRef::Shared(shared[w % shared.len()].clone()));
            }
        }
    }

    let dedup = config.dedup.as_ref().map(|d| {
        let table = DedupTable::new(d.capacity, d.window);
        info!(
            "dedup: window {:?}, {} entries, {} KiB shared by all workers",
            d.window,
            d.capacity,
            table.memory_bytes() / 1024
        );
        Dedup { table: Arc::new(table), keyer: Arc::new(DedupKeyer::new(d.ignore_dscp_ecn, d.ignore_vlan)) }
    });
    let plans = Arc::new(ArcSwap::from_pointee(Plan::build(&config, 1, &[])));
    let counters: Vec<Arc<WorkerCounters>> = (0..workers).map(|_| Arc::new(WorkerCounters::new(&config))).collect();
    let clock = Clock::new(eal.tsc_hz());

    let worker_lcores = eal.worker_lcores();
    if worker_lcores.len() < workers {
        bail!("EAL gave {} worker lcores, {workers} are needed", worker_lcores.len());
    }
    for (index, ((rx, tx), counters)) in rx_queues.into_iter().zip(tx_queues).zip(&counters).enumerate() {
        let worker = Worker {
            rx,
            tx: TxSet::new(tx, counters.clone()),
            pipeline: Pipeline::new(counters.clone(), dedup.clone()),
            plans: plans.clone(),
            stop: stop.clone(),
            clock,
        };
        let lcore = worker_lcores[index];
        eal.launch(lcore, move || {
            worker.run();
            0
        })
        .with_context(|| format!("launching worker {index} on lcore {lcore}"))?;
    }
    info!("{workers} worker(s) running; {} tool port(s)", tools.len());

    let reason = control_loop(&config, &stop, &counters);
    stop.store(true, Ordering::Relaxed);
    match eal.wait_all() {
        Ok(results) if results.iter().all(|&(_, r)| r == 0) => {}
        Ok(results) => warn!("a worker returned an error: {results:?}"),
        Err(e) => warn!("waiting for the workers: {e}"),
    }

    let mut ingress_rows = Vec::with_capacity(ingress.len());
    for open in &ingress {
        let stats = open.port.stats().unwrap_or_default();
        ingress_rows.push(IngressRow {
            name: open.name.clone(),
            ipackets: stats.ipackets,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            rx_nombuf: stats.rx_nombuf,
        });
    }
    for open in ingress.iter().chain(&tools) {
        if let Err(e) = open.port.stop() {
            warn!("stopping port {}: {e}", open.name);
        }
        if let Err(e) = open.port.close() {
            warn!("closing port {}: {e}", open.name);
        }
    }
    let counter_refs: Vec<&WorkerCounters> = counters.iter().map(Arc::as_ref).collect();
    let mut summary = Summary::collect(&config, &counter_refs, reason.label());
    summary.ingress = ingress_rows;
    summary.mbufs_in_use_at_exit = u64::from(pool.in_use());
    Ok(summary)
}

/// Opens (finds) the DPDK port of every `(name, device)`.
fn open_ports<'a>(eal: &Eal, specs: impl Iterator<Item = (&'a String, &'a String)>) -> anyhow::Result<Vec<OpenPort>> {
    specs
        .map(|(name, device)| {
            let port_name = eal_args::port_name(device);
            let port = Port::by_name(eal, &port_name)
                .with_context(|| format!("port {name}: DPDK has no device {port_name:?} (device = {device:?})"))?;
            Ok(OpenPort { name: name.clone(), port })
        })
        .collect()
}

/// Waits for a stop signal or, with `stop_when_idle`, for the ingress to go quiet after traffic.
fn control_loop(config: &ValidatedConfig, stop: &AtomicBool, counters: &[Arc<WorkerCounters>]) -> StopReason {
    let mut last_rx = 0u64;
    let mut last_change = Instant::now();
    loop {
        std::thread::sleep(CONTROL_TICK);
        if stop.load(Ordering::Relaxed) {
            return StopReason::Signal;
        }
        let rx: u64 = counters.iter().map(|c| c.rx_packets.get()).sum();
        if rx != last_rx {
            last_rx = rx;
            last_change = Instant::now();
        }
        if let Some(idle) = config.broker.stop_when_idle {
            if rx > 0 && last_change.elapsed() >= idle {
                info!("ingress idle for {idle:?} after {rx} packets: stopping");
                return StopReason::Idle;
            }
        }
    }
}
