//! The paper's BNN classification experiment (spec 4.3, Fig. 5): the model, its prior over
//! datasets, and the SVI and NUTS baselines with their predictives.
//!
//! The data model (architecture, weight layout, forward pass, the prior and its normalisation)
//! is defined in [`pfn_prior::bnn_classification`] and re-exported here at its former paths.

pub mod mcmc;
pub mod model;
pub mod predictive;
pub mod prior;
pub mod svi;

pub use mcmc::{fit_bnn_nuts, BnnNutsResult};
pub use model::{class1_probabilities, forward_logits, BnnArchitecture, BnnData, BnnPosterior};
pub use predictive::{binary_cross_entropy, BnnPredictive, PredictiveRule};
pub use prior::{BnnClassificationPrior, BnnDataset, BnnDatasetSplit, ContextNormalization};
pub use svi::{fit_svi, SviOptions, SviResult};
