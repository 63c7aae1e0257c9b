//! Times the PFN attention kernel for the training shape of the benchmark (64 datasets, 50 context
//! and 50 query points, 4 heads of 64) and the inference shape (1 dataset, 50 context, 1000 queries).
//!
//! Run: `cargo run --release -p pfn-engine --example attention_shapes -- 2`

use std::time::Instant;

use pfn_engine::{pfn_attention_backward, pfn_attention_forward, Engine, PfnAttention};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let engine = Engine::new(threads).unwrap();
    for (batch, n_ctx, n_qry) in [(64, 50, 50), (1, 50, 1000)] {
        let geo = PfnAttention {
            batch,
            n_ctx,
            n_qry,
            heads: 4,
            head_dim: 64,
            query_self: true,
            context_outputs: true,
        };
        let e = geo.emsize();
        let qkv: Vec<f32> = (0..geo.tokens() * 3 * e)
            .map(|i| ((i % 97) as f32 - 48.0) / 200.0)
            .collect();
        let mut probs = vec![0.0; geo.probs_len()];
        let mut out = vec![0.0; geo.tokens() * e];
        let mut scratch = vec![0.0; geo.probs_len()];
        let mut d_qkv = vec![0.0; qkv.len()];
        let flops =
            4.0 * (geo.batch * geo.heads * geo.seq_len() * geo.prob_width() * geo.head_dim) as f64;
        let (mut f_best, mut b_best) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..10 {
            let s = Instant::now();
            engine.install(|| pfn_attention_forward(&geo, &qkv, &mut probs, &mut out));
            f_best = f_best.min(s.elapsed().as_secs_f64());
            let s = Instant::now();
            engine.install(|| {
                pfn_attention_backward(&geo, &qkv, &probs, &out, &mut scratch, &mut d_qkv)
            });
            b_best = b_best.min(s.elapsed().as_secs_f64());
        }
        println!(
            "B={batch} n={n_ctx} m={n_qry}: forward {:.2} ms ({:.1} GFLOP/s), backward {:.2} ms ({:.1} GFLOP/s)",
            f_best * 1e3,
            flops / f_best / 1e9,
            b_best * 1e3,
            2.0 * flops / b_best / 1e9
        );
    }
}
