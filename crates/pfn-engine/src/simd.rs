//! Runtime selection of the widest available x86 vector instruction set for the element-wise kernels,
//! and lane-parallel reductions that the compiler can vectorise.
//!
//! Kernels are written once as plain Rust over slices; [`multiversion!`] compiles the body three times
//! (AVX-512, AVX2 + FMA, baseline) and picks one at run time. The bodies never use `mul_add`, and the
//! reductions below fix their summation order, so every variant returns bit-identical results.

/// Instruction-set levels that kernels are compiled for.
/// Ordered from the baseline up, so a cap is a minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Whatever the compilation target guarantees.
    Base,
    /// AVX2 + FMA (x86-64-v3).
    V3,
    /// AVX-512 F/BW/DQ/VL (x86-64-v4).
    V4,
}

/// The best level this CPU supports, capped by the environment variable `PFN_SIMD_LEVEL`
/// (`avx2`: at most AVX2 + FMA; `base`: the baseline), which lets tests and CI run the code paths
/// of CPUs without AVX-512 (or without AVX2) on any machine. Read once.
#[inline]
pub(crate) fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("PFN_SIMD_LEVEL").as_deref() {
            Ok("base") => Level::Base,
            Ok("avx2") => Level::V3,
            _ => Level::V4,
        };
        detected_level().min(cap)
    })
}

/// The best level this CPU supports (the standard library caches the CPUID query).
fn detected_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Level::V4;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Level::V3;
        }
    }
    Level::Base
}

/// The instruction-set level the element-wise kernels run at (for notes and tests): `"avx512"`,
/// `"avx2"` or `"base"`.
pub fn level_name() -> &'static str {
    match level() {
        Level::V4 => "avx512",
        Level::V3 => "avx2",
        Level::Base => "base",
    }
}

/// Defines a function whose body is compiled for several instruction-set levels and dispatched at run
/// time. Everything the body calls must be `#[inline(always)]` to benefit.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                match $crate::simd::level() {
                    // SAFETY: the CPU supports the enabled features (checked by `level`).
                    $crate::simd::Level::V4 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above.
                    $crate::simd::Level::V3 => return unsafe { v3($($arg),*) },
                    $crate::simd::Level::Base => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Number of independent accumulators in the reductions (one AVX-512 register of f32).
const LANES: usize = 16;

/// Sums lane-wise accumulators in a fixed tree order.
#[inline(always)]
fn reduce_lanes(acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    let mut acc = acc;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Sum of a slice, in a fixed order that vectorises.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    let mut s = reduce_lanes(acc);
    for &v in tail {
        s += v;
    }
    s
}

/// Dot product of two equally long slices, in a fixed order that vectorises.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = reduce_lanes(acc);
    for (x, y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s
}

/// Sum of squared deviations from `center`, in a fixed order that vectorises.
#[inline(always)]
pub(crate) fn sum_sq_dev(x: &[f32], center: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - center;
            acc[i] += d * d;
        }
    }
    let mut s = reduce_lanes(acc);
    for &v in tail {
        let d = v - center;
        s += d * d;
    }
    s
}

/// Maximum of a non-empty slice (NaN entries are ignored unless all are NaN).
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    let mut m = f32::NEG_INFINITY;
    for a in acc {
        m = m.max(a);
    }
    for &v in tail {
        m = m.max(v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_naive_sums() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let s: f64 = x.iter().map(|&v| v as f64).sum();
        let d: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        let c = 0.25f32;
        let q: f64 = x.iter().map(|&v| (v as f64 - 0.25).powi(2)).sum();
        assert!((sum(&x) as f64 - s).abs() < 1e-5);
        assert!((dot(&x, &y) as f64 - d).abs() < 1e-5);
        assert!((sum_sq_dev(&x, c) as f64 - q).abs() < 1e-5);
        let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&x), m);
        assert_eq!(sum(&[]), 0.0);
    }
}
