//! Helpers shared by the integration tests.

/// Fold `f` of a context (`d` columns, `folds[i]` the fold of row `i`): the other folds' rows and
/// targets as context, its own rows and targets as queries.
pub fn split_fold<T: Copy>(
    x: &[f64],
    d: usize,
    y: &[T],
    folds: &[usize],
    f: usize,
) -> (Vec<f64>, Vec<T>, Vec<f64>, Vec<T>) {
    let (mut xc, mut yc, mut xq, mut yq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, row) in x.chunks_exact(d).enumerate() {
        if folds[i] == f {
            xq.extend_from_slice(row);
            yq.push(y[i]);
        } else {
            xc.extend_from_slice(row);
            yc.push(y[i]);
        }
    }
    (xc, yc, xq, yq)
}
