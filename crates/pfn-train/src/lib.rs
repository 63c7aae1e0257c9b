//! The PFN training loop and everything around it:
//!
//! * [`config`]: the declarative TOML run configuration with strict key checking and validation;
//! * [`schedule`]: the learning-rate schedule (linear warm-up, then cosine or constant);
//! * [`seeds`]: the derived seeds of a run (validation set, borders, initialisation);
//! * [`loader`]: a background batch loader with a deterministic per-batch schedule;
//! * [`model_file`]: the run configuration in the model file (the metadata of a trained model,
//!   and the checked configuration of a checkpoint to resume);
//! * [`head`]: the loss of the output head (Riemann NLL or cross-entropy);
//! * [`lineage`]: the earlier runs of a model trained in stages, recorded in its file;
//! * [`bucket_borders`]: equal-mass bucket borders from prior samples;
//! * [`normalisation`]: the inference-time normalisation a prior implies;
//! * [`validation`]: the fixed held-out validation set;
//! * [`observer`]: progress reports of the loop;
//! * [`run_files`]: a run between files (model file, checkpoint beside it, fresh or continued), as
//!   `pfn train` and the Python package's `pfn.train` run it;
//! * [`collective`]: data-parallel training over several processes (the seam MPI plugs into);
//! * [`trainer`]: the training loop itself ([`Trainer`]), with exact resume from checkpoints.
//!
//! The model file itself (format, metadata, weights, head, normalisation, digest, atomic writes)
//! is the crate `pfn-artifact`, which every reader of a model uses without this crate; its items
//! are re-exported here ([`artifact`], [`atomic`], [`weights`] and at the crate root) so that
//! training code and older import paths keep working.
#![warn(missing_docs)]

/// The model file, re-exported from `pfn-artifact` (formerly this crate's `artifact` module).
pub use pfn_artifact as artifact;
/// Atomic file replacement, re-exported from `pfn-artifact`.
pub use pfn_artifact::atomic;
/// Model parameters to and from named tensors, re-exported from `pfn-artifact`.
pub use pfn_artifact::weights;

pub mod bucket_borders;
pub mod collective;
pub mod config;
pub mod head;
pub mod lineage;
pub mod loader;
pub mod model_file;
pub mod normalisation;
pub mod observer;
pub mod run_files;
pub mod schedule;
pub mod seeds;
pub mod trainer;
pub mod validation;

pub use bucket_borders::{
    borders_from_values, estimate_borders, sample_border_values, sample_plan_query_values,
    set_edges, BordersError,
};
pub use collective::{Collective, CollectiveError, Shard, SingleProcess};
pub use config::{
    BorderEdges, ConfigError, HeadKind, RunConfig, SplitDistribution, TailKind, TargetKind,
    YEncoding, DEFAULT_PARETO_TAIL_INDEX,
};
pub use head::Head;
pub use loader::{
    prior_from_config, BatchLoader, BatchPlan, Delivered, LoaderError, LoaderOptions, LoaderStats,
    TrainBatch,
};
pub use model_file::{architecture_of, config_json, model_metadata, run_config_of};
pub use normalisation::{
    context_statistics, feature_normalisation_in_training, feature_padding_of,
    features_scaled_in_training, normalisation_for_prior, scale_features_by_context,
    standardise_targets_by_context, targets_standardised_in_training,
};
pub use observer::{
    StartInfo, StepPhases, StepReport, StopReason, TrainObserver, TrainSummary, ValidationReport,
};
pub use pfn_artifact::{
    load_checkpoint, load_model, model_from_tensors, pfn_config, save_checkpoint, save_model,
    write_atomically, Architecture, ArtifactError, ArtifactProblem, Checkpoint, FeaturePadding,
    InputNormalisation, ModelArtifact, ModelMetadata, NamedTensor, OutputHead, TensorRef,
    TrainState, TrainingSpent, WeightsError, XNormalisation, YNormalisation,
};
pub use run_files::{checkpoint_path, train_to_files, FileRun, RunFilesError, Start};
pub use schedule::{LrSchedule, ScheduleKind};
pub use seeds::{borders_seed, init_seed, validation_seed};
pub use trainer::{
    config_difference, RunOptions, StepRecord, TrainError, Trainer, DIGEST_EVERY,
    EXTENSION_CHANGES, RESUMABLE_CHANGES,
};
pub use validation::{ValidationError, ValidationSet};
