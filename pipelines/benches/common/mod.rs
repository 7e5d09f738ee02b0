//! What every bench of this crate shares: the time-stamp counter, the least cost per packet over
//! many rounds (steadier than a mean on a shared machine), and the cycle budget of a line rate.
//!
//! Each bench prints, before criterion runs, a table of the *least* cost per packet it measured
//! over many rounds, in nanoseconds and in TSC cycles, beside what 10, 25 and 100 GbE of
//! minimum-size mirrored frames leave per packet on one core. Criterion's own report (time per
//! burst, and its throughput in packets per second) follows.
#![allow(dead_code)] // each bench uses a different subset

use std::time::Instant;

/// Packets per burst, as the worker receives them.
pub const BURST: usize = 32;

/// A minimum-size mirrored frame on the wire: a 64-byte inner frame, VXLAN (8), UDP (8), IPv4
/// (20) and Ethernet (14) around it.
pub const MIN_MIRROR_FRAME: u64 = 114;
/// Preamble, start delimiter and inter-frame gap: what every frame costs on the wire beyond its
/// bytes.
pub const WIRE_OVERHEAD: u64 = 20;
/// Line rates the budgets are given for, in bits per second.
pub const LINE_RATES_GBPS: [u64; 3] = [10, 25, 100];

/// Reads the time-stamp counter.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions and exists on every x86_64 CPU; it reads a counter
    // and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Elsewhere, nanoseconds stand in for cycles (and [`tsc_hz`] is 1 GHz).
#[cfg(not(target_arch = "x86_64"))]
pub fn tsc() -> u64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// TSC ticks per second, measured against the OS clock over 200 ms (once per process).
pub fn tsc_hz() -> f64 {
    use std::sync::OnceLock;
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| {
        let (t0, c0) = (Instant::now(), tsc());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (t1, c1) = (Instant::now(), tsc());
        (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
    })
}

/// Starts loading the cache line that holds `value`, as `drivers` does for mbufs
/// (`PacketBuf::prefetch`: DPDK's `rte_prefetch0` is `prefetcht0`). The benches' buffers are not
/// mbufs, and safe code has no prefetch instruction, so the benches bring their own.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` (SSE, in every x86_64 CPU) is a hint: it reads nothing the program can
    // observe, writes nothing and never faults, whatever the address; this one is a reference.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// A cost per packet.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub cycles: f64,
}

impl Cost {
    pub fn ns(self) -> f64 {
        self.cycles * 1e9 / tsc_hz()
    }

    pub fn minus(self, other: Cost) -> Cost {
        Cost {
            cycles: self.cycles - other.cycles,
        }
    }
}

/// The least cost per packet of `f`, which handles `packets` packets per call, over `rounds`
/// rounds of `calls` calls each.
pub fn least_cost(packets: usize, rounds: usize, calls: usize, mut f: impl FnMut()) -> Cost {
    for _ in 0..calls {
        f(); // warm the caches and the branch predictor
    }
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = tsc();
        for _ in 0..calls {
            f();
        }
        let cycles = (tsc() - start) as f64 / (calls * packets) as f64;
        best = best.min(cycles);
    }
    Cost { cycles: best }
}

/// Cycles one core has per packet at `gbps` of frames of `frame_bytes` (without preamble and
/// gap): the TSC rate divided by the packet rate.
pub fn budget_cycles(gbps: u64, frame_bytes: u64) -> f64 {
    let packets_per_second = gbps as f64 * 1e9 / ((frame_bytes + WIRE_OVERHEAD) * 8) as f64;
    tsc_hz() / packets_per_second
}

/// Prints the least costs measured, with the budgets of minimum-size mirrored frames beside
/// them, as one table on stderr.
pub fn print_costs(title: &str, rows: &[(String, Cost)]) {
    let hz = tsc_hz();
    eprintln!();
    eprintln!("{title}: least cost per packet (TSC {:.3} GHz)", hz / 1e9);
    let budgets: Vec<String> = LINE_RATES_GBPS
        .iter()
        .map(|&g| format!("{g} GbE {:.0}", budget_cycles(g, MIN_MIRROR_FRAME)))
        .collect();
    eprintln!(
        "  budget per packet on one core, {MIN_MIRROR_FRAME}-byte frames, in cycles: {}",
        budgets.join(", ")
    );
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    eprintln!(
        "  {:width$}  {:>9}  {:>9}  {:>9}",
        "", "ns/pkt", "cycles", "% of 10G"
    );
    for (name, cost) in rows {
        eprintln!(
            "  {name:width$}  {:>9.1}  {:>9.1}  {:>8.1}%",
            cost.ns(),
            cost.cycles,
            100.0 * cost.cycles / budget_cycles(10, MIN_MIRROR_FRAME)
        );
    }
    eprintln!();
}

/// Bench binaries run as `cargo bench` runs them (criterion) unless `BENCH_FIXED_CALLS=N` is set:
/// then the bench only makes `N` calls of its measured function and exits, so that
/// `valgrind --tool=callgrind` counts the instructions of a known number of packets.
pub fn fixed_calls() -> Option<usize> {
    std::env::var("BENCH_FIXED_CALLS").ok()?.parse().ok()
}
