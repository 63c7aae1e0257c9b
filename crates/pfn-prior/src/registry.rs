//! The prior registry: one [`PriorEntry`] per named prior in [`PRIORS`], carrying its constructor
//! and every fact the rest of the workspace needs about it, so that no crate matches prior names:
//!
//! * [`PriorEntry::normalisation`]: how a model trained on the prior normalises its data (whether
//!   the trainer maps features to [0, 1] with each dataset's context min/max and standardises
//!   targets with the context statistics, whether targets are standardised at inference, and the
//!   zero-padding rule of a prior with a variable number of features). `pfn-train` turns it into the
//!   model file's `InputNormalisation`;
//! * [`PriorEntry::reference`]: the Bayes-optimal answer it is compared with (the exact GP with the
//!   prior's fixed hyperparameters, the GP hyper-prior whose posterior type-II fits approximate, or
//!   none), used by `pfn serve`'s overlay and the experiments;
//! * [`PriorEntry::task`]: regression or classification, and [`PriorEntry::num_classes`]: the
//!   number of outputs (`n_out`) a classification model trained on it needs;
//! * [`PriorEntry::baselines`]: which baselines of `pfn reproduce` apply;
//! * [`PriorEntry::input_range`]: the box its inputs are drawn from, when fixed;
//! * [`PriorEntry::image_shape`]: for an image prior, the shape of the image each point's features
//!   flatten (row-major), so that tools can draw its datasets as pictures.
//!
//! Adding a prior means writing its file and adding one entry here. [`prior_by_name`] builds a
//! prior, [`prior_entry`] looks its facts up.

use pfn_gp::GpHyper;

use crate::bnn_classification::{BnnArchitecture, BnnClassificationPrior};
use crate::classification::{BinarizeRule, Binarized};
use crate::error::PriorError;
use crate::features::{FeatureScaling, VariableFeatures};
use crate::gp::GpPrior;
use crate::gp_hyper::{GpHyperPrior, GpHyperPriorConfig};
use crate::linear::LinearPrior;
use crate::mlp::{MlpConfig, MlpPrior};
use crate::prior::Prior;
use crate::strokes::{StrokePrior, IMAGE_SIDE};
use crate::tabular::TABULAR_MAX_CLASSES;
use crate::tabular_bnn::{TabularBnnConfig, TabularBnnPrior};
use crate::tabular_gp::TabularGpPrior;

/// What a model trained on the prior predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Real-valued targets (a Riemann head).
    Regression,
    /// Class labels (a class head).
    Classification,
}

/// How the targets of a prior's datasets are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetNormalisation {
    /// Targets as the prior draws them, in training and at inference.
    None,
    /// The prior itself z-normalises each dataset's targets (the random-MLP prior `bnn`): the
    /// trainer leaves them alone, inference standardises the user's targets with the context mean
    /// and standard deviation.
    StandardisedByPrior,
    /// The trainer standardises each dataset's targets with the mean and standard deviation of
    /// its context targets, exactly as inference does.
    StandardisedByContext,
}

/// How the feature columns of a prior's datasets are normalised by the trainer and at inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureNormalisation {
    /// Features as the prior draws them (user data must already be in the prior's range).
    None,
    /// Every used column mapped to [0, 1] with the min/max of the dataset's context rows.
    ContextMinMax,
    /// Every used column z-scored with the mean and standard deviation of the context rows.
    ContextStandardise,
}

/// How a model trained on the prior normalises its data, in training and at inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalisation {
    /// How the used feature columns of every dataset are mapped, by the trainer and at inference.
    pub features: FeatureNormalisation,
    /// The zero-padding rule of a prior with a variable number of features (`VariableFeatures`):
    /// a dataset with fewer features has its used columns scaled by this rule's factor.
    pub feature_padding: Option<FeatureScaling>,
    /// How targets are normalised.
    pub targets: TargetNormalisation,
}

impl Normalisation {
    /// Data as the prior produces it and as the user gives it: no normalisation.
    pub const NONE: Self = Self {
        features: FeatureNormalisation::None,
        feature_padding: None,
        targets: TargetNormalisation::None,
    };

    /// Whether the trainer standardises targets with their context statistics.
    pub fn targets_standardised_in_training(&self) -> bool {
        self.targets == TargetNormalisation::StandardisedByContext
    }

    /// Whether inference standardises the user's targets with their context statistics.
    pub fn targets_standardised_at_inference(&self) -> bool {
        self.targets != TargetNormalisation::None
    }
}

/// The Bayes-optimal posterior predictive a model trained on the prior approximates, where it is
/// known.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferencePosterior {
    /// No closed-form or approximate reference.
    None,
    /// A GP with fixed hyperparameters: its exact posterior predictive is the answer.
    ExactGp(GpHyper),
    /// A GP whose hyperparameters are drawn per dataset from this hyper-prior: the answer
    /// integrates over the hyperparameters (no closed form); type-II fits under the hyper-prior
    /// approximate it, and each dataset's drawn hyperparameters give an oracle exact GP.
    GpHyperPrior(GpHyperPriorConfig),
}

/// A baseline of `pfn reproduce` that applies to a prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The exact GP with each dataset's true hyperparameters (the prior records GP
    /// hyperparameters for every dataset): `reproduce gp-fit`, `pfn eval`.
    OracleGp,
    /// Type-II ML/MAP and NUTS over the GP hyperparameters under the prior's hyper-prior
    /// (`reproduce gp-hyper`).
    GpHyperInference,
    /// SVI and NUTS over the weights of the paper's BNN classification prior (`reproduce bnn`).
    BnnInference,
}

/// One registered prior: its name, constructor and facts (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct PriorEntry {
    /// The registry name (`[prior] name` of a run configuration, recorded in the model file).
    pub name: &'static str,
    /// A one-line description for `--help` and `pfn serve`.
    pub description: &'static str,
    /// Builds the prior.
    pub build: fn() -> Result<Box<dyn Prior>, PriorError>,
    /// Regression or classification.
    pub task: TaskKind,
    /// For a classification prior, the number of classes its labels range over (`0..num_classes`,
    /// the `n_out` of a model trained on it); `None` for regression.
    pub num_classes: Option<usize>,
    /// How a model trained on it normalises data.
    pub normalisation: Normalisation,
    /// The posterior it is compared with (a function, as it holds owned values).
    pub reference: fn() -> ReferencePosterior,
    /// The baselines that apply.
    pub baselines: &'static [Baseline],
    /// The range `[lo, hi]` every raw input feature is drawn from (`x ~ U[lo, hi]^d`), when the
    /// prior fixes one.
    pub input_range: Option<[f64; 2]>,
    /// For a prior whose points are grayscale images: `[height, width]` of the image whose pixels,
    /// row-major, are a point's features; `None` for other priors.
    pub image_shape: Option<[usize; 2]>,
    /// For a prior that takes parameters (`[prior.params]` of a run configuration): builds it
    /// from them, refusing unknown keys and bad values; `None` for a prior that takes none.
    pub build_with_params: Option<BuildWithParams>,
}

/// The parameters a run configuration gives its prior (`[prior.params]`), by key.
pub type PriorParams = std::collections::BTreeMap<String, serde_json::Value>;

/// A constructor of a prior from its parameters ([`PriorEntry::build_with_params`]).
pub type BuildWithParams = fn(&PriorParams) -> Result<Box<dyn Prior>, PriorError>;

impl PriorEntry {
    /// Builds the prior.
    pub fn prior(&self) -> Result<Box<dyn Prior>, PriorError> {
        (self.build)()
    }

    /// Builds the prior with `params` (`[prior.params]`); no parameters is [`PriorEntry::prior`].
    ///
    /// # Errors
    /// If the prior takes no parameters but some are given, or they are unknown or invalid.
    pub fn prior_with_params(&self, params: &PriorParams) -> Result<Box<dyn Prior>, PriorError> {
        if params.is_empty() {
            return self.prior();
        }
        match self.build_with_params {
            Some(build) => build(params),
            None => Err(PriorError::invalid(
                "prior.params",
                format!(
                    "prior '{}' takes no parameters, but they set {}",
                    self.name,
                    params.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// The reference posterior.
    pub fn reference_posterior(&self) -> ReferencePosterior {
        (self.reference)()
    }

    /// The GP hyper-prior, for a prior whose reference is one.
    pub fn gp_hyper_prior(&self) -> Option<GpHyperPriorConfig> {
        match self.reference_posterior() {
            ReferencePosterior::GpHyperPrior(config) => Some(config),
            _ => None,
        }
    }

    /// Whether `baseline` applies.
    pub fn has_baseline(&self, baseline: Baseline) -> bool {
        self.baselines.contains(&baseline)
    }
}

fn no_reference() -> ReferencePosterior {
    ReferencePosterior::None
}

const UNIT: Option<[f64; 2]> = Some([0.0, 1.0]);
const GP_FIXED: &[Baseline] = &[Baseline::OracleGp];
const GP_HYPER: &[Baseline] = &[Baseline::OracleGp, Baseline::GpHyperInference];

/// Every registered prior, in display order.
pub const PRIORS: &[PriorEntry] = &[
    PriorEntry {
        name: "gp-1d",
        description: "GP, RBF lengthscale 0.1, outputscale 1, noise 1e-4, x ~ U[0,1] (paper Fig. 3/7/8); 1 feature",
        build: || Ok(Box::new(GpPrior::paper_1d())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: || ReferencePosterior::ExactGp(GpPrior::paper_1d().hyper().clone()),
        baselines: GP_FIXED,
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-5d",
        description: "GP, RBF lengthscale 0.6, outputscale 1, noise 1e-4, x ~ U[0,1]^5 (paper Fig. 4a); 5 features",
        build: || Ok(Box::new(GpPrior::paper_5d())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: || ReferencePosterior::ExactGp(GpPrior::paper_5d().hyper().clone()),
        baselines: GP_FIXED,
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-hyper",
        description: "GP, Matérn-5/2 ARD, per-dataset Gamma hyper-priors noise (1e-4,1) floored at 1e-4, outputscale (2,0.15), lengthscale (3,6) (paper Fig. 4b); 1 feature by default",
        build: || Ok(Box::new(GpHyperPrior::paper())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: || ReferencePosterior::GpHyperPrior(GpHyperPriorConfig::paper()),
        baselines: GP_HYPER,
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-hyper-5d",
        description: "GP, Matérn-5/2 ARD, hyper-priors as gp-hyper but noise Gamma(0.5,0.25); 1..=5 used features per dataset (zero-padded, used columns scaled by sqrt(5/d)); the shipped general-purpose regression prior, trained with y standardised by the context",
        // `VariableFeatures::with_defaults`: sqrt scaling, recorded in `normalisation` below.
        build: || {
            Ok(Box::new(VariableFeatures::with_defaults(GpHyperPrior::new(
                GpHyperPriorConfig::regression(),
            )?)?))
        },
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: GP_HYPER_5D_NORMALISATION,
        reference: || ReferencePosterior::GpHyperPrior(GpHyperPriorConfig::regression()),
        baselines: GP_HYPER,
        // Scaled by the context: the raw range does not matter.
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-hyper-5d-ties",
        description: "gp-hyper-5d where a share of the datasets (30 % by default; [prior.params] tied_inputs = p) has every input column snapped to a grid of 2..=8 values (a share tied_noiseless = q of them, default 0, with the noise at its floor) (rows tie, as integer, categorical and repeated measurements do in real tables); optionally a share repeated_rows = r (default 0) repeats whole rows from a pool of 1..=8 points, a share repeated_noiseless of them noiseless; everything else, normalisation included, as gp-hyper-5d",
        build: || gp_hyper_5d_ties(&TiedShares::default()),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: GP_HYPER_5D_NORMALISATION,
        reference: || ReferencePosterior::GpHyperPrior(GpHyperPriorConfig::regression()),
        baselines: GP_HYPER,
        input_range: None,
        image_shape: None,
        build_with_params: Some(gp_hyper_5d_ties_with_params),
    },
    PriorEntry {
        name: "gp-hyper-code",
        description: "as gp-hyper with the paper code's hyper-priors: noise Gamma(1.1,0.05), outputscale Gamma(0.5,0.15); 1 feature by default",
        build: || Ok(Box::new(GpHyperPrior::reference_code())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: || ReferencePosterior::GpHyperPrior(GpHyperPriorConfig::reference_code()),
        baselines: GP_HYPER,
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "ridge",
        description: "Bayesian linear regression, weights N(0,0.1^2), noise N(0,0.1^2), noiseless targets, x ~ U[0,1]^F; 5 features by default",
        build: || Ok(Box::new(LinearPrior::ridge())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[],
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "linear-1d",
        description: "y = a x + b + N(0,0.1^2), a, b ~ N(0,1), x ~ U[0,1]; exactly 1 feature",
        build: || Ok(Box::new(LinearPrior::linear_1d())),
        task: TaskKind::Regression,
        num_classes: None,
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[],
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "bnn",
        description: "random tanh MLP (3 layers, width 64, weight/bias std 0.25, noise 0.1), x ~ N(0,1), z-normalised x and y; 3 features by default",
        build: || Ok(Box::new(MlpPrior::new(MlpConfig::default())?)),
        task: TaskKind::Regression,
        num_classes: None,
        // The prior z-normalises y (and x) over each dataset: y is standardised with the context
        // at inference. The model file has no per-context z-score for x, so features pass through
        // unchanged (supply z-scored features).
        normalisation: Normalisation {
            targets: TargetNormalisation::StandardisedByPrior,
            ..Normalisation::NONE
        },
        reference: no_reference,
        baselines: &[],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-1d-binary",
        description: "gp-1d with labels 1[y > per-dataset median]",
        build: || {
            Ok(Box::new(Binarized::new(
                GpPrior::paper_1d(),
                BinarizeRule::Median,
            )))
        },
        task: TaskKind::Classification,
        num_classes: Some(2),
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[],
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "gp-1d-bernoulli",
        description: "gp-1d with labels ~ Bernoulli(sigmoid(y))",
        build: || {
            Ok(Box::new(Binarized::new(
                GpPrior::paper_1d(),
                BinarizeRule::Bernoulli,
            )))
        },
        task: TaskKind::Classification,
        num_classes: Some(2),
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[],
        input_range: UNIT,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "bnn-binary",
        description: "bnn with labels 1[y > per-dataset median]",
        build: || {
            Ok(Box::new(Binarized::new(
                MlpPrior::new(MlpConfig::default())?,
                BinarizeRule::Median,
            )))
        },
        task: TaskKind::Classification,
        num_classes: Some(2),
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "bnn-classification-small",
        description: "paper Fig. 5a: 2-layer linear BNN (3 features, 5 hidden, no nonlinearity), all weights N(0,1), x ~ N(0,I), labels ~ softmax of its 2 logits; x z-normalised over the sequence; 2 classes, exactly 3 features",
        build: || {
            Ok(Box::new(BnnClassificationPrior::pfn_training(
                BnnArchitecture::SMALL,
            )?))
        },
        task: TaskKind::Classification,
        num_classes: Some(2),
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[Baseline::BnnInference],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "bnn-classification-big",
        description: "paper Fig. 5b: as bnn-classification-small with 8 features and 64 hidden units; 2 classes, exactly 8 features",
        build: || {
            Ok(Box::new(BnnClassificationPrior::pfn_training(
                BnnArchitecture::BIG,
            )?))
        },
        task: TaskKind::Classification,
        num_classes: Some(2),
        normalisation: Normalisation::NONE,
        reference: no_reference,
        baselines: &[Baseline::BnnInference],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "tabular-bnn",
        description: "paper §6 PFN-BNN prior (final config) with 2..=10 classes: per dataset F_u ~ scaled_beta(1,1.6) of min(60,F) features (rest zero, used columns x F/F_u), 3-layer tanh MLP, hidden ~ scaled_beta(2,4,150,2), init/noise std ~ Gamma, x ~ N(0,1); x and y z-normalised; classes cut at random quantiles of y (K=2: median), labels permuted; 60 features by default",
        build: || Ok(Box::new(TabularBnnPrior::paper())),
        task: TaskKind::Classification,
        num_classes: Some(TABULAR_MAX_CLASSES),
        // The prior z-normalises used columns over the whole dataset; the trainer re-standardises
        // them with the context rows only, as inference does, then scales by F/F_u.
        normalisation: TABULAR_NORMALISATION,
        reference: no_reference,
        baselines: &[],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "tabular-bnn-mixed",
        description: "tabular-bnn with table-like columns: in half the datasets the used columns share a few latent factors (strongly correlated), in half (independently) a random share of columns is discrete (flags, 2-7 level ordinal scales, heavy-tailed counts with ties and zeros); everything else as tabular-bnn",
        build: || Ok(Box::new(TabularBnnPrior::new(TabularBnnConfig::mixed())?)),
        task: TaskKind::Classification,
        num_classes: Some(TABULAR_MAX_CLASSES),
        normalisation: TABULAR_NORMALISATION,
        reference: no_reference,
        baselines: &[],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "tabular-gp",
        description: "paper §6 PFN-GP prior with 2..=10 classes: Matérn-5/2 ARD GP with the gp-hyper-5d hyper-priors (lengthscales x sqrt(F_u)) on x ~ U[0,1]^F_u, classes cut at random quantiles of the noisy values; F_u, padding, z-normalised x and labels as tabular-bnn; class-probability posterior targets; 60 features by default",
        build: || Ok(Box::new(TabularGpPrior::with_defaults())),
        task: TaskKind::Classification,
        num_classes: Some(TABULAR_MAX_CLASSES),
        normalisation: TABULAR_NORMALISATION,
        reference: no_reference,
        baselines: &[],
        input_range: None,
        image_shape: None,
        build_with_params: None,
    },
    PriorEntry {
        name: "strokes",
        description: "paper §7 stroke prior for few-shot images: 5-way 5-shot episodes of 28x28 grayscale images (784 features in [0,1], row-major); each class a prototype of 1-3 straight strokes (length 5-20 px), each image redraws it with width U{1..4}, offset U{-4..4}^2, end-point jitter U{-2..2}^2, ink U{200..254}/255, blur 0.2; the first 25 points are 5 images per class shuffled, later points queries of random classes",
        build: || Ok(Box::new(StrokePrior::paper())),
        task: TaskKind::Classification,
        num_classes: Some(5),
        // Pixels are used as drawn (the paper feeds [0, 1] pixels straight to a linear encoder).
        normalisation: Normalisation::NONE,
        // The class of a query integrates over the unseen prototypes: no closed form.
        reference: no_reference,
        baselines: &[],
        input_range: UNIT,
        image_shape: Some([IMAGE_SIDE, IMAGE_SIDE]),
        build_with_params: None,
    },
];

/// The general-purpose regression priors' normalisation (`gp-hyper-5d` and its tied-inputs
/// variant), trained the way it is used: x min-max scaled by the context, used columns scaled by
/// sqrt(5/d) after zero padding (`VariableFeatures::with_defaults`), y standardised by the context.
const GP_HYPER_5D_NORMALISATION: Normalisation = Normalisation {
    features: FeatureNormalisation::ContextMinMax,
    feature_padding: Some(FeatureScaling::Sqrt),
    targets: TargetNormalisation::StandardisedByContext,
};

/// The tabular classifiers' normalisation: used columns z-scored with the context rows, then
/// scaled by `F / F_u` after zero padding; labels as given.
const TABULAR_NORMALISATION: Normalisation = Normalisation {
    features: FeatureNormalisation::ContextStandardise,
    feature_padding: Some(FeatureScaling::Linear),
    targets: TargetNormalisation::None,
};

/// The registered names, comma-separated.
fn available() -> String {
    PRIORS.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
}

/// The registry entry of the prior called `name`, if there is one.
pub fn prior_entry(name: &str) -> Option<&'static PriorEntry> {
    PRIORS.iter().find(|e| e.name == name)
}

/// The registry entry of the prior called `name`, or [`PriorError::UnknownPrior`] listing the
/// registered names.
pub fn registered_prior(name: &str) -> Result<&'static PriorEntry, PriorError> {
    prior_entry(name).ok_or_else(|| PriorError::UnknownPrior {
        name: name.to_string(),
        available: available(),
    })
}

/// The share of tied-input datasets of `gp-hyper-5d-ties` when `[prior.params]` does not set one.
const DEFAULT_TIED_INPUTS: f64 = 0.3;

/// The shares of `gp-hyper-5d-ties` (its `[prior.params]`): see [`GpHyperPrior::with_tied_inputs`],
/// [`GpHyperPrior::with_tied_noiseless`] and [`GpHyperPrior::with_repeated_rows`].
struct TiedShares {
    tied_inputs: f64,
    tied_noiseless: f64,
    repeated_rows: f64,
    repeated_noiseless: f64,
}

impl Default for TiedShares {
    fn default() -> Self {
        Self {
            tied_inputs: DEFAULT_TIED_INPUTS,
            tied_noiseless: 0.0,
            repeated_rows: 0.0,
            repeated_noiseless: 0.0,
        }
    }
}

/// `gp-hyper-5d` with the tied-input and repeated-row shares of `s`.
fn gp_hyper_5d_ties(s: &TiedShares) -> Result<Box<dyn Prior>, PriorError> {
    Ok(Box::new(VariableFeatures::with_defaults(
        GpHyperPrior::new(GpHyperPriorConfig::regression())?
            .with_tied_inputs(s.tied_inputs)?
            .with_tied_noiseless(s.tied_noiseless)?
            .with_repeated_rows(s.repeated_rows, s.repeated_noiseless)?,
    )?))
}

/// `gp-hyper-5d-ties` with its parameters `tied_inputs`, `tied_noiseless`, `repeated_rows` and
/// `repeated_noiseless` (probabilities; defaults 0.3, 0, 0 and 0).
fn gp_hyper_5d_ties_with_params(params: &PriorParams) -> Result<Box<dyn Prior>, PriorError> {
    let mut s = TiedShares::default();
    for (key, value) in params {
        let slot = match key.as_str() {
            "tied_inputs" => &mut s.tied_inputs,
            "tied_noiseless" => &mut s.tied_noiseless,
            "repeated_rows" => &mut s.repeated_rows,
            "repeated_noiseless" => &mut s.repeated_noiseless,
            other => {
                return Err(PriorError::invalid(
                    format!("prior.params.{other}"),
                    "gp-hyper-5d-ties takes only tied_inputs, tied_noiseless, repeated_rows and repeated_noiseless",
                ))
            }
        };
        *slot = value.as_f64().ok_or_else(|| {
            PriorError::invalid(
                format!("prior.params.{key}"),
                format!("must be a number, got {value}"),
            )
        })?;
    }
    gp_hyper_5d_ties(&s)
}

/// Builds the prior registered under `name` (see [`PRIORS`]).
pub fn prior_by_name(name: &str) -> Result<Box<dyn Prior>, PriorError> {
    registered_prior(name)?.prior()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyperparameters::Hyperparameters;

    #[test]
    fn only_the_tied_inputs_prior_takes_parameters_and_its_share_changes_its_data() {
        let ties = prior_entry("gp-hyper-5d-ties").unwrap();
        let with = |p: f64| {
            let params = PriorParams::from([("tied_inputs".to_string(), serde_json::json!(p))]);
            ties.prior_with_params(&params)
                .unwrap()
                .sample_batch(5, 0, 64, 30, 1)
                .unwrap()
        };
        let default = ties.prior().unwrap().sample_batch(5, 0, 64, 30, 1).unwrap();
        // The default share is the entry's, parameters or not.
        assert_eq!(with(DEFAULT_TIED_INPUTS), default);
        let plain = prior_entry("gp-hyper-5d")
            .unwrap()
            .prior()
            .unwrap()
            .sample_batch(5, 0, 64, 30, 1)
            .unwrap();
        assert_eq!(with(0.0).x, plain.x);
        assert_ne!(with(1.0).x, plain.x);
        let params = PriorParams::from([("tied_inputs".to_string(), serde_json::json!(0.1))]);
        match prior_entry("gp-hyper-5d")
            .unwrap()
            .prior_with_params(&params)
        {
            Err(e) => assert!(e.to_string().contains("takes no parameters"), "{e}"),
            Ok(_) => panic!("gp-hyper-5d took a parameter"),
        }
        assert!(PRIORS
            .iter()
            .all(|p| p.build_with_params.is_none() || p.name == "gp-hyper-5d-ties"));
    }

    /// With `repeated_rows = 1` every dataset repeats whole rows (some row occurs twice, which
    /// continuous inputs never do); with
    /// `repeated_noiseless = 1` as well, every dataset's noise is the floor.
    #[test]
    fn repeated_rows_repeat_whole_rows_and_noiseless_ones_sit_at_the_floor() {
        let ties = prior_entry("gp-hyper-5d-ties").unwrap();
        let batch = |r: f64, q: f64| {
            let params = PriorParams::from([
                ("tied_inputs".to_string(), serde_json::json!(0.0)),
                ("repeated_rows".to_string(), serde_json::json!(r)),
                ("repeated_noiseless".to_string(), serde_json::json!(q)),
            ]);
            ties.prior_with_params(&params)
                .unwrap()
                .sample_batch(3, 0, 16, 60, 3)
                .unwrap()
        };
        let b = batch(1.0, 1.0);
        let (n, d) = (60, 3);
        for ds in 0..16 {
            let rows: Vec<&[f32]> = b.x_of(ds).chunks_exact(d).collect();
            assert_eq!(rows.len(), n);
            let repeated = rows
                .iter()
                .enumerate()
                .any(|(i, a)| rows[i + 1..].iter().any(|b| b == a));
            assert!(repeated, "dataset {ds} repeats no row");
        }
        for h in &b.hyperparameters {
            let gp = match h {
                Hyperparameters::Gp(g) => g,
                Hyperparameters::FeaturePadding { inner, .. } => match &**inner {
                    Hyperparameters::Gp(g) => g,
                    other => panic!("not a GP: {other:?}"),
                },
                other => panic!("not a GP: {other:?}"),
            };
            assert_eq!(gp.noise, 1e-4);
        }
        // Without the noiseless share the noise is drawn, and without repeats the data are the
        // plain prior's.
        assert_ne!(batch(1.0, 0.0).y, b.y);
        let params = PriorParams::from([("tied_inputs".to_string(), serde_json::json!(0.0))]);
        let plain = ties
            .prior_with_params(&params)
            .unwrap()
            .sample_batch(3, 0, 16, 60, 3)
            .unwrap();
        assert_eq!(batch(0.0, 1.0).x, plain.x);
        let params = PriorParams::from([("repeated_rows".to_string(), serde_json::json!(1.5))]);
        assert!(ties.prior_with_params(&params).is_err());
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in PRIORS.iter().enumerate() {
            assert!(
                PRIORS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    /// The facts agree with what the priors draw: an oracle GP exactly where every dataset records
    /// GP hyperparameters, class labels exactly for classification priors, and the padding rule of
    /// the variable-feature prior.
    #[test]
    fn facts_agree_with_the_priors() {
        for e in PRIORS {
            let prior = e.prior().unwrap();
            let f = prior.default_num_features();
            let batch = prior.sample_batch(0, 0, 2, 8, f).unwrap();
            let records_gp = batch.hyperparameters.iter().all(|h| match h {
                Hyperparameters::Gp(_) => true,
                Hyperparameters::FeaturePadding { inner, .. } => {
                    matches!(**inner, Hyperparameters::Gp(_))
                }
                _ => false,
            });
            assert_eq!(records_gp, e.has_baseline(Baseline::OracleGp), "{}", e.name);
            assert_eq!(
                e.num_classes.is_some(),
                e.task == TaskKind::Classification,
                "{}",
                e.name
            );
            let classes = e.num_classes.unwrap_or(2);
            let labels = batch
                .target_y
                .iter()
                .all(|&t| t >= 0.0 && t.fract() == 0.0 && (t as usize) < classes);
            assert_eq!(
                labels,
                e.task == TaskKind::Classification,
                "{}: labels {labels}",
                e.name
            );
            match e.reference_posterior() {
                ReferencePosterior::ExactGp(h) => {
                    let Hyperparameters::Gp(drawn) = &batch.hyperparameters[0] else {
                        panic!("{}: no GP hyperparameters", e.name)
                    };
                    assert_eq!(&h, drawn, "{}", e.name);
                }
                ReferencePosterior::GpHyperPrior(_) => {
                    assert!(e.has_baseline(Baseline::GpHyperInference), "{}", e.name)
                }
                ReferencePosterior::None => {}
            }
            // A padding prior scales the used columns of every dataset by its recorded rule.
            if let Some(scaling) = e.normalisation.feature_padding {
                for (d, h) in batch.hyperparameters.iter().enumerate() {
                    let used = batch.features_used[d];
                    let scale = match h {
                        Hyperparameters::FeaturePadding { scale, .. } => *scale,
                        Hyperparameters::Custom { value } => value["feature_scale"]
                            .as_f64()
                            .unwrap_or_else(|| panic!("{}: no feature_scale", e.name)),
                        other => panic!("{}: unpadded record {other:?}", e.name),
                    };
                    assert_eq!(scale, scaling.factor(used, f), "{}", e.name);
                }
            }
            if let Some([lo, hi]) = e.input_range {
                assert!(
                    batch
                        .x
                        .iter()
                        .all(|&v| f64::from(v) >= lo && f64::from(v) <= hi),
                    "{}",
                    e.name
                );
            }
        }
    }

    /// The MAP hyper-priors of the type-II references are `pfn_gp`'s named ones.
    #[test]
    fn map_hyper_priors_match_pfn_gp() {
        use pfn_gp::HyperPrior;
        let of = |name: &str| prior_entry(name).unwrap().gp_hyper_prior().unwrap();
        assert_eq!(of("gp-hyper").map_hyper_prior(), HyperPrior::paper());
        assert_eq!(
            of("gp-hyper-code").map_hyper_prior(),
            HyperPrior::reference_code()
        );
        assert_eq!(of("gp-hyper-5d"), GpHyperPriorConfig::regression());
        // The tied-inputs variant is gp-hyper-5d for everything a model and its users see.
        assert_eq!(of("gp-hyper-5d-ties"), GpHyperPriorConfig::regression());
        let (plain, ties) = (
            prior_entry("gp-hyper-5d").unwrap(),
            prior_entry("gp-hyper-5d-ties").unwrap(),
        );
        assert_eq!(plain.normalisation, ties.normalisation);
        assert_eq!(plain.baselines, ties.baselines);
        assert!(prior_entry("gp-1d").unwrap().gp_hyper_prior().is_none());
    }

    /// The tabular priors: classification with 10 classes for callers, 1..=60 features, 60 by
    /// default, the paper's linear padding rule; built by name, they sample what their types do.
    #[test]
    fn tabular_entries_round_trip() {
        use crate::tabular_bnn::TabularBnnDraw;
        use crate::tabular_gp::TabularGpDraw;
        for name in ["tabular-bnn", "tabular-bnn-mixed", "tabular-gp"] {
            let e = registered_prior(name).unwrap();
            assert_eq!(e.name, name);
            assert_eq!(e.task, TaskKind::Classification);
            assert_eq!(e.num_classes, Some(TABULAR_MAX_CLASSES));
            assert_eq!(TABULAR_MAX_CLASSES, 10);
            assert_eq!(
                e.normalisation.feature_padding,
                Some(FeatureScaling::Linear)
            );
            assert_eq!(e.reference_posterior(), ReferencePosterior::None);
            let prior = prior_by_name(name).unwrap();
            assert_eq!(prior.name(), name);
            assert_eq!(prior.default_num_features(), 60);
            assert_eq!(prior.feature_range(), (1, 60));
            let batch = prior.sample_batch(3, 2, 3, 12, 60).unwrap();
            let direct = match name {
                "tabular-bnn" => TabularBnnPrior::paper().sample_batch(3, 2, 3, 12, 60),
                "tabular-bnn-mixed" => TabularBnnPrior::new(TabularBnnConfig::mixed())
                    .unwrap()
                    .sample_batch(3, 2, 3, 12, 60),
                _ => TabularGpPrior::with_defaults().sample_batch(3, 2, 3, 12, 60),
            }
            .unwrap();
            assert_eq!(batch, direct, "{name}");
            for h in &batch.hyperparameters {
                let classes = match name {
                    "tabular-bnn" | "tabular-bnn-mixed" => {
                        TabularBnnDraw::from_hyperparameters(h).unwrap().classes
                    }
                    _ => {
                        TabularGpDraw::from_hyperparameters(h)
                            .unwrap()
                            .latent_classes
                            .assignment
                    }
                };
                assert!(classes.num_classes <= e.num_classes.unwrap());
            }
        }
    }

    #[test]
    fn unknown_names_list_the_registry() {
        assert!(prior_entry("gp-2d").is_none());
        let e = registered_prior("gp-2d").unwrap_err().to_string();
        assert!(e.contains("gp-2d") && e.contains("gp-hyper-5d"), "{e}");
    }
}
