//! The Prior-Data NLL of a trained model on held-out prior datasets, per context size, side by
//! side with the exact GP when the prior is a GP (the paper's §5.1 evaluation and the protocol of
//! the reference results).
//!
//! Protocol: draw `datasets` datasets of `q + 1` points from the model's training prior with a
//! held-out seed, `q = max(context_sizes)`. For every context size `n`, the context is the first
//! `n` points of each dataset and the query is point `q` (the same held-out point for every `n`);
//! the score is the negative log predictive density of its target. The PFN sees the prior data
//! exactly as in training: raw, or, for priors trained on context-standardised targets
//! (`gp-hyper-5d`), with the context and the target standardised by the context mean and std and the
//! density mapped back to the raw target (the log std added to the NLL). When every dataset records GP hyperparameters, the
//! exact GP predictive with those (true) hyperparameters is scored on the same points (in f64, on
//! the same f32-rounded inputs the prior drew the targets from), and the paired difference
//! PFN − GP is the gap in nats: the expected KL divergence from the true posterior predictive.

use std::time::Instant;

use pfn_gp::{sequential_predictive, GpError, GpHyper};
use pfn_model::Workspace;
use pfn_prior::rng::derive_key;
use pfn_prior::{prior_by_name, Batch, Hyperparameters, PriorError};
use pfn_train::{context_statistics, targets_standardised_in_training};
use rayon::prelude::*;
use serde::Serialize;

use crate::predictor::{PredictError, Predictor};

/// Domain tag of the evaluation seed (distinct from the training, validation, borders and
/// initialisation streams).
pub const EVAL_DOMAIN: u64 = 0x6576_616c_7561_7465;

/// Datasets per prior call when sampling the held-out set.
const SAMPLE_CHUNK: usize = 64;

/// The context sizes of the reference results.
pub const REFERENCE_CONTEXT_SIZES: &[usize] = &[0, 1, 2, 3, 5, 10, 20, 30, 40, 50];

/// Errors of the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The prior could not be built or sampled.
    #[error("prior '{prior}': {source}")]
    Prior {
        /// Prior name.
        prior: String,
        /// What it reported.
        source: PriorError,
    },
    /// The model failed.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// The exact GP failed on a dataset.
    #[error("exact GP on dataset {dataset}: {source}")]
    Gp {
        /// Dataset index.
        dataset: usize,
        /// What it reported.
        source: GpError,
    },
    /// Invalid options.
    #[error("invalid {name}: {problem}")]
    Option {
        /// The option.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Options of [`evaluate_prior_nll`].
#[derive(Debug, Clone, PartialEq)]
pub struct PriorNllOptions {
    /// Number of held-out datasets.
    pub datasets: usize,
    /// Context sizes to score (sorted and de-duplicated; the largest is the query index).
    pub context_sizes: Vec<usize>,
    /// Seed of the held-out datasets.
    pub seed: u64,
    /// Datasets per forward pass (does not change the datasets or, up to float rounding, the
    /// scores).
    pub batch: usize,
}

/// The evaluation seed of a run with seed `run_seed`.
pub fn eval_seed(run_seed: u64) -> u64 {
    derive_key(EVAL_DOMAIN, run_seed, &[])
}

/// The reference context sizes up to `max_context` (the largest context size trained), plus
/// `max_context` itself when it is smaller than 50.
pub fn default_context_sizes(max_context: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = REFERENCE_CONTEXT_SIZES
        .iter()
        .copied()
        .filter(|&n| n <= max_context)
        .collect();
    if max_context < 50 && sizes.last() != Some(&max_context) {
        sizes.push(max_context);
    }
    sizes
}

/// Mean and standard error of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanSe {
    /// Mean.
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
}

impl MeanSe {
    /// Of `v` (NaN for an empty sample; se 0 for one value).
    pub fn of(v: &[f64]) -> Self {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            se: (var / n).sqrt(),
        }
    }
}

/// The scores at one context size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorNllRow {
    /// Context size.
    pub n: usize,
    /// PFN negative log predictive density.
    pub pfn: MeanSe,
    /// Exact GP negative log predictive density (GP priors only).
    pub gp: Option<MeanSe>,
    /// Paired PFN − GP difference in nats (GP priors only).
    pub gap: Option<MeanSe>,
}

/// The result of [`evaluate_prior_nll`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorNllReport {
    /// The prior.
    pub prior: String,
    /// Datasets scored.
    pub datasets: usize,
    /// Index of the query point in each dataset.
    pub query_index: usize,
    /// Seed of the held-out datasets.
    pub seed: u64,
    /// One row per context size.
    pub rows: Vec<PriorNllRow>,
    /// Mean over the context sizes of the PFN NLL.
    pub mean_pfn: f64,
    /// Mean over the context sizes of the GP NLL (GP priors only).
    pub mean_gp: Option<f64>,
    /// Mean over the context sizes of the gap (GP priors only).
    pub mean_gap: Option<f64>,
    /// Seconds spent in the PFN.
    pub pfn_seconds: f64,
    /// Seconds spent in the exact GP.
    pub gp_seconds: f64,
}

fn gp_hyper(h: &Hyperparameters) -> Option<&GpHyper> {
    match h {
        Hyperparameters::Gp(g) => Some(g),
        _ => None,
    }
}

/// Standardises a dataset's context targets and its query target with the context mean and std (the
/// rule of training, `pfn_train::context_statistics`) and returns ln(std), the amount to add to the
/// NLL of the standardised target to score the raw one (0 and nothing changed for an empty context).
fn standardise_by_context(context: &mut [f32], target: &mut f32) -> f64 {
    let Some((mean, std)) = context_statistics(context) else {
        return 0.0;
    };
    for v in context.iter_mut() {
        *v = ((f64::from(*v) - mean) / std) as f32;
    }
    *target = ((f64::from(*target) - mean) / std) as f32;
    std.ln()
}

/// The points `0..n` and `q` of dataset `b`: (x as f32, y context, target of `q`).
fn subset(batch: &Batch, b: usize, n: usize, q: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> f32 {
    let f = batch.num_features;
    let xs = batch.x_of(b);
    let ys = batch.y_of(b);
    x.extend_from_slice(&xs[..n * f]);
    x.extend_from_slice(&xs[q * f..(q + 1) * f]);
    y.extend_from_slice(&ys[..n]);
    y.push(0.0);
    batch.target_y_of(b)[q]
}

/// Scores the predictor's model on held-out datasets of its training prior (see the module
/// documentation).
pub fn evaluate_prior_nll(
    predictor: &Predictor,
    options: &PriorNllOptions,
) -> Result<PriorNllReport, EvalError> {
    let prior_name = predictor.metadata().prior.clone();
    if options.datasets == 0 {
        return Err(EvalError::Option {
            name: "datasets",
            problem: "must be at least 1".into(),
        });
    }
    if options.batch == 0 {
        return Err(EvalError::Option {
            name: "batch",
            problem: "must be at least 1".into(),
        });
    }
    let mut sizes = options.context_sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&q) = sizes.last() else {
        return Err(EvalError::Option {
            name: "context sizes",
            problem: "give at least one".into(),
        });
    };
    let prior_err = |source| EvalError::Prior {
        prior: prior_name.clone(),
        source,
    };
    let prior = prior_by_name(&prior_name).map_err(prior_err)?;
    let f = predictor.num_features();
    // Sampled in fixed chunks, so the datasets depend on the seed and their number only.
    let mut batches = Vec::new();
    let mut remaining = options.datasets;
    let mut index = 0u64;
    while remaining > 0 {
        let size = remaining.min(SAMPLE_CHUNK);
        batches.push(
            prior
                .sample_batch(options.seed, index, size, q + 1, f)
                .map_err(prior_err)?,
        );
        remaining -= size;
        index += 1;
    }

    let t0 = Instant::now();
    let mut ws = Workspace::inference();
    let (mut x, mut y, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    let mut log_scales: Vec<f64> = Vec::new();
    let standardise = targets_standardised_in_training(&prior_name) && predictor.is_regression();
    let items: Vec<(&Batch, usize)> = batches
        .iter()
        .flat_map(|batch| (0..batch.batch_size).map(move |b| (batch, b)))
        .collect();
    let mut pfn = vec![Vec::with_capacity(options.datasets); sizes.len()];
    for (si, &n) in sizes.iter().enumerate() {
        for chunk in items.chunks(options.batch) {
            x.clear();
            y.clear();
            targets.clear();
            log_scales.clear();
            for &(batch, b) in chunk {
                let start = y.len();
                let mut target = subset(batch, b, n, q, &mut x, &mut y);
                // Priors trained on context-standardised targets are scored the same way; the
                // density of the raw target is that of the standardised one divided by the std.
                let log_scale = if standardise {
                    standardise_by_context(&mut y[start..start + n], &mut target)
                } else {
                    0.0
                };
                log_scales.push(log_scale);
                targets.push(target);
            }
            let mb = pfn_model::Batch {
                x: &x,
                y: &y,
                batch: chunk.len(),
                seq_len: n + 1,
                single_eval_pos: n,
            };
            let logits = predictor
                .model()
                .forward(predictor.engine(), &mut ws, &mb)
                .map_err(PredictError::from)?;
            let losses = predictor
                .engine()
                .install(|| predictor.head().row_losses(logits, &targets))
                .map_err(PredictError::from)?;
            pfn[si].extend(losses.iter().zip(&log_scales).map(|(l, s)| l + s));
        }
    }
    let pfn_seconds = t0.elapsed().as_secs_f64();

    let all_gp = batches
        .iter()
        .all(|b| b.hyperparameters.iter().all(|h| gp_hyper(h).is_some()));
    let t1 = Instant::now();
    let gp: Option<Vec<Vec<f64>>> = if all_gp && predictor.is_regression() {
        let per_dataset: Vec<Vec<f64>> = items
            .par_iter()
            .enumerate()
            .map(|(i, &(batch, b))| {
                let hyper = gp_hyper(&batch.hyperparameters[b]).expect("checked above");
                sizes
                    .iter()
                    .map(|&n| {
                        let (mut xs, mut ys) = (Vec::new(), Vec::new());
                        let target = subset(batch, b, n, q, &mut xs, &mut ys);
                        let x64: Vec<f64> = xs.iter().map(|&v| f64::from(v)).collect();
                        let mut y64: Vec<f64> = ys.iter().map(|&v| f64::from(v)).collect();
                        y64[n] = f64::from(target);
                        let s = sequential_predictive(&x64, &y64, f, hyper)
                            .map_err(|source| EvalError::Gp { dataset: i, source })?;
                        Ok(-s.log_density[n])
                    })
                    .collect::<Result<Vec<f64>, EvalError>>()
            })
            .collect::<Result<_, _>>()?;
        Some(
            (0..sizes.len())
                .map(|si| per_dataset.iter().map(|d| d[si]).collect())
                .collect(),
        )
    } else {
        None
    };
    let gp_seconds = t1.elapsed().as_secs_f64();

    let rows: Vec<PriorNllRow> = sizes
        .iter()
        .enumerate()
        .map(|(si, &n)| {
            let gp_row = gp.as_ref().map(|g| &g[si]);
            PriorNllRow {
                n,
                pfn: MeanSe::of(&pfn[si]),
                gp: gp_row.map(|g| MeanSe::of(g)),
                gap: gp_row.map(|g| {
                    let d: Vec<f64> = pfn[si].iter().zip(g).map(|(a, b)| a - b).collect();
                    MeanSe::of(&d)
                }),
            }
        })
        .collect();
    let mean = |f: &dyn Fn(&PriorNllRow) -> Option<f64>| -> Option<f64> {
        let v: Option<Vec<f64>> = rows.iter().map(f).collect();
        v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    Ok(PriorNllReport {
        prior: prior_name,
        datasets: options.datasets,
        query_index: q,
        seed: options.seed,
        mean_pfn: mean(&|r| Some(r.pfn.mean)).unwrap_or(f64::NAN),
        mean_gp: mean(&|r| r.gp.map(|g| g.mean)),
        mean_gap: mean(&|r| r.gap.map(|g| g.mean)),
        rows,
        pfn_seconds,
        gp_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes_follow_the_reference_and_the_trained_range() {
        assert_eq!(default_context_sizes(50), REFERENCE_CONTEXT_SIZES.to_vec());
        assert_eq!(default_context_sizes(99), REFERENCE_CONTEXT_SIZES.to_vec());
        assert_eq!(default_context_sizes(19), vec![0, 1, 2, 3, 5, 10, 19]);
        assert_eq!(default_context_sizes(10), vec![0, 1, 2, 3, 5, 10]);
        assert_eq!(default_context_sizes(0), vec![0]);
    }

    #[test]
    fn context_standardisation_for_scoring() {
        let mut ctx = vec![1.0f32, 3.0, 5.0, 7.0];
        let mut target = 9.0f32;
        let ls = standardise_by_context(&mut ctx, &mut target);
        // mean 4, population std sqrt(5)
        let sd = 5f64.sqrt();
        assert!((ls - sd.ln()).abs() < 1e-12);
        for (v, raw) in ctx.iter().zip([1.0, 3.0, 5.0, 7.0]) {
            assert!((f64::from(*v) - (raw - 4.0) / sd).abs() < 1e-6);
        }
        assert!((f64::from(target) - 5.0 / sd).abs() < 1e-6);
        // A Gaussian predictive: NLL of the raw target = NLL of the standardised one + ln(std).
        let nll =
            |y: f64, m: f64, s: f64| 0.5 * ((y - m) / s).powi(2) + s.ln() + 0.9189385332046727;
        let raw = nll(9.0, 4.0, 2.0 * sd);
        let standardised = nll(f64::from(target), 0.0, 2.0);
        assert!((raw - (standardised + ls)).abs() < 1e-6);
        // no context: nothing changes
        let mut t = 2.5f32;
        assert_eq!(standardise_by_context(&mut [], &mut t), 0.0);
        assert_eq!(t, 2.5);
    }

    #[test]
    fn mean_and_standard_error() {
        let m = MeanSe::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        assert!((m.se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
    }
}
