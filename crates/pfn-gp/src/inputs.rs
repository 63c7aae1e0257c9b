//! Validation of user-supplied inputs, targets and hyperparameters.

use crate::{GpError, GpHyper};

/// Checks a row-major input matrix with `d` columns and returns its number of rows.
pub(crate) fn check_inputs(name: &str, x: &[f64], d: usize) -> Result<usize, GpError> {
    if d == 0 {
        return Err(GpError::Shape(format!(
            "{name}: input dimension d must be >= 1, got 0"
        )));
    }
    if !x.len().is_multiple_of(d) {
        return Err(GpError::Shape(format!(
            "{name} has {} values, which is not a multiple of d = {d}",
            x.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(GpError::NotFinite(format!(
            "{name}[row {}, column {}] = {}",
            i / d,
            i % d,
            x[i]
        )));
    }
    Ok(x.len() / d)
}

/// Checks a target vector: expected length and finite values.
pub(crate) fn check_targets(name: &str, y: &[f64], expected: usize) -> Result<(), GpError> {
    if y.len() != expected {
        return Err(GpError::Shape(format!(
            "{name} has {} values, expected {expected} (one per input row)",
            y.len()
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(GpError::NotFinite(format!("{name}[{i}] = {}", y[i])));
    }
    Ok(())
}

/// Validates hyperparameters and that they fit `d` input dimensions.
pub(crate) fn check_hyper(hyper: &GpHyper, d: usize) -> Result<(), GpError> {
    hyper.validate()?;
    hyper.check_dim(d)
}
