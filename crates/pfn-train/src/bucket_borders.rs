//! Equal-prior-mass bucket borders for a run's Riemann head, from prior samples drawn with the
//! run's dedicated borders seed ([`crate::seeds::borders_seed`]).

use pfn_distribution::{quantile_borders, DistributionError};
use pfn_prior::{Prior, PriorError};

use crate::config::BorderEdges;
use crate::loader::BatchPlan;
use crate::normalisation::standardise_targets_by_context;
use crate::seeds::borders_seed;

/// Values sampled per prior call when collecting border samples.
const VALUES_PER_CALL: usize = 1 << 16;

/// Errors while estimating borders.
#[derive(Debug, thiserror::Error)]
pub enum BordersError {
    /// Sampling the prior failed.
    #[error("sampling prior values for the bucket borders: {0}")]
    Prior(#[from] PriorError),
    /// The quantile estimation failed.
    #[error("estimating bucket borders: {0}")]
    Quantiles(#[from] DistributionError),
    /// Tied prior values left fewer distinct borders than the configured buckets.
    #[error("the prior's values give only {got} distinct buckets, but model.buckets = {wanted}; lower model.buckets (or use a class head for a classification prior)")]
    TooFewDistinct {
        /// Distinct buckets obtained.
        got: usize,
        /// Buckets configured.
        wanted: usize,
    },
}

/// The first `samples` loss targets (`target_y`) of prior batches `0, 1, …` drawn with
/// `borders_seed(run_seed)`, datasets of `seq_len` points with `num_features` features.
pub fn sample_border_values(
    prior: &dyn Prior,
    run_seed: u64,
    samples: usize,
    seq_len: usize,
    num_features: usize,
) -> Result<Vec<f32>, PriorError> {
    let seed = borders_seed(run_seed);
    let per_call = (VALUES_PER_CALL / seq_len.max(1)).max(1);
    let mut values = Vec::with_capacity(samples);
    let mut index = 0u64;
    while values.len() < samples {
        let needed = (samples - values.len()).div_ceil(seq_len.max(1));
        let batch = prior.sample_batch(seed, index, per_call.min(needed), seq_len, num_features)?;
        let take = (samples - values.len()).min(batch.target_y.len());
        values.extend_from_slice(&batch.target_y[..take]);
        index += 1;
    }
    Ok(values)
}

/// The first `samples` *query* targets of batches drawn as `plan` draws training batches (split,
/// target standardisation) but with `borders_seed(run_seed)`: the values a plan whose targets are
/// transformed per batch ([`BatchPlan::standardises_targets`]) actually trains on.
pub fn sample_plan_query_values(plan: &BatchPlan, samples: usize) -> Result<Vec<f32>, PriorError> {
    let seed = borders_seed(plan.run_seed());
    let seq_len = plan.seq_len();
    let mut values = Vec::with_capacity(samples);
    let mut index = 0u64;
    while values.len() < samples {
        let n = plan.split().sample_for_batch(seed, index);
        let mut batch = plan.prior().sample_batch(
            seed,
            index,
            plan.batch_size(),
            seq_len,
            plan.num_features(),
        )?;
        if plan.standardises_targets() {
            standardise_targets_by_context(&mut batch, n);
        }
        for t in batch.target_y.chunks_exact(seq_len) {
            let take = (samples - values.len()).min(seq_len - n);
            values.extend_from_slice(&t[n..n + take]);
        }
        index += 1;
    }
    Ok(values)
}

/// `buckets + 1` equal-mass borders from `samples` prior values (see [`sample_border_values`] and
/// `pfn_distribution::quantile_borders`); outer borders are the sample min and max.
pub fn estimate_borders(
    prior: &dyn Prior,
    run_seed: u64,
    samples: usize,
    buckets: usize,
    seq_len: usize,
    num_features: usize,
) -> Result<Vec<f64>, BordersError> {
    let values = sample_border_values(prior, run_seed, samples, seq_len, num_features)?;
    borders_from_values(&values, buckets)
}

/// Moves the outermost borders as `edges` says: for [`BorderEdges::NeighbourWidth`] each edge
/// bucket gets the width of its inner neighbour (`b0 = b1 - (b2 - b1)`, `bK = bK-1 + (bK-1 - bK-2)`);
/// [`BorderEdges::SampleRange`] and fewer than three buckets leave them unchanged.
pub fn set_edges(borders: &mut [f64], edges: BorderEdges) {
    let k = borders.len().saturating_sub(1);
    if edges == BorderEdges::NeighbourWidth && k >= 3 {
        borders[0] = borders[1] - (borders[2] - borders[1]);
        borders[k] = borders[k - 1] + (borders[k - 1] - borders[k - 2]);
    }
}

/// `buckets + 1` equal-mass borders of `values`; errors when ties leave fewer distinct buckets.
pub fn borders_from_values(values: &[f32], buckets: usize) -> Result<Vec<f64>, BordersError> {
    let borders = quantile_borders(values, buckets, None)?;
    if borders.len() != buckets + 1 {
        return Err(BordersError::TooFewDistinct {
            got: borders.len() - 1,
            wanted: buckets,
        });
    }
    Ok(borders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfn_prior::prior_by_name;

    #[test]
    fn borders_are_reproducible_and_have_equal_mass() {
        let prior = prior_by_name("gp-1d").unwrap();
        let a = estimate_borders(prior.as_ref(), 1, 20_000, 10, 50, 1).unwrap();
        let b = estimate_borders(prior.as_ref(), 1, 20_000, 10, 50, 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 11);
        // Fresh values from another seed fall about equally into the buckets (marginal N(0, 1)).
        let fresh = sample_border_values(prior.as_ref(), 99, 100_000, 50, 1).unwrap();
        let mut counts = [0usize; 10];
        for v in fresh {
            let v = f64::from(v);
            let k = a.partition_point(|&b| b < v).clamp(1, 10) - 1;
            counts[k] += 1;
        }
        for c in counts {
            assert!((8_000..12_000).contains(&c), "{counts:?}");
        }
        // The median border is near 0 for a zero-mean prior.
        assert!(a[5].abs() < 0.1, "{a:?}");
    }

    #[test]
    fn labels_give_too_few_distinct_borders() {
        let prior = prior_by_name("gp-1d-binary").unwrap();
        let e = estimate_borders(prior.as_ref(), 0, 5_000, 10, 20, 1).unwrap_err();
        assert!(matches!(e, BordersError::TooFewDistinct { .. }), "{e}");
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn neighbour_width_edges_copy_the_inner_widths() {
        let mut b = vec![-400.0, -2.0, -1.5, 0.0, 1.0, 3.0, 517.0];
        let original = b.clone();
        set_edges(&mut b, BorderEdges::SampleRange);
        assert_eq!(b, original);
        set_edges(&mut b, BorderEdges::NeighbourWidth);
        assert_eq!(b, vec![-2.5, -2.0, -1.5, 0.0, 1.0, 3.0, 5.0]);
        let mut two = vec![-9.0, 0.0, 9.0];
        set_edges(&mut two, BorderEdges::NeighbourWidth);
        assert_eq!(two, vec![-9.0, 0.0, 9.0]);
    }
}
