//! Samplers of the split point `n = single_eval_pos` (the number of context points), spec §1.3.
//!
//! * [`SplitSampler::weighted`]`(N)`: `n ∈ {0, …, N−1}` with `P(n) ∝ 1 / (N − n)` (paper App. E.1 and
//!   code `get_weighted_single_eval_pos_sampler`): large `n`, i.e. few queries, is over-sampled so the
//!   number of query points seen per `n` is about constant. `n = 0` (no context) is possible.
//! * [`SplitSampler::uniform`]`(lo, hi)`: uniform on `{lo, …, hi}` (maintained library, tabular PFNs).
//! * [`SplitSampler::harmonic`]`(lo, hi)`: `P(n) ∝ 1 / n` on `{lo, …, hi}`, `lo ≥ 1`: every octave
//!   of context sizes (1-2, 2-4, …, 128-256) gets about the same share of the training datasets,
//!   where the uniform sampler gives the first few sizes, the hardest to learn, almost none (1/249
//!   each for 1..=249).
//!
//! Draws are seeded: [`SplitSampler::sample_for_batch`] uses the stream
//! `stream_rng(domain::SPLIT, seed, &[batch_index])`, so every batch's split is reproducible and
//! independent of the datasets' streams.

use std::ops::RangeInclusive;

use rand::Rng;

use crate::error::PriorError;
use crate::rng::{domain, stream_rng, PriorRng};

/// The distribution family of a [`SplitSampler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// `P(n) ∝ 1 / (N − n)` on `{0, …, N−1}`.
    Weighted,
    /// Uniform on an inclusive range.
    Uniform,
    /// `P(n) ∝ 1 / n` on an inclusive range starting at 1 or later.
    Harmonic,
}

/// A seeded sampler of the split point.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSampler {
    kind: SplitKind,
    lo: usize,
    hi: usize,
    /// Unnormalised cumulative weights of `lo..=hi` (weighted and harmonic kinds).
    cumulative: Vec<f64>,
}

impl SplitSampler {
    /// `n ∈ {0, …, max_len − 1}` with weight `1 / (max_len − n)`; `max_len ≥ 1`.
    pub fn weighted(max_len: usize) -> Result<Self, PriorError> {
        if max_len == 0 {
            return Err(PriorError::invalid("max_len", "must be at least 1"));
        }
        let mut total = 0.0;
        let cumulative = (0..max_len)
            .map(|n| {
                total += 1.0 / (max_len - n) as f64;
                total
            })
            .collect();
        Ok(Self {
            kind: SplitKind::Weighted,
            lo: 0,
            hi: max_len - 1,
            cumulative,
        })
    }

    /// `n ∈ {min, …, max}` with weight `1 / n`; `1 ≤ min ≤ max`.
    pub fn harmonic(min: usize, max: usize) -> Result<Self, PriorError> {
        if min == 0 {
            return Err(PriorError::invalid(
                "min",
                "the harmonic split needs at least 1 context point (weight 1 / n)",
            ));
        }
        if min > max {
            return Err(PriorError::invalid(
                "min",
                format!("split range {min}..={max} is empty"),
            ));
        }
        let mut total = 0.0;
        let cumulative = (min..=max)
            .map(|n| {
                total += 1.0 / n as f64;
                total
            })
            .collect();
        Ok(Self {
            kind: SplitKind::Harmonic,
            lo: min,
            hi: max,
            cumulative,
        })
    }

    /// Uniform on `{min, …, max}`; `min ≤ max`.
    pub fn uniform(min: usize, max: usize) -> Result<Self, PriorError> {
        if min > max {
            return Err(PriorError::invalid(
                "min",
                format!("split range {min}..={max} is empty"),
            ));
        }
        Ok(Self {
            kind: SplitKind::Uniform,
            lo: min,
            hi: max,
            cumulative: Vec::new(),
        })
    }

    /// The distribution family.
    pub fn kind(&self) -> SplitKind {
        self.kind
    }

    /// The values `n` can take.
    pub fn support(&self) -> RangeInclusive<usize> {
        self.lo..=self.hi
    }

    /// `P(n)` (0 outside the support).
    pub fn probability(&self, n: usize) -> f64 {
        if n < self.lo || n > self.hi {
            return 0.0;
        }
        match self.kind {
            SplitKind::Uniform => 1.0 / (self.hi - self.lo + 1) as f64,
            SplitKind::Weighted => {
                let total = *self.cumulative.last().expect("non-empty by construction");
                1.0 / ((self.hi + 1 - n) as f64 * total)
            }
            SplitKind::Harmonic => {
                let total = *self.cumulative.last().expect("non-empty by construction");
                1.0 / (n as f64 * total)
            }
        }
    }

    /// One draw from `rng`.
    pub fn sample(&self, rng: &mut PriorRng) -> usize {
        match self.kind {
            SplitKind::Uniform => rng.random_range(self.lo..=self.hi),
            SplitKind::Weighted | SplitKind::Harmonic => {
                let total = *self.cumulative.last().expect("non-empty by construction");
                let u = rng.random::<f64>() * total;
                let i = self.cumulative.partition_point(|&c| c <= u);
                self.lo + i.min(self.cumulative.len() - 1)
            }
        }
    }

    /// The split of batch `batch_index` in the run seeded with `seed`.
    pub fn sample_for_batch(&self, seed: u64, batch_index: u64) -> usize {
        self.sample(&mut stream_rng(domain::SPLIT, seed, &[batch_index]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chi-square statistic of observed counts against `probability`.
    fn chi_square(s: &SplitSampler, draws: usize, seed: u64) -> (f64, usize) {
        let k = s.support().count();
        let mut counts = vec![0usize; k];
        for b in 0..draws as u64 {
            let n = s.sample_for_batch(seed, b);
            assert!(s.support().contains(&n), "draw {n} outside support");
            counts[n - s.lo] += 1;
        }
        let chi2 = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let e = draws as f64 * s.probability(s.lo + i);
                (c as f64 - e).powi(2) / e
            })
            .sum();
        (chi2, k - 1)
    }

    #[test]
    fn weighted_frequencies_match_inverse_query_count() {
        // N = 10: weights 1/10, 1/9, ..., 1/1, normalised by H_10. With 9 degrees of freedom the
        // chi-square 0.999 quantile is 27.9; a uniform sampler would score in the thousands here.
        let s = SplitSampler::weighted(10).unwrap();
        let h10: f64 = (1..=10).map(|k| 1.0 / k as f64).sum();
        assert!((s.probability(9) - 1.0 / h10).abs() < 1e-12);
        assert!((s.probability(0) - 0.1 / h10).abs() < 1e-12);
        assert!(((0..10).map(|n| s.probability(n)).sum::<f64>() - 1.0).abs() < 1e-12);
        let (chi2, dof) = chi_square(&s, 40_000, 7);
        assert_eq!(dof, 9);
        assert!(chi2 < 27.9, "chi2 = {chi2}");
    }

    #[test]
    fn uniform_frequencies_are_flat() {
        let s = SplitSampler::uniform(3, 12).unwrap();
        let (chi2, dof) = chi_square(&s, 20_000, 1);
        assert_eq!(dof, 9);
        assert!(chi2 < 27.9, "chi2 = {chi2}");
        assert_eq!(s.probability(2), 0.0);
    }

    #[test]
    fn harmonic_frequencies_fall_as_one_over_n() {
        // 1..=10: weights 1, 1/2, ..., 1/10 over H_10; 9 degrees of freedom as above.
        let s = SplitSampler::harmonic(1, 10).unwrap();
        let h10: f64 = (1..=10).map(|k| 1.0 / k as f64).sum();
        assert!((s.probability(1) - 1.0 / h10).abs() < 1e-12);
        assert!((s.probability(10) - 0.1 / h10).abs() < 1e-12);
        assert_eq!(s.probability(0), 0.0);
        let (chi2, dof) = chi_square(&s, 40_000, 5);
        assert_eq!(dof, 9);
        assert!(chi2 < 27.9, "chi2 = {chi2}");
        // Every octave of 1..=256 gets a similar share: [1, 2) holds 1 / H_256 = 0.16, [128, 256)
        // holds ln 2 / H_256 = 0.11 (the uniform sampler: 0.004 and 0.5).
        let wide = SplitSampler::harmonic(1, 256).unwrap();
        let share = |r: std::ops::Range<usize>| r.map(|n| wide.probability(n)).sum::<f64>();
        assert!((0.1..0.2).contains(&share(1..2)));
        assert!((0.1..0.2).contains(&share(128..256)));
        assert!(SplitSampler::harmonic(0, 5).is_err());
        assert!(SplitSampler::harmonic(6, 5).is_err());
    }

    #[test]
    fn seeded_and_reproducible() {
        let s = SplitSampler::weighted(100).unwrap();
        let a: Vec<usize> = (0..50).map(|b| s.sample_for_batch(3, b)).collect();
        let b: Vec<usize> = (0..50).map(|b| s.sample_for_batch(3, b)).collect();
        let c: Vec<usize> = (0..50).map(|b| s.sample_for_batch(4, b)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(SplitSampler::weighted(0).is_err());
        assert!(SplitSampler::uniform(5, 4).is_err());
        let one = SplitSampler::weighted(1).unwrap();
        assert_eq!(one.sample_for_batch(0, 0), 0);
    }
}
