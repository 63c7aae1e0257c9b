//! Column reductions (bias and LayerNorm parameter gradients) and sums of squares.
//!
//! Column sums are split over blocks of columns, each summing its rows in order, so results do not
//! depend on the number of threads.

use rayon::prelude::*;

use crate::parallel::worth_parallel;
use crate::simd::multiversion;

/// Columns per parallel task in the column reductions.
const COL_BLOCK: usize = 64;

multiversion! {
    fn col_sums_block(src: &[f32], rows: usize, stride: usize, c0: usize, dst: &mut [f32]) {
        let w = dst.len();
        for r in 0..rows {
            let row = &src[r * stride + c0..r * stride + c0 + w];
            for (d, s) in dst.iter_mut().zip(row) {
                *d += *s;
            }
        }
    }
}

multiversion! {
    fn col_dots_block(a: &[f32], b: &[f32], cols: usize, c0: usize, dst: &mut [f32]) {
        let w = dst.len();
        for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
            for ((d, x), y) in dst.iter_mut().zip(&ra[c0..c0 + w]).zip(&rb[c0..c0 + w]) {
                *d += *x * *y;
            }
        }
    }
}

/// `dst[c] += sum_r src[r * cols + c]` with `cols = dst.len()` (the bias gradient of a linear layer).
///
/// # Panics
/// If `src.len()` is not a multiple of `dst.len()`.
pub fn col_sums_accumulate(src: &[f32], dst: &mut [f32]) {
    let cols = dst.len();
    assert!(
        cols > 0 && src.len() % cols == 0,
        "col_sums_accumulate: {} is not a whole number of rows of {cols}",
        src.len()
    );
    col_sums_accumulate_strided(src, src.len() / cols, cols, dst);
}

/// `dst[c] += sum_{r < rows} src[r * row_stride + c]` for `c < dst.len()`: the column sums of a block
/// of columns of a wider row-major matrix (`src` starts at the block's first element).
///
/// # Panics
/// If `src` is too short or `row_stride < dst.len()`.
pub fn col_sums_accumulate_strided(src: &[f32], rows: usize, row_stride: usize, dst: &mut [f32]) {
    let cols = dst.len();
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        row_stride >= cols && src.len() >= (rows - 1) * row_stride + cols,
        "col_sums_accumulate_strided: {rows} rows of stride {row_stride} and width {cols} exceed {}",
        src.len()
    );
    if worth_parallel(rows * cols) {
        dst.par_chunks_mut(COL_BLOCK)
            .enumerate()
            .for_each(|(i, d)| col_sums_block(src, rows, row_stride, i * COL_BLOCK, d));
    } else {
        col_sums_block(src, rows, row_stride, 0, dst);
    }
}

/// `dst[c] += sum_r a[r * cols + c] * b[r * cols + c]` with `cols = dst.len()`.
///
/// # Panics
/// If the lengths of `a` and `b` differ or are not a multiple of `dst.len()`.
pub fn col_dots_accumulate(a: &[f32], b: &[f32], dst: &mut [f32]) {
    let cols = dst.len();
    assert!(
        a.len() == b.len() && cols > 0 && a.len() % cols == 0,
        "col_dots_accumulate: lengths {} and {} with {cols} columns",
        a.len(),
        b.len()
    );
    if worth_parallel(a.len()) {
        dst.par_chunks_mut(COL_BLOCK)
            .enumerate()
            .for_each(|(i, d)| col_dots_block(a, b, cols, i * COL_BLOCK, d));
    } else {
        col_dots_block(a, b, cols, 0, dst);
    }
}

multiversion! {
    fn sum_squares_block(x: &[f32]) -> f64 {
        // f32 partial sums over short runs, accumulated in f64.
        let mut total = 0.0f64;
        for c in x.chunks(4096) {
            total += crate::simd::dot(c, c) as f64;
        }
        total
    }
}

/// Sum of squares of all entries, accumulated in f64 (for global gradient norms).
pub fn sum_squares(x: &[f32]) -> f64 {
    const BLOCK: usize = 1 << 16;
    if worth_parallel(x.len()) {
        // Fixed blocks, summed in order: independent of the thread count.
        let partial: f64 = x
            .par_chunks(BLOCK)
            .map(sum_squares_block)
            .collect::<Vec<f64>>()
            .iter()
            .sum();
        partial
    } else {
        x.chunks(BLOCK).map(sum_squares_block).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_reductions_match_naive() {
        let engine = crate::Engine::new(2).unwrap();
        for &(rows, cols) in &[(3usize, 5usize), (2000, 130)] {
            let a: Vec<f32> = (0..rows * cols)
                .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                .collect();
            let b: Vec<f32> = (0..rows * cols)
                .map(|i| ((i % 11) as f32 - 5.0) / 5.0)
                .collect();
            let mut s = vec![1.0f32; cols];
            let mut d = vec![-1.0f32; cols];
            engine.install(|| {
                col_sums_accumulate(&a, &mut s);
                col_dots_accumulate(&a, &b, &mut d);
            });
            for c in 0..cols {
                let ws: f64 = (0..rows).map(|r| a[r * cols + c] as f64).sum::<f64>() + 1.0;
                let wd: f64 = (0..rows)
                    .map(|r| a[r * cols + c] as f64 * b[r * cols + c] as f64)
                    .sum::<f64>()
                    - 1.0;
                assert!((s[c] as f64 - ws).abs() < 1e-3, "{} vs {ws}", s[c]);
                assert!((d[c] as f64 - wd).abs() < 1e-3, "{} vs {wd}", d[c]);
            }
            // a block of columns 1..4 of the same matrix
            if cols > 4 {
                let mut blk = vec![0.0f32; 3];
                col_sums_accumulate_strided(&a[1..], rows, cols, &mut blk);
                for c in 0..3 {
                    let ws: f64 = (0..rows).map(|r| a[r * cols + c + 1] as f64).sum();
                    assert!((blk[c] as f64 - ws).abs() < 1e-3);
                }
            }
            let sq: f64 = a.iter().map(|&v| v as f64 * v as f64).sum();
            let got = engine.install(|| sum_squares(&a));
            assert!((got - sq).abs() < 1e-6 * sq);
        }
    }
}
