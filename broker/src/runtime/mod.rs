//! Bringing the data plane up and bringing it down.
//!
//! # Design
//! [`Appliance::start`] is a sequence of named steps, each refusing what it cannot do before
//! anything runs: the lcore plan ([`lcores`], hwloc) and the EAL command line ([`eal_args`]),
//! EAL initialisation, [`open_ports`] (find every configured device), [`configure_ports`] (size and
//! create the mbuf pool, then set up every port's queues, refusing a device that cannot give
//! what the config asks, and start the ports), [`assign_queues`] (each worker's RX queue and its
//! TX queue of every tool port), and [`launch_workers`] (the first [`Plan`], one pinned worker
//! per ingress RX queue). The control loop ([`crate::control`]) then runs on the main lcore.
//! [`Appliance::stop`] is the reverse: workers finish their burst and flush their TX buffers,
//! ports are stopped and closed (a `net_pcap` port writes out its file on close), and what the
//! exit summary needs from the data plane is handed back.
//!
//! The appliance holds the data plane only (EAL, pool, ports, workers, the plan they run, the
//! dedup table they share); the config and the counters' history belong to the control plane
//! ([`crate::control::state`]).

pub mod clock;
pub mod eal_args;
pub mod lcores;
pub mod pool;
pub mod resources;
pub mod tx;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use config::{DecapSettings, Device, IngressPort, Rss, ValidatedConfig};
use drivers::{Eal, Mempool, Port, PortSetup, RxQueue, Tunnel};
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::Plan;
use pipelines::stage::dedup::{DedupKeyer, DedupTable};
use tracing::{info, warn};

use crate::report::{IngressRow, Resources};
use clock::Clock;
use lcores::LcorePlan;
use tx::{TxQueueRef, TxSet};
use worker::Worker;

/// A port the broker opened, with its name from the config.
#[derive(Debug)]
pub struct OpenPort {
    pub name: String,
    pub port: Port,
}

/// The running data plane: what the control plane looks at and acts on.
#[derive(Debug)]
pub struct Appliance {
    pub eal: Eal,
    pub pool: Mempool,
    pub ingress: Vec<OpenPort>,
    pub tools: Vec<OpenPort>,
    /// The plan the workers run; replaced (never mutated) by the control plane.
    pub plans: Arc<ArcSwap<Plan>>,
    pub lcores: LcorePlan,
    /// The EAL lcore of each worker, by worker index.
    pub worker_lcores: Vec<u32>,
    /// TX queues configured on each tool port.
    pub tx_queues: Vec<u16>,
    /// The dedup table the workers share (it outlives plans: a reload keeps its entries).
    pub dedup: Option<Dedup>,
    pub started: Instant,
    /// `started` on the wall clock.
    pub started_at: SystemTime,
    /// The workers' clock (the dedup table's time base).
    pub clock: Clock,
    /// The data plane's fixed buffers, sized at start.
    pub resources: Resources,
    /// Set to stop the workers (a signal handler sets it too).
    pub stop: Arc<AtomicBool>,
}

/// What is left of the data plane once it stopped: what the exit summary needs from it.
#[derive(Debug)]
pub struct Stopped {
    /// Each ingress port's driver statistics, read before the ports closed.
    pub ingress: Vec<IngressRow>,
    /// Mbufs still taken from the pool after the ports closed (0 unless something leaks).
    pub mbufs_in_use: u32,
    /// The counters of the last plan the workers ran.
    pub counters: Box<[Arc<WorkerCounters>]>,
}

/// Ports, once configured and started: the pool they draw from and the TX queues of each tool
/// port.
struct Configured {
    pool: Mempool,
    tx_queues: Vec<u16>,
    idle_rx_mbufs: u64,
    pool_explanation: String,
}

impl Appliance {
    /// Number of workers (one per ingress RX queue).
    pub fn workers(&self) -> usize {
        self.lcores.workers.len()
    }

    /// Brings the data plane up with `config`; the workers poll until `stop` is set.
    pub fn start(config: &ValidatedConfig, stop: Arc<AtomicBool>) -> anyhow::Result<Appliance> {
        // TEMPORARY (this commit only): addressed ports and tunnel tool ports are validated by
        // the config but not yet run by the data plane; the commits that follow wire them in.
        if config.addressed_ports().next().is_some()
            || config.tool_ports.iter().any(|p| p.tunnel().is_some())
        {
            bail!("addressed ports and tunnel tool ports are not run by this build yet");
        }
        for warning in &config.warnings {
            warn!("config: {warning}");
        }
        let lcores = lcores::plan(config)
            .map_err(anyhow::Error::msg)
            .context("choosing worker cores")?;
        for warning in &lcores.warnings {
            warn!("lcores: {warning}");
        }
        info!("{lcores}");
        let args = eal_args::build(config, &lcores);
        info!(args = %args.join(" "), "initialising DPDK EAL");
        let eal = Eal::init(&args).context("initialising DPDK EAL")?;
        let workers = lcores.workers.len();

        let ingress = open_ports(&eal, config.ingress.iter().map(|i| (&i.name, &i.device)))?;
        let tools = open_ports(
            &eal,
            config
                .tool_ports
                .iter()
                .filter_map(|p| p.device().map(|device| (&p.name, device))),
        )?;
        let configured = configure_ports(&eal, config, workers, &ingress, &tools)?;
        let (rx_queues, worker_tx) =
            assign_queues(config, workers, &ingress, &tools, &configured.tx_queues)?;

        // Mode "sender" keeps no table: the rule lives in the plan.
        let dedup = config
            .dedup
            .as_ref()
            .filter(|d| d.mode.uses_window())
            .map(|d| {
                let table = DedupTable::new(d.capacity, d.window);
                info!("dedup: window {:?}, shared by all workers", d.window);
                Dedup {
                    table: Arc::new(table),
                    keyer: Arc::new(DedupKeyer::new(d.ignore_dscp_ecn, d.ignore_vlan)),
                }
            });
        let pool = configured.pool;
        let resources = resources::measure(
            config,
            workers,
            &configured.tx_queues,
            configured.idle_rx_mbufs,
            (
                pool.capacity(),
                pool.data_room(),
                configured.pool_explanation,
            ),
            dedup
                .as_ref()
                .map(|d| (d.table.capacity() as u64, d.table.memory_bytes() as u64)),
        );
        info!("{resources}");
        let clock = Clock::new(eal.tsc_hz());
        let (plans, worker_lcores) = launch_workers(
            &eal,
            config,
            rx_queues,
            worker_tx,
            dedup.clone(),
            &stop,
            clock,
        )?;
        info!("{workers} worker(s) running; {} tool port(s)", tools.len());
        Ok(Appliance {
            eal,
            pool,
            ingress,
            tools,
            plans,
            lcores,
            worker_lcores,
            tx_queues: configured.tx_queues,
            dedup,
            started: Instant::now(),
            started_at: SystemTime::now(),
            clock,
            resources,
            stop,
        })
    }

    /// Stops the workers (they drain their TX buffers) and the ports.
    pub fn stop(self) -> Stopped {
        self.stop.store(true, Ordering::Relaxed);
        match self.eal.wait_all() {
            Ok(results) if results.iter().all(|&(_, r)| r == 0) => {}
            Ok(results) => warn!("a worker returned an error: {results:?}"),
            Err(e) => warn!("waiting for the workers: {e}"),
        }
        let ingress = self
            .ingress
            .iter()
            .map(|open| {
                let stats = open.port.stats().unwrap_or_default();
                IngressRow {
                    name: open.name.clone(),
                    ipackets: stats.ipackets,
                    imissed: stats.imissed,
                    ierrors: stats.ierrors,
                    rx_nombuf: stats.rx_nombuf,
                }
            })
            .collect();
        for open in self.ingress.iter().chain(&self.tools) {
            if let Err(e) = open.port.stop() {
                warn!("stopping port {}: {e}", open.name);
            }
            if let Err(e) = open.port.close() {
                warn!("closing port {}: {e}", open.name);
            }
        }
        Stopped {
            ingress,
            mbufs_in_use: self.pool.in_use(),
            counters: self.plans.load_full().counters.clone(),
        }
    }
}

/// RX descriptors of the RX queues a tool port's driver insists on (never polled): DPDK's usual
/// minimum, since each may hold that many mbufs of the pool.
const IDLE_RX_DESCRIPTORS: u16 = 64;

/// Whether a tool port of this driver must have RX queues too: `net_tap` refuses a configuration
/// whose RX and TX queue counts differ (`EPERM`). The broker sets them up and never polls them
/// (what the kernel sends into the interface stays in the kernel's queue and is dropped there).
fn needs_rx_queues(driver: &str) -> bool {
    driver == "net_tap"
}

/// Opens (finds) the DPDK port of every `(name, device)`.
fn open_ports<'a>(
    eal: &Eal,
    specs: impl Iterator<Item = (&'a String, &'a Device)>,
) -> anyhow::Result<Vec<OpenPort>> {
    specs
        .map(|(name, device)| {
            let port_name = device.port_name();
            let port = Port::by_name(eal, &port_name).with_context(|| {
                format!(
                    "port {name}: DPDK has no device {port_name:?} (device = {:?})",
                    device.as_str()
                )
            })?;
            Ok(OpenPort {
                name: name.clone(),
                port,
            })
        })
        .collect()
}

/// Sizes and creates the mbuf pool, sets up every port's queues (refusing a device that cannot
/// give what the config asks), starts the ports, and installs the inner-RSS flow rules.
fn configure_ports(
    eal: &Eal,
    config: &ValidatedConfig,
    workers: usize,
    ingress: &[OpenPort],
    tools: &[OpenPort],
) -> anyhow::Result<Configured> {
    // Tool ports: one TX queue per worker where the device has them, fewer (shared) otherwise.
    let mut tx_queues = Vec::with_capacity(tools.len());
    let mut tool_rx_queues = Vec::with_capacity(tools.len());
    for tool in tools {
        let info = tool
            .port
            .info()
            .with_context(|| format!("tool port {}", tool.name))?;
        if info.max_tx_queues == 0 {
            bail!(
                "tool port {} ({}): the device offers no TX queue",
                tool.name,
                info.driver
            );
        }
        let queues = (workers as u16).min(info.max_tx_queues).max(1);
        tx_queues.push(queues);
        tool_rx_queues.push(if needs_rx_queues(&info.driver) {
            queues
        } else {
            0
        });
    }
    let idle_rx_mbufs = tool_rx_queues
        .iter()
        .map(|&q| u64::from(q) * u64::from(IDLE_RX_DESCRIPTORS))
        .sum();
    let pool_plan = pool::plan(config, workers, &tx_queues, idle_rx_mbufs);
    // DPDK's default data room (2 KiB): a 1500-byte frame plus the largest mirror
    // encapsulation fits one mbuf; jumbo frames arrive as chains.
    let pool = Mempool::new(
        eal,
        "broker_mbufs",
        pool_plan.mbufs,
        config.dpdk.mbuf_cache,
        Mempool::DEFAULT_DATA_ROOM,
        None,
    )
    .context("creating the mbuf pool (is there enough memory? see dpdk.eal_args -m)")?;

    for (spec, open) in config.ingress.iter().zip(ingress) {
        let info = open
            .port
            .info()
            .with_context(|| format!("ingress {}", open.name))?;
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
        open.port
            .configure(&setup)
            .with_context(|| format!("configuring ingress {}", open.name))?;
    }
    for ((open, &queues), &rx_queues) in tools.iter().zip(&tx_queues).zip(&tool_rx_queues) {
        let setup = PortSetup {
            rx_queues,
            tx_queues: queues,
            rx_descriptors: IDLE_RX_DESCRIPTORS,
            tx_descriptors: config.dpdk.tx_descriptors,
            mempool: pool,
            mtu: None,
        };
        open.port
            .configure(&setup)
            .with_context(|| format!("configuring tool port {}", open.name))?;
    }
    for open in ingress.iter().chain(tools) {
        open.port
            .start()
            .with_context(|| format!("starting port {}", open.name))?;
    }
    for open in ingress {
        if let Err(e) = open.port.enable_promiscuous() {
            warn!("ingress {}: promiscuous mode: {e}", open.name);
        }
    }
    for (spec, open) in config.ingress.iter().zip(ingress) {
        hash_inner_headers(spec, open, &config.decap)?;
    }
    Ok(Configured {
        pool,
        tx_queues,
        idle_rx_mbufs,
        pool_explanation: pool_plan.explanation,
    })
}

/// Gives each worker its RX queue (RX queue q of each ingress, in config order) and its TX queue
/// of every tool port (shared round-robin when the port has fewer queues than workers).
fn assign_queues(
    config: &ValidatedConfig,
    workers: usize,
    ingress: &[OpenPort],
    tools: &[OpenPort],
    tx_queues: &[u16],
) -> anyhow::Result<(Vec<RxQueue>, Vec<Vec<TxQueueRef>>)> {
    let mut rx_queues = Vec::with_capacity(workers);
    for (spec, open) in config.ingress.iter().zip(ingress) {
        for q in 0..spec.queues {
            rx_queues.push(
                open.port
                    .take_rx_queue(q)
                    .with_context(|| format!("ingress {} RX queue {q}", open.name))?,
            );
        }
    }
    let mut worker_tx: Vec<Vec<TxQueueRef>> = (0..workers)
        .map(|_| Vec::with_capacity(tools.len()))
        .collect();
    for (open, &queues) in tools.iter().zip(tx_queues) {
        let mut taken = Vec::with_capacity(usize::from(queues));
        for q in 0..queues {
            taken.push(
                open.port
                    .take_tx_queue(q)
                    .with_context(|| format!("tool port {} TX queue {q}", open.name))?,
            );
        }
        if usize::from(queues) >= workers {
            for (w, queue) in taken.into_iter().enumerate().take(workers) {
                worker_tx[w].push(TxQueueRef::Own(queue));
            }
        } else {
            info!(
                "tool port {}: {queues} TX queue(s) shared by {workers} workers",
                open.name
            );
            let shared: Vec<Arc<Mutex<drivers::TxQueue>>> =
                taken.into_iter().map(|q| Arc::new(Mutex::new(q))).collect();
            for (w, queues_of_worker) in worker_tx.iter_mut().enumerate() {
                queues_of_worker.push(TxQueueRef::Shared(shared[w % shared.len()].clone()));
            }
        }
    }
    Ok((rx_queues, worker_tx))
}

/// Builds the first plan and launches one worker per RX queue on its lcore: the plans the
/// workers read, and each worker's lcore.
fn launch_workers(
    eal: &Eal,
    config: &ValidatedConfig,
    rx_queues: Vec<RxQueue>,
    worker_tx: Vec<Vec<TxQueueRef>>,
    dedup: Option<Dedup>,
    stop: &Arc<AtomicBool>,
    clock: Clock,
) -> anyhow::Result<(Arc<ArcSwap<Plan>>, Vec<u32>)> {
    let workers = rx_queues.len();
    let plan = Plan::build(config, 1, &[], WorkerCounters::for_workers(config, workers));
    let mut worker_lcores = eal.worker_lcores();
    if worker_lcores.len() < workers {
        bail!(
            "EAL gave {} worker lcores, {workers} are needed",
            worker_lcores.len()
        );
    }
    worker_lcores.truncate(workers);
    let mut launch = Vec::with_capacity(workers);
    for (index, (rx, tx)) in rx_queues.into_iter().zip(worker_tx).enumerate() {
        let pipeline = Pipeline::new(index, &plan, dedup.clone());
        let tx = TxSet::new(tx, pipeline.counters().clone());
        launch.push((index, rx, tx, pipeline));
    }
    let plans = Arc::new(ArcSwap::from_pointee(plan));
    for (index, rx, tx, pipeline) in launch {
        let worker = Worker {
            rx,
            tx,
            pipeline,
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
    Ok((plans, worker_lcores))
}

/// With `rss = "inner"` and more than one queue, has the NIC spread VXLAN and GENEVE packets by
/// a symmetric hash of their inner headers (flow rules, see `drivers::flow`), so both copies of a
/// packet mirrored at both ends, and both directions of a connection, reach one worker.
fn hash_inner_headers(
    spec: &IngressPort,
    open: &OpenPort,
    decap: &DecapSettings,
) -> anyhow::Result<()> {
    if spec.rss != Rss::Inner || spec.queues < 2 {
        return Ok(());
    }
    let tunnels: Vec<Tunnel> = (decap.vxlan_ports.iter().map(|&p| Tunnel::Vxlan(p)))
        .chain(decap.geneve_ports.iter().map(|&p| Tunnel::Geneve(p)))
        .collect();
    let rules = open.port.hash_inner_headers(spec.queues, &tunnels).with_context(|| {
        format!(
            "ingress {}: rss = \"inner\" needs a NIC that hashes the inner headers of VXLAN and \
             GENEVE packets (flow rules with an RSS action at level 2); this device cannot: set \
             rss = \"outer\" (the default)",
            open.name
        )
    })?;
    info!(
        "ingress {}: RSS on the inner headers, symmetric ({rules} flow rules over {} queues)",
        open.name, spec.queues
    );
    Ok(())
}
