//! Softmax building blocks: logit validation, a stable f64 log-softmax for the per-row API, and the
//! vectorisable f32 exponential used by the batched training kernels.

use crate::error::{DistributionError, Result};

/// Checks that a row has `expected` logits, none NaN or `+inf`, and at least one finite
/// (`-inf` is allowed: that bucket/class has probability 0).
pub(crate) fn validate_logits(logits: &[f32], expected: usize) -> Result<()> {
    if logits.len() != expected {
        return Err(DistributionError::LogitLength {
            expected,
            actual: logits.len(),
        });
    }
    let mut any_finite = false;
    for (index, &value) in logits.iter().enumerate() {
        if value.is_nan() || value == f32::INFINITY {
            return Err(DistributionError::InvalidLogit { index, value });
        }
        any_finite |= value.is_finite();
    }
    if !any_finite {
        return Err(DistributionError::InvalidLogit {
            index: 0,
            value: logits.first().copied().unwrap_or(f32::NAN),
        });
    }
    Ok(())
}

/// `log(sum_j exp(z_j))` in f64, stable (shifted by the maximum). `z` must be validated.
pub(crate) fn log_sum_exp_f64(z: &[f32]) -> f64 {
    let max = f64::from(max_f32(z));
    let sum: f64 = z.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    max + sum.ln()
}

/// Stable log-softmax in f64. `z` must be validated.
pub(crate) fn log_softmax_f64(z: &[f32]) -> Vec<f64> {
    let lse = log_sum_exp_f64(z);
    z.iter().map(|&v| f64::from(v) - lse).collect()
}

/// Maximum of a row, ignoring NaN (`-inf` for an empty or all-NaN row). Written with eight
/// independent lanes so that it vectorises.
#[inline(always)]
pub(crate) fn max_f32(z: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = z.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &v in lanes.iter().chain(chunks.remainder()) {
        max = if v > max { v } else { max };
    }
    max
}

/// Sum of f32 values accumulated in eight f64 lanes (a fixed order, so the result does not depend
/// on the instruction set).
#[inline(always)]
fn sum_in_f64(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v);
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for &v in chunks.remainder() {
        sum += f64::from(v);
    }
    sum
}

/// Writes `out = scale * softmax(z)` and returns `log(sum_j exp(z_j))` in f64.
///
/// The shift (row maximum), the sum of the exponentials and the logarithm are exact or f64; the
/// differences `z_j - shift` are rounded to f32 and the exponentials use [`exp_nonpositive_f32`],
/// so each probability has a relative error below about `2e-7 + 6e-8 |log p_j|` (an absolute
/// error below 1e-7). The loops are
/// written to vectorise; on x86-64 CPUs with AVX2 and FMA a copy compiled for those features is
/// used. Both copies perform the same operations in the same order (Rust does not contract
/// `a * b + c` into FMA), so results are bit-identical whichever runs. A NaN or `+inf` logit makes
/// the result and the row NaN. Requires `z.len() == out.len()`.
pub(crate) fn scaled_softmax_into(z: &[f32], out: &mut [f32], scale: f32) -> f64 {
    debug_assert_eq!(z.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above; the function has no
            // other safety requirement.
            return unsafe { scaled_softmax_into_avx2(z, out, scale) };
        }
    }
    scaled_softmax_into_portable(z, out, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scaled_softmax_into_avx2(z: &[f32], out: &mut [f32], scale: f32) -> f64 {
    scaled_softmax_into_portable(z, out, scale)
}

#[inline(always)]
fn scaled_softmax_into_portable(z: &[f32], out: &mut [f32], scale: f32) -> f64 {
    let shift = max_f32(z);
    for (o, &v) in out.iter_mut().zip(z) {
        *o = exp_nonpositive_f32(v - shift);
    }
    let sum = sum_in_f64(out);
    let factor = (f64::from(scale) / sum) as f32;
    for o in out.iter_mut() {
        *o *= factor;
    }
    f64::from(shift) + sum.ln()
}

/// `exp(x)` for `x <= 0` in f32, branch-free so that loops over it vectorise.
///
/// Range reduction `x = n ln2 + r` with `|r| <= ln2 / 2` (Cody–Waite split of ln 2), a degree-7
/// Taylor polynomial for `exp(r)` (truncation error below 1e-8 relative) and `2^n` assembled from
/// the exponent bits. Maximum relative error about 2 ulp; arguments below -87 give 0 (the true
/// value, below 1.7e-38, is at the edge of the normal f32 range). NaN propagates.
#[inline(always)]
pub(crate) fn exp_nonpositive_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND_MAGIC: f32 = 12_582_912.0;
    // Rounds to 355/512 = 0.693359375 exactly, so n * LN2_HI is exact for |n| < 2^14.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LOWEST: f32 = -87.0;
    // NaN fails the comparison and flows through the arithmetic below.
    let xc = if x < LOWEST { LOWEST } else { x };
    let shifted = xc * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n_int + 127) << 23) as u32);
    if x < LOWEST {
        0.0
    } else {
        p * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        let n = 200_000;
        for i in 0..=n {
            let x = -87.0 * i as f32 / n as f32;
            let got = f64::from(exp_nonpositive_f32(x));
            let exact = f64::from(x).exp();
            worst = worst.max(((got - exact) / exact).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive_f32(0.0), 1.0);
        assert_eq!(exp_nonpositive_f32(-100.0), 0.0);
        assert_eq!(exp_nonpositive_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive_f32(f32::NAN).is_nan());
    }

    #[test]
    fn scaled_softmax_matches_f64() {
        for n in [1usize, 7, 8, 37, 1000] {
            let z: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
            let m = max_f32(&z);
            assert_eq!(m, z.iter().cloned().fold(f32::NEG_INFINITY, f32::max));
            let mut out = vec![0.0; z.len()];
            let lse = scaled_softmax_into(&z, &mut out, 0.5);
            let exact = log_sum_exp_f64(&z);
            assert!((lse - exact).abs() < 3e-7, "{lse} vs {exact}");
            let portable_lse = scaled_softmax_into_portable(&z, &mut vec![0.0; n], 0.5);
            assert_eq!(lse.to_bits(), portable_lse.to_bits());
            for (o, lp) in out.iter().zip(log_softmax_f64(&z)) {
                // exp error plus the f32 rounding of z - shift (relative 6e-8 of |log p|).
                let want = 0.5 * lp.exp();
                let tol = want * (3e-7 + 6e-8 * lp.abs()) + 1e-30;
                assert!((f64::from(*o) - want).abs() < tol, "{o} vs {want}");
            }
        }
        let mut out = [0.0f32; 3];
        assert!(scaled_softmax_into(&[0.0, f32::NAN, 1.0], &mut out, 1.0).is_nan());
    }
}
