//! A training run between files, as `pfn train` and the Python package's `pfn.train` run it: the
//! model file it writes, the checkpoint beside it (`<model>.ckpt`), a fresh start or a continuation
//! from that checkpoint, and the model file written atomically once the budget is spent.
//!
//! Before any work the output paths are checked for writability (so a read-only directory fails
//! now, not at the first checkpoint hours later) and the temporaries of an earlier writer that was
//! killed mid-save are removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pfn_artifact::{load_checkpoint, ArtifactError};
use pfn_prior::Prior;

use crate::config::RunConfig;
use crate::observer::{TrainObserver, TrainSummary};
use crate::trainer::{RunOptions, TrainError, Trainer};

/// The checkpoint written next to a model file: `<model>.ckpt`.
pub fn checkpoint_path(model: &Path) -> PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(".ckpt");
    PathBuf::from(s)
}

/// How a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run (borders, initialisation and validation set from the run seed).
    Fresh,
    /// Continue from the checkpoint beside the model file; the configuration must match it except
    /// for [`crate::RESUMABLE_CHANGES`].
    Resume,
    /// Continue with a larger budget ([`Trainer::extend`]).
    Extend,
}

/// Why a run between files failed; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunFilesError {
    /// An output path cannot be written.
    #[error("{}: cannot write the output here: {source}", .path.display())]
    NotWritable {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A continuation was asked for but there is no checkpoint.
    #[error("no checkpoint at {} to continue from (train without resuming to start a new run)", .path.display())]
    NoCheckpoint {
        /// Where the checkpoint was expected.
        path: PathBuf,
    },
    /// The checkpoint does not load.
    #[error("{}: {source}", .path.display())]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: ArtifactError,
    },
    /// Setting up or running the trainer failed.
    #[error("{context}: {source}")]
    Train {
        /// What was being done (e.g. "resuming from run.pfn.ckpt").
        context: String,
        /// Why (boxed: a training error is large).
        source: Box<TrainError>,
    },
}

/// A finished (or intentionally stopped) run between files.
#[derive(Debug)]
pub struct FileRun {
    /// The trainer after the run (model, history, configuration).
    pub trainer: Trainer,
    /// What the run did.
    pub summary: TrainSummary,
    /// The model file (written only when the budget was spent: [`FileRun::model_written`]).
    pub model: PathBuf,
    /// The checkpoint.
    pub checkpoint: PathBuf,
}

impl FileRun {
    /// Whether the run reached its budget, so the model file was written (by rank 0 in a
    /// data-parallel run).
    pub fn model_written(&self) -> bool {
        self.summary.stop.is_complete()
    }
}

/// Trains `config` into the model file `model` with checkpoints at `<model>.ckpt`, starting as
/// `start` says, with datasets from `prior` when given (else the registry prior of the
/// configuration). `options.checkpoint_path` is set to the checkpoint; its other fields (a stop
/// flag, a step limit, the ranks of a data-parallel run) pass through. In a data-parallel run
/// every rank reads the checkpoint to continue from, and rank 0 alone writes.
pub fn train_to_files(
    config: RunConfig,
    prior: Option<Arc<dyn Prior>>,
    model: &Path,
    start: Start,
    options: RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<FileRun, RunFilesError> {
    let checkpoint = checkpoint_path(model);
    let leader = options.collective.as_ref().is_none_or(|c| c.rank() == 0);
    for path in [model, checkpoint.as_path()].into_iter().filter(|_| leader) {
        pfn_artifact::check_writable(path).map_err(|source| RunFilesError::NotWritable {
            path: path.to_path_buf(),
            source,
        })?;
        pfn_artifact::remove_stale_temporaries(path);
    }
    let mut trainer = match start {
        Start::Fresh => {
            Trainer::new_with_prior(config, prior).map_err(|source| RunFilesError::Train {
                context: "starting the run".into(),
                source: Box::new(source),
            })?
        }
        Start::Resume | Start::Extend => {
            if !checkpoint.exists() {
                return Err(RunFilesError::NoCheckpoint { path: checkpoint });
            }
            let saved =
                load_checkpoint(&checkpoint).map_err(|source| RunFilesError::Checkpoint {
                    path: checkpoint.clone(),
                    source,
                })?;
            let resumed = if start == Start::Extend {
                Trainer::extend_with_prior(config, saved, prior)
            } else {
                Trainer::resume_with_prior(config, saved, prior)
            };
            resumed.map_err(|source| RunFilesError::Train {
                context: format!("resuming from {}", checkpoint.display()),
                source: Box::new(source),
            })?
        }
    };
    let options = RunOptions {
        checkpoint_path: Some(checkpoint.clone()),
        ..options
    };
    let summary = trainer
        .run(&options, observer)
        .map_err(|source| RunFilesError::Train {
            context: "training".into(),
            source: Box::new(source),
        })?;
    if leader && summary.stop.is_complete() {
        trainer
            .save_model(model)
            .map_err(|source| RunFilesError::Train {
                context: format!("writing {}", model.display()),
                source: Box::new(source),
            })?;
    }
    Ok(FileRun {
        trainer,
        summary,
        model: model.to_path_buf(),
        checkpoint,
    })
}
