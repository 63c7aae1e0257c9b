//! Property tests on random bar distributions (bounded and full support).

mod common;

use common::integrate_over_support;
use pfn_distribution::{
    equal_width_borders, normal, BarDistribution, BarPrediction, IcdfConvention, Support, TailShape,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Random borders (2..24 buckets, widths 0.05..3), logits in [-6, 6] and a support kind.
fn arb_case() -> impl Strategy<Value = (Vec<f64>, Vec<f32>, Support)> {
    (2usize..24)
        .prop_flat_map(|k| {
            (
                -10.0..10.0f64,
                prop::collection::vec(0.05..3.0f64, k),
                prop::collection::vec(-6.0f32..6.0, k),
                any::<bool>(),
            )
        })
        .prop_map(|(start, widths, logits, full)| {
            let mut borders = vec![start];
            for w in widths {
                let last = *borders.last().unwrap();
                borders.push(last + w);
            }
            let support = if full {
                Support::Full
            } else {
                Support::Bounded
            };
            (borders, logits, support)
        })
}

/// Points to probe: every border, bucket interiors and (for full support) far into the tails.
fn probe_points(pred: &BarPrediction) -> Vec<f64> {
    let d = pred.distribution();
    let b = d.borders();
    let k = d.num_buckets();
    let mut ys = Vec::new();
    for i in 0..k {
        for t in [0.0, 0.13, 0.5, 0.91] {
            ys.push(b[i] + t * (b[i + 1] - b[i]));
        }
    }
    ys.push(b[k]);
    let span = b[k] - b[0];
    for t in [0.01, 0.3, 1.0] {
        ys.push(b[0] - t * span);
        ys.push(b[k] + t * span);
    }
    ys.sort_by(f64::total_cmp);
    ys
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pdf_integrates_to_one((borders, logits, support) in arb_case()) {
        let d = BarDistribution::new(borders, support).unwrap();
        let pred = d.predict(&logits).unwrap();
        let total = integrate_over_support(&pred, |y| pred.pdf(y), f64::INFINITY, &[]);
        prop_assert!((total - 1.0).abs() < 1e-9, "integral {}", total);
    }

    #[test]
    fn cdf_is_monotone_bounded_and_the_integral_of_the_pdf((borders, logits, support) in arb_case()) {
        let d = BarDistribution::new(borders, support).unwrap();
        let pred = d.predict(&logits).unwrap();
        let ys = probe_points(&pred);
        let mut last = 0.0;
        for &y in &ys {
            let c = pred.cdf(y);
            prop_assert!((0.0..=1.0).contains(&c), "cdf({}) = {}", y, c);
            prop_assert!(c >= last - 1e-15, "cdf decreases at {}: {} < {}", y, c, last);
            last = c;
            let integral = integrate_over_support(&pred, |x| pred.pdf(x), y, &[]);
            prop_assert!((integral - c).abs() < 1e-9, "cdf({}) = {} but integral {}", y, c, integral);
        }
    }

    #[test]
    fn icdf_inverts_the_cdf((borders, logits, support) in arb_case()) {
        let d = BarDistribution::new(borders.clone(), support).unwrap();
        let pred = d.predict(&logits).unwrap();
        let k = d.num_buckets();
        for &y in &probe_points(&pred) {
            // Only where the density is positive (the inverse of a flat cdf is not unique) and
            // not so deep in a tail that the cdf has no relative precision left.
            if pred.pdf(y) < 1e-6 {
                continue;
            }
            let p = pred.cdf(y);
            let back = pred.icdf_exact(p).unwrap();
            let tol = 1e-8 * (1.0 + y.abs()) / pred.pdf(y).min(1.0);
            prop_assert!((back - y).abs() < tol, "exact icdf(cdf({})) = {}", y, back);
            // The linear (default) convention is the exact inverse wherever the cdf is linear:
            // everywhere for bounded support, between the tail anchors for full support.
            let linear_exact_here = support == Support::Bounded || (y >= borders[1] && y <= borders[k - 1]);
            if linear_exact_here {
                let back = pred.icdf(p).unwrap();
                prop_assert!((back - y).abs() < tol, "linear icdf(cdf({})) = {}", y, back);
            }
        }
        for i in 1..100 {
            let p = i as f64 / 100.0;
            for convention in [IcdfConvention::LinearInBuckets, IcdfConvention::ExactTails] {
                let y = pred.icdf_with(p, convention).unwrap();
                if convention == IcdfConvention::ExactTails || support == Support::Bounded
                    || (y > borders[1] && y <= borders[k - 1]) {
                    prop_assert!((pred.cdf(y) - p).abs() < 1e-12, "cdf(icdf({})) = {}", p, pred.cdf(y));
                }
            }
        }
    }

    #[test]
    fn half_normal_tails_put_half_the_edge_mass_outside((borders, logits, _s) in arb_case()) {
        let d = BarDistribution::full_support(borders.clone()).unwrap();
        let pred = d.predict(&logits).unwrap();
        let p = pred.probabilities();
        let k = d.num_buckets();
        let below = integrate_over_support(&pred, |y| pred.pdf(y), borders[0], &[]);
        let up_to_last = integrate_over_support(&pred, |y| pred.pdf(y), borders[k], &[]);
        prop_assert!((below - 0.5 * p[0]).abs() < 1e-10, "mass below {} vs p0/2 {}", below, 0.5 * p[0]);
        prop_assert!((1.0 - up_to_last - 0.5 * p[k - 1]).abs() < 1e-9);
        prop_assert!((pred.cdf(borders[0]) - 0.5 * p[0]).abs() < 1e-12);
        prop_assert!((1.0 - pred.cdf(borders[k]) - 0.5 * p[k - 1]).abs() < 1e-12);
    }

    #[test]
    fn moments_and_entropy_match_quadrature((borders, logits, support) in arb_case()) {
        let d = BarDistribution::new(borders, support).unwrap();
        let pred = d.predict(&logits).unwrap();
        let mean = integrate_over_support(&pred, |y| y * pred.pdf(y), f64::INFINITY, &[]);
        let var = integrate_over_support(&pred, |y| (y - mean).powi(2) * pred.pdf(y), f64::INFINITY, &[]);
        let entropy = integrate_over_support(
            &pred,
            |y| { let q = pred.pdf(y); if q > 0.0 { -q * q.ln() } else { 0.0 } },
            f64::INFINITY,
            &[],
        );
        prop_assert!((pred.mean() - mean).abs() < 1e-8 * (1.0 + mean.abs()), "mean {} vs {}", pred.mean(), mean);
        prop_assert!((pred.variance() - var).abs() < 1e-8 * (1.0 + var), "variance {} vs {}", pred.variance(), var);
        prop_assert!((pred.entropy() - entropy).abs() < 1e-8, "entropy {} vs {}", pred.entropy(), entropy);
    }

    #[test]
    fn fine_bar_distribution_of_a_normal_has_its_moments(
        mu in -5.0..5.0f64,
        sigma in 0.1..3.0f64,
        full in any::<bool>(),
    ) {
        let k = 400;
        let borders = equal_width_borders(k, mu - 6.0 * sigma, mu + 6.0 * sigma).unwrap();
        let logits: Vec<f32> = borders
            .windows(2)
            .map(|w| {
                let p = normal::cdf((w[1] - mu) / sigma) - normal::cdf((w[0] - mu) / sigma);
                p.ln() as f32
            })
            .collect();
        let support = if full { Support::Full } else { Support::Bounded };
        let d = BarDistribution::new(borders, support).unwrap();
        let pred = d.predict(&logits).unwrap();
        prop_assert!((pred.mean() - mu).abs() < 1e-4 * sigma, "mean {} vs {}", pred.mean(), mu);
        // Uniform buckets add w^2/12 = 7.5e-5 sigma^2 (Sheppard's correction).
        let var = pred.variance();
        prop_assert!((var / (sigma * sigma) - 1.0).abs() < 2e-4, "variance {} vs {}", var, sigma * sigma);
        prop_assert!((pred.median() - mu).abs() < 1e-4 * sigma);
        let (lo, hi) = pred.interval(0.682_689_492_137_085_9).unwrap();
        prop_assert!((lo - (mu - sigma)).abs() < 1e-3 * sigma && (hi - (mu + sigma)).abs() < 1e-3 * sigma);
        let entropy = 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * sigma * sigma).ln();
        prop_assert!((pred.entropy() - entropy).abs() < 1e-3);
    }
}

#[test]
fn samples_follow_the_distribution() {
    // Kolmogorov–Smirnov distance of 20 000 seeded samples, and their mean and variance.
    for support in [Support::Bounded, Support::Full] {
        let d = BarDistribution::new(vec![-2.0, -1.0, 0.0, 0.5, 2.0, 3.0], support).unwrap();
        let pred = d.predict(&[1.0, 0.2, 0.7, 0.0, 1.5]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let mut samples = pred.sample_n(&mut rng, n);
        samples.sort_by(f64::total_cmp);
        let mut ks: f64 = 0.0;
        for (i, &y) in samples.iter().enumerate() {
            let c = pred.cdf(y);
            ks = ks
                .max((c - i as f64 / n as f64).abs())
                .max(((i + 1) as f64 / n as f64 - c).abs());
        }
        // 1.63 / sqrt(n) is the 1% critical value.
        assert!(
            ks < 1.63 / (n as f64).sqrt(),
            "{support:?}: KS distance {ks}"
        );
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (pred.variance() / n as f64).sqrt();
        assert!(
            (mean - pred.mean()).abs() < 4.0 * se,
            "{support:?}: mean {mean} vs {}",
            pred.mean()
        );
        assert!((var / pred.variance() - 1.0).abs() < 0.05);
        if support == Support::Full {
            // Samples reach beyond the borders, as the half-normal tails do.
            assert!(samples[0] < -2.0 && samples[n - 1] > 3.0);
        } else {
            assert!(samples[0] >= -2.0 && samples[n - 1] <= 3.0);
        }
        // Reproducible from the seed.
        let again = pred.sample_n(&mut ChaCha8Rng::seed_from_u64(7), 5);
        let first = pred.sample_n(&mut ChaCha8Rng::seed_from_u64(7), 5);
        assert_eq!(again, first);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pareto_tails_put_half_the_edge_mass_outside_and_invert(
        (borders, logits, _s) in arb_case(),
        index in 2.1..8.0f64,
        far in 1.0..1e6f64,
    ) {
        let d = BarDistribution::full_support(borders.clone())
            .unwrap()
            .with_tail_shape(TailShape::Pareto { index })
            .unwrap()
            .with_icdf_convention(IcdfConvention::ExactTails);
        let pred = d.predict(&logits).unwrap();
        let p = pred.probabilities();
        let k = d.num_buckets();
        prop_assert!((pred.cdf(borders[0]) - 0.5 * p[0]).abs() < 1e-12);
        prop_assert!((1.0 - pred.cdf(borders[k]) - 0.5 * p[k - 1]).abs() < 1e-12);
        // Far beyond the borders the icdf inverts the cdf (on the right while 1 - cdf is resolved).
        for y in [borders[0] - far, borders[k] + far] {
            let u = pred.cdf(y);
            let side_mass = if y < borders[0] { u } else { 1.0 - u };
            if y < borders[0] {
                prop_assert!(side_mass > 0.0);
            }
            if side_mass > 1e-6 || y < borders[0] {
                let back = pred.icdf_exact(u).unwrap();
                prop_assert!((back - y).abs() < 1e-6 * (1.0 + y.abs()), "{} vs {}", back, y);
            }
        }
        // The density is positive far out and its log falls like (index + 1) ln(distance).
        let (y1, y2) = (borders[k] + 1e3 * far, borders[k] + 2e3 * far);
        let slope = (pred.pdf(y1).ln() - pred.pdf(y2).ln()) / 2f64.ln();
        prop_assert!((slope - (index + 1.0)).abs() < 1e-2, "{}", slope);
    }
}
