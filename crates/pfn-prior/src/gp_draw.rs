//! Drawing one zero-mean GP sample `y ~ N(0, K(x, x) + noise I)` at given inputs, fast.
//!
//! The covariance is built directly, column by column, into a per-thread buffer (no allocation after
//! the first dataset of a given size): inputs are divided by their lengthscales once, then the lower
//! triangle of `K + noise I` is filled (with the vectorised `exp` of the `fastmath` module) and factorised in place with faer's blocked SIMD Cholesky. If that
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
use crate::fastmath::{matern52_profile, rbf_profile};
use crate::rng::PriorRng;

/// Reusable per-thread buffers.
struct Scratch {
    /// Inputs divided by their lengthscales, `n x d` row-major.
    scaled_x: Vec<f64>,
    /// Backing store of the column-major `n x n` matrix (the lower triangle holds the covariance, then
    /// its Cholesky factor), used from its first 128-byte-aligned element: faer's SIMD kernels split
    /// their loops by pointer alignment, so a fixed alignment keeps every draw bit-identical whichever
    /// thread (and allocation) runs it.
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
            stack: MemBuffer::new(cholesky_in_place_scratch::<f64>(
                0,
                Par::Seq,
                Default::default(),
            )),
            stack_n: 0,
        }
    }
}

/// Alignment of the covariance buffer, in bytes.
const COV_ALIGN_BYTES: usize = 128;
/// Extra elements allocated so an aligned start always exists.
const COV_ALIGN_SLACK: usize = COV_ALIGN_BYTES / std::mem::size_of::<f64>();

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
    draw(hyper, x, num_features, rng, out).map(|_| ())
}

/// Which factorisation a draw used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factorisation {
    /// faer's in-place Cholesky on the per-thread buffer.
    Fast,
    /// `pfn_gp::Cholesky::factor` with jitter escalation.
    Jittered,
}

/// [`sample_gp_at`], reporting the factorisation used.
fn draw(
    hyper: &GpHyper,
    x: &[f32],
    num_features: usize,
    rng: &mut PriorRng,
    out: &mut [f32],
) -> Result<Factorisation, PriorError> {
    let n = out.len();
    check_inputs(hyper, x, num_features, n)?;
    if n == 0 {
        return Ok(Factorisation::Fast);
    }
    let cov_len = n
        .checked_mul(n)
        .and_then(|nn| nn.checked_add(COV_ALIGN_SLACK))
        .ok_or_else(|| PriorError::invalid("seq_len", format!("{n} x {n} covariance overflows")))?;
    SCRATCH.with(|cell| {
        let mut guard = cell.borrow_mut();
        let s = &mut *guard;
        let d = num_features;
        scale_inputs(hyper, x, d, n, &mut s.scaled_x);
        if s.cov.len() < cov_len {
            s.cov
                .try_reserve_exact(cov_len - s.cov.len())
                .map_err(|e| {
                    PriorError::invalid(
                        "seq_len",
                        format!("cannot allocate the {n} x {n} covariance: {e}"),
                    )
                })?;
        }
        s.cov.resize(cov_len, 0.0);
        let offset = s.cov.as_ptr().align_offset(COV_ALIGN_BYTES);
        let cov = &mut s.cov[offset..offset + n * n];
        fill_lower_cov(hyper, &s.scaled_x, d, n, cov);

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
            let a = MatMut::from_column_major_slice_mut(&mut *cov, n, n);
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
                let col = &cov[j * n + j..(j + 1) * n];
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
        Ok(if factored {
            Factorisation::Fast
        } else {
            Factorisation::Jittered
        })
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
    let mut scaled = Vec::new();
    scale_inputs(hyper, x, d, n, &mut scaled);
    let mut cov = vec![0.0; n * n];
    fill_lower_cov(hyper, &scaled, d, n, &mut cov);
    for j in 0..n {
        for i in 0..j {
            cov[j * n + i] = cov[i * n + j];
        }
    }
    Ok(cov)
}

/// Writes `x` divided by the lengthscales into `scaled` in feature-major order (`d x n`), so distance
/// loops run over contiguous memory.
fn scale_inputs(hyper: &GpHyper, x: &[f32], d: usize, n: usize, scaled: &mut Vec<f64>) {
    scaled.clear();
    scaled.resize(n * d, 0.0);
    for k in 0..d {
        let inv = 1.0 / hyper.lengthscale(k);
        for (s, row) in scaled[k * n..(k + 1) * n].iter_mut().zip(x.chunks_exact(d)) {
            *s = row[k] as f64 * inv;
        }
    }
}

/// Fills the lower triangle (column-major, `cov[j * n + i]` for `i >= j`) of `K + noise I` from
/// lengthscale-divided, feature-major inputs.
///
/// The strictly-lower part is first packed column after column into the tail of `cov` (its
/// `n (n − 1) / 2` values fit behind the first `n (n + 1) / 2` slots), so the kernel profile runs over
/// one long contiguous slice instead of `n` short ones; then the columns are moved into place, first
/// column first: column `j` ends at `(j + 1) n`, which never exceeds the packed position of column
/// `j + 1` (`n (n + 1) / 2 + (j + 1)(2n − j − 2) / 2`), so no value still to be moved is overwritten.
fn fill_lower_cov(hyper: &GpHyper, scaled_x: &[f64], d: usize, n: usize, cov: &mut [f64]) {
    let o = hyper.outputscale;
    let packed_len = n * (n - 1) / 2;
    let packed_start = n * n - packed_len;
    {
        let packed = &mut cov[packed_start..];
        packed.fill(0.0);
        // Squared scaled distances, one feature at a time (contiguous, vectorisable).
        for k in 0..d {
            let xk = &scaled_x[k * n..(k + 1) * n];
            let mut offset = 0;
            for j in 0..n {
                let len = n - 1 - j;
                let xkj = xk[j];
                for (c, &xi) in packed[offset..offset + len].iter_mut().zip(&xk[j + 1..]) {
                    let t = xi - xkj;
                    *c += t * t;
                }
                offset += len;
            }
        }
        match hyper.kind {
            KernelKind::Rbf => rbf_profile(packed, o),
            KernelKind::Matern52 => matern52_profile(packed, o),
        }
    }
    // Unpack: column j's below-diagonal values start at packed offset j (2n − j − 1) / 2.
    for j in 0..n {
        let len = n - 1 - j;
        let src = packed_start + j * (2 * n - j - 1) / 2;
        cov.copy_within(src..src + len, j * n + j + 1);
        cov[j * n + j] = o + hyper.noise;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::dataset_rng;

    #[test]
    fn well_conditioned_draws_use_the_fast_path_and_match_pfn_gp() {
        // The fast path must not silently fall back (which would hide a broken covariance), and it
        // must agree with pfn-gp's factor of train_cov applied to the same normal draws.
        for (kind, ls, d, n) in [
            (KernelKind::Rbf, vec![0.1], 1, 100),
            (KernelKind::Rbf, vec![0.6], 5, 64),
            (KernelKind::Matern52, vec![0.4, 0.9], 2, 37),
        ] {
            let hyper = GpHyper::new(kind, ls, 1.3, 1e-4).unwrap();
            let x: Vec<f32> = (0..n * d)
                .map(|i| ((i as f32) * 0.618_034).fract())
                .collect();
            let mut y = vec![0.0f32; n];
            let path = draw(&hyper, &x, d, &mut dataset_rng(0, 0, 7), &mut y).unwrap();
            assert_eq!(path, Factorisation::Fast, "{kind:?} n={n}");

            let mut rng = dataset_rng(0, 0, 7);
            let z: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let chol = Cholesky::factor(&hyper.train_cov(&x64, d), n).unwrap();
            let mut want = vec![0.0; n];
            chol.mul_lower(&z, &mut want);
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    (*a as f64 - b).abs() < 1e-5 * b.abs().max(1.0),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn singular_covariance_uses_the_jittered_fallback() {
        let hyper = GpHyper::new(KernelKind::Rbf, vec![0.5], 1.0, 0.0).unwrap();
        let mut y = vec![0.0f32; 3];
        let path = draw(
            &hyper,
            &[0.3, 0.3, 0.3],
            1,
            &mut dataset_rng(0, 0, 0),
            &mut y,
        )
        .unwrap();
        assert_eq!(path, Factorisation::Jittered);
        assert!(y.iter().all(|v| v.is_finite()));
    }
}
