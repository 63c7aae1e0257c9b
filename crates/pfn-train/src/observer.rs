//! What the training loop reports while it runs: a [`TrainObserver`] receives the start, every
//! step, every validation and checkpoint, and the final [`TrainSummary`]. The command line turns
//! these into a progress bar or log lines; tests record them.

use std::path::Path;

use crate::loader::LoaderStats;

/// Facts about a run, sent once before the first step.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInfo {
    /// Optimizer steps already done (non-zero when resuming).
    pub start_step: u64,
    /// Step budget, if any.
    pub total_steps: Option<u64>,
    /// Wall-clock budget in seconds (over the whole run, resumed parts included), if any.
    pub max_seconds: Option<f64>,
    /// Model parameters.
    pub num_params: usize,
    /// Datasets per optimizer step over all ranks (batch size × accumulation steps × ranks).
    pub datasets_per_step: u64,
    /// Compute threads of the engine.
    pub threads: usize,
    /// Datasets in the held-out validation set.
    pub validation_datasets: usize,
    /// Context sizes of the validation batches.
    pub validation_context_sizes: Vec<usize>,
}

/// Wall time of the parts of one optimizer step, in seconds, summed over its micro-batches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepPhases {
    /// Forward passes.
    pub forward: f64,
    /// The head's loss and its gradient with respect to the logits.
    pub loss: f64,
    /// Backward passes.
    pub backward: f64,
    /// Gradient clipping and the AdamW update.
    pub optimizer: f64,
    /// Summing gradients and losses over the ranks of a data-parallel run (0 alone), including
    /// the wait for the slowest rank.
    pub communication: f64,
}

impl StepPhases {
    /// The sum of the phases: the step's compute time (waiting for batches excluded).
    pub fn total(&self) -> f64 {
        self.forward + self.loss + self.backward + self.optimizer + self.communication
    }
}

impl std::ops::AddAssign for StepPhases {
    fn add_assign(&mut self, other: Self) {
        self.forward += other.forward;
        self.loss += other.loss;
        self.backward += other.backward;
        self.optimizer += other.optimizer;
        self.communication += other.communication;
    }
}

/// One finished optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps completed, this one included (1-based index of this step).
    pub step: u64,
    /// Step budget, if any.
    pub total_steps: Option<u64>,
    /// Mean loss over the step's query points (mean over micro-batches of their means).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether the update was skipped because the loss or gradient was not finite.
    pub skipped: bool,
    /// Context size of the step's first micro-batch.
    pub single_eval_pos: usize,
    /// Datasets consumed by the whole run so far.
    pub datasets: u64,
    /// Seconds of the whole run so far (resumed parts included).
    pub seconds: f64,
    /// Datasets per second in this session.
    pub datasets_per_second: f64,
    /// Share of this session's time spent waiting for the batch loader, excluding the start-up
    /// wait for the first batch.
    pub wait_share: f64,
    /// Wall time of this step's forward, loss, backward and optimizer parts (for timing, e.g.
    /// `pfn bench`).
    pub phases: StepPhases,
}

/// One evaluation of the held-out validation set.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationReport {
    /// Steps completed when it was measured.
    pub step: u64,
    /// Mean validation loss.
    pub loss: f64,
    /// Best validation loss of the run so far (this one included).
    pub best: f64,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `budget.steps` reached.
    StepBudget,
    /// `budget.max_minutes` reached.
    TimeBudget,
    /// The caller's `stop_after_step` reached (an intentional interruption).
    StopAfterStep,
    /// The caller's stop flag was raised (e.g. Ctrl-C).
    StopFlag,
}

impl StopReason {
    /// Whether the run's budget is used up (the model is final).
    pub fn is_complete(self) -> bool {
        matches!(self, StopReason::StepBudget | StopReason::TimeBudget)
    }
}

/// The outcome of one call of `Trainer::run`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Step the session started at.
    pub start_step: u64,
    /// Steps completed at the end.
    pub end_step: u64,
    /// Datasets consumed by the whole run.
    pub datasets: u64,
    /// Seconds of this session's loop (steps, validation, checkpoints).
    pub session_seconds: f64,
    /// Seconds of the whole run (resumed parts included).
    pub total_seconds: f64,
    /// Seconds spent in validation in this session.
    pub validation_seconds: f64,
    /// Seconds spent writing checkpoints in this session.
    pub checkpoint_seconds: f64,
    /// Optimizer steps per second of this session's training time (validation and checkpoints
    /// excluded).
    pub steps_per_second: f64,
    /// Datasets per second of this session's training time.
    pub datasets_per_second: f64,
    /// Loader timing of this session.
    pub loader: LoaderStats,
    /// Share of this session's training time spent waiting for batches after the first one.
    pub wait_share: f64,
    /// Loss of the last step (NaN if no step ran).
    pub last_loss: f64,
    /// Validation loss at the end.
    pub final_validation_loss: Option<f64>,
    /// Steps whose update was skipped (non-finite loss or gradient), whole run.
    pub skipped_steps: u64,
    /// Why the loop stopped.
    pub stop: StopReason,
}

/// Receives progress from the training loop. Every method has an empty default.
pub trait TrainObserver {
    /// Before the first step.
    fn on_start(&mut self, _info: &StartInfo) {}
    /// After every optimizer step.
    fn on_step(&mut self, _report: &StepReport) {}
    /// After every validation.
    fn on_validation(&mut self, _report: &ValidationReport) {}
    /// After a checkpoint was written.
    fn on_checkpoint(&mut self, _step: u64, _path: &Path) {}
    /// When the loop ends.
    fn on_finish(&mut self, _summary: &TrainSummary) {}
}

/// An observer that ignores everything.
impl TrainObserver for () {}
