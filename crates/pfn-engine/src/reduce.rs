//! Column reductions (bias and LayerNorm parameter gradients), fused row-wise passes that also reduce
//! columns, and sums of squares.
//!
//! Rows are split into fixed chunks that depend only on the matrix shape; each chunk accumulates its
//! own partial column sums (in a per-thread scratch buffer that is reused across calls), and the
//! partials are added in chunk order. Results therefore do not depend on the number of threads.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::parallel::worth_parallel;
use crate::simd::multiversion;

/// Upper bound on the number of row chunks of one reduction.
const MAX_CHUNKS: usize = 64;
/// Minimum number of elements per row chunk.
const MIN_CHUNK_ELEMS: usize = 1 << 14;

thread_local! {
    static PARTIALS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Rows per chunk for a reduction over `rows x cols` (a function of the shape only).
fn chunk_rows(rows: usize, cols: usize) -> usize {
    rows.div_ceil(MAX_CHUNKS)
        .max(MIN_CHUNK_ELEMS.div_ceil(cols.max(1)))
        .max(1)
}

/// Runs `f` with a zeroed scratch buffer of `len` elements (the calling thread's reusable buffer, or
/// a fresh one if that is already in use further up the stack).
fn with_partials<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    PARTIALS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            let s = &mut buf[..len];
            s.fill(0.0);
            f(s)
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

multiversion! {
    fn add_partials(partials: &[f32], chunks: usize, k: usize, cols: usize, j: usize, out: &mut [f32]) {
        for c in 0..chunks {
            let p = &partials[(c * k + j) * cols..(c * k + j + 1) * cols];
            for (o, v) in out.iter_mut().zip(p) {
                *o += *v;
            }
        }
    }
}

fn finish(partials: &[f32], chunks: usize, k: usize, cols: usize, outs: &mut [&mut [f32]]) {
    for (j, out) in outs.iter_mut().enumerate() {
        add_partials(partials, chunks, k, cols, j, out);
    }
}

/// A row-wise pass over the row-major matrix `data` (rows of `stride` elements, of which the first
/// `cols` are reduced) that may modify it, fused with `k` column reductions: `body(first_row, rows,
/// partials)` processes a chunk of rows and adds to its `k * cols` partial sums; afterwards
/// `outs[j][c] += sum over chunks of partials[j * cols + c]`.
pub(crate) fn reduce_rows_mut<F>(
    data: &mut [f32],
    stride: usize,
    cols: usize,
    outs: &mut [&mut [f32]],
    body: F,
) where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync,
{
    let k = outs.len();
    if data.is_empty() || stride == 0 {
        return;
    }
    let rows = data.len().div_ceil(stride);
    let cr = chunk_rows(rows, cols);
    let chunks = rows.div_ceil(cr);
    with_partials(chunks * k * cols, |partials| {
        let work = |(i, (d, p)): (usize, (&mut [f32], &mut [f32]))| body(i * cr, d, p);
        if worth_parallel(rows * cols) {
            data.par_chunks_mut(cr * stride)
                .zip(partials.par_chunks_mut(k * cols.max(1)))
                .enumerate()
                .for_each(work);
        } else {
            data.chunks_mut(cr * stride)
                .zip(partials.chunks_mut(k * cols.max(1)))
                .enumerate()
                .for_each(work);
        }
        finish(partials, chunks, k, cols, outs);
    });
}

/// [`reduce_rows_mut`] for a pass that only reads `data`.
pub(crate) fn reduce_rows<F>(
    data: &[f32],
    stride: usize,
    cols: usize,
    outs: &mut [&mut [f32]],
    body: F,
) where
    F: Fn(usize, &[f32], &mut [f32]) + Sync,
{
    let k = outs.len();
    if data.is_empty() || stride == 0 {
        return;
    }
    let rows = data.len().div_ceil(stride);
    let cr = chunk_rows(rows, cols);
    let chunks = rows.div_ceil(cr);
    with_partials(chunks * k * cols, |partials| {
        let work = |(i, (d, p)): (usize, (&[f32], &mut [f32]))| body(i * cr, d, p);
        if worth_parallel(rows * cols) {
            data.par_chunks(cr * stride)
                .zip(partials.par_chunks_mut(k * cols.max(1)))
                .enumerate()
                .for_each(work);
        } else {
            data.chunks(cr * stride)
                .zip(partials.chunks_mut(k * cols.max(1)))
                .enumerate()
                .for_each(work);
        }
        finish(partials, chunks, k, cols, outs);
    });
}

multiversion! {
    fn sum_rows_into(src: &[f32], stride: usize, cols: usize, acc: &mut [f32]) {
        for row in src.chunks(stride) {
            for (a, v) in acc.iter_mut().zip(&row[..cols]) {
                *a += *v;
            }
        }
    }
}

multiversion! {
    fn dot_rows_into(a: &[f32], b: &[f32], cols: usize, acc: &mut [f32]) {
        for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
            for ((s, x), y) in acc.iter_mut().zip(ra).zip(rb) {
                *s += *x * *y;
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
        cols > 0 && src.len().is_multiple_of(cols),
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
    let src = &src[..(rows - 1) * row_stride + cols];
    reduce_rows(src, row_stride, cols, &mut [dst], |_, block, acc| {
        sum_rows_into(block, row_stride, cols, acc)
    });
}

/// `dst[c] += sum_r a[r * cols + c] * b[r * cols + c]` with `cols = dst.len()`.
///
/// # Panics
/// If the lengths of `a` and `b` differ or are not a multiple of `dst.len()`.
pub fn col_dots_accumulate(a: &[f32], b: &[f32], dst: &mut [f32]) {
    let cols = dst.len();
    assert!(
        a.len() == b.len() && cols > 0 && a.len().is_multiple_of(cols),
        "col_dots_accumulate: lengths {} and {} with {cols} columns",
        a.len(),
        b.len()
    );
    reduce_rows(a, cols, cols, &mut [dst], |first, block, acc| {
        let bb = &b[first * cols..first * cols + block.len()];
        dot_rows_into(block, bb, cols, acc)
    });
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

thread_local! {
    static BLOCK_SUMS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Sum of squares of all entries, accumulated in f64 (for global gradient norms).
pub fn sum_squares(x: &[f32]) -> f64 {
    const BLOCK: usize = 1 << 16;
    if !worth_parallel(x.len()) {
        return x.chunks(BLOCK).map(sum_squares_block).sum();
    }
    // Fixed blocks, summed in order: independent of the thread count. The per-block sums live in a
    // reused per-thread buffer (a fresh one only if that is in use further up the stack).
    let blocks = x.len().div_ceil(BLOCK);
    let run = |sums: &mut [f64]| -> f64 {
        x.par_chunks(BLOCK)
            .zip(sums.par_iter_mut())
            .for_each(|(c, s)| *s = sum_squares_block(c));
        sums.iter().sum()
    };
    BLOCK_SUMS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < blocks {
                buf.resize(blocks, 0.0);
            }
            run(&mut buf[..blocks])
        }
        Err(_) => run(&mut vec![0.0; blocks]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_reductions_match_naive() {
        let engine = crate::Engine::new(2).unwrap();
        for &(rows, cols) in &[(3usize, 5usize), (2000, 130), (6000, 7)] {
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
            // the same results on one thread (fixed chunking)
            let mut s1 = vec![1.0f32; cols];
            let mut d1 = vec![-1.0f32; cols];
            crate::Engine::new(1).unwrap().install(|| {
                col_sums_accumulate(&a, &mut s1);
                col_dots_accumulate(&a, &b, &mut d1);
            });
            assert_eq!(s, s1);
            assert_eq!(d, d1);
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
