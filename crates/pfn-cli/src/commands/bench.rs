//! `pfn bench`: times training steps (forward + bar-distribution NLL + backward + AdamW) and
//! inference (full forward and cached context), with the same flags, defaults and JSON keys as
//! `shared/bench/torch_reference.py`, so the two can be compared line by line. The reference's
//! attention takes keys from the context only, so query self-attention is off unless
//! `--query-self-attention` is given.
//!
//! The training steps are those of `pfn train`: a [`Trainer`] runs them (the one training loop,
//! with its gradient clipping and background batch loader, on datasets of the ridge prior with
//! `x ~ U[0,1]^F` and a fixed context size), and a [`TrainObserver`] records the wall time between
//! steps and each step's phase times ([`StepReport::phases`]). Inference is timed on random data.
//!
//! Besides the reference's keys, the JSON line reports the matrix-product FLOPs that the engine
//! executes per training step and per inference pass, the achieved GFLOP/s, and how much CPU time the
//! process got per second of wall time while training (about `--threads` on an idle machine; less
//! when other processes compete for the cores).
//!
//! `pfn bench --sweep` instead measures how the cost grows with context size, query count and model
//! size, and writes `scaling.csv` and three PNG plots to `--sweep-out`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use pfn_engine::Engine;
use pfn_model::{Batch, ContextCache, PfnConfig, PfnModel, Precision, Workspace};
use pfn_plot::{Figure, Series, PALETTE};
use pfn_train::{
    RunConfig, RunOptions, ScheduleKind, SplitDistribution, StartInfo, StepPhases, StepReport,
    TrainObserver, Trainer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// Arithmetic of the timed training steps: f32, or bf16 (mixed precision: the linear layers'
    /// forward and backward products with bf16 operands and f32 accumulation, f32 weights,
    /// gradients and AdamW). Inference is timed in f32 and in bf16 either way.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Measure how cost grows with context size, query count and model size instead (writes
    /// `scaling.csv` and PNG plots to `--sweep-out`; the model flags give the base model).
    #[arg(long)]
    pub sweep: bool,
    /// Output folder of `--sweep`.
    #[arg(long, default_value = "docs/results/performance")]
    pub sweep_out: PathBuf,
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

/// CPU seconds used so far by the live threads of this process (Linux `schedstat`), or `None`.
fn process_cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// Matrix-product FLOPs (2 per multiply-add) that the engine executes for one pass of `batch`
/// datasets with `n` context and `m` query points: the linear layers over the rows each layer computes
/// (queries only after the last attention), the first layer's projection folded into the encoder
/// when that is cheaper, the attention products of every head, and the decoder.
#[derive(Clone, Copy, Debug, Default)]
struct Flops {
    forward: f64,
    backward: f64,
}

impl Flops {
    fn count(c: &PfnConfig, batch: usize, n: usize, m: usize) -> Self {
        let f = |v: usize| v as f64;
        let (e, nh, o, fa) = (f(c.emsize), f(c.nhid), f(c.n_out), f(c.num_features + 3));
        let (tok, ctx, qry) = (f(batch * (n + m)), f(batch * n), f(batch * m));
        let nl = c.nlayers;
        let mut fwd = 2.0 * tok * fa * e;
        let mut bwd = 0.0;
        for l in 0..nl {
            let last = l + 1 == nl;
            let rows = if last { qry } else { tok };
            let kv_rows = if c.query_self_attention { tok } else { ctx };
            let proj_rows = rows + 2.0 * kv_rows;
            let fold = l == 0 && c.num_features + 3 < c.emsize && {
                let r = (rows + kv_rows) as usize;
                r * (c.emsize - c.num_features - 3) > 3 * c.emsize * (c.num_features + 3)
            };
            let per_token_attn = 4.0 * e * f(n) * f(batch);
            let attn = per_token_attn * if last { f(m) } else { f(n + m) };
            let dense = 2.0 * rows * e * e + 4.0 * rows * e * nh;
            if fold {
                fwd += 2.0 * 3.0 * e * e * fa + 2.0 * proj_rows * e * fa;
            } else {
                fwd += 2.0 * proj_rows * e * e;
            }
            fwd += attn + dense;
            bwd += 2.0 * attn + 2.0 * dense;
            if l == 0 {
                // reassociated encoder gradient and the weight gradient from the encoder input
                bwd += 2.0 * proj_rows * e * fa + 2.0 * rows * e * fa + 4.0 * 3.0 * e * e * fa;
            } else {
                bwd += 4.0 * proj_rows * e * e;
            }
        }
        let dec = 2.0 * qry * e * nh + 2.0 * qry * nh * o;
        Self {
            forward: fwd + dec,
            backward: bwd + 2.0 * dec,
        }
    }

    fn step(&self) -> f64 {
        self.forward + self.backward
    }
}

/// The prior the training steps draw their datasets from: the ridge prior, `x ~ U[0,1]^F` as in
/// the reference's random data, any number of features, and cheap to sample (linear in the
/// points), so the background loader keeps up with any model size. The data do not change the
/// cost of a step.
const BENCH_PRIOR: &str = "ridge";

/// The shape of a timed training run.
struct TrainShape {
    batch: usize,
    seq_len: usize,
    context: usize,
    precision: Precision,
}

/// A training run through the one training loop ([`Trainer`]): the model flags' network, a
/// Riemann head, constant learning rate 1e-4 without weight decay, a fixed context size, no
/// checkpoints and no validation during the run, `steps` steps.
fn bench_trainer(a: &Args, config: &PfnConfig, shape: &TrainShape, steps: u64) -> Result<Trainer> {
    let mut c = RunConfig::new(BENCH_PRIOR);
    c.prior.num_features = config.num_features;
    c.prior.seq_len = shape.seq_len;
    c.prior.split = SplitDistribution::Uniform;
    c.prior.min_context = shape.context;
    c.prior.max_context = Some(shape.context);
    c.model.emsize = config.emsize;
    c.model.nlayers = config.nlayers;
    c.model.nhead = config.nhead;
    c.model.nhid = config.nhid;
    c.model.buckets = Some(config.n_out);
    c.model.query_self_attention = config.query_self_attention;
    c.borders.samples = (20 * config.n_out).max(shape.seq_len);
    c.optimizer.lr = 1e-4;
    c.optimizer.weight_decay = 0.0;
    c.optimizer.warmup_steps = Some(0);
    c.optimizer.schedule = ScheduleKind::Constant;
    c.budget.steps = Some(steps.max(1));
    c.budget.batch_size = shape.batch;
    c.budget.validation_every = None;
    c.budget.checkpoint_every = None;
    c.budget.validation_datasets = 1;
    c.run.seed = 0;
    c.run.threads = (a.threads > 0).then_some(a.threads);
    c.run.precision = shape.precision;
    Ok(Trainer::new(c)?)
}

/// Times the steps of a [`Trainer::run`]: the wall time between consecutive steps and the phase
/// times of every step after the first `warmup`, and the CPU time the process got over them.
struct StepTimer {
    warmup: u64,
    last: Option<Instant>,
    /// Wall seconds of each timed step.
    steps: Vec<f64>,
    phases: StepPhases,
    last_loss: f64,
    cpu_start: Option<(f64, Instant)>,
    cpu_share: f64,
}

impl StepTimer {
    fn new(warmup: u64) -> Self {
        Self {
            warmup,
            last: None,
            steps: Vec::new(),
            phases: StepPhases::default(),
            last_loss: f64::NAN,
            cpu_start: None,
            cpu_share: f64::NAN,
        }
    }
}

impl TrainObserver for StepTimer {
    fn on_start(&mut self, _info: &StartInfo) {
        self.last = Some(Instant::now());
    }

    fn on_step(&mut self, report: &StepReport) {
        let now = Instant::now();
        let elapsed = self.last.map_or(0.0, |t| (now - t).as_secs_f64());
        self.last = Some(now);
        if report.step == self.warmup {
            self.cpu_start = process_cpu_seconds().map(|c| (c, now));
        }
        if report.step > self.warmup {
            self.steps.push(elapsed);
            self.phases += report.phases;
            self.last_loss = report.loss;
            if let (Some((c0, t0)), Some(c1)) = (self.cpu_start, process_cpu_seconds()) {
                self.cpu_share = (c1 - c0) / (now - t0).as_secs_f64();
            }
        }
    }
}

/// Inference latencies in milliseconds (medians and minimum over repetitions).
#[derive(Clone, Copy, Debug)]
struct InferTimes {
    full_median: f64,
    full_min: f64,
    encode: f64,
    queries: f64,
    one_query: f64,
    one_query_hot: f64,
}

/// Times inference on one dataset with `n` context and `m` query points: the full forward pass, and
/// with a cached context the context encoding, all queries, and a single query.
fn time_inference(
    engine: &Engine,
    model: &PfnModel,
    n: usize,
    m: usize,
    reps: usize,
    rng: &mut ChaCha8Rng,
) -> Result<InferTimes> {
    let f = model.config().num_features;
    let xi: Vec<f32> = (0..(n + m) * f)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let yi: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let batch = Batch {
        x: &xi,
        y: &yi,
        batch: 1,
        seq_len: n + m,
        single_eval_pos: n,
    };
    let mut inf = Workspace::inference();
    let warm = 3.min(reps);
    let mut lat = Vec::new();
    for rep in 0..warm + reps {
        let s = Instant::now();
        model.forward(engine, &mut inf, &batch)?;
        if rep >= warm {
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    let full_min = lat.iter().cloned().fold(f64::INFINITY, f64::min);

    let mut cache = ContextCache::new();
    let xq = &xi[n * f..];
    let (mut enc, mut all_q, mut one_q) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..warm + reps {
        let s = Instant::now();
        model.encode_batch_context(engine, &mut inf, &batch, &mut cache)?;
        let s1 = Instant::now();
        model.forward_queries(engine, &mut inf, &cache, xq, m)?;
        let s2 = Instant::now();
        model.forward_queries(engine, &mut inf, &cache, &xq[..f], 1)?;
        let s3 = Instant::now();
        if rep >= warm {
            enc.push((s1 - s).as_secs_f64() * 1e3);
            all_q.push((s2 - s1).as_secs_f64() * 1e3);
            one_q.push((s3 - s2).as_secs_f64() * 1e3);
        }
    }
    // Back-to-back single queries: the weights stay in the caches (the protocol above measures a
    // single query right after large passes, which reads the weights from memory).
    let mut hot = Vec::new();
    for rep in 0..warm + 10 * reps {
        let s = Instant::now();
        model.forward_queries(engine, &mut inf, &cache, &xq[..f], 1)?;
        if rep >= warm {
            hot.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(InferTimes {
        full_median: median(lat),
        full_min,
        encode: median(enc),
        queries: median(all_q),
        one_query: median(one_q),
        one_query_hot: median(hot),
    })
}

/// How far bf16 inference moves the predictions of the f32 model.
struct Bf16Deviation {
    max_abs_logit: f64,
    /// Mean over queries of KL(f32 predictive || bf16 predictive) over the buckets.
    mean_kl: f64,
    max_kl: f64,
}

/// Runs one random dataset (n context, m queries; not the timing data) through the model in f32 and
/// in bf16 (left set afterwards).
fn bf16_deviation(
    engine: &Engine,
    model: &mut PfnModel,
    n: usize,
    m: usize,
) -> Result<Bf16Deviation> {
    let f = model.config().num_features;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f32> = (0..(n + m) * f)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let y: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let batch = Batch {
        x: &x,
        y: &y,
        batch: 1,
        seq_len: n + m,
        single_eval_pos: n,
    };
    let mut ws = Workspace::inference();
    model.set_inference_precision(Precision::F32);
    let exact = model.forward(engine, &mut ws, &batch)?.to_vec();
    model.set_inference_precision(Precision::Bf16);
    let approx = model.forward(engine, &mut ws, &batch)?;
    let o = model.config().n_out;
    let log_softmax = |row: &[f32]| -> Vec<f64> {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = mx + row.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
        row.iter().map(|&v| v as f64 - lse).collect()
    };
    let (mut max_abs, mut kl_sum, mut kl_max) = (0.0f64, 0.0, 0.0f64);
    for (a, b) in exact.chunks_exact(o).zip(approx.chunks_exact(o)) {
        for (u, v) in a.iter().zip(b) {
            max_abs = max_abs.max((u - v).abs() as f64);
        }
        let (la, lb) = (log_softmax(a), log_softmax(b));
        let kl: f64 = la.iter().zip(&lb).map(|(p, q)| p.exp() * (p - q)).sum();
        kl_sum += kl;
        kl_max = kl_max.max(kl);
    }
    let queries = (exact.len() / o).max(1) as f64;
    Ok(Bf16Deviation {
        max_abs_logit: max_abs,
        mean_kl: kl_sum / queries,
        max_kl: kl_max,
    })
}

fn engine_for(threads: usize) -> Result<Engine> {
    Ok(Engine::new(if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    })?)
}

fn config_of(a: &Args, emsize: usize, nlayers: usize, nhid: usize) -> PfnConfig {
    PfnConfig {
        query_self_attention: a.query_self_attention,
        ..PfnConfig::new(a.features, emsize, a.nhead, nhid, nlayers, a.buckets)
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (v * s).round() / s
}

/// Runs the benchmark (or the sweep) and prints one JSON line.
pub fn run(a: &Args) -> Result<()> {
    if a.sweep {
        return run_sweep(a);
    }
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
    let engine = engine_for(a.threads)?;
    let config = config_of(a, a.emsize, a.nlayers, a.nhid);
    let b = a.batch;
    let shape = TrainShape {
        batch: b,
        seq_len: a.seq_len,
        context: a.context,
        precision: a.precision,
    };
    // `--steps 0` skips the training measurement; otherwise 3 warm-up steps, then 5 timed runs of
    // `--steps` steps, all in one run of the training loop.
    let (warmup, runs_n) = if a.steps == 0 { (0, 0) } else { (3, 5) };
    let total = warmup + runs_n * a.steps as u64;
    let mut trainer = bench_trainer(a, &config, &shape, total)?;
    let mut timer = StepTimer::new(warmup);
    if total > 0 {
        trainer.run(&RunOptions::default(), &mut timer)?;
    }
    let runs: Vec<f64> = timer
        .steps
        .chunks_exact(a.steps.max(1))
        .map(|run| a.steps as f64 / run.iter().sum::<f64>())
        .collect();
    let (times, last_loss, cpu_share) = (timer.phases, timer.last_loss, timer.cpu_share);
    let total_steps = (runs_n as usize * a.steps).max(1) as f64;
    let steps_per_s = median(runs);
    let train_bytes = trainer.training_workspace_bytes();
    let train_flops = Flops::count(&config, b, a.context, a.seq_len - a.context);
    // The training buffers go before inference starts (as in a process that trains, then serves),
    // so the peak RSS is that of training or of inference, whichever is larger.
    let mut model = trainer.into_model();
    model.set_training_precision(Precision::F32);

    let (ni, mi) = (a.infer_context, a.infer_queries);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let inf = if mi > 0 {
        Some(time_inference(&engine, &model, ni, mi, 20, &mut rng)?)
    } else {
        None
    };
    let pick = |f: fn(&InferTimes) -> f64| inf.as_ref().map_or(f64::NAN, f);
    // The same passes with bf16 matrix products, and how far their predictions move.
    let bf16 = if mi > 0 {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        model.set_inference_precision(Precision::Bf16);
        let t = time_inference(&engine, &model, ni, mi, 20, &mut rng)?;
        let d = bf16_deviation(&engine, &mut model, ni, mi)?;
        serde_json::json!({
            "native": pfn_engine::bf16::native_available(),
            "infer_ms_median": round(t.full_median, 2),
            "infer_ms_min": round(t.full_min, 2),
            "cached": {
                "encode_ms": round(t.encode, 2),
                "queries_ms": round(t.queries, 2),
                "one_query_ms": round(t.one_query, 3),
                "one_query_hot_ms": round(t.one_query_hot, 3),
            },
            "max_abs_logit_diff": round(d.max_abs_logit, 5),
            "mean_kl_nats": d.mean_kl,
            "max_kl_nats": d.max_kl,
        })
    } else {
        serde_json::Value::Null
    };
    let infer_flops = Flops::count(&config, 1, ni, mi).forward;
    let ms = |t: f64| round(1e3 * t / total_steps, 1);
    let report = serde_json::json!({
        "impl": concat!("pfn ", env!("CARGO_PKG_VERSION")),
        "threads": engine.threads(),
        "params": model.num_params(),
        "train_precision": a.precision.name(),
        "train_steps_per_s": round(steps_per_s, 3),
        "train_datasets_per_s": round(steps_per_s * b as f64, 1),
        "step_ms": {
            "forward": ms(times.forward),
            "loss": ms(times.loss),
            "backward": ms(times.backward),
            "adamw": ms(times.optimizer),
        },
        "infer_ms_median": round(pick(|t| t.full_median), 2),
        "infer_ms_min": round(pick(|t| t.full_min), 2),
        "cached": {
            "encode_ms": round(pick(|t| t.encode), 2),
            "queries_ms": round(pick(|t| t.queries), 2),
            "one_query_ms": round(pick(|t| t.one_query), 3),
            "one_query_hot_ms": round(pick(|t| t.one_query_hot), 3),
        },
        "bf16": bf16,
        "train_workspace_mib": round(train_bytes as f64 / (1024.0 * 1024.0), 0),
        "peak_rss_mib": round(peak_rss_mib().unwrap_or(f64::NAN), 0),
        "last_loss": round(last_loss, 4),
        "train_gflop_per_step": round(train_flops.step() * 1e-9, 2),
        "train_gflops": round(train_flops.step() * steps_per_s * 1e-9, 1),
        "train_cpu_share": round(cpu_share, 2),
        "infer_gflop": round(infer_flops * 1e-9, 3),
        "infer_gflops": round(infer_flops / pick(|t| t.full_median) * 1e-6, 1),
        "config": {
            "features": a.features, "emsize": a.emsize, "nhead": a.nhead, "nhid": a.nhid,
            "nlayers": a.nlayers, "buckets": a.buckets, "batch": a.batch, "seq_len": a.seq_len,
            "context": a.context, "infer_context": a.infer_context, "infer_queries": a.infer_queries,
            "threads": a.threads, "steps": a.steps, "query_self_attention": a.query_self_attention,
            "precision": a.precision.name(),
        },
    });
    println!("{report}");
    Ok(())
}

/// Datasets per training step in the sweep (small, so that the large points stay quick).
const SWEEP_TRAIN_BATCH: usize = 8;
/// Query points per training dataset in the context and model sweeps.
const SWEEP_TRAIN_QUERIES: usize = 50;

/// One measured point of the sweep.
struct SweepRow {
    sweep: &'static str,
    context: usize,
    queries: usize,
    emsize: usize,
    nlayers: usize,
    nhid: usize,
    params: usize,
    infer: InferTimes,
    infer_gflop: f64,
    train_seq_len: usize,
    train_step_ms: f64,
    train_gflop: f64,
}

fn sweep_point(
    a: &Args,
    engine: &Engine,
    sweep: &'static str,
    (n, m): (usize, usize),
    (emsize, nlayers, nhid): (usize, usize, usize),
    train_queries: usize,
) -> Result<SweepRow> {
    let config = config_of(a, emsize, nlayers, nhid);
    let seq = n + train_queries;
    let shape = TrainShape {
        batch: SWEEP_TRAIN_BATCH,
        seq_len: seq,
        context: n,
        precision: Precision::F32,
    };
    // One warm-up step, then three timed ones.
    let mut trainer = bench_trainer(a, &config, &shape, 4)?;
    let mut timer = StepTimer::new(1);
    trainer.run(&RunOptions::default(), &mut timer)?;
    let steps: Vec<f64> = timer.steps.iter().map(|s| s * 1e3).collect();
    let model = trainer.into_model();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let infer = time_inference(engine, &model, n, m, 5, &mut rng)?;
    let row = SweepRow {
        sweep,
        context: n,
        queries: m,
        emsize,
        nlayers,
        nhid,
        params: model.num_params(),
        infer,
        infer_gflop: Flops::count(&config, 1, n, m).forward * 1e-9,
        train_seq_len: seq,
        train_step_ms: median(steps),
        train_gflop: Flops::count(&config, SWEEP_TRAIN_BATCH, n, train_queries).step() * 1e-9,
    };
    eprintln!(
        "{sweep:<8} n={n:<5} m={m:<5} E={emsize:<4} L={nlayers:<3} infer {:8.2} ms  cached {:8.2} ms  \
         one query {:6.3} ms  train step {:8.1} ms",
        row.infer.full_median, row.infer.queries, row.infer.one_query, row.train_step_ms
    );
    Ok(row)
}

/// Measures the scaling sweep and writes the CSV and plots.
fn run_sweep(a: &Args) -> Result<()> {
    let engine = engine_for(a.threads)?;
    let base = (a.emsize, a.nlayers, a.nhid);
    let mut rows = Vec::new();
    // An untimed first point, so that page faults and cold caches of the first allocations do not
    // land on the first measured point.
    eprintln!("warm-up (discarded):");
    sweep_point(
        a,
        &engine,
        "warm-up",
        (10, a.infer_queries),
        base,
        SWEEP_TRAIN_QUERIES,
    )?;
    for n in [10, 30, 100, 300, 1000] {
        rows.push(sweep_point(
            a,
            &engine,
            "context",
            (n, a.infer_queries),
            base,
            SWEEP_TRAIN_QUERIES,
        )?);
    }
    for m in [1, 10, 100, 1000, 4000] {
        rows.push(sweep_point(
            a,
            &engine,
            "queries",
            (a.infer_context, m),
            base,
            m,
        )?);
    }
    for emsize in [128, 256, 512] {
        for nlayers in [4, 6, 12] {
            rows.push(sweep_point(
                a,
                &engine,
                "model",
                (a.infer_context, a.infer_queries),
                (emsize, nlayers, 2 * emsize),
                SWEEP_TRAIN_QUERIES,
            )?);
        }
    }
    std::fs::create_dir_all(&a.sweep_out)
        .with_context(|| format!("creating {}", a.sweep_out.display()))?;
    let csv_path = a.sweep_out.join("scaling.csv");
    std::fs::write(&csv_path, sweep_csv(&rows, engine.threads()))
        .with_context(|| format!("writing {}", csv_path.display()))?;
    plot_sweeps(&rows, &a.sweep_out)?;
    println!(
        "{}",
        serde_json::json!({
            "sweep_csv": csv_path.display().to_string(),
            "points": rows.len(),
            "threads": engine.threads(),
            "peak_rss_mib": round(peak_rss_mib().unwrap_or(f64::NAN), 0),
        })
    );
    Ok(())
}

fn sweep_csv(rows: &[SweepRow], threads: usize) -> String {
    let mut s = String::from(
        "sweep,context,queries,emsize,nlayers,nhid,params,threads,infer_full_ms,infer_full_min_ms,\
         infer_encode_ms,infer_cached_queries_ms,infer_one_query_ms,infer_one_query_hot_ms,infer_gflop,train_batch,\
         train_seq_len,train_step_ms,train_gflop_per_step,train_gflops\n",
    );
    for r in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.4},{:.4},{:.4},{},{},{:.2},{:.3},{:.1}",
            r.sweep,
            r.context,
            r.queries,
            r.emsize,
            r.nlayers,
            r.nhid,
            r.params,
            threads,
            r.infer.full_median,
            r.infer.full_min,
            r.infer.encode,
            r.infer.queries,
            r.infer.one_query,
            r.infer.one_query_hot,
            r.infer_gflop,
            SWEEP_TRAIN_BATCH,
            r.train_seq_len,
            r.train_step_ms,
            r.train_gflop,
            r.train_gflop / r.train_step_ms * 1e3,
        );
    }
    s
}

fn line(label: &str, points: Vec<(f64, f64)>, color: usize, dashed: bool) -> Series {
    Series::Line {
        label: label.into(),
        points,
        color: PALETTE[color],
        dashed,
    }
}

/// A straight line of slope 1 on the log-log axes (cost proportional to x) through `(x0, y0)`.
fn linear_guide(x0: f64, y0: f64, x1: f64) -> Series {
    line(
        "proportional to x",
        vec![(x0, y0.log10()), (x1, (y0 * x1 / x0).log10())],
        7,
        true,
    )
}

fn plot_sweeps(rows: &[SweepRow], out: &Path) -> Result<()> {
    let pts = |sweep: &str, x: fn(&SweepRow) -> f64, y: fn(&SweepRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.sweep == sweep)
            .map(|r| (x(r), y(r).log10()))
            .collect()
    };
    let y_label = "time, log10(ms)";
    let series = |sweep: &str, x: fn(&SweepRow) -> f64, train_label: &str| -> Vec<Series> {
        vec![
            line(
                "full forward (1 dataset)",
                pts(sweep, x, |r| r.infer.full_median),
                0,
                false,
            ),
            line(
                "cached context: all queries",
                pts(sweep, x, |r| r.infer.queries),
                1,
                false,
            ),
            line(
                "cached context: encode",
                pts(sweep, x, |r| r.infer.encode),
                2,
                false,
            ),
            line(
                "cached context: one query, after large passes",
                pts(sweep, x, |r| r.infer.one_query),
                3,
                false,
            ),
            line(
                "cached context: one query, back to back",
                pts(sweep, x, |r| r.infer.one_query_hot),
                5,
                false,
            ),
            line(train_label, pts(sweep, x, |r| r.train_step_ms), 4, false),
        ]
    };
    let ends = |sweep: &str, x: fn(&SweepRow) -> f64| {
        let first = rows.iter().find(|r| r.sweep == sweep);
        let last = rows.iter().rev().find(|r| r.sweep == sweep);
        (first.map(x), last.map(x), first)
    };

    let train_label =
        format!("training step ({SWEEP_TRAIN_BATCH} datasets, {SWEEP_TRAIN_QUERIES} queries each)");
    let mut fig = Figure::new(
        "Cost vs context size (1000 queries; E=256, 4 layers)",
        "context points",
        y_label,
    );
    fig.log_x = true;
    fig.series = series("context", |r| r.context as f64, &train_label);
    if let (Some(x0), Some(x1), Some(r0)) = ends("context", |r| r.context as f64) {
        fig.series.push(linear_guide(x0, r0.train_step_ms, x1));
    }
    headroom(&mut fig);
    save(&fig, &out.join("scaling-context.png"))?;

    let mut fig = Figure::new(
        "Cost vs query count (50 context points; E=256, 4 layers)",
        "query points",
        y_label,
    );
    fig.log_x = true;
    fig.series = series(
        "queries",
        |r| r.queries as f64,
        &format!("training step ({SWEEP_TRAIN_BATCH} datasets, x queries each)"),
    );
    if let (Some(x0), Some(x1), Some(r0)) = ends("queries", |r| r.queries as f64) {
        fig.series.push(linear_guide(x0, r0.infer.queries, x1));
    }
    headroom(&mut fig);
    save(&fig, &out.join("scaling-queries.png"))?;

    let mut fig = Figure::new(
        "Cost vs model size (E in 128/256/512 x 4/6/12 layers; 50 + 1000 points)",
        "parameters (millions)",
        y_label,
    );
    fig.log_x = true;
    let mut model_rows: Vec<&SweepRow> = rows.iter().filter(|r| r.sweep == "model").collect();
    model_rows.sort_by_key(|r| r.params);
    let by_params = |y: fn(&SweepRow) -> f64| -> Vec<(f64, f64)> {
        model_rows
            .iter()
            .map(|r| (r.params as f64 * 1e-6, y(r).log10()))
            .collect()
    };
    for (i, (label, y)) in [
        (
            "full forward (1 dataset)",
            (|r: &SweepRow| r.infer.full_median) as fn(&SweepRow) -> f64,
        ),
        ("cached context: all queries", |r: &SweepRow| {
            r.infer.queries
        }),
        ("cached context: one query", |r: &SweepRow| {
            r.infer.one_query
        }),
        (train_label.as_str(), |r: &SweepRow| r.train_step_ms),
    ]
    .into_iter()
    .enumerate()
    {
        let color = [0, 1, 3, 4][i];
        fig.series.push(line(label, by_params(y), color, false));
        fig.series.push(Series::Points {
            label: String::new(),
            points: by_params(y),
            color: PALETTE[color],
            radius: 3,
        });
    }
    if let (Some(f), Some(l)) = (model_rows.first(), model_rows.last()) {
        fig.series.push(linear_guide(
            f.params as f64,
            f.train_step_ms,
            l.params as f64,
        ));
    }
    save(&fig, &out.join("scaling-model.png"))
}

/// Fixes the y range to the data plus room at the top for the legend.
fn headroom(fig: &mut Figure) {
    let ys = fig.series.iter().flat_map(|s| match s {
        Series::Line { points, .. } | Series::Points { points, .. } => {
            points.iter().map(|p| p.1).collect::<Vec<_>>()
        }
        Series::Band { lower, upper, .. } => lower.iter().chain(upper).copied().collect(),
    });
    let (lo, hi) = ys
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi.is_finite() {
        fig.y_range = Some((lo - 0.2, hi + 0.25 * (hi - lo) + 0.5));
    }
}

fn save(fig: &Figure, path: &Path) -> Result<()> {
    fig.save(path)
        .with_context(|| format!("writing {}", path.display()))
}
