//! Predictions tempered on the context: a temperature fitted by cross-validation over the context
//! rows, for class probabilities and for a regression model's bar distribution.
//!
//! A PFN answers with the posterior predictive of its prior. Where real tables are easier or
//! harder than the prior's typical dataset, the answer is under- or overconfident even though it
//! ranks the classes well (the tabular PFN on tables of 100 to 200 rows is underconfident: see
//! `docs/results/tabular/`). The context itself can tell: split its rows into `folds` folds
//! stratified by class, answer every fold from the other folds' rows, and choose the inverse
//! temperature `β` that minimises the cross-entropy of those held-out answers against their labels,
//!
//! ```text
//! L(β) = Σ_i [ −β Σ_c t_ic ln p_i(c) + ln Σ_c p_i(c)^β ],
//! ```
//!
//! which is convex in `β` (its second derivative is the variance of `ln p_i(c)` under the tempered
//! distribution), so bisection on `L′` finds the minimum. The targets `t_i` are the labels
//! smoothed by the rule of succession: with `n` held-out rows, `1 − 1/(n + 2)` on the label and the
//! rest shared by the other classes. A context whose held-out answers are all right then sharpens
//! until a miss has probability about `1/(n + 2)`, not without bound. The queries' probabilities
//! are then `p(c)^β / Σ_c' p(c')^β`. `β > 1` sharpens, `β < 1` flattens; `β` is kept within
//! [`BETA_RANGE`], and a context with fewer than `min_rows` rows, or with fewer than two classes
//! present, keeps `β = 1`.
//!
//! **Regression.** A bar distribution is tempered the same way, on its bucket densities:
//! `q_k ∝ (p_k / w_k)^β w_k` for bucket probabilities `p_k` and widths `w_k`, the shape inside each
//! bucket kept ([`BarPrediction::tempered`]). The folds are a seeded shuffle of the rows, and `β`
//! maximises the held-out targets' likelihood ([`fit_density_temperature`],
//! [`Predictor::density_temperature`]); the targets are not smoothed. Contexts under `min_rows`
//! rows, or with constant targets, keep `β = 1`. On real regression data the shipped gp-hyper
//! model's 90 % intervals were a little too wide: this brings them back towards 90 % and lowers
//! the held-out NLL (`docs/results/gp-hyper/calibration.md`).
//!
//! **Input views.** The same folds can also choose how the model sees the columns
//! ([`ContextCalibration::select_view`], on by default): as given, or as their scores on a few
//! leading principal components of the context ([`crate::principal_components`]; each fold's
//! components are fitted on that fold's own context rows). Every candidate view's held-out answers
//! get their own fitted `β`, and the view whose tempered answers have the lowest held-out loss
//! answers the queries, tempered by its `β`. A table wider than the model has only component
//! views, so a calibrated context of any width can be answered.
//!
//! Only the context is used, as the tuned baselines use cross-validation on it: nothing is learnt
//! from the queries. The held-out answers come from contexts of `(folds − 1)/folds` of the rows, a
//! little less informed than the final answer; with the default 5 folds that is 80 %. The fold
//! answers share the batched passes of the queries' answers
//! ([`Predictor::ensemble_class_probabilities_many`]), so calibration costs about `folds` more
//! passes over the context.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use pfn_distribution::BarPrediction;

use crate::batch::Task;
use crate::ensemble::{ClassEnsemble, ClassTask};
use crate::predictive::PosteriorPredictive;
use crate::predictor::{PredictError, Predictor};
use crate::principal_components::InputView;

/// The inverse temperatures `β` a fit may choose: a factor of 16 either way.
pub const BETA_RANGE: (f64, f64) = (0.0625, 16.0);

/// Default number of cross-validation folds over the context.
pub const DEFAULT_FOLDS: usize = 5;

/// Default smallest context that is calibrated (smaller ones keep `β = 1`): with fewer rows the
/// held-out log loss is too noisy to choose a temperature.
pub const DEFAULT_MIN_ROWS: usize = 50;

/// How to temper class probabilities on the context (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextCalibration {
    /// Cross-validation folds (at least 2).
    pub folds: usize,
    /// Smallest context that is calibrated; smaller ones keep `β = 1`.
    pub min_rows: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// Also choose each context's input view ([`InputView::candidates`]: the columns as given,
    /// or a few leading principal components) by the same held-out folds, in
    /// [`Predictor::calibrated_class_probabilities_many`] and
    /// [`Predictor::regression_calibration`] ([`Predictor::density_temperature`] keeps the
    /// columns as given).
    pub select_view: bool,
}

impl ContextCalibration {
    /// Errors for fewer than two folds.
    fn check(&self) -> Result<(), PredictError> {
        if self.folds < 2 {
            return Err(PredictError::Option {
                name: "calibration folds",
                problem: "must be at least 2".into(),
            });
        }
        Ok(())
    }

    /// Whether a context with these targets (class labels or regression targets) is calibrated:
    /// at least `min_rows` rows (and one per fold), and not all equal.
    pub fn applies_to<T: PartialEq>(&self, targets: &[T]) -> bool {
        let first = targets.first();
        targets.len() >= self.min_rows.max(self.folds) && targets.iter().any(|t| Some(t) != first)
    }
}

impl Default for ContextCalibration {
    /// [`DEFAULT_FOLDS`] folds, contexts of at least [`DEFAULT_MIN_ROWS`] rows, seed 0, views
    /// selected.
    fn default() -> Self {
        Self {
            folds: DEFAULT_FOLDS,
            min_rows: DEFAULT_MIN_ROWS,
            seed: 0,
            select_view: true,
        }
    }
}

/// One task's tempered class probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Tempered {
    /// `m × num_classes` probabilities, row-major.
    pub probabilities: Vec<f64>,
    /// The fitted inverse temperature `β` (1 where the context was not calibrated).
    pub beta: f64,
    /// The input view that answered the queries ([`InputView::AsGiven`] where the context was
    /// not calibrated or views were not selected).
    pub view: InputView,
}

/// The fold (in `0..folds`) of every context row: the rows of each class are shuffled by a
/// ChaCha8 stream of `seed` and dealt out in turn, continuing from class to class, so every fold
/// gets its share of every class and the folds differ in size by at most one row.
pub fn stratified_folds(labels: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0;
    for class in 0..classes {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        for i in rows {
            fold_of[i] = next;
            next = (next + 1) % folds;
        }
    }
    fold_of
}

/// The inverse temperature `β` in [`BETA_RANGE`] that minimises the cross-entropy of the tempered
/// probabilities `probs` (row-major, `k` classes per row) against `labels` smoothed by the rule of
/// succession: with `n` rows, the true class gets weight `1 − 1/(n + 2)` and the other classes
/// share `1/(n + 2)` (module docs). Without the smoothing, held-out answers that are all right
/// would drive `β` to the top of its range; with it, they sharpen until the tempered probability
/// of a miss is about `1/(n + 2)`. Probabilities are floored at `1e-300` before their logarithm.
/// No rows: `β = 1`.
pub fn fit_inverse_temperature(probs: &[f64], labels: &[usize], k: usize) -> f64 {
    if labels.is_empty() || k == 0 {
        return 1.0;
    }
    let miss = if k > 1 {
        1.0 / (labels.len() as f64 + 2.0)
    } else {
        0.0
    };
    let (hit, other) = (1.0 - miss, miss / (k.max(2) - 1) as f64);
    let rows: Vec<HeldOut> = probs
        .chunks_exact(k)
        .zip(labels)
        .map(|(row, &y)| {
            let a: Vec<f64> = row.iter().map(|&p| p.max(1e-300).ln()).collect();
            let sum: f64 = a.iter().sum();
            HeldOut {
                target: hit * a[y] + other * (sum - a[y]),
                a,
                log_width: Vec::new(),
            }
        })
        .collect();
    fit_power(&rows)
}

/// The inverse temperature `β` in [`BETA_RANGE`] that maximises the likelihood of held-out
/// regression targets under bar predictions tempered by `β` ([`BarPrediction::tempered`]):
/// `held_out` holds each prediction, in the model's normalised units, with the held-out target in
/// the same units. No rows: `β = 1`.
pub fn fit_density_temperature(held_out: &[(BarPrediction, f64)]) -> f64 {
    let rows = density_rows(held_out);
    if rows.is_empty() {
        return 1.0;
    }
    fit_power(&rows)
}

/// The held-out rows of [`fit_power`] for bar predictions and their targets (non-finite targets
/// left out).
fn density_rows(held_out: &[(BarPrediction, f64)]) -> Vec<HeldOut> {
    held_out
        .iter()
        .filter(|(_, z)| z.is_finite())
        .map(|(bar, z)| {
            let dist = bar.distribution();
            let log_width: Vec<f64> = dist.bucket_widths().iter().map(|w| w.ln()).collect();
            let a: Vec<f64> = bar
                .log_probabilities()
                .iter()
                .zip(&log_width)
                .map(|(lp, lw)| lp - lw)
                .collect();
            HeldOut {
                target: a[dist.bucket_index(*z)],
                a,
                log_width,
            }
        })
        .collect()
}

/// One held-out answer for [`fit_power`]: tempering by `β` gives outcome `c` the weight
/// `exp(β a_c + log_width_c)` (no `log_width`: 0), and the held-out outcome scores `β target`.
struct HeldOut {
    a: Vec<f64>,
    log_width: Vec<f64>,
    target: f64,
}

impl HeldOut {
    /// The largest log weight `β a_c + log_width_c` over the outcomes, and every outcome's
    /// `exp(log weight − largest)`.
    fn weights(&self, beta: f64) -> (f64, Vec<f64>) {
        let log_w: Vec<f64> = self
            .a
            .iter()
            .enumerate()
            .map(|(c, &a)| beta * a + self.log_width.get(c).copied().unwrap_or(0.0))
            .collect();
        let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (top, log_w.iter().map(|l| (l - top).exp()).collect())
    }
}

/// The `β` in [`BETA_RANGE`] that minimises `L(β) = Σ_i [ ln Σ_c exp(β a_ic + log_width_ic) − β
/// target_i ]`, convex in `β`: bisection in `ln β` on `L′(β) = Σ_i [ E_{q_β}[a_i] − target_i ]`,
/// increasing in `β`.
fn fit_power(rows: &[HeldOut]) -> f64 {
    let slope = |beta: f64| -> f64 {
        rows.iter()
            .map(|row| {
                let (_, w) = row.weights(beta);
                let z: f64 = w.iter().sum();
                let first: f64 = w.iter().zip(&row.a).map(|(w, a)| w * a).sum();
                first / z - row.target
            })
            .sum::<f64>()
    };
    let (mut lo, mut hi) = (BETA_RANGE.0.ln(), BETA_RANGE.1.ln());
    if slope(lo.exp()) >= 0.0 {
        return BETA_RANGE.0;
    }
    if slope(hi.exp()) <= 0.0 {
        return BETA_RANGE.1;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if slope(mid.exp()) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// `L(β) / n` of [`fit_power`]: the mean negative log-likelihood of the held-out outcomes under
/// the answers tempered by `β` (for bar predictions, in the normalised target units); 0 for no
/// rows.
fn power_loss(rows: &[HeldOut], beta: f64) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    let total: f64 = rows
        .iter()
        .map(|row| {
            let (top, w) = row.weights(beta);
            top + w.iter().sum::<f64>().ln() - beta * row.target
        })
        .sum();
    total / rows.len() as f64
}

/// Raises every row of `probs` (`k` classes per row) to the power `beta` and renormalises it.
pub fn temper(probs: &mut [f64], k: usize, beta: f64) {
    if k == 0 || beta == 1.0 {
        return;
    }
    for row in probs.chunks_exact_mut(k) {
        let logs: Vec<f64> = row.iter().map(|&p| p.max(1e-300).ln()).collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for (v, a) in row.iter_mut().zip(&logs) {
            *v = (beta * (a - top)).exp();
            total += *v;
        }
        for v in row.iter_mut() {
            *v /= total;
        }
    }
}

/// One held-out fold of a context: the other folds' rows as context, its own rows as queries, with
/// their targets (class labels or regression targets) in row order.
struct Fold<T> {
    x: Vec<f64>,
    targets: Vec<T>,
    x_query: Vec<f64>,
    query_targets: Vec<T>,
}

/// Every fold of a context (`x` row-major with `d` columns, one target per row), given each row's
/// fold ([`stratified_folds`]).
fn split_folds<T: Copy>(
    x: &[f64],
    d: usize,
    targets: &[T],
    fold_of: &[usize],
    folds: usize,
) -> Vec<Fold<T>> {
    (0..folds)
        .map(|f| {
            let mut fold = Fold {
                x: Vec::new(),
                targets: Vec::new(),
                x_query: Vec::new(),
                query_targets: Vec::new(),
            };
            for ((row, &target), &of) in x.chunks_exact(d.max(1)).zip(targets).zip(fold_of) {
                if of == f {
                    fold.x_query.extend_from_slice(row);
                    fold.query_targets.push(target);
                } else {
                    fold.x.extend_from_slice(row);
                    fold.targets.push(target);
                }
            }
            fold
        })
        .collect()
}

impl Predictor {
    /// The inverse temperature of a regression model's predictions, fitted on the context
    /// `(x, y)` (`features` per row) by cross-validation, for the features as given:
    /// [`Predictor::regression_calibration`] without view selection.
    pub fn density_temperature(
        &self,
        x: &[f64],
        y: &[f64],
        features: usize,
        calibration: ContextCalibration,
    ) -> Result<f64, PredictError> {
        let as_given = ContextCalibration {
            select_view: false,
            ..calibration
        };
        Ok(self.regression_calibration(x, y, features, as_given)?.1)
    }

    /// A regression model's input view and the inverse temperature of its predictions, fitted on
    /// the context `(x, y)` (`features` per row) by cross-validation: the rows are shuffled
    /// (seeded) and dealt into `calibration.folds` folds, each fold is answered from the other
    /// folds' rows (in shared batched passes), and `β` maximises the held-out targets' likelihood
    /// under the tempered predictions ([`fit_density_temperature`]). With
    /// `calibration.select_view`, every view of [`InputView::candidates`] is tried (each fold's
    /// components fitted on its own context rows) and the one with the highest tempered held-out
    /// likelihood is returned; a table wider than the model then gets principal components. Apply
    /// `β` with [`Context::set_temperature`](crate::Context::set_temperature) on a context built
    /// from the view's data ([`InputView::apply`]). A context under `calibration.min_rows` rows,
    /// or whose targets are all equal, gives the features as given and 1. Errors as
    /// [`Predictor::predict_many`], and for fewer than two folds.
    pub fn regression_calibration(
        &self,
        x: &[f64],
        y: &[f64],
        features: usize,
        calibration: ContextCalibration,
    ) -> Result<(InputView, f64), PredictError> {
        calibration.check()?;
        if !calibration.applies_to(y) {
            return Ok((InputView::AsGiven, 1.0));
        }
        let views = if calibration.select_view {
            InputView::candidates(features, self.num_features())
        } else {
            vec![InputView::AsGiven]
        };
        let fold_of = stratified_folds(&vec![0; y.len()], calibration.folds, calibration.seed);
        let folds = split_folds(x, features, y, &fold_of, calibration.folds);
        let mut data = Vec::with_capacity(views.len() * folds.len());
        for view in &views {
            for f in &folds {
                data.push(view.apply(&f.x, &f.x_query, features)?);
            }
        }
        let tasks: Vec<Task<'_>> = data
            .iter()
            .zip(folds.iter().cycle())
            .map(|(v, f)| Task {
                x: &v.x,
                y: &f.targets,
                x_query: &v.x_query,
                features: v.features,
            })
            .collect();
        let answers = self
            .predict_many(&tasks)
            .map_err(PredictError::without_task)?;
        let mut scored = Vec::with_capacity(views.len());
        for (view, view_answers) in views.iter().zip(answers.chunks(folds.len().max(1))) {
            let mut held_out = Vec::with_capacity(y.len());
            for (answer, fold) in view_answers.iter().zip(&folds) {
                for (p, &target) in answer.iter().zip(&fold.query_targets) {
                    if let PosteriorPredictive::Regression(r) = p {
                        // Every view of a fold shares its target scaling (the targets are not
                        // transformed), so the views' losses are comparable.
                        let z = r.target_scaler().transform(target);
                        held_out.push((r.normalised().clone(), z));
                    }
                }
            }
            let rows = density_rows(&held_out);
            let beta = if rows.is_empty() {
                1.0
            } else {
                fit_power(&rows)
            };
            scored.push((*view, beta, power_loss(&rows, beta)));
        }
        Ok(lowest_loss(scored))
    }

    /// [`Predictor::calibrated_class_probabilities_many`] for one dataset (its error is the task's
    /// own, not wrapped in [`PredictError::Task`]).
    pub fn calibrated_class_probabilities(
        &self,
        task: ClassTask<'_>,
        num_classes: usize,
        ensemble: ClassEnsemble,
        calibration: ContextCalibration,
    ) -> Result<Tempered, PredictError> {
        let mut out = self
            .calibrated_class_probabilities_many(&[task], num_classes, ensemble, calibration)
            .map_err(PredictError::without_task)?;
        Ok(out.pop().unwrap_or(Tempered {
            probabilities: Vec::new(),
            beta: 1.0,
            view: InputView::AsGiven,
        }))
    }

    /// [`Predictor::ensemble_class_probabilities_many`] with every task's probabilities tempered
    /// by an inverse temperature fitted on its own context by cross-validation (module docs).
    /// With `calibration.select_view`, the same held-out folds also choose each task's input view
    /// among [`InputView::candidates`]: the view whose tempered held-out answers have the lowest
    /// log loss answers the queries. The folds of every task and view are answered in shared
    /// batched passes, then the queries of every task in its chosen view. Errors as
    /// [`Predictor::ensemble_class_probabilities_many`], and for fewer than two folds.
    pub fn calibrated_class_probabilities_many(
        &self,
        tasks: &[ClassTask<'_>],
        num_classes: usize,
        ensemble: ClassEnsemble,
        calibration: ContextCalibration,
    ) -> Result<Vec<Tempered>, PredictError> {
        calibration.check()?;
        let task_err = |task: usize, e: PredictError| PredictError::Task {
            task,
            source: Box::new(e),
        };
        // Every task's folds (none for a task that is not calibrated) and candidate views.
        let mut folds: Vec<Vec<Fold<usize>>> = Vec::with_capacity(tasks.len());
        let mut views: Vec<Vec<InputView>> = Vec::with_capacity(tasks.len());
        for t in tasks {
            let applies = calibration.applies_to(t.labels);
            folds.push(if applies {
                let fold_of = stratified_folds(t.labels, calibration.folds, calibration.seed);
                split_folds(t.x, t.features, t.labels, &fold_of, calibration.folds)
            } else {
                Vec::new()
            });
            views.push(if applies && calibration.select_view {
                InputView::candidates(t.features, self.num_features())
            } else {
                vec![InputView::AsGiven]
            });
        }
        // Every fold of every task in every candidate view (the view fitted on the fold's own
        // context rows), with the task it belongs to.
        let mut fold_data = Vec::new();
        let mut owner = Vec::new();
        for (i, (t, (task_folds, task_views))) in
            tasks.iter().zip(folds.iter().zip(&views)).enumerate()
        {
            for view in task_views {
                for f in task_folds {
                    let v = view
                        .apply(&f.x, &f.x_query, t.features)
                        .map_err(|e| task_err(i, e))?;
                    fold_data.push((v, &f.targets));
                    owner.push(i);
                }
            }
        }
        let fold_tasks: Vec<ClassTask<'_>> = fold_data
            .iter()
            .map(|(v, labels)| ClassTask {
                x: &v.x,
                labels,
                x_query: &v.x_query,
                features: v.features,
            })
            .collect();
        let fold_answers = self
            .ensemble_class_probabilities_many(&fold_tasks, num_classes, ensemble)
            .map_err(|e| match e {
                // A fold's error is its task's.
                PredictError::Task { task, source } => PredictError::Task {
                    task: owner[task],
                    source,
                },
                e => e,
            })?;
        // Each task's view and its β.
        let mut fold_answers = fold_answers.into_iter();
        let mut chosen = Vec::with_capacity(tasks.len());
        for (task_folds, task_views) in folds.iter().zip(&views) {
            if task_folds.is_empty() {
                chosen.push((InputView::AsGiven, 1.0));
                continue;
            }
            let labels: Vec<usize> = task_folds
                .iter()
                .flat_map(|f| f.query_targets.iter().copied())
                .collect();
            let held_out: Vec<(InputView, Vec<f64>)> = task_views
                .iter()
                .map(|&view| {
                    let probs = (0..task_folds.len())
                        .flat_map(|_| fold_answers.next().unwrap_or_default())
                        .collect();
                    (view, probs)
                })
                .collect();
            chosen.push(choose_view(held_out, &labels, num_classes));
        }
        // The queries of every task in its chosen view (fitted on the whole context).
        let mut query_data = Vec::with_capacity(tasks.len());
        for (i, (t, &(view, _))) in tasks.iter().zip(&chosen).enumerate() {
            query_data.push(
                view.apply(t.x, t.x_query, t.features)
                    .map_err(|e| task_err(i, e))?,
            );
        }
        let query_tasks: Vec<ClassTask<'_>> = tasks
            .iter()
            .zip(&query_data)
            .map(|(t, v)| ClassTask {
                x: &v.x,
                labels: t.labels,
                x_query: &v.x_query,
                features: v.features,
            })
            .collect();
        let answers =
            self.ensemble_class_probabilities_many(&query_tasks, num_classes, ensemble)?;
        Ok(answers
            .into_iter()
            .zip(chosen)
            .map(|(mut probabilities, (view, beta))| {
                temper(&mut probabilities, num_classes, beta);
                Tempered {
                    probabilities,
                    beta,
                    view,
                }
            })
            .collect())
    }
}

/// The view whose held-out answers, each tempered by its own fitted inverse temperature, have the
/// lowest log loss against `labels` (the first on a tie), with that temperature. `held_out` pairs
/// each candidate view with its held-out probabilities (row-major, `k` per row, rows in the order
/// of `labels`); no candidate gives [`InputView::AsGiven`] and `β = 1`.
pub fn choose_view(
    held_out: Vec<(InputView, Vec<f64>)>,
    labels: &[usize],
    k: usize,
) -> (InputView, f64) {
    lowest_loss(held_out.into_iter().map(|(view, mut probs)| {
        let beta = fit_inverse_temperature(&probs, labels, k);
        temper(&mut probs, k, beta);
        (view, beta, mean_log_loss(&probs, labels, k))
    }))
}

/// The view and `β` of the `(view, β, held-out loss)` candidate with the lowest loss, the first on
/// a tie; no candidate gives [`InputView::AsGiven`] and `β = 1`. The one rule by which classes and
/// regression choose a view.
fn lowest_loss(candidates: impl IntoIterator<Item = (InputView, f64, f64)>) -> (InputView, f64) {
    let mut best = (InputView::AsGiven, 1.0, f64::INFINITY);
    for candidate in candidates {
        if candidate.2 < best.2 {
            best = candidate;
        }
    }
    (best.0, best.1)
}

/// Mean negative log-probability of `labels` under `probs` (row-major, `k` per row), each
/// probability floored at `1e-15`; 0 for no rows.
fn mean_log_loss(probs: &[f64], labels: &[usize], k: usize) -> f64 {
    if labels.is_empty() || k == 0 {
        return 0.0;
    }
    let total: f64 = probs
        .chunks_exact(k)
        .zip(labels)
        .map(|(row, &l)| -row[l].max(1e-15).ln())
        .sum();
    total / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_with_the_lowest_tempered_held_out_loss_is_chosen() {
        use InputView::{AsGiven, PrincipalComponents as Pc};
        let labels = [0, 1, 1, 0, 1];
        // Probability `right` on the true class, except `wrong` on row 2: a view that misses one
        // row narrowly (a), one right everywhere (b), one that misses a row confidently (c).
        let rows = |right: f64, wrong: f64| -> Vec<f64> {
            labels
                .iter()
                .enumerate()
                .flat_map(|(i, &l)| {
                    let p = if i == 2 { wrong } else { right };
                    if l == 0 {
                        [p, 1.0 - p]
                    } else {
                        [1.0 - p, p]
                    }
                })
                .collect()
        };
        let (a, b, c) = (rows(0.7, 0.45), rows(0.9, 0.9), rows(0.99, 0.01));
        let (view, beta) = choose_view(
            vec![(AsGiven, a.clone()), (Pc(8), b.clone()), (Pc(16), c)],
            &labels,
            2,
        );
        assert_eq!(view, Pc(8));
        assert_eq!(beta, fit_inverse_temperature(&b, &labels, 2));
        // A tie keeps the first; no candidate is the data as given.
        assert_eq!(
            choose_view(vec![(AsGiven, a.clone()), (Pc(8), a)], &labels, 2).0,
            AsGiven
        );
        assert_eq!(choose_view(Vec::new(), &labels, 2), (AsGiven, 1.0));
    }

    #[test]
    fn folds_are_stratified_balanced_and_reproducible() {
        let labels: Vec<usize> = (0..23).map(|i| if i % 4 == 0 { 1 } else { 0 }).collect();
        let folds = stratified_folds(&labels, 5, 3);
        assert_eq!(folds, stratified_folds(&labels, 5, 3));
        assert_ne!(folds, stratified_folds(&labels, 5, 4));
        let mut sizes = [0usize; 5];
        let mut ones = [0usize; 5];
        for (&f, &l) in folds.iter().zip(&labels) {
            sizes[f] += 1;
            ones[f] += l;
        }
        assert!(sizes.iter().all(|&s| s == 4 || s == 5), "{sizes:?}");
        // Six rows of class 1 over five folds: every fold has one or two.
        assert!(ones.iter().all(|&c| c == 1 || c == 2), "{ones:?}");
    }

    /// Cross-entropy of `probs` tempered by `beta` against `labels` smoothed by the rule of
    /// succession (`1 − 1/(n + 2)` on the label).
    fn loss(probs: &[f64], labels: &[usize], k: usize, beta: f64) -> f64 {
        let mut p = probs.to_vec();
        temper(&mut p, k, beta);
        let miss = 1.0 / (labels.len() as f64 + 2.0);
        p.chunks_exact(k)
            .zip(labels)
            .map(|(row, &y)| {
                (0..k)
                    .map(|c| {
                        let t = if c == y {
                            1.0 - miss
                        } else {
                            miss / (k - 1) as f64
                        };
                        -t * row[c].ln()
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / labels.len() as f64
    }

    #[test]
    fn the_fitted_temperature_minimises_the_smoothed_held_out_cross_entropy() {
        // Underconfident answers that are right 9 times in 10: sharpening helps.
        let mut probs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..50 {
            probs.extend_from_slice(&[0.6, 0.3, 0.1]);
            labels.push(if i % 10 == 0 { 1 } else { 0 });
        }
        let beta = fit_inverse_temperature(&probs, &labels, 3);
        assert!(beta > 1.5, "{beta}");
        let best = loss(&probs, &labels, 3, beta);
        for other in [beta * 0.98, beta * 1.02, 1.0] {
            assert!(best <= loss(&probs, &labels, 3, other) + 1e-12, "{other}");
        }
        // Overconfident answers that are wrong a third of the time: flattening helps.
        let labels: Vec<usize> = (0..30).map(|i| if i % 3 == 0 { 2 } else { 0 }).collect();
        let probs: Vec<f64> = (0..30).flat_map(|_| [0.98, 0.01, 0.01]).collect();
        let beta = fit_inverse_temperature(&probs, &labels, 3);
        assert!(beta < 0.8, "{beta}");
        // Always right: sharpened until a miss has about the rule of succession's 1/(n + 2),
        // not to the top of the range; no rows: unchanged.
        let labels = vec![0; 10];
        let probs: Vec<f64> = (0..10).flat_map(|_| [0.7, 0.3]).collect();
        let beta = fit_inverse_temperature(&probs, &labels, 2);
        assert!(beta > 1.5 && beta < BETA_RANGE.1, "{beta}");
        let mut p = vec![0.7, 0.3];
        temper(&mut p, 2, beta);
        assert!((p[1] - 1.0 / 12.0).abs() < 1e-9, "{p:?}");
        assert_eq!(fit_inverse_temperature(&[], &[], 2), 1.0);
    }

    #[test]
    fn the_density_temperature_follows_how_spread_the_held_out_targets_are() {
        use pfn_distribution::BarDistribution;
        // Ten buckets of width 1 on [0, 10]; every prediction peaks at bucket 5.
        let dist = BarDistribution::bounded((0..=10).map(f64::from).collect()).unwrap();
        let logits: Vec<f32> = (0..10).map(|k| -0.5 * (k as f32 - 5.0).abs()).collect();
        let bar = dist.predict(&logits).unwrap();
        let held_out = |targets: &[f64]| -> Vec<(BarPrediction, f64)> {
            targets.iter().map(|&t| (bar.clone(), t)).collect()
        };
        // Targets at the peak: sharpen. Targets spread evenly: flatten.
        let peaked = fit_density_temperature(&held_out(&[5.5; 20]));
        let spread: Vec<f64> = (0..20).map(|i| 0.75 + 0.45 * i as f64).collect();
        let flat = fit_density_temperature(&held_out(&spread));
        assert!(peaked > 2.0, "{peaked}");
        assert!(flat < 0.8 && flat > BETA_RANGE.0, "{flat}");
        // The fit is the maximum of the tempered likelihood.
        let log_lik = |beta: f64| -> f64 {
            spread
                .iter()
                .map(|&t| bar.tempered(beta).log_density(t))
                .sum()
        };
        for other in [flat * 0.97, flat * 1.03] {
            assert!(log_lik(flat) >= log_lik(other) - 1e-9, "{other}");
        }
        assert_eq!(fit_density_temperature(&[]), 1.0);
    }

    #[test]
    fn tempering_keeps_rows_normalised_and_the_order_of_classes() {
        let mut p = vec![0.5, 0.3, 0.2, 0.0, 1.0, 0.0];
        temper(&mut p, 3, 2.0);
        assert!((p[0] - 0.25 / 0.38).abs() < 1e-12, "{p:?}");
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert!((p[3..].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[4] > 0.999_999);
        let mut q = vec![0.5, 0.3, 0.2];
        temper(&mut q, 3, 1.0);
        assert_eq!(q, vec![0.5, 0.3, 0.2]);
    }
}
