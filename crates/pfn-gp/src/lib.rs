//! Exact Gaussian-process algebra in f64: kernels, a jittered Cholesky, posterior predictives,
//! the log marginal likelihood with its gradient, and type-II maximum-likelihood fitting.

pub mod cholesky;
pub mod kernel;

pub use cholesky::Cholesky;
pub use kernel::{GpHyper, KernelKind};

/// Errors from GP computations.
#[derive(Debug, thiserror::Error)]
pub enum GpError {
    /// A hyperparameter is out of its domain.
    #[error("invalid GP hyperparameter: {0}")]
    InvalidHyper(String),
    /// Inputs have inconsistent shapes.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An input contains NaN or infinity.
    #[error("non-finite values in {0}")]
    NotFinite(String),
    /// The covariance is not positive definite even with the largest jitter.
    #[error("covariance matrix ({n} x {n}) is not positive definite even with jitter {max_jitter:e}")]
    NotPositiveDefinite {
        /// Matrix size.
        n: usize,
        /// Largest jitter tried.
        max_jitter: f64,
    },
}
