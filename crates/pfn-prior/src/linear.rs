//! Bayesian linear-regression priors: the paper code's ridge prior and the 1-D linear toy prior.

use crate::error::{check_non_negative, PriorError};
use crate::hyperparameters::{Hyperparameters, LinearDraw};
use crate::inputs::{fill_uniform, std_normal};
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// `x ~ U[0,1)^F`, `w ~ N(0, weight_std² I)`, `b ~ N(0, bias_std²)`, `f = x w + b`,
/// `y = f + N(0, noise_std²)`; `target_y` is `f` (noiseless) or `y`.
///
/// Draw order per dataset: the `F` weights, the intercept (always drawn, times `bias_std`), the inputs
/// row by row, then one noise value per point.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearPrior {
    weight_std: f64,
    bias_std: f64,
    noise_std: f64,
    noiseless_target: bool,
    max_num_features: usize,
    default_num_features: usize,
}

impl LinearPrior {
    /// A linear prior with the given scales; `max_num_features` caps the request (use `usize::MAX` for
    /// no cap).
    pub fn new(
        weight_std: f64,
        bias_std: f64,
        noise_std: f64,
        noiseless_target: bool,
        default_num_features: usize,
        max_num_features: usize,
    ) -> Result<Self, PriorError> {
        check_non_negative("weight_std", weight_std)?;
        check_non_negative("bias_std", bias_std)?;
        check_non_negative("noise_std", noise_std)?;
        if default_num_features == 0 || default_num_features > max_num_features {
            return Err(PriorError::invalid(
                "default_num_features",
                format!("{default_num_features} must lie in 1..={max_num_features}"),
            ));
        }
        Ok(Self {
            weight_std,
            bias_std,
            noise_std,
            noiseless_target,
            max_num_features,
            default_num_features,
        })
    }

    /// The paper code's ridge prior (`priors/ridge.py`, spec §4.6): weights N(0, 0.1²), no intercept,
    /// noise N(0, 0.1²), noiseless targets; 5 features by default, any number allowed.
    pub fn ridge() -> Self {
        Self::new(0.1, 0.0, 0.1, true, 5, usize::MAX).expect("constant configuration is valid")
    }

    /// The maintained library's 1-D toy prior: `y = a x + b` with `a, b ~ N(0, 1)`, `x ~ U[0,1)`, plus
    /// N(0, 0.1²) observation noise; `target_y = y` (the model predicts observations). One feature only.
    pub fn linear_1d() -> Self {
        Self::new(1.0, 1.0, 0.1, false, 1, 1).expect("constant configuration is valid")
    }
}

impl Prior for LinearPrior {
    fn name(&self) -> String {
        "linear".into()
    }

    fn default_num_features(&self) -> usize {
        self.default_num_features
    }

    fn feature_range(&self) -> (usize, usize) {
        (1, self.max_num_features)
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let d = data.num_features();
        let weights: Vec<f64> = (0..d).map(|_| self.weight_std * std_normal(rng)).collect();
        let bias = self.bias_std * std_normal(rng);
        let (x, y, target_y) = data.parts();
        fill_uniform(rng, x);
        for ((row, yi), ti) in x.chunks_exact(d).zip(y.iter_mut()).zip(target_y.iter_mut()) {
            let f: f64 = bias
                + row
                    .iter()
                    .zip(&weights)
                    .map(|(&a, w)| a as f64 * w)
                    .sum::<f64>();
            let noise = std_normal(rng);
            let observed = f + self.noise_std * noise;
            *yi = observed as f32;
            *ti = if self.noiseless_target { f } else { observed } as f32;
        }
        Ok(DatasetInfo {
            features_used: d,
            hyperparameters: Hyperparameters::Linear(LinearDraw {
                weight_std: self.weight_std,
                bias_std: self.bias_std,
                noise_std: self.noise_std,
                weights,
                bias,
                noiseless_target: self.noiseless_target,
            }),
        })
    }
}
