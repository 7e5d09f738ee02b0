//! Bringing the data plane up and bringing it down.
//!
//! # Design
//! [`Appliance::start`] is a sequence of named steps, each refusing what it cannot do before
//! anything runs: the lcore plan ([`lcores`], hwloc) and the EAL command line ([`eal_args`]),
//! EAL initialisation, [`open_ports`] (find every configured device), [`configure_ports`] (size and
//! create the mbuf pool, then set up every port's queues, refusing a device that cannot give
//! what the config asks, and start the ports; an addressed port gets a TX queue per worker, for
//! the tunnel ports that leave through it, and one more for its control traffic, and its kernel
//! side is given the port's MAC and addresses), [`assign_queues`] (each worker's RX queue and
//! its TX queues: of every cabled tool port and of every addressed port), the exception path
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
pub mod resources;
pub mod tx;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use config::{
    AddressedPortId, DecapSettings, Device, IngressPort, Rss, ToolOutput, ValidatedConfig,
};
use drivers::{Eal, Mempool, Port, PortSetup, RxQueue, Tunnel, TxQueue};
use pipelines::counters::WorkerCounters;
use pipelines::neighbour::PortAddresses;
use pipelines::pipeline::{BURST, Dedup, Pipeline};
use pipelines::plan::{Plan, PortFacts};
use pipelines::stage::dedup::{DedupKeyer, DedupTable};
use tracing::{info, warn};

use crate::report::{IngressRow, Resources};
use clock::Clock;
use exception::{ExceptionPath, Side, SideCounters};
use lcores::LcorePlan;
use tx::{TxQueueRef, TxSet};
use worker::Worker;

/// Where Linux lists its network interfaces (the MTU of a `net_af_packet` port's interface).
const SYS_CLASS_NET: &str = "/sys/class/net";

/// A port the broker opened, with its name from the config.
#[derive(Debug)]
pub struct OpenPort {
    pub name: String,
    pub port: Port,
}

/// An addressed port (an ingress port with an address, or an uplink) as it runs.
#[derive(Debug)]
pub struct AddressedPort {
    pub id: AddressedPortId,
    pub name: String,
    pub port: Port,
    pub mac: [u8; 6],
    /// The MTU the port works with: the config's, else the device's default, or for
    /// `net_af_packet` its interface's ([`mtu`]).
    pub mtu: u16,
    /// TX queues configured on it (a share per worker and one for the control path, or fewer
    /// shared).
    pub tx_queues: u16,
    /// The DPDK port of its kernel interface (`kernel = "tap"` or `"virtio-user"`).
    pub kernel: Option<OpenPort>,
}

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

/// Ports, once configured and started: the pool they draw from, the TX queues of each tool
/// port and of each addressed port.
struct Configured {
    pool: Mempool,
    tx_queues: Vec<u16>,
    addressed_tx_queues: Vec<u16>,
    idle_rx_mbufs: u64,
    pool_explanation: String,
}

/// Each worker's queues: its RX queue, and its TX queues with, per tool port, which of them it
/// flushes to; and the exception path's queues of every addressed port.
struct Queues {
    rx: Vec<RxQueue>,
    tx: Vec<(Vec<TxQueueRef>, Vec<usize>)>,
    /// By addressed port: the control TX queue, and an uplink's RX queue.
    control: Vec<(TxQueueRef, Option<RxQueue>)>,
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

/// RX descriptors of the RX queues a tool port's driver insists on (never polled): DPDK's usual
/// minimum, since each may hold that many mbufs of the pool.
const IDLE_RX_DESCRIPTORS: u16 = 64;

/// Descriptors of the queues of a kernel interface and of an addressed port's control queue:
/// control traffic is ARP, ping and health checks.
pub const CONTROL_DESCRIPTORS: u16 = 256;

/// Whether a tool port of this driver must have RX queues too: `net_tap` refuses a configuration
/// whose RX and TX queue counts differ (`EPERM`). The broker sets them up and never polls them
/// (what the kernel sends into the interface stays in the kernel's queue and is dropped there).
fn needs_rx_queues(driver: &str) -> bool {
    driver == "net_tap"
}

/// Opens (finds) the DPDK port of `device`, named `name` in the config.
fn open_port(eal: &Eal, name: &str, device: &Device) -> anyhow::Result<OpenPort> {
    let port_name = device.port_name();
    let port = Port::by_name(eal, &port_name).with_context(|| {
        format!(
            "port {name}: DPDK has no device {port_name:?} (device = {:?})",
            device.as_str()
        )
    })?;
    Ok(OpenPort {
        name: name.to_owned(),
        port,
    })
}

/// Opens (finds) the DPDK port of every `(name, device)`.
fn open_ports<'a>(
    eal: &Eal,
    specs: impl Iterator<Item = (&'a String, &'a Device)>,
) -> anyhow::Result<Vec<OpenPort>> {
    specs
        .map(|(name, device)| open_port(eal, name, device))
        .collect()
}

/// The addressed ports, with their MACs and the DPDK ports of their kernel interfaces (created
/// by EAL from [`eal_args::kernel_vdev`]).
fn open_addressed(
    eal: &Eal,
    config: &ValidatedConfig,
    ingress: &[OpenPort],
    uplinks: &[OpenPort],
) -> anyhow::Result<Vec<AddressedPort>> {
    config
        .addressed_ports()
        .enumerate()
        .map(|(side, (id, addressing))| {
            let open = match id {
                AddressedPortId::Ingress(i) => &ingress[i.index()],
                AddressedPortId::Uplink(u) => &uplinks[u.index()],
            };
            let info = open
                .port
                .info()
                .with_context(|| format!("addressed port {}", open.name))?;
            let kernel = match eal_args::kernel_vdev(side, &open.name, addressing.kernel) {
                Some(vdev) => {
                    let name = vdev.split(',').next().unwrap_or_default().to_owned();
                    let port = Port::by_name(eal, &name).with_context(|| {
                        format!("{}: the kernel interface's device {name:?}", open.name)
                    })?;
                    Some(OpenPort {
                        name: format!("{} (kernel side)", open.name),
                        port,
                    })
                }
                None => None,
            };
            Ok(AddressedPort {
                id,
                name: open.name.clone(),
                port: open.port,
                mac: info.mac,
                mtu: 0,
                tx_queues: 0,
                kernel,
            })
        })
        .collect()
}

/// Mbufs the addressed ports may hold beyond what [`pool::plan`] counts from the rest: their
/// control queues and uplinks' RX queues, their kernel interfaces' rings, the header segment of
/// every tunnelled copy in a TX ring, and the channel to the exception path.
pub fn control_path_mbufs(
    addressed_tx: &[u16],
    uplinks: usize,
    kernels: usize,
    tx_descriptors: u16,
) -> u64 {
    if addressed_tx.is_empty() {
        return 0;
    }
    let control = u64::from(CONTROL_DESCRIPTORS);
    // A tunnelled copy in a worker's TX ring holds two mbufs: its header segment and itself.
    let headers: u64 = addressed_tx
        .iter()
        .map(|&q| u64::from(q) * u64::from(tx_descriptors))
        .sum();
    headers
        + uplinks as u64 * control
        + kernels as u64 * 2 * control
        + exception::CHANNEL_FRAMES as u64
        + BURST as u64
}

/// Sizes and creates the mbuf pool, sets up every port's queues (refusing a device that cannot
/// give what the config asks), starts the ports, and installs the inner-RSS flow rules.
fn configure_ports(
    eal: &Eal,
    config: &ValidatedConfig,
    workers: usize,
    ingress: &[OpenPort],
    uplinks: &[OpenPort],
    tools: &[Option<OpenPort>],
    addressed: &mut [AddressedPort],
) -> anyhow::Result<Configured> {
    // Cabled tool ports: one TX queue per worker where the device has them, fewer (shared)
    // otherwise.
    let mut tx_queues = Vec::with_capacity(tools.len());
    let mut tool_rx_queues = Vec::with_capacity(tools.len());
    for tool in tools {
        let Some(tool) = tool else {
            tx_queues.push(0);
            tool_rx_queues.push(0);
            continue;
        };
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
    // Addressed ports: a TX queue per worker (the tunnel ports that leave through them) and one
    // for their control traffic, shared where the device has fewer.
    let mut addressed_tx_queues = Vec::with_capacity(addressed.len());
    for a in addressed.iter() {
        let info = a
            .port
            .info()
            .with_context(|| format!("addressed port {}", a.name))?;
        if info.max_tx_queues == 0 {
            bail!(
                "{} ({}): an addressed port must send (its control traffic, tunnelled copies), \
                 and the device offers no TX queue",
                a.name,
                info.driver
            );
        }
        addressed_tx_queues.push((workers as u16 + 1).min(info.max_tx_queues));
    }
    let idle_rx_mbufs = tool_rx_queues
        .iter()
        .map(|&q| u64::from(q) * u64::from(IDLE_RX_DESCRIPTORS))
        .sum();
    let kernels = addressed.iter().filter(|a| a.kernel.is_some()).count();
    let control_path = control_path_mbufs(
        &addressed_tx_queues,
        uplinks.len(),
        kernels,
        config.dpdk.tx_descriptors,
    );
    let pool_plan = pool::plan(config, workers, &tx_queues, idle_rx_mbufs, control_path);
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

    let addressed_tx = |port: Port| {
        addressed
            .iter()
            .zip(&addressed_tx_queues)
            .find(|(a, _)| a.port == port)
            .map_or(0, |(_, &q)| q)
    };
    // The ports whose MTU DPDK does not know (net_af_packet: its interface's).
    let mut link_mtus: Vec<(Port, Option<u16>)> = Vec::new();
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
        let mtu = mtu::port_mtu(&open.name, &spec.device, spec.mtu, SYS_CLASS_NET.as_ref())?;
        link_mtus.push((open.port, mtu.link));
        let setup = PortSetup {
            rx_queues: spec.queues,
            tx_queues: addressed_tx(open.port),
            rx_descriptors: config.dpdk.rx_descriptors,
            tx_descriptors: config.dpdk.tx_descriptors,
            mempool: pool,
            mtu: mtu.dpdk,
        };
        open.port
            .configure(&setup)
            .with_context(|| format!("configuring ingress {}", open.name))?;
    }
    for (spec, open) in config.uplinks.iter().zip(uplinks) {
        let mtu = mtu::port_mtu(&open.name, &spec.device, spec.mtu, SYS_CLASS_NET.as_ref())?;
        link_mtus.push((open.port, mtu.link));
        let setup = PortSetup {
            rx_queues: 1,
            tx_queues: addressed_tx(open.port),
            rx_descriptors: CONTROL_DESCRIPTORS,
            tx_descriptors: config.dpdk.tx_descriptors,
            mempool: pool,
            mtu: mtu.dpdk,
        };
        open.port
            .configure(&setup)
            .with_context(|| format!("configuring uplink {}", open.name))?;
    }
    for ((open, &queues), &rx_queues) in tools.iter().zip(&tx_queues).zip(&tool_rx_queues) {
        let Some(open) = open else { continue };
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
    for (a, &queues) in addressed.iter_mut().zip(&addressed_tx_queues) {
        a.tx_queues = queues;
        let link_mtu = link_mtus
            .iter()
            .find(|(port, _)| *port == a.port)
            .and_then(|(_, mtu)| *mtu);
        a.mtu = match link_mtu {
            Some(mtu) => mtu,
            None => a
                .port
                .mtu()
                .with_context(|| format!("{}: reading its MTU", a.name))?,
        };
        let Some(kernel) = &a.kernel else { continue };
        // The kernel interface is the port's kernel side: same MAC, same MTU.
        kernel
            .port
            .set_mac_address(a.mac)
            .with_context(|| format!("{}: giving its kernel interface the port's MAC", a.name))?;
        // Its frames are ARP, neighbour discovery, ping and health checks: a kernel interface
        // that cannot take the port's MTU (net_tap: 1504 at most) takes its largest.
        let largest = kernel
            .port
            .info()
            .with_context(|| kernel.name.clone())?
            .largest_mtu();
        if largest < a.mtu {
            info!(
                "{}: MTU {largest}, the most its device takes (the port's is {})",
                kernel.name, a.mtu
            );
        }
        let setup = PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: CONTROL_DESCRIPTORS,
            tx_descriptors: CONTROL_DESCRIPTORS,
            mempool: pool,
            mtu: Some(a.mtu.min(largest)),
        };
        kernel
            .port
            .configure(&setup)
            .with_context(|| format!("configuring {}", kernel.name))?;
    }
    check_tunnel_mtus(config, addressed)?;
    let kernels = addressed.iter().filter_map(|a| a.kernel.as_ref());
    for open in ingress
        .iter()
        .chain(uplinks)
        .chain(tools.iter().flatten())
        .chain(kernels)
    {
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
        addressed_tx_queues,
        idle_rx_mbufs,
        pool_explanation: pool_plan.explanation,
    })
}

/// Refuses a tunnel port whose via port's MTU leaves no room for an inner frame once
/// encapsulated (its header would not even fit a bare Ethernet header).
fn check_tunnel_mtus(config: &ValidatedConfig, addressed: &[AddressedPort]) -> anyhow::Result<()> {
    for port in &config.tool_ports {
        let Some(tunnel) = port.tunnel() else {
            continue;
        };
        let Some(via) = addressed.iter().find(|a| a.id == tunnel.via) else {
            continue;
        };
        // The minimum Ethernet frame, without its FCS.
        if tunnel.max_inner_len(via.mtu) < 60 {
            bail!(
                "tool port {}: {} adds {} bytes, and {}'s MTU of {} leaves room for no frame: \
                 raise the MTU of {} (mtu = …)",
                port.name,
                tunnel.encapsulation,
                tunnel.overhead(),
                via.name,
                via.mtu,
                via.name
            );
        }
    }
    Ok(())
}

/// Gives every kernel interface its port's addresses and brings it up.
fn kernel_sides(
    config: &ValidatedConfig,
    addressed: &[AddressedPort],
) -> anyhow::Result<Vec<Option<exception::kernel::KernelSide>>> {
    config
        .addressed_ports()
        .zip(addressed)
        .enumerate()
        .map(|(side, ((_, addressing), a))| match &a.kernel {
            Some(_) => exception::kernel::configure(&a.name, addressing, side)
                .with_context(|| format!("{}: setting up its kernel interface", a.name))
                .map(Some),
            None => Ok(None),
        })
        .collect()
}

/// `n` users' shares of `queues`: each its own when there are enough, else shared round-robin
/// behind a mutex (taken once per flush).
fn hand_out(queues: Vec<TxQueue>, n: usize) -> Vec<TxQueueRef> {
    if queues.len() >= n {
        queues.into_iter().take(n).map(TxQueueRef::Own).collect()
    } else {
        let shared: Vec<Arc<Mutex<TxQueue>>> = queues
            .into_iter()
            .map(|q| Arc::new(Mutex::new(q)))
            .collect();
        (0..n)
            .map(|i| TxQueueRef::Shared(shared[i % shared.len()].clone()))
            .collect()
    }
}

/// Takes TX queues `0..queues` of `port`.
fn take_tx(port: &Port, name: &str, queues: u16) -> anyhow::Result<Vec<TxQueue>> {
    (0..queues)
        .map(|q| {
            port.take_tx_queue(q)
                .with_context(|| format!("{name} TX queue {q}"))
        })
        .collect()
}

/// Gives each worker its RX queue (RX queue q of each ingress, in config order) and its TX
/// queues: of every cabled tool port, and of every addressed port (where tunnel ports send),
/// shared round-robin when a port has fewer queues than workers. An addressed port's last share
/// is the exception path's, with an uplink's RX queue.
fn assign_queues(
    config: &ValidatedConfig,
    workers: usize,
    ingress: &[OpenPort],
    tools: &[Option<OpenPort>],
    addressed: &[AddressedPort],
    configured: &Configured,
) -> anyhow::Result<Queues> {
    let mut rx = Vec::with_capacity(workers);
    for (spec, open) in config.ingress.iter().zip(ingress) {
        for q in 0..spec.queues {
            rx.push(
                open.port
                    .take_rx_queue(q)
                    .with_context(|| format!("ingress {} RX queue {q}", open.name))?,
            );
        }
    }
    let mut tx: Vec<(Vec<TxQueueRef>, Vec<usize>)> = (0..workers)
        .map(|_| (Vec::new(), Vec::with_capacity(tools.len())))
        .collect();
    // Cabled tool ports: queue k of each worker is tool port k's share.
    let mut device_queue_of = vec![None; tools.len()];
    for (i, (open, &queues)) in tools.iter().zip(&configured.tx_queues).enumerate() {
        let Some(open) = open else { continue };
        let taken = take_tx(&open.port, &format!("tool port {}", open.name), queues)?;
        if usize::from(queues) < workers {
            info!(
                "tool port {}: {queues} TX queue(s) shared by {workers} workers",
                open.name
            );
        }
        for ((queues_of_worker, _), share) in tx.iter_mut().zip(hand_out(taken, workers)) {
            device_queue_of[i] = Some(queues_of_worker.len());
            queues_of_worker.push(share);
        }
    }
    // Addressed ports: each worker's share, then the exception path's.
    let mut addressed_queue_of = Vec::with_capacity(addressed.len());
    let mut control = Vec::with_capacity(addressed.len());
    for (a, &queues) in addressed.iter().zip(&configured.addressed_tx_queues) {
        let taken = take_tx(&a.port, &a.name, queues)?;
        if usize::from(queues) < workers + 1 {
            info!(
                "{}: {queues} TX queue(s) shared by {workers} workers and the control path",
                a.name
            );
        }
        let mut shares = hand_out(taken, workers + 1);
        let own = shares.pop().context("the control path's share")?;
        let uplink_rx = match a.id {
            AddressedPortId::Uplink(_) => Some(
                a.port
                    .take_rx_queue(0)
                    .with_context(|| format!("uplink {} RX queue 0", a.name))?,
            ),
            AddressedPortId::Ingress(_) => None,
        };
        control.push((own, uplink_rx));
        let mut index = None;
        for ((queues_of_worker, _), share) in tx.iter_mut().zip(shares) {
            index = Some(queues_of_worker.len());
            queues_of_worker.push(share);
        }
        addressed_queue_of.push(index);
    }
    // Which of its queues each worker flushes each tool port's buffer to.
    for (i, port) in config.tool_ports.iter().enumerate() {
        let index = match &port.output {
            ToolOutput::Device(_) => device_queue_of[i],
            ToolOutput::Tunnel(tunnel) => addressed
                .iter()
                .position(|a| a.id == tunnel.via)
                .and_then(|side| addressed_queue_of[side]),
        }
        .with_context(|| format!("tool port {}: no TX queue", port.name))?;
        for (_, port_queue) in tx.iter_mut() {
            port_queue.push(index);
        }
    }
    Ok(Queues { rx, tx, control })
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
