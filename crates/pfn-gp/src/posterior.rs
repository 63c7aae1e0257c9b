//! The exact posterior predictive of a zero-mean GP with Gaussian noise.
//!
//! With `K = K(X, X) + noise I = L L^T`, `a = K^{-1} y`, `k_* = K(X, x_*)` and `v = L^{-1} k_*`:
//! latent mean `k_*^T a`, latent variance `o - v^T v` (clamped at 0 against round-off),
//! observation variance `latent variance + noise`, latent covariance `K(X_*, X_*) - V^T V`.
//! With no training data (`n = 0`) the prior is returned.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::cholesky::{factor_symmetric_with, Cholesky};
use crate::inputs::{check_hyper, check_inputs, check_targets};
use crate::kernel::{fill_cross_cov, fill_sym_cov};
use crate::{GpError, GpHyper};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// A GP conditioned on training data: caches the Cholesky factor and `alpha = K^{-1} y`, so that
/// predictions at many test sets cost `O(n^2 m)` each.
#[derive(Debug, Clone)]
pub struct ExactGp {
    hyper: GpHyper,
    d: usize,
    n: usize,
    /// Training inputs divided by the lengthscales (row-major `n x d`).
    z: Vec<f64>,
    chol: Cholesky,
    alpha: Vec<f64>,
    lml: f64,
}

/// Posterior predictive at `m` test points.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Predictive mean of the latent function (equal to that of `y`).
    pub mean: Vec<f64>,
    /// Predictive variance of the latent function `f`.
    pub var_f: Vec<f64>,
    /// Predictive variance of an observation `y = f + noise`.
    pub var_y: Vec<f64>,
    /// Full latent covariance (row-major `m x m`) when requested.
    pub cov_f: Option<Vec<f64>>,
}

impl ExactGp {
    /// Conditions the GP on `x` (row-major `n x d`) and `y` (length `n`); `n = 0` is allowed.
    pub fn fit(x: &[f64], y: &[f64], d: usize, hyper: &GpHyper) -> Result<Self, GpError> {
        let n = check_inputs("x", x, d)?;
        check_targets("y", y, n)?;
        check_hyper(hyper, d)?;
        let z = hyper.scale_inputs(x, d);
        let chol = factor_symmetric_with(n, |k| {
            fill_sym_cov(hyper.kind, hyper.outputscale, hyper.noise, &z, d, k)
        })?;
        let mut alpha = y.to_vec();
        chol.solve_in_place(&mut alpha);
        let fit: f64 = y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
        let lml = -0.5 * fit - 0.5 * chol.log_det() - n as f64 * HALF_LN_2PI;
        Ok(Self {
            hyper: hyper.clone(),
            d,
            n,
            z,
            chol,
            alpha,
            lml,
        })
    }

    /// Number of training points.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input dimension.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The hyperparameters.
    pub fn hyper(&self) -> &GpHyper {
        &self.hyper
    }

    /// The Cholesky factor of `K(X, X) + noise I` (plus `jitter I` if that was needed).
    pub fn cholesky(&self) -> &Cholesky {
        &self.chol
    }

    /// `alpha = (K(X, X) + noise I)^{-1} y`.
    pub fn alpha(&self) -> &[f64] {
        &self.alpha
    }

    /// Diagonal jitter that the factorisation needed (0 when none).
    pub fn jitter(&self) -> f64 {
        self.chol.jitter
    }

    /// The log marginal likelihood `log p(y | X)` of the training data.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }

    /// Predictive mean and variances at `x_test` (row-major `m x d`).
    pub fn predict(&self, x_test: &[f64]) -> Result<Prediction, GpError> {
        self.predict_impl(x_test, false)
    }

    /// Like [`ExactGp::predict`], also returning the full latent covariance `cov_f`.
    pub fn predict_with_cov(&self, x_test: &[f64]) -> Result<Prediction, GpError> {
        self.predict_impl(x_test, true)
    }

    /// Per-point log predictive densities `log N(y_i; mean_i, var_f_i + noise)` at `x_test`.
    /// The exact-GP NLL reference of the paper is the negation of these values.
    pub fn log_predictive_density(
        &self,
        x_test: &[f64],
        y_test: &[f64],
    ) -> Result<Vec<f64>, GpError> {
        let m = check_inputs("x_test", x_test, self.d)?;
        check_targets("y_test", y_test, m)?;
        self.predict(x_test)?.log_predictive_density(y_test)
    }

    fn predict_impl(&self, x_test: &[f64], full_cov: bool) -> Result<Prediction, GpError> {
        let (n, d) = (self.n, self.d);
        let m = check_inputs("x_test", x_test, d)?;
        let h = &self.hyper;
        let zt = h.scale_inputs(x_test, d);
        // Row i of `v` starts as k(x*_i, X) and becomes L^{-1} k(X, x*_i): column-major n x m.
        let mut v = vec![0.0; m * n];
        fill_cross_cov(h.kind, h.outputscale, &zt, &self.z, d, &mut v);
        let mean: Vec<f64> = if n == 0 {
            vec![0.0; m]
        } else {
            v.chunks_exact(n)
                .map(|row| row.iter().zip(&self.alpha).map(|(a, b)| a * b).sum())
                .collect()
        };
        self.chol.solve_lower_many_in_place(&mut v, m)?;
        let (var_f, cov_f) = if full_cov {
            let mut cov = vec![0.0; m * m];
            fill_sym_cov(h.kind, h.outputscale, 0.0, &zt, d, &mut cov);
            if n > 0 && m > 0 {
                let vm = MatRef::from_column_major_slice(&v, n, m);
                matmul(
                    MatMut::from_row_major_slice_mut(&mut cov, m, m),
                    Accum::Add,
                    vm.transpose(),
                    vm,
                    -1.0,
                    Par::Seq,
                );
            }
            let var: Vec<f64> = (0..m).map(|i| cov[i * m + i].max(0.0)).collect();
            (var, Some(cov))
        } else {
            let var: Vec<f64> = if n == 0 {
                vec![h.outputscale; m]
            } else {
                v.chunks_exact(n)
                    .map(|vi| (h.outputscale - vi.iter().map(|t| t * t).sum::<f64>()).max(0.0))
                    .collect()
            };
            (var, None)
        };
        let var_y = var_f.iter().map(|v| v + h.noise).collect();
        Ok(Prediction {
            mean,
            var_f,
            var_y,
            cov_f,
        })
    }
}

impl Prediction {
    /// Number of test points.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// Whether there are no test points.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    /// Per-point Gaussian log densities `log N(y_i; mean_i, var_y_i)` of observations `y_test`.
    /// With zero noise and zero latent variance the density is degenerate (infinite or NaN).
    pub fn log_predictive_density(&self, y_test: &[f64]) -> Result<Vec<f64>, GpError> {
        check_targets("y_test", y_test, self.len())?;
        Ok(y_test
            .iter()
            .zip(&self.mean)
            .zip(&self.var_y)
            .map(|((y, mu), v)| gaussian_log_pdf(*y, *mu, *v))
            .collect())
    }
}

/// `log N(y; mu, var)`.
#[inline]
pub(crate) fn gaussian_log_pdf(y: f64, mu: f64, var: f64) -> f64 {
    let r = y - mu;
    -HALF_LN_2PI - 0.5 * var.ln() - 0.5 * r * r / var
}

/// One-shot exact posterior: conditions on (`x`, `y`) and predicts at `x_test`, with the full
/// latent covariance when `full_cov` is true.
pub fn posterior(
    x: &[f64],
    y: &[f64],
    d: usize,
    hyper: &GpHyper,
    x_test: &[f64],
    full_cov: bool,
) -> Result<Prediction, GpError> {
    let gp = ExactGp::fit(x, y, d, hyper)?;
    if full_cov {
        gp.predict_with_cov(x_test)
    } else {
        gp.predict(x_test)
    }
}
