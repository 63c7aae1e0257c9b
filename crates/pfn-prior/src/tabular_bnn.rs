//! The paper's tabular BNN prior (PFN-BNN, §6, spec §4.4) with its final chosen configuration,
//! extended to multi-class labels (registry name `tabular-bnn`), and the same prior with table-like
//! feature columns in some datasets (`tabular-bnn-mixed`, [`TabularBnnConfig::mixed`]).
//!
//! Per dataset, for a request of `F` feature columns:
//!
//! 1. `F_u ~ scaled_beta(1.0, 1.6, max = min(60, F), min = min(2, F))` used features
//!    ([`UsedFeatures`]);
//! 2. hidden width `H ~ scaled_beta(2.0, 4.0, max = 150, min = 2)`;
//! 3. `init_std ~ Gamma(k = 3.6188, θ = 0.06774)` and `noise_std ~ Gamma(k = 1.8663, θ = 0.05275)`
//!    (numpy shape/scale; [`GammaPrior`] holds them as concentration and rate `1/θ`);
//! 4. the random MLP of [`MlpPrior`] with 3 linear layers, tanh, every weight and bias
//!    `~ N(0, init_std²)` and `N(0, noise_std²)` noise after every linear layer except the first,
//!    on `x ~ N(0, 1)^{F_u}` (with [`TabularInputs`] other than the paper's, on table-like columns:
//!    correlated through latent factors, or partly discrete), with x columns and y z-normalised over the whole sequence
//!    (`(v − mean) / (std + 1e-6)`, as the paper code);
//! 5. class labels from y ([`ClassLabels`], see [`crate::tabular`] for the multi-class design);
//! 6. the `F − F_u` unused columns are zero and the used ones are multiplied by
//!    [`UsedFeatures::scaling`] (default [`FeatureScaling::Linear`](crate::FeatureScaling::Linear),
//!    `F / F_u`, as the paper; the notebook's BNN checkpoint turned it off).
//!
//! The paper's dropout is 0 in its chosen configuration and is not modelled. Draw order: steps 1,
//! 2, 3 (init, then noise), then [`MlpPrior`]'s draws, then the label draws of [`crate::tabular`].
//! The record is [`TabularBnnDraw`] in [`Hyperparameters::Custom`]; there is no closed-form
//! posterior target (the noise inside the network is not integrated out), so this prior trains
//! with sampled labels.

use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use crate::error::PriorError;
use crate::gamma::GammaPrior;
use crate::hyperparameters::{Hyperparameters, MlpDraw};
use crate::mlp::{Activation, MlpConfig, MlpPrior};
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;
use crate::tabular::{
    from_custom_record, to_custom_record, write_labelled, ClassAssignment, ClassLabels, ScaledBeta,
    UsedFeatures,
};
use crate::tabular_inputs::TabularInputs;

/// Configuration of [`TabularBnnPrior`]; validated by [`TabularBnnPrior::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularBnnConfig {
    /// Number of used features and their padding scale.
    pub features: UsedFeatures,
    /// Hidden width draw.
    pub hidden: ScaledBeta,
    /// Number of linear layers (>= 1).
    pub layers: usize,
    /// Nonlinearity.
    pub activation: Activation,
    /// Hyper-prior of the standard deviation of every weight and bias.
    pub init_std: GammaPrior,
    /// Hyper-prior of the standard deviation of the noise after every layer but the first.
    pub noise_std: GammaPrior,
    /// How the outputs become class labels.
    pub labels: ClassLabels,
    /// How the feature columns are drawn (the paper: independent N(0, 1)).
    #[serde(default)]
    pub inputs: TabularInputs,
}

impl TabularBnnConfig {
    /// The paper's final configuration (spec §4.4), with multi-class labels up to 10 classes and
    /// `order_y` off.
    pub fn paper() -> Self {
        Self {
            features: UsedFeatures::default(),
            hidden: ScaledBeta {
                a: 2.0,
                b: 4.0,
                min: 2,
                max: 150,
            },
            layers: 3,
            activation: Activation::Tanh,
            init_std: GammaPrior {
                concentration: 3.6188,
                rate: 1.0 / 0.06774,
            },
            noise_std: GammaPrior {
                concentration: 1.8663,
                rate: 1.0 / 0.05275,
            },
            labels: ClassLabels::default(),
            inputs: TabularInputs::PAPER,
        }
    }

    /// The paper's configuration with table-like columns in some datasets
    /// ([`TabularInputs::MIXED`]: correlated columns in half the datasets, discrete ones in half).
    pub fn mixed() -> Self {
        Self {
            inputs: TabularInputs::MIXED,
            ..Self::paper()
        }
    }
}

impl Default for TabularBnnConfig {
    /// [`TabularBnnConfig::paper`].
    fn default() -> Self {
        Self::paper()
    }
}

/// What [`TabularBnnPrior`] drew for one dataset, stored as [`Hyperparameters::Custom`] with
/// `"model": "tabular-bnn"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularBnnDraw {
    /// Always `"tabular-bnn"`.
    pub model: String,
    /// Number of used (leading) feature columns `F_u`.
    pub features_used: usize,
    /// Factor the used columns were multiplied by after normalisation.
    pub feature_scale: f64,
    /// The network and the normalisation of its inputs and outputs.
    pub mlp: MlpDraw,
    /// The thresholds on the normalised outputs and the bin labels.
    pub classes: ClassAssignment,
}

impl TabularBnnDraw {
    /// The value of [`TabularBnnDraw::model`].
    pub const MODEL: &'static str = "tabular-bnn";

    /// As a [`Hyperparameters::Custom`] record.
    pub fn to_hyperparameters(&self) -> Result<Hyperparameters, PriorError> {
        to_custom_record(self, "tabular-bnn record")
    }

    /// The draw recorded in `h`, if it is one.
    pub fn from_hyperparameters(h: &Hyperparameters) -> Option<Self> {
        from_custom_record(h, Self::MODEL)
    }
}

/// The tabular BNN classification prior; see the module docs.
#[derive(Debug, Clone)]
pub struct TabularBnnPrior {
    config: TabularBnnConfig,
    init_std: Gamma<f64>,
    noise_std: Gamma<f64>,
}

impl TabularBnnPrior {
    /// Validates `config` and builds the prior.
    pub fn new(config: TabularBnnConfig) -> Result<Self, PriorError> {
        config.features.validate()?;
        config.hidden.validate()?;
        if config.hidden.min == 0 {
            return Err(PriorError::invalid("hidden.min", "must be at least 1"));
        }
        if config.layers == 0 {
            return Err(PriorError::invalid("layers", "must be at least 1"));
        }
        config.labels.validate()?;
        config.inputs.validate()?;
        Ok(Self {
            init_std: config.init_std.distribution()?,
            noise_std: config.noise_std.distribution()?,
            config,
        })
    }

    /// The paper's configuration ([`TabularBnnConfig::paper`]).
    pub fn paper() -> Self {
        Self::new(TabularBnnConfig::paper()).expect("constant configuration is valid")
    }

    /// The configuration.
    pub fn config(&self) -> &TabularBnnConfig {
        &self.config
    }

    /// The largest number of classes (the number of outputs a model trained on it needs).
    pub fn max_classes(&self) -> usize {
        self.config.labels.max_classes
    }
}

impl Prior for TabularBnnPrior {
    fn name(&self) -> String {
        if self.config.inputs.is_paper() {
            TabularBnnDraw::MODEL.into()
        } else {
            "tabular-bnn-mixed".into()
        }
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
        let c = &self.config;
        let f = data.num_features();
        let used = c.features.sample(rng, f)?;
        let width = c.hidden.sample(rng)?;
        let init_std = self.init_std.sample(rng);
        let noise_std = self.noise_std.sample(rng);
        let mlp = MlpPrior::new(MlpConfig {
            layers: c.layers,
            width,
            activation: c.activation,
            weight_std: init_std,
            bias_std: init_std,
            noise_std,
            normalize_x: true,
            normalize_y: true,
            default_num_features: used,
        })?;
        let info = mlp.sample_with_inputs(rng, data.with_fewer_features(used)?, |rng, x| {
            c.inputs.fill(rng, x, used)
        })?;
        let Hyperparameters::Mlp(mlp_draw) = info.hyperparameters else {
            return Err(PriorError::invalid(
                "tabular-bnn",
                "the MLP prior recorded no MLP draw",
            ));
        };
        let values: Vec<f64> = data.parts().1.iter().map(|&v| f64::from(v)).collect();
        let labelled = c.labels.label(rng, &values);
        let scale = c.features.scale(used, f);
        write_labelled(data, used, scale, &labelled);
        let draw = TabularBnnDraw {
            model: TabularBnnDraw::MODEL.into(),
            features_used: used,
            feature_scale: scale,
            mlp: mlp_draw,
            classes: labelled.assignment,
        };
        Ok(DatasetInfo {
            features_used: used,
            hyperparameters: draw.to_hyperparameters()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classification::lower_median;
    use crate::prior::Batch;
    use crate::rng::dataset_rng;

    fn draws(b: &Batch) -> Vec<TabularBnnDraw> {
        b.hyperparameters
            .iter()
            .map(|h| TabularBnnDraw::from_hyperparameters(h).expect("a tabular-bnn record"))
            .collect()
    }

    /// Unbiased mean and std of column `j` of dataset `d`.
    fn column_stats(b: &Batch, d: usize, j: usize) -> (f64, f64) {
        let col: Vec<f64> = b
            .x_of(d)
            .chunks_exact(b.num_features)
            .map(|r| f64::from(r[j]))
            .collect();
        let n = col.len() as f64;
        let m = col.iter().sum::<f64>() / n;
        let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        (m, v.sqrt())
    }

    #[test]
    fn features_are_padded_with_zeros_and_scaled_by_f_over_f_used() {
        let prior = TabularBnnPrior::paper();
        for f in [60, 7, 1] {
            let b = prior.sample_batch(1, 0, 24, 50, f).unwrap();
            let recorded = draws(&b);
            let mut used_counts = std::collections::HashSet::new();
            for (d, draw) in recorded.iter().enumerate() {
                let u = b.features_used[d];
                used_counts.insert(u);
                assert_eq!(draw.features_used, u);
                assert!(u >= 2.min(f) && u <= f.min(60), "F = {f}: F_u = {u}");
                assert_eq!(draw.feature_scale, f as f64 / u as f64);
                for row in b.x_of(d).chunks_exact(f) {
                    assert!(row[u..].iter().all(|&v| v == 0.0));
                }
                // Used columns: z-normalised (mean 0, std 1) times F / F_u.
                for j in 0..u {
                    let (m, sd) = column_stats(&b, d, j);
                    let want = f as f64 / u as f64;
                    assert!(m.abs() < 1e-4 * want, "mean {m}");
                    assert!(
                        (sd - want).abs() < 1e-3 * want,
                        "F = {f}, F_u = {u}: std {sd}"
                    );
                }
                assert!((2..=150).contains(&draw.mlp.width));
                assert_eq!(
                    (draw.mlp.layers, draw.mlp.activation),
                    (3, Activation::Tanh)
                );
                assert_eq!(draw.mlp.weight_std, draw.mlp.bias_std);
                assert!(draw.mlp.weight_std > 0.0 && draw.mlp.noise_std > 0.0);
            }
            if f == 60 {
                assert!(used_counts.len() > 5, "{used_counts:?}");
            }
        }
    }

    #[test]
    fn labels_are_class_indices_with_every_class_present() {
        let prior = TabularBnnPrior::paper();
        let b = prior.sample_batch(2, 0, 64, 60, 60).unwrap();
        assert_eq!(b.y, b.target_y);
        let mut classes_seen = std::collections::HashSet::new();
        for (d, draw) in draws(&b).iter().enumerate() {
            let k = draw.classes.num_classes;
            classes_seen.insert(k);
            assert!((2..=prior.max_classes()).contains(&k), "K = {k}");
            let y = b.y_of(d);
            for c in 0..k {
                assert!(
                    y.contains(&(c as f32)),
                    "dataset {d}: class {c} of {k} missing"
                );
            }
            assert!(y.iter().all(|&v| v.fract() == 0.0 && (v as usize) < k));
        }
        assert!(
            classes_seen.contains(&2) && classes_seen.len() > 4,
            "{classes_seen:?}"
        );
    }

    #[test]
    fn binary_datasets_are_median_splits_of_the_network_output() {
        let prior = TabularBnnPrior::new(TabularBnnConfig {
            labels: ClassLabels {
                max_classes: 2,
                ..ClassLabels::default()
            },
            ..TabularBnnConfig::paper()
        })
        .unwrap();
        for s in [40, 41] {
            let b = prior.sample_batch(3, 0, 16, s, 10).unwrap();
            for (d, draw) in draws(&b).iter().enumerate() {
                assert_eq!(draw.classes.num_classes, 2);
                let ones = b.y_of(d).iter().filter(|&&v| v == 1.0).count();
                assert_eq!(ones, s / 2, "dataset {d}");
            }
        }
        // The labels are the median split of exactly the values the MLP prior produces on the
        // same stream (same draws up to the labels).
        let s = 33;
        let mut rng = dataset_rng(4, 0, 0);
        let (mut x, mut y, mut t) = (vec![0.0; s * 12], vec![0.0; s], vec![0.0; s]);
        prior
            .sample_dataset(
                &mut rng,
                &DatasetPosition::default(),
                DatasetMut::new(s, 12, &mut x, &mut y, &mut t).unwrap(),
            )
            .unwrap();
        let mut rng = dataset_rng(4, 0, 0);
        let used = prior.config.features.sample(&mut rng, 12).unwrap();
        let width = prior.config.hidden.sample(&mut rng).unwrap();
        let init_std = prior.init_std.sample(&mut rng);
        let noise_std = prior.noise_std.sample(&mut rng);
        let mlp = MlpPrior::new(MlpConfig {
            layers: 3,
            width,
            activation: Activation::Tanh,
            weight_std: init_std,
            bias_std: init_std,
            noise_std,
            normalize_x: true,
            normalize_y: true,
            default_num_features: used,
        })
        .unwrap();
        let (mut x2, mut y2, mut t2) = (vec![0.0; s * used], vec![0.0; s], vec![0.0; s]);
        mlp.sample_dataset(
            &mut rng,
            &DatasetPosition::default(),
            DatasetMut::new(s, used, &mut x2, &mut y2, &mut t2).unwrap(),
        )
        .unwrap();
        let m = lower_median(&y2).unwrap();
        let want: Vec<f32> = y2.iter().map(|&v| f32::from(u8::from(v > m))).collect();
        assert_eq!(y, want);
        assert_eq!(t, want);
    }

    #[test]
    fn order_y_alternates_binary_labels_and_moves_the_inputs_along() {
        let config = TabularBnnConfig {
            labels: ClassLabels {
                max_classes: 2,
                order_y: true,
                ..ClassLabels::default()
            },
            ..TabularBnnConfig::paper()
        };
        let ordered = TabularBnnPrior::new(config.clone()).unwrap();
        let plain = TabularBnnPrior::new(TabularBnnConfig {
            labels: ClassLabels {
                order_y: false,
                ..config.labels
            },
            ..config
        })
        .unwrap();
        let a = ordered.sample_batch(5, 0, 8, 30, 6).unwrap();
        let b = plain.sample_batch(5, 0, 8, 30, 6).unwrap();
        for d in 0..8 {
            let y = a.y_of(d);
            assert!(y.windows(2).all(|w| w[0] != w[1]), "{y:?}");
            // The same points (rows with their labels), in another order.
            let rows = |batch: &Batch| {
                let mut r: Vec<Vec<u32>> = batch
                    .x_of(d)
                    .chunks_exact(6)
                    .zip(batch.y_of(d))
                    .map(|(row, &l)| row.iter().chain([&l]).map(|v| v.to_bits()).collect())
                    .collect();
                r.sort();
                r
            };
            assert_eq!(rows(&a), rows(&b));
        }
    }

    #[test]
    fn same_seed_same_batch_and_records_round_trip() {
        let prior = TabularBnnPrior::paper();
        let a = prior.sample_batch(7, 3, 6, 25, 60).unwrap();
        assert_eq!(a, prior.sample_batch(7, 3, 6, 25, 60).unwrap());
        assert_ne!(a.x, prior.sample_batch(8, 3, 6, 25, 60).unwrap().x);
        for h in &a.hyperparameters {
            let json = serde_json::to_string(h).unwrap();
            let back: Hyperparameters = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, h);
            assert!(TabularBnnDraw::from_hyperparameters(&back).is_some());
        }
        assert!(prior.sample_batch(0, 0, 2, 10, 61).is_err());
        assert!(prior.sample_batch(0, 0, 2, 10, 0).is_err());
        let bad = |c: TabularBnnConfig| TabularBnnPrior::new(c).is_err();
        let paper = TabularBnnConfig::paper();
        assert!(bad(TabularBnnConfig {
            layers: 0,
            ..paper.clone()
        }));
        assert!(bad(TabularBnnConfig {
            labels: ClassLabels {
                max_classes: 1,
                ..paper.labels
            },
            ..paper.clone()
        }));
        assert!(bad(TabularBnnConfig {
            features: UsedFeatures {
                min: 0,
                ..paper.features
            },
            ..paper
        }));
    }
}
