//! Filter classification per packet, compiled vs linear scan, for filters of 10 to 10,000 rules.
//!
//! The filters are random but shaped like real mirror filters: mostly IPv4 with some IPv6, VPC-like
//! address blocks with prefixes from /8 to /32 (/128), TCP/UDP rules with well-known destination
//! ports or ephemeral ranges, some ICMP, a third of the rules per direction. The 32 packets of a
//! burst are drawn from the same address space, half of them inside some rule's CIDR, so they
//! match rules all along the filter as well as the default.
//!
//! `cargo bench -p broker-pipelines --bench filter`

mod workload;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipelines::stage::filter::{CompiledFilter, classify_linear};
use workload::{BURST, Rng, SIZES, realistic_filter, varied_burst};

fn bench_filter(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_F11E);
    let cases: Vec<_> = SIZES
        .iter()
        .map(|&size| {
            let filter = realistic_filter(&mut rng, size);
            let burst = varied_burst(&mut rng, &filter);
            let started = Instant::now();
            let compiled = CompiledFilter::compile(&filter);
            let compile_time = started.elapsed();
            let verdicts: Vec<_> = burst
                .iter()
                .map(|(key, direction)| compiled.classify(key.as_ref(), *direction))
                .collect();
            let mut matched: Vec<u16> = verdicts.iter().filter_map(|v| v.rule).collect();
            matched.sort_unstable();
            eprintln!(
                "{size} rules: compiled in {compile_time:.1?}, {} KiB; burst: {} of {BURST} \
                 matched (rule indices {matched:?}), the rest took the default\n  {compiled:?}",
                compiled.memory_bytes() / 1024,
                matched.len(),
            );
            (size, filter, compiled, burst)
        })
        .collect();

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(BURST as u64));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (size, filter, compiled, burst) in &cases {
        group.bench_with_input(BenchmarkId::new("compiled", size), burst, |b, burst| {
            b.iter(|| {
                for (key, direction) in burst {
                    black_box(compiled.classify(black_box(key.as_ref()), *direction));
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("linear", size), burst, |b, burst| {
            b.iter(|| {
                for (key, direction) in burst {
                    black_box(classify_linear(black_box(filter), black_box(key.as_ref()), *direction));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_filter);
criterion_main!(benches);
