//! Strided matrix views and the matrix product `dst (+)= alpha * a * b` through `gemm`.
//!
//! Views carry a row stride and a column stride, so a transpose is a view ([`MatRef::t`]) and never a
//! copy. A PyTorch `Linear` weight W of shape (out, in) is stored row-major; `y = x W^T` is
//! `matmul(y, x, W.t())`.

use gemm::Parallelism;

/// Whether a strided `rows x cols` matrix fits in a buffer of `len` elements.
fn fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1).checked_mul(row_stride).and_then(|r| {
        (cols - 1)
            .checked_mul(col_stride)
            .and_then(|c| r.checked_add(c))
    });
    matches!(last, Some(l) if l < len && l <= isize::MAX as usize)
}

/// Whether distinct (i, j) of a strided matrix always map to distinct offsets (a sufficient test).
fn non_overlapping(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 || (rows == 1 && cols == 1) {
        return true;
    }
    if rows == 1 {
        return col_stride >= 1;
    }
    if cols == 1 {
        return row_stride >= 1;
    }
    (col_stride >= 1 && row_stride >= cols * col_stride)
        || (row_stride >= 1 && col_stride >= rows * row_stride)
}

/// A read-only strided view of an f32 matrix: element (i, j) is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view.
    ///
    /// # Panics
    /// If the view reaches beyond `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(
            fits(data.len(), rows, cols, row_stride, col_stride),
            "matrix view {rows}x{cols} (strides {row_stride}, {col_stride}) exceeds a buffer of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A contiguous row-major `rows x cols` view of the start of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no data is moved).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element (i, j).
    ///
    /// # Panics
    /// If the index is out of range.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of range"
        );
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// A mutable strided view of an f32 matrix whose elements do not overlap.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A strided mutable view.
    ///
    /// # Panics
    /// If the view reaches beyond `data`, or if two of its elements would share memory.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(
            fits(data.len(), rows, cols, row_stride, col_stride),
            "matrix view {rows}x{cols} (strides {row_stride}, {col_stride}) exceeds a buffer of {}",
            data.len()
        );
        let disjoint = non_overlapping(rows, cols, row_stride, col_stride);
        assert!(
            disjoint,
            "mutable matrix view {rows}x{cols} with strides ({row_stride}, {col_stride}) overlaps itself"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A contiguous row-major `rows x cols` view of the start of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// A read-only view of the same matrix.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    fn fill_zero(&mut self) {
        for i in 0..self.rows {
            for j in 0..self.cols {
                self.data[i * self.row_stride + j * self.col_stride] = 0.0;
            }
        }
    }
}

/// How a matrix product may use threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Use every thread of the current rayon pool (gemm decides how to split).
    Pool,
    /// Run on the calling thread only (for products inside an already parallel task).
    Single,
}

/// `dst = alpha * a * b`, or `dst += alpha * a * b` when `accumulate` is true.
///
/// # Panics
/// If the shapes do not agree: `a` is (m, k), `b` is (k, n) and `dst` is (m, n).
pub fn matmul(dst: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, alpha: f32) {
    matmul_with(dst, a, b, accumulate, alpha, Threads::Pool)
}

/// [`matmul`] with an explicit threading choice.
///
/// # Panics
/// If the shapes do not agree: `a` is (m, k), `b` is (k, n) and `dst` is (m, n).
pub fn matmul_with(
    mut dst: MatMut<'_>,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    alpha: f32,
    threads: Threads,
) {
    let (m, n, k) = (dst.rows, dst.cols, a.cols);
    assert!(
        a.rows == m && b.cols == n && b.rows == k,
        "matmul shapes disagree: dst {m}x{n}, a {}x{}, b {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill_zero();
        }
        return;
    }
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 => Parallelism::Rayon(0),
        _ => Parallelism::None,
    };
    // SAFETY: all three views were bounds-checked on construction, `dst` does not overlap itself and,
    // being borrowed mutably, does not overlap `a` or `b`; strides fit in isize (checked in `fits`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.col_stride as isize,
            dst.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The raw-pointer matrix product used inside kernels whose parallel tasks write disjoint blocks of
/// one buffer (single-threaded).
///
/// # Safety
/// All pointers must be valid for the strided extents, `dst` must not overlap itself, `a` or `b`, and
/// no other thread may access the `dst` elements concurrently.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    b_cs: usize,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: in bounds by the caller's contract.
                    unsafe { *dst.add(i * dst_rs + j * dst_cs) = 0.0 };
                }
            }
        }
        return;
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            a,
            a_cs as isize,
            a_rs as isize,
            b,
            b_cs as isize,
            b_rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                out[i * b.cols() + j] = (0..a.cols())
                    .map(|p| a.get(i, p) as f64 * b.get(p, j) as f64)
                    .sum();
            }
        }
        out
    }

    #[test]
    fn transposed_and_strided_products_match_naive() {
        let engine = crate::Engine::new(2).unwrap();
        for &(m, n, k) in &[(7, 5, 3), (64, 33, 70), (1, 1, 1), (130, 17, 256)] {
            // a stored transposed (k x m), b as a column block of a wider matrix
            let a_t = random(k * m, 1);
            let b_wide = random(k * (n + 3), 2);
            let a = MatRef::row_major(&a_t, k, m).t();
            let b = MatRef::new(&b_wide[2..], k, n, n + 3, 1);
            let want = naive(a, b);
            for accumulate in [false, true] {
                let mut dst = vec![0.5f32; m * n];
                engine.install(|| {
                    matmul(MatMut::row_major(&mut dst, m, n), a, b, accumulate, 2.0);
                });
                let base = if accumulate { 0.5 } else { 0.0 };
                for (g, w) in dst.iter().zip(&want) {
                    assert!((*g as f64 - base - 2.0 * w).abs() < 1e-4 * (1.0 + w.abs()));
                }
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zero_or_keeps_dst() {
        let a: Vec<f32> = vec![];
        let mut dst = vec![3.0f32; 6];
        matmul(
            MatMut::row_major(&mut dst, 2, 3),
            MatRef::row_major(&a, 2, 0),
            MatRef::row_major(&a, 0, 3),
            true,
            1.0,
        );
        assert!(dst.iter().all(|&v| v == 3.0));
        matmul(
            MatMut::row_major(&mut dst, 2, 3),
            MatRef::row_major(&a, 2, 0),
            MatRef::row_major(&a, 0, 3),
            false,
            1.0,
        );
        assert!(dst.iter().all(|&v| v == 0.0));
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn out_of_bounds_view_panics() {
        let v = vec![0.0f32; 5];
        let _ = MatRef::row_major(&v, 2, 3);
    }
}
