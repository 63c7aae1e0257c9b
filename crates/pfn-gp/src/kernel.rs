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
        if d == 0 {
            return Vec::new();
        }
        let n = x.len() / d;
        let z = self.scale_inputs(x, d);
        let mut k = vec![0.0; n * n];
        fill_sym_cov(self.kind, self.outputscale, self.noise, &z, d, &mut k);
        k
    }

    /// Cross-covariance `K(a, b)` (row-major `na x nb`), inputs row-major with `d` columns.
    pub fn cross_cov(&self, a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
        if d == 0 {
            return Vec::new();
        }
        let za = self.scale_inputs(a, d);
        let zb = self.scale_inputs(b, d);
        let mut k = vec![0.0; (za.len() / d) * (zb.len() / d)];
        fill_cross_cov(self.kind, self.outputscale, &za, &zb, d, &mut k);
        k
    }

    /// Inputs divided by their lengthscales, `z_ij = x_ij / l_j` (row-major `n x d`), so that
    /// the scaled squared distance becomes the plain squared Euclidean distance between rows.
    /// Trailing values that do not fill a complete row are dropped.
    pub fn scale_inputs(&self, x: &[f64], d: usize) -> Vec<f64> {
        let mut z = Vec::new();
        self.scale_inputs_into(x, d, &mut z);
        z
    }

    /// Like [`GpHyper::scale_inputs`], writing into `out` (resized, allocation reused).
    pub fn scale_inputs_into(&self, x: &[f64], d: usize, out: &mut Vec<f64>) {
        out.clear();
        if d == 0 {
            return;
        }
        let n = x.len() / d;
        out.extend_from_slice(&x[..n * d]);
        if self.lengthscales.len() == 1 {
            let inv = 1.0 / self.lengthscales[0];
            out.iter_mut().for_each(|v| *v *= inv);
        } else {
            for row in out.chunks_exact_mut(d) {
                for (v, l) in row.iter_mut().zip(&self.lengthscales) {
                    *v /= l;
                }
            }
        }
    }
}

/// Squared Euclidean distance between two equally long rows.
#[inline(always)]
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (p, q) in a.iter().zip(b) {
        let t = p - q;
        s += t * t;
    }
    s
}

#[inline(always)]
fn rbf_unit(r2: f64) -> f64 {
    (-0.5 * r2).exp()
}

/// Beyond this `sqrt5 r` the Matérn kernel and its derivative are below 1e-300 and are returned as
/// 0: the polynomial factor would otherwise overflow to infinity times a zero exponential (NaN) for
/// huge distances (e.g. tiny lengthscales proposed by a sampler).
const MATERN_CUTOFF: f64 = 745.0;

#[inline(always)]
fn matern52_unit(r2: f64) -> f64 {
    let r = r2.max(0.0).sqrt();
    let s5r = 5f64.sqrt() * r;
    if s5r > MATERN_CUTOFF {
        return 0.0;
    }
    (1.0 + s5r + 5.0 / 3.0 * r2) * (-s5r).exp()
}

/// Fills `out` (row-major `n x n`, fully symmetric) with `outputscale * k(z_i, z_j)` plus `diag`
/// on the diagonal, for lengthscale-scaled inputs `z` (row-major `n x d`, `d >= 1`).
pub(crate) fn fill_sym_cov(
    kind: KernelKind,
    outputscale: f64,
    diag: f64,
    z: &[f64],
    d: usize,
    out: &mut [f64],
) {
    match kind {
        KernelKind::Rbf => fill_sym_impl(rbf_unit, outputscale, diag, z, d, out),
        KernelKind::Matern52 => fill_sym_impl(matern52_unit, outputscale, diag, z, d, out),
    }
}

#[inline(always)]
fn fill_sym_impl<G: Fn(f64) -> f64>(
    g: G,
    outputscale: f64,
    diag: f64,
    z: &[f64],
    d: usize,
    out: &mut [f64],
) {
    let n = z.len() / d;
    debug_assert_eq!(out.len(), n * n);
    for i in 0..n {
        let zi = &z[i * d..(i + 1) * d];
        for j in 0..i {
            let v = outputscale * g(sq_dist(zi, &z[j * d..(j + 1) * d]));
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
        out[i * n + i] = outputscale + diag;
    }
}

/// Fills `out` (row-major `na x nb`) with `outputscale * k(za_i, zb_j)` for lengthscale-scaled
/// inputs.
pub(crate) fn fill_cross_cov(
    kind: KernelKind,
    outputscale: f64,
    za: &[f64],
    zb: &[f64],
    d: usize,
    out: &mut [f64],
) {
    match kind {
        KernelKind::Rbf => fill_cross_impl(rbf_unit, outputscale, za, zb, d, out),
        KernelKind::Matern52 => fill_cross_impl(matern52_unit, outputscale, za, zb, d, out),
    }
}

#[inline(always)]
fn fill_cross_impl<G: Fn(f64) -> f64>(
    g: G,
    outputscale: f64,
    za: &[f64],
    zb: &[f64],
    d: usize,
    out: &mut [f64],
) {
    let nb = zb.len() / d;
    for (row, a) in out.chunks_exact_mut(nb.max(1)).zip(za.chunks_exact(d)) {
        for (o, b) in row.iter_mut().zip(zb.chunks_exact(d)) {
            *o = outputscale * g(sq_dist(a, b));
        }
    }
}

/// The unit-variance kernel as a function of the scaled squared distance `r^2`.
#[inline]
pub fn unit_kernel(kind: KernelKind, r2: f64) -> f64 {
    match kind {
        KernelKind::Rbf => rbf_unit(r2),
        KernelKind::Matern52 => matern52_unit(r2),
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
            if s5r > MATERN_CUTOFF {
                return 0.0;
            }
            -(5.0 / 6.0) * (1.0 + s5r) * (-s5r).exp()
        }
    }
}
