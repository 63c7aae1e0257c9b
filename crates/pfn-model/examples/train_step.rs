//! Times PFN training steps (forward + bar-distribution NLL + backward + AdamW) and inference.
//!
//! The default configuration is the one of `shared/bench/torch_reference.py`: emsize 256, 4 layers,
//! 4 heads, nhid 512, 1000 buckets, batch 64 x 100 points of which 50 are context; inference with 50
//! context points and 1000 queries.
//!
//! Run: `cargo run --release -p pfn-model --example train_step -- --threads 2`
//! Options: --threads N --steps N --emsize E --nlayers L --nhead H --nhid N --buckets K --batch B
//! --seq-len T --context N --features F --infer-context N --infer-queries M --no-self-attention
//! (`--steps 0` measures inference only).

use std::time::Instant;

use pfn_distribution::{equal_width_borders, BarDistribution};
use pfn_engine::Engine;
use pfn_model::{AdamW, AdamWConfig, Batch, ContextCache, PfnConfig, PfnModel, Workspace};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

struct Args {
    threads: usize,
    steps: usize,
    emsize: usize,
    nlayers: usize,
    nhead: usize,
    nhid: usize,
    buckets: usize,
    batch: usize,
    seq_len: usize,
    context: usize,
    features: usize,
    infer_context: usize,
    infer_queries: usize,
    self_attention: bool,
}

fn parse() -> Args {
    let mut a = Args {
        threads: 2,
        steps: 10,
        emsize: 256,
        nlayers: 4,
        nhead: 4,
        nhid: 512,
        buckets: 1000,
        batch: 64,
        seq_len: 100,
        context: 50,
        features: 1,
        infer_context: 50,
        infer_queries: 1000,
        self_attention: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--no-self-attention" {
            a.self_attention = false;
            i += 1;
            continue;
        }
        let value: usize = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag {
            "--threads" => a.threads = value,
            "--steps" => a.steps = value,
            "--emsize" => a.emsize = value,
            "--nlayers" => a.nlayers = value,
            "--nhead" => a.nhead = value,
            "--nhid" => a.nhid = value,
            "--buckets" => a.buckets = value,
            "--batch" => a.batch = value,
            "--seq-len" => a.seq_len = value,
            "--context" => a.context = value,
            "--features" => a.features = value,
            "--infer-context" => a.infer_context = value,
            "--infer-queries" => a.infer_queries = value,
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse();
    let engine = Engine::new(a.threads)?;
    let config = PfnConfig {
        query_self_attention: a.self_attention,
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
    let mut step = |timed: bool,
                    rng: &mut rand_chacha::ChaCha8Rng|
     -> Result<f64, Box<dyn std::error::Error>> {
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
    println!(
        "{{\"impl\": \"pfn-engine\", \"query_self_attention\": {}, \"threads\": {}, \"params\": {}, \"train_steps_per_s\": {:.3}, \"train_datasets_per_s\": {:.1}, \
         \"step_ms\": {{\"forward\": {:.1}, \"loss\": {:.1}, \"backward\": {:.1}, \"adamw\": {:.1}}}, \
         \"infer_ms_median\": {:.2}, \"infer_ms_min\": {:.2}, \"cached\": {{\"encode_ms\": {:.2}, \"queries_ms\": {:.2}, \"one_query_ms\": {:.3}}}, \"train_workspace_mib\": {:.0}, \"peak_rss_mib\": {:.0}, \"last_loss\": {:.4}}}",
        a.self_attention,
        a.threads,
        model.num_params(),
        steps_per_s,
        steps_per_s * b as f64,
        1e3 * t_fwd / total_steps,
        1e3 * t_loss / total_steps,
        1e3 * t_bwd / total_steps,
        1e3 * t_opt / total_steps,
        median(lat),
        min_lat,
        median(enc),
        median(all_q),
        median(one_q),
        train_bytes as f64 / (1024.0 * 1024.0),
        peak_rss_mib().unwrap_or(f64::NAN),
        last_loss,
    );
    Ok(())
}
