//! Re-binning a prediction onto other borders, and averaging predictions made on different borders
//! (ensembling models with different bucketings), via the cdf.

use crate::bar::BarDistribution;
use crate::error::{DistributionError, Result};
use crate::prediction::BarPrediction;

impl BarPrediction {
    /// The probabilities of the buckets of `target`: `P(bucket j) = cdf(b_{j+1}) - cdf(b_j)`, where
    /// the first and last buckets of `target` also take the mass below its first and above its last
    /// border (so the result sums to 1, as in the maintained library).
    pub fn probabilities_on(&self, target: &BarDistribution) -> Vec<f64> {
        let borders = target.borders();
        let k = target.num_buckets();
        let mut cdf: Vec<f64> = borders.iter().map(|&b| self.cdf(b)).collect();
        cdf[0] = 0.0;
        cdf[k] = 1.0;
        cdf.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect()
    }
}

/// The average of `predictions` (possibly on different borders) re-binned onto `target`, as bucket
/// probabilities of `target` (take their logarithm for logits). An empty list is an error.
pub fn average_on(predictions: &[BarPrediction], target: &BarDistribution) -> Result<Vec<f64>> {
    if predictions.is_empty() {
        return Err(DistributionError::InvalidParameter {
            argument: "predictions",
            value: 0.0,
            domain: "a non-empty list",
        });
    }
    let mut mean = vec![0.0; target.num_buckets()];
    for prediction in predictions {
        for (m, p) in mean.iter_mut().zip(prediction.probabilities_on(target)) {
            *m += p;
        }
    }
    let n = predictions.len() as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    Ok(mean)
}
