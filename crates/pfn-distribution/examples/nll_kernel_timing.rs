//! Minimum-of-N wall-clock timing of the training loss kernel (3200 rows x 1000 buckets), robust
//! on a shared machine where criterion's averages are noisy. Compares it with the per-row f64 API.
//!
//! Run with `cargo run --release -p pfn-distribution --example nll_kernel_timing`
//! (set `RAYON_NUM_THREADS=1` for one core).

use std::time::Instant;

use pfn_distribution::{equal_width_borders, BarDistribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let (rows, k) = (3200, 1000);
    let dist = BarDistribution::full_support(equal_width_borders(k, -3.0, 3.0).unwrap()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let logits: Vec<f32> = (0..rows * k).map(|_| rng.random_range(-5.0..5.0)).collect();
    let targets: Vec<f32> = (0..rows).map(|_| rng.random_range(-4.0..4.0)).collect();
    let mut grad = vec![0.0f32; rows * k];

    let mut best = f64::INFINITY;
    for _ in 0..200 {
        let start = Instant::now();
        let total = dist
            .nll_and_grad(&logits, &targets, &mut grad, 1.0 / rows as f32)
            .unwrap();
        std::hint::black_box(total);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("nll_and_grad (batched):          min {:.3} ms", best * 1e3);

    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let start = Instant::now();
        let mut total = 0.0;
        for r in 0..rows {
            let z = &logits[r * k..(r + 1) * k];
            let (loss, g) = dist.nll_with_grad(z, f64::from(targets[r])).unwrap();
            total += loss + g[0];
        }
        std::hint::black_box(total);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("nll_with_grad per row (f64):     min {:.3} ms", best * 1e3);
}
