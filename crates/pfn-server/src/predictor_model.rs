//! [`PredictorModel`]: the [`PosteriorModel`] of a model artifact, answered by
//! [`pfn_infer::Predictor`] (network, weights and the input normalisation the artifact records).
//!
//! The answers are the predictor's own [`RegressionPredictive`]s: the bar distribution in the
//! model's normalised target space `z` with the context's target map `y = μ + σ z`, so densities,
//! quantiles and moments come out in the caller's units. Quantiles use the exact inverse cdf,
//! half-normal tails included (`pfn_distribution::IcdfConvention::ExactTails`, the predictor's
//! convention), so wide intervals are not clipped at the outer borders.
//!
//! A model trained with a variable number of features (`Predictor::feature_range`, e.g. the
//! general-purpose `gp-hyper` model, 1 to 5) can be served with fewer features than its network
//! has ([`PredictorModel::with_features`]); the demo serves every model with one.

use pfn_artifact::ModelArtifact;
use pfn_infer::{PosteriorPredictive, PredictError, Predictor, RegressionPredictive};

use crate::posterior::{PosteriorError, PosteriorModel};

/// A regression model artifact behind a [`Predictor`].
#[derive(Debug)]
pub struct PredictorModel {
    predictor: Predictor,
    features: usize,
}

/// Why an artifact cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PredictorModelError {
    /// The predictor could not be built (weights, head, engine).
    #[error(transparent)]
    Predictor(#[from] PredictError),
    /// A classification head.
    #[error("the model has a classification head ({0} classes); only Riemann (regression) heads can be served")]
    ClassificationHead(usize),
    /// A feature count outside the model's range.
    #[error("the model takes {} features, not {asked}", if .range.0 == .range.1 { .range.0.to_string() } else { format!("{} to {}", .range.0, .range.1) })]
    FeatureCount {
        /// Features asked for.
        asked: usize,
        /// The model's `(min, max)`.
        range: (usize, usize),
    },
}

impl PredictorModel {
    /// Builds the predictor of `artifact`, computing on `threads` threads (0: all cores), for
    /// inputs with as many features as the network has.
    pub fn new(artifact: &ModelArtifact, threads: usize) -> Result<Self, PredictorModelError> {
        Self::with_features(
            artifact,
            threads,
            artifact.metadata.architecture.num_features,
        )
    }

    /// As [`PredictorModel::new`] for inputs with `features` features, which must lie in the
    /// model's `Predictor::feature_range`.
    pub fn with_features(
        artifact: &ModelArtifact,
        threads: usize,
        features: usize,
    ) -> Result<Self, PredictorModelError> {
        let predictor = Predictor::with_threads(artifact, threads)?;
        if !predictor.is_regression() {
            return Err(PredictorModelError::ClassificationHead(
                predictor.head().width(),
            ));
        }
        let range = predictor.feature_range();
        if features < range.0 || features > range.1 {
            return Err(PredictorModelError::FeatureCount {
                asked: features,
                range,
            });
        }
        Ok(Self {
            predictor,
            features,
        })
    }

    /// The predictor.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }
}

fn posterior_error(e: PredictError) -> PosteriorError {
    match e {
        PredictError::FeatureCount { .. }
        | PredictError::Shape { .. }
        | PredictError::NonFinite { .. }
        | PredictError::EmptyContext
        | PredictError::Normalise(_)
        | PredictError::BadLabel { .. } => PosteriorError::InvalidInput(e.to_string()),
        other => PosteriorError::Model(other.to_string()),
    }
}

impl PosteriorModel for PredictorModel {
    fn num_features(&self) -> usize {
        self.features
    }

    fn predict(
        &self,
        context_x: &[f64],
        context_y: &[f64],
        query_x: &[f64],
    ) -> Result<Vec<RegressionPredictive>, PosteriorError> {
        let mut context = self
            .predictor
            .context_with_features(context_x, context_y, self.features)
            .map_err(posterior_error)?;
        context
            .predict(query_x)
            .map_err(posterior_error)?
            .into_iter()
            .map(|p| match p {
                PosteriorPredictive::Regression(r) => Ok(r),
                PosteriorPredictive::Classification(_) => Err(PosteriorError::Model(
                    "a classification head answered a regression query".into(),
                )),
            })
            .collect()
    }
}
