//! The inference API: a [`Predictor`] holds a trained model; given a dataset's context `(x, y)`
//! and query inputs it returns one [`PosteriorPredictive`] per query.
//!
//! ```no_run
//! use pfn_infer::Predictor;
//!
//! let predictor = Predictor::load("gp-1d.pfn")?;
//! let (x_ctx, y_ctx) = (vec![0.1, 0.5, 0.9], vec![0.3, -0.2, 0.8]);
//! let mut context = predictor.context(&x_ctx, &y_ctx)?;     // normalisation fitted once
//! for batch in [vec![0.2, 0.3], vec![0.7]] {
//!     for p in context.predict(&batch)? {
//!         let r = p.as_regression().unwrap();
//!         println!("{} ± {}", r.mean(), r.std());
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Normalisation
//! The artifact records how the model's training data were scaled
//! (`pfn_artifact::InputNormalisation`); a [`Context`] fits the same map on the context rows
//! (features to `[0, 1]` with the context min/max, targets standardised with the context mean
//! and standard deviation, or nothing for GP-prior models trained on raw `U[0,1]` inputs) and every
//! prediction is mapped back, densities included.
//!
//! # Context reuse
//! A [`Context`] encodes the context once with `pfn-model`'s cached-context pass
//! (`PfnModel::encode_context`: every layer's keys and values of the context points) and answers
//! each query batch with `PfnModel::forward_queries`, which computes only the query tokens. The
//! answers equal the full forward pass over context plus queries
//! ([`Predictor::forward_normalised`]) up to float rounding, and, since queries never attend to
//! each other, they do not depend on how the queries are batched.

use std::path::Path;
use std::sync::Arc;

use pfn_artifact::{
    load_model, model_from_tensors, ArtifactError, FeatureScaler, ModelArtifact, ModelMetadata,
    NormaliseError, OutputHead, TargetScaler, WeightsError, XNormalisation, YNormalisation,
};
use pfn_distribution::{BarDistribution, DistributionError, IcdfConvention};
use pfn_engine::Engine;
use pfn_model::{ContextCache, ModelError, PfnModel, Precision, Workspace};

use crate::predictive::{ClassPredictive, PosteriorPredictive, RegressionPredictive};

/// Default number of queries per forward pass.
pub const DEFAULT_QUERY_BATCH: usize = 512;

/// Errors of the inference API. Each displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// One dataset of a batched prediction ([`Predictor::predict_many`]) is invalid.
    #[error("dataset {task}: {source}")]
    Task {
        /// Index of the dataset in the batch.
        task: usize,
        /// What is wrong with it.
        source: Box<PredictError>,
    },
    /// The model file could not be read or verified.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The artifact's weights do not fit its architecture.
    #[error("model weights: {0}")]
    Weights(#[from] WeightsError),
    /// The artifact's head is invalid.
    #[error("model head: {0}")]
    Head(DistributionError),
    /// A distribution computation failed.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// The data have a different number of features than the model.
    #[error("the model takes {expected} feature{} but the {what} has {got}{}", if *expected == 1 { "" } else { "s" }, if got > expected { " (more than the model supports)" } else { "" })]
    FeatureCount {
        /// Which data.
        what: &'static str,
        /// Features the model takes.
        expected: usize,
        /// Features given.
        got: usize,
    },
    /// A buffer's length does not fit the number of features or the other buffer.
    #[error("{what}: {problem}")]
    Shape {
        /// Which buffer.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A NaN or infinite input.
    #[error("{what}[{index}] is not finite ({value})")]
    NonFinite {
        /// Which buffer.
        what: &'static str,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A normalised value beyond the range of the model's f32 inputs (an input extremely far outside
    /// the range of the context it is scaled by).
    #[error(
        "{what}[{index}] = {value:e} after normalisation, beyond the model's 32-bit float range: the \
         input lies extremely far outside the context's range; rescale that column"
    )]
    BeyondF32 {
        /// Which buffer.
        what: &'static str,
        /// Flat index.
        index: usize,
        /// The normalised value.
        value: f64,
    },
    /// The normalisation needs at least one context point.
    #[error(
        "this model normalises its inputs with the context, so it needs at least one context point"
    )]
    EmptyContext,
    /// Fitting or applying the normalisation failed.
    #[error(transparent)]
    Normalise(#[from] NormaliseError),
    /// A class label that the head does not have.
    #[error("context y[{index}] = {value} is not a class label of this model (0..{n_out})")]
    BadLabel {
        /// Context index.
        index: usize,
        /// The value.
        value: f64,
        /// Classes of the head.
        n_out: usize,
    },
    /// Class probabilities were asked of a regression model.
    #[error("this is a regression model; class probabilities need a classification model")]
    NotClassification,
    /// A dataset with more classes than the model's head has outputs.
    #[error(
        "the data have {classes} classes but this model predicts at most {n_out}{}",
        if *classes == 0 { " (no class at all)" } else { "" }
    )]
    TooManyClasses {
        /// Classes asked for.
        classes: usize,
        /// Outputs of the head.
        n_out: usize,
    },
    /// The forward pass failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// The engine could not be created.
    #[error("cannot create the compute engine: {0}")]
    Engine(String),
    /// Invalid option.
    #[error("invalid {name}: {problem}")]
    Option {
        /// The option.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl PredictError {
    /// The error of a one-task batched call as the task's own: a [`PredictError::Task`] unwrapped
    /// to its source, any other error unchanged.
    pub fn without_task(self) -> Self {
        match self {
            PredictError::Task { source, .. } => *source,
            e => e,
        }
    }
}

/// A trained model ready to answer queries.
pub struct Predictor {
    model: PfnModel,
    engine: Engine,
    /// The Riemann head shared by every prediction, with exact tails for quantiles (`None` for a
    /// class head).
    bar: Option<Arc<BarDistribution>>,
    metadata: ModelMetadata,
    digest: String,
    query_batch: usize,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("prior", &self.metadata.prior)
            .field("digest", &self.digest)
            .field("query_batch", &self.query_batch)
            .finish()
    }
}

pub(crate) fn check_finite(what: &'static str, v: &[f64]) -> Result<(), PredictError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(PredictError::NonFinite {
            what,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

/// Converts normalised values to the model's f32, rejecting values beyond the f32 range.
fn to_f32(what: &'static str, v: &[f64], out: &mut Vec<f32>) -> Result<(), PredictError> {
    out.clear();
    for (index, &x) in v.iter().enumerate() {
        let f = x as f32;
        if !f.is_finite() {
            return Err(PredictError::BeyondF32 {
                what,
                index,
                value: x,
            });
        }
        out.push(f);
    }
    Ok(())
}

impl Predictor {
    /// A predictor for a loaded artifact, computing on all cores.
    pub fn new(artifact: &ModelArtifact) -> Result<Self, PredictError> {
        Self::with_threads(artifact, 0)
    }

    /// A predictor computing on `threads` threads (0: all cores).
    pub fn with_threads(artifact: &ModelArtifact, threads: usize) -> Result<Self, PredictError> {
        let metadata = artifact.metadata.clone();
        let bar = metadata
            .head
            .bar_distribution()
            .map_err(PredictError::Head)?
            .map(|dist| Arc::new(dist.with_icdf_convention(IcdfConvention::ExactTails)));
        let model = model_from_tensors(&metadata.architecture, &artifact.tensors)?;
        let engine = Engine::new(threads).map_err(|e| PredictError::Engine(e.to_string()))?;
        Ok(Self {
            model,
            engine,
            bar,
            metadata,
            digest: artifact.digest.clone(),
            query_batch: DEFAULT_QUERY_BATCH,
        })
    }

    /// Loads and verifies a model file, computing on all cores.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PredictError> {
        Self::new(&load_model(path)?)
    }

    /// The artifact's metadata (configuration, head, normalisation, training budget).
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The artifact's SHA-256 content digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The network.
    pub fn model(&self) -> &PfnModel {
        &self.model
    }

    /// The compute engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The output head, as the artifact describes it (bucket borders or number of classes).
    pub fn head(&self) -> &OutputHead {
        &self.metadata.head
    }

    /// The bar distribution of a Riemann head (the artifact's borders and support, quantiles with
    /// exact half-normal tails, [`IcdfConvention::ExactTails`]); `None` for a class head.
    pub fn bar_distribution(&self) -> Option<&BarDistribution> {
        self.bar.as_deref()
    }

    /// Whether the model predicts a continuous target (Riemann head).
    pub fn is_regression(&self) -> bool {
        self.bar.is_some()
    }

    /// Input features the model takes.
    pub fn num_features(&self) -> usize {
        self.metadata.architecture.num_features
    }

    /// Largest context size seen in training (`seq_len − 1` or the configured `max_context`).
    pub fn max_trained_context(&self) -> usize {
        self.metadata.max_context()
    }

    /// Smallest context size seen in training (the configuration's `prior.min_context`, 0 when
    /// absent). A model with context normalisation needs at least one context point anyway.
    pub fn min_trained_context(&self) -> usize {
        let min = self.metadata.min_context();
        let norm = &self.metadata.normalisation;
        let needs_context =
            norm.x.fitted_on_context() || norm.y == YNormalisation::ContextStandardise;
        min.max(usize::from(needs_context))
    }

    /// The arithmetic of the model's matrix products (f32 by default; see [`Precision`]).
    pub fn precision(&self) -> Precision {
        self.model.inference_precision()
    }

    /// Runs the model's large matrix products in `precision` from now on (bf16: operands rounded to
    /// bfloat16, f32 accumulation; about twice as fast on CPUs with AVX-512 BF16).
    pub fn set_precision(&mut self, precision: Precision) {
        self.model.set_inference_precision(precision);
    }

    /// Queries per forward pass.
    pub fn query_batch(&self) -> usize {
        self.query_batch
    }

    /// Sets the number of queries per forward pass (at least 1).
    pub fn set_query_batch(&mut self, queries: usize) -> Result<(), PredictError> {
        if queries == 0 {
            return Err(PredictError::Option {
                name: "query batch",
                problem: "must be at least 1".into(),
            });
        }
        self.query_batch = queries;
        Ok(())
    }

    /// The largest and smallest number of features the model accepts: exactly
    /// [`Predictor::num_features`], or any count from 1 up to it for a model trained with a variable
    /// number of features (zero-padded, see `InputNormalisation::feature_padding`).
    pub fn feature_range(&self) -> (usize, usize) {
        let f = self.num_features();
        match self.metadata.normalisation.feature_padding {
            Some(_) => (1, f),
            None => (f, f),
        }
    }

    /// Checks that the model accepts data with `d` features.
    fn check_feature_count(&self, what: &'static str, d: usize) -> Result<(), PredictError> {
        let (lo, hi) = self.feature_range();
        if d < lo || d > hi {
            return Err(PredictError::FeatureCount {
                what,
                expected: hi,
                got: d,
            });
        }
        Ok(())
    }

    /// Rows of `d` normalised features widened to the model's `F` columns: columns scaled by the
    /// training padding factor and zero-filled (a copy of `x` when `d = F`).
    fn pad_features(&self, x: &[f64], d: usize) -> Vec<f64> {
        let f = self.num_features();
        let Some(scaling) = self
            .metadata
            .normalisation
            .feature_padding
            .filter(|_| d != f)
        else {
            return x.to_vec();
        };
        let factor = scaling.factor(d, f);
        let mut out = vec![0.0; x.len() / d * f];
        for (row, src) in out.chunks_exact_mut(f).zip(x.chunks_exact(d)) {
            for (o, v) in row.iter_mut().zip(src) {
                *o = v * factor;
            }
        }
        out
    }

    fn check_rows_of(
        &self,
        what: &'static str,
        x: &[f64],
        f: usize,
    ) -> Result<usize, PredictError> {
        if !x.len().is_multiple_of(f) {
            return Err(PredictError::Shape {
                what,
                problem: format!(
                    "{} values are not a whole number of rows of {f} feature{}",
                    x.len(),
                    if f == 1 { "" } else { "s" }
                ),
            });
        }
        check_finite(what, x)?;
        Ok(x.len() / f)
    }

    /// Prepares a context: `x` is row-major `n × num_features()`, `y` has `n` targets (class
    /// indices for a classification model). Validates the data and fits the normalisation.
    pub fn context(&self, x: &[f64], y: &[f64]) -> Result<Context<'_>, PredictError> {
        self.context_with_features(x, y, self.num_features())
    }

    /// As [`Predictor::context`] for data with `d` features per row; `d` must lie in
    /// [`Predictor::feature_range`]. Queries of the returned context have `d` features too.
    pub fn context_with_features(
        &self,
        x: &[f64],
        y: &[f64],
        d: usize,
    ) -> Result<Context<'_>, PredictError> {
        let NormalisedContext {
            n,
            features,
            target,
            x: cx,
            y: cy,
        } = self.normalise_context(x, y, d)?;
        let mut ws = Workspace::inference();
        let mut cache = ContextCache::new();
        self.model
            .encode_context(&self.engine, &mut ws, &cx, &cy, 1, n, &mut cache)?;
        Ok(Context {
            predictor: self,
            n,
            d,
            features,
            target,
            cache,
            ws,
            query: Vec::new(),
            beta: 1.0,
        })
    }

    /// Validates a context of `d` features per row and maps it as the model was trained: the
    /// fitted feature and target maps and the model's f32 inputs (features padded to the model's
    /// width).
    pub(crate) fn normalise_context(
        &self,
        x: &[f64],
        y: &[f64],
        d: usize,
    ) -> Result<NormalisedContext, PredictError> {
        self.check_feature_count("context x", d)?;
        let n = self.check_rows_of("context x", x, d)?;
        if y.len() != n {
            return Err(PredictError::Shape {
                what: "context y",
                problem: format!("{} targets for {n} context rows", y.len()),
            });
        }
        check_finite("context y", y)?;
        if let OutputHead::Classes { n_out } = self.metadata.head {
            if let Some(index) = y
                .iter()
                .position(|&v| !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < n_out))
            {
                return Err(PredictError::BadLabel {
                    index,
                    value: y[index],
                    n_out,
                });
            }
        }
        let norm = &self.metadata.normalisation;
        let features = match &norm.x {
            XNormalisation::None => None,
            XNormalisation::ContextMinMax => {
                if n == 0 {
                    return Err(PredictError::EmptyContext);
                }
                Some(FeatureScaler::fit(x, d)?)
            }
            XNormalisation::ContextStandardise => {
                if n == 0 {
                    return Err(PredictError::EmptyContext);
                }
                Some(FeatureScaler::fit_standardise(x, d)?)
            }
            XNormalisation::Fixed { min, max } => {
                Some(FeatureScaler::fixed(min.clone(), max.clone())?)
            }
        };
        let target = match norm.y {
            YNormalisation::None => TargetScaler::identity(),
            YNormalisation::ContextStandardise => {
                if n == 0 {
                    return Err(PredictError::EmptyContext);
                }
                TargetScaler::fit(y)?
            }
        };
        let x_norm = match &features {
            Some(s) => s.transform(x)?,
            None => x.to_vec(),
        };
        let x_norm = self.pad_features(&x_norm, d);
        let mut cx = Vec::new();
        to_f32("normalised context x", &x_norm, &mut cx)?;
        let mut cy = Vec::new();
        to_f32("normalised context y", &target.transform_all(y), &mut cy)?;
        Ok(NormalisedContext {
            n,
            features,
            target,
            x: cx,
            y: cy,
        })
    }

    /// Maps query rows of `d` features with a context's feature map into the model's f32 inputs
    /// (written to `out`); returns the number of queries.
    pub(crate) fn normalise_queries(
        &self,
        features: Option<&FeatureScaler>,
        d: usize,
        x_query: &[f64],
        out: &mut Vec<f32>,
    ) -> Result<usize, PredictError> {
        let m = self.check_rows_of("query x", x_query, d)?;
        let xq = match features {
            Some(s) => s.transform(x_query)?,
            None => x_query.to_vec(),
        };
        let xq = self.pad_features(&xq, d);
        to_f32("normalised query x", &xq, out)?;
        Ok(m)
    }

    /// Predicts every query of `x_query` (row-major) given the context `(x, y)`.
    pub fn predict(
        &self,
        x: &[f64],
        y: &[f64],
        x_query: &[f64],
    ) -> Result<Vec<PosteriorPredictive>, PredictError> {
        self.context(x, y)?.predict(x_query)
    }

    /// The raw logits of one forward pass over already normalised f32 data: context rows
    /// `x_ctx` (`n × F`) with targets `y_ctx`, then the query rows `x_query`; returns
    /// `m × n_out` logits. This is the uncached reference path.
    pub fn forward_normalised(
        &self,
        ws: &mut Workspace,
        x_ctx: &[f32],
        y_ctx: &[f32],
        x_query: &[f32],
    ) -> Result<Vec<f32>, PredictError> {
        let f = self.num_features();
        let n = y_ctx.len();
        if x_ctx.len() != n * f || !x_query.len().is_multiple_of(f) {
            return Err(PredictError::Shape {
                what: "normalised inputs",
                problem: format!(
                    "{} context values for {n} rows and {} query values with {f} features",
                    x_ctx.len(),
                    x_query.len()
                ),
            });
        }
        let m = x_query.len() / f;
        let mut x = Vec::with_capacity(x_ctx.len() + x_query.len());
        x.extend_from_slice(x_ctx);
        x.extend_from_slice(x_query);
        let batch = pfn_model::Batch {
            x: &x,
            y: y_ctx,
            batch: 1,
            seq_len: n + m,
            single_eval_pos: n,
        };
        Ok(self.model.forward(&self.engine, ws, &batch)?.to_vec())
    }

    /// The width `n_out` of a class head that can answer datasets of `num_classes` classes; errors
    /// for a regression model or `num_classes` outside `1..=n_out`.
    pub(crate) fn class_head_width(&self, num_classes: usize) -> Result<usize, PredictError> {
        let n_out = match self.head() {
            OutputHead::Classes { n_out } => *n_out,
            _ => return Err(PredictError::NotClassification),
        };
        if num_classes == 0 || num_classes > n_out {
            return Err(PredictError::TooManyClasses {
                classes: num_classes,
                n_out,
            });
        }
        Ok(n_out)
    }

    pub(crate) fn predictive_from_logits(
        &self,
        row: &[f32],
        target: TargetScaler,
    ) -> Result<PosteriorPredictive, PredictError> {
        Ok(match &self.bar {
            Some(dist) => PosteriorPredictive::Regression(RegressionPredictive::new(
                BarDistribution::predict_shared(dist, row)?,
                target,
            )),
            None => PosteriorPredictive::Classification(ClassPredictive::from_logits(row)),
        })
    }
}

/// Rows of `n_out` class logits as probabilities of the first `num_classes` classes
/// ([`ClassPredictive::from_logits_of_classes`]), row-major.
pub(crate) fn class_probabilities_of(logits: &[f32], n_out: usize, num_classes: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len() / n_out * num_classes);
    for row in logits.chunks_exact(n_out) {
        out.extend_from_slice(
            ClassPredictive::from_logits_of_classes(row, num_classes).probabilities(),
        );
    }
    out
}

/// A context mapped into the model's inputs (see [`Predictor::normalise_context`]).
pub(crate) struct NormalisedContext {
    /// Context rows.
    pub n: usize,
    /// The fitted feature map (`None`: raw features).
    pub features: Option<FeatureScaler>,
    /// The fitted target map.
    pub target: TargetScaler,
    /// Normalised, padded context inputs, `n × F`.
    pub x: Vec<f32>,
    /// Normalised context targets.
    pub y: Vec<f32>,
}

/// A prepared context: the fitted normalisation and the encoded context (every layer's keys and
/// values); answers any number of query batches.
pub struct Context<'p> {
    predictor: &'p Predictor,
    n: usize,
    d: usize,
    features: Option<FeatureScaler>,
    target: TargetScaler,
    cache: ContextCache,
    ws: Workspace,
    query: Vec<f32>,
    /// Inverse temperature applied to regression predictions (1: none; see
    /// [`Context::set_temperature`]).
    beta: f64,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("n", &self.n)
            .field("features", &self.features)
            .field("target", &self.target)
            .field("beta", &self.beta)
            .finish()
    }
}

impl<'p> Context<'p> {
    /// Number of context points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Features per row of the data (at most the model's; see [`Predictor::feature_range`]).
    pub fn num_features(&self) -> usize {
        self.d
    }

    /// Whether the context is empty (the model then predicts from the prior alone).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The fitted feature map (`None` when the model takes raw features).
    pub fn feature_scaler(&self) -> Option<&FeatureScaler> {
        self.features.as_ref()
    }

    /// The fitted target map (identity when the model takes raw targets).
    pub fn target_scaler(&self) -> TargetScaler {
        self.target
    }

    /// The model's logits (normalised space) for the queries `x_query` (row-major), `m × n_out`,
    /// computed against the encoded context in passes of at most `query_batch` queries.
    pub fn logits(&mut self, x_query: &[f64]) -> Result<Vec<f32>, PredictError> {
        let p = self.predictor;
        let f = p.num_features();
        let m = p.normalise_queries(self.features.as_ref(), self.d, x_query, &mut self.query)?;
        let width = p.head().width();
        let mut out = Vec::with_capacity(m * width);
        let chunk = p.query_batch * f;
        for q in self.query.chunks(chunk.max(1)) {
            let logits =
                p.model
                    .forward_queries(&p.engine, &mut self.ws, &self.cache, q, q.len() / f)?;
            out.extend_from_slice(logits);
        }
        Ok(out)
    }

    /// Class probabilities of every query of `x_query` (row-major) for a dataset whose labels are
    /// `0..num_classes`: `m × num_classes` values, row-major, each row the softmax over the first
    /// `num_classes` logits ([`ClassPredictive::from_logits_of_classes`]). Errors for a regression
    /// model or `num_classes` outside `1..=n_out`.
    pub fn class_probabilities(
        &mut self,
        x_query: &[f64],
        num_classes: usize,
    ) -> Result<Vec<f64>, PredictError> {
        let n_out = self.predictor.class_head_width(num_classes)?;
        let logits = self.logits(x_query)?;
        Ok(class_probabilities_of(&logits, n_out, num_classes))
    }

    /// Tempers every later regression prediction of this context by `beta`
    /// ([`RegressionPredictive::tempered`](crate::RegressionPredictive::tempered)), e.g. the
    /// inverse temperature [`Predictor::density_temperature`] fitted on the same context. 1 (the
    /// default) leaves predictions as the model gives them; class probabilities are not affected.
    /// Errors for a `beta` that is not a positive finite number.
    pub fn set_temperature(&mut self, beta: f64) -> Result<(), PredictError> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(PredictError::Option {
                name: "temperature",
                problem: format!("{beta} is not a positive finite power"),
            });
        }
        self.beta = beta;
        Ok(())
    }

    /// The inverse temperature of this context's regression predictions (1: none).
    pub fn temperature(&self) -> f64 {
        self.beta
    }

    /// The predictive distribution of every query of `x_query` (row-major), in original units
    /// (tempered as [`Context::set_temperature`] says).
    pub fn predict(&mut self, x_query: &[f64]) -> Result<Vec<PosteriorPredictive>, PredictError> {
        let logits = self.logits(x_query)?;
        let p = self.predictor;
        let width = p.head().width();
        logits
            .chunks_exact(width)
            .map(|row| {
                p.predictive_from_logits(row, self.target)
                    .map(|pred| match pred {
                        PosteriorPredictive::Regression(r) if self.beta != 1.0 => {
                            PosteriorPredictive::Regression(r.tempered(self.beta))
                        }
                        other => other,
                    })
            })
            .collect()
    }
}
