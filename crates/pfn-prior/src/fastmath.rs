//! Vectorisable `exp` and `tanh` over slices, for building covariances and MLP activations.
//!
//! `f64::exp` and `f64::tanh` call into libm one value at a time, which made the kernel evaluation the
//! largest cost of a 100-point GP draw. The functions here use only IEEE multiplies, adds and bit
//! operations (no fused multiply-add, no table lookups), so LLVM vectorises them, and the result is
//! bit-identical whichever instruction set runs it: the slice functions are compiled three times
//! (baseline, AVX2, AVX-512F) and the widest one the CPU supports is picked at run time.
//!
//! Accuracy: `exp_nonpositive` is within a few ulp of `f64::exp` on `[-700, 0]` (tested); inputs
//! below −700 return `exp(−700) ≈ 9.9e-305` instead of a smaller or zero value, which is immaterial for
//! covariances. `tanh` is computed as `sign(x) (1 − e^{−2|x|}) / (1 + e^{−2|x|})`; the subtraction
//! cancels for small `|x|`, so its error is bounded in absolute terms, `|err| ≤ 2e-16 + 1e-14 |tanh x|`
//! (tested), i.e. a few ulp for `|x| ≳ 0.1` and ~1e-16 absolute near 0 — far below the f32 precision
//! of the values the MLP prior finally stores.

/// `1.5 * 2^52`: adding it rounds a double of magnitude < 2^51 to an integer held in the low mantissa bits.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so that `k * LN2_HI` is exact for |k| < 2^11.
const LN2_HI: f64 = 0.693_147_180_369_123_816_49;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
/// Below this the result is clamped (keeps the exponent-field construction in range).
const EXP_MIN_ARG: f64 = -700.0;

/// `exp(x)` for `x <= 0` (values above 0 are not supported and give wrong results).
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    let x = if x < EXP_MIN_ARG { EXP_MIN_ARG } else { x };
    let t = x * LOG2_E + ROUND_MAGIC;
    let k = t - ROUND_MAGIC; // round(x / ln 2), an integer in [-1010, 0]
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| <= ln2 / 2
    // Taylor series of e^r to degree 13 (truncation error < 1e-17 relative for |r| <= 0.347).
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^k from the integer sitting in the low bits of t.
    let k_int = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let scale = f64::from_bits(k_int.wrapping_add(1023) << 52);
    p * scale
}

/// `tanh(x)` built on [`exp_nonpositive`].
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    let e = exp_nonpositive(-2.0 * x.abs());
    let m = (1.0 - e) / (1.0 + e);
    if x < 0.0 {
        -m
    } else {
        m
    }
}

/// Defines a slice function with baseline, AVX2 and AVX-512F bodies and run-time dispatch.
macro_rules! dispatched {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

dispatched! {
    /// `v <- scale * exp(-0.5 v)` (RBF profile of squared scaled distances).
    fn rbf_profile(values: &mut [f64], scale: f64) {
        for v in values.iter_mut() {
            *v = scale * exp_nonpositive(-0.5 * *v);
        }
    }
}

dispatched! {
    /// `v <- scale * (1 + √5 r + 5/3 r²) exp(−√5 r)` with `r = √v` (Matérn-5/2 profile).
    fn matern52_profile(values: &mut [f64], scale: f64) {
        let sqrt5 = 5f64.sqrt();
        for v in values.iter_mut() {
            let r2 = *v;
            let s5r = sqrt5 * r2.sqrt();
            *v = scale * (1.0 + s5r + 5.0 / 3.0 * r2) * exp_nonpositive(-s5r);
        }
    }
}

dispatched! {
    /// `v <- tanh(v)`.
    fn tanh_in_place(values: &mut [f64]) {
        for v in values.iter_mut() {
            *v = tanh(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut worst: f64 = 0.0;
        for i in 0..=700_000 {
            let x = -(i as f64) * 1e-3 - (i % 7) as f64 * 1.3e-7;
            let (a, b) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-15, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1e-300), 1.0);
        assert!(exp_nonpositive(-1e5) < 1e-300);
        assert!(exp_nonpositive(f64::NEG_INFINITY) < 1e-300);
    }

    #[test]
    fn tanh_matches_libm() {
        for i in -200_000..=200_000 {
            let x = i as f64 * 1e-4 + 3.3e-9;
            let (a, b) = (tanh(x), x.tanh());
            assert!(
                (a - b).abs() <= 2e-16 + 1e-14 * b.abs(),
                "tanh({x}) = {a}, libm {b}"
            );
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }

    #[test]
    fn slice_functions_agree_with_scalar_formulas() {
        let mut v: Vec<f64> = (0..1001).map(|i| i as f64 * 0.037).collect();
        let orig = v.clone();
        rbf_profile(&mut v, 2.0);
        for (a, &r2) in v.iter().zip(&orig) {
            assert!((a - 2.0 * (-0.5 * r2).exp()).abs() < 1e-15 * 2.0);
        }
        let mut v = orig.clone();
        matern52_profile(&mut v, 1.5);
        for (a, &r2) in v.iter().zip(&orig) {
            let r = r2.sqrt() * 5f64.sqrt();
            let want = 1.5 * (1.0 + r + 5.0 / 3.0 * r2) * (-r).exp();
            assert!((a - want).abs() < 1e-14 * want.max(1e-300), "{a} vs {want}");
        }
        let mut v: Vec<f64> = orig.iter().map(|x| x - 18.0).collect();
        let before = v.clone();
        tanh_in_place(&mut v);
        for (a, b) in v.iter().zip(&before) {
            assert!((a - b.tanh()).abs() < 1e-14);
        }
    }
}
