//! The paper's Bayesian neural network for binary classification (spec 4.3) and its log joint
//! density with an explicit gradient.
//!
//! `fc1 = Linear(F, H)`, `fc2 = Linear(H, 2)` applied one after the other with **no nonlinearity
//! between them**, every weight and bias `~ N(0, 1)`, and `y ~ Categorical(softmax(logits))`.
//! The architecture, the parameter layout and the collapsed forward pass live in
//! [`pfn_prior::bnn_classification`] (shared with the PFN training prior) and are re-exported here.
//!
//! # Collapsed evaluation
//!
//! Because the network is linear, `p(y = 1 | x) = sigmoid(delta(x))` with
//! `delta(x) = a . x + e` ([`BnnArchitecture::collapse`]). The log likelihood and its gradient are
//! computed through `(a, e)` in `O(n F + H F)` and mapped back to the weights by the chain rule;
//! [`forward_logits`] keeps the layer-by-layer forward pass as the reference.
//!
//! Inference is in f64 (NUTS needs accurate energies); the paper's neural model (the PFN) is the
//! f32 part of the project.

pub use pfn_prior::bnn_classification::{class1_probabilities_unchecked, BnnArchitecture};
use pfn_prior::bnn_classification::{BnnLayers, CollapsedBnn};

use crate::error::{check_finite, check_matrix, BaselineError};
use crate::logistic::{log_sigmoid, sigmoid};
use crate::nuts::{DensityError, LogDensity};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Checks the length and finiteness of a parameter vector of `arch`.
pub(crate) fn check_params(arch: &BnnArchitecture, theta: &[f64]) -> Result<(), BaselineError> {
    arch.validate()?;
    if theta.len() != arch.num_params() {
        return Err(BaselineError::shape(
            "theta",
            format!(
                "{} parameters (F = {}, H = {})",
                arch.num_params(),
                arch.features,
                arch.hidden
            ),
            format!("{} values", theta.len()),
        ));
    }
    check_finite("theta", theta)
}

/// Labelled inputs of a BNN: `x` row-major `n x F`, labels in {0, 1}.
#[derive(Debug, Clone, PartialEq)]
pub struct BnnData {
    x: Vec<f64>,
    labels: Vec<f64>,
    features: usize,
}

impl BnnData {
    /// Validates and copies `x` (row-major `n x features`, finite) and `labels` (`n` values, each
    /// exactly 0 or 1). `n = 0` is allowed (the posterior is then the prior).
    pub fn new(x: &[f64], labels: &[f64], features: usize) -> Result<Self, BaselineError> {
        let n = check_matrix("x", x, features)?;
        check_labels("labels", labels, n)?;
        Ok(Self {
            x: x.to_vec(),
            labels: labels.to_vec(),
            features,
        })
    }

    /// Like [`BnnData::new`] from f32 buffers (e.g. a `pfn_prior::Batch`).
    pub fn from_f32(x: &[f32], labels: &[f32], features: usize) -> Result<Self, BaselineError> {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let labels: Vec<f64> = labels.iter().map(|&v| v as f64).collect();
        Self::new(&x, &labels, features)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The inputs, row-major `n x F`.
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// The labels (0.0 or 1.0).
    pub fn labels(&self) -> &[f64] {
        &self.labels
    }
}

/// Checks that `labels` has `n` entries, each exactly 0 or 1.
pub(crate) fn check_labels(what: &str, labels: &[f64], n: usize) -> Result<(), BaselineError> {
    if labels.len() != n {
        return Err(BaselineError::shape(
            what,
            format!("{n} labels (one per input row)"),
            format!("{} labels", labels.len()),
        ));
    }
    match labels.iter().position(|&v| v != 0.0 && v != 1.0) {
        Some(index) => Err(BaselineError::InvalidLabel {
            what: what.into(),
            index,
            value: labels[index],
        }),
        None => Ok(()),
    }
}

/// Layer-by-layer logits `fc2(fc1(x))` of every row of `x` (row-major `n x F`).
pub fn forward_logits(
    arch: &BnnArchitecture,
    theta: &[f64],
    x: &[f64],
) -> Result<Vec<[f64; 2]>, BaselineError> {
    check_params(arch, theta)?;
    check_matrix("x", x, arch.features)?;
    let (f, h) = (arch.features, arch.hidden);
    let BnnLayers {
        fc1_weight: w1,
        fc1_bias: b1,
        fc2_weight: w2,
        fc2_bias: b2,
    } = arch.layers(theta);
    let mut hidden = vec![0.0; h];
    Ok(x.chunks_exact(f)
        .map(|row| {
            for (i, hi) in hidden.iter_mut().enumerate() {
                *hi = b1[i]
                    + w1[i * f..(i + 1) * f]
                        .iter()
                        .zip(row)
                        .map(|(w, v)| w * v)
                        .sum::<f64>();
            }
            let mut out = [0.0; 2];
            for (k, o) in out.iter_mut().enumerate() {
                *o = b2[k]
                    + w2[k * h..(k + 1) * h]
                        .iter()
                        .zip(&hidden)
                        .map(|(w, v)| w * v)
                        .sum::<f64>();
            }
            out
        })
        .collect())
}

/// `p(y = 1 | x, theta)` = the softmax probability of class 1, for every row of `x`.
pub fn class1_probabilities(
    arch: &BnnArchitecture,
    theta: &[f64],
    x: &[f64],
) -> Result<Vec<f64>, BaselineError> {
    check_params(arch, theta)?;
    check_matrix("x", x, arch.features)?;
    Ok(class1_probabilities_unchecked(arch, theta, x))
}

/// The log joint density `log p(theta) + sum_i log p(y_i | x_i, theta)` of the BNN on `data`, as a
/// [`LogDensity`] over the weights for NUTS and SVI.
#[derive(Debug, Clone)]
pub struct BnnPosterior {
    arch: BnnArchitecture,
    data: BnnData,
    grad_a: Vec<f64>,
}

impl BnnPosterior {
    /// The posterior of `arch`'s weights given `data` (whose feature count must match).
    pub fn new(arch: BnnArchitecture, data: BnnData) -> Result<Self, BaselineError> {
        arch.validate()?;
        if data.features != arch.features {
            return Err(BaselineError::shape(
                "data",
                format!("{} features (the architecture's F)", arch.features),
                format!("{} features", data.features),
            ));
        }
        Ok(Self {
            grad_a: vec![0.0; arch.features],
            arch,
            data,
        })
    }

    /// The architecture.
    pub fn architecture(&self) -> &BnnArchitecture {
        &self.arch
    }

    /// The data conditioned on.
    pub fn data(&self) -> &BnnData {
        &self.data
    }

    /// The log joint density at `theta` (validated).
    pub fn log_joint(&mut self, theta: &[f64]) -> Result<f64, BaselineError> {
        let mut grad = vec![0.0; self.arch.num_params()];
        self.log_joint_and_grad(theta, &mut grad)
    }

    /// The log joint density at `theta` and its gradient, written into `grad` (both validated).
    pub fn log_joint_and_grad(
        &mut self,
        theta: &[f64],
        grad: &mut [f64],
    ) -> Result<f64, BaselineError> {
        check_params(&self.arch, theta)?;
        if grad.len() != theta.len() {
            return Err(BaselineError::shape(
                "grad",
                format!("{} values", theta.len()),
                format!("{} values", grad.len()),
            ));
        }
        Ok(self.eval(theta, grad))
    }

    /// The unchecked evaluation (lengths are guaranteed by the callers).
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (f, h) = (self.arch.features, self.arch.hidden);
        let CollapsedBnn {
            slope: a,
            offset: e,
            output_difference: v,
        } = self.arch.collapse(theta);
        // Likelihood through delta = a . x + e.
        let mut log_lik = 0.0;
        let mut grad_e = 0.0;
        self.grad_a.fill(0.0);
        for (row, &y) in self.data.x.chunks_exact(f).zip(&self.data.labels) {
            let delta = e + a.iter().zip(row).map(|(p, q)| p * q).sum::<f64>();
            log_lik += if y == 1.0 {
                log_sigmoid(delta)
            } else {
                log_sigmoid(-delta)
            };
            let r = y - sigmoid(delta);
            grad_e += r;
            for (g, xv) in self.grad_a.iter_mut().zip(row) {
                *g += r * xv;
            }
        }
        // Chain rule back to the weights.
        let BnnLayers {
            fc1_weight: w1,
            fc1_bias: b1,
            ..
        } = self.arch.layers(theta);
        let (gw1, rest) = grad.split_at_mut(h * f);
        let (gb1, rest) = rest.split_at_mut(h);
        let (gw2, gb2) = rest.split_at_mut(2 * h);
        for i in 0..h {
            let w1_row = &w1[i * f..(i + 1) * f];
            let mut gv = b1[i] * grad_e;
            for (j, g) in gw1[i * f..(i + 1) * f].iter_mut().enumerate() {
                *g = v[i] * self.grad_a[j];
                gv += w1_row[j] * self.grad_a[j];
            }
            gb1[i] = v[i] * grad_e;
            gw2[h + i] = gv;
            gw2[i] = -gv;
        }
        gb2[1] = grad_e;
        gb2[0] = -grad_e;
        // Standard normal prior on every parameter.
        let mut log_prior = -HALF_LN_2PI * theta.len() as f64;
        for (g, t) in grad.iter_mut().zip(theta) {
            log_prior -= 0.5 * t * t;
            *g -= t;
        }
        log_prior + log_lik
    }
}

impl LogDensity for BnnPosterior {
    fn dim(&self) -> usize {
        self.arch.num_params()
    }

    fn log_density_and_grad(
        &mut self,
        theta: &[f64],
        grad: &mut [f64],
    ) -> Result<f64, DensityError> {
        if theta.len() != self.dim() || grad.len() != self.dim() {
            return Err(DensityError::Fatal(format!(
                "theta / grad have {} / {} entries, expected {}",
                theta.len(),
                grad.len(),
                self.dim()
            )));
        }
        Ok(self.eval(theta, grad))
    }
}
