//! GP classifier: binary Laplace approximation with a logistic likelihood and an RBF kernel,
//! one-vs-rest for more than two classes (spec 6.4, Table 6).
//!
//! The binary model is Rasmussen & Williams (2006), Algorithm 3.1 (Newton iterations for the
//! posterior mode `f` of the latent function with `B = I + W^1/2 K W^1/2`, its Cholesky factor
//! from `pfn-gp` in f64, and the approximate log marginal likelihood
//! `-a'f/2 + log p(y|f) - sum log diag L`) and Algorithm 3.2 (predictive latent mean
//! `k*' grad log p(y|f)` and variance `k** - |L \ W^1/2 k*|^2`), with the averaged predictive
//! probability approximated by MacKay's probit rule `sigmoid(mean / sqrt(1 + pi var / 8))`
//! (R&W eq. 3.25 ff.). Newton steps are halved while they decrease the objective (rarely
//! needed: the logistic log-likelihood is concave).
//!
//! Kernel: `k(x, x') = s exp(-|x - x'|^2 / (2 l^2))` with the paper's grid, output scale
//! `s` in {0.05, 0.1, 0.5, 1, 5, 10} (the kernel's variance, as scikit-learn's
//! `s * RBF(l)`) times lengthscale in {0.1, 0.5, 1, 2}. **Differences from the paper:** the
//! lengthscale grid is multiplied by `sqrt(n_features)` (the expected distance between z-scored
//! rows grows like `sqrt(2 F)`; unscaled, every grid lengthscale is far below it for 20+
//! features); the grid values are used as they are (scikit-learn's `GaussianProcessClassifier`
//! would start its own marginal-likelihood optimisation from them); and by default the grid
//! point is chosen per binary problem by the Laplace marginal likelihood instead of 5-fold
//! cross-validation ([`GpSelection`]), which costs one fit per grid point instead of five and
//! lets each one-vs-rest problem pick its own kernel. Multi-class: one-vs-rest binary GPs, the
//! K class probabilities normalised to sum to 1 (as scikit-learn's `one_vs_rest`).

use pfn_gp::Cholesky;

use super::{cv, fit_present_classes, validate, ClassData, Classifier, ClassifierError};
use crate::logistic::{log_sigmoid, sigmoid};

/// How the GP classifier chooses its kernel hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpSelection {
    /// The grid point with the highest Laplace approximate marginal likelihood, separately for
    /// each binary (one-vs-rest) problem. One fit per grid point and problem.
    #[default]
    MarginalLikelihood,
    /// The grid point with the best 5-fold cross-validated ROC AUC ([`super::cv`]), shared by
    /// all one-vs-rest problems (the paper's protocol; five times the fits).
    CrossValidation,
}

/// GP classifier (Laplace, logistic likelihood, RBF kernel) with a grid over its kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct GpClassifier {
    /// Kernel variances of the grid.
    pub output_scales: Vec<f64>,
    /// Lengthscales of the grid (multiplied by `sqrt(n_features)` when
    /// [`Self::scale_lengthscales`] is set).
    pub lengthscales: Vec<f64>,
    /// Multiply the lengthscales by `sqrt(n_features)`.
    pub scale_lengthscales: bool,
    /// How a grid point is chosen.
    pub selection: GpSelection,
}

impl Default for GpClassifier {
    fn default() -> Self {
        Self {
            output_scales: vec![0.05, 0.1, 0.5, 1.0, 5.0, 10.0],
            lengthscales: vec![0.1, 0.5, 1.0, 2.0],
            scale_lengthscales: true,
            selection: GpSelection::MarginalLikelihood,
        }
    }
}

/// A chosen kernel: (variance, lengthscale after any `sqrt(n_features)` scaling).
pub type KernelChoice = (f64, f64);

/// Maximum Newton iterations of Algorithm 3.1.
const MAX_NEWTON: usize = 100;

/// The Laplace approximation of a binary GP classifier at its posterior mode.
#[derive(Debug, Clone)]
pub struct LaplaceFit {
    mode: Vec<f64>,
    grad: Vec<f64>,
    sqrt_w: Vec<f64>,
    chol: Cholesky,
    lml: f64,
}

/// `log p(y|f)` with targets in {0, 1}, its gradient and `W = -d2 log p`.
fn likelihood_terms(f: &[f64], positive: &[bool]) -> (f64, Vec<f64>, Vec<f64>) {
    let mut total = 0.0;
    let mut grad = Vec::with_capacity(f.len());
    let mut w = Vec::with_capacity(f.len());
    for (&fi, &pos) in f.iter().zip(positive) {
        let (sign, t) = if pos { (1.0, 1.0) } else { (-1.0, 0.0) };
        total += log_sigmoid(sign * fi);
        let p = sigmoid(fi);
        grad.push(t - p);
        w.push(p * (1.0 - p));
    }
    (total, grad, w)
}

fn mat_vec(k: &[f64], n: usize, v: &[f64]) -> Vec<f64> {
    k.chunks_exact(n.max(1))
        .take(n)
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Cholesky factor of `B = I + W^1/2 K W^1/2`.
fn factor_b(kmat: &[f64], n: usize, sqrt_w: &[f64]) -> Result<Cholesky, ClassifierError> {
    let mut b = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            b[i * n + j] = sqrt_w[i] * kmat[i * n + j] * sqrt_w[j] + if i == j { 1.0 } else { 0.0 };
        }
    }
    Cholesky::factor(&b, n).map_err(|e| ClassifierError::Numerical {
        classifier: "GP classifier",
        reason: e.to_string(),
    })
}

impl LaplaceFit {
    /// Runs Algorithm 3.1 for the row-major `n x n` kernel matrix `kmat` and binary targets.
    pub fn fit(kmat: &[f64], positive: &[bool]) -> Result<Self, ClassifierError> {
        let n = positive.len();
        if kmat.len() != n * n {
            return Err(ClassifierError::Shape(format!(
                "kernel matrix has {} values for {n} rows",
                kmat.len()
            )));
        }
        let mut f = vec![0.0; n];
        let mut a = vec![0.0; n];
        let mut psi = likelihood_terms(&f, positive).0;
        for _ in 0..MAX_NEWTON {
            let (_, grad, w) = likelihood_terms(&f, positive);
            let sqrt_w: Vec<f64> = w.iter().map(|v| v.sqrt()).collect();
            let chol = factor_b(kmat, n, &sqrt_w)?;
            let b: Vec<f64> = (0..n).map(|i| w[i] * f[i] + grad[i]).collect();
            let mut c: Vec<f64> = mat_vec(kmat, n, &b)
                .iter()
                .zip(&sqrt_w)
                .map(|(v, s)| v * s)
                .collect();
            chol.solve_in_place(&mut c);
            let a_newton: Vec<f64> = (0..n).map(|i| b[i] - sqrt_w[i] * c[i]).collect();
            // Step halving on the objective psi(f) = -a'f/2 + log p(y|f).
            let mut step = 1.0;
            let (new_a, new_f, new_psi) = loop {
                let a_try: Vec<f64> = (0..n).map(|i| a[i] + step * (a_newton[i] - a[i])).collect();
                let f_try = mat_vec(kmat, n, &a_try);
                let psi_try = -0.5 * dot(&a_try, &f_try) + likelihood_terms(&f_try, positive).0;
                if psi_try >= psi - 1e-12 * psi.abs().max(1.0) || step < 1e-4 {
                    break (a_try, f_try, psi_try);
                }
                step *= 0.5;
            };
            let change = (new_psi - psi).abs();
            a = new_a;
            f = new_f;
            psi = new_psi;
            if change <= 1e-10 * psi.abs().max(1.0) {
                break;
            }
        }
        let (_, grad, w) = likelihood_terms(&f, positive);
        let sqrt_w: Vec<f64> = w.iter().map(|v| v.sqrt()).collect();
        let chol = factor_b(kmat, n, &sqrt_w)?;
        let half_log_det = 0.5 * chol.log_det();
        Ok(Self {
            mode: f,
            grad,
            sqrt_w,
            chol,
            lml: psi - half_log_det,
        })
    }

    /// The approximate log marginal likelihood `log q(y | X)` (R&W eq. 3.32).
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }

    /// The posterior mode of the latent function at the training rows.
    pub fn mode(&self) -> &[f64] {
        &self.mode
    }

    /// Algorithm 3.2: the probability of the positive class at each test row, from the row-major
    /// `m x n` cross-kernel `kstar` and the prior variance `kss` of a test row.
    pub fn predict(&self, kstar: &[f64], kss: f64) -> Result<Vec<f64>, ClassifierError> {
        let n = self.mode.len();
        if n == 0 || !kstar.len().is_multiple_of(n) {
            return Err(ClassifierError::Shape(format!(
                "cross-kernel has {} values for {n} training rows",
                kstar.len()
            )));
        }
        let m = kstar.len() / n;
        let mut v: Vec<f64> = kstar
            .chunks_exact(n)
            .flat_map(|row| row.iter().zip(&self.sqrt_w).map(|(k, s)| k * s))
            .collect();
        self.chol
            .solve_lower_many_in_place(&mut v, m)
            .map_err(|e| ClassifierError::Numerical {
                classifier: "GP classifier",
                reason: e.to_string(),
            })?;
        Ok(kstar
            .chunks_exact(n)
            .zip(v.chunks_exact(n))
            .map(|(row, vj)| {
                let mean = dot(row, &self.grad);
                let var = (kss - dot(vj, vj)).max(0.0);
                sigmoid(mean / (1.0 + std::f64::consts::PI * var / 8.0).sqrt())
            })
            .collect())
    }
}

/// Squared Euclidean distances between the rows of `a` and `b` (row-major `|a| x |b|`).
fn sq_dists(a: &[f64], b: &[f64], f: usize) -> Vec<f64> {
    if f == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(a.len() / f * (b.len() / f));
    for ra in a.chunks_exact(f) {
        for rb in b.chunks_exact(f) {
            out.push(ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum());
        }
    }
    out
}

/// The kernel grid of one task, with its distance matrices.
struct Prepared<'a> {
    gp: &'a GpClassifier,
    train_d: Vec<f64>,
    cross_d: Vec<f64>,
    lengthscale_factor: f64,
    n: usize,
}

impl Prepared<'_> {
    fn grid_len(&self) -> usize {
        self.gp.output_scales.len() * self.gp.lengthscales.len()
    }

    /// (variance, lengthscale) of grid point `g`.
    fn hyper(&self, g: usize) -> (f64, f64) {
        let nl = self.gp.lengthscales.len();
        (
            self.gp.output_scales[g / nl],
            self.gp.lengthscales[g % nl] * self.lengthscale_factor,
        )
    }

    fn kernel(d: &[f64], variance: f64, lengthscale: f64) -> Vec<f64> {
        let inv = 0.5 / (lengthscale * lengthscale);
        d.iter().map(|&s| variance * (-s * inv).exp()).collect()
    }

    /// One-vs-rest problems (one for two classes) as positive masks.
    fn problems(labels: &[usize], k: usize) -> Vec<Vec<bool>> {
        let classes: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
        classes
            .iter()
            .map(|&c| labels.iter().map(|&l| l == c).collect())
            .collect()
    }

    /// Class probabilities from the positive-class probabilities of the problems.
    fn combine(per_problem: &[Vec<f64>], k: usize, m: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * k];
        for (j, row) in out.chunks_exact_mut(k).enumerate() {
            if k == 2 {
                row[1] = per_problem[0][j];
                row[0] = 1.0 - row[1];
            } else {
                let total: f64 = per_problem.iter().map(|p| p[j]).sum();
                for (c, p) in per_problem.iter().enumerate() {
                    row[c] = p[j] / total;
                }
            }
        }
        out
    }

    /// Fits grid point `g` on every problem and returns `m x k` probabilities.
    fn predict_grid_point(
        &self,
        g: usize,
        labels: &[usize],
        k: usize,
    ) -> Result<Vec<f64>, ClassifierError> {
        let (var, ls) = self.hyper(g);
        let kmat = Self::kernel(&self.train_d, var, ls);
        let kstar = Self::kernel(&self.cross_d, var, ls);
        let m = self.cross_d.len() / self.n.max(1);
        let per_problem = Self::problems(labels, k)
            .iter()
            .map(|pos| LaplaceFit::fit(&kmat, pos)?.predict(&kstar, var))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::combine(&per_problem, k, m))
    }

    /// Each problem with the grid point of highest marginal likelihood.
    fn predict_by_marginal_likelihood(
        &self,
        labels: &[usize],
        k: usize,
    ) -> Result<(Vec<f64>, Vec<KernelChoice>), ClassifierError> {
        let m = self.cross_d.len() / self.n.max(1);
        let problems = Self::problems(labels, k);
        let mut best: Vec<Option<(f64, usize, LaplaceFit)>> =
            (0..problems.len()).map(|_| None).collect();
        for g in 0..self.grid_len() {
            let (var, ls) = self.hyper(g);
            let kmat = Self::kernel(&self.train_d, var, ls);
            for (pos, slot) in problems.iter().zip(best.iter_mut()) {
                let fit = LaplaceFit::fit(&kmat, pos)?;
                let lml = fit.log_marginal_likelihood();
                if slot.as_ref().is_none_or(|(b, _, _)| lml > *b) {
                    *slot = Some((lml, g, fit));
                }
            }
        }
        let mut per_problem = Vec::with_capacity(problems.len());
        let mut chosen = Vec::with_capacity(problems.len());
        for slot in best {
            let (_, g, fit) = slot.expect("the grid is not empty");
            let (var, ls) = self.hyper(g);
            per_problem.push(fit.predict(&Self::kernel(&self.cross_d, var, ls), var)?);
            chosen.push((var, ls));
        }
        Ok((Self::combine(&per_problem, k, m), chosen))
    }
}

impl GpClassifier {
    fn prepare<'a>(&'a self, x: &[f64], f: usize, x_test: &[f64]) -> Prepared<'a> {
        Prepared {
            gp: self,
            train_d: sq_dists(x, x, f),
            cross_d: sq_dists(x_test, x, f),
            lengthscale_factor: if self.scale_lengthscales {
                (f.max(1) as f64).sqrt()
            } else {
                1.0
            },
            n: x.len().checked_div(f).unwrap_or(0),
        }
    }

    /// Fits and predicts, also returning the chosen (variance, lengthscale) of each one-vs-rest
    /// problem (one problem for two present classes; empty when a single class was present).
    /// Lengthscales are reported after the `sqrt(n_features)` scaling.
    pub fn fit_predict_with_choice(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<(Vec<f64>, Vec<KernelChoice>), ClassifierError> {
        let test_rows = validate(train, x_test)?;
        if self.output_scales.is_empty()
            || self.lengthscales.is_empty()
            || self
                .output_scales
                .iter()
                .chain(&self.lengthscales)
                .any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(ClassifierError::Shape(
                "the GP classifier needs non-empty grids of positive finite values".into(),
            ));
        }
        let f = train.n_features;
        if f == 0 {
            // No features: every kernel is constant; the class frequencies are the answer.
            return Err(ClassifierError::Shape(
                "the GP classifier needs at least one feature".into(),
            ));
        }
        let mut chosen = Vec::new();
        let probs = fit_present_classes(
            train.x,
            train.labels,
            train.num_classes,
            x_test,
            test_rows,
            |x, labels, k, xt| match self.selection {
                GpSelection::MarginalLikelihood => {
                    let (p, c) = self
                        .prepare(x, f, xt)
                        .predict_by_marginal_likelihood(labels, k)?;
                    chosen = c;
                    Ok(p)
                }
                GpSelection::CrossValidation => {
                    let grid_len = self.output_scales.len() * self.lengthscales.len();
                    let choice = cv::select(x, f, labels, k, grid_len, seed, |tx, tl, kf, vx| {
                        let prep = self.prepare(tx, f, vx);
                        (0..grid_len)
                            .map(|g| prep.predict_grid_point(g, tl, kf))
                            .collect()
                    })?;
                    let prep = self.prepare(x, f, xt);
                    let n_problems = if k == 2 { 1 } else { k };
                    chosen = vec![prep.hyper(choice.best); n_problems];
                    prep.predict_grid_point(choice.best, labels, k)
                }
            },
        )?;
        Ok((probs, chosen))
    }
}

impl Classifier for GpClassifier {
    fn name(&self) -> &str {
        "GP classifier"
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
