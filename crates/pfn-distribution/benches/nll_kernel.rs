//! Benchmark of the training loss kernel at the size of a training step (3200 rows x 1000 buckets).
//!
//! Run with `cargo bench -p pfn-distribution --bench nll_kernel`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pfn_distribution::{equal_width_borders, BarDistribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench_nll(c: &mut Criterion) {
    let (rows, k) = (3200, 1000);
    let dist = BarDistribution::full_support(equal_width_borders(k, -3.0, 3.0).unwrap()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let logits: Vec<f32> = (0..rows * k).map(|_| rng.random_range(-5.0..5.0)).collect();
    let targets: Vec<f32> = (0..rows).map(|_| rng.random_range(-4.0..4.0)).collect();
    let mut grad = vec![0.0f32; rows * k];
    let mut group = c.benchmark_group("bar_nll_3200x1000");
    group.sample_size(30);
    group.bench_function("nll_and_grad (batched, rayon)", |b| {
        b.iter(|| {
            dist.nll_and_grad(
                black_box(&logits),
                black_box(&targets),
                &mut grad,
                1.0 / rows as f32,
            )
            .unwrap()
        })
    });
    group.bench_function("nll_with_grad per row (f64, serial, allocating)", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for r in 0..rows {
                let (l, g) = dist
                    .nll_with_grad(&logits[r * k..(r + 1) * k], f64::from(targets[r]))
                    .unwrap();
                total += l + g[0];
            }
            total
        })
    });
    group.bench_function("log_density_batch (f64, rayon)", |b| {
        b.iter(|| {
            dist.log_density_batch(black_box(&logits), black_box(&targets))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_nll);
criterion_main!(benches);
