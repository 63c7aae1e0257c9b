//! Held-out datasets of a registry prior, drawn with a seed kept apart from every training,
//! validation and border stream, and one dataset's points as f64.

use pfn_gp::GpHyper;
use pfn_prior::{Batch, Hyperparameters, Prior};

use crate::error::ExperimentError;

/// Datasets per prior call (the datasets depend on the seed and their number only).
pub const SAMPLE_CHUNK: usize = 64;

/// Domain tag of the evaluation seed (distinct from the training, validation, borders and
/// initialisation streams).
pub const EVAL_DOMAIN: u64 = 0x6576_616c_7561_7465;

/// The seed of the held-out datasets of a run with `--seed seed` (and of `pfn eval` on a model
/// trained with run seed `seed`): domain-separated from the training stream
/// (`prior.sample_batch(run_seed, step, ...)`) and the validation and border seeds.
pub fn dataset_seed(seed: u64) -> u64 {
    pfn_prior::rng::derive_key(EVAL_DOMAIN, seed, &[])
}

/// `count` held-out datasets of `seq_len` points with `num_features` features.
#[derive(Debug, Clone)]
pub struct HeldOut {
    batches: Vec<Batch>,
    num_features: usize,
}

/// One held-out dataset in f64, as a user would hold it: a dataset the prior zero-padded
/// (`Hyperparameters::FeaturePadding`) comes back with only its used columns, unscaled by the
/// padding factor (the inputs the prior drew), and the GP hyperparameters of those columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Features per row of `x` (the used features of a padded dataset).
    pub features: usize,
    /// Inputs, row-major `seq_len x features`.
    pub x: Vec<f64>,
    /// Values shown as context.
    pub y: Vec<f64>,
    /// Values scored at queries.
    pub target_y: Vec<f64>,
    /// The GP hyperparameters the prior drew (GP priors only).
    pub gp: Option<GpHyper>,
}

impl HeldOut {
    /// Samples the datasets from `prior` (named `prior_name` in errors).
    pub fn sample(
        prior: &dyn Prior,
        prior_name: &str,
        seed: u64,
        count: usize,
        seq_len: usize,
        num_features: usize,
    ) -> Result<Self, ExperimentError> {
        let mut batches = Vec::new();
        let mut remaining = count;
        let mut index = 0u64;
        while remaining > 0 {
            let size = remaining.min(SAMPLE_CHUNK);
            batches.push(
                prior
                    .sample_batch(seed, index, size, seq_len, num_features)
                    .map_err(|source| ExperimentError::Prior {
                        prior: prior_name.to_string(),
                        source,
                    })?,
            );
            remaining -= size;
            index += 1;
        }
        Ok(Self {
            batches,
            num_features,
        })
    }

    /// Number of datasets.
    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.batch_size).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per point.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Dataset `i` in f64 (`None` past the end).
    pub fn get(&self, i: usize) -> Option<Dataset> {
        let (chunk, b) = (i / SAMPLE_CHUNK, i % SAMPLE_CHUNK);
        let batch = self.batches.get(chunk)?;
        if b >= batch.batch_size {
            return None;
        }
        let f64s = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
        let (features, x, gp) = match &batch.hyperparameters[b] {
            Hyperparameters::Gp(h) => (self.num_features, f64s(batch.x_of(b)), Some(h.clone())),
            Hyperparameters::FeaturePadding {
                features_used,
                scale,
                inner,
            } => {
                let x = batch
                    .x_of(b)
                    .chunks_exact(self.num_features)
                    .flat_map(|row| row[..*features_used].iter().map(|&v| f64::from(v) / scale))
                    .collect();
                let gp = match inner.as_ref() {
                    Hyperparameters::Gp(h) => Some(h.clone()),
                    _ => None,
                };
                (*features_used, x, gp)
            }
            _ => (self.num_features, f64s(batch.x_of(b)), None),
        };
        Some(Dataset {
            features,
            x,
            y: f64s(batch.y_of(b)),
            target_y: f64s(batch.target_y_of(b)),
            gp,
        })
    }
}

/// Whether the registry prior `name` records GP hyperparameters for its datasets, so the exact
/// GP with the true hyperparameters is available as the reference (its registry entry lists
/// `pfn_prior::Baseline::OracleGp`). An unknown name, or a feature count the prior does not
/// support (checked by drawing one small dataset), is an error.
pub fn is_gp_prior(name: &str, num_features: usize) -> Result<bool, String> {
    let entry = pfn_prior::registered_prior(name).map_err(|e| e.to_string())?;
    let prior = entry.prior().map_err(|e| e.to_string())?;
    prior
        .sample_batch(0, 0, 1, 2, num_features)
        .map_err(|e| e.to_string())?;
    Ok(entry.has_baseline(pfn_prior::Baseline::OracleGp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_indexed_across_chunks_and_reproducible() {
        let prior = pfn_prior::prior_by_name("gp-1d").unwrap();
        let a = HeldOut::sample(prior.as_ref(), "gp-1d", 5, 70, 4, 1).unwrap();
        let b = HeldOut::sample(prior.as_ref(), "gp-1d", 5, 70, 4, 1).unwrap();
        assert_eq!(a.len(), 70);
        assert!(a.get(70).is_none());
        let d69 = a.get(69).unwrap();
        assert_eq!(d69, b.get(69).unwrap());
        assert_eq!(d69.x.len(), 4);
        assert!(d69.gp.is_some());
        // Dataset 65 is dataset 1 of the second prior call.
        let second = prior.sample_batch(5, 1, 6, 4, 1).unwrap();
        assert_eq!(a.get(65).unwrap().y[2], f64::from(second.y_of(1)[2]));
        assert_ne!(a.get(0).unwrap().y, a.get(1).unwrap().y);
    }

    #[test]
    fn gp_priors_are_recognised() {
        assert_eq!(is_gp_prior("gp-5d", 5), Ok(true));
        assert_eq!(is_gp_prior("gp-hyper", 2), Ok(true));
        assert_eq!(is_gp_prior("ridge", 5), Ok(false));
        assert!(is_gp_prior("nope", 1).is_err());
    }
}
