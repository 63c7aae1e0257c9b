//! The one thing the server needs from a PFN: posterior predictives at query points given a
//! context. [`PosteriorModel`] is that seam; [`crate::predictor_model::PredictorModel`]
//! implements it with `pfn_infer::Predictor`, and tests implement it with stand-ins whose answers
//! are known.

use std::sync::Arc;

use pfn_distribution::{BarDistribution, BarPrediction, DistributionError};

/// Why a model could not answer a query.
#[derive(Debug, thiserror::Error)]
pub enum PosteriorError {
    /// The inputs do not fit the model (shape, finiteness, normalisation).
    #[error("invalid input for the model: {0}")]
    InvalidInput(String),
    /// The network failed (should not happen for validated inputs).
    #[error("the model failed: {0}")]
    Model(String),
    /// The predicted distribution could not be built (e.g. degenerate borders after rescaling).
    #[error("cannot build the predictive distribution: {0}")]
    Distribution(#[from] DistributionError),
}

/// Posterior predictive distributions at `len()` query points, all on one bar distribution
/// whose borders are in the caller's y units (any y normalisation already undone).
#[derive(Debug, Clone)]
pub struct QueryPredictives {
    distribution: Arc<BarDistribution>,
    logits: Vec<f32>,
}

impl QueryPredictives {
    /// Wraps a distribution and one row of `distribution.num_buckets()` logits per query.
    pub fn new(distribution: BarDistribution, logits: Vec<f32>) -> Result<Self, PosteriorError> {
        let k = distribution.num_buckets();
        if k == 0 || !logits.len().is_multiple_of(k) {
            return Err(PosteriorError::Model(format!(
                "{} logits are not a whole number of rows of {k} buckets",
                logits.len()
            )));
        }
        Ok(Self {
            distribution: Arc::new(distribution),
            logits,
        })
    }

    /// Number of query points.
    pub fn len(&self) -> usize {
        self.logits.len() / self.distribution.num_buckets()
    }

    /// Whether there are no query points.
    pub fn is_empty(&self) -> bool {
        self.logits.is_empty()
    }

    /// The shared bar distribution (borders in the caller's units).
    pub fn distribution(&self) -> &BarDistribution {
        &self.distribution
    }

    /// The raw logits, `len() x num_buckets` row-major.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The predictive distribution at query `i` (`i < len()`).
    pub fn prediction(&self, i: usize) -> Result<BarPrediction, PosteriorError> {
        let k = self.distribution.num_buckets();
        let row = self.logits.get(i * k..(i + 1) * k).ok_or_else(|| {
            PosteriorError::InvalidInput(format!("query index {i} out of range 0..{}", self.len()))
        })?;
        Ok(BarDistribution::predict_shared(&self.distribution, row)?)
    }
}

/// A model that maps a context `(x, y)` and query inputs to posterior predictives.
///
/// Inputs are row-major with [`PosteriorModel::num_features`] values per point, in the caller's
/// units; the implementation applies whatever normalisation the model was trained with.
pub trait PosteriorModel: Send + Sync {
    /// Features per point.
    fn num_features(&self) -> usize;

    /// Posterior predictives at the rows of `query_x` given the context rows `context_x` with
    /// targets `context_y`.
    fn predict(
        &self,
        context_x: &[f64],
        context_y: &[f64],
        query_x: &[f64],
    ) -> Result<QueryPredictives, PosteriorError>;
}
