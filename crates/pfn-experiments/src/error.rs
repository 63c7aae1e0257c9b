//! The error type of the experiments: every variant displays as one line naming the option,
//! file, dataset or method concerned.

use pfn_baselines::BaselineError;
use pfn_gp::GpError;
use pfn_infer::PredictError;
use pfn_prior::PriorError;

/// Errors of `pfn reproduce`.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// An option has an invalid value or does not apply to the chosen experiment.
    #[error("invalid {option}: {problem}")]
    Option {
        /// The option, as written on the command line (e.g. `--datasets`).
        option: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// A model file could not be loaded.
    #[error("cannot load model {path}: {source}")]
    LoadModel {
        /// The file.
        path: String,
        /// What the loader reported.
        source: PredictError,
    },
    /// A model does not fit the experiment (wrong prior, head, features or trained context).
    #[error("model {path} cannot be used for {experiment}: {problem}")]
    ModelMismatch {
        /// The file.
        path: String,
        /// The experiment.
        experiment: &'static str,
        /// What does not fit.
        problem: String,
    },
    /// The prior could not be built or sampled.
    #[error("prior '{prior}': {source}")]
    Prior {
        /// The prior's name.
        prior: String,
        /// What it reported.
        source: PriorError,
    },
    /// The exact GP failed on a dataset.
    #[error("exact GP on dataset {dataset} with {n} context points: {source}")]
    Gp {
        /// Dataset index.
        dataset: usize,
        /// Context size.
        n: usize,
        /// What it reported.
        source: GpError,
    },
    /// A baseline (type-II ML, NUTS, SVI) failed on a dataset.
    #[error("{method} on dataset {dataset}: {source}")]
    Baseline {
        /// The method, e.g. `NUTS 256+256 (n = 10)`.
        method: String,
        /// Dataset index.
        dataset: usize,
        /// What it reported.
        source: BaselineError,
    },
    /// The PFN failed on a dataset.
    #[error("PFN {model} on dataset {dataset}: {source}")]
    Predict {
        /// The model's label.
        model: String,
        /// Dataset index.
        dataset: usize,
        /// What it reported.
        source: PredictError,
    },
    /// A dataset file could not be read or parsed.
    #[error("dataset {path}: {problem}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {path}: {source}")]
    Plot {
        /// The output file.
        path: String,
        /// What the plotting crate reported.
        source: pfn_plot::PlotError,
    },
    /// The machine-readable results could not be serialised.
    #[error("cannot serialise the results: {0}")]
    Json(#[from] serde_json::Error),
}

impl ExperimentError {
    /// An [`ExperimentError::Option`].
    pub fn option(option: &'static str, problem: impl Into<String>) -> Self {
        Self::Option {
            option,
            problem: problem.into(),
        }
    }
}
