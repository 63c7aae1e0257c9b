//! The training loop: a [`Trainer`] builds the model, head and data plan from a [`RunConfig`] (or
//! restores them from a checkpoint) and runs optimizer steps until the budget is spent.
//!
//! One optimizer step `s` (0-based):
//! 1. the learning rate is `schedule.lr_at(s)` (linear warm-up, then cosine, in steps);
//! 2. for each of the `k = accumulation_steps` micro-batches `s·k … s·k + k − 1` (from the
//!    background [`BatchLoader`]; each batch carries its own split point `n`): forward on the
//!    context `0..n` and queries `n..N`, loss = mean over all query points of the head's loss
//!    (Riemann NLL or cross-entropy), gradient of `loss / k` accumulated by the backward pass;
//! 3. the gradient is clipped to global norm `grad_clip` and AdamW takes a step. A step whose loss
//!    or gradient norm is not finite is skipped (no update; counted), and training stops with an
//!    error after [`MAX_CONSECUTIVE_SKIPS`] such steps in a row.
//!
//! Every random input is a pure function of the run seed and the batch index (see
//! [`crate::loader`]); the parameter initialisation and the borders have their own derived seeds
//! and the engine's kernels do not depend on the thread count. A checkpoint holds the parameters,
//! the AdamW moments and step counter, and the step, so [`Trainer::resume`] continues *exactly*:
//! an interrupted and resumed run produces bit-identical losses to an uninterrupted one.
//!
//! Data-parallel on `R` ranks ([`RunOptions::collective`], see [`crate::collective`]): each rank
//! runs step 2 on its own `k` micro-batches with the loss scaled by `1 / (k · R)`, the gradients
//! and losses are summed over the ranks (one all-reduce), and every rank clips and steps on the
//! same sum, so the ranks stay bit-identical; a digest of the parameters is compared every
//! [`DIGEST_EVERY`] steps, at every checkpoint step and at the end. Stop decisions (time budget,
//! stop flag) are agreed on collectively, and rank 0 alone validates and writes checkpoints.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pfn_distribution::{BarDistribution, DistributionError, Support};
use pfn_engine::Engine;
use pfn_model::{clip_grad_norm, AdamW, AdamWConfig, ModelError, PfnModel, Precision, Workspace};
use pfn_prior::Prior;

use pfn_artifact::{
    fill_flat, model_from_tensors, named_views, pfn_config, save_checkpoint, save_model,
    ArtifactError, Checkpoint, EarlierRun, InputNormalisation, ModelMetadata, TrainState,
    TrainingSpent, WeightsError,
};

use crate::bucket_borders::{
    borders_from_values, estimate_borders, sample_plan_query_values, set_edges, BordersError,
};
use crate::collective::{digest_f32, Collective, CollectiveError, Shard, SingleProcess};
use crate::config::{ConfigError, HeadKind, RunConfig};
use crate::head::Head;
use crate::lineage::{lineage_of_named_start, lineage_of_start};
use crate::loader::{BatchLoader, BatchPlan, LoaderError, LoaderOptions, LoaderStats, TrainBatch};
use crate::model_file::{architecture_of, model_metadata, run_config_of};
use crate::normalisation::normalisation_for_prior;
use crate::observer::{
    StartInfo, StepPhases, StepReport, StopReason, TrainObserver, TrainSummary, ValidationReport,
};
use crate::schedule::LrSchedule;
use crate::seeds::init_seed;
use crate::validation::{model_batch, query_targets, ValidationError, ValidationSet};

/// Training stops with [`TrainError::Diverged`] after this many skipped steps in a row.
pub const MAX_CONSECUTIVE_SKIPS: u64 = 20;

/// A data-parallel run compares the ranks' parameter digests at least this often (in steps).
pub const DIGEST_EVERY: u64 = 100;

/// Keys of [`TrainState::extra`] written by the trainer.
mod extra_keys {
    pub const VALIDATION_HISTORY: &str = "validation_history";
    pub const LAST_VALIDATION: &str = "last_validation_loss";
    pub const SKIPPED_STEPS: &str = "skipped_steps";
}

/// Configuration keys that may differ between a checkpoint and the configuration used to resume
/// it: they change neither the data, the model shape nor the optimisation algorithm
/// (`run.precision` changes only the rounding of the training products).
pub const RESUMABLE_CHANGES: &[&str] = &[
    "run.threads",
    "run.precision",
    "budget.checkpoint_every",
    "budget.validation_every",
    "budget.max_minutes",
];

/// Configuration keys that may also differ when a finished (or stopped) run is *extended* with
/// [`Trainer::extend`]: the budget and the learning-rate schedule. The schedule is evaluated at the
/// checkpoint's step under the new configuration, so a longer cosine schedule raises the rate
/// again (a warm restart); an extended run is not bit-identical to one trained with the larger
/// budget from the start.
pub const EXTENSION_CHANGES: &[&str] = &[
    "budget.steps",
    "optimizer.lr",
    "optimizer.warmup_steps",
    "optimizer.schedule",
    "optimizer.min_lr",
];

/// Errors of the training loop.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The prior or the batch loader failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The bucket borders could not be estimated.
    #[error(transparent)]
    Borders(#[from] BordersError),
    /// The model failed (invalid architecture, forward or backward).
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// The loss of a training step could not be computed.
    #[error("training step {step}: loss: {source}")]
    Loss {
        /// 0-based optimizer step.
        step: u64,
        /// What the head reported.
        source: DistributionError,
    },
    /// The validation set could not be evaluated.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Reading or writing a model artifact or checkpoint failed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A checkpoint's tensors do not fit its architecture.
    #[error("checkpoint: {0}")]
    Weights(#[from] WeightsError),
    /// The prior produces targets the configured head cannot score.
    #[error("prior '{prior}' does not fit the configured head: {problem}")]
    Target {
        /// The prior name.
        prior: String,
        /// What is wrong.
        problem: String,
    },
    /// A checkpoint whose parts disagree with each other.
    #[error("inconsistent checkpoint: {0}")]
    Inconsistent(String),
    /// The configuration given to resume differs from the checkpoint's.
    #[error("the configuration differs from the checkpoint's at '{key}' (checkpoint: {checkpoint}, given: {given}); only {allowed} may change when resuming")]
    ConfigMismatch {
        /// Dotted key of the first difference.
        key: String,
        /// Value in the checkpoint (JSON).
        checkpoint: String,
        /// Value given (JSON).
        given: String,
        /// The keys that may change.
        allowed: String,
    },
    /// Too many consecutive steps had a non-finite loss or gradient.
    #[error("training diverged: {skipped} consecutive steps up to step {step} had a non-finite loss or gradient norm; lower optimizer.lr")]
    Diverged {
        /// Steps completed.
        step: u64,
        /// Consecutive skipped steps.
        skipped: u64,
    },
    /// The engine's thread pool could not be created.
    #[error("cannot create the compute engine: {0}")]
    Engine(String),
    /// A data-parallel run is set up wrongly or its communication failed.
    #[error("data-parallel training: {0}")]
    Distributed(String),
    /// The ranks of a data-parallel run no longer hold the same parameters.
    #[error("data-parallel training: after step {step} the parameters of rank {rank} (digest {digest:016x}) differ from rank 0's ({leader:016x}); the ranks must run the same build on the same kind of CPU with the same configuration and checkpoint")]
    RanksDiverged {
        /// Steps completed.
        step: u64,
        /// The first rank that differs from rank 0.
        rank: usize,
        /// Its parameter digest.
        digest: u64,
        /// Rank 0's parameter digest.
        leader: u64,
    },
}

impl From<CollectiveError> for TrainError {
    fn from(e: CollectiveError) -> Self {
        Self::Distributed(e.0)
    }
}

/// Options of one [`Trainer::run`] call.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to write checkpoints (every `budget.checkpoint_every` steps and when the loop ends);
    /// `None`: no checkpoints.
    pub checkpoint_path: Option<PathBuf>,
    /// Stop once this many steps are complete (an intentional interruption; a checkpoint is
    /// written if a path is set).
    pub stop_after_step: Option<u64>,
    /// Stop (after the current step) when this flag becomes true.
    pub stop_flag: Option<Arc<AtomicBool>>,
    /// Batches the loader samples ahead (default 0 means `max(4, 2 · accumulation_steps)`).
    pub prefetch: usize,
    /// The processes of a data-parallel run (`None`: this process alone). Its world size must be
    /// the configuration's `run.world_size`; rank 0 alone validates and writes checkpoints.
    pub collective: Option<Arc<dyn Collective>>,
}

/// One completed optimizer step, as kept in [`Trainer::history`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRecord {
    /// 0-based index of the step.
    pub step: u64,
    /// Mean loss over the step's query points.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether the update was skipped.
    pub skipped: bool,
}

/// A training run in memory: configuration, model, optimizer, head, data plan and progress.
pub struct Trainer {
    config: RunConfig,
    engine: Engine,
    model: PfnModel,
    optimizer: AdamW,
    head: Head,
    plan: BatchPlan,
    schedule: LrSchedule,
    normalisation: InputNormalisation,
    validation: ValidationSet,
    state: TrainState,
    last_validation: Option<(u64, f64)>,
    validation_history: Vec<(u64, f64)>,
    skipped_steps: u64,
    consecutive_skips: u64,
    history: Vec<StepRecord>,
    /// The runs before this one (`run.init_from`'s history and the start file's run), recorded in
    /// every file this run writes.
    lineage: Vec<EarlierRun>,
    train_ws: Workspace,
    eval_ws: Workspace,
    targets: Vec<f32>,
    grad: Vec<f32>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("prior", &self.config.prior.name)
            .field("step", &self.state.step)
            .field("num_params", &self.model.num_params())
            .finish()
    }
}

fn engine_for(config: &RunConfig) -> Result<Engine, TrainError> {
    Engine::new(config.run.threads.unwrap_or(0)).map_err(|e| TrainError::Engine(e.to_string()))
}

fn adamw_config(config: &RunConfig, lr: f64) -> AdamWConfig {
    let o = &config.optimizer;
    AdamWConfig {
        lr: lr as f32,
        beta1: o.betas[0] as f32,
        beta2: o.betas[1] as f32,
        eps: o.eps as f32,
        weight_decay: o.weight_decay as f32,
    }
}

/// Checks that every validation target can be scored by `head`.
fn check_targets(config: &RunConfig, head: &Head, set: &ValidationSet) -> Result<(), TrainError> {
    for tb in set.batches() {
        if let Some(problem) = tb
            .batch
            .target_y
            .iter()
            .find_map(|&t| head.target_problem(t))
        {
            return Err(TrainError::Target {
                prior: config.prior.name.clone(),
                problem,
            });
        }
    }
    Ok(())
}

/// The first difference between two configurations as `(dotted key, a value, b value)`, ignoring
/// the keys in `ignore`.
pub fn config_difference(
    a: &RunConfig,
    b: &RunConfig,
    ignore: &[&str],
) -> Option<(String, String, String)> {
    fn walk(
        a: &serde_json::Value,
        b: &serde_json::Value,
        path: &str,
        ignore: &[&str],
    ) -> Option<(String, String, String)> {
        if ignore.contains(&path) {
            return None;
        }
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let null = serde_json::Value::Null;
                    let (va, vb) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                    if let Some(d) = walk(va, vb, &sub, ignore) {
                        return Some(d);
                    }
                }
                None
            }
            _ if a == b => None,
            _ => Some((path.to_string(), a.to_string(), b.to_string())),
        }
    }
    let va = serde_json::to_value(a).ok()?;
    let vb = serde_json::to_value(b).ok()?;
    walk(&va, &vb, "", ignore)
}

/// The output head, model and lineage of `run.init_from` for a fresh run of `config`: the file
/// must hold this run's architecture and a head of this run's kind and width.
fn initial_weights(
    path: &str,
    config: &RunConfig,
) -> Result<(Head, PfnModel, Vec<EarlierRun>), TrainError> {
    let artifact = pfn_artifact::load_model(path)?;
    let meta = &artifact.metadata;
    let wanted = architecture_of(config);
    if meta.architecture != wanted {
        return Err(TrainError::Inconsistent(format!(
            "run.init_from {path}: its architecture {:?} differs from this run's {:?}",
            meta.architecture, wanted
        )));
    }
    let head = Head::from_output_head(&meta.head)
        .map_err(|e| TrainError::Inconsistent(format!("run.init_from {path}: output head: {e}")))?;
    let same_kind = matches!(
        (&head, config.model.head()),
        (Head::Riemann(_), HeadKind::Riemann { .. })
            | (Head::Classes { .. }, HeadKind::Classes { .. })
    );
    if !same_kind || head.width() != config.model.output_width() {
        return Err(TrainError::Inconsistent(format!(
            "run.init_from {path}: its head ({} outputs) is not this run's ({} outputs, {})",
            head.width(),
            config.model.output_width(),
            match config.model.head() {
                HeadKind::Riemann { .. } => "a Riemann head",
                HeadKind::Classes { .. } => "a class head",
            }
        )));
    }
    let model = model_from_tensors(&meta.architecture, &artifact.tensors)?;
    Ok((head, model, lineage_of_start(path, &artifact)))
}

impl Trainer {
    /// A fresh run: estimates the borders (Riemann head) from `borders.samples` prior values with
    /// the run's borders seed, initialises the model with the run's init seed and samples the
    /// validation set with the run's validation seed.
    pub fn new(config: RunConfig) -> Result<Self, TrainError> {
        Self::new_with_prior(config, None)
    }

    /// A fresh run whose datasets come from `prior` (e.g. one written in Python) instead of the
    /// registry prior named in the configuration, whose `prior.name` is then a label recorded in
    /// the model file. `None` is [`Trainer::new`].
    pub fn new_with_prior(
        config: RunConfig,
        prior: Option<Arc<dyn Prior>>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let plan = BatchPlan::from_config_with_prior(&config, prior)?;
        plan.check_targets().map_err(|e| {
            TrainError::Config(ConfigError::Invalid {
                file: "<config>".into(),
                key: "prior.targets".into(),
                problem: format!("prior '{}': {e}", config.prior.name),
            })
        })?;
        let init = config
            .run
            .init_from
            .as_deref()
            .map(|path| initial_weights(path, &config))
            .transpose()?;
        let head = match init.as_ref() {
            // The head (borders and tails of a Riemann head) comes from the file.
            Some((head, _, _)) => head.clone(),
            None => match config.model.head() {
                HeadKind::Riemann { buckets } => {
                    let mut borders = if plan.standardises_targets() {
                        let values = sample_plan_query_values(&plan, config.borders.samples)
                            .map_err(BordersError::Prior)?;
                        borders_from_values(&values, buckets)?
                    } else {
                        estimate_borders(
                            plan.prior().as_ref(),
                            config.run.seed,
                            config.borders.samples,
                            buckets,
                            config.prior.seq_len,
                            config.prior.num_features,
                        )?
                    };
                    set_edges(&mut borders, config.borders.edges);
                    let support = if config.borders.full_support {
                        Support::Full
                    } else {
                        Support::Bounded
                    };
                    Head::Riemann(
                        BarDistribution::new(borders, support)
                            .and_then(|d| d.with_tail_shape(config.borders.tail_shape()))
                            .map_err(BordersError::Quantiles)?,
                    )
                }
                HeadKind::Classes { n_out } => Head::Classes { n_out },
            },
        };
        let (model, lineage) = match init {
            Some((_, model, lineage)) => (model, lineage),
            None => (
                PfnModel::new(
                    pfn_config(&architecture_of(&config)),
                    init_seed(config.run.seed),
                )?,
                Vec::new(),
            ),
        };
        let schedule = config.lr_schedule();
        let optimizer = AdamW::new(adamw_config(&config, schedule.lr_at(0)), model.num_params())?;
        let normalisation = normalisation_for_prior(&config.prior.name);
        Self::assemble(
            config,
            plan,
            head,
            model,
            optimizer,
            normalisation,
            TrainState::default(),
        )
        .map(|trainer| trainer.with_lineage(lineage))
    }

    /// Continues the run saved in `checkpoint` with `config`, which must equal the checkpoint's
    /// configuration except for the keys in [`RESUMABLE_CHANGES`].
    pub fn resume(config: RunConfig, checkpoint: Checkpoint) -> Result<Self, TrainError> {
        Self::resume_with_prior(config, checkpoint, None)
    }

    /// [`Trainer::resume`] of a run whose datasets come from `prior` (see
    /// [`Trainer::new_with_prior`]); the same prior must be given again for an exact resume.
    pub fn resume_with_prior(
        config: RunConfig,
        checkpoint: Checkpoint,
        prior: Option<Arc<dyn Prior>>,
    ) -> Result<Self, TrainError> {
        Self::resume_allowing(config, checkpoint, RESUMABLE_CHANGES, prior)
    }

    /// Continues the run saved in `checkpoint` with a larger budget: as [`Trainer::resume`], but the
    /// keys of [`EXTENSION_CHANGES`] may change too, and `budget.steps` (when set) must exceed the
    /// checkpoint's step. Data and model are unchanged: batch `i` is the same batch as in the
    /// original run.
    pub fn extend(config: RunConfig, checkpoint: Checkpoint) -> Result<Self, TrainError> {
        Self::extend_with_prior(config, checkpoint, None)
    }

    /// [`Trainer::extend`] of a run whose datasets come from `prior` (see
    /// [`Trainer::new_with_prior`]).
    pub fn extend_with_prior(
        config: RunConfig,
        checkpoint: Checkpoint,
        prior: Option<Arc<dyn Prior>>,
    ) -> Result<Self, TrainError> {
        let done = checkpoint.state.step;
        if let Some(steps) = config.budget.steps {
            if steps <= done {
                return Err(TrainError::Config(ConfigError::Invalid {
                    file: "<config>".into(),
                    key: "budget.steps".into(),
                    problem: format!(
                        "extending needs more steps than the checkpoint's {done}, got {steps}"
                    ),
                }));
            }
        }
        let allowed: Vec<&str> = RESUMABLE_CHANGES
            .iter()
            .chain(EXTENSION_CHANGES)
            .copied()
            .collect();
        Self::resume_allowing(config, checkpoint, &allowed, prior)
    }

    fn resume_allowing(
        config: RunConfig,
        checkpoint: Checkpoint,
        allowed: &[&str],
        prior: Option<Arc<dyn Prior>>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let stored = run_config_of(&checkpoint.metadata)
            .map_err(|e| TrainError::Inconsistent(e.to_string()))?;
        if let Some((key, checkpoint_value, given)) = config_difference(&stored, &config, allowed) {
            return Err(TrainError::ConfigMismatch {
                key,
                checkpoint: checkpoint_value,
                given,
                allowed: allowed.join(", "),
            });
        }
        let meta = &checkpoint.metadata;
        if meta.architecture != architecture_of(&config) {
            return Err(TrainError::Inconsistent(
                "the stored architecture does not match the stored configuration".into(),
            ));
        }
        let head = Head::from_output_head(&meta.head)
            .map_err(|e| TrainError::Inconsistent(format!("output head: {e}")))?;
        let model = model_from_tensors(&meta.architecture, &checkpoint.params)?;
        let n = model.num_params();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        fill_flat(&model, &checkpoint.adam_m, &mut m)?;
        fill_flat(&model, &checkpoint.adam_v, &mut v)?;
        let schedule = config.lr_schedule();
        let mut optimizer = AdamW::new(
            adamw_config(&config, schedule.lr_at(checkpoint.state.step)),
            n,
        )?;
        optimizer.restore(&m, &v, checkpoint.state.adam_step)?;
        let plan = BatchPlan::from_config_with_prior(&config, prior)?;
        let normalisation = meta.normalisation.clone();
        // A checkpoint written before lineage was recorded: read it from the start file.
        let lineage = match config.run.init_from.as_deref() {
            Some(start) if meta.lineage.is_empty() => {
                lineage_of_named_start(start, &meta.architecture)
            }
            _ => meta.lineage.clone(),
        };
        let mut trainer = Self::assemble(
            config,
            plan,
            head,
            model,
            optimizer,
            normalisation,
            checkpoint.state,
        )?
        .with_lineage(lineage);
        trainer.restore_extra();
        Ok(trainer)
    }

    fn assemble(
        config: RunConfig,
        plan: BatchPlan,
        head: Head,
        model: PfnModel,
        optimizer: AdamW,
        normalisation: InputNormalisation,
        state: TrainState,
    ) -> Result<Self, TrainError> {
        if head.width() != config.model.output_width() {
            return Err(TrainError::Inconsistent(format!(
                "the head has {} outputs but the configuration asks for {}",
                head.width(),
                config.model.output_width()
            )));
        }
        let validation = ValidationSet::new(&plan, config.budget.validation_datasets)?;
        check_targets(&config, &head, &validation)?;
        let mut model = model;
        model.set_training_precision(config.run.precision);
        Ok(Self {
            engine: engine_for(&config)?,
            schedule: config.lr_schedule(),
            config,
            model,
            optimizer,
            head,
            plan,
            normalisation,
            validation,
            state,
            last_validation: None,
            validation_history: Vec::new(),
            skipped_steps: 0,
            consecutive_skips: 0,
            history: Vec::new(),
            lineage: Vec::new(),
            train_ws: Workspace::training(),
            eval_ws: Workspace::inference(),
            targets: Vec::new(),
            grad: Vec::new(),
        })
    }

    /// The trainer recording `lineage` as the runs before this one.
    fn with_lineage(mut self, lineage: Vec<EarlierRun>) -> Self {
        self.lineage = lineage;
        self
    }

    fn restore_extra(&mut self) {
        let extra = &self.state.extra;
        if let Some(h) = extra
            .get(extra_keys::VALIDATION_HISTORY)
            .and_then(|v| serde_json::from_value::<Vec<(u64, f64)>>(v.clone()).ok())
        {
            self.validation_history = h;
        }
        if let Some(l) = extra
            .get(extra_keys::LAST_VALIDATION)
            .and_then(|v| serde_json::from_value::<(u64, f64)>(v.clone()).ok())
        {
            self.last_validation = Some(l);
        }
        if let Some(s) = extra
            .get(extra_keys::SKIPPED_STEPS)
            .and_then(serde_json::Value::as_u64)
        {
            self.skipped_steps = s;
        }
    }

    /// The run configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &PfnModel {
        &self.model
    }

    /// The model, dropping the optimizer state, workspaces, data plan and validation set.
    pub fn into_model(self) -> PfnModel {
        self.model
    }

    /// Bytes held by the training workspace (activations kept for the backward pass).
    pub fn training_workspace_bytes(&self) -> usize {
        self.train_ws.allocated_bytes()
    }

    /// The output head (borders or classes).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The batch plan (prior, shapes, split sampler).
    pub fn plan(&self) -> &BatchPlan {
        &self.plan
    }

    /// The held-out validation set.
    pub fn validation_set(&self) -> &ValidationSet {
        &self.validation
    }

    /// Progress so far (steps, datasets, seconds, best validation loss).
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The steps run by this `Trainer` value (not those before a resume), in order.
    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    /// `(step, loss)` of every validation so far, resumed parts included.
    pub fn validation_history(&self) -> &[(u64, f64)] {
        &self.validation_history
    }

    /// The most recent validation loss, if any.
    pub fn last_validation_loss(&self) -> Option<f64> {
        self.last_validation.map(|(_, l)| l)
    }

    /// Whether the step budget is used up.
    pub fn is_complete(&self) -> bool {
        let steps_done = self
            .config
            .budget
            .steps
            .is_some_and(|s| self.state.step >= s);
        let time_done = self
            .config
            .budget
            .max_minutes
            .is_some_and(|m| self.state.seconds >= m * 60.0);
        steps_done || time_done
    }

    /// The mean loss of the current model on the validation set (does not change the run).
    pub fn validation_loss(&mut self) -> Result<f64, TrainError> {
        Ok(self.validation.loss(
            &self.model,
            &self.engine,
            &mut self.eval_ws,
            &self.head,
            &mut self.targets,
        )?)
    }

    fn validate_and_record(&mut self) -> Result<ValidationReport, TrainError> {
        let t0 = Instant::now();
        let loss = self.validation_loss()?;
        let step = self.state.step;
        self.last_validation = Some((step, loss));
        if self.validation_history.last().map(|h| h.0) != Some(step) {
            self.validation_history.push((step, loss));
        }
        let best = self
            .state
            .best_validation_loss
            .map_or(loss, |b| b.min(loss));
        self.state.best_validation_loss = Some(best);
        Ok(ValidationReport {
            step,
            loss,
            best,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// One optimizer step on the given micro-batches (normally `accumulation_steps` of them, in
    /// index order). Returns the step's record and the wall time of its parts; the caller
    /// advances the counters.
    fn optimizer_step(
        &mut self,
        batches: &[TrainBatch],
        collective: &dyn Collective,
    ) -> Result<(StepRecord, StepPhases), TrainError> {
        let step = self.state.step;
        let lr = self.schedule.lr_at(step);
        let k = batches.len() as f64;
        let ranks = collective.world_size() as f64;
        let mut phases = StepPhases::default();
        let mut clock = Instant::now();
        let mut lap = || {
            let now = Instant::now();
            let seconds = (now - clock).as_secs_f64();
            clock = now;
            seconds
        };
        self.model.zero_grad();
        let mut loss = 0.0;
        for tb in batches {
            let logits = self
                .model
                .forward(&self.engine, &mut self.train_ws, &model_batch(tb))?;
            phases.forward += lap();
            query_targets(tb, &mut self.targets);
            let rows = self.targets.len();
            self.grad.resize(logits.len(), 0.0);
            let scale = (1.0 / (rows as f64 * k * ranks)) as f32;
            let (head, targets, grad) = (&self.head, &self.targets, &mut self.grad);
            let total = self
                .engine
                .install(|| match &tb.posterior {
                    Some(posterior) => head.posterior_loss_and_grad(logits, posterior, grad, scale),
                    None => head.loss_and_grad(logits, targets, grad, scale),
                })
                .map_err(|source| TrainError::Loss { step, source })?;
            loss += total / rows as f64;
            phases.loss += lap();
            self.model
                .backward(&self.engine, &mut self.train_ws, &self.grad)?;
            phases.backward += lap();
        }
        loss /= k;
        if collective.world_size() > 1 {
            collective.all_reduce_sum_f32(self.model.grads_mut())?;
            let mut sum = [loss];
            collective.all_reduce_sum_f64(&mut sum)?;
            loss = sum[0] / ranks;
            phases.communication += lap();
        }
        let clip = self.config.optimizer.grad_clip as f32;
        let grad_norm = f64::from(clip_grad_norm(&self.engine, self.model.grads_mut(), clip));
        let skipped = !(loss.is_finite() && grad_norm.is_finite());
        if !skipped {
            self.optimizer.set_lr(lr as f32)?;
            self.optimizer.step_model(&self.engine, &mut self.model)?;
        }
        phases.optimizer += lap();
        let record = StepRecord {
            step,
            loss,
            lr,
            grad_norm,
            skipped,
        };
        Ok((record, phases))
    }

    fn state_for_saving(&self) -> TrainState {
        let mut state = self.state.clone();
        state.adam_step = self.optimizer.steps();
        let history: Vec<(u64, f64)> = self
            .validation_history
            .iter()
            .copied()
            .filter(|(_, l)| l.is_finite())
            .collect();
        state.extra.insert(
            extra_keys::VALIDATION_HISTORY.into(),
            serde_json::json!(history),
        );
        if let Some((s, l)) = self.last_validation.filter(|(_, l)| l.is_finite()) {
            state.extra.insert(
                extra_keys::LAST_VALIDATION.into(),
                serde_json::json!([s, l]),
            );
        }
        state.extra.insert(
            extra_keys::SKIPPED_STEPS.into(),
            serde_json::json!(self.skipped_steps),
        );
        if state.best_validation_loss.is_some_and(|l| !l.is_finite()) {
            state.best_validation_loss = None;
        }
        state
    }

    /// Compares the ranks' parameter digests (and with `everything`, all that decides the rest of
    /// the run: configuration, step, optimizer moments); any difference stops every rank.
    fn check_ranks_agree(
        &self,
        collective: &dyn Collective,
        everything: bool,
    ) -> Result<(), TrainError> {
        if collective.world_size() == 1 {
            return Ok(());
        }
        let mut digest = digest_f32(self.model.params());
        if everything {
            let config = serde_json::to_string(&self.config).unwrap_or_default();
            let (m, v) = self.optimizer.moments();
            for part in [
                digest_f32(m),
                digest_f32(v),
                self.state.step,
                self.optimizer.steps(),
                crate::collective::digest_bytes(config.as_bytes()),
            ] {
                digest = digest.rotate_left(17) ^ part;
            }
        }
        let digests = collective.all_gather_u64(digest)?;
        if let Some((rank, &d)) = digests.iter().enumerate().find(|(_, &d)| d != digests[0]) {
            return Err(TrainError::RanksDiverged {
                step: self.state.step,
                rank,
                digest: d,
                leader: digests[0],
            });
        }
        Ok(())
    }

    /// The metadata of the model in its current state: configuration, architecture, head
    /// (borders), normalisation, budget spent and the latest validation loss.
    pub fn metadata(&self) -> ModelMetadata {
        let mut metadata = model_metadata(
            &self.config,
            self.head.to_output_head(),
            self.normalisation.clone(),
            TrainingSpent {
                steps: self.state.step,
                datasets: self.state.datasets,
                seconds: self.state.seconds,
            },
            self.last_validation_loss().filter(|l| l.is_finite()),
        );
        metadata.lineage = self.lineage.clone();
        metadata
    }

    /// Writes the model artifact (weights + [`Trainer::metadata`]) atomically.
    pub fn save_model(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let tensors = named_views(&self.model, self.model.params());
        save_model(path, &self.metadata(), &tensors)?;
        Ok(())
    }

    /// Writes a checkpoint (weights, AdamW moments, progress) atomically.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let (m, v) = self.optimizer.moments();
        save_checkpoint(
            path,
            &self.metadata(),
            &self.state_for_saving(),
            &named_views(&self.model, self.model.params()),
            &named_views(&self.model, m),
            &named_views(&self.model, v),
        )?;
        Ok(())
    }

    /// Trains until the budget (`budget.steps` and/or `budget.max_minutes`), `stop_after_step` or
    /// the stop flag ends the loop; validates every `budget.validation_every` steps and at the
    /// end, and checkpoints every `budget.checkpoint_every` steps and at the end (when a
    /// checkpoint path is given). The caller saves the final model with [`Trainer::save_model`].
    pub fn run(
        &mut self,
        options: &RunOptions,
        observer: &mut dyn TrainObserver,
    ) -> Result<TrainSummary, TrainError> {
        let k = self.config.optimizer.accumulation_steps;
        let total_steps = self.config.budget.steps;
        let max_seconds = self.config.budget.max_minutes.map(|m| m * 60.0);
        let start_step = self.state.step;
        let base_seconds = self.state.seconds;
        let dps = self.config.datasets_per_step();
        let prefetch = if options.prefetch == 0 {
            (2 * k as usize).max(4)
        } else {
            options.prefetch
        };
        let collective: Arc<dyn Collective> = options
            .collective
            .clone()
            .unwrap_or_else(|| Arc::new(SingleProcess));
        let (rank, ranks) = (collective.rank(), collective.world_size());
        if ranks != self.config.run.world_size() {
            return Err(TrainError::Distributed(format!(
                "the run has {ranks} rank(s) but its configuration says run.world_size = {}",
                self.config.run.world_size()
            )));
        }
        let leader = rank == 0;
        let shard = Shard {
            rank: rank as u64,
            world_size: ranks as u64,
            block: u64::from(k),
        };
        // Ranks that start from different configurations, checkpoints or builds stop here.
        self.check_ranks_agree(collective.as_ref(), true)?;
        if self.config.run.precision == Precision::Bf16 {
            if let Some(note) = pfn_engine::bf16::emulation_note() {
                eprintln!("note: run.precision = \"bf16\": {note}");
            }
        }
        observer.on_start(&StartInfo {
            start_step,
            total_steps,
            max_seconds,
            num_params: self.model.num_params(),
            datasets_per_step: dps,
            threads: self.engine.threads(),
            validation_datasets: self.validation.num_datasets(),
            validation_context_sizes: self.validation.context_sizes(),
        });

        let session = Instant::now();
        let mut validation_time = Duration::ZERO;
        let mut checkpoint_time = Duration::ZERO;
        let mut loader_stats = LoaderStats::default();
        let mut last_loss = f64::NAN;
        let mut last_checkpoint_step = None;
        let elapsed = |session: &Instant| base_seconds + session.elapsed().as_secs_f64();

        let stop = {
            let mut loader: Option<BatchLoader> = None;
            let mut batches = Vec::with_capacity(k as usize);
            loop {
                if total_steps.is_some_and(|t| self.state.step >= t) {
                    break StopReason::StepBudget;
                }
                if options
                    .stop_after_step
                    .is_some_and(|s| self.state.step >= s)
                {
                    break StopReason::StopAfterStep;
                }
                // The clock and the stop flag are local: the ranks stop when any of them asks.
                let mut asked = [
                    f64::from(u8::from(
                        max_seconds.is_some_and(|m| elapsed(&session) >= m),
                    )),
                    f64::from(u8::from(
                        options
                            .stop_flag
                            .as_ref()
                            .is_some_and(|f| f.load(Ordering::Relaxed)),
                    )),
                ];
                collective.all_reduce_sum_f64(&mut asked)?;
                if asked[0] > 0.0 {
                    break StopReason::TimeBudget;
                }
                if asked[1] > 0.0 {
                    break StopReason::StopFlag;
                }
                if loader.is_none() {
                    // Started lazily, so a run whose budget is already spent samples nothing.
                    loader = Some(BatchLoader::start(
                        self.plan.clone(),
                        LoaderOptions {
                            start_index: BatchPlan::first_index_of_step(self.state.step, k),
                            end_index: total_steps.map(|s| BatchPlan::first_index_of_step(s, k)),
                            shard,
                            workers: 1,
                            prefetch,
                        },
                    )?);
                }
                let Some(loader) = loader.as_mut() else {
                    unreachable!("the loader was just started")
                };
                batches.clear();
                for _ in 0..k {
                    batches.push(loader.next_batch()?.batch);
                }
                loader_stats = loader.stats();
                let (record, phases) = self.optimizer_step(&batches, collective.as_ref())?;
                self.history.push(record);
                last_loss = record.loss;
                self.state.step += 1;
                self.state.datasets += dps;
                self.state.adam_step = self.optimizer.steps();
                self.state.seconds = elapsed(&session);
                if record.skipped {
                    self.skipped_steps += 1;
                    self.consecutive_skips += 1;
                    if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                        return Err(TrainError::Diverged {
                            step: self.state.step,
                            skipped: self.consecutive_skips,
                        });
                    }
                } else {
                    self.consecutive_skips = 0;
                }
                let train_secs = (session.elapsed() - validation_time - checkpoint_time)
                    .as_secs_f64()
                    .max(1e-9);
                observer.on_step(&StepReport {
                    step: self.state.step,
                    total_steps,
                    loss: record.loss,
                    lr: record.lr,
                    grad_norm: record.grad_norm,
                    skipped: record.skipped,
                    single_eval_pos: batches[0].single_eval_pos,
                    datasets: self.state.datasets,
                    seconds: self.state.seconds,
                    datasets_per_second: (self.state.step - start_step) as f64 * dps as f64
                        / train_secs,
                    wait_share: loader_stats.wait_after_first().as_secs_f64() / train_secs,
                    phases,
                });
                let checkpoint_step = self
                    .config
                    .budget
                    .checkpoint_every
                    .is_some_and(|every| self.state.step.is_multiple_of(every));
                if ranks > 1 && (checkpoint_step || self.state.step.is_multiple_of(DIGEST_EVERY)) {
                    self.check_ranks_agree(collective.as_ref(), false)?;
                }
                if leader
                    && self
                        .config
                        .budget
                        .validation_every
                        .is_some_and(|v| self.state.step.is_multiple_of(v))
                {
                    let t0 = Instant::now();
                    let report = self.validate_and_record()?;
                    validation_time += t0.elapsed();
                    observer.on_validation(&report);
                }
                if let (true, Some(path)) = (leader, &options.checkpoint_path) {
                    if checkpoint_step {
                        let t0 = Instant::now();
                        self.state.seconds = elapsed(&session);
                        self.save_checkpoint(path)?;
                        checkpoint_time += t0.elapsed();
                        last_checkpoint_step = Some(self.state.step);
                        observer.on_checkpoint(self.state.step, path);
                    }
                }
            }
        };

        if ranks > 1 {
            self.check_ranks_agree(collective.as_ref(), false)?;
        }
        if leader && self.last_validation.map(|(s, _)| s) != Some(self.state.step) {
            let t0 = Instant::now();
            let report = self.validate_and_record()?;
            validation_time += t0.elapsed();
            observer.on_validation(&report);
        }
        self.state.seconds = elapsed(&session);
        if let (true, Some(path)) = (leader, &options.checkpoint_path) {
            if last_checkpoint_step != Some(self.state.step) {
                let t0 = Instant::now();
                self.save_checkpoint(path)?;
                checkpoint_time += t0.elapsed();
                observer.on_checkpoint(self.state.step, path);
            }
        }
        let session_seconds = session.elapsed().as_secs_f64();
        let train_secs =
            (session_seconds - validation_time.as_secs_f64() - checkpoint_time.as_secs_f64())
                .max(1e-9);
        let steps_run = self.state.step - start_step;
        let summary = TrainSummary {
            start_step,
            end_step: self.state.step,
            datasets: self.state.datasets,
            session_seconds,
            total_seconds: self.state.seconds,
            validation_seconds: validation_time.as_secs_f64(),
            checkpoint_seconds: checkpoint_time.as_secs_f64(),
            steps_per_second: steps_run as f64 / train_secs,
            datasets_per_second: (steps_run * dps) as f64 / train_secs,
            loader: loader_stats,
            wait_share: loader_stats.wait_after_first().as_secs_f64() / train_secs,
            last_loss,
            final_validation_loss: self.last_validation_loss(),
            skipped_steps: self.skipped_steps,
            stop,
        };
        observer.on_finish(&summary);
        Ok(summary)
    }
}
