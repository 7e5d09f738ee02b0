//! The compiled, immutable form of a configuration that the workers run.
//!
//! # Design
//! The control plane builds a [`Plan`] from a [`ValidatedConfig`] and the set of live tool
//! ports, off the hot path: filters are compiled, Maglev tables populated, VNIs sorted for binary
//! search. Workers read the current plan through an `Arc` swapped between bursts (`arc-swap` in
//! the broker), so a reload or a link change never stops the data plane and never changes the
//! rules in the middle of a burst.
//!
//! A plan also carries the counters of every worker, shaped for its config: a packet is decided
//! under one plan and counted in that plan's counters, so a reload that changes the number of
//! sessions or rules swaps rules and counters in one step. Plans rebuilt for a link change keep
//! the counters of the plan they replace; the control plane sums counters by name across the
//! plans it has retired.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use config::{
    Balance, Direction, ErspanSession, MAX_TOOLS_PER_SESSION, OnPortDown, TunnelSpec, TunnelVni,
    ValidatedConfig,
};

use crate::counters::WorkerCounters;
use crate::egress::{self, SessionIdChoice, Template, TemplateSpec, VniChoice};
use crate::flow::FlowKey;
use crate::neighbour::PortAddresses;
use crate::stage::decap::DecapConfig;
use crate::stage::dedup::{SenderRule, Viewpoint};
use crate::stage::filter::CompiledFilter;
use crate::stage::maglev::Maglev;
use crate::wire::ethernet;

/// A session as the workers need it.
#[derive(Clone, Debug)]
pub struct SessionPlan {
    /// The session's VNI (`None` for a default or untunnelled session); with the interface's
    /// address (and 0 without a VNI), a copy's `source` key.
    pub vni: Option<u32>,
    pub filter: Option<u16>,
    /// Tool groups, in config order.
    pub groups: Box<[u16]>,
    /// The mirrored interface's addresses (`source_ips`).
    source_ips: AddressSet,
    /// At least one of the session's groups takes part in de-duplication.
    pub dedup: bool,
}

impl SessionPlan {
    /// Which end of the packet a copy under this session was taken at, from its `source_ips`.
    #[inline]
    pub fn viewpoint(&self, flow: Option<&FlowKey>) -> Viewpoint {
        Viewpoint::of(flow, |address| self.source_ips.contains(address))
    }

    /// The packet's direction relative to the mirrored interface: ingress when the inner
    /// destination is one of the session's `source_ips`, egress when the inner source is
    /// (ingress wins for a packet from one of them to another), none otherwise.
    pub fn direction(&self, flow: Option<&FlowKey>) -> Option<Direction> {
        self.viewpoint(flow).direction()
    }
}

/// A set of addresses for per-packet membership tests: per family, sorted integers.
///
/// Comparing `IpAddr`s goes through the enum and byte arrays; integers compare in one
/// instruction. A session lists a handful of addresses (the ENI's), which a scan checks faster
/// than a binary search can branch; long lists are searched. A short IPv4 list (the common
/// case, checked twice per packet) is also kept in a fixed array padded with its first address,
/// so that the scan is over a known length, with no bound to check: the compiler turns it into
/// a few vector compares, and the padding cannot change the answer.
#[derive(Clone, Debug, Default)]
struct AddressSet {
    v4: Box<[u32]>,
    /// `v4` padded to [`AddressSet::SCAN`] entries, when it has 1 to `SCAN` of them.
    v4_scan: Option<[u32; AddressSet::SCAN]>,
    v6: Box<[u128]>,
}

impl AddressSet {
    /// Lists up to this long are scanned, longer ones searched.
    const SCAN: usize = 8;

    fn new(addresses: &[IpAddr]) -> AddressSet {
        let mut v4: Vec<u32> = Vec::new();
        let mut v6: Vec<u128> = Vec::new();
        for address in addresses {
            match address {
                IpAddr::V4(a) => v4.push(a.to_bits()),
                IpAddr::V6(a) => v6.push(a.to_bits()),
            }
        }
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        let v4_scan = match v4.first() {
            Some(&first) if v4.len() <= AddressSet::SCAN => {
                let mut slots = [first; AddressSet::SCAN];
                slots[..v4.len()].copy_from_slice(&v4);
                Some(slots)
            }
            _ => None,
        };
        AddressSet {
            v4: v4.into(),
            v4_scan,
            v6: v6.into(),
        }
    }

    #[inline]
    fn contains(&self, address: IpAddr) -> bool {
        fn find<T: Ord + Copy>(list: &[T], value: T) -> bool {
            if list.len() <= AddressSet::SCAN {
                list.iter().fold(false, |found, &x| found | (x == value))
            } else {
                list.binary_search(&value).is_ok()
            }
        }
        match address {
            IpAddr::V4(a) => match &self.v4_scan {
                Some(slots) => slots
                    .iter()
                    .fold(false, |found, &x| found | (x == a.to_bits())),
                None => find(&self.v4, a.to_bits()),
            },
            IpAddr::V6(a) => find(&self.v6, a.to_bits()),
        }
    }
}

/// A tool group as the workers need it.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub balance: Balance,
    /// Cut copies to this many bytes.
    pub slice: Option<usize>,
    pub dedup: bool,
    /// What the dedup window remembers a round-robin group's packets under: its first port (a
    /// port belongs to one group, so no other group or port shares it).
    round_robin_scope: u16,
    /// Maps a key hash to a position in `ports`. With `on_port_down = "rebalance"` it only holds
    /// live ports; with `"drop"` it is the table of all ports and `live` filters the result.
    pub table: Maglev,
    /// Tool port index (`ToolPortId`) of each position.
    pub ports: Box<[u16]>,
    /// Whether each position's port is live.
    pub live: Box<[bool]>,
    /// Positions of the live ports, for round-robin.
    pub live_positions: Box<[u16]>,
}

impl GroupPlan {
    /// The identity the dedup window checks a copy for `port` under: the port itself for a
    /// hash-balanced group (each analyzer receives a packet once; two copies that key to two
    /// ports both go), the group for round-robin (whose port is chosen after the check).
    #[inline]
    pub fn window_scope(&self, port: u16) -> u16 {
        if self.balance == Balance::RoundRobin {
            self.round_robin_scope
        } else {
            port
        }
    }

    /// The tool port for a key hash, `None` when no live port may take it.
    #[inline]
    pub fn port_for_hash(&self, hash: u64) -> Option<u16> {
        // The table's positions are below `ports.len()` (checked by `Plan::build`).
        let position = usize::from(self.table.lookup(hash)?);
        self.live[position].then(|| self.ports[position])
    }

    /// The tool port for the `turn`-th packet of round-robin, `None` when no port is live.
    #[inline]
    pub fn port_for_turn(&self, turn: u32) -> Option<u16> {
        if self.live_positions.is_empty() {
            return None;
        }
        let position = self.live_positions[turn as usize % self.live_positions.len()];
        Some(self.ports[usize::from(position)])
    }
}

/// Everything a worker needs to process a burst, immutable once built.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Increases with every plan the control plane builds (reloads, link changes).
    pub generation: u64,
    pub decap: DecapConfig,
    pub sessions: Box<[SessionPlan]>,
    /// VNI → session.
    vnis: VniTable,
    pub default_session: Option<u16>,
    pub untunneled_session: Option<u16>,
    pub filters: Box<[CompiledFilter]>,
    pub groups: Box<[GroupPlan]>,
    /// The sender rule, in `[dedup]` modes `"sender"` and `"sender+window"`.
    pub sender: Option<SenderRule>,
    /// Number of tool ports (indices of `Sink::deliver` are below it).
    pub tool_ports: usize,
    /// By tool port: the header template of a tunnel port whose next hop is resolved (`None`:
    /// a cabled port, or a tunnel port that is not live).
    pub egress: Box<[Option<Template>]>,
    /// Whether any tool port is a tunnel (the workers then keep what its headers need).
    pub has_tunnels: bool,
    /// By ingress port: the addresses of an addressed port, whose own traffic goes to the control
    /// side (`None`: the port owns no address).
    pub local: Box<[Option<PortAddresses>]>,
    /// By tool port: the ERSPAN sequence numbers, shared by the workers and carried from plan to
    /// plan.
    pub sequences: Arc<[AtomicU32]>,
    /// One set of counters per worker, shaped for this plan's config.
    pub counters: Box<[Arc<WorkerCounters>]>,
}

/// A tunnel tool port's link-layer facts, as the runtime resolved them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelLink {
    /// The via port's MAC.
    pub source_mac: ethernet::Address,
    /// The next hop's MAC.
    pub next_hop_mac: ethernet::Address,
    /// The via port's MTU.
    pub mtu: u16,
}

/// What the runtime knows of its ports when a plan is built. The default: every cabled tool
/// port live, no tunnel resolved, no addressed ingress port.
#[derive(Clone, Debug, Default)]
pub struct PortFacts {
    /// By tool port: whether its link is up (missing entries: up). For a tunnel port, the via
    /// port's link.
    pub live: Vec<bool>,
    /// By tool port: a tunnel port's resolved link (missing or `None`: unresolved, so the port
    /// is not live).
    pub tunnels: Vec<Option<TunnelLink>>,
    /// By ingress port: its MAC, when it owns addresses (missing: none).
    pub ingress_macs: Vec<Option<ethernet::Address>>,
    /// The ERSPAN sequence numbers, one per tool port, to carry into the new plan (`None`: new
    /// ones, from 0).
    pub sequences: Option<Arc<[AtomicU32]>>,
}

impl PortFacts {
    /// Every tool port live or not as `live` says (tests of failover).
    pub fn links(live: &[bool]) -> PortFacts {
        PortFacts {
            live: live.to_vec(),
            ..PortFacts::default()
        }
    }
}

/// The header template of tunnel port `tunnel` over `link` (`broker_hash`: of `[broker] name`).
///
/// # Panics
/// If the template cannot be built: the config checked the families and the session id, and the
/// runtime refuses at start a via port whose MTU leaves no room for a frame.
fn template(tunnel: &TunnelSpec, own: IpAddr, link: TunnelLink, broker_hash: u32) -> Template {
    let vni = match tunnel.vni {
        TunnelVni::Session => VniChoice::Session,
        TunnelVni::Fixed(vni) => VniChoice::Fixed(vni),
    };
    let encapsulation = match tunnel.encapsulation {
        config::Encapsulation::Vxlan => egress::Encapsulation::Vxlan {
            dst_port: tunnel.dst_port,
            vni,
        },
        config::Encapsulation::Geneve => egress::Encapsulation::Geneve {
            dst_port: tunnel.dst_port,
            vni,
            broker_hash,
        },
        config::Encapsulation::L2gre => egress::Encapsulation::L2Gre { key: tunnel.key },
        config::Encapsulation::Erspan2 => egress::Encapsulation::Erspan2 {
            session_id: match tunnel.erspan_session {
                ErspanSession::SessionVni => SessionIdChoice::SessionVni,
                ErspanSession::Fixed(id) => SessionIdChoice::Fixed(id),
            },
        },
    };
    let spec = TemplateSpec {
        encapsulation,
        source_mac: link.source_mac,
        next_hop_mac: link.next_hop_mac,
        source: own,
        remote: tunnel.remote,
        mtu: link.mtu,
    };
    Template::new(spec).unwrap_or_else(|e| panic!("tunnel to {}: {e:?}", tunnel.remote))
}

impl Plan {
    /// Compiles `config`; `port_live[i]` says whether tool port `i` is up (missing entries: up);
    /// worker `w` counts into `counters[w]`, which must be shaped for `config`
    /// ([`WorkerCounters::fits`]).
    ///
    /// # Panics
    /// If a worker's counters are not shaped for `config`, or the plan would hold an index
    /// outside its own tables (what `assert_indices_fit` lists): both are programming errors of
    /// the control plane, which builds counters for the config it compiles. They are checked
    /// here, once, so that the workers can index without checking.
    pub fn build(
        config: &ValidatedConfig,
        generation: u64,
        facts: &PortFacts,
        counters: Box<[Arc<WorkerCounters>]>,
    ) -> Plan {
        let broker_hash = egress::broker_name_hash(&config.broker.name);
        let egress: Box<[Option<Template>]> = config
            .tool_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let tunnel = port.tunnel()?;
                let link = (*facts.tunnels.get(i)?)?;
                let own = config
                    .addressing(tunnel.via)
                    .own_address_for(tunnel.remote)?;
                Some(template(tunnel, own, link, broker_hash))
            })
            .collect();
        let is_live = |port: u16| {
            let index = usize::from(port);
            let link = facts.live.get(index).copied().unwrap_or(true);
            let resolved = config.tool_ports[index].tunnel().is_none() || egress[index].is_some();
            link && resolved
        };
        let local = config
            .ingress
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let addressing = port.addressing.as_ref()?;
                Some(PortAddresses {
                    mac: (*facts.ingress_macs.get(i)?)?,
                    ipv4: addressing.ipv4.map(|n| n.addr()),
                    ipv6: addressing.ipv6.map(|n| n.addr()),
                })
            })
            .collect();
        let sequences = facts
            .sequences
            .clone()
            .filter(|s| s.len() == config.tool_ports.len())
            .unwrap_or_else(|| {
                (0..config.tool_ports.len())
                    .map(|_| AtomicU32::new(0))
                    .collect()
            });
        let groups = config
            .tool_groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g
                    .ports
                    .iter()
                    .map(|p| config.tool_ports[p.index()].name.as_str())
                    .collect();
                let live: Box<[bool]> = g.ports.iter().map(|p| is_live(p.0)).collect();
                let table = match g.on_port_down {
                    OnPortDown::Rebalance => Maglev::build(&names, &live),
                    OnPortDown::Drop => Maglev::build(&names, &vec![true; names.len()]),
                };
                let live_positions = (0..live.len())
                    .filter(|&i| live[i])
                    .map(|i| i as u16)
                    .collect();
                GroupPlan {
                    balance: g.balance,
                    slice: g.slice.map(usize::from),
                    dedup: g.dedup && config.dedup.is_some(),
                    // A group has at least one port (the config refuses one without).
                    round_robin_scope: g.ports[0].0,
                    table,
                    ports: g.ports.iter().map(|p| p.0).collect(),
                    live,
                    live_positions,
                }
            })
            .collect::<Box<[GroupPlan]>>();
        let sessions = config
            .sessions
            .iter()
            .map(|s| SessionPlan {
                vni: s.vni.map(config::Vni::get),
                filter: s.filter.map(|f| f.0),
                groups: s.tools.iter().map(|g| g.0).collect(),
                source_ips: AddressSet::new(&s.source_ips),
                dedup: s.tools.iter().any(|g| groups[g.index()].dedup),
            })
            .collect();
        let mut vnis: Vec<(u32, u16)> = config
            .sessions
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.vni.map(|v| (v.get(), i as u16)))
            .collect();
        vnis.sort_unstable();
        let plan = Plan {
            generation,
            decap: DecapConfig::from_settings(&config.decap),
            sessions,
            vnis: VniTable::new(&vnis),
            default_session: config.decap.default_session.map(|s| s.0),
            untunneled_session: config.decap.untunneled_session.map(|s| s.0),
            filters: config.filters.iter().map(CompiledFilter::compile).collect(),
            groups,
            sender: config
                .dedup
                .as_ref()
                .filter(|d| d.mode.uses_sender_rule())
                .map(|_| SenderRule::new(config)),
            tool_ports: config.tool_ports.len(),
            has_tunnels: config.tool_ports.iter().any(|p| p.tunnel().is_some()),
            egress,
            local,
            sequences,
            counters,
        };
        plan.assert_indices_fit();
        plan
    }

    /// The same plan counting into `counters` (one per worker): for tests and fuzzing, which
    /// compile a config once and run it many times with fresh counters.
    ///
    /// # Panics
    /// As [`Plan::build`], if the counters are not shaped for the plan.
    pub fn with_counters(&self, counters: Box<[Arc<WorkerCounters>]>) -> Plan {
        let plan = Plan {
            counters,
            ..self.clone()
        };
        plan.assert_indices_fit();
        plan
    }

    /// Checks what the pipeline indexes without checking: every session, filter, tool group and
    /// tool port a plan refers to is inside the plan's tables and every worker's counters, every
    /// filter's rules have their hit counters, every Maglev position names a port of its group,
    /// and no session has more tool groups than a decision holds
    /// ([`MAX_TOOLS_PER_SESSION`]).
    ///
    /// # Panics
    /// When one does not hold, naming it. Off the hot path: once per plan.
    fn assert_indices_fit(&self) {
        let sessions = self.sessions.len();
        for session in [self.default_session, self.untunneled_session]
            .into_iter()
            .flatten()
            .chain(self.vnis.sessions())
        {
            assert!(
                usize::from(session) < sessions,
                "plan {}: session {session} of {sessions}",
                self.generation
            );
        }
        for (index, session) in self.sessions.iter().enumerate() {
            assert!(
                session.groups.len() <= MAX_TOOLS_PER_SESSION,
                "plan {}: session {index} has {} tool groups",
                self.generation,
                session.groups.len()
            );
            assert!(
                session
                    .groups
                    .iter()
                    .all(|&g| usize::from(g) < self.groups.len())
                    && session
                        .filter
                        .is_none_or(|f| usize::from(f) < self.filters.len()),
                "plan {}: session {index} names a group or filter it does not have",
                self.generation
            );
        }
        for (index, group) in self.groups.iter().enumerate() {
            let positions = group.ports.len();
            assert!(
                group.live.len() == positions
                    && group
                        .ports
                        .iter()
                        .all(|&p| usize::from(p) < self.tool_ports)
                    && group
                        .table
                        .slots()
                        .all(|slot| slot.is_none_or(|p| usize::from(p) < positions))
                    && group
                        .live_positions
                        .iter()
                        .all(|&p| usize::from(p) < positions),
                "plan {}: tool group {index} names a port it does not have",
                self.generation
            );
        }
        assert!(
            self.egress.len() == self.tool_ports && self.sequences.len() == self.tool_ports,
            "plan {}: a template and a sequence per tool port",
            self.generation
        );
        for (worker, counters) in self.counters.iter().enumerate() {
            let fits = counters.has_shape(
                sessions,
                self.groups.len(),
                self.tool_ports,
                self.filters.iter().map(CompiledFilter::rule_count),
            );
            assert!(
                fits,
                "plan {}: the counters of worker {worker} are shaped for another config",
                self.generation
            );
        }
    }

    /// The counters of worker `worker`.
    pub fn counters_of(&self, worker: usize) -> Option<&Arc<WorkerCounters>> {
        self.counters.get(worker)
    }

    /// The session of a VNI, falling back to the default session.
    #[inline]
    pub fn session_for_vni(&self, vni: u32) -> Option<u16> {
        self.vnis.get(vni).or(self.default_session)
    }
}

/// VNI → session, for one lookup per packet: open addressing with linear probing in a table
/// at most half full, so a lookup reads one slot, rarely two. A sorted list searched by
/// bisection took six dependent, mispredicted steps for 64 sessions.
#[derive(Clone, Debug)]
struct VniTable {
    /// `(VNI + 1, session)`; 0 marks an empty slot (VNIs have 24 bits, so VNI + 1 never is 0).
    slots: Box<[(u32, u16)]>,
    /// `slots.len() - 1` (the length is a power of two).
    mask: usize,
}

impl VniTable {
    /// A table of the `(VNI, session)` pairs (VNIs unique, as the config guarantees).
    fn new(vnis: &[(u32, u16)]) -> VniTable {
        let len = (vnis.len() * 2).next_power_of_two().max(2);
        let mut slots = vec![(0u32, 0u16); len].into_boxed_slice();
        let mask = len - 1;
        for &(vni, session) in vnis {
            let mut at = Self::home(vni, mask);
            while slots[at].0 != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = (vni + 1, session);
        }
        VniTable { slots, mask }
    }

    /// Slot a VNI hashes to (Fibonacci hashing of its 24 bits).
    #[inline]
    fn home(vni: u32, mask: usize) -> usize {
        (vni.wrapping_mul(0x9e37_79b1) >> 8) as usize & mask
    }

    /// The sessions the table maps VNIs to.
    fn sessions(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .filter(|&&(stored, _)| stored != 0)
            .map(|&(_, session)| session)
    }

    #[inline]
    fn get(&self, vni: u32) -> Option<u16> {
        let wanted = vni.wrapping_add(1);
        let mut at = Self::home(vni, self.mask);
        // At most half full: an empty slot ends every probe sequence.
        for _ in 0..self.slots.len() {
            let &(stored, session) = self.slots.get(at)?;
            if stored == wanted {
                return Some(session);
            }
            if stored == 0 {
                return None;
            }
            at = (at + 1) & self.mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::fixtures;

    #[test]
    fn vni_lookup_with_and_without_default() {
        let config = fixtures::config(fixtures::TWO_SESSIONS);
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::default(),
            WorkerCounters::for_workers(&config, 1),
        );
        assert_eq!(plan.session_for_vni(101), Some(0));
        assert_eq!(plan.session_for_vni(202), Some(1));
        assert_eq!(plan.session_for_vni(7), None);

        let with_default = fixtures::config(&format!(
            "{}\n[decap]\ndefault_session = \"b\"\n",
            fixtures::TWO_SESSIONS
        ));
        let plan = Plan::build(
            &with_default,
            1,
            &PortFacts::default(),
            WorkerCounters::for_workers(&with_default, 1),
        );
        assert_eq!(plan.session_for_vni(7), Some(1));
    }

    #[test]
    fn vni_table_finds_every_vni_and_nothing_else() {
        let pairs: Vec<(u32, u16)> = (0..300u32)
            .map(|i| (i.wrapping_mul(40_503) & 0xff_ffff, i as u16))
            .collect();
        let table = VniTable::new(&pairs);
        assert!(table.slots.len() >= 2 * pairs.len() && table.slots.len().is_power_of_two());
        for &(vni, session) in &pairs {
            assert_eq!(table.get(vni), Some(session), "VNI {vni}");
        }
        let known: std::collections::HashSet<u32> = pairs.iter().map(|p| p.0).collect();
        for vni in (0..0x100_0000u32)
            .step_by(997)
            .filter(|v| !known.contains(v))
        {
            assert_eq!(table.get(vni), None, "VNI {vni}");
        }
        assert_eq!(VniTable::new(&[]).get(0), None);
        assert_eq!(VniTable::new(&[(0xff_ffff, 3)]).get(0xff_ffff), Some(3));
    }

    #[test]
    fn direction_from_source_ips() {
        let config = fixtures::config(fixtures::TWO_SESSIONS);
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::default(),
            WorkerCounters::for_workers(&config, 1),
        );
        let a: IpAddr = "10.0.1.10".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "192.0.2.2".parse().unwrap();
        let s = &plan.sessions[0];
        assert_eq!(
            s.direction(Some(&FlowKey::without_ports(b, a, 1))),
            Some(Direction::Ingress)
        );
        assert_eq!(
            s.direction(Some(&FlowKey::without_ports(a, b, 1))),
            Some(Direction::Egress)
        );
        assert_eq!(s.direction(Some(&FlowKey::without_ports(b, c, 1))), None);
        assert_eq!(s.direction(None), None);
        // A session without source_ips gives no direction.
        assert_eq!(
            plan.sessions[1].direction(Some(&FlowKey::without_ports(b, a, 1))),
            None
        );
    }

    #[test]
    fn address_sets_scan_short_lists_and_search_long_ones() {
        let parse = |a: &str| a.parse::<IpAddr>().unwrap();
        let short = AddressSet::new(&[
            parse("10.0.0.2"),
            parse("fd00::1"),
            parse("10.0.0.1"),
            parse("10.0.0.2"),
        ]);
        assert_eq!(short.v4.as_ref(), &[0x0a00_0001, 0x0a00_0002]);
        assert_eq!(
            short.v4_scan,
            Some([
                0x0a00_0001,
                0x0a00_0002,
                0x0a00_0001,
                0x0a00_0001,
                0x0a00_0001,
                0x0a00_0001,
                0x0a00_0001,
                0x0a00_0001
            ])
        );
        assert!(short.contains(parse("10.0.0.1")) && short.contains(parse("fd00::1")));
        assert!(!short.contains(parse("10.0.0.3")) && !short.contains(parse("::ffff:10.0.0.1")));
        let many: Vec<IpAddr> = (0..40u32)
            .map(|i| IpAddr::from((0x0a00_0000 + 3 * i).to_be_bytes()))
            .collect();
        let long = AddressSet::new(&many);
        assert!(long.v4.len() > AddressSet::SCAN && long.v4_scan.is_none());
        for i in 0..120u32 {
            let address = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert_eq!(long.contains(address), i % 3 == 0, "{address}");
        }
        assert!(!AddressSet::default().contains(parse("10.0.0.1")));
    }

    #[test]
    fn dead_port_leaves_round_robin_and_drop_groups_refuse_its_keys() {
        let config = fixtures::config(fixtures::TWO_SESSIONS);
        // Tool ports: 0 = a-1, 1 = a-2 (group "a", rebalance), 2 = b-1 (group "b").
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::links(&[true, false, true]),
            WorkerCounters::for_workers(&config, 1),
        );
        let a = &plan.groups[0];
        assert_eq!(a.live_positions.as_ref(), &[0]);
        for turn in 0..4 {
            assert_eq!(a.port_for_turn(turn), Some(0));
        }
        for h in 0..1000u64 {
            assert_eq!(
                a.port_for_hash(h.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                Some(0)
            );
        }
        let all_down = Plan::build(
            &config,
            2,
            &PortFacts::links(&[false, false, false]),
            WorkerCounters::for_workers(&config, 1),
        );
        assert_eq!(all_down.groups[0].port_for_turn(0), None);
        assert_eq!(all_down.groups[0].port_for_hash(1), None);
    }

    #[test]
    #[should_panic(expected = "the counters of worker 1 are shaped for another config")]
    fn counters_of_another_config_stop_the_build() {
        let config = fixtures::config(fixtures::TWO_SESSIONS);
        let other = fixtures::config(fixtures::MINIMAL);
        let counters = [config.clone(), other]
            .iter()
            .map(|c| Arc::new(WorkerCounters::new(c)))
            .collect();
        Plan::build(&config, 1, &PortFacts::default(), counters);
    }

    #[test]
    #[should_panic(expected = "shaped for another config")]
    fn counters_of_another_config_stop_with_counters() {
        let config = fixtures::config(fixtures::TWO_SESSIONS);
        let plan = Plan::build(
            &config,
            1,
            &PortFacts::default(),
            WorkerCounters::for_workers(&config, 1),
        );
        let other = fixtures::config(fixtures::MINIMAL);
        plan.with_counters(WorkerCounters::for_workers(&other, 1));
    }

    /// What the config says a tunnel adds (`broker check`, the MTU checks, `/status`) is what the
    /// egress template writes, for every encapsulation, family and option.
    #[test]
    fn config_overhead_is_the_templates() {
        let mut ports = Vec::new();
        for (family, remote) in [("4", "10.0.9.21"), ("6", "fd00:9::21")] {
            for (name, extra) in [
                ("vxlan", ""),
                ("geneve", ""),
                ("l2gre", ""),
                ("l2gre", ", key = 7"),
                ("erspan2", ""),
            ] {
                let n = ports.len();
                ports.push(format!(
                    "{{ name = \"t{n}-{name}{family}\", tunnel = \"{name}\", remote = \"{remote}\", via = \"in\"{extra} }}"
                ));
            }
        }
        let text = fixtures::MINIMAL
            .replace(
                "device = \"net_null0\"",
                "device = \"net_null0\"\naddress = [\"10.0.9.10/24\", \"fd00:9::10/64\"]",
            )
            .replace(
                "ports = [{ name = \"g-1\", device = \"net_null1\" }]",
                &format!("ports = [{}]", ports.join(", ")),
            );
        let config = fixtures::config(&text);
        assert_eq!(config.tool_ports.len(), 10);
        for port in &config.tool_ports {
            let tunnel = port.tunnel().expect("a tunnel port");
            let own: IpAddr = if tunnel.remote.is_ipv4() {
                "10.0.9.10".parse().unwrap()
            } else {
                "fd00:9::10".parse().unwrap()
            };
            for mtu in [1500, 9001] {
                let link = TunnelLink {
                    source_mac: [2, 0, 0, 0, 0, 1],
                    next_hop_mac: [2, 0, 0, 0, 0, 2],
                    mtu,
                };
                let built = template(tunnel, own, link, 0);
                assert_eq!(built.overhead(), tunnel.overhead(), "{}", port.name);
                assert_eq!(
                    built.max_inner_len(),
                    tunnel.max_inner_len(mtu),
                    "{} at MTU {mtu}",
                    port.name
                );
            }
        }
    }
}
