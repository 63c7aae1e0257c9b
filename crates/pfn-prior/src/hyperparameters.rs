//! The per-dataset record of what a prior drew, serialisable so that a Bayesian baseline (exact GP,
//! NUTS, Bayesian linear regression) can rerun the same model on the same data.

use pfn_gp::GpHyper;
use serde::{Deserialize, Serialize};

use crate::classification::BinarizeRule;
use crate::mlp::Activation;

/// What a prior drew (or fixed) for one dataset.
///
/// Serialised with an internal `"prior"` tag, e.g.
/// `{"prior":"gp","kind":"rbf","lengthscales":[0.1],"outputscale":1.0,"noise":0.0001}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "prior", rename_all = "kebab-case")]
pub enum Hyperparameters {
    /// A zero-mean GP: exactly the kernel and noise whose covariance the targets were drawn from.
    Gp(GpHyper),
    /// A linear model `y = x w + b + noise`.
    Linear(LinearDraw),
    /// A random MLP.
    Mlp(MlpDraw),
    /// A regression prior whose outputs were turned into 0/1 labels.
    Classification {
        /// How the labels were made.
        rule: BinarizeRule,
        /// The threshold used (the per-dataset median) for [`BinarizeRule::Median`], `None` otherwise.
        threshold: Option<f64>,
        /// What the wrapped regression prior drew.
        inner: Box<Hyperparameters>,
    },
    /// A prior sampled with fewer features than the batch has, zero-padded and rescaled.
    FeaturePadding {
        /// Number of leading feature columns that carry data.
        features_used: usize,
        /// Factor the used features were multiplied by after sampling.
        scale: f64,
        /// What the wrapped prior drew (in its own, unscaled inputs).
        inner: Box<Hyperparameters>,
    },
    /// Free-form record for user-defined priors.
    Custom {
        /// Anything serialisable.
        value: serde_json::Value,
    },
    /// The prior has nothing to record.
    None,
}

/// Draw of a linear-regression prior.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearDraw {
    /// Prior standard deviation of each weight.
    pub weight_std: f64,
    /// Prior standard deviation of the intercept (0: no intercept).
    pub bias_std: f64,
    /// Standard deviation of the Gaussian observation noise.
    pub noise_std: f64,
    /// The drawn weights, one per feature.
    pub weights: Vec<f64>,
    /// The drawn intercept.
    pub bias: f64,
    /// Whether `target_y` is the noiseless `x w + b` (else it equals the noisy `y`).
    pub noiseless_target: bool,
}

/// Draw of a random-MLP prior: its architecture, weight scales and the normalisation applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpDraw {
    /// Number of linear layers.
    pub layers: usize,
    /// Hidden width.
    pub width: usize,
    /// Nonlinearity between layers.
    pub activation: Activation,
    /// Standard deviation of every weight.
    pub weight_std: f64,
    /// Standard deviation of every bias.
    pub bias_std: f64,
    /// Standard deviation of the Gaussian noise added after every linear layer except the first.
    pub noise_std: f64,
    /// Per-feature `(mean, std)` subtracted from / divided into x, when x was z-normalised.
    pub x_normalization: Option<Vec<(f64, f64)>>,
    /// `(mean, std)` of the raw outputs, when y was z-normalised.
    pub y_normalization: Option<(f64, f64)>,
}
