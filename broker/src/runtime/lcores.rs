//! Which CPU each worker runs on.
//!
//! # Design
//! One poll-mode worker per ingress RX queue, each pinned to its own CPU. With
//! `lcores = "auto"` the CPUs come from the hardware topology (hwloc, through `hwlocality`): one
//! hardware thread per physical core (two workers on sibling hyperthreads would halve each
//! other), on the NUMA node of the ingress port the worker polls (a PCI NIC's node is read from
//! sysfs; virtual devices have none), never on the control thread's CPU. When the node has too
//! few cores the plan takes cores from other nodes, then shares cores, and says so: a lab on a
//! two-CPU machine must still run.
//!
//! The choice itself ([`assign`]) is a pure function of the discovered CPUs, so it is tested
//! without the machine's topology.

use std::fmt;

use config::{IngressPort, Lcores, ValidatedConfig};

/// A CPU the process may run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// OS index of the hardware thread.
    pub id: u32,
    /// NUMA node, when the machine has NUMA information.
    pub node: Option<u32>,
}

/// The CPUs of the control thread and of every worker (in ingress/queue order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LcorePlan {
    pub control: u32,
    pub workers: Vec<u32>,
    /// NUMA node of each worker's CPU.
    pub worker_nodes: Vec<Option<u32>>,
    /// Compromises made (shared cores, remote nodes), for the log.
    pub warnings: Vec<String>,
}

impl fmt::Display for LcorePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "control on CPU {}, workers on CPUs {:?}",
            self.control, self.workers
        )
    }
}

/// What a worker needs: to poll a queue of a port on a NUMA node (if known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    pub node: Option<u32>,
}

/// Chooses CPUs for `demands` among `cpus` (one per physical core, in topology order), keeping
/// `control` for the control thread.
pub fn assign(cpus: &[Cpu], control: u32, demands: &[Demand]) -> LcorePlan {
    let mut warnings = Vec::new();
    let mut free: Vec<Cpu> = cpus.iter().copied().filter(|c| c.id != control).collect();
    let mut workers = Vec::with_capacity(demands.len());
    let mut worker_nodes = Vec::with_capacity(demands.len());
    let mut shared = 0usize;
    for (i, demand) in demands.iter().enumerate() {
        let local = free
            .iter()
            .position(|c| demand.node.is_none() || c.node == demand.node);
        let pick = match local {
            Some(p) => Some(free.remove(p)),
            None if !free.is_empty() => {
                let cpu = free.remove(0);
                warnings.push(format!(
                    "worker {i}: no free core on NUMA node {}, using CPU {} on node {}",
                    demand.node.map_or("?".into(), |n| n.to_string()),
                    cpu.id,
                    cpu.node.map_or("?".into(), |n| n.to_string())
                ));
                Some(cpu)
            }
            None => None,
        };
        let cpu = match pick {
            Some(cpu) => cpu,
            None => {
                // Out of cores: share, round-robin over all of them, the control core last.
                let mut pool: Vec<Cpu> = cpus.iter().copied().filter(|c| c.id != control).collect();
                pool.extend(cpus.iter().copied().filter(|c| c.id == control));
                if pool.is_empty() {
                    pool.push(Cpu {
                        id: control,
                        node: None,
                    });
                }
                let cpu = pool[shared % pool.len()];
                shared += 1;
                warnings.push(format!(
                    "worker {i}: more workers than free cores, sharing CPU {}{}",
                    cpu.id,
                    if cpu.id == control {
                        " with the control thread"
                    } else {
                        ""
                    }
                ));
                cpu
            }
        };
        workers.push(cpu.id);
        worker_nodes.push(cpu.node);
    }
    LcorePlan {
        control,
        workers,
        worker_nodes,
        warnings,
    }
}

/// An explicit `lcores = [..]` list: taken as given (the config checked its length).
fn explicit(cpus: &[Cpu], control: u32, list: &[u32]) -> LcorePlan {
    let node_of = |id: u32| cpus.iter().find(|c| c.id == id).and_then(|c| c.node);
    let mut warnings = Vec::new();
    if list.contains(&control) {
        warnings.push(format!(
            "a worker shares CPU {control} with the control thread"
        ));
    }
    for id in list {
        if !cpus.iter().any(|c| c.id == *id) {
            warnings.push(format!(
                "CPU {id} is not one this process may run on (or not a core's first thread)"
            ));
        }
    }
    LcorePlan {
        control,
        workers: list.to_vec(),
        worker_nodes: list.iter().map(|&id| node_of(id)).collect(),
        warnings,
    }
}

/// The NUMA node of an ingress device: read from sysfs for a PCI address, none for a vdev.
pub fn device_node(ingress: &IngressPort) -> Option<u32> {
    let address = ingress.device.pci_address()?;
    let text = std::fs::read_to_string(format!("/sys/bus/pci/devices/{address}/numa_node")).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

/// One CPU per physical core the process may use, with its NUMA node, from hwloc.
pub fn discover() -> Result<Vec<Cpu>, String> {
    use hwlocality::Topology;
    use hwlocality::object::types::ObjectType;

    let topology = Topology::new().map_err(|e| format!("hwloc topology: {e}"))?;
    let allowed = topology.allowed_cpuset();
    let nodes: Vec<(u32, _)> = topology
        .objects_with_type(ObjectType::NUMANode)
        .filter_map(|n| {
            Some((
                u32::try_from(n.os_index()?).ok()?,
                n.cpuset()?.clone_target(),
            ))
        })
        .collect();
    let mut cpus = Vec::new();
    for core in topology.objects_with_type(ObjectType::Core) {
        let Some(cpuset) = core.cpuset() else {
            continue;
        };
        let Some(first) = cpuset.iter_set().find(|pu| allowed.is_set(*pu)) else {
            continue;
        };
        let node = nodes
            .iter()
            .find(|(_, set)| set.is_set(first))
            .map(|(n, _)| *n);
        if let Ok(id) = u32::try_from(usize::from(first)) {
            cpus.push(Cpu { id, node });
        }
    }
    if cpus.is_empty() {
        return Err("hwloc found no usable core".into());
    }
    Ok(cpus)
}

/// The lcore plan for `config` on this machine.
pub fn plan(config: &ValidatedConfig) -> Result<LcorePlan, String> {
    let cpus = discover()?;
    let control = config.workers.control_core.unwrap_or(cpus[0].id);
    Ok(match &config.workers.lcores {
        Lcores::List(list) => explicit(&cpus, control, list),
        Lcores::Auto => {
            let demands: Vec<Demand> = config
                .ingress
                .iter()
                .flat_map(|i| {
                    let node = device_node(i);
                    (0..i.queues).map(move |_| Demand { node })
                })
                .collect();
            assign(&cpus, control, &demands)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(spec: &[(u32, u32)]) -> Vec<Cpu> {
        spec.iter()
            .map(|&(id, node)| Cpu {
                id,
                node: Some(node),
            })
            .collect()
    }

    #[test]
    fn workers_avoid_the_control_core_and_stay_on_their_node() {
        let machine = cpus(&[(0, 0), (1, 0), (2, 0), (8, 1), (9, 1), (10, 1)]);
        let demands = [
            Demand { node: Some(1) },
            Demand { node: Some(1) },
            Demand { node: Some(0) },
        ];
        let plan = assign(&machine, 0, &demands);
        assert_eq!(plan.workers, vec![8, 9, 1]);
        assert_eq!(plan.worker_nodes, vec![Some(1), Some(1), Some(0)]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn a_full_node_spills_to_another_with_a_warning() {
        let machine = cpus(&[(0, 0), (1, 0), (8, 1)]);
        let plan = assign(
            &machine,
            0,
            &[Demand { node: Some(0) }, Demand { node: Some(0) }],
        );
        assert_eq!(plan.workers, vec![1, 8]);
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.warnings[0].contains("NUMA node 0"));
    }

    #[test]
    fn too_many_workers_share_cores_and_say_so() {
        // The lab on this two-CPU machine with two RX queues.
        let machine = cpus(&[(0, 0), (1, 0)]);
        let plan = assign(&machine, 0, &[Demand { node: None }, Demand { node: None }]);
        assert_eq!(plan.workers, vec![1, 1]);
        assert!(plan.warnings[0].contains("sharing CPU 1"));
        let plan = assign(&machine, 0, &[Demand { node: None }; 3]);
        assert_eq!(plan.workers, vec![1, 1, 0]);
        assert!(
            plan.warnings
                .last()
                .unwrap()
                .contains("with the control thread")
        );
    }

    #[test]
    fn unknown_node_takes_any_free_core() {
        let machine = cpus(&[(0, 0), (4, 1)]);
        let plan = assign(&machine, 0, &[Demand { node: None }]);
        assert_eq!(plan.workers, vec![4]);
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn explicit_lists_are_kept_and_checked() {
        let machine = cpus(&[(0, 0), (1, 0)]);
        let plan = explicit(&machine, 0, &[1, 0]);
        assert_eq!(plan.workers, vec![1, 0]);
        assert!(plan.warnings.iter().any(|w| w.contains("shares CPU 0")));
        let plan = explicit(&machine, 0, &[7]);
        assert!(plan.warnings.iter().any(|w| w.contains("CPU 7")));
    }

    #[test]
    fn discovery_finds_this_machine() {
        let found = discover().expect("hwloc works here");
        assert!(!found.is_empty());
        let mut ids: Vec<u32> = found.iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), found.len(), "one CPU per core");
    }
}
