//! Posterior predictives of the BNN from weight samples, and the binary cross-entropy score.
//!
//! Every weight sample `s` gives `p_s(x) = p(y = 1 | x, theta_s)`. Three ways to turn the samples
//! into one probability are offered ([`PredictiveRule`]):
//!
//! * [`PredictiveRule::SampledLabelFraction`] — **the paper's**: each sample draws a label
//!   `y_s ~ Bernoulli(p_s(x))` (Pyro's `Predictive` samples the `obs` site) and the probability is
//!   the fraction of samples whose label is 1. It is an unbiased but noisy estimate of the averaged
//!   probability and can be exactly 0 or 1 (then the BCE is capped, see below).
//! * [`PredictiveRule::VoteFraction`] — the fraction of samples with `p_s(x) > 0.5`.
//! * [`PredictiveRule::AveragedProbability`] — the Bayesian posterior predictive
//!   `1/S sum_s p_s(x)`.
//!
//! [`binary_cross_entropy`] follows PyTorch's `BCELoss` (used by the paper): the mean over points of
//! `-(y log p + (1 - y) log(1 - p))` with each log clamped to be at least -100.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bnn::model::{check_labels, class1_probabilities_unchecked, BnnArchitecture};
use crate::error::{check_matrix, BaselineError};

/// How weight samples are turned into one class-1 probability (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredictiveRule {
    /// Fraction of samples whose drawn label is 1 (the paper's rule; seeded).
    #[default]
    SampledLabelFraction,
    /// Fraction of samples whose class-1 probability exceeds 0.5.
    VoteFraction,
    /// Average of the samples' class-1 probabilities.
    AveragedProbability,
}

/// Class-1 probabilities of every weight sample at every test point.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnPredictive {
    /// Number of weight samples `S`.
    pub num_samples: usize,
    /// Number of test points `m`.
    pub num_test: usize,
    /// `p_s(x_i)`, row-major `S x m`.
    pub sample_probabilities: Vec<f64>,
}

impl BnnPredictive {
    /// Evaluates the weight samples (row-major `S x num_params`, `S >= 1`) at `x_test` (row-major
    /// `m x F`).
    pub fn from_samples(
        arch: &BnnArchitecture,
        samples: &[f64],
        x_test: &[f64],
    ) -> Result<Self, BaselineError> {
        arch.validate()?;
        let p = arch.num_params();
        let s = check_matrix("samples", samples, p)?;
        if s == 0 {
            return Err(BaselineError::empty(
                "samples",
                "a predictive needs at least one weight sample",
            ));
        }
        let m = check_matrix("x_test", x_test, arch.features)?;
        let mut sample_probabilities = Vec::with_capacity(s * m);
        for theta in samples.chunks_exact(p) {
            sample_probabilities.extend(class1_probabilities_unchecked(arch, theta, x_test));
        }
        Ok(Self {
            num_samples: s,
            num_test: m,
            sample_probabilities,
        })
    }

    /// The class-1 probability of every test point under `rule`; `seed` drives the label draws of
    /// [`PredictiveRule::SampledLabelFraction`] and is ignored otherwise.
    pub fn probabilities(&self, rule: PredictiveRule, seed: u64) -> Vec<f64> {
        let (s, m) = (self.num_samples, self.num_test);
        let mut out = vec![0.0; m];
        match rule {
            PredictiveRule::AveragedProbability => {
                for row in self.sample_probabilities.chunks_exact(m.max(1)) {
                    out.iter_mut().zip(row).for_each(|(o, p)| *o += p);
                }
            }
            PredictiveRule::VoteFraction => {
                for row in self.sample_probabilities.chunks_exact(m.max(1)) {
                    out.iter_mut()
                        .zip(row)
                        .for_each(|(o, p)| *o += f64::from(u8::from(*p > 0.5)));
                }
            }
            PredictiveRule::SampledLabelFraction => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                for row in self.sample_probabilities.chunks_exact(m.max(1)) {
                    out.iter_mut()
                        .zip(row)
                        .for_each(|(o, p)| *o += f64::from(u8::from(rng.random::<f64>() < *p)));
                }
            }
        }
        out.iter_mut().for_each(|o| *o /= s as f64);
        out
    }

    /// Mean binary cross-entropy of `labels` (one per test point) under `rule`.
    pub fn bce(
        &self,
        labels: &[f64],
        rule: PredictiveRule,
        seed: u64,
    ) -> Result<f64, BaselineError> {
        check_labels("labels", labels, self.num_test)?;
        binary_cross_entropy(&self.probabilities(rule, seed), labels)
    }

    /// Fraction of test points whose label equals `probability > 0.5` under `rule`.
    pub fn accuracy(
        &self,
        labels: &[f64],
        rule: PredictiveRule,
        seed: u64,
    ) -> Result<f64, BaselineError> {
        check_labels("labels", labels, self.num_test)?;
        if labels.is_empty() {
            return Err(BaselineError::empty(
                "labels",
                "accuracy needs a test point",
            ));
        }
        let p = self.probabilities(rule, seed);
        let correct = p
            .iter()
            .zip(labels)
            .filter(|(p, y)| (**p > 0.5) == (**y == 1.0))
            .count();
        Ok(correct as f64 / labels.len() as f64)
    }
}

/// PyTorch `BCELoss` (mean reduction): `-(y ln p + (1 - y) ln(1 - p))` averaged over points, each
/// log clamped at -100. Probabilities must lie in [0, 1], labels be 0 or 1.
pub fn binary_cross_entropy(probabilities: &[f64], labels: &[f64]) -> Result<f64, BaselineError> {
    if probabilities.is_empty() {
        return Err(BaselineError::empty(
            "probabilities",
            "the cross-entropy needs at least one point",
        ));
    }
    check_labels("labels", labels, probabilities.len())?;
    if let Some(i) = probabilities.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(BaselineError::option(
            "probabilities",
            format!("entry {i} = {} is not in [0, 1]", probabilities[i]),
        ));
    }
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            if y == 1.0 {
                -p.ln().max(-100.0)
            } else {
                -(1.0 - p).ln().max(-100.0)
            }
        })
        .sum();
    Ok(total / probabilities.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_bce_on_a_hand_made_sample_set() {
        // Two samples, two test points: p = [[0.9, 0.2], [0.7, 0.4]].
        let pred = BnnPredictive {
            num_samples: 2,
            num_test: 2,
            sample_probabilities: vec![0.9, 0.2, 0.7, 0.4],
        };
        let avg = pred.probabilities(PredictiveRule::AveragedProbability, 0);
        assert!((avg[0] - 0.8).abs() < 1e-15 && (avg[1] - 0.3).abs() < 1e-15);
        assert_eq!(
            pred.probabilities(PredictiveRule::VoteFraction, 0),
            vec![1.0, 0.0]
        );
        let bce = pred
            .bce(&[1.0, 0.0], PredictiveRule::AveragedProbability, 0)
            .unwrap();
        let expected = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        assert!((bce - expected).abs() < 1e-14);
        // Certain and wrong: clamped at 100 nats, like torch.
        let capped = binary_cross_entropy(&[0.0], &[1.0]).unwrap();
        assert_eq!(capped, 100.0);
        assert!(binary_cross_entropy(&[0.5], &[2.0]).is_err());
        assert!(binary_cross_entropy(&[1.5], &[1.0]).is_err());
        assert!(binary_cross_entropy(&[], &[]).is_err());
    }

    #[test]
    fn sampled_label_fraction_is_unbiased_for_the_averaged_probability() {
        let s = 20_000;
        let pred = BnnPredictive {
            num_samples: s,
            num_test: 1,
            sample_probabilities: (0..s).map(|i| if i % 2 == 0 { 0.1 } else { 0.5 }).collect(),
        };
        let frac = pred.probabilities(PredictiveRule::SampledLabelFraction, 3)[0];
        // Mean 0.3, standard error sqrt(0.3 * 0.7 / 20000) ~ 0.0032 (at most, by conditioning).
        assert!((frac - 0.3).abs() < 0.0162, "{frac}");
        assert_eq!(
            frac,
            pred.probabilities(PredictiveRule::SampledLabelFraction, 3)[0]
        );
    }
}
