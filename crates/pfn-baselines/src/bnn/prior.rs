//! The prior over classification datasets that the BNN baselines assume (spec 4.3), so that
//! experiments draw data from exactly the model SVI and NUTS invert.
//!
//! The prior itself ([`BnnClassificationPrior`]: draw order, labels, x normalisation) lives in
//! [`pfn_prior::bnn_classification`], where the PFN training prior uses it too; it is re-exported
//! here. This module adds [`BnnDatasetSplit`], which cuts a drawn dataset into the context the
//! baselines condition on ([`BnnData`], validated) and the test points.
//!
//! The baselines condition on the **raw** inputs, which the model generated (as in the paper's
//! code). The PFN instead sees inputs z-normalised per feature ([`ContextNormalization`]).

pub use pfn_prior::bnn_classification::{
    BnnClassificationPrior, BnnDataset, ContextNormalization, NORMALIZATION_EPS,
};

use crate::bnn::model::BnnData;
use crate::error::BaselineError;

/// Splitting a [`BnnDataset`] into the baselines' context and the test points.
pub trait BnnDatasetSplit {
    /// Splits into the first `n_context` points (the revealed data) and the rest (the test set:
    /// inputs row-major `m x F` and labels).
    fn split(&self, n_context: usize) -> Result<(BnnData, Vec<f64>, Vec<f64>), BaselineError>;
}

impl BnnDatasetSplit for BnnDataset {
    fn split(&self, n_context: usize) -> Result<(BnnData, Vec<f64>, Vec<f64>), BaselineError> {
        if n_context > self.len() {
            return Err(BaselineError::option(
                "n_context",
                format!(
                    "{n_context} exceeds the {} points of the dataset",
                    self.len()
                ),
            ));
        }
        let f = self.features;
        if self.x.len() != self.len() * f {
            return Err(BaselineError::shape(
                "x",
                format!(
                    "{} values ({} points x {f} features)",
                    self.len() * f,
                    self.len()
                ),
                format!("{} values", self.x.len()),
            ));
        }
        let context = BnnData::new(&self.x[..n_context * f], &self.labels[..n_context], f)?;
        Ok((
            context,
            self.x[n_context * f..].to_vec(),
            self.labels[n_context..].to_vec(),
        ))
    }
}
