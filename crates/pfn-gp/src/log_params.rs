//! The log-hyperparameter vector used for gradients and optimisation.
//!
//! Layout: `[log l_1, ..., log l_L, log outputscale, log noise]` where `L` is the number of
//! lengthscales (1 for a shared lengthscale, `d` for ARD). A noise of 0 maps to `-inf`.

use crate::{GpError, GpHyper, KernelKind};

impl GpHyper {
    /// Number of entries of the log-parameter vector: lengthscales + outputscale + noise.
    pub fn num_log_params(&self) -> usize {
        self.lengthscales.len() + 2
    }

    /// Index of `log outputscale` in the log-parameter vector.
    pub fn outputscale_index(&self) -> usize {
        self.lengthscales.len()
    }

    /// Index of `log noise` in the log-parameter vector.
    pub fn noise_index(&self) -> usize {
        self.lengthscales.len() + 1
    }

    /// The log-parameter vector `[log l.., log outputscale, log noise]`.
    pub fn log_params(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.lengthscales.iter().map(|l| l.ln()).collect();
        v.push(self.outputscale.ln());
        v.push(self.noise.ln());
        v
    }

    /// Builds validated hyperparameters from a log-parameter vector; the number of lengthscales
    /// is `theta.len() - 2`.
    pub fn from_log_params(kind: KernelKind, theta: &[f64]) -> Result<Self, GpError> {
        if theta.len() < 3 {
            return Err(GpError::Shape(format!(
                "log-parameter vector has {} entries, expected at least 3 \
                 (lengthscale(s), outputscale, noise)",
                theta.len()
            )));
        }
        let nl = theta.len() - 2;
        GpHyper::new(
            kind,
            theta[..nl].iter().map(|t| t.exp()).collect(),
            theta[nl].exp(),
            theta[nl + 1].exp(),
        )
    }

    /// Overwrites the hyperparameters from a log-parameter vector of matching length, without
    /// allocating. Values are not validated.
    pub(crate) fn set_log_params(&mut self, theta: &[f64]) {
        let nl = self.lengthscales.len();
        for (l, t) in self.lengthscales.iter_mut().zip(theta) {
            *l = t.exp();
        }
        self.outputscale = theta[nl].exp();
        self.noise = theta[nl + 1].exp();
    }
}
