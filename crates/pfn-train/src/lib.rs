//! Everything around the PFN training loop that does not need the model internals:
//!
//! * [`config`]: the declarative TOML run configuration with strict key checking and validation;
//! * [`schedule`]: the learning-rate schedule (linear warm-up, then cosine or constant);
//! * [`seeds`]: the derived seeds of a run (validation set, borders, initialisation);
//! * [`atomic`]: atomic file replacement (temp file, fsync, rename);
//! * [`loader`]: a background batch loader with a deterministic per-batch schedule;
//! * [`artifact`]: the single-file model artifact and the training checkpoint (safetensors with
//!   JSON metadata and a SHA-256 digest, written atomically).
#![warn(missing_docs)]

pub mod artifact;
pub mod atomic;
pub mod config;
pub mod loader;
pub mod schedule;
pub mod seeds;

pub use artifact::{
    load_checkpoint, load_model, save_checkpoint, save_model, Architecture, ArtifactError,
    ArtifactProblem, Checkpoint, InputNormalisation, ModelArtifact, ModelMetadata, NamedTensor,
    OutputHead, TensorRef, TrainState, TrainingSpent, XNormalisation, YNormalisation,
};
pub use atomic::write_atomically;
pub use config::{ConfigError, HeadKind, RunConfig, SplitDistribution};
pub use loader::{
    prior_from_config, BatchLoader, BatchPlan, Delivered, LoaderError, LoaderOptions, LoaderStats,
    TrainBatch,
};
pub use schedule::{LrSchedule, ScheduleKind};
pub use seeds::{borders_seed, init_seed, validation_seed};
