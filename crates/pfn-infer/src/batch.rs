//! Batched inference across datasets: one forward pass answers many datasets at once, the way
//! the paper timed its PFN (many datasets per GPU batch) and the way an evaluation over hundreds
//! of held-out datasets should run.
//!
//! Every dataset ([`Task`]) is validated and normalised exactly as [`Predictor::context`] does (its
//! own feature and target maps, fitted on its own context rows), so a batched answer equals the
//! one-at-a-time answer up to float rounding in the matrix products. Datasets are grouped by
//! context size, because one forward pass shares the split point between context and queries;
//! within a group, datasets with fewer queries are padded with zero query rows whose outputs are
//! dropped (queries attend to the context, never to one another, so padding changes nothing).
//! A group is split into passes of at most [`Predictor::dataset_batch`] datasets, and the answers
//! come back in the order of the tasks.

use pfn_model::{Batch, Workspace};

use crate::predictive::PosteriorPredictive;
use crate::predictor::{NormalisedContext, PredictError, Predictor};

/// Datasets per forward pass by default.
pub const DEFAULT_DATASET_BATCH: usize = 64;

/// One dataset of a batched prediction: a context and the queries to answer, in original units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task<'a> {
    /// Context inputs, row-major `n × features`.
    pub x: &'a [f64],
    /// Context targets (`n`).
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
        let prepared: Vec<Prepared> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let context = self.normalise_context(t.x, t.y, t.features).map_err(|e| {
                    PredictError::Task {
                        task: i,
                        source: Box::new(e),
                    }
                })?;
                let mut query = Vec::new();
                let m = self
                    .normalise_queries(context.features.as_ref(), t.features, t.x_query, &mut query)
                    .map_err(|e| PredictError::Task {
                        task: i,
                        source: Box::new(e),
                    })?;
                Ok(Prepared { context, query, m })
            })
            .collect::<Result<_, PredictError>>()?;
        // Group by context size, keeping the tasks' order inside a group.
        let mut order: Vec<usize> = (0..tasks.len()).filter(|&i| prepared[i].m > 0).collect();
        order.sort_by_key(|&i| prepared[i].context.n);
        let mut out: Vec<Vec<PosteriorPredictive>> = vec![Vec::new(); tasks.len()];
        let f = self.num_features();
        let width = self.metadata().architecture.n_out;
        let mut ws = Workspace::inference();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for group in order.chunk_by(|&a, &b| prepared[a].context.n == prepared[b].context.n) {
            let n = prepared[group[0]].context.n;
            for pass in group.chunks(self.dataset_batch().max(1)) {
                let m = pass.iter().map(|&i| prepared[i].m).max().unwrap_or(0);
                let seq_len = n + m;
                x.clear();
                y.clear();
                for &i in pass {
                    let p = &prepared[i];
                    x.extend_from_slice(&p.context.x);
                    x.extend_from_slice(&p.query);
                    x.resize(x.len() + (m - p.m) * f, 0.0);
                    y.extend_from_slice(&p.context.y);
                    y.resize(y.len() + m, 0.0);
                }
                let batch = Batch {
                    x: &x,
                    y: &y,
                    batch: pass.len(),
                    seq_len,
                    single_eval_pos: n,
                };
                let logits = self.model().forward(self.engine(), &mut ws, &batch)?;
                for (&i, rows) in pass.iter().zip(logits.chunks_exact(m * width)) {
                    let target = prepared[i].context.target;
                    out[i] = rows
                        .chunks_exact(width)
                        .take(prepared[i].m)
                        .map(|row| self.predictive_from_logits(row, target))
                        .collect::<Result<_, _>>()?;
                }
            }
        }
        Ok(out)
    }
}
