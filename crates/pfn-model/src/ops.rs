//! The building blocks of the components: strided row views ([`Rows`], [`RowsMut`]) over the
//! activation buffers, and the products of a linear layer `y = x W^T + b` ([`Linear`]) with their
//! backward ([`input_grad`], [`weight_grad`], [`linear_param_grads`]), each in f32 through gemm or
//! with bf16 operands and f32 accumulation; the LayerNorm parameters of the flat buffer and the
//! backward of a residual LayerNorm ([`norm_backward`]).
//!
//! A view is a block of `rows` rows of `cols` values whose row i starts at `data[i * stride]`: a
//! dense matrix (`stride = cols`), or a block of columns of a wider one, such as the queries or the
//! keys and values of the packed (tokens, 3E) projections. The views hand the engine's kernels
//! exactly the slices and strides they take; they do no arithmetic of their own.

use std::ops::Range;

use pfn_engine::elementwise::{broadcast_rows, broadcast_rows_strided};
use pfn_engine::gelu::bias_gelu_inplace;
use pfn_engine::layer_norm::{layer_norm_backward, layer_norm_output};
use pfn_engine::reduce::{col_sums_accumulate, col_sums_accumulate_strided};
use pfn_engine::{
    linear_bf16, matmul, matmul_tn_bf16, thin_linear, Bf16Epilogue, LayerNormParams, MatMut,
    MatRef, PackedBf16Linear,
};

use crate::params::{LinearRanges, NormRanges};

/// Whether a `rows x cols` block with row stride `stride` fits in `len` values.
fn fits(len: usize, rows: usize, cols: usize, stride: usize) -> bool {
    rows == 0 || (stride >= cols && (rows - 1) * stride + cols <= len)
}

/// The start of `data` at `offset`, empty past its end (for blocks of no rows).
fn tail(data: &[f32], offset: usize) -> &[f32] {
    data.get(offset..).unwrap_or_default()
}

/// A read-only block of `rows` rows of `cols` values, row i starting at `data[i * stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows<'a> {
    /// The values from the block's first element on (it may extend past the block).
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a> Rows<'a> {
    /// A strided block.
    ///
    /// # Panics
    /// If the block does not fit in `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, stride),
            "view {rows} x {cols} (stride {stride}) exceeds a buffer of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            stride,
        }
    }

    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }

    /// Rows `r` and columns `c` of this block, with the same stride.
    pub fn block(self, r: Range<usize>, c: Range<usize>) -> Self {
        assert!(
            r.end <= self.rows && c.end <= self.cols,
            "block out of range"
        );
        let offset = r.start * self.stride + c.start;
        Self::new(tail(self.data, offset), r.len(), c.len(), self.stride)
    }

    /// Rows `r` (all columns).
    pub fn row_range(self, r: Range<usize>) -> Self {
        self.block(r, 0..self.cols)
    }

    /// The block as an engine matrix view.
    pub fn mat(self) -> MatRef<'a> {
        MatRef::new(self.data, self.rows, self.cols, self.stride, 1)
    }

    /// The values of a dense block, exactly `rows * cols` of them.
    ///
    /// # Panics
    /// If the block is strided.
    pub fn dense_slice(self) -> &'a [f32] {
        assert_eq!(self.stride, self.cols, "a strided view is not dense");
        &self.data[..self.rows * self.cols]
    }
}

/// A mutable block of `rows` rows of `cols` values, row i starting at `data[i * stride]`.
#[derive(Debug)]
pub(crate) struct RowsMut<'a> {
    /// The values from the block's first element on (it may extend past the block).
    pub data: &'a mut [f32],
    /// Number of rows.
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a> RowsMut<'a> {
    /// A strided block.
    ///
    /// # Panics
    /// If the block does not fit in `data`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, stride),
            "view {rows} x {cols} (stride {stride}) exceeds a buffer of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            stride,
        }
    }

    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub fn dense(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }

    /// Rows `r` and columns `c` of this block, with the same stride.
    pub fn block(&mut self, r: Range<usize>, c: Range<usize>) -> RowsMut<'_> {
        assert!(
            r.end <= self.rows && c.end <= self.cols,
            "block out of range"
        );
        let offset = r.start * self.stride + c.start;
        let data = match self.data.get_mut(offset..) {
            Some(d) => d,
            None => &mut [],
        };
        RowsMut::new(data, r.len(), c.len(), self.stride)
    }

    /// The same block, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> RowsMut<'_> {
        RowsMut::new(self.data, self.rows, self.cols, self.stride)
    }

    /// The block read-only.
    pub fn as_rows(&self) -> Rows<'_> {
        Rows::new(self.data, self.rows, self.cols, self.stride)
    }

    /// The block as an engine matrix view.
    pub fn mat(self) -> MatMut<'a> {
        MatMut::new(self.data, self.rows, self.cols, self.stride, 1)
    }

    /// The values of a dense block, exactly `rows * cols` of them.
    ///
    /// # Panics
    /// If the block is strided.
    pub fn dense_slice(self) -> &'a mut [f32] {
        assert_eq!(self.stride, self.cols, "a strided view is not dense");
        &mut self.data[..self.rows * self.cols]
    }

    /// Sets every row to `row` (a bias broadcast).
    pub fn fill_rows(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.cols, "fill_rows: row of the wrong length");
        if self.stride == self.cols {
            broadcast_rows(&mut self.data[..self.rows * self.cols], row);
        } else {
            broadcast_rows_strided(self.data, self.rows, self.stride, row);
        }
    }

    /// Copies `src` (of the same shape) into the block.
    pub fn copy_from(&mut self, src: Rows<'_>) {
        assert!(
            src.rows == self.rows && src.cols == self.cols,
            "copy_from: shapes differ"
        );
        for i in 0..self.rows {
            let (d, s) = (i * self.stride, i * src.stride);
            self.data[d..d + self.cols].copy_from_slice(&src.data[s..s + self.cols]);
        }
    }
}

/// `dst (+)= src W^T` in f32 (gemm) for a PyTorch-layout weight W (`dst.cols`, `src.cols`).
pub(crate) fn matmul_wt(dst: RowsMut<'_>, src: Rows<'_>, w: &[f32], accumulate: bool) {
    let (out, inp) = (dst.cols, src.cols);
    matmul(
        dst.mat(),
        src.mat(),
        MatRef::row_major(w, out, inp).t(),
        accumulate,
        1.0,
    );
}

/// `dst (+)= src W^T`, then the epilogue, with bf16 operands and f32 accumulation.
pub(crate) fn matmul_wt_bf16(
    dst: RowsMut<'_>,
    src: Rows<'_>,
    w: &PackedBf16Linear,
    accumulate: bool,
    epilogue: Bf16Epilogue<'_>,
) {
    assert_eq!(dst.rows, src.rows, "matmul_wt_bf16: row counts differ");
    let (d, ds, s, ss) = (dst.data, dst.stride, src.data, src.stride);
    linear_bf16(d, ds, s, ss, src.rows, w, accumulate, epilogue);
}

/// `dst = src W^T (+ bias)` for a thin input (few columns), in exact f32 arithmetic without gemm's
/// packing (the encoder in bf16 inference).
pub(crate) fn thin_wt(dst: RowsMut<'_>, src: Rows<'_>, w: &[f32], bias: Option<&[f32]>) {
    assert_eq!(dst.rows, src.rows, "thin_wt: row counts differ");
    let (d, ds, s, ss) = (dst.data, dst.stride, src.data, src.stride);
    thin_linear(d, ds, s, ss, src.rows, w, dst.cols, src.cols, bias);
}

/// A linear layer `y = x W^T + b` of the flat parameter buffer (weight (out, in), PyTorch layout)
/// with, in a bf16 pass, its weight packed for bf16 products.
#[derive(Clone, Copy)]
pub(crate) struct Linear<'a> {
    /// The weight (out, in).
    pub weight: &'a [f32],
    /// The bias (out).
    pub bias: &'a [f32],
    /// The weight packed for bf16 products (bf16 passes only).
    pub packed: Option<&'a PackedBf16Linear>,
}

impl<'a> Linear<'a> {
    /// The layer at `r` in the parameter buffer `p`.
    pub fn new(p: &'a [f32], r: &LinearRanges, packed: Option<&'a PackedBf16Linear>) -> Self {
        Self {
            weight: &p[r.weight.clone()],
            bias: &p[r.bias.clone()],
            packed,
        }
    }

    /// `dst = src W^T` without the bias (which a fused kernel adds next).
    pub fn product(&self, dst: RowsMut<'_>, src: Rows<'_>) {
        match self.packed {
            Some(w) => matmul_wt_bf16(dst, src, w, false, Bf16Epilogue::None),
            None => matmul_wt(dst, src, self.weight, false),
        }
    }

    /// `dst = src W^T + b`.
    pub fn forward(&self, mut dst: RowsMut<'_>, src: Rows<'_>) {
        match self.packed {
            Some(w) => matmul_wt_bf16(dst, src, w, false, Bf16Epilogue::Bias(self.bias)),
            None => {
                dst.fill_rows(self.bias);
                matmul_wt(dst, src, self.weight, true);
            }
        }
    }

    /// `dst = GELU(src W^T + b)` (inference: the GELU input is not kept), into a dense `dst`.
    pub fn forward_gelu(&self, mut dst: RowsMut<'_>, src: Rows<'_>) {
        match self.packed {
            Some(w) => matmul_wt_bf16(dst, src, w, false, Bf16Epilogue::BiasGelu(self.bias)),
            None => {
                matmul_wt(dst.reborrow(), src, self.weight, false);
                bias_gelu_inplace(dst.dense_slice(), self.bias);
            }
        }
    }
}

/// `dx (+)= dy W`, the input gradient of `y = x W^T` for a PyTorch-layout weight W (`dy.cols`,
/// `dx.cols`). With `wt` (W packed transposed) the operands are rounded to bf16 (f32 accumulation).
pub(crate) fn input_grad(
    dx: RowsMut<'_>,
    dy: Rows<'_>,
    w: &[f32],
    wt: Option<&PackedBf16Linear>,
    accumulate: bool,
) {
    match wt {
        Some(wt) => matmul_wt_bf16(dx, dy, wt, accumulate, Bf16Epilogue::None),
        None => {
            let (out, inp) = (dy.cols, dx.cols);
            let w = MatRef::row_major(w, out, inp);
            matmul(dx.mat(), dy.mat(), w, accumulate, 1.0);
        }
    }
}

/// `dW += dy^T x` into a row-major (`dy.cols`, `x.cols`) `dw`, over the rows of `dy` and `x`; bf16
/// operands (f32 accumulation) when `bf16`.
pub(crate) fn weight_grad(dw: &mut [f32], dy: Rows<'_>, x: Rows<'_>, bf16: bool) {
    assert_eq!(dy.rows, x.rows, "weight_grad: row counts differ");
    let (rows, out, inp) = (dy.rows, dy.cols, x.cols);
    if bf16 {
        let (a, a_stride, b, b_stride) = (dy.data, dy.stride, x.data, x.stride);
        matmul_tn_bf16(dw, inp, a, a_stride, b, b_stride, rows, out, inp, true);
    } else {
        let dw = MatMut::row_major(dw, out, inp);
        matmul(dw, dy.mat().t(), x.mat(), true, 1.0);
    }
}

/// `dst[c] += sum_r src[r, c]`: a bias gradient (`dst.len() = src.cols`).
pub(crate) fn col_sums(src: Rows<'_>, dst: &mut [f32]) {
    assert_eq!(src.cols, dst.len(), "col_sums: width differs");
    if src.stride == src.cols {
        col_sums_accumulate(src.dense_slice(), dst);
    } else {
        col_sums_accumulate_strided(src.data, src.rows, src.stride, dst);
    }
}

/// The parameter gradients of a linear layer `y = x W^T + b`: `dW += dy^T x` (bf16 operands when
/// `bf16`) and `db += colsum(dy)`, for a dense `dy`.
pub(crate) fn linear_param_grads(
    g: &mut [f32],
    r: &LinearRanges,
    dy: Rows<'_>,
    x: Rows<'_>,
    bf16: bool,
) {
    weight_grad(&mut g[r.weight.clone()], dy, x, bf16);
    col_sums_accumulate(dy.dense_slice(), &mut g[r.bias.clone()]);
}

/// The LayerNorm parameters of `r` in the flat parameter buffer.
pub(crate) fn norm<'a>(p: &'a [f32], r: &NormRanges, eps: f32) -> LayerNormParams<'a> {
    LayerNormParams {
        gamma: &p[r.gamma.clone()],
        beta: &p[r.beta.clone()],
        eps,
    }
}

/// A LayerNorm's output rebuilt bit for bit into `out` from its kept normalised input `xhat`
/// (the memory-lean training workspace keeps `xhat`, not the output).
pub(crate) fn rebuild_norm_output<'o>(
    xhat: &[f32],
    params: &[f32],
    r: &NormRanges,
    eps: f32,
    out: &'o mut [f32],
) -> &'o [f32] {
    layer_norm_output(xhat, norm(params, r, eps), out);
    out
}

/// Backward through a residual LayerNorm `out = LN(x + branch + bias)`: `dz` goes from d out to
/// d(x + branch + bias), accumulating the LayerNorm gradients and the branch's bias gradient (at
/// `bias` in `g`) in the same pass.
pub(crate) fn norm_backward(
    g: &mut [f32],
    p: &[f32],
    nr: &NormRanges,
    bias: &Range<usize>,
    dz: &mut [f32],
    xhat: &[f32],
    rstd: &[f32],
) {
    let [dgamma, dbeta, dbias] = ranges_mut(g, [nr.gamma.clone(), nr.beta.clone(), bias.clone()]);
    let gamma = &p[nr.gamma.clone()];
    layer_norm_backward(dz, xhat, rstd, gamma, dgamma, dbeta, Some(dbias));
}

/// Disjoint ranges of one buffer, all mutable at once.
///
/// # Panics
/// If two ranges overlap (a bug in the layout code).
pub(crate) fn ranges_mut<const N: usize>(
    buf: &mut [f32],
    ranges: [Range<usize>; N],
) -> [&mut [f32]; N] {
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| ranges[i].start);
    let mut out: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
    let mut rest = buf;
    let mut offset = 0;
    for i in order {
        let r = &ranges[i];
        assert!(r.start >= offset, "overlapping parameter ranges");
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(r.start - offset);
        let (mid, tail) = tail.split_at_mut(r.len());
        out[i] = mid;
        rest = tail;
        offset = r.end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Rows, RowsMut};

    #[test]
    fn blocks_of_a_packed_matrix_address_the_right_values() {
        // a (3, 6) matrix: value = 10 * row + column
        let m: Vec<f32> = (0..18).map(|i| (10 * (i / 6) + i % 6) as f32).collect();
        let v = Rows::dense(&m, 3, 6);
        let kv = v.block(1..3, 2..6);
        assert_eq!((kv.rows, kv.cols, kv.stride), (2, 4, 6));
        assert_eq!(kv.mat().get(1, 3), 25.0);
        assert_eq!(v.row_range(2..3).dense_slice(), &m[12..18]);
        // an empty block past the end is fine
        assert_eq!(v.block(3..3, 2..6).rows, 0);

        let mut buf = vec![0.0f32; 18];
        let mut w = RowsMut::dense(&mut buf, 3, 6);
        w.block(0..3, 4..6).fill_rows(&[1.0, 2.0]);
        w.block(1..3, 0..2).copy_from(kv.block(0..2, 0..2));
        assert_eq!(&buf[..6], &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0]);
        assert_eq!(&buf[6..12], &[12.0, 13.0, 0.0, 0.0, 1.0, 2.0]);
        assert_eq!(&buf[12..], &[22.0, 23.0, 0.0, 0.0, 1.0, 2.0]);
    }
}
