//! Bayes-by-backprop SVI for the BNN (the paper's SVI baseline: Pyro `AutoDiagonalNormal`,
//! `Trace_ELBO`, Adam with learning rate 1e-3).
//!
//! * **Guide**: mean-field Gaussian `q(theta) = prod_j N(theta_j; mu_j, sigma_j^2)` with
//!   `sigma_j = exp(omega_j)` (Pyro's positive constraint as an exp transform), initialised at the
//!   prior median `mu = 0` and `sigma = init_scale` (Pyro's default 0.1).
//! * **ELBO estimate** per step: with `particles` draws `theta = mu + sigma * eps`,
//!   `eps ~ N(0, I)`, the average of `log p(D, theta) - log q(theta)` (`Trace_ELBO`, which uses the
//!   sampled `log q`, not an analytic entropy).
//! * **Gradient** (reparameterisation): with `g = grad_theta log p(D, theta)`, the total derivative
//!   gives `d/dmu = g` and `d/domega = g * sigma * eps + 1` per particle (the `log q` term
//!   contributes only `+1` through `-log sigma`, its `eps` dependence cancels).
//! * **Optimiser**: Adam (PyTorch defaults `beta = (0.9, 0.999)`, `eps = 1e-8`) minimising the
//!   negative ELBO, for `steps` steps.
//! * **Predictive**: `predictive_samples` weight draws from the final guide (the paper uses as many
//!   as steps), evaluated at the test inputs ([`BnnPredictive`]).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::bnn::model::{BnnArchitecture, BnnData, BnnPosterior};
use crate::bnn::predictive::BnnPredictive;
use crate::error::{check_matrix, BaselineError};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Options of [`fit_svi`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SviOptions {
    /// Optimisation steps (default 1024).
    pub steps: usize,
    /// Adam learning rate (default 1e-3, the paper's).
    pub learning_rate: f64,
    /// Adam first-moment decay (default 0.9).
    pub beta1: f64,
    /// Adam second-moment decay (default 0.999).
    pub beta2: f64,
    /// Adam denominator epsilon (default 1e-8).
    pub adam_eps: f64,
    /// Monte-Carlo draws per ELBO estimate (default 1, Pyro's `num_particles`).
    pub particles: usize,
    /// Initial standard deviation of every guide factor (default 0.1).
    pub init_scale: f64,
    /// Weight draws from the fitted guide for the predictive (default 1024).
    pub predictive_samples: usize,
    /// Seed of the ELBO noise and of the predictive draws (default 0).
    pub seed: u64,
}

impl Default for SviOptions {
    fn default() -> Self {
        Self {
            steps: 1024,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            particles: 1,
            init_scale: 0.1,
            predictive_samples: 1024,
            seed: 0,
        }
    }
}

impl SviOptions {
    /// The paper's budget `s`: `s` steps and `s` predictive samples.
    pub fn budget(s: usize, seed: u64) -> Self {
        Self {
            steps: s,
            predictive_samples: s,
            seed,
            ..Self::default()
        }
    }

    /// Checks every option.
    pub fn validate(&self) -> Result<(), BaselineError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(BaselineError::option(
                    name,
                    format!("{v} must be finite and > 0"),
                ))
            }
        };
        positive("learning_rate", self.learning_rate)?;
        positive("adam_eps", self.adam_eps)?;
        positive("init_scale", self.init_scale)?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(BaselineError::option(
                    name,
                    format!("{b} must lie in [0, 1)"),
                ));
            }
        }
        if self.particles == 0 {
            return Err(BaselineError::option("particles", "must be at least 1"));
        }
        if self.predictive_samples == 0 {
            return Err(BaselineError::option(
                "predictive_samples",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The fitted guide, the optimisation trace and the predictive.
#[derive(Debug, Clone)]
pub struct SviResult {
    /// Guide means `mu`.
    pub loc: Vec<f64>,
    /// Guide standard deviations `sigma`.
    pub scale: Vec<f64>,
    /// ELBO estimate of every step, taken before that step's update.
    pub elbo: Vec<f64>,
    /// The predictive weight draws, row-major `predictive_samples x num_params`.
    pub samples: Vec<f64>,
    /// Class-1 probabilities of the draws at the test inputs.
    pub predictive: BnnPredictive,
    /// Wall time of optimisation plus prediction.
    pub wall_time: Duration,
}

/// Fits the mean-field guide of `arch`'s weights to `data` and predicts at `x_test` (row-major
/// `m x F`). Score with [`BnnPredictive::bce`].
pub fn fit_svi(
    arch: &BnnArchitecture,
    data: &BnnData,
    x_test: &[f64],
    opts: &SviOptions,
) -> Result<SviResult, BaselineError> {
    let start = Instant::now();
    opts.validate()?;
    check_matrix("x_test", x_test, arch.features)?;
    let mut posterior = BnnPosterior::new(*arch, data.clone())?;
    let p = arch.num_params();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);

    let mut loc = vec![0.0; p];
    let mut log_scale = vec![opts.init_scale.ln(); p];
    let mut adam_loc = Adam::new(p);
    let mut adam_log_scale = Adam::new(p);
    let mut theta = vec![0.0; p];
    let mut eps = vec![0.0; p];
    let mut g = vec![0.0; p];
    let mut grad_loc = vec![0.0; p];
    let mut grad_log_scale = vec![0.0; p];
    let mut elbo = Vec::with_capacity(opts.steps);
    let k = opts.particles as f64;
    for _ in 0..opts.steps {
        grad_loc.fill(0.0);
        grad_log_scale.fill(0.0);
        let mut estimate = 0.0;
        for _ in 0..opts.particles {
            let mut log_q = -HALF_LN_2PI * p as f64;
            for j in 0..p {
                eps[j] = rng.sample(StandardNormal);
                theta[j] = loc[j] + log_scale[j].exp() * eps[j];
                log_q -= log_scale[j] + 0.5 * eps[j] * eps[j];
            }
            let log_joint = posterior.log_joint_and_grad(&theta, &mut g)?;
            estimate += (log_joint - log_q) / k;
            for j in 0..p {
                grad_loc[j] += g[j] / k;
                grad_log_scale[j] += (g[j] * log_scale[j].exp() * eps[j] + 1.0) / k;
            }
        }
        elbo.push(estimate);
        // Ascend the ELBO = descend its negative.
        adam_loc.step(&mut loc, &grad_loc, opts);
        adam_log_scale.step(&mut log_scale, &grad_log_scale, opts);
    }

    let scale: Vec<f64> = log_scale.iter().map(|s| s.exp()).collect();
    let mut samples = Vec::with_capacity(opts.predictive_samples * p);
    for _ in 0..opts.predictive_samples {
        for j in 0..p {
            let e: f64 = rng.sample(StandardNormal);
            samples.push(loc[j] + scale[j] * e);
        }
    }
    let predictive = BnnPredictive::from_samples(arch, &samples, x_test)?;
    Ok(SviResult {
        loc,
        scale,
        elbo,
        samples,
        predictive,
        wall_time: start.elapsed(),
    })
}

/// Adam state for one parameter block.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: f64,
}

impl Adam {
    fn new(p: usize) -> Self {
        Self {
            m: vec![0.0; p],
            v: vec![0.0; p],
            t: 0.0,
        }
    }

    /// One ascent step along `grad` (the gradient of the objective to maximise).
    fn step(&mut self, params: &mut [f64], grad: &[f64], opts: &SviOptions) {
        self.t += 1.0;
        let (b1, b2) = (opts.beta1, opts.beta2);
        let c1 = 1.0 - b1.powf(self.t);
        let c2 = 1.0 - b2.powf(self.t);
        for ((p, g), (m, v)) in params
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            // PyTorch minimises the loss -ELBO, whose gradient is -g.
            let loss_grad = -g;
            *m = b1 * *m + (1.0 - b1) * loss_grad;
            *v = b2 * *v + (1.0 - b2) * loss_grad * loss_grad;
            *p -= opts.learning_rate * (*m / c1) / ((*v / c2).sqrt() + opts.adam_eps);
        }
    }
}
