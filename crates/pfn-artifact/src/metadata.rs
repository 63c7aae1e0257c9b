//! What a model file says about its model besides the weights: the [`ModelMetadata`] (stored as
//! JSON in the file header, see [`crate::file`]).
//!
//! The metadata fixes everything a reader needs to use the weights: the transformer sizes
//! ([`Architecture`]), the output head ([`OutputHead`]: bucket borders or classes) and the input
//! normalisation ([`InputNormalisation`]). The run configuration the model was trained with is
//! carried as JSON that this crate does not interpret (it is `pfn-train`'s `RunConfig`); readers
//! get the two values they need from it through [`ModelMetadata::max_context`] and
//! [`ModelMetadata::run_seed`].

use pfn_distribution::{BarDistribution, DistributionError, Support, TailShape};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::normalise::FeaturePadding;

/// Transformer sizes as trained (a summary of the run configuration's `[model]` and `[prior]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Embedding width.
    pub emsize: usize,
    /// Layers.
    pub nlayers: usize,
    /// Attention heads.
    pub nhead: usize,
    /// Feed-forward width.
    pub nhid: usize,
    /// Input features per point.
    pub num_features: usize,
    /// Training sequence length N.
    pub seq_len: usize,
    /// Output width (buckets or classes).
    pub n_out: usize,
    /// Whether queries attend to themselves.
    pub query_self_attention: bool,
    /// Classes of the context-label embedding (`PfnConfig::y_classes`); absent: a linear y
    /// encoder, as in every file written before the choice existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_classes: Option<usize>,
}

/// The output head and what it needs at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputHead {
    /// A Riemann (bar) distribution: `borders.len() - 1` buckets.
    Riemann {
        /// Bucket borders, non-decreasing, in the (normalised) target space.
        borders: Vec<f64>,
        /// Tails on the outer buckets (support on the whole real line).
        full_support: bool,
        /// The shape of those tails (half-normal when absent, as in files written before the
        /// choice existed).
        #[serde(default, skip_serializing_if = "TailShape::is_half_normal")]
        tail: TailShape,
    },
    /// Class logits.
    Classes {
        /// Number of classes.
        n_out: usize,
    },
}

impl OutputHead {
    /// Output width: buckets or classes.
    pub fn width(&self) -> usize {
        match self {
            OutputHead::Riemann { borders, .. } => borders.len().saturating_sub(1),
            OutputHead::Classes { n_out } => *n_out,
        }
    }

    /// The bar distribution of a Riemann head: its borders, with tails of the recorded shape
    /// ([`Support::Full`]) when `full_support` is set and [`Support::Bounded`] otherwise; `None`
    /// for a class head. Fails when the borders are not valid bucket borders or the tail shape is
    /// invalid.
    pub fn bar_distribution(&self) -> Result<Option<BarDistribution>, DistributionError> {
        match self {
            OutputHead::Riemann {
                borders,
                full_support,
                tail,
            } => {
                let support = if *full_support {
                    Support::Full
                } else {
                    Support::Bounded
                };
                BarDistribution::new(borders.clone(), support)?
                    .with_tail_shape(*tail)
                    .map(Some)
            }
            OutputHead::Classes { .. } => Ok(None),
        }
    }

    /// The description of a Riemann head with the bar distribution `dist` (the inverse of
    /// [`OutputHead::bar_distribution`]).
    pub fn from_bar_distribution(dist: &BarDistribution) -> Self {
        OutputHead::Riemann {
            borders: dist.borders().to_vec(),
            full_support: dist.support() == Support::Full,
            tail: dist.tail_shape(),
        }
    }
}

/// How x features are scaled before entering the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum XNormalisation {
    /// Used as given (the prior's inputs are already in the model's range, e.g. `U[0,1]`).
    None,
    /// Each feature mapped to [0, 1] with the min/max of the context points.
    ContextMinMax,
    /// Each feature z-scored with the mean and (population) standard deviation of the context
    /// points (`FeatureScaler::fit_standardise`).
    ContextStandardise,
    /// Each feature mapped with fixed per-feature bounds: `(x − min) / (max − min)`.
    Fixed {
        /// Per-feature lower bounds.
        min: Vec<f64>,
        /// Per-feature upper bounds.
        max: Vec<f64>,
    },
}

impl XNormalisation {
    /// Whether the features are fitted on the context points (so a prediction needs context).
    pub fn fitted_on_context(&self) -> bool {
        matches!(self, Self::ContextMinMax | Self::ContextStandardise)
    }
}

/// How y is transformed before entering the model (and predictions transformed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum YNormalisation {
    /// Used as given.
    None,
    /// Standardised with the context mean and standard deviation; densities are divided by the
    /// standard deviation on the way back (log-density minus ln σ).
    ContextStandardise,
}

/// The input normalisation the model expects at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputNormalisation {
    /// Features.
    pub x: XNormalisation,
    /// Targets.
    pub y: YNormalisation,
    /// Set for models trained with a variable number of used features (the prior zero-pads the
    /// unused columns): such a model also accepts `d` features for any `d` up to its
    /// `num_features`; after `x` is normalised, the `d` given columns are multiplied by
    /// `padding.factor(d, num_features)` and the remaining columns are zero, exactly as in
    /// training. `None`: exactly `num_features` columns are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_padding: Option<FeaturePadding>,
}

impl Default for InputNormalisation {
    fn default() -> Self {
        Self {
            x: XNormalisation::None,
            y: YNormalisation::None,
            feature_padding: None,
        }
    }
}

/// The training budget spent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingSpent {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Datasets (prior samples) consumed.
    pub datasets: u64,
    /// Wall-clock training time in seconds.
    pub seconds: f64,
}

/// One earlier training run in a model's history: a run whose saved model a later run started
/// from (the later run's `run.init_from`). A model trained in stages lists its earlier stages in
/// [`ModelMetadata::lineage`], oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlierRun {
    /// The start file as the next run named it (its `run.init_from`).
    pub file: String,
    /// The start file's SHA-256 content digest (hex) when the next run read it.
    pub sha256: String,
    /// Registry name of that run's training prior.
    pub prior: String,
    /// The budget that run spent (its own steps, datasets and seconds only).
    pub training: TrainingSpent,
    /// That run's final validation loss, if measured.
    pub final_validation_loss: Option<f64>,
    /// The file that run itself started from, if any. Set on the oldest entry only when the
    /// history before it is unknown (a start file that predates lineage records and could not be
    /// read back).
    pub started_from: Option<String>,
}

/// Everything about a model except its weights; stored as JSON in the file header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Transformer sizes.
    pub architecture: Architecture,
    /// Output head (borders or classes).
    pub head: OutputHead,
    /// The run configuration the model was trained with, as JSON (`pfn-train`'s `RunConfig`;
    /// `null` when there is none). The file carries it without interpreting it, apart from the
    /// values behind [`ModelMetadata::max_context`] and [`ModelMetadata::run_seed`].
    #[serde(default)]
    pub config: Value,
    /// Registry name of the training prior.
    pub prior: String,
    /// Input normalisation expected at inference.
    pub normalisation: InputNormalisation,
    /// Budget spent.
    pub training: TrainingSpent,
    /// Final validation loss (mean NLL on the held-out prior datasets), if measured.
    pub final_validation_loss: Option<f64>,
    /// Name and version of the writing program, e.g. `pfn-train 0.1.0`.
    pub written_by: String,
    /// The training runs before the one that wrote this file, oldest first, when it started from
    /// another model file (`run.init_from`); empty for a run from scratch, and in files written
    /// before lineage was recorded. [`ModelMetadata::training`] is the last run's budget only;
    /// [`ModelMetadata::training_in_all`] adds these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<EarlierRun>,
}

/// Where [`ModelMetadata::max_context`] reads the configured largest context.
const MAX_CONTEXT_POINTER: &str = "/prior/max_context";
/// Where [`ModelMetadata::run_seed`] reads the run's master seed.
const RUN_SEED_POINTER: &str = "/run/seed";

impl ModelMetadata {
    /// Metadata of a model with the given architecture and head, trained on the registry prior
    /// `prior` with the run configuration `config` (JSON, stored as given); `written_by` is this
    /// crate's name and version.
    pub fn new(
        architecture: Architecture,
        head: OutputHead,
        config: Value,
        prior: impl Into<String>,
        normalisation: InputNormalisation,
        training: TrainingSpent,
        final_validation_loss: Option<f64>,
    ) -> Self {
        Self {
            architecture,
            head,
            config,
            prior: prior.into(),
            normalisation,
            training,
            final_validation_loss,
            written_by: concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).to_string(),
            lineage: Vec::new(),
        }
    }

    /// This model as an entry of a later run's [`ModelMetadata::lineage`], the later run having
    /// read it from `file` with content digest `sha256`.
    pub fn as_earlier_run(&self, file: impl Into<String>, sha256: impl Into<String>) -> EarlierRun {
        EarlierRun {
            file: file.into(),
            sha256: sha256.into(),
            prior: self.prior.clone(),
            training: self.training,
            final_validation_loss: self.final_validation_loss,
            started_from: self.init_from().map(str::to_string),
        }
    }

    /// The budget of every recorded run: [`ModelMetadata::lineage`] and the last run together.
    pub fn training_in_all(&self) -> TrainingSpent {
        self.lineage
            .iter()
            .map(|run| run.training)
            .chain(std::iter::once(self.training))
            .fold(TrainingSpent::default(), |sum, t| TrainingSpent {
                steps: sum.steps + t.steps,
                datasets: sum.datasets + t.datasets,
                seconds: sum.seconds + t.seconds,
            })
    }

    /// Whether the recorded runs reach back to a run from scratch, so that
    /// [`ModelMetadata::training_in_all`] is the model's whole training. False when the last run
    /// started from a file but no lineage is recorded, or when the oldest recorded run itself
    /// started from a file whose history is unknown.
    pub fn lineage_complete(&self) -> bool {
        self.unknown_start().is_none()
    }

    /// The model file whose training the recorded runs do not include: the start file of the
    /// oldest recorded run, or of the last run when no lineage is recorded. `None` when the
    /// recorded runs reach back to a run from scratch ([`ModelMetadata::lineage_complete`]).
    pub fn unknown_start(&self) -> Option<&str> {
        match self.lineage.first() {
            Some(oldest) => oldest.started_from.as_deref(),
            None => self.init_from(),
        }
    }

    /// The largest number of context points seen in training: the configuration's
    /// `prior.max_context` when set, otherwise `seq_len − 1` (at least one query per sequence).
    pub fn max_context(&self) -> usize {
        self.config
            .pointer(MAX_CONTEXT_POINTER)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or_else(|| self.architecture.seq_len.saturating_sub(1))
    }

    /// The smallest number of context points seen in training: the configuration's
    /// `prior.min_context` (0 when absent).
    pub fn min_context(&self) -> usize {
        self.config
            .pointer("/prior/min_context")
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(0)
    }

    /// The master seed of the training run (the configuration's `run.seed`), if recorded.
    pub fn run_seed(&self) -> Option<u64> {
        self.config
            .pointer(RUN_SEED_POINTER)
            .and_then(Value::as_u64)
    }

    /// The model file the training run started from (the configuration's `run.init_from`), if
    /// any: the recorded budget ([`ModelMetadata::training`]) is then this run's only, and the
    /// start file's own training comes before it.
    pub fn init_from(&self) -> Option<&str> {
        self.config
            .pointer("/run/init_from")
            .and_then(Value::as_str)
    }

    /// The parameters the training gave its registry prior: the configuration's `prior.params`
    /// (empty when absent), for rebuilding the exact training prior by name
    /// (`pfn_prior::PriorEntry::prior_with_params`).
    pub fn prior_params(&self) -> std::collections::BTreeMap<String, Value> {
        match self.config.pointer("/prior/params") {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Default::default(),
        }
    }

    /// Checks finiteness (JSON cannot hold NaN/inf), the consistency of head and architecture,
    /// and that the configuration is a JSON object (or `null`) whose `prior.max_context` and
    /// `run.seed`, where present, are non-negative integers.
    pub fn validate(&self) -> Result<(), String> {
        match &self.head {
            OutputHead::Riemann { borders, .. } => {
                if borders.len() < 3 {
                    return Err(format!(
                        "a Riemann head needs at least 3 borders (2 buckets), got {}",
                        borders.len()
                    ));
                }
                if let Some(i) = borders.iter().position(|b| !b.is_finite()) {
                    return Err(format!("border {i} is not finite ({})", borders[i]));
                }
                if let Some(i) = borders.windows(2).position(|w| w[1] < w[0]) {
                    return Err(format!(
                        "borders must be non-decreasing: border {} = {:?} > border {} = {:?}",
                        i,
                        borders[i],
                        i + 1,
                        borders[i + 1]
                    ));
                }
                if borders[borders.len() - 1] <= borders[0] {
                    return Err("borders span an empty interval".to_string());
                }
            }
            OutputHead::Classes { n_out } => {
                if *n_out < 2 {
                    return Err(format!(
                        "a class head needs at least 2 classes, got {n_out}"
                    ));
                }
            }
        }
        if self.head.width() != self.architecture.n_out {
            return Err(format!(
                "head has {} outputs but the architecture says n_out = {}",
                self.head.width(),
                self.architecture.n_out
            ));
        }
        if let XNormalisation::Fixed { min, max } = &self.normalisation.x {
            if min.len() != self.architecture.num_features || max.len() != min.len() {
                return Err(format!(
                    "fixed x normalisation needs {} bounds per side, got {} min and {} max",
                    self.architecture.num_features,
                    min.len(),
                    max.len()
                ));
            }
            for (i, (lo, hi)) in min.iter().zip(max).enumerate() {
                if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                    return Err(format!(
                        "fixed x normalisation of feature {i}: need finite min < max, got [{lo}, {hi}]"
                    ));
                }
            }
        }
        let t = &self.training;
        if !(t.seconds.is_finite() && t.seconds >= 0.0) {
            return Err(format!(
                "training seconds must be finite and >= 0, got {}",
                t.seconds
            ));
        }
        if let Some(loss) = self.final_validation_loss {
            if !loss.is_finite() {
                return Err(format!("final validation loss is not finite ({loss})"));
            }
        }
        if !(self.config.is_object() || self.config.is_null()) {
            return Err(format!(
                "the run configuration must be a JSON object, got {}",
                self.config
            ));
        }
        for (pointer, key) in [
            (MAX_CONTEXT_POINTER, "prior.max_context"),
            (RUN_SEED_POINTER, "run.seed"),
        ] {
            match self.config.pointer(pointer) {
                Some(v) if !v.is_null() && v.as_u64().is_none() => {
                    return Err(format!(
                        "the run configuration's {key} must be a non-negative integer, got {v}"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(config: Value) -> ModelMetadata {
        ModelMetadata::new(
            Architecture {
                emsize: 8,
                nlayers: 1,
                nhead: 2,
                nhid: 16,
                num_features: 1,
                seq_len: 20,
                n_out: 2,
                query_self_attention: false,
                y_classes: None,
            },
            OutputHead::Riemann {
                borders: vec![0.0, 1.0, 2.0],
                full_support: true,
                tail: Default::default(),
            },
            config,
            "gp-1d",
            InputNormalisation::default(),
            TrainingSpent::default(),
            None,
        )
    }

    fn spent(steps: u64, seconds: f64) -> TrainingSpent {
        TrainingSpent {
            steps,
            datasets: 32 * steps,
            seconds,
        }
    }

    #[test]
    fn lineage_adds_earlier_runs_and_knows_when_it_is_complete() {
        // A run from scratch: its own budget is the whole training.
        let mut first = metadata(serde_json::json!({"run": {"seed": 1}}));
        first.training = spent(100, 10.0);
        assert!(first.lineage.is_empty() && first.lineage_complete());
        assert_eq!(first.training_in_all(), spent(100, 10.0));

        // A second run started from it, recording it.
        let mut second = metadata(serde_json::json!({"run": {"init_from": "first.pfn"}}));
        second.training = spent(50, 4.0);
        assert!(
            !second.lineage_complete(),
            "init_from without a lineage is incomplete"
        );
        assert_eq!(second.unknown_start(), Some("first.pfn"));
        let entry = first.as_earlier_run("first.pfn", "abc");
        assert_eq!(entry.started_from, None);
        assert_eq!(
            (entry.file.as_str(), entry.sha256.as_str()),
            ("first.pfn", "abc")
        );
        second.lineage.push(entry);
        assert!(second.lineage_complete());
        assert_eq!(second.unknown_start(), None);
        assert_eq!(second.training_in_all(), spent(150, 14.0));

        // The lineage survives a round trip through JSON; files without one still read.
        let json = serde_json::to_string(&second).unwrap();
        let back: ModelMetadata = serde_json::from_str(&json).unwrap();
        assert_eq!(back, second);
        let plain = serde_json::to_string(&first).unwrap();
        assert!(
            !plain.contains("lineage"),
            "an empty lineage is not written"
        );

        // An oldest entry that itself started from an unknown file: incomplete.
        let mut third = metadata(serde_json::json!({"run": {"init_from": "second.pfn"}}));
        third
            .lineage
            .push(second.as_earlier_run("second.pfn", "def"));
        assert_eq!(third.lineage[0].started_from.as_deref(), Some("first.pfn"));
        assert!(!third.lineage_complete());
        assert_eq!(third.unknown_start(), Some("first.pfn"));
    }

    #[test]
    fn max_context_and_seed_come_from_the_configuration() {
        let m = metadata(serde_json::json!({
            "prior": {"name": "gp-1d", "seq_len": 20, "max_context": 12},
            "run": {"seed": 7}
        }));
        assert_eq!(m.max_context(), 12);
        assert_eq!(m.run_seed(), Some(7));
        assert_eq!(m.init_from(), None);
        let m = metadata(serde_json::json!({"run": {"seed": 7, "init_from": "start.pfn"}}));
        assert_eq!(m.init_from(), Some("start.pfn"));
        assert!(m.validate().is_ok());
        // Without max_context: seq_len − 1 of the architecture; without a seed: none.
        let m = metadata(serde_json::json!({"prior": {"name": "gp-1d"}}));
        assert_eq!(m.max_context(), 19);
        assert_eq!(m.run_seed(), None);
        let m = metadata(Value::Null);
        assert_eq!((m.max_context(), m.run_seed()), (19, None));
        assert!(m.validate().is_ok());
        assert!(m.written_by.starts_with("pfn-artifact "));
    }

    #[test]
    fn prior_params_come_from_the_configuration() {
        let m = metadata(serde_json::json!({
            "prior": {"name": "gp-hyper-5d-ties", "params": {"tied_inputs": 0.08}}
        }));
        let params = m.prior_params();
        assert_eq!(params.len(), 1);
        assert_eq!(params["tied_inputs"], serde_json::json!(0.08));
        assert!(metadata(serde_json::json!({"prior": {"name": "gp-1d"}}))
            .prior_params()
            .is_empty());
        assert!(metadata(Value::Null).prior_params().is_empty());
    }

    #[test]
    fn malformed_configurations_are_rejected() {
        let e = metadata(serde_json::json!([1, 2])).validate().unwrap_err();
        assert!(e.contains("must be a JSON object"), "{e}");
        let e = metadata(serde_json::json!({"prior": {"max_context": -3}}))
            .validate()
            .unwrap_err();
        assert!(
            e.contains("prior.max_context must be a non-negative integer"),
            "{e}"
        );
        let e = metadata(serde_json::json!({"run": {"seed": "x"}}))
            .validate()
            .unwrap_err();
        assert!(e.contains("run.seed"), "{e}");
    }

    #[test]
    fn output_head_and_bar_distribution_convert_both_ways() {
        let shapes = [TailShape::HalfNormal, TailShape::Pareto { index: 3.0 }];
        for (full_support, tail) in [true, false]
            .into_iter()
            .zip(shapes)
            .chain([(true, shapes[1])])
        {
            let head = OutputHead::Riemann {
                borders: vec![-1.0, 0.0, 2.0],
                full_support,
                tail,
            };
            let dist = head.bar_distribution().unwrap().unwrap();
            assert_eq!(dist.borders(), &[-1.0, 0.0, 2.0]);
            let support = if full_support {
                Support::Full
            } else {
                Support::Bounded
            };
            assert_eq!(dist.support(), support);
            assert_eq!(dist.tail_shape(), tail);
            assert_eq!(OutputHead::from_bar_distribution(&dist), head);
            // The JSON names the shape only when it is not the default half-normal, so files
            // written before the choice existed read back unchanged.
            let json = serde_json::to_string(&head).unwrap();
            assert_eq!(
                json.contains("pareto"),
                tail != TailShape::HalfNormal,
                "{json}"
            );
            assert_eq!(serde_json::from_str::<OutputHead>(&json).unwrap(), head);
        }
        let bad = OutputHead::Riemann {
            borders: vec![-1.0, 0.0, 2.0],
            full_support: true,
            tail: TailShape::Pareto { index: 1.5 },
        };
        assert!(bad.bar_distribution().is_err());
        assert!(OutputHead::Classes { n_out: 3 }
            .bar_distribution()
            .unwrap()
            .is_none());
        assert!(OutputHead::Riemann {
            borders: vec![1.0, 0.0],
            full_support: true,
            tail: TailShape::HalfNormal,
        }
        .bar_distribution()
        .is_err());
    }
}
