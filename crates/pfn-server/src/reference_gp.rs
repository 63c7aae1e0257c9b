//! The Gaussian process a GP-prior PFN approximates, chosen from the registry entry of its training
//! prior (`pfn_prior::PriorEntry::reference` and `normalisation`).
//!
//! * a GP with fixed hyperparameters (`gp-1d`, `gp-5d`, [`pfn_prior::GpPrior`]): the exact posterior
//!   predictive with the prior's own kernel, lengthscale, outputscale and noise. The PFN is trained
//!   to approximate exactly this distribution.
//! * a GP hyper-prior on raw data (`gp-hyper`, `gp-hyper-code`): the Bayesian answer integrates over the
//!   hyperparameters, which has no closed form. The overlay uses the type-II MAP hyperparameters
//!   (maximum of log marginal likelihood + log hyper-prior, Matérn-5/2 ARD, noise floored at 1e-4 as
//!   in the prior) and is labelled as an approximation.
//! * a GP hyper-prior trained on data scaled with the context (x min-max to [0, 1], y
//!   standardised; `gp-hyper-5d`, the general-purpose regression prior): the GP is fitted the same way the model sees the data.
//!   In that normalised space the hyperparameters of a Matérn-5/2 ARD GP are fitted by type-II
//!   maximum likelihood (no hyper-prior: the prior's Gamma hyper-priors are stated for raw prior
//!   data, not for standardised targets), then the GP is mapped back exactly (lengthscales times
//!   the context's x range, outputscale and noise times the y variance, mean plus the y mean).
//!   Labelled "GP (type-II ML)", an approximation of the hyper-prior posterior.
//! * any other prior: no overlay.

use pfn_gp::{
    fit_type2, ExactGp, GpError, GpHyper, HyperBounds, HyperPrior, KernelKind, StartDistribution,
    Type2Options,
};
use pfn_infer::{FeatureScaler, TargetScaler};
use pfn_prior::ReferencePosterior;

/// Noise floor of the hyper-prior GPs (as `pfn_prior::GpHyperPrior`).
const HYPER_NOISE_FLOOR: f64 = 1e-4;

/// Bounds of the type-II ML fit in the normalised space (x in [0, 1], y standardised): lengthscales
/// from a hundredth to a hundred times the context's x range, outputscale and noise variance up to
/// a hundred and ten times the context's y variance; the noise floor is 1e-4 of that variance.
const NORMALISED_BOUNDS: HyperBounds = HyperBounds {
    lengthscale: (1e-2, 1e2),
    outputscale: (1e-3, 1e2),
    noise: (1e-4, 10.0),
};

/// How the reference GP's hyperparameters are obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceGp {
    /// The prior's fixed hyperparameters: the overlay is the exact posterior predictive.
    Exact(GpHyper),
    /// Type-II MAP under a Gamma hyper-prior: an approximation of the hyper-prior posterior.
    TypeTwoMap {
        /// The kernel family of the prior.
        kind: KernelKind,
        /// The hyper-prior.
        prior: HyperPrior,
    },
    /// Type-II maximum likelihood (ARD) on the context scaled as the model scales it (x min-max
    /// to [0, 1], y standardised), mapped back to the caller's units; see the module docs.
    ContextScaledTypeTwoMl {
        /// The kernel family of the prior.
        kind: KernelKind,
    },
}

/// A reference GP conditioned on a context.
#[derive(Debug, Clone)]
pub struct FittedReference {
    /// The conditioned zero-mean GP, in the caller's units, on the targets minus `mean_offset`.
    pub gp: ExactGp,
    /// Constant prior mean of the GP (0, or the context's y mean for a context-scaled fit).
    pub mean_offset: f64,
    /// `exact`, `type2_map` or `type2_ml`.
    pub kind: &'static str,
    /// A one-line description for people.
    pub description: String,
}

/// Predictive mean and observation variance at query points, in the caller's units.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePrediction {
    /// Predictive mean.
    pub mean: Vec<f64>,
    /// Predictive variance of a noisy observation.
    pub var_y: Vec<f64>,
}

impl FittedReference {
    /// The GP's predictive at the rows of `x_query`.
    pub fn predict(&self, x_query: &[f64]) -> Result<ReferencePrediction, GpError> {
        let p = self.gp.predict(x_query)?;
        Ok(ReferencePrediction {
            mean: p.mean.iter().map(|m| m + self.mean_offset).collect(),
            var_y: p.var_y,
        })
    }
}

impl ReferenceGp {
    /// The reference for the training prior called `prior_name`, from its registry entry: the
    /// exact GP for fixed hyperparameters; for a GP hyper-prior, type-II ML on the context scaled as
    /// the model scales it when the prior is trained on context-scaled features, else type-II MAP
    /// under the hyper-prior. `None` for other and unregistered priors.
    pub fn for_prior(prior_name: &str) -> Option<Self> {
        let entry = pfn_prior::prior_entry(prior_name)?;
        match entry.reference_posterior() {
            ReferencePosterior::ExactGp(hyper) => Some(Self::Exact(hyper)),
            ReferencePosterior::GpHyperPrior(config)
                if entry.normalisation.features
                    == pfn_prior::FeatureNormalisation::ContextMinMax =>
            {
                Some(Self::ContextScaledTypeTwoMl {
                    kind: config.kernel,
                })
            }
            ReferencePosterior::GpHyperPrior(config) => Some(Self::TypeTwoMap {
                kind: config.kernel,
                prior: config.map_hyper_prior(),
            }),
            ReferencePosterior::None => None,
        }
    }

    /// `exact`, `type2_map` or `type2_ml`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Exact(_) => "exact",
            Self::TypeTwoMap { .. } => "type2_map",
            Self::ContextScaledTypeTwoMl { .. } => "type2_ml",
        }
    }

    /// The label people see for the overlay: `GP (exact)`, `GP (type-II MAP)` or
    /// `GP (type-II ML)`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Exact(_) => "GP (exact)",
            Self::TypeTwoMap { .. } => "GP (type-II MAP)",
            Self::ContextScaledTypeTwoMl { .. } => "GP (type-II ML)",
        }
    }

    /// Conditions on `x` (row-major, `d` features) and `y`. A type-II fit needs at least one point;
    /// with none it returns `Ok(None)`.
    pub fn fit(&self, x: &[f64], y: &[f64], d: usize) -> Result<Option<FittedReference>, GpError> {
        match self {
            Self::Exact(hyper) => {
                let gp = ExactGp::fit(x, y, d, hyper)?;
                let description = format!(
                    "exact GP posterior of the training prior: {} kernel, lengthscale {}, outputscale {}, noise {}",
                    kernel_name(hyper.kind),
                    join(&hyper.lengthscales),
                    hyper.outputscale,
                    hyper.noise
                );
                Ok(Some(FittedReference {
                    gp,
                    mean_offset: 0.0,
                    kind: self.kind(),
                    description,
                }))
            }
            Self::ContextScaledTypeTwoMl { kind } => {
                if y.is_empty() {
                    return Ok(None);
                }
                if d == 0 || x.len() != y.len() * d {
                    return Err(GpError::Shape(format!(
                        "{} x values for {} targets with {d} features",
                        x.len(),
                        y.len()
                    )));
                }
                // The PFN's own context normalisation (x to [0, 1] by the context min/max, y
                // standardised), so the fit sees the data as the model does.
                let scale_err = |e: pfn_infer::NormaliseError| GpError::Shape(e.to_string());
                let features = FeatureScaler::fit(x, d).map_err(scale_err)?;
                let target = TargetScaler::fit(y).map_err(scale_err)?;
                let xs = features.transform(x).map_err(scale_err)?;
                let ys = target.transform_all(y);
                // Unit scale for a constant feature, as the scaler maps it.
                let ranges: Vec<f64> = features
                    .min
                    .iter()
                    .zip(&features.max)
                    .map(|(lo, hi)| if hi > lo { hi - lo } else { 1.0 })
                    .collect();
                let (mean, sd) = (target.mean, target.std);
                let opts = Type2Options {
                    restarts: 4,
                    seed: 0,
                    bounds: NORMALISED_BOUNDS,
                    starts: StartDistribution::default(),
                    prior: None,
                    ..Type2Options::default()
                };
                let fit = fit_type2(&xs, &ys, d, *kind, true, &opts)?;
                let var = sd * sd;
                let h = &fit.hyper;
                let hyper = GpHyper::new(
                    h.kind,
                    h.lengthscales
                        .iter()
                        .zip(&ranges)
                        .map(|(l, r)| l * r)
                        .collect(),
                    h.outputscale * var,
                    h.noise * var,
                )?;
                let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
                let gp = ExactGp::fit(x, &centred, d, &hyper)?;
                let description = format!(
                    "GP with type-II ML hyperparameters fitted to the context scaled as the PFN scales it (an approximation: the PFN integrates over the hyper-prior): {} kernel, lengthscale {}, outputscale {:.4}, noise {:.3e}, constant mean {:.4} (the context's)",
                    kernel_name(hyper.kind),
                    join(&hyper.lengthscales),
                    hyper.outputscale,
                    hyper.noise,
                    mean
                );
                Ok(Some(FittedReference {
                    gp,
                    mean_offset: mean,
                    kind: self.kind(),
                    description,
                }))
            }
            Self::TypeTwoMap { kind, prior } => {
                if y.is_empty() {
                    return Ok(None);
                }
                let opts = Type2Options {
                    restarts: 4,
                    seed: 0,
                    bounds: HyperBounds {
                        noise: (HYPER_NOISE_FLOOR, 1e4),
                        ..HyperBounds::default()
                    },
                    starts: StartDistribution::Prior(*prior),
                    prior: Some(*prior),
                    ..Type2Options::default()
                };
                let fit = fit_type2(x, y, d, *kind, true, &opts)?;
                let gp = ExactGp::fit(x, y, d, &fit.hyper)?;
                let h = &fit.hyper;
                let description = format!(
                    "GP with type-II MAP hyperparameters (an approximation: the PFN integrates over the hyper-prior): {} kernel, lengthscale {}, outputscale {:.4}, noise {:.3e}",
                    kernel_name(h.kind),
                    join(&h.lengthscales),
                    h.outputscale,
                    h.noise
                );
                Ok(Some(FittedReference {
                    gp,
                    mean_offset: 0.0,
                    kind: self.kind(),
                    description,
                }))
            }
        }
    }
}

fn kernel_name(kind: KernelKind) -> &'static str {
    match kind {
        KernelKind::Rbf => "RBF",
        KernelKind::Matern52 => "Matérn-5/2",
    }
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|l| format!("{l:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gp_1d_uses_the_paper_hyperparameters() {
        let Some(ReferenceGp::Exact(h)) = ReferenceGp::for_prior("gp-1d") else {
            panic!("gp-1d must have an exact reference");
        };
        assert_eq!(h.kind, KernelKind::Rbf);
        assert_eq!(h.lengthscales, vec![0.1]);
        assert_eq!(h.outputscale, 1.0);
        assert_eq!(h.noise, 1e-4);
        assert!(ReferenceGp::for_prior("bnn").is_none());
        assert!(ReferenceGp::for_prior("not-registered").is_none());
    }

    /// The references the registry facts give are those of the paper's priors.
    #[test]
    fn hyper_prior_references_come_from_the_registry() {
        assert_eq!(
            ReferenceGp::for_prior("gp-hyper"),
            Some(ReferenceGp::TypeTwoMap {
                kind: KernelKind::Matern52,
                prior: HyperPrior::paper(),
            })
        );
        assert_eq!(
            ReferenceGp::for_prior("gp-hyper-code"),
            Some(ReferenceGp::TypeTwoMap {
                kind: KernelKind::Matern52,
                prior: HyperPrior::reference_code(),
            })
        );
        assert_eq!(
            ReferenceGp::for_prior("gp-hyper-5d"),
            Some(ReferenceGp::ContextScaledTypeTwoMl {
                kind: KernelKind::Matern52,
            })
        );
        let Some(ReferenceGp::Exact(h)) = ReferenceGp::for_prior("gp-5d") else {
            panic!("gp-5d must have an exact reference");
        };
        assert!(h.lengthscales.iter().all(|&l| l == 0.6), "{h:?}");
    }

    #[test]
    fn exact_reference_interpolates_the_context() {
        let r = ReferenceGp::for_prior("gp-1d").unwrap();
        let fitted = r.fit(&[0.2, 0.7], &[0.5, -1.0], 1).unwrap().unwrap();
        let p = fitted.gp.predict(&[0.2, 0.7, 5.0]).unwrap();
        assert!((p.mean[0] - 0.5).abs() < 1e-3, "{:?}", p.mean);
        assert!((p.mean[1] + 1.0).abs() < 1e-3, "{:?}", p.mean);
        // Far away the posterior is the prior: mean 0, variance outputscale + noise.
        assert!(p.mean[2].abs() < 1e-9);
        assert!((p.var_y[2] - 1.0001).abs() < 1e-9);
    }

    #[test]
    fn type2_reference_needs_data_and_respects_the_noise_floor() {
        let r = ReferenceGp::for_prior("gp-hyper").unwrap();
        assert!(r.fit(&[], &[], 1).unwrap().is_none());
        let x = [0.1, 0.3, 0.5, 0.7, 0.9];
        let y = [0.0, 0.8, 0.1, -0.7, 0.2];
        let fitted = r.fit(&x, &y, 1).unwrap().unwrap();
        assert_eq!(fitted.kind, "type2_map");
        assert!(fitted.gp.hyper().noise >= HYPER_NOISE_FLOOR * (1.0 - 1e-9));
    }

    /// The context-scaled fit equals a GP fitted and predicting in the normalised space, mapped
    /// back by hand; it follows data in arbitrary units.
    #[test]
    fn context_scaled_type2_ml_is_the_normalised_gp_mapped_back() {
        let r = ReferenceGp::for_prior("gp-hyper-5d").unwrap();
        assert_eq!(r.kind(), "type2_ml");
        assert_eq!(r.label(), "GP (type-II ML)");
        assert!(r.fit(&[], &[], 1).unwrap().is_none());
        // Data far from [0, 1] and unit scale: x in [100, 140], y around 50 with spread ~8.
        let x = [100.0, 104.0, 111.0, 118.0, 125.0, 131.0, 140.0];
        let y = [50.0, 56.5, 58.0, 49.0, 41.5, 44.0, 52.0];
        let fitted = r.fit(&x, &y, 1).unwrap().unwrap();
        let q = [95.0, 107.0, 121.0, 150.0];
        let ours = fitted.predict(&q).unwrap();

        let (lo, range) = (100.0, 40.0);
        let mean = y.iter().sum::<f64>() / 7.0;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 7.0).sqrt();
        let xs: Vec<f64> = x.iter().map(|v| (v - lo) / range).collect();
        let ys: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
        let opts = Type2Options {
            restarts: 4,
            seed: 0,
            bounds: NORMALISED_BOUNDS,
            starts: StartDistribution::default(),
            prior: None,
            ..Type2Options::default()
        };
        let fit = fit_type2(&xs, &ys, 1, KernelKind::Matern52, true, &opts).unwrap();
        let gp = ExactGp::fit(&xs, &ys, 1, &fit.hyper).unwrap();
        let qs: Vec<f64> = q.iter().map(|v| (v - lo) / range).collect();
        let p = gp.predict(&qs).unwrap();
        for j in 0..q.len() {
            let m = mean + sd * p.mean[j];
            let v = sd * sd * p.var_y[j];
            assert!(
                (ours.mean[j] - m).abs() < 1e-8 * (1.0 + m.abs()),
                "mean {j}: {} vs {m}",
                ours.mean[j]
            );
            assert!(
                (ours.var_y[j] - v).abs() < 1e-8 * v,
                "var {j}: {} vs {v}",
                ours.var_y[j]
            );
        }
        // Far outside the context the GP returns to the context mean, not to 0.
        let far = fitted.predict(&[1e4]).unwrap();
        assert!(
            (far.mean[0] - mean).abs() < 1e-6,
            "{} vs {mean}",
            far.mean[0]
        );
        // Lengthscales in the caller's units: the normalised ones times the x range.
        let l = fitted.gp.hyper().lengthscales[0];
        assert!((l - fit.hyper.lengthscales[0] * range).abs() < 1e-9 * l);
    }

    #[test]
    fn context_scaled_fit_survives_one_point_and_constant_targets() {
        let r = ReferenceGp::for_prior("gp-hyper-5d").unwrap();
        let one = r.fit(&[3.0], &[7.0], 1).unwrap().unwrap();
        let p = one.predict(&[3.0, 4.0]).unwrap();
        assert!(p.mean.iter().chain(&p.var_y).all(|v| v.is_finite()));
        assert!((p.mean[0] - 7.0).abs() < 1.0, "{:?}", p.mean);
        let flat = r
            .fit(&[0.0, 1.0, 2.0], &[5.0, 5.0, 5.0], 1)
            .unwrap()
            .unwrap();
        let p = flat.predict(&[0.5, 1.5]).unwrap();
        assert!(
            p.mean.iter().all(|m| (m - 5.0).abs() < 1e-3),
            "{:?}",
            p.mean
        );
        assert!(p.var_y.iter().all(|v| v.is_finite() && *v > 0.0));
    }
}
