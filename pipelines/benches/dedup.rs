//! De-duplication per packet, in bursts of 32: key hashing and table checks.
//!
//! Before criterion runs, a pass prints the least cost per packet (ns and TSC cycles, with the
//! line-rate budgets) of each: keys of 64-, 512- and 1,500-byte frames, and hits and misses in a
//! 2^20-entry (16 MiB) table at 50 % and 90 % load, checked one by one and with the burst's
//! buckets prefetched first (as the pipeline does for tables larger than L2).
//!
//! The table benches keep the load steady with a simulated clock: each new key advances it by
//! `window / (load × capacity)`, so about `load × capacity` entries are live at any time (the
//! others have expired) — the steady state of a broker whose packet rate × window is that many
//! entries.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Cost, least_cost, prefetch, print_costs};

use criterion::{BenchmarkId, Criterion, Throughput};
use etherparse::PacketBuilder;
use pipelines::VecBuf;
use pipelines::stage::dedup::{DedupKey, DedupKeyer, DedupTable, Seen};

use common::BURST;
const L2: usize = 14;
const CAPACITY: u32 = 1 << 20;
const WINDOW: Duration = Duration::from_millis(100);

/// 32 different Ethernet + IPv4 + TCP frames of `frame_len` bytes.
fn frames(frame_len: usize) -> Vec<VecBuf> {
    (0..BURST as u32)
        .map(|i| {
            let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40_000, 443, i, 65_535);
            let payload = vec![0x5a; frame_len - (L2 + 20 + 20)];
            let mut frame = Vec::with_capacity(frame_len);
            builder.write(&mut frame, &payload).expect("frame");
            VecBuf::new(&frame)
        })
        .collect()
}

/// Prefetches the two buckets a check of `key` for group 0 reads, as the pipeline does.
fn prefetch_buckets(table: &DedupTable, key: DedupKey) {
    prefetch(table.bucket_of(key, 0));
    prefetch(table.second_bucket_of(key, 0));
}

fn key(i: u64) -> DedupKey {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    DedupKey {
        hash: mix(i),
        fingerprint: mix(!i),
    }
}

/// A table in the steady state of `load`: the clock, the next key number, the step per key.
struct Steady {
    table: DedupTable,
    now_ns: u64,
    next_key: u64,
    step_ns: u64,
}

impl Steady {
    fn new(load: f64) -> Steady {
        let live = (f64::from(CAPACITY) * load) as u64;
        let mut steady = Steady {
            table: DedupTable::new(CAPACITY, WINDOW),
            now_ns: WINDOW.as_nanos() as u64,
            next_key: 0,
            step_ns: WINDOW.as_nanos() as u64 / live,
        };
        let mut evicted = 0;
        for _ in 0..3 * live {
            evicted += u64::from(steady.insert_next() == Seen::NewEvictedLive);
        }
        eprintln!(
            "load {load}: {} live of {} entries; last {} inserts evicted {evicted} live entries",
            steady.table.occupancy(steady.now_ns),
            steady.table.capacity(),
            3 * live
        );
        steady
    }

    fn insert_next(&mut self) -> Seen {
        self.now_ns += self.step_ns;
        self.next_key += 1;
        self.table.check(key(self.next_key), 0, self.now_ns)
    }
}

fn bench_keys(c: &mut Criterion) {
    let keyer = DedupKeyer::with_seed(1, false, false);
    let mut group = c.benchmark_group("dedup_key");
    group.throughput(Throughput::Elements(BURST as u64));
    for frame_len in [64, 512, 1500] {
        let burst = frames(frame_len);
        group.bench_with_input(
            BenchmarkId::new("ipv4_tcp", frame_len),
            &burst,
            |b, burst| {
                b.iter(|| {
                    for pkt in black_box(burst) {
                        black_box(keyer.key(pkt, L2, &[]));
                    }
                })
            },
        );
    }
    // A jumbo frame as a chain of two segments: the streaming path.
    let chained: Vec<VecBuf> = frames(1500)
        .iter()
        .map(|pkt| {
            let bytes = pkt.to_vec();
            VecBuf::from_segments(vec![bytes[..1000].to_vec(), bytes[1000..].to_vec()])
        })
        .collect();
    group.bench_with_input(
        BenchmarkId::new("ipv4_tcp_2_segments", 1500),
        &chained,
        |b, burst| {
            b.iter(|| {
                for pkt in black_box(burst) {
                    black_box(keyer.key(pkt, L2, &[]));
                }
            })
        },
    );
    group.finish();
}

fn bench_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("dedup_table");
    group.throughput(Throughput::Elements(BURST as u64));
    for load in [0.5, 0.9] {
        let percent = (load * 100.0) as u32;
        let mut steady = Steady::new(load);

        // Hits: keys inserted within the last quarter window, checked at a fixed time (a
        // duplicate writes nothing, so the table does not change).
        let recent = (f64::from(CAPACITY) * load / 4.0) as u64;
        let first_recent = steady.next_key - recent + 1;
        let mut offset = 0;
        let now_ns = steady.now_ns;
        group.bench_function(BenchmarkId::new("hit", format!("{percent}%_load")), |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    let k = key(first_recent + offset);
                    offset = (offset + 1) % recent;
                    let seen = steady.table.check(k, 0, now_ns);
                    debug_assert_eq!(seen, Seen::Duplicate);
                    black_box(seen);
                }
            })
        });

        // The same hits, the burst's buckets prefetched first (as the stage does).
        group.bench_function(
            BenchmarkId::new("hit_prefetched", format!("{percent}%_load")),
            |b| {
                b.iter(|| {
                    let keys: [DedupKey; BURST] =
                        std::array::from_fn(|i| key(first_recent + (offset + i as u64) % recent));
                    offset = (offset + BURST as u64) % recent;
                    for &k in &keys {
                        prefetch_buckets(&steady.table, k);
                    }
                    for k in keys {
                        black_box(steady.table.check(k, 0, now_ns));
                    }
                })
            },
        );

        // Misses: new keys, the clock moving on so that the load stays where it is.
        group.bench_function(BenchmarkId::new("miss", format!("{percent}%_load")), |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    black_box(steady.insert_next());
                }
            })
        });
        group.bench_function(
            BenchmarkId::new("miss_prefetched", format!("{percent}%_load")),
            |b| {
                b.iter(|| {
                    let keys: [DedupKey; BURST] =
                        std::array::from_fn(|i| key(steady.next_key + 1 + i as u64));
                    for &k in &keys {
                        prefetch_buckets(&steady.table, k);
                    }
                    for _ in 0..BURST {
                        black_box(steady.insert_next());
                    }
                })
            },
        );
        eprintln!(
            "load {load} after the miss bench: {} live",
            steady.table.occupancy(steady.now_ns)
        );
    }
    group.finish();
}

/// The least cost per packet of every key size and table case.
fn print_least_costs() {
    let keyer = DedupKeyer::with_seed(1, false, false);
    let mut rows: Vec<(String, Cost)> = Vec::new();
    for frame_len in [64, 512, 1500] {
        let burst = frames(frame_len);
        let cost = least_cost(BURST, 200, 256, || {
            for pkt in black_box(&burst) {
                black_box(keyer.key(pkt, L2, &[]));
            }
        });
        rows.push((format!("key, {frame_len}-byte frame"), cost));
    }
    for load in [0.5, 0.9] {
        let percent = (load * 100.0) as u32;
        let mut steady = Steady::new(load);
        let recent = (f64::from(CAPACITY) * load / 4.0) as u64;
        let first_recent = steady.next_key - recent + 1;
        let now_ns = steady.now_ns;
        let mut offset = 0;
        let mut hits = |prefetch: bool, steady: &mut Steady| {
            least_cost(BURST, 200, 256, || {
                let keys: [DedupKey; BURST] =
                    std::array::from_fn(|i| key(first_recent + (offset + i as u64) % recent));
                offset = (offset + BURST as u64) % recent;
                if prefetch {
                    for &k in &keys {
                        prefetch_buckets(&steady.table, k);
                    }
                }
                for k in keys {
                    black_box(steady.table.check(k, 0, now_ns));
                }
            })
        };
        rows.push((
            format!("table hit, {percent}% load"),
            hits(false, &mut steady),
        ));
        rows.push((
            format!("table hit, {percent}% load, prefetched"),
            hits(true, &mut steady),
        ));
        let misses = |prefetch: bool, steady: &mut Steady| {
            least_cost(BURST, 200, 256, || {
                if prefetch {
                    for i in 0..BURST as u64 {
                        prefetch_buckets(&steady.table, key(steady.next_key + 1 + i));
                    }
                }
                for _ in 0..BURST {
                    black_box(steady.insert_next());
                }
            })
        };
        rows.push((
            format!("table miss, {percent}% load"),
            misses(false, &mut steady),
        ));
        rows.push((
            format!("table miss, {percent}% load, prefetched"),
            misses(true, &mut steady),
        ));
    }
    print_costs("dedup, burst 32, table of 2^20 entries (16 MiB)", &rows);
}

fn main() {
    print_least_costs();
    let mut c = Criterion::default().configure_from_args();
    bench_keys(&mut c);
    bench_table(&mut c);
    c.final_summary();
}
