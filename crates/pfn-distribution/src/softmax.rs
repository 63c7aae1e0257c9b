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
#[inline]
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

/// Writes `out[j] = exp(z[j] - shift)` (f32, see [`exp_nonpositive_f32`]) and returns the sum of
/// the written values accumulated in f64. Requires `z.len() == out.len()` and `z[j] <= shift`.
#[inline]
pub(crate) fn exp_shifted_into(z: &[f32], shift: f32, out: &mut [f32]) -> f64 {
    debug_assert_eq!(z.len(), out.len());
    let mut lanes = [0.0f64; 8];
    let mut zc = z.chunks_exact(8);
    let mut oc = out.chunks_exact_mut(8);
    for (zs, os) in (&mut zc).zip(&mut oc) {
        for i in 0..8 {
            let e = exp_nonpositive_f32(zs[i] - shift);
            os[i] = e;
            lanes[i] += f64::from(e);
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for (&v, o) in zc.remainder().iter().zip(oc.into_remainder()) {
        let e = exp_nonpositive_f32(v - shift);
        *o = e;
        sum += f64::from(e);
    }
    sum
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
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.max(-87.0);
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
    let value = p * scale;
    let value = if x < -87.0 { 0.0 } else { value };
    // `max` above maps NaN to -87; restore NaN propagation.
    if x.is_nan() {
        x
    } else {
        value
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
    fn exp_shifted_sum_matches_f64() {
        let z: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let m = max_f32(&z);
        assert_eq!(m, z.iter().cloned().fold(f32::NEG_INFINITY, f32::max));
        let mut out = vec![0.0; z.len()];
        let sum = exp_shifted_into(&z, m, &mut out);
        let exact: f64 = z.iter().map(|&v| (f64::from(v) - f64::from(m)).exp()).sum();
        assert!(((sum - exact) / exact).abs() < 3e-7);
    }
}
