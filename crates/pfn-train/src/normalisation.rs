//! Which input normalisation a model trained on a given prior expects at inference, and the
//! training-side rules that make training data look like normalised user data.
//!
//! The facts come from the prior's registry entry (`pfn_prior::PriorEntry::normalisation`); this
//! module turns them into the model file's [`InputNormalisation`] and applies them to batches.
//! The trainer feeds prior data to the model exactly as the prior produces it unless the entry
//! says otherwise, so the normalisation recorded in the artifact says how *user* data must be
//! mapped into the prior's range before prediction (and predictions mapped back):
//!
//! * GP, linear and ridge priors draw `x ~ U[0,1]^d` and unnormalised `y`: no normalisation. Such
//!   a model answers for inputs in `[0, 1]` and targets on the prior's scale (as in the paper,
//!   which evaluates on prior data).
//! * The random-MLP prior `bnn` z-normalises `y` (and `x`) over each dataset
//!   (`TargetNormalisation::StandardisedByPrior`): `y` is standardised with the context mean and
//!   standard deviation at inference. Its inputs are standard-normal after the prior's own
//!   z-normalisation; the artifact format has no per-context z-score for `x`, so features are
//!   passed through unchanged (supply z-scored features).
//! * Classification priors produce class labels: `y` is never transformed.
//! * A prior whose entry scales features by the context and standardises targets by the context
//!   (`gp-hyper-5d`, the general-purpose regression prior) is the exception to "as the prior
//!   produces it": the model is trained the way it is used, with the rules of inference
//!   (`pfn_artifact::normalise`, one implementation for both). Every training and validation dataset
//!   has its used feature columns mapped to [0, 1] with the min/max of its *context* rows
//!   ([`scale_features_by_context`], the rule of `FeatureScaler`) and its `y` and `target_y`
//!   standardised with the mean and standard deviation of its context targets
//!   ([`standardise_targets_by_context`], the rule of `TargetScaler`); the bucket borders are
//!   estimated from such standardised query targets. At inference, x is mapped the same way, `y`
//!   standardised by the context, and a dataset with `d < 5` features is zero-padded with its
//!   columns scaled by the entry's padding rule (`sqrt(5 / d)`), as `VariableFeatures` does in
//!   training. (Models trained before 2026-12-03 saw raw x in training; see `docs/results/gp-hyper`.)
//!
//! Unknown (unregistered) names fall back to no normalisation.

use pfn_artifact::{
    FeaturePadding, FeatureScaler, InputNormalisation, TargetScaler, XNormalisation, YNormalisation,
};
use pfn_prior::{
    prior_entry, Batch, FeatureNormalisation, FeatureScaling, Hyperparameters, Normalisation,
    QueryPosterior,
};

/// Whether the trainer standardises the targets of prior `prior_name` with their context statistics
/// (see the module docs).
pub fn targets_standardised_in_training(prior_name: &str) -> bool {
    prior_normalisation(prior_name).targets_standardised_in_training()
}

/// The normalisation facts of the registry prior `prior_name` ([`Normalisation::NONE`] for an
/// unregistered name).
fn prior_normalisation(prior_name: &str) -> Normalisation {
    prior_entry(prior_name).map_or(Normalisation::NONE, |e| e.normalisation)
}

/// Mean and standard deviation of context targets, by the rule of inference
/// ([`TargetScaler::fit`]: population standard deviation, replaced by 1 when it is 0). `None`
/// for an empty context.
pub fn context_statistics(context_y: &[f32]) -> Option<(f64, f64)> {
    let y: Vec<f64> = context_y.iter().map(|&v| f64::from(v)).collect();
    TargetScaler::fit(&y).ok().map(|s| (s.mean, s.std))
}

/// Whether the trainer maps the features of prior `prior_name` with statistics of each dataset's
/// context, as inference does (see the module docs).
pub fn features_scaled_in_training(prior_name: &str) -> bool {
    prior_normalisation(prior_name).features != FeatureNormalisation::None
}

/// How the trainer maps the features of prior `prior_name`, and its padding rule (see the module
/// docs).
pub fn feature_normalisation_in_training(prior_name: &str) -> Normalisation {
    prior_normalisation(prior_name)
}

/// Maps the used feature columns of every dataset of `batch` with a [`FeatureScaler`] fitted on its
/// first `n_context` rows by the rule `norm.features` (min/max to [0, 1], or z-scores), exactly as
/// inference maps a user's columns before padding. A padded dataset has its used columns multiplied
/// by the padding factor `s` by the prior (recorded in [`Hyperparameters::FeaturePadding`], else
/// `norm.feature_padding`'s factor for the dataset's used count), so the rule is applied to `x / s`
/// and the result multiplied by `s` again (inference scales, then pads). Zero padding columns stay
/// zero. With no context, or features [`FeatureNormalisation::None`], the batch is left unchanged.
pub fn scale_features_by_context(batch: &mut Batch, n_context: usize, norm: &Normalisation) {
    let fit = match norm.features {
        FeatureNormalisation::None => return,
        FeatureNormalisation::ContextMinMax => FeatureScaler::fit,
        FeatureNormalisation::ContextStandardise => FeatureScaler::fit_standardise,
    };
    let (len, f) = (batch.seq_len, batch.num_features);
    if n_context == 0 || len == 0 || f == 0 {
        return;
    }
    let n = n_context.min(len);
    for (b, x) in batch.x.chunks_exact_mut(len * f).enumerate() {
        let (used, factor) = match batch.hyperparameters.get(b) {
            Some(Hyperparameters::FeaturePadding {
                features_used,
                scale,
                ..
            }) => (*features_used, *scale),
            _ => {
                let used = batch.features_used.get(b).copied().unwrap_or(f).min(f);
                let factor = match norm.feature_padding {
                    Some(rule) if used > 0 && used < f => rule.factor(used, f),
                    _ => 1.0,
                };
                (used, factor)
            }
        };
        let used = used.min(f);
        if used == 0 {
            continue;
        }
        let raw = |v: f32| f64::from(v) / factor;
        let context: Vec<f64> = x[..n * f]
            .chunks_exact(f)
            .flat_map(|row| row[..used].iter().map(|&v| raw(v)))
            .collect();
        let Ok(scaler) = fit(&context, used) else {
            continue;
        };
        for row in x.chunks_exact_mut(f) {
            for (j, v) in row[..used].iter_mut().enumerate() {
                *v = (scaler.scale(j, raw(*v)) * factor) as f32;
            }
        }
    }
}

/// Standardises `y` and `target_y` of every dataset of `batch` with the statistics
/// ([`context_statistics`]) of its first `n_context` values of `y`. With no context the batch is left
/// unchanged (a model with context-standardised targets is never asked to predict without
/// context).
pub fn standardise_targets_by_context(batch: &mut Batch, n_context: usize) {
    standardise_with_posterior(batch, n_context, None);
}

/// [`standardise_targets_by_context`], also mapping the posterior targets of the queries (rows of
/// [`QueryPosterior`], `seq_len - n_context` per dataset) through each dataset's affine map.
pub fn standardise_with_posterior(
    batch: &mut Batch,
    n_context: usize,
    mut posterior: Option<&mut QueryPosterior>,
) {
    let len = batch.seq_len;
    if n_context == 0 || len == 0 {
        return;
    }
    let queries = len.saturating_sub(n_context);
    for (b, (y, t)) in batch
        .y
        .chunks_exact_mut(len)
        .zip(batch.target_y.chunks_exact_mut(len))
        .enumerate()
    {
        let Some((mean, std)) = context_statistics(&y[..n_context.min(len)]) else {
            continue;
        };
        for v in y.iter_mut().chain(t.iter_mut()) {
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
        if let Some(p) = posterior.as_deref_mut() {
            p.standardise_rows(b * queries, queries, mean, std);
        }
    }
}

/// The model file's padding rule for a prior's feature scaling (`VariableFeatures`): the same
/// factor for every feature count.
pub fn feature_padding_of(scaling: FeatureScaling) -> FeaturePadding {
    match scaling {
        FeatureScaling::Sqrt => FeaturePadding::Sqrt,
        FeatureScaling::Linear => FeaturePadding::Linear,
        FeatureScaling::None => FeaturePadding::None,
    }
}

/// The normalisation for a model trained on the registry prior `prior_name` (from its registry
/// entry; none for an unregistered name).
pub fn normalisation_for_prior(prior_name: &str) -> InputNormalisation {
    let facts = prior_normalisation(prior_name);
    InputNormalisation {
        x: match facts.features {
            FeatureNormalisation::None => XNormalisation::None,
            FeatureNormalisation::ContextMinMax => XNormalisation::ContextMinMax,
            FeatureNormalisation::ContextStandardise => XNormalisation::ContextStandardise,
        },
        y: if facts.targets_standardised_at_inference() {
            YNormalisation::ContextStandardise
        } else {
            YNormalisation::None
        },
        feature_padding: facts.feature_padding.map(feature_padding_of),
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
            "bnn-classification-small",
            "bnn-classification-big",
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
        let general = normalisation_for_prior("gp-hyper-5d");
        assert_eq!(general.x, XNormalisation::ContextMinMax);
        assert_eq!(general.y, YNormalisation::ContextStandardise);
        assert_eq!(general.feature_padding, Some(FeaturePadding::Sqrt));
        assert!(targets_standardised_in_training("gp-hyper-5d"));
        assert!(features_scaled_in_training("gp-hyper-5d"));
        assert!(!targets_standardised_in_training("gp-hyper"));
        assert!(!targets_standardised_in_training("bnn"));
        assert!(!features_scaled_in_training("bnn"));
        assert_eq!(
            normalisation_for_prior("user-prior"),
            InputNormalisation::default()
        );
    }

    #[test]
    fn padding_rules_agree_with_the_prior_scaling() {
        for scaling in [
            FeatureScaling::Sqrt,
            FeatureScaling::Linear,
            FeatureScaling::None,
        ] {
            let padding = feature_padding_of(scaling);
            for max in 1..=60 {
                for used in 1..=max {
                    assert_eq!(
                        padding.factor(used, max).to_bits(),
                        scaling.factor(used, max).to_bits(),
                        "{scaling:?} {used} of {max}"
                    );
                }
            }
            // The same word in a prior configuration and in a model file.
            assert_eq!(
                serde_json::to_string(&padding).unwrap(),
                serde_json::to_string(&scaling).unwrap()
            );
        }
        assert_eq!(
            feature_padding_of(FeatureScaling::default()),
            FeaturePadding::default()
        );
    }

    #[test]
    fn context_standardisation_uses_only_the_context() {
        let y = vec![1.0, 3.0, 100.0, -7.0, 5.0, 5.0, 5.0, 6.0];
        let mut batch = Batch {
            batch_size: 2,
            seq_len: 4,
            num_features: 1,
            x: vec![0.0; 8],
            target_y: y.clone(),
            y,
            ..Batch::default()
        };
        standardise_targets_by_context(&mut batch, 2);
        // Dataset 0: context {1, 3}: mean 2, population std 1.
        assert_eq!(&batch.y[..4], &[-1.0, 1.0, 98.0, -9.0]);
        assert_eq!(batch.y, batch.target_y);
        // Dataset 1: constant context: std falls back to 1.
        assert_eq!(&batch.y[4..], &[0.0, 0.0, 0.0, 1.0]);
        let before = batch.clone();
        standardise_targets_by_context(&mut batch, 0);
        assert_eq!(batch, before);
        assert_eq!(context_statistics(&[]), None);
    }
}
