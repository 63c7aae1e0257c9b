//! Fit + predict of the exact GP posterior (n = 100 and 1000, d = 1 and 5, 100 test points),
//! plus the one-step-ahead predictives and the LML gradient used by type-II fitting.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use pfn_gp::{sequential_predictive, ExactGp, GpHyper, KernelKind, LmlEvaluator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (6.0 * x[i * d]).sin() + 0.1 * rng.random::<f64>())
        .collect();
    (x, y)
}

fn hyper(d: usize) -> GpHyper {
    // The paper's Fig. 4a setting: lengthscale 0.6 (1-D: 0.1), outputscale 1, noise 1e-4.
    let ls = if d == 1 { 0.1 } else { 0.6 };
    GpHyper::new(KernelKind::Rbf, vec![ls], 1.0, 1e-4).unwrap()
}

fn bench_fit_predict(c: &mut Criterion) {
    let mut group = c.benchmark_group("fit_predict");
    for &n in &[100usize, 1000] {
        for &d in &[1usize, 5] {
            let (x, y) = data(n, d, 1);
            let (xt, _) = data(100, d, 2);
            let h = hyper(d);
            if n >= 1000 {
                group.sample_size(20);
            } else {
                group.sample_size(100);
            }
            group.bench_with_input(BenchmarkId::new(format!("d{d}"), n), &n, |b, _| {
                b.iter(|| {
                    let gp = ExactGp::fit(black_box(&x), black_box(&y), d, &h).unwrap();
                    black_box(gp.predict(black_box(&xt)).unwrap())
                })
            });
        }
    }
    group.finish();
}

fn bench_sequential(c: &mut Criterion) {
    let mut group = c.benchmark_group("sequential_predictive");
    group.sample_size(20);
    for &n in &[100usize, 1000] {
        let (x, y) = data(n, 5, 3);
        let h = hyper(5);
        group.bench_with_input(BenchmarkId::new("d5", n), &n, |b, _| {
            b.iter(|| black_box(sequential_predictive(&x, &y, 5, &h).unwrap()))
        });
    }
    group.finish();
}

fn bench_lml_grad(c: &mut Criterion) {
    let mut group = c.benchmark_group("lml_grad");
    for &n in &[30usize, 100] {
        let (x, y) = data(n, 5, 4);
        let h = GpHyper::new(KernelKind::Matern52, vec![0.5; 5], 1.0, 0.01).unwrap();
        let mut ev = LmlEvaluator::new(&x, &y, 5).unwrap();
        let mut g = vec![0.0; h.num_log_params()];
        group.bench_with_input(BenchmarkId::new("matern_ard_d5", n), &n, |b, _| {
            b.iter(|| black_box(ev.value_and_grad(&h, None, &mut g).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fit_predict, bench_sequential, bench_lml_grad);
criterion_main!(benches);
