//! Named priors for the command line: [`prior_by_name`] and the [`PRIORS`] table used by `--help`.

use crate::bnn_classification::{BnnArchitecture, BnnClassificationPrior};
use crate::classification::{BinarizeRule, Binarized};
use crate::error::PriorError;
use crate::features::VariableFeatures;
use crate::gp::GpPrior;
use crate::gp_hyper::{GpHyperPrior, GpHyperPriorConfig};
use crate::linear::LinearPrior;
use crate::mlp::{MlpConfig, MlpPrior};
use crate::prior::Prior;

/// `(name, one-line description)` of every registered prior, in display order.
pub const PRIORS: &[(&str, &str)] = &[
    (
        "gp-1d",
        "GP, RBF lengthscale 0.1, outputscale 1, noise 1e-4, x ~ U[0,1] (paper Fig. 3/7/8); 1 feature",
    ),
    (
        "gp-5d",
        "GP, RBF lengthscale 0.6, outputscale 1, noise 1e-4, x ~ U[0,1]^5 (paper Fig. 4a); 5 features",
    ),
    (
        "gp-hyper",
        "GP, Matérn-5/2 ARD, per-dataset Gamma hyper-priors noise (1e-4,1) floored at 1e-4, outputscale (2,0.15), lengthscale (3,6) (paper Fig. 4b); 1 feature by default",
    ),
    (
        "gp-hyper-5d",
        "GP, Matérn-5/2 ARD, hyper-priors as gp-hyper but noise Gamma(0.5,0.25); 1..=5 used features per dataset (zero-padded, used columns scaled by sqrt(5/d)); the shipped general-purpose regression prior, trained with y standardised by the context",
    ),
    (
        "gp-hyper-code",
        "as gp-hyper with the paper code's hyper-priors: noise Gamma(1.1,0.05), outputscale Gamma(0.5,0.15); 1 feature by default",
    ),
    (
        "ridge",
        "Bayesian linear regression, weights N(0,0.1^2), noise N(0,0.1^2), noiseless targets, x ~ U[0,1]^F; 5 features by default",
    ),
    (
        "linear-1d",
        "y = a x + b + N(0,0.1^2), a, b ~ N(0,1), x ~ U[0,1]; exactly 1 feature",
    ),
    (
        "bnn",
        "random tanh MLP (3 layers, width 64, weight/bias std 0.25, noise 0.1), x ~ N(0,1), z-normalised x and y; 3 features by default",
    ),
    (
        "gp-1d-binary",
        "gp-1d with labels 1[y > per-dataset median]",
    ),
    (
        "gp-1d-bernoulli",
        "gp-1d with labels ~ Bernoulli(sigmoid(y))",
    ),
    (
        "bnn-binary",
        "bnn with labels 1[y > per-dataset median]",
    ),
    (
        "bnn-classification-small",
        "paper Fig. 5a: 2-layer linear BNN (3 features, 5 hidden, no nonlinearity), all weights N(0,1), x ~ N(0,I), labels ~ softmax of its 2 logits; x z-normalised over the sequence; 2 classes, exactly 3 features",
    ),
    (
        "bnn-classification-big",
        "paper Fig. 5b: as bnn-classification-small with 8 features and 64 hidden units; 2 classes, exactly 8 features",
    ),
];

/// The registered names, comma-separated.
fn available() -> String {
    PRIORS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the prior registered under `name` (see [`PRIORS`]).
pub fn prior_by_name(name: &str) -> Result<Box<dyn Prior>, PriorError> {
    let prior: Box<dyn Prior> = match name {
        "gp-1d" => Box::new(GpPrior::paper_1d()),
        "gp-5d" => Box::new(GpPrior::paper_5d()),
        "gp-hyper" => Box::new(GpHyperPrior::paper()),
        "gp-hyper-code" => Box::new(GpHyperPrior::reference_code()),
        "gp-hyper-5d" => Box::new(VariableFeatures::with_defaults(GpHyperPrior::new(
            GpHyperPriorConfig::regression(),
        )?)?),
        "ridge" => Box::new(LinearPrior::ridge()),
        "linear-1d" => Box::new(LinearPrior::linear_1d()),
        "bnn" => Box::new(MlpPrior::new(MlpConfig::default())?),
        "gp-1d-binary" => Box::new(Binarized::new(GpPrior::paper_1d(), BinarizeRule::Median)),
        "gp-1d-bernoulli" => Box::new(Binarized::new(GpPrior::paper_1d(), BinarizeRule::Bernoulli)),
        "bnn-binary" => Box::new(Binarized::new(
            MlpPrior::new(MlpConfig::default())?,
            BinarizeRule::Median,
        )),
        "bnn-classification-small" => Box::new(BnnClassificationPrior::pfn_training(
            BnnArchitecture::SMALL,
        )?),
        "bnn-classification-big" => {
            Box::new(BnnClassificationPrior::pfn_training(BnnArchitecture::BIG)?)
        }
        _ => {
            return Err(PriorError::UnknownPrior {
                name: name.to_string(),
                available: available(),
            })
        }
    };
    Ok(prior)
}
