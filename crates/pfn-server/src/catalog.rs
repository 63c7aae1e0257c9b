//! The models a server offers: artifacts loaded from a directory (or added in code), each with a
//! summary for `GET /api/models`, a [`PosteriorModel`] to answer queries and, for GP priors, the
//! [`ReferenceGp`] to overlay.

use std::path::Path;
use std::sync::Arc;

use pfn_artifact::{
    load_model, ModelArtifact, ModelMetadata, OutputHead, XNormalisation, YNormalisation,
};
use serde::Serialize;

/// Budget a model was trained with (the model catalogue's type, as `pfn models` reports it).
pub use pfn_infer::model_catalogue::{TrainingInAll, TrainingSummary};

use crate::error::ServeError;
use crate::posterior::PosteriorModel;
use crate::predictor_model::PredictorModel;
use crate::reference_gp::ReferenceGp;

/// The plot window the page opens with for a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultView {
    /// x range `[lo, hi]`.
    pub x: [f64; 2],
    /// y range `[lo, hi]`.
    pub y: [f64; 2],
}

/// What `GET /api/models` says about one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Name used in requests (the file stem).
    pub name: String,
    /// Registry name of the training prior.
    pub prior: String,
    /// One-line description of that prior (empty if it is not in the registry).
    pub prior_description: String,
    /// Input features of the network.
    pub num_features: usize,
    /// Smallest and largest number of features the model accepts (`[1, 5]` for a model trained
    /// with a variable number of features); the demo sends one.
    pub feature_range: [usize; 2],
    /// Whether the model scales its inputs with the context (x min-max or y standardised), so
    /// that it needs at least one context point.
    pub needs_context: bool,
    /// Largest number of context points the model was trained with (the request limit).
    pub max_context: usize,
    /// Points per training dataset.
    pub seq_len: usize,
    /// Buckets of the Riemann head (0 for a class head).
    pub buckets: usize,
    /// Half-normal tails on the edge buckets.
    pub full_support: bool,
    /// x range of the training data, when known (`null` for unbounded inputs or min-max
    /// normalisation, where the context's own range applies).
    pub trained_x_range: Option<[f64; 2]>,
    /// y range covered by the head's borders when y is not normalised (`null` otherwise).
    pub trained_y_range: Option<[f64; 2]>,
    /// `none`, `fixed` or `context_min_max`.
    pub x_normalisation: String,
    /// `none` or `context_standardise`.
    pub y_normalisation: String,
    /// `exact`, `type2_map`, `type2_ml` or `null`: the GP overlaid on this model's predictions.
    pub reference_gp: Option<String>,
    /// Legend label of that GP (`GP (exact)`, `GP (type-II MAP)`, `GP (type-II ML)`).
    pub reference_gp_label: Option<String>,
    /// Training budget.
    pub training: TrainingSummary,
    /// Final validation loss stored in the artifact, if any.
    pub final_validation_loss: Option<f64>,
    /// The first 12 hex digits of the artifact's content digest (empty for in-memory models).
    pub digest: String,
    /// Whether `/api/predict` accepts this model (it accepts 1 feature and has a Riemann head).
    pub supported: bool,
    /// Why not, when `supported` is false.
    pub unsupported_reason: Option<String>,
    /// Suggested plot window.
    pub default_view: DefaultView,
}

/// One model offered by the server.
#[derive(Clone)]
pub struct ModelEntry {
    /// Its summary.
    pub info: ModelInfo,
    /// The network, when supported.
    pub backend: Option<Arc<dyn PosteriorModel>>,
    /// The GP to overlay, for GP priors.
    pub reference: Option<ReferenceGp>,
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEntry")
            .field("info", &self.info)
            .field("reference", &self.reference)
            .finish()
    }
}

/// A model file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedFile {
    /// The file.
    pub file: String,
    /// Why.
    pub error: String,
}

/// The models of a server, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    entries: Vec<ModelEntry>,
    skipped: Vec<SkippedFile>,
}

/// The input domain of a registered prior that draws x from a fixed box (its registry entry's
/// `input_range`, e.g. `U[0,1]^d`).
fn prior_input_range(prior: &str) -> Option<[f64; 2]> {
    pfn_prior::prior_entry(prior).and_then(|e| e.input_range)
}

/// File extensions of model artifacts.
pub const MODEL_EXTENSIONS: [&str; 2] = ["pfn", "safetensors"];

/// The feature counts a model accepts, by the rule of `pfn_infer::Predictor::feature_range`:
/// exactly the network's, or 1 up to it for a model trained with a variable number of features.
fn feature_range(meta: &ModelMetadata) -> (usize, usize) {
    let f = meta.architecture.num_features;
    match meta.normalisation.feature_padding {
        Some(_) => (1, f),
        None => (f, f),
    }
}

fn prior_description(prior: &str) -> String {
    pfn_prior::prior_entry(prior)
        .map(|e| e.description.to_string())
        .unwrap_or_default()
}

fn padded(lo: f64, hi: f64, fraction: f64) -> [f64; 2] {
    let pad = (hi - lo) * fraction;
    [lo - pad, hi + pad]
}

/// Widens `[lo, hi]` to multiples of a quarter of its order of magnitude (e.g. ±3.03 → ±3.25).
fn rounded_outward([lo, hi]: [f64; 2]) -> [f64; 2] {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return [lo, hi];
    }
    let step = 10f64.powf(span.log10().floor()) / 4.0;
    [(lo / step).floor() * step, (hi / step).ceil() * step]
}

impl ModelCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every model artifact (`*.pfn`, `*.safetensors`) in `dir` (not recursive), named by
    /// file stem (the first file in name order wins when two files share a stem),
    /// each computing on `threads` threads (0: all cores). Files that fail to load or verify are
    /// recorded in [`ModelCatalog::skipped`]; an unreadable directory is an error.
    pub fn load_dir(dir: &Path, threads: usize) -> Result<Self, ServeError> {
        let read = std::fs::read_dir(dir).map_err(|source| ServeError::ModelsDir {
            dir: dir.display().to_string(),
            source,
        })?;
        let mut files: Vec<_> = read
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| MODEL_EXTENSIONS.iter().any(|m| e == *m))
            })
            .collect();
        files.sort();
        let mut catalog = Self::new();
        for path in files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match load_model(&path) {
                Ok(artifact) => {
                    if let Err(e) = catalog.add_artifact(&name, &artifact, threads) {
                        catalog.skipped.push(SkippedFile {
                            file: path.display().to_string(),
                            error: e.to_string(),
                        });
                    }
                }
                Err(e) => catalog.skipped.push(SkippedFile {
                    file: path.display().to_string(),
                    error: e.problem.to_string(),
                }),
            }
        }
        Ok(catalog)
    }

    /// Adds a model from an artifact, answered by a `pfn_infer::Predictor` on `threads` threads
    /// (0: all cores) with one input feature. Models that do not accept one feature, and
    /// classification models, are listed but marked unsupported. A duplicate name is an error.
    pub fn add_artifact(
        &mut self,
        name: &str,
        artifact: &ModelArtifact,
        threads: usize,
    ) -> Result<(), ServeError> {
        let meta = &artifact.metadata;
        let (buckets, full_support, borders) = match &meta.head {
            OutputHead::Riemann {
                borders,
                full_support,
                ..
            } => (borders.len() - 1, *full_support, Some(borders.as_slice())),
            OutputHead::Classes { .. } => (0, false, None),
        };
        let num_features = meta.architecture.num_features;
        let trained_x_range = match &meta.normalisation.x {
            XNormalisation::None => prior_input_range(&meta.prior),
            XNormalisation::Fixed { min, max } => Some([min[0], max[0]]),
            XNormalisation::ContextMinMax | XNormalisation::ContextStandardise => None,
        };
        let y_normalised = meta.normalisation.y != YNormalisation::None;
        let trained_y_range = match (borders, y_normalised) {
            (Some(b), false) => Some([b[0], b[b.len() - 1]]),
            _ => None,
        };
        let x_view = match trained_x_range {
            Some([lo, hi]) => padded(lo, hi, 0.1),
            None => [-3.0, 3.0],
        };
        let y_view = match (borders, y_normalised) {
            (Some(b), false) if b.len() > 4 => {
                // The head's borders are (roughly) equal-mass quantiles of the prior's y: show the
                // central 99 %, padded.
                let k = b.len() - 1;
                let cut = ((k as f64) * 0.005).round() as usize;
                let (lo, hi) = (b[cut.min(k / 2)], b[k - cut.min(k / 2)]);
                rounded_outward(padded(lo, hi, 0.15))
            }
            _ => [-3.0, 3.0],
        };
        let (min_features, max_features) = feature_range(meta);
        let mut unsupported = Vec::new();
        if min_features > 1 {
            unsupported.push(format!(
                "the demo plots 1-D inputs, this model takes exactly {num_features} features"
            ));
        }
        if buckets == 0 {
            unsupported.push("it has a classification head".to_string());
        }
        let backend: Option<Arc<dyn PosteriorModel>> = if unsupported.is_empty() {
            match PredictorModel::with_features(artifact, threads, 1) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    return Err(ServeError::BadModel {
                        name: name.to_string(),
                        reason: e.to_string(),
                    })
                }
            }
        } else {
            None
        };
        let reference = ReferenceGp::for_prior(&meta.prior);
        let info = ModelInfo {
            name: name.to_string(),
            prior: meta.prior.clone(),
            prior_description: prior_description(&meta.prior),
            num_features,
            feature_range: [min_features, max_features],
            needs_context: meta.normalisation.x.fitted_on_context()
                || meta.normalisation.y == YNormalisation::ContextStandardise,
            max_context: meta.max_context(),
            seq_len: meta.architecture.seq_len,
            buckets,
            full_support,
            trained_x_range,
            trained_y_range,
            x_normalisation: match meta.normalisation.x {
                XNormalisation::None => "none",
                XNormalisation::Fixed { .. } => "fixed",
                XNormalisation::ContextMinMax => "context_min_max",
                XNormalisation::ContextStandardise => "context_standardise",
            }
            .to_string(),
            y_normalisation: if y_normalised {
                "context_standardise"
            } else {
                "none"
            }
            .to_string(),
            reference_gp: reference.as_ref().map(|r| r.kind().to_string()),
            reference_gp_label: reference.as_ref().map(|r| r.label().to_string()),
            training: TrainingSummary::of(meta),
            final_validation_loss: meta.final_validation_loss,
            digest: artifact.digest.chars().take(12).collect(),
            supported: unsupported.is_empty(),
            unsupported_reason: (!unsupported.is_empty()).then(|| unsupported.join("; ")),
            default_view: DefaultView {
                x: x_view,
                y: y_view,
            },
        };
        self.insert(ModelEntry {
            info,
            backend,
            reference,
        })
    }

    /// Adds a prepared entry (e.g. a custom [`PosteriorModel`]). A duplicate name is an error.
    pub fn insert(&mut self, entry: ModelEntry) -> Result<(), ServeError> {
        match self
            .entries
            .binary_search_by(|e| e.info.name.cmp(&entry.info.name))
        {
            Ok(_) => Err(ServeError::DuplicateModel(entry.info.name)),
            Err(i) => {
                self.entries.insert(i, entry);
                Ok(())
            }
        }
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.entries
            .binary_search_by(|e| e.info.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// All models, sorted by name.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// Files of the directory that could not be loaded.
    pub fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no models.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of models that `/api/predict` accepts.
    pub fn supported_count(&self) -> usize {
        self.entries.iter().filter(|e| e.info.supported).count()
    }
}
