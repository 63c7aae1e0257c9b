//! Cholesky factorisation with jitter escalation, and triangular solves, in f64.

use crate::GpError;

/// A lower-triangular Cholesky factor `L` (row-major `n x n`) with `L L^T = A + jitter * I`.
#[derive(Debug, Clone)]
pub struct Cholesky {
    /// Matrix size.
    pub n: usize,
    /// Row-major lower-triangular factor (upper triangle is zero).
    pub l: Vec<f64>,
    /// The jitter that had to be added to the diagonal (0 when none was needed).
    pub jitter: f64,
}

/// Jitter levels tried, relative to the mean diagonal, when the plain factorisation fails.
const JITTER_STEPS: [f64; 7] = [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4];

impl Cholesky {
    /// Factorises a symmetric positive-definite matrix (row-major, only the lower triangle is read).
    /// When it is not numerically positive definite, retries with growing diagonal jitter
    /// (1e-10 up to 1e-4 times the mean diagonal) and records the jitter used.
    pub fn factor(a: &[f64], n: usize) -> Result<Self, GpError> {
        if a.len() != n * n {
            return Err(GpError::Shape(format!(
                "matrix has {} entries, expected {n} x {n}",
                a.len()
            )));
        }
        if a.iter().any(|v| !v.is_finite()) {
            return Err(GpError::NotFinite("covariance matrix".into()));
        }
        let mut l = vec![0.0; n * n];
        if try_factor(a, n, 0.0, &mut l) {
            return Ok(Self { n, l, jitter: 0.0 });
        }
        let mean_diag = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n.max(1) as f64;
        let scale = if mean_diag > 0.0 { mean_diag } else { 1.0 };
        for step in JITTER_STEPS {
            let jitter = step * scale;
            if try_factor(a, n, jitter, &mut l) {
                return Ok(Self { n, l, jitter });
            }
        }
        Err(GpError::NotPositiveDefinite {
            n,
            max_jitter: JITTER_STEPS[JITTER_STEPS.len() - 1] * scale,
        })
    }

    /// Computes `y = L z` (used to draw correlated samples).
    pub fn mul_lower(&self, z: &[f64], out: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let row = &self.l[i * n..i * n + i + 1];
            out[i] = row.iter().zip(&z[..=i]).map(|(a, b)| a * b).sum();
        }
    }

    /// Solves `L x = b` in place.
    pub fn solve_lower_in_place(&self, b: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let row = &self.l[i * n..i * n + i];
            let s: f64 = row.iter().zip(&b[..i]).map(|(a, c)| a * c).sum();
            b[i] = (b[i] - s) / self.l[i * n + i];
        }
    }

    /// Solves `L^T x = b` in place.
    pub fn solve_upper_in_place(&self, b: &mut [f64]) {
        let n = self.n;
        for i in (0..n).rev() {
            let mut s = b[i];
            for k in i + 1..n {
                s -= self.l[k * n + i] * b[k];
            }
            b[i] = s / self.l[i * n + i];
        }
    }

    /// Solves `(L L^T) x = b` in place.
    pub fn solve_in_place(&self, b: &mut [f64]) {
        self.solve_lower_in_place(b);
        self.solve_upper_in_place(b);
    }

    /// `log det(L L^T) = 2 sum log L_ii`.
    pub fn log_det(&self) -> f64 {
        (0..self.n).map(|i| self.l[i * self.n + i].ln()).sum::<f64>() * 2.0
    }
}

/// Row-oriented Cholesky–Banachiewicz; returns false when a pivot is not positive.
fn try_factor(a: &[f64], n: usize, jitter: f64, l: &mut [f64]) -> bool {
    l.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] + jitter - s;
                if !(d > 0.0) || !d.is_finite() {
                    return false;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    true
}
