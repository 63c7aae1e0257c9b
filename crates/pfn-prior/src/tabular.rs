//! Shared machinery of the tabular classification priors [`TabularBnnPrior`] and [`TabularGpPrior`]
//! (paper §6, spec §4.4–4.5), extended from binary to multi-class labels and to up to 60 features.
//!
//! * [`ScaledBeta`]: the paper code's integer draw
//!   `scaled_beta(a, b, max, min) = min + round(Beta(a, b) · (max − min + 1) − 0.5)`, clamped to
//!   `[min, max]`.
//! * [`UsedFeatures`]: per dataset, the number of used features
//!   `F_u ~ scaled_beta(1.0, 1.6, max = min(60, F), min = min(2, F))` for a request of `F` columns;
//!   the used columns are followed by `F − F_u` zero columns and multiplied by
//!   [`FeatureScaling::factor`]`(F_u, F)`, by default [`FeatureScaling::Linear`] (`F / F_u`, the
//!   paper's `normalize_by_used_features`; note that [`crate::VariableFeatures`] defaults to the
//!   square root instead).
//! * [`ClassLabels`]: class labels cut from one continuous value per point (the MLP output, the
//!   noisy GP value), described below.
//!
//! # Multi-class labels
//!
//! Per dataset the number of classes is `K = 2` with probability [`ClassLabels::binary_probability`]
//! (default 1/2, the paper's binary case) and otherwise uniform in `3..=max_classes` (default 10).
//! The points are cut at `K − 1` thresholds `b_1 < … < b_{K−1}` taken among the values themselves: a
//! value `v` falls in bin `#{k : v > b_k}`. For `K = 2` the threshold is the lower median, so the
//! labels are exactly those of [`BinarizeRule::Median`](crate::BinarizeRule::Median) (`⌊n/2⌋` ones
//! with distinct values). For `K ≥ 3` the thresholds sit after `K − 1` distinct ranks chosen uniformly
//! at random among the `m − 1` gaps between the `m` distinct sorted values: the class sizes are a
//! uniformly random composition of `m` into `K` positive parts (the discrete analogue of sorted
//! uniform spacings, i.e. Dirichlet(1, …, 1) class proportions), so every class holds at least one
//! point whenever there are at least `K` distinct values (with fewer, `K` drops to `m`; a constant
//! or one-point dataset has a single class 0). Finally the bins of a `K ≥ 3` dataset are relabelled
//! by a uniformly random permutation of `0..K`, so a label's number carries no ordinal meaning (for
//! `K = 2`, label 1 stays the upper half, as in the paper; the priors are symmetric in the sign of
//! the value, so this carries no information either). Labels are written as f32 class indices to
//! both `y` and `target_y`, as [`crate::Binarized`] and [`crate::BnnClassificationPrior`] do.
//!
//! # `order_y`
//!
//! [`ClassLabels::order_y`] (default off) reproduces the paper code's reordering of a binary dataset:
//! the points are sorted by label in a random direction, the lower and upper halves are interleaved,
//! so labels alternate `0, 1, 0, 1, …` and every context prefix is balanced. It only applies to
//! `K = 2` (the interleaving is defined for two halves). It is off by default because it makes the
//! points of a dataset non-exchangeable and every context almost exactly balanced: a model trained on
//! it learns that the context class frequencies are 1/2 by construction and is miscalibrated on real
//! data with unbalanced classes or in random order; the paper needed it only because its evaluation
//! datasets were balanced and interleaved the same way.
//!
//! # Draw order (a stable contract)
//!
//! After the prior's own draws: `K` (one Bernoulli, then one uniform integer when `K ≥ 3`), the
//! thresholds (one index subset for `K ≥ 3`, no draw for `K = 2`), the label permutation (`K ≥ 3`),
//! then the `order_y` direction (only with `order_y` and `K = 2`).
//!
//! [`TabularBnnPrior`]: crate::TabularBnnPrior
//! [`TabularGpPrior`]: crate::TabularGpPrior

use std::ops::Range;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{check_positive, PriorError};
use crate::features::{pad_used_columns, FeatureScaling};
use crate::hyperparameters::Hyperparameters;
use crate::prior::DatasetMut;
use crate::rng::PriorRng;

/// A per-dataset draw as a [`Hyperparameters::Custom`] record (its JSON, which names the prior under
/// `"model"`); `what` names it in errors.
pub(crate) fn to_custom_record<T: Serialize>(
    draw: &T,
    what: &str,
) -> Result<Hyperparameters, PriorError> {
    let value = serde_json::to_value(draw).map_err(|e| PriorError::invalid(what, e.to_string()))?;
    Ok(Hyperparameters::Custom { value })
}

/// The draw of prior `model` recorded in `h` by [`to_custom_record`], if it is one.
pub(crate) fn from_custom_record<T: DeserializeOwned>(
    h: &Hyperparameters,
    model: &str,
) -> Option<T> {
    match h {
        Hyperparameters::Custom { value }
            if value.get("model").and_then(|m| m.as_str()) == Some(model) =>
        {
            T::deserialize(value).ok()
        }
        _ => None,
    }
}

/// The largest number of features the tabular priors sample by default (the paper's 60).
pub const TABULAR_MAX_FEATURES: usize = 60;

/// The default largest number of classes of the tabular priors: a model trained on them needs this
/// many outputs (`n_out`).
pub const TABULAR_MAX_CLASSES: usize = 10;

/// The paper code's integer draw `min + round(Beta(a, b) · (max − min + 1) − 0.5)`, clamped to
/// `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaledBeta {
    /// First Beta shape parameter (> 0).
    pub a: f64,
    /// Second Beta shape parameter (> 0).
    pub b: f64,
    /// Smallest value.
    pub min: usize,
    /// Largest value (`>= min`).
    pub max: usize,
}

impl ScaledBeta {
    /// A validated draw (`a, b > 0` finite, `min <= max`).
    pub fn new(a: f64, b: f64, min: usize, max: usize) -> Result<Self, PriorError> {
        let s = Self { a, b, min, max };
        s.validate()?;
        Ok(s)
    }

    /// Checks the shape parameters and the range.
    pub fn validate(&self) -> Result<(), PriorError> {
        check_positive("scaled_beta a", self.a)?;
        check_positive("scaled_beta b", self.b)?;
        if self.min > self.max {
            return Err(PriorError::invalid(
                "scaled_beta",
                format!("min {} exceeds max {}", self.min, self.max),
            ));
        }
        Ok(())
    }

    /// The integer for a Beta value `u` in `[0, 1]`: `min + round(u · (max − min + 1) − 0.5)`
    /// (halves away from zero), clamped to `[min, max]`.
    pub fn from_unit(&self, u: f64) -> usize {
        let span = (self.max - self.min + 1) as f64;
        let v = self.min as f64 + (u * span - 0.5).round();
        v.clamp(self.min as f64, self.max as f64) as usize
    }

    /// One draw: a `Beta(a, b)` value mapped by [`ScaledBeta::from_unit`].
    pub fn sample(&self, rng: &mut PriorRng) -> Result<usize, PriorError> {
        let beta = Beta::new(self.a, self.b).map_err(|e| {
            PriorError::invalid(
                "scaled_beta",
                format!("Beta({}, {}) rejected by rand_distr: {e}", self.a, self.b),
            )
        })?;
        Ok(self.from_unit(beta.sample(rng)))
    }
}

/// How many of the requested feature columns a tabular dataset uses, and how they are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsedFeatures {
    /// First Beta shape of the `scaled_beta` draw (paper: 1.0).
    pub beta_a: f64,
    /// Second Beta shape of the `scaled_beta` draw (paper: 1.6).
    pub beta_b: f64,
    /// Smallest number of used features, capped by the request (paper: 2).
    pub min: usize,
    /// Largest number of used features and of requested columns (paper: 60).
    pub max: usize,
    /// Factor applied to the used columns after padding (default [`FeatureScaling::Linear`],
    /// `F / F_u`, the paper's rule).
    pub scaling: FeatureScaling,
}

impl Default for UsedFeatures {
    /// The paper's final configuration: `scaled_beta(1.0, 1.6, max = 60, min = 2)`, linear scaling.
    fn default() -> Self {
        Self {
            beta_a: 1.0,
            beta_b: 1.6,
            min: 2,
            max: TABULAR_MAX_FEATURES,
            scaling: FeatureScaling::Linear,
        }
    }
}

impl UsedFeatures {
    /// Checks the Beta shapes and `1 <= min <= max`.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.min == 0 {
            return Err(PriorError::invalid("features.min", "must be at least 1"));
        }
        ScaledBeta::new(self.beta_a, self.beta_b, self.min, self.max).map(|_| ())
    }

    /// The draw for a request of `requested` columns:
    /// `scaled_beta(a, b, max = min(max, F), min = min(min, F))`.
    pub fn distribution(&self, requested: usize) -> ScaledBeta {
        ScaledBeta {
            a: self.beta_a,
            b: self.beta_b,
            min: self.min.min(requested),
            max: self.max.min(requested),
        }
    }

    /// Draws the number of used features for a request of `requested` columns.
    pub fn sample(&self, rng: &mut PriorRng, requested: usize) -> Result<usize, PriorError> {
        self.distribution(requested).sample(rng)
    }

    /// The factor applied to `used` of `requested` columns.
    pub fn scale(&self, used: usize, requested: usize) -> f64 {
        self.scaling.factor(used, requested)
    }
}

/// How a tabular dataset's continuous values become class labels; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassLabels {
    /// Largest number of classes (>= 2; default [`TABULAR_MAX_CLASSES`]).
    pub max_classes: usize,
    /// Probability of a binary dataset (median split); otherwise `K ~ U{3..=max_classes}`.
    pub binary_probability: f64,
    /// The paper's `order_y` interleaving of binary datasets (default off; see the module docs).
    pub order_y: bool,
}

impl Default for ClassLabels {
    /// Up to 10 classes, binary with probability 1/2, no `order_y`.
    fn default() -> Self {
        Self {
            max_classes: TABULAR_MAX_CLASSES,
            binary_probability: 0.5,
            order_y: false,
        }
    }
}

/// The labels of one dataset: its class assignment, the label of every point and, with
/// `order_y`, the new order of the points.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The thresholds and bin labels.
    pub assignment: ClassAssignment,
    /// The label of every point, in the original order.
    pub labels: Vec<usize>,
    /// With `order_y` on a binary dataset: `order[i]` is the original index of the point that
    /// goes to position `i`.
    pub order: Option<Vec<usize>>,
}

impl ClassLabels {
    /// Checks `max_classes >= 2` and `binary_probability` in `[0, 1]`.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.max_classes < 2 {
            return Err(PriorError::invalid(
                "max_classes",
                format!("{} must be at least 2", self.max_classes),
            ));
        }
        if !(0.0..=1.0).contains(&self.binary_probability) {
            return Err(PriorError::invalid(
                "binary_probability",
                format!("{} must lie in [0, 1]", self.binary_probability),
            ));
        }
        Ok(())
    }

    /// Draws the number of classes `K` of a dataset.
    pub fn sample_num_classes(&self, rng: &mut PriorRng) -> usize {
        if self.max_classes == 2 || rng.random_bool(self.binary_probability) {
            2
        } else {
            rng.random_range(3..=self.max_classes)
        }
    }

    /// Draws `K` and the thresholds and bin labels for `values` (one per point, finite).
    pub fn assign(&self, rng: &mut PriorRng, values: &[f64]) -> ClassAssignment {
        let wanted = self.sample_num_classes(rng);
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Cut positions p (1..n) between two distinct sorted values: bins below hold p points.
        let gaps: Vec<usize> = (1..sorted.len())
            .filter(|&p| sorted[p - 1] < sorted[p])
            .collect();
        let k = wanted.min(gaps.len() + 1);
        let cuts: Vec<usize> = if k <= 1 {
            Vec::new()
        } else if wanted == 2 {
            // The lower median (the `(n − 1) / 2`-th smallest) is the threshold: the cut after it,
            // moved past ties (all values equal to the median go below, as `y > median`).
            let target = (sorted.len() - 1) / 2 + 1;
            let first = gaps.partition_point(|&p| p < target);
            vec![gaps[first.min(gaps.len() - 1)]]
        } else {
            let mut chosen: Vec<usize> = rand::seq::index::sample(rng, gaps.len(), k - 1)
                .into_iter()
                .map(|i| gaps[i])
                .collect();
            chosen.sort_unstable();
            chosen
        };
        let boundaries = cuts.iter().map(|&p| sorted[p - 1]).collect();
        let mut bin_labels: Vec<usize> = (0..k.max(1)).collect();
        if k >= 3 {
            bin_labels.shuffle(rng);
        }
        ClassAssignment {
            num_classes: k.max(1),
            boundaries,
            bin_labels,
        }
    }

    /// Labels `values`: [`ClassLabels::assign`], the label of every point and, with `order_y` on a
    /// binary dataset, the interleaved order ([`ClassLabels::interleaved_order`]).
    pub fn label(&self, rng: &mut PriorRng, values: &[f64]) -> Labelled {
        let assignment = self.assign(rng, values);
        let labels: Vec<usize> = values.iter().map(|&v| assignment.label_of(v)).collect();
        let order = if self.order_y && assignment.num_classes == 2 {
            Some(Self::interleaved_order(rng, &labels))
        } else {
            None
        };
        Labelled {
            assignment,
            labels,
            order,
        }
    }

    /// The paper's `order_y` for binary labels: the points sorted by label in a random direction
    /// and the two halves interleaved, so labels alternate. The direction picks the class that
    /// leads when both have the same size; with unequal sizes the larger class leads (so an odd
    /// median split still alternates) and what cannot alternate comes last. Within a class the
    /// original order is kept. `order[i]` is the original index of position `i`.
    pub fn interleaved_order(rng: &mut PriorRng, labels: &[usize]) -> Vec<usize> {
        let leading = usize::from(rng.random_bool(0.5));
        let (mut lead, mut follow): (Vec<usize>, Vec<usize>) =
            (0..labels.len()).partition(|&i| labels[i] == leading);
        if lead.len() < follow.len() {
            std::mem::swap(&mut lead, &mut follow);
        }
        let mut order = Vec::with_capacity(labels.len());
        for (i, &a) in lead.iter().enumerate() {
            order.push(a);
            if let Some(&b) = follow.get(i) {
                order.push(b);
            }
        }
        order
    }
}

/// The class assignment of one dataset: a value `v` falls in bin `#{k : v > boundaries[k]}` and
/// gets label `bin_labels[bin]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAssignment {
    /// Number of classes `K` of the dataset (labels `0..K`).
    pub num_classes: usize,
    /// The `K − 1` increasing thresholds.
    pub boundaries: Vec<f64>,
    /// The label of each of the `K` bins (a permutation of `0..K`).
    pub bin_labels: Vec<usize>,
}

impl ClassAssignment {
    /// Checks `K >= 1`, `K − 1` increasing finite thresholds and that the bin labels are a
    /// permutation of `0..K`.
    pub fn validate(&self) -> Result<(), PriorError> {
        let k = self.num_classes;
        if k == 0 || self.boundaries.len() + 1 != k || self.bin_labels.len() != k {
            return Err(PriorError::invalid(
                "class assignment",
                format!(
                    "{k} classes need {} thresholds and {k} bin labels, got {} and {}",
                    k.saturating_sub(1),
                    self.boundaries.len(),
                    self.bin_labels.len()
                ),
            ));
        }
        if self.boundaries.iter().any(|b| !b.is_finite())
            || self.boundaries.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(PriorError::invalid(
                "class assignment",
                "thresholds must be finite and strictly increasing",
            ));
        }
        let mut seen = vec![false; k];
        for &l in &self.bin_labels {
            if l >= k || std::mem::replace(&mut seen[l], true) {
                return Err(PriorError::invalid(
                    "class assignment",
                    format!(
                        "bin labels {:?} are not a permutation of 0..{k}",
                        self.bin_labels
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The bin of value `v`: the number of thresholds below it.
    pub fn bin_of(&self, v: f64) -> usize {
        self.boundaries.partition_point(|&b| b < v)
    }

    /// The label of value `v`.
    pub fn label_of(&self, v: f64) -> usize {
        self.bin_labels[self.bin_of(v)]
    }

    /// The class probabilities of a value `v ~ N(mean, sd²)`: label `bin_labels[j]` gets
    /// `Φ((b_{j+1} − mean) / sd) − Φ((b_j − mean) / sd)` (with `b_0 = −∞`, `b_K = +∞`), written to
    /// `out[label]`; entries `K..` of `out` are set to 0. `sd = 0` is a point mass on the bin of
    /// `mean`. Needs `out.len() >= K` (extra entries are zeroed).
    pub fn normal_probabilities(&self, mean: f64, sd: f64, out: &mut [f64]) {
        out.fill(0.0);
        if sd <= 0.0 {
            out[self.label_of(mean)] = 1.0;
            return;
        }
        let mut below = 0.0;
        for (j, &label) in self.bin_labels.iter().enumerate() {
            let upto = match self.boundaries.get(j) {
                Some(&b) => pfn_distribution::normal::cdf((b - mean) / sd),
                None => 1.0,
            };
            out[label] = (upto - below).max(0.0);
            below = upto;
        }
    }
}

/// Labels cut from a latent value plus Gaussian noise: point `i` has the value
/// `latent[i] + N(0, noise_std²)` and its label is the [`ClassAssignment`] of that value. Recorded
/// by [`TabularGpPrior`](crate::TabularGpPrior) under
/// [`LATENT_CLASSES_KEY`](crate::posterior_targets::LATENT_CLASSES_KEY) so that
/// [`query_posterior`](crate::query_posterior) can give every query its class probabilities given
/// the latent (the thresholds are held fixed at the values they took).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentClasses {
    /// Width of a probability row (the model's number of outputs); classes `K..` get 0.
    pub max_classes: usize,
    /// Standard deviation of the noise added to the latent.
    pub noise_std: f64,
    /// The thresholds and bin labels.
    pub assignment: ClassAssignment,
    /// The latent value of every point, in dataset order.
    pub latent: Vec<f64>,
}

impl LatentClasses {
    /// Row-major `rows.len() x max_classes` probabilities `P(label = c | latent[r], noise_std)` of
    /// points `rows` ([`ClassAssignment::normal_probabilities`]). Errors on an inconsistent record
    /// or rows outside the dataset.
    pub fn probabilities(&self, rows: Range<usize>) -> Result<Vec<f32>, PriorError> {
        self.assignment.validate()?;
        if self.assignment.num_classes > self.max_classes {
            return Err(PriorError::invalid(
                "latent classes",
                format!(
                    "{} classes do not fit rows of {}",
                    self.assignment.num_classes, self.max_classes
                ),
            ));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(PriorError::invalid(
                "latent classes",
                format!("noise std {} must be finite and >= 0", self.noise_std),
            ));
        }
        let latent = self.latent.get(rows.clone()).ok_or_else(|| {
            PriorError::invalid(
                "latent classes",
                format!("rows {rows:?} outside {} points", self.latent.len()),
            )
        })?;
        let mut row = vec![0.0; self.max_classes];
        let mut out = Vec::with_capacity(latent.len() * self.max_classes);
        for &f in latent {
            self.assignment
                .normal_probabilities(f, self.noise_std, &mut row);
            out.extend(row.iter().map(|&p| p as f32));
        }
        Ok(out)
    }
}

/// Moves every `width`-wide row of `data` to the position `order` gives it (`order[i]` is the
/// original index of the row that goes to position `i`).
pub(crate) fn reorder_rows<T: Copy>(data: &mut [T], width: usize, order: &[usize]) {
    let original = data.to_vec();
    for (dst, &src) in data.chunks_exact_mut(width).zip(order) {
        dst.copy_from_slice(&original[src * width..(src + 1) * width]);
    }
}

/// Writes a labelled tabular dataset into `data`, whose `x` starts with the `seq_len x used`
/// model-visible inputs: applies the `order_y` order to those rows, writes the labels as f32 to
/// `y` and `target_y`, then zero-pads the rows to all columns with the used columns multiplied by
/// `scale` ([`crate::features`]' padding).
pub(crate) fn write_labelled(
    mut data: DatasetMut<'_>,
    used: usize,
    scale: f64,
    labelled: &Labelled,
) {
    let (s, f) = (data.seq_len(), data.num_features());
    let (x, y, target_y) = data.parts();
    let mut labels = labelled.labels.clone();
    if let Some(order) = &labelled.order {
        reorder_rows(&mut x[..s * used], used, order);
        reorder_rows(&mut labels, 1, order);
    }
    for ((yi, ti), &l) in y.iter_mut().zip(target_y.iter_mut()).zip(&labels) {
        *yi = l as f32;
        *ti = l as f32;
    }
    pad_used_columns(x, s, used, f, scale);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::classification::lower_median;
    use crate::rng::stream_rng;
    use rand_distr::StandardNormal;

    /// The Beta CDF for the shapes used here: `a = 1` in closed form, integer `a, b` by the
    /// binomial sum `I_u(a, b) = Σ_{j=a}^{a+b−1} C(a+b−1, j) u^j (1−u)^{a+b−1−j}`.
    fn beta_cdf(a: f64, b: f64, u: f64) -> f64 {
        if a == 1.0 {
            return 1.0 - (1.0 - u).powf(b);
        }
        assert!(a.fract() == 0.0 && b.fract() == 0.0, "no closed form here");
        let n = (a + b - 1.0) as i32;
        let choose =
            |n: i32, k: i32| (1..=k).fold(1.0, |c, i| c * f64::from(n - k + i) / f64::from(i));
        (a as i32..=n)
            .map(|j| choose(n, j) * u.powi(j) * (1.0 - u).powi(n - j))
            .sum()
    }

    /// `E[scaled_beta] = min + Σ_{j=1}^{span−1} P(Beta ≥ j / span)`, `span = max − min + 1`.
    fn scaled_beta_mean(s: &ScaledBeta) -> f64 {
        let span = s.max - s.min + 1;
        s.min as f64
            + (1..span)
                .map(|j| 1.0 - beta_cdf(s.a, s.b, j as f64 / span as f64))
                .sum::<f64>()
    }

    #[test]
    fn scaled_beta_stays_in_range_and_has_the_mean_of_its_formula() {
        let n = 100_000;
        for s in [
            ScaledBeta::new(1.0, 1.6, 2, 60).unwrap(),
            ScaledBeta::new(2.0, 4.0, 2, 150).unwrap(),
            ScaledBeta::new(1.0, 1.6, 1, 3).unwrap(),
        ] {
            let mut rng = stream_rng(0, 11, &[s.max as u64]);
            let draws: Vec<usize> = (0..n).map(|_| s.sample(&mut rng).unwrap()).collect();
            assert!(draws.iter().all(|&v| (s.min..=s.max).contains(&v)), "{s:?}");
            let mean = draws.iter().sum::<usize>() as f64 / n as f64;
            let var = draws
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / (n - 1) as f64;
            let want = scaled_beta_mean(&s);
            let se = (var / n as f64).sqrt();
            assert!(
                (mean - want).abs() < 5.0 * se,
                "{s:?}: mean {mean} vs formula {want} (se {se})"
            );
            if s.max - s.min < 5 {
                // A small range reaches both ends.
                assert!(draws.contains(&s.min) && draws.contains(&s.max), "{s:?}");
            }
        }
        // The formula's edges: 0 and 1 map to min and max.
        let s = ScaledBeta::new(1.0, 1.0, 2, 5).unwrap();
        assert_eq!((s.from_unit(0.0), s.from_unit(1.0)), (2, 5));
        assert_eq!((s.from_unit(0.24), s.from_unit(0.26)), (2, 3));
        assert!(ScaledBeta::new(1.0, 1.0, 3, 2).is_err());
        assert!(ScaledBeta::new(0.0, 1.0, 1, 2).is_err());
    }

    #[test]
    fn used_features_respect_the_request() {
        let u = UsedFeatures::default();
        let mut rng = stream_rng(0, 12, &[]);
        for requested in [1, 2, 3, 17, 60] {
            let d = u.distribution(requested);
            assert_eq!((d.min, d.max), (2.min(requested), 60.min(requested)));
            for _ in 0..200 {
                let used = u.sample(&mut rng, requested).unwrap();
                assert!((d.min..=d.max).contains(&used), "{requested}: {used}");
            }
        }
        assert_eq!(u.scale(15, 60), 4.0);
    }

    fn normal_values(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = stream_rng(0, seed, &[]);
        (0..n).map(|_| rng.sample(StandardNormal)).collect()
    }

    #[test]
    fn labels_are_classes_below_max_and_every_class_is_present() {
        let labels = ClassLabels::default();
        let mut seen_k = [false; TABULAR_MAX_CLASSES + 1];
        for seed in 0..300u64 {
            let n = 10 + (seed as usize % 40);
            let values = normal_values(seed, n);
            let mut rng = stream_rng(1, seed, &[]);
            let l = labels.label(&mut rng, &values);
            let k = l.assignment.num_classes;
            l.assignment.validate().unwrap();
            assert!((2..=TABULAR_MAX_CLASSES).contains(&k), "K = {k}");
            seen_k[k] = true;
            assert_eq!(l.labels.len(), n);
            let mut count = vec![0; k];
            for &c in &l.labels {
                assert!(c < k);
                count[c] += 1;
            }
            assert!(count.iter().all(|&c| c > 0), "seed {seed}: {count:?}");
            // Labels follow the thresholds.
            for (&v, &c) in values.iter().zip(&l.labels) {
                assert_eq!(c, l.assignment.label_of(v));
            }
        }
        assert!(seen_k[2..].iter().all(|&s| s), "every K drawn: {seen_k:?}");
        // Shuffled labels: the lowest bin is not always label 0.
        let mut lowest_labels = std::collections::HashSet::new();
        for seed in 0..100u64 {
            let a = labels.assign(&mut stream_rng(2, seed, &[]), &normal_values(seed, 40));
            if a.num_classes >= 3 {
                lowest_labels.insert(a.bin_labels[0]);
            }
        }
        assert!(lowest_labels.len() > 2, "{lowest_labels:?}");
    }

    #[test]
    fn binary_labels_split_at_the_median() {
        let binary = ClassLabels {
            binary_probability: 1.0,
            ..ClassLabels::default()
        };
        for n in [1, 2, 3, 10, 51, 100] {
            // f32 values (as the priors' y), so the f32 median rule sees exactly the same values.
            let as_f32: Vec<f32> = normal_values(n as u64, n)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let values: Vec<f64> = as_f32.iter().map(|&v| f64::from(v)).collect();
            let l = binary.label(&mut stream_rng(3, n as u64, &[]), &values);
            let m = f64::from(lower_median(&as_f32).unwrap());
            let ones = l.labels.iter().filter(|&&c| c == 1).count();
            assert_eq!(ones, n / 2, "n = {n}");
            for (&v, &c) in values.iter().zip(&l.labels) {
                // As BinarizeRule::Median: 1[y > lower median].
                assert_eq!(c, usize::from(v > m), "n = {n}");
            }
        }
        // Ties at the median go below it, as `y > median`.
        let tied = [0.0, 1.0, 1.0, 1.0, 2.0];
        let l = binary.label(&mut stream_rng(3, 0, &[]), &tied);
        assert_eq!(l.labels, vec![0, 0, 0, 0, 1]);
        // A constant dataset has one class.
        let l = ClassLabels::default().label(&mut stream_rng(3, 1, &[]), &[4.0; 7]);
        assert_eq!(l.assignment.num_classes, 1);
        assert!(l.labels.iter().all(|&c| c == 0));
    }

    #[test]
    fn ties_never_leave_a_class_empty() {
        // Values on a coarse grid: many ties, at least K distinct values.
        let labels = ClassLabels::default();
        for seed in 0..100u64 {
            let values: Vec<f64> = normal_values(seed, 60)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            let l = labels.label(&mut stream_rng(4, seed, &[]), &values);
            let k = l.assignment.num_classes;
            for c in 0..k {
                assert!(l.labels.contains(&c), "seed {seed}: class {c} of {k} empty");
            }
        }
    }

    #[test]
    fn order_y_interleaves_binary_labels() {
        let ordered = ClassLabels {
            binary_probability: 1.0,
            order_y: true,
            ..ClassLabels::default()
        };
        let mut starts = std::collections::HashSet::new();
        for seed in 0..20u64 {
            let n = 20 + seed as usize % 3;
            let l = ordered.label(&mut stream_rng(5, seed, &[]), &normal_values(seed, n));
            let order = l.order.expect("binary with order_y");
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            let reordered: Vec<usize> = order.iter().map(|&i| l.labels[i]).collect();
            assert!(reordered.windows(2).all(|w| w[0] != w[1]), "{reordered:?}");
            starts.insert(reordered[0]);
        }
        assert_eq!(starts.len(), 2, "both directions occur");
        // No reordering for more classes or by default.
        let multi = ClassLabels {
            binary_probability: 0.0,
            order_y: true,
            ..ClassLabels::default()
        };
        assert!(multi
            .label(&mut stream_rng(5, 0, &[]), &normal_values(0, 30))
            .order
            .is_none());
    }

    #[test]
    fn normal_probabilities_sum_to_one_and_follow_the_permutation() {
        let a = ClassAssignment {
            num_classes: 3,
            boundaries: vec![-1.0, 1.0],
            bin_labels: vec![2, 0, 1],
        };
        a.validate().unwrap();
        let mut p = vec![0.0; 5];
        a.normal_probabilities(0.0, 1.0, &mut p);
        let phi1 = pfn_distribution::normal::cdf(1.0);
        assert!((p[0] - (2.0 * phi1 - 1.0)).abs() < 1e-12, "{p:?}");
        assert!((p[2] - (1.0 - phi1)).abs() < 1e-12 && (p[1] - (1.0 - phi1)).abs() < 1e-12);
        assert_eq!(&p[3..], &[0.0, 0.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        a.normal_probabilities(5.0, 0.0, &mut p);
        assert_eq!(p, vec![0.0, 1.0, 0.0, 0.0, 0.0]);
        for bad in [
            ClassAssignment {
                num_classes: 2,
                boundaries: vec![],
                bin_labels: vec![0, 1],
            },
            ClassAssignment {
                num_classes: 3,
                boundaries: vec![1.0, 0.0],
                bin_labels: vec![0, 1, 2],
            },
            ClassAssignment {
                num_classes: 2,
                boundaries: vec![0.0],
                bin_labels: vec![1, 1],
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
