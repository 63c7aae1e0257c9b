//! Independent reference implementations and data generators shared by the integration tests.
#![allow(dead_code)]

use pfn_gp::{Cholesky, GpHyper, KernelKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Kernel written directly from its textbook formula (independent of the crate's kernel code).
pub fn naive_kernel(h: &GpHyper, a: &[f64], b: &[f64]) -> f64 {
    let mut r2 = 0.0;
    for j in 0..a.len() {
        let l = if h.lengthscales.len() == 1 {
            h.lengthscales[0]
        } else {
            h.lengthscales[j]
        };
        r2 += ((a[j] - b[j]) / l).powi(2);
    }
    match h.kind {
        KernelKind::Rbf => h.outputscale * (-r2 / 2.0).exp(),
        KernelKind::Matern52 => {
            let r = r2.sqrt();
            h.outputscale * (1.0 + 5f64.sqrt() * r + 5.0 * r * r / 3.0) * (-(5f64.sqrt()) * r).exp()
        }
    }
}

/// Gauss–Jordan inverse with partial pivoting of a dense row-major matrix; also returns
/// log |det|.
pub fn gauss_jordan_inverse(a: &[f64], n: usize) -> (Vec<f64>, f64) {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    let mut log_det = 0.0;
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&p, &q| m[p * n + col].abs().total_cmp(&m[q * n + col].abs()))
            .unwrap();
        if piv != col {
            for k in 0..n {
                m.swap(piv * n + k, col * n + k);
                inv.swap(piv * n + k, col * n + k);
            }
        }
        let p = m[col * n + col];
        log_det += p.abs().ln();
        for k in 0..n {
            m[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = m[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        m[r * n + k] -= f * m[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    (inv, log_det)
}

/// Naive posterior via the explicit inverse: (mean, latent covariance m x m, log marginal lik.).
pub fn naive_posterior(
    x: &[f64],
    y: &[f64],
    d: usize,
    h: &GpHyper,
    xt: &[f64],
) -> (Vec<f64>, Vec<f64>, f64) {
    let n = y.len();
    let m = xt.len() / d;
    let row = |v: &[f64], i: usize| v[i * d..(i + 1) * d].to_vec();
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            k[i * n + j] =
                naive_kernel(h, &row(x, i), &row(x, j)) + if i == j { h.noise } else { 0.0 };
        }
    }
    let (kinv, log_det) = gauss_jordan_inverse(&k, n);
    let mut ks = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            ks[i * n + j] = naive_kernel(h, &row(xt, i), &row(x, j));
        }
    }
    // A = Ks K^{-1} (m x n)
    let mut a = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k2| ks[i * n + k2] * kinv[k2 * n + j]).sum();
        }
    }
    let mean = (0..m)
        .map(|i| (0..n).map(|j| a[i * n + j] * y[j]).sum())
        .collect();
    let mut cov = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..m {
            let prior = naive_kernel(h, &row(xt, i), &row(xt, j));
            let red: f64 = (0..n).map(|k2| a[i * n + k2] * ks[j * n + k2]).sum();
            cov[i * m + j] = prior - red;
        }
    }
    let quad: f64 = (0..n)
        .map(|i| y[i] * (0..n).map(|j| kinv[i * n + j] * y[j]).sum::<f64>())
        .sum();
    let lml = -0.5 * quad - 0.5 * log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    (mean, cov, lml)
}

/// Uniform inputs on [0, 1]^d and smooth-ish targets, seeded.
pub fn random_data(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let s: f64 = x[i * d..(i + 1) * d].iter().sum();
            (4.0 * s).sin() + 0.3 * rng.sample::<f64, _>(StandardNormal)
        })
        .collect();
    (x, y)
}

/// Draws inputs on [0, 1]^d and targets from the GP prior (including noise), seeded.
pub fn sample_gp(n: usize, d: usize, h: &GpHyper, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
    let k = h.train_cov(&x, d);
    let chol = Cholesky::factor(&k, n).unwrap();
    assert_eq!(
        chol.jitter, 0.0,
        "sampling covariance should not need jitter"
    );
    let z: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let mut y = vec![0.0; n];
    chol.mul_lower(&z, &mut y);
    (x, y)
}

/// |a - b| <= tol * max(1, |b|).
pub fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: got {a}, expected {b} (diff {:e})",
        (a - b).abs()
    );
}
