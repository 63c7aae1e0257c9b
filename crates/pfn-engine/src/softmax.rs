//! Row-wise softmax with an explicit backward.
//!
//! A row whose entries are all -inf (fully masked) becomes all zeros, an empty distribution, instead
//! of the NaNs that a plain `exp(x - max) / sum` would produce.

use rayon::prelude::*;

use crate::math::exp;
use crate::parallel::rows_per_task;
use crate::simd::{self, multiversion};

/// Softmax of one row in place (inline building block for other kernels).
#[inline(always)]
pub(crate) fn softmax_row(row: &mut [f32]) {
    if row.is_empty() {
        return;
    }
    let m = simd::max(row);
    if m == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    for v in row.iter_mut() {
        *v = exp(*v - m);
    }
    let inv = 1.0 / simd::sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Softmax backward of one row in place: `grad = p * (grad - <p, grad>)`.
#[inline(always)]
pub(crate) fn softmax_backward_row(p: &[f32], grad: &mut [f32]) {
    let d = simd::dot(p, grad);
    for (g, pv) in grad.iter_mut().zip(p) {
        *g = *pv * (*g - d);
    }
}

multiversion! {
    fn softmax_block(x: &mut [f32], cols: usize) {
        for r in x.chunks_exact_mut(cols) {
            softmax_row(r);
        }
    }
}

multiversion! {
    fn softmax_backward_block(p: &[f32], grad: &mut [f32], cols: usize) {
        for (pr, gr) in p.chunks_exact(cols).zip(grad.chunks_exact_mut(cols)) {
            softmax_backward_row(pr, gr);
        }
    }
}

/// Softmax of every row (of `cols` entries) of a row-major matrix, in place.
///
/// # Panics
/// If `cols` is 0 or does not divide `x.len()`.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    assert!(
        cols > 0 && x.len().is_multiple_of(cols),
        "softmax_rows: {} is not a whole number of rows of {cols}",
        x.len()
    );
    let chunk = rows_per_task(x.len() / cols, cols) * cols;
    x.par_chunks_mut(chunk).for_each(|b| softmax_block(b, cols));
}

/// Backward of [`softmax_rows`]: given the probabilities `p` and d loss / d p in `grad`, replaces
/// `grad` by d loss / d logits.
///
/// # Panics
/// If the lengths differ, or `cols` is 0 or does not divide them.
pub fn softmax_backward_rows(p: &[f32], grad: &mut [f32], cols: usize) {
    assert!(
        cols > 0 && p.len() == grad.len() && p.len().is_multiple_of(cols),
        "softmax_backward_rows: inconsistent lengths"
    );
    let chunk = rows_per_task(p.len() / cols, cols) * cols;
    grad.par_chunks_mut(chunk)
        .zip(p.par_chunks(chunk))
        .for_each(|(g, pb)| softmax_backward_block(pb, g, cols));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax64(x: &[f64]) -> Vec<f64> {
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn forward_and_backward_match_f64_reference() {
        let cols = 19;
        let rows = 6;
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 29 % 31) as f32 - 15.0) / 3.0)
            .collect();
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i % 7) as f32 - 3.0) / 3.0)
            .collect();
        let mut p = x.clone();
        softmax_rows(&mut p, cols);
        let mut g = w.clone();
        softmax_backward_rows(&p, &mut g, cols);
        for r in 0..rows {
            let xr: Vec<f64> = x[r * cols..(r + 1) * cols]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let wr: Vec<f64> = w[r * cols..(r + 1) * cols]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let want = softmax64(&xr);
            let loss = |v: &[f64]| {
                softmax64(v)
                    .iter()
                    .zip(&wr)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            };
            for c in 0..cols {
                assert!((p[r * cols + c] as f64 - want[c]).abs() < 1e-6);
                let h = 1e-6;
                let mut xp = xr.clone();
                xp[c] += h;
                let mut xm = xr.clone();
                xm[c] -= h;
                let fd = (loss(&xp) - loss(&xm)) / (2.0 * h);
                assert!(
                    (g[r * cols + c] as f64 - fd).abs() < 1e-6,
                    "{} vs {fd}",
                    g[r * cols + c]
                );
            }
        }
    }

    #[test]
    fn fully_masked_rows_become_zero_and_masked_entries_get_no_mass() {
        let mut x = vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY];
        softmax_rows(&mut x, 2);
        assert_eq!(x, vec![0.0, 0.0, 1.0, 0.0]);
    }
}
