//! [`ArtifactModel`]: a [`PosteriorModel`] built directly from a `pfn-train` model artifact
//! (the transformer of `pfn-model`, the Riemann head's borders and the input normalisation stored
//! in the artifact's metadata).
//!
//! Normalisation, as recorded in [`InputNormalisation`]:
//! * x: `none` as given; `fixed` with the stored bounds; `context_min_max` with the context's
//!   min/max (an empty context leaves x unchanged);
//! * y: `none` as given; `context_standardise` with the context mean and standard deviation (an
//!   empty context uses the identity). Predictions come back by mapping the bucket borders through
//!   `y = μ + σ y'`: an affine image of a bar distribution is the bar distribution on the mapped
//!   borders (the half-normal tails scale with the edge-bucket widths), so every statistic and
//!   density of [`QueryPredictives`] is in the caller's units.

use std::sync::{Arc, Mutex};

use pfn_distribution::{BarDistribution, IcdfConvention, Support};
use pfn_engine::Engine;
use pfn_infer::{FeatureScaler, TargetScaler};
use pfn_model::{Batch, PfnConfig, PfnModel, Workspace};
use pfn_train::{InputNormalisation, ModelArtifact, OutputHead, XNormalisation, YNormalisation};

use crate::posterior::{PosteriorError, PosteriorModel, QueryPredictives};

/// Why an artifact cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactModelError {
    /// The head is not a Riemann (regression) head.
    #[error("the model has a {0} head; only Riemann (regression) heads can be served")]
    UnsupportedHead(String),
    /// The architecture in the metadata is not a valid transformer.
    #[error("invalid architecture: {0}")]
    Architecture(String),
    /// A weight tensor is missing, unexpected or has the wrong shape.
    #[error("weights do not match the architecture: {0}")]
    Weights(String),
    /// The stored borders do not form a bar distribution.
    #[error("invalid head borders: {0}")]
    Borders(String),
}

/// A PFN loaded from an artifact, answering posterior-predictive queries.
pub struct ArtifactModel {
    model: PfnModel,
    /// The head in the model's (normalised) target space.
    head: BarDistribution,
    normalisation: InputNormalisation,
    engine: Arc<Engine>,
    /// Reusable inference workspaces (one per concurrent request at most).
    workspaces: Mutex<Vec<Workspace>>,
}

impl std::fmt::Debug for ArtifactModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactModel")
            .field("config", self.model.config())
            .field("buckets", &self.head.num_buckets())
            .field("normalisation", &self.normalisation)
            .finish()
    }
}

impl ArtifactModel {
    /// Builds the network and head of `artifact`, running forward passes on `engine`.
    pub fn new(artifact: &ModelArtifact, engine: Arc<Engine>) -> Result<Self, ArtifactModelError> {
        let meta = &artifact.metadata;
        let (borders, full_support) = match &meta.head {
            OutputHead::Riemann {
                borders,
                full_support,
            } => (borders.clone(), *full_support),
            OutputHead::Classes { n_out } => {
                return Err(ArtifactModelError::UnsupportedHead(format!(
                    "classification ({n_out} classes)"
                )))
            }
        };
        let support = if full_support {
            Support::Full
        } else {
            Support::Bounded
        };
        let head = BarDistribution::new(borders, support)
            .map_err(|e| ArtifactModelError::Borders(e.to_string()))?
            .with_icdf_convention(IcdfConvention::ExactTails);
        let a = &meta.architecture;
        let mut config = PfnConfig::new(
            a.num_features,
            a.emsize,
            a.nhead,
            a.nhid,
            a.nlayers,
            a.n_out,
        );
        config.query_self_attention = a.query_self_attention;
        let mut model =
            PfnModel::zeros(config).map_err(|e| ArtifactModelError::Architecture(e.to_string()))?;
        let layout = model.layout().clone();
        for info in layout.entries() {
            let t = artifact.tensor(&info.name).ok_or_else(|| {
                ArtifactModelError::Weights(format!("tensor '{}' is missing", info.name))
            })?;
            if t.shape != info.shape {
                return Err(ArtifactModelError::Weights(format!(
                    "tensor '{}' has shape {:?}, expected {:?}",
                    info.name, t.shape, info.shape
                )));
            }
            model.params_mut()[info.range()].copy_from_slice(&t.data);
        }
        if let Some(extra) = artifact
            .tensors
            .iter()
            .find(|t| layout.get(&t.name).is_none())
        {
            return Err(ArtifactModelError::Weights(format!(
                "unexpected tensor '{}' (shape {:?})",
                extra.name, extra.shape
            )));
        }
        Ok(Self {
            model,
            head,
            normalisation: meta.normalisation.clone(),
            engine,
            workspaces: Mutex::new(Vec::new()),
        })
    }

    /// The head's bar distribution in the model's (normalised) target space.
    pub fn head(&self) -> &BarDistribution {
        &self.head
    }

    fn feature_scaler(&self, context_x: &[f64]) -> Result<Option<FeatureScaler>, PosteriorError> {
        let f = self.model.config().num_features;
        let bad = |e: pfn_infer::NormaliseError| PosteriorError::InvalidInput(e.to_string());
        Ok(match &self.normalisation.x {
            XNormalisation::None => None,
            XNormalisation::Fixed { min, max } => {
                Some(FeatureScaler::fixed(min.clone(), max.clone()).map_err(bad)?)
            }
            XNormalisation::ContextMinMax if context_x.is_empty() => None,
            XNormalisation::ContextMinMax => Some(FeatureScaler::fit(context_x, f).map_err(bad)?),
        })
    }

    fn target_scaler(&self, context_y: &[f64]) -> Result<TargetScaler, PosteriorError> {
        match self.normalisation.y {
            YNormalisation::None => Ok(TargetScaler::identity()),
            YNormalisation::ContextStandardise if context_y.is_empty() => {
                Ok(TargetScaler::identity())
            }
            YNormalisation::ContextStandardise => TargetScaler::fit(context_y)
                .map_err(|e| PosteriorError::InvalidInput(e.to_string())),
        }
    }
}

impl PosteriorModel for ArtifactModel {
    fn num_features(&self) -> usize {
        self.model.config().num_features
    }

    fn predict(
        &self,
        context_x: &[f64],
        context_y: &[f64],
        query_x: &[f64],
    ) -> Result<QueryPredictives, PosteriorError> {
        let f = self.num_features();
        if context_x.len() != context_y.len() * f {
            return Err(PosteriorError::InvalidInput(format!(
                "context x has {} values, expected {} ({} points x {f} features)",
                context_x.len(),
                context_y.len() * f,
                context_y.len()
            )));
        }
        if query_x.is_empty() || query_x.len() % f != 0 {
            return Err(PosteriorError::InvalidInput(format!(
                "query x has {} values, expected a positive multiple of {f}",
                query_x.len()
            )));
        }
        let xs = self.feature_scaler(context_x)?;
        let ys = self.target_scaler(context_y)?;
        let scale_x = |x: &[f64]| -> Result<Vec<f64>, PosteriorError> {
            match &xs {
                None => Ok(x.to_vec()),
                Some(s) => s
                    .transform(x)
                    .map_err(|e| PosteriorError::InvalidInput(e.to_string())),
            }
        };
        let n = context_y.len();
        let m = query_x.len() / f;
        let mut x: Vec<f32> = scale_x(context_x)?.iter().map(|&v| v as f32).collect();
        x.extend(scale_x(query_x)?.iter().map(|&v| v as f32));
        let y: Vec<f32> = context_y.iter().map(|&v| ys.transform(v) as f32).collect();
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(PosteriorError::InvalidInput(format!(
                "input {i} is not finite in f32 after normalisation"
            )));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(PosteriorError::InvalidInput(format!(
                "context y[{i}] is not finite in f32 after normalisation"
            )));
        }
        let batch = Batch {
            x: &x,
            y: &y,
            batch: 1,
            seq_len: n + m,
            single_eval_pos: n,
        };
        let mut ws = self
            .workspaces
            .lock()
            .map_err(|_| PosteriorError::Model("workspace pool poisoned".into()))?
            .pop()
            .unwrap_or_else(Workspace::inference);
        let logits = self
            .model
            .forward(&self.engine, &mut ws, &batch)
            .map(|l| l.to_vec())
            .map_err(|e| PosteriorError::Model(e.to_string()));
        if let Ok(mut pool) = self.workspaces.lock() {
            pool.push(ws);
        }
        let logits = logits?;
        let borders: Vec<f64> = self.head.borders().iter().map(|&b| ys.inverse(b)).collect();
        let distribution = BarDistribution::new(borders, self.head.support())?
            .with_icdf_convention(self.head.icdf_convention());
        QueryPredictives::new(distribution, logits)
    }
}
