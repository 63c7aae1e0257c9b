//! The PFN model file and the rules it fixes for every user of a model.
//!
//! Everything that reads a model (inference, the server, the command line, the experiments) needs
//! only this crate, not the training crate: the file carries the run configuration as JSON that it
//! does not interpret (`pfn-train` writes and reads it as its `RunConfig`).
//!
//! * [`file`](mod@file): the model artifact and the training checkpoint: single, self-describing
//!   safetensors files with JSON metadata and a SHA-256 content digest, written atomically and
//!   deterministically ([`save_model`], [`load_model`], [`save_checkpoint`], [`load_checkpoint`]);
//! * [`metadata`]: what the file says about its model: [`Architecture`], [`OutputHead`] (with the
//!   conversion to and from the Riemann [`pfn_distribution::BarDistribution`]),
//!   [`InputNormalisation`], the training budget and the run configuration
//!   ([`ModelMetadata`]);
//! * [`weights`]: model parameters to and from the file's named tensors, and the transformer
//!   configuration an architecture describes;
//! * [`normalise`]: how data are mapped into a model's range with the statistics of the context
//!   rows, and predictions mapped back, plus the zero-padding rule of models trained with a
//!   variable number of features ([`FeaturePadding`]). Training applies the same rules to prior
//!   data (so a model is trained the way it is used) and inference applies them to user data;
//!   this module is the one implementation both call;
//! * [`atomic`]: atomic file replacement (temporary file, fsync, rename), used for every file the
//!   workspace writes.
#![warn(missing_docs)]

pub mod atomic;
pub mod file;
pub mod metadata;
pub mod normalise;
pub mod weights;

pub use atomic::{check_writable, remove_stale_temporaries, write_atomically};
pub use file::{
    load_checkpoint, load_model, parse_model, save_checkpoint, save_model, ArtifactError,
    ArtifactProblem, Checkpoint, ModelArtifact, NamedTensor, TensorRef, TrainState,
    CHECKPOINT_FORMAT, FORMAT_VERSION, MODEL_FORMAT,
};
pub use metadata::{
    Architecture, EarlierRun, InputNormalisation, ModelMetadata, OutputHead, TrainingSpent,
    XNormalisation, YNormalisation,
};
pub use normalise::{FeaturePadding, FeatureScaler, NormaliseError, TargetScaler};
pub use weights::{fill_flat, model_from_tensors, named_views, pfn_config, WeightsError};
