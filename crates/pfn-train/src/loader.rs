//! Training batches: a deterministic per-index plan ([`BatchPlan`]) and a background loader
//! ([`BatchLoader`]) that samples ahead of the consumer on worker threads.
//!
//! Micro-batch `i` of a run is a pure function of `(run_seed, i)`:
//! `prior.sample_batch(run_seed, i, batch_size, seq_len, num_features)` with split point
//! `split.sample_for_batch(run_seed, i)` (see [`crate::seeds`]). With gradient accumulation `k`,
//! optimizer step `s` consumes micro-batches `s·k … s·k + k − 1`
//! ([`BatchPlan::first_index_of_step`]), so a run resumed at step `s` starts the loader at index
//! `s·k` and sees exactly the batches and splits an uninterrupted run sees.
//!
//! The loader delivers batches strictly in index order whatever the number of workers, reports how
//! long the consumer waited for each batch ([`LoaderStats`]), and stops its threads when dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pfn_prior::{
    query_posterior, registered_prior, Batch, FeatureNormalisation, Normalisation, Prior,
    PriorError, QueryPosterior, SplitSampler,
};

use crate::collective::Shard;
use crate::config::{RunConfig, TargetKind};
use crate::normalisation::{
    feature_normalisation_in_training, scale_features_by_context, standardise_with_posterior,
    targets_standardised_in_training,
};
use crate::seeds::{constant_datasets_rng, validation_seed};

/// Errors from building a batch plan or from the background loader.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The prior could not be built or refused the request.
    #[error("prior '{prior}': {source}")]
    Prior {
        /// Prior name.
        prior: String,
        /// What the prior reported.
        source: PriorError,
    },
    /// The configuration gives parameters to a prior that takes none.
    #[error("prior '{prior}' takes no parameters, but [prior.params] sets {keys}")]
    UnsupportedParams {
        /// Prior name.
        prior: String,
        /// The keys given, comma-separated.
        keys: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Sampling batch `index` failed.
    #[error("sampling training batch {index} failed: {source}")]
    Sample {
        /// Micro-batch index.
        index: u64,
        /// What the prior reported.
        source: PriorError,
    },
    /// A worker thread panicked while sampling batch `index`.
    #[error("loader worker panicked while sampling batch {index}: {message}")]
    WorkerPanicked {
        /// Micro-batch index.
        index: u64,
        /// The panic message.
        message: String,
    },
    /// Every batch up to the loader's end index has been delivered.
    #[error("loader exhausted: all batches before index {end} were delivered")]
    Exhausted {
        /// One past the last index.
        end: u64,
    },
    /// Invalid loader options.
    #[error("invalid loader option {name}: {problem}")]
    Options {
        /// The option.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start loader thread: {0}")]
    Spawn(std::io::Error),
}

/// One micro-batch: the prior's datasets plus the shared split point.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatch {
    /// Micro-batch index within the run (training) or within the validation set.
    pub index: u64,
    /// Number of context points `n`; positions `n..seq_len` are the queries.
    pub single_eval_pos: usize,
    /// The datasets (batch-first, see `pfn_prior::Batch`).
    pub batch: Batch,
    /// With posterior targets (training batches only): the distribution of every query target
    /// given the context and the prior's latent, transformed like the targets.
    pub posterior: Option<QueryPosterior>,
}

/// The deterministic description of every batch of a run.
#[derive(Clone)]
pub struct BatchPlan {
    prior: Arc<dyn Prior>,
    prior_name: String,
    run_seed: u64,
    batch_size: usize,
    seq_len: usize,
    num_features: usize,
    split: SplitSampler,
    standardise_targets: bool,
    scale_features: Normalisation,
    targets: TargetKind,
    constant_fraction: f64,
    max_queries: Option<usize>,
}

impl std::fmt::Debug for BatchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchPlan")
            .field("prior", &self.prior_name)
            .field("run_seed", &self.run_seed)
            .field("batch_size", &self.batch_size)
            .field("seq_len", &self.seq_len)
            .field("num_features", &self.num_features)
            .field("split", &self.split)
            .field("targets", &self.targets)
            .field("max_queries", &self.max_queries)
            .field("constant_fraction", &self.constant_fraction)
            .finish()
    }
}

/// Builds the prior named in the configuration from the registry, with its `[prior.params]`
/// (`pfn_prior::PriorEntry::prior_with_params`). Parameters given to a prior that takes none are
/// [`LoaderError::UnsupportedParams`].
pub fn prior_from_config(config: &RunConfig) -> Result<Arc<dyn Prior>, LoaderError> {
    let name = &config.prior.name;
    let entry = registered_prior(name).map_err(|source| LoaderError::Prior {
        prior: name.clone(),
        source,
    })?;
    if !config.prior.params.is_empty() && entry.build_with_params.is_none() {
        return Err(LoaderError::UnsupportedParams {
            prior: name.clone(),
            keys: config
                .prior
                .params
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let prior = entry
        .prior_with_params(&config.prior.params)
        .map_err(|source| LoaderError::Prior {
            prior: name.clone(),
            source,
        })?;
    Ok(Arc::from(prior))
}

impl BatchPlan {
    /// The plan of a run: prior from the registry, shapes and split from the configuration.
    pub fn from_config(config: &RunConfig) -> Result<Self, LoaderError> {
        Self::from_config_with_prior(config, None)
    }

    /// The plan of a run whose datasets come from `prior` instead of the registry prior the
    /// configuration names (then `prior.name` is only a label and must not be a registry name's
    /// normalisation: an unregistered name trains on the data as the prior returns it). `None` is
    /// [`BatchPlan::from_config`].
    pub fn from_config_with_prior(
        config: &RunConfig,
        prior: Option<Arc<dyn Prior>>,
    ) -> Result<Self, LoaderError> {
        config.validate()?;
        let prior = match prior {
            Some(p) => p,
            None => prior_from_config(config)?,
        };
        Self::new(
            prior,
            &config.prior.name,
            config.run.seed,
            config.budget.batch_size,
            config.prior.seq_len,
            config.prior.num_features,
            config.split_sampler()?,
        )?
        .with_targets(config.prior.targets)
        .with_constant_fraction(config.prior.constant_fraction)
        .with_max_queries(config.prior.max_queries)
    }

    /// The same plan with at most `max_queries` query points per *training* dataset
    /// (`prior.max_queries`): training micro-batch `i` with split `n` holds `min(seq_len, n +
    /// max_queries)` points. Validation batches keep `seq_len`. `None` keeps every point. Fails
    /// for 0, or when the prior refuses the shortest such length.
    pub fn with_max_queries(mut self, max_queries: Option<usize>) -> Result<Self, LoaderError> {
        if let Some(q) = max_queries {
            let err = |source| LoaderError::Prior {
                prior: self.prior_name.clone(),
                source,
            };
            if q == 0 {
                return Err(err(PriorError::invalid(
                    "max_queries",
                    "must be at least 1",
                )));
            }
            let shortest = self.training_len(*self.split.support().start(), Some(q));
            self.prior
                .check_request(shortest, self.num_features)
                .map_err(err)?;
        }
        self.max_queries = max_queries;
        Ok(self)
    }

    /// Points of a training micro-batch with `split` context points.
    fn training_len(&self, split: usize, max_queries: Option<usize>) -> usize {
        max_queries.map_or(self.seq_len, |q| self.seq_len.min(split + q))
    }

    /// The same plan turning a fraction of its *training* datasets into noiseless constant
    /// functions (`prior.constant_fraction`): every `y` and target of such a dataset is 0 (before
    /// any target standardisation, which leaves zeros at zero), and its posterior targets are a
    /// point mass at 0. Which datasets is decided by
    /// [`crate::seeds::constant_datasets_rng`]; validation datasets are never changed.
    pub fn with_constant_fraction(mut self, fraction: f64) -> Self {
        self.constant_fraction = fraction;
        self
    }

    /// The same plan scoring its training batches against `targets`. With
    /// [`TargetKind::Posterior`] every training batch carries [`TrainBatch::posterior`]; sampling
    /// fails for a prior without a closed form (check with [`BatchPlan::check_targets`]).
    pub fn with_targets(mut self, targets: TargetKind) -> Self {
        self.targets = targets;
        self
    }

    /// What the plan's training batches are scored against.
    pub fn targets(&self) -> TargetKind {
        self.targets
    }

    /// Checks that the prior supports the plan's targets by computing them for training batch 0.
    pub fn check_targets(&self) -> Result<(), LoaderError> {
        if self.targets == TargetKind::Posterior {
            self.sample(0)?;
        }
        Ok(())
    }

    /// A plan for an explicit prior. Checks the request shape against the prior (feature range,
    /// `seq_len ≥ 1`), that `batch_size ≥ 1`, and that every split leaves a query
    /// (`max split < seq_len`).
    pub fn new(
        prior: Arc<dyn Prior>,
        prior_name: &str,
        run_seed: u64,
        batch_size: usize,
        seq_len: usize,
        num_features: usize,
        split: SplitSampler,
    ) -> Result<Self, LoaderError> {
        let err = |source| LoaderError::Prior {
            prior: prior_name.to_string(),
            source,
        };
        prior.check_request(seq_len, num_features).map_err(err)?;
        if batch_size == 0 {
            return Err(err(PriorError::invalid("batch_size", "must be at least 1")));
        }
        if *split.support().end() >= seq_len {
            return Err(err(PriorError::invalid(
                "split",
                format!(
                    "split points up to {} leave no query in datasets of {seq_len} points",
                    split.support().end()
                ),
            )));
        }
        Ok(Self {
            prior,
            prior_name: prior_name.to_string(),
            run_seed,
            batch_size,
            seq_len,
            num_features,
            split,
            standardise_targets: targets_standardised_in_training(prior_name),
            scale_features: feature_normalisation_in_training(prior_name),
            targets: TargetKind::Sampled,
            constant_fraction: 0.0,
            max_queries: None,
        })
    }

    /// Whether every delivered batch has its targets standardised with the statistics of its
    /// context (see [`crate::normalisation`]); decided by the prior's name.
    pub fn standardises_targets(&self) -> bool {
        self.standardise_targets
    }

    /// Whether every delivered batch has its used features mapped with statistics of its context
    /// rows (min/max to [0, 1], or z-scores; see [`crate::normalisation`]); decided by the prior's
    /// name.
    pub fn scales_features(&self) -> bool {
        self.scale_features.features != FeatureNormalisation::None
    }

    /// Computes the posterior targets (when `posterior`) of a freshly sampled batch with
    /// `single_eval_pos` context points from the raw data, makes the plan's constant datasets (training
    /// batches only), then applies the plan's input and target transforms.
    fn finish(
        &self,
        index: u64,
        single_eval_pos: usize,
        mut batch: Batch,
        posterior: bool,
        training: bool,
    ) -> Result<TrainBatch, LoaderError> {
        let sample_err = |source| LoaderError::Sample { index, source };
        let mut posterior = if posterior {
            Some(query_posterior(&batch, single_eval_pos).map_err(sample_err)?)
        } else {
            None
        };
        if training && self.constant_fraction > 0.0 {
            self.make_constant_datasets(index, single_eval_pos, &mut batch, posterior.as_mut())
                .map_err(sample_err)?;
        }
        scale_features_by_context(&mut batch, single_eval_pos, &self.scale_features);
        if self.standardise_targets {
            standardise_with_posterior(&mut batch, single_eval_pos, posterior.as_mut());
        }
        Ok(TrainBatch {
            index,
            single_eval_pos,
            batch,
            posterior,
        })
    }

    /// Sets `y`, `target_y` (and the posterior rows) of the datasets of training batch `index`
    /// that [`BatchPlan::with_constant_fraction`] selects to the constant 0.
    fn make_constant_datasets(
        &self,
        index: u64,
        n_context: usize,
        batch: &mut Batch,
        mut posterior: Option<&mut QueryPosterior>,
    ) -> Result<(), PriorError> {
        use rand::Rng;
        let mut rng = constant_datasets_rng(self.run_seed, index);
        let len = batch.seq_len;
        let queries = len.saturating_sub(n_context);
        for b in 0..batch.batch_size {
            if rng.random::<f64>() >= self.constant_fraction {
                continue;
            }
            batch.y[b * len..(b + 1) * len].fill(0.0);
            batch.target_y[b * len..(b + 1) * len].fill(0.0);
            if let Some(p) = posterior.as_deref_mut() {
                p.set_point_mass(b * queries, queries, 0.0)?;
            }
        }
        Ok(())
    }

    /// The first micro-batch index of optimizer step `step` with `accumulation_steps`
    /// micro-batches per step: `step · accumulation_steps`.
    pub fn first_index_of_step(step: u64, accumulation_steps: u32) -> u64 {
        step * u64::from(accumulation_steps)
    }

    /// The prior's registry name.
    pub fn prior_name(&self) -> &str {
        &self.prior_name
    }

    /// The prior.
    pub fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }

    /// The run seed.
    pub fn run_seed(&self) -> u64 {
        self.run_seed
    }

    /// Datasets per micro-batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Points per dataset.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Features per point.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The split sampler.
    pub fn split(&self) -> &SplitSampler {
        &self.split
    }

    /// The split point of training micro-batch `index`.
    pub fn split_for(&self, index: u64) -> usize {
        self.split.sample_for_batch(self.run_seed, index)
    }

    /// Samples training micro-batch `index` synchronously: exactly what the loader delivers.
    pub fn sample(&self, index: u64) -> Result<TrainBatch, LoaderError> {
        let split = self.split_for(index);
        let batch = self
            .prior
            .sample_batch(
                self.run_seed,
                index,
                self.batch_size,
                self.training_len(split, self.max_queries),
                self.num_features,
            )
            .map_err(|source| LoaderError::Sample { index, source })?;
        self.finish(
            index,
            split,
            batch,
            self.targets == TargetKind::Posterior,
            true,
        )
    }

    /// Samples batch `index` of the held-out validation set (seed
    /// [`validation_seed`]`(run_seed)`, split from the same sampler and seed). Never equal to a
    /// training batch.
    pub fn sample_validation(&self, index: u64) -> Result<TrainBatch, LoaderError> {
        let seed = validation_seed(self.run_seed);
        let batch = self
            .prior
            .sample_batch(
                seed,
                index,
                self.batch_size,
                self.seq_len,
                self.num_features,
            )
            .map_err(|source| LoaderError::Sample { index, source })?;
        self.finish(
            index,
            self.split.sample_for_batch(seed, index),
            batch,
            false,
            false,
        )
    }
}

/// Options of a [`BatchLoader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderOptions {
    /// First micro-batch index to deliver (0 for a fresh run, `step · k` to resume), counted in
    /// this rank's own micro-batches (see `shard`).
    pub start_index: u64,
    /// One past the last index to deliver (`None`: unbounded), in this rank's micro-batches.
    pub end_index: Option<u64>,
    /// Which micro-batches of the run's stream this rank samples: local index `i` delivers
    /// `BatchPlan::sample(shard.global_index(i))`. Default: the whole stream.
    pub shard: Shard,
    /// Sampling threads (each sample itself runs in parallel on rayon). Default 1.
    pub workers: usize,
    /// Batches sampled ahead of the consumer, in total over all workers (≥ 1). Default 4.
    pub prefetch: usize,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        Self {
            start_index: 0,
            end_index: None,
            shard: Shard::whole(),
            workers: 1,
            prefetch: 4,
        }
    }
}

/// A batch handed out by the loader, with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The batch, identical to `BatchPlan::sample(batch.index)`.
    pub batch: TrainBatch,
    /// How long [`BatchLoader::next_batch`] blocked waiting for it.
    pub waited: Duration,
    /// How long the worker took to sample it.
    pub sampling: Duration,
}

/// Accumulated timing of a loader, to show that sampling does not stall training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoaderStats {
    /// Batches delivered.
    pub delivered: u64,
    /// Total time the consumer blocked in [`BatchLoader::next_batch`].
    pub total_wait: Duration,
    /// Wait for the first batch (start-up latency; included in `total_wait`).
    pub first_wait: Duration,
    /// Longest single wait.
    pub max_wait: Duration,
    /// Total worker time spent sampling the delivered batches.
    pub total_sampling: Duration,
}

impl LoaderStats {
    /// Total wait excluding the unavoidable start-up wait for the first batch.
    pub fn wait_after_first(&self) -> Duration {
        self.total_wait.saturating_sub(self.first_wait)
    }
}

type WorkerMessage = Result<(TrainBatch, Duration), LoaderError>;

/// Samples batches ahead on background threads and hands them out in index order.
///
/// Worker `w` of `W` samples local indices `start + w, start + w + W, …` (each mapped to the
/// run's stream by the shard) into its own bounded channel;
/// the consumer reads the channels round-robin, so the order (and content) never depends on
/// timing. Dropping the loader stops and joins the workers.
pub struct BatchLoader {
    receivers: Vec<Receiver<WorkerMessage>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    next_index: u64,
    start_index: u64,
    end_index: Option<u64>,
    shard: Shard,
    stats: LoaderStats,
    failed: bool,
}

impl std::fmt::Debug for BatchLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchLoader")
            .field("workers", &self.receivers.len())
            .field("next_index", &self.next_index)
            .field("end_index", &self.end_index)
            .field("stats", &self.stats)
            .finish()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

impl BatchLoader {
    /// Starts the workers. Errors on `workers == 0`, `prefetch == 0`, or
    /// `end_index < start_index`.
    pub fn start(plan: BatchPlan, options: LoaderOptions) -> Result<Self, LoaderError> {
        let LoaderOptions {
            start_index,
            end_index,
            shard,
            workers,
            prefetch,
        } = options;
        if workers == 0 {
            return Err(LoaderError::Options {
                name: "workers",
                problem: "must be at least 1".into(),
            });
        }
        if prefetch == 0 {
            return Err(LoaderError::Options {
                name: "prefetch",
                problem: "must be at least 1".into(),
            });
        }
        if let Some(end) = end_index {
            if end < start_index {
                return Err(LoaderError::Options {
                    name: "end_index",
                    problem: format!("{end} is before start_index {start_index}"),
                });
            }
        }
        let per_worker = prefetch.div_ceil(workers).max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(plan);
        let mut loader = Self {
            receivers: Vec::with_capacity(workers),
            handles: Vec::with_capacity(workers),
            stop: Arc::clone(&stop),
            next_index: start_index,
            start_index,
            end_index,
            shard,
            stats: LoaderStats::default(),
            failed: false,
        };
        for w in 0..workers {
            let (tx, rx) = sync_channel::<WorkerMessage>(per_worker);
            let plan = Arc::clone(&plan);
            let stop = Arc::clone(&stop);
            let stride = workers as u64;
            let handle = std::thread::Builder::new()
                .name(format!("pfn-loader-{w}"))
                .spawn(move || {
                    let mut index = start_index + w as u64;
                    while !stop.load(Ordering::Relaxed) && end_index.is_none_or(|e| index < e) {
                        let t0 = Instant::now();
                        let global = shard.global_index(index);
                        let result = catch_unwind(AssertUnwindSafe(|| plan.sample(global)));
                        let message = match result {
                            Ok(Ok(batch)) => Ok((batch, t0.elapsed())),
                            Ok(Err(e)) => Err(e),
                            Err(payload) => Err(LoaderError::WorkerPanicked {
                                index: global,
                                message: panic_message(payload.as_ref()),
                            }),
                        };
                        let is_err = message.is_err();
                        // A send error means the loader was dropped: stop quietly.
                        if tx.send(message).is_err() || is_err {
                            return;
                        }
                        index += stride;
                    }
                })
                .map_err(LoaderError::Spawn)?;
            loader.receivers.push(rx);
            loader.handles.push(handle);
        }
        Ok(loader)
    }

    /// The index of the batch the next call to [`BatchLoader::next_batch`] returns.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Blocks until the next batch (in index order) is ready. After an error the loader is
    /// finished and every further call returns an error.
    pub fn next_batch(&mut self) -> Result<Delivered, LoaderError> {
        if let Some(end) = self.end_index {
            if self.next_index >= end {
                return Err(LoaderError::Exhausted { end });
            }
        }
        if self.failed {
            return Err(LoaderError::Options {
                name: "next_batch",
                problem: "the loader stopped after an earlier error".into(),
            });
        }
        let worker = ((self.next_index - self.start_index) % self.receivers.len() as u64) as usize;
        let t0 = Instant::now();
        let received = self.receivers[worker].recv();
        let waited = t0.elapsed();
        let (batch, sampling) = match received {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                self.failed = true;
                return Err(e);
            }
            Err(RecvError) => {
                self.failed = true;
                return Err(LoaderError::WorkerPanicked {
                    index: self.shard.global_index(self.next_index),
                    message: "worker thread ended unexpectedly".into(),
                });
            }
        };
        debug_assert_eq!(batch.index, self.shard.global_index(self.next_index));
        if self.stats.delivered == 0 {
            self.stats.first_wait = waited;
        }
        self.stats.delivered += 1;
        self.stats.total_wait += waited;
        self.stats.max_wait = self.stats.max_wait.max(waited);
        self.stats.total_sampling += sampling;
        self.next_index += 1;
        Ok(Delivered {
            batch,
            waited,
            sampling,
        })
    }

    /// Timing accumulated so far.
    pub fn stats(&self) -> LoaderStats {
        self.stats
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receivers wakes workers blocked on a full channel (their send fails).
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}
