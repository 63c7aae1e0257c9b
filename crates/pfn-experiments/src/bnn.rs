//! `bnn` (paper Fig. 5, spec §6.3): on datasets from the paper's BNN classification prior
//! (2-layer BNN without nonlinearity, all weights N(0, 1), x ~ N(0, I); small: 3 features and
//! 5 hidden units, big: 8 and 64), the binary cross-entropy of the PFN against that of SVI
//! (Bayes-by-backprop) and NUTS over their compute budgets, plotted against the inference time
//! per dataset.
//!
//! Protocol (the paper's): 300 points per dataset, the first 100 revealed, the other 200 scored.
//! SVI with budget `s` runs `s` steps and draws `s` predictive samples; NUTS runs `s` warm-up
//! steps and keeps `s` draws. Their predictive probability is scored two ways: the average of the
//! samples' class-1 probabilities (the posterior predictive; used for the curves and the speed
//! comparison) and the paper's rule (the fraction of samples whose drawn label is 1, with
//! PyTorch's log clamp). The PFN sees x z-normalised with the statistics of the revealed points
//! (as in the paper) and predicts in one forward pass. The BCE under the true weights is shown as
//! a reference. Every method runs on one thread, one dataset at a time, on the same datasets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pfn_artifact::OutputHead;
use pfn_baselines::bnn::{
    binary_cross_entropy, class1_probabilities, fit_bnn_nuts, fit_svi, BnnArchitecture,
    BnnClassificationPrior, BnnDataset, BnnDatasetSplit, ContextNormalization, PredictiveRule,
    SviOptions,
};
use pfn_baselines::NutsOptions;
use pfn_plot::{Figure, Series};
use pfn_prior::rng::derive_key;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use pfn_infer::Task;

use crate::error::ExperimentError;
use crate::figures::{clip_to_y_range, color};
use crate::models::{select_models, LoadedModel, ModelInfo};
use crate::options::ExperimentOptions;
use crate::progress::{Progress, ProgressMode};
use crate::report::{fmt_ci, fmt_ratio, fmt_secs, save_figure, MarkdownTable, RunInfo, NO_MODEL};
use crate::stats::Summary;

const NAME: &str = "bnn";

/// Points per dataset.
pub const POINTS: usize = 300;
/// Revealed (context) points per dataset.
pub const REVEALED: usize = 100;

/// Domain tag of the dataset seeds.
const DATA_DOMAIN: u64 = 0x626e_6e64_6174_6100;
/// Domain tag of the baselines' seeds.
const RUN_DOMAIN: u64 = 0x626e_6e72_756e_0000;

/// The two settings of Fig. 5: (label, architecture).
pub const SETTINGS: [(&str, BnnArchitecture); 2] = [
    ("small", BnnArchitecture::SMALL),
    ("big", BnnArchitecture::BIG),
];

/// One method at one budget (or the PFN).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BnnPoint {
    /// `SVI`, `NUTS` or `PFN <label>`.
    pub method: String,
    /// The budget (`None` for the PFN).
    pub budget: Option<usize>,
    /// Wall time per dataset in seconds.
    pub seconds: Summary,
    /// BCE of the averaged class-1 probability (the PFN's own probability for the PFN).
    pub bce: Summary,
    /// BCE under the paper's sampled-label rule (`None` for the PFN).
    pub bce_paper_rule: Option<Summary>,
    /// NUTS only: mean over datasets of the largest split R-hat over the weights.
    pub mean_max_rhat: Option<f64>,
    /// NUTS only: mean over datasets of the smallest effective sample size over the weights.
    pub mean_min_ess: Option<f64>,
}

/// How fast a PFN reaches a baseline's BCE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BnnSpeedUp {
    /// The PFN method.
    pub pfn: String,
    /// `SVI` or `NUTS`.
    pub baseline: String,
    /// The smallest budget whose mean BCE is at most the PFN's (`None`: no budget reached it).
    pub matching_budget: Option<usize>,
    /// Median time per dataset of the baseline at that budget (or at its largest budget when
    /// none matched) over the PFN's; a lower bound when nothing matched.
    pub time_ratio: f64,
}

/// The scores of one BNN size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BnnSection {
    /// `small` or `big`.
    pub label: String,
    /// Input features.
    pub features: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Number of datasets.
    pub datasets: usize,
    /// BCE under the true weights (a reference, not a method).
    pub truth: Summary,
    /// The PFN models of this size.
    pub models: Vec<ModelInfo>,
    /// The PFNs' scores.
    pub pfn: Vec<BnnPoint>,
    /// SVI per budget.
    pub svi: Vec<BnnPoint>,
    /// NUTS per budget.
    pub nuts: Vec<BnnPoint>,
    /// PFN speed-ups over SVI and NUTS.
    pub speed_ups: Vec<BnnSpeedUp>,
    /// Plot file (name inside the output directory).
    pub plot: Option<String>,
}

/// The result of a `bnn` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BnnResult {
    /// Provenance.
    pub run: RunInfo,
    /// The budgets.
    pub budgets: Vec<usize>,
    /// Where the models came from.
    pub model_source: String,
    /// Files in the models directory that were not used, with the reason.
    pub skipped_models: Vec<(String, String)>,
    /// One section per BNN size.
    pub sections: Vec<BnnSection>,
}

/// Which models `bnn` accepts: a 2-class head with the features of one of the two settings.
fn accept(m: &LoadedModel) -> Result<(), String> {
    match &m.predictor.metadata().head {
        OutputHead::Classes { n_out: 2 } => {}
        OutputHead::Classes { n_out } => {
            return Err(format!(
                "it has {n_out} classes; the bnn experiment is binary classification"
            ))
        }
        OutputHead::Riemann { .. } => {
            return Err("it is a regression model; the bnn experiment needs a 2-class head".into())
        }
    }
    let f = m.predictor.num_features();
    if SETTINGS.iter().any(|(_, a)| a.features == f) {
        Ok(())
    } else {
        Err(format!(
            "it takes {f} features; the BNN priors have {} (small) or {} (big)",
            BnnArchitecture::SMALL.features,
            BnnArchitecture::BIG.features
        ))
    }
}

/// Whether a model's training prior is the paper's BNN classification prior (its registry entry
/// lists the BNN baselines, `pfn_prior::Baseline::BnnInference`).
fn trained_on_bnn_classification(prior: &str) -> bool {
    pfn_prior::prior_entry(prior).is_some_and(|e| e.has_baseline(pfn_prior::Baseline::BnnInference))
}

/// The datasets of one setting.
fn sample_datasets(
    arch: BnnArchitecture,
    seed: u64,
    count: usize,
) -> Result<Vec<BnnDataset>, ExperimentError> {
    let prior = BnnClassificationPrior::new(arch).map_err(|source| ExperimentError::Prior {
        prior: format!("bnn-classification(F={}, H={})", arch.features, arch.hidden),
        source,
    })?;
    Ok((0..count)
        .map(|k| {
            let key = derive_key(
                DATA_DOMAIN,
                seed,
                &[arch.features as u64, arch.hidden as u64, k as u64],
            );
            prior.sample(&mut ChaCha8Rng::seed_from_u64(key), POINTS)
        })
        .collect())
}

/// A dataset's inputs z-normalised with the statistics of its revealed points (the paper's rule).
fn normalised_inputs(ds: &BnnDataset, i: usize) -> Result<Vec<f64>, ExperimentError> {
    let base_err = |source| ExperimentError::Baseline {
        method: "context normalisation".into(),
        dataset: i,
        source,
    };
    let f = ds.features;
    let norm =
        ContextNormalization::fit(&ds.x[..REVEALED * f], f).map_err(|e| base_err(e.into()))?;
    let mut x = ds.x.clone();
    norm.apply(&mut x).map_err(|e| base_err(e.into()))?;
    Ok(x)
}

/// The BCE of class-1 probabilities `p` on the test points of dataset `i`.
fn test_bce(ds: &BnnDataset, i: usize, p: &[f64]) -> Result<f64, ExperimentError> {
    binary_cross_entropy(p, &ds.labels[REVEALED..]).map_err(|source| ExperimentError::Baseline {
        method: "PFN scoring".into(),
        dataset: i,
        source,
    })
}

/// The PFN's BCE on the test points and its wall time (normalisation included).
fn pfn_score(m: &LoadedModel, ds: &BnnDataset, i: usize) -> Result<(f64, f64), ExperimentError> {
    let err = |source| ExperimentError::Predict {
        model: m.label.clone(),
        dataset: i,
        source,
    };
    let f = ds.features;
    let start = Instant::now();
    let x = normalised_inputs(ds, i)?;
    let mut ctx = m
        .predictor
        .context(&x[..REVEALED * f], &ds.labels[..REVEALED])
        .map_err(err)?;
    let preds = ctx.predict(&x[REVEALED * f..]).map_err(err)?;
    let secs = start.elapsed().as_secs_f64();
    let p: Vec<f64> = preds
        .iter()
        .map(|p| {
            p.as_classification()
                .map_or(f64::NAN, |c| c.probabilities()[1])
        })
        .collect();
    Ok((test_bce(ds, i, &p)?, secs))
}

/// The PFN on every dataset at once in batched forward passes
/// (`Predictor::class_probabilities_many`): each dataset's BCE, and the wall time of the whole
/// (normalisation included) divided by the number of datasets.
fn pfn_score_batched(
    m: &LoadedModel,
    data: &[BnnDataset],
) -> Result<(Vec<f64>, f64), ExperimentError> {
    let start = Instant::now();
    let inputs = data
        .iter()
        .enumerate()
        .map(|(i, ds)| normalised_inputs(ds, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tasks: Vec<Task<'_>> = data
        .iter()
        .zip(&inputs)
        .map(|(ds, x)| Task {
            x: &x[..REVEALED * ds.features],
            y: &ds.labels[..REVEALED],
            x_query: &x[REVEALED * ds.features..],
            features: ds.features,
        })
        .collect();
    let probabilities = m
        .predictor
        .class_probabilities_many(&tasks, 2)
        .map_err(|e| match e {
            pfn_infer::PredictError::Task { task, source } => ExperimentError::Predict {
                model: m.label.clone(),
                dataset: task,
                source: *source,
            },
            source => ExperimentError::Predict {
                model: m.label.clone(),
                dataset: 0,
                source,
            },
        })?;
    let secs = start.elapsed().as_secs_f64() / data.len().max(1) as f64;
    let bce = data
        .iter()
        .zip(&probabilities)
        .enumerate()
        .map(|(i, (ds, p))| {
            let class1: Vec<f64> = p.chunks_exact(2).map(|row| row[1]).collect();
            test_bce(ds, i, &class1)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((bce, secs))
}

/// Runs `bnn` and returns its results.
pub fn run(options: &ExperimentOptions, run: RunInfo) -> Result<BnnResult, ExperimentError> {
    let budgets = options.bnn_budgets();
    let selection = select_models(
        NAME,
        &options.models,
        options.models_dir.as_deref(),
        (1, options.precision),
        accept,
    )?;
    let datasets = options.num_datasets();
    let per_setting = |arch: &BnnArchitecture| {
        selection
            .models
            .iter()
            .filter(|m| m.predictor.num_features() == arch.features)
            .count()
            * 2
    };
    let total: u64 = SETTINGS
        .iter()
        .map(|(_, a)| (datasets * (1 + per_setting(a) + 2 * budgets.len())) as u64)
        .sum();
    let mode = if options.progress {
        ProgressMode::Auto
    } else {
        ProgressMode::Hidden
    };
    let mut progress = Progress::new(mode, NAME, total);
    let mut sections = Vec::new();
    for (s_index, (label, arch)) in SETTINGS.iter().enumerate() {
        let data = sample_datasets(*arch, options.seed, datasets)?;
        let splits = data
            .iter()
            .enumerate()
            .map(|(i, ds)| {
                ds.split(REVEALED)
                    .map_err(|source| ExperimentError::Baseline {
                        method: "split".into(),
                        dataset: i,
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        progress.stage(&format!("{label}: true weights"));
        let mut truth = Vec::with_capacity(datasets);
        for (i, (ds, (_, x_test, y_test))) in data.iter().zip(&splits).enumerate() {
            let err = |source| ExperimentError::Baseline {
                method: "true weights".into(),
                dataset: i,
                source,
            };
            let p = class1_probabilities(arch, &ds.weights, x_test).map_err(err)?;
            truth.push(binary_cross_entropy(&p, y_test).map_err(err)?);
            progress.advance(1);
        }
        let models: Vec<&LoadedModel> = selection
            .models
            .iter()
            .filter(|m| m.predictor.num_features() == arch.features)
            .collect();
        let mut pfn = Vec::new();
        for m in &models {
            progress.stage(&format!("{label}: PFN {}", m.label));
            let (mut bce, mut secs) = (Vec::new(), Vec::new());
            for (i, ds) in data.iter().enumerate() {
                let (b, s) = pfn_score(m, ds, i)?;
                bce.push(b);
                secs.push(s);
                progress.advance(1);
            }
            pfn.push(BnnPoint {
                method: format!("PFN {}", m.label),
                budget: None,
                seconds: Summary::of(&secs),
                bce: Summary::of(&bce),
                bce_paper_rule: None,
                mean_max_rhat: None,
                mean_min_ess: None,
            });
            progress.stage(&format!("{label}: PFN {} batched", m.label));
            let (bce, secs) = pfn_score_batched(m, &data)?;
            progress.advance(data.len() as u64);
            pfn.push(BnnPoint {
                method: format!("PFN {} batched", m.label),
                budget: None,
                seconds: Summary::of(&vec![secs; bce.len()]),
                bce: Summary::of(&bce),
                bce_paper_rule: None,
                mean_max_rhat: None,
                mean_min_ess: None,
            });
        }
        let (mut svi, mut nuts) = (Vec::new(), Vec::new());
        for &budget in &budgets {
            for method in ["SVI", "NUTS"] {
                progress.stage(&format!("{label}: {method} {budget}"));
                let (mut secs, mut avg, mut paper, mut rhat, mut ess) =
                    (vec![], vec![], vec![], vec![], vec![]);
                for (i, (ctx, x_test, y_test)) in splits.iter().enumerate() {
                    let err = |source| ExperimentError::Baseline {
                        method: format!("{method} {budget}"),
                        dataset: i,
                        source,
                    };
                    let seed = derive_key(
                        RUN_DOMAIN,
                        options.seed,
                        &[
                            s_index as u64,
                            i as u64,
                            budget as u64,
                            u64::from(method == "NUTS"),
                        ],
                    );
                    let (predictive, wall) = if method == "SVI" {
                        let r = fit_svi(arch, ctx, x_test, &SviOptions::budget(budget, seed))
                            .map_err(err)?;
                        (r.predictive, r.wall_time)
                    } else {
                        let r = fit_bnn_nuts(
                            arch,
                            ctx,
                            x_test,
                            &NutsOptions::steps(budget as u64, seed),
                        )
                        .map_err(err)?;
                        rhat.push(r.run.diagnostics.max_rhat());
                        ess.push(r.run.diagnostics.min_ess());
                        (r.predictive, r.wall_time)
                    };
                    secs.push(wall.as_secs_f64());
                    avg.push(
                        predictive
                            .bce(y_test, PredictiveRule::AveragedProbability, 0)
                            .map_err(err)?,
                    );
                    paper.push(
                        predictive
                            .bce(y_test, PredictiveRule::SampledLabelFraction, seed)
                            .map_err(err)?,
                    );
                    progress.advance(1);
                }
                let point = BnnPoint {
                    method: method.into(),
                    budget: Some(budget),
                    seconds: Summary::of(&secs),
                    bce: Summary::of(&avg),
                    bce_paper_rule: Some(Summary::of(&paper)),
                    mean_max_rhat: (!rhat.is_empty()).then(|| crate::stats::mean(&rhat)),
                    mean_min_ess: (!ess.is_empty()).then(|| crate::stats::mean(&ess)),
                };
                if method == "SVI" {
                    svi.push(point);
                } else {
                    nuts.push(point);
                }
            }
        }
        let mut speed_ups = Vec::new();
        for p in &pfn {
            for (name, curve) in [("SVI", &svi), ("NUTS", &nuts)] {
                let hit = curve.iter().find(|c| c.bce.mean <= p.bce.mean);
                let reference = hit.or(curve.last());
                if let Some(c) = reference {
                    speed_ups.push(BnnSpeedUp {
                        pfn: p.method.clone(),
                        baseline: name.into(),
                        matching_budget: hit.and_then(|h| h.budget),
                        time_ratio: c.seconds.median / p.seconds.median,
                    });
                }
            }
        }
        sections.push(BnnSection {
            label: label.to_string(),
            features: arch.features,
            hidden: arch.hidden,
            datasets,
            truth: Summary::of(&truth),
            models: models.iter().map(|m| m.info()).collect(),
            pfn,
            svi,
            nuts,
            speed_ups,
            plot: None,
        });
    }
    progress.finish();
    Ok(BnnResult {
        run,
        budgets,
        model_source: selection.source,
        skipped_models: selection.skipped,
        sections,
    })
}

/// Draws one plot per section (BCE against wall time per dataset, log x) into `dir`.
pub fn plot(r: &mut BnnResult, dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let mut files = Vec::new();
    for sec in &mut r.sections {
        let mut fig = Figure::new(
            &format!(
                "BNN {} ({} features, {} hidden): BCE vs time, {} datasets",
                sec.label, sec.features, sec.hidden, sec.datasets
            ),
            "wall time per dataset (s, median)",
            "BCE on 200 test points (mean)",
        );
        fig.log_x = true;
        let mut xs: Vec<f64> = Vec::new();
        let mut ys: Vec<f64> = vec![sec.truth.mean];
        for (i, (name, curve)) in [("SVI", &sec.svi), ("NUTS", &sec.nuts)]
            .into_iter()
            .enumerate()
        {
            let pts: Vec<(f64, f64)> = curve
                .iter()
                .map(|c| (c.seconds.median, c.bce.mean))
                .filter(|(x, _)| *x > 0.0)
                .collect();
            xs.extend(pts.iter().map(|p| p.0));
            ys.extend(pts.iter().map(|p| p.1));
            let paper: Vec<(f64, f64)> = curve
                .iter()
                .filter_map(|c| c.bce_paper_rule.map(|b| (c.seconds.median, b.mean)))
                .filter(|(x, _)| *x > 0.0)
                .collect();
            fig.series.push(Series::Line {
                label: format!("{name} (averaged probability)"),
                points: pts.clone(),
                color: color(i + 1),
                dashed: false,
            });
            fig.series.push(Series::Points {
                label: String::new(),
                points: pts,
                color: color(i + 1),
                radius: 3,
            });
            fig.series.push(Series::Line {
                label: format!("{name} (paper's sampled-label rule)"),
                points: paper,
                color: color(i + 1),
                dashed: true,
            });
        }
        for (i, p) in sec.pfn.iter().enumerate() {
            let pt = (p.seconds.median, p.bce.mean);
            xs.push(pt.0);
            ys.push(pt.1);
            fig.series.push(Series::Points {
                label: p.method.clone(),
                points: vec![pt],
                color: color(3 + i),
                radius: 6,
            });
        }
        let (lo, hi) = xs
            .iter()
            .filter(|x| **x > 0.0 && x.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lo.is_finite() {
            let x_range = (lo / 2.0, hi * 2.0);
            fig.x_range = Some(x_range);
            fig.series.push(Series::Line {
                label: "true weights (reference)".into(),
                points: vec![(x_range.0, sec.truth.mean), (x_range.1, sec.truth.mean)],
                color: color(0),
                dashed: true,
            });
            let y_lo = ys
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            let y_hi = ys
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            if y_lo.is_finite() && y_hi.is_finite() {
                let pad = 0.08 * (y_hi - y_lo).max(0.05);
                let range = (y_lo - pad, y_hi + pad);
                fig.y_range = Some(range);
                // The paper-rule curves can run far above the others at small budgets.
                clip_to_y_range(&mut fig, range);
            }
        }
        let name = format!("bnn-{}.png", sec.label);
        files.push(save_figure(&fig, dir, &name)?);
        sec.plot = Some(name);
    }
    Ok(files)
}

fn opt_num(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The Markdown report.
pub fn markdown(r: &BnnResult) -> String {
    let mut s = r
        .run
        .header("bnn: PFN vs SVI vs NUTS on the paper's BNN classification prior");
    let _ = writeln!(
        s,
        "- datasets: {POINTS} points each from the BNN prior (all weights N(0, 1), x ~ N(0, I), no nonlinearity, labels ~ Bernoulli(softmax)); first {REVEALED} revealed, {} scored",
        POINTS - REVEALED
    );
    let _ = writeln!(
        s,
        "- budgets: {} (SVI: steps = predictive samples; NUTS: warm-up = kept draws, one chain)",
        r.budgets
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "- models: {}", r.model_source);
    for (path, why) in &r.skipped_models {
        let _ = writeln!(s, "  - skipped `{path}`: {why}");
    }
    let _ = writeln!(
        s,
        "\nBCE = mean binary cross-entropy over the 200 test points, PyTorch's log clamp; ± is the 95% confidence interval of the mean over datasets. Baselines are scored with the averaged class-1 probability (the posterior predictive: curves and speed-ups) and with the paper's rule (fraction of samples whose drawn label is 1, noisy and capped at 100 nats per point). Times are per dataset (median), one thread, including fitting/sampling and predicting (the PFN: context normalisation and one forward pass per dataset; the rows marked *batched*: the same PFN answering all datasets in batched forward passes, `Predictor::class_probabilities_many`, as the paper timed its PFN, with the total time divided by the number of datasets; its BCE equals the one-at-a-time row up to float rounding); in the paper the PFN and SVI ran on a V100 and NUTS on a CPU.\n"
    );
    for sec in &r.sections {
        let _ = writeln!(
            s,
            "## BNN {}: {} features, {} hidden units\n",
            sec.label, sec.features, sec.hidden
        );
        if sec.models.is_empty() {
            let _ = writeln!(s, "**{NO_MODEL}** for {} features (give a 2-class model with `--model`, or put one in the models directory); SVI and NUTS are reported alone.\n", sec.features);
        } else {
            for m in &sec.models {
                let _ = writeln!(s, "- {}", m.describe());
                if !trained_on_bnn_classification(&m.prior) {
                    let _ = writeln!(s, "  - **note**: trained on prior `{}`, not on this experiment's BNN classification prior; its score measures transfer, not the paper's setting", m.prior);
                }
            }
            let _ = writeln!(s);
        }
        let mut t = MarkdownTable::new(&[
            "method",
            "budget",
            "median time / dataset",
            "BCE (averaged p)",
            "BCE (paper's rule)",
            "mean max R-hat",
            "mean min ESS",
        ]);
        t.row(vec![
            "true weights (reference)".into(),
            "–".into(),
            "–".into(),
            fmt_ci(&sec.truth),
            "–".into(),
            "–".into(),
            "–".into(),
        ]);
        for p in sec.pfn.iter().chain(&sec.svi).chain(&sec.nuts) {
            t.row(vec![
                p.method.clone(),
                p.budget.map_or("–".into(), |b| b.to_string()),
                fmt_secs(p.seconds.median),
                fmt_ci(&p.bce),
                p.bce_paper_rule.as_ref().map_or("–".into(), fmt_ci),
                opt_num(p.mean_max_rhat, 2),
                opt_num(p.mean_min_ess, 1),
            ]);
        }
        s.push_str(&t.render());
        let _ = writeln!(s);
        if sec.pfn.is_empty() {
            let _ = writeln!(s, "{NO_MODEL}: no speed-up to report.\n");
        } else {
            let mut t = MarkdownTable::new(&[
                "PFN",
                "baseline",
                "budget reaching the PFN's BCE",
                "time ratio (baseline / PFN)",
            ]);
            for u in &sec.speed_ups {
                t.row(vec![
                    u.pfn.clone(),
                    u.baseline.clone(),
                    u.matching_budget
                        .map_or("none of the budgets".into(), |b| b.to_string()),
                    if u.matching_budget.is_some() {
                        fmt_ratio(u.time_ratio)
                    } else {
                        format!("> {}", fmt_ratio(u.time_ratio))
                    },
                ]);
            }
            s.push_str(&t.render());
            let _ = writeln!(s, "\nThe paper reports 1 000× over SVI and 10 000× over NUTS to reach the same BCE (PFN on a GPU).\n");
        }
        if let Some(p) = &sec.plot {
            let _ = writeln!(s, "![{p}]({p})\n");
        }
    }
    s
}
