//! Hand-computed values: cdf cases of the maintained library's tests, moments, quantiles, mode,
//! entropy, acquisition functions, re-binning, and the reference bugs that must not come back.

mod common;

use common::{integrate_over_support, ln_probs};
use pfn_distribution::{
    average_on, equal_width_borders, BarDistribution, DistributionError, IcdfConvention,
    HALF_NORMAL_MEDIAN,
};

const BORDERS: [f64; 6] = [0.0, 1.0, 2.0, 2.5, 4.0, 6.0];
const PROBS: [f64; 5] = [0.05, 0.05, 0.1, 0.3, 0.5];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn bounded_cdf_matches_the_maintained_library_cases() {
    let d = BarDistribution::bounded(BORDERS.to_vec()).unwrap();
    let pred = d.predict(&ln_probs(&PROBS)).unwrap();
    let cases = [
        // outside range
        (-1.0, 0.0),
        (7.0, 1.0),
        // on borders
        (0.0, 0.0),
        (1.0, 0.05),
        (2.5, 0.2),
        (6.0, 1.0),
        // inside bucket
        (1.5, 0.075),
        (5.0, 0.75),
    ];
    for (y, expected) in cases {
        let got = pred.cdf(y);
        assert!(
            close(got, expected, 1e-7),
            "cdf({y}) = {got}, expected {expected}"
        );
    }
}

#[test]
fn bounded_statistics_by_hand() {
    let d = BarDistribution::bounded(BORDERS.to_vec()).unwrap();
    let pred = d.predict(&ln_probs(&PROBS)).unwrap();
    let mids = [0.5, 1.5, 2.25, 3.25, 5.0];
    let widths = [1.0, 1.0, 0.5, 1.5, 2.0];
    let mean: f64 = PROBS.iter().zip(mids).map(|(p, m)| p * m).sum();
    let second: f64 = (0..5)
        .map(|k| {
            let (a, b) = (BORDERS[k], BORDERS[k + 1]);
            PROBS[k] * (a * a + a * b + b * b) / 3.0
        })
        .sum();
    assert!(close(pred.mean(), mean, 1e-7));
    assert!(close(pred.variance(), second - mean * mean, 1e-7));
    // Median: cum before bucket 4 is 0.5 exactly, so the median is border 4.0 (bucket 3's end).
    assert!(close(pred.median(), 4.0, 1e-6));
    // icdf(0.35): bucket 3 (cum 0.2 .. 0.5), share 0.5 -> 2.5 + 0.75.
    assert!(close(pred.icdf(0.35).unwrap(), 3.25, 1e-6));
    // icdf(0.02) lies in bucket 0: 0.02 / 0.05 of the way (the original's idx-0 wrap-around bug
    // would give a value far outside).
    assert!(close(pred.icdf(0.02).unwrap(), 0.4, 1e-6));
    assert_eq!(pred.icdf(0.0).unwrap(), 0.0);
    assert_eq!(pred.icdf(1.0).unwrap(), 6.0);
    let (lo, hi) = pred.interval(0.5).unwrap();
    assert!(
        close(lo, pred.icdf(0.25).unwrap(), 1e-12) && close(hi, pred.icdf(0.75).unwrap(), 1e-12)
    );
    // Mode: densities 0.05, 0.05, 0.2, 0.2, 0.25 -> bucket 4 midpoint. (Argmax of the logits
    // would also be bucket 4 here; see the next test for unequal widths.)
    assert!(close(pred.mode(), 5.0, 1e-9));
    let entropy: f64 = -(0..5)
        .map(|k| PROBS[k] * (PROBS[k] / widths[k]).ln())
        .sum::<f64>();
    assert!(close(pred.entropy(), entropy, 1e-6));
    // Density and log density.
    assert!(close(pred.pdf(2.2), 0.2, 1e-7));
    assert!(close(pred.log_density(5.5), 0.25f64.ln(), 1e-6));
    assert_eq!(pred.pdf(-0.1), 0.0);
}

#[test]
fn mode_uses_densities_not_probabilities() {
    // Bucket 1 has the largest probability but is 10x wider; bucket 0 has the highest density.
    let d = BarDistribution::bounded(vec![0.0, 1.0, 11.0]).unwrap();
    let pred = d.predict(&ln_probs(&[0.3, 0.7])).unwrap();
    assert!(close(pred.mode(), 0.5, 1e-12));
}

#[test]
fn full_support_tails_by_hand() {
    let d = BarDistribution::full_support(BORDERS.to_vec()).unwrap();
    let pred = d.predict(&ln_probs(&PROBS)).unwrap();
    let s_left = 1.0 / HALF_NORMAL_MEDIAN;
    let s_right = 2.0 / HALF_NORMAL_MEDIAN;
    let c = (2.0 / std::f64::consts::PI).sqrt();
    // Half of each edge bucket's mass lies beyond the outer borders.
    assert!(close(pred.cdf(0.0), 0.025, 1e-7));
    assert!(close(1.0 - pred.cdf(6.0), 0.25, 1e-7));
    // Interior cdf unchanged.
    assert!(close(pred.cdf(1.5), 0.075, 1e-7));
    assert!(close(pred.cdf(1.0), 0.05, 1e-7));
    assert!(close(pred.cdf(4.0), 0.5, 1e-7));
    // Mean with tail means.
    let means = [1.0 - s_left * c, 1.5, 2.25, 3.25, 4.0 + s_right * c];
    let mean: f64 = PROBS.iter().zip(means).map(|(p, m)| p * m).sum();
    assert!(close(pred.mean(), mean, 1e-6));
    // Variance: E[y^2] - mean^2 as in the reference.
    let var_hn = |s: f64| s * s * (1.0 - 2.0 / std::f64::consts::PI);
    let second = PROBS[0] * (var_hn(s_left) + means[0] * means[0])
        + PROBS[1] * (1.0 + 2.0 + 4.0) / 3.0
        + PROBS[2] * (4.0 + 5.0 + 6.25) / 3.0
        + PROBS[3] * (6.25 + 10.0 + 16.0) / 3.0
        + PROBS[4] * (var_hn(s_right) + means[4] * means[4]);
    assert!(close(pred.variance(), second - mean * mean, 1e-6));
    // Mode: the right tail's peak density 0.5 * c / s_right = 0.135 is below the interior 0.2.
    let m = pred.mode();
    assert!(close(m, 2.25, 1e-12) || close(m, 3.25, 1e-12), "{m}");
    // With a heavy right tail its anchor is the mode: 0.7 * c / (1 / 0.6745) = 0.377 > 0.2.
    let heavy = BarDistribution::full_support(vec![0.0, 1.0, 2.0, 3.0]).unwrap();
    let heavy_pred = heavy.predict(&ln_probs(&[0.1, 0.2, 0.7])).unwrap();
    assert!(close(heavy_pred.mode(), 2.0, 1e-12));
    // ... and the left anchor when the left tail dominates.
    let heavy_pred = heavy.predict(&ln_probs(&[0.7, 0.2, 0.1])).unwrap();
    assert!(close(heavy_pred.mode(), 1.0, 1e-12));
    // Linear icdf (default) treats the right tail as uniform on [4, 6]; the exact one uses the
    // half-normal: P(Y > y) = 0.5 * 2 Q((y - 4) / s).
    assert_eq!(d.icdf_convention(), IcdfConvention::LinearInBuckets);
    assert!(close(pred.icdf(0.75).unwrap(), 5.0, 1e-6));
    assert!(close(pred.icdf_linear(0.75).unwrap(), 5.0, 1e-6));
    let exact = pred.icdf_exact(0.75).unwrap();
    // survival 0.25/0.5 = 0.5 inside the tail -> the half-normal median, i.e. the outer border.
    assert!(close(exact, 6.0, 1e-6), "{exact}");
    let exact_d = d.clone().with_icdf_convention(IcdfConvention::ExactTails);
    let exact_pred = exact_d.predict(&ln_probs(&PROBS)).unwrap();
    assert!(close(exact_pred.median(), pred.median(), 1e-6));
    assert!(close(exact_pred.icdf(0.75).unwrap(), 6.0, 1e-6));
    assert_eq!(exact_pred.icdf(1.0).unwrap(), f64::INFINITY);
    assert_eq!(exact_pred.icdf(0.0).unwrap(), f64::NEG_INFINITY);
    // Left tail exact: p = 0.0125 is a quarter of p_0, survival 0.25 -> d = s Q^-1(0.125).
    let q = pfn_distribution::normal::upper_tail_inverse(0.125);
    assert!(close(
        pred.icdf_exact(0.0125).unwrap(),
        1.0 - s_left * q,
        1e-6
    ));
    // Entropy with half-normal components.
    let h_hn = |s: f64| 0.5 * (std::f64::consts::PI * s * s / 2.0).ln() + 0.5;
    let widths = [1.0, 1.0, 0.5, 1.5, 2.0];
    let mut h = 0.0;
    for k in 0..5 {
        let comp = if k == 0 {
            h_hn(s_left)
        } else if k == 4 {
            h_hn(s_right)
        } else {
            f64::ln(widths[k])
        };
        h += PROBS[k] * (comp - PROBS[k].ln());
    }
    assert!(close(pred.entropy(), h, 1e-6));
}

#[test]
fn acquisition_functions_match_quadrature() {
    for full in [false, true] {
        let d = if full {
            BarDistribution::full_support(BORDERS.to_vec()).unwrap()
        } else {
            BarDistribution::bounded(BORDERS.to_vec()).unwrap()
        };
        let pred = d.predict(&ln_probs(&PROBS)).unwrap();
        for best in [-3.0, -0.5, 0.0, 0.7, 1.0, 2.2, 4.0, 5.3, 6.0, 9.0] {
            let ei = pred.expected_improvement(best).unwrap();
            let pi = pred.probability_of_improvement(best).unwrap();
            let ei_num = integrate_over_support(
                &pred,
                |y| (y - best).max(0.0) * pred.pdf(y),
                f64::INFINITY,
                &[best],
            );
            let pi_num = integrate_over_support(
                &pred,
                |y| if y > best { pred.pdf(y) } else { 0.0 },
                f64::INFINITY,
                &[best],
            );
            assert!(
                close(ei, ei_num, 1e-9),
                "full={full} best={best}: EI {ei} vs {ei_num}"
            );
            assert!(
                close(pi, pi_num, 1e-9),
                "full={full} best={best}: PI {pi} vs {pi_num}"
            );
            assert!(close(pi, 1.0 - pred.cdf(best), 1e-12));
        }
        // EI far below everything is mean - best.
        let ei = pred.expected_improvement(-1e3).unwrap();
        assert!(close(ei, pred.mean() + 1e3, 1e-8));
        // UCB is an upper quantile.
        let ucb = pred.upper_confidence_bound(0.159).unwrap();
        assert!(close(ucb, pred.icdf(0.841).unwrap(), 1e-12));
        assert!(pred.upper_confidence_bound(1.5).is_err());
        assert!(pred.expected_improvement(f64::NAN).is_err());
    }
}

#[test]
fn invalid_probabilities_are_errors() {
    let d = BarDistribution::bounded(BORDERS.to_vec()).unwrap();
    let pred = d.predict(&ln_probs(&PROBS)).unwrap();
    for p in [-0.1, 1.1, f64::NAN] {
        assert!(matches!(
            pred.icdf(p),
            Err(DistributionError::InvalidParameter { argument: "p", .. })
        ));
    }
    assert!(pred.interval(2.0).is_err());
}

#[test]
fn rebinning_preserves_median_and_mean() {
    // Port of the maintained test: move a 99-bucket distribution on [0, 1] to 999 buckets on [-1, 2].
    let old = BarDistribution::bounded(equal_width_borders(99, 0.0, 1.0).unwrap()).unwrap();
    let new = BarDistribution::bounded(equal_width_borders(999, -1.0, 2.0).unwrap()).unwrap();
    let logits: Vec<f32> = (0..99).map(|i| i as f32 * 0.1).collect();
    let old_pred = old.predict(&logits).unwrap();
    let new_probs = old_pred.probabilities_on(&new);
    let new_logits: Vec<f32> = new_probs.iter().map(|&p| p.ln() as f32).collect();
    let new_pred = new.predict(&new_logits).unwrap();
    assert!(close(old_pred.median(), new_pred.median(), 1e-4));
    assert!(close(old_pred.mean(), new_pred.mean(), 1e-4));
}

#[test]
fn averaging_distributions_on_different_borders() {
    // Port of the maintained test: four distributions averaged onto [-1, 2].
    let specs = [
        (100, -1.0, -0.5),
        (80, 0.0, 2.0),
        (10, 1.0, 3.0),
        (5, 2.0, 3.0),
    ];
    let dists: Vec<BarDistribution> = specs
        .iter()
        .map(|&(n, a, b)| {
            BarDistribution::bounded(equal_width_borders(n - 1, a, b).unwrap()).unwrap()
        })
        .collect();
    let logits: Vec<Vec<f32>> = specs
        .iter()
        .map(|&(n, _, _)| (0..n - 1).map(|i| i as f32).collect())
        .collect();
    let preds: Vec<_> = dists
        .iter()
        .zip(&logits)
        .map(|(d, z)| d.predict(z).unwrap())
        .collect();
    for buckets in [99, 9] {
        let target =
            BarDistribution::bounded(equal_width_borders(buckets, -1.0, 2.0).unwrap()).unwrap();
        let probs = average_on(&preds, &target).unwrap();
        let z: Vec<f32> = probs.iter().map(|&p| p.ln() as f32).collect();
        let avg = target.predict(&z).unwrap();
        assert!(close(avg.cdf(-1.0), 0.0, 1e-6));
        assert!(close(avg.cdf(0.0), 0.25, 1e-6));
        assert!(close(avg.cdf(2.0), 1.0, 1e-6));
        let pos = target.borders()[buckets - 1];
        let expected: f64 = preds.iter().map(|p| p.cdf(pos)).sum::<f64>() / 4.0;
        assert!(close(avg.cdf(pos), expected, 1e-6));
    }
    assert!(average_on(&[], &dists[0]).is_err());
}

#[test]
fn tempering_raises_the_bucket_densities_to_a_power() {
    let d = BarDistribution::bounded(BORDERS.to_vec()).unwrap();
    let pred = d.predict(&ln_probs(&PROBS)).unwrap();
    let widths = [1.0, 1.0, 0.5, 1.5, 2.0];
    for beta in [0.5, 1.0, 2.0] {
        let t = pred.tempered(beta);
        // q_k ∝ (p_k / w_k)^β w_k, by hand (p_k as the f32 logits give them).
        let p = pred.probabilities();
        let raw: Vec<f64> = (0..5)
            .map(|k| (p[k] / widths[k]).powf(beta) * widths[k])
            .collect();
        let total: f64 = raw.iter().sum();
        for (k, (q, r)) in t.probabilities().iter().zip(&raw).enumerate() {
            assert!(close(*q, r / total, 1e-12), "{beta} {k}");
        }
        // The density keeps its shape inside a bucket: uniform, q_k / w_k.
        assert!(close(t.pdf(2.3), raw[2] / total / 0.5, 1e-12));
        let mass = integrate_over_support(&t, |y| t.pdf(y), 6.0, &[]);
        assert!(close(mass, 1.0, 1e-6), "{mass}");
    }
    // β = 1 is the prediction itself; β > 1 concentrates mass where the density is highest.
    let same = pred.tempered(1.0);
    for (a, b) in same.probabilities().iter().zip(pred.probabilities()) {
        assert!(close(*a, *b, 1e-12));
    }
    assert!(pred.tempered(2.0).variance() < pred.variance());
    assert!(pred.tempered(0.5).variance() > pred.variance());
}
