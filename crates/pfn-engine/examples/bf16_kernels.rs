//! Times the bf16 matrix products of training at PFN shapes (8000 token rows = 32 datasets x 250
//! positions) on the f32 `gemm`, the AVX-512 BF16 kernel (AMX forced off) and the AMX tile kernel
//! (where the CPU has it), and reports GFLOP/s and how far the AMX results are from the AVX-512 ones.
//!
//! - `x W^T`: `linear_bf16` with rows 8000, in 128/256/512, out 128/256/512/1000;
//! - `dy^T x`: `matmul_tn_bf16` (the weight gradient) with k = 8000 over the same (out, in).
//!
//! Run: `cargo run --release -p pfn-engine --example bf16_kernels -- [threads] [repetitions]`
//! (threads 0 or absent: one per CPU; repetitions: best of, default 5).

use std::time::Instant;

use pfn_engine::bf16::{
    amx_available, amx_supported, emulation_note, native_available, set_force_no_amx,
};
use pfn_engine::{
    linear_bf16, matmul, matmul_tn_bf16, Bf16Epilogue, Engine, MatMut, MatRef, PackedBf16Linear,
};

/// Uniform values in [-1, 1) from a xorshift generator.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The best time of `reps` runs of `f` (after one warm-up run), in seconds.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// max |x - y| / max |y|.
fn rel_diff(x: &[f32], y: &[f32]) -> f64 {
    let diff = x
        .iter()
        .zip(y)
        .map(|(a, b)| f64::from(a - b).abs())
        .fold(0.0, f64::max);
    let scale = y.iter().map(|b| f64::from(b.abs())).fold(0.0, f64::max);
    diff / scale.max(f64::MIN_POSITIVE)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let reps: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let engine = Engine::new(threads).expect("thread pool");
    let amx = amx_available();
    println!(
        "threads {}; AVX-512 BF16 kernel: {}; AMX supported: {}, used: {}",
        engine.threads(),
        native_available(),
        amx_supported(),
        amx
    );
    if let Some(note) = emulation_note() {
        println!("note: {note}");
    }
    let gflops = |flops: f64, secs: f64| flops / secs / 1e9;
    let rows = 8000;
    let mut worst = 0.0f64;
    println!(
        "\n{:<34} {:>9} {:>11} {:>9} {:>12}",
        "product (GFLOP/s)", "f32 gemm", "bf16 avx512", "bf16 amx", "amx vs avx"
    );
    for inp in [128, 256, 512] {
        for out in [128, 256, 512, 1000] {
            let flops = 2.0 * (rows * inp * out) as f64;
            // Forward: dst (rows, out) = x (rows, in) W^T.
            let x = random(rows * inp, 1);
            let w = random(out * inp, 2);
            let packed = PackedBf16Linear::pack(&w, out, inp);
            let mut dst = vec![0.0f32; rows * out];
            let t32 = best_of(reps, || {
                engine.install(|| {
                    matmul(
                        MatMut::row_major(&mut dst, rows, out),
                        MatRef::row_major(&x, rows, inp),
                        MatRef::row_major(&w, out, inp).t(),
                        false,
                        1.0,
                    )
                })
            });
            let run_linear = |force_no_amx: bool, dst: &mut Vec<f32>| {
                set_force_no_amx(force_no_amx);
                let t = best_of(reps, || {
                    engine.install(|| {
                        linear_bf16(dst, out, &x, inp, rows, &packed, false, Bf16Epilogue::None)
                    })
                });
                set_force_no_amx(false);
                t
            };
            let mut d_avx = vec![0.0f32; rows * out];
            let t_avx = run_linear(true, &mut d_avx);
            let amx_cols = if amx {
                let mut d_amx = vec![0.0f32; rows * out];
                let t_amx = run_linear(false, &mut d_amx);
                let rd = rel_diff(&d_amx, &d_avx);
                worst = worst.max(rd);
                format!("{:>9.0} {:>12.2e}", gflops(flops, t_amx), rd)
            } else {
                format!("{:>9} {:>12}", "-", "-")
            };
            println!(
                "{:<34} {:>9.0} {:>11.0} {}",
                format!("x W^T   {rows}x{inp} -> {out}"),
                gflops(flops, t32),
                gflops(flops, t_avx),
                amx_cols
            );

            // Weight gradient: dW (out, in) = dy^T x over k = rows tokens.
            let dy = random(rows * out, 3);
            let mut dw = vec![0.0f32; out * inp];
            let t32 = best_of(reps, || {
                engine.install(|| {
                    matmul(
                        MatMut::row_major(&mut dw, out, inp),
                        MatRef::row_major(&dy, rows, out).t(),
                        MatRef::row_major(&x, rows, inp),
                        false,
                        1.0,
                    )
                })
            });
            let run_tn = |force_no_amx: bool, dw: &mut Vec<f32>| {
                set_force_no_amx(force_no_amx);
                let t = best_of(reps, || {
                    engine.install(|| {
                        matmul_tn_bf16(dw, inp, &dy, out, &x, inp, rows, out, inp, false)
                    })
                });
                set_force_no_amx(false);
                t
            };
            let mut w_avx = vec![0.0f32; out * inp];
            let t_avx = run_tn(true, &mut w_avx);
            let amx_cols = if amx {
                let mut w_amx = vec![0.0f32; out * inp];
                let t_amx = run_tn(false, &mut w_amx);
                let rd = rel_diff(&w_amx, &w_avx);
                worst = worst.max(rd);
                format!("{:>9.0} {:>12.2e}", gflops(flops, t_amx), rd)
            } else {
                format!("{:>9} {:>12}", "-", "-")
            };
            println!(
                "{:<34} {:>9.0} {:>11.0} {}",
                format!("dy^T x  k {rows}: {out}x{inp}"),
                gflops(flops, t32),
                gflops(flops, t_avx),
                amx_cols
            );
        }
    }
    if amx {
        println!("\nlargest max|AMX - AVX-512| / max|AVX-512|: {worst:.2e}");
    } else {
        println!("\nno AMX here: only the f32 and AVX-512 (or emulated bf16) products were timed");
    }
}
