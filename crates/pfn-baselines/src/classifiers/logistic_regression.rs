//! Multinomial logistic regression with an L2 penalty (spec 6.4, Table 6).
//!
//! The model is a softmax over `k` linear scores `z_c = w_c . x + b_c` (one weight vector per
//! present class, scikit-learn's multinomial parametrisation) fitted by minimising
//!
//! ```text
//! L(W, b) = (1/n) sum_i -log softmax(z_i)[y_i] + ||W||^2 / (2 C n)
//! ```
//!
//! which is scikit-learn's `C * sum_i loss_i + ||W||^2 / 2` divided by `C n` (same minimiser);
//! the intercepts are not penalised. `C = inf` is the unpenalised fit. The minimiser is the
//! L-BFGS of `pfn-gp` ([`pfn_gp::minimize_bounded`], no bounds), at most 500 iterations (the
//! paper's `max_iter`); the grid's fits are warm-started along increasing `C`.
//!
//! Differences from the paper's grid (saga; penalty l1/l2/none; tol {1e-2, 1e-4, 1e-10};
//! C {1e-5, 1e-3, 1e-2, 0.1, 1, 2}; max_iter 500): the penalty is l2 or none (no l1), the solver
//! is L-BFGS with one fixed tolerance (projected-gradient infinity norm 1e-6 on the mean loss)
//! instead of a tolerance grid, so the grid has 7 points: the six C values and no penalty. The
//! grid point is chosen by 5-fold cross-validated ROC AUC ([`super::cv`]), ties by log loss.

use pfn_gp::{minimize_bounded, LbfgsOptions};

use super::{cv, fit_present_classes, validate, ClassData, Classifier, ClassifierError};

/// Multinomial logistic regression with C chosen by cross-validation from [`Self::cs`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    /// Inverse penalty strengths, in increasing order (`f64::INFINITY` = no penalty).
    pub cs: Vec<f64>,
    /// Maximum L-BFGS iterations per fit.
    pub max_iters: usize,
    /// Stop when the gradient's infinity norm (of the mean-loss objective) is below this.
    pub grad_tol: f64,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        Self {
            cs: vec![1e-5, 1e-3, 1e-2, 0.1, 1.0, 2.0, f64::INFINITY],
            max_iters: 500,
            grad_tol: 1e-6,
        }
    }
}

/// A fitted multinomial logistic regression: `k x f` weights then `k` intercepts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Number of classes.
    pub k: usize,
    /// Number of features.
    pub f: usize,
    /// `k * f` weights (row-major by class) followed by `k` intercepts.
    pub params: Vec<f64>,
}

impl LogisticModel {
    /// `rows x k` class probabilities of row-major `x`.
    pub fn predict_proba(&self, x: &[f64]) -> Vec<f64> {
        let (k, f) = (self.k, self.f);
        let rows = x.len().checked_div(f).unwrap_or(0);
        let mut out = vec![0.0; rows * k];
        for (row, p) in x.chunks_exact(f.max(1)).zip(out.chunks_exact_mut(k)) {
            scores(&self.params, row, k, f, p);
            softmax_in_place(p);
        }
        out
    }
}

/// Linear scores of one row into `z` (length k).
fn scores(params: &[f64], row: &[f64], k: usize, f: usize, z: &mut [f64]) {
    let (w, b) = params.split_at(k * f);
    for c in 0..k {
        let wc = &w[c * f..(c + 1) * f];
        z[c] = b[c] + wc.iter().zip(row).map(|(a, x)| a * x).sum::<f64>();
    }
}

/// Replaces `z` by `softmax(z)` and returns `logsumexp(z)`.
fn softmax_in_place(z: &mut [f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        total += *v;
    }
    for v in z.iter_mut() {
        *v /= total;
    }
    max + total.ln()
}

/// The penalised mean negative log-likelihood `L(W, b)` of the module docs at `params`
/// (`k * f` weights then `k` intercepts), writing its gradient into `grad`.
///
/// `x` is row-major with `f` features, `labels` in `0..k`; `c` is the inverse penalty strength
/// (`f64::INFINITY` for none).
///
/// # Panics
/// When the lengths do not match.
pub fn penalised_loss(
    params: &[f64],
    x: &[f64],
    f: usize,
    labels: &[usize],
    k: usize,
    c: f64,
    grad: &mut [f64],
) -> f64 {
    let n = labels.len();
    assert_eq!(params.len(), k * (f + 1));
    assert_eq!(grad.len(), params.len());
    assert_eq!(x.len(), n * f);
    grad.fill(0.0);
    let inv_n = 1.0 / n as f64;
    let mut loss = 0.0;
    let mut z = vec![0.0; k];
    for (i, &y) in labels.iter().enumerate() {
        let row = &x[i * f..(i + 1) * f];
        scores(params, row, k, f, &mut z);
        let true_score = z[y];
        let lse = softmax_in_place(&mut z);
        loss += lse - true_score;
        z[y] -= 1.0;
        let (gw, gb) = grad.split_at_mut(k * f);
        for cl in 0..k {
            let d = z[cl] * inv_n;
            gb[cl] += d;
            for (g, xv) in gw[cl * f..(cl + 1) * f].iter_mut().zip(row) {
                *g += d * xv;
            }
        }
    }
    loss *= inv_n;
    if c.is_finite() {
        let lambda = inv_n / c;
        let (w, gw) = (&params[..k * f], &mut grad[..k * f]);
        let mut sq = 0.0;
        for (g, &v) in gw.iter_mut().zip(w) {
            *g += lambda * v;
            sq += v * v;
        }
        loss += 0.5 * lambda * sq;
    }
    loss
}

impl LogisticRegression {
    /// Fits one model with inverse penalty `c` (labels contiguous `0..k`), starting from `warm`
    /// when given (zeros otherwise).
    pub fn fit(
        &self,
        x: &[f64],
        f: usize,
        labels: &[usize],
        k: usize,
        c: f64,
        warm: Option<&[f64]>,
    ) -> Result<LogisticModel, ClassifierError> {
        let p = k * (f + 1);
        let x0 = warm.map_or_else(|| vec![0.0; p], <[f64]>::to_vec);
        let lower = vec![f64::NEG_INFINITY; p];
        let upper = vec![f64::INFINITY; p];
        let opts = LbfgsOptions {
            max_iters: self.max_iters,
            grad_tol: self.grad_tol,
            rel_f_tol: 1e-12,
            ..LbfgsOptions::default()
        };
        let result = minimize_bounded(
            |params, grad| {
                let v = penalised_loss(params, x, f, labels, k, c, grad);
                v.is_finite().then_some(v)
            },
            &x0,
            &lower,
            &upper,
            &opts,
        )
        .map_err(|e| ClassifierError::Numerical {
            classifier: "logistic regression",
            reason: e.to_string(),
        })?;
        Ok(LogisticModel {
            k,
            f,
            params: result.x,
        })
    }

    /// Fits every grid point (warm-started along the grid) and predicts `x_test` with each.
    fn predict_grid(
        &self,
        x: &[f64],
        f: usize,
        labels: &[usize],
        k: usize,
        x_test: &[f64],
    ) -> Result<Vec<Vec<f64>>, ClassifierError> {
        let mut warm: Option<Vec<f64>> = None;
        let mut out = Vec::with_capacity(self.cs.len());
        for &c in &self.cs {
            let model = self.fit(x, f, labels, k, c, warm.as_deref())?;
            out.push(model.predict_proba(x_test));
            warm = Some(model.params);
        }
        Ok(out)
    }

    /// Fits and predicts, also returning the chosen C (`None` when a single class was present).
    pub fn fit_predict_with_choice(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<(Vec<f64>, Option<f64>), ClassifierError> {
        let test_rows = validate(train, x_test)?;
        if self.cs.is_empty() || self.cs.iter().any(|c| c.is_nan() || *c <= 0.0) {
            return Err(ClassifierError::Shape(
                "logistic regression needs a non-empty grid of C > 0".into(),
            ));
        }
        let f = train.n_features;
        let mut chosen = None;
        let probs = fit_present_classes(
            train.x,
            train.labels,
            train.num_classes,
            x_test,
            test_rows,
            |x, labels, k, xt| {
                let choice = cv::select(x, f, labels, k, self.cs.len(), seed, |tx, tl, kf, vx| {
                    self.predict_grid(tx, f, tl, kf, vx)
                })?;
                let c = self.cs[choice.best];
                chosen = Some(c);
                Ok(self.fit(x, f, labels, k, c, None)?.predict_proba(xt))
            },
        )?;
        Ok((probs, chosen))
    }
}

impl Classifier for LogisticRegression {
    fn name(&self) -> &str {
        "logistic regression"
    }

    fn fit_predict(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, ClassifierError> {
        Ok(self.fit_predict_with_choice(train, x_test, seed)?.0)
    }
}
