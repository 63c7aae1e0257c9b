//! The prior over classification datasets that the BNN baselines assume (spec 4.3), so that
//! experiments draw data from exactly the model SVI and NUTS invert.
//!
//! Per dataset, in this order: every weight `~ N(0, 1)` in the layout of
//! [`crate::bnn::model`], then the inputs `x_i ~ N(0, I_F)` row by row, then the labels
//! `y_i ~ Bernoulli(p(y = 1 | x_i))` (a uniform draw `u < p` gives label 1).
//!
//! The baselines condition on the **raw** inputs, which the model generated (as in the paper's
//! code). The PFN instead sees inputs z-normalised per feature: the paper's PFN prior normalises
//! over the whole sequence ([`BnnClassificationPrior::normalize_x`]) and its evaluation with the
//! statistics of the context points ([`ContextNormalization`]); both use
//! `(x - mean) / (std + 1e-6)` with the unbiased standard deviation.

use pfn_prior::rng::PriorRng;
use pfn_prior::{DatasetInfo, DatasetMut, DatasetPosition, Hyperparameters, Prior, PriorError};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::bnn::model::{class1_probabilities_unchecked, BnnArchitecture, BnnData};
use crate::error::{check_matrix, BaselineError};

/// Added to the standard deviation before dividing (as in the paper's code).
pub const NORMALIZATION_EPS: f64 = 1e-6;

/// The BNN classification prior of the paper's Fig. 5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnnClassificationPrior {
    /// The network sizes.
    pub arch: BnnArchitecture,
    /// Whether [`Prior::sample_dataset`] z-normalises each x column over the whole sequence (the
    /// paper's PFN training data); the labels always come from the raw inputs.
    pub normalize_x: bool,
}

/// One dataset drawn from [`BnnClassificationPrior`], in f64 with raw inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnDataset {
    /// The drawn weights (layout of [`crate::bnn::model`]).
    pub weights: Vec<f64>,
    /// Raw inputs, row-major `n x F`.
    pub x: Vec<f64>,
    /// Labels, 0.0 or 1.0.
    pub labels: Vec<f64>,
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

    /// Splits into the first `n_context` points (the revealed data) and the rest (the test set:
    /// inputs row-major `m x F` and labels).
    pub fn split(&self, n_context: usize) -> Result<(BnnData, Vec<f64>, Vec<f64>), BaselineError> {
        if n_context > self.len() {
            return Err(BaselineError::option(
                "n_context",
                format!(
                    "{n_context} exceeds the {} points of the dataset",
                    self.len()
                ),
            ));
        }
        let f = self.features;
        let context = BnnData::new(&self.x[..n_context * f], &self.labels[..n_context], f)?;
        Ok((
            context,
            self.x[n_context * f..].to_vec(),
            self.labels[n_context..].to_vec(),
        ))
    }
}

impl BnnClassificationPrior {
    /// The prior of `arch` without x normalisation.
    pub fn new(arch: BnnArchitecture) -> Result<Self, BaselineError> {
        arch.validate()?;
        Ok(Self {
            arch,
            normalize_x: false,
        })
    }

    /// Draws the weights (`N(0, 1)` each, in layout order).
    pub fn sample_weights<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        (0..self.arch.num_params())
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect()
    }

    /// Draws one dataset of `n` points (weights, then inputs, then labels).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> BnnDataset {
        let weights = self.sample_weights(rng);
        let x: Vec<f64> = (0..n * self.arch.features)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let labels = class1_probabilities_unchecked(&self.arch, &weights, &x)
            .into_iter()
            .map(|p| f64::from(u8::from(rng.random::<f64>() < p)))
            .collect();
        BnnDataset {
            weights,
            x,
            labels,
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
    /// with the 0/1 labels; records the weights as `Hyperparameters::Custom`.
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
        if self.normalize_x {
            ContextNormalization::fit(&ds.x, ds.features)
                .and_then(|norm| norm.apply(&mut ds.x))
                .map_err(|e| PriorError::invalid("x", e.to_string()))?;
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

impl ContextNormalization {
    /// Statistics of `x` (row-major `n x features`, `n >= 1`).
    pub fn fit(x: &[f64], features: usize) -> Result<Self, BaselineError> {
        let n = check_matrix("x", x, features)?;
        if n == 0 {
            return Err(BaselineError::empty(
                "x",
                "normalisation statistics need at least one row",
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

    /// Normalises `x` (row-major, same number of features) in place.
    pub fn apply(&self, x: &mut [f64]) -> Result<(), BaselineError> {
        let f = self.mean.len();
        check_matrix("x", x, f)?;
        for row in x.chunks_exact_mut(f) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / (s + NORMALIZATION_EPS);
            }
        }
        Ok(())
    }
}
