//! The error type shared by every prior, wrapper and sampler in this crate.

/// Everything that can go wrong when configuring a prior or sampling from it.
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// A configuration value or call argument is out of its domain.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument or configuration field (e.g. `seq_len`, `lengthscales[2]`).
        name: String,
        /// What is wrong, including the offending value.
        reason: String,
    },
    /// The requested number of features is outside what the prior supports.
    #[error("prior `{prior}` supports {min}..={max} features, but {requested} were requested")]
    FeatureCount {
        /// Which prior refused.
        prior: String,
        /// Smallest supported number of features.
        min: usize,
        /// Largest supported number of features.
        max: usize,
        /// What the caller asked for.
        requested: usize,
    },
    /// A buffer handed to a prior has the wrong length.
    #[error("shape mismatch in `{what}`: expected {expected} values, got {actual}")]
    Shape {
        /// The buffer (e.g. `x`, `target_y`).
        what: String,
        /// Required length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// `prior_by_name` was given a name it does not know.
    #[error("unknown prior `{name}`; available priors: {available}")]
    UnknownPrior {
        /// The name asked for.
        name: String,
        /// Comma-separated list of registered names.
        available: String,
    },
    /// A prior produced NaN or infinity (e.g. an overflowing MLP); the batch is rejected.
    #[error("dataset {dataset}: prior produced a non-finite value in `{what}`")]
    NonFinite {
        /// Index of the dataset within the batch.
        dataset: usize,
        /// Which tensor (`x`, `y` or `target_y`).
        what: &'static str,
    },
    /// An error from the Gaussian-process algebra (invalid hyperparameters, failed Cholesky).
    #[error(transparent)]
    Gp(#[from] pfn_gp::GpError),
    /// A prior defined outside Rust (e.g. a Python function) failed or returned bad data.
    #[error("prior `{prior}`: {message}")]
    Failed {
        /// The prior's name.
        prior: String,
        /// What went wrong (for a Python prior: the exception type and message).
        message: String,
    },
}

impl PriorError {
    /// Shorthand for [`PriorError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn check_positive(name: &str, value: f64) -> Result<(), PriorError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PriorError::invalid(
            name,
            format!("{value} must be finite and > 0"),
        ))
    }
}

/// Checks that `value` is finite and non-negative.
pub(crate) fn check_non_negative(name: &str, value: f64) -> Result<(), PriorError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PriorError::invalid(
            name,
            format!("{value} must be finite and >= 0"),
        ))
    }
}

/// Checks that `value` is a probability, in `[0, 1]` (NaN is not).
pub(crate) fn check_probability(name: &str, value: f64) -> Result<(), PriorError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(PriorError::invalid(
            name,
            format!("must be a probability in [0, 1], got {value}"),
        ))
    }
}
