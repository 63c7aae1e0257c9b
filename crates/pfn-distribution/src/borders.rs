//! Bucket borders: equal prior mass per bucket from prior samples, or equal width on a range,
//! and the validation every [`crate::BarDistribution`] applies to its borders.

use crate::error::{DistributionError, Result};
use crate::Support;

/// Borders with (about) equal prior mass per bucket, estimated from prior samples `ys`.
///
/// The algorithm of the paper's `get_bucket_limits` / the maintained `get_bucket_borders`:
/// 1. drop NaN samples (infinite samples are an error);
/// 2. require more samples than buckets;
/// 3. drop the trailing `len mod num_buckets` samples (in the given order) and sort the rest;
/// 4. with `per = len / num_buckets`, the `num_buckets - 1` inner borders are the midpoints
///    `(sorted[j*per - 1] + sorted[j*per]) / 2` between consecutive chunks;
/// 5. the outer borders are the min and max of the kept samples, or the user `range`, which must
///    contain every (non-NaN) sample;
/// 6. consecutive duplicate borders are removed, so the result may have fewer than
///    `num_buckets` buckets (this happens when many samples are tied).
///
/// Returns the borders (at least 2, strictly increasing).
pub fn quantile_borders<T: Copy + Into<f64>>(
    ys: &[T],
    num_buckets: usize,
    range: Option<(f64, f64)>,
) -> Result<Vec<f64>> {
    if num_buckets == 0 {
        return Err(DistributionError::ZeroBuckets);
    }
    let mut samples = Vec::with_capacity(ys.len());
    for (index, &y) in ys.iter().enumerate() {
        let y: f64 = y.into();
        if y.is_nan() {
            continue;
        }
        if y.is_infinite() {
            return Err(DistributionError::NonFiniteSample { index, value: y });
        }
        samples.push(y);
    }
    if samples.len() <= num_buckets {
        return Err(DistributionError::TooFewSamples {
            samples: samples.len(),
            buckets: num_buckets,
        });
    }
    if let Some((lower, upper)) = range {
        check_range(lower, upper)?;
        let (min, max) = min_max(&samples);
        if lower > min || upper < max {
            return Err(DistributionError::RangeExcludesSamples {
                lower,
                upper,
                min,
                max,
            });
        }
    }
    let kept = samples.len() - samples.len() % num_buckets;
    samples.truncate(kept);
    samples.sort_unstable_by(f64::total_cmp);
    let per = kept / num_buckets;
    let (lower, upper) = range.unwrap_or((samples[0], samples[kept - 1]));

    let mut borders = Vec::with_capacity(num_buckets + 1);
    borders.push(lower);
    for j in 1..num_buckets {
        borders.push(0.5 * (samples[j * per - 1] + samples[j * per]));
    }
    borders.push(upper);
    borders.dedup();
    if borders.len() < 2 {
        return Err(DistributionError::DegenerateSamples { value: borders[0] });
    }
    Ok(borders)
}

/// `num_buckets + 1` equally spaced borders from `lower` to `upper` (both included exactly).
pub fn equal_width_borders(num_buckets: usize, lower: f64, upper: f64) -> Result<Vec<f64>> {
    if num_buckets == 0 {
        return Err(DistributionError::ZeroBuckets);
    }
    check_range(lower, upper)?;
    let width = (upper - lower) / num_buckets as f64;
    let mut borders: Vec<f64> = (0..num_buckets).map(|i| lower + i as f64 * width).collect();
    borders.push(upper);
    // A range that is tiny relative to its magnitude can round two borders together.
    validate_borders(&borders, Support::Bounded)?;
    Ok(borders)
}

/// Checks borders for use in a [`crate::BarDistribution`]: at least 2, all finite, strictly
/// increasing (no zero-width buckets), and at least 2 buckets for [`Support::Full`].
pub fn validate_borders(borders: &[f64], support: Support) -> Result<()> {
    if borders.len() < 2 {
        return Err(DistributionError::TooFewBorders { got: borders.len() });
    }
    for (index, &value) in borders.iter().enumerate() {
        if !value.is_finite() {
            return Err(DistributionError::NonFiniteBorder { index, value });
        }
    }
    for index in 1..borders.len() {
        let (previous, value) = (borders[index - 1], borders[index]);
        if value < previous {
            return Err(DistributionError::UnsortedBorders {
                index,
                previous,
                value,
            });
        }
        if value == previous {
            return Err(DistributionError::ZeroWidthBucket {
                index: index - 1,
                border: value,
            });
        }
    }
    if support == Support::Full && borders.len() < 3 {
        return Err(DistributionError::TooFewBucketsForTails {
            got: borders.len() - 1,
        });
    }
    Ok(())
}

fn check_range(lower: f64, upper: f64) -> Result<()> {
    if !(lower.is_finite() && upper.is_finite() && lower < upper) {
        return Err(DistributionError::InvalidRange { lower, upper });
    }
    Ok(())
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_borders_follow_the_chunk_midpoints() {
        // 10 samples, 3 buckets: the trailing sample (100.0) is dropped, per = 3.
        let ys = [5.0, 1.0, 3.0, f64::NAN, 2.0, 6.0, 4.0, 8.0, 7.0, 9.0, 100.0];
        let borders = quantile_borders(&ys, 3, None).unwrap();
        // sorted kept: 1..=9; inner: (3+4)/2, (6+7)/2.
        assert_eq!(borders, vec![1.0, 3.5, 6.5, 9.0]);
    }

    #[test]
    fn quantile_borders_with_range_and_f32_input() {
        let ys: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let borders = quantile_borders(&ys, 4, Some((-10.0, 200.0))).unwrap();
        assert_eq!(borders, vec![-10.0, 24.5, 49.5, 74.5, 200.0]);
        let err = quantile_borders(&ys, 4, Some((0.5, 200.0))).unwrap_err();
        assert!(matches!(
            err,
            DistributionError::RangeExcludesSamples { .. }
        ));
    }

    #[test]
    fn quantile_borders_equal_mass_on_uniform_samples() {
        let n = 10_000;
        let ys: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
        let k = 50;
        let borders = quantile_borders(&ys, k, None).unwrap();
        assert_eq!(borders.len(), k + 1);
        for (j, b) in borders.iter().enumerate().skip(1).take(k - 1) {
            assert!((b - j as f64 / k as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn duplicate_borders_are_removed() {
        // Many ties at 0: inner borders coincide and the bucket count shrinks.
        let mut ys = vec![0.0; 80];
        ys.extend((1..=20).map(|i| i as f64));
        let borders = quantile_borders(&ys, 10, None).unwrap();
        assert!(borders.len() < 11);
        assert!(borders.windows(2).all(|w| w[0] < w[1]));
        validate_borders(&borders, Support::Full).unwrap();
    }

    #[test]
    fn bad_sample_inputs_are_errors() {
        assert_eq!(
            quantile_borders(&[1.0, 2.0], 0, None),
            Err(DistributionError::ZeroBuckets)
        );
        assert_eq!(
            quantile_borders(&[1.0, 2.0, f64::NAN], 2, None),
            Err(DistributionError::TooFewSamples {
                samples: 2,
                buckets: 2
            })
        );
        assert!(matches!(
            quantile_borders(&[1.0, f64::INFINITY, 2.0], 1, None),
            Err(DistributionError::NonFiniteSample { index: 1, .. })
        ));
        assert!(matches!(
            quantile_borders(&[3.0; 10], 2, None),
            Err(DistributionError::DegenerateSamples { .. })
        ));
    }

    #[test]
    fn equal_width_borders_and_their_errors() {
        let b = equal_width_borders(4, -1.0, 1.0).unwrap();
        assert_eq!(b, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(
            equal_width_borders(0, 0.0, 1.0),
            Err(DistributionError::ZeroBuckets)
        );
        assert!(matches!(
            equal_width_borders(3, 1.0, 1.0),
            Err(DistributionError::InvalidRange { .. })
        ));
        assert!(matches!(
            equal_width_borders(3, 0.0, f64::NAN),
            Err(DistributionError::InvalidRange { .. })
        ));
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            validate_borders(&[1.0], Support::Bounded),
            Err(DistributionError::TooFewBorders { got: 1 })
        );
        assert!(matches!(
            validate_borders(&[0.0, f64::NAN, 2.0], Support::Bounded),
            Err(DistributionError::NonFiniteBorder { index: 1, .. })
        ));
        assert!(matches!(
            validate_borders(&[0.0, 2.0, 1.0], Support::Bounded),
            Err(DistributionError::UnsortedBorders { index: 2, .. })
        ));
        assert!(matches!(
            validate_borders(&[0.0, 0.0, 1.0, 2.0], Support::Full),
            Err(DistributionError::ZeroWidthBucket { index: 0, .. })
        ));
        assert!(matches!(
            validate_borders(&[0.0, 1.0, 2.0, 2.0], Support::Full),
            Err(DistributionError::ZeroWidthBucket { index: 2, .. })
        ));
        assert_eq!(
            validate_borders(&[0.0, 1.0], Support::Full),
            Err(DistributionError::TooFewBucketsForTails { got: 1 })
        );
        validate_borders(&[0.0, 1.0], Support::Bounded).unwrap();
    }
}
