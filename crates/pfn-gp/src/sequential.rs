//! One-step-ahead predictives `p(y_t | y_0, ..., y_{t-1})` for every prefix of a dataset from a
//! single Cholesky factorisation.
//!
//! The reference code scores the exact GP at context size `t` by conditioning on the first `t`
//! points and evaluating `-log N(y_t; mu_t, var_t + noise)` at point `t`. Because the Cholesky
//! factor of a leading block is the leading block of the full factor, `K + noise I = L L^T`
//! with `z = L^{-1} y` gives all of them at once: `y_t | y_<t ~ N(sum_{k<t} L_tk z_k, L_tt^2)`.
//! This costs `O(N^3 / 3)` instead of `O(N^4)` for `N` separate fits.
//!
//! If the full matrix needs jitter, every prefix sees the same jitter (reported in the result),
//! whereas a separate fit of a short prefix might not have needed it.

use crate::cholesky::factor_symmetric_with;
use crate::inputs::{check_hyper, check_inputs, check_targets};
use crate::kernel::fill_sym_cov;
use crate::posterior::gaussian_log_pdf;
use crate::{GpError, GpHyper};

/// One-step-ahead predictive of every point given all the points before it.
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialPredictive {
    /// `mean[t]`: predictive mean of `y_t` given points `0..t` (0 for `t = 0`).
    pub mean: Vec<f64>,
    /// `var_y[t]`: predictive variance of the observation `y_t` (latent variance + noise).
    pub var_y: Vec<f64>,
    /// `log_density[t] = log N(y_t; mean[t], var_y[t])`.
    pub log_density: Vec<f64>,
    /// Diagonal jitter the factorisation of the full matrix needed (0 when none).
    pub jitter: f64,
}

/// Computes the one-step-ahead predictives of `y` (length `n`) at `x` (row-major `n x d`).
pub fn sequential_predictive(
    x: &[f64],
    y: &[f64],
    d: usize,
    hyper: &GpHyper,
) -> Result<SequentialPredictive, GpError> {
    let n = check_inputs("x", x, d)?;
    check_targets("y", y, n)?;
    check_hyper(hyper, d)?;
    let z_in = hyper.scale_inputs(x, d);
    let chol = factor_symmetric_with(n, |k| {
        fill_sym_cov(hyper.kind, hyper.outputscale, hyper.noise, &z_in, d, k)
    })?;
    let mut z = y.to_vec();
    chol.solve_lower_in_place(&mut z);
    let mut mean = Vec::with_capacity(n);
    let mut var_y = Vec::with_capacity(n);
    let mut log_density = Vec::with_capacity(n);
    for t in 0..n {
        let ltt = chol.l[t * n + t];
        let mu: f64 = chol.l[t * n..t * n + t]
            .iter()
            .zip(&z[..t])
            .map(|(a, b)| a * b)
            .sum();
        let var = ltt * ltt;
        mean.push(mu);
        var_y.push(var);
        log_density.push(gaussian_log_pdf(y[t], mu, var));
    }
    Ok(SequentialPredictive {
        mean,
        var_y,
        log_density,
        jitter: chol.jitter,
    })
}
