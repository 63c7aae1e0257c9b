//! How well can *any* model that sees only the context-normalised data do at n = 1 and n = 2?
//!
//! `gp-hyper` is trained and used the way a user's CSV is: each feature min-max scaled by the
//! context, `y` standardised by the context mean and (population) standard deviation, with the
//! standard deviation replaced by 1 when it is 0. These maps throw information away when the
//! context is tiny:
//!
//! * n = 1: `y` is shifted by the one target (its level is lost; its scale kept, as σ = 1), and the
//!   query's input is shifted by the one input (`0.5 + x* − x₁`, the scaler's rule for a range of
//!   zero): the model sees nothing but `x* − x₁`.
//! * n = 2 with one feature: the context always becomes the two rows (0, ∓1) and (1, ±1). Only
//!   the orientation and the query's scaled input `(x* − min) / (max − min)` are left; the
//!   distance between the two inputs and the size of the targets' difference are lost.
//!
//! The best predictive any such model can give is the prior's conditional law of the normalised
//! query target given what is left. This example estimates it by Monte Carlo: TRAIN datasets drawn
//! from the prior (a seed of its own) give samples of (what is left, normalised target); the
//! predictive within each bin of the scaled query input (40 equal-count bins) is a histogram of `asinh` of the normalised target on
//! equal-count cells, with the Jacobians back to the user's units. That is a proper density, scored
//! on datasets it was not fitted on, so its mean NLL is what one particular context-normalised
//! predictor achieves: an upper estimate of the best one's, which the bins only blur.
//!
//! `cargo run --release -p pfn-experiments --example normalisation_bound -- MODEL TRAIN TEST NUTS`
//!
//! Prints, for n = 1 and 2 on TEST one-feature `gp-hyper-5d` datasets (the held-out seed of the
//! `pfn eval` reports, query = point 50 as there), the mean gap to the exact GP with the true
//! hyperparameters of the invariant estimate and of MODEL; and, on the first NUTS of those
//! datasets, the same gaps beside NUTS 256+256's (as in `pfn reproduce gp-hyper`), which sees the
//! raw data and the prior's units.

use pfn_baselines::{fit_gp_nuts, GpNutsOptions, NutsOptions};
use pfn_experiments::datasets::{dataset_seed, HeldOut};
use pfn_experiments::gp_hyper::hyper_prior_config;
use pfn_experiments::prior_nll::exact_gp_scores;
use pfn_infer::{Predictor, Task};
use rayon::prelude::*;

/// The seed of the Monte Carlo sample (not used by training or the held-out sets).
const TRAIN_SEED: u64 = 0x6e6f726d5f626e64;
/// Equal-count bins of the scaled query input.
const BINS: usize = 40;
/// Samples per histogram cell of the normalised query target.
const PER_CELL: usize = 400;
/// Datasets per prior call.
const CHUNK: usize = 4096;

/// What a context-normalising model sees of a dataset with `n` context points (`n` = 1 or 2, one
/// feature) and its query: the scaled query input, the normalised query target oriented so that
/// the context's later input has the larger target, and the log of the target scale
/// (`log p(y) = log p(u) − log σ`).
fn normalised(n: usize, x: &[f64], y: &[f64], x_query: f64, y_query: f64) -> (f64, f64, f64) {
    match n {
        1 => (x_query - x[0], y_query - y[0], 0.0),
        2 => {
            let (lo, hi) = if x[0] <= x[1] { (0, 1) } else { (1, 0) };
            let range = x[hi] - x[lo];
            let s = if range > 0.0 {
                (x_query - x[lo]) / range
            } else {
                0.5 + x_query - x[lo]
            };
            let mean = 0.5 * (y[0] + y[1]);
            let sigma = 0.5 * (y[0] - y[1]).abs();
            let sigma = if sigma > 0.0 { sigma } else { 1.0 };
            let orient = if y[hi] >= y[lo] { 1.0 } else { -1.0 };
            (s, orient * (y_query - mean) / sigma, sigma.ln())
        }
        _ => unreachable!("n is 1 or 2"),
    }
}

/// Per-bin sorted samples of `asinh(u)`, with the bin edges of the scaled query input.
struct Conditional {
    edges: Vec<f64>,
    bins: Vec<Vec<f64>>,
}

impl Conditional {
    fn fit(mut samples: Vec<(f64, f64)>) -> Self {
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        let per = samples.len() / BINS;
        let edges: Vec<f64> = (1..BINS).map(|b| samples[b * per].0).collect();
        let mut bins: Vec<Vec<f64>> = samples
            .chunks(per)
            .take(BINS)
            .map(|c| c.iter().map(|s| s.1.asinh()).collect())
            .collect();
        for b in &mut bins {
            b.sort_by(f64::total_cmp);
        }
        Self { edges, bins }
    }

    /// Negative log density of `u` given the scaled input `s`: a histogram of `asinh(u)` on
    /// equal-count cells of [`PER_CELL`] samples each (a proper density), with the Jacobian
    /// `dv/du = 1 / sqrt(1 + u²)`. Outside the sample's range, an exponential tail of mass
    /// `1 / (len + 1)` on each side with the scale of the outer cell.
    fn nll(&self, s: f64, u: f64) -> f64 {
        let bin = &self.bins[self.edges.partition_point(|&e| e <= s)];
        let v = u.asinh();
        let len = bin.len();
        let cells = len / PER_CELL;
        let edge = |c: usize| bin[(c * PER_CELL).min(len - 1)];
        let tail = 1.0 / (len as f64 + 1.0);
        let log_density_v = if v < bin[0] || v > bin[len - 1] {
            let (width, beyond) = if v < bin[0] {
                (edge(1) - edge(0), bin[0] - v)
            } else {
                (edge(cells) - edge(cells - 1), v - bin[len - 1])
            };
            tail.ln() - width.ln() - beyond / width
        } else {
            // Cell c spans [edge(c), edge(c + 1)) and holds PER_CELL samples (the last one the rest).
            let c = ((bin.partition_point(|&w| w <= v).max(1) - 1) / PER_CELL).min(cells - 1);
            let count = if c + 1 == cells {
                len - c * PER_CELL
            } else {
                PER_CELL
            };
            let width = (edge(c + 1) - edge(c)).max(f64::MIN_POSITIVE);
            ((1.0 - 2.0 * tail) * count as f64 / len as f64).ln() - width.ln()
        };
        -log_density_v + 0.5 * (1.0 + u * u).ln()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, train, test, nuts] = args.as_slice() else {
        return Err("usage: normalisation_bound MODEL TRAIN TEST NUTS".into());
    };
    let (train, test, nuts): (usize, usize, usize) = (train.parse()?, test.parse()?, nuts.parse()?);
    if train < 2 * BINS * PER_CELL {
        return Err(format!(
            "TRAIN must be at least {} (two histogram cells in each of {BINS} bins), got {train}",
            2 * BINS * PER_CELL
        )
        .into());
    }
    if test == 0 {
        return Err("TEST must be at least 1".into());
    }
    let config = hyper_prior_config("gp-hyper-5d").ok_or("gp-hyper-5d has no hyper-prior")?;
    let nuts_options = GpNutsOptions::from_prior_config(&config, NutsOptions::steps(256, 0));
    let predictor = Predictor::load(model)?;
    let prior = pfn_prior::prior_by_name("gp-hyper-5d")?;
    let sizes = [1usize, 2];
    let q = 50;
    let held = HeldOut::sample(
        prior.as_ref(),
        "gp-hyper-5d",
        dataset_seed(0),
        test,
        q + 1,
        1,
    )?;
    let gp = exact_gp_scores(&held, &sizes, q)?.ok_or("the prior records no GP hyperparameters")?;
    println!(
        "| n | exact GP NLL | gap: best context-normalised (estimate) | gap: {model} | on the first {nuts}: estimate | {model} | NUTS 256+256 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (si, &n) in sizes.iter().enumerate() {
        // The Monte Carlo sample: datasets of n + 1 points, the last one the query.
        let mut samples = Vec::with_capacity(train);
        let mut index = 0u64;
        while samples.len() < train {
            let size = CHUNK.min(train - samples.len());
            let batch = prior.sample_batch(TRAIN_SEED + n as u64, index, size, n + 1, 1)?;
            for b in 0..size {
                let (x, y) = (batch.x_of(b), batch.target_y_of(b));
                let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
                let (s, u, _) = normalised(n, &x[..n], &y[..n], x[n], y[n]);
                samples.push((s, u));
            }
            index += 1;
        }
        let conditional = Conditional::fit(samples);
        let data: Vec<_> = (0..held.len()).filter_map(|i| held.get(i)).collect();
        let invariant: Vec<f64> = data
            .iter()
            .map(|d| {
                let (s, u, log_sigma) = normalised(n, &d.x[..n], &d.y[..n], d.x[q], d.target_y[q]);
                conditional.nll(s, u) + log_sigma
            })
            .collect();
        let tasks: Vec<Task<'_>> = data
            .iter()
            .map(|d| Task {
                x: &d.x[..n],
                y: &d.y[..n],
                x_query: &d.x[q..q + 1],
                features: 1,
            })
            .collect();
        let pfn: Vec<f64> = predictor
            .predict_many(&tasks)?
            .iter()
            .zip(&data)
            .map(|(answer, d)| answer[0].nll(d.target_y[q]))
            .collect();
        let nuts_nll: Vec<f64> = data[..nuts.min(data.len())]
            .par_iter()
            .enumerate()
            .map(|(i, d)| {
                let opts = GpNutsOptions {
                    nuts: NutsOptions::steps(256, i as u64),
                    ..nuts_options.clone()
                };
                let fit = fit_gp_nuts(&d.x[..n], &d.y[..n], 1, &d.x[q..q + 1], &opts)?;
                fit.predictive.nll(&d.target_y[q..q + 1])
            })
            .collect::<Result<_, _>>()?;
        let exact = &gp[si];
        let gap = |v: &[f64]| v.iter().zip(exact).map(|(a, b)| a - b).sum::<f64>() / v.len() as f64;
        let m = nuts_nll.len();
        let subset = if m == 0 {
            "– | – | –".to_string()
        } else {
            format!(
                "{:.3} | {:.3} | {:.3}",
                gap(&invariant[..m]),
                gap(&pfn[..m]),
                gap(&nuts_nll)
            )
        };
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} | {subset} |",
            exact.iter().sum::<f64>() / exact.len() as f64,
            gap(&invariant),
            gap(&pfn),
        );
    }
    Ok(())
}
