//! Bayesian-optimisation acquisition functions on a [`BarPrediction`].
//!
//! Convention: **maximisation**. `best` is the incumbent (the best value observed so far) and an
//! improvement is `Y - best > 0`. To minimise, negate the targets the model is trained on (or
//! evaluate `-Y` by mirroring the question). All values are exact for the mixture of uniform buckets
//! and tails; in particular the tails use their closed-form expressions (see [`crate::tail`]).

use crate::error::{DistributionError, Result};
use crate::prediction::{check_unit_interval, BarPrediction};

/// The maintained library's default `rest_prob` for UCB, `(1 - 0.682) / 2`: the upper quantile of a
/// Gaussian at `mean + 1 * std` (GP-UCB with `beta = 1`).
pub const DEFAULT_UCB_REST_PROBABILITY: f64 = (1.0 - 0.682) / 2.0;

impl BarPrediction {
    /// Expected improvement `E[max(Y - best, 0)]` (maximisation).
    ///
    /// Unlike the maintained library, the left tail uses the correct `E[(c - H)^+]` with
    /// `c = anchor - best` (the library's expression computes `E[min(H, c)]` instead, which is only
    /// right when `best` is at the anchor).
    pub fn expected_improvement(&self, best: f64) -> Result<f64> {
        check_finite("best", best)?;
        Ok(self
            .probabilities()
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                if p == 0.0 {
                    0.0
                } else {
                    p * self.component_improvement(k, best).1
                }
            })
            .sum())
    }

    /// Probability of improvement `P(Y > best)` (maximisation).
    pub fn probability_of_improvement(&self, best: f64) -> Result<f64> {
        check_finite("best", best)?;
        let pi: f64 = self
            .probabilities()
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                if p == 0.0 {
                    0.0
                } else {
                    p * self.component_improvement(k, best).0
                }
            })
            .sum();
        Ok(pi.clamp(0.0, 1.0))
    }

    /// Upper confidence bound as an upper quantile (maximisation): `icdf(1 - rest_probability)`,
    /// where `rest_probability` in `[0, 1]` is the mass above the returned value, using the
    /// distribution's icdf convention. A smaller `rest_probability` is more optimistic; it plays the
    /// role of `beta` in `mean + beta * std` through `beta = Phi^-1(1 - rest_probability)`
    /// for a Gaussian. See [`DEFAULT_UCB_REST_PROBABILITY`].
    pub fn upper_confidence_bound(&self, rest_probability: f64) -> Result<f64> {
        check_unit_interval("rest_probability", rest_probability)?;
        Ok(self.quantile_with_default_convention(1.0 - rest_probability))
    }
}

fn check_finite(argument: &'static str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(DistributionError::InvalidParameter {
            argument,
            value,
            domain: "finite numbers",
        });
    }
    Ok(())
}
