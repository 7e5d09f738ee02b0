//! The ports: finding every configured device, and setting each up for what the config asks.
//!
//! # Design
//! [`open_ports`] and [`open_addressed`] find the devices (an addressed port's kernel interface
//! too); [`configure_ports`] sizes and creates the mbuf pool ([`super::pool`]), then sets up
//! every port's queues, refusing a device that cannot give what the config asks (queue counts,
//! the MTU's frame beyond the device's largest), and starts the ports; an addressed port gets a
//! TX queue per worker, for the tunnel ports that leave through it, and one more for its control
//! traffic, and its kernel side is given the port's MAC and addresses ([`kernel_sides`]).
//!
//! # Limitations
//! A tool port's driver that insists on RX queues (`net_tap`) gets them, never polled: what its
//! kernel side sends stays in the kernel's queue and is dropped there.

use anyhow::{Context, bail};
use config::{AddressedPortId, DecapSettings, Device, IngressPort, Rss, ValidatedConfig};
use drivers::{Eal, Mempool, Port, PortSetup, Tunnel};
use pipelines::pipeline::BURST;
use tracing::{info, warn};

use super::{eal_args, exception, mtu, pool};

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

/// Ports, once configured and started: the pool they draw from, the TX queues of each tool
/// port and of each addressed port.
pub(super) struct Configured {
    pub(super) pool: Mempool,
    pub(super) tx_queues: Vec<u16>,
    pub(super) addressed_tx_queues: Vec<u16>,
    pub(super) idle_rx_mbufs: u64,
    pub(super) pool_explanation: String,
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

/// Opens (finds) the DPDK port of `device`, named `name` in the config.
pub(super) fn open_port(eal: &Eal, name: &str, device: &Device) -> anyhow::Result<OpenPort> {
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
pub(super) fn open_ports<'a>(
    eal: &Eal,
    specs: impl Iterator<Item = (&'a String, &'a Device)>,
) -> anyhow::Result<Vec<OpenPort>> {
    specs
        .map(|(name, device)| open_port(eal, name, device))
        .collect()
}

/// The addressed ports, with their MACs and the DPDK ports of their kernel interfaces (created
/// by EAL from [`eal_args::kernel_vdev`]).
pub(super) fn open_addressed(
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
    let control = u64::from(exception::CONTROL_DESCRIPTORS);
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
pub(super) fn configure_ports(
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
            rx_descriptors: exception::CONTROL_DESCRIPTORS,
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
            rx_descriptors: exception::CONTROL_DESCRIPTORS,
            tx_descriptors: exception::CONTROL_DESCRIPTORS,
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
pub(super) fn kernel_sides(
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
