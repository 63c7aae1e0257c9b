//! The Gaussian process a GP-prior PFN approximates, chosen from the name of its training prior.
//!
//! * `gp-1d`, `gp-5d` (fixed hyperparameters, [`pfn_prior::GpPrior`]): the exact posterior
//!   predictive with the prior's own kernel, lengthscale, outputscale and noise. The PFN is trained
//!   to approximate exactly this distribution.
//! * `gp-hyper`, `gp-hyper-code` (Gamma hyper-priors): the Bayesian answer integrates over the
//!   hyperparameters, which has no closed form. The overlay uses the type-II MAP hyperparameters
//!   (maximum of log marginal likelihood + log hyper-prior, Matérn-5/2 ARD, noise floored at 1e-4 as
//!   in the prior) and is labelled as an approximation.
//! * any other prior: no overlay.

use pfn_gp::{
    fit_type2, ExactGp, GpError, GpHyper, HyperBounds, HyperPrior, KernelKind, StartDistribution,
    Type2Options,
};
use pfn_prior::GpPrior;

/// Noise floor of the hyper-prior GPs (as `pfn_prior::GpHyperPrior`).
const HYPER_NOISE_FLOOR: f64 = 1e-4;

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
}

/// A reference GP conditioned on a context.
#[derive(Debug, Clone)]
pub struct FittedReference {
    /// The conditioned GP.
    pub gp: ExactGp,
    /// `exact` or `type2_map`.
    pub kind: &'static str,
    /// A one-line description for people.
    pub description: String,
}

impl ReferenceGp {
    /// The reference for the training prior called `prior_name`, if it is a GP prior.
    pub fn for_prior(prior_name: &str) -> Option<Self> {
        match prior_name {
            "gp-1d" => Some(Self::Exact(GpPrior::paper_1d().hyper().clone())),
            "gp-5d" => Some(Self::Exact(GpPrior::paper_5d().hyper().clone())),
            "gp-hyper" => Some(Self::TypeTwoMap {
                kind: KernelKind::Matern52,
                prior: HyperPrior::paper(),
            }),
            "gp-hyper-code" => Some(Self::TypeTwoMap {
                kind: KernelKind::Matern52,
                prior: HyperPrior::reference_code(),
            }),
            _ => None,
        }
    }

    /// `exact` or `type2_map`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Exact(_) => "exact",
            Self::TypeTwoMap { .. } => "type2_map",
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
}
