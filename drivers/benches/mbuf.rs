//! What a tunnelled copy costs in mbufs beyond a device copy: the header mbuf that
//! [`PacketBuf::prepend`] takes from the pool and chains in front of the copy, and the extra
//! segment the transmit side frees. The pipeline bench runs the egress step on pool buffers
//! that prepend into their own headroom; this bench measures the real thing with DPDK (EAL
//! with `--no-huge`, the bench thread is the main lcore, so the pool's per-lcore cache is used
//! as a worker's is).
//!
//! Each case handles a burst of 32 packets per call, as a worker does, on copies of 32 resident
//! frames, and frees the burst with `rte_pktmbuf_free_bulk` as the TX side does for what it
//! sent. It prints the least cycles per packet over many rounds (steadier than a mean on a
//! shared machine):
//! - a second handle for a fan-out copy, by size: `rte_pktmbuf_clone` (indirect mbufs, atomic
//!   reference counts) against a copy into a fresh mbuf ([`Mbuf::clone_indirect`],
//!   [`Mbuf::copy`]); [`PacketBuf::share`] copies up to [`drivers::mbuf::SHARE_COPY_MAX`] bytes;
//! - the header of a tunnelled copy: of 50 bytes (VXLAN over IPv4) and 82 (GENEVE over IPv6
//!   with the broker's option), in a header mbuf chained in front of a clone, and in the
//!   headroom of a packet whose buffer is its own (a copy, or the original of a packet with one
//!   copy), each against the same handle without the header.
//!
//! `cargo bench -p broker-drivers --bench mbuf`

use drivers::{Eal, Mbuf, Mempool, free_bulk, rdtsc};
use packet::PacketBuf;

const BURST: usize = 32;
const ROUNDS: usize = 300;
const CALLS: usize = 256;

/// The least cycles per packet of `f` (one burst per call) over `ROUNDS` rounds of `CALLS`
/// calls, after one round of warm-up.
fn least_cycles(mut f: impl FnMut()) -> f64 {
    for _ in 0..CALLS {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = rdtsc();
        for _ in 0..CALLS {
            f();
        }
        best = best.min((rdtsc() - start) as f64 / (CALLS * BURST) as f64);
    }
    best
}

/// The least cycles per packet of making a burst of handles on `originals` with `handle`,
/// writing a header of `header` bytes in front of each when it is not 0, then freeing them.
fn handles(originals: &[Mbuf], header: usize, handle: impl Fn(&Mbuf) -> Option<Mbuf>) -> f64 {
    let mut burst: [Option<Mbuf>; BURST] = [const { None }; BURST];
    least_cycles(|| {
        for (slot, original) in burst.iter_mut().zip(originals) {
            let mut copy = handle(original).expect("a buffer");
            if header > 0 {
                copy.prepend(header).expect("a header")[0] = 1;
            }
            *slot = Some(copy);
        }
        free_bulk(&mut burst);
    })
}

fn main() {
    let args = drivers::isolated_args(256, &["-l", "0"]);
    let eal = Eal::init(&args).expect("EAL init");
    // As the broker sizes a worker's pool: a per-lcore cache of 256.
    let pool = Mempool::new(&eal, "bench_pool", 4095, 256, 2048, None).expect("pool");
    let frames = |len: usize| -> Vec<Mbuf> {
        (0..BURST)
            .map(|i| {
                let mut m = pool.alloc().expect("mbuf");
                let frame: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
                assert!(m.append(&frame));
                m
            })
            .collect()
    };

    let mut rows: Vec<(String, f64)> = Vec::new();
    for len in [64, 128, 256, 512, 1024, 1500] {
        let originals = frames(len);
        let clone = handles(&originals, 0, Mbuf::clone_indirect);
        let copy = handles(&originals, 0, Mbuf::copy);
        rows.push((format!("{len}-byte packet: clone + free"), clone));
        rows.push((format!("{len}-byte packet: copy + free"), copy));
    }
    let originals = frames(64);
    let clone = handles(&originals, 0, Mbuf::clone_indirect);
    let copy = handles(&originals, 0, Mbuf::copy);
    for header in [50, 82] {
        let chained = handles(&originals, header, Mbuf::clone_indirect);
        let in_place = handles(&originals, header, Mbuf::copy);
        rows.push((format!("clone + header mbuf of {header} + free"), chained));
        rows.push((format!("  header mbuf of {header} alone"), chained - clone));
        rows.push((format!("copy + {header} in headroom + free"), in_place));
        rows.push((format!("  {header} in headroom alone"), in_place - copy));
    }
    drop(originals);
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");

    let hz = eal.tsc_hz() as f64;
    eprintln!();
    eprintln!(
        "mbuf work per packet, bursts of {BURST}: least cost (TSC {:.3} GHz)",
        hz / 1e9
    );
    for (name, cycles) in rows {
        eprintln!(
            "  {name:42} {:>7.1} ns {:>7.1} cycles",
            cycles * 1e9 / hz,
            cycles
        );
    }
}
