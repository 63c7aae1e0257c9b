//! NUTS over the hyperparameters of a GP with Gamma hyper-priors (paper §5.2, spec 4.2), and the
//! resulting posterior predictive: the equal-weight mixture of the exact GP predictives of the
//! sampled hyperparameters.
//!
//! # Unconstrained parameters and target density
//!
//! `theta = [log l_1, ..., log l_L, log o, t_noise]` (`L = d` with ARD, 1 otherwise), with
//! lengthscales `l_j = exp(theta_j)`, outputscale `o = exp(theta_L)` and the noise given by the
//! [`NoiseModel`]. The target is the joint density of `theta`:
//!
//! `log p(y | X, h) + sum_j [log Gamma(l_j) + log l_j] + [log Gamma(o) + log o] + noise term`,
//!
//! i.e. the GP log marginal likelihood (value and gradient from `pfn-gp`) plus the Gamma
//! hyper-prior densities *of the hyperparameters themselves* and the log-Jacobians of the
//! transforms. (The `space` field of the [`HyperPrior`] is therefore ignored: the Jacobian is
//! always included, as for any sampler in an unconstrained space.)
//!
//! # The noise floor
//!
//! Under the paper's noise prior Γ(1e-4, 1), the density of `log noise` decays only like
//! `noise^(1e-4)` as the noise goes to 0, while the likelihood stops depending on the noise once
//! it is far below the signal: the posterior of `log noise` has a left tail thousands of units
//! long and NUTS diverges (the reference measured divergences on ~58% of transitions). Every
//! sampled [`NoiseModel`] therefore keeps the noise above a floor, `noise = floor + s`, `s > 0`:
//!
//! * [`NoiseModel::ShiftedGamma`] (default): the **excess** `s` has the Gamma hyper-prior
//!   Γ(α, β). This is the model `pfn_prior::GpHyperPrior` samples from, up to a shift of at most
//!   the floor: it draws `noise = max(g, floor)` with `g ~ Γ(α, β)`, and for Γ(1e-4, 1) 99.9% of
//!   the draws sit exactly at the floor (here: in `[floor, 2 floor]`). For `α >= 1` the excess is
//!   sampled as `t = log s` (prior `log Gamma(s) + t`, whose left tail decays like `e^(α t)`). For
//!   `α < 1` that tail is almost flat (rate α), so the excess goes through a bounded
//!   reparameterisation instead: with `c = 50 + 20 α`, `s = (c / β) sigmoid(t)^(1/α)`, i.e.
//!   `log s = log(c / β) - softplus(-t) / α`, which maps `t in R` onto `s in (0, c / β)` (the
//!   cut-off drops a prior mass below 1e-12). In `t` the prior is then exactly
//!   `log p(t) = α log c - log Γ(α + 1) + log sigmoid(t) + log sigmoid(-t) - β s`: a logistic
//!   density tilted by `e^(-β s)`, smooth and proper with unit-scale tails, so the sampler never
//!   wanders down an almost flat tail.
//! * [`NoiseModel::TruncatedGamma`]: `noise = floor + exp(t)` with the hyper-prior density taken
//!   **at the noise itself**, i.e. the Gamma prior truncated to `[floor, inf)` (as a GPyTorch
//!   likelihood with a `GreaterThan(floor)` constraint and a Gamma noise prior): the noise term
//!   is `log Gamma(floor + e^t) + t`, which decays like `e^t` as `t -> -inf`. For small α this
//!   prior spreads the noise roughly log-uniformly between the floor and 1, far from the
//!   clamped draws of the data prior, so it predicts worse on such data (see the crate report).
//!
//! The default floor 1e-4 equals the floor at which `pfn_prior::GpHyperPrior::paper` clamps the
//! noise it draws, and BoTorch's default noise constraint (`GreaterThan(1e-4)`).
//! [`NoiseModel::Fixed`] holds the noise at a known value and samples only the kernel
//! hyperparameters.

use std::time::{Duration, Instant};

use pfn_gp::special::ln_gamma;
use pfn_gp::{GammaPrior, GpError, GpHyper, HyperPrior, KernelKind, LmlEvaluator};
use pfn_prior::GpHyperPriorConfig;

use crate::error::{check_matrix, BaselineError};
use crate::gp_predictive::GpMixturePredictive;
use crate::logistic::{log_sigmoid, sigmoid};
use crate::nuts::{run_nuts, DensityError, LogDensity, NutsOptions, NutsRun};

/// How the observation-noise variance is parameterised (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseModel {
    /// `noise = floor + s` with `s ~` the Gamma hyper-prior Γ(α, β), sampled as `t = log s` for
    /// `α >= 1` and through the bounded transform `s = (c / β) sigmoid(t)^(1/α)`,
    /// `c = 50 + 20 α`, for `α < 1` (the default, floor 1e-4).
    ShiftedGamma {
        /// The smallest noise variance (> 0).
        floor: f64,
    },
    /// `noise = floor + exp(t)` with the Gamma hyper-prior truncated to `[floor, inf)`.
    TruncatedGamma {
        /// The smallest noise variance (> 0).
        floor: f64,
    },
    /// The noise is known and not sampled.
    Fixed {
        /// The noise variance (>= 0).
        noise: f64,
    },
}

impl Default for NoiseModel {
    /// `ShiftedGamma { floor: 1e-4 }`.
    fn default() -> Self {
        Self::ShiftedGamma { floor: 1e-4 }
    }
}

impl NoiseModel {
    /// Whether the noise is a sampled parameter.
    pub fn is_sampled(&self) -> bool {
        !matches!(self, Self::Fixed { .. })
    }
}

/// `c` of [`NoiseModel::ShiftedGamma`] for `α < 1`: the excess is bounded by `c / β`.
fn shifted_gamma_bound(concentration: f64) -> f64 {
    50.0 + 20.0 * concentration
}

/// Whether [`NoiseModel::ShiftedGamma`] uses the bounded power transform (else `t = log s`).
fn shifted_gamma_uses_power(concentration: f64) -> bool {
    concentration < 1.0
}

/// Options of [`sample_gp_posterior`] and [`fit_gp_nuts`].
#[derive(Debug, Clone, PartialEq)]
pub struct GpNutsOptions {
    /// Sampler settings (warm-up, draws, chains, seed, ...).
    pub nuts: NutsOptions,
    /// Kernel family (the paper: Matérn-5/2).
    pub kernel: KernelKind,
    /// One lengthscale per input dimension (true, the paper) or one shared lengthscale.
    pub ard: bool,
    /// Gamma hyper-priors; all three must be present (their `space` field is ignored, see the
    /// module documentation; the noise prior is unused with [`NoiseModel::Fixed`]).
    pub prior: HyperPrior,
    /// Parameterisation of the noise.
    pub noise: NoiseModel,
}

impl Default for GpNutsOptions {
    /// The paper's model: Matérn-5/2 ARD, hyper-priors of [`HyperPrior::paper`], the noise as
    /// [`NoiseModel::ShiftedGamma`] with floor 1e-4, 256 warm-up + 256 draws, one chain.
    fn default() -> Self {
        Self {
            nuts: NutsOptions::default(),
            kernel: KernelKind::Matern52,
            ard: true,
            prior: HyperPrior::paper(),
            noise: NoiseModel::default(),
        }
    }
}

impl GpNutsOptions {
    /// The model that `pfn_prior::GpHyperPrior` samples from `config`: its kernel, ARD flag and
    /// Gamma priors, with the noise as [`NoiseModel::ShiftedGamma`] above `config.noise_floor`
    /// (a zero floor is rejected by [`GpNutsOptions::validate`]).
    pub fn from_prior_config(config: &GpHyperPriorConfig, nuts: NutsOptions) -> Self {
        let gamma = |g: pfn_prior::GammaPrior| GammaPrior {
            concentration: g.concentration,
            rate: g.rate,
        };
        Self {
            nuts,
            kernel: config.kernel,
            ard: config.ard,
            prior: HyperPrior {
                lengthscale: Some(gamma(config.lengthscale)),
                outputscale: Some(gamma(config.outputscale)),
                noise: Some(gamma(config.noise)),
                space: pfn_gp::PriorSpace::LogHyperparameter,
            },
            noise: NoiseModel::ShiftedGamma {
                floor: config.noise_floor,
            },
        }
    }

    /// Checks every option.
    pub fn validate(&self) -> Result<(), BaselineError> {
        self.nuts.validate()?;
        self.prior.validate()?;
        if self.prior.lengthscale.is_none() || self.prior.outputscale.is_none() {
            return Err(BaselineError::option(
                "prior",
                "NUTS needs proper Gamma priors on the lengthscale and the outputscale",
            ));
        }
        match self.noise {
            NoiseModel::ShiftedGamma { floor } | NoiseModel::TruncatedGamma { floor } => {
                if !(floor.is_finite() && floor > 0.0) {
                    return Err(BaselineError::option(
                        "noise.floor",
                        format!("{floor} must be finite and > 0"),
                    ));
                }
                if self.prior.noise.is_none() {
                    return Err(BaselineError::option(
                        "prior.noise",
                        "a sampled noise needs a Gamma prior",
                    ));
                }
            }
            NoiseModel::Fixed { noise } => {
                if !(noise.is_finite() && noise >= 0.0) {
                    return Err(BaselineError::option(
                        "noise.noise",
                        format!("{noise} must be finite and >= 0"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Number of lengthscales for inputs with `d` dimensions.
    fn num_lengthscales(&self, d: usize) -> usize {
        if self.ard {
            d
        } else {
            1
        }
    }
}

/// The noise at a value of its unconstrained parameter.
#[derive(Debug, Clone, Copy)]
struct NoiseValue {
    /// The noise variance `floor + excess`.
    noise: f64,
    /// The excess over the floor (kept separately: it can be far below the floor's precision).
    excess: f64,
    /// `d noise / d t`.
    derivative: f64,
}

/// The target density of NUTS over GP hyperparameters (see the module documentation).
#[derive(Debug, Clone)]
pub struct GpHyperDensity {
    evaluator: LmlEvaluator,
    kernel: KernelKind,
    num_lengthscales: usize,
    lengthscale: GammaPrior,
    outputscale: GammaPrior,
    noise_prior: Option<GammaPrior>,
    noise: NoiseModel,
    hyper: GpHyper,
    lml_grad: Vec<f64>,
}

impl GpHyperDensity {
    /// Builds the density of the data `x` (row-major `n x d`, `n >= 1`) and `y` (length `n`).
    pub fn new(
        x: &[f64],
        y: &[f64],
        d: usize,
        opts: &GpNutsOptions,
    ) -> Result<Self, BaselineError> {
        opts.validate()?;
        let n = check_matrix("x", x, d)?;
        if n == 0 {
            return Err(BaselineError::empty(
                "x",
                "the hyperparameter posterior needs at least one observation",
            ));
        }
        if y.len() != n {
            return Err(BaselineError::shape(
                "y",
                format!("{n} values (one per row of x)"),
                format!("{} values", y.len()),
            ));
        }
        crate::error::check_finite("y", y)?;
        let nl = opts.num_lengthscales(d);
        let (Some(lengthscale), Some(outputscale)) =
            (opts.prior.lengthscale, opts.prior.outputscale)
        else {
            return Err(BaselineError::option("prior", "missing Gamma prior"));
        };
        Ok(Self {
            evaluator: LmlEvaluator::new(x, y, d)?,
            kernel: opts.kernel,
            num_lengthscales: nl,
            lengthscale,
            outputscale,
            noise_prior: opts.prior.noise,
            noise: opts.noise,
            hyper: GpHyper {
                kind: opts.kernel,
                lengthscales: vec![1.0; nl],
                outputscale: 1.0,
                noise: 1.0,
            },
            lml_grad: vec![0.0; nl + 2],
        })
    }

    /// Names of the unconstrained parameters: `log_lengthscale[j]`, `log_outputscale`, and
    /// `noise_logit` ([`NoiseModel::ShiftedGamma`]) or `log_noise_excess`
    /// ([`NoiseModel::TruncatedGamma`]).
    pub fn parameter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.num_lengthscales)
            .map(|j| format!("log_lengthscale[{j}]"))
            .collect();
        names.push("log_outputscale".into());
        match self.noise {
            NoiseModel::ShiftedGamma { .. } => names.push("noise_logit".into()),
            NoiseModel::TruncatedGamma { .. } => names.push("log_noise_excess".into()),
            NoiseModel::Fixed { .. } => {}
        }
        names
    }

    /// Maps an unconstrained vector to hyperparameters (validated).
    pub fn hyper_from_unconstrained(&self, theta: &[f64]) -> Result<GpHyper, BaselineError> {
        if theta.len() != self.dim() {
            return Err(BaselineError::shape(
                "theta",
                format!("{} values", self.dim()),
                format!("{} values", theta.len()),
            ));
        }
        let nl = self.num_lengthscales;
        let noise = match self.noise_transform(theta.get(nl + 1).copied().unwrap_or(0.0)) {
            Some(v) => v.noise,
            None => {
                return Err(BaselineError::option(
                    "theta",
                    format!("noise parameter {} out of range", theta[nl + 1]),
                ))
            }
        };
        Ok(GpHyper::new(
            self.kernel,
            theta[..nl].iter().map(|t| t.exp()).collect(),
            theta[nl].exp(),
            noise,
        )?)
    }

    /// The unconstrained vector of `hyper` (the inverse of
    /// [`GpHyperDensity::hyper_from_unconstrained`]); a floored noise must exceed the floor.
    pub fn unconstrained_from_hyper(&self, hyper: &GpHyper) -> Result<Vec<f64>, BaselineError> {
        hyper.validate()?;
        if hyper.lengthscales.len() != self.num_lengthscales || hyper.kind != self.kernel {
            return Err(BaselineError::shape(
                "hyper.lengthscales",
                format!(
                    "{:?} with {} lengthscales",
                    self.kernel, self.num_lengthscales
                ),
                format!("{:?} with {}", hyper.kind, hyper.lengthscales.len()),
            ));
        }
        let mut theta: Vec<f64> = hyper.lengthscales.iter().map(|l| l.ln()).collect();
        theta.push(hyper.outputscale.ln());
        let excess = |floor: f64| {
            if hyper.noise > floor {
                Ok(hyper.noise - floor)
            } else {
                Err(BaselineError::option(
                    "hyper.noise",
                    format!("{} must exceed the noise floor {floor}", hyper.noise),
                ))
            }
        };
        match self.noise {
            NoiseModel::TruncatedGamma { floor } => theta.push(excess(floor)?.ln()),
            NoiseModel::ShiftedGamma { floor } => {
                let s = excess(floor)?;
                let Some(g) = self.noise_prior else {
                    return Err(BaselineError::option("prior.noise", "missing Gamma prior"));
                };
                let (a, b) = (g.concentration, g.rate);
                if !shifted_gamma_uses_power(a) {
                    theta.push(s.ln());
                    return Ok(theta);
                }
                // softplus(-t) = a ln(c / (b s)) > 0, so t = -ln(expm1(a ln(c / (b s)))).
                let y = a * (shifted_gamma_bound(a) / (b * s)).ln();
                if y.is_nan() || y <= 0.0 {
                    return Err(BaselineError::option(
                        "hyper.noise",
                        format!("excess {s} is beyond the transform's bound"),
                    ));
                }
                theta.push(-y.exp_m1().ln());
            }
            NoiseModel::Fixed { .. } => {}
        }
        Ok(theta)
    }

    /// Log density of a Gamma prior on `h = exp(t)` in the variable `t`, and its `t`-derivative.
    fn log_gamma_in_log_space(g: &GammaPrior, h: f64) -> (f64, f64) {
        let (a, b) = (g.concentration, g.rate);
        (g.log_pdf(h) + h.ln(), a - b * h)
    }

    /// The noise at the noise parameter `t`; `None` if out of range.
    fn noise_transform(&self, t: f64) -> Option<NoiseValue> {
        let value = |floor: f64, excess: f64, derivative: f64| NoiseValue {
            noise: floor + excess,
            excess,
            derivative,
        };
        match (self.noise, self.noise_prior) {
            (NoiseModel::Fixed { noise }, _) => Some(value(noise, 0.0, 0.0)),
            (NoiseModel::TruncatedGamma { floor }, _) => {
                let s = t.exp();
                s.is_finite().then_some(value(floor, s, s))
            }
            (NoiseModel::ShiftedGamma { floor }, Some(g)) => {
                let (a, b) = (g.concentration, g.rate);
                if !shifted_gamma_uses_power(a) {
                    let s = t.exp();
                    return s.is_finite().then_some(value(floor, s, s));
                }
                let ln_s = (shifted_gamma_bound(a) / b).ln() + log_sigmoid(t) / a;
                let s = ln_s.exp();
                (t.is_finite() && s.is_finite()).then_some(value(floor, s, s * sigmoid(-t) / a))
            }
            (NoiseModel::ShiftedGamma { .. }, None) => None,
        }
    }

    /// The log prior density of the noise parameter `t` (with the transform's Jacobian) and its
    /// derivative, given the transformed noise `v`.
    fn noise_log_prior(&self, t: f64, v: &NoiseValue) -> (f64, f64) {
        let (noise, s, dnoise) = (v.noise, v.excess, v.derivative);
        let Some(g) = self.noise_prior else {
            return (0.0, 0.0);
        };
        let (a, b) = (g.concentration, g.rate);
        match self.noise {
            NoiseModel::Fixed { .. } => (0.0, 0.0),
            NoiseModel::TruncatedGamma { .. } => {
                (g.log_pdf(noise) + t, ((a - 1.0) / noise - b) * dnoise + 1.0)
            }
            NoiseModel::ShiftedGamma { .. } if !shifted_gamma_uses_power(a) => {
                // t = log s: the Gamma density of s plus the Jacobian t.
                (g.log_pdf(s) + t, a - b * s)
            }
            NoiseModel::ShiftedGamma { .. } => {
                let value = a * shifted_gamma_bound(a).ln() - ln_gamma(a + 1.0)
                    + log_sigmoid(t)
                    + log_sigmoid(-t)
                    - b * s;
                (value, 1.0 - 2.0 * sigmoid(t) - b * dnoise)
            }
        }
    }
}

impl LogDensity for GpHyperDensity {
    fn dim(&self) -> usize {
        self.num_lengthscales + 1 + usize::from(self.noise.is_sampled())
    }

    fn log_density_and_grad(
        &mut self,
        theta: &[f64],
        grad: &mut [f64],
    ) -> Result<f64, DensityError> {
        let nl = self.num_lengthscales;
        let recoverable = |what: &str| DensityError::Recoverable(format!("{what} out of range"));
        for (l, t) in self.hyper.lengthscales.iter_mut().zip(theta) {
            *l = t.exp();
            if !(l.is_finite() && *l > 0.0) {
                return Err(recoverable("lengthscale"));
            }
        }
        self.hyper.outputscale = theta[nl].exp();
        if !(self.hyper.outputscale.is_finite() && self.hyper.outputscale > 0.0) {
            return Err(recoverable("outputscale"));
        }
        let t_noise = theta.get(nl + 1).copied().unwrap_or(0.0);
        let noise = self
            .noise_transform(t_noise)
            .ok_or_else(|| recoverable("noise"))?;
        self.hyper.noise = noise.noise;
        let lml = match self
            .evaluator
            .value_and_grad(&self.hyper, None, &mut self.lml_grad)
        {
            Ok(v) => v,
            // A proposal whose covariance cannot be factored or evaluated (e.g. a lengthscale so
            // small that the scaled inputs overflow) is rejected like a divergence, not fatal.
            Err(
                e @ (GpError::NotPositiveDefinite { .. }
                | GpError::InvalidHyper(_)
                | GpError::NotFinite(_)),
            ) => return Err(DensityError::Recoverable(e.to_string())),
            Err(e) => return Err(DensityError::Fatal(e.to_string())),
        };
        let mut total = lml;
        for ((g, l), dl) in grad[..nl]
            .iter_mut()
            .zip(&self.hyper.lengthscales)
            .zip(&self.lml_grad)
        {
            let (v, dv) = Self::log_gamma_in_log_space(&self.lengthscale, *l);
            total += v;
            *g = dl + dv;
        }
        let (v, dv) = Self::log_gamma_in_log_space(&self.outputscale, self.hyper.outputscale);
        total += v;
        grad[nl] = self.lml_grad[nl] + dv;
        if self.noise.is_sampled() {
            // The LML gradient is with respect to log noise.
            let dlml = self.lml_grad[nl + 1] * noise.derivative / noise.noise;
            let (v, dv) = self.noise_log_prior(t_noise, &noise);
            total += v;
            grad[nl + 1] = dlml + dv;
        }
        Ok(total)
    }
}

/// Posterior samples of GP hyperparameters drawn by NUTS, with the data they condition on.
#[derive(Debug, Clone)]
pub struct GpNutsPosterior {
    /// Sampled hyperparameters, chain after chain.
    pub samples: Vec<GpHyper>,
    /// The unconstrained traces and the diagnostics.
    pub run: NutsRun,
    x: Vec<f64>,
    y: Vec<f64>,
    d: usize,
}

impl GpNutsPosterior {
    /// Input dimension of the data.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The equal-weight mixture of the exact GP predictives of the samples at `x_test`
    /// (row-major `m x d`).
    pub fn predictive(&self, x_test: &[f64]) -> Result<GpMixturePredictive, BaselineError> {
        GpMixturePredictive::from_hypers(&self.x, &self.y, self.d, &self.samples, x_test)
    }
}

/// Samples the hyperparameter posterior of a GP on `x` (row-major `n x d`) and `y` with NUTS.
/// Starting points are drawn as `U(-init_radius, init_radius)` in every unconstrained coordinate
/// (Pyro's default).
pub fn sample_gp_posterior(
    x: &[f64],
    y: &[f64],
    d: usize,
    opts: &GpNutsOptions,
) -> Result<GpNutsPosterior, BaselineError> {
    let density = GpHyperDensity::new(x, y, d, opts)?;
    let names = density.parameter_names();
    let center = vec![0.0; density.dim()];
    let run = run_nuts(&density, &names, &center, &opts.nuts)?;
    let samples = run
        .all_draws()
        .chunks_exact(density.dim())
        .map(|theta| density.hyper_from_unconstrained(theta))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GpNutsPosterior {
        samples,
        run,
        x: x.to_vec(),
        y: y.to_vec(),
        d,
    })
}

/// Everything [`fit_gp_nuts`] returns for one dataset.
#[derive(Debug, Clone)]
pub struct GpNutsResult {
    /// The samples, traces and diagnostics.
    pub posterior: GpNutsPosterior,
    /// The posterior predictive at the test inputs.
    pub predictive: GpMixturePredictive,
    /// Wall time of sampling plus predicting (what the paper times per dataset).
    pub wall_time: Duration,
}

/// NUTS baseline for one dataset: samples the hyperparameter posterior given (`x`, `y`) and
/// returns the mixture predictive at `x_test` (row-major `m x d`). Score test targets with
/// [`GpMixturePredictive::log_density`].
pub fn fit_gp_nuts(
    x: &[f64],
    y: &[f64],
    d: usize,
    x_test: &[f64],
    opts: &GpNutsOptions,
) -> Result<GpNutsResult, BaselineError> {
    let start = Instant::now();
    check_matrix("x_test", x_test, d)?;
    let posterior = sample_gp_posterior(x, y, d, opts)?;
    let predictive = posterior.predictive(x_test)?;
    Ok(GpNutsResult {
        posterior,
        predictive,
        wall_time: start.elapsed(),
    })
}
