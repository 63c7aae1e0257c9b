//! Posterior predictives over GP hyperparameters: an equal-weight mixture of exact GP predictives,
//! one per hyperparameter sample (one component for a point estimate such as type-II ML).
//!
//! Each component `s` predicts an observation at test point `i` as
//! `N(mean_si, var_si)` with `var_si` = latent variance + noise. The mixture has mean
//! `mean_i = 1/S sum_s mean_si`, variance `1/S sum_s (var_si + mean_si^2) - mean_i^2`, and log
//! density `log 1/S sum_s N(y_i; mean_si, var_si)`, computed as a log-mean-exp (the paper's NUTS
//! predictive density, spec 4.2).

use pfn_gp::{ExactGp, GpHyper, Prediction};

use crate::error::{check_finite, check_matrix, BaselineError};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// An equal-weight mixture of Gaussian predictives at `num_test` points.
#[derive(Debug, Clone, PartialEq)]
pub struct GpMixturePredictive {
    /// Number of mixture components (posterior samples).
    pub num_components: usize,
    /// Number of test points.
    pub num_test: usize,
    /// Mixture mean per test point.
    pub mean: Vec<f64>,
    /// Mixture variance of an observation per test point.
    pub var_y: Vec<f64>,
    /// Component means, row-major `num_components x num_test`.
    pub component_mean: Vec<f64>,
    /// Component observation variances, row-major `num_components x num_test`.
    pub component_var_y: Vec<f64>,
}

impl GpMixturePredictive {
    /// Conditions one exact GP per hyperparameter sample on (`x`, `y`) (row-major `n x d`, `n`
    /// may be 0) and predicts at `x_test` (row-major `m x d`).
    pub fn from_hypers(
        x: &[f64],
        y: &[f64],
        d: usize,
        hypers: &[GpHyper],
        x_test: &[f64],
    ) -> Result<Self, BaselineError> {
        if hypers.is_empty() {
            return Err(BaselineError::empty(
                "hypers",
                "a mixture predictive needs at least one hyperparameter sample",
            ));
        }
        let m = check_matrix("x_test", x_test, d)?;
        let mut component_mean = Vec::with_capacity(hypers.len() * m);
        let mut component_var_y = Vec::with_capacity(hypers.len() * m);
        for hyper in hypers {
            let p = ExactGp::fit(x, y, d, hyper)?.predict(x_test)?;
            component_mean.extend_from_slice(&p.mean);
            component_var_y.extend_from_slice(&p.var_y);
        }
        Self::from_components(hypers.len(), m, component_mean, component_var_y)
    }

    /// A single-component "mixture" from one exact GP prediction (e.g. of type-II ML).
    pub fn from_prediction(prediction: &Prediction) -> Result<Self, BaselineError> {
        Self::from_components(
            1,
            prediction.mean.len(),
            prediction.mean.clone(),
            prediction.var_y.clone(),
        )
    }

    /// Builds the mixture from component means and variances (row-major `components x m`).
    pub fn from_components(
        components: usize,
        m: usize,
        component_mean: Vec<f64>,
        component_var_y: Vec<f64>,
    ) -> Result<Self, BaselineError> {
        if components == 0 {
            return Err(BaselineError::empty("components", "need at least one"));
        }
        for (what, v) in [
            ("component_mean", &component_mean),
            ("component_var_y", &component_var_y),
        ] {
            if v.len() != components * m {
                return Err(BaselineError::shape(
                    what,
                    format!("{components} x {m} = {} values", components * m),
                    format!("{} values", v.len()),
                ));
            }
            check_finite(what, v)?;
        }
        if let Some(i) = component_var_y.iter().position(|v| v.is_nan() || *v <= 0.0) {
            return Err(BaselineError::option(
                "component_var_y",
                format!("entry {i} = {} must be > 0", component_var_y[i]),
            ));
        }
        let s = components as f64;
        let mut mean = vec![0.0; m];
        let mut second = vec![0.0; m];
        for (mu_row, var_row) in component_mean
            .chunks_exact(m.max(1))
            .zip(component_var_y.chunks_exact(m.max(1)))
        {
            for i in 0..m {
                mean[i] += mu_row[i] / s;
                second[i] += (var_row[i] + mu_row[i] * mu_row[i]) / s;
            }
        }
        let var_y = second
            .iter()
            .zip(&mean)
            .map(|(q, mu)| (q - mu * mu).max(0.0))
            .collect();
        Ok(Self {
            num_components: components,
            num_test: m,
            mean,
            var_y,
            component_mean,
            component_var_y,
        })
    }

    /// Log predictive density of every test target: `log 1/S sum_s N(y_i; mean_si, var_si)`.
    pub fn log_density(&self, y_test: &[f64]) -> Result<Vec<f64>, BaselineError> {
        let m = self.num_test;
        if y_test.len() != m {
            return Err(BaselineError::shape(
                "y_test",
                format!("{m} values (one per test point)"),
                format!("{} values", y_test.len()),
            ));
        }
        check_finite("y_test", y_test)?;
        let ln_s = (self.num_components as f64).ln();
        let mut out = Vec::with_capacity(m);
        let mut terms = vec![0.0; self.num_components];
        for (i, y) in y_test.iter().enumerate() {
            for (s, t) in terms.iter_mut().enumerate() {
                let mu = self.component_mean[s * m + i];
                let var = self.component_var_y[s * m + i];
                let r = y - mu;
                *t = -HALF_LN_2PI - 0.5 * var.ln() - 0.5 * r * r / var;
            }
            let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
            out.push(max + sum.ln() - ln_s);
        }
        Ok(out)
    }

    /// Mean negative log predictive density of the test targets (the paper's NLL).
    pub fn nll(&self, y_test: &[f64]) -> Result<f64, BaselineError> {
        let ld = self.log_density(y_test)?;
        if ld.is_empty() {
            return Err(BaselineError::empty(
                "y_test",
                "the NLL needs a test target",
            ));
        }
        Ok(-ld.iter().sum::<f64>() / ld.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixture_moments_and_log_density_match_hand_computation() {
        // Two components at one test point: N(0, 1) and N(2, 4).
        let p = GpMixturePredictive::from_components(2, 1, vec![0.0, 2.0], vec![1.0, 4.0]).unwrap();
        assert!((p.mean[0] - 1.0).abs() < 1e-15);
        // E[y^2] = (1 + 0 + 4 + 4) / 2 = 4.5, var = 4.5 - 1 = 3.5.
        assert!((p.var_y[0] - 3.5).abs() < 1e-15);
        let y = 0.7f64;
        let n = |mu: f64, var: f64| {
            (-(y - mu) * (y - mu) / (2.0 * var)).exp() / (2.0 * std::f64::consts::PI * var).sqrt()
        };
        let expected = (0.5 * (n(0.0, 1.0) + n(2.0, 4.0))).ln();
        let got = p.log_density(&[y]).unwrap()[0];
        assert!((got - expected).abs() < 1e-13, "{got} vs {expected}");
        assert!(p.log_density(&[0.0, 1.0]).is_err());
        assert!(p.log_density(&[f64::NAN]).is_err());
    }
}
