//! How far a PFN's predictive is from the reference GP's, in closed form on the PFN's buckets.
//!
//! For a Gaussian `p = N(μ, σ²)` (the GP's predictive for a noisy observation) and a bar
//! prediction `q` (bucket probabilities `p_k` on borders `β_0 < … < β_K`):
//!
//! * cross-entropy `H(p, q) = −E_p[log q(Y)]`: the expected negative log-likelihood the PFN
//!   scores on observations drawn from the GP posterior predictive, i.e. the quantity the PFN's
//!   training loss estimates (paper Eq. 2 in expectation);
//! * entropy `H(p) = ½ ln(2πe σ²)`: the smallest possible value of that cross-entropy;
//! * `KL(p ‖ q) = H(p, q) − H(p) ≥ 0`.
//!
//! `log q` is constant on each interior bucket (`log p_k − log w_k`), so those buckets contribute
//! `P_p(bucket) · (log p_k − log w_k)` exactly. In the tails of a full-support distribution
//! `log q(y) = log p_edge + log c(y)` with `c` the tail's density, and `E_p[−log c; tail]` is
//! [`pfn_distribution::Tail::expected_neg_log_density_under_gaussian`]: closed form for
//! half-normal tails, a Simpson rule for Pareto tails.
//! For a bounded-support `q` the Gaussian always has mass outside `[β_0, β_K]`, where `log q = −∞`,
//! so the divergence is infinite; [`gaussian_to_bar`] returns `None` then.

use pfn_distribution::normal;
use pfn_distribution::{BarPrediction, Support};
use pfn_infer::RegressionPredictive;

/// `½ ln(2πe)`.
const HALF_LN_2PI_E: f64 = 1.418_938_533_204_672_7;

/// Cross-entropy, entropy and KL divergence of a Gaussian against a bar prediction (nats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianVsBar {
    /// `H(p, q) = −E_p[log q]`.
    pub cross_entropy: f64,
    /// `H(p)`.
    pub entropy: f64,
    /// `KL(p ‖ q) = H(p, q) − H(p)` (clamped at 0 against round-off).
    pub kl: f64,
}

/// `P(a < Y <= b)` for a standard normal `Y`, accurate in both tails.
fn normal_mass(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        (normal::upper_tail(a) - normal::upper_tail(b)).max(0.0)
    } else if b <= 0.0 {
        (normal::cdf(b) - normal::cdf(a)).max(0.0)
    } else {
        (1.0 - normal::cdf(a) - normal::upper_tail(b)).max(0.0)
    }
}

/// Compares `N(mean, variance)` with `q`; `None` for a bounded-support `q` (infinite divergence)
/// or a non-positive or non-finite variance.
pub fn gaussian_to_bar(mean: f64, variance: f64, q: &BarPrediction) -> Option<GaussianVsBar> {
    if !(variance > 0.0 && variance.is_finite() && mean.is_finite()) {
        return None;
    }
    let dist = q.distribution();
    if dist.support() == Support::Bounded {
        return None;
    }
    let (left, right) = dist.tails()?;
    let sd = variance.sqrt();
    let z = |y: f64| (y - mean) / sd;
    let b = dist.borders();
    let w = dist.bucket_widths();
    let lp = q.log_probabilities();
    let k = lp.len();
    let mut expected_log_q = 0.0;
    // Interior buckets 1..K-1: (β_k, β_{k+1}].
    for i in 1..k - 1 {
        let mass = normal_mass(z(b[i]), z(b[i + 1]));
        if mass > 0.0 {
            expected_log_q += mass * (lp[i] - w[i].ln());
        }
    }
    // The tails: y <= β_1 and y > β_{K-1}, each `E_p[log q; tail] = P(tail) log p_edge` minus
    // the tail's expected negative log density under p.
    for (tail, mass, log_p) in [
        (left, normal::cdf(z(left.anchor)), lp[0]),
        (right, normal::cdf(-z(right.anchor)), lp[k - 1]),
    ] {
        if mass > 0.0 {
            expected_log_q +=
                mass * log_p - tail.expected_neg_log_density_under_gaussian(mean, sd, mass);
        }
    }
    let cross_entropy = -expected_log_q;
    let entropy = HALF_LN_2PI_E + 0.5 * variance.ln();
    Some(GaussianVsBar {
        cross_entropy,
        entropy,
        kl: (cross_entropy - entropy).max(0.0),
    })
}

/// [`gaussian_to_bar`] against a predictive in the caller's units: the bar prediction `q_z` of
/// the model's units `z = (y − μ)/σ` and its target map. The Gaussian is mapped into those units,
/// `N((m − μ)/σ, v/σ²)`; the KL divergence is invariant under the map, and the cross-entropy and
/// the entropy each gain `ln σ` (the Jacobian) back in the caller's units.
pub fn gaussian_to_predictive(
    mean: f64,
    variance: f64,
    q: &RegressionPredictive,
) -> Option<GaussianVsBar> {
    let t = q.target_scaler();
    let c = gaussian_to_bar(
        t.transform(mean),
        variance / (t.std * t.std),
        q.normalised(),
    )?;
    let ln_std = t.std.ln();
    Some(GaussianVsBar {
        cross_entropy: c.cross_entropy + ln_std,
        entropy: c.entropy + ln_std,
        kl: c.kl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfn_distribution::{equal_width_borders, BarDistribution, TailShape};

    /// `−∫ p log q` by the midpoint rule over ±12 σ, split at the borders so that every piece
    /// has a smooth integrand (log q jumps at the borders).
    fn numeric_cross_entropy(mean: f64, var: f64, q: &BarPrediction) -> f64 {
        let sd = var.sqrt();
        let (lo, hi) = (mean - 12.0 * sd, mean + 12.0 * sd);
        let mut cuts = vec![lo];
        cuts.extend(
            q.distribution()
                .borders()
                .iter()
                .copied()
                .filter(|b| *b > lo && *b < hi),
        );
        cuts.push(hi);
        let mut acc = 0.0;
        for w in cuts.windows(2) {
            // Fine enough for 1e-7 on the heavy Pareto tails too (the midpoint rule's error falls as
            // h^2; with 4000 points it was 2e-7 there).
            let n = 40_000;
            let h = (w[1] - w[0]) / n as f64;
            for i in 0..n {
                let y = w[0] + (i as f64 + 0.5) * h;
                let p = normal::pdf((y - mean) / sd) / sd;
                acc -= p * q.log_density(y) * h;
            }
        }
        acc
    }

    fn logits_for(k: usize, seed: u32) -> Vec<f32> {
        (0..k)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32) / 300.0
            })
            .collect()
    }

    #[test]
    fn closed_form_matches_quadrature() {
        let half_normal =
            BarDistribution::full_support(equal_width_borders(20, -2.0, 2.0).unwrap()).unwrap();
        let pareto = half_normal
            .clone()
            .with_tail_shape(TailShape::Pareto { index: 3.0 })
            .unwrap();
        for (dist, (mean, var, seed)) in [half_normal, pareto].iter().flat_map(|d| {
            [
                (0.0, 1.0, 1),
                (1.5, 0.3, 2),
                (-2.5, 0.05, 3),
                (0.3, 4.0, 4),
                (3.0, 1e-4, 5),
                (-9.0, 2.0, 6),
            ]
            .map(|case| (d, case))
        }) {
            let logits = logits_for(20, seed);
            let q = dist.predict(&logits).unwrap();
            let got = gaussian_to_bar(mean, var, &q).unwrap();
            let want = numeric_cross_entropy(mean, var, &q);
            assert!(
                (got.cross_entropy - want).abs() < 1e-7 * (1.0 + want.abs()),
                "mean {mean} var {var}: closed form {} vs quadrature {want}",
                got.cross_entropy
            );
            assert!(got.kl >= 0.0);
        }
    }

    #[test]
    fn kl_is_small_when_the_bars_discretise_the_gaussian_and_large_otherwise() {
        let dist =
            BarDistribution::full_support(equal_width_borders(600, -6.0, 6.0).unwrap()).unwrap();
        let b = dist.borders();
        let k = dist.num_buckets();
        // Bucket masses of N(0.4, 0.8²), tails included.
        let (mu, sd) = (0.4, 0.8);
        let logits: Vec<f32> = (0..k)
            .map(|i| {
                let lo = if i == 0 {
                    f64::NEG_INFINITY
                } else {
                    (b[i] - mu) / sd
                };
                let hi = if i == k - 1 {
                    f64::INFINITY
                } else {
                    (b[i + 1] - mu) / sd
                };
                normal_mass(lo, hi).max(1e-300).ln() as f32
            })
            .collect();
        let q = dist.predict(&logits).unwrap();
        let close = gaussian_to_bar(mu, sd * sd, &q).unwrap();
        assert!(close.kl < 1e-3, "KL of a fine discretisation: {}", close.kl);
        let far = gaussian_to_bar(mu + 2.0, sd * sd, &q).unwrap();
        // KL(N(μ+2, s²) ‖ N(μ, s²)) = 2² / (2 s²) = 3.125.
        assert!((far.kl - 3.125).abs() < 0.02, "shifted KL {}", far.kl);
    }

    #[test]
    fn bounded_support_gives_none() {
        let dist = BarDistribution::bounded(equal_width_borders(10, -1.0, 1.0).unwrap()).unwrap();
        let q = dist.predict(&[0.0; 10]).unwrap();
        assert!(gaussian_to_bar(0.0, 1.0, &q).is_none());
        let full =
            BarDistribution::full_support(equal_width_borders(10, -1.0, 1.0).unwrap()).unwrap();
        let q = full.predict(&[0.0; 10]).unwrap();
        assert!(gaussian_to_bar(0.0, 0.0, &q).is_none());
        assert!(gaussian_to_bar(f64::NAN, 1.0, &q).is_none());
    }
}
