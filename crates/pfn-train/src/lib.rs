//! Everything around the PFN training loop that does not need the model internals:
//!
//! * [`config`]: the declarative TOML run configuration with strict key checking and validation;
//! * [`schedule`]: the learning-rate schedule (linear warm-up, then cosine or constant);
//! * [`seeds`] and [`split`]: deterministic random streams and the split-point sampler;
//! * [`loader`]: a background batch loader with a deterministic per-batch schedule;
//! * [`artifact`]: the single-file model artifact and the training checkpoint (safetensors with
//!   JSON metadata and a SHA-256 digest, written atomically).
#![warn(missing_docs)]

pub mod config;
pub mod schedule;
pub mod seeds;
pub mod split;

pub use config::{ConfigError, HeadKind, RunConfig};
pub use schedule::{LrSchedule, ScheduleKind};
pub use seeds::{stream_rng, stream_seed, StreamDomain};
pub use split::{SplitError, SplitKind, SplitSampler};
