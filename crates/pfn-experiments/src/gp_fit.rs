//! `gp-fit` (paper Fig. 3/4a, spec §6.1): the Prior-Data NLL per context size of one or more PFN
//! artifacts (e.g. several training budgets) against the exact GP on held-out datasets of the
//! models' GP prior.
//!
//! Protocol (as `pfn eval` and the reference results): every dataset has `q + 1` points,
//! `q = max(sizes)`; for context size `n` the context is the first `n` points and the query is
//! point `q`, the same held-out point for every `n`. The score is the negative log predictive
//! density of its target; the exact GP uses each dataset's true hyperparameters, and the gap is
//! the paired difference PFN − GP in nats (the expected KL divergence from the true posterior
//! predictive). Models of different priors get separate sections; without any model the exact GP
//! is still evaluated on the paper's `gp-1d` (Fig. 3) and `gp-5d` (Fig. 4a) priors.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use pfn_plot::Figure;
use serde::Serialize;

use crate::datasets::{dataset_seed, is_gp_prior, HeldOut};
use crate::error::ExperimentError;
use crate::figures::{add_curve, color};
use crate::models::{select_models, LoadedModel, ModelInfo};
use crate::options::ExperimentOptions;
use crate::prior_nll::{
    default_context_sizes, exact_gp_scores, pfn_scores, REFERENCE_CONTEXT_SIZES,
};
use crate::progress::{Progress, ProgressMode};
use crate::report::{fmt_ci, fmt_num, fmt_secs, save_figure, MarkdownTable, RunInfo, NO_MODEL};
use crate::stats::{mean, Summary};

const NAME: &str = "gp-fit";

/// Priors evaluated (exact GP only) when no model is available.
pub const DEFAULT_PRIORS: &[(&str, usize)] = &[("gp-1d", 1), ("gp-5d", 5)];

/// One model's scores in a section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpFitModel {
    /// The model.
    pub model: ModelInfo,
    /// PFN NLL per context size.
    pub nll: Vec<Summary>,
    /// Paired gap PFN − exact GP per context size (nats).
    pub gap: Vec<Summary>,
    /// Mean over context sizes of the mean NLL.
    pub mean_nll: f64,
    /// Mean over context sizes of the mean gap.
    pub mean_gap: f64,
    /// Wall time of the PFN predictions (all datasets and sizes).
    pub seconds: f64,
}

/// The scores on one prior.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpFitSection {
    /// Registry name of the prior.
    pub prior: String,
    /// Input features.
    pub num_features: usize,
    /// Number of held-out datasets.
    pub datasets: usize,
    /// Index of the query point in each dataset.
    pub query_index: usize,
    /// Context sizes.
    pub sizes: Vec<usize>,
    /// Exact GP NLL per context size.
    pub exact_gp: Vec<Summary>,
    /// Mean over context sizes of the exact GP's mean NLL.
    pub mean_exact_gp: f64,
    /// Wall time of the exact GP (all datasets and sizes).
    pub gp_seconds: f64,
    /// The models of this prior (empty: no model available).
    pub models: Vec<GpFitModel>,
    /// Plot files (names inside the output directory).
    pub plots: Vec<String>,
}

/// The result of a `gp-fit` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpFitResult {
    /// Provenance.
    pub run: RunInfo,
    /// Seed of the held-out datasets (`pfn_experiments::datasets::dataset_seed(seed)`).
    pub dataset_seed: u64,
    /// Where the models came from.
    pub model_source: String,
    /// Files in the models directory that were not used, with the reason.
    pub skipped_models: Vec<(String, String)>,
    /// One section per prior.
    pub sections: Vec<GpFitSection>,
}

/// Which models `gp-fit` accepts: a regression head on a prior with GP hyperparameters.
fn accept(m: &LoadedModel) -> Result<(), String> {
    if !m.predictor.is_regression() {
        return Err(
            "it is a classification model; gp-fit needs a regression (Riemann) head".into(),
        );
    }
    // Held-out datasets come from the registry prior by name, with its default parameters, and
    // are shared by every model of that name: a model trained with other parameters would be
    // scored on a prior it was not trained on.
    let params = m.predictor.metadata().prior_params();
    if !params.is_empty() {
        return Err(format!(
            "it was trained with [prior.params] {}, and gp-fit scores on the registry's default prior; `pfn eval` scores a model on its own prior with its parameters",
            serde_json::to_string(&params).unwrap_or_default()
        ));
    }
    match is_gp_prior(m.prior(), m.predictor.num_features()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "its prior '{}' does not record GP hyperparameters, so there is no exact GP to compare with",
            m.prior()
        )),
        Err(e) => Err(format!("its prior '{}' is not usable: {e}", m.prior())),
    }
}

/// Runs `gp-fit` and returns its results ([`plot`] draws the figures, [`markdown`] the report).
pub fn run(options: &ExperimentOptions, run: RunInfo) -> Result<GpFitResult, ExperimentError> {
    let selection = select_models(
        NAME,
        &options.models,
        options.models_dir.as_deref(),
        (0, options.precision),
        accept,
    )?;
    // Group the models by (prior, features), keeping first-seen order.
    let mut groups: Vec<(String, usize, Vec<&LoadedModel>)> = Vec::new();
    for m in &selection.models {
        let key = (m.prior().to_string(), m.predictor.num_features());
        match groups.iter_mut().find(|g| g.0 == key.0 && g.1 == key.1) {
            Some(g) => g.2.push(m),
            None => groups.push((key.0, key.1, vec![m])),
        }
    }
    if groups.is_empty() {
        groups = DEFAULT_PRIORS
            .iter()
            .map(|&(p, f)| (p.to_string(), f, Vec::new()))
            .collect();
    }
    let datasets = options.num_datasets();
    let seed = dataset_seed(options.seed);
    let mut plan = Vec::new();
    for (prior, f, models) in &groups {
        let sizes = match &options.sizes {
            Some(s) => {
                let mut s = s.clone();
                s.sort_unstable();
                s.dedup();
                for m in models {
                    let max = m.predictor.max_trained_context();
                    if let Some(&n) = s.iter().find(|&&n| n > max) {
                        return Err(m.mismatch(
                            NAME,
                            format!("--sizes asks for context size {n} but it was trained with contexts of at most {max} points"),
                        ));
                    }
                }
                s
            }
            None => match models
                .iter()
                .map(|m| m.predictor.max_trained_context())
                .min()
            {
                Some(max) => default_context_sizes(
                    models
                        .iter()
                        .map(|m| m.predictor.min_trained_context())
                        .max()
                        .unwrap_or(0),
                    max,
                ),
                None => REFERENCE_CONTEXT_SIZES.to_vec(),
            },
        };
        plan.push((prior.clone(), *f, models.clone(), sizes));
    }
    let total: u64 = plan
        .iter()
        .map(|(_, _, models, _)| (datasets * (1 + models.len())) as u64)
        .sum();
    let mode = if options.progress {
        ProgressMode::Auto
    } else {
        ProgressMode::Hidden
    };
    let mut progress = Progress::new(mode, NAME, total);
    let mut sections = Vec::new();
    for (prior_name, f, models, sizes) in plan {
        let q = *sizes.last().expect("sizes are non-empty");
        let prior =
            pfn_prior::prior_by_name(&prior_name).map_err(|source| ExperimentError::Prior {
                prior: prior_name.clone(),
                source,
            })?;
        let held_out = HeldOut::sample(prior.as_ref(), &prior_name, seed, datasets, q + 1, f)?;
        progress.stage(&format!("{prior_name}: exact GP"));
        let t0 = Instant::now();
        let gp = exact_gp_scores(&held_out, &sizes, q)?.ok_or_else(|| ExperimentError::Option {
            option: "--models",
            problem: format!("the datasets of prior '{prior_name}' record no GP hyperparameters"),
        })?;
        progress.advance(datasets as u64);
        let gp_seconds = t0.elapsed().as_secs_f64();
        let mut model_results = Vec::new();
        for m in models {
            progress.stage(&format!("{prior_name}: PFN {}", m.label));
            let t0 = Instant::now();
            let nll = pfn_scores(&m.predictor, &m.label, &held_out, &sizes, q)?;
            progress.advance(datasets as u64);
            let seconds = t0.elapsed().as_secs_f64();
            let gap: Vec<Summary> = nll
                .iter()
                .zip(&gp)
                .map(|(p, g)| {
                    let d: Vec<f64> = p.iter().zip(g).map(|(a, b)| a - b).collect();
                    Summary::of(&d)
                })
                .collect();
            let nll: Vec<Summary> = nll.iter().map(|v| Summary::of(v)).collect();
            model_results.push(GpFitModel {
                model: m.info(),
                mean_nll: mean(&nll.iter().map(|s| s.mean).collect::<Vec<_>>()),
                mean_gap: mean(&gap.iter().map(|s| s.mean).collect::<Vec<_>>()),
                nll,
                gap,
                seconds,
            });
        }
        let exact_gp: Vec<Summary> = gp.iter().map(|v| Summary::of(v)).collect();
        sections.push(GpFitSection {
            mean_exact_gp: mean(&exact_gp.iter().map(|s| s.mean).collect::<Vec<_>>()),
            prior: prior_name,
            num_features: f,
            datasets,
            query_index: q,
            sizes,
            exact_gp,
            gp_seconds,
            models: model_results,
            plots: Vec::new(),
        });
    }
    progress.finish();
    Ok(GpFitResult {
        run,
        dataset_seed: seed,
        model_source: selection.source,
        skipped_models: selection.skipped,
        sections,
    })
}

/// Draws the section's plots into `dir` and records their names.
pub fn plot(
    section: &mut GpFitSection,
    dir: &std::path::Path,
) -> Result<Vec<PathBuf>, ExperimentError> {
    let xs: Vec<f64> = section.sizes.iter().map(|&n| n as f64).collect();
    let mut fig = Figure::new(
        &format!(
            "Prior-data NLL on {} held-out '{}' datasets (95% CI)",
            section.datasets, section.prior
        ),
        "context size n",
        "NLL of the held-out point (nats)",
    );
    add_curve(
        &mut fig,
        "exact GP",
        &xs,
        &section.exact_gp,
        color(0),
        true,
        true,
    );
    for (i, m) in section.models.iter().enumerate() {
        add_curve(
            &mut fig,
            &format!(
                "PFN {} ({} datasets)",
                m.model.label, m.model.training_datasets
            ),
            &xs,
            &m.nll,
            color(i + 1),
            false,
            true,
        );
    }
    let mut files = Vec::new();
    let name = format!("{NAME}-{}-nll.png", section.prior);
    files.push(save_figure(&fig, dir, &name)?);
    section.plots.push(name);
    if !section.models.is_empty() {
        let mut gap = Figure::new(
            &format!("PFN − exact GP on '{}' (paired, 95% CI)", section.prior),
            "context size n",
            "NLL gap (nats)",
        );
        for (i, m) in section.models.iter().enumerate() {
            add_curve(
                &mut gap,
                &m.model.label,
                &xs,
                &m.gap,
                color(i + 1),
                false,
                true,
            );
        }
        let name = format!("{NAME}-{}-gap.png", section.prior);
        files.push(save_figure(&gap, dir, &name)?);
        section.plots.push(name);
    }
    Ok(files)
}

/// The Markdown report.
pub fn markdown(r: &GpFitResult) -> String {
    let mut s = r
        .run
        .header("gp-fit: PFN vs exact GP, prior-data NLL per context size");
    let _ = writeln!(
        s,
        "- held-out datasets: seed {} (`dataset_seed({})`, disjoint from training and validation streams); `pfn eval --seed {}` scores the same datasets",
        r.dataset_seed, r.run.seed, r.dataset_seed
    );
    let _ = writeln!(s, "- models: {}", r.model_source);
    for (path, why) in &r.skipped_models {
        let _ = writeln!(s, "  - skipped `{path}`: {why}");
    }
    let _ = writeln!(
        s,
        "\nProtocol: each dataset has q + 1 points; for context size n the context is its first n points and the query is point q (fixed per dataset). NLL = −log p(y_q | context); the exact GP uses the dataset's true hyperparameters. The gap is paired (PFN − GP on the same points) and is the expected KL divergence from the true posterior predictive. ± is the 95% confidence interval of the mean over datasets (Student t).\n"
    );
    for sec in &r.sections {
        let _ = writeln!(
            s,
            "## Prior `{}` ({} feature{})\n",
            sec.prior,
            sec.num_features,
            if sec.num_features == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "{} datasets of {} points, query = point {}; exact GP wall time {}.\n",
            sec.datasets,
            sec.query_index + 1,
            sec.query_index,
            fmt_secs(sec.gp_seconds)
        );
        if sec.models.is_empty() {
            let _ = writeln!(s, "**{NO_MODEL}** for this prior (give one with `--model`, or put a `*.pfn` trained on `{}` in the models directory); only the exact GP is reported.\n", sec.prior);
        } else {
            for m in &sec.models {
                let _ = writeln!(
                    s,
                    "- {}; PFN wall time {}",
                    m.model.describe(),
                    fmt_secs(m.seconds)
                );
            }
            let _ = writeln!(s);
        }
        let mut header = vec!["n".to_string(), "exact GP NLL".to_string()];
        for m in &sec.models {
            header.push(format!("{} NLL", m.model.label));
            header.push(format!("{} gap", m.model.label));
        }
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut t = MarkdownTable::new(&header_refs);
        for (si, &n) in sec.sizes.iter().enumerate() {
            let mut row = vec![n.to_string(), fmt_ci(&sec.exact_gp[si])];
            for m in &sec.models {
                row.push(fmt_ci(&m.nll[si]));
                row.push(fmt_ci(&m.gap[si]));
            }
            t.row(row);
        }
        let mut row = vec!["**mean**".to_string(), fmt_num(sec.mean_exact_gp)];
        for m in &sec.models {
            row.push(fmt_num(m.mean_nll));
            row.push(format!("**{}**", fmt_num(m.mean_gap)));
        }
        t.row(row);
        s.push_str(&t.render());
        if !sec.models.is_empty() {
            let _ = writeln!(s);
            for m in &sec.models {
                let _ = writeln!(
                    s,
                    "Mean gap of `{}` ({} training datasets): **{:.3} nats** over the context sizes above.",
                    m.model.label,
                    m.model.training_datasets,
                    m.mean_gap
                );
            }
        }
        let _ = writeln!(s);
        for p in &sec.plots {
            let _ = writeln!(s, "![{p}]({p})\n");
        }
    }
    s
}
