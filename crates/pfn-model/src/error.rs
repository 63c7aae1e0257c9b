//! Errors of the model crate.

use pfn_engine::EngineError;

/// Everything that can go wrong when building, running, saving or loading a PFN.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is invalid.
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument has the wrong number of elements.
    #[error("{argument} has {actual} elements, expected {expected}")]
    LengthMismatch {
        /// The argument.
        argument: &'static str,
        /// The expected number of elements.
        expected: usize,
        /// The number of elements given.
        actual: usize,
    },
    /// An argument is invalid for another reason.
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        /// The argument.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An input contains NaN or an infinity.
    #[error("{argument}[{index}] is not finite ({value})")]
    NonFinite {
        /// The argument.
        argument: &'static str,
        /// Flat index of the first non-finite element.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// `backward` was called without a preceding training-mode `forward` on this workspace, or a
    /// second time for the same forward pass.
    #[error(
        "backward needs a preceding forward in training mode on the same workspace (one backward per forward)"
    )]
    NoForwardState,
    /// A weight file lacks a tensor the architecture needs.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// The tensor name, as used in the file.
        name: String,
    },
    /// A weight file has a tensor the architecture does not use.
    #[error("unexpected tensor {name} (shape {shape:?})")]
    UnexpectedTensor {
        /// The tensor name, as used in the file.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor's shape disagrees with the architecture.
    #[error("tensor {name} has shape {actual:?}, the architecture needs {expected:?}")]
    TensorShape {
        /// The tensor name, as used in the file.
        name: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        actual: Vec<usize>,
    },
    /// A tensor is not stored as 32-bit floats.
    #[error("tensor {name} has dtype {dtype}, expected F32")]
    TensorDtype {
        /// The tensor name, as used in the file.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// No parameter of this name exists.
    #[error("no parameter named {name}")]
    UnknownParameter {
        /// The requested name.
        name: String,
    },
    /// The safetensors data could not be parsed.
    #[error("safetensors: {0}")]
    Safetensors(String),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The engine failed (thread pool creation).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
