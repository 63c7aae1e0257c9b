//! The one thing the server needs from a PFN: posterior predictives at query points given a
//! context. [`PosteriorModel`] is that seam; [`crate::predictor_model::PredictorModel`]
//! implements it with `pfn_infer::Predictor`, and tests implement it with stand-ins whose answers
//! are known. The answers are `pfn-infer`'s own predictive type, [`RegressionPredictive`] (a
//! bar distribution in the model's units with the exact-tails quantile convention, and the map back
//! to the caller's units), the same type `pfn predict` reports from.

use pfn_distribution::DistributionError;
pub use pfn_infer::RegressionPredictive;

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

/// A model that maps a context `(x, y)` and query inputs to posterior predictives.
///
/// Inputs are row-major with [`PosteriorModel::num_features`] values per point, in the caller's
/// units; the implementation applies whatever normalisation the model was trained with.
pub trait PosteriorModel: Send + Sync {
    /// Features per point.
    fn num_features(&self) -> usize;

    /// Posterior predictives, in the caller's units, at the rows of `query_x` (one per row) given
    /// the context rows `context_x` with targets `context_y`.
    fn predict(
        &self,
        context_x: &[f64],
        context_y: &[f64],
        query_x: &[f64],
    ) -> Result<Vec<RegressionPredictive>, PosteriorError>;
}
