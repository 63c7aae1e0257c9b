//! [`BarPrediction`]: one predictive distribution (bucket probabilities on a [`BarDistribution`])
//! and its density, cdf, quantiles, moments, mode, entropy and samples.
//!
//! The distribution is a mixture with disjoint supports: component `k` has weight `p_k` and is
//! uniform on bucket `k`, except that for [`Support::Full`] the first and last components are the
//! tails (half-normal or Pareto, see [`crate::tail`]). All statistics below are exact for that mixture (no discretisation of the
//! tails), except [`IcdfConvention::LinearInBuckets`], which by design treats the tails as uniform.

use std::sync::Arc;

use rand::distr::Open01;
use rand::Rng;

use crate::bar::{BarDistribution, IcdfConvention, Support};
use crate::error::{DistributionError, Result};

/// The predictive distribution given by one row of logits; see [`BarDistribution::predict`].
#[derive(Debug, Clone)]
pub struct BarPrediction {
    dist: Arc<BarDistribution>,
    log_probs: Vec<f64>,
    probs: Vec<f64>,
    /// `cum[k] = p_0 + ... + p_{k-1}`, `cum[0] = 0`, length `K + 1`.
    cum: Vec<f64>,
}

impl BarPrediction {
    pub(crate) fn from_log_probs(dist: Arc<BarDistribution>, log_probs: Vec<f64>) -> Self {
        let probs: Vec<f64> = log_probs.iter().map(|lp| lp.exp()).collect();
        let mut cum = Vec::with_capacity(probs.len() + 1);
        let mut acc = 0.0;
        cum.push(acc);
        for &p in &probs {
            acc += p;
            cum.push(acc);
        }
        BarPrediction {
            dist,
            log_probs,
            probs,
            cum,
        }
    }

    /// The distribution (borders, support) this prediction lives on.
    pub fn distribution(&self) -> &BarDistribution {
        &self.dist
    }

    /// The shared distribution (a reference count, not a copy).
    pub fn shared_distribution(&self) -> &Arc<BarDistribution> {
        &self.dist
    }

    /// Bucket probabilities `p_k = softmax(z)_k`.
    pub fn probabilities(&self) -> &[f64] {
        &self.probs
    }

    /// Log bucket probabilities `log_softmax(z)_k`.
    pub fn log_probabilities(&self) -> &[f64] {
        &self.log_probs
    }

    /// The prediction tempered by `beta`: bucket `k`'s mean density `p_k / w_k` raised to the
    /// power `beta`, so the bucket probabilities become `q_k ∝ p_k^β w_k^(1−β)`; the shape inside
    /// every bucket (uniform, or the tail's) is kept. `beta > 1` sharpens, `beta < 1` flattens,
    /// `beta = 1` is the prediction itself. Used to calibrate a prediction on held-out data
    /// (`pfn_infer::calibration`).
    pub fn tempered(&self, beta: f64) -> BarPrediction {
        let widths = self.dist.bucket_widths();
        let raw: Vec<f64> = self
            .log_probs
            .iter()
            .zip(widths)
            .map(|(&lp, &w)| beta * lp + (1.0 - beta) * w.ln())
            .collect();
        let top = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_z = top + raw.iter().map(|&r| (r - top).exp()).sum::<f64>().ln();
        BarPrediction::from_log_probs(
            Arc::clone(&self.dist),
            raw.iter().map(|&r| r - log_z).collect(),
        )
    }

    fn k(&self) -> usize {
        self.probs.len()
    }

    fn borders(&self) -> &[f64] {
        self.dist.borders()
    }

    /// Log density at `y` (`-inf` outside a bounded support, NaN for NaN).
    pub fn log_density(&self, y: f64) -> f64 {
        if y.is_nan() {
            return f64::NAN;
        }
        if y.is_infinite() {
            return f64::NEG_INFINITY;
        }
        let b = self.borders();
        if self.dist.support() == Support::Bounded && (y < b[0] || y > b[self.k()]) {
            return f64::NEG_INFINITY;
        }
        let k = self.dist.bucket_index(y);
        self.log_probs[k] + self.dist.component_log_density(k, y)
    }

    /// Density at `y`.
    pub fn pdf(&self, y: f64) -> f64 {
        self.log_density(y).exp()
    }

    /// Cumulative distribution function `P(Y <= y)`: piecewise linear inside interior buckets
    /// (exact at the borders) and the exact tail cdf in the tails. NaN gives NaN.
    pub fn cdf(&self, y: f64) -> f64 {
        if y.is_nan() {
            return f64::NAN;
        }
        let k_max = self.k();
        let b = self.borders();
        if self.dist.support() == Support::Bounded {
            if y <= b[0] {
                return 0.0;
            }
            if y >= b[k_max] {
                return 1.0;
            }
        }
        let k = self.dist.bucket_index(y);
        let value = match self.dist.tail_of_bucket(k) {
            Some(tail) if k == 0 => self.probs[0] * tail.survival_at_distance(tail.distance(y)),
            Some(tail) => {
                self.cum[k_max] - self.probs[k] * tail.survival_at_distance(tail.distance(y))
            }
            None => {
                let share = ((y - b[k]) / self.dist.bucket_widths()[k]).clamp(0.0, 1.0);
                self.cum[k] + self.probs[k] * share
            }
        };
        value.clamp(0.0, 1.0)
    }

    /// Quantile function with the distribution's [`IcdfConvention`]
    /// (default [`IcdfConvention::LinearInBuckets`], the maintained library's `icdf`).
    /// `p` must lie in `[0, 1]`.
    pub fn icdf(&self, p: f64) -> Result<f64> {
        self.icdf_with(p, self.dist.icdf_convention())
    }

    /// Quantile with linear interpolation in every bucket, the tails included (the maintained
    /// library's `icdf`; stays within `[borders[0], borders[K]]`).
    pub fn icdf_linear(&self, p: f64) -> Result<f64> {
        self.icdf_with(p, IcdfConvention::LinearInBuckets)
    }

    /// Exact quantile: linear inside interior buckets and the tail's inverse cdf in the tails.
    /// For [`Support::Full`], `p = 0` gives `-inf` and `p = 1` gives `+inf`.
    pub fn icdf_exact(&self, p: f64) -> Result<f64> {
        self.icdf_with(p, IcdfConvention::ExactTails)
    }

    /// Quantile with an explicit convention; `p` must lie in `[0, 1]`.
    pub fn icdf_with(&self, p: f64, convention: IcdfConvention) -> Result<f64> {
        check_unit_interval("p", p)?;
        Ok(self.quantile(p, convention))
    }

    /// Quantile for a validated `p` in `[0, 1]`.
    ///
    /// The bucket is the first `k` with `cum[k+1] >= p` (the reference's `searchsorted` on the
    /// inclusive cumulative sum, with a leading 0 so that bucket 0 does not wrap around).
    fn quantile(&self, p: f64, convention: IcdfConvention) -> f64 {
        let k_max = self.k();
        let b = self.borders();
        let exact_tails = convention == IcdfConvention::ExactTails && self.dist.tails().is_some();
        if p <= 0.0 {
            return if exact_tails { f64::NEG_INFINITY } else { b[0] };
        }
        if p >= 1.0 {
            return if exact_tails { f64::INFINITY } else { b[k_max] };
        }
        let mut k = self.cum[1..].partition_point(|&c| c < p).min(k_max - 1);
        // Only reachable when rounding leaves cum[K] < p: step back to a bucket with mass.
        while self.probs[k] == 0.0 && k > 0 {
            k -= 1;
        }
        if exact_tails {
            if let Some(tail) = self.dist.tail_of_bucket(k) {
                let survival = if k == 0 {
                    p / self.probs[0]
                } else {
                    (self.cum[k_max] - p) / self.probs[k]
                };
                let d = tail.distance_with_survival(survival.clamp(0.0, 1.0));
                return tail.point_at_distance(d);
            }
        }
        let share = ((p - self.cum[k]) / self.probs[k]).clamp(0.0, 1.0);
        b[k] + self.dist.bucket_widths()[k] * share
    }

    /// Median, `icdf(0.5)` with the distribution's convention.
    pub fn median(&self) -> f64 {
        self.quantile(0.5, self.dist.icdf_convention())
    }

    /// Central interval holding probability `probability` (in `[0, 1]`):
    /// `(icdf((1 - c) / 2), icdf((1 + c) / 2))` with the distribution's convention.
    /// (The paper's demo uses `c = 0.682`.)
    pub fn interval(&self, probability: f64) -> Result<(f64, f64)> {
        check_unit_interval("probability", probability)?;
        let side = 0.5 * (1.0 - probability);
        let convention = self.dist.icdf_convention();
        Ok((
            self.quantile(side, convention),
            self.quantile(1.0 - side, convention),
        ))
    }

    /// Mean of component `k`.
    fn component_mean(&self, k: usize) -> f64 {
        match self.dist.tail_of_bucket(k) {
            Some(tail) => tail.mean(),
            None => {
                let b = self.borders();
                0.5 * (b[k] + b[k + 1])
            }
        }
    }

    /// Variance of component `k`.
    fn component_variance(&self, k: usize) -> f64 {
        match self.dist.tail_of_bucket(k) {
            Some(tail) => tail.variance(),
            None => {
                let w = self.dist.bucket_widths()[k];
                w * w / 12.0
            }
        }
    }

    /// Mean `sum_k p_k m_k` (bucket midpoints; tail means `anchor -/+ s sqrt(2/pi)`).
    pub fn mean(&self) -> f64 {
        (0..self.k())
            .map(|k| self.probs[k] * self.component_mean(k))
            .sum()
    }

    /// Variance, by the law of total variance `sum_k p_k (v_k + (m_k - mean)^2)`. This equals the
    /// reference's `E[y^2] - mean^2` but does not cancel catastrophically far from 0.
    pub fn variance(&self) -> f64 {
        let mean = self.mean();
        (0..self.k())
            .map(|k| {
                let dm = self.component_mean(k) - mean;
                self.probs[k] * (self.component_variance(k) + dm * dm)
            })
            .sum()
    }

    /// Standard deviation.
    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Mode: the location of the highest density. The density of bucket `k` is `p_k / w_k`; a tail's
    /// highest density `p_k * sqrt(2/pi) / s` is at its anchor. An interior bucket's density is
    /// flat, and its midpoint is returned. Ties go to the leftmost bucket.
    pub fn mode(&self) -> f64 {
        let mut best_k = 0;
        let mut best_density = f64::NEG_INFINITY;
        for k in 0..self.k() {
            let density = match self.dist.tail_of_bucket(k) {
                Some(tail) => self.probs[k] * tail.pdf_at_anchor(),
                None => self.probs[k] / self.dist.bucket_widths()[k],
            };
            if density > best_density {
                best_density = density;
                best_k = k;
            }
        }
        match self.dist.tail_of_bucket(best_k) {
            Some(tail) => tail.anchor,
            None => {
                let b = self.borders();
                0.5 * (b[best_k] + b[best_k + 1])
            }
        }
    }

    /// Differential entropy `-int q log q = H(p) + sum_k p_k h_k`, with `h_k = log w_k` for uniform
    /// buckets and the tail entropy for tails (the components have disjoint supports).
    pub fn entropy(&self) -> f64 {
        let mut h = 0.0;
        for k in 0..self.k() {
            let p = self.probs[k];
            if p == 0.0 {
                continue;
            }
            let component = match self.dist.tail_of_bucket(k) {
                Some(tail) => tail.entropy(),
                None => self.dist.log_widths()[k],
            };
            h += p * (component - self.log_probs[k]);
        }
        h
    }

    /// One sample by inverse-transform sampling with the *exact* quantile function (so the tails
    /// are sampled from the tails, whatever the icdf convention).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.sample(Open01);
        self.quantile(u, IcdfConvention::ExactTails)
    }

    /// `n` samples, see [`BarPrediction::sample`].
    pub fn sample_n<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.sample(rng)).collect()
    }

    /// Component `k`'s probability of exceeding `best` and its expected improvement over `best`.
    pub(crate) fn component_improvement(&self, k: usize, best: f64) -> (f64, f64) {
        if let Some(tail) = self.dist.tail_of_bucket(k) {
            return (
                tail.probability_above(best),
                tail.expected_improvement(best),
            );
        }
        let b = self.borders();
        let (lo, hi) = (b[k], b[k + 1]);
        if best <= lo {
            (1.0, 0.5 * (lo + hi) - best)
        } else if best >= hi {
            (0.0, 0.0)
        } else {
            let w = hi - lo;
            ((hi - best) / w, (hi - best) * (hi - best) / (2.0 * w))
        }
    }

    pub(crate) fn quantile_with_default_convention(&self, p: f64) -> f64 {
        self.quantile(p, self.dist.icdf_convention())
    }
}

pub(crate) fn check_unit_interval(argument: &'static str, value: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&value) {
        return Err(DistributionError::InvalidParameter {
            argument,
            value,
            domain: "[0, 1]",
        });
    }
    Ok(())
}
