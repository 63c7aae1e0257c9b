//! Feature columns that look like real tables, for the tabular BNN prior.
//!
//! The paper draws every feature independently from N(0, 1). Real small tables are rarely like
//! that: their columns are correlated (many measure the same few underlying quantities, as the 60+
//! Fourier or Karhunen-Loève coefficients of the `mfeat` sets do), and many are discrete (flags,
//! small ordinal scales, counts with ties, many zeros and a heavy tail, as in the software-defect
//! sets `kc2` and `pc4`). A model trained only on independent Gaussian columns learns that 60
//! features and 30 rows leave the classes uncertain, and is underconfident on wide tables whose
//! columns carry the same signal many times over.
//!
//! [`TabularInputs`] mixes in such columns. Per dataset of `F_u` used columns:
//!
//! 1. with probability `correlated`, the columns share `r` latent factors, `r = 1 + ⌊u² F_u⌋`
//!    (`u ~ U[0, 1)`, capped at `F_u`, so few factors are likely): column `j` is
//!    `sqrt(w) · (z · a_j) / |a_j| + sqrt(1 − w) · e_j` with `z ~ N(0, I_r)` per row, loadings
//!    `a_j ~ N(0, I_r)` per column, `e_j ~ N(0, 1)` and the shared share `w ~ U[0.3, 1)` per
//!    dataset; otherwise the columns are independent N(0, 1) (the paper);
//! 2. with probability `discrete`, each column is made discrete with probability `q ~ U[0, 1)`
//!    (drawn per dataset), a third of them each way: a flag `1[x > t]` with `t ~ N(0, 1)`; an
//!    ordinal scale of `k ~ U{2..7}` levels, `clamp(⌊(x + 3) k / 6⌋, 0, k − 1)`; or a count
//!    `⌊exp(s x + m)⌋` with `s ~ U[0.5, 1.5)` and `m ~ U[−1, 1.5)`;
//! 3. every column is z-normalised over the dataset (constant columns become 0), so the network
//!    of the prior sees standardised inputs whatever their kind.
//!
//! [`TabularInputs::PAPER`] (both probabilities 0) draws exactly what the paper's prior draws, with
//! the same random numbers, so datasets of the plain `tabular-bnn` prior are unchanged.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{check_probability, PriorError};
use crate::inputs::{fill_standard_normal, std_normal};
use crate::mlp::z_normalize_columns;
use crate::rng::PriorRng;

/// How the feature columns of a tabular dataset are drawn; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TabularInputs {
    /// Probability that a dataset's columns share latent factors (else they are independent).
    pub correlated: f64,
    /// Probability that a dataset has discrete columns (flags, ordinal scales, counts).
    pub discrete: f64,
}

impl Default for TabularInputs {
    /// [`TabularInputs::PAPER`].
    fn default() -> Self {
        Self::PAPER
    }
}

/// Kinds of discrete column, in the order of the draw.
const DISCRETE_KINDS: u32 = 3;

impl TabularInputs {
    /// The paper's inputs: independent N(0, 1) columns.
    pub const PAPER: Self = Self {
        correlated: 0.0,
        discrete: 0.0,
    };

    /// Half the datasets with correlated columns, half (independently) with discrete columns.
    pub const MIXED: Self = Self {
        correlated: 0.5,
        discrete: 0.5,
    };

    /// Checks that both probabilities lie in [0, 1].
    pub fn validate(&self) -> Result<(), PriorError> {
        for (key, p) in [
            ("inputs.correlated", self.correlated),
            ("inputs.discrete", self.discrete),
        ] {
            check_probability(key, p)?;
        }
        Ok(())
    }

    /// Whether these are the paper's independent Gaussian columns.
    pub fn is_paper(&self) -> bool {
        self.correlated == 0.0 && self.discrete == 0.0
    }

    /// Fills `x` (row-major, `f` columns) with one dataset's feature columns.
    pub fn fill(&self, rng: &mut PriorRng, x: &mut [f32], f: usize) {
        if self.is_paper() || f == 0 {
            fill_standard_normal(rng, x);
            return;
        }
        if rng.random::<f64>() < self.correlated {
            fill_correlated(rng, x, f);
        } else {
            fill_standard_normal(rng, x);
        }
        if rng.random::<f64>() < self.discrete {
            let share: f64 = rng.random();
            for j in 0..f {
                if rng.random::<f64>() < share {
                    discretise_column(rng, x, f, j);
                }
            }
        }
        z_normalize_columns(x, f);
    }
}

/// Step 1 of the module docs: columns driven by a few shared latent factors.
fn fill_correlated(rng: &mut PriorRng, x: &mut [f32], f: usize) {
    let u: f64 = rng.random();
    let rank = (1 + (u * u * f as f64) as usize).min(f);
    let shared: f64 = rng.random_range(0.3..1.0);
    // Loadings, one unit vector per column.
    let mut loadings: Vec<f64> = (0..rank * f).map(|_| std_normal(rng)).collect();
    for a in loadings.chunks_exact_mut(rank) {
        let norm = a
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        a.iter_mut().for_each(|v| *v /= norm);
    }
    let (signal, noise) = (shared.sqrt(), (1.0 - shared).sqrt());
    let mut z = vec![0.0f64; rank];
    for row in x.chunks_exact_mut(f) {
        z.iter_mut().for_each(|v| *v = std_normal(rng));
        for (v, a) in row.iter_mut().zip(loadings.chunks_exact(rank)) {
            let common: f64 = a.iter().zip(&z).map(|(a, z)| a * z).sum();
            *v = (signal * common + noise * std_normal(rng)) as f32;
        }
    }
}

/// Step 2 of the module docs: column `j` becomes a flag, an ordinal scale or a count.
fn discretise_column(rng: &mut PriorRng, x: &mut [f32], f: usize, j: usize) {
    let column = x.iter_mut().skip(j).step_by(f);
    match rng.random_range(0..DISCRETE_KINDS) {
        0 => {
            let t = std_normal(rng) as f32;
            column.for_each(|v| *v = f32::from(u8::from(*v > t)));
        }
        1 => {
            let k = rng.random_range(2..=7u32) as f32;
            column.for_each(|v| *v = ((*v + 3.0) * k / 6.0).floor().clamp(0.0, k - 1.0));
        }
        _ => {
            let s: f32 = rng.random_range(0.5..1.5);
            let m: f32 = rng.random_range(-1.0..1.5);
            column.for_each(|v| *v = (s * *v + m).exp().floor());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::dataset_rng;

    fn draw(inputs: TabularInputs, seed: u64, rows: usize, f: usize) -> Vec<f32> {
        let mut rng = dataset_rng(seed, 0, 0);
        let mut x = vec![0.0f32; rows * f];
        inputs.fill(&mut rng, &mut x, f);
        x
    }

    fn column(x: &[f32], f: usize, j: usize) -> Vec<f64> {
        x.iter().skip(j).step_by(f).map(|&v| f64::from(v)).collect()
    }

    fn correlation(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt().max(1e-300)
    }

    #[test]
    fn paper_inputs_are_the_plain_gaussian_draws() {
        let mut rng = dataset_rng(7, 0, 0);
        let mut want = vec![0.0f32; 40 * 6];
        fill_standard_normal(&mut rng, &mut want);
        assert_eq!(draw(TabularInputs::PAPER, 7, 40, 6), want);
    }

    #[test]
    fn mixed_inputs_are_finite_standardised_and_reproducible() {
        for seed in 0..200 {
            let x = draw(TabularInputs::MIXED, seed, 50, 9);
            assert_eq!(x, draw(TabularInputs::MIXED, seed, 50, 9));
            for j in 0..9 {
                let c = column(&x, 9, j);
                assert!(c.iter().all(|v| v.is_finite()), "seed {seed}");
                let m = c.iter().sum::<f64>() / c.len() as f64;
                let sd = (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 49.0).sqrt();
                assert!(m.abs() < 1e-4, "seed {seed} column {j}: mean {m}");
                // A column made constant (a flag whose threshold missed every row) is all zeros.
                assert!(
                    (sd - 1.0).abs() < 1e-3 || sd == 0.0,
                    "seed {seed} column {j}: std {sd}"
                );
            }
        }
    }

    #[test]
    fn correlated_datasets_have_strongly_correlated_columns() {
        let only_correlated = TabularInputs {
            correlated: 1.0,
            discrete: 0.0,
        };
        let paper_max = |seed| {
            let x = draw(TabularInputs::PAPER, seed, 400, 8);
            (1..8)
                .map(|j| correlation(&column(&x, 8, 0), &column(&x, 8, j)).abs())
                .fold(0.0, f64::max)
        };
        let mut strong = 0;
        for seed in 0..50 {
            let x = draw(only_correlated, seed, 400, 8);
            let best = (1..8)
                .map(|j| correlation(&column(&x, 8, 0), &column(&x, 8, j)).abs())
                .fold(0.0, f64::max);
            if best > 0.5 {
                strong += 1;
            }
            // Independent columns of 400 rows: |r| of order 1/sqrt(400).
            assert!(paper_max(seed) < 0.25);
        }
        assert!(strong >= 35, "only {strong} of 50 datasets had |r| > 0.5");
    }

    #[test]
    fn discrete_datasets_have_columns_with_ties() {
        let only_discrete = TabularInputs {
            correlated: 0.0,
            discrete: 1.0,
        };
        let mut with_ties = 0;
        for seed in 0..50 {
            let x = draw(only_discrete, seed, 100, 10);
            let tied = (0..10).any(|j| {
                let mut c = column(&x, 10, j);
                c.sort_by(f64::total_cmp);
                c.dedup();
                c.len() < 50
            });
            with_ties += usize::from(tied);
        }
        // Each column is discrete with probability q ~ U[0, 1): some datasets have none.
        assert!(with_ties >= 30, "{with_ties} of 50");
    }

    #[test]
    fn probabilities_outside_the_unit_interval_are_rejected() {
        for bad in [-0.1, 1.5, f64::NAN] {
            let inputs = TabularInputs {
                correlated: bad,
                discrete: 0.0,
            };
            assert!(inputs.validate().is_err(), "{bad}");
        }
        assert!(TabularInputs::MIXED.validate().is_ok());
    }
}
