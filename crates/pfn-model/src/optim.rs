//! AdamW with decoupled weight decay, and global-norm gradient clipping, over the flat buffers.

use pfn_engine::elementwise::scale;
use pfn_engine::reduce::sum_squares;
use pfn_engine::{adamw_update, AdamWStep, Engine};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::model::PfnModel;

/// Hyperparameters of AdamW (defaults as `torch.optim.AdamW`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Learning rate (can be changed per step with [`AdamW::set_lr`]).
    pub lr: f32,
    /// First-moment decay (default 0.9).
    pub beta1: f32,
    /// Second-moment decay (default 0.999).
    pub beta2: f32,
    /// Denominator epsilon (default 1e-8).
    pub eps: f32,
    /// Decoupled weight decay (default 0.01), applied to every parameter.
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamWConfig {
    /// Checks the ranges: lr >= 0, betas in [0, 1), eps > 0, weight decay >= 0, all finite.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, v: f32, what: &str| ModelError::InvalidConfig {
            field,
            reason: format!("must be {what}, got {v}"),
        };
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(bad("lr", self.lr, "finite and >= 0"));
        }
        if !(0.0..1.0).contains(&self.beta1) {
            return Err(bad("beta1", self.beta1, "in [0, 1)"));
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return Err(bad("beta2", self.beta2, "in [0, 1)"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(bad("eps", self.eps, "finite and > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad("weight_decay", self.weight_decay, "finite and >= 0"));
        }
        Ok(())
    }
}

/// AdamW state: the moment buffers and the step count.
#[derive(Clone, Debug)]
pub struct AdamW {
    config: AdamWConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u64,
}

impl AdamW {
    /// A fresh optimiser for `num_params` parameters.
    pub fn new(config: AdamWConfig, num_params: usize) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
            steps: 0,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Sets the learning rate for the following steps (for schedules).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        AdamWConfig { lr, ..self.config }.validate()?;
        self.config.lr = lr;
        Ok(())
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The first and second moment buffers (for checkpoints).
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    /// Restores moments and step count from a checkpoint.
    pub fn restore(&mut self, m: &[f32], v: &[f32], steps: u64) -> Result<()> {
        for (argument, buf) in [("m", m), ("v", v)] {
            if buf.len() != self.m.len() {
                return Err(ModelError::LengthMismatch {
                    argument,
                    expected: self.m.len(),
                    actual: buf.len(),
                });
            }
        }
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        self.steps = steps;
        Ok(())
    }

    /// One AdamW step on flat `params` given `grads` (same length as at construction).
    pub fn step(&mut self, engine: &Engine, params: &mut [f32], grads: &[f32]) -> Result<()> {
        for (argument, len) in [("params", params.len()), ("grads", grads.len())] {
            if len != self.m.len() {
                return Err(ModelError::LengthMismatch {
                    argument,
                    expected: self.m.len(),
                    actual: len,
                });
            }
        }
        self.steps += 1;
        let s = AdamWStep {
            lr: self.config.lr,
            beta1: self.config.beta1,
            beta2: self.config.beta2,
            eps: self.config.eps,
            weight_decay: self.config.weight_decay,
            step: self.steps,
        };
        let (m, v) = (&mut self.m, &mut self.v);
        engine.install(|| adamw_update(params, grads, m, v, &s));
        Ok(())
    }

    /// One AdamW step on a model's parameters with its current gradients.
    pub fn step_model(&mut self, engine: &Engine, model: &mut PfnModel) -> Result<()> {
        let (p, g) = model.params_and_grads_mut();
        self.step(engine, p, g)
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1) and returns the
/// norm before clipping. A non-finite norm leaves the gradients unchanged (the caller should skip the
/// step).
pub fn clip_grad_norm(engine: &Engine, grads: &mut [f32], max_norm: f32) -> f32 {
    engine.install(|| {
        let norm = sum_squares(grads).sqrt();
        let coef = max_norm as f64 / (norm + 1e-6);
        if norm.is_finite() && coef < 1.0 {
            scale(grads, coef as f32);
        }
        norm as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_bounds_the_norm_and_reports_it() {
        let engine = Engine::new(1).unwrap();
        let mut g = vec![3.0f32, 4.0];
        let n = clip_grad_norm(&engine, &mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        let after = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((after - 1.0).abs() < 1e-5);
        let mut small = vec![0.3f32, 0.4];
        clip_grad_norm(&engine, &mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn invalid_hyperparameters_and_lengths_are_errors() {
        let bad = AdamWConfig {
            beta1: 1.0,
            ..AdamWConfig::default()
        };
        assert!(matches!(
            AdamW::new(bad, 3),
            Err(ModelError::InvalidConfig { field: "beta1", .. })
        ));
        let engine = Engine::new(1).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default(), 3).unwrap();
        let mut p = vec![0.0f32; 2];
        assert!(matches!(
            opt.step(&engine, &mut p, &[0.0; 2]),
            Err(ModelError::LengthMismatch {
                argument: "params",
                expected: 3,
                actual: 2
            })
        ));
    }

    #[test]
    fn one_step_moves_against_the_gradient_by_lr() {
        let engine = Engine::new(1).unwrap();
        let cfg = AdamWConfig {
            lr: 0.1,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        };
        let mut opt = AdamW::new(cfg, 2).unwrap();
        let mut p = vec![1.0f32, 1.0];
        opt.step(&engine, &mut p, &[2.0, -0.5]).unwrap();
        // first Adam step: m_hat / sqrt(v_hat) = sign(g)
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6,
            "{p:?}"
        );
        assert_eq!(opt.steps(), 1);
    }
}
