//! Bayesian baselines that the paper compares PFNs against (Müller et al., ICLR 2022, §5.2–5.3).
//!
//! * GPs with hyper-priors (spec 4.2): [`fit_gp_nuts`] samples the hyperparameters with NUTS
//!   (the `nuts-rs` crate) and predicts with the mixture of exact GP predictives
//!   ([`GpMixturePredictive`]); [`fit_type2_baseline`] (type-II ML / MAP) and
//!   [`exact_gp_baseline`] (the oracle with the true hyperparameters) share that interface.
//! * The BNN classification experiment (spec 4.3): the model and its explicit gradient
//!   ([`bnn::BnnPosterior`]), Bayes-by-backprop SVI ([`bnn::fit_svi`]), NUTS over the weights
//!   ([`bnn::fit_bnn_nuts`]), predictive rules and the BCE score ([`bnn::BnnPredictive`]), and
//!   the prior over datasets they assume ([`bnn::BnnClassificationPrior`]).
//! * Classical classifiers for the tabular experiment (spec 6.4, Table 6), each tuning the
//!   paper's grid by cross-validation: logistic regression, kNN, a Laplace GP classifier and
//!   XGBoost through a Python helper ([`classifiers`], [`classifiers::paper_baselines`]).
//! * Convergence diagnostics written here: split R-hat and the effective sample size
//!   ([`diagnostics`]).
//!
//! Everything is f64, serial per dataset (parallelise across datasets) and seeded.
#![warn(missing_docs)]

pub mod bnn;
pub mod classifiers;
pub mod diagnostics;
pub mod error;
pub mod gp_nuts;
pub mod gp_point;
pub mod gp_predictive;
mod logistic;
pub mod nuts;

pub use classifiers::{paper_baselines, ClassData, Classifier, ClassifierError};
pub use error::BaselineError;
pub use gp_nuts::{
    fit_gp_nuts, sample_gp_posterior, GpHyperDensity, GpNutsOptions, GpNutsPosterior, GpNutsResult,
    NoiseModel,
};
pub use gp_point::{exact_gp_baseline, fit_type2_baseline, paper_type2_options, PointBaseline};
pub use gp_predictive::GpMixturePredictive;
pub use nuts::{
    run_nuts, ChainTrace, DensityError, LogDensity, NutsDiagnostics, NutsOptions, NutsRun,
};
