//! Simple element-wise kernels over row-major matrices (bias broadcast, additions, scaling).

use rayon::prelude::*;

use crate::parallel::rows_per_task;
use crate::simd::multiversion;

fn check_rows(len: usize, cols: usize, what: &str) -> usize {
    assert!(
        cols > 0 && len.is_multiple_of(cols),
        "{what}: buffer of {len} is not a whole number of rows of {cols}"
    );
    len / cols
}

/// Sets every row of the row-major matrix `dst` to `row`.
///
/// # Panics
/// If `dst.len()` is not a multiple of `row.len()` (or `row` is empty while `dst` is not).
pub fn broadcast_rows(dst: &mut [f32], row: &[f32]) {
    if dst.is_empty() {
        return;
    }
    let cols = row.len();
    let rows = check_rows(dst.len(), cols, "broadcast_rows");
    let chunk = rows_per_task(rows, cols) * cols;
    dst.par_chunks_mut(chunk).for_each(|block| {
        for r in block.chunks_exact_mut(cols) {
            r.copy_from_slice(row);
        }
    });
}

/// Sets `dst[r * row_stride + c] = row[c]` for `r < rows`, `c < row.len()`: a bias broadcast into a
/// block of columns of a wider row-major matrix (`dst` starts at the block's first element).
///
/// # Panics
/// If `dst` is too short or `row_stride < row.len()`.
pub fn broadcast_rows_strided(dst: &mut [f32], rows: usize, row_stride: usize, row: &[f32]) {
    let cols = row.len();
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        row_stride >= cols && dst.len() >= (rows - 1) * row_stride + cols,
        "broadcast_rows_strided: {rows} rows of stride {row_stride} and width {cols} exceed {}",
        dst.len()
    );
    let dst = &mut dst[..(rows - 1) * row_stride + cols];
    let chunk = rows_per_task(rows, cols) * row_stride;
    dst.par_chunks_mut(chunk).for_each(|block| {
        for r in block.chunks_mut(row_stride) {
            r[..cols].copy_from_slice(row);
        }
    });
}

multiversion! {
    fn add_row_block(block: &mut [f32], row: &[f32]) {
        for r in block.chunks_exact_mut(row.len()) {
            for (d, b) in r.iter_mut().zip(row) {
                *d += *b;
            }
        }
    }
}

/// Adds `row` to every row of the row-major matrix `dst`.
///
/// # Panics
/// If `dst.len()` is not a multiple of `row.len()`.
pub fn add_row(dst: &mut [f32], row: &[f32]) {
    if dst.is_empty() {
        return;
    }
    let cols = row.len();
    let rows = check_rows(dst.len(), cols, "add_row");
    let chunk = rows_per_task(rows, cols) * cols;
    dst.par_chunks_mut(chunk)
        .for_each(|block| add_row_block(block, row));
}

multiversion! {
    fn add_assign_block(dst: &mut [f32], src: &[f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += *s;
        }
    }
}

/// `dst += src`.
///
/// # Panics
/// If the lengths differ.
pub fn add_assign(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_assign: length mismatch");
    let chunk = rows_per_task(dst.len(), 1);
    dst.par_chunks_mut(chunk)
        .zip(src.par_chunks(chunk))
        .for_each(|(d, s)| add_assign_block(d, s));
}

multiversion! {
    fn scale_block(dst: &mut [f32], factor: f32) {
        for d in dst.iter_mut() {
            *d *= factor;
        }
    }
}

/// `dst *= factor`.
pub fn scale(dst: &mut [f32], factor: f32) {
    let chunk = rows_per_task(dst.len(), 1);
    dst.par_chunks_mut(chunk)
        .for_each(|d| scale_block(d, factor));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_kernels() {
        let row = [1.0f32, 2.0, 3.0];
        let mut m = vec![0.0f32; 12];
        broadcast_rows(&mut m, &row);
        assert_eq!(&m[9..12], &row);
        add_row(&mut m, &row);
        assert_eq!(&m[3..6], &[2.0, 4.0, 6.0]);
        let other = vec![1.0f32; 12];
        add_assign(&mut m, &other);
        assert_eq!(m[0], 3.0);
        scale(&mut m, 0.5);
        assert_eq!(m[2], 3.5);
        let mut wide = [0.0f32; 4 * 5];
        broadcast_rows_strided(&mut wide[1..], 4, 5, &[7.0, 8.0]);
        for r in 0..4 {
            assert_eq!(&wide[r * 5..r * 5 + 5], &[0.0, 7.0, 8.0, 0.0, 0.0]);
        }
    }

    #[test]
    #[should_panic(expected = "whole number of rows")]
    fn ragged_rows_panic() {
        let mut m = vec![0.0f32; 5];
        add_row(&mut m, &[1.0, 2.0]);
    }
}
