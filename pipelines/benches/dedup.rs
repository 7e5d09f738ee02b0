//! De-duplication per packet, in bursts of 32: key hashing and table checks.
//!
//! Before criterion runs, a pass prints the least cost per packet (ns and TSC cycles, with the
//! line-rate budgets) of each: keys of 64-, 200-, 256-, 512- and 1,500-byte frames (the key's
//! paths: L3 parts of up to 128 bytes, up to 240, just over, long), and hits and misses at
//! 50 % and 90 % load in three tables — 2^14 entries (stays in L2), 2^20 entries (the default
//! capacity) and as many entries as fit in 16 MiB (does not fit any cache) — checked one by one
//! and with the burst's buckets prefetched first (as the pipeline does for tables larger than L2).
//! It also prints, per table and load, how many inserts evicted a live entry.
//!
//! The table benches keep the load steady with a simulated clock: each new key advances it by
//! `window / (load × capacity)`, so about `load × capacity` entries are live at any time (the
//! others have expired) — the steady state of a broker whose packet rate × window is that many
//! entries.
//!
//! `cargo bench -p broker-pipelines --bench dedup` (add `-- nothing` to print the least costs and
//! skip criterion). With `BENCH_FIXED_CALLS=N BENCH_CASE=<case>` it only makes N bursts of one
//! table case in the steady state of a 2^14-entry table (`miss_50`, `miss_90`, `hit_50`,
//! `hit_90`), for `valgrind --tool=callgrind` (`scripts/bench/callgrind.sh --bench dedup`).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Cost, fixed_calls, least_cost, prefetch, print_costs};

use criterion::{BenchmarkId, Criterion, Throughput};
use etherparse::PacketBuilder;
use pipelines::VecBuf;
use pipelines::stage::dedup::{DedupKey, DedupKeyer, DedupTable, Seen};

use common::BURST;
const L2: usize = 14;
const WINDOW: Duration = Duration::from_millis(100);
/// The frame sizes whose keys are costed, one per path of the key (its L3 part is the frame less
/// 14 bytes): up to 128 bytes (64) and up to 240 (200) hashed in one pass; from 241 on, a second,
/// short call (256), then XXH3's stripe loop too (512, 1,500).
const KEY_FRAME_LENS: [usize; 5] = [64, 200, 256, 512, 1500];

/// A table size to bench: a number of entries, or as many entries as fit in some memory.
#[derive(Clone, Copy)]
enum Size {
    Entries(u32),
    Bytes(usize),
}

/// The tables benched: one that stays in L2, the default capacity, and a table far larger than
/// the caches (16 MiB, the size of the default capacity with 16-byte entries).
const SIZES: [Size; 3] = [
    Size::Entries(1 << 14),
    Size::Entries(1 << 20),
    Size::Bytes(16 << 20),
];

/// The sizes of [`SIZES`] that make different tables (with 16-byte entries, 16 MiB is 2^20).
fn sizes() -> Vec<Size> {
    let mut sizes: Vec<Size> = Vec::new();
    for size in SIZES {
        if sizes.iter().all(|s| s.capacity() != size.capacity()) {
            sizes.push(size);
        }
    }
    sizes
}

impl Size {
    fn capacity(self) -> u32 {
        match self {
            Size::Entries(entries) => entries,
            Size::Bytes(bytes) => {
                let probe = DedupTable::new(1 << 12, WINDOW);
                let per_entry = probe.memory_bytes() / probe.capacity();
                u32::try_from(bytes / per_entry).expect("entries fit u32")
            }
        }
    }

    fn name(self) -> String {
        let table = DedupTable::new(self.capacity(), WINDOW);
        let entries = table.capacity();
        let entries = if entries.is_power_of_two() {
            format!("2^{}", entries.trailing_zeros())
        } else {
            entries.to_string()
        };
        let bytes = table.memory_bytes();
        if bytes >= 1 << 20 {
            format!("{entries} entries ({} MiB)", bytes >> 20)
        } else {
            format!("{entries} entries ({} KiB)", bytes >> 10)
        }
    }
}

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

/// Prefetches the two buckets a check of `key` for group 0 reads, as the pipeline does
/// (`prefetcht0`, as the mbufs' hint).
fn prefetch_buckets(table: &DedupTable, key: DedupKey) {
    let [first, second] = table.buckets_of(key, 0);
    prefetch(first);
    prefetch(second);
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
    /// Keys inserted within the last quarter window: `recent` keys from `first_recent` on.
    first_recent: u64,
    recent: u64,
}

impl Steady {
    fn new(size: Size, load: f64) -> Steady {
        let table = DedupTable::new(size.capacity(), WINDOW);
        let live = (table.capacity() as f64 * load) as u64;
        let mut steady = Steady {
            table,
            now_ns: WINDOW.as_nanos() as u64,
            next_key: 0,
            step_ns: WINDOW.as_nanos() as u64 / live,
            first_recent: 0,
            recent: live / 4,
        };
        let mut evicted = 0;
        for _ in 0..3 * live {
            evicted += u64::from(steady.insert_next() == Seen::NewEvictedLive);
        }
        steady.first_recent = steady.next_key - steady.recent + 1;
        eprintln!(
            "{}, load {load}: {} live; the {} inserts from empty evicted {evicted} live entries \
             ({:.2} %)",
            size.name(),
            steady.table.occupancy(steady.now_ns),
            3 * live,
            100.0 * evicted as f64 / (3 * live) as f64
        );
        steady
    }

    fn insert_next(&mut self) -> Seen {
        self.now_ns += self.step_ns;
        self.next_key += 1;
        self.table.check(key(self.next_key), 0, self.now_ns)
    }

    /// The `i`-th recent key after `offset`: inserted within the last quarter window, so a
    /// check of it at `now_ns` is a hit (and writes nothing).
    fn recent_key(&self, offset: u64, i: u64) -> DedupKey {
        key(self.first_recent + (offset + i) % self.recent)
    }

    /// Checks a burst of recent keys (hits) at the current time, optionally prefetching the
    /// burst's buckets first.
    fn hits(&self, offset: &mut u64, prefetch: bool) {
        let keys: [DedupKey; BURST] = std::array::from_fn(|i| self.recent_key(*offset, i as u64));
        *offset = (*offset + BURST as u64) % self.recent;
        if prefetch {
            for &k in &keys {
                prefetch_buckets(&self.table, k);
            }
        }
        for k in keys {
            let seen = self.table.check(k, 0, self.now_ns);
            debug_assert_eq!(seen, Seen::Duplicate);
            black_box(seen);
        }
    }

    /// Checks a burst of new keys (misses), the clock moving on so that the load stays where it
    /// is, optionally prefetching the burst's buckets first.
    fn misses(&mut self, prefetch: bool) {
        if prefetch {
            for i in 0..BURST as u64 {
                prefetch_buckets(&self.table, key(self.next_key + 1 + i));
            }
        }
        for _ in 0..BURST {
            black_box(self.insert_next());
        }
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
    for size in sizes() {
        let entries = size.capacity();
        for load in [0.5, 0.9] {
            let percent = (load * 100.0) as u32;
            let mut steady = Steady::new(size, load);
            let mut offset = 0;
            let id = |case: &str| BenchmarkId::new(case, format!("{entries}_{percent}%_load"));
            group.bench_function(id("hit"), |b| b.iter(|| steady.hits(&mut offset, false)));
            group.bench_function(id("hit_prefetched"), |b| {
                b.iter(|| steady.hits(&mut offset, true))
            });
            group.bench_function(id("miss"), |b| b.iter(|| steady.misses(false)));
            group.bench_function(id("miss_prefetched"), |b| b.iter(|| steady.misses(true)));
        }
    }
    group.finish();
}

/// The least cost per packet of every key size and table case.
fn print_least_costs() {
    let keyer = DedupKeyer::with_seed(1, false, false);
    let mut rows: Vec<(String, Cost)> = Vec::new();
    for frame_len in KEY_FRAME_LENS {
        let burst = frames(frame_len);
        let cost = least_cost(BURST, 200, 256, || {
            for pkt in black_box(&burst) {
                black_box(keyer.key(pkt, L2, &[]));
            }
        });
        rows.push((format!("key, {frame_len}-byte frame"), cost));
    }
    print_costs("dedup keys, burst 32", &rows);
    for size in sizes() {
        let mut rows: Vec<(String, Cost)> = Vec::new();
        for load in [0.5, 0.9] {
            let percent = (load * 100.0) as u32;
            let mut steady = Steady::new(size, load);
            let mut offset = 0;
            for prefetch in [false, true] {
                let cost = least_cost(BURST, 200, 256, || steady.hits(&mut offset, prefetch));
                let how = if prefetch { ", prefetched" } else { "" };
                rows.push((format!("hit, {percent}% load{how}"), cost));
            }
            for prefetch in [false, true] {
                let cost = least_cost(BURST, 200, 256, || steady.misses(prefetch));
                let how = if prefetch { ", prefetched" } else { "" };
                rows.push((format!("miss, {percent}% load{how}"), cost));
            }
        }
        print_costs(&format!("dedup table of {}, burst 32", size.name()), &rows);
    }
}

/// `calls` bursts of one table case (`miss_50`, `hit_90`, …) in a 2^14-entry table, nothing
/// else: the steady state for callgrind.
fn run_fixed_calls(calls: usize) {
    let wanted = std::env::var("BENCH_CASE").unwrap_or_else(|_| "miss_50".into());
    let (kind, percent) = wanted
        .split_once('_')
        .expect("BENCH_CASE: hit_50, miss_90, …");
    let load = match percent {
        "50" => 0.5,
        "90" => 0.9,
        _ => panic!("BENCH_CASE: the load is 50 or 90"),
    };
    let mut steady = Steady::new(Size::Entries(1 << 14), load);
    let mut offset = 0;
    for _ in 0..calls {
        match kind {
            "hit" => steady.hits(&mut offset, false),
            "miss" => steady.misses(false),
            _ => panic!("BENCH_CASE: hit or miss"),
        }
    }
}

fn main() {
    if let Some(calls) = fixed_calls() {
        run_fixed_calls(calls);
        return;
    }
    print_least_costs();
    let mut c = Criterion::default().configure_from_args();
    bench_keys(&mut c);
    bench_table(&mut c);
    c.final_summary();
}
