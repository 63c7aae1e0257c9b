//! Times the matrix products of one PFN training step (emsize 256, nhid 512, 1000 buckets, 6400
//! tokens) in the orientations the model uses, and reports GFLOP/s.
//!
//! Run: `cargo run --release -p pfn-engine --example gemm_shapes -- 2`

use std::time::Instant;

use pfn_engine::{matmul, Engine, MatMut, MatRef};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let engine = Engine::new(threads).unwrap();
    // (label, m, n, k, lhs transposed, rhs transposed)
    let shapes = [
        ("x W^T  6400x512x256 (ff1)", 6400, 512, 256, false, true),
        ("x W^T  6400x256x512 (ff2)", 6400, 256, 512, false, true),
        ("x W^T  3200x1000x512 (dec)", 3200, 1000, 512, false, true),
        ("dy W   6400x256x512 (ff1 dx)", 6400, 256, 512, false, false),
        (
            "dy W   3200x512x1000 (dec dx)",
            3200,
            512,
            1000,
            false,
            false,
        ),
        ("dy^T x 512x256x6400 (ff1 dW)", 512, 256, 6400, true, false),
        (
            "dy^T x 1000x512x3200 (dec dW)",
            1000,
            512,
            3200,
            true,
            false,
        ),
    ];
    for (label, m, n, k, ta, tb) in shapes {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let av = if ta {
            MatRef::row_major(&a, k, m).t()
        } else {
            MatRef::row_major(&a, m, k)
        };
        let bv = if tb {
            MatRef::row_major(&b, n, k).t()
        } else {
            MatRef::row_major(&b, k, n)
        };
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let s = Instant::now();
            engine.install(|| matmul(MatMut::row_major(&mut c, m, n), av, bv, false, 1.0));
            best = best.min(s.elapsed().as_secs_f64());
        }
        println!(
            "{label:<34} {:7.2} ms {:6.1} GFLOP/s",
            best * 1e3,
            2.0 * (m * n * k) as f64 / best / 1e9
        );
    }
}
