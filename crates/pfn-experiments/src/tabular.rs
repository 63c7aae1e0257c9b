//! `tabular` (paper §6, Tables 1 and 7; spec §6.4): a tabular-classification PFN against
//! logistic regression, k-nearest neighbours, a GP classifier and XGBoost on real datasets
//! ([`crate::tabular_data`]: the paper code's LIBSVM/UCI tables and fifteen OpenML-CC18 datasets),
//! under two protocols on the same splits for every method:
//!
//! * **A, the paper's**: each dataset becomes a balanced binary problem (its first two classes in
//!   label order; rows shuffled, `min(count)` rows of each class, labels interleaved, at most 400
//!   rows); 20 random contiguous windows of 100 rows; in each, the first 30 rows are the context
//!   (the training set) and the other 70 are scored. ROC AUC per dataset is computed over the
//!   pooled predictions of its windows; ECE over 100 top-label confidence bins.
//! * **B, larger contexts**: all classes kept; 5 random splits, each with
//!   `min(model's trained context, rows / 2)` random context rows and the other rows (at most
//!   1000) as queries. ROC AUC (one-vs-rest macro for more than two classes), log loss, accuracy
//!   and ECE over the pooled predictions of the splits.
//!
//! Per protocol: per-dataset scores per method, the mean rank of ROC AUC across datasets (average
//! ranks for ties; over the datasets every ranked method scored), how often the PFN is better,
//! tied (equal to three decimals) or worse, and wall time per dataset (the PFN: normalisation and
//! forward passes for all windows or splits, one thread; a baseline: its cross-validated fit and
//! prediction for all of them).
//!
//! The same inputs go to every method: missing values (NaN) are replaced by the context rows'
//! column means in context and queries alike (`pfn_infer::impute_with_context_means`), and
//! categorical columns are their integer codes, used as numbers. The baselines get every feature,
//! z-scored with the context rows' statistics (`pfn_artifact::FeatureScaler::fit_standardise`,
//! the rule the PFN applies itself). A dataset with more features than the model takes gives the
//! PFN a seeded random subset of as many features as it takes (the same subset for every window and
//! split), except where the context is calibrated with view selection: there the PFN gets every
//! feature and answers through principal components (`pfn_infer::principal_components`). A
//! baseline that fails (e.g. XGBoost without its Python side) is reported as failed in the tables
//! and left out of the ranks; it does not stop the run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pfn_artifact::{FeatureScaler, OutputHead};
use pfn_baselines::classifiers::{paper_baselines, ClassData, Classifier, XgBoost};
use pfn_distribution::class_metrics::{
    accuracy, expected_calibration_error, log_loss, reliability_bins, roc_auc_ovr,
};
use pfn_infer::{ClassEnsemble, ClassTask, ContextCalibration};
use pfn_plot::{Figure, Series};
use pfn_prior::rng::derive_key;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::ExperimentError;
use crate::figures::color;
use crate::models::{select_models, LoadedModel, ModelInfo};
use crate::options::ExperimentOptions;
use crate::progress::{Progress, ProgressMode};
use crate::report::{fmt_num, fmt_ratio, fmt_secs, save_figure, MarkdownTable, RunInfo, NO_MODEL};
use crate::stats::median;
use crate::tabular_data::{self, TabularDataset};

const NAME: &str = "tabular";

/// Rows per window of protocol A.
pub const WINDOW_ROWS: usize = 100;
/// Context rows per window of protocol A.
pub const PAPER_CONTEXT: usize = 30;
/// Largest balanced set protocol A draws windows from.
pub const BALANCED_CAP: usize = 400;
/// Windows per dataset of protocol A (full run).
pub const PAPER_WINDOWS: usize = 20;
/// Windows per dataset of protocol A (`--quick`).
pub const QUICK_WINDOWS: usize = 3;
/// Random splits per dataset of protocol B (full run).
pub const SPLITS: usize = 5;
/// Random splits per dataset of protocol B (`--quick`).
pub const QUICK_SPLITS: usize = 2;
/// Most query rows per split of protocol B (full run).
pub const MAX_QUERIES: usize = 1000;
/// Most query rows per split of protocol B (`--quick`).
pub const QUICK_MAX_QUERIES: usize = 200;
/// Most context rows of protocol B in a `--quick` run.
pub const QUICK_MAX_CONTEXT: usize = 100;
/// Context rows of protocol B when no model is given (the shipped model's trained context).
pub const DEFAULT_MAX_CONTEXT: usize = 200;
/// Bins of the expected calibration error (the paper's Table 1).
pub const ECE_BINS: usize = 100;
/// Bins of the reliability diagrams.
pub const PLOT_BINS: usize = 10;
/// Default members of the PFN's class-probability ensemble (`--ensemble`): feature orders and
/// class renamings averaged per dataset (`pfn_infer::ensemble`).
pub const DEFAULT_ENSEMBLE: usize = 8;

const BALANCE_DOMAIN: u64 = 0x7461_6262_616c_0000;
const SPLIT_DOMAIN: u64 = 0x7461_6273_706c_0000;
const SUBSET_DOMAIN: u64 = 0x7461_6266_7375_0000;
const BASELINE_DOMAIN: u64 = 0x7461_6262_6173_0000;
const ENSEMBLE_DOMAIN: u64 = 0x7461_6265_6e73_0000;

/// What a method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    /// A PFN model.
    Pfn,
    /// A tuned baseline classifier.
    Baseline,
}

/// The scores of one method on one dataset (pooled over its windows or splits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cell {
    /// ROC AUC (one-vs-rest macro for more than two classes); `None` when undefined.
    pub auc: Option<f64>,
    /// Mean log loss (nats).
    pub log_loss: f64,
    /// Accuracy of the most probable class.
    pub accuracy: f64,
    /// Top-label expected calibration error over [`ECE_BINS`] bins.
    pub ece: f64,
    /// Wall time for all windows or splits of the dataset, seconds.
    pub seconds: f64,
    /// Scored query rows.
    pub predictions: usize,
}

/// One method's results across the datasets of a protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodRow {
    /// Display name (`PFN <label>` or the baseline's name).
    pub method: String,
    /// PFN or baseline.
    pub kind: MethodKind,
    /// Per dataset of the protocol: the scores, or `None` (skipped dataset or failure).
    pub cells: Vec<Option<Cell>>,
    /// Per dataset: why the method has no scores there, if it failed.
    pub errors: Vec<Option<String>>,
    /// Per dataset, PFNs only: the input view of each window or split (`as given`, `16 principal
    /// components`, ...) and how many chose it, where a calibrated context chose its view.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<Option<String>>,
}

/// Wins, ties and losses of the (first) PFN against a method, by ROC AUC per dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WinTieLoss {
    /// Datasets where the PFN's AUC is higher (to three decimals).
    pub pfn_better: usize,
    /// Datasets where both round to the same three decimals.
    pub ties: usize,
    /// Datasets where the method's AUC is higher.
    pub method_better: usize,
}

/// One bin of a pooled reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge of the confidence bin.
    pub lower: f64,
    /// Upper edge.
    pub upper: f64,
    /// Predictions in the bin.
    pub count: usize,
    /// Their mean confidence (NaN when empty).
    pub confidence: f64,
    /// Their accuracy (NaN when empty).
    pub accuracy: f64,
}

/// A method's aggregate over the datasets of a protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    /// Display name.
    pub method: String,
    /// Datasets with scores.
    pub datasets_scored: usize,
    /// Datasets where it failed.
    pub datasets_failed: usize,
    /// Mean ROC AUC over the ranked datasets (`None` when not ranked).
    pub mean_auc: Option<f64>,
    /// Mean ROC AUC rank over the ranked datasets (1 = best).
    pub mean_rank: Option<f64>,
    /// Against the first PFN (`None` for that PFN itself or without a PFN).
    pub vs_pfn: Option<WinTieLoss>,
    /// Mean per-dataset ECE over the datasets it scored.
    pub mean_ece: f64,
    /// ECE of all its predictions pooled over the datasets it scored.
    pub pooled_ece: f64,
    /// Mean per-dataset log loss.
    pub mean_log_loss: f64,
    /// Mean per-dataset accuracy.
    pub mean_accuracy: f64,
    /// Total wall time over the datasets it scored, seconds.
    pub total_seconds: f64,
    /// Median wall time per dataset, seconds.
    pub median_seconds: f64,
    /// Pooled reliability diagram ([`PLOT_BINS`] bins).
    pub reliability: Vec<Bin>,
}

/// One dataset as a protocol used it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtocolDataset {
    /// Dataset name.
    pub name: String,
    /// Classes in the problem (2 for protocol A).
    pub classes: usize,
    /// Rows available to the protocol (the balanced set for A).
    pub rows: usize,
    /// Context rows per window/split.
    pub context: usize,
    /// Query rows per window/split.
    pub queries: usize,
    /// Windows or splits.
    pub repeats: usize,
    /// Why the protocol does not apply, if it does not.
    pub skipped: Option<String>,
}

/// The results of one protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtocolResult {
    /// `paper` (A) or `larger` (B).
    pub key: String,
    /// Heading.
    pub title: String,
    /// The datasets, in order.
    pub datasets: Vec<ProtocolDataset>,
    /// Every method, PFNs first.
    pub methods: Vec<MethodRow>,
    /// Methods in the ranks (those with scores on some dataset).
    pub ranked_methods: Vec<String>,
    /// Datasets in the ranks (every ranked method scored them).
    pub ranked_datasets: Vec<String>,
    /// Per method (same order as `methods`).
    pub summary: Vec<MethodSummary>,
    /// Plot files (names inside the output directory).
    pub plots: Vec<String>,
}

/// A dataset of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInfo {
    /// Short name.
    pub name: String,
    /// Collection.
    pub collection: String,
    /// File read.
    pub file: String,
    /// Rows.
    pub rows: usize,
    /// Features.
    pub features: usize,
    /// Classes.
    pub classes: usize,
    /// Rows per class.
    pub class_counts: Vec<usize>,
    /// Missing cells.
    pub missing_cells: usize,
    /// Features the PFN sees (all of them, or a random subset of the model's width).
    pub pfn_features: usize,
}

/// The result of a `tabular` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TabularResult {
    /// Provenance.
    pub run: RunInfo,
    /// Where the data were read.
    pub data_dir: String,
    /// Where the models came from.
    pub model_source: String,
    /// Files in the models directory that were not used, with the reason.
    pub skipped_models: Vec<(String, String)>,
    /// The PFN models.
    pub models: Vec<ModelInfo>,
    /// Members of each PFN's class-probability ensemble.
    pub ensemble: usize,
    /// Whether the PFN's probabilities were tempered on each context (on unless
    /// `--no-calibrate`).
    pub calibrated: bool,
    /// Whether calibrated contexts chose the PFN's input view (on unless `--as-given`).
    pub views_selected: bool,
    /// Arithmetic of the PFNs' matrix products (`f32` or `bf16`).
    pub precision: String,
    /// The datasets.
    pub datasets: Vec<DatasetInfo>,
    /// Protocol A.
    pub paper: ProtocolResult,
    /// Protocol B.
    pub larger: ProtocolResult,
}

/// Which models `tabular` accepts: a class head trained with a variable number of features.
fn accept(m: &LoadedModel) -> Result<(), String> {
    match &m.predictor.metadata().head {
        OutputHead::Classes { n_out } if *n_out >= 2 => {}
        OutputHead::Classes { n_out } => {
            return Err(format!(
                "it has {n_out} class output; at least 2 are needed"
            ))
        }
        OutputHead::Riemann { .. } => {
            return Err("it is a regression model; the tabular benchmark needs a class head".into())
        }
    }
    let (lo, hi) = m.predictor.feature_range();
    if lo > 1 {
        return Err(format!(
            "it takes exactly {hi} features; the tabular benchmark needs a model trained with a variable number of features (zero-padded)"
        ));
    }
    Ok(())
}

/// One window or split: context and queries with every feature, missing values imputed.
#[derive(Debug, Clone)]
struct Split {
    x_ctx: Vec<f64>,
    y_ctx: Vec<usize>,
    x_q: Vec<f64>,
    y_q: Vec<usize>,
}

/// A dataset prepared for a protocol.
struct Prepared {
    d: usize,
    classes: usize,
    splits: Vec<Split>,
}

/// What every method returned on one dataset of a protocol: pooled probabilities (rows x
/// classes) and the wall time.
struct Answer {
    probabilities: Vec<f64>,
    seconds: f64,
    /// The PFN's input view per window or split, where it was chosen (empty otherwise).
    views: Vec<pfn_infer::InputView>,
}

/// `as given ×3, 16 principal components ×2`: the distinct views in order of first use, with
/// counts; `None` for no views.
fn summarise_views(views: &[pfn_infer::InputView]) -> Option<String> {
    let mut counts: Vec<(pfn_infer::InputView, usize)> = Vec::new();
    for v in views {
        match counts.iter_mut().find(|(w, _)| w == v) {
            Some((_, c)) => *c += 1,
            None => counts.push((*v, 1)),
        }
    }
    (!counts.is_empty()).then(|| {
        counts
            .iter()
            .map(|(v, c)| format!("{} ×{c}", v.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Replaces NaN cells of context and queries by the context rows' column means (0 where a column
/// has no value in the context).
fn impute(x_ctx: &mut [f64], x_q: &mut [f64], d: usize) {
    pfn_infer::impute_with_context_means(x_ctx, x_q, d);
}

fn gather(ds: &TabularDataset, rows: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let d = ds.n_features;
    let mut x = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        x.extend_from_slice(&ds.x[r * d..(r + 1) * d]);
    }
    (x, rows.iter().map(|&r| ds.labels[r]).collect())
}

fn make_split(
    ds: &TabularDataset,
    ctx: &[usize],
    q: &[usize],
    relabel: &dyn Fn(usize) -> usize,
) -> Split {
    let (mut x_ctx, y_ctx) = gather(ds, ctx);
    let (mut x_q, y_q) = gather(ds, q);
    impute(&mut x_ctx, &mut x_q, ds.n_features);
    Split {
        x_ctx,
        y_ctx: y_ctx.into_iter().map(relabel).collect(),
        x_q,
        y_q: y_q.into_iter().map(relabel).collect(),
    }
}

/// The balanced, interleaved binary row order of protocol A: rows of classes 0 and 1, shuffled,
/// `min(count)` of each, alternating 0, 1, 0, 1, ..., at most [`BALANCED_CAP`] rows.
pub fn balanced_binary_rows(labels: &[usize], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut by_class: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (r, &l) in labels.iter().enumerate() {
        if l < 2 {
            by_class[l].push(r);
        }
    }
    by_class[0].shuffle(rng);
    by_class[1].shuffle(rng);
    let mut rows: Vec<usize> = by_class[0]
        .iter()
        .zip(&by_class[1])
        .flat_map(|(&a, &b)| [a, b])
        .collect();
    rows.truncate(BALANCED_CAP);
    rows
}

/// Protocol A on one dataset (`index` is its place in [`tabular_data::DATASETS`]).
fn prepare_paper(
    ds: &TabularDataset,
    index: usize,
    seed: u64,
    windows: usize,
) -> (ProtocolDataset, Option<Prepared>) {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_key(BALANCE_DOMAIN, seed, &[index as u64]));
    let rows = balanced_binary_rows(&ds.labels, &mut rng);
    let mut info = ProtocolDataset {
        name: ds.name.clone(),
        classes: 2,
        rows: rows.len(),
        context: PAPER_CONTEXT,
        queries: WINDOW_ROWS - PAPER_CONTEXT,
        repeats: windows,
        skipped: None,
    };
    if rows.len() < WINDOW_ROWS {
        info.skipped = Some(format!(
            "the balanced binary set of its first two classes ({} and {}) has {} rows, fewer than a window of {WINDOW_ROWS}",
            ds.class_names[0], ds.class_names[1], rows.len()
        ));
        return (info, None);
    }
    let splits = (0..windows)
        .map(|_| {
            let start = rng.random_range(0..=rows.len() - WINDOW_ROWS);
            let w = &rows[start..start + WINDOW_ROWS];
            make_split(ds, &w[..PAPER_CONTEXT], &w[PAPER_CONTEXT..], &|l| l)
        })
        .collect();
    (
        info,
        Some(Prepared {
            d: ds.n_features,
            classes: 2,
            splits,
        }),
    )
}

/// Protocol B on one dataset.
fn prepare_larger(
    ds: &TabularDataset,
    index: usize,
    seed: u64,
    splits: usize,
    max_context: usize,
    max_queries: usize,
) -> (ProtocolDataset, Option<Prepared>) {
    let n = ds.rows();
    let context = max_context.min(n / 2);
    let queries = (n - context).min(max_queries);
    let info = ProtocolDataset {
        name: ds.name.clone(),
        classes: ds.num_classes(),
        rows: n,
        context,
        queries,
        repeats: splits,
        skipped: None,
    };
    let splits = (0..splits)
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_key(
                SPLIT_DOMAIN,
                seed,
                &[index as u64, s as u64],
            ));
            let mut perm: Vec<usize> = (0..n).collect();
            perm.shuffle(&mut rng);
            make_split(
                ds,
                &perm[..context],
                &perm[context..context + queries],
                &|l| l,
            )
        })
        .collect();
    (
        info,
        Some(Prepared {
            d: ds.n_features,
            classes: ds.num_classes(),
            splits,
        }),
    )
}

/// The seeded feature subset the PFN sees: all columns when they fit, else `width` random ones
/// (in column order).
pub fn pfn_feature_subset(d: usize, width: usize, seed: u64, index: usize) -> Vec<usize> {
    if d <= width {
        return (0..d).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(derive_key(SUBSET_DOMAIN, seed, &[index as u64]));
    let mut cols = rand::seq::index::sample(&mut rng, d, width).into_vec();
    cols.sort_unstable();
    cols
}

fn select_columns(x: &[f64], d: usize, cols: &[usize]) -> Vec<f64> {
    if cols.len() == d {
        return x.to_vec();
    }
    x.chunks_exact(d)
        .flat_map(|row| cols.iter().map(move |&c| row[c]))
        .collect()
}

/// The PFN on every split of a dataset, one split at a time (its ensemble members in shared
/// batched passes), its probabilities tempered on each split's context when `calibration` is
/// given (`pfn_infer::calibration`).
fn run_pfn(
    m: &LoadedModel,
    p: &Prepared,
    cols: &[usize],
    ensemble: ClassEnsemble,
    calibration: Option<ContextCalibration>,
) -> Result<Answer, String> {
    let start = Instant::now();
    let mut probabilities = Vec::new();
    let mut views = Vec::new();
    for s in &p.splits {
        // A calibrated context that selects its view sees every feature: a table wider than the
        // model is then answered through its principal components, not a random subset.
        let every_feature = calibration.is_some_and(|c| c.select_view && c.applies_to(&s.y_ctx));
        let all: Vec<usize>;
        let cols = if every_feature && cols.len() < p.d {
            all = (0..p.d).collect();
            &all
        } else {
            cols
        };
        let x_ctx = select_columns(&s.x_ctx, p.d, cols);
        let x_q = select_columns(&s.x_q, p.d, cols);
        let answer = match calibration {
            None => m.predictor.ensemble_class_probabilities(
                &x_ctx,
                &s.y_ctx,
                cols.len(),
                &x_q,
                p.classes,
                ensemble,
            ),
            Some(c) => {
                let task = ClassTask {
                    x: &x_ctx,
                    labels: &s.y_ctx,
                    x_query: &x_q,
                    features: cols.len(),
                };
                m.predictor
                    .calibrated_class_probabilities(task, p.classes, ensemble, c)
                    .map(|t| {
                        if every_feature {
                            views.push(t.view);
                        }
                        t.probabilities
                    })
            }
        };
        probabilities.extend(answer.map_err(|e| e.to_string())?);
    }
    Ok(Answer {
        probabilities,
        seconds: start.elapsed().as_secs_f64(),
        views,
    })
}

/// A baseline on every split of a dataset (features z-scored with each context's statistics).
fn run_baseline(c: &dyn Classifier, p: &Prepared, seed: u64) -> Result<Answer, String> {
    let mut scaled = Vec::with_capacity(p.splits.len());
    for s in &p.splits {
        let scaler = FeatureScaler::fit_standardise(&s.x_ctx, p.d).map_err(|e| e.to_string())?;
        scaled.push((
            scaler.transform(&s.x_ctx).map_err(|e| e.to_string())?,
            scaler.transform(&s.x_q).map_err(|e| e.to_string())?,
        ));
    }
    let tasks: Vec<(ClassData<'_>, &[f64])> = p
        .splits
        .iter()
        .zip(&scaled)
        .map(|(s, (xc, xq))| {
            (
                ClassData {
                    x: xc,
                    n_features: p.d,
                    labels: &s.y_ctx,
                    num_classes: p.classes,
                },
                xq.as_slice(),
            )
        })
        .collect();
    let start = Instant::now();
    let out = c
        .fit_predict_many(&tasks, seed)
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let mut probabilities = Vec::new();
    for (s, probs) in p.splits.iter().zip(out) {
        if probs.len() != s.y_q.len() * p.classes {
            return Err(format!(
                "returned {} probabilities for {} queries of {} classes",
                probs.len(),
                s.y_q.len(),
                p.classes
            ));
        }
        probabilities.extend(probs);
    }
    Ok(Answer {
        probabilities,
        seconds,
        views: Vec::new(),
    })
}

/// Scores pooled predictions.
fn score(answer: &Answer, labels: &[usize], classes: usize) -> Result<Cell, String> {
    let probs = &answer.probabilities;
    if let Some(i) = probs.iter().position(|v| !v.is_finite()) {
        return Err(format!("prediction {} is not finite", i / classes));
    }
    let e = |e: pfn_distribution::DistributionError| e.to_string();
    Ok(Cell {
        auc: roc_auc_ovr(probs, labels, classes).map_err(e)?,
        log_loss: log_loss(probs, labels, classes)
            .map_err(e)?
            .unwrap_or(f64::NAN),
        accuracy: accuracy(probs, labels, classes)
            .map_err(e)?
            .unwrap_or(f64::NAN),
        ece: expected_calibration_error(probs, labels, classes, ECE_BINS)
            .map_err(e)?
            .unwrap_or(f64::NAN),
        seconds: answer.seconds,
        predictions: labels.len(),
    })
}

/// Accumulated reliability bins (sums, so datasets with different class counts pool).
#[derive(Debug, Clone)]
struct BinSums {
    count: Vec<usize>,
    confidence: Vec<f64>,
    right: Vec<f64>,
}

impl BinSums {
    fn new(bins: usize) -> Self {
        Self {
            count: vec![0; bins],
            confidence: vec![0.0; bins],
            right: vec![0.0; bins],
        }
    }

    fn add(&mut self, probs: &[f64], labels: &[usize], classes: usize) {
        let bins = self.count.len();
        if let Ok(table) = reliability_bins(probs, labels, classes, bins) {
            for (k, b) in table.iter().enumerate() {
                if b.count > 0 {
                    self.count[k] += b.count;
                    self.confidence[k] += b.confidence * b.count as f64;
                    self.right[k] += b.accuracy * b.count as f64;
                }
            }
        }
    }

    fn bins(&self) -> Vec<Bin> {
        let k = self.count.len();
        (0..k)
            .map(|b| {
                let n = self.count[b] as f64;
                Bin {
                    lower: b as f64 / k as f64,
                    upper: (b + 1) as f64 / k as f64,
                    count: self.count[b],
                    confidence: self.confidence[b] / n,
                    accuracy: self.right[b] / n,
                }
            })
            .collect()
    }

    fn ece(&self) -> f64 {
        let total: usize = self.count.iter().sum();
        if total == 0 {
            return f64::NAN;
        }
        (0..self.count.len())
            .filter(|&b| self.count[b] > 0)
            .map(|b| (self.right[b] - self.confidence[b]).abs())
            .sum::<f64>()
            / total as f64
    }
}

/// Average ranks of `values` (1 = largest; ties share the mean of their ranks).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

fn round3(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

/// Ranks, wins and the per-method aggregates of a protocol.
fn summarise(
    datasets: &[ProtocolDataset],
    methods: &[MethodRow],
    reliability: &[(BinSums, BinSums)],
) -> (Vec<String>, Vec<String>, Vec<MethodSummary>) {
    let auc = |m: &MethodRow, d: usize| m.cells[d].and_then(|c| c.auc);
    let live: Vec<usize> = (0..datasets.len())
        .filter(|&d| datasets[d].skipped.is_none())
        .collect();
    let ranked: Vec<usize> = (0..methods.len())
        .filter(|&m| live.iter().any(|&d| auc(&methods[m], d).is_some()))
        .collect();
    let ranked_datasets: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&d| ranked.iter().all(|&m| auc(&methods[m], d).is_some()))
        .collect();
    let mut rank_sum = vec![0.0; methods.len()];
    for &d in &ranked_datasets {
        let values: Vec<f64> = ranked
            .iter()
            .map(|&m| auc(&methods[m], d).unwrap_or(f64::NAN))
            .collect();
        for (r, &m) in average_ranks(&values).into_iter().zip(&ranked) {
            rank_sum[m] += r;
        }
    }
    let pfn = methods.iter().position(|m| m.kind == MethodKind::Pfn);
    let summary = methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let cells: Vec<Cell> = m.cells.iter().flatten().copied().collect();
            let in_ranks = ranked.contains(&i) && !ranked_datasets.is_empty();
            let vs_pfn = pfn.filter(|&p| p != i).map(|p| {
                let mut w = WinTieLoss {
                    pfn_better: 0,
                    ties: 0,
                    method_better: 0,
                };
                for d in 0..datasets.len() {
                    if let (Some(a), Some(b)) = (auc(&methods[p], d), auc(m, d)) {
                        match round3(a).cmp(&round3(b)) {
                            std::cmp::Ordering::Greater => w.pfn_better += 1,
                            std::cmp::Ordering::Equal => w.ties += 1,
                            std::cmp::Ordering::Less => w.method_better += 1,
                        }
                    }
                }
                w
            });
            let mean_of = |f: fn(&Cell) -> f64| {
                let v: Vec<f64> = cells.iter().map(f).filter(|x| x.is_finite()).collect();
                crate::stats::mean(&v)
            };
            let secs: Vec<f64> = cells.iter().map(|c| c.seconds).collect();
            MethodSummary {
                method: m.method.clone(),
                datasets_scored: cells.len(),
                datasets_failed: m.errors.iter().flatten().count(),
                mean_auc: in_ranks.then(|| {
                    crate::stats::mean(
                        &ranked_datasets
                            .iter()
                            .filter_map(|&d| auc(m, d))
                            .collect::<Vec<_>>(),
                    )
                }),
                mean_rank: in_ranks.then(|| rank_sum[i] / ranked_datasets.len() as f64),
                vs_pfn,
                mean_ece: mean_of(|c| c.ece),
                pooled_ece: reliability[i].1.ece(),
                mean_log_loss: mean_of(|c| c.log_loss),
                mean_accuracy: mean_of(|c| c.accuracy),
                total_seconds: secs.iter().sum(),
                median_seconds: median(&secs),
                reliability: reliability[i].0.bins(),
            }
        })
        .collect();
    (
        ranked.iter().map(|&m| methods[m].method.clone()).collect(),
        ranked_datasets
            .iter()
            .map(|&d| datasets[d].name.clone())
            .collect(),
        summary,
    )
}

/// Everything a protocol needs to run its methods.
struct Methods<'a> {
    models: &'a [LoadedModel],
    ensemble: usize,
    calibrate: bool,
    select_view: bool,
    baselines: &'a [Box<dyn Classifier>],
    subsets: &'a [Vec<Vec<usize>>],
}

/// Runs every method on the prepared datasets of a protocol.
#[allow(clippy::too_many_arguments)]
fn run_protocol(
    key: &str,
    title: &str,
    protocol_index: u64,
    infos: Vec<ProtocolDataset>,
    prepared: Vec<Option<Prepared>>,
    indices: &[usize],
    methods: &Methods<'_>,
    seed: u64,
    progress: &mut Progress,
) -> ProtocolResult {
    let mut rows: Vec<MethodRow> = methods
        .models
        .iter()
        .map(|m| MethodRow {
            method: format!("PFN {}", m.label),
            kind: MethodKind::Pfn,
            cells: vec![None; infos.len()],
            errors: vec![None; infos.len()],
            views: vec![None; infos.len()],
        })
        .chain(methods.baselines.iter().map(|b| MethodRow {
            method: b.name().to_string(),
            kind: MethodKind::Baseline,
            cells: vec![None; infos.len()],
            errors: vec![None; infos.len()],
            views: Vec::new(),
        }))
        .collect();
    let mut reliability: Vec<(BinSums, BinSums)> = rows
        .iter()
        .map(|_| (BinSums::new(PLOT_BINS), BinSums::new(ECE_BINS)))
        .collect();
    for (d, p) in prepared.iter().enumerate() {
        let Some(p) = p else {
            progress.advance(rows.len() as u64);
            continue;
        };
        let labels: Vec<usize> = p
            .splits
            .iter()
            .flat_map(|s| s.y_q.iter().copied())
            .collect();
        for (i, row) in rows.iter_mut().enumerate() {
            progress.stage(&format!("{key}: {} on {}", row.method, infos[d].name));
            let answer = if i < methods.models.len() {
                let ensemble = ClassEnsemble::new(
                    methods.ensemble,
                    derive_key(ENSEMBLE_DOMAIN, seed, &[protocol_index, indices[d] as u64]),
                );
                let calibration = methods.calibrate.then_some(ContextCalibration {
                    seed: ensemble.seed,
                    select_view: methods.select_view,
                    ..ContextCalibration::default()
                });
                run_pfn(
                    &methods.models[i],
                    p,
                    &methods.subsets[i][d],
                    ensemble,
                    calibration,
                )
            } else {
                let b = &methods.baselines[i - methods.models.len()];
                let s = derive_key(BASELINE_DOMAIN, seed, &[protocol_index, indices[d] as u64]);
                run_baseline(b.as_ref(), p, s)
            };
            match answer.and_then(|a| {
                if let Some(v) = row.views.get_mut(d) {
                    *v = summarise_views(&a.views);
                }
                let cell = score(&a, &labels, p.classes)?;
                reliability[i].0.add(&a.probabilities, &labels, p.classes);
                reliability[i].1.add(&a.probabilities, &labels, p.classes);
                Ok(cell)
            }) {
                Ok(c) => row.cells[d] = Some(c),
                Err(e) => row.errors[d] = Some(e),
            }
            progress.advance(1);
        }
    }
    let (ranked_methods, ranked_datasets, summary) = summarise(&infos, &rows, &reliability);
    ProtocolResult {
        key: key.into(),
        title: title.into(),
        datasets: infos,
        methods: rows,
        ranked_methods,
        ranked_datasets,
        summary,
        plots: Vec::new(),
    }
}

/// The data directory of a run.
pub fn data_dir(options: &ExperimentOptions) -> PathBuf {
    options
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Where the benchmark's data are read by default (relative to the working directory: run from
/// the repository root).
pub const DEFAULT_DATA_DIR: &str = "data";

/// Runs `tabular` and returns its results.
pub fn run(options: &ExperimentOptions, run: RunInfo) -> Result<TabularResult, ExperimentError> {
    let selection = select_models(
        NAME,
        &options.models,
        options.models_dir.as_deref(),
        (1, options.precision),
        accept,
    )?;
    let dir = data_dir(options);
    let specs = tabular_data::selected(options.quick, options.num_datasets());
    let mut data = Vec::with_capacity(specs.len());
    let mut indices = Vec::with_capacity(specs.len());
    for spec in &specs {
        data.push(tabular_data::load(&dir, spec)?);
        indices.push(
            tabular_data::DATASETS
                .iter()
                .position(|s| s.name == spec.name)
                .unwrap_or(0),
        );
    }
    let mut baselines = paper_baselines();
    if !baselines
        .iter()
        .any(|b| b.name() == XgBoost::default().name())
    {
        // Not installed: kept as a method so that every table says it failed, and why.
        baselines.push(Box::new(XgBoost::default()));
    }
    let models = &selection.models;
    let subsets: Vec<Vec<Vec<usize>>> = models
        .iter()
        .map(|m| {
            data.iter()
                .zip(&indices)
                .map(|(ds, &i)| {
                    pfn_feature_subset(ds.n_features, m.predictor.num_features(), options.seed, i)
                })
                .collect()
        })
        .collect();
    let methods = Methods {
        models,
        ensemble: options.tabular_ensemble(),
        calibrate: options.calibrate,
        select_view: options.select_view,
        baselines: &baselines,
        subsets: &subsets,
    };
    let (windows, splits, max_queries) = if options.quick {
        (QUICK_WINDOWS, QUICK_SPLITS, QUICK_MAX_QUERIES)
    } else {
        (PAPER_WINDOWS, SPLITS, MAX_QUERIES)
    };
    let mut max_context = models
        .iter()
        .map(|m| m.predictor.max_trained_context())
        .min()
        .unwrap_or(DEFAULT_MAX_CONTEXT);
    if options.quick {
        max_context = max_context.min(QUICK_MAX_CONTEXT);
    }
    let n_methods = (models.len() + baselines.len()) as u64;
    let mode = if options.progress {
        ProgressMode::Auto
    } else {
        ProgressMode::Hidden
    };
    let mut progress = Progress::new(mode, NAME, 2 * n_methods * data.len() as u64);

    let (infos, prepared): (Vec<_>, Vec<_>) = data
        .iter()
        .zip(&indices)
        .map(|(ds, &i)| prepare_paper(ds, i, options.seed, windows))
        .unzip();
    let paper = run_protocol(
        "paper",
        &format!(
            "Protocol A (the paper's): balanced binary problems, {windows} windows of {WINDOW_ROWS} rows, {PAPER_CONTEXT} in context"
        ),
        0,
        infos,
        prepared,
        &indices,
        &methods,
        options.seed,
        &mut progress,
    );
    let (infos, prepared): (Vec<_>, Vec<_>) = data
        .iter()
        .zip(&indices)
        .map(|(ds, &i)| prepare_larger(ds, i, options.seed, splits, max_context, max_queries))
        .unzip();
    let larger = run_protocol(
        "larger",
        &format!(
            "Protocol B (larger contexts): all classes, {splits} random splits, up to {max_context} context rows"
        ),
        1,
        infos,
        prepared,
        &indices,
        &methods,
        options.seed,
        &mut progress,
    );
    progress.finish();
    let datasets = data
        .iter()
        .enumerate()
        .map(|(k, ds)| DatasetInfo {
            name: ds.name.clone(),
            collection: ds.collection.clone(),
            file: ds.path.display().to_string(),
            rows: ds.rows(),
            features: ds.n_features,
            classes: ds.num_classes(),
            class_counts: ds.class_counts(),
            missing_cells: ds.missing_cells(),
            pfn_features: subsets.first().map_or(ds.n_features, |s| s[k].len()),
        })
        .collect();
    Ok(TabularResult {
        run,
        data_dir: dir.display().to_string(),
        model_source: selection.source,
        skipped_models: selection.skipped,
        models: selection.models.iter().map(|m| m.info()).collect(),
        ensemble: options.tabular_ensemble(),
        calibrated: options.calibrate,
        views_selected: options.calibrate && options.select_view,
        precision: options.precision.to_string(),
        datasets,
        paper,
        larger,
    })
}

/// Draws the rank bar charts of both protocols and the reliability diagrams into `dir`.
pub fn plot(r: &mut TabularResult, dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let mut files = Vec::new();
    for p in [&mut r.paper, &mut r.larger] {
        let ranked: Vec<&MethodSummary> =
            p.summary.iter().filter(|s| s.mean_rank.is_some()).collect();
        if !ranked.is_empty() {
            let mut fig = Figure::new(
                &format!(
                    "{}: mean ROC AUC rank over {} datasets (lower is better)",
                    if p.key == "paper" {
                        "Protocol A"
                    } else {
                        "Protocol B"
                    },
                    p.ranked_datasets.len()
                ),
                "method (numbered in legend order)",
                "mean rank",
            );
            let top = ranked.len() as f64;
            for (i, s) in ranked.iter().enumerate() {
                let x = i as f64 + 1.0;
                let rank = s.mean_rank.unwrap_or(f64::NAN);
                fig.series.push(Series::Band {
                    label: format!("{} ({rank:.2})", s.method),
                    x: vec![x - 0.35, x + 0.35],
                    lower: vec![0.0, 0.0],
                    upper: vec![rank, rank],
                    color: color(i),
                    opacity: 0.85,
                });
            }
            fig.x_range = Some((0.3, top + 0.7 + top * 0.6));
            fig.y_range = Some((0.0, top + 0.2));
            let name = format!("tabular-{}-ranks.png", p.key);
            files.push(save_figure(&fig, dir, &name)?);
            p.plots.push(name);
        }
        let with_bins: Vec<&MethodSummary> = p
            .summary
            .iter()
            .filter(|s| s.reliability.iter().any(|b| b.count > 0))
            .collect();
        if !with_bins.is_empty() {
            let mut fig = Figure::new(
                &format!(
                    "{}: reliability (top label, {PLOT_BINS} bins, all datasets pooled)",
                    if p.key == "paper" {
                        "Protocol A"
                    } else {
                        "Protocol B"
                    }
                ),
                "confidence",
                "accuracy",
            );
            fig.series.push(Series::Line {
                label: "perfect calibration".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                color: (120, 120, 120),
                dashed: true,
            });
            for (i, s) in with_bins.iter().enumerate() {
                let pts: Vec<(f64, f64)> = s
                    .reliability
                    .iter()
                    .filter(|b| b.count > 0)
                    .map(|b| (b.confidence, b.accuracy))
                    .collect();
                fig.series.push(Series::Line {
                    label: format!("{} (ECE {:.3})", s.method, s.pooled_ece),
                    points: pts.clone(),
                    color: color(i),
                    dashed: false,
                });
                fig.series.push(Series::Points {
                    label: String::new(),
                    points: pts,
                    color: color(i),
                    radius: 3,
                });
            }
            fig.x_range = Some((0.0, 1.0));
            fig.y_range = Some((0.0, 1.0));
            let name = format!("tabular-{}-reliability.png", p.key);
            files.push(save_figure(&fig, dir, &name)?);
            p.plots.push(name);
        }
    }
    Ok(files)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), fmt_num)
}

fn wtl(w: Option<WinTieLoss>) -> String {
    w.map_or("–".into(), |w| {
        format!("{} / {} / {}", w.pfn_better, w.ties, w.method_better)
    })
}

/// One table of a per-dataset score: rows datasets, columns methods, the best value in bold.
fn per_dataset_table(
    p: &ProtocolResult,
    value: fn(&Cell) -> Option<f64>,
    higher_is_better: bool,
    format: fn(f64) -> String,
) -> String {
    let mut header = vec!["dataset".to_string()];
    header.extend(p.methods.iter().map(|m| m.method.clone()));
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = MarkdownTable::new(&refs);
    for (d, ds) in p.datasets.iter().enumerate() {
        if ds.skipped.is_some() {
            continue;
        }
        let values: Vec<Option<f64>> = p
            .methods
            .iter()
            .map(|m| m.cells[d].as_ref().and_then(value))
            .collect();
        let best = values
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| {
                Some(match acc {
                    None => v,
                    Some(a) if higher_is_better => a.max(v),
                    Some(a) => a.min(v),
                })
            });
        let mut row = vec![ds.name.clone()];
        for (m, v) in p.methods.iter().zip(&values) {
            row.push(match v {
                Some(v) if Some(format(*v)) == best.map(format) && p.methods.len() > 1 => {
                    format!("**{}**", format(*v))
                }
                Some(v) => format(*v),
                None if m.errors[d].is_some() => "failed".into(),
                None => "–".into(),
            });
        }
        t.row(row);
    }
    t.render()
}

fn protocol_markdown(s: &mut String, p: &ProtocolResult, pfn_note: bool) {
    let _ = writeln!(s, "## {}\n", p.title);
    let mut t = MarkdownTable::new(&[
        "dataset",
        "classes",
        "rows used",
        "context",
        "queries",
        "repeats",
        "note",
    ]);
    for d in &p.datasets {
        t.row(vec![
            d.name.clone(),
            d.classes.to_string(),
            d.rows.to_string(),
            d.context.to_string(),
            d.queries.to_string(),
            d.repeats.to_string(),
            d.skipped
                .clone()
                .map_or(String::new(), |w| format!("skipped: {w}")),
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(
        s,
        "\n### Summary\n\nRanks of ROC AUC over the {} dataset{} that every ranked method scored ({}); 1 is best, ties share their average rank. \"PFN better / tie / worse\" compares each method's per-dataset ROC AUC with the first PFN's (equal to three decimals is a tie). ECE: top label, {ECE_BINS} bins; \"mean\" averages the per-dataset ECEs, \"pooled\" bins all predictions of all datasets together. Times are per dataset, for all of its {} (fit, cross-validation and prediction; the PFN: normalisation and forward passes on one thread, in the arithmetic named at the top).\n",
        p.ranked_datasets.len(),
        if p.ranked_datasets.len() == 1 { "" } else { "s" },
        if p.ranked_datasets.is_empty() { "none".into() } else { p.ranked_datasets.join(", ") },
        if p.key == "paper" { "windows" } else { "splits" },
    );
    let mut t = MarkdownTable::new(&[
        "method",
        "mean ROC AUC rank",
        "mean ROC AUC",
        "PFN better / tie / worse",
        "ECE (mean)",
        "ECE (pooled)",
        "log loss",
        "accuracy",
        "median time / dataset",
        "total time",
        "datasets failed",
    ]);
    for m in &p.summary {
        t.row(vec![
            m.method.clone(),
            opt(m.mean_rank),
            opt(m.mean_auc),
            wtl(m.vs_pfn),
            fmt_num(m.mean_ece),
            fmt_num(m.pooled_ece),
            fmt_num(m.mean_log_loss),
            fmt_num(m.mean_accuracy),
            fmt_secs(m.median_seconds),
            fmt_secs(m.total_seconds),
            m.datasets_failed.to_string(),
        ]);
    }
    s.push_str(&t.render());
    if let Some(pfn) = p.summary.iter().find(|m| {
        p.methods
            .iter()
            .any(|r| r.method == m.method && r.kind == MethodKind::Pfn)
    }) {
        let mut lines = Vec::new();
        for m in p.summary.iter().filter(|m| m.method != pfn.method) {
            if m.datasets_scored > 0 && pfn.median_seconds > 0.0 {
                lines.push(format!(
                    "{}: {}",
                    m.method,
                    fmt_ratio(m.median_seconds / pfn.median_seconds)
                ));
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(
                s,
                "\nMedian time per dataset relative to {}: {}.",
                pfn.method,
                lines.join("; ")
            );
        }
    } else if pfn_note {
        let _ = writeln!(s, "\n**{NO_MODEL}**: the baselines are reported alone.");
    }
    let failures: Vec<String> = p
        .methods
        .iter()
        .flat_map(|m| {
            let mut seen: Vec<(String, Vec<String>)> = Vec::new();
            for (d, e) in m.errors.iter().enumerate() {
                if let Some(e) = e {
                    match seen.iter_mut().find(|(msg, _)| msg == e) {
                        Some((_, ds)) => ds.push(p.datasets[d].name.clone()),
                        None => seen.push((e.clone(), vec![p.datasets[d].name.clone()])),
                    }
                }
            }
            seen.into_iter()
                .map(|(e, ds)| format!("- {} failed on {}: {e}", m.method, ds.join(", ")))
                .collect::<Vec<_>>()
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nFailures (left out of the ranks):\n");
        for f in failures {
            let _ = writeln!(s, "{f}");
        }
    }
    let _ = writeln!(s, "\n### ROC AUC per dataset\n");
    s.push_str(&per_dataset_table(
        p,
        |c| c.auc,
        true,
        |v| format!("{v:.3}"),
    ));
    let _ = writeln!(s, "\n### ECE ({ECE_BINS} bins) per dataset\n");
    s.push_str(&per_dataset_table(
        p,
        |c| Some(c.ece),
        false,
        |v| format!("{v:.3}"),
    ));
    if p.key != "paper" {
        let _ = writeln!(s, "\n### Log loss per dataset\n");
        s.push_str(&per_dataset_table(
            p,
            |c| Some(c.log_loss),
            false,
            |v| format!("{v:.3}"),
        ));
        let _ = writeln!(s, "\n### Accuracy per dataset\n");
        s.push_str(&per_dataset_table(
            p,
            |c| Some(c.accuracy),
            true,
            |v| format!("{v:.3}"),
        ));
    }
    let _ = writeln!(s, "\n### Wall time per dataset\n");
    s.push_str(&per_dataset_table(p, |c| Some(c.seconds), false, fmt_secs));
    views_section(s, p);
    let _ = writeln!(s);
    for plot in &p.plots {
        let _ = writeln!(s, "![{plot}]({plot})\n");
    }
}

/// The PFNs' input views per dataset, where a calibrated context chose one (nothing otherwise).
fn views_section(s: &mut String, p: &ProtocolResult) {
    let pfns: Vec<&MethodRow> = p
        .methods
        .iter()
        .filter(|m| m.views.iter().any(Option::is_some))
        .collect();
    if pfns.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### PFN input view per dataset\n\nChosen per split by the calibration folds (`pfn_infer::principal_components`): how many splits answered with each view.\n"
    );
    let _ = write!(s, "| dataset |");
    for m in &pfns {
        let _ = write!(s, " {} |", m.method);
    }
    let _ = write!(s, "\n|---|");
    for _ in &pfns {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s);
    for (d, info) in p.datasets.iter().enumerate() {
        let _ = write!(s, "| {} |", info.name);
        for m in &pfns {
            let v = m.views.get(d).cloned().flatten();
            let _ = write!(s, " {} |", v.unwrap_or_else(|| "–".into()));
        }
        let _ = writeln!(s);
    }
}

fn first_pfn(p: &ProtocolResult) -> Option<&MethodSummary> {
    p.methods
        .iter()
        .position(|m| m.kind == MethodKind::Pfn)
        .map(|i| &p.summary[i])
}

fn find<'a>(p: &'a ProtocolResult, needle: &str) -> Option<&'a MethodSummary> {
    p.summary
        .iter()
        .find(|m| m.method.to_lowercase().contains(needle))
}

/// The issue's targets, checked against the first PFN.
fn targets_markdown(s: &mut String, r: &TabularResult) {
    let (Some(a), Some(b)) = (first_pfn(&r.paper), first_pfn(&r.larger)) else {
        return;
    };
    let yes = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(
        s,
        "## Targets (issue 15), for {}
",
        a.method
    );
    let mut t = MarkdownTable::new(&["target", "PFN", "reference", "status"]);
    for (name, key) in [("XGBoost", "xgboost"), ("logistic regression", "logistic")] {
        let other = find(&r.paper, key);
        let (pr, or) = (a.mean_rank, other.and_then(|o| o.mean_rank));
        t.row(vec![
            format!("A: mean ROC AUC rank better than {name}'s"),
            opt(pr),
            opt(or),
            match (pr, or) {
                (Some(p), Some(o)) => yes(p < o).into(),
                _ => "not ranked".into(),
            },
        ]);
    }
    t.row(vec![
        "A: ECE ≤ 0.03 (pooled; per-dataset mean beside it)".into(),
        format!("{} ({})", fmt_num(a.pooled_ece), fmt_num(a.mean_ece)),
        "0.030".into(),
        yes(a.pooled_ece <= 0.03).into(),
    ]);
    let lr = find(&r.larger, "logistic").and_then(|o| o.mean_auc);
    t.row(vec![
        "B: mean ROC AUC ≥ logistic regression's".into(),
        opt(b.mean_auc),
        opt(lr),
        match (b.mean_auc, lr) {
            (Some(p), Some(o)) => yes(p >= o).into(),
            _ => "not ranked".into(),
        },
    ]);
    let xgb = find(&r.larger, "xgboost").and_then(|o| o.mean_auc);
    t.row(vec![
        "B: gap to XGBoost's mean ROC AUC (moonshot: ≥ 0)".into(),
        opt(b.mean_auc),
        opt(xgb),
        match (b.mean_auc, xgb) {
            (Some(p), Some(o)) => format!("{:+.3}", p - o),
            _ => "XGBoost not ranked".into(),
        },
    ]);
    for (label, p, pfn) in [("A", &r.paper, a), ("B", &r.larger, b)] {
        let times: Vec<(&str, f64)> = p
            .summary
            .iter()
            .filter(|m| m.method != pfn.method && m.datasets_scored > 0)
            .map(|m| (m.method.as_str(), m.median_seconds))
            .collect();
        let fastest = times.iter().min_by(|x, y| x.1.total_cmp(&y.1));
        let slowest = times.iter().max_by(|x, y| x.1.total_cmp(&y.1));
        if let (Some(f), Some(sl)) = (fastest, slowest) {
            t.row(vec![
                format!("{label}: median seconds per dataset below every tuned baseline's"),
                fmt_secs(pfn.median_seconds),
                format!(
                    "fastest {} {}, slowest {} {}",
                    f.0,
                    fmt_secs(f.1),
                    sl.0,
                    fmt_secs(sl.1)
                ),
                format!(
                    "{} (fastest / PFN {}, slowest / PFN {})",
                    yes(pfn.median_seconds < f.1),
                    fmt_ratio(f.1 / pfn.median_seconds),
                    fmt_ratio(sl.1 / pfn.median_seconds)
                ),
            ]);
        }
    }
    s.push_str(&t.render());
    let _ = writeln!(s);
}

/// The Markdown report.
pub fn markdown(r: &TabularResult) -> String {
    let mut s = r
        .run
        .header("tabular: a PFN against tuned classifiers on small real datasets");
    let _ = writeln!(s, "- data: `{}` (copies of the LIBSVM/UCI tables of the paper's code and of fifteen OpenML-CC18 datasets; see `data/README.md` for sources and licences)", r.data_dir);
    let _ = writeln!(s, "- models: {}", r.model_source);
    for (path, why) in &r.skipped_models {
        let _ = writeln!(s, "  - skipped `{path}`: {why}");
    }
    for m in &r.models {
        let _ = writeln!(s, "- {}", m.describe());
    }
    if r.models.is_empty() {
        let _ = writeln!(s, "\n**{NO_MODEL}** (give one with `--model`, e.g. `models/tabular.pfn`); the baselines are reported alone.");
    }
    let _ = writeln!(s, "\n### How the methods see the data\n");
    let _ = writeln!(s, "- Every method gets the same windows and splits. Missing values (NaN; only breast-w has any) are replaced in context and queries by the context rows' column means (`pfn_infer::impute_with_context_means`). Categorical columns (cmc, credit-g) are their integer codes, used as numbers by every method (CatBoost-style categorical handling is not part of this benchmark).");
    let _ = writeln!(s, "- The PFN z-scores each feature with its context rows' mean and standard deviation and zero-pads to its input width, as in training; a dataset with more features than the model takes (mfeat-fourier: 76, analcatdata_authorship: 70, against 60) gives the PFN a seeded random subset of that many features, the same for every window and split, while the baselines see every feature{}.", if r.views_selected { "; where the PFN's context is calibrated and chooses its view (below), it too sees every feature, through principal components" } else { "" });
    let _ = writeln!(s, "- PFN ensemble: {} member{} per window or split (`--ensemble`, `pfn_infer::ensemble`): member 0 sees the data as given, every other member a seeded random order of the feature columns and a random renaming of the classes, odd members normal scores of the features; the PFN's probabilities are the members' normalised geometric mean. Its times include every member.", r.ensemble, if r.ensemble == 1 { "" } else { "s" });
    if r.calibrated {
        let _ = writeln!(s, "- PFN calibration (`pfn_infer::calibration`; `--no-calibrate` turns it off): on every window or split with at least {} context rows, the ensemble answers each of {} class-stratified folds of the context from the other folds; the inverse temperature β in [{}, {}] that minimises the log loss of those held-out answers (labels smoothed by the rule of succession: 1 − 1/(n + 2) on the true class) tempers the queries' probabilities (p^β, renormalised). {} Only context rows are used. Its times include the folds.", pfn_infer::calibration::DEFAULT_MIN_ROWS, pfn_infer::calibration::DEFAULT_FOLDS, pfn_infer::calibration::BETA_RANGE.0, pfn_infer::calibration::BETA_RANGE.1, if r.views_selected { format!("The same folds choose the input view (`pfn_infer::principal_components`; `--as-given` turns it off): the features as given, or the scores on the leading {:?} principal components of the context's standardised features (each fold's components fitted on its own context rows; only counts below the feature count, capped at the model's width, and not as given when the table is wider than the model), whichever has the lowest tempered held-out log loss.", pfn_infer::principal_components::CANDIDATE_COMPONENTS) } else { "The input view is the features as given (`--as-given`).".to_string() });
    } else {
        let _ = writeln!(s, "- PFN calibration: off (`--no-calibrate`); the probabilities are the ensemble's as they are.");
    }
    let _ = writeln!(s, "- PFN arithmetic: {} (`--precision`; bf16 rounds the operands of the matrix products to bfloat16 and accumulates in f32)", r.precision);
    let _ = writeln!(s, "- The baselines get the features z-scored with the context rows' statistics (`FeatureScaler::fit_standardise`, the PFN's rule) and tune their hyperparameters by cross-validation on the context rows only (`pfn_baselines::classifiers`; grids after the paper's Table 6). XGBoost runs in Python: install it with `scripts/install-xgboost.sh` (a virtual environment `.venv-xgboost` with xgboost, scikit-learn and numpy from PyPI); without it every XGBoost cell says `failed`, the failures list says why, and XGBoost is left out of the ranks.");
    let _ = writeln!(s, "- `tabular/diabetes.txt` (LIBSVM) is the Pima data that `cc18/diabetes.csv` holds too; only the CC18 copy is used so that no dataset counts twice.");
    let _ = writeln!(s, "\n### Datasets\n");
    let mut t = MarkdownTable::new(&[
        "dataset",
        "collection",
        "rows",
        "features (PFN's subset where no view is chosen)",
        "classes",
        "rows per class",
        "missing cells",
    ]);
    for d in &r.datasets {
        t.row(vec![
            d.name.clone(),
            d.collection.clone(),
            d.rows.to_string(),
            if d.pfn_features == d.features {
                d.features.to_string()
            } else {
                format!("{} ({})", d.features, d.pfn_features)
            },
            d.classes.to_string(),
            d.class_counts
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("/"),
            d.missing_cells.to_string(),
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(s);
    protocol_markdown(&mut s, &r.paper, true);
    protocol_markdown(&mut s, &r.larger, false);
    targets_markdown(&mut s, r);
    let _ = writeln!(
        s,
        "## The paper's numbers (Table 1, 30 training rows, 21 OpenML datasets)\n"
    );
    let _ = writeln!(s, "Mean ROC AUC rank: PFN-BNN 2.786, PFN-GP 3.833, logistic regression 4.690, GP 5.286, KNN 6.214, BNN 5.000, CatBoost 4.833, XGBoost 3.357 (eight methods, so ranks run 1–8; here they run 1–{} over other datasets). ECE: PFN-BNN 0.025, XGBoost 0.066, logistic regression 0.157. Time for all datasets: PFN 13 s on a V100 GPU (4:23 on a CPU), XGBoost about 21 hours.\n", r.paper.ranked_methods.len().max(1));
    let _ = writeln!(s, "## Reproduce\n");
    let _ = writeln!(s, "```sh\nscripts/install-xgboost.sh   # optional: the XGBoost baseline's Python side\ncargo build --release\n{}\n```", r.run.command.replacen("pfn ", "target/release/pfn ", 1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(
            average_ranks(&[0.9, 0.7, 0.9, 0.5]),
            vec![1.5, 3.0, 1.5, 4.0]
        );
        assert_eq!(average_ranks(&[0.5, 0.5, 0.5]), vec![2.0, 2.0, 2.0]);
        let r = average_ranks(&[0.1, 0.4, 0.3, 0.2, 0.4]);
        assert_eq!(r.iter().sum::<f64>(), 15.0);
    }

    #[test]
    fn balanced_rows_alternate_the_first_two_classes() {
        // 7 rows of class 0, 3 of class 1, 5 of class 2.
        let labels: Vec<usize> = [0; 7].into_iter().chain([1; 3]).chain([2; 5]).collect();
        let rows = balanced_binary_rows(&labels, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(rows.len(), 6);
        let classes: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
        assert_eq!(classes, vec![0, 1, 0, 1, 0, 1]);
        let mut distinct = rows.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 6);
        let many: Vec<usize> = (0..1000).map(|i| i % 2).collect();
        let capped = balanced_binary_rows(&many, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(capped.len(), BALANCED_CAP);
    }

    #[test]
    fn the_pfn_feature_subset_is_seeded_and_sorted() {
        assert_eq!(pfn_feature_subset(5, 60, 0, 3), vec![0, 1, 2, 3, 4]);
        let a = pfn_feature_subset(76, 60, 0, 7);
        assert_eq!(a.len(), 60);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[59] < 76);
        assert_eq!(a, pfn_feature_subset(76, 60, 0, 7));
        assert_ne!(a, pfn_feature_subset(76, 60, 1, 7));
        let x: Vec<f64> = (0..6).map(f64::from).collect();
        assert_eq!(select_columns(&x, 3, &[0, 2]), vec![0.0, 2.0, 3.0, 5.0]);
    }
}
