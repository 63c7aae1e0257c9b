//! Sampling throughput of the GP priors, in datasets per second (criterion "elem/s").
//!
//! Run with `cargo bench -p pfn-prior`. Each iteration samples one full batch with
//! `Prior::sample_batch` on the global rayon pool (all cores), with a new batch index every time.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pfn_prior::{prior_by_name, Prior};

fn bench_priors(c: &mut Criterion) {
    let cases: &[(&str, usize, usize, usize)] = &[
        // (prior, features, seq_len, batch)
        ("gp-1d", 1, 100, 64),
        ("gp-5d", 5, 100, 64),
        ("gp-hyper", 1, 100, 64),
        ("gp-hyper", 5, 100, 64),
        ("gp-1d", 1, 1000, 8),
        ("gp-5d", 5, 1000, 8),
        ("gp-hyper", 1, 1000, 8),
        ("ridge", 5, 100, 64),
        ("bnn", 3, 100, 64),
    ];
    let mut group = c.benchmark_group("sample_batch");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for &(name, features, seq_len, batch) in cases {
        let prior = prior_by_name(name).expect("registered prior");
        group.throughput(Throughput::Elements(batch as u64));
        let id = BenchmarkId::new(
            format!("{name}/f{features}"),
            format!("n{seq_len}xb{batch}"),
        );
        let mut batch_index = 0u64;
        group.bench_function(id, |b| {
            b.iter(|| {
                batch_index += 1;
                let out = prior
                    .sample_batch(0, batch_index, batch, seq_len, features)
                    .expect("sampling succeeds");
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_priors);
criterion_main!(benches);
