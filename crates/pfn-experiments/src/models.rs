//! The PFN side of an experiment: model artifacts given with `--model` or found in a models
//! directory, loaded as [`pfn_infer::Predictor`]s and checked against what the experiment needs.

use std::path::{Path, PathBuf};

use pfn_artifact::load_model;
use pfn_infer::{Precision, Predictor};
use serde::Serialize;

use crate::error::ExperimentError;

/// A loaded PFN model.
#[derive(Debug)]
pub struct LoadedModel {
    /// The artifact file.
    pub path: PathBuf,
    /// Short label for tables and plots (the file stem).
    pub label: String,
    /// The predictor.
    pub predictor: Predictor,
}

/// What a report records about a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Label in tables and plots.
    pub label: String,
    /// The artifact file.
    pub path: String,
    /// SHA-256 content digest.
    pub digest: String,
    /// Training prior.
    pub prior: String,
    /// Input features.
    pub num_features: usize,
    /// Parameters of the network.
    pub parameters: usize,
    /// Largest context size trained.
    pub max_context: usize,
    /// Datasets consumed in training (every run the file records: its lineage and the last run).
    pub training_datasets: u64,
    /// Optimizer steps of training (every recorded run).
    pub training_steps: u64,
    /// Training wall time in seconds (every recorded run).
    pub training_seconds: f64,
    /// Training runs the file records (1 for a model trained in one run).
    pub training_runs: usize,
    /// Whether the recorded runs reach back to a run from scratch.
    pub training_complete: bool,
}

impl LoadedModel {
    /// Loads the artifact at `path` with a predictor computing on `threads` threads (0: all).
    pub fn load(path: &Path, threads: usize) -> Result<Self, ExperimentError> {
        let load_err = |source| ExperimentError::LoadModel {
            path: path.display().to_string(),
            source,
        };
        let artifact = load_model(path).map_err(|e| load_err(e.into()))?;
        let predictor = Predictor::with_threads(&artifact, threads).map_err(load_err)?;
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Ok(Self {
            path: path.to_path_buf(),
            label,
            predictor,
        })
    }

    /// The registry name of the training prior.
    pub fn prior(&self) -> &str {
        &self.predictor.metadata().prior
    }

    /// The summary recorded in reports.
    pub fn info(&self) -> ModelInfo {
        let meta = self.predictor.metadata();
        let all = meta.training_in_all();
        ModelInfo {
            label: self.label.clone(),
            path: self.path.display().to_string(),
            digest: self.predictor.digest().to_string(),
            prior: meta.prior.clone(),
            num_features: self.predictor.num_features(),
            parameters: self.predictor.model().num_params(),
            max_context: self.predictor.max_trained_context(),
            training_datasets: all.datasets,
            training_steps: all.steps,
            training_seconds: all.seconds,
            training_runs: meta.lineage.len() + 1,
            training_complete: meta.lineage_complete(),
        }
    }

    /// A mismatch error for this model.
    pub fn mismatch(&self, experiment: &'static str, problem: String) -> ExperimentError {
        ExperimentError::ModelMismatch {
            path: self.path.display().to_string(),
            experiment,
            problem,
        }
    }
}

impl ModelInfo {
    /// One Markdown list item describing the model.
    pub fn describe(&self) -> String {
        format!(
            "`{}` ({}): prior `{}`, {} feature{}, {} parameters, trained on {} datasets ({} steps, {:.0} s{}), contexts up to {}; sha256 `{}`",
            self.label,
            self.path,
            self.prior,
            self.num_features,
            if self.num_features == 1 { "" } else { "s" },
            self.parameters,
            self.training_datasets,
            self.training_steps,
            self.training_seconds,
            match (self.training_runs, self.training_complete) {
                (1, true) => String::new(),
                (n, true) => format!(", {n} runs"),
                (n, false) => format!(
                    ", {n} run{} after a start file whose training is not recorded",
                    if n == 1 { "" } else { "s" }
                ),
            },
            self.max_context,
            short_digest(&self.digest)
        )
    }
}

fn short_digest(d: &str) -> &str {
    &d[..d.len().min(16)]
}

/// The models of a run and where they came from.
#[derive(Debug, Default)]
pub struct ModelSelection {
    /// Models accepted for the experiment.
    pub models: Vec<LoadedModel>,
    /// Files in the models directory that were not used, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Where the models were looked for, for the report.
    pub source: String,
}

/// Chooses the models of a run. Explicit `paths` must all load and pass `accept` (otherwise an
/// error); without them, every `*.pfn` file in `dir` (sorted by name) that loads and passes
/// `accept` is used and the others are listed as skipped. Every model computes on
/// `compute = (threads, precision)` (threads 0: all cores).
pub fn select_models(
    experiment: &'static str,
    paths: &[PathBuf],
    dir: Option<&Path>,
    compute: (usize, Precision),
    accept: impl Fn(&LoadedModel) -> Result<(), String>,
) -> Result<ModelSelection, ExperimentError> {
    let (threads, precision) = compute;
    let load = |p: &Path| {
        LoadedModel::load(p, threads).map(|mut m| {
            m.predictor.set_precision(precision);
            m
        })
    };
    if !paths.is_empty() {
        let mut models = Vec::new();
        for p in paths {
            let m = load(p)?;
            accept(&m).map_err(|problem| m.mismatch(experiment, problem))?;
            models.push(m);
        }
        dedup_labels(&mut models);
        return Ok(ModelSelection {
            models,
            skipped: Vec::new(),
            source: "given with --model".into(),
        });
    }
    let Some(dir) = dir else {
        return Ok(ModelSelection {
            source: "none given (model search disabled)".into(),
            ..ModelSelection::default()
        });
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "pfn"))
            .collect(),
        Err(_) => {
            return Ok(ModelSelection {
                source: format!(
                    "none given; directory {} does not exist or cannot be read",
                    dir.display()
                ),
                ..ModelSelection::default()
            })
        }
    };
    files.sort();
    let mut selection = ModelSelection {
        source: format!("found in {}", dir.display()),
        ..ModelSelection::default()
    };
    for f in files {
        match load(&f) {
            Ok(m) => match accept(&m) {
                Ok(()) => selection.models.push(m),
                Err(reason) => selection.skipped.push((f.display().to_string(), reason)),
            },
            Err(e) => selection
                .skipped
                .push((f.display().to_string(), e.to_string())),
        }
    }
    dedup_labels(&mut selection.models);
    Ok(selection)
}

/// Makes labels unique by falling back to the full path where stems collide.
fn dedup_labels(models: &mut [LoadedModel]) {
    let labels: Vec<String> = models.iter().map(|m| m.label.clone()).collect();
    for (i, m) in models.iter_mut().enumerate() {
        if labels.iter().filter(|l| **l == labels[i]).count() > 1 {
            m.label = m.path.display().to_string();
        }
    }
}

#[cfg(test)]
mod describe_tests {
    use super::*;

    #[test]
    fn a_model_trained_in_stages_is_described_with_all_its_runs() {
        let mut info = ModelInfo {
            label: "m".into(),
            path: "m.pfn".into(),
            digest: "0123456789abcdef0123".into(),
            prior: "gp-hyper-5d".into(),
            num_features: 5,
            parameters: 10,
            max_context: 49,
            training_datasets: 1_440_000,
            training_steps: 45_000,
            training_seconds: 18_231.0,
            training_runs: 1,
            training_complete: true,
        };
        let one = info.describe();
        assert!(
            one.contains("trained on 1440000 datasets (45000 steps, 18231 s), contexts"),
            "{one}"
        );
        info.training_runs = 5;
        assert!(
            info.describe().contains("18231 s, 5 runs)"),
            "{}",
            info.describe()
        );
        info.training_complete = false;
        assert!(
            info.describe()
                .contains("5 runs after a start file whose training is not recorded"),
            "{}",
            info.describe()
        );
    }
}
