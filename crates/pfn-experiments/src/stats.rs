//! Summaries over datasets: mean, standard error, a 95% confidence interval of the mean
//! (Student t) and the median.

use serde::Serialize;

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom (`df >= 1`): a table up to 30,
/// beyond that the Cornish–Fisher expansion around the normal quantile (error below 1e-4).
pub fn t_quantile_975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= T975.len() {
        return T975[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

/// Mean, spread and median of a sample (values over datasets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Mean (NaN for an empty sample).
    pub mean: f64,
    /// Standard error of the mean (NaN with fewer than two values).
    pub se: f64,
    /// Half-width of the 95% confidence interval of the mean, `t(0.975, count-1) * se` (NaN
    /// with fewer than two values).
    pub ci95: f64,
    /// Median (NaN for an empty sample).
    pub median: f64,
}

impl Summary {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        let count = values.len();
        if count == 0 {
            return Self {
                count,
                mean: f64::NAN,
                se: f64::NAN,
                ci95: f64::NAN,
                median: f64::NAN,
            };
        }
        let n = count as f64;
        let mean = values.iter().sum::<f64>() / n;
        let (se, ci95) = if count > 1 {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let se = (var / n).sqrt();
            (se, t_quantile_975(count - 1) * se)
        } else {
            (f64::NAN, f64::NAN)
        };
        Self {
            count,
            mean,
            se,
            ci95,
            median: median(values),
        }
    }

    /// Lower end of the 95% interval (the mean itself when the interval is undefined).
    pub fn lower(&self) -> f64 {
        if self.ci95.is_finite() {
            self.mean - self.ci95
        } else {
            self.mean
        }
    }

    /// Upper end of the 95% interval (the mean itself when the interval is undefined).
    pub fn upper(&self) -> f64 {
        if self.ci95.is_finite() {
            self.mean + self.ci95
        } else {
            self.mean
        }
    }
}

/// The median of `values` (NaN for none); NaNs sort last.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        0.5 * (v[k / 2 - 1] + v[k / 2])
    }
}

/// The mean of `values` (NaN for none).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_known_sample() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, 2.5);
        assert_eq!(s.median, 2.5);
        let se = (5.0f64 / 3.0 / 4.0).sqrt();
        assert!((s.se - se).abs() < 1e-15);
        assert!((s.ci95 - 3.182 * se).abs() < 1e-12);
        assert!((s.lower() - (2.5 - 3.182 * se)).abs() < 1e-12);
        assert_eq!(Summary::of(&[3.0, 1.0, 2.0]).median, 2.0);
    }

    #[test]
    fn degenerate_samples_have_undefined_intervals() {
        let one = Summary::of(&[7.0]);
        assert_eq!((one.mean, one.median), (7.0, 7.0));
        assert!(one.se.is_nan() && one.ci95.is_nan());
        assert_eq!((one.lower(), one.upper()), (7.0, 7.0));
        assert!(Summary::of(&[]).mean.is_nan());
    }

    #[test]
    fn t_quantiles_approach_the_normal_quantile() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert_eq!(t_quantile_975(30), 2.042);
        // Reference values: t(0.975, 40) = 2.0211, t(0.975, 120) = 1.9799, t(0.975, 999) = 1.9623.
        assert!((t_quantile_975(40) - 2.0211).abs() < 2e-4);
        assert!((t_quantile_975(120) - 1.9799).abs() < 1e-4);
        assert!((t_quantile_975(999) - 1.9623).abs() < 1e-4);
        assert!(t_quantile_975(0).is_nan());
    }
}
