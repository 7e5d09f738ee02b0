//! Ethernet ports: find, describe, configure (queues, RSS, MTU), start/stop, link, stats, and
//! the RX/TX queue handles the data path polls.
//!
//! # Design
//! A [`Port`] is a `Copy` port id. Control operations return DPDK's error as a [`DpdkError`] and
//! run one at a time in the process (a lock held for each call: DPDK's control path is not
//! thread-safe, and the control thread reads stats while the main thread may reconfigure); the
//! data path goes through queue handles, which never take that lock:
//! - [`Port::take_rx_queue`] / [`Port::take_tx_queue`] hand out each configured queue **at most
//!   once** until the handle is dropped (the same lock guards that registry; it is taken when a
//!   handle is taken or dropped, never per burst).
//! - [`RxQueue`] and [`TxQueue`] are `Send` but not `Sync`: one thread polls a queue at a time,
//!   which is what DPDK's lock-free queues require. Workers that must share a TX queue put it in a
//!   `Mutex<TxQueue>`; the type system then makes them take the lock.
//! - [`Port::configure`], [`Port::start`], [`Port::stop`] and [`Port::close`] are refused while
//!   any queue handle of the port is alive ([`DpdkError::QueuesInUse`]). They rewrite the queue
//!   table and the burst function pointers that `rte_eth_rx_burst` reads without a lock, so
//!   polling during them could call a driver with a torn (NULL) queue. The lifecycle is therefore:
//!   configure, start, take queues, run workers, drop the queues (workers return), stop, close.
//!
//! Bursts move packets as `[Option<Mbuf>]` slots, which have the layout of `struct rte_mbuf *[]`
//! (see the `mbuf` module): no allocation or copy per call.
//!
//! RSS: with more than one RX queue the port hashes the outer IP addresses and UDP/TCP ports
//! (`RTE_ETH_RSS_IP | UDP | TCP`), masked by what the device supports; if it supports none of
//! them, it is configured without RSS and [`PortConfig::rss_hash_functions`] says 0. Hashing the
//! inner headers of tunnelled packets instead is a flow rule: see the `flow` module.
//!
//! # Limitations
//! Statistics are read while workers poll, as DPDK intends; drivers update their counters
//! without atomics, so a read may be a few packets behind.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char, c_int, c_uint};
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::eal::Eal;
use crate::error::{DpdkError, check};
use crate::mbuf::{Mbuf, as_raw_slots};
use crate::mempool::Mempool;
use crate::sys;

/// Per-queue counters in [`PortStats::queues`] (DPDK's `RTE_ETHDEV_QUEUE_STAT_CNTRS`): queues
/// beyond it are counted in the port totals only.
pub const QUEUE_STAT_COUNTERS: usize = sys::RTE_ETHDEV_QUEUE_STAT_CNTRS as usize;

/// An Ethernet device known to DPDK, by port id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    id: u16,
}

/// What a device is and can do (`rte_eth_dev_info` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// DPDK's device name (`net_pcap0`, `0000:3b:00.0`).
    pub name: String,
    /// The poll-mode driver (`net_pcap`, `net_ice`, …).
    pub driver: String,
    /// The NUMA socket the device is attached to; `None` when unknown (virtual devices).
    pub socket: Option<u32>,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Most RX queues the device supports.
    pub max_rx_queues: u16,
    /// Most TX queues the device supports.
    pub max_tx_queues: u16,
    /// Smallest MTU the device accepts.
    pub min_mtu: u16,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
    /// Largest frame the device receives, in bytes.
    pub max_rx_pktlen: u32,
    /// RSS hash functions the device supports (`RTE_ETH_RSS_*` bits).
    pub rss_offloads: u64,
    /// RX offload capabilities (`RTE_ETH_RX_OFFLOAD_*` bits).
    pub rx_offloads: u64,
    /// TX offload capabilities (`RTE_ETH_TX_OFFLOAD_*` bits).
    pub tx_offloads: u64,
}

impl PortInfo {
    /// The largest MTU the device can be configured with: its `max_mtu`, and no more than its
    /// largest frame (`max_rx_pktlen`) allows (`net_tap` and `net_af_packet` take frames of 1522
    /// and 1518 bytes through ethdev whatever their kernel interface's MTU).
    pub fn largest_mtu(&self) -> u16 {
        let overhead = overhead_of(self.max_mtu, self.max_rx_pktlen);
        let by_frame = self.max_rx_pktlen.saturating_sub(overhead);
        self.max_mtu
            .min(u16::try_from(by_frame).unwrap_or(u16::MAX))
    }
}

/// How to configure a port.
#[derive(Clone, Copy, Debug)]
pub struct PortSetup {
    /// RX queues (RSS spreads flows over them when more than one).
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// Descriptors per RX queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// Descriptors per TX queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// Where RX queues take their mbufs from.
    pub mempool: Mempool,
    /// MTU to set; `None` keeps DPDK's default (1500, or less if the device cannot).
    pub mtu: Option<u16>,
}

/// What [`Port::configure`] actually applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Descriptors per RX queue after adjustment to the device's limits.
    pub rx_descriptors: u16,
    /// Descriptors per TX queue after adjustment to the device's limits.
    pub tx_descriptors: u16,
    /// RSS hash functions enabled (`RTE_ETH_RSS_*` bits); 0 when RSS is off (one RX queue, or
    /// the device hashes none of the outer IP/UDP/TCP fields).
    pub rss_hash_functions: u64,
    /// The MTU in force.
    pub mtu: u16,
    /// Whether RX scatter is on (frames of the MTU do not fit in one mbuf of the pool).
    pub rx_scatter: bool,
    /// Whether the device accepts multi-segment packets for TX (enabled when supported).
    pub tx_multi_segs: bool,
}

/// Link state (`rte_eth_link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Whether the link is up.
    pub up: bool,
    /// Speed in Mb/s; `None` when the device does not know it.
    pub speed_mbps: Option<u32>,
    /// Full duplex (else half).
    pub full_duplex: bool,
    /// Whether the speed was autonegotiated.
    pub autoneg: bool,
}

/// Port counters (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the hardware dropped because the RX queues were full (the workers fell behind).
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Packets that failed to be sent.
    pub oerrors: u64,
    /// RX mbuf allocation failures (the pool ran dry).
    pub rx_nombuf: u64,
    /// Per-queue counters, for the first [`QUEUE_STAT_COUNTERS`] queues.
    pub queues: [QueueStats; QUEUE_STAT_COUNTERS],
}

/// Counters of one queue index (RX and TX queues of the same index share an entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets received on RX queue i.
    pub ipackets: u64,
    /// Packets sent on TX queue i.
    pub opackets: u64,
    /// Bytes received on RX queue i.
    pub ibytes: u64,
    /// Bytes sent on TX queue i.
    pub obytes: u64,
    /// Packets dropped on RX queue i.
    pub errors: u64,
}

/// Held by every ethdev control call, so they never run concurrently (DPDK's control path is
/// not thread-safe: `rte_eth_stats_get` on one thread while `rte_eth_dev_configure` reallocates
/// the queue arrays on another would read freed memory). It also records which queue handles of
/// each port are alive: the registry behind `take_*_queue`.
static CONTROL: Mutex<BTreeMap<u16, QueueHandles>> = Mutex::new(BTreeMap::new());

/// Configured queues of one port; `true` where a handle is alive.
#[derive(Debug, Default)]
pub(crate) struct QueueHandles {
    rx: Vec<bool>,
    tx: Vec<bool>,
}

impl QueueHandles {
    fn alive(&self) -> usize {
        self.rx
            .iter()
            .chain(&self.tx)
            .filter(|&&taken| taken)
            .count()
    }
}

pub(crate) fn control() -> MutexGuard<'static, BTreeMap<u16, QueueHandles>> {
    // The map stays consistent across a panic (single field writes): ignore poisoning.
    CONTROL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which direction a queue handle serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Rx,
    Tx,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }

    fn slots(self, handles: &mut QueueHandles) -> &mut Vec<bool> {
        match self {
            Direction::Rx => &mut handles.rx,
            Direction::Tx => &mut handles.tx,
        }
    }
}

impl Port {
    /// The port of the device `name`, as DPDK names it: a vdev's name (`net_pcap0`) or a PCI
    /// address in full form (`0000:3b:00.0`). A device argument as given to EAL
    /// (`net_pcap0,rx_pcap=in.pcap`) is accepted too: only the part before the first comma
    /// names the device.
    pub fn by_name(_eal: &Eal, name: &str) -> Result<Port, DpdkError> {
        let device = name.split(',').next().unwrap_or(name);
        let c_name = CString::new(device).map_err(|_| DpdkError::NulInName(name.to_owned()))?;
        let _control = control();
        let mut id = 0u16;
        // SAFETY: EAL is initialised (`_eal`); the name is NUL-terminated and `id` is a valid
        // place for the result.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        check("rte_eth_dev_get_port_by_name", ret)?;
        Ok(Port { id })
    }

    /// The DPDK port id.
    pub fn id(self) -> u16 {
        self.id
    }

    /// What the device is and supports.
    pub fn info(self) -> Result<PortInfo, DpdkError> {
        let _control = control();
        let raw = self.raw_info()?;
        let mut name = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: `name` has room for RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.id, name.as_mut_ptr()) };
        check("rte_eth_dev_get_name_by_port", ret)?;
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: `mac` is a valid place for the address.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id, &mut mac) };
        check("rte_eth_macaddr_get", ret)?;
        let driver = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-NULL `driver_name` is the driver's static NUL-terminated name.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            name: c_chars_to_string(&name),
            driver,
            socket: self.socket(),
            mac: mac.addr_bytes,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            min_mtu: raw.min_mtu,
            max_mtu: raw.max_mtu,
            max_rx_pktlen: raw.max_rx_pktlen,
            rss_offloads: raw.flow_type_rss_offloads,
            rx_offloads: raw.rx_offload_capa,
            tx_offloads: raw.tx_offload_capa,
        })
    }

    pub(crate) fn raw_info(self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: `info` is a valid, zeroed `rte_eth_dev_info` for DPDK to fill.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) };
        check("rte_eth_dev_info_get", ret)?;
        Ok(info)
    }

    fn socket(self) -> Option<u32> {
        // SAFETY: validates the port id itself; returns -1 when unknown or invalid.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        u32::try_from(socket).ok()
    }

    /// Configures the port: queues, descriptors, RSS, MTU, RX scatter and TX multi-segment
    /// offloads, and sets up every queue with `setup.mempool`. The port must be stopped and none
    /// of its queue handles alive. Reconfiguring releases nothing: handles are taken afresh.
    pub fn configure(self, setup: &PortSetup) -> Result<PortConfig, DpdkError> {
        let mut queues = control();
        self.refuse_if_queues_alive(&queues, "configure")?;
        // Until this succeeds, no queue may be taken.
        queues.remove(&self.id);

        let info = self.raw_info()?;
        let plan = plan_setup(
            &info,
            &Wanted {
                rx_queues: setup.rx_queues,
                tx_queues: setup.tx_queues,
                mtu: setup.mtu,
                data_room: setup.mempool.data_room(),
            },
        )
        .map_err(|reason| DpdkError::Unsupported {
            port: self.id,
            reason,
        })?;
        let mut conf = sys::rte_eth_conf::default();
        if plan.rss_hash_functions != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = plan.rss_hash_functions;
        }
        conf.rxmode.mtu = u32::from(plan.mtu);
        if plan.rx_scatter {
            conf.rxmode.offloads |= sys::SHIM_ETH_RX_OFFLOAD_SCATTER;
        }
        if plan.tx_multi_segs {
            conf.txmode.offloads |= sys::SHIM_ETH_TX_OFFLOAD_MULTI_SEGS;
        }
        let (rx_queues, tx_queues) = (setup.rx_queues, setup.tx_queues);
        // SAFETY: `conf` is valid and only read during the call; no queue handle can poll the
        // port (checked above), and DPDK refuses (EBUSY) if it is started.
        let ret = unsafe { sys::rte_eth_dev_configure(self.id, rx_queues, tx_queues, &conf) };
        check("rte_eth_dev_configure", ret)?;

        let (mut rx_descriptors, mut tx_descriptors) = (setup.rx_descriptors, setup.tx_descriptors);
        // SAFETY: both pointers are valid places DPDK reads and adjusts.
        let ret = unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_descriptors, &mut tx_descriptors)
        };
        check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;

        let socket = self.socket().unwrap_or(sys::SOCKET_ID_ANY as c_uint);
        for queue in 0..setup.rx_queues {
            // SAFETY: the queue index is below the configured count; a NULL rxconf means the
            // device defaults; the mempool lives for the process, as the queue's mbufs need.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    queue,
                    rx_descriptors,
                    socket,
                    std::ptr::null(),
                    setup.mempool.as_ptr(),
                )
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for queue in 0..setup.tx_queues {
            // SAFETY: the queue index is below the configured count; a NULL txconf means the
            // device defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(
                    self.id,
                    queue,
                    tx_descriptors,
                    socket,
                    std::ptr::null(),
                )
            };
            check("rte_eth_tx_queue_setup", ret)?;
        }
        queues.insert(
            self.id,
            QueueHandles {
                rx: vec![false; usize::from(setup.rx_queues)],
                tx: vec![false; usize::from(setup.tx_queues)],
            },
        );
        Ok(PortConfig {
            rx_descriptors,
            tx_descriptors,
            ..plan
        })
    }

    /// Starts the port. Refused while queue handles are alive: take them after starting.
    pub fn start(self) -> Result<(), DpdkError> {
        self.quiescent("start", "rte_eth_dev_start", sys::rte_eth_dev_start)
            .map(drop)
    }

    /// Stops the port (a `net_pcap` port flushes its output file). Refused while queue handles
    /// are alive: stop the workers first.
    pub fn stop(self) -> Result<(), DpdkError> {
        self.quiescent("stop", "rte_eth_dev_stop", sys::rte_eth_dev_stop)
            .map(drop)
    }

    /// Closes the port, releasing its queues; the port id is invalid afterwards. Refused while
    /// queue handles are alive.
    pub fn close(self) -> Result<(), DpdkError> {
        let mut queues = self.quiescent("close", "rte_eth_dev_close", sys::rte_eth_dev_close)?;
        queues.remove(&self.id);
        Ok(())
    }

    /// Runs `op`, a control call that rewrites the port's queues and burst functions, if no
    /// queue handle of the port is alive; returns the control lock, still held.
    fn quiescent(
        self,
        what: &'static str,
        call: &'static str,
        op: unsafe extern "C" fn(u16) -> c_int,
    ) -> Result<MutexGuard<'static, BTreeMap<u16, QueueHandles>>, DpdkError> {
        let queues = control();
        self.refuse_if_queues_alive(&queues, what)?;
        // SAFETY: `op` validates the port id; no queue handle is alive (checked under the lock
        // `take_*` needs), so nothing polls the queues and burst functions it rewrites.
        check(call, unsafe { op(self.id) })?;
        Ok(queues)
    }

    /// Receives every frame, whatever its destination MAC (mirrored traffic is addressed to
    /// the monitored hosts, not to us). Devices without the notion fail with `ENOTSUP`.
    pub fn enable_promiscuous(self) -> Result<(), DpdkError> {
        let _control = control();
        // SAFETY: a control call on a port id DPDK validates.
        let ret = unsafe { sys::rte_eth_promiscuous_enable(self.id) };
        check("rte_eth_promiscuous_enable", ret)?;
        Ok(())
    }

    /// Gives the port the MAC address `mac` (a kernel interface takes the address of the port
    /// it is the kernel side of). The port must be stopped for some drivers.
    pub fn set_mac_address(self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let _control = control();
        let mut address = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: a control call on a port id DPDK validates; `address` is a valid
        // `rte_ether_addr` that DPDK only reads during the call.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id, &mut address) };
        check("rte_eth_dev_default_mac_addr_set", ret)?;
        Ok(())
    }

    /// The MTU the port has now.
    pub fn mtu(self) -> Result<u16, DpdkError> {
        let _control = control();
        let mut mtu = 0u16;
        // SAFETY: a control call on a port id DPDK validates; `mtu` is a valid place for the
        // result.
        let ret = unsafe { sys::rte_eth_dev_get_mtu(self.id, &mut mtu) };
        check("rte_eth_dev_get_mtu", ret)?;
        Ok(mtu)
    }

    /// The link state, without waiting for autonegotiation.
    pub fn link(self) -> Result<Link, DpdkError> {
        let _control = control();
        let mut link = sys::rte_eth_link::default();
        // SAFETY: `link` is a valid place for DPDK to fill.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        check("rte_eth_link_get_nowait", ret)?;
        Ok(Link {
            up: u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: (link.link_speed != sys::RTE_ETH_SPEED_NUM_UNKNOWN && link.link_speed != 0)
                .then_some(link.link_speed),
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
            autoneg: u32::from(link.link_autoneg()) == sys::RTE_ETH_LINK_AUTONEG,
        })
    }

    /// The port's basic counters.
    pub fn stats(self) -> Result<PortStats, DpdkError> {
        let _control = control();
        let mut raw = sys::rte_eth_stats::default();
        // SAFETY: `raw` is a valid place for DPDK to fill.
        let ret = unsafe { sys::rte_eth_stats_get(self.id, &mut raw) };
        check("rte_eth_stats_get", ret)?;
        let mut queues = [QueueStats::default(); QUEUE_STAT_COUNTERS];
        for (i, q) in queues.iter_mut().enumerate() {
            *q = QueueStats {
                ipackets: raw.q_ipackets[i],
                opackets: raw.q_opackets[i],
                ibytes: raw.q_ibytes[i],
                obytes: raw.q_obytes[i],
                errors: raw.q_errors[i],
            };
        }
        Ok(PortStats {
            ipackets: raw.ipackets,
            opackets: raw.opackets,
            ibytes: raw.ibytes,
            obytes: raw.obytes,
            imissed: raw.imissed,
            ierrors: raw.ierrors,
            oerrors: raw.oerrors,
            rx_nombuf: raw.rx_nombuf,
            queues,
        })
    }

    /// The driver's extended counters, by name (control plane: allocates).
    pub fn xstats(self) -> Result<Vec<(String, u64)>, DpdkError> {
        let _control = control();
        // SAFETY: a NULL array of size 0 asks for the number of counters.
        let count = unsafe { sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        let count = check("rte_eth_xstats_get_names", count)?;
        let len = count as usize; // non-negative, checked
        let mut names = vec![sys::rte_eth_xstat_name::default(); len];
        let mut values = vec![sys::rte_eth_xstat::default(); len];
        // SAFETY: `names` has room for `count` entries, as passed.
        let got =
            unsafe { sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), count as c_uint) };
        let got_names = check("rte_eth_xstats_get_names", got)? as usize;
        // SAFETY: `values` has room for `count` entries, as passed.
        let got = unsafe { sys::rte_eth_xstats_get(self.id, values.as_mut_ptr(), count as c_uint) };
        let got_values = check("rte_eth_xstats_get", got)? as usize;
        // A count above `len` means the set grew between calls: DPDK filled nothing then.
        if got_names > len || got_values > len {
            return Err(DpdkError::from_ret("rte_eth_xstats_get", -libc::ENOSPC));
        }
        names.truncate(got_names);
        Ok(values[..got_values]
            .iter()
            .filter_map(|xstat| {
                let name = names.get(usize::try_from(xstat.id).ok()?)?;
                Some((c_chars_to_string(&name.name), xstat.value))
            })
            .collect())
    }

    /// The handle of RX queue `queue`, for one polling thread. Fails if the port was not
    /// configured with that queue, or if its handle is alive elsewhere.
    pub fn take_rx_queue(self, queue: u16) -> Result<RxQueue, DpdkError> {
        self.take(Direction::Rx, queue)?;
        Ok(RxQueue {
            handle: QueueHandle::new(self, queue, Direction::Rx),
        })
    }

    /// The handle of TX queue `queue`, for one thread at a time. Fails if the port was not
    /// configured with that queue, or if its handle is alive elsewhere.
    pub fn take_tx_queue(self, queue: u16) -> Result<TxQueue, DpdkError> {
        self.take(Direction::Tx, queue)?;
        Ok(TxQueue {
            handle: QueueHandle::new(self, queue, Direction::Tx),
        })
    }

    fn take(self, direction: Direction, queue: u16) -> Result<(), DpdkError> {
        let mut queues = control();
        let slots = queues
            .get_mut(&self.id)
            .map(|handles| direction.slots(handles));
        let configured = slots.as_ref().map_or(0, |s| s.len());
        let Some(slot) = slots.and_then(|s| s.get_mut(usize::from(queue))) else {
            return Err(DpdkError::NoSuchQueue {
                port: self.id,
                direction: direction.name(),
                queue,
                configured: u16::try_from(configured).unwrap_or(u16::MAX),
            });
        };
        if *slot {
            return Err(DpdkError::QueueTaken {
                port: self.id,
                direction: direction.name(),
                queue,
            });
        }
        *slot = true;
        Ok(())
    }

    fn refuse_if_queues_alive(
        self,
        queues: &BTreeMap<u16, QueueHandles>,
        what: &'static str,
    ) -> Result<(), DpdkError> {
        let handles = queues.get(&self.id).map_or(0, QueueHandles::alive);
        if handles == 0 {
            Ok(())
        } else {
            Err(DpdkError::QueuesInUse {
                port: self.id,
                what,
                handles,
            })
        }
    }
}

/// The parts of a [`PortSetup`] that decide the device configuration.
#[derive(Clone, Copy, Debug)]
struct Wanted {
    rx_queues: u16,
    tx_queues: u16,
    mtu: Option<u16>,
    /// Packet bytes per mbuf of the RX pool.
    data_room: u16,
}

/// What `configure` will ask of the device, decided from its capabilities, or why it cannot
/// work. Pure, so tested without DPDK. Descriptor counts are left at what was asked.
fn plan_setup(info: &sys::rte_eth_dev_info, wanted: &Wanted) -> Result<PortConfig, String> {
    if wanted.rx_queues == 0 && wanted.tx_queues == 0 {
        // DPDK would silently pick the device's default queue counts.
        return Err("at least one RX or TX queue is needed".into());
    }
    if wanted.rx_queues > info.max_rx_queues || wanted.tx_queues > info.max_tx_queues {
        return Err(format!(
            "{} RX / {} TX queues asked, the device supports {} / {}",
            wanted.rx_queues, wanted.tx_queues, info.max_rx_queues, info.max_tx_queues
        ));
    }
    let rss_hash_functions = if wanted.rx_queues > 1 {
        (sys::SHIM_ETH_RSS_IP | sys::SHIM_ETH_RSS_UDP | sys::SHIM_ETH_RSS_TCP)
            & info.flow_type_rss_offloads
    } else {
        0
    };
    // DPDK's default when no MTU is given (rte_eth_dev_configure).
    let default_mtu = if info.max_mtu == 0 {
        1500
    } else {
        info.max_mtu.min(1500)
    };
    let mtu = wanted.mtu.unwrap_or(default_mtu);
    if wanted.mtu.is_some() && (mtu < info.min_mtu || mtu > info.max_mtu) {
        return Err(format!(
            "MTU {mtu} outside the device's range {}..={}",
            info.min_mtu, info.max_mtu
        ));
    }
    let frame = u32::from(mtu) + frame_overhead(info);
    if wanted.mtu.is_some() && frame > info.max_rx_pktlen {
        return Err(format!(
            "MTU {mtu} means frames of up to {frame} bytes, the device takes frames of up to {}",
            info.max_rx_pktlen
        ));
    }
    let room = u32::from(wanted.data_room);
    let can_scatter = info.rx_offload_capa & sys::SHIM_ETH_RX_OFFLOAD_SCATTER != 0;
    let rx_scatter = frame > room;
    if rx_scatter && !can_scatter {
        return Err(format!(
            "MTU {mtu} means frames of up to {frame} bytes, the RX pool's mbufs hold {room} and \
             the device cannot scatter a frame over several"
        ));
    }
    Ok(PortConfig {
        rx_descriptors: 0,
        tx_descriptors: 0,
        rss_hash_functions,
        mtu,
        rx_scatter,
        tx_multi_segs: info.tx_offload_capa & sys::SHIM_ETH_TX_OFFLOAD_MULTI_SEGS != 0,
    })
}

/// Bytes a frame carries beyond its MTU (Ethernet header, CRC, VLAN tags), as ethdev computes it.
fn frame_overhead(info: &sys::rte_eth_dev_info) -> u32 {
    overhead_of(info.max_mtu, info.max_rx_pktlen)
}

fn overhead_of(max_mtu: u16, max_rx_pktlen: u32) -> u32 {
    if max_mtu != u16::MAX && max_rx_pktlen > u32::from(max_mtu) {
        max_rx_pktlen - u32::from(max_mtu)
    } else {
        sys::RTE_ETHER_HDR_LEN + sys::RTE_ETHER_CRC_LEN
    }
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The registry entry of one taken queue, released on drop. `Send`, not `Sync`.
#[derive(Debug)]
struct QueueHandle {
    port: Port,
    queue: u16,
    direction: Direction,
    /// One thread at a time: DPDK's per-queue burst functions are not thread-safe.
    _not_sync: PhantomData<Cell<()>>,
}

impl QueueHandle {
    fn new(port: Port, queue: u16, direction: Direction) -> QueueHandle {
        QueueHandle {
            port,
            queue,
            direction,
            _not_sync: PhantomData,
        }
    }
}

impl Drop for QueueHandle {
    fn drop(&mut self) {
        let mut queues = control();
        if let Some(slot) = queues.get_mut(&self.port.id).and_then(|handles| {
            self.direction
                .slots(handles)
                .get_mut(usize::from(self.queue))
        }) {
            *slot = false;
        }
    }
}

/// The receiving end of one RX queue. Obtained from [`Port::take_rx_queue`].
#[derive(Debug)]
pub struct RxQueue {
    handle: QueueHandle,
}

impl RxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> Port {
        self.handle.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.handle.queue
    }

    /// Receives up to `out.len()` packets (at most 65535) into `out[..n]` and returns `n`.
    /// Slots in `out` should be `None`; packets left in them are freed first.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut [Option<Mbuf>]) -> usize {
        for slot in out.iter_mut() {
            *slot = None;
        }
        let max = u16::try_from(out.len()).unwrap_or(u16::MAX);
        // This handle is the only one for (port, queue), used by one thread at a time (`&mut
        // self`, not `Sync`), and the queue stays set up while it lives (configure, start, stop
        // and close are refused meanwhile). The driver writes `n <= max` packets whose
        // references it hands over to us, exactly what a `Some(Mbuf)` owns.
        // SAFETY: as above; `out` holds at least `max` NULL slots with the layout of
        // `struct rte_mbuf *[]`.
        let n = unsafe {
            sys::rte_eth_rx_burst(
                self.handle.port.id,
                self.handle.queue,
                as_raw_slots(out),
                max,
            )
        };
        usize::from(n)
    }
}

/// The sending end of one TX queue. Obtained from [`Port::take_tx_queue`]; share it between
/// threads through a `Mutex`.
#[derive(Debug)]
pub struct TxQueue {
    handle: QueueHandle,
}

impl TxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> Port {
        self.handle.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.handle.queue
    }

    /// Sends the leading `Some` packets of `pkts` (up to the first `None`, at most 65535) and
    /// returns how many, `k`, the driver took: `pkts[..k]` become `None` (the driver owns and
    /// will free them), the rest stay with the caller, to retry or free.
    #[inline]
    pub fn tx_burst(&mut self, pkts: &mut [Option<Mbuf>]) -> usize {
        let leading = pkts.iter().position(Option::is_none).unwrap_or(pkts.len());
        let count = u16::try_from(leading).unwrap_or(u16::MAX);
        // The driver takes ownership of the first `sent` packets, which are emptied below
        // without running `Drop`, so each is released exactly once.
        // SAFETY: this thread alone uses the queue, which stays set up (as in `rx_burst`); the
        // first `count` slots are non-NULL packets we own, laid out as `struct rte_mbuf *[]`.
        let sent = unsafe {
            sys::rte_eth_tx_burst(
                self.handle.port.id,
                self.handle.queue,
                as_raw_slots(pkts),
                count,
            )
        };
        let sent = usize::from(sent).min(leading);
        for slot in &mut pkts[..sent] {
            std::mem::forget(slot.take());
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(max_queues: u16, rss: u64, rx_capa: u64) -> sys::rte_eth_dev_info {
        sys::rte_eth_dev_info {
            max_rx_queues: max_queues,
            max_tx_queues: max_queues,
            min_mtu: 68,
            max_mtu: 9600,
            max_rx_pktlen: 9618,
            flow_type_rss_offloads: rss,
            rx_offload_capa: rx_capa,
            tx_offload_capa: sys::SHIM_ETH_TX_OFFLOAD_MULTI_SEGS,
            ..Default::default()
        }
    }

    #[test]
    fn frame_overhead_follows_ethdev() {
        assert_eq!(frame_overhead(&device(1, 0, 0)), 18);
        let no_limit = sys::rte_eth_dev_info {
            max_mtu: u16::MAX,
            max_rx_pktlen: 70000,
            ..Default::default()
        };
        assert_eq!(frame_overhead(&no_limit), 18);
        let vlan = sys::rte_eth_dev_info {
            max_mtu: 9000,
            max_rx_pktlen: 9026,
            ..Default::default()
        };
        assert_eq!(frame_overhead(&vlan), 26);
    }

    #[test]
    fn queue_handles_count_only_taken_slots() {
        let handles = QueueHandles {
            rx: vec![true, false],
            tx: vec![false, true, true],
        };
        assert_eq!(handles.alive(), 3);
        assert_eq!(QueueHandles::default().alive(), 0);
    }

    #[test]
    fn device_names_stop_at_the_first_nul() {
        let chars = [
            b'n' as c_char,
            b'e' as c_char,
            b't' as c_char,
            0,
            b'x' as c_char,
        ];
        assert_eq!(c_chars_to_string(&chars), "net");
    }

    const FIVE_TUPLE: u64 = sys::SHIM_ETH_RSS_IP | sys::SHIM_ETH_RSS_UDP | sys::SHIM_ETH_RSS_TCP;

    fn wanted(rx_queues: u16, mtu: Option<u16>, data_room: u16) -> Wanted {
        Wanted {
            rx_queues,
            tx_queues: 1,
            mtu,
            data_room,
        }
    }

    #[test]
    fn rss_only_with_several_queues_and_masked_by_the_device() {
        let all = u64::MAX;
        let plan = plan_setup(&device(4, all, 0), &wanted(1, None, 2048)).unwrap();
        assert_eq!(plan.rss_hash_functions, 0);
        let plan = plan_setup(&device(4, all, 0), &wanted(2, None, 2048)).unwrap();
        assert_eq!(plan.rss_hash_functions, FIVE_TUPLE);
        let ip_only = sys::SHIM_ETH_RSS_IP;
        let plan = plan_setup(&device(4, ip_only, 0), &wanted(2, None, 2048)).unwrap();
        assert_eq!(plan.rss_hash_functions, ip_only);
        let plan = plan_setup(&device(4, 0, 0), &wanted(2, None, 2048)).unwrap();
        assert_eq!(plan.rss_hash_functions, 0);
    }

    #[test]
    fn scatter_when_the_mtu_frame_exceeds_the_mbuf() {
        let scatter = sys::SHIM_ETH_RX_OFFLOAD_SCATTER;
        // 1500 + 18 fits in 2048: no scatter even if supported.
        let plan = plan_setup(&device(1, 0, scatter), &wanted(1, None, 2048)).unwrap();
        assert_eq!((plan.mtu, plan.rx_scatter), (1500, false));
        // 9000 + 18 does not: scatter, since the device can.
        let plan = plan_setup(&device(1, 0, scatter), &wanted(1, Some(9000), 2048)).unwrap();
        assert_eq!((plan.mtu, plan.rx_scatter), (9000, true));
        // A device that cannot scatter is refused, not silently dropping jumbo frames.
        let err = plan_setup(&device(1, 0, 0), &wanted(1, Some(9000), 2048)).unwrap_err();
        assert!(err.contains("cannot scatter"), "{err}");
        // Big mbufs need no scatter.
        let plan = plan_setup(&device(1, 0, 0), &wanted(1, Some(9000), 9216)).unwrap();
        assert!(!plan.rx_scatter);
    }

    #[test]
    fn mtu_and_queue_counts_are_checked_against_the_device() {
        let err = plan_setup(&device(1, 0, 0), &wanted(1, Some(9700), 16000)).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let err = plan_setup(&device(1, 0, 0), &wanted(1, Some(60), 2048)).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let err = plan_setup(&device(1, 0, 0), &wanted(2, None, 2048)).unwrap_err();
        assert!(err.contains("2 RX / 1 TX"), "{err}");
        let none = Wanted {
            rx_queues: 0,
            tx_queues: 0,
            mtu: None,
            data_room: 2048,
        };
        assert!(plan_setup(&device(1, 0, 0), &none).is_err());
    }

    /// `net_tap` (and `net_af_packet`) report no `max_mtu` but frames of 1522 (1518) bytes:
    /// ethdev refuses more, so the plan does, with the reason.
    #[test]
    fn the_largest_frame_bounds_the_mtu() {
        let tap = sys::rte_eth_dev_info {
            max_rx_queues: 1,
            max_tx_queues: 1,
            min_mtu: 68,
            max_mtu: u16::MAX,
            max_rx_pktlen: 1522,
            ..Default::default()
        };
        let err = plan_setup(&tap, &wanted(1, Some(1600), 2048)).unwrap_err();
        assert!(
            err.contains("frames of up to 1618 bytes") && err.contains("1522"),
            "{err}"
        );
        assert_eq!(
            plan_setup(&tap, &wanted(1, Some(1504), 2048)).unwrap().mtu,
            1504
        );
        let info = |max_mtu, max_rx_pktlen| PortInfo {
            name: String::new(),
            driver: String::new(),
            socket: None,
            mac: [0; 6],
            max_rx_queues: 1,
            max_tx_queues: 1,
            min_mtu: 68,
            max_mtu,
            max_rx_pktlen,
            rss_offloads: 0,
            rx_offloads: 0,
            tx_offloads: 0,
        };
        assert_eq!(info(u16::MAX, 1522).largest_mtu(), 1504);
        assert_eq!(info(u16::MAX, 1518).largest_mtu(), 1500);
        assert_eq!(info(9600, 9618).largest_mtu(), 9600);
        assert_eq!(info(9000, 9026).largest_mtu(), 9000);
    }

    #[test]
    fn tx_multi_segs_follows_the_device() {
        let plan = plan_setup(&device(1, 0, 0), &wanted(1, None, 2048)).unwrap();
        assert!(plan.tx_multi_segs);
        let mut info = device(1, 0, 0);
        info.tx_offload_capa = 0;
        assert!(
            !plan_setup(&info, &wanted(1, None, 2048))
                .unwrap()
                .tx_multi_segs
        );
    }
}
