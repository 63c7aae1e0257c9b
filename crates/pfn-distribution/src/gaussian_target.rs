//! The bar distribution scored against a whole Gaussian target distribution instead of one sampled
//! value: the closed-form cross-entropy behind posterior (Rao-Blackwellised) training targets.
//!
//! If the target is `y ~ N(mu, s^2)`, the expected training loss is
//!
//! ```text
//! E[-log q(y)] = sum_k P_k (-log p_k) + sum_k E[-log c_k(y); y in bucket k]
//! ```
//!
//! where `p = softmax(z)` are the predicted bucket probabilities, `c_k` the normalised shape of
//! bucket `k` and `P_k = P(y in bucket k)` the Gaussian's bucket masses (buckets as in
//! [`BarDistribution::bucket_index`]: with full support the first bucket is `(-inf, b_1]` and the
//! last `(b_{K-1}, inf)`). The second sum does not depend on the logits:
//!
//! * inside bucket `k` the shape is uniform: `P_k log w_k`;
//! * in a tail it is [`Tail::expected_neg_log_density_under_gaussian`]: closed form for a
//!   half-normal tail (truncated second moments), a Simpson rule for a Pareto tail.
//!
//! The gradient with respect to the logits is `softmax(z) - P`, the expectation of the sampled
//! target's gradient `softmax(z) - onehot(bucket(y))`. Masses are computed only on the buckets that
//! meet `[mu - 8 s, mu + 8 s]` (the rest carry less than `1e-15` together) so a sharp posterior costs
//! a few `erfc` evaluations. With bounded support the edge buckets absorb the Gaussian's mass
//! beyond the outer borders, as [`BarDistribution::bucket_index`] clamps sampled values (a sampled
//! value there is an error of the sampled loss; the sampled loss and this one agree whenever the
//! Gaussian's mass lies inside the borders).
//!
//! The cdf at the borders is [`normal::cdf_approx`] (absolute error below `1.5e-7`; masses are
//! differences of consecutive values, so they sum to 1 exactly up to the clamping of negative
//! round-off); the tail moments use the exact [`normal::cdf`] and [`normal::upper_tail`]. A zero
//! standard deviation is a point mass: the loss is the sampled loss at `mu`.

use rayon::prelude::*;

use crate::bar::BarDistribution;
use crate::error::{DistributionError, Result};
use crate::normal;
use crate::softmax::scaled_softmax_into;
#[cfg(doc)]
use crate::tail::Tail;

/// Half-width of the window of buckets that receive mass, in standard deviations.
const WINDOW_STDS: f64 = 8.0;

/// Logits per parallel task (as in the sampled-target kernel).
const ROW_CHUNK_ELEMENTS: usize = 16_384;

/// The bucket masses of a Gaussian target on the buckets `first..first + masses.len()` (all other
/// buckets get less than `1e-15` together), and the logit-free part of the expected loss.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GaussianBucketMasses {
    /// Index of the first bucket with a mass.
    pub first: usize,
    /// `P(y in bucket first + i)`.
    pub masses: Vec<f64>,
    /// `sum_k E[-log c_k(y); y in bucket k]`: the expected loss minus `sum_k P_k (-log p_k)`.
    pub shape_term: f64,
}

impl BarDistribution {
    /// The masses of `N(mean, std^2)` in this distribution's buckets (see the module docs), written
    /// into `out` (reusing its allocation). Errors on a non-finite mean or a negative or non-finite
    /// standard deviation.
    pub fn gaussian_bucket_masses_into(
        &self,
        mean: f64,
        std: f64,
        out: &mut GaussianBucketMasses,
    ) -> Result<()> {
        if !mean.is_finite() {
            return Err(DistributionError::InfiniteTarget { value: mean });
        }
        if !(std >= 0.0 && std.is_finite()) {
            return Err(DistributionError::InvalidParameter {
                argument: "target standard deviation",
                value: std,
                domain: "finite and non-negative",
            });
        }
        let k = self.num_buckets();
        let borders = self.borders();
        out.masses.clear();
        out.shape_term = 0.0;
        if std == 0.0 {
            let bucket = self.bucket_index(mean);
            out.first = bucket;
            out.masses.push(1.0);
            out.shape_term = -self.component_log_density(bucket, mean);
            return Ok(());
        }
        let first = self.bucket_index(mean - WINDOW_STDS * std);
        let last = self.bucket_index(mean + WINDOW_STDS * std);
        out.first = first;
        // cdf at the lower border of bucket j (-inf for the first bucket: the clamped or tail range).
        let cdf_below = |j: usize| {
            if j == 0 {
                0.0
            } else {
                normal::cdf_approx((borders[j] - mean) / std)
            }
        };
        let mut lower = cdf_below(first);
        for j in first..=last {
            let upper = if j + 1 == k {
                1.0
            } else {
                normal::cdf_approx((borders[j + 1] - mean) / std)
            };
            let mass = (upper - lower).max(0.0);
            lower = upper;
            out.masses.push(mass);
            out.shape_term += match self.tail_of_bucket(j) {
                None => mass * self.log_widths()[j],
                Some(tail) => tail.expected_neg_log_density_under_gaussian(mean, std, mass),
            };
        }
        Ok(())
    }

    /// The masses of `N(mean, std^2)` in this distribution's buckets; see
    /// [`BarDistribution::gaussian_bucket_masses_into`].
    pub fn gaussian_bucket_masses(&self, mean: f64, std: f64) -> Result<GaussianBucketMasses> {
        let mut out = GaussianBucketMasses::default();
        self.gaussian_bucket_masses_into(mean, std, &mut out)?;
        Ok(out)
    }

    /// The expected negative log density `E[-log q(y)]` of `y ~ N(mean, std^2)` under the bar
    /// distribution with `logits` (one row), and its gradient with respect to the logits
    /// `softmax(z) - P`, in f64. The reference for [`BarDistribution::gaussian_cross_entropy_and_grad`].
    pub fn gaussian_cross_entropy_with_grad(
        &self,
        logits: &[f32],
        mean: f64,
        std: f64,
    ) -> Result<(f64, Vec<f64>)> {
        crate::softmax::validate_logits(logits, self.num_buckets())?;
        let target = self.gaussian_bucket_masses(mean, std)?;
        let log_probs = crate::softmax::log_softmax_f64(logits);
        let mut grad: Vec<f64> = log_probs.iter().map(|lp| lp.exp()).collect();
        let mut loss = target.shape_term;
        for (i, &p) in target.masses.iter().enumerate() {
            let j = target.first + i;
            if p > 0.0 {
                loss -= p * log_probs[j];
            }
            grad[j] -= p;
        }
        Ok((loss, grad))
    }

    /// The batched training kernel for Gaussian targets: rows of `K` logits (row-major,
    /// `rows = means.len() = stds.len()`), each scored against `N(means[r], stds[r]^2)`. Returns the
    /// sum over rows of the expected negative log density and writes
    /// `grad = scale * (softmax(z) - P)` (overwriting it). Rows run in parallel in chunks whose
    /// totals are summed in order, so the result does not depend on the thread count.
    ///
    /// A NaN mean marks an ignored row (loss 0, zero gradient), as a NaN sampled target does. Other
    /// invalid targets are errors naming the row. Logits are not validated (as in
    /// [`BarDistribution::nll_and_grad`]); precision is that kernel's.
    pub fn gaussian_cross_entropy_and_grad(
        &self,
        logits: &[f32],
        means: &[f32],
        stds: &[f32],
        grad: &mut [f32],
        scale: f32,
    ) -> Result<f64> {
        let k = self.num_buckets();
        for (argument, expected, actual) in [
            ("logits", means.len() * k, logits.len()),
            ("grad", logits.len(), grad.len()),
            ("target standard deviations", means.len(), stds.len()),
        ] {
            if expected != actual {
                return Err(DistributionError::ShapeMismatch {
                    argument,
                    expected,
                    actual,
                });
            }
        }
        let chunk_rows = (ROW_CHUNK_ELEMENTS / k).max(1);
        let totals: Vec<f64> = logits
            .par_chunks(chunk_rows * k)
            .zip(grad.par_chunks_mut(chunk_rows * k))
            .zip(
                means
                    .par_chunks(chunk_rows)
                    .zip(stds.par_chunks(chunk_rows)),
            )
            .enumerate()
            .map(|(chunk, ((z_chunk, g_chunk), (m_chunk, s_chunk)))| {
                let mut target = GaussianBucketMasses::default();
                let mut total = 0.0;
                for (row, ((z, g), (&mean, &std))) in z_chunk
                    .chunks_exact(k)
                    .zip(g_chunk.chunks_exact_mut(k))
                    .zip(m_chunk.iter().zip(s_chunk))
                    .enumerate()
                {
                    if mean.is_nan() {
                        g.fill(0.0);
                        continue;
                    }
                    self.gaussian_bucket_masses_into(f64::from(mean), f64::from(std), &mut target)
                        .map_err(|e| e.in_row(chunk * chunk_rows + row))?;
                    let log_sum_exp = scaled_softmax_into(z, g, scale);
                    let mut loss = target.shape_term;
                    for (i, &p) in target.masses.iter().enumerate() {
                        let j = target.first + i;
                        loss += p * (log_sum_exp - f64::from(z[j]));
                        g[j] -= (f64::from(scale) * p) as f32;
                    }
                    total += loss;
                }
                Ok(total)
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(totals.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;
    use crate::tail::TailShape;

    fn full() -> BarDistribution {
        BarDistribution::full_support(vec![-2.0, -1.0, -0.4, 0.0, 0.3, 0.9, 1.5, 2.5]).unwrap()
    }

    fn random_logits(k: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..k).map(|_| rng.random_range(-1.5f32..1.5)).collect()
    }

    /// Mean and standard error of `n` samples of the sampled-target loss and its gradient.
    fn monte_carlo(
        dist: &BarDistribution,
        logits: &[f32],
        mean: f64,
        std: f64,
        n: usize,
    ) -> ((f64, f64), Vec<(f64, f64)>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let normal = Normal::new(mean, std).unwrap();
        let k = dist.num_buckets();
        let (mut s, mut s2) = (0.0, 0.0);
        let mut g = vec![(0.0, 0.0); k];
        for _ in 0..n {
            let y = normal.sample(&mut rng);
            let (loss, grad) = dist.nll_with_grad(logits, y).unwrap();
            s += loss;
            s2 += loss * loss;
            for (acc, v) in g.iter_mut().zip(grad) {
                acc.0 += v;
                acc.1 += v * v;
            }
        }
        let nf = n as f64;
        let stat = |(a, b): (f64, f64)| {
            let m = a / nf;
            (m, ((b / nf - m * m).max(0.0) / nf).sqrt())
        };
        (stat((s, s2)), g.into_iter().map(stat).collect())
    }

    #[test]
    fn closed_form_is_the_expectation_of_the_sampled_loss_and_gradient() {
        let pareto = full()
            .with_tail_shape(TailShape::Pareto { index: 3.0 })
            .unwrap();
        // Targets centred inside, near an edge, and mostly in each tail (wide and narrow); the
        // Pareto tails also far beyond the borders.
        let cases = [(0.1, 0.5), (-1.3, 0.8), (2.8, 1.5), (-3.0, 0.4), (0.5, 3.0)];
        let far = [(30.0, 5.0), (-12.0, 0.2), (0.0, 40.0)];
        let runs = cases
            .iter()
            .map(|c| (full(), *c))
            .chain(cases.iter().chain(&far).map(|c| (pareto.clone(), *c)));
        for (case, (dist, (mean, std))) in runs.enumerate() {
            let k = dist.num_buckets();
            let logits = random_logits(k, case as u64);
            let (loss, grad) = dist
                .gaussian_cross_entropy_with_grad(&logits, mean, std)
                .unwrap();
            let ((mc, se), mc_grad) = monte_carlo(&dist, &logits, mean, std, 200_000);
            assert!(
                (loss - mc).abs() <= 3.0 * se,
                "case {case}: closed form {loss} vs Monte Carlo {mc} +- {se}"
            );
            let target = dist.gaussian_bucket_masses(mean, std).unwrap();
            for (j, (g, (m, s))) in grad.iter().zip(mc_grad).enumerate() {
                // The sampled gradient entry is softmax_j - 1[y in bucket j]: its standard error is
                // sqrt(P_j (1 - P_j) / n), which the sample estimate misses for a bucket no draw hit.
                let p = j
                    .checked_sub(target.first)
                    .and_then(|i| target.masses.get(i))
                    .copied()
                    .unwrap_or(0.0);
                let s = s.max((p * (1.0 - p) / 200_000.0).sqrt());
                assert!(
                    (g - m).abs() <= 3.0 * s + 1e-12,
                    "case {case}, bucket {j}: {g} vs {m} +- {s}"
                );
            }
        }
    }

    #[test]
    fn masses_sum_to_one_and_a_point_mass_is_the_sampled_loss() {
        let dist = full();
        let k = dist.num_buckets();
        for (mean, std) in [(0.0, 1.0), (5.0, 0.1), (-9.0, 2.0), (0.31, 1e-4)] {
            let t = dist.gaussian_bucket_masses(mean, std).unwrap();
            let total: f64 = t.masses.iter().sum();
            // Two cdf values of absolute error below 1.5e-7 each bound the sum (the rest telescopes).
            assert!((total - 1.0).abs() < 3e-7, "{mean} {std}: {total}");
            assert!(t.first + t.masses.len() <= k);
        }
        let logits = random_logits(k, 3);
        for y in [-4.0, -1.2, 0.1, 2.0, 3.7] {
            let (loss, grad) = dist
                .gaussian_cross_entropy_with_grad(&logits, y, 0.0)
                .unwrap();
            let (sampled, sampled_grad) = dist.nll_with_grad(&logits, y).unwrap();
            assert!((loss - sampled).abs() < 1e-12, "{y}");
            assert_eq!(grad, sampled_grad);
        }
        assert!(dist.gaussian_bucket_masses(0.0, -1.0).is_err());
        assert!(dist.gaussian_bucket_masses(f64::NAN, 1.0).is_err());
    }

    #[test]
    fn batched_kernel_matches_the_row_reference() {
        let dist = BarDistribution::full_support(
            (0..=40).map(|i| (i as f64 / 10.0 - 2.0).powi(3)).collect(),
        )
        .unwrap();
        let k = dist.num_buckets();
        let rows = 700; // more than one parallel chunk
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let logits: Vec<f32> = (0..rows * k)
            .map(|_| rng.random_range(-2.0f32..2.0))
            .collect();
        let means: Vec<f32> = (0..rows)
            .map(|r| {
                if r == 5 {
                    f32::NAN
                } else {
                    rng.random_range(-9.0f32..9.0)
                }
            })
            .collect();
        let stds: Vec<f32> = (0..rows).map(|_| rng.random_range(0.0f32..2.0)).collect();
        let mut grad = vec![0.0f32; rows * k];
        let scale = 0.25f32;
        let total = dist
            .gaussian_cross_entropy_and_grad(&logits, &means, &stds, &mut grad, scale)
            .unwrap();
        let mut expected = 0.0;
        for r in 0..rows {
            let g = &grad[r * k..(r + 1) * k];
            if r == 5 {
                assert!(g.iter().all(|&v| v == 0.0));
                continue;
            }
            let (loss, reference) = dist
                .gaussian_cross_entropy_with_grad(
                    &logits[r * k..(r + 1) * k],
                    f64::from(means[r]),
                    f64::from(stds[r]),
                )
                .unwrap();
            expected += loss;
            for (a, b) in g.iter().zip(reference) {
                assert!((f64::from(*a) - f64::from(scale) * b).abs() < 1e-6);
            }
        }
        assert!(
            (total - expected).abs() < 1e-6 * rows as f64,
            "{total} vs {expected}"
        );
        let err = dist
            .gaussian_cross_entropy_and_grad(
                &logits[..k],
                &[0.0],
                &[f32::INFINITY],
                &mut grad[..k],
                1.0,
            )
            .unwrap_err();
        assert!(err.to_string().contains("row 0"), "{err}");
    }
}
