//! bf16 linear layers for inference: `dst (+)= src W^T (+ bias) (then GELU)` with the inputs and the
//! weights rounded to bfloat16 and every product accumulated in f32.
//!
//! bfloat16 keeps the f32 exponent and 8 significant bits, so rounding an operand changes it by at
//! most 2^-8 of its magnitude; the products of two bf16 numbers are exact in f32 and the sums are f32.
//! On CPUs with AVX-512 BF16 (`vdpbf16ps`: 32 products per instruction, twice the f32 FMA rate) the
//! product runs in a register-blocked kernel over weights packed once with
//! [`PackedBf16Linear::pack`]; elsewhere the same rounding is emulated (operands rounded to bf16, the
//! product through the f32 `gemm`), so results agree everywhere up to f32 summation order.
//!
//! This is an inference path only: training stays in f32.

use rayon::prelude::*;

use crate::gelu::bias_gelu_inplace_block;
use crate::matmul::{matmul_with, MatMut, MatRef, Threads};

/// Rows of the register tile of the native kernel.
const MR: usize = 12;
/// Columns of the register tile (two AVX-512 registers of f32).
const NR: usize = 32;
/// Largest row block one task packs and multiplies.
const MAX_BLOCK_ROWS: usize = 16 * MR;

/// Whether this CPU runs the native bf16 kernel (AVX-512 F and BF16).
pub fn native_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The bfloat16 bit pattern nearest to `x` (round to nearest, ties to even; NaN stays NaN).
#[inline(always)]
pub fn to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// `x` rounded to the nearest bfloat16, as an f32.
#[inline(always)]
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(to_bf16_bits(x)) << 16)
}

/// What happens to the product before it is stored.
#[derive(Clone, Copy, Debug)]
pub enum Bf16Epilogue<'a> {
    /// Store the product.
    None,
    /// Add a bias (one value per output column).
    Bias(&'a [f32]),
    /// Add a bias, then apply GELU (exact erf form, as [`crate::gelu::bias_gelu_inplace`]).
    BiasGelu(&'a [f32]),
}

impl Bf16Epilogue<'_> {
    fn bias(&self) -> Option<&[f32]> {
        match self {
            Self::None => None,
            Self::Bias(b) | Self::BiasGelu(b) => Some(b),
        }
    }
}

/// A linear layer's weight W (out, in), in PyTorch layout, rounded to bf16 and laid out for
/// [`linear_bf16`].
#[derive(Clone, Debug)]
pub struct PackedBf16Linear {
    out: usize,
    inp: usize,
    /// Pairs of input columns, ceil(in / 2).
    pairs: usize,
    /// The layout that [`linear_bf16`] uses on this CPU.
    data: Packed,
}

#[derive(Clone, Debug)]
enum Packed {
    /// Panels of NR output columns; panel j holds, for every input pair p and column c, the two bf16
    /// weights W[j NR + c][2p], W[j NR + c][2p + 1] in one u32 (first one in the low half), at
    /// `(j * pairs + p) * NR + c`. Columns beyond `out` and the odd input column are zero.
    Native(Vec<u32>),
    /// W rounded to bf16, (out, in) row-major f32.
    Emulated(Vec<f32>),
}

impl PackedBf16Linear {
    /// Packs a weight W of shape (out, in), row-major (the layout of PyTorch's `Linear.weight`).
    ///
    /// # Panics
    /// If `w.len() != out * in`.
    pub fn pack(w: &[f32], out: usize, inp: usize) -> Self {
        assert_eq!(
            w.len(),
            out * inp,
            "PackedBf16Linear::pack: weight of {} values is not {out} x {inp}",
            w.len()
        );
        Self::from_fn(out, inp, |j, k| w[j * inp + k])
    }

    /// Packs the weight whose element (j, k), output j and input k, is `weight(j, k)`.
    pub fn from_fn(out: usize, inp: usize, weight: impl Fn(usize, usize) -> f32) -> Self {
        let pairs = inp.div_ceil(2);
        let data = if native_available() {
            let panels = out.div_ceil(NR);
            let mut d = vec![0u32; panels * pairs * NR];
            for j in 0..out {
                let (panel, c) = (j / NR, j % NR);
                for p in 0..pairs {
                    let lo = u32::from(to_bf16_bits(weight(j, 2 * p)));
                    let hi = if 2 * p + 1 < inp {
                        u32::from(to_bf16_bits(weight(j, 2 * p + 1)))
                    } else {
                        0
                    };
                    d[(panel * pairs + p) * NR + c] = lo | (hi << 16);
                }
            }
            Packed::Native(d)
        } else {
            let mut d = vec![0.0f32; out * inp];
            for j in 0..out {
                for k in 0..inp {
                    d[j * inp + k] = round_to_bf16(weight(j, k));
                }
            }
            Packed::Emulated(d)
        };
        Self {
            out,
            inp,
            pairs,
            data,
        }
    }

    /// Output columns (rows of W).
    pub fn out_features(&self) -> usize {
        self.out
    }

    /// Input columns (columns of W).
    pub fn in_features(&self) -> usize {
        self.inp
    }

    /// Whether the native AVX-512 BF16 kernel is used (otherwise the rounding is emulated).
    pub fn is_native(&self) -> bool {
        matches!(self.data, Packed::Native(_))
    }

    /// Bytes held by the packed weight.
    pub fn allocated_bytes(&self) -> usize {
        match &self.data {
            Packed::Native(d) => 4 * d.capacity(),
            Packed::Emulated(d) => 4 * d.capacity(),
        }
    }
}

/// Whether a strided `rows x cols` matrix with row stride `stride` fits in `len` elements.
fn fits(len: usize, rows: usize, cols: usize, stride: usize) -> bool {
    rows == 0 || (stride >= cols && (rows - 1) * stride + cols <= len)
}

/// `dst = src W^T`, or `dst += src W^T` with `accumulate`, then the epilogue, for `rows` rows:
/// `src` is (rows, in) with row stride `src_stride`, `dst` is (rows, out) with row stride
/// `dst_stride`. Runs on the current rayon pool.
///
/// # Panics
/// If a matrix does not fit its buffer, a stride is shorter than its row, or the bias length is not
/// `out`.
#[allow(clippy::too_many_arguments)]
pub fn linear_bf16(
    dst: &mut [f32],
    dst_stride: usize,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    w: &PackedBf16Linear,
    accumulate: bool,
    epilogue: Bf16Epilogue<'_>,
) {
    assert!(
        fits(src.len(), rows, w.inp, src_stride),
        "linear_bf16: source {rows} x {} (stride {src_stride}) exceeds a buffer of {}",
        w.inp,
        src.len()
    );
    assert!(
        fits(dst.len(), rows, w.out, dst_stride),
        "linear_bf16: destination {rows} x {} (stride {dst_stride}) exceeds a buffer of {}",
        w.out,
        dst.len()
    );
    if let Some(b) = epilogue.bias() {
        assert_eq!(b.len(), w.out, "linear_bf16: bias length is not {}", w.out);
    }
    if rows == 0 || w.out == 0 {
        return;
    }
    match &w.data {
        Packed::Emulated(rounded) => emulated(
            dst, dst_stride, src, src_stride, rows, w, rounded, accumulate, epilogue,
        ),
        Packed::Native(_) => {
            // SAFETY: the destination was checked to hold the (rows, out) matrix, and it is borrowed
            // mutably for the call.
            let ran = unsafe {
                linear_bf16_raw(
                    dst.as_mut_ptr(),
                    dst_stride,
                    src,
                    src_stride,
                    rows,
                    w,
                    accumulate,
                    epilogue,
                )
            };
            assert!(
                ran,
                "natively packed bf16 weights without the native kernel"
            );
        }
    }
}

/// [`linear_bf16`] into a raw destination, for kernels whose tasks write disjoint columns of shared
/// rows. Returns false (and does nothing) when `w` is not natively packed.
///
/// # Safety
/// `dst` must be valid for reads and writes of the (rows, out) matrix with row stride `dst_stride`,
/// and nothing else may access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn linear_bf16_raw(
    dst: *mut f32,
    dst_stride: usize,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    w: &PackedBf16Linear,
    accumulate: bool,
    epilogue: Bf16Epilogue<'_>,
) -> bool {
    assert!(
        fits(src.len(), rows, w.inp, src_stride)
            && dst_stride >= w.out
            && epilogue.bias().is_none_or(|b| b.len() == w.out),
        "linear_bf16_raw: inconsistent shapes"
    );
    match &w.data {
        #[cfg(target_arch = "x86_64")]
        Packed::Native(panels) => {
            if rows > 0 && w.out > 0 {
                // SAFETY: forwarded from the caller.
                unsafe {
                    native::linear(
                        dst, dst_stride, src, src_stride, rows, w, panels, accumulate, epilogue,
                    )
                };
            }
            true
        }
        _ => false,
    }
}

/// The portable path: round the source to bf16 and multiply with the f32 `gemm`.
#[allow(clippy::too_many_arguments)]
fn emulated(
    dst: &mut [f32],
    dst_stride: usize,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    w: &PackedBf16Linear,
    rounded: &[f32],
    accumulate: bool,
    epilogue: Bf16Epilogue<'_>,
) {
    let (out, inp) = (w.out, w.inp);
    let mut a = vec![0.0f32; rows * inp];
    for (r, row) in a.chunks_exact_mut(inp.max(1)).enumerate().take(rows) {
        for (v, s) in row
            .iter_mut()
            .zip(&src[r * src_stride..r * src_stride + inp])
        {
            *v = round_to_bf16(*s);
        }
    }
    matmul_with(
        MatMut::new(dst, rows, out, dst_stride, 1),
        MatRef::row_major(&a, rows, inp),
        MatRef::row_major(rounded, out, inp).t(),
        accumulate,
        1.0,
        Threads::Pool,
    );
    for r in 0..rows {
        let row = &mut dst[r * dst_stride..r * dst_stride + out];
        match epilogue {
            Bf16Epilogue::None => {}
            Bf16Epilogue::Bias(b) => row.iter_mut().zip(b).for_each(|(v, b)| *v += *b),
            Bf16Epilogue::BiasGelu(b) => bias_gelu_inplace_block(row, b),
        }
    }
}

/// How a product of `rows` rows and `panels` column panels is split into tasks: row blocks of
/// `block_rows` (a multiple of MR) times column chunks of `chunk_panels` panels.
fn split(rows: usize, panels: usize, threads: usize) -> (usize, usize) {
    let tiles = rows.div_ceil(MR);
    if threads <= 1 {
        return ((tiles * MR).min(MAX_BLOCK_ROWS), panels);
    }
    // Prefer row blocks (each task packs its own rows once); about three per thread balances load.
    let row_tasks = (3 * threads).min(tiles);
    let block_tiles = tiles.div_ceil(row_tasks);
    let block_rows = (block_tiles * MR).min(MAX_BLOCK_ROWS);
    let row_blocks = rows.div_ceil(block_rows);
    if row_blocks >= 2 * threads {
        return (block_rows, panels);
    }
    // Few rows: also split the columns.
    let col_tasks = (2 * threads).div_ceil(row_blocks).min(panels).max(1);
    (block_rows, panels.div_ceil(col_tasks))
}

#[cfg(target_arch = "x86_64")]
mod native {
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    use super::*;

    /// A pointer to the destination shared by tasks that write disjoint tiles.
    #[derive(Clone, Copy)]
    struct DstPtr(*mut f32);
    // SAFETY: tasks write disjoint (row block, column chunk) regions.
    unsafe impl Send for DstPtr {}
    // SAFETY: as above.
    unsafe impl Sync for DstPtr {}

    impl DstPtr {
        /// The pointer (a method, so that closures capture the whole `Send` wrapper).
        fn get(self) -> *mut f32 {
            self.0
        }
    }

    thread_local! {
        /// Per-thread buffer for a packed row block of the source.
        static A_BUF: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    #[allow(clippy::too_many_arguments)]
    ///
    /// # Safety
    /// `dst` must be valid for reads and writes of the (rows, out) matrix with row stride
    /// `dst_stride`, and nothing else may access those elements during the call.
    pub(super) unsafe fn linear(
        dst: *mut f32,
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &PackedBf16Linear,
        panels: &[u32],
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        let n_panels = w.out.div_ceil(NR);
        let (block_rows, chunk_panels) = split(rows, n_panels, rayon::current_num_threads());
        let row_blocks = rows.div_ceil(block_rows);
        let col_chunks = n_panels.div_ceil(chunk_panels);
        let out = DstPtr(dst);
        let task = |t: usize| {
            let (rb, cc) = (t / col_chunks, t % col_chunks);
            let r0 = rb * block_rows;
            let r1 = (r0 + block_rows).min(rows);
            let p0 = cc * chunk_panels;
            let p1 = (p0 + chunk_panels).min(n_panels);
            A_BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let padded = (r1 - r0).div_ceil(MR) * MR;
                let need = padded * w.pairs;
                if buf.len() < need {
                    buf.resize(need, 0);
                }
                pack_rows(
                    &mut buf[..need],
                    &src[r0 * src_stride..],
                    src_stride,
                    r1 - r0,
                    w,
                );
                // SAFETY: the CPU has AVX-512 F and BF16 (the weights were packed natively only
                // then); the task writes rows r0..r1 and columns of panels p0..p1, disjoint from every
                // other task, inside `dst` (checked by the caller).
                unsafe {
                    block(
                        &buf[..need],
                        r1 - r0,
                        panels,
                        w,
                        p0..p1,
                        out.get().add(r0 * dst_stride),
                        dst_stride,
                        accumulate,
                        epilogue,
                    );
                }
            });
        };
        let tasks = row_blocks * col_chunks;
        if tasks == 1 {
            task(0);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    }

    /// Rounds `rows` source rows to bf16 pairs, row-major with `pairs` u32 per row; rows up to the
    /// next multiple of MR are zero.
    fn pack_rows(
        buf: &mut [u32],
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &PackedBf16Linear,
    ) {
        let (inp, pairs) = (w.inp, w.pairs);
        for (r, dst) in buf.chunks_exact_mut(pairs).enumerate() {
            if r < rows {
                round_row(&src[r * src_stride..r * src_stride + inp], dst);
            } else {
                dst.fill(0);
            }
        }
    }

    /// Rounds a row to bf16 pairs with `vcvtne2ps2bf16` (round to nearest even, as
    /// [`to_bf16_bits`], except that the instruction flushes f32 subnormals to zero).
    fn round_row(src: &[f32], dst: &mut [u32]) {
        assert!(dst.len() >= src.len().div_ceil(2));
        let full = src.len() / 32;
        // SAFETY: the native kernel only runs where AVX-512 F and BF16 exist; 32 floats in and 16
        // pairs out per step stay inside both slices.
        unsafe {
            round_row_avx512(src.as_ptr(), dst.as_mut_ptr(), full);
        }
        round_row_scalar(&src[32 * full..], &mut dst[16 * full..]);
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn round_row_avx512(src: *const f32, dst: *mut u32, blocks: usize) {
        for i in 0..blocks {
            // SAFETY: see `round_row`.
            unsafe {
                let lo = _mm512_loadu_ps(src.add(32 * i));
                let hi = _mm512_loadu_ps(src.add(32 * i + 16));
                let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(dst.add(16 * i).cast(), packed);
            }
        }
    }

    crate::simd::multiversion! {
        fn round_row_scalar(src: &[f32], dst: &mut [u32]) {
            let full = src.len() / 2;
            for (d, s) in dst[..full].iter_mut().zip(src.chunks_exact(2)) {
                *d = u32::from(to_bf16_bits(s[0])) | (u32::from(to_bf16_bits(s[1])) << 16);
            }
            if src.len() % 2 == 1 {
                dst[full] = u32::from(to_bf16_bits(src[src.len() - 1]));
            }
        }
    }

    /// Multiplies a packed row block by the column panels in `panel_range`, then applies the
    /// epilogue's GELU to the block.
    ///
    /// # Safety
    /// AVX-512 F and BF16 must be available; `dst` must be valid for `rows` rows of stride
    /// `dst_stride` and the columns of the panels (up to `w.out`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn block(
        a: &[u32],
        rows: usize,
        panels: &[u32],
        w: &PackedBf16Linear,
        panel_range: std::ops::Range<usize>,
        dst: *mut f32,
        dst_stride: usize,
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        let pairs = w.pairs;
        let bias = match epilogue {
            Bf16Epilogue::Bias(b) => Some(b),
            _ => None,
        };
        for j in panel_range.clone() {
            let b = &panels[j * pairs * NR..(j + 1) * pairs * NR];
            let c0 = j * NR;
            let nr = NR.min(w.out - c0);
            let bias_ptr = bias.map(|b| b[c0..].as_ptr());
            for (t, a_tile) in a.chunks_exact(MR * pairs).enumerate() {
                let mr = MR.min(rows - t * MR);
                // SAFETY: forwarded from the caller; the tile lies in rows t MR .. t MR + mr and
                // columns c0 .. c0 + nr.
                unsafe {
                    tile(
                        a_tile.as_ptr(),
                        pairs,
                        b.as_ptr(),
                        dst.add(t * MR * dst_stride + c0),
                        dst_stride,
                        mr,
                        nr,
                        accumulate,
                        bias_ptr,
                    );
                }
            }
        }
        if let Bf16Epilogue::BiasGelu(bias) = epilogue {
            let c0 = panel_range.start * NR;
            let c1 = (panel_range.end * NR).min(w.out);
            for r in 0..rows {
                // SAFETY: row r of the block, columns c0..c1, inside dst (see above).
                let row = unsafe {
                    std::slice::from_raw_parts_mut(dst.add(r * dst_stride + c0), c1 - c0)
                };
                bias_gelu_inplace_block(row, &bias[c0..c1]);
            }
        }
    }

    /// One MR x NR register tile: `dst[r][c] (+)= sum_p A[r] . B[p][c] (+ bias[c])` for the first `mr`
    /// rows and `nr` columns.
    ///
    /// # Safety
    /// AVX-512 F and BF16; `a` holds MR rows of `pairs` u32 (row stride `pairs`), `b` a panel of
    /// `pairs * NR` u32; `dst` valid for `mr` rows of stride `dst_stride` and `nr` columns; `bias`
    /// valid for `nr` values.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile(
        a: *const u32,
        pairs: usize,
        b: *const u32,
        dst: *mut f32,
        dst_stride: usize,
        mr: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<*const f32>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        // SAFETY (whole body): pointer offsets stay inside the buffers described above.
        unsafe {
            for p in 0..pairs {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
                    acc_r[0] = _mm512_dpbf16_ps(acc_r[0], av, b0);
                    acc_r[1] = _mm512_dpbf16_ps(acc_r[1], av, b1);
                }
            }
            let m0: __mmask16 = if nr >= 16 {
                0xffff
            } else {
                (1u32 << nr) as u16 - 1
            };
            let m1: __mmask16 = if nr >= 32 {
                0xffff
            } else if nr > 16 {
                (1u32 << (nr - 16)) as u16 - 1
            } else {
                0
            };
            let (bias0, bias1) = match bias {
                Some(bp) => (
                    _mm512_maskz_loadu_ps(m0, bp),
                    _mm512_maskz_loadu_ps(m1, bp.add(16)),
                ),
                None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
            };
            for (r, acc_r) in acc.iter().enumerate().take(mr) {
                let d = dst.add(r * dst_stride);
                let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
                if accumulate {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, d));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, d.add(16)));
                }
                v0 = _mm512_add_ps(v0, bias0);
                v1 = _mm512_add_ps(v1, bias1);
                _mm512_mask_storeu_ps(d, m0, v0);
                _mm512_mask_storeu_ps(d.add(16), m1, v1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round_to_bf16(1.0), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even significand (1.0).
        assert_eq!(round_to_bf16(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
        assert_eq!(
            round_to_bf16(1.0 + 3.0 * 2f32.powi(-8)),
            1.0 + 2f32.powi(-6)
        );
        assert_eq!(
            round_to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(round_to_bf16(-3.0), -3.0);
        assert!(round_to_bf16(f32::NAN).is_nan());
        assert_eq!(round_to_bf16(f32::INFINITY), f32::INFINITY);
        for x in random(1000, 1) {
            let r = round_to_bf16(x * 100.0);
            assert!(((r - x * 100.0) / (x * 100.0)).abs() <= 2f32.powi(-8));
        }
    }

    /// The product of the bf16-rounded operands in f64 (what the kernel computes, up to f32 sums).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        dst0: &[f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &[f32],
        out: usize,
        inp: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
        gelu: bool,
    ) -> Vec<f64> {
        let mut res = vec![0.0; rows * out];
        for r in 0..rows {
            for j in 0..out {
                let mut s = if accumulate {
                    f64::from(dst0[r * dst_stride + j])
                } else {
                    0.0
                };
                for k in 0..inp {
                    s += f64::from(round_to_bf16(src[r * src_stride + k]))
                        * f64::from(round_to_bf16(w[j * inp + k]));
                }
                if let Some(b) = bias {
                    s += f64::from(b[j]);
                }
                if gelu {
                    s = f64::from(crate::math::gelu(s as f32));
                }
                res[r * out + j] = s;
            }
        }
        res
    }

    fn check(rows: usize, out: usize, inp: usize, accumulate: bool, mode: u8, threads: usize) {
        let (src_stride, dst_stride) = (inp + 3, out + 5);
        let src = random(rows * src_stride, 2);
        let w = random(out * inp, 3);
        let bias = random(out, 4);
        let dst0 = random(rows * dst_stride, 5);
        let packed = PackedBf16Linear::pack(&w, out, inp);
        let epi = match mode {
            0 => Bf16Epilogue::None,
            1 => Bf16Epilogue::Bias(&bias),
            _ => Bf16Epilogue::BiasGelu(&bias),
        };
        let mut dst = dst0.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            linear_bf16(
                &mut dst, dst_stride, &src, src_stride, rows, &packed, accumulate, epi,
            )
        });
        let want = reference(
            &dst0,
            dst_stride,
            &src,
            src_stride,
            rows,
            &w,
            out,
            inp,
            accumulate,
            epi.bias(),
            mode == 2,
        );
        for r in 0..rows {
            for j in 0..dst_stride {
                let got = dst[r * dst_stride + j];
                if j >= out {
                    assert_eq!(
                        got,
                        dst0[r * dst_stride + j],
                        "padding column {j} was written"
                    );
                    continue;
                }
                let w = want[r * out + j];
                // f32 summation of `inp` exact products (plus GELU's own f32 rounding).
                let tol = 1e-6 * (inp as f64).sqrt() * (1.0 + w.abs()) + 2e-6;
                assert!(
                    (f64::from(got) - w).abs() <= tol,
                    "rows {rows} out {out} in {inp} acc {accumulate} mode {mode}: ({r}, {j}) = {got}, want {w}"
                );
            }
        }
    }

    #[test]
    fn products_match_the_rounded_reference_for_edge_shapes() {
        for &(rows, out, inp) in &[
            (1, 1, 1),
            (1, 33, 7),
            (12, 32, 2),
            (13, 31, 16),
            (50, 64, 33),
            (100, 100, 256),
            (250, 1000, 64),
        ] {
            for threads in [1, 3] {
                check(rows, out, inp, false, 0, threads);
            }
            check(rows, out, inp, true, 1, 2);
            check(rows, out, inp, false, 2, 2);
        }
    }

    #[test]
    fn close_to_the_f32_product() {
        let (rows, out, inp) = (64, 96, 256);
        let src = random(rows * inp, 7);
        let w = random(out * inp, 8);
        let mut dst = vec![0.0; rows * out];
        let packed = PackedBf16Linear::pack(&w, out, inp);
        linear_bf16(
            &mut dst,
            out,
            &src,
            inp,
            rows,
            &packed,
            false,
            Bf16Epilogue::None,
        );
        let mut exact = vec![0.0; rows * out];
        matmul_with(
            MatMut::row_major(&mut exact, rows, out),
            MatRef::row_major(&src, rows, inp),
            MatRef::row_major(&w, out, inp).t(),
            false,
            1.0,
            Threads::Single,
        );
        // Each operand moves by at most 2^-8 relative: the error is at most ~2^-7 sum |a||b|, and
        // random signs make it ~2^-7 sqrt(inp) |a||b| typically.
        let max_err = dst
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let bound = 2f32.powi(-8) * inp as f32 / 3.0;
        assert!(max_err > 0.0, "bf16 rounding had no effect");
        assert!(max_err < bound, "max error {max_err} above {bound}");
    }

    #[test]
    fn splits_cover_every_row_and_panel() {
        for rows in [1, 5, 12, 13, 50, 100, 1000, 1050, 6400] {
            for panels in [1, 2, 8, 32] {
                for threads in [1, 2, 4, 16] {
                    let (br, cp) = split(rows, panels, threads);
                    assert!(br % MR == 0 && br > 0 && br <= MAX_BLOCK_ROWS.max(MR));
                    assert!(cp >= 1 && cp <= panels);
                }
            }
        }
    }
}
