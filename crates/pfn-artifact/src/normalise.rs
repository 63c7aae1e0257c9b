//! Input normalisation for inference on user data, and the inverse transform of predictions.
//!
//! A PFN is trained on prior data in a fixed range (e.g. x ~ `U[0,1]`, y roughly standard), so user
//! data are mapped into that range first, using only the *context* (training) rows:
//!
//! * features: [`FeatureScaler`] maps each feature affinely to [0, 1] with the context's min/max
//!   (`x' = (x − min) / (max − min)`), or with fixed bounds. Query points outside the context
//!   range map outside [0, 1]; nothing is clipped. A feature that is constant on the context maps
//!   to 0.5 everywhere it equals that constant (`x' = 0.5 + (x − min)`, i.e. unit scale). The
//!   tabular classifiers z-score instead ([`FeatureScaler::fit_standardise`]: context mean and
//!   population standard deviation, σ = 1 for a constant feature, which then maps to 0).
//! * targets: [`TargetScaler`] standardises `y' = (y − μ) / σ` with the context mean μ and
//!   (population) standard deviation σ; σ = 1 when the context has fewer than two distinct values.
//!
//! Predictions come back through the inverse affine map `y = μ + σ y'`. Locations (mean, median,
//! quantiles, bucket borders) map with [`TargetScaler::inverse`], scales (standard deviation,
//! interval widths) with [`TargetScaler::inverse_scale`], and densities pick up the Jacobian:
//! `p(y) = p'(y') / σ`, so `log p(y) = log p'(y') − ln σ` ([`TargetScaler::log_density_to_original`])
//! and an NLL in original units is the normalised NLL plus `ln σ`
//! ([`TargetScaler::nll_to_original`]).
//!
//! A model trained with a variable number of used features also accepts fewer columns than its
//! network has: after scaling, the `d` given columns are multiplied by the factor of the
//! [`FeaturePadding`] rule the model was trained with and the rest are zero.

use serde::{Deserialize, Serialize};

/// The factor by which the used feature columns of a zero-padded dataset are multiplied: the rule
/// of a prior that samples fewer features than the model has (`pfn_prior::FeatureScaling`, with the
/// same serde representation `"sqrt"`, `"linear"`, `"none"`), recorded in the model file so that
/// inference pads user data exactly as training padded prior data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeaturePadding {
    /// `sqrt(max / used)`: keeps the squared norm of a row comparable (the default).
    #[default]
    Sqrt,
    /// `max / used`.
    Linear,
    /// No rescaling (factor 1).
    None,
}

impl FeaturePadding {
    /// The factor for `used` of `max` features.
    pub fn factor(self, used: usize, max: usize) -> f64 {
        let r = max as f64 / used as f64;
        match self {
            Self::Sqrt => r.sqrt(),
            Self::Linear => r,
            Self::None => 1.0,
        }
    }
}

/// Errors from fitting or applying a normalisation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormaliseError {
    /// A row-major buffer whose length is not a multiple of the number of features.
    #[error("{what}: {len} values are not a whole number of rows of {n_features} features")]
    Shape {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Features per row.
        n_features: usize,
    },
    /// Fitting needs at least one context row.
    #[error("cannot fit {what} on an empty context")]
    EmptyContext {
        /// Which scaler.
        what: &'static str,
    },
    /// A NaN or infinite input.
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Which buffer.
        what: &'static str,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A feature whose context range `max − min` overflows f64, so it cannot be scaled.
    #[error(
        "feature {feature}: the context values span [{min:e}, {max:e}], a range too wide to scale \
         (max − min overflows a 64-bit float); rescale this column"
    )]
    FeatureRangeOverflow {
        /// 0-based feature.
        feature: usize,
        /// Smallest context value.
        min: f64,
        /// Largest context value.
        max: f64,
    },
    /// Context targets whose mean or spread overflows f64.
    #[error(
        "the context targets are too large to standardise (largest |y| = {largest:e}: their mean \
         or variance overflows a 64-bit float); rescale the target column"
    )]
    TargetOverflow {
        /// The largest absolute context target.
        largest: f64,
    },
    /// Fixed bounds that are not finite or not increasing.
    #[error("feature {feature}: fixed bounds need finite min < max, got [{min}, {max}]")]
    BadBounds {
        /// 0-based feature.
        feature: usize,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

fn check_finite(what: &'static str, v: &[f64]) -> Result<(), NormaliseError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(NormaliseError::NonFinite {
            what,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

fn check_rows(what: &'static str, len: usize, n_features: usize) -> Result<(), NormaliseError> {
    if n_features == 0 || !len.is_multiple_of(n_features) {
        return Err(NormaliseError::Shape {
            what,
            len,
            n_features,
        });
    }
    Ok(())
}

/// Per-feature affine map `x' = (x − min) / (max − min)`: `min` maps to 0 and `max` to 1 (unit
/// scale around 0.5 when `min == max`, a feature constant on the context). [`FeatureScaler::fit`]
/// maps the context's range to [0, 1]; [`FeatureScaler::fit_standardise`] z-scores.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureScaler {
    /// Per-feature lower bound (maps to 0).
    pub min: Vec<f64>,
    /// Per-feature upper bound (maps to 1).
    pub max: Vec<f64>,
}

impl FeatureScaler {
    /// Bounds from the context rows `x` (row-major, `n_features` per row).
    pub fn fit(x: &[f64], n_features: usize) -> Result<Self, NormaliseError> {
        check_rows("context x", x.len(), n_features)?;
        if x.is_empty() {
            return Err(NormaliseError::EmptyContext {
                what: "the feature scaler",
            });
        }
        check_finite("context x", x)?;
        let mut min = vec![f64::INFINITY; n_features];
        let mut max = vec![f64::NEG_INFINITY; n_features];
        for row in x.chunks_exact(n_features) {
            for (f, &v) in row.iter().enumerate() {
                min[f] = min[f].min(v);
                max[f] = max[f].max(v);
            }
        }
        for (feature, (&lo, &hi)) in min.iter().zip(&max).enumerate() {
            if !(hi - lo).is_finite() {
                return Err(NormaliseError::FeatureRangeOverflow {
                    feature,
                    min: lo,
                    max: hi,
                });
            }
        }
        Ok(Self { min, max })
    }

    /// Per-feature z-scores from the context rows `x` (row-major, `n_features` per row): the
    /// affine map with `min` = the context mean (maps to 0) and `max − min` = the context's
    /// population standard deviation (the mean plus one standard deviation maps to 1), i.e.
    /// `x' = (x − μ) / σ`. A feature constant on the context gets σ = 1, so it maps to
    /// `x − μ` (0 on the context) rather than to the min-max rule's 0.5.
    pub fn fit_standardise(x: &[f64], n_features: usize) -> Result<Self, NormaliseError> {
        check_rows("context x", x.len(), n_features)?;
        if x.is_empty() {
            return Err(NormaliseError::EmptyContext {
                what: "the feature standardiser",
            });
        }
        check_finite("context x", x)?;
        let rows = (x.len() / n_features) as f64;
        let mut mean = vec![0.0f64; n_features];
        for row in x.chunks_exact(n_features) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v / rows;
            }
        }
        let mut var = vec![0.0f64; n_features];
        for row in x.chunks_exact(n_features) {
            for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
                *s += (v - m) * (v - m) / rows;
            }
        }
        let mut max = Vec::with_capacity(n_features);
        for (feature, (&m, &v)) in mean.iter().zip(&var).enumerate() {
            let std = v.sqrt();
            if !(m.is_finite() && std.is_finite()) {
                let column = x.iter().skip(feature).step_by(n_features);
                let (lo, hi) = column.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
                return Err(NormaliseError::FeatureRangeOverflow {
                    feature,
                    min: lo,
                    max: hi,
                });
            }
            let std = if std > 0.0 && m + std > m { std } else { 1.0 };
            max.push(m + std);
        }
        Ok(Self { min: mean, max })
    }

    /// Fixed bounds, e.g. the known domain of the inputs; requires finite `min < max`.
    pub fn fixed(min: Vec<f64>, max: Vec<f64>) -> Result<Self, NormaliseError> {
        if min.len() != max.len() {
            return Err(NormaliseError::Shape {
                what: "fixed bounds (max)",
                len: max.len(),
                n_features: min.len(),
            });
        }
        for (feature, (&lo, &hi)) in min.iter().zip(&max).enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(NormaliseError::BadBounds {
                    feature,
                    min: lo,
                    max: hi,
                });
            }
        }
        Ok(Self { min, max })
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.min.len()
    }

    /// Maps one value of feature `f`.
    pub fn scale(&self, f: usize, v: f64) -> f64 {
        let (lo, hi) = (self.min[f], self.max[f]);
        if hi > lo {
            (v - lo) / (hi - lo)
        } else {
            0.5 + (v - lo)
        }
    }

    /// Maps every row of `x` (row-major).
    pub fn transform(&self, x: &[f64]) -> Result<Vec<f64>, NormaliseError> {
        let f = self.n_features();
        check_rows("x", x.len(), f)?;
        check_finite("x", x)?;
        Ok(x.iter()
            .enumerate()
            .map(|(i, &v)| self.scale(i % f, v))
            .collect())
    }
}

/// Standardisation of the target with the context mean and standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetScaler {
    /// Context mean μ.
    pub mean: f64,
    /// Context (population) standard deviation σ, or 1 for a degenerate context.
    pub std: f64,
}

impl TargetScaler {
    /// The identity transform (μ = 0, σ = 1).
    pub fn identity() -> Self {
        Self {
            mean: 0.0,
            std: 1.0,
        }
    }

    /// μ and σ of the context targets `y`. σ is the population standard deviation
    /// `sqrt(mean((y − μ)²))`; it is set to 1 when that is 0 (all context targets equal) so the
    /// transform stays invertible. Targets so large that μ or σ overflows f64 are an error
    /// ([`NormaliseError::TargetOverflow`]), not a silent σ = 1.
    pub fn fit(y: &[f64]) -> Result<Self, NormaliseError> {
        if y.is_empty() {
            return Err(NormaliseError::EmptyContext {
                what: "the target scaler",
            });
        }
        check_finite("context y", y)?;
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let std = var.sqrt();
        if !(mean.is_finite() && std.is_finite()) {
            let largest = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            return Err(NormaliseError::TargetOverflow { largest });
        }
        let std = if std > 0.0 { std } else { 1.0 };
        Ok(Self { mean, std })
    }

    /// `(y − μ) / σ`.
    pub fn transform(&self, y: f64) -> f64 {
        (y - self.mean) / self.std
    }

    /// Applies [`TargetScaler::transform`] to every value.
    pub fn transform_all(&self, y: &[f64]) -> Vec<f64> {
        y.iter().map(|&v| self.transform(v)).collect()
    }

    /// Back to original units for a location (mean, median, quantile, border): `μ + σ z`.
    pub fn inverse(&self, z: f64) -> f64 {
        self.mean + self.std * z
    }

    /// Back to original units for a scale (standard deviation, interval width): `σ s`.
    pub fn inverse_scale(&self, s: f64) -> f64 {
        self.std * s
    }

    /// Back to original units for a variance: `σ² v`.
    pub fn inverse_variance(&self, v: f64) -> f64 {
        self.std * self.std * v
    }

    /// Log-density in original units from one in normalised units: `log p'(z) − ln σ`.
    pub fn log_density_to_original(&self, log_density: f64) -> f64 {
        log_density - self.std.ln()
    }

    /// Negative log-likelihood in original units from one in normalised units: `nll + ln σ`.
    pub fn nll_to_original(&self, nll: f64) -> f64 {
        nll + self.std.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_padding_factors_and_names() {
        assert_eq!(FeaturePadding::Sqrt.factor(1, 4), 2.0);
        assert_eq!(FeaturePadding::Linear.factor(2, 5), 2.5);
        assert_eq!(FeaturePadding::None.factor(1, 5), 1.0);
        assert_eq!(FeaturePadding::Sqrt.factor(5, 5), 1.0);
        for (rule, name) in [
            (FeaturePadding::Sqrt, "\"sqrt\""),
            (FeaturePadding::Linear, "\"linear\""),
            (FeaturePadding::None, "\"none\""),
        ] {
            assert_eq!(serde_json::to_string(&rule).unwrap(), name);
            assert_eq!(serde_json::from_str::<FeaturePadding>(name).unwrap(), rule);
        }
    }

    #[test]
    fn feature_scaler_maps_context_to_unit_interval() {
        let x = [1.0, 10.0, 3.0, 20.0, 2.0, 15.0];
        let s = FeatureScaler::fit(&x, 2).unwrap();
        assert_eq!(s.min, vec![1.0, 10.0]);
        assert_eq!(s.max, vec![3.0, 20.0]);
        let t = s.transform(&x).unwrap();
        assert_eq!(t, vec![0.0, 0.0, 1.0, 1.0, 0.5, 0.5]);
        // Queries outside the context range are not clipped.
        assert_eq!(s.transform(&[5.0, 0.0]).unwrap(), vec![2.0, -1.0]);
    }

    #[test]
    fn standardiser_z_scores_with_the_context_and_zeroes_constant_features() {
        // Two features; context rows (1, 5), (3, 5): means (2, 5), population stds (1, 0 -> 1).
        let s = FeatureScaler::fit_standardise(&[1.0, 5.0, 3.0, 5.0], 2).unwrap();
        let t = s.transform(&[1.0, 5.0, 3.0, 5.0, 6.0, 7.5]).unwrap();
        assert_eq!(t, vec![-1.0, 0.0, 1.0, 0.0, 4.0, 2.5]);
        assert!(FeatureScaler::fit_standardise(&[], 2).is_err());
        assert!(FeatureScaler::fit_standardise(&[1.0, f64::NAN], 2).is_err());
        assert!(FeatureScaler::fit_standardise(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(FeatureScaler::fit_standardise(&[-1e308, 1e308], 1).is_err());
    }

    #[test]
    fn constant_feature_maps_to_one_half() {
        let s = FeatureScaler::fit(&[4.0, 4.0, 4.0], 1).unwrap();
        assert_eq!(s.transform(&[4.0, 5.0]).unwrap(), vec![0.5, 1.5]);
    }

    #[test]
    fn feature_scaler_errors() {
        assert!(matches!(
            FeatureScaler::fit(&[1.0, 2.0, 3.0], 2),
            Err(NormaliseError::Shape { .. })
        ));
        assert!(matches!(
            FeatureScaler::fit(&[], 2),
            Err(NormaliseError::EmptyContext { .. })
        ));
        assert!(matches!(
            FeatureScaler::fit(&[1.0, f64::NAN], 1),
            Err(NormaliseError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            FeatureScaler::fixed(vec![0.0, 2.0], vec![1.0, 2.0]),
            Err(NormaliseError::BadBounds { feature: 1, .. })
        ));
        let fixed = FeatureScaler::fixed(vec![-1.0], vec![1.0]).unwrap();
        assert_eq!(fixed.transform(&[0.0, 1.0]).unwrap(), vec![0.5, 1.0]);
    }

    #[test]
    fn target_scaler_standardises_and_inverts() {
        let y = [1.0, 3.0, 5.0, 7.0];
        let s = TargetScaler::fit(&y).unwrap();
        assert_eq!(s.mean, 4.0);
        assert!((s.std - 5.0f64.sqrt()).abs() < 1e-15);
        let z = s.transform_all(&y);
        let m: f64 = z.iter().sum::<f64>() / 4.0;
        let v: f64 = z.iter().map(|v| v * v).sum::<f64>() / 4.0;
        assert!(m.abs() < 1e-15 && (v - 1.0).abs() < 1e-14);
        for &yi in &y {
            assert!((s.inverse(s.transform(yi)) - yi).abs() < 1e-14);
        }
        assert!((s.inverse_scale(2.0) - 2.0 * 5.0f64.sqrt()).abs() < 1e-14);
        assert!((s.inverse_variance(1.0) - 5.0).abs() < 1e-13);
    }

    #[test]
    fn degenerate_targets_use_unit_scale() {
        let s = TargetScaler::fit(&[2.5, 2.5]).unwrap();
        assert_eq!((s.mean, s.std), (2.5, 1.0));
        assert!(TargetScaler::fit(&[]).is_err());
        assert!(TargetScaler::fit(&[1.0, f64::INFINITY]).is_err());
    }

    #[test]
    fn density_transform_matches_a_gaussian_change_of_variables() {
        // If z ~ N(0, 1) in normalised units then y = μ + σ z ~ N(μ, σ²): the log-density of y
        // must equal the normalised log-density minus ln σ.
        let s = TargetScaler {
            mean: 3.0,
            std: 2.5,
        };
        let log_normal = |x: f64, m: f64, sd: f64| {
            -0.5 * ((x - m) / sd).powi(2) - sd.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
        };
        for y in [-4.0, 0.0, 3.0, 7.5] {
            let z = s.transform(y);
            let got = s.log_density_to_original(log_normal(z, 0.0, 1.0));
            let want = log_normal(y, 3.0, 2.5);
            assert!((got - want).abs() < 1e-12, "y={y}: {got} vs {want}");
            let nll = s.nll_to_original(-log_normal(z, 0.0, 1.0));
            assert!((nll + want).abs() < 1e-12);
        }
    }

    #[test]
    fn ranges_and_targets_that_overflow_are_named_errors() {
        // Column 1 spans 2e308: max − min overflows, and the error names that feature.
        let x = [0.0, 1e308, 1.0, -1e308];
        match FeatureScaler::fit(&x, 2).unwrap_err() {
            NormaliseError::FeatureRangeOverflow { feature, min, max } => {
                assert_eq!((feature, min, max), (1, -1e308, 1e308));
            }
            e => panic!("unexpected error {e}"),
        }
        // Large but scalable values still fit.
        assert!(FeatureScaler::fit(&[1e300, -1e300], 1).is_ok());
        // Targets whose variance overflows are an error, not a silent σ = 1.
        let err = TargetScaler::fit(&[1e200, -1e200, 3.0]).unwrap_err();
        assert!(matches!(err, NormaliseError::TargetOverflow { largest } if largest == 1e200));
        assert!(
            err.to_string().contains("rescale the target column"),
            "{err}"
        );
        let err = TargetScaler::fit(&[1.7e308, 1.7e308]).unwrap_err();
        assert!(
            matches!(err, NormaliseError::TargetOverflow { .. }),
            "{err}"
        );
        // Constant targets keep σ = 1.
        assert_eq!(TargetScaler::fit(&[5.0, 5.0]).unwrap().std, 1.0);
    }
}
