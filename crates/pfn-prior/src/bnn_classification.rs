//! The paper's BNN classification prior (Fig. 5, spec 4.3): a two-layer network without a
//! nonlinearity, every weight `~ N(0, 1)`, inputs `x ~ N(0, I_F)` and binary labels drawn from the
//! softmax of its two logits.
//!
//! This module holds the data model shared by the PFN training prior (registered as
//! `bnn-classification-small` / `-big`, see [`crate::prior_by_name`]) and the SVI and NUTS
//! baselines of `pfn-baselines`, so that both see exactly the same datasets.
//!
//! # Network and parameter layout
//!
//! `fc1 = Linear(F, H)` and `fc2 = Linear(H, 2)` applied one after the other. A parameter vector
//! `theta` of length `H F + H + 2 H + 2` holds, in PyTorch's order: `fc1.weight` (`H x F`,
//! row-major: entry `h * F + f`), `fc1.bias` (`H`), `fc2.weight` (`2 x H`, row-major: entry
//! `k * H + h`), `fc2.bias` (`2`) ([`BnnArchitecture::layers`]).
//!
//! Because the network is linear, `p(y = 1 | x) = sigmoid(delta(x))` with `delta(x) = a . x + e`,
//! `v = fc2.weight[1] - fc2.weight[0]`, `a = fc1.weight^T v` and
//! `e = fc1.bias . v + fc2.bias[1] - fc2.bias[0]` ([`BnnArchitecture::collapse`]).
//!
//! # Draw order (a stable contract: changing it changes every dataset)
//!
//! Per dataset: every weight `~ N(0, 1)` in layout order, then the inputs `x_i ~ N(0, I_F)` row by
//! row, then per point a uniform `u ~ U[0, 1)` and the label `1[u < p(y = 1 | x_i)]`.
//!
//! # Normalisation
//!
//! Labels always come from the **raw** inputs. The PFN sees inputs z-normalised per feature,
//! `(x - mean) / (std + 1e-6)` with the unbiased standard deviation ([`ContextNormalization`]):
//! the paper's PFN prior normalises over the whole sequence
//! ([`BnnClassificationPrior::normalize_x`]), its evaluation with the statistics of the context.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// Added to the standard deviation before dividing (as in the paper's code).
pub const NORMALIZATION_EPS: f64 = 1e-6;

/// Sizes of the BNN: `F` input features and `H` hidden units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BnnArchitecture {
    /// Number of input features `F`.
    pub features: usize,
    /// Number of hidden units `H`.
    pub hidden: usize,
}

/// The four parameter blocks of a weight vector (see the module documentation for the layout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnnLayers<'a> {
    /// `fc1.weight`, `H x F` row-major.
    pub fc1_weight: &'a [f64],
    /// `fc1.bias`, `H`.
    pub fc1_bias: &'a [f64],
    /// `fc2.weight`, `2 x H` row-major.
    pub fc2_weight: &'a [f64],
    /// `fc2.bias`, `2`.
    pub fc2_bias: &'a [f64],
}

/// The linear network collapsed to its logit difference `delta(x) = slope . x + offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollapsedBnn {
    /// `a = fc1.weight^T v`, one entry per feature.
    pub slope: Vec<f64>,
    /// `e = fc1.bias . v + fc2.bias[1] - fc2.bias[0]`.
    pub offset: f64,
    /// `v = fc2.weight[1] - fc2.weight[0]`, one entry per hidden unit.
    pub output_difference: Vec<f64>,
}

impl BnnArchitecture {
    /// The paper's small BNN (Fig. 5a): 3 features, 5 hidden units.
    pub const SMALL: Self = Self {
        features: 3,
        hidden: 5,
    };
    /// The paper's big BNN (Fig. 5b): 8 features, 64 hidden units.
    pub const BIG: Self = Self {
        features: 8,
        hidden: 64,
    };

    /// A validated architecture (both sizes at least 1).
    pub fn new(features: usize, hidden: usize) -> Result<Self, PriorError> {
        let a = Self { features, hidden };
        a.validate()?;
        Ok(a)
    }

    /// Checks that both sizes are at least 1.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.features == 0 {
            return Err(PriorError::invalid("features", "must be at least 1, got 0"));
        }
        if self.hidden == 0 {
            return Err(PriorError::invalid("hidden", "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// Number of weights and biases: `H F + H + 2 H + 2`.
    pub fn num_params(&self) -> usize {
        self.hidden * self.features + 3 * self.hidden + 2
    }

    /// Names of the parameters in layout order, e.g. `fc1.weight[2,0]`, `fc2.bias[1]`.
    pub fn parameter_names(&self) -> Vec<String> {
        let (f, h) = (self.features, self.hidden);
        let mut names = Vec::with_capacity(self.num_params());
        for i in 0..h {
            for j in 0..f {
                names.push(format!("fc1.weight[{i},{j}]"));
            }
        }
        names.extend((0..h).map(|i| format!("fc1.bias[{i}]")));
        for k in 0..2 {
            names.extend((0..h).map(|i| format!("fc2.weight[{k},{i}]")));
        }
        names.extend((0..2).map(|k| format!("fc2.bias[{k}]")));
        names
    }

    /// The parameter blocks of `theta`.
    ///
    /// # Panics
    ///
    /// If `theta` has fewer than [`BnnArchitecture::num_params`] entries (callers validate the
    /// length first).
    pub fn layers<'a>(&self, theta: &'a [f64]) -> BnnLayers<'a> {
        let (f, h) = (self.features, self.hidden);
        let (fc1_weight, rest) = theta.split_at(h * f);
        let (fc1_bias, rest) = rest.split_at(h);
        let (fc2_weight, fc2_bias) = rest.split_at(2 * h);
        BnnLayers {
            fc1_weight,
            fc1_bias,
            fc2_weight,
            fc2_bias,
        }
    }

    /// The collapsed logit difference of `theta` (see the module documentation).
    ///
    /// # Panics
    ///
    /// As [`BnnArchitecture::layers`].
    pub fn collapse(&self, theta: &[f64]) -> CollapsedBnn {
        let (f, h) = (self.features, self.hidden);
        let l = self.layers(theta);
        let v: Vec<f64> = (0..h)
            .map(|i| l.fc2_weight[h + i] - l.fc2_weight[i])
            .collect();
        let mut a = vec![0.0; f];
        let mut e = l.fc2_bias[1] - l.fc2_bias[0];
        for (i, vi) in v.iter().enumerate() {
            for (aj, w) in a.iter_mut().zip(&l.fc1_weight[i * f..(i + 1) * f]) {
                *aj += vi * w;
            }
            e += vi * l.fc1_bias[i];
        }
        CollapsedBnn {
            slope: a,
            offset: e,
            output_difference: v,
        }
    }
}

/// `sigmoid(z) = 1 / (1 + e^-z)`, stable for large `|z|`.
#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let t = z.exp();
        t / (1.0 + t)
    }
}

/// `p(y = 1 | x, theta)`, the softmax probability of class 1, for every row of `x` (row-major
/// `n x F`; a trailing partial row is ignored). No validation: `pfn-baselines` wraps it with
/// checked entry points.
///
/// # Panics
///
/// If `theta` has fewer than `arch.num_params()` entries.
pub fn class1_probabilities_unchecked(
    arch: &BnnArchitecture,
    theta: &[f64],
    x: &[f64],
) -> Vec<f64> {
    let CollapsedBnn {
        slope: a,
        offset: e,
        ..
    } = arch.collapse(theta);
    x.chunks_exact(arch.features)
        .map(|row| sigmoid(e + a.iter().zip(row).map(|(p, q)| p * q).sum::<f64>()))
        .collect()
}

/// One dataset drawn from [`BnnClassificationPrior`], in f64 with raw inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnDataset {
    /// The drawn weights (layout of the module documentation).
    pub weights: Vec<f64>,
    /// Raw inputs, row-major `n x F`.
    pub x: Vec<f64>,
    /// Labels, 0.0 or 1.0.
    pub labels: Vec<f64>,
    /// `p(label = 1 | x, weights)` of every point: what each label was drawn from.
    pub class1_probabilities: Vec<f64>,
    /// Number of features `F`.
    pub features: usize,
}

impl BnnDataset {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The BNN classification prior of the paper's Fig. 5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnnClassificationPrior {
    /// The network sizes.
    pub arch: BnnArchitecture,
    /// Whether [`Prior::sample_dataset`] z-normalises each x column over the whole sequence (the
    /// paper's PFN training data); the labels always come from the raw inputs.
    pub normalize_x: bool,
}

impl BnnClassificationPrior {
    /// The prior of `arch` without x normalisation (the raw data the baselines condition on).
    pub fn new(arch: BnnArchitecture) -> Result<Self, PriorError> {
        arch.validate()?;
        Ok(Self {
            arch,
            normalize_x: false,
        })
    }

    /// The paper's PFN training prior for `arch`: x z-normalised over each whole sequence.
    pub fn pfn_training(arch: BnnArchitecture) -> Result<Self, PriorError> {
        Ok(Self {
            normalize_x: true,
            ..Self::new(arch)?
        })
    }

    /// Draws the weights (`N(0, 1)` each, in layout order).
    pub fn sample_weights<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        (0..self.arch.num_params())
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect()
    }

    /// Draws one dataset of `n` raw points (weights, then inputs, then labels).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> BnnDataset {
        let weights = self.sample_weights(rng);
        let x: Vec<f64> = (0..n * self.arch.features)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let class1_probabilities = class1_probabilities_unchecked(&self.arch, &weights, &x);
        let labels = class1_probabilities
            .iter()
            .map(|&p| f64::from(u8::from(rng.random::<f64>() < p)))
            .collect();
        BnnDataset {
            weights,
            x,
            labels,
            class1_probabilities,
            features: self.arch.features,
        }
    }
}

impl Prior for BnnClassificationPrior {
    fn name(&self) -> String {
        format!(
            "bnn-classification(F={}, H={})",
            self.arch.features, self.arch.hidden
        )
    }

    fn default_num_features(&self) -> usize {
        self.arch.features
    }

    fn feature_range(&self) -> (usize, usize) {
        (self.arch.features, self.arch.features)
    }

    /// Fills `x` (raw, or z-normalised over the sequence with `normalize_x`) and `y = target_y`
    /// with the 0/1 labels; records the weights and the class-1 probabilities the labels were drawn
    /// from as `Hyperparameters::Custom`.
    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let n = data.seq_len();
        if data.num_features() != self.arch.features {
            return Err(PriorError::FeatureCount {
                prior: self.name(),
                min: self.arch.features,
                max: self.arch.features,
                requested: data.num_features(),
            });
        }
        let mut ds = self.sample(rng, n);
        // The probabilities the labels were drawn from (the posterior training targets).
        let class1: Vec<serde_json::Value> = ds
            .class1_probabilities
            .iter()
            .map(|&p| serde_json::Value::from(p))
            .collect();
        if self.normalize_x {
            ContextNormalization::fit(&ds.x, ds.features)?.apply(&mut ds.x)?;
        }
        let (x, y, target_y) = data.parts();
        for (o, v) in x.iter_mut().zip(&ds.x) {
            *o = *v as f32;
        }
        for ((o, t), v) in y.iter_mut().zip(target_y.iter_mut()).zip(&ds.labels) {
            *o = *v as f32;
            *t = *v as f32;
        }
        let weights: Vec<serde_json::Value> = ds.weights.iter().map(|w| (*w).into()).collect();
        Ok(DatasetInfo {
            features_used: self.arch.features,
            hyperparameters: Hyperparameters::Custom {
                value: serde_json::json!({
                    "model": "bnn-classification",
                    "features": self.arch.features,
                    "hidden": self.arch.hidden,
                    "weights": weights,
                    crate::posterior_targets::CLASS1_PROBABILITIES_KEY: class1,
                }),
            },
        })
    }
}

/// Per-feature z-normalisation `(x - mean) / (std + 1e-6)` with statistics from reference rows
/// (the context points at evaluation, the whole sequence in the paper's PFN prior).
#[derive(Debug, Clone, PartialEq)]
pub struct ContextNormalization {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature unbiased standard deviation (0 with a single row).
    pub std: Vec<f64>,
}

/// Checks a row-major matrix of finite values with `features` columns; returns the row count.
fn check_rows(what: &str, x: &[f64], features: usize) -> Result<usize, PriorError> {
    if features == 0 {
        return Err(PriorError::invalid(
            "features",
            format!("`{what}` needs at least one feature column, got 0"),
        ));
    }
    if !x.len().is_multiple_of(features) {
        return Err(PriorError::invalid(
            what,
            format!(
                "{} values are not a whole number of rows of {features} features",
                x.len()
            ),
        ));
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(PriorError::invalid(
            format!("{what}[{index}]"),
            format!("{} is not finite", x[index]),
        ));
    }
    Ok(x.len() / features)
}

impl ContextNormalization {
    /// Statistics of `x` (row-major `n x features`, finite, `n >= 1`).
    pub fn fit(x: &[f64], features: usize) -> Result<Self, PriorError> {
        let n = check_rows("x", x, features)?;
        if n == 0 {
            return Err(PriorError::invalid(
                "x",
                "normalisation statistics need at least one row, got none",
            ));
        }
        let mut mean = vec![0.0; features];
        for row in x.chunks_exact(features) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, v)| *m += v / n as f64);
        }
        let mut std = vec![0.0; features];
        if n > 1 {
            for row in x.chunks_exact(features) {
                std.iter_mut()
                    .zip(row.iter().zip(&mean))
                    .for_each(|(s, (v, m))| *s += (v - m) * (v - m));
            }
            std.iter_mut()
                .for_each(|s| *s = (*s / (n as f64 - 1.0)).sqrt());
        }
        Ok(Self { mean, std })
    }

    /// Normalises `x` (row-major, finite, same number of features) in place.
    pub fn apply(&self, x: &mut [f64]) -> Result<(), PriorError> {
        let f = self.mean.len();
        check_rows("x", x, f)?;
        for row in x.chunks_exact_mut(f) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / (s + NORMALIZATION_EPS);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The documented draw order, replayed by hand from the same stream, and the layer-by-layer
    /// softmax against the collapsed forward.
    #[test]
    fn sample_follows_the_documented_draw_order_and_the_layered_network() {
        let arch = BnnArchitecture::new(2, 3).unwrap();
        let prior = BnnClassificationPrior::new(arch).unwrap();
        let n = 40;
        let ds = prior.sample(&mut PriorRng::seed_from_u64(9), n);
        let mut rng = PriorRng::seed_from_u64(9);
        let w: Vec<f64> = (0..arch.num_params())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let x: Vec<f64> = (0..n * 2).map(|_| rng.sample(StandardNormal)).collect();
        assert_eq!(ds.weights, w);
        assert_eq!(ds.x, x);
        let (f, h) = (2, 3);
        for (row, label) in x.chunks_exact(f).zip(&ds.labels) {
            let hidden: Vec<f64> = (0..h)
                .map(|i| w[h * f + i] + (0..f).map(|j| w[i * f + j] * row[j]).sum::<f64>())
                .collect();
            let logit = |k: usize| {
                w[h * f + h + 2 * h + k]
                    + (0..h)
                        .map(|i| w[h * f + h + k * h + i] * hidden[i])
                        .sum::<f64>()
            };
            let (l0, l1) = (logit(0), logit(1));
            let p1 = l1.exp() / (l0.exp() + l1.exp());
            let u: f64 = rng.random();
            assert_eq!(*label, f64::from(u8::from(u < p1)), "p = {p1}, u = {u}");
        }
        let p = class1_probabilities_unchecked(&arch, &w, &x);
        assert_eq!(p.len(), n);
        assert_eq!(arch.parameter_names().len(), arch.num_params());
        assert_eq!(arch.parameter_names()[6], "fc1.bias[0]");
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(matches!(
            BnnArchitecture::new(0, 5),
            Err(PriorError::InvalidArgument { name, .. }) if name == "features"
        ));
        assert!(matches!(
            BnnArchitecture::new(3, 0),
            Err(PriorError::InvalidArgument { name, .. }) if name == "hidden"
        ));
        assert!(ContextNormalization::fit(&[], 2).is_err());
        assert!(ContextNormalization::fit(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(ContextNormalization::fit(&[1.0, 2.0], 0).is_err());
        assert!(matches!(
            ContextNormalization::fit(&[1.0, f64::NAN], 1),
            Err(PriorError::InvalidArgument { name, .. }) if name == "x[1]"
        ));
        let norm = ContextNormalization::fit(&[1.0, 2.0, 3.0, 4.0], 2).unwrap();
        assert!(norm.apply(&mut [1.0, 2.0, 3.0]).is_err());
    }
}
