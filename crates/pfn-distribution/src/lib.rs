//! The Riemann ("bar") distribution, the regression head of a PFN, and the classification heads.
//!
//! * [`borders`]: bucket borders with equal prior mass (from prior samples) or equal width.
//! * [`BarDistribution`]: borders plus [`Support`] (bounded, or full support with half-normal or
//!   generalised Pareto tails, see [`tail`]), the per-row loss (negative log density) and its gradient, and [`BarDistribution::predict`]
//!   giving a [`BarPrediction`] with pdf, cdf, icdf, intervals, mean, median, mode, variance,
//!   entropy, sampling, the acquisition functions EI, PI and UCB, and re-binning onto other
//!   borders ([`average_on`] ensembles predictions made on different borders).
//! * [`BarDistribution::nll_and_grad`]: the batched, parallel training kernel over `rows x K` logits.
//! * [`BarDistribution::gaussian_cross_entropy_and_grad`]: the same kernel against a whole Gaussian
//!   target `N(mu, s^2)` (posterior training targets), closed form.
//! * [`classification`]: sigmoid/BCE-with-logits and softmax cross-entropy losses with gradients.
//! * [`class_metrics`]: scores of class-probability predictions (log loss, accuracy, ROC AUC,
//!   calibration error and reliability bins).
//!
//! Logits are f32 (as produced by the network); all distribution arithmetic is f64.
//!
//! ```
//! use pfn_distribution::{quantile_borders, BarDistribution};
//!
//! // Borders with equal prior mass from prior samples, half-normal tails.
//! let ys: Vec<f64> = (0..1000).map(|i| (i as f64 / 1000.0 - 0.5) * 4.0).collect();
//! let dist = BarDistribution::full_support(quantile_borders(&ys, 10, None)?)?;
//! let k = dist.num_buckets();
//!
//! // One row of network logits -> predictive statistics.
//! let pred = dist.predict(&vec![0.0f32; k])?;
//! assert!(pred.median().abs() < 1e-2);
//! let (lo, hi) = pred.interval(0.9)?;
//! assert!(lo < pred.mean() && pred.mean() < hi);
//!
//! // Training: two rows, the second target is NaN and ignored.
//! let logits = vec![0.0f32; 2 * k];
//! let mut grad = vec![0.0f32; 2 * k];
//! let total = dist.nll_and_grad(&logits, &[0.3, f32::NAN], &mut grad, 1.0)?;
//! assert!((total - dist.nll(&logits[..k], 0.3)?).abs() < 1e-6);
//! # Ok::<(), pfn_distribution::DistributionError>(())
//! ```
#![warn(missing_docs)]

mod acquisition;
mod bar;
pub mod borders;
pub mod class_metrics;
pub mod classification;
mod error;
mod gaussian_target;
mod loss;
pub mod normal;
mod prediction;
mod rebin;
mod softmax;
pub mod tail;

pub use acquisition::DEFAULT_UCB_REST_PROBABILITY;
pub use bar::{BarDistribution, BarDistributionConfig, IcdfConvention, Support};
pub use borders::{equal_width_borders, quantile_borders, validate_borders};
pub use error::{DistributionError, Result};
pub use gaussian_target::GaussianBucketMasses;
pub use prediction::BarPrediction;
pub use rebin::average_on;
pub use tail::{Tail, TailShape, TailSide, HALF_NORMAL_MEDIAN};
