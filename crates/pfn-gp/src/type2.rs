//! Type-II maximum likelihood (or MAP with a hyper-prior): multi-start, box-constrained L-BFGS
//! on the log-hyperparameters `[log l.., log outputscale, log noise]`.
//!
//! Every hyperparameter is kept inside [`HyperBounds`] (in log space, by projection). In
//! particular the noise has a floor (default `1e-6`): without one the likelihood of smooth or
//! duplicated data can grow without bound as the noise goes to 0, and the covariance becomes
//! numerically singular. Near the floor the Cholesky may still need jitter (see
//! [`crate::cholesky`]); evaluations that fail are treated as infeasible by the line search.
//! Starting points are drawn with a seeded ChaCha8 generator, log-uniformly from given ranges or
//! from Gamma hyper-priors, so results are reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::hyper_prior::HyperPrior;
use crate::lbfgs::{minimize_bounded, LbfgsOptions, StopReason};
use crate::lml::LmlEvaluator;
use crate::{GpError, GpHyper, KernelKind};

/// Box constraints `(lower, upper)` on the hyperparameters (not their logs); `lower == upper`
/// fixes a hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperBounds {
    /// Bounds on every lengthscale.
    pub lengthscale: (f64, f64),
    /// Bounds on the outputscale.
    pub outputscale: (f64, f64),
    /// Bounds on the noise variance; the lower bound is the noise floor.
    pub noise: (f64, f64),
}

impl Default for HyperBounds {
    fn default() -> Self {
        Self {
            lengthscale: (1e-3, 1e3),
            outputscale: (1e-4, 1e4),
            noise: (1e-6, 1e4),
        }
    }
}

/// How random starting points are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartDistribution {
    /// Independent log-uniform draws from the given `(low, high)` ranges (each lengthscale drawn
    /// separately under ARD).
    LogUniform {
        /// Range of the lengthscales.
        lengthscale: (f64, f64),
        /// Range of the outputscale.
        outputscale: (f64, f64),
        /// Range of the noise.
        noise: (f64, f64),
    },
    /// Draws from Gamma hyper-priors (all three must be present); draws are projected into the
    /// bounds (a draw that underflows to 0 starts at the lower bound).
    Prior(HyperPrior),
}

impl Default for StartDistribution {
    fn default() -> Self {
        Self::LogUniform {
            lengthscale: (0.05, 2.0),
            outputscale: (0.1, 10.0),
            noise: (1e-4, 0.5),
        }
    }
}

/// Options of [`fit_type2`].
#[derive(Debug, Clone, PartialEq)]
pub struct Type2Options {
    /// Number of random starting points (default 5).
    pub restarts: usize,
    /// An additional starting point tried first (for example the previous solution).
    pub initial: Option<GpHyper>,
    /// Seed of the starting-point generator.
    pub seed: u64,
    /// Box constraints, including the noise floor.
    pub bounds: HyperBounds,
    /// Distribution of the random starting points.
    pub starts: StartDistribution,
    /// Hyper-prior added to the log marginal likelihood (MAP fitting) when present.
    pub prior: Option<HyperPrior>,
    /// Optimiser settings per start (default: 100 iterations, gradient tolerance 1e-5,
    /// relative function tolerance 2.2e-9).
    pub lbfgs: LbfgsOptions,
}

impl Default for Type2Options {
    fn default() -> Self {
        Self {
            restarts: 5,
            initial: None,
            seed: 0,
            bounds: HyperBounds::default(),
            starts: StartDistribution::default(),
            prior: None,
            lbfgs: LbfgsOptions::default(),
        }
    }
}

/// Result of [`fit_type2`].
#[derive(Debug, Clone, PartialEq)]
pub struct Type2Fit {
    /// The best hyperparameters found.
    pub hyper: GpHyper,
    /// Log marginal likelihood at `hyper` (without the prior).
    pub log_marginal_likelihood: f64,
    /// Log hyper-prior density at `hyper` (0 without a prior).
    pub log_prior: f64,
    /// L-BFGS iterations of the best start.
    pub iterations: usize,
    /// Whether the best start met a convergence criterion.
    pub converged: bool,
    /// Why the best start stopped.
    pub stop_reason: StopReason,
    /// Starting points tried (including `initial`).
    pub starts_run: usize,
    /// Starting points at which the objective could not be evaluated.
    pub starts_failed: usize,
    /// Iterations summed over all starts.
    pub total_iterations: usize,
}

/// Fits the hyperparameters of a `kind` kernel to `y` (length `n`) at `x` (row-major `n x d`) by
/// maximising the log marginal likelihood (plus the log hyper-prior when `opts.prior` is set).
/// With `ard` there is one lengthscale per input dimension, otherwise one shared lengthscale.
pub fn fit_type2(
    x: &[f64],
    y: &[f64],
    d: usize,
    kind: KernelKind,
    ard: bool,
    opts: &Type2Options,
) -> Result<Type2Fit, GpError> {
    let mut ev = LmlEvaluator::new(x, y, d)?;
    validate_options(opts)?;
    let nl = if ard { d } else { 1 };
    let p = nl + 2;
    if let Some(init) = &opts.initial {
        init.validate()?;
        if init.lengthscales.len() != nl || init.kind != kind {
            return Err(GpError::Shape(format!(
                "initial hyperparameters have kind {:?} with {} lengthscales, expected {:?} with \
                 {nl} (ard = {ard}, d = {d})",
                init.kind,
                init.lengthscales.len(),
                kind
            )));
        }
    }
    let b = &opts.bounds;
    let mut lower = vec![b.lengthscale.0.ln(); p];
    let mut upper = vec![b.lengthscale.1.ln(); p];
    lower[nl] = b.outputscale.0.ln();
    upper[nl] = b.outputscale.1.ln();
    lower[nl + 1] = b.noise.0.ln();
    upper[nl + 1] = b.noise.1.ln();

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut starts: Vec<Vec<f64>> = Vec::with_capacity(opts.restarts + 1);
    if let Some(init) = &opts.initial {
        starts.push(init.log_params());
    }
    for _ in 0..opts.restarts {
        starts.push(draw_start(&opts.starts, nl, &mut rng)?);
    }

    let mut hyper = GpHyper {
        kind,
        lengthscales: vec![1.0; nl],
        outputscale: 1.0,
        noise: 1.0,
    };
    let prior = opts.prior.as_ref();
    let mut best: Option<(f64, Vec<f64>, usize, StopReason)> = None;
    let mut failed = 0;
    let mut total_iterations = 0;
    let mut last_error = None;
    for x0 in &starts {
        let objective = |theta: &[f64], grad: &mut [f64]| {
            hyper.set_log_params(theta);
            match ev.value_and_grad(&hyper, prior, grad) {
                Ok(v) => {
                    grad.iter_mut().for_each(|g| *g = -*g);
                    Some(-v)
                }
                Err(_) => None,
            }
        };
        match minimize_bounded(objective, x0, &lower, &upper, &opts.lbfgs) {
            Ok(r) => {
                total_iterations += r.iterations;
                let better = best.as_ref().is_none_or(|(f, ..)| r.f < *f);
                if better {
                    best = Some((r.f, r.x, r.iterations, r.reason));
                }
            }
            Err(e) => {
                failed += 1;
                last_error = Some(e);
            }
        }
    }
    let Some((_, theta, iterations, stop_reason)) = best else {
        return Err(GpError::OptimizationFailed(format!(
            "the objective could not be evaluated at any of the {} starting points (last error: {})",
            starts.len(),
            last_error.map_or_else(|| "none".to_string(), |e| e.to_string())
        )));
    };
    hyper.set_log_params(&theta);
    let log_marginal_likelihood = ev.value(&hyper)?;
    let log_prior = match prior {
        Some(p) => p.log_density(&hyper)?,
        None => 0.0,
    };
    Ok(Type2Fit {
        hyper,
        log_marginal_likelihood,
        log_prior,
        iterations,
        converged: matches!(
            stop_reason,
            StopReason::GradientTolerance | StopReason::FunctionTolerance
        ),
        stop_reason,
        starts_run: starts.len(),
        starts_failed: failed,
        total_iterations,
    })
}

fn draw_start<R: Rng>(
    dist: &StartDistribution,
    nl: usize,
    rng: &mut R,
) -> Result<Vec<f64>, GpError> {
    let mut theta = Vec::with_capacity(nl + 2);
    match dist {
        StartDistribution::LogUniform {
            lengthscale,
            outputscale,
            noise,
        } => {
            let mut log_uniform = |(lo, hi): (f64, f64)| {
                let (a, b) = (lo.ln(), hi.ln());
                a + (b - a) * rng.random::<f64>()
            };
            for _ in 0..nl {
                theta.push(log_uniform(*lengthscale));
            }
            theta.push(log_uniform(*outputscale));
            theta.push(log_uniform(*noise));
        }
        StartDistribution::Prior(prior) => {
            let (Some(ls), Some(os), Some(noise)) =
                (prior.lengthscale, prior.outputscale, prior.noise)
            else {
                return Err(missing_start_prior());
            };
            for _ in 0..nl {
                theta.push(ls.sample(rng).ln());
            }
            theta.push(os.sample(rng).ln());
            theta.push(noise.sample(rng).ln());
        }
    }
    // A draw that underflowed to 0 has log -inf; the optimiser projects it onto the lower bound.
    Ok(theta)
}

fn missing_start_prior() -> GpError {
    GpError::InvalidOption(
        "starting from the hyper-prior needs Gamma priors on lengthscale, outputscale and noise"
            .into(),
    )
}

fn validate_options(opts: &Type2Options) -> Result<(), GpError> {
    opts.lbfgs.validate()?;
    if opts.restarts == 0 && opts.initial.is_none() {
        return Err(GpError::InvalidOption(
            "restarts = 0 and no initial hyperparameters: nothing to optimise from".into(),
        ));
    }
    let b = &opts.bounds;
    for (name, (lo, hi)) in [
        ("lengthscale", b.lengthscale),
        ("outputscale", b.outputscale),
        ("noise", b.noise),
    ] {
        if !(lo > 0.0 && lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(GpError::InvalidOption(format!(
                "{name} bounds ({lo}, {hi}) must be finite with 0 < lower <= upper"
            )));
        }
    }
    match &opts.starts {
        StartDistribution::LogUniform {
            lengthscale,
            outputscale,
            noise,
        } => {
            for (name, (lo, hi)) in [
                ("lengthscale", lengthscale),
                ("outputscale", outputscale),
                ("noise", noise),
            ] {
                if !(*lo > 0.0 && hi.is_finite() && lo <= hi) {
                    return Err(GpError::InvalidOption(format!(
                        "{name} start range ({lo}, {hi}) must be finite with 0 < low <= high"
                    )));
                }
            }
        }
        StartDistribution::Prior(p) => {
            p.validate()?;
            if p.lengthscale.is_none() || p.outputscale.is_none() || p.noise.is_none() {
                return Err(missing_start_prior());
            }
        }
    }
    if let Some(p) = &opts.prior {
        p.validate()?;
    }
    Ok(())
}
