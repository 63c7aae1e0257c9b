//! `pfn bench`: times training steps (forward + bar-distribution NLL + backward + AdamW) and
//! inference (full forward and cached context) on random data, with the same flags, defaults and JSON
//! keys as `shared/bench/torch_reference.py`, so the two can be compared line by line. The reference's
//! attention takes keys from the context only, so query self-attention is off unless
//! `--query-self-attention` is given.

use std::time::Instant;

use anyhow::{bail, Result};
use pfn_distribution::{equal_width_borders, BarDistribution};
use pfn_engine::Engine;
use pfn_model::{AdamW, AdamWConfig, Batch, ContextCache, PfnConfig, PfnModel, Workspace};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Arguments of `pfn bench` (defaults: the reference's configuration).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input features.
    #[arg(long, default_value_t = 1)]
    pub features: usize,
    /// Embedding width.
    #[arg(long, default_value_t = 256)]
    pub emsize: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    pub nhead: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 512)]
    pub nhid: usize,
    /// Transformer layers.
    #[arg(long, default_value_t = 4)]
    pub nlayers: usize,
    /// Riemann buckets.
    #[arg(long, default_value_t = 1000)]
    pub buckets: usize,
    /// Datasets per training step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Points per training dataset.
    #[arg(long, default_value_t = 100)]
    pub seq_len: usize,
    /// Context points per training dataset.
    #[arg(long, default_value_t = 50)]
    pub context: usize,
    /// Context points for the inference measurement.
    #[arg(long, default_value_t = 50)]
    pub infer_context: usize,
    /// Query points for the inference measurement.
    #[arg(long, default_value_t = 1000)]
    pub infer_queries: usize,
    /// Compute threads (0 = all cores).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Steps per timed run (5 runs after 3 warm-up steps); 0 measures inference only.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Let each query attend to itself (the paper's code); the reference script does not.
    #[arg(long)]
    pub query_self_attention: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark and prints one JSON line.
pub fn run(a: &Args) -> Result<()> {
    if a.context >= a.seq_len {
        bail!(
            "--context ({}) must be smaller than --seq-len ({})",
            a.context,
            a.seq_len
        );
    }
    if a.steps == 0 && a.infer_queries == 0 {
        bail!("nothing to measure: --steps 0 and --infer-queries 0");
    }
    let engine = Engine::new(if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    })?;
    let config = PfnConfig {
        query_self_attention: a.query_self_attention,
        ..PfnConfig::new(a.features, a.emsize, a.nhead, a.nhid, a.nlayers, a.buckets)
    };
    let mut model = PfnModel::new(config.clone(), 0)?;
    let mut opt = AdamW::new(
        AdamWConfig {
            lr: 1e-4,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        model.num_params(),
    )?;
    let dist = BarDistribution::full_support(equal_width_borders(a.buckets, -4.0, 4.0)?)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (b, t, n) = (a.batch, a.seq_len, a.context);
    let m = t - n;
    let mut x = vec![0.0f32; b * t * a.features];
    let mut y = vec![0.0f32; b * t];
    let mut targets = vec![0.0f32; b * m];
    let mut d_logits = vec![0.0f32; b * m * a.buckets];
    let mut ws = Workspace::training();
    let (mut t_fwd, mut t_loss, mut t_bwd, mut t_opt) = (0.0, 0.0, 0.0, 0.0);
    let mut step = |timed: bool, rng: &mut rand_chacha::ChaCha8Rng| -> Result<f64> {
        for v in x.iter_mut() {
            *v = rng.random_range(0.0..1.0);
        }
        for v in y.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
        for bi in 0..b {
            targets[bi * m..(bi + 1) * m].copy_from_slice(&y[bi * t + n..(bi + 1) * t]);
        }
        let batch = Batch {
            x: &x,
            y: &y,
            batch: b,
            seq_len: t,
            single_eval_pos: n,
        };
        let s0 = Instant::now();
        let logits = model.forward(&engine, &mut ws, &batch)?;
        let s1 = Instant::now();
        let loss = engine
            .install(|| dist.nll_and_grad(logits, &targets, &mut d_logits, 1.0 / (b * m) as f32))?;
        let s2 = Instant::now();
        model.zero_grad();
        model.backward(&engine, &mut ws, &d_logits)?;
        let s3 = Instant::now();
        opt.step_model(&engine, &mut model)?;
        let s4 = Instant::now();
        if timed {
            t_fwd += (s1 - s0).as_secs_f64();
            t_loss += (s2 - s1).as_secs_f64();
            t_bwd += (s3 - s2).as_secs_f64();
            t_opt += (s4 - s3).as_secs_f64();
        }
        Ok(loss / (b * m) as f64)
    };
    // `--steps 0` skips the training measurement.
    let warmup = if a.steps == 0 { 0 } else { 3 };
    for _ in 0..warmup {
        step(false, &mut rng)?;
    }
    let mut runs = Vec::new();
    let mut last_loss = f64::NAN;
    for _ in 0..if a.steps == 0 { 0 } else { 5 } {
        let s = Instant::now();
        for _ in 0..a.steps {
            last_loss = step(true, &mut rng)?;
        }
        runs.push(a.steps as f64 / s.elapsed().as_secs_f64());
    }
    let total_steps = (5 * a.steps).max(1) as f64;
    let steps_per_s = if runs.is_empty() {
        f64::NAN
    } else {
        median(runs)
    };
    let train_bytes = ws.allocated_bytes();

    // Inference: one dataset, context + queries.
    let (ni, mi) = (a.infer_context, a.infer_queries);
    let xi: Vec<f32> = (0..(ni + mi) * a.features)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let yi: Vec<f32> = (0..ni).map(|_| rng.sample(StandardNormal)).collect();
    let batch = Batch {
        x: &xi,
        y: &yi,
        batch: 1,
        seq_len: ni + mi,
        single_eval_pos: ni,
    };
    let mut inf = Workspace::inference();
    for _ in 0..3 {
        model.forward(&engine, &mut inf, &batch)?;
    }
    let mut lat = Vec::new();
    for _ in 0..20 {
        let s = Instant::now();
        model.forward(&engine, &mut inf, &batch)?;
        lat.push(s.elapsed().as_secs_f64() * 1e3);
    }
    let min_lat = lat.iter().cloned().fold(f64::INFINITY, f64::min);

    // Cached context: encode once, then all queries, and a single query.
    let mut cache = ContextCache::new();
    let xq = &xi[ni * a.features..];
    let mut enc = Vec::new();
    let mut all_q = Vec::new();
    let mut one_q = Vec::new();
    for rep in 0..23 {
        let s = Instant::now();
        model.encode_batch_context(&engine, &mut inf, &batch, &mut cache)?;
        let s1 = Instant::now();
        model.forward_queries(&engine, &mut inf, &cache, xq, mi)?;
        let s2 = Instant::now();
        model.forward_queries(&engine, &mut inf, &cache, &xq[..a.features], 1)?;
        let s3 = Instant::now();
        if rep >= 3 {
            enc.push((s1 - s).as_secs_f64() * 1e3);
            all_q.push((s2 - s1).as_secs_f64() * 1e3);
            one_q.push((s3 - s2).as_secs_f64() * 1e3);
        }
    }
    let r = |v: f64, d: i32| {
        let s = 10f64.powi(d);
        (v * s).round() / s
    };
    let line = serde_json::json!({
        "impl": concat!("pfn ", env!("CARGO_PKG_VERSION")),
        "threads": engine.threads(),
        "params": model.num_params(),
        "train_steps_per_s": r(steps_per_s, 3),
        "train_datasets_per_s": r(steps_per_s * b as f64, 1),
        "step_ms": {
            "forward": r(1e3 * t_fwd / total_steps, 1),
            "loss": r(1e3 * t_loss / total_steps, 1),
            "backward": r(1e3 * t_bwd / total_steps, 1),
            "adamw": r(1e3 * t_opt / total_steps, 1),
        },
        "infer_ms_median": r(median(lat.clone()), 2),
        "infer_ms_min": r(min_lat, 2),
        "cached": {
            "encode_ms": r(median(enc), 2),
            "queries_ms": r(median(all_q), 2),
            "one_query_ms": r(median(one_q), 3),
        },
        "train_workspace_mib": r(train_bytes as f64 / (1024.0 * 1024.0), 0),
        "peak_rss_mib": r(peak_rss_mib().unwrap_or(f64::NAN), 0),
        "last_loss": r(last_loss, 4),
        "config": {
            "features": a.features, "emsize": a.emsize, "nhead": a.nhead, "nhid": a.nhid,
            "nlayers": a.nlayers, "buckets": a.buckets, "batch": a.batch, "seq_len": a.seq_len,
            "context": a.context, "infer_context": a.infer_context, "infer_queries": a.infer_queries,
            "threads": a.threads, "steps": a.steps, "query_self_attention": a.query_self_attention,
        },
    });
    println!("{line}");
    Ok(())
}
