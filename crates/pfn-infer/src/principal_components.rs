//! Principal components of a context: an input view of a table for a classifier to choose by
//! cross-validation ([`crate::calibration`]).
//!
//! The tabular PFN's prior draws most of a table's columns independently, and the model does
//! worst on the real tables least like that: wide ones whose many columns repeat a few signals
//! (Fourier or Karhunen-Loève coefficients of digit images, word counts, correlated shape
//! measurements). Shown the leading principal components of the context's standardised columns
//! instead (which the model's own context z-scoring then whitens), it does much better on them.
//! On 200-row contexts of three CC18 tables (3 seeded splits, 500 queries, 8 members, calibrated),
//! mean log loss as given → with 16 components: vehicle (18 columns) 0.670 → 0.474,
//! mfeat-karhunen (64) 0.861 → 0.517, analcatdata_authorship (70) 0.193 → 0.033; but credit-g
//! (20) 0.621 → 0.637 and kc2 (21) 0.380 → 0.419 get worse. So the view is a choice per table,
//! made on the context's held-out folds, not a rule.
//!
//! **Numerics.** Every column is standardised by its context mean and population standard
//! deviation (a constant column becomes 0). With `n` context rows and `d` columns, the
//! eigenvectors come from the smaller of the `d × d` scatter matrix `ZᵀZ` and the `n × n` Gram
//! matrix `ZZᵀ` (then an axis is `Zᵀu/√λ`), by cyclic Jacobi rotations in f64, which are accurate
//! for the small symmetric matrices met here (`min(n, d)` up to a few hundred). Components whose
//! eigenvalue is below `1e-10` times the largest carry no variance and are dropped. Each axis's
//! sign is fixed by making its largest-magnitude entry positive, so a fit is reproducible. Only
//! the context rows are used; queries are projected with the context's axes.

use std::borrow::Cow;

use crate::predictor::{check_finite, PredictError};

/// The component counts a classifier's context calibration tries besides the data as given (each
/// only when the table has more columns than that).
pub const CANDIDATE_COMPONENTS: [usize; 2] = [8, 16];

/// Relative eigenvalue below which a component is dropped (module docs).
const RELATIVE_EIGENVALUE_FLOOR: f64 = 1e-10;

/// How a classifier sees a table's feature columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputView {
    /// The columns as given.
    AsGiven,
    /// The scores on at most this many leading principal components of the context's
    /// standardised columns ([`PrincipalComponents`]).
    PrincipalComponents(usize),
}

impl InputView {
    /// The views worth comparing on a table with `features` columns for a model that takes at
    /// most `width`: [`InputView::AsGiven`] when the table fits, then
    /// [`InputView::PrincipalComponents`] for each of [`CANDIDATE_COMPONENTS`] (capped at
    /// `width`) smaller than `features`. A table wider than the model therefore always has a
    /// candidate.
    pub fn candidates(features: usize, width: usize) -> Vec<InputView> {
        let mut views = Vec::new();
        if features <= width {
            views.push(InputView::AsGiven);
        }
        for &k in &CANDIDATE_COMPONENTS {
            let view = InputView::PrincipalComponents(k.min(width));
            if k.min(width) > 0 && k.min(width) < features && !views.contains(&view) {
                views.push(view);
            }
        }
        views
    }

    /// A short description: `as given`, or `8 principal components`.
    pub fn describe(&self) -> String {
        match self {
            InputView::AsGiven => "as given".into(),
            InputView::PrincipalComponents(k) => format!("{k} principal components"),
        }
    }

    /// The context `x` and queries `x_query` (row-major, `d` columns) in this view.
    /// [`InputView::AsGiven`] borrows them unchanged; principal components are fitted on the
    /// context rows only. Errors for a non-finite value when a projection is needed.
    pub fn apply<'a>(
        &self,
        x: &'a [f64],
        x_query: &'a [f64],
        d: usize,
    ) -> Result<ViewData<'a>, PredictError> {
        match *self {
            InputView::AsGiven => Ok(ViewData {
                x: Cow::Borrowed(x),
                x_query: Cow::Borrowed(x_query),
                features: d,
            }),
            InputView::PrincipalComponents(k) => {
                check_finite("context x", x)?;
                check_finite("query x", x_query)?;
                let pc = PrincipalComponents::fit(x, d, k);
                Ok(ViewData {
                    x: Cow::Owned(pc.project(x)),
                    x_query: Cow::Owned(pc.project(x_query)),
                    features: pc.output_width(),
                })
            }
        }
    }
}

/// A dataset's inputs in one [`InputView`] ([`InputView::apply`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ViewData<'a> {
    /// Context inputs, row-major `n × features`.
    pub x: Cow<'a, [f64]>,
    /// Query inputs, row-major `m × features`.
    pub x_query: Cow<'a, [f64]>,
    /// Columns per row.
    pub features: usize,
}

/// The leading principal axes of a context's standardised columns (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalComponents {
    mean: Vec<f64>,
    /// `1 / std` per column (0 for a constant column).
    inverse_std: Vec<f64>,
    /// Unit axes, row-major `kept × d`, by decreasing variance.
    axes: Vec<f64>,
    /// The context variance along each kept axis.
    variances: Vec<f64>,
}

impl PrincipalComponents {
    /// Fits at most `k` components to the rows of `x` (row-major, `d` columns, finite values).
    /// Fewer are kept when the context has fewer non-degenerate directions; none when every
    /// column is constant or there are no rows.
    pub fn fit(x: &[f64], d: usize, k: usize) -> Self {
        let n = x.len().checked_div(d).unwrap_or(0);
        let mut mean = vec![0.0; d];
        let mut inverse_std = vec![0.0; d];
        if n > 0 {
            for row in x.chunks_exact(d) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            for m in &mut mean {
                *m /= n as f64;
            }
            let mut var = vec![0.0; d];
            for row in x.chunks_exact(d) {
                for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
            for (inv, s) in inverse_std.iter_mut().zip(&var) {
                let sd = (s / n as f64).sqrt();
                *inv = if sd > 0.0 && sd.is_finite() {
                    1.0 / sd
                } else {
                    0.0
                };
            }
        }
        let mut pc = Self {
            mean,
            inverse_std,
            axes: Vec::new(),
            variances: Vec::new(),
        };
        if n == 0 || d == 0 || k == 0 {
            return pc;
        }
        let z: Vec<f64> = x
            .chunks_exact(d)
            .flat_map(|row| pc.standardise(row))
            .collect();
        // Eigenpairs of the smaller of ZᵀZ (d × d) and ZZᵀ (n × n).
        let (values, vectors, m) = if d <= n {
            let mut s = vec![0.0; d * d];
            for row in z.chunks_exact(d) {
                for a in 0..d {
                    for b in a..d {
                        s[a * d + b] += row[a] * row[b];
                    }
                }
            }
            for a in 0..d {
                for b in 0..a {
                    s[a * d + b] = s[b * d + a];
                }
            }
            let (values, vectors) = symmetric_eigen(s, d);
            (values, vectors, d)
        } else {
            let mut g = vec![0.0; n * n];
            for i in 0..n {
                for j in i..n {
                    let dot: f64 = z[i * d..(i + 1) * d]
                        .iter()
                        .zip(&z[j * d..(j + 1) * d])
                        .map(|(a, b)| a * b)
                        .sum();
                    g[i * n + j] = dot;
                    g[j * n + i] = dot;
                }
            }
            let (values, vectors) = symmetric_eigen(g, n);
            (values, vectors, n)
        };
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let top = values[order[0]];
        for &e in order.iter().take(k) {
            let lambda = values[e];
            if !(top > 0.0 && lambda > RELATIVE_EIGENVALUE_FLOOR * top) {
                break;
            }
            // Eigenvector e is column e of `vectors` (m × m, row-major).
            let u: Vec<f64> = (0..m).map(|r| vectors[r * m + e]).collect();
            let mut axis = if d <= n {
                u
            } else {
                let scale = 1.0 / lambda.sqrt();
                (0..d)
                    .map(|c| (0..n).map(|i| z[i * d + c] * u[i]).sum::<f64>() * scale)
                    .collect()
            };
            let biggest =
                axis.iter()
                    .copied()
                    .fold(0.0_f64, |acc, v| if v.abs() > acc.abs() { v } else { acc });
            if biggest < 0.0 {
                for v in &mut axis {
                    *v = -*v;
                }
            }
            pc.axes.extend(axis);
            pc.variances.push(lambda / n as f64);
        }
        pc
    }

    /// Number of kept components.
    pub fn components(&self) -> usize {
        self.variances.len()
    }

    /// Columns of [`PrincipalComponents::project`]'s output: the kept components, or one column
    /// of zeros when none was kept (a constant context), so a model still gets an input.
    pub fn output_width(&self) -> usize {
        self.components().max(1)
    }

    /// The context variance along each kept axis, decreasing.
    pub fn variances(&self) -> &[f64] {
        &self.variances
    }

    /// The scores of the rows of `x` (row-major, the fitted column count) on the kept axes:
    /// row-major `rows × output_width()`.
    pub fn project(&self, x: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        let k = self.components();
        if d == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(x.len() / d * self.output_width());
        for row in x.chunks_exact(d) {
            let z = self.standardise(row);
            if k == 0 {
                out.push(0.0);
            }
            for axis in self.axes.chunks_exact(d) {
                out.push(axis.iter().zip(&z).map(|(a, b)| a * b).sum());
            }
        }
        out
    }

    fn standardise(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.inverse_std)
            .map(|((v, m), s)| (v - m) * s)
            .collect()
    }
}

/// Eigenvalues and eigenvectors of the symmetric `m × m` matrix `a` (row-major) by cyclic Jacobi
/// rotations: `(values, vectors)` with eigenvector `e` in column `e` of `vectors` (row-major),
/// unsorted. Sweeps stop when the off-diagonal mass is below `1e-15` of the whole (or after 100).
fn symmetric_eigen(mut a: Vec<f64>, m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|p| (0..m).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * m + q] * a[p * m + q])
            .sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (a[p * m + p], a[q * m + q]);
                // The rotation angle that zeroes a[p][q]: t = tan θ, the smaller root.
                let theta = (aqq - app) / (2.0 * apq);
                // (f64::signum(0.0) is 1, so θ = 0 gives t = 1: a 45° rotation.)
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..m {
                    let (arp, arq) = (a[r * m + p], a[r * m + q]);
                    a[r * m + p] = c * arp - s * arq;
                    a[r * m + q] = s * arp + c * arq;
                }
                for r in 0..m {
                    let (apr, aqr) = (a[p * m + r], a[q * m + r]);
                    a[p * m + r] = c * apr - s * aqr;
                    a[q * m + r] = s * apr + c * aqr;
                }
                for r in 0..m {
                    let (vrp, vrq) = (v[r * m + p], v[r * m + q]);
                    v[r * m + p] = c * vrp - s * vrq;
                    v[r * m + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i * m + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenpairs_of_a_known_matrix() {
        // [[2, 1, 0], [1, 2, 0], [0, 0, 5]]: eigenvalues 1, 3, 5.
        let a = vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        let (values, vectors) = symmetric_eigen(a.clone(), 3);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for (got, want) in sorted.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-12, "{values:?}");
        }
        // A v = λ v for every column.
        for e in 0..3 {
            for r in 0..3 {
                let av: f64 = (0..3).map(|c| a[r * 3 + c] * vectors[c * 3 + e]).sum();
                assert!((av - values[e] * vectors[r * 3 + e]).abs() < 1e-12);
            }
        }
    }

    /// A context of `n` rows whose `d` columns are noisy copies of two latent signals.
    fn two_factor_table(n: usize, d: usize) -> Vec<f64> {
        let mut x = Vec::with_capacity(n * d);
        for i in 0..n {
            let (a, b) = ((i as f64 * 0.7).sin(), (i as f64 * 1.3).cos());
            for j in 0..d {
                let noise = ((i * 31 + j * 17) as f64 * 0.618).fract() - 0.5;
                let w = j as f64 / d as f64;
                x.push(3.0 * (w * a + (1.0 - w) * b) + 0.01 * noise + j as f64);
            }
        }
        x
    }

    fn check_scores(pc: &PrincipalComponents, x: &[f64], d: usize) {
        let n = x.len() / d;
        let k = pc.components();
        let s = pc.project(x);
        assert_eq!(s.len(), n * k);
        for a in 0..k {
            let mean: f64 = (0..n).map(|i| s[i * k + a]).sum::<f64>() / n as f64;
            assert!(mean.abs() < 1e-9, "component {a} mean {mean}");
            for b in 0..k {
                let cov: f64 = (0..n).map(|i| s[i * k + a] * s[i * k + b]).sum::<f64>() / n as f64;
                let want = if a == b { pc.variances()[a] } else { 0.0 };
                assert!(
                    (cov - want).abs() < 1e-8,
                    "cov[{a}][{b}] = {cov}, want {want}"
                );
            }
        }
        assert!(pc.variances().windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn scores_are_uncorrelated_with_decreasing_variance_and_two_factors_dominate() {
        // More rows than columns (scatter matrix) and fewer (Gram matrix).
        for (n, d) in [(60, 12), (10, 30)] {
            let x = two_factor_table(n, d);
            let pc = PrincipalComponents::fit(&x, d, 8);
            check_scores(&pc, &x, d);
            let total: f64 = pc.variances().iter().sum();
            // Standardised columns: total variance d; two factors carry almost all of it.
            assert!(total <= d as f64 + 1e-9);
            let first_two: f64 = pc.variances().iter().take(2).sum();
            assert!(first_two > 0.99 * d as f64, "{:?}", pc.variances());
        }
    }

    #[test]
    fn both_eigen_routes_give_the_same_components() {
        // Same rows, once with n ≥ d (scatter) and once padded to n < d (Gram) by zero columns.
        let (n, d) = (9, 6);
        let x = two_factor_table(n, d);
        let a = PrincipalComponents::fit(&x, d, 3);
        let wide: Vec<f64> = x
            .chunks_exact(d)
            .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(1.0, 5)))
            .collect();
        let b = PrincipalComponents::fit(&wide, d + 5, 3);
        assert_eq!(a.components(), b.components());
        for (va, vb) in a.variances().iter().zip(b.variances()) {
            assert!((va - vb).abs() < 1e-9 * va.max(1.0));
        }
        let (sa, sb) = (a.project(&x), b.project(&wide));
        for (p, q) in sa.iter().zip(&sb) {
            assert!((p - q).abs() < 1e-8, "{p} vs {q}");
        }
    }

    #[test]
    fn constant_and_rank_deficient_contexts_keep_only_real_directions() {
        // Every column constant: no component, one column of zeros.
        let x = vec![2.0, 5.0, 2.0, 5.0, 2.0, 5.0];
        let pc = PrincipalComponents::fit(&x, 2, 8);
        assert_eq!(pc.components(), 0);
        assert_eq!(pc.output_width(), 1);
        assert_eq!(pc.project(&[7.0, -1.0]), vec![0.0]);
        // Two identical columns and a constant one: one direction.
        let x = vec![1.0, 1.0, 3.0, 2.0, 2.0, 3.0, 4.0, 4.0, 3.0];
        let pc = PrincipalComponents::fit(&x, 3, 8);
        assert_eq!(pc.components(), 1);
        let s = pc.project(&x);
        assert!(s.iter().all(|v| v.is_finite()));
        // One row: nothing varies.
        assert_eq!(PrincipalComponents::fit(&[1.0, 2.0], 2, 4).components(), 0);
    }

    #[test]
    fn views_project_queries_with_the_context_axes() {
        let d = 12;
        let x = two_factor_table(40, d);
        let q = two_factor_table(45, d)[40 * d..].to_vec();
        use InputView::{AsGiven, PrincipalComponents as Pc};
        assert_eq!(InputView::candidates(d, 60), vec![AsGiven, Pc(8)]);
        assert_eq!(InputView::candidates(8, 60), vec![AsGiven]);
        assert_eq!(InputView::candidates(76, 60), vec![Pc(8), Pc(16)]);
        // Wider than a narrow model: only its own width's worth of components.
        assert_eq!(InputView::candidates(6, 4), vec![Pc(4)]);
        assert_eq!(InputView::candidates(12, 10), vec![Pc(8), Pc(10)]);
        let v = InputView::PrincipalComponents(8).apply(&x, &q, d).unwrap();
        let pc = PrincipalComponents::fit(&x, d, 8);
        assert_eq!(v.features, pc.output_width());
        assert_eq!(v.x.as_ref(), pc.project(&x).as_slice());
        assert_eq!(v.x_query.as_ref(), pc.project(&q).as_slice());
        let v = InputView::AsGiven.apply(&x, &q, d).unwrap();
        assert!(matches!(v.x, Cow::Borrowed(_)));
        assert_eq!(v.features, d);
        let mut bad = x.clone();
        bad[3] = f64::NAN;
        assert!(InputView::PrincipalComponents(8)
            .apply(&bad, &q, d)
            .is_err());
    }
}
