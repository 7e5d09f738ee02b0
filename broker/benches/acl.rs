//! DPDK's classifier (`rte_acl`, through `drivers::AclV4`) against the broker's filter
//! (`CompiledFilter::classify`) on the same rules and the same packets: the filters and bursts of
//! the filter bench (`pipelines/benches/filter/workload.rs`, the same seed), 10 to 10,000 rules,
//! IPv4 packets only (the `rte_acl` layout here is IPv4's; IPv6 rules are left out of its
//! context, as they never match an IPv4 packet).
//!
//! The filters' semantics in `rte_acl` terms: rule `i` gets priority `MAX - i` (first match by
//! rule number); the direction (0 none, 1 ingress, 2 egress) and "the packet carries ports" are
//! bits of a flags word, which a rule with a direction or a port range requires. Before timing,
//! every packet's answer from both is compared: the bench fails if they differ.
//!
//! Least cycles per packet over many rounds of one burst of 32 per call, 256 bursts in turn:
//! - `filter`: `classify` per packet, as the pipeline calls it;
//! - `rte_acl`: the packet's 20-byte input built from its flow key, then one `rte_acl_classify`
//!   for the burst (what the pipeline would do); `rte_acl, inputs ready`: the classify alone.
//!
//! `cargo bench -p broker --bench acl`

#[path = "../../pipelines/benches/filter/workload.rs"]
mod workload;

use std::hint::black_box;
use std::net::IpAddr;

use config::{Direction, Filter};
use drivers::{AclInputV4, AclRuleV4, AclV4, Eal, rdtsc};
use ipnet::IpNet;
use pipelines::FlowKey;
use pipelines::stage::filter::CompiledFilter;
use workload::{BURST, Rng, SIZES, realistic_filter, varied_burst};

/// Bursts per filter, taken in turn (as the filter bench).
const BURSTS: usize = 256;
const ROUNDS: usize = 100;

/// The flags word's bits: the direction code, and whether the packet carries ports.
const DIRECTION_MASK: u32 = 0b11;
const HAS_PORTS: u32 = 0b100;

fn direction_code(direction: Option<Direction>) -> u32 {
    match direction {
        None => 0,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    }
}

/// The rules of `filter` that can match an IPv4 packet, in `rte_acl` form, with their index in
/// the filter.
fn acl_rules(filter: &Filter) -> (Vec<AclRuleV4>, Vec<u16>) {
    let v4 = |net: Option<IpNet>| match net {
        None => Some((0, 0)),
        Some(IpNet::V4(n)) => Some((n.network().to_bits(), n.prefix_len())),
        Some(IpNet::V6(_)) => None,
    };
    let mut rules = Vec::new();
    let mut indices = Vec::new();
    for (index, rule) in filter.rules.iter().enumerate() {
        let (Some(src), Some(dst)) = (v4(rule.src_cidr), v4(rule.dst_cidr)) else {
            continue;
        };
        let ports = |p: Option<config::PortRange>| p.map_or((0, u16::MAX), |p| (p.first, p.last));
        let mut flags_value = 0;
        let mut flags_mask = 0;
        if let Some(direction) = rule.direction {
            flags_value |= direction_code(Some(direction));
            flags_mask |= DIRECTION_MASK;
        }
        if rule.src_ports.is_some() || rule.dst_ports.is_some() {
            flags_value |= HAS_PORTS;
            flags_mask |= HAS_PORTS;
        }
        rules.push(AclRuleV4 {
            protocol: rule.protocol,
            src,
            dst,
            src_ports: ports(rule.src_ports),
            dst_ports: ports(rule.dst_ports),
            flags_value,
            flags_mask,
        });
        indices.push(index as u16);
    }
    (rules, indices)
}

fn acl_input(key: &FlowKey, direction: Option<Direction>) -> AclInputV4 {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => a.to_bits(),
        IpAddr::V6(_) => 0,
    };
    let flags = direction_code(direction) | if key.has_ports { HAS_PORTS } else { 0 };
    AclInputV4::new(
        key.protocol,
        v4(key.src),
        v4(key.dst),
        key.src_port,
        key.dst_port,
        flags,
    )
}

/// The least cycles per packet of `f(burst index)` over `ROUNDS` rounds of every burst.
fn least_cycles(mut f: impl FnMut(usize)) -> f64 {
    for b in 0..BURSTS {
        f(b);
    }
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = rdtsc();
        for b in 0..BURSTS {
            f(b);
        }
        best = best.min((rdtsc() - start) as f64 / (BURSTS * BURST) as f64);
    }
    best
}

fn main() {
    let args = drivers::isolated_args(512, &["-l", "0"]);
    let eal = Eal::init(&args).expect("EAL init");
    let hz = eal.tsc_hz() as f64;
    let mut rng = Rng(0x5EED_F11E);
    let mut rows = Vec::new();
    for size in SIZES {
        // The filter bench's filter and bursts of this size (the same draws in the same order),
        // then their IPv4 packets regrouped into bursts of 32.
        let filter = realistic_filter(&mut rng, size);
        let packets: Vec<(FlowKey, Option<Direction>)> = (0..BURSTS)
            .flat_map(|_| varied_burst(&mut rng, &filter))
            .filter_map(|(key, direction)| Some((key?, direction)))
            .filter(|(key, _)| key.src.is_ipv4() && key.dst.is_ipv4())
            .collect();
        let bursts: Vec<&[(FlowKey, Option<Direction>)]> =
            packets.chunks_exact(BURST).cycle().take(BURSTS).collect();
        let compiled = CompiledFilter::compile(&filter);
        let (rules, indices) = acl_rules(&filter);
        let started = std::time::Instant::now();
        let acl = AclV4::build(&eal, &rules).expect("rte_acl build");
        let build_time = started.elapsed();

        // The same answer for every packet, or the comparison means nothing.
        let inputs: Vec<Vec<AclInputV4>> = bursts
            .iter()
            .map(|b| b.iter().map(|(k, d)| acl_input(k, *d)).collect())
            .collect();
        let mut results = [0u32; BURST];
        let mut matched = 0;
        for (burst, inputs) in bursts.iter().zip(&inputs) {
            acl.classify(inputs, &mut results);
            for ((key, direction), &result) in burst.iter().zip(&results) {
                let ours = compiled.classify(Some(key), *direction).rule;
                let theirs = result.checked_sub(1).map(|i| indices[i as usize]);
                assert_eq!(ours, theirs, "{size} rules: {key:?} {direction:?}");
                matched += usize::from(ours.is_some());
            }
        }
        eprintln!(
            "{size} rules ({} for IPv4 in rte_acl, built in {build_time:.1?}): \
             {matched} of {} packets match a rule, the same one in both",
            acl.rules(),
            BURSTS * BURST
        );

        let filter_cost = least_cycles(|b| {
            for (key, direction) in bursts[b] {
                black_box(compiled.classify(Some(key), *direction));
            }
        });
        let acl_cost = least_cycles(|b| {
            let mut inputs = [AclInputV4::default(); BURST];
            for (input, (key, direction)) in inputs.iter_mut().zip(bursts[b]) {
                *input = acl_input(key, *direction);
            }
            acl.classify(&inputs, &mut results);
            black_box(&results);
        });
        let acl_ready = least_cycles(|b| {
            acl.classify(&inputs[b], &mut results);
            black_box(&results);
        });
        rows.push((size, filter_cost, acl_cost, acl_ready));
    }
    eprintln!();
    eprintln!(
        "classify, IPv4 packets, bursts of {BURST}: least cost per packet (TSC {:.3} GHz)",
        hz / 1e9
    );
    eprintln!(
        "  {:>6}  {:>17}  {:>17}  {:>17}",
        "rules", "filter ns (cyc)", "rte_acl ns (cyc)", "inputs ready"
    );
    let cell = |c: f64| format!("{:.1} ({:.0})", c * 1e9 / hz, c);
    for (size, ours, theirs, ready) in rows {
        eprintln!(
            "  {size:>6}  {:>17}  {:>17}  {:>17}",
            cell(ours),
            cell(theirs),
            cell(ready)
        );
    }
}
