//! A thin, seeded driver of the No-U-Turn Sampler of the `nuts-rs` crate (pinned to 0.19.1).
//!
//! The sampler itself (NUTS with multinomial trajectory sampling, dual-averaging step-size
//! adaptation towards `target_accept` and diagonal mass-matrix adaptation during warm-up) is
//! `nuts-rs`'s `DiagNutsSettings`; this module only adapts a [`LogDensity`] to it, chooses starting
//! points, runs the chains and computes the diagnostics of [`crate::diagnostics`].
//!
//! * **Warm-up**: the first `warmup` transitions of every chain adapt the step size and the mass
//!   matrix and are discarded; `draws` transitions per chain are kept ("k steps" in the paper means
//!   `warmup = draws = k`).
//! * **Starting points**: `center + U(-init_radius, init_radius)` in every unconstrained
//!   coordinate (Pyro's and NumPyro's `init_to_uniform` with radius 2 when `center = 0`); a point
//!   where the density or its gradient is not finite is redrawn, at most `max_init_attempts`
//!   times.
//! * **Divergences**: a transition is divergent when the energy error exceeds 1000 (the Stan,
//!   Pyro and NumPyro threshold) or the density fails recoverably (e.g. a Cholesky failure).
//! * **Seeding**: chain `c` uses generators derived from `(seed, c)` only, so results are
//!   reproducible and independent of other chains. Chains run one after another on the calling
//!   thread; callers that evaluate many datasets parallelise across datasets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nuts_rs::rand::SeedableRng as _;
use nuts_rs::{
    Chain as _, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, Settings,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::diagnostics::{effective_sample_size, split_rhat, MIN_DRAWS};
use crate::error::BaselineError;

/// Stream tags that keep the random streams of this crate apart (see [`pfn_prior::rng`]).
pub(crate) mod domain {
    /// Starting points of NUTS chains (path `[chain]`).
    pub const NUTS_INIT: u64 = 0x6e75_7473_696e_6974;
    /// The NUTS transition kernel of a chain (path `[chain]`).
    pub const NUTS_KERNEL: u64 = 0x6e75_7473_6b65_726e;
}

/// A differentiable log density on `R^dim`, up to an additive constant.
pub trait LogDensity {
    /// Number of (unconstrained) parameters.
    fn dim(&self) -> usize;

    /// Returns `log p(theta)` and overwrites `grad` (length [`LogDensity::dim`]) with its gradient.
    fn log_density_and_grad(
        &mut self,
        theta: &[f64],
        grad: &mut [f64],
    ) -> Result<f64, DensityError>;
}

/// Failure of a log-density evaluation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DensityError {
    /// The point is numerically infeasible (e.g. a covariance that cannot be factored); NUTS
    /// treats the transition as divergent and goes on.
    #[error("log density not computable at this point: {0}")]
    Recoverable(String),
    /// An error that makes sampling pointless; NUTS stops.
    #[error("log density failed: {0}")]
    Fatal(String),
}

impl nuts_rs::LogpError for DensityError {
    fn is_recoverable(&self) -> bool {
        matches!(self, Self::Recoverable(_))
    }
}

/// Options of [`run_nuts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NutsOptions {
    /// Warm-up (adaptation) transitions per chain, discarded (default 256).
    pub warmup: u64,
    /// Kept transitions per chain (default 256).
    pub draws: u64,
    /// Number of chains (default 1, as in the paper).
    pub chains: usize,
    /// Seed of every random stream (default 0).
    pub seed: u64,
    /// Maximum tree depth: at most `2^max_depth - 1` leapfrog steps per transition (default 10).
    pub max_depth: u64,
    /// Target acceptance statistic of the step-size adaptation (default 0.8).
    pub target_accept: f64,
    /// Half-width of the uniform box around the centre that starting points are drawn from
    /// (default 2).
    pub init_radius: f64,
    /// How many starting points are tried before giving up (default 100).
    pub max_init_attempts: usize,
}

impl Default for NutsOptions {
    fn default() -> Self {
        Self {
            warmup: 256,
            draws: 256,
            chains: 1,
            seed: 0,
            max_depth: 10,
            target_accept: 0.8,
            init_radius: 2.0,
            max_init_attempts: 100,
        }
    }
}

impl NutsOptions {
    /// The paper's "k (warmup) steps" setting: `k` warm-up plus `k` kept draws, one chain.
    pub fn steps(k: u64, seed: u64) -> Self {
        Self {
            warmup: k,
            draws: k,
            seed,
            ..Self::default()
        }
    }

    /// Checks every option.
    pub fn validate(&self) -> Result<(), BaselineError> {
        if self.draws == 0 {
            return Err(BaselineError::option("draws", "must be at least 1"));
        }
        if self.chains == 0 {
            return Err(BaselineError::option("chains", "must be at least 1"));
        }
        if !(1..=30).contains(&self.max_depth) {
            return Err(BaselineError::option(
                "max_depth",
                format!("{} must lie in 1..=30", self.max_depth),
            ));
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return Err(BaselineError::option(
                "target_accept",
                format!("{} must lie in (0, 1)", self.target_accept),
            ));
        }
        if !(self.init_radius.is_finite() && self.init_radius >= 0.0) {
            return Err(BaselineError::option(
                "init_radius",
                format!("{} must be finite and >= 0", self.init_radius),
            ));
        }
        if self.max_init_attempts == 0 {
            return Err(BaselineError::option(
                "max_init_attempts",
                "must be at least 1",
            ));
        }
        self.warmup
            .checked_add(self.draws)
            .and_then(|t| usize::try_from(t).ok())
            .and_then(|t| t.checked_mul(self.chains))
            .ok_or_else(|| BaselineError::option("warmup + draws", "too many transitions"))?;
        Ok(())
    }
}

/// The kept draws and statistics of one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainTrace {
    /// Kept draws, row-major `draws x dim` (unconstrained parameters).
    pub draws: Vec<f64>,
    /// Number of parameters.
    pub dim: usize,
    /// The starting point.
    pub initial_position: Vec<f64>,
    /// Divergent transitions among the kept draws.
    pub divergences: usize,
    /// Divergent transitions during warm-up.
    pub warmup_divergences: usize,
    /// Leapfrog steps summed over the kept transitions.
    pub leapfrog_steps: u64,
    /// Gradient evaluations summed over warm-up and kept transitions.
    pub gradient_evaluations: u64,
    /// The adapted step size after the last transition.
    pub step_size: f64,
}

impl ChainTrace {
    /// Number of kept draws.
    pub fn num_draws(&self) -> usize {
        self.draws.len().checked_div(self.dim).unwrap_or(0)
    }

    /// The kept draws of parameter `j` (empty if `j >= dim`).
    pub fn parameter(&self, j: usize) -> Vec<f64> {
        if j >= self.dim {
            return Vec::new();
        }
        self.draws
            .iter()
            .skip(j)
            .step_by(self.dim)
            .copied()
            .collect()
    }
}

/// Summary diagnostics of a NUTS run.
#[derive(Debug, Clone, PartialEq)]
pub struct NutsDiagnostics {
    /// Name of every unconstrained parameter.
    pub parameter_names: Vec<String>,
    /// Split R-hat per parameter (over all chains; over the two halves of a single chain). NaN
    /// when fewer than 4 draws per chain were kept or a parameter never moved.
    pub rhat: Vec<f64>,
    /// Effective sample size per parameter (see [`crate::diagnostics`]); NaN as for `rhat`.
    pub ess: Vec<f64>,
    /// Divergent kept transitions, over all chains.
    pub divergences: usize,
    /// Fraction of kept transitions that diverged.
    pub divergence_rate: f64,
    /// Divergent warm-up transitions, over all chains.
    pub warmup_divergences: usize,
    /// Mean number of leapfrog steps per kept transition.
    pub mean_leapfrog_steps: f64,
    /// Gradient evaluations over all chains and transitions.
    pub gradient_evaluations: u64,
    /// Adapted step size of every chain.
    pub step_sizes: Vec<f64>,
    /// Wall time of the sampling (all chains, excluding the diagnostics themselves).
    pub sampling_time: Duration,
}

impl NutsDiagnostics {
    /// Largest split R-hat over the parameters (NaN entries are skipped; NaN if all are NaN).
    pub fn max_rhat(&self) -> f64 {
        self.rhat
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::max)
    }

    /// Smallest effective sample size over the parameters (NaN entries are skipped).
    pub fn min_ess(&self) -> f64 {
        self.ess
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::min)
    }
}

/// Result of [`run_nuts`].
#[derive(Debug, Clone, PartialEq)]
pub struct NutsRun {
    /// One trace per chain, in chain order.
    pub chains: Vec<ChainTrace>,
    /// Diagnostics over all chains.
    pub diagnostics: NutsDiagnostics,
}

impl NutsRun {
    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.chains.first().map_or(0, |c| c.dim)
    }

    /// All kept draws, chain after chain, row-major `(chains * draws) x dim`.
    pub fn all_draws(&self) -> Vec<f64> {
        self.chains
            .iter()
            .flat_map(|c| c.draws.iter().copied())
            .collect()
    }

    /// Total number of kept draws over all chains.
    pub fn num_draws(&self) -> usize {
        self.chains.iter().map(ChainTrace::num_draws).sum()
    }
}

/// Runs `opts.chains` NUTS chains on clones of `density` and returns the kept draws with their
/// diagnostics. `names` (one per parameter) label the diagnostics; starting points are drawn
/// around `center` (length `dim`).
pub fn run_nuts<D: LogDensity + Clone>(
    density: &D,
    names: &[String],
    center: &[f64],
    opts: &NutsOptions,
) -> Result<NutsRun, BaselineError> {
    opts.validate()?;
    let dim = density.dim();
    if dim == 0 {
        return Err(BaselineError::empty(
            "density",
            "NUTS needs at least one parameter",
        ));
    }
    if names.len() != dim {
        return Err(BaselineError::shape(
            "names",
            format!("{dim} parameter names"),
            format!("{} names", names.len()),
        ));
    }
    if center.len() != dim {
        return Err(BaselineError::shape(
            "center",
            format!("{dim} values"),
            format!("{} values", center.len()),
        ));
    }
    crate::error::check_finite("center", center)?;

    let start = Instant::now();
    let mut chains = Vec::with_capacity(opts.chains);
    for c in 0..opts.chains {
        chains.push(run_chain(density.clone(), center, opts, c)?);
    }
    let sampling_time = start.elapsed();

    let draws_per_chain = opts.draws as usize;
    let mut rhat = Vec::with_capacity(dim);
    let mut ess = Vec::with_capacity(dim);
    for j in 0..dim {
        let columns: Vec<Vec<f64>> = chains.iter().map(|c| c.parameter(j)).collect();
        let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        if draws_per_chain < MIN_DRAWS {
            rhat.push(f64::NAN);
            ess.push(f64::NAN);
        } else {
            rhat.push(split_rhat(&refs)?);
            ess.push(effective_sample_size(&refs)?);
        }
    }
    let kept = (draws_per_chain * opts.chains) as f64;
    let divergences = chains.iter().map(|c| c.divergences).sum();
    let diagnostics = NutsDiagnostics {
        parameter_names: names.to_vec(),
        rhat,
        ess,
        divergences,
        divergence_rate: divergences as f64 / kept,
        warmup_divergences: chains.iter().map(|c| c.warmup_divergences).sum(),
        mean_leapfrog_steps: chains.iter().map(|c| c.leapfrog_steps).sum::<u64>() as f64 / kept,
        gradient_evaluations: chains.iter().map(|c| c.gradient_evaluations).sum(),
        step_sizes: chains.iter().map(|c| c.step_size).collect(),
        sampling_time,
    };
    Ok(NutsRun {
        chains,
        diagnostics,
    })
}

fn run_chain<D: LogDensity>(
    mut density: D,
    center: &[f64],
    opts: &NutsOptions,
    chain: usize,
) -> Result<ChainTrace, BaselineError> {
    let dim = density.dim();
    let mut init_rng = ChaCha8Rng::seed_from_u64(pfn_prior::rng::derive_key(
        domain::NUTS_INIT,
        opts.seed,
        &[chain as u64],
    ));
    let initial_position = find_start(&mut density, center, opts, &mut init_rng)?;

    let mut settings = DiagNutsSettings {
        num_tune: opts.warmup,
        num_draws: opts.draws,
        num_chains: 1,
        seed: opts.seed,
        maxdepth: opts.max_depth,
        ..DiagNutsSettings::default()
    };
    settings.adapt_options.step_size_settings.target_accept = opts.target_accept;
    let mut kernel_rng = nuts_rs::rand::rngs::ChaCha8Rng::seed_from_u64(
        pfn_prior::rng::derive_key(domain::NUTS_KERNEL, opts.seed, &[chain as u64]),
    );
    let math = CpuMath::new(NutsAdapter { density, dim });
    let mut sampler = settings
        .new_chain(chain as u64, math, &mut kernel_rng)
        .map_err(|e| BaselineError::Sampler(format!("cannot create chain {chain}: {e:#}")))?;
    sampler.set_position(&initial_position).map_err(|e| {
        BaselineError::Sampler(format!(
            "chain {chain}: cannot start at the initial point: {e:#}"
        ))
    })?;

    let mut trace = ChainTrace {
        draws: Vec::with_capacity(opts.draws as usize * dim),
        dim,
        initial_position,
        divergences: 0,
        warmup_divergences: 0,
        leapfrog_steps: 0,
        gradient_evaluations: 0,
        step_size: f64::NAN,
    };
    for i in 0..opts.warmup + opts.draws {
        let (position, progress) = sampler
            .draw()
            .map_err(|e| BaselineError::Sampler(format!("chain {chain}, transition {i}: {e:#}")))?;
        trace.gradient_evaluations += progress.num_gradients;
        trace.step_size = progress.step_size;
        if i < opts.warmup {
            trace.warmup_divergences += usize::from(progress.diverging);
        } else {
            trace.divergences += usize::from(progress.diverging);
            trace.leapfrog_steps += progress.num_steps;
            trace.draws.extend_from_slice(&position);
        }
    }
    Ok(trace)
}

/// Draws starting points until the density and its gradient are finite there.
fn find_start<D: LogDensity>(
    density: &mut D,
    center: &[f64],
    opts: &NutsOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, BaselineError> {
    let dim = center.len();
    let mut grad = vec![0.0; dim];
    let mut last = String::from("none");
    for _ in 0..opts.max_init_attempts {
        let theta: Vec<f64> = center
            .iter()
            .map(|c| c + opts.init_radius * (2.0 * rng.random::<f64>() - 1.0))
            .collect();
        match density.log_density_and_grad(&theta, &mut grad) {
            Ok(v) if v.is_finite() && grad.iter().all(|g| g.is_finite()) => return Ok(theta),
            Ok(v) => last = format!("log density {v} or its gradient is not finite"),
            Err(DensityError::Fatal(e)) => return Err(BaselineError::Sampler(e)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(BaselineError::Sampler(format!(
        "no finite starting point in {} attempts (last problem: {last})",
        opts.max_init_attempts
    )))
}

/// Adapts a [`LogDensity`] to `nuts-rs`: non-finite values or gradients become recoverable
/// errors, which the sampler counts as divergences.
#[derive(Debug)]
struct NutsAdapter<D> {
    density: D,
    dim: usize,
}

impl<D> HasDims for NutsAdapter<D> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        HashMap::from([
            ("unconstrained_parameter".to_string(), self.dim as u64),
            ("dim".to_string(), self.dim as u64),
        ])
    }
}

impl<D: LogDensity> CpuLogpFunc for NutsAdapter<D> {
    type LogpError = DensityError;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp(&mut self, position: &[f64], gradient: &mut [f64]) -> Result<f64, DensityError> {
        let v = self.density.log_density_and_grad(position, gradient)?;
        if !v.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
            return Err(DensityError::Recoverable(format!(
                "log density {v} or its gradient is not finite"
            )));
        }
        Ok(v)
    }

    fn expand_vector<R>(&mut self, _rng: &mut R, array: &[f64]) -> Result<Vec<f64>, CpuMathError>
    where
        R: nuts_rs::rand::Rng + ?Sized,
    {
        Ok(array.to_vec())
    }
}
