//! k-nearest neighbours (spec 6.4, Table 6: k = 1..5 by 5-fold cross-validation).
//!
//! Euclidean distance on the (already z-scored) features; the class probabilities of a query are
//! the class fractions among its k nearest training rows (uniform weights, as scikit-learn's
//! `KNeighborsClassifier` default). Distance ties are broken by the training row index (the
//! earlier row is nearer), so predictions are deterministic. When the training set has fewer
//! than k rows, all of them are used.

use super::{cv, fit_present_classes, validate, ClassData, Classifier, ClassifierError};

/// k-nearest neighbours with k chosen by cross-validation from [`Knn::ks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knn {
    /// The grid of neighbour counts (the paper's: 1..=5).
    pub ks: Vec<usize>,
}

impl Default for Knn {
    fn default() -> Self {
        Self {
            ks: (1..=5).collect(),
        }
    }
}

/// For each query row, the training rows sorted by (distance, index).
fn neighbour_order(train_x: &[f64], f: usize, test_x: &[f64], max_k: usize) -> Vec<Vec<usize>> {
    let n = train_x.len().checked_div(f).unwrap_or(0);
    let m = test_x.len().checked_div(f).unwrap_or(0);
    let keep = max_k.min(n);
    (0..m)
        .map(|q| {
            let query = &test_x[q * f..(q + 1) * f];
            let mut d: Vec<(f64, usize)> = (0..n)
                .map(|i| {
                    let row = &train_x[i * f..(i + 1) * f];
                    let s: f64 = row.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum();
                    (s, i)
                })
                .collect();
            let by_distance =
                |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            if keep < d.len() && keep > 0 {
                d.select_nth_unstable_by(keep - 1, by_distance);
                d.truncate(keep);
            }
            d.sort_by(by_distance);
            d.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// Class fractions among the `k` nearest neighbours of each query, one matrix per `k`.
fn predict_all(
    train_x: &[f64],
    f: usize,
    labels: &[usize],
    num_classes: usize,
    test_x: &[f64],
    ks: &[usize],
) -> Vec<Vec<f64>> {
    let max_k = ks.iter().copied().max().unwrap_or(1);
    let order = neighbour_order(train_x, f, test_x, max_k);
    ks.iter()
        .map(|&k| {
            let mut out = vec![0.0; order.len() * num_classes];
            for (row, nearest) in out.chunks_exact_mut(num_classes).zip(&order) {
                let used = &nearest[..k.max(1).min(nearest.len())];
                for &i in used {
                    row[labels[i]] += 1.0;
                }
                for v in row.iter_mut() {
                    *v /= used.len() as f64;
                }
            }
            out
        })
        .collect()
}

impl Knn {
    /// Fits and predicts, also returning the chosen k (`None` when a single class was present).
    pub fn fit_predict_with_choice(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<(Vec<f64>, Option<usize>), ClassifierError> {
        let test_rows = validate(train, x_test)?;
        if self.ks.is_empty() || self.ks.contains(&0) {
            return Err(ClassifierError::Shape(
                "kNN needs a non-empty grid of k >= 1".into(),
            ));
        }
        let f = train.n_features;
        let mut chosen = None;
        let probs = fit_present_classes(
            train.x,
            train.labels,
            train.num_classes,
            x_test,
            test_rows,
            |x, labels, k, xt| {
                let choice = cv::select(x, f, labels, k, self.ks.len(), seed, |tx, tl, kf, vx| {
                    Ok(predict_all(tx, f, tl, kf, vx, &self.ks))
                })?;
                let best = self.ks[choice.best];
                chosen = Some(best);
                Ok(predict_all(x, f, labels, k, xt, &[best]).remove(0))
            },
        )?;
        Ok((probs, chosen))
    }
}

impl Classifier for Knn {
    fn name(&self) -> &str {
        "kNN"
    }

    fn fit_predict(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, ClassifierError> {
        Ok(self.fit_predict_with_choice(train, x_test, seed)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_earlier_row() {
        // Query at 0: rows 0 (label 1) and 1 (label 0) are both at distance 1.
        let probs = predict_all(&[1.0, -1.0, 5.0], 1, &[1, 0, 0], 2, &[0.0], &[1, 2, 3]);
        assert_eq!(probs[0], vec![0.0, 1.0]);
        assert_eq!(probs[1], vec![0.5, 0.5]);
        assert!((probs[2][0] - 2.0 / 3.0).abs() < 1e-15);
    }
}
