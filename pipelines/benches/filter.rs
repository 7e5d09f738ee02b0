//! Filter classification per packet, compiled vs linear scan, for filters of 10 to 10,000 rules.
//! The compiled filter is measured as the pipeline calls it: `classify`, one packet at a time.
//!
//! The filters are random but shaped like real mirror filters (see `filter/workload.rs`). Each
//! measured iteration classifies one burst of 32 packets; the iterations take 256 different
//! bursts in turn, so that neither the caches nor the branch predictor can learn one burst (a
//! repeated burst flatters branchy code: `classify_hot` shows by how much). Criterion's
//! throughput is packets: its time per element is the cost per packet.
//!
//! Before criterion runs, a short pass prints the *minimum* cost per packet (ns and TSC cycles) over many rounds for
//! each filter size, and the 1,000-to-10 ratio: on a shared machine the minimum is steadier than
//! criterion's mean, which other processes inflate.
//!
//! `cargo bench -p broker-pipelines --bench filter`

#[path = "common/mod.rs"]
mod common;
#[path = "filter/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{fixed_calls, least_cost, print_costs};

use config::Direction;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipelines::FlowKey;
use pipelines::stage::filter::{CompiledFilter, classify_linear};
use workload::{BURST, Rng, SIZES, realistic_filter, varied_burst};

/// Bursts per filter, taken in turn.
const BURSTS: usize = 256;

struct Burst {
    keys: Vec<Option<FlowKey>>,
    directions: Vec<Option<Direction>>,
}

fn bench_filter(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_F11E);
    let cases: Vec<_> = SIZES
        .iter()
        .map(|&size| {
            let filter = realistic_filter(&mut rng, size);
            let bursts: Vec<Burst> = (0..BURSTS)
                .map(|_| {
                    let packets = varied_burst(&mut rng, &filter);
                    Burst {
                        keys: packets.iter().map(|&(key, _)| key).collect(),
                        directions: packets.iter().map(|&(_, direction)| direction).collect(),
                    }
                })
                .collect();
            let started = Instant::now();
            let compiled = CompiledFilter::compile(&filter);
            let compile_time = started.elapsed();
            let (mut matched, mut packets) = (0, 0);
            for burst in &bursts {
                for (key, &direction) in burst.keys.iter().zip(&burst.directions) {
                    matched +=
                        usize::from(compiled.classify(key.as_ref(), direction).rule.is_some());
                    packets += 1;
                }
            }
            eprintln!(
                "{size} rules: compiled in {compile_time:.1?}, {} KiB; {matched} of {packets} \
                 packets match a rule\n  {compiled:?}",
                compiled.memory_bytes() / 1024,
            );
            (size, filter, compiled, bursts)
        })
        .collect::<Vec<Case>>();

    if let Some(calls) = fixed_calls() {
        // For callgrind: `calls` bursts through the classify of one size (BENCH_CASE).
        let size: usize = std::env::var("BENCH_CASE")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1000);
        let (_, _, compiled, bursts) = cases
            .iter()
            .find(|c| c.0 == size)
            .expect("BENCH_CASE: a filter size");
        for call in 0..calls {
            classify(compiled, &bursts[call % BURSTS]);
        }
        std::process::exit(0);
    }
    print_minimum_costs(&cases);

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(BURST as u64));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (size, filter, compiled, bursts) in &cases {
        let mut turn = (0..BURSTS).cycle();
        let mut next_burst = move || &bursts[turn.next().unwrap_or(0)];
        group.bench_function(BenchmarkId::new("classify", size), |b| {
            b.iter(|| classify(compiled, next_burst()))
        });
        group.bench_function(BenchmarkId::new("linear", size), |b| {
            b.iter(|| {
                let burst = next_burst();
                for (key, &direction) in burst.keys.iter().zip(&burst.directions) {
                    black_box(classify_linear(filter, black_box(key.as_ref()), direction));
                }
            })
        });
        group.bench_function(BenchmarkId::new("classify_hot", size), |b| {
            b.iter(|| classify(compiled, &bursts[0]))
        });
    }
    group.finish();
}

type Case = (usize, config::Filter, CompiledFilter, Vec<Burst>);

/// The verdicts of a burst, one packet at a time, as the pipeline asks for them.
#[inline]
fn classify(compiled: &CompiledFilter, burst: &Burst) {
    for (key, &direction) in burst.keys.iter().zip(&burst.directions) {
        black_box(compiled.classify(black_box(key.as_ref()), direction));
    }
}

/// The least cost per packet of each filter size (TSC cycles and ns), and the 1,000-to-10 ratio.
fn print_minimum_costs(cases: &[Case]) {
    let mut rows = Vec::new();
    let mut ratio_inputs = Vec::new();
    for (size, filter, compiled, bursts) in cases {
        let mut turn = (0..BURSTS).cycle();
        let single = least_cost(BURST, 300, BURSTS, || {
            classify(compiled, &bursts[turn.next().unwrap_or(0)]);
        });
        let linear = least_cost(BURST, if *size > 1000 { 2 } else { 10 }, BURSTS, || {
            let burst = &bursts[turn.next().unwrap_or(0)];
            for (key, &direction) in burst.keys.iter().zip(&burst.directions) {
                black_box(classify_linear(filter, black_box(key.as_ref()), direction));
            }
        });
        rows.push((format!("{size} rules, classify"), single));
        rows.push((format!("{size} rules, linear scan"), linear));
        ratio_inputs.push((*size, single));
    }
    print_costs("filter, burst 32", &rows);
    let at = |rules: usize| ratio_inputs.iter().find(|row| row.0 == rules);
    if let (Some(small), Some(large)) = (at(10), at(1_000)) {
        eprintln!(
            "1,000 rules / 10 rules: classify {:.2}",
            large.1.cycles / small.1.cycles
        );
    }
}

criterion_group!(benches, bench_filter);
criterion_main!(benches);
