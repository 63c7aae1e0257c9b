//! Seeded stratified k-fold cross-validation over a hyperparameter grid.
//!
//! Folds are stratified: each class's rows are shuffled (ChaCha8 seeded with the task seed) and
//! dealt round-robin to the folds, the deal continuing from class to class so that the fold sizes
//! differ by at most one. A class with fewer rows than folds simply misses some folds (the
//! training part of a fold may then lack a class; the classifiers handle absent classes). The
//! number of folds is `min(5, rows)`; with fewer than 2 rows there is no cross-validation.
//!
//! A grid point's score is the mean over folds of the validation ROC AUC
//! ([`roc_auc_ovr`]: class-1 AUC for two classes, else the mean one-vs-rest AUC over the classes
//! present in the fold), over the folds where it is defined (two classes present). The best grid
//! point has the highest mean AUC; ties (frequent on tiny data) go to the lower mean validation
//! log loss, then to the earlier grid point.

use pfn_distribution::class_metrics::{log_loss, roc_auc_ovr};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{gather_rows, present_classes, ClassifierError};

/// The paper's number of folds (spec 6.4: "each grid-searched with 5-fold CV").
pub const DEFAULT_FOLDS: usize = 5;

/// The fold (`0..folds`) of each row: stratified by label, seeded (see the module docs).
///
/// # Panics
/// When `folds` is 0 or a label is not below `num_classes`.
pub fn stratified_folds(
    labels: &[usize],
    num_classes: usize,
    folds: usize,
    seed: u64,
) -> Vec<usize> {
    assert!(folds > 0, "at least one fold");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0;
    for rows in &mut by_class {
        rows.shuffle(&mut rng);
        for &i in rows.iter() {
            fold_of[i] = next % folds;
            next += 1;
        }
    }
    fold_of
}

/// The outcome of a grid search.
#[derive(Debug, Clone, PartialEq)]
pub struct CvChoice {
    /// Index of the chosen grid point.
    pub best: usize,
    /// Mean validation ROC AUC of each grid point (NaN where no fold defines it).
    pub auc: Vec<f64>,
    /// Mean validation log loss of each grid point.
    pub log_loss: Vec<f64>,
}

/// Chooses among `grid_len` grid points by stratified cross-validation (see the module docs).
///
/// `x` (row-major, `f` features) and `labels` (contiguous `0..k`, `k >= 2`) are the training
/// rows. `fit_grid(train_x, train_labels, k_fold, val_x)` fits every grid point on a fold's
/// training part, whose labels are again contiguous `0..k_fold` with `k_fold >= 2`, and returns
/// one `val rows x k_fold` probability matrix per grid point, in grid order. With fewer than
/// two rows, grid point 0 is returned without fitting.
pub fn select<F>(
    x: &[f64],
    f: usize,
    labels: &[usize],
    k: usize,
    grid_len: usize,
    seed: u64,
    mut fit_grid: F,
) -> Result<CvChoice, ClassifierError>
where
    F: FnMut(&[f64], &[usize], usize, &[f64]) -> Result<Vec<Vec<f64>>, ClassifierError>,
{
    let n = labels.len();
    let folds = DEFAULT_FOLDS.min(n);
    if folds < 2 || grid_len <= 1 {
        return Ok(CvChoice {
            best: 0,
            auc: vec![f64::NAN; grid_len],
            log_loss: vec![f64::NAN; grid_len],
        });
    }
    let fold_of = stratified_folds(labels, k, folds, seed);
    let mut auc_sum = vec![0.0; grid_len];
    let mut auc_count = 0usize;
    let mut loss_sum = vec![0.0; grid_len];
    let mut loss_count = 0usize;
    for fold in 0..folds {
        let train_idx: Vec<usize> = (0..n).filter(|&i| fold_of[i] != fold).collect();
        let val_idx: Vec<usize> = (0..n).filter(|&i| fold_of[i] == fold).collect();
        if val_idx.is_empty() || train_idx.is_empty() {
            continue;
        }
        let train_x = gather_rows(x, f, &train_idx);
        let val_x = gather_rows(x, f, &val_idx);
        let train_labels: Vec<usize> = train_idx.iter().map(|&i| labels[i]).collect();
        let val_labels: Vec<usize> = val_idx.iter().map(|&i| labels[i]).collect();
        let (present, remapped) = present_classes(&train_labels, k);
        let grid_probs: Vec<Vec<f64>> = if present.len() == 1 {
            let mut p = vec![0.0; val_idx.len() * k];
            for row in p.chunks_exact_mut(k) {
                row[present[0]] = 1.0;
            }
            vec![p; grid_len]
        } else {
            let kf = present.len();
            let raw = fit_grid(&train_x, &remapped, kf, &val_x)?;
            if raw.len() != grid_len {
                return Err(ClassifierError::Shape(format!(
                    "cross-validation expected {grid_len} grid predictions, got {}",
                    raw.len()
                )));
            }
            raw.iter()
                .map(|probs| expand(probs, &present, k, val_idx.len()))
                .collect()
        };
        let mut fold_has_auc = false;
        for (g, probs) in grid_probs.iter().enumerate() {
            if let Ok(Some(a)) = roc_auc_ovr(probs, &val_labels, k) {
                auc_sum[g] += a;
                fold_has_auc = true;
            }
            if let Ok(Some(l)) = log_loss(probs, &val_labels, k) {
                loss_sum[g] += l;
            }
        }
        auc_count += usize::from(fold_has_auc);
        loss_count += 1;
    }
    let auc: Vec<f64> = auc_sum
        .iter()
        .map(|&s| {
            if auc_count > 0 {
                s / auc_count as f64
            } else {
                f64::NAN
            }
        })
        .collect();
    let log_loss: Vec<f64> = loss_sum
        .iter()
        .map(|&s| s / loss_count.max(1) as f64)
        .collect();
    let mut best = 0;
    for g in 1..grid_len {
        if better(auc[g], log_loss[g], auc[best], log_loss[best]) {
            best = g;
        }
    }
    Ok(CvChoice {
        best,
        auc,
        log_loss,
    })
}

/// Whether (auc, loss) beats (best_auc, best_loss): higher AUC, then lower log loss (NaN loses).
fn better(auc: f64, loss: f64, best_auc: f64, best_loss: f64) -> bool {
    let key = |a: f64| if a.is_nan() { f64::NEG_INFINITY } else { a };
    let (a, b) = (key(auc), key(best_auc));
    if a != b {
        return a > b;
    }
    let lkey = |l: f64| if l.is_nan() { f64::INFINITY } else { l };
    lkey(loss) < lkey(best_loss)
}

/// Expands `rows x present.len()` probabilities to `rows x k` (absent classes 0), sanitised and
/// renormalised as in [`super::fit_present_classes`].
pub(crate) fn expand(probs: &[f64], present: &[usize], k: usize, rows: usize) -> Vec<f64> {
    let kp = present.len();
    let mut out = vec![0.0; rows * k];
    for (row, p) in out.chunks_exact_mut(k).zip(probs.chunks_exact(kp)) {
        let mut total = 0.0;
        for (&c, &v) in present.iter().zip(p) {
            let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
            row[c] = v;
            total += v;
        }
        for &c in present {
            row[c] = if total > 0.0 {
                row[c] / total
            } else {
                1.0 / kp as f64
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_balanced_and_seeded() {
        let labels: Vec<usize> = (0..23).map(|i| usize::from(i % 3 == 0)).collect();
        let a = stratified_folds(&labels, 2, 5, 7);
        assert_eq!(a, stratified_folds(&labels, 2, 5, 7));
        assert_ne!(a, stratified_folds(&labels, 2, 5, 8));
        let mut sizes = [0; 5];
        for &f in &a {
            sizes[f] += 1;
        }
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        for fold in 0..5 {
            let ones = (0..23).filter(|&i| a[i] == fold && labels[i] == 1).count();
            assert!((1..=2).contains(&ones), "fold {fold}: {ones} positives");
        }
    }

    #[test]
    fn select_prefers_the_better_grid_point() {
        // Grid point 1 predicts the truth, grid point 0 the reverse.
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let labels: Vec<usize> = (0..20).map(|i| usize::from(i >= 10)).collect();
        let choice = select(&x, 1, &labels, 2, 2, 3, |_, _, k, vx| {
            assert_eq!(k, 2);
            let good: Vec<f64> = vx
                .iter()
                .flat_map(|&v| if v >= 10.0 { [0.1, 0.9] } else { [0.9, 0.1] })
                .collect();
            let bad: Vec<f64> = good.chunks(2).flat_map(|r| [r[1], r[0]]).collect();
            Ok(vec![bad, good])
        })
        .unwrap();
        assert_eq!(choice.best, 1);
        assert_eq!(choice.auc, vec![0.0, 1.0]);
    }
}
