//! Balance keys and Maglev lookups, per packet, in bursts of 32.
//!
//! Before criterion runs, a pass prints the least cost per packet (ns and TSC cycles, with the
//! line-rate budgets) of the flow hash, and of the Maglev lookup with and without it.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput};
use pipelines::flow::{FlowKey, ip_proto};
use pipelines::stage::balance::{flow_hash, ip_pair_hash, source_hash};
use pipelines::stage::maglev::Maglev;

use common::{BURST, least_cost, print_costs};

fn ipv4_flows() -> [FlowKey; BURST] {
    std::array::from_fn(|i| {
        let i = i as u8;
        FlowKey::with_ports(
            IpAddr::V4(Ipv4Addr::new(10, 0, i, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)),
            ip_proto::TCP,
            40_000 + u16::from(i),
            443,
        )
    })
}

fn ipv6_flows() -> [FlowKey; BURST] {
    std::array::from_fn(|i| {
        let i = i as u16;
        FlowKey::with_ports(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, i, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)),
            ip_proto::UDP,
            40_000 + i,
            53,
        )
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("balance");
    group.throughput(Throughput::Elements(BURST as u64));
    let (v4, v6) = (ipv4_flows(), ipv6_flows());

    group.bench_function("flow_hash/ipv4", |b| {
        b.iter(|| {
            for key in black_box(&v4) {
                black_box(flow_hash(key));
            }
        })
    });
    group.bench_function("flow_hash/ipv6", |b| {
        b.iter(|| {
            for key in black_box(&v6) {
                black_box(flow_hash(key));
            }
        })
    });
    group.bench_function("ip_pair_hash/ipv4", |b| {
        b.iter(|| {
            for key in black_box(&v4) {
                black_box(ip_pair_hash(key));
            }
        })
    });
    group.bench_function("source_hash/ipv4", |b| {
        b.iter(|| {
            for (vni, key) in black_box(&v4).iter().enumerate() {
                black_box(source_hash(key.src, vni as u32));
            }
        })
    });

    let names: Vec<String> = (0..8).map(|i| format!("suricata-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut live = [true; 8];
    let table = Maglev::build(&names, &live);
    group.bench_function("maglev_lookup+flow_hash/ipv4/8_ports", |b| {
        b.iter(|| {
            for key in black_box(&v4) {
                black_box(table.lookup(flow_hash(key)));
            }
        })
    });
    let hashes: [u64; BURST] = std::array::from_fn(|i| flow_hash(&v4[i]));
    group.bench_function("maglev_lookup/8_ports", |b| {
        b.iter(|| {
            for &hash in black_box(&hashes) {
                black_box(table.lookup(hash));
            }
        })
    });
    group.finish();

    // Control plane, for scale: rebuilding a table when a port goes down.
    let mut rebuild = c.benchmark_group("maglev_build");
    live[3] = false;
    rebuild.bench_function("8_ports_one_down", |b| {
        b.iter(|| black_box(Maglev::build(black_box(&names), black_box(&live))))
    });
    rebuild.finish();
}

fn print_least_costs() {
    let v4 = ipv4_flows();
    let names: Vec<String> = (0..8).map(|i| format!("suricata-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let table = Maglev::build(&names, &[true; 8]);
    let hashes: [u64; BURST] = std::array::from_fn(|i| flow_hash(&v4[i]));
    let rows = vec![
        (
            "flow_hash, IPv4".to_owned(),
            least_cost(BURST, 200, 1024, || {
                for key in black_box(&v4) {
                    black_box(flow_hash(key));
                }
            }),
        ),
        (
            "maglev lookup, 8 ports".to_owned(),
            least_cost(BURST, 200, 1024, || {
                for &hash in black_box(&hashes) {
                    black_box(table.lookup(hash));
                }
            }),
        ),
        (
            "flow_hash + maglev lookup".to_owned(),
            least_cost(BURST, 200, 1024, || {
                for key in black_box(&v4) {
                    black_box(table.lookup(flow_hash(key)));
                }
            }),
        ),
    ];
    print_costs("balance, burst 32", &rows);
}

fn main() {
    print_least_costs();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
