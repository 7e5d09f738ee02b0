//! Bringing the data plane up and bringing it down.
//!
//! # Design
//! [`Appliance::start`] is a sequence of named steps, each refusing what it cannot do before
//! anything runs: the lcore plan ([`lcores`], hwloc) and the EAL command line ([`eal_args`]),
//! EAL initialisation, the ports ([`ports`]: find every configured device, size and create the
//! mbuf pool, set up every port's queues, refusing a device that cannot give what the config
//! asks, and start the ports), the queues ([`queues`]: each worker's RX queue and its TX
//! queues, of every cabled tool port and of every addressed port), the exception path
//! ([`exception`]: the addressed ports' own traffic, the next hops), and [`launch_workers`] (the
//! first [`Plan`], one pinned worker per ingress RX queue). The control loop
//! ([`crate::control`]) then runs on the main lcore. [`Appliance::stop`] is the reverse: workers
//! finish their burst and flush their TX buffers, the exception path stops, ports are stopped and
//! closed (a `net_pcap` port writes out its file on close), and what the exit summary needs from
//! the data plane is handed back.
//!
//! The appliance holds the data plane only (EAL, pool, ports, workers, the plan they run, the
//! dedup table they share); the config and the counters' history belong to the control plane
//! ([`crate::control::state`]).

pub mod clock;
pub mod eal_args;
pub mod exception;
pub mod lcores;
pub mod mtu;
pub mod pool;
pub mod ports;
pub mod queues;
pub mod resources;
pub mod tap;
pub mod tx;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use config::{AddressedPortId, ToolOutput, ValidatedConfig};
use drivers::{Eal, Mempool, RxQueue};
use pipelines::counters::WorkerCounters;
use pipelines::neighbour::PortAddresses;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use tracing::{info, warn};

use crate::report::{IngressRow, Resources};
use clock::Clock;
use exception::{ExceptionPath, Side, SideCounters};
use lcores::LcorePlan;
use ports::{
    AddressedPort, OpenPort, configure_ports, kernel_sides, open_addressed, open_port, open_ports,
};
use queues::{Queues, assign_queues};
use tap::{Taps, WorkerTap};
use tx::{TxQueueRef, TxSet};
use worker::Worker;

/// The running data plane: what the control plane looks at and acts on.
#[derive(Debug)]
pub struct Appliance {
    pub eal: Eal,
    pub pool: Mempool,
    pub ingress: Vec<OpenPort>,
    pub uplinks: Vec<OpenPort>,
    /// The DPDK port of each cabled tool port, by tool port index (`None`: a tunnel port).
    pub tools: Vec<Option<OpenPort>>,
    /// The addressed ports, in [`ValidatedConfig::addressed_ports`] order (the exception path's
    /// sides).
    pub addressed: Vec<AddressedPort>,
    /// The exception path, when there are addressed ports.
    pub exception: Option<ExceptionPath>,
    /// The plan the workers run; replaced (never mutated) by the control plane.
    pub plans: Arc<ArcSwap<Plan>>,
    pub lcores: LcorePlan,
    /// The EAL lcore of each worker, by worker index.
    pub worker_lcores: Vec<u32>,
    /// TX queues configured on each cabled tool port, by tool port index (0 for a tunnel port).
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
    /// Live captures and packet traces: what the workers are asked to copy and trace.
    pub taps: Arc<Taps>,
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

impl Appliance {
    /// Number of workers (one per ingress RX queue).
    pub fn workers(&self) -> usize {
        self.lcores.workers.len()
    }

    /// Brings the data plane up with `config`; the workers poll until `stop` is set.
    pub fn start(config: &ValidatedConfig, stop: Arc<AtomicBool>) -> anyhow::Result<Appliance> {
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
        allow_dpdk_dumpcap(&eal, &args);
        let workers = lcores.workers.len();

        let ingress = open_ports(&eal, config.ingress.iter().map(|i| (&i.name, &i.device)))?;
        let uplinks = open_ports(&eal, config.uplinks.iter().map(|u| (&u.name, &u.device)))?;
        let tools = config
            .tool_ports
            .iter()
            .map(|p| match &p.output {
                ToolOutput::Device(device) => Ok(Some(open_port(&eal, &p.name, device)?)),
                ToolOutput::Tunnel(_) => Ok(None),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut addressed = open_addressed(&eal, config, &ingress, &uplinks)?;
        let configured = configure_ports(
            &eal,
            config,
            workers,
            &ingress,
            &uplinks,
            &tools,
            &mut addressed,
        )?;
        let kernel_sides = kernel_sides(config, &addressed)?;
        let queues = assign_queues(config, workers, &ingress, &tools, &addressed, &configured)?;

        // Mode "sender" keeps no table: the rule lives in the plan.
        let dedup = config
            .dedup
            .as_ref()
            .and_then(|d| Dedup::for_settings(d, None));
        if let Some(d) = &config.dedup
            && dedup.is_some()
        {
            info!("dedup: window {:?}, shared by all workers", d.window);
        }
        let dedup_huge_page_bytes = dedup.as_ref().map_or(0, |d| huge_pages_under(&d.table));
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
            dedup.as_ref().map(|d| {
                (
                    d.table.capacity() as u64,
                    d.table.memory_bytes() as u64,
                    dedup_huge_page_bytes,
                )
            }),
        );
        info!("{resources}");
        let Queues {
            rx: rx_queues,
            tx: worker_tx,
            control,
        } = queues;
        let (exception, punt) =
            start_exception_path(config, &addressed, control, kernel_sides, pool)?;
        let clock = Clock::new(eal.tsc_hz());
        let ingress_macs = (0..config.ingress.len())
            .map(|i| {
                addressed
                    .iter()
                    .find(|a| a.id == AddressedPortId::Ingress(config::IngressId(i as u16)))
                    .map(|a| a.mac)
            })
            .collect();
        let taps = Taps::new();
        let (plans, worker_lcores) = launch_workers(
            &eal,
            config,
            ingress_macs,
            rx_queues,
            worker_tx,
            punt,
            dedup.clone(),
            &stop,
            clock,
            &taps,
        )?;
        info!(
            "{workers} worker(s) running; {} tool port(s)",
            config.tool_ports.len()
        );
        Ok(Appliance {
            eal,
            pool,
            ingress,
            uplinks,
            tools,
            addressed,
            exception,
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
            taps,
        })
    }

    /// Stops the workers (they drain their TX buffers), the exception path and the ports.
    pub fn stop(self) -> Stopped {
        self.stop.store(true, Ordering::Relaxed);
        match self.eal.wait_all() {
            Ok(results) if results.iter().all(|&(_, r)| r == 0) => {}
            Ok(results) => warn!("a worker returned an error: {results:?}"),
            Err(e) => warn!("waiting for the workers: {e}"),
        }
        // Its queues and kernel sides go with it (the kernel sides' policy rules are removed).
        drop(self.exception.map(ExceptionPath::stop));
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
        let kernels = self.addressed.iter().filter_map(|a| a.kernel.as_ref());
        for open in self
            .ingress
            .iter()
            .chain(&self.uplinks)
            .chain(self.tools.iter().flatten())
            .chain(kernels)
        {
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

/// Lets `dpdk-dumpcap` capture from the broker's ports where it can attach (hugepages, shared
/// config): `rte_pdump_init`. Elsewhere `broker capture` is the way, and the log says so.
fn allow_dpdk_dumpcap(eal: &Eal, args: &[String]) {
    match eal_args::secondary_processes_attach(args) {
        Ok(()) => match eal.enable_pdump() {
            Ok(()) => {
                let prefix = eal_args::file_prefix(args)
                    .map(|p| format!(" --file-prefix {p}"))
                    .unwrap_or_default();
                info!(
                    "dpdk-dumpcap{prefix} can capture from the ports (rte_pdump_init; shared memory); so can broker capture"
                );
            }
            Err(e) => warn!("dpdk-dumpcap cannot capture from the ports: {e}; broker capture can"),
        },
        Err(flag) => info!(
            "dpdk-dumpcap cannot attach to this broker ({flag}: no memory shared with other processes); broker capture can capture"
        ),
    }
}

/// Starts the exception path of the addressed ports (none: no path); each ingress worker gets
/// the channel to it, with its port's side (`None` for workers of an unaddressed port).
#[allow(clippy::type_complexity)]
fn start_exception_path(
    config: &ValidatedConfig,
    addressed: &[AddressedPort],
    control: Vec<(TxQueueRef, Option<RxQueue>)>,
    kernel_sides: Vec<Option<exception::kernel::KernelSide>>,
    pool: Mempool,
) -> anyhow::Result<(
    Option<ExceptionPath>,
    Vec<Option<(u16, exception::PuntSender)>>,
)> {
    let workers_of_ingress = config
        .ingress
        .iter()
        .enumerate()
        .flat_map(|(i, spec)| (0..spec.queues).map(move |_| i));
    if addressed.is_empty() {
        return Ok((None, workers_of_ingress.map(|_| None).collect()));
    }
    let (sender, receiver) = mpsc::sync_channel(exception::CHANNEL_FRAMES);
    let mut sides = Vec::with_capacity(addressed.len());
    for (((a, (tx, rx)), kernel_side), (_, addressing)) in addressed
        .iter()
        .zip(control)
        .zip(kernel_sides)
        .zip(config.addressed_ports())
    {
        let kernel_queues = match &a.kernel {
            Some(k) => Some((
                k.port
                    .take_rx_queue(0)
                    .with_context(|| format!("{} RX queue", k.name))?,
                k.port
                    .take_tx_queue(0)
                    .with_context(|| format!("{} TX queue", k.name))?,
            )),
            None => None,
        };
        sides.push(Side {
            name: a.name.clone(),
            addresses: PortAddresses {
                mac: a.mac,
                ipv4: addressing.ipv4.map(|n| n.addr()),
                ipv6: addressing.ipv6.map(|n| n.addr()),
            },
            kernel: addressing.kernel,
            tx,
            rx,
            kernel_queues,
            _kernel_side: kernel_side,
            counters: Arc::new(SideCounters::default()),
        });
    }
    let next_hops = config
        .tool_ports
        .iter()
        .filter_map(|p| p.tunnel())
        .filter_map(|t| {
            let side = addressed.iter().position(|a| a.id == t.via)?;
            Some((side, t.next_hop))
        })
        .collect();
    let path = ExceptionPath::start(sides, receiver, next_hops, pool)?;
    let punt = workers_of_ingress
        .map(|i| {
            addressed
                .iter()
                .position(|a| a.id == AddressedPortId::Ingress(config::IngressId(i as u16)))
                .map(|side| (side as u16, sender.clone()))
        })
        .collect();
    Ok((Some(path), punt))
}

/// Builds the first plan and launches one worker per RX queue on its lcore: the plans the
/// workers read, and each worker's lcore.
#[allow(clippy::too_many_arguments)]
fn launch_workers(
    eal: &Eal,
    config: &ValidatedConfig,
    ingress_macs: Vec<Option<[u8; 6]>>,
    rx_queues: Vec<RxQueue>,
    worker_tx: Vec<(Vec<TxQueueRef>, Vec<usize>)>,
    punt: Vec<Option<(u16, exception::PuntSender)>>,
    dedup: Option<Dedup>,
    stop: &Arc<AtomicBool>,
    clock: Clock,
    taps: &Arc<Taps>,
) -> anyhow::Result<(Arc<ArcSwap<Plan>>, Vec<u32>)> {
    let workers = rx_queues.len();
    // Cabled ports live until their links say otherwise; tunnels wait for their next hops.
    let facts = PortFacts {
        ingress_macs,
        ..PortFacts::default()
    };
    let plan = Plan::build(
        config,
        1,
        &facts,
        WorkerCounters::for_workers(config, workers),
    );
    let mut worker_lcores = eal.worker_lcores();
    if worker_lcores.len() < workers {
        bail!(
            "EAL gave {} worker lcores, {workers} are needed",
            worker_lcores.len()
        );
    }
    worker_lcores.truncate(workers);
    let mut launch = Vec::with_capacity(workers);
    let ingress_of_worker: Vec<usize> = config
        .ingress
        .iter()
        .enumerate()
        .flat_map(|(i, spec)| (0..spec.queues).map(move |_| i))
        .collect();
    for (index, ((rx, (queues, port_queue)), punt)) in
        rx_queues.into_iter().zip(worker_tx).zip(punt).enumerate()
    {
        let pipeline =
            Pipeline::new(index, &plan, dedup.clone()).on_ingress(ingress_of_worker[index], &plan);
        let tx = TxSet::new(queues, port_queue, punt, pipeline.counters().clone());
        let tap = WorkerTap::new(taps.clone(), index as u16, ingress_of_worker[index] as u16);
        launch.push((index, rx, tx, pipeline, tap));
    }
    let plans = Arc::new(ArcSwap::from_pointee(plan));
    for (index, rx, tx, pipeline, tap) in launch {
        let worker = Worker {
            rx,
            tx,
            pipeline,
            tap,
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

/// Asks the kernel for huge pages under the dedup table, before any worker reads it: a check
/// reads two random buckets of a table of megabytes, each a TLB miss on 4 KiB pages. Returns the
/// bytes now on huge pages; a table smaller than a huge page (16,384 entries: 128 KiB) gets none.
fn huge_pages_under(table: &pipelines::stage::dedup::DedupTable) -> u64 {
    // The table aligns itself for the pages the kernel gives.
    const _: () = assert!(pipelines::stage::dedup::HUGE_PAGE == drivers::memory::HUGE_PAGE);
    let mib = |bytes: usize| crate::report::resources::mib(bytes as u64);
    match drivers::memory::use_huge_pages(table.memory_range()) {
        Ok(done) if done.eligible == 0 => 0,
        Ok(done) if done.collapsed => {
            info!(
                "dedup table: {} on huge pages of {}",
                mib(done.eligible),
                mib(drivers::memory::HUGE_PAGE)
            );
            done.eligible as u64
        }
        Ok(done) => {
            warn!(
                "dedup table: the kernel could not put its {} on huge pages now (marked for \
                 khugepaged, which may later); until then a check may cost a TLB miss per bucket",
                mib(done.eligible)
            );
            0
        }
        Err(e) => {
            warn!(
                "dedup table: no huge pages ({e}: this kernel has no transparent huge pages); \
                 a check may cost a TLB miss per bucket"
            );
            0
        }
    }
}
