//! Drawing one zero-mean GP sample `y ~ N(0, K(x, x) + noise I)` at given inputs, fast.
//!
//! The covariance is built directly, column by column, into a per-thread buffer (no allocation after
//! the first dataset of a given size): inputs are divided by their lengthscales once, then the lower
//! triangle of `K + noise I` is filled and factorised in place with faer's blocked SIMD Cholesky. If that
//! factorisation meets a non-positive pivot, the draw falls back to [`pfn_gp::Cholesky::factor`] (which
//! escalates diagonal jitter) on [`pfn_gp::GpHyper::train_cov`]. The kernel formulas are the ones of
//! `pfn-gp`; a test checks the covariance built here against `GpHyper::train_cov` entry by entry.
//! All algebra is in f64; the covariance is built from the f32-rounded inputs the model will see.

use std::cell::RefCell;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::{MatMut, Par};
use pfn_gp::{Cholesky, GpHyper, KernelKind};
use rand_distr::{Distribution, StandardNormal};

use crate::error::PriorError;
use crate::rng::PriorRng;

/// Reusable per-thread buffers.
struct Scratch {
    /// Inputs divided by their lengthscales, `n x d` row-major.
    scaled_x: Vec<f64>,
    /// Column-major `n x n`; the lower triangle holds the covariance, then its Cholesky factor.
    cov: Vec<f64>,
    /// Standard-normal draws.
    z: Vec<f64>,
    /// The correlated sample `L z`.
    y: Vec<f64>,
    /// faer's factorisation workspace, sized for `stack_n`.
    stack: MemBuffer,
    stack_n: usize,
}

impl Scratch {
    fn new() -> Self {
        Self {
            scaled_x: Vec::new(),
            cov: Vec::new(),
            z: Vec::new(),
            y: Vec::new(),
            stack: MemBuffer::new(cholesky_in_place_scratch::<f64>(0, Par::Seq, Default::default())),
            stack_n: 0,
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Validates `hyper` against inputs with `num_features` columns and `x` against `out`.
fn check_inputs(
    hyper: &GpHyper,
    x: &[f32],
    num_features: usize,
    out_len: usize,
) -> Result<(), PriorError> {
    hyper.validate()?;
    hyper.check_dim(num_features)?;
    if num_features == 0 {
        return Err(PriorError::invalid("num_features", "must be at least 1"));
    }
    let expected = out_len
        .checked_mul(num_features)
        .ok_or_else(|| PriorError::invalid("seq_len * num_features", "overflows usize"))?;
    if x.len() != expected {
        return Err(PriorError::Shape {
            what: "x".into(),
            expected,
            actual: x.len(),
        });
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(PriorError::invalid("x", "contains NaN or infinity"));
    }
    Ok(())
}

/// Draws `out ~ N(0, K(x, x) + noise I)` for inputs `x` (`out.len() x num_features`, row-major).
///
/// Uses `out.len()` standard-normal draws from `rng`. Errors on invalid hyperparameters, mismatched
/// shapes, non-finite inputs, or a covariance that stays indefinite even with jitter.
pub fn sample_gp_at(
    hyper: &GpHyper,
    x: &[f32],
    num_features: usize,
    rng: &mut PriorRng,
    out: &mut [f32],
) -> Result<(), PriorError> {
    let n = out.len();
    check_inputs(hyper, x, num_features, n)?;
    if n == 0 {
        return Ok(());
    }
    SCRATCH.with(|cell| {
        let mut guard = cell.borrow_mut();
        let s = &mut *guard;
        let d = num_features;
        s.scaled_x.clear();
        s.scaled_x.extend(
            x.iter()
                .enumerate()
                .map(|(k, &v)| v as f64 / hyper.lengthscale(k % d)),
        );
        s.cov.resize(n * n, 0.0);
        fill_lower_cov(hyper, &s.scaled_x, d, n, &mut s.cov);

        if s.stack_n < n {
            s.stack = MemBuffer::new(cholesky_in_place_scratch::<f64>(
                n,
                Par::Seq,
                Default::default(),
            ));
            s.stack_n = n;
        }
        s.z.clear();
        s.z.extend((0..n).map(|_| -> f64 { StandardNormal.sample(rng) }));
        s.y.clear();
        s.y.resize(n, 0.0);

        let factored = {
            let a = MatMut::from_column_major_slice_mut(&mut s.cov[..n * n], n, n);
            cholesky_in_place(
                a,
                Default::default(),
                Par::Seq,
                MemStack::new(&mut s.stack),
                Default::default(),
            )
            .is_ok()
        };
        if factored {
            // y = L z, column by column: y[j..] += L[j.., j] z[j] (contiguous in column-major).
            for j in 0..n {
                let zj = s.z[j];
                let col = &s.cov[j * n + j..(j + 1) * n];
                for (yi, &l) in s.y[j..].iter_mut().zip(col) {
                    *yi += l * zj;
                }
            }
        } else {
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let chol = Cholesky::factor(&hyper.train_cov(&x64, d), n)?;
            chol.mul_lower(&s.z, &mut s.y);
        }
        for (o, &v) in out.iter_mut().zip(&s.y) {
            *o = v as f32;
        }
        Ok(())
    })
}

/// The covariance `K(x, x) + noise I` that [`sample_gp_at`] factorises, as a full row-major matrix
/// (for tests and baselines).
pub fn covariance_at(
    hyper: &GpHyper,
    x: &[f32],
    num_features: usize,
) -> Result<Vec<f64>, PriorError> {
    let d = num_features;
    if d == 0 {
        return Err(PriorError::invalid("num_features", "must be at least 1"));
    }
    let n = x.len() / d;
    check_inputs(hyper, x, d, n)?;
    let scaled: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(k, &v)| v as f64 / hyper.lengthscale(k % d))
        .collect();
    let mut cov = vec![0.0; n * n];
    fill_lower_cov(hyper, &scaled, d, n, &mut cov);
    for j in 0..n {
        for i in 0..j {
            cov[j * n + i] = cov[i * n + j];
        }
    }
    Ok(cov)
}

/// Fills the lower triangle (column-major, `cov[j * n + i]` for `i >= j`) of `K + noise I` from
/// lengthscale-divided inputs.
fn fill_lower_cov(hyper: &GpHyper, scaled_x: &[f64], d: usize, n: usize, cov: &mut [f64]) {
    let o = hyper.outputscale;
    for j in 0..n {
        let col = &mut cov[j * n..(j + 1) * n];
        col[j] = o + hyper.noise;
        let below = &mut col[j + 1..];
        // Squared scaled distances first (a tight, vectorisable loop) ...
        if d == 1 {
            let xj = scaled_x[j];
            for (c, &xi) in below.iter_mut().zip(&scaled_x[j + 1..n]) {
                let t = xi - xj;
                *c = t * t;
            }
        } else {
            let xj = &scaled_x[j * d..(j + 1) * d];
            for (c, xi) in below.iter_mut().zip(scaled_x[(j + 1) * d..].chunks_exact(d)) {
                *c = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
            }
        }
        // ... then the kernel profile.
        match hyper.kind {
            KernelKind::Rbf => {
                for c in below.iter_mut() {
                    *c = o * (-0.5 * *c).exp();
                }
            }
            KernelKind::Matern52 => {
                let sqrt5 = 5f64.sqrt();
                for c in below.iter_mut() {
                    let r2 = *c;
                    let s5r = sqrt5 * r2.sqrt();
                    *c = o * (1.0 + s5r + 5.0 / 3.0 * r2) * (-s5r).exp();
                }
            }
        }
    }
}
