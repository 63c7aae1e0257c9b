//! `gp-hyper` (paper Fig. 4b, spec §6.2): on datasets from the GP hyper-prior (Matérn-5/2 ARD,
//! the paper's Gamma hyper-priors), the PFN against type-II ML (MAP), NUTS with 32+32 and
//! 256+256 steps, and the oracle exact GP with the true hyperparameters: NLL per context size
//! and wall time per dataset, with the PFN's speed-up over each baseline.
//!
//! Protocol: every dataset has `max(sizes) + 20` points; the last 20 are the held-out test
//! points, and for context size `n` the context is the first `n` points. A method's score on a
//! dataset is the mean negative log predictive density of the 20 test targets; its time is the
//! wall time of fitting and predicting for that dataset (one thread, datasets one after another,
//! every method on the same machine and datasets). NUTS uses the data prior's model with the
//! noise above the prior's floor ([`pfn_baselines::NoiseModel::ShiftedGamma`]); type-II ML is
//! MAP under the same hyper-priors with one random start (BoTorch's fit, the paper's MLE-II).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pfn_baselines::{
    exact_gp_baseline, fit_gp_nuts, fit_type2_baseline, GpNutsOptions, NutsOptions,
};
use pfn_gp::{HyperBounds, HyperPrior, PriorSpace, Type2Options};
use pfn_infer::Task;
use pfn_plot::Figure;
use pfn_prior::rng::derive_key;
use pfn_prior::{Baseline, GpHyperPrior, GpHyperPriorConfig};
use serde::Serialize;

use crate::datasets::{dataset_seed, Dataset, HeldOut};
use crate::error::ExperimentError;
use crate::figures::{add_curve, clip_to_y_range, color, robust_y_range};
use crate::models::{select_models, LoadedModel, ModelInfo};
use crate::options::ExperimentOptions;
use crate::progress::{Progress, ProgressMode};
use crate::report::{
    fmt_ci, fmt_num, fmt_ratio, fmt_secs, save_figure, MarkdownTable, RunInfo, NO_MODEL,
};
use crate::stats::{mean, Summary};

const NAME: &str = "gp-hyper";

/// Held-out test points per dataset.
pub const TEST_POINTS: usize = 20;

/// The prior used when no model names one.
pub const DEFAULT_PRIOR: &str = "gp-hyper";

/// Input features when no model sets them.
pub const DEFAULT_FEATURES: usize = 1;

/// Domain tag of the baselines' seeds.
const SEED_DOMAIN: u64 = 0x6770_6879_7065_7200;

/// The hyper-prior configuration of a registry prior name, if the registry lists the GP
/// hyper-prior baselines for it (`pfn_prior::Baseline::GpHyperInference`).
pub fn hyper_prior_config(name: &str) -> Option<GpHyperPriorConfig> {
    pfn_prior::prior_entry(name)
        .filter(|e| e.has_baseline(Baseline::GpHyperInference))
        .and_then(|e| e.gp_hyper_prior())
}

/// The registry name of the prior the held-out datasets of a model of prior `name` come from:
/// the first registered prior with the same hyper-prior. The held-out data are drawn from the
/// hyper-prior alone, so a model trained on a variant with tied or repeated inputs
/// (`gp-hyper-5d-ties`) is scored on the plain prior's data (`gp-hyper-5d`), and models of the two
/// can be compared in one run.
fn data_prior_name(name: &str) -> Option<&'static str> {
    let config = hyper_prior_config(name)?;
    pfn_prior::PRIORS
        .iter()
        .find(|e| hyper_prior_config(e.name).as_ref() == Some(&config))
        .map(|e| e.name)
}

/// What a method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum MethodKind {
    /// A PFN model (index into the run's models).
    Pfn {
        /// Index of the model.
        model: usize,
    },
    /// The same PFN model answering all datasets of one context size in batched forward passes
    /// (`Predictor::predict_many`, the way the paper timed its PFN); its time per dataset is the
    /// pass time divided by the number of datasets.
    PfnBatched {
        /// Index of the model.
        model: usize,
    },
    /// The exact GP with the true hyperparameters.
    Oracle,
    /// Type-II ML / MAP with one start.
    Type2,
    /// NUTS with `steps` warm-up and `steps` draws.
    Nuts {
        /// Warm-up steps = draws.
        steps: u64,
    },
}

impl MethodKind {
    /// The method's part of its sampler seeds: fixed per method, so that a baseline's draws do not
    /// depend on which other methods (e.g. how many PFN models) the run compares.
    pub fn seed_tag(&self) -> u64 {
        match *self {
            MethodKind::Pfn { .. } | MethodKind::PfnBatched { .. } | MethodKind::Oracle => 0,
            MethodKind::Type2 => 1,
            MethodKind::Nuts { steps } => (2 << 56) | steps,
        }
    }
}

/// One method's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResult {
    /// Display name.
    pub name: String,
    /// What it is.
    pub kind: MethodKind,
    /// NLL per context size.
    pub nll: Vec<Summary>,
    /// Paired NLL − oracle NLL per context size.
    pub gap: Vec<Summary>,
    /// Wall time per dataset (seconds) per context size.
    pub seconds: Vec<Summary>,
    /// Mean over context sizes of the mean NLL.
    pub mean_nll: f64,
    /// Gap to the oracle over all (dataset, context size) pairs.
    pub overall_gap: Summary,
    /// Wall time per dataset over all (dataset, context size) pairs.
    pub overall_seconds: Summary,
    /// Total wall time.
    pub total_seconds: f64,
    /// NUTS only: divergent transitions among the kept draws, and the number of kept draws.
    pub divergences: Option<(usize, u64)>,
}

/// The PFN's speed-up over a baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedUp {
    /// The PFN method.
    pub pfn: String,
    /// The baseline.
    pub baseline: String,
    /// Ratio of the median wall times per dataset (baseline / PFN).
    pub median_ratio: f64,
    /// Ratio of the total wall times.
    pub total_ratio: f64,
}

/// The result of a `gp-hyper` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpHyperResult {
    /// Provenance.
    pub run: RunInfo,
    /// Seed of the held-out datasets.
    pub dataset_seed: u64,
    /// Registry name of the data prior.
    pub prior: String,
    /// Its hyper-priors.
    pub prior_config: GpHyperPriorConfig,
    /// Input features.
    pub num_features: usize,
    /// Context sizes.
    pub sizes: Vec<usize>,
    /// Held-out test points per dataset.
    pub test_points: usize,
    /// Where the models came from.
    pub model_source: String,
    /// Files in the models directory that were not used, with the reason.
    pub skipped_models: Vec<(String, String)>,
    /// The PFN models (empty: no model available).
    pub models: Vec<ModelInfo>,
    /// Every method, PFNs first, then the oracle, type-II ML and NUTS.
    pub methods: Vec<MethodResult>,
    /// PFN speed-ups over each baseline.
    pub speed_ups: Vec<SpeedUp>,
    /// Plot files (names inside the output directory).
    pub plots: Vec<String>,
}

/// Per-method raw values: `[size][dataset]`.
struct Raw {
    nll: Vec<Vec<f64>>,
    secs: Vec<Vec<f64>>,
    divergences: usize,
    draws: u64,
}

impl Raw {
    fn new(sizes: usize, datasets: usize) -> Self {
        Self {
            nll: vec![Vec::with_capacity(datasets); sizes],
            secs: vec![Vec::with_capacity(datasets); sizes],
            divergences: 0,
            draws: 0,
        }
    }
}

/// Mean NLL of the PFN on the test points given the first `n` points, and its wall time.
fn pfn_score(
    m: &LoadedModel,
    d: &Dataset,
    f: usize,
    n: usize,
    first_test: usize,
    i: usize,
) -> Result<(f64, f64), ExperimentError> {
    let err = |source| ExperimentError::Predict {
        model: m.label.clone(),
        dataset: i,
        source,
    };
    let start = Instant::now();
    let mut ctx = m
        .predictor
        .context_with_features(&d.x[..n * f], &d.y[..n], f)
        .map_err(err)?;
    let preds = ctx.predict(&d.x[first_test * f..]).map_err(err)?;
    let secs = start.elapsed().as_secs_f64();
    let targets = &d.target_y[first_test..];
    let nll = preds
        .iter()
        .zip(targets)
        .map(|(p, &y)| p.nll(y))
        .sum::<f64>()
        / targets.len() as f64;
    Ok((nll, secs))
}

/// Runs `gp-hyper` and returns its results.
pub fn run(options: &ExperimentOptions, run: RunInfo) -> Result<GpHyperResult, ExperimentError> {
    let sizes = options.gp_hyper_sizes();
    let max_n = *sizes.last().expect("validated non-empty");
    let selection = select_models(
        NAME,
        &options.models,
        options.models_dir.as_deref(),
        (1, options.precision),
        |m: &LoadedModel| {
            if !m.predictor.is_regression() {
                return Err(
                    "it is a classification model; gp-hyper needs a regression head".into(),
                );
            }
            if hyper_prior_config(m.prior()).is_none() {
                return Err(format!(
                    "it was trained on prior '{}'; gp-hyper needs a model of 'gp-hyper', 'gp-hyper-code' or 'gp-hyper-5d'",
                    m.prior()
                ));
            }
            let max = m.predictor.max_trained_context();
            if max < max_n {
                return Err(format!(
                    "it was trained with contexts of at most {max} points but the run needs {max_n} (choose smaller --sizes)"
                ));
            }
            if let Some(f) = options.features {
                let (lo, hi) = m.predictor.feature_range();
                if !(lo..=hi).contains(&f) {
                    return Err(format!(
                        "it takes {lo} to {hi} features but the run asks for {f} (--features)"
                    ));
                }
            }
            Ok(())
        },
    )?;
    // The data have `--features` dimensions when given. Otherwise a model that accepts fewer
    // features than its width (trained with a variable number of features, e.g. `gp-hyper-5d`)
    // is evaluated on `DEFAULT_FEATURES`-dimensional data.
    let features_of = |m: &LoadedModel| {
        let (lo, hi) = m.predictor.feature_range();
        if let Some(f) = options.features {
            f
        } else if (lo..=hi).contains(&DEFAULT_FEATURES) {
            DEFAULT_FEATURES
        } else {
            hi
        }
    };
    let data_prior_of = |m: &LoadedModel| data_prior_name(m.prior()).expect("checked by accept");
    let (prior_name, f) = match selection.models.first() {
        Some(m) => (data_prior_of(m).to_string(), features_of(m)),
        None => (
            DEFAULT_PRIOR.to_string(),
            options.features.unwrap_or(DEFAULT_FEATURES),
        ),
    };
    for m in &selection.models {
        if data_prior_of(m) != prior_name || features_of(m) != f {
            return Err(m.mismatch(
                NAME,
                format!(
                    "its data prior '{}' with {} features differs from '{}' with {} features of model {}; compare models of one data prior per run",
                    data_prior_of(m),
                    features_of(m),
                    prior_name,
                    f,
                    selection.models[0].path.display()
                ),
            ));
        }
    }
    let config = hyper_prior_config(&prior_name).expect("checked by accept or the default");
    let prior = GpHyperPrior::new(config.clone()).map_err(|source| ExperimentError::Prior {
        prior: prior_name.clone(),
        source,
    })?;
    let datasets = options.num_datasets();
    let seed = dataset_seed(options.seed);
    let seq_len = max_n + TEST_POINTS;
    let held_out = HeldOut::sample(&prior, &prior_name, seed, datasets, seq_len, f)?;

    let nuts_base = GpNutsOptions::from_prior_config(&config, NutsOptions::default());
    let map_prior = HyperPrior {
        space: PriorSpace::Hyperparameter,
        ..nuts_base.prior
    };
    let type2 = |seed: u64| Type2Options {
        restarts: 1,
        seed,
        prior: Some(map_prior),
        bounds: HyperBounds {
            noise: (config.noise_floor.max(1e-6), 1e4),
            ..HyperBounds::default()
        },
        ..Type2Options::default()
    };
    let mut kinds: Vec<(String, MethodKind)> = selection
        .models
        .iter()
        .enumerate()
        .flat_map(|(k, m)| {
            [
                (format!("PFN {}", m.label), MethodKind::Pfn { model: k }),
                (
                    format!("PFN {} batched", m.label),
                    MethodKind::PfnBatched { model: k },
                ),
            ]
        })
        .collect();
    kinds.push(("exact GP (true hyperparameters)".into(), MethodKind::Oracle));
    kinds.push(("ML-II (MAP, 1 start)".into(), MethodKind::Type2));
    kinds.push(("NUTS 32+32".into(), MethodKind::Nuts { steps: 32 }));
    kinds.push(("NUTS 256+256".into(), MethodKind::Nuts { steps: 256 }));
    let mut raw: Vec<Raw> = kinds
        .iter()
        .map(|_| Raw::new(sizes.len(), datasets))
        .collect();

    let mode = if options.progress {
        ProgressMode::Auto
    } else {
        ProgressMode::Hidden
    };
    let mut progress = Progress::new(mode, NAME, (datasets * sizes.len()) as u64);
    let first_test = max_n;
    // Batched PFNs first: every context size in one call over all datasets.
    let data: Vec<Dataset> = (0..datasets)
        .map(|i| held_out.get(i).expect("index in range"))
        .collect();
    for (k, (_, kind)) in kinds.iter().enumerate() {
        let MethodKind::PfnBatched { model } = *kind else {
            continue;
        };
        let m = &selection.models[model];
        for (si, &n) in sizes.iter().enumerate() {
            let tasks: Vec<Task<'_>> = data
                .iter()
                .map(|d| Task {
                    x: &d.x[..n * f],
                    y: &d.y[..n],
                    x_query: &d.x[first_test * f..],
                    features: f,
                })
                .collect();
            let start = Instant::now();
            let answers =
                m.predictor
                    .predict_many(&tasks)
                    .map_err(|source| ExperimentError::Predict {
                        model: m.label.clone(),
                        dataset: match &source {
                            pfn_infer::PredictError::Task { task, .. } => *task,
                            _ => 0,
                        },
                        source,
                    })?;
            let secs = start.elapsed().as_secs_f64() / datasets.max(1) as f64;
            for (d, a) in data.iter().zip(&answers) {
                let targets = &d.target_y[first_test..];
                let nll = a.iter().zip(targets).map(|(p, &y)| p.nll(y)).sum::<f64>()
                    / targets.len() as f64;
                raw[k].nll[si].push(nll);
                raw[k].secs[si].push(secs);
            }
        }
    }
    for i in 0..datasets {
        let d = held_out.get(i).expect("index in range");
        let truth = d.gp.clone().ok_or_else(|| ExperimentError::Prior {
            prior: prior_name.clone(),
            source: pfn_prior::PriorError::invalid("hyperparameters", "not recorded"),
        })?;
        let x_test = &d.x[first_test * f..];
        let y_test = &d.target_y[first_test..];
        progress.stage(&format!("dataset {}/{datasets}", i + 1));
        for (si, &n) in sizes.iter().enumerate() {
            let (xc, yc) = (&d.x[..n * f], &d.y[..n]);
            for (k, (name, kind)) in kinds.iter().enumerate() {
                let method = || format!("{name} (n = {n})");
                let base_err = |source| ExperimentError::Baseline {
                    method: method(),
                    dataset: i,
                    source,
                };
                let run_seed = derive_key(
                    SEED_DOMAIN,
                    options.seed,
                    &[i as u64, n as u64, kind.seed_tag()],
                );
                let (nll, secs) = match *kind {
                    MethodKind::PfnBatched { .. } => continue,
                    MethodKind::Pfn { model } => {
                        pfn_score(&selection.models[model], &d, f, n, first_test, i)?
                    }
                    MethodKind::Oracle => {
                        let r = exact_gp_baseline(xc, yc, f, x_test, &truth).map_err(base_err)?;
                        (
                            r.predictive.nll(y_test).map_err(base_err)?,
                            r.wall_time.as_secs_f64(),
                        )
                    }
                    MethodKind::Type2 => {
                        let r = fit_type2_baseline(
                            xc,
                            yc,
                            f,
                            x_test,
                            config.kernel,
                            config.ard,
                            &type2(run_seed),
                        )
                        .map_err(base_err)?;
                        (
                            r.predictive.nll(y_test).map_err(base_err)?,
                            r.wall_time.as_secs_f64(),
                        )
                    }
                    MethodKind::Nuts { steps } => {
                        let opts = GpNutsOptions {
                            nuts: NutsOptions::steps(steps, run_seed),
                            ..nuts_base.clone()
                        };
                        let r = fit_gp_nuts(xc, yc, f, x_test, &opts).map_err(base_err)?;
                        raw[k].divergences += r.posterior.run.diagnostics.divergences;
                        raw[k].draws += steps;
                        (
                            r.predictive.nll(y_test).map_err(base_err)?,
                            r.wall_time.as_secs_f64(),
                        )
                    }
                };
                raw[k].nll[si].push(nll);
                raw[k].secs[si].push(secs);
            }
            progress.advance(1);
        }
    }
    progress.finish();

    let oracle_index = kinds
        .iter()
        .position(|(_, k)| *k == MethodKind::Oracle)
        .expect("the oracle is always run");
    let oracle_nll = raw[oracle_index].nll.clone();
    let methods: Vec<MethodResult> = kinds
        .iter()
        .zip(&raw)
        .map(|((name, kind), r)| {
            let gaps: Vec<Vec<f64>> = r
                .nll
                .iter()
                .zip(&oracle_nll)
                .map(|(a, o)| a.iter().zip(o).map(|(x, y)| x - y).collect())
                .collect();
            let nll: Vec<Summary> = r.nll.iter().map(|v| Summary::of(v)).collect();
            let all_secs: Vec<f64> = r.secs.iter().flatten().copied().collect();
            MethodResult {
                name: name.clone(),
                kind: *kind,
                mean_nll: mean(&nll.iter().map(|s| s.mean).collect::<Vec<_>>()),
                nll,
                gap: gaps.iter().map(|v| Summary::of(v)).collect(),
                seconds: r.secs.iter().map(|v| Summary::of(v)).collect(),
                overall_gap: Summary::of(&gaps.concat()),
                overall_seconds: Summary::of(&all_secs),
                total_seconds: all_secs.iter().sum(),
                divergences: matches!(kind, MethodKind::Nuts { .. })
                    .then_some((r.divergences, r.draws)),
            }
        })
        .collect();
    let mut speed_ups = Vec::new();
    for p in methods.iter().filter(|m| {
        matches!(
            m.kind,
            MethodKind::Pfn { .. } | MethodKind::PfnBatched { .. }
        )
    }) {
        for b in methods
            .iter()
            .filter(|m| matches!(m.kind, MethodKind::Type2 | MethodKind::Nuts { .. }))
        {
            speed_ups.push(SpeedUp {
                pfn: p.name.clone(),
                baseline: b.name.clone(),
                median_ratio: b.overall_seconds.median / p.overall_seconds.median,
                total_ratio: b.total_seconds / p.total_seconds,
            });
        }
    }
    Ok(GpHyperResult {
        run,
        dataset_seed: seed,
        prior: prior_name,
        prior_config: config,
        num_features: f,
        sizes,
        test_points: TEST_POINTS,
        model_source: selection.source,
        skipped_models: selection.skipped,
        models: selection.models.iter().map(LoadedModel::info).collect(),
        methods,
        speed_ups,
        plots: Vec::new(),
    })
}

/// Draws the NLL and wall-time plots into `dir` and records their names.
pub fn plot(r: &mut GpHyperResult, dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let xs: Vec<f64> = r.sizes.iter().map(|&n| n as f64).collect();
    let mut nll = Figure::new(
        &format!(
            "'{}', {} feature{}: NLL (95% CI, {} datasets)",
            r.prior,
            r.num_features,
            if r.num_features == 1 { "" } else { "s" },
            r.run.datasets
        ),
        "context size n",
        "mean NLL per test point (nats)",
    );
    for (i, m) in r.methods.iter().enumerate() {
        let oracle = m.kind == MethodKind::Oracle;
        add_curve(&mut nll, &m.name, &xs, &m.nll, color(i), oracle, true);
    }
    let curves: Vec<&[Summary]> = r.methods.iter().map(|m| m.nll.as_slice()).collect();
    let mut cut = false;
    if let Some((range, c)) = robust_y_range(&curves, 3.0) {
        nll.y_range = Some(range);
        clip_to_y_range(&mut nll, range);
        cut = c;
    }
    // Medians of the paired gap: robust to the few fits that fail badly (short NUTS chains).
    let mut gap = Figure::new(
        "Gap to the oracle: median over datasets",
        "context size n",
        "median NLL − oracle NLL (nats)",
    );
    for (i, m) in r.methods.iter().enumerate() {
        if m.kind == MethodKind::Oracle {
            continue;
        }
        let points: Vec<(f64, f64)> = xs.iter().zip(&m.gap).map(|(&x, g)| (x, g.median)).collect();
        gap.series.push(pfn_plot::Series::Line {
            label: m.name.clone(),
            points: points.clone(),
            color: color(i),
            dashed: false,
        });
        gap.series.push(pfn_plot::Series::Points {
            label: String::new(),
            points,
            color: color(i),
            radius: 3,
        });
    }
    if cut {
        nll.title.push_str(" [clipped]");
    }
    let mut time = Figure::new(
        "Wall time per dataset (median over datasets, one thread)",
        "context size n",
        "log10 seconds per dataset",
    );
    for (i, m) in r.methods.iter().enumerate() {
        let points: Vec<(f64, f64)> = xs
            .iter()
            .zip(&m.seconds)
            .filter(|(_, s)| s.median > 0.0)
            .map(|(&x, s)| (x, s.median.log10()))
            .collect();
        time.series.push(pfn_plot::Series::Line {
            label: m.name.clone(),
            points: points.clone(),
            color: color(i),
            dashed: m.kind == MethodKind::Oracle,
        });
        time.series.push(pfn_plot::Series::Points {
            label: String::new(),
            points,
            color: color(i),
            radius: 3,
        });
    }
    // Head room above the curves for the legend (drawn in the upper right).
    let logs: Vec<f64> = r
        .methods
        .iter()
        .flat_map(|m| m.seconds.iter().map(|s| s.median))
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect();
    let (lo, hi) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() && hi.is_finite() {
        let span = (hi - lo).max(0.5);
        time.y_range = Some((lo - 0.05 * span, hi + 0.45 * span));
    }
    let mut files = Vec::new();
    for (fig, name) in [
        (&nll, "gp-hyper-nll.png"),
        (&gap, "gp-hyper-gap-median.png"),
        (&time, "gp-hyper-time.png"),
    ] {
        files.push(save_figure(fig, dir, name)?);
        r.plots.push(name.to_string());
    }
    Ok(files)
}

/// The Markdown report.
pub fn markdown(r: &GpHyperResult) -> String {
    let mut s = r
        .run
        .header("gp-hyper: PFN vs type-II ML vs NUTS on the GP hyper-prior");
    let c = &r.prior_config;
    let _ = writeln!(
        s,
        "- data prior `{}`: {:?} kernel{}, noise ~ Γ({}, {}) floored at {:e}, outputscale ~ Γ({}, {}), lengthscale ~ Γ({}, {}); {} feature{}, x ~ U[0,1]",
        r.prior,
        c.kernel,
        if c.ard { " (ARD)" } else { "" },
        c.noise.concentration,
        c.noise.rate,
        c.noise_floor,
        c.outputscale.concentration,
        c.outputscale.rate,
        c.lengthscale.concentration,
        c.lengthscale.rate,
        r.num_features,
        if r.num_features == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        s,
        "- held-out datasets: seed {} (`dataset_seed({})`), {} points each: context = the first n, test = the last {}",
        r.dataset_seed,
        r.run.seed,
        r.sizes.last().copied().unwrap_or(0) + r.test_points,
        r.test_points
    );
    let _ = writeln!(s, "- models: {}", r.model_source);
    for (path, why) in &r.skipped_models {
        let _ = writeln!(s, "  - skipped `{path}`: {why}");
    }
    if r.models.is_empty() {
        let _ = writeln!(s, "\n**{NO_MODEL}** (give one trained on `gp-hyper` with `--model`, or put it in the models directory): the baselines are reported alone and no speed-up is computed.");
    } else {
        for m in &r.models {
            let _ = writeln!(s, "- {}", m.describe());
        }
    }
    let _ = writeln!(
        s,
        "\nEvery method sees the same datasets on the same machine, one thread. Every method answers one dataset at a time, except the rows marked *batched*: the same PFN answering all datasets of one context size in batched forward passes (`Predictor::predict_many`, as the paper timed its PFN), with the pass time divided by the number of datasets; its NLL equals the one-at-a-time row up to float rounding. NLL = mean −log p(y) over the {} test points of a dataset; ± is the 95% confidence interval of the mean over datasets. The exact GP with the true hyperparameters is the oracle (a lower bound on average, not reachable without the hyperparameters). Wall time covers fitting and predicting. In the paper the PFN ran on a GPU and NUTS on a CPU.\n",
        r.test_points
    );
    let _ = writeln!(s, "## NLL per context size\n");
    let mut header = vec!["n".to_string()];
    header.extend(r.methods.iter().map(|m| m.name.clone()));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = MarkdownTable::new(&header_refs);
    for (si, &n) in r.sizes.iter().enumerate() {
        let mut row = vec![n.to_string()];
        row.extend(r.methods.iter().map(|m| fmt_ci(&m.nll[si])));
        t.row(row);
    }
    let mut row = vec!["**mean**".to_string()];
    row.extend(r.methods.iter().map(|m| fmt_num(m.mean_nll)));
    t.row(row);
    s.push_str(&t.render());
    let _ = writeln!(s, "\n## Per method (all datasets and context sizes)\n");
    let mut t = MarkdownTable::new(&[
        "method",
        "mean NLL",
        "gap to oracle (mean ± 95% CI)",
        "median gap",
        "median time / dataset",
        "mean time / dataset",
        "total time",
        "NUTS divergences",
    ]);
    for m in &r.methods {
        t.row(vec![
            m.name.clone(),
            fmt_num(m.mean_nll),
            fmt_ci(&m.overall_gap),
            fmt_num(m.overall_gap.median),
            fmt_secs(m.overall_seconds.median),
            fmt_secs(m.overall_seconds.mean),
            fmt_secs(m.total_seconds),
            m.divergences.map_or("–".into(), |(d, k)| {
                format!("{d} of {k} ({:.1}%)", 100.0 * d as f64 / k.max(1) as f64)
            }),
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(
        s,
        "\nA few fits that fail badly (e.g. short NUTS chains that have not converged) can dominate a mean; the median gap is robust to them (see also `gp-hyper-gap-median.png`)."
    );
    let _ = writeln!(s, "\n## Speed-up of the PFN\n");
    if r.speed_ups.is_empty() {
        let _ = writeln!(s, "{NO_MODEL}: no speed-up to report.");
    } else {
        let mut t = MarkdownTable::new(&[
            "PFN",
            "baseline",
            "median time ratio (baseline / PFN)",
            "total time ratio",
        ]);
        for u in &r.speed_ups {
            t.row(vec![
                u.pfn.clone(),
                u.baseline.clone(),
                fmt_ratio(u.median_ratio),
                fmt_ratio(u.total_ratio),
            ]);
        }
        s.push_str(&t.render());
        let _ = writeln!(
            s,
            "\nThe paper reports > 200× over MLE-II and 1 000–8 000× over NUTS (PFN on a GPU)."
        );
    }
    let _ = writeln!(s);
    for p in &r.plots {
        let _ = writeln!(s, "![{p}]({p})\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{data_prior_name, MethodKind};

    #[test]
    fn tied_input_models_are_scored_on_the_plain_priors_data() {
        assert_eq!(data_prior_name("gp-hyper-5d-ties"), Some("gp-hyper-5d"));
        assert_eq!(data_prior_name("gp-hyper-5d"), Some("gp-hyper-5d"));
        assert_eq!(data_prior_name("gp-hyper"), Some("gp-hyper"));
        assert_eq!(data_prior_name("gp-hyper-code"), Some("gp-hyper-code"));
        assert_eq!(data_prior_name("gp-1d"), None);
    }

    #[test]
    fn seeded_methods_have_distinct_tags_independent_of_position() {
        let seeded = [
            MethodKind::Type2,
            MethodKind::Nuts { steps: 32 },
            MethodKind::Nuts { steps: 256 },
        ];
        let tags: Vec<u64> = seeded.iter().map(MethodKind::seed_tag).collect();
        for (i, a) in tags.iter().enumerate() {
            assert_ne!(*a, 0, "{:?}", seeded[i]);
            for b in &tags[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The tag is a property of the method, not of its index among the compared methods.
        assert_eq!(
            MethodKind::Pfn { model: 0 }.seed_tag(),
            MethodKind::Pfn { model: 3 }.seed_tag()
        );
    }
}
