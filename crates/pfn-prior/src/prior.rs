//! The [`Prior`] trait, the per-dataset view it fills ([`DatasetMut`]) and the [`Batch`] it returns.

use rayon::prelude::*;

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::rng::{dataset_rng, PriorRng};

/// A batch of synthetic datasets in batch-first, row-major f32 layout.
///
/// Dataset `b`, point `t`, feature `f` of `x` is `x[(b * seq_len + t) * num_features + f]`; `y` and
/// `target_y` are `batch_size x seq_len`. `y` holds what the model sees for context points, `target_y`
/// what the loss scores (they differ e.g. for noiseless regression targets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Number of datasets.
    pub batch_size: usize,
    /// Points per dataset.
    pub seq_len: usize,
    /// Feature columns per point (including zero padding).
    pub num_features: usize,
    /// Inputs, `batch_size x seq_len x num_features`.
    pub x: Vec<f32>,
    /// Values shown to the model for context points, `batch_size x seq_len`.
    pub y: Vec<f32>,
    /// Values the loss scores, `batch_size x seq_len`.
    pub target_y: Vec<f32>,
    /// Number of leading feature columns that carry data, per dataset (the rest are zero).
    pub features_used: Vec<usize>,
    /// What the prior drew for each dataset.
    pub hyperparameters: Vec<Hyperparameters>,
}

impl Batch {
    /// Inputs of dataset `b` (`seq_len x num_features`). Panics if `b >= batch_size`.
    pub fn x_of(&self, b: usize) -> &[f32] {
        let n = self.seq_len * self.num_features;
        &self.x[b * n..(b + 1) * n]
    }

    /// Model-visible values of dataset `b`. Panics if `b >= batch_size`.
    pub fn y_of(&self, b: usize) -> &[f32] {
        &self.y[b * self.seq_len..(b + 1) * self.seq_len]
    }

    /// Loss targets of dataset `b`. Panics if `b >= batch_size`.
    pub fn target_y_of(&self, b: usize) -> &[f32] {
        &self.target_y[b * self.seq_len..(b + 1) * self.seq_len]
    }
}

/// Where a dataset sits in the sampling run; wrappers that draw one value per batch (rather than per
/// dataset) derive their own stream from it with [`crate::rng::stream_rng`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DatasetPosition {
    /// The run seed.
    pub seed: u64,
    /// Index of the batch within the run.
    pub batch_index: u64,
    /// Index of the dataset within its batch.
    pub dataset_index: u64,
}

/// Mutable view of one dataset's buffers, with lengths checked on construction.
#[derive(Debug)]
pub struct DatasetMut<'a> {
    seq_len: usize,
    num_features: usize,
    x: &'a mut [f32],
    y: &'a mut [f32],
    target_y: &'a mut [f32],
}

impl<'a> DatasetMut<'a> {
    /// Wraps `x` (`seq_len x num_features`), `y` and `target_y` (`seq_len` each).
    pub fn new(
        seq_len: usize,
        num_features: usize,
        x: &'a mut [f32],
        y: &'a mut [f32],
        target_y: &'a mut [f32],
    ) -> Result<Self, PriorError> {
        let nx = seq_len
            .checked_mul(num_features)
            .ok_or_else(|| PriorError::invalid("seq_len * num_features", "overflows usize"))?;
        for (what, len, expected) in [
            ("x", x.len(), nx),
            ("y", y.len(), seq_len),
            ("target_y", target_y.len(), seq_len),
        ] {
            if len != expected {
                return Err(PriorError::Shape {
                    what: what.into(),
                    expected,
                    actual: len,
                });
            }
        }
        Ok(Self {
            seq_len,
            num_features,
            x,
            y,
            target_y,
        })
    }

    /// Points in the dataset.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Feature columns per point.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Splits the view into `(x, y, target_y)`.
    pub fn parts(&mut self) -> (&mut [f32], &mut [f32], &mut [f32]) {
        (self.x, self.y, self.target_y)
    }

    /// A shorter-lived view of the same buffers.
    pub fn reborrow(&mut self) -> DatasetMut<'_> {
        DatasetMut {
            seq_len: self.seq_len,
            num_features: self.num_features,
            x: self.x,
            y: self.y,
            target_y: self.target_y,
        }
    }

    /// The same `y`/`target_y` with only the first `num_features * seq_len` values of `x`, laid out as
    /// `seq_len x num_features` (used to sample fewer features before zero-padding).
    pub fn with_fewer_features(
        &mut self,
        num_features: usize,
    ) -> Result<DatasetMut<'_>, PriorError> {
        if num_features > self.num_features {
            return Err(PriorError::invalid(
                "num_features",
                format!(
                    "{num_features} exceeds the {} columns of the buffer",
                    self.num_features
                ),
            ));
        }
        Ok(DatasetMut {
            seq_len: self.seq_len,
            num_features,
            x: &mut self.x[..self.seq_len * num_features],
            y: self.y,
            target_y: self.target_y,
        })
    }
}

/// Checks that dataset `dataset` of a batch holds only finite values (a prior that overflows, e.g.
/// a deep random MLP, or a prior written outside Rust that returns NaN, is rejected here).
pub fn check_finite_dataset(
    dataset: usize,
    x: &[f32],
    y: &[f32],
    target_y: &[f32],
) -> Result<(), PriorError> {
    for (what, values) in [("x", x), ("y", y), ("target_y", target_y)] {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(PriorError::NonFinite { dataset, what });
        }
    }
    Ok(())
}

/// What a prior reports about one sampled dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Number of leading feature columns that carry data.
    pub features_used: usize,
    /// What was drawn.
    pub hyperparameters: Hyperparameters,
}

/// A prior over datasets. Implement [`Prior::sample_dataset`] (and the feature-count methods); batching,
/// validation and parallel, thread-count-independent sampling come for free.
///
/// See the crate documentation for a complete user-defined prior.
pub trait Prior: Send + Sync {
    /// Name used in error messages (defaults to the Rust type name).
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }

    /// Number of features to use when the caller does not choose.
    fn default_num_features(&self) -> usize;

    /// Inclusive `(min, max)` number of features the prior can sample (default `1..=usize::MAX`).
    fn feature_range(&self) -> (usize, usize) {
        (1, usize::MAX)
    }

    /// Samples one dataset into `data` using only `rng` (and, for per-batch draws, `position`).
    ///
    /// Must overwrite every value of `x`, `y` and `target_y`. `data.seq_len() >= 1` and
    /// `data.num_features()` lies in [`Prior::feature_range`] when called from [`Prior::sample_batch`].
    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        position: &DatasetPosition,
        data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError>;

    /// Checks a request: `seq_len >= 1` and `num_features` inside [`Prior::feature_range`].
    fn check_request(&self, seq_len: usize, num_features: usize) -> Result<(), PriorError> {
        if seq_len == 0 {
            return Err(PriorError::invalid("seq_len", "must be at least 1"));
        }
        let (min, max) = self.feature_range();
        if num_features < min || num_features > max {
            return Err(PriorError::FeatureCount {
                prior: self.name(),
                min,
                max,
                requested: num_features,
            });
        }
        Ok(())
    }

    /// Samples `batch` datasets of `seq_len` points with `num_features` features.
    ///
    /// Dataset `i` is drawn from [`dataset_rng`]`(seed, batch_index, i)`, in parallel with rayon, so
    /// the result depends only on the arguments, never on the thread count.
    fn sample_batch(
        &self,
        seed: u64,
        batch_index: u64,
        batch: usize,
        seq_len: usize,
        num_features: usize,
    ) -> Result<Batch, PriorError> {
        let mut out = Batch::default();
        self.sample_batch_into(seed, batch_index, batch, seq_len, num_features, &mut out)?;
        Ok(out)
    }

    /// Like [`Prior::sample_batch`], but reuses the allocations of `out` (which is overwritten; after an
    /// error its contents are unspecified).
    fn sample_batch_into(
        &self,
        seed: u64,
        batch_index: u64,
        batch: usize,
        seq_len: usize,
        num_features: usize,
        out: &mut Batch,
    ) -> Result<(), PriorError> {
        if batch == 0 {
            return Err(PriorError::invalid("batch", "must be at least 1"));
        }
        self.check_request(seq_len, num_features)?;
        let per_x = seq_len
            .checked_mul(num_features)
            .ok_or_else(|| PriorError::invalid("seq_len * num_features", "overflows usize"))?;
        let nx = per_x.checked_mul(batch).ok_or_else(|| {
            PriorError::invalid("batch * seq_len * num_features", "overflows usize")
        })?;
        let ny = seq_len * batch;
        for (what, v, n) in [
            ("x", &mut out.x, nx),
            ("y", &mut out.y, ny),
            ("target_y", &mut out.target_y, ny),
        ] {
            v.clear();
            v.try_reserve_exact(n).map_err(|e| {
                PriorError::invalid(
                    "batch",
                    format!("cannot allocate {n} values for `{what}`: {e}"),
                )
            })?;
            v.resize(n, 0.0);
        }
        let infos: Vec<DatasetInfo> = out
            .x
            .par_chunks_mut(per_x)
            .zip(out.y.par_chunks_mut(seq_len))
            .zip(out.target_y.par_chunks_mut(seq_len))
            .enumerate()
            .map(|(i, ((x, y), t))| {
                let position = DatasetPosition {
                    seed,
                    batch_index,
                    dataset_index: i as u64,
                };
                let mut rng = dataset_rng(seed, batch_index, i as u64);
                let data = DatasetMut::new(seq_len, num_features, x, y, t)?;
                let info = self.sample_dataset(&mut rng, &position, data)?;
                check_finite_dataset(i, x, y, t)?;
                Ok(info)
            })
            .collect::<Result<_, PriorError>>()?;
        out.batch_size = batch;
        out.seq_len = seq_len;
        out.num_features = num_features;
        out.features_used.clear();
        out.hyperparameters.clear();
        for info in infos {
            out.features_used.push(info.features_used);
            out.hyperparameters.push(info.hyperparameters);
        }
        Ok(())
    }
}

impl<P: Prior + ?Sized> Prior for Box<P> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn default_num_features(&self) -> usize {
        (**self).default_num_features()
    }
    fn feature_range(&self) -> (usize, usize) {
        (**self).feature_range()
    }
    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        position: &DatasetPosition,
        data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        (**self).sample_dataset(rng, position, data)
    }
    fn check_request(&self, seq_len: usize, num_features: usize) -> Result<(), PriorError> {
        (**self).check_request(seq_len, num_features)
    }
}
