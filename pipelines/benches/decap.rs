//! Decapsulation cost per packet: a burst of 32 AWS Traffic Mirroring packets (VXLAN over IPv4,
//! a 114-byte customer TCP frame inside), decapsulated and parsed as the worker does.
//!
//! Each iteration starts from fresh copies of the burst (decap moves the packets' start), made in
//! `iter_batched`'s setup so that copying is not measured.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use pipelines::inner::parse_inner;
use pipelines::stage::decap::{DecapConfig, decap};
use pipelines::{PacketBuf, VecBuf};

const BURST: usize = 32;

fn aws_mirror_packet(i: u8) -> Vec<u8> {
    let mut customer = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, i], [10, 0, 1, 1], 64)
        .tcp(40000 + u16::from(i), 443, 1, 1000)
        .write(&mut customer, &[0x5a; 60])
        .unwrap();
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    vxlan.extend_from_slice(&customer);
    let mut out = Vec::new();
    PacketBuilder::ethernet2([6, 0, 0, 0, 0, 1], [6, 0, 0, 0, 0, 2])
        .ipv4([172, 31, 0, i], [172, 31, 9, 9], 255)
        .udp(50000, 4789)
        .write(&mut out, &vxlan)
        .unwrap();
    out
}

fn bench_decap(c: &mut Criterion) {
    let nets = [
        "172.31.0.0/16".parse().unwrap(),
        "10.1.0.0/16".parse().unwrap(),
    ];
    let cfg = DecapConfig::new(&[4789], &[6081], Some(&nets), false);
    let burst: Vec<VecBuf> = (0..BURST as u8)
        .map(|i| VecBuf::new(&aws_mirror_packet(i)))
        .collect();
    // Measure the path the packets really take, not an early error.
    for pkt in &burst {
        assert!(decap(&cfg, &mut pkt.clone()).is_ok());
    }

    let mut group = c.benchmark_group("decap");
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function("aws_vxlan_burst32", |b| {
        b.iter_batched_ref(
            || burst.clone(),
            |pkts| {
                for pkt in pkts.iter_mut() {
                    let tunnel = decap(&cfg, pkt);
                    let inner = parse_inner(pkt.data(), pkt.pkt_len());
                    let _ = black_box((tunnel, inner));
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_decap);
criterion_main!(benches);
