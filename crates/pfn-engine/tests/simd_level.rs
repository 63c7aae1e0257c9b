//! `PFN_SIMD_LEVEL` caps the engine's kernels (CI runs the engine, model and golden tests with
//! `avx2` and `base` to exercise the code paths of CPUs without AVX-512).

#[test]
fn the_environment_caps_the_kernel_level() {
    let level = pfn_engine::simd_level();
    eprintln!(
        "element-wise kernels at level {level}; native bf16: {}",
        pfn_engine::bf16::native_available()
    );
    match std::env::var("PFN_SIMD_LEVEL").as_deref() {
        Ok("base") => {
            assert_eq!(level, "base");
            assert!(!pfn_engine::bf16::native_available());
        }
        Ok("avx2") => {
            assert_ne!(level, "avx512");
            assert!(!pfn_engine::bf16::native_available());
        }
        _ => assert!(["avx512", "avx2", "base"].contains(&level)),
    }
}
