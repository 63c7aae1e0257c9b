//! What the model files of a directory are: each `*.pfn` (or `*.safetensors`) file loaded, its
//! SHA-256 content digest verified, and summarised (prior, task, feature range, context sizes,
//! training budget). `pfn models` prints it; the Python package's `pfn.models()` returns it.

use std::path::{Path, PathBuf};

use pfn_artifact::OutputHead;
use serde::Serialize;

use crate::model_search::has_model_extension;
use crate::{PredictError, Predictor};

/// A model file or directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The directory cannot be listed.
    #[error("cannot read the models directory {}: {source}", .dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's metadata cannot be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A model file does not load or verify.
    #[error("{}: {source}", .file.display())]
    Load {
        /// The file.
        file: PathBuf,
        /// Why.
        source: PredictError,
    },
}

/// Training budget spent on a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingSummary {
    /// Optimizer steps of the run that wrote the file.
    pub steps: u64,
    /// Prior datasets that run consumed.
    pub datasets: u64,
    /// That run's wall-clock seconds.
    pub seconds: f64,
    /// The model file that run started from (`run.init_from`), whose own training is not counted
    /// above; `None` for a run from scratch.
    pub started_from: Option<String>,
    /// Every run the file records: the last one and the earlier ones of its lineage.
    pub in_all: TrainingInAll,
}

/// The budget of every training run a model file records (its lineage and the last run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingInAll {
    /// Recorded runs (1 for a model trained in one run).
    pub runs: usize,
    /// Optimizer steps of those runs.
    pub steps: u64,
    /// Prior datasets of those runs.
    pub datasets: u64,
    /// Wall-clock seconds of those runs.
    pub seconds: f64,
    /// Whether the recorded runs reach back to a run from scratch, so that these totals are the
    /// model's whole training.
    pub complete: bool,
    /// When they do not: the model file the oldest recorded run started from, whose training is
    /// unknown.
    pub unknown_start: Option<String>,
}

impl TrainingSummary {
    /// The budget a model file records (`pfn models` and the demo server's catalogue).
    pub fn of(meta: &pfn_artifact::ModelMetadata) -> Self {
        let all = meta.training_in_all();
        Self {
            steps: meta.training.steps,
            datasets: meta.training.datasets,
            seconds: meta.training.seconds,
            started_from: meta.init_from().map(str::to_string),
            in_all: TrainingInAll {
                runs: meta.lineage.len() + 1,
                steps: all.steps,
                datasets: all.datasets,
                seconds: all.seconds,
                complete: meta.lineage_complete(),
                unknown_start: meta.unknown_start().map(str::to_string),
            },
        }
    }
}

/// What `pfn models` reports about one loadable model file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Name (file stem), usable as `pfn predict --model NAME`.
    pub name: String,
    /// The file.
    pub file: String,
    /// Registry name of the training prior.
    pub prior: String,
    /// Input features of the network.
    pub num_features: usize,
    /// Smallest and largest number of features the model accepts.
    pub feature_range: [usize; 2],
    /// Smallest context size seen in training.
    pub min_context: usize,
    /// Largest context size seen in training.
    pub max_context: usize,
    /// `regression` (Riemann head) or `classification`.
    pub task: String,
    /// Buckets of the Riemann head, or classes.
    pub outputs: usize,
    /// Number of weights.
    pub parameters: usize,
    /// Training budget.
    pub training: TrainingSummary,
    /// Final validation loss (mean NLL on held-out prior datasets), if measured.
    pub final_validation_loss: Option<f64>,
    /// The SHA-256 content digest (hex), verified when the file was loaded.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
}

/// A model file that could not be loaded or failed verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidModel {
    /// The file.
    pub file: String,
    /// Why (a one-line message that names the file).
    pub error: String,
}

/// The models of one directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The directory.
    pub dir: String,
    /// Loadable models, by name.
    pub models: Vec<ModelSummary>,
    /// Files that failed to load.
    pub invalid: Vec<InvalidModel>,
}

/// Loads and verifies one model file.
pub fn summarise(path: &Path) -> Result<ModelSummary, CatalogueError> {
    let load = |source| CatalogueError::Load {
        file: path.to_path_buf(),
        source,
    };
    let artifact = pfn_artifact::load_model(path).map_err(|e| load(e.into()))?;
    let predictor = Predictor::with_threads(&artifact, 1).map_err(load)?;
    let meta = &artifact.metadata;
    let (lo, hi) = predictor.feature_range();
    let (task, outputs) = match &meta.head {
        OutputHead::Riemann { .. } => ("regression", meta.head.width()),
        OutputHead::Classes { n_out } => ("classification", *n_out),
    };
    let bytes = std::fs::metadata(path)
        .map_err(|source| CatalogueError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok(ModelSummary {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: path.display().to_string(),
        prior: meta.prior.clone(),
        num_features: predictor.num_features(),
        feature_range: [lo, hi],
        min_context: predictor.min_trained_context(),
        max_context: predictor.max_trained_context(),
        task: task.into(),
        outputs,
        parameters: artifact.tensors.iter().map(|t| t.data.len()).sum(),
        training: TrainingSummary::of(meta),
        final_validation_loss: meta.final_validation_loss,
        sha256: artifact.digest.clone(),
        bytes,
    })
}

/// Every model file of `dir` (not recursive), sorted by name; files that fail to load are listed in
/// [`Listing::invalid`]. An unreadable directory is an error.
pub fn list_models(dir: &Path) -> Result<Listing, CatalogueError> {
    let read = std::fs::read_dir(dir).map_err(|source| CatalogueError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && has_model_extension(p))
        .collect();
    files.sort();
    let mut listing = Listing {
        dir: dir.display().to_string(),
        models: Vec::new(),
        invalid: Vec::new(),
    };
    for file in files {
        match summarise(&file) {
            Ok(m) => listing.models.push(m),
            Err(e) => listing.invalid.push(InvalidModel {
                file: file.display().to_string(),
                error: e.to_string().replace('\n', " "),
            }),
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_directory_is_an_error_and_bad_files_are_listed() {
        let dir = std::env::temp_dir().join(format!("pfn-models-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(list_models(&dir)
            .unwrap_err()
            .to_string()
            .contains("cannot read the models directory"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pfn"), b"not a model").unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        let l = list_models(&dir).unwrap();
        assert!(l.models.is_empty());
        assert_eq!(l.invalid.len(), 1);
        assert!(l.invalid[0].file.ends_with("junk.pfn"));
        assert!(
            l.invalid[0].error.contains("not a pfn model file"),
            "{:?}",
            l.invalid
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
