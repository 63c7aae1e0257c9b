//! Variable number of features: sample with fewer features than the batch holds, zero-pad, rescale.
//!
//! For a request of `F_max` features, the wrapper draws `F_used` uniformly in
//! `min_features..=F_max` (per dataset, or once per batch), lets the wrapped prior sample a dataset with
//! `F_used` features, moves it into the first `F_used` columns, zeroes the remaining `F_max − F_used`
//! columns and multiplies the used columns by a factor that keeps the summed input energy comparable
//! across feature counts:
//!
//! * [`FeatureScaling::Sqrt`] (default): `sqrt(F_max / F_used)`, as the maintained `automl/PFNs` library's
//!   `VariableNumFeaturesEncoderStep` (keeps the squared norm of a row comparable);
//! * [`FeatureScaling::Linear`]: `F_max / F_used`, as the paper and its code (`normalize_by_used_features`);
//! * [`FeatureScaling::None`].

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::{domain, stream_rng, PriorRng};

/// The factor applied to the used features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureScaling {
    /// `sqrt(F_max / F_used)` (maintained library; the default).
    #[default]
    Sqrt,
    /// `F_max / F_used` (paper).
    Linear,
    /// No rescaling.
    None,
}

impl FeatureScaling {
    /// The factor for `used` of `max` features.
    pub fn factor(self, used: usize, max: usize) -> f64 {
        let r = max as f64 / used as f64;
        match self {
            Self::Sqrt => r.sqrt(),
            Self::Linear => r,
            Self::None => 1.0,
        }
    }
}

/// Turns the `seq_len x used` row-major inputs at the start of `x` into `seq_len x max` rows in
/// place: the used columns first, multiplied by `scale`, then `max − used` zero columns.
///
/// `x` must hold `seq_len * max` values and `used <= max`.
pub(crate) fn pad_used_columns(x: &mut [f32], seq_len: usize, used: usize, max: usize, scale: f64) {
    // Spread rows `s x used` to `s x max` in place, last row first so no unread row is overwritten.
    for t in (0..seq_len).rev() {
        x.copy_within(t * used..(t + 1) * used, t * max);
        let row = &mut x[t * max..(t + 1) * max];
        for v in &mut row[..used] {
            *v = (*v as f64 * scale) as f32;
        }
        row[used..].fill(0.0);
    }
}

/// How often the number of used features is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureDraw {
    /// Independently for every dataset, from the dataset's own stream (the default).
    #[default]
    PerDataset,
    /// Once per batch, from `stream_rng(domain::FEATURES, seed, &[batch_index])`, so all datasets of a
    /// batch share it.
    PerBatch,
}

/// Wraps a prior to sample a variable number of used features; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableFeatures<P> {
    inner: P,
    min_features: usize,
    draw: FeatureDraw,
    scaling: FeatureScaling,
}

impl<P: Prior> VariableFeatures<P> {
    /// Draws `F_used` in `min_features..=F_max` (`min_features ≥ 1`).
    pub fn new(
        inner: P,
        min_features: usize,
        draw: FeatureDraw,
        scaling: FeatureScaling,
    ) -> Result<Self, PriorError> {
        if min_features == 0 {
            return Err(PriorError::invalid("min_features", "must be at least 1"));
        }
        let (lo, hi) = inner.feature_range();
        if min_features < lo || min_features > hi {
            return Err(PriorError::FeatureCount {
                prior: inner.name(),
                min: lo,
                max: hi,
                requested: min_features,
            });
        }
        Ok(Self {
            inner,
            min_features,
            draw,
            scaling,
        })
    }

    /// Per-dataset draws in `1..=F_max` with the default (square-root) scaling.
    pub fn with_defaults(inner: P) -> Result<Self, PriorError> {
        Self::new(inner, 1, FeatureDraw::PerDataset, FeatureScaling::Sqrt)
    }

    /// The wrapped prior.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The number of used features for a dataset at `position` of a request with `max` features.
    fn draw_used(&self, rng: &mut PriorRng, position: &DatasetPosition, max: usize) -> usize {
        match self.draw {
            FeatureDraw::PerDataset => rng.random_range(self.min_features..=max),
            FeatureDraw::PerBatch => {
                let mut batch_rng =
                    stream_rng(domain::FEATURES, position.seed, &[position.batch_index]);
                batch_rng.random_range(self.min_features..=max)
            }
        }
    }
}

impl<P: Prior> Prior for VariableFeatures<P> {
    fn name(&self) -> String {
        format!("{}-variable-features", self.inner.name())
    }

    fn default_num_features(&self) -> usize {
        self.inner.default_num_features().max(self.min_features)
    }

    fn feature_range(&self) -> (usize, usize) {
        (self.min_features, self.inner.feature_range().1)
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let (s, max) = (data.seq_len(), data.num_features());
        if max < self.min_features {
            return Err(PriorError::FeatureCount {
                prior: self.name(),
                min: self.min_features,
                max: self.inner.feature_range().1,
                requested: max,
            });
        }
        let used = self.draw_used(rng, position, max);
        let info = self
            .inner
            .sample_dataset(rng, position, data.with_fewer_features(used)?)?;
        let scale = self.scaling.factor(used, max);
        let (x, _, _) = data.parts();
        pad_used_columns(x, s, used, max, scale);
        Ok(DatasetInfo {
            features_used: used,
            hyperparameters: Hyperparameters::FeaturePadding {
                features_used: used,
                scale,
                inner: Box::new(info.hyperparameters),
            },
        })
    }
}
