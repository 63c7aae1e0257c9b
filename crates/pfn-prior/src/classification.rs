//! Binary-classification wrappers around any regression prior.
//!
//! The wrapped prior is sampled as usual; its model-visible `y` is then turned into 0/1 labels, written
//! to both `y` and `target_y` (the label is a function of the observation the model would have seen).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// How regression outputs become labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinarizeRule {
    /// `1[y > median(y)]` per dataset (paper §6 tabular priors). The median is the lower middle value
    /// (as `torch.median`), so with distinct values exactly `floor(n / 2)` labels are 1.
    Median,
    /// `Bernoulli(sigmoid(y))`, one uniform draw per point after the wrapped prior's draws (the paper
    /// code's binarized regression, spec §4.6).
    Bernoulli,
}

/// A regression prior whose outputs are binarised by `rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binarized<P> {
    inner: P,
    rule: BinarizeRule,
}

impl<P: Prior> Binarized<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, rule: BinarizeRule) -> Self {
        Self { inner, rule }
    }

    /// The wrapped regression prior.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The binarisation rule.
    pub fn rule(&self) -> BinarizeRule {
        self.rule
    }
}

/// The lower median of `values` (the `(n − 1) / 2`-th smallest), `None` when empty.
pub fn lower_median(values: &[f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let k = (v.len() - 1) / 2;
    let (_, m, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    Some(*m)
}

/// The logistic function.
#[inline]
fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

impl<P: Prior> Prior for Binarized<P> {
    fn name(&self) -> String {
        let rule = match self.rule {
            BinarizeRule::Median => "median",
            BinarizeRule::Bernoulli => "bernoulli",
        };
        format!("{}-{rule}-binarized", self.inner.name())
    }

    fn default_num_features(&self) -> usize {
        self.inner.default_num_features()
    }

    fn feature_range(&self) -> (usize, usize) {
        self.inner.feature_range()
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let info = self.inner.sample_dataset(rng, position, data.reborrow())?;
        let (_, y, target_y) = data.parts();
        let threshold = match self.rule {
            BinarizeRule::Median => {
                let m = lower_median(y)
                    .ok_or_else(|| PriorError::invalid("seq_len", "must be at least 1"))?;
                for (yi, ti) in y.iter_mut().zip(target_y.iter_mut()) {
                    let label = if *yi > m { 1.0 } else { 0.0 };
                    *yi = label;
                    *ti = label;
                }
                Some(m as f64)
            }
            BinarizeRule::Bernoulli => {
                for (yi, ti) in y.iter_mut().zip(target_y.iter_mut()) {
                    let p = sigmoid(*yi as f64);
                    let label = if rng.random::<f64>() < p { 1.0 } else { 0.0 };
                    *yi = label;
                    *ti = label;
                }
                None
            }
        };
        Ok(DatasetInfo {
            features_used: info.features_used,
            hyperparameters: Hyperparameters::Classification {
                rule: self.rule,
                threshold,
                inner: Box::new(info.hyperparameters),
            },
        })
    }
}
