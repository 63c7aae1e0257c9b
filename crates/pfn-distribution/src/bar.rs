//! [`BarDistribution`]: borders, support kind, per-row loss (negative log density) and its gradient.
//!
//! Bucket lookup follows the reference (`searchsorted(borders, y) - 1`, clamped): a value on an
//! inner border belongs to the bucket on its *left*, `borders[0]` belongs to bucket 0 and
//! `borders[K]` to bucket `K - 1`. For the full-support variant every `y <= borders[1]` is in the
//! left tail and every `y > borders[K-1]` in the right tail.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::borders::validate_borders;
use crate::error::{DistributionError, Result};

use crate::prediction::BarPrediction;
use crate::softmax::{log_softmax_f64, log_sum_exp_f64, validate_logits};
use crate::tail::{Tail, TailShape, TailSide};

/// The support of a bar distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Support {
    /// Density `p_k / w_k` on `[borders[0], borders[K]]`, zero outside.
    Bounded,
    /// The edge buckets are replaced by tails (half-normal by default, see [`crate::tail`])
    /// anchored at their inner borders (`borders[1]` and `borders[K-1]`), scaled so that half of
    /// each tail's mass lies inside the edge bucket: support is the whole real line.
    Full,
}

/// How [`BarPrediction::icdf`] (and everything built on it: median, intervals, UCB) inverts the cdf.
///
/// Both conventions interpolate linearly inside interior buckets, which is exact there. They differ
/// only in the tails of the [`Support::Full`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IcdfConvention {
    /// The maintained PFNs library's `icdf`: every bucket, the edge buckets included, is treated as
    /// uniform, so quantiles never leave `[borders[0], borders[K]]`. In the tails this is *not* the
    /// inverse of the exact cdf. This is the default because the golden fixtures (made with that
    /// library) state this convention; note that none of their quantiles falls into an edge
    /// bucket, so the fixtures match both conventions.
    #[default]
    LinearInBuckets,
    /// The exact inverse of the cdf: the tail's inverse cdf inside the tails.
    ExactTails,
}

/// The Riemann ("bar") distribution: the regression head of a PFN.
///
/// Holds the borders (f64) and the per-bucket constants the loss needs. The network's output for
/// one query is a row of `K = num_buckets()` logits (f32); bucket probabilities are their softmax,
/// computed in f64 with a stable log-softmax.
///
/// Serialises as a [`BarDistributionConfig`]; deserialising validates the borders again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BarDistributionConfig", into = "BarDistributionConfig")]
pub struct BarDistribution {
    borders: Vec<f64>,
    widths: Vec<f64>,
    log_widths: Vec<f64>,
    support: Support,
    icdf_convention: IcdfConvention,
    /// Left and right tails (only for [`Support::Full`]).
    tails: Option<(Tail, Tail)>,
    /// The shape of the tails (used only with [`Support::Full`]).
    tail_shape: TailShape,
}

/// The serialisable description of a [`BarDistribution`] (e.g. for a model checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarDistributionConfig {
    /// The borders, strictly increasing.
    pub borders: Vec<f64>,
    /// The support kind.
    pub support: Support,
    /// The icdf convention (defaults to [`IcdfConvention::LinearInBuckets`] when absent).
    #[serde(default)]
    pub icdf_convention: IcdfConvention,
    /// The shape of the tails of a full-support distribution (half-normal when absent).
    #[serde(default, skip_serializing_if = "TailShape::is_half_normal")]
    pub tail_shape: TailShape,
}

impl TryFrom<BarDistributionConfig> for BarDistribution {
    type Error = DistributionError;

    fn try_from(config: BarDistributionConfig) -> Result<Self> {
        BarDistribution::new(config.borders, config.support)?
            .with_icdf_convention(config.icdf_convention)
            .with_tail_shape(config.tail_shape)
    }
}

impl From<BarDistribution> for BarDistributionConfig {
    fn from(dist: BarDistribution) -> Self {
        BarDistributionConfig {
            borders: dist.borders,
            support: dist.support,
            icdf_convention: dist.icdf_convention,
            tail_shape: dist.tail_shape,
        }
    }
}

/// Where a loss target falls: its bucket and the additive term `c` with
/// `nll = -log p_k + c` (`c = log w_k` inside a bucket, `-log c(d)` in a tail with density `c`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LossTarget {
    pub bucket: usize,
    pub offset: f64,
}

impl BarDistribution {
    /// A bar distribution on the given borders (strictly increasing, finite, at least 2; at least
    /// 3 for [`Support::Full`]). The icdf convention is [`IcdfConvention::LinearInBuckets`] and the
    /// tails (with full support) are half-normal.
    pub fn new(borders: Vec<f64>, support: Support) -> Result<Self> {
        validate_borders(&borders, support)?;
        let widths: Vec<f64> = borders.windows(2).map(|w| w[1] - w[0]).collect();
        let log_widths = widths.iter().map(|w| w.ln()).collect();
        let k = widths.len();
        let tails = match support {
            Support::Bounded => None,
            Support::Full => Some((
                Tail::half_normal(borders[1], widths[0], TailSide::Left),
                Tail::half_normal(borders[k - 1], widths[k - 1], TailSide::Right),
            )),
        };
        Ok(BarDistribution {
            borders,
            widths,
            log_widths,
            support,
            icdf_convention: IcdfConvention::default(),
            tails,
            tail_shape: TailShape::HalfNormal,
        })
    }

    /// Shorthand for [`BarDistribution::new`] with [`Support::Bounded`].
    pub fn bounded(borders: Vec<f64>) -> Result<Self> {
        Self::new(borders, Support::Bounded)
    }

    /// Shorthand for [`BarDistribution::new`] with [`Support::Full`] (half-normal tails).
    pub fn full_support(borders: Vec<f64>) -> Result<Self> {
        Self::new(borders, Support::Full)
    }

    /// Returns `self` with another convention for [`BarPrediction::icdf`].
    pub fn with_icdf_convention(mut self, convention: IcdfConvention) -> Self {
        self.icdf_convention = convention;
        self
    }

    /// Returns `self` with tails of another shape (a no-op for [`Support::Bounded`] apart from
    /// recording it). Fails on an invalid shape (see [`TailShape::validate`]).
    pub fn with_tail_shape(mut self, shape: TailShape) -> Result<Self> {
        let shape = shape.validate()?;
        self.tail_shape = shape;
        if self.support == Support::Full {
            let k = self.widths.len();
            self.tails = Some((
                Tail::new(self.borders[1], self.widths[0], TailSide::Left, shape),
                Tail::new(
                    self.borders[k - 1],
                    self.widths[k - 1],
                    TailSide::Right,
                    shape,
                ),
            ));
        }
        Ok(self)
    }

    /// The shape of the tails.
    pub fn tail_shape(&self) -> TailShape {
        self.tail_shape
    }

    /// The borders `beta_0 < ... < beta_K`.
    pub fn borders(&self) -> &[f64] {
        &self.borders
    }

    /// Bucket widths `w_k = beta_{k+1} - beta_k`.
    pub fn bucket_widths(&self) -> &[f64] {
        &self.widths
    }

    /// Number of buckets `K` (= expected logits per row).
    pub fn num_buckets(&self) -> usize {
        self.widths.len()
    }

    /// The support kind.
    pub fn support(&self) -> Support {
        self.support
    }

    /// The convention used by [`BarPrediction::icdf`].
    pub fn icdf_convention(&self) -> IcdfConvention {
        self.icdf_convention
    }

    /// The left and right tails, for [`Support::Full`].
    pub fn tails(&self) -> Option<(&Tail, &Tail)> {
        self.tails.as_ref().map(|(l, r)| (l, r))
    }

    pub(crate) fn log_widths(&self) -> &[f64] {
        &self.log_widths
    }

    /// Bucket of `y` (`searchsorted(borders, y) - 1` clamped to `0..K`); `y` must not be NaN.
    pub fn bucket_index(&self, y: f64) -> usize {
        let below = self.borders.partition_point(|&b| b < y);
        below.saturating_sub(1).min(self.num_buckets() - 1)
    }

    /// Whether bucket `k` is a tail (first or last bucket of a full-support distribution).
    pub(crate) fn tail_of_bucket(&self, k: usize) -> Option<&Tail> {
        let (left, right) = self.tails.as_ref()?;
        if k == 0 {
            Some(left)
        } else if k + 1 == self.num_buckets() {
            Some(right)
        } else {
            None
        }
    }

    /// Log density of component `k` (the normalised shape of bucket `k`) at `y`, which must lie
    /// in that component's support.
    pub(crate) fn component_log_density(&self, k: usize, y: f64) -> f64 {
        match self.tail_of_bucket(k) {
            Some(tail) => tail.log_pdf_at_distance(tail.distance(y)),
            None => -self.log_widths[k],
        }
    }

    /// Classifies a loss target: `Ok(None)` for NaN (ignored), an error for infinite targets and,
    /// in the bounded case, for targets outside `[borders[0], borders[K]]`.
    pub(crate) fn loss_target(&self, y: f64) -> Result<Option<LossTarget>> {
        if y.is_nan() {
            return Ok(None);
        }
        if y.is_infinite() {
            return Err(DistributionError::InfiniteTarget { value: y });
        }
        if self.support == Support::Bounded && !self.in_bounded_support(y) {
            return Err(self.outside_support(y));
        }
        let bucket = self.bucket_index(y);
        Ok(Some(LossTarget {
            bucket,
            offset: -self.component_log_density(bucket, y),
        }))
    }

    fn in_bounded_support(&self, y: f64) -> bool {
        y >= self.borders[0] && y <= self.borders[self.num_buckets()]
    }

    fn outside_support(&self, y: f64) -> DistributionError {
        DistributionError::TargetOutsideSupport {
            value: y,
            lower: self.borders[0],
            upper: self.borders[self.num_buckets()],
        }
    }

    /// Bucket probabilities and derived quantities for one row of logits. The prediction owns a
    /// copy of the distribution; to share one distribution between many predictions use
    /// [`BarDistribution::predict_shared`].
    pub fn predict(&self, logits: &[f32]) -> Result<BarPrediction> {
        Self::predict_shared(&Arc::new(self.clone()), logits)
    }

    /// As [`BarDistribution::predict`], the prediction holding a reference count of `dist`: owned
    /// (no lifetime), without copying the borders.
    pub fn predict_shared(dist: &Arc<Self>, logits: &[f32]) -> Result<BarPrediction> {
        validate_logits(logits, dist.num_buckets())?;
        Ok(BarPrediction::from_log_probs(
            Arc::clone(dist),
            log_softmax_f64(logits),
        ))
    }

    /// Negative log density of `y` (the training loss) for one row of logits.
    ///
    /// A NaN target is ignored as in the maintained library: the loss is 0. Infinite targets and
    /// (bounded support) targets outside the borders are errors.
    pub fn nll(&self, logits: &[f32], y: f64) -> Result<f64> {
        validate_logits(logits, self.num_buckets())?;
        let Some(target) = self.loss_target(y)? else {
            return Ok(0.0);
        };
        let lse = log_sum_exp_f64(logits);
        Ok(lse - f64::from(logits[target.bucket]) + target.offset)
    }

    /// [`BarDistribution::nll`] and its gradient with respect to the logits,
    /// `softmax(z) - onehot(bucket(y))` (all zeros for an ignored NaN target).
    pub fn nll_with_grad(&self, logits: &[f32], y: f64) -> Result<(f64, Vec<f64>)> {
        validate_logits(logits, self.num_buckets())?;
        let Some(target) = self.loss_target(y)? else {
            return Ok((0.0, vec![0.0; logits.len()]));
        };
        let log_probs = log_softmax_f64(logits);
        let mut grad: Vec<f64> = log_probs.iter().map(|lp| lp.exp()).collect();
        grad[target.bucket] -= 1.0;
        Ok((-log_probs[target.bucket] + target.offset, grad))
    }

    /// Log density at `y` for one row of logits: `-inf` outside a bounded support or at infinite
    /// `y`, NaN for a NaN `y`.
    pub fn log_density(&self, logits: &[f32], y: f64) -> Result<f64> {
        validate_logits(logits, self.num_buckets())?;
        Ok(self.log_density_unchecked(logits, y))
    }

    /// Log density for logits that passed validation.
    pub(crate) fn log_density_unchecked(&self, logits: &[f32], y: f64) -> f64 {
        if y.is_nan() {
            return f64::NAN;
        }
        match self.loss_target(y) {
            Ok(Some(target)) => {
                f64::from(logits[target.bucket]) - log_sum_exp_f64(logits) - target.offset
            }
            _ => f64::NEG_INFINITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ln_probs(p: &[f64]) -> Vec<f32> {
        p.iter().map(|&v| v.ln() as f32).collect()
    }

    #[test]
    fn bucket_lookup_follows_searchsorted_left() {
        let d = BarDistribution::bounded(vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(d.bucket_index(0.0), 0);
        assert_eq!(d.bucket_index(0.5), 0);
        assert_eq!(d.bucket_index(1.0), 0);
        assert_eq!(d.bucket_index(1.0 + 1e-12), 1);
        assert_eq!(d.bucket_index(3.0), 2);
        assert_eq!(d.bucket_index(-5.0), 0);
        assert_eq!(d.bucket_index(7.0), 2);
    }

    #[test]
    fn bounded_nll_is_minus_log_of_p_over_w() {
        let d = BarDistribution::bounded(vec![0.0, 1.0, 2.0, 2.5, 4.0, 6.0]).unwrap();
        let p = [0.05, 0.05, 0.1, 0.3, 0.5];
        let z = ln_probs(&p);
        let nll = d.nll(&z, 2.2).unwrap();
        let pf: Vec<f64> = z.iter().map(|&v| f64::from(v).exp()).collect();
        let total: f64 = pf.iter().sum();
        assert!((nll + (pf[2] / total / 0.5).ln()).abs() < 1e-12);
        assert!(matches!(
            d.nll(&z, 6.5),
            Err(DistributionError::TargetOutsideSupport { .. })
        ));
        assert_eq!(d.nll(&z, f64::NAN).unwrap(), 0.0);
        assert_eq!(d.log_density(&z, 6.5).unwrap(), f64::NEG_INFINITY);
    }

    #[test]
    fn full_support_nll_uses_the_half_normal_in_the_tails() {
        let d = BarDistribution::full_support(vec![-2.0, -1.0, 1.0, 3.0]).unwrap();
        let z = [0.3f32, -0.2, 0.5];
        let lp = log_softmax_f64(&z);
        // Left tail: y = -4, distance 3 from the anchor -1, scale 1 / 0.6745.
        let s = 1.0 / crate::tail::HALF_NORMAL_MEDIAN;
        let log_hn = (2.0f64 / std::f64::consts::PI).sqrt().ln() - s.ln() - 9.0 / (2.0 * s * s);
        let nll = d.nll(&z, -4.0).unwrap();
        assert!((nll - (-lp[0] - log_hn)).abs() < 1e-12);
        // Right tail: anchor 1, width 2, y = 1.5.
        let s = 2.0 / crate::tail::HALF_NORMAL_MEDIAN;
        let log_hn = (2.0f64 / std::f64::consts::PI).sqrt().ln() - s.ln() - 0.25 / (2.0 * s * s);
        assert!((d.nll(&z, 1.5).unwrap() - (-lp[2] - log_hn)).abs() < 1e-12);
        // Interior: y = 0.
        assert!((d.nll(&z, 0.0).unwrap() - (-lp[1] + 2f64.ln())).abs() < 1e-12);
        assert!(matches!(
            d.nll(&z, f64::INFINITY),
            Err(DistributionError::InfiniteTarget { .. })
        ));
    }

    #[test]
    fn bad_logits_are_errors() {
        let d = BarDistribution::bounded(vec![0.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            d.nll(&[0.0, 1.0, 2.0], 0.5),
            Err(DistributionError::LogitLength {
                expected: 2,
                actual: 3
            })
        );
        assert!(matches!(
            d.nll(&[0.0, f32::NAN], 0.5),
            Err(DistributionError::InvalidLogit { index: 1, .. })
        ));
        assert!(matches!(
            d.predict(&[f32::INFINITY, 0.0]),
            Err(DistributionError::InvalidLogit { index: 0, .. })
        ));
        assert!(d.predict(&[f32::NEG_INFINITY, f32::NEG_INFINITY]).is_err());
        // One bucket may be impossible.
        let pred = d.predict(&[f32::NEG_INFINITY, 0.0]).unwrap();
        assert_eq!(pred.probabilities()[0], 0.0);
    }

    #[test]
    fn serde_round_trip_validates() {
        let d = BarDistribution::full_support(vec![-1.0, 0.0, 0.5, 2.0])
            .unwrap()
            .with_icdf_convention(IcdfConvention::ExactTails);
        let json = serde_json::to_string(&d).unwrap();
        let back: BarDistribution = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let config: BarDistributionConfig =
            serde_json::from_str(r#"{"borders":[0.0,1.0],"support":"Bounded"}"#).unwrap();
        assert_eq!(config.icdf_convention, IcdfConvention::LinearInBuckets);
        let bad = r#"{"borders":[0.0,2.0,1.0],"support":"Full"}"#;
        let err = serde_json::from_str::<BarDistribution>(bad).unwrap_err();
        assert!(err.to_string().contains("increasing"), "{err}");
    }

    #[test]
    fn constructors_reject_bad_borders() {
        assert!(matches!(
            BarDistribution::bounded(vec![0.0]),
            Err(DistributionError::TooFewBorders { got: 1 })
        ));
        assert!(matches!(
            BarDistribution::bounded(vec![1.0, 0.0]),
            Err(DistributionError::UnsortedBorders { .. })
        ));
        assert!(matches!(
            BarDistribution::full_support(vec![0.0, f64::NAN, 1.0]),
            Err(DistributionError::NonFiniteBorder { index: 1, .. })
        ));
        assert!(matches!(
            BarDistribution::full_support(vec![0.0, 1.0, 1.0]),
            Err(DistributionError::ZeroWidthBucket { index: 1, .. })
        ));
    }
}
