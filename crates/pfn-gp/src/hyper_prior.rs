//! Gamma hyper-priors on lengthscales, outputscale and noise for MAP type-II fitting.
//!
//! The optimiser works on `theta = log h`. Two conventions for the prior term exist:
//!
//! * [`PriorSpace::Hyperparameter`] (default, the GPyTorch/BoTorch convention used by the paper's
//!   MLE-II baseline): the objective adds `log p(h)`, the Gamma density evaluated at the
//!   hyperparameter itself. Its gradient with respect to `theta` uses the chain rule
//!   `d/dtheta = h d/dh`, giving `(alpha - 1) - beta h`.
//! * [`PriorSpace::LogHyperparameter`]: the objective adds the density of `theta` implied by the
//!   Gamma prior on `h`, i.e. `log p(h) + log |dh/dtheta| = log p(h) + theta`, giving the gradient
//!   `alpha - beta h`. This is the MAP estimate in the space that is actually optimised.

use rand::Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use crate::special::ln_gamma;
use crate::{GpError, GpHyper};

/// A Gamma distribution with shape `concentration` (alpha) and `rate` (beta), mean alpha / beta.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaPrior {
    /// Shape alpha > 0.
    pub concentration: f64,
    /// Rate beta > 0 (inverse scale).
    pub rate: f64,
}

impl GammaPrior {
    /// Creates a validated Gamma prior.
    pub fn new(concentration: f64, rate: f64) -> Result<Self, GpError> {
        let g = Self {
            concentration,
            rate,
        };
        g.validate()?;
        Ok(g)
    }

    /// Checks that both parameters are finite and positive.
    pub fn validate(&self) -> Result<(), GpError> {
        if !(self.concentration.is_finite() && self.concentration > 0.0) {
            return Err(GpError::InvalidOption(format!(
                "Gamma concentration = {} must be finite and > 0",
                self.concentration
            )));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(GpError::InvalidOption(format!(
                "Gamma rate = {} must be finite and > 0",
                self.rate
            )));
        }
        Ok(())
    }

    /// Log density at `h > 0`: `alpha ln beta - ln Gamma(alpha) + (alpha - 1) ln h - beta h`.
    pub fn log_pdf(&self, h: f64) -> f64 {
        let (a, b) = (self.concentration, self.rate);
        a * b.ln() - ln_gamma(a) + (a - 1.0) * h.ln() - b * h
    }

    /// Draws one sample (may underflow to 0 for very small concentrations).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        // Parameters were validated on construction; an invalid struct literal yields NaN.
        match Gamma::new(self.concentration, 1.0 / self.rate) {
            Ok(g) => g.sample(rng),
            Err(_) => f64::NAN,
        }
    }

    /// Log prior term for `theta = ln h` and its derivative with respect to `theta`.
    fn term(&self, h: f64, space: PriorSpace) -> (f64, f64) {
        let (a, b) = (self.concentration, self.rate);
        match space {
            PriorSpace::Hyperparameter => (self.log_pdf(h), (a - 1.0) - b * h),
            PriorSpace::LogHyperparameter => (self.log_pdf(h) + h.ln(), a - b * h),
        }
    }
}

/// In which variable the hyper-prior density is taken (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorSpace {
    /// `log p(h)`: density of the hyperparameter itself (GPyTorch/BoTorch MAP convention).
    #[default]
    Hyperparameter,
    /// `log p(h) + log h`: density of `log h`, including the change-of-variables Jacobian.
    LogHyperparameter,
}

/// Independent Gamma priors on the hyperparameters; `None` means no prior (flat) on that one.
/// With ARD every lengthscale gets the same lengthscale prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HyperPrior {
    /// Prior on every lengthscale.
    pub lengthscale: Option<GammaPrior>,
    /// Prior on the outputscale.
    pub outputscale: Option<GammaPrior>,
    /// Prior on the noise variance.
    pub noise: Option<GammaPrior>,
    /// The variable in which densities are taken.
    pub space: PriorSpace,
}

impl HyperPrior {
    /// The paper's hyper-prior (App. F; BoTorch defaults except the noise): noise Γ(1e-4, 1),
    /// outputscale Γ(2, 0.15), lengthscale Γ(3, 6), as (concentration, rate).
    ///
    /// With [`PriorSpace::Hyperparameter`] the noise term `(1e-4 - 1) ln(noise)` grows without
    /// bound as the noise goes to 0, so MAP fits with this prior end at the noise floor unless
    /// the data say otherwise strongly.
    pub fn paper() -> Self {
        Self {
            lengthscale: Some(GammaPrior {
                concentration: 3.0,
                rate: 6.0,
            }),
            outputscale: Some(GammaPrior {
                concentration: 2.0,
                rate: 0.15,
            }),
            noise: Some(GammaPrior {
                concentration: 1e-4,
                rate: 1.0,
            }),
            space: PriorSpace::Hyperparameter,
        }
    }

    /// The reference code's defaults (`priors/fast_gp_mix.py`): noise Γ(1.1, 0.05), outputscale
    /// Γ(0.5, 0.15), lengthscale Γ(3, 6).
    pub fn reference_code() -> Self {
        Self {
            lengthscale: Some(GammaPrior {
                concentration: 3.0,
                rate: 6.0,
            }),
            outputscale: Some(GammaPrior {
                concentration: 0.5,
                rate: 0.15,
            }),
            noise: Some(GammaPrior {
                concentration: 1.1,
                rate: 0.05,
            }),
            space: PriorSpace::Hyperparameter,
        }
    }

    /// Validates every Gamma prior that is present.
    pub fn validate(&self) -> Result<(), GpError> {
        for g in [self.lengthscale, self.outputscale, self.noise]
            .into_iter()
            .flatten()
        {
            g.validate()?;
        }
        Ok(())
    }

    /// The log prior density of `hyper` (in the chosen [`PriorSpace`]).
    pub fn log_density(&self, hyper: &GpHyper) -> Result<f64, GpError> {
        let mut grad = vec![0.0; hyper.num_log_params()];
        self.log_density_and_grad(hyper, &mut grad)
    }

    /// Returns the log prior density of `hyper` and adds its gradient with respect to the
    /// log-parameter vector (see [`crate::log_params`]) to `grad`.
    pub fn log_density_and_grad(&self, hyper: &GpHyper, grad: &mut [f64]) -> Result<f64, GpError> {
        self.validate()?;
        hyper.validate()?;
        if grad.len() != hyper.num_log_params() {
            return Err(GpError::Shape(format!(
                "gradient buffer has {} entries, expected {}",
                grad.len(),
                hyper.num_log_params()
            )));
        }
        if self.noise.is_some() && hyper.noise <= 0.0 {
            return Err(GpError::InvalidHyper(
                "noise must be > 0 when a noise prior is used".into(),
            ));
        }
        let mut total = 0.0;
        if let Some(g) = self.lengthscale {
            for (i, &l) in hyper.lengthscales.iter().enumerate() {
                let (v, dv) = g.term(l, self.space);
                total += v;
                grad[i] += dv;
            }
        }
        if let Some(g) = self.outputscale {
            let (v, dv) = g.term(hyper.outputscale, self.space);
            total += v;
            grad[hyper.outputscale_index()] += dv;
        }
        if let Some(g) = self.noise {
            let (v, dv) = g.term(hyper.noise, self.space);
            total += v;
            grad[hyper.noise_index()] += dv;
        }
        Ok(total)
    }
}
