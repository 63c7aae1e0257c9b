//! Priors over datasets for training Prior-Data Fitted Networks (Müller et al., ICLR 2022).
//!
//! A [`Prior`] samples one synthetic dataset into caller-provided buffers; its provided method
//! [`Prior::sample_batch`] fills a batch-first [`Batch`] in parallel with rayon, giving every dataset its
//! own random stream ([`rng::dataset_rng`]), so a batch is a pure function of
//! `(seed, batch_index, batch, seq_len, num_features)` whatever the thread count.
//!
//! Priors: [`GpPrior`] (fixed hyperparameters), [`GpHyperPrior`] (Gamma hyper-priors), [`LinearPrior`]
//! (ridge and the 1-D toy), [`MlpPrior`] (random MLP / "BNN"), [`BnnClassificationPrior`] (the paper's
//! Fig. 5 BNN classification prior, shared with the baselines), the tabular classification priors
//! of the paper's §6 extended to multi-class labels ([`TabularBnnPrior`], [`TabularGpPrior`], their
//! shared machinery in [`tabular`]), the stroke prior of few-shot image episodes ([`StrokePrior`],
//! the paper's §7), and the wrappers [`Binarized`]
//! (classification) and [`VariableFeatures`] (zero-padding). [`PRIORS`] is the registry: one
//! [`PriorEntry`] per named prior with its constructor and facts (normalisation, reference
//! posterior, task, baselines); [`prior_by_name`] builds a named prior and [`prior_entry`] looks
//! up its facts; [`split`] samples split points. Nothing here depends on a neural-network crate.
//!
//! # A user-defined prior
//!
//! Implement [`Prior::sample_dataset`] and [`Prior::default_num_features`]; batching comes for free.
//!
//! ```
//! use pfn_prior::{DatasetInfo, DatasetMut, DatasetPosition, Hyperparameters, Prior, PriorError};
//! use pfn_prior::rng::PriorRng;
//! use rand::Rng;
//!
//! /// y = sin(f x) with a random frequency f ~ U[1, 5) and x ~ U[0, 1).
//! struct Sine;
//!
//! impl Prior for Sine {
//!     fn default_num_features(&self) -> usize { 1 }
//!     fn feature_range(&self) -> (usize, usize) { (1, 1) }
//!     fn sample_dataset(
//!         &self,
//!         rng: &mut PriorRng,
//!         _position: &DatasetPosition,
//!         mut data: DatasetMut<'_>,
//!     ) -> Result<DatasetInfo, PriorError> {
//!         let freq: f64 = rng.random_range(1.0..5.0);
//!         let (x, y, target_y) = data.parts();
//!         for ((xi, yi), ti) in x.iter_mut().zip(y.iter_mut()).zip(target_y.iter_mut()) {
//!             *xi = rng.random::<f32>();
//!             *yi = (freq * *xi as f64).sin() as f32;
//!             *ti = *yi;
//!         }
//!         Ok(DatasetInfo {
//!             features_used: 1,
//!             hyperparameters: Hyperparameters::Custom { value: serde_json::json!({ "freq": freq }) },
//!         })
//!     }
//! }
//!
//! let batch = Sine.sample_batch(0, 0, 8, 50, 1)?;
//! assert_eq!(batch.x.len(), 8 * 50);
//! assert!(batch.y.iter().all(|v| v.abs() <= 1.0));
//! assert!(Sine.sample_batch(0, 0, 8, 50, 2).is_err()); // more features than the prior supports
//! # Ok::<(), PriorError>(())
//! ```
#![warn(missing_docs)]

pub mod bnn_classification;
pub mod classification;
pub mod error;
mod fastmath;
pub mod features;
pub mod gamma;
pub mod gp;
pub mod gp_draw;
pub mod gp_hyper;
pub mod hyperparameters;
pub mod inputs;
pub mod linear;
pub mod mlp;
pub mod posterior_targets;
pub mod prior;
pub mod registry;
pub mod rng;
pub mod split;
pub mod strokes;
pub mod tabular;
pub mod tabular_bnn;
pub mod tabular_gp;
pub mod tabular_inputs;

pub use bnn_classification::{
    BnnArchitecture, BnnClassificationPrior, BnnDataset, ContextNormalization,
};
pub use classification::{BinarizeRule, Binarized};
pub use error::PriorError;
pub use features::{FeatureDraw, FeatureScaling, VariableFeatures};
pub use gamma::GammaPrior;
pub use gp::GpPrior;
pub use gp_draw::{covariance_at, sample_gp_at};
pub use gp_hyper::{GpHyperPrior, GpHyperPriorConfig};
pub use hyperparameters::{Hyperparameters, LinearDraw, MlpDraw};
pub use linear::LinearPrior;
pub use mlp::{Activation, MlpConfig, MlpPrior};
pub use posterior_targets::{query_posterior, QueryPosterior, LATENT_CLASSES_KEY};
pub use prior::{check_finite_dataset, Batch, DatasetInfo, DatasetMut, DatasetPosition, Prior};
pub use registry::{
    prior_by_name, prior_entry, registered_prior, Baseline, BuildWithParams, FeatureNormalisation,
    Normalisation, PriorEntry, PriorParams, ReferencePosterior, TargetNormalisation, TaskKind,
    PRIORS,
};
pub use split::{SplitKind, SplitSampler};
pub use strokes::{StrokeConfig, StrokePrior, StrokesDraw};
pub use tabular::{
    ClassAssignment, ClassLabels, LatentClasses, ScaledBeta, UsedFeatures, TABULAR_MAX_CLASSES,
    TABULAR_MAX_FEATURES,
};
pub use tabular_bnn::{TabularBnnConfig, TabularBnnDraw, TabularBnnPrior};
pub use tabular_gp::{TabularGpConfig, TabularGpDraw, TabularGpPrior};
pub use tabular_inputs::TabularInputs;
