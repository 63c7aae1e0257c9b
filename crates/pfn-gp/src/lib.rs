//! Exact Gaussian-process algebra in f64: kernels, a jittered Cholesky, posterior predictives,
//! the log marginal likelihood with its gradient, and type-II maximum-likelihood fitting.
//!
//! Inputs are row-major `n x d` slices, targets are length-`n` slices. All code is serial:
//! callers that evaluate many datasets parallelise across datasets.
#![warn(missing_docs)]

pub mod cholesky;
pub mod hyper_prior;
mod inputs;
pub mod kernel;
pub mod lbfgs;
pub mod lml;
pub mod log_params;
pub mod posterior;
pub mod sequential;
pub mod special;
pub mod type2;

pub use cholesky::Cholesky;
pub use hyper_prior::{GammaPrior, HyperPrior, PriorSpace};
pub use kernel::{GpHyper, KernelKind};
pub use lbfgs::{minimize_bounded, LbfgsOptions, LbfgsResult, StopReason};
pub use lml::{log_marginal_likelihood, log_marginal_likelihood_grad, LmlEvaluator};
pub use posterior::{posterior, ExactGp, Prediction};
pub use sequential::{sequential_predictive, SequentialPredictive};
pub use type2::{fit_type2, HyperBounds, StartDistribution, Type2Fit, Type2Options};

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
    #[error(
        "covariance matrix ({n} x {n}) is not positive definite even with jitter {max_jitter:e}"
    )]
    NotPositiveDefinite {
        /// Matrix size.
        n: usize,
        /// Largest jitter tried.
        max_jitter: f64,
    },
    /// An option of an algorithm (optimiser, hyper-prior, start distribution) is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The optimiser could not evaluate the objective at any starting point.
    #[error("optimisation failed: {0}")]
    OptimizationFailed(String),
}
