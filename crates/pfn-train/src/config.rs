//! The declarative run configuration: one TOML file describes a training run.
//!
//! ```toml
//! [prior]
//! name = "gp-1d"                  # a name from the prior registry (pfn_prior::PRIORS)
//! num_features = 1
//! seq_len = 100                   # N = context + queries
//! split = "weighted"              # "weighted" (n ∝ 1/(N-n), the paper), "uniform" or "harmonic" (n ∝ 1/n)
//! min_context = 0                 # uniform only; the weighted sampler starts at 0
//! max_context = 99                # default seq_len - 1 (at least one query)
//! # max_queries = 50              # training datasets with n context points keep n + 50 points
//! # [prior.params]                # optional, for a prior that takes parameters, e.g.
//! # tied_inputs = 0.08            # gp-hyper-5d-ties: its share of tied-input datasets
//!
//! [model]
//! emsize = 512
//! nlayers = 6
//! nhead = 4
//! nhid = 1024
//! buckets = 1000                  # Riemann head; or `n_out = 10` for a class head
//! query_self_attention = false
//! y_encoding = "linear"           # or "embedding" (class heads: one learned vector per label)
//!
//! [borders]
//! samples = 1000000               # prior y samples used for equal-mass borders
//! full_support = true
//! edges = "sample_range"          # or "neighbour_width"
//! tails = "half_normal"           # or "pareto" (then tail_index = 3.0, above 2)
//!
//! [optimizer]
//! lr = 1e-4
//! betas = [0.9, 0.999]
//! eps = 1e-8
//! weight_decay = 0.0
//! warmup_steps = 250              # default: a quarter of budget.steps
//! schedule = "cosine"             # or "constant"
//! min_lr = 0.0                    # fraction of lr reached at the end of the cosine
//! grad_clip = 1.0
//! accumulation_steps = 1
//!
//! [budget]
//! steps = 1000                    # optimizer steps; and/or max_minutes
//! batch_size = 32                 # datasets per micro-batch
//! checkpoint_every = 100
//! validation_every = 100
//! validation_datasets = 256
//!
//! [run]
//! seed = 0
//! threads = 2
//! precision = "f32"               # or "bf16": bf16 products, f32 weights/gradients/AdamW
//! ```
//!
//! Every table rejects unknown keys; [`RunConfig::from_toml_str`] turns such mistakes into one-line
//! errors such as `config.toml: unknown key 'lrr' in [optimizer] (line 7); expected one of ...`.
//! Values are checked by [`RunConfig::validate`] (called by the loaders).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use pfn_distribution::TailShape;
use pfn_model::Precision;
use pfn_prior::SplitSampler;

use crate::schedule::{LrSchedule, ScheduleKind};

/// Errors from reading, parsing or validating a run configuration. Each displays as one line that
/// starts with the file name.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}: TOML syntax error (line {line}): {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// What the parser reported.
        message: String,
    },
    /// A key that no table of the configuration knows.
    #[error("{file}: unknown key '{key}' in {table} (line {line}){expected}")]
    UnknownKey {
        /// The file.
        file: String,
        /// The offending key.
        key: String,
        /// The table it was found in, e.g. `[optimizer]` or `the top level`.
        table: String,
        /// 1-based line.
        line: usize,
        /// `; expected one of ...` or empty.
        expected: String,
    },
    /// A required key is absent.
    #[error("{file}: missing key '{key}' in {table}")]
    MissingKey {
        /// The file.
        file: String,
        /// The missing key.
        key: String,
        /// The table that should hold it.
        table: String,
    },
    /// A value has the wrong type or is not one of the allowed words.
    #[error("{file}: bad value for '{key}' in {table} (line {line}): {message}")]
    BadValue {
        /// The file.
        file: String,
        /// The key whose value is wrong (best effort, from the line).
        key: String,
        /// The table.
        table: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is well-typed but out of its allowed range or inconsistent with another value.
    #[error("{file}: invalid {key}: {problem}")]
    Invalid {
        /// The file (or `<config>` when validating a value built in code).
        file: String,
        /// Dotted key, e.g. `model.emsize`.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// The configuration could not be written as TOML or JSON.
    #[error("cannot serialise the run configuration: {0}")]
    Serialise(String),
}

/// A complete run description. Build one with [`RunConfig::from_toml_str`], [`RunConfig::load`],
/// or [`RunConfig::new`] plus field edits followed by [`RunConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Which prior generates the training data and how each batch is shaped.
    pub prior: PriorConfig,
    /// Transformer sizes and output head.
    #[serde(default)]
    pub model: ModelConfig,
    /// How the Riemann-head borders are estimated.
    #[serde(default)]
    pub borders: BordersConfig,
    /// AdamW, learning-rate schedule, clipping and gradient accumulation.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// How long to train, batch size, checkpoint and validation cadence.
    #[serde(default)]
    pub budget: BudgetConfig,
    /// Seed and threads.
    #[serde(default)]
    pub run: RunSection,
}

/// `[prior]`: the data-generating prior and the batch shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    /// Name in the prior registry (`pfn_prior::prior_by_name`). Required.
    pub name: String,
    /// Optional prior parameters passed to the registry as a JSON object
    /// (`pfn_prior::PriorEntry::prior_with_params`; only priors that take parameters accept them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Number of input features per point (default 1).
    #[serde(default = "default_num_features")]
    pub num_features: usize,
    /// Points per dataset, N = context + queries (default 100).
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
    /// How the number of context points n is drawn each step (default `weighted`).
    #[serde(default)]
    pub split: SplitDistribution,
    /// Smallest number of context points (default 0; must be 0 for `weighted`).
    #[serde(default)]
    pub min_context: usize,
    /// Largest number of context points (default `seq_len - 1`, leaving at least one query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context: Option<usize>,
    /// Most query points of a training dataset (default: every point after the context). A
    /// micro-batch whose datasets have n context points then holds `min(seq_len, n +
    /// max_queries)` points, so datasets with small contexts cost less and more datasets fit in
    /// the same time. Validation datasets keep all `seq_len` points, so validation losses stay
    /// comparable with runs without it. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queries: Option<usize>,
    /// What the training loss scores each query against (default `sampled`).
    #[serde(default, skip_serializing_if = "TargetKind::is_sampled")]
    pub targets: TargetKind,
    /// Fraction of training datasets (not validation datasets) whose function is replaced by a
    /// noiseless constant, every `y` and target equal (default 0). With context-standardised
    /// targets such a context is all zeros, and the model learns that a context whose targets all
    /// agree predicts that value, narrowly; without it such a context is an input it never saw.
    /// Regression priors only; must lie in `[0, 1)`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub constant_fraction: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// What the training loss scores a query point against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The one target value the prior sampled (the paper's loss).
    #[default]
    Sampled,
    /// The whole conditional distribution of the target given the context and the latent the
    /// prior drew (Rao-Blackwellised): the exact GP predictive for GP priors, the label
    /// probabilities for the BNN classification priors (`pfn_prior::posterior_targets`). Same
    /// optimum and expected loss as `sampled`, lower gradient variance. Validation still scores
    /// the sampled targets, so runs with either kind are comparable.
    Posterior,
}

impl TargetKind {
    /// Whether this is [`TargetKind::Sampled`] (the default, omitted when serialising).
    pub fn is_sampled(&self) -> bool {
        *self == TargetKind::Sampled
    }
}

/// How the number of context points `n` (the reference code's `single_eval_pos`) is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitDistribution {
    /// `n ∈ {0, …, M}` with `P(n) ∝ 1 / (M + 1 − n)`, `M = max_context` (paper App. E.1 and the
    /// original code's `get_weighted_single_eval_pos_sampler(M + 1)`). With the default
    /// `M = seq_len − 1` this is `P(n) ∝ 1 / (N − n)`, one over the number of queries.
    #[default]
    Weighted,
    /// `n` uniform on `{min_context, …, max_context}` (maintained library, tabular PFNs).
    Uniform,
    /// `P(n) ∝ 1 / n` on `{min_context, …, max_context}`, `min_context ≥ 1`: each octave of
    /// context sizes gets about the same share, so the small contexts a user most needs a PFN for
    /// are trained as often as the large ones.
    Harmonic,
}

/// `[model]`: transformer sizes. Defaults are the reference configuration of spec §11.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Embedding width (default 512).
    #[serde(default = "default_emsize")]
    pub emsize: usize,
    /// Number of transformer layers (default 6).
    #[serde(default = "default_nlayers")]
    pub nlayers: usize,
    /// Attention heads; must divide `emsize` (default 4).
    #[serde(default = "default_nhead")]
    pub nhead: usize,
    /// Hidden width of the feed-forward blocks and of the decoder (default 1024).
    #[serde(default = "default_nhid")]
    pub nhid: usize,
    /// Buckets of the Riemann (bar) distribution head. Mutually exclusive with `n_out`; when
    /// neither is given the head is a Riemann head with 1000 buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<usize>,
    /// Number of classes of a classification (cross-entropy) head. Mutually exclusive with
    /// `buckets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_out: Option<usize>,
    /// Whether each query also attends to itself (original code: yes; paper figure and maintained
    /// library: no). Default false.
    #[serde(default)]
    pub query_self_attention: bool,
    /// How a context point's target enters the model: `"linear"` (default: `Linear(1, emsize)` of
    /// the target, the paper's encoder) or `"embedding"` (class heads only: a learned table with
    /// one vector per class, so labels carry no order, as the paper's Omniglot model).
    #[serde(default, skip_serializing_if = "YEncoding::is_linear")]
    pub y_encoding: YEncoding,
}

/// The y encoder of a [`ModelConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YEncoding {
    /// `Linear(1, emsize)` of the scalar target.
    #[default]
    Linear,
    /// One learned vector per class label (`n_out` of them).
    Embedding,
}

impl YEncoding {
    /// Whether this is the default linear encoder (omitted when a configuration is written).
    pub fn is_linear(&self) -> bool {
        *self == Self::Linear
    }
}

/// The output head a [`ModelConfig`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadKind {
    /// A Riemann (bar) distribution over this many buckets.
    Riemann {
        /// Number of buckets.
        buckets: usize,
    },
    /// Logits over this many classes.
    Classes {
        /// Number of classes.
        n_out: usize,
    },
}

/// `[borders]`: estimation of the equal-prior-mass bucket borders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BordersConfig {
    /// Number of prior y values used for the quantiles (default 1,000,000).
    #[serde(default = "default_border_samples")]
    pub samples: usize,
    /// Tails on the outer buckets, so the support is the whole real line (default true).
    #[serde(default = "default_true")]
    pub full_support: bool,
    /// Where the outermost borders go (default `sample_range`).
    #[serde(default, skip_serializing_if = "BorderEdges::is_sample_range")]
    pub edges: BorderEdges,
    /// The shape of the tails of a full-support head (default `half_normal`).
    #[serde(default, skip_serializing_if = "TailKind::is_half_normal")]
    pub tails: TailKind,
    /// The tail index of `tails = "pareto"` (default 3; must exceed 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_index: Option<f64>,
}

/// The shape of the tails of a full-support Riemann head (see [`pfn_distribution::tail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailKind {
    /// Half-normal tails (the paper's): a target `d` beyond an edge border costs about
    /// `d^2 / (2 s^2)` nats.
    #[default]
    HalfNormal,
    /// Generalised Pareto tails with index `tail_index`: a target far beyond costs about
    /// `(index + 1) ln d` nats. For heavy-tailed normalised targets, e.g. standardised by the
    /// spread of one to three context points.
    Pareto,
}

impl TailKind {
    /// Whether this is the default [`TailKind::HalfNormal`].
    pub fn is_half_normal(&self) -> bool {
        *self == TailKind::HalfNormal
    }
}

/// The tail index of Pareto tails when `borders.tail_index` is not given.
pub const DEFAULT_PARETO_TAIL_INDEX: f64 = 3.0;

impl BordersConfig {
    /// The tail shape these settings ask for (not yet validated: see [`TailShape::validate`]).
    pub fn tail_shape(&self) -> TailShape {
        match self.tails {
            TailKind::HalfNormal => TailShape::HalfNormal,
            TailKind::Pareto => TailShape::Pareto {
                index: self.tail_index.unwrap_or(DEFAULT_PARETO_TAIL_INDEX),
            },
        }
    }
}

/// Where the outermost of the equal-mass borders lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BorderEdges {
    /// At the smallest and largest sample (the paper's rule). With heavy-tailed targets (e.g.
    /// standardised by one or two context points) the two edge buckets become very wide, and any
    /// mass the model leaves in them inflates the predictive standard deviation.
    #[default]
    SampleRange,
    /// Each edge bucket as wide as its inner neighbour. Targets beyond fall in the half-normal tails
    /// of a full-support head, scaled by that width.
    NeighbourWidth,
}

impl BorderEdges {
    /// Whether this is the default [`BorderEdges::SampleRange`].
    pub fn is_sample_range(&self) -> bool {
        *self == BorderEdges::SampleRange
    }
}

/// `[optimizer]`: AdamW, schedule, clipping, accumulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Peak learning rate (default 1e-4).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam (β1, β2) (default (0.9, 0.999)).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Adam ε (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Linear warm-up length in optimizer steps (default: a quarter of `budget.steps`, or 0 when
    /// the budget is time only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<u64>,
    /// `cosine` (default) or `constant` after the warm-up.
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// Final learning rate of the cosine as a fraction of `lr`, in [0, 1] (default 0).
    #[serde(default)]
    pub min_lr: f64,
    /// Global gradient-norm clip (default 1.0).
    #[serde(default = "default_grad_clip")]
    pub grad_clip: f64,
    /// Micro-batches per optimizer step; the loss is divided by this (default 1).
    #[serde(default = "default_one_u32")]
    pub accumulation_steps: u32,
}

/// `[budget]`: how long to train and how often to checkpoint and validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Number of optimizer steps (default 1000 when `max_minutes` is not given either). With both
    /// `steps` and `max_minutes`, training stops at whichever comes first; with `max_minutes`
    /// alone there is no step limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Datasets per micro-batch (default 32).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Wall-clock limit in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_minutes: Option<f64>,
    /// Write a training checkpoint every this many optimizer steps (absent: only at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<u64>,
    /// Evaluate the validation loss every this many optimizer steps (absent: only at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_every: Option<u64>,
    /// Number of held-out prior datasets in the validation set (default 256).
    #[serde(default = "default_validation_datasets")]
    pub validation_datasets: usize,
}

/// `[run]`: reproducibility and parallelism.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Master seed; every random stream of the run derives from it (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Worker threads (absent: all cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Arithmetic of the training products (default `f32`; omitted from written configurations
    /// when f32). `bf16`: the linear layers' forward and backward products take bf16 operands
    /// with f32 accumulation, while weights, gradients, AdamW, LayerNorm, softmax, GELU and the loss
    /// stay f32 (mixed precision; see `pfn_model::precision`). Validation always runs in f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Processes of a data-parallel run (absent: 1). Set by the launcher (`mpiexec -n R pfn
    /// train`), which records it here so the model file and checkpoint say how they were trained;
    /// a file may state it, and then the launch must match. Each rank trains on `batch_size`
    /// datasets per micro-batch, so the global batch is `batch_size · accumulation_steps ·
    /// world_size` (see [`crate::collective`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<usize>,
    /// A model file whose weights (and output head: the bucket borders of a Riemann head) start a
    /// fresh run instead of a random initialisation: fine-tuning, e.g. on a changed prior. Its
    /// architecture must equal this run's; the optimizer starts afresh. A path, relative to the
    /// working directory; recorded in the model file (absent: a random initialisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
}

impl RunSection {
    /// The number of ranks of the run (`world_size`, default 1).
    pub fn world_size(&self) -> usize {
        self.world_size.unwrap_or(1)
    }
}

fn default_num_features() -> usize {
    1
}
fn default_seq_len() -> usize {
    100
}
fn default_emsize() -> usize {
    512
}
fn default_nlayers() -> usize {
    6
}
fn default_nhead() -> usize {
    4
}
fn default_nhid() -> usize {
    1024
}
fn default_border_samples() -> usize {
    1_000_000
}
fn default_true() -> bool {
    true
}
fn default_lr() -> f64 {
    1e-4
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_grad_clip() -> f64 {
    1.0
}
fn default_one_u32() -> u32 {
    1
}
fn default_batch_size() -> usize {
    32
}
fn default_validation_datasets() -> usize {
    256
}

/// Default `budget.steps` when neither `steps` nor `max_minutes` is given.
pub const DEFAULT_STEPS: u64 = 1000;

/// Default number of Riemann buckets when neither `buckets` nor `n_out` is given.
pub const DEFAULT_BUCKETS: usize = 1000;

impl PriorConfig {
    /// A prior section with the given registry name and default shape.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            params: BTreeMap::new(),
            num_features: default_num_features(),
            seq_len: default_seq_len(),
            split: SplitDistribution::default(),
            min_context: 0,
            max_context: None,
            max_queries: None,
            targets: TargetKind::Sampled,
            constant_fraction: 0.0,
        }
    }

    /// The largest number of context points: `max_context`, or `seq_len - 1` when absent.
    pub fn max_context(&self) -> usize {
        self.max_context
            .unwrap_or_else(|| self.seq_len.saturating_sub(1))
    }

    /// The prior parameters as one JSON object (empty object when none were given).
    pub fn params_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            emsize: default_emsize(),
            nlayers: default_nlayers(),
            nhead: default_nhead(),
            nhid: default_nhid(),
            buckets: None,
            n_out: None,
            query_self_attention: false,
            y_encoding: YEncoding::Linear,
        }
    }
}

impl ModelConfig {
    /// The output head: `Classes` when `n_out` is set, otherwise `Riemann` with `buckets` (or
    /// [`DEFAULT_BUCKETS`]). [`RunConfig::validate`] rejects setting both.
    pub fn head(&self) -> HeadKind {
        match (self.buckets, self.n_out) {
            (_, Some(n_out)) => HeadKind::Classes { n_out },
            (Some(buckets), None) => HeadKind::Riemann { buckets },
            (None, None) => HeadKind::Riemann {
                buckets: DEFAULT_BUCKETS,
            },
        }
    }

    /// The classes of the model's label embedding (`y_encoding = "embedding"`: the class head's
    /// `n_out`), or `None` for a linear y encoder.
    pub fn y_classes(&self) -> Option<usize> {
        match (self.y_encoding, self.head()) {
            (YEncoding::Embedding, HeadKind::Classes { n_out }) => Some(n_out),
            _ => None,
        }
    }

    /// Width of the decoder output: the number of buckets or classes.
    pub fn output_width(&self) -> usize {
        match self.head() {
            HeadKind::Riemann { buckets } => buckets,
            HeadKind::Classes { n_out } => n_out,
        }
    }
}

impl Default for BordersConfig {
    fn default() -> Self {
        Self {
            samples: default_border_samples(),
            full_support: true,
            edges: BorderEdges::SampleRange,
            tails: TailKind::HalfNormal,
            tail_index: None,
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: default_lr(),
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
            warmup_steps: None,
            schedule: ScheduleKind::default(),
            min_lr: 0.0,
            grad_clip: default_grad_clip(),
            accumulation_steps: 1,
        }
    }
}

impl BudgetConfig {
    /// Number of validation batches of `batch_size` datasets that hold at least
    /// `validation_datasets` datasets: `ceil(validation_datasets / batch_size)` (see
    /// `BatchPlan::sample_validation`).
    pub fn validation_batches(&self) -> u64 {
        self.validation_datasets.div_ceil(self.batch_size.max(1)) as u64
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            steps: Some(DEFAULT_STEPS),
            batch_size: default_batch_size(),
            max_minutes: None,
            checkpoint_every: None,
            validation_every: None,
            validation_datasets: default_validation_datasets(),
        }
    }
}

/// Name used in messages for a configuration that did not come from a file.
const IN_CODE: &str = "<config>";

impl RunConfig {
    /// A configuration with every default and the given prior name. (The TOML form always
    /// requires `[prior] name`.) `[budget] steps` defaults to 1000 here and in TOML.
    pub fn new(prior_name: impl Into<String>) -> Self {
        Self {
            prior: PriorConfig::new(prior_name),
            model: ModelConfig::default(),
            borders: BordersConfig::default(),
            optimizer: OptimizerConfig::default(),
            budget: BudgetConfig::default(),
            run: RunSection::default(),
        }
    }

    /// Reads, parses and validates a TOML file. Errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &file)
    }

    /// Parses and validates TOML text; `file` is the name used in error messages.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut config: RunConfig = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        config.apply_budget_default();
        config.validate_named(file)?;
        Ok(config)
    }

    /// Parses and validates the JSON form (as stored inside a model artifact).
    pub fn from_json_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut config: RunConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::BadValue {
                file: file.to_string(),
                key: "-".into(),
                table: "the JSON configuration".into(),
                line: e.line(),
                message: e.to_string(),
            })?;
        config.apply_budget_default();
        config.validate_named(file)?;
        Ok(config)
    }

    /// The configuration as TOML text that [`RunConfig::from_toml_str`] reads back to an equal
    /// value.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Serialise(e.to_string()))
    }

    /// The configuration as pretty JSON.
    pub fn to_json_string(&self) -> Result<String, ConfigError> {
        serde_json::to_string_pretty(self).map_err(|e| ConfigError::Serialise(e.to_string()))
    }

    /// A parsed file that sets neither `budget.steps` nor `budget.max_minutes` trains for
    /// [`DEFAULT_STEPS`] steps.
    fn apply_budget_default(&mut self) {
        if self.budget.steps.is_none() && self.budget.max_minutes.is_none() {
            self.budget.steps = Some(DEFAULT_STEPS);
        }
    }

    /// Checks every value for range and consistency; errors use the name `<config>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_named(IN_CODE)
    }

    /// Warm-up length in optimizer steps: `optimizer.warmup_steps`, else a quarter of
    /// `budget.steps` (the paper's `epochs // 4`), else 0.
    pub fn warmup_steps(&self) -> u64 {
        self.optimizer
            .warmup_steps
            .unwrap_or_else(|| self.budget.steps.map_or(0, |s| s / 4))
    }

    /// The learning-rate schedule this configuration describes.
    pub fn lr_schedule(&self) -> LrSchedule {
        LrSchedule {
            kind: self.optimizer.schedule,
            peak_lr: self.optimizer.lr,
            warmup_steps: self.warmup_steps(),
            total_steps: self.budget.steps.unwrap_or(0),
            min_lr_fraction: self.optimizer.min_lr,
        }
    }

    /// The split-point sampler (from `pfn_prior`) this configuration describes. Fails only for an
    /// invalid configuration.
    pub fn split_sampler(&self) -> Result<SplitSampler, ConfigError> {
        let max = self.prior.max_context();
        let sampler = match self.prior.split {
            SplitDistribution::Weighted => SplitSampler::weighted(max + 1),
            SplitDistribution::Uniform => SplitSampler::uniform(self.prior.min_context, max),
            SplitDistribution::Harmonic => SplitSampler::harmonic(self.prior.min_context, max),
        };
        sampler.map_err(|e| invalid(IN_CODE, "prior.max_context", e.to_string()))
    }

    /// Datasets consumed per optimizer step over all ranks (the global batch):
    /// `batch_size * accumulation_steps * world_size`.
    pub fn datasets_per_step(&self) -> u64 {
        self.budget.batch_size as u64
            * u64::from(self.optimizer.accumulation_steps)
            * self.run.world_size() as u64
    }

    fn validate_named(&self, file: &str) -> Result<(), ConfigError> {
        let p = &self.prior;
        if p.name.trim().is_empty() {
            return Err(invalid(file, "prior.name", "must not be empty"));
        }
        positive(file, "prior.num_features", p.num_features)?;
        if p.seq_len < 2 {
            return Err(invalid(
                file,
                "prior.seq_len",
                format!(
                    "must be at least 2 (one context and one query point), got {}",
                    p.seq_len
                ),
            ));
        }
        if let Some(max) = p.max_context {
            if max >= p.seq_len {
                return Err(invalid(
                    file,
                    "prior.max_context",
                    format!(
                        "must be below seq_len = {} so every dataset keeps a query, got {max}",
                        p.seq_len
                    ),
                ));
            }
        }
        if p.max_queries == Some(0) {
            return Err(invalid(
                file,
                "prior.max_queries",
                "must be at least 1 (a dataset without queries trains nothing)".to_string(),
            ));
        }
        if p.min_context > p.max_context() {
            return Err(invalid(
                file,
                "prior.min_context",
                format!(
                    "must not exceed max_context = {}, got {}",
                    p.max_context(),
                    p.min_context
                ),
            ));
        }
        if p.split == SplitDistribution::Weighted && p.min_context != 0 {
            return Err(invalid(
                file,
                "prior.min_context",
                format!(
                    "the weighted split sampler always starts at 0 context points; got {} (use split = \"uniform\" for a lower bound)",
                    p.min_context
                ),
            ));
        }
        if p.split == SplitDistribution::Harmonic && p.min_context == 0 {
            return Err(invalid(
                file,
                "prior.min_context",
                "the harmonic split sampler (P(n) ∝ 1/n) needs min_context of at least 1",
            ));
        }
        if !(0.0..1.0).contains(&p.constant_fraction) {
            return Err(invalid(
                file,
                "prior.constant_fraction",
                format!("must lie in [0, 1), got {}", p.constant_fraction),
            ));
        }
        for (k, v) in &p.params {
            if v.is_null() {
                return Err(invalid(
                    file,
                    &format!("prior.params.{k}"),
                    "must not be null",
                ));
            }
        }

        let m = &self.model;
        positive(file, "model.emsize", m.emsize)?;
        positive(file, "model.nlayers", m.nlayers)?;
        positive(file, "model.nhead", m.nhead)?;
        positive(file, "model.nhid", m.nhid)?;
        if !m.emsize.is_multiple_of(m.nhead) {
            return Err(invalid(
                file,
                "model.emsize",
                format!("must be divisible by nhead = {}, got {}", m.nhead, m.emsize),
            ));
        }
        match (m.buckets, m.n_out) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    file,
                    "model.n_out",
                    "give either buckets (Riemann head) or n_out (class head), not both",
                ))
            }
            (Some(b), None) if b < 2 => {
                return Err(invalid(
                    file,
                    "model.buckets",
                    format!("must be at least 2, got {b}"),
                ))
            }
            (None, Some(n)) if n < 2 => {
                return Err(invalid(
                    file,
                    "model.n_out",
                    format!("must be at least 2 classes, got {n}"),
                ))
            }
            _ => {}
        }
        if m.y_encoding == YEncoding::Embedding && m.n_out.is_none() {
            return Err(invalid(
                file,
                "model.y_encoding",
                "\"embedding\" needs a class head (n_out): a regression target has no classes to embed",
            ));
        }

        if let HeadKind::Riemann { buckets } = m.head() {
            let b = &self.borders;
            if b.tail_index.is_some() && b.tails != TailKind::Pareto {
                return Err(invalid(
                    file,
                    "borders.tail_index",
                    "applies only to tails = \"pareto\"",
                ));
            }
            if b.tails != TailKind::HalfNormal && !b.full_support {
                return Err(invalid(
                    file,
                    "borders.tails",
                    "needs full_support = true (a bounded head has no tails)",
                ));
            }
            if let TailShape::Pareto { index } = b.tail_shape() {
                if !(index.is_finite() && index > 2.0) {
                    return Err(invalid(
                        file,
                        "borders.tail_index",
                        format!("must be a finite number above 2 (a finite variance), got {index}"),
                    ));
                }
            }
            if self.borders.samples < buckets {
                return Err(invalid(
                    file,
                    "borders.samples",
                    format!(
                        "must be at least the number of buckets ({buckets}), got {}",
                        self.borders.samples
                    ),
                ));
            }
        }

        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(invalid(
                file,
                "optimizer.lr",
                format!("must be a finite number > 0, got {}", o.lr),
            ));
        }
        for (i, b) in o.betas.iter().enumerate() {
            if !(b.is_finite() && (0.0..1.0).contains(b)) {
                return Err(invalid(
                    file,
                    "optimizer.betas",
                    format!("beta{} must be in [0, 1), got {b}", i + 1),
                ));
            }
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return Err(invalid(
                file,
                "optimizer.eps",
                format!("must be a finite number > 0, got {}", o.eps),
            ));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return Err(invalid(
                file,
                "optimizer.weight_decay",
                format!("must be a finite number >= 0, got {}", o.weight_decay),
            ));
        }
        if !(o.min_lr.is_finite() && (0.0..=1.0).contains(&o.min_lr)) {
            return Err(invalid(
                file,
                "optimizer.min_lr",
                format!(
                    "is a fraction of lr and must be in [0, 1], got {}",
                    o.min_lr
                ),
            ));
        }
        if !(o.grad_clip.is_finite() && o.grad_clip > 0.0) {
            return Err(invalid(
                file,
                "optimizer.grad_clip",
                format!("must be a finite number > 0, got {}", o.grad_clip),
            ));
        }
        if o.accumulation_steps == 0 {
            return Err(invalid(
                file,
                "optimizer.accumulation_steps",
                "must be at least 1, got 0",
            ));
        }

        let b = &self.budget;
        if b.steps.is_none() && b.max_minutes.is_none() {
            return Err(invalid(
                file,
                "budget.steps",
                "give budget.steps, budget.max_minutes, or both",
            ));
        }
        if b.steps == Some(0) {
            return Err(invalid(file, "budget.steps", "must be at least 1, got 0"));
        }
        if let Some(minutes) = b.max_minutes {
            if !(minutes.is_finite() && minutes > 0.0) {
                return Err(invalid(
                    file,
                    "budget.max_minutes",
                    format!("must be a finite number > 0, got {minutes}"),
                ));
            }
        }
        positive(file, "budget.batch_size", b.batch_size)?;
        if b.checkpoint_every == Some(0) {
            return Err(invalid(
                file,
                "budget.checkpoint_every",
                "must be at least 1 step (leave it out to checkpoint only at the end)",
            ));
        }
        if b.validation_every == Some(0) {
            return Err(invalid(
                file,
                "budget.validation_every",
                "must be at least 1 step (leave it out to validate only at the end)",
            ));
        }
        positive(file, "budget.validation_datasets", b.validation_datasets)?;
        if o.schedule == ScheduleKind::Cosine && b.steps.is_none() {
            return Err(invalid(
                file,
                "optimizer.schedule",
                "\"cosine\" needs budget.steps to know where the decay ends; set budget.steps or use schedule = \"constant\"",
            ));
        }
        if let (Some(w), Some(s)) = (o.warmup_steps, b.steps) {
            if w > s {
                return Err(invalid(
                    file,
                    "optimizer.warmup_steps",
                    format!("must not exceed budget.steps = {s}, got {w}"),
                ));
            }
        }
        if self.run.threads == Some(0) {
            return Err(invalid(
                file,
                "run.threads",
                "must be at least 1 (leave it out to use all cores)",
            ));
        }
        if self.run.world_size == Some(0) {
            return Err(invalid(
                file,
                "run.world_size",
                "must be at least 1 (it is the number of MPI ranks)",
            ));
        }
        Ok(())
    }
}

fn invalid(file: &str, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn positive(file: &str, key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        Err(invalid(file, key, "must be at least 1, got 0"))
    } else {
        Ok(())
    }
}

/// Where in the TOML text an error points: 1-based line, the enclosing table header and the
/// dotted key written on that line (if it is a `key = value` line).
struct Location {
    line: usize,
    header: Option<String>,
    key_path: Vec<String>,
    line_is_header: bool,
}

impl Location {
    /// The table holding the first `depth` components of the line's key, as `[a.b]` or
    /// `the top level`.
    fn table(&self, depth: usize) -> String {
        let mut parts: Vec<String> = self.header.iter().cloned().collect();
        parts.extend(self.key_path.iter().take(depth).cloned());
        if parts.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", parts.join("."))
        }
    }

    /// The table of the line's last key component.
    fn key_table(&self) -> String {
        self.table(self.key_path.len().saturating_sub(1))
    }
}

fn header_of(line: &str) -> Option<String> {
    let l = line.trim();
    let inner = l.strip_prefix('[')?.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(inner[..end].trim().to_string())
}

fn split_key(k: &str) -> Vec<String> {
    k.split('.')
        .map(|c| c.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

fn locate(text: &str, offset: usize) -> Location {
    let offset = offset.min(text.len());
    let line_idx = text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    let lines: Vec<&str> = text.split('\n').collect();
    let line_idx = line_idx.min(lines.len().saturating_sub(1));
    let this = lines.get(line_idx).copied().unwrap_or("");
    let line_is_header = header_of(this).is_some();
    let header = if line_is_header {
        // The header line itself: its parent is the enclosing table, its last component the key.
        None
    } else {
        lines[..=line_idx].iter().rev().find_map(|l| header_of(l))
    };
    let key_path = if line_is_header {
        header_of(this).map(|h| split_key(&h)).unwrap_or_default()
    } else {
        this.find('=')
            .map(|eq| split_key(&this[..eq]))
            .unwrap_or_default()
    };
    Location {
        line: line_idx + 1,
        header,
        key_path,
        line_is_header,
    }
}

/// Text between the first pair of backticks after `prefix`.
fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(&rest[..end])
}

fn toml_error(e: &toml::de::Error, text: &str, file: &str) -> ConfigError {
    let message = e.message().trim().replace('\n', "; ");
    let loc = e.span().map(|s| locate(text, s.start));
    // A document that does not even parse as TOML is a syntax error; otherwise the problem is a
    // key or value that does not fit the configuration.
    if text.parse::<toml::Table>().is_err() {
        return ConfigError::Syntax {
            file: file.to_string(),
            line: loc.map_or(0, |l| l.line),
            message,
        };
    }
    if let Some(key) = backticked_after(&message, "unknown field `") {
        let expected = message
            .split_once(", expected ")
            .map(|(_, rest)| format!("; expected {}", rest.replace('`', "")))
            .unwrap_or_default();
        let (table, line) = match &loc {
            Some(l) => {
                // The unknown key is one component of the line's dotted key (or header).
                let depth = l
                    .key_path
                    .iter()
                    .position(|c| c == key)
                    .unwrap_or(l.key_path.len().saturating_sub(1));
                (l.table(depth), l.line)
            }
            None => ("the configuration".to_string(), 0),
        };
        return ConfigError::UnknownKey {
            file: file.to_string(),
            key: key.to_string(),
            table,
            line,
            expected,
        };
    }
    if let Some(key) = backticked_after(&message, "missing field `") {
        let table = match &loc {
            _ if key == "prior" => "the top level".to_string(),
            Some(l) if l.line_is_header => l.table(l.key_path.len()),
            Some(l) => l.key_table(),
            None => "the configuration".to_string(),
        };
        return ConfigError::MissingKey {
            file: file.to_string(),
            key: key.to_string(),
            table,
        };
    }
    match loc {
        Some(l) => ConfigError::BadValue {
            file: file.to_string(),
            key: l.key_path.last().cloned().unwrap_or_else(|| "-".into()),
            table: l.key_table(),
            line: l.line,
            message,
        },
        None => ConfigError::BadValue {
            file: file.to_string(),
            key: "-".into(),
            table: "the configuration".into(),
            line: 0,
            message,
        },
    }
}
