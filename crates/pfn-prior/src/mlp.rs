//! Random-MLP ("BNN") regression prior (paper §5.3 and the tabular prior of §6 / spec §4.3–4.4).
//!
//! Per dataset: draw every weight `~ N(0, weight_std²)` and bias `~ N(0, bias_std²)` of an MLP
//! `Linear(F, H) → [act → Linear(H, H) + noise] × (layers − 2) → act → Linear(H, 1) + noise`, with i.i.d.
//! `N(0, noise_std²)` noise added after every linear layer except the first (as in the paper code's
//! tabular MLP prior). Then draw `x ~ N(0, I_F)`, push it through the network, and optionally z-normalise
//! each x column and y over the whole sequence: `(v − mean) / (std + 1e-6)` with the unbiased std (0 for
//! a single point), as in the paper code. `target_y = y`.

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, PriorError};
use crate::fastmath::{affine_rows, tanh_in_place};
use crate::hyperparameters::{Hyperparameters, MlpDraw};
use crate::inputs::{fill_standard_normal, std_normal};
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// Nonlinearity between linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// `max(0, v)`.
    Relu,
    /// No nonlinearity (the network is linear in x).
    Identity,
}

impl Activation {
    /// Applies the nonlinearity.
    #[inline]
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Self::Tanh => crate::fastmath::tanh(v),
            Self::Relu => v.max(0.0),
            Self::Identity => v,
        }
    }
}

/// Configuration of [`MlpPrior`]; validated by [`MlpPrior::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Number of linear layers (≥ 1; 1 is a linear model with no hidden layer).
    pub layers: usize,
    /// Hidden width (≥ 1; unused when `layers == 1`).
    pub width: usize,
    /// Nonlinearity applied after every linear layer except the last.
    pub activation: Activation,
    /// Standard deviation of every weight.
    pub weight_std: f64,
    /// Standard deviation of every bias.
    pub bias_std: f64,
    /// Standard deviation of the noise added after every linear layer except the first.
    pub noise_std: f64,
    /// Z-normalise each x column per dataset.
    pub normalize_x: bool,
    /// Z-normalise y per dataset.
    pub normalize_y: bool,
    /// Number of features when the caller does not choose.
    pub default_num_features: usize,
}

impl Default for MlpConfig {
    /// Three linear layers of width 64 with tanh (the paper's tabular choice), weight and bias std 0.25
    /// and noise std 0.1 (about the means of the paper's Gamma hyper-priors on them), both normalisations
    /// on, 3 features (the "small" BNN experiment).
    fn default() -> Self {
        Self {
            layers: 3,
            width: 64,
            activation: Activation::Tanh,
            weight_std: 0.25,
            bias_std: 0.25,
            noise_std: 0.1,
            normalize_x: true,
            normalize_y: true,
            default_num_features: 3,
        }
    }
}

/// Random-MLP regression prior; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpPrior {
    config: MlpConfig,
}

/// Added to the standard deviation before dividing, as in the paper code.
const NORM_EPS: f64 = 1e-6;

impl MlpPrior {
    /// Validates `config` and builds the prior.
    pub fn new(config: MlpConfig) -> Result<Self, PriorError> {
        if config.layers == 0 {
            return Err(PriorError::invalid("layers", "must be at least 1"));
        }
        if config.width == 0 {
            return Err(PriorError::invalid("width", "must be at least 1"));
        }
        if config.default_num_features == 0 {
            return Err(PriorError::invalid(
                "default_num_features",
                "must be at least 1",
            ));
        }
        check_non_negative("weight_std", config.weight_std)?;
        check_non_negative("bias_std", config.bias_std)?;
        check_non_negative("noise_std", config.noise_std)?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Layer widths `[F, H, ..., H, 1]`.
    fn dims(&self, num_features: usize) -> Vec<usize> {
        let l = self.config.layers;
        (0..=l)
            .map(|i| match i {
                0 => num_features,
                i if i == l => 1,
                _ => self.config.width,
            })
            .collect()
    }
}

/// Mean and unbiased std (0 for fewer than two values) of `values` read with stride.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count();
    let mean = values.clone().sum::<f64>() / n as f64;
    let ss: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
    let std = if n > 1 {
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Z-normalises `values` in place, `(v − mean) / (std + 1e-6)` with the unbiased std (the paper
/// code's rule); returns the `(mean, std)` used.
pub(crate) fn z_normalize(values: &mut [f64]) -> (f64, f64) {
    let (m, sd) = mean_std(values.iter().copied());
    values
        .iter_mut()
        .for_each(|v| *v = (*v - m) / (sd + NORM_EPS));
    (m, sd)
}

/// Z-normalises every column of `x` (row-major, `f` columns) over its rows in place, by the rule
/// of [`z_normalize`] (statistics in f64 of the f32 values); returns the per-column `(mean, std)`.
pub(crate) fn z_normalize_columns(x: &mut [f32], f: usize) -> Vec<(f64, f64)> {
    let stats: Vec<(f64, f64)> = (0..f)
        .map(|j| mean_std(x.iter().skip(j).step_by(f).map(|&v| v as f64)))
        .collect();
    for row in x.chunks_exact_mut(f) {
        for (v, &(m, sd)) in row.iter_mut().zip(&stats) {
            *v = ((*v as f64 - m) / (sd + NORM_EPS)) as f32;
        }
    }
    stats
}

impl Prior for MlpPrior {
    fn name(&self) -> String {
        "mlp".into()
    }

    fn default_num_features(&self) -> usize {
        self.config.default_num_features
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        self.sample_with_inputs(rng, data, fill_standard_normal)
    }
}

impl MlpPrior {
    /// One dataset whose inputs `fill_x(rng, x)` writes (row-major, the dataset's feature count
    /// of columns) after the network's parameters are drawn; [`Prior::sample_dataset`] is this with
    /// `x ~ N(0, I)`. The tabular priors draw table-like columns this way.
    pub fn sample_with_inputs(
        &self,
        rng: &mut PriorRng,
        mut data: DatasetMut<'_>,
        fill_x: impl FnOnce(&mut PriorRng, &mut [f32]),
    ) -> Result<DatasetInfo, PriorError> {
        let c = &self.config;
        let (s, f) = (data.seq_len(), data.num_features());
        let dims = self.dims(f);
        // Parameters, layer by layer: weights (in x out, row-major), then biases.
        let params: Vec<(Vec<f64>, Vec<f64>)> = dims
            .windows(2)
            .map(|w| {
                let weights = (0..w[0] * w[1])
                    .map(|_| c.weight_std * std_normal(rng))
                    .collect();
                let biases = (0..w[1]).map(|_| c.bias_std * std_normal(rng)).collect();
                (weights, biases)
            })
            .collect();
        let (x, y, target_y) = data.parts();
        fill_x(rng, x);

        let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut next = Vec::new();
        for (l, (weights, biases)) in params.iter().enumerate() {
            let (d_in, d_out) = (dims[l], dims[l + 1]);
            next.clear();
            next.resize(s * d_out, 0.0);
            affine_rows(&h, d_in, weights, biases, &mut next);
            if l > 0 && c.noise_std > 0.0 {
                for v in next.iter_mut() {
                    *v += c.noise_std * std_normal(rng);
                }
            }
            if l + 1 < params.len() {
                match c.activation {
                    Activation::Tanh => tanh_in_place(&mut next),
                    other => next.iter_mut().for_each(|v| *v = other.apply(*v)),
                }
            }
            std::mem::swap(&mut h, &mut next);
        }

        let y_normalization = c.normalize_y.then(|| z_normalize(&mut h));
        for ((yi, ti), &v) in y.iter_mut().zip(target_y.iter_mut()).zip(&h) {
            *yi = v as f32;
            *ti = v as f32;
        }
        let x_normalization = c.normalize_x.then(|| z_normalize_columns(x, f));
        Ok(DatasetInfo {
            features_used: f,
            hyperparameters: Hyperparameters::Mlp(MlpDraw {
                layers: c.layers,
                width: c.width,
                activation: c.activation,
                weight_std: c.weight_std,
                bias_std: c.bias_std,
                noise_std: c.noise_std,
                x_normalization,
                y_normalization,
            }),
        })
    }
}
