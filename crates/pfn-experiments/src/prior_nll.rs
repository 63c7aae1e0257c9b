//! The Prior-Data NLL: the one evaluator of a model on held-out datasets of its prior, per context
//! size, beside the exact GP when the prior records GP hyperparameters (the paper's §5.1
//! evaluation and the protocol of the reference results). `pfn eval` and `gp-fit` both call it.
//!
//! Protocol: draw `datasets` datasets of `q + 1` points from the prior with a held-out seed
//! ([`crate::datasets::dataset_seed`]), `q = max(context_sizes)`. For context size `n` the context
//! is the first `n` points of each dataset and the query is point `q` (the same held-out point for
//! every `n`); the score is the negative log predictive density of its target.
//!
//! The PFN is asked exactly as a user asks it, through `pfn_infer::Predictor` with the
//! normalisation the model file records (context min/max features, context-standardised targets,
//! feature padding) and densities in original units; a padded prior dataset is given with only its
//! used columns ([`crate::datasets::Dataset`]). Datasets of one context size are answered in
//! batched forward passes ([`pfn_infer::Predictor::predict_many`]). The exact GP with each
//! dataset's true hyperparameters is scored on the same points in f64, and the paired difference
//! PFN − GP is the gap in nats: the expected KL divergence from the true posterior predictive.

use std::time::Instant;

use pfn_gp::sequential_predictive;
use pfn_infer::{Predictor, Task};
use rayon::prelude::*;
use serde::Serialize;

use crate::datasets::{Dataset, HeldOut};
use crate::error::ExperimentError;
use crate::stats::{mean, Summary};

/// The context sizes of the reference results.
pub const REFERENCE_CONTEXT_SIZES: &[usize] = &[0, 1, 2, 3, 5, 10, 20, 30, 40, 50];

/// The reference context sizes from `min_context` up to `max_context` (the range the model was
/// trained on), plus `max_context` itself when it is smaller than 50.
pub fn default_context_sizes(min_context: usize, max_context: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = REFERENCE_CONTEXT_SIZES
        .iter()
        .copied()
        .filter(|&n| n >= min_context && n <= max_context)
        .collect();
    if max_context < 50 && sizes.last() != Some(&max_context) {
        sizes.push(max_context);
    }
    sizes
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct PriorNllOptions {
    /// Number of held-out datasets.
    pub datasets: usize,
    /// Context sizes to score (sorted and de-duplicated; the largest is the query index).
    pub context_sizes: Vec<usize>,
    /// Seed of the held-out datasets.
    pub seed: u64,
    /// Registry prior of the held-out datasets (`None`: the model's own prior), e.g. to score a
    /// model fine-tuned on a variant of a prior on the datasets of the original.
    pub prior: Option<String>,
}

/// The scores at one context size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorNllRow {
    /// Context size.
    pub n: usize,
    /// PFN negative log predictive density.
    pub pfn: Summary,
    /// Exact GP negative log predictive density (GP priors only).
    pub gp: Option<Summary>,
    /// Paired PFN − GP difference in nats (GP priors only).
    pub gap: Option<Summary>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorNllReport {
    /// The prior: its registry name, followed by its parameters as JSON when it was built with
    /// some.
    pub prior: String,
    /// Features of the datasets the prior was asked for (the model's width).
    pub num_features: usize,
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

/// Sorted, de-duplicated context sizes and the query index (their maximum).
pub fn sizes_and_query(context_sizes: &[usize]) -> Result<(Vec<usize>, usize), ExperimentError> {
    let mut sizes = context_sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    match sizes.last() {
        Some(&q) => Ok((sizes, q)),
        None => Err(ExperimentError::Option {
            option: "--sizes",
            problem: "give at least one".into(),
        }),
    }
}

/// The context (first `n` points) and query (point `q`) of a dataset.
fn split(d: &Dataset, n: usize, q: usize) -> (&[f64], &[f64], &[f64], f64) {
    let f = d.features;
    (
        &d.x[..n * f],
        &d.y[..n],
        &d.x[q * f..(q + 1) * f],
        d.target_y[q],
    )
}

/// Exact GP NLL of the query `q` given the first `n` points of dataset `i` (true hyperparameters);
/// `None` when the dataset records no GP hyperparameters.
pub fn exact_gp_nll(
    d: &Dataset,
    n: usize,
    q: usize,
    i: usize,
) -> Result<Option<f64>, ExperimentError> {
    let Some(hyper) = d.gp.as_ref() else {
        return Ok(None);
    };
    let (cx, cy, qx, target) = split(d, n, q);
    let mut x = cx.to_vec();
    x.extend_from_slice(qx);
    let mut y = cy.to_vec();
    y.push(target);
    let s =
        sequential_predictive(&x, &y, d.features, hyper).map_err(|source| ExperimentError::Gp {
            dataset: i,
            n,
            source,
        })?;
    Ok(Some(-s.log_density[n]))
}

/// Exact GP NLL per context size (outer) and dataset (inner), or `None` when some dataset has no
/// GP hyperparameters. Runs in parallel over datasets.
pub fn exact_gp_scores(
    held_out: &HeldOut,
    sizes: &[usize],
    q: usize,
) -> Result<Option<Vec<Vec<f64>>>, ExperimentError> {
    let per_dataset: Vec<Option<Vec<f64>>> = (0..held_out.len())
        .into_par_iter()
        .map(|i| {
            let d = held_out.get(i).expect("index in range");
            sizes
                .iter()
                .map(|&n| exact_gp_nll(&d, n, q, i))
                .collect::<Result<Option<Vec<f64>>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let Some(per_dataset) = per_dataset.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    Ok(Some(
        (0..sizes.len())
            .map(|si| per_dataset.iter().map(|d| d[si]).collect())
            .collect(),
    ))
}

/// PFN NLL per context size (outer) and dataset (inner), through the user's path in batched
/// passes; `label` names the model in errors.
pub fn pfn_scores(
    predictor: &Predictor,
    label: &str,
    held_out: &HeldOut,
    sizes: &[usize],
    q: usize,
) -> Result<Vec<Vec<f64>>, ExperimentError> {
    let data: Vec<Dataset> = (0..held_out.len())
        .map(|i| held_out.get(i).expect("index in range"))
        .collect();
    sizes
        .iter()
        .map(|&n| {
            let tasks: Vec<Task<'_>> = data
                .iter()
                .map(|d| {
                    let (x, y, x_query, _) = split(d, n, q);
                    Task {
                        x,
                        y,
                        x_query,
                        features: d.features,
                    }
                })
                .collect();
            let answers = predictor.predict_many(&tasks).map_err(|source| {
                let dataset = match &source {
                    pfn_infer::PredictError::Task { task, .. } => *task,
                    _ => 0,
                };
                ExperimentError::Predict {
                    model: label.to_string(),
                    dataset,
                    source,
                }
            })?;
            Ok(answers
                .iter()
                .zip(&data)
                .map(|(a, d)| a[0].nll(d.target_y[q]))
                .collect())
        })
        .collect()
}

/// Scores `predictor` (named `label`) on `options.datasets` held-out datasets of its training
/// prior (see the module docs).
pub fn evaluate(
    predictor: &Predictor,
    label: &str,
    options: &PriorNllOptions,
) -> Result<PriorNllReport, ExperimentError> {
    if options.datasets == 0 {
        return Err(ExperimentError::Option {
            option: "--datasets",
            problem: "must be at least 1".into(),
        });
    }
    let (sizes, q) = sizes_and_query(&options.context_sizes)?;
    // The model's own prior is rebuilt with the parameters it was trained with; a prior named
    // by --prior is the registry's default.
    let (prior_name, params) = match &options.prior {
        Some(name) => (name.clone(), pfn_prior::PriorParams::new()),
        None => (
            predictor.metadata().prior.clone(),
            predictor.metadata().prior_params(),
        ),
    };
    let prior = pfn_prior::registered_prior(&prior_name)
        .and_then(|entry| entry.prior_with_params(&params))
        .map_err(|source| ExperimentError::Prior {
            prior: prior_name.clone(),
            source,
        })?;
    let f = predictor.num_features();
    let held_out = HeldOut::sample(
        prior.as_ref(),
        &prior_name,
        options.seed,
        options.datasets,
        q + 1,
        f,
    )?;
    let t0 = Instant::now();
    let pfn = pfn_scores(predictor, label, &held_out, &sizes, q)?;
    let pfn_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let gp = if predictor.is_regression() {
        exact_gp_scores(&held_out, &sizes, q)?
    } else {
        None
    };
    let gp_seconds = t1.elapsed().as_secs_f64();
    let rows: Vec<PriorNllRow> = sizes
        .iter()
        .enumerate()
        .map(|(si, &n)| {
            let g = gp.as_ref().map(|g| &g[si]);
            PriorNllRow {
                n,
                pfn: Summary::of(&pfn[si]),
                gp: g.map(|g| Summary::of(g)),
                gap: g.map(|g| {
                    let d: Vec<f64> = pfn[si].iter().zip(g).map(|(a, b)| a - b).collect();
                    Summary::of(&d)
                }),
            }
        })
        .collect();
    let mean_of = |get: &dyn Fn(&PriorNllRow) -> Option<f64>| -> Option<f64> {
        rows.iter()
            .map(get)
            .collect::<Option<Vec<f64>>>()
            .map(|v| mean(&v))
    };
    Ok(PriorNllReport {
        prior: if params.is_empty() {
            prior_name
        } else {
            format!(
                "{prior_name} {}",
                serde_json::to_string(&params).unwrap_or_default()
            )
        },
        num_features: f,
        datasets: options.datasets,
        query_index: q,
        seed: options.seed,
        mean_pfn: mean_of(&|r| Some(r.pfn.mean)).unwrap_or(f64::NAN),
        mean_gp: mean_of(&|r| r.gp.map(|g| g.mean)),
        mean_gap: mean_of(&|r| r.gap.map(|g| g.mean)),
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
        assert_eq!(default_context_sizes(0, 50), REFERENCE_CONTEXT_SIZES);
        assert_eq!(default_context_sizes(0, 12), vec![0, 1, 2, 3, 5, 10, 12]);
        assert_eq!(default_context_sizes(1, 249), &REFERENCE_CONTEXT_SIZES[1..]);
        assert!(sizes_and_query(&[]).is_err());
        assert_eq!(sizes_and_query(&[5, 1, 5]).unwrap(), (vec![1, 5], 5));
    }
}
