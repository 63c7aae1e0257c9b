use pfn_distribution::{equal_width_borders, BarDistribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn main() {
    let (rows, k) = (3200, 1000);
    let dist = BarDistribution::full_support(equal_width_borders(k, -3.0, 3.0).unwrap()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let logits: Vec<f32> = (0..rows * k).map(|_| rng.random_range(-5.0..5.0)).collect();
    let targets: Vec<f32> = (0..rows).map(|_| rng.random_range(-4.0..4.0)).collect();
    let mut grad = vec![0.0f32; rows * k];
    let mut best = f64::INFINITY;
    for _ in 0..200 {
        let t = Instant::now();
        std::hint::black_box(dist.nll_and_grad(&logits, &targets, &mut grad, 1.0).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("nll_and_grad min {:.3} ms", best * 1e3);
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = Instant::now();
        let mut total = 0.0;
        for r in 0..rows {
            let (l, g) = dist.nll_with_grad(&logits[r * k..(r + 1) * k], f64::from(targets[r])).unwrap();
            total += l + g[0];
        }
        std::hint::black_box(total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("per-row f64 min {:.3} ms", best * 1e3);
}
