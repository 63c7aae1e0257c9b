//! The held-out validation set of a run: prior datasets drawn with the run's validation seed, at
//! several fixed context sizes, and the mean loss of a model on them.
//!
//! Batch `j` of `J` is `BatchPlan::sample_validation(j)` with its split point replaced by the
//! `(j + ½) / J` quantile of the run's split distribution ([`stratified_splits`]), so the set covers
//! the context sizes the model is trained on in proportion to how often they are trained, and
//! does not depend on random split draws. The loss is averaged like the training loss: the mean
//! over each batch's query points, then the mean over batches.

use pfn_distribution::DistributionError;
use pfn_engine::Engine;
use pfn_model::{ModelError, PfnModel, Workspace};
use pfn_prior::SplitSampler;

use crate::head::Head;
use crate::loader::{BatchPlan, LoaderError, TrainBatch};

/// Errors while evaluating a model on the validation set.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The forward pass failed.
    #[error("validation forward pass: {0}")]
    Model(#[from] ModelError),
    /// The loss could not be computed.
    #[error("validation loss: {0}")]
    Loss(#[from] DistributionError),
}

/// `count` split points at the `(j + ½) / count` quantiles of `sampler`'s distribution.
pub fn stratified_splits(sampler: &SplitSampler, count: usize) -> Vec<usize> {
    let support: Vec<usize> = sampler.support().collect();
    let mut cdf = Vec::with_capacity(support.len());
    let mut acc = 0.0;
    for &n in &support {
        acc += sampler.probability(n);
        cdf.push(acc);
    }
    (0..count)
        .map(|j| {
            let u = (j as f64 + 0.5) / count as f64 * acc;
            let i = cdf.partition_point(|&c| c < u).min(support.len() - 1);
            support[i]
        })
        .collect()
}

/// The fixed held-out datasets of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationSet {
    batches: Vec<TrainBatch>,
}

impl ValidationSet {
    /// Samples `ceil(datasets / batch_size)` validation batches of `plan` (at least one).
    pub fn new(plan: &BatchPlan, datasets: usize) -> Result<Self, LoaderError> {
        let count = datasets.div_ceil(plan.batch_size()).max(1);
        let splits = stratified_splits(plan.split(), count);
        let batches = splits
            .into_iter()
            .enumerate()
            .map(|(j, n)| {
                let mut b = plan.sample_validation(j as u64)?;
                b.single_eval_pos = n;
                Ok(b)
            })
            .collect::<Result<Vec<_>, LoaderError>>()?;
        Ok(Self { batches })
    }

    /// The batches.
    pub fn batches(&self) -> &[TrainBatch] {
        &self.batches
    }

    /// Number of datasets.
    pub fn num_datasets(&self) -> usize {
        self.batches.iter().map(|b| b.batch.batch_size).sum()
    }

    /// The context size of each batch.
    pub fn context_sizes(&self) -> Vec<usize> {
        self.batches.iter().map(|b| b.single_eval_pos).collect()
    }

    /// Mean loss of `model` (mean over each batch's queries, then over batches).
    pub fn loss(
        &self,
        model: &PfnModel,
        engine: &Engine,
        ws: &mut Workspace,
        head: &Head,
        targets: &mut Vec<f32>,
    ) -> Result<f64, ValidationError> {
        let mut total = 0.0;
        for tb in &self.batches {
            let logits = model.forward(engine, ws, &model_batch(tb))?;
            query_targets(tb, targets);
            let rows = engine.install(|| head.row_losses(logits, targets))?;
            total += rows.iter().sum::<f64>() / rows.len() as f64;
        }
        Ok(total / self.batches.len() as f64)
    }
}

/// The model's view of a batch (labels of all points; the model reads only the context's).
pub fn model_batch(tb: &TrainBatch) -> pfn_model::Batch<'_> {
    pfn_model::Batch {
        x: &tb.batch.x,
        y: &tb.batch.y,
        batch: tb.batch.batch_size,
        seq_len: tb.batch.seq_len,
        single_eval_pos: tb.single_eval_pos,
    }
}

/// The loss targets of the query points, dataset-major, in the row order of the model's logits.
pub fn query_targets(tb: &TrainBatch, out: &mut Vec<f32>) {
    let (t, n) = (tb.batch.seq_len, tb.single_eval_pos);
    out.clear();
    for b in 0..tb.batch.batch_size {
        out.extend_from_slice(&tb.batch.target_y[b * t + n..(b + 1) * t]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_splits_follow_the_distribution() {
        let uniform = SplitSampler::uniform(0, 9).unwrap();
        assert_eq!(stratified_splits(&uniform, 10), (0..10).collect::<Vec<_>>());
        assert_eq!(stratified_splits(&uniform, 2), vec![2, 7]);
        // The weighted sampler puts more mass on large n: the quantiles crowd at the top.
        let weighted = SplitSampler::weighted(100).unwrap();
        let s = stratified_splits(&weighted, 8);
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
        assert!(s[4] > 80, "{s:?}");
        assert!(s[0] < 40, "{s:?}");
        assert!(s.iter().all(|&n| n <= 99));
    }
}
