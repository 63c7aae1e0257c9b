//! The Intel AMX path of the natively packed bf16 products: [`linear`] (`dst (+)= src W^T`, then the
//! epilogue) and [`matmul_tn`] (`dst (+)= a^T b`), written once over a [`TileUnit`].
//!
//! # The tile unit
//!
//! AMX has eight tile registers; this module loads palette 1 with every tile 16 rows x 64 bytes, so
//! a tile holds 16 x 16 u32: for the A and B operands each u32 is a pair of bf16 (first in the low
//! half), for C an f32. `tdpbf16ps C, A, B` computes, per row m and column n of C,
//! `C[m][n] += sum over the 16 pairs k of A[m][k].lo * B[k][n].lo + A[m][k].hi * B[k][n].hi`: A is
//! 16 rows x 16 pairs of the reduction, B is 16 pairs x 16 output columns.
//!
//! [`Amx`] runs the instructions (`ldtilecfg`, `tilezero`, `tileloadd`, `tdpbf16ps`,
//! `tilestored`, `tilerelease`) through inline `asm!` with their mnemonics: LLVM's integrated
//! assembler accepts them on stable Rust without enabling any target feature (checked with
//! `objdump`: `tdpbf16ps tmm0, tmm4, tmm6` assembles to `c4 e2 4a 5c c4`, the encoding of the SDM),
//! so no `.byte` encodings are needed. `Emulated` (built for the unit tests) keeps the eight tiles in
//! memory and implements `tdpbf16ps` in scalar code with the semantics of the Intel SDM's
//! pseudo-code, so that every CPU runs (and the tests check) the whole algorithm:
//!
//! - the bf16 inputs are widened to f32 exactly, with denormals treated as zero (DAZ);
//! - per row m of C, 32 f32 partial sums start at zero: for each pair k in order 0..16, the even
//!   partial sum of column n gets `fma(A[m][k].lo, B[k][n].lo, even)` and the odd one
//!   `fma(A[m][k].hi, B[k][n].hi, odd)`, each rounded to nearest even and flushed to zero when
//!   denormal (FTZ); the products of two bf16 are exact in f32, so each step is one rounding;
//! - then `C[m][n] = C[m][n] + (even + odd)`, both additions rounded to nearest even, denormal
//!   inputs treated as zero and denormal results flushed.
//!
//! (The SDM keeps the even and the odd products of an instruction in separate partial sums; the
//! Intrinsics Guide's shorter pseudo-code adds both straight into C. Hardware may order its
//! additions differently again: results of the real unit agree with the emulation up to f32
//! rounding, which `amx_matches_the_emulation` checks on AMX CPUs.)
//!
//! # Layout
//!
//! - B: the weight panels of [`PackedBf16Linear`] as they are (panel j, pair p, column c at
//!   `(j * pairs + p) * NR + c`): 16 pairs of a panel are rows at a stride of `NR * 4 = 128` bytes,
//!   and the 32 columns of the panel are two B tiles (bytes 0..64 and 64..128 of each row).
//!   [`matmul_tn`] packs `b` into the same layout along the reduction.
//! - A: the rows of the source in tiles of 16 rows (zero rows beyond the matrix) and steps of 16
//!   pairs of the reduction: tile t, step s is a contiguous 16 x 16 u32 block at
//!   `(t * steps + s) * 256`, row r pair i at `r * 16 + i` (row stride 64 bytes), zero beyond the
//!   reduction. [`linear`] rounds each task's rows into it; [`matmul_tn`] gathers the columns of `a`
//!   into it once per call (a transpose: row r of tile t is column 16 t + r of `a`).
//! - C: the micro-kernel keeps 2 x 2 C tiles (32 rows x one 32-column panel) in tmm0..tmm3, with
//!   the A tiles in tmm4, tmm5 and the B tiles in tmm6, tmm7: four `tdpbf16ps` per step of 16
//!   pairs. At the end of the reduction the C tiles are stored to a 32 x 32 f32 scratch on the
//!   stack and the epilogue is applied from there with the AVX-512 kernel's code (accumulate and
//!   bias per row, then GELU over the block; only the emulation on a CPU without AVX-512 uses a
//!   portable copy of the per-row rule, checked against it). A last row tile or a last panel of at
//!   most 16 columns uses 2 x 1, 1 x 2 or 1 x 1 tiles.
//!
//! # Tails
//!
//! The reduction is cut into steps of 16 pairs. A is zero beyond the last pair, but the panels of B
//! end after the last pair, so for a tail of `pairs % 16` pairs the last rows of the panel are copied
//! into a zeroed 16 x 32 scratch (one per panel and task) and the last step loads B from there; the
//! products of the padding are `0 x 0`. Rows beyond the matrix are zero rows of A whose results are
//! not stored; columns beyond the matrix are zero columns of the panels, likewise not stored.
//!
//! # Tile configuration
//!
//! The tile configuration is per thread. Every task (a rayon job that runs to its end without
//! yielding to other jobs) loads it when it starts ([`TileUnit::begin`]) and releases the tiles when
//! it ends (`tilerelease`, in [`Amx`]'s `Drop`), so no state is left on the pool's threads and
//! nested or concurrent products cannot see each other's configuration. Linux grants the tile data
//! state per process: [`supported`] requests it once (`arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)` through a raw `syscall`, as this crate does not depend on `libc`).

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::*;

/// Rows of a tile, pairs of the reduction per step, and columns of a C tile.
const T: usize = 16;
/// u32 in one tile.
const TILE_U32: usize = T * T;
/// Rows of the C tiles of the micro-kernel.
const BLOCK_M: usize = 2 * T;
/// Steps of 16 pairs that [`matmul_tn`] multiplies per pass over a row block (1024 pairs: the A
/// tiles of a 192-row block, 768 KiB, and a panel's 128 KiB stay in the L2 cache, and the C tiles
/// go through the epilogue once per 256 `tdpbf16ps` of a 2 x 2 kernel).
const KC_STEPS: usize = 64;
/// [`KC_STEPS`] in pairs.
#[cfg(test)]
const KC_PAIRS_AMX: usize = KC_STEPS * T;

/// The eight tile registers of palette 1, every tile configured as 16 rows x 64 bytes, and the
/// instructions that the algorithm uses. Tile indices are const parameters (register numbers of the
/// instructions); the micro-kernel uses tmm0..tmm3 for C, tmm4, tmm5 for A and tmm6, tmm7 for B.
///
/// # Safety
/// Implementations must compute what the AMX instructions of the same names compute on tiles of
/// 16 x 64 bytes (up to the order of the f32 additions of `tdpbf16ps`).
pub(super) unsafe trait TileUnit: Sized {
    /// Configures the tiles for the current thread (`ldtilecfg`: all tiles zero).
    ///
    /// # Safety
    /// The unit must be usable on this CPU (for [`Amx`]: [`supported`]); the unit must stay on the
    /// thread that created it and no other unit may be alive on that thread.
    unsafe fn begin() -> Self;

    /// `tilezero tmm{C}`.
    ///
    /// # Safety
    /// None beyond the unit's.
    unsafe fn zero<const C: usize>(&mut self);

    /// `tileloadd tmm{R}, [src + stride]`: 16 rows of 64 bytes, `stride` bytes apart.
    ///
    /// # Safety
    /// The 16 rows must be readable.
    unsafe fn load<const R: usize>(&mut self, src: *const u32, stride: usize);

    /// `tilestored [dst + stride], tmm{R}`: 16 rows of 16 f32, `stride` bytes apart.
    ///
    /// # Safety
    /// The 16 rows must be writable and not otherwise accessed.
    unsafe fn store<const R: usize>(&mut self, dst: *mut f32, stride: usize);

    /// `tdpbf16ps tmm{C}, tmm{A}, tmm{B}`.
    ///
    /// # Safety
    /// None beyond the unit's.
    unsafe fn dp<const C: usize, const A: usize, const B: usize>(&mut self);

    /// Runs [`block`] on this unit (instantiated with the target features the unit implies).
    ///
    /// # Safety
    /// As [`block`].
    unsafe fn block(&mut self, job: &Block<'_>);

    /// The epilogue's additive part for the C scratch (rows of NR f32): the AVX-512 kernel's
    /// `native::finish_rows` (for the emulation on CPUs without AVX-512, a portable copy of that
    /// rule built for the tests only).
    ///
    /// # Safety
    /// As `native::finish_rows`, except that the emulation needs no AVX-512.
    #[allow(clippy::too_many_arguments)]
    unsafe fn finish_rows(
        acc: &[f32],
        dst: *mut f32,
        dst_stride: usize,
        rows: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
    );
}

/// The tile configuration (64 bytes, palette 1): `colsb[i]` (u16 at byte 16 + 2 i) = 64 and `rows[i]`
/// (u8 at byte 48 + i) = 16 for the eight tiles; the other bytes (start row, reserved) zero.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

static CONFIG: TileConfig = TileConfig({
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut i = 0;
    while i < 8 {
        c[16 + 2 * i] = 64;
        c[48 + i] = 16;
        i += 1;
    }
    c
});

/// The hardware tile unit (a token: the state is in the CPU's tile registers). Not `Send`: the
/// configuration belongs to the thread that loaded it.
pub(super) struct Amx {
    _thread: std::marker::PhantomData<*const ()>,
}

// SAFETY: the methods are the instructions.
unsafe impl TileUnit for Amx {
    #[inline(always)]
    unsafe fn begin() -> Self {
        // SAFETY: AMX is usable (the caller); CONFIG is 64 readable bytes.
        unsafe {
            std::arch::asm!(
                "ldtilecfg [{cfg}]",
                cfg = in(reg) CONFIG.0.as_ptr(),
                options(nostack, readonly, preserves_flags)
            );
        }
        Self {
            _thread: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    unsafe fn zero<const C: usize>(&mut self) {
        // SAFETY: the tiles are configured (`begin`).
        unsafe {
            std::arch::asm!(
                "tilezero tmm{c}",
                c = const C,
                options(nostack, nomem, preserves_flags)
            );
        }
    }

    #[inline(always)]
    unsafe fn load<const R: usize>(&mut self, src: *const u32, stride: usize) {
        // SAFETY: the tiles are configured; the rows are readable (the caller).
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{r}, [{src} + {stride}*1]",
                r = const R,
                src = in(reg) src,
                stride = in(reg) stride,
                options(nostack, readonly, preserves_flags)
            );
        }
    }

    #[inline(always)]
    unsafe fn store<const R: usize>(&mut self, dst: *mut f32, stride: usize) {
        // SAFETY: the tiles are configured; the rows are writable (the caller).
        unsafe {
            std::arch::asm!(
                "tilestored [{dst} + {stride}*1], tmm{r}",
                r = const R,
                dst = in(reg) dst,
                stride = in(reg) stride,
                options(nostack, preserves_flags)
            );
        }
    }

    #[inline(always)]
    unsafe fn dp<const C: usize, const A: usize, const B: usize>(&mut self) {
        // SAFETY: the tiles are configured.
        unsafe {
            std::arch::asm!(
                "tdpbf16ps tmm{c}, tmm{a}, tmm{b}",
                c = const C,
                a = const A,
                b = const B,
                options(nostack, nomem, preserves_flags)
            );
        }
    }

    unsafe fn block(&mut self, job: &Block<'_>) {
        // SAFETY: forwarded; AMX implies AVX-512 F and BF16 here (`amx_available` requires the
        // native kernel).
        unsafe { block_avx512(self, job) }
    }

    #[inline(always)]
    unsafe fn finish_rows(
        acc: &[f32],
        dst: *mut f32,
        dst_stride: usize,
        rows: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
    ) {
        // SAFETY: forwarded; AVX-512 F as above.
        unsafe { native::finish_rows(acc, dst, dst_stride, rows, nr, accumulate, bias) }
    }
}

impl Drop for Amx {
    fn drop(&mut self) {
        // SAFETY: the unit was configured by `begin` on this thread.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

/// [`block`] for the hardware unit, compiled with AVX-512 for the packing and the epilogue.
///
/// # Safety
/// As [`block`]; AVX-512 F and BF16 must be available.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")]
unsafe fn block_avx512(unit: &mut Amx, job: &Block<'_>) {
    // SAFETY: forwarded.
    unsafe { block(unit, job) }
}

#[cfg(test)]
/// The software tile unit: eight tiles of 16 x 16 u32 in memory and `tdpbf16ps` as the SDM's
/// pseudo-code (see the module documentation). Slow; for tests on any CPU.
pub(super) struct Emulated {
    tiles: [[u32; TILE_U32]; 8],
    configured: bool,
}

// SAFETY: the methods emulate the instructions.
#[cfg(test)]
unsafe impl TileUnit for Emulated {
    unsafe fn begin() -> Self {
        Self {
            tiles: [[0; TILE_U32]; 8],
            configured: true,
        }
    }

    unsafe fn zero<const C: usize>(&mut self) {
        assert!(self.configured, "tilezero without a tile configuration");
        self.tiles[C] = [0; TILE_U32];
    }

    unsafe fn load<const R: usize>(&mut self, src: *const u32, stride: usize) {
        assert!(self.configured, "tileloadd without a tile configuration");
        for r in 0..T {
            for c in 0..T {
                // SAFETY: the rows are readable (the caller).
                self.tiles[R][r * T + c] = unsafe {
                    src.cast::<u8>()
                        .add(r * stride)
                        .cast::<u32>()
                        .add(c)
                        .read_unaligned()
                };
            }
        }
    }

    unsafe fn store<const R: usize>(&mut self, dst: *mut f32, stride: usize) {
        assert!(self.configured, "tilestored without a tile configuration");
        for r in 0..T {
            for c in 0..T {
                let v = f32::from_bits(self.tiles[R][r * T + c]);
                // SAFETY: the rows are writable (the caller).
                unsafe {
                    dst.cast::<u8>()
                        .add(r * stride)
                        .cast::<f32>()
                        .add(c)
                        .write_unaligned(v)
                };
            }
        }
    }

    unsafe fn dp<const C: usize, const A: usize, const B: usize>(&mut self) {
        assert!(self.configured, "tdpbf16ps without a tile configuration");
        assert!(
            C != A && C != B,
            "tdpbf16ps with its destination as a source"
        );
        let (a, b) = (self.tiles[A], self.tiles[B]);
        tdpbf16ps(&mut self.tiles[C], &a, &b);
    }

    unsafe fn block(&mut self, job: &Block<'_>) {
        // SAFETY: forwarded.
        unsafe { block(self, job) }
    }

    unsafe fn finish_rows(
        acc: &[f32],
        dst: *mut f32,
        dst_stride: usize,
        rows: usize,
        nr: usize,
        accumulate: bool,
        bias: Option<&[f32]>,
    ) {
        // SAFETY: forwarded (AVX-512 F checked).
        unsafe {
            if hardware_available() && crate::simd::level() == crate::simd::Level::V4 {
                native::finish_rows(acc, dst, dst_stride, rows, nr, accumulate, bias)
            } else {
                finish_rows_portable(acc, dst, dst_stride, rows, nr, accumulate, bias)
            }
        }
    }
}

/// `native::finish_rows` for CPUs without AVX-512, for the emulation in the tests: the same rule
/// (`d = (acc (+ d)) + bias`), checked against it by `portable_finish_matches_the_native_one`.
///
/// # Safety
/// As `native::finish_rows`, without AVX-512.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
unsafe fn finish_rows_portable(
    acc: &[f32],
    dst: *mut f32,
    dst_stride: usize,
    rows: usize,
    nr: usize,
    accumulate: bool,
    bias: Option<&[f32]>,
) {
    for r in 0..rows {
        // SAFETY: row r of the caller's region.
        let d = unsafe { std::slice::from_raw_parts_mut(dst.add(r * dst_stride), nr) };
        for (c, d) in d.iter_mut().enumerate() {
            let mut v = acc[r * NR + c];
            if accumulate {
                v += *d;
            }
            *d = v + bias.map_or(0.0, |b| b[c]);
        }
    }
}

/// A bf16 (the high half of an f32) as f32, denormals as zero.
#[cfg(test)]
#[inline(always)]
fn widen_daz(h: u32) -> f32 {
    daz(f32::from_bits(h << 16))
}

/// Denormals as (signed) zero: DAZ on inputs, FTZ on results.
#[cfg(test)]
#[inline(always)]
fn daz(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

#[cfg(test)]
crate::simd::multiversion! {
    /// `tdpbf16ps` on 16 x 16 tiles as the SDM's pseudo-code (module documentation): `c` holds f32
    /// bit patterns, `a` and `b` pairs of bf16.
    fn tdpbf16ps(c: &mut [u32; TILE_U32], a: &[u32; TILE_U32], b: &[u32; TILE_U32]) {
        for m in 0..T {
            let mut temp = [0.0f32; 2 * T];
            for k in 0..T {
                let pair = a[m * T + k];
                let (a0, a1) = (widen_daz(pair & 0xffff), widen_daz(pair >> 16));
                for n in 0..T {
                    let q = b[k * T + n];
                    let (b0, b1) = (widen_daz(q & 0xffff), widen_daz(q >> 16));
                    temp[2 * n] = daz(a0.mul_add(b0, temp[2 * n]));
                    temp[2 * n + 1] = daz(a1.mul_add(b1, temp[2 * n + 1]));
                }
            }
            for n in 0..T {
                let sum = daz(temp[2 * n] + temp[2 * n + 1]);
                let old = daz(f32::from_bits(c[m * T + n]));
                c[m * T + n] = daz(old + sum).to_bits();
            }
        }
    }
}

/// One product of A tiles by B panels, for [`TileUnit::block`].
pub(super) struct Block<'a> {
    /// Tile 0 of A at the first step of the reduction (layout in the module documentation).
    pub a: *const u32,
    /// u32 from one A tile to the next row tile (`steps * 256`).
    pub a_tile: usize,
    /// Rows of A (and of the destination); A holds `rows.div_ceil(16)` tiles.
    pub rows: usize,
    /// Pairs of the reduction: `pairs.div_ceil(16)` steps, A zero beyond `pairs`.
    pub pairs: usize,
    /// Panel j is `pairs * NR` u32 at `panels[j * panel_stride..]`.
    pub panels: &'a [u32],
    /// u32 from one panel to the next.
    pub panel_stride: usize,
    /// Columns of the destination.
    pub out: usize,
    /// The panels to multiply.
    pub panel_range: Range<usize>,
    /// Row 0, column 0 of the destination.
    pub dst: *mut f32,
    /// Row stride of the destination.
    pub dst_stride: usize,
    /// Add the product to the destination.
    pub accumulate: bool,
    /// Applied to the result.
    pub epilogue: Bf16Epilogue<'a>,
}

/// Multiplies the A tiles of `job` by its panels, then applies its epilogue (the tile loop of
/// [`linear`] and [`matmul_tn`]).
///
/// # Safety
/// The unit is configured; `job.a` holds the `rows.div_ceil(16)` tiles of `pairs.div_ceil(16)` steps
/// (tile stride `a_tile`); the panels hold `pairs * NR` u32 each; `dst` is valid for `rows` rows of
/// stride `dst_stride` in the columns of the panels (up to `out`), which nothing else accesses during
/// the call; the bias (if any) holds `out` values.
#[inline(always)]
unsafe fn block<U: TileUnit>(unit: &mut U, job: &Block<'_>) {
    let (full, tail) = (job.pairs / T, job.pairs % T);
    let bias = match job.epilogue {
        Bf16Epilogue::Bias(b) => Some(b),
        _ => None,
    };
    let tiles = job.rows.div_ceil(T);
    let mut c = [0.0f32; BLOCK_M * NR];
    let mut tail_b = [0u32; T * NR];
    for j in job.panel_range.clone() {
        let panel = &job.panels[j * job.panel_stride..j * job.panel_stride + job.pairs * NR];
        let c0 = j * NR;
        let nr = NR.min(job.out - c0);
        let tail_ptr = if tail > 0 {
            // Rows tail..T stay zero from the initialisation.
            tail_b[..tail * NR].copy_from_slice(&panel[full * T * NR..]);
            Some(tail_b.as_ptr())
        } else {
            None
        };
        let bias_cols = bias.map(|b| &b[c0..c0 + nr]);
        for t in (0..tiles).step_by(2) {
            let two = t + 1 < tiles;
            let k = Kernel {
                // SAFETY (pointer arithmetic): tile t lies in A (the caller).
                a: unsafe { job.a.add(t * job.a_tile) },
                a_tile: job.a_tile,
                b: panel.as_ptr(),
                full,
                tail: tail_ptr,
                c: c.as_mut_ptr(),
            };
            // SAFETY: A holds tiles t (and t + 1 when `two`), B the panel and the tail scratch, C
            // the 32 x 32 scratch.
            unsafe {
                match (two, nr > T) {
                    (true, true) => k.run::<U, 2, 2>(unit),
                    (true, false) => k.run::<U, 2, 1>(unit),
                    (false, true) => k.run::<U, 1, 2>(unit),
                    (false, false) => k.run::<U, 1, 1>(unit),
                }
            }
            let mr = BLOCK_M.min(job.rows - t * T);
            // SAFETY: rows 16 t .. 16 t + mr, columns c0 .. c0 + nr of the destination (the
            // caller); the scratch holds 32 rows of NR.
            unsafe {
                U::finish_rows(
                    &c,
                    job.dst.add(t * T * job.dst_stride + c0),
                    job.dst_stride,
                    mr,
                    nr,
                    job.accumulate,
                    bias_cols,
                )
            };
        }
    }
    if let Bf16Epilogue::BiasGelu(bias) = job.epilogue {
        let cols = job.panel_range.start * NR..(job.panel_range.end * NR).min(job.out);
        // SAFETY: the block's rows and columns (the caller).
        unsafe { gelu_columns(job.dst, job.dst_stride, job.rows, cols, bias) };
    }
}

/// The micro-kernel's operands: MT A tiles (rows) x NT B tiles (columns of one panel).
struct Kernel {
    /// A tile of the first row tile at step 0; the second is `a_tile` u32 further.
    a: *const u32,
    a_tile: usize,
    /// The panel (rows of NR u32).
    b: *const u32,
    /// Steps of 16 pairs read from the panel.
    full: usize,
    /// The last (partial) step's B rows, 16 x NR, zero padded.
    tail: Option<*const u32>,
    /// The 32 x 32 f32 result scratch (row stride NR).
    c: *mut f32,
}

impl Kernel {
    /// C = A x B over all steps, stored to the scratch: tile (i, j) at rows 16 i, columns 16 j.
    ///
    /// # Safety
    /// As described on the fields, for MT row tiles and the steps `full` (+ 1 with a tail) of A.
    #[inline(always)]
    unsafe fn run<U: TileUnit, const MT: usize, const NT: usize>(&self, u: &mut U) {
        const A_STRIDE: usize = T * 4;
        const B_STRIDE: usize = NR * 4;
        const C_STRIDE: usize = NR * 4;
        // SAFETY (whole body): the caller's.
        unsafe {
            u.zero::<0>();
            if NT == 2 {
                u.zero::<1>();
            }
            if MT == 2 {
                u.zero::<2>();
                if NT == 2 {
                    u.zero::<3>();
                }
            }
            let steps = self.full + usize::from(self.tail.is_some());
            for s in 0..steps {
                let b = match self.tail {
                    Some(tail) if s == self.full => tail,
                    _ => self.b.add(s * T * NR),
                };
                let a = self.a.add(s * TILE_U32);
                u.load::<4>(a, A_STRIDE);
                if MT == 2 {
                    u.load::<5>(a.add(self.a_tile), A_STRIDE);
                }
                u.load::<6>(b, B_STRIDE);
                if NT == 2 {
                    u.load::<7>(b.add(T), B_STRIDE);
                }
                u.dp::<0, 4, 6>();
                if NT == 2 {
                    u.dp::<1, 4, 7>();
                }
                if MT == 2 {
                    u.dp::<2, 5, 6>();
                    if NT == 2 {
                        u.dp::<3, 5, 7>();
                    }
                }
            }
            u.store::<0>(self.c, C_STRIDE);
            if NT == 2 {
                u.store::<1>(self.c.add(T), C_STRIDE);
            }
            if MT == 2 {
                u.store::<2>(self.c.add(T * NR), C_STRIDE);
                if NT == 2 {
                    u.store::<3>(self.c.add(T * NR + T), C_STRIDE);
                }
            }
        }
    }
}

thread_local! {
    /// Per-thread buffer for the A tiles of a row block of [`linear`].
    static A_TILES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The packed operands of [`matmul_tn`] (taken out while in use, so a nested call allocates its
    /// own).
    static TN_BUFS: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether the packing may use the AVX-512 BF16 helpers of the native kernel (otherwise it runs the
/// portable code, which rounds the same way except that f32 denormals become bf16 denormals instead
/// of zero: `tdpbf16ps` reads those as zero, so the products agree).
fn simd_packing() -> bool {
    native_available()
}

/// The AMX [`super::linear_bf16_raw`] for natively packed weights (`panels`), shapes checked by the
/// caller, rows and out > 0. Runs on the current rayon pool.
///
/// # Safety
/// The unit `U` must be usable on this CPU; `dst` must be valid for reads and writes of the
/// (rows, out) matrix with row stride `dst_stride`, and nothing else may access those elements
/// during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn linear<U: TileUnit>(
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
    let steps = w.pairs.div_ceil(T);
    let simd = simd_packing();
    let out = DstPtr(dst);
    for_each_block(rows, n_panels, BLOCK_M, MAX_BLOCK_ROWS, |rs, ps| {
        let ((r0, r1), (p0, p1)) = ((rs.start, rs.end), (ps.start, ps.end));
        A_TILES.with(|buf| {
            let mut buf = buf.borrow_mut();
            let need = (r1 - r0).div_ceil(T) * steps * TILE_U32;
            if buf.len() < need {
                buf.resize(need, 0);
            }
            pack_row_tiles(
                &mut buf[..need],
                &src[r0 * src_stride..],
                src_stride,
                r1 - r0,
                w.inp,
                steps,
                simd,
            );
            let job = Block {
                a: buf.as_ptr(),
                a_tile: steps * TILE_U32,
                rows: r1 - r0,
                pairs: w.pairs,
                panels,
                panel_stride: w.pairs * NR,
                out: w.out,
                panel_range: p0..p1,
                // SAFETY (pointer arithmetic): row r0 lies in the destination (the caller).
                dst: unsafe { out.get().add(r0 * dst_stride) },
                dst_stride,
                accumulate,
                epilogue,
            };
            // SAFETY: the unit is usable (the caller) and lives on this thread for the task; the
            // task writes rows r0..r1 and the columns of panels p0..p1, disjoint from every other
            // task, inside `dst` (the caller); the A tiles were packed for `steps` steps.
            unsafe {
                let mut unit = U::begin();
                unit.block(&job);
            }
        });
    });
}

/// Rounds `rows` rows of `inp` values (row stride `src_stride`) to bf16 pairs in the A tile layout
/// with `steps` steps: `buf` holds `rows.div_ceil(16) * steps` tiles; zero beyond the rows and pairs.
fn pack_row_tiles(
    buf: &mut [u32],
    src: &[f32],
    src_stride: usize,
    rows: usize,
    inp: usize,
    steps: usize,
    simd: bool,
) {
    let tiles = rows.div_ceil(T);
    assert!(buf.len() == tiles * steps * TILE_U32 && fits(src.len(), rows, inp, src_stride));
    let mut row = vec![0u32; steps * T];
    for (t, tile) in buf.chunks_exact_mut(steps * TILE_U32).enumerate() {
        for r in 0..T {
            let i = t * T + r;
            if i < rows {
                let s = &src[i * src_stride..i * src_stride + inp];
                let pairs = inp.div_ceil(2);
                if simd {
                    native::round_row(s, &mut row[..pairs]);
                } else {
                    native::round_row_scalar(s, &mut row[..pairs]);
                }
                // `row` beyond `pairs` stays zero.
            } else {
                row.fill(0);
            }
            for (s, seg) in row.chunks_exact(T).enumerate() {
                tile[s * TILE_U32 + r * T..s * TILE_U32 + (r + 1) * T].copy_from_slice(seg);
            }
        }
    }
}

/// The AMX [`super::matmul_tn_bf16`] (shapes checked by the caller, k, m, n > 0). Packs `b` in the
/// weight panel layout along the reduction and gathers the columns of `a` into A tiles, once per
/// call over the pool, then multiplies row blocks by column chunks in passes of [`KC_STEPS`] steps.
///
/// # Safety
/// The unit `U` must be usable on this CPU.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul_tn<U: TileUnit>(
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
        fits(a.len(), k, m, a_stride)
            && fits(b.len(), k, n, b_stride)
            && fits(dst.len(), m, n, dst_stride)
    );
    let pairs = k.div_ceil(2);
    let steps = pairs.div_ceil(T);
    let n_panels = n.div_ceil(NR);
    let simd = simd_packing();
    let (mut packed_a, mut packed_b) = TN_BUFS.with(|v| std::mem::take(&mut *v.borrow_mut()));
    let need_b = n_panels * pairs * NR;
    if packed_b.len() < need_b {
        packed_b.resize(need_b, 0);
    }
    if simd {
        native::pack_columns(&mut packed_b, b, b_stride, k, n, Threads::Pool);
    } else {
        packed_b[..need_b].fill(0);
        pack_panels_with(&mut packed_b, n, k, |j, i| b[i * b_stride + j]);
    }
    let need_a = m.div_ceil(T) * steps * TILE_U32;
    if packed_a.len() < need_a {
        packed_a.resize(need_a, 0);
    }
    gather_column_tiles(&mut packed_a[..need_a], a, a_stride, k, m, steps, simd);
    let out = DstPtr(dst.as_mut_ptr());
    let (ap, bp): (&[u32], &[u32]) = (&packed_a, &packed_b);
    for_each_block(m, n_panels, BLOCK_M, MAX_BLOCK_ROWS, |rs, ps| {
        let ((r0, r1), (j0, j1)) = ((rs.start, rs.end), (ps.start, ps.end));
        // SAFETY: the unit is usable (the caller) and lives on this thread for the task.
        let mut unit = unsafe { U::begin() };
        for (chunk, s0) in (0..steps).step_by(KC_STEPS).enumerate() {
            let s1 = (s0 + KC_STEPS).min(steps);
            let (p0, p1) = (s0 * T, (s1 * T).min(pairs));
            let job = Block {
                // r0 is a multiple of 32: tile r0 / 16 at step s0.
                a: ap[(r0 / T * steps + s0) * TILE_U32..].as_ptr(),
                a_tile: steps * TILE_U32,
                rows: r1 - r0,
                pairs: p1 - p0,
                panels: &bp[p0 * NR..],
                panel_stride: pairs * NR,
                out: n,
                panel_range: j0..j1,
                // SAFETY (pointer arithmetic): row r0 lies in `dst` (checked above).
                dst: unsafe { out.get().add(r0 * dst_stride) },
                dst_stride,
                accumulate: accumulate || chunk > 0,
                epilogue: Bf16Epilogue::None,
            };
            // SAFETY: the A tiles of rows r0..r1 hold steps s0..s1 (zero beyond `pairs`), the
            // panels pairs p0..p1; the task writes rows r0..r1 and the columns of panels j0..j1,
            // disjoint from every other task, inside `dst` (checked above).
            unsafe { unit.block(&job) };
        }
    });
    TN_BUFS.with(|v| *v.borrow_mut() = (packed_a, packed_b));
}

/// Gathers the columns of `a` ((k, m) with row stride `a_stride`) into A tiles with `steps` steps:
/// row r of tile t is column 16 t + r, pair p is `bf16(a[2p][col]) | bf16(a[2p + 1][col]) << 16`;
/// zero beyond m and k. Over the current rayon pool, one 16 x 16 block per item.
fn gather_column_tiles(
    out: &mut [u32],
    a: &[f32],
    a_stride: usize,
    k: usize,
    m: usize,
    steps: usize,
    simd: bool,
) {
    assert!(out.len() == m.div_ceil(T) * steps * TILE_U32 && fits(a.len(), k, m, a_stride));
    let pairs = k.div_ceil(2);
    out.par_chunks_mut(TILE_U32)
        .with_min_len(16)
        .enumerate()
        .for_each(|(i, block)| {
            let (t, s) = (i / steps, i % steps);
            let (c0, p0) = (t * T, s * T);
            let lanes = (m - c0).min(T);
            let np = (pairs - p0).min(T);
            if simd {
                // SAFETY: AVX-512 F and BF16 (`simd_packing`); columns c0 .. c0 + lanes of rows
                // 2 p0 .. min(2 (p0 + np), k) lie in `a` (checked above).
                unsafe { gather_block_avx512(block, a, a_stride, k, c0, lanes, p0, np) };
            } else {
                gather_block_scalar(block, a, a_stride, k, c0, lanes, p0, np);
            }
        });
}

/// One block of [`gather_column_tiles`], portably: `lanes` columns from c0, `np` pairs from p0.
#[allow(clippy::too_many_arguments)]
fn gather_block_scalar(
    block: &mut [u32],
    a: &[f32],
    a_stride: usize,
    k: usize,
    c0: usize,
    lanes: usize,
    p0: usize,
    np: usize,
) {
    block.fill(0);
    for i in 0..np {
        let p = p0 + i;
        let lo = &a[2 * p * a_stride + c0..2 * p * a_stride + c0 + lanes];
        let hi = (2 * p + 1 < k).then(|| &a[(2 * p + 1) * a_stride + c0..][..lanes]);
        for r in 0..lanes {
            let h = hi.map_or(0, |h| u32::from(to_bf16_bits(h[r])));
            block[r * T + i] = u32::from(to_bf16_bits(lo[r])) | (h << 16);
        }
    }
}

/// One block of [`gather_column_tiles`] with AVX-512: the pairs pair-major with the native kernel's
/// `pack_pairs`, then a 16 x 16 transpose.
///
/// # Safety
/// AVX-512 F and BF16; the columns c0 .. c0 + lanes of rows 2 p0 .. min(2 (p0 + np), k) lie in `a`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn gather_block_avx512(
    block: &mut [u32],
    a: &[f32],
    a_stride: usize,
    k: usize,
    c0: usize,
    lanes: usize,
    p0: usize,
    np: usize,
) {
    assert!(block.len() == TILE_U32 && lanes <= T && np <= T);
    let mut pm = [0u32; TILE_U32];
    let col = a.as_ptr().wrapping_add(c0);
    for i in 0..np {
        let p = p0 + i;
        let lo = col.wrapping_add(2 * p * a_stride);
        let hi = if 2 * p + 1 < k {
            lo.wrapping_add(a_stride)
        } else {
            std::ptr::null()
        };
        // SAFETY: see the function's contract; 16 values stored per pair into `pm`.
        unsafe { native::pack_pairs(lo, hi, lanes, T, pm.as_mut_ptr().add(i * T)) };
    }
    // SAFETY: AVX-512 F; both are 256 u32.
    unsafe { transpose16(&pm, block.as_mut_ptr()) };
}

/// `dst[r * 16 + c] = src[c * 16 + r]` for a 16 x 16 block of u32.
///
/// # Safety
/// AVX-512 F; `dst` valid for 256 writes.
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(src: &[u32; TILE_U32], dst: *mut u32) {
    use std::arch::x86_64::*;
    // SAFETY: 16 loads and stores of 16 u32 inside the blocks.
    unsafe {
        let mut r = [_mm512_setzero_si512(); 16];
        for (i, v) in r.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(src.as_ptr().add(i * T).cast());
        }
        // 32-bit interleave of row pairs, then 64-bit interleave of pairs of those: within each
        // 128-bit lane, 4 x 4 blocks are transposed.
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        for q in 0..4 {
            let b = 4 * q;
            r[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
            r[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
            r[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
            r[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
        }
        // Now r[4 q + j], lane L (128 bits) holds column 4 L + j of rows 4 q .. 4 q + 4. Gather the
        // 128-bit lanes: first across q = 0, 1 and 2, 3, then across those pairs.
        for j in 0..4 {
            t[j] = _mm512_shuffle_i32x4::<0x88>(r[j], r[4 + j]);
            t[4 + j] = _mm512_shuffle_i32x4::<0xdd>(r[j], r[4 + j]);
            t[8 + j] = _mm512_shuffle_i32x4::<0x88>(r[8 + j], r[12 + j]);
            t[12 + j] = _mm512_shuffle_i32x4::<0xdd>(r[8 + j], r[12 + j]);
        }
        for j in 0..4 {
            r[j] = _mm512_shuffle_i32x4::<0x88>(t[j], t[8 + j]);
            r[4 + j] = _mm512_shuffle_i32x4::<0x88>(t[4 + j], t[12 + j]);
            r[8 + j] = _mm512_shuffle_i32x4::<0xdd>(t[j], t[8 + j]);
            r[12 + j] = _mm512_shuffle_i32x4::<0xdd>(t[4 + j], t[12 + j]);
        }
        for (i, v) in r.iter().enumerate() {
            _mm512_storeu_si512(dst.add(i * T).cast(), *v);
        }
    }
}

/// Whether this process may use AMX for bf16 tiles: CPUID leaf 7 reports AMX-BF16 (EDX bit 22) and
/// AMX-TILE (bit 24), the OS enables XTILECFG and XTILEDATA in XCR0 (bits 17, 18), and (Linux) the
/// kernel granted the XTILEDATA state to the process. Determined once.
pub(super) fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(detect)
}

fn detect() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        if __cpuid(0).eax < 7 {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        if edx & (1 << 22) == 0 || edx & (1 << 24) == 0 {
            return false;
        }
        // XGETBV needs OSXSAVE (CPUID.1:ECX bit 27).
        if __cpuid(1).ecx & (1 << 27) == 0 {
            return false;
        }
        let (lo, _hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so XGETBV with ECX = 0 (XCR0) is valid.
        unsafe {
            std::arch::asm!(
                "xgetbv",
                in("ecx") 0u32,
                out("eax") lo,
                out("edx") _hi,
                options(nomem, nostack, preserves_flags)
            );
        }
        let tiles = (1 << 17) | (1 << 18);
        if lo & tiles != tiles {
            return false;
        }
        request_tile_permission()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`) and
/// checks that it was granted (`ARCH_GET_XCOMP_PERM`).
#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const SYS_ARCH_PRCTL: usize = 158;
    const ARCH_GET_XCOMP_PERM: usize = 0x1022;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    /// `syscall(nr, a1, a2)`: the result, or a negated errno.
    ///
    /// # Safety
    /// The system call must be sound with these arguments.
    unsafe fn syscall2(nr: usize, a1: usize, a2: usize) -> isize {
        let ret: isize;
        // SAFETY: the caller's; `syscall` clobbers rcx and r11.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        ret
    }
    // SAFETY: arch_prctl with an integer argument changes only the process's permissions.
    if unsafe { syscall2(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } != 0 {
        return false;
    }
    let mut perm: u64 = 0;
    // SAFETY: the kernel writes one u64 to `perm`.
    let ret = unsafe {
        syscall2(
            SYS_ARCH_PRCTL,
            ARCH_GET_XCOMP_PERM,
            std::ptr::addr_of_mut!(perm) as usize,
        )
    };
    ret == 0 && perm & (1 << XFEATURE_XTILEDATA) != 0
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_tn, check_with, random, rounded_dot};
    use super::*;

    /// [`linear`] on the unit `U`, as a [`super::super::tests::LinearRun`].
    ///
    /// # Safety
    /// `U` must be usable on this CPU.
    #[allow(clippy::too_many_arguments)]
    unsafe fn linear_on<U: TileUnit>(
        dst: &mut [f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &PackedBf16Linear,
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        assert!(fits(dst.len(), rows, w.out, dst_stride));
        let Packed::Native(panels) = &w.data else {
            panic!("AMX products need natively packed weights")
        };
        if rows > 0 && w.out > 0 {
            // SAFETY: the caller's; `dst` holds the (rows, out) matrix.
            unsafe {
                linear::<U>(
                    dst.as_mut_ptr(),
                    dst_stride,
                    src,
                    src_stride,
                    rows,
                    w,
                    panels,
                    accumulate,
                    epilogue,
                )
            };
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emulated_linear(
        dst: &mut [f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        w: &PackedBf16Linear,
        accumulate: bool,
        epilogue: Bf16Epilogue<'_>,
    ) {
        // SAFETY: the emulated unit runs anywhere.
        unsafe {
            linear_on::<Emulated>(
                dst, dst_stride, src, src_stride, rows, w, accumulate, epilogue,
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emulated_tn(
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
        // SAFETY: the emulated unit runs anywhere.
        unsafe {
            matmul_tn::<Emulated>(
                dst, dst_stride, a, a_stride, b, b_stride, k, m, n, accumulate,
            )
        }
    }

    /// Whether the hardware unit can run here (AMX granted, and the AVX-512 that `Amx::block` is
    /// compiled for).
    fn hardware_unit() -> bool {
        supported()
            && hardware_available()
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }

    const ROWS: [usize; 6] = [1, 15, 16, 17, 33, 100];
    const OUTS: [usize; 6] = [1, 16, 31, 32, 33, 100];
    const INS: [usize; 7] = [1, 2, 31, 32, 33, 64, 130];

    #[test]
    fn emulated_amx_linear_matches_the_rounded_reference_for_edge_shapes() {
        for rows in ROWS {
            for out in OUTS {
                for inp in INS {
                    for (accumulate, mode, threads) in [
                        (false, 0, 1),
                        (true, 0, 3),
                        (false, 1, 2),
                        (true, 1, 1),
                        (false, 2, 3),
                        (true, 2, 2),
                    ] {
                        check_with(
                            rows,
                            out,
                            inp,
                            accumulate,
                            mode,
                            threads,
                            true,
                            &emulated_linear,
                        );
                    }
                }
            }
        }
        // Rows beyond one task's block (several row blocks and column chunks).
        for threads in [1, 4] {
            check_with(450, 70, 40, true, 1, threads, true, &emulated_linear);
        }
    }

    #[test]
    fn emulated_amx_linear_multiplies_by_transposed_packings() {
        // `pack_transposed` (the input gradient `dy W`): weights (cols, rows) of the matrix.
        for &(rows, k, c) in &[(1, 1, 1), (5, 7, 33), (17, 64, 32), (40, 257, 70)] {
            let src = random(rows * k, 20);
            let m = random(k * c, 21);
            let w = if hardware_available() {
                PackedBf16Linear::pack_transposed_with(true, &m, k, c)
            } else {
                PackedBf16Linear::from_fn_with(true, c, k, |j, i| m[i * c + j])
            };
            let mut dst = vec![0.0; rows * c];
            emulated_linear(&mut dst, c, &src, k, rows, &w, false, Bf16Epilogue::None);
            for r in 0..rows {
                for j in 0..c {
                    let (want, tol) =
                        rounded_dot((0..k).map(|i| (src[r * k + i], m[i * c + j])), k);
                    let got = f64::from(dst[r * c + j]);
                    assert!(
                        (got - want).abs() <= tol,
                        "{rows}x{k}x{c} ({r}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn emulated_amx_tn_product_matches_the_rounded_reference() {
        for k in [1, 2, 31, 33, 300, 2 * (2 * KC_PAIRS_AMX) + 37] {
            for &(m, n) in &[(1, 1), (17, 31), (33, 33), (100, 100), (16, 70)] {
                for (threads, accumulate) in [(1, false), (3, true), (2, false)] {
                    check_tn(k, m, n, threads, accumulate, &emulated_tn);
                }
            }
        }
    }

    /// The tile unit's semantics on crafted tiles: DAZ, FTZ, and the SDM's separate even and odd
    /// partial sums.
    #[test]
    fn emulated_tdpbf16ps_follows_the_sdm() {
        let bf = |x: f32| u32::from(to_bf16_bits(x));
        let pair = |lo: f32, hi: f32| bf(lo) | (bf(hi) << 16);
        let mut a = [0u32; TILE_U32];
        let mut b = [0u32; TILE_U32];
        let mut c = [0u32; TILE_U32];
        // C[0][0]: pair 0 gives 2^24 (even) and 1 (odd), pair 1 gives -2^24 (even). Separate
        // partial sums: 0 + 1 = 1; adding the products into C one by one would lose the 1.
        a[0] = pair(4096.0, 1.0);
        b[0] = pair(4096.0, 1.0);
        a[1] = pair(-4096.0, 0.0);
        b[T] = pair(4096.0, 0.0);
        // C[1][0]: a bf16 denormal input counts as zero (2^-133 x 4096 = 2^-121 would be normal).
        a[T] = pair(f32::from_bits(0x0001_0000), 0.0);
        // C[2][0]: a product below the normal range is flushed (2^-70 x 2^-70 = 2^-140).
        a[2 * T] = pair(2f32.powi(-70), 0.0);
        // C[2][1]: b[1] = (2^-70, 0).
        b[1] = pair(2f32.powi(-70), 0.0);
        // C[3][2]: the old value is added: 5 + 2 x 3.
        c[3 * T + 2] = 5.0f32.to_bits();
        a[3 * T] = pair(2.0, 0.0);
        b[2] = pair(3.0, 0.0);
        tdpbf16ps(&mut c, &a, &b);
        let v = |r: usize, n: usize| f32::from_bits(c[r * T + n]);
        assert_eq!(v(0, 0), 1.0);
        assert_eq!(v(1, 0), 0.0);
        assert_eq!(v(2, 1), 0.0);
        assert_eq!(v(3, 2), 11.0);
        // Row 2 column 0: 2^-70 x 4096 = 2^-58, a normal f32.
        assert_eq!(v(2, 0), 2f32.powi(-58));
    }

    #[test]
    fn emulated_unit_refuses_unconfigured_tiles() {
        let mut u = Emulated {
            tiles: [[0; TILE_U32]; 8],
            configured: false,
        };
        // SAFETY: the emulated unit runs anywhere.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            u.dp::<0, 4, 6>()
        }));
        assert!(r.is_err());
    }

    #[test]
    fn portable_finish_matches_the_native_one() {
        if !hardware_available() {
            eprintln!("no AVX-512: only the portable finish exists here");
            return;
        }
        let acc = random(BLOCK_M * NR, 70);
        let bias = random(NR, 71);
        let stride = NR + 3;
        let d0 = random(BLOCK_M * stride, 72);
        for (rows, nr) in [(1, 1), (5, 16), (17, 17), (32, 31), (32, 32)] {
            for accumulate in [false, true] {
                for with_bias in [false, true] {
                    let b = with_bias.then(|| &bias[..nr]);
                    let (mut x, mut y) = (d0.clone(), d0.clone());
                    // SAFETY: AVX-512 F (checked); the rows fit the buffers.
                    unsafe {
                        native::finish_rows(&acc, x.as_mut_ptr(), stride, rows, nr, accumulate, b);
                        finish_rows_portable(&acc, y.as_mut_ptr(), stride, rows, nr, accumulate, b);
                    }
                    assert_eq!(
                        x, y,
                        "rows {rows} nr {nr} acc {accumulate} bias {with_bias}"
                    );
                }
            }
        }
    }

    #[test]
    fn transpose16_transposes() {
        if !hardware_available() {
            eprintln!("no AVX-512 BF16: the AVX-512 transpose is not used here");
            return;
        }
        let src: [u32; TILE_U32] = std::array::from_fn(|i| i as u32 * 7 + 1);
        let mut dst = [0u32; TILE_U32];
        // SAFETY: AVX-512 F (checked); dst holds 256 values.
        unsafe { transpose16(&src, dst.as_mut_ptr()) };
        for r in 0..T {
            for c in 0..T {
                assert_eq!(dst[r * T + c], src[c * T + r], "({r}, {c})");
            }
        }
    }

    #[test]
    fn simd_and_portable_packings_agree() {
        for &(k, m) in &[(1, 1), (7, 20), (33, 16), (300, 45)] {
            let a_stride = m + 3;
            let a = random(k * a_stride, 40);
            let steps = k.div_ceil(2).div_ceil(T);
            let len = m.div_ceil(T) * steps * TILE_U32;
            let mut scalar = vec![u32::MAX; len];
            gather_column_tiles(&mut scalar, &a, a_stride, k, m, steps, false);
            // The layout: row r of tile t is column 16 t + r, pair i of step s is pair 16 s + i.
            for col in 0..m.div_ceil(T) * T {
                for p in 0..steps * T {
                    let (t, r, s, i) = (col / T, col % T, p / T, p % T);
                    let got = scalar[(t * steps + s) * TILE_U32 + r * T + i];
                    let at = |row: usize| {
                        if row < k && col < m {
                            u32::from(to_bf16_bits(a[row * a_stride + col]))
                        } else {
                            0
                        }
                    };
                    assert_eq!(got, at(2 * p) | (at(2 * p + 1) << 16), "col {col} pair {p}");
                }
            }
            // Rows of a source as the A operand of `linear`: the same layout from rows.
            let rows = m;
            let src: Vec<f32> = (0..rows * (k + 1))
                .map(|i| a[(i % (k + 1)).min(k - 1) * a_stride + i / (k + 1)])
                .collect();
            let mut tiles = vec![u32::MAX; len];
            pack_row_tiles(&mut tiles, &src, k + 1, rows, k, steps, false);
            // Row r of `src` (its first k values) is column r of `a`.
            assert_eq!(
                tiles, scalar,
                "k {k} m {m}: row tiles differ from gathered columns"
            );
            if hardware_available() {
                let mut simd = vec![u32::MAX; len];
                gather_column_tiles(&mut simd, &a, a_stride, k, m, steps, true);
                assert_eq!(simd, scalar, "k {k} m {m}: gathered tiles");
                let mut simd = vec![u32::MAX; len];
                pack_row_tiles(&mut simd, &src, k + 1, rows, k, steps, true);
                assert_eq!(simd, scalar, "k {k} m {m}: row tiles");
            }
        }
    }

    #[test]
    fn amx_availability_respects_the_overrides() {
        set_force_no_amx(true);
        assert!(!amx_available(), "AMX used although forced off");
        set_force_no_amx(false);
        if std::env::var("PFN_AMX").as_deref() == Ok("0") {
            assert!(!amx_available(), "AMX used although PFN_AMX=0");
        }
        if !native_available() {
            assert!(!amx_available(), "AMX without the native bf16 kernel");
        }
        eprintln!(
            "AMX supported: {}, used: {}",
            amx_supported(),
            amx_available()
        );
    }

    /// Largest |x - y| / (scale + 1e-30) over the elements, and how many are bit-identical.
    fn compare(x: &[f32], y: &[f32], scale: &[f64]) -> (f64, usize) {
        let mut worst = 0.0f64;
        let mut same = 0;
        for ((a, b), s) in x.iter().zip(y).zip(scale) {
            if a.to_bits() == b.to_bits() {
                same += 1;
            }
            worst = worst.max(f64::from(a - b).abs() / (s + 1e-30));
        }
        (worst, same)
    }

    /// The hardware unit against the emulation (and the f64 reference through `check_with`).
    /// Exercised only on CPUs with AMX that the OS lets this process use; elsewhere it prints a note
    /// and returns. Both results lie within the f32 rounding bound of the sums (`len` roundings of
    /// the magnitude of the summands) of the exact value, so they may differ by twice that bound;
    /// the number of bit-identical results and the hardware's result on the crafted tile of
    /// `emulated_tdpbf16ps_follows_the_sdm` (1 for the SDM's separate even and odd sums, 0 for
    /// products added one by one) are printed.
    #[test]
    fn amx_matches_the_emulation() {
        if !hardware_unit() {
            eprintln!(
                "amx_matches_the_emulation: no usable AMX here, the hardware unit is not run"
            );
            return;
        }
        // SAFETY (both closures): the hardware unit is usable (checked above).
        let hw_linear = |d: &mut [f32],
                         ds: usize,
                         s: &[f32],
                         ss: usize,
                         rows: usize,
                         w: &PackedBf16Linear,
                         acc: bool,
                         e: Bf16Epilogue<'_>| unsafe {
            linear_on::<Amx>(d, ds, s, ss, rows, w, acc, e)
        };
        let hw_tn =
            |d: &mut [f32],
             ds: usize,
             a: &[f32],
             sa: usize,
             b: &[f32],
             sb: usize,
             k: usize,
             m: usize,
             n: usize,
             acc: bool| unsafe { matmul_tn::<Amx>(d, ds, a, sa, b, sb, k, m, n, acc) };
        // The f64 reference for the hardware unit on the edge shapes.
        for rows in ROWS {
            for out in OUTS {
                for inp in INS {
                    for (accumulate, mode, threads) in [(false, 0, 1), (true, 1, 4), (true, 2, 2)] {
                        check_with(rows, out, inp, accumulate, mode, threads, true, &hw_linear);
                    }
                }
            }
        }
        for k in [1, 2, 31, 33, 300, 2 * (2 * KC_PAIRS_AMX) + 37] {
            for &(m, n) in &[(1, 1), (17, 31), (33, 33), (100, 100)] {
                for (threads, accumulate) in [(1, false), (4, true)] {
                    check_tn(k, m, n, threads, accumulate, &hw_tn);
                }
            }
        }
        // Hardware against emulation, element by element.
        let (mut worst, mut same, mut total) = (0.0f64, 0usize, 0usize);
        for &(rows, out, inp) in &[(100, 100, 130), (33, 64, 512), (64, 33, 1000)] {
            let src = random(rows * inp, 50);
            let w = random(out * inp, 51);
            let bias = random(out, 52);
            let dst0 = random(rows * out, 53);
            let packed = PackedBf16Linear::from_fn_with(true, out, inp, |j, k| w[j * inp + k]);
            let mut scale = vec![0.0f64; rows * out];
            for r in 0..rows {
                for j in 0..out {
                    let (_, tol) =
                        rounded_dot((0..inp).map(|k| (src[r * inp + k], w[j * inp + k])), inp);
                    scale[r * out + j] = tol
                        + inp as f64
                            * 2f64.powi(-24)
                            * f64::from(dst0[r * out + j].abs() + bias[j].abs());
                }
            }
            for accumulate in [false, true] {
                let (mut hw, mut emu) = (dst0.clone(), dst0.clone());
                let epi = Bf16Epilogue::Bias(&bias);
                hw_linear(&mut hw, out, &src, inp, rows, &packed, accumulate, epi);
                emulated_linear(&mut emu, out, &src, inp, rows, &packed, accumulate, epi);
                let (wst, sm) = compare(&hw, &emu, &scale);
                worst = worst.max(wst);
                same += sm;
                total += hw.len();
            }
        }
        for &(k, m, n) in &[(300, 40, 70), (2 * (2 * KC_PAIRS_AMX) + 37, 64, 64)] {
            let a = random(k * m, 60);
            let b = random(k * n, 61);
            let mut scale = vec![0.0f64; m * n];
            for r in 0..m {
                for j in 0..n {
                    scale[r * n + j] =
                        rounded_dot((0..k).map(|i| (a[i * m + r], b[i * n + j])), k).1;
                }
            }
            let (mut hw, mut emu) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
            hw_tn(&mut hw, n, &a, m, &b, n, k, m, n, false);
            emulated_tn(&mut emu, n, &a, m, &b, n, k, m, n, false);
            let (wst, sm) = compare(&hw, &emu, &scale);
            worst = worst.max(wst);
            same += sm;
            total += hw.len();
        }
        // The crafted tiles of `emulated_tdpbf16ps_follows_the_sdm` on the hardware.
        let crafted = {
            let bf = |x: f32| u32::from(to_bf16_bits(x));
            let pair = |lo: f32, hi: f32| bf(lo) | (bf(hi) << 16);
            let mut a = [0u32; TILE_U32];
            let mut b = [0u32; TILE_U32];
            a[0] = pair(4096.0, 1.0);
            b[0] = pair(4096.0, 1.0);
            a[1] = pair(-4096.0, 0.0);
            b[T] = pair(4096.0, 0.0);
            a[T] = pair(f32::from_bits(0x0001_0000), 0.0);
            let mut hw = [0.0f32; TILE_U32];
            let mut emu = [0u32; TILE_U32];
            // SAFETY: the hardware unit is usable; the tiles are 16 rows of 64 bytes.
            unsafe {
                let mut u = Amx::begin();
                u.zero::<0>();
                u.load::<4>(a.as_ptr(), 64);
                u.load::<6>(b.as_ptr(), 64);
                u.dp::<0, 4, 6>();
                u.store::<0>(hw.as_mut_ptr(), 64);
            }
            tdpbf16ps(&mut emu, &a, &b);
            (hw[0], f32::from_bits(emu[0]), hw[T], f32::from_bits(emu[T]))
        };
        eprintln!(
            "amx_matches_the_emulation: {same} of {total} results bit-identical, largest \
             difference {worst:.3} of the f32 rounding bound; crafted tile: hardware {} / {} \
             (cancellation, denormal), emulation {} / {}",
            crafted.0, crafted.2, crafted.1, crafted.3
        );
        assert!(
            worst <= 2.0,
            "hardware and emulation differ by {worst} rounding bounds"
        );
        assert_eq!(
            crafted.2, crafted.3,
            "denormal bf16 input not treated as zero"
        );
    }
}
