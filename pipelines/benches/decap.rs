//! Decapsulation cost per packet: bursts of 32 AWS Traffic Mirroring packets (VXLAN over IPv4,
//! a 114-byte customer TCP frame inside), decapsulated and parsed as the worker does.
//!
//! Decap moves the packets' start, so every call copies the burst afresh into buffers of a fixed
//! pool (no allocation, as the NIC or the pcap driver fills mbufs); that copy is measured alone
//! and subtracted. Rows: the fast path (`decap`, as the pipeline runs it), the general walk
//! (`decap_general`, what every other shape takes), and each with the inner parse.
//!
//! The earlier version of this bench cloned `VecBuf`s in criterion's batched setup: two heap
//! allocations per packet and criterion's batching overhead made decap look like 60–75 ns.
//!
//! `cargo bench -p broker-pipelines --bench decap`

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::rc::Rc;

use common::{BURST, Cost, least_cost, print_costs};
use criterion::{Criterion, Throughput};
use etherparse::PacketBuilder;
use pipelines::PacketBuf;
use pipelines::fixed_pool::{FixedPool, PoolBuf};
use pipelines::inner::parse_inner;
use pipelines::stage::decap::{DecapConfig, decap, decap_general};

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

/// A burst of packets, refilled from the frames before every call.
struct Rig {
    frames: Vec<Vec<u8>>,
    pool: Rc<FixedPool>,
    burst: Vec<Option<PoolBuf>>,
}

impl Rig {
    #[inline]
    fn refill(&mut self) {
        for (slot, frame) in self.burst.iter_mut().zip(&self.frames) {
            *slot = self.pool.packet(frame);
        }
    }

    /// Refills, then runs `f` on every packet.
    #[inline]
    fn call(&mut self, mut f: impl FnMut(&mut PoolBuf)) {
        self.refill();
        for pkt in self.burst.iter_mut().flatten() {
            f(pkt);
        }
    }
}

fn main() {
    let nets = [
        "172.31.0.0/16".parse().unwrap(),
        "10.1.0.0/16".parse().unwrap(),
    ];
    let cfg = DecapConfig::new(&[4789], &[6081], Some(&nets), false);
    let frames: Vec<Vec<u8>> = (0..BURST as u8).map(aws_mirror_packet).collect();
    let mut rig = Rig {
        frames,
        pool: FixedPool::new(BURST, 2048),
        burst: (0..BURST).map(|_| None).collect(),
    };
    // Measure the path the packets really take, not an early error.
    rig.call(|pkt| assert!(decap(&cfg, pkt).is_ok()));

    let calls = 4096;
    let refill = least_cost(BURST, 100, calls, || rig.refill());
    let mut rows: Vec<(String, Cost)> = Vec::new();
    let mut row = |name: &str, f: &mut dyn FnMut(&mut PoolBuf)| {
        let total = least_cost(BURST, 100, calls, || rig.call(&mut *f));
        rows.push((name.to_owned(), total.minus(refill)));
    };
    row("decap (fast path)", &mut |pkt| {
        let _ = black_box(decap(&cfg, pkt));
    });
    row("decap (fast path) + parse_inner", &mut |pkt| {
        let tunnel = decap(&cfg, pkt);
        let _ = black_box((tunnel, parse_inner(pkt.data(), pkt.pkt_len())));
    });
    row("decap_general", &mut |pkt| {
        let _ = black_box(decap_general(&cfg, pkt));
    });
    row("decap_general + parse_inner", &mut |pkt| {
        let tunnel = decap_general(&cfg, pkt);
        let _ = black_box((tunnel, parse_inner(pkt.data(), pkt.pkt_len())));
    });
    rows.push(("copy of the frames into buffers, alone".to_owned(), refill));
    print_costs(
        "decap, AWS VXLAN over IPv4, 114-byte inner frames, burst 32",
        &rows,
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("decap");
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function("aws_vxlan_burst32_with_copy_in", |b| {
        b.iter(|| {
            rig.call(|pkt| {
                let tunnel = decap(&cfg, pkt);
                let _ = black_box((tunnel, parse_inner(pkt.data(), pkt.pkt_len())));
            })
        })
    });
    group.finish();
    c.final_summary();
}
