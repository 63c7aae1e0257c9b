//! Stationary covariance kernels (RBF and Matérn-5/2) with ARD lengthscales, evaluated in f64.

use serde::{Deserialize, Serialize};

use crate::GpError;

/// The kernel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelKind {
    /// Squared exponential: `o * exp(-r^2 / 2)`.
    Rbf,
    /// Matérn with smoothness 5/2: `o * (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`.
    Matern52,
}

/// Hyperparameters of a scaled stationary kernel with Gaussian observation noise.
///
/// `r` is the distance after dividing each input dimension by its lengthscale. A single
/// lengthscale applies to every dimension when `lengthscales.len() == 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpHyper {
    /// Kernel family.
    pub kind: KernelKind,
    /// One lengthscale shared by all dimensions, or one per dimension (ARD).
    pub lengthscales: Vec<f64>,
    /// Signal variance `o`.
    pub outputscale: f64,
    /// Observation noise variance added to the diagonal.
    pub noise: f64,
}

impl GpHyper {
    /// Creates and validates hyperparameters.
    pub fn new(
        kind: KernelKind,
        lengthscales: Vec<f64>,
        outputscale: f64,
        noise: f64,
    ) -> Result<Self, GpError> {
        let h = Self {
            kind,
            lengthscales,
            outputscale,
            noise,
        };
        h.validate()?;
        Ok(h)
    }

    /// Checks that every hyperparameter is finite and positive (noise may be zero).
    pub fn validate(&self) -> Result<(), GpError> {
        if self.lengthscales.is_empty() {
            return Err(GpError::InvalidHyper("no lengthscale given".into()));
        }
        for (i, &l) in self.lengthscales.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) {
                return Err(GpError::InvalidHyper(format!(
                    "lengthscale[{i}] = {l} must be finite and > 0"
                )));
            }
        }
        if !(self.outputscale.is_finite() && self.outputscale > 0.0) {
            return Err(GpError::InvalidHyper(format!(
                "outputscale = {} must be finite and > 0",
                self.outputscale
            )));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(GpError::InvalidHyper(format!(
                "noise = {} must be finite and >= 0",
                self.noise
            )));
        }
        Ok(())
    }

    /// Lengthscale of input dimension `j`.
    #[inline]
    pub fn lengthscale(&self, j: usize) -> f64 {
        if self.lengthscales.len() == 1 {
            self.lengthscales[0]
        } else {
            self.lengthscales[j]
        }
    }

    /// Checks that the lengthscales fit inputs with `d` dimensions.
    pub fn check_dim(&self, d: usize) -> Result<(), GpError> {
        if self.lengthscales.len() != 1 && self.lengthscales.len() != d {
            return Err(GpError::Shape(format!(
                "{} lengthscales for inputs with {d} dimensions",
                self.lengthscales.len()
            )));
        }
        Ok(())
    }

    /// Scaled squared distance `r^2` between two points.
    #[inline]
    pub fn scaled_sq_dist(&self, a: &[f64], b: &[f64]) -> f64 {
        let mut s = 0.0;
        for j in 0..a.len() {
            let d = (a[j] - b[j]) / self.lengthscale(j);
            s += d * d;
        }
        s
    }

    /// Kernel value `k(a, b)` without noise.
    #[inline]
    pub fn k(&self, a: &[f64], b: &[f64]) -> f64 {
        self.outputscale * unit_kernel(self.kind, self.scaled_sq_dist(a, b))
    }

    /// Covariance matrix `K(x, x) + noise * I` (row-major `n x n`), `x` row-major `n x d`.
    pub fn train_cov(&self, x: &[f64], d: usize) -> Vec<f64> {
        let n = x.len() / d.max(1);
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            k[i * n + i] = self.outputscale + self.noise;
            for j in 0..i {
                let v = self.k(xi, &x[j * d..(j + 1) * d]);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
        }
        k
    }

    /// Cross-covariance `K(a, b)` (row-major `na x nb`), inputs row-major with `d` columns.
    pub fn cross_cov(&self, a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
        let na = a.len() / d.max(1);
        let nb = b.len() / d.max(1);
        let mut k = vec![0.0; na * nb];
        for i in 0..na {
            let ai = &a[i * d..(i + 1) * d];
            for j in 0..nb {
                k[i * nb + j] = self.k(ai, &b[j * d..(j + 1) * d]);
            }
        }
        k
    }
}

/// The unit-variance kernel as a function of the scaled squared distance `r^2`.
#[inline]
pub fn unit_kernel(kind: KernelKind, r2: f64) -> f64 {
    match kind {
        KernelKind::Rbf => (-0.5 * r2).exp(),
        KernelKind::Matern52 => {
            let r = r2.max(0.0).sqrt();
            let s5r = 5f64.sqrt() * r;
            (1.0 + s5r + 5.0 / 3.0 * r2) * (-s5r).exp()
        }
    }
}

/// Derivative of [`unit_kernel`] with respect to `r^2`.
#[inline]
pub fn unit_kernel_d_r2(kind: KernelKind, r2: f64) -> f64 {
    match kind {
        KernelKind::Rbf => -0.5 * (-0.5 * r2).exp(),
        KernelKind::Matern52 => {
            // k(r) = (1 + s r + s^2 r^2 / 3) e^{-s r}, s = sqrt5; dk/dr = -(s^2 r / 3)(1 + s r) e^{-s r};
            // dk/d(r^2) = dk/dr / (2r) = -(5/6)(1 + s r) e^{-s r}.
            let r = r2.max(0.0).sqrt();
            let s5r = 5f64.sqrt() * r;
            -(5.0 / 6.0) * (1.0 + s5r) * (-s5r).exp()
        }
    }
}
