//! The paper's tabular GP prior (PFN-GP, §6, spec §4.5), extended to multi-class labels and
//! Rao-Blackwellised class-probability targets (registry name `tabular-gp`).
//!
//! Per dataset, for a request of `F` feature columns:
//!
//! 1. `F_u` used features as [`crate::TabularBnnPrior`] ([`UsedFeatures`]);
//! 2. GP hyperparameters from the Gamma hyper-priors of [`GpHyperPrior`] for `F_u` inputs
//!    ([`GpHyperPrior::sample_hyper`]: noise variance, outputscale, ARD lengthscales), by default
//!    [`GpHyperPriorConfig::regression`] (Matérn-5/2, outputscale Γ(2, 0.15), lengthscale Γ(3, 6),
//!    noise variance Γ(0.5, 0.25)): the paper's noise prior Γ(1e-4, 1) is essentially noiseless,
//!    which would make every label a deterministic function of the latent and teach a model
//!    near-certain decision boundaries that real tabular data (with label noise) does not have;
//!    with [`TabularGpConfig::scale_lengthscales`] (default on) each lengthscale is multiplied by
//!    `sqrt(F_u)`, so the expected scaled distance between two points, and hence the complexity
//!    of the function, does not grow with the number of features (with the raw Γ(3, 6)
//!    lengthscales a 60-feature GP on the unit cube is nearly white noise);
//! 3. raw inputs `x ~ U[0, 1]^{F_u}`: the unit cube is the scale the lengthscale hyper-prior is
//!    written for (BoTorch normalises inputs to it, and the other GP priors here use it);
//! 4. the latent `f ~ N(0, K(x, x) + jitter · outputscale · I)` ([`sample_gp_at`]; the tiny
//!    [`TabularGpConfig::latent_jitter`] keeps the noise-free covariance factorable and is part of
//!    the latent), then the noisy values `y_i = f_i + N(0, noise)`;
//! 5. class labels from `y` ([`ClassLabels`], see [`crate::tabular`]);
//! 6. x columns z-normalised over the whole sequence (the rule of [`crate::MlpPrior`]), so that
//!    the model sees inputs with the same statistics as under [`crate::TabularBnnPrior`] and one
//!    input pipeline (z-score, pad, scale) serves both priors; the GP is a function of the raw
//!    inputs, i.e. of an affine map of each column the model sees;
//! 7. zero padding to `F` columns with the used ones multiplied by [`UsedFeatures::scaling`]
//!    (default `F / F_u`, the paper's GP configuration).
//!
//! Draw order: steps 1, 2, the uniform inputs, the latent's normal draws, one normal per point for
//! the noise, then the label draws of [`crate::tabular`].
//!
//! # Posterior targets
//!
//! The record ([`TabularGpDraw`] in [`Hyperparameters::Custom`]) holds a [`LatentClasses`] under
//! [`LATENT_CLASSES_KEY`]: the latent `f`, the noise standard deviation `σ`, the thresholds and the
//! label permutation. [`crate::query_posterior`] turns it into
//! `P(class c | f_i, σ) = Φ((b_{k+1} − f_i)/σ) − Φ((b_k − f_i)/σ)` for the bin `k` labelled `c` (0
//! for the classes `K..max_classes` the dataset does not have). The thresholds are held at the
//! values they took: they are quantiles of all the noisy values, including the point's own, so
//! this is the label distribution given the latent and the thresholds, not accounting for the
//! point's small influence on the thresholds.

use pfn_gp::GpHyper;
use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, PriorError};
use crate::gp_draw::sample_gp_at;
use crate::gp_hyper::{GpHyperPrior, GpHyperPriorConfig};
use crate::hyperparameters::Hyperparameters;
use crate::inputs::{fill_uniform, std_normal};
use crate::mlp::z_normalize_columns;
use crate::posterior_targets::LATENT_CLASSES_KEY;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;
use crate::tabular::{
    from_custom_record, reorder_rows, to_custom_record, write_labelled, ClassLabels, LatentClasses,
    UsedFeatures,
};

/// Configuration of [`TabularGpPrior`]; validated by [`TabularGpPrior::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularGpConfig {
    /// Number of used features and their padding scale.
    pub features: UsedFeatures,
    /// The GP hyper-priors (its `default_num_features` is not used).
    pub gp: GpHyperPriorConfig,
    /// Multiply every drawn lengthscale by `sqrt(F_u)` (see the module docs).
    pub scale_lengthscales: bool,
    /// Diagonal added to the latent's covariance, relative to the outputscale (>= 0).
    pub latent_jitter: f64,
    /// How the noisy values become class labels.
    pub labels: ClassLabels,
}

impl Default for TabularGpConfig {
    /// [`UsedFeatures::default`], [`GpHyperPriorConfig::regression`], lengthscales scaled by
    /// `sqrt(F_u)`, latent jitter 1e-6, [`ClassLabels::default`].
    fn default() -> Self {
        Self {
            features: UsedFeatures::default(),
            gp: GpHyperPriorConfig::regression(),
            scale_lengthscales: true,
            latent_jitter: 1e-6,
            labels: ClassLabels::default(),
        }
    }
}

/// What [`TabularGpPrior`] drew for one dataset, stored as [`Hyperparameters::Custom`] with
/// `"model": "tabular-gp"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularGpDraw {
    /// Always `"tabular-gp"`.
    pub model: String,
    /// Number of used (leading) feature columns `F_u`.
    pub features_used: usize,
    /// Factor the used columns were multiplied by after normalisation.
    pub feature_scale: f64,
    /// The GP on the raw inputs: lengthscales as used (after any `sqrt(F_u)` factor), `noise` the
    /// variance of the noise added to the latent.
    pub gp: GpHyper,
    /// The diagonal added to the latent's covariance (absolute).
    pub latent_jitter: f64,
    /// Per used column, the `(mean, std)` of the raw inputs removed by the z-normalisation.
    pub x_normalization: Vec<(f64, f64)>,
    /// The latent, the thresholds and the labels (key [`LATENT_CLASSES_KEY`]).
    pub latent_classes: LatentClasses,
}

impl TabularGpDraw {
    /// The value of [`TabularGpDraw::model`].
    pub const MODEL: &'static str = "tabular-gp";

    /// As a [`Hyperparameters::Custom`] record.
    pub fn to_hyperparameters(&self) -> Result<Hyperparameters, PriorError> {
        let record = to_custom_record(self, "tabular-gp record")?;
        debug_assert!(
            matches!(&record, Hyperparameters::Custom { value } if value.get(LATENT_CLASSES_KEY).is_some())
        );
        Ok(record)
    }

    /// The draw recorded in `h`, if it is one.
    pub fn from_hyperparameters(h: &Hyperparameters) -> Option<Self> {
        from_custom_record(h, Self::MODEL)
    }
}

/// The tabular GP classification prior; see the module docs.
#[derive(Debug, Clone)]
pub struct TabularGpPrior {
    config: TabularGpConfig,
    hyper_prior: GpHyperPrior,
}

impl TabularGpPrior {
    /// Validates `config` and builds the prior.
    pub fn new(config: TabularGpConfig) -> Result<Self, PriorError> {
        config.features.validate()?;
        config.labels.validate()?;
        check_non_negative("latent_jitter", config.latent_jitter)?;
        Ok(Self {
            hyper_prior: GpHyperPrior::new(config.gp.clone())?,
            config,
        })
    }

    /// The default configuration ([`TabularGpConfig::default`]).
    pub fn with_defaults() -> Self {
        Self::new(TabularGpConfig::default()).expect("constant configuration is valid")
    }

    /// The configuration.
    pub fn config(&self) -> &TabularGpConfig {
        &self.config
    }

    /// The largest number of classes (the number of outputs a model trained on it needs).
    pub fn max_classes(&self) -> usize {
        self.config.labels.max_classes
    }

    /// Steps 1–5 of the module docs into the first `seq_len x F_u` values of `data`'s `x` (raw
    /// inputs); returns the record (before the normalisation of x), the noisy values and the
    /// labelling.
    fn draw_raw(
        &self,
        rng: &mut PriorRng,
        data: &mut DatasetMut<'_>,
    ) -> Result<(TabularGpDraw, Vec<f64>, crate::tabular::Labelled), PriorError> {
        let c = &self.config;
        let f = data.num_features();
        let used = c.features.sample(rng, f)?;
        let mut hyper = self.hyper_prior.sample_hyper(rng, used)?;
        if c.scale_lengthscales {
            let factor = (used as f64).sqrt();
            hyper.lengthscales.iter_mut().for_each(|l| *l *= factor);
        }
        let jitter = c.latent_jitter * hyper.outputscale;
        let latent_hyper = GpHyper::new(
            hyper.kind,
            hyper.lengthscales.clone(),
            hyper.outputscale,
            jitter,
        )?;
        let mut sub = data.with_fewer_features(used)?;
        let (x, y, _) = sub.parts();
        fill_uniform(rng, x);
        sample_gp_at(&latent_hyper, x, used, rng, y)?;
        let latent: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let noise_std = hyper.noise.sqrt();
        let values: Vec<f64> = latent
            .iter()
            .map(|&l| l + noise_std * std_normal(rng))
            .collect();
        let labelled = c.labels.label(rng, &values);
        let draw = TabularGpDraw {
            model: TabularGpDraw::MODEL.into(),
            features_used: used,
            feature_scale: c.features.scale(used, f),
            gp: hyper,
            latent_jitter: jitter,
            x_normalization: Vec::new(),
            latent_classes: LatentClasses {
                max_classes: c.labels.max_classes,
                noise_std,
                assignment: labelled.assignment.clone(),
                latent,
            },
        };
        Ok((draw, values, labelled))
    }
}

impl Prior for TabularGpPrior {
    fn name(&self) -> String {
        TabularGpDraw::MODEL.into()
    }

    fn default_num_features(&self) -> usize {
        self.config.features.max
    }

    fn feature_range(&self) -> (usize, usize) {
        (1, self.config.features.max)
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let (mut draw, _, labelled) = self.draw_raw(rng, &mut data)?;
        let (s, used) = (data.seq_len(), draw.features_used);
        draw.x_normalization = z_normalize_columns(&mut data.parts().0[..s * used], used);
        if let Some(order) = &labelled.order {
            reorder_rows(&mut draw.latent_classes.latent, 1, order);
        }
        write_labelled(data, used, draw.feature_scale, &labelled);
        Ok(DatasetInfo {
            features_used: used,
            hyperparameters: draw.to_hyperparameters()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posterior_targets::{query_posterior, QueryPosterior};
    use crate::rng::{dataset_rng, stream_rng};
    use rand::Rng;

    fn draws(b: &crate::Batch) -> Vec<TabularGpDraw> {
        b.hyperparameters
            .iter()
            .map(|h| TabularGpDraw::from_hyperparameters(h).expect("a tabular-gp record"))
            .collect()
    }

    #[test]
    fn features_are_padded_with_zeros_and_scaled_by_f_over_f_used() {
        let prior = TabularGpPrior::with_defaults();
        for f in [60, 5, 1] {
            let b = prior.sample_batch(1, 0, 12, 40, f).unwrap();
            for (d, draw) in draws(&b).iter().enumerate() {
                let u = b.features_used[d];
                assert_eq!(draw.features_used, u);
                assert!(u >= 2.min(f) && u <= f.min(60), "F = {f}: F_u = {u}");
                assert_eq!(draw.feature_scale, f as f64 / u as f64);
                assert_eq!(draw.gp.lengthscales.len(), u);
                assert_eq!(draw.x_normalization.len(), u);
                let want = f as f64 / u as f64;
                for row in b.x_of(d).chunks_exact(f) {
                    assert!(row[u..].iter().all(|&v| v == 0.0));
                }
                for j in 0..u {
                    let col: Vec<f64> =
                        b.x_of(d).chunks_exact(f).map(|r| f64::from(r[j])).collect();
                    let m = col.iter().sum::<f64>() / 40.0;
                    let sd = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 39.0).sqrt();
                    assert!(m.abs() < 1e-4 * want && (sd - want).abs() < 1e-3 * want);
                    // The raw inputs were uniform on [0, 1).
                    let (rm, rs) = draw.x_normalization[j];
                    assert!((0.0..1.0).contains(&rm) && rs > 0.0 && rs < 0.6);
                }
            }
        }
    }

    #[test]
    fn labels_are_class_indices_with_every_class_present() {
        let prior = TabularGpPrior::with_defaults();
        let b = prior.sample_batch(2, 0, 32, 40, 60).unwrap();
        assert_eq!(b.y, b.target_y);
        for (d, draw) in draws(&b).iter().enumerate() {
            let a = &draw.latent_classes.assignment;
            assert!((2..=prior.max_classes()).contains(&a.num_classes));
            let y = b.y_of(d);
            for c in 0..a.num_classes {
                assert!(y.contains(&(c as f32)), "dataset {d}: class {c} missing");
            }
            assert!(y
                .iter()
                .all(|&v| v.fract() == 0.0 && (v as usize) < a.num_classes));
        }
    }

    /// The labels are the assignment of the noisy values, each sampled label has positive recorded
    /// probability, and labels redrawn from the latent with fresh noise have the recorded
    /// probabilities as their frequencies.
    #[test]
    fn recorded_class_probabilities_are_the_label_distribution_given_the_latent() {
        let prior = TabularGpPrior::with_defaults();
        let s = 30;
        let mut checked_rows = 0;
        for i in 0..6u64 {
            let (mut x, mut y, mut t) = (vec![0.0; s * 8], vec![0.0; s], vec![0.0; s]);
            let mut data = DatasetMut::new(s, 8, &mut x, &mut y, &mut t).unwrap();
            let (draw, values, labelled) = prior
                .draw_raw(&mut dataset_rng(9, 0, i), &mut data)
                .unwrap();
            let lc = &draw.latent_classes;
            for (&v, &l) in values.iter().zip(&labelled.labels) {
                assert_eq!(l, lc.assignment.label_of(v));
            }
            let p = lc.probabilities(0..s).unwrap();
            let k = lc.max_classes;
            for (row, &l) in p.chunks_exact(k).zip(&labelled.labels) {
                let total: f64 = row.iter().map(|&q| f64::from(q)).sum();
                assert!((total - 1.0).abs() < 1e-5, "{row:?}");
                assert!(row[l] > 0.0, "sampled label {l} has probability 0: {row:?}");
                assert!(row[lc.assignment.num_classes..].iter().all(|&q| q == 0.0));
            }
            // Monte Carlo: redraw the noise m times per point and count the labels.
            let m = 4000;
            let mut rng = stream_rng(0, 99, &[i]);
            for (r, &f) in lc.latent.iter().enumerate().take(10) {
                let mut counts = vec![0usize; k];
                for _ in 0..m {
                    let z: f64 = rng.sample(rand_distr::StandardNormal);
                    counts[lc.assignment.label_of(f + lc.noise_std * z)] += 1;
                }
                for c in 0..k {
                    let q = f64::from(p[r * k + c]);
                    let freq = counts[c] as f64 / m as f64;
                    // Five standard errors, at least 5 / m for probabilities near 0 or 1.
                    let se = (q * (1.0 - q) / m as f64).sqrt().max(1.0 / m as f64);
                    assert!(
                        (freq - q).abs() <= 5.0 * se,
                        "dataset {i} point {r} class {c}: frequency {freq} vs {q}"
                    );
                }
                checked_rows += 1;
            }
        }
        assert_eq!(checked_rows, 60);
    }

    #[test]
    fn query_posterior_gives_max_classes_probability_rows() {
        let prior = TabularGpPrior::with_defaults();
        let b = prior.sample_batch(4, 1, 5, 25, 60).unwrap();
        let n = 10;
        let QueryPosterior::Classes {
            num_classes,
            probabilities,
        } = query_posterior(&b, n).unwrap()
        else {
            panic!("not classes")
        };
        assert_eq!(num_classes, prior.max_classes());
        assert_eq!(probabilities.len(), 5 * 15 * num_classes);
        for (d, draw) in draws(&b).iter().enumerate() {
            let want = draw.latent_classes.probabilities(n..25).unwrap();
            let rows = &probabilities[d * 15 * num_classes..(d + 1) * 15 * num_classes];
            assert_eq!(rows, &want[..]);
            for (row, &label) in rows.chunks_exact(num_classes).zip(&b.target_y_of(d)[n..]) {
                let total: f32 = row.iter().sum();
                assert!((total - 1.0).abs() < 1e-5);
                assert!(row[label as usize] > 0.0);
            }
        }
    }

    #[test]
    fn order_y_moves_the_latent_with_its_point() {
        let config = TabularGpConfig {
            labels: ClassLabels {
                max_classes: 2,
                order_y: true,
                ..ClassLabels::default()
            },
            ..TabularGpConfig::default()
        };
        let ordered = TabularGpPrior::new(config.clone()).unwrap();
        let plain = TabularGpPrior::new(TabularGpConfig {
            labels: ClassLabels {
                order_y: false,
                ..config.labels
            },
            ..config
        })
        .unwrap();
        let a = ordered.sample_batch(6, 0, 6, 24, 4).unwrap();
        let b = plain.sample_batch(6, 0, 6, 24, 4).unwrap();
        // Every point keeps its inputs, label and latent; only the order changes.
        let points = |batch: &crate::Batch, d: usize| {
            let draw = TabularGpDraw::from_hyperparameters(&batch.hyperparameters[d]).unwrap();
            let mut p: Vec<(Vec<u32>, u32, u64)> = batch
                .x_of(d)
                .chunks_exact(4)
                .zip(batch.y_of(d))
                .zip(&draw.latent_classes.latent)
                .map(|((row, &l), &f)| {
                    (
                        row.iter().map(|v| v.to_bits()).collect(),
                        l.to_bits(),
                        f.to_bits(),
                    )
                })
                .collect();
            p.sort();
            p
        };
        for d in 0..6 {
            let y = a.y_of(d);
            assert!(y.windows(2).all(|w| w[0] != w[1]), "{y:?}");
            assert_ne!(a.y_of(d), b.y_of(d));
            assert_eq!(points(&a, d), points(&b, d), "dataset {d}");
        }
    }

    #[test]
    fn same_seed_same_batch_and_records_round_trip() {
        let prior = TabularGpPrior::with_defaults();
        let a = prior.sample_batch(7, 3, 4, 20, 60).unwrap();
        assert_eq!(a, prior.sample_batch(7, 3, 4, 20, 60).unwrap());
        assert_ne!(a.x, prior.sample_batch(8, 3, 4, 20, 60).unwrap().x);
        for h in &a.hyperparameters {
            let json = serde_json::to_string(h).unwrap();
            let back: Hyperparameters = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, h);
            assert_eq!(
                TabularGpDraw::from_hyperparameters(&back),
                TabularGpDraw::from_hyperparameters(h)
            );
        }
        assert!(TabularGpPrior::new(TabularGpConfig {
            latent_jitter: -1.0,
            ..TabularGpConfig::default()
        })
        .is_err());
    }
}
