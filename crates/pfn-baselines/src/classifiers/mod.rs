//! Classical classifiers for the tabular classification experiment (spec 6.4, the paper's
//! Table 6): logistic regression, k-nearest neighbours, a GP classifier (Laplace approximation)
//! and XGBoost (through a Python helper), each tuning a small hyperparameter grid by
//! cross-validation on its training rows only.
//!
//! Every classifier implements [`Classifier`]: it takes the training rows as [`ClassData`]
//! (features already z-scored by the caller with the training rows' statistics, missing values
//! already imputed) and returns `rows x num_classes` class probabilities for the test rows.
//!
//! Shared conventions:
//! * **Absent classes.** Labels run over `0..num_classes`, but a small training set may lack some
//!   classes. The present classes are remapped to `0..k`, the classifier is fitted on those, and
//!   the absent classes get probability exactly 0 (rows still sum to 1).
//! * **A single present class** is predicted with probability 1, without fitting anything.
//! * **Cross-validation** ([`cv`]): stratified k-fold (5 folds, fewer when the training set has
//!   fewer than 5 rows), seeded with `rand_chacha`; a grid point's score is the mean ROC AUC
//!   (one-vs-rest for more than two classes, [`pfn_distribution::class_metrics::roc_auc_ovr`])
//!   over the folds where it is defined, ties broken by the lower mean log loss and then by the
//!   grid order.
//! * Everything is f64, serial per task (parallelise across tasks) and reproducible for a seed.

pub mod cv;
pub mod gp_classifier;
pub mod knn;
pub mod logistic_regression;
pub mod xgboost;

pub use gp_classifier::{GpClassifier, GpSelection};
pub use knn::Knn;
pub use logistic_regression::LogisticRegression;
pub use xgboost::XgBoost;

/// A training set of a classification task.
///
/// Features are already z-scored by the caller with the training rows' statistics (row-major,
/// `labels.len()` rows of `n_features`), missing values already imputed.
#[derive(Debug, Clone, Copy)]
pub struct ClassData<'a> {
    /// Row-major features, `labels.len() * n_features` values.
    pub x: &'a [f64],
    /// Number of features per row.
    pub n_features: usize,
    /// Class of each row, in `0..num_classes`.
    pub labels: &'a [usize],
    /// Number of classes of the task (some may be absent from `labels`).
    pub num_classes: usize,
}

impl ClassData<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// Everything that can go wrong when fitting a classifier.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// The task's shapes do not fit together.
    #[error("invalid classification task: {0}")]
    Shape(String),
    /// A label is not below the number of classes.
    #[error("label {label} of training row {row} is not below num_classes = {num_classes}")]
    InvalidLabel {
        /// Training row.
        row: usize,
        /// Its label.
        label: usize,
        /// The task's number of classes.
        num_classes: usize,
    },
    /// A feature value is NaN or infinite.
    #[error(
        "{what} row {row}, feature {feature} is not finite ({value}): impute missing values first"
    )]
    NotFinite {
        /// `training` or `test`.
        what: &'static str,
        /// Row index.
        row: usize,
        /// Feature index.
        feature: usize,
        /// The value.
        value: f64,
    },
    /// The XGBoost helper's Python environment is missing.
    #[error("XGBoost is not installed: run scripts/install-xgboost.sh ({0})")]
    XgboostUnavailable(String),
    /// The XGBoost helper ran but failed or answered something unreadable.
    #[error("the XGBoost helper failed: {0}")]
    Xgboost(String),
    /// A numerical step failed (e.g. a Cholesky factorisation).
    #[error("{classifier}: numerical failure: {reason}")]
    Numerical {
        /// The classifier's name.
        classifier: &'static str,
        /// What failed.
        reason: String,
    },
}

/// A classifier with its hyperparameter grid (see the module docs for the shared conventions).
pub trait Classifier: Send + Sync {
    /// Short name for reports: "logistic regression", "kNN", "GP classifier", "XGBoost".
    fn name(&self) -> &str;

    /// Fits on `train` (tuning its hyperparameters by k-fold cross-validation on `train` only, as
    /// in the paper's grids) and returns rows x num_classes probabilities for `x_test`
    /// (row-major, rows sum to 1).
    fn fit_predict(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, ClassifierError>;

    /// Many independent tasks at once (default: loops over [`Classifier::fit_predict`]; the
    /// XGBoost one sends all tasks to one Python process to avoid per-task start-up).
    fn fit_predict_many(
        &self,
        tasks: &[(ClassData, &[f64])],
        seed: u64,
    ) -> Result<Vec<Vec<f64>>, ClassifierError> {
        tasks
            .iter()
            .map(|(train, x_test)| self.fit_predict(train, x_test, seed))
            .collect()
    }
}

/// The paper's classical baselines (spec 6.4, Table 6): logistic regression, kNN, the GP
/// classifier, and XGBoost when its Python environment is found ([`XgBoost::available`]).
pub fn paper_baselines() -> Vec<Box<dyn Classifier>> {
    let mut all: Vec<Box<dyn Classifier>> = vec![
        Box::new(LogisticRegression::default()),
        Box::new(Knn::default()),
        Box::new(GpClassifier::default()),
    ];
    if XgBoost::available() {
        all.push(Box::new(XgBoost::default()));
    }
    all
}

/// Checks a task's shapes, labels and finiteness; returns the number of test rows.
pub(crate) fn validate(train: &ClassData, x_test: &[f64]) -> Result<usize, ClassifierError> {
    let f = train.n_features;
    if train.num_classes == 0 {
        return Err(ClassifierError::Shape("num_classes is 0".into()));
    }
    if train.labels.is_empty() {
        return Err(ClassifierError::Shape(
            "the training set has no rows".into(),
        ));
    }
    if train.x.len() != train.labels.len() * f {
        return Err(ClassifierError::Shape(format!(
            "{} training values for {} rows of {f} features",
            train.x.len(),
            train.labels.len()
        )));
    }
    let test_rows = if f == 0 {
        if !x_test.is_empty() {
            return Err(ClassifierError::Shape(
                "test values given for 0 features".into(),
            ));
        }
        0
    } else {
        if !x_test.len().is_multiple_of(f) {
            return Err(ClassifierError::Shape(format!(
                "{} test values are not a whole number of rows of {f} features",
                x_test.len()
            )));
        }
        x_test.len() / f
    };
    if let Some((row, &label)) = train
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l >= train.num_classes)
    {
        return Err(ClassifierError::InvalidLabel {
            row,
            label,
            num_classes: train.num_classes,
        });
    }
    for (what, values) in [("training", train.x), ("test", x_test)] {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(ClassifierError::NotFinite {
                what,
                row: i / f,
                feature: i % f,
                value: values[i],
            });
        }
    }
    Ok(test_rows)
}

/// The classes present in `labels` (sorted) and each label's index among them.
pub(crate) fn present_classes(labels: &[usize], num_classes: usize) -> (Vec<usize>, Vec<usize>) {
    let mut seen = vec![false; num_classes];
    for &l in labels {
        seen[l] = true;
    }
    let present: Vec<usize> = (0..num_classes).filter(|&c| seen[c]).collect();
    let mut index = vec![usize::MAX; num_classes];
    for (i, &c) in present.iter().enumerate() {
        index[c] = i;
    }
    (present, labels.iter().map(|&l| index[l]).collect())
}

/// Runs `fit` on the present classes only and expands its probabilities back to
/// `num_classes` columns (absent classes get 0); a single present class is predicted with
/// probability 1 without calling `fit`.
///
/// `fit(x, labels, k, x_test)` sees contiguous labels `0..k` with `k >= 2` and must return
/// `test rows x k` probabilities. The result is sanitised: non-finite or negative entries become
/// 0 and each row is renormalised (a row with no mass becomes uniform over the present classes).
pub(crate) fn fit_present_classes<F>(
    x: &[f64],
    labels: &[usize],
    num_classes: usize,
    x_test: &[f64],
    test_rows: usize,
    mut fit: F,
) -> Result<Vec<f64>, ClassifierError>
where
    F: FnMut(&[f64], &[usize], usize, &[f64]) -> Result<Vec<f64>, ClassifierError>,
{
    let (present, remapped) = present_classes(labels, num_classes);
    let k = present.len();
    if k == 1 {
        let mut out = vec![0.0; test_rows * num_classes];
        for row in out.chunks_exact_mut(num_classes) {
            row[present[0]] = 1.0;
        }
        return Ok(out);
    }
    let probs = fit(x, &remapped, k, x_test)?;
    if probs.len() != test_rows * k {
        return Err(ClassifierError::Shape(format!(
            "expected {test_rows} x {k} probabilities, got {} values",
            probs.len()
        )));
    }
    Ok(cv::expand(&probs, &present, num_classes, test_rows))
}

/// Rows `idx` of a row-major matrix with `f` columns.
pub(crate) fn gather_rows(x: &[f64], f: usize, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * f);
    for &i in idx {
        out.extend_from_slice(&x[i * f..(i + 1) * f]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_classes_get_zero_and_rows_sum_to_one() {
        let x = [0.0, 1.0, 2.0];
        let labels = [3, 1, 3];
        let out = fit_present_classes(&x, &labels, 5, &[0.5, 1.5], 2, |_, l, k, _| {
            assert_eq!(k, 2);
            assert_eq!(l, &[1, 0, 1]);
            Ok(vec![0.25, 0.75, f64::NAN, 2.0])
        })
        .unwrap();
        assert_eq!(
            out,
            vec![0.0, 0.25, 0.0, 0.75, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        let single =
            fit_present_classes(&x, &[2, 2, 2], 4, &[0.0], 1, |_, _, _, _| unreachable!()).unwrap();
        assert_eq!(single, vec![0.0, 0.0, 1.0, 0.0]);
    }
}
