//! The PFN training loop and everything around it:
//!
//! * [`config`]: the declarative TOML run configuration with strict key checking and validation;
//! * [`schedule`]: the learning-rate schedule (linear warm-up, then cosine or constant);
//! * [`seeds`]: the derived seeds of a run (validation set, borders, initialisation);
//! * [`atomic`]: atomic file replacement (temp file, fsync, rename);
//! * [`loader`]: a background batch loader with a deterministic per-batch schedule;
//! * [`artifact`]: the single-file model artifact and the training checkpoint (safetensors with
//!   JSON metadata and a SHA-256 digest, written atomically);
//! * [`weights`]: model parameters to and from the artifact's named tensors;
//! * [`head`]: the loss of the output head (Riemann NLL or cross-entropy);
//! * [`bucket_borders`]: equal-mass bucket borders from prior samples;
//! * [`normalisation`]: the inference-time normalisation a prior implies;
//! * [`validation`]: the fixed held-out validation set;
//! * [`observer`]: progress reports of the loop;
//! * [`trainer`]: the training loop itself ([`Trainer`]), with exact resume from checkpoints.
#![warn(missing_docs)]

pub mod artifact;
pub mod atomic;
pub mod bucket_borders;
pub mod config;
pub mod head;
pub mod loader;
pub mod normalisation;
pub mod observer;
pub mod schedule;
pub mod seeds;
pub mod trainer;
pub mod validation;
pub mod weights;

pub use artifact::{
    load_checkpoint, load_model, save_checkpoint, save_model, Architecture, ArtifactError,
    ArtifactProblem, Checkpoint, InputNormalisation, ModelArtifact, ModelMetadata, NamedTensor,
    OutputHead, TensorRef, TrainState, TrainingSpent, XNormalisation, YNormalisation,
};
pub use atomic::write_atomically;
pub use bucket_borders::{
    borders_from_values, estimate_borders, sample_border_values, sample_plan_query_values,
    set_edges, BordersError,
};
pub use config::{BorderEdges, ConfigError, HeadKind, RunConfig, SplitDistribution, TargetKind};
pub use head::Head;
pub use loader::{
    prior_from_config, BatchLoader, BatchPlan, Delivered, LoaderError, LoaderOptions, LoaderStats,
    TrainBatch,
};
pub use normalisation::{
    context_statistics, features_scaled_in_training, normalisation_for_prior,
    scale_features_by_context, standardise_targets_by_context, targets_standardised_in_training,
};
pub use observer::{
    StartInfo, StepReport, StopReason, TrainObserver, TrainSummary, ValidationReport,
};
pub use schedule::{LrSchedule, ScheduleKind};
pub use seeds::{borders_seed, init_seed, validation_seed};
pub use trainer::{
    config_difference, RunOptions, StepRecord, TrainError, Trainer, EXTENSION_CHANGES,
    RESUMABLE_CHANGES,
};
pub use validation::{ValidationError, ValidationSet};
pub use weights::{model_from_tensors, pfn_config, WeightsError};
