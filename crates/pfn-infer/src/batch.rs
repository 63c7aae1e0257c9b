//! Batched inference across datasets: one forward pass answers many datasets at once, the way
//! the paper timed its PFN (many datasets per GPU batch) and the way an evaluation over hundreds
//! of held-out datasets should run.
//!
//! Every dataset ([`Task`]) is validated and normalised exactly as [`Predictor::context`] does (its
//! own feature and target maps, fitted on its own context rows), so a batched answer equals the
//! one-at-a-time answer up to float rounding in the matrix products. A dataset's queries are cut
//! into units of at most [`Predictor::query_batch`] queries (each unit repeats the context, as the
//! cached path answers query batches against one encoded context). Units are grouped by context
//! size, because one forward pass shares the split point between context and queries; within a
//! group, units with fewer queries are padded with zero query rows whose outputs are dropped
//! (queries attend to the context, never to one another, so padding changes nothing). A group is
//! split into passes of at most [`Predictor::dataset_batch`] units and [`MAX_PASS_TOKENS`] rows,
//! and the answers come back in the order of the tasks.

use pfn_artifact::TargetScaler;
use pfn_model::{Batch, Workspace};

use crate::predictive::PosteriorPredictive;
use crate::predictor::{class_probabilities_of, NormalisedContext, PredictError, Predictor};

/// Datasets per forward pass by default.
pub const DEFAULT_DATASET_BATCH: usize = 64;

/// Most rows (context and query rows of every dataset) in one batched forward pass (a single unit
/// larger than this still runs, alone). It bounds the activations a pass holds (about 5 KB a row
/// for a 128-wide model) whatever the datasets' sizes, and keeps them near the CPU's caches: on
/// the 2-core development VM (AMD EPYC Zen 4, one thread), 20 windows of 100 rows of the shipped
/// tabular model with 8 members each took 210-225 ms in passes of 800 rows (one window's
/// members), 230-265 ms in passes of 2000-6400 rows, and 275-310 ms one member at a time through
/// the cached context (`examples/class_timing.rs`).
pub const MAX_PASS_TOKENS: usize = 2048;

/// One dataset of a batched prediction: a context and the queries to answer, in original units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task<'a> {
    /// Context inputs, row-major `n × features`.
    pub x: &'a [f64],
    /// Context targets (`n`; class indices for a classification model).
    pub y: &'a [f64],
    /// Query inputs, row-major `m × features`.
    pub x_query: &'a [f64],
    /// Features per row, within [`Predictor::feature_range`].
    pub features: usize,
}

/// A task mapped into the model's inputs.
struct Prepared {
    context: NormalisedContext,
    query: Vec<f32>,
    m: usize,
}

/// A task's raw output: its queries' logits (`m × n_out`, row-major) and its target map.
struct TaskLogits {
    logits: Vec<f32>,
    target: TargetScaler,
}

/// One forward unit: the context of task `task` with its queries `start..start + m`.
#[derive(Clone, Copy)]
struct Unit {
    task: usize,
    start: usize,
    m: usize,
}

impl Predictor {
    /// Datasets per forward pass of [`Predictor::predict_many`] (default [`DEFAULT_DATASET_BATCH`]).
    pub fn dataset_batch(&self) -> usize {
        DEFAULT_DATASET_BATCH
    }

    /// The predictive distributions of the queries of every task, `result[i][j]` for query `j` of
    /// task `i`, computed in batched forward passes (see the module docs). A task with no queries
    /// gets an empty list. Errors name the task.
    pub fn predict_many(
        &self,
        tasks: &[Task<'_>],
    ) -> Result<Vec<Vec<PosteriorPredictive>>, PredictError> {
        let width = self.head().width();
        self.logits_many(tasks)?
            .into_iter()
            .map(|t| {
                t.logits
                    .chunks_exact(width)
                    .map(|row| self.predictive_from_logits(row, t.target))
                    .collect()
            })
            .collect()
    }

    /// Class probabilities of the queries of every task for datasets whose labels are
    /// `0..num_classes` (each task's `y` holds class indices): `result[i]` is `m_i × num_classes`,
    /// row-major, each row the softmax over the first `num_classes` logits, as
    /// [`Context::class_probabilities`](crate::Context::class_probabilities) gives one at a time.
    /// Computed in batched forward passes (see the module docs). Errors for a regression model,
    /// `num_classes` outside `1..=n_out`, and as [`Predictor::predict_many`].
    pub fn class_probabilities_many(
        &self,
        tasks: &[Task<'_>],
        num_classes: usize,
    ) -> Result<Vec<Vec<f64>>, PredictError> {
        let n_out = self.class_head_width(num_classes)?;
        Ok(self
            .logits_many(tasks)?
            .into_iter()
            .map(|t| class_probabilities_of(&t.logits, n_out, num_classes))
            .collect())
    }

    /// Every task's query logits and target map, in batched forward passes.
    fn logits_many(&self, tasks: &[Task<'_>]) -> Result<Vec<TaskLogits>, PredictError> {
        let prepared: Vec<Prepared> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let task_err = |e| PredictError::Task {
                    task: i,
                    source: Box::new(e),
                };
                let context = self
                    .normalise_context(t.x, t.y, t.features)
                    .map_err(task_err)?;
                let mut query = Vec::new();
                let m = self
                    .normalise_queries(context.features.as_ref(), t.features, t.x_query, &mut query)
                    .map_err(task_err)?;
                Ok(Prepared { context, query, m })
            })
            .collect::<Result<_, PredictError>>()?;
        let width = self.head().width();
        let mut out: Vec<TaskLogits> = prepared
            .iter()
            .map(|p| TaskLogits {
                logits: vec![0.0; p.m * width],
                target: p.context.target,
            })
            .collect();
        // Units of at most `query_batch` queries, grouped by context size in the tasks' order.
        let chunk = self.query_batch().max(1);
        let mut units: Vec<Unit> = prepared
            .iter()
            .enumerate()
            .flat_map(|(task, p)| {
                (0..p.m).step_by(chunk).map(move |start| Unit {
                    task,
                    start,
                    m: chunk.min(p.m - start),
                })
            })
            .collect();
        units.sort_by_key(|u| prepared[u.task].context.n);
        let f = self.num_features();
        let mut ws = Workspace::inference();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut rest = units.as_slice();
        while let Some(first) = rest.first() {
            let n = prepared[first.task].context.n;
            // The longest run of units with this context size that fits one pass.
            let mut len = 0;
            let mut m = 0;
            for u in rest.iter().take(self.dataset_batch().max(1)) {
                let m_next = m.max(u.m);
                if prepared[u.task].context.n != n
                    || (len > 0 && (len + 1) * (n + m_next) > MAX_PASS_TOKENS)
                {
                    break;
                }
                len += 1;
                m = m_next;
            }
            let (pass, tail) = rest.split_at(len);
            rest = tail;
            x.clear();
            y.clear();
            for u in pass {
                let p = &prepared[u.task];
                x.extend_from_slice(&p.context.x);
                x.extend_from_slice(&p.query[u.start * f..(u.start + u.m) * f]);
                x.resize(x.len() + (m - u.m) * f, 0.0);
                y.extend_from_slice(&p.context.y);
                y.resize(y.len() + m, 0.0);
            }
            let batch = Batch {
                x: &x,
                y: &y,
                batch: pass.len(),
                seq_len: n + m,
                single_eval_pos: n,
            };
            let logits = self.model().forward(self.engine(), &mut ws, &batch)?;
            for (u, rows) in pass.iter().zip(logits.chunks_exact(m * width)) {
                out[u.task].logits[u.start * width..(u.start + u.m) * width]
                    .copy_from_slice(&rows[..u.m * width]);
            }
        }
        Ok(out)
    }
}
