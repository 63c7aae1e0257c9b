//! A small box-constrained L-BFGS minimiser with a backtracking Armijo line search.
//!
//! Bounds are handled by projection: variables sitting on a bound whose gradient points out of
//! the box are frozen for the iteration (their gradient and search direction are zeroed), the
//! L-BFGS two-loop recursion runs on the remaining gradient, and trial points are projected back
//! into the box. The Armijo test uses the actual projected step, `f(P(x + t p)) <= f(x) +
//! c1 g^T (P(x + t p) - x)`. Convergence is declared when the infinity norm of the projected
//! gradient is below `grad_tol`, or when an accepted step changes `f` by less than
//! `rel_f_tol * max(|f|, 1)` (the same criteria as SciPy's L-BFGS-B: `pgtol`, `factr * eps`).
//! This is meant for a handful of variables (GP hyperparameters), not for large problems.

use crate::GpError;

/// Options of [`minimize_bounded`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsOptions {
    /// Maximum number of accepted steps.
    pub max_iters: usize,
    /// Number of correction pairs kept.
    pub memory: usize,
    /// Stop when the projected gradient's infinity norm is at most this.
    pub grad_tol: f64,
    /// Stop when an accepted step decreases `f` by at most `rel_f_tol * max(|f|, 1)`.
    pub rel_f_tol: f64,
    /// Maximum number of trial points per line search.
    pub max_line_search: usize,
    /// Armijo sufficient-decrease constant `c1` in (0, 1).
    pub armijo_c1: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            max_iters: 100,
            memory: 10,
            grad_tol: 1e-5,
            rel_f_tol: 2.2e-9,
            max_line_search: 30,
            armijo_c1: 1e-4,
        }
    }
}

impl LbfgsOptions {
    /// Checks the option values.
    pub fn validate(&self) -> Result<(), GpError> {
        if self.memory == 0 {
            return Err(GpError::InvalidOption("L-BFGS memory must be >= 1".into()));
        }
        if self.max_line_search == 0 {
            return Err(GpError::InvalidOption(
                "max_line_search must be >= 1".into(),
            ));
        }
        if !(self.grad_tol >= 0.0 && self.grad_tol.is_finite()) {
            return Err(GpError::InvalidOption(format!(
                "grad_tol = {} must be finite and >= 0",
                self.grad_tol
            )));
        }
        if !(self.rel_f_tol >= 0.0 && self.rel_f_tol.is_finite()) {
            return Err(GpError::InvalidOption(format!(
                "rel_f_tol = {} must be finite and >= 0",
                self.rel_f_tol
            )));
        }
        if !(self.armijo_c1 > 0.0 && self.armijo_c1 < 1.0) {
            return Err(GpError::InvalidOption(format!(
                "armijo_c1 = {} must lie in (0, 1)",
                self.armijo_c1
            )));
        }
        Ok(())
    }
}

/// Why the minimiser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Projected gradient below `grad_tol`.
    GradientTolerance,
    /// Relative decrease of `f` below `rel_f_tol`.
    FunctionTolerance,
    /// `max_iters` steps were taken.
    MaxIterations,
    /// No trial point satisfied the Armijo condition.
    LineSearchFailed,
}

/// Result of [`minimize_bounded`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsResult {
    /// Best point found.
    pub x: Vec<f64>,
    /// Objective at `x`.
    pub f: f64,
    /// Gradient at `x`.
    pub grad: Vec<f64>,
    /// Accepted steps taken.
    pub iterations: usize,
    /// Objective evaluations (including failed ones).
    pub evaluations: usize,
    /// Why it stopped.
    pub reason: StopReason,
}

impl LbfgsResult {
    /// Whether a convergence criterion (gradient or function tolerance) was met.
    pub fn converged(&self) -> bool {
        matches!(
            self.reason,
            StopReason::GradientTolerance | StopReason::FunctionTolerance
        )
    }
}

/// Minimises `f` over the box `lower <= x <= upper` starting from `x0` (projected into the box).
///
/// `f(x, grad)` returns the objective and writes its gradient into `grad`, or returns `None` when
/// the objective cannot be evaluated at `x` (treated as `+inf` by the line search). Bounds may be
/// infinite; `lower[i] == upper[i]` fixes variable `i`.
pub fn minimize_bounded<F>(
    mut f: F,
    x0: &[f64],
    lower: &[f64],
    upper: &[f64],
    opts: &LbfgsOptions,
) -> Result<LbfgsResult, GpError>
where
    F: FnMut(&[f64], &mut [f64]) -> Option<f64>,
{
    opts.validate()?;
    let p = x0.len();
    if lower.len() != p || upper.len() != p {
        return Err(GpError::Shape(format!(
            "bounds have {} and {} entries, expected {p} (one per variable)",
            lower.len(),
            upper.len()
        )));
    }
    for i in 0..p {
        if lower[i].is_nan() || upper[i].is_nan() || lower[i] > upper[i] {
            return Err(GpError::InvalidOption(format!(
                "bounds of variable {i}: [{}, {}] must satisfy lower <= upper",
                lower[i], upper[i]
            )));
        }
        if x0[i].is_nan() {
            return Err(GpError::NotFinite(format!("starting point x0[{i}]")));
        }
    }
    let project = |v: f64, i: usize| v.max(lower[i]).min(upper[i]);
    let mut x: Vec<f64> = (0..p).map(|i| project(x0[i], i)).collect();
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(GpError::NotFinite(format!(
            "starting point x0[{i}] after projection into the bounds"
        )));
    }
    let mut g = vec![0.0; p];
    let mut evaluations = 1;
    let mut fx = match f(&x, &mut g) {
        Some(v) if v.is_finite() && g.iter().all(|t| t.is_finite()) => v,
        _ => {
            return Err(GpError::OptimizationFailed(
                "objective or gradient is not finite at the starting point".into(),
            ))
        }
    };

    // Ring buffer of correction pairs.
    let m = opts.memory;
    let mut s_hist = vec![vec![0.0; p]; m];
    let mut y_hist = vec![vec![0.0; p]; m];
    let mut rho = vec![0.0; m];
    let mut alpha = vec![0.0; m];
    let mut stored = 0usize;
    let mut newest = 0usize;

    let mut free = vec![true; p];
    let mut dir = vec![0.0; p];
    let mut x_new = vec![0.0; p];
    let mut g_new = vec![0.0; p];
    let mut iterations = 0;
    let reason;

    loop {
        // Free set and projected gradient.
        let mut pg_norm = 0.0f64;
        for i in 0..p {
            let blocked = (x[i] <= lower[i] && g[i] > 0.0) || (x[i] >= upper[i] && g[i] < 0.0);
            free[i] = !blocked;
            if free[i] {
                pg_norm = pg_norm.max(g[i].abs());
            }
        }
        if pg_norm <= opts.grad_tol {
            reason = StopReason::GradientTolerance;
            break;
        }
        if iterations >= opts.max_iters {
            reason = StopReason::MaxIterations;
            break;
        }

        // Two-loop recursion on the free part of the gradient.
        for i in 0..p {
            dir[i] = if free[i] { g[i] } else { 0.0 };
        }
        let mut gamma = 1.0 / pg_norm.max(1.0);
        if stored > 0 {
            for back in 0..stored {
                let k = (newest + m - back) % m;
                let a = rho[k] * dot(&s_hist[k], &dir);
                alpha[k] = a;
                axpy(-a, &y_hist[k], &mut dir);
            }
            let (s, y) = (&s_hist[newest], &y_hist[newest]);
            gamma = dot(s, y) / dot(y, y);
            dir.iter_mut().for_each(|v| *v *= gamma);
            for fwd in (0..stored).rev() {
                let k = (newest + m - fwd) % m;
                let b = rho[k] * dot(&y_hist[k], &dir);
                axpy(alpha[k] - b, &s_hist[k], &mut dir);
            }
        } else {
            dir.iter_mut().for_each(|v| *v *= gamma);
        }
        for i in 0..p {
            dir[i] = if free[i] { -dir[i] } else { 0.0 };
        }
        let slope = dot(&g, &dir);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction: restart from scaled steepest descent.
            stored = 0;
            let scale = 1.0 / pg_norm.max(1.0);
            for i in 0..p {
                dir[i] = if free[i] { -g[i] * scale } else { 0.0 };
            }
        }

        // Backtracking line search along the projected path.
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..opts.max_line_search {
            let mut moved = false;
            let mut gstep = 0.0;
            for i in 0..p {
                x_new[i] = project(x[i] + t * dir[i], i);
                let st = x_new[i] - x[i];
                moved |= st != 0.0;
                gstep += g[i] * st;
            }
            if !moved {
                break;
            }
            evaluations += 1;
            let trial = f(&x_new, &mut g_new)
                .filter(|v| v.is_finite() && g_new.iter().all(|q| q.is_finite()));
            match trial {
                Some(fv) if fv <= fx + opts.armijo_c1 * gstep => {
                    accepted = Some(fv);
                    break;
                }
                Some(fv) => {
                    // Minimiser of the quadratic through f(x), slope gstep/t and f(x_new),
                    // kept within [0.1 t, 0.5 t].
                    let slope = gstep / t;
                    let denom = 2.0 * (fv - fx - slope * t);
                    let t_q = if denom > 0.0 {
                        -slope * t * t / denom
                    } else {
                        0.5 * t
                    };
                    t = t_q.clamp(0.1 * t, 0.5 * t);
                }
                None => t *= 0.5,
            }
        }
        let Some(f_new) = accepted else {
            reason = StopReason::LineSearchFailed;
            break;
        };
        iterations += 1;

        // Curvature pair, kept only when it is safely positive.
        let (mut sy, mut yy, mut ss) = (0.0, 0.0, 0.0);
        for i in 0..p {
            let si = x_new[i] - x[i];
            let yi = g_new[i] - g[i];
            sy += si * yi;
            yy += yi * yi;
            ss += si * si;
        }
        if sy > 0.0 && sy > 1e-10 * (ss * yy).sqrt() {
            let next = if stored == 0 { 0 } else { (newest + 1) % m };
            for i in 0..p {
                s_hist[next][i] = x_new[i] - x[i];
                y_hist[next][i] = g_new[i] - g[i];
            }
            rho[next] = 1.0 / sy;
            newest = next;
            stored = (stored + 1).min(m);
        }

        let decrease = fx - f_new;
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = f_new;
        if decrease <= opts.rel_f_tol * fx.abs().max(1.0) {
            reason = StopReason::FunctionTolerance;
            break;
        }
    }

    Ok(LbfgsResult {
        x,
        f: fx,
        grad: g,
        iterations,
        evaluations,
        reason,
    })
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

#[inline]
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> Option<f64> {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        Some((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2))
    }

    #[test]
    fn minimises_rosenbrock_unconstrained() {
        let opts = LbfgsOptions {
            max_iters: 500,
            rel_f_tol: 0.0,
            grad_tol: 1e-8,
            ..Default::default()
        };
        let inf = f64::INFINITY;
        let r =
            minimize_bounded(rosenbrock, &[-1.2, 1.0], &[-inf, -inf], &[inf, inf], &opts).unwrap();
        assert_eq!(r.reason, StopReason::GradientTolerance, "{r:?}");
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{r:?}"
        );
        assert!(r.iterations < 200, "took {} iterations", r.iterations);
    }

    #[test]
    fn respects_bounds_and_finds_constrained_minimum() {
        // Minimise (x - 3)^2 + (y + 2)^2 over [0, 1] x [-1, 5]: solution (1, -1).
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 3.0);
            g[1] = 2.0 * (x[1] + 2.0);
            Some((x[0] - 3.0).powi(2) + (x[1] + 2.0).powi(2))
        };
        let r = minimize_bounded(
            f,
            &[0.5, 4.0],
            &[0.0, -1.0],
            &[1.0, 5.0],
            &Default::default(),
        )
        .unwrap();
        assert!(r.converged(), "{r:?}");
        assert_eq!(r.x, vec![1.0, -1.0]);
    }

    #[test]
    fn fixed_variable_stays_fixed_and_infeasible_region_is_avoided() {
        // f = (x0 - 2)^2 + (x1 - 1)^2, x1 fixed at 0.5; f undefined for x0 > 1.5.
        let f = |x: &[f64], g: &mut [f64]| {
            if x[0] > 1.5 {
                return None;
            }
            g[0] = 2.0 * (x[0] - 2.0);
            g[1] = 2.0 * (x[1] - 1.0);
            Some((x[0] - 2.0).powi(2) + (x[1] - 1.0).powi(2))
        };
        let inf = f64::INFINITY;
        let r = minimize_bounded(
            f,
            &[0.0, 0.5],
            &[-inf, 0.5],
            &[inf, 0.5],
            &Default::default(),
        )
        .unwrap();
        assert_eq!(r.x[1], 0.5);
        assert!(r.x[0] <= 1.5 && r.x[0] > 1.0, "{r:?}");
    }

    #[test]
    fn rejects_bad_bounds() {
        let f = |_: &[f64], _: &mut [f64]| Some(0.0);
        assert!(matches!(
            minimize_bounded(f, &[0.0], &[1.0], &[0.0], &Default::default()),
            Err(GpError::InvalidOption(_))
        ));
        assert!(matches!(
            minimize_bounded(f, &[0.0, 1.0], &[0.0], &[1.0], &Default::default()),
            Err(GpError::Shape(_))
        ));
    }
}
