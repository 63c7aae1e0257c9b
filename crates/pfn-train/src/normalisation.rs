//! Which input normalisation a model trained on a given prior expects at inference.
//!
//! The trainer feeds prior data to the model exactly as the prior produces it, so the
//! normalisation recorded in the artifact says how *user* data must be mapped into the prior's
//! range before prediction (and predictions mapped back):
//!
//! * GP, linear and ridge priors draw `x ~ U[0,1]^d` and unnormalised `y`: no normalisation. Such
//!   a model answers for inputs in `[0, 1]` and targets on the prior's scale (as in the paper,
//!   which evaluates on prior data).
//! * The random-MLP prior `bnn` z-normalises `y` (and `x`) over each dataset: `y` is standardised
//!   with the context mean and standard deviation at inference. Its inputs are standard-normal
//!   after the prior's own z-normalisation; the artifact format has no per-context z-score for
//!   `x`, so features are passed through unchanged (supply z-scored features).
//! * Classification priors produce class labels: `y` is never transformed.
//!
//! Unknown (user-registered) names fall back to no normalisation.

use crate::artifact::{InputNormalisation, XNormalisation, YNormalisation};

/// The normalisation for a model trained on the registry prior `prior_name`.
pub fn normalisation_for_prior(prior_name: &str) -> InputNormalisation {
    let y = match prior_name {
        "bnn" => YNormalisation::ContextStandardise,
        _ => YNormalisation::None,
    };
    InputNormalisation {
        x: XNormalisation::None,
        y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gp_priors_are_raw_and_bnn_targets_are_standardised() {
        for name in [
            "gp-1d",
            "gp-5d",
            "gp-hyper",
            "ridge",
            "gp-1d-binary",
            "bnn-binary",
        ] {
            assert_eq!(
                normalisation_for_prior(name),
                InputNormalisation::default(),
                "{name}"
            );
        }
        assert_eq!(
            normalisation_for_prior("bnn").y,
            YNormalisation::ContextStandardise
        );
    }
}
