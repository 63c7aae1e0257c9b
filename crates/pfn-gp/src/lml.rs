//! The log marginal likelihood `log p(y | X, h)` of a zero-mean GP and its gradient with respect
//! to the log-hyperparameters (layout in [`crate::log_params`]), optionally plus a hyper-prior.
//!
//! `log p(y) = -1/2 y^T a - 1/2 log det(K + s I) - n/2 log(2 pi)` with `a = (K + s I)^{-1} y`,
//! and `d log p / d theta = 1/2 tr((a a^T - (K + s I)^{-1}) dK/dtheta)`.
//!
//! If the Cholesky needed jitter, the value and gradient are those of `K + (s + jitter) I` with
//! the jitter held fixed.

use crate::cholesky::Cholesky;
use crate::hyper_prior::HyperPrior;
use crate::inputs::{check_hyper, check_inputs, check_targets};
use crate::kernel::{fill_sym_cov, sq_dist};
use crate::{GpError, GpHyper, KernelKind};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Reusable evaluator of the log marginal likelihood on one dataset: it owns the data and all
/// work buffers, so repeated evaluations (as in an optimiser) do not allocate.
#[derive(Debug, Clone)]
pub struct LmlEvaluator {
    x: Vec<f64>,
    y: Vec<f64>,
    d: usize,
    n: usize,
    z: Vec<f64>,
    k: Vec<f64>,
    chol: Cholesky,
    alpha: Vec<f64>,
    kinv: Vec<f64>,
}

impl LmlEvaluator {
    /// Validates and copies the data: `x` row-major `n x d`, `y` of length `n`.
    pub fn new(x: &[f64], y: &[f64], d: usize) -> Result<Self, GpError> {
        let n = check_inputs("x", x, d)?;
        check_targets("y", y, n)?;
        Ok(Self {
            x: x.to_vec(),
            y: y.to_vec(),
            d,
            n,
            z: Vec::with_capacity(n * d),
            k: vec![0.0; n * n],
            chol: Cholesky {
                n,
                l: Vec::with_capacity(n * n),
                jitter: 0.0,
            },
            alpha: vec![0.0; n],
            kinv: vec![0.0; n * n],
        })
    }

    /// Number of observations.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input dimension.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Jitter used by the most recent successful evaluation.
    pub fn last_jitter(&self) -> f64 {
        self.chol.jitter
    }

    /// The log marginal likelihood at `hyper`.
    pub fn value(&mut self, hyper: &GpHyper) -> Result<f64, GpError> {
        check_hyper(hyper, self.d)?;
        self.factor(hyper)
    }

    /// The log marginal likelihood plus, if given, the log hyper-prior density; `grad` (length
    /// [`GpHyper::num_log_params`]) is overwritten with the gradient of that sum with respect to
    /// the log-hyperparameters.
    pub fn value_and_grad(
        &mut self,
        hyper: &GpHyper,
        prior: Option<&HyperPrior>,
        grad: &mut [f64],
    ) -> Result<f64, GpError> {
        check_hyper(hyper, self.d)?;
        if grad.len() != hyper.num_log_params() {
            return Err(GpError::Shape(format!(
                "gradient buffer has {} entries, expected {} (lengthscales + outputscale + noise)",
                grad.len(),
                hyper.num_log_params()
            )));
        }
        let value = self.factor(hyper)?;
        grad.fill(0.0);
        self.add_grad(hyper, grad);
        let log_prior = match prior {
            Some(p) => p.log_density_and_grad(hyper, grad)?,
            None => 0.0,
        };
        Ok(value + log_prior)
    }

    /// Builds `K + noise I`, factors it and solves for alpha; returns the log marginal likelihood.
    fn factor(&mut self, hyper: &GpHyper) -> Result<f64, GpError> {
        let (n, d) = (self.n, self.d);
        hyper.scale_inputs_into(&self.x, d, &mut self.z);
        fill_sym_cov(
            hyper.kind,
            hyper.outputscale,
            hyper.noise,
            &self.z,
            d,
            &mut self.k,
        );
        self.chol.refactor(&self.k, n)?;
        self.alpha.copy_from_slice(&self.y);
        self.chol.solve_in_place(&mut self.alpha);
        let fit: f64 = self.y.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        Ok(-0.5 * fit - 0.5 * self.chol.log_det() - n as f64 * HALF_LN_2PI)
    }

    /// Adds the LML gradient (requires a preceding successful `factor` with the same `hyper`).
    fn add_grad(&mut self, hyper: &GpHyper, grad: &mut [f64]) {
        match hyper.kind {
            KernelKind::Rbf => self.add_grad_impl(hyper, grad, |_r2, k| -0.5 * k),
            KernelKind::Matern52 => self.add_grad_impl(hyper, grad, |r2, _k| {
                let s5r = (5.0 * r2.max(0.0)).sqrt();
                -(5.0 / 6.0) * (1.0 + s5r) * (-s5r).exp()
            }),
        }
    }

    /// `dk(r2, k)` returns `d unit_kernel / d r^2` given `r^2` and the unit kernel value `k`.
    #[inline(always)]
    fn add_grad_impl<F: Fn(f64, f64) -> f64>(&mut self, hyper: &GpHyper, grad: &mut [f64], dk: F) {
        let (n, d) = (self.n, self.d);
        self.chol.inverse_lower_into(&mut self.kinv);
        let o = hyper.outputscale;
        let inv_o = 1.0 / o;
        let ard = hyper.lengthscales.len() > 1;
        let nl = hyper.lengthscales.len();
        let (g_ls, rest) = grad.split_at_mut(nl);
        let mut g_o = 0.0;
        let mut trace_w = 0.0;
        for i in 0..n {
            let ai = self.alpha[i];
            let zi = &self.z[i * d..(i + 1) * d];
            let krow = &self.k[i * n..i * n + i];
            let kinv_row = &self.kinv[i * n..i * n + i];
            for j in 0..i {
                let w = ai * self.alpha[j] - kinv_row[j];
                let kij = krow[j];
                g_o += w * kij;
                let zj = &self.z[j * d..(j + 1) * d];
                let r2 = sq_dist(zi, zj);
                // dK_ij / d log l_m = o g'(r2) (-2 dz_m^2) with dz = z_i - z_j; the pair (i, j)
                // appears twice in the trace, cancelling the 1/2.
                let c = -2.0 * w * o * dk(r2, kij * inv_o);
                if ard {
                    for ((g, a), b) in g_ls.iter_mut().zip(zi).zip(zj) {
                        let t = a - b;
                        *g += c * t * t;
                    }
                } else {
                    g_ls[0] += c * r2;
                }
            }
            trace_w += ai * ai - self.kinv[i * n + i];
        }
        // Diagonal of dK/dlog o is o; of dK/dlog noise is noise; of dK/dlog l is 0.
        rest[0] += g_o + 0.5 * o * trace_w;
        rest[1] += 0.5 * hyper.noise * trace_w;
    }
}

/// The log marginal likelihood of `y` (length `n`) at inputs `x` (row-major `n x d`).
pub fn log_marginal_likelihood(
    x: &[f64],
    y: &[f64],
    d: usize,
    hyper: &GpHyper,
) -> Result<f64, GpError> {
    LmlEvaluator::new(x, y, d)?.value(hyper)
}

/// The log marginal likelihood (plus the log hyper-prior density when `prior` is given) and its
/// gradient with respect to `[log l.., log outputscale, log noise]`.
pub fn log_marginal_likelihood_grad(
    x: &[f64],
    y: &[f64],
    d: usize,
    hyper: &GpHyper,
    prior: Option<&HyperPrior>,
) -> Result<(f64, Vec<f64>), GpError> {
    let mut ev = LmlEvaluator::new(x, y, d)?;
    let mut grad = vec![0.0; hyper.num_log_params()];
    let v = ev.value_and_grad(hyper, prior, &mut grad)?;
    Ok((v, grad))
}
