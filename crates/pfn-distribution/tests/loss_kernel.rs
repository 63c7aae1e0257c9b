//! The NLL gradient against finite differences, and the batched kernel against the per-row API.

use pfn_distribution::{equal_width_borders, BarDistribution, DistributionError, Support};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_logits(rng: &mut ChaCha8Rng, n: usize, spread: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-spread..spread)).collect()
}

fn distributions(k: usize) -> Vec<BarDistribution> {
    let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
    let mut borders = vec![-3.0];
    for _ in 0..k {
        let last = *borders.last().unwrap();
        borders.push(last + rng.random_range(0.02..0.4));
    }
    vec![
        BarDistribution::bounded(borders.clone()).unwrap(),
        BarDistribution::full_support(borders).unwrap(),
    ]
}

/// Targets covering both tails, the interior, the borders and a NaN (ignored). For bounded
/// support, a target whose f32 rounding leaves the support is replaced by the midpoint.
fn targets_for(d: &BarDistribution, rows: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let b = d.borders();
    let (lo, hi) = (b[0], b[d.num_buckets()]);
    let full = d.support() == Support::Full;
    (0..rows)
        .map(|r| match r % 7 {
            0 if full => (lo - 1.5) as f32,
            1 if full => (hi + 0.7) as f32,
            2 => b[r % b.len()] as f32,
            3 => f32::NAN,
            _ => rng.random_range(lo..hi) as f32,
        })
        .map(|y| {
            let inside = (lo..=hi).contains(&f64::from(y));
            if full || y.is_nan() || inside {
                y
            } else {
                (0.5 * (lo + hi)) as f32
            }
        })
        .collect()
}

#[test]
fn nll_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for d in distributions(12) {
        let b = d.borders().to_vec();
        let ys = match d.support() {
            Support::Full => vec![b[0] - 2.0, 0.5 * (b[0] + b[1]), b[5] + 0.01, b[12] + 1.0],
            Support::Bounded => vec![b[0], 0.5 * (b[3] + b[4]), b[12]],
        };
        for y in ys {
            let z = random_logits(&mut rng, 12, 3.0);
            let (nll, grad) = d.nll_with_grad(&z, y).unwrap();
            assert!((nll - d.nll(&z, y).unwrap()).abs() < 1e-12);
            for j in 0..z.len() {
                let h = 1e-2f32;
                let (mut zp, mut zm) = (z.clone(), z.clone());
                zp[j] += h;
                zm[j] -= h;
                let step = f64::from(zp[j]) - f64::from(zm[j]);
                let fd = (d.nll(&zp, y).unwrap() - d.nll(&zm, y).unwrap()) / step;
                assert!(
                    (fd - grad[j]).abs() < 2e-5,
                    "{:?} y={y} j={j}: analytic {} vs finite difference {fd}",
                    d.support(),
                    grad[j]
                );
            }
        }
        // NaN target: ignored.
        let z = random_logits(&mut rng, 12, 3.0);
        let (nll, grad) = d.nll_with_grad(&z, f64::NAN).unwrap();
        assert_eq!(nll, 0.0);
        assert!(grad.iter().all(|&g| g == 0.0));
    }
}

#[test]
fn batched_kernel_equals_the_per_row_api() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // 53 buckets (not a multiple of the 8 lanes) and 1000 buckets with rows spanning several chunks.
    for (k, rows) in [(53, 37), (1000, 70)] {
        for d in distributions(k) {
            let logits = random_logits(&mut rng, rows * k, 8.0);
            let targets = targets_for(&d, rows, &mut rng);
            let scale = 0.37f32;
            let mut grad = vec![f32::NAN; rows * k];
            let total = d.nll_and_grad(&logits, &targets, &mut grad, scale).unwrap();
            let mut expected_total = 0.0;
            for r in 0..rows {
                let z = &logits[r * k..(r + 1) * k];
                let (nll, g) = d.nll_with_grad(z, f64::from(targets[r])).unwrap();
                expected_total += nll;
                if targets[r].is_nan() {
                    assert_eq!(nll, 0.0);
                    assert!(grad[r * k..(r + 1) * k].iter().all(|&g| g == 0.0));
                    continue;
                }
                let pred = d.predict(z).unwrap();
                let log_probs = pred.log_probabilities();
                let s = f64::from(scale);
                for j in 0..k {
                    let want = s * g[j];
                    let got = f64::from(grad[r * k + j]);
                    // The documented bound: relative 2e-7 + 6e-8 |log p| on each probability,
                    // plus f32 rounding of the result.
                    let p = log_probs[j].exp();
                    let tol =
                        s * p * (3e-7 + 1e-7 * log_probs[j].abs()) + 1.2e-7 * want.abs() + 1e-30;
                    assert!(
                        (got - want).abs() <= tol,
                        "{:?} K={k} row {r} bucket {j}: {got} vs {want}",
                        d.support()
                    );
                }
            }
            assert!(
                (total - expected_total).abs() < 1e-6 * rows as f64,
                "{:?} K={k}: total {total} vs per-row {expected_total}",
                d.support()
            );
            // Deterministic and independent of scheduling.
            let mut grad2 = vec![0.0f32; rows * k];
            let total2 = d
                .nll_and_grad(&logits, &targets, &mut grad2, scale)
                .unwrap();
            assert_eq!(total.to_bits(), total2.to_bits());
            assert_eq!(grad, grad2);
            // Evaluation: log densities per row.
            let log_dens = d.log_density_batch(&logits, &targets).unwrap();
            for r in 0..rows {
                let z = &logits[r * k..(r + 1) * k];
                let want = d.log_density(z, f64::from(targets[r])).unwrap();
                if want.is_nan() {
                    assert!(log_dens[r].is_nan());
                } else {
                    assert_eq!(log_dens[r], want);
                    let nll = d.nll(z, f64::from(targets[r])).unwrap();
                    assert!((log_dens[r] + nll).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn batched_kernel_reports_bad_arguments() {
    let d = BarDistribution::bounded(equal_width_borders(4, 0.0, 1.0).unwrap()).unwrap();
    let logits = vec![0.0f32; 12];
    let mut grad = vec![0.0f32; 12];
    assert_eq!(
        d.nll_and_grad(&logits, &[0.5, 0.5], &mut grad, 1.0),
        Err(DistributionError::ShapeMismatch {
            argument: "logits",
            expected: 8,
            actual: 12
        })
    );
    assert_eq!(
        d.nll_and_grad(&logits, &[0.5; 3], &mut grad[..8], 1.0),
        Err(DistributionError::ShapeMismatch {
            argument: "grad",
            expected: 12,
            actual: 8
        })
    );
    let err = d
        .nll_and_grad(&logits, &[0.5, 1.5, 0.5], &mut grad, 1.0)
        .unwrap_err();
    assert!(
        matches!(&err, DistributionError::InRow { row: 1, source } if matches!(**source, DistributionError::TargetOutsideSupport { .. })),
        "{err}"
    );
    let err = d
        .nll_and_grad(&logits, &[0.5, 0.5, f32::INFINITY], &mut grad, 1.0)
        .unwrap_err();
    assert!(
        matches!(err, DistributionError::InRow { row: 2, .. }),
        "{err}"
    );
    let mut bad_logits = logits.clone();
    bad_logits[5] = f32::NAN;
    let err = d.log_density_batch(&bad_logits, &[0.5; 3]).unwrap_err();
    assert!(
        matches!(err, DistributionError::InRow { row: 1, .. }),
        "{err}"
    );
    // The training kernel does not validate logits; a NaN logit shows up in the total.
    let total = d
        .nll_and_grad(&bad_logits, &[0.5; 3], &mut grad, 1.0)
        .unwrap();
    assert!(total.is_nan());
}

#[test]
fn mean_loss_gradient_sums_to_zero_per_row() {
    // softmax - onehot sums to 0 over the buckets of each non-ignored row.
    let d = BarDistribution::full_support(equal_width_borders(100, -2.0, 2.0).unwrap()).unwrap();
    let rows = 64;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let logits = random_logits(&mut rng, rows * 100, 4.0);
    let targets: Vec<f32> = (0..rows).map(|_| rng.random_range(-3.0..3.0)).collect();
    let mut grad = vec![0.0f32; rows * 100];
    let total = d
        .nll_and_grad(&logits, &targets, &mut grad, 1.0 / rows as f32)
        .unwrap();
    assert!(total.is_finite() && total > 0.0);
    for row in grad.chunks(100) {
        let s: f64 = row.iter().map(|&g| f64::from(g)).sum();
        assert!(s.abs() < 1e-8, "{s}");
    }
}
