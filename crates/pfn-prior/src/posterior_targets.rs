//! Posterior (Rao-Blackwellised) training targets: for every query point of a sampled dataset, the
//! distribution of its target given the context *and the latent the prior drew* (a GP's
//! hyperparameters, a BNN's weights).
//!
//! The PFN loss `E[-log q(y* | x*, D)]` over prior draws equals the expected cross-entropy between
//! `p(y* | x*, D, latent)` and `q`, so the one sampled `y*` can be replaced by that whole conditional
//! distribution: same optimum and expected loss, lower gradient variance. Closed forms exist for:
//!
//! * GP priors ([`Hyperparameters::Gp`], also inside [`Hyperparameters::FeaturePadding`]): the exact
//!   posterior predictive of the noisy observation under the dataset's own hyperparameters,
//!   `N(mu, var_f + noise)`, computed with `pfn-gp` from the f32 inputs the model sees (padded
//!   columns dropped, lengthscales multiplied by the padding scale);
//! * the BNN classification priors: the class probabilities `softmax(f_w(x))` the labels were drawn
//!   from, recorded by the prior at sampling time;
//! * latent-threshold classification ([`crate::TabularGpPrior`], or any record with a
//!   [`LatentClasses`] under [`LATENT_CLASSES_KEY`]): `P(class | latent, noise std)` of every query
//!   from the recorded latent, thresholds and label permutation, rows of `max_classes`
//!   probabilities (0 for the classes a dataset does not have).
//!
//! Every other draw (linear, MLP regression, binarised regression, user priors) has no closed form
//! here and is an error: such priors train with sampled targets.

use pfn_gp::{ExactGp, GpHyper};
use rayon::prelude::*;
use serde::Deserialize;

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::prior::Batch;
use crate::tabular::LatentClasses;

/// Key of the class-1 probabilities in the `Hyperparameters::Custom` record of the BNN
/// classification priors.
pub const CLASS1_PROBABILITIES_KEY: &str = "class1_probabilities";

/// Key of the [`LatentClasses`] record (latent, noise, thresholds, label permutation) in a
/// `Hyperparameters::Custom` record, e.g. that of [`crate::TabularGpPrior`].
pub const LATENT_CLASSES_KEY: &str = "latent_classes";

/// The conditional distribution of every query target of a batch, rows in the order of the model's
/// query outputs: dataset-major, points `n_context..seq_len` of each dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryPosterior {
    /// `N(mean[r], std[r]^2)` per query row.
    Gaussian {
        /// Predictive means.
        mean: Vec<f32>,
        /// Predictive standard deviations of the noisy observation.
        std: Vec<f32>,
    },
    /// Class probabilities per query row, row-major `rows x num_classes`.
    Classes {
        /// Number of classes.
        num_classes: usize,
        /// The probabilities.
        probabilities: Vec<f32>,
    },
}

impl QueryPosterior {
    /// Makes Gaussian rows `first..first + count` a point mass at `value` (standard deviation 0),
    /// the target distribution of a noiseless constant function. Errors for class rows.
    pub fn set_point_mass(
        &mut self,
        first: usize,
        count: usize,
        value: f32,
    ) -> Result<(), PriorError> {
        match self {
            Self::Gaussian { mean, std } => {
                mean[first..first + count].fill(value);
                std[first..first + count].fill(0.0);
                Ok(())
            }
            Self::Classes { .. } => Err(PriorError::invalid(
                "constant datasets",
                "apply to regression targets only, not to class labels",
            )),
        }
    }

    /// Maps Gaussian rows `first..first + count` through `y -> (y - shift) / scale` (the affine
    /// standardisation of the targets); class rows are left unchanged.
    pub fn standardise_rows(&mut self, first: usize, count: usize, shift: f64, scale: f64) {
        if let Self::Gaussian { mean, std } = self {
            for m in &mut mean[first..first + count] {
                *m = ((f64::from(*m) - shift) / scale) as f32;
            }
            for s in &mut std[first..first + count] {
                *s = (f64::from(*s) / scale) as f32;
            }
        }
    }
}

/// One dataset's part of a [`QueryPosterior`].
enum DatasetPosterior {
    Gaussian(Vec<f32>, Vec<f32>),
    /// Row-major `queries x num_classes` probabilities.
    Classes(usize, Vec<f32>),
}

/// Why a draw has no closed-form posterior target.
fn unsupported(what: &str) -> PriorError {
    PriorError::invalid(
        "targets",
        format!(
            "posterior targets need a prior with a closed-form predictive given its latent (GP priors, \
             BNN classification priors, tabular-gp); this prior drew {what}: use sampled targets"
        ),
    )
}

/// The GP (and the number of leading input columns it reads) behind a draw, if any.
fn gp_of(h: &Hyperparameters, columns: usize) -> Option<(GpHyper, usize)> {
    match h {
        Hyperparameters::Gp(hyper) => Some((hyper.clone(), columns)),
        Hyperparameters::FeaturePadding {
            features_used,
            scale,
            inner,
        } => {
            let (mut hyper, _) = gp_of(inner, *features_used)?;
            for l in &mut hyper.lengthscales {
                *l *= scale;
            }
            Some((hyper, *features_used))
        }
        _ => None,
    }
}

fn describe(h: &Hyperparameters) -> &'static str {
    match h {
        Hyperparameters::Gp(_) => "a GP",
        Hyperparameters::Linear(_) => "a linear model",
        Hyperparameters::Mlp(_) => "a random MLP",
        Hyperparameters::Classification { .. } => "labels from a binarised regression",
        Hyperparameters::FeaturePadding { .. } => "a padded non-GP dataset",
        Hyperparameters::Custom { .. } => "a user-defined record",
        Hyperparameters::None => "nothing it records",
    }
}

/// The posterior of dataset `b`'s query targets given its first `n_context` points.
fn dataset_posterior(
    batch: &Batch,
    b: usize,
    n_context: usize,
) -> Result<DatasetPosterior, PriorError> {
    let (t, f) = (batch.seq_len, batch.num_features);
    let h = &batch.hyperparameters[b];
    if let Some((hyper, d)) = gp_of(h, f) {
        let x = batch.x_of(b);
        let columns = |rows: std::ops::Range<usize>| -> Vec<f64> {
            rows.flat_map(|r| x[r * f..r * f + d].iter().map(|&v| f64::from(v)))
                .collect()
        };
        let y: Vec<f64> = batch.y_of(b)[..n_context]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let gp = ExactGp::fit(&columns(0..n_context), &y, d, &hyper)?;
        let p = gp.predict(&columns(n_context..t))?;
        let mean = p.mean.iter().map(|&m| m as f32).collect();
        let std = p.var_y.iter().map(|&v| v.sqrt() as f32).collect();
        return Ok(DatasetPosterior::Gaussian(mean, std));
    }
    if let Hyperparameters::Custom { value } = h {
        if let Some(p) = value
            .get(CLASS1_PROBABILITIES_KEY)
            .and_then(|v| v.as_array())
        {
            if p.len() != t {
                return Err(PriorError::Shape {
                    what: CLASS1_PROBABILITIES_KEY.into(),
                    expected: t,
                    actual: p.len(),
                });
            }
            let probs = p[n_context..]
                .iter()
                .map(|v| v.as_f64().map(|q| q as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| {
                    PriorError::invalid(CLASS1_PROBABILITIES_KEY, "holds a non-number")
                })?;
            let rows = probs.iter().flat_map(|&q| [1.0 - q, q]).collect();
            return Ok(DatasetPosterior::Classes(2, rows));
        }
        if let Some(record) = value.get(LATENT_CLASSES_KEY) {
            let classes = LatentClasses::deserialize(record).map_err(|e| {
                PriorError::invalid(LATENT_CLASSES_KEY, format!("unreadable record: {e}"))
            })?;
            if classes.latent.len() != t {
                return Err(PriorError::Shape {
                    what: LATENT_CLASSES_KEY.into(),
                    expected: t,
                    actual: classes.latent.len(),
                });
            }
            let rows = classes.probabilities(n_context..t)?;
            return Ok(DatasetPosterior::Classes(classes.max_classes, rows));
        }
    }
    Err(unsupported(describe(h)))
}

/// The conditional distribution of the query targets `target_y[n_context..]` of every dataset of
/// `batch` given its first `n_context` points (`y` as sampled, before any standardisation) and the
/// latent its prior recorded. Datasets are processed in parallel; the result does not depend on the
/// thread count. Errors when a draw has no closed form (see the module docs) or a dataset's batch
/// disagree in kind.
pub fn query_posterior(batch: &Batch, n_context: usize) -> Result<QueryPosterior, PriorError> {
    if n_context >= batch.seq_len {
        return Err(PriorError::invalid(
            "n_context",
            format!(
                "{n_context} leaves no query in datasets of {} points",
                batch.seq_len
            ),
        ));
    }
    if batch.hyperparameters.len() != batch.batch_size {
        return Err(PriorError::Shape {
            what: "hyperparameters".into(),
            expected: batch.batch_size,
            actual: batch.hyperparameters.len(),
        });
    }
    let parts: Vec<DatasetPosterior> = (0..batch.batch_size)
        .into_par_iter()
        .map(|b| dataset_posterior(batch, b, n_context))
        .collect::<Result<_, _>>()?;
    let rows = batch.batch_size * (batch.seq_len - n_context);
    let mixed = || {
        PriorError::invalid(
            "targets",
            "datasets of one batch mix regression and classification",
        )
    };
    match parts.first() {
        Some(&DatasetPosterior::Classes(num_classes, _)) => {
            let mut probabilities = Vec::with_capacity(num_classes * rows);
            for part in parts {
                let DatasetPosterior::Classes(k, p) = part else {
                    return Err(mixed());
                };
                if k != num_classes {
                    return Err(PriorError::invalid(
                        "targets",
                        format!("datasets of one batch have {num_classes} and {k} classes"),
                    ));
                }
                probabilities.extend(p);
            }
            Ok(QueryPosterior::Classes {
                num_classes,
                probabilities,
            })
        }
        _ => {
            let (mut mean, mut std) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
            for part in parts {
                let DatasetPosterior::Gaussian(m, s) = part else {
                    return Err(mixed());
                };
                mean.extend(m);
                std.extend(s);
            }
            Ok(QueryPosterior::Gaussian { mean, std })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::prior_by_name;
    use crate::Prior;

    fn batch(name: &str, features: usize) -> Batch {
        prior_by_name(name)
            .unwrap()
            .sample_batch(3, 1, 4, 30, features)
            .unwrap()
    }

    #[test]
    fn gp_targets_are_pfn_gp_posteriors_of_each_dataset() {
        for (name, features) in [
            ("gp-1d", 1),
            ("gp-hyper", 1),
            ("gp-hyper-5d", 5),
            ("gp-5d", 5),
        ] {
            let b = batch(name, features);
            let n = 12;
            let QueryPosterior::Gaussian { mean, std } = query_posterior(&b, n).unwrap() else {
                panic!("{name}: not Gaussian");
            };
            assert_eq!(mean.len(), 4 * 18);
            for d in 0..4 {
                // Reference: pfn-gp directly on the dataset's own (unpadded, unscaled) inputs.
                let (hyper, used, scale) = match &b.hyperparameters[d] {
                    Hyperparameters::Gp(h) => (h.clone(), features, 1.0),
                    Hyperparameters::FeaturePadding {
                        features_used,
                        scale,
                        inner,
                    } => {
                        let Hyperparameters::Gp(h) = &**inner else {
                            panic!()
                        };
                        (h.clone(), *features_used, *scale)
                    }
                    other => panic!("{name}: {other:?}"),
                };
                let x = b.x_of(d);
                let cols = |r: std::ops::Range<usize>| -> Vec<f64> {
                    r.flat_map(|i| {
                        x[i * features..i * features + used]
                            .iter()
                            .map(|&v| f64::from(v) / scale)
                    })
                    .collect()
                };
                let y: Vec<f64> = b.y_of(d)[..n].iter().map(|&v| f64::from(v)).collect();
                let p =
                    pfn_gp::posterior(&cols(0..n), &y, used, &hyper, &cols(n..30), false).unwrap();
                for q in 0..18 {
                    let r = d * 18 + q;
                    let tol_m = 1e-4 * (1.0 + p.mean[q].abs());
                    assert!(
                        (f64::from(mean[r]) - p.mean[q]).abs() < tol_m,
                        "{name} dataset {d} query {q}: mean {} vs {}",
                        mean[r],
                        p.mean[q]
                    );
                    let s = p.var_y[q].sqrt();
                    assert!(
                        (f64::from(std[r]) - s).abs() < 1e-4 * s,
                        "{name} dataset {d} query {q}: std {} vs {s}",
                        std[r]
                    );
                }
            }
        }
    }

    #[test]
    fn without_context_the_gp_target_is_the_prior() {
        let b = batch("gp-1d", 1);
        let QueryPosterior::Gaussian { mean, std } = query_posterior(&b, 0).unwrap() else {
            panic!()
        };
        assert!(mean.iter().all(|&m| m == 0.0));
        // outputscale 1 + noise 1e-4.
        assert!(std
            .iter()
            .all(|&s| (f64::from(s) - 1.0001f64.sqrt()).abs() < 1e-6));
    }

    #[test]
    fn bnn_classification_targets_are_the_label_probabilities() {
        let b = batch("bnn-classification-small", 3);
        let QueryPosterior::Classes {
            num_classes,
            probabilities,
        } = query_posterior(&b, 10).unwrap()
        else {
            panic!()
        };
        assert_eq!(num_classes, 2);
        assert_eq!(probabilities.len(), 2 * 4 * 20);
        for row in probabilities.chunks_exact(2) {
            assert!((row[0] + row[1] - 1.0).abs() < 1e-6 && row[1] >= 0.0 && row[1] <= 1.0);
        }
        // The labels are Bernoulli draws from these probabilities: over many points the mean label
        // agrees with the mean probability.
        let many = prior_by_name("bnn-classification-small")
            .unwrap()
            .sample_batch(5, 0, 64, 100, 3)
            .unwrap();
        let QueryPosterior::Classes { probabilities, .. } = query_posterior(&many, 0).unwrap()
        else {
            panic!()
        };
        let p: f64 = probabilities.chunks_exact(2).map(|r| f64::from(r[1])).sum();
        let labels: f64 = many.target_y.iter().map(|&v| f64::from(v)).sum();
        let n = many.target_y.len() as f64;
        assert!(
            ((p - labels) / n).abs() < 3.0 * (0.25 / n).sqrt(),
            "{p} vs {labels}"
        );
    }

    #[test]
    fn priors_without_a_closed_form_are_errors() {
        for (name, f) in [
            ("ridge", 5),
            ("bnn", 3),
            ("gp-1d-binary", 1),
            ("tabular-bnn", 60),
        ] {
            let err = query_posterior(&batch(name, f), 5).unwrap_err().to_string();
            assert!(err.contains("sampled targets"), "{name}: {err}");
        }
        let err = query_posterior(&batch("gp-1d", 1), 30).unwrap_err();
        assert!(err.to_string().contains("no query"), "{err}");
    }
}
