//! bf16 linear layers for inference and training: `dst (+)= src W^T (+ bias) (then GELU)` with the
//! inputs and the weights rounded to bfloat16 and every product accumulated in f32.
//!
//! bfloat16 keeps the f32 exponent and 8 significant bits, so rounding an operand changes it by at
//! most 2^-8 of its magnitude; the products of two bf16 numbers are exact in f32 and the sums are f32.
//! On CPUs with AVX-512 BF16 (`vdpbf16ps`: 32 products per instruction, twice the f32 FMA rate) the
//! product runs in a register-blocked kernel over weights packed once with
//! [`PackedBf16Linear::pack`]; elsewhere the same rounding is emulated (operands rounded to bf16, the
//! product through the f32 `gemm`), so results agree everywhere up to f32 summation order.
//!
//! The same kernel serves bf16 mixed-precision training: the forward product `x W^T` with W packed
//! by [`PackedBf16Linear::pack`], the input gradient `dy W` with W packed transposed by
//! [`PackedBf16Linear::pack_transposed`], and the weight gradient `dy^T x` by [`matmul_tn_bf16`]
//! (both operands packed along the long token dimension, which becomes the reduction). Every product
//! accumulates in f32; the master weights, gradients and optimizer state stay f32.
//!
//! [`set_force_emulation`] (or the environment variable `PFN_BF16_EMULATE=1`) makes
//! [`native_available`] report false, so that the emulated path can be exercised on any CPU.
//!
//! On CPUs with Intel AMX (AMX-TILE and AMX-BF16: `tdpbf16ps` multiplies a tile of 16 rows x 32 bf16
//! by a tile of 32 bf16 x 16 columns into a 16 x 16 tile of f32 accumulators, 16 times the products of
//! one `vdpbf16ps`) the natively packed products run on the tile unit instead of the AVX-512 BF16
//! register kernel: same packed weights, same rounding of the operands, same epilogue, f32
//! accumulation in another order. [`amx_available`] says whether it is used; the environment variable
//! `PFN_AMX=0` or [`set_force_no_amx`] keep the AVX-512 kernel. The tile algorithm (module `amx`) is
//! written once over a tile unit with two implementations, the hardware one and a scalar emulation
//! of `tdpbf16ps`, so that its blocking, packing and tails are tested on every CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::gelu::bias_gelu_inplace_block;
use crate::matmul::{matmul_with, MatMut, MatRef, Threads};

#[cfg(target_arch = "x86_64")]
mod amx;

/// Rows of the register tile of the native kernel.
const MR: usize = 12;
/// Columns of the register tile (two AVX-512 registers of f32).
const NR: usize = 32;
/// Largest row block one task packs and multiplies.
const MAX_BLOCK_ROWS: usize = 16 * MR;

/// Rows of the reduction (pairs of them) that [`matmul_tn_bf16`] multiplies per pass over a row block.
const KC_PAIRS: usize = 256;

/// Set by [`set_force_emulation`].
static FORCE_EMULATION: AtomicBool = AtomicBool::new(false);

/// Set by [`set_force_no_amx`].
static FORCE_NO_AMX: AtomicBool = AtomicBool::new(false);

/// Whether this CPU has the instructions of the native bf16 kernel (AVX-512 F and BF16), whatever
/// [`set_force_emulation`] says.
pub fn hardware_available() -> bool {
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

/// Whether the native bf16 kernel is used: the CPU has AVX-512 F and BF16
/// ([`hardware_available`]) and emulation is not forced (by [`set_force_emulation`], the
/// environment variable `PFN_BF16_EMULATE` set to anything but `0` or empty, or `PFN_SIMD_LEVEL`
/// capping the kernels below AVX-512).
pub fn native_available() -> bool {
    static ENV: OnceLock<bool> = OnceLock::new();
    let env = *ENV
        .get_or_init(|| std::env::var("PFN_BF16_EMULATE").is_ok_and(|v| !v.is_empty() && v != "0"));
    !env && !FORCE_EMULATION.load(Ordering::Relaxed)
        && hardware_available()
        && crate::simd::level() == crate::simd::Level::V4
}

/// Why bf16 products are not faster than f32 here, when the native kernel is not used (`None` when
/// it is): no AVX-512 BF16 on this CPU, or emulation forced. For notes to the user.
pub fn emulation_note() -> Option<&'static str> {
    if native_available() {
        None
    } else if hardware_available() {
        Some(
            "bf16 emulation is forced (PFN_BF16_EMULATE, PFN_SIMD_LEVEL or set_force_emulation): the rounding is \
             emulated through f32 products and is not faster than f32",
        )
    } else {
        Some(
            "this CPU has no hardware bf16 support (AVX-512 BF16): the bf16 rounding is emulated \
             through f32 products and is not faster than f32",
        )
    }
}

/// Forces (or stops forcing) the emulated bf16 path for weights packed and products started from
/// now on, process-wide: operands rounded to bf16 exactly as the native kernel rounds them, products
/// through the f32 `gemm`. For tests and comparisons on CPUs with AVX-512 BF16.
pub fn set_force_emulation(on: bool) {
    FORCE_EMULATION.store(on, Ordering::Relaxed);
}

/// Whether this CPU and operating system let this process use Intel AMX for bf16 products, whatever
/// the overrides say: CPUID reports AMX-TILE and AMX-BF16, the OS enables the tile state in XCR0, and
/// Linux granted the process the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, requested on the
/// first call). Checked once; false on other architectures and operating systems.
pub fn amx_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        amx::supported()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether natively packed bf16 products ([`linear_bf16`], [`matmul_tn_bf16`]) run on the Intel AMX
/// tile unit: the native AVX-512 BF16 kernel would be used ([`native_available`]), the CPU and OS
/// support AMX ([`amx_supported`]), and AMX is not turned off by [`set_force_no_amx`] or the
/// environment variable `PFN_AMX=0`.
pub fn amx_available() -> bool {
    static ENV_OFF: OnceLock<bool> = OnceLock::new();
    let off = *ENV_OFF.get_or_init(|| std::env::var("PFN_AMX").is_ok_and(|v| v == "0"));
    !off && !FORCE_NO_AMX.load(Ordering::Relaxed) && native_available() && amx_supported()
}

/// Keeps (or stops keeping) natively packed bf16 products on the AVX-512 BF16 kernel even where AMX
/// is available, for products started from now on, process-wide. For tests and comparisons of the
/// two kernels.
pub fn set_force_no_amx(on: bool) {
    FORCE_NO_AMX.store(on, Ordering::Relaxed);
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
        Self::from_fn_with(native_available(), out, inp, weight)
    }

    /// Packs the transpose of `m`, a row-major (rows, cols) matrix, as a weight of shape
    /// (cols, rows): [`linear_bf16`] with it computes `dst (+)= src m` for a (.., rows) source. For
    /// a linear layer's weight W (out, in) this gives the input gradient `dx = dy W`
    /// (`pack_transposed(w, out, in)`).
    ///
    /// # Panics
    /// If `m.len() != rows * cols`.
    pub fn pack_transposed(m: &[f32], rows: usize, cols: usize) -> Self {
        Self::pack_transposed_with(native_available(), m, rows, cols)
    }

    fn pack_transposed_with(native: bool, m: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            m.len(),
            rows * cols,
            "PackedBf16Linear::pack_transposed: matrix of {} values is not {rows} x {cols}",
            m.len()
        );
        if !native {
            return Self::from_fn_with(false, cols, rows, |j, k| m[k * cols + j]);
        }
        let pairs = rows.div_ceil(2);
        let mut d = vec![0u32; cols.div_ceil(NR) * pairs * NR];
        #[cfg(target_arch = "x86_64")]
        native::pack_columns(&mut d, m, cols, rows, cols, Threads::Single);
        Self {
            out: cols,
            inp: rows,
            pairs,
            data: Packed::Native(d),
        }
    }

    fn from_fn_with(
        native: bool,
        out: usize,
        inp: usize,
        weight: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let pairs = inp.div_ceil(2);
        let data = if native {
            let mut d = vec![0u32; out.div_ceil(NR) * pairs * NR];
            pack_panels_with(&mut d, out, inp, weight);
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

    /// Whether the weights are in the native layout of the hardware kernels (AVX-512 BF16, or AMX
    /// where [`amx_available`]); otherwise the rounding is emulated.
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

/// Writes the weight whose element (j, k) is `weight(j, k)` into `d` in the native panel layout (see
/// [`Packed::Native`]) for `out` outputs and `inp` inputs; the entries of columns beyond `out` and of
/// the odd input column are left as they are (zero in a fresh buffer). Portable (no AVX-512).
fn pack_panels_with(d: &mut [u32], out: usize, inp: usize, weight: impl Fn(usize, usize) -> f32) {
    let pairs = inp.div_ceil(2);
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
                if amx_available() {
                    // SAFETY: AMX is usable (`amx_available`); the rest is forwarded from the caller.
                    unsafe {
                        amx::linear::<amx::Amx>(
                            dst, dst_stride, src, src_stride, rows, w, panels, accumulate, epilogue,
                        )
                    };
                } else {
                    // SAFETY: forwarded from the caller.
                    unsafe {
                        native::linear(
                            dst, dst_stride, src, src_stride, rows, w, panels, accumulate, epilogue,
                        )
                    };
                }
            }
            true
        }
        _ => false,
    }
}

/// `dst = a^T b`, or `dst += a^T b` with `accumulate`, with both operands rounded to bf16 and f32
/// accumulation: `a` is (k, m) with row stride `a_stride`, `b` is (k, n) with row stride
/// `b_stride`, `dst` is (m, n) with row stride `dst_stride`. This is the weight gradient of a linear
/// layer, `dW (+)= dy^T x` over k token rows (the backward of [`linear_bf16`]'s weight). Runs on the
/// current rayon pool.
///
/// The native path packs `b` along the reduction (as [`PackedBf16Linear::pack_transposed`]) once per
/// call, packs `a`'s columns per task, and multiplies in chunks of the reduction with the register
/// kernel of [`linear_bf16`].
///
/// # Panics
/// If a matrix does not fit its buffer or a stride is shorter than its row.
#[allow(clippy::too_many_arguments)]
pub fn matmul_tn_bf16(
    dst: &mut [f32],
    dst_stride: usize,
    a: &[f32],
    a_stride: usize,
    b: &[f32],
    b_stride: usize,
    k: usize,
    m: usize,
    n: usize,
    accumulate: bool,
) {
    matmul_tn_with(
        native_available(),
        dst,
        dst_stride,
        a,
        a_stride,
        b,
        b_stride,
        k,
        m,
        n,
        accumulate,
    );
}

/// [`matmul_tn_bf16`] on the native (`native`, which needs AVX-512 BF16) or the emulated path.
#[allow(clippy::too_many_arguments)]
fn matmul_tn_with(
    native: bool,
    dst: &mut [f32],
    dst_stride: usize,
    a: &[f32],
    a_stride: usize,
    b: &[f32],
    b_stride: usize,
    k: usize,
    m: usize,
    n: usize,
    accumulate: bool,
) {
    assert!(
        fits(a.len(), k, m, a_stride) && fits(b.len(), k, n, b_stride),
        "matmul_tn_bf16: operands ({k} x {m}, stride {a_stride}; {k} x {n}, stride {b_stride}) \
         exceed buffers of {} and {}",
        a.len(),
        b.len()
    );
    assert!(
        fits(dst.len(), m, n, dst_stride),
        "matmul_tn_bf16: destination {m} x {n} (stride {dst_stride}) exceeds a buffer of {}",
        dst.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_stride..r * dst_stride + n].fill(0.0);
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if native {
        assert!(
            hardware_available(),
            "native bf16 product without AVX-512 BF16"
        );
        if amx_available() {
            // SAFETY: AMX is usable (`amx_available`), and the shapes were checked above.
            unsafe {
                amx::matmul_tn::<amx::Amx>(
                    dst, dst_stride, a, a_stride, b, b_stride, k, m, n, accumulate,
                )
            };
            return;
        }
        // SAFETY: the CPU has AVX-512 F and BF16, and the shapes were checked above.
        unsafe {
            native::matmul_tn(
                dst, dst_stride, a, a_stride, b, b_stride, k, m, n, accumulate,
            )
        };
        return;
    }
    let round = |v: &[f32], stride: usize, cols: usize| -> Vec<f32> {
        let mut r = Vec::with_capacity(k * cols);
        for row in 0..k {
            r.extend(
                v[row * stride..row * stride + cols]
                    .iter()
                    .map(|&x| round_to_bf16(x)),
            );
        }
        r
    };
    let (ar, br) = (round(a, a_stride, m), round(b, b_stride, n));
    matmul_with(
        MatMut::new(dst, m, n, dst_stride, 1),
        MatRef::row_major(&ar, k, m).t(),
        MatRef::row_major(&br, k, n),
        accumulate,
        1.0,
        Threads::Pool,
    );
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

/// How a product of `rows` rows and `panels` column panels is split into tasks for `threads`
/// threads: row blocks of `block_rows` (a multiple of `granule` rows, at most `max_rows`, itself a
/// multiple of `granule`) times column chunks of `chunk_panels` panels.
fn split_with(
    rows: usize,
    panels: usize,
    threads: usize,
    granule: usize,
    max_rows: usize,
) -> (usize, usize) {
    let tiles = rows.div_ceil(granule);
    if threads <= 1 {
        return ((tiles * granule).min(max_rows), panels);
    }
    // Prefer row blocks (each task packs its own rows once); about three per thread balances load.
    let row_tasks = (3 * threads).min(tiles);
    let block_tiles = tiles.div_ceil(row_tasks);
    let block_rows = (block_tiles * granule).min(max_rows);
    let row_blocks = rows.div_ceil(block_rows);
    if row_blocks >= 2 * threads {
        return (block_rows, panels);
    }
    // Few rows: also split the columns.
    let col_tasks = (2 * threads).div_ceil(row_blocks).min(panels).max(1);
    (block_rows, panels.div_ceil(col_tasks))
}

/// Runs `task(r0..r1, p0..p1)` once for every block of the grid [`split_with`] chooses for a product
/// of `rows` rows and `panels` column panels (row blocks a multiple of `granule` rows, at most
/// `max_rows`), over the current rayon pool, or inline when the grid has one block. The blocks are
/// disjoint and cover every row and panel.
#[cfg(target_arch = "x86_64")]
fn for_each_block(
    rows: usize,
    panels: usize,
    granule: usize,
    max_rows: usize,
    task: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>) + Sync + Send,
) {
    let (block_rows, chunk_panels) = split_with(
        rows,
        panels,
        rayon::current_num_threads(),
        granule,
        max_rows,
    );
    let col_chunks = panels.div_ceil(chunk_panels);
    let tasks = rows.div_ceil(block_rows) * col_chunks;
    let run = |t: usize| {
        let (r0, p0) = (
            (t / col_chunks) * block_rows,
            (t % col_chunks) * chunk_panels,
        );
        task(
            r0..(r0 + block_rows).min(rows),
            p0..(p0 + chunk_panels).min(panels),
        );
    };
    if tasks == 1 {
        run(0);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
}

/// The GELU part of [`Bf16Epilogue::BiasGelu`] after a block's products were stored: columns `cols`
/// of `rows` rows become GELU(value + bias). Shared by the AVX-512 and the AMX kernels.
///
/// # Safety
/// `dst` must be valid for reads and writes of `rows` rows of stride `dst_stride` in the columns
/// `cols`, which nothing else accesses during the call; `bias` holds at least `cols.end` values.
#[cfg(target_arch = "x86_64")]
unsafe fn gelu_columns(
    dst: *mut f32,
    dst_stride: usize,
    rows: usize,
    cols: std::ops::Range<usize>,
    bias: &[f32],
) {
    for r in 0..rows {
        // SAFETY: row r, columns `cols`, inside the caller's region.
        let row = unsafe {
            std::slice::from_raw_parts_mut(dst.add(r * dst_stride + cols.start), cols.len())
        };
        bias_gelu_inplace_block(row, &bias[cols.clone()]);
    }
}

/// A pointer to the destination shared by tasks that write disjoint tiles.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct DstPtr(*mut f32);
// SAFETY: tasks write disjoint (row block, column chunk) regions.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for DstPtr {}
// SAFETY: as above.
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for DstPtr {}

#[cfg(target_arch = "x86_64")]
impl DstPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
mod native {
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    use super::*;

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
        let out = DstPtr(dst);
        for_each_block(rows, n_panels, MR, MAX_BLOCK_ROWS, |rs, ps| {
            let ((r0, r1), (p0, p1)) = ((rs.start, rs.end), (ps.start, ps.end));
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
                    block::<false>(
                        &buf[..need],
                        r1 - r0,
                        w.pairs,
                        panels,
                        w.pairs * NR,
                        w.out,
                        p0..p1,
                        out.get().add(r0 * dst_stride),
                        dst_stride,
                        accumulate,
                        epilogue,
                    );
                }
            });
        });
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
    pub(super) fn round_row(src: &[f32], dst: &mut [u32]) {
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
        /// Rounds a row to bf16 pairs (`dst[i] = bf16(src[2i]) | bf16(src[2i + 1]) << 16`, zero high
        /// half for an odd last value), portably.
        pub(super) fn round_row_scalar(src: &[f32], dst: &mut [u32]) {
            let full = src.len() / 2;
            for (d, s) in dst[..full].iter_mut().zip(src.chunks_exact(2)) {
                *d = u32::from(to_bf16_bits(s[0])) | (u32::from(to_bf16_bits(s[1])) << 16);
            }
            if src.len() % 2 == 1 {
                dst[full] = u32::from(to_bf16_bits(src[src.len() - 1]));
            }
        }
    }

    /// Rounds `lanes` (<= 16) consecutive values of the rows `lo` and `hi` (`hi` null: zeros) to
    /// bf16 and stores them as pairs `lo[c] | hi[c] << 16` at `dst[c]` for c < `store` (zero beyond
    /// `lanes`).
    ///
    /// # Safety
    /// AVX-512 F and BF16; `lo` (and `hi` unless null) valid for `lanes` reads, `dst` for `store`
    /// writes, `lanes <= store <= 16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_pairs(
        lo: *const f32,
        hi: *const f32,
        lanes: usize,
        store: usize,
        dst: *mut u32,
    ) {
        let load: __mmask16 = ((1u32 << lanes) - 1) as u16;
        let keep: __mmask16 = ((1u32 << store) - 1) as u16;
        // SAFETY: masked accesses stay inside the ranges described above.
        unsafe {
            let l: __m256i =
                std::mem::transmute(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(load, lo)));
            let mut v = _mm512_cvtepu16_epi32(l);
            if !hi.is_null() {
                let h: __m256i =
                    std::mem::transmute(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(load, hi)));
                v = _mm512_or_si512(v, _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)));
            }
            _mm512_mask_storeu_epi32(dst.cast(), keep, v);
        }
    }

    /// Packs the transpose of `m` ((rows, cols) with row stride `stride`) in the native weight
    /// layout of a (cols, rows) weight: panel j, pair p, column c at `(j * pairs + p) * NR + c` holds
    /// m[2p][j NR + c] | m[2p + 1][j NR + c] << 16 (zero beyond the matrix). Row pairs stream through
    /// the cache in order; with [`Threads::Pool`] the panels are split over the pool.
    pub(super) fn pack_columns(
        d: &mut [u32],
        m: &[f32],
        stride: usize,
        rows: usize,
        cols: usize,
        threads: Threads,
    ) {
        let pairs = rows.div_ceil(2);
        let panels = cols.div_ceil(NR);
        assert!(d.len() >= panels * pairs * NR && fits(m.len(), rows, cols, stride));
        let panel = |(j, out): (usize, &mut [u32])| {
            let lanes = [0, 1].map(|half| cols.saturating_sub(j * NR + 16 * half).min(16));
            // SAFETY: the native kernel runs only on CPUs with AVX-512 F and BF16; rows 0..rows of
            // `m` hold columns j NR .. j NR + lanes (checked above), and `out` is the panel's
            // pairs * NR values.
            unsafe {
                let base = m.as_ptr().add(j * NR);
                pack_panel(base, stride, rows, lanes, out.as_mut_ptr());
            }
        };
        if pairs == 0 || panels == 0 {
            return;
        }
        let d = &mut d[..panels * pairs * NR];
        match threads {
            Threads::Pool => d.par_chunks_mut(pairs * NR).enumerate().for_each(panel),
            Threads::Single => d.chunks_mut(pairs * NR).enumerate().for_each(panel),
        }
    }

    /// One panel of [`pack_columns`]: `base` points at column j NR of row 0, `lanes` are the
    /// columns present in each half of the panel.
    ///
    /// # Safety
    /// AVX-512 F and BF16; rows 0..rows (stride `stride`) valid for `lanes[0] + lanes[1]` values
    /// from `base` (a half with no lanes is not read); `out` valid for `rows.div_ceil(2) * NR`
    /// writes.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn pack_panel(
        base: *const f32,
        stride: usize,
        rows: usize,
        lanes: [usize; 2],
        out: *mut u32,
    ) {
        for p in 0..rows.div_ceil(2) {
            for (half, &l) in lanes.iter().enumerate() {
                // SAFETY: see above; masked loads read nothing beyond `l` values.
                unsafe {
                    let lo = base.wrapping_add(2 * p * stride + 16 * half);
                    let hi = if 2 * p + 1 < rows {
                        lo.wrapping_add(stride)
                    } else {
                        std::ptr::null()
                    };
                    pack_pairs(lo, hi, l, 16, out.add(p * NR + 16 * half));
                }
            }
        }
    }

    /// Packs columns `c0 .. c0 + rows` of `a` ((k, m) with row stride `a_stride`), row pairs
    /// `p0..p1`, as a pair-major row block for [`block`] (tiles of MR rows; rows up to the next
    /// multiple of MR and the missing odd row are zero).
    fn pack_cols_block(
        buf: &mut [u32],
        a: &[f32],
        a_stride: usize,
        k: usize,
        c0: usize,
        rows: usize,
        pairs: std::ops::Range<usize>,
    ) {
        let np = pairs.len();
        assert!(
            buf.len() >= rows.div_ceil(MR) * MR * np
                && (rows == 0
                    || pairs.end <= k.div_ceil(2) && fits(a.len(), k, c0 + rows, a_stride))
        );
        // SAFETY: AVX-512 F and BF16 (native path only); the columns c0 .. c0 + rows of rows
        // 2 p0 .. min(2 p1, k) lie in `a`, and the tiles in `buf` (both checked above).
        unsafe {
            pack_cols_block_avx512(buf.as_mut_ptr(), a.as_ptr(), a_stride, k, c0, rows, pairs)
        }
    }

    /// See [`pack_cols_block`].
    ///
    /// # Safety
    /// As checked there.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn pack_cols_block_avx512(
        buf: *mut u32,
        a: *const f32,
        a_stride: usize,
        k: usize,
        c0: usize,
        rows: usize,
        pairs: std::ops::Range<usize>,
    ) {
        let np = pairs.len();
        for t in 0..rows.div_ceil(MR) {
            let lanes = (rows - t * MR).min(MR);
            let col = a.wrapping_add(c0 + t * MR);
            for (i, p) in pairs.clone().enumerate() {
                // SAFETY: see the caller.
                unsafe {
                    let lo = col.wrapping_add(2 * p * a_stride);
                    let hi = if 2 * p + 1 < k {
                        lo.wrapping_add(a_stride)
                    } else {
                        std::ptr::null()
                    };
                    pack_pairs(lo, hi, lanes, MR, buf.add(t * MR * np + i * MR));
                }
            }
        }
    }

    thread_local! {
        /// The packed right operand of [`matmul_tn`] (taken out while in use, so a nested call
        /// allocates its own).
        static B_BUF: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// The native [`super::matmul_tn_bf16`] (shapes checked by the caller, k, m, n > 0).
    ///
    /// # Safety
    /// AVX-512 F and BF16 must be available.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn matmul_tn(
        dst: &mut [f32],
        dst_stride: usize,
        a: &[f32],
        a_stride: usize,
        b: &[f32],
        b_stride: usize,
        k: usize,
        m: usize,
        n: usize,
        accumulate: bool,
    ) {
        let pairs = k.div_ceil(2);
        let n_panels = n.div_ceil(NR);
        let mut packed = B_BUF.with(|v| std::mem::take(&mut *v.borrow_mut()));
        if packed.len() < n_panels * pairs * NR {
            packed.resize(n_panels * pairs * NR, 0);
        }
        pack_columns(&mut packed, b, b_stride, k, n, Threads::Pool);
        let out = DstPtr(dst.as_mut_ptr());
        let bp: &[u32] = &packed;
        for_each_block(m, n_panels, MR, MAX_BLOCK_ROWS, |rs, ps| {
            let ((r0, r1), (j0, j1)) = ((rs.start, rs.end), (ps.start, ps.end));
            A_BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let padded = (r1 - r0).div_ceil(MR) * MR;
                for (chunk, p0) in (0..pairs).step_by(KC_PAIRS).enumerate() {
                    let p1 = (p0 + KC_PAIRS).min(pairs);
                    let need = padded * (p1 - p0);
                    if buf.len() < need {
                        buf.resize(need, 0);
                    }
                    pack_cols_block(&mut buf[..need], a, a_stride, k, r0, r1 - r0, p0..p1);
                    // SAFETY: AVX-512 F and BF16 (caller); the task writes rows r0..r1 and the
                    // columns of panels j0..j1, disjoint from every other task, inside `dst`
                    // (checked by the caller).
                    unsafe {
                        block::<true>(
                            &buf[..need],
                            r1 - r0,
                            p1 - p0,
                            &bp[p0 * NR..],
                            pairs * NR,
                            n,
                            j0..j1,
                            out.get().add(r0 * dst_stride),
                            dst_stride,
                            accumulate || chunk > 0,
                            Bf16Epilogue::None,
                        );
                    }
                }
            });
        });
        B_BUF.with(|v| *v.borrow_mut() = packed);
    }

    /// Multiplies a packed row block by the column panels in `panel_range`, then applies the
    /// epilogue's GELU to the block. The block holds `rows` rows (padded to tiles of MR) of `pairs`
    /// input pairs: tile after tile, each row-major (`PMAJOR` false: element (r, p) at
    /// `r * pairs + p`) or pair-major (`PMAJOR` true: at `p * MR + r`). Panel j is the `pairs * NR`
    /// values at `panels[j * panel_stride..]`; `out` is the number of output columns.
    ///
    /// # Safety
    /// AVX-512 F and BF16 must be available; `dst` must be valid for `rows` rows of stride
    /// `dst_stride` and the columns of the panels (up to `out`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn block<const PMAJOR: bool>(
        a: &[u32],
        rows: usize,
        pairs: usize,
        panels: &[u32],
        panel_stride: usize,
        out: usize,
        panel_range: std::ops::Range<usize>,
        dst: *mut f32,
        dst_stride: usize,
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        let bias = match epilogue {
            Bf16Epilogue::Bias(b) => Some(b),
            _ => None,
        };
        for j in panel_range.clone() {
            let b = &panels[j * panel_stride..j * panel_stride + pairs * NR];
            let c0 = j * NR;
            let nr = NR.min(out - c0);
            let bias_cols = bias.map(|b| &b[c0..c0 + nr]);
            for (t, a_tile) in a.chunks_exact(MR * pairs).enumerate() {
                let mr = MR.min(rows - t * MR);
                // SAFETY: forwarded from the caller; the tile lies in rows t MR .. t MR + mr and
                // columns c0 .. c0 + nr.
                unsafe {
                    tile::<PMAJOR>(
                        a_tile.as_ptr(),
                        pairs,
                        b.as_ptr(),
                        dst.add(t * MR * dst_stride + c0),
                        dst_stride,
                        mr,
                        nr,
                        accumulate,
                        bias_cols,
                    );
                }
            }
        }
        if let Bf16Epilogue::BiasGelu(bias) = epilogue {
            let cols = panel_range.start * NR..(panel_range.end * NR).min(out);
            // SAFETY: the block's rows and columns, inside dst (see above).
            unsafe { gelu_columns(dst, dst_stride, rows, cols, bias) };
        }
    }

    /// One MR x NR register tile: `dst[r][c] (+)= sum_p A[r] . B[p][c] (+ bias[c])` for the first `mr`
    /// rows and `nr` columns (the additive epilogue [`finish_row`]).
    ///
    /// # Safety
    /// AVX-512 F and BF16; `a` holds MR rows of `pairs` u32 (row-major, or pair-major with
    /// `PMAJOR`; see [`block`]), `b` a panel of
    /// `pairs * NR` u32; `dst` valid for `mr` rows of stride `dst_stride` and `nr` columns, which
    /// nothing else accesses during the call; `bias` holds `nr` values.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const PMAJOR: bool>(
        a: *const u32,
        pairs: usize,
        b: *const u32,
        dst: *mut f32,
        dst_stride: usize,
        mr: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        // SAFETY (whole body): pointer offsets stay inside the buffers described above.
        unsafe {
            for p in 0..pairs {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let at = if PMAJOR { p * MR + r } else { r * pairs + p };
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(at) as i32));
                    acc_r[0] = _mm512_dpbf16_ps(acc_r[0], av, b0);
                    acc_r[1] = _mm512_dpbf16_ps(acc_r[1], av, b1);
                }
            }
            let masks = column_masks(nr);
            let biases = bias_registers(bias, masks);
            for (r, acc_r) in acc.iter().enumerate().take(mr) {
                finish_row(
                    dst.add(r * dst_stride),
                    acc_r[0],
                    acc_r[1],
                    masks,
                    accumulate,
                    biases,
                );
            }
        }
    }

    /// The write masks of the first `nr` (<= NR) columns of a row held in two registers.
    #[inline(always)]
    fn column_masks(nr: usize) -> (__mmask16, __mmask16) {
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
        (m0, m1)
    }

    /// The bias of the columns of `masks` in two registers (zero without a bias).
    ///
    /// # Safety
    /// AVX-512 F; `bias` holds the columns of `masks`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn bias_registers(
        bias: Option<&[f32]>,
        (m0, m1): (__mmask16, __mmask16),
    ) -> (__m512, __m512) {
        match bias {
            // SAFETY: masked loads read only the columns of the masks.
            Some(b) => unsafe {
                (
                    _mm512_maskz_loadu_ps(m0, b.as_ptr()),
                    _mm512_maskz_loadu_ps(m1, b.as_ptr().wrapping_add(16)),
                )
            },
            None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
        }
    }

    /// The additive part of the epilogue for one row of a finished tile, shared by the register
    /// kernel and the AMX kernel: `d = (v (+ d with accumulate)) + bias` in the columns of `masks`,
    /// the row's first 16 columns in `v0`, the next 16 in `v1`. ([`Bf16Epilogue::BiasGelu`] passes
    /// a zero bias here: [`gelu_columns`] adds it.)
    ///
    /// # Safety
    /// AVX-512 F; `d` valid for reads and writes of the columns of `masks`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn finish_row(
        d: *mut f32,
        mut v0: __m512,
        mut v1: __m512,
        (m0, m1): (__mmask16, __mmask16),
        accumulate: bool,
        (bias0, bias1): (__m512, __m512),
    ) {
        // SAFETY: masked accesses stay inside the row's columns.
        unsafe {
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, d));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, d.wrapping_add(16)));
            }
            v0 = _mm512_add_ps(v0, bias0);
            v1 = _mm512_add_ps(v1, bias1);
            _mm512_mask_storeu_ps(d, m0, v0);
            _mm512_mask_storeu_ps(d.wrapping_add(16), m1, v1);
        }
    }

    /// The additive part of the epilogue ([`finish_row`]) for the first `rows` rows and `nr`
    /// columns of a finished tile stored in `acc` (rows of NR f32), for the AMX kernel.
    ///
    /// # Safety
    /// AVX-512 F; `dst` valid for reads and writes of `rows` rows of stride `dst_stride` and `nr`
    /// columns, which nothing else accesses during the call; `acc` holds `rows` rows of NR; `bias`
    /// holds `nr` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn finish_rows(
        acc: &[f32],
        dst: *mut f32,
        dst_stride: usize,
        rows: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
    ) {
        assert!(acc.len() >= rows * NR && nr <= NR);
        let masks = column_masks(nr);
        // SAFETY: the caller's.
        unsafe {
            let biases = bias_registers(bias, masks);
            for r in 0..rows {
                let v0 = _mm512_loadu_ps(acc.as_ptr().add(r * NR));
                let v1 = _mm512_loadu_ps(acc.as_ptr().add(r * NR + 16));
                finish_row(dst.add(r * dst_stride), v0, v1, masks, accumulate, biases);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(super) fn random(n: usize, seed: u64) -> Vec<f32> {
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

    /// A linear product under test, called as [`linear_bf16`].
    pub(super) type LinearRun<'r> = &'r (dyn Fn(&mut [f32], usize, &[f32], usize, usize, &PackedBf16Linear, bool, Bf16Epilogue<'_>)
             + Sync);

    /// [`linear_bf16`] as a [`LinearRun`].
    #[allow(clippy::too_many_arguments)]
    fn public_linear(
        dst: &mut [f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &PackedBf16Linear,
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        linear_bf16(
            dst, dst_stride, src, src_stride, rows, w, accumulate, epilogue,
        );
    }

    fn check(rows: usize, out: usize, inp: usize, accumulate: bool, mode: u8, threads: usize) {
        check_with(
            rows,
            out,
            inp,
            accumulate,
            mode,
            threads,
            native_available(),
            &public_linear,
        );
    }

    /// Checks `run` on random strided operands (weights packed natively with `native`) against the
    /// f64 product of the bf16-rounded operands; `mode` 0, 1, 2 is no epilogue, bias, bias + GELU.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_with(
        rows: usize,
        out: usize,
        inp: usize,
        accumulate: bool,
        mode: u8,
        threads: usize,
        native: bool,
        run: LinearRun<'_>,
    ) {
        let (src_stride, dst_stride) = (inp + 3, out + 5);
        let src = random(rows * src_stride, 2);
        let w = random(out * inp, 3);
        let bias = random(out, 4);
        let dst0 = random(rows * dst_stride, 5);
        let packed = PackedBf16Linear::from_fn_with(native, out, inp, |j, k| w[j * inp + k]);
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
            run(
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

    /// The native path where the CPU has it, and the emulated path always.
    fn paths() -> Vec<bool> {
        if hardware_available() {
            vec![true, false]
        } else {
            vec![false]
        }
    }

    /// f64 sum of the products of bf16-rounded operands, and the tolerance for an f32 kernel's
    /// summation of `len` of them.
    pub(super) fn rounded_dot(pairs: impl Iterator<Item = (f32, f32)>, len: usize) -> (f64, f64) {
        let (mut s, mut mag) = (0.0f64, 0.0f64);
        for (u, v) in pairs {
            let p = f64::from(round_to_bf16(u)) * f64::from(round_to_bf16(v));
            s += p;
            mag += p.abs();
        }
        // f32 summation of `len` exact products: at most len * 2^-24 of the magnitude sum.
        (s, len as f64 * 2f64.powi(-24) * mag + 1e-7)
    }

    #[test]
    fn transposed_packing_multiplies_by_the_matrix() {
        for native in paths() {
            for &(rows, k, c) in &[(1, 1, 1), (5, 7, 33), (13, 64, 32), (40, 257, 70)] {
                // dst (rows, c) = src (rows, k) * m (k, c)
                let src = random(rows * k, 20);
                let m = random(k * c, 21);
                let w = PackedBf16Linear::pack_transposed_with(native, &m, k, c);
                assert_eq!((w.out_features(), w.in_features()), (c, k));
                assert_eq!(w.is_native(), native);
                let mut dst = vec![0.0; rows * c];
                linear_bf16(&mut dst, c, &src, k, rows, &w, false, Bf16Epilogue::None);
                for r in 0..rows {
                    for j in 0..c {
                        let (want, tol) =
                            rounded_dot((0..k).map(|i| (src[r * k + i], m[i * c + j])), k);
                        let got = f64::from(dst[r * c + j]);
                        assert!(
                            (got - want).abs() <= tol,
                            "native {native} {rows}x{k}x{c} ({r}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// A tn product under test, called as [`matmul_tn_bf16`].
    pub(super) type TnRun<'r> = &'r (dyn Fn(&mut [f32], usize, &[f32], usize, &[f32], usize, usize, usize, usize, bool)
             + Sync);

    /// Checks `run` on random strided operands against the f64 product of the bf16-rounded
    /// operands (and that it leaves the destination's padding alone).
    pub(super) fn check_tn(
        k: usize,
        m: usize,
        n: usize,
        threads: usize,
        accumulate: bool,
        run: TnRun<'_>,
    ) {
        let (a_stride, b_stride, d_stride) = (m + 2, n + 3, n + 1);
        let a = random(k * a_stride, 30);
        let b = random(k * b_stride, 31);
        let d0 = random(m * d_stride, 32);
        let mut d = d0.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            run(
                &mut d, d_stride, &a, a_stride, &b, b_stride, k, m, n, accumulate,
            )
        });
        for r in 0..m {
            for j in 0..d_stride {
                let got = d[r * d_stride + j];
                if j >= n {
                    assert_eq!(got, d0[r * d_stride + j], "padding ({r}, {j})");
                    continue;
                }
                let (mut want, tol) = rounded_dot(
                    (0..k).map(|i| (a[i * a_stride + r], b[i * b_stride + j])),
                    k,
                );
                if accumulate {
                    want += f64::from(d0[r * d_stride + j]);
                }
                assert!(
                    (f64::from(got) - want).abs() <= tol + 1e-6,
                    "k {k} m {m} n {n} threads {threads} acc {accumulate} ({r}, {j}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn tn_product_matches_the_rounded_reference() {
        // k beyond two reduction chunks, odd k, m and n off the tile sizes, strided operands.
        for native in paths() {
            for &(k, m, n) in &[
                (1, 1, 1),
                (3, 13, 33),
                (2 * (2 * KC_PAIRS) + 37, 25, 70),
                (600, 100, 64),
            ] {
                for (threads, accumulate) in [(1, false), (3, true), (2, false)] {
                    check_tn(
                        k,
                        m,
                        n,
                        threads,
                        accumulate,
                        &|d, ds, a, sa, b, sb, k, m, n, acc| {
                            matmul_tn_with(native, d, ds, a, sa, b, sb, k, m, n, acc)
                        },
                    );
                }
            }
        }
    }

    #[test]
    fn tn_product_with_an_empty_reduction_clears_or_keeps() {
        let mut d = vec![1.0f32; 6];
        matmul_tn_bf16(&mut d, 3, &[], 2, &[], 3, 0, 2, 3, true);
        assert_eq!(d, vec![1.0; 6]);
        matmul_tn_bf16(&mut d, 3, &[], 2, &[], 3, 0, 2, 3, false);
        assert_eq!(d, vec![0.0; 6]);
    }

    #[test]
    fn splits_cover_every_row_and_panel() {
        for rows in [1, 5, 12, 13, 50, 100, 1000, 1050, 6400] {
            for panels in [1, 2, 8, 32] {
                for threads in [1, 2, 4, 16] {
                    let (br, cp) = split_with(rows, panels, threads, MR, MAX_BLOCK_ROWS);
                    assert!(br % MR == 0 && br > 0 && br <= MAX_BLOCK_ROWS.max(MR));
                    assert!(cp >= 1 && cp <= panels);
                    // The AMX path's blocks of 32 rows.
                    let (br, cp) = split_with(rows, panels, threads, 32, MAX_BLOCK_ROWS);
                    assert!(br % 32 == 0 && br > 0 && br <= MAX_BLOCK_ROWS);
                    assert!(cp >= 1 && cp <= panels);
                }
            }
        }
    }
}
