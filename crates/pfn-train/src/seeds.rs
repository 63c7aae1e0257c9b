//! The random streams of a run, all derived from the run seed.
//!
//! * Training micro-batch `i` is `prior.sample_batch(run_seed, i, ...)` and its split point is
//!   `split.sample_for_batch(run_seed, i)`; both use `pfn_prior`'s per-batch streams
//!   (`pfn_prior::rng`), so they depend only on `(run_seed, i)`, never on timing, thread count
//!   or the step the run started at.
//! * Everything else draws from a *derived seed* `derive_key(domain, run_seed, [])` for one of the
//!   domains below, so its streams never coincide with the training streams: the validation set
//!   (batch `j` = `prior.sample_batch(validation_seed, j, ...)`), the prior samples used for the
//!   bucket borders, and the parameter initialisation.

use pfn_prior::rng::derive_key;

/// Domain tags of the derived seeds (ASCII words; distinct from `pfn_prior::rng::domain`).
pub mod domain {
    /// The held-out validation datasets and their split points.
    pub const VALIDATION: u64 = 0x7661_6c69_6461_7465;
    /// The prior samples used to estimate the Riemann-head borders.
    pub const BORDERS: u64 = 0x626f_7264_6572_7321;
    /// Parameter initialisation of the model.
    pub const INIT: u64 = 0x696e_6974_6961_6c21;
    /// Which training datasets become constant functions (`prior.constant_fraction`; path
    /// `[batch_index]`, one uniform draw per dataset in order).
    pub const CONSTANT: u64 = 0x636f_6e73_7461_6e74;
}

/// The seed passed to `Prior::sample_batch` / `SplitSampler::sample_for_batch` for the
/// validation set of a run with seed `run_seed`.
pub fn validation_seed(run_seed: u64) -> u64 {
    derive_key(domain::VALIDATION, run_seed, &[])
}

/// The seed for the prior samples that estimate the bucket borders.
pub fn borders_seed(run_seed: u64) -> u64 {
    derive_key(domain::BORDERS, run_seed, &[])
}

/// The generator that decides which datasets of training micro-batch `index` become constant.
pub fn constant_datasets_rng(run_seed: u64, index: u64) -> pfn_prior::rng::PriorRng {
    pfn_prior::rng::stream_rng(domain::CONSTANT, run_seed, &[index])
}

/// The seed for the model's parameter initialisation.
pub fn init_seed(run_seed: u64) -> u64 {
    derive_key(domain::INIT, run_seed, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn derived_seeds_differ_from_each_other_and_from_the_run_seed() {
        let mut seen = HashSet::new();
        for run in 0..100u64 {
            for s in [run, validation_seed(run), borders_seed(run), init_seed(run)] {
                assert!(seen.insert(s), "seed collision for run {run}");
            }
        }
        assert_eq!(validation_seed(5), validation_seed(5));
    }
}
