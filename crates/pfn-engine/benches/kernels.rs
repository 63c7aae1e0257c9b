//! Criterion benchmarks of the engine kernels at the shapes of the PFN model.
//!
//! Default model: emsize 256, 4 heads (head dim 64), nhid 512, 1000 buckets; a training step is a
//! batch of 64 datasets x 100 points (50 context), i.e. 6400 token rows, 3200 of them queries.
//! Inference is one dataset with 50 context points and 1000 queries.
//!
//! Matrix products report their throughput in FLOP (2 m n k per product), so criterion's
//! `elem/s` column reads directly as FLOP/s; the `peak` group is a large square product that gives
//! the machine's attainable rate for comparison.
//!
//! Run: `cargo bench -p pfn-engine --bench kernels` (all groups, about two minutes), or a filter such
//! as `cargo bench -p pfn-engine --bench kernels -- matmul_train`. The thread count is
//! `PFN_BENCH_THREADS` (default 2).

use std::time::Duration;

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput,
};
use pfn_engine::gelu::{bias_gelu_forward, gelu_backward};
use pfn_engine::layer_norm::{layer_norm_backward, residual_layer_norm_forward};
use pfn_engine::softmax::{softmax_backward_rows, softmax_rows};
use pfn_engine::{linear_bf16, matmul_tn_bf16, Bf16Epilogue, PackedBf16Linear};
use pfn_engine::{
    matmul, pfn_attention_backward, pfn_attention_forward, Engine, LayerNormParams, MatMut, MatRef,
    PfnAttention,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn engine() -> Engine {
    let threads = std::env::var("PFN_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    Engine::new(threads).expect("thread pool")
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn quick<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
}

/// How the operands of a product are stored.
#[derive(Clone, Copy)]
enum Orientation {
    /// `x W^T`: a row-major (m, k), b the transpose of a row-major (n, k) weight (linear forward).
    XWt,
    /// `dy W`: both row-major (linear input gradient).
    DyW,
    /// `dy^T x`: a the transpose of a row-major (k, m), b row-major (k, n) (weight gradient).
    DytX,
}

/// One product `dst (m x n) = a (m x k) b (k x n)` in a given orientation.
struct Shape {
    label: &'static str,
    m: usize,
    n: usize,
    k: usize,
    orientation: Orientation,
}

const fn shape(
    label: &'static str,
    m: usize,
    n: usize,
    k: usize,
    orientation: Orientation,
) -> Shape {
    Shape {
        label,
        m,
        n,
        k,
        orientation,
    }
}

fn bench_shapes(c: &mut Criterion, engine: &Engine, group: &str, shapes: &[Shape]) {
    let mut g = c.benchmark_group(group);
    quick(&mut g);
    for s in shapes {
        let (m, n, k) = (s.m, s.n, s.k);
        let a = random(m * k, 1);
        let b = random(k * n, 2);
        let mut dst = vec![0.0f32; m * n];
        let av = match s.orientation {
            Orientation::DytX => MatRef::row_major(&a, k, m).t(),
            _ => MatRef::row_major(&a, m, k),
        };
        let bv = match s.orientation {
            Orientation::XWt => MatRef::row_major(&b, n, k).t(),
            _ => MatRef::row_major(&b, k, n),
        };
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        let id = format!("{} {m}x{n}x{k}", s.label);
        g.bench_function(id, |bench| {
            bench.iter(|| {
                engine.install(|| {
                    matmul(
                        MatMut::row_major(&mut dst, m, n),
                        black_box(av),
                        black_box(bv),
                        false,
                        1.0,
                    )
                })
            })
        });
    }
    g.finish();
}

fn matmul_peak(c: &mut Criterion) {
    use Orientation::*;
    let engine = engine();
    bench_shapes(
        c,
        &engine,
        "matmul_peak",
        &[
            shape("square", 2048, 2048, 2048, DyW),
            shape("square x W^T", 2048, 2048, 2048, XWt),
        ],
    );
}

/// The matrix products of a default training step.
fn train_shapes() -> Vec<Shape> {
    use Orientation::*;
    vec![
        // forward: x W^T over the token rows
        shape("fwd in_proj", 6400, 768, 256, XWt),
        shape("fwd kv_proj (ctx rows)", 3200, 512, 256, XWt),
        shape("fwd out_proj", 6400, 256, 256, XWt),
        shape("fwd ff1", 6400, 512, 256, XWt),
        shape("fwd ff2", 6400, 256, 512, XWt),
        shape("fwd dec_hidden", 3200, 512, 256, XWt),
        shape("fwd dec_out", 3200, 1000, 512, XWt),
        // backward, input gradients: dy W
        shape("dx in_proj", 6400, 256, 768, DyW),
        shape("dx out_proj", 6400, 256, 256, DyW),
        shape("dx ff2", 6400, 512, 256, DyW),
        shape("dx ff1", 6400, 256, 512, DyW),
        shape("dx dec_out", 3200, 512, 1000, DyW),
        // backward, weight gradients: dy^T x with the long inner dimension
        shape("dW in_proj", 768, 256, 6400, DytX),
        shape("dW out_proj", 256, 256, 6400, DytX),
        shape("dW ff2", 256, 512, 6400, DytX),
        shape("dW ff1", 512, 256, 6400, DytX),
        shape("dW dec_hidden", 512, 256, 3200, DytX),
        shape("dW dec_out", 1000, 512, 3200, DytX),
    ]
}

fn matmul_train(c: &mut Criterion) {
    let engine = engine();
    bench_shapes(c, &engine, "matmul_train", &train_shapes());
}

/// The training products of `matmul_train` with bf16 operands and f32 accumulation, as the bf16
/// training pass runs them: `x W^T` with W packed (the packing timed separately, once per step),
/// `dy W` with W packed transposed, and `dy^T x` through `matmul_tn_bf16` (which packs both
/// operands itself, included in the time).
fn linear_bf16_train(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group(if pfn_engine::bf16::native_available() {
        "linear_bf16_train"
    } else {
        "linear_bf16_train (emulated)"
    });
    quick(&mut g);
    for s in train_shapes() {
        let (m, n, k) = (s.m, s.n, s.k);
        let a = random(m * k, 1);
        let b = random(k * n, 2);
        let mut dst = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        let id = format!("{} {m}x{n}x{k}", s.label);
        match s.orientation {
            Orientation::XWt | Orientation::DyW => {
                let w = match s.orientation {
                    Orientation::XWt => PackedBf16Linear::pack(&b, n, k),
                    _ => PackedBf16Linear::pack_transposed(&b, k, n),
                };
                g.bench_function(id, |bench| {
                    bench.iter(|| {
                        engine.install(|| {
                            linear_bf16(
                                &mut dst,
                                n,
                                black_box(&a),
                                k,
                                m,
                                &w,
                                false,
                                Bf16Epilogue::None,
                            )
                        })
                    })
                });
            }
            Orientation::DytX => {
                g.bench_function(id.clone(), |bench| {
                    bench.iter(|| {
                        engine.install(|| {
                            matmul_tn_bf16(&mut dst, n, black_box(&a), m, &b, n, k, m, n, false)
                        })
                    })
                });
                // The alternative: transpose dy into a copy, pack x^T as a weight, `linear_bf16`.
                let mut at = vec![0.0f32; m * k];
                g.bench_function(format!("{id} (transpose + linear)"), |bench| {
                    bench.iter(|| {
                        for (i, row) in a.chunks_exact(m).enumerate() {
                            for (j, v) in row.iter().enumerate() {
                                at[j * k + i] = *v;
                            }
                        }
                        let w = PackedBf16Linear::pack_transposed(black_box(&b), k, n);
                        engine.install(|| {
                            linear_bf16(&mut dst, n, &at, k, m, &w, false, Bf16Epilogue::None)
                        })
                    })
                });
            }
        }
    }
    // Packing a weight, as the bf16 forward and backward do once per optimizer step.
    for (label, out, inp) in [("dec_out", 1000, 512), ("in_proj", 768, 256)] {
        let w = random(out * inp, 3);
        g.throughput(Throughput::Elements((out * inp) as u64));
        g.bench_function(format!("pack {label} {out}x{inp}"), |bench| {
            bench.iter(|| PackedBf16Linear::pack(black_box(&w), out, inp))
        });
        g.bench_function(format!("pack transposed {label} {out}x{inp}"), |bench| {
            bench.iter(|| PackedBf16Linear::pack_transposed(black_box(&w), out, inp))
        });
    }
    g.finish();
}

fn matmul_infer(c: &mut Criterion) {
    use Orientation::*;
    let engine = engine();
    bench_shapes(
        c,
        &engine,
        "matmul_infer",
        &[
            shape("q_proj / out_proj", 1000, 256, 256, XWt),
            shape("kv_proj (ctx)", 50, 512, 256, XWt),
            shape("ff1 / dec_hidden", 1000, 512, 256, XWt),
            shape("ff2", 1000, 256, 512, XWt),
            shape("dec_out", 1000, 1000, 512, XWt),
            shape("one query dec_out", 1, 1000, 512, XWt),
            shape("one query ff1", 1, 512, 256, XWt),
        ],
    );
}

/// The inference shapes of `matmul_infer` as bf16 linear layers (`x W^T`, operands rounded to bf16,
/// f32 accumulation; the native AVX-512 BF16 kernel where the CPU has it).
fn linear_bf16_infer(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group(if pfn_engine::bf16::native_available() {
        "linear_bf16_infer"
    } else {
        "linear_bf16_infer (emulated)"
    });
    quick(&mut g);
    for (label, m, n, k) in [
        ("qkv_proj", 1000, 768, 256),
        ("q_proj / out_proj", 1000, 256, 256),
        ("kv_proj (ctx)", 50, 512, 256),
        ("ff1 / dec_hidden", 1000, 512, 256),
        ("ff2", 1000, 256, 512),
        ("dec_out", 1000, 1000, 512),
        ("one query dec_out", 1, 1000, 512),
        ("one query ff1", 1, 512, 256),
    ] {
        let x = random(m * k, 1);
        let w = PackedBf16Linear::pack(&random(n * k, 2), n, k);
        let mut dst = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        g.bench_function(format!("{label} {m}x{n}x{k}"), |bench| {
            bench.iter(|| {
                engine.install(|| {
                    linear_bf16(
                        &mut dst,
                        n,
                        black_box(&x),
                        k,
                        m,
                        &w,
                        false,
                        Bf16Epilogue::None,
                    )
                })
            })
        });
    }
    g.finish();
}

fn attention(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group("attention");
    quick(&mut g);
    let cases = [
        ("train b64 h4 50+50 d64", 64, 50, 50, true),
        ("train last layer (queries only)", 64, 50, 50, false),
        ("infer 50+1000 (queries only)", 1, 50, 1000, false),
    ];
    for (label, batch, n_ctx, n_qry, context_outputs) in cases {
        let geo = PfnAttention {
            batch,
            n_ctx,
            n_qry,
            heads: 4,
            head_dim: 64,
            query_self: false,
            context_outputs,
        };
        let e = geo.emsize();
        let qkv = random(geo.tokens() * 3 * e, 3);
        let d_out = random(geo.tokens() * e, 4);
        let mut probs = vec![0.0; geo.probs_len()];
        let mut out = vec![0.0; geo.tokens() * e];
        let mut scratch = vec![0.0; geo.probs_len()];
        let mut d_qkv = vec![0.0; qkv.len()];
        let rows = if context_outputs {
            geo.seq_len()
        } else {
            n_qry
        };
        // two products of (rows x width x head_dim) per head and dataset
        let flops = 4 * (batch * geo.heads * rows * geo.prob_width() * geo.head_dim) as u64;
        g.throughput(Throughput::Elements(flops));
        g.bench_function(format!("forward {label}"), |b| {
            b.iter(|| engine.install(|| pfn_attention_forward(&geo, &qkv, &mut probs, &mut out)))
        });
        if context_outputs || batch > 1 {
            g.throughput(Throughput::Elements(2 * flops));
            g.bench_function(format!("backward {label}"), |b| {
                b.iter(|| {
                    engine.install(|| {
                        pfn_attention_backward(&geo, &qkv, &probs, &d_out, &mut scratch, &mut d_qkv)
                    })
                })
            });
        }
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group("elementwise");
    quick(&mut g);
    let (rows, cols) = (6400, 256);
    let x = random(rows * cols, 5);
    let branch = random(rows * cols, 6);
    let bias = random(cols, 7);
    let gamma = random(cols, 8);
    let beta = random(cols, 9);
    let mut out = vec![0.0; rows * cols];
    let mut xhat = vec![0.0; rows * cols];
    let mut rstd = vec![0.0; rows];
    let params = LayerNormParams {
        gamma: &gamma,
        beta: &beta,
        eps: 1e-5,
    };
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.bench_function("residual layer_norm forward 6400x256", |b| {
        b.iter(|| {
            engine.install(|| {
                residual_layer_norm_forward(
                    &x,
                    &branch,
                    Some(&bias),
                    params,
                    &mut out,
                    &mut xhat,
                    &mut rstd,
                )
            })
        })
    });
    let mut grad = random(rows * cols, 10);
    let (mut dgamma, mut dbeta, mut dbias) = (vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]);
    g.bench_function("layer_norm backward 6400x256", |b| {
        b.iter(|| {
            engine.install(|| {
                layer_norm_backward(
                    &mut grad,
                    &xhat,
                    &rstd,
                    &gamma,
                    &mut dgamma,
                    &mut dbeta,
                    Some(&mut dbias),
                )
            })
        })
    });

    let nh = 512;
    let mut pre = random(rows * nh, 11);
    let fresh = pre.clone();
    let ff_bias = random(nh, 12);
    let mut act = vec![0.0; rows * nh];
    g.throughput(Throughput::Elements((rows * nh) as u64));
    g.bench_function("bias_gelu forward 6400x512", |b| {
        b.iter(|| {
            pre.copy_from_slice(&fresh);
            engine.install(|| bias_gelu_forward(&mut pre, &ff_bias, &mut act))
        })
    });
    let mut gg = random(rows * nh, 13);
    let mut db = vec![0.0; nh];
    g.bench_function("gelu backward + bias grad 6400x512", |b| {
        b.iter(|| engine.install(|| gelu_backward(&mut gg, &pre, Some(&mut db))))
    });

    for (r, w) in [(3200, 1000), (25600, 50)] {
        let mut s = random(r * w, 14);
        let mut sg = random(r * w, 15);
        g.throughput(Throughput::Elements((r * w) as u64));
        g.bench_function(format!("softmax rows {r}x{w}"), |b| {
            b.iter(|| engine.install(|| softmax_rows(&mut s, w)))
        });
        g.bench_function(format!("softmax backward {r}x{w}"), |b| {
            b.iter(|| engine.install(|| softmax_backward_rows(&s, &mut sg, w)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    matmul_peak,
    matmul_train,
    matmul_infer,
    linear_bf16_infer,
    linear_bf16_train,
    attention,
    elementwise
);
criterion_main!(benches);
