//! Bayesian baselines that the paper compares PFNs against.
#![warn(missing_docs)]

pub mod diagnostics;
pub mod error;
pub mod nuts;

pub use error::BaselineError;
