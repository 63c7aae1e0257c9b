//! [`PosteriorPredictive`]: the model's predictive distribution for one query point, in the
//! user's units.
//!
//! For regression it wraps the Riemann distribution of `pfn-distribution` (a [`BarPrediction`] in
//! the model's normalised target space) together with the [`TargetScaler`] that maps normalised
//! targets `z` back to original units `y = μ + σ z`: locations (mean, median, mode, quantiles,
//! samples) map affinely, scales by `σ`, and densities pick up the Jacobian `1/σ`. For
//! classification it holds the class probabilities.

use pfn_distribution::{BarPrediction, DistributionError};
use rand::Rng;

use pfn_artifact::TargetScaler;

/// A regression predictive: a bar distribution in normalised units plus the map back.
#[derive(Debug, Clone)]
pub struct RegressionPredictive {
    bar: BarPrediction,
    target: TargetScaler,
}

impl RegressionPredictive {
    /// Wraps a prediction made in normalised units `z = (y − μ) / σ`.
    pub fn new(bar: BarPrediction, target: TargetScaler) -> Self {
        Self { bar, target }
    }

    /// The prediction in the model's (normalised) units.
    pub fn normalised(&self) -> &BarPrediction {
        &self.bar
    }

    /// The prediction tempered by `beta` ([`BarPrediction::tempered`]: the bucket densities
    /// raised to the power `beta`, in normalised units; the map back is unchanged). The context
    /// calibration of `pfn_infer::calibration` fits `beta`.
    pub fn tempered(&self, beta: f64) -> Self {
        Self {
            bar: self.bar.tempered(beta),
            target: self.target,
        }
    }

    /// The map between normalised and original units.
    pub fn target_scaler(&self) -> TargetScaler {
        self.target
    }

    /// Predictive mean.
    pub fn mean(&self) -> f64 {
        self.target.inverse(self.bar.mean())
    }

    /// Predictive median.
    pub fn median(&self) -> f64 {
        self.target.inverse(self.bar.median())
    }

    /// Mode of the density (the midpoint of the bucket with the highest density).
    pub fn mode(&self) -> f64 {
        self.target.inverse(self.bar.mode())
    }

    /// Predictive variance.
    pub fn variance(&self) -> f64 {
        self.target.inverse_variance(self.bar.variance())
    }

    /// Predictive standard deviation.
    pub fn std(&self) -> f64 {
        self.target.inverse_scale(self.bar.std_dev())
    }

    /// Differential entropy in nats: the normalised entropy plus `ln σ`.
    pub fn entropy(&self) -> f64 {
        self.bar.entropy() + self.target.std.ln()
    }

    /// The `p`-quantile, `p ∈ [0, 1]`.
    pub fn quantile(&self, p: f64) -> Result<f64, DistributionError> {
        Ok(self.target.inverse(self.bar.icdf(p)?))
    }

    /// Several quantiles.
    pub fn quantiles(&self, ps: &[f64]) -> Result<Vec<f64>, DistributionError> {
        ps.iter().map(|&p| self.quantile(p)).collect()
    }

    /// The central interval holding `probability` of the mass: the `(1 − p)/2` and `(1 + p)/2`
    /// quantiles.
    pub fn interval(&self, probability: f64) -> Result<(f64, f64), DistributionError> {
        let (lo, hi) = self.bar.interval(probability)?;
        Ok((self.target.inverse(lo), self.target.inverse(hi)))
    }

    /// Density at `y` (original units).
    pub fn pdf(&self, y: f64) -> f64 {
        self.log_pdf(y).exp()
    }

    /// Log density at `y` (original units): `log p_z((y − μ)/σ) − ln σ`.
    pub fn log_pdf(&self, y: f64) -> f64 {
        self.target
            .log_density_to_original(self.bar.log_density(self.target.transform(y)))
    }

    /// Negative log density at `y`.
    pub fn nll(&self, y: f64) -> f64 {
        -self.log_pdf(y)
    }

    /// Cumulative probability of `y` (original units).
    pub fn cdf(&self, y: f64) -> f64 {
        self.bar.cdf(self.target.transform(y))
    }

    /// Expected improvement `E[max(Y − best, 0)]` in original units (maximisation): `σ` times the
    /// normalised distribution's expected improvement over `(best − μ)/σ`.
    pub fn expected_improvement(&self, best: f64) -> Result<f64, DistributionError> {
        let z = self.target.transform(best);
        Ok(self.target.inverse_scale(self.bar.expected_improvement(z)?))
    }

    /// Probability of improvement `P(Y > best)` (maximisation; invariant under the map).
    pub fn probability_of_improvement(&self, best: f64) -> Result<f64, DistributionError> {
        self.bar
            .probability_of_improvement(self.target.transform(best))
    }

    /// Upper confidence bound as the upper quantile `icdf(1 − rest_probability)` in original
    /// units (see `BarPrediction::upper_confidence_bound`).
    pub fn upper_confidence_bound(&self, rest_probability: f64) -> Result<f64, DistributionError> {
        Ok(self
            .target
            .inverse(self.bar.upper_confidence_bound(rest_probability)?))
    }

    /// The bucket borders in original units (`μ + σ b`), `B + 1` values.
    pub fn borders(&self) -> Vec<f64> {
        self.bar
            .distribution()
            .borders()
            .iter()
            .map(|&b| self.target.inverse(b))
            .collect()
    }

    /// One sample.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.target.inverse(self.bar.sample(rng))
    }

    /// `n` samples.
    pub fn sample_n<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        self.bar
            .sample_n(rng, n)
            .into_iter()
            .map(|z| self.target.inverse(z))
            .collect()
    }
}

/// A classification predictive: class probabilities (computed in f64 from the logits).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassPredictive {
    log_probs: Vec<f64>,
    probs: Vec<f64>,
}

impl ClassPredictive {
    /// From one row of class logits (a stable log-softmax in f64).
    pub fn from_logits(logits: &[f32]) -> Self {
        let max = logits
            .iter()
            .fold(f64::NEG_INFINITY, |m, &z| m.max(f64::from(z)));
        let lse = max
            + logits
                .iter()
                .map(|&z| (f64::from(z) - max).exp())
                .sum::<f64>()
                .ln();
        let log_probs: Vec<f64> = logits.iter().map(|&z| f64::from(z) - lse).collect();
        let probs = log_probs.iter().map(|l| l.exp()).collect();
        Self { log_probs, probs }
    }

    /// From one row of logits of a head with more outputs than the dataset has classes: the
    /// softmax over the first `num_classes` logits only (the probabilities of the head's other
    /// classes, which the context never shows, are dropped and the rest renormalised). A model
    /// trained on datasets with 2..=10 classes labelled `0..K` answers a K-class dataset this way.
    /// `num_classes` larger than the row keeps the whole row.
    pub fn from_logits_of_classes(logits: &[f32], num_classes: usize) -> Self {
        Self::from_logits(&logits[..num_classes.min(logits.len())])
    }

    /// Probability of each class.
    pub fn probabilities(&self) -> &[f64] {
        &self.probs
    }

    /// Log probability of `class` (`None` if out of range).
    pub fn log_probability(&self, class: usize) -> Option<f64> {
        self.log_probs.get(class).copied()
    }

    /// The most probable class (the first of ties).
    pub fn predicted_class(&self) -> usize {
        let mut best = 0;
        for (i, p) in self.probs.iter().enumerate() {
            if *p > self.probs[best] {
                best = i;
            }
        }
        best
    }

    /// Negative log probability of a label given as a number (`NaN` for a label that is not a
    /// class index of this head).
    pub fn nll(&self, label: f64) -> f64 {
        if label >= 0.0 && label.fract() == 0.0 && (label as usize) < self.probs.len() {
            -self.log_probs[label as usize]
        } else {
            f64::NAN
        }
    }
}

/// The predictive distribution for one query point.
#[derive(Debug, Clone)]
pub enum PosteriorPredictive {
    /// A regression model's predictive density.
    Regression(RegressionPredictive),
    /// A classification model's class probabilities.
    Classification(ClassPredictive),
}

impl PosteriorPredictive {
    /// The regression predictive, by value (`None` for a classification prediction).
    pub fn into_regression(self) -> Option<RegressionPredictive> {
        match self {
            Self::Regression(r) => Some(r),
            Self::Classification(_) => None,
        }
    }

    /// The regression predictive, if this is one.
    pub fn as_regression(&self) -> Option<&RegressionPredictive> {
        match self {
            PosteriorPredictive::Regression(r) => Some(r),
            PosteriorPredictive::Classification(_) => None,
        }
    }

    /// The class probabilities, if this is a classification predictive.
    pub fn as_classification(&self) -> Option<&ClassPredictive> {
        match self {
            PosteriorPredictive::Classification(c) => Some(c),
            PosteriorPredictive::Regression(_) => None,
        }
    }

    /// Negative log predictive density (regression) or probability (classification) of `y`.
    pub fn nll(&self, y: f64) -> f64 {
        match self {
            PosteriorPredictive::Regression(r) => r.nll(y),
            PosteriorPredictive::Classification(c) => c.nll(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfn_distribution::BarDistribution;

    #[test]
    fn original_units_follow_the_affine_map() {
        let dist = BarDistribution::full_support(vec![-2.0, -1.0, 0.0, 1.0, 2.0]).unwrap();
        let logits = [0.1f32, 0.7, 0.2, -0.3];
        let scaler = TargetScaler {
            mean: 10.0,
            std: 3.0,
        };
        let bar = dist.predict(&logits).unwrap();
        let r = RegressionPredictive::new(bar.clone(), scaler);
        assert!((r.mean() - (10.0 + 3.0 * bar.mean())).abs() < 1e-12);
        assert!((r.median() - (10.0 + 3.0 * bar.median())).abs() < 1e-12);
        assert!((r.std() - 3.0 * bar.std_dev()).abs() < 1e-12);
        assert!((r.variance() - 9.0 * bar.variance()).abs() < 1e-12);
        let y = 11.3;
        let z = (y - 10.0) / 3.0;
        assert!((r.pdf(y) - bar.pdf(z) / 3.0).abs() < 1e-12);
        assert!((r.cdf(y) - bar.cdf(z)).abs() < 1e-15);
        assert!((r.quantile(0.3).unwrap() - (10.0 + 3.0 * bar.icdf(0.3).unwrap())).abs() < 1e-12);
        // (Quantiles inside interior buckets, where the icdf inverts the cdf exactly.)
        let (lo, hi) = r.interval(0.5).unwrap();
        assert!((r.cdf(hi) - r.cdf(lo) - 0.5).abs() < 1e-9);
        assert!((r.entropy() - (bar.entropy() + 3f64.ln())).abs() < 1e-12);
        // The density integrates to one in original units (trapezoid over a wide grid).
        let (a, b, steps) = (-20.0, 40.0, 200_000);
        let h = (b - a) / steps as f64;
        let integral: f64 = (0..=steps)
            .map(|i| {
                let w = if i == 0 || i == steps { 0.5 } else { 1.0 };
                w * r.pdf(a + i as f64 * h)
            })
            .sum::<f64>()
            * h;
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        // Acquisition in original units: EI is the integral of (y - best)^+ p(y), PI = 1 - cdf,
        // UCB the upper quantile; the borders map affinely.
        let best = 10.5;
        let ei: f64 = (0..=steps)
            .map(|i| {
                let w = if i == 0 || i == steps { 0.5 } else { 1.0 };
                let y = a + i as f64 * h;
                w * (y - best).max(0.0) * r.pdf(y)
            })
            .sum::<f64>()
            * h;
        let got = r.expected_improvement(best).unwrap();
        assert!((got - ei).abs() < 1e-3, "{got} vs {ei}");
        let pi = r.probability_of_improvement(best).unwrap();
        assert!((pi - (1.0 - r.cdf(best))).abs() < 1e-12, "{pi}");
        let ucb = r.upper_confidence_bound(0.2).unwrap();
        assert!((ucb - r.quantile(0.8).unwrap()).abs() < 1e-12);
        assert_eq!(r.borders()[2], 10.0);
        assert_eq!(r.borders()[4], 16.0);
    }

    #[test]
    fn class_probabilities_are_a_softmax() {
        let c = ClassPredictive::from_logits(&[1.0, 3.0, 2.0]);
        let s: f64 = c.probabilities().iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
        assert_eq!(c.predicted_class(), 1);
        let e = (1f64.exp() + 3f64.exp() + 2f64.exp()).ln();
        assert!((c.nll(0.0) - (e - 1.0)).abs() < 1e-12);
        assert!(c.nll(0.5).is_nan() && c.nll(3.0).is_nan());
    }
}
