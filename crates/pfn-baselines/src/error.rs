//! The error type of every baseline in this crate.

/// Everything that can go wrong when configuring or running a baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// A dataset or sample set that must not be empty is empty.
    #[error("`{what}` is empty: {reason}")]
    Empty {
        /// The argument (e.g. `x`, `chains`).
        what: String,
        /// Why at least one element is needed.
        reason: String,
    },
    /// An argument has the wrong length.
    #[error("shape mismatch in `{what}`: expected {expected}, got {actual}")]
    Shape {
        /// The argument (e.g. `y_test`).
        what: String,
        /// The expected length or shape, in words.
        expected: String,
        /// The actual length or shape, in words.
        actual: String,
    },
    /// An argument contains NaN or infinity.
    #[error("`{what}[{index}]` = {value} is not finite")]
    NotFinite {
        /// The argument.
        what: String,
        /// Flat index of the first offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A class label is neither 0 nor 1.
    #[error("`{what}[{index}]` = {value} is not a binary class label (0 or 1)")]
    InvalidLabel {
        /// The argument.
        what: String,
        /// Index of the offending label.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// An option is out of its domain.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option (e.g. `draws`, `noise_floor`).
        name: String,
        /// What is wrong, including the offending value.
        reason: String,
    },
    /// The sampler failed (an unrecoverable log-density error, or no finite starting point).
    #[error("sampler failed: {0}")]
    Sampler(String),
    /// An error of the exact GP algebra.
    #[error(transparent)]
    Gp(#[from] pfn_gp::GpError),
    /// An error of a dataset prior.
    #[error(transparent)]
    Prior(#[from] pfn_prior::PriorError),
}

impl BaselineError {
    /// Shorthand for [`BaselineError::InvalidOption`].
    pub fn option(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`BaselineError::Shape`].
    pub fn shape(what: impl Into<String>, expected: impl ToString, actual: impl ToString) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    /// Shorthand for [`BaselineError::Empty`].
    pub fn empty(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Empty {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Checks that every value of `values` is finite.
pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<(), BaselineError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(BaselineError::NotFinite {
            what: what.into(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks a row-major matrix with `cols` columns: finite values and a whole number of rows.
/// Returns the number of rows.
pub(crate) fn check_matrix(
    what: &str,
    values: &[f64],
    cols: usize,
) -> Result<usize, BaselineError> {
    if cols == 0 {
        return Err(BaselineError::option(
            "d",
            format!("`{what}` needs at least one column, got d = 0"),
        ));
    }
    if !values.len().is_multiple_of(cols) {
        return Err(BaselineError::shape(
            what,
            format!("a multiple of {cols} values (rows x {cols} columns)"),
            format!("{} values", values.len()),
        ));
    }
    check_finite(what, values)?;
    Ok(values.len() / cols)
}
