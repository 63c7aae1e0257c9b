//! Scores of class-probability predictions: log loss, accuracy, ROC AUC (binary and one-vs-rest)
//! and the top-label calibration error with its reliability bins.
//!
//! Every function takes the predictions as `rows x num_classes` probabilities (row-major, f64, each
//! row summing to about 1) and the true labels as class indices `0..num_classes`. These are the one
//! implementation of each score: `pfn predict` reports them for a labelled test file and
//! `pfn reproduce tabular` ranks the PFN and its baselines with them.
//!
//! Conventions:
//! * **Log loss** is the mean of `−ln p_true`, with `p_true` clamped to at least [`MIN_PROBABILITY`]
//!   (a confidently wrong prediction costs `ln 1e15 ≈ 34.5` nats rather than infinity).
//! * **Accuracy**: the predicted class is the most probable one (the lowest index among ties).
//! * **ROC AUC** of scores against binary labels is the Mann–Whitney statistic: the probability
//!   that a random positive scores above a random negative, ties counting one half (average ranks).
//!   It is undefined (`None`) when one of the two groups is empty. With more than two classes,
//!   [`roc_auc_ovr`] averages the one-vs-rest AUCs of the classes that occur in the labels, with
//!   equal weight per class (scikit-learn's `multi_class="ovr", average="macro"`); with two
//!   classes it is the AUC of the class-1 probability.
//! * **Expected calibration error** (top label): the predictions are put in `bins` equal-width
//!   bins of their confidence (the largest probability), and ECE is the count-weighted mean over
//!   bins of |accuracy − mean confidence| (the paper's Table 1 uses 100 bins).

use crate::error::DistributionError;

/// The smallest probability [`log_loss`] scores (larger losses are capped at `−ln` of it).
pub const MIN_PROBABILITY: f64 = 1e-15;

type Result<T> = std::result::Result<T, DistributionError>;

fn check(probabilities: &[f64], labels: &[usize], num_classes: usize) -> Result<()> {
    if num_classes == 0 {
        return Err(DistributionError::InvalidArgument {
            argument: "num_classes",
            reason: "must be at least 1".into(),
        });
    }
    if probabilities.len() != labels.len() * num_classes {
        return Err(DistributionError::InvalidArgument {
            argument: "probabilities",
            reason: format!(
                "{} values for {} labels of {num_classes} classes (expected {})",
                probabilities.len(),
                labels.len(),
                labels.len() * num_classes
            ),
        });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= num_classes) {
        return Err(DistributionError::InvalidArgument {
            argument: "labels",
            reason: format!("row {row}: label {label} is not below num_classes = {num_classes}"),
        });
    }
    Ok(())
}

/// Mean negative log probability of the true class (see the module docs); `None` without rows.
pub fn log_loss(
    probabilities: &[f64],
    labels: &[usize],
    num_classes: usize,
) -> Result<Option<f64>> {
    check(probabilities, labels, num_classes)?;
    if labels.is_empty() {
        return Ok(None);
    }
    let total: f64 = probabilities
        .chunks_exact(num_classes)
        .zip(labels)
        .map(|(row, &l)| -row[l].max(MIN_PROBABILITY).ln())
        .sum();
    Ok(Some(total / labels.len() as f64))
}

/// The most probable class of one row of probabilities (the lowest index among ties).
pub fn predicted_class(row: &[f64]) -> usize {
    let mut best = 0;
    for (c, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = c;
        }
    }
    best
}

/// Fraction of rows whose most probable class is the label; `None` without rows.
pub fn accuracy(
    probabilities: &[f64],
    labels: &[usize],
    num_classes: usize,
) -> Result<Option<f64>> {
    check(probabilities, labels, num_classes)?;
    if labels.is_empty() {
        return Ok(None);
    }
    let right = probabilities
        .chunks_exact(num_classes)
        .zip(labels)
        .filter(|(row, &l)| predicted_class(row) == l)
        .count();
    Ok(Some(right as f64 / labels.len() as f64))
}

/// ROC AUC of `scores` for the binary labels `positive` (Mann–Whitney with average ranks for ties);
/// `None` when there is no positive or no negative. Errors on a length mismatch or a NaN score.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Result<Option<f64>> {
    if scores.len() != positive.len() {
        return Err(DistributionError::InvalidArgument {
            argument: "scores",
            reason: format!("{} scores for {} labels", scores.len(), positive.len()),
        });
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(DistributionError::InvalidArgument {
            argument: "scores",
            reason: format!("row {i} is NaN"),
        });
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += average_rank * order[i..j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Ok(Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n)))
}

/// ROC AUC of class probabilities: the class-1 AUC for two classes, else the unweighted mean of the
/// one-vs-rest AUCs over the classes present in `labels` (see the module docs). `None` when fewer
/// than two classes occur.
pub fn roc_auc_ovr(
    probabilities: &[f64],
    labels: &[usize],
    num_classes: usize,
) -> Result<Option<f64>> {
    check(probabilities, labels, num_classes)?;
    let one_vs_rest = |c: usize| {
        let scores: Vec<f64> = probabilities
            .chunks_exact(num_classes)
            .map(|row| row[c])
            .collect();
        let positive: Vec<bool> = labels.iter().map(|&l| l == c).collect();
        roc_auc(&scores, &positive)
    };
    if num_classes == 2 {
        return one_vs_rest(1);
    }
    let mut present = vec![false; num_classes];
    for &l in labels {
        present[l] = true;
    }
    if present.iter().filter(|&&p| p).count() < 2 {
        return Ok(None);
    }
    let mut total = 0.0;
    let mut count = 0;
    for c in (0..num_classes).filter(|&c| present[c]) {
        if let Some(auc) = one_vs_rest(c)? {
            total += auc;
            count += 1;
        }
    }
    Ok(Some(total / count as f64))
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    /// Lower edge of the confidence bin.
    pub lower: f64,
    /// Upper edge of the confidence bin.
    pub upper: f64,
    /// Predictions whose confidence falls in the bin.
    pub count: usize,
    /// Their mean confidence (NaN when empty).
    pub confidence: f64,
    /// The fraction of them that are right (NaN when empty).
    pub accuracy: f64,
}

/// Top-label reliability bins: `bins` equal-width bins of the confidence over `[0, 1]` (a
/// confidence of exactly 1 falls in the last bin).
pub fn reliability_bins(
    probabilities: &[f64],
    labels: &[usize],
    num_classes: usize,
    bins: usize,
) -> Result<Vec<ReliabilityBin>> {
    check(probabilities, labels, num_classes)?;
    if bins == 0 {
        return Err(DistributionError::InvalidArgument {
            argument: "bins",
            reason: "must be at least 1".into(),
        });
    }
    let mut count = vec![0usize; bins];
    let mut confidence = vec![0.0f64; bins];
    let mut right = vec![0usize; bins];
    for (row, &l) in probabilities.chunks_exact(num_classes).zip(labels) {
        let c = predicted_class(row);
        let p = row[c].clamp(0.0, 1.0);
        let b = ((p * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        confidence[b] += p;
        right[b] += usize::from(c == l);
    }
    Ok((0..bins)
        .map(|b| {
            let n = count[b] as f64;
            ReliabilityBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                count: count[b],
                confidence: confidence[b] / n,
                accuracy: right[b] as f64 / n,
            }
        })
        .collect())
}

/// Top-label expected calibration error over `bins` equal-width confidence bins; `None` without
/// rows.
pub fn expected_calibration_error(
    probabilities: &[f64],
    labels: &[usize],
    num_classes: usize,
    bins: usize,
) -> Result<Option<f64>> {
    let table = reliability_bins(probabilities, labels, num_classes, bins)?;
    if labels.is_empty() {
        return Ok(None);
    }
    let n = labels.len() as f64;
    Ok(Some(
        table
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
            .sum(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_half_ties() {
        // Positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4 -> 1/2),
        // (0.4>0.1) -> 3.5 / 4.
        let auc = roc_auc(&[0.8, 0.4, 0.4, 0.1], &[true, true, false, false])
            .unwrap()
            .unwrap();
        assert!((auc - 0.875).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[0.2, 0.3], &[true, true]).unwrap(), None);
        let perfect = roc_auc(&[0.1, 0.9, 0.2], &[false, true, false]).unwrap();
        assert_eq!(perfect, Some(1.0));
        let reversed = roc_auc(&[0.9, 0.1], &[false, true]).unwrap();
        assert_eq!(reversed, Some(0.0));
        assert!(roc_auc(&[f64::NAN, 0.1], &[false, true]).is_err());
    }

    #[test]
    fn auc_matches_brute_force_pair_counting() {
        let scores: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
        let positive: Vec<bool> = (0..40).map(|i| (i * 13) % 3 == 0).collect();
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in 0..40 {
            for j in 0..40 {
                if positive[i] && !positive[j] {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]).unwrap() {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
        }
        let auc = roc_auc(&scores, &positive).unwrap().unwrap();
        assert!((auc - wins / pairs).abs() < 1e-12);
    }

    #[test]
    fn multi_class_scores() {
        // Three rows of three classes.
        let p = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4];
        let labels = [0, 1, 0];
        let ll = log_loss(&p, &labels, 3).unwrap().unwrap();
        let want = -(0.7f64.ln() + 0.8f64.ln() + 0.3f64.ln()) / 3.0;
        assert!((ll - want).abs() < 1e-12);
        assert_eq!(accuracy(&p, &labels, 3).unwrap(), Some(2.0 / 3.0));
        // Class 0: positives 0.7, 0.3 vs negative 0.1 -> 1; class 1: positive 0.8 vs 0.2, 0.3 -> 1;
        // class 2 absent from the labels: skipped.
        assert_eq!(roc_auc_ovr(&p, &labels, 3).unwrap(), Some(1.0));
        assert!(log_loss(&p, &[0, 1, 3], 3).is_err());
        assert!(log_loss(&p[..8], &labels, 3).is_err());
        // A confidently wrong prediction is capped, not infinite.
        let capped = log_loss(&[1.0, 0.0], &[1], 2).unwrap().unwrap();
        assert!((capped - 1e15f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn calibration_error_of_calibrated_and_overconfident_predictions() {
        // 10 predictions at confidence 0.8 of which 8 are right: perfectly calibrated.
        let mut p = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10 {
            p.extend([0.8, 0.2]);
            labels.push(usize::from(i >= 8));
        }
        let ece = expected_calibration_error(&p, &labels, 2, 10)
            .unwrap()
            .unwrap();
        assert!(ece.abs() < 1e-12, "{ece}");
        // Confidence 1.0 but half right: ECE 0.5, in the last bin.
        let p = [1.0, 0.0, 1.0, 0.0];
        let ece = expected_calibration_error(&p, &[0, 1], 2, 100)
            .unwrap()
            .unwrap();
        assert!((ece - 0.5).abs() < 1e-12);
        let bins = reliability_bins(&p, &[0, 1], 2, 100).unwrap();
        assert_eq!(bins[99].count, 2);
        assert_eq!(expected_calibration_error(&[], &[], 2, 10).unwrap(), None);
    }
}
