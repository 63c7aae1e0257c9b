//! The GP prior with hyper-priors (paper §5.2): per dataset, draw a noise variance, an outputscale and
//! (ARD) lengthscales from Gamma hyper-priors, then sample like the fixed GP prior.
//!
//! # Noise floor
//!
//! The paper's noise hyper-prior Γ(1e-4, 1) has mean 1e-4 but almost all of its mass sits at tiny
//! values: P(noise < 1e-4) ≈ (1e-4)^(1e-4) / Γ(1 + 1e-4) ≈ 0.999, and most draws underflow to 0 or to
//! subnormals. Such a covariance is numerically singular for close inputs, and a Bayesian baseline
//! (NUTS) on the log noise diverges (see the project's reference results). The drawn noise is therefore
//! clamped, `noise = max(draw, noise_floor)`, with a default floor of 1e-4 that keeps `K + noise I`
//! well conditioned; the recorded hyperparameters are the clamped values actually used. Set the floor
//! to 0 to sample the raw prior (the Cholesky then relies on jitter escalation).
//!
//! # Tied inputs
//!
//! Real tables repeat values: integer and categorical columns, rounded measurements, the same point
//! observed twice. Inputs drawn from U[0, 1) never tie, so a model trained only on them has never
//! seen a context whose rows share their x, and after the context's min-max scaling such a context
//! (say three rows at one x and three at another) sits exactly at 0 and 1. With
//! [`GpHyperPrior::with_tied_inputs`]`(p)` a share `p` of the datasets has every input column
//! snapped to a grid of `k ~ U{2..=8}` values (`⌊u k⌋ / (k − 1)`, drawn per column), so rows tie;
//! the GP is then drawn at the snapped inputs, whose noise makes tied rows differ in y. `p = 0` (the
//! default) draws exactly the datasets of the plain prior. With
//! [`GpHyperPrior::with_tied_noiseless`]`(q)` a share `q` of the tied datasets has its noise set to
//! the floor, so that tied rows agree in y: the Bayes answer to such a context is narrow at the tied
//! inputs, which the noise hyper-prior alone draws rarely (P(noise < 1e-3) ≈ 0.018 under
//! Γ(0.5, rate 0.25)).
//!
//! # Repeated rows
//!
//! Grid snapping ties single columns, but with several features whole rows rarely coincide, so a
//! noiseless snapped dataset often looks like continuous data, and a model learns a lower noise for
//! all data. [`GpHyperPrior::with_repeated_rows`]`(r, q)` instead makes a share `r` of the datasets
//! repeat whole rows: a pool of `m ~ U{1..=8}` points is drawn from U[0, 1)^d, and each row is,
//! with probability `s ~ U[0.5, 1)` (drawn per dataset), replaced by a pool point chosen
//! uniformly; the other rows keep their own draw, so queries fall both on and between the repeated
//! points. A share `q` of these datasets has its noise at the floor. The repeats show in a context
//! of a few rows whatever the number of features, though a model whose attention averages over the
//! rows sees only uneven repeats (every row repeated k times looks like each row once). Datasets
//! are repeated-row or grid-snapped, never both (the repeated-row draw comes first). Measured
//! effect on the shipped `gp-hyper` (`docs/results/gp-hyper/repeated-rows/`): with `r = 0.15`, the
//! same gap on continuous data and better-calibrated intervals on real tables.

use pfn_gp::{GpHyper, HyperPrior, KernelKind, PriorSpace};
use rand::Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_probability, PriorError};
use crate::gamma::GammaPrior;
use crate::gp_draw::sample_gp_at;
use crate::hyperparameters::Hyperparameters;
use crate::inputs::fill_uniform;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// Configuration of [`GpHyperPrior`]; every field is public and validated by [`GpHyperPrior::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpHyperPriorConfig {
    /// Kernel family (the paper: Matérn-5/2).
    pub kernel: KernelKind,
    /// Hyper-prior of the noise variance.
    pub noise: GammaPrior,
    /// Hyper-prior of the outputscale (signal variance).
    pub outputscale: GammaPrior,
    /// Hyper-prior of each lengthscale.
    pub lengthscale: GammaPrior,
    /// Lower clamp on the drawn noise variance (see the module docs).
    pub noise_floor: f64,
    /// One lengthscale per feature (true) or one shared lengthscale (false).
    pub ard: bool,
    /// Number of features used when the caller does not choose.
    pub default_num_features: usize,
}

impl GpHyperPriorConfig {
    /// The paper's values (App. F, BoTorch `SingleTaskGP` defaults except the noise prior): Matérn-5/2
    /// ARD, noise Γ(1e-4, 1), outputscale Γ(2, 0.15), lengthscale Γ(3, 6); noise floor 1e-4; 1 feature.
    pub fn paper() -> Self {
        Self {
            kernel: KernelKind::Matern52,
            noise: GammaPrior {
                concentration: 1e-4,
                rate: 1.0,
            },
            outputscale: GammaPrior {
                concentration: 2.0,
                rate: 0.15,
            },
            lengthscale: GammaPrior {
                concentration: 3.0,
                rate: 6.0,
            },
            noise_floor: 1e-4,
            ard: true,
            default_num_features: 1,
        }
    }

    /// The defaults of the paper's code (`priors/fast_gp_mix.py`): noise Γ(1.1, 0.05), outputscale
    /// Γ(0.5, 0.15), lengthscale Γ(3, 6); otherwise as [`GpHyperPriorConfig::paper`].
    pub fn reference_code() -> Self {
        Self {
            noise: GammaPrior {
                concentration: 1.1,
                rate: 0.05,
            },
            outputscale: GammaPrior {
                concentration: 0.5,
                rate: 0.15,
            },
            ..Self::paper()
        }
    }
}

impl GpHyperPriorConfig {
    /// The general-purpose regression hyper-prior of the shipped `gp-hyper` model (registry name
    /// `gp-hyper-5d`): as [`GpHyperPriorConfig::paper`] but with a noise hyper-prior that covers
    /// real data, noise variance Γ(0.5, 0.25) (median ≈ 0.9, 5 %–95 % ≈ 0.008–7.7, against an
    /// outputscale Γ(2, 0.15) with median ≈ 11), so signal-to-noise ratios range from nearly
    /// noiseless to about one. The paper's noise prior Γ(1e-4, 1) is essentially noiseless, which
    /// makes a model interpolate noisy real data. Five features by default.
    pub fn regression() -> Self {
        Self {
            noise: GammaPrior {
                concentration: 0.5,
                rate: 0.25,
            },
            default_num_features: 5,
            ..Self::paper()
        }
    }
}

impl GpHyperPriorConfig {
    /// The hyper-prior as `pfn_gp`'s MAP prior for type-II fitting: the same Gamma priors on
    /// lengthscales, outputscale and noise, densities taken in the hyperparameters themselves
    /// ([`PriorSpace::Hyperparameter`], the GPyTorch/BoTorch convention).
    pub fn map_hyper_prior(&self) -> HyperPrior {
        let gamma = |g: GammaPrior| pfn_gp::GammaPrior {
            concentration: g.concentration,
            rate: g.rate,
        };
        HyperPrior {
            lengthscale: Some(gamma(self.lengthscale)),
            outputscale: Some(gamma(self.outputscale)),
            noise: Some(gamma(self.noise)),
            space: PriorSpace::Hyperparameter,
        }
    }
}

impl Default for GpHyperPriorConfig {
    fn default() -> Self {
        Self::paper()
    }
}

/// GP prior whose hyperparameters are drawn per dataset from Gamma hyper-priors.
///
/// Hyperparameters are drawn independently for every dataset (the paper code draws them once per
/// sub-batch of `batch / 10` datasets; spec §4.2 recommends per dataset). Draw order per dataset:
/// noise, outputscale, then the lengthscales (one per feature with ARD), then `x ~ U[0,1)^d`, then the
/// GP sample. `target_y = y`.
#[derive(Debug, Clone)]
pub struct GpHyperPrior {
    config: GpHyperPriorConfig,
    noise: Gamma<f64>,
    outputscale: Gamma<f64>,
    lengthscale: Gamma<f64>,
    /// Share of datasets whose inputs are snapped to a grid (see the module docs).
    tied_inputs: f64,
    /// Share of those tied datasets whose noise is set to the floor (see the module docs).
    tied_noiseless: f64,
    /// Share of datasets that repeat whole rows from a small pool (see the module docs).
    repeated_rows: f64,
    /// Share of those repeated-row datasets whose noise is set to the floor.
    repeated_noiseless: f64,
}

impl GpHyperPrior {
    /// Validates `config` and builds the prior.
    pub fn new(config: GpHyperPriorConfig) -> Result<Self, PriorError> {
        check_non_negative("noise_floor", config.noise_floor)?;
        if config.default_num_features == 0 {
            return Err(PriorError::invalid(
                "default_num_features",
                "must be at least 1",
            ));
        }
        Ok(Self {
            noise: config.noise.distribution()?,
            outputscale: config.outputscale.distribution()?,
            lengthscale: config.lengthscale.distribution()?,
            config,
            tied_inputs: 0.0,
            tied_noiseless: 0.0,
            repeated_rows: 0.0,
            repeated_noiseless: 0.0,
        })
    }

    /// This prior with a share `p` of datasets whose input columns are snapped to small grids, so
    /// that rows tie (module docs, "Tied inputs").
    ///
    /// # Errors
    /// If `p` is not a probability.
    pub fn with_tied_inputs(self, p: f64) -> Result<Self, PriorError> {
        check_probability("tied_inputs", p)?;
        Ok(Self {
            tied_inputs: p,
            ..self
        })
    }

    /// This prior with a share `q` of its tied-input datasets ([`GpHyperPrior::with_tied_inputs`])
    /// drawn with the noise at the floor (module docs, "Tied inputs").
    ///
    /// # Errors
    /// If `q` is not a probability.
    pub fn with_tied_noiseless(self, q: f64) -> Result<Self, PriorError> {
        check_probability("tied_noiseless", q)?;
        Ok(Self {
            tied_noiseless: q,
            ..self
        })
    }

    /// This prior with a share `r` of datasets that repeat whole rows from a small pool, a share
    /// `q` of which is drawn with the noise at the floor (module docs, "Repeated rows").
    ///
    /// # Errors
    /// If `r` or `q` is not a probability.
    pub fn with_repeated_rows(self, r: f64, q: f64) -> Result<Self, PriorError> {
        check_probability("repeated_rows", r)?;
        check_probability("repeated_noiseless", q)?;
        Ok(Self {
            repeated_rows: r,
            repeated_noiseless: q,
            ..self
        })
    }

    /// The paper's hyper-priors ([`GpHyperPriorConfig::paper`]).
    pub fn paper() -> Self {
        Self::new(GpHyperPriorConfig::paper()).expect("constant configuration is valid")
    }

    /// The paper code's hyper-priors ([`GpHyperPriorConfig::reference_code`]).
    pub fn reference_code() -> Self {
        Self::new(GpHyperPriorConfig::reference_code()).expect("constant configuration is valid")
    }

    /// The configuration.
    pub fn config(&self) -> &GpHyperPriorConfig {
        &self.config
    }

    /// Draws the hyperparameters of one dataset with `num_features` inputs.
    pub fn sample_hyper(
        &self,
        rng: &mut PriorRng,
        num_features: usize,
    ) -> Result<GpHyper, PriorError> {
        let noise = self.noise.sample(rng).max(self.config.noise_floor);
        let outputscale = self.outputscale.sample(rng);
        let n_ls = if self.config.ard { num_features } else { 1 };
        let lengthscales: Vec<f64> = (0..n_ls).map(|_| self.lengthscale.sample(rng)).collect();
        Ok(GpHyper::new(
            self.config.kernel,
            lengthscales,
            outputscale,
            noise,
        )?)
    }
}

impl Prior for GpHyperPrior {
    fn name(&self) -> String {
        "gp-hyper".into()
    }

    fn default_num_features(&self) -> usize {
        self.config.default_num_features
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let d = data.num_features();
        let mut hyper = self.sample_hyper(rng, d)?;
        let (x, y, target_y) = data.parts();
        fill_uniform(rng, x);
        if self.repeated_rows > 0.0 && rng.random::<f64>() < self.repeated_rows {
            repeat_rows(rng, x, d);
            if self.repeated_noiseless > 0.0 && rng.random::<f64>() < self.repeated_noiseless {
                hyper.noise = self.config.noise_floor;
            }
        } else if self.tied_inputs > 0.0 && rng.random::<f64>() < self.tied_inputs {
            snap_to_grids(rng, x, d);
            if self.tied_noiseless > 0.0 && rng.random::<f64>() < self.tied_noiseless {
                hyper.noise = self.config.noise_floor;
            }
        }
        sample_gp_at(&hyper, x, d, rng, y)?;
        target_y.copy_from_slice(y);
        Ok(DatasetInfo {
            features_used: d,
            hyperparameters: Hyperparameters::Gp(hyper),
        })
    }
}

/// Replaces rows of `x` (row-major, `d` columns) by points of a pool of `m ~ U{1..=8}` rows drawn
/// from U[0, 1)^d: each row, with probability `s ~ U[0.5, 1)` drawn once, becomes a pool point
/// chosen uniformly.
fn repeat_rows(rng: &mut PriorRng, x: &mut [f32], d: usize) {
    let m = rng.random_range(1..=8usize);
    let mut pool = vec![0.0f32; m * d];
    fill_uniform(rng, &mut pool);
    let s = rng.random_range(0.5..1.0f64);
    for row in x.chunks_exact_mut(d) {
        if rng.random::<f64>() < s {
            let k = rng.random_range(0..m);
            row.copy_from_slice(&pool[k * d..(k + 1) * d]);
        }
    }
}

/// Snaps every column of `x` (row-major, `d` columns, values in [0, 1)) to a grid of
/// `k ~ U{2..=8}` equally spaced values in [0, 1], drawn per column.
fn snap_to_grids(rng: &mut PriorRng, x: &mut [f32], d: usize) {
    for j in 0..d {
        let k = rng.random_range(2..=8u32) as f32;
        for v in x.iter_mut().skip(j).step_by(d) {
            *v = (*v * k).floor().min(k - 1.0) / (k - 1.0);
        }
    }
}
